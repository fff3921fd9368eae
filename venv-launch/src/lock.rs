//! An exclusive lock on a file: callers that race (parallel test binaries) serialise on it.

use std::fs::{File, OpenOptions};
use std::path::Path;

use crate::Error;

/// An exclusive lock, released when it is dropped (or when the process ends).
#[derive(Debug)]
#[must_use = "the lock is released when it is dropped"]
pub struct FileLock {
    _file: File,
}

/// Waits for the exclusive lock on `path`, creating the file (but not its directory) if needed.
pub fn exclusive(path: &Path) -> Result<FileLock, Error> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(Error::io(path))?;
    file.lock().map_err(Error::io(path))?;
    Ok(FileLock { _file: file })
}
