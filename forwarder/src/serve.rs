//! `forwarder serve`: CloudEvents over HTTP into SQS, answered only once SQS has the events.
//!
//! Ingest (`POST /` and `POST /events`) speaks the CloudEvents HTTP protocol binding in its three
//! modes: binary (`ce-*` headers, the body is the data), structured
//! (`application/cloudevents+json`) and batched (`application/cloudevents-batch+json`). Every
//! event of a request is validated, and its message built and size-checked, before any is queued,
//! so a request is refused whole or not at all. The answer is a success only once SQS has
//! accepted every event of the request: a caller that gets a success can forget the events, a
//! caller that gets an error can send them again (delivery is at least once).
//!
//! | status | when |
//! |--------|------|
//! | 200 | every event is in the queue: `{"accepted": n, "ids": [...], "messageIds": [...]}` |
//! | 400 | an invalid event: the problem names the attribute, the rule, and in a batch the index |
//! | 401 | a token is configured and the request lacks it or has another one |
//! | 413 | the body is over its limit, or an event's message is over the SQS limit |
//! | 415 | neither of the three modes (or a CloudEvents format other than JSON) |
//! | 429 | the in-flight limit is reached (`Retry-After: 1`) |
//! | 502 | SQS refused the message and another attempt would not help (permissions, a missing queue) |
//! | 503 | SQS stayed unavailable through the retries, or the request timed out (`Retry-After`) |
//!
//! Errors are RFC 9457 problem documents (`application/problem+json`). Memory is bounded: at
//! most `max_in_flight_requests` bodies are read at once, each within its limit.

use std::collections::BTreeMap;
use std::future::{Future, poll_fn};
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Json, Router};
use serde::Serialize;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;

use crate::batch::{MAX_MESSAGE_BYTES, message_size};
use crate::event::{Data, Event, EventError, parse_event};
use crate::message::{MessageOptions, to_message};
use crate::pipeline::{Forwarder, SendError};
use crate::sqs::Outgoing;
use aws_access::secret::Secret;

/// The default body limit of binary and structured requests: twice the SQS limit, since a
/// structured body may carry whitespace that encoding drops. The exact limit is the encoded
/// message's, checked after parsing.
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The default body limit of batched requests.
pub const DEFAULT_MAX_BATCH_BODY_BYTES: usize = 10 * 1024 * 1024;

/// The media type of structured mode.
pub const STRUCTURED: &str = "application/cloudevents+json";

/// The media type of batched mode.
pub const BATCH: &str = "application/cloudevents-batch+json";

/// How `serve` answers.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How events become messages.
    pub message: MessageOptions,
    /// When set, ingest requires `Authorization: Bearer <token>`.
    pub token: Option<Secret>,
    /// Ingest requests handled at once; one more gets 429.
    pub max_in_flight_requests: usize,
    /// The largest body of a binary or structured request.
    pub max_body_bytes: usize,
    /// The largest body of a batched request.
    pub max_batch_body_bytes: usize,
    /// How long one ingest request may take, body and SQS retries included; longer gets 503.
    /// It should exceed the retry budget of the forwarder.
    pub request_timeout: Duration,
    /// The `Retry-After` of a 503.
    pub retry_after: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            message: MessageOptions::default(),
            token: None,
            max_in_flight_requests: 64,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_batch_body_bytes: DEFAULT_MAX_BATCH_BODY_BYTES,
            request_timeout: Duration::from_secs(60),
            retry_after: Duration::from_secs(5),
        }
    }
}

/// Serves until `shutdown` completes, then stops accepting, finishes the requests in flight and
/// shuts `forwarder` down (when this holds its last reference; otherwise it is flushed).
pub async fn serve(
    listener: TcpListener,
    forwarder: Arc<Forwarder>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = router(Arc::clone(&forwarder), options);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    // Every request waited for its answers, so nothing is pending; flushing makes sure.
    forwarder.flush().await;
    if let Ok(forwarder) = Arc::try_unwrap(forwarder) {
        forwarder.shutdown().await;
    }
    Ok(())
}

