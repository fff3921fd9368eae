//! What `apply` would do, pure: from the desired state and the observed one, an ordered list of
//! changes (empty when everything is in place), or the reason apply must not proceed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use aws_access::connection::{Format, ForwarderConfig};
use serde_json::Value;

use crate::error::ProvisionError;
use crate::names::{AccountId, ExternalId, Names, POLICY_NAME, QueueName, Region};
use crate::policy::{self, PolicyDocument, QueueArn};

pub use crate::names::PrincipalKind;

/// `MaximumMessageSize`, set explicitly: SQS's maximum, 1 MiB.
pub const MAXIMUM_MESSAGE_SIZE: &str = "1048576";
/// The attribute holding a queue's resource policy.
pub const QUEUE_POLICY: &str = "Policy";
/// The dead-letter queue's `maxReceiveCount`.
pub const MAX_RECEIVE_COUNT: u32 = 5;

/// Where the forwarder's configuration goes, and in which format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFile {
    /// The file.
    pub path: PathBuf,
    /// JSON or `KEY=value` lines.
    pub format: Format,
}

/// Everything apply should leave in place.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The region of the queue.
    pub region: Region,
    /// The account, from STS.
    pub account: AccountId,
    /// The queue, DLQ and principal names.
    pub names: Names,
    /// The queue's ARN.
    pub queue_arn: QueueArn,
    /// The DLQ's ARN, when there is one.
    pub dlq_arn: Option<QueueArn>,
    /// The single-statement send policy.
    pub policy: PolicyDocument,
    /// A user with a key, or a role.
    pub access: Access,
    /// An endpoint other than AWS's own, written into the configuration.
    pub endpoint: Option<String>,
    /// Where to write the configuration.
    pub out: Option<OutFile>,
}

/// How the forwarder authenticates.
#[derive(Debug, Clone)]
pub enum Access {
    /// An IAM user and its access key.
    User {
        /// Replace the user's keys by a new one.
        rotate_key: bool,
    },
    /// An IAM role another account assumes.
    Role {
        /// Its trust policy.
        trust: PolicyDocument,
        /// The external id in the trust policy.
        external_id: ExternalId,
    },
}

/// What exists now, as far as apply is concerned.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The queue.
    pub queue: Option<QueueState>,
    /// The dead-letter queue (only looked at when one is wanted).
    pub dlq: Option<QueueState>,
    /// The user or role, depending on the mode.
    pub principal: Option<PrincipalState>,
    /// The user's access keys, in user mode.
    pub keys: Vec<KeyState>,
    /// The configuration file, when it exists.
    pub saved: Option<Saved>,
}

/// An existing queue.
#[derive(Debug, Clone, Default)]
pub struct QueueState {
    /// Its URL.
    pub url: String,
    /// Whether it carries this deployment's tags ([`Names::tags`]).
    pub managed: bool,
    /// All its attributes.
    pub attributes: BTreeMap<String, String>,
}

/// An existing user or role.
#[derive(Debug, Clone, Default)]
pub struct PrincipalState {
    /// Its ARN.
    pub arn: String,
    /// Whether it carries this deployment's tags ([`Names::tags`]).
    pub managed: bool,
    /// The names of its inline policies.
    pub inline_policies: Vec<String>,
    /// Our inline policy's document, decoded, when it exists.
    pub policy: Option<Value>,
    /// The ARNs of its attached managed policies.
    pub attached: Vec<String>,
    /// The groups it belongs to (users only).
    pub groups: Vec<String>,
    /// Its trust policy, decoded (roles only).
    pub trust: Option<Value>,
}

/// An existing access key (the id only: IAM never shows a secret twice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    /// The access key id.
    pub id: String,
    /// When it was created, in seconds since the epoch.
    pub created: Option<i64>,
}

/// The configuration file as found.
#[derive(Debug, Clone)]
pub struct Saved {
    /// Its parsed content.
    pub config: ForwarderConfig,
    /// Its exact text, to tell whether it needs rewriting.
    pub text: String,
}

