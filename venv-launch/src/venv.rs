//! Hash-locked Python environments: a venv per lock file, installed with uv once and re-used
//! while the lock file is unchanged.
//!
//! For an [`Environment`] whose venv is `DIR/NAME`, [`ensure`] keeps this layout:
//! - `DIR/NAME/`: the venv. `DIR/NAME/.installed` holds the lock file's [`digest`] once
//!   `uv pip sync` has finished, so that a venv without it (an install cut short) or with
//!   another digest is made again from scratch.
//! - `DIR/NAME/requirements.lock`: the copy of the lock file uv installs from.
//! - `DIR/NAME.lock`: the file lock on which racing installers (parallel test binaries)
//!   serialise: the first installs, the others wait and re-use its venv.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{Error, last_lines, lock};

/// How many lines of a failed step's stderr an error shows.
const TAIL_LINES: usize = 15;

/// A hash-locked environment, and where and how to install it.
#[derive(Debug, Clone)]
pub struct Environment<'a> {
    /// What messages call it, such as `localstack` or `cfn-lint`.
    pub name: &'a str,
    /// The hash-locked requirements (`uv pip compile --generate-hashes`).
    pub lock: &'a str,
    /// The venv's directory. Name it after the lock file's [`digest`], so that a changed lock
    /// file gets a venv of its own and the old one is not torn down under a running server.
    pub venv: PathBuf,
    /// The interpreter that creates the venv.
    pub python: Python<'a>,
    /// An index for uv (`--index-url`), such as the machine's `PIP_INDEX_URL`.
    pub index_url: Option<&'a str>,
}

/// Where to look for the interpreter that creates a venv, in this order: `configured`, `names`
/// on `PATH`, then pyenv's installed versions; the first of at least version `min` that has
/// `venv` and `ensurepip` is taken.
#[derive(Debug, Clone)]
pub struct Python<'a> {
    /// The interpreter the caller's configuration names (such as `LOCALSTACK_PYTHON`).
    pub configured: Option<&'a Path>,
    /// Commands looked up on `PATH`, such as `python3.13`.
    pub names: &'a [&'a str],
    /// Prefixes of pyenv's version directories, such as `3.13.`: their `bin/python3`, newest
    /// first. Empty: pyenv is not asked.
    pub pyenv_versions: &'a [&'a str],
    /// The lowest usable version, such as `(3, 12)`.
    pub min: (u32, u32),
    /// What the error says to do when none is usable, such as `install Python 3.13 or set
    /// LOCALSTACK_PYTHON`.
    pub hint: &'a str,
}

/// An installed venv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Venv {
    dir: PathBuf,
}

impl Venv {
    /// An executable the environment provides, `bin/NAME`, such as `python` or `moto_server`.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }
}

/// The venv of `environment`, installed first if it is not yet (or not completely) there.
pub fn ensure(environment: &Environment<'_>) -> Result<Venv, Error> {
    let venv = Venv {
        dir: environment.venv.clone(),
    };
    let digest = digest(environment.lock);
    let marker = venv.dir.join(".installed");
    if is_installed(&marker, &digest) {
        return Ok(venv);
    }
    if let Some(parent) = venv.dir.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
    }
    let _lock = lock::exclusive(&install_lock(&venv.dir))?;
    if is_installed(&marker, &digest) {
        return Ok(venv);
    }
    install(environment, &venv)?;
    std::fs::write(&marker, &digest).map_err(Error::io(&marker))?;
    eprintln!("{}: environment ready", environment.name);
    Ok(venv)
}

