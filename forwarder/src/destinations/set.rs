//! [`Destinations`]: the destinations in force and how an event finds its own. Either the one
//! queue of `--config`/`--queue-url` (every event goes there), or a directory of connection
//! files with a route attribute, read again by [`Destinations::reload`] (on SIGHUP).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use aws_access::connection::ForwarderConfig;
use tokio::task::JoinHandle;

use super::client::connect;
use super::destination::Destination;
use super::directory::{Changes, DirectoryError, diff, scan};
use super::name::DestinationName;
use super::route::{RouteError, resolve};
use crate::event::Event;
use crate::message::MessageOptions;
use crate::metrics::Metrics;
use crate::pipeline::{Forwarder, Options};

/// How each destination of a directory is run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The attribute whose value names the destination (`--route-by`).
    pub route_by: String,
    /// How events become messages; `fifo` is set per destination from its queue URL.
    pub message: MessageOptions,
    /// Each destination's batching, in-flight limit and retry budget.
    pub pipeline: Options,
    /// Messages of one destination waiting for an answer, at most.
    pub window: usize,
    /// Allow plain http to a non-loopback endpoint.
    pub allow_insecure_endpoint: bool,
}

/// What a reload did, for the log.
#[derive(Debug, Default)]
pub struct Reload {
    /// The names added, removed and changed.
    pub changes: Changes,
    /// One line per file that could not be used (the destination keeps what was in force).
    pub errors: Vec<String>,
    /// Warnings about files others can read.
    pub warnings: Vec<String>,
}

/// The destinations in force; see the module documentation.
#[derive(Debug)]
pub struct Destinations {
    mode: Mode,
    /// Events received and refused before they had a destination.
    metrics: Arc<Metrics>,
    feeders: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug)]
enum Mode {
    Single(Arc<Destination>),
    Directory(Box<Directory>),
}

#[derive(Debug)]
struct Directory {
    dir: PathBuf,
    settings: Settings,
    current: RwLock<BTreeMap<DestinationName, Arc<Destination>>>,
    /// What is in force, as the files said it, for the next diff; a reload at a time.
    configs: tokio::sync::Mutex<BTreeMap<DestinationName, ForwarderConfig>>,
    /// Every destination's counters, kept across changes and removals.
    metrics: Mutex<BTreeMap<DestinationName, Arc<Metrics>>>,
}

impl Destinations {
    /// Every event goes to `forwarder`'s queue.
    pub fn single(forwarder: Forwarder, message: MessageOptions, window: usize) -> Destinations {
        let metrics = Arc::clone(forwarder.metrics());
        let (destination, feeder) = Destination::start(None, forwarder, message, window);
        Destinations {
            mode: Mode::Single(Arc::new(destination)),
            metrics,
            feeders: Mutex::new(vec![feeder]),
        }
    }

    /// The destinations of `dir`, routed by `settings.route_by`. A file that cannot be used is
    /// reported in the returned [`Reload`] and the others are started.
    pub async fn open(
        dir: &Path,
        settings: Settings,
    ) -> Result<(Destinations, Reload), DirectoryError> {
        let destinations = Destinations {
            mode: Mode::Directory(Box::new(Directory {
                dir: dir.to_owned(),
                settings,
                current: RwLock::default(),
                configs: tokio::sync::Mutex::default(),
                metrics: Mutex::default(),
            })),
            metrics: Arc::new(Metrics::default()),
            feeders: Mutex::default(),
        };
        let reload = destinations.reload().await?;
        Ok((destinations, reload))
    }

