//! Against the embedded LocalStack: apply writes a queue policy that denies plain HTTP and grants
//! nothing; plan shows its drift and apply repairs it on a queue it owns.
//!
//! The test provisions its own resources under a unique name and destroys them, also when it
//! fails.

use aws_access::sdk::sdk_config;
use aws_sdk_sqs::types::QueueAttributeName;
use provisioner::{Auth, Clients, Spec};

#[tokio::test(flavor = "multi_thread")]
async fn the_queue_policy_is_written_shown_drifting_and_repaired() {
    let options = testkit::localstack_options().await;
    let config = sdk_config(&options).await.expect("config");
    let clients = Clients::new(&options).await.expect("clients");
    let sqs = aws_sdk_sqs::Client::new(&config);
    // Role mode: a second apply needs no key file.
    let spec = Spec {
        auth: Auth::Role {
            trust_account: Some("111111111111".to_owned()),
            external_id: None,
        },
        ..Spec::new(testkit::unique("qpolicy"))
    };
    let body = {
        let (clients, spec) = (clients.clone(), spec.clone());
        async move {
            let outcome = provisioner::apply(&clients, &spec).await.expect("apply");
            let url = outcome.config.queue_url.clone();
            let policy = || async {
                let out = sqs
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(QueueAttributeName::Policy)
                    .send()
                    .await
                    .expect("attributes");
                let text = out
                    .attributes
                    .unwrap_or_default()
                    .remove(&QueueAttributeName::Policy)
                    .unwrap_or_default();
                serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default()
            };
            let written = policy().await;
            let statement = &written["Statement"][0];
            assert_eq!(statement["Effect"], "Deny", "{written}");
            assert_eq!(
                statement["Condition"]["Bool"]["aws:SecureTransport"], "false",
                "{written}"
            );
            assert_eq!(written["Statement"].as_array().map(Vec::len), Some(1));

            // Someone opens the queue: plan names the drift, apply repairs it.
            let open = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "Open", "Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Resource": outcome.resources.queue_arn}]});
            sqs.set_queue_attributes()
                .queue_url(&url)
                .attributes(QueueAttributeName::Policy, open.to_string())
                .send()
                .await
                .expect("open the queue");
            let plan = provisioner::plan(&clients, &spec).await.expect("plan");
            let changes: Vec<String> = plan.changes.iter().map(ToString::to_string).collect();
            assert!(
                changes
                    .iter()
                    .any(|c| c.contains("set attributes of queue") && c.contains("Policy")),
                "{changes:?}"
            );
            assert!(provisioner::verify(&clients, &spec).await.is_err());
            provisioner::apply(&clients, &spec).await.expect("repair");
            assert_eq!(policy().await, written);
            provisioner::verify(&clients, &spec)
                .await
                .expect("verify after the repair");
        }
    };
    let result = tokio::spawn(body).await;
    let forced = Spec {
        force: true,
        ..spec.clone()
    };
    let destroyed = provisioner::destroy(&clients, &forced).await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic.into_panic());
    }
    destroyed.expect("destroy");
}
