//! The per-test fixture and what every test shares: a queue and a send-only user of the test's
//! own, provisioned through the provisioner library and verified; the real `forwarder` binary
//! run with that user's key; `ReceiveMessage` with every attribute; and the shape checks that
//! the snapshot redactions make before hiding a value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use aws_sdk_sqs::types::MessageAttributeValue;
use insta::internals::Content;
use provisioner::{Clients, OutFile, Spec};
use serde_json::{Value, json};

/// A standard or a FIFO queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueKind {
    Standard,
    Fifo,
}

/// A queue and its send-only user, provisioned for one test. [`Fixture::destroy`] removes them
/// at the end of the test; when a test fails before that, `Drop` removes them as best it can.
#[derive(Debug)]
pub struct Fixture {
    clients: Clients,
    spec: Spec,
    /// An SQS client with LocalStack's administrator key, for receiving and for producing
    /// messages that did not go through the forwarder.
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_name: String,
    pub user_name: String,
    /// The id of the scoped user's access key, which the forwarder sends with.
    pub access_key_id: String,
    /// The forwarder's configuration, as `provisioner apply` wrote it.
    pub config_path: PathBuf,
    pub endpoint: String,
    /// A scratch directory of the test's own: the configuration and the NDJSON inputs.
    pub dir: PathBuf,
    destroyed: bool,
}

/// One run of `forwarder send`.
#[derive(Debug)]
pub struct Forwarded {
    pub output: Output,
    /// The input file, as the forwarder names it in `FILE:LINE: reason` lines.
    pub input: PathBuf,
}

/// One message as `ReceiveMessage` returned it, with every attribute.
pub use testkit::Received;

impl Fixture {
    /// Provisions a queue named after `test` plus a unique suffix, its user and an access key,
    /// with the forwarder's configuration written to a scratch directory; then proves least
    /// privilege with `provisioner::verify`.
    pub async fn new(test: &str, kind: QueueKind) -> Fixture {
        assert!(
            test.len() <= 20 && test.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "test label {test:?}: at most 20 letters, digits or `-`, so that the user name fits"
        );
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("ce-{test}-{}", &unique[..16]);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("conformance-suite")
            .join(&name);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let config_path = dir.join("forwarder.json");
        let spec = Spec {
            fifo: kind == QueueKind::Fifo,
            out: Some(OutFile {
                path: config_path.clone(),
                format: aws_access::connection::Format::Json,
            }),
            ..Spec::new(&name)
        };
        let options = testkit::localstack_options().await;
        let clients = Clients::new(&options).await.expect("AWS clients");
        let sdk = aws_access::sdk::sdk_config(&options)
            .await
            .expect("SDK configuration");
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let endpoint = clients
            .endpoint()
            .expect("LocalStack has an endpoint")
            .to_owned();
        let outcome = provisioner::apply(&clients, &spec).await;
        // From here on, whatever apply created is removed even if the test fails.
        let mut fixture = Fixture {
            clients,
            spec,
            sqs,
            queue_url: String::new(),
            queue_name: String::new(),
            user_name: String::new(),
            access_key_id: String::new(),
            config_path,
            endpoint,
            dir,
            destroyed: false,
        };
        let outcome = outcome.unwrap_or_else(|err| panic!("provisioner apply {name}: {err}"));
        fixture.queue_url = outcome.resources.queue_url.clone();
        fixture.queue_name = outcome.resources.queue_name.clone();
        fixture.user_name = outcome.resources.principal_name.clone();
        fixture.access_key_id = outcome
            .config
            .access_key
            .clone()
            .expect("user mode writes an access key");
        // The forwarder gets the scoped key, and only through the file.
        let (written, warning) = aws_access::connection::read(&fixture.config_path)
            .unwrap_or_else(|err| panic!("the configuration apply wrote: {err}"));
        assert_eq!(warning, None, "the configuration file is private");
        assert_eq!(written.queue_url, fixture.queue_url);
        assert_eq!(
            written.access_key.as_deref(),
            Some(fixture.access_key_id.as_str())
        );
        assert_ne!(
            fixture.access_key_id,
            localstack::ACCESS_KEY,
            "the scoped key is not the administrator's"
        );
        if let Err(err) = provisioner::verify(&fixture.clients, &fixture.spec).await {
            panic!("least privilege not proven for {name}: {err}");
        }
        fixture
    }

