//! Processes this crate starts: each in a process group of its own with its output in a log
//! file, recognised again through `/proc/PID/cmdline` (so that a re-used pid is never
//! signalled), and stopped by signalling exactly that group.

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;

/// How long a process has between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// Starts `command` in a process group of its own, stdin closed and both outputs in `log`.
pub(crate) fn spawn(command: &mut Command, log: &Path) -> Result<Child, Error> {
    let out = File::create(log).map_err(Error::io(log))?;
    let err = out.try_clone().map_err(Error::io(log))?;
    let program = command.get_program().to_owned();
    command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own group: stopping kills exactly what was started, and a Ctrl-C in the terminal
        // that started a persistent server does not reach it.
        .process_group(0)
        .spawn()
        .map_err(Error::io(Path::new(&program)))
}

/// Whether `pid` is alive (not a zombie) and has `identity` as one of its arguments: still the
/// process that was started, not another one that got its pid.
pub(crate) fn is_running(pid: u32, identity: &OsStr) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    !is_zombie(pid)
        && cmdline
            .split(|&b| b == 0)
            .any(|arg| arg == identity.as_bytes())
}

/// SIGTERM to the group of `pid` if `pid` is still `identity`, then SIGKILL if it has not gone
/// within [`GRACE`]. Returns whether it was running.
pub(crate) fn stop_group(pid: u32, identity: &OsStr) -> bool {
    if !is_running(pid, identity) {
        return false;
    }
    let signal = |sig: &str| {
        let _ = Command::new("kill")
            .args([sig, "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
    };
    signal("-TERM");
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        if !is_running(pid, identity) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal("-KILL");
    true
}

/// The last `lines` lines of `log`.
pub(crate) fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::is_running;

    #[test]
    fn this_process_is_recognised_by_its_arguments_only() {
        let me = std::process::id();
        let arg0 = std::env::args_os().next().expect("argv[0]");
        assert!(is_running(me, &arg0));
        assert!(!is_running(me, OsStr::new("no such argument")));
        assert!(!is_running(u32::MAX, &arg0));
    }
}
