//! The embedded LocalStack as tests reach it: started if none runs, with its region and test
//! credentials, through the one place that builds AWS configuration.

use std::process::Command;

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

/// Points a command line (the provisioner's, `conformance check`) at LocalStack as `options`
/// describe it: `--endpoint-url`, `--region`, and the test key in the environment.
pub fn on_localstack<'c>(command: &'c mut Command, options: &AwsOptions) -> &'c mut Command {
    if let Some(endpoint) = &options.endpoint_url {
        command.args(["--endpoint-url", endpoint]);
    }
    if let Some(region) = &options.region {
        command.args(["--region", region]);
    }
    command
        .env("AWS_ACCESS_KEY_ID", localstack::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", localstack::SECRET_KEY)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
}
