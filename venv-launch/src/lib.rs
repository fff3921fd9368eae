//! The mechanics shared by the crates that hand out a server from a pinned Python environment
//! (`localstack`, `moto`, `nats-launch`), and nothing about any one server:
//!
//! - [`venv`]: install a hash-locked requirements file into a venv with uv, once, under a file
//!   lock, and re-use it while the lock file is unchanged.
//! - [`process`]: start a command in a process group of its own with its output in a log file,
//!   wait until it answers, and end the group only while `/proc` shows that the pid is still the
//!   process that was started.
//! - [`http`]: a minimal HTTP/1.0 client for health checks and a server's own API.
//! - [`tcp`]: a TCP connection with timeouts, for a check in HTTP or in a server's own
//!   protocol.
//! - [`port`]: ports of 127.0.0.1 that are free.
//! - [`lock`]: an exclusive file lock, held until it is dropped.
//!
//! Which lock file, which command line, which health answer and where things go are the
//! callers' business: they say it in [`venv::Environment`], a [`std::process::Command`] and a
//! readiness closure.
//!
//! This crate reads no environment variable; its callers' `Config::from_env` do. Two commands
//! are found on `PATH`, as any command is: `uv` (used when `uv --version` answers, else pip
//! installs uv into the venv) and `pyenv` (asked for its root only when a caller lists pyenv
//! versions to try). The processes it starts (python, pip, uv, the servers) inherit the
//! environment, so pip's and uv's own settings (`PIP_*`, `UV_*`) apply to them.
//!
//! Unix only: process groups, `kill` and `/proc`.

pub mod http;
pub mod lock;
pub mod port;
pub mod process;
pub mod tcp;
pub mod venv;

use std::path::{Path, PathBuf};

/// Why an environment could not be installed or a process could not be launched.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No interpreter that [`venv::Python`] describes is usable.
    #[error("no Python >= {min} for {name}; tried {tried}: {hint}")]
    NoPython {
        /// The environment's name.
        name: String,
        /// The lowest usable version, such as `3.12`.
        min: String,
        /// The interpreters tried, comma-separated.
        tried: String,
        /// What to do about it.
        hint: String,
    },
    /// A step of the installation failed.
    #[error("installing the {name} environment failed at `{step}`: {detail}")]
    Install {
        /// The environment's name.
        name: String,
        /// The command that failed.
        step: String,
        /// The end of its output.
        detail: String,
    },
    /// A launched process did not become ready in time, or exited.
    #[error("{name} did not become ready: {reason}; last lines of {log}:\n{tail}")]
    NotReady {
        /// The process's name.
        name: String,
        /// Timeout or exit, and what the last readiness check saw.
        reason: String,
        /// The log file.
        log: PathBuf,
        /// Its last lines.
        tail: String,
    },
    /// A file or a process could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The file, or the program.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
}

impl Error {
    /// The [`Error::Io`] of `path`, for `map_err`; a launcher's own files (its state file, its
    /// lock's directory) can fail with it too.
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The last `n` lines of `text`, joined by newlines.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines() {
        let check = |text: &str, n: usize, expected: &str| {
            assert_eq!(last_lines(text, n), expected, "{text:?} {n}");
        };
        check("", 3, "");
        check("a\nb\nc\n", 2, "b\nc");
        check("a\nb", 5, "a\nb");
        check("a\r\nb\r\n", 1, "b");
        check("a\nb", 0, "");
    }
}
