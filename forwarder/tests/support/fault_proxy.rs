//! A fault-injecting HTTP proxy for the SQS JSON protocol, on loopback only.
//!
//! It stands between the forwarder and LocalStack and decides, for each request, by a seeded
//! schedule, what goes wrong: a delay, a reset connection (before or after LocalStack saw the
//! request), a 500/502/503, a throttling error in each of the forms the SDK parses, a black hole
//! for a while, or a `SendMessageBatch` answer with some entries failed. A partial failure is
//! real: the chosen entries are removed from the request LocalStack gets and added to `Failed` in
//! the answer, so what the queue holds matches what the forwarder is told.
//!
//! The client side is a raw TCP accept loop with just enough HTTP/1.1 (a request line, headers,
//! a `Content-Length` body, keep-alive), since resets and black holes need control of the socket;
//! the upstream side is a reqwest client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What goes wrong, and when. Probabilities apply to `SendMessageBatch` requests; windows to
/// every request.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    /// Seeds the per-request decisions: request `n` always meets the same fate.
    pub seed: u64,
    /// Fraction of requests that fail transiently: 500, 502, 503, throttling, or a reset before
    /// or after forwarding.
    pub transient: f64,
    /// Fraction of requests answered with some entries failed (sender and server faults).
    pub partial: f64,
    /// Fraction of requests delayed by up to `slow_max` before they are forwarded.
    pub slow: f64,
    /// The longest of those delays.
    pub slow_max: Duration,
    /// Every request waits this long before it is forwarded.
    pub delay: Duration,
    /// A black hole: requests are read, never answered, and their connections reset when the
    /// window ends.
    pub outage: Option<Window>,
    /// Every `SendMessageBatch` is answered with a throttling error.
    pub throttle: Option<Window>,
}

/// A period that starts when request number `after_requests` arrives and lasts `length`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// The request (counted from 0) that starts the window.
    pub after_requests: u64,
    /// How long it lasts.
    pub length: Duration,
}

/// What the proxy did, by kind.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests received.
    pub requests: AtomicU64,
    /// Requests LocalStack received (whole or with entries removed).
    pub forwarded: AtomicU64,
    /// Answered 500.
    pub internal_errors: AtomicU64,
    /// Answered 502 with a body that is not JSON.
    pub bad_gateways: AtomicU64,
    /// Answered 503.
    pub unavailable: AtomicU64,
    /// Answered with a throttling error.
    pub throttled: AtomicU64,
    /// Reset before LocalStack saw the request.
    pub resets_before: AtomicU64,
    /// Reset after LocalStack accepted the request: the answer is lost, the messages are queued.
    pub resets_after: AtomicU64,
    /// Held in the black hole, then reset.
    pub black_holed: AtomicU64,
    /// Delayed, then forwarded.
    pub delayed: AtomicU64,
    /// Batches answered with some entries failed.
    pub partial_batches: AtomicU64,
    /// Entries failed with `SenderFault: true`.
    pub sender_faults: AtomicU64,
    /// Entries failed with `SenderFault: false`.
    pub server_faults: AtomicU64,
    /// The bodies of the query-protocol requests (STS's `Action=...` forms), as they came.
    pub query_requests: Mutex<Vec<String>>,
}

impl Stats {
    /// The counters as a JSON object, for reports.
    pub fn to_json(&self) -> Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "requests": get(&self.requests),
            "forwarded": get(&self.forwarded),
            "internalErrors": get(&self.internal_errors),
            "badGateways": get(&self.bad_gateways),
            "unavailable": get(&self.unavailable),
            "throttled": get(&self.throttled),
            "resetsBefore": get(&self.resets_before),
            "resetsAfter": get(&self.resets_after),
            "blackHoled": get(&self.black_holed),
            "delayed": get(&self.delayed),
            "partialBatches": get(&self.partial_batches),
            "senderFaults": get(&self.sender_faults),
            "serverFaults": get(&self.server_faults),
        })
    }
}

/// A running proxy; it stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    endpoint: String,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 in front of `upstream` (an `http://` URL).
    pub async fn start(upstream: &str, schedule: Schedule) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("reqwest client"),
            schedule,
            stats: Stats::default(),
            outage_start: OnceLock::new(),
            throttle_start: OnceLock::new(),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        FaultProxy {
            endpoint,
            shared,
            accept,
        }
    }

    /// The URL to give the forwarder as `--endpoint-url`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// What it did so far.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    client: reqwest::Client,
    schedule: Schedule,
    stats: Stats,
    outage_start: OnceLock<Instant>,
    throttle_start: OnceLock<Instant>,
}

/// One request, as read from the client.
#[derive(Debug)]
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is_send_message_batch(&self) -> bool {
        self.header("x-amz-target") == Some("AmazonSQS.SendMessageBatch")
    }
}

/// One answer, to be written to the client.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// The fate of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    Pass,
    Delay(Duration),
    InternalError,
    BadGateway,
    Unavailable,
    Throttle(u8),
    ResetBefore,
    ResetAfter,
    Partial(u64),
    BlackHole(Instant),
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, Arc::clone(&shared)));
    }
}