    /// Reads the directory again: starts the destinations added, replaces the changed ones and
    /// drops the removed ones (which finish their in-flight work). A file that cannot be used
    /// keeps what was in force for its name. Nothing to do with a single queue.
    pub async fn reload(&self) -> Result<Reload, DirectoryError> {
        let Mode::Directory(directory) = &self.mode else {
            return Ok(Reload::default());
        };
        let mut configs = directory.configs.lock().await;
        let found = scan(&directory.dir)?;
        let mut wanted = found.destinations;
        for name in &found.broken {
            if let Some(config) = configs.get(name) {
                wanted.insert(name.clone(), config.clone());
            }
        }
        let changes = diff(&configs, &wanted);
        let mut reload = Reload {
            errors: found.errors,
            warnings: found.warnings,
            changes: Changes {
                removed: changes.removed.clone(),
                ..Changes::default()
            },
        };
        let mut started = Vec::new();
        for (name, added) in changes
            .added
            .iter()
            .map(|n| (n, true))
            .chain(changes.changed.iter().map(|n| (n, false)))
        {
            let config = &wanted[name];
            match directory.start(name, config).await {
                Ok((destination, feeder)) => {
                    started.push((name.clone(), Arc::new(destination), feeder));
                    configs.insert(name.clone(), config.clone());
                    if added {
                        reload.changes.added.push(name.clone());
                    } else {
                        reload.changes.changed.push(name.clone());
                    }
                }
                Err(error) => reload.errors.push(format!(
                    "destination `{name}` ({}): {error}",
                    directory.dir.join(name.as_str()).display()
                )),
            }
        }
        for name in &changes.removed {
            configs.remove(name);
        }
        let mut feeders = self.feeders.lock().unwrap_or_else(|e| e.into_inner());
        feeders.retain(|feeder| !feeder.is_finished());
        let mut current = directory.current.write().unwrap_or_else(|e| e.into_inner());
        for name in &changes.removed {
            current.remove(name);
        }
        for (name, destination, feeder) in started {
            current.insert(name, destination);
            feeders.push(feeder);
        }
        Ok(reload)
    }

    /// Whether every event goes to the one queue of `--config`/`--queue-url`.
    pub fn is_single(&self) -> bool {
        matches!(self.mode, Mode::Single(_))
    }

    /// The destination of `event`: the single queue, or the one its route attribute names,
    /// which counts it as received.
    pub fn route(&self, event: &Event) -> Result<Arc<Destination>, RouteError> {
        match &self.mode {
            Mode::Single(destination) => Ok(Arc::clone(destination)),
            Mode::Directory(directory) => {
                let current = directory.current.read().unwrap_or_else(|e| e.into_inner());
                let destination = resolve(event, &directory.settings.route_by, |value| {
                    DestinationName::parse(value)
                        .ok()
                        .and_then(|name| current.get(&name).cloned())
                })?;
                Metrics::inc(&destination.metrics().received);
                Ok(destination)
            }
        }
    }

    /// The counters of events before routing: received, and refused (invalid, unroutable, too
    /// large). With a single queue, that queue's counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Every destination's counters by name, removed ones included; empty with a single queue.
    pub fn per_destination(&self) -> Vec<(DestinationName, Arc<Metrics>)> {
        match &self.mode {
            Mode::Single(_) => Vec::new(),
            Mode::Directory(directory) => directory
                .metrics
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(name, metrics)| (name.clone(), Arc::clone(metrics)))
                .collect(),
        }
    }

    /// The counters that `send`'s summary totals: the single queue's, or every destination's.
    pub fn delivery_metrics(&self) -> Vec<Arc<Metrics>> {
        match &self.mode {
            Mode::Single(destination) => vec![Arc::clone(destination.metrics())],
            Mode::Directory(_) => self
                .per_destination()
                .into_iter()
                .map(|(_, metrics)| metrics)
                .collect(),
        }
    }

    /// Returns once every message submitted so far has its answer.
    pub async fn flush(&self) {
        for destination in self.in_force() {
            destination.flush().await;
        }
    }

    /// Delivers what every destination holds, then stops them all.
    pub async fn shutdown(self) {
        let Destinations { mode, feeders, .. } = self;
        drop(mode);
        let feeders = feeders.into_inner().unwrap_or_else(|e| e.into_inner());
        for feeder in feeders {
            let _ = feeder.await;
        }
    }

    fn in_force(&self) -> Vec<Arc<Destination>> {
        match &self.mode {
            Mode::Single(destination) => vec![Arc::clone(destination)],
            Mode::Directory(directory) => directory
                .current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned()
                .collect(),
        }
    }
}

impl Directory {
    /// Starts a destination of its own for `config`: client, credentials, forwarder, feeder.
    async fn start(
        &self,
        name: &DestinationName,
        config: &ForwarderConfig,
    ) -> Result<(Destination, JoinHandle<()>), super::client::ConnectError> {
        let sqs = connect(config, self.settings.allow_insecure_endpoint).await?;
        let message = MessageOptions {
            fifo: sqs.queue_url().is_fifo(),
            ..self.settings.message.clone()
        };
        let metrics = Arc::clone(
            self.metrics
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(name.clone())
                .or_default(),
        );
        let forwarder = Forwarder::start(sqs, self.settings.pipeline.clone(), metrics);
        Ok(Destination::start(
            Some(name.clone()),
            forwarder,
            message,
            self.settings.window,
        ))
    }
}
