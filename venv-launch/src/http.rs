//! A minimal HTTP/1.0 client, enough for a health check and a server's own API, so that the
//! launchers need no HTTP client crate. One request a connection, through [`tcp::connect`]:
//! three seconds at most for connecting, and for each read and write.

use std::io::{Read, Write};

use crate::tcp;

/// An answer: its status code and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, such as 200.
    pub status: u16,
    /// The body, decoded as UTF-8 (lossily).
    pub body: String,
}

/// `GET path` from `endpoint`, an `http://host:port` URL (anything after the authority is
/// ignored). The error says what went wrong, for a readiness or health message.
pub fn get(endpoint: &str, path: &str) -> Result<Response, String> {
    request(endpoint, "GET", path, None)
}

/// `POST path` to `endpoint` with `body` of `content_type`.
pub fn post(
    endpoint: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> Result<Response, String> {
    request(endpoint, "POST", path, Some((content_type, body)))
}

fn request(
    endpoint: &str,
    method: &str,
    path: &str,
    body: Option<(&str, &str)>,
) -> Result<Response, String> {
    let authority = authority(endpoint)?;
    let mut stream = tcp::connect(authority)?;
    stream
        .write_all(request_text(method, authority, path, body).as_bytes())
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    parse(&answer)
}

/// The `host:port` of an `http://` URL.
fn authority(endpoint: &str) -> Result<&str, String> {
    let rest = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{endpoint}` is not an http:// URL"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("`{endpoint}` names no host"));
    }
    Ok(authority)
}

fn request_text(method: &str, authority: &str, path: &str, body: Option<(&str, &str)>) -> String {
    let head = format!("{method} {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n");
    match body {
        None => format!("{head}\r\n"),
        Some((content_type, body)) => format!(
            "{head}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    }
}

fn parse(answer: &[u8]) -> Result<Response, String> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("the answer is not HTTP")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("the answer has no status")?;
    Ok(Response {
        status,
        body: body.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_authority() {
        let check = |endpoint: &str, expected: Result<&str, &str>| {
            assert_eq!(
                authority(endpoint),
                expected.map_err(str::to_owned),
                "{endpoint}"
            );
        };
        check("http://127.0.0.1:4566", Ok("127.0.0.1:4566"));
        check("http://localhost:4566/", Ok("localhost:4566"));
        check("http://[::1]:8080/a/b", Ok("[::1]:8080"));
        check(
            "https://example.com",
            Err("`https://example.com` is not an http:// URL"),
        );
        check("http:///health", Err("`http:///health` names no host"));
    }

    #[test]
    fn writes_requests() {
        let check = |text: String, expected: &str| assert_eq!(text, expected);
        check(
            request_text("GET", "127.0.0.1:4566", "/_localstack/health", None),
            "GET /_localstack/health HTTP/1.0\r\nHost: 127.0.0.1:4566\r\nConnection: close\r\n\r\n",
        );
        check(
            request_text(
                "POST",
                "127.0.0.1:5000",
                "/moto-api/reset-auth",
                Some(("text/plain", "0")),
            ),
            "POST /moto-api/reset-auth HTTP/1.0\r\nHost: 127.0.0.1:5000\r\nConnection: close\r\n\
             Content-Type: text/plain\r\nContent-Length: 1\r\n\r\n0",
        );
    }

    #[test]
    fn reads_answers() {
        let check = |answer: &[u8], expected: Result<(u16, &str), &str>| {
            let expected = expected
                .map(|(status, body)| Response {
                    status,
                    body: body.to_owned(),
                })
                .map_err(str::to_owned);
            assert_eq!(
                parse(answer),
                expected,
                "{}",
                String::from_utf8_lossy(answer)
            );
        };
        check(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":1}",
            Ok((200, "{\"a\":1}")),
        );
        check(b"HTTP/1.0 503 Service Unavailable\r\n\r\n", Ok((503, "")));
        check(
            b"HTTP/1.0 200 OK\r\n\r\nline\r\n\r\nmore",
            Ok((200, "line\r\n\r\nmore")),
        );
        check(b"", Err("the answer is not HTTP"));
        check(b"SSH-2.0-OpenSSH\r\n", Err("the answer is not HTTP"));
        check(b"HTTP/1.0 abc\r\n\r\n", Err("the answer has no status"));
    }
}
