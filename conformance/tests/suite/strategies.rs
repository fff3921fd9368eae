//! The strategies of the properties: CloudEvents 1.0 events in structured JSON that the
//! forwarder must accept and deliver, and that the judge must find conformant, written as NDJSON
//! lines with members in any order, optional nulls and insignificant whitespace.
//!
//! Attribute strings hold characters of every Unicode plane but none that the CloudEvents
//! String type disallows (controls, noncharacters). Event data is unrestricted JSON: any
//! character (U+FFFE and U+FFFF included, raw or escaped), number tokens of hundreds of digits,
//! nesting down to 120 levels, and binary data as `data_base64`.
//!
//! Number tokens stay within the range of an `f64` because this suite compares bodies through
//! `serde_json::Value`; the judge's unit tests cover numbers beyond it, such as `1e400`.

use std::fmt;

use base64::Engine as _;
use forwarder::message::AttributeMode;
use proptest::prelude::*;
use serde_json::Value;

/// An event as the members of a JSON object, in order: (name, value as JSON text).
#[derive(Clone, PartialEq, Eq)]
pub struct Event {
    pub members: Vec<(String, String)>,
    /// What goes around `:` and `,` between members: `""`, `" "` or `"\t"`.
    pub space: &'static str,
}

impl Event {
    /// The event as one NDJSON line.
    pub fn line(&self) -> String {
        let space = self.space;
        let members: Vec<String> = self
            .members
            .iter()
            .map(|(name, value)| format!("{}{space}:{space}{value}", Value::from(name.as_str())))
            .collect();
        format!(
            "{{{space}{}{space}}}",
            members.join(&format!("{space},{space}"))
        )
    }

    /// The event with member `name` set to the JSON text `value`, in place or appended.
    pub fn with(mut self, name: &str, value: &str) -> Event {
        match self.members.iter_mut().find(|(n, _)| n == name) {
            Some(member) => member.1 = value.to_owned(),
            None => self.members.push((name.to_owned(), value.to_owned())),
        }
        self
    }

    /// The event with member `name` left out.
    pub fn without(mut self, name: &str) -> Event {
        self.members.retain(|(n, _)| n != name);
        self
    }
}

/// Long events are shown by their size and beginning only.
impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = self.line();
        if line.len() <= 2000 {
            return f.write_str(&line);
        }
        let head: String = line.chars().take(500).collect();
        write!(f, "{head}... ({} bytes in all)", line.len())
    }
}

const CORE: [&str; 10] = [
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
    "data_base64",
];

/// A character of plane `0` to `16`, chosen plane first so that every plane is as likely.
fn any_plane_char() -> impl Strategy<Value = char> {
    (0u32..=16, 0u32..=0xFFFF).prop_filter_map("not a surrogate", |(plane, low)| {
        char::from_u32((plane << 16) | low)
    })
}

/// Whether the CloudEvents String type allows `c`: no C0 or C1 control character, no
/// noncharacter.
fn allowed_in_attribute(c: char) -> bool {
    let code = u32::from(c);
    !(matches!(code, 0x00..=0x1F | 0x7F..=0x9F | 0xFDD0..=0xFDEF) || code & 0xFFFE == 0xFFFE)
}

fn attribute_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => proptest::char::range(' ', '~'),
        2 => any_plane_char(),
        1 => any::<char>(),
    ]
    .prop_filter("allowed in a CloudEvents String", |&c| {
        allowed_in_attribute(c)
    })
}

/// A non-empty CloudEvents String.
fn attribute_text() -> impl Strategy<Value = String> {
    prop::collection::vec(attribute_char(), 1..24).prop_map(String::from_iter)
}

/// Any character a JSON string can hold, with the noncharacters U+FFFE and U+FFFF, the last of
/// plane 16, and controls drawn more often than chance would.
fn data_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range(' ', '~'),
        3 => any_plane_char(),
        2 => any::<char>(),
        1 => prop::sample::select(vec![
            '\u{FFFE}', '\u{FFFF}', '\u{1FFFE}', '\u{10FFFF}', '\u{0}', '\u{1F}', '\u{7F}',
            '\u{85}', '\u{2028}', '\u{FEFF}', '"', '\\', '/', '\n', '\t',
        ]),
    ]
}

/// How a string is written as JSON.
#[derive(Clone, Copy, Debug)]
enum Escaping {
    /// As serde_json writes it: raw, except `"`, `\` and controls.
    Minimal,
    /// Every character as `\uXXXX`, astral ones as surrogate pairs.
    All,
}

