//! Bad input through the binary: a one-line error that says what to do, and a non-zero exit,
//! before (or instead of) any request that could change something.

use std::process::Command;

/// Runs the binary without any AWS configuration of the environment, plus `env`.
fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_provisioner"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
        .env("AWS_CONFIG_FILE", "/nonexistent/aws/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws/credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied())
        .args(args);
    let output = command.output().expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), stdout, stderr)
}

/// Expects a failure whose stderr is one line containing every one of `expected`.
fn check(args: &[&str], env: &[(&str, &str)], expected: &[&str]) {
    let (success, stdout, stderr) = run(args, env);
    assert!(!success, "{args:?} succeeded: {stdout}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: not one line: {stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    for part in expected {
        assert!(stderr.contains(part), "{args:?}: `{stderr}` lacks `{part}`");
    }
}

const KEYS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
    ("AWS_SECRET_ACCESS_KEY", "not-a-real-secret"),
];
/// Nothing listens on port 9 (discard) of loopback here.
const UNREACHABLE: &str = "http://127.0.0.1:9";

#[test]
fn invalid_names() {
    check(
        &[
            "apply",
            "--name",
            "bad name!",
            "--region",
            "us-east-1",
            "--endpoint-url",
            UNREACHABLE,
        ],
        &[],
        &["queue name `bad name!`", "use 1 to 80"],
    );
    check(
        &[
            "plan",
            "--name",
            "orders.fifo",
            "--region",
            "us-east-1",
            "--endpoint-url",
            UNREACHABLE,
        ],
        &[],
        &["pass --fifo"],
    );
    check(
        &[
            "apply",
            "--name",
            &"a".repeat(81),
            "--region",
            "us-east-1",
            "--endpoint-url",
            UNREACHABLE,
        ],
        &[],
        &["81 characters"],
    );
    check(
        &[
            "apply",
            "--name",
            "q",
            "--user",
            "a/b",
            "--region",
            "us-east-1",
            "--endpoint-url",
            UNREACHABLE,
        ],
        &[],
        &["IAM user or role name", "`/`"],
    );
    check(
        &[
            "apply",
            "--name",
            "line\nbreak",
            "--region",
            "us-east-1",
            "--endpoint-url",
            UNREACHABLE,
        ],
        &[],
        &["'\\n'"],
    );
    check(
        &[
            "apply",
            "--name",
            "q",
            "--auth",
            "role",
            "--trust-account",
            "12",
            "--region",
            "us-east-1",
            "--endpoint-url",
            UNREACHABLE,
        ],
        &[],
        &["account id `12`", "12-digit"],
    );
    check(
        &[
            "apply",
            "--name",
            "q",
            "--auth",
            "role",
            "--region",
            "us-east-1",
            "--endpoint-url",
            UNREACHABLE,
        ],
        &[],
        &["--trust-account"],
    );
}

#[test]
fn unreachable_endpoint() {
    let args = [
        "apply",
        "--name",
        "q",
        "--region",
        "us-east-1",
        "--endpoint-url",
        UNREACHABLE,
    ];
    check(&args, &KEYS, &["cannot reach AWS", "--endpoint-url"]);
}

#[test]
fn missing_credentials() {
    let args = [
        "apply",
        "--name",
        "q",
        "--region",
        "us-east-1",
        "--endpoint-url",
        UNREACHABLE,
    ];
    check(&args, &[], &["no usable AWS credentials", "AWS_PROFILE"]);
}

#[test]
fn missing_region() {
    check(
        &["plan", "--name", "q", "--endpoint-url", UNREACHABLE],
        &KEYS,
        &["no AWS region", "--region"],
    );
}

#[test]
fn the_secret_of_the_environment_is_never_echoed() {
    let args = [
        "apply",
        "--name",
        "q",
        "--region",
        "us-east-1",
        "--endpoint-url",
        UNREACHABLE,
    ];
    let (_, stdout, stderr) = run(&args, &KEYS);
    testkit::leak::assert_clean(
        "provisioner apply",
        &format!("{stdout}{stderr}"),
        &["not-a-real-secret"],
    );
}
