//! One destination: its own [`Forwarder`] (batcher, in-flight limit, retry budget), its own
//! window of messages waiting for an answer, and a feeder task in front of it.
//!
//! [`Destination::submit`] never waits: the message goes into the destination's own queue and
//! the feeder hands it to the forwarder once the destination's window has room. So a slow or
//! failing destination holds back only its own messages, never the caller, and so never the
//! other destinations. What bounds the queue is the caller's budget (the byte budget of `send`
//! and `serve`, the ack-pending limit of `consume`). The feeder keeps the order of submission,
//! which FIFO queues need. When the last handle goes, the feeder delivers what it holds and
//! shuts the forwarder down: a removed destination finishes its in-flight work.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::name::DestinationName;
use crate::message::{MessageOptions, Outgoing};
use crate::metrics::Metrics;
use crate::pipeline::{Delivery, Forwarder, Pending, SendError};

/// A destination in force; see the module documentation.
#[derive(Debug)]
pub struct Destination {
    name: Option<DestinationName>,
    message: MessageOptions,
    metrics: Arc<Metrics>,
    feeder: mpsc::UnboundedSender<Command>,
    /// Messages submitted whose answer has not been taken.
    waiting: Arc<AtomicUsize>,
}

/// A submitted message's answer, to be awaited later.
#[derive(Debug)]
pub struct Queued {
    answer: oneshot::Receiver<Result<(Pending, OwnedSemaphorePermit), SendError>>,
    _waiting: Waiting,
}

/// Counts a message as waiting until its answer is taken (or abandoned).
#[derive(Debug)]
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Queued {
    /// Waits for SQS's answer; the destination's window has room again once it is known.
    pub async fn wait(self) -> Delivery {
        match self.answer.await {
            Ok(Ok((pending, _window))) => pending.wait().await,
            Ok(Err(error)) => Err(error),
            Err(_) => Err(SendError::Closed),
        }
    }
}

enum Command {
    Submit(
        Outgoing,
        oneshot::Sender<Result<(Pending, OwnedSemaphorePermit), SendError>>,
    ),
    Flush(oneshot::Sender<()>),
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Submit(..) => "Submit",
            Command::Flush(_) => "Flush",
        })
    }
}

impl Destination {
    /// Starts the feeder of `forwarder` with a window of `window` messages; `message` says how
    /// events become messages for this queue (FIFO or not). The handle ends when the forwarder
    /// has shut down.
    pub fn start(
        name: Option<DestinationName>,
        forwarder: Forwarder,
        message: MessageOptions,
        window: usize,
    ) -> (Destination, JoinHandle<()>) {
        let metrics = Arc::clone(forwarder.metrics());
        let (feeder, commands) = mpsc::unbounded_channel();
        let task = tokio::spawn(feed(forwarder, commands, window.max(1)));
        let destination = Destination {
            name,
            message,
            metrics,
            feeder,
            waiting: Arc::default(),
        };
        (destination, task)
    }

    /// The name; none for the one queue of `--config`/`--queue-url`.
    pub fn name(&self) -> Option<&DestinationName> {
        self.name.as_ref()
    }

    /// How events become messages for this destination.
    pub fn message_options(&self) -> &MessageOptions {
        &self.message
    }

    /// This destination's counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Queues `message` for this destination without waiting; see the module documentation.
    pub fn submit(&self, message: Outgoing) -> Queued {
        let (reply, answer) = oneshot::channel();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let waiting = Waiting(Arc::clone(&self.waiting));
        // A closed feeder drops the reply, which answers `Closed`.
        let _ = self.feeder.send(Command::Submit(message, reply));
        Queued {
            answer,
            _waiting: waiting,
        }
    }

    /// Messages submitted whose answer has not been taken yet.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Returns once every message submitted before has its answer.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.feeder.send(Command::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

async fn feed(forwarder: Forwarder, mut commands: mpsc::UnboundedReceiver<Command>, window: usize) {
    let window = Arc::new(Semaphore::new(window));
    while let Some(command) = commands.recv().await {
        match command {
            Command::Submit(message, reply) => {
                let Ok(permit) = Arc::clone(&window).acquire_owned().await else {
                    break;
                };
                let queued = forwarder.enqueue(message).await;
                let _ = reply.send(queued.map(|pending| (pending, permit)));
            }
            Command::Flush(done) => {
                forwarder.flush().await;
                let _ = done.send(());
            }
        }
    }
    forwarder.shutdown().await;
}
