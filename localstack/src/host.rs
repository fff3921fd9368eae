//! The host backend: LocalStack as a local process group, shared through a state file and
//! started by exactly one caller under a file lock.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use venv_launch::lock::{self, FileLock};
use venv_launch::port;
use venv_launch::process::{self, Process, Wait};

use crate::{Config, Error, health, python};

/// How long a start may take, and how often the health is asked meanwhile.
const WAIT: Wait = Wait {
    timeout: Duration::from_secs(180),
    poll: Duration::from_millis(250),
};
/// How long LocalStack may take to go after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// What `/proc/PID/cmdline` of our LocalStack contains.
const COMMAND_LINE: &str = "localstack.runtime.main";
/// The port LocalStack conventionally listens on.
const DEFAULT_PORT: u16 = 4566;

/// What the state file records of the running instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The process (and process group) id.
    pub pid: u32,
    /// The gateway's port on 127.0.0.1.
    pub port: u16,
    /// The gateway's URL.
    pub endpoint: String,
    /// The log file.
    pub log: PathBuf,
}

/// Starts the shared instance, or re-uses it; the flag says whether this call started it.
pub(crate) fn start(config: &Config) -> Result<(State, bool), Error> {
    let _lock = lock(config)?;
    if let Some(state) = read_healthy(config)? {
        return Ok((state, false));
    }
    let venv = python::ensure_venv(config)?;
    let port = pick_port(config.port)?;
    let log = config.log_path();
    let volume = config.state_dir.join("volume");
    std::fs::create_dir_all(&volume).map_err(Error::io(&volume))?;
    let host = format!("127.0.0.1:{port}");
    let mut command = Command::new(venv.bin("python"));
    command
        .args(["-m", COMMAND_LINE])
        .env("GATEWAY_LISTEN", &host)
        .env("LOCALSTACK_HOST", &host)
        .env("SERVICES", crate::SERVICES.join(","))
        .env("LOCALSTACK_VOLUME_DIR", &volume)
        .env("SQS_ENDPOINT_STRATEGY", "path")
        .env("DISABLE_EVENTS", "1")
        .env("SKIP_SSL_CERT_DOWNLOAD", "1");
    // Its own process group: `stop` ends exactly that group, and a Ctrl-C in the terminal of
    // the test that started it does not take the shared instance down. The handle is dropped
    // once it is ready: the process outlives this caller, and the state file keeps its pid.
    let mut process = Process::spawn("LocalStack", &mut command, &log)?;
    let endpoint = format!("http://{host}");
    let state = State {
        pid: process.id(),
        port,
        endpoint: endpoint.clone(),
        log: log.clone(),
    };
    eprintln!(
        "localstack: starting on {endpoint} (pid {}, log {})",
        state.pid,
        log.display()
    );
    let started = Instant::now();
    process.wait_ready(WAIT, || health::check(&endpoint))?;
    let path = state_path(config);
    let json = serde_json::to_string_pretty(&state).unwrap_or_default();
    std::fs::write(&path, json).map_err(Error::io(&path))?;
    eprintln!(
        "localstack: ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok((state, true))
}

/// The recorded instance, if it is ours and healthy.
pub(crate) fn status(config: &Config) -> Result<Option<State>, Error> {
    let _lock = lock(config)?;
    read_healthy(config)
}

/// Stops the recorded instance; returns whether one was running.
pub(crate) fn stop(config: &Config) -> Result<bool, Error> {
    let _lock = lock(config)?;
    let path = state_path(config);
    let Some(state) = read_state(&path) else {
        return Ok(false);
    };
    let running = process::stop_group(state.pid, COMMAND_LINE, STOP_GRACE);
    std::fs::remove_file(&path).map_err(Error::io(&path))?;
    Ok(running)
}

fn state_path(config: &Config) -> PathBuf {
    config.state_dir.join("state.json")
}

fn lock(config: &Config) -> Result<FileLock, Error> {
    std::fs::create_dir_all(&config.state_dir).map_err(Error::io(&config.state_dir))?;
    Ok(lock::exclusive(&config.state_dir.join("lock"))?)
}

fn read_state(path: &Path) -> Option<State> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
}

fn read_healthy(config: &Config) -> Result<Option<State>, Error> {
    let Some(state) = read_state(&state_path(config)) else {
        return Ok(None);
    };
    if process::is_running(state.pid, COMMAND_LINE) && health::check(&state.endpoint).is_ok() {
        return Ok(Some(state));
    }
    Ok(None)
}

fn pick_port(requested: Option<u16>) -> Result<u16, Error> {
    match requested {
        Some(port) if port::is_free(port) => Ok(port),
        Some(port) => Err(Error::PortInUse(port)),
        None if port::is_free(DEFAULT_PORT) => Ok(DEFAULT_PORT),
        None => Ok(port::free()?),
    }
}
