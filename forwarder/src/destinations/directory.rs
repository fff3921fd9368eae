//! The destinations directory: one connection file per destination (as `provisioner apply
//! --out` writes it), named by its stem. [`scan`] reads it; [`diff`] compares two scans, so a
//! reload changes only what changed. Hidden files (`.name...`, such as the temporary file of an
//! atomic write) are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use aws_access::connection::ForwarderConfig;

use super::name::DestinationName;

/// What a scan found: the destinations that parse, and a one-line error for each file that
/// does not (naming its path and what is wrong). A bad file never hides the good ones.
#[derive(Debug, Default)]
pub struct Scan {
    /// The destinations, by name.
    pub destinations: BTreeMap<DestinationName, ForwarderConfig>,
    /// One line per file that could not be used.
    pub errors: Vec<String>,
    /// The names of the files that could not be used: a reload keeps what was in force for
    /// them rather than removing them.
    pub broken: BTreeSet<DestinationName>,
    /// Warnings (a file holding a secret that others can read).
    pub warnings: Vec<String>,
}

/// Why the directory itself could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the destinations directory {path}: {source}")]
pub struct DirectoryError {
    path: PathBuf,
    source: std::io::Error,
}

/// Reads every connection file in `dir`.
pub fn scan(dir: &Path) -> Result<Scan, DirectoryError> {
    let error = |source| DirectoryError {
        path: dir.to_owned(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(error)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            !path
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with('.'))
                && path.is_file()
        })
        .collect();
    paths.sort();
    let mut scan = Scan::default();
    let mut seen: BTreeMap<DestinationName, PathBuf> = BTreeMap::new();
    for path in paths {
        let name = match DestinationName::from_path(&path) {
            Ok(name) => name,
            Err(e) => {
                scan.errors.push(e);
                continue;
            }
        };
        if let Some(first) = seen.get(&name) {
            scan.errors.push(format!(
                "{}: destination `{name}` is already defined by {}",
                path.display(),
                first.display()
            ));
            continue;
        }
        match aws_access::connection::read(&path) {
            Ok((config, warning)) => {
                scan.warnings.extend(warning);
                seen.insert(name.clone(), path);
                scan.destinations.insert(name, config);
            }
            Err(e) => {
                scan.errors.push(e.to_string());
                scan.broken.insert(name);
            }
        }
    }
    Ok(scan)
}

/// What changed between two scans.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// New names.
    pub added: Vec<DestinationName>,
    /// Names that are gone.
    pub removed: Vec<DestinationName>,
    /// Names whose connection file says something else now.
    pub changed: Vec<DestinationName>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Compares what was in force with what the directory says now.
pub fn diff<T: PartialEq>(
    old: &BTreeMap<DestinationName, T>,
    new: &BTreeMap<DestinationName, T>,
) -> Changes {
    let mut changes = Changes::default();
    for (name, config) in new {
        match old.get(name) {
            None => changes.added.push(name.clone()),
            Some(before) if before != config => changes.changed.push(name.clone()),
            Some(_) => {}
        }
    }
    changes.removed = old
        .keys()
        .filter(|name| !new.contains_key(*name))
        .cloned()
        .collect();
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<DestinationName> {
        list.iter()
            .map(|n| DestinationName::parse(n).expect("name"))
            .collect()
    }

    fn map(entries: &[(&str, u32)]) -> BTreeMap<DestinationName, u32> {
        entries
            .iter()
            .map(|(n, v)| (DestinationName::parse(n).expect("name"), *v))
            .collect()
    }

    fn check(old: &[(&str, u32)], new: &[(&str, u32)], expected: [&[&str]; 3]) {
        let [added, removed, changed] = expected;
        assert_eq!(
            diff(&map(old), &map(new)),
            Changes {
                added: names(added),
                removed: names(removed),
                changed: names(changed),
            }
        );
    }

    #[test]
    fn diffs() {
        check(&[], &[], [&[], &[], &[]]);
        check(&[("a", 1)], &[("a", 1)], [&[], &[], &[]]);
        check(&[], &[("a", 1), ("b", 1)], [&["a", "b"], &[], &[]]);
        check(&[("a", 1), ("b", 1)], &[("b", 1)], [&[], &["a"], &[]]);
        check(
            &[("a", 1), ("b", 1), ("c", 1)],
            &[("b", 2), ("c", 1), ("d", 1)],
            [&["d"], &["a"], &["b"]],
        );
    }

    #[test]
    fn a_bad_file_is_named_and_the_others_are_kept() {
        let dir = std::env::temp_dir().join(format!("destinations-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let good = r#"{"queueURL":"http://localhost:4566/000000000000/a","region":"us-east-1"}"#;
        std::fs::write(dir.join("acme.json"), good).expect("write");
        std::fs::write(dir.join("broken.json"), r#"{"region":"us-east-1"}"#).expect("write");
        std::fs::write(dir.join(".acme.json.1.tmp"), "partial").expect("write");
        std::fs::write(dir.join("bad name.json"), good).expect("write");
        let scan = scan(&dir).expect("scan");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            scan.destinations.keys().cloned().collect::<Vec<_>>(),
            names(&["acme"])
        );
        assert_eq!(scan.errors.len(), 2, "{:?}", scan.errors);
        assert!(
            scan.errors
                .iter()
                .any(|e| e.contains("broken.json") && e.contains("missing field `queueURL`")),
            "{:?}",
            scan.errors
        );
        assert!(
            scan.errors.iter().any(|e| e.contains("bad name.json")),
            "{:?}",
            scan.errors
        );
    }
}
