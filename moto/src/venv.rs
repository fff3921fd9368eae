//! The pinned Python environments: one venv per tool under `target/moto/`, named after its lock
//! file's digest, installed by `venv-launch` and re-used while the lock file is unchanged.

use std::path::PathBuf;

use venv_launch::venv::{self, Environment, Python};

use crate::{Config, Error};

/// A tool with a pinned environment of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `moto_server`, from `moto/requirements.lock` (`moto[server]`).
    Moto,
    /// `cfn-lint`, from `moto/cfn-lint.lock`.
    CfnLint,
    /// A Python with boto3, from `moto/boto3.lock`: the interpreter of the example producers
    /// (`conformance/examples/*.py`) that `conformance run` is shown on.
    Boto3,
}

impl Tool {
    /// The tool's name, as its venv and its messages call it.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Moto => "moto",
            Tool::CfnLint => "cfn-lint",
            Tool::Boto3 => "boto3",
        }
    }

    /// The hash-locked requirements (`uv pip compile --generate-hashes`).
    pub fn lock(self) -> &'static str {
        match self {
            Tool::Moto => include_str!("../requirements.lock"),
            Tool::CfnLint => include_str!("../cfn-lint.lock"),
            Tool::Boto3 => include_str!("../boto3.lock"),
        }
    }

    /// The executable the environment provides.
    pub fn executable(self) -> &'static str {
        match self {
            Tool::Moto => "moto_server",
            Tool::CfnLint => "cfn-lint",
            Tool::Boto3 => "python",
        }
    }

    /// A short digest of the lock file: the venv's name.
    pub fn digest(self) -> String {
        venv::digest(self.lock())
    }
}

/// Returns the tool's executable, installing its environment first if needed.
pub(crate) fn ensure(config: &Config, tool: Tool) -> Result<PathBuf, Error> {
    let environment = Environment {
        name: tool.name(),
        lock: tool.lock(),
        venv: config
            .state_dir
            .join(format!("venv-{}-{}", tool.name(), tool.digest())),
        python: Python {
            configured: config.python.as_deref(),
            names: &["python3.13", "python3.12", "python3.11", "python3"],
            pyenv_versions: &[],
            min: (3, 9),
            hint: "install Python 3 or set MOTO_PYTHON",
        },
        index_url: config.index_url.as_deref(),
    };
    Ok(venv::ensure(&environment)?.bin(tool.executable()))
}