/// The routes of `serve`: ingest, `GET /healthz` and `GET /metrics`.
pub fn router(forwarder: Arc<Forwarder>, options: ServeOptions) -> Router {
    let retry_after = options.retry_after;
    let timeout = options.request_timeout;
    let shared = Arc::new(Shared {
        forwarder,
        permits: Semaphore::new(options.max_in_flight_requests.max(1)),
        options,
        responses: Mutex::default(),
    });
    let timeout = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |error: BoxError| async move {
            if error.is::<tower::timeout::error::Elapsed>() {
                Problem::timeout(timeout, retry_after).into_response()
            } else {
                Problem::new(Kind::Internal, error.to_string()).into_response()
            }
        }))
        .timeout(timeout);
    Router::new()
        .route("/", post(ingest))
        .route("/events", post(ingest))
        .layer(timeout)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), count))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(shared)
}

/// Reads a bearer token from a file: its content without surrounding whitespace, which must be
/// a non-empty RFC 6750 `b64token`. Errors never show the content.
pub fn read_token(path: &Path) -> io::Result<Secret> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("cannot read the token file {}: {error}", path.display()),
        )
    })?;
    let token = text.trim();
    if !is_b64token(token) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the token file {} must hold one bearer token: letters, digits and -._~+/ then = padding",
                path.display()
            ),
        ));
    }
    Ok(Secret::new(token))
}

struct Shared {
    forwarder: Arc<Forwarder>,
    options: ServeOptions,
    permits: Semaphore,
    responses: Mutex<BTreeMap<u16, u64>>,
}

/// The answer to an ingest request once SQS has every event.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Accepted {
    accepted: usize,
    /// The events' `id` attributes, in request order.
    ids: Vec<String>,
    /// SQS's message ids, in the same order.
    message_ids: Vec<String>,
}

/// An RFC 9457 problem document, and the headers that go with it.
#[derive(Debug)]
struct Problem {
    kind: Kind,
    detail: String,
    /// The attribute an invalid event is refused for.
    attribute: Option<String>,
    /// The rule an invalid event breaks.
    rule: Option<&'static str>,
    /// The event of a batch the problem is about.
    index: Option<usize>,
    retry_after: Option<Duration>,
}

/// The kinds of problem, each with its status, `type` and `title`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    InvalidEvent,
    UnreadableBody,
    MissingToken,
    WrongToken,
    BodyTooLarge,
    EventTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    Internal,
    RefusedBySqs,
    SqsUnavailable,
    Timeout,
}

/// The JSON form of a [`Problem`].
#[derive(Debug, Serialize)]
struct Document<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    title: &'static str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    attribute: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
}

/// The three content modes of the HTTP binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Binary,
    Structured,
    Batch,
}

/// Why an event is invalid: an [`EventError`], or a header that cannot be decoded.
#[derive(Debug)]
struct Invalid {
    attribute: Option<String>,
    rule: &'static str,
    detail: String,
}

async fn ingest(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    match accept(&shared, request).await {
        Ok(accepted) => (StatusCode::OK, Json(accepted)).into_response(),
        Err(problem) => {
            tracing::debug!(status = problem.kind.status().as_u16(), detail = %problem.detail, "refused");
            problem.into_response()
        }
    }
}

