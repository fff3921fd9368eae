//! STS: who the credentials belong to, asked first by every command.

use std::time::Duration;

use aws_access::retry::{Backoff, retry};

use super::error::AwsError;

/// An STS client. Its one call gives up sooner than the others (see [`Sts::get_caller_identity`]).
#[derive(Debug, Clone)]
pub struct Sts {
    client: aws_sdk_sts::Client,
}

/// Who the credentials belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    /// The account.
    pub account: String,
    /// The caller's ARN.
    pub arn: String,
}

/// The first call decides whether AWS can be reached at all: it gives up sooner.
const PREFLIGHT: Backoff = Backoff {
    base: Duration::from_millis(200),
    max_delay: Duration::from_secs(1),
    max_attempts: 3,
    max_elapsed: Duration::from_secs(10),
};

impl Sts {
    /// Wraps a client.
    pub fn new(client: aws_sdk_sts::Client) -> Sts {
        Sts { client }
    }

    /// The account and ARN of the credentials in use. This is the first call of every command,
    /// so it gives up sooner than the others when AWS cannot be reached.
    pub async fn get_caller_identity(&self) -> Result<CallerIdentity, AwsError> {
        let target = || "the credentials".to_owned();
        let out = retry(&PREFLIGHT, &[], || self.client.get_caller_identity().send())
            .await
            .map_err(|e| AwsError::new("GetCallerIdentity", target(), e))?;
        Ok(CallerIdentity {
            account: out
                .account
                .ok_or_else(|| AwsError::missing("GetCallerIdentity", target(), "Account"))?,
            arn: out
                .arn
                .ok_or_else(|| AwsError::missing("GetCallerIdentity", target(), "Arn"))?,
        })
    }
}
