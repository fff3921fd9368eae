//! The [`Event`] itself: its attributes in the order they came, each as raw JSON text, and the
//! two ways to build one from parts ([`Event::wrap`] a payload, [`Event::from_parts`] for HTTP's
//! binary mode). Both validate, as parsing does.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use super::error::{EventError, Rule, invalid};
use super::validate::validate;

/// A valid CloudEvent: its attributes in their original order, each as raw JSON text.
///
/// The only ways to get one are [`parse_event`](super::parse_event), [`Event::wrap`] and [`Event::from_parts`], all of
/// which validate, so every `Event` satisfies the CloudEvents 1.0 rules and carries no nulls.
#[derive(Debug, Clone)]
pub struct Event {
    attributes: Vec<Attribute>,
}

/// The data of an event built with [`Event::from_parts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data<'a> {
    /// No data.
    None,
    /// JSON text, kept byte-exact as `data`.
    Json(&'a [u8]),
    /// Opaque bytes, carried as `data_base64` (standard alphabet, padded).
    Binary(&'a [u8]),
}

/// The `time` that [`Event::wrap`] writes: UTC, in microseconds, e.g.
/// `2022-01-27T16:17:06.458868Z`.
const WRAP_TIME: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

impl Event {
    /// Wraps a raw JSON payload into a new event: a random UUID v4 `id`, `time` now (UTC, in
    /// microseconds), `datacontenttype` "application/json", and the payload byte-exact as
    /// `data`.
    ///
    /// Attributes come in this order: specversion, id, source, type, subject, datacontenttype,
    /// time, data. A payload of JSON `null` gives an event without `data`, since CloudEvents
    /// treats null as absent.
    pub fn wrap(
        payload: &[u8],
        source: &str,
        ty: &str,
        subject: Option<&str>,
    ) -> Result<Event, EventError> {
        let id = uuid::Uuid::new_v4().to_string();
        let time = OffsetDateTime::now_utc()
            .format(WRAP_TIME)
            .map_err(|error| invalid("time", Rule::Rfc3339, format!("not formattable: {error}")))?;
        let mut attributes = Vec::with_capacity(7);
        attributes.push(("specversion", "1.0"));
        attributes.push(("id", id.as_str()));
        attributes.push(("source", source));
        attributes.push(("type", ty));
        if let Some(subject) = subject {
            attributes.push(("subject", subject));
        }
        attributes.push(("datacontenttype", "application/json"));
        attributes.push(("time", time.as_str()));
        Event::from_parts(attributes, Data::Json(payload))
    }

    /// Builds an event from string-valued attributes, in the given order, and data, which comes
    /// last: the binary content mode of HTTP, where attributes arrive as `ce-*` headers.
    ///
    /// The same rules as [`parse_event`](super::parse_event) apply; the names `data` and `data_base64` are refused
    /// as attributes.
    pub fn from_parts<I, N, V>(attributes: I, data: Data<'_>) -> Result<Event, EventError>
    where
        I: IntoIterator<Item = (N, V)>,
        N: Into<String>,
        V: AsRef<str>,
    {
        let attributes = attributes.into_iter();
        let mut members = Vec::with_capacity(attributes.size_hint().0 + 1);
        for (name, value) in attributes {
            let name = name.into();
            if name == "data" || name == "data_base64" {
                return Err(invalid(
                    &name,
                    Rule::Name,
                    "reserved for the event data, not an attribute".to_owned(),
                ));
            }
            let value = serde_json::value::to_raw_value(value.as_ref()).map_err(|error| {
                invalid(&name, Rule::Json, format!("not encodable as JSON: {error}"))
            })?;
            members.push((name, value));
        }
        match data {
            Data::None => {}
            Data::Json(bytes) => {
                let text = std::str::from_utf8(bytes).map_err(|error| {
                    invalid(
                        "data",
                        Rule::Utf8,
                        format!(
                            "not valid UTF-8: invalid byte at offset {}",
                            error.valid_up_to()
                        ),
                    )
                })?;
                let value = serde_json::from_str::<Box<RawValue>>(text).map_err(|error| {
                    invalid("data", Rule::Json, format!("not valid JSON: {error}"))
                })?;
                members.push(("data".to_owned(), value));
            }
            Data::Binary(bytes) => {
                let value = RawValue::from_string(format!("\"{}\"", STANDARD.encode(bytes)))
                    .map_err(|error| {
                        invalid(
                            "data_base64",
                            Rule::Json,
                            format!("not valid JSON: {error}"),
                        )
                    })?;
                members.push(("data_base64".to_owned(), value));
            }
        }
        validate(members)
    }

    /// The attributes in order, `data` and `data_base64` included, as (name, raw JSON value).
    pub fn attributes(&self) -> impl ExactSizeIterator<Item = (&str, &RawValue)> + '_ {
        self.attributes
            .iter()
            .map(|attribute| (&*attribute.name, &*attribute.value))
    }

    /// The raw JSON value of an attribute, `data` and `data_base64` included.
    pub fn attribute_raw(&self, name: &str) -> Option<&RawValue> {
        self.find(name).map(|attribute| &*attribute.value)
    }

    /// The decoded value of a string-valued attribute (context or extension attribute, or
    /// `data_base64`); `None` when it is absent or not a string, and always for `data`.
    pub fn attribute_str(&self, name: &str) -> Option<&str> {
        if name == "data" {
            return None;
        }
        self.find(name).and_then(Attribute::as_str)
    }

    /// The `specversion` attribute: always "1.0".
    pub fn specversion(&self) -> &str {
        self.required("specversion")
    }

    /// The `id` attribute.
    pub fn id(&self) -> &str {
        self.required("id")
    }

    /// The `source` attribute, a URI-reference.
    pub fn source(&self) -> &str {
        self.required("source")
    }

    /// The `type` attribute.
    pub fn ty(&self) -> &str {
        self.required("type")
    }

    /// The `subject` attribute.
    pub fn subject(&self) -> Option<&str> {
        self.attribute_str("subject")
    }

    /// The `time` attribute, an RFC 3339 timestamp.
    pub fn time(&self) -> Option<&str> {
        self.attribute_str("time")
    }

    /// The `datacontenttype` attribute, a media type.
    pub fn datacontenttype(&self) -> Option<&str> {
        self.attribute_str("datacontenttype")
    }

    /// The `dataschema` attribute, an absolute URI.
    pub fn dataschema(&self) -> Option<&str> {
        self.attribute_str("dataschema")
    }

    /// The `data` member as raw JSON text.
    pub fn data(&self) -> Option<&RawValue> {
        self.attribute_raw("data")
    }

    /// The `data_base64` member, still base64-encoded.
    pub fn data_base64(&self) -> Option<&str> {
        self.attribute_str("data_base64")
    }

    /// An event from attributes that [`validate`] has checked: the one place an `Event` is made.
    pub(super) fn validated(attributes: Vec<Attribute>) -> Event {
        Event { attributes }
    }

    fn find(&self, name: &str) -> Option<&Attribute> {
        self.attributes
            .iter()
            .find(|attribute| &*attribute.name == name)
    }

    fn required(&self, name: &str) -> &str {
        // Validation guarantees required attributes are present strings; the empty fallback is
        // never taken.
        self.attribute_str(name).unwrap_or_default()
    }
}

/// One attribute: its name, its raw JSON value, and its decoded value when that differs from the
/// text between the quotes.
#[derive(Debug, Clone)]
pub(super) struct Attribute {
    pub(super) name: Box<str>,
    pub(super) value: Box<RawValue>,
    /// The decoded string, present only for string values with escapes.
    pub(super) unescaped: Option<Box<str>>,
}

impl Attribute {
    /// The decoded string value; `None` when the value is not a string.
    fn as_str(&self) -> Option<&str> {
        if let Some(unescaped) = &self.unescaped {
            return Some(unescaped);
        }
        let raw = self.value.get();
        if raw.starts_with('"') && !raw.contains('\\') {
            raw.get(1..raw.len() - 1)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;
    use crate::event::syntax::is_rfc3339;
    use crate::event::testing::event;

    /// The order [`Event::wrap`] writes, which the IoT example has too.
    const WRAPPED: [&str; 8] = [
        "specversion",
        "id",
        "source",
        "type",
        "subject",
        "datacontenttype",
        "time",
        "data",
    ];

    fn names(event: &Event) -> Vec<&str> {
        event.attributes().map(|(name, _)| name).collect()
    }

    #[test]
    fn iot_example() {
        let line = r#"{"specversion":"1.0","id":"aa12dc4c-c5ed-4b46-92e5-5a726f4daa81","source":"golioth/app/gateway/coap","type":"DEVICE_STREAM_TYPE","subject":"stream","datacontenttype":"application/json","time":"2022-01-27T16:17:06.458868Z","data":{"data":{"temp":32},"device_id":"612d3cecf3ee17d321adbec6","project_id":"my-first-project","timestamp":{"nanos":174295000,"seconds":1643300226}}}"#;
        let event = parse_event(line.as_bytes()).expect("the IoT example is valid");
        assert_eq!(event.id(), "aa12dc4c-c5ed-4b46-92e5-5a726f4daa81");
        assert_eq!(event.source(), "golioth/app/gateway/coap");
        assert_eq!(event.ty(), "DEVICE_STREAM_TYPE");
        assert_eq!(event.specversion(), "1.0");
        assert_eq!(event.subject(), Some("stream"));
        assert_eq!(event.time(), Some("2022-01-27T16:17:06.458868Z"));
        assert_eq!(event.datacontenttype(), Some("application/json"));
        assert_eq!(event.dataschema(), None);
        assert_eq!(names(&event), WRAPPED);
    }

    #[test]
    fn data_is_byte_exact() {
        let data = r#"{"big":123456789012345678901234567890,"frac":0.1000000000000000055511151231257827,"exp":-1.5E+400,"s":"\u00e9\n\ufffe"}"#;
        let event = parse_event(event(&format!(r#","data":{data}"#)).as_bytes())
            .expect("the event is valid");
        assert_eq!(event.data().map(RawValue::get), Some(data));
        assert_eq!(event.attribute_str("data"), None);
    }

    #[test]
    fn string_accessors() {
        let line = r#"{"specversion":"1.0","id":"a\"b","source":"\/s","type":"t\u00e9","subject":"\ud83d\ude00","ext":"x y","num":5}"#;
        let event = parse_event(line.as_bytes()).expect("the event is valid");
        assert_eq!(event.id(), "a\"b");
        assert_eq!(event.source(), "/s");
        assert_eq!(event.ty(), "t\u{e9}");
        assert_eq!(event.subject(), Some("\u{1f600}"));
        assert_eq!(event.attribute_str("ext"), Some("x y"));
        assert_eq!(event.attribute_str("num"), None);
        assert_eq!(event.attribute_str("missing"), None);
        assert_eq!(event.attribute_raw("num").map(RawValue::get), Some("5"));
        assert_eq!(
            event.attribute_raw("id").map(RawValue::get),
            Some(r#""a\"b""#)
        );
    }

    #[test]
    fn wrap() {
        let payload =
            br#"{"n":123456789012345678901234567890, "f":0.1000000000000000055511151231257827}"#;
        let event = Event::wrap(payload, "golioth/app", "DEVICE", Some("stream"))
            .expect("the payload is valid");
        assert_eq!(names(&event), WRAPPED);
        assert_eq!(
            event.data().map(RawValue::get),
            Some(std::str::from_utf8(payload).expect("ASCII"))
        );
        assert!(uuid::Uuid::parse_str(event.id()).is_ok_and(|id| id.get_version_num() == 4));
        let time = event.time().expect("wrap sets the time");
        assert!(is_rfc3339(time), "{time}");
        assert_eq!(time.len(), "2022-01-27T16:17:06.458868Z".len());
        assert_eq!(event.datacontenttype(), Some("application/json"));

        let event = Event::wrap(b" [1] \n", "/s", "t", None).expect("whitespace around is fine");
        assert_eq!(event.subject(), None);
        assert_eq!(event.data().map(RawValue::get), Some("[1]"));

        let refused = |payload: &[u8], source: &str, expected: &str| {
            let error = Event::wrap(payload, source, "t", None).expect_err("refused");
            assert_eq!(format!("{}: {error}", error.rule()), expected);
        };
        refused(
            b"{\"a\":",
            "/s",
            "json: attribute `data`: not valid JSON: EOF while parsing a value at line 1 column 5",
        );
        refused(
            b"",
            "/s",
            "json: attribute `data`: not valid JSON: EOF while parsing a value at line 1 column 0",
        );
        refused(
            b"\"\xC3\x28\"",
            "/s",
            "utf-8: attribute `data`: not valid UTF-8: invalid byte at offset 1",
        );
        refused(
            b"1",
            "a b",
            "uri-reference: attribute `source`: not a URI-reference (`a b`)",
        );
        refused(
            b"1",
            "",
            "non-empty: attribute `source`: must be a non-empty string",
        );
        let error = Event::wrap(b"1", "/s", "", None).expect_err("empty type");
        assert_eq!(error.rule(), "non-empty");
    }

    #[test]
    fn from_parts() {
        let event = Event::from_parts(
            [
                ("specversion", "1.0"),
                ("id", "1"),
                ("source", "/s"),
                ("type", "t"),
                ("ext", "42"),
            ],
            Data::Binary(&[0, 1, 2, 255]),
        )
        .expect("valid parts");
        assert_eq!(event.data_base64(), Some("AAEC/w=="));
        assert_eq!(
            event.attribute_raw("ext").map(RawValue::get),
            Some(r#""42""#)
        );

        let event = Event::from_parts(
            vec![
                ("specversion".to_owned(), "1.0".to_owned()),
                ("id".to_owned(), "1".to_owned()),
                ("source".to_owned(), "/s".to_owned()),
                ("type".to_owned(), "t".to_owned()),
            ],
            Data::Json(b"{\"x\": 1.50}"),
        )
        .expect("valid parts");
        assert_eq!(event.data().map(RawValue::get), Some("{\"x\": 1.50}"));

        let event = Event::from_parts(
            [
                ("specversion", "1.0"),
                ("id", "1"),
                ("source", "/s"),
                ("type", "t"),
            ],
            Data::None,
        )
        .expect("valid parts");
        assert_eq!(event.attributes().len(), 4);

        let refused = |parts: &[(&str, &str)], expected: &str| {
            let error = Event::from_parts(parts.iter().copied(), Data::None).expect_err("refused");
            assert_eq!(format!("{}: {error}", error.rule()), expected);
        };
        let base = [
            ("specversion", "1.0"),
            ("id", "1"),
            ("source", "/s"),
            ("type", "t"),
        ];
        refused(&base[..3], "required: missing required attribute `type`");
        for (extra, expected) in [
            (("id", "2"), "duplicate: duplicate attribute `id`"),
            (
                ("time", "yesterday"),
                "rfc3339: attribute `time`: not an RFC 3339 timestamp (`yesterday`)",
            ),
            (
                ("data", "x"),
                "name: attribute `data`: reserved for the event data, not an attribute",
            ),
            (
                ("data_base64", "AA=="),
                "name: attribute `data_base64`: reserved for the event data, not an attribute",
            ),
            (
                ("Ext", "x"),
                "name: attribute `Ext`: name must consist of lower-case ASCII letters and digits",
            ),
        ] {
            refused(&[&base[..], &[extra]].concat(), expected);
        }
        refused(
            &[
                ("specversion", "0.3"),
                ("id", "1"),
                ("source", "/s"),
                ("type", "t"),
            ],
            r#"specversion: attribute `specversion`: must be "1.0", got "0.3""#,
        );
    }
}
