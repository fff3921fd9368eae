//! The container backend: testcontainers runs a LocalStack image (by default the official
//! `localstack/localstack:4.14.0`, or `LOCALSTACK_IMAGE`, such as the local image that
//! `cargo xtask localstack image` builds), waiting for `Ready.` like the `testcontainers-modules`
//! LocalStack module does, then for the health to list every service.
//!
//! The gateway is published on a free port of the host chosen beforehand, so that LocalStack can
//! be told (`LOCALSTACK_HOST`) to build queue URLs with the address the caller uses, as the host
//! backend does.
//!
//! The container lives on a thread with its own runtime, so that this API stays blocking and
//! can be used from inside or outside a tokio runtime; dropping the [`Guard`] removes it. Every
//! container carries the label `org.localstack.backend=container`, and one of its own by which a
//! start that fails half-way removes what it created.

use std::collections::HashMap;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use testcontainers_modules::testcontainers::bollard::Docker;
use testcontainers_modules::testcontainers::bollard::query_parameters::{
    ListContainersOptions, RemoveContainerOptions,
};
use testcontainers_modules::testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::{ContainerRequest, GenericImage, ImageExt};

use crate::{Config, Error, health};

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

/// The label every container of this backend carries.
const BACKEND_LABEL: (&str, &str) = ("org.localstack.backend", "container");
/// The label that tells one start's container from another's.
const INSTANCE_LABEL: &str = "org.localstack.instance";
/// The gateway's port inside the container.
const GATEWAY_PORT: u16 = 4566;
/// How long the image may take to print `Ready.`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the health may take to list every service after `Ready.`.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts a container from `config.image` and returns its endpoint.
pub(crate) fn start(config: &Config) -> Result<(String, Guard), Error> {
    let started = Instant::now();
    // A port of 127.0.0.1 that is free now, for Docker to publish the gateway on.
    let port = venv_launch::port::free()?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let instance = format!(
        "{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let request = request(config, port, &instance);
    eprintln!(
        "localstack: starting a container from {} on {endpoint}",
        config.image
    );
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
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
                    // A start that timed out leaves its container behind: remove it.
                    remove_instance(&instance).await;
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            // Wait until the guard is dropped (the sender goes away).
            let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
            if let Err(e) = container.rm().await {
                eprintln!("localstack: cannot remove the container: {e}");
            }
        });
    });
    match ready_rx.recv() {
        Ok(Ok(())) => {
            let guard = Guard {
                stop: Some(stop_tx),
                thread: Some(thread),
            };
            wait_healthy(&endpoint)?;
            eprintln!(
                "localstack: container ready in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            Ok((endpoint, guard))
        }
        Ok(Err(reason)) => {
            let _ = thread.join();
            Err(Error::Container(explain(&config.image, &reason)))
        }
        Err(_) => {
            let _ = thread.join();
            Err(Error::Container(format!(
                "the thread starting {} ended without an answer",
                config.image
            )))
        }
    }
}

fn request(config: &Config, port: u16, instance: &str) -> ContainerRequest<GenericImage> {
    let (name, tag) = split_image(&config.image);
    let mut request = GenericImage::new(name, tag)
        .with_exposed_port(GATEWAY_PORT.tcp())
        .with_wait_for(WaitFor::message_on_stdout("Ready."))
        .with_mapped_port(port, GATEWAY_PORT.tcp())
        // Published on the loopback interface only: LocalStack accepts any credentials.
        .with_host_config_modifier(|host_config| {
            for bindings in host_config
                .port_bindings
                .iter_mut()
                .flat_map(|b| b.values_mut())
            {
                for binding in bindings.iter_mut().flatten() {
                    binding.host_ip = Some("127.0.0.1".to_owned());
                }
            }
        })
        .with_label(BACKEND_LABEL.0, BACKEND_LABEL.1)
        .with_label(INSTANCE_LABEL, instance)
        .with_env_var("SERVICES", crate::SERVICES.join(","))
        .with_env_var("GATEWAY_LISTEN", format!("0.0.0.0:{GATEWAY_PORT}"))
        .with_env_var("LOCALSTACK_HOST", format!("127.0.0.1:{port}"))
        .with_env_var("SQS_ENDPOINT_STRATEGY", "path")
        .with_env_var("DISABLE_EVENTS", "1")
        .with_env_var("SKIP_SSL_CERT_DOWNLOAD", "1")
        .with_startup_timeout(STARTUP_TIMEOUT);
    if let Some(token) = &config.auth_token {
        request = request.with_env_var("LOCALSTACK_AUTH_TOKEN", token.clone());
    }
    request
}

