//! `forwarder send`: NDJSON lines in, every line accounted for out.
//!
//! A reader thread reads the inputs (blocking I/O stays off the runtime), the main loop
//! validates and queues, and a collector awaits the answers in order, reporting each bad line
//! as `FILE:LINE: reason` and writing what was not delivered to the dead-letter file.

use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use base64::Engine;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::event::{Event, parse_event};
use crate::glob::glob_match;
use crate::input::{Line, LineReader};
use crate::message::{MessageOptions, to_message};
use crate::metrics::Metrics;
use crate::pipeline::{Delivery, Forwarder, Pending};

/// Where lines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Input {
    fn label(&self) -> String {
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
    /// Message attributes and FIFO ids.
    pub message: MessageOptions,
    /// Lines longer than this are refused without being read into memory.
    pub max_line_bytes: usize,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            wrap: None,
            only_types: Vec::new(),
            except_types: Vec::new(),
            message: MessageOptions::default(),
            max_line_bytes: 2 * 1024 * 1024,
        }
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
    /// Lines refused before sending (invalid or too large).
    pub refused: u64,
    /// Events SQS did not accept after the retries.
    pub failed: u64,
    /// Events left out by `--only-type` / `--except-type`.
    pub filtered: u64,
    /// `SendMessageBatch` requests made.
    pub requests: u64,
    /// 64 KiB billing units of those requests.
    pub billing_units: u64,
    /// Entries sent again after transient failures.
    pub retried: u64,
    /// Lines written to the dead-letter file.
    pub dead_lettered: u64,
    /// Whether a signal stopped the reading early.
    pub interrupted: bool,
    /// When interrupted, the last line taken in, as `FILE:LINE`: it and every line before it are
    /// accounted for above, and no line after it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
}

impl Summary {
    /// Whether every event read was accepted by SQS (filtered ones aside).
    pub fn all_delivered(&self) -> bool {
        self.refused == 0 && self.failed == 0 && !self.interrupted
    }
}

