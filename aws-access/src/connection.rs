//! The forwarder's connection file: where to send and with which credentials.
//!
//! `provisioner apply --out FILE` writes it and `forwarder --config FILE` reads it, in JSON
//! (`{"queueURL", "region", "accessKey", "accessSecret", "endpoint"}` or `roleArn`/`externalId`
//! instead of the keys) or as `KEY=value` lines. Files holding a secret are written with mode
//! 0600 and replaced atomically.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Everything the forwarder needs to reach one queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwarderConfig {
    /// The queue's URL, as SQS returns it.
    #[serde(rename = "queueURL")]
    pub queue_url: String,
    /// The queue's region.
    pub region: String,
    /// An access key id, with `access_secret`.
    #[serde(rename = "accessKey", default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// The access key's secret.
    #[serde(
        rename = "accessSecret",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub access_secret: Option<Secret>,
    /// A role to assume instead of using keys (cross-account set-ups).
    #[serde(rename = "roleArn", default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The external id the role's trust policy requires.
    #[serde(
        rename = "externalId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub external_id: Option<String>,
    /// An endpoint other than AWS itself (LocalStack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// The two file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One JSON object.
    #[default]
    Json,
    /// `KEY=value` lines, for shells and `.env` files.
    Env,
}

/// Why a configuration file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file's content is not a valid configuration.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, never quoting a secret.
        message: String,
    },
}

const ENV_KEYS: [(&str, &str); 7] = [
    ("QUEUE_URL", "queueURL"),
    ("REGION", "region"),
    ("ACCESS_KEY", "accessKey"),
    ("ACCESS_SECRET", "accessSecret"),
    ("ROLE_ARN", "roleArn"),
    ("EXTERNAL_ID", "externalId"),
    ("ENDPOINT", "endpoint"),
];

impl ForwarderConfig {
    /// Renders the configuration in `format`; the output holds the secret.
    pub fn render(&self, format: Format) -> String {
        let value = serde_json::to_value(self).unwrap_or_default();
        match format {
            Format::Json => {
                let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
                text.push('\n');
                text
            }
            Format::Env => {
                let mut text = String::new();
                for (env, json) in ENV_KEYS {
                    if let Some(v) = value.get(json).and_then(|v| v.as_str()) {
                        text.push_str(&format!("{env}={v}\n"));
                    }
                }
                text
            }
        }
    }

    /// Parses a configuration in either format (JSON when it starts with `{`).
    pub fn parse(text: &str, path: &Path) -> Result<ForwarderConfig, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let config: ForwarderConfig = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| invalid(redact_serde(&e)))?
        } else {
            let mut object = serde_json::Map::new();
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (key, value) = line
                    .split_once('=')
                    .ok_or_else(|| invalid(format!("line {}: expected KEY=value", n + 1)))?;
                let key = key.trim().trim_start_matches("export ").trim();
                let json = ENV_KEYS
                    .iter()
                    .find(|(env, _)| *env == key)
                    .map(|(_, json)| *json)
                    .ok_or_else(|| invalid(format!("line {}: unknown key `{key}`", n + 1)))?;
                let value = value.trim().trim_matches('"');
                object.insert(json.to_owned(), value.into());
            }
            serde_json::from_value(object.into()).map_err(|e| invalid(redact_serde(&e)))?
        };
        config.validate().map_err(invalid)?;
        Ok(config)
    }

    /// Checks that the credentials are given one way at most.
    pub fn validate(&self) -> Result<(), String> {
        if self.queue_url.is_empty() {
            return Err("`queueURL` is empty".into());
        }
        if self.access_key.is_some() != self.access_secret.is_some() {
            return Err("`accessKey` and `accessSecret` go together".into());
        }
        if self.access_key.is_some() && self.role_arn.is_some() {
            return Err("give either `accessKey`/`accessSecret` or `roleArn`, not both".into());
        }
        if self.external_id.is_some() && self.role_arn.is_none() {
            return Err("`externalId` needs `roleArn`".into());
        }
        Ok(())
    }
}

/// serde's messages may quote the offending value; keep only the position and the kind.
fn redact_serde(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let kind = if text.starts_with("unknown field") {
        text.split(',').next().unwrap_or("unknown field").to_owned()
    } else if text.starts_with("missing field") {
        text.split(" at line")
            .next()
            .unwrap_or("missing field")
            .to_owned()
    } else {
        match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "not valid JSON".to_owned()
            }
            _ => "a field has the wrong type".to_owned(),
        }
    };
    format!("{kind} (line {}, column {})", e.line(), e.column())
}

/// Reads a configuration file. The second value is a warning when others can read a file that
/// holds a secret.
pub fn read(path: &Path) -> Result<(ForwarderConfig, Option<String>), ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let config = ForwarderConfig::parse(&text, path)?;
    let mut warning = None;
    #[cfg(unix)]
    if config.access_secret.is_some() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            warning = Some(format!(
                "{} holds a secret and others can read it (mode {:o}): run chmod 600 on it",
                path.display(),
                mode & 0o777
            ));
        }
    }
    Ok((config, warning))
}

/// Writes `contents` to `path` with mode 0600, atomically: a reader sees the old file or the
/// new one, never a part.
pub fn write_private(path: &Path, contents: &str) -> Result<(), ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Json => "json",
            Format::Env => "env",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ForwarderConfig {
        ForwarderConfig {
            queue_url: "http://localhost:4566/000000000000/events".into(),
            region: "us-east-1".into(),
            access_key: Some("AKIAEXAMPLE".into()),
            access_secret: Some(Secret::new("s3cr3t-value")),
            role_arn: None,
            external_id: None,
            endpoint: Some("http://localhost:4566".into()),
        }
    }

    #[test]
    fn json_and_env_round_trip() {
        for format in [Format::Json, Format::Env] {
            let text = sample().render(format);
            let parsed = ForwarderConfig::parse(&text, Path::new("c")).expect("parses");
            assert_eq!(parsed, sample(), "{format}");
        }
        assert!(sample().render(Format::Json).contains(r#""queueURL""#));
        assert!(
            sample()
                .render(Format::Env)
                .contains("ACCESS_KEY=AKIAEXAMPLE\n")
        );
    }

    #[test]
    fn errors_name_the_problem_without_the_secret() {
        let check = |text: &str, expected: &str| {
            let err = ForwarderConfig::parse(text, Path::new("f.json"))
                .expect_err(text)
                .to_string();
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains("s3cr3t"), "{err}");
        };
        check(
            r#"{"queueURL":"q","region":"r","accessKey":"a"}"#,
            "go together",
        );
        check(
            r#"{"queueURL":"q","region":"r","accessSecret":5}"#,
            "wrong type",
        );
        check(
            r#"{"queueURL":"q","region":"r","accesSecret":"s3cr3t"}"#,
            "unknown field `accesSecret`",
        );
        check(r#"{"queueURL":"q","region":"s3cr3t"#, "not valid JSON");
        check(
            "QUEUE_URL=q\nSECRET=s3cr3t\n",
            "line 2: unknown key `SECRET`",
        );
    }

    #[test]
    fn written_files_are_private_and_replaced() {
        let dir = std::env::temp_dir().join(format!("fwd-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("forwarder.json");
        write_private(&path, "old").expect("write");
        write_private(&path, &sample().render(Format::Json)).expect("replace");
        let (config, warning) = read(&path).expect("read");
        assert_eq!(config, sample());
        assert_eq!(warning, None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
                0o600
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            let (_, warning) = read(&path).expect("read");
            assert!(warning.expect("warns").contains("chmod 600"));
        }
        std::fs::remove_dir_all(&dir).expect("clean");
    }
}
