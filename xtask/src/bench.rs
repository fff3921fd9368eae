//! `cargo xtask bench [--quick] [--reps N] [--rtt 0,20,60]`: the forwarder against the server's
//! ceiling and the usual alternatives, in one run and on the same events.
//!
//! For each workload (small, medium and large events) it measures, on the embedded LocalStack:
//! the ceiling (full `SendMessageBatch` requests straight from the SDK, the best point of a short
//! concurrency sweep in each repetition), `forwarder send` as a separate process, one
//! `SendMessage` per event (sequential, and at the best concurrency of its own sweep), and
//! `forwarder serve` fed by a concurrent HTTP client. With `--rtt`, the ceiling's sweep and
//! `forwarder send` run again behind a delay proxy (`delay`) that adds each round trip to
//! every request, a stand-in for a distant endpoint. Then a memory run streams gigabytes
//! through `forwarder send`. The SDK and HTTP loads come from the forwarder's `sqs_load`
//! example, so that xtask does not build the AWS SDK. The workloads (NDJSON) and the results
//! (`report.{md,json,svg}`) go to `target/bench/`.

mod consume;
mod delay;
mod idle;
mod measure;
mod memory;
mod report;
mod results;
mod runs;
mod samples;
mod schedule;
mod settings;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::run;
use delay::DelayProxy;
use idle::idle_load;
use memory::memory_run;
use results::{MemoryResult, WorkloadResult};
use runs::Bench;
use schedule::measure_workload;
use settings::{Settings, USAGE};

pub(crate) fn run(args: &[String]) -> Result<ExitCode> {
    if args.first().is_some_and(|a| a == "consume") {
        return consume::run(&args[1..]);
    }
    if args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    let settings = Settings::parse(args)?;
    let started = Instant::now();
    let mut timings = Vec::new();
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;

    let phase = Instant::now();
    build_release(&["sqs_load"])?;
    timings.push(("release build".to_owned(), phase.elapsed().as_secs_f64()));

    let phase = Instant::now();
    let config = localstack::Config::from_env()?;
    let instance = localstack::start(&config)?;
    let localstack_pid = localstack::status(&config)
        .ok()
        .flatten()
        .map(|state| state.pid);
    timings.push(("LocalStack start".to_owned(), phase.elapsed().as_secs_f64()));
    eprintln!(
        "bench: LocalStack at {} ({}); {} repetition(s){}",
        instance.endpoint(),
        localstack_pid.map_or_else(
            || "pid unknown: its CPU is not measured".to_owned(),
            |pid| format!("pid {pid}")
        ),
        settings.reps,
        if settings.quick { ", quick sizes" } else { "" }
    );

    let release = target_dir().join("release");
    let mut bench = Bench {
        forwarder: release.join("forwarder"),
        load: release.join("examples").join("sqs_load"),
        endpoint: instance.endpoint().to_owned(),
        queue_url: String::new(),
        localstack_pid,
        dir: dir.clone(),
    };
    let name = format!("xtask-bench-{}", std::process::id());
    let created = bench.load_json(&["create-queue", "--name", &name])?;
    bench.queue_url = created["queueUrl"]
        .as_str()
        .context("create-queue gave no queueUrl")?
        .to_owned();

    let mut idle = vec![("before the runs", idle_load(localstack_pid))];
    let outcome = measure_all(&bench, &settings, &mut timings);
    idle.push(("after the runs", idle_load(localstack_pid)));
    // The queue goes whatever happened, and a failure to delete it does not hide the outcome.
    if let Err(error) = bench.load_json(&["delete-queue", "--queue-url", &bench.queue_url]) {
        eprintln!(
            "bench: warning: the queue {} was not deleted: {error:#}",
            bench.queue_url
        );
    }
    let (workloads, memory) = outcome?;
    timings.push(("total".to_owned(), started.elapsed().as_secs_f64()));

    let results = report::Results {
        settings: &settings,
        workloads,
        memory,
        timings,
        idle,
    };
    let paths = report::write(&results, &dir)?;
    for path in &paths {
        eprintln!("bench: wrote {}", path.display());
    }
    print!("{}", report::markdown(&results));
    Ok(ExitCode::SUCCESS)
}

fn measure_all(
    bench: &Bench,
    settings: &Settings,
    timings: &mut Vec<(String, f64)>,
) -> Result<(Vec<WorkloadResult>, Option<MemoryResult>)> {
    let mut results = Vec::new();
    for rtt in &settings.rtts {
        // Behind the proxy, the same queue through another endpoint.
        let proxy = match rtt {
            0 => None,
            ms => Some(DelayProxy::start(
                &bench.endpoint,
                std::time::Duration::from_millis(*ms),
            )?),
        };
        let bench = Bench {
            endpoint: proxy
                .as_ref()
                .map_or_else(|| bench.endpoint.clone(), DelayProxy::endpoint),
            ..bench.clone()
        };
        for plan in &settings.workloads {
            let phase = Instant::now();
            results.push(measure_workload(&bench, settings, *plan, *rtt)?);
            timings.push((
                format!("{} events, {rtt} ms round trip", plan.size.name()),
                phase.elapsed().as_secs_f64(),
            ));
        }
    }
    let phase = Instant::now();
    let memory = memory_run(bench, settings.memory_size, settings.memory_bytes)?;
    timings.push(("memory run".to_owned(), phase.elapsed().as_secs_f64()));
    Ok((results, Some(memory)))
}

/// The target directory: `CARGO_TARGET_DIR`, or `target` under the project root.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| localstack::project_root().join("target"))
}

/// Builds the release forwarder and the forwarder's `examples` the bench runs.
fn build_release(examples: &[&str]) -> Result<()> {
    let mut command = run::cargo();
    command.args([
        "build",
        "--release",
        "-p",
        "forwarder",
        "--bin",
        "forwarder",
    ]);
    for example in examples {
        command.args(["--example", example]);
    }
    run::checked(&mut command)
}
