//! Servers as processes: started in a process group of their own with their output in a log
//! file, waited for until they answer, and ended (the whole group) only while `/proc` shows that
//! the pid is still the process that was started, never a pid the system has handed on.
//!
//! Signals go through the `kill` command, so that this crate needs no `unsafe` and no libc.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, last_lines};

/// How many lines of the log an error shows.
const TAIL_LINES: usize = 20;

/// A process started by [`Process::spawn`]. Dropping it leaves the process running: call
/// [`Process::stop`] to end it, or keep its [`id`](Process::id) to end it later with
/// [`stop_group`].
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

/// How long to wait for a process to become ready, and how often to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    /// How long it may take before the start is reported as failed.
    pub timeout: Duration,
    /// How long to sleep between two readiness checks.
    pub poll: Duration,
}

impl Process {
    /// Starts `command` in a process group of its own (so that a Ctrl-C in the caller's
    /// terminal does not reach it and [`stop_group`] ends exactly what it started), with stdin
    /// from `/dev/null` and stdout and stderr into `log`, created or truncated. `name` is what
    /// errors call it.
    pub fn spawn(name: &str, command: &mut Command, log: &Path) -> Result<Process, Error> {
        let out = File::create(log).map_err(Error::io(log))?;
        let err = out.try_clone().map_err(Error::io(log))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(Error::io(Path::new(command.get_program())))?;
        Ok(Process {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        })
    }

    /// The process id, which is also its process group's id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Polls `ready` until it passes. Fails if the process exits first, or if `wait.timeout`
    /// passes (then the group is killed); the error carries the log's last lines and what the
    /// last check said.
    pub fn wait_ready(
        &mut self,
        wait: Wait,
        mut ready: impl FnMut() -> Result<(), String>,
    ) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().map_err(Error::io(&self.log))? {
                return Err(self.not_ready(format!("the process exited ({status})")));
            }
            let reason = match ready() {
                Ok(()) => return Ok(()),
                Err(reason) => reason,
            };
            if started.elapsed() > wait.timeout {
                signal_group(self.id(), "-KILL");
                let _ = self.child.wait();
                return Err(self.not_ready(format!(
                    "not ready after {}s ({reason})",
                    wait.timeout.as_secs()
                )));
            }
            std::thread::sleep(wait.poll);
        }
    }

    /// Ends the process group as [`stop_group`] does, then reaps the process.
    pub fn stop(&mut self, command_line: &str, grace: Duration) {
        stop_group(self.id(), command_line, grace);
        let _ = self.child.wait();
    }

    fn not_ready(&self, reason: String) -> Error {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        Error::NotReady {
            name: self.name.clone(),
            reason,
            log: self.log.clone(),
            tail: last_lines(&text, TAIL_LINES),
        }
    }
}

/// Whether `pid` is a live process whose command line contains `command_line` (such as
/// `moto_server`): the process that was started, not another that has been given its pid.
pub fn is_running(pid: u32, command_line: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| cmdline_contains(&cmdline, command_line))
}

/// Ends the process group that `pid` leads, if [`is_running`] says `pid` is still the process
/// that was started: SIGTERM, then SIGKILL if it has not gone within `grace`. Returns whether
/// it was running.
pub fn stop_group(pid: u32, command_line: &str, grace: Duration) -> bool {
    if !is_running(pid, command_line) {
        return false;
    }
    signal_group(pid, "-TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
        match stat {
            Ok(stat) if !is_zombie(&stat) => std::thread::sleep(Duration::from_millis(50)),
            _ => return true,
        }
    }
    signal_group(pid, "-KILL");
    true
}

fn signal_group(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}

/// Whether a `/proc/PID/cmdline` (arguments separated by NUL bytes) contains `needle`.
fn cmdline_contains(cmdline: &[u8], needle: &str) -> bool {
    String::from_utf8_lossy(cmdline).contains(needle)
}

/// Whether a `/proc/PID/stat` line says the process is a zombie: the state follows the command
/// name in parentheses, which may itself hold parentheses and spaces.
fn is_zombie(stat: &str) -> bool {
    stat.rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_command_line() {
        let check = |cmdline: &[u8], needle: &str, expected: bool| {
            assert_eq!(
                cmdline_contains(cmdline, needle),
                expected,
                "{needle} in {cmdline:?}"
            );
        };
        let localstack = b"/t/venv-ab/bin/python\0-m\0localstack.runtime.main\0";
        check(localstack, "localstack.runtime.main", true);
        check(localstack, "moto_server", false);
        check(
            b"/t/venv-moto-cd/bin/python\0/t/venv-moto-cd/bin/moto_server\0-H\x00127.0.0.1\0",
            "moto_server",
            true,
        );
        check(b"", "moto_server", false);
    }

    #[test]
    fn recognises_zombies() {
        let check = |stat: &str, expected: bool| assert_eq!(is_zombie(stat), expected, "{stat}");
        check("4242 (moto_server) Z 1 4242 4242 0 -1", true);
        check("4242 (moto_server) S 1 4242 4242 0 -1", false);
        check("4242 (a) Z (b)) R 1 4242", false);
        check("4242 (a) R (b)) Z 1 4242", true);
        check("", false);
    }

    /// Whether `pid` shows `command_line` within five seconds: `spawn` returns once the exec
    /// has begun, and until the kernel has set the new program's arguments `/proc/PID/cmdline`
    /// is empty.
    fn until_running(pid: u32, command_line: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if is_running(pid, command_line) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn our_own_process_is_running_until_stopped() {
        let dir = std::env::temp_dir().join(format!("venv-launch-process-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let log = dir.join("sleep.log");
        let mut process =
            Process::spawn("sleep", Command::new("sleep").arg("30"), &log).expect("sleep starts");
        let pid = process.id();
        assert!(until_running(pid, "sleep"), "sleep {pid} runs");
        assert!(!is_running(pid, "moto_server"), "{pid} is not moto");
        assert!(
            !stop_group(pid, "moto_server", Duration::from_secs(1)),
            "another command line is left alone"
        );
        assert!(is_running(pid, "sleep"), "sleep {pid} still runs");
        process.stop("sleep", Duration::from_secs(5));
        assert!(!is_running(pid, "sleep"), "sleep {pid} was stopped");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_process_that_exits_is_not_ready_and_its_log_says_why() {
        let dir = std::env::temp_dir().join(format!("venv-launch-exit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let log = dir.join("exit.log");
        let mut command = Command::new("sh");
        command.args(["-c", "echo starting; echo broken >&2; exit 3"]);
        let mut process = Process::spawn("exiter", &mut command, &log).expect("sh starts");
        let wait = Wait {
            timeout: Duration::from_secs(10),
            poll: Duration::from_millis(20),
        };
        let error = process
            .wait_ready(wait, || Err("no answer".to_owned()))
            .expect_err("it exits");
        let message = error.to_string();
        assert!(
            message.starts_with("exiter did not become ready: the process exited"),
            "{message}"
        );
        assert!(message.ends_with("starting\nbroken"), "{message}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
