//! One NDJSON line through the parser and validator, and every valid event through the encoder:
//! nothing may panic, overflow the stack or loop, and an encoded event must read back as the
//! same event.

#![no_main]

use forwarder::encode::{encode, sqs_safe};
use forwarder::event::parse_event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    let Ok(event) = parse_event(line) else {
        return;
    };
    let body = encode(&event);
    assert!(
        sqs_safe(&body),
        "the body holds a character SQS refuses: {body:?}"
    );
    let again = parse_event(body.as_bytes())
        .unwrap_or_else(|error| panic!("the encoded event does not parse: {error}: {body:?}"));
    assert_eq!(encode(&again), body, "encoding is not stable");
    assert_eq!(again.id(), event.id());
    assert_eq!(again.ty(), event.ty());
    assert_eq!(again.source(), event.source());
});
