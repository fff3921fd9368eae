//! The access secret never shows: every command of the provisioner and the forwarder runs at
//! trace level (`RUST_LOG=trace`, `--log-level trace`) with a known secret, through success and
//! error paths, and all of their output is searched for it. `Debug` output of every type that
//! holds one is searched too.
//!
//! The provisioner writes a secret LocalStack made into its `--out` file; the forwarder reads a
//! file holding a canary secret (LocalStack accepts any).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use aws_access::connection::ForwarderConfig;
use aws_access::sdk::{AwsOptions, StaticKey, sdk_config};
use aws_access::secret::Secret;
use aws_credential_types::provider::ProvideCredentials;

use support::{Running, TestQueue};

/// Everything the commands printed, by command.
#[derive(Debug, Default)]
struct Transcript {
    outputs: Vec<(String, String)>,
}

impl Transcript {
    /// Runs `command` at trace level and keeps its output.
    fn run(&mut self, label: &str, command: &mut Command) -> Output {
        let output = command
            .env("RUST_LOG", "trace")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        self.keep(label, &output.stdout, &output.stderr);
        output
    }

    fn keep(&mut self, label: &str, stdout: &[u8], stderr: &[u8]) {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(stdout),
            String::from_utf8_lossy(stderr)
        );
        self.outputs.push((label.to_owned(), text));
    }

    /// No output holds any of `secrets`, whole, in part, or percent-encoded.
    fn assert_clean(&self, secrets: &[&str]) {
        let mut total = 0;
        for (label, text) in &self.outputs {
            total += text.len();
            testkit::leak::assert_clean(label, text, secrets);
        }
        eprintln!(
            "searched {total} bytes of output of {} runs",
            self.outputs.len()
        );
        // Trace level really was on: the searched output is substantial.
        assert!(total > 10_000, "only {total} bytes of output were searched");
    }
}

/// The provisioner binary, built for this run so that it is never a stale one.
fn provisioner() -> PathBuf {
    testkit::binary::built("provisioner", "provisioner")
}

