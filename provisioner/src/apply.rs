//! `apply`: observe, plan, then carry the plan out in order, and return the forwarder's
//! configuration. A second run finds everything in place and changes nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use aws_access::connection::{ForwarderConfig, write_private};

use crate::aws::NewAccessKey;
use crate::names::{POLICY_NAME, Principal, PrincipalKind};
use crate::plan::{self, Access, Change, Desired, Observed};
use crate::{Clients, ProvisionError, Spec, observe};

/// What apply did and what the forwarder needs.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The forwarder's configuration; in user mode it holds the secret (which formats as
    /// `[redacted]`).
    pub config: ForwarderConfig,
    /// What was changed, in order; empty when everything was already in place.
    pub changes: Vec<Change>,
    /// What was found in place and kept.
    pub kept: Vec<String>,
    /// What a person should look at (extra policies on the principal, a file others can read).
    pub warnings: Vec<String>,
    /// The resources, by name and ARN.
    pub resources: Resources,
    /// The configuration file, when one was asked for.
    pub out: Option<PathBuf>,
}

/// The provisioned resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    /// The account, from STS.
    pub account: String,
    /// The queue's name.
    pub queue_name: String,
    /// The queue's URL.
    pub queue_url: String,
    /// The queue's ARN.
    pub queue_arn: String,
    /// The dead-letter queue's name, URL and ARN.
    pub dlq: Option<(String, String, String)>,
    /// User or role.
    pub principal_kind: PrincipalKind,
    /// The user's or role's name.
    pub principal_name: String,
    /// Its ARN.
    pub principal_arn: String,
    /// The inline policy's name.
    pub policy_name: String,
}

impl Outcome {
    /// Whether apply found everything in place.
    pub fn is_unchanged(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Creates, or finds and keeps: the DLQ, the queue, the user (or role), its policy, its access
/// key, and the configuration file.
pub async fn apply(clients: &Clients, spec: &Spec) -> Result<Outcome, ProvisionError> {
    let (desired, observed) = observe::prepare(clients, spec).await?;
    let plan = plan::compute(&desired, &observed)?;
    let mut run = Run::new(&desired, &observed);
    for change in &plan.changes {
        if let Err(error) = run.step(clients, change).await {
            return Err(match run.done.is_empty() {
                true => error,
                false => ProvisionError::Partial {
                    done: run.done.iter().map(ToString::to_string).collect(),
                    cause: Box::new(error),
                },
            });
        }
        tracing::info!(%change, "applied");
        run.done.push(change.clone());
    }
    let config = run.config()?;
    let mut warnings = plan.warnings;
    if let (Some(out), Some(_)) = (&desired.out, &config.access_secret)
        && let Ok((_, Some(warning))) = aws_access::connection::read(&out.path)
    {
        warnings.push(warning);
    }
    let resources = run.resources()?;
    Ok(Outcome {
        config,
        changes: run.done,
        kept: plan.kept,
        warnings,
        resources,
        out: desired.out.as_ref().map(|o| o.path.clone()),
    })
}

/// The state of an apply in progress.
struct Run<'a> {
    desired: &'a Desired,
    observed: &'a Observed,
    urls: BTreeMap<String, String>,
    principal_arn: Option<String>,
    new_key: Option<NewAccessKey>,
    done: Vec<Change>,
}

impl<'a> Run<'a> {
    fn new(desired: &'a Desired, observed: &'a Observed) -> Run<'a> {
        let mut urls = BTreeMap::new();
        if let Some(q) = &observed.queue {
            urls.insert(desired.names.queue.as_str().to_owned(), q.url.clone());
        }
        if let (Some(name), Some(q)) = (&desired.names.dlq, &observed.dlq) {
            urls.insert(name.as_str().to_owned(), q.url.clone());
        }
        Run {
            desired,
            observed,
            urls,
            principal_arn: observed.principal.as_ref().map(|p| p.arn.clone()),
            new_key: None,
            done: Vec::new(),
        }
    }

