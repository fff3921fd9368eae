//! `cargo xtask demo consume`: the consume path on the embedded servers. A NATS server of its
//! own (from `nats-launch`, stopped at the end), two destinations provisioned on the embedded
//! LocalStack (`acme` with a key, `globex` with a role and an external id), the sample events
//! under `forwarder/examples/` published with a `tenant` route extension, `forwarder consume`
//! until the durable consumer is drained, and each queue read back and judged.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};

use super::bin;
use crate::provision::on_localstack;
use crate::run;

const TENANTS: [(&str, &str); 2] = [("acme", "user"), ("globex", "role")];
const DURABLE: &str = "demo-forwarders";

pub(crate) fn run() -> Result<ExitCode> {
    super::build(&["nats_stream"])?;
    let nats_stream = bin("examples/nats_stream");
    let instance = localstack::start(&localstack::Config::from_env()?)?;
    eprintln!("demo: LocalStack at {}", instance.endpoint());
    let nats = nats_launch::start(&nats_launch::Config::from_env()?)?;
    eprintln!("demo: NATS (JetStream) at {}", nats.url());

    let dir = Path::new("target").join("demo").join("consume");
    let destinations = dir.join("destinations");
    std::fs::create_dir_all(&destinations)
        .with_context(|| format!("cannot create {}", destinations.display()))?;
    let mut queues = Vec::new();
    for (tenant, auth) in TENANTS {
        let out = destinations.join(format!("{tenant}.json"));
        run::checked(on_localstack(
            Command::new(bin("provisioner"))
                .args(["apply", "--name", &format!("cloudevents-demo-{tenant}")])
                .args(["--auth", auth])
                .args(if auth == "role" {
                    &["--trust-account", "000000000000"][..]
                } else {
                    &[]
                })
                .arg("--out")
                .arg(&out),
            instance.endpoint(),
            true,
        ))?;
        queues.push((tenant, queue_url(&out)?));
    }

    let (events, counts) = routed_events(&dir)?;
    let stream = format!("DEMO_{}", std::process::id());
    run::checked(
        Command::new(&nats_stream)
            .args(["--url", nats.url(), "--stream", &stream])
            .args(["publish", "--subject-by", "tenant"])
            .arg(&events),
    )?;
    let dead = dir.join("dead.ndjson");
    let _ = std::fs::remove_file(&dead);
    let mut consume = Command::new(bin("forwarder"));
    consume
        .args(["consume", "--nats-url", nats.url(), "--stream", &stream])
        .args([
            "--durable",
            DURABLE,
            "--route-by",
            "tenant",
            "--summary-json",
        ])
        .arg("--destinations")
        .arg(&destinations)
        .arg("--dead-letter")
        .arg(&dead)
        .env("AWS_ACCESS_KEY_ID", localstack::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", localstack::SECRET_KEY)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .stdout(Stdio::piped());
    eprintln!("demo: forwarder consume on {stream}, durable {DURABLE}");
    let child = consume.spawn().context("cannot start forwarder consume")?;
    let drained = run::checked(
        Command::new(&nats_stream)
            .args(["--url", nats.url(), "--stream", &stream])
            .args(["drained", "--durable", DURABLE, "--timeout-seconds", "120"]),
    );
    // Stopped whatever happened: SIGTERM settles what it holds and prints the summary.
    run::checked(Command::new("kill").args(["-TERM", &child.id().to_string()]))?;
    let output = child
        .wait_with_output()
        .context("forwarder consume did not finish")?;
    drained?;
    let summary = String::from_utf8_lossy(&output.stdout);
    let summary = summary.lines().last().unwrap_or_default();
    if !output.status.success() {
        bail!("forwarder consume failed ({}): {summary}", output.status);
    }

    let mut code = ExitCode::SUCCESS;
    for (tenant, url) in &queues {
        eprintln!("demo: {tenant}'s queue, judged (and consumed) by the conformance checker:");
        if run::status(on_localstack(
            Command::new(bin("conformance")).args(["check", "--delete", "--queue-url", url]),
            instance.endpoint(),
            true,
        ))? != ExitCode::SUCCESS
        {
            code = ExitCode::FAILURE;
        }
    }
    eprintln!("demo: published {counts}; consume's summary: {summary}");
    eprintln!(
        "demo: NATS stops now; LocalStack keeps running (`cargo xtask localstack down`), and \
         `cargo xtask provision destroy --localstack --force --name cloudevents-demo-TENANT` \
         removes each destination"
    );
    Ok(code)
}

/// The sample events with a `tenant` extension, the tenants in turn (an event that names one
/// keeps it), written to `dir/events.ndjson`; with how many each tenant got.
fn routed_events(dir: &Path) -> Result<(PathBuf, String)> {
    let examples = super::sample_events()?;
    let mut lines = Vec::new();
    let mut counts = [0usize; TENANTS.len()];
    for path in &examples {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            // Read only to see the tenant: the line itself is published as it is.
            let event: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{}: not JSON", path.display()))?;
            let named = event["tenant"]
                .as_str()
                .and_then(|t| TENANTS.iter().position(|(name, _)| *name == t));
            let n = named.unwrap_or(lines.len() % TENANTS.len());
            counts[n] += 1;
            lines.push(match named {
                Some(_) => line.to_owned(),
                None => line.replacen('{', &format!(r#"{{"tenant":"{}","#, TENANTS[n].0), 1),
            });
        }
    }
    let path = dir.join("events.ndjson");
    std::fs::write(&path, lines.join("\n") + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    let counts = TENANTS
        .iter()
        .zip(counts)
        .map(|((name, _), n)| format!("{n} for {name}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok((path, counts))
}

fn queue_url(connection_file: &Path) -> Result<String> {
    let text = std::fs::read_to_string(connection_file)
        .with_context(|| format!("cannot read {}", connection_file.display()))?;
    let settings: serde_json::Value = serde_json::from_str(&text)?;
    settings["queueURL"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no queueURL in {}", connection_file.display()))
}
