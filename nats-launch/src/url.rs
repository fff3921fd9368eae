//! `NatsUrl`: a checked `nats://HOST:PORT`, so that nothing downstream parses a string again.

use std::fmt;

use crate::Error;

/// The port a NATS URL without one means.
const DEFAULT_PORT: u16 = 4222;

/// A NATS server's URL, `nats://HOST:PORT`, with the port always written out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsUrl {
    url: String,
    host: String,
    port: u16,
}

impl NatsUrl {
    /// Parses `nats://HOST[:PORT][/]`, where HOST is a name, an IPv4 address or a bracketed IPv6
    /// address; the port defaults to 4222. Credentials in the URL are refused: they would end up
    /// in logs and state files.
    pub fn parse(text: &str) -> Result<NatsUrl, Error> {
        let bad = |reason| Error::BadUrl {
            url: redacted(text),
            reason,
        };
        let rest = text
            .strip_prefix("nats://")
            .ok_or(bad("no nats:// scheme"))?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(',') {
            return Err(bad("one server only"));
        }
        if authority.contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        if authority.contains(['/', '?', '#']) {
            return Err(bad("a path, query or fragment"));
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6.split_once(']').ok_or(bad("an unclosed `[`"))?;
                (format!("[{host}]"), after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), Some(port)),
                None => (authority.to_owned(), None),
            },
        };
        if host.is_empty() || host == "[]" {
            return Err(bad("no host"));
        }
        if host.contains(':') && !host.starts_with('[') {
            return Err(bad("an IPv6 address must be in brackets"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(port) => match port.parse::<u16>() {
                Ok(0) | Err(_) => return Err(bad("the port is not a number from 1 to 65535")),
                Ok(port) => port,
            },
        };
        Ok(NatsUrl {
            url: format!("nats://{host}:{port}"),
            host,
            port,
        })
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn loopback(port: u16) -> NatsUrl {
        NatsUrl {
            url: format!("nats://127.0.0.1:{port}"),
            host: "127.0.0.1".to_owned(),
            port,
        }
    }

    /// The URL, such as `nats://127.0.0.1:4222`.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The host, an IPv6 address in brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `HOST:PORT`, for connecting a socket.
    pub(crate) fn authority(&self) -> &str {
        &self.url["nats://".len()..]
    }
}

/// `text` with whatever stands before an `@` in the authority replaced by `***`.
fn redacted(text: &str) -> String {
    let (scheme, rest) = text.split_once("://").unwrap_or(("", text));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) if scheme.is_empty() => format!("***{}", &rest[at..]),
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => text.to_owned(),
    }
}

impl fmt::Display for NatsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::NatsUrl;

    /// `expected` is the normalised URL, or the error's message.
    fn check(input: &str, expected: &str) {
        let got = match NatsUrl::parse(input) {
            Ok(url) => url.to_string(),
            Err(error) => error.to_string(),
        };
        assert_eq!(got, expected, "for {input:?}");
    }

    #[test]
    fn urls() {
        check("nats://127.0.0.1:4222", "nats://127.0.0.1:4222");
        check("nats://localhost", "nats://localhost:4222");
        check("nats://nats.internal:14222/", "nats://nats.internal:14222");
        check("nats://[::1]:4333", "nats://[::1]:4333");
        check("nats://[::1]", "nats://[::1]:4222");
        check(
            "http://127.0.0.1:4222",
            "`http://127.0.0.1:4222` is not a NATS URL: no nats:// scheme (expected nats://HOST[:PORT])",
        );
        check(
            "nats://u:secret@h:1",
            "`nats://***@h:1` is not a NATS URL: credentials in the URL are not supported (expected nats://HOST[:PORT])",
        );
        check(
            "nats://a:1,nats://b:2",
            "`nats://a:1,nats://b:2` is not a NATS URL: one server only (expected nats://HOST[:PORT])",
        );
        check(
            "nats://h:0",
            "`nats://h:0` is not a NATS URL: the port is not a number from 1 to 65535 (expected nats://HOST[:PORT])",
        );
        check(
            "nats://h:x",
            "`nats://h:x` is not a NATS URL: the port is not a number from 1 to 65535 (expected nats://HOST[:PORT])",
        );
        check(
            "nats://:4222",
            "`nats://:4222` is not a NATS URL: no host (expected nats://HOST[:PORT])",
        );
        check(
            "nats://::1",
            "`nats://::1` is not a NATS URL: an IPv6 address must be in brackets (expected nats://HOST[:PORT])",
        );
        check(
            "nats://h:1/x",
            "`nats://h:1/x` is not a NATS URL: a path, query or fragment (expected nats://HOST[:PORT])",
        );
    }

    #[test]
    fn parts() {
        let url = NatsUrl::parse("nats://[::1]:4333").expect("parses");
        assert_eq!(
            (url.host(), url.port(), url.authority()),
            ("[::1]", 4333, "[::1]:4333")
        );
        assert_eq!(NatsUrl::loopback(5).as_str(), "nats://127.0.0.1:5");
    }
}
