//! Thin wrappers over SQS, IAM and STS: one `async fn` per operation, nothing else.
//!
//! Every call goes through one bounded retry loop that asks [`aws_access::retry`] what is worth
//! another attempt. Calls made on something that was just created (putting a policy on a new
//! user, creating its key, simulating its policy) also retry IAM's `NoSuchEntity`, since IAM takes
//! a moment to make new entities visible; lookups and deletions do not, so that "absent" stays a
//! quick answer. Errors keep the service's code and message; "not found" becomes `None` or
//! `false` by matching the typed service error.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use aws_access::retry::{Backoff, retry};
use aws_access::secret::Secret;
use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::Tag;
use aws_sdk_sqs::types::QueueAttributeName;

use crate::names::MANAGED_BY;

/// An SQS client.
#[derive(Debug, Clone)]
pub struct Sqs {
    client: aws_sdk_sqs::Client,
    backoff: Backoff,
}

/// An IAM client.
#[derive(Debug, Clone)]
pub struct Iam {
    client: aws_sdk_iam::Client,
    backoff: Backoff,
}

/// An STS client. Its one call gives up sooner than the others (see [`Sts::get_caller_identity`]).
#[derive(Debug, Clone)]
pub struct Sts {
    client: aws_sdk_sts::Client,
}

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

/// An IAM user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
}

/// An IAM role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// Its trust policy as IAM returns it (URL-encoded).
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

/// Who the credentials belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    /// The account.
    pub account: String,
    /// The caller's ARN.
    pub arn: String,
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

/// IAM's error code for an entity that does not exist (yet).
const NO_SUCH_ENTITY: &str = "NoSuchEntity";
/// What calls on something just created also retry.
const SETTLING: &[&str] = &[NO_SUCH_ENTITY];
/// The first call decides whether AWS can be reached at all: it gives up sooner.
const PREFLIGHT: Backoff = Backoff {
    base: Duration::from_millis(200),
    max_delay: Duration::from_secs(1),
    max_attempts: 3,
    max_elapsed: Duration::from_secs(10),
};

impl Sqs {
    /// Wraps a client.
    pub fn new(client: aws_sdk_sqs::Client, backoff: Backoff) -> Sqs {
        Sqs { client, backoff }
    }

    /// The queue's URL, or `None` when there is no such queue.
    pub async fn get_queue_url(&self, name: &str) -> Result<Option<String>, AwsError> {
        let target = || format!("queue `{name}`");
        match retry(&self.backoff, &[], || {
            self.client.get_queue_url().queue_name(name).send()
        })
        .await
        {
            Ok(out) => out
                .queue_url
                .map(Some)
                .ok_or_else(|| AwsError::missing("GetQueueUrl", target(), "QueueUrl")),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_queue_does_not_exist()) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsError::new("GetQueueUrl", target(), e)),
        }
    }

    /// Creates a queue with `attributes`, tagged as managed; returns its URL.
    pub async fn create_queue(
        &self,
        name: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<String, AwsError> {
        let target = || format!("queue `{name}`");
        let out = retry(&self.backoff, &[], || {
            let mut request = self
                .client
                .create_queue()
                .queue_name(name)
                .tags(MANAGED_BY.0, MANAGED_BY.1);
            for (key, value) in attributes {
                request = request.attributes(QueueAttributeName::from(key.as_str()), value);
            }
            request.send()
        })
        .await
        .map_err(|e| AwsError::new("CreateQueue", target(), e))?;
        out.queue_url
            .ok_or_else(|| AwsError::missing("CreateQueue", target(), "QueueUrl"))
    }

    /// All attributes of a queue, or `None` when it is gone.
    pub async fn get_queue_attributes(
        &self,
        url: &str,
    ) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        let request = || {
            self.client
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::All)
                .send()
        };
        match retry(&self.backoff, &[], request).await {
            Ok(out) => Ok(Some(
                out.attributes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v))
                    .collect(),
            )),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_queue_does_not_exist()) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsError::new(
                "GetQueueAttributes",
                format!("queue {url}"),
                e,
            )),
        }
    }

    /// Sets attributes of a queue.
    pub async fn set_queue_attributes(
        &self,
        url: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        retry(&self.backoff, &[], || {
            let mut request = self.client.set_queue_attributes().queue_url(url);
            for (key, value) in attributes {
                request = request.attributes(QueueAttributeName::from(key.as_str()), value);
            }
            request.send()
        })
        .await
        .map_err(|e| AwsError::new("SetQueueAttributes", format!("queue {url}"), e))?;
        Ok(())
    }

    /// The queue's tags.
    pub async fn list_queue_tags(&self, url: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let out = retry(&self.backoff, &[], || {
            self.client.list_queue_tags().queue_url(url).send()
        })
        .await
        .map_err(|e| AwsError::new("ListQueueTags", format!("queue {url}"), e))?;
        Ok(out.tags.unwrap_or_default().into_iter().collect())
    }

    /// Deletes a queue; `false` when it was already gone.
    pub async fn delete_queue(&self, url: &str) -> Result<bool, AwsError> {
        match retry(&self.backoff, &[], || {
            self.client.delete_queue().queue_url(url).send()
        })
        .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_queue_does_not_exist()) =>
            {
                Ok(false)
            }
            Err(e) => Err(AwsError::new("DeleteQueue", format!("queue {url}"), e)),
        }
    }
}

