//! `--destinations DIR --route-by ATTRIBUTE` against LocalStack: every event in its own
//! destination's queue and in no other, the unroutable ones dead-lettered with the reason, a
//! destination nobody answers holding back only its own events, SIGHUP adding a destination
//! without a restart, and role-mode destinations each assuming their own role.

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_access::connection::{Format, ForwarderConfig};
use provisioner::{Auth, OutFile, Spec};
use support::fault_proxy::{FaultProxy, Schedule};
use support::{
    Running, TestQueue, closed_endpoint, connection_file, dead_letters, forwarder, id_counts,
    listening, routed_event, summary, write_lines,
};
use testkit::TempDir;

#[tokio::test(flavor = "multi_thread")]
async fn send_delivers_each_event_to_its_own_queue_and_dead_letters_the_unroutable() {
    let queues = [
        TestQueue::new("route-acme").await,
        TestQueue::new("route-globex").await,
        TestQueue::new("route-initech").await,
    ];
    let names = ["acme", "globex", "initech"];
    let dir = TempDir::new("destinations-send");
    let destinations = dir.join("destinations");
    std::fs::create_dir_all(&destinations).expect("dir");
    for (name, queue) in names.iter().zip(&queues) {
        connection_file(&destinations, name, &queue.url, &queue.localstack);
    }
    let mut lines = Vec::new();
    for i in 0..300 {
        lines.push(routed_event(&format!("e-{i}"), Some(names[i % 3])));
    }
    lines.push(routed_event("unknown-1", Some("umbrella")));
    lines.push(routed_event("missing-1", None));
    let input = dir.join("in.ndjson");
    write_lines(&input, &lines);
    let dead = dir.join("dead.ndjson");
    let finished = send_routed(&destinations, &dead, &input).await;
    let summary = summary(&finished);
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stderr);
    assert_eq!(
        (summary["sent"].as_u64(), summary["refused"].as_u64()),
        (Some(300), Some(2))
    );
    for (i, (name, queue)) in names.iter().zip(&queues).enumerate() {
        let ids = id_counts(&queue.read_all().await);
        let expected: HashSet<String> = (0..300)
            .filter(|n| n % 3 == i)
            .map(|n| format!("e-{n}"))
            .collect();
        assert_eq!(
            ids.keys().cloned().collect::<HashSet<_>>(),
            expected,
            "{name}"
        );
        assert_eq!(
            summary["destinations"][name]["sent"].as_u64(),
            Some(100),
            "{summary}"
        );
    }
    let dead: Vec<(String, String)> = dead_letters(&dead)
        .into_iter()
        .map(|(id, reason, _)| (id.unwrap_or_default(), reason))
        .collect();
    assert_eq!(
        dead,
        [
            (
                "unknown-1".to_owned(),
                "no destination: `tenant` is `umbrella`, which names no destination".to_owned()
            ),
            (
                "missing-1".to_owned(),
                "no destination: the event has no string attribute `tenant` (--route-by)"
                    .to_owned()
            ),
        ]
    );
}

