//! The one retry policy and the one retry loop: what is retryable (of a whole request or of one
//! batch entry), how long to wait before the next attempt, and [`retry`], which runs a request
//! under both.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Error codes that mean "try again later", across SQS, STS and IAM.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "AWS.SimpleQueueService.RequestThrottled",
    "RequestExpired",
    "RequestTimeout",
    "RequestTimeoutException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "KmsThrottled",
    "AWS.SimpleQueueService.KmsThrottled",
    "KMS.ThrottlingException",
];

/// Whether an SDK error is worth another attempt: timeouts, connection failures, 5xx, 429 and
/// throttling. Construction errors, missing credentials and client faults are not.
pub fn is_retryable<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        SdkError::TimeoutError(_) => true,
        // Connection failures are transient; a failure to build the request (such as missing
        // credentials) is not.
        SdkError::DispatchFailure(failure) => failure.is_io() || failure.is_timeout(),
        SdkError::ResponseError(_) => true,
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            status >= 500 || status == 429 || is_retryable_code(context.err().code())
        }
        SdkError::ConstructionFailure(_) => false,
        _ => false,
    }
}

/// Whether an error code (of a whole request or of one batch entry) means "try again later".
pub fn is_retryable_code(code: Option<&str>) -> bool {
    code.is_some_and(|code| RETRYABLE_CODES.contains(&code))
}

/// Whether a failed entry of a batch (`SendMessageBatch`'s `Failed` list) is worth sending again.
///
/// A retryable code (throttling, an internal error) is retried whatever `SenderFault` says. An
/// entry with `SenderFault=false` is retried even when its code is unknown: AWS documents that
/// flag as "the failure is on the server side", so another attempt may succeed, and the retry
/// budget bounds the cost when it does not. Only an entry that is the sender's fault with a code
/// that is not retryable (an invalid attribute, a missing group id) is refused at once.
pub fn is_retryable_entry(code: &str, sender_fault: bool) -> bool {
    is_retryable_code(Some(code)) || !sender_fault
}

/// Runs `attempt` until it succeeds, fails for good, or `backoff`'s budget is spent. An error is
/// retried when [`is_retryable`] says so, or when its code is one of `also` (such as IAM's
/// eventual consistency just after a create).
pub async fn retry<T, E, F, Fut>(
    backoff: &Backoff,
    also: &[&str],
    mut attempt: F,
) -> Result<T, SdkError<E, HttpResponse>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata,
{
    let start = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let worth_it =
            is_retryable(&error) || error.code().is_some_and(|code| also.contains(&code));
        let Some(delay) = backoff
            .delay(attempts, start.elapsed())
            .filter(|_| worth_it)
        else {
            return Err(error);
        };
        tracing::debug!(
            code = error.code(),
            attempts,
            ?delay,
            "retrying an AWS request"
        );
        tokio::time::sleep(delay).await;
    }
}

/// Exponential backoff with full jitter, bounded in attempts and in total time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay's upper bound.
    pub base: Duration,
    /// No single delay exceeds this.
    pub max_delay: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// No retry starts after this much time since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            // The time budget is what bounds a long throttle; the attempt count only stops a
            // storm of instant failures.
            max_attempts: 30,
            max_elapsed: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt + 1`, given that `attempt` attempts (>= 1) failed and
    /// `elapsed` has passed; `None` when the budget is spent.
    pub fn delay(&self, attempt: u32, elapsed: Duration) -> Option<Duration> {
        if attempt >= self.max_attempts || elapsed >= self.max_elapsed {
            return None;
        }
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let cap = exp.min(self.max_delay);
        let jittered = cap.mul_f64(fastrand::f64());
        // Never sleep past the time budget.
        Some(jittered.min(self.max_elapsed - elapsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_attempts: 5,
            max_elapsed: Duration::from_secs(10),
        };
        for attempt in 1..5 {
            let delay = backoff
                .delay(attempt, Duration::ZERO)
                .expect("within budget");
            let cap = Duration::from_millis(100 * (1 << (attempt - 1))).min(Duration::from_secs(1));
            assert!(delay <= cap, "attempt {attempt}: {delay:?} > {cap:?}");
        }
        assert_eq!(backoff.delay(5, Duration::ZERO), None);
        assert_eq!(backoff.delay(1, Duration::from_secs(10)), None);
        let near_end = backoff
            .delay(4, Duration::from_millis(9_990))
            .expect("some");
        assert!(near_end <= Duration::from_millis(10));
    }

    #[test]
    fn codes() {
        assert!(is_retryable_code(Some(
            "AWS.SimpleQueueService.RequestThrottled"
        )));
        assert!(is_retryable_code(Some("InternalError")));
        assert!(!is_retryable_code(Some("InvalidParameterValue")));
        assert!(!is_retryable_code(None));
        assert!(!is_retryable_code(Some("InvalidMessageContents")));
    }

    #[test]
    fn entries() {
        let check = |code: &str, sender_fault: bool, expected: bool| {
            assert_eq!(
                is_retryable_entry(code, sender_fault),
                expected,
                "{code} sender_fault={sender_fault}"
            );
        };
        // A retryable code is retried even when SQS blames the sender.
        check("RequestThrottled", true, true);
        check("AWS.SimpleQueueService.RequestThrottled", true, true);
        check("KmsThrottled", true, true);
        check("InternalError", false, true);
        // A server-side failure with a code nobody listed is still worth another attempt.
        check("SomethingNew", false, true);
        check("MissingFromResponse", false, true);
        // The sender's fault with a code that is not retryable is final.
        check("InvalidParameterValue", true, false);
        check("InvalidMessageContents", true, false);
    }

    #[test]
    fn no_code_is_listed_twice() {
        let mut codes = RETRYABLE_CODES.to_vec();
        codes.sort_unstable();
        let before = codes.len();
        codes.dedup();
        assert_eq!(before, codes.len(), "a retryable code is listed twice");
    }
}
