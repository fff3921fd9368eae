//! The load generator of `cargo xtask bench`: what the forwarder is measured against.
//!
//! Each subcommand does one thing to one queue and prints one JSON object on stdout:
//! `create-queue`, `delete-queue`, `purge` and `count` manage the queue; `ceiling` sends the
//! lines of an NDJSON file as full `SendMessageBatch` requests (ten entries, or fewer when the
//! 1 MiB request limit comes first), `per-event` sends them with one `SendMessage` each, and
//! `serve` posts them one per request to `forwarder serve` and measures the latency of each
//! answer. The three load subcommands keep `--concurrency` requests in flight and time only the
//! sending: the file is read and the requests are built before the clock starts.
//!
//! It lives in the forwarder crate, as an example, so that xtask need not build the AWS SDK.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use aws_access::sdk::{AwsOptions, sdk_config};
use forwarder::batch::{MAX_BATCH_BYTES, MAX_BATCH_ENTRIES};
use forwarder::metrics::billing_units;

#[derive(Debug, Parser)]
#[command(about = "Load generator for `cargo xtask bench`; prints JSON on stdout")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a standard queue that takes messages up to 1 MiB: `{"queueUrl": ...}`.
    CreateQueue {
        #[command(flatten)]
        endpoint: Endpoint,
        /// The queue's name.
        #[arg(long)]
        name: String,
    },
    /// Delete a queue.
    DeleteQueue(QueueArgs),
    /// Remove every message of a queue.
    Purge(QueueArgs),
    /// The messages a queue holds: `{"messages": n}` (visible, in flight and delayed).
    Count(QueueArgs),
    /// Full `SendMessageBatch` requests straight from the SDK.
    Ceiling(LoadArgs),
    /// One `SendMessage` request per event.
    PerEvent(LoadArgs),
    /// Post each event to `forwarder serve` (structured mode) and time each answer.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
struct Endpoint {
    /// LocalStack's endpoint.
    #[arg(long)]
    endpoint_url: String,
    /// The region.
    #[arg(long, default_value = "us-east-1")]
    region: String,
}

#[derive(Debug, Args)]
struct QueueArgs {
    #[command(flatten)]
    endpoint: Endpoint,
    /// The queue.
    #[arg(long)]
    queue_url: String,
}

#[derive(Debug, Args)]
struct LoadArgs {
    #[command(flatten)]
    queue: QueueArgs,
    #[command(flatten)]
    load: Load,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Where `forwarder serve` listens, such as `http://127.0.0.1:8080`.
    #[arg(long)]
    url: String,
    #[command(flatten)]
    load: Load,
}

#[derive(Debug, Args)]
struct Load {
    /// NDJSON events, one per line.
    #[arg(long)]
    file: PathBuf,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Send only the first this many events.
    #[arg(long)]
    limit: Option<usize>,
}

/// What a load subcommand did, in the order the requests completed.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    failed: u64,
    requests: u64,
    billing_units: u64,
    bytes: u64,
    retried: u64,
    latencies: Vec<Duration>,
    first_error: Option<String>,
}

impl Tally {
    fn record(&mut self, sent: u64, failed: u64, bytes: usize, latency: Duration) {
        self.sent += sent;
        self.failed += failed;
        self.requests += 1;
        self.bytes += bytes as u64;
        self.billing_units += billing_units(bytes);
        self.latencies.push(latency);
    }

    fn error(&mut self, failed: u64, error: String) {
        self.failed += failed;
        self.requests += 1;
        self.first_error.get_or_insert(error);
    }