impl Iam {
    /// Wraps a client.
    pub fn new(client: aws_sdk_iam::Client, backoff: Backoff) -> Iam {
        Iam { client, backoff }
    }

    /// The user, or `None` when there is none of that name.
    pub async fn get_user(&self, name: &str) -> Result<Option<User>, AwsError> {
        match retry(&self.backoff, &[], || {
            self.client.get_user().user_name(name).send()
        })
        .await
        {
            Ok(out) => {
                let user = out
                    .user
                    .ok_or_else(|| AwsError::missing("GetUser", user(name), "User"))?;
                Ok(Some(User {
                    name: user.user_name,
                    arn: user.arn,
                }))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsError::new("GetUser", user(name), e)),
        }
    }

    /// Creates a user, tagged as managed.
    pub async fn create_user(&self, name: &str) -> Result<User, AwsError> {
        let tag = managed_tag()?;
        let out = retry(&self.backoff, &[], || {
            self.client
                .create_user()
                .user_name(name)
                .tags(tag.clone())
                .send()
        })
        .await
        .map_err(|e| AwsError::new("CreateUser", user(name), e))?;
        let created = out
            .user
            .ok_or_else(|| AwsError::missing("CreateUser", user(name), "User"))?;
        Ok(User {
            name: created.user_name,
            arn: created.arn,
        })
    }

