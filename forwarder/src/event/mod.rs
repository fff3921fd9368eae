//! One CloudEvents 1.0 event in the structured JSON format: parsing and validation.
//!
//! An [`Event`] keeps its attributes in the order they came, each as its raw JSON text, so that
//! `data` reaches the queue byte-exact: numbers are never parsed into floats or integers, and
//! strings are never re-escaped. Every MUST rule of CloudEvents 1.0 is checked; an event that
//! breaks one is refused with an [`EventError`] that names the attribute and the [`Rule`].
//!
//! An optional attribute whose value is JSON `null` is treated as absent and left out, so the
//! canonical form never carries nulls. That includes `data` and `data_base64`.
//!
//! Rooms: `model` (the [`Event`] and its accessors), `parse` (a line to members, order and raw
//! tokens kept), `validate` (the rules, attribute by attribute), `string` (the CloudEvents String
//! type), `data` (`data` and `data_base64`), `error` ([`EventError`] and [`Rule`]), and `syntax`
//! (the grammars: timestamps, URIs, media types).

mod data;
mod error;
mod model;
mod parse;
mod string;
mod syntax;
#[cfg(test)]
mod testing;
mod validate;

pub use data::MAX_DEPTH;
pub use error::{EventError, Rule};
pub use model::{Data, Event};
pub use parse::parse_event;
pub use string::is_allowed_in_string;
pub use syntax::{
    is_absolute_uri, is_json_media_type, is_media_type, is_rfc3339, is_uri_reference,
};
pub use validate::is_i32_token;
