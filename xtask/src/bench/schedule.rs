//! The runs of one workload at one round trip: the sweeps that find the best concurrency, and
//! the repetitions that go round the methods so that each can be compared with the ceiling of
//! its own repetition. Behind an added round trip only the ceiling and `forwarder send` run: one
//! request per event and `serve`'s one-event HTTP clients measure their own round trips there.

use anyhow::{Context, Result};

use super::report;
use super::results::{Method, Row, Sample, WorkloadResult};
use super::runs::Bench;
use super::settings::{Plan, Settings};
use super::workload;

/// `forwarder send`'s `--max-in-flight`: its default.
pub(super) const SEND_IN_FLIGHT: &str = "auto";

pub(super) fn measure_workload(
    bench: &Bench,
    settings: &Settings,
    plan: Plan,
    rtt_ms: u64,
) -> Result<WorkloadResult> {
    let name = plan.size.name();
    let file = bench.dir.join(format!("{name}.ndjson"));
    let file_bytes = workload::write_file(&file, plan.size, plan.events)
        .with_context(|| format!("cannot write {}", file.display()))?;
    eprintln!(
        "bench: {name}: {} events, {}, {:.1} MiB, {rtt_ms} ms added round trip",
        plan.events,
        plan.size.describe(),
        file_bytes as f64 / 1048576.0
    );
    let everything = rtt_ms == 0;
    let rate = |sample: &Sample| sample.sent as f64 / sample.seconds.max(1e-9);
    let sweep_points =
        || -> Vec<(usize, Vec<f64>)> { settings.sweep.iter().map(|c| (*c, Vec::new())).collect() };

    // One request per event is slow: its sweep runs once, before the repetitions.
    let mut per_event_sweep = if everything {
        sweep_points()
    } else {
        Vec::new()
    };
    for (concurrency, rates) in &mut per_event_sweep {
        let sample =
            bench.load_run("per-event", &file, *concurrency, Some(plan.per_event_sweep))?;
        rates.push(rate(&sample));
    }
    if everything {
        log_sweep(name, "1 request/event", &per_event_sweep);
    }
    let per_event_best = best(&per_event_sweep);

    let mut ceiling_sweep = sweep_points();
    let mut rows: Vec<Row> = [
        (Method::Ceiling, 0),
        (Method::Send, 0),
        (Method::Serve, settings.serve_concurrency),
        (Method::PerEventConcurrent, per_event_best),
        (Method::PerEventSequential, 1),
    ]
    .into_iter()
    .filter(|(method, _)| everything || matches!(method, Method::Ceiling | Method::Send))
    .map(|(method, concurrency)| Row {
        method,
        concurrency,
        samples: Vec::new(),
    })
    .collect();
    // Repetitions go round the methods, so that a change in the machine's load touches them
    // alike and each can be compared with the ceiling of its own repetition.
    for rep in 1..=settings.reps {
        for row in &mut rows {
            let sample = match row.method {
                Method::Ceiling => {
                    // The ceiling of a repetition is the best point of its sweep.
                    let mut best: Option<Sample> = None;
                    for (concurrency, rates) in &mut ceiling_sweep {
                        let sample = bench.load_run(
                            "ceiling",
                            &file,
                            *concurrency,
                            Some(plan.sweep_events_at(*concurrency)),
                        )?;
                        rates.push(rate(&sample));
                        if best.as_ref().is_none_or(|b| rate(&sample) > rate(b)) {
                            best = Some(sample);
                        }
                    }
                    log_sweep(name, "ceiling", &ceiling_sweep);
                    best.context("the sweep has no concurrency")?
                }
                Method::Send => bench.send_run(&file)?,
                Method::Serve => bench.serve_run(&file, row.concurrency, plan.serve)?,
                Method::PerEventConcurrent => {
                    bench.load_run("per-event", &file, row.concurrency, Some(plan.per_event))?
                }
                Method::PerEventSequential => {
                    bench.load_run("per-event", &file, 1, Some(plan.per_event))?
                }
            };
            eprintln!(
                "bench: {name}: rep {rep}: {:<28} {:>9.1} events/s{}",
                row.method.label(),
                rate(&sample),
                if sample.failed > 0 {
                    format!(" ({} failed)", sample.failed)
                } else {
                    String::new()
                }
            );
            row.samples.push(sample);
        }
    }
    let ceiling_best = best(&ceiling_sweep);
    if let Some(row) = rows.iter_mut().find(|r| r.method == Method::Ceiling) {
        row.concurrency = ceiling_best;
    }
    Ok(WorkloadResult {
        plan,
        rtt_ms,
        file_bytes,
        rows,
        ceiling_sweep,
        per_event_sweep,
    })
}

/// The concurrency whose median rate is the highest.
pub(super) fn best(points: &[(usize, Vec<f64>)]) -> usize {
    points
        .iter()
        .map(|(c, rates)| {
            (
                *c,
                report::Stat::of(rates.iter().copied()).map_or(0.0, |s| s.median),
            )
        })
        .fold(
            (1, 0.0),
            |best, point| if point.1 > best.1 { point } else { best },
        )
        .0
}

pub(super) fn log_sweep(name: &str, what: &str, points: &[(usize, Vec<f64>)]) {
    let shown: Vec<String> = points
        .iter()
        .filter_map(|(c, rates)| Some(format!("{c}: {:.0}/s", rates.last()?)))
        .collect();
    eprintln!("bench: {name}: {what} sweep: {}", shown.join(", "));
}
