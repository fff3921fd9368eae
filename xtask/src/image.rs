//! `cargo xtask localstack image`: a local LocalStack image built without any registry, and the
//! Docker engine it needs.
//!
//! The image is a Debian trixie root made by `debootstrap` from the mirror that apt on this
//! machine is configured with, with a venv at `/opt/localstack` holding exactly the environment
//! of `localstack/requirements.lock` (installed by a `uv` copied into the root), imported with
//! `docker import`. A label carries the lock file's digest, so a second run has nothing to do.

mod mirror;
mod root;

use std::fs::File;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::run;
use mirror::debian_mirror;
use root::{Mounts, chroot, remove_root};

/// The label holding [`localstack::lock_digest`] on the local image.
const DIGEST_LABEL: &str = "org.localstack.lock-digest";
/// The Debian release of the image's root: it ships Python 3.13.
const SUITE: &str = "trixie";
/// Where the venv lives inside the image.
const VENV: &str = "/opt/localstack";
/// Overrides the Debian mirror read from apt's configuration (for hosts that are not Debian).
const MIRROR_VAR: &str = "LOCALSTACK_IMAGE_MIRROR";

/// `cargo xtask localstack image [--force]`.
pub(crate) fn run(args: &[String]) -> Result<ExitCode> {
    let force = match args {
        [] => false,
        [flag] if flag == "--force" => true,
        _ => bail!("usage: cargo xtask localstack image [--force]"),
    };
    ensure_engine()?;
    ensure_image(force)?;
    println!("{}", local_image());
    Ok(ExitCode::SUCCESS)
}

/// The local image's name: `localstack-local:<the locked localstack-core version>`.
pub(crate) fn local_image() -> String {
    let version = localstack::REQUIREMENTS_LOCK
        .lines()
        .find_map(|line| line.strip_prefix("localstack-core=="))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("latest");
    format!("localstack-local:{version}")
}

