//! The container backend: testcontainers runs a LocalStack image (by default the official
//! `localstack/localstack:4.14.0`, or `LOCALSTACK_IMAGE`), waiting for `Ready.` like the
//! `testcontainers-modules` LocalStack module does.
//!
//! The container lives on a thread with its own runtime, so that this API stays blocking and
//! can be used from inside or outside a tokio runtime; dropping the [`Guard`] removes it.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use testcontainers_modules::localstack::LocalStack as LocalStackImage;
use testcontainers_modules::testcontainers::ImageExt;
use testcontainers_modules::testcontainers::runners::AsyncRunner;

use crate::{Config, Error};

/// Keeps the container alive; dropping it removes the container.
pub(crate) struct Guard {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts a container from `config.image` and returns its endpoint.
pub(crate) fn start(config: &Config) -> Result<(String, Guard), Error> {
    let (name, tag) = split_image(&config.image);
    let image = config.image.clone();
    let mut request = LocalStackImage::default()
        .with_name(name)
        .with_tag(tag)
        .with_env_var("SERVICES", crate::SERVICES.join(","))
        .with_env_var("SQS_ENDPOINT_STRATEGY", "path")
        .with_startup_timeout(Duration::from_secs(180));
    if let Some(token) = &config.auth_token {
        request = request.with_env_var("LOCALSTACK_AUTH_TOKEN", token.clone());
    }
    let (ready_tx, ready_rx) = mpsc::channel::<Result<String, String>>();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                let _ = ready_tx.send(Err(e.to_string()));
                return;
            }
        };
        runtime.block_on(async move {
            let container = match request.start().await {
                Ok(container) => container,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let endpoint = async {
                let host = container.get_host().await?;
                let port = container.get_host_port_ipv4(4566).await?;
                Ok::<_, testcontainers_modules::testcontainers::TestcontainersError>(format!(
                    "http://{host}:{port}"
                ))
            }
            .await;
            let failed = endpoint.is_err();
            let _ = ready_tx.send(endpoint.map_err(|e| e.to_string()));
            if !failed {
                // Wait until the guard is dropped (the sender goes away).
                let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
            }
            let _ = container.rm().await;
        });
    });
    match ready_rx.recv() {
        Ok(Ok(endpoint)) => {
            let endpoint = endpoint.replace("http://localhost:", "http://127.0.0.1:");
            crate::health::check(&endpoint).map_err(|reason| Error::Unhealthy {
                endpoint: endpoint.clone(),
                reason,
            })?;
            Ok((
                endpoint,
                Guard {
                    stop: Some(stop_tx),
                    thread: Some(thread),
                },
            ))
        }
        Ok(Err(reason)) => {
            let _ = thread.join();
            Err(Error::Container(format!(
                "cannot start {image}: {reason}; where no registry is reachable, build a local image with \
                 `cargo xtask localstack image` and set LOCALSTACK_IMAGE=localstack-local:2026.3.0"
            )))
        }
        Err(_) => Err(Error::Container(format!(
            "the thread starting {image} ended without an answer"
        ))),
    }
}

fn split_image(image: &str) -> (String, String) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.to_owned(), tag.to_owned()),
        _ => (image.to_owned(), "latest".to_owned()),
    }
}
