//! A destination's SQS client, built from its own connection file: its region, its endpoint,
//! and its own credentials (static keys, or its own role and external id).

use aws_access::connection::ForwarderConfig;
use aws_access::sdk::{AssumeRole, AwsConfigError, AwsOptions, StaticKey, sdk_config};

use crate::sqs::{QueueUrl, Sqs};

/// Why a destination's client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The queue URL is not one.
    #[error("{0}")]
    QueueUrl(String),
    /// The AWS configuration could not be built.
    #[error(transparent)]
    Aws(#[from] AwsConfigError),
}

/// The static key of a connection file, if it has one.
pub fn static_key(file: &ForwarderConfig) -> Option<StaticKey> {
    Some(StaticKey {
        access_key_id: file.access_key.clone()?,
        secret: file.access_secret.clone()?,
    })
}

/// The role of a connection file, with its external id, if it has one.
pub fn assume_role(file: &ForwarderConfig) -> Option<AssumeRole> {
    file.role_arn.as_ref().map(|arn| AssumeRole {
        role_arn: arn.clone(),
        external_id: file.external_id.clone(),
    })
}

/// The client for the queue `file` names, with the credentials it names.
pub async fn connect(file: &ForwarderConfig, allow_insecure: bool) -> Result<Sqs, ConnectError> {
    let queue_url = QueueUrl::parse(&file.queue_url).map_err(ConnectError::QueueUrl)?;
    let options = AwsOptions {
        region: Some(file.region.clone()),
        endpoint_url: file.endpoint.clone(),
        credentials: static_key(file),
        assume_role: assume_role(file),
        allow_insecure_endpoint: allow_insecure,
    };
    let sdk = sdk_config(&options).await?;
    Ok(Sqs::new(aws_sdk_sqs::Client::new(&sdk), queue_url))
}
