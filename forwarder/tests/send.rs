//! `forwarder send` against the embedded LocalStack: the real binary, a real queue, and what
//! SQS really holds afterwards.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};

use aws_sdk_sqs::types::QueueAttributeName;
use testkit::TempDir;

/// A queue of its own for one test, removed on drop, with a scratch directory.
struct TestQueue {
    queue: testkit::TestQueue,
    dir: TempDir,
}

impl TestQueue {
    async fn new(fifo: bool) -> TestQueue {
        let mut attributes = vec![(QueueAttributeName::MaximumMessageSize, "1048576")];
        if fifo {
            attributes.push((QueueAttributeName::FifoQueue, "true"));
        }
        TestQueue {
            queue: testkit::TestQueue::with("send", &attributes).await,
            dir: TempDir::new("forwarder-send"),
        }
    }

    /// Runs `forwarder send` on `lines` with extra `args`.
    fn send(&self, lines: &[String], args: &[&str]) -> Output {
        let input = self.dir.join("input.ndjson");
        std::fs::write(
            &input,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .expect("input");
        Command::new(env!("CARGO_BIN_EXE_forwarder"))
            .args([
                "send",
                "--queue-url",
                &self.queue.url,
                "--endpoint-url",
                &self.queue.endpoint,
                "--region",
                localstack::REGION,
            ])
            .args(["--summary-json"])
            .args(args)
            .arg(&input)
            .env("AWS_ACCESS_KEY_ID", localstack::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", localstack::SECRET_KEY)
            .stdin(Stdio::null())
            .output()
            .expect("runs forwarder")
    }

    /// Every message in the queue, in the order received, with its string message attributes;
    /// the queue is drained.
    async fn drain(&self) -> Vec<(String, HashMap<String, String>)> {
        self.queue
            .drain(0)
            .await
            .into_iter()
            .map(|m| {
                let attributes = m.string_attributes().into_iter().collect();
                (m.body, attributes)
            })
            .collect()
    }
}

fn summary(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("summary is not JSON ({e}): {stdout}\n{stderr}"))
}

/// Asserts that stderr is one line, and that it says `what`.
fn said_in_one_line(output: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(what), "{stderr}");
}

