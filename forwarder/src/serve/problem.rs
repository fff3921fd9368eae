//! RFC 9457 problem documents (`application/problem+json`): every refusal of `serve`, with its
//! status, `type`, `title` and the headers that go with it (`Retry-After`, `WWW-Authenticate`).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::binding::Invalid;
use crate::pipeline::SendError;

/// An RFC 9457 problem document, and the headers that go with it.
#[derive(Debug)]
pub(super) struct Problem {
    pub(super) kind: Kind,
    pub(super) detail: String,
    /// The attribute an invalid event is refused for.
    pub(super) attribute: Option<String>,
    /// The rule an invalid event breaks.
    pub(super) rule: Option<&'static str>,
    /// The event of a batch the problem is about.
    pub(super) index: Option<usize>,
    pub(super) retry_after: Option<Duration>,
    /// Of a request of several events partly delivered: the ids in the queue, and the others.
    pub(super) partial: Option<Box<(Vec<String>, Vec<Failed>)>>,
}

/// An event of a partly delivered request that is not in the queue.
#[derive(Debug, Serialize)]
pub(super) struct Failed {
    id: String,
    reason: String,
}

/// The kinds of problem, each with its status, `type` and `title`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    InvalidEvent,
    UnreadableBody,
    MissingToken,
    WrongToken,
    BodyTooLarge,
    EventTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    Internal,
    RefusedBySqs,
    SqsUnavailable,
    Timeout,
}

/// The JSON form of a [`Problem`].
#[derive(Debug, Serialize)]
struct Document<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    title: &'static str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    attribute: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed: Option<&'a [Failed]>,
}

impl Problem {
    pub(super) fn new(kind: Kind, detail: String) -> Problem {
        Problem {
            kind,
            detail,
            attribute: None,
            rule: None,
            index: None,
            retry_after: None,
            partial: None,
        }
    }

    pub(super) fn invalid(invalid: Invalid, index: Option<usize>) -> Problem {
        let mut problem = Problem::new(Kind::InvalidEvent, invalid.detail);
        problem.attribute = invalid.attribute;
        problem.rule = Some(invalid.rule);
        problem.at(index)
    }

    /// Names the event of a batch the problem is about.
    pub(super) fn at(mut self, index: Option<usize>) -> Problem {
        if let Some(index) = index {
            self.detail = format!("event {index} of the batch: {}", self.detail);
            self.index = Some(index);
        }
        self
    }

    pub(super) fn busy() -> Problem {
        let mut problem = Problem::new(
            Kind::TooManyRequests,
            "the limit of requests in flight is reached (--max-in-flight-requests)".to_owned(),
        );
        problem.retry_after = Some(Duration::from_secs(1));
        problem
    }

    pub(super) fn busy_bytes() -> Problem {
        let mut problem = Problem::new(
            Kind::TooManyRequests,
            "the byte budget of the requests in flight is used up (--max-in-flight-bytes)"
                .to_owned(),
        );
        problem.retry_after = Some(Duration::from_secs(1));
        problem
    }

    pub(super) fn over_budget(budget: usize) -> Problem {
        Problem::new(
            Kind::BodyTooLarge,
            format!(
                "the body is over the byte budget of {budget} bytes for all requests in flight \
                 (--max-in-flight-bytes)"
            ),
        )
    }

    pub(super) fn too_many_events(events: usize, limit: usize) -> Problem {
        Problem::new(
            Kind::BodyTooLarge,
            format!(
                "a batch of {events} events is over the limit of {limit} events (--max-batch-events)"
            ),
        )
    }

    pub(super) fn body_too_large(limit: usize) -> Problem {
        Problem::new(
            Kind::BodyTooLarge,
            format!("the body is over the limit of {limit} bytes"),
        )
    }

    pub(super) fn timeout(timeout: Duration, retry_after: Duration) -> Problem {
        let mut problem = Problem::new(
            Kind::Timeout,
            format!(
                "the request did not complete within {}s; its events may or may not be queued",
                timeout.as_secs_f64()
            ),
        );
        problem.retry_after = Some(retry_after);
        problem
    }

