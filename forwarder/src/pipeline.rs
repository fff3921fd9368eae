//! The [`Forwarder`]: takes encoded messages, fills `SendMessageBatch` requests (at most ten
//! entries and 1 MiB), keeps several in flight, retries what is transient and answers every
//! message with the message id SQS gave it or the reason it was not delivered.
//!
//! How many requests are in flight is the batcher's to decide alone: each request reports
//! every attempt (its round trip and how it ended) and its end back to the batcher, which feeds
//! the attempts to the [`Controller`] of `--max-in-flight auto` (or keeps a fixed number) and
//! sends the next batch only while fewer requests than the limit are outstanding. A request
//! keeps its slot through its retries.
//!
//! A partly filled batch waits a short linger for more messages, and longer while requests are
//! in flight, whose answers bring more from producers that wait on them (see [`partial_due`]):
//! concurrent `serve` clients fill shared batches instead of each sending a few.
//!
//! Memory is bounded: the queue in front of the batcher has a fixed capacity, so a caller that
//! produces faster than SQS accepts waits in [`Forwarder::enqueue`].

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::error::ProvideErrorMetadata;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::batch::Batcher;
use crate::concurrency::{Concurrency, Config, Controller, Observation, Outcome};
use crate::message::Outgoing;
use crate::metrics::Metrics;
use crate::sqs::{BatchError, EntryResult, Sqs};
use aws_access::retry::{Backoff, is_retryable, is_retryable_entry};

/// How the forwarder batches and retries.
#[derive(Debug, Clone)]
pub struct Options {
    /// Requests in flight at once: adaptive by default; one for FIFO queues, which keep order.
    pub concurrency: Concurrency,
    /// How long a partly filled batch waits for more messages.
    pub linger: Duration,
    /// How long in all a partly filled batch may wait while requests are in flight; see
    /// [`partial_due`].
    pub max_linger: Duration,
    /// Messages waiting in front of the batcher before `enqueue` waits.
    pub capacity: usize,
    /// The retry budget of each batch.
    pub backoff: Backoff,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: Concurrency::AUTO,
            linger: Duration::from_millis(5),
            max_linger: Duration::from_millis(50),
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
            options.concurrency = Concurrency::ONE;
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
    let mut slots = Slots::new(options.concurrency, Arc::clone(&metrics));
    let dispatcher = Dispatcher {
        sqs,
        backoff: options.backoff,
        metrics,
    };
    let mut batcher: Batcher<Job> = Batcher::new();
    // When the current batch's first message came.
    let mut first = Instant::now();
    loop {
        let due = partial_due(first, slots.last_answer, slots.in_flight, &options);
        let command = tokio::select! {
            Some(event) = slots.events.recv() => {
                slots.handle(event);
                continue;
            }
            command = commands.recv() => command,
            () = tokio::time::sleep_until(due), if !batcher.is_empty() => {
                dispatcher.dispatch(&mut slots, batcher.take()).await;
                continue;
            }
        };
        match command {
            None => break,
            Some(Command::Send(job)) => {
                let size = job.message.size();
                if let Some(full) = batcher.push(job, size) {
                    dispatcher.dispatch(&mut slots, full).await;
                }
                if batcher.len() == 1 {
                    first = Instant::now();
                }
                if batcher.is_full() {
                    dispatcher.dispatch(&mut slots, batcher.take()).await;
                }
            }
            Some(Command::Flush(done)) => {
                dispatcher.dispatch(&mut slots, batcher.take()).await;
                slots.idle().await;
                let _ = done.send(());
            }
        }
    }
    dispatcher.dispatch(&mut slots, batcher.take()).await;
    slots.idle().await;
}

/// When a partly filled batch whose first message came at `first` is sent. With no request in
/// flight: once [`Options::linger`] has passed since that message and since the last answer (the
/// producers that answer was for get the same time to send again). With requests in flight, it
/// waits for them, since their answers bring more messages (producers that wait on an answer,
/// such as `serve`'s clients, send again): until none is in flight, as above, or until
/// [`Options::max_linger`] has passed since `first`.
fn partial_due(
    first: Instant,
    last_answer: Option<Instant>,
    in_flight: usize,
    options: &Options,
) -> Instant {
    let most = first + options.max_linger.max(options.linger);
    if in_flight > 0 {
        return most;
    }
    let since = last_answer.map_or(first, |answer| answer.max(first));
    (since + options.linger).min(most)
}