/// Makes sure a Docker engine answers: installs `docker.io` when the machine has no `dockerd`,
/// and starts `dockerd` in the background (log under `target/docker/`) when none runs.
pub(crate) fn ensure_engine() -> Result<()> {
    if engine_answers() {
        return Ok(());
    }
    if !on_path("dockerd") || !on_path("docker") {
        apt_install(&["docker.io"])?;
    }
    if engine_answers() {
        return Ok(());
    }
    let dir = target_dir().join("docker");
    std::fs::create_dir_all(&dir)?;
    let log_path = dir.join("dockerd.log");
    let log = File::create(&log_path).with_context(|| log_path.display().to_string())?;
    let mut dockerd = Command::new("dockerd")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: it outlives this task and a Ctrl-C in its terminal.
        .process_group(0)
        .spawn()
        .context("cannot start dockerd")?;
    eprintln!(
        "image: started dockerd (pid {}, log {})",
        dockerd.id(),
        log_path.display()
    );
    let started = Instant::now();
    while !engine_answers() {
        if let Some(status) = dockerd.try_wait()? {
            bail!(
                "dockerd exited ({status}); last lines of {}:\n{}",
                log_path.display(),
                tail(&log_path, 20)
            );
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "dockerd does not answer after 60s; last lines of {}:\n{}",
                log_path.display(),
                tail(&log_path, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "image: the Docker engine answers after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Builds the local image unless one with the lock file's digest exists; returns its name.
pub(crate) fn ensure_image(force: bool) -> Result<String> {
    let image = local_image();
    let digest = localstack::lock_digest();
    if !force && image_digest(&image).as_deref() == Some(digest.as_str()) {
        eprintln!("image: {image} is up to date (lock digest {digest})");
        return Ok(image);
    }
    let started = Instant::now();
    step(&format!(
        "building {image} for lock digest {digest} (about three minutes)"
    ));
    let work = target_dir().join("localstack-image");
    let root = work.join("rootfs");
    remove_root(&root)?;
    std::fs::create_dir_all(&work)?;
    let root = std::path::absolute(&root)?;
    let result = build(&image, &digest, &work, &root);
    // The root is only a step towards the image: it goes, also after a failure.
    let removed = remove_root(&root);
    result?;
    removed?;
    eprintln!(
        "image: built {image} in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(image)
}

fn build(image: &str, digest: &str, work: &Path, root: &Path) -> Result<()> {
    if !on_path("debootstrap") {
        apt_install(&["debootstrap"])?;
    }
    let mirror = match std::env::var(MIRROR_VAR) {
        Ok(mirror) if !mirror.is_empty() => mirror,
        _ => debian_mirror()?,
    };
    let uv = find_uv(work)?;

    step(&format!(
        "debootstrap a minimal Debian {SUITE} root (mirror from apt's configuration or {MIRROR_VAR})"
    ));
    logged(
        Command::new("debootstrap")
            .args([
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                SUITE,
            ])
            .arg(root)
            .arg(&mirror),
        &work.join("debootstrap.log"),
    )?;

    step("prepare the root for the install");
    let build_dir = root.join("tmp").join("build");
    std::fs::create_dir_all(&build_dir)?;
    std::fs::copy(&uv, build_dir.join("uv")).with_context(|| uv.display().to_string())?;
    std::fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        build_dir.join("ca.crt"),
    )
    .context("cannot copy the host's CA bundle /etc/ssl/certs/ca-certificates.crt")?;
    std::fs::write(
        build_dir.join("requirements.lock"),
        localstack::REQUIREMENTS_LOCK,
    )?;
    let resolv = root.join("etc").join("resolv.conf");
    let _ = std::fs::remove_file(&resolv);
    std::fs::copy("/etc/resolv.conf", &resolv).context("cannot copy /etc/resolv.conf")?;

    {
        let _mounts = Mounts::new(root)?;
        step("create the venv /opt/localstack");
        run::checked(chroot(root).args(["/usr/bin/python3", "-m", "venv", "--without-pip", VENV]))?;
        step("install localstack-core and its locked dependencies with uv");
        let python = format!("{VENV}/bin/python");
        let mut sync = chroot(root);
        sync.args([
            "/tmp/build/uv",
            "pip",
            "sync",
            "--quiet",
            "--require-hashes",
            "--native-tls",
            "--python",
            &python,
            "/tmp/build/requirements.lock",
        ])
        .env("SSL_CERT_FILE", "/tmp/build/ca.crt")
        .env("REQUESTS_CA_BUNDLE", "/tmp/build/ca.crt")
        .env("UV_CACHE_DIR", "/tmp/build/cache")
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("HOME", "/root");
        if let Ok(index) = std::env::var("PIP_INDEX_URL")
            && !index.is_empty()
        {
            sync.args(["--index-url", &index]);
        }
        run::checked(&mut sync)?;
        step("check that LocalStack imports");
        run::checked(chroot(root).args([&python, "-c", "import localstack.runtime.main"]))?;
    }

    // What only the build needed, and apt's downloaded packages, stay out of the image.
    std::fs::remove_dir_all(&build_dir)?;
    let archives = root.join("var/cache/apt/archives");
    for entry in std::fs::read_dir(&archives).into_iter().flatten().flatten() {
        if entry.path().extension().is_some_and(|e| e == "deb") {
            std::fs::remove_file(entry.path())?;
        }
    }
    std::fs::write(&resolv, "")?;

    step(&format!("docker import as {image}"));
    let changes = [
        format!(r#"CMD ["{VENV}/bin/python","-m","localstack.runtime.main"]"#),
        "ENV GATEWAY_LISTEN=0.0.0.0:4566".to_owned(),
        format!("ENV SERVICES={}", localstack::SERVICES.join(",")),
        "EXPOSE 4566".to_owned(),
        format!("LABEL {DIGEST_LABEL}={digest}"),
    ];
    let mut tar = Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(root)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run tar")?;
    let stdout = tar.stdout.take().context("tar has no stdout")?;
    let mut import = Command::new("docker");
    import.arg("import");
    for change in &changes {
        import.args(["--change", change]);
    }
    import
        .args(["-", image])
        .stdin(stdout)
        .stdout(Stdio::null());
    let imported = run::checked(&mut import);
    // The command holds the pipe's reading end: without it, a tar that lost its reader ends.
    drop(import);
    let tarred = tar.wait()?;
    imported?;
    if !tarred.success() {
        bail!("tar of {} failed ({tarred})", root.display());
    }
    if image_digest(image).as_deref() != Some(digest) {
        bail!("{image} was imported but does not carry the label {DIGEST_LABEL}={digest}");
    }
    Ok(())
}

/// A real `uv` executable (not a shim script) that can be copied into the root: on PATH (or
/// behind pyenv's shim), in the host backend's venv, or installed with pip under `work`.
fn find_uv(work: &Path) -> Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).map(|d| d.join("uv")).collect())
        .unwrap_or_default();
    if let Ok(output) = Command::new("pyenv").args(["which", "uv"]).output()
        && output.status.success()
    {
        candidates.push(String::from_utf8_lossy(&output.stdout).trim().into());
    }
    let state = target_dir().join("localstack");
    for entry in std::fs::read_dir(&state).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with("venv-") {
            candidates.push(entry.path().join("bin").join("uv"));
        }
    }
    let pip_dir = work.join("uv");
    candidates.push(pip_dir.join("bin").join("uv"));
    if let Some(uv) = candidates.iter().find(|c| is_elf(c)) {
        return Ok(uv.clone());
    }
    step("install uv with pip (no uv binary found)");
    run::checked(
        Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(&pip_dir)
            .arg("uv"),
    )?;
    let uv = pip_dir.join("bin").join("uv");
    if !is_elf(&uv) {
        bail!(
            "pip installed uv, but {} is not an executable",
            uv.display()
        );
    }
    Ok(uv)
}

fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"\x7fELF"
}

