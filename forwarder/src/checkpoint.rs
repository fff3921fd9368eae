//! `--checkpoint FILE`: for each input file, the acknowledged watermark (the line and byte
//! offset before which every line has its outcome: accepted by SQS, dead-lettered, refused or
//! filtered), so that `--resume` can start after it.
//!
//! An input is identified by its canonical path, its device and inode, a size of at least the
//! watermark, and the SHA-256 of its first 4 KiB (or less, up to the watermark) and of the 4 KiB
//! just before the watermark: a different file, or one rewritten before the watermark, is never
//! resumed by mistake (an appended file is, which is what tailing a log wants). The file is
//! written whole to a temporary file beside it, fsynced, renamed over the old one, and the
//! directory fsynced, so that a crash leaves the old checkpoint or the new one.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where every line before has its outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// Lines before the watermark.
    pub line: u64,
    /// Bytes before the watermark.
    pub offset: u64,
}

/// Why a checkpoint could not be read, used or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing a file failed.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The checkpoint file is not one we wrote.
    #[error("checkpoint {path}: not a checkpoint file: {reason}")]
    Corrupt {
        /// The checkpoint file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The input is not the file the checkpoint was written for.
    #[error("{input}: {what} since the checkpoint; remove the checkpoint or run without --resume")]
    Changed {
        /// The input file.
        input: String,
        /// What differs.
        what: &'static str,
    },
}

/// A checkpoint as read from its file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    version: u32,
    inputs: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    path: PathBuf,
    #[serde(flatten)]
    identity: Identity,
    #[serde(flatten)]
    mark: Mark,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity {
    device: u64,
    inode: u64,
    head_sha256: String,
    tail_sha256: String,
}

const VERSION: u32 = 1;
/// Bytes hashed at the start of the file and just before the watermark.
const HASHED: u64 = 4096;

impl Checkpoint {
    /// Reads `path`; an absent file is an empty checkpoint (a first run).
    pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Checkpoint {
                    version: VERSION,
                    inputs: Vec::new(),
                });
            }
            Err(source) => return Err(io(path, source)),
        };
        let checkpoint: Checkpoint =
            serde_json::from_str(&text).map_err(|e| CheckpointError::Corrupt {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        if checkpoint.version != VERSION {
            return Err(CheckpointError::Corrupt {
                path: path.display().to_string(),
                reason: format!("version {} is not {VERSION}", checkpoint.version),
            });
        }
        Ok(checkpoint)
    }

    /// Where `input` resumes: its watermark if the checkpoint has one for this very file, the
    /// start if it has none, an error if the file is not the one the checkpoint describes.
    pub fn resume_point(&self, input: &Path) -> Result<Mark, CheckpointError> {
        let canonical = std::fs::canonicalize(input).map_err(|e| io(input, e))?;
        let Some(entry) = self.inputs.iter().find(|e| e.path == canonical) else {
            return Ok(Mark::default());
        };
        let changed = |what| CheckpointError::Changed {
            input: input.display().to_string(),
            what,
        };
        let mut file = File::open(input).map_err(|e| io(input, e))?;
        let meta = file.metadata().map_err(|e| io(input, e))?;
        if (meta.dev(), meta.ino()) != (entry.identity.device, entry.identity.inode) {
            return Err(changed("the path names another file"));
        }
        if meta.len() < entry.mark.offset {
            return Err(changed("the file is shorter than the checkpoint's offset"));
        }
        let now = identity(&mut file, entry.mark.offset).map_err(|e| io(input, e))?;
        if now != entry.identity {
            return Err(changed("the file was rewritten"));
        }
        Ok(entry.mark)
    }

    /// Writes the watermarks of `inputs` to `path`, atomically and durably.
    pub fn save(path: &Path, inputs: &[(PathBuf, Mark)]) -> Result<(), CheckpointError> {
        let mut entries = Vec::with_capacity(inputs.len());
        for (input, mark) in inputs {
            let mut file = File::open(input).map_err(|e| io(input, e))?;
            let identity = identity(&mut file, mark.offset).map_err(|e| io(input, e))?;
            let path = std::fs::canonicalize(input).map_err(|e| io(input, e))?;
            entries.push(Entry {
                path,
                identity,
                mark: *mark,
            });
        }
        let checkpoint = Checkpoint {
            version: VERSION,
            inputs: entries,
        };
        let text = serde_json::to_string_pretty(&checkpoint).map_err(|e| io(path, e.into()))?;
        write_atomically(path, text.as_bytes()).map_err(|e| io(path, e))
    }
}

