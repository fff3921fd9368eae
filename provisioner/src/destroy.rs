//! `destroy`: first a plan ([`plan_destroy`]) of exactly what would go, then, when nothing is
//! refused, the deletions in the reverse order of creation: the access keys, the inline policy,
//! the user (or the role), the queue and the dead-letter queue.
//!
//! Only what carries this deployment's tags ([`Names::tags`]) is deleted: a `NAME-dlq` of
//! another deployment is left alone. A queue still holding messages (visible, in flight or
//! delayed) is refused without `force`. Anything refused (a resource of the expected name that
//! is not this deployment's, a queue with messages) stops destroy before it changes anything.
//! What is already gone is fine; every failure while deleting is reported, none stops the others.

use crate::aws::AwsError;
use crate::names::{Names, POLICY_NAME, Principal, PrincipalKind, QueueName};
use crate::{Auth, Clients, MANAGED_BY, ProvisionError, Spec};

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

/// What destroy would do, changing nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestroyPlan {
    /// What would be deleted, in order.
    pub deletions: Vec<String>,
    /// What is already gone.
    pub absent: Vec<String>,
    /// Why destroy would change nothing, one line each; empty when it may go ahead.
    pub refusals: Vec<String>,
    steps: Vec<Step>,
}

/// One deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    AccessKey { user: String, id: String },
    InlinePolicy(Principal),
    Principal(Principal),
    Queue { name: QueueName, url: String },
}

/// The attributes whose sum is what a queue still holds.
const MESSAGE_COUNTS: [&str; 3] = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
];

/// Looks at what `spec`'s deployment owns (the user's or role's resources, both looked for
/// whatever `spec.auth` says; both queues, the DLQ whether or not `spec.dlq` is set) and lists
/// what destroy would delete and what it would refuse.
pub async fn plan_destroy(clients: &Clients, spec: &Spec) -> Result<DestroyPlan, ProvisionError> {
    let names = spec.names()?;
    // One quick call first: without credentials or an endpoint, nothing below could work.
    clients.sts.get_caller_identity().await?;
    let mut plan = DestroyPlan::default();
    let role_mode = matches!(spec.auth, Auth::Role { .. });
    for (kind, expected) in [
        (PrincipalKind::User, !role_mode),
        (PrincipalKind::Role, role_mode),
    ] {
        let p = Principal::new(kind, names.principal.as_str());
        if let Err(e) = survey_principal(clients, &names, &p, expected, &mut plan).await {
            plan.refusals.push(e.to_string());
        }
    }
    let mut queues = vec![(names.queue.clone(), true)];
    // A name too long for a DLQ never had one.
    if let Ok(dlq) = names.queue.dlq() {
        queues.push((dlq, spec.dlq));
    }
    for (queue, expected) in queues {
        let survey = survey_queue(clients, &names, &queue, expected, spec.force, &mut plan);
        if let Err(e) = survey.await {
            plan.refusals.push(e.to_string());
        }
    }
    plan.deletions = plan.steps.iter().map(Step::describe).collect();
    Ok(plan)
}

