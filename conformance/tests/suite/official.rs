//! The official CloudEvents conformance cases through the forwarder and SQS, found at test time
//! by `testkit::official` and never copied into the project: every valid event arrives meaning the same, and
//! every invalid one is refused with a reason while nothing arrives. That the judge agrees with
//! both files is `judge_official`'s concern.

use testkit::official::cases;

use crate::common::{Fixture, QueueKind, ReceivedExt, number_tokens, semantic, truncated};

#[tokio::test]
async fn every_valid_official_event_arrives_equal() {
    let cases = cases("valid-events.json");
    let lines: Vec<String> = cases.iter().map(|case| minify(case.event.get())).collect();
    let fixture = Fixture::new("official-valid", QueueKind::Standard).await;
    fixture
        .forward("valid.ndjson", &lines, &["--attributes", "cloudevents"])
        .await
        .assert_all_sent(lines.len());
    let mut received = fixture.receive_all(lines.len()).await;
    assert_eq!(received.len(), lines.len(), "messages received");
    let mut missing = Vec::new();
    for (case, line) in cases.iter().zip(&lines) {
        // Null attributes are absent: the forwarder leaves them out.
        let expected = semantic(line, true);
        let Some(index) = received
            .iter()
            .position(|m| semantic(&m.body, false) == expected)
        else {
            missing.push(case.id.clone());
            continue;
        };
        let message = received.swap_remove(index);
        assert_eq!(
            number_tokens(line),
            number_tokens(&message.body),
            "{}: number tokens changed",
            case.id
        );
        let verdict = conformance::judge(&message.message());
        assert!(
            verdict.conformant,
            "{}: {:?}\n{}",
            case.id,
            verdict.problems,
            truncated(&message.body)
        );
    }
    assert!(
        missing.is_empty(),
        "cases that did not arrive equal: {missing:?}"
    );
    fixture.destroy().await;
}

#[tokio::test]
async fn every_invalid_official_event_is_refused_with_a_reason() {
    let cases = cases("invalid-events.json");
    let lines: Vec<String> = cases.iter().map(|case| minify(case.event.get())).collect();
    let fixture = Fixture::new("official-invalid", QueueKind::Standard).await;
    let forwarded = fixture.forward("invalid.ndjson", &lines, &[]).await;
    let summary = forwarded.summary();
    assert_eq!(
        forwarded.output.status.code(),
        Some(1),
        "{summary}\n{}",
        forwarded.stderr()
    );
    assert_eq!(
        (summary["refused"].as_u64(), summary["sent"].as_u64()),
        (Some(lines.len() as u64), Some(0)),
        "{summary}"
    );
    let refusals = forwarded.refusals();
    let unexplained: Vec<&str> = cases
        .iter()
        .zip(1u64..)
        .filter(|(_, number)| {
            refusals
                .get(number)
                .is_none_or(|reason| reason.trim().is_empty())
        })
        .map(|(case, _)| case.id.as_str())
        .collect();
    assert!(
        unexplained.is_empty(),
        "refused without a `FILE:LINE: reason` line: {unexplained:?}\n{}",
        forwarded.stderr()
    );
    let received = fixture.receive_all(0).await;
    assert!(
        received.is_empty(),
        "invalid events arrived: {:?}",
        received
            .iter()
            .map(|m| truncated(&m.body))
            .collect::<Vec<_>>()
    );
    fixture.destroy().await;
}

/// JSON text on one line: whitespace outside strings removed, every token kept as written.
fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
            in_string = c == '"';
        }
    }
    out
}
