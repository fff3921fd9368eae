//! The Debian mirror the image's root is made from: the first Debian entry of apt's own
//! sources, in the one-line `.list` format or the deb822 `.sources` format.

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::MIRROR_VAR;

/// The first Debian entry of apt's sources: `deb` lines of `sources.list` and `*.list`, and
/// `URIs:` of deb822 `*.sources` files, whose suite is a Debian release.
pub(super) fn debian_mirror() -> Result<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    let mut parts: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    parts.sort();
    files.extend(parts);
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let found = match file.extension().and_then(|e| e.to_str()) {
            Some("sources") => mirror_in_deb822(&text),
            Some("list") => mirror_in_list(&text),
            _ => None,
        };
        if let Some(mirror) = found {
            return Ok(mirror);
        }
    }
    bail!(
        "no Debian mirror in apt's configuration (/etc/apt/sources.list, /etc/apt/sources.list.d/): \
         set {MIRROR_VAR} to one"
    )
}

fn mirror_in_list(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            return None;
        }
        // Skip `[arch=amd64 signed-by=...]` options, which may contain spaces.
        let mut rest: Vec<&str> = words.collect();
        if rest.first().is_some_and(|w| w.starts_with('[')) {
            let end = rest.iter().position(|w| w.ends_with(']'))?;
            rest.drain(..=end);
        }
        match rest.as_slice() {
            [uri, suite, ..] if is_debian_suite(suite) => {
                Some(uri.trim_end_matches('/').to_owned())
            }
            _ => None,
        }
    })
}

fn mirror_in_deb822(text: &str) -> Option<String> {
    text.split("\n\n").find_map(|stanza| {
        let field = |name: &str| {
            stanza.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
        };
        let enabled = field("Enabled").is_none_or(|v| !v.eq_ignore_ascii_case("no"));
        let deb = field("Types").is_some_and(|t| t.split_whitespace().any(|t| t == "deb"));
        let debian = field("Suites").is_some_and(|s| s.split_whitespace().any(is_debian_suite));
        if !(enabled && deb && debian) {
            return None;
        }
        field("URIs")?
            .split_whitespace()
            .next()
            .map(|uri| uri.trim_end_matches('/').to_owned())
    })
}

/// A Debian release or its update suite, not a security archive or another vendor's.
fn is_debian_suite(suite: &str) -> bool {
    let base = suite.strip_suffix("-updates").unwrap_or(suite);
    [
        "buster",
        "bullseye",
        "bookworm",
        "trixie",
        "forky",
        "duke",
        "sid",
        "stable",
        "testing",
        "unstable",
        "oldstable",
    ]
    .contains(&base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(parse: fn(&str) -> Option<String>, input: &str, expected: Option<&str>) {
        assert_eq!(parse(input).as_deref(), expected, "{input}");
    }

    #[test]
    fn finds_the_debian_mirror_in_a_list() {
        check(mirror_in_list, "# deb http://a/debian trixie main\n", None);
        check(
            mirror_in_list,
            "deb https://vendor.example/apt cloud-sdk-bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian/ bookworm main\n",
            Some("http://m.example/debian"),
        );
        check(
            mirror_in_list,
            "deb-src http://m.example/debian bookworm main\ndeb http://s.example/debian-security bookworm-security main\n",
            None,
        );
    }

    #[test]
    fn finds_the_debian_mirror_in_deb822_sources() {
        check(
            mirror_in_deb822,
            "Types: deb\nURIs: https://vendor.example/node\nSuites: nodistro\n\nTypes: deb\n# a comment\nURIs: http://m.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n",
            Some("http://m.example/debian"),
        );
        check(
            mirror_in_deb822,
            "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm\nEnabled: no\n",
            None,
        );
        check(
            mirror_in_deb822,
            "Types: deb\nURIs: http://s.example/debian-security\nSuites: bookworm-security\n",
            None,
        );
    }
}
