//! The dead-letter file: one NDJSON record per line that was not delivered (where, why, and
//! the original line). Created 0600, since it holds payloads; each record is written at once
//! (no buffer that a crash would lose) and [`DeadLetter::sync`] makes them durable.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;

/// A dead-letter file opened for appending.
#[derive(Debug)]
pub struct DeadLetter {
    path: PathBuf,
    file: File,
}

/// A dead-letter write that failed, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the dead-letter file {path}: {source}")]
pub struct DeadLetterError {
    path: String,
    source: std::io::Error,
}

/// One record: where the line was, why it was not delivered, and the line (if it was read).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The input's label (a path, or `<stdin>`).
    pub file: &'a str,
    /// The line number, from 1.
    pub line: u64,
    /// Why it was not delivered.
    pub reason: &'a str,
    /// The original bytes, when they were read.
    pub original: Option<&'a [u8]>,
}

impl DeadLetter {
    /// Opens (or creates, 0600) `path` for appending.
    pub fn open(path: &Path) -> Result<DeadLetter, DeadLetterError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| error(path, source))?;
        Ok(DeadLetter {
            path: path.to_owned(),
            file,
        })
    }

    /// Appends one record.
    pub fn write(&mut self, record: &Record<'_>) -> Result<(), DeadLetterError> {
        self.file
            .write_all(record.to_line().as_bytes())
            .map_err(|source| error(&self.path, source))
    }

    /// Makes every record written so far durable.
    pub fn sync(&mut self) -> Result<(), DeadLetterError> {
        self.file
            .sync_data()
            .map_err(|source| error(&self.path, source))
    }
}

fn error(path: &Path, source: std::io::Error) -> DeadLetterError {
    DeadLetterError {
        path: path.display().to_string(),
        source,
    }
}

impl Record<'_> {
    /// The record as one NDJSON line, with its line ending.
    fn to_line(self) -> String {
        let mut record = serde_json::Map::new();
        record.insert("file".into(), self.file.into());
        record.insert("line".into(), self.line.into());
        record.insert("reason".into(), self.reason.into());
        match self
            .original
            .map(|bytes| (bytes, std::str::from_utf8(bytes)))
        {
            Some((_, Ok(text))) => {
                record.insert("original".into(), text.into());
            }
            Some((bytes, Err(_))) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
                record.insert("originalBase64".into(), encoded.into());
            }
            None => {}
        }
        let mut text = serde_json::Value::Object(record).to_string();
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(original: Option<&[u8]>, expected: &str) {
        let record = Record {
            file: "in.ndjson",
            line: 7,
            reason: "bad",
            original,
        };
        assert_eq!(record.to_line(), format!("{expected}\n"));
    }

    #[test]
    fn records() {
        check(
            Some(b"{\"a\":1}"),
            r#"{"file":"in.ndjson","line":7,"original":"{\"a\":1}","reason":"bad"}"#,
        );
        check(
            Some(b"\xff"),
            r#"{"file":"in.ndjson","line":7,"originalBase64":"/w==","reason":"bad"}"#,
        );
        check(None, r#"{"file":"in.ndjson","line":7,"reason":"bad"}"#);
    }
}
