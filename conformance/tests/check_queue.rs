//! `conformance check` against a real queue in LocalStack: messages sent by the test with the
//! plain SDK, more than one receive's worth, judged once each, the report naming each message
//! by its id; the queue drained with `--delete`, or left as it was by default (`--keep`).

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use testkit::TestQueue;

/// Conformant events, and one without `source`, so that the report holds both verdicts and the
/// queue more than one receive's worth (ten messages).
const CONFORMANT: usize = 12;

fn event(id: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"/check","type":"com.example.check","data":{{"n":1}}}}"#
    )
}

const WITHOUT_SOURCE: &str =
    r#"{"specversion":"1.0","id":"no-source","type":"com.example.check","data":{"n":1}}"#;

/// Sends the events; returns each message id with whether it is conformant.
async fn fill(queue: &TestQueue) -> BTreeMap<String, bool> {
    let mut sent = BTreeMap::new();
    let bodies = (0..CONFORMANT)
        .map(|i| (event(&format!("ok-{i}")), true))
        .chain([(WITHOUT_SOURCE.to_owned(), false)]);
    for (body, conformant) in bodies {
        let output = queue
            .sqs
            .send_message()
            .queue_url(&queue.url)
            .message_body(body)
            .send()
            .await
            .expect("SendMessage");
        sent.insert(output.message_id.expect("a message id"), conformant);
    }
    sent
}

/// Runs `conformance check --format json` on the queue, with `extra` arguments.
async fn check(queue: &TestQueue, extra: &[&str]) -> (Output, Value) {
    let options = testkit::localstack_options().await;
    let output = testkit::on_localstack(
        Command::new(env!("CARGO_BIN_EXE_conformance")).args([
            "check",
            "--queue-url",
            &queue.url,
            "--format",
            "json",
        ]),
        &options,
    )
    .args(extra)
    .stdin(Stdio::null())
    .output()
    .expect("conformance runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "the report is not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, report)
}

/// The verdicts of the report, by message id; asserts each message is judged once.
fn verdicts(report: &Value) -> BTreeMap<String, bool> {
    let messages = report["messages"].as_array().expect("a list of messages");
    let verdicts: BTreeMap<String, bool> = messages
        .iter()
        .map(|m| {
            (
                m["message_id"].as_str().expect("an id").to_owned(),
                m["conformant"].as_bool().expect("a verdict"),
            )
        })
        .collect();
    assert_eq!(
        verdicts.len(),
        messages.len(),
        "a message judged twice: {report}"
    );
    verdicts
}

#[tokio::test]
async fn check_judges_every_message_of_a_real_queue_once_and_drains_it() {
    let queue = TestQueue::new("check-drain").await;
    let sent = fill(&queue).await;

    let (output, report) = check(&queue, &["--delete"]).await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "one message is not conformant"
    );
    assert_eq!(verdicts(&report), sent);
    assert_eq!(
        (
            report["summary"]["conformant"].as_u64(),
            report["summary"]["not_conformant"].as_u64()
        ),
        (Some(CONFORMANT as u64), Some(1))
    );
    let refused = report["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["conformant"] == false)
        .expect("the refused message");
    assert!(
        refused["problems"].to_string().contains("source"),
        "the problem names the missing attribute: {refused}"
    );
    assert!(
        queue.drain(0).await.is_empty(),
        "check deleted what it judged"
    );
}

#[tokio::test]
async fn check_keep_judges_every_message_and_leaves_the_queue_as_it_was() {
    let queue = TestQueue::new("check-keep").await;
    let sent = fill(&queue).await;

    let (output, report) = check(&queue, &["--keep"]).await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "one message is not conformant"
    );
    assert_eq!(verdicts(&report), sent);

    // The peeked messages are neither gone nor hidden: visible again for their consumers.
    let attributes = queue
        .sqs
        .get_queue_attributes()
        .queue_url(&queue.url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes
        .unwrap_or_default();
    let visible = attributes
        .get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .and_then(|n| n.parse::<usize>().ok());
    assert_eq!(
        visible,
        Some(sent.len()),
        "--keep deleted nothing and hid nothing"
    );
}

#[tokio::test]
async fn check_of_an_empty_queue_reports_nothing_and_succeeds() {
    let queue = TestQueue::new("check-empty").await;
    let (output, report) = check(&queue, &[]).await;
    assert!(output.status.success(), "{report}");
    assert!(verdicts(&report).is_empty());
}
