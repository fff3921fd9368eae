//! What the workspace's tests share, so that no test crate writes it again: how to reach the
//! embedded LocalStack (started if none runs) with its test credentials.
//!
//! Dev-only: libraries and shipped binaries never depend on this crate.

pub mod localstack_env;

pub use crate::localstack_env::{localstack_options, localstack_sqs, on_localstack};
