//! The router of `serve` and its handlers: ingest (validate every event, build every message,
//! then deliver and answer), `/healthz` and `/metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Json, Router};
use serde::Serialize;
use tokio::sync::{Semaphore, SemaphorePermit};
use tower::ServiceBuilder;

use super::ServeOptions;
use super::auth::authorize;
use super::binding::{Invalid, Mode, binary_event, content_length, mode, read_body, split_array};
use super::problem::{Kind, Problem};
use crate::destinations::{Destination, Destinations, RouteError};
use crate::event::{Event, parse_event};
use crate::message::{MessageError, Outgoing, to_message};
use crate::metrics::Metrics;

/// The routes of `serve`: ingest, `GET /healthz` and `GET /metrics`.
pub fn router(targets: Arc<Destinations>, options: ServeOptions) -> Router {
    let (ingest, operations) = routers(targets, options);
    ingest.merge(operations)
}

/// The ingest routes, and apart the operations routes (`/healthz` and `/metrics`), which
/// `--metrics-listen` serves on an address of their own.
pub(super) fn routers(targets: Arc<Destinations>, options: ServeOptions) -> (Router, Router) {
    let retry_after = options.retry_after;
    let timeout = options.request_timeout;
    let shared = Arc::new(Shared {
        targets,
        permits: Semaphore::new(options.max_in_flight_requests.max(1)),
        bytes: Semaphore::new(options.max_in_flight_bytes.max(1)),
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
    let ingest = Router::new()
        .route("/", post(ingest))
        .route("/events", post(ingest))
        .layer(timeout)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), count))
        .with_state(Arc::clone(&shared));
    let operations = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(shared);
    (ingest, operations)
}

struct Shared {
    targets: Arc<Destinations>,
    options: ServeOptions,
    permits: Semaphore,
    /// The byte budget of the bodies in flight.
    bytes: Semaphore,
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
    let token = shared
        .options
        .token
        .as_ref()
        .and_then(|file| file.current());
    authorize(token.as_ref(), &parts.headers)?;
    let _permit = shared.permits.try_acquire().map_err(|_| Problem::busy())?;
    let mode = mode(&parts.headers)?;
    let limit = match mode {
        Mode::Batch => shared.options.max_batch_body_bytes,
        Mode::Binary | Mode::Structured => shared.options.max_body_bytes,
    };
    let _bytes = reserve(shared, &parts.headers, limit)?;
    let body = read_body(body, &parts.headers, limit).await?;
    let metrics = shared.targets.metrics();
    let events = match mode {
        Mode::Binary => vec![binary_event(&parts.headers, &body)],
        Mode::Structured => vec![parse_event(&body).map_err(Invalid::from)],
        Mode::Batch => match split_array(&body) {
            Some(elements) if elements.len() > shared.options.max_batch_events => {
                let count = elements.len() as u64;
                metrics.received.fetch_add(count, Ordering::Relaxed);
                metrics.refused.fetch_add(count, Ordering::Relaxed);
                return Err(Problem::too_many_events(
                    elements.len(),
                    shared.options.max_batch_events,
                ));
            }
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
        let message = routed(&shared.targets, event)
            .map_err(|problem| refuse(problem.at(batch.then_some(index))))?;
        messages.push(message);
    }
    let ids = valid.iter().map(|event| event.id().to_owned()).collect();
    drop(valid);
    deliver(messages, ids, shared.options.retry_after).await
}

/// Reserves the body's share of the byte budget: its `Content-Length`, or the limit when it has
/// none. A body larger than the whole budget gets 413, one that does not fit now 429.
fn reserve<'a>(
    shared: &'a Shared,
    headers: &HeaderMap,
    limit: usize,
) -> Result<SemaphorePermit<'a>, Problem> {
    let budget = shared.options.max_in_flight_bytes.max(1);
    let bytes = content_length(headers).map_or(limit, |length| {
        usize::try_from(length).unwrap_or(usize::MAX).min(limit)
    });
    if bytes > budget {
        return Err(Problem::over_budget(budget));
    }
    let permits = u32::try_from(bytes.max(1)).unwrap_or(u32::MAX);
    shared
        .bytes
        .try_acquire_many(permits)
        .map_err(|_| Problem::busy_bytes())
}

/// Queues every message with its destination, then waits for every answer.
async fn deliver(
    messages: Vec<(Arc<Destination>, Outgoing)>,
    ids: Vec<String>,
    retry_after: Duration,
) -> Result<Accepted, Problem> {
    let pending: Vec<_> = messages
        .into_iter()
        .map(|(destination, message)| destination.submit(message))
        .collect();
    let total = pending.len();
    let mut message_ids = Vec::with_capacity(total);
    let mut failures = Vec::new();
    for (index, pending) in pending.into_iter().enumerate() {
        match pending.wait().await {
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
    Err(Problem::undelivered(&failures, &ids, retry_after))
}

/// The destination of a valid event and its message: refused when the event names no
/// destination (400), when the FIFO group attribute is missing (400) or when the message is over
/// the SQS limit (413).
fn routed(targets: &Destinations, event: &Event) -> Result<(Arc<Destination>, Outgoing), Problem> {
    let destination = targets.route(event).map_err(|error| {
        let attribute = match &error {
            RouteError::Missing { attribute } | RouteError::Unknown { attribute, .. } => {
                attribute.clone()
            }
        };
        Problem::invalid(
            Invalid {
                attribute: Some(attribute),
                rule: "route-by",
                detail: error.to_string(),
            },
            None,
        )
    })?;
    let message =
        to_message(event, destination.message_options()).map_err(|error| match error {
            MessageError::MissingGroup { ref attribute } => Problem::invalid(
                Invalid {
                    attribute: Some(attribute.clone()),
                    rule: "group-by",
                    detail: error.to_string(),
                },
                None,
            ),
            MessageError::TooLarge { .. } => Problem::new(Kind::EventTooLarge, error.to_string()),
        })?;
    Ok((destination, message))
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
    let per_destination = shared.targets.per_destination();
    let mut sets = vec![(None, shared.targets.metrics().as_ref())];
    sets.extend(
        per_destination
            .iter()
            .map(|(name, metrics)| (Some(name.as_str()), metrics.as_ref())),
    );
    let mut text = Metrics::exposition(&sets);
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
