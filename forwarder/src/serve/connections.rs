//! The accept loop of `serve`: one task per connection under a cap, a header read timeout and an
//! idle timeout per connection, and a shutdown that closes idle connections at once and gives
//! the requests in flight a deadline.
//!
//! A client that opens a connection and sends half a header holds a connection (not a request
//! slot) until the header timeout closes it; at shutdown it is closed at the deadline at the
//! latest.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The limits of each connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) header_timeout: Duration,
    pub(super) idle_timeout: Duration,
    pub(super) max_connections: usize,
    pub(super) shutdown_timeout: Duration,
}

/// Accepts connections until `shutdown` completes, then stops accepting, lets every connection
/// finish its request in flight within `limits.shutdown_timeout`, and closes what remains.
pub(super) async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (closing, closed) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like pass; the loop must not spin on them.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            // Finished connections are reaped as they end, so that the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!("the connection cap is reached (--max-connections): closing");
            drop(stream);
            continue;
        };
        let (app, closed) = (app.clone(), closed.clone());
        connections.spawn(async move {
            connection(stream, app, limits, closed).await;
            drop(slot);
        });
    }
    // New connections are refused from now on.
    drop(listener);
    let _ = closing.send(true);
    let deadline = Instant::now() + limits.shutdown_timeout;
    while !connections.is_empty() {
        if tokio::time::timeout_at(deadline, connections.join_next())
            .await
            .is_err()
        {
            tracing::warn!(
                connections = connections.len(),
                "the shutdown deadline passed (--shutdown-timeout-seconds): closing the rest"
            );
            connections.abort_all();
            while connections.join_next().await.is_some() {}
        }
    }
    Ok(())
}

/// Serves one connection: HTTP/1.1 with a header read timeout, closed when idle for
/// `limits.idle_timeout`, and gracefully once `closed` turns true.
async fn connection(
    stream: TcpStream,
    app: Router,
    limits: Limits,
    mut closed: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::default());
    let service = CountDone {
        inner: TowerToHyperService::new(app),
        activity: Arc::clone(&activity),
    };
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended");
                }
                return;
            }
            _ = closed.wait_for(|closed| *closed), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep(limits.idle_timeout) => {
                if activity.idle_for(limits.idle_timeout) {
                    tracing::debug!("idle connection closed (--idle-timeout-seconds)");
                    return;
                }
            }
        }
    }
}

/// The requests of one connection in progress, and when the last one ended.
#[derive(Debug)]
struct Activity {
    in_progress: AtomicUsize,
    last: std::sync::Mutex<Instant>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            in_progress: AtomicUsize::new(0),
            last: std::sync::Mutex::new(Instant::now()),
        }
    }
}

impl Activity {
    fn begin(&self) {
        self.in_progress.fetch_add(1, Ordering::SeqCst);
    }

    fn end(&self) {
        self.in_progress.fetch_sub(1, Ordering::SeqCst);
        if let Ok(mut last) = self.last.lock() {
            *last = Instant::now();
        }
    }

    /// Whether no request is in progress and none ended within `timeout`.
    fn idle_for(&self, timeout: Duration) -> bool {
        self.in_progress.load(Ordering::SeqCst) == 0
            && self.last.lock().is_ok_and(|last| last.elapsed() >= timeout)
    }
}

/// A hyper service that marks the start and the end of each request in its connection's [`Activity`].
#[derive(Debug, Clone)]
struct CountDone<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, B> hyper::service::Service<B> for CountDone<S>
where
    S: hyper::service::Service<B>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send + 'static>>;

    fn call(&self, request: B) -> Self::Future {
        self.activity.begin();
        let future = self.inner.call(request);
        let activity = Arc::clone(&self.activity);
        Box::pin(async move {
            let result = future.await;
            activity.end();
            result
        })
    }
}
