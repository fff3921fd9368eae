//! The readiness probe, in the NATS client protocol itself: read the server's `INFO`, send
//! `CONNECT` and `PING`, and wait for `PONG`. A few lines over a socket, so that this crate needs
//! no NATS client.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use serde::Deserialize;
use venv_launch::tcp;

use crate::{Error, NatsUrl};

/// What a server says of itself in its `INFO` line (the fields this crate looks at).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Info {
    /// The server's unique id.
    pub server_id: String,
    /// Its version, such as `2.15.1`.
    pub version: String,
    /// Whether JetStream is on.
    #[serde(default)]
    pub jetstream: bool,
    /// The largest message it accepts, in bytes.
    #[serde(default)]
    pub max_payload: u64,
}

/// The longest protocol line read before giving up on a server.
const MAX_LINE: u64 = 64 * 1024;

/// Connects to `url`, reads `INFO`, completes a `CONNECT`/`PING`/`PONG` exchange and checks
/// that JetStream is on.
pub(crate) fn probe(url: &NatsUrl) -> Result<Info, Error> {
    let unreachable = |reason: String| Error::Unreachable {
        url: url.to_string(),
        reason,
    };
    let info = exchange(url).map_err(unreachable)?;
    if !info.jetstream {
        return Err(Error::NoJetStream {
            url: url.to_string(),
        });
    }
    Ok(info)
}

fn exchange(url: &NatsUrl) -> Result<Info, String> {
    let stream = tcp::connect(url.authority())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let info = parse_info(&read_line(&mut reader)?)?;
    writer
        .write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"nats-launch probe\"}\r\nPING\r\n")
        .map_err(|e| format!("cannot send CONNECT: {e}"))?;
    loop {
        let line = read_line(&mut reader)?;
        match line.trim_end() {
            "PONG" => return Ok(info),
            "PING" => writer
                .write_all(b"PONG\r\n")
                .map_err(|e| format!("cannot send PONG: {e}"))?,
            "+OK" => {}
            other => return Err(format!("answered `{}` to PING", truncated(other))),
        }
    }
}

fn read_line(reader: &mut BufReader<TcpStream>) -> Result<String, String> {
    let mut line = String::new();
    let read = std::io::Read::take(&mut *reader, MAX_LINE)
        .read_line(&mut line)
        .map_err(|e| format!("cannot read: {e}"))?;
    if read == 0 {
        return Err("the connection closed".to_owned());
    }
    if !line.ends_with('\n') {
        return Err(format!("no line end within {MAX_LINE} bytes"));
    }
    Ok(line)
}

/// Parses the server's first line, `INFO {json}`.
fn parse_info(line: &str) -> Result<Info, String> {
    let json = line.trim_end().strip_prefix("INFO ").ok_or_else(|| {
        format!(
            "the first line is not INFO: `{}`",
            truncated(line.trim_end())
        )
    })?;
    serde_json::from_str(json).map_err(|e| format!("the INFO is not what a NATS server sends: {e}"))
}

fn truncated(text: &str) -> &str {
    match text.char_indices().nth(80) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::{Info, parse_info};

    fn check(line: &str, expected: Result<(&str, bool), &str>) {
        let got = parse_info(line);
        let got = got
            .as_ref()
            .map(
                |Info {
                     version, jetstream, ..
                 }| (version.as_str(), *jetstream),
            )
            .map_err(String::as_str);
        assert_eq!(got, expected, "for {line:?}");
    }

    #[test]
    fn info_lines() {
        // What nats-server 2.15.1 sends, shortened.
        check(
            "INFO {\"server_id\":\"ND6I\",\"version\":\"2.15.1\",\"proto\":1,\"port\":44047,\
             \"max_payload\":1048576,\"jetstream\":true,\"api_lvl\":5} \r\n",
            Ok(("2.15.1", true)),
        );
        check(
            "INFO {\"server_id\":\"N\",\"version\":\"2.9.10\",\"max_payload\":1048576}\r\n",
            Ok(("2.9.10", false)),
        );
        check(
            "-ERR 'Authorization Violation'\r\n",
            Err("the first line is not INFO: `-ERR 'Authorization Violation'`"),
        );
        check(
            "INFO {\"version\":\"2.15.1\"}\r\n",
            Err(
                "the INFO is not what a NATS server sends: missing field `server_id` at line 1 column 20",
            ),
        );
    }
}
