//! The `forwarder` command: `send` NDJSON events, `serve` CloudEvents over HTTP, or `consume`
//! them from NATS JetStream, into SQS.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use tokio::sync::watch;

use aws_access::retry::Backoff;
use aws_access::sdk::{AwsOptions, sdk_config};
use forwarder::concurrency::Concurrency;
use forwarder::consume::{self, ConsumeOptions, JetStreamOptions};
use forwarder::dead_letter::DeadLetter;
use forwarder::destinations::{Destinations, Reload, Settings, assume_role, static_key};
use forwarder::message::{AttributeMode, ContentMode, MessageOptions};
use forwarder::metrics::Metrics;
use forwarder::pipeline::{Forwarder, Options};
use forwarder::send::{
    Input, SendOptions, Summary, Wrap, progress_counter, progress_line, send, window_for,
};
use forwarder::serve::{ServeOptions, TokenFile, serve};
use forwarder::sqs::{QueueUrl, Sqs};

#[derive(Debug, Parser)]
#[command(
    name = "forwarder",
    version,
    about = "Forwards events into Amazon SQS as CloudEvents 1.0"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send NDJSON events from files (or stdin) and exit with a summary.
    Send(SendArgs),
    /// Receive CloudEvents over HTTP (binary, structured, batched) and answer once SQS has them.
    Serve(ServeArgs),
    /// Consume CloudEvents from a NATS JetStream durable consumer (shared by any number of
    /// instances) into each event's destination.
    Consume(ConsumeArgs),
}

#[derive(Debug, Args)]
struct ConsumeArgs {
    /// The NATS server.
    #[arg(long)]
    nats_url: String,
    /// The JetStream stream.
    #[arg(long)]
    stream: String,
    /// The durable consumer's name; instances with the same name share the work.
    #[arg(long)]
    durable: String,
    /// Subject filters of the consumer (repeatable; all of the stream when none).
    #[arg(long)]
    subjects: Vec<String>,
    /// A directory of connection files, one per destination, each named by its stem; read
    /// again on SIGHUP.
    #[arg(long)]
    destinations: PathBuf,
    /// The attribute (context attribute or extension) whose value names the destination.
    #[arg(long)]
    route_by: String,
    /// Write what is terminated here (NDJSON: stream, sequence, reason, the message; 0600,
    /// fsynced before the termination).
    #[arg(long)]
    dead_letter: Option<PathBuf>,
    #[command(flatten)]
    message: MessageArgs,
    /// Messages the server hands out unacknowledged to all instances together.
    #[arg(long, default_value_t = 4096)]
    max_ack_pending: i64,
    /// Seconds a message may stay unacknowledged before the server hands it out again.
    #[arg(long, default_value_t = 30)]
    ack_wait_seconds: u64,
    /// Messages this instance holds at once.
    #[arg(long, default_value_t = 1000)]
    max_in_flight_messages: usize,
    /// Payload bytes this instance holds at once.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_in_flight_bytes: usize,
    /// `SendMessageBatch` requests in flight at once, per destination: `auto` (adaptive, from
    /// the round trip and throttling, at most 64) or a fixed number.
    #[arg(long, default_value = "auto")]
    max_in_flight: Concurrency,
    #[command(flatten)]
    linger: LingerArgs,
    /// Seconds SQS failures are retried before a message is handed back.
    #[arg(long, default_value_t = 20)]
    retry_max_seconds: u64,
    /// Seconds a message handed back waits before it is handed out again.
    #[arg(long, default_value_t = 5)]
    nak_delay_seconds: u64,
    /// Allow plain http to a non-loopback endpoint.
    #[arg(long)]
    allow_insecure_endpoint: bool,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    summary_json: bool,
    /// Log level: error, warn, info, debug, trace (or RUST_LOG).
    #[arg(long, default_value = "warn")]
    log_level: String,
}

