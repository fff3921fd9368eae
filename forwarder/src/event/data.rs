//! The event's data: `data` stays raw JSON text, checked for depth and lone surrogate escapes
//! by loops over its bytes instead of being parsed; `data_base64` is standard padded base64; and
//! `data` must be a string under a content type that is not JSON.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::error::{EventError, Rule, Shown, invalid, kind};
use super::model::Event;
use super::string::{check_characters, json_string};
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
///
/// Every character of the base64 alphabet is one the String type allows, so the character rule
/// is checked only when the text is not base64: a control character is then named as such.
pub(super) fn check_base64<'a>(name: &str, raw: &'a str) -> Result<Cow<'a, str>, EventError> {
    let text = json_string(name, raw)?;
    if is_base64(text.as_bytes()) {
        return Ok(text);
    }
    check_characters(name, &text)?;
    Err(invalid(
        name,
        Rule::Base64,
        "not valid base64 (standard alphabet, with padding)".to_owned(),
    ))
}

/// Base64 characters decoded by one step of [`is_base64`]: a multiple of four, so that only the
/// last step can hold padding.
const BASE64_STEP: usize = 4 * 1024;

/// Whether `text` is standard, padded base64, as [`STANDARD`] decodes it, without allocating:
/// it is decoded a step at a time into a buffer on the stack. Padded base64 is a sequence of
/// four-character groups each decoded on its own, so the steps decode exactly when the whole
/// does.
fn is_base64(text: &[u8]) -> bool {
    let mut buffer = [0u8; BASE64_STEP / 4 * 3];
    text.len().is_multiple_of(4)
        && text
            .chunks(BASE64_STEP)
            .all(|step| STANDARD.decode_slice(step, &mut buffer).is_ok())
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
/// any depth is safe; strings are crossed by memchr's search for their closing quote.
fn depth_exceeds(raw: &str, max: usize) -> bool {
    let b = raw.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                // To the closing quote, over every escape.
                i += 1;
                loop {
                    let rest = b.get(i..).unwrap_or_default();
                    match memchr::memchr2(b'"', b'\\', rest) {
                        Some(at) if rest[at] == b'\\' => i += at + 2,
                        Some(at) => {
                            i += at;
                            break;
                        }
                        None => return false,
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::testing::{check, event};

    /// The definition of [`depth_exceeds`], one byte at a time.
    fn depth_by_bytes(raw: &str, max: usize) -> bool {
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        for &b in raw.as_bytes() {
            match b {
                _ if escaped => escaped = false,
                b'\\' if in_string => escaped = true,
                b'"' => in_string = !in_string,
                b'[' | b'{' if !in_string => {
                    depth += 1;
                    if depth > max {
                        return true;
                    }
                }
                b']' | b'}' if !in_string => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        false
    }

    /// Crossing strings by search agrees with reading every byte, brackets inside strings and
    /// escaped quotes included.
    #[test]
    fn depth_by_search_agrees_with_depth_by_bytes() {
        let pieces = ["[", "]", "{", "}", "\"", "\\\"", "\\\\", "a", ",", "1"];
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..20_000 {
            let raw: String = (0..rng.usize(0..40))
                .map(|_| pieces[rng.usize(0..pieces.len())])
                .collect();
            for max in [0, 1, 3] {
                assert_eq!(
                    depth_exceeds(&raw, max),
                    depth_by_bytes(&raw, max),
                    "{raw:?} {max}"
                );
            }
        }
    }

    /// Decoding a step at a time agrees with decoding the whole text at once, on text of
    /// lengths around the steps' boundaries with padding, bad characters and non-canonical
    /// trailing bits in every place.
    #[test]
    fn stepwise_decoding_agrees_with_decoding_at_once() {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut rng = fastrand::Rng::with_seed(7);
        let mut accepted = 0;
        for _ in 0..3_000 {
            let groups = BASE64_STEP / 4 * rng.usize(0..3) + rng.usize(0..4);
            let mut text: Vec<u8> = (0..groups * 4)
                .map(|_| alphabet[rng.usize(0..alphabet.len())])
                .collect();
            match rng.u8(0..6) {
                // Valid padding, as an encoder writes it.
                0 if !text.is_empty() => {
                    let bytes = STANDARD.decode(&text).expect("unpadded groups decode");
                    let cut = bytes.len() - rng.usize(1..=2.min(bytes.len()));
                    text = STANDARD.encode(&bytes[..cut]).into_bytes();
                }
                // One character anywhere replaced by padding, a bad byte or a control.
                1 | 2 if !text.is_empty() => {
                    let at = rng.usize(0..text.len());
                    text[at] = [b'=', b'-', b'\n', b' ', 0xC3][rng.usize(0..5)];
                }
                // A length that is not a multiple of four.
                3 if !text.is_empty() => {
                    text.pop();
                }
                _ => {}
            }
            let expected = STANDARD.decode(&text).is_ok();
            accepted += usize::from(expected);
            assert_eq!(is_base64(&text), expected, "{} bytes", text.len());
        }
        assert!(accepted > 1_000, "the cases cover valid base64: {accepted}");
    }

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
