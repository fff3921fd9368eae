//! `conformance`: judges the messages waiting in an SQS queue as CloudEvents
//! 1.0, in structured or binary content mode.
//!
//! Exit status: 0 when every message is conformant, 1 when one is not, 2 on a
//! usage or connection error.

use std::process::ExitCode;

use aws_config::{BehaviorVersion, Region};
use clap::{Args, Parser, Subcommand};
use conformance::{check, report};

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
    };
    outcome.unwrap_or_else(|err| {
        eprintln!("error: {err:#}");
        ExitCode::from(2)
    })
}

impl CheckArgs {
    async fn run(self) -> anyhow::Result<ExitCode> {
        let client = sqs_client(self.endpoint_url.as_deref(), self.region.as_deref()).await?;
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

/// Builds the SQS client from the default AWS configuration, overriding the
/// endpoint and the region only when given; a missing region is an error
/// here rather than at the first request.
async fn sqs_client(
    endpoint_url: Option<&str>,
    region: Option<&str>,
) -> anyhow::Result<aws_sdk_sqs::Client> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    if let Some(endpoint_url) = endpoint_url {
        loader = loader.endpoint_url(endpoint_url);
    }
    let config = loader.load().await;
    anyhow::ensure!(
        config.region().is_some(),
        "no AWS region: pass --region or set AWS_REGION"
    );
    Ok(aws_sdk_sqs::Client::new(&config))
}
