//! Against the embedded LocalStack: `verify` fails, naming what changed, for each way the
//! principal's rights can be widened after apply: an attached managed policy, membership in a
//! group, a wildcard resource or an extra action in the inline policy, a second inline policy,
//! and a role's trust policy opened to anyone.
//!
//! Each test provisions its own resources under a unique name, sees verify pass, widens, sees
//! verify fail, then undoes the widening and destroys, also when it fails.

use aws_access::sdk::sdk_config;
use provisioner::{Auth, Clients, POLICY_NAME, ProvisionError, Spec};
use serde_json::json;
use testkit::unique;

/// The account a role is provisioned for in these tests.
const TRUSTED: &str = "111111111111";

#[tokio::test(flavor = "multi_thread")]
async fn an_attached_managed_policy_fails_verify() {
    let spec = Spec::new(unique("widen-attached"));
    let failure = widened(&spec, Widening::AttachedPolicy).await;
    assert!(
        failure.contains("has no attached managed policy"),
        "{failure}"
    );
    assert!(failure.contains(":policy/widen-"), "{failure}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_with_an_attached_managed_policy_fails_verify() {
    let spec = role_spec("widen-role-attached");
    let failure = widened(&spec, Widening::AttachedPolicy).await;
    assert!(failure.contains("role `"), "{failure}");
    assert!(
        failure.contains("has no attached managed policy"),
        "{failure}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn membership_in_a_group_fails_verify() {
    let spec = Spec::new(unique("widen-group"));
    let failure = widened(&spec, Widening::Group).await;
    assert!(failure.contains("is in no group"), "{failure}");
    assert!(
        failure.contains("\"widen-"),
        "the group is named: {failure}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wildcard_resource_in_the_inline_policy_fails_verify() {
    let spec = Spec::new(unique("widen-wildcard"));
    let failure = widened(&spec, Widening::WildcardResource).await;
    assert!(
        failure.contains(&format!(
            "`{POLICY_NAME}` is the single-statement send policy"
        )),
        "{failure}"
    );
    assert!(failure.contains(r#""Resource":"*""#), "{failure}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_extra_action_in_the_inline_policy_fails_verify() {
    let spec = Spec::new(unique("widen-action"));
    let failure = widened(&spec, Widening::ExtraAction).await;
    assert!(
        failure.contains(&format!(
            "`{POLICY_NAME}` is the single-statement send policy"
        )),
        "{failure}"
    );
    assert!(failure.contains("sqs:ReceiveMessage"), "{failure}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_with_an_extra_action_fails_verify() {
    let spec = role_spec("widen-role-action");
    let failure = widened(&spec, Widening::ExtraAction).await;
    assert!(failure.contains("sqs:ReceiveMessage"), "{failure}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_inline_policy_fails_verify() {
    let spec = Spec::new(unique("widen-inline"));
    let failure = widened(&spec, Widening::SecondInlinePolicy).await;
    assert!(
        failure.contains(&format!("has only the inline policy `{POLICY_NAME}`")),
        "{failure}"
    );
    assert!(failure.contains("widen-extra"), "{failure}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trust_policy_open_to_anyone_fails_verify() {
    let spec = role_spec("widen-trust");
    let failure = widened(&spec, Widening::TrustAnyone).await;
    assert!(
        failure.contains("trust policy requires the trusted account and an external id"),
        "{failure}"
    );
    assert!(failure.contains(r#""AWS":"*""#), "{failure}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_policy_granting_anyone_everything_fails_verify() {
    let spec = Spec::new(unique("widen-qp-anyone"));
    let failure = widened(&spec, Widening::QueuePolicy(QueueGrant::Anyone)).await;
    assert!(failure.contains("queue policy"), "{failure}");
    assert!(
        failure.contains("`OpenToAll`"),
        "the statement is named: {failure}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_policy_granting_another_account_fails_verify() {
    let spec = role_spec("widen-qp-account");
    let failure = widened(&spec, Widening::QueuePolicy(QueueGrant::OtherAccount)).await;
    assert!(failure.contains("queue policy"), "{failure}");
    assert!(
        failure.contains("`OtherAccount`"),
        "the statement is named: {failure}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_policy_granting_the_principal_every_action_fails_verify() {
    let spec = Spec::new(unique("widen-qp-all"));
    let failure = widened(&spec, Widening::QueuePolicy(QueueGrant::EveryAction)).await;
    assert!(failure.contains("queue policy"), "{failure}");
    assert!(
        failure.contains("`EveryAction`"),
        "the statement is named: {failure}"
    );
}

/// One way to give the principal more than `sqs:SendMessage` on its queue.
#[derive(Debug, Clone, Copy)]
enum Widening {
    /// A customer-managed policy allowing every SQS action, attached.
    AttachedPolicy,
    /// Membership in a group whose inline policy allows every SQS action.
    Group,
    /// The inline policy's resource replaced by `*`.
    WildcardResource,
    /// `sqs:ReceiveMessage` added to the inline policy's action.
    ExtraAction,
    /// Another inline policy next to the provisioned one.
    SecondInlinePolicy,
    /// The role's trust policy lets any principal assume it, without an external id.
    TrustAnyone,
    /// A statement added to the queue's resource policy.
    QueuePolicy(QueueGrant),
}

/// A grant a queue policy can add.
#[derive(Debug, Clone, Copy)]
enum QueueGrant {
    /// `sqs:*` to the principal `*`.
    Anyone,
    /// `sqs:SendMessage` to another account.
    OtherAccount,
    /// `sqs:*` to the provisioned principal itself.
    EveryAction,
}

/// What a widening created, so that it can be undone before destroy.
#[derive(Debug, Default)]
struct Undo {
    attached: Option<String>,
    group: Option<String>,
    extra_policy: Option<String>,
}

/// The clients under test and a plain IAM client to widen with.
#[derive(Clone)]
struct Env {
    clients: Clients,
    iam: aws_sdk_iam::Client,
    sqs: aws_sdk_sqs::Client,
}

/// Applies `spec`, sees verify pass, widens, and returns verify's one-line refusal; undoes the
/// widening and destroys whatever happens.
async fn widened(spec: &Spec, widening: Widening) -> String {
    let options = testkit::localstack_options().await;
    let config = sdk_config(&options).await.expect("config");
    let env = Env {
        clients: Clients::new(&options).await.expect("clients"),
        iam: aws_sdk_iam::Client::new(&config),
        sqs: aws_sdk_sqs::Client::new(&config),
    };
    let undo = std::sync::Arc::new(tokio::sync::Mutex::new(Undo::default()));
    let body = {
        let (env, spec, undo) = (env.clone(), spec.clone(), undo.clone());
        async move {
            provisioner::apply(&env.clients, &spec)
                .await
                .expect("apply");
            let report = provisioner::verify(&env.clients, &spec).await;
            assert!(report.is_ok(), "verify fails before widening: {report:?}");
            widen(&env, &spec, widening, &mut *undo.lock().await).await;
            match provisioner::verify(&env.clients, &spec).await {
                Ok(report) => panic!("verify passed after {widening:?}: {report:?}"),
                Err(error @ ProvisionError::Verify(_)) => error.to_string(),
                Err(other) => panic!("verify failed for another reason: {other}"),
            }
        }
    };
    let result = tokio::spawn(body).await;
    restore(&env, spec, &*undo.lock().await).await;
    let destroyed = provisioner::destroy(&env.clients, spec).await;
    match result {
        Ok(failure) => {
            destroyed.expect("destroy");
            assert!(!failure.contains('\n'), "{failure}");
            failure
        }
        Err(panic) => std::panic::resume_unwind(panic.into_panic()),
    }
}

async fn widen(env: &Env, spec: &Spec, widening: Widening, undo: &mut Undo) {
    let iam = &env.iam;
    let name = principal(spec);
    let role = matches!(spec.auth, Auth::Role { .. });
    let everything = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]
    })
    .to_string();
    match widening {
        Widening::AttachedPolicy => {
            let created = iam
                .create_policy()
                .policy_name(unique("widen-policy"))
                .policy_document(&everything)
                .send()
                .await
                .expect("create a managed policy");
            let arn = created.policy.and_then(|p| p.arn).expect("its arn");
            undo.attached = Some(arn.clone());
            match role {
                true => iam
                    .attach_role_policy()
                    .role_name(&name)
                    .policy_arn(&arn)
                    .send()
                    .await
                    .map(drop)
                    .map_err(aws_sdk_iam::Error::from),
                false => iam
                    .attach_user_policy()
                    .user_name(&name)
                    .policy_arn(&arn)
                    .send()
                    .await
                    .map(drop)
                    .map_err(aws_sdk_iam::Error::from),
            }
            .expect("attach it");
        }
        Widening::Group => {
            let group = unique("widen-group");
            iam.create_group()
                .group_name(&group)
                .send()
                .await
                .expect("create a group");
            undo.group = Some(group.clone());
            iam.put_group_policy()
                .group_name(&group)
                .policy_name("everything")
                .policy_document(&everything)
                .send()
                .await
                .expect("the group's policy");
            iam.add_user_to_group()
                .group_name(&group)
                .user_name(&name)
                .send()
                .await
                .expect("join the group");
        }
        Widening::WildcardResource | Widening::ExtraAction => {
            let queue = queue_arn(env, spec).await;
            let (action, resource) = match widening {
                Widening::WildcardResource => (json!("sqs:SendMessage"), json!("*")),
                _ => (
                    json!(["sqs:SendMessage", "sqs:ReceiveMessage"]),
                    json!(queue),
                ),
            };
            let document = json!({
                "Version": "2012-10-17",
                "Statement": [{"Sid": "SendOnly", "Effect": "Allow", "Action": action, "Resource": resource}]
            })
            .to_string();
            put_inline(env, &name, role, POLICY_NAME, &document).await;
        }
        Widening::SecondInlinePolicy => {
            undo.extra_policy = Some("widen-extra".to_owned());
            put_inline(env, &name, role, "widen-extra", &everything).await;
        }
        Widening::QueuePolicy(grant) => {
            let report = provisioner::verify(&env.clients, spec)
                .await
                .expect("verify");
            let queue = report.queue_arn;
            let me = report.principal_arn.expect("the principal's arn");
            let (sid, principal, action) = match grant {
                QueueGrant::Anyone => ("OpenToAll", json!("*"), "sqs:*"),
                QueueGrant::OtherAccount => (
                    "OtherAccount",
                    json!({"AWS": "arn:aws:iam::222222222222:root"}),
                    "sqs:SendMessage",
                ),
                QueueGrant::EveryAction => ("EveryAction", json!({"AWS": me}), "sqs:*"),
            };
            let document = json!({
                "Version": "2012-10-17",
                "Statement": [{"Sid": sid, "Effect": "Allow", "Principal": principal, "Action": action, "Resource": queue}]
            })
            .to_string();
            let url = env
                .sqs
                .get_queue_url()
                .queue_name(spec.names().expect("names").queue.as_str())
                .send()
                .await
                .expect("queue url")
                .queue_url
                .expect("url");
            env.sqs
                .set_queue_attributes()
                .queue_url(url)
                .attributes(aws_sdk_sqs::types::QueueAttributeName::Policy, document)
                .send()
                .await
                .expect("set the queue policy");
        }
        Widening::TrustAnyone => {
            let document = json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]
            })
            .to_string();
            iam.update_assume_role_policy()
                .role_name(&name)
                .policy_document(document)
                .send()
                .await
                .expect("open the trust policy");
        }
    }
}

/// Undoes what [`widen`] created that destroy would not delete; every step is tried.
async fn restore(env: &Env, spec: &Spec, undo: &Undo) {
    let iam = &env.iam;
    let name = principal(spec);
    let role = matches!(spec.auth, Auth::Role { .. });
    if let Some(arn) = &undo.attached {
        let _ = match role {
            true => iam
                .detach_role_policy()
                .role_name(&name)
                .policy_arn(arn)
                .send()
                .await
                .map(drop)
                .map_err(aws_sdk_iam::Error::from),
            false => iam
                .detach_user_policy()
                .user_name(&name)
                .policy_arn(arn)
                .send()
                .await
                .map(drop)
                .map_err(aws_sdk_iam::Error::from),
        };
        let _ = iam.delete_policy().policy_arn(arn).send().await;
    }
    if let Some(group) = &undo.group {
        let _ = iam
            .remove_user_from_group()
            .group_name(group)
            .user_name(&name)
            .send()
            .await;
        let _ = iam
            .delete_group_policy()
            .group_name(group)
            .policy_name("everything")
            .send()
            .await;
        let _ = iam.delete_group().group_name(group).send().await;
    }
    if let Some(policy) = &undo.extra_policy {
        let _ = match role {
            true => iam
                .delete_role_policy()
                .role_name(&name)
                .policy_name(policy)
                .send()
                .await
                .map(drop)
                .map_err(aws_sdk_iam::Error::from),
            false => iam
                .delete_user_policy()
                .user_name(&name)
                .policy_name(policy)
                .send()
                .await
                .map(drop)
                .map_err(aws_sdk_iam::Error::from),
        };
    }
}

async fn put_inline(env: &Env, name: &str, role: bool, policy: &str, document: &str) {
    match role {
        true => env
            .iam
            .put_role_policy()
            .role_name(name)
            .policy_name(policy)
            .policy_document(document)
            .send()
            .await
            .map(drop)
            .map_err(aws_sdk_iam::Error::from),
        false => env
            .iam
            .put_user_policy()
            .user_name(name)
            .policy_name(policy)
            .policy_document(document)
            .send()
            .await
            .map(drop)
            .map_err(aws_sdk_iam::Error::from),
    }
    .expect("put the inline policy");
}

async fn queue_arn(env: &Env, spec: &Spec) -> String {
    let report = provisioner::verify(&env.clients, spec)
        .await
        .expect("verify");
    report.queue_arn
}

fn principal(spec: &Spec) -> String {
    spec.names().expect("names").principal.as_str().to_owned()
}

fn role_spec(prefix: &str) -> Spec {
    Spec {
        auth: Auth::Role {
            trust_account: Some(TRUSTED.to_owned()),
            external_id: None,
        },
        ..Spec::new(unique(prefix))
    }
}
