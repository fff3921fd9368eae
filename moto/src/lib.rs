//! Hands out moto's server mode, an AWS emulator that can enforce IAM, `cfn-lint`, and a Python
//! with boto3 (the interpreter of the example producers `conformance run` is shown on), each from
//! a Python environment pinned by a hash-locked requirements file and installed once under
//! `target/moto/`.
//!
//! Every [`start`] gets a server of its own on a free loopback port, stopped when the returned
//! [`Moto`] is dropped. Turning IAM authorization on ([`Moto::enforce_iam`]) changes the whole
//! server, so a server shared by parallel tests would refuse the others' set-up; moto starts in
//! about a second, so one per caller costs little. Racing installers serialise on a file lock.
//!
//! [`Config::from_env`] is the only function of this crate that reads the environment.

mod server;
mod venv;

use std::path::{Path, PathBuf};

pub use crate::server::Moto;
pub use crate::venv::Tool;

/// The account every moto resource belongs to.
pub const ACCOUNT_ID: &str = "123456789012";
/// The region moto is used with.
pub const REGION: &str = "us-east-1";
/// Credentials for the set-up done while IAM authorization is still off (moto accepts any).
pub const ACCESS_KEY: &str = "testing";
/// The secret that goes with [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "testing";

/// Where and how to install the tools.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the venvs, their install locks and the servers' logs live.
    pub state_dir: PathBuf,
    /// The Python interpreter (>= 3.9); searched for when `None`.
    pub python: Option<PathBuf>,
    /// An index URL for installing the environments, from the machine's pip settings.
    pub index_url: Option<String>,
}

/// Why moto or a tool could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An environment could not be installed, or the server did not become ready in time, or
    /// exited.
    #[error(transparent)]
    Launch(#[from] venv_launch::Error),
    /// The server refused a request of its own API.
    #[error("moto's {path} answered: {reason}")]
    Api {
        /// The API path.
        path: &'static str,
        /// What went wrong.
        reason: String,
    },
}

impl Config {
    /// Reads `MOTO_PYTHON`, `CARGO_TARGET_DIR` and `PIP_INDEX_URL`.
    pub fn from_env() -> Config {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let target = var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| project_root().join("target"));
        Config {
            state_dir: target.join("moto"),
            python: var("MOTO_PYTHON").map(PathBuf::from),
            index_url: var("PIP_INDEX_URL"),
        }
    }
}

/// Starts a server of its own with `config`, installing moto first if needed.
pub fn start(config: &Config) -> Result<Moto, Error> {
    server::start(config)
}

/// [`start`] with [`Config::from_env`]: what tests use.
pub fn start_default() -> Result<Moto, Error> {
    start(&Config::from_env())
}

/// The path of `tool`'s executable, installing its environment first if needed.
pub fn tool(config: &Config, tool: Tool) -> Result<PathBuf, Error> {
    venv::ensure(config, tool)
}

/// The workspace root, known at compile time.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_default()
}
