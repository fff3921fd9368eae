//! The one message type: from a validated event to what SQS gets (body, attributes, FIFO
//! group and deduplication ids), measured once and refused with a typed [`MessageError`] when
//! SQS could not take it. Shared by `send` and `serve`.

use std::fmt::Write as _;
use std::sync::Arc;

use thiserror::Error;

use crate::batch::{MessageSize, message_size};
use crate::binary::{Fallback, to_binary};
use crate::encode::{encode, sqs_safe};
use crate::event::Event;

/// Which message attributes go beside the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AttributeMode {
    /// None: the body carries everything.
    #[default]
    None,
    /// `ce-*` attributes and `content-type`, as String attributes.
    Cloudevents,
}

/// How an event travels in its message (the CloudEvents content modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ContentMode {
    /// The body is the whole event as JSON.
    #[default]
    Structured,
    /// The context in `ce-*` message attributes, the body is the data (see [`crate::binary`]);
    /// an event binary mode cannot carry travels structured.
    Binary,
}

/// How events become messages.
#[derive(Debug, Clone, Default)]
pub struct MessageOptions {
    /// Structured or binary content mode.
    pub content_mode: ContentMode,
    /// Message attributes.
    pub attributes: AttributeMode,
    /// The attribute whose value is the message group (FIFO queues default to `source`).
    pub group_by: Option<String>,
    /// Whether the queue is FIFO: group and deduplication ids are required.
    pub fifo: bool,
}

/// One message ready to go: its body, what SQS needs beside it, and its size as SQS counts it.
///
/// Built only by [`Outgoing::new`] (or [`to_message`]), which measures it once and refuses it
/// when it is over the SQS limit; the batcher uses that size as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The CloudEvent, encoded; shared with the input line when it is that line byte for byte
    /// (see [`share_line`]), so that a large event is held once while it is sent.
    pub body: Arc<String>,
    /// String message attributes.
    pub attributes: Vec<(String, String)>,
    /// FIFO (or fair queue) message group.
    pub group_id: Option<String>,
    /// FIFO deduplication id.
    pub dedup_id: Option<String>,
    /// Why the event travels structured although binary mode was asked for.
    pub fallback: Option<Fallback>,
    size: MessageSize,
}

/// Why an event has no message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    /// The queue is FIFO and the event lacks the attribute that names its message group.
    #[error("attribute `{attribute}`: needed as the FIFO message group (--group-by), but missing")]
    MissingGroup {
        /// The attribute (`--group-by`, or `source`).
        attribute: String,
    },
    /// Body and attributes together are over the SQS limit.
    #[error("message of {size} bytes is over the SQS limit of {limit} bytes")]
    TooLarge {
        /// Body plus attributes, in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl Outgoing {
    /// A message of this body and these attributes and ids; refused when SQS would refuse its
    /// size.
    pub fn new(
        body: String,
        attributes: Vec<(String, String)>,
        group_id: Option<String>,
        dedup_id: Option<String>,
    ) -> Result<Outgoing, MessageError> {
        let size = MessageSize::new(message_size(&body, &attributes)).map_err(|too_large| {
            MessageError::TooLarge {
                size: too_large.size,
                limit: too_large.limit,
            }
        })?;
        Ok(Outgoing {
            body: Arc::new(body),
            attributes,
            group_id,
            dedup_id,
            fallback: None,
            size,
        })
    }

    /// Its size as SQS counts it, measured when it was built.
    pub fn size(&self) -> MessageSize {
        self.size
    }
}