/// One step of apply, in the order apply takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Create a queue with these attributes, tagged.
    CreateQueue {
        /// Its name.
        name: String,
        /// Its attributes.
        attributes: BTreeMap<String, String>,
        /// The deployment's tags.
        tags: BTreeMap<String, String>,
    },
    /// Set attributes that differ from the declared ones.
    SetQueueAttributes {
        /// The queue's name.
        name: String,
        /// The attributes to set, with their new values.
        attributes: BTreeMap<String, String>,
    },
    /// Create the IAM user, tagged.
    CreateUser {
        /// Its name.
        name: String,
        /// The deployment's tags.
        tags: BTreeMap<String, String>,
    },
    /// Create the IAM role with its trust policy, tagged.
    CreateRole {
        /// Its name.
        name: String,
        /// The deployment's tags.
        tags: BTreeMap<String, String>,
    },
    /// Replace the role's trust policy.
    UpdateTrustPolicy {
        /// The role.
        name: String,
    },
    /// Put the send policy inline on the user or role.
    PutPolicy {
        /// User or role.
        kind: PrincipalKind,
        /// Its name.
        name: String,
    },
    /// Create an access key.
    CreateAccessKey {
        /// The user.
        user: String,
    },
    /// Delete an access key.
    DeleteAccessKey {
        /// The user.
        user: String,
        /// The key.
        key_id: String,
    },
    /// Write the forwarder's configuration (mode 0600, atomically).
    WriteConfig {
        /// The file.
        path: PathBuf,
    },
}

/// The outcome of planning.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What apply would change, in order; empty means "no changes".
    pub changes: Vec<Change>,
    /// What is already in place and kept.
    pub kept: Vec<String>,
    /// What apply leaves alone but a person should know (verify will fail on it).
    pub warnings: Vec<String>,
    /// The exact identity policy.
    pub policy: PolicyDocument,
    /// The exact trust policy, in role mode.
    pub trust: Option<PolicyDocument>,
    /// The exact queue policy (the queue's resource policy).
    pub queue_policy: Value,
}

/// The attributes a queue is created with: `own` is its ARN (for its resource policy),
/// `redrive_to` the DLQ.
pub fn queue_attributes(
    fifo: bool,
    own: &QueueArn,
    redrive_to: Option<&QueueArn>,
) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::from([
        (
            QUEUE_POLICY.to_owned(),
            policy::queue_policy(own).to_string(),
        ),
        (
            "MaximumMessageSize".to_owned(),
            MAXIMUM_MESSAGE_SIZE.to_owned(),
        ),
        ("SqsManagedSseEnabled".to_owned(), "true".to_owned()),
    ]);
    if fifo {
        attributes.insert("FifoQueue".to_owned(), "true".to_owned());
    }
    if let Some(dlq) = redrive_to {
        attributes.insert("RedrivePolicy".to_owned(), redrive_policy(dlq));
    }
    attributes
}

/// `{"deadLetterTargetArn": DLQ, "maxReceiveCount": 5}`.
pub fn redrive_policy(dlq: &QueueArn) -> String {
    serde_json::json!({"deadLetterTargetArn": dlq.to_string(), "maxReceiveCount": MAX_RECEIVE_COUNT}).to_string()
}

/// The external id to use: the one given, else the one the existing role's trust policy holds,
/// else the one the configuration file holds, else `fresh`.
pub fn resolve_external_id(
    given: Option<ExternalId>,
    existing_trust: Option<&Value>,
    saved: Option<&ForwarderConfig>,
    fresh: impl FnOnce() -> ExternalId,
) -> ExternalId {
    given
        .or_else(|| {
            existing_trust
                .and_then(policy::parse_trust_policy)
                .map(|t| t.external_id)
        })
        .or_else(|| {
            saved
                .and_then(|c| c.external_id.as_deref())
                .and_then(|id| ExternalId::new(id).ok())
        })
        .unwrap_or_else(fresh)
}

