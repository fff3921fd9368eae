//! `cargo xtask provision ...`: the provisioner's command line, run from the project root.
//!
//! `--localstack` is xtask's flag, not the provisioner's: the shipped binary knows nothing of
//! LocalStack. xtask starts the embedded LocalStack (or re-uses the running one) and passes its
//! endpoint, region and test credentials on, as a user would pass their own.

use std::process::{Command, ExitCode};

use anyhow::Result;

use crate::run;

pub(crate) fn run(args: &[String]) -> Result<ExitCode> {
    let mut command = run::cargo();
    command.args(["run", "-q", "-p", "provisioner", "--"]);
    let localstack = args.iter().any(|a| a == "--localstack");
    let args: Vec<&String> = args.iter().filter(|a| *a != "--localstack").collect();
    command.args(&args);
    if localstack {
        let instance = localstack::start(&localstack::Config::from_env()?)?;
        let has_region = args.iter().any(|a| a.starts_with("--region"));
        on_localstack(&mut command, instance.endpoint(), !has_region);
    }
    run::status(&mut command)
}

/// Points a provisioner (or conformance) command at LocalStack: its endpoint, its region unless
/// the caller chose one, and its test credentials.
pub(crate) fn on_localstack<'c>(
    command: &'c mut Command,
    endpoint: &str,
    with_region: bool,
) -> &'c mut Command {
    command.args(["--endpoint-url", endpoint]);
    if with_region {
        command.args(["--region", localstack::REGION]);
    }
    command
        .env("AWS_ACCESS_KEY_ID", localstack::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", localstack::SECRET_KEY)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
}