#[derive(Debug, Args)]
struct Connection {
    /// The file `provisioner apply --out` wrote (JSON or KEY=value lines).
    #[arg(long)]
    config: Option<PathBuf>,
    /// A directory of connection files, one per destination, each named by its stem; read
    /// again on SIGHUP.
    #[arg(long, requires = "route_by", conflicts_with_all = ["config", "queue_url", "region", "endpoint_url"])]
    destinations: Option<PathBuf>,
    /// The attribute (context attribute or extension) whose value names the destination.
    #[arg(long, requires = "destinations")]
    route_by: Option<String>,
    /// The queue URL (overrides the file).
    #[arg(long)]
    queue_url: Option<String>,
    /// The region (overrides the file and AWS_REGION).
    #[arg(long)]
    region: Option<String>,
    /// An endpoint other than AWS (overrides the file and AWS_ENDPOINT_URL).
    #[arg(long)]
    endpoint_url: Option<String>,
    /// Allow plain http to a non-loopback endpoint.
    #[arg(long)]
    allow_insecure_endpoint: bool,
    /// Log level: error, warn, info, debug, trace (or RUST_LOG).
    #[arg(long, default_value = "warn")]
    log_level: String,
}

#[derive(Debug, Args)]
struct SendArgs {
    #[command(flatten)]
    connection: Connection,
    /// NDJSON files; stdin when none.
    files: Vec<PathBuf>,
    /// Wrap each line (a JSON payload) into a CloudEvent with this source.
    #[arg(long, requires = "ty")]
    source: Option<String>,
    /// The type of wrapped events.
    #[arg(long = "type", requires = "source")]
    ty: Option<String>,
    /// The subject of wrapped events.
    #[arg(long, requires = "source")]
    subject: Option<String>,
    /// Write what was not delivered here (NDJSON: the original line and the reason; 0600).
    #[arg(long)]
    dead_letter: Option<PathBuf>,
    /// Record each input file's acknowledged watermark here (atomically, every second or so).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Start each input file after the watermark the checkpoint has for it.
    #[arg(long, requires = "checkpoint")]
    resume: bool,
    /// Forward only events whose type matches (repeatable glob).
    #[arg(long)]
    only_type: Vec<String>,
    /// Never forward events whose type matches (repeatable glob).
    #[arg(long)]
    except_type: Vec<String>,
    #[command(flatten)]
    message: MessageArgs,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    summary_json: bool,
    /// `SendMessageBatch` requests in flight at once, per destination: `auto` (adaptive, from
    /// the round trip and throttling, at most 64) or a fixed number.
    #[arg(long, default_value = "auto")]
    max_in_flight: Concurrency,
    #[command(flatten)]
    linger: LingerArgs,
    /// Lines longer than this many bytes are refused without being read into memory.
    #[arg(long, default_value_t = 2 * 1024 * 1024)]
    max_line_bytes: usize,
}

/// How events become messages, for `send` and `serve`.
#[derive(Debug, Args)]
struct MessageArgs {
    /// Structured: the body is the event as JSON. Binary: the context in `ce-*` message
    /// attributes, the body is the data (an event binary mode cannot carry travels structured).
    #[arg(long, value_enum, default_value = "structured")]
    content_mode: ContentMode,
    /// Message attributes beside a structured body.
    #[arg(long, value_enum, default_value = "none")]
    attributes: AttributeMode,
    /// The attribute whose value is the message group (FIFO default: source).
    #[arg(long)]
    group_by: Option<String>,
}

impl MessageArgs {
    fn options(self, fifo: bool) -> Result<MessageOptions> {
        if self.content_mode == ContentMode::Binary && self.attributes != AttributeMode::None {
            bail!(
                "--attributes cloudevents goes with structured mode: --content-mode binary carries the context in attributes already"
            );
        }
        Ok(MessageOptions {
            content_mode: self.content_mode,
            attributes: self.attributes,
            group_by: self.group_by,
            fifo,
        })
    }
}

/// How long a partly filled batch waits for more events, for `send`, `serve` and `consume`.
#[derive(Debug, Args)]
struct LingerArgs {
    /// Milliseconds a partly filled batch waits for more events.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// While a request to the same queue is in flight, a partly filled batch waits on for the
    /// events its answer brings (producers waiting on an answer send again), up to this many
    /// milliseconds in all [default: 50, or --linger-ms if that is longer].
    #[arg(long)]
    max_linger_ms: Option<u64>,
}

