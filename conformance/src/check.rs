//! Reads an SQS queue and judges every message received.
//!
//! Messages are received ten at a time until a receive comes back empty. By
//! default nothing is consumed: each message is hidden for
//! [`PEEK_VISIBILITY_TIMEOUT_SECONDS`] while the run lasts (so that it is
//! judged once), then made visible again at once with
//! ChangeMessageVisibilityBatch (a visibility timeout of 0). Each peek still
//! raises the message's receive count, so a queue with a redrive policy is
//! refused unless `allow_receive_count`: its messages could be moved to the
//! dead-letter queue. With `delete`, each received batch is deleted once
//! judged.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry,
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};

use crate::{Message, Verdict, judge};

/// How long a peeked message stays hidden while the queue is checked
/// without `delete`: long enough for one run not to receive it twice.
pub const PEEK_VISIBILITY_TIMEOUT_SECONDS: i32 = 30;

/// Why a queue could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// ReceiveMessage failed; `code` and `message` come from the service when
    /// it answered, otherwise `message` describes the transport failure.
    #[error("cannot receive messages from {queue_url}: {}", Described(code.as_deref(), message))]
    Receive {
        queue_url: String,
        code: Option<String>,
        message: String,
    },
    /// DeleteMessageBatch failed as a whole.
    #[error("cannot delete messages from {queue_url}: {}", Described(code.as_deref(), message))]
    Delete {
        queue_url: String,
        code: Option<String>,
        message: String,
    },
    /// Some messages were judged but could not be deleted; every failure of
    /// the run is listed.
    #[error(
        "{} message(s) not deleted from {queue_url}: {}",
        failures.len(),
        failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    Undeleted {
        queue_url: String,
        failures: Vec<DeleteFailure>,
    },
    /// Some peeked messages could not be made visible again: they come back
    /// when their visibility timeout ends.
    #[error(
        "{} message(s) of {queue_url} stay hidden for up to {PEEK_VISIBILITY_TIMEOUT_SECONDS} s: {}",
        failures.len(),
        failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    Unreleased {
        queue_url: String,
        failures: Vec<DeleteFailure>,
    },
    /// The queue has a redrive policy and peeking was not allowed to raise
    /// receive counts.
    #[error(
        "{queue_url} has a redrive policy ({policy}): peeking raises each message's receive count \
         and can move messages to the dead-letter queue; pass --allow-receive-count to peek anyway, \
         or --delete to consume them"
    )]
    RedrivePolicy { queue_url: String, policy: String },
    /// A request other than receive or delete failed.
    #[error("{action} on {queue_url} failed: {}", Described(code.as_deref(), message))]
    Request {
        action: &'static str,
        queue_url: String,
        code: Option<String>,
        message: String,
    },
}

/// How a queue is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Delete each message once judged (consume the queue).
    pub delete: bool,
    /// Peek even when the queue has a redrive policy.
    pub allow_receive_count: bool,
}

/// One message that a batch request (delete, or change of visibility) did
/// not handle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteFailure {
    pub message_id: String,
    pub code: String,
    pub message: Option<String>,
}

/// Reads the queue at `queue_url` and judges each message once.
///
/// Receives with MaxNumberOfMessages 10 and WaitTimeSeconds 1, all message
/// attributes and all system attributes, until a receive is empty. With
/// `delete`, each batch is deleted with DeleteMessageBatch once judged.
/// Otherwise messages are received with a visibility timeout of
/// [`PEEK_VISIBILITY_TIMEOUT_SECONDS`], the run also stops when a receive
/// brings only messages already seen, and at the end every message is made
/// visible again; a queue with a redrive policy is refused first unless
/// `allow_receive_count`. In both modes a message id is judged at most once.
pub async fn check_queue(
    client: &Client,
    queue_url: &str,
    options: CheckOptions,
) -> Result<Vec<(Message, Verdict)>, CheckError> {
    drain(&Sqs { client, queue_url }, options).await
}