/// What a request tells the batcher.
#[derive(Debug)]
enum Event {
    /// An attempt ended.
    Attempt(Observation),
    /// The request has answered every message: its slot is free.
    Done,
}

/// The limit of requests in flight, and how many are.
#[derive(Debug)]
struct Slots {
    limit: Limit,
    in_flight: usize,
    /// When a request last ended.
    last_answer: Option<Instant>,
    events: mpsc::UnboundedReceiver<Event>,
    /// Cloned into every request; kept here, so `events` never ends.
    reports: mpsc::UnboundedSender<Event>,
    metrics: Arc<Metrics>,
}

#[derive(Debug)]
enum Limit {
    Fixed(usize),
    Adaptive(Box<Controller>),
}

impl Slots {
    fn new(concurrency: Concurrency, metrics: Arc<Metrics>) -> Slots {
        let limit = match concurrency {
            Concurrency::Fixed(n) => Limit::Fixed(n.get()),
            Concurrency::Adaptive { max } => {
                Limit::Adaptive(Box::new(Controller::new(Config::new(max))))
            }
        };
        let (reports, events) = mpsc::unbounded_channel();
        let slots = Slots {
            limit,
            in_flight: 0,
            last_answer: None,
            events,
            reports,
            metrics,
        };
        slots.publish();
        slots
    }

    fn limit(&self) -> usize {
        match &self.limit {
            Limit::Fixed(n) => *n,
            Limit::Adaptive(controller) => controller.limit(),
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Attempt(observation) => {
                if let Limit::Adaptive(controller) = &mut self.limit {
                    let before = controller.limit();
                    let after = controller.observe(observation);
                    if after != before {
                        tracing::debug!(
                            limit = after,
                            baseline = ?controller.baseline(),
                            rtt = ?observation.rtt,
                            outcome = ?observation.outcome,
                            "in-flight limit"
                        );
                    }
                }
            }
            Event::Done => {
                self.in_flight = self.in_flight.saturating_sub(1);
                self.last_answer = Some(Instant::now());
            }
        }
        self.publish();
    }

    fn publish(&self) {
        let (peak, baseline) = match &self.limit {
            Limit::Fixed(n) => (*n, None),
            Limit::Adaptive(controller) => (controller.peak(), controller.baseline()),
        };
        self.metrics
            .record_concurrency(self.limit(), peak, self.in_flight, baseline);
    }

    /// Waits for a free slot and takes it; the slot is given back when the returned [`Slot`]
    /// drops.
    async fn acquire(&mut self) -> Slot {
        while self.in_flight >= self.limit() {
            let Some(event) = self.events.recv().await else {
                break;
            };
            self.handle(event);
        }
        self.in_flight += 1;
        self.publish();
        Slot {
            reports: self.reports.clone(),
            in_flight: self.in_flight,
        }
    }

    /// Returns once no request is in flight.
    async fn idle(&mut self) {
        while self.in_flight > 0 {
            let Some(event) = self.events.recv().await else {
                break;
            };
            self.handle(event);
        }
    }
}

/// A request's place among those in flight: it reports each attempt, and its end when dropped.
#[derive(Debug)]
struct Slot {
    reports: mpsc::UnboundedSender<Event>,
    /// Requests in flight when it was taken, itself included.
    in_flight: usize,
}

impl Slot {
    fn report(&self, rtt: Duration, outcome: Outcome) {
        let _ = self.reports.send(Event::Attempt(Observation {
            rtt,
            outcome,
            in_flight: self.in_flight,
        }));
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let _ = self.reports.send(Event::Done);
    }
}

