//! The CloudEvents HTTP protocol binding: which of the three modes a request is in (binary,
//! structured, batched), its body read within a limit, and the events it carries.

use std::future::poll_fn;
use std::pin::Pin;

use axum::body::{Body, HttpBody};
use axum::http::{HeaderMap, header};

use super::problem::{Kind, Problem};
use super::{BATCH, STRUCTURED};
use crate::event::{Data, Event, EventError};

/// The three content modes of the HTTP binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Binary,
    Structured,
    Batch,
}

/// Why an event is invalid: an [`EventError`], or a header that cannot be decoded.
#[derive(Debug)]
pub(super) struct Invalid {
    pub(super) attribute: Option<String>,
    pub(super) rule: &'static str,
    pub(super) detail: String,
}

/// The content mode of a request, from its `Content-Type` and `ce-specversion` headers.
pub(super) fn mode(headers: &HeaderMap) -> Result<Mode, Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(essence);
    match content_type.as_deref() {
        Some(STRUCTURED) => Ok(Mode::Structured),
        Some(BATCH) => Ok(Mode::Batch),
        Some(other)
            if other.starts_with("application/cloudevents+")
                || other.starts_with("application/cloudevents-batch+") =>
        {
            Err(Problem::new(
                Kind::UnsupportedMediaType,
                format!("the event format `{other}` is not supported: use {STRUCTURED} or {BATCH}"),
            ))
        }
        _ if headers.contains_key("ce-specversion") => Ok(Mode::Binary),
        Some(other) => Err(Problem::new(
            Kind::UnsupportedMediaType,
            format!(
                "`{other}` without ce-* headers is not a CloudEvent: use {STRUCTURED}, {BATCH}, or \
             binary mode (ce-specversion, ce-id, ce-source and ce-type headers)"
            ),
        )),
        None => Err(Problem::new(
            Kind::UnsupportedMediaType,
            format!(
                "no Content-Type and no ce-* headers: use {STRUCTURED}, {BATCH}, or binary mode \
             (ce-specversion, ce-id, ce-source and ce-type headers)"
            ),
        )),
    }
}

/// A media type's `type/subtype`, lower-case, without parameters.
pub(super) fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The value of a media type's `charset` parameter, lower-case and unquoted.
pub(super) fn charset(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
    })
}

/// Builds the event of a binary-mode request: `ce-*` headers in their order (values
/// percent-decoded), then `datacontenttype` from `Content-Type`, then the data.
pub(super) fn binary_event(headers: &HeaderMap, body: &[u8]) -> Result<Event, Invalid> {
    let mut attributes = Vec::new();
    for (name, value) in headers {
        let Some(attribute) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        let value = percent_decode(value.as_bytes()).map_err(|(rule, problem)| Invalid {
            attribute: Some(attribute.to_owned()),
            rule,
            detail: format!("header `{name}`: {problem}"),
        })?;
        attributes.push((attribute.to_owned(), value));
    }
    let content_type = match headers.get(header::CONTENT_TYPE) {
        Some(value) => Some(value.to_str().map_err(|_| Invalid {
            attribute: Some("datacontenttype".to_owned()),
            rule: "media-type",
            detail: "Content-Type is not ASCII".to_owned(),
        })?),
        None => None,
    };
    if let Some(content_type) = content_type {
        attributes.push(("datacontenttype".to_owned(), content_type.to_owned()));
    }
    let text;
    let data = match content_type {
        _ if body.is_empty() => Data::None,
        None => Data::Binary(body),
        Some(content_type) => match data_kind(content_type) {
            DataKind::Json => Data::Json(body),
            DataKind::Text => {
                let string = std::str::from_utf8(body).map_err(|error| Invalid {
                    attribute: Some("data".to_owned()),
                    rule: "utf-8",
                    detail: format!(
                        "attribute `data`: {content_type} body is not valid UTF-8: invalid byte at offset {}",
                        error.valid_up_to()
                    ),
                })?;
                text = serde_json::to_string(string).map_err(|error| Invalid {
                    attribute: Some("data".to_owned()),
                    rule: "json",
                    detail: error.to_string(),
                })?;
                Data::Json(text.as_bytes())
            }
            DataKind::Binary => Data::Binary(body),
        },
    };
    Event::from_parts(attributes, data).map_err(Invalid::from)
}

/// How a binary-mode body is carried in the structured event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DataKind {
    /// As `data`, the JSON text itself.
    Json,
    /// As `data`, a JSON string.
    Text,
    /// As `data_base64`.
    Binary,
}

