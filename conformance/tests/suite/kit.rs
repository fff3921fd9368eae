//! `conformance run`, the kit platform teams run against their own producer, shown on four
//! producers through the real binaries and LocalStack: the forwarder in structured and in binary
//! mode and a careful boto3 producer pass on both queue types; a faulty one fails, each fault
//! named with its vector.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use testkit::binary::{built, workspace_root};
use testkit::localstack_env::{localstack_options, on_localstack};

/// Runs `conformance run` with `producer` and extra arguments on LocalStack, JSON report.
async fn kit(producer: &str, extra: &[&str]) -> (Output, Value) {
    let options = localstack_options().await;
    let mut command = Command::new(built("conformance", "conformance"));
    command.args(["run", "--format", "json", "--producer", producer]);
    command.args(extra);
    on_localstack(&mut command, &options);
    let output = command.output().expect("conformance runs");
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "the report is JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, report)
}

/// Asserts a passing run: exit 0, every vector delivered once with no fault.
fn assert_passed(label: &str, (output, report): &(Output, Value)) {
    let failing: Vec<&Value> = report["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .filter(|v| v["faults"].as_array().is_some_and(|f| !f.is_empty()))
        .collect();
    assert!(
        failing.is_empty() && report["unexpected"] == Value::Array(Vec::new()),
        "{label}: {failing:#?}\n{:#}\n{}",
        report["unexpected"],
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["passed"], true, "{label}");
    assert_eq!(output.status.code(), Some(0), "{label}");
}

fn forwarder(mode: &str) -> String {
    format!(
        "'{}' send --content-mode {mode} --config \"$CE_CONFIG\" \"$CE_VECTORS\"",
        built("forwarder", "forwarder").display()
    )
}

fn python_example(script: &str) -> String {
    let python = moto::tool(&moto::Config::from_env(), moto::Tool::Boto3)
        .unwrap_or_else(|e| panic!("the boto3 environment: {e}"));
    let script: PathBuf = workspace_root().join("conformance/examples").join(script);
    format!("'{}' '{}'", python.display(), script.display())
}

#[tokio::test]
async fn the_forwarder_delivers_every_vector_intact_in_both_content_modes() {
    assert_passed("structured", &kit(&forwarder("structured"), &[]).await);
    assert_passed("binary", &kit(&forwarder("binary"), &[]).await);
    assert_passed(
        "binary, FIFO",
        &kit(&forwarder("binary"), &["--fifo"]).await,
    );
}

#[tokio::test]
async fn a_careful_boto3_producer_passes() {
    let producer = python_example("boto3_producer.py");
    assert_passed("boto3", &kit(&producer, &[]).await);
    assert_passed("boto3, FIFO", &kit(&producer, &["--fifo"]).await);
}

#[tokio::test]
async fn a_faulty_producer_fails_with_each_fault_named_by_its_vector() {
    let (output, report) = kit(&python_example("faulty_producer.py"), &[]).await;
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    assert_eq!(report["passed"], false);
    let faults = |id: &str| -> Vec<Value> {
        report["vectors"]
            .as_array()
            .expect("vectors")
            .iter()
            .find(|v| v["id"] == id)
            .unwrap_or_else(|| panic!("no vector {id}"))["faults"]
            .as_array()
            .expect("faults")
            .clone()
    };
    let differences = |id: &str| -> Vec<String> {
        faults(id)
            .iter()
            .filter(|f| f["kind"] == "altered")
            .flat_map(|f| f["differences"].as_array().expect("differences").clone())
            .map(|d| d.as_str().expect("text").to_owned())
            .collect()
    };
    // Numbers through floats (the first difference within each member is named).
    assert_eq!(
        differences("iot-reading"),
        [
            "/data/data/temp: 32 became 32.0",
            "/datacontenttype: missing"
        ]
    );
    assert_eq!(
        differences("extensions"),
        [
            "/intmax: 2147483647 became 2147483647.0",
            "/intmin: -2147483648 became -2147483648.0"
        ]
    );
    // `1e400` became `Infinity`: the body is no longer JSON, so the vector is missing and the
    // message matches none.
    assert_eq!(
        faults("numbers-exact"),
        [serde_json::json!({"kind": "missing"})]
    );
    let unexpected = report["unexpected"].as_array().expect("unexpected");
    assert_eq!(unexpected.len(), 1, "{unexpected:#?}");
    assert!(
        unexpected[0]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("not an event")),
        "{unexpected:#?}"
    );
    // A dropped attribute.
    assert_eq!(differences("text-plain"), ["/datacontenttype: missing"]);
    // The last event lost.
    assert_eq!(
        faults("size-largest"),
        [serde_json::json!({"kind": "missing"})]
    );
    // What it did not touch arrived intact.
    assert_eq!(faults("json-string"), Vec::<Value>::new());
}

#[tokio::test]
async fn the_junit_report_names_each_vector_by_its_id() {
    let options = localstack_options().await;
    let mut command = Command::new(built("conformance", "conformance"));
    command.args([
        "run",
        "--format",
        "junit",
        "--producer",
        &forwarder("binary"),
    ]);
    on_localstack(&mut command, &options);
    let output = command.output().expect("conformance runs");
    assert_eq!(output.status.code(), Some(0));
    let xml = String::from_utf8(output.stdout).expect("UTF-8");
    let vectors = conformance::vectors::default_vectors();
    let ids = conformance::fidelity::read_vectors(&vectors).expect("valid");
    for vector in &ids {
        assert!(
            xml.contains(&format!(
                r#"<testcase classname="cloudevents.fidelity.vector" name="{}"/>"#,
                vector.id
            )),
            "{}: {xml}",
            vector.id
        );
    }
    assert!(
        xml.contains(&format!(r#"tests="{}" failures="0""#, ids.len() + 1)),
        "{xml}"
    );
}

#[test]
fn a_bad_vector_file_stops_the_run_before_anything_is_created() {
    let dir = testkit::scratch::TempDir::new("kit-vectors");
    let path = dir.join("vectors.ndjson");
    std::fs::write(
        &path,
        "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\"}\n{\"id\":2}\n",
    )
    .expect("written");
    let output = Command::new(built("conformance", "conformance"))
        .args([
            "run",
            "--producer",
            "true",
            "--endpoint-url",
            "http://127.0.0.1:9",
        ])
        .arg("--vectors")
        .arg(&path)
        .output()
        .expect("conformance runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: vectors line 2: not a conformant CloudEvent: schema"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
