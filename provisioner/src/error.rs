//! The library's one error type. Every message is one line, starts lower-case, says what to do,
//! and never holds a secret.

use std::path::PathBuf;

use crate::aws::AwsError;
use crate::names::NameError;

/// Why provisioning, verifying or destroying failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A name, account id, external id or region was refused before any request.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The input is incomplete or contradictory.
    #[error("{0}")]
    Usage(String),
    /// No AWS configuration could be built (no region, a bad endpoint).
    #[error(transparent)]
    Config(#[from] aws_access::sdk::AwsConfigError),
    /// An AWS request failed, after the retries it deserved.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A resource with the expected name exists but was not created by this tool for this
    /// deployment.
    #[error(
        "{resource} exists but was not created by this tool for this deployment (it lacks the tags {tags}): choose another --name or --user, or delete it yourself"
    )]
    NotManaged {
        /// The resource, such as "queue `events`".
        resource: String,
        /// The deployment's tags, `key=value, …`.
        tags: String,
    },
    /// The principal's policy is for another queue: another deployment uses it.
    #[error(
        "{principal} already sends to {} (its policy names it), so it belongs to another deployment: choose another --user, or destroy that deployment first",
        queues.join(", ")
    )]
    ForAnotherQueue {
        /// The user or role, such as "user `orders-forwarder`".
        principal: String,
        /// The queues its policy names.
        queues: Vec<String>,
    },
    /// The user has access keys, but no secret of theirs can be recovered.
    #[error(
        "user `{user}` already has access key(s) {} and IAM never shows a secret twice; {}: pass --rotate-key to create a new key, write it, and delete the old one(s)",
        keys.join(", "),
        match out { Some(path) => format!("{} does not hold one of them", path.display()), None => "no --out file holds one of them".to_owned() }
    )]
    KeyNotRecoverable {
        /// The user.
        user: String,
        /// Its access key ids (not secret).
        keys: Vec<String>,
        /// The configuration file that was looked at.
        out: Option<PathBuf>,
    },
    /// The configuration file could not be read or written.
    #[error("{0}: fix or remove the file, or choose another --out")]
    OutFile(#[from] aws_access::connection::ConfigError),
    /// AWS answered without a field it always sends.
    #[error("{operation} returned no {field}")]
    MissingField {
        /// The operation.
        operation: &'static str,
        /// The field.
        field: &'static str,
    },
    /// Apply failed part-way; what was done stays done and a new apply continues from there.
    #[error("apply stopped after {} change(s) ({}): {cause}", done.len(), if done.is_empty() { "none".to_owned() } else { done.join("; ") })]
    Partial {
        /// The changes that were made.
        done: Vec<String>,
        /// What stopped it.
        cause: Box<ProvisionError>,
    },
    /// Verification found something other than least privilege.
    #[error("verify failed: {}", .0.failures().join("; "))]
    Verify(Box<crate::verify::VerifyReport>),
    /// Destroy refused something and changed nothing.
    #[error("destroy changed nothing: {}", .0.join("; "))]
    DestroyRefused(Vec<String>),
    /// Destroy could not delete everything; it deleted what it could.
    #[error("destroy left {} failure(s): {}", .0.failures.len(), .0.failures.join("; "))]
    Destroy(Box<crate::destroy::DestroyReport>),
}

/// Joins the lines of a message, so that every error prints on one line.
pub(crate) fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}
