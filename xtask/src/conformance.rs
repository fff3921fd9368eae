//! `cargo xtask conformance [--endpoint-url URL]`: the conformance suite against the embedded
//! LocalStack (or another endpoint), with a JUnit report and a readable summary.
//!
//! `cargo xtask conformance run ARGS`: the kit, `conformance run ARGS`, on the embedded
//! LocalStack (started for the run and stopped after it if none was running) unless ARGS name
//! an endpoint (`--endpoint-url`) or AWS itself (`--aws`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::provision::on_localstack;
use crate::run;

fn kit(args: &[String]) -> Result<ExitCode> {
    let mut command = run::cargo();
    command.args([
        "run",
        "-q",
        "-p",
        "conformance",
        "--bin",
        "conformance",
        "--",
        "run",
    ]);
    command.args(args);
    let elsewhere = args
        .iter()
        .any(|a| a.starts_with("--endpoint-url") || a == "--aws");
    if elsewhere {
        return run::status(&mut command);
    }
    let config = localstack::Config::from_env()?;
    let instance = localstack::start(&config)?;
    let has_region = args.iter().any(|a| a.starts_with("--region"));
    on_localstack(&mut command, instance.endpoint(), !has_region);
    let code = run::status(&mut command);
    if instance.started() && config.backend == localstack::Backend::Host {
        localstack::stop(&config)?;
    }
    code
}

pub(crate) fn run(args: &[String]) -> Result<ExitCode> {
    if args.first().is_some_and(|a| a == "run") {
        return kit(&args[1..]);
    }
    let mut endpoint = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--endpoint-url" => endpoint = rest.next().cloned(),
            other => {
                bail!("unknown flag `{other}`: usage: cargo xtask conformance [--endpoint-url URL]")
            }
        }
    }
    let config = localstack::Config::from_env()?;
    let (instance, endpoint) = match endpoint {
        Some(endpoint) => (None, endpoint),
        None => {
            let instance = localstack::start(&config)?;
            let endpoint = instance.endpoint().to_owned();
            (Some(instance), endpoint)
        }
    };
    eprintln!("conformance: against {endpoint}");
    let has_nextest = run::cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut command = run::cargo();
    if has_nextest {
        command.args([
            "nextest",
            "run",
            "--config-file",
            "xtask/nextest.toml",
            "--profile",
            "conformance",
        ]);
    } else {
        eprintln!(
            "conformance: cargo-nextest is not installed; running cargo test (no JUnit report)"
        );
        command.arg("test");
    }
    command
        .args(["-p", "conformance"])
        .env("LOCALSTACK_ENDPOINT", &endpoint);
    let code = run::status(&mut command);
    if has_nextest {
        let junit = Path::new("target/nextest/conformance/conformance-junit.xml");
        if junit.exists() {
            eprintln!("conformance: JUnit report in {}", junit.display());
        }
    }
    if let Some(instance) = instance
        && instance.started()
        && config.backend == localstack::Backend::Host
    {
        localstack::stop(&config)?;
    }
    code
}
