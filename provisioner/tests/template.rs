//! `provisioner template`: the printed CloudFormation template passes `cfn-lint`, deploys on
//! LocalStack's CloudFormation, and what it creates passes `provisioner::verify`; bad input is
//! a one-line error.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use aws_access::sdk::sdk_config;
use aws_sdk_cloudformation::types::{Capability, StackStatus};
use provisioner::{Auth, Clients, Spec};

#[tokio::test(flavor = "multi_thread")]
async fn the_template_lints_deploys_and_verifies() {
    let options = testkit::localstack_options().await;
    let sdk = sdk_config(&options).await.expect("sdk");
    let clients = Clients::new(&options).await.expect("clients");
    // The trusted account is LocalStack's own, whatever it is, so that the role can be verified.
    let account = aws_sdk_sts::Client::new(&sdk)
        .get_caller_identity()
        .send()
        .await
        .expect("caller")
        .account()
        .expect("an account")
        .to_owned();
    let name = testkit::unique("tpl");
    let printed = template(&[
        "--auth",
        "role",
        "--name",
        &name,
        "--trust-account",
        &account,
        "--region",
        localstack::REGION,
    ]);
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let text = String::from_utf8(printed.stdout).expect("utf-8");

    let file = std::env::temp_dir().join(format!("{name}.template.json"));
    std::fs::write(&file, &text).expect("write the template");
    let lint = lint(&file);
    let _ = std::fs::remove_file(&file);
    assert!(
        lint.status.success(),
        "cfn-lint: {}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );

    let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
    cloudformation
        .create_stack()
        .stack_name(&name)
        .template_body(&text)
        .capabilities(Capability::CapabilityNamedIam)
        .send()
        .await
        .expect("create the stack");
    let stack = wait_for(&cloudformation, &name, StackStatus::CreateComplete).await;
    let output = |key: &str| {
        stack
            .outputs()
            .iter()
            .find(|o| o.output_key() == Some(key))
            .and_then(|o| o.output_value())
            .unwrap_or_else(|| panic!("no output {key}: {stack:?}"))
            .to_owned()
    };
    let spec = Spec {
        auth: Auth::Role {
            trust_account: Some(account.clone()),
            external_id: Some(output("ExternalId")),
        },
        ..Spec::new(&name)
    };
    let verified = provisioner::verify(&clients, &spec).await;
    cloudformation
        .delete_stack()
        .stack_name(&name)
        .send()
        .await
        .expect("delete the stack");
    let report = verified.expect("verify");
    assert!(report.passed(), "{:?}", report.failures());
    assert_eq!(
        report.principal_arn.as_deref(),
        Some(output("RoleArn").as_str())
    );
    assert_eq!(report.queue_arn, output("QueueArn"));
    assert!(
        output("QueueUrl").ends_with(&format!("/{name}")),
        "{}",
        output("QueueUrl")
    );
}

#[test]
fn bad_input_is_a_one_line_error() {
    check_refused(
        &["--auth", "role", "--region", "eu-west-1"],
        "--trust-account",
    );
    check_refused(
        &[
            "--auth",
            "role",
            "--trust-account",
            "111122223333",
            "--region",
            "us-iso-east-1",
        ],
        "aws-iso",
    );
    check_refused(
        &[
            "--auth",
            "role",
            "--trust-account",
            "111122223333",
            "--name",
            "bad name",
        ],
        "name",
    );
    check_refused(
        &["--trust-account", "111122223333", "--auth", "user"],
        "--auth role",
    );
}

fn check_refused(args: &[&str], expected: &str) {
    let output = template(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{args:?} succeeded");
    assert!(output.stdout.is_empty(), "{args:?} printed a template");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
}

fn template(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["template", "--format", "cloudformation"])
        .args(args)
        .output()
        .expect("run provisioner")
}

fn lint(file: &PathBuf) -> Output {
    let cfn_lint = moto::tool(&moto::Config::from_env(), moto::Tool::CfnLint)
        .unwrap_or_else(|e| panic!("cfn-lint: {e}"));
    Command::new(cfn_lint)
        .arg(file)
        .output()
        .expect("run cfn-lint")
}

/// Polls until the stack reaches `goal`; any other settled status fails with the stack's events.
async fn wait_for(
    cloudformation: &aws_sdk_cloudformation::Client,
    name: &str,
    goal: StackStatus,
) -> aws_sdk_cloudformation::types::Stack {
    loop {
        let described = cloudformation
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .expect("describe");
        let stack = described.stacks().first().cloned().expect("the stack");
        let status = stack.stack_status().cloned().expect("a status");
        if status == goal {
            return stack;
        }
        if !status.as_str().ends_with("_IN_PROGRESS") {
            let events = cloudformation
                .describe_stack_events()
                .stack_name(name)
                .send()
                .await;
            panic!("stack {name} is {status:?}, not {goal:?}: {events:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
