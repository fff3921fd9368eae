//! The pinned Python environments: one venv per tool under `target/moto/`, named after its lock
//! file's digest, installed with uv once and re-used while the lock file is unchanged.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{Config, Error};

/// A tool with a pinned environment of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `moto_server`, from `moto/requirements.lock` (`moto[server]`).
    Moto,
    /// `cfn-lint`, from `moto/cfn-lint.lock`.
    CfnLint,
}

impl Tool {
    /// The tool's name, as its venv and its messages call it.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Moto => "moto",
            Tool::CfnLint => "cfn-lint",
        }
    }

    /// The hash-locked requirements (`uv pip compile --generate-hashes`).
    pub fn lock(self) -> &'static str {
        match self {
            Tool::Moto => include_str!("../requirements.lock"),
            Tool::CfnLint => include_str!("../cfn-lint.lock"),
        }
    }

    /// The executable the environment provides.
    pub fn executable(self) -> &'static str {
        match self {
            Tool::Moto => "moto_server",
            Tool::CfnLint => "cfn-lint",
        }
    }

    /// A short digest of the lock file: the venv's name.
    pub fn digest(self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.lock().as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// Returns the tool's executable, installing its environment first if needed.
pub(crate) fn ensure(config: &Config, tool: Tool) -> Result<PathBuf, Error> {
    let venv = config
        .state_dir
        .join(format!("venv-{}-{}", tool.name(), tool.digest()));
    let executable = venv.join("bin").join(tool.executable());
    let marker = venv.join(".installed");
    if marker.exists() {
        return Ok(executable);
    }
    // Parallel test binaries race here: the first installs, the others wait and re-use it.
    std::fs::create_dir_all(&config.state_dir).map_err(Error::io(&config.state_dir))?;
    let lock_path = config
        .state_dir
        .join(format!("install-{}.lock", tool.name()));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(Error::io(&lock_path))?;
    lock.lock().map_err(Error::io(&lock_path))?;
    if marker.exists() {
        return Ok(executable);
    }
    install(config, tool, &venv)?;
    std::fs::write(&marker, tool.digest()).map_err(Error::io(&marker))?;
    eprintln!("moto: the {} environment is ready", tool.name());
    Ok(executable)
}

fn install(config: &Config, tool: Tool, venv: &Path) -> Result<(), Error> {
    let base = find_python(config)?;
    eprintln!(
        "moto: first-time set-up of the pinned {} environment in {}",
        tool.name(),
        venv.display()
    );
    if venv.exists() {
        std::fs::remove_dir_all(venv).map_err(Error::io(venv))?;
    }
    let python = venv.join("bin").join("python");
    run(
        tool,
        Command::new(&base).args(["-m", "venv"]).arg(venv),
        "python -m venv",
    )?;
    let uv = match find_uv() {
        Some(uv) => uv,
        None => {
            eprintln!("moto: installing uv into the venv");
            run(
                tool,
                Command::new(&python).args(["-m", "pip", "install", "--quiet", "uv"]),
                "pip install uv",
            )?;
            venv.join("bin").join("uv")
        }
    };
    let lock = config
        .state_dir
        .join(format!("{}-{}.lock", tool.name(), tool.digest()));
    std::fs::write(&lock, tool.lock()).map_err(Error::io(&lock))?;
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
    run(tool, &mut sync, "uv pip sync")?;
    Ok(())
}

/// `MOTO_PYTHON`, then the usual names on PATH.
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

fn is_usable(python: &Path) -> bool {
    Command::new(python)
        .args([
            "-c",
            "import sys, venv; sys.exit(0 if sys.version_info >= (3, 9) else 1)",
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

fn run(tool: Tool, command: &mut Command, step: &str) -> Result<Output, Error> {
    let failed = |detail: String| Error::Install {
        tool: tool.name(),
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