fn event(id: &str, data: &str) -> String {
    format!(r#"{{"specversion":"1.0","id":"{id}","source":"/test","type":"t","data":{data}}}"#)
}

const IOT: &str = r#"{"specversion":"1.0","id":"aa12dc4c-c5ed-4b46-92e5-5a726f4daa81","source":"golioth/app/gateway/coap","type":"DEVICE_STREAM_TYPE","subject":"stream","datacontenttype":"application/json","time":"2022-01-27T16:17:06.458868Z","data":{"data":{"temp":32},"device_id":"612d3cecf3ee17d321adbec6","project_id":"my-first-project","timestamp":{"nanos":174295000,"seconds":1643300226}}}"#;

#[tokio::test]
async fn the_iot_example_arrives_byte_for_byte() {
    let queue = TestQueue::new(false).await;
    let output = queue.send(&[IOT.to_owned()], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bodies: Vec<String> = queue.drain().await.into_iter().map(|(b, _)| b).collect();
    assert_eq!(bodies, [IOT]);
}

#[tokio::test]
async fn batches_split_by_count_and_by_bytes() {
    let queue = TestQueue::new(false).await;
    // 25 small events: three requests (10 + 10 + 5).
    let small: Vec<String> = (0..25).map(|i| event(&format!("s{i}"), "1")).collect();
    let output = queue.send(&small, &["--linger-ms", "200", "--max-in-flight", "1"]);
    let s = summary(&output);
    assert_eq!(
        (
            s["read"].as_u64(),
            s["sent"].as_u64(),
            s["requests"].as_u64()
        ),
        (Some(25), Some(25), Some(3))
    );
    assert_eq!(queue.drain().await.len(), 25);

    // Four events of 300 KiB: at most three fit in 1 MiB, so two requests.
    let big = format!("\"{}\"", "x".repeat(300 * 1024));
    let large: Vec<String> = (0..4).map(|i| event(&format!("b{i}"), &big)).collect();
    let output = queue.send(&large, &["--linger-ms", "200", "--max-in-flight", "1"]);
    let s = summary(&output);
    assert_eq!(
        (s["sent"].as_u64(), s["requests"].as_u64()),
        (Some(4), Some(2)),
        "{s}"
    );
    assert_eq!(queue.drain().await.len(), 4);
}

#[tokio::test]
async fn a_900_kib_event_travels_alone_and_one_over_1_mib_is_dead_lettered() {
    let queue = TestQueue::new(false).await;
    let near = event("near", &format!("\"{}\"", "n".repeat(900 * 1024)));
    let over = event("over", &format!("\"{}\"", "o".repeat(1024 * 1024)));
    let near2 = near.replace(r#""id":"near""#, r#""id":"near2""#);
    let lines = [event("before", "1"), near.clone(), over, near2.clone()];
    let dead = queue.dir.join("dead.ndjson");
    let output = queue.send(
        &lines,
        &[
            "--dead-letter",
            dead.to_str().expect("utf-8 path"),
            "--linger-ms",
            "100",
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "one refused event makes the exit status 1"
    );
    let s = summary(&output);
    assert_eq!(
        (
            s["read"].as_u64(),
            s["sent"].as_u64(),
            s["refused"].as_u64()
        ),
        (Some(4), Some(3), Some(1)),
        "{s}"
    );
    assert_eq!(
        s["requests"].as_u64(),
        Some(2),
        "two 900 KiB events never share a request: {s}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("input.ndjson:3: ")
            && stderr.contains("over the SQS limit of 1048576 bytes"),
        "{stderr}"
    );
    let dead = std::fs::read_to_string(&dead).expect("dead-letter file");
    let records: Vec<serde_json::Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON"))
        .collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["line"], 3);
    assert!(
        records[0]["original"]
            .as_str()
            .is_some_and(|o| o.contains(r#""id":"over""#))
    );
    let bodies: Vec<String> = queue.drain().await.into_iter().map(|(b, _)| b).collect();
    assert_eq!(bodies.len(), 3);
    assert!(
        bodies.contains(&near) && bodies.contains(&near2),
        "the 900 KiB events arrive unchanged"
    );
}

#[tokio::test]
async fn bad_lines_are_reported_and_the_rest_still_go() {
    let queue = TestQueue::new(false).await;
    let lines = [
        event("ok1", "1"),
        String::new(),
        "{not json".to_owned(),
        r#"{"specversion":"0.3","id":"x","source":"/s","type":"t"}"#.to_owned(),
        event("ok2", "2"),
    ];
    let output = queue.send(&lines, &[]);
    assert_eq!(output.status.code(), Some(1));
    let s = summary(&output);
    assert_eq!(
        (
            s["read"].as_u64(),
            s["sent"].as_u64(),
            s["refused"].as_u64()
        ),
        (Some(4), Some(2), Some(2)),
        "{s}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("input.ndjson:3: "), "{stderr}");
    assert!(
        stderr.contains("input.ndjson:4: ") && stderr.contains("specversion"),
        "{stderr}"
    );
    assert_eq!(queue.drain().await.len(), 2);
}

#[tokio::test]
async fn a_fifo_queue_keeps_order_within_a_group() {
    let queue = TestQueue::new(true).await;
    let lines: Vec<String> = (0..30)
        .map(|i| {
            let device = ["a", "b", "c"][i % 3];
            format!(r#"{{"specversion":"1.0","id":"e{i}","source":"/devices/{device}","type":"t","data":{i}}}"#)
        })
        .collect();
    let output = queue.send(&lines, &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let received = queue.drain().await;
    assert_eq!(received.len(), 30);
    for device in ["a", "b", "c"] {
        let order: Vec<u64> = received
            .iter()
            .map(|(body, _)| serde_json::from_str::<serde_json::Value>(body).expect("json"))
            .filter(|v| v["source"] == format!("/devices/{device}"))
            .filter_map(|v| v["data"].as_u64())
            .collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(order, sorted, "group {device} arrives in order");
        assert_eq!(order.len(), 10);
    }
}

#[tokio::test]
async fn wrapping_filters_and_cloudevents_attributes() {
    let queue = TestQueue::new(false).await;
    let payloads = [
        r#"{"temp":32}"#.to_owned(),
        r#"[1,2.50,123456789012345678901234567890]"#.to_owned(),
    ];
    let output = queue.send(
        &payloads,
        &[
            "--source",
            "/sensors",
            "--type",
            "com.example.reading",
            "--subject",
            "s1",
            "--attributes",
            "cloudevents",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let received = queue.drain().await;
    assert_eq!(received.len(), 2);
    for (body, attributes) in &received {
        let value: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(value["source"], "/sensors");
        assert_eq!(value["type"], "com.example.reading");
        assert_eq!(value["datacontenttype"], "application/json");
        assert_eq!(
            attributes.get("ce-id").map(String::as_str),
            value["id"].as_str()
        );
        assert_eq!(
            attributes.get("ce-type").map(String::as_str),
            Some("com.example.reading")
        );
        assert_eq!(
            attributes.get("content-type").map(String::as_str),
            Some("application/json")
        );
    }
    assert!(
        received
            .iter()
            .any(|(b, _)| b.contains(r#""data":[1,2.50,123456789012345678901234567890]"#))
    );

    let typed: Vec<String> = ["a.keep", "a.drop", "b.keep"]
        .iter()
        .map(|t| format!(r#"{{"specversion":"1.0","id":"{t}","source":"/s","type":"{t}"}}"#))
        .collect();
    let output = queue.send(&typed, &["--only-type", "*.keep", "--except-type", "b.*"]);
    let s = summary(&output);
    assert_eq!(
        (s["sent"].as_u64(), s["filtered"].as_u64()),
        (Some(1), Some(2)),
        "{s}"
    );
    assert!(output.status.success());
    assert_eq!(queue.drain().await.len(), 1);
}

#[test]
fn without_a_queue_the_error_says_what_to_do() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_forwarder"))
        .args(["send", "--region", "us-east-1"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"{}\n")
        .expect("write");
    let output = child.wait_with_output().expect("exits");
    assert_eq!(output.status.code(), Some(2));
    said_in_one_line(&output, "--config FILE");
}

/// The library's `send` counts every refusal in the forwarder's metrics, as `serve` does: the
/// `/metrics` of a process and the summary of `send` agree.
#[tokio::test]
async fn refusals_are_counted_in_the_metrics() {
    use std::sync::Arc;

    use forwarder::destinations::Destinations;
    use forwarder::message::MessageOptions;
    use forwarder::metrics::Metrics;
    use forwarder::pipeline::{Forwarder, Options};
    use forwarder::send::{Input, SendOptions, send};
    use forwarder::sqs::{QueueUrl, Sqs};

    let queue = TestQueue::new(false).await;
    let input = queue.dir.join("refusals.ndjson");
    let lines = [
        event("ok", "1"),
        "{not json".to_owned(),
        r#"{"specversion":"1.0","id":"x"}"#.to_owned(),
        event("long", &format!("\"{}\"", "x".repeat(200))),
    ];
    std::fs::write(&input, lines.map(|l| format!("{l}\n")).concat()).expect("input");
    let url = QueueUrl::parse(&queue.queue.url).expect("queue url");
    let metrics = Arc::new(Metrics::default());
    let forwarder = Forwarder::start(
        Sqs::new(queue.queue.sqs.clone(), url),
        Options::default(),
        Arc::clone(&metrics),
    );
    let targets = Destinations::single(forwarder, MessageOptions::default(), 320);
    let options = SendOptions {
        max_line_bytes: 150,
        ..SendOptions::default()
    };
    let (_signals, signals) = tokio::sync::watch::channel(0u32);
    let summary = send(
        vec![Input::File(input)],
        &options,
        &targets,
        None,
        |_| {},
        signals,
        None,
    )
    .await
    .expect("send");
    targets.shutdown().await;
    assert_eq!((summary.sent, summary.refused), (1, 3), "{summary:?}");
    assert_eq!(Metrics::get(&metrics.refused), summary.refused);
    assert_eq!(Metrics::get(&metrics.sent), summary.sent);
}

#[tokio::test]
async fn binary_mode_counts_the_events_it_sends_structured() {
    let queue = TestQueue::new(false).await;
    let lines = [
        event("json", r#"{ "n" : 1.50 }"#),
        r#"{"specversion":"1.0","id":"none","source":"/test","type":"t"}"#.to_owned(),
        r#"{"specversion":"1.0","id":"bytes","source":"/test","type":"t","data_base64":"AAE="}"#
            .to_owned(),
    ];
    let output = queue.send(&lines, &["--content-mode", "binary"]);
    let s = summary(&output);
    assert_eq!(
        (s["sent"].as_u64(), s["sentStructured"].as_u64()),
        (Some(3), Some(2)),
        "{s}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("forwarder: 2 of the events sent travelled structured"),
        "{stderr}"
    );
    let mut bodies: Vec<String> = queue.drain().await.into_iter().map(|(b, _)| b).collect();
    bodies.sort();
    assert_eq!(
        bodies,
        [
            r#"{ "n" : 1.50 }"#,
            r#"{"specversion":"1.0","id":"bytes","source":"/test","type":"t","data_base64":"AAE="}"#,
            r#"{"specversion":"1.0","id":"none","source":"/test","type":"t"}"#,
        ]
    );
}

#[tokio::test]
async fn attributes_beside_a_binary_body_are_refused_in_one_line() {
    let queue = TestQueue::new(false).await;
    let output = queue.send(
        &[event("x", "1")],
        &["--content-mode", "binary", "--attributes", "cloudevents"],
    );
    assert_eq!(output.status.code(), Some(2));
    said_in_one_line(
        &output,
        "--attributes cloudevents goes with structured mode",
    );
}

#[tokio::test]
async fn a_most_linger_below_the_least_is_refused_in_one_line() {
    let queue = TestQueue::new(false).await;
    let output = queue.send(
        &[event("x", "1")],
        &["--linger-ms", "10", "--max-linger-ms", "5"],
    );
    assert_ne!(output.status.code(), Some(0));
    said_in_one_line(&output, "--max-linger-ms 5 is below --linger-ms 10");
    assert!(queue.drain().await.is_empty(), "nothing is sent");
}