/// The most a partly filled batch waits when `--max-linger-ms` is not given (unless
/// `--linger-ms` is longer).
const DEFAULT_MAX_LINGER_MS: u64 = 50;

impl LingerArgs {
    /// The pipeline's `(linger, max_linger)`; a most given below the least is refused.
    fn durations(&self) -> Result<(Duration, Duration)> {
        let max_linger_ms = match self.max_linger_ms {
            Some(max) if max < self.linger_ms => bail!(
                "--max-linger-ms {max} is below --linger-ms {}: a batch cannot wait less in all than it always waits",
                self.linger_ms
            ),
            Some(max) => max,
            None => DEFAULT_MAX_LINGER_MS.max(self.linger_ms),
        };
        Ok((
            Duration::from_millis(self.linger_ms),
            Duration::from_millis(max_linger_ms),
        ))
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    connection: Connection,
    /// The address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Require `Authorization: Bearer TOKEN` on ingest, TOKEN being this file's content (read
    /// again on SIGHUP).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Serve `/healthz` and `/metrics` on this address instead of `--listen`.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Ingest requests handled at once; more get 429.
    #[arg(long, default_value_t = 64)]
    max_in_flight_requests: usize,
    #[command(flatten)]
    message: MessageArgs,
    #[command(flatten)]
    linger: LingerArgs,
    /// The largest body of a binary or structured request, in bytes.
    #[arg(long, default_value_t = forwarder::serve::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// The largest body of a batched request, in bytes.
    #[arg(long, default_value_t = forwarder::serve::DEFAULT_MAX_BATCH_BODY_BYTES)]
    max_batch_body_bytes: usize,
    /// Seconds SQS failures are retried before the request gets 503.
    #[arg(long, default_value_t = 20)]
    retry_max_seconds: u64,
    /// Seconds one request may take, body and retries included, before it gets 503.
    #[arg(long, default_value_t = 60)]
    request_timeout_seconds: u64,
    /// Seconds a client may take to send a request's header before its connection is closed.
    #[arg(long, default_value_t = 10)]
    header_timeout_seconds: u64,
    /// Seconds a connection may stay open with no request in progress.
    #[arg(long, default_value_t = 60)]
    idle_timeout_seconds: u64,
    /// Connections open at once; more are closed as soon as they are accepted.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Body bytes the requests in flight may hold together; a request that does not fit gets 429.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_in_flight_bytes: usize,
    /// The most events in one batched request; more gets 413.
    #[arg(long, default_value_t = 1000)]
    max_batch_events: usize,
    /// Seconds shutdown waits for the requests in flight before closing their connections.
    #[arg(long, default_value_t = 30)]
    shutdown_timeout_seconds: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("forwarder: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            say(&format!("forwarder: {e:#}"));
            ExitCode::from(2)
        }
    };
    // After a second signal, requests may still be in flight: they are not waited for.
    runtime.shutdown_background();
    code
}

/// Writes a line to stderr; a closed stderr is not an error worth dying for.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Send(args) => run_send(args).await,
        Command::Serve(args) => run_serve(args).await,
        Command::Consume(args) => run_consume(args).await,
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("forwarder={level},warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Builds the SQS wrapper from the file, the flags and the environment (flags first).
async fn connect(connection: &Connection) -> Result<Sqs> {
    let file = match &connection.config {
        Some(path) => {
            let (config, warning) = aws_access::connection::read(path)?;
            if let Some(warning) = warning {
                eprintln!("forwarder: warning: {warning}");
            }
            Some(config)
        }
        None => None,
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let queue_url = connection
        .queue_url
        .clone()
        .or_else(|| file.as_ref().map(|f| f.queue_url.clone()))
        .context("no queue: pass --config FILE (from `provisioner apply --out`) or --queue-url")?;
    let queue_url = QueueUrl::parse(&queue_url).map_err(anyhow::Error::msg)?;
    let options = AwsOptions {
        region: connection
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| file.as_ref().map(|f| f.region.clone())),
        endpoint_url: connection
            .endpoint_url
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_SQS"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| file.as_ref().and_then(|f| f.endpoint.clone())),
        credentials: file.as_ref().and_then(static_key),
        assume_role: file.as_ref().and_then(assume_role),
        allow_insecure_endpoint: connection.allow_insecure_endpoint,
    };
    let sdk = sdk_config(&options).await?;
    Ok(Sqs::new(aws_sdk_sqs::Client::new(&sdk), queue_url))
}

/// The destinations of `--destinations DIR`, or the one queue of `--config`/`--queue-url`.
async fn targets(
    connection: &Connection,
    message: MessageArgs,
    pipeline: Options,
    window: usize,
) -> Result<Destinations> {
    let (Some(dir), Some(route_by)) = (&connection.destinations, &connection.route_by) else {
        let sqs = connect(connection).await?;
        let message = message.options(sqs.queue_url().is_fifo())?;
        let forwarder = Forwarder::start(sqs, pipeline, Arc::new(Metrics::default()));
        return Ok(Destinations::single(forwarder, message, window));
    };
    let settings = Settings {
        route_by: route_by.clone(),
        message: message.options(false)?,
        pipeline,
        window,
        allow_insecure_endpoint: connection.allow_insecure_endpoint,
    };
    let (destinations, reload) = Destinations::open(dir, settings).await?;
    report_reload(&reload);
    Ok(destinations)
}

/// Says on stderr what a (re)load of the destinations did.
fn report_reload(reload: &Reload) {
    for line in &reload.warnings {
        say(&format!("forwarder: warning: {line}"));
    }
    for line in &reload.errors {
        say(&format!("forwarder: {line}"));
    }
    let changes = &reload.changes;
    for (what, names) in [
        ("added", &changes.added),
        ("changed", &changes.changed),
        ("removed", &changes.removed),
    ] {
        if !names.is_empty() {
            let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
            say(&format!(
                "forwarder: destinations {what}: {}",
                names.join(", ")
            ));
        }
    }
}

/// The next SIGINT or SIGTERM, as the exit status it calls for (130 or 143).
async fn next_signal() -> u8 {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => 130,
        _ = terminate.recv() => 143,
    }
}

/// A watch that turns true on SIGINT or SIGTERM.
fn stop_on_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        next_signal().await;
        say("forwarder: stopping: finishing what is in flight");
        let _ = tx.send(true);
    });
    rx
}

