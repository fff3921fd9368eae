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
//! | 413 | the body is over its limit or the byte budget, an event's message is over the SQS limit, or a batch has too many events |
//! | 415 | neither of the three modes (or a CloudEvents format other than JSON) |
//! | 429 | the in-flight limit or the byte budget is reached (`Retry-After: 1`) |
//! | 502 | SQS refused the message and another attempt would not help (permissions, a missing queue) |
//! | 503 | SQS stayed unavailable through the retries, or the request timed out (`Retry-After`) |
//!
//! A 502 or 503 for a request of several events lists the ids in the queue (`accepted`) and the
//! others with their reason (`failed`), so a retry need not duplicate any.
//!
//! Errors are RFC 9457 problem documents (`application/problem+json`). Memory is bounded: at

mod auth;
mod binding;
mod connections;
mod problem;
mod routes;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::destinations::Destinations;

pub use auth::{TokenFile, read_token};
pub use routes::router;

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
    /// When set, ingest requires `Authorization: Bearer <token>`, the token in force in this
    /// file.
    pub token: Option<Arc<TokenFile>>,
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
    /// How long a client may take to send a request's header; then the connection is closed.
    pub header_timeout: Duration,
    /// How long a connection may stay open without a request in progress.
    pub idle_timeout: Duration,
    /// Connections open at once; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// Body bytes reserved by the requests in flight, together; a request whose body does not
    /// fit now gets 429, one larger than the whole budget 413.
    pub max_in_flight_bytes: usize,
    /// The most events in one batched request; more gets 413.
    pub max_batch_events: usize,
    /// How long shutdown waits for the requests in flight before closing their connections.
    pub shutdown_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            token: None,
            max_in_flight_requests: 64,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_batch_body_bytes: DEFAULT_MAX_BATCH_BODY_BYTES,
            request_timeout: Duration::from_secs(60),
            retry_after: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_in_flight_bytes: 64 * 1024 * 1024,
            max_batch_events: 1000,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves until `shutdown` completes, then stops accepting, finishes the requests in flight
/// (within `options.shutdown_timeout`) and shuts the destinations down (when this holds their
/// last reference; otherwise they are flushed). With `operations`, `/healthz` and `/metrics` are served
/// there and not on `listener`.
pub async fn serve(
    listener: TcpListener,
    operations: Option<TcpListener>,
    targets: Arc<Destinations>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits = connections::Limits {
        header_timeout: options.header_timeout,
        idle_timeout: options.idle_timeout,
        max_connections: options.max_connections,
        shutdown_timeout: options.shutdown_timeout,
    };
    let (ingest, operations_routes) = routes::routers(Arc::clone(&targets), options);
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stopped| *stopped).await;
    };
    match operations {
        Some(operations) => {
            let side = tokio::spawn(connections::accept_loop(
                operations,
                operations_routes,
                limits,
                until_stopped(stopped.clone()),
            ));
            connections::accept_loop(listener, ingest, limits, until_stopped(stopped)).await?;
            side.await.map_err(io::Error::other)??;
        }
        None => {
            let app = ingest.merge(operations_routes);
            connections::accept_loop(listener, app, limits, until_stopped(stopped)).await?;
        }
    }
    // Every request waited for its answers, so nothing is pending; flushing makes sure.
    targets.flush().await;
    if let Ok(targets) = Arc::try_unwrap(targets) {
        targets.shutdown().await;
    }
    Ok(())
}
