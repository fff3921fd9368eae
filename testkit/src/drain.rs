//! Reading a queue to its end: every message received with all of its attributes, and deleted,
//! until the queue stays empty.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};

/// How many empty receives, of one second each, are waited through before `expected` messages
/// have come.
const PATIENCE: usize = 3;

/// One message as `ReceiveMessage` returned it, with every attribute.
#[derive(Clone, Debug)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub md5_of_body: Option<String>,
    pub md5_of_message_attributes: Option<String>,
    /// Message attributes: name to (data type, string value).
    pub message_attributes: BTreeMap<String, (String, Option<String>)>,
    /// System attributes (`SenderId`, `SentTimestamp`, `MessageGroupId`, ...).
    pub system: BTreeMap<String, String>,
}

/// Receives, and deletes (so that a FIFO group moves on), every message of the queue at `url`.
/// Once `expected` messages have come, one more empty receive ends it; before that, up to three
/// empty one-second receives are waited through. Panics on an SQS error.
pub async fn drain(sqs: &aws_sdk_sqs::Client, url: &str, expected: usize) -> Vec<Received> {
    let mut all = Vec::new();
    let mut empty = 0;
    loop {
        let enough = all.len() >= expected.max(1);
        let batch = receive(sqs, url, if enough { 0 } else { 1 }).await;
        if batch.is_empty() {
            empty += 1;
            if all.len() >= expected || empty >= PATIENCE {
                return all;
            }
            continue;
        }
        for message in &batch {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(&message.receipt_handle)
                .send()
                .await
                .unwrap_or_else(|e| panic!("DeleteMessage on {url}: {e:?}"));
        }
        all.extend(batch);
    }
}

async fn receive(sqs: &aws_sdk_sqs::Client, url: &str, wait_seconds: i32) -> Vec<Received> {
    let output = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_seconds)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ReceiveMessage on {url}: {e:?}"));
    output
        .messages
        .unwrap_or_default()
        .iter()
        .map(Received::new)
        .collect()
}

impl Received {
    fn new(message: &Message) -> Received {
        let message_attributes = message
            .message_attributes()
            .into_iter()
            .flatten()
            .map(|(name, value)| {
                (
                    name.clone(),
                    (
                        value.data_type().to_owned(),
                        value.string_value().map(str::to_owned),
                    ),
                )
            })
            .collect();
        let system = message
            .attributes()
            .into_iter()
            .flatten()
            .map(|(name, value)| (name.as_str().to_owned(), value.clone()))
            .collect();
        Received {
            message_id: message.message_id().expect("a message id").to_owned(),
            receipt_handle: message
                .receipt_handle()
                .expect("a receipt handle")
                .to_owned(),
            body: message.body().expect("a body").to_owned(),
            md5_of_body: message.md5_of_body().map(str::to_owned),
            md5_of_message_attributes: message.md5_of_message_attributes().map(str::to_owned),
            message_attributes,
            system,
        }
    }

    /// Message attributes that carry a string value.
    pub fn string_attributes(&self) -> BTreeMap<String, String> {
        self.message_attributes
            .iter()
            .filter_map(|(name, (_, value))| Some((name.clone(), value.clone()?)))
            .collect()
    }
}