/// The operations the drain needs, so that it can be tested without SQS.
trait Queue {
    fn url(&self) -> &str;

    async fn receive(
        &self,
        visibility_timeout: Option<i32>,
    ) -> Result<Vec<aws_sdk_sqs::types::Message>, CheckError>;

    /// Deletes `(message id, receipt handle)` pairs, ten at most, and returns
    /// those the service did not delete.
    async fn delete(&self, handles: &[(String, String)]) -> Result<Vec<DeleteFailure>, CheckError>;

    /// Makes `(message id, receipt handle)` pairs, ten at most, visible at
    /// once, and returns those the service did not change.
    async fn release(&self, handles: &[(String, String)])
    -> Result<Vec<DeleteFailure>, CheckError>;

    /// The queue's redrive policy, if it has one.
    async fn redrive_policy(&self) -> Result<Option<String>, CheckError>;
}

#[derive(Debug)]
struct Sqs<'a> {
    client: &'a Client,
    queue_url: &'a str,
}

impl Queue for Sqs<'_> {
    fn url(&self) -> &str {
        self.queue_url
    }

    async fn receive(
        &self,
        visibility_timeout: Option<i32>,
    ) -> Result<Vec<aws_sdk_sqs::types::Message>, CheckError> {
        let output = self
            .client
            .receive_message()
            .queue_url(self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .set_visibility_timeout(visibility_timeout)
            .send()
            .await
            .map_err(|err| {
                let (code, message) = metadata(&err);
                CheckError::Receive {
                    queue_url: self.queue_url.to_owned(),
                    code,
                    message,
                }
            })?;
        Ok(output.messages.unwrap_or_default())
    }

    async fn delete(&self, handles: &[(String, String)]) -> Result<Vec<DeleteFailure>, CheckError> {
        let delete_error = |code, message| CheckError::Delete {
            queue_url: self.queue_url.to_owned(),
            code,
            message,
        };
        // Batch entry ids only need to be unique within the request.
        let entries = handles
            .iter()
            .enumerate()
            .map(|(index, (_, receipt_handle))| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(receipt_handle)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| delete_error(None, err.to_string()))?;
        let output = self
            .client
            .delete_message_batch()
            .queue_url(self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|err| {
                let (code, message) = metadata(&err);
                delete_error(code, message)
            })?;
        Ok(batch_failures(output.failed(), handles))
    }

    async fn release(
        &self,
        handles: &[(String, String)],
    ) -> Result<Vec<DeleteFailure>, CheckError> {
        let request_error = |code, message| CheckError::Request {
            action: "ChangeMessageVisibilityBatch",
            queue_url: self.queue_url.to_owned(),
            code,
            message,
        };
        let entries = handles
            .iter()
            .enumerate()
            .map(|(index, (_, receipt_handle))| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(receipt_handle)
                    .visibility_timeout(0)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| request_error(None, err.to_string()))?;
        let output = self
            .client
            .change_message_visibility_batch()
            .queue_url(self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|err| {
                let (code, message) = metadata(&err);
                request_error(code, message)
            })?;
        Ok(batch_failures(output.failed(), handles))
    }

    async fn redrive_policy(&self) -> Result<Option<String>, CheckError> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(self.queue_url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|err| {
                let (code, message) = metadata(&err);
                CheckError::Request {
                    action: "GetQueueAttributes",
                    queue_url: self.queue_url.to_owned(),
                    code,
                    message,
                }
            })?;
        Ok(output
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::RedrivePolicy))
            .filter(|policy| !policy.is_empty()))
    }
}

/// The entries a batch request did not handle, named by their message ids.
fn batch_failures(
    failed: &[BatchResultErrorEntry],
    handles: &[(String, String)],
) -> Vec<DeleteFailure> {
    failed
        .iter()
        .map(|failed| DeleteFailure {
            message_id: failed
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|index| handles.get(index))
                .map_or_else(
                    || format!("batch entry {}", failed.id()),
                    |(id, _)| id.clone(),
                ),
            code: failed.code().to_owned(),
            message: failed.message().map(str::to_owned),
        })
        .collect()
}

