//! `cargo xtask ci`: what CI runs, so that green here means green there.

use std::process::ExitCode;

use anyhow::Result;

use crate::run;

pub(crate) fn run(args: &[String]) -> Result<ExitCode> {
    run::checked(run::cargo().args(["fmt", "--all", "--check"]))?;
    run::checked(run::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    crate::test::run(args)
}
