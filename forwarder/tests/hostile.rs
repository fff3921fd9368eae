//! Hostile input through `send` and `serve`: invalid UTF-8, a BOM, NUL bytes, truncated JSON,
//! a 100 MB line, nesting 10,000 deep, numbers of 10,000 digits, duplicate keys, and every
//! invalid event of the official CloudEvents format tests (read at run time from
//! `CLOUDEVENTS_CONFORMANCE_DIR`, by default `../shared/cloudevents` from the workspace root).
//! Each is refused with a one-line reason that names its position, and none crashes the
//! forwarder or stops the valid events around it.

mod support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use serde_json::value::RawValue;

use support::{Running, TestQueue};

/// Peak resident memory allowed to the forwarder, in KiB.
const MAX_PEAK_KIB: u64 = 64 * 1024;

/// The ids of the corpus's lines that look hostile but are valid JSON and valid events.
const DELIVERED_IDS: [&str; 3] = ["digits-data", "digits-fraction", "dup-data"];

/// The media type of structured mode.
const STRUCTURED: &str = "application/cloudevents+json";

/// What must become of one line.
#[derive(Debug, Clone)]
enum Expect {
    /// Refused, the reason containing this text.
    Refused(&'static str),
    /// Valid despite its looks: forwarded byte-exact.
    Delivered,
}

/// One hostile line: a name for messages, its bytes, and what must become of it.
#[derive(Debug, Clone)]
struct Case {
    name: String,
    line: Vec<u8>,
    expect: Expect,
}

fn case(name: &str, line: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name: name.to_owned(),
        line: line.into(),
        expect,
    }
}

