//! `cargo xtask localstack up|down|status|logs`: the embedded LocalStack by hand; `image`
//! builds the local image of the container backend.

use std::process::ExitCode;

use anyhow::{Result, bail};

pub(crate) fn run(args: &[String]) -> Result<ExitCode> {
    if args.first().map(String::as_str) == Some("image") {
        return crate::image::run(&args[1..]);
    }
    let config = localstack::Config::from_env()?;
    match args.first().map(String::as_str) {
        Some("up") => {
            let instance = localstack::start(&config)?;
            if !instance.started() {
                eprintln!("localstack: re-using the running instance");
            }
            println!("{}", instance.endpoint());
        }
        Some("down") => {
            if localstack::stop(&config)? {
                eprintln!("localstack: stopped");
            } else {
                eprintln!("localstack: none was running");
            }
        }
        Some("status") => match localstack::status(&config)? {
            Some(state) => println!(
                "running: {} (pid {}, log {})",
                state.endpoint,
                state.pid,
                state.log.display()
            ),
            None => {
                println!("not running");
                return Ok(ExitCode::FAILURE);
            }
        },
        Some("logs") => {
            let log = config.log_path();
            let text = std::fs::read_to_string(&log)
                .map_err(|e| anyhow::anyhow!("{}: {e}", log.display()))?;
            print!("{text}");
        }
        _ => bail!("usage: cargo xtask localstack up|down|status|logs|image"),
    }
    Ok(ExitCode::SUCCESS)
}