fn io(path: &Path, source: std::io::Error) -> CheckpointError {
    CheckpointError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What identifies `file` up to `offset`.
fn identity(file: &mut File, offset: u64) -> std::io::Result<Identity> {
    let meta = file.metadata()?;
    let head = hash_range(file, 0, offset.min(HASHED))?;
    let start = offset.saturating_sub(HASHED);
    let tail = hash_range(file, start, offset - start)?;
    Ok(Identity {
        device: meta.dev(),
        inode: meta.ino(),
        head_sha256: head,
        tail_sha256: tail,
    })
}

fn hash_range(file: &mut File, start: u64, length: u64) -> std::io::Result<String> {
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::with_capacity(length as usize);
    file.take(length).read_to_end(&mut bytes)?;
    if (bytes.len() as u64) < length {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the file is shorter than the checkpoint's offset",
        ));
    }
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "checkpoint-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    /// Saves a mark for `before`, replaces the input with `after` (in place or as a new file),
    /// and returns what resuming says.
    fn check(before: &[u8], mark: Mark, after: Option<(&[u8], bool)>) -> Result<Mark, String> {
        let dir = scratch("check");
        let input = dir.join("in.ndjson");
        let checkpoint = dir.join("ck.json");
        std::fs::write(&input, before).expect("input");
        Checkpoint::save(&checkpoint, &[(input.clone(), mark)]).expect("save");
        if let Some((bytes, new_file)) = after {
            if new_file {
                std::fs::remove_file(&input).expect("remove");
                std::fs::write(&input, bytes).expect("new input");
            } else {
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&input)
                    .expect("open");
                file.write_all(bytes).expect("rewrite");
            }
        }
        let result = Checkpoint::load(&checkpoint)
            .expect("load")
            .resume_point(&input)
            .map_err(|e| e.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    #[test]
    fn resumes_the_same_file_and_refuses_another() {
        let text = b"one\ntwo\nthree\n";
        let mark = Mark { line: 2, offset: 8 };
        assert_eq!(check(text, mark, None), Ok(mark));
        let appended = b"one\ntwo\nthree\nfour\n";
        assert_eq!(check(text, mark, Some((appended, false))), Ok(mark));
        let rewritten = b"uno\ntwo\nthree\n";
        assert!(
            check(text, mark, Some((rewritten, false))).is_err_and(|e| e.contains("rewritten"))
        );
        assert!(check(text, mark, Some((b"one\n", false))).is_err_and(|e| e.contains("shorter")));
        // A new file under the same name may get the same inode back: then the hashes decide.
        assert!(check(text, mark, Some((b"ONE\nTWO\nTHREE\n", true))).is_err());
    }

    #[test]
    fn an_absent_checkpoint_starts_at_the_beginning() {
        let dir = scratch("absent");
        let input = dir.join("in.ndjson");
        std::fs::write(&input, b"x\n").expect("input");
        let checkpoint = Checkpoint::load(&dir.join("none.json")).expect("load");
        assert_eq!(checkpoint.resume_point(&input).ok(), Some(Mark::default()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_foreign_file_is_refused() {
        let dir = scratch("foreign");
        let path = dir.join("ck.json");
        std::fs::write(&path, b"{\"something\": 1}").expect("write");
        assert!(matches!(
            Checkpoint::load(&path),
            Err(CheckpointError::Corrupt { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
