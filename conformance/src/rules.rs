//! The MUST rules that a JSON Schema cannot state, checked on the raw body.
//!
//! The body is read into its members in order, each value kept as raw JSON
//! text ([`RawValue`]): duplicate keys stay visible and integer tokens keep
//! their exact spelling, which a parse into `serde_json::Value` would lose.
//! Sources: CloudEvents 1.0 core (type system, attribute names), its JSON
//! event format, RFC 3339 (timestamps), RFC 2045/2046 (media types), RFC 4648
//! (base64) and the Amazon SQS message body character set.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64::Engine as _;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::judge::Problem;

/// The members of a JSON object in document order, duplicates included, each
/// value as its raw JSON text.
#[derive(Debug)]
pub(crate) struct Members(Vec<(String, Box<RawValue>)>);

/// Reads `text` as one JSON object; anything else is a problem of rule `json`.
pub(crate) fn parse_members(text: &str) -> Result<Members, Problem> {
    serde_json::from_str(text)
        .map_err(|err| Problem::new("json", "", format!("not a JSON object: {err}")))
}

/// Checks the SQS body character set: `#x9 | #xA | #xD | #x20-#xD7FF |
/// #xE000-#xFFFD | #x10000-#x10FFFF`.
///
/// A Rust string cannot hold surrogates, so in practice this refuses control
/// characters and the noncharacters U+FFFE and U+FFFF written raw; SQS would
/// have refused such a body at send time.
pub(crate) fn check_charset(body: &str) -> Vec<Problem> {
    let mut outside = body.char_indices().filter(|&(_, c)| !is_sqs_char(c));
    let Some((offset, first)) = outside.next() else {
        return Vec::new();
    };
    let more = outside.count();
    let tail = if more == 0 {
        String::new()
    } else {
        format!(" and {more} more")
    };
    vec![Problem::new(
        "charset",
        "",
        format!(
            "body holds {} at byte {offset}{tail}, outside the SQS character set",
            code_point(first)
        ),
    )]
}

/// Checks the members of an event against the rules the schema cannot state.
pub(crate) fn check_members(members: &Members) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (name, raw) in &members.0 {
        let path = pointer(name);
        if !seen.insert(name.as_str()) {
            problems.push(Problem::new(
                "duplicate-key",
                &path,
                format!("member {name:?} appears more than once"),
            ));
        }
        let value = match Token::read(raw) {
            Ok(value) => value,
            Err(err) => {
                problems.push(Problem::new(
                    "string",
                    &path,
                    format!("not a valid Unicode string: {err}"),
                ));
                continue;
            }
        };
        match (name.as_str(), &value) {
            // The data payload is unrestricted JSON; see `check_data`.
            ("data", _) => {}
            ("data_base64", Token::String(text)) => {
                if let Err(err) = base64::engine::general_purpose::STANDARD.decode(text) {
                    problems.push(Problem::new(
                        "base64",
                        &path,
                        format!("not canonical RFC 4648 base64: {err}"),
                    ));
                }
            }
            ("data_base64", _) => {}
            (attribute, Token::String(text)) => {
                if let Some(c) = text.chars().find(|&c| is_disallowed_in_string(c)) {
                    problems.push(Problem::new(
                        "string",
                        &path,
                        format!(
                            "holds {}, which a CloudEvents String may not",
                            code_point(c)
                        ),
                    ));
                }
                if attribute == "time" && !is_rfc3339_timestamp(text) {
                    problems.push(Problem::new(
                        "rfc3339",
                        &path,
                        format!(
                            "{text:?} is not an RFC 3339 date-time with seconds, a valid offset and a real calendar date"
                        ),
                    ));
                }
                if attribute == "datacontenttype" && !is_media_type(text) {
                    problems.push(Problem::new(
                        "media-type",
                        &path,
                        format!("{text:?} is not an RFC 2046 media type"),
                    ));
                }
            }
            (attribute, Token::Number(token)) if !is_core_attribute(attribute) => {
                if let Err(message) = check_integer_token(token) {
                    problems.push(Problem::new("integer", &path, message));
                }
            }
            _ => {}
        }
    }
    problems.extend(check_data(members));
    problems
}

