//! `conformance`: judges the messages waiting in an SQS queue as CloudEvents
//! 1.0, in structured or binary content mode.
//!
//! `conformance run` is the fidelity run: it provisions a queue and a send-only
//! identity, runs the producer under test with the vectors, and compares what
//! the queue holds with them.
//!
//! Exit status: 0 when every message is conformant (`check`) or every vector
//! arrived once and intact (`run`), 1 when not, 2 on a usage or connection
//! error.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use conformance::{check, client, report, run, run_report, vectors};

#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Judge every message of a queue; peeks (nothing deleted or moved) unless --delete.
    Check(CheckArgs),
    /// Run a producer with test vectors against a fresh queue and compare what it delivered.
    Run(RunArgs),
    /// Print the default vectors (NDJSON).
    Vectors,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The producer under test, run with `sh -c`; it finds the events to deliver in the NDJSON
    /// file `$CE_VECTORS` and the queue and credentials in the connection file `$CE_CONFIG`.
    #[arg(long)]
    producer: String,
    /// The vectors (NDJSON); the default set when not given (see `conformance vectors`).
    #[arg(long)]
    vectors: Option<std::path::PathBuf>,
    /// A FIFO queue: order within each message group is checked too.
    #[arg(long)]
    fifo: bool,
    /// The endpoint to provision on, such as LocalStack's (`cargo xtask conformance run` starts
    /// the embedded one and passes it).
    #[arg(long, required_unless_present = "aws")]
    endpoint_url: Option<String>,
    /// Provision in the AWS account of the default credentials instead of an emulator.
    #[arg(long, conflicts_with = "endpoint_url")]
    aws: bool,
    /// The AWS region; defaults to the usual AWS configuration.
    #[arg(long)]
    region: Option<String>,
    /// Seconds the producer may take.
    #[arg(long, default_value_t = 600)]
    timeout_seconds: u64,
    /// Leave the queue and its user in place afterwards.
    #[arg(long)]
    keep: bool,
    /// The report format.
    #[arg(long, value_enum, default_value_t = report::Format::Text)]
    format: report::Format,
}

impl RunArgs {
    async fn run(self) -> anyhow::Result<ExitCode> {
        let vectors = match &self.vectors {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading the vectors {}", path.display()))?,
            None => vectors::default_vectors(),
        };
        let options = run::RunOptions {
            producer: self.producer,
            vectors,
            fifo: self.fifo,
            aws: aws_access::sdk::AwsOptions {
                region: self.region,
                endpoint_url: self.endpoint_url,
                ..Default::default()
            },
            timeout: std::time::Duration::from_secs(self.timeout_seconds),
            keep: self.keep,
        };
        let report = run::run(&options).await?;
        print!("{}", run_report::render(&report, self.format));
        Ok(if report.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The URL of the queue to check.
    #[arg(long)]
    queue_url: String,
    /// An SQS endpoint other than AWS's, such as LocalStack's.
    #[arg(long)]
    endpoint_url: Option<String>,
    /// The AWS region; defaults to the usual AWS configuration.
    #[arg(long)]
    region: Option<String>,
    /// Leave the messages in the queue, visible again at once (the default; this names it).
    #[arg(long, conflicts_with = "delete")]
    keep: bool,
    /// Delete each message once judged (consumes the queue).
    #[arg(long)]
    delete: bool,
    /// Peek even if the queue has a redrive policy: receive counts rise, and a message at its
    /// maxReceiveCount can be moved to the dead-letter queue.
    #[arg(long)]
    allow_receive_count: bool,
    /// The report format.
    #[arg(long, value_enum, default_value_t = report::Format::Text)]
    format: report::Format,
    /// Print each message's body (and message attributes) before the report.
    #[arg(long)]
    show: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Check(args) => args.run().await,
        Command::Run(args) => args.run().await,
        Command::Vectors => {
            print!("{}", vectors::default_vectors());
            Ok(ExitCode::SUCCESS)
        }
    };
    outcome.unwrap_or_else(|err| {
        eprintln!("error: {err:#}");
        ExitCode::from(2)
    })
}

impl CheckArgs {
    async fn run(self) -> anyhow::Result<ExitCode> {
        let client =
            client::sqs_client(self.endpoint_url.as_deref(), self.region.as_deref()).await?;
        // `--keep` only names the default, which clap keeps apart from `--delete`.
        debug_assert!(!(self.keep && self.delete));
        let options = check::CheckOptions {
            delete: self.delete,
            allow_receive_count: self.allow_receive_count,
        };
        let results = check::check_queue(&client, &self.queue_url, options).await?;
        if self.show {
            for (message, _) in &results {
                println!("{}", message.body);
                if !message.attributes.is_empty() {
                    println!("  attributes: {:?}", message.attributes);
                }
            }
        }
        print!("{}", report::render(&results, self.format));
        let all_conformant = results.iter().all(|(_, verdict)| verdict.conformant);
        Ok(if all_conformant {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }
}
