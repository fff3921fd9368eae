//! Every byte `send` consumed is accounted for when it exits, however it exits: SIGTERM on a
//! pipe (the unread remainder is exactly the lines from `stoppedAt` on), `kill -9` followed by
//! `--resume` (nothing lost, duplicates within the stated bound), a dead-letter file that cannot
//! be written, a second signal while SQS does not answer, and closed stdout and stderr.
//!
//! `ACCOUNTING_EVENTS` (default 2,000) sizes the pipe and resume scenarios; `cargo xtask soak`
//! runs them at 20,000 and collects the lines each appends to the file named by `FAULT_RESULTS`.

mod support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::fault_proxy::{FaultProxy, Schedule, Window};
use support::{Accounting, Finished, Running, TestQueue, env_u64};

/// How long a run may take before the test calls it stuck.
const LIMIT: Duration = Duration::from_secs(300);

fn events() -> u64 {
    env_u64("ACCOUNTING_EVENTS", 2_000).max(100)
}

/// Ids unique to one test, and their event lines.
fn inputs(n: u64) -> (Vec<String>, Vec<String>) {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let ids: Vec<String> = (0..n).map(|i| format!("{}-{i}", &tag[..8])).collect();
    let lines = ids
        .iter()
        .zip(0..)
        .map(|(id, i)| support::event_line(id, i, 200))
        .collect();
    (ids, lines)
}

