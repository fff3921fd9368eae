//! The fault test of `forwarder consume` (issue 16): three instances (processes) share one
//! durable consumer on a real NATS JetStream server (from `nats-launch`), events for three
//! destinations in real LocalStack queues, one of them FIFO. One instance is killed with
//! SIGKILL mid-stream and one destination is black-holed for 15 s by the fault proxy. Asserted:
//! no event lost (every id in its own destination's queue), none misdelivered (in no other
//! queue), and no duplicate on the FIFO destination; duplicates elsewhere are counted and
//! printed, as is each destination's throughput (never asserted: machines are noisy).
//!
//! `CONSUME_EVENTS` sets the number of events (default 20,000).

mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use aws_sdk_sqs::types::QueueAttributeName;
use support::fault_proxy::{FaultProxy, Schedule, Window};
use support::{Running, TestQueue, connection_file, dead_letters, env_u64, forwarder, id_counts};
use testkit::TempDir;

const NAMES: [&str; 3] = ["acme", "globex", "initech"];

fn event(i: u64) -> (String, &'static str, String) {
    let tenant = NAMES[(i % 3) as usize];
    let id = format!("ev-{i}");
    let line = format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"/devices/{}","type":"com.example.reading","tenant":"{tenant}","data":{{"i":{i}}}}}"#,
        i % 17
    );
    (id, tenant, line)
}

fn kill(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {signal} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_a_sigkill_and_a_black_hole_lose_and_misroute_nothing() {
    let total = env_u64("CONSUME_EVENTS", 20_000);
    let nats = tokio::task::spawn_blocking(|| {
        let config = nats_launch::Config::from_env().expect("NATS configuration");
        nats_launch::start(&config).expect("a NATS server")
    })
    .await
    .expect("start NATS");
    let acme = TestQueue::new("consume-acme").await;
    let globex = TestQueue::new("consume-globex").await;
    let initech = testkit::TestQueue::with(
        "consume-initech",
        &[(QueueAttributeName::FifoQueue, "true")],
    )
    .await;
    // The black hole starts once globex's traffic is under way, and lasts 15 s.
    let proxy = FaultProxy::start(
        &globex.localstack,
        Schedule {
            outage: Some(Window {
                after_requests: 30,
                length: Duration::from_secs(15),
            }),
            ..Schedule::default()
        },
    )
    .await;
    let dir = TempDir::new("consume-fault");
    let destinations = dir.join("destinations");
    std::fs::create_dir_all(&destinations).expect("dir");
    connection_file(&destinations, "acme", &acme.url, &acme.localstack);
    connection_file(&destinations, "globex", &globex.url, proxy.endpoint());
    connection_file(&destinations, "initech", &initech.url, &initech.endpoint);

    let client = async_nats::connect(nats.url())
        .await
        .expect("connect to NATS");
    let context = jetstream::new(client);
    let stream = testkit::names::unique("EVENTS").replace(['-', '.'], "_");
    context
        .create_stream(jetstream::stream::Config {
            name: stream.clone(),
            subjects: vec![format!("{stream}.>")],
            ..Default::default()
        })
        .await
        .expect("create the stream");
    let mut expected: HashMap<&str, HashSet<String>> = HashMap::new();
    let mut acks = Vec::new();
    for i in 0..total {
        let (id, tenant, line) = event(i);
        expected.entry(tenant).or_default().insert(id);
        let ack = context
            .publish(format!("{stream}.{tenant}"), line.into())
            .await
            .expect("publish");
        acks.push(ack);
        if acks.len() >= 1000 {
            for ack in acks.drain(..) {
                ack.await.expect("the stream stored it");
            }
        }
    }
    for ack in acks.drain(..) {
        ack.await.expect("the stream stored it");
    }

    let durable = "forwarders";
    let started = Instant::now();
    let mut instances: Vec<Running> = (0..3)
        .map(|n| {
            Running::spawn(
                forwarder()
                    .arg("consume")
                    .args(["--nats-url", nats.url(), "--stream", &stream])
                    .args(["--durable", durable, "--route-by", "tenant"])
                    .arg("--destinations")
                    .arg(&destinations)
                    .arg("--dead-letter")
                    .arg(dir.join(format!("dead-{n}.ndjson")))
                    .args(["--ack-wait-seconds", "5", "--nak-delay-seconds", "1"])
                    .args(["--summary-json"]),
            )
        })
        .collect();
    let consumer: jetstream::consumer::PullConsumer = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let stream = context.get_stream(&stream).await.expect("stream");
            if let Ok(consumer) = stream.get_consumer(durable).await {
                break consumer;
            }
            assert!(
                Instant::now() < deadline,
                "{}",
                instances[0].stderr_so_far()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    // SIGKILL one instance once a fifth of the stream is handed out (the ack floor would wait for
    // the black-holed destination).
    let mut killed = false;
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let mut consumer = consumer.clone();
        let info = consumer.info().await.expect("consumer info").clone();
        let handed_out = total - info.num_pending.min(total);
        // Prefetching hands out a pull's worth at once: give the instances a moment to be
        // mid-work (a trigger, not an assertion).
        if !killed && handed_out >= total / 5 && started.elapsed() > Duration::from_secs(3) {
            kill(instances[0].pid(), "-KILL");
            killed = true;
            eprintln!(
                "killed instance 0 with {handed_out} handed out after {:?}",
                started.elapsed()
            );
        }
        if killed && info.num_pending == 0 && info.num_ack_pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not done: {info:?}\n{}",
            support::tail(&instances[1].stderr_so_far(), 20)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    for instance in &instances[1..] {
        instance.terminate();
    }
    let mut summaries = Vec::new();
    for instance in instances.drain(1..) {
        let finished = instance.wait(Duration::from_secs(60));
        assert_eq!(finished.status.code(), Some(0), "{}", finished.stderr);
        summaries.push(support::summary(&finished));
    }
    let dead: Vec<_> = (0..3)
        .flat_map(|n| dead_letters(&dir.join(format!("dead-{n}.ndjson"))))
        .collect();
    assert!(dead.is_empty(), "nothing is dead-lettered: {dead:?}");

    let received = [
        id_counts(&acme.read_all().await),
        id_counts(&globex.read_all().await),
        id_counts(
            &initech
                .drain(expected["initech"].len())
                .await
                .into_iter()
                .map(|m| m.body)
                .collect::<Vec<_>>(),
        ),
    ];
    let mut report = Vec::new();
    for (n, name) in NAMES.iter().enumerate() {
        let ids: HashSet<String> = received[n].keys().cloned().collect();
        let missing = expected[name].difference(&ids).count();
        let foreign = ids.difference(&expected[name]).count();
        let duplicates: u64 = received[n].values().map(|c| c - 1).sum();
        report.push(format!(
            "{name}: {} expected, {missing} lost, {foreign} misdelivered, {duplicates} duplicates",
            expected[name].len()
        ));
        assert_eq!((missing, foreign), (0, 0), "{name}: {report:?}");
        if *name == "initech" {
            assert_eq!(
                duplicates, 0,
                "the FIFO destination deduplicates: {report:?}"
            );
        }
    }
    eprintln!(
        "{total} events in {elapsed:?} ({:.0}/s); {}; proxy: {}; summaries: {summaries:?}",
        total as f64 / elapsed.as_secs_f64(),
        report.join("; "),
        proxy.stats().to_json()
    );
    assert!(
        proxy
            .stats()
            .black_holed
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0,
        "the outage happened"
    );
}
