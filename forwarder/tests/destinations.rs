//! `--destinations DIR --route-by ATTRIBUTE` against LocalStack: every event in its own
//! destination's queue and in no other, the unroutable ones dead-lettered with the reason, a
//! destination nobody answers holding back only its own events, and SIGHUP adding a
//! destination without a restart.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use support::{
    Running, TestQueue, connection_file, dead_letters, forwarder, id_counts, listening,
    routed_event, summary, write_lines,
};
use testkit::TempDir;

/// A port nothing listens on: connections are refused at once.
fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

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
    let finished = Running::spawn(
        forwarder()
            .arg("send")
            .arg("--destinations")
            .arg(&destinations)
            .args(["--route-by", "tenant", "--summary-json", "--dead-letter"])
            .arg(&dead)
            .arg(&input),
    )
    .wait(Duration::from_secs(120));
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
    connection_file(&destinations, "down", &acme.url, &closed_endpoint());
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

    let metrics = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
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
