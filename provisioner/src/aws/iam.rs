//! IAM: users and roles (each operation written once for a [`Principal`] of either kind), their
//! inline and attached policies, tags, groups and access keys, and the policy simulator.
//!
//! The SDK has one operation per kind (`GetUser` and `GetRole`), each with its own error type.
//! Every wrapper here turns both into [`aws_sdk_iam::Error`], so that the retry, the "absent"
//! answer, the pagination and the error's wording are written once for both kinds.

use std::collections::BTreeMap;
use std::future::Future;

use aws_access::retry::{Backoff, retry};
use aws_access::secret::Secret;
use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::error::SdkError;
use aws_sdk_iam::types::Tag;

use super::error::{AwsError, AwsErrorKind, NO_SUCH_ENTITY, unless_absent};
use crate::names::{Principal, PrincipalKind};

/// An IAM client.
#[derive(Debug, Clone)]
pub struct Iam {
    client: aws_sdk_iam::Client,
    backoff: Backoff,
}

/// A user or role as IAM shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalRecord {
    /// Its ARN.
    pub arn: String,
    /// A role's trust policy as IAM returns it (URL-encoded); `None` for a user.
    pub trust_policy: Option<String>,
}

/// An access key's public part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyMetadata {
    /// The access key id.
    pub id: String,
    /// When it was created, in seconds since the epoch.
    pub created: Option<i64>,
}

/// A new access key: the only time IAM shows the secret.
#[derive(Debug, Clone)]
pub struct NewAccessKey {
    /// The access key id.
    pub id: String,
    /// The secret access key.
    pub secret: Secret,
}

/// One result of `SimulatePrincipalPolicy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The action.
    pub action: String,
    /// The resource, when the answer names it.
    pub resource: Option<String>,
    /// `allowed`, `implicitDeny` or `explicitDeny`.
    pub decision: String,
}

/// What calls on something just created also retry.
const SETTLING: &[&str] = &[NO_SUCH_ENTITY];

/// Any IAM call's failure, whatever its operation.
type IamResult<T> = Result<T, SdkError<aws_sdk_iam::Error, HttpResponse>>;

/// One page of a listing, and the marker of the next one.
struct Page<T> {
    items: Vec<T>,
    next: Option<String>,
}

/// Sends the user's or the role's variant of one operation (`$user` or `$role`, named for the
/// principal), with the same further builder calls, and maps its output with `$out`: both
/// variants have the same fields, so each operation is written once.
macro_rules! per_kind {
    ($p:expr, $c:expr, $user:ident / $role:ident $(. $m:ident($($a:expr),*))* => |$o:ident| $out:expr) => {
        match $p.kind {
            PrincipalKind::User => $c
                .$user()
                .user_name(&$p.name)
                $(.$m($($a),*))*
                .send()
                .await
                .map(|$o| $out)
                .map_err(any),
            PrincipalKind::Role => $c
                .$role()
                .role_name(&$p.name)
                $(.$m($($a),*))*
                .send()
                .await
                .map(|$o| $out)
                .map_err(any),
        }
    };
}

impl Iam {
    /// Wraps a client.
    pub fn new(client: aws_sdk_iam::Client, backoff: Backoff) -> Iam {
        Iam { client, backoff }
    }

    /// The user or role, or `None` when there is none of that name.
    pub async fn get(&self, p: &Principal) -> Result<Option<PrincipalRecord>, AwsError> {
        let c = &self.client;
        let name = p.name.as_str();
        let request = move || async move {
            match p.kind {
                PrincipalKind::User => c
                    .get_user()
                    .user_name(name)
                    .send()
                    .await
                    .map(|out| out.user.map(|u| record(u.arn, None)))
                    .map_err(any),
                PrincipalKind::Role => c
                    .get_role()
                    .role_name(name)
                    .send()
                    .await
                    .map(|out| {
                        out.role
                            .map(|r| record(r.arn, r.assume_role_policy_document))
                    })
                    .map_err(any),
            }
        };
        let operation = p.pick("GetUser", "GetRole");
        unless_absent(
            retry(&self.backoff, &[], request).await,
            is_absent,
            operation,
            || p.to_string(),
        )?
        .map(|found| {
            found.ok_or_else(|| AwsError::missing(operation, p.to_string(), p.pick("User", "Role")))
        })
        .transpose()
    }