async fn accept(shared: &Shared, request: Request) -> Result<Accepted, Problem> {
    let (parts, body) = request.into_parts();
    authorize(shared.options.token.as_ref(), &parts.headers)?;
    let _permit = shared.permits.try_acquire().map_err(|_| Problem::busy())?;
    let mode = mode(&parts.headers)?;
    let limit = match mode {
        Mode::Batch => shared.options.max_batch_body_bytes,
        Mode::Binary | Mode::Structured => shared.options.max_body_bytes,
    };
    let body = read_body(body, &parts.headers, limit).await?;
    let metrics = shared.forwarder.metrics();
    let events = match mode {
        Mode::Binary => vec![binary_event(&parts.headers, &body)],
        Mode::Structured => vec![parse_event(&body).map_err(Invalid::from)],
        Mode::Batch => match split_array(&body) {
            Some(elements) => elements
                .into_iter()
                .map(|raw| parse_event(raw).map_err(Invalid::from))
                .collect(),
            None => {
                // The body as a whole is wrong, not one event of it: no index.
                metrics.received.fetch_add(1, Ordering::Relaxed);
                metrics.refused.fetch_add(1, Ordering::Relaxed);
                let invalid = Invalid {
                    attribute: None,
                    rule: "json",
                    detail: "a batch must be a JSON array of events".to_owned(),
                };
                return Err(Problem::invalid(invalid, None));
            }
        },
    };
    // Events own their attributes: the body is no longer needed.
    drop(body);
    let count = events.len() as u64;
    metrics.received.fetch_add(count, Ordering::Relaxed);
    let refuse = |problem: Problem| {
        metrics.refused.fetch_add(count, Ordering::Relaxed);
        problem
    };
    let batch = mode == Mode::Batch;
    let mut valid = Vec::with_capacity(events.len());
    for (index, event) in events.into_iter().enumerate() {
        match event {
            Ok(event) => valid.push(event),
            Err(invalid) => return Err(refuse(Problem::invalid(invalid, batch.then_some(index)))),
        }
    }
    let mut messages = Vec::with_capacity(valid.len());
    for (index, event) in valid.iter().enumerate() {
        let message = message(event, &shared.options.message)
            .map_err(|problem| refuse(problem.at(batch.then_some(index))))?;
        messages.push(message);
    }
    let ids = valid.iter().map(|event| event.id().to_owned()).collect();
    drop(valid);
    deliver(&shared.forwarder, messages, ids, shared.options.retry_after).await
}

/// Queues every message, then waits for every answer.
async fn deliver(
    forwarder: &Forwarder,
    messages: Vec<Outgoing>,
    ids: Vec<String>,
    retry_after: Duration,
) -> Result<Accepted, Problem> {
    let mut pending = Vec::with_capacity(messages.len());
    for message in messages {
        pending.push(forwarder.enqueue(message).await);
    }
    let total = pending.len();
    let mut message_ids = Vec::with_capacity(total);
    let mut failures = Vec::new();
    for (index, pending) in pending.into_iter().enumerate() {
        let delivery = match pending {
            Ok(pending) => pending.wait().await,
            Err(error) => Err(error),
        };
        match delivery {
            Ok(message_id) => message_ids.push(message_id),
            Err(error) => failures.push((index, error)),
        }
    }
    if failures.is_empty() {
        return Ok(Accepted {
            accepted: total,
            ids,
            message_ids,
        });
    }
    Err(Problem::undelivered(&failures, total, retry_after))
}

/// The message of a valid event: refused when the FIFO group attribute is missing (400) or the
/// message is over the SQS limit (413).
fn message(event: &Event, options: &MessageOptions) -> Result<Outgoing, Problem> {
    let message = to_message(event, options).map_err(|detail| {
        Problem::invalid(
            Invalid {
                attribute: Some(options.group_by.clone().unwrap_or_else(|| "source".into())),
                rule: "group-by",
                detail,
            },
            None,
        )
    })?;
    let size = message_size(&message.body, &message.attributes);
    if size > MAX_MESSAGE_BYTES {
        let error = SendError::TooLarge {
            size,
            limit: MAX_MESSAGE_BYTES,
        };
        return Err(Problem::new(Kind::EventTooLarge, error.to_string()));
    }
    Ok(message)
}

