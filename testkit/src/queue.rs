//! A queue of one test's own in the embedded LocalStack: created with a unique name, deleted
//! when dropped.

use aws_sdk_sqs::types::QueueAttributeName;

use crate::drain::{Received, drain};

/// A queue named `<prefix>-<unique>` (with `.fifo` for a FIFO queue), removed on drop.
#[derive(Debug)]
pub struct TestQueue {
    /// An SQS client with LocalStack's administrator key.
    pub sqs: aws_sdk_sqs::Client,
    pub url: String,
    pub name: String,
    /// LocalStack's endpoint.
    pub endpoint: String,
}

impl TestQueue {
    /// A standard queue with SQS's default attributes.
    pub async fn new(prefix: &str) -> TestQueue {
        TestQueue::with(prefix, &[]).await
    }

    /// A queue with `attributes`; `FifoQueue = true` among them makes it a FIFO queue.
    pub async fn with(prefix: &str, attributes: &[(QueueAttributeName, &str)]) -> TestQueue {
        let (sqs, endpoint) = crate::localstack_sqs().await;
        let fifo = attributes
            .iter()
            .any(|(name, value)| *name == QueueAttributeName::FifoQueue && *value == "true");
        let mut name = crate::names::unique(prefix);
        if fifo {
            name.push_str(".fifo");
        }
        let mut create = sqs.create_queue().queue_name(&name);
        for (attribute, value) in attributes {
            create = create.attributes(attribute.clone(), *value);
        }
        let url = create
            .send()
            .await
            .unwrap_or_else(|e| panic!("create queue {name}: {e:?}"))
            .queue_url
            .unwrap_or_else(|| panic!("create queue {name}: no queue url"));
        TestQueue {
            sqs,
            url,
            name,
            endpoint,
        }
    }

    /// Receives, and deletes, every message in the queue (see [`drain`]).
    pub async fn drain(&self, expected: usize) -> Vec<Received> {
        drain(&self.sqs, &self.url, expected).await
    }
}

impl Drop for TestQueue {
    fn drop(&mut self) {
        delete_on_drop(&self.sqs, &self.url);
    }
}

/// Deletes a queue from a `Drop`, which cannot await: on a runtime of its own in a thread of its
/// own (this may run while a test panics inside a runtime), best effort, since every test's
/// queue name is unique and a leftover harms no other test.
pub fn delete_on_drop(sqs: &aws_sdk_sqs::Client, url: &str) {
    let (sqs, url) = (sqs.clone(), url.to_owned());
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| {
                rt.block_on(async { sqs.delete_queue().queue_url(url).send().await.ok() });
            })
    })
    .join();
}