/// Polls the health until it lists every service; `Ready.` comes a moment before.
fn wait_healthy(endpoint: &str) -> Result<(), Error> {
    let started = Instant::now();
    loop {
        let reason = match health::check(endpoint) {
            Ok(()) => return Ok(()),
            Err(reason) => reason,
        };
        if started.elapsed() > HEALTH_TIMEOUT {
            return Err(Error::Unhealthy {
                endpoint: endpoint.to_owned(),
                reason,
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Removes the containers of one start, whatever state they are in.
async fn remove_instance(instance: &str) {
    let Ok(docker) = Docker::connect_with_defaults() else {
        return;
    };
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("{INSTANCE_LABEL}={instance}")],
    )]);
    let options = ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    let Ok(containers) = docker.list_containers(Some(options)).await else {
        return;
    };
    for id in containers.into_iter().filter_map(|c| c.id) {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        let _ = docker.remove_container(&id, Some(options)).await;
    }
}

/// The error of a failed start, with what to do about the usual causes.
fn explain(image: &str, reason: &str) -> String {
    let reason_lower = reason.to_lowercase();
    let local = local_image();
    let hint = if image != local
        && (reason_lower.contains("pull") || reason_lower.contains("no such image"))
    {
        format!(
            "; where no registry is reachable, build a local image with `cargo xtask localstack \
             image` and set LOCALSTACK_IMAGE={local}"
        )
    } else if image == local && reason_lower.contains("pull") {
        "; build it with `cargo xtask localstack image`".to_owned()
    } else if reason_lower.contains("socket") || reason_lower.contains("connect") {
        "; is a Docker engine running? testcontainers uses DOCKER_HOST (default \
         unix:///var/run/docker.sock); `cargo xtask test --backend container` installs and \
         starts one"
            .to_owned()
    } else {
        String::new()
    };
    format!("cannot start {image}: {reason}{hint}")
}

/// The image `cargo xtask localstack image` builds: named after the locked LocalStack version.
fn local_image() -> String {
    let version = crate::REQUIREMENTS_LOCK
        .lines()
        .find_map(|line| line.strip_prefix("localstack-core=="))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("latest");
    format!("localstack-local:{version}")
}

fn split_image(image: &str) -> (String, String) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.to_owned(), tag.to_owned()),
        _ => (image.to_owned(), "latest".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_image_names() {
        let check = |image: &str, name: &str, tag: &str| {
            assert_eq!(
                split_image(image),
                (name.to_owned(), tag.to_owned()),
                "{image}"
            );
        };
        check(
            "localstack/localstack:4.14.0",
            "localstack/localstack",
            "4.14.0",
        );
        check("localstack-local:2026.3.0", "localstack-local", "2026.3.0");
        check(
            "registry:5000/localstack",
            "registry:5000/localstack",
            "latest",
        );
    }

    #[test]
    fn says_how_to_build_the_local_image() {
        let error = explain(
            "localstack/localstack:4.14.0",
            "failed to pull the image: dial tcp: lookup registry-1.docker.io: no such host",
        );
        assert!(error.contains("cargo xtask localstack image"), "{error}");
        assert!(
            error.contains(&format!("LOCALSTACK_IMAGE={}", local_image())),
            "{error}"
        );
    }
}
