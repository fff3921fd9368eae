//! Properties of the pure logic, on arbitrary inputs: events parse, encode to a body SQS accepts,
//! and read back to the same attributes token for token; batches respect SQS limits; FIFO ids
//! stay within SQS's alphabet; globs match what they should. No network.
//!
//! Numbers are compared as their text, never as `f64`: serde_json without `arbitrary_precision`
//! would round them, which is exactly what the forwarder must not do.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;

use forwarder::batch::{Batcher, MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, MessageSize};
use forwarder::encode::{encode, sqs_safe};
use forwarder::event::{Data, Event, is_rfc3339, parse_event};
use forwarder::glob::glob_match;
use forwarder::message::{MAX_ID_CHARS, dedup_id, group_id};

use strategies::Json;

mod strategies {
    use std::fmt::Write as _;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;
    use proptest::sample::select;

    /// The names CloudEvents defines, which extensions must not take.
    pub const KNOWN: [&str; 10] = [
        "specversion",
        "id",
        "source",
        "type",
        "subject",
        "time",
        "datacontenttype",
        "dataschema",
        "data",
        "data_base64",
    ];

    /// A JSON value that keeps numbers as their text.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Json {
        Null,
        Bool(bool),
        Number(String),
        String(String),
        Array(Vec<Json>),
        Object(Vec<(String, Json)>),
    }

    /// How to write JSON text: which whitespace goes between tokens, and which characters are
    /// escaped.
    #[derive(Debug, Clone)]
    pub struct Style {
        pub whitespace: Vec<&'static str>,
        pub escape_non_ascii: bool,
        pub escape_solidus: bool,
    }

    impl Style {
        /// Writes an event's members as one JSON object.
        pub fn object(&self, members: &[(String, Json)]) -> String {
            let mut writer = Writer {
                style: self,
                out: String::new(),
                next: 0,
            };
            writer.object(members);
            writer.out
        }

        /// Writes one JSON value.
        pub fn value(&self, value: &Json) -> String {
            let mut writer = Writer {
                style: self,
                out: String::new(),
                next: 0,
            };
            writer.space();
            writer.value(value);
            writer.space();
            writer.out
        }
    }

    struct Writer<'a> {
        style: &'a Style,
        out: String,
        next: usize,
    }

    impl Writer<'_> {
        fn space(&mut self) {
            let whitespace = &self.style.whitespace;
            self.out.push_str(whitespace[self.next % whitespace.len()]);
            self.next += 1;
        }

        fn object(&mut self, members: &[(String, Json)]) {
            self.out.push('{');
            for (i, (name, value)) in members.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.space();
                self.string(name);
                self.space();
                self.out.push(':');
                self.space();
                self.value(value);
                self.space();
            }
            self.out.push('}');
        }

        fn value(&mut self, value: &Json) {
            match value {
                Json::Null => self.out.push_str("null"),
                Json::Bool(value) => self.out.push_str(if *value { "true" } else { "false" }),
                Json::Number(text) => self.out.push_str(text),
                Json::String(text) => self.string(text),
                Json::Array(items) => {
                    self.out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            self.out.push(',');
                        }
                        self.space();
                        self.value(item);
                        self.space();
                    }
                    self.out.push(']');
                }
                Json::Object(members) => self.object(members),
            }
        }

        fn string(&mut self, text: &str) {
            self.out.push('"');
            for c in text.chars() {
                match c {
                    '"' => self.out.push_str("\\\""),
                    '\\' => self.out.push_str("\\\\"),
                    '/' if self.style.escape_solidus => self.out.push_str("\\/"),
                    '\n' => self.out.push_str("\\n"),
                    '\t' => self.out.push_str("\\t"),
                    c if u32::from(c) < 0x20 || self.style.escape_non_ascii && !c.is_ascii() => {
                        let mut units = [0; 2];
                        for unit in c.encode_utf16(&mut units) {
                            let _ = write!(self.out, "\\u{unit:04x}");
                        }
                    }
                    c => self.out.push(c),
                }
            }
            self.out.push('"');
        }
    }

    /// Any character, with more weight on those SQS refuses raw, astral ones, and those JSON
    /// escapes.
    pub fn character() -> impl Strategy<Value = char> {
        prop_oneof![
            4 => any::<char>(),
            2 => proptest::char::range('a', 'z'),
            1 => select(vec!['\u{FFFE}', '\u{FFFF}']),
            1 => proptest::char::range('\u{10000}', '\u{10FFFF}'),
            1 => select(vec![
                '"', '\\', '/', '\0', '\n', '\t', '\r', '\u{1F}', '\u{7F}', ' ', '\u{D7FF}',
                '\u{E000}', '\u{FFFD}', '\u{FEFF}',
            ]),
        ]
    }

    /// Text of `min` to `max` characters.
    pub fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
        vec(character(), min..=max).prop_map(|chars| chars.into_iter().collect())
    }

    /// Text of `min` to `max` characters that the CloudEvents String type allows (attribute
    /// values): no control characters (U+0000-U+001F, U+007F-U+009F), no noncharacters.
    pub fn attribute_text(min: usize, max: usize) -> impl Strategy<Value = String> {
        let allowed = |c: &char| {
            let code = u32::from(*c);
            code > 0x1F
                && !(0x7F..=0x9F).contains(&code)
                && !(0xFDD0..=0xFDEF).contains(&code)
                && code & 0xFFFE != 0xFFFE
        };
        vec(
            character().prop_filter("a CloudEvents String character", allowed),
            min..=max,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    /// A JSON number token of any length: huge integers, long fractions, wide exponents.
    pub fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            "-?(0|[1-9][0-9]{0,60})(\\.[0-9]{1,60})?([eE][+-]?[0-9]{1,5})?",
            any::<i64>().prop_map(|n| n.to_string()),
            Just("123456789012345678901234567890".to_owned()),
            Just("0.1000000000000000055511151231257827".to_owned()),
        ]
    }

    /// Any JSON value, a few levels deep.
    pub fn json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            number().prop_map(Json::Number),
            text(0, 12).prop_map(Json::String),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..6).prop_map(Json::Array),
                vec((text(0, 8), inner), 0..6).prop_map(Json::Object),
            ]
        })
    }

    /// An optional string attribute: absent, null, or a value.
    pub fn optional(value: impl Strategy<Value = String>) -> impl Strategy<Value = Option<Json>> {
        prop_oneof![
            Just(None),
            Just(Some(Json::Null)),
            value.prop_map(|value| Some(Json::String(value))),
        ]
    }

    prop_compose! {
        /// How to write the JSON text of an event.
        pub fn style()(
            whitespace in vec(select(vec!["", "", " ", "\n", "\t", "\r\n", "  "]), 1..6),
            escape_non_ascii in any::<bool>(),
            escape_solidus in any::<bool>(),
        ) -> Style {
            Style { whitespace, escape_non_ascii, escape_solidus }
        }
    }

    prop_compose! {
        /// An RFC 3986 URI-reference: with or without scheme and authority. IP-literals are valid by
        /// construction: eight full groups, a compressed form of at most six groups, or IPvFuture.
        pub fn uri_reference()(
            scheme in proptest::option::of("[a-zA-Z][a-zA-Z0-9+.-]{0,6}"),
            authority in proptest::option::of(
                "([a-z0-9._~!$&'()*+,;=:-]{0,6}@)?([a-z0-9.-]{1,12}|\\[(([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}|(([0-9a-f]{1,4}:){1,3}|:):([0-9a-f]{1,4}(:[0-9a-f]{1,4}){0,2})?|v[0-9a-fA-F]{1,3}\\.[a-z0-9._~!$&'()*+,;=:-]{1,8})\\])(:[0-9]{0,5})?"
            ),
            path in prop_oneof![
                "(/([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2}){1,8}){0,4}",
                "[A-Za-z0-9._~-]{1,8}(/[A-Za-z0-9._~:@-]{0,8}){0,3}",
            ],
            query in proptest::option::of("([A-Za-z0-9/?:@!$&'()*+,;=._~-]|%[0-9a-f]{2}){0,10}"),
            fragment in proptest::option::of("([A-Za-z0-9/?:@!$&'()*+,;=._~-]|%[0-9A-F]{2}){0,10}"),
        ) -> String {
            let mut uri = String::new();
            if let Some(scheme) = scheme {
                uri.push_str(&scheme);
                uri.push(':');
            }
            if let Some(authority) = &authority {
                uri.push_str("//");
                uri.push_str(authority);
            }
            // After an authority a path is empty or starts with '/'.
            if authority.is_none() || path.starts_with('/') {
                uri.push_str(&path);
            }
            if let Some(query) = query {
                uri.push('?');
                uri.push_str(&query);
            }
            if let Some(fragment) = fragment {
                uri.push('#');
                uri.push_str(&fragment);
            }
            if uri.is_empty() {
                uri.push('/');
            }
            uri
        }
    }

    prop_compose! {
        /// An absolute URI: one with a scheme.
        pub fn absolute_uri()(
            scheme in "[a-z][a-z0-9+.-]{0,6}",
            rest in uri_reference(),
        ) -> String {
            // A reference without a scheme gets one; one with a scheme already is absolute.
            let has_scheme = rest
                .find([':', '/', '?', '#'])
                .is_some_and(|i| rest.as_bytes()[i] == b':');
            if has_scheme { rest } else { format!("{scheme}:{rest}") }
        }
    }

    prop_compose! {
        /// A valid RFC 3339 timestamp, any year from 0000 to 9999, any offset.
        pub fn time()(year in 0u32..10_000, month in 1u32..=12)(
            year in Just(year),
            month in Just(month),
            day in 1..=days_in_month(year, month),
            hour in 0u32..24,
            minute in 0u32..60,
            second in 0u32..60,
            leap in any::<bool>(),
            fraction in "(\\.[0-9]{1,12})?",
            separator in select(vec!["T", "t"]),
            offset in offset(),
        ) -> String {
            // A leap second is valid only where UTC reads 23:59:60, so the local time is built
            // from the offset: local = 23:59 UTC + offset.
            let (hour, minute, second) = if leap {
                let local = (23 * 60 + 59 + offset.1).rem_euclid(24 * 60);
                (local / 60, local % 60, 60)
            } else {
                (i64::from(hour), i64::from(minute), second)
            };
            format!(
                "{year:04}-{month:02}-{day:02}{separator}{hour:02}:{minute:02}:{second:02}{fraction}{}",
                offset.0
            )
        }
    }

    /// A UTC offset as written (`Z`, `z`, `+hh:mm`, `-hh:mm`) and in minutes east of UTC.
    pub fn offset() -> impl Strategy<Value = (String, i64)> {
        prop_oneof![
            select(vec!["Z".to_owned(), "z".to_owned()]).prop_map(|z| (z, 0)),
            (select(vec!['+', '-']), 0i64..24, 0i64..60).prop_map(|(sign, h, m)| {
                let minutes = if sign == '-' {
                    -(h * 60 + m)
                } else {
                    h * 60 + m
                };
                (format!("{sign}{h:02}:{m:02}"), minutes)
            }),
        ]
    }

    prop_compose! {
        /// A timestamp from components that may be out of range, with whether RFC 3339 allows it,
        /// decided from the components by the RFC's rules (section 5.6 and 5.7), not by parsing.
        pub fn time_candidate()(
            year in 0u32..10_000,
            month in 0u32..=13,
            day in 0u32..=32,
            hour in 0u32..=25,
            minute in 0u32..=61,
            second in 0u32..=61,
            fraction in "(\\.[0-9]{0,12})?",
            separator in select(vec!["T", "t", " "]),
            offset in offset(),
        ) -> (String, bool) {
            let utc_minute = (i64::from(hour * 60 + minute) - offset.1).rem_euclid(24 * 60);
            let valid = (1..=12).contains(&month)
                && (1..=days_in_month(year, month)).contains(&day)
                && hour < 24
                && minute < 60
                && (second < 60 || (second == 60 && utc_minute == 23 * 60 + 59))
                && fraction != "."
                && separator != " ";
            let time = format!(
                "{year:04}-{month:02}-{day:02}{separator}{hour:02}:{minute:02}:{second:02}{fraction}{}",
                offset.0
            );
            (time, valid)
        }
    }

    /// An RFC 2046 media type, with parameters.
    pub fn media_type() -> impl Strategy<Value = String> {
        "[a-z]{1,10}/[a-z0-9.+-]{1,12}([ ]{0,2};[ ]{0,2}[a-z]{1,8}=([a-z0-9-]{1,8}|\"([a-z ;=]|\\\\\")*\")){0,2}"
    }

    /// An extension name: `[a-z0-9]+`, any length, not a name CloudEvents defines.
    pub fn extension_name() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,24}".prop_filter("not a name CloudEvents defines", |name| {
            !KNOWN.contains(&name.as_str())
        })
    }

    /// An extension value: a string (possibly empty), a boolean, a 32-bit integer, or null.
    pub fn extension_value() -> impl Strategy<Value = Json> {
        prop_oneof![
            attribute_text(0, 16).prop_map(Json::String),
            any::<bool>().prop_map(Json::Bool),
            any::<i32>().prop_map(|n| Json::Number(n.to_string())),
            Just(Json::Number("-0".to_owned())),
            Just(Json::Null),
        ]
    }

    /// The data member: none, null, any JSON, or bytes as base64.
    pub fn data() -> impl Strategy<Value = Option<(String, Json)>> {
        prop_oneof![
            1 => Just(None),
            1 => Just(Some(("data".to_owned(), Json::Null))),
            4 => json().prop_map(|json| Some(("data".to_owned(), json))),
            2 => vec(any::<u8>(), 0..64).prop_map(|bytes| {
                Some(("data_base64".to_owned(), Json::String(STANDARD.encode(bytes))))
            }),
        ]
    }

    prop_compose! {
        /// A valid event as its members, in an arbitrary order; optional ones may be null.
        pub fn event()(
            id in attribute_text(1, 16),
            source in uri_reference(),
            ty in attribute_text(1, 16),
            subject in optional(attribute_text(1, 16)),
            time in optional(time()),
            datacontenttype in optional(media_type()),
            dataschema in optional(absolute_uri()),
            extensions in btree_map(extension_name(), extension_value(), 0..6),
            data in data(),
        )(
            members in {
                let mut members = vec![
                    ("specversion".to_owned(), Json::String("1.0".to_owned())),
                    ("id".to_owned(), Json::String(id)),
                    ("source".to_owned(), Json::String(source)),
                    ("type".to_owned(), Json::String(ty)),
                ];
                // Data that is not a string needs a JSON content type (JSON format, 3.1.1).
                let json_data = data
                    .iter()
                    .any(|(name, value)| name == "data" && !matches!(value, Json::String(_)));
                let datacontenttype = datacontenttype.map(|media_type| {
                    if json_data {
                        Json::String("application/json".to_owned())
                    } else {
                        media_type
                    }
                });
                let optional = [
                    ("subject", subject),
                    ("time", time),
                    ("datacontenttype", datacontenttype),
                    ("dataschema", dataschema),
                ];
                for (name, value) in optional {
                    if let Some(value) = value {
                        members.push((name.to_owned(), value));
                    }
                }
                members.extend(extensions);
                members.extend(data);
                Just(members).prop_shuffle()
            },
        ) -> Vec<(String, Json)> {
            members
        }
    }

    /// The number of days in a month of the proleptic Gregorian calendar.
    pub fn days_in_month(year: u32, month: u32) -> u32 {
        match month {
            2 if year.is_multiple_of(4)
                && (!year.is_multiple_of(100) || year.is_multiple_of(400)) =>
            {
                29
            }
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }
}