    /// The user's tags.
    pub async fn list_user_tags(&self, name: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let mut tags = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            let request = || {
                self.client
                    .list_user_tags()
                    .user_name(name)
                    .set_marker(marker.clone())
                    .send()
            };
            let out = retry(&self.backoff, &[], request)
                .await
                .map_err(|e| AwsError::new("ListUserTags", user(name), e))?;
            tags.extend(out.tags.into_iter().map(|t| (t.key, t.value)));
            marker = next(out.is_truncated, out.marker);
            if marker.is_none() {
                return Ok(tags);
            }
        }
    }

    /// The names of the user's inline policies.
    pub async fn list_user_policies(&self, name: &str) -> Result<Vec<String>, AwsError> {
        let mut names = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let request = || {
                self.client
                    .list_user_policies()
                    .user_name(name)
                    .set_marker(marker.clone())
                    .send()
            };
            let out = retry(&self.backoff, &[], request)
                .await
                .map_err(|e| AwsError::new("ListUserPolicies", user(name), e))?;
            names.extend(out.policy_names);
            marker = next(out.is_truncated, out.marker);
            if marker.is_none() {
                return Ok(names);
            }
        }
    }

    /// An inline policy's document as IAM returns it (URL-encoded), or `None` when absent.
    pub async fn get_user_policy(
        &self,
        name: &str,
        policy: &str,
    ) -> Result<Option<String>, AwsError> {
        let request = || {
            self.client
                .get_user_policy()
                .user_name(name)
                .policy_name(policy)
                .send()
        };
        let out = unless_absent(
            retry(&self.backoff, &[], request).await,
            |e| e.is_no_such_entity_exception(),
            "GetUserPolicy",
            || format!("policy `{policy}` of {}", user(name)),
        )?;
        Ok(out.map(|out| out.policy_document))
    }

    /// Puts (creates or replaces) an inline policy on an existing user.
    pub async fn put_user_policy(
        &self,
        name: &str,
        policy: &str,
        document: &str,
    ) -> Result<(), AwsError> {
        let request = || {
            self.client
                .put_user_policy()
                .user_name(name)
                .policy_name(policy)
                .policy_document(document)
                .send()
        };
        retry(&self.backoff, SETTLING, request).await.map_err(|e| {
            AwsError::new(
                "PutUserPolicy",
                format!("policy `{policy}` of {}", user(name)),
                e,
            )
        })?;
        Ok(())
    }

    /// Deletes an inline policy; `false` when it was already gone.
    pub async fn delete_user_policy(&self, name: &str, policy: &str) -> Result<bool, AwsError> {
        let request = || {
            self.client
                .delete_user_policy()
                .user_name(name)
                .policy_name(policy)
                .send()
        };
        let out = unless_absent(
            retry(&self.backoff, &[], request).await,
            |e| e.is_no_such_entity_exception(),
            "DeleteUserPolicy",
            || format!("policy `{policy}` of {}", user(name)),
        )?;
        Ok(out.is_some())
    }

    /// The ARNs of the managed policies attached to the user.
    pub async fn list_attached_user_policies(&self, name: &str) -> Result<Vec<String>, AwsError> {
        let mut arns = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let request = || {
                self.client
                    .list_attached_user_policies()
                    .user_name(name)
                    .set_marker(marker.clone())
                    .send()
            };
            let out = retry(&self.backoff, &[], request)
                .await
                .map_err(|e| AwsError::new("ListAttachedUserPolicies", user(name), e))?;
            arns.extend(
                out.attached_policies
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| {
                        p.policy_arn
                            .or(p.policy_name)
                            .unwrap_or_else(|| "(unnamed policy)".to_owned())
                    }),
            );
            marker = next(out.is_truncated, out.marker);
            if marker.is_none() {
                return Ok(arns);
            }
        }
    }

    /// The names of the groups the user belongs to.
    pub async fn list_groups_for_user(&self, name: &str) -> Result<Vec<String>, AwsError> {
        let mut groups = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let request = || {
                self.client
                    .list_groups_for_user()
                    .user_name(name)
                    .set_marker(marker.clone())
                    .send()
            };
            let out = retry(&self.backoff, &[], request)
                .await
                .map_err(|e| AwsError::new("ListGroupsForUser", user(name), e))?;
            groups.extend(out.groups.into_iter().map(|g| g.group_name));
            marker = next(out.is_truncated, out.marker);
            if marker.is_none() {
                return Ok(groups);
            }
        }
    }

    /// The user's access keys (ids only), oldest first.
    pub async fn list_access_keys(&self, name: &str) -> Result<Vec<AccessKeyMetadata>, AwsError> {
        let mut keys = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let request = || {
                self.client
                    .list_access_keys()
                    .user_name(name)
                    .set_marker(marker.clone())
                    .send()
            };
            let out = retry(&self.backoff, &[], request)
                .await
                .map_err(|e| AwsError::new("ListAccessKeys", user(name), e))?;
            for key in out.access_key_metadata {
                let id = key.access_key_id.ok_or_else(|| {
                    AwsError::missing("ListAccessKeys", user(name), "AccessKeyId")
                })?;
                keys.push(AccessKeyMetadata {
                    id,
                    created: key.create_date.map(|d| d.secs()),
                });
            }
            marker = next(out.is_truncated, out.marker);
            if marker.is_none() {
                keys.sort_by_key(|k| k.created);
                return Ok(keys);
            }
        }
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

    /// Deletes a user; `false` when it was already gone.
    pub async fn delete_user(&self, name: &str) -> Result<bool, AwsError> {
        match retry(&self.backoff, &[], || {
            self.client.delete_user().user_name(name).send()
        })
        .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(AwsError::new("DeleteUser", user(name), e)),
        }
    }

    /// The role, or `None` when there is none of that name.
    pub async fn get_role(&self, name: &str) -> Result<Option<Role>, AwsError> {
        match retry(&self.backoff, &[], || {
            self.client.get_role().role_name(name).send()
        })
        .await
        {
            Ok(out) => {
                let found = out
                    .role
                    .ok_or_else(|| AwsError::missing("GetRole", role(name), "Role"))?;
                Ok(Some(Role {
                    name: found.role_name,
                    arn: found.arn,
                    trust_policy: found.assume_role_policy_document,
                }))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(AwsError::new("GetRole", role(name), e)),
        }
    }

    /// Creates a role with a trust policy, tagged as managed.
    pub async fn create_role(&self, name: &str, trust_policy: &str) -> Result<Role, AwsError> {
        let tag = managed_tag()?;
        let request = || {
            self.client
                .create_role()
                .role_name(name)
                .assume_role_policy_document(trust_policy)
                .description(
                    "Lets a trusted account send to one SQS queue (sqs-cloudevents-provisioner)",
                )
                .tags(tag.clone())
                .send()
        };
        let out = retry(&self.backoff, &[], request)
            .await
            .map_err(|e| AwsError::new("CreateRole", role(name), e))?;
        let created = out
            .role
            .ok_or_else(|| AwsError::missing("CreateRole", role(name), "Role"))?;
        Ok(Role {
            name: created.role_name,
            arn: created.arn,
            trust_policy: created.assume_role_policy_document,
        })
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

    /// The role's tags.
    pub async fn list_role_tags(&self, name: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let mut tags = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            let request = || {
                self.client
                    .list_role_tags()
                    .role_name(name)
                    .set_marker(marker.clone())
                    .send()
            };
            let out = retry(&self.backoff, &[], request)
                .await
                .map_err(|e| AwsError::new("ListRoleTags", role(name), e))?;
            tags.extend(out.tags.into_iter().map(|t| (t.key, t.value)));
            marker = next(out.is_truncated, out.marker);
            if marker.is_none() {
                return Ok(tags);
            }
        }
    }

    /// The names of the role's inline policies.
    pub async fn list_role_policies(&self, name: &str) -> Result<Vec<String>, AwsError> {
        let mut names = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let request = || {
                self.client
                    .list_role_policies()
                    .role_name(name)
                    .set_marker(marker.clone())
                    .send()
            };
            let out = retry(&self.backoff, &[], request)
                .await
                .map_err(|e| AwsError::new("ListRolePolicies", role(name), e))?;
            names.extend(out.policy_names);
            marker = next(out.is_truncated, out.marker);
            if marker.is_none() {
                return Ok(names);
            }
        }
    }

    /// A role's inline policy document as IAM returns it (URL-encoded), or `None` when absent.
    pub async fn get_role_policy(
        &self,
        name: &str,
        policy: &str,
    ) -> Result<Option<String>, AwsError> {
        let request = || {
            self.client
                .get_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
        };
        let out = unless_absent(
            retry(&self.backoff, &[], request).await,
            |e| e.is_no_such_entity_exception(),
            "GetRolePolicy",
            || format!("policy `{policy}` of {}", role(name)),
        )?;
        Ok(out.map(|out| out.policy_document))
    }

    /// Puts (creates or replaces) an inline policy on an existing role.
    pub async fn put_role_policy(
        &self,
        name: &str,
        policy: &str,
        document: &str,
    ) -> Result<(), AwsError> {
        let request = || {
            self.client
                .put_role_policy()
                .role_name(name)
                .policy_name(policy)
                .policy_document(document)
                .send()
        };
        retry(&self.backoff, SETTLING, request).await.map_err(|e| {
            AwsError::new(
                "PutRolePolicy",
                format!("policy `{policy}` of {}", role(name)),
                e,
            )
        })?;
        Ok(())
    }

    /// Deletes a role's inline policy; `false` when it was already gone.
    pub async fn delete_role_policy(&self, name: &str, policy: &str) -> Result<bool, AwsError> {
        let request = || {
            self.client
                .delete_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
        };
        let out = unless_absent(
            retry(&self.backoff, &[], request).await,
            |e| e.is_no_such_entity_exception(),
            "DeleteRolePolicy",
            || format!("policy `{policy}` of {}", role(name)),
        )?;
        Ok(out.is_some())
    }

    /// The ARNs of the managed policies attached to the role.
    pub async fn list_attached_role_policies(&self, name: &str) -> Result<Vec<String>, AwsError> {
        let mut arns = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let request = || {
                self.client
                    .list_attached_role_policies()
                    .role_name(name)
                    .set_marker(marker.clone())
                    .send()
            };
            let out = retry(&self.backoff, &[], request)
                .await
                .map_err(|e| AwsError::new("ListAttachedRolePolicies", role(name), e))?;
            arns.extend(
                out.attached_policies
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| {
                        p.policy_arn
                            .or(p.policy_name)
                            .unwrap_or_else(|| "(unnamed policy)".to_owned())
                    }),
            );
            marker = next(out.is_truncated, out.marker);
            if marker.is_none() {
                return Ok(arns);
            }
        }
    }

    /// Deletes a role; `false` when it was already gone.
    pub async fn delete_role(&self, name: &str) -> Result<bool, AwsError> {
        match retry(&self.backoff, &[], || {
            self.client.delete_role().role_name(name).send()
        })
        .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(AwsError::new("DeleteRole", role(name), e)),
        }
    }

    /// Asks IAM what the principal's policies decide for `actions` on `resource`.
    pub async fn simulate_principal_policy(
        &self,
        principal_arn: &str,
        actions: &[&str],
        resource: &str,
    ) -> Result<Vec<Decision>, AwsError> {
        let mut decisions = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let request = || {
                self.client
                    .simulate_principal_policy()
                    .policy_source_arn(principal_arn)
                    .set_action_names(Some(actions.iter().map(|a| (*a).to_owned()).collect()))
                    .resource_arns(resource)
                    .set_marker(marker.clone())
                    .send()
            };
            let out = retry(&self.backoff, SETTLING, request).await.map_err(|e| {
                AwsError::new("SimulatePrincipalPolicy", format!("`{principal_arn}`"), e)
            })?;
            decisions.extend(
                out.evaluation_results
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| Decision {
                        action: r.eval_action_name,
                        resource: r.eval_resource_name,
                        decision: r.eval_decision.as_str().to_owned(),
                    }),
            );
            marker = next(out.is_truncated, out.marker);
            if marker.is_none() {
                return Ok(decisions);
            }
        }
    }
}

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

/// A call's output, or `None` when the service says that what it names does not exist.
fn unless_absent<T, E>(
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
    fn new<E>(operation: &'static str, target: String, error: SdkError<E, HttpResponse>) -> AwsError
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

    fn missing(operation: &'static str, target: String, field: &str) -> AwsError {
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

fn next(truncated: bool, marker: Option<String>) -> Option<String> {
    if truncated { marker } else { None }
}

fn managed_tag() -> Result<Tag, AwsError> {
    Tag::builder()
        .key(MANAGED_BY.0)
        .value(MANAGED_BY.1)
        .build()
        .map_err(|e| AwsError {
            operation: "Tag",
            target: "the managed-by tag".to_owned(),
            code: None,
            message: Some(e.to_string()),
            kind: AwsErrorKind::Other,
        })
}

fn user(name: &str) -> String {
    format!("user `{name}`")
}

fn role(name: &str) -> String {
    format!("role `{name}`")
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
