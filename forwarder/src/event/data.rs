//! The event's data: `data` stays raw JSON text, checked for depth and lone surrogate escapes
//! by loops over its bytes instead of being parsed; `data_base64` is standard padded base64; and
//! `data` must be a string under a content type that is not JSON.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::error::{EventError, Rule, Shown, invalid, kind};
use super::model::Event;
use super::string::string;
use super::syntax::is_json_media_type;

/// The deepest nesting of arrays and objects in a whole event, the top-level object included.
///
/// serde_json's default recursion limit accepts exactly this depth, so every event we send can be
/// read back by a consumer that uses serde_json with its defaults.
pub const MAX_DEPTH: usize = 127;

/// Checks the raw JSON text of `data`: nested at most [`MAX_DEPTH`] deep, the event's object
/// included, and no lone surrogate escape anywhere in it.
pub(super) fn check_data(name: &str, raw: &str) -> Result<(), EventError> {
    // The top-level object counts as one level.
    if depth_exceeds(raw, MAX_DEPTH - 1) {
        return Err(invalid(
            name,
            Rule::Json,
            format!("nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    if let Some(escape) = lone_surrogate(raw) {
        return Err(invalid(
            name,
            Rule::Json,
            format!("holds a lone surrogate escape (`{escape}`)"),
        ));
    }
    Ok(())
}

/// Checks that `data_base64` is a string of standard, padded base64 and decodes the string.
pub(super) fn check_base64<'a>(name: &str, raw: &'a str) -> Result<Cow<'a, str>, EventError> {
    let text = string(name, raw)?;
    if STANDARD.decode(text.as_bytes()).is_err() {
        return Err(invalid(
            name,
            Rule::Base64,
            "not valid base64 (standard alphabet, with padding)".to_owned(),
        ));
    }
    Ok(text)
}

/// Checks that `data` is a string unless `datacontenttype` declares JSON (or is absent, which
/// means JSON in this format): JSON format, section 3.1.1.
pub(super) fn check_data_type(event: &Event) -> Result<(), EventError> {
    let (Some(content_type), Some(data)) = (event.datacontenttype(), event.data()) else {
        return Ok(());
    };
    let raw = data.get();
    if raw.starts_with('"') || is_json_media_type(content_type) {
        return Ok(());
    }
    Err(invalid(
        "data",
        Rule::DataType,
        format!(
            "must be a string when `datacontenttype` is not JSON (`{}`), got {}",
            Shown(content_type),
            kind(raw)
        ),
    ))
}

/// The first `\uXXXX` escape in valid JSON text that is a surrogate without its pair, as written.
/// A loop over the bytes, so any size is safe; text without `\u` costs one search.
fn lone_surrogate(raw: &str) -> Option<&str> {
    let b = raw.as_bytes();
    if !raw.contains("\\u") {
        return None;
    }
    let unit = |at: usize| -> Option<u16> {
        let hex = raw.get(at + 2..at + 6)?;
        (b.get(at + 1) == Some(&b'u') && b[at] == b'\\')
            .then(|| u16::from_str_radix(hex, 16).ok())
            .flatten()
    };
    let mut i = 0;
    let mut in_string = false;
    while i < b.len() {
        match b[i] {
            b'"' => in_string = !in_string,
            b'\\' if in_string => {
                if let Some(code) = unit(i) {
                    let end = i + 6;
                    match code {
                        0xD800..=0xDBFF => match unit(end) {
                            Some(0xDC00..=0xDFFF) => {
                                i = end + 6;
                                continue;
                            }
                            _ => return Some(&raw[i..end]),
                        },
                        0xDC00..=0xDFFF => return Some(&raw[i..end]),
                        _ => {}
                    }
                    i = end;
                    continue;
                }
                // Any other escape is two bytes.
                i += 2;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether valid JSON text nests arrays and objects deeper than `max`. A loop, not recursion, so
/// any depth is safe.
fn depth_exceeds(raw: &str, max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in raw.as_bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > max {
                        return true;
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::testing::{check, event};

    #[test]
    fn lone_surrogates_anywhere_in_data() {
        check(&event(r#","data":"\ud83d\ude00""#), "ok");
        check(&event(r#","data":{"a":["\\ud800"]}"#), "ok");
        check(
            &event(r#","data":{"a":["x\udc00"]}"#),
            "json: attribute `data`: holds a lone surrogate escape (`\\udc00`)",
        );
        check(
            &event(r#","data":{"\uDBFF":1}"#),
            "json: attribute `data`: holds a lone surrogate escape (`\\uDBFF`)",
        );
        check(
            &event(r#","data":"\ud800\u0041""#),
            "json: attribute `data`: holds a lone surrogate escape (`\\ud800`)",
        );
    }

    #[test]
    fn non_json_content_types_carry_string_data() {
        check(
            &event(r#","datacontenttype":"text/plain","data":"x""#),
            "ok",
        );
        check(
            &event(r#","data":{"a":1},"datacontenttype":"application/vnd.x+json""#),
            "ok",
        );
        check(
            &event(r#","data":[1],"datacontenttype":"Application/JSON; charset=utf-8""#),
            "ok",
        );
        check(&event(r#","data":{"a":1}"#), "ok");
        check(
            &event(r#","data":3,"datacontenttype":"application/jsonx""#),
            "data-type: attribute `data`: must be a string when `datacontenttype` is not JSON (`application/jsonx`), got a number",
        );
    }

    #[test]
    fn deep_nesting() {
        let deep = |depth: usize| {
            event(&format!(
                r#","data":{}{}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            ))
        };
        check(&deep(MAX_DEPTH - 1), "ok");
        let payload = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let error = Event::wrap(payload.as_bytes(), "/s", "t", None).expect_err("too deep");
        assert_eq!(
            format!("{}: {error}", error.rule()),
            "json: attribute `data`: nested deeper than 127 levels"
        );
        check(
            &deep(MAX_DEPTH),
            "json: attribute `data`: nested deeper than 127 levels",
        );
        check(
            &deep(10_000),
            "json: attribute `data`: nested deeper than 127 levels",
        );
        let object = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
        check(
            &event(&format!(r#","data":{object}"#)),
            "json: attribute `data`: nested deeper than 127 levels",
        );
        // Brackets inside strings do not count.
        check(&event(r#","data":"[[[[[[[[[[\"[[[[[[""#), "ok");
        let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        check(
            &nested,
            "json: not valid JSON: invalid type: sequence, expected a JSON object of CloudEvents attributes at line 1 column 0",
        );
        check(
            &event(&format!(r#","ext":{nested}"#)),
            &format!(
                "extension-type: attribute `ext`: must be a string, a boolean or an integer in the 32-bit range, got an array `{}…`",
                "[".repeat(80)
            ),
        );
    }

    #[test]
    fn data_members() {
        check(&event(r#","data":{"a":[1,2,{"b":null}]}"#), "ok");
        check(&event(r#","data":"text""#), "ok");
        check(&event(r#","data":123456789012345678901234567890"#), "ok");
        check(&event(r#","data":false"#), "ok");
        check(&event(r#","data_base64":"AAEC""#), "ok");
        check(&event(r#","data_base64":"AAE=""#), "ok");
        check(&event(r#","data_base64":"AA==""#), "ok");
        check(&event(r#","data_base64":"""#), "ok");
        check(&event(r#","data_base64":"A\/8=""#), "ok");
        check(
            &event(r#","data":1,"data_base64":"AA==""#),
            "data-exclusive: attribute `data_base64`: `data` and `data_base64` must not both be present",
        );
        check(
            &event(r#","data_base64":"AA==","data":1"#),
            "data-exclusive: attribute `data`: `data_base64` and `data` must not both be present",
        );
        for bad in [
            "AA", "AA=", "A===", "AAE", "AB==", "AA==AA==", "AA AA", "AA-_", "****",
        ] {
            check(
                &event(&format!(r#","data_base64":"{bad}""#)),
                "base64: attribute `data_base64`: not valid base64 (standard alphabet, with padding)",
            );
        }
        check(
            &event(r#","data_base64":5"#),
            "type: attribute `data_base64`: must be a string, got a number",
        );
    }
}
