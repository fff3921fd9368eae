//! The launcher against the real pinned `nats-server`: a server of its own speaks JetStream (a
//! stream is created and a message stored, through the NATS protocol itself) and is gone once
//! dropped; an external URL is used without installing anything and refused without JetStream;
//! racing callers of the persistent server start exactly one, which `stop` takes down.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nats_launch::{Config, Error, NatsUrl};
use serde_json::Value;

/// The configuration from the environment, but always a server of our own: `NATS_URL` would
/// make these tests check someone else's server.
fn config() -> Config {
    let mut config = Config::from_env().expect("the environment is valid");
    config.external = None;
    config
}

/// A directory of this test's own under the state directory, empty.
fn scratch(config: &Config, name: &str) -> PathBuf {
    let dir = config
        .state_dir
        .join(format!("test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A raw NATS protocol connection: enough to prove JetStream answers.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    /// Connects and returns the client with the server's `INFO` JSON.
    fn connect(url: &str) -> (Client, Value) {
        let authority = url.strip_prefix("nats://").expect("a nats:// URL");
        let stream = TcpStream::connect(authority).expect("the server accepts a connection");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("a read timeout");
        let writer = stream.try_clone().expect("a second handle");
        let mut client = Client {
            reader: BufReader::new(stream),
            writer,
        };
        let line = client.line();
        let info = line
            .strip_prefix("INFO ")
            .unwrap_or_else(|| panic!("the first line is not INFO: {line}"));
        let info: Value = serde_json::from_str(info).expect("INFO is JSON");
        client.send("CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB _INBOX.test 1\r\n");
        (client, info)
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("a protocol line");
        line.trim_end().to_owned()
    }

    fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).expect("sent");
    }

    /// Publishes `payload` to `subject` with our inbox as the reply subject and returns the
    /// JSON of the reply.
    fn request(&mut self, subject: &str, payload: &str) -> Value {
        self.send(&format!(
            "PUB {subject} _INBOX.test {}\r\n{payload}\r\n",
            payload.len()
        ));
        loop {
            let line = self.line();
            if line == "PING" {
                self.send("PONG\r\n");
                continue;
            }
            let size: usize = match line.strip_prefix("MSG _INBOX.test 1 ") {
                Some(size) => size.parse().expect("a payload size"),
                None => panic!("expected the reply to {subject}, got {line}"),
            };
            let mut body = vec![0; size + 2];
            self.reader.read_exact(&mut body).expect("the payload");
            return serde_json::from_slice(&body[..size]).expect("the reply is JSON");
        }
    }
}

fn answers(port: u16) -> bool {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn is_process(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_server_of_its_own_speaks_jetstream_and_is_gone_once_dropped() {
    let nats = nats_launch::start(&config()).expect("a server starts");
    let url = nats.url().to_owned();
    assert!(url.starts_with("nats://127.0.0.1:"), "{url}");
    let pid = nats.pid().expect("a server of its own has a pid");
    let store = nats.store_dir().expect("and a store").to_owned();

    let (mut client, info) = Client::connect(&url);
    assert_eq!(info["jetstream"], true, "INFO: {info}");
    assert_eq!(info["version"], nats_launch::VERSION, "INFO: {info}");
    let created = client.request(
        "$JS.API.STREAM.CREATE.LAUNCH",
        r#"{"name":"LAUNCH","subjects":["launch.>"],"storage":"file"}"#,
    );
    assert_eq!(
        created["type"],
        "io.nats.jetstream.api.v1.stream_create_response"
    );
    assert_eq!(created["config"]["storage"], "file", "{created}");
    let ack = client.request("launch.hello", r#"{"n":1}"#);
    assert_eq!(ack["stream"], "LAUNCH", "{ack}");
    assert_eq!(ack["seq"], 1, "{ack}");
    let account = client.request("$JS.API.INFO", "");
    assert_eq!(account["streams"], 1, "{account}");
    assert!(
        store.join("jetstream").exists(),
        "the stream is not in {}",
        store.display()
    );

    let other = nats_launch::start(&config()).expect("a second server");
    assert_ne!(other.url(), url, "each caller has a server of its own");

    drop(client);
    drop(nats);
    assert!(!is_process(pid), "pid {pid} is still there after drop");
    assert!(
        !answers(info["port"].as_u64().map_or(0, |p| p as u16)),
        "{url} still answers"
    );
    assert!(!store.exists(), "{} is left behind", store.display());
    assert!(
        answers(other.port()),
        "dropping one server stopped the other"
    );
}

#[test]
fn an_external_server_is_used_as_is_and_needs_jetstream() {
    let own = nats_launch::start(&config()).expect("a server starts");
    let mut external = config();
    external.state_dir = scratch(&external, "external");
    external.external = Some(NatsUrl::parse(own.url()).expect("its URL parses"));
    let used = nats_launch::start(&external).expect("the external server is used");
    assert_eq!(used.url(), own.url());
    assert_eq!(used.pid(), None);
    assert!(
        !external.state_dir.exists(),
        "an external server needs no installation"
    );
    drop(used);
    assert!(
        answers(own.port()),
        "dropping an external handle stopped the server"
    );

    // The same binary without -js: a real server, refused.
    let binary = nats_launch::server_binary(&config()).expect("the pinned binary");
    let port = {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free port");
        listener.local_addr().expect("its address").port()
    };
    let mut plain = Command::new(binary)
        .args(["--addr", "127.0.0.1", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server without JetStream starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answers(port) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = nats_launch::probe(&NatsUrl::loopback(port));
    let _ = plain.kill();
    let _ = plain.wait();
    assert!(
        matches!(&refused, Err(Error::NoJetStream { url }) if *url == format!("nats://127.0.0.1:{port}")),
        "{refused:?}"
    );

    let nobody = nats_launch::probe(&NatsUrl::loopback(port));
    assert!(
        matches!(nobody, Err(Error::Unreachable { .. })),
        "{nobody:?}"
    );
}

#[test]
fn racing_callers_share_one_persistent_server_until_stop() {
    let mut config = config();
    config.shared_dir = scratch(&config, "shared");
    let racers: Vec<_> = (0..3)
        .map(|_| {
            let config = config.clone();
            std::thread::spawn(move || nats_launch::shared(&config).expect("shared starts"))
        })
        .collect();
    let servers: Vec<_> = racers
        .into_iter()
        .map(|racer| racer.join().expect("no panic"))
        .collect();
    let pids: Vec<u32> = servers
        .iter()
        .map(|s| s.state().expect("recorded").pid)
        .collect();
    assert!(
        pids.iter().all(|&p| p == pids[0]),
        "several servers: {pids:?}"
    );
    assert_eq!(servers.iter().filter(|s| s.started()).count(), 1);

    let status = nats_launch::status(&config)
        .expect("status answers")
        .expect("running");
    assert_eq!(status.url(), servers[0].url());
    let state = status.state().expect("recorded").clone();
    let (_, info) = Client::connect(status.url());
    assert_eq!(info["jetstream"], true, "INFO: {info}");

    assert!(nats_launch::stop(&config).expect("stop"), "it was running");
    assert!(!answers(state.port), "{} still answers", state.url);
    assert!(nats_launch::status(&config).expect("status").is_none());
    assert!(
        !nats_launch::stop(&config).expect("stop again"),
        "nothing left to stop"
    );
    let _ = std::fs::remove_dir_all(&config.shared_dir);
}
