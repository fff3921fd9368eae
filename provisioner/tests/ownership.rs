//! Against the embedded LocalStack: destroy deletes only what carries its own deployment's tag.
//! A separate deployment named like this one's dead-letter queue survives; a queue still holding
//! messages is kept without `force`; the destroy plan lists exactly what would go.
//!
//! Each test provisions its own resources under unique names and destroys them, also when it
//! fails.

use aws_access::sdk::sdk_config;
use provisioner::{Clients, Spec};
use testkit::unique;

#[tokio::test(flavor = "multi_thread")]
async fn destroy_leaves_another_deployment_named_like_its_dlq() {
    let env = Env::new().await;
    let first = Spec::new(unique("dd"));
    let second = Spec::new(format!("{}-dlq", first.name));
    let body = {
        let (env, first, second) = (env.clone(), first.clone(), second.clone());
        async move {
            provisioner::apply(&env.clients, &first)
                .await
                .expect("apply the first deployment");
            provisioner::apply(&env.clients, &second)
                .await
                .expect("apply the second deployment");
            let url = queue_url(&env, &second.name)
                .await
                .expect("the second queue");
            env.sqs
                .send_message()
                .queue_url(&url)
                .message_body("keep me")
                .send()
                .await
                .expect("send");

            let plan = provisioner::plan_destroy(&env.clients, &first)
                .await
                .expect("destroy plan");
            assert!(
                !plan.deletions.iter().any(|d| d.contains(&second.name)),
                "{plan:?}"
            );
            provisioner::destroy(&env.clients, &first)
                .await
                .expect("destroy the first deployment");
            assert!(
                queue_url(&env, &second.name).await.is_some(),
                "the other deployment's queue was deleted"
            );
            provisioner::verify(&env.clients, &second)
                .await
                .expect("the other deployment is intact");
        }
    };
    let result = tokio::spawn(body).await;
    let _ = provisioner::destroy(&env.clients, &first).await;
    let forced = Spec {
        force: true,
        ..second.clone()
    };
    let _ = provisioner::destroy(&env.clients, &forced).await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_holding_messages_is_kept_without_force() {
    let env = Env::new().await;
    let spec = Spec {
        dlq: true,
        ..Spec::new(unique("full"))
    };
    let body = {
        let (env, spec) = (env.clone(), spec.clone());
        async move {
            provisioner::apply(&env.clients, &spec)
                .await
                .expect("apply");
            let url = queue_url(&env, &spec.name).await.expect("queue");
            for body in ["one", "two"] {
                env.sqs
                    .send_message()
                    .queue_url(&url)
                    .message_body(body)
                    .send()
                    .await
                    .expect("send");
            }
            let plan = provisioner::plan_destroy(&env.clients, &spec)
                .await
                .expect("destroy plan");
            assert!(
                plan.refusals
                    .iter()
                    .any(|r| r.contains(&spec.name) && r.contains("2 message")),
                "{plan:?}"
            );
            let error = provisioner::destroy(&env.clients, &spec)
                .await
                .expect_err("refused")
                .to_string();
            assert!(
                error.contains("2 message") && error.contains("--force"),
                "{error}"
            );
            assert!(!error.contains('\n'), "{error}");
            assert!(
                queue_url(&env, &spec.name).await.is_some(),
                "deleted with its messages"
            );

            // The plan with force lists exactly what destroy then deletes.
            let forced = Spec {
                force: true,
                ..spec.clone()
            };
            let plan = provisioner::plan_destroy(&env.clients, &forced)
                .await
                .expect("destroy plan");
            assert_eq!(plan.refusals, Vec::<String>::new());
            let report = provisioner::destroy(&env.clients, &forced)
                .await
                .expect("forced destroy");
            assert_eq!(report.deleted, plan.deletions);
            assert!(queue_url(&env, &spec.name).await.is_none());
        }
    };
    let result = tokio::spawn(body).await;
    let forced = Spec {
        force: true,
        ..spec.clone()
    };
    let _ = provisioner::destroy(&env.clients, &forced).await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic.into_panic());
    }
}

/// The clients under test and a plain SQS client.
#[derive(Clone)]
struct Env {
    clients: Clients,
    sqs: aws_sdk_sqs::Client,
}

impl Env {
    async fn new() -> Env {
        let options = testkit::localstack_options().await;
        let config = sdk_config(&options).await.expect("config");
        Env {
            clients: Clients::new(&options).await.expect("clients"),
            sqs: aws_sdk_sqs::Client::new(&config),
        }
    }
}

async fn queue_url(env: &Env, name: &str) -> Option<String> {
    env.sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .ok()
        .and_then(|o| o.queue_url)
}