/// Decides what apply does.
pub fn compute(desired: &Desired, observed: &Observed) -> Result<Plan, ProvisionError> {
    check_saved_queue(desired, observed)?;
    let mut plan = Plan {
        changes: Vec::new(),
        kept: Vec::new(),
        warnings: Vec::new(),
        policy: desired.policy.clone(),
        queue_policy: policy::queue_policy(&desired.queue_arn),
        trust: match &desired.access {
            Access::Role { trust, .. } => Some(trust.clone()),
            Access::User { .. } => None,
        },
    };
    // The DLQ first: the queue's redrive policy names it, and SQS checks that it exists.
    if let (Some(dlq), Some(dlq_arn)) = (&desired.names.dlq, &desired.dlq_arn) {
        queue(
            &mut plan,
            &desired.names,
            dlq,
            observed.dlq.as_ref(),
            queue_attributes(dlq.is_fifo(), dlq_arn, None),
        )?;
    }
    let attributes = queue_attributes(
        desired.names.queue.is_fifo(),
        &desired.queue_arn,
        desired.dlq_arn.as_ref(),
    );
    queue(
        &mut plan,
        &desired.names,
        &desired.names.queue,
        observed.queue.as_ref(),
        attributes,
    )?;

    let name = desired.names.principal.as_str();
    let kind = match desired.access {
        Access::User { .. } => PrincipalKind::User,
        Access::Role { .. } => PrincipalKind::Role,
    };
    let queue_url = observed.queue.as_ref().map(|q| q.url.as_str());
    match (&observed.principal, &desired.access) {
        (None, Access::User { .. }) => {
            plan.changes.push(Change::CreateUser {
                name: name.to_owned(),
                tags: desired.names.tags(),
            });
            plan.changes.push(Change::PutPolicy {
                kind,
                name: name.to_owned(),
            });
            plan.changes.push(Change::CreateAccessKey {
                user: name.to_owned(),
            });
            write_config(&mut plan, desired, observed, None);
        }
        (None, Access::Role { .. }) => {
            plan.changes.push(Change::CreateRole {
                name: name.to_owned(),
                tags: desired.names.tags(),
            });
            plan.changes.push(Change::PutPolicy {
                kind,
                name: name.to_owned(),
            });
            write_config(&mut plan, desired, observed, None);
        }
        (Some(p), _) if !p.managed => {
            return Err(ProvisionError::NotManaged {
                resource: format!("{kind} `{name}`"),
                tags: desired.names.tags_text(),
            });
        }
        (Some(p), access) => {
            let others = other_queues(p.policy.as_ref(), &desired.queue_arn);
            if !others.is_empty() {
                return Err(ProvisionError::ForAnotherQueue {
                    principal: format!("{kind} `{name}`"),
                    queues: others,
                });
            }
            if let Access::Role { trust, .. } = access {
                if p.trust.as_ref() == Some(&trust.to_value()) {
                    plan.kept.push(format!("trust policy of role `{name}`"));
                } else {
                    plan.changes.push(Change::UpdateTrustPolicy {
                        name: name.to_owned(),
                    });
                }
            }
            if p.policy.as_ref() == Some(&desired.policy.to_value()) {
                plan.kept.push(format!(
                    "{kind} `{name}` with inline policy `{POLICY_NAME}`"
                ));
            } else {
                plan.changes.push(Change::PutPolicy {
                    kind,
                    name: name.to_owned(),
                });
            }
            warn_about_extras(&mut plan, kind, name, p);
            match access {
                Access::User { rotate_key } => keys(&mut plan, desired, observed, *rotate_key)?,
                Access::Role { external_id, .. } => {
                    let config = queue_url.map(|url| ForwarderConfig {
                        role_arn: Some(p.arn.clone()),
                        external_id: Some(external_id.as_str().to_owned()),
                        ..base_config(desired, url)
                    });
                    write_config(&mut plan, desired, observed, config);
                }
            }
        }
    }
    Ok(plan)
}

/// The configuration apply writes, once every value is known.
pub fn base_config(desired: &Desired, queue_url: &str) -> ForwarderConfig {
    ForwarderConfig {
        queue_url: queue_url.to_owned(),
        region: desired.region.as_str().to_owned(),
        access_key: None,
        access_secret: None,
        role_arn: None,
        external_id: None,
        endpoint: desired.endpoint.clone(),
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::CreateQueue {
                name,
                attributes,
                tags,
            } => {
                write!(
                    f,
                    "create queue `{name}` ({}), tagged {}",
                    list(attributes),
                    list(tags)
                )
            }
            Change::SetQueueAttributes { name, attributes } => {
                write!(f, "set attributes of queue `{name}`: {}", list(attributes))
            }
            Change::CreateUser { name, tags } => {
                write!(f, "create IAM user `{name}`, tagged {}", list(tags))
            }
            Change::CreateRole { name, tags } => write!(
                f,
                "create IAM role `{name}` with the trust policy, tagged {}",
                list(tags)
            ),
            Change::UpdateTrustPolicy { name } => {
                write!(f, "replace the trust policy of role `{name}`")
            }
            Change::PutPolicy { kind, name } => {
                write!(f, "put inline policy `{POLICY_NAME}` on {kind} `{name}`")
            }
            Change::CreateAccessKey { user } => write!(f, "create an access key for user `{user}`"),
            Change::DeleteAccessKey { user, key_id } => {
                write!(f, "delete access key {key_id} of user `{user}`")
            }
            Change::WriteConfig { path } => write!(f, "write {} (mode 0600)", path.display()),
        }
    }
}

