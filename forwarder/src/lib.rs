//! Forwards events into Amazon SQS as CloudEvents 1.0 structured JSON: the payload byte-exact,
//! batched, retried, and every event accounted for.
//!
//! Pure logic ([`event`], [`encode`], [`batch`], [`glob`], [`input`], [`message`]) knows
//! nothing of the SDK; [`sqs`] is the thin client wrapper; [`pipeline`] batches and retries,
//! with as many requests in flight as [`concurrency`] allows;
//! [`send`] drives NDJSON input through it (with its [`dead_letter`] file and [`checkpoint`]),
//! and [`serve`] CloudEvents over HTTP.

pub mod batch;
pub mod binary;
pub mod checkpoint;
mod collector;
pub mod concurrency;
pub mod consume;
pub mod dead_letter;
pub mod destinations;
pub mod encode;
pub mod event;
pub mod glob;
pub mod input;
pub mod message;
pub mod metrics;
pub mod pipeline;
mod reader;
pub mod send;
pub mod serve;
pub mod sqs;
mod watermark;
