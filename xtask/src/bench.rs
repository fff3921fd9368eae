//! `cargo xtask bench [--quick] [--reps N]`: the forwarder against the server's ceiling and the
//! usual alternatives, in one run and on the same events.
//!
//! For each workload (small, medium and large events) it measures, on the embedded LocalStack:
//! the ceiling (full `SendMessageBatch` requests straight from the SDK, the best point of a short
//! concurrency sweep in each repetition), `forwarder send` as a separate process, one
//! `SendMessage` per event (sequential, and at the best concurrency of its own sweep), and
//! `forwarder serve` fed by a concurrent HTTP client. Then a memory run streams gigabytes
//! through `forwarder send`. The SDK and HTTP loads come from the forwarder's `sqs_load`
//! example, so that xtask does not build the AWS SDK. The workloads (NDJSON) and the results
//! (`report.{md,json,svg}`) go to `target/bench/`.

mod measure;
mod report;
mod workload;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::run;
use measure::{Measured, Usage};
use workload::Size;

/// Requests in flight of `forwarder send`: its default `--max-in-flight`.
const SEND_IN_FLIGHT: usize = 8;

pub(crate) fn run(args: &[String]) -> Result<ExitCode> {
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
    run::checked(run::cargo().args([
        "build",
        "--release",
        "-p",
        "forwarder",
        "--bin",
        "forwarder",
        "--example",
        "sqs_load",
    ]))?;
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

/// What to run, from the flags.
#[derive(Debug)]
pub(crate) struct Settings {
    quick: bool,
    reps: usize,
    workloads: Vec<Plan>,
    /// Concurrencies of the sweeps.
    sweep: Vec<usize>,
    /// Requests in flight of the HTTP client in front of `forwarder serve`.
    serve_concurrency: usize,
    memory_size: Size,
    memory_bytes: u64,
}

/// How many events of one size each kind of run sends.
#[derive(Debug, Clone, Copy)]
struct Plan {
    size: Size,
    /// The events of the file: the ceiling, `send` and `serve` send them all.
    events: usize,
    /// The events of each point of the ceiling's sweep, which runs in every repetition.
    sweep_events: usize,
    /// The events of each one-request-per-event run.
    per_event: usize,
    /// The events of each point of the one-request-per-event sweep.
    per_event_sweep: usize,
    /// The events of each `serve` run.
    serve: usize,
}

const USAGE: &str = "usage: cargo xtask bench [--quick] [--reps N]";

impl Settings {
    fn parse(args: &[String]) -> Result<Settings> {
        let mut quick = false;
        let mut reps = None;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => quick = true,
                "--reps" => {
                    let n = args.next().context(USAGE)?;
                    reps = Some(n.parse::<usize>().ok().filter(|n| *n > 0).context(USAGE)?);
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
            sweep: vec![1, 2, 4, 8, 16],
            serve_concurrency: 32,
            memory_size: Size::Large,
            memory_bytes,
        })
    }
}

/// How a workload's events were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Ceiling,
    Send,
    Serve,
    PerEventConcurrent,
    PerEventSequential,
}

impl Method {
    const ALL: [Method; 5] = [
        Method::Ceiling,
        Method::Send,
        Method::Serve,
        Method::PerEventConcurrent,
        Method::PerEventSequential,
    ];

    fn key(self) -> &'static str {
        match self {
            Method::Ceiling => "ceiling",
            Method::Send => "send",
            Method::Serve => "serve",
            Method::PerEventConcurrent => "perEventConcurrent",
            Method::PerEventSequential => "perEventSequential",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Method::Ceiling => "ceiling (SDK, full batches)",
            Method::Send => "forwarder send",
            Method::Serve => "forwarder serve (HTTP)",
            Method::PerEventConcurrent => "1 request/event, concurrent",
            Method::PerEventSequential => "1 request/event, sequential",
        }
    }
}

/// One measured run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sample {
    /// The time the throughput is computed over: `send`'s whole process, or the load
    /// generator's first request to last answer.
    seconds: f64,
    sent: u64,
    failed: u64,
    requests: Option<u64>,
    billing_units: Option<u64>,
    /// The forwarder's process (`send`, `serve`), or the SDK client's.
    usage: Usage,
    /// The CPU seconds of the HTTP client in front of `serve`.
    client_cpu: Option<f64>,
    /// LocalStack's CPU seconds over the run.
    server_cpu: Option<f64>,
    /// Busy CPU seconds of the whole machine over the run, and the run's wall time.
    machine_busy: Option<f64>,
    window: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    /// Messages the queue held afterwards, to check that what was reported sent arrived.
    in_queue: Option<u64>,
}

