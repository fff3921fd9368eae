//! Properties through LocalStack: arbitrary events come back as sent, batches of any size
//! arrive complete, and a FIFO queue keeps each group's order.
//!
//! Each property provisions one queue for all its cases, and each case forwards a whole batch
//! in one run of the forwarder, drains the queue and compares. "As sent" means: the body is the
//! forwarder's canonical form of the input line (minified, nulls left out, U+FFFE and U+FFFF
//! escaped) byte for byte; independently of that, the body means the same JSON as the line,
//! its number tokens are the line's, spelled the same; the message attributes are those of the
//! mode; and the judge finds the message conformant.
//!
//! Cases default to [`DEFAULT_CASES`]; `PROPTEST_CASES` raises (or lowers) it.

use std::collections::BTreeMap;

use forwarder::batch::{MAX_MESSAGE_BYTES, message_size};
use forwarder::message::{AttributeMode, ContentMode, MessageOptions, to_message};
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseResult, TestRunner};
use serde_json::Value;

use crate::common::{
    Fixture, QueueKind, Received, ReceivedExt, number_tokens, semantic, truncated,
};
use crate::strategies::{self, Event};

/// Cases per property when `PROPTEST_CASES` is not set: each one is a forwarder run and a
/// drain of a LocalStack queue.
const DEFAULT_CASES: u32 = 8;

/// The sources that name the message groups of the FIFO property.
const GROUP_SOURCES: [&str; 4] = [
    "/groups/a",
    "urn:example:group:b",
    "https://groups.example/c",
    "d",
];

#[test]
fn arbitrary_events_arrive_as_sent() {
    check_property(
        "prop-events",
        QueueKind::Standard,
        &(
            prop::collection::vec(strategies::event(), 1..=30),
            strategies::attribute_mode(),
        ),
        async |fixture, (events, mode)| {
            let lines: Vec<String> = events.iter().map(Event::line).collect();
            round_trip(fixture, &lines, mode, false).await.map(drop)
        },
    );
}

#[test]
fn events_near_the_size_limit_arrive_as_sent() {
    check_property(
        "prop-large",
        QueueKind::Standard,
        &(
            prop::collection::vec(strategies::event_to_fill(), 1..=3),
            prop::collection::vec(strategies::event(), 0..4),
            strategies::attribute_mode(),
        ),
        async |fixture, (large, small, mode)| {
            let mut lines: Vec<String> = large
                .iter()
                .map(|(event, slack, head)| fill(event, *slack, head, mode))
                .collect();
            lines.extend(small.iter().map(Event::line));
            round_trip(fixture, &lines, mode, false).await.map(drop)
        },
    );
}

#[test]
fn fifo_batches_arrive_complete_and_in_order_within_each_group() {
    check_property(
        "prop-fifo",
        QueueKind::Fifo,
        &(strategies::grouped_events(40), strategies::attribute_mode()),
        async |fixture, (events, mode)| {
            // Ids unique to the case: SQS drops a deduplication id (source and id) it has
            // seen in the last five minutes.
            let nonce = &uuid::Uuid::new_v4().simple().to_string()[..12];
            let sent: Vec<(&str, String)> = events
                .iter()
                .enumerate()
                .map(|(index, (group, _))| (GROUP_SOURCES[*group], format!("{nonce}-{index}")))
                .collect();
            let lines: Vec<String> = events
                .iter()
                .zip(&sent)
                .map(|((_, event), (source, id))| {
                    event
                        .clone()
                        .with("source", &Value::from(*source).to_string())
                        .with("id", &Value::from(id.as_str()).to_string())
                        .line()
                })
                .collect();
            let received = round_trip(fixture, &lines, mode, true).await?;
            for source in GROUP_SOURCES {
                let expected: Vec<&str> = sent
                    .iter()
                    .filter(|(s, _)| *s == source)
                    .map(|(_, id)| id.as_str())
                    .collect();
                let in_group: Vec<&Received> = received
                    .iter()
                    .filter(|m| m.system.get("MessageGroupId").map(String::as_str) == Some(source))
                    .collect();
                let ids: Vec<String> = in_group
                    .iter()
                    .map(|m| m.body_json()["id"].as_str().unwrap_or_default().to_owned())
                    .collect();
                prop_assert_eq!(&ids, &expected, "group {} out of order", source);
                let sequence: Vec<u128> = in_group
                    .iter()
                    .map(|m| {
                        m.system
                            .get("SequenceNumber")
                            .and_then(|n| n.parse().ok())
                            .unwrap_or_default()
                    })
                    .collect();
                prop_assert!(
                    sequence.windows(2).all(|pair| pair[0] < pair[1]),
                    "group {} sequence numbers not increasing: {:?}",
                    source,
                    sequence
                );
            }
            Ok(())
        },
    );
}

