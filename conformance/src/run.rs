//! `conformance run`, the fidelity run: a queue and a send-only identity for the producer under
//! test, the producer run with the vectors, the queue read back in full and compared.
//!
//! Steps: the vectors are read and judged first (a bad vector file stops the run before
//! anything is created); the provisioner creates a queue `ce-kit-…` (FIFO with `fifo`) and a
//! user whose only right is `sqs:SendMessage` on it, and writes its connection file; the
//! producer runs as `sh -c COMMAND` with `CE_VECTORS` (the vectors, NDJSON) and `CE_CONFIG`
//! (the connection file) in its environment, its standard output sent to standard error so
//! that standard output stays the report's; after it exits, the queue is consumed until a
//! receive comes back empty; then the queue and the user are destroyed, whatever happened
//! before (unless `keep`).

use std::os::fd::AsFd as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use aws_access::connection::Format;
use aws_access::sdk::AwsOptions;
use provisioner::plan::OutFile;
use provisioner::{Clients, Spec};

use crate::check::{self, CheckOptions};
use crate::client::{NoRegion, sqs_client};
use crate::fidelity::{self, Fidelity, Vector};

/// What to run and where.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The producer's command line, run with `sh -c`.
    pub producer: String,
    /// The vectors, NDJSON.
    pub vectors: String,
    /// A FIFO queue: order within each message group is checked too.
    pub fifo: bool,
    /// Where to provision, with the credentials that may create queues and users.
    pub aws: AwsOptions,
    /// How long the producer may take.
    pub timeout: Duration,
    /// Leave the queue and the user in place (their names are printed).
    pub keep: bool,
}

/// How the producer ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ProducerExit {
    /// It exited with this status.
    Exited {
        /// The exit status.
        code: i32,
    },
    /// A signal ended it.
    Signalled,
    /// It ran longer than the timeout and was killed.
    TimedOut {
        /// The timeout, in seconds.
        seconds: u64,
    },
}

impl ProducerExit {
    /// Whether the producer succeeded.
    pub fn success(&self) -> bool {
        *self == ProducerExit::Exited { code: 0 }
    }
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// How the producer ended.
    pub producer: ProducerExit,
    /// The comparison of the queue with the vectors.
    pub fidelity: Fidelity,
    /// The queue's URL.
    pub queue_url: String,
}

impl RunReport {
    /// Whether the producer succeeded and delivered every vector exactly once, intact.
    pub fn passed(&self) -> bool {
        self.producer.success() && self.fidelity.passed()
    }
}

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The vector file is not usable.
    #[error(transparent)]
    Vectors(#[from] fidelity::VectorError),
    /// There are no vectors.
    #[error("the vector file holds no events")]
    NoVectors,
    /// Provisioning or tearing down failed.
    #[error("provisioning: {0}")]
    Provision(#[from] provisioner::ProvisionError),
    /// No region to read the queue in.
    #[error(transparent)]
    Region(#[from] NoRegion),
    /// Reading the queue failed.
    #[error(transparent)]
    Check(#[from] check::CheckError),
    /// A scratch file or the producer could not be handled.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// What the operating system said.
        source: std::io::Error,
    },
}

/// Runs the producer against a fresh queue and compares what it delivered with the vectors.
pub async fn run(options: &RunOptions) -> Result<RunReport, RunError> {
    let vectors = fidelity::read_vectors(&options.vectors)?;
    if vectors.is_empty() {
        return Err(RunError::NoVectors);
    }
    let scratch = Scratch::new()?;
    let vectors_path = scratch.write("vectors.ndjson", &options.vectors)?;
    let config_path = scratch.0.join("connection.json");
    let clients = Clients::new(&options.aws).await?;
    let mut spec = Spec::new(queue_name());
    spec.fifo = options.fifo;
    spec.force = true;
    spec.out = Some(OutFile {
        path: config_path.clone(),
        format: Format::Json,
    });
    let outcome = provisioner::apply(&clients, &spec).await?;
    let queue_url = outcome.config.queue_url.clone();
    let result = produce_and_read(options, &vectors, &vectors_path, &config_path, &queue_url).await;
    if options.keep {
        eprintln!(
            "conformance: kept queue {queue_url} and its user (provisioner destroy --name {} to remove them)",
            spec.name
        );
    } else {
        provisioner::destroy(&clients, &spec).await?;
    }
    let (producer, fidelity) = result?;
    Ok(RunReport {
        producer,
        fidelity,
        queue_url,
    })
}

async fn produce_and_read(
    options: &RunOptions,
    vectors: &[Vector],
    vectors_path: &Path,
    config_path: &Path,
    queue_url: &str,
) -> Result<(ProducerExit, Fidelity), RunError> {
    let producer = produce(options, vectors_path, config_path).await?;
    // The judge's own client reads the queue back, with the credentials that provisioned it.
    let client = sqs_client(
        options.aws.endpoint_url.as_deref(),
        options.aws.region.as_deref(),
    )
    .await?;
    let read = check::check_queue(
        &client,
        queue_url,
        CheckOptions {
            delete: true,
            allow_receive_count: false,
        },
    )
    .await?;
    let messages: Vec<_> = read.into_iter().map(|(message, _)| message).collect();
    Ok((
        producer,
        fidelity::compare(vectors, &messages, options.fifo),
    ))
}

/// Runs the producer to its end (or its timeout).
async fn produce(
    options: &RunOptions,
    vectors_path: &Path,
    config_path: &Path,
) -> Result<ProducerExit, RunError> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| RunError::Io { what, source }
    };
    // The producer's standard output goes to our standard error: ours is the report's.
    let stdout = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(io("duplicating standard error"))?;
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&options.producer)
        .env("CE_VECTORS", vectors_path)
        .env("CE_CONFIG", config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .kill_on_drop(true)
        .spawn()
        .map_err(io("starting the producer with sh -c"))?;
    match tokio::time::timeout(options.timeout, child.wait()).await {
        Ok(status) => {
            let status = status.map_err(io("waiting for the producer"))?;
            Ok(match status.code() {
                Some(code) => ProducerExit::Exited { code },
                None => ProducerExit::Signalled,
            })
        }
        Err(_) => {
            let _ = child.kill().await;
            Ok(ProducerExit::TimedOut {
                seconds: options.timeout.as_secs(),
            })
        }
    }
}

/// A queue name no other run picks.
fn queue_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("ce-kit-{}-{nanos:09}", std::process::id())
}

/// A private scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, RunError> {
        let path = std::env::temp_dir().join(format!("ce-kit-{}", queue_name()));
        let io = |source| RunError::Io {
            what: format!("creating {}", path.display()),
            source,
        };
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(io)?;
        Ok(Scratch(path))
    }

    fn write(&self, name: &str, contents: &str) -> Result<PathBuf, RunError> {
        let path = self.0.join(name);
        std::fs::write(&path, contents).map_err(|source| RunError::Io {
            what: format!("writing {}", path.display()),
            source,
        })?;
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