/// Checks that the `ce-*` and `content-type` SQS message attributes, when
/// present, carry the same values as the body.
///
/// `ce-<name>` is compared with the body attribute `<name>` and
/// `content-type` with `datacontenttype`, as strings: booleans and integers
/// of the body are compared through their canonical string encoding (`true`,
/// `-5`). A `content-type` naming the event format (`application/cloudevents+json`) marks a
/// structured body and is not compared. Other message attributes are not CloudEvents' concern.
pub(crate) fn check_attributes(
    members: &Members,
    attributes: &BTreeMap<String, String>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (key, expected) in attributes {
        let name = if key == "content-type" {
            // The event format of a structured body, as in the HTTP binding, is no data type.
            if crate::binary::is_event_format(expected) {
                continue;
            }
            "datacontenttype"
        } else if let Some(name) = key.strip_prefix("ce-") {
            name
        } else {
            continue;
        };
        match members.canonical_string(name) {
            None => problems.push(Problem::new(
                "attributes",
                key,
                format!("{key} is {expected:?} but the body has no {name}"),
            )),
            Some(actual) if actual != *expected => problems.push(Problem::new(
                "attributes",
                key,
                format!("{key} is {expected:?} but the body's {name} is {actual:?}"),
            )),
            Some(_) => {}
        }
    }
    problems
}

/// Whether `text` is an RFC 3339 `date-time`: seconds present, fraction
/// optional, `Z` or a `±hh:mm` offset within a day, a date that exists in the
/// Gregorian calendar, and a leap second only where UTC reads 23:59:60.
///
/// RFC 3339 section 5.6 lets `T` and `Z` be written in lower case; they are
/// accepted.
pub(crate) fn is_rfc3339_timestamp(text: &str) -> bool {
    parse_timestamp(text).is_some()
}

/// Whether `text` is an RFC 2046 media type, `type/subtype` followed by
/// `;`-separated `name=value` parameters, with RFC 2045 tokens and quoted
/// strings. Spaces and tabs are allowed around `;` only.
pub(crate) fn is_media_type(text: &str) -> bool {
    parse_media_type(text).is_some()
}

/// Whether the media type declares JSON-formatted data: its subtype, without
/// parameters, is `json` or ends in `+json` (JSON format, section 3.1.1).
pub(crate) fn is_json_media_type(text: &str) -> bool {
    let essence = text.split(';').next().unwrap_or_default().trim();
    let subtype = essence
        .split_once('/')
        .map(|(_, subtype)| subtype.to_ascii_lowercase())
        .unwrap_or_default();
    subtype == "json" || subtype.ends_with("+json")
}

const CORE_ATTRIBUTES: [&str; 8] = [
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
];

fn is_core_attribute(name: &str) -> bool {
    CORE_ATTRIBUTES.contains(&name)
}

/// A member value, classified from its raw JSON text.
#[derive(Debug)]
enum Token<'a> {
    Null,
    Bool(bool),
    Number(&'a str),
    String(String),
    Compound(&'a str),
}

impl<'a> Token<'a> {
    fn read(raw: &'a RawValue) -> Result<Self, serde_json::Error> {
        let text = raw.get().trim();
        Ok(match text.as_bytes().first() {
            Some(b'n') => Token::Null,
            Some(b't') => Token::Bool(true),
            Some(b'f') => Token::Bool(false),
            Some(b'"') => Token::String(serde_json::from_str(text)?),
            Some(b'-' | b'0'..=b'9') => Token::Number(text),
            _ => Token::Compound(text),
        })
    }
}

impl Members {
    /// The last value of member `name`, in canonical string encoding; `None`
    /// when absent or null (the JSON format treats null as unset).
    fn canonical_string(&self, name: &str) -> Option<String> {
        let (_, raw) = self.0.iter().rev().find(|(key, _)| key == name)?;
        match Token::read(raw).ok()? {
            Token::Null => None,
            Token::Bool(value) => Some(value.to_string()),
            Token::Number(text) | Token::Compound(text) => Some(text.to_owned()),
            Token::String(text) => Some(text),
        }
    }

    /// The object as a `serde_json::Value` for the schema, with `data` (which the schema does
    /// not constrain) standing in as `null` when its numbers are beyond what `Value` holds, such
    /// as `1e400` or a 400-digit integer: valid JSON that the schema check must not refuse.
    pub(crate) fn schema_view(&self) -> Result<serde_json::Value, serde_json::Error> {
        let mut object = serde_json::Map::new();
        for (name, raw) in &self.0 {
            let value = match serde_json::from_str(raw.get()) {
                Ok(value) => value,
                Err(_) if name == "data" => serde_json::Value::Null,
                Err(err) => return Err(err),
            };
            object.insert(name.clone(), value);
        }
        Ok(serde_json::Value::Object(object))
    }

    fn last(&self, name: &str) -> Option<&RawValue> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, raw)| &**raw)
    }
}

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MembersVisitor)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry::<String, Box<RawValue>>()? {
            members.push(member);
        }
        Ok(Members(members))
    }
}