/// Checks the bearer token, in constant time, when one is configured.
fn authorize(token: Option<&Secret>, headers: &HeaderMap) -> Result<(), Problem> {
    let Some(token) = token else {
        return Ok(());
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| bearer(value.as_bytes()));
    match presented {
        Some(presented) if bool::from(presented.ct_eq(token.expose().as_bytes())) => Ok(()),
        Some(_) => Err(Problem::new(
            Kind::WrongToken,
            "the bearer token is not the one configured".to_owned(),
        )),
        None => Err(Problem::new(
            Kind::MissingToken,
            "this endpoint requires `Authorization: Bearer <token>`".to_owned(),
        )),
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme in any case).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Whether `s` is an RFC 6750 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" /
/// "/" ) *"="`.
fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// The content mode of a request, from its `Content-Type` and `ce-specversion` headers.
fn mode(headers: &HeaderMap) -> Result<Mode, Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(essence);
    match content_type.as_deref() {
        Some(STRUCTURED) => Ok(Mode::Structured),
        Some(BATCH) => Ok(Mode::Batch),
        Some(other)
            if other.starts_with("application/cloudevents+")
                || other.starts_with("application/cloudevents-batch+") =>
        {
            Err(Problem::new(
                Kind::UnsupportedMediaType,
                format!("the event format `{other}` is not supported: use {STRUCTURED} or {BATCH}"),
            ))
        }
        _ if headers.contains_key("ce-specversion") => Ok(Mode::Binary),
        Some(other) => Err(Problem::new(
            Kind::UnsupportedMediaType,
            format!(
                "`{other}` without ce-* headers is not a CloudEvent: use {STRUCTURED}, {BATCH}, or \
             binary mode (ce-specversion, ce-id, ce-source and ce-type headers)"
            ),
        )),
        None => Err(Problem::new(
            Kind::UnsupportedMediaType,
            format!(
                "no Content-Type and no ce-* headers: use {STRUCTURED}, {BATCH}, or binary mode \
             (ce-specversion, ce-id, ce-source and ce-type headers)"
            ),
        )),
    }
}

/// A media type's `type/subtype`, lower-case, without parameters.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The value of a media type's `charset` parameter, lower-case and unquoted.
fn charset(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
    })
}

/// Builds the event of a binary-mode request: `ce-*` headers in their order (values
/// percent-decoded), then `datacontenttype` from `Content-Type`, then the data.
fn binary_event(headers: &HeaderMap, body: &[u8]) -> Result<Event, Invalid> {
    let mut attributes = Vec::new();
    for (name, value) in headers {
        let Some(attribute) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        let value = percent_decode(value.as_bytes()).map_err(|(rule, problem)| Invalid {
            attribute: Some(attribute.to_owned()),
            rule,
            detail: format!("header `{name}`: {problem}"),
        })?;
        attributes.push((attribute.to_owned(), value));
    }
    let content_type = match headers.get(header::CONTENT_TYPE) {
        Some(value) => Some(value.to_str().map_err(|_| Invalid {
            attribute: Some("datacontenttype".to_owned()),
            rule: "media-type",
            detail: "Content-Type is not ASCII".to_owned(),
        })?),
        None => None,
    };
    if let Some(content_type) = content_type {
        attributes.push(("datacontenttype".to_owned(), content_type.to_owned()));
    }
    let text;
    let data = match content_type {
        _ if body.is_empty() => Data::None,
        None => Data::Binary(body),
        Some(content_type) => match data_kind(content_type) {
            DataKind::Json => Data::Json(body),
            DataKind::Text => {
                let string = std::str::from_utf8(body).map_err(|error| Invalid {
                    attribute: Some("data".to_owned()),
                    rule: "utf-8",
                    detail: format!(
                        "attribute `data`: {content_type} body is not valid UTF-8: invalid byte at offset {}",
                        error.valid_up_to()
                    ),
                })?;
                text = serde_json::to_string(string).map_err(|error| Invalid {
                    attribute: Some("data".to_owned()),
                    rule: "json",
                    detail: error.to_string(),
                })?;
                Data::Json(text.as_bytes())
            }
            DataKind::Binary => Data::Binary(body),
        },
    };
    Event::from_parts(attributes, data).map_err(Invalid::from)
}

/// How a binary-mode body is carried in the structured event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataKind {
    /// As `data`, the JSON text itself.
    Json,
    /// As `data`, a JSON string.
    Text,
    /// As `data_base64`.
    Binary,
}

/// JSON media types (`application/json`, `*/json`, `*/*+json`) keep their body as JSON; `text/*`
/// in UTF-8 (or US-ASCII, or no charset) becomes a string; everything else is base64.
fn data_kind(content_type: &str) -> DataKind {
    let essence = essence(content_type);
    let subtype = essence.split_once('/').map_or("", |(_, subtype)| subtype);
    if subtype == "json" || subtype.ends_with("+json") {
        return DataKind::Json;
    }
    let utf8 = charset(content_type)
        .is_none_or(|charset| matches!(charset.as_str(), "utf-8" | "utf8" | "us-ascii"));
    if essence.starts_with("text/") && utf8 {
        DataKind::Text
    } else {
        DataKind::Binary
    }
}

