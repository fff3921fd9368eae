//! `forwarder send`: NDJSON lines in, every line accounted for out.
//!
//! A reader thread reads the inputs (blocking I/O stays off the runtime), the main loop
//! validates and queues, and a collector takes the outcomes in input order, reporting each bad
//! line as `FILE:LINE: reason`, writing what was not delivered to the dead-letter file and
//! advancing the checkpoint's watermark.
//!
//! When `send` returns, every byte it consumed is accepted by SQS, dead-lettered with a reason,
//! or at or after `stoppedAt`. A first signal stops the reading at a line boundary where no
//! consumed byte is left in the reader's buffer (on stdin it waits for the line it is in to
//! end), then everything taken in is delivered or dead-lettered; a second signal dead-letters
//! what is still pending with the reason `aborted`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::checkpoint::{Checkpoint, Mark};
use crate::collector::{Collector, Counts, Origin, Outcome};
use crate::concurrency::Concurrency;
use crate::dead_letter::DeadLetter;
use crate::destinations::{Destination, Destinations};
use crate::event::{Event, parse_event};
use crate::glob::glob_match;
use crate::input::Line;
use crate::message::{Kept, MessageOptions, Outgoing, share_line, to_message};
use crate::metrics::Metrics;
use crate::reader::{BUDGET_KIB, Item, Read, Reading, read_inputs};

/// Where lines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Input {
    pub(crate) fn label(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".to_owned(),
            Input::File(path) => path.display().to_string(),
        }
    }
}

/// Raw payloads are wrapped into CloudEvents with these attributes.
#[derive(Debug, Clone)]
pub struct Wrap {
    /// The `source` attribute.
    pub source: String,
    /// The `type` attribute.
    pub ty: String,
    /// The `subject` attribute.
    pub subject: Option<String>,
}

/// How lines become messages.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Wrap each line as a payload instead of reading it as a CloudEvent.
    pub wrap: Option<Wrap>,
    /// Forward only these types (globs); all when empty.
    pub only_types: Vec<String>,
    /// Never forward these types (globs).
    pub except_types: Vec<String>,
    /// Message attributes and FIFO ids (with destinations, each destination's own say whether
    /// it is FIFO).
    pub message: MessageOptions,
    /// Lines longer than this are refused without being read into memory.
    pub max_line_bytes: usize,
    /// Lines taken in whose outcome is not handled yet, at most; also the most outcomes between
    /// two checkpoints. After `kill -9`, a resumed run resends at most twice this, plus two.
    pub window: usize,
    /// Record each input file's watermark here.
    pub checkpoint: Option<PathBuf>,
    /// Start each input file after the checkpoint's watermark for it.
    pub resume: bool,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            wrap: None,
            only_types: Vec::new(),
            except_types: Vec::new(),
            message: MessageOptions::default(),
            max_line_bytes: 2 * 1024 * 1024,
            window: window_for(Concurrency::AUTO),
            checkpoint: None,
            resume: false,
        }
    }
}

/// The window for a `--max-in-flight`: four full batches per request in flight when it is fixed;
/// with `auto`, a full batch for each request its limit can reach plus the window of 8 fixed
/// requests, so that the read-ahead (and what `kill -9` can make a resumed run resend) grows by
/// one batch, not four, for each request the limit may add.
pub fn window_for(concurrency: Concurrency) -> usize {
    match concurrency {
        Concurrency::Fixed(n) => 40 * n.get(),
        Concurrency::Adaptive { max } => 10 * max.get() + 40 * 8,
    }
}

/// What happened, for the summary line and `--summary-json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Non-empty lines read.
    pub read: u64,
    /// Events SQS accepted.
    pub sent: u64,
    /// Of those, events sent structured because binary mode (`--content-mode binary`) could not
    /// carry them.
    pub sent_structured: u64,
    /// Lines refused before sending (invalid or too large).
    pub refused: u64,
    /// Events SQS did not accept after the retries (or abandoned on a second signal).
    pub failed: u64,
    /// Events left out by `--only-type` / `--except-type`.
    pub filtered: u64,
    /// `SendMessageBatch` requests made.
    pub requests: u64,
    /// 64 KiB billing units of those requests.
    pub billing_units: u64,
    /// Entries sent again after transient failures.
    pub retried: u64,
    /// With `--destinations`, each destination's counts, by name.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub destinations: std::collections::BTreeMap<String, DestinationSummary>,
    /// Lines written to the dead-letter file.
    pub dead_lettered: u64,
    /// The limit of requests in flight at the end (`--max-in-flight`, or where `auto` left it);
    /// with `--destinations`, the highest of any destination.
    pub in_flight_limit: u64,
    /// The highest that limit was (of any destination).
    pub peak_in_flight_limit: u64,
    /// Whether a signal came.
    pub interrupted: bool,
    /// When the run stopped before the end of its input, the first line not processed, as
    /// `FILE:LINE`: every line before it is accepted, dead-lettered, refused or filtered, and no
    /// line from it on was sent; a re-run can start there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
    /// The error that stopped the run (an input, the dead-letter file, the checkpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Summary {
    /// Whether every event read was accepted by SQS (filtered ones aside).
    pub fn all_delivered(&self) -> bool {
        self.refused == 0 && self.failed == 0 && self.stopped_at.is_none() && self.error.is_none()
    }
}

