//! `forwarder consume`: events from a durable log (NATS JetStream) into each one's destination.
//!
//! Every message is settled exactly once, and only when its fate is certain:
//! - **ack** once SQS accepted its event;
//! - **term** once it is durably dead-lettered (written and fsynced) for a permanent reason: not
//!   a CloudEvent, no destination (`--route-by`), too large, refused by SQS; without a
//!   dead-letter file the reason goes to stderr, so a poison message is never handed out
//!   forever;
//! - **nak** with a delay when SQS stayed unavailable through the destination's retry budget,
//!   when the destination already holds its limit of waiting messages (so a slow destination
//!   gives its messages back instead of taking every slot), and when the dead-letter file
//!   cannot be written; the log hands it out again, to this instance or another.
//!
//! While an event waits for SQS, in-progress acks go out every third of the ack wait, so the
//! log does not hand it to another instance meanwhile. Memory is bounded: at most
//! `max_in_flight` messages and `max_in_flight_bytes` of payload are held at once (and the
//! server's `max_ack_pending` bounds what it hands out). A stop (the `stop` future) stops
//! pulling, settles every message in hand, and leaves everything else to the other instances.
//!
//! The log is behind the [`Source`] trait (`source`); `jetstream` is its NATS implementation.

mod jetstream;
mod source;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::dead_letter::{DeadLetter, Record};
use crate::destinations::Destinations;
use crate::event::parse_event;
use crate::message::to_message;
use crate::metrics::Metrics;
use crate::pipeline::SendError;
use crate::send::DestinationSummary;

pub use jetstream::{JetStream, JetStreamOptions, NatsMessage, connect};
pub use source::{Message, Source, SourceError};

/// How `consume` holds and hands back messages.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// Messages held at once.
    pub max_in_flight: usize,
    /// Payload bytes held at once.
    pub max_in_flight_bytes: usize,
    /// Messages of one destination waiting for SQS, at most; more are handed back.
    pub max_per_destination: usize,
    /// How long a message handed back waits before it is handed out again.
    pub nak_delay: Duration,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions {
            max_in_flight: 1_000,
            max_in_flight_bytes: 64 * 1024 * 1024,
            max_per_destination: 320,
            nak_delay: Duration::from_secs(5),
        }
    }
}

/// What happened, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumeSummary {
    /// Messages taken from the log.
    pub received: u64,
    /// Acknowledged after SQS accepted them.
    pub acked: u64,
    /// Dead-lettered (or reported) and terminated.
    pub terminated: u64,
    /// Handed back to the log.
    pub naked: u64,
    /// Written to the dead-letter file.
    pub dead_lettered: u64,
    /// Settlements the log did not take (the message will come again).
    pub settle_errors: u64,
    /// Each destination's counts, by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub destinations: BTreeMap<String, DestinationSummary>,
    /// The error that stopped the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Default)]
struct Counts {
    received: AtomicU64,
    acked: AtomicU64,
    terminated: AtomicU64,
    naked: AtomicU64,
    dead_lettered: AtomicU64,
    settle_errors: AtomicU64,
}

/// What every message's task shares.
struct Shared {
    targets: Arc<Destinations>,
    dead_letter: Option<Mutex<DeadLetter>>,
    options: ConsumeOptions,
    ack_wait: Duration,
    counts: Counts,
    report: Box<dyn Fn(&str) + Send + Sync>,
}

/// Consumes `source` until it ends or `stop` completes; see the module documentation.
pub async fn consume<S: Source>(
    mut source: S,
    targets: Arc<Destinations>,
    dead_letter: Option<DeadLetter>,
    options: ConsumeOptions,
    report: impl Fn(&str) + Send + Sync + 'static,
    stop: impl Future<Output = ()>,
) -> ConsumeSummary {
    let held = Arc::new(Semaphore::new(options.max_in_flight.max(1)));
    let budget_kib = (options.max_in_flight_bytes / 1024).max(1);
    let bytes = Arc::new(Semaphore::new(budget_kib));
    let shared = Arc::new(Shared {
        targets,
        dead_letter: dead_letter.map(Mutex::new),
        ack_wait: source.ack_wait(),
        options,
        counts: Counts::default(),
        report: Box::new(report),
    });
    let mut tasks = JoinSet::new();
    let mut error = None;
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut stop => break,
            permit = Arc::clone(&held).acquire_owned() => permit,
        };
        let Ok(permit) = permit else { break };
        let next = tokio::select! {
            biased;
            () = &mut stop => break,
            next = source.next() => next,
        };
        let message = match next {
            None => break,
            Some(Ok(message)) => message,
            Some(Err(e)) => {
                // Pull errors (a missed heartbeat, a reconnect) are passing: the client pulls on.
                (shared.report)(&format!("forwarder: {e}"));
                continue;
            }
        };
        Metrics::inc(&shared.counts.received);
        let kib = u32::try_from(message.payload().len().div_ceil(1024).clamp(1, budget_kib))
            .unwrap_or(u32::MAX);
        let share = tokio::select! {
            biased;
            () = &mut stop => {
                shared.hand_back(&message, Duration::ZERO).await;
                break;
            }
            share = Arc::clone(&bytes).acquire_many_owned(kib) => share,
        };
        let Ok(share) = share else { break };
        let shared = Arc::clone(&shared);
        tasks.spawn(async move {
            shared.handle(&message).await;
            drop((permit, share));
        });
        while tasks.try_join_next().is_some() {}
    }
    // Stop pulling: what the server has not handed out stays for the other instances.
    drop(source);
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            error.get_or_insert(format!("a message's task failed: {e}"));
        }
    }
    shared.summary(error)
}

