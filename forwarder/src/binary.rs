//! Binary content mode: the event's context in message attributes, its data as the body.
//!
//! The layout is the one the CloudEvents HTTP and Kafka bindings use, and the one the SQS
//! binding proposed for sdk-go takes: every context attribute `NAME` (extensions included) is a
//! String message attribute `ce-NAME` holding the value's canonical string (a string as it is,
//! an integer as its decimal token, a boolean as `true` or `false`); `datacontenttype` is the
//! attribute `content-type`; the body is the data, byte for byte: JSON data as its JSON text
//! (whitespace kept, only the characters SQS refuses escaped, which a JSON reader reads as the
//! same characters), a string under a non-JSON `datacontenttype` as the string itself.
//!
//! SQS cannot carry every event that way, and such an event travels in structured mode
//! instead, never refused or altered: one without data (SQS refuses an empty body), one with
//! `data_base64` (a body is text, not bytes), one with more than ten context attributes (SQS
//! allows ten message attributes), one with an attribute value that is empty or holds a
//! character SQS refuses in attributes, and one whose text data holds such a character. The
//! reason is a [`Fallback`]; the summary and `/metrics` count these events.

use std::fmt;

use crate::encode::{sqs_safe, sqs_safe_json};
use crate::event::{Event, is_json_media_type};
use crate::message::MAX_MESSAGE_ATTRIBUTES;

/// A binary-mode message's body and String attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    /// The data.
    pub body: String,
    /// `ce-*` attributes and `content-type`, in the event's order.
    pub attributes: Vec<(String, String)>,
}

/// Why an event travels in structured mode although binary mode was asked for.
///
/// A CloudEvents String never holds a character SQS refuses in attributes (control
/// characters, noncharacters), so [`Fallback::AttributeValue`] is in practice an empty
/// extension value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// The event has no data, or empty text data: SQS refuses an empty body.
    NoData,
    /// The data is `data_base64`: a message body is text.
    BinaryData,
    /// More context attributes than SQS allows message attributes.
    TooManyAttributes(usize),
    /// An attribute value is empty or holds a character SQS refuses.
    AttributeValue(String),
    /// Text data holds a character SQS refuses in a body.
    DataCharacters,
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fallback::NoData => f.write_str("the event has no data"),
            Fallback::BinaryData => f.write_str("the data is binary (data_base64)"),
            Fallback::TooManyAttributes(count) => write!(
                f,
                "{count} context attributes, more than the {MAX_MESSAGE_ATTRIBUTES} message attributes SQS allows"
            ),
            Fallback::AttributeValue(name) => write!(
                f,
                "attribute `{name}` is empty or holds a character SQS refuses in attributes"
            ),
            Fallback::DataCharacters => {
                f.write_str("the text data holds a character SQS refuses in a body")
            }
        }
    }
}

/// The binary-mode form of `event`, or why it has none.
pub fn to_binary(event: &Event) -> Result<Binary, Fallback> {
    let body = body(event)?;
    let mut attributes = Vec::with_capacity(event.attributes().len());
    for (name, raw) in event.attributes() {
        if name == "data" || name == "data_base64" {
            continue;
        }
        let key = if name == "datacontenttype" {
            "content-type".to_owned()
        } else {
            format!("ce-{name}")
        };
        let value = canonical_string(name, raw.get(), event);
        if value.is_empty() || !sqs_safe(&value) {
            return Err(Fallback::AttributeValue(name.to_owned()));
        }
        attributes.push((key, value));
    }
    if attributes.len() > MAX_MESSAGE_ATTRIBUTES {
        return Err(Fallback::TooManyAttributes(attributes.len()));
    }
    Ok(Binary { body, attributes })
}

/// The body: JSON data as its text, string data under a non-JSON content type as the string.
fn body(event: &Event) -> Result<String, Fallback> {
    if event.data_base64().is_some() {
        return Err(Fallback::BinaryData);
    }
    let Some(data) = event.data() else {
        return Err(Fallback::NoData);
    };
    let json = event.datacontenttype().is_none_or(is_json_media_type);
    if json {
        return Ok(sqs_safe_json(data.get()));
    }
    // Validation guarantees string data under a non-JSON content type.
    let text: String = serde_json::from_str(data.get()).map_err(|_| Fallback::DataCharacters)?;
    if text.is_empty() {
        return Err(Fallback::NoData);
    }
    if !sqs_safe(&text) {
        return Err(Fallback::DataCharacters);
    }
    Ok(text)
}

