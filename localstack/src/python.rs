//! The pinned Python environment of the host backend: find an interpreter, install the lock file
//! into a venv under `target/` once, and re-use it while the lock file is unchanged.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{Config, Error, REQUIREMENTS_LOCK, lock_digest};

/// Returns the venv's interpreter, installing the environment first if needed.
pub(crate) fn ensure_venv(config: &Config) -> Result<PathBuf, Error> {
    let venv = config.state_dir.join(format!("venv-{}", lock_digest()));
    let python = venv.join("bin").join("python");
    let marker = venv.join(".installed");
    if marker.exists() {
        return Ok(python);
    }
    let base = find_python(config)?;
    eprintln!(
        "localstack: first-time set-up of the pinned environment in {} (a minute or two)",
        venv.display()
    );
    if venv.exists() {
        std::fs::remove_dir_all(&venv).map_err(Error::io(&venv))?;
    }
    std::fs::create_dir_all(&config.state_dir).map_err(Error::io(&config.state_dir))?;
    eprintln!("localstack: creating a venv with {}", base.display());
    run(
        Command::new(&base).args(["-m", "venv"]).arg(&venv),
        "python -m venv",
    )?;
    let uv = match find_uv() {
        Some(uv) => uv,
        None => {
            eprintln!("localstack: installing uv into the venv");
            run(
                Command::new(&python).args(["-m", "pip", "install", "--quiet", "uv"]),
                "pip install uv",
            )?;
            venv.join("bin").join("uv")
        }
    };
    let lock = config
        .state_dir
        .join(format!("requirements-{}.lock", lock_digest()));
    std::fs::write(&lock, REQUIREMENTS_LOCK).map_err(Error::io(&lock))?;
    eprintln!("localstack: installing localstack-core and its locked dependencies");
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
    std::fs::write(&marker, lock_digest()).map_err(Error::io(&marker))?;
    eprintln!("localstack: environment ready");
    Ok(python)
}

/// `LOCALSTACK_PYTHON`, then python3.13/python3.12 on PATH, then pyenv's versions.
fn find_python(config: &Config) -> Result<PathBuf, Error> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(python) = &config.python {
        candidates.push(python.clone());
    }
    candidates.push("python3.13".into());
    candidates.push("python3.12".into());
    let pyenv_root = Command::new("pyenv")
        .arg("root")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(root) = pyenv_root {
        let mut versions: Vec<PathBuf> = std::fs::read_dir(root.join("versions"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                name.starts_with("3.13.") || name.starts_with("3.12.")
            })
            .collect();
        versions.sort();
        candidates.extend(
            versions
                .into_iter()
                .rev()
                .map(|v| v.join("bin").join("python3")),
        );
    }
    for candidate in &candidates {
        if is_usable(candidate) {
            return Ok(candidate.clone());
        }
    }
    let tried = candidates
        .iter()
        .map(|c| c.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(Error::NoPython { tried })
}

fn is_usable(python: &Path) -> bool {
    Command::new(python)
        .args([
            "-c",
            "import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)",
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
    let output = command.output().map_err(|e| Error::Install {
        step: step.to_owned(),
        detail: e.to_string(),
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let detail = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
        return Err(Error::Install {
            step: step.to_owned(),
            detail,
        });
    }
    Ok(output)
}
