//! The grammars of attribute values: timestamps for `time`, URIs for `source` and `dataschema`,
//! media types for `datacontenttype`. Each is a `fn(&str) -> bool` that the validator applies to
//! the decoded string.

mod media_type;
mod timestamp;
mod uri;

pub use media_type::{is_json_media_type, is_media_type};
pub use timestamp::is_rfc3339;
pub use uri::{is_absolute_uri, is_uri_reference};