/// Refuses to overwrite a configuration file that belongs to another queue: its secret would be
/// lost for good.
fn check_saved_queue(desired: &Desired, observed: &Observed) -> Result<(), ProvisionError> {
    let (Some(out), Some(saved)) = (&desired.out, &observed.saved) else {
        return Ok(());
    };
    let theirs = saved
        .config
        .queue_url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    if theirs == desired.names.queue.as_str() {
        return Ok(());
    }
    Err(ProvisionError::Usage(format!(
        "{} holds the configuration of queue `{}`, not `{}`: choose another --out, or remove the file",
        out.path.display(),
        theirs.escape_debug(),
        desired.names.queue
    )))
}

fn queue(
    plan: &mut Plan,
    names: &Names,
    name: &QueueName,
    observed: Option<&QueueState>,
    attributes: BTreeMap<String, String>,
) -> Result<(), ProvisionError> {
    let Some(state) = observed else {
        plan.changes.push(Change::CreateQueue {
            name: name.as_str().to_owned(),
            attributes,
            tags: names.tags(),
        });
        return Ok(());
    };
    if !state.managed {
        return Err(ProvisionError::NotManaged {
            resource: format!("queue `{name}`"),
            tags: names.tags_text(),
        });
    }
    let differing: BTreeMap<_, _> = attributes
        .into_iter()
        // A queue's type cannot change, and its name already says it.
        .filter(|(key, _)| key != "FifoQueue")
        .filter(|(key, value)| !same_attribute(key, state.attributes.get(key), value))
        .collect();
    if differing.is_empty() {
        plan.kept.push(format!("queue `{name}` ({})", state.url));
    } else {
        plan.changes.push(Change::SetQueueAttributes {
            name: name.as_str().to_owned(),
            attributes: differing,
        });
    }
    Ok(())
}

/// Compares an attribute as SQS means it: the redrive policy as JSON whose count may be a
/// string or a number, everything else as text.
fn same_attribute(key: &str, actual: Option<&String>, wanted: &str) -> bool {
    let Some(actual) = actual else {
        return false;
    };
    if key == QUEUE_POLICY {
        let parse = |text: &str| serde_json::from_str::<Value>(text).ok();
        return parse(actual).is_some() && parse(actual) == parse(wanted);
    }
    if key != "RedrivePolicy" {
        return actual == wanted;
    }
    let normalise = |text: &str| {
        let value: Value = serde_json::from_str(text).ok()?;
        let target = value.get("deadLetterTargetArn")?.as_str()?.to_owned();
        let count = match value.get("maxReceiveCount")? {
            Value::Number(n) => n.as_u64()?,
            Value::String(s) => s.parse().ok()?,
            _ => return None,
        };
        Some((target, count))
    };
    normalise(actual).is_some() && normalise(actual) == normalise(wanted)
}

/// The SQS queues other than `queue` that a policy document names as a resource.
fn other_queues(policy: Option<&Value>, queue: &QueueArn) -> Vec<String> {
    let queue = queue.to_string();
    let statements = policy
        .and_then(|p| p.get("Statement"))
        .map(|s| match s {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        })
        .unwrap_or_default();
    let mut others: Vec<String> = statements
        .iter()
        .filter_map(|s| s.get("Resource"))
        .flat_map(|r| match r {
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            single => single.as_str().into_iter().collect::<Vec<_>>(),
        })
        .filter(|r| r.starts_with("arn:") && r.contains(":sqs:") && *r != queue)
        .map(str::to_owned)
        .collect();
    others.dedup();
    others
}

fn warn_about_extras(plan: &mut Plan, kind: PrincipalKind, name: &str, p: &PrincipalState) {
    let others: Vec<_> = p
        .inline_policies
        .iter()
        .filter(|n| *n != POLICY_NAME)
        .cloned()
        .collect();
    for (what, items) in [
        ("inline policies", &others),
        ("attached policies", &p.attached),
        ("groups", &p.groups),
    ] {
        if !items.is_empty() {
            plan.warnings.push(format!(
                "{kind} `{name}` also has {what} {}: it is not least privilege and verify will fail until they are removed",
                items.join(", ")
            ));
        }
    }
}

