//! Faults injected for real: the forwarder sends through a proxy of ours that fails requests,
//! black-holes the endpoint, throttles, fails batch entries, or the forwarder gets SIGTERM
//! mid-stream. After each scenario the whole queue is read back, and every input id must be in
//! the queue or reported with a reason (lost = 0); duplicates are counted, the exit status and
//! the summary must agree with what happened, and peak memory must stay bounded.
//!
//! `FAULT_EVENTS` (default 2,000), `FAULT_OUTAGE_SECS` (3), `FAULT_THROTTLE_SECS` (2) size the
//! scenarios; `cargo xtask soak` runs them long and collects the lines each appends to the file
//! named by `FAULT_RESULTS`.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use support::fault_proxy::{FaultProxy, Schedule, Window};
use support::{Accounting, Running, TestQueue, env_u64};

/// Peak resident memory allowed to the forwarder, in KiB.
const MAX_PEAK_KIB: u64 = 64 * 1024;

/// One scenario: what the proxy does, and what the run must show.
#[derive(Debug, Clone)]
struct Scenario {
    name: &'static str,
    schedule: Schedule,
    /// Send SIGTERM once the proxy has seen this many requests.
    sigterm_after_requests: Option<u64>,
    /// Whether every event must arrive (no retry budget can run out).
    all_delivered: bool,
}

fn events() -> u64 {
    env_u64("FAULT_EVENTS", 2_000).max(100)
}

/// About a quarter of the way through the requests.
fn mid_stream() -> u64 {
    events() / 10 / 4
}

fn transient() -> Scenario {
    Scenario {
        name: "20% transient failures",
        schedule: Schedule {
            seed: 20,
            transient: 0.20,
            slow: 0.05,
            slow_max: Duration::from_millis(300),
            ..Schedule::default()
        },
        sigterm_after_requests: None,
        all_delivered: true,
    }
}

fn outage() -> Scenario {
    let seconds = env_u64("FAULT_OUTAGE_SECS", 3);
    Scenario {
        name: "outage (black hole)",
        schedule: Schedule {
            seed: 15,
            outage: Some(Window {
                after_requests: mid_stream(),
                length: Duration::from_secs(seconds),
            }),
            ..Schedule::default()
        },
        sigterm_after_requests: None,
        // `serve` retries for 20 s, `send` for 60 s: a longer outage may exhaust the budget.
        all_delivered: seconds < 15,
    }
}

fn throttling() -> Scenario {
    Scenario {
        name: "throttling",
        schedule: Schedule {
            seed: 10,
            throttle: Some(Window {
                after_requests: mid_stream(),
                length: Duration::from_secs(env_u64("FAULT_THROTTLE_SECS", 2)),
            }),
            ..Schedule::default()
        },
        sigterm_after_requests: None,
        // The retry budget is a minute: throttling for less delivers everything.
        all_delivered: true,
    }
}

fn partial() -> Scenario {
    Scenario {
        name: "partial batch failures",
        schedule: Schedule {
            seed: 10,
            partial: 0.10,
            ..Schedule::default()
        },
        sigterm_after_requests: None,
        all_delivered: false,
    }
}

fn sigterm() -> Scenario {
    Scenario {
        name: "SIGTERM mid-stream",
        schedule: Schedule {
            seed: 9,
            delay: Duration::from_millis(100),
            ..Schedule::default()
        },
        sigterm_after_requests: Some(mid_stream()),
        all_delivered: false,
    }
}

/// Every kind of transient fault happened, and none left an event undelivered.
fn check_transient(result: &Accounting, stats: &Value) {
    for kind in [
        "internalErrors",
        "badGateways",
        "unavailable",
        "throttled",
        "resetsBefore",
        "resetsAfter",
    ] {
        assert!(stats[kind].as_u64() > Some(0), "no {kind}: {stats}");
    }
    assert_eq!(result.dead_lettered + result.reported_but_queued, 0);
}