/// Why `send` could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The checkpoint could not be read or does not fit an input.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// `--resume` needs a checkpoint.
    #[error("--resume needs --checkpoint FILE")]
    ResumeWithoutCheckpoint,
}

/// One destination's share of the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationSummary {
    /// Events routed to it.
    pub received: u64,
    /// Events SQS accepted.
    pub sent: u64,
    /// Events not delivered after the retries.
    pub failed: u64,
    /// `SendMessageBatch` requests made.
    pub requests: u64,
    /// Entries sent again after transient failures.
    pub retried: u64,
    /// Its limit of requests in flight at the end.
    pub in_flight_limit: u64,
    /// The highest that limit was.
    pub peak_in_flight_limit: u64,
}

impl DestinationSummary {
    /// The counts of one destination's metrics.
    pub fn of(metrics: &Metrics) -> DestinationSummary {
        DestinationSummary {
            received: Metrics::get(&metrics.received),
            sent: Metrics::get(&metrics.sent),
            failed: Metrics::get(&metrics.failed),
            requests: Metrics::get(&metrics.requests),
            retried: Metrics::get(&metrics.retried),
            in_flight_limit: Metrics::get(&metrics.in_flight_limit),
            peak_in_flight_limit: Metrics::get(&metrics.peak_in_flight_limit),
        }
    }
}

/// Sends every line of `inputs` to its destination in `targets`. Problems are passed to `report` as
/// `FILE:LINE: reason`; undelivered lines go to `dead_letter`. `signals` counts SIGINT and
/// SIGTERM: at 1 the reading stops, at 2 what is pending is dead-lettered as `aborted`.
pub async fn send(
    inputs: Vec<Input>,
    options: &SendOptions,
    targets: &Destinations,
    dead_letter: Option<DeadLetter>,
    report: impl FnMut(&str) + Send + 'static,
    signals: watch::Receiver<u32>,
    progress: Option<Arc<AtomicU64>>,
) -> Result<Summary, StartError> {
    let inputs = if inputs.is_empty() {
        vec![Input::Stdin]
    } else {
        inputs
    };
    let starts = start_marks(&inputs, options)?;
    let marks = inputs
        .iter()
        .zip(&starts)
        .map(|(input, mark)| match input {
            Input::File(path) => (Some(path.clone()), *mark),
            Input::Stdin => (None, *mark),
        })
        .collect();
    let window = options.window.max(1);
    let (lines_tx, lines) = mpsc::channel::<Read>(window);
    // Every line holds a share of the byte budget from the moment it is read until its outcome
    // is known, so that memory stays bounded whatever the sizes of the events.
    let budget = Arc::new(Semaphore::new(BUDGET_KIB as usize));
    let draining = Arc::new(AtomicBool::new(false));
    let reading = Reading {
        inputs: inputs.into_iter().zip(starts).collect(),
        max_line: options.max_line_bytes,
        draining: Arc::clone(&draining),
        budget: Arc::clone(&budget),
        runtime: tokio::runtime::Handle::current(),
    };
    let reader = std::thread::spawn(move || read_inputs(&reading, &lines_tx));
    let (outcomes_tx, outcomes) = mpsc::channel::<(Origin, Outcome)>(window);
    let (halt_tx, halt) = watch::channel(false);
    let collector = Collector {
        dead_letter,
        checkpoint: options.checkpoint.clone(),
        marks,
        every: window,
        report,
        signals: signals.clone(),
        halt: halt_tx,
        broken: false,
    };
    let collector = tokio::spawn(collector.run(outcomes));
    // With one queue, the lines taken in and not yet answered are bounded by the window, which
    // bounds what a resumed run sends again. With destinations, each has a window of its own
    // and the byte budget bounds the rest, so that a slow destination never stops the others.
    let lines_window = targets
        .is_single()
        .then(|| Arc::new(Semaphore::new(window)));
    let mut main = MainLoop {
        options,
        targets,
        window: lines_window,
        outcomes: outcomes_tx,
        signals,
        halt,
        draining,
        summary: Summary::default(),
        next: None,
        progress,
    };
    main.run(lines).await;
    let MainLoop {
        mut summary,
        outcomes,
        signals,
        ..
    } = main;
    if *signals.borrow() < 2 {
        let mut abort = signals.clone();
        tokio::select! {
            () = targets.flush() => {}
            _ = abort.wait_for(|count| *count >= 2) => {}
        }
    }
    drop(outcomes);
    let counts = collector.await.unwrap_or_else(|e| Counts {
        error: Some(format!("the collector failed: {e}")),
        ..Counts::default()
    });
    // The reader thread ends once the channel is closed, or at once if it waits for budget.
    budget.close();
    drop(reader);
    summary.sent = counts.sent;
    summary.failed = counts.failed;
    summary.dead_lettered = counts.dead_lettered;
    if let Some((file, number)) = counts.unrecorded {
        summary.stopped_at = Some(format!("{file}:{number}"));
    }
    if summary.error.is_none() {
        summary.error = counts.error;
    }
    // The metrics own the counts that `serve` reports too.
    summary.refused = Metrics::get(&targets.metrics().refused);
    for metrics in targets.delivery_metrics() {
        summary.sent_structured += Metrics::get(&metrics.sent_structured);
        summary.requests += Metrics::get(&metrics.requests);
        summary.billing_units += Metrics::get(&metrics.billing_units);
        summary.retried += Metrics::get(&metrics.retried);
        summary.in_flight_limit = summary
            .in_flight_limit
            .max(Metrics::get(&metrics.in_flight_limit));
        summary.peak_in_flight_limit = summary
            .peak_in_flight_limit
            .max(Metrics::get(&metrics.peak_in_flight_limit));
    }
    summary.destinations = targets
        .per_destination()
        .into_iter()
        .map(|(name, metrics)| (name.to_string(), DestinationSummary::of(&metrics)))
        .collect();
    Ok(summary)
}