/// The digest label of `image`, if it exists.
fn image_digest(image: &str) -> Option<String> {
    let format = format!("{{{{ index .Config.Labels \"{DIGEST_LABEL}\" }}}}");
    let output = Command::new("docker")
        .args(["image", "inspect", "--format", &format, image])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn engine_answers() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// `CARGO_TARGET_DIR`, or `target` of the project root (the working directory of every task).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

/// `apt-get update` (once per run) then `apt-get install -y`.
fn apt_install(packages: &[&str]) -> Result<()> {
    static UPDATED: OnceLock<()> = OnceLock::new();
    step(&format!("apt-get install {}", packages.join(" ")));
    if UPDATED.get().is_none() {
        run::checked(
            Command::new("apt-get")
                .args(["update", "-qq"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
        let _ = UPDATED.set(());
    }
    run::checked(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null()),
    )
}

/// Runs `command` with its output in `log`; a failure shows the log's last lines.
fn logged(command: &mut Command, log: &Path) -> Result<()> {
    let file = File::create(log).with_context(|| log.display().to_string())?;
    command.stdout(file.try_clone()?).stderr(file);
    if let Err(error) = run::checked(command) {
        bail!(
            "{error:#}; last lines of {}:\n{}",
            log.display(),
            tail(log, 20)
        );
    }
    Ok(())
}

/// Prints a step of the build, with the seconds since the first step.
fn step(what: &str) {
    static FIRST: OnceLock<Instant> = OnceLock::new();
    let first = FIRST.get_or_init(Instant::now);
    eprintln!("image: [{:>3.0}s] {what}", first.elapsed().as_secs_f64());
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_local_image_after_the_locked_version() {
        assert!(local_image().starts_with("localstack-local:20"));
    }
}