/// On each SIGHUP, reads the token file again (a file that cannot be read keeps the old token)
/// and the destinations directory (a file that cannot be used keeps what was in force for it).
fn reload_on_hangup(
    token: Option<Arc<TokenFile>>,
    targets: Arc<Destinations>,
) -> Option<tokio::task::JoinHandle<()>> {
    // The handler is installed before the address is printed, so no SIGHUP after it kills us.
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()?;
    Some(tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            if let Some(token) = &token {
                match token.reload() {
                    Ok(()) => say("forwarder: the token file was read again"),
                    Err(error) => say(&format!(
                        "forwarder: {error}; the previous token stays in force"
                    )),
                }
            }
            match targets.reload().await {
                Ok(reload) => report_reload(&reload),
                Err(error) => say(&format!(
                    "forwarder: {error}; the destinations in force stay"
                )),
            }
        }
    }))
}

/// Stops the SIGHUP handler, then delivers what every destination holds and stops them.
async fn shut_down(targets: Arc<Destinations>, hangup: Option<tokio::task::JoinHandle<()>>) {
    if let Some(hangup) = hangup {
        hangup.abort();
        let _ = hangup.await;
    }
    if let Ok(targets) = Arc::try_unwrap(targets) {
        targets.shutdown().await;
    }
}

/// Counts SIGINT and SIGTERM; the first one's exit status is kept in `status`.
fn count_signals(status: Arc<std::sync::OnceLock<u8>>) -> watch::Receiver<u32> {
    let (tx, rx) = watch::channel(0);
    tokio::spawn(async move {
        let _ = status.set(next_signal().await);
        say("forwarder: stopping: delivering what was read (a second signal abandons it)");
        let _ = tx.send(1);
        next_signal().await;
        say("forwarder: aborting: dead-lettering what is pending as aborted");
        let _ = tx.send(2);
    });
    rx
}