async fn drain(
    queue: &impl Queue,
    options: CheckOptions,
) -> Result<Vec<(Message, Verdict)>, CheckError> {
    let peek = !options.delete;
    if peek
        && !options.allow_receive_count
        && let Some(policy) = queue.redrive_policy().await?
    {
        return Err(CheckError::RedrivePolicy {
            queue_url: queue.url().to_owned(),
            policy,
        });
    }
    let visibility_timeout = peek.then_some(PEEK_VISIBILITY_TIMEOUT_SECONDS);
    let mut results = Vec::new();
    let mut seen = BTreeSet::new();
    let mut failures = Vec::new();
    // Peeked messages by id, with the latest receipt handle (an earlier one may be stale).
    let mut peeked = BTreeMap::new();
    loop {
        let received = queue.receive(visibility_timeout).await?;
        if received.is_empty() {
            break;
        }
        let mut fresh = 0;
        let mut handles = Vec::new();
        for received in &received {
            let message = to_message(received);
            match received.receipt_handle() {
                Some(handle) if peek => {
                    peeked.insert(message.message_id.clone(), handle.to_owned());
                }
                Some(handle) => handles.push((message.message_id.clone(), handle.to_owned())),
                None => failures.push(DeleteFailure {
                    message_id: message.message_id.clone(),
                    code: "MissingReceiptHandle".to_owned(),
                    message: Some("received without a receipt handle".to_owned()),
                }),
            }
            // A message without an id cannot be recognised again: judge it.
            if message.message_id.is_empty() || seen.insert(message.message_id.clone()) {
                fresh += 1;
                let verdict = judge(&message);
                results.push((message, verdict));
            }
        }
        if !handles.is_empty() {
            failures.extend(queue.delete(&handles).await?);
        }
        if peek && fresh == 0 {
            break;
        }
    }
    if peek {
        let peeked: Vec<(String, String)> = peeked.into_iter().collect();
        for chunk in peeked.chunks(10) {
            failures.extend(queue.release(chunk).await?);
        }
    }
    if failures.is_empty() {
        return Ok(results);
    }
    let queue_url = queue.url().to_owned();
    Err(if peek {
        CheckError::Unreleased {
            queue_url,
            failures,
        }
    } else {
        CheckError::Undeleted {
            queue_url,
            failures,
        }
    })
}

/// Keeps the id, the body and the message attributes that carry a string
/// value; binary attributes have no string to compare and are left out.
fn to_message(received: &aws_sdk_sqs::types::Message) -> Message {
    let attributes = received
        .message_attributes()
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| Some((name.clone(), value.string_value()?.to_owned())))
        .collect::<BTreeMap<_, _>>();
    Message {
        message_id: received.message_id().unwrap_or_default().to_owned(),
        body: received.body().unwrap_or_default().to_owned(),
        attributes,
        group_id: received
            .attributes()
            .and_then(|system| system.get(&MessageSystemAttributeName::MessageGroupId))
            .cloned(),
    }
}

/// The service's error code and message, or the whole error chain when the
/// service did not answer (connection refused, timeout, ...).
fn metadata<E>(err: &E) -> (Option<String>, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = err.code().map(str::to_owned);
    let message = match err.message() {
        Some(message) => message.to_owned(),
        None => chain(err),
    };
    (code, message)
}

/// The messages of an error and its sources, joined on one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut messages: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(err) = next {
        let message = err.to_string();
        if messages.last() != Some(&message) {
            messages.push(message);
        }
        next = err.source();
    }
    messages.join(": ")
}

/// Displays `code: message`, or only the message without a code.
struct Described<'a>(Option<&'a str>, &'a String);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(code) => write!(f, "{code}: {}", self.1),
            None => f.write_str(self.1),
        }
    }
}