    fn report(mut self, concurrency: usize, seconds: f64) -> Value {
        self.latencies.sort_unstable();
        let percentile = |p: f64| -> f64 {
            if self.latencies.is_empty() {
                return 0.0;
            }
            let rank = (p * self.latencies.len() as f64).ceil() as usize;
            let index = rank.clamp(1, self.latencies.len()) - 1;
            self.latencies[index].as_secs_f64() * 1000.0
        };
        json!({
            "concurrency": concurrency,
            "seconds": seconds,
            "sent": self.sent,
            "failed": self.failed,
            "requests": self.requests,
            "billingUnits": self.billing_units,
            "bytes": self.bytes,
            "retried": self.retried,
            "p50Ms": percentile(0.50),
            "p99Ms": percentile(0.99),
            "firstError": self.first_error,
        })
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let result = runtime
        .context("cannot start the runtime")
        .and_then(|runtime| runtime.block_on(run(cli.command)));
    match result {
        Ok(value) => {
            println!("{value}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("sqs_load: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<Value> {
    match command {
        Command::CreateQueue { endpoint, name } => {
            let client = client(&endpoint).await?;
            let output = client
                .create_queue()
                .queue_name(&name)
                .attributes(QueueAttributeName::MaximumMessageSize, "1048576")
                .send()
                .await
                .map_err(|e| sdk_error("CreateQueue", &e))?;
            let url = output
                .queue_url()
                .context("CreateQueue gave no queue URL")?;
            Ok(json!({ "queueUrl": url }))
        }
        Command::DeleteQueue(queue) => {
            let client = client(&queue.endpoint).await?;
            client
                .delete_queue()
                .queue_url(&queue.queue_url)
                .send()
                .await
                .map_err(|e| sdk_error("DeleteQueue", &e))?;
            Ok(json!({ "deleted": queue.queue_url }))
        }
        Command::Purge(queue) => {
            let client = client(&queue.endpoint).await?;
            client
                .purge_queue()
                .queue_url(&queue.queue_url)
                .send()
                .await
                .map_err(|e| sdk_error("PurgeQueue", &e))?;
            Ok(json!({ "purged": queue.queue_url }))
        }
        Command::Count(queue) => {
            let client = client(&queue.endpoint).await?;
            let output = client
                .get_queue_attributes()
                .queue_url(&queue.queue_url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
                .send()
                .await
                .map_err(|e| sdk_error("GetQueueAttributes", &e))?;
            let messages: u64 = output
                .attributes()
                .map(|attributes| {
                    attributes
                        .values()
                        .filter_map(|v| v.parse::<u64>().ok())
                        .sum()
                })
                .unwrap_or_default();
            Ok(json!({ "messages": messages }))
        }
        Command::Ceiling(args) => ceiling(&args).await,
        Command::PerEvent(args) => per_event(&args).await,
        Command::Serve(args) => serve(&args).await,
    }
}

async fn client(endpoint: &Endpoint) -> Result<aws_sdk_sqs::Client> {
    let options = AwsOptions {
        region: Some(endpoint.region.clone()),
        endpoint_url: Some(endpoint.endpoint_url.clone()),
        ..AwsOptions::default()
    };
    let config = sdk_config(&options).await?;
    Ok(aws_sdk_sqs::Client::new(&config))
}

fn sdk_error<E: ProvideErrorMetadata + std::error::Error>(
    operation: &str,
    error: &E,
) -> anyhow::Error {
    anyhow::anyhow!(
        "{operation}: {}: {}",
        error.code().unwrap_or("error"),
        error
            .message()
            .map_or_else(|| error.to_string(), str::to_owned)
    )
}

/// The non-empty lines of `file`, at most `limit` of them.
fn read_events(file: &Path, limit: Option<usize>) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let events: Vec<String> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .take(limit.unwrap_or(usize::MAX))
        .map(str::to_owned)
        .collect();
    if events.is_empty() {
        bail!("{} holds no events", file.display());
    }
    Ok(events)
}

/// Runs `work` on every item of `items` with `concurrency` of them in flight, and returns the
/// tally and the seconds from the first request to the last answer.
async fn drive<T, F, Fut>(items: Vec<T>, concurrency: usize, work: F) -> Result<(Tally, f64)>
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Tally> + Send,
{
    let queue = Arc::new(Mutex::new(VecDeque::from(items)));
    let work = Arc::new(work);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (queue, work) = (Arc::clone(&queue), Arc::clone(&work));
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            loop {
                let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
                let Some(item) = next else { break };
                let one = work(item).await;
                tally.sent += one.sent;
                tally.failed += one.failed;
                tally.requests += one.requests;
                tally.billing_units += one.billing_units;
                tally.bytes += one.bytes;
                tally.retried += one.retried;
                tally.latencies.extend(one.latencies);
                if tally.first_error.is_none() {
                    tally.first_error = one.first_error;
                }
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for worker in workers {
        let tally = worker.await.context("a load task panicked")?;
        total.sent += tally.sent;
        total.failed += tally.failed;
        total.requests += tally.requests;
        total.billing_units += tally.billing_units;
        total.bytes += tally.bytes;
        total.retried += tally.retried;
        total.latencies.extend(tally.latencies);
        if total.first_error.is_none() {
            total.first_error = tally.first_error;
        }
    }
    Ok((total, started.elapsed().as_secs_f64()))
}

async fn ceiling(args: &LoadArgs) -> Result<Value> {
    let client = client(&args.queue.endpoint).await?;
    let events = read_events(&args.load.file, args.load.limit)?;
    // Batches as full as SQS allows: ten entries, or fewer when 1 MiB comes first.
    let mut batches: Vec<(Vec<SendMessageBatchRequestEntry>, usize)> = Vec::new();
    let mut entries = Vec::new();
    let mut bytes = 0;
    for body in events {
        if !entries.is_empty()
            && (entries.len() == MAX_BATCH_ENTRIES || bytes + body.len() > MAX_BATCH_BYTES)
        {
            batches.push((std::mem::take(&mut entries), bytes));
            bytes = 0;
        }
        bytes += body.len();
        let entry = SendMessageBatchRequestEntry::builder()
            .id(entries.len().to_string())
            .message_body(body)
            .build()
            .context("cannot build a batch entry")?;
        entries.push(entry);
    }
    batches.push((entries, bytes));
    let queue_url: Arc<str> = args.queue.queue_url.as_str().into();
    let (tally, seconds) = drive(batches, args.load.concurrency, move |(entries, bytes)| {
        let (client, queue_url) = (client.clone(), Arc::clone(&queue_url));
        async move {
            let mut tally = Tally::default();
            let count = entries.len() as u64;
            let started = Instant::now();
            let result = client
                .send_message_batch()
                .queue_url(queue_url.as_ref())
                .set_entries(Some(entries))
                .send()
                .await;
            match result {
                Ok(output) => {
                    let failed = output.failed().len() as u64;
                    if let Some(first) = output.failed().first() {
                        tally.first_error = Some(format!(
                            "{}: {}",
                            first.code(),
                            first.message().unwrap_or_default()
                        ));
                    }
                    tally.record(
                        output.successful().len() as u64,
                        failed,
                        bytes,
                        started.elapsed(),
                    );
                }
                Err(error) => tally.error(count, sdk_error("SendMessageBatch", &error).to_string()),
            }
            tally
        }
    })
    .await?;
    Ok(tally.report(args.load.concurrency, seconds))
}

async fn per_event(args: &LoadArgs) -> Result<Value> {
    let client = client(&args.queue.endpoint).await?;
    let events = read_events(&args.load.file, args.load.limit)?;
    let queue_url: Arc<str> = args.queue.queue_url.as_str().into();
    let (tally, seconds) = drive(events, args.load.concurrency, move |body| {
        let (client, queue_url) = (client.clone(), Arc::clone(&queue_url));
        async move {
            let mut tally = Tally::default();
            let bytes = body.len();
            let started = Instant::now();
            let result = client
                .send_message()
                .queue_url(queue_url.as_ref())
                .message_body(body)
                .send()
                .await;
            match result {
                Ok(_) => tally.record(1, 0, bytes, started.elapsed()),
                Err(error) => tally.error(1, sdk_error("SendMessage", &error).to_string()),
            }
            tally
        }
    })
    .await?;
    Ok(tally.report(args.load.concurrency, seconds))
}

async fn serve(args: &ServeArgs) -> Result<Value> {
    let events = read_events(&args.load.file, args.load.limit)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.load.concurrency)
        .build()
        .context("cannot build the HTTP client")?;
    let base = args.url.trim_end_matches('/');
    let before = scrape(&http, base).await?;
    let url: Arc<str> = format!("{base}/events").into();
    let client = http.clone();
    let (tally, seconds) = drive(events, args.load.concurrency, move |body| {
        let (http, url) = (client.clone(), Arc::clone(&url));
        async move { post(&http, &url, body).await }
    })
    .await?;
    let after = scrape(&http, base).await?;
    // The SQS requests are the forwarder's, from its metrics; the tally counted HTTP requests.
    let delta = |name: &str| match (after.get(name), before.get(name)) {
        (Some(a), Some(b)) => json!(a.saturating_sub(*b)),
        _ => Value::Null,
    };
    let mut report = tally.report(args.load.concurrency, seconds);
    report["requests"] = delta("forwarder_sqs_requests_total");
    report["billingUnits"] = delta("forwarder_sqs_billing_units_total");
    Ok(report)
}

/// Posts one event in structured mode until it is accepted; busy (429) and unavailable (503)
/// answers are tried again, and the latency counts the waits.
async fn post(http: &reqwest::Client, url: &str, body: String) -> Tally {
    const ATTEMPTS: u32 = 50;
    let mut tally = Tally::default();
    let bytes = body.len();
    let started = Instant::now();
    for attempt in 1..=ATTEMPTS {
        let result = http
            .post(url)
            .header("content-type", "application/cloudevents+json")
            .body(body.clone())
            .send()
            .await;
        let status = match result {
            Ok(response) => {
                let status = response.status();
                let _ = response.bytes().await;
                status
            }
            Err(error) => {
                tally.error(1, format!("POST {url}: {error}"));
                return tally;
            }
        };
        if status.is_success() {
            tally.record(1, 0, bytes, started.elapsed());
            return tally;
        }
        if !matches!(status.as_u16(), 429 | 503) || attempt == ATTEMPTS {
            tally.error(1, format!("POST {url}: HTTP {status}"));
            return tally;
        }
        tally.retried += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tally
}

/// The counters of `forwarder serve`'s Prometheus endpoint.
async fn scrape(
    http: &reqwest::Client,
    base: &str,
) -> Result<std::collections::HashMap<String, u64>> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .context("cannot read the forwarder's metrics")?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.split_once(' ')?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect())
}