/// JSON media types (`application/json`, `*/json`, `*/*+json`) keep their body as JSON; `text/*`
/// in UTF-8 (or US-ASCII, or no charset) becomes a string; everything else is base64.
pub(super) fn data_kind(content_type: &str) -> DataKind {
    let essence = essence(content_type);
    let subtype = essence.split_once('/').map_or("", |(_, subtype)| subtype);
    if subtype == "json" || subtype.ends_with("+json") {
        return DataKind::Json;
    }
    let utf8 = charset(content_type)
        .is_none_or(|charset| matches!(charset.as_str(), "utf-8" | "utf8" | "us-ascii"));
    if essence.starts_with("text/") && utf8 {
        DataKind::Text
    } else {
        DataKind::Binary
    }
}

/// Decodes `%XX` escapes, as the HTTP binding requires of `ce-*` header values; the result must
/// be UTF-8. Errors are (rule, what is wrong).
pub(super) fn percent_decode(value: &[u8]) -> Result<String, (&'static str, String)> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%' {
            let hex = match value.get(i + 1..i + 3) {
                Some(&[high, low]) => hex_digit(high).zip(hex_digit(low)),
                _ => None,
            };
            let Some(nibbles) = hex else {
                return Err((
                    "percent-encoding",
                    format!("`%` at offset {i} is not followed by two hex digits"),
                ));
            };
            out.push(nibbles.0 << 4 | nibbles.1);
            i += 3;
        } else {
            out.push(value[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|error| {
        (
            "utf-8",
            format!(
                "not valid UTF-8 once decoded: invalid byte at offset {}",
                error.utf8_error().valid_up_to()
            ),
        )
    })
}

pub(super) fn hex_digit(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|digit| digit as u8)
}

/// Splits a JSON array into the raw text of its elements, without parsing them: each is parsed
/// as an event afterwards, so that an event of the deepest allowed nesting is still accepted
/// inside a batch. `None` when the text is not an array.
pub(super) fn split_array(body: &[u8]) -> Option<Vec<&[u8]>> {
    let skip_ws = |mut i: usize| {
        while body
            .get(i)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            i += 1;
        }
        i
    };
    let mut i = skip_ws(0);
    if body.get(i) != Some(&b'[') {
        return None;
    }
    let mut elements = Vec::new();
    i = skip_ws(i + 1);
    if body.get(i) == Some(&b']') {
        return (skip_ws(i + 1) == body.len()).then_some(elements);
    }
    loop {
        let start = i;
        let (mut depth, mut in_string) = (0_usize, false);
        loop {
            let c = *body.get(i)?;
            if in_string {
                match c {
                    b'\\' => i += 1,
                    b'"' => in_string = false,
                    _ => {}
                }
            } else {
                match c {
                    b'"' => in_string = true,
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' if depth == 0 => break,
                    b']' | b'}' => depth -= 1,
                    b',' if depth == 0 => break,
                    _ => {}
                }
            }
            i += 1;
        }
        elements.push(body[start..i].trim_ascii());
        match body[i] {
            b',' => i += 1,
            b']' => return (skip_ws(i + 1) == body.len()).then_some(elements),
            _ => return None,
        }
    }
}

/// The request's `Content-Length`, when it has a valid one.
pub(super) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
}