/// When `datacontenttype` declares data that is not JSON, the serializer MUST
/// store `data` as a JSON string (JSON format, section 3.1.1).
fn check_data(members: &Members) -> Vec<Problem> {
    let Some(data) = members.last("data") else {
        return Vec::new();
    };
    let content_type = match members.last("datacontenttype").map(Token::read) {
        Some(Ok(Token::String(content_type))) => content_type,
        _ => return Vec::new(),
    };
    if !is_media_type(&content_type) || is_json_media_type(&content_type) {
        return Vec::new();
    }
    match Token::read(data) {
        Ok(Token::String(_)) | Err(_) => Vec::new(),
        Ok(_) => vec![Problem::new(
            "data",
            "/data",
            format!("datacontenttype {content_type:?} is not JSON, so data must be a JSON string"),
        )],
    }
}

/// An extension Integer is written as an optional minus sign and the integer
/// component of a JSON number, within the signed 32-bit range.
fn check_integer_token(token: &str) -> Result<(), String> {
    let digits = token.strip_prefix('-').unwrap_or(token);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{token} is not an integer: only digits and an optional minus sign are allowed"
        ));
    }
    token
        .parse::<i32>()
        .map(drop)
        .map_err(|_| format!("{token} is outside the Integer range -2147483648..=2147483647"))
}

fn is_sqs_char(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}'
    )
}

/// The CloudEvents String type disallows the C0 and C1 control characters
/// and the Unicode noncharacters (U+FDD0..U+FDEF and the last two code points
/// of every plane). Unpaired surrogates cannot reach a Rust string: decoding
/// one fails first.
fn is_disallowed_in_string(c: char) -> bool {
    let code = u32::from(c);
    matches!(code, 0x00..=0x1F | 0x7F..=0x9F | 0xFDD0..=0xFDEF) || code & 0xFFFE == 0xFFFE
}

fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// The JSON pointer (RFC 6901) of a top-level member.
pub(crate) fn pointer(name: &str) -> String {
    format!("/{}", name.replace('~', "~0").replace('/', "~1"))
}

