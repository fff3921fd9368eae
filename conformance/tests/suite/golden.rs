//! Golden: the forwarder's sample events, the IoT platform example among them, arrive byte for
//! byte as written, and the judge finds each conformant.

use crate::common::{Fixture, QueueKind, assert_conformant, sample_lines};

/// The IoT platform example of the forwarder's issue, as the platform sends it.
const IOT: &str = r#"{"specversion":"1.0","id":"aa12dc4c-c5ed-4b46-92e5-5a726f4daa81","source":"golioth/app/gateway/coap","type":"DEVICE_STREAM_TYPE","subject":"stream","datacontenttype":"application/json","time":"2022-01-27T16:17:06.458868Z","data":{"data":{"temp":32},"device_id":"612d3cecf3ee17d321adbec6","project_id":"my-first-project","timestamp":{"nanos":174295000,"seconds":1643300226}}}"#;

#[tokio::test]
async fn sample_events_arrive_exactly_on_a_standard_queue() {
    check("golden-std", QueueKind::Standard, "cloudevents").await;
}

#[tokio::test]
async fn sample_events_arrive_exactly_on_a_fifo_queue() {
    check("golden-fifo", QueueKind::Fifo, "none").await;
}

/// Forwards every sample event with `--attributes attributes` and compares the bodies with the
/// input lines, which are canonical (minified, no nulls, U+FFFE and U+FFFF escaped).
async fn check(label: &str, kind: QueueKind, attributes: &str) {
    let lines = sample_lines();
    assert!(
        lines.iter().any(|line| line == IOT),
        "the IoT example is not among the sample events"
    );
    for line in &lines {
        let event = forwarder::event::parse_event(line.as_bytes())
            .unwrap_or_else(|err| panic!("a sample event is refused ({err}): {line}"));
        assert_eq!(
            &forwarder::encode::encode(&event),
            line,
            "a sample event is not in canonical form"
        );
    }
    let fixture = Fixture::new(label, kind).await;
    fixture
        .forward("samples.ndjson", &lines, &["--attributes", attributes])
        .await
        .assert_all_sent(lines.len());
    let received = fixture.receive_all(lines.len()).await;
    let mut bodies: Vec<&str> = received.iter().map(|m| m.body.as_str()).collect();
    bodies.sort_unstable();
    let mut expected: Vec<&str> = lines.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(bodies, expected);
    assert_conformant(&received);
    fixture.destroy().await;
}
