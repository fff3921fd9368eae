//! Repository hygiene, checked as tests: every Rust module starts with a `//!` doc, no file has
//! trailing whitespace or tabs, no insta snapshot is left pending, every committed snapshot
//! belongs to a test file that still exists, and the crates depend on each other only as
//! ARCHITECTURE.md's invariants allow (read from `cargo metadata`).

#![cfg(test)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

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

/// The workspace root, from this crate's own manifest directory: a crate that was not rebuilt in
/// this checkout (a target directory seeded from another one) would name that other checkout.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .expect("xtask lives in the workspace")
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

/// What a package may not depend on: `package` `*` is any package but those in `except`, a
/// `dependency` ending in `*` is a prefix, and `kinds` are the dependency kinds the rule forbids
/// (`normal`, `build`, `dev`).
struct Rule {
    package: &'static str,
    except: &'static [&'static str],
    dependency: &'static str,
    kinds: &'static [&'static str],
    says: &'static str,
}

const ANY: &[&str] = &["normal", "build", "dev"];
const SHIPPED: &[&str] = &["normal", "build"];

/// The crate boundaries ARCHITECTURE.md's invariants state.
const RULES: &[Rule] = &[
    Rule {
        package: "provisioner",
        except: &[],
        dependency: "forwarder",
        kinds: ANY,
        says: "the provisioner does not depend on the forwarder",
    },
    Rule {
        package: "*",
        except: &["xtask", "testkit"],
        dependency: "localstack",
        kinds: SHIPPED,
        says: "only xtask and the dev-only testkit depend on localstack outside dev-dependencies",
    },
    Rule {
        package: "*",
        except: &["xtask", "testkit"],
        dependency: "moto",
        kinds: SHIPPED,
        says: "only xtask and the dev-only testkit depend on moto outside dev-dependencies",
    },
    Rule {
        package: "*",
        except: &["xtask", "testkit"],
        dependency: "nats-launch",
        kinds: SHIPPED,
        says: "only xtask and the dev-only testkit depend on nats-launch outside dev-dependencies",
    },
    Rule {
        package: "*",
        except: &[],
        dependency: "testkit",
        kinds: SHIPPED,
        says: "testkit is a dev-dependency only",
    },
    Rule {
        package: "conformance",
        except: &[],
        dependency: "forwarder",
        kinds: SHIPPED,
        says: "the conformance library and binary do not depend on the forwarder",
    },
    Rule {
        package: "aws-access",
        except: &[],
        dependency: "aws-sdk-*",
        kinds: ANY,
        says: "aws-access depends on no AWS service crate",
    },
    Rule {
        package: "aws-access",
        except: &[],
        dependency: "localstack",
        kinds: ANY,
        says: "aws-access does not depend on localstack",
    },
];

/// What a package may depend on at all, of any kind: nothing but `allowed`.
struct Allowlist {
    package: &'static str,
    allowed: &'static [&'static str],
    says: &'static str,
}

/// The packages ARCHITECTURE.md keeps to a short list of dependencies.
const ALLOWLISTS: &[Allowlist] = &[Allowlist {
    package: "venv-launch",
    allowed: &["sha2", "thiserror"],
    says: "venv-launch depends on no workspace crate and nothing heavy, only sha2 and thiserror: \
           localstack, and so every xtask task, builds it",
}];

/// Every broken rule in `metadata` (the output of `cargo metadata --format-version 1`), one
/// line each: `package -> dependency (kind): what the rule says`.
fn boundary_violations(metadata: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or_default();
        for dependency in package["dependencies"].as_array().into_iter().flatten() {
            let on = dependency["name"].as_str().unwrap_or_default();
            let kind = dependency["kind"].as_str().unwrap_or("normal");
            for rule in RULES {
                let applies =
                    (rule.package == "*" || rule.package == name) && !rule.except.contains(&name);
                let matches = match rule.dependency.strip_suffix('*') {
                    Some(prefix) => on.starts_with(prefix),
                    None => on == rule.dependency,
                };
                if applies && matches && rule.kinds.contains(&kind) {
                    out.push(format!("{name} -> {on} ({kind}): {}", rule.says));
                }
            }
            for list in ALLOWLISTS {
                if list.package == name && !list.allowed.contains(&on) {
                    out.push(format!("{name} -> {on} ({kind}): {}", list.says));
                }
            }
        }
    }
    out
}

