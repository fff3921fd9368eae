//! RFC 3986 URI-references (`source`) and absolute URIs (`dataschema`).

/// Whether `s` is an RFC 3986 URI-reference: a URI, or a relative reference.
pub fn is_uri_reference(s: &str) -> bool {
    parse_uri_reference(s).is_some()
}

/// Whether `s` is an RFC 3986 URI: a URI-reference with a scheme (a fragment is allowed).
pub fn is_absolute_uri(s: &str) -> bool {
    parse_uri_reference(s) == Some(true)
}

/// Parses an RFC 3986 URI-reference; `Some(true)` if it has a scheme.
fn parse_uri_reference(s: &str) -> Option<bool> {
    let b = s.as_bytes();
    // A colon before any '/', '?' or '#' ends a scheme: a relative reference cannot have one in
    // its first segment.
    let (has_scheme, rest) = match b
        .iter()
        .position(|&c| matches!(c, b':' | b'/' | b'?' | b'#'))
    {
        Some(i) if b[i] == b':' => {
            let scheme = &b[..i];
            let valid = scheme.first().is_some_and(u8::is_ascii_alphabetic)
                && scheme
                    .iter()
                    .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
            if !valid {
                return None;
            }
            (true, &b[i + 1..])
        }
        _ => (false, b),
    };
    let (rest, fragment) = split_at_byte(rest, b'#');
    let (hier, query) = split_at_byte(rest, b'?');
    let path = match hier.strip_prefix(b"//") {
        Some(after) => {
            let end = after.iter().position(|&c| c == b'/').unwrap_or(after.len());
            if !authority(&after[..end]) {
                return None;
            }
            &after[end..]
        }
        None => hier,
    };
    let valid = chars(path, |c| is_pchar(c) || c == b'/')
        && query.is_none_or(|query| chars(query, |c| is_pchar(c) || c == b'/' || c == b'?'))
        && fragment
            .is_none_or(|fragment| chars(fragment, |c| is_pchar(c) || c == b'/' || c == b'?'));
    valid.then_some(has_scheme)
}

/// `authority = [ userinfo "@" ] host [ ":" port ]`.
fn authority(b: &[u8]) -> bool {
    let host_port = match b.iter().position(|&c| c == b'@') {
        Some(at) => {
            if !chars(&b[..at], |c| {
                is_unreserved(c) || is_sub_delim(c) || c == b':'
            }) {
                return false;
            }
            &b[at + 1..]
        }
        None => b,
    };
    let port = if let Some(literal) = host_port.strip_prefix(b"[") {
        let Some(close) = literal.iter().position(|&c| c == b']') else {
            return false;
        };
        if !is_ip_literal(&literal[..close]) {
            return false;
        }
        match &literal[close + 1..] {
            [] => &[][..],
            [b':', port @ ..] => port,
            _ => return false,
        }
    } else {
        let (host, port) = split_at_byte(host_port, b':');
        if !chars(host, |c| is_unreserved(c) || is_sub_delim(c)) {
            return false;
        }
        port.unwrap_or_default()
    };
    port.iter().all(u8::is_ascii_digit)
}

/// What is inside the brackets of an RFC 3986 `IP-literal`: an `IPv6address`, or an `IPvFuture`
/// (`"v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`). IPv6 text is read by the standard
/// library, which follows RFC 4291's text form as RFC 3986 does and refuses zone identifiers.
fn is_ip_literal(inside: &[u8]) -> bool {
    match inside {
        [b'v' | b'V', rest @ ..] => {
            let dot = rest.iter().position(|&c| c == b'.');
            dot.is_some_and(|dot| {
                dot > 0
                    && rest[..dot].iter().all(u8::is_ascii_hexdigit)
                    && rest.len() > dot + 1
                    && rest[dot + 1..]
                        .iter()
                        .all(|&c| is_unreserved(c) || is_sub_delim(c) || c == b':')
            })
        }
        _ => {
            std::str::from_utf8(inside).is_ok_and(|text| text.parse::<std::net::Ipv6Addr>().is_ok())
        }
    }
}

/// Whether every character is allowed, a '%' always starting a `%XX` escape.
fn chars(b: &[u8], allowed: impl Fn(u8) -> bool) -> bool {
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
        } else if allowed(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

fn split_at_byte(b: &[u8], byte: u8) -> (&[u8], Option<&[u8]>) {
    match b.iter().position(|&c| c == byte) {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    }
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(c: u8) -> bool {
    matches!(
        c,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

fn is_pchar(c: u8) -> bool {
    is_unreserved(c) || is_sub_delim(c) || matches!(c, b':' | b'@')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::testing::check_syntax as check;

    #[test]
    fn ip_literals_are_ipv6_or_ipvfuture() {
        for (uri, accepted) in [
            ("//[::1]/x", true),
            ("http://[2001:db8::7]:80/", true),
            ("//[::ffff:192.0.2.1]", true),
            ("//[v7.x:y]", true),
            ("//[V1f.a]", true),
            ("//[zz]/x", false),
            ("//[]", false),
            ("//[v.x]", false),
            ("//[v7.]", false),
            ("//[1:2:3:4:5:6:7:8:9]", false),
            ("//[12345::]", false),
            ("//[::1%25eth0]", false),
        ] {
            assert_eq!(is_uri_reference(uri), accepted, "{uri}");
        }
    }

    #[test]
    fn uri_reference() {
        check(
            is_uri_reference,
            &[
                "",
                "/",
                "a",
                "golioth/app/gateway/coap",
                "https://github.com/cloudevents/spec/pull",
                "https://user:pass@example.com:8080/p/a/t/h?query=1&b=2#frag/ment?",
                "http://[::1]:80/",
                "http://[v1.fe80::a+en1]/",
                "mailto:someone@example.com",
                "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
                "/sensors/tn-1234567/alerts",
                "1-555-123-4567",
                "./a:b",
                "a/b:c",
                "?q",
                "#f",
                "//host",
                "%41%2f",
                "a+b.c-d:x",
                "~user/!$&'()*+,;=:@",
                "http://host:",
            ],
            &[
                "not a uri",
                "a b",
                "é",
                "a\"b",
                "a<b>",
                "a\\b",
                "a^b",
                "a`b",
                "a{b}",
                "a|b",
                "%",
                "%4",
                "%4g",
                "a%zz",
                ":x",
                "1abc:x",
                "a_b:x",
                "a#b#c",
                "a[b]",
                "/p?q[1]",
                "http://ho st/",
                "http://[::1/",
                "http://[]/",
                "http://[::1]x/",
                "http://host:8a/",
                "http://a@b@c/",
                "http://h[o]st/",
                "a\tb",
                "a\nb",
            ],
        );
    }

    #[test]
    fn absolute_uri() {
        check(
            is_absolute_uri,
            &[
                "https://example.com/schema",
                "urn:example:x",
                "a:",
                "https://example.com/schema#v1",
                "HTTP://EXAMPLE.COM",
            ],
            &[
                "",
                "/schema",
                "schema.json",
                "//example.com/x",
                "#x",
                "1http://x",
                "https://exa mple.com",
            ],
        );
    }
}
