//! `cargo xtask nats up|down|status`: the persistent NATS server (JetStream on) by hand, from
//! `nats-launch`; `NATS_URL` names an external one instead, which is checked but never stopped.

use std::process::ExitCode;

use anyhow::{Result, bail};

pub(crate) fn run(args: &[String]) -> Result<ExitCode> {
    let config = nats_launch::Config::from_env()?;
    match args.first().map(String::as_str) {
        Some("up") => {
            let server = nats_launch::shared(&config)?;
            if config.external.is_some() {
                eprintln!("nats: NATS_URL names a running server; nothing was started");
            } else if !server.started() {
                eprintln!("nats: re-using the running server");
            }
            println!("{}", server.url());
        }
        Some("down") => {
            if config.external.is_some() {
                eprintln!("nats: NATS_URL names a server this task did not start; left alone");
            } else if nats_launch::stop(&config)? {
                eprintln!("nats: stopped");
            } else {
                eprintln!("nats: none was running");
            }
        }
        Some("status") => match nats_launch::status(&config)? {
            Some(server) => match server.state() {
                Some(state) => println!(
                    "running: {} (pid {}, log {})",
                    server.url(),
                    state.pid,
                    state.log.display()
                ),
                None => println!("running: {} (external, NATS_URL)", server.url()),
            },
            None => {
                println!("not running");
                return Ok(ExitCode::FAILURE);
            }
        },
        _ => bail!("usage: cargo xtask nats up|down|status"),
    }
    Ok(ExitCode::SUCCESS)
}
