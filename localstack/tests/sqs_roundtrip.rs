//! The embedded LocalStack serves SQS: a queue created with aws-sdk-sqs can be read back.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sqs::config::Credentials;

#[tokio::test]
async fn creates_a_queue_and_reads_a_message_back() {
    let instance = tokio::task::spawn_blocking(localstack::shared)
        .await
        .expect("join")
        .expect("LocalStack starts");
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(localstack::REGION))
        .endpoint_url(instance.endpoint())
        .credentials_provider(Credentials::new(
            localstack::ACCESS_KEY,
            localstack::SECRET_KEY,
            None,
            None,
            "test",
        ))
        .load()
        .await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let name = format!("localstack-roundtrip-{}", std::process::id());
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("create")
        .queue_url
        .expect("url");
    sqs.send_message()
        .queue_url(&url)
        .message_body("hello")
        .send()
        .await
        .expect("send");
    let received = sqs
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(2)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default();
    let listed = sqs
        .list_queues()
        .queue_name_prefix(&name)
        .send()
        .await
        .expect("list")
        .queue_urls
        .unwrap_or_default();
    sqs.delete_queue()
        .queue_url(&url)
        .send()
        .await
        .expect("delete");
    assert_eq!(listed, vec![url]);
    let bodies: Vec<_> = received.iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, ["hello"]);
}

#[test]
fn a_second_caller_reuses_the_running_instance() {
    let first = localstack::shared().expect("LocalStack starts");
    let second = localstack::shared().expect("LocalStack is re-used");
    assert_eq!(first.endpoint(), second.endpoint());
    assert!(
        !second.started(),
        "the second caller must not start another instance"
    );
}