/// Deletes what [`plan_destroy`] lists. Fails with [`ProvisionError::DestroyRefused`], having
/// changed nothing, when the plan refuses anything; with [`ProvisionError::Destroy`], holding
/// the whole report, when anything could not be deleted. The configuration file is left alone.
pub async fn destroy(clients: &Clients, spec: &Spec) -> Result<DestroyReport, ProvisionError> {
    let plan = plan_destroy(clients, spec).await?;
    if !plan.refusals.is_empty() {
        return Err(ProvisionError::DestroyRefused(plan.refusals));
    }
    let mut report = DestroyReport {
        absent: plan.absent,
        ..DestroyReport::default()
    };
    for step in &plan.steps {
        let result = match step {
            Step::AccessKey { user, id } => clients.iam.delete_access_key(user, id).await,
            Step::InlinePolicy(p) => clients.iam.delete_inline_policy(p, POLICY_NAME).await,
            Step::Principal(p) => clients.iam.delete(p).await,
            Step::Queue { url, .. } => clients.sqs.delete_queue(url).await,
        };
        report.outcome(step.describe(), result);
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
}

impl Step {
    fn describe(&self) -> String {
        match self {
            Step::AccessKey { user, id } => format!(
                "access key {id} of {}",
                Principal::new(PrincipalKind::User, user.as_str())
            ),
            Step::InlinePolicy(p) => format!("inline policy `{POLICY_NAME}` of {p}"),
            Step::Principal(p) => p.to_string(),
            Step::Queue { name, .. } => format!("queue `{name}`"),
        }
    }
}

/// Whether a resource of the expected name may be deleted; `None` when it may, else why not.
/// A resource that is not ours and was not `expected` (the other kind of principal, a DLQ this
/// deployment was not asked about) is simply not this deployment's: `Some(None)`.
fn ownership(
    names: &Names,
    what: &str,
    tags: &std::collections::BTreeMap<String, String>,
    expected: bool,
) -> Option<Option<String>> {
    if names.owns(tags) {
        return None;
    }
    if !expected {
        return Some(None);
    }
    let reason = match tags.get(MANAGED_BY.0).is_some_and(|v| v == MANAGED_BY.1) {
        true => format!(
            "{what} belongs to another deployment (it lacks the tags {}): left in place",
            names.tags_text()
        ),
        false => format!(
            "{what} was not created by this tool (it lacks the tags {}): left in place",
            names.tags_text()
        ),
    };
    Some(Some(reason))
}

async fn survey_principal(
    clients: &Clients,
    names: &Names,
    p: &Principal,
    expected: bool,
    plan: &mut DestroyPlan,
) -> Result<(), AwsError> {
    let iam = &clients.iam;
    let what = p.to_string();
    if iam.get(p).await?.is_none() {
        if expected {
            plan.absent.push(what);
        }
        return Ok(());
    }
    if let Some(refusal) = ownership(names, &what, &iam.tags(p).await?, expected) {
        plan.refusals.extend(refusal);
        return Ok(());
    }
    if p.kind == PrincipalKind::User {
        for key in iam.list_access_keys(&p.name).await? {
            plan.steps.push(Step::AccessKey {
                user: p.name.clone(),
                id: key.id,
            });
        }
    }
    if iam
        .inline_policy_names(p)
        .await?
        .iter()
        .any(|n| n == POLICY_NAME)
    {
        plan.steps.push(Step::InlinePolicy(p.clone()));
    }
    plan.steps.push(Step::Principal(p.clone()));
    Ok(())
}

async fn survey_queue(
    clients: &Clients,
    names: &Names,
    name: &QueueName,
    expected: bool,
    force: bool,
    plan: &mut DestroyPlan,
) -> Result<(), AwsError> {
    let sqs = &clients.sqs;
    let what = format!("queue `{name}`");
    let gone = |plan: &mut DestroyPlan| {
        if expected {
            plan.absent.push(what.clone());
        }
    };
    let Some(url) = sqs.get_queue_url(name.as_str()).await? else {
        gone(plan);
        return Ok(());
    };
    let tags = match sqs.list_queue_tags(&url).await {
        Ok(tags) => tags,
        Err(e) if e.is_not_found() => {
            gone(plan);
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if let Some(refusal) = ownership(names, &what, &tags, expected) {
        plan.refusals.extend(refusal);
        return Ok(());
    }
    let Some(attributes) = sqs.get_queue_attributes(&url).await? else {
        gone(plan);
        return Ok(());
    };
    let held: u64 = MESSAGE_COUNTS
        .iter()
        .filter_map(|key| attributes.get(*key)?.parse::<u64>().ok())
        .sum();
    if held > 0 && !force {
        plan.refusals.push(format!(
            "{what} still holds {held} message(s) (visible, in flight or delayed): pass --force to delete it with them"
        ));
        return Ok(());
    }
    plan.steps.push(Step::Queue {
        name: name.clone(),
        url,
    });
    Ok(())
}
