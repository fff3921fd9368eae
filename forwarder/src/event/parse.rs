//! Reading one line into members: UTF-8 without a byte order mark, one JSON object whose members
//! are kept in order, duplicates included, each value as its raw JSON token (`RawValue`), so
//! nothing is parsed into numbers or re-escaped before validation.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::error::EventError;
use super::model::Event;
use super::validate::validate;

/// Parses and validates one event in the CloudEvents 1.0 structured JSON format.
///
/// Attribute order is kept and `data` stays byte-exact; optional attributes that are `null` are
/// left out.
pub fn parse_event(line: &[u8]) -> Result<Event, EventError> {
    let text = std::str::from_utf8(line).map_err(|error| EventError::Utf8 {
        offset: error.valid_up_to(),
    })?;
    if text.starts_with('\u{feff}') {
        return Err(EventError::Json {
            message: "starts with a byte order mark (U+FEFF): save the file as UTF-8 without BOM"
                .to_owned(),
        });
    }
    let Members(members) = serde_json::from_str(text).map_err(|error| EventError::Json {
        message: error.to_string(),
    })?;
    validate(members)
}

/// The members of the top-level JSON object, in order, duplicates included.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MembersVisitor)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of CloudEvents attributes")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(10));
        while let Some(member) = map.next_entry::<String, Box<RawValue>>()? {
            members.push(member);
        }
        Ok(Members(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::testing::{check, event};

    #[test]
    fn input_errors() {
        check(
            "{\"id\":\"\u{e9}\"}",
            "required: missing required attribute `source`",
        );
        let mut bytes = event("").into_bytes();
        bytes[12] = 0xFF;
        let error = parse_event(&bytes).expect_err("invalid UTF-8");
        assert_eq!(
            format!("{}: {error}", error.rule()),
            "utf-8: not valid UTF-8: invalid byte at offset 12"
        );
        assert_eq!(error.attribute(), None);
        check(
            "[1]",
            "json: not valid JSON: invalid type: sequence, expected a JSON object of CloudEvents attributes at line 1 column 0",
        );
        check(
            "{\"id\":",
            "json: not valid JSON: EOF while parsing a value at line 1 column 6",
        );
        check(
            &format!("{} x", event("")),
            "json: not valid JSON: trailing characters at line 1 column 57",
        );
        check(&format!("{}\r\n", event("")), "ok");
        check(
            "",
            "json: not valid JSON: EOF while parsing a value at line 1 column 0",
        );
    }

    #[test]
    fn a_byte_order_mark_is_named() {
        let line = format!("\u{feff}{}", event(""));
        let error = parse_event(line.as_bytes()).expect_err("a BOM is refused");
        assert_eq!(error.rule(), "json");
        assert!(error.to_string().contains("byte order mark"), "{error}");
    }
}
