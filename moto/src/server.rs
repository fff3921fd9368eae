//! One `moto_server` process group per [`Moto`]: started on a free loopback port, waited for,
//! and killed (after checking `/proc` that the pid is still moto) when the handle is dropped.

use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::venv::{self, Tool};
use crate::{Config, Error, http};

/// How long a start may take before it is reported as failed.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running moto server of its own; dropping it stops the server.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Moto {
    /// The server's URL, such as `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Turns IAM authorization on from the next request: every request is then checked against
    /// the policies of the key that signed it (`POST /moto-api/reset-auth` with `0`).
    pub fn enforce_iam(&self) -> Result<(), Error> {
        const PATH: &str = "/moto-api/reset-auth";
        let api = |reason| Error::Api { path: PATH, reason };
        match http::request(self.port, "POST", PATH, "text/plain", "0") {
            Ok((200, _)) => Ok(()),
            Ok((status, body)) => Err(api(format!("HTTP {status}: {}", body.trim()))),
            Err(reason) => Err(api(reason)),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let pid = self.child.id();
        if is_moto(pid) {
            kill_group(pid);
        }
        let _ = self.child.wait();
    }
}

pub(crate) fn start(config: &Config) -> Result<Moto, Error> {
    let server = venv::ensure(config, Tool::Moto)?;
    let port = free_port()?;
    let log = config.state_dir.join(format!("moto-{port}.log"));
    let log_file = File::create(&log).map_err(Error::io(&log))?;
    let log_err = log_file.try_clone().map_err(Error::io(&log))?;
    let child = Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        // Its own process group, so that dropping the handle kills exactly what was started.
        .process_group(0)
        .spawn()
        .map_err(Error::io(&server))?;
    let mut moto = Moto { child, port, log };
    let started = Instant::now();
    loop {
        if let Some(status) = moto.child.try_wait().map_err(Error::io(&server))? {
            return Err(not_ready(
                format!("the process exited ({status})"),
                &moto.log,
            ));
        }
        // Any HTTP answer means the server is listening; moto has no health endpoint.
        let reason = match http::request(port, "GET", "/moto-api/", "text/plain", "") {
            Ok(_) => return Ok(moto),
            Err(reason) => reason,
        };
        if started.elapsed() > READY_TIMEOUT {
            let error = not_ready(
                format!("no answer after {}s ({reason})", READY_TIMEOUT.as_secs()),
                &moto.log,
            );
            drop(moto);
            return Err(error);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port() -> Result<u16, Error> {
    let here = Path::new("127.0.0.1:0");
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(Error::io(here))?;
    Ok(listener.local_addr().map_err(Error::io(here))?.port())
}

/// Whether `pid` is still a moto server (and not a re-used pid).
fn is_moto(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("moto_server"))
}

/// SIGTERM to the group, then SIGKILL if it has not gone within five seconds.
fn kill_group(pid: u32) {
    let signal = |sig: &str| {
        let _ = Command::new("kill")
            .args([sig, "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
    };
    signal("-TERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !is_moto(pid) || is_zombie(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
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