/// A short digest of a lock file: the first 8 bytes of its SHA-256, in hex.
pub fn digest(lock: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(lock.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn is_installed(marker: &Path, digest: &str) -> bool {
    std::fs::read_to_string(marker).is_ok_and(|text| text.trim() == digest)
}

/// `DIR/NAME.lock` for the venv `DIR/NAME`.
fn install_lock(venv: &Path) -> PathBuf {
    let mut name = venv.file_name().map(OsString::from).unwrap_or_default();
    name.push(".lock");
    venv.with_file_name(name)
}

fn install(environment: &Environment<'_>, venv: &Venv) -> Result<(), Error> {
    let name = environment.name;
    let base = find_python(environment)?;
    eprintln!(
        "{name}: first-time set-up of the pinned environment in {} (a minute or two)",
        venv.dir.display()
    );
    if venv.dir.exists() {
        std::fs::remove_dir_all(&venv.dir).map_err(Error::io(&venv.dir))?;
    }
    eprintln!("{name}: creating a venv with {}", base.display());
    run(
        name,
        Command::new(&base).args(["-m", "venv"]).arg(&venv.dir),
        "python -m venv",
    )?;
    let python = venv.bin("python");
    let uv = match find_uv() {
        Some(uv) => uv,
        None => {
            eprintln!("{name}: installing uv into the venv");
            run(
                name,
                Command::new(&python).args(["-m", "pip", "install", "--quiet", "uv"]),
                "pip install uv",
            )?;
            venv.bin("uv")
        }
    };
    let requirements = venv.dir.join("requirements.lock");
    std::fs::write(&requirements, environment.lock).map_err(Error::io(&requirements))?;
    eprintln!("{name}: installing the locked requirements");
    let mut sync = Command::new(uv);
    sync.args([
        "pip",
        "sync",
        "--require-hashes",
        "--native-tls",
        "--python",
    ])
    .arg(&python)
    .arg(&requirements);
    if let Some(index) = environment.index_url {
        sync.args(["--index-url", index]);
    }
    run(name, &mut sync, "uv pip sync")?;
    Ok(())
}

fn find_python(environment: &Environment<'_>) -> Result<PathBuf, Error> {
    let python = &environment.python;
    let mut candidates: Vec<PathBuf> = python.configured.iter().map(|p| p.to_path_buf()).collect();
    candidates.extend(python.names.iter().map(PathBuf::from));
    if !python.pyenv_versions.is_empty()
        && let Some(root) = pyenv_root()
    {
        let versions = std::fs::read_dir(root.join("versions"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned());
        candidates.extend(
            newest_first(versions, python.pyenv_versions)
                .into_iter()
                .map(|version| {
                    root.join("versions")
                        .join(version)
                        .join("bin")
                        .join("python3")
                }),
        );
    }
    let check = version_check(python.min);
    if let Some(found) = candidates.iter().find(|c| is_usable(c, &check)) {
        return Ok(found.clone());
    }
    let tried = candidates
        .iter()
        .map(|c| c.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(Error::NoPython {
        name: environment.name.to_owned(),
        min: format!("{}.{}", python.min.0, python.min.1),
        tried,
        hint: python.hint.to_owned(),
    })
}

fn pyenv_root() -> Option<PathBuf> {
    succeeded(Command::new("pyenv").arg("root"))
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
}

/// The versions that start with one of `prefixes`, newest first: `3.13.10` before `3.13.9`, a
/// release before its pre-releases (`3.13.0` before `3.13.0rc1`).
fn newest_first(versions: impl IntoIterator<Item = String>, prefixes: &[&str]) -> Vec<String> {
    let mut chosen: Vec<String> = versions
        .into_iter()
        .filter(|v| prefixes.iter().any(|p| v.starts_with(p)))
        .collect();
    // Each dot-separated part compares by its number, then a part with nothing after the number
    // (a release) above one with a suffix (`0rc1`), then by the suffix.
    let key = |version: &String| -> Vec<(u64, bool, String)> {
        version
            .split('.')
            .map(|part| {
                let suffix = part.trim_start_matches(|c: char| c.is_ascii_digit());
                let number = part[..part.len() - suffix.len()].parse().unwrap_or(0);
                (number, suffix.is_empty(), suffix.to_owned())
            })
            .collect()
    };
    chosen.sort_by_key(|v| std::cmp::Reverse(key(v)));
    chosen
}

/// The Python program that exits 0 only on an interpreter of at least `min` that can make a
/// venv with pip in it: with `venv` and `ensurepip` (Debian's has `ensurepip` only with
/// `python3-venv`, and `python -m venv` fails without it).
fn version_check((major, minor): (u32, u32)) -> String {
    format!(
        "import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= ({major}, {minor}) else 1)"
    )
}

fn is_usable(python: &Path, check: &str) -> bool {
    succeeded(Command::new(python).args(["-c", check])).is_some()
}

/// `uv` on `PATH`, if it answers.
fn find_uv() -> Option<PathBuf> {
    succeeded(Command::new("uv").arg("--version")).map(|_| "uv".into())
}

/// The output of `command`, if it could be run and exited 0.
fn succeeded(command: &mut Command) -> Option<Output> {
    command.output().ok().filter(|o| o.status.success())
}

fn run(name: &str, command: &mut Command, step: &str) -> Result<Output, Error> {
    let failed = |detail: String| Error::Install {
        name: name.to_owned(),
        step: step.to_owned(),
        detail,
    };
    let output = command.output().map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(failed(last_lines(&stderr, TAIL_LINES)));
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_the_first_eight_bytes_of_sha256() {
        let check = |lock: &str, expected: &str| assert_eq!(digest(lock), expected, "{lock:?}");
        check("", "e3b0c44298fc1c14");
        check("abc", "ba7816bf8f01cfea");
    }

    #[test]
    fn the_install_lock_sits_beside_the_venv() {
        let check = |venv: &str, expected: &str| {
            assert_eq!(install_lock(Path::new(venv)), Path::new(expected), "{venv}");
        };
        check(
            "target/moto/venv-moto-0a1b",
            "target/moto/venv-moto-0a1b.lock",
        );
        check(
            "target/localstack/venv-3.13.x",
            "target/localstack/venv-3.13.x.lock",
        );
    }

    #[test]
    fn orders_pyenv_versions_newest_first() {
        let check = |versions: &[&str], prefixes: &[&str], expected: &[&str]| {
            let versions = versions.iter().map(|v| (*v).to_owned());
            assert_eq!(newest_first(versions, prefixes), expected, "{prefixes:?}");
        };
        check(
            &["3.12.1", "3.13.9", "3.11.7", "3.13.10", "system", "3.13.0"],
            &["3.13.", "3.12."],
            &["3.13.10", "3.13.9", "3.13.0", "3.12.1"],
        );
        check(
            &["3.13.0a1", "3.13.0", "3.13.1rc2", "3.13.0rc1"],
            &["3.13."],
            &["3.13.1rc2", "3.13.0", "3.13.0rc1", "3.13.0a1"],
        );
        check(&["3.11.7"], &["3.13."], &[]);
        check(&["3.13.0"], &[], &[]);
    }

    #[test]
    fn the_version_check_names_the_minimum() {
        assert_eq!(
            version_check((3, 12)),
            "import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 12) else 1)"
        );
    }

    #[test]
    fn a_matching_marker_means_installed() {
        let dir = std::env::temp_dir().join(format!("venv-launch-marker-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let marker = dir.join(".installed");
        assert!(!is_installed(&marker, "e3b0c44298fc1c14"), "no marker yet");
        std::fs::write(&marker, "e3b0c44298fc1c14").expect("write marker");
        assert!(is_installed(&marker, "e3b0c44298fc1c14"));
        assert!(
            !is_installed(&marker, "ba7816bf8f01cfea"),
            "another lock file"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
