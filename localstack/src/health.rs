//! The readiness check: `GET /_localstack/health` lists every service as available.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::SERVICES;

/// Checks that the LocalStack at `endpoint` (`http://host:port`) reports every service of
/// [`SERVICES`] as available or running.
pub(crate) fn check(endpoint: &str) -> Result<(), String> {
    let body = get(endpoint, "/_localstack/health")?;
    let health: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("health is not JSON ({e})"))?;
    let services = health.get("services").ok_or("health lists no services")?;
    let missing: Vec<String> = SERVICES
        .iter()
        .filter_map(|s| match services.get(*s).and_then(|v| v.as_str()) {
            Some("available" | "running") => None,
            Some(other) => Some(format!("{s} is {other}")),
            None => Some(format!("{s} is missing")),
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join(", "))
    }
}

/// A minimal HTTP/1.0 GET, so that this crate needs no HTTP client.
fn get(endpoint: &str, path: &str) -> Result<String, String> {
    let authority = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{endpoint}` is not an http:// URL"))?
        .split('/')
        .next()
        .unwrap_or_default();
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {authority}"))?;
    let timeout = Duration::from_secs(3);
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("cannot connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("the answer is not HTTP")?;
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        return Err(format!("health answered HTTP {status}"));
    }
    Ok(body.to_owned())
}
