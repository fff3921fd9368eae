//! `cargo xtask bench consume [--quick] [--reps N]`: `forwarder consume` on the embedded NATS
//! server and LocalStack, in one run: 1, 2 and 3 instances sharing one durable consumer (three
//! destinations), 1 instance against 100 destinations (the cost of routing and of many
//! clients), and the two healthy destinations' throughput while the third is black-holed for
//! 15 s by a TCP proxy of the bench's own, as a ratio to their rate through the same proxy
//! undisturbed. Each figure is the median of the repetitions (min-max beside it). The events
//! are published before the clock starts; a run ends when the durable consumer is drained (or,
//! for the healthy rate, when the healthy queues hold their events). Writes
//! `target/bench/consume.{md,json}`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

const OUTAGE: Duration = Duration::from_secs(15);

pub(crate) fn run(args: &[String]) -> Result<ExitCode> {
    let quick = args.iter().any(|a| a == "--quick");
    let reps: usize = match args.iter().position(|a| a == "--reps") {
        Some(i) => args
            .get(i + 1)
            .context("--reps needs a number")?
            .parse()
            .context("--reps needs a number")?,
        None => 3,
    };
    let events: usize = if quick { 4_000 } else { 20_000 };
    super::build_release(&["sqs_load", "nats_stream"])?;
    let target = super::target_dir();
    let dir = target.join("bench").join("consume");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let localstack = localstack::start(&localstack::Config::from_env()?)?;
    let nats = nats_launch::start(&nats_launch::Config::from_env()?)?;
    let release = target.join("release");
    let bench = Tools {
        forwarder: release.join("forwarder"),
        load: release.join("examples").join("sqs_load"),
        stream: release.join("examples").join("nats_stream"),
        endpoint: localstack.endpoint().to_owned(),
        nats: nats.url().to_owned(),
        dir: dir.clone(),
    };
    eprintln!(
        "bench consume: LocalStack at {}, NATS at {}; {events} events, {reps} repetition(s)",
        bench.endpoint, bench.nats
    );
    let proxy = BlackHoleProxy::start(&bench.endpoint)?;
    let mut queues = Vec::new();
    let outcome = measure(&bench, &proxy, events, reps, &mut queues);
    for url in &queues {
        if let Err(e) = bench.load(&["delete-queue", "--queue-url", url]) {
            eprintln!("bench consume: warning: {url} was not deleted: {e:#}");
        }
    }
    let rows = outcome?;
    let report = json!({ "events": events, "repetitions": reps, "quick": quick, "rows": rows });
    let markdown = markdown(&report);
    let json_path = target.join("bench").join("consume.json");
    let md_path = target.join("bench").join("consume.md");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)? + "\n")?;
    std::fs::write(&md_path, &markdown)?;
    eprintln!(
        "bench consume: wrote {} and {}",
        md_path.display(),
        json_path.display()
    );
    print!("{markdown}");
    Ok(ExitCode::SUCCESS)
}

/// The programs and servers of a run.
struct Tools {
    forwarder: PathBuf,
    load: PathBuf,
    stream: PathBuf,
    endpoint: String,
    nats: String,
    dir: PathBuf,
}

/// A destinations directory: its path, and each destination's name and queue URL.
struct Destinations {
    dir: PathBuf,
    queues: Vec<(String, String)>,
}

