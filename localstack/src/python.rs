//! LocalStack's pinned Python environment: `requirements.lock`, installed by `venv-launch` into
//! `venv-DIGEST` under the state directory, from a Python >= 3.12.

use venv_launch::venv::{self, Environment, Python, Venv};

use crate::{Config, Error, REQUIREMENTS_LOCK, lock_digest};

/// Returns the venv, installing the environment first if needed.
pub(crate) fn ensure_venv(config: &Config) -> Result<Venv, Error> {
    let environment = Environment {
        name: "localstack",
        lock: REQUIREMENTS_LOCK,
        venv: config.state_dir.join(format!("venv-{}", lock_digest())),
        python: Python {
            configured: config.python.as_deref(),
            names: &["python3.13", "python3.12"],
            pyenv_versions: &["3.13.", "3.12."],
            min: (3, 12),
            hint: "install Python 3.13 or set LOCALSTACK_PYTHON",
        },
        index_url: config.index_url.as_deref(),
    };
    Ok(venv::ensure(&environment)?)
}
