//! What the reliability tests share: a queue of their own, the real binary run with its peak
//! memory watched, reading the whole queue back, and the accounting of every input id.

// Each test crate uses a part of this module.
#![allow(dead_code)]

pub mod fault_proxy;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use testkit::TempDir;

/// The forwarder binary under test.
pub const FORWARDER: &str = env!("CARGO_BIN_EXE_forwarder");

/// A number from the environment, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A queue of its own for one test, in the embedded LocalStack, removed on drop, with a
/// scratch directory; the queue's client and URL through `Deref`.
#[derive(Debug)]
pub struct TestQueue {
    queue: testkit::TestQueue,
    /// LocalStack's endpoint.
    pub localstack: String,
    pub dir: TempDir,
}

impl TestQueue {
    /// A standard queue for messages up to 1 MiB.
    pub async fn new(prefix: &str) -> TestQueue {
        let queue = testkit::TestQueue::with(
            prefix,
            &[(QueueAttributeName::MaximumMessageSize, "1048576")],
        )
        .await;
        TestQueue {
            localstack: queue.endpoint.clone(),
            queue,
            dir: TempDir::new(&format!("forwarder-{prefix}")),
        }
    }

    /// Every message body in the queue, each once; the queue is drained.
    pub async fn read_all(&self) -> Vec<String> {
        self.queue
            .drain(0)
            .await
            .into_iter()
            .map(|m| m.body)
            .collect()
    }

    /// The arguments that point `forwarder` at this queue through `endpoint`.
    pub fn args(&self, endpoint: &str) -> Vec<String> {
        [
            "--queue-url",
            &self.queue.url,
            "--endpoint-url",
            endpoint,
            "--region",
            localstack::REGION,
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

impl Deref for TestQueue {
    type Target = testkit::TestQueue;

    fn deref(&self) -> &testkit::TestQueue {
        &self.queue
    }
}

/// A `forwarder` command with LocalStack's credentials and nothing inherited that could point
/// it elsewhere.
pub fn forwarder() -> Command {
    let mut command = Command::new(FORWARDER);
    command
        .env("AWS_ACCESS_KEY_ID", localstack::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", localstack::SECRET_KEY)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_SQS")
        .env_remove("AWS_PROFILE")
        .env_remove("RUST_LOG");
    command
}

/// A child process whose output is collected by threads (so it never blocks on a full pipe)
/// and whose peak resident memory is polled from /proc.
#[derive(Debug)]
pub struct Running {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    drains: Vec<JoinHandle<()>>,
    peak_kib: Arc<AtomicU64>,
    poller: Option<JoinHandle<()>>,
}

/// How a child ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The highest VmHWM seen, in KiB.
    pub peak_kib: u64,
    pub elapsed: Duration,
}

impl Running {
    /// Spawns `command` with stdout and stderr piped; stdin as the command says.
    pub fn spawn(command: &mut Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut drains = Vec::new();
        let mut drain = |mut pipe: Box<dyn Read + Send>| {
            let buffer = Arc::new(Mutex::new(Vec::new()));
            let shared = Arc::clone(&buffer);
            drains.push(std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    shared.lock().expect("lock").extend_from_slice(&chunk[..n]);
                }
            }));
            buffer
        };
        let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
        let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
        let peak_kib = Arc::new(AtomicU64::new(0));
        let status = PathBuf::from(format!("/proc/{}/status", child.id()));
        let peak = Arc::clone(&peak_kib);
        let poller = std::thread::spawn(move || {
            // A zombie's status has no VmHWM line: the process is gone.
            while let Some(kib) = vm_hwm(&status) {
                peak.fetch_max(kib, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Running {
            child,
            stdout,
            stderr,
            drains,
            peak_kib,
            poller: Some(poller),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.stdin.take()
    }

    /// What it wrote to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("lock")).into_owned()
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The peak resident memory so far, in KiB.
    pub fn peak_kib(&self) -> u64 {
        self.peak_kib.load(Ordering::Relaxed)
    }

    /// Sends SIGTERM through the `kill` command.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits at most `limit`, then kills it and panics.
    pub fn wait(mut self, limit: Duration) -> Finished {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "still running after {limit:?}; stderr:\n{}",
                    tail(&self.stderr_so_far(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(poller) = self.poller.take() {
            let _ = poller.join();
        }
        for drain in std::mem::take(&mut self.drains) {
            let _ = drain.join();
        }
        let text = |buffer: &Mutex<Vec<u8>>| {
            String::from_utf8_lossy(&buffer.lock().expect("lock")).into_owned()
        };
        Finished {
            status,
            stdout: text(&self.stdout),
            stderr: text(&self.stderr),
            peak_kib: self.peak_kib.load(Ordering::Relaxed),
            elapsed: started.elapsed(),
        }
    }
}

impl Drop for Running {
    /// A test that fails half-way leaves no process behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn vm_hwm(status: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(status).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The summary `--summary-json` printed (the last line of stdout).
pub fn summary(finished: &Finished) -> Value {
    let line = finished.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "summary is not JSON ({e}): {}\nstderr:\n{}",
            finished.stdout,
            tail(&finished.stderr, 40)
        )
    })
}

/// Waits for `serve`'s "listening on" line and returns its URL.
pub async fn listening(running: &mut Running) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stderr = running.stderr_so_far();
        // Only whole lines: the rest of the last one may not have been read yet.
        if let Some(url) = stderr
            .split_inclusive('\n')
            .filter(|line| line.ends_with('\n'))
            .find_map(|line| line.strip_prefix("listening on "))
        {
            return url.trim().to_owned();
        }
        assert!(
            running.running() && Instant::now() < deadline,
            "serve did not start: {stderr}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An event line with a known id and some data, about `pad` bytes of padding.
pub fn event_line(id: &str, i: u64, pad: usize) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"/reliability","type":"com.example.fault","data":{{"i":{i},"pad":"{}"}}}}"#,
        "p".repeat(pad)
    )
}

/// Writes `lines` as an NDJSON file.
pub fn write_lines(path: &Path, lines: &[String]) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create input"));
    for line in lines {
        file.write_all(line.as_bytes()).expect("write");
        file.write_all(b"\n").expect("write");
    }
    file.flush().expect("flush");
}

