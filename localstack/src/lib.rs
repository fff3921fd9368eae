//! Hands out a running LocalStack, from one of three backends.
//!
//! - **external**: `LOCALSTACK_ENDPOINT` names one; its health is checked and it is used as is.
//! - **host** (the default, no Docker needed): LocalStack runs as a local process from a Python
//!   environment pinned by `localstack/requirements.lock`, installed once under `target/`. The
//!   instance is shared: a state file records its pid, port and endpoint, and callers that race
//!   (parallel test binaries) serialise on a file lock so that exactly one starts it.
//! - **container**: testcontainers runs an image (feature `container`).
//!
//! [`Config::from_env`] is the only function of the workspace's libraries that reads the
//! environment; everything else takes a [`Config`].

mod health;
mod host;
mod python;

#[cfg(feature = "container")]
mod container;

use std::fmt;
use std::path::{Path, PathBuf};

pub use host::State;

/// The region LocalStack is used with.
pub const REGION: &str = "us-east-1";
/// LocalStack accepts any credentials; these are the conventional ones.
pub const ACCESS_KEY: &str = "test";
/// The secret that goes with [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "test";
/// The services every backend starts.
pub const SERVICES: [&str; 4] = ["sqs", "iam", "sts", "cloudformation"];
/// The default image of the container backend: the last tag that starts without an auth token.
pub const DEFAULT_IMAGE: &str = "localstack/localstack:4.14.0";

/// The pinned Python environment (`uv pip compile --exclude-newer 2026-03-28`).
pub const REQUIREMENTS_LOCK: &str = include_str!("../requirements.lock");

/// Which way LocalStack is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An instance someone else runs, at `LOCALSTACK_ENDPOINT`.
    External,
    /// A local process from the pinned Python environment.
    Host,
    /// A container started through testcontainers.
    Container,
}

/// Where and how to obtain LocalStack.
#[derive(Debug, Clone)]
pub struct Config {
    /// The backend.
    pub backend: Backend,
    /// The endpoint of an external instance.
    pub endpoint: Option<String>,
    /// A fixed port for the host backend; by default 4566 when free, else any free port.
    pub port: Option<u16>,
    /// The Python interpreter for the host backend (>= 3.12); searched for when `None`.
    pub python: Option<PathBuf>,
    /// The image of the container backend.
    pub image: String,
    /// An auth token for images that need one; never logged.
    pub auth_token: Option<String>,
    /// Where the host backend keeps its venv, state file, lock and logs.
    pub state_dir: PathBuf,
    /// An index URL for installing the Python environment, from the machine's pip settings.
    pub index_url: Option<String>,
}

/// Why LocalStack could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `LOCALSTACK_BACKEND` holds something else.
    #[error("LOCALSTACK_BACKEND=`{0}` is not one of external, host, container")]
    UnknownBackend(String),
    /// The external backend was chosen without an endpoint.
    #[error(
        "LOCALSTACK_BACKEND=external needs LOCALSTACK_ENDPOINT (for example http://127.0.0.1:4566)"
    )]
    NoEndpoint,
    /// The external endpoint does not answer as a healthy LocalStack.
    #[error("LocalStack at {endpoint} is not healthy: {reason}")]
    Unhealthy {
        /// The endpoint.
        endpoint: String,
        /// What the health check saw.
        reason: String,
    },
    /// The Python environment could not be installed, or the host process did not become ready
    /// in time, or exited.
    #[error(transparent)]
    Launch(#[from] venv_launch::Error),
    /// The requested port is taken by something that is not our LocalStack.
    #[error(
        "port {0} is already in use by another process: stop it or set LOCALSTACK_PORT to a free port"
    )]
    PortInUse(u16),
    /// The container backend is not compiled in or failed.
    #[error("container backend: {0}")]
    Container(String),
    /// A file under the state directory could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}

