//! The NATS JetStream [`Source`]: a durable pull consumer that any number of instances share
//! by its name (the work-queue pattern). Explicit acks; `max_ack_pending` bounds what the
//! server hands out unacknowledged to all instances together, and each pull asks for a bounded
//! number of messages and bytes.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer};
use futures_util::StreamExt;

use super::source::{Message, Source, SourceError};

/// Where and how to consume.
#[derive(Debug, Clone)]
pub struct JetStreamOptions {
    /// The server, `nats://HOST:PORT`.
    pub url: String,
    /// The stream.
    pub stream: String,
    /// The durable consumer's name, shared by every instance.
    pub durable: String,
    /// Subject filters (all of the stream when empty).
    pub subjects: Vec<String>,
    /// Messages handed out and not yet acknowledged, across all instances.
    pub max_ack_pending: i64,
    /// How long a message may stay unacknowledged before it is handed out again.
    pub ack_wait: Duration,
    /// Messages asked for in one pull.
    pub batch: usize,
    /// Bytes asked for in one pull.
    pub batch_bytes: usize,
}

/// The consumer's messages; see the module documentation.
pub struct JetStream {
    label: String,
    ack_wait: Duration,
    messages: consumer::pull::Stream,
}

/// One JetStream message.
pub struct NatsMessage {
    label: String,
    sequence: u64,
    payload: bytes::Bytes,
    acker: jetstream::message::Acker,
}

/// Connects, finds the stream, and creates the durable consumer (or joins it).
pub async fn connect(options: &JetStreamOptions) -> Result<JetStream, SourceError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| SourceError(format!("{what}: {e}"));
    let client = async_nats::connect(&options.url)
        .await
        .map_err(|e| fail(&format!("cannot connect to NATS at {}", options.url), &e))?;
    let context = jetstream::new(client);
    let stream = context
        .get_stream(&options.stream)
        .await
        .map_err(|e| fail(&format!("no JetStream stream `{}`", options.stream), &e))?;
    let config = consumer::pull::Config {
        durable_name: Some(options.durable.clone()),
        filter_subjects: options.subjects.clone(),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: options.ack_wait,
        max_ack_pending: options.max_ack_pending,
        max_deliver: -1,
        ..Default::default()
    };
    let what = format!(
        "cannot create the durable consumer `{}` on stream `{}`",
        options.durable, options.stream
    );
    // Instances starting together may race to create it: the loser finds it made.
    let mut attempt = 0;
    let consumer: consumer::PullConsumer = loop {
        attempt += 1;
        match stream
            .get_or_create_consumer(&options.durable, config.clone())
            .await
        {
            Ok(consumer) => break consumer,
            Err(_) if attempt < 3 => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => return Err(fail(&what, &e)),
        }
    };
    let messages = consumer
        .stream()
        .max_messages_per_batch(options.batch.max(1))
        .max_bytes_per_batch(options.batch_bytes.max(1))
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|e| fail(&format!("cannot pull from `{}`", options.durable), &e))?;
    Ok(JetStream {
        label: format!("nats:{}", options.stream),
        ack_wait: options.ack_wait,
        messages,
    })
}

impl Source for JetStream {
    type Message = NatsMessage;

    fn ack_wait(&self) -> Duration {
        self.ack_wait
    }

    async fn next(&mut self) -> Option<Result<NatsMessage, SourceError>> {
        let message = match self.messages.next().await? {
            Ok(message) => message,
            Err(e) => return Some(Err(SourceError(format!("{}: {e}", self.label)))),
        };
        let sequence = message.info().map(|info| info.stream_sequence).unwrap_or(0);
        let (message, acker) = message.split();
        Some(Ok(NatsMessage {
            label: self.label.clone(),
            sequence,
            payload: message.payload,
            acker,
        }))
    }
}

impl std::fmt::Debug for JetStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStream")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for NatsMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsMessage")
            .field("label", &self.label)
            .field("sequence", &self.sequence)
            .field("bytes", &self.payload.len())
            .finish_non_exhaustive()
    }
}

impl NatsMessage {
    async fn settle(&self, kind: AckKind) -> Result<(), SourceError> {
        self.acker.ack_with(kind).await.map_err(|e| {
            SourceError(format!(
                "{} sequence {}: cannot acknowledge: {e}",
                self.label, self.sequence
            ))
        })
    }
}

impl Message for NatsMessage {
    fn payload(&self) -> &[u8] {
        &self.payload
    }

    fn position(&self) -> (&str, u64) {
        (&self.label, self.sequence)
    }

    async fn ack(&self) -> Result<(), SourceError> {
        self.settle(AckKind::Ack).await
    }

    async fn nak(&self, delay: Duration) -> Result<(), SourceError> {
        self.settle(AckKind::Nak(Some(delay))).await
    }

    async fn term(&self) -> Result<(), SourceError> {
        self.settle(AckKind::Term).await
    }

    async fn progress(&self) -> Result<(), SourceError> {
        self.settle(AckKind::Progress).await
    }
}
