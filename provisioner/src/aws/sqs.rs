//! SQS: queues, their attributes and their tags.

use std::collections::BTreeMap;

use aws_access::retry::{Backoff, retry};
use aws_sdk_sqs::types::QueueAttributeName;

use super::error::{AwsError, unless_absent};

/// An SQS client.
#[derive(Debug, Clone)]
pub struct Sqs {
    client: aws_sdk_sqs::Client,
    backoff: Backoff,
}

impl Sqs {
    /// Wraps a client.
    pub fn new(client: aws_sdk_sqs::Client, backoff: Backoff) -> Sqs {
        Sqs { client, backoff }
    }

    /// The queue's URL, or `None` when there is no such queue.
    pub async fn get_queue_url(&self, name: &str) -> Result<Option<String>, AwsError> {
        let target = || format!("queue `{name}`");
        let out = unless_absent(
            retry(&self.backoff, &[], || {
                self.client.get_queue_url().queue_name(name).send()
            })
            .await,
            |e| e.is_queue_does_not_exist(),
            "GetQueueUrl",
            target,
        )?;
        out.map(|out| {
            out.queue_url
                .ok_or_else(|| AwsError::missing("GetQueueUrl", target(), "QueueUrl"))
        })
        .transpose()
    }

    /// Creates a queue with `attributes`, tagged with `tags`; returns its URL.
    pub async fn create_queue(
        &self,
        name: &str,
        attributes: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, AwsError> {
        let target = || format!("queue `{name}`");
        let out = retry(&self.backoff, &[], || {
            let mut request = self
                .client
                .create_queue()
                .queue_name(name)
                .set_tags(Some(tags.clone().into_iter().collect()));
            for (key, value) in attributes {
                request = request.attributes(QueueAttributeName::from(key.as_str()), value);
            }
            request.send()
        })
        .await
        .map_err(|e| AwsError::new("CreateQueue", target(), e))?;
        out.queue_url
            .ok_or_else(|| AwsError::missing("CreateQueue", target(), "QueueUrl"))
    }

    /// All attributes of a queue, or `None` when it is gone.
    pub async fn get_queue_attributes(
        &self,
        url: &str,
    ) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        let request = || {
            self.client
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::All)
                .send()
        };
        let out = unless_absent(
            retry(&self.backoff, &[], request).await,
            |e| e.is_queue_does_not_exist(),
            "GetQueueAttributes",
            || format!("queue {url}"),
        )?;
        Ok(out.map(|out| {
            out.attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_owned(), v))
                .collect()
        }))
    }

    /// Sets attributes of a queue.
    pub async fn set_queue_attributes(
        &self,
        url: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        retry(&self.backoff, &[], || {
            let mut request = self.client.set_queue_attributes().queue_url(url);
            for (key, value) in attributes {
                request = request.attributes(QueueAttributeName::from(key.as_str()), value);
            }
            request.send()
        })
        .await
        .map_err(|e| AwsError::new("SetQueueAttributes", format!("queue {url}"), e))?;
        Ok(())
    }

    /// The queue's tags.
    pub async fn list_queue_tags(&self, url: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let out = retry(&self.backoff, &[], || {
            self.client.list_queue_tags().queue_url(url).send()
        })
        .await
        .map_err(|e| AwsError::new("ListQueueTags", format!("queue {url}"), e))?;
        Ok(out.tags.unwrap_or_default().into_iter().collect())
    }

    /// Deletes a queue; `false` when it was already gone.
    pub async fn delete_queue(&self, url: &str) -> Result<bool, AwsError> {
        let out = unless_absent(
            retry(&self.backoff, &[], || {
                self.client.delete_queue().queue_url(url).send()
            })
            .await,
            |e| e.is_queue_does_not_exist(),
            "DeleteQueue",
            || format!("queue {url}"),
        )?;
        Ok(out.is_some())
    }
}