/// Builds the message for `event`; fails when a FIFO queue needs a group attribute the event
/// lacks, or when the message is over the SQS limit of [`MAX_MESSAGE_BYTES`](crate::batch::MAX_MESSAGE_BYTES).
pub fn to_message(event: &Event, options: &MessageOptions) -> Result<Outgoing, MessageError> {
    let (body, attributes, fallback) = match options.content_mode {
        ContentMode::Binary => match to_binary(event) {
            Ok(binary) => (binary.body, binary.attributes, None),
            Err(fallback) => (encode(event), Vec::new(), Some(fallback)),
        },
        ContentMode::Structured => {
            let attributes = match options.attributes {
                AttributeMode::None => Vec::new(),
                AttributeMode::Cloudevents => cloudevents_attributes(event),
            };
            (encode(event), attributes, None)
        }
    };
    let group_by = options
        .group_by
        .as_deref()
        .or(options.fifo.then_some("source"));
    let group = match group_by {
        Some(name) => match event.attribute_str(name) {
            Some(value) => Some(group_id(value)),
            None if options.fifo => {
                return Err(MessageError::MissingGroup {
                    attribute: name.to_owned(),
                });
            }
            None => None,
        },
        None => None,
    };
    let dedup = options.fifo.then(|| dedup_id(event.source(), event.id()));
    let mut message = Outgoing::new(body, attributes, group, dedup)?;
    message.fallback = fallback;
    Ok(message)
}

/// The input line, kept for the dead-letter file while its event is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// The line as it was read.
    Line(Vec<u8>),
    /// The line is the message's body, byte for byte, and shares its buffer.
    Body(Arc<String>),
}

impl Kept {
    /// The line's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Kept::Line(line) => line,
            Kept::Body(body) => body.as_bytes(),
        }
    }
}

/// Keeps `line` for the dead-letter file; when `message`'s body is the line itself, byte for
/// byte (an event already in the canonical form, as producers usually write it), the body takes
/// the line's buffer and the encoded copy is dropped: a large event is then held once, not
/// twice, from the moment it is read until SQS has answered.
pub fn share_line(message: &mut Outgoing, line: Vec<u8>) -> Kept {
    if message.body.as_bytes() != line.as_slice() {
        return Kept::Line(line);
    }
    match String::from_utf8(line) {
        Ok(text) => {
            let shared = Arc::new(text);
            message.body = Arc::clone(&shared);
            Kept::Body(shared)
        }
        // Not reached: the line equals a body, which is UTF-8.
        Err(error) => Kept::Line(error.into_bytes()),
    }
}

/// The most message attributes on one message.
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;

/// The longest `MessageDeduplicationId` or `MessageGroupId`.
pub const MAX_ID_CHARS: usize = 128;

/// A deterministic `MessageDeduplicationId` for an event: CloudEvents consumers may take events
/// with the same `source` and `id` for duplicates, and so does SQS.
///
/// It is `source|id` when that fits in 128 characters that SQS allows (a URI-reference never
/// contains `|`, so the split is unambiguous). Otherwise it is `sha256:` and the 64 hex digits
/// of a SHA-256 of both: no `|`, so the two forms never meet, and nobody who controls `source`
/// and `id` can craft two events that SQS would take for duplicates.
pub fn dedup_id(source: &str, id: &str) -> String {
    let direct = source.len() + 1 + id.len() <= MAX_ID_CHARS
        && !source.contains('|')
        && source
            .bytes()
            .chain(id.bytes())
            .all(|b| b.is_ascii_graphic());
    if direct {
        return format!("{source}|{id}");
    }
    // The length first, so that ("ab", "c") and ("a", "bc") differ.
    let length = (source.len() as u64).to_le_bytes();
    format!(
        "sha256:{}",
        sha256_hex(&[&length, source.as_bytes(), id.as_bytes()])
    )
}

/// A `MessageGroupId` for a value (e.g. an attribute chosen with group-by): the value itself when
/// it is 1 to 128 characters that SQS allows.
///
/// Otherwise, the value with every other character replaced by `_`, cut to 63 characters, then
/// `~` and the 64 hex digits of its SHA-256: still deterministic, at most 128 characters, and
/// distinct values stay in distinct groups.
pub fn group_id(value: &str) -> String {
    if !value.is_empty()
        && value.len() <= MAX_ID_CHARS
        && value.bytes().all(|b| b.is_ascii_graphic())
    {
        return value.to_owned();
    }
    let mut out: String = value
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(MAX_ID_CHARS - 65)
        .collect();
    out.push('~');
    out.push_str(&sha256_hex(&[value.as_bytes()]));
    out
}