/// A context attribute's canonical string: strings decoded, integers and booleans as their
/// tokens (validation allows no other type).
fn canonical_string(name: &str, raw: &str, event: &Event) -> String {
    match event.attribute_str(name) {
        Some(text) => text.to_owned(),
        None => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;

    /// The body and the attributes binary mode gives, or why it cannot.
    type Expected<'a> = Result<(&'a str, &'a [(&'a str, &'a str)]), Fallback>;

    fn check(line: &str, expected: Expected<'_>) {
        let event = parse_event(line.as_bytes()).expect("the test event is valid");
        let expected = expected.map(|(body, attributes)| Binary {
            body: body.to_owned(),
            attributes: attributes
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        });
        assert_eq!(to_binary(&event), expected, "{line}");
    }

    #[test]
    fn context_in_attributes_and_json_data_as_its_text() {
        check(
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json","time":"2020-01-01T00:00:00Z","ext":-2147483648,"flag":true,"data":{ "n": 1.50e+400, "k": "\u00e9" }}"#,
            Ok((
                r#"{ "n": 1.50e+400, "k": "\u00e9" }"#,
                &[
                    ("ce-specversion", "1.0"),
                    ("ce-id", "1"),
                    ("ce-source", "/s"),
                    ("ce-type", "t"),
                    ("content-type", "application/json"),
                    ("ce-time", "2020-01-01T00:00:00Z"),
                    ("ce-ext", "-2147483648"),
                    ("ce-flag", "true"),
                ],
            )),
        );
    }

    #[test]
    fn data_without_content_type_is_json() {
        check(
            r#"{"specversion":"1.0","id":"\u0031","source":"\/s","type":"t","data":"x"}"#,
            Ok((
                r#""x""#,
                &[
                    ("ce-specversion", "1.0"),
                    ("ce-id", "1"),
                    ("ce-source", "/s"),
                    ("ce-type", "t"),
                ],
            )),
        );
    }

    #[test]
    fn text_data_is_the_string_itself() {
        check(
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain; charset=utf-8","data":"line 1\nline \"2\" \ud83d\ude00"}"#,
            Ok((
                "line 1\nline \"2\" \u{1F600}",
                &[
                    ("ce-specversion", "1.0"),
                    ("ce-id", "1"),
                    ("ce-source", "/s"),
                    ("ce-type", "t"),
                    ("content-type", "text/plain; charset=utf-8"),
                ],
            )),
        );
    }

    #[test]
    fn what_binary_mode_cannot_carry() {
        let base = r#""specversion":"1.0","id":"1","source":"/s","type":"t""#;
        check(&format!("{{{base}}}"), Err(Fallback::NoData));
        check(
            &format!(r#"{{{base},"datacontenttype":"text/plain","data":""}}"#),
            Err(Fallback::NoData),
        );
        check(
            &format!(r#"{{{base},"data_base64":"AAE="}}"#),
            Err(Fallback::BinaryData),
        );
        check(
            &format!(r#"{{{base},"datacontenttype":"text/plain","data":"\u0001"}}"#),
            Err(Fallback::DataCharacters),
        );
        check(
            &format!(r#"{{{base},"ext":"","data":1}}"#),
            Err(Fallback::AttributeValue("ext".to_owned())),
        );
        // Ten attributes fit; the eleventh sends the event structured.
        let extensions = |n: usize| {
            (1..=n)
                .map(|i| format!(r#","e{i}":"x""#))
                .collect::<String>()
        };
        let event = parse_event(format!(r#"{{{base}{},"data":1}}"#, extensions(6)).as_bytes())
            .expect("valid");
        assert_eq!(to_binary(&event).map(|b| b.attributes.len()), Ok(10));
        check(
            &format!(r#"{{{base}{},"data":1}}"#, extensions(7)),
            Err(Fallback::TooManyAttributes(11)),
        );
    }
}
