//! `verify`: proves least privilege on the live account. The principal's only policy is the
//! single-statement document (no other inline or attached policy, no group), the role's trust
//! policy is the expected one, and IAM's policy simulator allows `sqs:SendMessage` on the queue
//! and denies everything else that matters.

use serde_json::Value;

use crate::aws::Decision;
use crate::names::{AccountId, ExternalId, POLICY_NAME, Principal, PrincipalKind, QueueName};
use crate::observe::{self, Identity};
use crate::plan::{self, PrincipalState};
use crate::policy::{self, QueueArn, SEND_ACTION};
use crate::{Auth, Clients, ProvisionError, Spec};

/// What verify found; [`verify`] returns it only when every check passed.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyReport {
    /// The queue's ARN.
    pub queue_arn: String,
    /// The user's or role's ARN, when it exists.
    pub principal_arn: Option<String>,
    /// The inline policy as IAM stores it, decoded.
    pub policy: Option<Value>,
    /// The role's trust policy as IAM stores it, decoded.
    pub trust: Option<Value>,
    /// Every check, in order.
    pub checks: Vec<Check>,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it holds.
    pub passed: bool,
    /// What was seen.
    pub detail: String,
}

/// The actions that must be denied on the queue itself.
pub const DENIED_ON_QUEUE: [&str; 3] =
    ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:PurgeQueue"];

impl VerifyReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The failed checks, one line each.
    pub fn failures(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect()
    }

    fn check(&mut self, name: impl Into<String>, passed: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            passed,
            detail: detail.into(),
        });
    }
}

/// Verifies the user (or, with [`Auth::Role`], the role) of `spec`. Fails with
/// [`ProvisionError::Verify`], holding the whole report, when any check fails.
pub async fn verify(clients: &Clients, spec: &Spec) -> Result<VerifyReport, ProvisionError> {
    let id = observe::identify(clients, spec).await?;
    let mut report = VerifyReport {
        queue_arn: id.queue_arn.to_string(),
        principal_arn: None,
        policy: None,
        trust: None,
        checks: Vec::new(),
    };
    let queue_policies = check_queue(clients, &id, &mut report).await?;

    let kind = match &spec.auth {
        Auth::User => PrincipalKind::User,
        Auth::Role { .. } => PrincipalKind::Role,
    };
    let who = Principal::new(kind, id.names.principal.as_str());
    let principal = observe::principal(clients, &id.names, &who).await?;
    let principal_arn = principal.as_ref().map(|p| p.arn.as_str()).unwrap_or("");
    for (name, arn, policy) in &queue_policies {
        let grants = policy
            .as_ref()
            .map(|p| policy::queue_policy_grants(p, principal_arn, arn))
            .unwrap_or_default();
        report.check(
            format!("queue `{name}` queue policy grants nothing to anyone but {who}"),
            grants.is_empty(),
            if grants.is_empty() {
                "no grant".to_owned()
            } else {
                grants.join("; ")
            },
        );
    }
    let Some(principal) = principal else {
        report.check(who.to_string(), false, "does not exist: run apply");
        return finish(report);
    };
    report.principal_arn = Some(principal.arn.clone());
    report.policy = principal.policy.clone();
    report.trust = principal.trust.clone();
    check_policies(&id, &who, &principal, &mut report);
    if let Auth::Role {
        trust_account,
        external_id,
    } = &spec.auth
    {
        check_trust(
            spec,
            trust_account.as_deref(),
            external_id.as_deref(),
            &principal,
            &mut report,
        )?;
    }
    let queue_policy = queue_policies
        .first()
        .and_then(|(_, _, p)| p.as_ref())
        .map(Value::to_string);
    check_simulation(
        clients,
        &id,
        &principal.arn,
        queue_policy.as_deref(),
        &mut report,
    )
    .await?;
    finish(report)
}

fn finish(report: VerifyReport) -> Result<VerifyReport, ProvisionError> {
    match report.passed() {
        true => Ok(report),
        false => Err(ProvisionError::Verify(Box::new(report))),
    }
}

/// Checks each queue's attributes and tags; returns each queue's name, ARN and resource policy,
/// for the checks that need the principal.
async fn check_queue(
    clients: &Clients,
    id: &Identity,
    report: &mut VerifyReport,
) -> Result<Vec<(QueueName, QueueArn, Option<Value>)>, ProvisionError> {
    let mut policies = Vec::new();
    let queues = std::iter::once((&id.names.queue, &id.queue_arn))
        .chain(id.names.dlq.iter().zip(id.dlq_arn.iter()));
    for (name, arn) in queues {
        let what = format!("queue `{name}`");
        let Some(queue) = observe::queue(clients, &id.names, name).await? else {
            report.check(what, false, "does not exist: run apply");
            continue;
        };
        let attribute = |key: &str| {
            queue
                .attributes
                .get(key)
                .map(String::as_str)
                .unwrap_or("(none)")
        };
        let actual = attribute("QueueArn");
        report.check(
            format!("{what} has the ARN built from STS's account"),
            actual == arn.to_string(),
            actual,
        );
        let size = attribute("MaximumMessageSize");
        report.check(
            format!("{what} MaximumMessageSize"),
            size == plan::MAXIMUM_MESSAGE_SIZE,
            size,
        );
        report.check(
            format!("{what} tagged"),
            queue.managed,
            if queue.managed { "yes" } else { "no" },
        );
        let stored = queue
            .attributes
            .get(plan::QUEUE_POLICY)
            .and_then(|p| serde_json::from_str::<Value>(p).ok());
        let expected = policy::queue_policy(arn);
        let denies = stored
            .as_ref()
            .is_some_and(|p| denies_plain_http(p, &expected));
        report.check(
            format!("{what} queue policy denies requests over plain HTTP"),
            denies,
            stored
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_else(|| "(no queue policy)".to_owned()),
        );
        policies.push((name.clone(), arn.clone(), stored));
    }
    Ok(policies)
}

