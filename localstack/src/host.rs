//! The host backend: LocalStack as a local process group, shared through a state file and
//! started by exactly one caller under a file lock.

use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{Config, Error, health, python};

/// How long a start may take before it is reported as failed.
const READY_TIMEOUT: Duration = Duration::from_secs(180);
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
    let python = python::ensure_venv(config)?;
    let port = pick_port(config.port)?;
    let log = config.log_path();
    let volume = config.state_dir.join("volume");
    std::fs::create_dir_all(&volume).map_err(Error::io(&volume))?;
    let log_file = File::create(&log).map_err(Error::io(&log))?;
    let log_err = log_file.try_clone().map_err(Error::io(&log))?;
    let host = format!("127.0.0.1:{port}");
    let mut child = Command::new(&python)
        .args(["-m", "localstack.runtime.main"])
        .env("GATEWAY_LISTEN", &host)
        .env("LOCALSTACK_HOST", &host)
        .env("SERVICES", crate::SERVICES.join(","))
        .env("LOCALSTACK_VOLUME_DIR", &volume)
        .env("SQS_ENDPOINT_STRATEGY", "path")
        .env("DISABLE_EVENTS", "1")
        .env("SKIP_SSL_CERT_DOWNLOAD", "1")
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        // Its own process group: `stop` kills exactly that group, and a Ctrl-C in the terminal
        // of the test that started it does not take the shared instance down.
        .process_group(0)
        .spawn()
        .map_err(Error::io(&python))?;
    let endpoint = format!("http://{host}");
    let state = State {
        pid: child.id(),
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
    loop {
        if let Some(status) = child.try_wait().map_err(Error::io(&python))? {
            return Err(not_ready(format!("the process exited ({status})"), &log));
        }
        let reason = match health::check(&endpoint) {
            Ok(()) => break,
            Err(reason) => reason,
        };
        if started.elapsed() > READY_TIMEOUT {
            kill_group(state.pid);
            return Err(not_ready(
                format!("not healthy after {}s ({reason})", READY_TIMEOUT.as_secs()),
                &log,
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
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
    let running = is_ours(state.pid);
    if running {
        kill_group(state.pid);
    }
    std::fs::remove_file(&path).map_err(Error::io(&path))?;
    Ok(running)
}

fn state_path(config: &Config) -> PathBuf {
    config.state_dir.join("state.json")
}

fn lock(config: &Config) -> Result<File, Error> {
    std::fs::create_dir_all(&config.state_dir).map_err(Error::io(&config.state_dir))?;
    let path = config.state_dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(Error::io(&path))?;
    file.lock().map_err(Error::io(&path))?;
    Ok(file)
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
    if is_ours(state.pid) && health::check(&state.endpoint).is_ok() {
        return Ok(Some(state));
    }
    Ok(None)
}

/// Whether `pid` is still a LocalStack process (and not a re-used pid).
fn is_ours(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("localstack.runtime.main"))
}

fn pick_port(requested: Option<u16>) -> Result<u16, Error> {
    let free = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
    match requested {
        Some(port) if free(port) => Ok(port),
        Some(port) => Err(Error::PortInUse(port)),
        None if free(DEFAULT_PORT) => Ok(DEFAULT_PORT),
        None => {
            let listener =
                TcpListener::bind(("127.0.0.1", 0)).map_err(Error::io(Path::new("127.0.0.1:0")))?;
            let port = listener
                .local_addr()
                .map_err(Error::io(Path::new("127.0.0.1:0")))?
                .port();
            Ok(port)
        }
    }
}

/// SIGTERM to the group, then SIGKILL if it has not gone within ten seconds.
fn kill_group(pid: u32) {
    let signal = |sig: &str| {
        let _ = Command::new("kill")
            .args([sig, "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
    };
    signal("-TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    signal("-KILL");
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

fn not_ready(reason: String, log: &Path) -> Error {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    Error::NotReady {
        reason,
        log: log.display().to_string(),
        tail,
    }
}
