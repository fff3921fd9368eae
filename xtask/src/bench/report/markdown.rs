//! `report.md`: the tables of every workload and method, the targets, where the limit is, the
//! CPU of each process, the memory run and the notes.

use std::fmt::Write as _;

use super::Results;
use super::figures::{
    Figures, RSS_TARGET_MIB, Stat, cores, figures, in_flight_cell, limit, machine, ratio, row,
    send_limits, send_peaks, targets, workload_label,
};
use super::units::{cell, gib, joined, mib, thousands};
use crate::bench::memory::MEMORY_RUN_CAP;
use crate::bench::results::{MemoryResult, Method, Row, WorkloadResult};
use crate::bench::schedule::SEND_IN_FLIGHT;

/// The report in Markdown.
pub(crate) fn markdown(results: &Results<'_>) -> String {
    let settings = results.settings;
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmark: the forwarder against the ceiling\n");
    let _ = writeln!(
        out,
        "`cargo xtask bench{}{}` on {}; LocalStack (host backend) as the server. Each figure is the median of {} \
         repetition(s), with min–max in brackets; \"vs ceiling\" divides each repetition by the ceiling's run of the same \
         repetition. \"+N ms\": behind a proxy adding N ms to every round trip.\n",
        if settings.quick { " --quick" } else { "" },
        if settings.rtts == [0] {
            String::new()
        } else {
            format!(" --rtt {}", joined(&settings.rtts, ","))
        },
        machine(),
        settings.reps
    );
    let _ = writeln!(
        out,
        "| workload | method | in flight | events/s | vs ceiling | requests/event | billing units/event | CPU s/10k events | peak RSS MiB | latency p50 / p99 ms |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (workload, method, row, f) in table_rows(results) {
        let versus = cell(ratio(workload, method), |v| format!("{:.0}%", v * 100.0));
        let latency = match (f.p50, f.p99) {
            (Some(p50), Some(p99)) => format!("{:.1} / {:.1}", p50.median, p99.median),
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} ({}) | {} | {} | {} | {versus} | {} | {} | {} | {} | {latency} |",
            workload_label(workload),
            workload.plan.size.short(),
            method.label(),
            in_flight_cell(row),
            cell(f.rate, thousands),
            cell(f.requests, |v| format!("{v:.3}")),
            cell(f.units, |v| format!("{v:.3}")),
            cell(f.cpu_per_10k, |v| format!("{v:.2}")),
            cell(f.rss_mib, |v| format!("{v:.1}")),
        );
    }
    if let Some(memory) = &results.memory {
        let s = &memory.sample;
        let per_event =
            |n: Option<u64>| format!("{:.3}", n.unwrap_or(0) as f64 / s.sent.max(1) as f64);
        let (rate, requests, units, cpu) = if memory.stopped_at.is_some() {
            (
                "stopped".to_owned(),
                "–".to_owned(),
                "–".to_owned(),
                "–".to_owned(),
            )
        } else {
            (
                thousands(s.sent as f64 / s.seconds.max(1e-9)),
                per_event(s.requests),
                per_event(s.billing_units),
                format!("{:.2}", s.usage.cpu / s.sent.max(1) as f64 * 10_000.0),
            )
        };
        let _ = writeln!(
            out,
            "| memory run ({} of {} events from a pipe) | forwarder send | {} | {rate} | – | {requests} | {units} | {cpu} | {:.1} | – |",
            gib(memory.bytes),
            memory.size.name(),
            SEND_IN_FLIGHT,
            mib(s.usage.peak_rss),
        );
    }
    if settings.rtts.iter().any(|ms| *ms > 0) {
        let _ = writeln!(out, "\n## Round trips\n");
        let _ = writeln!(
            out,
            "The ceiling's best point of its sweep against `forwarder send --max-in-flight auto`, at each round trip added \
             in front of LocalStack.\n"
        );
        let _ = writeln!(
            out,
            "| added round trip | workload | ceiling best, events/s (in flight) | forwarder send (auto), events/s | vs ceiling | auto's limit at the end (peak) |"
        );
        let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|");
        for workload in &results.workloads {
            let (Some(ceiling), Some(send)) =
                (row(workload, Method::Ceiling), row(workload, Method::Send))
            else {
                continue;
            };
            let limits = send_limits(send).map_or_else(
                || "–".to_owned(),
                |(last, peak)| format!("{:.0} ({:.0})", last.median, peak.median),
            );
            let _ = writeln!(
                out,
                "| {} ms | {} | {} ({}) | {} | {} | {limits} |",
                workload.rtt_ms,
                workload.plan.size.name(),
                cell(figures(ceiling).rate, thousands),
                ceiling.concurrency,
                cell(figures(send).rate, thousands),
                cell(ratio(workload, Method::Send), |v| format!(
                    "{:.0}%",
                    v * 100.0
                )),
            );
        }
    }

    let _ = writeln!(out, "\n## Targets\n");
    let _ = writeln!(out, "| target | measured | result |\n|---|---|---|");
    for target in targets(results) {
        let result = match target.pass {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not measured",
        };
        let _ = writeln!(out, "| {} | {} | {result} |", target.name, target.measured);
    }
    let _ = writeln!(
        out,
        "| validation + encoding <= 2x a plain serde_json parse-and-serialise | `cargo bench -p forwarder --bench encode` (criterion, not part of this run) | see there |"
    );

    let _ = writeln!(out, "\n## Where the limit is\n");
    for workload in &results.workloads {
        for method in [Method::Send, Method::Serve] {
            if let Some(text) = limit(workload, method) {
                let _ = writeln!(
                    out,
                    "- **{}, {}** ({:.0}% of the ceiling): {text}.",
                    workload_label(workload),
                    method.label(),
                    ratio(workload, method).map_or(f64::NAN, |r| r.median) * 100.0
                );
            }
        }
    }

    let _ = writeln!(out, "\n## CPU of each process\n");
    let _ = writeln!(
        out,
        "Cores busy on average over each run (CPU seconds over wall seconds). \"Process\" is the forwarder for `send` and \
         `serve`, the SDK client otherwise; \"other processes\" is what the machine spent beyond LocalStack, that process \
         and `serve`'s HTTP client: other work on the machine, which takes CPU from the run.\n"
    );
    let _ = writeln!(
        out,
        "| workload | method | LocalStack cores | process cores | other processes cores | machine cores busy | LocalStack CPU ms/request |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
    for (workload, method, _, f) in table_rows(results) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            workload_label(workload),
            method.label(),
            cell(f.server_cores, |v| format!("{v:.2}")),
            cell(f.process_cores, |v| format!("{v:.2}")),
            cell(f.other_cores, |v| format!("{v:.2}")),
            cell(f.machine_cores, |v| format!("{v:.2}")),
            cell(f.server_ms_per_request, |v| format!("{v:.2}")),
        );
    }

    let _ = writeln!(out, "\n## Concurrency sweeps\n");
    let _ = writeln!(
        out,
        "Events/s by requests in flight, on the first events of each workload: the ceiling's sweep runs in every \
         repetition (median shown; the ceiling of a repetition is its best point), one request per event's once.\n"
    );
    let _ = writeln!(
        out,
        "| workload | method | {} |",
        joined(&settings.sweep, " | ")
    );
    let _ = writeln!(out, "|---|---|{}", "---:|".repeat(settings.sweep.len()));
    for workload in &results.workloads {
        for (label, points) in [
            ("ceiling", &workload.ceiling_sweep),
            ("1 request/event", &workload.per_event_sweep),
        ] {
            if points.is_empty() {
                continue;
            }
            let cells: Vec<String> = points
                .iter()
                .map(|(_, rates)| {
                    Stat::of(rates.iter().copied())
                        .map_or_else(|| "–".to_owned(), |s| thousands(s.median))
                })
                .collect();
            let _ = writeln!(
                out,
                "| {} | {label} | {} |",
                workload_label(workload),
                cells.join(" | ")
            );
        }
    }

    if let Some(memory) = &results.memory {
        let _ = writeln!(out, "\n## Memory run\n\n{}", memory_text(memory));
    }

    let _ = writeln!(out, "\n## Notes\n");
    for note in notes(results) {
        let _ = writeln!(out, "- {note}");
    }

    let _ = writeln!(out, "\n## Timings\n");
    let _ = writeln!(out, "| phase | seconds |\n|---|---:|");
    for (phase, seconds) in &results.timings {
        let _ = writeln!(out, "| {phase} | {seconds:.1} |");
    }
    let _ = writeln!(out, "\n![events/s by workload](report.svg)");
    out
}