/// Decodes `%XX` escapes, as the HTTP binding requires of `ce-*` header values; the result must
/// be UTF-8. Errors are (rule, what is wrong).
fn percent_decode(value: &[u8]) -> Result<String, (&'static str, String)> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%' {
            let hex = match value.get(i + 1..i + 3) {
                Some(&[high, low]) => hex_digit(high).zip(hex_digit(low)),
                _ => None,
            };
            let Some(nibbles) = hex else {
                return Err((
                    "percent-encoding",
                    format!("`%` at offset {i} is not followed by two hex digits"),
                ));
            };
            out.push(nibbles.0 << 4 | nibbles.1);
            i += 3;
        } else {
            out.push(value[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|error| {
        (
            "utf-8",
            format!(
                "not valid UTF-8 once decoded: invalid byte at offset {}",
                error.utf8_error().valid_up_to()
            ),
        )
    })
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|digit| digit as u8)
}

/// Splits a JSON array into the raw text of its elements, without parsing them: each is parsed
/// as an event afterwards, so that an event of the deepest allowed nesting is still accepted
/// inside a batch. `None` when the text is not an array.
fn split_array(body: &[u8]) -> Option<Vec<&[u8]>> {
    let skip_ws = |mut i: usize| {
        while body
            .get(i)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            i += 1;
        }
        i
    };
    let mut i = skip_ws(0);
    if body.get(i) != Some(&b'[') {
        return None;
    }
    let mut elements = Vec::new();
    i = skip_ws(i + 1);
    if body.get(i) == Some(&b']') {
        return (skip_ws(i + 1) == body.len()).then_some(elements);
    }
    loop {
        let start = i;
        let (mut depth, mut in_string) = (0_usize, false);
        loop {
            let c = *body.get(i)?;
            if in_string {
                match c {
                    b'\\' => i += 1,
                    b'"' => in_string = false,
                    _ => {}
                }
            } else {
                match c {
                    b'"' => in_string = true,
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' if depth == 0 => break,
                    b']' | b'}' => depth -= 1,
                    b',' if depth == 0 => break,
                    _ => {}
                }
            }
            i += 1;
        }
        elements.push(body[start..i].trim_ascii());
        match body[i] {
            b',' => i += 1,
            b']' => return (skip_ws(i + 1) == body.len()).then_some(elements),
            _ => return None,
        }
    }
}

