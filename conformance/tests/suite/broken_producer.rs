//! A deliberately broken producer is caught: messages put straight into a queue (not through
//! the forwarder), some of them not CloudEvents, are judged by the real `conformance check`
//! binary, each with the verdict and the rules it breaks, and the exit status says so.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::common::{Fixture, QueueKind};

/// A producer's message: body, String message attributes, and the (rule, path) pairs the judge
/// must report, sorted; none for a conformant message.
struct Produced {
    what: &'static str,
    body: &'static str,
    attributes: &'static [(&'static str, &'static str)],
    problems: &'static [(&'static str, &'static str)],
}

const PRODUCED: [Produced; 6] = [
    Produced {
        what: "a conformant event",
        body: r#"{"specversion":"1.0","id":"ok-1","source":"/producer","type":"com.example.ok","time":"2024-02-29T12:00:00Z"}"#,
        attributes: &[("ce-id", "ok-1"), ("ce-type", "com.example.ok")],
        problems: &[],
    },
    Produced {
        what: "no id",
        body: r#"{"specversion":"1.0","source":"/producer","type":"com.example.no-id"}"#,
        attributes: &[],
        problems: &[("schema", "")],
    },
    Produced {
        what: "a time that is no date",
        body: r#"{"specversion":"1.0","id":"bad-time","source":"/producer","type":"com.example.t","time":"2022-02-30T00:00:00Z"}"#,
        attributes: &[],
        problems: &[("rfc3339", "/time"), ("schema", "/time")],
    },
    Produced {
        what: "an upper-case extension name",
        body: r#"{"specversion":"1.0","id":"upper","source":"/producer","type":"com.example.t","Tenant":"acme"}"#,
        attributes: &[],
        problems: &[("schema", "/Tenant")],
    },
    Produced {
        what: "a body that is not JSON",
        body: "temperature=32;unit=C",
        attributes: &[("ce-id", "plain")],
        problems: &[("json", "")],
    },
    Produced {
        what: "a ce-id attribute that contradicts the body",
        body: r#"{"specversion":"1.0","id":"one","source":"/producer","type":"com.example.t"}"#,
        attributes: &[("ce-id", "another")],
        problems: &[("attributes", "ce-id")],
    },
];

#[tokio::test]
async fn a_broken_producer_is_caught_by_conformance_check() {
    let fixture = Fixture::new("broken-producer", QueueKind::Standard).await;
    let mut produced = BTreeMap::new();
    for message in &PRODUCED {
        let id = fixture.produce(message.body, message.attributes).await;
        produced.insert(id, message);
    }
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args([
            "check",
            "--delete",
            "--format",
            "json",
            "--queue-url",
            &fixture.queue_url,
        ])
        .args([
            "--endpoint-url",
            &fixture.endpoint,
            "--region",
            localstack::REGION,
        ])
        .env("AWS_ACCESS_KEY_ID", localstack::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", localstack::SECRET_KEY)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .output()
        .await
        .expect("conformance check runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("the report is not JSON ({err}): {stdout}\n{stderr}"));
    let messages = report["messages"].as_array().expect("a list of messages");
    assert_eq!(messages.len(), PRODUCED.len(), "{report:#}");
    for verdict in messages {
        let id = verdict["message_id"].as_str().expect("a message id");
        let expected = produced
            .get(id)
            .unwrap_or_else(|| panic!("a message nobody produced: {verdict}"));
        let mut problems: Vec<(&str, &str)> = verdict["problems"]
            .as_array()
            .expect("a list of problems")
            .iter()
            .map(|p| {
                (
                    p["rule"].as_str().unwrap_or_default(),
                    p["path"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        problems.sort_unstable();
        problems.dedup();
        assert_eq!(
            problems, expected.problems,
            "{}: {verdict:#}",
            expected.what
        );
        assert_eq!(
            verdict["conformant"].as_bool(),
            Some(expected.problems.is_empty()),
            "{}: {verdict:#}",
            expected.what
        );
    }
    assert_eq!(
        report["summary"],
        serde_json::json!({"conformant": 1, "not_conformant": PRODUCED.len() - 1})
    );
    assert!(
        fixture.receive_all(0).await.is_empty(),
        "conformance check leaves the queue drained"
    );
    fixture.destroy().await;
}