    /// The provisioner clients, for reading back what it created.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// Runs `forwarder send --config FILE --summary-json ARGS INPUT` on `lines`, with no AWS
    /// variable in its environment: the only key it has is the scoped user's.
    pub async fn forward(&self, input_name: &str, lines: &[String], args: &[&str]) -> Forwarded {
        let input = self.dir.join(input_name);
        let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
        std::fs::write(&input, text).expect("input file");
        let mut command = tokio::process::Command::new(forwarder_binary());
        command
            .arg("send")
            .arg("--config")
            .arg(&self.config_path)
            .arg("--summary-json")
            .args(args)
            .arg(&input)
            .stdin(Stdio::null());
        for name in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_SQS",
            "RUST_LOG",
        ] {
            command.env_remove(name);
        }
        let output = command.output().await.expect("the forwarder runs");
        Forwarded { output, input }
    }

    /// Sends `body` with `attributes` (String message attributes) as a producer other than the
    /// forwarder would, with the administrator key; returns the message id.
    pub async fn produce(&self, body: &str, attributes: &[(&str, &str)]) -> String {
        let mut request = self
            .sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body);
        for &(name, value) in attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .expect("a valid message attribute");
            request = request.message_attributes(name, value);
        }
        let output = request.send().await.expect("SendMessage");
        output.message_id.expect("SendMessage returns a message id")
    }

    /// Receives, and deletes, every message in the queue (see [`testkit::drain`]).
    pub async fn receive_all(&self, expected: usize) -> Vec<Received> {
        testkit::drain(&self.sqs, &self.queue_url, expected).await
    }

    /// Removes the user, its key and policy, and the queue, asserting that nothing was left.
    pub async fn destroy(mut self) {
        self.destroyed = true;
        let _ = std::fs::remove_dir_all(&self.dir);
        let report = provisioner::destroy(&self.clients, &self.spec)
            .await
            .unwrap_or_else(|err| panic!("provisioner destroy {}: {err}", self.spec.name));
        assert!(report.failures.is_empty(), "destroy: {:?}", report.failures);
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if self.destroyed {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        // A test that failed may have left messages: the clean-up deletes the queue regardless.
        let (clients, spec) = (
            self.clients.clone(),
            Spec {
                force: true,
                ..self.spec.clone()
            },
        );
        // Best effort, on a runtime of its own: this may run while a test panics inside one.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                let _ = runtime.block_on(provisioner::destroy(&clients, &spec));
            }
        })
        .join();
    }
}

