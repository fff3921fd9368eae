//! A thin wrapper over the SQS client: one queue, one operation, errors kept with their code.

use std::collections::HashMap;

use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use crate::message::Outgoing;

/// A queue URL as SQS returns it; FIFO queues end in `.fifo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUrl(String);

impl QueueUrl {
    /// Accepts an `http(s)://` URL whose last path segment names a queue.
    pub fn parse(url: &str) -> Result<QueueUrl, String> {
        let valid = (url.starts_with("https://") || url.starts_with("http://"))
            && url.rsplit('/').next().is_some_and(|name| !name.is_empty());
        if valid {
            Ok(QueueUrl(url.to_owned()))
        } else {
            Err(format!("`{url}` is not a queue URL"))
        }
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it names a FIFO queue.
    pub fn is_fifo(&self) -> bool {
        self.0.ends_with(".fifo")
    }
}

/// What SQS said of one entry of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryResult {
    /// Accepted, with the message id.
    Sent(String),
    /// Refused: the code, whether it is the sender's fault, the message.
    Failed {
        /// The error code.
        code: String,
        /// Whether the request was at fault (not worth retrying).
        sender_fault: bool,
        /// SQS's explanation.
        message: String,
    },
}

/// The SDK's error for `SendMessageBatch`.
pub type BatchError = aws_sdk_sqs::error::SdkError<
    aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError,
    aws_sdk_sqs::config::http::HttpResponse,
>;

/// The client and the queue it sends to.
#[derive(Debug, Clone)]
pub struct Sqs {
    client: aws_sdk_sqs::Client,
    queue_url: QueueUrl,
}

impl Sqs {
    /// Wraps a client for one queue.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: QueueUrl) -> Sqs {
        Sqs { client, queue_url }
    }

    /// The queue.
    pub fn queue_url(&self) -> &QueueUrl {
        &self.queue_url
    }

    /// Sends up to ten messages in one request; the results are in the order of `messages`.
    pub async fn send_batch(&self, messages: &[&Outgoing]) -> Result<Vec<EntryResult>, BatchError> {
        let entries = messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let attributes: HashMap<String, MessageAttributeValue> = m
                    .attributes
                    .iter()
                    .filter_map(|(k, v)| {
                        let value = MessageAttributeValue::builder()
                            .data_type("String")
                            .string_value(v)
                            .build()
                            .ok()?;
                        Some((k.clone(), value))
                    })
                    .collect();
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.body.as_str())
                    .set_message_attributes((!attributes.is_empty()).then_some(attributes))
                    .set_message_group_id(m.group_id.clone())
                    .set_message_deduplication_id(m.dedup_id.clone())
                    .build()
                    .ok()
            })
            .collect();
        let output = self
            .client
            .send_message_batch()
            .queue_url(self.queue_url.as_str())
            .set_entries(Some(entries))
            .send()
            .await?;
        let mut results: Vec<Option<EntryResult>> = vec![None; messages.len()];
        for ok in output.successful() {
            if let Some(slot) = ok
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|i| results.get_mut(i))
            {
                *slot = Some(EntryResult::Sent(ok.message_id().to_owned()));
            }
        }
        for failed in output.failed() {
            if let Some(slot) = failed
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|i| results.get_mut(i))
            {
                *slot = Some(EntryResult::Failed {
                    code: failed.code().to_owned(),
                    sender_fault: failed.sender_fault(),
                    message: failed.message().unwrap_or_default().to_owned(),
                });
            }
        }
        // An entry SQS did not mention has not been accepted: report it, never assume success.
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or(EntryResult::Failed {
                    code: "MissingFromResponse".into(),
                    sender_fault: false,
                    message: "SQS's answer did not mention this entry".into(),
                })
            })
            .collect())
    }
}