/// The repetitions of one method on one workload.
#[derive(Debug)]
pub(crate) struct Row {
    method: Method,
    concurrency: usize,
    samples: Vec<Sample>,
}

/// Everything measured on one workload.
#[derive(Debug)]
pub(crate) struct WorkloadResult {
    plan: Plan,
    file_bytes: u64,
    rows: Vec<Row>,
    /// Events per second at each concurrency of the sweeps: the ceiling's, one per
    /// repetition, and one request per event's, once.
    ceiling_sweep: Vec<(usize, Vec<f64>)>,
    per_event_sweep: Vec<(usize, Vec<f64>)>,
}

/// The memory run: gigabytes through `forwarder send` from a pipe.
#[derive(Debug)]
pub(crate) struct MemoryResult {
    size: Size,
    bytes: u64,
    events: u64,
    sample: Sample,
    /// Peak RSS once a tenth of the input was through, and at the end.
    early_peak_rss: u64,
    /// (seconds, bytes fed, RSS) along the run.
    timeline: Vec<(f64, u64, u64)>,
    /// Bytes fed when the forwarder was stopped for going over [`MEMORY_RUN_CAP`].
    stopped_at: Option<u64>,
}

/// The programs and the queue of a benchmark run.
#[derive(Debug)]
struct Bench {
    forwarder: PathBuf,
    load: PathBuf,
    endpoint: String,
    queue_url: String,
    localstack_pid: Option<u32>,
    dir: PathBuf,
}

fn measure_all(
    bench: &Bench,
    settings: &Settings,
    timings: &mut Vec<(String, f64)>,
) -> Result<(Vec<WorkloadResult>, Option<MemoryResult>)> {
    let mut results = Vec::new();
    for plan in &settings.workloads {
        let phase = Instant::now();
        results.push(measure_workload(bench, settings, *plan)?);
        timings.push((
            format!("{} events", plan.size.name()),
            phase.elapsed().as_secs_f64(),
        ));
    }
    let phase = Instant::now();
    let memory = memory_run(bench, settings.memory_size, settings.memory_bytes)?;
    timings.push(("memory run".to_owned(), phase.elapsed().as_secs_f64()));
    Ok((results, Some(memory)))
}

fn measure_workload(bench: &Bench, settings: &Settings, plan: Plan) -> Result<WorkloadResult> {
    let name = plan.size.name();
    let file = bench.dir.join(format!("{name}.ndjson"));
    let file_bytes = workload::write_file(&file, plan.size, plan.events)
        .with_context(|| format!("cannot write {}", file.display()))?;
    eprintln!(
        "bench: {name}: {} events, {}, {:.1} MiB",
        plan.events,
        plan.size.describe(),
        file_bytes as f64 / 1048576.0
    );
    let rate = |sample: &Sample| sample.sent as f64 / sample.seconds.max(1e-9);
    let sweep_points =
        || -> Vec<(usize, Vec<f64>)> { settings.sweep.iter().map(|c| (*c, Vec::new())).collect() };

    // One request per event is slow: its sweep runs once, before the repetitions.
    let mut per_event_sweep = sweep_points();
    for (concurrency, rates) in &mut per_event_sweep {
        let sample =
            bench.load_run("per-event", &file, *concurrency, Some(plan.per_event_sweep))?;
        rates.push(rate(&sample));
    }
    log_sweep(name, "1 request/event", &per_event_sweep);
    let per_event_best = best(&per_event_sweep);

    let mut ceiling_sweep = sweep_points();
    let mut rows: Vec<Row> = [
        (Method::Ceiling, 0),
        (Method::Send, SEND_IN_FLIGHT),
        (Method::Serve, settings.serve_concurrency),
        (Method::PerEventConcurrent, per_event_best),
        (Method::PerEventSequential, 1),
    ]
    .into_iter()
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
                            Some(plan.sweep_events),
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
        file_bytes,
        rows,
        ceiling_sweep,
        per_event_sweep,
    })
}

