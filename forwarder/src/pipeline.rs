//! The [`Forwarder`]: takes encoded messages, fills `SendMessageBatch` requests (at most ten
//! entries and 1 MiB), keeps several in flight, retries what is transient and answers every
//! message with the message id SQS gave it or the reason it was not delivered.
//!
//! Memory is bounded: the queue in front of the batcher has a fixed capacity, so a caller that
//! produces faster than SQS accepts waits in [`Forwarder::enqueue`].

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::error::ProvideErrorMetadata;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::batch::Batcher;
use crate::message::Outgoing;
use crate::metrics::Metrics;
use crate::sqs::{EntryResult, Sqs};
use aws_access::retry::{Backoff, is_retryable, is_retryable_entry};

/// How the forwarder batches and retries.
#[derive(Debug, Clone)]
pub struct Options {
    /// Requests in flight at once (one for FIFO queues, which keep order).
    pub max_in_flight: usize,
    /// How long a partly filled batch waits for more messages.
    pub linger: Duration,
    /// Messages waiting in front of the batcher before `enqueue` waits.
    pub capacity: usize,
    /// The retry budget of each batch.
    pub backoff: Backoff,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_in_flight: 8,
            linger: Duration::from_millis(5),
            capacity: 1_000,
            backoff: Backoff::default(),
        }
    }
}

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// SQS refused it and another attempt would not help.
    #[error("refused by SQS: {code}: {message}")]
    Refused {
        /// The error code.
        code: String,
        /// SQS's explanation.
        message: String,
    },
    /// SQS stayed unavailable through every retry.
    #[error("not delivered after {attempts} attempts: {last}")]
    Unavailable {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The forwarder was shut down before the message could be sent.
    #[error("the forwarder has shut down")]
    Closed,
}

/// The answer to one message: SQS's message id, or why not.
pub type Delivery = Result<String, SendError>;

/// A message's answer, to be awaited later.
#[derive(Debug)]
pub struct Pending(oneshot::Receiver<Delivery>);

impl Pending {
    /// Waits for SQS's answer.
    pub async fn wait(self) -> Delivery {
        self.0.await.unwrap_or(Err(SendError::Closed))
    }
}

enum Command {
    Send(Job),
    Flush(oneshot::Sender<()>),
}

struct Job {
    message: Outgoing,
    reply: oneshot::Sender<Delivery>,
}

/// Batches, sends and retries; see the module documentation.
#[derive(Debug)]
pub struct Forwarder {
    commands: mpsc::Sender<Command>,
    worker: JoinHandle<()>,
    metrics: Arc<Metrics>,
}

impl Forwarder {
    /// Starts the batcher on the current tokio runtime.
    pub fn start(sqs: Sqs, mut options: Options, metrics: Arc<Metrics>) -> Forwarder {
        if sqs.queue_url().is_fifo() {
            options.max_in_flight = 1;
        }
        let (commands, receiver) = mpsc::channel(options.capacity.max(1));
        let worker = tokio::spawn(batcher(sqs, options, Arc::clone(&metrics), receiver));
        Forwarder {
            commands,
            worker,
            metrics,
        }
    }

    /// The counters of this forwarder.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Queues a message, waiting while the forwarder is full; the returned [`Pending`] gives
    /// SQS's answer. The message's size was checked when it was built.
    pub async fn enqueue(&self, message: Outgoing) -> Result<Pending, SendError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Send(Job { message, reply }))
            .await
            .map_err(|_| SendError::Closed)?;
        Ok(Pending(answer))
    }

    /// Sends one message and waits until SQS has accepted or refused it.
    pub async fn send(&self, message: Outgoing) -> Delivery {
        self.enqueue(message).await?.wait().await
    }

    /// Sends what is waiting without lingering, and returns once every message queued before
    /// has its answer.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Sends everything queued, waits for every answer, and stops.
    pub async fn shutdown(self) {
        drop(self.commands);
        let _ = self.worker.await;
    }
}

async fn batcher(
    sqs: Sqs,
    options: Options,
    metrics: Arc<Metrics>,
    mut commands: mpsc::Receiver<Command>,
) {
    let in_flight = Arc::new(Semaphore::new(options.max_in_flight.max(1)));
    let mut batcher: Batcher<Job> = Batcher::new();
    let mut deadline = Instant::now();
    let dispatch = |jobs: Vec<Job>| {
        let (sqs, metrics, backoff, in_flight) = (
            sqs.clone(),
            Arc::clone(&metrics),
            options.backoff,
            Arc::clone(&in_flight),
        );
        async move {
            if jobs.is_empty() {
                return;
            }
            let Ok(permit) = in_flight.acquire_owned().await else {
                return;
            };
            tokio::spawn(async move {
                send_with_retries(&sqs, jobs, backoff, &metrics).await;
                drop(permit);
            });
        }
    };
    loop {
        let command = if batcher.is_empty() {
            commands.recv().await
        } else {
            tokio::select! {
                command = commands.recv() => command,
                () = tokio::time::sleep_until(deadline) => {
                    dispatch(batcher.take()).await;
                    continue;
                }
            }
        };
        match command {
            None => break,
            Some(Command::Send(job)) => {
                let size = job.message.size();
                if let Some(full) = batcher.push(job, size) {
                    dispatch(full).await;
                }
                if batcher.len() == 1 {
                    deadline = Instant::now() + options.linger;
                }
                if batcher.is_full() {
                    dispatch(batcher.take()).await;
                }
            }
            Some(Command::Flush(done)) => {
                dispatch(batcher.take()).await;
                wait_idle(&in_flight, options.max_in_flight).await;
                let _ = done.send(());
            }
        }
    }
    dispatch(batcher.take()).await;
    wait_idle(&in_flight, options.max_in_flight).await;
}