/// Serves the requests of one client connection until it closes or a fault ends it.
async fn connection(mut client: TcpStream, shared: Arc<Shared>) {
    let mut buffer = Vec::new();
    loop {
        let Some(request) = read_request(&mut client, &mut buffer).await else {
            return;
        };
        let index = shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        if request.body.starts_with(b"Action=") {
            let body = String::from_utf8_lossy(&request.body).into_owned();
            shared
                .stats
                .query_requests
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(body);
        }
        let fault = decide(&shared, index, &request);
        let delay = shared.schedule.delay;
        if !delay.is_zero() && !matches!(fault, Fault::BlackHole(_)) {
            tokio::time::sleep(delay).await;
        }
        let response = match fault {
            Fault::Pass => forward(&shared, &request).await,
            Fault::Delay(delay) => {
                count(&shared.stats.delayed);
                tokio::time::sleep(delay).await;
                forward(&shared, &request).await
            }
            Fault::InternalError => {
                count(&shared.stats.internal_errors);
                json_error(500, "InternalError", "Receiver", "injected internal error")
            }
            Fault::BadGateway => {
                count(&shared.stats.bad_gateways);
                Response {
                    status: 502,
                    headers: vec![("content-type".into(), "text/html".into())],
                    body: b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec(),
                }
            }
            Fault::Unavailable => {
                count(&shared.stats.unavailable);
                json_error(
                    503,
                    "ServiceUnavailable",
                    "Receiver",
                    "injected unavailability",
                )
            }
            Fault::Throttle(style) => {
                count(&shared.stats.throttled);
                throttling(style)
            }
            Fault::ResetBefore => {
                count(&shared.stats.resets_before);
                return reset(client);
            }
            Fault::ResetAfter => {
                let answer = forward(&shared, &request).await;
                count(&shared.stats.resets_after);
                drop(answer);
                return reset(client);
            }
            Fault::Partial(seed) => partial(&shared, &request, seed).await,
            Fault::BlackHole(until) => {
                count(&shared.stats.black_holed);
                tokio::time::sleep_until(until).await;
                return reset(client);
            }
        };
        if write_response(&mut client, &response).await.is_err() {
            return;
        }
    }
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Closes with SO_LINGER 0, so the client gets a TCP reset rather than an orderly close.
fn reset(client: TcpStream) {
    let _ = client.set_zero_linger();
    drop(client);
}

/// The fate of request number `index`: windows first, then the seeded draw.
fn decide(shared: &Shared, index: u64, request: &Request) -> Fault {
    let schedule = &shared.schedule;
    let now = Instant::now();
    if let Some(end) = window_end(schedule.outage, &shared.outage_start, index, now) {
        return Fault::BlackHole(end);
    }
    if !request.is_send_message_batch() {
        return Fault::Pass;
    }
    let mut rng =
        fastrand::Rng::with_seed(schedule.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    if window_end(schedule.throttle, &shared.throttle_start, index, now).is_some() {
        return Fault::Throttle(rng.u8(..4));
    }
    let draw = rng.f64();
    if draw < schedule.transient {
        return match rng.u8(..7) {
            0 => Fault::InternalError,
            1 => Fault::BadGateway,
            2 => Fault::Unavailable,
            3 => Fault::Throttle(rng.u8(..4)),
            4 | 5 => Fault::ResetBefore,
            _ => Fault::ResetAfter,
        };
    }
    if draw < schedule.transient + schedule.partial {
        return Fault::Partial(rng.u64(..));
    }
    if rng.f64() < schedule.slow && !schedule.slow_max.is_zero() {
        return Fault::Delay(schedule.slow_max.mul_f64(rng.f64()));
    }
    Fault::Pass
}

/// When the window is open for request `index`, the instant it closes.
fn window_end(
    window: Option<Window>,
    start: &OnceLock<Instant>,
    index: u64,
    now: Instant,
) -> Option<Instant> {
    let window = window?;
    if index < window.after_requests {
        return None;
    }
    let end = *start.get_or_init(|| now) + window.length;
    (now < end).then_some(end)
}

/// An error in the SQS JSON protocol (awsJson1_0 with the query-compatible header).
fn json_error(status: u16, code: &str, fault: &str, message: &str) -> Response {
    let body = json!({ "__type": format!("com.amazonaws.sqs#{code}"), "message": message });
    Response {
        status,
        headers: vec![
            ("content-type".into(), "application/x-amz-json-1.0".into()),
            ("x-amzn-query-error".into(), format!("{code};{fault}")),
        ],
        body: body.to_string().into_bytes(),
    }
}

/// A throttling error in one of the forms the SDK reads a code from: the query-compatible
/// header, the body's `__type`, or the `x-amzn-errortype` header.
fn throttling(style: u8) -> Response {
    match style {
        0 => json_error(400, "Throttling", "Sender", "Rate exceeded"),
        1 => json_error(
            400,
            "AWS.SimpleQueueService.RequestThrottled",
            "Sender",
            "Request is throttled",
        ),
        2 => Response {
            status: 400,
            headers: vec![("content-type".into(), "application/x-amz-json-1.0".into())],
            body: br#"{"__type":"com.amazonaws.sqs#ThrottlingException","message":"Rate exceeded"}"#
                .to_vec(),
        },
        _ => Response {
            status: 400,
            headers: vec![
                ("content-type".into(), "application/x-amz-json-1.0".into()),
                (
                    "x-amzn-errortype".into(),
                    "ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.availability/"
                        .into(),
                ),
            ],
            body: b"{}".to_vec(),
        },
    }
}

/// Fails some entries of a `SendMessageBatch`: they are removed from what LocalStack gets and
/// added to `Failed` in the answer.
async fn partial(shared: &Shared, request: &Request, seed: u64) -> Response {
    let Ok(mut body) = serde_json::from_slice::<Value>(&request.body) else {
        return forward(shared, request).await;
    };
    let Some(entries) = body.get_mut("Entries").and_then(Value::as_array_mut) else {
        return forward(shared, request).await;
    };
    let mut rng = fastrand::Rng::with_seed(seed);
    let failing = 1 + rng.usize(..entries.len().clamp(1, 3));
    let mut failed = Vec::new();
    for _ in 0..failing.min(entries.len()) {
        let entry = entries.remove(rng.usize(..entries.len()));
        let id = entry.get("Id").cloned().unwrap_or(Value::Null);
        let sender_fault = rng.bool();
        let (code, message) = if sender_fault {
            count(&shared.stats.sender_faults);
            ("InvalidParameterValue", "injected sender fault")
        } else {
            count(&shared.stats.server_faults);
            ("InternalError", "injected server fault")
        };
        failed.push(json!({
            "Id": id,
            "SenderFault": sender_fault,
            "Code": code,
            "Message": message,
        }));
    }
    count(&shared.stats.partial_batches);
    let mut answer = if entries.is_empty() {
        json!({ "Successful": [], "Failed": [] })
    } else {
        let forwarded = Request {
            method: request.method.clone(),
            target: request.target.clone(),
            headers: request.headers.clone(),
            body: body.to_string().into_bytes(),
        };
        let response = forward(shared, &forwarded).await;
        if response.status != 200 {
            return response;
        }
        let Ok(answer) = serde_json::from_slice::<Value>(&response.body) else {
            return response;
        };
        answer
    };
    let list = answer
        .as_object_mut()
        .map(|object| object.entry("Failed").or_insert_with(|| json!([])));
    if let Some(Value::Array(list)) = list {
        list.extend(failed);
    }
    if answer.get("Successful").is_none() {
        answer["Successful"] = json!([]);
    }
    Response {
        status: 200,
        headers: vec![("content-type".into(), "application/x-amz-json-1.0".into())],
        body: answer.to_string().into_bytes(),
    }
}

/// Sends the request to LocalStack; a failure to reach it becomes a 502 with a non-JSON body.
async fn forward(shared: &Shared, request: &Request) -> Response {
    const HOP_BY_HOP: [&str; 6] = [
        "host",
        "connection",
        "content-length",
        "transfer-encoding",
        "keep-alive",
        "expect",
    ];
    count(&shared.stats.forwarded);
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or_default();
    let mut upstream = shared
        .client
        .request(method, format!("{}{}", shared.upstream, request.target))
        .body(request.body.clone());
    for (name, value) in &request.headers {
        if !HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            upstream = upstream.header(name.as_str(), value.as_str());
        }
    }
    let failed = |error: reqwest::Error| Response {
        status: 502,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: format!("proxy: upstream failed: {error}").into_bytes(),
    };
    let response = match upstream.send().await {
        Ok(response) => response,
        Err(error) => return failed(error),
    };
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter(|(name, _)| !HOP_BY_HOP.contains(&name.as_str()))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    match response.bytes().await {
        Ok(body) => Response {
            status,
            headers,
            body: body.to_vec(),
        },
        Err(error) => failed(error),
    }
}

/// Reads one request; `None` when the client closed the connection or sent something this
/// proxy does not understand. `buffer` keeps bytes read past the request.
async fn read_request(client: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Request> {
    const MAX_HEAD: usize = 64 * 1024;
    const MAX_BODY: usize = 64 * 1024 * 1024;
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buffer.len() > MAX_HEAD || !read_more(client, buffer).await {
            return None;
        }
    };
    let head = std::str::from_utf8(&buffer[..head_end]).ok()?.to_owned();
    buffer.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if find("transfer-encoding").is_some() {
        return None;
    }
    let length: usize = match find("content-length") {
        Some(length) => length.parse().ok()?,
        None => 0,
    };
    if length > MAX_BODY {
        return None;
    }
    while buffer.len() < length {
        if !read_more(client, buffer).await {
            return None;
        }
    }
    let body = buffer.drain(..length).collect();
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

async fn read_more(client: &mut TcpStream, buffer: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    match client.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buffer.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

async fn write_response(client: &mut TcpStream, response: &Response) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", response.body.len()));
    client.write_all(head.as_bytes()).await?;
    client.write_all(&response.body).await?;
    client.flush().await
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