/// Where each input starts: after its watermark with `--resume`, else at its beginning.
fn start_marks(inputs: &[Input], options: &SendOptions) -> Result<Vec<Mark>, StartError> {
    if !options.resume {
        return Ok(vec![Mark::default(); inputs.len()]);
    }
    let path = options
        .checkpoint
        .as_deref()
        .ok_or(StartError::ResumeWithoutCheckpoint)?;
    let checkpoint = Checkpoint::load(path)?;
    inputs
        .iter()
        .map(|input| match input {
            Input::File(file) => Ok(checkpoint.resume_point(file)?),
            Input::Stdin => Ok(Mark::default()),
        })
        .collect()
}

/// How long the main loop still waits for the reader after a second signal.
const ABANDON_AFTER: Duration = Duration::from_secs(2);

/// The main loop's state.
struct MainLoop<'a> {
    options: &'a SendOptions,
    targets: &'a Destinations,
    /// The window of lines taken in, with a single queue.
    window: Option<Arc<Semaphore>>,
    outcomes: mpsc::Sender<(Origin, Outcome)>,
    signals: watch::Receiver<u32>,
    halt: watch::Receiver<bool>,
    draining: Arc<AtomicBool>,
    summary: Summary,
    /// The line after the last one taken in.
    next: Option<(Arc<str>, u64)>,
    progress: Option<Arc<AtomicU64>>,
}

