//! The collector of `send`: takes each line's outcome as it becomes known (a slow destination's
//! lines do not hold up the others'), reports the bad ones as `FILE:LINE: reason`, writes them
//! to the dead-letter file, and advances the watermark of the checkpoint ([`Watermarks`]: only
//! over lines whose outcome and every earlier line's are recorded), which it writes (after an
//! fsync of the dead-letter file) at least once a second while outcomes come, every
//! [`Collector::every`] outcomes, and at the end.
//!
//! A dead-letter or checkpoint write error freezes the watermark before the first line whose
//! outcome is not recorded, and tells the main loop to stop reading.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};

use crate::checkpoint::{Checkpoint, Mark};
use crate::dead_letter::{DeadLetter, Record};
use crate::destinations::Queued;
use crate::message::Kept;
use crate::pipeline::Delivery;
use crate::watermark::Watermarks;

/// Where a line came from, the line itself for the dead-letter file, and its share of the
/// byte budget, given back when the outcome has been handled.
#[derive(Debug)]
pub(crate) struct Origin {
    pub(crate) input: usize,
    pub(crate) file: Arc<str>,
    pub(crate) number: u64,
    pub(crate) end: u64,
    pub(crate) line: Option<Kept>,
    pub(crate) budget: OwnedSemaphorePermit,
    /// Its place in the window of lines taken in (a single queue only).
    pub(crate) window: Option<OwnedSemaphorePermit>,
}

/// What became of a line.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Blank, or left out by a type filter: nothing to do.
    Skipped,
    /// Refused before sending, and why.
    Refused(String),
    /// Queued; SQS's answer is to come.
    Pending(Queued),
    /// Abandoned on a second signal before it was queued.
    Aborted,
}

/// The counts the collector keeps.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) sent: u64,
    pub(crate) failed: u64,
    pub(crate) dead_lettered: u64,
    /// The first error that stopped the recording of outcomes.
    pub(crate) error: Option<String>,
    /// The first line (in input order) whose outcome could not be recorded.
    pub(crate) unrecorded: Option<(Arc<str>, u64)>,
    /// Its sequence number.
    pub(crate) unrecorded_seq: Option<u64>,
}

/// The collector's state.
pub(crate) struct Collector<R> {
    pub(crate) dead_letter: Option<DeadLetter>,
    /// The checkpoint file, and each input's path (none for stdin) and watermark.
    pub(crate) checkpoint: Option<PathBuf>,
    pub(crate) marks: Vec<(Option<PathBuf>, Mark)>,
    /// Outcomes between two checkpoints at most.
    pub(crate) every: usize,
    pub(crate) report: R,
    /// The signal count: at 2, pending outcomes are no longer awaited.
    pub(crate) signals: watch::Receiver<u32>,
    /// Turned true when outcomes can no longer be recorded.
    pub(crate) halt: watch::Sender<bool>,
    /// Set when a sync or a checkpoint write failed: the last checkpoint written stays.
    pub(crate) broken: bool,
}

impl Counts {
    /// Notes a line whose outcome could not be recorded, keeping the first in input order.
    fn unrecorded(&mut self, seq: u64, origin: &Origin) {
        if self.unrecorded_seq.is_none_or(|first| seq < first) {
            self.unrecorded_seq = Some(seq);
            self.unrecorded = Some((Arc::clone(&origin.file), origin.number));
        }
    }
}

/// SQS's answer, or none once a second signal has come.
async fn wait(queued: Queued, mut signals: watch::Receiver<u32>) -> Option<Delivery> {
    tokio::select! {
        biased;
        delivery = queued.wait() => Some(delivery),
        _ = signals.wait_for(|count| *count >= 2) => None,
    }
}

/// The reason given to lines abandoned on a second signal.
pub(crate) const ABORTED: &str = "aborted";

/// A checkpoint is written at least this often while outcomes come.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