/// Proptest's configuration with the case count defaulting to [`DEFAULT_CASES`] and shrinking
/// kept short (each step is a forwarder run), unless `PROPTEST_CASES` and
/// `PROPTEST_MAX_SHRINK_ITERS` say otherwise. Failing seeds go to
/// `properties.proptest-regressions` beside this file.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig {
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    if std::env::var_os("PROPTEST_MAX_SHRINK_ITERS").is_none() {
        config.max_shrink_iters = 64;
    }
    config
}

/// Provisions one queue of `kind`, runs `case` on values of `strategy` against it, and destroys
/// the queue before reporting the outcome.
fn check_property<S: Strategy>(
    label: &str,
    kind: QueueKind,
    strategy: &S,
    case: impl AsyncFn(&Fixture, S::Value) -> TestCaseResult,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let fixture = runtime.block_on(Fixture::new(label, kind));
    let mut runner = TestRunner::new(config());
    let result = runner.run(strategy, |value| runtime.block_on(case(&fixture, value)));
    runtime.block_on(fixture.destroy());
    if let Err(err) = result {
        panic!("{err}");
    }
}

/// What the forwarder should make of one input line.
#[derive(Debug)]
struct Expected {
    line: String,
    body: String,
    attributes: BTreeMap<String, String>,
    group: Option<String>,
}

/// Forwards `lines` in one run and checks that each arrives as sent (see the module's
/// documentation); returns what was received, in the order received.
async fn round_trip(
    fixture: &Fixture,
    lines: &[String],
    mode: AttributeMode,
    fifo: bool,
) -> Result<Vec<Received>, TestCaseError> {
    let options = MessageOptions {
        content_mode: ContentMode::Structured,
        attributes: mode,
        group_by: None,
        fifo,
    };
    let mut expected: Vec<Expected> = lines.iter().map(|l| expect(l, &options)).collect();
    let forwarded = fixture
        .forward("case.ndjson", lines, &["--attributes", mode_arg(mode)])
        .await;
    forwarded.assert_all_sent(lines.len());
    let received = fixture.receive_all(lines.len()).await;
    prop_assert_eq!(received.len(), lines.len(), "messages received");
    for message in &received {
        let index = expected.iter().position(|e| e.body == message.body);
        let Some(index) = index else {
            return Err(TestCaseError::fail(format!(
                "a body that was not sent: {}",
                truncated(&message.body)
            )));
        };
        let expected = expected.swap_remove(index);
        prop_assert_eq!(
            semantic(&expected.line, true),
            semantic(&message.body, false),
            "not the same JSON"
        );
        prop_assert_eq!(
            number_tokens(&expected.line),
            number_tokens(&message.body),
            "number tokens changed"
        );
        prop_assert_eq!(&message.string_attributes(), &expected.attributes);
        prop_assert!(
            message
                .message_attributes
                .values()
                .all(|(data_type, _)| data_type == "String")
        );
        prop_assert_eq!(
            message.system.get("MessageGroupId"),
            expected.group.as_ref()
        );
        let verdict = conformance::judge(&message.message());
        prop_assert!(
            verdict.conformant,
            "judged not conformant: {:?}\n{}",
            verdict.problems,
            truncated(&message.body)
        );
    }
    Ok(received)
}

/// The body, attributes and group the forwarder makes of `line`.
fn expect(line: &str, options: &MessageOptions) -> Expected {
    let event = forwarder::event::parse_event(line.as_bytes())
        .unwrap_or_else(|err| panic!("the forwarder refuses a generated event ({err}): {line}"));
    let outgoing = to_message(&event, options)
        .unwrap_or_else(|err| panic!("no message for a generated event ({err}): {line}"));
    Expected {
        line: line.to_owned(),
        body: std::sync::Arc::unwrap_or_clone(outgoing.body),
        attributes: outgoing.attributes.into_iter().collect(),
        group: outgoing.group_id,
    }
}

/// The event with string data that makes its message exactly `slack` bytes short of SQS's
/// limit (body and message attributes counted as SQS counts them): `head`, then ASCII.
fn fill(event: &Event, slack: usize, head: &str, mode: AttributeMode) -> String {
    let options = MessageOptions {
        content_mode: ContentMode::Structured,
        attributes: mode,
        ..MessageOptions::default()
    };
    let size = |line: &str| {
        let outgoing = to_message(
            &forwarder::event::parse_event(line.as_bytes()).expect("a valid event"),
            &options,
        )
        .expect("a message");
        message_size(&outgoing.body, &outgoing.attributes)
    };
    let with_data = |data: String| event.clone().with("data", &Value::from(data).to_string());
    let target = MAX_MESSAGE_BYTES - slack;
    let base = size(&with_data(head.to_owned()).line());
    let padding: String = "The quick brown fox jumps over the lazy dog. "
        .chars()
        .cycle()
        .take(target.saturating_sub(base))
        .collect();
    let line = with_data(format!("{head}{padding}")).line();
    assert_eq!(size(&line), target, "filled to the intended size");
    line
}

fn mode_arg(mode: AttributeMode) -> &'static str {
    match mode {
        AttributeMode::None => "none",
        AttributeMode::Cloudevents => "cloudevents",
    }
}