/// The access-key steps of user mode.
fn keys(
    plan: &mut Plan,
    desired: &Desired,
    observed: &Observed,
    rotate: bool,
) -> Result<(), ProvisionError> {
    let user = desired.names.principal.as_str();
    let saved_key = observed.saved.as_ref().and_then(|s| {
        let id = s.config.access_key.as_ref()?;
        let secret = s.config.access_secret.as_ref()?;
        observed
            .keys
            .iter()
            .any(|k| &k.id == id)
            .then(|| (id.clone(), secret.clone()))
    });
    match (saved_key, rotate) {
        (Some((id, secret)), false) => {
            plan.kept.push(format!("access key {id} of user `{user}`"));
            let config = observed.queue.as_ref().map(|q| ForwarderConfig {
                access_key: Some(id),
                access_secret: Some(secret),
                ..base_config(desired, &q.url)
            });
            write_config(plan, desired, observed, config);
        }
        (saved, true) => {
            // IAM allows two keys per user: make room for the new one first, keeping the one
            // the file holds (if any) so that the forwarder keeps working until the switch.
            let mut old: Vec<_> = observed.keys.clone();
            old.sort_by_key(|k| k.created);
            let kept_id = saved.map(|(id, _)| id);
            let mut room = Vec::new();
            while old.len() - room.len() >= 2 {
                let Some(victim) = old
                    .iter()
                    .find(|k| Some(&k.id) != kept_id.as_ref() && !room.contains(&k.id))
                else {
                    break;
                };
                room.push(victim.id.clone());
            }
            for key_id in &room {
                plan.changes.push(Change::DeleteAccessKey {
                    user: user.to_owned(),
                    key_id: key_id.clone(),
                });
            }
            plan.changes.push(Change::CreateAccessKey {
                user: user.to_owned(),
            });
            write_config(plan, desired, observed, None);
            for key in old.iter().filter(|k| !room.contains(&k.id)) {
                plan.changes.push(Change::DeleteAccessKey {
                    user: user.to_owned(),
                    key_id: key.id.clone(),
                });
            }
        }
        (None, false) if observed.keys.is_empty() => {
            plan.changes.push(Change::CreateAccessKey {
                user: user.to_owned(),
            });
            write_config(plan, desired, observed, None);
        }
        (None, false) => {
            return Err(ProvisionError::KeyNotRecoverable {
                user: user.to_owned(),
                keys: observed.keys.iter().map(|k| k.id.clone()).collect(),
                out: desired.out.as_ref().map(|o| o.path.clone()),
            });
        }
    }
    Ok(())
}

/// Adds a write of the configuration file unless it already holds exactly `config`; `None`
/// means a value is not known before apply runs (a new key, queue or role), so it is written.
fn write_config(
    plan: &mut Plan,
    desired: &Desired,
    observed: &Observed,
    config: Option<ForwarderConfig>,
) {
    let Some(out) = &desired.out else {
        return;
    };
    let unchanged = match (config, &observed.saved) {
        (Some(config), Some(saved)) => config.render(out.format) == saved.text,
        _ => false,
    };
    if unchanged {
        plan.kept
            .push(format!("configuration file {}", out.path.display()));
    } else {
        plan.changes.push(Change::WriteConfig {
            path: out.path.clone(),
        });
    }
}