    /// Creates a user, or a role with `trust_policy`, tagged with `tags`.
    pub async fn create(
        &self,
        p: &Principal,
        trust_policy: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<PrincipalRecord, AwsError> {
        let operation = p.pick("CreateUser", "CreateRole");
        let tags = tags
            .iter()
            .map(|(key, value)| Tag::builder().key(key).value(value).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AwsError {
                operation,
                target: p.to_string(),
                code: None,
                message: Some(e.to_string()),
                kind: AwsErrorKind::Other,
            })?;
        let c = &self.client;
        let name = p.name.as_str();
        let tags = &tags;
        let request = move || async move {
            match p.kind {
                PrincipalKind::User => c
                    .create_user()
                    .user_name(name)
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await
                    .map(|out| out.user.map(|u| record(u.arn, None)))
                    .map_err(any),
                PrincipalKind::Role => c
                    .create_role()
                    .role_name(name)
                    .set_assume_role_policy_document(trust_policy.map(str::to_owned))
                    .description(
                        "Lets a trusted account send to one SQS queue (sqs-cloudevents-provisioner)",
                    )
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await
                    .map(|out| {
                        out.role
                            .map(|r| record(r.arn, r.assume_role_policy_document))
                    })
                    .map_err(any),
            }
        };
        retry(&self.backoff, &[], request)
            .await
            .map_err(|e| AwsError::new(operation, p.to_string(), e))?
            .ok_or_else(|| AwsError::missing(operation, p.to_string(), p.pick("User", "Role")))
    }

    /// Deletes a user or role; `false` when it was already gone.
    pub async fn delete(&self, p: &Principal) -> Result<bool, AwsError> {
        let c = &self.client;
        let request = move || async move { per_kind!(p, c, delete_user / delete_role => |_o| ()) };
        let out = unless_absent(
            retry(&self.backoff, &[], request).await,
            is_absent,
            p.pick("DeleteUser", "DeleteRole"),
            || p.to_string(),
        )?;
        Ok(out.is_some())
    }

    /// The user's or role's tags.
    pub async fn tags(&self, p: &Principal) -> Result<BTreeMap<String, String>, AwsError> {
        let c = &self.client;
        let page = move |marker: Option<String>| async move {
            per_kind!(p, c, list_user_tags / list_role_tags .set_marker(marker) => |o| {
                page_of(o.tags.into_iter().map(|t| (t.key, t.value)), o.is_truncated, o.marker)
            })
        };
        let operation = p.pick("ListUserTags", "ListRoleTags");
        let tags = self.all(operation, &|| p.to_string(), &[], page).await?;
        Ok(tags.into_iter().collect())
    }

    /// The names of the user's or role's inline policies.
    pub async fn inline_policy_names(&self, p: &Principal) -> Result<Vec<String>, AwsError> {
        let c = &self.client;
        let page = move |marker: Option<String>| async move {
            per_kind!(p, c, list_user_policies / list_role_policies .set_marker(marker) => |o| {
                page_of(o.policy_names, o.is_truncated, o.marker)
            })
        };
        let operation = p.pick("ListUserPolicies", "ListRolePolicies");
        self.all(operation, &|| p.to_string(), &[], page).await
    }

    /// The ARNs of the managed policies attached to the user or role.
    pub async fn attached_policies(&self, p: &Principal) -> Result<Vec<String>, AwsError> {
        let c = &self.client;
        let page = move |marker: Option<String>| async move {
            per_kind!(p, c, list_attached_user_policies / list_attached_role_policies
                .set_marker(marker) => |o| {
                let arns = o.attached_policies.unwrap_or_default().into_iter().map(|a| {
                    a.policy_arn
                        .or(a.policy_name)
                        .unwrap_or_else(|| "(unnamed policy)".to_owned())
                });
                page_of(arns, o.is_truncated, o.marker)
            })
        };
        let operation = p.pick("ListAttachedUserPolicies", "ListAttachedRolePolicies");
        self.all(operation, &|| p.to_string(), &[], page).await
    }

    /// An inline policy's document as IAM returns it (URL-encoded), or `None` when absent.
    pub async fn inline_policy(
        &self,
        p: &Principal,
        policy: &str,
    ) -> Result<Option<String>, AwsError> {
        let c = &self.client;
        let request = move || async move {
            per_kind!(p, c, get_user_policy / get_role_policy .policy_name(policy) => |o| {
                o.policy_document
            })
        };
        unless_absent(
            retry(&self.backoff, &[], request).await,
            is_absent,
            p.pick("GetUserPolicy", "GetRolePolicy"),
            || policy_of(policy, p),
        )
    }

    /// Puts (creates or replaces) an inline policy on an existing user or role.
    pub async fn put_inline_policy(
        &self,
        p: &Principal,
        policy: &str,
        document: &str,
    ) -> Result<(), AwsError> {
        let c = &self.client;
        let request = move || async move {
            per_kind!(p, c, put_user_policy / put_role_policy
                .policy_name(policy).policy_document(document) => |_o| ())
        };
        retry(&self.backoff, SETTLING, request).await.map_err(|e| {
            AwsError::new(
                p.pick("PutUserPolicy", "PutRolePolicy"),
                policy_of(policy, p),
                e,
            )
        })
    }

    /// Deletes an inline policy; `false` when it was already gone.
    pub async fn delete_inline_policy(
        &self,
        p: &Principal,
        policy: &str,
    ) -> Result<bool, AwsError> {
        let c = &self.client;
        let request = move || async move {
            per_kind!(p, c, delete_user_policy / delete_role_policy .policy_name(policy) => |_o| ())
        };
        let out = unless_absent(
            retry(&self.backoff, &[], request).await,
            is_absent,
            p.pick("DeleteUserPolicy", "DeleteRolePolicy"),
            || policy_of(policy, p),
        )?;
        Ok(out.is_some())
    }

    /// Replaces the trust policy of an existing role.
    pub async fn update_assume_role_policy(
        &self,
        name: &str,
        trust_policy: &str,
    ) -> Result<(), AwsError> {
        let request = || {
            self.client
                .update_assume_role_policy()
                .role_name(name)
                .policy_document(trust_policy)
                .send()
        };
        retry(&self.backoff, SETTLING, request)
            .await
            .map_err(|e| AwsError::new("UpdateAssumeRolePolicy", role(name), e))?;
        Ok(())
    }

    /// The names of the groups the user belongs to.
    pub async fn list_groups_for_user(&self, name: &str) -> Result<Vec<String>, AwsError> {
        let c = &self.client;
        let page = move |marker: Option<String>| async move {
            let out = c
                .list_groups_for_user()
                .user_name(name)
                .set_marker(marker)
                .send()
                .await
                .map_err(any)?;
            let groups = out.groups.into_iter().map(|g| g.group_name);
            IamResult::Ok(page_of(groups, out.is_truncated, out.marker))
        };
        self.all("ListGroupsForUser", &|| user(name), &[], page)
            .await
    }

    /// The user's access keys (ids only), oldest first.
    pub async fn list_access_keys(&self, name: &str) -> Result<Vec<AccessKeyMetadata>, AwsError> {
        let c = &self.client;
        let page = move |marker: Option<String>| async move {
            let out = c
                .list_access_keys()
                .user_name(name)
                .set_marker(marker)
                .send()
                .await
                .map_err(any)?;
            let keys = out.access_key_metadata.into_iter().map(|k| {
                k.access_key_id.map(|id| AccessKeyMetadata {
                    id,
                    created: k.create_date.map(|d| d.secs()),
                })
            });
            IamResult::Ok(page_of(keys, out.is_truncated, out.marker))
        };
        let mut keys = self
            .all("ListAccessKeys", &|| user(name), &[], page)
            .await?
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| AwsError::missing("ListAccessKeys", user(name), "AccessKeyId"))?;
        keys.sort_by_key(|k| k.created);
        Ok(keys)
    }

