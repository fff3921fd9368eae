//! Why an event is refused: [`EventError`], with the [`Rule`] it breaks for machines, and the
//! helpers that keep every message about a value to one safe line.

use std::fmt::{self, Write as _};

use thiserror::Error;

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EventError {
    /// The input is not UTF-8.
    #[error("not valid UTF-8: invalid byte at offset {offset}")]
    Utf8 {
        /// The offset of the first byte that is not part of a valid UTF-8 sequence.
        offset: usize,
    },
    /// The input is not a JSON object.
    #[error("not valid JSON: {message}")]
    Json {
        /// What serde_json said, with line and column.
        message: String,
    },
    /// A required attribute is absent.
    #[error("missing required attribute `{attribute}`")]
    Missing {
        /// The attribute's name.
        attribute: &'static str,
    },
    /// An attribute appears twice.
    #[error("duplicate attribute `{}`", Shown(.attribute))]
    Duplicate {
        /// The attribute's name.
        attribute: String,
    },
    /// An attribute breaks a rule.
    #[error("attribute `{}`: {problem}", Shown(.attribute))]
    Invalid {
        /// The attribute's name.
        attribute: String,
        /// The rule it breaks.
        rule: Rule,
        /// What is wrong, in words.
        problem: String,
    },
}

/// The rules an event can break, for machines (see [`Rule::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// Text must be UTF-8.
    Utf8,
    /// The event must be a JSON object, nested at most [`MAX_DEPTH`](super::MAX_DEPTH) deep.
    Json,
    /// `id`, `source`, `specversion` and `type` must be present and not null.
    Required,
    /// An attribute appears at most once.
    Duplicate,
    /// Attribute names are lower-case ASCII letters and digits.
    Name,
    /// Context attributes are strings.
    Type,
    /// String attributes are not empty.
    NonEmpty,
    /// String attributes hold no control characters and no noncharacters.
    Characters,
    /// `specversion` is "1.0".
    SpecVersion,
    /// `source` is a URI-reference (RFC 3986).
    UriReference,
    /// `dataschema` is an absolute URI (RFC 3986).
    Uri,
    /// `time` is an RFC 3339 timestamp.
    Rfc3339,
    /// `datacontenttype` is an RFC 2046 media type.
    MediaType,
    /// Extension values are strings, booleans or 32-bit integers.
    ExtensionType,
    /// `data` and `data_base64` are not both present.
    DataExclusive,
    /// `data_base64` is standard, padded base64.
    Base64,
    /// `data` is a string when `datacontenttype` is not JSON (JSON format, section 3.1.1).
    DataType,
}

impl EventError {
    /// The attribute at fault, if the fault is in one attribute.
    pub fn attribute(&self) -> Option<&str> {
        match self {
            EventError::Utf8 { .. } | EventError::Json { .. } => None,
            EventError::Missing { attribute } => Some(attribute),
            EventError::Duplicate { attribute } | EventError::Invalid { attribute, .. } => {
                Some(attribute)
            }
        }
    }

    /// The rule broken, as a short machine-readable string (see [`Rule::as_str`]).
    pub fn rule(&self) -> &'static str {
        let rule = match self {
            EventError::Utf8 { .. } => Rule::Utf8,
            EventError::Json { .. } => Rule::Json,
            EventError::Missing { .. } => Rule::Required,
            EventError::Duplicate { .. } => Rule::Duplicate,
            EventError::Invalid { rule, .. } => *rule,
        };
        rule.as_str()
    }
}

impl Rule {
    /// The rule's short name: "utf-8", "json", "required", "duplicate", "name", "type",
    /// "non-empty", "specversion", "uri-reference", "uri", "rfc3339", "media-type",
    /// "extension-type", "data-exclusive", "base64" or "data-type".
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Utf8 => "utf-8",
            Rule::Json => "json",
            Rule::Required => "required",
            Rule::Duplicate => "duplicate",
            Rule::Name => "name",
            Rule::Type => "type",
            Rule::NonEmpty => "non-empty",
            Rule::Characters => "characters",
            Rule::SpecVersion => "specversion",
            Rule::UriReference => "uri-reference",
            Rule::Uri => "uri",
            Rule::Rfc3339 => "rfc3339",
            Rule::MediaType => "media-type",
            Rule::ExtensionType => "extension-type",
            Rule::DataExclusive => "data-exclusive",
            Rule::Base64 => "base64",
            Rule::DataType => "data-type",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An [`EventError::Invalid`]: attribute `name` breaks `rule`, as `problem` says.
pub(super) fn invalid(name: &str, rule: Rule, problem: String) -> EventError {
    EventError::Invalid {
        attribute: name.to_owned(),
        rule,
        problem,
    }
}

/// What kind of JSON value a raw text is, for error messages.
pub(super) fn kind(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        _ => "a number",
    }
}

/// At most this many characters of a value are shown in an error message.
const MAX_SHOWN: usize = 80;

/// A value shown in an error message: at most [`MAX_SHOWN`] characters, with control characters
/// and non-characters escaped so the message stays one safe line.
pub(super) struct Shown<'a>(pub(super) &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.chars().enumerate() {
            if i == MAX_SHOWN {
                return f.write_char('…');
            }
            if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') {
                write!(f, "{}", c.escape_unicode())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::event::parse_event;
    use crate::event::testing::event;

    #[test]
    fn error_accessors() {
        let error = parse_event(event(r#","time":"x""#).as_bytes()).expect_err("bad time");
        assert_eq!(error.attribute(), Some("time"));
        assert_eq!(error.rule(), "rfc3339");
        let error = parse_event(b"{}").expect_err("empty");
        assert_eq!(error.attribute(), Some("id"));
        assert_eq!(error.rule(), "required");
        let error = parse_event(b"{").expect_err("truncated");
        assert_eq!(error.attribute(), None);
        assert_eq!(error.rule(), "json");
        let long = "x".repeat(200);
        let error =
            parse_event(event(&format!(r#","time":"{long}""#)).as_bytes()).expect_err("bad time");
        assert_eq!(
            error.to_string(),
            format!(
                "attribute `time`: not an RFC 3339 timestamp (`{}…`)",
                "x".repeat(80)
            )
        );
    }
}
