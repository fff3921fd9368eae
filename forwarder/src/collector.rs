//! The collector of `send`: takes each line's outcome in input order, reports the bad ones as
//! `FILE:LINE: reason`, writes them to the dead-letter file, and advances the watermark of the
//! checkpoint, which it writes (after an fsync of the dead-letter file) at least once a second
//! while outcomes come, every [`Collector::every`] outcomes, and at the end.
//!
//! A dead-letter or checkpoint write error freezes the watermark at the first line whose
//! outcome is not recorded, and tells the main loop to stop reading.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};

use crate::checkpoint::{Checkpoint, Mark};
use crate::dead_letter::{DeadLetter, Record};
use crate::pipeline::Pending;

/// Where a line came from, the line itself for the dead-letter file, and its share of the
/// byte budget, given back when the outcome has been handled.
#[derive(Debug)]
pub(crate) struct Origin {
    pub(crate) input: usize,
    pub(crate) file: Arc<str>,
    pub(crate) number: u64,
    pub(crate) end: u64,
    pub(crate) line: Option<Vec<u8>>,
    pub(crate) budget: OwnedSemaphorePermit,
}

/// What became of a line.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Blank, or left out by a type filter: nothing to do.
    Skipped,
    /// Refused before sending, and why.
    Refused(String),
    /// Queued; SQS's answer is to come.
    Pending(Pending),
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
    /// The first line whose outcome could not be recorded.
    pub(crate) unrecorded: Option<(Arc<str>, u64)>,
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

/// The reason given to lines abandoned on a second signal.
pub(crate) const ABORTED: &str = "aborted";

/// A checkpoint is written at least this often while outcomes come.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

impl<R: FnMut(&str)> Collector<R> {
    /// Handles every outcome until the channel closes, then makes everything durable.
    pub(crate) async fn run(mut self, mut outcomes: mpsc::Receiver<(Origin, Outcome)>) -> Counts {
        let mut counts = Counts::default();
        let mut since = 0usize;
        let mut saved = Instant::now();
        while let Some((origin, outcome)) = outcomes.recv().await {
            let reason = match outcome {
                Outcome::Skipped => None,
                Outcome::Refused(reason) => Some(reason),
                Outcome::Aborted => {
                    counts.failed += 1;
                    Some(ABORTED.to_owned())
                }
                Outcome::Pending(pending) => match self.wait(pending).await {
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
                },
            };
            if let Some(reason) = reason {
                self.record(&origin, &reason, &mut counts);
            }
            if counts.unrecorded.is_none() {
                self.marks[origin.input].1 = Mark {
                    line: origin.number,
                    offset: origin.end,
                };
            }
            drop(origin.budget);
            since += 1;
            if since >= self.every || saved.elapsed() >= CHECKPOINT_INTERVAL {
                self.save(&mut counts);
                (since, saved) = (0, Instant::now());
            }
        }
        self.save(&mut counts);
        counts
    }

    /// SQS's answer, or none once a second signal has come.
    async fn wait(&mut self, pending: Pending) -> Option<crate::pipeline::Delivery> {
        tokio::select! {
            biased;
            delivery = pending.wait() => Some(delivery),
            _ = self.signals.wait_for(|count| *count >= 2) => None,
        }
    }

    /// Reports a line that was not delivered and dead-letters it.
    fn record(&mut self, origin: &Origin, reason: &str, counts: &mut Counts) {
        (self.report)(&format!("{}:{}: {reason}", origin.file, origin.number));
        let Some(dead_letter) = self.dead_letter.as_mut() else {
            return;
        };
        if counts.error.is_some() {
            counts
                .unrecorded
                .get_or_insert((Arc::clone(&origin.file), origin.number));
            return;
        }
        let record = Record {
            file: &origin.file,
            line: origin.number,
            reason,
            original: origin.line.as_deref(),
        };
        match dead_letter.write(&record) {
            Ok(()) => counts.dead_lettered += 1,
            Err(error) => {
                counts.unrecorded = Some((Arc::clone(&origin.file), origin.number));
                self.fail(error.to_string(), counts);
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