/// Returns once no request is in flight.
async fn wait_idle(in_flight: &Semaphore, max: usize) {
    if let Ok(all) = in_flight.acquire_many(max.max(1) as u32).await {
        drop(all);
    }
}

/// Sends `jobs` as one batch, then only the entries that failed transiently, until every entry
/// has an answer or the retry budget is spent.
async fn send_with_retries(sqs: &Sqs, mut jobs: Vec<Job>, backoff: Backoff, metrics: &Metrics) {
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let messages: Vec<&Outgoing> = jobs.iter().map(|j| &j.message).collect();
        let bytes = jobs.iter().map(|j| j.message.size().get()).sum();
        let sent_at = Instant::now();
        let result = sqs.send_batch(&messages).await;
        metrics.record_request(messages.len(), bytes, sent_at.elapsed());
        let mut retry: Vec<Job> = Vec::new();
        let mut last = String::new();
        match result {
            Ok(results) => {
                for (job, result) in jobs.into_iter().zip(results) {
                    match result {
                        EntryResult::Sent(message_id) => answer(job, Ok(message_id), metrics),
                        EntryResult::Failed {
                            code,
                            sender_fault,
                            message,
                        } if is_retryable_entry(&code, sender_fault) => {
                            last = format!("{code}: {message}");
                            retry.push(job);
                        }
                        EntryResult::Failed { code, message, .. } => {
                            answer(job, Err(SendError::Refused { code, message }), metrics);
                        }
                    }
                }
            }
            Err(error) if is_retryable(&error) => {
                last = describe(&error);
                retry = jobs;
            }
            Err(error) => {
                let code = error.code().unwrap_or("RequestFailed").to_owned();
                let message = error
                    .message()
                    .map_or_else(|| describe(&error), str::to_owned);
                for job in jobs {
                    answer(
                        job,
                        Err(SendError::Refused {
                            code: code.clone(),
                            message: message.clone(),
                        }),
                        metrics,
                    );
                }
            }
        }
        if retry.is_empty() {
            return;
        }
        let Some(delay) = backoff.delay(attempt, started.elapsed()) else {
            for job in retry {
                answer(
                    job,
                    Err(SendError::Unavailable {
                        attempts: attempt,
                        last: last.clone(),
                    }),
                    metrics,
                );
            }
            return;
        };
        tracing::debug!(entries = retry.len(), attempt, ?delay, %last, "retrying");
        metrics
            .retried
            .fetch_add(retry.len() as u64, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(delay).await;
        jobs = retry;
    }
}

fn answer(job: Job, delivery: Delivery, metrics: &Metrics) {
    Metrics::inc(if delivery.is_ok() {
        &metrics.sent
    } else {
        &metrics.failed
    });
    if delivery.is_ok() && job.message.fallback.is_some() {
        Metrics::inc(&metrics.sent_structured);
    }
    let _ = job.reply.send(delivery);
}

fn describe(error: &crate::sqs::BatchError) -> String {
    use aws_sdk_sqs::error::SdkError;
    match error {
        SdkError::TimeoutError(_) => "request timed out".to_owned(),
        SdkError::DispatchFailure(failure) if failure.is_io() => "connection failed".to_owned(),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => {
            "connection timed out".to_owned()
        }
        // Such as credentials that could not be had (a role that cannot be assumed): the
        // causes say which.
        SdkError::DispatchFailure(_) => {
            let mut text = "request could not be sent".to_owned();
            let mut cause = std::error::Error::source(error);
            while let Some(error) = cause {
                text.push_str(": ");
                text.push_str(&error.to_string().replace('\n', " "));
                cause = error.source();
            }
            text
        }
        SdkError::ResponseError(_) => "the answer could not be read".to_owned(),
        SdkError::ServiceError(context) => format!(
            "HTTP {} {}: {}",
            context.raw().status().as_u16(),
            error.code().unwrap_or("error"),
            error.message().unwrap_or_default()
        ),
        _ => "request failed".to_owned(),
    }
}
