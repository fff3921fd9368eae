//! The benchmark's flags and what they make it run: repetitions, workload sizes and event counts.

use anyhow::{Context, Result, bail};

use super::workload::Size;

/// What to run, from the flags.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(super) quick: bool,
    pub(super) reps: usize,
    pub(super) workloads: Vec<Plan>,
    /// Concurrencies of the sweeps.
    pub(super) sweep: Vec<usize>,
    /// Round trips added in front of LocalStack, in milliseconds (0: none, and every method).
    pub(super) rtts: Vec<u64>,
    /// Requests in flight of the HTTP client in front of `forwarder serve`.
    pub(super) serve_concurrency: usize,
    pub(super) memory_size: Size,
    pub(super) memory_bytes: u64,
}

/// How many events of one size each kind of run sends.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    pub(super) size: Size,
    /// The events of the file: the ceiling, `send` and `serve` send them all.
    pub(super) events: usize,
    /// The events of each point of the ceiling's sweep from 16 in flight on, which runs in every
    /// repetition; see [`Plan::sweep_events_at`].
    pub(super) sweep_events: usize,
    /// The events of each one-request-per-event run.
    pub(super) per_event: usize,
    /// The events of each point of the one-request-per-event sweep.
    pub(super) per_event_sweep: usize,
    /// The events of each `serve` run.
    pub(super) serve: usize,
}

impl Plan {
    /// The events of the sweep's point at `concurrency`: fewer below 16 in flight (down to an
    /// eighth), so that a slow point at a long round trip does not take the run's time.
    pub(super) fn sweep_events_at(&self, concurrency: usize) -> usize {
        (self.sweep_events * concurrency.min(16) / 16)
            .max(self.sweep_events / 8)
            .max(1)
    }
}

pub(super) const USAGE: &str = "usage: cargo xtask bench [--quick] [--reps N] [--rtt MS,MS,...]

  --rtt 0,20,60   also measure behind a proxy that adds this round trip (ms) to every request:
                  the ceiling's sweep and `forwarder send` at each (default: 0 only)";

impl Settings {
    pub(super) fn parse(args: &[String]) -> Result<Settings> {
        let mut quick = false;
        let mut reps = None;
        let mut rtts = vec![0];
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => quick = true,
                "--reps" => {
                    let n = args.next().context(USAGE)?;
                    reps = Some(n.parse::<usize>().ok().filter(|n| *n > 0).context(USAGE)?);
                }
                "--rtt" => {
                    let list = args.next().context(USAGE)?;
                    rtts = list
                        .split(',')
                        .map(|ms| ms.trim().parse::<u64>().ok().filter(|ms| *ms <= 10_000))
                        .collect::<Option<Vec<u64>>>()
                        .with_context(|| {
                            format!("--rtt {list}: milliseconds, such as 0,20,60\n{USAGE}")
                        })?;
                    rtts.sort_unstable();
                    rtts.dedup();
                }
                other => bail!("unknown argument `{other}`\n{USAGE}"),
            }
        }
        let plan = |size, events, sweep_events, per_event, per_event_sweep, serve| Plan {
            size,
            events,
            sweep_events,
            per_event,
            per_event_sweep,
            serve,
        };
        let (workloads, memory_bytes) = if quick {
            (
                vec![
                    plan(Size::Small, 6_000, 2_000, 1_000, 400, 3_000),
                    plan(Size::Medium, 2_000, 600, 400, 200, 1_000),
                    plan(Size::Large, 60, 30, 30, 20, 40),
                ],
                512 << 20,
            )
        } else {
            (
                vec![
                    plan(Size::Small, 20_000, 5_000, 2_500, 1_000, 10_000),
                    plan(Size::Medium, 5_000, 2_000, 1_000, 500, 2_500),
                    plan(Size::Large, 300, 80, 60, 30, 150),
                ],
                3 << 30,
            )
        };
        Ok(Settings {
            quick,
            reps: reps.unwrap_or(if quick { 1 } else { 3 }),
            workloads,
            sweep: vec![1, 2, 4, 8, 16, 32, 64],
            rtts,
            serve_concurrency: 32,
            memory_size: Size::Large,
            memory_bytes,
        })
    }
}
