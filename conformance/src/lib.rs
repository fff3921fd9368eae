//! The conformance judge: decides whether SQS messages carry CloudEvents 1.0,
//! in structured JSON mode or in binary mode ([`binary`]), independently of
//! the forwarder that wrote them.
//!
//! The judge layers three checks, each written from the specifications rather
//! than from the forwarder's code:
//!
//! - a JSON Schema of our own (`src/schema.json`), stricter than the official
//!   CloudEvents schema;
//! - the MUST rules a schema cannot express (`rules`), read from the raw body
//!   so that no number loses precision and no duplicate key goes unseen;
//! - the agreement between SQS message attributes (`ce-*`, `content-type`)
//!   and the body.
//!
//! [`judge`] applies them to one SQS message, [`check::check_queue`] drains a
//! queue through them, and [`report`] renders the verdicts.

pub mod binary;
pub mod check;
pub mod client;
pub mod fidelity;
mod judge;
pub mod report;
mod rules;
pub mod run;
pub mod run_report;
pub mod vectors;

pub use judge::{Message, Problem, Verdict, judge, judge_event_json, schema};
