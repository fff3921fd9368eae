//! The persistent server of `cargo xtask nats`: started by exactly one caller under a file lock,
//! recorded in `state.json` (pid, port, URL, store, log) so that later commands find it, and
//! stopped only once `/proc` shows the recorded pid is still that server.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use venv_launch::lock::{self, FileLock};
use venv_launch::process;

use crate::server::{STOP_GRACE, command_line};
use crate::{Config, Error, NatsUrl, protocol, server, venv};

/// What the state file records of the persistent server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The process (and process group) id.
    pub pid: u32,
    /// The client port on 127.0.0.1.
    pub port: u16,
    /// The server's URL, `nats://127.0.0.1:PORT`.
    pub url: String,
    /// The JetStream store (the `--store_dir` argument that identifies the process).
    pub store_dir: PathBuf,
    /// The log file.
    pub log: PathBuf,
}

/// A server that outlives its caller: the recorded persistent one, or the external one.
#[derive(Debug, Clone)]
pub struct Shared {
    url: NatsUrl,
    state: Option<State>,
    started: bool,
}

impl Shared {
    /// The server's URL, such as `nats://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// What the state file records; `None` for the external server.
    pub fn state(&self) -> Option<&State> {
        self.state.as_ref()
    }

    /// Whether this call started it (rather than finding it running).
    pub fn started(&self) -> bool {
        self.started
    }
}

pub(crate) fn up(config: &Config) -> Result<Shared, Error> {
    if let Some(url) = &config.external {
        return external(url);
    }
    let _lock = lock(config)?;
    if let Some(running) = read_live(config) {
        return Ok(running);
    }
    // A recorded server that is still ours but does not answer holds the store: stop it first.
    if let Some(state) = read_state(&state_path(config)) {
        process::stop_group(state.pid, &command_line(&state.store_dir), STOP_GRACE);
    }
    let binary = venv::ensure(config)?;
    let launched = server::launch(&binary, &config.shared_dir)?;
    let state = State {
        pid: launched.process.id(),
        port: launched.url.port(),
        url: launched.url.to_string(),
        store_dir: launched.store.clone(),
        log: launched.process.log().to_owned(),
    };
    write_state(config, &state)?;
    eprintln!(
        "nats: started {} (pid {}, log {})",
        state.url,
        state.pid,
        state.log.display()
    );
    // Dropping the `Process` neither kills nor waits: the server lives on until `stop`.
    Ok(Shared {
        url: launched.url,
        state: Some(state),
        started: true,
    })
}

pub(crate) fn status(config: &Config) -> Result<Option<Shared>, Error> {
    if let Some(url) = &config.external {
        return external(url).map(Some);
    }
    let _lock = lock(config)?;
    Ok(read_live(config))
}

pub(crate) fn stop(config: &Config) -> Result<bool, Error> {
    if config.external.is_some() {
        return Ok(false);
    }
    let _lock = lock(config)?;
    let path = state_path(config);
    let Some(state) = read_state(&path) else {
        return Ok(false);
    };
    let running = process::stop_group(state.pid, &command_line(&state.store_dir), STOP_GRACE);
    std::fs::remove_file(&path).map_err(venv_launch::Error::io(&path))?;
    Ok(running)
}

fn external(url: &NatsUrl) -> Result<Shared, Error> {
    protocol::probe(url)?;
    Ok(Shared {
        url: url.clone(),
        state: None,
        started: false,
    })
}

fn state_path(config: &Config) -> PathBuf {
    config.shared_dir.join("state.json")
}

fn lock(config: &Config) -> Result<FileLock, Error> {
    let dir = &config.shared_dir;
    std::fs::create_dir_all(dir).map_err(venv_launch::Error::io(dir))?;
    Ok(lock::exclusive(&dir.join("lock"))?)
}

fn read_state(path: &Path) -> Option<State> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
}

/// The recorded server, if its pid is still that server and it answers with JetStream on.
fn read_live(config: &Config) -> Option<Shared> {
    let state = read_state(&state_path(config))?;
    if !process::is_running(state.pid, &command_line(&state.store_dir)) {
        return None;
    }
    let url = NatsUrl::loopback(state.port);
    protocol::probe(&url).ok()?;
    Some(Shared {
        url,
        state: Some(state),
        started: false,
    })
}

/// Written to a temporary file and renamed, so that a reader never sees half a state.
fn write_state(config: &Config, state: &State) -> Result<(), Error> {
    let path = state_path(config);
    let temporary = path.with_extension("json.tmp");
    let json = serde_json::to_string_pretty(state)
        .map_err(|e| venv_launch::Error::io(&path)(std::io::Error::other(e)))?;
    std::fs::write(&temporary, json).map_err(venv_launch::Error::io(&temporary))?;
    std::fs::rename(&temporary, &path).map_err(venv_launch::Error::io(&path))?;
    Ok(())
}
