//! `cargo xtask test [--backend host|container]`: start LocalStack if none runs, run the tests
//! against it, and stop what it started, also when the tests fail.
//!
//! - `host` (the default): the embedded LocalStack, and every test of the workspace.
//! - `container`: LocalStack in a container started by testcontainers. xtask does not link
//!   testcontainers itself: it makes sure a Docker engine answers and the image exists, then
//!   runs the launcher `localstack/examples/container_up.rs`, which starts the container through
//!   the `localstack` crate's container backend, prints its endpoint and keeps it until its stdin
//!   closes. The tests run against that endpoint; closing the launcher's stdin removes the
//!   container; if the launcher had to be killed, xtask removes what it left by its labels.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{image, run};

/// The packages whose tests run against the container: the conformance suite and the crates
/// that talk to LocalStack themselves.
const CONTAINER_PACKAGES: [&str; 3] = ["conformance", "provisioner", "localstack"];
/// The label the container backend puts on its containers.
const CONTAINER_LABEL: &str = "org.localstack.backend=container";
/// The label that names the process that started a container, `<pid>-<nanos>`.
const INSTANCE_LABEL: &str = "org.localstack.instance";

pub(crate) fn run(args: &[String]) -> Result<ExitCode> {
    match args {
        [flag, backend, rest @ ..] if flag == "--backend" => match backend.as_str() {
            "host" => host(rest),
            "container" => container(rest),
            other => bail!(
                "unknown backend `{other}`: usage: cargo xtask test [--backend host|container]"
            ),
        },
        _ => host(args),
    }
}

fn host(args: &[String]) -> Result<ExitCode> {
    let config = localstack::Config::from_env()?;
    let instance = localstack::start(&config)?;
    eprintln!("xtask: LocalStack at {}", instance.endpoint());
    let mut command = run::cargo();
    command
        .args(["test", "--workspace", "--all-targets"])
        .args(args);
    // Benchmarks run as tests only in `cargo xtask bench`.
    command.env("LOCALSTACK_ENDPOINT", instance.endpoint());
    let result = run::status(&mut command);
    if instance.started() && config.backend == localstack::Backend::Host {
        localstack::stop(&config)?;
        eprintln!("xtask: stopped the LocalStack this task started");
    }
    result
}

fn container(args: &[String]) -> Result<ExitCode> {
    let started = Instant::now();
    image::ensure_engine()?;
    // LOCALSTACK_IMAGE picks another image (the official one, say, which testcontainers pulls);
    // without it the local image is used, and built when missing.
    let image = match std::env::var("LOCALSTACK_IMAGE") {
        Ok(image) if !image.is_empty() && image != image::local_image() => image,
        _ => image::ensure_image(false)?,
    };
    let result = against_container(&image, args);
    eprintln!(
        "xtask: the container backend run took {:.0}s in all",
        started.elapsed().as_secs_f64()
    );
    result
}

fn against_container(image: &str, args: &[String]) -> Result<ExitCode> {
    let launcher = build_launcher()?;
    // The backend's own test: a container serves SQS and goes when its handle is dropped.
    run::checked(
        run::cargo()
            .args(["test", "-p", "localstack", "--features", "container"])
            .args(["--test", "container"])
            .env("LOCALSTACK_IMAGE", image)
            .env_remove("LOCALSTACK_ENDPOINT")
            .env_remove("LOCALSTACK_BACKEND"),
    )?;
    // Cargo's own arguments go to the build as well; what follows `--` only to the tests.
    let split = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let (cargo_args, test_args) = args.split_at(split);
    let test = || {
        let mut command = run::cargo();
        command.arg("test");
        for package in CONTAINER_PACKAGES {
            command.args(["-p", package]);
        }
        command.arg("--all-targets").args(cargo_args);
        command
    };
    // Build the tests before the container starts, so that it serves only the tests.
    run::checked(test().arg("--no-run"))?;
    let mut command = test();
    command.args(test_args);

    eprintln!("xtask: starting LocalStack from {image} through testcontainers");
    let mut up = Command::new(&launcher)
        .env("LOCALSTACK_BACKEND", "container")
        .env("LOCALSTACK_IMAGE", image)
        .env_remove("LOCALSTACK_ENDPOINT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // Its own process group: a Ctrl-C here ends xtask, whose exit closes the launcher's
        // stdin, and the launcher then removes the container instead of dying with it.
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot run {}", launcher.display()))?;
    let result = read_endpoint(&mut up).and_then(|endpoint| {
        eprintln!("xtask: LocalStack in a container at {endpoint}");
        command
            .env("LOCALSTACK_ENDPOINT", &endpoint)
            .env_remove("LOCALSTACK_BACKEND");
        let suite = Instant::now();
        let code = run::status(&mut command);
        eprintln!(
            "xtask: the tests took {:.0}s",
            suite.elapsed().as_secs_f64()
        );
        code
    });
    let launcher_pid = up.id();
    let stopped = stop_launcher(up);
    let removed = remove_leftovers(launcher_pid);
    let code = result?;
    stopped?;
    removed?;
    Ok(code)
}

/// Builds `localstack/examples/container_up.rs` with the `container` feature and returns the
/// path of its executable.
fn build_launcher() -> Result<PathBuf> {
    let output = run::cargo()
        .args([
            "build",
            "-p",
            "localstack",
            "--features",
            "container",
            "--example",
            "container_up",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo build")?;
    if !output.status.success() {
        bail!("building the container launcher failed");
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["target"]["name"] == "container_up")
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .context("cargo build named no executable for the container launcher")
}

/// The launcher's first line of stdout: the endpoint, once the container is healthy.
fn read_endpoint(up: &mut Child) -> Result<String> {
    let stdout = up.stdout.take().context("the launcher has no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let endpoint = line.trim();
    if !endpoint.starts_with("http://") {
        bail!("the container launcher did not start LocalStack (see its errors above)");
    }
    Ok(endpoint.to_owned())
}

/// Closes the launcher's stdin so that it removes the container, and waits for it; kills it
/// when it takes longer than a minute.
fn stop_launcher(mut up: Child) -> Result<()> {
    drop(up.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = up.try_wait()? {
            if !status.success() {
                eprintln!("xtask: the container launcher ended with {status}");
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            eprintln!("xtask: the container launcher did not end within 60s; killing it");
            up.kill()?;
            up.wait()?;
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Removes what the launcher `pid` left (if it had to be killed, say): the containers whose
/// instance label the backend starts with the id of the process that started them.
fn remove_leftovers(pid: u32) -> Result<()> {
    let output = Command::new("docker")
        .args(["ps", "-a", "--filter"])
        .arg(format!("label={CONTAINER_LABEL}"))
        .args([
            "--format",
            &format!("{{{{.ID}}}} {{{{.Label \"{INSTANCE_LABEL}\"}}}}"),
        ])
        .output()
        .context("cannot run docker ps")?;
    if !output.status.success() {
        bail!(
            "docker ps failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let (ours, others): (Vec<(&str, &str)>, Vec<_>) = text
        .lines()
        .filter_map(|line| line.split_once(' '))
        .partition(|(_, instance)| instance.starts_with(&format!("{pid}-")));
    if !ours.is_empty() {
        eprintln!("xtask: removing {} left-over container(s)", ours.len());
        let ids = ours.iter().map(|(id, _)| *id);
        run::checked(Command::new("docker").args(["rm", "-f", "-v"]).args(ids))?;
    }
    if others.is_empty() {
        eprintln!("xtask: no LocalStack container is left");
    } else {
        eprintln!(
            "xtask: {} LocalStack container(s) of other runs still exist",
            others.len()
        );
    }
    Ok(())
}