/// Sends every line of `inputs` through `forwarder`. Problems are passed to `report` as
/// `FILE:LINE: reason`; undelivered lines go to `dead_letter`. Reading stops early when `stop`
/// turns true.
pub async fn send(
    inputs: Vec<Input>,
    options: &SendOptions,
    forwarder: &Forwarder,
    dead_letter: Option<Box<dyn Write + Send>>,
    report: impl FnMut(&str) + Send + 'static,
    mut stop: watch::Receiver<bool>,
    progress: Option<Arc<AtomicU64>>,
) -> std::io::Result<Summary> {
    let (lines_tx, mut lines) = mpsc::channel::<std::io::Result<Item>>(1024);
    let max_line = options.max_line_bytes;
    // Every line holds a share of the byte budget from the moment it is read until its outcome
    // is known, so that memory stays bounded whatever the sizes of the events.
    let budget = Arc::new(Semaphore::new(BUDGET_KIB as usize));
    let runtime = tokio::runtime::Handle::current();
    let reader_budget = Arc::clone(&budget);
    let reader = std::thread::spawn(move || {
        read_inputs(inputs, max_line, &lines_tx, &reader_budget, &runtime);
    });
    let (outcomes_tx, outcomes) = mpsc::channel::<(Origin, Outcome)>(4096);
    let collector = tokio::spawn(collect(outcomes, dead_letter, report));
    let mut summary = Summary::default();
    let mut last: Option<(Arc<str>, u64)> = None;
    loop {
        let next = tokio::select! {
            biased;
            _ = stop.wait_for(|stopped| *stopped) => {
                summary.interrupted = true;
                summary.stopped_at = last.map(|(file, number)| format!("{file}:{number}"));
                break;
            }
            next = lines.recv() => next,
        };
        let Some(next) = next else { break };
        let (file, number, line, budget) = next?;
        last = Some((Arc::clone(&file), number));
        let text = match line {
            Line::Text(text) if text.iter().all(u8::is_ascii_whitespace) => continue,
            Line::Text(text) => text,
            Line::TooLong(length) => {
                summary.read += 1;
                Metrics::inc(&forwarder.metrics().refused);
                let reason = format!(
                    "line of {length} bytes is over the limit of {max_line} bytes (--max-line-bytes)"
                );
                send_outcome(
                    &outcomes_tx,
                    Origin {
                        file,
                        number,
                        line: None,
                        _budget: budget,
                    },
                    Outcome::Refused(reason),
                )
                .await;
                continue;
            }
        };
        summary.read += 1;
        Metrics::inc(&forwarder.metrics().received);
        if let Some(progress) = &progress {
            progress.store(summary.read, Ordering::Relaxed);
        }
        let origin = |line: Vec<u8>| Origin {
            file: Arc::clone(&file),
            number,
            line: Some(line),
            _budget: budget,
        };
        let event = match &options.wrap {
            Some(wrap) => Event::wrap(&text, &wrap.source, &wrap.ty, wrap.subject.as_deref()),
            None => parse_event(&text),
        };
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                Metrics::inc(&forwarder.metrics().refused);
                send_outcome(
                    &outcomes_tx,
                    origin(text),
                    Outcome::Refused(error.to_string()),
                )
                .await;
                continue;
            }
        };
        if !wanted(event.ty(), options) {
            summary.filtered += 1;
            continue;
        }
        let message = match to_message(&event, &options.message) {
            Ok(message) => message,
            Err(error) => {
                Metrics::inc(&forwarder.metrics().refused);
                send_outcome(
                    &outcomes_tx,
                    origin(text),
                    Outcome::Refused(error.to_string()),
                )
                .await;
                continue;
            }
        };
        match forwarder.enqueue(message).await {
            Ok(pending) => {
                send_outcome(&outcomes_tx, origin(text), Outcome::Pending(pending)).await
            }
            Err(error) => {
                Metrics::inc(&forwarder.metrics().refused);
                send_outcome(
                    &outcomes_tx,
                    origin(text),
                    Outcome::Refused(error.to_string()),
                )
                .await;
            }
        }
    }
    drop(lines);
    forwarder.flush().await;
    drop(outcomes_tx);
    let counts = collector.await.map_err(std::io::Error::other)??;
    // The reader thread ends once the channel is closed, or at once if it waits for budget.
    budget.close();
    drop(reader);
    summary.sent = counts.sent;
    summary.failed = counts.failed;
    summary.dead_lettered = counts.dead_lettered;
    let metrics: &Metrics = forwarder.metrics();
    // The forwarder's metrics own the counts that `serve` reports too.
    summary.refused = Metrics::get(&metrics.refused);
    summary.requests = Metrics::get(&metrics.requests);
    summary.billing_units = Metrics::get(&metrics.billing_units);
    summary.retried = Metrics::get(&metrics.retried);
    Ok(summary)
}

fn wanted(ty: &str, options: &SendOptions) -> bool {
    (options.only_types.is_empty() || options.only_types.iter().any(|g| glob_match(g, ty)))
        && !options.except_types.iter().any(|g| glob_match(g, ty))
}

/// A line read: its file, its number, the line, and its share of the byte budget.
type Item = (Arc<str>, u64, Line, OwnedSemaphorePermit);

/// The bytes of input lines held at once, in KiB: lines being parsed, queued, sent or waiting
/// for their outcome (a line over the budget holds all of it, alone).
const BUDGET_KIB: u32 = 8 * 1024;

