//! `cargo xtask provision ...`: the provisioner's command line, run from the project root.

use std::process::ExitCode;

use anyhow::Result;

use crate::run;

pub(crate) fn run(args: &[String]) -> Result<ExitCode> {
    run::status(
        run::cargo()
            .args(["run", "-q", "-p", "provisioner", "--"])
            .args(args),
    )
}