/// Reads a body of at most `limit` bytes; a larger one is refused as soon as it is known to be
/// larger, by `Content-Length` or while reading.
async fn read_body(mut body: Body, headers: &HeaderMap, limit: usize) -> Result<Vec<u8>, Problem> {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if length.is_some_and(|length| length > limit as u64) {
        return Err(Problem::body_too_large(limit));
    }
    let mut out = Vec::with_capacity(length.map_or(0, |length| length as usize));
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|error| {
            Problem::new(
                Kind::UnreadableBody,
                format!("the body could not be read: {error}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(Problem::body_too_large(limit));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// Counts the responses to ingest requests by status.
async fn count(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Ok(mut responses) = shared.responses.lock() {
        *responses.entry(response.status().as_u16()).or_default() += 1;
    }
    response
}

async fn healthz() -> &'static str {
    "ok"
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    use std::fmt::Write as _;
    let mut text = shared.forwarder.metrics().prometheus();
    text.push_str(
        "# HELP forwarder_http_responses_total Responses to ingest requests, by status code.\n\
         # TYPE forwarder_http_responses_total counter\n",
    );
    if let Ok(responses) = shared.responses.lock() {
        for (code, n) in responses.iter() {
            let _ = writeln!(
                text,
                "forwarder_http_responses_total{{code=\"{code}\"}} {n}"
            );
        }
    }
    let in_flight = shared
        .options
        .max_in_flight_requests
        .max(1)
        .saturating_sub(shared.permits.available_permits());
    let _ = writeln!(
        text,
        "# HELP forwarder_http_requests_in_flight Ingest requests being handled.\n\
         # TYPE forwarder_http_requests_in_flight gauge\n\
         forwarder_http_requests_in_flight {in_flight}"
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

impl From<EventError> for Invalid {
    fn from(error: EventError) -> Self {
        Invalid {
            attribute: error.attribute().map(str::to_owned),
            rule: error.rule(),
            detail: error.to_string(),
        }
    }
}

impl Problem {
    fn new(kind: Kind, detail: String) -> Problem {
        Problem {
            kind,
            detail,
            attribute: None,
            rule: None,
            index: None,
            retry_after: None,
        }
    }

    fn invalid(invalid: Invalid, index: Option<usize>) -> Problem {
        let mut problem = Problem::new(Kind::InvalidEvent, invalid.detail);
        problem.attribute = invalid.attribute;
        problem.rule = Some(invalid.rule);
        problem.at(index)
    }

    /// Names the event of a batch the problem is about.
    fn at(mut self, index: Option<usize>) -> Problem {
        if let Some(index) = index {
            self.detail = format!("event {index} of the batch: {}", self.detail);
            self.index = Some(index);
        }
        self
    }

    fn busy() -> Problem {
        let mut problem = Problem::new(
            Kind::TooManyRequests,
            "the limit of requests in flight is reached (--max-in-flight-requests)".to_owned(),
        );
        problem.retry_after = Some(Duration::from_secs(1));
        problem
    }

    fn body_too_large(limit: usize) -> Problem {
        Problem::new(
            Kind::BodyTooLarge,
            format!("the body is over the limit of {limit} bytes"),
        )
    }

    fn timeout(timeout: Duration, retry_after: Duration) -> Problem {
        let mut problem = Problem::new(
            Kind::Timeout,
            format!(
                "the request did not complete within {}s; its events may or may not be queued",
                timeout.as_secs_f64()
            ),
        );
        problem.retry_after = Some(retry_after);
        problem
    }

    /// Some events were not delivered: 502 when SQS refused one (another attempt would not
    /// help), else 503 (unavailable, or shutting down).
    fn undelivered(
        failures: &[(usize, SendError)],
        total: usize,
        retry_after: Duration,
    ) -> Problem {
        for (index, error) in failures {
            tracing::warn!(index, %error, "event not delivered");
        }
        let refused = failures
            .iter()
            .find(|(_, error)| matches!(error, SendError::Refused { .. }));
        let Some((index, error)) = refused.or(failures.first()) else {
            return Problem::new(Kind::Internal, "no failure to report".to_owned());
        };
        let kind = match error {
            SendError::Refused { .. } => Kind::RefusedBySqs,
            SendError::TooLarge { .. } => Kind::EventTooLarge,
            SendError::Unavailable { .. } | SendError::Closed => Kind::SqsUnavailable,
        };
        let mut detail = match error {
            // SQS's message may name the account or the queue: the code is enough for a caller.
            SendError::Refused { code, .. } => format!("SQS refused the message: {code}"),
            other => other.to_string(),
        };
        if total > 1 {
            detail = format!(
                "{} of {total} events not queued (first: event {index}: {detail}); {} were \
                 queued and would be sent again by a retry",
                failures.len(),
                total - failures.len()
            );
        }
        let mut problem = Problem::new(kind, detail);
        if total > 1 {
            problem.index = Some(*index);
        }
        if kind == Kind::SqsUnavailable {
            problem.retry_after = Some(retry_after);
        }
        problem
    }
}

impl Kind {
    fn status(self) -> StatusCode {
        match self {
            Kind::InvalidEvent | Kind::UnreadableBody => StatusCode::BAD_REQUEST,
            Kind::MissingToken | Kind::WrongToken => StatusCode::UNAUTHORIZED,
            Kind::BodyTooLarge | Kind::EventTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Kind::RefusedBySqs => StatusCode::BAD_GATEWAY,
            Kind::SqsUnavailable | Kind::Timeout => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The problem `type`, a URI.
    fn uri(self) -> &'static str {
        match self {
            Kind::InvalidEvent => "urn:forwarder:problem:invalid-event",
            Kind::UnreadableBody => "urn:forwarder:problem:unreadable-body",
            Kind::MissingToken | Kind::WrongToken => "urn:forwarder:problem:unauthorized",
            Kind::BodyTooLarge | Kind::EventTooLarge => "urn:forwarder:problem:too-large",
            Kind::UnsupportedMediaType => "urn:forwarder:problem:unsupported-media-type",
            Kind::TooManyRequests => "urn:forwarder:problem:too-many-requests",
            Kind::Internal => "urn:forwarder:problem:internal",
            Kind::RefusedBySqs => "urn:forwarder:problem:refused-by-sqs",
            Kind::SqsUnavailable => "urn:forwarder:problem:sqs-unavailable",
            Kind::Timeout => "urn:forwarder:problem:timeout",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::InvalidEvent => "Invalid CloudEvent",
            Kind::UnreadableBody => "Unreadable body",
            Kind::MissingToken | Kind::WrongToken => "Missing or wrong bearer token",
            Kind::BodyTooLarge => "Body too large",
            Kind::EventTooLarge => "Event too large for SQS",
            Kind::UnsupportedMediaType => "Unsupported media type",
            Kind::TooManyRequests => "Too many requests in flight",
            Kind::Internal => "Internal error",
            Kind::RefusedBySqs => "Refused by SQS",
            Kind::SqsUnavailable => "SQS unavailable",
            Kind::Timeout => "Request timed out",
        }
    }

    /// The `WWW-Authenticate` challenge of a 401 (RFC 6750).
    fn challenge(self) -> Option<&'static str> {
        match self {
            Kind::MissingToken => Some("Bearer"),
            Kind::WrongToken => Some("Bearer error=\"invalid_token\""),
            _ => None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let document = Document {
            ty: self.kind.uri(),
            title: self.kind.title(),
            status: self.kind.status().as_u16(),
            detail: &self.detail,
            attribute: self.attribute.as_deref(),
            rule: self.rule,
            index: self.index,
        };
        let body = serde_json::to_string(&document).unwrap_or_default();
        let mut response = (self.kind.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(retry_after) = self.retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
        }
        if let Some(challenge) = self.kind.challenge() {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        let check = |input: &str, expected: Result<&str, &str>| {
            let actual = percent_decode(input.as_bytes());
            assert_eq!(
                actual.as_deref().map_err(|(rule, _)| *rule),
                expected,
                "{input}"
            );
        };
        check("plain", Ok("plain"));
        check("a%20b%22c%25", Ok("a b\"c%"));
        check("caf%C3%A9", Ok("café"));
        check("%e2%82%ac", Ok("€"));
        check("%", Err("percent-encoding"));
        check("%4", Err("percent-encoding"));
        check("%zz", Err("percent-encoding"));
        check("%+1", Err("percent-encoding"));
        check("%C3", Err("utf-8"));
    }

    #[test]
    fn array_splitting() {
        let check = |input: &str, expected: Option<&[&str]>| {
            let actual = split_array(input.as_bytes()).map(|elements| {
                elements
                    .iter()
                    .map(|e| std::str::from_utf8(e).expect("UTF-8"))
                    .collect::<Vec<_>>()
            });
            assert_eq!(actual.as_deref(), expected, "{input}");
        };
        check("[]", Some(&[]));
        check(" [ ] \n", Some(&[]));
        check("[{}]", Some(&["{}"]));
        check(
            r#"[ {"a":[1,{"b":"],}"}]} , {"c":"\"]"} ]"#,
            Some(&[r#"{"a":[1,{"b":"],}"}]}"#, r#"{"c":"\"]"}"#]),
        );
        check("[1,]", Some(&["1", ""]));
        check("[{}}", None);
        check("[{}", None);
        check("[", None);
        check("", None);
        check("{}", None);
        check("[] x", None);
        check("[{}] ]", None);
    }

    #[test]
    fn data_kinds() {
        let check = |content_type: &str, expected: DataKind| {
            assert_eq!(data_kind(content_type), expected, "{content_type}");
        };
        check("application/json", DataKind::Json);
        check("Application/JSON; charset=utf-8", DataKind::Json);
        check("application/vnd.api+json", DataKind::Json);
        check("text/json", DataKind::Json);
        check("text/plain", DataKind::Text);
        check("text/csv; charset=\"UTF-8\"", DataKind::Text);
        check("text/plain; charset=iso-8859-1", DataKind::Binary);
        check("application/octet-stream", DataKind::Binary);
        check("image/png", DataKind::Binary);
        check("application/jsonx", DataKind::Binary);
    }

    #[test]
    fn modes() {
        let check = |headers: &[(&str, &str)], expected: Result<Mode, u16>| {
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                map.append(
                    header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                    HeaderValue::from_str(value).expect("value"),
                );
            }
            assert_eq!(
                mode(&map).map_err(|problem| problem.kind.status().as_u16()),
                expected,
                "{headers:?}"
            );
        };
        check(&[("content-type", STRUCTURED)], Ok(Mode::Structured));
        check(
            &[(
                "content-type",
                "Application/CloudEvents+JSON; charset=UTF-8",
            )],
            Ok(Mode::Structured),
        );
        check(&[("content-type", BATCH)], Ok(Mode::Batch));
        check(
            &[
                ("content-type", "application/json"),
                ("ce-specversion", "1.0"),
            ],
            Ok(Mode::Binary),
        );
        check(&[("ce-specversion", "1.0")], Ok(Mode::Binary));
        check(&[("content-type", "application/json")], Err(415));
        check(
            &[("content-type", "application/cloudevents+avro")],
            Err(415),
        );
        check(&[], Err(415));
    }

    #[test]
    fn bearer_tokens() {
        let check = |value: &str, expected: Option<&str>| {
            assert_eq!(
                bearer(value.as_bytes()),
                expected.map(str::as_bytes),
                "{value}"
            );
        };
        check("Bearer abc", Some("abc"));
        check("bearer  abc ", Some("abc"));
        check("Basic abc", None);
        check("Bearer", None);
        check("Bearer ", None);
        check("Bearerabc", None);
        assert!(is_b64token("abc-._~+/=="));
        assert!(!is_b64token(""));
        assert!(!is_b64token("=="));
        assert!(!is_b64token("a b"));
        assert!(!is_b64token("a=b"));
    }

    #[test]
    fn binary_events() {
        let check = |headers: &[(&str, &str)], body: &[u8], expected: Result<&str, &str>| {
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                map.append(
                    header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                    HeaderValue::from_str(value).expect("value"),
                );
            }
            let actual = binary_event(&map, body);
            let actual = actual
                .as_ref()
                .map(crate::encode::encode)
                .map_err(|invalid| {
                    format!(
                        "{}: {}",
                        invalid.attribute.as_deref().unwrap_or("-"),
                        invalid.rule
                    )
                });
            assert_eq!(
                actual.as_deref(),
                expected.map_err(|e| e.to_owned()).as_deref()
            );
        };
        let base = [
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-source", "/s"),
            ("ce-type", "t"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| [&base[..], extra].concat();
        check(
            &with(&[("content-type", "application/json")]),
            b"{ \"n\": 1.50 }",
            Ok(
                r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json","data":{"n":1.50}}"#,
            ),
        );
        check(
            &with(&[
                ("content-type", "text/plain"),
                ("ce-subject", "a%20%22b%22"),
            ]),
            "héllo \"x\"".as_bytes(),
            Ok(
                r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":"a \"b\"","datacontenttype":"text/plain","data":"héllo \"x\""}"#,
            ),
        );
        check(
            &with(&[("content-type", "application/octet-stream")]),
            &[0, 1, 255],
            Ok(
                r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/octet-stream","data_base64":"AAH/"}"#,
            ),
        );
        check(
            &base,
            b"",
            Ok(r#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#),
        );
        check(
            &base,
            &[7],
            Ok(r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"Bw=="}"#),
        );
        check(
            &with(&[("content-type", "application/json")]),
            b"{",
            Err("data: json"),
        );
        check(
            &with(&[("content-type", "text/plain")]),
            &[0xC3, 0x28],
            Err("data: utf-8"),
        );
        check(
            &with(&[("ce-subject", "%zz")]),
            b"",
            Err("subject: percent-encoding"),
        );
        check(
            &with(&[("ce-time", "yesterday")]),
            b"",
            Err("time: rfc3339"),
        );
        check(&base[1..], b"", Err("specversion: required"));
        check(&with(&[("ce-id", "2")]), b"", Err("id: duplicate"));
    }
}
