//! `cargo xtask test`: start LocalStack if none runs, run every test of the workspace, and stop
//! what it started, also when the tests fail.

use std::process::ExitCode;

use anyhow::Result;

use crate::run;

pub(crate) fn run(args: &[String]) -> Result<ExitCode> {
    let config = localstack::Config::from_env()?;
    let instance = localstack::start(&config)?;
    eprintln!("xtask: LocalStack at {}", instance.endpoint());
    let mut command = run::cargo();
    command
        .args(["test", "--workspace", "--all-targets"])
        .args(args);
    // Benchmarks run as tests only in `cargo xtask bench`.
    command.env("LOCALSTACK_ENDPOINT", instance.endpoint());
    let result = run::status(&mut command);
    if instance.started() && config.backend == localstack::Backend::Host {
        localstack::stop(&config)?;
        eprintln!("xtask: stopped the LocalStack this task started");
    }
    result
}