/// An event with `id` and extra members (`extra` starts with a comma).
fn event(id: &str, extra: &str) -> String {
    format!(r#"{{"specversion":"1.0","id":"{id}","source":"/hostile","type":"t"{extra}}}"#)
}

fn corpus() -> Vec<Case> {
    use Expect::{Delivered, Refused};
    let deep = format!(r#","data":{}{}"#, "[".repeat(10_000), "]".repeat(10_000));
    let digits = "7".repeat(10_000);
    let mut cases = vec![
        case(
            "invalid UTF-8",
            [
                &br#"{"specversion":"1.0","id":"utf8-"#[..],
                b"\xff\xfe\x80",
                &br#"","source":"/s","type":"t"}"#[..],
            ]
            .concat(),
            Refused("not valid UTF-8: invalid byte at offset 32"),
        ),
        case(
            "overlong UTF-8 encoding of a slash",
            [
                &br#"{"specversion":"1.0","id":"x","source":""#[..],
                b"\xc0\xaf",
                &br#"","type":"t"}"#[..],
            ]
            .concat(),
            Refused("not valid UTF-8"),
        ),
        case(
            "a BOM",
            format!("\u{feff}{}", event("bom", "")),
            Refused("byte order mark"),
        ),
        case(
            "a NUL byte in a string",
            event("nul\0byte", ""),
            Refused("control character"),
        ),
        case(
            "NUL bytes only",
            b"\0\0\0\0".to_vec(),
            Refused("not valid JSON"),
        ),
        case(
            "truncated JSON",
            r#"{"specversion":"1.0","id":"trunc","sou"#,
            Refused("not valid JSON"),
        ),
        case(
            "an unterminated string",
            r#"{"id":"x"#,
            Refused("not valid JSON"),
        ),
        case(
            "trailing garbage",
            format!("{} x", event("t", "")),
            Refused("not valid JSON"),
        ),
        case(
            "two events on one line",
            format!("{0}{0}", event("two", "")),
            Refused("not valid JSON"),
        ),
        case(
            "nesting 10,000 deep",
            event("deep", &deep),
            Refused("nested deeper than 127"),
        ),
        case(
            "nesting 10,000 deep in an extension",
            format!(
                r#"{{"specversion":"1.0","id":"d","source":"/s","type":"t","ext":{}{}}}"#,
                "{\"a\":".repeat(10_000),
                "}".repeat(10_000)
            ),
            Refused("not valid JSON"),
        ),
        case(
            "a 10,000-digit extension value",
            event("digits-ext", &format!(r#","ext":{digits}"#)),
            Refused("32-bit range"),
        ),
        case(
            "a 10,000-digit id",
            format!(r#"{{"specversion":"1.0","id":{digits},"source":"/s","type":"t"}}"#),
            Refused("attribute `id`"),
        ),
        case(
            "a 10,000-digit number as data",
            event("digits-data", &format!(r#","data":{digits}"#)),
            Delivered,
        ),
        case(
            "a 10,000-digit fraction as data",
            event(
                "digits-fraction",
                &format!(r#","data":[0.{digits}e-99999]"#),
            ),
            Delivered,
        ),
        case(
            "a duplicate id",
            event("dup", r#","id":"dup2""#),
            Refused("duplicate attribute `id`"),
        ),
        case(
            "a duplicate extension",
            event("dup-ext", r#","ext":"a","ext":"b""#),
            Refused("duplicate attribute `ext`"),
        ),
        case(
            "duplicate keys inside data",
            event("dup-data", r#","data":{"k":1,"k":2}"#),
            Delivered,
        ),
        case("an array", "[]", Refused("not valid JSON")),
        case("null", "null", Refused("not valid JSON")),
        case("a string", r#""an event""#, Refused("not valid JSON")),
        case(
            "an empty object",
            "{}",
            Refused("missing required attribute"),
        ),
        case(
            "a lone surrogate escape in data",
            event("surrogate-data", r#","data":"\ud800""#),
            Refused("attribute `data`: holds a lone surrogate escape"),
        ),
        case(
            "a leap second away from 23:59:60 UTC",
            event("leap", r#","time":"2018-04-05T12:00:60Z""#),
            Refused("attribute `time`: not an RFC 3339 timestamp"),
        ),
        case(
            "an IP-literal that is neither IPv6 nor IPvFuture",
            r#"{"specversion":"1.0","id":"ip","source":"//[zz]/x","type":"t"}"#,
            Refused("attribute `source`: not a URI-reference"),
        ),
        case(
            "object data under a non-JSON content type",
            event(
                "text-object",
                r#","datacontenttype":"text/plain","data":{"a":1}"#,
            ),
            Refused("attribute `data`: must be a string when `datacontenttype` is not JSON"),
        ),
        case(
            "a lone surrogate escape in an attribute",
            event("surrogate-subject", r#","subject":"\ud800""#),
            Refused("attribute `subject`: not a valid JSON string"),
        ),
        case(
            "a control character in a name",
            event("ctl", ",\"e\u{1}x\":\"v\""),
            Refused("not valid JSON"),
        ),
    ];
    for (id, raw) in official_invalid_events() {
        cases.push(case(&format!("official {id}"), raw, Refused("")));
    }
    cases
}

/// The invalid events of the official CloudEvents format tests, each as one line of its raw text.
fn official_invalid_events() -> Vec<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Suite {
        tests: Vec<Official>,
    }
    #[derive(serde::Deserialize)]
    struct Official {
        id: String,
        event: Box<RawValue>,
    }
    let path = official_dir().join("format-tests/json/invalid-events.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: set CLOUDEVENTS_CONFORMANCE_DIR to the folder holding format-tests/json",
            path.display()
        )
    });
    let suite: Suite = serde_json::from_str(&text).expect("invalid-events.json");
    assert!(suite.tests.len() >= 20, "the official suite has its events");
    // A raw newline cannot be inside a JSON string, so it is whitespace between tokens.
    suite
        .tests
        .into_iter()
        .map(|t| (t.id, t.event.get().replace(['\n', '\r'], " ")))
        .collect()
}

/// The invalid batches of the official format tests, raw.
fn official_invalid_batches() -> Vec<(String, String)> {
    let path = official_dir().join("format-tests/json/invalid-batches.json");
    let text = std::fs::read_to_string(&path).expect("invalid-batches.json");
    let suite: Value = serde_json::from_str(&text).expect("invalid-batches.json");
    suite["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap_or_default().to_owned(),
                t["batch"].to_string(),
            )
        })
        .collect()
}

fn official_dir() -> PathBuf {
    match std::env::var_os("CLOUDEVENTS_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/cloudevents"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_refuses_each_hostile_line_and_forwards_the_rest() {
    let queue = TestQueue::new("hostile").await;
    let cases = corpus();
    // Valid events before, between and after the hostile lines; and an over-long line too.
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut expected: Vec<(u64, Case)> = Vec::new();
    let mut valid_ids = Vec::new();
    let valid = |lines: &mut Vec<Vec<u8>>, valid_ids: &mut Vec<String>| {
        let id = format!("ok-{}", valid_ids.len());
        lines.push(event(&id, r#","data":{"fine":true}"#).into_bytes());
        valid_ids.push(id);
    };
    for case in cases.iter().cloned().chain([Case {
        name: "a 3 MiB line".to_owned(),
        line: event("long", &format!(r#","data":"{}""#, "l".repeat(3 << 20))).into_bytes(),
        expect: Expect::Refused("over the limit of 2097152 bytes (--max-line-bytes)"),
    }]) {
        valid(&mut lines, &mut valid_ids);
        lines.push(case.line.clone());
        expected.push((lines.len() as u64, case));
    }
    valid(&mut lines, &mut valid_ids);
    let input = queue.dir.join("input.ndjson");
    let dead = queue.dir.join("dead.ndjson");
    std::fs::write(
        &input,
        lines
            .iter()
            .flat_map(|l| l.iter().chain(b"\n"))
            .copied()
            .collect::<Vec<u8>>(),
    )
    .expect("input");

    let finished = Running::spawn(
        support::forwarder()
            .arg("send")
            .args(queue.args(&queue.localstack))
            .args(["--summary-json", "--dead-letter"])
            .arg(&dead)
            .arg(&input)
            .stdin(Stdio::null()),
    )
    .wait(Duration::from_secs(300));
    let stderr = &finished.stderr;
    assert_eq!(
        finished.status.code(),
        Some(1),
        "refused lines make the status 1:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let refused: Vec<&(u64, Case)> = expected
        .iter()
        .filter(|(_, c)| matches!(c.expect, Expect::Refused(_)))
        .collect();
    let summary = support::summary(&finished);
    assert_eq!(
        summary["read"].as_u64(),
        Some(lines.len() as u64),
        "{summary}"
    );
    assert_eq!(
        summary["refused"].as_u64(),
        Some(refused.len() as u64),
        "{summary}"
    );
    assert_eq!(
        summary["sent"].as_u64(),
        Some((valid_ids.len() + DELIVERED_IDS.len()) as u64),
        "{summary}"
    );
    assert_eq!(
        summary["deadLettered"].as_u64(),
        Some(refused.len() as u64),
        "{summary}"
    );

    // One line of stderr per refused line, naming FILE:LINE, and nothing else but the summary.
    let label = input.display().to_string();
    let reports: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with(&format!("{label}:")))
        .collect();
    assert_eq!(reports.len(), refused.len(), "{stderr}");
    assert_eq!(stderr.lines().count(), refused.len() + 1, "{stderr}");
    let records = support::dead_letters(&dead);
    for (number, case) in &refused {
        let Expect::Refused(why) = case.expect else {
            unreachable!()
        };
        let prefix = format!("{label}:{number}: ");
        let report = reports
            .iter()
            .find(|r| r.starts_with(&prefix))
            .unwrap_or_else(|| panic!("{}: no report at {prefix}:\n{stderr}", case.name));
        assert!(report.contains(why), "{}: {report}", case.name);
        assert!(
            report.len() < 600,
            "{}: the reason is short: {report}",
            case.name
        );
        let (_, reason, record) = records
            .iter()
            .find(|(_, _, r)| r["line"].as_u64() == Some(*number))
            .unwrap_or_else(|| panic!("{}: not dead-lettered", case.name));
        assert_eq!(
            report.strip_prefix(&prefix),
            Some(reason.as_str()),
            "{}",
            case.name
        );
        if case.line.len() <= 2 << 20 {
            let original = match record["original"].as_str() {
                Some(text) => text.as_bytes().to_vec(),
                None => base64_decode(
                    record["originalBase64"]
                        .as_str()
                        .expect("original or base64"),
                ),
            };
            assert_eq!(
                original, case.line,
                "{}: the original line is kept",
                case.name
            );
        }
    }

    let bodies = queue.read_all().await;
    let queued = support::id_counts(&bodies);
    for id in valid_ids.iter().map(String::as_str).chain(DELIVERED_IDS) {
        assert_eq!(queued.get(id), Some(&1), "{id} arrived once");
    }
    assert_eq!(queued.len(), valid_ids.len() + DELIVERED_IDS.len());
    for (_, case) in expected
        .iter()
        .filter(|(_, c)| matches!(c.expect, Expect::Delivered))
    {
        let line = String::from_utf8(case.line.clone()).expect("utf-8");
        assert!(bodies.contains(&line), "{} arrives byte-exact", case.name);
    }
}

/// The start of the 100 MB line: an event whose data is a 100 MiB string.
const HUGE_PREFIX: &str = r#"{"specversion":"1.0","id":"huge","source":"/s","type":"t","data":""#;

#[test]
fn send_refuses_a_100_mb_line_on_stdin_without_holding_it() {
    let mut child = Running::spawn(
        support::forwarder()
            .args([
                "send",
                "--queue-url",
                "http://127.0.0.1:9/000000000000/never",
                "--region",
                "us-east-1",
            ])
            .args([
                "--endpoint-url",
                "http://127.0.0.1:9",
                "--summary-json",
                "--only-type",
                "never",
            ])
            .stdin(Stdio::piped()),
    );
    let mut stdin = child.stdin().expect("stdin");
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        stdin.write_all(event("before", "").as_bytes())?;
        stdin.write_all(b"\n")?;
        stdin.write_all(HUGE_PREFIX.as_bytes())?;
        let chunk = vec![b'h'; 1 << 20];
        for _ in 0..100 {
            stdin.write_all(&chunk)?;
        }
        stdin.write_all(b"\"}\n")?;
        stdin.write_all(event("after", "").as_bytes())?;
        stdin.write_all(b"\n")
    });
    let started = Instant::now();
    let finished = child.wait(Duration::from_secs(300));
    writer
        .join()
        .expect("writer")
        .expect("the forwarder read all of stdin");
    let stderr = &finished.stderr;
    let summary = support::summary(&finished);
    // The two valid events are filtered out by type, so nothing needs a queue.
    assert_eq!(summary["read"].as_u64(), Some(3), "{summary}\n{stderr}");
    assert_eq!(summary["refused"].as_u64(), Some(1), "{summary}");
    assert_eq!(summary["filtered"].as_u64(), Some(2), "{summary}");
    assert_eq!(finished.status.code(), Some(1), "{stderr}");
    eprintln!(
        "100 MB line on stdin: peak RSS {} KiB, {:.1}s",
        finished.peak_kib,
        finished.elapsed.as_secs_f64()
    );
    let size = HUGE_PREFIX.len() + 100 * (1 << 20) + 2;
    assert!(
        stderr.contains(&format!(
            "<stdin>:2: line of {size} bytes is over the limit of 2097152 bytes (--max-line-bytes)"
        )),
        "{stderr}"
    );
    assert!(
        finished.peak_kib < MAX_PEAK_KIB,
        "peak RSS {} KiB while skipping a 100 MB line ({:?})",
        finished.peak_kib,
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_each_hostile_event_and_stays_up() {
    let queue = TestQueue::new("hostile-serve").await;
    let mut running = Running::spawn(
        support::forwarder()
            .arg("serve")
            .args(queue.args(&queue.localstack))
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null()),
    );
    let url = support::listening(&mut running).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let post = |content_type: &'static str, body: Vec<u8>| {
        let request = client
            .post(format!("{url}/events"))
            .header("content-type", content_type)
            .body(body);
        async move {
            let response = request.send().await.expect("serve answers");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
    };
    let mut valid_ids = Vec::new();
    for (n, case) in corpus().into_iter().enumerate() {
        let id = format!("ok-{n}");
        let (status, _) = post(STRUCTURED, event(&id, "").into_bytes()).await;
        assert_eq!(status, 200, "valid event before {}", case.name);
        valid_ids.push(id);
        let (status, body) = post(STRUCTURED, case.line.clone()).await;
        match case.expect {
            Expect::Delivered => assert_eq!(status, 200, "{}: {body}", case.name),
            Expect::Refused(_) => {
                assert_eq!(status, 400, "{}: {body}", case.name);
                let problem: Value = serde_json::from_str(&body).expect("problem+json");
                let detail = problem["detail"].as_str().unwrap_or_default();
                assert!(
                    !detail.is_empty() && !detail.contains('\n'),
                    "{}: {body}",
                    case.name
                );
            }
        }
        // The same line inside a batch, between two valid events: refused whole, at index 1.
        if matches!(case.expect, Expect::Refused(_)) && std::str::from_utf8(&case.line).is_ok() {
            let batch = [
                b"[".as_slice(),
                event("b0", "").as_bytes(),
                b",",
                &case.line,
                b",",
                event("b2", "").as_bytes(),
                b"]",
            ]
            .concat();
            let (status, body) = post("application/cloudevents-batch+json", batch).await;
            assert!(
                matches!(status, 400),
                "{} in a batch: {status} {body}",
                case.name
            );
            let problem: Value = serde_json::from_str(&body).expect("problem+json");
            // A line that breaks the array itself makes the whole body unreadable as a batch.
            let unsplittable = body.contains("a batch must be a JSON array");
            if unsplittable {
                assert!(problem.get("index").is_none(), "{}: {body}", case.name);
            } else {
                assert_eq!(problem["index"], 1, "{}: {body}", case.name);
            }
        }
    }
    for (id, batch) in official_invalid_batches() {
        let (status, body) = post("application/cloudevents-batch+json", batch.into_bytes()).await;
        assert_eq!(status, 400, "official {id}: {body}");
    }
    // A 100 MB body without a length is refused once it passes the limit, not read whole.
    let address = url.trim_start_matches("http://").to_owned();
    let (status, sent) = tokio::task::spawn_blocking(move || stream_huge_body(&address))
        .await
        .expect("join");
    assert_eq!(status, 413, "a 100 MB chunked body is refused");
    assert!(
        sent < 100 << 20,
        "refused before the end ({sent} bytes sent)"
    );

    let (status, _) = post(STRUCTURED, event("last", "").into_bytes()).await;
    assert_eq!(status, 200, "serve still takes events");
    valid_ids.push("last".to_owned());
    assert!(running.running(), "serve is still up");
    let peak = running.peak_kib();
    eprintln!("serve through the hostile corpus: peak RSS {peak} KiB");
    running.terminate();
    let finished = running.wait(Duration::from_secs(60));
    assert_eq!(finished.status.code(), Some(0), "{}", finished.stderr);
    assert!(!finished.stderr.contains("panicked"), "{}", finished.stderr);
    assert!(peak < MAX_PEAK_KIB, "peak RSS {peak} KiB");

    let queued = support::id_counts(&queue.read_all().await);
    let ids: HashSet<&str> = queued.keys().map(String::as_str).collect();
    for id in &valid_ids {
        assert!(ids.contains(id.as_str()), "{id} arrived");
    }
    for id in DELIVERED_IDS {
        assert!(ids.contains(id), "{id} arrived");
    }
    for id in ["b0", "b2"] {
        assert!(
            !ids.contains(id),
            "a refused batch is refused whole: {id} is queued"
        );
    }
}

/// Posts a 100 MB structured body in chunked encoding over a raw connection; returns the status
/// and how many body bytes were written before the server answered or closed.
fn stream_huge_body(address: &str) -> (u16, usize) {
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "POST /events HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/cloudevents+json\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("head");
    let chunk = vec![b' '; 1 << 20];
    let mut sent = 0;
    for _ in 0..100 {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if stream.write_all(&framed).is_err() {
            break;
        }
        sent += chunk.len();
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..n]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer after {sent} bytes: {text}"));
    (status, sent)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}