impl Shared {
    /// Settles one message.
    async fn handle<M: Message>(&self, message: &M) {
        let metrics = self.targets.metrics();
        Metrics::inc(&metrics.received);
        let event = match parse_event(message.payload()) {
            Ok(event) => event,
            Err(e) => return self.refuse(message, &e.to_string()).await,
        };
        let destination = match self.targets.route(&event) {
            Ok(destination) => destination,
            Err(e) => return self.refuse(message, &e.to_string()).await,
        };
        let outgoing = match to_message(&event, destination.message_options()) {
            Ok(outgoing) => outgoing,
            Err(e) => return self.refuse(message, &e.to_string()).await,
        };
        drop(event);
        if destination.waiting() >= self.options.max_per_destination {
            // The destination is slow: give the message back rather than hold a slot.
            return self.hand_back(message, self.options.nak_delay).await;
        }
        let delivery = destination.submit(outgoing).wait();
        tokio::pin!(delivery);
        let every = (self.ack_wait / 3).max(Duration::from_millis(100));
        let delivery = loop {
            tokio::select! {
                delivery = &mut delivery => break delivery,
                () = tokio::time::sleep(every) => {
                    if let Err(e) = message.progress().await {
                        (self.report)(&format!("forwarder: {e}"));
                    }
                }
            }
        };
        match delivery {
            Ok(_) => self.settle(message.ack().await, &self.counts.acked),
            Err(SendError::Refused { code, message: why }) => {
                let reason = format!("refused by SQS: {code}: {why}");
                self.dead_letter(message, &reason).await;
            }
            Err(e @ (SendError::Unavailable { .. } | SendError::Closed)) => {
                tracing::debug!(error = %e, "handing back");
                self.hand_back(message, self.options.nak_delay).await;
            }
        }
    }

    /// A permanent failure found before sending: counted as refused, then dead-lettered.
    async fn refuse<M: Message>(&self, message: &M, reason: &str) {
        Metrics::inc(&self.targets.metrics().refused);
        self.dead_letter(message, reason).await;
    }

    /// Dead-letters (durably) and terminates; a message that cannot be dead-lettered is handed
    /// back instead.
    async fn dead_letter<M: Message>(&self, message: &M, reason: &str) {
        let (label, sequence) = message.position();
        (self.report)(&format!("{label}:{sequence}: {reason}"));
        if let Some(file) = &self.dead_letter {
            let record = Record {
                file: label,
                line: sequence,
                reason,
                original: Some(message.payload()),
            };
            let written = tokio::task::block_in_place(|| {
                let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
                file.write(&record).and_then(|()| file.sync())
            });
            if let Err(e) = written {
                (self.report)(&format!("forwarder: {e}; handing {label}:{sequence} back"));
                return self.hand_back(message, self.options.nak_delay).await;
            }
            Metrics::inc(&self.counts.dead_lettered);
        }
        self.settle(message.term().await, &self.counts.terminated);
    }

    /// Gives a message back to the log, to be handed out again after `delay`.
    async fn hand_back<M: Message>(&self, message: &M, delay: Duration) {
        self.settle(message.nak(delay).await, &self.counts.naked);
    }

    fn settle(&self, result: Result<(), SourceError>, counter: &AtomicU64) {
        match result {
            Ok(()) => Metrics::inc(counter),
            Err(e) => {
                Metrics::inc(&self.counts.settle_errors);
                (self.report)(&format!("forwarder: {e}"));
            }
        }
    }

    fn summary(&self, error: Option<String>) -> ConsumeSummary {
        let counts = &self.counts;
        ConsumeSummary {
            received: counts.received.load(Ordering::Relaxed),
            acked: counts.acked.load(Ordering::Relaxed),
            terminated: counts.terminated.load(Ordering::Relaxed),
            naked: counts.naked.load(Ordering::Relaxed),
            dead_lettered: counts.dead_lettered.load(Ordering::Relaxed),
            settle_errors: counts.settle_errors.load(Ordering::Relaxed),
            destinations: self
                .targets
                .per_destination()
                .into_iter()
                .map(|(name, metrics)| (name.to_string(), DestinationSummary::of(&metrics)))
                .collect(),
            error,
        }
    }
}