pub(super) fn memory_text(memory: &MemoryResult) -> String {
    let s = &memory.sample;
    let mut text = format!(
        "{} of {} ({}) generated on the fly into `forwarder send`'s standard input, the queue purged every half second. ",
        gib(memory.bytes),
        memory.size.name(),
        memory.size.describe(),
    );
    match memory.stopped_at {
        Some(fed) => {
            let _ = write!(
                text,
                "The forwarder's RSS went over {} MiB after {} of input, and the run was stopped there.",
                MEMORY_RUN_CAP >> 20,
                gib(fed)
            );
        }
        None => {
            let _ = write!(
                text,
                "{} events sent ({} failed) in {:.1} s, {:.1} MiB/s. Peak RSS {:.1} MiB; {:.1} MiB while the first tenth of the \
                 input went in.",
                s.sent,
                s.failed,
                s.seconds,
                mib(memory.bytes) / s.seconds.max(1e-9),
                mib(s.usage.peak_rss),
                mib(memory.early_peak_rss),
            );
            if memory.events != s.sent + s.failed {
                let _ = write!(
                    text,
                    " The generator wrote {} events; the forwarder accounted for {}.",
                    memory.events,
                    s.sent + s.failed
                );
            }
        }
    }
    // RSS along the run: flat when memory is bounded, growing with the input when it is not.
    let end = memory
        .timeline
        .last()
        .map_or(0.0, |(seconds, _, _)| *seconds);
    let mut along: Vec<String> = [0.2, 0.4, 0.6, 0.8, 1.0]
        .iter()
        .filter_map(|fraction| {
            let (seconds, fed, rss) = memory
                .timeline
                .iter()
                .find(|(seconds, _, _)| *seconds >= end * fraction)?;
            Some(format!(
                "{seconds:.1} s ({} read): {:.0} MiB",
                gib(*fed),
                mib(*rss)
            ))
        })
        .collect();
    along.dedup();
    if !along.is_empty() {
        let _ = write!(text, " RSS along the way: {}.", along.join(", "));
    }
    text
}

