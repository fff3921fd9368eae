//! Snapshots of what SQS holds after the forwarder ran: every field of every received message,
//! the body parsed, under both attribute modes and both queue types, and for payloads the
//! forwarder wraps into new events.
//!
//! Values that change from run to run (message ids, receipt handles, MD5s, timestamps, sequence
//! numbers, the sender, and the ids and times the forwarder generates) are redacted, each after
//! its shape is checked. Each body is recorded twice: parsed, for reading (keys sorted, numbers
//! as `f64`), and as the exact text, which keeps the member order and every token as written.

use insta::internals::Content;
use serde_json::Value;

use crate::common::{
    Fixture, QueueKind, Received, ReceivedExt, assert_conformant, is_rfc3339_utc, is_uuid_v4,
    redact, sample_lines, snapshot_settings,
};

#[tokio::test]
async fn standard_queue_without_attributes() {
    samples("snap-std-none", QueueKind::Standard, "none").await;
}

#[tokio::test]
async fn standard_queue_with_cloudevents_attributes() {
    samples("snap-std-ce", QueueKind::Standard, "cloudevents").await;
}

#[tokio::test]
async fn fifo_queue_without_attributes() {
    samples("snap-fifo-none", QueueKind::Fifo, "none").await;
}

#[tokio::test]
async fn fifo_queue_with_cloudevents_attributes() {
    samples("snap-fifo-ce", QueueKind::Fifo, "cloudevents").await;
}

/// Raw payloads wrapped into events with a generated id and time, on a FIFO queue: one group
/// (the source), so the snapshot also records the order.
#[tokio::test]
async fn wrapped_payloads_on_a_fifo_queue_with_cloudevents_attributes() {
    let payloads: Vec<String> = [
        r#"{"temp":32,"unit":"C"}"#,
        r#"[1,2.50,123456789012345678901234567890]"#,
        r#""plain text""#,
        r#"{"nested":{"deeper":[true,false,null]}}"#,
    ]
    .map(str::to_owned)
    .to_vec();
    let fixture = Fixture::new("snap-wrapped", QueueKind::Fifo).await;
    fixture
        .forward(
            "payloads.ndjson",
            &payloads,
            &[
                "--source",
                "/sensors/gateway-7",
                "--type",
                "com.example.reading",
                "--subject",
                "room-1",
                "--attributes",
                "cloudevents",
            ],
        )
        .await
        .assert_all_sent(payloads.len());
    let received = fixture.receive_all(payloads.len()).await;
    assert_conformant(&received);
    for (message, payload) in received.iter().zip(&payloads) {
        assert!(
            message.body.ends_with(&format!(r#","data":{payload}}}"#)),
            "the payload is not the data, byte for byte: {}",
            message.body
        );
    }
    let mut settings = snapshot_settings();
    redact(&mut settings, "[].body.id", "[generated-uuid]", is_uuid_v4);
    redact(
        &mut settings,
        "[].body.time",
        "[generated-time]",
        is_rfc3339_utc,
    );
    redact(
        &mut settings,
        "[].messageAttributes[\"ce-id\"].stringValue",
        "[generated-uuid]",
        is_uuid_v4,
    );
    redact(
        &mut settings,
        "[].messageAttributes[\"ce-time\"].stringValue",
        "[generated-time]",
        is_rfc3339_utc,
    );
    redact(
        &mut settings,
        "[].attributes.MessageDeduplicationId",
        "/sensors/gateway-7|[generated-uuid]",
        |id| {
            id.strip_prefix("/sensors/gateway-7|")
                .is_some_and(is_uuid_v4)
        },
    );
    settings.add_redaction(
        "[].bodyText",
        insta::dynamic_redaction(|value: Content, path| {
            let text = value
                .as_str()
                .unwrap_or_else(|| panic!("{path}: not a string"));
            let body: Value = serde_json::from_str(text).expect("a JSON body");
            let (id, time) = (body["id"].as_str(), body["time"].as_str());
            let (Some(id), Some(time)) = (id, time) else {
                panic!("{path}: no generated id and time");
            };
            assert!(
                is_uuid_v4(id) && is_rfc3339_utc(time),
                "{path}: {id} {time}"
            );
            text.replace(id, "[generated-uuid]")
                .replace(time, "[generated-time]")
        }),
    );
    let snapshot: Vec<Value> = received.iter().map(Received::snapshot).collect();
    settings.bind(|| insta::assert_json_snapshot!("wrapped_fifo_cloudevents", snapshot));
    fixture.destroy().await;
}

/// Forwards the sample events with `--attributes attributes`, checks the bodies byte for byte,
/// and snapshots the messages sorted by source and id.
async fn samples(label: &str, kind: QueueKind, attributes: &str) {
    let lines = sample_lines();
    let fixture = Fixture::new(label, kind).await;
    fixture
        .forward("samples.ndjson", &lines, &["--attributes", attributes])
        .await
        .assert_all_sent(lines.len());
    let mut received = fixture.receive_all(lines.len()).await;
    assert_conformant(&received);
    received.sort_by_key(|message| {
        let body = message.body_json();
        (body["source"].to_string(), body["id"].to_string())
    });
    let mut bodies: Vec<&str> = received.iter().map(|m| m.body.as_str()).collect();
    bodies.sort_unstable();
    let mut expected: Vec<&str> = lines.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(bodies, expected, "the bodies are the sample lines");
    let queue = match kind {
        QueueKind::Standard => "standard",
        QueueKind::Fifo => "fifo",
    };
    let snapshot: Vec<Value> = received.iter().map(Received::snapshot).collect();
    snapshot_settings().bind(|| {
        insta::assert_json_snapshot!(format!("samples_{queue}_{attributes}"), snapshot);
    });
    fixture.destroy().await;
}
