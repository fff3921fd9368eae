//! Starting `nats-server -js`: on a loopback port the kernel picks (`-p -1`, read back from the
//! ports file the server writes, so that no other process can take the port in between), with
//! its JetStream store, ports file and log in a directory of its own, waited for until it
//! answers the protocol with JetStream on. [`Nats`] is the handle of a server of its own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{Config, Error, NatsUrl, process, protocol, venv};

/// A NATS server with JetStream: one of its own, stopped when this is dropped, or the external
/// one of `NATS_URL`, which is left alone.
#[derive(Debug)]
pub struct Nats {
    url: NatsUrl,
    own: Option<Launched>,
}

impl Nats {
    /// The server's URL, such as `nats://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.url.port()
    }

    /// The server's pid (and process group), when it is one of its own.
    pub fn pid(&self) -> Option<u32> {
        self.own.as_ref().map(|own| own.child.id())
    }

    /// The server's log file, when it is one of its own.
    pub fn log(&self) -> Option<&Path> {
        self.own.as_ref().map(|own| own.log.as_path())
    }

    /// The JetStream store directory, when it is one of its own.
    pub fn store_dir(&self) -> Option<&Path> {
        self.own.as_ref().map(|own| own.store.as_path())
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(own) = &mut self.own {
            process::stop_group(own.child.id(), own.store.as_os_str());
            let _ = own.child.wait();
            let _ = std::fs::remove_dir_all(&own.dir);
        }
    }
}

/// A server this crate started.
#[derive(Debug)]
pub(crate) struct Launched {
    pub(crate) child: Child,
    pub(crate) url: NatsUrl,
    /// Holds `store`, the ports file and `log`.
    pub(crate) dir: PathBuf,
    /// The `--store_dir` argument: also what identifies the process in `/proc`.
    pub(crate) store: PathBuf,
    pub(crate) log: PathBuf,
}

/// How long a start may take before it is reported as failed (it takes well under a second).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn start(config: &Config) -> Result<Nats, Error> {
    if let Some(url) = &config.external {
        protocol::probe(url)?;
        return Ok(Nats {
            url: url.clone(),
            own: None,
        });
    }
    let binary = venv::ensure(config)?;
    static STARTED: AtomicU32 = AtomicU32::new(0);
    let n = STARTED.fetch_add(1, Ordering::Relaxed);
    let dir = config
        .state_dir
        .join("servers")
        .join(format!("{}-{n}", std::process::id()));
    // A directory of a dead process that had this pid; no server of ours uses it.
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(Error::io(&dir))?;
    }
    let launched = launch(&binary, &dir)?;
    Ok(Nats {
        url: launched.url.clone(),
        own: Some(launched),
    })
}

/// Starts the server with its files in `dir` (created if needed; its store is kept) and waits
/// until it answers; on failure the process is stopped and the error carries its log's end.
pub(crate) fn launch(binary: &Path, dir: &Path) -> Result<Launched, Error> {
    let store = dir.join("store");
    let ports = dir.join("ports");
    let log = dir.join("nats-server.log");
    for needed in [&store, &ports] {
        std::fs::create_dir_all(needed).map_err(Error::io(needed))?;
    }
    let mut child = process::spawn(
        Command::new(binary)
            .args(["--addr", "127.0.0.1", "--port", "-1", "--jetstream"])
            .arg("--store_dir")
            .arg(&store)
            .arg("--ports_file_dir")
            .arg(&ports),
        &log,
    )?;
    let pid = child.id();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(Error::io(binary))? {
            return Err(not_ready(format!("the process exited ({status})"), &log));
        }
        let reason = match read_port(&ports, pid) {
            None => "it has not written its ports file".to_owned(),
            Some(port) => {
                let url = NatsUrl::loopback(port);
                match protocol::probe(&url) {
                    Ok(_) => {
                        return Ok(Launched {
                            child,
                            url,
                            dir: dir.to_owned(),
                            store,
                            log,
                        });
                    }
                    Err(error) => error.to_string(),
                }
            }
        };
        if started.elapsed() > READY_TIMEOUT {
            process::stop_group(pid, store.as_os_str());
            let _ = child.wait();
            return Err(not_ready(
                format!("not ready after {}s ({reason})", READY_TIMEOUT.as_secs()),
                &log,
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The client port from the ports file `nats-server` writes once it listens
/// (`DIR/nats-server_PID.ports`).
fn read_port(ports: &Path, pid: u32) -> Option<u16> {
    let suffix = format!("_{pid}.ports");
    std::fs::read_dir(ports)
        .ok()?
        .flatten()
        .find(|entry| entry.file_name().to_string_lossy().ends_with(&suffix))
        .and_then(|entry| std::fs::read_to_string(entry.path()).ok())
        .and_then(|text| client_port(&text))
}

/// The loopback client port in a ports file, `{"nats":["nats://127.0.0.1:PORT"], ...}`.
fn client_port(text: &str) -> Option<u16> {
    #[derive(serde::Deserialize)]
    struct Ports {
        nats: Vec<String>,
    }
    let ports: Ports = serde_json::from_str(text).ok()?;
    ports.nats.iter().find_map(|url| {
        url.strip_prefix("nats://127.0.0.1:")
            .and_then(|port| port.parse().ok())
    })
}

fn not_ready(reason: String, log: &Path) -> Error {
    Error::NotReady {
        reason,
        log: log.display().to_string(),
        tail: process::log_tail(log, 20),
    }
}

#[cfg(test)]
mod tests {
    use super::client_port;

    fn check(text: &str, expected: Option<u16>) {
        assert_eq!(client_port(text), expected, "for {text:?}");
    }

    #[test]
    fn ports_files() {
        // What nats-server 2.15.1 writes with `--addr 127.0.0.1 --port -1`.
        check(r#"{"nats":["nats://127.0.0.1:39117"]}"#, Some(39117));
        check(
            r#"{"nats":["nats://127.0.0.1:4222"],"monitoring":["http://127.0.0.1:8222"]}"#,
            Some(4222),
        );
        check(r#"{"nats":["nats://10.0.0.5:4222"]}"#, None);
        check(r#"{"nats":[]}"#, None);
        // A file caught half-written.
        check(r#"{"nats":["nats://127.0.0."#, None);
    }
}