/// The message attributes for `--attributes cloudevents`: `ce-specversion`, `ce-id`,
/// `ce-source`, `ce-type`, `ce-subject` and `ce-time` (when present) and `content-type` (from
/// `datacontenttype`, when present), never more than 7.
///
/// SQS refuses some characters in attribute values (see [`sqs_safe`]) and attributes cannot
/// escape them, so an attribute whose value has one is left out: the body carries every
/// attribute anyway.
pub fn cloudevents_attributes(event: &Event) -> Vec<(String, String)> {
    let candidates = [
        ("ce-specversion", Some(event.specversion())),
        ("ce-id", Some(event.id())),
        ("ce-source", Some(event.source())),
        ("ce-type", Some(event.ty())),
        ("ce-subject", event.subject()),
        ("ce-time", event.time()),
        ("content-type", event.datacontenttype()),
    ];
    candidates
        .into_iter()
        .filter_map(|(name, value)| {
            let value = value.filter(|value| sqs_safe(value))?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// The SHA-256 of the concatenated parts, in lower-case hex.
fn sha256_hex(parts: &[&[u8]]) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for part in parts {
        hash.update(part);
    }
    hash.finalize()
        .iter()
        .fold(String::with_capacity(64), |mut out, byte| {
            // Writing into a String cannot fail.
            let _ = write!(out, "{byte:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::MAX_MESSAGE_BYTES;
    use crate::event::parse_event;

    fn allowed(id: &str) -> bool {
        !id.is_empty() && id.len() <= MAX_ID_CHARS && id.bytes().all(|b| b.is_ascii_graphic())
    }

    /// The message for `line` in `mode`, and what is kept of the line.
    fn shared(line: &str, content_mode: ContentMode) -> (Outgoing, Kept) {
        let event = parse_event(line.as_bytes()).expect("the test event is valid");
        let options = MessageOptions {
            content_mode,
            ..MessageOptions::default()
        };
        let mut message = to_message(&event, &options).expect("a message");
        let kept = share_line(&mut message, line.as_bytes().to_vec());
        assert_eq!(kept.as_bytes(), line.as_bytes(), "the line is kept as read");
        (message, kept)
    }

    #[test]
    fn a_canonical_line_is_its_body_and_held_once() {
        let line = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"n":1.50}}"#;
        let (message, kept) = shared(line, ContentMode::Structured);
        assert_eq!(message.body.as_str(), line);
        let Kept::Body(body) = kept else {
            panic!("a canonical line shares the body: {kept:?}");
        };
        assert!(Arc::ptr_eq(&body, &message.body), "one buffer, not two");
    }

    #[test]
    fn other_lines_are_kept_beside_their_body() {
        // Whitespace: the body differs from the line.
        let line = r#"{"specversion":"1.0", "id":"1","source":"/s","type":"t"}"#;
        let (message, kept) = shared(line, ContentMode::Structured);
        assert_eq!(
            message.body.as_str(),
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#
        );
        assert!(matches!(kept, Kept::Line(_)), "{kept:?}");
        // Binary mode: the body is the data alone.
        let line = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"n":1}}"#;
        let (message, kept) = shared(line, ContentMode::Binary);
        assert_eq!(message.body.as_str(), r#"{"n":1}"#);
        assert!(matches!(kept, Kept::Line(_)), "{kept:?}");
    }

    #[test]
    fn dedup_ids() {
        let check = |source: &str, id: &str, expected: &str| {
            let actual = dedup_id(source, id);
            assert_eq!(actual, expected);
            assert!(allowed(&actual), "{actual}");
        };
        check(
            "golioth/app/gateway/coap",
            "aa12dc4c-c5ed-4b46-92e5-5a726f4daa81",
            "golioth/app/gateway/coap|aa12dc4c-c5ed-4b46-92e5-5a726f4daa81",
        );
        check("/s", "a|b", "/s|a|b");
        check(
            "/s",
            "x y",
            "sha256:5649c355846cd3fc5ec5f1d8ca59317cf35c5a78139ad34c314f001292236016",
        );
        // Distinct pairs never share an id, whatever the form.
        let pairs = [
            ("a/b", "c"),
            ("a", "b/c"),
            ("ab", "c"),
            ("a", "bc"),
            ("a b", "c"),
            ("a", "b c"),
            ("a|b", "c"),
            ("a", "b|c"),
            ("é", "1"),
            (&"s".repeat(100), &"i".repeat(27)),
            (&"s".repeat(100), &"i".repeat(28)),
        ];
        let ids: std::collections::HashSet<_> = pairs
            .iter()
            .map(|(source, id)| dedup_id(source, id))
            .collect();
        assert_eq!(ids.len(), pairs.len());
        assert_eq!(dedup_id(&"s".repeat(100), &"i".repeat(27)).len(), 128);
        assert!(dedup_id(&"s".repeat(100), &"i".repeat(28)).starts_with("sha256:"));
        assert_eq!(dedup_id("é", "1"), dedup_id("é", "1"));
    }

    #[test]
    fn group_ids() {
        let check = |value: &str, expected: &str| {
            let actual = group_id(value);
            assert_eq!(actual, expected);
            assert!(allowed(&actual), "{actual}");
        };
        check("device-42", "device-42");
        check(
            "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
            "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
        );
        check(
            "a b",
            "a_b~c8687a08aa5d6ed2044328fa6a697ab8e96dc34291e8c2034ae8c38e6fcc6d65",
        );
        check("a_b", "a_b");
        check(
            "",
            "~e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        );
        check(
            "é",
            "_~4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c",
        );
        let long = "x".repeat(200);
        let id = group_id(&long);
        assert_eq!(id.len(), 128);
        assert!(id.starts_with(&"x".repeat(63)));
        assert_ne!(group_id(&"x".repeat(129)), group_id(&"x".repeat(130)));
        assert_eq!(group_id(&"x".repeat(128)), "x".repeat(128));
        assert_eq!(group_id(&"é".repeat(200)).chars().count(), 128);
    }

    #[test]
    fn sha256_reference_values() {
        assert_eq!(
            sha256_hex(&[b""]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(&[b"a", b"bc"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn attributes() {
        let check = |line: &str, expected: &[(&str, &str)]| {
            let event = parse_event(line.as_bytes()).expect("the test event is valid");
            let actual = cloudevents_attributes(&event);
            let expected: Vec<_> = expected
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect();
            assert_eq!(actual, expected);
            assert!(actual.len() <= MAX_MESSAGE_ATTRIBUTES);
        };
        check(
            r#"{"specversion":"1.0","id":"aa12","source":"golioth/app","type":"T","subject":"stream","datacontenttype":"application/json","time":"2022-01-27T16:17:06.458868Z","ext":"x","data":{}}"#,
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", "aa12"),
                ("ce-source", "golioth/app"),
                ("ce-type", "T"),
                ("ce-subject", "stream"),
                ("ce-time", "2022-01-27T16:17:06.458868Z"),
                ("content-type", "application/json"),
            ],
        );
        check(
            r#"{"id":"1","source":"/s","type":"t","specversion":"1.0"}"#,
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", "1"),
                ("ce-source", "/s"),
                ("ce-type", "t"),
            ],
        );
        // Escapes are decoded: attribute values are the strings, not their JSON spelling.
        check(
            r#"{"specversion":"1.0","id":"\u00e9","source":"\/s","type":"t"}"#,
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", "\u{e9}"),
                ("ce-source", "/s"),
                ("ce-type", "t"),
            ],
        );
    }

    #[test]
    fn refusals() {
        let event = parse_event(br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#)
            .expect("valid");
        let fifo = MessageOptions {
            fifo: true,
            group_by: Some("subject".to_owned()),
            ..MessageOptions::default()
        };
        let error = to_message(&event, &fifo).expect_err("no subject");
        assert_eq!(
            error,
            MessageError::MissingGroup {
                attribute: "subject".to_owned()
            }
        );
        let body = "x".repeat(MAX_MESSAGE_BYTES);
        let message = Outgoing::new(body.clone(), Vec::new(), None, None).expect("at the limit");
        assert_eq!(message.size().get(), MAX_MESSAGE_BYTES);
        let attributes = vec![("a".to_owned(), "b".to_owned())];
        let error = Outgoing::new(body, attributes, None, None).expect_err("over the limit");
        assert_eq!(
            error.to_string(),
            "message of 1048584 bytes is over the SQS limit of 1048576 bytes"
        );
    }
}
