//! Against the embedded LocalStack: apply, verify, send with the written key, apply again (no
//! change), destroy (twice, checked by listing); key rotation; role mode with AssumeRole; FIFO
//! with a dead-letter queue; the command line never printing the secret.
//!
//! Each test provisions its own resources under a unique name and destroys them, also when it
//! fails.

use std::future::Future;
use std::path::Path;
use std::process::Command;

use aws_access::connection::{Format, ForwarderConfig};
use aws_access::sdk::{AssumeRole, AwsOptions, StaticKey, sdk_config};
use provisioner::policy::{self, parse_trust_policy};
use provisioner::{Auth, Clients, OutFile, ProvisionError, Spec};
use testkit::{TempDir, unique};

#[tokio::test(flavor = "multi_thread")]
async fn user_mode_apply_verify_send_reapply_destroy() {
    let env = Env::new().await;
    let dir = TempDir::new("provisioner-test");
    let mut spec = Spec::new(unique("prov-user"));
    spec.out = Some(OutFile {
        path: dir.path().join("forwarder.json"),
        format: Format::Json,
    });
    guarded(&env, &spec, |env, spec| async move {
        let out = spec.out.clone().expect("out").path;
        let first = provisioner::apply(&env.clients, &spec).await.expect("apply");
        assert!(!first.is_unchanged(), "{:?}", first.changes);
        let key_id = first.config.access_key.clone().expect("an access key");
        testkit::leak::assert_clean("the outcome's Debug", &format!("{first:?}"), &[&secret_of(&out)]);

        // The file: mode 0600, the four values plus the endpoint, equal to the outcome.
        let (saved, warning) = aws_access::connection::read(&out).expect("the file reads back");
        assert_eq!(warning, None, "the file is private");
        assert_eq!(saved, first.config);
        assert_eq!(saved.region, localstack::REGION);
        assert_eq!(saved.endpoint.as_deref(), env.clients.endpoint());
        let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("read")).expect("json");
        let mut keys: Vec<&str> = raw.as_object().expect("object").keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["accessKey", "accessSecret", "endpoint", "queueURL", "region"]);

        let report = provisioner::verify(&env.clients, &spec).await.expect("verify");
        assert!(report.passed());
        let queue_arn = format!("arn:aws:sqs:{}:000000000000:{}", localstack::REGION, spec.name);
        assert_eq!(report.queue_arn, queue_arn);
        let expected = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "SendOnly", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn}]});
        assert_eq!(report.policy, Some(expected));

        // The written file alone drives a SendMessage.
        let sender = sqs_from_file(&out, None).await;
        sender.send_message().queue_url(&saved.queue_url).message_body("hello").send().await.expect("send with the key");
        assert_eq!(receive(&env, &saved.queue_url).await, ["hello"]);

        // Queue attributes as declared.
        let attributes = queue_attributes(&env, &saved.queue_url).await;
        assert_eq!(attributes.get("MaximumMessageSize").map(String::as_str), Some("1048576"));
        assert_eq!(attributes.get("SqsManagedSseEnabled").map(String::as_str), Some("true"));

        // Again: nothing changes, the key is kept.
        let second = provisioner::apply(&env.clients, &spec).await.expect("second apply");
        assert!(second.is_unchanged(), "{:?}", second.changes);
        assert_eq!(second.config.access_key.as_deref(), Some(key_id.as_str()));
        assert_eq!(second.config, saved);
        let plan = provisioner::plan(&env.clients, &spec).await.expect("plan");
        assert!(plan.changes.is_empty(), "{:?}", plan.changes);

        let report = provisioner::destroy(&env.clients, &forced(&spec)).await.expect("destroy");
        assert_eq!(report.failures, Vec::<String>::new());
        assert!(report.deleted.iter().any(|d| d.contains(&key_id)), "{report:?}");
        assert_gone(&env, &spec).await;
        let again = provisioner::destroy(&env.clients, &forced(&spec)).await.expect("second destroy");
        assert!(again.deleted.is_empty(), "{again:?}");
        assert_gone(&env, &spec).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_secret_is_rotated_only_when_asked() {
    let env = Env::new().await;
    let dir = TempDir::new("provisioner-test");
    let spec = Spec::new(unique("prov-rotate"));
    let out = dir.path().join("forwarder.env");
    guarded(&env, &spec, move |env, spec| async move {
        // The library path without a file: the key exists only in the outcome.
        let first = provisioner::apply(&env.clients, &spec)
            .await
            .expect("apply");
        let old = first.config.access_key.clone().expect("key");

        // Nothing holds its secret now: refuse, and say what to do.
        let error = provisioner::apply(&env.clients, &spec)
            .await
            .expect_err("unrecoverable");
        assert!(
            matches!(error, ProvisionError::KeyNotRecoverable { .. }),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains("--rotate-key") && message.contains(&old),
            "{message}"
        );
        assert!(!message.contains('\n'));

        // Rotate: a new key is written, then the old one deleted.
        let rotating = Spec {
            rotate_key: true,
            out: Some(OutFile {
                path: out.clone(),
                format: Format::Env,
            }),
            ..spec.clone()
        };
        let rotated = provisioner::apply(&env.clients, &rotating)
            .await
            .expect("rotate");
        let new = rotated.config.access_key.clone().expect("key");
        assert_ne!(new, old);
        assert_eq!(access_keys(&env, &spec).await, std::slice::from_ref(&new));
        let text = std::fs::read_to_string(&out).expect("env file");
        assert!(
            text.contains(&format!("ACCESS_KEY={new}\n")),
            "{}",
            text.lines().next().unwrap_or_default()
        );

        // With the file, the next apply keeps the new key.
        let kept = Spec {
            rotate_key: false,
            ..rotating
        };
        let again = provisioner::apply(&env.clients, &kept)
            .await
            .expect("apply with the file");
        assert!(again.is_unchanged(), "{:?}", again.changes);
        sqs_from_file(&out, None)
            .await
            .send_message()
            .queue_url(&again.config.queue_url)
            .message_body("rotated")
            .send()
            .await
            .expect("send with the rotated key");

        provisioner::destroy(&env.clients, &forced(&spec))
            .await
            .expect("destroy");
        assert_gone(&env, &spec).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn role_mode_assume_role_with_external_id() {
    let env = Env::new().await;
    let dir = TempDir::new("provisioner-test");
    let mut spec = Spec::new(unique("prov-role"));
    spec.auth = Auth::Role {
        trust_account: Some("000000000000".into()),
        external_id: None,
    };
    spec.out = Some(OutFile {
        path: dir.path().join("role.json"),
        format: Format::Json,
    });
    guarded(&env, &spec, |env, spec| async move {
        let outcome = provisioner::apply(&env.clients, &spec)
            .await
            .expect("apply");
        let config = outcome.config.clone();
        assert_eq!(config.access_key, None);
        assert_eq!(config.access_secret, None);
        let role_arn = config.role_arn.clone().expect("roleArn");
        let external_id = config.external_id.clone().expect("externalId");
        assert!(
            external_id.len() == 64 && external_id.bytes().all(|b| b.is_ascii_hexdigit()),
            "a generated external id is 256 random bits in hex: {external_id}"
        );
        assert_eq!(
            aws_access::connection::read(&outcome.out.clone().expect("out"))
                .expect("file")
                .0,
            config
        );

        let report = provisioner::verify(&env.clients, &spec)
            .await
            .expect("verify");
        // The trust policy, as a document (LocalStack does not enforce it): only the trusted
        // account, only with the external id.
        let trust = report.trust.clone().expect("trust policy");
        let parsed = parse_trust_policy(&trust).expect("exactly the expected shape");
        assert_eq!(parsed.account.as_str(), "000000000000");
        assert_eq!(parsed.external_id.as_str(), external_id);
        assert_eq!(
            trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"],
            external_id.as_str()
        );
        assert_eq!(
            trust["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::000000000000:root"
        );
        assert_eq!(trust["Statement"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            trust,
            policy::trust_policy("aws", &parsed.account, &parsed.external_id).to_value()
        );

        // AssumeRole with the external id succeeds...
        let sts = aws_sdk_sts::Client::new(&sdk_config(&env.options).await.expect("config"));
        let assumed = sts
            .assume_role()
            .role_arn(&role_arn)
            .role_session_name("provisioner-test")
            .external_id(&external_id)
            .send()
            .await
            .expect("AssumeRole with the external id");
        assert!(assumed.credentials().is_some());
        // ...and its temporary credentials send a message.
        let sender = sqs_from_file(&outcome.out.clone().expect("out"), Some(&env.options)).await;
        sender
            .send_message()
            .queue_url(&config.queue_url)
            .message_body("via role")
            .send()
            .await
            .expect("send as the role");
        assert_eq!(receive(&env, &config.queue_url).await, ["via role"]);

        // Again: no change, the external id is kept.
        let again = provisioner::apply(&env.clients, &spec)
            .await
            .expect("second apply");
        assert!(again.is_unchanged(), "{:?}", again.changes);
        assert_eq!(
            again.config.external_id.as_deref(),
            Some(external_id.as_str())
        );

        let report = provisioner::destroy(&env.clients, &forced(&spec))
            .await
            .expect("destroy");
        assert!(
            report.deleted.iter().any(|d| d.starts_with("role `")),
            "{report:?}"
        );
        assert_gone(&env, &spec).await;
        provisioner::destroy(&env.clients, &forced(&spec))
            .await
            .expect("second destroy");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fifo_queue_with_dead_letter_queue() {
    let env = Env::new().await;
    let dir = TempDir::new("provisioner-test");
    let mut spec = Spec::new(unique("prov-fifo"));
    spec.fifo = true;
    spec.dlq = true;
    spec.out = Some(OutFile {
        path: dir.path().join("fifo.json"),
        format: Format::Json,
    });
    guarded(&env, &spec, |env, spec| async move {
        let outcome = provisioner::apply(&env.clients, &spec)
            .await
            .expect("apply");
        let name = format!("{}.fifo", spec.name);
        assert_eq!(outcome.resources.queue_name, name);
        let (dlq_name, dlq_url, dlq_arn) = outcome.resources.dlq.clone().expect("a DLQ");
        assert_eq!(dlq_name, format!("{}-dlq.fifo", spec.name));
        assert_eq!(
            outcome.resources.principal_name,
            format!("{}.fifo-forwarder", spec.name)
        );

        let attributes = queue_attributes(&env, &outcome.config.queue_url).await;
        assert_eq!(
            attributes.get("FifoQueue").map(String::as_str),
            Some("true")
        );
        assert_eq!(
            attributes.get("MaximumMessageSize").map(String::as_str),
            Some("1048576")
        );
        let redrive: serde_json::Value =
            serde_json::from_str(attributes.get("RedrivePolicy").expect("a redrive policy"))
                .expect("json");
        assert_eq!(redrive["deadLetterTargetArn"], dlq_arn.as_str());
        assert_eq!(
            redrive["maxReceiveCount"].to_string().trim_matches('"'),
            "5"
        );
        let dlq_attributes = queue_attributes(&env, &dlq_url).await;
        assert_eq!(
            dlq_attributes.get("FifoQueue").map(String::as_str),
            Some("true")
        );

        provisioner::verify(&env.clients, &spec)
            .await
            .expect("verify");
        sqs_from_file(&outcome.out.clone().expect("out"), None)
            .await
            .send_message()
            .queue_url(&outcome.config.queue_url)
            .message_body("first")
            .message_group_id("g")
            .message_deduplication_id("1")
            .send()
            .await
            .expect("send to the FIFO queue");

        let again = provisioner::apply(&env.clients, &spec)
            .await
            .expect("second apply");
        assert!(again.is_unchanged(), "{:?}", again.changes);

        let report = provisioner::destroy(&env.clients, &forced(&spec))
            .await
            .expect("destroy");
        assert!(
            report.deleted.contains(&format!("queue `{dlq_name}`")),
            "{report:?}"
        );
        assert_gone(&env, &spec).await;
        provisioner::destroy(&env.clients, &forced(&spec))
            .await
            .expect("second destroy");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_line_never_prints_the_secret() {
    let env = Env::new().await;
    let dir = TempDir::new("provisioner-test");
    let spec = Spec::new(unique("prov-cli"));
    let out = dir.path().join("cli.json");
    guarded(&env, &spec, move |env, spec| async move {
        let args: Vec<String> = vec![
            "--name".into(),
            spec.name.clone(),
            "--out".into(),
            out.to_str().expect("utf-8").into(),
        ];
        let options = env.options.clone();
        let (stdout, stderr) = tokio::task::spawn_blocking(move || {
            let run = |command: &str| {
                let output = testkit::on_localstack(
                    Command::new(env!("CARGO_BIN_EXE_provisioner")).arg(command),
                    &options,
                )
                .args(&args)
                .output()
                .expect("runs");
                let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
                let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
                assert!(output.status.success(), "{command}: {stdout}{stderr}");
                (stdout, stderr)
            };
            let first = run("apply");
            let second = run("apply");
            assert!(second.0.contains("no changes"), "{}", second.0);
            let verify = run("verify");
            assert!(
                verify.0.contains("least privilege verified"),
                "{}",
                verify.0
            );
            (
                format!("{}{}{}", first.0, second.0, verify.0),
                format!("{}{}{}", first.1, second.1, verify.1),
            )
        })
        .await
        .expect("join");
        let secret = secret_of(&out);
        let config = aws_access::connection::read(&out).expect("file").0;
        assert!(
            stdout.contains(config.access_key.as_deref().expect("key id")),
            "{stdout}"
        );
        assert!(stdout.contains(out.to_str().expect("utf-8")), "{stdout}");
        testkit::leak::assert_clean(
            "provisioner apply",
            &format!("{stdout}{stderr}"),
            &[&secret],
        );

        provisioner::destroy(&env.clients, &forced(&spec))
            .await
            .expect("destroy");
        assert_gone(&env, &spec).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_repaired_and_foreign_resources_are_left_alone() {
    let env = Env::new().await;
    let dir = TempDir::new("provisioner-test");
    let mut spec = Spec::new(unique("prov-drift"));
    spec.out = Some(OutFile {
        path: dir.path().join("drift.json"),
        format: Format::Json,
    });
    let foreign = Spec::new(unique("prov-foreign"));
    guarded(&env, &spec, move |env, spec| async move {
        let outcome = provisioner::apply(&env.clients, &spec)
            .await
            .expect("apply");
        let url = outcome.config.queue_url.clone();
        env.sqs
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize,
                "262144",
            )
            .send()
            .await
            .expect("drift");
        let plan = provisioner::plan(&env.clients, &spec).await.expect("plan");
        let changes: Vec<String> = plan.changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            changes,
            [format!(
                "set attributes of queue `{}`: MaximumMessageSize=1048576",
                spec.name
            )]
        );
        let repaired = provisioner::apply(&env.clients, &spec)
            .await
            .expect("repair");
        assert!(
            repaired
                .changes
                .iter()
                .any(|c| matches!(c, provisioner::Change::SetQueueAttributes { .. }))
        );
        assert_eq!(
            queue_attributes(&env, &url)
                .await
                .get("MaximumMessageSize")
                .map(String::as_str),
            Some("1048576")
        );

        // A queue of the same name that this tool did not create is neither taken over nor
        // deleted.
        let foreign_url = env
            .sqs
            .create_queue()
            .queue_name(&foreign.name)
            .send()
            .await
            .expect("a foreign queue")
            .queue_url
            .expect("url");
        let error = provisioner::apply(&env.clients, &foreign)
            .await
            .expect_err("not ours");
        assert!(
            matches!(error, ProvisionError::NotManaged { .. }),
            "{error}"
        );
        let error = provisioner::destroy(&env.clients, &foreign)
            .await
            .expect_err("not ours");
        assert!(
            error.to_string().contains("was not created by this tool"),
            "{error}"
        );
        assert!(
            env.sqs
                .get_queue_url()
                .queue_name(&foreign.name)
                .send()
                .await
                .is_ok(),
            "the foreign queue was deleted"
        );
        env.sqs
            .delete_queue()
            .queue_url(&foreign_url)
            .send()
            .await
            .expect("clean up the foreign queue");

        provisioner::destroy(&env.clients, &forced(&spec))
            .await
            .expect("destroy");
        assert_gone(&env, &spec).await;
    })
    .await;
}

/// The clients under test and plain SDK clients to check what exists.
#[derive(Clone)]
struct Env {
    clients: Clients,
    options: AwsOptions,
    sqs: aws_sdk_sqs::Client,
    iam: aws_sdk_iam::Client,
}

impl Env {
    async fn new() -> Env {
        let options = testkit::localstack_options().await;
        let config = sdk_config(&options).await.expect("config");
        Env {
            clients: Clients::new(&options).await.expect("clients"),
            sqs: aws_sdk_sqs::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            options,
        }
    }
}

/// Runs `body`; if it panics, destroys what it provisioned before passing the panic on.
async fn guarded<F, Fut>(env: &Env, spec: &Spec, body: F)
where
    F: FnOnce(Env, Spec) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let result = tokio::spawn(body(env.clone(), spec.clone())).await;
    if let Err(error) = result {
        let _ = provisioner::destroy(&env.clients, &forced(spec)).await;
        std::panic::resume_unwind(error.into_panic());
    }
}

/// An SQS client built only from a configuration file's values (and, for a role, the
/// credentials that assume it).
async fn sqs_from_file(path: &Path, assumer: Option<&AwsOptions>) -> aws_sdk_sqs::Client {
    let (config, _) = aws_access::connection::read(path).expect("the file reads back");
    let options = match (&config.access_key, &config.access_secret, &config.role_arn) {
        (Some(id), Some(secret), _) => AwsOptions {
            region: Some(config.region.clone()),
            endpoint_url: config.endpoint.clone(),
            credentials: Some(StaticKey {
                access_key_id: id.clone(),
                secret: secret.clone(),
            }),
            ..AwsOptions::default()
        },
        (_, _, Some(role_arn)) => AwsOptions {
            region: Some(config.region.clone()),
            endpoint_url: config.endpoint.clone(),
            credentials: assumer.and_then(|a| a.credentials.clone()),
            assume_role: Some(AssumeRole {
                role_arn: role_arn.clone(),
                external_id: config.external_id.clone(),
            }),
            ..AwsOptions::default()
        },
        _ => panic!("the file holds neither a key nor a role"),
    };
    aws_sdk_sqs::Client::new(&sdk_config(&options).await.expect("config from the file"))
}

fn secret_of(path: &Path) -> String {
    let (config, _): (ForwarderConfig, _) = aws_access::connection::read(path).expect("file");
    config.access_secret.expect("a secret").expose().to_owned()
}

async fn receive(env: &Env, url: &str) -> Vec<String> {
    testkit::drain(&env.sqs, url, 1)
        .await
        .into_iter()
        .map(|m| m.body)
        .collect()
}

async fn queue_attributes(env: &Env, url: &str) -> std::collections::HashMap<String, String> {
    let out = env
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .expect("attributes");
    out.attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.as_str().to_owned(), v))
        .collect()
}

async fn access_keys(env: &Env, spec: &Spec) -> Vec<String> {
    let user = spec.names().expect("names").principal;
    let out = env
        .iam
        .list_access_keys()
        .user_name(user.as_str())
        .send()
        .await
        .expect("keys");
    out.access_key_metadata
        .into_iter()
        .filter_map(|k| k.access_key_id)
        .collect()
}

/// Checks by listing that no queue, DLQ, user, role, policy or key is left.
async fn assert_gone(env: &Env, spec: &Spec) {
    let names = spec.names().expect("names");
    let mut queues = vec![names.queue.clone()];
    queues.extend(names.queue.dlq().ok());
    for queue in queues {
        let result = env
            .sqs
            .get_queue_url()
            .queue_name(queue.as_str())
            .send()
            .await;
        let missing = result
            .as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_queue_does_not_exist());
        assert!(missing, "queue {queue} is still there: {result:?}");
        let listed = env
            .sqs
            .list_queues()
            .queue_name_prefix(queue.as_str())
            .send()
            .await
            .expect("list queues");
        let urls = listed.queue_urls.unwrap_or_default();
        assert!(
            !urls.iter().any(|u| u.ends_with(&format!("/{queue}"))),
            "{urls:?}"
        );
    }
    let principal = names.principal.as_str();
    let users = env.iam.list_users().send().await.expect("list users").users;
    assert!(
        !users.iter().any(|u| u.user_name == principal),
        "user {principal} is still there"
    );
    let roles = env.iam.list_roles().send().await.expect("list roles").roles;
    assert!(
        !roles.iter().any(|r| r.role_name == principal),
        "role {principal} is still there"
    );
    let keys = env.iam.list_access_keys().user_name(principal).send().await;
    let no_user = keys
        .as_ref()
        .err()
        .and_then(|e| e.as_service_error())
        .is_some_and(|e| e.is_no_such_entity_exception());
    assert!(
        no_user || keys.is_ok_and(|k| k.access_key_metadata.is_empty()),
        "keys are left"
    );
    let policy = env
        .iam
        .get_user_policy()
        .user_name(principal)
        .policy_name(provisioner::POLICY_NAME)
        .send()
        .await;
    assert!(policy.is_err(), "the inline policy is still there");
}

/// `spec` with `force`: these tests leave messages in their queues, and destroy keeps a queue
/// that holds messages unless forced.
fn forced(spec: &Spec) -> Spec {
    Spec {
        force: true,
        ..spec.clone()
    }
}
