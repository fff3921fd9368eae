//! The benchmark's outputs: `report.md` (tables, targets, where the limit is), `report.json`
//! (every sample) and `report.svg` (events/s by workload, hand-written SVG).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::workload::Size;
use super::{IdleLoad, MemoryResult, Method, Row, Sample, Settings, WorkloadResult};

/// Everything one run measured.
#[derive(Debug)]
pub(crate) struct Results<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) workloads: Vec<WorkloadResult>,
    pub(crate) memory: Option<MemoryResult>,
    pub(crate) timings: Vec<(String, f64)>,
    /// The load while nothing was sent, before and after the runs.
    pub(crate) idle: Vec<(&'static str, IdleLoad)>,
}

/// The peak RSS target of the forwarder.
const RSS_TARGET_MIB: f64 = 64.0;

/// Writes the three reports into `dir` and returns their paths.
pub(crate) fn write(results: &Results<'_>, dir: &Path) -> Result<Vec<PathBuf>> {
    let files = [
        ("report.md", markdown(results)),
        (
            "report.json",
            serde_json::to_string_pretty(&to_json(results))? + "\n",
        ),
        ("report.svg", svg(results)),
    ];
    let mut paths = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

/// The median, least and greatest of the repetitions.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stat {
    pub(super) median: f64,
    min: f64,
    max: f64,
}

impl Stat {
    pub(super) fn of(values: impl IntoIterator<Item = f64>) -> Option<Stat> {
        let mut values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Stat {
            median,
            min: values[0],
            max: values[n - 1],
        })
    }

    fn json(self) -> Value {
        json!({ "median": self.median, "min": self.min, "max": self.max })
    }
}

/// The figures of one row, over its repetitions.
#[derive(Debug)]
struct Figures {
    rate: Option<Stat>,
    requests: Option<Stat>,
    units: Option<Stat>,
    cpu_per_10k: Option<Stat>,
    rss_mib: Option<Stat>,
    /// LocalStack's, the measured process's and the whole machine's CPU, in cores.
    server_cores: Option<Stat>,
    process_cores: Option<Stat>,
    machine_cores: Option<Stat>,
    /// What neither LocalStack nor the measured processes (and `serve`'s HTTP client) used.
    other_cores: Option<Stat>,
    /// LocalStack's CPU milliseconds per SQS request.
    server_ms_per_request: Option<Stat>,
    p50: Option<Stat>,
    p99: Option<Stat>,
    failed: u64,
    /// Runs after which the queue held another number of messages than were reported sent.
    mismatches: Vec<(u64, u64)>,
}

