//! What goes into one `SendMessageBatch` request: byte-aware batching, FIFO identifiers, and the
//! optional CloudEvents message attributes.
//!
//! SQS limits a batch to 10 entries and 1,048,576 bytes, counting each message's body and its
//! message attributes (name, type and value of each). A message attribute's type is always
//! "String" here.

use std::fmt::Write as _;

use thiserror::Error;

use crate::encode::sqs_safe;
use crate::event::Event;

/// The largest message SQS accepts, body and message attributes together.
pub const MAX_MESSAGE_BYTES: usize = 1_048_576;

/// The largest `SendMessageBatch` request SQS accepts, all messages together.
pub const MAX_BATCH_BYTES: usize = 1_048_576;

/// The most entries in one `SendMessageBatch` request.
pub const MAX_BATCH_ENTRIES: usize = 10;

/// The most message attributes on one message.
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;

/// The longest `MessageDeduplicationId` or `MessageGroupId`.
pub const MAX_ID_CHARS: usize = 128;

/// The data type of every message attribute we send.
pub const ATTRIBUTE_TYPE: &str = "String";

/// A message too large for SQS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("message is {size} bytes, more than the SQS limit of {limit} bytes")]
pub struct TooLarge {
    /// The message's size: body and message attributes.
    pub size: usize,
    /// The limit it exceeds.
    pub limit: usize,
}

/// The size of a message that fits SQS's limit; the only way to put an entry in a [`Batcher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MessageSize(usize);

/// Entries gathered into batches that respect both SQS limits: entries and bytes.
///
/// After each [`Batcher::push`], send the batch it returns, if any, then check
/// [`Batcher::is_full`]; at a deadline or at the end, send [`Batcher::take`].
#[derive(Debug, Clone)]
pub struct Batcher<T> {
    entries: Vec<T>,
    bytes: usize,
}

/// The size SQS counts for a message: its body, plus name, type ("String") and value of each
/// message attribute.
pub fn message_size(body: &str, attributes: &[(String, String)]) -> usize {
    body.len()
        + attributes
            .iter()
            .map(|(name, value)| name.len() + ATTRIBUTE_TYPE.len() + value.len())
            .sum::<usize>()
}

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

impl MessageSize {
    /// Checks a message's size (see [`message_size`]) against [`MAX_MESSAGE_BYTES`].
    pub fn new(bytes: usize) -> Result<MessageSize, TooLarge> {
        if bytes <= MAX_MESSAGE_BYTES {
            Ok(MessageSize(bytes))
        } else {
            Err(TooLarge {
                size: bytes,
                limit: MAX_MESSAGE_BYTES,
            })
        }
    }

    /// The size of a message with this body and these message attributes, if SQS accepts it.
    pub fn of(body: &str, attributes: &[(String, String)]) -> Result<MessageSize, TooLarge> {
        MessageSize::new(message_size(body, attributes))
    }

    /// The size in bytes.
    pub fn get(self) -> usize {
        self.0
    }
}

impl<T> Batcher<T> {
    /// An empty batcher.
    pub fn new() -> Batcher<T> {
        Batcher {
            entries: Vec::with_capacity(MAX_BATCH_ENTRIES),
            bytes: 0,
        }
    }

    /// Adds an entry. When it does not fit in the current batch, that batch is returned, ready to
    /// send, and the entry starts the next one.
    pub fn push(&mut self, entry: T, size: MessageSize) -> Option<Vec<T>> {
        let full = (!self.fits(size)).then(|| self.take());
        self.entries.push(entry);
        self.bytes += size.0;
        full
    }

    /// Whether an entry of this size fits in the current batch.
    pub fn fits(&self, size: MessageSize) -> bool {
        self.entries.len() < MAX_BATCH_ENTRIES && self.bytes + size.0 <= MAX_BATCH_BYTES
    }

