//! The root being made into the image: the host's `/proc` and `/dev` mounted in it while the venv
//! is installed, its removal, and commands run inside it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::run;

/// `/proc` and, unless debootstrap made device nodes, `/dev` mounted in the root; unmounted on
/// drop, also when the install fails.
pub(super) struct Mounts {
    root: PathBuf,
}

impl Mounts {
    pub(super) fn new(root: &Path) -> Result<Mounts> {
        let mounts = Mounts {
            root: root.to_owned(),
        };
        run::checked(
            Command::new("mount")
                .args(["-t", "proc", "proc"])
                .arg(root.join("proc")),
        )?;
        if !root.join("dev/null").exists() || !root.join("dev/urandom").exists() {
            run::checked(
                Command::new("mount")
                    .arg("--bind")
                    .arg("/dev")
                    .arg(root.join("dev")),
            )?;
        }
        Ok(mounts)
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        if let Err(error) = unmount_all(&self.root) {
            eprintln!("image: {error:#}");
        }
    }
}

/// Unmounts everything mounted at or below `root`, deepest first.
fn unmount_all(root: &Path) -> Result<()> {
    for mount in mounts_below(root).iter().rev() {
        let status = Command::new("umount").arg(mount).status()?;
        if !status.success() {
            let _ = Command::new("umount").arg("-l").arg(mount).status();
        }
    }
    let left = mounts_below(root);
    if !left.is_empty() {
        bail!("still mounted below {}: {left:?}", root.display());
    }
    Ok(())
}

fn mounts_below(root: &Path) -> Vec<PathBuf> {
    let Ok(root) = std::path::absolute(root) else {
        return Vec::new();
    };
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split_whitespace().nth(4))
        .map(|point| PathBuf::from(point.replace("\\040", " ")))
        .filter(|point| point.starts_with(&root))
        .collect()
}

/// Removes a root left by this or an earlier run, after making sure nothing of the host is
/// still mounted in it.
pub(super) fn remove_root(root: &Path) -> Result<()> {
    if !root.exists() {
        return Ok(());
    }
    unmount_all(root)?;
    std::fs::remove_dir_all(root).with_context(|| format!("cannot remove {}", root.display()))
}

pub(super) fn chroot(root: &Path) -> Command {
    let mut command = Command::new("chroot");
    command
        .arg(root)
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LANG", "C.UTF-8");
    command
}