impl Forwarded {
    /// The `--summary-json` object.
    pub fn summary(&self) -> Value {
        let stdout = String::from_utf8_lossy(&self.output.stdout);
        serde_json::from_str(stdout.trim()).unwrap_or_else(|err| {
            panic!(
                "the summary is not JSON ({err}): {stdout}\n{}",
                self.stderr()
            )
        })
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Asserts exit status 0 and that SQS accepted `sent` events, none refused or failed.
    pub fn assert_all_sent(&self, sent: usize) {
        let summary = self.summary();
        assert!(
            self.output.status.success(),
            "forwarder failed: {summary}\n{}",
            self.stderr()
        );
        assert_eq!(
            (
                summary["sent"].as_u64(),
                summary["refused"].as_u64(),
                summary["failed"].as_u64()
            ),
            (Some(sent as u64), Some(0), Some(0)),
            "{summary}\n{}",
            self.stderr()
        );
    }

    /// The `FILE:LINE: reason` lines of stderr, by line number.
    pub fn refusals(&self) -> BTreeMap<u64, String> {
        let prefix = format!("{}:", self.input.display());
        self.stderr()
            .lines()
            .filter_map(|line| {
                let (number, reason) = line.strip_prefix(&prefix)?.split_once(": ")?;
                Some((number.parse().ok()?, reason.to_owned()))
            })
            .collect()
    }
}

/// What the suite reads of a received message.
pub trait ReceivedExt {
    /// What the judge sees: the id, the body and the string-valued message attributes.
    fn message(&self) -> conformance::Message;
    /// The body as JSON (numbers as `f64`, so only for snapshots and semantic comparisons).
    fn body_json(&self) -> Value;
    /// The message as the snapshots record it: every field, the body both parsed (readable,
    /// but with keys sorted and numbers as `f64`) and as the exact text SQS holds.
    fn snapshot(&self) -> Value;
}

impl ReceivedExt for Received {
    fn message(&self) -> conformance::Message {
        conformance::Message {
            message_id: self.message_id.clone(),
            body: self.body.clone(),
            attributes: self.string_attributes(),
            group_id: None,
        }
    }

    fn body_json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}): {}", self.body))
    }

    fn snapshot(&self) -> Value {
        let message_attributes: serde_json::Map<String, Value> = self
            .message_attributes
            .iter()
            .map(|(name, (data_type, value))| {
                (
                    name.clone(),
                    json!({"dataType": data_type, "stringValue": value}),
                )
            })
            .collect();
        json!({
            "messageId": self.message_id,
            "receiptHandle": self.receipt_handle,
            "md5OfBody": self.md5_of_body,
            "md5OfMessageAttributes": self.md5_of_message_attributes,
            "body": self.body_json(),
            "bodyText": self.body,
            "messageAttributes": message_attributes,
            "attributes": self.system,
        })
    }
}

/// Asserts that the judge finds every received message conformant.
pub fn assert_conformant(received: &[Received]) {
    for message in received {
        let verdict = conformance::judge(&message.message());
        assert!(
            verdict.conformant,
            "{}\n{:#?}",
            truncated(&message.body),
            verdict.problems
        );
    }
}

/// At most 300 characters of `text`, for failure messages about megabyte bodies.
pub fn truncated(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(300).collect();
    match chars.count() {
        0 => head,
        rest => format!("{head}... ({rest} more characters)"),
    }
}

/// `text` as JSON, with the top-level members that are null left out when `drop_nulls` (the
/// forwarder leaves them out: null means absent).
pub fn semantic(text: &str, drop_nulls: bool) -> Value {
    let mut value: Value = serde_json::from_str(text)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", truncated(text)));
    if drop_nulls && let Value::Object(members) = &mut value {
        members.retain(|_, member| !member.is_null());
    }
    value
}

