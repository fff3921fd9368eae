//! The seam between `consume` and a durable log: a [`Source`] hands out [`Message`]s, and each
//! message is settled exactly one way, [`Message::ack`] (delivered), [`Message::nak`] (give it
//! back, to be delivered again after a delay), [`Message::term`] (never again: it was
//! dead-lettered), with [`Message::progress`] while it is being retried. JetStream implements
//! it in `jetstream`; a Kafka source would implement it too (a message's ack would commit its
//! offset once every earlier offset of its partition is settled).

use std::future::Future;
use std::time::Duration;

/// A source's failure, in one line naming what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// A message taken from a durable log, to be settled once.
pub trait Message: Send + Sync + 'static {
    /// The bytes: one CloudEvent in structured JSON.
    fn payload(&self) -> &[u8];
    /// Where it is in the log, for the dead-letter record: the log's label (`nats:STREAM`) and
    /// the message's position (the stream sequence).
    fn position(&self) -> (&str, u64);
    /// Delivered: never hand it out again.
    fn ack(&self) -> impl Future<Output = Result<(), SourceError>> + Send;
    /// Not delivered now: hand it out again (to any consumer) after `delay`.
    fn nak(&self, delay: Duration) -> impl Future<Output = Result<(), SourceError>> + Send;
    /// Dead-lettered: never hand it out again.
    fn term(&self) -> impl Future<Output = Result<(), SourceError>> + Send;
    /// Still being worked on: do not hand it out elsewhere yet.
    fn progress(&self) -> impl Future<Output = Result<(), SourceError>> + Send;
}

/// A durable log's messages, shared with other consumers of the same name.
pub trait Source: Send {
    /// Its messages.
    type Message: Message;
    /// How long a message may stay unsettled before the log hands it to another consumer.
    fn ack_wait(&self) -> Duration;
    /// The next message; `None` when the source has ended.
    fn next(&mut self) -> impl Future<Output = Option<Result<Self::Message, SourceError>>> + Send;
}