fn measure(
    bench: &Tools,
    proxy: &BlackHoleProxy,
    events: usize,
    reps: usize,
    queues: &mut Vec<String>,
) -> Result<Vec<Value>> {
    let three = bench.destinations("three", 3, &[], queues)?;
    let hundred = bench.destinations("hundred", 100, &[], queues)?;
    let proxied = bench.destinations("proxied", 3, &[(2, proxy.endpoint())], queues)?;
    let mut samples: Vec<(String, Vec<f64>)> = Vec::new();
    let mut record = |label: String, value: f64| match samples.iter_mut().find(|(l, _)| *l == label)
    {
        Some((_, values)) => values.push(value),
        None => samples.push((label, vec![value])),
    };
    let mut run_id = 0;
    for rep in 0..reps {
        for instances in 1..=3 {
            run_id += 1;
            let seconds = bench.drain_run(run_id, &three, instances, events)?;
            record(
                format!("{instances} instance(s), 3 destinations"),
                events as f64 / seconds,
            );
        }
        run_id += 1;
        let seconds = bench.drain_run(run_id, &hundred, 1, events)?;
        record(
            "1 instance, 100 destinations".to_owned(),
            events as f64 / seconds,
        );
        for hole in [false, true] {
            run_id += 1;
            let rate = bench.healthy_run(run_id, &proxied, events, hole.then_some(proxy))?;
            record(
                if hole {
                    "healthy 2 of 3, third black-holed 15 s".to_owned()
                } else {
                    "healthy 2 of 3, undisturbed".to_owned()
                },
                rate,
            );
        }
        eprintln!("bench consume: repetition {} of {reps} done", rep + 1);
    }
    let ratios: Vec<f64> = {
        let find = |prefix: &str| {
            samples
                .iter()
                .find(|(l, _)| l.ends_with(prefix))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        find("undisturbed")
            .iter()
            .zip(find("black-holed 15 s"))
            .map(|(calm, hole)| hole / calm)
            .collect()
    };
    let mut rows: Vec<Value> = samples
        .iter()
        .map(|(label, values)| row(label, "events/s", values))
        .collect();
    rows.push(row(
        "healthy rate during the outage / undisturbed (target >= 0.80)",
        "ratio",
        &ratios,
    ));
    Ok(rows)
}

fn row(label: &str, unit: &str, values: &[f64]) -> Value {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
    json!({
        "what": label,
        "unit": unit,
        "median": median,
        "min": sorted.first(),
        "max": sorted.last(),
        "samples": values,
    })
}

fn markdown(report: &Value) -> String {
    let mut text = format!(
        "# forwarder consume\n\n{} small events a run, medians of {} (min-max); release build; \
         NATS and LocalStack on the same machine.\n\n| run | median | min-max |\n|---|---:|---:|\n",
        report["events"], report["repetitions"]
    );
    for row in report["rows"].as_array().into_iter().flatten() {
        let figure = |v: &Value| {
            let v = v.as_f64().unwrap_or(f64::NAN);
            if row["unit"] == "ratio" {
                format!("{:.0}%", v * 100.0)
            } else {
                format!("{v:.0}")
            }
        };
        text.push_str(&format!(
            "| {} | {} | {}-{} |\n",
            row["what"].as_str().unwrap_or_default(),
            figure(&row["median"]),
            figure(&row["min"]),
            figure(&row["max"]),
        ));
    }
    text
}

impl Tools {
    fn load(&self, args: &[&str]) -> Result<Value> {
        json_output(
            Command::new(&self.load)
                .args(args)
                .args(["--endpoint-url", &self.endpoint])
                .env("AWS_ACCESS_KEY_ID", localstack::ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", localstack::SECRET_KEY)
                .env("AWS_REGION", localstack::REGION),
        )
    }

    fn stream(&self, stream: &str, args: &[&str]) -> Result<Value> {
        json_output(
            Command::new(&self.stream)
                .args(["--url", &self.nats, "--stream", stream])
                .args(args),
        )
    }

    /// `count` destinations named `NAME-N` with a queue each, reached directly or, for the
    /// indexes in `through`, through the given endpoint.
    fn destinations(
        &self,
        name: &str,
        count: usize,
        through: &[(usize, &str)],
        created: &mut Vec<String>,
    ) -> Result<Destinations> {
        let dir = self.dir.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut queues = Vec::new();
        for n in 0..count {
            let queue = format!("xtask-consume-{}-{name}-{n}", std::process::id());
            let url = self.load(&["create-queue", "--name", &queue])?["queueUrl"]
                .as_str()
                .context("create-queue gave no queueUrl")?
                .to_owned();
            created.push(url.clone());
            let endpoint = through
                .iter()
                .find(|(i, _)| *i == n)
                .map_or(self.endpoint.as_str(), |(_, e)| e);
            let tenant = format!("{name}-{n}");
            let file = json!({
                "queueURL": url,
                "region": localstack::REGION,
                "accessKey": localstack::ACCESS_KEY,
                "accessSecret": localstack::SECRET_KEY,
                "endpoint": endpoint,
            });
            let path = dir.join(format!("{tenant}.json"));
            std::fs::write(&path, file.to_string())?;
            restrict(&path)?;
            queues.push((tenant, url));
        }
        Ok(Destinations { dir, queues })
    }

    /// Publishes `events` for `to` on a stream of its own (before the clock starts).
    fn publish(&self, run: usize, to: &Destinations, events: usize) -> Result<String> {
        let stream = format!("BENCH_{}_{run}", std::process::id());
        let path = self.dir.join("events.ndjson");
        let mut text = String::new();
        for i in 0..events {
            let tenant = &to.queues[i % to.queues.len()].0;
            text.push_str(&format!(
                r#"{{"specversion":"1.0","id":"b-{run}-{i}","source":"/bench/{}","type":"com.example.bench","tenant":"{tenant}","data":{{"i":{i},"reading":21.5}}}}"#,
                i % 17
            ));
            text.push('\n');
        }
        std::fs::write(&path, text)?;
        let path = path.to_string_lossy().into_owned();
        self.stream(&stream, &["publish", "--subject-by", "tenant", &path])?;
        Ok(stream)
    }

    fn spawn(&self, stream: &str, to: &Destinations, instances: usize) -> Result<Vec<Child>> {
        (0..instances)
            .map(|_| {
                Command::new(&self.forwarder)
                    .args(["consume", "--nats-url", &self.nats, "--stream", stream])
                    .args(["--durable", "bench", "--route-by", "tenant"])
                    .args(["--ack-wait-seconds", "30", "--nak-delay-seconds", "1"])
                    .arg("--destinations")
                    .arg(&to.dir)
                    .env("AWS_ACCESS_KEY_ID", localstack::ACCESS_KEY)
                    .env("AWS_SECRET_ACCESS_KEY", localstack::SECRET_KEY)
                    .env_remove("RUST_LOG")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .context("cannot start forwarder consume")
            })
            .collect()
    }

    /// The seconds from starting `instances` until the durable consumer is drained.
    fn drain_run(
        &self,
        run: usize,
        to: &Destinations,
        instances: usize,
        events: usize,
    ) -> Result<f64> {
        let stream = self.publish(run, to, events)?;
        let started = Instant::now();
        let children = self.spawn(&stream, to, instances)?;
        let drained = self.stream(&stream, &["drained", "--durable", "bench"]);
        let seconds = started.elapsed().as_secs_f64();
        stop(children)?;
        drained?;
        self.stream(&stream, &["delete"])?;
        Ok(seconds)
    }

    /// The healthy destinations' (all but the last) events per second, with `hole` black-holing
    /// the last one for [`OUTAGE`] from the start.
    fn healthy_run(
        &self,
        run: usize,
        to: &Destinations,
        events: usize,
        hole: Option<&BlackHoleProxy>,
    ) -> Result<f64> {
        let healthy = &to.queues[..to.queues.len() - 1];
        let before: Vec<u64> = healthy
            .iter()
            .map(|(_, url)| self.count(url))
            .collect::<Result<_>>()?;
        let expected = events / to.queues.len() * healthy.len();
        let stream = self.publish(run, to, events)?;
        if let Some(proxy) = hole {
            proxy.hold(true);
        }
        let started = Instant::now();
        let children = self.spawn(&stream, to, 1)?;
        let measured = (|| loop {
            let mut delivered = 0;
            for ((_, url), before) in healthy.iter().zip(&before) {
                delivered += self.count(url)?.saturating_sub(*before);
            }
            if delivered as usize >= expected {
                break Ok(expected as f64 / started.elapsed().as_secs_f64());
            }
            if started.elapsed() > Duration::from_secs(300) {
                break Err(anyhow::anyhow!(
                    "the healthy destinations got {delivered} of {expected} events in 300 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        })();
        if hole.is_some() && started.elapsed() > OUTAGE {
            eprintln!("bench consume: warning: the healthy events took longer than the outage");
        }
        while hole.is_some() && started.elapsed() < OUTAGE {
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some(proxy) = hole {
            proxy.hold(false);
        }
        let drained = self.stream(&stream, &["drained", "--durable", "bench"]);
        stop(children)?;
        drained?;
        self.stream(&stream, &["delete"])?;
        measured
    }

    fn count(&self, url: &str) -> Result<u64> {
        self.load(&["count", "--queue-url", url])?["messages"]
            .as_u64()
            .context("count gave no number")
    }
}

fn json_output(command: &mut Command) -> Result<Value> {
    let output = command
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run {}", command.get_program().to_string_lossy()))?;
    if !output.status.success() {
        bail!(
            "{}: {}",
            command.get_program().to_string_lossy(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    serde_json::from_slice(&output.stdout).context("not JSON")
}

/// SIGTERM to each instance (it settles what it holds), then waits for all of them.
fn stop(children: Vec<Child>) -> Result<()> {
    for child in &children {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
    }
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            bail!("forwarder consume exited with {status}");
        }
    }
    Ok(())
}

fn restrict(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// A TCP proxy to LocalStack that, while held, forwards nothing in either direction (the
/// connections stay open, their bytes wait): a black hole that ends without a reset.
struct BlackHoleProxy {
    endpoint: String,
    held: Arc<AtomicBool>,
}

impl BlackHoleProxy {
    fn start(upstream: &str) -> Result<BlackHoleProxy> {
        let address = upstream
            .strip_prefix("http://")
            .context("LocalStack's endpoint is not http://")?
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let held = Arc::new(AtomicBool::new(false));
        let shared = Arc::clone(&held);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&address) else {
                    continue;
                };
                for (from, to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ] {
                    if let (Ok(from), Ok(to)) = (from, to) {
                        let held = Arc::clone(&shared);
                        std::thread::spawn(move || pump(from, to, &held));
                    }
                }
            }
        });
        Ok(BlackHoleProxy { endpoint, held })
    }

    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn hold(&self, held: bool) {
        self.held.store(held, Ordering::Relaxed);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, held: &AtomicBool) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        while held.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while held.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}
