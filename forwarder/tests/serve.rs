//! `forwarder serve` end to end: the real binary, a real HTTP client and the embedded LocalStack.
//!
//! Each test creates its own queue, starts its own `serve` process on a free port, and removes
//! both at the end (the process is killed by a guard even when the test fails).

mod support;

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::TestQueue;

/// The embedded LocalStack's endpoint.
struct Sqs {
    endpoint: String,
}

/// A running `forwarder serve`, killed when dropped.
struct Server {
    child: Child,
    base: String,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

async fn localstack() -> Sqs {
    let (_, endpoint) = testkit::localstack_sqs().await;
    Sqs { endpoint }
}

impl Sqs {
    /// Creates a queue whose name no other test (or run) uses, removed on drop.
    async fn queue(&self, test: &str) -> TestQueue {
        TestQueue::new(&format!("serve-{test}")).await
    }

    /// Starts `serve` in front of the queue at `queue_url` on LocalStack.
    fn serve(&self, queue_url: &str, extra: &[&str]) -> Server {
        let mut args = vec!["--queue-url", queue_url, "--endpoint-url", &self.endpoint];
        args.extend_from_slice(extra);
        Server::start(&args)
    }
}

/// The bodies in `queue`, sorted; the queue is drained.
async fn bodies(queue: &TestQueue) -> Vec<String> {
    let mut bodies: Vec<_> = queue.drain(0).await.into_iter().map(|m| m.body).collect();
    bodies.sort();
    bodies
}

impl Server {
    /// Runs `forwarder serve --listen 127.0.0.1:0 ARGS` and waits for the address it prints.
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_forwarder"))
            .arg("serve")
            .args(["--region", "us-east-1", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", localstack::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", localstack::SECRET_KEY)
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ENDPOINT_URL_SQS")
            .env_remove("AWS_PROFILE")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the forwarder binary starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (address_tx, address) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr is piped");
        let log = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = line.strip_prefix("listening on ") {
                    let _ = address_tx.send(address.to_owned());
                }
                if let Ok(mut log) = log.lock() {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        let base = match address.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "serve did not print its address; stderr:\n{}",
                    stderr.lock().map(|s| s.clone()).unwrap_or_default()
                );
            }
        };
        Server {
            child,
            base,
            stderr,
            reader: Some(reader),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The value of one line of `/metrics`, such as `forwarder_events_received_total`.
    async fn metric(&self, client: &reqwest::Client, name: &str) -> Option<u64> {
        let text = client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The pipe is closed once the process is gone, so the reader ends.
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

/// A structured event with the given id and extra members (starting with a comma).
fn event(id: &str, extra: &str) -> String {
    format!(r#"{{"specversion":"1.0","id":"{id}","source":"/test","type":"t"{extra}}}"#)
}

/// Posts a structured event.
async fn post_structured(client: &reqwest::Client, server: &Server, body: String) -> Answer {
    let response = client
        .post(server.url("/"))
        .header("content-type", "application/cloudevents+json")
        .body(body)
        .send()
        .await
        .expect("POST");
    Answer::read(response).await
}

/// A response: status, some headers, the JSON body.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    content_type: String,
    retry_after: Option<String>,
    authenticate: Option<String>,
    body: Value,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Answer {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (content_type, retry_after, authenticate) = (
            header("content-type").unwrap_or_default(),
            header("retry-after"),
            header("www-authenticate"),
        );
        let status = response.status();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            content_type,
            retry_after,
            authenticate,
            body,
        }
    }

    /// Checks a problem answer: status, `application/problem+json`, and the listed members.
    fn problem(&self, status: u16, members: Value) {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.content_type, "application/problem+json", "{self:?}");
        assert_eq!(self.body["status"], status, "{self:?}");
        assert!(self.body["title"].is_string(), "{self:?}");
        assert!(self.body["detail"].is_string(), "{self:?}");
        for (name, value) in members.as_object().expect("an object") {
            assert_eq!(&self.body[name], value, "`{name}` of {self:?}");
        }
    }

    /// Checks a success answer: the ids of the accepted events, in order.
    fn accepted(&self, ids: &[&str]) {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
        assert_eq!(self.body["accepted"], ids.len(), "{self:?}");
        assert_eq!(self.body["ids"], json!(ids), "{self:?}");
        assert_eq!(
            self.body["messageIds"].as_array().map(Vec::len),
            Some(ids.len()),
            "{self:?}"
        );
    }
}

#[tokio::test]
async fn binary_mode_lands_the_data_byte_exact() {
    let sqs = localstack().await;
    let queue = sqs.queue("binary").await;
    let server = sqs.serve(&queue.url, &[]);
    let client = http();
    let post = |id: &str, content_type: Option<&str>, extra: &[(&str, &str)], body: Vec<u8>| {
        let mut request = client
            .post(server.url("/events"))
            .header("ce-specversion", "1.0")
            .header("ce-id", id)
            .header("ce-source", "/sensors/1")
            .header("ce-type", "reading");
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        async move { Answer::read(request.body(body).send().await.expect("POST")).await }
    };

    let json_data = br#"{ "temp": 21.50, "big": 123456789012345678901234567890 }"#.to_vec();
    post("b-json", Some("application/json"), &[], json_data)
        .await
        .accepted(&["b-json"]);
    post(
        "b-text",
        Some("text/plain; charset=utf-8"),
        &[
            ("ce-subject", "caf%C3%A9%20%22x%22"),
            ("ce-time", "2024-05-01T12:00:00Z"),
        ],
        "héllo \"world\"\n".as_bytes().to_vec(),
    )
    .await
    .accepted(&["b-text"]);
    post(
        "b-bytes",
        Some("application/octet-stream"),
        &[("ce-priority", "high")],
        vec![0, 1, 2, 253, 254, 255],
    )
    .await
    .accepted(&["b-bytes"]);
    post("b-none", None, &[], Vec::new())
        .await
        .accepted(&["b-none"]);

    let expected = [
        r#"{"specversion":"1.0","id":"b-json","source":"/sensors/1","type":"reading","datacontenttype":"application/json","data":{"temp":21.50,"big":123456789012345678901234567890}}"#,
        r#"{"specversion":"1.0","id":"b-text","source":"/sensors/1","type":"reading","subject":"café \"x\"","time":"2024-05-01T12:00:00Z","datacontenttype":"text/plain; charset=utf-8","data":"héllo \"world\"\n"}"#,
        r#"{"specversion":"1.0","id":"b-bytes","source":"/sensors/1","type":"reading","priority":"high","datacontenttype":"application/octet-stream","data_base64":"AAEC/f7/"}"#,
        r#"{"specversion":"1.0","id":"b-none","source":"/sensors/1","type":"reading"}"#,
    ];
    let mut expected: Vec<_> = expected.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(bodies(&queue).await, expected);
    drop(server);
}

#[tokio::test]
async fn binary_requests_forwarded_in_binary_mode_keep_their_bodies() {
    let sqs = localstack().await;
    let queue = sqs.queue("binary-binary").await;
    let server = sqs.serve(&queue.url, &["--content-mode", "binary"]);
    let client = http();
    let post = |id: &str, content_type: Option<&str>, body: Vec<u8>| {
        let mut request = client
            .post(server.url("/events"))
            .header("ce-specversion", "1.0")
            .header("ce-id", id)
            .header("ce-source", "/sensors/1")
            .header("ce-type", "reading")
            .header("ce-subject", "caf%C3%A9");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        async move { Answer::read(request.body(body).send().await.expect("POST")).await }
    };
    let json_data = "{ \"temp\" : 21.50,\n  \"big\": 123456789012345678901234567890 }";
    post("b-json", Some("application/json"), json_data.into())
        .await
        .accepted(&["b-json"]);
    let text = "héllo \"world\"\n\ttabbed";
    post("b-text", Some("text/plain; charset=utf-8"), text.into())
        .await
        .accepted(&["b-text"]);
    // Bytes and no data cannot travel in binary mode: they go structured.
    post("b-bytes", Some("application/octet-stream"), vec![0, 1, 255])
        .await
        .accepted(&["b-bytes"]);
    post("b-none", None, Vec::new()).await.accepted(&["b-none"]);

    let mut received = queue.drain(4).await;
    received.sort_by(|a, b| a.body.cmp(&b.body));
    let context = |id: &str, content_type: Option<&str>| {
        let mut attributes: std::collections::BTreeMap<String, String> = [
            ("ce-specversion", "1.0"),
            ("ce-id", id),
            ("ce-source", "/sensors/1"),
            ("ce-type", "reading"),
            ("ce-subject", "café"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        if let Some(content_type) = content_type {
            attributes.insert("content-type".to_owned(), content_type.to_owned());
        }
        attributes
    };
    let actual: Vec<_> = received
        .iter()
        .map(|m| (m.body.clone(), m.string_attributes()))
        .collect();
    let expected = vec![
        (
            r#"{"specversion":"1.0","id":"b-bytes","source":"/sensors/1","type":"reading","subject":"café","datacontenttype":"application/octet-stream","data_base64":"AAH/"}"#.to_owned(),
            Default::default(),
        ),
        (
            r#"{"specversion":"1.0","id":"b-none","source":"/sensors/1","type":"reading","subject":"café"}"#.to_owned(),
            Default::default(),
        ),
        (text.to_owned(), context("b-text", Some("text/plain; charset=utf-8"))),
        (json_data.to_owned(), context("b-json", Some("application/json"))),
    ];
    let mut expected = expected;
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(actual, expected);
    drop(server);
}

#[tokio::test]
async fn structured_mode_lands_the_event_minified_with_attributes() {
    let sqs = localstack().await;
    let queue = sqs.queue("structured").await;
    let server = sqs.serve(&queue.url, &["--attributes", "cloudevents"]);
    let client = http();
    let body = "{ \"specversion\": \"1.0\", \"id\": \"s-1\", \"source\": \"golioth/app\",\n  \"type\": \"DEVICE\", \"subject\": \"stream\", \"datacontenttype\": \"application/json\",\n  \"data\": { \"n\": 0.1000000000000000055511151231257827, \"s\": \"a  b\" } }\n";
    post_structured(&client, &server, body.to_owned())
        .await
        .accepted(&["s-1"]);

    let messages = queue.drain(1).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(
        messages[0].body,
        r#"{"specversion":"1.0","id":"s-1","source":"golioth/app","type":"DEVICE","subject":"stream","datacontenttype":"application/json","data":{"n":0.1000000000000000055511151231257827,"s":"a  b"}}"#
    );
    let attributes = messages[0].string_attributes();
    let attributes: Vec<_> = attributes
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    assert_eq!(
        attributes,
        [
            ("ce-id", "s-1"),
            ("ce-source", "golioth/app"),
            ("ce-specversion", "1.0"),
            ("ce-subject", "stream"),
            ("ce-type", "DEVICE"),
            ("content-type", "application/json"),
        ]
    );
    drop(server);
}

#[tokio::test]
async fn batched_mode_sends_all_events_or_none() {
    let sqs = localstack().await;
    let queue = sqs.queue("batch").await;
    let server = sqs.serve(&queue.url, &[]);
    let client = http();
    let post = |body: String| {
        let request = client
            .post(server.url("/"))
            .header("content-type", "application/cloudevents-batch+json")
            .body(body);
        async move { Answer::read(request.send().await.expect("POST")).await }
    };

    let good = format!(
        "[\n {},\n {},\n {}\n]",
        event("k-1", r#","data":[1, 2]"#),
        event("k-2", r#","data_base64":"AAE=""#),
        event("k-3", "")
    );
    post(good).await.accepted(&["k-1", "k-2", "k-3"]);
    post("[]".to_owned()).await.accepted(&[]);
    let one_bad = format!(
        "[{},{},{}]",
        event("x-1", ""),
        event("x-2", r#","time":"yesterday""#),
        event("x-3", "")
    );
    post(one_bad).await.problem(
        400,
        json!({"attribute": "time", "rule": "rfc3339", "index": 1}),
    );
    post(format!("[{},{{}}]", event("y-1", ""))).await.problem(
        400,
        json!({"attribute": "id", "rule": "required", "index": 1}),
    );
    post(event("z-1", ""))
        .await
        .problem(400, json!({"rule": "json"}));

    assert_eq!(
        bodies(&queue).await,
        [
            event("k-1", r#","data":[1,2]"#),
            event("k-2", r#","data_base64":"AAE=""#),
            event("k-3", ""),
        ]
    );
    drop(server);
}

#[tokio::test]
async fn invalid_too_large_and_unsupported_requests_are_refused() {
    let sqs = localstack().await;
    let queue = sqs.queue("errors").await;
    let server = sqs.serve(&queue.url, &["--max-batch-body-bytes", "4096"]);
    let client = http();

    // 400: the problem names the attribute and the rule.
    post_structured(&client, &server, r#"{"specversion":"1.0","id":"1","source":"/s"}"#.into())
        .await
        .problem(
            400,
            json!({"type": "urn:forwarder:problem:invalid-event", "attribute": "type", "rule": "required"}),
        );
    post_structured(&client, &server, "{\"id\":".into())
        .await
        .problem(400, json!({"rule": "json"}));
    let binary = client
        .post(server.url("/"))
        .header("ce-specversion", "1.0")
        .header("ce-id", "1")
        .header("ce-source", "/s")
        .header("ce-type", "t")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("POST");
    Answer::read(binary)
        .await
        .problem(400, json!({"attribute": "data", "rule": "json"}));
    let binary = client
        .post(server.url("/"))
        .header("ce-specversion", "1.0")
        .header("ce-id", "1")
        .header("ce-source", "/s")
        .header("ce-type", "t")
        .header("ce-subject", "100%")
        .send()
        .await
        .expect("POST");
    Answer::read(binary).await.problem(
        400,
        json!({"attribute": "subject", "rule": "percent-encoding"}),
    );

    // 413: an event whose message is over the SQS limit, though its body is within the limit.
    let big = event("big", &format!(r#","data":"{}""#, "x".repeat(1_100_000)));
    let answer = post_structured(&client, &server, big).await;
    answer.problem(413, json!({"type": "urn:forwarder:problem:too-large"}));
    assert!(
        answer.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("over the SQS limit")),
        "{answer:?}"
    );
    // 413: a body over its limit.
    let batch = format!(
        "[{}]",
        event("b", &format!(r#","data":"{}""#, "x".repeat(5_000)))
    );
    let answer = client
        .post(server.url("/"))
        .header("content-type", "application/cloudevents-batch+json")
        .body(batch)
        .send()
        .await
        .expect("POST");
    Answer::read(answer)
        .await
        .problem(413, json!({"type": "urn:forwarder:problem:too-large"}));

    // 415: neither of the three modes.
    for content_type in [
        "application/json",
        "text/plain",
        "application/cloudevents+xml",
    ] {
        let answer = client
            .post(server.url("/"))
            .header("content-type", content_type)
            .body(event("m", ""))
            .send()
            .await
            .expect("POST");
        Answer::read(answer).await.problem(
            415,
            json!({"type": "urn:forwarder:problem:unsupported-media-type"}),
        );
    }

    // Health and metrics: every event read is counted as received, the invalid ones as refused.
    let health = client
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("GET");
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.expect("text"), "ok");
    assert_eq!(
        server
            .metric(&client, "forwarder_events_received_total")
            .await,
        Some(5)
    );
    assert_eq!(
        server
            .metric(&client, "forwarder_events_refused_total")
            .await,
        Some(5)
    );
    assert_eq!(
        server.metric(&client, "forwarder_events_sent_total").await,
        Some(0)
    );
    assert_eq!(
        server
            .metric(&client, "forwarder_http_responses_total{code=\"415\"}")
            .await,
        Some(3)
    );
    assert_eq!(
        server
            .metric(&client, "forwarder_http_responses_total{code=\"413\"}")
            .await,
        Some(2)
    );

    assert_eq!(bodies(&queue).await, Vec::<String>::new());
    drop(server);
}

#[tokio::test]
async fn a_configured_token_is_required_and_never_logged() {
    let sqs = localstack().await;
    let queue = sqs.queue("token").await;
    let token = "s3cr3t-t0ken.~+/";
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("serve-token-{}", std::process::id()));
    std::fs::write(&path, format!("{token}\n")).expect("write the token file");
    let server = sqs.serve(
        &queue.url,
        &[
            "--token-file",
            path.to_str().expect("UTF-8 path"),
            "--log-level",
            "trace",
        ],
    );
    let client = http();
    let post = |auth: Option<&str>, id: &str| {
        let mut request = client
            .post(server.url("/"))
            .header("content-type", "application/cloudevents+json")
            .body(event(id, ""));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        async move { Answer::read(request.send().await.expect("POST")).await }
    };

    let missing = post(None, "t-1").await;
    missing.problem(401, json!({"type": "urn:forwarder:problem:unauthorized"}));
    assert_eq!(missing.authenticate.as_deref(), Some("Bearer"));
    let wrong = post(Some("Bearer wrong-guess"), "t-2").await;
    wrong.problem(401, json!({}));
    assert_eq!(
        wrong.authenticate.as_deref(),
        Some("Bearer error=\"invalid_token\"")
    );
    post(Some("Basic czNjcjN0"), "t-3")
        .await
        .problem(401, json!({}));
    post(Some(&format!("Bearer {token}x")), "t-4")
        .await
        .problem(401, json!({}));
    post(Some(&format!("bearer {token}")), "t-5")
        .await
        .accepted(&["t-5"]);
    // Health and metrics stay open.
    let health = client
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("GET");
    assert_eq!(health.status(), StatusCode::OK);
    assert!(server.metric(&client, "forwarder_events_sent_total").await == Some(1));

    assert_eq!(bodies(&queue).await, [event("t-5", "")]);
    let log = Arc::clone(&server.stderr);
    drop(server);
    let log = log.lock().map(|log| log.clone()).unwrap_or_default();
    assert!(!log.contains(token), "the token is in the log:\n{log}");
    assert!(
        !log.contains("wrong-guess"),
        "a token is in the log:\n{log}"
    );
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn the_in_flight_limit_answers_429() {
    let mut hole = BlackHole::open().await;
    let server = hole.serve(&["--max-in-flight-requests", "1"]);
    let client = http();

    let first = tokio::spawn(post_structured_owned(
        client.clone(),
        server.url("/"),
        event("h-1", ""),
    ));
    // Once SQS got a connection, the first request holds the only slot.
    hole.connected().await;
    assert_eq!(
        server
            .metric(&client, "forwarder_http_requests_in_flight")
            .await,
        Some(1)
    );
    let second = post_structured(&client, &server, event("h-2", "")).await;
    second.problem(
        429,
        json!({"type": "urn:forwarder:problem:too-many-requests"}),
    );
    assert_eq!(second.retry_after.as_deref(), Some("1"));
    assert!(!first.is_finished());

    first.abort();
    drop(server);
}

#[tokio::test]
async fn a_request_over_its_time_answers_503() {
    let hole = BlackHole::open().await;
    let server = hole.serve(&["--request-timeout-seconds", "1"]);
    let client = http();
    let started = Instant::now();
    let answer = post_structured(&client, &server, event("o-1", "")).await;
    answer.problem(503, json!({"type": "urn:forwarder:problem:timeout"}));
    assert_eq!(answer.retry_after.as_deref(), Some("5"));
    assert!(started.elapsed() < Duration::from_secs(10));
    // The slot is free again.
    assert_eq!(
        server
            .metric(&client, "forwarder_http_requests_in_flight")
            .await,
        Some(0)
    );
    drop(server);
}

/// An SQS endpoint that accepts connections and never answers, so that a request stays in flight
/// for as long as a test needs.
struct BlackHole {
    endpoint: String,
    connected: Option<tokio::sync::oneshot::Receiver<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl BlackHole {
    async fn open() -> BlackHole {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (connected_tx, connected) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut connected_tx = Some(connected_tx);
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
                if let Some(tx) = connected_tx.take() {
                    let _ = tx.send(());
                }
            }
        });
        BlackHole {
            endpoint: format!("http://127.0.0.1:{port}"),
            connected: Some(connected),
            task,
        }
    }

    /// Starts `serve` with the black hole as SQS.
    fn serve(&self, extra: &[&str]) -> Server {
        let queue_url = format!("{}/000000000000/black-hole", self.endpoint);
        let mut args = vec!["--queue-url", &queue_url, "--endpoint-url", &self.endpoint];
        args.extend_from_slice(extra);
        Server::start(&args)
    }

    /// Waits until the forwarder has connected.
    async fn connected(&mut self) {
        let connected = self.connected.take().expect("waited once");
        tokio::time::timeout(Duration::from_secs(30), connected)
            .await
            .expect("the forwarder reaches SQS")
            .expect("connected");
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn post_structured_owned(client: reqwest::Client, url: String, body: String) -> StatusCode {
    post_owned(client, url, "application/cloudevents+json", body).await
}

/// Posts `body` as `content_type` and returns the status, from a task of its own.
async fn post_owned(
    client: reqwest::Client,
    url: String,
    content_type: &'static str,
    body: String,
) -> StatusCode {
    client
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .map(|response| response.status())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

#[tokio::test]
async fn sqs_unavailable_after_the_retries_answers_503() {
    let closed = support::closed_endpoint();
    let endpoint = &closed.url;
    let queue_url = format!("{endpoint}/000000000000/nowhere");
    let server = Server::start(&[
        "--queue-url",
        &queue_url,
        "--endpoint-url",
        endpoint,
        "--retry-max-seconds",
        "1",
    ]);
    let client = http();
    let started = Instant::now();
    let answer = post_structured(&client, &server, event("u-1", "")).await;
    answer.problem(
        503,
        json!({"type": "urn:forwarder:problem:sqs-unavailable"}),
    );
    assert_eq!(answer.retry_after.as_deref(), Some("5"));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        server
            .metric(&client, "forwarder_events_retried_total")
            .await
            .is_some_and(|n| n >= 1)
    );
    assert_eq!(
        server
            .metric(&client, "forwarder_events_failed_total")
            .await,
        Some(1)
    );
}

#[tokio::test]
async fn a_refusal_by_sqs_answers_502() {
    let sqs = localstack().await;
    let queue = sqs.queue("refused").await;
    let missing = format!("{}-missing", queue.url);
    let server = sqs.serve(&missing, &[]);
    let client = http();
    let answer = post_structured(&client, &server, event("r-1", "")).await;
    answer.problem(502, json!({"type": "urn:forwarder:problem:refused-by-sqs"}));
    assert_eq!(answer.retry_after, None);
    drop(server);
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_then_exits_0() {
    let sqs = localstack().await;
    let queue = sqs.queue("shutdown").await;
    let mut server = sqs.serve(&queue.url, &[]);
    let client = http();
    let body = event("g-1", r#","data":{"last":true}"#);
    let (head, tail) = body.split_at(body.len() / 2);
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&address).expect("connect");
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/cloudevents+json\r\nContent-Length: {}\r\n\r\n{head}",
        body.len()
    )
    .expect("write the head");
    stream.flush().expect("flush");
    // The handler runs (it holds a slot) while the body is incomplete.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server
        .metric(&client, "forwarder_http_requests_in_flight")
        .await
        != Some(1)
    {
        assert!(Instant::now() < deadline, "the request never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    // New connections are refused once the listener is closed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&address).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    stream.write_all(tail.as_bytes()).expect("write the tail");
    let mut response = String::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    assert!(response.contains(r#""ids":["g-1"]"#), "{response}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().expect("wait") {
            break exit;
        }
        assert!(Instant::now() < deadline, "serve did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(exit.code(), Some(0), "{}", server.stderr());
    assert_eq!(bodies(&queue).await, [body]);
    drop(server);
}

/// What the load test sent, by what the server answered.
#[derive(Debug, Default)]
struct Tally {
    accepted: HashSet<String>,
    refused: HashSet<String>,
    requests: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_load_loses_nothing() {
    const CLIENTS: usize = 4;
    const REQUESTS_PER_CLIENT: usize = 500;
    let sqs = localstack().await;
    let queue = sqs.queue("load").await;
    let server = Arc::new(sqs.serve(&queue.url, &[]));
    let mut tasks = Vec::new();
    for client_index in 0..CLIENTS {
        let server = Arc::clone(&server);
        tasks.push(tokio::spawn(async move {
            let client = http();
            let mut tally = Tally::default();
            for n in 0..REQUESTS_PER_CLIENT {
                let id = format!("c{client_index}-{n}");
                let (request, ids) = load_request(&client, &server, &id, n);
                let answer = Answer::read(request.send().await.expect("POST")).await;
                tally.requests += 1;
                match answer.status.as_u16() {
                    200 => {
                        assert_eq!(answer.body["ids"], json!(ids), "{answer:?}");
                        tally.accepted.extend(ids);
                    }
                    400 => tally.refused.extend(ids),
                    _ => panic!("unexpected answer {answer:?}"),
                }
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.expect("a client task");
        total.requests += tally.requests;
        total.accepted.extend(tally.accepted);
        total.refused.extend(tally.refused);
    }
    assert_eq!(total.requests, (CLIENTS * REQUESTS_PER_CLIENT) as u64);
    assert!(total.accepted.len() > 2_000, "{}", total.accepted.len());
    assert!(total.refused.len() > 500, "{}", total.refused.len());

    let queued: BTreeSet<String> = queue
        .drain(0)
        .await
        .iter()
        .map(|m| {
            let value: Value = serde_json::from_str(&m.body).expect("a JSON body");
            value["id"].as_str().expect("an id").to_owned()
        })
        .collect();
    let missing: Vec<_> = total
        .accepted
        .iter()
        .filter(|id| !queued.contains(*id))
        .collect();
    assert!(missing.is_empty(), "accepted but not queued: {missing:?}");
    let leaked: Vec<_> = total
        .refused
        .iter()
        .filter(|id| queued.contains(*id))
        .collect();
    assert!(leaked.is_empty(), "refused but queued: {leaked:?}");
    assert_eq!(queued.len(), total.accepted.len());
    drop(server);
}

/// The `n`th request of a load client, and the ids of the events it carries: binary, structured
/// and batched in turn, with every fifth request invalid.
fn load_request(
    client: &reqwest::Client,
    server: &Server,
    id: &str,
    n: usize,
) -> (reqwest::RequestBuilder, Vec<String>) {
    let invalid = n % 5 == 4;
    let time = if invalid {
        "not-a-time"
    } else {
        "2024-01-01T00:00:00Z"
    };
    match n % 3 {
        0 => (
            client
                .post(server.url("/"))
                .header("ce-specversion", "1.0")
                .header("ce-id", id)
                .header("ce-source", "/load")
                .header("ce-type", "t")
                .header("ce-time", time)
                .header("content-type", "application/json")
                .body(format!(r#"{{"n":{n}}}"#)),
            vec![id.to_owned()],
        ),
        1 => (
            client
                .post(server.url("/events"))
                .header("content-type", "application/cloudevents+json")
                .body(event(id, &format!(r#","time":"{time}","data":{n}"#))),
            vec![id.to_owned()],
        ),
        _ => {
            let ids: Vec<String> = (0..4).map(|k| format!("{id}.{k}")).collect();
            let events: Vec<String> = ids
                .iter()
                .enumerate()
                .map(|(k, id)| {
                    let time = if k == 2 { time } else { "2024-01-01T00:00:00Z" };
                    event(id, &format!(r#","time":"{time}""#))
                })
                .collect();
            (
                client
                    .post(server.url("/"))
                    .header("content-type", "application/cloudevents-batch+json")
                    .body(format!("[{}]", events.join(","))),
                ids,
            )
        }
    }
}

/// Opens `n` connections that each send half a request header and then nothing.
fn half_open(address: &str, n: usize) -> Vec<std::net::TcpStream> {
    (0..n)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(address).expect("connect");
            stream
                .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Ty")
                .expect("half a header");
            stream
        })
        .collect()
}

/// Waits until the server closes `stream` (EOF or reset); panics when it stays open for a minute,
/// far longer than any timeout the tests configure.
fn closed_by_server(stream: &mut std::net::TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let mut buffer = [0; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(error) => panic!("the server did not close the connection: {error}"),
        }
    }
}

#[tokio::test]
async fn half_open_connections_are_closed_and_take_no_slot() {
    let sqs = localstack().await;
    let queue = sqs.queue("half-open").await;
    let server = sqs.serve(
        &queue.url,
        &[
            "--header-timeout-seconds",
            "2",
            "--max-in-flight-requests",
            "1",
        ],
    );
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut held = half_open(&address, 900);
    // They hold no request slot: a normal request is served while all of them are open.
    post_structured(&http(), &server, event("h-1", ""))
        .await
        .accepted(&["h-1"]);
    for stream in &mut held {
        closed_by_server(stream);
    }
    assert_eq!(bodies(&queue).await, [event("h-1", "")]);
    drop(server);
}

#[tokio::test]
async fn sigterm_exits_while_half_open_connections_are_held() {
    let sqs = localstack().await;
    let queue = sqs.queue("half-open-stop").await;
    let mut server = sqs.serve(
        &queue.url,
        &[
            "--header-timeout-seconds",
            "600",
            "--shutdown-timeout-seconds",
            "1",
        ],
    );
    let address = server.base.trim_start_matches("http://").to_owned();
    let held = half_open(&address, 900);
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(120);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not exit while connections were held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(exit.code(), Some(0), "{}", server.stderr());
    drop(held);
    drop(server);
}

#[tokio::test]
async fn idle_connections_and_connections_over_the_cap_are_closed() {
    let sqs = localstack().await;
    let queue = sqs.queue("idle").await;
    let server = sqs.serve(
        &queue.url,
        &[
            "--header-timeout-seconds",
            "600",
            "--idle-timeout-seconds",
            "1",
            "--max-connections",
            "2",
        ],
    );
    let address = server.base.trim_start_matches("http://").to_owned();
    // A keep-alive connection that made one request and then says nothing is closed.
    let mut idle = std::net::TcpStream::connect(&address).expect("connect");
    let body = event("i-1", "");
    write!(
        idle,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("a request");
    closed_by_server(&mut idle);
    // Two connections fill the cap; a third is closed at once, and served again once one goes.
    let first = std::net::TcpStream::connect(&address).expect("connect");
    let _second = std::net::TcpStream::connect(&address).expect("connect");
    let mut third = std::net::TcpStream::connect(&address).expect("connect");
    closed_by_server(&mut third);
    drop(first);
    assert_eq!(bodies(&queue).await, [body]);
    drop(server);
}

#[tokio::test]
async fn batches_over_the_event_cap_and_bodies_over_the_byte_budget_are_refused() {
    let sqs = localstack().await;
    let queue = sqs.queue("caps").await;
    let server = sqs.serve(
        &queue.url,
        &["--max-batch-events", "2", "--max-in-flight-bytes", "1000"],
    );
    let client = http();
    let batch = format!(
        "[{},{},{}]",
        event("c-1", ""),
        event("c-2", ""),
        event("c-3", "")
    );
    let response = client
        .post(server.url("/"))
        .header("content-type", "application/cloudevents-batch+json")
        .body(batch)
        .send()
        .await
        .expect("POST");
    Answer::read(response).await.problem(413, json!({}));
    let big = event("c-4", &format!(r#","data":"{}""#, "x".repeat(1200)));
    post_structured(&client, &server, big)
        .await
        .problem(413, json!({}));
    // A request holding part of the budget makes the next one that does not fit wait its turn.
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut holder = std::net::TcpStream::connect(&address).expect("connect");
    write!(
        holder,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents+json\r\nContent-Length: 950\r\n\r\n{{"
    )
    .expect("a head");
    let deadline = Instant::now() + Duration::from_secs(30);
    while server
        .metric(&client, "forwarder_http_requests_in_flight")
        .await
        != Some(1)
    {
        assert!(Instant::now() < deadline, "the request never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answer = post_structured(
        &client,
        &server,
        event("c-5", &format!(r#","data":"{}""#, "x".repeat(100))),
    )
    .await;
    answer.problem(429, json!({}));
    assert!(answer.retry_after.is_some(), "{answer:?}");
    drop(holder);
    let mut ok = None;
    while ok.is_none() {
        let answer = post_structured(&client, &server, event("c-6", "")).await;
        if answer.status == StatusCode::OK {
            ok = Some(answer);
        } else {
            assert!(Instant::now() < deadline, "{answer:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(bodies(&queue).await, [event("c-6", "")]);
    drop(server);
}

#[tokio::test]
async fn a_partly_accepted_batch_lists_the_ids_in_the_queue() {
    use support::fault_proxy::{FaultProxy, Schedule};

    let sqs = localstack().await;
    let queue = sqs.queue("partial").await;
    // Every SendMessageBatch loses one to three entries, to sender faults (final) and server
    // faults (retried, and failed again, until the short retry budget is spent).
    let proxy = FaultProxy::start(
        &sqs.endpoint,
        Schedule {
            seed: 7,
            partial: 1.0,
            ..Schedule::default()
        },
    )
    .await;
    let server = Server::start(&[
        "--queue-url",
        &queue.url,
        "--endpoint-url",
        proxy.endpoint(),
        "--retry-max-seconds",
        "2",
    ]);
    let events: Vec<String> = (0..10).map(|i| event(&format!("p-{i}"), "")).collect();
    let response = http()
        .post(server.url("/"))
        .header("content-type", "application/cloudevents-batch+json")
        .body(format!("[{}]", events.join(",")))
        .send()
        .await
        .expect("POST");
    let answer = Answer::read(response).await;
    assert!(matches!(answer.status.as_u16(), 502 | 503), "{answer:?}");
    assert_eq!(
        answer.content_type, "application/problem+json",
        "{answer:?}"
    );
    let ids = |value: &Value| -> BTreeSet<String> {
        value
            .as_array()
            .unwrap_or_else(|| panic!("a list: {answer:?}"))
            .iter()
            .map(|id| id.as_str().expect("an id").to_owned())
            .collect()
    };
    let accepted = ids(&answer.body["accepted"]);
    let failed: BTreeSet<String> = answer.body["failed"]
        .as_array()
        .unwrap_or_else(|| panic!("failed: {answer:?}"))
        .iter()
        .map(|failure| {
            assert!(failure["reason"].is_string(), "{answer:?}");
            failure["id"].as_str().expect("an id").to_owned()
        })
        .collect();
    assert!(!failed.is_empty(), "{answer:?}");
    assert!(accepted.is_disjoint(&failed), "{answer:?}");
    let all: BTreeSet<String> = (0..10).map(|i| format!("p-{i}")).collect();
    assert_eq!(&accepted | &failed, all, "{answer:?}");
    let queued: BTreeSet<String> = bodies(&queue)
        .await
        .iter()
        .map(|body| {
            let event: Value = serde_json::from_str(body).expect("JSON");
            event["id"].as_str().expect("an id").to_owned()
        })
        .collect();
    assert_eq!(queued, accepted, "{answer:?}");
    drop(server);
}

#[tokio::test]
async fn sighup_re_reads_the_token_file() {
    let sqs = localstack().await;
    let queue = sqs.queue("sighup").await;
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("serve-sighup-token-{}", std::process::id()));
    std::fs::write(&path, "old-token\n").expect("write the token file");
    let server = sqs.serve(
        &queue.url,
        &["--token-file", path.to_str().expect("UTF-8 path")],
    );
    let client = http();
    let post = |token: &str, id: &str| {
        let request = client
            .post(server.url("/"))
            .header("content-type", "application/cloudevents+json")
            .header("authorization", format!("Bearer {token}"))
            .body(event(id, ""));
        async move { Answer::read(request.send().await.expect("POST")).await }
    };
    post("old-token", "s-1").await.accepted(&["s-1"]);
    std::fs::write(&path, "new-token\n").expect("rewrite the token file");
    let status = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    // The reload is asynchronous: wait (with a generous bound) until the old token is refused.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = post("old-token", "s-2").await;
        if answer.status == StatusCode::UNAUTHORIZED {
            break;
        }
        answer.accepted(&["s-2"]);
        assert!(Instant::now() < deadline, "the old token is still accepted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    post("new-token", "s-3").await.accepted(&["s-3"]);
    let log = server.stderr();
    assert!(
        !log.contains("old-token") && !log.contains("new-token"),
        "{log}"
    );
    let bodies = bodies(&queue).await;
    assert!(bodies.contains(&event("s-1", "")) && bodies.contains(&event("s-3", "")));
    drop(server);
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn metrics_listen_moves_metrics_and_health_to_their_own_address() {
    let sqs = localstack().await;
    let queue = sqs.queue("metrics-listen").await;
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("serve-metrics-token-{}", std::process::id()));
    std::fs::write(&path, "a-token\n").expect("write the token file");
    let server = sqs.serve(
        &queue.url,
        &[
            "--token-file",
            path.to_str().expect("UTF-8 path"),
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let client = http();
    let deadline = Instant::now() + Duration::from_secs(30);
    let ops = loop {
        let log = server.stderr();
        if let Some(address) = log
            .lines()
            .find_map(|line| line.strip_prefix("metrics on "))
        {
            break address.to_owned();
        }
        assert!(Instant::now() < deadline, "no metrics address: {log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for path in ["/metrics", "/healthz"] {
        let main = client.get(server.url(path)).send().await.expect("GET");
        assert_eq!(main.status(), StatusCode::NOT_FOUND, "{path}");
        let own = client
            .get(format!("{ops}{path}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(own.status(), StatusCode::OK, "{path}");
    }
    drop(server);
    let _ = std::fs::remove_file(&path);
}

/// Producers that wait for their answers fill the batches: while a request is in flight, a
/// partly filled batch waits on for the events its answer brings, and goes when
/// `--max-linger-ms` is over even then.
#[tokio::test(flavor = "multi_thread")]
async fn a_partly_filled_batch_waits_while_a_request_is_in_flight() {
    use support::fault_proxy::{FaultProxy, Schedule};
    let sqs = localstack().await;
    let queue = sqs.queue("max-linger").await;
    // Every request takes 3 s more, so the first batch is in flight throughout each round.
    let schedule = Schedule {
        delay: Duration::from_secs(3),
        ..Default::default()
    };
    let proxy = FaultProxy::start(&sqs.endpoint, schedule).await;
    let client = http();
    // Ten events fill a batch at once; three come 0.6 s later and seven 1 s after them. With
    // no bound in sight the three wait for the seven: 2 requests. Bounded at 0.4 s, the three
    // go alone, and so do the seven: 3 requests.
    for (round, (max_linger, requests)) in [("60000", 2), ("400", 3)].into_iter().enumerate() {
        let server = Server::start(&[
            "--queue-url",
            &queue.url,
            "--endpoint-url",
            proxy.endpoint(),
            "--linger-ms",
            "200",
            "--max-linger-ms",
            max_linger,
        ]);
        let mut posts = Vec::new();
        for (part, (count, pause)) in [(10, 600), (3, 1000), (7, 0)].into_iter().enumerate() {
            let events: Vec<String> = (0..count)
                .map(|i| event(&format!("r{round}-p{part}-{i}"), ""))
                .collect();
            posts.push(tokio::spawn(post_owned(
                client.clone(),
                server.url("/"),
                "application/cloudevents-batch+json",
                format!("[{}]", events.join(",")),
            )));
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        for post in posts {
            assert_eq!(post.await.expect("the post ran"), StatusCode::OK);
        }
        assert_eq!(
            server.metric(&client, "forwarder_sqs_requests_total").await,
            Some(requests),
            "--max-linger-ms {max_linger}; stderr:\n{}",
            server.stderr()
        );
    }
    assert_eq!(bodies(&queue).await.len(), 40);
}