    /// Whether no entry can be added: 10 entries, or every byte used.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= MAX_BATCH_ENTRIES || self.bytes >= MAX_BATCH_BYTES
    }

    /// Takes the current batch, leaving the batcher empty.
    pub fn take(&mut self) -> Vec<T> {
        self.bytes = 0;
        std::mem::replace(&mut self.entries, Vec::with_capacity(MAX_BATCH_ENTRIES))
    }

    /// The number of entries in the current batch.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the current batch is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The bytes the current batch counts against [`MAX_BATCH_BYTES`].
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl<T> Default for Batcher<T> {
    fn default() -> Batcher<T> {
        Batcher::new()
    }
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
    use crate::event::parse_event;

    fn allowed(id: &str) -> bool {
        !id.is_empty() && id.len() <= MAX_ID_CHARS && id.bytes().all(|b| b.is_ascii_graphic())
    }

    mod sizes {
        use super::super::*;

        fn check(body: &str, attributes: &[(&str, &str)], expected: usize) {
            let attributes: Vec<_> = attributes
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect();
            assert_eq!(message_size(body, &attributes), expected);
        }

        #[test]
        fn body_and_attributes() {
            check("", &[], 0);
            check("{}", &[], 2);
            check("é", &[], 2);
            check("{}", &[("ce-id", "1")], 2 + 5 + 6 + 1);
            check("{}", &[("a", "b"), ("cc", "dd")], 2 + 1 + 6 + 1 + 2 + 6 + 2);
        }

        #[test]
        fn limit() {
            assert_eq!(
                MessageSize::new(MAX_MESSAGE_BYTES).map(MessageSize::get),
                Ok(1_048_576)
            );
            let error = MessageSize::new(MAX_MESSAGE_BYTES + 1).expect_err("too large");
            assert_eq!(
                error.to_string(),
                "message is 1048577 bytes, more than the SQS limit of 1048576 bytes"
            );
            let body = "x".repeat(MAX_MESSAGE_BYTES - 8);
            let attributes = [("a".to_owned(), "b".to_owned())];
            assert!(MessageSize::of(&body, &attributes).is_ok());
            let attributes = [("a".to_owned(), "bc".to_owned())];
            assert_eq!(
                MessageSize::of(&body, &attributes),
                Err(TooLarge {
                    size: MAX_MESSAGE_BYTES + 1,
                    limit: MAX_MESSAGE_BYTES
                })
            );
        }
    }

    mod batching {
        use super::super::*;

        /// Pushes entries of the given sizes; `expected` lists the batches sent, as entry indices,
        /// the last one being what remains.
        fn check(sizes: &[usize], expected: &[&[usize]]) {
            let mut batcher = Batcher::new();
            let mut batches = Vec::new();
            for (index, &size) in sizes.iter().enumerate() {
                let size = MessageSize::new(size).expect("test sizes fit");
                if let Some(batch) = batcher.push(index, size) {
                    batches.push(batch);
                }
                assert!(batcher.len() <= MAX_BATCH_ENTRIES);
                assert!(batcher.bytes() <= MAX_BATCH_BYTES);
                if batcher.is_full() {
                    batches.push(batcher.take());
                }
            }
            if !batcher.is_empty() {
                batches.push(batcher.take());
            }
            assert_eq!(batches, expected);
            assert_eq!(batcher.bytes(), 0);
        }

        #[test]
        fn ten_entries_at_most() {
            check(&[1; 3], &[&[0, 1, 2]]);
            check(&[1; 10], &[&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]);
            check(&[1; 12], &[&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], &[10, 11]]);
        }

        #[test]
        fn bytes_at_most() {
            let half = MAX_BATCH_BYTES / 2;
            check(&[half, half, 1], &[&[0, 1], &[2]]);
            check(&[half, half + 1, 1], &[&[0], &[1, 2]]);
            check(&[MAX_BATCH_BYTES, 1], &[&[0], &[1]]);
            check(&[1, MAX_BATCH_BYTES, 1], &[&[0], &[1], &[2]]);
            check(&[], &[]);
        }

        #[test]
        fn fits() {
            let mut batcher = Batcher::default();
            let one = MessageSize::new(1).expect("fits");
            assert!(batcher.fits(MessageSize::new(MAX_BATCH_BYTES).expect("fits")));
            assert_eq!(batcher.push("a", one), None);
            assert!(!batcher.fits(MessageSize::new(MAX_BATCH_BYTES).expect("fits")));
            assert!(batcher.fits(MessageSize::new(MAX_BATCH_BYTES - 1).expect("fits")));
        }
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
}
