//! `report.json`: every sample of every run, with the figures and targets of the markdown report.

use serde_json::{Value, json};

use super::Results;
use super::figures::{Stat, cores, figures, limit, machine, ratio, targets};
use super::units::mib;
use crate::bench::results::{Method, Sample};

pub(super) fn sample_json(s: &Sample) -> Value {
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
        "inFlightLimit": s.in_flight_limit.map(|(last, peak)| json!({ "last": last, "peak": peak })),
    })
}

pub(super) fn to_json(results: &Results<'_>) -> Value {
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
                "rttMs": w.rtt_ms,
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
