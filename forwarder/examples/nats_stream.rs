//! The NATS side of `cargo xtask demo consume` and `cargo xtask bench consume`, so that xtask
//! need not build a NATS client.
//!
//! `publish` creates the stream (subjects `STREAM.>`) when it is absent and publishes every
//! line of the NDJSON files, each on `STREAM.VALUE` where `VALUE` is the line's `--subject-by`
//! attribute (`STREAM.events` without one), waiting for the stream to store each. `drained`
//! waits until the durable consumer exists and has nothing pending and nothing unacknowledged.
//! `delete` removes the stream. Each prints one JSON object on stdout.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::jetstream;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(about = "A JetStream stream for the demo and the bench; prints JSON on stdout")]
struct Cli {
    /// The server, `nats://HOST:PORT`.
    #[arg(long)]
    url: String,
    /// The stream's name.
    #[arg(long)]
    stream: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publishes the lines of FILES.
    Publish {
        /// The attribute whose value ends each line's subject.
        #[arg(long)]
        subject_by: Option<String>,
        files: Vec<PathBuf>,
    },
    /// Waits until DURABLE has handed out and settled everything.
    Drained {
        #[arg(long)]
        durable: String,
        #[arg(long, default_value_t = 300)]
        timeout_seconds: u64,
    },
    /// Deletes the stream.
    Delete,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let client = async_nats::connect(&cli.url)
        .await
        .with_context(|| format!("cannot connect to {}", cli.url))?;
    let context = jetstream::new(client);
    let out = match cli.command {
        Command::Publish { subject_by, files } => {
            publish(&context, &cli.stream, subject_by.as_deref(), &files).await?
        }
        Command::Drained {
            durable,
            timeout_seconds,
        } => drained(&context, &cli.stream, &durable, timeout_seconds).await?,
        Command::Delete => {
            context
                .delete_stream(&cli.stream)
                .await
                .with_context(|| format!("cannot delete the stream {}", cli.stream))?;
            json!({ "deleted": cli.stream })
        }
    };
    println!("{out}");
    Ok(())
}

async fn publish(
    context: &jetstream::Context,
    stream: &str,
    subject_by: Option<&str>,
    files: &[PathBuf],
) -> Result<Value> {
    context
        .get_or_create_stream(jetstream::stream::Config {
            name: stream.to_owned(),
            subjects: vec![format!("{stream}.>")],
            ..Default::default()
        })
        .await
        .with_context(|| format!("cannot create the stream {stream}"))?;
    let started = Instant::now();
    let mut published = 0u64;
    let mut acks = Vec::new();
    for path in files {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        for line in std::io::BufReader::new(file).lines() {
            let line = line.with_context(|| format!("cannot read {}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let value = subject_by.and_then(|attribute| {
                let event: Value = serde_json::from_str(&line).ok()?;
                event.get(attribute)?.as_str().map(str::to_owned)
            });
            let subject = format!("{stream}.{}", value.as_deref().unwrap_or("events"));
            acks.push(
                context
                    .publish(subject, line.into())
                    .await
                    .context("cannot publish")?,
            );
            published += 1;
            if acks.len() >= 1000 {
                for ack in acks.drain(..) {
                    ack.await.context("the stream did not store a message")?;
                }
            }
        }
    }
    for ack in acks {
        ack.await.context("the stream did not store a message")?;
    }
    Ok(json!({ "published": published, "seconds": started.elapsed().as_secs_f64() }))
}

async fn drained(
    context: &jetstream::Context,
    stream: &str,
    durable: &str,
    timeout_seconds: u64,
) -> Result<Value> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(timeout_seconds);
    loop {
        let stream = context
            .get_stream(stream)
            .await
            .with_context(|| format!("no stream {stream}"))?;
        if let Ok(mut consumer) = stream
            .get_consumer::<jetstream::consumer::pull::Config>(durable)
            .await
        {
            let info = consumer.info().await.context("consumer info")?;
            if info.num_pending == 0
                && info.num_ack_pending == 0
                && info.delivered.stream_sequence > 0
            {
                return Ok(json!({
                    "seconds": started.elapsed().as_secs_f64(),
                    "delivered": info.delivered.stream_sequence,
                    "redelivered": info.num_redelivered,
                }));
            }
        }
        if Instant::now() > deadline {
            bail!("the consumer {durable} was not drained within {timeout_seconds} s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
