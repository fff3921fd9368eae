//! The judge's own SQS client, deliberately apart from `aws-access` (see ARCHITECTURE.md): built
//! from the default AWS configuration, the endpoint and the region overridden only when given.

use aws_config::{BehaviorVersion, Region};

/// No region was given and the AWS configuration has none.
#[derive(Debug, thiserror::Error)]
#[error("no AWS region: pass --region or set AWS_REGION")]
pub struct NoRegion;

/// The SQS client; a missing region is an error here rather than at the first request.
pub async fn sqs_client(
    endpoint_url: Option<&str>,
    region: Option<&str>,
) -> Result<aws_sdk_sqs::Client, NoRegion> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    if let Some(endpoint_url) = endpoint_url {
        loader = loader.endpoint_url(endpoint_url);
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return Err(NoRegion);
    }
    Ok(aws_sdk_sqs::Client::new(&config))
}