async fn run_send(args: SendArgs) -> Result<ExitCode> {
    init_logging(&args.connection.log_level);
    let (linger, max_linger) = args.linger.durations()?;
    let window = window_for(args.max_in_flight);
    let pipeline = Options {
        concurrency: args.max_in_flight,
        linger,
        max_linger,
        ..Options::default()
    };
    let targets = Arc::new(targets(&args.connection, args.message, pipeline, window).await?);
    let hangup = reload_on_hangup(None, Arc::clone(&targets));
    let options = SendOptions {
        wrap: args.source.map(|source| Wrap {
            source,
            ty: args.ty.unwrap_or_default(),
            subject: args.subject,
        }),
        only_types: args.only_type,
        except_types: args.except_type,
        message: MessageOptions::default(),
        max_line_bytes: args.max_line_bytes,
        window,
        checkpoint: args.checkpoint,
        resume: args.resume,
    };
    let dead_letter = args
        .dead_letter
        .as_deref()
        .map(DeadLetter::open)
        .transpose()?;
    let metrics = Arc::clone(targets.metrics());
    let inputs = args.files.into_iter().map(Input::File).collect();
    let started = Instant::now();
    let progress = std::io::stderr().is_terminal().then(progress_counter);
    let ticker = progress.clone().map(|read| {
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let read = read.load(std::sync::atomic::Ordering::Relaxed);
                let _ = write!(
                    std::io::stderr(),
                    "{}",
                    progress_line(read, &metrics, started)
                );
            }
        })
    });
    let first_signal = Arc::new(std::sync::OnceLock::new());
    let signals = count_signals(Arc::clone(&first_signal));
    let summary = send(
        inputs,
        &options,
        &targets,
        dead_letter,
        say,
        signals.clone(),
        progress,
    )
    .await;
    if *signals.borrow() < 2 {
        shut_down(targets, hangup).await;
    }
    if let Some(ticker) = ticker {
        ticker.abort();
        say("");
    }
    let summary = summary?;
    print_summary(&summary, args.summary_json, started.elapsed());
    Ok(exit_code(&summary, first_signal.get().copied()))
}

async fn run_serve(args: ServeArgs) -> Result<ExitCode> {
    init_logging(&args.connection.log_level);
    let mut stop = stop_on_signal();
    let (linger, max_linger) = args.linger.durations()?;
    let pipeline = Options {
        linger,
        max_linger,
        backoff: Backoff {
            max_elapsed: Duration::from_secs(args.retry_max_seconds),
            ..Backoff::default()
        },
        ..Options::default()
    };
    let window = window_for(pipeline.concurrency);
    let targets = Arc::new(targets(&args.connection, args.message, pipeline, window).await?);
    let token = args
        .token_file
        .as_deref()
        .map(TokenFile::open)
        .transpose()?
        .map(Arc::new);
    let hangup = reload_on_hangup(token.clone(), Arc::clone(&targets));
    let options = ServeOptions {
        token,
        max_in_flight_requests: args.max_in_flight_requests.max(1),
        max_body_bytes: args.max_body_bytes,
        max_batch_body_bytes: args.max_batch_body_bytes,
        request_timeout: Duration::from_secs(args.request_timeout_seconds),
        header_timeout: Duration::from_secs(args.header_timeout_seconds.max(1)),
        idle_timeout: Duration::from_secs(args.idle_timeout_seconds.max(1)),
        max_connections: args.max_connections.max(1),
        max_in_flight_bytes: args.max_in_flight_bytes.max(1),
        max_batch_events: args.max_batch_events.max(1),
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout_seconds),
        ..ServeOptions::default()
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    let operations = match args.metrics_listen {
        Some(address) => {
            let operations = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} (--metrics-listen)"))?;
            eprintln!("metrics on http://{}", operations.local_addr()?);
            Some(operations)
        }
        None => None,
    };
    let stopped = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    serve(listener, operations, Arc::clone(&targets), options, stopped).await?;
    shut_down(targets, hangup).await;
    Ok(ExitCode::SUCCESS)
}