/// The concurrency whose median rate is the highest.
fn best(points: &[(usize, Vec<f64>)]) -> usize {
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

fn log_sweep(name: &str, what: &str, points: &[(usize, Vec<f64>)]) {
    let shown: Vec<String> = points
        .iter()
        .filter_map(|(c, rates)| Some(format!("{c}: {:.0}/s", rates.last()?)))
        .collect();
    eprintln!("bench: {name}: {what} sweep: {}", shown.join(", "));
}

impl Bench {
    /// The load generator, with LocalStack's credentials.
    fn load_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.load);
        command.args(args);
        credentials(&mut command);
        command
    }

    /// Runs a queue subcommand of the load generator (not measured) and returns its JSON.
    fn load_json(&self, args: &[&str]) -> Result<Value> {
        let output = self
            .load_command(args)
            .args(["--endpoint-url", &self.endpoint])
            .output()
            .with_context(|| format!("cannot run {}", self.load.display()))?;
        if !output.status.success() {
            bail!(
                "sqs_load {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        serde_json::from_slice(&output.stdout)
            .with_context(|| format!("sqs_load {}: not JSON", args.join(" ")))
    }

    fn purge(&self) -> Result<()> {
        self.load_json(&["purge", "--queue-url", &self.queue_url])
            .map(drop)
    }

    fn count(&self) -> Result<u64> {
        let value = self.load_json(&["count", "--queue-url", &self.queue_url])?;
        value["messages"].as_u64().context("count gave no number")
    }

    /// Purges the queue, runs `run` while counting LocalStack's and the machine's CPU, and
    /// counts what the queue then holds.
    fn around(&self, count: bool, run: impl FnOnce() -> Result<Sample>) -> Result<Sample> {
        self.purge()?;
        let server = self
            .localstack_pid
            .and_then(measure::cpu_seconds)
            .map(|(cpu, _)| cpu);
        let machine = measure::machine_cpu();
        let started = Instant::now();
        let mut sample = run()?;
        sample.window = started.elapsed().as_secs_f64();
        let server_after = self
            .localstack_pid
            .and_then(measure::cpu_seconds)
            .map(|(cpu, _)| cpu);
        sample.server_cpu = server
            .zip(server_after)
            .map(|(before, after)| after - before);
        sample.machine_busy = machine
            .zip(measure::machine_cpu())
            .map(|(before, after)| after.0 - before.0);
        if count {
            sample.in_queue = Some(self.count()?);
        }
        Ok(sample)
    }

    /// A measured `ceiling` or `per-event` run of the load generator.
    fn load_run(
        &self,
        subcommand: &str,
        file: &Path,
        concurrency: usize,
        limit: Option<usize>,
    ) -> Result<Sample> {
        let concurrency = concurrency.to_string();
        let limit = limit.map(|l| l.to_string());
        self.around(true, || {
            let mut command = self.load_command(&[subcommand, "--queue-url", &self.queue_url]);
            command
                .args([
                    "--endpoint-url",
                    &self.endpoint,
                    "--concurrency",
                    &concurrency,
                ])
                .arg("--file")
                .arg(file);
            if let Some(limit) = &limit {
                command.args(["--limit", limit]);
            }
            let (child, _) = Measured::spawn(&mut command, false)?;
            let finished = checked(child.wait()?, "sqs_load")?;
            let mut sample = load_sample(&finished.stdout)?;
            sample.usage = finished.usage;
            Ok(sample)
        })
    }

    /// A measured `forwarder send` of `file`.
    fn send_run(&self, file: &Path) -> Result<Sample> {
        self.around(true, || {
            let mut command = self.send_command();
            command.arg(file);
            let (child, _) = Measured::spawn(&mut command, false)?;
            let finished = child.wait()?;
            let mut sample = send_sample(&finished)?;
            sample.seconds = finished.usage.wall;
            sample.usage = finished.usage;
            Ok(sample)
        })
    }

    fn send_command(&self) -> Command {
        let mut command = Command::new(&self.forwarder);
        command
            .args(["send", "--summary-json", "--queue-url", &self.queue_url])
            .args([
                "--endpoint-url",
                &self.endpoint,
                "--region",
                localstack::REGION,
            ]);
        credentials(&mut command);
        command
    }

    /// `forwarder serve` started afresh, fed by the load generator's HTTP client.
    fn serve_run(&self, file: &Path, concurrency: usize, events: usize) -> Result<Sample> {
        self.around(true, || {
            let mut command = Command::new(&self.forwarder);
            command
                .args([
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--queue-url",
                    &self.queue_url,
                ])
                .args([
                    "--endpoint-url",
                    &self.endpoint,
                    "--region",
                    localstack::REGION,
                ]);
            credentials(&mut command);
            let (address_tx, address_rx) = std::sync::mpsc::channel();
            let (server, _) = Measured::spawn_watching(&mut command, false, move |line| {
                if let Some(address) = line.strip_prefix("listening on ") {
                    let _ = address_tx.send(address.trim().to_owned());
                }
            })?;
            let Ok(url) = address_rx.recv_timeout(Duration::from_secs(30)) else {
                let finished = server.kill()?;
                bail!(
                    "forwarder serve did not start listening:\n{}",
                    finished.stderr.trim()
                );
            };
            let mut load = self.load_command(&["serve", "--url", &url]);
            load.args([
                "--concurrency",
                &concurrency.to_string(),
                "--limit",
                &events.to_string(),
            ])
            .arg("--file")
            .arg(file);
            let (client, _) = Measured::spawn(&mut load, false)?;
            let finished = client.wait();
            let server = server.kill()?;
            let finished = checked(finished?, "sqs_load serve")?;
            let mut sample = load_sample(&finished.stdout)?;
            sample.usage = server.usage;
            sample.client_cpu = Some(finished.usage.cpu);
            Ok(sample)
        })
    }
}

/// What LocalStack and the machine do while the benchmark sends nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdleLoad {
    /// LocalStack's cores busy: other clients of the shared instance.
    localstack: Option<f64>,
    /// The whole machine's cores busy.
    machine: Option<f64>,
}