/// `text` as a JSON string.
fn json_string(text: &str, escaping: Escaping) -> String {
    match escaping {
        Escaping::Minimal => Value::from(text).to_string(),
        Escaping::All => {
            let mut out = String::from("\"");
            for unit in text.encode_utf16() {
                out.push_str(&format!("\\u{unit:04x}"));
            }
            out.push('"');
            out
        }
    }
}

prop_compose! {
    /// A JSON string of event data, as text.
    fn data_string()(
        chars in prop::collection::vec(data_char(), 0..40),
        all_escaped in prop::bool::weighted(0.2),
    ) -> String {
        let escaping = if all_escaped { Escaping::All } else { Escaping::Minimal };
        json_string(&String::from_iter(chars), escaping)
    }
}

/// A JSON number token, kept as written: small and 64-bit integers, integers of up to 300
/// digits, fractions of up to 400 digits, exponents, and negative zero.
fn number_token() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        "-?[1-9][0-9]{18,300}",
        "-?(0|[1-9][0-9]{0,20})\\.[0-9]{1,400}",
        "-?(0|[1-9][0-9]{0,15})(\\.[0-9]{1,17})?[eE][+-]?(0{0,2}[0-9]{1,2}|1[0-9]{2}|2[0-8][0-9])",
        Just("-0".to_owned()),
        Just("0.0".to_owned()),
        Just("1E+2".to_owned()),
        Just("9007199254740993".to_owned()),
    ]
}

/// Insignificant whitespace inside event data.
fn data_space() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", "", " ", "\t", " \t "])
}

/// Any JSON value, as text: objects and arrays nested up to four levels, or one array nested
/// up to 120 levels.
fn data_json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        number_token(),
        data_string(),
    ];
    let tree = leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..6), data_space()).prop_map(
                |(items, space)| format!("[{space}{}{space}]", items.join(&format!("{space},")))
            ),
            (
                prop::collection::btree_map(
                    prop::collection::vec(data_char(), 0..8).prop_map(String::from_iter),
                    inner,
                    0..6
                ),
                data_space()
            )
                .prop_map(|(members, space)| {
                    let members: Vec<String> = members
                        .iter()
                        .map(|(key, value)| {
                            format!(
                                "{}{space}:{space}{value}",
                                json_string(key, Escaping::Minimal)
                            )
                        })
                        .collect();
                    format!(
                        "{{{space}{}{space}}}",
                        members.join(&format!("{space},{space}"))
                    )
                }),
        ]
    });
    prop_oneof![
        9 => tree,
        1 => (1usize..=120).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth))),
    ]
}

/// A `source`: a URI-reference of one of the usual forms.
fn source() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("https://github.com/cloudevents".to_owned()),
        Just("mailto:cncf-wg-serverless@lists.cncf.io".to_owned()),
        Just("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66".to_owned()),
        Just("/cloudevents/spec/pull/123".to_owned()),
        "/[a-z0-9_.-]{1,10}(/[a-z0-9_.-]{1,10}){0,3}",
        "[a-z]{1,10}(/[a-z0-9]{1,10}){0,3}",
        "https://[a-z]{1,10}\\.example(/[a-z0-9]{1,10}){0,3}(\\?[a-z]=[0-9]{1,3})?",
    ]
}

prop_compose! {
    /// An RFC 3339 date-time with seconds, on a real calendar date, in UTC or at an offset.
    fn timestamp()(
        year in 1u32..=9999,
        month in 1u32..=12,
        day in 1u32..=28,
        hour in 0u32..=23,
        minute in 0u32..=59,
        second in 0u32..=59,
        fraction in proptest::option::of("[0-9]{1,9}"),
        offset in proptest::option::of((prop::sample::select(vec!['+', '-']), 0u32..=23, 0u32..=59)),
    ) -> String {
        let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
        let offset = match offset {
            Some((sign, h, m)) => format!("{sign}{h:02}:{m:02}"),
            None => "Z".to_owned(),
        };
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}{offset}")
    }
}

fn extension_name() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,20}".prop_filter("not a core attribute", |name| {
        !CORE.contains(&name.as_str())
    })
}