/// Reads JSON text into a [`Json`], numbers kept as text and strings decoded by serde_json.
fn read_json(text: &str) -> Json {
    let mut reader = Reader { text, at: 0 };
    let value = reader.value();
    reader.skip_whitespace();
    assert_eq!(reader.at, text.len(), "trailing text in {text:?}");
    value
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> u8 {
        self.text.as_bytes()[self.at]
    }

    fn skip_whitespace(&mut self) {
        while self.at < self.text.len() && matches!(self.peek(), b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) {
        self.skip_whitespace();
        assert_eq!(self.peek(), byte, "at {} of {:?}", self.at, self.text);
        self.at += 1;
    }

    fn value(&mut self) -> Json {
        self.skip_whitespace();
        match self.peek() {
            b'n' => self.literal("null", Json::Null),
            b't' => self.literal("true", Json::Bool(true)),
            b'f' => self.literal("false", Json::Bool(false)),
            b'"' => Json::String(self.string()),
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                self.skip_whitespace();
                if self.peek() == b']' {
                    self.at += 1;
                    return Json::Array(items);
                }
                loop {
                    items.push(self.value());
                    self.skip_whitespace();
                    self.at += 1;
                    if self.text.as_bytes()[self.at - 1] == b']' {
                        return Json::Array(items);
                    }
                }
            }
            b'{' => {
                self.at += 1;
                let mut members = Vec::new();
                self.skip_whitespace();
                if self.peek() == b'}' {
                    self.at += 1;
                    return Json::Object(members);
                }
                loop {
                    self.skip_whitespace();
                    let name = self.string();
                    self.expect(b':');
                    members.push((name, self.value()));
                    self.skip_whitespace();
                    self.at += 1;
                    if self.text.as_bytes()[self.at - 1] == b'}' {
                        return Json::Object(members);
                    }
                }
            }
            _ => {
                let start = self.at;
                while self.at < self.text.len()
                    && matches!(self.peek(), b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    self.at += 1;
                }
                Json::Number(self.text[start..self.at].to_owned())
            }
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Json {
        assert!(self.text[self.at..].starts_with(word));
        self.at += word.len();
        value
    }

    fn string(&mut self) -> String {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut i = start + 1;
        while bytes[i] != b'"' {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        self.at = i + 1;
        serde_json::from_str(&self.text[start..self.at]).expect("a valid JSON string")
    }
}

/// An event's members as [`Json`] values.
fn members_of(event: &Event) -> Vec<(String, Json)> {
    event
        .attributes()
        .map(|(name, value)| (name.to_owned(), read_json(value.get())))
        .collect()
}

/// Whether JSON text has whitespace outside its strings.
fn has_insignificant_whitespace(text: &str) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    for byte in text.bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if byte == b'"' {
            in_string = true;
        } else if matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            return true;
        }
    }
    false
}