/// Looks at the CPU of LocalStack and of the machine for two seconds of quiet.
fn idle_load(localstack_pid: Option<u32>) -> IdleLoad {
    const QUIET: Duration = Duration::from_secs(2);
    let server = localstack_pid.and_then(measure::cpu_seconds);
    let machine = measure::machine_cpu();
    std::thread::sleep(QUIET);
    let per_second = |before: f64, after: f64| (after - before) / QUIET.as_secs_f64();
    IdleLoad {
        localstack: server
            .zip(localstack_pid.and_then(measure::cpu_seconds))
            .map(|((before, _), (after, _))| per_second(before, after)),
        machine: machine
            .zip(measure::machine_cpu())
            .map(|((before, _), (after, _))| per_second(before, after)),
    }
}

/// The memory run stops the forwarder if its RSS goes over this, to spare the machine.
const MEMORY_RUN_CAP: u64 = 2 << 30;

/// Streams `bytes` of NDJSON through `forwarder send` from a pipe, purging the queue as it fills.
fn memory_run(bench: &Bench, size: Size, bytes: u64) -> Result<MemoryResult> {
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

fn credentials(command: &mut Command) {
    command
        .env("AWS_ACCESS_KEY_ID", localstack::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", localstack::SECRET_KEY)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_DISABLED", "true");
}

fn checked(finished: measure::Finished, what: &str) -> Result<measure::Finished> {
    if !finished.status.success() {
        bail!(
            "{what} failed ({}):\n{}",
            finished.status,
            finished.stderr.trim()
        );
    }
    Ok(finished)
}

/// The figures the load generator printed.
fn load_sample(stdout: &str) -> Result<Sample> {
    let value: Value = serde_json::from_str(stdout.trim())
        .with_context(|| format!("sqs_load printed `{}`", stdout.trim()))?;
    if let Some(error) = value["firstError"].as_str() {
        eprintln!("bench: warning: {error}");
    }
    Ok(Sample {
        seconds: value["seconds"].as_f64().context("no seconds")?,
        sent: value["sent"].as_u64().unwrap_or(0),
        failed: value["failed"].as_u64().unwrap_or(0),
        requests: value["requests"].as_u64(),
        billing_units: value["billingUnits"].as_u64(),
        p50_ms: value["p50Ms"].as_f64(),
        p99_ms: value["p99Ms"].as_f64(),
        ..Sample::default()
    })
}

/// The figures of `forwarder send --summary-json`.
fn send_sample(finished: &measure::Finished) -> Result<Sample> {
    let line = finished
        .stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| {
            format!(
                "forwarder send printed no summary ({}):\n{}",
                finished.status,
                finished.stderr.trim()
            )
        })?;
    let value: Value = serde_json::from_str(line).context("the summary is not JSON")?;
    if !finished.status.success() {
        eprintln!(
            "bench: warning: forwarder send: {}\n{}",
            finished.status,
            finished.stderr.trim()
        );
    }
    Ok(Sample {
        sent: value["sent"].as_u64().unwrap_or(0),
        failed: value["failed"].as_u64().unwrap_or(0) + value["refused"].as_u64().unwrap_or(0),
        requests: value["requests"].as_u64(),
        billing_units: value["billingUnits"].as_u64(),
        ..Sample::default()
    })
}

/// The target directory: `CARGO_TARGET_DIR`, or `target` under the project root.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| localstack::project_root().join("target"))
}