    /// Some events were not delivered: 502 when SQS refused one (another attempt would not
    /// help), else 503 (unavailable, or shutting down). For a request of several events, the
    /// problem lists the `ids` already in the queue as `accepted` and the others as `failed`
    /// with their reason, so that a client sends again only those.
    pub(super) fn undelivered(
        failures: &[(usize, SendError)],
        ids: &[String],
        retry_after: Duration,
    ) -> Problem {
        for (index, error) in failures {
            tracing::warn!(index, %error, "event not delivered");
        }
        let total = ids.len();
        let refused = failures
            .iter()
            .find(|(_, error)| matches!(error, SendError::Refused { .. }));
        let Some((index, error)) = refused.or(failures.first()) else {
            return Problem::new(Kind::Internal, "no failure to report".to_owned());
        };
        let kind = match error {
            SendError::Refused { .. } => Kind::RefusedBySqs,
            SendError::Unavailable { .. } | SendError::Closed => Kind::SqsUnavailable,
        };
        let mut detail = reason(error);
        if total > 1 {
            detail = format!(
                "{} of {total} events not queued (first: event {index}: {detail}); the {} in \
                 `accepted` are in the queue: send only those in `failed` again",
                failures.len(),
                total - failures.len()
            );
        }
        let mut problem = Problem::new(kind, detail);
        if total > 1 {
            problem.index = Some(*index);
            let failed: Vec<Failed> = failures
                .iter()
                .map(|(index, error)| Failed {
                    id: ids.get(*index).cloned().unwrap_or_default(),
                    reason: reason(error),
                })
                .collect();
            let accepted = ids
                .iter()
                .enumerate()
                .filter(|(index, _)| !failures.iter().any(|(failed, _)| failed == index))
                .map(|(_, id)| id.clone())
                .collect();
            problem.partial = Some(Box::new((accepted, failed)));
        }
        if kind == Kind::SqsUnavailable {
            problem.retry_after = Some(retry_after);
        }
        problem
    }
}

/// Why an event was not delivered, for a client: SQS's message may name the account or the
/// queue, so a refusal shows its code only.
fn reason(error: &SendError) -> String {
    match error {
        SendError::Refused { code, .. } => format!("SQS refused the message: {code}"),
        other => other.to_string(),
    }
}

impl Kind {
    pub(super) fn status(self) -> StatusCode {
        match self {
            Kind::InvalidEvent | Kind::UnreadableBody => StatusCode::BAD_REQUEST,
            Kind::MissingToken | Kind::WrongToken => StatusCode::UNAUTHORIZED,
            Kind::BodyTooLarge | Kind::EventTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Kind::RefusedBySqs => StatusCode::BAD_GATEWAY,
            Kind::SqsUnavailable | Kind::Timeout => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The problem `type`, a URI.
    pub(super) fn uri(self) -> &'static str {
        match self {
            Kind::InvalidEvent => "urn:forwarder:problem:invalid-event",
            Kind::UnreadableBody => "urn:forwarder:problem:unreadable-body",
            Kind::MissingToken | Kind::WrongToken => "urn:forwarder:problem:unauthorized",
            Kind::BodyTooLarge | Kind::EventTooLarge => "urn:forwarder:problem:too-large",
            Kind::UnsupportedMediaType => "urn:forwarder:problem:unsupported-media-type",
            Kind::TooManyRequests => "urn:forwarder:problem:too-many-requests",
            Kind::Internal => "urn:forwarder:problem:internal",
            Kind::RefusedBySqs => "urn:forwarder:problem:refused-by-sqs",
            Kind::SqsUnavailable => "urn:forwarder:problem:sqs-unavailable",
            Kind::Timeout => "urn:forwarder:problem:timeout",
        }
    }

    pub(super) fn title(self) -> &'static str {
        match self {
            Kind::InvalidEvent => "Invalid CloudEvent",
            Kind::UnreadableBody => "Unreadable body",
            Kind::MissingToken | Kind::WrongToken => "Missing or wrong bearer token",
            Kind::BodyTooLarge => "Body too large",
            Kind::EventTooLarge => "Event too large for SQS",
            Kind::UnsupportedMediaType => "Unsupported media type",
            Kind::TooManyRequests => "Too many requests in flight",
            Kind::Internal => "Internal error",
            Kind::RefusedBySqs => "Refused by SQS",
            Kind::SqsUnavailable => "SQS unavailable",
            Kind::Timeout => "Request timed out",
        }
    }

    /// The `WWW-Authenticate` challenge of a 401 (RFC 6750).
    pub(super) fn challenge(self) -> Option<&'static str> {
        match self {
            Kind::MissingToken => Some("Bearer"),
            Kind::WrongToken => Some("Bearer error=\"invalid_token\""),
            _ => None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let document = Document {
            ty: self.kind.uri(),
            title: self.kind.title(),
            status: self.kind.status().as_u16(),
            detail: &self.detail,
            attribute: self.attribute.as_deref(),
            rule: self.rule,
            index: self.index,
            accepted: self.partial.as_ref().map(|partial| partial.0.as_slice()),
            failed: self.partial.as_ref().map(|partial| partial.1.as_slice()),
        };
        let body = serde_json::to_string(&document).unwrap_or_default();
        let mut response = (self.kind.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(retry_after) = self.retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
        }
        if let Some(challenge) = self.kind.challenge() {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
