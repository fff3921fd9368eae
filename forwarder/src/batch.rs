//! What goes into one `SendMessageBatch` request: the size SQS counts for a message and
//! byte-aware batching. The message itself (body, attributes, FIFO ids) is in
//! [`crate::message`].
//!
//! SQS limits a batch to 10 entries and 1,048,576 bytes, counting each message's body and its
//! message attributes (name, type and value of each). A message attribute's type is always
//! "String" here.

use thiserror::Error;

/// The largest message SQS accepts, body and message attributes together.
pub const MAX_MESSAGE_BYTES: usize = 1_048_576;

/// The largest `SendMessageBatch` request SQS accepts, all messages together.
pub const MAX_BATCH_BYTES: usize = 1_048_576;

/// The most entries in one `SendMessageBatch` request.
pub const MAX_BATCH_ENTRIES: usize = 10;

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

#[cfg(test)]
mod tests {
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
}