    async fn step(&mut self, clients: &Clients, change: &Change) -> Result<(), ProvisionError> {
        match change {
            Change::CreateQueue {
                name,
                attributes,
                tags,
            } => {
                let url = clients.sqs.create_queue(name, attributes, tags).await?;
                self.urls.insert(name.clone(), url);
            }
            Change::SetQueueAttributes { name, attributes } => {
                clients
                    .sqs
                    .set_queue_attributes(self.url(name)?, attributes)
                    .await?;
            }
            Change::CreateUser { name, tags } => {
                let p = Principal::new(PrincipalKind::User, name.as_str());
                self.principal_arn = Some(clients.iam.create(&p, None, tags).await?.arn);
            }
            Change::CreateRole { name, tags } => {
                let trust = self.trust()?.to_json();
                let p = Principal::new(PrincipalKind::Role, name.as_str());
                let created = clients.iam.create(&p, Some(&trust), tags).await?;
                self.principal_arn = Some(created.arn);
            }
            Change::UpdateTrustPolicy { name } => {
                clients
                    .iam
                    .update_assume_role_policy(name, &self.trust()?.to_json())
                    .await?;
            }
            Change::PutPolicy { kind, name } => {
                let document = self.desired.policy.to_json();
                let p = Principal::new(*kind, name.as_str());
                clients
                    .iam
                    .put_inline_policy(&p, POLICY_NAME, &document)
                    .await?;
            }
            Change::CreateAccessKey { user } => {
                let key = clients.iam.create_access_key(user).await?;
                tracing::info!(user, access_key_id = key.id, "created an access key");
                self.new_key = Some(key);
            }
            Change::DeleteAccessKey { user, key_id } => {
                clients.iam.delete_access_key(user, key_id).await?;
            }
            Change::WriteConfig { path } => {
                let format = self
                    .desired
                    .out
                    .as_ref()
                    .map(|o| o.format)
                    .unwrap_or_default();
                write_private(path, &self.config()?.render(format))?;
            }
        }
        Ok(())
    }

    fn url(&self, name: &str) -> Result<&str, ProvisionError> {
        self.urls
            .get(name)
            .map(String::as_str)
            .ok_or(ProvisionError::MissingField {
                operation: "GetQueueUrl",
                field: "QueueUrl",
            })
    }

    fn trust(&self) -> Result<&crate::policy::PolicyDocument, ProvisionError> {
        match &self.desired.access {
            Access::Role { trust, .. } => Ok(trust),
            Access::User { .. } => Err(ProvisionError::Usage("a user has no trust policy".into())),
        }
    }

    /// The configuration as it stands: the new key, else the kept one; or the role.
    fn config(&self) -> Result<ForwarderConfig, ProvisionError> {
        let base = plan::base_config(self.desired, self.url(self.desired.names.queue.as_str())?);
        match &self.desired.access {
            Access::User { .. } => {
                let (id, secret) = match (&self.new_key, &self.observed.saved) {
                    (Some(key), _) => (key.id.clone(), key.secret.clone()),
                    (None, Some(saved)) => {
                        match (&saved.config.access_key, &saved.config.access_secret) {
                            (Some(id), Some(secret)) => (id.clone(), secret.clone()),
                            _ => return Err(missing_key()),
                        }
                    }
                    (None, None) => return Err(missing_key()),
                };
                Ok(ForwarderConfig {
                    access_key: Some(id),
                    access_secret: Some(secret),
                    ..base
                })
            }
            Access::Role { external_id, .. } => {
                Ok(ForwarderConfig {
                    role_arn: Some(self.principal_arn.clone().ok_or(
                        ProvisionError::MissingField {
                            operation: "GetRole",
                            field: "Arn",
                        },
                    )?),
                    external_id: Some(external_id.as_str().to_owned()),
                    ..base
                })
            }
        }
    }

    fn resources(&self) -> Result<Resources, ProvisionError> {
        let desired = self.desired;
        let dlq = match (&desired.names.dlq, &desired.dlq_arn) {
            (Some(name), Some(arn)) => Some((
                name.to_string(),
                self.url(name.as_str())?.to_owned(),
                arn.to_string(),
            )),
            _ => None,
        };
        Ok(Resources {
            account: desired.account.to_string(),
            queue_name: desired.names.queue.to_string(),
            queue_url: self.url(desired.names.queue.as_str())?.to_owned(),
            queue_arn: desired.queue_arn.to_string(),
            dlq,
            principal_kind: match desired.access {
                Access::User { .. } => PrincipalKind::User,
                Access::Role { .. } => PrincipalKind::Role,
            },
            principal_name: desired.names.principal.to_string(),
            principal_arn: self
                .principal_arn
                .clone()
                .ok_or(ProvisionError::MissingField {
                    operation: "GetUser",
                    field: "Arn",
                })?,
            policy_name: POLICY_NAME.to_owned(),
        })
    }
}

fn missing_key() -> ProvisionError {
    ProvisionError::Usage("no access key is known for the user: run apply with --rotate-key".into())
}
