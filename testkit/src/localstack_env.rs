//! The embedded LocalStack as tests reach it: started if none runs, with its region and test
//! credentials, through the one place that builds AWS configuration.

use aws_access::sdk::{AwsOptions, StaticKey, sdk_config};
use aws_access::secret::Secret;

/// How to reach the embedded LocalStack (started if none runs): its endpoint, region and test
/// credentials. Panics when LocalStack cannot be started: no test can go on without it.
pub async fn localstack_options() -> AwsOptions {
    let instance = tokio::task::spawn_blocking(localstack::shared)
        .await
        .expect("the LocalStack launcher's thread")
        .unwrap_or_else(|e| panic!("LocalStack does not start: {e}"));
    AwsOptions {
        region: Some(localstack::REGION.to_owned()),
        endpoint_url: Some(instance.endpoint().to_owned()),
        credentials: Some(StaticKey {
            access_key_id: localstack::ACCESS_KEY.to_owned(),
            secret: Secret::new(localstack::SECRET_KEY),
        }),
        ..AwsOptions::default()
    }
}

/// An SQS client with LocalStack's administrator key, and LocalStack's endpoint.
pub async fn localstack_sqs() -> (aws_sdk_sqs::Client, String) {
    let options = localstack_options().await;
    let sdk = sdk_config(&options)
        .await
        .unwrap_or_else(|e| panic!("SDK configuration: {e}"));
    let endpoint = options.endpoint_url.unwrap_or_default();
    (aws_sdk_sqs::Client::new(&sdk), endpoint)
}