    /// Creates an access key for an existing user.
    pub async fn create_access_key(&self, name: &str) -> Result<NewAccessKey, AwsError> {
        let out = retry(&self.backoff, SETTLING, || {
            self.client.create_access_key().user_name(name).send()
        })
        .await
        .map_err(|e| AwsError::new("CreateAccessKey", user(name), e))?;
        let key = out
            .access_key
            .ok_or_else(|| AwsError::missing("CreateAccessKey", user(name), "AccessKey"))?;
        Ok(NewAccessKey {
            id: key.access_key_id,
            secret: Secret::new(key.secret_access_key),
        })
    }

    /// Deletes an access key; `false` when it was already gone.
    pub async fn delete_access_key(&self, name: &str, key_id: &str) -> Result<bool, AwsError> {
        let request = || {
            self.client
                .delete_access_key()
                .user_name(name)
                .access_key_id(key_id)
                .send()
        };
        let out = unless_absent(
            retry(&self.backoff, &[], request).await,
            |e| e.is_no_such_entity_exception(),
            "DeleteAccessKey",
            || format!("access key {key_id} of {}", user(name)),
        )?;
        Ok(out.is_some())
    }

    /// Asks IAM what the principal's policies decide for `actions` on `resource`, with the
    /// resource's own policy (the queue policy) when it has one.
    pub async fn simulate_principal_policy(
        &self,
        principal_arn: &str,
        actions: &[&str],
        resource: &str,
        resource_policy: Option<&str>,
    ) -> Result<Vec<Decision>, AwsError> {
        let c = &self.client;
        let page = move |marker: Option<String>| async move {
            let out = c
                .simulate_principal_policy()
                .policy_source_arn(principal_arn)
                .set_action_names(Some(actions.iter().map(|a| (*a).to_owned()).collect()))
                .resource_arns(resource)
                .set_resource_policy(resource_policy.map(str::to_owned))
                .set_marker(marker)
                .send()
                .await
                .map_err(any)?;
            let decisions = out
                .evaluation_results
                .unwrap_or_default()
                .into_iter()
                .map(|r| Decision {
                    action: r.eval_action_name,
                    resource: r.eval_resource_name,
                    decision: r.eval_decision.as_str().to_owned(),
                });
            IamResult::Ok(page_of(decisions, out.is_truncated, out.marker))
        };
        let target = || format!("`{principal_arn}`");
        self.all("SimulatePrincipalPolicy", &target, SETTLING, page)
            .await
    }