fn string_member<'a>(members: &'a [(String, Json)], name: &str) -> Option<&'a str> {
    members.iter().find_map(|(member, value)| match value {
        Json::String(text) if member == name => Some(text.as_str()),
        _ => None,
    })
}

/// Checks an encoded body against the members it should carry.
fn check_body(body: &str, expected: &[(String, Json)]) -> Result<(), TestCaseError> {
    prop_assert!(sqs_safe(body), "not SQS-safe: {body:?}");
    prop_assert!(
        !has_insignificant_whitespace(body),
        "not minified: {body:?}"
    );
    let again = parse_event(body.as_bytes())
        .map_err(|error| TestCaseError::fail(format!("body refused: {error}: {body:?}")))?;
    prop_assert_eq!(&members_of(&again), expected);
    prop_assert_eq!(encode(&again), body, "encoding is not idempotent");
    Ok(())
}

proptest! {
    #[test]
    fn events_round_trip(members in strategies::event(), style in strategies::style()) {
        let line = style.object(&members);
        let event = parse_event(line.as_bytes())
            .map_err(|error| TestCaseError::fail(format!("refused: {error}: {line:?}")))?;
        let expected: Vec<_> = members
            .iter()
            .filter(|(_, value)| *value != Json::Null)
            .cloned()
            .collect();
        prop_assert_eq!(&members_of(&event), &expected);
        check_body(&encode(&event), &expected)?;

        prop_assert_eq!(Some(event.id()), string_member(&expected, "id"));
        prop_assert_eq!(Some(event.source()), string_member(&expected, "source"));
        prop_assert_eq!(Some(event.ty()), string_member(&expected, "type"));
        prop_assert_eq!(event.specversion(), "1.0");
        prop_assert_eq!(event.subject(), string_member(&expected, "subject"));
        prop_assert_eq!(event.time(), string_member(&expected, "time"));
        prop_assert_eq!(event.datacontenttype(), string_member(&expected, "datacontenttype"));
        prop_assert_eq!(event.dataschema(), string_member(&expected, "dataschema"));
        prop_assert_eq!(event.data_base64(), string_member(&expected, "data_base64"));
        for (name, value) in &expected {
            if name != "data" {
                prop_assert_eq!(
                    event.attribute_str(name),
                    match value { Json::String(text) => Some(text.as_str()), _ => None }
                );
            }
        }
    }

    #[test]
    fn wrapped_payloads_are_kept(
        data in strategies::json(),
        style in strategies::style(),
        source in strategies::uri_reference(),
        ty in strategies::attribute_text(1, 16),
        subject in proptest::option::of(strategies::attribute_text(1, 16)),
    ) {
        let payload = style.value(&data);
        let event = Event::wrap(payload.as_bytes(), &source, &ty, subject.as_deref())
            .map_err(|error| TestCaseError::fail(format!("refused: {error}: {payload:?}")))?;
        let names: Vec<_> = event.attributes().map(|(name, _)| name).collect();
        let mut expected_names = vec!["specversion", "id", "source", "type"];
        if subject.is_some() {
            expected_names.push("subject");
        }
        expected_names.extend(["datacontenttype", "time"]);
        // A null payload is no data: CloudEvents treats null as absent.
        let expected_data = (data != Json::Null).then_some(data);
        if expected_data.is_some() {
            expected_names.push("data");
        }
        prop_assert_eq!(names, expected_names);
        prop_assert_eq!(event.data().map(|data| read_json(data.get())), expected_data);
        prop_assert_eq!(event.source(), source.as_str());
        prop_assert_eq!(event.ty(), ty.as_str());
        prop_assert_eq!(event.subject(), subject.as_deref());
        check_body(&encode(&event), &members_of(&event))?;
    }

    #[test]
    fn binary_data_is_base64(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
        extension in strategies::attribute_text(1, 16),
    ) {
        let parts = [
            ("specversion", "1.0"),
            ("id", "1"),
            ("source", "/s"),
            ("type", "t"),
            ("ext", extension.as_str()),
        ];
        let event = Event::from_parts(parts, Data::Binary(&bytes))
            .map_err(|error| TestCaseError::fail(format!("refused: {error}")))?;
        let decoded = event.data_base64().map(|text| STANDARD.decode(text));
        prop_assert_eq!(decoded, Some(Ok(bytes)));
        prop_assert_eq!(event.attribute_str("ext"), Some(extension.as_str()));
        check_body(&encode(&event), &members_of(&event))?;
    }

    #[test]
    fn parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_event(&bytes);
    }

    #[test]
    fn damaged_events_never_panic(
        members in strategies::event(),
        style in strategies::style(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut line = style.object(&members).into_bytes();
        let at = at.index(line.len());
        line[at] = byte;
        if let Ok(event) = parse_event(&line) {
            let body = encode(&event);
            prop_assert!(sqs_safe(&body));
        }
    }

    #[test]
    fn times_agree_with_the_rfc((time, valid) in strategies::time_candidate()) {
        prop_assert_eq!(is_rfc3339(&time), valid, "{}", time);
    }

    #[test]
    fn generated_times_are_valid(time in strategies::time()) {
        prop_assert!(is_rfc3339(&time), "{}", time);
    }

    #[test]
    fn batches_respect_limits(
        sizes in proptest::collection::vec(
            prop_oneof![1usize..2_000, 100_000usize..=MAX_BATCH_BYTES],
            0..60,
        ),
    ) {
        let mut batcher = Batcher::new();
        let mut batches = Vec::new();
        for (index, &size) in sizes.iter().enumerate() {
            let size = MessageSize::new(size).expect("sizes are at most the limit");
            if let Some(batch) = batcher.push(index, size) {
                batches.push(batch);
            }
            if batcher.is_full() {
                batches.push(batcher.take());
            }
        }
        if !batcher.is_empty() {
            batches.push(batcher.take());
        }
        let sent: Vec<usize> = batches.iter().flatten().copied().collect();
        prop_assert_eq!(sent, (0..sizes.len()).collect::<Vec<_>>());
        for (i, batch) in batches.iter().enumerate() {
            prop_assert!(!batch.is_empty() && batch.len() <= MAX_BATCH_ENTRIES);
            let bytes: usize = batch.iter().map(|&index| sizes[index]).sum();
            prop_assert!(bytes <= MAX_BATCH_BYTES);
            // A batch is closed only when the next entry would not fit.
            if let Some(next) = batches.get(i + 1) {
                prop_assert!(
                    batch.len() == MAX_BATCH_ENTRIES || bytes + sizes[next[0]] > MAX_BATCH_BYTES
                );
            }
        }
    }

    #[test]
    fn dedup_ids_are_valid_and_distinct(
        first in (strategies::uri_reference(), strategies::text(1, 40)),
        second in (strategies::uri_reference(), strategies::text(1, 40)),
    ) {
        for (source, id) in [&first, &second] {
            let dedup = dedup_id(source, id);
            prop_assert!(dedup.len() <= MAX_ID_CHARS && dedup.bytes().all(|b| b.is_ascii_graphic()));
            prop_assert_eq!(&dedup, &dedup_id(source, id));
        }
        if first != second {
            prop_assert_ne!(dedup_id(&first.0, &first.1), dedup_id(&second.0, &second.1));
        }
    }

    #[test]
    fn group_ids_are_valid(value in strategies::text(0, 200), other in strategies::text(0, 200)) {
        let group = group_id(&value);
        prop_assert!(!group.is_empty() && group.len() <= MAX_ID_CHARS);
        prop_assert!(group.bytes().all(|b| b.is_ascii_graphic()));
        if value != other {
            prop_assert_ne!(group, group_id(&other));
        }
    }

    #[test]
    fn globs_match(
        prefix in strategies::text(0, 8),
        middle in strategies::text(0, 8),
        suffix in strategies::text(0, 8),
        wildcards in proptest::collection::vec(any::<bool>(), 8),
    ) {
        let literal = |text: &str| !text.contains(['*', '?']);
        let text = format!("{prefix}{middle}{suffix}");
        prop_assert!(glob_match("*", &text));
        if literal(&text) {
            prop_assert!(glob_match(&text, &text));
        }
        if literal(&prefix) && literal(&suffix) {
            let pattern = format!("{prefix}*{suffix}");
            prop_assert!(glob_match(&pattern, &text));
        }
        // Replacing characters with '?' keeps a match; one '?' more breaks it.
        if literal(&text) {
            let pattern: String = text
                .chars()
                .zip(wildcards.iter().cycle())
                .map(|(c, &wild)| if wild { '?' } else { c })
                .collect();
            prop_assert!(glob_match(&pattern, &text));
            let longer = format!("{pattern}?");
            prop_assert!(!glob_match(&longer, &text));
        }
    }
}
