//! `cargo xtask soak [--events N] [--outage-secs S] [--throttle-secs S]`: the fault scenarios of
//! `forwarder/tests/faults.rs` and the accounting scenarios of `forwarder/tests/accounting.rs`
//! (SIGTERM on a pipe, `kill -9` then `--resume`) at length (by default 20,000 events each, a
//! 15 s outage, 10 s of throttling), one at a time, then their results as a table in
//! `target/soak/report.md`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::run;

const USAGE: &str = "usage: cargo xtask soak [--events N] [--outage-secs S] [--throttle-secs S]";

pub(crate) fn run(args: &[String]) -> Result<ExitCode> {
    let (mut events, mut outage, mut throttle) = (20_000u64, 15u64, 10u64);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let target = match arg.as_str() {
            "--events" => &mut events,
            "--outage-secs" => &mut outage,
            "--throttle-secs" => &mut throttle,
            other => bail!("unknown flag `{other}`: {USAGE}"),
        };
        *target = rest
            .next()
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{arg} needs a number: {USAGE}"))?;
    }
    let dir = Path::new("target/soak");
    std::fs::create_dir_all(dir)?;
    let results = dir.join("results.ndjson");
    let _ = std::fs::remove_file(&results);

    let config = localstack::Config::from_env()?;
    let instance = localstack::start(&config)?;
    eprintln!("soak: LocalStack at {}", instance.endpoint());
    let results_path = std::fs::canonicalize(dir)?.join("results.ndjson");
    let mut failed = false;
    for (test, filter) in [
        ("faults", None),
        ("accounting", Some("sigterm_on_a_pipe")),
        ("accounting", Some("kill_9_then_resume")),
    ] {
        let mut command = run::cargo();
        command
            .args(["test", "-p", "forwarder", "--test", test, "--"])
            .args(filter)
            .args(["--test-threads", "1"])
            .env("LOCALSTACK_ENDPOINT", instance.endpoint())
            .env("FAULT_EVENTS", events.to_string())
            .env("ACCOUNTING_EVENTS", events.to_string())
            .env("FAULT_OUTAGE_SECS", outage.to_string())
            .env("FAULT_THROTTLE_SECS", throttle.to_string())
            .env("FAULT_RESULTS", &results_path);
        // A failed scenario still lets the others run and the table be written.
        failed |= run::status(&mut command).map_or(true, |code| code != ExitCode::SUCCESS);
    }
    let code = Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    });
    if instance.started() && config.backend == localstack::Backend::Host {
        localstack::stop(&config)?;
    }
    let text = std::fs::read_to_string(&results).unwrap_or_default();
    let report = table(&text, outage, throttle)?;
    let path = dir.join("report.md");
    std::fs::write(&path, &report)?;
    print!("{report}");
    eprintln!("soak: table in {}", path.display());
    code
}

/// The results, one JSON object a line, as a Markdown table.
fn table(results: &str, outage: u64, throttle: u64) -> Result<String> {
    let mut out = format!(
        "Fault scenarios (outage {outage} s, throttling {throttle} s), each through the real \
         binary and a fault-injecting proxy in front of LocalStack:\n\n\
         | scenario | mode | events | delivered | dead-lettered | reported, yet queued | duplicates | lost | exit | peak RSS | seconds |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for line in results.lines().filter(|l| !l.trim().is_empty()) {
        let r: Value = serde_json::from_str(line).context("a result line is not JSON")?;
        let n = |key: &str| r[key].as_u64().map_or("?".to_owned(), |v| v.to_string());
        let events = if r["read"] != r["events"] {
            format!("{} ({} read)", n("events"), n("read"))
        } else {
            n("events")
        };
        writeln!(
            out,
            "| {} | {} | {events} | {} | {} | {} | {} | {} | {} | {:.1} MiB | {} |",
            r["scenario"].as_str().unwrap_or("?"),
            r["mode"].as_str().unwrap_or("?"),
            n("delivered"),
            n("deadLettered"),
            n("reportedButQueued"),
            n("duplicates"),
            n("lost"),
            n("exit"),
            r["peakKiB"].as_f64().unwrap_or_default() / 1024.0,
            r["seconds"],
        )?;
    }
    Ok(out)
}