/// The number tokens of a JSON text, in order, as written.
pub fn number_tokens(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let (mut i, mut in_string) = (0, false);
    while i < bytes.len() {
        match (in_string, bytes[i]) {
            (true, b'\\') => i += 1,
            (_, b'"') => in_string = !in_string,
            (false, b'-' | b'0'..=b'9') => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                tokens.push(&text[start..i]);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    tokens
}

/// The non-blank lines of the forwarder's sample events, `forwarder/examples/*.ndjson`, files
/// in name order.
pub fn sample_lines() -> Vec<String> {
    let examples = testkit::binary::workspace_root().join("forwarder/examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&examples)
        .unwrap_or_else(|err| panic!("{}: {err}", examples.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "ndjson"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no sample events in {}",
        examples.display()
    );
    files
        .iter()
        .flat_map(|file| {
            std::fs::read_to_string(file)
                .unwrap_or_else(|err| panic!("{}: {err}", file.display()))
                .lines()
                .filter(|line| !line.trim().is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The `forwarder` binary of this build, in step with its sources.
pub fn forwarder_binary() -> PathBuf {
    testkit::binary::built("forwarder", "forwarder")
}

/// Snapshot settings: snapshots under `conformance/tests/snapshots`, and the redactions every
/// list of received messages needs. Each redaction first asserts the shape of what it hides.
pub fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    redact(&mut settings, "[].messageId", "[message-id]", is_uuid);
    redact(
        &mut settings,
        "[].receiptHandle",
        "[receipt-handle]",
        |handle| !handle.is_empty() && !handle.contains(char::is_whitespace),
    );
    redact(&mut settings, "[].md5OfBody", "[md5]", is_md5);
    redact(&mut settings, "[].md5OfMessageAttributes", "[md5]", is_md5);
    for timestamp in ["SentTimestamp", "ApproximateFirstReceiveTimestamp"] {
        redact(
            &mut settings,
            &format!("[].attributes.{timestamp}"),
            "[epoch-millis]",
            is_epoch_millis,
        );
    }
    redact(
        &mut settings,
        "[].attributes.SequenceNumber",
        "[sequence-number]",
        |n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
    );
    // LocalStack names the sender by its account; AWS by the IAM user's unique id.
    redact(
        &mut settings,
        "[].attributes.SenderId",
        "[sender-id]",
        |id| {
            (id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()))
                || (id.starts_with("AIDA") && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        },
    );
    settings
}

/// Adds a redaction at `selector` that asserts `shape` before replacing the value with
/// `replacement`. A null stays as it is: there is nothing dynamic to hide.
pub fn redact(
    settings: &mut insta::Settings,
    selector: &str,
    replacement: &'static str,
    shape: fn(&str) -> bool,
) {
    settings.add_redaction(
        selector,
        insta::dynamic_redaction(move |value: Content, path| {
            if matches!(value, Content::None | Content::Unit) {
                return value;
            }
            let text = value
                .as_str()
                .unwrap_or_else(|| panic!("{path}: not a string: {value:?}"));
            assert!(shape(text), "{path}: unexpected shape {text:?}");
            Content::from(replacement)
        }),
    );
}

/// A lower-case hyphenated UUID.
pub fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && uuid::Uuid::parse_str(text).is_ok_and(|id| id.hyphenated().to_string() == text)
}

/// A version 4 UUID, as the forwarder generates for wrapped payloads.
pub fn is_uuid_v4(text: &str) -> bool {
    is_uuid(text) && uuid::Uuid::parse_str(text).is_ok_and(|id| id.get_version_num() == 4)
}

/// 32 lower-case hexadecimal digits.
pub fn is_md5(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Milliseconds since the epoch, after 2020 and within this millennium.
pub fn is_epoch_millis(text: &str) -> bool {
    text.parse::<u64>()
        .is_ok_and(|millis| (1_577_836_800_000..32_503_680_000_000).contains(&millis))
}

/// An RFC 3339 `date-time` in UTC, `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, with plausible fields.
pub fn is_rfc3339_utc(text: &str) -> bool {
    let Some(rest) = text.strip_suffix('Z') else {
        return false;
    };
    let (whole, fraction) = rest.split_once('.').unwrap_or((rest, "0"));
    let b = whole.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range.clone())
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
            && whole[range].parse::<u32>().is_ok()
    };
    let number = |range: std::ops::Range<usize>| whole[range].parse::<u32>().unwrap_or(u32::MAX);
    b.len() == 19
        && [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')]
            .iter()
            .all(|&(i, c)| b[i] == c)
        && [0..4, 5..7, 8..10, 11..13, 14..16, 17..19]
            .into_iter()
            .all(digits)
        && (1..=12).contains(&number(5..7))
        && (1..=31).contains(&number(8..10))
        && number(11..13) <= 23
        && number(14..16) <= 59
        && number(17..19) <= 60
        && !fraction.is_empty()
        && fraction.bytes().all(|d| d.is_ascii_digit())
}
