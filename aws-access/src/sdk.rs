//! The one place that builds AWS configuration for every crate of the workspace.
//!
//! Region and endpoint are resolved up front, so that a missing region is an error at start and
//! not at the first request. SDK-level retries are off: [`crate::retry`] is the only retry policy.
//! A role is assumed with its external id and refreshed by the SDK before its credentials expire.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

use crate::secret::Secret;

/// How to reach AWS (or LocalStack).
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// The region; the default chain (`AWS_REGION`, profile) when `None`.
    pub region: Option<String>,
    /// An endpoint other than AWS's own, such as LocalStack's.
    pub endpoint_url: Option<String>,
    /// Fixed credentials; the default chain when `None`.
    pub credentials: Option<StaticKey>,
    /// A role to assume with the credentials above or the default chain.
    pub assume_role: Option<AssumeRole>,
    /// Accept a non-loopback endpoint over plain http.
    pub allow_insecure_endpoint: bool,
}

/// An access key and its secret.
#[derive(Debug, Clone)]
pub struct StaticKey {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret: Secret,
}

/// A role to assume, refreshed by the SDK before its temporary credentials expire.
#[derive(Debug, Clone)]
pub struct AssumeRole {
    /// The role's ARN.
    pub role_arn: String,
    /// The external id its trust policy requires.
    pub external_id: Option<String>,
}

/// Why no AWS configuration could be built.
#[derive(Debug, thiserror::Error)]
pub enum AwsConfigError {
    /// Neither the options nor the environment name a region.
    #[error("no AWS region: pass --region or set AWS_REGION")]
    NoRegion,
    /// The endpoint is not a URL.
    #[error("endpoint `{0}` is not an http:// or https:// URL")]
    BadEndpoint(String),
    /// Plain http to another machine would send signed requests in the clear.
    #[error(
        "endpoint `{0}` is plain http to a non-loopback host: use https, or pass --allow-insecure-endpoint"
    )]
    InsecureEndpoint(String),
}

/// Builds the SDK configuration from `options`.
pub async fn sdk_config(options: &AwsOptions) -> Result<SdkConfig, AwsConfigError> {
    if let Some(endpoint) = &options.endpoint_url {
        check_endpoint(endpoint, options.allow_insecure_endpoint)?;
    }
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        );
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &options.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(key) = &options.credentials {
        loader = loader.credentials_provider(Credentials::new(
            &key.access_key_id,
            key.secret.expose(),
            None,
            None,
            "forwarder-config",
        ));
    }
    let base = loader.load().await;
    if base.region().is_none() {
        return Err(AwsConfigError::NoRegion);
    }
    let Some(role) = &options.assume_role else {
        return Ok(base);
    };
    let mut provider = aws_config::sts::AssumeRoleProvider::builder(&role.role_arn)
        .session_name("sqs-cloudevents-forwarder")
        .configure(&base);
    if let Some(external_id) = &role.external_id {
        provider = provider.external_id(external_id);
    }
    let provider = provider.build().await;
    Ok(base
        .into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build())
}

/// Refuses what is not a URL, and plain http to anything but loopback unless allowed.
pub fn check_endpoint(endpoint: &str, allow_insecure: bool) -> Result<(), AwsConfigError> {
    let (scheme, rest) = endpoint
        .split_once("://")
        .ok_or_else(|| AwsConfigError::BadEndpoint(endpoint.to_owned()))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(bracketed) = host.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    if host.is_empty() {
        return Err(AwsConfigError::BadEndpoint(endpoint.to_owned()));
    }
    match scheme {
        "https" => Ok(()),
        "http" if allow_insecure || is_loopback(host) => Ok(()),
        "http" => Err(AwsConfigError::InsecureEndpoint(endpoint.to_owned())),
        _ => Err(AwsConfigError::BadEndpoint(endpoint.to_owned())),
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(endpoint: &str, allow_insecure: bool, expected: Result<(), &str>) {
        let actual = check_endpoint(endpoint, allow_insecure).map_err(|e| e.to_string());
        match (actual, expected) {
            (Ok(()), Ok(())) => {}
            (Err(actual), Err(expected)) => {
                assert!(actual.contains(expected), "{endpoint}: {actual}")
            }
            (actual, expected) => panic!("{endpoint}: got {actual:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn endpoints() {
        check("http://localhost:4566", false, Ok(()));
        check("http://127.0.0.1:4566/", false, Ok(()));
        check("http://[::1]:4566", false, Ok(()));
        check("https://sqs.eu-west-1.amazonaws.com", false, Ok(()));
        check(
            "http://10.0.0.5:4566",
            false,
            Err("--allow-insecure-endpoint"),
        );
        check("http://10.0.0.5:4566", true, Ok(()));
        check(
            "http://evil.example@localhost.example.com",
            false,
            Err("plain http"),
        );
        check("localhost:4566", false, Err("not an http"));
        check("ftp://localhost", false, Err("not an http"));
    }
}
