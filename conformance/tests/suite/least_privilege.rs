//! Least privilege: the fixture runs `provisioner::verify` for every user it provisions (IAM's
//! policy simulator allows `sqs:SendMessage` on the queue and denies the rest); here the policy
//! document IAM stores for the user, read back with `GetUserPolicy` and URL-decoded, must equal
//! the snapshot: one statement, one action, one queue.

use insta::internals::Content;
use serde_json::Value;

use crate::common::{Fixture, QueueKind};
use provisioner::names::{Principal, PrincipalKind};

#[tokio::test]
async fn stored_policy_allows_only_sending_to_a_standard_queue() {
    check("policy-std", QueueKind::Standard, "policy_standard").await;
}

#[tokio::test]
async fn stored_policy_allows_only_sending_to_a_fifo_queue() {
    check("policy-fifo", QueueKind::Fifo, "policy_fifo").await;
}

async fn check(label: &str, kind: QueueKind, snapshot: &str) {
    let fixture = Fixture::new(label, kind).await;
    let stored = fixture
        .clients()
        .iam
        .inline_policy(
            &Principal::new(PrincipalKind::User, &fixture.user_name),
            provisioner::POLICY_NAME,
        )
        .await
        .expect("GetUserPolicy")
        .expect("the user has the policy");
    let document: Value = provisioner::policy::decode_document(&stored)
        .unwrap_or_else(|err| panic!("{err}: {stored}"));
    // The queue's name is unique to the run: `ce-LABEL-` and 16 hexadecimal digits.
    let prefix = format!("ce-{label}-");
    let name = fixture.queue_name.clone();
    let mut settings = crate::common::snapshot_settings();
    settings.add_redaction(
        ".Statement[].Resource",
        insta::dynamic_redaction(move |value: Content, path| {
            let arn = value
                .as_str()
                .unwrap_or_else(|| panic!("{path}: not a string"));
            let (base, fifo) = match name.strip_suffix(".fifo") {
                Some(base) => (base, ".fifo"),
                None => (name.as_str(), ""),
            };
            let unique = base.strip_prefix(&prefix).expect("the fixture's naming");
            assert!(
                unique.len() == 16 && unique.bytes().all(|b| b.is_ascii_hexdigit()),
                "{path}: unexpected queue name {name:?}"
            );
            let account_and_region = format!("arn:aws:sqs:{}:000000000000:", localstack::REGION);
            assert_eq!(arn, format!("{account_and_region}{name}"), "{path}");
            format!("{account_and_region}{prefix}[unique]{fifo}")
        }),
    );
    settings.bind(|| insta::assert_json_snapshot!(snapshot, document));
    fixture.destroy().await;
}