/// An entry failed as the sender's fault is never retried and never queued; one failed as the
/// server's is retried until it arrives.
fn check_partial(result: &Accounting, stats: &Value) {
    let sender_faults = stats["senderFaults"].as_u64().unwrap_or_default();
    assert!(
        sender_faults > 0 && stats["serverFaults"].as_u64() > Some(0),
        "{stats}"
    );
    assert_eq!(result.dead_lettered, sender_faults, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_with_20_percent_transient_failures() {
    let (result, stats) = check_send(&transient()).await;
    check_transient(&result, &stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_through_an_outage() {
    let (_, stats) = check_send(&outage()).await;
    assert!(stats["blackHoled"].as_u64() > Some(0), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_through_throttling() {
    let (_, stats) = check_send(&throttling()).await;
    assert!(stats["throttled"].as_u64() > Some(0), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_with_partial_batch_failures() {
    let (result, stats) = check_send(&partial()).await;
    check_partial(&result, &stats);
    assert_eq!(result.reported_but_queued, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_interrupted_by_sigterm() {
    check_send(&sigterm()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_20_percent_transient_failures() {
    let (result, stats) = check_serve(&transient()).await;
    check_transient(&result, &stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_through_an_outage() {
    let (_, stats) = check_serve(&outage()).await;
    assert!(stats["blackHoled"].as_u64() > Some(0), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_through_throttling() {
    let (_, stats) = check_serve(&throttling()).await;
    assert!(stats["throttled"].as_u64() > Some(0), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_partial_batch_failures() {
    let (result, stats) = check_serve(&partial()).await;
    check_partial(&result, &stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_interrupted_by_sigterm() {
    check_serve(&sigterm()).await;
}

/// Runs `forwarder send` through the proxy and checks the accounting; returns it with the
/// proxy's counters.
async fn check_send(scenario: &Scenario) -> (Accounting, Value) {
    let queue = TestQueue::new("faults").await;
    let n = events();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let ids: Vec<String> = (0..n).map(|i| format!("{}-{i}", &tag[..8])).collect();
    let lines: Vec<String> = ids
        .iter()
        .zip(0..)
        .map(|(id, i)| support::event_line(id, i, 200))
        .collect();
    let input = queue.dir.join("input.ndjson");
    let dead = queue.dir.join("dead.ndjson");
    support::write_lines(&input, &lines);
    let proxy = FaultProxy::start(&queue.localstack, scenario.schedule.clone()).await;

    let started = Instant::now();
    let mut running = Running::spawn(
        support::forwarder()
            .arg("send")
            .args(queue.args(proxy.endpoint()))
            .args(["--summary-json", "--dead-letter"])
            .arg(&dead)
            // The read-ahead grows with the most requests that may be in flight (`auto`: 64),
            // and the stop must land mid-stream: with 8, the lines read before the signal
            // stay under the input's 2,000.
            .args(if scenario.sigterm_after_requests.is_some() {
                &["--max-in-flight", "8"][..]
            } else {
                &[]
            })
            .arg(&input)
            .stdin(std::process::Stdio::null()),
    );
    let mut signalled = false;
    while running.running() {
        if let Some(after) = scenario.sigterm_after_requests
            && !signalled
            && proxy.stats().requests.load(Ordering::Relaxed) >= after
        {
            running.terminate();
            signalled = true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let limit = Duration::from_secs(env_u64("FAULT_TIMEOUT_SECS", 600));
    let finished = tokio::task::spawn_blocking(move || running.wait(limit))
        .await
        .expect("join");
    let summary = support::summary(&finished);
    let stats = proxy.stats().to_json();
    drop(proxy);
    let context = format!(
        "{}: summary {summary}\nproxy {stats}\nstderr (end):\n{}",
        scenario.name,
        support::tail(&finished.stderr, 20)
    );

    // The summary must agree with itself and with the input.
    let get = |key: &str| {
        summary[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no {key}: {context}"))
    };
    let interrupted = summary["interrupted"].as_bool() == Some(true);
    let read = get("read");
    assert_eq!(
        interrupted,
        scenario.sigterm_after_requests.is_some(),
        "{context}"
    );
    if interrupted {
        assert!(read > 0 && read < n, "interrupted mid-stream: {context}");
        // The input has no blank line, so the first line not processed follows the lines read.
        assert_eq!(
            summary["stoppedAt"].as_str(),
            Some(format!("{}:{}", input.display(), read + 1).as_str()),
            "{context}"
        );
    } else {
        assert_eq!(read, n, "{context}");
    }
    assert_eq!(get("refused") + get("filtered"), 0, "{context}");
    assert_eq!(get("sent") + get("failed"), read, "{context}");
    assert_eq!(get("deadLettered"), get("failed"), "{context}");
    let expected_status = if interrupted {
        143
    } else if get("failed") == 0 {
        0
    } else {
        1
    };
    assert_eq!(finished.status.code(), Some(expected_status), "{context}");
    if scenario.all_delivered {
        assert_eq!(get("failed"), 0, "{context}");
    }

    // Every dead-letter record names its line and a reason; the file agrees with the summary.
    let records = support::dead_letters(&dead);
    assert_eq!(records.len() as u64, get("deadLettered"), "{context}");
    let mut reported = HashSet::new();
    for (id, reason, record) in &records {
        assert!(!reason.is_empty(), "no reason: {record}");
        assert!(record["line"].as_u64().is_some_and(|l| l >= 1), "{record}");
        let id = id.clone().unwrap_or_else(|| panic!("no id: {record}"));
        let line = record["line"].as_u64().unwrap_or_default();
        assert_eq!(
            ids[line as usize - 1],
            id,
            "the record's line holds its event"
        );
        assert!(reported.insert(id), "reported twice: {record}");
        assert!(
            finished
                .stderr
                .contains(&format!("input.ndjson:{line}: {reason}")),
            "stderr names line {line}"
        );
    }

    // The whole queue, against the lines read.
    let bodies = queue.read_all().await;
    let queued = support::id_counts(&bodies);
    let (sent_in, never_read) = ids.split_at(read as usize);
    let result = Accounting::of(sent_in, &queued, &reported);
    for id in never_read {
        assert!(
            !queued.contains_key(id) && !reported.contains(id),
            "{id} was past what the summary says was read: {context}"
        );
    }
    assert_eq!(result.strangers, 0, "{context}");
    assert!(result.delivered >= get("sent"), "{result:?} {context}");
    assert_eq!(result.lost, 0, "{result:?} {context}");
    assert!(
        finished.peak_kib < MAX_PEAK_KIB,
        "peak RSS {} KiB: {context}",
        finished.peak_kib
    );

    let line = json!({
        "scenario": scenario.name,
        "mode": "send",
        "events": n,
        "read": read,
        "delivered": result.delivered,
        "deadLettered": result.dead_lettered,
        "reportedButQueued": result.reported_but_queued,
        "duplicates": result.duplicates,
        "lost": result.lost,
        "exit": finished.status.code(),
        "peakKiB": finished.peak_kib,
        "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "proxy": stats,
    });
    eprintln!("{line}");
    support::record_result(&line);
    (result, stats)
}

/// Events per ingest request in the `serve` scenarios.
const PER_REQUEST: usize = 10;
/// Producers posting at once.
const PRODUCERS: usize = 8;

/// What a producer learnt of one request's events.
#[derive(Debug)]
enum Answer {
    /// 200: every event is in the queue.
    Accepted,
    /// Not (or not known to be) delivered, and why: the producer keeps these.
    Reported(String),
}

/// Runs `forwarder serve` through the proxy with producers posting batches (retrying 503, 429
/// and connection failures a few times, as a producer would), and checks that every event of a
/// 200 is in the queue and every other event sent is in the queue or was answered with an
/// error.
async fn check_serve(scenario: &Scenario) -> (Accounting, Value) {
    let queue = TestQueue::new("faults-serve").await;
    let n = events() as usize;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let ids: Vec<String> = (0..n).map(|i| format!("{}-{i}", &tag[..8])).collect();
    let lines: Arc<Vec<String>> = Arc::new(
        ids.iter()
            .zip(0..)
            .map(|(id, i)| support::event_line(id, i, 200))
            .collect(),
    );
    let proxy = FaultProxy::start(&queue.localstack, scenario.schedule.clone()).await;
    let started = Instant::now();
    let mut running = Running::spawn(
        support::forwarder()
            .arg("serve")
            .args(queue.args(proxy.endpoint()))
            .args(["--listen", "127.0.0.1:0"])
            .stdin(std::process::Stdio::null()),
    );
    let url = support::listening(&mut running).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(180))
        .build()
        .expect("client");
    let next = Arc::new(AtomicUsize::new(0));
    let stopping = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(Mutex::new(Vec::new()));
    let mut producers = Vec::new();
    for _ in 0..PRODUCERS {
        let (client, url, lines) = (client.clone(), url.clone(), Arc::clone(&lines));
        let (next, stopping, answers) = (
            Arc::clone(&next),
            Arc::clone(&stopping),
            Arc::clone(&answers),
        );
        producers.push(tokio::spawn(async move {
            loop {
                let start = next.fetch_add(PER_REQUEST, Ordering::Relaxed);
                if start >= lines.len() || stopping.load(Ordering::Relaxed) {
                    return;
                }
                let range = start..(start + PER_REQUEST).min(lines.len());
                let body = format!("[{}]", lines[range.clone()].join(","));
                let answer = post(&client, &format!("{url}/events"), body, &stopping).await;
                answers.lock().expect("lock").push((range, answer));
            }
        }));
    }
    if let Some(after) = scenario.sigterm_after_requests {
        while proxy.stats().requests.load(Ordering::Relaxed) < after && running.running() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stopping.store(true, Ordering::Relaxed);
        running.terminate();
    }
    for producer in producers {
        producer.await.expect("producer");
    }
    let metrics = if scenario.sigterm_after_requests.is_none() {
        let metrics = support::metrics_text(&client, &url).await;
        running.terminate();
        Some(metrics)
    } else {
        None
    };
    let limit = Duration::from_secs(env_u64("FAULT_TIMEOUT_SECS", 600));
    let finished = tokio::task::spawn_blocking(move || running.wait(limit))
        .await
        .expect("join");
    let stats = proxy.stats().to_json();
    drop(proxy);
    let context = format!(
        "{} (serve): proxy {stats}\nstderr (end):\n{}",
        scenario.name,
        support::tail(&finished.stderr, 20)
    );
    assert_eq!(
        finished.status.code(),
        Some(0),
        "serve stops cleanly on SIGTERM: {context}"
    );

    let answers = std::mem::take(&mut *answers.lock().expect("lock"));
    let mut sent_in = Vec::new();
    let mut reported = HashSet::new();
    let mut accepted_requests = 0;
    for (range, answer) in &answers {
        sent_in.extend(ids[range.clone()].iter().cloned());
        match answer {
            Answer::Accepted => accepted_requests += 1,
            Answer::Reported(reason) => {
                assert!(!reason.is_empty());
                reported.extend(ids[range.clone()].iter().cloned());
            }
        }
    }
    if let Some(metrics) = &metrics {
        assert_eq!(
            sent_in.len(),
            n,
            "every event was posted without a stop: {context}"
        );
        let served_200 = metric(metrics, "forwarder_http_responses_total{code=\"200\"}");
        assert_eq!(
            served_200, accepted_requests,
            "the server's 200s are the producers': {context}"
        );
        if scenario.all_delivered {
            assert!(reported.is_empty(), "{context}");
        }
    }

    let bodies = queue.read_all().await;
    let queued = support::id_counts(&bodies);
    let result = Accounting::of(&sent_in, &queued, &reported);
    let posted: HashSet<&String> = sent_in.iter().collect();
    for id in &ids {
        assert!(
            posted.contains(id) || !queued.contains_key(id),
            "{id} was never posted but is queued: {context}"
        );
    }
    assert_eq!(result.strangers, 0, "{context}");
    assert_eq!(result.lost, 0, "{result:?} {context}");
    assert!(
        finished.peak_kib < MAX_PEAK_KIB,
        "peak RSS {} KiB: {context}",
        finished.peak_kib
    );
    let line = json!({
        "scenario": scenario.name,
        "mode": "serve",
        "events": n,
        "read": sent_in.len(),
        "delivered": result.delivered,
        "deadLettered": result.dead_lettered,
        "reportedButQueued": result.reported_but_queued,
        "duplicates": result.duplicates,
        "lost": result.lost,
        "exit": finished.status.code(),
        "peakKiB": finished.peak_kib,
        "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "proxy": stats,
    });
    eprintln!("{line}");
    support::record_result(&line);
    (result, stats)
}

/// Posts one batch as a producer would: a 200 is final, 503, 429 and connection failures are
/// tried again a few times, anything else is kept as the reason.
async fn post(client: &reqwest::Client, url: &str, body: String, stopping: &AtomicBool) -> Answer {
    let mut last = String::new();
    for attempt in 1..=6u64 {
        let response = client
            .post(url)
            .header("content-type", "application/cloudevents-batch+json")
            .body(body.clone())
            .send()
            .await;
        match response {
            Ok(response) if response.status() == 200 => {
                let answer: Value = response.json().await.expect("200 answer is JSON");
                assert_eq!(
                    answer["accepted"].as_u64(),
                    Some(body.matches(r#""specversion""#).count() as u64),
                    "{answer}"
                );
                return Answer::Accepted;
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let detail = response.text().await.unwrap_or_default();
                assert!(
                    matches!(status, 429 | 502 | 503),
                    "unexpected {status}: {detail}"
                );
                last = format!("{status}: {detail}");
                if status == 502 {
                    break;
                }
            }
            Err(error) => {
                last = format!("request failed: {error}");
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
    }
    Answer::Reported(last)
}

/// A sample's value from a Prometheus text exposition.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}
