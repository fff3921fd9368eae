//! What the workspace's tests share, so that no test crate writes it again: how to reach the
//! embedded LocalStack (started if none runs) with its test credentials, queues that remove
//! themselves, draining a queue, unique names and scratch directories, the binaries under test,
//! the official CloudEvents cases, and scanning output for a leaked secret.
//!
//! Dev-only: libraries and shipped binaries never depend on this crate.

pub mod binary;
pub mod drain;
pub mod leak;
pub mod localstack_env;
pub mod names;
pub mod official;
pub mod queue;
pub mod scratch;

pub use crate::drain::{Received, drain};
pub use crate::localstack_env::{localstack_options, localstack_sqs, on_localstack};
pub use crate::names::unique;
pub use crate::queue::TestQueue;
pub use crate::scratch::TempDir;