async fn run_consume(args: ConsumeArgs) -> Result<ExitCode> {
    init_logging(&args.log_level);
    let mut stop = stop_on_signal();
    let window = window_for(args.max_in_flight);
    let (linger, max_linger) = args.linger.durations()?;
    let settings = Settings {
        route_by: args.route_by,
        message: args.message.options(false)?,
        pipeline: Options {
            concurrency: args.max_in_flight,
            linger,
            max_linger,
            backoff: Backoff {
                max_elapsed: Duration::from_secs(args.retry_max_seconds),
                ..Backoff::default()
            },
            ..Options::default()
        },
        window,
        allow_insecure_endpoint: args.allow_insecure_endpoint,
    };
    let (targets, reload) = Destinations::open(&args.destinations, settings).await?;
    report_reload(&reload);
    let targets = Arc::new(targets);
    let hangup = reload_on_hangup(None, Arc::clone(&targets));
    let dead_letter = args
        .dead_letter
        .as_deref()
        .map(DeadLetter::open)
        .transpose()?;
    let source = consume::connect(&JetStreamOptions {
        url: args.nats_url,
        stream: args.stream,
        durable: args.durable,
        subjects: args.subjects,
        max_ack_pending: args.max_ack_pending.max(1),
        ack_wait: Duration::from_secs(args.ack_wait_seconds.max(1)),
        batch: args.max_in_flight_messages.clamp(1, 500),
        batch_bytes: (args.max_in_flight_bytes / 4).max(1024 * 1024),
    })
    .await?;
    say("forwarder: consuming");
    let options = ConsumeOptions {
        max_in_flight: args.max_in_flight_messages.max(1),
        max_in_flight_bytes: args.max_in_flight_bytes.max(1024),
        max_per_destination: window,
        nak_delay: Duration::from_secs(args.nak_delay_seconds),
    };
    let stopped = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    let summary = consume::consume(
        source,
        Arc::clone(&targets),
        dead_letter,
        options,
        say,
        stopped,
    )
    .await;
    shut_down(targets, hangup).await;
    if args.summary_json {
        let _ = writeln!(
            std::io::stdout(),
            "{}",
            serde_json::to_string(&summary).unwrap_or_default()
        );
    }
    say(&format!(
        "forwarder: {} received, {} acked, {} terminated ({} dead-lettered), {} handed back",
        summary.received, summary.acked, summary.terminated, summary.dead_lettered, summary.naked
    ));
    Ok(match summary.error {
        Some(error) => {
            say(&format!("forwarder: {error}"));
            ExitCode::from(2)
        }
        None => ExitCode::SUCCESS,
    })
}

fn print_summary(summary: &Summary, json: bool, elapsed: Duration) {
    if json {
        let _ = writeln!(
            std::io::stdout(),
            "{}",
            serde_json::to_string(summary).unwrap_or_default()
        );
    }
    if let Some(error) = &summary.error {
        say(&format!("forwarder: {error}"));
    }
    say(&format!(
        "forwarder: {} read, {} sent, {} refused, {} failed, {} filtered; {} requests ({:.3} per event), {} retried, {:.1}s{}",
        summary.read,
        summary.sent,
        summary.refused,
        summary.failed,
        summary.filtered,
        summary.requests,
        summary.requests as f64 / summary.sent.max(1) as f64,
        summary.retried,
        elapsed.as_secs_f64(),
        match &summary.stopped_at {
            Some(at) => format!("; stopped before {at}"),
            None => String::new(),
        },
    ));
    if summary.sent_structured > 0 {
        say(&format!(
            "forwarder: {} of the events sent travelled structured: binary mode could not carry them (no data, binary data, over 10 attributes, an empty extension, or text SQS refuses)",
            summary.sent_structured
        ));
    }
}

/// 2 after an error, 130 or 143 after SIGINT or SIGTERM, 0 if SQS accepted every event, else 1.
fn exit_code(summary: &Summary, signal: Option<u8>) -> ExitCode {
    if summary.error.is_some() {
        ExitCode::from(2)
    } else if let Some(status) = signal {
        ExitCode::from(status)
    } else if summary.all_delivered() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