/// The dead-letter records of `path`: the id of each original line, with its reason.
pub fn dead_letters(path: &Path) -> Vec<(Option<String>, String, Value)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).expect("dead-letter record is JSON");
            let id = record["original"]
                .as_str()
                .and_then(|o| serde_json::from_str::<Value>(o).ok())
                .and_then(|o| o["id"].as_str().map(str::to_owned));
            let reason = record["reason"].as_str().unwrap_or_default().to_owned();
            (id, reason, record)
        })
        .collect()
}

/// The ids of message bodies, with how often each arrived.
pub fn id_counts(bodies: &[String]) -> HashMap<String, u64> {
    // Only the id is read: data may hold numbers no `f64` can hold.
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    let mut counts = HashMap::new();
    for body in bodies {
        let Id { id } = serde_json::from_str(body).expect("message body is an event");
        *counts.entry(id).or_default() += 1;
    }
    counts
}

/// Where every input id ended up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounting {
    /// Ids sent in.
    pub events: u64,
    /// Distinct input ids in the queue.
    pub delivered: u64,
    /// Input ids reported as not delivered and absent from the queue.
    pub dead_lettered: u64,
    /// Input ids reported as not delivered although they are in the queue (the answer was
    /// lost, the message was not).
    pub reported_but_queued: u64,
    /// Extra copies in the queue.
    pub duplicates: u64,
    /// Input ids neither in the queue nor reported.
    pub lost: u64,
    /// Ids in the queue that were never sent in.
    pub strangers: u64,
}

impl Accounting {
    /// Accounts for `inputs` given what the queue holds and what was reported.
    pub fn of(
        inputs: &[String],
        queued: &HashMap<String, u64>,
        reported: &HashSet<String>,
    ) -> Self {
        let mut a = Accounting {
            events: inputs.len() as u64,
            ..Accounting::default()
        };
        let known: HashSet<&str> = inputs.iter().map(String::as_str).collect();
        for id in inputs {
            match (queued.get(id), reported.contains(id)) {
                (Some(n), reported) => {
                    a.delivered += 1;
                    a.duplicates += n - 1;
                    a.reported_but_queued += u64::from(reported);
                }
                (None, true) => a.dead_lettered += 1,
                (None, false) => a.lost += 1,
            }
        }
        a.strangers = queued
            .keys()
            .filter(|id| !known.contains(id.as_str()))
            .count() as u64;
        a
    }
}

/// Appends one result to the file named by `FAULT_RESULTS`, for `cargo xtask soak`.
pub fn record_result(result: &Value) {
    let Some(path) = std::env::var_os("FAULT_RESULTS") else {
        return;
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open FAULT_RESULTS");
    writeln!(file, "{result}").expect("write FAULT_RESULTS");
}

/// Writes `DIR/NAME.json`, a connection file as `provisioner apply --out` writes it (0600), for
/// `queue_url` reached through `endpoint` with LocalStack's key.
pub fn connection_file(dir: &Path, name: &str, queue_url: &str, endpoint: &str) {
    use std::os::unix::fs::PermissionsExt;
    let config = serde_json::json!({
        "queueURL": queue_url,
        "region": localstack::REGION,
        "accessKey": localstack::ACCESS_KEY,
        "accessSecret": localstack::SECRET_KEY,
        "endpoint": endpoint,
    });
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, config.to_string()).expect("write the connection file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// A CloudEvent for `tenant` (the route extension), or none when `tenant` is `None`.
pub fn routed_event(id: &str, tenant: Option<&str>) -> String {
    let tenant = tenant.map_or_else(String::new, |t| format!(r#","tenant":"{t}""#));
    format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"/platform","type":"com.example.routed"{tenant},"data":{{"id":"{id}"}}}}"#
    )
}

/// The Prometheus text a running forwarder serves at `{base}/metrics`.
pub async fn metrics_text(client: &reqwest::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

/// An endpoint nothing listens on, so connections to it are refused at once: the local port
/// of a client connection, which no listener can take while the connection holds it (a port
/// merely given up would be free for any other test to listen on).
pub struct ClosedEndpoint {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _held: (std::net::TcpListener, std::net::TcpStream),
}

pub fn closed_endpoint() -> ClosedEndpoint {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = std::net::TcpStream::connect(listener.local_addr().expect("address"))
        .expect("connect to our own listener");
    let port = client.local_addr().expect("client address").port();
    ClosedEndpoint {
        url: format!("http://127.0.0.1:{port}"),
        _held: (listener, client),
    }
}
