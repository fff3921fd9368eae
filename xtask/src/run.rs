//! Running cargo and other programs from tasks.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result};

/// A `cargo` command, through the `CARGO` that runs xtask.
pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs `command`, echoing it; a failure is an error naming it.
pub(crate) fn status(command: &mut Command) -> Result<ExitCode> {
    eprintln!("xtask: $ {}", show(command));
    let status = command
        .status()
        .with_context(|| format!("cannot run {}", show(command)))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Like [`status`], but a failure is an error.
pub(crate) fn checked(command: &mut Command) -> Result<()> {
    if status(command)? != ExitCode::SUCCESS {
        anyhow::bail!("`{}` failed", show(command));
    }
    Ok(())
}

fn show(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}