    /// Every item of a listing, page after page, each page retried on its own.
    async fn all<T, F, Fut>(
        &self,
        operation: &'static str,
        target: &(dyn Fn() -> String + Sync),
        also: &[&str],
        mut page: F,
    ) -> Result<Vec<T>, AwsError>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = IamResult<Page<T>>>,
    {
        let mut items = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = retry(&self.backoff, also, || page(marker.clone()))
                .await
                .map_err(|e| AwsError::new(operation, target(), e))?;
            items.extend(out.items);
            marker = out.next;
            if marker.is_none() {
                return Ok(items);
            }
        }
    }
}

/// Any operation's error as IAM's one error type.
fn any<E: Into<aws_sdk_iam::Error>>(
    error: SdkError<E, HttpResponse>,
) -> SdkError<aws_sdk_iam::Error, HttpResponse> {
    error.map_service_error(Into::into)
}

fn is_absent(error: &aws_sdk_iam::Error) -> bool {
    matches!(error, aws_sdk_iam::Error::NoSuchEntityException(_))
}

fn page_of<T>(
    items: impl IntoIterator<Item = T>,
    truncated: bool,
    marker: Option<String>,
) -> Page<T> {
    Page {
        items: items.into_iter().collect(),
        next: if truncated { marker } else { None },
    }
}

fn record(arn: String, trust_policy: Option<String>) -> PrincipalRecord {
    PrincipalRecord { arn, trust_policy }
}

fn policy_of(policy: &str, p: &Principal) -> String {
    format!("policy `{policy}` of {p}")
}

fn user(name: &str) -> String {
    Principal::new(PrincipalKind::User, name).to_string()
}

fn role(name: &str) -> String {
    Principal::new(PrincipalKind::Role, name).to_string()
}