fn figures(row: &Row) -> Figures {
    let samples = &row.samples;
    let per_event = |f: fn(&Sample) -> Option<u64>| {
        Stat::of(
            samples
                .iter()
                .filter_map(|s| Some(f(s)? as f64 / s.sent.max(1) as f64)),
        )
    };
    let has_rss = matches!(row.method, Method::Send | Method::Serve);
    Figures {
        rate: Stat::of(samples.iter().map(|s| s.sent as f64 / s.seconds.max(1e-9))),
        requests: per_event(|s| s.requests),
        units: per_event(|s| s.billing_units),
        cpu_per_10k: Stat::of(
            samples
                .iter()
                .map(|s| s.usage.cpu / s.sent.max(1) as f64 * 10_000.0),
        ),
        rss_mib: if has_rss {
            Stat::of(samples.iter().map(|s| mib(s.usage.peak_rss)))
        } else {
            None
        },
        server_cores: Stat::of(
            samples
                .iter()
                .filter_map(|s| Some(s.server_cpu? / s.window.max(1e-9))),
        ),
        process_cores: Stat::of(samples.iter().map(|s| s.usage.cpu / s.usage.wall.max(1e-9))),
        machine_cores: Stat::of(
            samples
                .iter()
                .filter_map(|s| Some(s.machine_busy? / s.window.max(1e-9))),
        ),
        other_cores: Stat::of(samples.iter().filter_map(|s| {
            let ours = s.server_cpu? + s.usage.cpu + s.client_cpu.unwrap_or(0.0);
            Some(((s.machine_busy? - ours) / s.window.max(1e-9)).max(0.0))
        })),
        server_ms_per_request: Stat::of(
            samples
                .iter()
                .filter_map(|s| Some(s.server_cpu? * 1000.0 / s.requests?.max(1) as f64)),
        ),
        p50: Stat::of(samples.iter().filter_map(|s| s.p50_ms))
            .filter(|_| row.method == Method::Serve),
        p99: Stat::of(samples.iter().filter_map(|s| s.p99_ms))
            .filter(|_| row.method == Method::Serve),
        failed: samples.iter().map(|s| s.failed).sum(),
        mismatches: samples
            .iter()
            .filter_map(|s| s.in_queue.filter(|n| *n != s.sent).map(|n| (s.sent, n)))
            .collect(),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

fn row(workload: &WorkloadResult, method: Method) -> Option<&Row> {
    workload.rows.iter().find(|r| r.method == method)
}

/// Events/s over the ceiling's, repetition by repetition: each repetition runs the methods one
/// after the other, so a pair shares the machine's conditions.
fn ratio(workload: &WorkloadResult, method: Method) -> Option<Stat> {
    let events_per_second = |s: &Sample| s.sent as f64 / s.seconds.max(1e-9);
    let ceiling = row(workload, Method::Ceiling)?;
    Stat::of(
        row(workload, method)?
            .samples
            .iter()
            .zip(&ceiling.samples)
            .map(|(it, ceiling)| events_per_second(it) / events_per_second(ceiling).max(1e-9)),
    )
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A target, what was measured, and whether it is met (`None`: not measured).
#[derive(Debug)]
struct Target {
    name: &'static str,
    measured: String,
    pass: Option<bool>,
}

fn targets(results: &Results<'_>) -> Vec<Target> {
    let find = |size: Size| results.workloads.iter().find(|w| w.plan.size == size);
    let mut targets = Vec::new();
    let throughput = |name, size, at_least: f64| {
        let measured = find(size).and_then(|w| ratio(w, Method::Send));
        Target {
            name,
            measured: measured.map_or_else(
                || "not measured".to_owned(),
                |r| {
                    format!(
                        "{} of the ceiling",
                        cell(Some(r), |v| format!("{:.1}%", v * 100.0))
                    )
                },
            ),
            pass: measured.map(|r| r.median >= at_least),
        }
    };
    targets.push(throughput(
        "forwarder >= 90% of the ceiling, small events",
        Size::Small,
        0.90,
    ));
    targets.push(throughput(
        "forwarder within 5% of the ceiling, large events",
        Size::Large,
        0.95,
    ));
    let small = find(Size::Small);
    let send = small.and_then(|w| row(w, Method::Send)).map(figures);
    let per_event = small
        .and_then(|w| row(w, Method::PerEventSequential))
        .map(figures);
    let requests = send.as_ref().and_then(|f| f.requests).map(|s| s.median);
    targets.push(Target {
        name: "requests per small event <= 0.11",
        measured: requests.map_or_else(|| "not measured".to_owned(), |r| format!("{r:.3}")),
        pass: requests.map(|r| r <= 0.11),
    });
    let fewer = |pick: fn(&Figures) -> Option<Stat>| -> Option<f64> {
        Some(pick(per_event.as_ref()?)?.median / pick(send.as_ref()?)?.median.max(1e-9))
    };
    let (fewer_requests, fewer_units) = (fewer(|f| f.requests), fewer(|f| f.units));
    targets.push(Target {
        name: ">= 9x fewer requests and billing units than 1 request/event (small)",
        measured: match (fewer_requests, fewer_units) {
            (Some(r), Some(u)) => format!("{r:.1}x fewer requests, {u:.1}x fewer billing units"),
            _ => "not measured".to_owned(),
        },
        pass: fewer_requests
            .zip(fewer_units)
            .map(|(r, u)| r >= 9.0 && u >= 9.0),
    });
    let mut peaks: Vec<(String, f64)> = results
        .workloads
        .iter()
        .filter_map(|w| {
            Some((
                w.plan.size.name().to_owned(),
                figures(row(w, Method::Send)?).rss_mib?.max,
            ))
        })
        .collect();
    if let Some(memory) = &results.memory {
        let what = match memory.stopped_at {
            Some(fed) => format!("memory run, stopped after {}", gib(fed)),
            None => format!("memory run, {}", gib(memory.bytes)),
        };
        peaks.push((what, mib(memory.sample.usage.peak_rss)));
    }
    let worst = peaks.iter().cloned().max_by(|a, b| a.1.total_cmp(&b.1));
    targets.push(Target {
        name: "forwarder send peak RSS <= 64 MiB, whatever the input size",
        measured: worst.as_ref().map_or_else(
            || "not measured".to_owned(),
            |(name, peak)| format!("{peak:.1} MiB at most ({name})"),
        ),
        pass: worst.map(|(_, peak)| peak <= RSS_TARGET_MIB),
    });
    targets
}

/// Where the limit is for `method` on a workload, from the CPU each process used.
fn limit(workload: &WorkloadResult, method: Method) -> Option<String> {
    let it = figures(row(workload, method)?);
    let ceiling_row = row(workload, Method::Ceiling)?;
    let ceiling = figures(ceiling_row);
    let server = it.server_cores?.median;
    let own = it.process_cores?.median;
    let machine = it.machine_cores?.median;
    let others = it.other_cores.map_or(0.0, |s| s.median);
    let cores = cores() as f64;
    let median = |s: Option<Stat>| s.map_or(f64::NAN, |s| s.median);
    let mut evidence = format!(
        "during `{}` LocalStack used {server:.2} cores, the forwarder {own:.2}, other processes {others:.2}, the whole machine \
         {machine:.2} of {cores}; during the ceiling LocalStack used {:.2} cores. LocalStack spent {:.2} ms of CPU per request \
         here against {:.2} ms in the ceiling; the forwarder used {:.2} ms of CPU per event, the ceiling's SDK client {:.2} ms",
        method.label(),
        median(ceiling.server_cores),
        median(it.server_ms_per_request),
        median(ceiling.server_ms_per_request),
        median(it.cpu_per_10k) / 10.0,
        median(ceiling.cpu_per_10k) / 10.0,
    );
    let at_same = workload
        .ceiling_sweep
        .iter()
        .find(|(c, _)| method == Method::Send && *c == super::SEND_IN_FLIGHT);
    if let Some((in_flight, at_same)) =
        at_same.and_then(|(c, rates)| Some((c, Stat::of(rates.iter().copied())?)))
    {
        let _ = write!(
            evidence,
            "; with {in_flight} requests in flight, like the forwarder, the ceiling's sweep reached {} events/s (median), \
             against {} at its best concurrency ({})",
            thousands(at_same.median),
            thousands(median(ceiling.rate)),
            ceiling_row.concurrency
        );
    }
    let verdict = if server >= 0.85 {
        "the server's CPU: LocalStack is one Python process that serialises requests on its interpreter lock, so about one core is all it can use"
    } else if machine >= 0.9 * cores && others >= 0.5 {
        "the machine's CPU, which other processes were using too: LocalStack got less than the core it can use"
    } else if machine >= 0.9 * cores {
        "the machine's CPU: the forwarder, its client and LocalStack share its cores and keep them busy"
    } else if own >= 0.85 {
        "the forwarder's CPU"
    } else {
        "the round trip: no process is CPU-bound, so throughput is requests in flight times entries per request over the latency"
    };
    Some(format!("{verdict} ({evidence})"))
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

fn thousands(value: f64) -> String {
    if value == 0.0 {
        "0".to_owned()
    } else if value >= 100.0 {
        let digits = format!("{:.0}", value);
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// `median (min–max)`, or the median alone when the repetitions agree or there is one.
fn cell(stat: Option<Stat>, show: impl Fn(f64) -> String) -> String {
    match stat {
        None => "–".to_owned(),
        Some(s) => {
            let (median, min, max) = (show(s.median), show(s.min), show(s.max));
            if min == max {
                median
            } else {
                format!("{median} ({min}–{max})")
            }
        }
    }
}

/// The report in Markdown.
pub(crate) fn markdown(results: &Results<'_>) -> String {
    let settings = results.settings;
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmark: the forwarder against the ceiling\n");
    let _ = writeln!(
        out,
        "`cargo xtask bench{}` on {}; LocalStack (host backend) as the server. Each figure is the median of {} \
         repetition(s), with min–max in brackets; \"vs ceiling\" divides each repetition by the ceiling's run of the same \
         repetition.\n",
        if settings.quick { " --quick" } else { "" },
        machine(),
        settings.reps
    );
    let _ = writeln!(
        out,
        "| workload | method | in flight | events/s | vs ceiling | requests/event | billing units/event | CPU s/10k events | peak RSS MiB | latency p50 / p99 ms |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for workload in &results.workloads {
        for method in Method::ALL {
            let Some(row) = row(workload, method) else {
                continue;
            };
            let f = figures(row);
            let versus = cell(ratio(workload, method), |v| format!("{:.0}%", v * 100.0));
            let latency = match (f.p50, f.p99) {
                (Some(p50), Some(p99)) => format!("{:.1} / {:.1}", p50.median, p99.median),
                _ => "–".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {} ({}) | {} | {} | {} | {versus} | {} | {} | {} | {} | {latency} |",
                workload.plan.size.name(),
                workload.plan.size.short(),
                method.label(),
                row.concurrency,
                cell(f.rate, thousands),
                cell(f.requests, |v| format!("{v:.3}")),
                cell(f.units, |v| format!("{v:.3}")),
                cell(f.cpu_per_10k, |v| format!("{v:.2}")),
                cell(f.rss_mib, |v| format!("{v:.1}")),
            );
        }
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
            super::SEND_IN_FLIGHT,
            mib(s.usage.peak_rss),
        );
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
                    workload.plan.size.name(),
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
    for workload in &results.workloads {
        for method in Method::ALL {
            let Some(row) = row(workload, method) else {
                continue;
            };
            let f = figures(row);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                workload.plan.size.name(),
                method.label(),
                cell(f.server_cores, |v| format!("{v:.2}")),
                cell(f.process_cores, |v| format!("{v:.2}")),
                cell(f.other_cores, |v| format!("{v:.2}")),
                cell(f.machine_cores, |v| format!("{v:.2}")),
                cell(f.server_ms_per_request, |v| format!("{v:.2}")),
            );
        }
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
        settings
            .sweep
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(out, "|---|---|{}", "---:|".repeat(settings.sweep.len()));
    for workload in &results.workloads {
        for (label, points) in [
            ("ceiling", &workload.ceiling_sweep),
            ("1 request/event", &workload.per_event_sweep),
        ] {
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
                workload.plan.size.name(),
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

fn memory_text(memory: &MemoryResult) -> String {
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
                super::MEMORY_RUN_CAP >> 20,
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

fn notes(results: &Results<'_>) -> Vec<String> {
    let settings = results.settings;
    let mut notes = vec![
        format!(
            "The ceiling sends each line as the message body, as full as SQS allows: ten entries per `SendMessageBatch`, or \
             fewer when 1 MiB comes first (one 900 KiB event per request). Its requests are built before its clock starts, and \
             in each repetition it is the best point of a sweep over 1, 2, 4, 8 and 16 requests in flight (its \"in flight\" \
             column is the best by median); the forwarder runs with its defaults ({} requests in flight, 5 ms \
             linger) and its time is the whole process, start-up and reading included.",
            super::SEND_IN_FLIGHT
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
    let peaks: Vec<(String, f64)> = results
        .workloads
        .iter()
        .filter_map(|w| {
            Some((
                w.plan.size.name().to_owned(),
                figures(row(w, Method::Send)?).rss_mib?.max,
            ))
        })
        .collect();
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

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "an unknown CPU".to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or_else(String::new, |kib| {
            format!(", {:.0} GiB RAM", kib as f64 / 1048576.0)
        });
    format!("{} cores ({model}){memory}", cores())
}

fn sample_json(s: &Sample) -> Value {
    json!({
        "seconds": s.seconds,
        "sent": s.sent,
        "failed": s.failed,
        "requests": s.requests,
        "billingUnits": s.billing_units,
        "cpuSeconds": s.usage.cpu,
        "processWallSeconds": s.usage.wall,
        "peakRssBytes": s.usage.peak_rss,
        "localstackCpuSeconds": s.server_cpu,
        "machineBusyCpuSeconds": s.machine_busy,
        "httpClientCpuSeconds": s.client_cpu,
        "windowSeconds": s.window,
        "p50Ms": s.p50_ms,
        "p99Ms": s.p99_ms,
        "inQueue": s.in_queue,
    })
}

fn to_json(results: &Results<'_>) -> Value {
    let stat = |s: Option<Stat>| s.map_or(Value::Null, Stat::json);
    let workloads: Vec<Value> = results
        .workloads
        .iter()
        .map(|w| {
            let rows: Vec<Value> = w
                .rows
                .iter()
                .map(|row| {
                    let f = figures(row);
                    json!({
                        "method": row.method.key(),
                        "label": row.method.label(),
                        "concurrency": row.concurrency,
                        "eventsPerSecond": stat(f.rate),
                        "ratioToCeiling": stat(ratio(w, row.method)),
                        "requestsPerEvent": stat(f.requests),
                        "billingUnitsPerEvent": stat(f.units),
                        "cpuSecondsPer10kEvents": stat(f.cpu_per_10k),
                        "peakRssMiB": stat(f.rss_mib),
                        "localstackCores": stat(f.server_cores),
                        "processCores": stat(f.process_cores),
                        "machineCores": stat(f.machine_cores),
                        "otherProcessesCores": stat(f.other_cores),
                        "localstackCpuMsPerRequest": stat(f.server_ms_per_request),
                        "latencyP50Ms": stat(f.p50),
                        "latencyP99Ms": stat(f.p99),
                        "samples": row.samples.iter().map(sample_json).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let sweep = |points: &[(usize, Vec<f64>)]| -> Vec<Value> {
                points
                    .iter()
                    .map(|(c, rates)| json!({ "concurrency": c, "eventsPerSecond": rates }))
                    .collect()
            };
            json!({
                "name": w.plan.size.name(),
                "eventBytes": w.plan.size.target_bytes(),
                "events": w.plan.events,
                "fileBytes": w.file_bytes,
                "perEventEvents": w.plan.per_event,
                "serveEvents": w.plan.serve,
                "ceilingSweep": sweep(&w.ceiling_sweep),
                "perEventSweep": sweep(&w.per_event_sweep),
                "limit": {
                    "send": limit(w, Method::Send),
                    "serve": limit(w, Method::Serve),
                },
                "rows": rows,
            })
        })
        .collect();
    let memory = results.memory.as_ref().map(|m| {
        json!({
            "workload": m.size.name(),
            "bytes": m.bytes,
            "events": m.events,
            "peakRssMiB": mib(m.sample.usage.peak_rss),
            "earlyPeakRssMiB": mib(m.early_peak_rss),
            "stoppedAtBytes": m.stopped_at,
            "sample": sample_json(&m.sample),
            "timeline": m
                .timeline
                .iter()
                .map(|(seconds, fed, rss)| json!({ "seconds": seconds, "bytesFed": fed, "rssBytes": rss }))
                .collect::<Vec<_>>(),
        })
    });
    let targets: Vec<Value> = targets(results)
        .into_iter()
        .map(|t| json!({ "target": t.name, "measured": t.measured, "met": t.pass }))
        .collect();
    json!({
        "machine": machine(),
        "cores": cores(),
        "quick": results.settings.quick,
        "repetitions": results.settings.reps,
        "workloads": workloads,
        "memory": memory,
        "targets": targets,
        "idle": results
            .idle
            .iter()
            .map(|(when, load)| json!({ "when": when, "localstackCores": load.localstack, "machineCores": load.machine }))
            .collect::<Vec<_>>(),
        "timingsSeconds": results.timings.iter().map(|(phase, s)| json!({ "phase": phase, "seconds": s })).collect::<Vec<_>>(),
    })
}

/// Events/s by workload: one panel per workload (their scales differ a thousandfold), a bar per
/// method with its min–max, and a legend.
fn svg(results: &Results<'_>) -> String {
    const COLORS: [&str; 5] = ["#6b7280", "#2563eb", "#0891b2", "#f59e0b", "#dc2626"];
    let (panel_w, panel_h, top, left, gap) = (300.0, 260.0, 70.0, 60.0, 70.0);
    let panels = results.workloads.len().max(1) as f64;
    let width = left + panels * (panel_w + gap);
    let height = top + panel_h + 60.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{left}" y="20" font-size="14" font-weight="bold">Events per second by workload (median, min–max)</text>"#
    );
    let mut x = left;
    for (i, method) in Method::ALL.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<rect x="{x:.0}" y="32" width="10" height="10" fill="{}"/><text x="{:.0}" y="41">{}</text>"#,
            COLORS[i],
            x + 14.0,
            escape(method.label())
        );
        // About 6 pixels a character at this size.
        x += 14.0 + method.label().chars().count() as f64 * 6.0 + 18.0;
    }
    for (p, workload) in results.workloads.iter().enumerate() {
        let x0 = left + p as f64 * (panel_w + gap);
        let rows: Vec<(usize, Stat)> = Method::ALL
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some((i, figures(row(workload, *m)?).rate?)))
            .collect();
        let top_value = nice(rows.iter().map(|(_, s)| s.max).fold(0.0, f64::max));
        let y = |v: f64| top + panel_h - v / top_value * panel_h;
        let count = ticks(top_value);
        for tick in 0..=count {
            let v = top_value * tick as f64 / count as f64;
            let _ = writeln!(
                out,
                r##"<line x1="{x0}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e7eb"/><text x="{}" y="{:.1}" text-anchor="end" fill="#374151">{}</text>"##,
                x0 + panel_w,
                x0 - 4.0,
                y(v) + 4.0,
                thousands(v),
                y = y(v)
            );
        }
        let slot = panel_w / Method::ALL.len() as f64;
        for (i, stat) in &rows {
            let bx = x0 + *i as f64 * slot + slot * 0.15;
            let bw = slot * 0.7;
            let _ = writeln!(
                out,
                r#"<rect x="{bx:.1}" y="{:.1}" width="{bw:.1}" height="{:.1}" fill="{}"><title>{}: {:.1} events/s</title></rect>"#,
                y(stat.median),
                top + panel_h - y(stat.median),
                COLORS[*i],
                escape(Method::ALL[*i].label()),
                stat.median
            );
            let cx = bx + bw / 2.0;
            let _ = writeln!(
                out,
                r##"<line x1="{cx:.1}" x2="{cx:.1}" y1="{:.1}" y2="{:.1}" stroke="#111827"/><text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"##,
                y(stat.min),
                y(stat.max),
                y(stat.max) - 4.0,
                thousands(stat.median)
            );
        }
        let (right, base, middle) = (x0 + panel_w, top + panel_h, x0 + panel_w / 2.0);
        let _ = writeln!(
            out,
            r##"<line x1="{x0}" x2="{right}" y1="{base}" y2="{base}" stroke="#111827"/><text x="{middle}" y="{}" text-anchor="middle" font-size="12">{}: {}</text>"##,
            base + 20.0,
            workload.plan.size.name(),
            escape(workload.plan.size.describe())
        );
    }
    out.push_str("</svg>\n");
    out
}

/// A round upper bound for an axis.
fn nice(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= max * 1.05)
        .unwrap_or(10.0 * magnitude)
}

/// How many intervals divide an axis up to `top` (from [`nice`]) into round steps.
fn ticks(top: f64) -> usize {
    let magnitude = 10f64.powf(top.log10().floor());
    let steps = [5.0, 2.5, 2.0, 1.0, 0.5, 0.25, 0.2, 0.1].map(|m| m * magnitude);
    steps
        .iter()
        .map(|step| top / step)
        .find(|n| (n - n.round()).abs() < 1e-9 && (3.0..=6.0).contains(n))
        .map_or(4, |n| n.round() as usize)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics() {
        let check = |values: &[f64], expected: Option<(f64, f64, f64)>| {
            let stat = Stat::of(values.iter().copied()).map(|s| (s.median, s.min, s.max));
            assert_eq!(stat, expected, "{values:?}");
        };
        check(&[], None);
        check(&[3.0], Some((3.0, 3.0, 3.0)));
        check(&[3.0, 1.0], Some((2.0, 1.0, 3.0)));
        check(&[5.0, 1.0, 3.0], Some((3.0, 1.0, 5.0)));
    }

    #[test]
    fn numbers() {
        let check = |value: f64, expected: &str| assert_eq!(thousands(value), expected);
        check(1234567.4, "1,234,567");
        check(999.6, "1,000");
        check(123.0, "123");
        check(45.67, "45.7");
        check(1.234, "1.23");
        assert_eq!(nice(95.0), 100.0);
        assert_eq!(nice(2300.0), 2500.0);
        assert_eq!(nice(2797.0), 3000.0);
        for (top, expected) in [
            (150.0, 3),
            (3000.0, 3),
            (5000.0, 5),
            (2500.0, 5),
            (100.0, 4),
            (400.0, 4),
            (6.0, 3),
        ] {
            assert_eq!(ticks(top), expected, "{top}");
        }
        check(0.0, "0");
    }
}
