//! A destination's name: the stem of its connection file, and the value the route attribute
//! carries to choose it.

use std::fmt;
use std::path::Path;

/// The most bytes a name may have.
const MAX_LEN: usize = 128;

/// A checked destination name: 1 to 128 of `A-Z a-z 0-9 . _ -`, not starting with `.`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DestinationName(String);

impl DestinationName {
    /// Checks `name`.
    pub fn parse(name: &str) -> Result<DestinationName, String> {
        let valid = !name.is_empty()
            && name.len() <= MAX_LEN
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(DestinationName(name.to_owned()))
        } else {
            Err(format!(
                "`{name}` is not a destination name (1 to {MAX_LEN} of A-Z a-z 0-9 . _ -, not starting with .)"
            ))
        }
    }

    /// The name of the destination whose connection file is `path`: its stem.
    pub fn from_path(path: &Path) -> Result<DestinationName, String> {
        let stem = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .ok_or_else(|| format!("{}: the file name is not UTF-8", path.display()))?;
        DestinationName::parse(stem).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DestinationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, valid: bool) {
        assert_eq!(DestinationName::parse(name).is_ok(), valid, "{name}");
    }

    #[test]
    fn names() {
        check("acme", true);
        check("acme-eu.orders_2", true);
        check("", false);
        check(".hidden", false);
        check("a/b", false);
        check("café", false);
        check(&"x".repeat(129), false);
        assert_eq!(
            DestinationName::from_path(Path::new("/d/acme.json")).map(|n| n.0),
            Ok("acme".to_owned())
        );
    }
}