impl fmt::Display for DeleteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.message_id, self.code)?;
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use aws_sdk_sqs::types::{Message as SqsMessage, MessageAttributeValue};

    use crate::check::{CheckError, CheckOptions, DeleteFailure, Queue, drain};

    const CONFORMANT: &str = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#;

    /// A queue that hands out scripted batches, then empty receives.
    #[derive(Debug, Default)]
    struct FakeQueue {
        batches: RefCell<VecDeque<Vec<SqsMessage>>>,
        timeouts: RefCell<Vec<Option<i32>>>,
        deleted: RefCell<Vec<String>>,
        released: RefCell<Vec<String>>,
        refuse: Vec<String>,
        redrive: Option<String>,
    }

    impl Queue for FakeQueue {
        fn url(&self) -> &str {
            "http://queue"
        }

        async fn receive(
            &self,
            visibility_timeout: Option<i32>,
        ) -> Result<Vec<SqsMessage>, CheckError> {
            self.timeouts.borrow_mut().push(visibility_timeout);
            Ok(self.batches.borrow_mut().pop_front().unwrap_or_default())
        }

        async fn delete(
            &self,
            handles: &[(String, String)],
        ) -> Result<Vec<DeleteFailure>, CheckError> {
            let mut failures = Vec::new();
            for (id, _) in handles {
                if self.refuse.contains(id) {
                    failures.push(DeleteFailure {
                        message_id: id.clone(),
                        code: "ReceiptHandleIsInvalid".to_owned(),
                        message: None,
                    });
                } else {
                    self.deleted.borrow_mut().push(id.clone());
                }
            }
            Ok(failures)
        }

        async fn release(
            &self,
            handles: &[(String, String)],
        ) -> Result<Vec<DeleteFailure>, CheckError> {
            assert!(handles.len() <= 10);
            let mut released = self.released.borrow_mut();
            released.extend(handles.iter().map(|(id, _)| id.clone()));
            Ok(Vec::new())
        }

        async fn redrive_policy(&self) -> Result<Option<String>, CheckError> {
            Ok(self.redrive.clone())
        }
    }

    fn message(id: &str, body: &str) -> SqsMessage {
        SqsMessage::builder()
            .message_id(id)
            .receipt_handle(format!("receipt-{id}"))
            .body(body)
            .build()
    }

    /// Drains `batches` and compares the judged ids (with their verdicts),
    /// the deleted (or, when peeking, released) ids and the number of
    /// receives with the expectation.
    async fn check(
        batches: Vec<Vec<SqsMessage>>,
        delete: bool,
        expected: (&[(&str, bool)], &[&str], usize),
    ) {
        let queue = FakeQueue {
            batches: RefCell::new(batches.into()),
            ..FakeQueue::default()
        };
        let options = CheckOptions {
            delete,
            allow_receive_count: false,
        };
        let results = drain(&queue, options).await.expect("drain succeeds");
        let judged: Vec<(&str, bool)> = results
            .iter()
            .map(|(m, v)| (m.message_id.as_str(), v.conformant))
            .collect();
        assert_eq!(judged, expected.0);
        let (deleted, released) = (queue.deleted.borrow(), queue.released.borrow());
        let (touched, untouched) = if delete {
            (deleted, released)
        } else {
            (released, deleted)
        };
        assert_eq!(*touched, expected.1);
        assert!(untouched.is_empty());
        let timeouts = queue.timeouts.borrow();
        assert_eq!(timeouts.len(), expected.2);
        let timeout = if delete { None } else { Some(30) };
        assert!(timeouts.iter().all(|&t| t == timeout));
    }

    #[tokio::test]
    async fn drains_and_deletes_until_an_empty_receive() {
        check(
            vec![
                vec![message("a", CONFORMANT), message("b", "not json")],
                vec![message("c", CONFORMANT), message("a", CONFORMANT)],
            ],
            true,
            (
                &[("a", true), ("b", false), ("c", true)],
                &["a", "b", "c", "a"],
                3,
            ),
        )
        .await;
    }

    #[tokio::test]
    async fn peeks_stops_when_nothing_is_new_and_releases_everything() {
        check(
            vec![
                vec![message("a", CONFORMANT), message("b", CONFORMANT)],
                vec![message("a", CONFORMANT)],
                vec![message("c", CONFORMANT)],
            ],
            false,
            (&[("a", true), ("b", true)], &["a", "b"], 2),
        )
        .await;
    }

    #[tokio::test]
    async fn refuses_to_peek_a_queue_with_a_redrive_policy() {
        let queue = FakeQueue {
            batches: RefCell::new(vec![vec![message("a", CONFORMANT)]].into()),
            redrive: Some(r#"{"maxReceiveCount":"3"}"#.to_owned()),
            ..FakeQueue::default()
        };
        let err = drain(&queue, CheckOptions::default())
            .await
            .expect_err("refused");
        assert!(matches!(err, CheckError::RedrivePolicy { .. }), "{err}");
        assert!(queue.timeouts.borrow().is_empty(), "nothing was received");
        for options in [
            CheckOptions {
                delete: true,
                allow_receive_count: false,
            },
            CheckOptions {
                delete: false,
                allow_receive_count: true,
            },
        ] {
            let queue = FakeQueue {
                batches: RefCell::new(vec![vec![message("a", CONFORMANT)]].into()),
                redrive: Some(r#"{"maxReceiveCount":"3"}"#.to_owned()),
                ..FakeQueue::default()
            };
            let results = drain(&queue, options).await.expect("allowed");
            assert_eq!(results.len(), 1);
        }
    }

    #[tokio::test]
    async fn reports_every_undeleted_message() {
        let queue = FakeQueue {
            batches: RefCell::new(
                vec![
                    vec![message("a", CONFORMANT), message("b", CONFORMANT)],
                    vec![
                        message("c", CONFORMANT),
                        SqsMessage::builder()
                            .message_id("d")
                            .body(CONFORMANT)
                            .build(),
                    ],
                ]
                .into(),
            ),
            refuse: vec!["a".to_owned()],
            ..FakeQueue::default()
        };
        let options = CheckOptions {
            delete: true,
            allow_receive_count: false,
        };
        let err = drain(&queue, options).await.expect_err("a and d stay");
        assert_eq!(
            err.to_string(),
            "2 message(s) not deleted from http://queue: a (ReceiptHandleIsInvalid); \
             d (MissingReceiptHandle: received without a receipt handle)"
        );
        assert_eq!(*queue.deleted.borrow(), ["b", "c"]);
    }

    #[test]
    fn keeps_string_attributes_only() {
        let attribute = |data_type: &str| MessageAttributeValue::builder().data_type(data_type);
        let received = SqsMessage::builder()
            .message_id("a")
            .body(CONFORMANT)
            .message_attributes(
                "ce-id",
                attribute("String")
                    .string_value("2")
                    .build()
                    .expect("valid"),
            )
            .message_attributes(
                "ce-count",
                attribute("Number")
                    .string_value("5")
                    .build()
                    .expect("valid"),
            )
            .message_attributes(
                "blob",
                attribute("Binary")
                    .binary_value(aws_sdk_sqs::primitives::Blob::new(vec![1]))
                    .build()
                    .expect("valid"),
            )
            .build();
        let message = crate::check::to_message(&received);
        assert_eq!(
            message.attributes.into_iter().collect::<Vec<_>>(),
            [
                ("ce-count".to_owned(), "5".to_owned()),
                ("ce-id".to_owned(), "2".to_owned())
            ]
        );
    }

    #[test]
    fn describes_service_errors_on_one_line() {
        let err = CheckError::Receive {
            queue_url: "http://queue".to_owned(),
            code: Some("AWS.SimpleQueueService.NonExistentQueue".to_owned()),
            message: "The specified queue does not exist.".to_owned(),
        };
        assert_eq!(
            err.to_string(),
            "cannot receive messages from http://queue: \
             AWS.SimpleQueueService.NonExistentQueue: The specified queue does not exist."
        );
    }
}
