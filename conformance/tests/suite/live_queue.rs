//! `conformance check` on a live queue: by default it peeks (every message is visible again
//! right after the run, none deleted or moved), refuses a queue with a redrive policy unless
//! told that receive counts may rise, and deletes only with `--delete`.

use std::process::Output;

use aws_sdk_sqs::types::QueueAttributeName;

const CONFORMANT: &str = r#"{"specversion":"1.0","id":"1","source":"/live","type":"t"}"#;

/// A plain queue of the test's own (and, when asked, a dead-letter queue behind it after one
/// receive), removed on drop.
struct LiveQueue {
    sqs: aws_sdk_sqs::Client,
    endpoint: String,
    url: String,
    dead_letter_url: Option<String>,
}

impl LiveQueue {
    async fn new(redrive: bool) -> LiveQueue {
        let (sqs, endpoint) = testkit::localstack_sqs().await;
        let name = format!("live-{}", uuid::Uuid::new_v4().simple());
        let create = |name: String| sqs.create_queue().queue_name(name);
        let mut dead_letter_url = None;
        let mut request = create(name.clone());
        if redrive {
            let url = create(format!("{name}-dlq"))
                .send()
                .await
                .expect("create the dead-letter queue")
                .queue_url
                .expect("a queue url");
            let arn = sqs
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .expect("the dead-letter queue's arn")
                .attributes
                .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
                .expect("an arn");
            let policy = format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"1"}}"#);
            request = request.attributes(QueueAttributeName::RedrivePolicy, policy);
            dead_letter_url = Some(url);
        }
        let url = request
            .send()
            .await
            .expect("create the queue")
            .queue_url
            .expect("a queue url");
        for _ in 0..3 {
            sqs.send_message()
                .queue_url(&url)
                .message_body(CONFORMANT)
                .send()
                .await
                .expect("SendMessage");
        }
        LiveQueue {
            sqs,
            endpoint,
            url,
            dead_letter_url,
        }
    }

    async fn check(&self, args: &[&str]) -> Output {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_conformance"))
            .args(["check", "--queue-url", &self.url])
            .args(["--endpoint-url", &self.endpoint])
            .args(["--region", localstack::REGION])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", localstack::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", localstack::SECRET_KEY)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .output()
            .await
            .expect("conformance check runs")
    }

    /// Messages visible in `url` right now, received with a visibility timeout of 0 (so that
    /// they stay), at most ten.
    async fn visible(&self, url: &str) -> usize {
        let received = self
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .expect("ReceiveMessage");
        received.messages.unwrap_or_default().len()
    }
}

impl Drop for LiveQueue {
    fn drop(&mut self) {
        let urls = [Some(self.url.clone()), self.dead_letter_url.clone()];
        for url in urls.into_iter().flatten() {
            let sqs = self.sqs.clone();
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|rt| {
                        rt.block_on(async { sqs.delete_queue().queue_url(url).send().await.ok() })
                    })
            })
            .join();
        }
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn check_peeks_by_default_and_deletes_only_when_asked() {
    let queue = LiveQueue::new(false).await;
    let output = queue.check(&[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("3"), "{}", text(&output));
    assert_eq!(
        queue.visible(&queue.url).await,
        3,
        "every message is visible again at once"
    );

    let output = queue.check(&["--keep"]).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "--keep names the default: {}",
        text(&output)
    );
    assert_eq!(queue.visible(&queue.url).await, 3);

    let output = queue.check(&["--delete"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(
        queue.visible(&queue.url).await,
        0,
        "--delete drains the queue"
    );
}

#[tokio::test]
async fn check_refuses_to_peek_a_queue_with_a_redrive_policy() {
    let queue = LiveQueue::new(true).await;
    let dead_letter_url = queue.dead_letter_url.clone().expect("a dead-letter queue");
    let output = queue.check(&[]).await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("--allow-receive-count"),
        "the error says how to go on: {}",
        text(&output)
    );
    assert_eq!(queue.visible(&queue.url).await, 3, "nothing was received");
    assert_eq!(queue.visible(&dead_letter_url).await, 0);

    let output = queue.check(&["--allow-receive-count"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}
