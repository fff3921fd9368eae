//! Role mode end to end: `provisioner apply --auth role` writes `roleArn` and `externalId`
//! instead of a key, and the forwarder, holding only the trusted account's own credentials,
//! assumes that role with the external id and delivers through it.

use std::process::Stdio;

use provisioner::{Auth, Clients, OutFile, Spec};

use crate::common::forwarder_binary;

#[tokio::test]
async fn the_forwarder_assumes_the_role_and_delivers() {
    let name = format!(
        "ce-role-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("conformance-suite")
        .join(&name);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let config_path = dir.join("forwarder.json");
    let spec = Spec {
        auth: Auth::Role {
            trust_account: Some("000000000000".to_owned()),
            external_id: None,
        },
        out: Some(OutFile {
            path: config_path.clone(),
            format: aws_access::connection::Format::Json,
        }),
        ..Spec::new(&name)
    };
    let options = testkit::localstack_options().await;
    let clients = Clients::new(&options).await.expect("AWS clients");
    let outcome = provisioner::apply(&clients, &spec).await;
    let result = async {
        let outcome = outcome.map_err(|e| format!("apply: {e}"))?;
        let config = &outcome.config;
        if config.access_key.is_some() || config.role_arn.is_none() || config.external_id.is_none() {
            return Err(format!("role mode writes roleArn and externalId, no key: {config:?}"));
        }
        let input = dir.join("events.ndjson");
        let line = r#"{"specversion":"1.0","id":"role-1","source":"/platform","type":"t","data":{"n":1.50}}"#;
        std::fs::write(&input, format!("{line}\n")).map_err(|e| e.to_string())?;
        // The platform's own identity (LocalStack's account), from the environment: the
        // forwarder assumes the role with it.
        let output = tokio::process::Command::new(forwarder_binary())
            .args(["send", "--summary-json", "--config"])
            .arg(&config_path)
            .arg(&input)
            .env("AWS_ACCESS_KEY_ID", localstack::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", localstack::SECRET_KEY)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(format!("forwarder: {}", String::from_utf8_lossy(&output.stderr)));
        }
        let sdk = aws_access::sdk::sdk_config(&options).await.map_err(|e| e.to_string())?;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let received = sqs
            .receive_message()
            .queue_url(&outcome.resources.queue_url)
            .wait_time_seconds(2)
            .send()
            .await
            .map_err(|e| format!("receive: {e:?}"))?;
        let bodies: Vec<String> =
            received.messages().iter().filter_map(|m| m.body()).map(str::to_owned).collect();
        if bodies != [line] {
            return Err(format!("the queue holds {bodies:?}"));
        }
        for message in received.messages() {
            let verdict = conformance::judge(&conformance::Message {
                message_id: message.message_id().unwrap_or_default().to_owned(),
                body: message.body().unwrap_or_default().to_owned(),
                attributes: Default::default(),
                group_id: None,
            });
            if !verdict.conformant {
                return Err(format!("not conformant: {:?}", verdict.problems));
            }
            // Judged, so consumed: destroy refuses a queue that still holds messages.
            sqs.delete_message()
                .queue_url(&outcome.resources.queue_url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(|e| format!("delete: {e:?}"))?;
        }
        Ok(())
    }
    .await;
    let destroyed = provisioner::destroy(&clients, &spec).await;
    let _ = std::fs::remove_dir_all(&dir);
    result.unwrap_or_else(|e| panic!("{e}"));
    destroyed.unwrap_or_else(|e| panic!("destroy: {e}"));
}
