//! The error every AWS wrapper returns: the operation, what it was about, the service's code and
//! message, and the kind of failure that decides the advice printed with it.

use std::fmt;

use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};

/// IAM's error code for an entity that does not exist (yet).
pub(crate) const NO_SUCH_ENTITY: &str = "NoSuchEntity";

/// An AWS request that failed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// The operation, such as `CreateQueue`.
    pub operation: &'static str,
    /// What it was about, such as "queue `events`".
    pub target: String,
    /// The service's error code, for service errors.
    pub code: Option<String>,
    /// The service's message, or what went wrong on the way.
    pub message: Option<String>,
    /// The kind of failure, which decides the advice.
    pub kind: AwsErrorKind,
}

/// The kinds of failure, each with its own advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// The service answered with an error.
    Service,
    /// The endpoint could not be reached, or did not answer in time.
    Unreachable,
    /// No credentials could be found.
    NoCredentials,
    /// The answer lacked a field it always has.
    Malformed,
    /// Anything else.
    Other,
}

/// A call's output, or `None` when the service says that what it names does not exist.
pub(crate) fn unless_absent<T, E>(
    result: Result<T, SdkError<E, HttpResponse>>,
    absent: impl FnOnce(&E) -> bool,
    operation: &'static str,
    target: impl FnOnce() -> String,
) -> Result<Option<T>, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.as_service_error().is_some_and(absent) => Ok(None),
        Err(e) => Err(AwsError::new(operation, target(), e)),
    }
}

impl AwsError {
    pub(crate) fn new<E>(
        operation: &'static str,
        target: String,
        error: SdkError<E, HttpResponse>,
    ) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let kind = match &error {
            SdkError::ServiceError(_) => AwsErrorKind::Service,
            SdkError::TimeoutError(_) => AwsErrorKind::Unreachable,
            SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => {
                AwsErrorKind::Unreachable
            }
            _ if chain(&error).contains("credential") => AwsErrorKind::NoCredentials,
            _ => AwsErrorKind::Other,
        };
        let (code, message) = match kind {
            AwsErrorKind::Service => (
                error.code().map(str::to_owned),
                error.message().map(crate::error::one_line),
            ),
            _ => (None, Some(chain(&error))),
        };
        AwsError {
            operation,
            target,
            code,
            message,
            kind,
        }
    }

    pub(crate) fn missing(operation: &'static str, target: String, field: &str) -> AwsError {
        AwsError {
            operation,
            target,
            code: None,
            message: Some(format!("the answer has no {field}")),
            kind: AwsErrorKind::Malformed,
        }
    }

    /// Whether the service said the entity or queue does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some(NO_SUCH_ENTITY | "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist")
        )
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let AwsError {
            operation,
            target,
            code,
            message,
            kind,
        } = self;
        let message = message.as_deref().unwrap_or("no message");
        match kind {
            AwsErrorKind::Service => {
                let code = code.as_deref().unwrap_or("unknown error");
                write!(f, "{operation} on {target} failed: {code}: {message}")?;
                if is_auth_code(code) {
                    write!(
                        f,
                        ": check the AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID) and their permissions"
                    )?;
                }
                Ok(())
            }
            AwsErrorKind::Unreachable => write!(
                f,
                "{operation}: cannot reach AWS ({message}): check --endpoint-url, --region and the network"
            ),
            AwsErrorKind::NoCredentials => {
                // The default chain's message goes on to list every provider it tried.
                let short = message.split(" Attempted:").next().unwrap_or(message);
                let short = short
                    .strip_prefix("dispatch failure: other: ")
                    .unwrap_or(short);
                write!(
                    f,
                    "{operation}: no usable AWS credentials ({short}): set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use `cargo xtask provision --localstack`"
                )
            }
            AwsErrorKind::Malformed | AwsErrorKind::Other => {
                write!(f, "{operation} on {target} failed: {message}")
            }
        }
    }
}

impl std::error::Error for AwsError {}

/// The error and its sources on one line, each said once.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        let text = crate::error::one_line(&e.to_string());
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

fn is_auth_code(code: &str) -> bool {
    matches!(
        code,
        "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "UnrecognizedClientException"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidAccessKeyId"
            | "AccessDenied"
            | "AccessDeniedException"
            | "AuthFailure"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: AwsErrorKind, code: Option<&str>, message: &str, expected: &[&str]) {
        let error = AwsError {
            operation: "PutUserPolicy",
            target: "user `u`".to_owned(),
            code: code.map(str::to_owned),
            message: Some(message.to_owned()),
            kind,
        };
        let text = error.to_string();
        for part in expected {
            assert!(text.contains(part), "`{text}` lacks `{part}`");
        }
        assert!(!text.contains('\n'), "{text}");
    }

    #[test]
    fn messages_say_what_to_do() {
        check(
            AwsErrorKind::Service,
            Some("MalformedPolicyDocument"),
            "bad",
            &["PutUserPolicy on user `u` failed: MalformedPolicyDocument: bad"],
        );
        check(
            AwsErrorKind::Service,
            Some("InvalidClientTokenId"),
            "The security token included in the request is invalid",
            &["InvalidClientTokenId", "check the AWS credentials"],
        );
        check(
            AwsErrorKind::Unreachable,
            None,
            "connection refused",
            &["cannot reach AWS", "--endpoint-url"],
        );
        check(
            AwsErrorKind::NoCredentials,
            None,
            "dispatch failure: other: no credentials found in chain. Attempted: | Environment: x",
            &[
                "no usable AWS credentials (no credentials found in chain.)",
                "AWS_PROFILE",
            ],
        );
        assert!(
            AwsError {
                code: Some("NoSuchEntity".into()),
                ..error_with(AwsErrorKind::Service)
            }
            .is_not_found()
        );
        assert!(!error_with(AwsErrorKind::Other).is_not_found());
    }

    fn error_with(kind: AwsErrorKind) -> AwsError {
        AwsError {
            operation: "Op",
            target: "t".into(),
            code: None,
            message: None,
            kind,
        }
    }
}
