//! One `moto_server` process group per [`Moto`]: started on a free loopback port, waited for,
//! and ended (after `/proc` shows the pid is still moto) when the handle is dropped.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use venv_launch::process::{Process, Wait};
use venv_launch::{http, port};

use crate::venv::{self, Tool};
use crate::{Config, Error};

/// How long a start may take, and how often to ask meanwhile.
const WAIT: Wait = Wait {
    timeout: Duration::from_secs(60),
    poll: Duration::from_millis(100),
};
/// How long moto may take to go after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// What `/proc/PID/cmdline` of a moto server contains.
const COMMAND_LINE: &str = "moto_server";

/// A running moto server of its own; dropping it stops the server.
#[derive(Debug)]
pub struct Moto {
    process: Process,
    endpoint: String,
}

impl Moto {
    /// The server's URL, such as `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The server's log file.
    pub fn log(&self) -> &Path {
        self.process.log()
    }

    /// Turns IAM authorization on from the next request: every request is then checked against
    /// the policies of the key that signed it (`POST /moto-api/reset-auth` with `0`).
    pub fn enforce_iam(&self) -> Result<(), Error> {
        const PATH: &str = "/moto-api/reset-auth";
        let api = |reason| Error::Api { path: PATH, reason };
        match http::post(&self.endpoint, PATH, "text/plain", "0") {
            Ok(answer) if answer.status == 200 => Ok(()),
            Ok(answer) => Err(api(format!(
                "HTTP {}: {}",
                answer.status,
                answer.body.trim()
            ))),
            Err(reason) => Err(api(reason)),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.process.stop(COMMAND_LINE, STOP_GRACE);
    }
}

pub(crate) fn start(config: &Config) -> Result<Moto, Error> {
    let server = venv::ensure(config, Tool::Moto)?;
    let port = port::free()?;
    let log = config.state_dir.join(format!("moto-{port}.log"));
    let mut command = Command::new(&server);
    command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    // Its own process group, so that dropping the handle ends exactly what was started.
    let mut moto = Moto {
        process: Process::spawn("moto", &mut command, &log)?,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    // Any HTTP answer means the server is listening; moto has no health endpoint.
    let endpoint = moto.endpoint.clone();
    moto.process
        .wait_ready(WAIT, || http::get(&endpoint, "/moto-api/").map(drop))?;
    Ok(moto)
}