pub(super) fn notes(results: &Results<'_>) -> Vec<String> {
    let settings = results.settings;
    let mut notes = vec![
        format!(
            "The ceiling sends each line as the message body, as full as SQS allows: ten entries per `SendMessageBatch`, or \
             fewer when 1 MiB comes first (one 900 KiB event per request). Its requests are built before its clock starts, and \
             in each repetition it is the best point of a sweep over {} requests in flight (fewer events below 16; its \
             \"in flight\" column is the best by median); the forwarder runs with its defaults (`--max-in-flight {}`, \
             adaptive, 5 ms linger and at most 50 ms while a request is in flight; its column says where the limit ended and its peak) and its time is the whole \
             process, start-up and reading included.",
            joined(&settings.sweep, ", "),
            SEND_IN_FLIGHT
        ),
        format!(
            "`forwarder serve` is started afresh for each repetition and fed one structured-mode event per HTTP request by {} \
             concurrent clients; latency is from sending the request to reading the answer, which comes once SQS has the event. \
             Its SQS requests come from its `/metrics`; billing units are not among them.",
            settings.serve_concurrency
        ),
        "One request per event sends only the first events of each workload (the rate is what is compared). A billing unit is \
         each 64 KiB of a request's payload."
            .to_owned(),
        "CPU seconds and peak RSS are the operating system's (`/proc`), for the whole process: the forwarder for `send` and \
         `serve`, the SDK client (which holds the whole file in memory, so its RSS is not shown) otherwise. The queue is purged \
         before each run and counted after it."
            .to_owned(),
    ];
    let idle: Vec<String> = results
        .idle
        .iter()
        .filter_map(|(when, load)| {
            Some(format!(
                "{when}: LocalStack {:.2} cores, the machine {:.2} of {}",
                load.localstack?,
                load.machine?,
                cores()
            ))
        })
        .collect();
    let shared = results
        .idle
        .iter()
        .any(|(_, load)| load.localstack.is_some_and(|c| c >= 0.05));
    if !idle.is_empty() {
        notes.push(format!(
            "CPU in use while the benchmark sent nothing: {}.{}",
            idle.join("; "),
            if shared {
                " LocalStack is shared: other clients' requests are in its CPU figures, and compete with the benchmark's."
            } else {
                ""
            }
        ));
    }
    // Other work on the machine, workload by workload (it may come and go during a run).
    let others: Vec<(&str, f64)> = results
        .workloads
        .iter()
        .filter_map(|w| {
            let medians = w
                .rows
                .iter()
                .filter_map(|row| figures(row).other_cores)
                .map(|s| s.median);
            Some((w.plan.size.name(), Stat::of(medians)?.median))
        })
        .collect();
    if others.iter().any(|(_, cores)| *cores >= 0.25) {
        let shown: Vec<String> = others
            .iter()
            .map(|(name, cores)| format!("{name} {cores:.2}"))
            .collect();
        notes.push(format!(
            "Other processes used CPU while the benchmark ran (cores of {}, median over each workload's runs: {}): they took \
             it from LocalStack and the clients, so those figures vary more between repetitions, and sit lower, than on an \
             idle machine.",
            cores(),
            shown.join(", ")
        ));
    }
    let peaks = send_peaks(results);
    if peaks.iter().any(|(_, peak)| *peak > RSS_TARGET_MIB) {
        let shown: Vec<String> = peaks
            .iter()
            .map(|(name, peak)| format!("{name} {peak:.0} MiB"))
            .collect();
        let mut note = format!(
            "The peak RSS of `forwarder send` grows with the size of the events ({})",
            shown.join(", ")
        );
        let growing = results.memory.as_ref().is_some_and(|m| {
            m.early_peak_rss > 0 && m.sample.usage.peak_rss > 2 * m.early_peak_rss
        });
        if growing {
            note.push_str(
                " and, in the memory run, with the input read so far: it reads ahead of what SQS accepts, and what bounds \
                 the events it holds is not their bytes",
            );
        }
        note.push('.');
        notes.push(note);
    }
    for workload in &results.workloads {
        for row in &workload.rows {
            let f = figures(row);
            if f.failed > 0 {
                notes.push(format!(
                    "{}, {}: {} events failed over the repetitions.",
                    workload.plan.size.name(),
                    row.method.label(),
                    f.failed
                ));
            }
            for (sent, held) in f.mismatches {
                notes.push(format!(
                    "{}, {}: {sent} events reported sent but the queue held {held}.",
                    workload.plan.size.name(),
                    row.method.label()
                ));
            }
        }
    }
    notes.push(format!(
        "Reproduce with `cargo xtask bench` (3 repetitions, about {} GiB for the memory run) or `cargo xtask bench --quick` \
         (1 repetition, fewer events); the release build of the forwarder and of the `sqs_load` example comes first and is \
         not part of the runs' figures.",
        3
    ));
    notes
}

/// The rows of the tables: each workload's methods in the order of [`Method::ALL`], with their
/// figures.
fn table_rows<'a>(
    results: &'a Results<'_>,
) -> impl Iterator<Item = (&'a WorkloadResult, Method, &'a Row, Figures)> {
    results.workloads.iter().flat_map(|workload| {
        Method::ALL.into_iter().filter_map(move |method| {
            let row = row(workload, method)?;
            Some((workload, method, row, figures(row)))
        })
    })
}
