//! Thin wrappers over SQS, IAM and STS, one file a service: one `async fn` per operation,
//! nothing else.
//!
//! Every call goes through the one bounded retry loop, [`aws_access::retry::retry`], which asks
//! [`aws_access::retry`] what is worth another attempt. Calls made on something that was just
//! created (putting a policy on a new user, creating its key, simulating its policy) also retry
//! IAM's `NoSuchEntity`, since IAM takes a moment to make new entities visible; lookups and
//! deletions do not, so that "absent" stays a quick answer. Errors keep the service's code and
//! message ([`error`]); "not found" becomes `None` or `false` by matching the typed service error.

mod error;
mod iam;
mod sqs;
mod sts;

pub use self::error::{AwsError, AwsErrorKind};
pub use self::iam::{AccessKeyMetadata, Decision, Iam, NewAccessKey, PrincipalRecord};
pub use self::sqs::Sqs;
pub use self::sts::{CallerIdentity, Sts};