#[test]
fn crates_depend_on_each_other_as_the_architecture_says() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
    let names: Vec<&str> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for crate_name in [
        "provisioner",
        "conformance",
        "aws-access",
        "testkit",
        "nats-launch",
        "venv-launch",
        "xtask",
    ] {
        assert!(names.contains(&crate_name), "no {crate_name} in {names:?}");
    }
    let violations = boundary_violations(&metadata);
    assert!(
        violations.is_empty(),
        "crate boundaries broken:\n{}",
        violations.join("\n")
    );
}

/// A metadata document of one package with `dependencies` as `(name, kind)`.
fn package(name: &str, dependencies: &[(&str, Option<&str>)]) -> Value {
    let dependencies: Vec<Value> = dependencies
        .iter()
        .map(|(on, kind)| json!({"name": on, "kind": kind}))
        .collect();
    json!({"packages": [{"name": name, "dependencies": dependencies}]})
}

fn check_boundaries(name: &str, dependencies: &[(&str, Option<&str>)], expected: &[&str]) {
    assert_eq!(boundary_violations(&package(name, dependencies)), expected);
}

#[test]
fn each_boundary_rule_fails_when_broken() {
    check_boundaries(
        "provisioner",
        &[("forwarder", Some("dev"))],
        &["provisioner -> forwarder (dev): the provisioner does not depend on the forwarder"],
    );
    check_boundaries(
        "forwarder",
        &[("localstack", None), ("localstack", Some("build"))],
        &[
            "forwarder -> localstack (normal): only xtask and the dev-only testkit depend on localstack outside dev-dependencies",
            "forwarder -> localstack (build): only xtask and the dev-only testkit depend on localstack outside dev-dependencies",
        ],
    );
    check_boundaries(
        "provisioner",
        &[("moto", None)],
        &[
            "provisioner -> moto (normal): only xtask and the dev-only testkit depend on moto outside dev-dependencies",
        ],
    );
    check_boundaries(
        "forwarder",
        &[("nats-launch", None)],
        &[
            "forwarder -> nats-launch (normal): only xtask and the dev-only testkit depend on nats-launch outside dev-dependencies",
        ],
    );
    check_boundaries(
        "provisioner",
        &[("testkit", None)],
        &["provisioner -> testkit (normal): testkit is a dev-dependency only"],
    );
    check_boundaries(
        "conformance",
        &[("forwarder", None)],
        &[
            "conformance -> forwarder (normal): the conformance library and binary do not depend on the forwarder",
        ],
    );
    check_boundaries(
        "aws-access",
        &[("aws-sdk-sqs", None), ("localstack", Some("dev"))],
        &[
            "aws-access -> aws-sdk-sqs (normal): aws-access depends on no AWS service crate",
            "aws-access -> localstack (dev): aws-access does not depend on localstack",
        ],
    );
    check_boundaries(
        "venv-launch",
        &[("moto", Some("dev")), ("reqwest", None)],
        &[
            "venv-launch -> moto (dev): venv-launch depends on no workspace crate and nothing heavy, only sha2 and thiserror: localstack, and so every xtask task, builds it",
            "venv-launch -> reqwest (normal): venv-launch depends on no workspace crate and nothing heavy, only sha2 and thiserror: localstack, and so every xtask task, builds it",
        ],
    );
}

#[test]
fn what_the_boundaries_allow_passes() {
    check_boundaries("xtask", &[("localstack", None), ("nats-launch", None)], &[]);
    check_boundaries("forwarder", &[("nats-launch", Some("dev"))], &[]);
    check_boundaries(
        "conformance",
        &[
            ("forwarder", Some("dev")),
            ("localstack", Some("dev")),
            ("testkit", Some("dev")),
            ("aws-sdk-sqs", None),
        ],
        &[],
    );
    check_boundaries(
        "aws-access",
        &[("aws-config", None), ("aws-smithy-types", None)],
        &[],
    );
    check_boundaries(
        "testkit",
        &[("localstack", None), ("aws-sdk-sqs", None)],
        &[],
    );
    check_boundaries("venv-launch", &[("sha2", None), ("thiserror", None)], &[]);
    check_boundaries(
        "localstack",
        &[("venv-launch", None), ("serde_json", None)],
        &[],
    );
}
