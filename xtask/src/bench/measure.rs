//! What a process costs, as the operating system counts it: CPU seconds, peak RSS, wall time.
//!
//! Without a dependency on `libc` there is no `wait4`, so `/proc` is read instead: the child's
//! peak RSS (`VmHWM`) is polled while it runs, and its CPU time is read once it is a zombie,
//! when `/proc/PID/stat` still holds the final figures of every thread and before it is reaped.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// Clock ticks per second of `/proc/*/stat` (`USER_HZ`, 100 on every Linux architecture).
const TICKS_PER_SECOND: f64 = 100.0;

/// How often a running child is looked at.
const POLL: Duration = Duration::from_millis(20);

/// The cost of one process run.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Usage {
    /// From spawn to exit.
    pub(super) wall: f64,
    /// User plus system CPU seconds.
    pub(super) cpu: f64,
    /// Peak resident set, in bytes.
    pub(super) peak_rss: u64,
}

/// A finished process: its exit, its output and its cost.
#[derive(Debug)]
pub(super) struct Finished {
    pub(super) status: ExitStatus,
    pub(super) stdout: String,
    pub(super) stderr: String,
    pub(super) usage: Usage,
}

/// A running child whose output is collected and whose cost is measured.
#[derive(Debug)]
pub(super) struct Measured {
    child: Child,
    started: Instant,
    peak_rss: u64,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
}

impl Measured {
    /// Spawns `command` with stdout and stderr captured; with `stdin`, its standard input is a
    /// pipe handed back to the caller.
    pub(super) fn spawn(
        command: &mut Command,
        stdin: bool,
    ) -> Result<(Measured, Option<ChildStdin>)> {
        Self::spawn_watching(command, stdin, |_| {})
    }

    /// Like [`Measured::spawn`], and `on_line` sees each line of stderr as it comes.
    pub(super) fn spawn_watching(
        command: &mut Command,
        stdin: bool,
        mut on_line: impl FnMut(&str) + Send + 'static,
    ) -> Result<(Measured, Option<ChildStdin>)> {
        command
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot run {}", command.get_program().to_string_lossy()))?;
        let mut out = child.stdout.take().context("no stdout")?;
        let err = child.stderr.take().context("no stderr")?;
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            text
        });
        let stderr = std::thread::spawn(move || {
            // Keep the end only: a long run may say a lot.
            let mut kept = String::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                on_line(&line);
                kept.push_str(&line);
                kept.push('\n');
                if kept.len() > 64 * 1024 {
                    kept.drain(..32 * 1024);
                }
            }
            kept
        });
        let input = child.stdin.take();
        let measured = Measured {
            child,
            started,
            peak_rss: 0,
            stdout,
            stderr,
        };
        Ok((measured, input))
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's current resident set, in bytes (0 once it has exited).
    pub(super) fn rss(&self) -> u64 {
        status_field(self.pid(), "VmRSS:").unwrap_or(0)
    }

    /// Looks at the child once: records its peak RSS, and says whether it has exited.
    pub(super) fn poll(&mut self) -> bool {
        if let Some(hwm) = status_field(self.pid(), "VmHWM:") {
            self.peak_rss = self.peak_rss.max(hwm);
        }
        cpu_seconds(self.pid()).is_none_or(|(_, zombie)| zombie)
    }

    /// Waits for the child to exit, looking at it every few milliseconds.
    pub(super) fn wait(mut self) -> Result<Finished> {
        while !self.poll() {
            std::thread::sleep(POLL);
        }
        self.finish()
    }

    /// Kills the child and collects it.
    pub(super) fn kill(mut self) -> Result<Finished> {
        self.poll();
        self.child.kill().context("cannot kill the child")?;
        while !self.poll() {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.finish()
    }

    /// Reads the exited (zombie) child's CPU time, then reaps it.
    fn finish(mut self) -> Result<Finished> {
        let wall = self.started.elapsed().as_secs_f64();
        let cpu = cpu_seconds(self.pid()).map_or(0.0, |(cpu, _)| cpu);
        let status = self.child.wait().context("cannot wait for the child")?;
        let stdout = self.stdout.join().unwrap_or_default();
        let stderr = self.stderr.join().unwrap_or_default();
        Ok(Finished {
            status,
            stdout,
            stderr,
            usage: Usage {
                wall,
                cpu,
                peak_rss: self.peak_rss,
            },
        })
    }
}

/// Writes to a child's stdin from a thread, so that the caller can keep measuring.
pub(super) fn feed(
    stdin: ChildStdin,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<(u64, u64)> + Send + 'static,
) -> JoinHandle<std::io::Result<(u64, u64)>> {
    std::thread::spawn(move || {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, stdin);
        let written = write(&mut out)?;
        out.flush()?;
        Ok(written)
    })
}

/// The CPU seconds of process `pid` (all its threads), and whether it has exited.
pub(super) fn cpu_seconds(pid: u32) -> Option<(f64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields are counted after the last `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let state = fields.first()?;
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((
        (utime + stime) / TICKS_PER_SECOND,
        *state == "Z" || *state == "X",
    ))
}

/// The busy and total CPU seconds of the whole machine, all cores together.
pub(super) fn machine_cpu() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: f64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4).unwrap_or(&0.0);
    Some(((total - idle) / TICKS_PER_SECOND, total / TICKS_PER_SECOND))
}

/// A `kB` field of `/proc/PID/status`, in bytes.
fn status_field(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(name))?;
    let kib: u64 = line[name.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