/// `serve` with three destinations, one pointed at a closed port: requests for the others are
/// answered 200 (their events in their queues) while the request for the dead one is still
/// retrying; SIGHUP then adds a fourth destination, which takes events at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_destination_holds_back_only_its_own_and_sighup_adds_one() {
    let acme = TestQueue::new("serve-acme").await;
    let globex = TestQueue::new("serve-globex").await;
    let added = TestQueue::new("serve-added").await;
    let dir = TempDir::new("destinations-serve");
    let destinations = dir.join("destinations");
    std::fs::create_dir_all(&destinations).expect("dir");
    connection_file(&destinations, "acme", &acme.url, &acme.localstack);
    connection_file(&destinations, "globex", &globex.url, &globex.localstack);
    let down = closed_endpoint();
    connection_file(&destinations, "down", &acme.url, &down.url);
    let mut server = Running::spawn(
        forwarder()
            .arg("serve")
            .arg("--destinations")
            .arg(&destinations)
            .args(["--route-by", "tenant", "--listen", "127.0.0.1:0"])
            .args([
                "--retry-max-seconds",
                "30",
                "--request-timeout-seconds",
                "60",
            ])
            .args(["--shutdown-timeout-seconds", "1"]),
    );
    let url = listening(&mut server).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let post = |id: String, tenant: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            client
                .post(&url)
                .header("content-type", "application/cloudevents+json")
                .body(routed_event(&id, Some(tenant)))
                .send()
                .await
                .expect("post")
                .status()
                .as_u16()
        }
    };
    let stuck = tokio::spawn(post("down-1".to_owned(), "down"));
    for i in 0..20 {
        let tenant = if i % 2 == 0 { "acme" } else { "globex" };
        assert_eq!(
            post(format!("ok-{i}"), tenant).await,
            200,
            "{}",
            server.stderr_so_far()
        );
    }
    assert!(
        !stuck.is_finished(),
        "the dead destination's request is still retrying"
    );
    assert_eq!(id_counts(&acme.read_all().await).len(), 10);
    assert_eq!(id_counts(&globex.read_all().await).len(), 10);
    assert_eq!(
        post("new-0".to_owned(), "added").await,
        400,
        "not a destination yet"
    );

    connection_file(&destinations, "added", &added.url, &added.localstack);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.stderr_so_far().contains("destinations added: added") {
        assert!(Instant::now() < deadline, "{}", server.stderr_so_far());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(post("new-1".to_owned(), "added").await, 200);
    let ids = id_counts(&added.read_all().await);
    assert_eq!(ids.keys().collect::<Vec<_>>(), ["new-1"]);

    let metrics = support::metrics_text(&client, &url).await;
    for line in [
        "forwarder_events_sent_total{destination=\"acme\"} 10",
        "forwarder_events_sent_total{destination=\"added\"} 1",
        "forwarder_events_sent_total{destination=\"down\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    server.terminate();
    stuck.abort();
    server.wait(Duration::from_secs(120));
}

/// Role mode: two destinations provisioned by the provisioner (`--auth role`), each reached
/// through a recording proxy of its own, with only the platform's key in the environment. Each
/// assumes its own role with its own external id and delivers into its own queue; a third,
/// whose file names a role that cannot be assumed, has its events dead-lettered with the
/// reason while the others deliver.
///
/// LocalStack enforces no trust policy: it hands out credentials for any well-formed role ARN
/// with any external id, so the failing destination names a role ARN its STS refuses
/// (`ValidationError`). On AWS a wrong external id or a missing role fails at the same step
/// (`AccessDenied` from AssumeRole), which is not retried either.
#[tokio::test(flavor = "multi_thread")]
async fn role_mode_destinations_each_assume_their_own_role() {
    let options = testkit::localstack_options().await;
    let clients = provisioner::Clients::new(&options)
        .await
        .expect("AWS clients");
    let dir = TempDir::new("destinations-roles");
    let destinations = dir.join("destinations");
    std::fs::create_dir_all(&destinations).expect("dir");
    let specs: Vec<Spec> = ["acme", "globex"]
        .iter()
        .map(|name| Spec {
            auth: Auth::Role {
                trust_account: Some("000000000000".to_owned()),
                external_id: None,
            },
            force: true,
            out: Some(OutFile {
                path: destinations.join(format!("{name}.json")),
                format: Format::Json,
            }),
            ..Spec::new(testkit::unique(&format!("role-{name}")))
        })
        .collect();
    let outcome = tokio::spawn(deliver_through_roles(
        clients.clone(),
        specs.clone(),
        destinations,
        dir.join("dead.ndjson"),
    ))
    .await;
    let mut failures = Vec::new();
    for spec in &specs {
        if let Err(e) = provisioner::destroy(&clients, spec).await {
            failures.push(format!("destroy {}: {e}", spec.name));
        }
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
    assert!(failures.is_empty(), "{failures:?}");
}

async fn deliver_through_roles(
    clients: provisioner::Clients,
    specs: Vec<Spec>,
    destinations: PathBuf,
    dead: PathBuf,
) {
    let (sqs, _) = testkit::localstack_sqs().await;
    let mut outcomes = Vec::new();
    for spec in &specs {
        outcomes.push(provisioner::apply(&clients, spec).await.expect("apply"));
    }
    let files: Vec<ForwarderConfig> = ["acme", "globex"]
        .iter()
        .map(|name| read_connection(&destinations.join(format!("{name}.json"))))
        .collect();
    for file in &files {
        assert!(
            file.access_key.is_none() && file.role_arn.is_some() && file.external_id.is_some(),
            "role mode writes a role and an external id, no key: {file:?}"
        );
    }
    assert_ne!(files[0].role_arn, files[1].role_arn);
    assert_ne!(files[0].external_id, files[1].external_id);
    let localstack = files[0].endpoint.clone().expect("an endpoint");
    // Acme and globex talk to LocalStack through a proxy of their own, which records what they
    // ask STS; initech, acme's file with a role LocalStack refuses, talks to it directly.
    let mut proxies = Vec::new();
    for (n, name) in ["acme", "globex"].iter().enumerate() {
        let proxy = FaultProxy::start(&localstack, Schedule::default()).await;
        let mut file = files[n].clone();
        file.endpoint = Some(proxy.endpoint().to_owned());
        write_connection(&destinations.join(format!("{name}.json")), &file);
        proxies.push(proxy);
    }
    let mut broken = files[0].clone();
    broken.role_arn = Some("no-such-role".to_owned());
    write_connection(&destinations.join("initech.json"), &broken);
    let tenants = ["acme", "globex", "initech"];
    let lines: Vec<String> = (0..60)
        .map(|i| routed_event(&format!("r-{i}"), Some(tenants[i % 3])))
        .collect();
    let input = destinations.with_file_name("in.ndjson");
    write_lines(&input, &lines);
    let finished = send_routed(&destinations, &dead, &input).await;
    let summary = summary(&finished);
    for (n, name) in ["acme", "globex"].iter().enumerate() {
        let assumed: Vec<(Option<String>, Option<String>)> = proxies[n]
            .stats()
            .query_requests
            .lock()
            .expect("lock")
            .iter()
            .filter(|body| form_value(body, "Action").as_deref() == Some("AssumeRole"))
            .map(|body| (form_value(body, "RoleArn"), form_value(body, "ExternalId")))
            .collect();
        assert!(!assumed.is_empty(), "{name} assumed a role");
        for pair in &assumed {
            assert_eq!(
                pair,
                &(files[n].role_arn.clone(), files[n].external_id.clone()),
                "{name} assumes its own role with its own external id"
            );
        }
        let ids = id_counts(
            &testkit::drain(&sqs, &outcomes[n].resources.queue_url, 20)
                .await
                .into_iter()
                .map(|m| m.body)
                .collect::<Vec<_>>(),
        );
        let expected: HashSet<String> = (0..60)
            .filter(|i| i % 3 == n)
            .map(|i| format!("r-{i}"))
            .collect();
        assert_eq!(
            ids.keys().cloned().collect::<HashSet<_>>(),
            expected,
            "{name}: {}",
            finished.stderr
        );
        assert_eq!(summary["destinations"][name]["sent"].as_u64(), Some(20));
    }
    let dead = dead_letters(&dead);
    let ids: HashSet<String> = dead.iter().filter_map(|(id, ..)| id.clone()).collect();
    let expected: HashSet<String> = (0..60)
        .filter(|i| i % 3 == 2)
        .map(|i| format!("r-{i}"))
        .collect();
    assert_eq!(ids, expected, "{}", finished.stderr);
    for (_, reason, _) in &dead {
        assert!(
            reason.contains("loading credentials") && reason.contains("no-such-role is invalid"),
            "the reason names the role: {reason}"
        );
    }
    assert_eq!(summary["destinations"]["initech"]["sent"].as_u64(), Some(0));
}

/// `forwarder send --destinations DIR --route-by tenant` of `input`, waited for off the
/// runtime (a test's proxies need its workers meanwhile).
async fn send_routed(destinations: &Path, dead: &Path, input: &Path) -> support::Finished {
    let mut send = forwarder();
    send.arg("send")
        .arg("--destinations")
        .arg(destinations)
        .args(["--route-by", "tenant", "--summary-json", "--dead-letter"])
        .arg(dead)
        .arg(input);
    tokio::task::spawn_blocking(move || Running::spawn(&mut send).wait(Duration::from_secs(120)))
        .await
        .expect("send")
}

fn read_connection(path: &Path) -> ForwarderConfig {
    aws_access::connection::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .0
}

fn write_connection(path: &Path, file: &ForwarderConfig) {
    aws_access::connection::write_private(path, &file.render(Format::Json))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// The decoded value of `key` in a form-encoded body.
fn form_value(body: &str, key: &str) -> Option<String> {
    let raw = body
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))?;
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}