/// Reads a body of at most `limit` bytes; a larger one is refused as soon as it is known to be
/// larger, by `Content-Length` or while reading.
pub(super) async fn read_body(
    mut body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Vec<u8>, Problem> {
    let length = content_length(headers);
    if length.is_some_and(|length| length > limit as u64) {
        return Err(Problem::body_too_large(limit));
    }
    let mut out = Vec::with_capacity(length.map_or(0, |length| length as usize));
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|error| {
            Problem::new(
                Kind::UnreadableBody,
                format!("the body could not be read: {error}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(Problem::body_too_large(limit));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

impl From<EventError> for Invalid {
    fn from(error: EventError) -> Self {
        Invalid {
            attribute: error.attribute().map(str::to_owned),
            rule: error.rule(),
            detail: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn percent_decoding() {
        let check = |input: &str, expected: Result<&str, &str>| {
            let actual = percent_decode(input.as_bytes());
            assert_eq!(
                actual.as_deref().map_err(|(rule, _)| *rule),
                expected,
                "{input}"
            );
        };
        check("plain", Ok("plain"));
        check("a%20b%22c%25", Ok("a b\"c%"));
        check("caf%C3%A9", Ok("café"));
        check("%e2%82%ac", Ok("€"));
        check("%", Err("percent-encoding"));
        check("%4", Err("percent-encoding"));
        check("%zz", Err("percent-encoding"));
        check("%+1", Err("percent-encoding"));
        check("%C3", Err("utf-8"));
    }

    #[test]
    fn array_splitting() {
        let check = |input: &str, expected: Option<&[&str]>| {
            let actual = split_array(input.as_bytes()).map(|elements| {
                elements
                    .iter()
                    .map(|e| std::str::from_utf8(e).expect("UTF-8"))
                    .collect::<Vec<_>>()
            });
            assert_eq!(actual.as_deref(), expected, "{input}");
        };
        check("[]", Some(&[]));
        check(" [ ] \n", Some(&[]));
        check("[{}]", Some(&["{}"]));
        check(
            r#"[ {"a":[1,{"b":"],}"}]} , {"c":"\"]"} ]"#,
            Some(&[r#"{"a":[1,{"b":"],}"}]}"#, r#"{"c":"\"]"}"#]),
        );
        check("[1,]", Some(&["1", ""]));
        check("[{}}", None);
        check("[{}", None);
        check("[", None);
        check("", None);
        check("{}", None);
        check("[] x", None);
        check("[{}] ]", None);
    }

    #[test]
    fn data_kinds() {
        let check = |content_type: &str, expected: DataKind| {
            assert_eq!(data_kind(content_type), expected, "{content_type}");
        };
        check("application/json", DataKind::Json);
        check("Application/JSON; charset=utf-8", DataKind::Json);
        check("application/vnd.api+json", DataKind::Json);
        check("text/json", DataKind::Json);
        check("text/plain", DataKind::Text);
        check("text/csv; charset=\"UTF-8\"", DataKind::Text);
        check("text/plain; charset=iso-8859-1", DataKind::Binary);
        check("application/octet-stream", DataKind::Binary);
        check("image/png", DataKind::Binary);
        check("application/jsonx", DataKind::Binary);
    }

    #[test]
    fn modes() {
        let check = |headers: &[(&str, &str)], expected: Result<Mode, u16>| {
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                map.append(
                    header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                    HeaderValue::from_str(value).expect("value"),
                );
            }
            assert_eq!(
                mode(&map).map_err(|problem| problem.kind.status().as_u16()),
                expected,
                "{headers:?}"
            );
        };
        check(&[("content-type", STRUCTURED)], Ok(Mode::Structured));
        check(
            &[(
                "content-type",
                "Application/CloudEvents+JSON; charset=UTF-8",
            )],
            Ok(Mode::Structured),
        );
        check(&[("content-type", BATCH)], Ok(Mode::Batch));
        check(
            &[
                ("content-type", "application/json"),
                ("ce-specversion", "1.0"),
            ],
            Ok(Mode::Binary),
        );
        check(&[("ce-specversion", "1.0")], Ok(Mode::Binary));
        check(&[("content-type", "application/json")], Err(415));
        check(
            &[("content-type", "application/cloudevents+avro")],
            Err(415),
        );
        check(&[], Err(415));
    }

    #[test]
    fn binary_events() {
        let check = |headers: &[(&str, &str)], body: &[u8], expected: Result<&str, &str>| {
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                map.append(
                    header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                    HeaderValue::from_str(value).expect("value"),
                );
            }
            let actual = binary_event(&map, body);
            let actual = actual
                .as_ref()
                .map(crate::encode::encode)
                .map_err(|invalid| {
                    format!(
                        "{}: {}",
                        invalid.attribute.as_deref().unwrap_or("-"),
                        invalid.rule
                    )
                });
            assert_eq!(
                actual.as_deref(),
                expected.map_err(|e| e.to_owned()).as_deref()
            );
        };
        let base = [
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-source", "/s"),
            ("ce-type", "t"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| [&base[..], extra].concat();
        check(
            &with(&[("content-type", "application/json")]),
            b"{ \"n\": 1.50 }",
            Ok(
                r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json","data":{"n":1.50}}"#,
            ),
        );
        check(
            &with(&[
                ("content-type", "text/plain"),
                ("ce-subject", "a%20%22b%22"),
            ]),
            "héllo \"x\"".as_bytes(),
            Ok(
                r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":"a \"b\"","datacontenttype":"text/plain","data":"héllo \"x\""}"#,
            ),
        );
        check(
            &with(&[("content-type", "application/octet-stream")]),
            &[0, 1, 255],
            Ok(
                r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/octet-stream","data_base64":"AAH/"}"#,
            ),
        );
        check(
            &base,
            b"",
            Ok(r#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#),
        );
        check(
            &base,
            &[7],
            Ok(r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"Bw=="}"#),
        );
        check(
            &with(&[("content-type", "application/json")]),
            b"{",
            Err("data: json"),
        );
        check(
            &with(&[("content-type", "text/plain")]),
            &[0xC3, 0x28],
            Err("data: utf-8"),
        );
        check(
            &with(&[("ce-subject", "%zz")]),
            b"",
            Err("subject: percent-encoding"),
        );
        check(
            &with(&[("ce-time", "yesterday")]),
            b"",
            Err("time: rfc3339"),
        );
        check(&base[1..], b"", Err("specversion: required"));
        check(&with(&[("ce-id", "2")]), b"", Err("id: duplicate"));
    }
}
