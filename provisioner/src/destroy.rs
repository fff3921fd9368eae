//! `destroy`: deletes, in the reverse order of creation, the access keys, the inline policy, the
//! user (or the role), the queue and the dead-letter queue. What is already gone is fine; what
//! this tool did not create (no `managed-by` tag) is left in place and reported; every failure is
//! reported, none stops the others.

use crate::aws::AwsError;
use crate::names::{POLICY_NAME, Principal, PrincipalKind, QueueName};
use crate::observe::is_managed;
use crate::{Auth, Clients, ProvisionError, Spec};

/// What destroy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestroyReport {
    /// What was deleted, in order.
    pub deleted: Vec<String>,
    /// What was already gone.
    pub absent: Vec<String>,
    /// What could not be deleted, and why; one line each.
    pub failures: Vec<String>,
}

/// Deletes what apply created for `spec`: the user's or role's resources (both are looked for,
/// whatever `spec.auth` says) and both queues (the DLQ whether or not `spec.dlq` is set). The
/// configuration file is left alone. Fails with [`ProvisionError::Destroy`], holding the whole
/// report, when anything could not be deleted.
pub async fn destroy(clients: &Clients, spec: &Spec) -> Result<DestroyReport, ProvisionError> {
    let names = spec.names()?;
    // One quick call first: without credentials or an endpoint, nothing below could work.
    clients.sts.get_caller_identity().await?;
    let mut report = DestroyReport::default();
    let role_mode = matches!(spec.auth, Auth::Role { .. });
    for (kind, expected) in [
        (PrincipalKind::User, !role_mode),
        (PrincipalKind::Role, role_mode),
    ] {
        let p = Principal::new(kind, names.principal.as_str());
        destroy_principal(clients, &p, expected, &mut report).await;
    }
    destroy_queue(clients, &names.queue, true, &mut report).await;
    // A name too long for a DLQ never had one.
    if let Ok(dlq) = names.queue.dlq() {
        destroy_queue(clients, &dlq, spec.dlq, &mut report).await;
    }
    match report.failures.is_empty() {
        true => Ok(report),
        false => Err(ProvisionError::Destroy(Box::new(report))),
    }
}

impl DestroyReport {
    fn outcome(&mut self, what: String, result: Result<bool, AwsError>) {
        match result {
            Ok(true) => self.deleted.push(what),
            Ok(false) => self.absent.push(what),
            Err(e) => self.failures.push(e.to_string()),
        }
    }

    fn not_ours(&mut self, what: String) {
        self.failures.push(format!(
            "{what} was not created by this tool (it lacks the tag {}={}): left in place",
            crate::MANAGED_BY.0,
            crate::MANAGED_BY.1
        ));
    }
}

/// Deletes a user (its access keys first) or a role, with the inline policy, when it is ours.
async fn destroy_principal(
    clients: &Clients,
    p: &Principal,
    expected: bool,
    report: &mut DestroyReport,
) {
    let iam = &clients.iam;
    let what = p.to_string();
    match iam.get(p).await {
        Ok(Some(_)) => {}
        Ok(None) if expected => return report.absent.push(what),
        Ok(None) => return,
        Err(e) => return report.failures.push(e.to_string()),
    }
    match iam.tags(p).await {
        Ok(tags) if is_managed(&tags) => {}
        Ok(_) => return report.not_ours(what),
        Err(e) => return report.failures.push(e.to_string()),
    }
    if p.kind == PrincipalKind::User {
        match iam.list_access_keys(&p.name).await {
            Ok(keys) => {
                for key in keys {
                    let result = iam.delete_access_key(&p.name, &key.id).await;
                    report.outcome(format!("access key {} of {what}", key.id), result);
                }
            }
            Err(e) => report.failures.push(e.to_string()),
        }
    }
    let result = iam.delete_inline_policy(p, POLICY_NAME).await;
    report.outcome(format!("inline policy `{POLICY_NAME}` of {what}"), result);
    let result = iam.delete(p).await;
    report.outcome(what, result);
}

async fn destroy_queue(
    clients: &Clients,
    name: &QueueName,
    expected: bool,
    report: &mut DestroyReport,
) {
    let sqs = &clients.sqs;
    let what = format!("queue `{name}`");
    let url = match sqs.get_queue_url(name.as_str()).await {
        Ok(Some(url)) => url,
        Ok(None) if expected => return report.absent.push(what),
        Ok(None) => return,
        Err(e) => return report.failures.push(e.to_string()),
    };
    match sqs.list_queue_tags(&url).await {
        Ok(tags) if is_managed(&tags) => {}
        Ok(_) => return report.not_ours(what),
        Err(e) if e.is_not_found() => return report.absent.push(what),
        Err(e) => return report.failures.push(e.to_string()),
    }
    let result = sqs.delete_queue(&url).await;
    report.outcome(what, result);
}
