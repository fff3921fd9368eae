//! Starting `nats-server -js`: on a loopback port the kernel picks (`-p -1`, read back from the
//! ports file the server writes, so that no other process can take the port in between), with
//! its JetStream store, ports file and log in a directory of its own, waited for until it
//! answers the protocol with JetStream on. [`Nats`] is the handle of a server of its own.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use venv_launch::process::{Process, Wait};

use crate::{Config, Error, NatsUrl, protocol, venv};

/// How long a start may take before it is reported as failed (it takes well under a second),
/// and how often to look meanwhile.
const WAIT: Wait = Wait {
    timeout: Duration::from_secs(30),
    poll: Duration::from_millis(50),
};
/// How long a server may take to go after SIGTERM before it is killed.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(5);

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
        self.own.as_ref().map(|own| own.process.id())
    }

    /// The server's log file, when it is one of its own.
    pub fn log(&self) -> Option<&Path> {
        self.own.as_ref().map(|own| own.process.log())
    }

    /// The JetStream store directory, when it is one of its own.
    pub fn store_dir(&self) -> Option<&Path> {
        self.own.as_ref().map(|own| own.store.as_path())
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(own) = &mut self.own {
            own.process.stop(&command_line(&own.store), STOP_GRACE);
            let _ = std::fs::remove_dir_all(&own.dir);
        }
    }
}

/// A server this crate started.
#[derive(Debug)]
pub(crate) struct Launched {
    pub(crate) process: Process,
    pub(crate) url: NatsUrl,
    /// Holds `store`, the ports file and the log.
    pub(crate) dir: PathBuf,
    /// The `--store_dir` argument: also what identifies the process in `/proc`.
    pub(crate) store: PathBuf,
}

/// What `/proc/PID/cmdline` of a server of ours contains: its `--store_dir`, an absolute path
/// that no other server of ours is given.
pub(crate) fn command_line(store: &Path) -> Cow<'_, str> {
    store.to_string_lossy()
}

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
        std::fs::remove_dir_all(&dir).map_err(venv_launch::Error::io(&dir))?;
    }
    let launched = launch(&binary, &dir)?;
    Ok(Nats {
        url: launched.url.clone(),
        own: Some(launched),
    })
}

/// Starts the server with its files in `dir` (created if needed; its store is kept) and waits
/// until it answers; on failure the process group is killed and the error carries its log's
/// end.
pub(crate) fn launch(binary: &Path, dir: &Path) -> Result<Launched, Error> {
    let store = dir.join("store");
    let ports = dir.join("ports");
    let log = dir.join("nats-server.log");
    for needed in [&store, &ports] {
        std::fs::create_dir_all(needed).map_err(venv_launch::Error::io(needed))?;
    }
    let mut command = Command::new(binary);
    command
        .args(["--addr", "127.0.0.1", "--port", "-1", "--jetstream"])
        .arg("--store_dir")
        .arg(&store)
        .arg("--ports_file_dir")
        .arg(&ports);
    // Its own process group: stopping kills exactly what was started, and a Ctrl-C in the
    // terminal that started a persistent server does not reach it.
    let mut process = Process::spawn("nats-server", &mut command, &log)?;
    let pid = process.id();
    let mut answered = None;
    process.wait_ready(WAIT, || {
        let port = read_port(&ports, pid).ok_or("it has not written its ports file")?;
        let url = NatsUrl::loopback(port);
        protocol::probe(&url).map_err(|error| error.to_string())?;
        answered = Some(url);
        Ok(())
    })?;
    let url = answered.expect("wait_ready passes only once the probe has answered");
    Ok(Launched {
        process,
        url,
        dir: dir.to_owned(),
        store,
    })
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
