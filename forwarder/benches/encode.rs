//! The cost of one event: parse, validate and encode, against a plain serde_json parse into a
//! `Value` and serialise of the same bytes, in one group so the ratio comes from one run.
//!
//! The target: the forwarder takes at most twice as long as serde_json.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use forwarder::encode::encode;
use forwarder::event::parse_event;

const IOT: &str = r#"{"specversion":"1.0","id":"aa12dc4c-c5ed-4b46-92e5-5a726f4daa81","source":"golioth/app/gateway/coap","type":"DEVICE_STREAM_TYPE","subject":"stream","datacontenttype":"application/json","time":"2022-01-27T16:17:06.458868Z","data":{"data":{"temp":32},"device_id":"612d3cecf3ee17d321adbec6","project_id":"my-first-project","timestamp":{"nanos":174295000,"seconds":1643300226}}}"#;

/// An event of at least 16 KiB: a batch of sensor readings with strings, numbers, booleans and a
/// little non-ASCII text.
fn large_event() -> String {
    let mut readings = String::new();
    let mut i = 0u32;
    while readings.len() < 16 * 1024 {
        if i > 0 {
            readings.push(',');
        }
        // Writing into a String cannot fail.
        let _ = write!(
            readings,
            r#"{{"sensor":"sensor-{i:04}","at":"2022-01-27T16:17:{:02}.{i:06}Z","value":{}.{:03},"ok":{},"note":"température ±{i} °C","tags":["a","b",{i}]}}"#,
            i % 60,
            20 + i % 15,
            (i * 37) % 1000,
            !i.is_multiple_of(7),
        );
        i += 1;
    }
    format!(
        r#"{{"specversion":"1.0","id":"bench-{i}","source":"/sensors/hall-1","type":"com.example.readings","datacontenttype":"application/json","time":"2022-01-27T16:17:06.458868Z","data":{{"readings":[{readings}]}}}}"#
    )
}

fn encode_event(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (name, line) in [("iot", IOT.to_owned()), ("16k", large_event())] {
        group.throughput(Throughput::Bytes(line.len() as u64));
        group.bench_with_input(BenchmarkId::new("forwarder", name), &line, |b, line| {
            b.iter(|| {
                let event = parse_event(black_box(line.as_bytes())).expect("the event is valid");
                encode(&event)
            });
        });
        group.bench_with_input(BenchmarkId::new("serde_json", name), &line, |b, line| {
            b.iter(|| {
                let value: serde_json::Value =
                    serde_json::from_slice(black_box(line.as_bytes())).expect("the event is JSON");
                serde_json::to_string(&value).expect("a Value serialises")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, encode_event);
criterion_main!(benches);
