//! Against moto's server with IAM authorization on: the key the provisioner wrote may send to
//! its queue and do nothing else. LocalStack does not enforce IAM, so these are the tests that
//! see a real `AccessDenied`.
//!
//! Each test has a moto server of its own (turning authorization on changes the whole server),
//! provisions while authorization is still off, then turns it on and acts with the written key.
//!
//! Known deviation: moto checks `SendMessageBatch` as an action of its own, where AWS checks
//! `sqs:SendMessage` for it; the policy is not widened for moto, so the batch path is not tried
//! here (the LocalStack and conformance tests send batches with the same key).

use aws_access::connection::Format;
use aws_access::sdk::{AssumeRole, AwsOptions, StaticKey, sdk_config};
use aws_access::secret::Secret;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use provisioner::{Auth, Clients, OutFile, Spec};
use testkit::TempDir;

#[tokio::test(flavor = "multi_thread")]
async fn the_written_key_may_only_send_to_its_own_queue() {
    let server = start().await;
    let admin = options(&server, moto::ACCESS_KEY, moto::SECRET_KEY);
    let clients = Clients::new(&admin).await.expect("clients");
    let dir = TempDir::new("moto-user");
    let mut spec = Spec::new("orders");
    spec.out = Some(OutFile {
        path: dir.path().join("orders.json"),
        format: Format::Json,
    });
    let outcome = provisioner::apply(&clients, &spec).await.expect("apply");
    assert!(
        outcome.resources.queue_arn.contains(moto::ACCOUNT_ID),
        "{}",
        outcome.resources.queue_arn
    );
    let admin_sqs = aws_sdk_sqs::Client::new(&sdk_config(&admin).await.expect("sdk"));
    let other = admin_sqs
        .create_queue()
        .queue_name("someone-elses")
        .send()
        .await
        .expect("another queue");
    let other_url = other.queue_url().expect("its url").to_owned();

    server.enforce_iam().expect("IAM authorization on");

    let (config, _) =
        aws_access::connection::read(&dir.path().join("orders.json")).expect("the connection file");
    let key = options(
        &server,
        config.access_key.as_deref().expect("an access key"),
        config.access_secret.as_ref().expect("a secret").expose(),
    );
    let sdk = sdk_config(&key).await.expect("sdk");
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let iam = aws_sdk_iam::Client::new(&sdk);
    let url = config.queue_url.as_str();

    sqs.send_message()
        .queue_url(url)
        .message_body("allowed")
        .send()
        .await
        .expect("SendMessage to its own queue");

    check_denied(
        "ReceiveMessage",
        sqs.receive_message().queue_url(url).send().await,
    );
    check_denied(
        "DeleteMessage",
        sqs.delete_message()
            .queue_url(url)
            .receipt_handle("x")
            .send()
            .await,
    );
    check_denied("PurgeQueue", sqs.purge_queue().queue_url(url).send().await);
    check_denied(
        "SetQueueAttributes",
        sqs.set_queue_attributes()
            .queue_url(url)
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                "0",
            )
            .send()
            .await,
    );
    check_denied(
        "SendMessage to another queue",
        sqs.send_message()
            .queue_url(&other_url)
            .message_body("x")
            .send()
            .await,
    );
    check_denied("ListQueues", sqs.list_queues().send().await);
    check_denied("iam:ListUsers", iam.list_users().send().await);
    check_denied(
        "iam:CreateUser",
        iam.create_user().user_name("intruder").send().await,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_role_may_only_send_to_its_own_queue() {
    let server = start().await;
    let setup = options(&server, moto::ACCESS_KEY, moto::SECRET_KEY);
    let clients = Clients::new(&setup).await.expect("clients");
    let dir = TempDir::new("moto-role");
    let mut spec = Spec::new("orders");
    spec.auth = Auth::Role {
        trust_account: Some(moto::ACCOUNT_ID.to_owned()),
        external_id: None,
    };
    spec.out = Some(OutFile {
        path: dir.path().join("orders.json"),
        format: Format::Json,
    });
    provisioner::apply(&clients, &spec).await.expect("apply");
    let (config, _) =
        aws_access::connection::read(&dir.path().join("orders.json")).expect("the connection file");

    // The forwarder's own path: the SDK assumes the role from the file's ARN and external id.
    // It does so before authorization is on: moto 5.2.5 matches a trust policy's principal
    // literally against the caller's ARN (`_check_principal` in `moto/iam/access_control.py`),
    // so the account's `:root` that AWS reads as "any principal of the account" admits no user
    // and AssumeRole is refused whatever the external id. The trust policy is checked by
    // `verify` and on LocalStack; here the role's temporary credentials, cached by the SDK,
    // meet the enforcing IAM.
    let as_role = AwsOptions {
        assume_role: Some(AssumeRole {
            role_arn: config.role_arn.clone().expect("a role"),
            external_id: config.external_id.clone(),
        }),
        ..setup
    };
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&as_role).await.expect("sdk"));
    let url = config.queue_url.as_str();
    sqs.send_message()
        .queue_url(url)
        .message_body("before")
        .send()
        .await
        .expect("the role is assumed");

    server.enforce_iam().expect("IAM authorization on");

    sqs.send_message()
        .queue_url(url)
        .message_body("allowed")
        .send()
        .await
        .expect("SendMessage as the role");
    check_denied(
        "ReceiveMessage as the role",
        sqs.receive_message().queue_url(url).send().await,
    );
    check_denied("ListQueues as the role", sqs.list_queues().send().await);
}

async fn start() -> moto::Moto {
    tokio::task::spawn_blocking(|| moto::start(&moto::Config::from_env()))
        .await
        .expect("the moto launcher's thread")
        .unwrap_or_else(|e| panic!("moto does not start: {e}"))
}

/// Asserts that `result` is IAM's refusal, by its error code. Moto answers an unauthorised
/// request in the query protocol's XML even to SQS's JSON protocol, where the SDK finds no
/// code: then the code is read from the raw 403 answer.
fn check_denied<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    what: &str,
    result: Result<T, SdkError<E, HttpResponse>>,
) {
    let error = match result {
        Ok(answer) => panic!("{what} was allowed: {answer:?}"),
        Err(error) => error,
    };
    let raw = error.raw_response();
    let status = raw.map(|r| r.status().as_u16());
    let body = raw
        .and_then(|r| r.body().bytes())
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let code = match error.code() {
        Some(code) => code.to_owned(),
        None => body
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map(|(code, _)| code.to_owned())
            .unwrap_or_default(),
    };
    assert_eq!(
        (status, code.as_str()),
        (Some(403), "AccessDenied"),
        "{what}: expected a 403 AccessDenied, got {error:?}"
    );
}

fn options(server: &moto::Moto, access_key: &str, secret: &str) -> AwsOptions {
    AwsOptions {
        region: Some(moto::REGION.to_owned()),
        endpoint_url: Some(server.endpoint()),
        credentials: Some(StaticKey {
            access_key_id: access_key.to_owned(),
            secret: Secret::new(secret),
        }),
        ..AwsOptions::default()
    }
}
