//! The project's commands, run as `cargo xtask <task>` (see <https://github.com/matklad/cargo-xtask>).
//!
//! Flags are parsed once here, the working directory becomes the project root, and each task
//! lives in a module of its own.

mod bench;
mod ci;
mod conformance;
mod demo;
mod fuzz;
mod image;
mod localstack_cmd;
mod nats_cmd;
mod provision;
mod run;
mod soak;
mod test;
mod tidy;

use std::process::ExitCode;

use anyhow::Result;

const USAGE: &str = "\
cargo xtask <task>

tasks:
  localstack up|down|status|logs   the embedded LocalStack (up prints the endpoint last)
  localstack image [--force]       build the local LocalStack image (no registry needed)
  nats up|down|status              a NATS server with JetStream (up prints the nats:// URL last)
  test [--backend host|container]  start LocalStack if none runs, run every test, stop what it started
  ci                               fmt --check, clippy -D warnings, then test
  provision <args>                 the provisioner: apply|plan|verify|destroy (see --help)
  demo                             provision, forward the sample events, read them back
  demo consume                     the same through NATS JetStream and forwarder consume, two destinations
  conformance [--endpoint-url URL] the conformance suite, with a JUnit report
  conformance run --producer CMD   the kit: CMD's deliveries compared with the vectors (see README)
  bench [--quick] [--reps N]       the forwarder against the SQS ceiling: target/bench/report.md
  bench consume [--quick] [--reps N]  forwarder consume: instances, 100 destinations, a black hole
  soak [--events N]                the fault scenarios at length: target/soak/report.md
  fuzz [--seconds N]               the parser's fuzz target for a bounded time (cargo fuzz)
";

fn main() -> ExitCode {
    match try_main() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> Result<ExitCode> {
    let root = localstack::project_root();
    std::env::set_current_dir(&root)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((task, rest)) => (task.as_str(), rest),
        None => {
            print!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
    };
    match task {
        "localstack" => localstack_cmd::run(rest),
        "nats" => nats_cmd::run(rest),
        "test" => test::run(rest),
        "ci" => ci::run(rest),
        "demo" => demo::run(rest),
        "conformance" => conformance::run(rest),
        "provision" => provision::run(rest),
        "bench" => bench::run(rest),
        "soak" => soak::run(rest),
        "fuzz" => fuzz::run(rest),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => anyhow::bail!("unknown task `{other}`\n\n{USAGE}"),
    }
}