/// An extension value: a string (possibly empty), a boolean, a 32-bit integer, or null (absent).
fn extension_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => attribute_text().prop_map(|text| Value::from(text).to_string()),
        1 => Just("\"\"".to_owned()),
        1 => any::<bool>().prop_map(|b| b.to_string()),
        2 => prop_oneof![
            any::<i32>(),
            Just(i32::MIN),
            Just(i32::MAX),
            Just(0),
        ]
        .prop_map(|n| n.to_string()),
        1 => Just("null".to_owned()),
    ]
}

/// What follows the attributes: `datacontenttype` (JSON text, when present) and the data
/// member.
fn payload() -> impl Strategy<Value = Vec<(String, String)>> {
    let json_type = prop::sample::select(vec![
        None,
        Some("\"application/json\""),
        Some("\"application/vnd.example+json; charset=utf-8\""),
        Some("null"),
    ]);
    prop_oneof![
        1 => Just(Vec::new()),
        1 => Just(vec![("data".to_owned(), "null".to_owned())]),
        5 => (json_type, data_json()).prop_map(|(content_type, data)| {
            let mut members: Vec<(String, String)> = content_type
                .map(|t| ("datacontenttype".to_owned(), t.to_owned()))
                .into_iter()
                .collect();
            members.push(("data".to_owned(), data));
            members
        }),
        2 => data_string().prop_map(|data| vec![
            ("datacontenttype".to_owned(), "\"text/plain; charset=utf-8\"".to_owned()),
            ("data".to_owned(), data),
        ]),
        2 => (prop::collection::vec(any::<u8>(), 0..300), any::<bool>()).prop_map(|(bytes, typed)| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            let mut members = Vec::new();
            if typed {
                members.push(("datacontenttype".to_owned(), "\"application/octet-stream\"".to_owned()));
            }
            members.push(("data_base64".to_owned(), format!("\"{encoded}\"")));
            members
        }),
    ]
}

/// An optional attribute: absent, null, or `value` as a JSON string.
fn optional(value: impl Strategy<Value = String>) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some("null".to_owned())),
        3 => value.prop_map(|v| Some(Value::from(v).to_string())),
    ]
}

prop_compose! {
    /// A CloudEvent the forwarder must deliver unchanged (up to its canonicalisation) and the
    /// judge must accept: members in any order, optional attributes absent, null or set,
    /// extensions, and data of any kind.
    pub fn event()(
        id in attribute_text(),
        source in source(),
        event_type in attribute_text(),
        subject in optional(attribute_text()),
        time in optional(timestamp()),
        dataschema in optional("https://example\\.com/schemas/[a-z0-9]{1,10}"),
        extensions in prop::collection::btree_map(extension_name(), extension_value(), 0..5),
        payload in payload(),
        space in prop::sample::select(vec!["", "", " ", "\t"]),
    )(
        members in {
            let mut members = vec![
                ("specversion".to_owned(), "\"1.0\"".to_owned()),
                ("id".to_owned(), Value::from(id).to_string()),
                ("source".to_owned(), Value::from(source).to_string()),
                ("type".to_owned(), Value::from(event_type).to_string()),
            ];
            for (name, value) in [("subject", subject), ("time", time), ("dataschema", dataschema)] {
                if let Some(value) = value {
                    members.push((name.to_owned(), value));
                }
            }
            members.extend(extensions);
            members.extend(payload);
            Just(members).prop_shuffle()
        },
        space in Just(space),
    ) -> Event {
        Event { members, space }
    }
}

prop_compose! {
    /// An event without data, to be filled up to a size near SQS's limit, and how far below
    /// the limit (0 to 4 KiB, exactly at the limit one time in four) it should end.
    pub fn event_to_fill()(
        event in event(),
        slack in prop_oneof![1 => Just(0usize), 3 => 0usize..=4096],
        head in prop::collection::vec(data_char(), 0..64).prop_map(String::from_iter),
    ) -> (Event, usize, String) {
        let event = event.without("data").without("data_base64").without("datacontenttype");
        (event, slack, head)
    }
}

prop_compose! {
    /// A batch for a FIFO queue: events, each in one of `groups` message groups.
    pub fn grouped_events(max: usize)(
        groups in 1usize..=4,
    )(
        events in prop::collection::vec((0..groups, event()), 1..=max),
    ) -> Vec<(usize, Event)> {
        events
    }
}

/// Either message-attribute mode of the forwarder.
pub fn attribute_mode() -> impl Strategy<Value = AttributeMode> {
    prop::sample::select(vec![AttributeMode::None, AttributeMode::Cloudevents])
}
