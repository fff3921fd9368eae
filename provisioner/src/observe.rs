//! Reads what exists (queues, user or role, keys, the configuration file) and builds the
//! desired state, so that [`crate::plan::compute`] can compare the two.

use std::path::Path;

use aws_access::connection::{ConfigError, ForwarderConfig};

use crate::aws::AwsError;
use crate::names::{
    AccountId, ExternalId, Names, POLICY_NAME, Principal, PrincipalKind, QueueName, Region,
};
use crate::plan::{Access, Desired, KeyState, Observed, PrincipalState, QueueState, Saved};
use crate::policy::{self, QueueArn};
use crate::{Auth, Clients, ProvisionError, Spec};

/// The names, the account (from STS, never from a URL) and the ARNs derived from them.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub names: Names,
    pub region: Region,
    pub account: AccountId,
    pub queue_arn: QueueArn,
    pub dlq_arn: Option<QueueArn>,
}

/// Checks the spec, then asks STS who we are.
pub(crate) async fn identify(clients: &Clients, spec: &Spec) -> Result<Identity, ProvisionError> {
    spec.validate()?;
    let names = spec.names()?;
    let caller = clients.sts.get_caller_identity().await?;
    let account = AccountId::new(&caller.account)?;
    let region = clients.region.clone();
    let queue_arn = QueueArn::new(&region, &account, &names.queue);
    let dlq_arn = names
        .dlq
        .as_ref()
        .map(|d| QueueArn::new(&region, &account, d));
    Ok(Identity {
        names,
        region,
        account,
        queue_arn,
        dlq_arn,
    })
}

/// The desired state and the observed one, for apply and plan.
pub(crate) async fn prepare(
    clients: &Clients,
    spec: &Spec,
) -> Result<(Desired, Observed), ProvisionError> {
    let role = match &spec.auth {
        Auth::User => None,
        Auth::Role {
            trust_account: Some(account),
            external_id,
        } => Some((account, external_id)),
        Auth::Role {
            trust_account: None,
            ..
        } => {
            return Err(ProvisionError::Usage(
                "--auth role needs --trust-account ACCOUNT_ID (the 12-digit account that will assume the role)".into(),
            ));
        }
    };
    let id = identify(clients, spec).await?;
    let principal = id.names.principal.as_str();
    let mut observed = Observed {
        dlq: match &id.names.dlq {
            Some(dlq) => queue(clients, &id.names, dlq).await?,
            None => None,
        },
        queue: queue(clients, &id.names, &id.names.queue).await?,
        saved: match &spec.out {
            Some(out) => saved(&out.path)?,
            None => None,
        },
        ..Observed::default()
    };
    let access = match role {
        None => {
            observed.principal = self::principal(
                clients,
                &id.names,
                &Principal::new(PrincipalKind::User, principal),
            )
            .await?;
            if observed.principal.is_some() {
                observed.keys = clients
                    .iam
                    .list_access_keys(principal)
                    .await?
                    .into_iter()
                    .map(|k| KeyState {
                        id: k.id,
                        created: k.created,
                    })
                    .collect();
            }
            Access::User {
                rotate_key: spec.rotate_key,
            }
        }
        Some((account, external_id)) => {
            observed.principal = self::principal(
                clients,
                &id.names,
                &Principal::new(PrincipalKind::Role, principal),
            )
            .await?;
            let trusted = AccountId::new(account)?;
            let given = external_id.as_deref().map(ExternalId::new).transpose()?;
            let existing = observed.principal.as_ref().and_then(|p| p.trust.as_ref());
            let saved = observed.saved.as_ref().map(|s| &s.config);
            let external_id =
                crate::plan::resolve_external_id(given, existing, saved, ExternalId::generate);
            let trust = policy::trust_policy(id.region.partition(), &trusted, &external_id);
            Access::Role { trust, external_id }
        }
    };
    let desired = Desired {
        policy: policy::send_policy(&id.queue_arn),
        region: id.region,
        account: id.account,
        names: id.names,
        queue_arn: id.queue_arn,
        dlq_arn: id.dlq_arn,
        access,
        endpoint: clients.endpoint.clone(),
        out: spec.out.clone(),
    };
    Ok((desired, observed))
}

/// A queue's URL, attributes and whether it is ours.
pub(crate) async fn queue(
    clients: &Clients,
    names: &Names,
    name: &QueueName,
) -> Result<Option<QueueState>, ProvisionError> {
    let Some(url) = clients.sqs.get_queue_url(name.as_str()).await? else {
        return Ok(None);
    };
    // Deleted between the two calls: absent.
    let Some(attributes) = clients.sqs.get_queue_attributes(&url).await? else {
        return Ok(None);
    };
    let tags = clients.sqs.list_queue_tags(&url).await?;
    Ok(Some(QueueState {
        managed: names.owns(&tags),
        url,
        attributes,
    }))
}

/// A user or role: its policies, its groups (a user's), its trust policy (a role's) and whether
/// it is ours.
pub(crate) async fn principal(
    clients: &Clients,
    names: &Names,
    p: &Principal,
) -> Result<Option<PrincipalState>, ProvisionError> {
    let iam = &clients.iam;
    let Some(found) = iam.get(p).await? else {
        return Ok(None);
    };
    let inline_policies = iam.inline_policy_names(p).await?;
    let policy = match inline_policies.iter().any(|name| name == POLICY_NAME) {
        true => iam
            .inline_policy(p, POLICY_NAME)
            .await?
            .map(|d| decode(&d, p))
            .transpose()?,
        false => None,
    };
    let groups = match p.kind {
        PrincipalKind::User => iam.list_groups_for_user(&p.name).await?,
        PrincipalKind::Role => Vec::new(),
    };
    Ok(Some(PrincipalState {
        arn: found.arn,
        managed: names.owns(&iam.tags(p).await?),
        inline_policies,
        policy,
        attached: iam.attached_policies(p).await?,
        groups,
        trust: found
            .trust_policy
            .as_deref()
            .map(|d| decode(d, p))
            .transpose()?,
    }))
}

/// The configuration file, when it exists. One that exists but cannot be read is an error:
/// apply would otherwise replace a file it does not understand.
pub(crate) fn saved(path: &Path) -> Result<Option<Saved>, ProvisionError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Io {
                path: path.to_owned(),
                source,
            }
            .into());
        }
    };
    let config = ForwarderConfig::parse(&text, path)?;
    Ok(Some(Saved { config, text }))
}

fn decode(document: &str, principal: &Principal) -> Result<serde_json::Value, ProvisionError> {
    policy::decode_document(document).map_err(|message| {
        ProvisionError::Aws(AwsError {
            operation: "GetPolicy",
            target: format!("a policy of {principal}"),
            code: None,
            message: Some(message),
            kind: crate::aws::AwsErrorKind::Malformed,
        })
    })
}
