//! The container backend (feature `container`, image from `LOCALSTACK_IMAGE`): testcontainers
//! starts LocalStack, its queue URLs name the endpoint the caller uses, and dropping the handle
//! removes the container. `cargo xtask test --backend container` runs it.

#![cfg(feature = "container")]

use std::net::TcpStream;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sqs::config::Credentials;

#[tokio::test]
async fn a_container_serves_sqs_and_goes_when_dropped() {
    let config = localstack::Config {
        backend: localstack::Backend::Container,
        ..localstack::Config::from_env().expect("config")
    };
    let instance = tokio::task::spawn_blocking(move || localstack::start(&config))
        .await
        .expect("join")
        .expect("the container starts");
    let endpoint = instance.endpoint().to_owned();
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(localstack::REGION))
        .endpoint_url(&endpoint)
        .credentials_provider(Credentials::new(
            localstack::ACCESS_KEY,
            localstack::SECRET_KEY,
            None,
            None,
            "test",
        ))
        .load()
        .await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = sqs
        .create_queue()
        .queue_name(format!("container-{}", std::process::id()))
        .send()
        .await
        .expect("create")
        .queue_url
        .expect("a queue URL");
    assert!(
        url.starts_with(&format!("{endpoint}/")),
        "{url} is not under {endpoint}"
    );

    tokio::task::spawn_blocking(move || drop(instance))
        .await
        .expect("join");
    let authority = endpoint.trim_start_matches("http://");
    assert!(
        TcpStream::connect(authority).is_err(),
        "{endpoint} still answers after the container was dropped"
    );
}
