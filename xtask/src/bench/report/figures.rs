//! What the three reports share: the statistics of the repetitions, the figures of a row, the
//! targets and where the limit of a method is.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::Results;
use super::units::{cell, gib, mib, thousands};
use crate::bench::results::{Method, Row, Sample, WorkloadResult};
use crate::bench::workload::Size;

/// The peak RSS target of the forwarder.
pub(super) const RSS_TARGET_MIB: f64 = 64.0;

/// The median, least and greatest of the repetitions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stat {
    pub(crate) median: f64,
    pub(super) min: f64,
    pub(super) max: f64,
}

impl Stat {
    pub(crate) fn of(values: impl IntoIterator<Item = f64>) -> Option<Stat> {
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

    pub(super) fn json(self) -> Value {
        json!({ "median": self.median, "min": self.min, "max": self.max })
    }
}

/// The figures of one row, over its repetitions.
#[derive(Debug)]
pub(super) struct Figures {
    pub(super) rate: Option<Stat>,
    pub(super) requests: Option<Stat>,
    pub(super) units: Option<Stat>,
    pub(super) cpu_per_10k: Option<Stat>,
    pub(super) rss_mib: Option<Stat>,
    /// LocalStack's, the measured process's and the whole machine's CPU, in cores.
    pub(super) server_cores: Option<Stat>,
    pub(super) process_cores: Option<Stat>,
    pub(super) machine_cores: Option<Stat>,
    /// What neither LocalStack nor the measured processes (and `serve`'s HTTP client) used.
    pub(super) other_cores: Option<Stat>,
    /// LocalStack's CPU milliseconds per SQS request.
    pub(super) server_ms_per_request: Option<Stat>,
    pub(super) p50: Option<Stat>,
    pub(super) p99: Option<Stat>,
    pub(super) failed: u64,
    /// Runs after which the queue held another number of messages than were reported sent.
    pub(super) mismatches: Vec<(u64, u64)>,
}

pub(super) fn figures(row: &Row) -> Figures {
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

/// The workload's name, and the round trip added when there is one.
pub(super) fn workload_label(workload: &WorkloadResult) -> String {
    match workload.rtt_ms {
        0 => workload.plan.size.name().to_owned(),
        ms => format!("{}, +{ms} ms", workload.plan.size.name()),
    }
}

/// The limit of requests in flight `forwarder send` ended with, and its peak, over the
/// repetitions.
pub(super) fn send_limits(row: &Row) -> Option<(Stat, Stat)> {
    let limits: Vec<(u64, u64)> = row
        .samples
        .iter()
        .filter_map(|s| s.in_flight_limit)
        .collect();
    Some((
        Stat::of(limits.iter().map(|l| l.0 as f64))?,
        Stat::of(limits.iter().map(|l| l.1 as f64))?,
    ))
}

/// "auto (ended at N, peak M)" for `forwarder send`, the number of requests for the others.
pub(super) fn in_flight_cell(row: &Row) -> String {
    if row.method != Method::Send {
        return row.concurrency.to_string();
    }
    match send_limits(row) {
        Some((last, peak)) => format!("auto ({:.0}, peak {:.0})", last.median, peak.median),
        None => "auto".to_owned(),
    }
}

pub(super) fn row(workload: &WorkloadResult, method: Method) -> Option<&Row> {
    workload.rows.iter().find(|r| r.method == method)
}

/// Events/s over the ceiling's, repetition by repetition: each repetition runs the methods one
/// after the other, so a pair shares the machine's conditions.
pub(super) fn ratio(workload: &WorkloadResult, method: Method) -> Option<Stat> {
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

pub(super) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A target, what was measured, and whether it is met (`None`: not measured).
#[derive(Debug)]
pub(super) struct Target {
    pub(super) name: &'static str,
    pub(super) measured: String,
    pub(super) pass: Option<bool>,
}

pub(super) fn targets(results: &Results<'_>) -> Vec<Target> {
    let find = |size: Size| {
        results
            .workloads
            .iter()
            .find(|w| w.plan.size == size && w.rtt_ms == 0)
    };
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
    let ratios: Vec<(String, Option<Stat>)> = results
        .workloads
        .iter()
        .map(|w| (workload_label(w), ratio(w, Method::Send)))
        .collect();
    targets.push(Target {
        name: "forwarder send (auto) >= 95% of the ceiling's best, every workload and round trip",
        measured: ratios
            .iter()
            .map(|(label, r)| format!("{label} {}", cell(*r, |v| format!("{:.0}%", v * 100.0))))
            .collect::<Vec<_>>()
            .join(", "),
        pass: ratios
            .iter()
            .map(|(_, r)| r.map(|r| r.median >= 0.95))
            .collect::<Option<Vec<bool>>>()
            .map(|met| met.iter().all(|m| *m)),
    });
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
    let mut peaks = send_peaks(results);
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
pub(super) fn limit(workload: &WorkloadResult, method: Method) -> Option<String> {
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
    // The sweep's point nearest to where the forwarder's adaptive limit ended.
    let ended = row(workload, method)
        .and_then(send_limits)
        .map(|(last, _)| last.median);
    let at_same = ended.and_then(|ended| {
        workload.ceiling_sweep.iter().min_by(|a, b| {
            (a.0 as f64 - ended)
                .abs()
                .total_cmp(&(b.0 as f64 - ended).abs())
        })
    });
    if let Some((in_flight, at_same)) =
        at_same.and_then(|(c, rates)| Some((c, Stat::of(rates.iter().copied())?)))
    {
        let _ = write!(
            evidence,
            "; with {in_flight} requests in flight, near where the forwarder's limit ended, the ceiling's sweep reached {} \
             events/s (median), against {} at its best concurrency ({})",
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

pub(super) fn machine() -> String {
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

/// The greatest peak RSS of `forwarder send`, in MiB, on each workload.
pub(super) fn send_peaks(results: &Results<'_>) -> Vec<(String, f64)> {
    results
        .workloads
        .iter()
        .filter_map(|w| {
            Some((
                w.plan.size.name().to_owned(),
                figures(row(w, Method::Send)?).rss_mib?.max,
            ))
        })
        .collect()
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
}