fn read_inputs(
    inputs: Vec<Input>,
    max_line: usize,
    lines: &mpsc::Sender<std::io::Result<Item>>,
    budget: &Arc<Semaphore>,
    runtime: &tokio::runtime::Handle,
) {
    let inputs = if inputs.is_empty() {
        vec![Input::Stdin]
    } else {
        inputs
    };
    for input in inputs {
        let label: Arc<str> = input.label().into();
        let reader: Box<dyn std::io::BufRead> = match &input {
            Input::Stdin => Box::new(std::io::stdin().lock()),
            Input::File(path) => match std::fs::File::open(path) {
                Ok(file) => Box::new(BufReader::with_capacity(256 * 1024, file)),
                Err(e) => {
                    let _ = lines
                        .blocking_send(Err(std::io::Error::new(e.kind(), format!("{label}: {e}"))));
                    return;
                }
            },
        };
        let mut reader = LineReader::new(reader, max_line);
        loop {
            let item = match reader.next_line() {
                Ok(Some((number, line))) => {
                    let bytes = match &line {
                        Line::Text(text) => text.len(),
                        Line::TooLong(_) => 0,
                    };
                    let kib = u32::try_from(bytes / 1024 + 1)
                        .unwrap_or(u32::MAX)
                        .min(BUDGET_KIB);
                    let Ok(permit) = runtime.block_on(Arc::clone(budget).acquire_many_owned(kib))
                    else {
                        return;
                    };
                    Ok((Arc::clone(&label), number, line, permit))
                }
                Ok(None) => break,
                Err(e) => Err(std::io::Error::new(e.kind(), format!("{label}: {e}"))),
            };
            let failed = item.is_err();
            if lines.blocking_send(item).is_err() || failed {
                return;
            }
        }
    }
}

/// Where a line came from, the line itself for the dead-letter file, and its share of the
/// byte budget, given back when the outcome has been handled.
#[derive(Debug)]
struct Origin {
    file: Arc<str>,
    number: u64,
    line: Option<Vec<u8>>,
    _budget: OwnedSemaphorePermit,
}

#[derive(Debug)]
enum Outcome {
    Refused(String),
    Pending(Pending),
}

#[derive(Debug, Default)]
struct Counts {
    sent: u64,
    failed: u64,
    dead_lettered: u64,
}

async fn send_outcome(
    outcomes: &mpsc::Sender<(Origin, Outcome)>,
    origin: Origin,
    outcome: Outcome,
) {
    // The collector only goes away on an I/O error, which `send` then returns.
    let _ = outcomes.send((origin, outcome)).await;
}

async fn collect(
    mut outcomes: mpsc::Receiver<(Origin, Outcome)>,
    mut dead_letter: Option<Box<dyn Write + Send>>,
    mut report: impl FnMut(&str),
) -> std::io::Result<Counts> {
    let mut counts = Counts::default();
    while let Some((origin, outcome)) = outcomes.recv().await {
        let reason = match outcome {
            Outcome::Refused(reason) => reason,
            Outcome::Pending(pending) => {
                let delivery: Delivery = pending.wait().await;
                match delivery {
                    Ok(_) => {
                        counts.sent += 1;
                        continue;
                    }
                    Err(error) => {
                        counts.failed += 1;
                        error.to_string()
                    }
                }
            }
        };
        report(&format!("{}:{}: {reason}", origin.file, origin.number));
        if let Some(out) = dead_letter.as_mut() {
            out.write_all(dead_letter_record(&origin, &reason).as_bytes())?;
            counts.dead_lettered += 1;
        }
    }
    if let Some(out) = dead_letter.as_mut() {
        out.flush()?;
    }
    Ok(counts)
}

/// One NDJSON line of the dead-letter file: where, why, and the original line.
fn dead_letter_record(origin: &Origin, reason: &str) -> String {
    let mut record = serde_json::Map::new();
    record.insert("file".into(), origin.file.as_ref().into());
    record.insert("line".into(), origin.number.into());
    record.insert("reason".into(), reason.into());
    match origin.line.as_deref().map(std::str::from_utf8) {
        Some(Ok(text)) => {
            record.insert("original".into(), text.into());
        }
        Some(Err(_)) => {
            let bytes = origin.line.as_deref().unwrap_or_default();
            record.insert(
                "originalBase64".into(),
                base64::engine::general_purpose::STANDARD
                    .encode(bytes)
                    .into(),
            );
        }
        None => {}
    }
    let mut text = serde_json::Value::Object(record).to_string();
    text.push('\n');
    text
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
