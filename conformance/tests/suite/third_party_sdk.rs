//! The judge passes what a third-party SDK makes: events built by the Python CloudEvents SDK
//! (`conformance/examples/cloudevents_sdk_producer.py`, the pinned environment of the `moto`
//! crate), sent to a queue in binary and in structured mode, all judged conformant by the real
//! `conformance check` binary.

use std::process::Command;

use serde_json::Value;
use testkit::binary::{built, workspace_root};
use testkit::localstack_env::{localstack_options, on_localstack};

use crate::common::{Fixture, QueueKind};

#[tokio::test]
async fn events_from_the_python_cloudevents_sdk_pass_in_both_modes() {
    let fixture = Fixture::new("third-party-sdk", QueueKind::Standard).await;
    let options = localstack_options().await;
    let python = moto::tool(&moto::Config::from_env(), moto::Tool::Boto3)
        .unwrap_or_else(|e| panic!("the boto3 environment: {e}"));
    let produced = Command::new(python)
        .arg(workspace_root().join("conformance/examples/cloudevents_sdk_producer.py"))
        .arg(&fixture.queue_url)
        .env(
            "AWS_ENDPOINT_URL",
            options.endpoint_url.as_deref().unwrap_or_default(),
        )
        .env("AWS_DEFAULT_REGION", localstack::REGION)
        .env("AWS_ACCESS_KEY_ID", localstack::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", localstack::SECRET_KEY)
        .env_remove("AWS_PROFILE")
        .output()
        .expect("the SDK producer runs");
    assert!(
        produced.status.success(),
        "{}",
        String::from_utf8_lossy(&produced.stderr)
    );
    let mut check = Command::new(built("conformance", "conformance"));
    check.args([
        "check",
        "--delete",
        "--show",
        "--format",
        "json",
        "--queue-url",
        &fixture.queue_url,
    ]);
    on_localstack(&mut check, &options);
    let output = check.output().expect("conformance check runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json_start = stdout.find("{\n").unwrap_or_default();
    let report: Value = serde_json::from_str(&stdout[json_start..])
        .unwrap_or_else(|e| panic!("the report is JSON ({e}): {stdout}"));
    assert_eq!(report["summary"]["conformant"], 6, "{stdout}");
    assert_eq!(report["summary"]["not_conformant"], 0, "{stdout}");
    assert_eq!(output.status.code(), Some(0), "{stdout}");
}
