//! The memory run: gigabytes of NDJSON through `forwarder send` from a pipe, its RSS followed
//! along the way.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::measure::{self, Measured};
use super::results::{MemoryResult, Sample};
use super::runs::Bench;
use super::samples::send_sample;
use super::workload::{self, Size};

/// The memory run stops the forwarder if its RSS goes over this, to spare the machine.
pub(super) const MEMORY_RUN_CAP: u64 = 2 << 30;

/// Streams `bytes` of NDJSON through `forwarder send` from a pipe, purging the queue as it fills.
pub(super) fn memory_run(bench: &Bench, size: Size, bytes: u64) -> Result<MemoryResult> {
    eprintln!(
        "bench: memory run: {:.1} GiB of {} through a pipe",
        bytes as f64 / (1u64 << 30) as f64,
        size.describe()
    );
    let fed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let purger = {
        let stop = Arc::clone(&stop);
        let mut command = bench.load_command(&["purge", "--queue-url", &bench.queue_url]);
        command.args(["--endpoint-url", &bench.endpoint]);
        std::thread::spawn(move || {
            // LocalStack keeps messages in memory: gigabytes would exhaust the machine.
            while !stop.load(Ordering::Relaxed) {
                let _ = command.output();
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    let mut extra = (0, 0, Vec::new(), None);
    let outcome = bench.around(false, || {
        let mut command = bench.send_command();
        let (mut child, stdin) = Measured::spawn(&mut command, true)?;
        let counter = Arc::clone(&fed);
        let feeder = measure::feed(stdin.context("no stdin")?, move |out| {
            let mut out = Counting {
                inner: out,
                count: counter,
            };
            workload::stream(size, u64::MAX, bytes, &mut out)
        });
        let (mut timeline, mut early_peak, mut stopped_at) = (Vec::new(), 0, None);
        let (started, mut last) = (Instant::now(), Instant::now());
        while !child.poll() {
            let (so_far, rss) = (fed.load(Ordering::Relaxed), child.rss());
            if so_far <= bytes / 10 {
                early_peak = early_peak.max(rss);
            }
            if last.elapsed() >= Duration::from_millis(500) {
                timeline.push((started.elapsed().as_secs_f64(), so_far, rss));
                last = Instant::now();
            }
            if rss > MEMORY_RUN_CAP {
                eprintln!(
                    "bench: memory run: the forwarder's RSS is over {} MiB: stopping it",
                    MEMORY_RUN_CAP >> 20
                );
                stopped_at = Some(so_far);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let finished = if stopped_at.is_some() {
            child.kill()?
        } else {
            child.wait()?
        };
        let written = feeder
            .join()
            .map_err(|_| anyhow::anyhow!("the feeder panicked"))?;
        let mut sample = if stopped_at.is_some() {
            Sample::default()
        } else {
            send_sample(&finished)?
        };
        let events = match written {
            Ok((events, _)) => events,
            Err(_) if stopped_at.is_some() => 0,
            Err(error) => return Err(error).context("cannot feed the forwarder"),
        };
        sample.seconds = finished.usage.wall;
        sample.usage = finished.usage;
        extra = (events, early_peak, timeline, stopped_at);
        Ok(sample)
    });
    stop.store(true, Ordering::Relaxed);
    let _ = purger.join();
    let sample = outcome?;
    let (events, early_peak_rss, timeline, stopped_at) = extra;
    Ok(MemoryResult {
        size,
        bytes: fed.load(Ordering::Relaxed),
        events,
        sample,
        early_peak_rss,
        timeline,
        stopped_at,
    })
}

/// A writer that counts what goes through it.
struct Counting<'a> {
    inner: &'a mut dyn std::io::Write,
    count: Arc<AtomicU64>,
}

impl std::io::Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
