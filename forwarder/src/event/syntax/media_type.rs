//! RFC 2046 media types (`datacontenttype`), and whether one declares JSON.
//!
//! Hand-written: the `mime` crate (0.3, already in the tree through axum) is measured wrong both
//! ways. It accepts `application/` (no subtype) and `application/json;` (a `;` with no
//! parameter), and refuses `x/y; q=""` (an empty quoted string, which RFC 9110's
//! `quoted-string` allows) and `text/plain ;charset=utf-8` (whitespace before the `;`, which
//! `OWS` allows). The tests below pin our verdict on each.

/// Whether `s` is an RFC 2046 media type: `type "/" subtype *( OWS ";" OWS parameter )`, with
/// RFC 7230 tokens, and parameter values either tokens or quoted strings.
pub fn is_media_type(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(mut i) = token(b, 0) else {
        return false;
    };
    if b.get(i) != Some(&b'/') {
        return false;
    }
    let Some(end) = token(b, i + 1) else {
        return false;
    };
    i = end;
    while i < b.len() {
        let mut j = skip_ows(b, i);
        if b.get(j) != Some(&b';') {
            return false;
        }
        j = skip_ows(b, j + 1);
        let Some(end) = token(b, j) else {
            return false;
        };
        j = end;
        if b.get(j) != Some(&b'=') {
            return false;
        }
        let value = if b.get(j + 1) == Some(&b'"') {
            quoted_string(b, j + 1)
        } else {
            token(b, j + 1)
        };
        let Some(end) = value else {
            return false;
        };
        i = end;
    }
    true
}

/// Whether a media type declares JSON: its subtype, parameters aside, is `json` or ends in `+json`,
/// in any case.
pub fn is_json_media_type(media_type: &str) -> bool {
    let essence = media_type.split(';').next().unwrap_or_default().trim();
    essence.split_once('/').is_some_and(|(_, subtype)| {
        let subtype = subtype.to_ascii_lowercase();
        subtype == "json" || subtype.ends_with("+json")
    })
}

/// The end of an RFC 7230 token starting at `start`, if there is one.
fn token(b: &[u8], start: usize) -> Option<usize> {
    let len = b.get(start..)?.iter().take_while(|&&c| is_tchar(c)).count();
    (len > 0).then_some(start + len)
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// The end of an RFC 7230 quoted-string starting at `start` (on its opening quote).
fn quoted_string(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => {
                let escaped = *b.get(i + 1)?;
                if !(escaped == b'\t' || escaped == b' ' || escaped >= 0x21 && escaped != 0x7F) {
                    return None;
                }
                i += 2;
            }
            c if c == b'\t' || c == b' ' || c >= 0x21 && c != 0x7F => i += 1,
            _ => return None,
        }
    }
}

fn skip_ows(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::testing::check_syntax as check;

    /// The inputs on which `mime` is wrong (see the module's doc).
    #[test]
    fn where_mime_is_wrong() {
        check(
            is_media_type,
            &["x/y; q=\"\"", "text/plain ;charset=utf-8"],
            &["application/", "application/json;"],
        );
    }

    #[test]
    fn media_type() {
        check(
            is_media_type,
            &[
                "application/json",
                "text/plain;charset=utf-8",
                "text/plain; charset=utf-8",
                "text/plain ;\tcharset=utf-8",
                "text/plain; charset=\"utf-8\"",
                "text/plain; a=b; c=\"d; e=\\\"f\\\"\"",
                "application/vnd.api+json",
                "application/cloudevents+json; charset=UTF-8",
                "multipart/form-data; boundary=\"a b\"",
                "x/y; q=\"\"",
                "x/y; q=\"caf\u{e9}\"",
                "!#$%&'*+-.^_`|~/!#$%&'*+-.^_`|~",
            ],
            &[
                "",
                "json",
                "application",
                "application/",
                "/json",
                "application/json;",
                "application/json; ",
                "application/json ",
                " application/json",
                "application /json",
                "application/ json",
                "application/json; charset",
                "application/json; charset=",
                "application/json; charset =utf-8",
                "application/json; charset= utf-8",
                "application/json; charset=\"utf-8",
                "application/json; charset=\"a\"b",
                "text/plain; a=b c=d",
                "text/plain;; a=b",
                "a(b)/c",
                "a/b/c",
                "a@b/c",
                "x/y; q=\"a\u{7f}\"",
                "x/y; q=\"\\\u{7f}\"",
                "x/y; q=\"\u{1}\"",
                "tëxt/plain",
            ],
        );
    }
}