fn provision(
    transcript: &mut Transcript,
    options: &AwsOptions,
    command: &str,
    name: &str,
    extra: &[&str],
) -> Output {
    let output = transcript.run(
        &format!("provisioner {command} {}", extra.join(" ")),
        testkit::on_localstack(
            Command::new(provisioner()).args([command, "--name", name]),
            options,
        )
        .args(extra),
    );
    assert!(
        output.status.success(),
        "provisioner {command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_command_prints_the_secret_the_provisioner_made() {
    let queue = TestQueue::new("secrets").await;
    let name = format!("sec{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let json = queue.dir.join("forwarder.json");
    let env = queue.dir.join("forwarder.env");
    let out = |path: &Path| path.to_str().expect("utf-8 path").to_owned();
    let mut transcript = Transcript::default();
    let options = testkit::localstack_options().await;

    provision(
        &mut transcript,
        &options,
        "plan",
        &name,
        &["--out", &out(&json)],
    );
    provision(
        &mut transcript,
        &options,
        "apply",
        &name,
        &["--out", &out(&json)],
    );
    let first: ForwarderConfig =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("config")).expect("json");
    let first = first.access_secret.expect("a secret").expose().to_owned();
    assert!(first.len() >= 16, "LocalStack made a real secret");
    assert_eq!(mode(&json), 0o600);
    provision(
        &mut transcript,
        &options,
        "verify",
        &name,
        &["--out", &out(&json)],
    );
    provision(
        &mut transcript,
        &options,
        "plan",
        &name,
        &["--out", &out(&json)],
    );
    provision(
        &mut transcript,
        &options,
        "apply",
        &name,
        &["--out", &out(&env), "--format", "env", "--rotate-key"],
    );
    let second = std::fs::read_to_string(&env)
        .expect("env config")
        .lines()
        .find_map(|l| l.strip_prefix("ACCESS_SECRET="))
        .expect("ACCESS_SECRET")
        .trim_matches('"')
        .to_owned();
    assert_ne!(first, second, "the key was rotated");
    assert_eq!(mode(&env), 0o600);

    let input = queue.dir.join("input.ndjson");
    support::write_lines(&input, &[support::event_line("secret-1", 1, 10)]);
    for config in [&env, &json] {
        // The provisioned queue is the file's; LocalStack does not check the key.
        let output = transcript.run(
            &format!("forwarder send --config {}", config.display()),
            support::forwarder()
                .args(["send", "--log-level", "trace", "--summary-json", "--config"])
                .arg(config)
                .arg(&input)
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY"),
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    provision(
        &mut transcript,
        &options,
        "destroy",
        &name,
        &["--force", "--out", &out(&json)],
    );
    provision(
        &mut transcript,
        &options,
        "destroy",
        &name,
        &["--force", "--out", &out(&json)],
    );
    transcript.assert_clean(&[&first, &second]);
}

/// A configuration file of the canary's, mode 0600.
fn canary_config(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    aws_access::connection::write_private(&path, text).expect("write config");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarder_never_prints_a_configured_secret() {
    let queue = TestQueue::new("secrets-canary").await;
    let canary = format!("SECRET-CANARY-{}", uuid::Uuid::new_v4().simple());
    let token = format!("TOKEN-CANARY-{}", uuid::Uuid::new_v4().simple());
    let wrong = format!("WRONG-CANARY-{}", uuid::Uuid::new_v4().simple());
    let good = format!(
        r#"{{"queueURL":"{}","region":"{}","accessKey":"AKIACANARY","accessSecret":"{canary}","endpoint":"{}"}}"#,
        queue.url,
        localstack::REGION,
        queue.localstack
    );
    let config = canary_config(queue.dir.path(), "good.json", &good);
    let input = queue.dir.join("input.ndjson");
    support::write_lines(
        &input,
        &[
            support::event_line("canary-1", 1, 10),
            "{not json".to_owned(),
        ],
    );
    let mut transcript = Transcript::default();
    let send = |config: &Path, extra: &[&str]| {
        let mut command = support::forwarder();
        command
            .args(["send", "--log-level", "trace", "--summary-json", "--config"])
            .arg(config)
            .args(extra)
            .arg(&input)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
        command
    };

    // Success (with one refused line), then the same file readable by others.
    let output = transcript.run("send", &mut send(&config, &[]));
    assert_eq!(output.status.code(), Some(1), "one line is refused");
    let mut permissions = std::fs::metadata(&config).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o644);
    std::fs::set_permissions(&config, permissions).expect("chmod");
    let output = transcript.run("send, file mode 0644", &mut send(&config, &[]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("holds a secret and others can read it") && stderr.contains("chmod 600"),
        "{stderr}"
    );

    // Every attempt fails: nothing listens on port 9.
    let output = transcript.run(
        "send, unreachable endpoint",
        &mut send(&config, &["--endpoint-url", "http://127.0.0.1:9"]),
    );
    assert_eq!(output.status.code(), Some(1));
    // Refused before any request: plain http to a host that is not loopback.
    let output = transcript.run(
        "send, insecure endpoint",
        &mut send(
            &config,
            &["--endpoint-url", "http://sqs.example.invalid:4566"],
        ),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--allow-insecure-endpoint"));

    // Configuration files that are wrong in ways that put the secret near the error.
    let queue_url = &queue.url;
    let bad = [
        (
            "typo.json",
            format!(
                r#"{{"queueURL":"{queue_url}","region":"r","accessKey":"A","accesSecret":"{canary}"}}"#
            ),
        ),
        (
            "truncated.json",
            format!(
                r#"{{"queueURL":"{queue_url}","region":"r","accessKey":"A","accessSecret":"{canary}"#
            ),
        ),
        (
            "unquoted.json",
            format!(
                r#"{{"queueURL":"{queue_url}","region":"r","accessKey":"A","accessSecret":{canary}}}"#
            ),
        ),
        (
            "type.json",
            format!(
                r#"{{"queueURL":"{queue_url}","region":"r","accessKey":"A","accessSecret":["{canary}"]}}"#
            ),
        ),
        (
            "alone.json",
            format!(r#"{{"queueURL":"{queue_url}","region":"r","accessSecret":"{canary}"}}"#),
        ),
        (
            "key.env",
            format!("QUEUE_URL={queue_url}\nREGION=r\nACCESS_KEY=A\nSECRET={canary}\n"),
        ),
        ("line.env", format!("QUEUE_URL={queue_url}\n{canary}\n")),
    ];
    for (file, text) in &bad {
        let path = canary_config(queue.dir.path(), file, text);
        let output = transcript.run(&format!("send --config {file}"), &mut send(&path, &[]));
        assert_eq!(output.status.code(), Some(2), "{file}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(file),
            "{file}: the error names the file: {stderr}"
        );
    }

    // serve, with a bearer token: the right one, a wrong one, then SIGTERM.
    let token_file = canary_config(queue.dir.path(), "token", &format!("{token}\n"));
    std::fs::set_permissions(&config, {
        let mut p = std::fs::metadata(&config).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o600);
        p
    })
    .expect("chmod");
    let mut running = Running::spawn(
        support::forwarder()
            .args([
                "serve",
                "--log-level",
                "trace",
                "--listen",
                "127.0.0.1:0",
                "--config",
            ])
            .arg(&config)
            .arg("--token-file")
            .arg(&token_file)
            .env("RUST_LOG", "trace")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .stdin(Stdio::null()),
    );
    let url = support::listening(&mut running).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for (bearer, expected) in [(&token, 200), (&wrong, 401)] {
        let response = client
            .post(format!("{url}/events"))
            .header("content-type", "application/cloudevents+json")
            .header("authorization", format!("Bearer {bearer}"))
            .body(support::event_line("canary-serve", 2, 10))
            .send()
            .await
            .expect("serve answers");
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, expected, "{body}");
        transcript.keep("serve answer", body.as_bytes(), b"");
    }
    running.terminate();
    let finished = running.wait(Duration::from_secs(60));
    assert_eq!(finished.status.code(), Some(0), "{}", finished.stderr);
    transcript.keep(
        "serve",
        finished.stdout.as_bytes(),
        finished.stderr.as_bytes(),
    );

    transcript.assert_clean(&[&canary, &token, &wrong]);
}

#[tokio::test]
async fn debug_output_never_shows_the_secret() {
    let canary = format!("SECRET-CANARY-{}", uuid::Uuid::new_v4().simple());
    let text = format!(
        r#"{{"queueURL":"http://127.0.0.1:4566/000000000000/q","region":"us-east-1","accessKey":"AKIACANARY","accessSecret":"{canary}","endpoint":"http://127.0.0.1:4566"}}"#
    );
    let config = ForwarderConfig::parse(&text, Path::new("c.json")).expect("parses");
    let key = StaticKey {
        access_key_id: "AKIACANARY".to_owned(),
        secret: Secret::new(canary.clone()),
    };
    let options = AwsOptions {
        region: Some("us-east-1".to_owned()),
        endpoint_url: Some("http://127.0.0.1:4566".to_owned()),
        credentials: Some(key.clone()),
        ..AwsOptions::default()
    };
    let sdk = sdk_config(&options).await.expect("sdk config");
    let credentials = sdk
        .credentials_provider()
        .expect("provider")
        .provide_credentials()
        .await
        .expect("credentials");
    assert_eq!(
        credentials.secret_access_key(),
        canary,
        "the SDK got the secret"
    );
    let client = aws_sdk_sqs::Client::new(&sdk);
    let shown = [
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{key:?}"),
        format!("{options:?}"),
        format!("{sdk:?}"),
        format!("{credentials:?}"),
        format!("{client:?}"),
        format!("{:?}", Secret::new(canary.clone())),
        format!("{}", Secret::new(canary.clone())),
    ];
    for text in &shown {
        testkit::leak::assert_clean("Debug", text, &[&canary]);
    }
}
