//! A scratch directory of one test's own, removed when dropped.

use std::path::{Path, PathBuf};

/// A directory under the system's temporary folder with a unique name; removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/<prefix>-<unique>`. Panics when it cannot: no test can go on without it.
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(crate::names::unique(prefix));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("scratch directory {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::TempDir;

    #[test]
    fn the_directory_goes_with_its_handle() {
        let dir = TempDir::new("testkit-scratch");
        std::fs::write(dir.join("a"), "x").expect("write");
        let path = dir.path().to_owned();
        assert!(path.is_dir());
        drop(dir);
        assert!(!path.exists());
    }
}
