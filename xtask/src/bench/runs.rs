//! One measured run of each kind: the load generator's `ceiling` and `per-event`, `forwarder
//! send` of a file and `forwarder serve` behind an HTTP client, each between a purge of the queue
//! and a count of what arrived, with LocalStack's and the machine's CPU counted around it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::measure::{self, Measured};
use super::results::Sample;
use super::samples::{load_sample, send_sample};

#[derive(Debug, Clone)]
pub(super) struct Bench {
    pub(super) forwarder: PathBuf,
    pub(super) load: PathBuf,
    pub(super) endpoint: String,
    pub(super) queue_url: String,
    pub(super) localstack_pid: Option<u32>,
    pub(super) dir: PathBuf,
}

impl Bench {
    /// The load generator, with LocalStack's credentials.
    pub(super) fn load_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.load);
        command.args(args);
        credentials(&mut command);
        command
    }

    /// Runs a queue subcommand of the load generator (not measured) and returns its JSON.
    pub(super) fn load_json(&self, args: &[&str]) -> Result<Value> {
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

    pub(super) fn purge(&self) -> Result<()> {
        self.load_json(&["purge", "--queue-url", &self.queue_url])
            .map(drop)
    }

    pub(super) fn count(&self) -> Result<u64> {
        let value = self.load_json(&["count", "--queue-url", &self.queue_url])?;
        value["messages"].as_u64().context("count gave no number")
    }

    /// Purges the queue, runs `run` while counting LocalStack's and the machine's CPU, and
    /// counts what the queue then holds.
    pub(super) fn around(
        &self,
        count: bool,
        run: impl FnOnce() -> Result<Sample>,
    ) -> Result<Sample> {
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
    pub(super) fn load_run(
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
    pub(super) fn send_run(&self, file: &Path) -> Result<Sample> {
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

    /// `forwarder send` of its standard input, or of the file given after.
    pub(super) fn send_command(&self) -> Command {
        self.forwarder_command(&["send", "--summary-json", "--queue-url", &self.queue_url])
    }

    /// The forwarder with `args`, LocalStack's endpoint, region and credentials.
    fn forwarder_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.forwarder);
        command.args(args).args([
            "--endpoint-url",
            &self.endpoint,
            "--region",
            localstack::REGION,
        ]);
        credentials(&mut command);
        command
    }

    /// `forwarder serve` started afresh, fed by the load generator's HTTP client.
    pub(super) fn serve_run(
        &self,
        file: &Path,
        concurrency: usize,
        events: usize,
    ) -> Result<Sample> {
        self.around(true, || {
            let mut command = self.forwarder_command(&[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--queue-url",
                &self.queue_url,
            ]);
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

pub(super) fn credentials(command: &mut Command) {
    command
        .env("AWS_ACCESS_KEY_ID", localstack::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", localstack::SECRET_KEY)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_DISABLED", "true");
}

pub(super) fn checked(finished: measure::Finished, what: &str) -> Result<measure::Finished> {
    if !finished.status.success() {
        bail!(
            "{what} failed ({}):\n{}",
            finished.status,
            finished.stderr.trim()
        );
    }
    Ok(finished)
}