impl Config {
    /// Reads `LOCALSTACK_BACKEND`, `LOCALSTACK_ENDPOINT`, `LOCALSTACK_PORT`, `LOCALSTACK_PYTHON`,
    /// `LOCALSTACK_IMAGE`, `LOCALSTACK_AUTH_TOKEN`, `CARGO_TARGET_DIR` and `PIP_INDEX_URL`.
    pub fn from_env() -> Result<Config, Error> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let endpoint = var("LOCALSTACK_ENDPOINT");
        let backend = match var("LOCALSTACK_BACKEND").as_deref() {
            None if endpoint.is_some() => Backend::External,
            None | Some("host") => Backend::Host,
            Some("external") => Backend::External,
            Some("container") => Backend::Container,
            Some(other) => return Err(Error::UnknownBackend(other.to_owned())),
        };
        let target = var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| project_root().join("target"));
        Ok(Config {
            backend,
            endpoint,
            port: var("LOCALSTACK_PORT").and_then(|p| p.parse().ok()),
            python: var("LOCALSTACK_PYTHON").map(PathBuf::from),
            image: var("LOCALSTACK_IMAGE").unwrap_or_else(|| DEFAULT_IMAGE.to_owned()),
            auth_token: var("LOCALSTACK_AUTH_TOKEN"),
            state_dir: target.join("localstack"),
            index_url: var("PIP_INDEX_URL"),
        })
    }

    /// The host backend's log file.
    pub fn log_path(&self) -> PathBuf {
        self.state_dir.join("localstack.log")
    }
}

/// A running LocalStack. Dropping it stops a container; a host process is shared and lives on
/// until [`stop`].
pub struct LocalStack {
    endpoint: String,
    backend: Backend,
    started: bool,
    #[cfg(feature = "container")]
    _container: Option<container::Guard>,
}

impl fmt::Debug for LocalStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalStack")
            .field("endpoint", &self.endpoint)
            .field("backend", &self.backend)
            .field("started", &self.started)
            .finish()
    }
}

impl LocalStack {
    /// The gateway's URL, such as `http://127.0.0.1:4566`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The backend it came from.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether this call started it (rather than re-using a running one).
    pub fn started(&self) -> bool {
        self.started
    }
}

/// Starts LocalStack with `config`, or re-uses a healthy running instance.
pub fn start(config: &Config) -> Result<LocalStack, Error> {
    let handle = |endpoint, started| LocalStack {
        endpoint,
        backend: config.backend,
        started,
        #[cfg(feature = "container")]
        _container: None,
    };
    match config.backend {
        Backend::External => {
            let endpoint = config.endpoint.clone().ok_or(Error::NoEndpoint)?;
            let endpoint = endpoint.trim_end_matches('/').to_owned();
            health::check(&endpoint).map_err(|reason| Error::Unhealthy { endpoint: endpoint.clone(), reason })?;
            Ok(handle(endpoint, false))
        }
        Backend::Host => {
            let (state, started) = host::start(config)?;
            Ok(handle(state.endpoint, started))
        }
        #[cfg(feature = "container")]
        Backend::Container => {
            let (endpoint, guard) = container::start(config)?;
            Ok(LocalStack { endpoint, backend: Backend::Container, started: true, _container: Some(guard) })
        }
        #[cfg(not(feature = "container"))]
        Backend::Container => Err(Error::Container(
            "this build has no container backend: enable the `container` feature of the localstack crate, or use `cargo xtask test --backend container`"
                .into(),
        )),
    }
}

/// [`start`] with [`Config::from_env`]: what tests and `--localstack` flags use.
pub fn shared() -> Result<LocalStack, Error> {
    start(&Config::from_env()?)
}

/// The host backend's recorded instance, if it is running and healthy.
pub fn status(config: &Config) -> Result<Option<State>, Error> {
    host::status(config)
}

/// Stops the host backend's instance, killing exactly the process group it started. Returns
/// whether there was one to stop.
pub fn stop(config: &Config) -> Result<bool, Error> {
    host::stop(config)
}

/// The workspace root, known at compile time.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_default()
}

/// A short digest of the lock file: the venv's name, and the local image's label.
pub fn lock_digest() -> String {
    venv_launch::venv::digest(REQUIREMENTS_LOCK)
}