fn list(attributes: &BTreeMap<String, String>) -> String {
    attributes
        .iter()
        .map(|(k, v)| match k == QUEUE_POLICY {
            // The document itself is printed with the plan.
            true => format!("{k}=(the queue policy)"),
            false => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use aws_access::secret::Secret;

    use super::*;

    fn secret() -> Secret {
        Secret::new("s3cr3t")
    }

    fn desired(fifo: bool, dlq: bool, access: Access, out: bool) -> Desired {
        let region = Region::new("eu-west-1").expect("region");
        let account = AccountId::new("123456789012").expect("account");
        let names = Names::new("events", fifo, dlq, None).expect("names");
        let queue_arn = QueueArn::new(&region, &account, &names.queue);
        let dlq_arn = names
            .dlq
            .as_ref()
            .map(|d| QueueArn::new(&region, &account, d));
        Desired {
            policy: policy::send_policy(&queue_arn),
            region,
            account,
            names,
            queue_arn,
            dlq_arn,
            access,
            endpoint: None,
            out: out.then(|| OutFile {
                path: PathBuf::from("out.json"),
                format: Format::Json,
            }),
        }
    }

    fn user(rotate_key: bool) -> Access {
        Access::User { rotate_key }
    }

    fn role() -> Access {
        let trusted = AccountId::new("210987654321").expect("account");
        let external_id = ExternalId::new("ext-1").expect("external id");
        Access::Role {
            trust: policy::trust_policy("aws", &trusted, &external_id),
            external_id,
        }
    }

    /// What apply leaves behind, for `desired`, with the given keys and saved key id.
    fn in_place(desired: &Desired, keys: &[&str], saved_key: Option<&str>) -> Observed {
        let queue = |name: &QueueName, attributes| QueueState {
            url: format!("https://sqs.eu-west-1.amazonaws.com/123456789012/{name}"),
            managed: true,
            attributes,
        };
        let queue_state = queue(
            &desired.names.queue,
            queue_attributes(
                desired.names.queue.is_fifo(),
                &desired.queue_arn,
                desired.dlq_arn.as_ref(),
            ),
        );
        let trust = match &desired.access {
            Access::Role { trust, .. } => Some(trust.to_value()),
            Access::User { .. } => None,
        };
        let principal = PrincipalState {
            arn: format!("arn:aws:iam::123456789012:user/{}", desired.names.principal),
            managed: true,
            inline_policies: vec![POLICY_NAME.to_owned()],
            policy: Some(desired.policy.to_value()),
            trust,
            ..PrincipalState::default()
        };
        let saved = saved_key.map(|id| {
            let config = match &desired.access {
                Access::User { .. } => ForwarderConfig {
                    access_key: Some(id.to_owned()),
                    access_secret: Some(secret()),
                    ..base_config(desired, &queue_state.url)
                },
                Access::Role { external_id, .. } => ForwarderConfig {
                    role_arn: Some(principal.arn.clone()),
                    external_id: Some(external_id.as_str().to_owned()),
                    ..base_config(desired, &queue_state.url)
                },
            };
            Saved {
                text: config.render(Format::Json),
                config,
            }
        });
        Observed {
            dlq: desired
                .names
                .dlq
                .as_ref()
                .zip(desired.dlq_arn.as_ref())
                .map(|(d, arn)| queue(d, queue_attributes(d.is_fifo(), arn, None))),
            queue: Some(queue_state),
            principal: Some(principal),
            keys: keys
                .iter()
                .enumerate()
                .map(|(n, id)| KeyState {
                    id: (*id).to_owned(),
                    created: Some(n as i64),
                })
                .collect(),
            saved,
        }
    }

    /// Plans and compares the changes, as displayed, with `expected`; an error's message must
    /// contain `expected`'s only line.
    fn check(desired: &Desired, observed: &Observed, expected: Result<&[&str], &str>) {
        let actual = compute(desired, observed);
        match (actual, expected) {
            (Ok(plan), Ok(expected)) => {
                let actual: Vec<String> = plan.changes.iter().map(ToString::to_string).collect();
                assert_eq!(actual, expected);
            }
            (Err(actual), Err(expected)) => {
                let actual = actual.to_string();
                assert!(actual.contains(expected), "`{actual}` lacks `{expected}`");
                assert!(!actual.contains("s3cr3t"), "{actual}");
            }
            (actual, expected) => panic!("got {actual:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn nothing_exists() {
        let d = desired(false, false, user(false), true);
        check(
            &d,
            &Observed::default(),
            Ok(&[
                "create queue `events` (MaximumMessageSize=1048576, Policy=(the queue policy), SqsManagedSseEnabled=true), tagged deployment=events, deployment-kind=standard, managed-by=sqs-cloudevents-provisioner",
                "create IAM user `events-forwarder`, tagged deployment=events, deployment-kind=standard, managed-by=sqs-cloudevents-provisioner",
                "put inline policy `sqs-send-only` on user `events-forwarder`",
                "create an access key for user `events-forwarder`",
                "write out.json (mode 0600)",
            ]),
        );
        let d = desired(true, true, user(false), false);
        check(
            &d,
            &Observed::default(),
            Ok(&[
                "create queue `events-dlq.fifo` (FifoQueue=true, MaximumMessageSize=1048576, Policy=(the queue policy), SqsManagedSseEnabled=true), tagged deployment=events, deployment-kind=fifo, managed-by=sqs-cloudevents-provisioner",
                "create queue `events.fifo` (FifoQueue=true, MaximumMessageSize=1048576, Policy=(the queue policy), RedrivePolicy={\"deadLetterTargetArn\":\"arn:aws:sqs:eu-west-1:123456789012:events-dlq.fifo\",\"maxReceiveCount\":5}, SqsManagedSseEnabled=true), tagged deployment=events, deployment-kind=fifo, managed-by=sqs-cloudevents-provisioner",
                "create IAM user `events.fifo-forwarder`, tagged deployment=events, deployment-kind=fifo, managed-by=sqs-cloudevents-provisioner",
                "put inline policy `sqs-send-only` on user `events.fifo-forwarder`",
                "create an access key for user `events.fifo-forwarder`",
            ]),
        );
        let d = desired(false, false, role(), true);
        check(
            &d,
            &Observed::default(),
            Ok(&[
                "create queue `events` (MaximumMessageSize=1048576, Policy=(the queue policy), SqsManagedSseEnabled=true), tagged deployment=events, deployment-kind=standard, managed-by=sqs-cloudevents-provisioner",
                "create IAM role `events-forwarder` with the trust policy, tagged deployment=events, deployment-kind=standard, managed-by=sqs-cloudevents-provisioner",
                "put inline policy `sqs-send-only` on role `events-forwarder`",
                "write out.json (mode 0600)",
            ]),
        );
    }

    #[test]
    fn everything_in_place_means_no_changes() {
        for d in [
            desired(false, false, user(false), true),
            desired(true, true, user(false), true),
            desired(false, true, role(), true),
        ] {
            let observed = in_place(&d, &["AKIA1"], Some("AKIA1"));
            check(&d, &observed, Ok(&[]));
            assert!(!compute(&d, &observed).expect("plan").kept.is_empty());
        }
        // A redrive policy whose count SQS returns as a string is the same policy.
        let d = desired(false, true, user(false), true);
        let mut observed = in_place(&d, &["AKIA1"], Some("AKIA1"));
        let dlq = d.dlq_arn.as_ref().expect("dlq").to_string();
        observed.queue.as_mut().expect("queue").attributes.insert(
            "RedrivePolicy".into(),
            format!(r#"{{"maxReceiveCount":"5","deadLetterTargetArn":"{dlq}"}}"#),
        );
        check(&d, &observed, Ok(&[]));
    }

    #[test]
    fn a_principal_whose_policy_names_another_queue_is_refused() {
        for access in [user(false), role()] {
            let d = desired(false, false, access, true);
            let mut observed = in_place(&d, &["AKIA1"], Some("AKIA1"));
            let other = "arn:aws:sqs:eu-west-1:123456789012:payments";
            let principal = observed.principal.as_mut().expect("principal");
            principal.policy = Some(serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{"Sid": "SendOnly", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": other}]
            }));
            let error = compute(&d, &observed).expect_err("refused").to_string();
            assert!(error.contains("events-forwarder"), "{error}");
            assert!(error.contains(other), "{error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }

    #[test]
    fn drift_is_repaired() {
        let d = desired(false, false, user(false), true);
        let mut observed = in_place(&d, &["AKIA1"], Some("AKIA1"));
        let queue = observed.queue.as_mut().expect("queue");
        queue
            .attributes
            .insert("MaximumMessageSize".into(), "262144".into());
        queue.attributes.remove("SqsManagedSseEnabled");
        let principal = observed.principal.as_mut().expect("user");
        principal.policy = Some(serde_json::json!({"Version": "2012-10-17", "Statement": []}));
        principal.attached = vec!["arn:aws:iam::aws:policy/AdministratorAccess".into()];
        check(
            &d,
            &observed,
            Ok(&[
                "set attributes of queue `events`: MaximumMessageSize=1048576, SqsManagedSseEnabled=true",
                "put inline policy `sqs-send-only` on user `events-forwarder`",
            ]),
        );
        let warnings = compute(&d, &observed).expect("plan").warnings;
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("AdministratorAccess"), "{warnings:?}");

        // A changed file (here: another format) is rewritten, with the same key.
        let mut observed = in_place(&d, &["AKIA1"], Some("AKIA1"));
        let saved = observed.saved.as_mut().expect("saved");
        saved.text = saved.config.render(Format::Env);
        check(&d, &observed, Ok(&["write out.json (mode 0600)"]));

        // A role trusting another account gets the new trust policy.
        let d = desired(false, false, role(), true);
        let mut observed = in_place(&d, &[], Some("unused"));
        observed.principal.as_mut().expect("role").trust = Some(serde_json::json!({}));
        check(
            &d,
            &observed,
            Ok(&["replace the trust policy of role `events-forwarder`"]),
        );
    }

    #[test]
    fn keys() {
        let d = desired(false, false, user(false), true);
        // No key yet: create one.
        check(
            &d,
            &in_place(&d, &[], None),
            Ok(&[
                "create an access key for user `events-forwarder`",
                "write out.json (mode 0600)",
            ]),
        );
        // The file holds a key that was deleted, and no other exists: create one.
        check(
            &d,
            &in_place(&d, &[], Some("AKIAGONE")),
            Ok(&[
                "create an access key for user `events-forwarder`",
                "write out.json (mode 0600)",
            ]),
        );
        // Keys exist but the file holds none of them: refuse and suggest --rotate-key.
        check(
            &d,
            &in_place(&d, &["AKIA1"], Some("AKIAGONE")),
            Err("already has access key(s) AKIA1"),
        );
        check(
            &d,
            &in_place(&d, &["AKIA1"], None),
            Err("pass --rotate-key"),
        );
        // Rotation: create, write, then delete the old key(s).
        let d = desired(false, false, user(true), true);
        check(
            &d,
            &in_place(&d, &["AKIA1"], Some("AKIA1")),
            Ok(&[
                "create an access key for user `events-forwarder`",
                "write out.json (mode 0600)",
                "delete access key AKIA1 of user `events-forwarder`",
            ]),
        );
        // Two keys: make room first by deleting the one the file does not hold.
        check(
            &d,
            &in_place(&d, &["AKIA1", "AKIA2"], Some("AKIA2")),
            Ok(&[
                "delete access key AKIA1 of user `events-forwarder`",
                "create an access key for user `events-forwarder`",
                "write out.json (mode 0600)",
                "delete access key AKIA2 of user `events-forwarder`",
            ]),
        );
        // Two keys, neither recoverable: delete the older first.
        check(
            &d,
            &in_place(&d, &["AKIA1", "AKIA2"], None),
            Ok(&[
                "delete access key AKIA1 of user `events-forwarder`",
                "create an access key for user `events-forwarder`",
                "write out.json (mode 0600)",
                "delete access key AKIA2 of user `events-forwarder`",
            ]),
        );
    }

    #[test]
    fn resources_of_others_are_not_taken_over() {
        let d = desired(false, false, user(false), true);
        let mut observed = in_place(&d, &["AKIA1"], Some("AKIA1"));
        observed.queue.as_mut().expect("queue").managed = false;
        check(
            &d,
            &observed,
            Err("queue `events` exists but was not created by this tool"),
        );
        let mut observed = in_place(&d, &["AKIA1"], Some("AKIA1"));
        observed.principal.as_mut().expect("user").managed = false;
        check(
            &d,
            &observed,
            Err("user `events-forwarder` exists but was not created by this tool"),
        );
    }

    #[test]
    fn another_queue_s_file_is_not_overwritten() {
        let d = desired(false, false, user(false), true);
        let mut observed = in_place(&d, &[], Some("AKIAOTHER"));
        let saved = observed.saved.as_mut().expect("saved");
        saved.config.queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/other".into();
        check(
            &d,
            &observed,
            Err("out.json holds the configuration of queue `other`, not `events`"),
        );
    }

    #[test]
    fn external_ids() {
        let given = ExternalId::new("given").expect("id");
        let trusted = AccountId::new("210987654321").expect("account");
        let existing =
            policy::trust_policy("aws", &trusted, &ExternalId::new("existing").expect("id"))
                .to_value();
        let saved = ForwarderConfig {
            external_id: Some("saved".into()),
            ..ForwarderConfig {
                queue_url: "q".into(),
                region: "r".into(),
                access_key: None,
                access_secret: None,
                role_arn: Some("arn".into()),
                external_id: None,
                endpoint: None,
            }
        };
        let fresh = || ExternalId::new("fresh").expect("id");
        let resolve = |given: Option<&ExternalId>, existing, saved| {
            resolve_external_id(given.cloned(), existing, saved, fresh)
                .as_str()
                .to_owned()
        };
        assert_eq!(
            resolve(Some(&given), Some(&existing), Some(&saved)),
            "given"
        );
        assert_eq!(resolve(None, Some(&existing), Some(&saved)), "existing");
        assert_eq!(resolve(None, None, Some(&saved)), "saved");
        assert_eq!(resolve(None, None, None), "fresh");
    }
}
