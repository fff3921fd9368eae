//! RFC 3986 URI-references (`source`) and absolute URIs (`dataschema`), read by `iri-string`
//! with its URI (ASCII-only) rules: scheme, authority with IP-literals (IPv6 in RFC 4291's text
//! form, no zone identifier, or IPvFuture), path, query, fragment, and `%XX` escapes.

use iri_string::spec::UriSpec;
use iri_string::validate;

/// Whether `s` is an RFC 3986 URI-reference: a URI, or a relative reference.
pub fn is_uri_reference(s: &str) -> bool {
    validate::iri_reference::<UriSpec>(s).is_ok()
}

/// Whether `s` is an RFC 3986 URI: a URI-reference with a scheme (a fragment is allowed).
pub fn is_absolute_uri(s: &str) -> bool {
    validate::iri::<UriSpec>(s).is_ok()
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
