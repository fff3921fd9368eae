//! `cargo xtask fuzz [--seconds N] [--target NAME]`: a cargo fuzz target of `forwarder/fuzz` for
//! a bounded time (60 s by default), starting from its committed corpus.
//!
//! cargo fuzz needs a nightly compiler (`-Zsanitizer=address`); the stable one accepts it with
//! `RUSTC_BOOTSTRAP=1`, which is set here for this command only. New inputs go to
//! `target/fuzz/corpus/NAME`, so the committed corpus changes only by hand; a crash is saved under
//! `forwarder/fuzz/artifacts/NAME` and fails the task.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::run;

const USAGE: &str = "usage: cargo xtask fuzz [--seconds N] [--target NAME]";

pub(crate) fn run(args: &[String]) -> Result<ExitCode> {
    let mut seconds = 60u64;
    let mut target = "parse_event".to_owned();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = rest
                    .next()
                    .and_then(|v| v.parse().ok())
                    .with_context(|| format!("--seconds needs a number: {USAGE}"))?;
            }
            "--target" => target = rest.next().cloned().context(USAGE)?,
            other => bail!("unknown flag `{other}`: {USAGE}"),
        }
    }
    let installed = run::cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        run::checked(run::cargo().args(["install", "--locked", "cargo-fuzz"]))?;
    }
    let corpus = format!("target/fuzz/corpus/{target}");
    std::fs::create_dir_all(&corpus)?;
    let seeds = format!("forwarder/fuzz/corpus/{target}");
    run::status(
        run::cargo()
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "--fuzz-dir", "forwarder/fuzz"])
            .args(["--target-dir", "target/fuzz", &target, &corpus, &seeds])
            .args(["--", &format!("-max_total_time={seconds}"), "-timeout=10"]),
    )
}