impl MainLoop<'_> {
    /// Takes in lines until the input ends, an error, or a stop; then whatever the reader still
    /// hands over, so that nothing it consumed is dropped.
    async fn run(&mut self, mut lines: mpsc::Receiver<Read>) {
        let (mut watching, mut halted) = (true, false);
        loop {
            let aborted = *self.signals.borrow() >= 2;
            let next = if aborted {
                // The reader is at most in the middle of a line: give it a moment, no more.
                tokio::time::timeout(ABANDON_AFTER, lines.recv())
                    .await
                    .unwrap_or_else(|_| {
                        self.summary.stopped_at = self.next.take().map(at);
                        None
                    })
            } else {
                tokio::select! {
                    biased;
                    changed = self.signals.changed(), if watching => {
                        watching = changed.is_ok();
                        if watching {
                            self.summary.interrupted = true;
                            self.draining.store(true, Ordering::Relaxed);
                        }
                        continue;
                    }
                    changed = self.halt.changed(), if !halted => {
                        halted = true;
                        if changed.is_ok() {
                            self.draining.store(true, Ordering::Relaxed);
                        }
                        continue;
                    }
                    next = lines.recv() => next,
                }
            };
            match next {
                None => break,
                Some(Read::Stopped { file, next }) => {
                    self.summary.stopped_at = Some(at((file, next)));
                    break;
                }
                Some(Read::Failed { file, next, error }) => {
                    self.summary.stopped_at = Some(at((file, next)));
                    self.summary.error = Some(error);
                    break;
                }
                Some(Read::Line(item)) => self.take(item, aborted).await,
            }
        }
    }

    /// Decides what becomes of one line, and hands it to the collector.
    async fn take(&mut self, item: Item, aborted: bool) {
        let Item {
            input,
            file,
            number,
            end,
            line,
            budget,
        } = item;
        self.next = Some((Arc::clone(&file), number + 1));
        let window = match &self.window {
            Some(window) => self.place(window).await,
            None => None,
        };
        let aborted = aborted || (self.window.is_some() && window.is_none());
        let (line, outcome) = match line {
            Line::Text(text) if text.iter().all(u8::is_ascii_whitespace) => {
                (None, Outcome::Skipped)
            }
            Line::TooLong(length) => {
                self.summary.read += 1;
                Metrics::inc(&self.targets.metrics().refused);
                let max_line = self.options.max_line_bytes;
                let reason = format!(
                    "line of {length} bytes is over the limit of {max_line} bytes (--max-line-bytes)"
                );
                (None, Outcome::Refused(reason))
            }
            Line::Text(text) => {
                self.summary.read += 1;
                Metrics::inc(&self.targets.metrics().received);
                if let Some(progress) = &self.progress {
                    progress.store(self.summary.read, Ordering::Relaxed);
                }
                if aborted {
                    (Some(Kept::Line(text)), Outcome::Aborted)
                } else {
                    let (kept, outcome) = self.outcome(text);
                    (Some(kept), outcome)
                }
            }
        };
        let origin = Origin {
            input,
            file,
            number,
            end,
            line,
            budget,
            window,
        };
        // The collector only goes away when `send` is done with it.
        let _ = self.outcomes.send((origin, outcome)).await;
    }

    /// Parses, filters and queues one line; the line comes back to be kept for the dead-letter
    /// file (sharing its message's body when it can).
    fn outcome(&mut self, text: Vec<u8>) -> (Kept, Outcome) {
        match self.message(&text) {
            Ok((mut message, destination)) => {
                let kept = share_line(&mut message, text);
                (kept, Outcome::Pending(destination.submit(message)))
            }
            Err(outcome) => (Kept::Line(text), outcome),
        }
    }

    /// Parses, filters and routes one line into its message and destination, or says what
    /// became of it instead.
    fn message(&mut self, text: &[u8]) -> Result<(Outgoing, Arc<Destination>), Outcome> {
        let options = self.options;
        let event = match &options.wrap {
            Some(wrap) => Event::wrap(text, &wrap.source, &wrap.ty, wrap.subject.as_deref()),
            None => parse_event(text),
        };
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                Metrics::inc(&self.targets.metrics().refused);
                return Err(Outcome::Refused(error.to_string()));
            }
        };
        if !wanted(event.ty(), options) {
            self.summary.filtered += 1;
            return Err(Outcome::Skipped);
        }
        let destination = match self.targets.route(&event) {
            Ok(destination) => destination,
            Err(reason) => {
                Metrics::inc(&self.targets.metrics().refused);
                return Err(Outcome::Refused(reason.to_string()));
            }
        };
        let message = match to_message(&event, destination.message_options()) {
            Ok(message) => message,
            Err(reason) => {
                Metrics::inc(&self.targets.metrics().refused);
                return Err(Outcome::Refused(reason.to_string()));
            }
        };
        Ok((message, destination))
    }

    /// A place in the window of lines taken in; none once a second signal has come.
    async fn place(&self, window: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
        let mut abort = self.signals.clone();
        tokio::select! {
            biased;
            permit = Arc::clone(window).acquire_owned() => permit.ok(),
            _ = abort.wait_for(|count| *count >= 2) => None,
        }
    }
}

fn at((file, number): (Arc<str>, u64)) -> String {
    format!("{file}:{number}")
}

fn wanted(ty: &str, options: &SendOptions) -> bool {
    (options.only_types.is_empty() || options.only_types.iter().any(|g| glob_match(g, ty)))
        && !options.except_types.iter().any(|g| glob_match(g, ty))
}

/// Counts input for a progress display.
pub fn progress_counter() -> Arc<AtomicU64> {
    Arc::new(AtomicU64::new(0))
}

/// A line of progress, for a terminal.
pub fn progress_line(read: u64, metrics: &Metrics, started: Instant) -> String {
    let sent = Metrics::get(&metrics.sent);
    let rate = sent as f64 / started.elapsed().as_secs_f64().max(0.001);
    format!(
        "\r{read} read, {sent} sent, {} failed ({rate:.0}/s)   ",
        Metrics::get(&metrics.failed)
    )
}
