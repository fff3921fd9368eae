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
    deny()?;
    crate::test::run(args)
}

/// Licences, bans and sources of the dependency tree, by `xtask/deny.toml`. Advisories are left
/// out: their database is fetched from GitHub, which CI cannot reach.
fn deny() -> Result<()> {
    let installed = run::cargo()
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        run::checked(run::cargo().args(["install", "--locked", "cargo-deny"]))?;
    }
    run::checked(run::cargo().args([
        "deny",
        "--manifest-path",
        "Cargo.toml",
        "--config",
        "xtask/deny.toml",
        "check",
        "--hide-inclusion-graph",
        "licenses",
        "bans",
        "sources",
    ]))
}
