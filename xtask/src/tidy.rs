//! Repository hygiene, checked as tests: every Rust module starts with a `//!` doc, no file has
//! trailing whitespace or tabs, no insta snapshot is left pending, and every committed snapshot
//! belongs to a test file that still exists.

#![cfg(test)]

use std::path::{Path, PathBuf};

/// Every file below the project root that git would track (skipping `target/` and dot folders).
fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "target" || (name.starts_with('.') && name != ".ci" && name != ".cargo") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn root() -> PathBuf {
    localstack::project_root()
}

fn rust_files() -> Vec<PathBuf> {
    files(&root())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect()
}

#[test]
fn every_module_has_a_doc_comment() {
    let missing: Vec<String> = rust_files()
        .into_iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a `//!` doc comment:\n{}",
        missing.join("\n")
    );
}

#[test]
fn no_trailing_whitespace() {
    let mut offenders = Vec::new();
    for path in files(&root()) {
        let checked = ["rs", "toml", "md", "sh", "json"];
        let is_data = path.components().any(|c| c.as_os_str() == "corpus");
        if is_data
            || (!path
                .extension()
                .is_some_and(|e| checked.iter().any(|c| e == *c))
                && !path.ends_with(".ci/run"))
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            if line.ends_with(' ') || line.ends_with('\t') {
                offenders.push(format!("{}:{}", path.display(), n + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "trailing whitespace:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn no_pending_snapshots() {
    let pending: Vec<String> = files(&root())
        .into_iter()
        .filter(|p| {
            let name = p.to_string_lossy();
            name.ends_with(".snap.new") || name.ends_with(".pending-snap")
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        pending.is_empty(),
        "pending insta snapshots (review and accept or reject them):\n{}",
        pending.join("\n")
    );
}

#[test]
fn every_snapshot_is_referenced() {
    // insta names a snapshot `<module path>__<snapshot name>.snap`; each must be named by an
    // `assert_*_snapshot!` in a Rust file of the same crate.
    let sources: Vec<(PathBuf, String)> = rust_files()
        .into_iter()
        .map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap_or_default()))
        .collect();
    let mut unreferenced = Vec::new();
    for snap in files(&root())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
    {
        let stem = snap
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Unnamed snapshots take the test function's name, with `-2`, `-3`... for later ones.
        let last = stem.rsplit("__").next().unwrap_or_default();
        let name = match last.rsplit_once('-') {
            Some((base, n)) if n.chars().all(|c| c.is_ascii_digit()) => base.to_owned(),
            _ => last.to_owned(),
        };
        let crate_dir = snap
            .ancestors()
            .find(|a| a.join("Cargo.toml").exists())
            .map(Path::to_owned);
        let referenced = sources.iter().any(|(path, text)| {
            crate_dir.as_ref().is_none_or(|dir| path.starts_with(dir))
                && (text.contains(&format!("\"{name}\""))
                    || text.contains(&format!("fn {name}("))
                    || format_patterns(text).any(|pattern| wildcard_match(&pattern, &name)))
        });
        if !referenced {
            unreferenced.push(snap.display().to_string());
        }
    }
    assert!(
        unreferenced.is_empty(),
        "snapshots no test refers to (delete them):\n{}",
        unreferenced.join("\n")
    );
}

/// The literal of every `format!("...")` in `text`, with each `{...}` turned into `*`: names
/// built at run time, such as `format!("samples_{queue}")`.
fn format_patterns(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split("format!(\"").skip(1).filter_map(|rest| {
        let literal = rest.split('"').next()?;
        let mut pattern = String::new();
        let mut depth = 0;
        for c in literal.chars() {
            match c {
                '{' => {
                    if depth == 0 {
                        pattern.push('*');
                    }
                    depth += 1;
                }
                '}' => depth -= 1,
                _ if depth == 0 => pattern.push(c),
                _ => {}
            }
        }
        Some(pattern)
    })
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return pattern == text;
    }
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[test]
fn wildcards() {
    assert!(wildcard_match("samples_*_*", "samples_fifo_cloudevents"));
    assert!(wildcard_match("a*", "a"));
    assert!(!wildcard_match("samples_*_x", "samples_fifo_cloudevents"));
    assert!(!wildcard_match("b*", "a"));
    let patterns: Vec<String> =
        format_patterns(r#"x(format!("samples_{queue}_{a:?}"), 1)"#).collect();
    assert_eq!(patterns, ["samples_*_*"]);
}
