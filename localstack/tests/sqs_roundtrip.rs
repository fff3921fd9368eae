//! The embedded LocalStack serves SQS (a queue created with aws-sdk-sqs can be read back), and
//! callers share one instance: a second caller gets the same endpoint and process.

use std::path::Path;

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

/// The state file's record of the host instance, if the endpoint in use is the one it records.
fn recorded(config: &localstack::Config, endpoint: &str) -> Option<localstack::State> {
    localstack::status(config)
        .expect("the state file reads")
        .filter(|state| state.endpoint == endpoint)
}

#[test]
fn a_second_caller_reuses_the_running_instance() {
    let config = localstack::Config::from_env().expect("configuration");
    let first = localstack::shared().expect("LocalStack starts");
    let before = recorded(&config, first.endpoint());
    let second = localstack::shared().expect("LocalStack is re-used");
    let after = recorded(&config, second.endpoint());

    assert_eq!(first.endpoint(), second.endpoint());
    assert!(
        !second.started(),
        "the second caller started another instance"
    );
    match config.backend {
        localstack::Backend::Host => {
            // The host backend records what it runs: the same process before and after.
            let before = before.expect("the host backend records its instance");
            let after = after.expect("the instance is still recorded");
            assert_eq!(before, after, "the instance was replaced");
            assert!(
                Path::new(&format!("/proc/{}", after.pid)).exists(),
                "the recorded process {} runs",
                after.pid
            );
        }
        localstack::Backend::External => {
            let given = config.endpoint.as_deref().expect("an external endpoint");
            assert_eq!(first.endpoint(), given.trim_end_matches('/'));
            // When it is the host instance of this target directory (as under `cargo xtask
            // test`), the calls left it alone.
            assert_eq!(before, after, "the recorded instance changed");
        }
        localstack::Backend::Container => {
            panic!(
                "a container is owned by its handle, not shared: run this test on the host or an external backend"
            )
        }
    }
}
