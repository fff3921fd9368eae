//! The official CloudEvents material, found in one place: the folder `CLOUDEVENTS_CONFORMANCE_DIR`
//! names, else `../shared/cloudevents` from the workspace root. Missing material fails the test
//! with one line naming the upstream repositories and commits; a test never passes without it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;

/// The variable that points at the material.
pub const DIR_VAR: &str = "CLOUDEVENTS_CONFORMANCE_DIR";
/// Where the material is looked for without the variable, from the workspace root.
pub const DEFAULT_DIR: &str = "../shared/cloudevents";
/// Where the material comes from, for the one line a missing file fails with.
pub const UPSTREAM: &str = "format-tests/json/*.json is the folder format/json of https://github.com/cloudevents/conformance (branch format-tests, commit 3548b21), cloudevents.schema.json is cloudevents/formats/cloudevents.json of https://github.com/cloudevents/spec (tag ce@v1.0.2)";

/// One case of a `format-tests/json/*-events.json` file.
#[derive(Debug, Deserialize)]
pub struct Case {
    pub id: String,
    /// Kept as raw text, so that number tokens reach the code under test as written.
    pub event: Box<RawValue>,
}

#[derive(Debug, Deserialize)]
struct Cases {
    tests: Vec<Case>,
}

/// The folder holding the material, from `CLOUDEVENTS_CONFORMANCE_DIR` or the default.
pub fn dir() -> PathBuf {
    dir_from(std::env::var_os(DIR_VAR), crate::binary::workspace_root())
}

/// The folder `variable` names, else [`DEFAULT_DIR`] from `root`.
pub fn dir_from(variable: Option<OsString>, root: &Path) -> PathBuf {
    match variable.filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => root.join(DEFAULT_DIR),
    }
}

/// The text of `relative` (such as `cloudevents.schema.json`) in the material; panics with one
/// line naming the file, the upstream and how to point at it when it cannot be read.
#[track_caller]
pub fn read(relative: &str) -> String {
    match read_in(&dir(), relative) {
        Ok(text) => text,
        Err(line) => panic!("{line}"),
    }
}

/// The cases of `format-tests/json/<file>` (a `format/json` folder, as in a checkout of the
/// conformance repository, is read too); panics when it is missing or holds no case.
#[track_caller]
pub fn cases(file: &str) -> Vec<Case> {
    match cases_in(&dir(), file) {
        Ok(cases) => cases,
        Err(line) => panic!("{line}"),
    }
}

/// [`read`] in `dir`, the error being the one line to fail with.
pub fn read_in(dir: &Path, relative: &str) -> Result<String, String> {
    let path = dir.join(relative);
    std::fs::read_to_string(&path).map_err(|err| {
        format!(
            "the official CloudEvents material is missing: {}: {err}; set {DIR_VAR} to a folder holding it (default {DEFAULT_DIR} from the workspace root): {UPSTREAM}",
            path.display()
        )
    })
}

/// [`cases`] in `dir`, the error being the one line to fail with.
pub fn cases_in(dir: &Path, file: &str) -> Result<Vec<Case>, String> {
    let folder = ["format-tests/json", "format/json"]
        .into_iter()
        .find(|folder| dir.join(folder).join(file).is_file())
        .unwrap_or("format-tests/json");
    let relative = format!("{folder}/{file}");
    let text = read_in(dir, &relative)?;
    let cases: Cases = serde_json::from_str(&text)
        .map_err(|err| format!("{}: {err}", dir.join(&relative).display()))?;
    if cases.tests.is_empty() {
        return Err(format!("{} holds no case", dir.join(&relative).display()));
    }
    Ok(cases.tests)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{DEFAULT_DIR, cases_in, dir_from, read_in};

    #[test]
    fn the_variable_wins_and_an_empty_one_is_unset() {
        let root = Path::new("/ws");
        assert_eq!(dir_from(Some("/ce".into()), root), Path::new("/ce"));
        assert_eq!(dir_from(Some("".into()), root), root.join(DEFAULT_DIR));
        assert_eq!(dir_from(None, root), root.join(DEFAULT_DIR));
    }

    #[test]
    fn missing_material_fails_with_one_line_naming_the_upstream() {
        let dir = crate::scratch::TempDir::new("testkit-official");
        for line in [
            read_in(dir.path(), "cloudevents.schema.json").expect_err("no schema"),
            cases_in(dir.path(), "valid-events.json")
                .map(|_| ())
                .expect_err("no cases"),
        ] {
            assert!(!line.contains('\n'), "one line: {line}");
            for needed in [
                "CLOUDEVENTS_CONFORMANCE_DIR",
                "https://github.com/cloudevents/conformance",
                "3548b21",
                "https://github.com/cloudevents/spec",
            ] {
                assert!(line.contains(needed), "{needed} in: {line}");
            }
        }
    }

    #[test]
    fn a_file_without_cases_is_an_error_not_a_pass() {
        let dir = crate::scratch::TempDir::new("testkit-official");
        std::fs::create_dir_all(dir.join("format-tests/json")).expect("mkdir");
        std::fs::write(
            dir.join("format-tests/json/valid-events.json"),
            r#"{"testType":"x","tests":[]}"#,
        )
        .expect("write");
        let error = cases_in(dir.path(), "valid-events.json")
            .map(|_| ())
            .expect_err("empty");
        assert!(error.ends_with("holds no case"), "{error}");
    }

    #[test]
    fn a_conformance_checkout_is_read_through_format_json() {
        let dir = crate::scratch::TempDir::new("testkit-official");
        std::fs::create_dir_all(dir.join("format/json")).expect("mkdir");
        std::fs::write(
            dir.join("format/json/valid-events.json"),
            r#"{"tests":[{"id":"a","event":{"n": 1.50}}]}"#,
        )
        .expect("write");
        let cases = cases_in(dir.path(), "valid-events.json").expect("cases");
        assert_eq!(cases.len(), 1);
        assert_eq!(
            (cases[0].id.as_str(), cases[0].event.get()),
            ("a", r#"{"n": 1.50}"#)
        );
    }
}