/// Whether `policy` holds the statement of `expected` that denies `aws:SecureTransport` false.
fn denies_plain_http(policy: &Value, expected: &Value) -> bool {
    let statements = |p: &Value| match p.get("Statement") {
        Some(Value::Array(items)) => items.clone(),
        Some(single) => vec![single.clone()],
        None => Vec::new(),
    };
    let present = statements(policy);
    statements(expected).iter().all(|s| present.contains(s))
}

fn check_policies(
    id: &Identity,
    who: &Principal,
    principal: &PrincipalState,
    report: &mut VerifyReport,
) {
    report.check(
        format!("{who} has only the inline policy `{POLICY_NAME}`"),
        principal.inline_policies == [POLICY_NAME],
        format!("{:?}", principal.inline_policies),
    );
    let expected = policy::send_policy(&id.queue_arn).to_value();
    let stored = principal
        .policy
        .as_ref()
        .map(Value::to_string)
        .unwrap_or_else(|| "(none)".to_owned());
    report.check(
        format!("`{POLICY_NAME}` is the single-statement send policy"),
        principal.policy.as_ref() == Some(&expected),
        stored,
    );
    report.check(
        format!("{who} has no attached managed policy"),
        principal.attached.is_empty(),
        format!("{:?}", principal.attached),
    );
    if who.kind == PrincipalKind::User {
        report.check(
            format!("{who} is in no group"),
            principal.groups.is_empty(),
            format!("{:?}", principal.groups),
        );
    }
    report.check(
        format!("{who} tagged"),
        principal.managed,
        if principal.managed { "yes" } else { "no" },
    );
}

/// The trust policy must have exactly the shape apply writes: one statement, the trusted
/// account's root, `sts:AssumeRole`, and the external-id condition.
fn check_trust(
    spec: &Spec,
    trust_account: Option<&str>,
    external_id: Option<&str>,
    principal: &PrincipalState,
    report: &mut VerifyReport,
) -> Result<(), ProvisionError> {
    let stored = principal
        .trust
        .as_ref()
        .map(Value::to_string)
        .unwrap_or_else(|| "(none)".to_owned());
    let Some(trust) = principal
        .trust
        .as_ref()
        .and_then(policy::parse_trust_policy)
    else {
        report.check(
            "trust policy requires the trusted account and an external id",
            false,
            stored,
        );
        return Ok(());
    };
    report.check(
        "trust policy requires the trusted account and an external id",
        true,
        stored,
    );
    if let Some(account) = trust_account {
        let expected = AccountId::new(account)?;
        report.check(
            "trust policy trusts --trust-account",
            trust.account == expected,
            trust.account.to_string(),
        );
    }
    // The external id given, else the one the configuration file holds.
    let saved = match &spec.out {
        Some(out) => observe::saved(&out.path)?.and_then(|s| s.config.external_id),
        None => None,
    };
    if let Some(expected) = external_id.map(str::to_owned).or(saved) {
        let expected = ExternalId::new(&expected)?;
        let same = trust.external_id == expected;
        report.check(
            "trust policy requires the expected external id",
            same,
            if same {
                "matches"
            } else {
                "the stored external id differs"
            },
        );
    }
    Ok(())
}

async fn check_simulation(
    clients: &Clients,
    id: &Identity,
    principal_arn: &str,
    queue_policy: Option<&str>,
    report: &mut VerifyReport,
) -> Result<(), ProvisionError> {
    let iam = &clients.iam;
    let queue = id.queue_arn.to_string();
    let mut actions = vec![SEND_ACTION];
    actions.extend(DENIED_ON_QUEUE);
    let on_queue = iam
        .simulate_principal_policy(principal_arn, &actions, &queue, queue_policy)
        .await?;
    expect(report, &on_queue, SEND_ACTION, &queue, true);
    for action in DENIED_ON_QUEUE {
        expect(report, &on_queue, action, &queue, false);
    }
    // Another queue of the same account, region and type.
    let other = match queue.strip_suffix(".fifo") {
        Some(base) => format!("{base}-other.fifo"),
        None => format!("{queue}-other"),
    };
    let on_other = iam
        .simulate_principal_policy(principal_arn, &[SEND_ACTION], &other, None)
        .await?;
    expect(report, &on_other, SEND_ACTION, &other, false);
    let create_key = "iam:CreateAccessKey";
    let on_self = iam
        .simulate_principal_policy(principal_arn, &[create_key], principal_arn, None)
        .await?;
    expect(report, &on_self, create_key, principal_arn, false);
    Ok(())
}

fn expect(
    report: &mut VerifyReport,
    decisions: &[Decision],
    action: &str,
    resource: &str,
    allowed: bool,
) {
    let name = format!(
        "{action} on {resource} is {}",
        if allowed { "allowed" } else { "denied" }
    );
    let Some(found) = decisions.iter().find(|d| d.action == action) else {
        report.check(name, false, "the simulator gave no answer");
        return;
    };
    let passed = match allowed {
        true => found.decision == "allowed",
        false => found.decision == "implicitDeny" || found.decision == "explicitDeny",
    };
    report.check(name, passed, found.decision.clone());
}