fn parse_timestamp(text: &str) -> Option<()> {
    let mut cursor = Cursor(text.as_bytes());
    let year = cursor.digits(4)?;
    cursor.expect(b"-")?;
    let month = cursor.digits(2)?;
    cursor.expect(b"-")?;
    let day = cursor.digits(2)?;
    cursor.expect(b"Tt")?;
    let hour = cursor.digits(2)?;
    cursor.expect(b":")?;
    let minute = cursor.digits(2)?;
    cursor.expect(b":")?;
    let second = cursor.digits(2)?;
    if cursor.expect(b".").is_some() {
        cursor.digits(1)?;
        while cursor.digits(1).is_some() {}
    }
    let offset = match cursor.next()? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let hours = cursor.digits(2)?;
            cursor.expect(b":")?;
            let minutes = cursor.digits(2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = i64::from(hours * 60 + minutes);
            if sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    if !cursor.0.is_empty() {
        return None;
    }
    let day_exists = (1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day);
    let second_exists = match second {
        0..=59 => true,
        // A leap second is inserted at the end of a UTC day.
        60 => (i64::from(hour * 60 + minute) - offset).rem_euclid(24 * 60) == 23 * 60 + 59,
        _ => false,
    };
    (day_exists && hour <= 23 && minute <= 59 && second_exists).then_some(())
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A forward-only reader over ASCII bytes.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn next(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    /// Consumes one byte if it is one of `allowed`.
    fn expect(&mut self, allowed: &[u8]) -> Option<u8> {
        let &first = self.0.first()?;
        if !allowed.contains(&first) {
            return None;
        }
        self.0 = &self.0[1..];
        Some(first)
    }

    /// Consumes exactly `count` ASCII digits and returns their value.
    fn digits(&mut self, count: usize) -> Option<u32> {
        let taken = self.0.get(..count)?;
        if !taken.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.0 = &self.0[count..];
        Some(
            taken
                .iter()
                .fold(0, |value, digit| value * 10 + u32::from(digit - b'0')),
        )
    }
}

fn parse_media_type(text: &str) -> Option<()> {
    let rest = token(text)?.strip_prefix('/')?;
    let mut rest = token(rest)?;
    while !rest.is_empty() {
        rest = rest.trim_start_matches([' ', '\t']).strip_prefix(';')?;
        rest = token(rest.trim_start_matches([' ', '\t']))?.strip_prefix('=')?;
        rest = match rest.strip_prefix('"') {
            Some(quoted) => quoted_string_tail(quoted)?,
            None => token(rest)?,
        };
    }
    Some(())
}

/// Consumes a non-empty RFC 2045 token and returns what follows it.
fn token(text: &str) -> Option<&str> {
    let end = text.find(|c: char| !is_token_char(c)).unwrap_or(text.len());
    (end > 0).then(|| &text[end..])
}

/// Printable US-ASCII except the RFC 2045 `tspecials`.
fn is_token_char(c: char) -> bool {
    c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c)
}

/// Consumes the rest of a quoted string whose opening quote is already gone,
/// and returns what follows the closing quote.
fn quoted_string_tail(text: &str) -> Option<&str> {
    let is_text = |c: char| c == '\t' || (' '..='~').contains(&c);
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some(&text[at + 1..]),
            '\\' => {
                let (_, escaped) = chars.next()?;
                if !is_text(escaped) {
                    return None;
                }
            }
            c if is_text(c) => {}
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    mod timestamp {
        use crate::rules::is_rfc3339_timestamp;

        fn check(input: &str, expected: bool) {
            assert_eq!(is_rfc3339_timestamp(input), expected, "{input:?}");
        }

        #[test]
        fn accepts_rfc3339_date_times() {
            check("2018-04-05T17:31:00Z", true);
            check("2022-01-27T16:17:06.458868Z", true);
            check("2018-04-05T17:31:00.000000000Z", true);
            check("2018-04-05T18:31:00+01:00", true);
            check("2018-04-05T16:31:00-01:00", true);
            check("2018-04-05t17:31:00z", true);
            check("2024-02-29T00:00:00Z", true);
            check("2000-02-29T00:00:00Z", true);
            check("2016-12-31T23:59:60Z", true);
            check("2016-12-31T18:59:60-05:00", true);
            check("2018-04-05T17:31:00-00:00", true);
        }

        #[test]
        fn refuses_the_rest() {
            check("", false);
            check("lunchtime", false);
            check("2018-04-05T18:31Z", false);
            check("2018-04-05T18:31:00", false);
            check("2018-04-05T18:31:00X", false);
            check("2018-04-05T18:31:00+25:00", false);
            check("2018-04-05T18:31:00+xx:00", false);
            check("2018-04-05T18:31:00+05", false);
            check("2018-04-05T18:31:00+0500", false);
            check("2018-04-05 18:31:00Z", false);
            check("2018-04-05T18:31:00.Z", false);
            check("2018-04-05T18:31:00Z ", false);
            check("2022-02-30T00:00:00Z", false);
            check("2023-02-29T00:00:00Z", false);
            check("1900-02-29T00:00:00Z", false);
            check("2018-04-31T00:00:00Z", false);
            check("2018-13-01T00:00:00Z", false);
            check("2018-00-01T00:00:00Z", false);
            check("2018-04-00T00:00:00Z", false);
            check("2018-04-05T24:00:00Z", false);
            check("2018-04-05T23:60:00Z", false);
            check("2018-04-05T12:00:60Z", false);
            check("2018-04-05T23:59:61Z", false);
            check("18-04-05T17:31:00Z", false);
            check("2018-4-05T17:31:00Z", false);
            check("+2018-04-05T17:31:00Z", false);
            check("２018-04-05T17:31:00Z", false);
        }
    }

    mod media_type {
        use crate::rules::{is_json_media_type, is_media_type};

        fn check(input: &str, expected: bool) {
            assert_eq!(is_media_type(input), expected, "{input:?}");
        }

        #[test]
        fn accepts_rfc2046_media_types() {
            check("application/json", true);
            check("text/plain", true);
            check("text/plain;charset=utf-8", true);
            check("text/plain; charset=utf-8", true);
            check("text/plain ; charset=\"utf-8\"", true);
            check("application/vnd.apache.thrift.binary", true);
            check("application/cloudevents+json; charset=UTF-8", true);
            check("multipart/form-data; boundary=\"a b\\\"c\"", true);
            check("x-custom/x-thing;a=1;b=2", true);
        }

        #[test]
        fn refuses_the_rest() {
            check("", false);
            check("xyz", false);
            check("text/", false);
            check("/plain", false);
            check("text/plain/extra", false);
            check("text /plain", false);
            check("text/plain;", false);
            check("text/plain; charset", false);
            check("text/plain; charset=", false);
            check("text/plain; charset = utf-8", false);
            check("text/plain; charset=\"utf-8", false);
            check("text/plain ", false);
            check("text/pl@in", false);
            check("tëxt/plain", false);
        }

        #[test]
        fn recognises_json_content_types() {
            assert!(is_json_media_type("application/json"));
            assert!(is_json_media_type(
                "application/cloudevents+json; charset=utf-8"
            ));
            assert!(is_json_media_type("Application/JSON"));
            assert!(!is_json_media_type("text/plain"));
            assert!(!is_json_media_type("application/jsonx"));
        }
    }

    mod integer {
        use crate::rules::check_integer_token;

        fn check(input: &str, expected: bool) {
            assert_eq!(check_integer_token(input).is_ok(), expected, "{input:?}");
        }

        #[test]
        fn accepts_32_bit_integers() {
            check("0", true);
            check("-0", true);
            check("10", true);
            check("2147483647", true);
            check("-2147483648", true);
        }

        #[test]
        fn refuses_the_rest() {
            check("2147483648", false);
            check("-2147483649", false);
            check("99999999999999999999999", false);
            check("1.5", false);
            check("1.0", false);
            check("1e3", false);
            check("-", false);
        }
    }

    mod characters {
        use crate::rules::{is_disallowed_in_string, is_sqs_char};

        fn check(input: char, sqs: bool, string: bool) {
            assert_eq!(is_sqs_char(input), sqs, "SQS {input:?}");
            assert_eq!(!is_disallowed_in_string(input), string, "String {input:?}");
        }

        #[test]
        fn classifies_characters() {
            check('a', true, true);
            check('é', true, true);
            check('😀', true, true);
            check('\t', true, false);
            check('\n', true, false);
            check('\u{0}', false, false);
            check('\u{1F}', false, false);
            check('\u{7F}', true, false);
            check('\u{85}', true, false);
            check('\u{FDD0}', true, false);
            check('\u{FFFD}', true, true);
            check('\u{FFFE}', false, false);
            check('\u{FFFF}', false, false);
            check('\u{1FFFF}', true, false);
            check('\u{10FFFD}', true, true);
        }
    }
}