/// Waits until the proxy has seen `requests` requests, or the run has ended.
async fn wait_for_requests(proxy: &FaultProxy, running: &mut Running, requests: u64) {
    while running.running() && proxy.stats().requests.load(Ordering::Relaxed) < requests {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn finish(running: Running) -> Finished {
    tokio::task::spawn_blocking(move || running.wait(LIMIT))
        .await
        .expect("join")
}

/// The line number of a `stoppedAt` of `FILE:LINE`.
fn stopped_line(summary: &Value, label: &str) -> u64 {
    let at = summary["stoppedAt"]
        .as_str()
        .unwrap_or_else(|| panic!("no stoppedAt: {summary}"));
    let number = at
        .strip_prefix(label)
        .and_then(|rest| rest.strip_prefix(':'))
        .unwrap_or_else(|| panic!("stoppedAt {at} is not in {label}"));
    number.parse().expect("a line number")
}

/// The ids of the dead-letter file, each checked to name its line and a reason.
fn dead_lettered(path: &Path, ids: &[String]) -> HashSet<String> {
    let mut reported = HashSet::new();
    for (id, reason, record) in support::dead_letters(path) {
        assert!(!reason.is_empty(), "no reason: {record}");
        let id = id.unwrap_or_else(|| panic!("no id: {record}"));
        let line = record["line"].as_u64().expect("a line");
        assert_eq!(
            ids[line as usize - 1],
            id,
            "the record's line holds its event"
        );
        assert!(reported.insert(id), "reported twice: {record}");
    }
    reported
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_a_pipe_leaves_exactly_the_unread_lines() {
    let queue = TestQueue::new("accounting-pipe").await;
    let n = events();
    let (ids, lines) = inputs(n);
    let dead = queue.dir.join("dead.ndjson");
    let schedule = Schedule {
        seed: 13,
        delay: Duration::from_millis(100),
        ..Schedule::default()
    };
    let proxy = FaultProxy::start(&queue.localstack, schedule).await;
    // The test keeps a read end of the pipe: what the forwarder did not consume stays in it.
    let (reader, mut writer) = std::io::pipe().expect("pipe");
    let mut remainder = reader.try_clone().expect("clone the read end");
    let started = Instant::now();
    let mut running = Running::spawn(
        support::forwarder()
            .arg("send")
            .args(queue.args(proxy.endpoint()))
            .args(["--summary-json", "--dead-letter"])
            .arg(&dead)
            // The read-ahead grows with the most requests that may be in flight (`auto`: 64),
            // and the stop must land mid-stream: with 8, the lines read before the signal
            // stay under the input's.
            .args(["--max-in-flight", "8"])
            .stdin(Stdio::from(reader)),
    );
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let producer = std::thread::spawn(move || {
        writer
            .write_all(text.as_bytes())
            .expect("the pipe stays open");
    });
    wait_for_requests(&proxy, &mut running, n / 10 / 4).await;
    running.terminate();
    let finished = finish(running).await;
    let mut unread = Vec::new();
    remainder
        .read_to_end(&mut unread)
        .expect("read the remainder");
    producer.join().expect("producer");
    let summary = support::summary(&finished);
    let context = format!("{summary}\n{}", support::tail(&finished.stderr, 20));

    // The remainder in the pipe is exactly the lines from `stoppedAt` on.
    let first_unread = stopped_line(&summary, "<stdin>");
    assert!(first_unread > 1 && first_unread <= n, "{context}");
    let expected: String = lines[first_unread as usize - 1..]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        unread == expected.as_bytes(),
        "the unread remainder is {} bytes, the lines from {first_unread} on are {}: {context}",
        unread.len(),
        expected.len()
    );
    // Every line before it is in the queue or in the dead-letter file.
    let taken = &ids[..first_unread as usize - 1];
    let reported = dead_lettered(&dead, &ids);
    let queued = support::id_counts(&queue.read_all().await);
    let result = Accounting::of(taken, &queued, &reported);
    assert_eq!(
        (result.lost, result.strangers),
        (0, 0),
        "{result:?} {context}"
    );
    assert_eq!(
        summary["read"].as_u64(),
        Some(first_unread - 1),
        "{context}"
    );
    assert_eq!(finished.status.code(), Some(143), "{context}");
    record(&json!({
        "scenario": "SIGTERM on a pipe",
        "mode": "send (stdin)",
        "events": n,
        "read": first_unread - 1,
        "delivered": result.delivered,
        "deadLettered": result.dead_lettered,
        "reportedButQueued": result.reported_but_queued,
        "duplicates": result.duplicates,
        "lost": result.lost,
        "exit": finished.status.code(),
        "peakKiB": finished.peak_kib,
        "seconds": seconds(started),
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_resume_loses_nothing() {
    let queue = TestQueue::new("accounting-resume").await;
    let n = events();
    let (ids, lines) = inputs(n);
    let input = queue.dir.join("input.ndjson");
    let checkpoint = queue.dir.join("checkpoint.json");
    support::write_lines(&input, &lines);
    let schedule = Schedule {
        seed: 9,
        delay: Duration::from_millis(20),
        ..Schedule::default()
    };
    let proxy = FaultProxy::start(&queue.localstack, schedule).await;
    let max_in_flight = 2u64;
    let run = || {
        Running::spawn(
            support::forwarder()
                .arg("send")
                .args(queue.args(proxy.endpoint()))
                .args(["--summary-json", "--max-in-flight"])
                .arg(max_in_flight.to_string())
                .arg("--checkpoint")
                .arg(&checkpoint)
                .arg("--resume")
                .arg(&input)
                .stdin(Stdio::null()),
        )
    };
    // Kills at random moments spread over the run (about n / 10 requests in all).
    let mut rng = fastrand::Rng::with_seed(env_u64("ACCOUNTING_SEED", 99));
    let kills = 3u64;
    let started = Instant::now();
    let mut killed = 0;
    for k in 0..kills {
        let share = n / 10 / (kills + 1);
        let at = share * k + rng.u64(1..=share.max(1));
        let mut running = run();
        wait_for_requests(&proxy, &mut running, at).await;
        if running.running() {
            killed += 1;
        }
        // Dropping a running child kills it with SIGKILL.
        drop(running);
    }
    let finished = finish(run()).await;
    let summary = support::summary(&finished);
    let context = format!("{summary}\n{}", support::tail(&finished.stderr, 20));
    assert_eq!(finished.status.code(), Some(0), "{context}");
    assert!(killed > 0, "no run was killed mid-stream: {context}");

    let queued = support::id_counts(&queue.read_all().await);
    let result = Accounting::of(&ids, &queued, &HashSet::new());
    assert_eq!(
        (result.lost, result.strangers),
        (0, 0),
        "{result:?} {context}"
    );
    // Resent after each kill: at most the unacknowledged window and the outcomes since the last
    // checkpoint, each 40 lines per request in flight, and the two lines in hand.
    let bound = killed * (2 * 40 * max_in_flight + 2);
    assert!(
        result.duplicates <= bound,
        "{} duplicates over {killed} kills, more than {bound}: {context}",
        result.duplicates
    );
    record(&json!({
        "scenario": format!("kill -9 x{killed}, then --resume"),
        "mode": "send (file)",
        "events": n,
        "read": n,
        "delivered": result.delivered,
        "deadLettered": 0,
        "reportedButQueued": 0,
        "duplicates": result.duplicates,
        "lost": result.lost,
        "exit": finished.status.code(),
        "peakKiB": finished.peak_kib,
        "seconds": seconds(started),
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_write_error_stops_and_is_reported() {
    let queue = TestQueue::new("accounting-full").await;
    let n = 5_000;
    let (ids, mut lines) = inputs(n);
    let first_bad = 3;
    lines[first_bad - 1] = "not json".to_owned();
    lines[200] = "{".to_owned();
    let input = queue.dir.join("input.ndjson");
    support::write_lines(&input, &lines);
    let finished = finish(Running::spawn(
        support::forwarder()
            .arg("send")
            .args(queue.args(&queue.localstack))
            .args(["--summary-json", "--dead-letter", "/dev/full"])
            .arg(&input)
            .stdin(Stdio::null()),
    ))
    .await;
    let summary = support::summary(&finished);
    let context = format!("{summary}\n{}", finished.stderr);
    assert_eq!(finished.status.code(), Some(2), "{context}");
    assert!(
        finished
            .stderr
            .contains("cannot write the dead-letter file /dev/full: No space left on device"),
        "{context}"
    );
    // The first line whose outcome is not recorded is where a re-run starts.
    let label = input.display().to_string();
    assert_eq!(
        stopped_line(&summary, &label),
        first_bad as u64,
        "{context}"
    );
    assert!(
        summary["read"].as_u64() < Some(n),
        "reading stopped: {context}"
    );
    // Whatever was sent before the error is in the queue.
    let queued = support::id_counts(&queue.read_all().await);
    let before = &ids[..first_bad - 1];
    let result = Accounting::of(before, &queued, &HashSet::new());
    assert_eq!(result.lost, 0, "{result:?} {context}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_abandons_the_drain() {
    let queue = TestQueue::new("accounting-abort").await;
    let (ids, lines) = inputs(200);
    let input = queue.dir.join("input.ndjson");
    let dead = queue.dir.join("dead.ndjson");
    support::write_lines(&input, &lines);
    // SQS never answers: without the second signal the drain would retry for a minute.
    let schedule = Schedule {
        seed: 2,
        outage: Some(Window {
            after_requests: 0,
            length: Duration::from_secs(3600),
        }),
        ..Schedule::default()
    };
    let proxy = FaultProxy::start(&queue.localstack, schedule).await;
    let mut running = Running::spawn(
        support::forwarder()
            .arg("send")
            .args(queue.args(proxy.endpoint()))
            .args(["--summary-json", "--dead-letter"])
            .arg(&dead)
            .arg(&input)
            .stdin(Stdio::null()),
    );
    wait_for_requests(&proxy, &mut running, 1).await;
    running.terminate();
    while !running.stderr_so_far().contains("stopping") {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.terminate();
    // Far less than the minute of retries the drain would otherwise take.
    let finished = tokio::task::spawn_blocking(move || running.wait(Duration::from_secs(20)))
        .await
        .expect("join");
    let summary = support::summary(&finished);
    let context = format!("{summary}\n{}", support::tail(&finished.stderr, 20));
    assert_eq!(finished.status.code(), Some(143), "{context}");
    let records = support::dead_letters(&dead);
    assert!(!records.is_empty(), "{context}");
    assert!(
        records.iter().all(|(_, reason, _)| reason == "aborted"),
        "{context}"
    );
    let reported = dead_lettered(&dead, &ids);
    let read = summary["read"].as_u64().expect("read") as usize;
    let queued = support::id_counts(&queue.read_all().await);
    let result = Accounting::of(&ids[..read], &queued, &reported);
    assert_eq!(result.lost, 0, "{result:?} {context}");
    if read < ids.len() {
        let label = input.display().to_string();
        assert_eq!(stopped_line(&summary, &label), read as u64 + 1, "{context}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_stdout_and_stderr_change_nothing() {
    let queue = TestQueue::new("accounting-epipe").await;
    let (ids, mut lines) = inputs(300);
    let bad: Vec<usize> = (0..300).step_by(25).collect();
    for &i in &bad {
        lines[i] = format!("not json {i}");
    }
    let input = queue.dir.join("input.ndjson");
    let dead = queue.dir.join("dead.ndjson");
    support::write_lines(&input, &lines);
    let mut child = support::forwarder()
        .arg("send")
        .args(queue.args(&queue.localstack))
        .args(["--summary-json", "--dead-letter"])
        .arg(&dead)
        .arg(&input)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    // Bad lines make it 1; a panic would make it 101.
    assert_eq!(status.code(), Some(1));
    let mode = std::fs::metadata(&dead)
        .expect("dead letters")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the dead-letter file holds payloads");
    let records = support::dead_letters(&dead);
    assert_eq!(records.len(), bad.len());
    let queued = support::id_counts(&queue.read_all().await);
    let good: Vec<String> = (0..300)
        .filter(|i| !bad.contains(i))
        .map(|i| ids[i].clone())
        .collect();
    let result = Accounting::of(&good, &queued, &HashSet::new());
    assert_eq!((result.lost, result.strangers), (0, 0), "{result:?}");
}

fn seconds(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 10.0).round() / 10.0
}

fn record(line: &Value) {
    eprintln!("{line}");
    support::record_result(line);
}