impl<R: FnMut(&str)> Collector<R> {
    /// Handles every outcome until the channel closes and every answer has come, then makes
    /// everything durable.
    pub(crate) async fn run(mut self, mut outcomes: mpsc::Receiver<(Origin, Outcome)>) -> Counts {
        let mut counts = Counts::default();
        let mut since = 0usize;
        let mut saved = Instant::now();
        let mut order = Watermarks::default();
        let mut waiting = FuturesUnordered::new();
        let mut open = true;
        loop {
            let (seq, origin, reason) = tokio::select! {
                received = outcomes.recv(), if open => {
                    let Some((origin, outcome)) = received else {
                        open = false;
                        continue;
                    };
                    let mark = Mark { line: origin.number, offset: origin.end };
                    let seq = order.push(origin.input, mark);
                    let reason = match outcome {
                        Outcome::Skipped => None,
                        Outcome::Refused(reason) => Some(reason),
                        Outcome::Aborted => {
                            counts.failed += 1;
                            Some(ABORTED.to_owned())
                        }
                        Outcome::Pending(queued) => {
                            let signals = self.signals.clone();
                            waiting.push(async move { (seq, origin, wait(queued, signals).await) });
                            continue;
                        }
                    };
                    (seq, origin, reason)
                }
                Some((seq, origin, delivery)) = waiting.next(), if !waiting.is_empty() => {
                    let reason = match delivery {
                        Some(Ok(_)) => {
                            counts.sent += 1;
                            None
                        }
                        Some(Err(error)) => {
                            counts.failed += 1;
                            Some(error.to_string())
                        }
                        None => {
                            counts.failed += 1;
                            Some(ABORTED.to_owned())
                        }
                    };
                    (seq, origin, reason)
                }
                else => break,
            };
            let recorded = match reason {
                Some(reason) => self.record(seq, &origin, &reason, &mut counts),
                None => true,
            };
            if recorded {
                let marks = &mut self.marks;
                order.done(seq, |input, mark| marks[input].1 = mark);
            }
            // The line's share of the byte budget and its place in the window are free again.
            drop((origin.budget, origin.window));
            since += 1;
            if since >= self.every || saved.elapsed() >= CHECKPOINT_INTERVAL {
                self.save(&mut counts);
                (since, saved) = (0, Instant::now());
            }
        }
        self.save(&mut counts);
        counts
    }

    /// Reports a line that was not delivered and dead-letters it; false when its outcome could
    /// not be recorded.
    fn record(&mut self, seq: u64, origin: &Origin, reason: &str, counts: &mut Counts) -> bool {
        (self.report)(&format!("{}:{}: {reason}", origin.file, origin.number));
        let Some(dead_letter) = self.dead_letter.as_mut() else {
            return true;
        };
        if counts.error.is_some() {
            counts.unrecorded(seq, origin);
            return false;
        }
        let record = Record {
            file: &origin.file,
            line: origin.number,
            reason,
            original: origin.line.as_ref().map(Kept::as_bytes),
        };
        match dead_letter.write(&record) {
            Ok(()) => {
                counts.dead_lettered += 1;
                true
            }
            Err(error) => {
                counts.unrecorded(seq, origin);
                self.fail(error.to_string(), counts);
                false
            }
        }
    }

    /// Makes the dead letters durable, then writes the checkpoint.
    fn save(&mut self, counts: &mut Counts) {
        if self.broken {
            return;
        }
        let mut result = match self.dead_letter.as_mut() {
            Some(dead_letter) => dead_letter.sync().map_err(|e| e.to_string()),
            None => Ok(()),
        };
        if let (Ok(()), Some(path)) = (&result, &self.checkpoint) {
            let files: Vec<(PathBuf, Mark)> = self
                .marks
                .iter()
                .filter_map(|(path, mark)| path.clone().map(|p| (p, *mark)))
                .collect();
            result = Checkpoint::save(path, &files).map_err(|e| e.to_string());
        }
        if let Err(error) = result {
            self.broken = true;
            self.fail(error, counts);
        }
    }

    fn fail(&mut self, error: String, counts: &mut Counts) {
        counts.error.get_or_insert(error);
        let _ = self.halt.send(true);
    }
}