/// What every request needs.
#[derive(Debug)]
struct Dispatcher {
    sqs: Sqs,
    backoff: Backoff,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    /// Sends `jobs` as a request of its own once a slot is free.
    async fn dispatch(&self, slots: &mut Slots, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let slot = slots.acquire().await;
        let (sqs, metrics, backoff) = (self.sqs.clone(), Arc::clone(&self.metrics), self.backoff);
        tokio::spawn(async move {
            send_with_retries(&sqs, jobs, backoff, &metrics, &slot).await;
            drop(slot);
        });
    }
}

/// Sends `jobs` as one batch, then only the entries that failed transiently, until every entry
/// has an answer or the retry budget is spent.
async fn send_with_retries(
    sqs: &Sqs,
    mut jobs: Vec<Job>,
    backoff: Backoff,
    metrics: &Metrics,
    slot: &Slot,
) {
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let messages: Vec<&Outgoing> = jobs.iter().map(|j| &j.message).collect();
        let bytes = jobs.iter().map(|j| j.message.size().get()).sum();
        let sent_at = Instant::now();
        let result = sqs.send_batch(&messages).await;
        let rtt = sent_at.elapsed();
        metrics.record_request(messages.len(), bytes, rtt);
        slot.report(rtt, outcome_of(&result));
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

/// How an attempt ended, for the concurrency controller: throttling (of the request or of an
/// entry, a 429 or a 503) asks for fewer requests in flight, so does any other failure worth a
/// retry, less strongly; an answer, even a refusal, is a round trip like any other.
fn outcome_of(result: &Result<Vec<EntryResult>, BatchError>) -> Outcome {
    match result {
        Ok(results) => results
            .iter()
            .filter_map(|result| match result {
                EntryResult::Failed {
                    code, sender_fault, ..
                } if is_retryable_entry(code, *sender_fault) => Some(if is_throttling(code) {
                    Outcome::Throttled
                } else {
                    Outcome::Failed
                }),
                _ => None,
            })
            .min_by_key(|outcome| *outcome != Outcome::Throttled)
            .unwrap_or(Outcome::Ok),
        Err(error) if is_retryable(error) => {
            let status = match error {
                aws_sdk_sqs::error::SdkError::ServiceError(context) => {
                    Some(context.raw().status().as_u16())
                }
                _ => None,
            };
            if matches!(status, Some(429 | 503)) || error.code().is_some_and(is_throttling) {
                Outcome::Throttled
            } else {
                Outcome::Failed
            }
        }
        Err(_) => Outcome::Ok,
    }
}

/// Whether an error code says "slow down".
fn is_throttling(code: &str) -> bool {
    code.contains("Throttl")
        || matches!(
            code,
            "TooManyRequestsException" | "RequestLimitExceeded" | "ServiceUnavailable"
        )
}

fn describe(error: &BatchError) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn options(linger: u64, max_linger: u64) -> Options {
        Options {
            linger: Duration::from_millis(linger),
            max_linger: Duration::from_millis(max_linger),
            ..Options::default()
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn with_nothing_in_flight_a_partial_batch_lingers_from_its_first_message() {
        let first = Instant::now();
        let options = options(5, 50);
        assert_eq!(partial_due(first, None, 0, &options), first + ms(5));
        // An answer before the batch began changes nothing.
        assert_eq!(
            partial_due(first, Some(first - ms(30)), 0, &options),
            first + ms(5)
        );
    }

    #[test]
    fn after_an_answer_its_producers_get_the_linger_to_send_again() {
        let first = Instant::now();
        let options = options(5, 50);
        assert_eq!(
            partial_due(first, Some(first + ms(20)), 0, &options),
            first + ms(25)
        );
        // But never past the most a batch waits.
        assert_eq!(
            partial_due(first, Some(first + ms(48)), 0, &options),
            first + ms(50)
        );
    }

    #[test]
    fn while_requests_are_in_flight_it_waits_up_to_the_most() {
        let first = Instant::now();
        for in_flight in [1, 8] {
            assert_eq!(
                partial_due(first, None, in_flight, &options(5, 50)),
                first + ms(50)
            );
        }
        // A most below the linger is the linger.
        assert_eq!(partial_due(first, None, 3, &options(5, 2)), first + ms(5));
    }
}
