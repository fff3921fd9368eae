//! The reader thread of `send`: reads the inputs line by line (blocking I/O stays off the
//! runtime), each line holding a share of the byte budget, and stops only where stopping loses
//! nothing: at a line boundary with no consumed byte left in its buffer. Once a stop is asked
//! for, it reads the rest of the line it is in one byte at a time, so that it never consumes
//! past that line.
//!
//! On stdin it waits for data with `poll`, so that a stop never leaves it blocked in a read
//! whose bytes would then be consumed and dropped.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::checkpoint::Mark;
use crate::input::{Line, LineReader};
use crate::send::Input;

/// What the reader hands over.
#[derive(Debug)]
pub(crate) enum Read {
    /// A line.
    Line(Item),
    /// Reading stopped: this line of this input is the first not read.
    Stopped {
        /// The input's label.
        file: Arc<str>,
        /// The first line not read.
        next: u64,
    },
    /// An input could not be opened or read: this line of this input is the first not read.
    Failed {
        /// The input's label.
        file: Arc<str>,
        /// The first line not read.
        next: u64,
        /// What failed.
        error: String,
    },
}

/// A line read, where it came from, and its share of the byte budget.
#[derive(Debug)]
pub(crate) struct Item {
    /// The index of its input.
    pub(crate) input: usize,
    /// The input's label.
    pub(crate) file: Arc<str>,
    /// Its line number.
    pub(crate) number: u64,
    /// The byte offset just after it.
    pub(crate) end: u64,
    /// The line.
    pub(crate) line: Line,
    /// Its share of the byte budget.
    pub(crate) budget: OwnedSemaphorePermit,
}

/// What the reader needs.
#[derive(Debug)]
pub(crate) struct Reading {
    /// The inputs, each with where to start.
    pub(crate) inputs: Vec<(Input, Mark)>,
    /// Longer lines are refused unread.
    pub(crate) max_line: usize,
    /// Set to stop at the next boundary that loses nothing.
    pub(crate) draining: Arc<AtomicBool>,
    /// The bytes of lines held at once, in KiB.
    pub(crate) budget: Arc<Semaphore>,
    /// For waiting on the budget.
    pub(crate) runtime: tokio::runtime::Handle,
}

/// The bytes of input lines held at once, in KiB: lines being parsed, queued, sent or waiting
/// for their outcome (a line over the budget holds all of it, alone).
pub(crate) const BUDGET_KIB: u32 = 8 * 1024;

/// Reads every input into `lines`, until the end, an error, or a stop.
pub(crate) fn read_inputs(reading: &Reading, lines: &mpsc::Sender<Read>) {
    for (index, (input, mark)) in reading.inputs.iter().enumerate() {
        let label: Arc<str> = input.label().into();
        let stopped = |next| Read::Stopped {
            file: Arc::clone(&label),
            next,
        };
        if reading.draining.load(Ordering::Relaxed) {
            let _ = lines.blocking_send(stopped(mark.line + 1));
            return;
        }
        let file = match open(input, *mark) {
            Ok(file) => Source {
                file,
                draining: Arc::clone(&reading.draining),
            },
            Err(e) => {
                let _ = lines.blocking_send(failed(&label, mark.line + 1, &e));
                return;
            }
        };
        let stdin = matches!(input, Input::Stdin);
        let mut reader = LineReader::resuming(
            BufReader::with_capacity(256 * 1024, file),
            reading.max_line,
            mark.line,
            mark.offset,
        );
        loop {
            if reader.buffer_is_empty() {
                let draining = reading.draining.load(Ordering::Relaxed);
                if draining || (stdin && !wait_readable(std::io::stdin().as_fd(), reading)) {
                    let _ = lines.blocking_send(stopped(reader.next_number()));
                    return;
                }
            }
            let (number, line) = match reader.next_line() {
                Ok(Some(next)) => next,
                Ok(None) => break,
                Err(e) => {
                    let _ = lines.blocking_send(failed(&label, reader.next_number(), &e));
                    return;
                }
            };
            let bytes = match &line {
                Line::Text(text) => text.len(),
                Line::TooLong(_) => 0,
            };
            let kib = u32::try_from(bytes / 1024 + 1)
                .unwrap_or(u32::MAX)
                .min(BUDGET_KIB);
            let Ok(budget) = reading
                .runtime
                .block_on(Arc::clone(&reading.budget).acquire_many_owned(kib))
            else {
                return;
            };
            let item = Item {
                input: index,
                file: Arc::clone(&label),
                number,
                end: reader.offset(),
                line,
                budget,
            };
            if lines.blocking_send(Read::Line(item)).is_err() {
                return;
            }
        }
    }
}

fn failed(label: &Arc<str>, next: u64, error: &std::io::Error) -> Read {
    Read::Failed {
        file: Arc::clone(label),
        next,
        error: format!("{label}: {error}"),
    }
}

/// An input that, once a stop is asked for, reads one byte at a time: finishing the line it is
/// in then consumes nothing past that line's end.
struct Source {
    file: File,
    draining: Arc<AtomicBool>,
}

impl std::io::Read for Source {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let most = if self.draining.load(Ordering::Relaxed) {
            buffer.len().min(1)
        } else {
            buffer.len()
        };
        std::io::Read::read(&mut self.file, &mut buffer[..most])
    }
}

/// Opens an input at its start mark. Stdin is read through its own descriptor, so that no
/// byte sits in a buffer of the standard library's.
fn open(input: &Input, mark: Mark) -> std::io::Result<File> {
    match input {
        Input::Stdin => Ok(File::from(std::io::stdin().as_fd().try_clone_to_owned()?)),
        Input::File(path) => {
            let mut file = File::open(path)?;
            file.seek(SeekFrom::Start(mark.offset))?;
            Ok(file)
        }
    }
}

/// Waits until `fd` has something to read (or has ended); false if a stop came first.
fn wait_readable(fd: BorrowedFd<'_>, reading: &Reading) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    loop {
        if reading.draining.load(Ordering::Relaxed) {
            return false;
        }
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&tick)) {
            Ok(0) => {}
            Err(rustix::io::Errno::INTR) => {}
            // Readable, ended, or an error that the read will name.
            _ => return true,
        }
    }
}
