//! `cargo xtask demo`: the main job on the embedded LocalStack. Provision a queue and a scoped
//! user (and prove its least privilege), forward the sample events under `forwarder/examples/` with that user's key, and read
//! back and judge what the queue holds. `cargo xtask demo consume` shows the consume path
//! (`consume.rs`).

mod consume;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::provision::on_localstack;
use crate::run;

const NAME: &str = "cloudevents-demo";

pub(crate) fn run(args: &[String]) -> Result<ExitCode> {
    match args.first().map(String::as_str) {
        None => {}
        Some("consume") => return consume::run(),
        Some(other) => anyhow::bail!("usage: cargo xtask demo [consume] (not `{other}`)"),
    }
    let config = localstack::Config::from_env()?;
    let instance = localstack::start(&config)?;
    eprintln!("demo: LocalStack at {}", instance.endpoint());
    build(&[])?;
    let out = Path::new("target").join("demo").join("forwarder.json");
    std::fs::create_dir_all(out.parent().context("no parent")?)?;
    run::checked(on_localstack(
        std::process::Command::new(bin("provisioner"))
            .args(["apply", "--name", NAME, "--out"])
            .arg(&out),
        instance.endpoint(),
        true,
    ))?;
    run::checked(on_localstack(
        std::process::Command::new(bin("provisioner")).args(["verify", "--name", NAME]),
        instance.endpoint(),
        true,
    ))?;
    let examples = sample_events()?;
    run::checked(
        std::process::Command::new(bin("forwarder"))
            .arg("send")
            .arg("--config")
            .arg(&out)
            .args(&examples),
    )?;
    let text = std::fs::read_to_string(&out)?;
    let settings: serde_json::Value = serde_json::from_str(&text)?;
    let queue_url = settings["queueURL"]
        .as_str()
        .context("no queueURL in the written configuration")?;
    eprintln!("demo: what the queue holds, judged by the conformance checker:");
    let code = run::status(on_localstack(
        std::process::Command::new(bin("conformance")).args([
            "check",
            "--show",
            "--queue-url",
            queue_url,
        ]),
        instance.endpoint(),
        true,
    ))?;
    eprintln!(
        "demo: LocalStack keeps running; `cargo xtask provision destroy --localstack --force --name {NAME}` removes the demo's \
         resources and `cargo xtask localstack down` stops it"
    );
    Ok(code)
}

/// Builds the binaries the demos run, and the forwarder's `examples`.
fn build(examples: &[&str]) -> Result<()> {
    let mut command = run::cargo();
    command.args(["build", "-q", "-p", "provisioner", "-p", "forwarder"]);
    command.args(["-p", "conformance", "--bins"]);
    for example in examples {
        command.args(["--example", example]);
    }
    run::checked(&mut command)
}

/// A binary (or, as `examples/NAME`, an example) of the debug build.
fn bin(name: &str) -> PathBuf {
    Path::new("target").join("debug").join(name)
}

/// The sample events, `forwarder/examples/*.ndjson`, in name order.
fn sample_events() -> Result<Vec<PathBuf>> {
    let mut examples: Vec<_> = std::fs::read_dir("forwarder/examples")?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    examples.sort();
    Ok(examples)
}
