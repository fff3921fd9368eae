//! The CloudEvents String type: a JSON string token decoded (borrowed when it has no escapes),
//! holding no control character and no noncharacter.

use std::borrow::Cow;

use super::error::{EventError, Rule, invalid, kind};

/// Whether the CloudEvents String type allows `c`: not a control character (U+0000-U+001F,
/// U+007F-U+009F) and not a Unicode noncharacter (U+FDD0-U+FDEF, and U+xFFFE/U+xFFFF of every
/// plane).
pub fn is_allowed_in_string(c: char) -> bool {
    let code = u32::from(c);
    !(code <= 0x1F
        || (0x7F..=0x9F).contains(&code)
        || (0xFDD0..=0xFDEF).contains(&code)
        || code & 0xFFFE == 0xFFFE)
}

/// Checks that an attribute's value is a string and decodes it.
pub(super) fn string<'a>(name: &str, raw: &'a str) -> Result<Cow<'a, str>, EventError> {
    let text = json_string(name, raw)?;
    check_characters(name, &text)?;
    Ok(text)
}

/// Checks that an attribute's value is a JSON string token and decodes it, without the
/// CloudEvents String type's character rule (see [`check_characters`]).
pub(super) fn json_string<'a>(name: &str, raw: &'a str) -> Result<Cow<'a, str>, EventError> {
    if !raw.starts_with('"') {
        return Err(invalid(
            name,
            Rule::Type,
            format!("must be a string, got {}", kind(raw)),
        ));
    }
    if raw.contains('\\') {
        serde_json::from_str::<String>(raw)
            .map(Cow::Owned)
            .map_err(|error| {
                invalid(
                    name,
                    Rule::Json,
                    format!("not a valid JSON string: {}", without_position(&error)),
                )
            })
    } else {
        Ok(Cow::Borrowed(&raw[1..raw.len() - 1]))
    }
}

/// The CloudEvents String type: no control characters, no noncharacters.
pub(super) fn check_characters(name: &str, text: &str) -> Result<(), EventError> {
    match first_disallowed(text) {
        None => Ok(()),
        Some(c) => Err(invalid(
            name,
            Rule::Characters,
            format!(
                "holds U+{:04X}; CloudEvents strings must not hold control characters or noncharacters",
                u32::from(c)
            ),
        )),
    }
}

/// The bytes of one step of [`first_disallowed`]'s fast path.
const CHUNK: usize = 16;

/// The first character of `text` that [`is_allowed_in_string`] refuses.
///
/// Runs of printable ASCII (U+0020-U+007E, all allowed) are checked sixteen bytes at a time by a
/// test without branches, which the compiler turns into vector instructions; a run holding
/// anything else is read character by character, up to the next character boundary after it.
fn first_disallowed(text: &str) -> Option<char> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + CHUNK)
            && chunk.iter().fold(true, |printable, &b| {
                printable & (b.wrapping_sub(0x20) < 0x5F)
            })
        {
            i += CHUNK;
            continue;
        }
        let end = (i + CHUNK).min(bytes.len());
        // `i` is a character boundary: every step ends on one.
        for c in text[i..].chars() {
            if !is_allowed_in_string(c) {
                return Some(c);
            }
            i += c.len_utf8();
            if i >= end {
                break;
            }
        }
    }
    None
}

/// Checks that an attribute's value is a non-empty string and decodes it.
pub(super) fn non_empty_string<'a>(name: &str, raw: &'a str) -> Result<Cow<'a, str>, EventError> {
    let text = string(name, raw)?;
    if text.is_empty() {
        return Err(invalid(
            name,
            Rule::NonEmpty,
            "must be a non-empty string".to_owned(),
        ));
    }
    Ok(text)
}

/// The decoded string to store, only when it differs from the raw text between the quotes.
pub(super) fn owned(text: Cow<'_, str>) -> Option<Box<str>> {
    match text {
        Cow::Borrowed(_) => None,
        Cow::Owned(text) => Some(text.into_boxed_str()),
    }
}

/// A serde_json error without its position, for errors about one attribute's value: a position
/// within the value alone would mislead.
fn without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    match message.strip_suffix(&position) {
        Some(stripped) => stripped.to_owned(),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use crate::event::testing::{check, event};

    #[test]
    fn no_controls_and_no_noncharacters() {
        check(
            &event(r#","ext":"a\u0001b""#),
            "characters: attribute `ext`: holds U+0001; CloudEvents strings must not hold control characters or noncharacters",
        );
        check(
            &event(r#","subject":"\uffff""#),
            "characters: attribute `subject`: holds U+FFFF; CloudEvents strings must not hold control characters or noncharacters",
        );
        check(
            &event(r#","ext":"\ufdd0""#),
            "characters: attribute `ext`: holds U+FDD0; CloudEvents strings must not hold control characters or noncharacters",
        );
        check(
            &event(r#","ext":"\u0085""#),
            "characters: attribute `ext`: holds U+0085; CloudEvents strings must not hold control characters or noncharacters",
        );
        check(&event(r#","ext":"\ud83d\ude00 \u00e9 \ufffd""#), "ok");
        check(&event(r#","data":"\uffff\u0001""#), "ok");
    }

    /// The fast path agrees with the definition, `text.chars().find(|c| !allowed(c))`, on text
    /// that mixes printable ASCII runs of every length with every kind of character around the
    /// chunk boundaries.
    #[test]
    fn the_fast_path_finds_what_a_plain_search_finds() {
        use super::{first_disallowed, is_allowed_in_string};
        let pieces = [
            "a",
            "~",
            " ",
            "\u{7f}",
            "\u{1f}",
            "\t",
            "é",
            "中",
            "😀",
            "\u{fdd0}",
            "\u{fffe}",
            "\u{10ffff}",
            "\u{9f}",
            "\u{a0}",
        ];
        let mut rng = fastrand::Rng::with_seed(17);
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..rng.usize(0..6) {
                text.push_str(&"x".repeat(rng.usize(0..40)));
                text.push_str(pieces[rng.usize(0..pieces.len())]);
            }
            let expected = text.chars().find(|&c| !is_allowed_in_string(c));
            assert_eq!(first_disallowed(&text), expected, "{text:?}");
        }
    }
}
