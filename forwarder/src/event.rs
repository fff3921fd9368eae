//! One CloudEvents 1.0 event in the structured JSON format: parsing and validation.
//!
//! An [`Event`] keeps its attributes in the order they came, each as its raw JSON text, so that
//! `data` reaches the queue byte-exact: numbers are never parsed into floats or integers, and
//! strings are never re-escaped. Every MUST rule of CloudEvents 1.0 is checked; an event that
//! breaks one is refused with an [`EventError`] that names the attribute and the rule.
//!
//! An optional attribute whose value is JSON `null` is treated as absent and left out, so the
//! canonical form never carries nulls. That includes `data` and `data_base64`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::{self, Write as _};
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use thiserror::Error;

/// The deepest nesting of arrays and objects in a whole event, the top-level object included.
///
/// serde_json's default recursion limit accepts exactly this depth, so every event we send can be
/// read back by a consumer that uses serde_json with its defaults.
pub const MAX_DEPTH: usize = 127;

/// A valid CloudEvent: its attributes in their original order, each as raw JSON text.
///
/// The only ways to get one are [`parse_event`], [`Event::wrap`] and [`Event::from_parts`], all of
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

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EventError {
    /// The input is not UTF-8.
    #[error("not valid UTF-8: invalid byte at offset {offset}")]
    Utf8 {
        /// The offset of the first byte that is not part of a valid UTF-8 sequence.
        offset: usize,
    },
    /// The input is not a JSON object.
    #[error("not valid JSON: {message}")]
    Json {
        /// What serde_json said, with line and column.
        message: String,
    },
    /// A required attribute is absent.
    #[error("missing required attribute `{attribute}`")]
    Missing {
        /// The attribute's name.
        attribute: &'static str,
    },
    /// An attribute appears twice.
    #[error("duplicate attribute `{}`", Shown(.attribute))]
    Duplicate {
        /// The attribute's name.
        attribute: String,
    },
    /// An attribute breaks a rule.
    #[error("attribute `{}`: {problem}", Shown(.attribute))]
    Invalid {
        /// The attribute's name.
        attribute: String,
        /// The rule it breaks.
        rule: Rule,
        /// What is wrong, in words.
        problem: String,
    },
}

/// The rules an event can break, for machines (see [`Rule::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// Text must be UTF-8.
    Utf8,
    /// The event must be a JSON object, nested at most [`MAX_DEPTH`] deep.
    Json,
    /// `id`, `source`, `specversion` and `type` must be present and not null.
    Required,
    /// An attribute appears at most once.
    Duplicate,
    /// Attribute names are lower-case ASCII letters and digits.
    Name,
    /// Context attributes are strings.
    Type,
    /// String attributes are not empty.
    NonEmpty,
    /// String attributes hold no control characters and no noncharacters.
    Characters,
    /// `specversion` is "1.0".
    SpecVersion,
    /// `source` is a URI-reference (RFC 3986).
    UriReference,
    /// `dataschema` is an absolute URI (RFC 3986).
    Uri,
    /// `time` is an RFC 3339 timestamp.
    Rfc3339,
    /// `datacontenttype` is an RFC 2046 media type.
    MediaType,
    /// Extension values are strings, booleans or 32-bit integers.
    ExtensionType,
    /// `data` and `data_base64` are not both present.
    DataExclusive,
    /// `data_base64` is standard, padded base64.
    Base64,
    /// `data` is a string when `datacontenttype` is not JSON (JSON format, section 3.1.1).
    DataType,
}

/// Parses and validates one event in the CloudEvents 1.0 structured JSON format.
///
/// Attribute order is kept and `data` stays byte-exact; optional attributes that are `null` are
/// left out.
pub fn parse_event(line: &[u8]) -> Result<Event, EventError> {
    let text = std::str::from_utf8(line).map_err(|error| EventError::Utf8 {
        offset: error.valid_up_to(),
    })?;
    if text.starts_with('\u{feff}') {
        return Err(EventError::Json {
            message: "starts with a byte order mark (U+FEFF): save the file as UTF-8 without BOM"
                .to_owned(),
        });
    }
    let Members(members) = serde_json::from_str(text).map_err(|error| EventError::Json {
        message: error.to_string(),
    })?;
    validate(members)
}

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
        let time = humantime::format_rfc3339_micros(SystemTime::now()).to_string();
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
    /// The same rules as [`parse_event`] apply; the names `data` and `data_base64` are refused
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

impl EventError {
    /// The attribute at fault, if the fault is in one attribute.
    pub fn attribute(&self) -> Option<&str> {
        match self {
            EventError::Utf8 { .. } | EventError::Json { .. } => None,
            EventError::Missing { attribute } => Some(attribute),
            EventError::Duplicate { attribute } | EventError::Invalid { attribute, .. } => {
                Some(attribute)
            }
        }
    }

    /// The rule broken, as a short machine-readable string (see [`Rule::as_str`]).
    pub fn rule(&self) -> &'static str {
        let rule = match self {
            EventError::Utf8 { .. } => Rule::Utf8,
            EventError::Json { .. } => Rule::Json,
            EventError::Missing { .. } => Rule::Required,
            EventError::Duplicate { .. } => Rule::Duplicate,
            EventError::Invalid { rule, .. } => *rule,
        };
        rule.as_str()
    }
}

impl Rule {
    /// The rule's short name: "utf-8", "json", "required", "duplicate", "name", "type",
    /// "non-empty", "specversion", "uri-reference", "uri", "rfc3339", "media-type",
    /// "extension-type", "data-exclusive", "base64" or "data-type".
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Utf8 => "utf-8",
            Rule::Json => "json",
            Rule::Required => "required",
            Rule::Duplicate => "duplicate",
            Rule::Name => "name",
            Rule::Type => "type",
            Rule::NonEmpty => "non-empty",
            Rule::Characters => "characters",
            Rule::SpecVersion => "specversion",
            Rule::UriReference => "uri-reference",
            Rule::Uri => "uri",
            Rule::Rfc3339 => "rfc3339",
            Rule::MediaType => "media-type",
            Rule::ExtensionType => "extension-type",
            Rule::DataExclusive => "data-exclusive",
            Rule::Base64 => "base64",
            Rule::DataType => "data-type",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `s` is an RFC 3986 URI-reference: a URI, or a relative reference.
pub fn is_uri_reference(s: &str) -> bool {
    parse_uri_reference(s).is_some()
}

/// Whether `s` is an RFC 3986 URI: a URI-reference with a scheme (a fragment is allowed).
pub fn is_absolute_uri(s: &str) -> bool {
    parse_uri_reference(s) == Some(true)
}

/// Whether `s` is an RFC 3339 `date-time`, e.g. `2022-01-27T16:17:06.458868Z`.
///
/// Dates are checked against the days of each month, leap years included; `T` and `Z` may be
/// lower-case. A leap second (`:60`) is accepted only where the instant in UTC reads 23:59:60:
/// the offset is subtracted from the local time of day, so `18:59:60-05:00` is one and
/// `12:00:60Z` is not. Whether a leap second was in fact inserted on that day is not checked.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 {
        return false;
    }
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        number(b, 0, 4),
        number(b, 5, 2),
        number(b, 8, 2),
        number(b, 11, 2),
        number(b, 14, 2),
        number(b, 17, 2),
    ) else {
        return false;
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return false;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    let offset_minutes = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            match (number(b, i + 1, 2), number(b, i + 4, 2)) {
                (Some(hours), Some(minutes)) if hours <= 23 && minutes <= 59 => {
                    let offset = i64::from(hours * 60 + minutes);
                    if sign == b'-' { -offset } else { offset }
                }
                _ => return false,
            }
        }
        _ => return false,
    };
    second < 60 || is_last_minute_in_utc(hour, minute, offset_minutes)
}

/// Whether a local time of day `hour:minute` at an offset east of UTC is 23:59 in UTC.
fn is_last_minute_in_utc(hour: u32, minute: u32, offset_minutes: i64) -> bool {
    const DAY: i64 = 24 * 60;
    (i64::from(hour * 60 + minute) - offset_minutes).rem_euclid(DAY) == DAY - 1
}

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

/// Whether a JSON number token is an integer in the range of a 32-bit signed integer, the
/// CloudEvents `Integer` type.
pub fn is_i32_token(raw: &str) -> bool {
    !raw.contains(['.', 'e', 'E']) && raw.parse::<i32>().is_ok()
}

/// One attribute: its name, its raw JSON value, and its decoded value when that differs from the
/// text between the quotes.
#[derive(Debug, Clone)]
struct Attribute {
    name: Box<str>,
    value: Box<RawValue>,
    /// The decoded string, present only for string values with escapes.
    unescaped: Option<Box<str>>,
}

impl Attribute {
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

/// The members of the top-level JSON object, in order, duplicates included.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MembersVisitor)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of CloudEvents attributes")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(10));
        while let Some(member) = map.next_entry::<String, Box<RawValue>>()? {
            members.push(member);
        }
        Ok(Members(members))
    }
}

/// The attributes CloudEvents 1.0 defines, and the two members for data.
const KNOWN: [&str; 10] = [
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

/// The required attributes, in the order their absence is reported.
const REQUIRED: [&str; 4] = ["id", "source", "specversion", "type"];

/// At most this many characters of a value are shown in an error message.
const MAX_SHOWN: usize = 80;

/// Checks every rule and builds the event, leaving out optional nulls.
fn validate(members: Vec<(String, Box<RawValue>)>) -> Result<Event, EventError> {
    if let Some(name) = find_duplicate(&members) {
        return Err(EventError::Duplicate {
            attribute: name.to_owned(),
        });
    }
    let mut present = [false; REQUIRED.len()];
    let mut data_member: Option<&'static str> = None;
    let mut attributes = Vec::with_capacity(members.len());
    for (name, value) in members {
        let raw = value.get();
        if !KNOWN.contains(&name.as_str()) {
            check_name(&name)?;
        }
        let required = REQUIRED.iter().position(|required| *required == name);
        if raw == "null" {
            if required.is_some() {
                return Err(invalid(
                    &name,
                    Rule::Required,
                    "required attribute must not be null".to_owned(),
                ));
            }
            continue;
        }
        if let Some(index) = required {
            present[index] = true;
        }
        let unescaped = match name.as_str() {
            "data" | "data_base64" => {
                let this = if name == "data" {
                    "data"
                } else {
                    "data_base64"
                };
                if let Some(other) = data_member {
                    return Err(invalid(
                        &name,
                        Rule::DataExclusive,
                        format!("`{other}` and `{this}` must not both be present"),
                    ));
                }
                data_member = Some(this);
                if this == "data" {
                    // The top-level object counts as one level.
                    if depth_exceeds(raw, MAX_DEPTH - 1) {
                        return Err(invalid(
                            &name,
                            Rule::Json,
                            format!("nested deeper than {MAX_DEPTH} levels"),
                        ));
                    }
                    if let Some(escape) = lone_surrogate(raw) {
                        return Err(invalid(
                            &name,
                            Rule::Json,
                            format!("holds a lone surrogate escape (`{escape}`)"),
                        ));
                    }
                    None
                } else {
                    let text = string(&name, raw)?;
                    if STANDARD.decode(text.as_bytes()).is_err() {
                        return Err(invalid(
                            &name,
                            Rule::Base64,
                            "not valid base64 (standard alphabet, with padding)".to_owned(),
                        ));
                    }
                    owned(text)
                }
            }
            "specversion" => {
                let text = string(&name, raw)?;
                if text != "1.0" {
                    return Err(invalid(
                        &name,
                        Rule::SpecVersion,
                        format!("must be \"1.0\", got \"{}\"", Shown(&text)),
                    ));
                }
                owned(text)
            }
            "id" | "type" | "subject" => owned(non_empty_string(&name, raw)?),
            "source" => {
                let text = non_empty_string(&name, raw)?;
                check(
                    &name,
                    &text,
                    is_uri_reference,
                    Rule::UriReference,
                    "a URI-reference",
                )?;
                owned(text)
            }
            "dataschema" => {
                let text = non_empty_string(&name, raw)?;
                check(&name, &text, is_absolute_uri, Rule::Uri, "an absolute URI")?;
                owned(text)
            }
            "time" => {
                let text = non_empty_string(&name, raw)?;
                check(
                    &name,
                    &text,
                    is_rfc3339,
                    Rule::Rfc3339,
                    "an RFC 3339 timestamp",
                )?;
                owned(text)
            }
            "datacontenttype" => {
                let text = non_empty_string(&name, raw)?;
                check(
                    &name,
                    &text,
                    is_media_type,
                    Rule::MediaType,
                    "an RFC 2046 media type",
                )?;
                owned(text)
            }
            _ => extension(&name, raw)?,
        };
        attributes.push(Attribute {
            name: name.into_boxed_str(),
            value,
            unescaped,
        });
    }
    if let Some(index) = present.iter().position(|present| !present) {
        return Err(EventError::Missing {
            attribute: REQUIRED[index],
        });
    }
    let event = Event { attributes };
    check_data_type(&event)?;
    Ok(event)
}

/// Checks that `data` is a string unless `datacontenttype` declares JSON (or is absent, which
/// means JSON in this format): JSON format, section 3.1.1.
fn check_data_type(event: &Event) -> Result<(), EventError> {
    let Some(content_type) = event.datacontenttype() else {
        return Ok(());
    };
    let Some(data) = event.attributes.iter().find(|a| &*a.name == "data") else {
        return Ok(());
    };
    let raw = data.value.get();
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

/// Whether a media type declares JSON: its subtype, parameters aside, is `json` or ends in `+json`,
/// in any case.
pub fn is_json_media_type(media_type: &str) -> bool {
    let essence = media_type.split(';').next().unwrap_or_default().trim();
    essence.split_once('/').is_some_and(|(_, subtype)| {
        let subtype = subtype.to_ascii_lowercase();
        subtype == "json" || subtype.ends_with("+json")
    })
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

/// Checks the name of an extension attribute: `[a-z0-9]+`. The specification's advice to keep
/// names to 20 characters is not enforced.
fn check_name(name: &str) -> Result<(), EventError> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Ok(());
    }
    Err(invalid(
        name,
        Rule::Name,
        "name must consist of lower-case ASCII letters and digits".to_owned(),
    ))
}

/// Checks the value of an extension attribute: a string (which may be empty: only the core
/// optional attributes must not be), a boolean or a 32-bit integer.
fn extension(name: &str, raw: &str) -> Result<Option<Box<str>>, EventError> {
    match raw.as_bytes()[0] {
        b'"' => Ok(owned(string(name, raw)?)),
        b't' | b'f' => Ok(None),
        b'-' | b'0'..=b'9' if is_i32_token(raw) => Ok(None),
        _ => Err(invalid(
            name,
            Rule::ExtensionType,
            format!(
                "must be a string, a boolean or an integer in the 32-bit range, got {} `{}`",
                kind(raw),
                Shown(raw)
            ),
        )),
    }
}

/// Checks that an attribute's value is a string and decodes it.
fn string<'a>(name: &str, raw: &'a str) -> Result<Cow<'a, str>, EventError> {
    if !raw.starts_with('"') {
        return Err(invalid(
            name,
            Rule::Type,
            format!("must be a string, got {}", kind(raw)),
        ));
    }
    let text = if raw.contains('\\') {
        serde_json::from_str::<String>(raw)
            .map(Cow::Owned)
            .map_err(|error| {
                invalid(
                    name,
                    Rule::Json,
                    format!("not a valid JSON string: {}", without_position(&error)),
                )
            })?
    } else {
        Cow::Borrowed(&raw[1..raw.len() - 1])
    };
    // The CloudEvents String type: no control characters, no noncharacters.
    if let Some(c) = text.chars().find(|&c| !is_allowed_in_string(c)) {
        return Err(invalid(
            name,
            Rule::Characters,
            format!(
                "holds U+{:04X}; CloudEvents strings must not hold control characters or noncharacters",
                u32::from(c)
            ),
        ));
    }
    Ok(text)
}

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

/// Checks that an attribute's value is a non-empty string and decodes it.
fn non_empty_string<'a>(name: &str, raw: &'a str) -> Result<Cow<'a, str>, EventError> {
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

/// Checks a decoded value against a syntax.
fn check(
    name: &str,
    text: &str,
    syntax: fn(&str) -> bool,
    rule: Rule,
    what: &str,
) -> Result<(), EventError> {
    if syntax(text) {
        Ok(())
    } else {
        Err(invalid(
            name,
            rule,
            format!("not {what} (`{}`)", Shown(text)),
        ))
    }
}

/// The decoded string to store, only when it differs from the raw text between the quotes.
fn owned(text: Cow<'_, str>) -> Option<Box<str>> {
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

fn invalid(name: &str, rule: Rule, problem: String) -> EventError {
    EventError::Invalid {
        attribute: name.to_owned(),
        rule,
        problem,
    }
}

/// The first name that appears a second time.
fn find_duplicate(members: &[(String, Box<RawValue>)]) -> Option<&str> {
    if members.len() <= 16 {
        members.iter().enumerate().find_map(|(i, (name, _))| {
            members[..i]
                .iter()
                .any(|(other, _)| other == name)
                .then_some(name.as_str())
        })
    } else {
        let mut seen = HashSet::with_capacity(members.len());
        members
            .iter()
            .map(|(name, _)| name.as_str())
            .find(|name| !seen.insert(*name))
    }
}

/// What kind of JSON value a raw text is, for error messages.
fn kind(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        _ => "a number",
    }
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

/// The decimal number in `b[start..start + len]`, if all of it is digits.
fn number(b: &[u8], start: usize, len: usize) -> Option<u32> {
    let digits = b.get(start..start + len)?;
    digits.iter().try_fold(0, |value, &digit| {
        digit
            .is_ascii_digit()
            .then(|| value * 10 + u32::from(digit - b'0'))
    })
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

/// A value shown in an error message: at most [`MAX_SHOWN`] characters, with control characters
/// and non-characters escaped so the message stays one safe line.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.chars().enumerate() {
            if i == MAX_SHOWN {
                return f.write_char('…');
            }
            if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') {
                write!(f, "{}", c.escape_unicode())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid event with `extra` members appended (`extra` starts with a comma, or is empty).
    fn event(extra: &str) -> String {
        format!(r#"{{"specversion":"1.0","id":"1","source":"/s","type":"t"{extra}}}"#)
    }

    /// Parses `line`; `expected` is "ok" or "<rule>: <message>".
    fn check(line: &str, expected: &str) {
        let actual = match parse_event(line.as_bytes()) {
            Ok(_) => "ok".to_owned(),
            Err(error) => format!("{}: {error}", error.rule()),
        };
        let shown: String = line.chars().take(200).collect();
        assert_eq!(actual, expected, "input: {shown}");
    }

    #[test]
    fn minimal_event() {
        check(&event(""), "ok");
    }

    /// The four events the forwarder once sent and its own judge refused.
    #[test]
    fn refuses_what_the_judge_refuses() {
        check(
            &event(r#","time":"2018-04-05T12:00:60Z""#),
            "rfc3339: attribute `time`: not an RFC 3339 timestamp (`2018-04-05T12:00:60Z`)",
        );
        check(
            &event(r#","ext":"x","source":"//[zz]/x""#).replace(r#""source":"/s","#, ""),
            "uri-reference: attribute `source`: not a URI-reference (`//[zz]/x`)",
        );
        check(
            &event(r#","data":"\ud800""#),
            "json: attribute `data`: holds a lone surrogate escape (`\\ud800`)",
        );
        check(
            &event(r#","datacontenttype":"text/plain","data":{"a":1}"#),
            "data-type: attribute `data`: must be a string when `datacontenttype` is not JSON (`text/plain`), got an object",
        );
    }

    #[test]
    fn leap_seconds_only_at_23_59_60_utc() {
        for (time, accepted) in [
            ("2016-12-31T23:59:60Z", true),
            ("2016-12-31t23:59:60.5z", true),
            ("2016-12-31T18:59:60-05:00", true),
            ("2017-01-01T00:59:60+01:00", true),
            ("2016-12-31T23:29:60-00:30", true),
            ("2016-12-31T23:29:60+00:30", false),
            ("2016-12-31T23:59:60+01:00", false),
            ("2018-04-05T12:00:60Z", false),
            ("2018-04-05T23:58:60Z", false),
        ] {
            assert_eq!(is_rfc3339(time), accepted, "{time}");
        }
    }

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
        let names: Vec<_> = event.attributes().map(|(name, _)| name).collect();
        assert_eq!(
            names,
            [
                "specversion",
                "id",
                "source",
                "type",
                "subject",
                "datacontenttype",
                "time",
                "data"
            ]
        );
    }

    #[test]
    fn input_errors() {
        check(
            "{\"id\":\"\u{e9}\"}",
            "required: missing required attribute `source`",
        );
        let mut bytes = event("").into_bytes();
        bytes[12] = 0xFF;
        let error = parse_event(&bytes).expect_err("invalid UTF-8");
        assert_eq!(
            format!("{}: {error}", error.rule()),
            "utf-8: not valid UTF-8: invalid byte at offset 12"
        );
        assert_eq!(error.attribute(), None);
        check(
            "[1]",
            "json: not valid JSON: invalid type: sequence, expected a JSON object of CloudEvents attributes at line 1 column 0",
        );
        check(
            "{\"id\":",
            "json: not valid JSON: EOF while parsing a value at line 1 column 6",
        );
        check(
            &format!("{} x", event("")),
            "json: not valid JSON: trailing characters at line 1 column 57",
        );
        check(&format!("{}\r\n", event("")), "ok");
        check(
            "",
            "json: not valid JSON: EOF while parsing a value at line 1 column 0",
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
    fn required_attributes() {
        check(
            r#"{"source":"/s","specversion":"1.0","type":"t"}"#,
            "required: missing required attribute `id`",
        );
        check(
            r#"{"id":"1","specversion":"1.0","type":"t"}"#,
            "required: missing required attribute `source`",
        );
        check(
            r#"{"id":"1","source":"/s","type":"t"}"#,
            "required: missing required attribute `specversion`",
        );
        check(
            r#"{"id":"1","source":"/s","specversion":"1.0"}"#,
            "required: missing required attribute `type`",
        );
        check("{}", "required: missing required attribute `id`");
        check(
            r#"{"id":null,"source":"/s","specversion":"1.0","type":"t"}"#,
            "required: attribute `id`: required attribute must not be null",
        );
        check(
            r#"{"id":"1","source":"/s","specversion":"1.0","type":null}"#,
            "required: attribute `type`: required attribute must not be null",
        );
        check(
            r#"{"id":"","source":"/s","specversion":"1.0","type":"t"}"#,
            "non-empty: attribute `id`: must be a non-empty string",
        );
        check(
            r#"{"id":"1","source":"/s","specversion":"1.0","type":""}"#,
            "non-empty: attribute `type`: must be a non-empty string",
        );
        check(
            r#"{"id":"1","source":"","specversion":"1.0","type":"t"}"#,
            "non-empty: attribute `source`: must be a non-empty string",
        );
        check(
            r#"{"id":1,"source":"/s","specversion":"1.0","type":"t"}"#,
            "type: attribute `id`: must be a string, got a number",
        );
        check(
            r#"{"id":"1","source":["/s"],"specversion":"1.0","type":"t"}"#,
            "type: attribute `source`: must be a string, got an array",
        );
        check(
            r#"{"id":"1","source":"/s","specversion":"1.0","type":true}"#,
            "type: attribute `type`: must be a string, got a boolean",
        );
        check(
            r#"{"id":"\ud800","source":"/s","specversion":"1.0","type":"t"}"#,
            "json: attribute `id`: not a valid JSON string: unexpected end of hex escape",
        );
    }

    #[test]
    fn specversion() {
        check(
            r#"{"specversion":"0.3","id":"1","source":"/s","type":"t"}"#,
            r#"specversion: attribute `specversion`: must be "1.0", got "0.3""#,
        );
        check(
            r#"{"specversion":"1.0 ","id":"1","source":"/s","type":"t"}"#,
            r#"specversion: attribute `specversion`: must be "1.0", got "1.0 ""#,
        );
        check(
            r#"{"specversion":1.0,"id":"1","source":"/s","type":"t"}"#,
            "type: attribute `specversion`: must be a string, got a number",
        );
        check(
            r#"{"specversion":"","id":"1","source":"/s","type":"t"}"#,
            r#"specversion: attribute `specversion`: must be "1.0", got """#,
        );
        check(
            r#"{"specversion":"1\u002e0","id":"1","source":"/s","type":"t"}"#,
            "ok",
        );
    }

    #[test]
    fn duplicates_and_names() {
        check(
            &event(r#","id":"2""#),
            "duplicate: duplicate attribute `id`",
        );
        check(
            &event(r#","\u0069d":"2""#),
            "duplicate: duplicate attribute `id`",
        );
        let many: String = (0..40).map(|i| format!(r#","x{i}":"v""#)).collect();
        check(&event(&many), "ok");
        check(
            &event(&format!(r#"{many},"x39":"v""#)),
            "duplicate: duplicate attribute `x39`",
        );
        check(&event(r#","abc123":"v""#), "ok");
        check(
            &event(r#","thisnameislongerthantwentycharacters":"v""#),
            "ok",
        );
        for bad in ["Abc", "a_b", "a-b", "", "é", "a b", "dataBase64"] {
            check(
                &event(&format!(r#","{bad}":"v""#)),
                &format!(
                    "name: attribute `{bad}`: name must consist of lower-case ASCII letters and digits"
                ),
            );
        }
        check(
            &event(r#","a\u0000":"v""#),
            "name: attribute `a\\u{0}`: name must consist of lower-case ASCII letters and digits",
        );
    }

    #[test]
    fn optional_attributes() {
        check(&event(r#","subject":"x""#), "ok");
        check(
            &event(r#","subject":"""#),
            "non-empty: attribute `subject`: must be a non-empty string",
        );
        check(
            &event(r#","subject":5"#),
            "type: attribute `subject`: must be a string, got a number",
        );
        check(
            &event(r#","time":"""#),
            "non-empty: attribute `time`: must be a non-empty string",
        );
        check(
            &event(r#","datacontenttype":"""#),
            "non-empty: attribute `datacontenttype`: must be a non-empty string",
        );
        check(
            &event(r#","dataschema":"""#),
            "non-empty: attribute `dataschema`: must be a non-empty string",
        );
        check(
            &event(r#","dataschema":{}"#),
            "type: attribute `dataschema`: must be a string, got an object",
        );
    }

    #[test]
    fn nulls_are_dropped() {
        let line = r#"{"specversion":"1.0","subject":null,"id":"1","time":null,"source":"/s","ext":null,"type":"t","datacontenttype":null,"dataschema":null,"data":null,"data_base64":null}"#;
        let parsed = parse_event(line.as_bytes()).expect("optional nulls are accepted");
        let names: Vec<_> = parsed.attributes().map(|(name, _)| name).collect();
        assert_eq!(names, ["specversion", "id", "source", "type"]);
        assert_eq!(parsed.subject(), None);
        // Null data does not count towards the exclusivity of data and data_base64.
        check(&event(r#","data":null,"data_base64":"AA==""#), "ok");
        // A null attribute's name is still checked.
        check(
            &event(r#","Bad":null"#),
            "name: attribute `Bad`: name must consist of lower-case ASCII letters and digits",
        );
    }

    #[test]
    fn source_uri_reference() {
        let check_source = |value: &str, expected: &str| {
            let line = format!(
                r#"{{"specversion":"1.0","id":"1","source":{},"type":"t"}}"#,
                serde_json::to_string(value).expect("strings serialise")
            );
            check(&line, expected);
        };
        check_source("https://github.com/cloudevents", "ok");
        check_source("golioth/app/gateway/coap", "ok");
        check_source("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", "ok");
        check_source("/cloudevents/spec/pull/123", "ok");
        check_source("1-555-123-4567", "ok");
        check_source(
            "not a uri",
            "uri-reference: attribute `source`: not a URI-reference (`not a uri`)",
        );
        check_source(
            "1abc:x",
            "uri-reference: attribute `source`: not a URI-reference (`1abc:x`)",
        );
    }

    #[test]
    fn dataschema_uri() {
        check(
            &event(r#","dataschema":"https://example.com/schema.json#v1""#),
            "ok",
        );
        check(&event(r#","dataschema":"urn:example:schema""#), "ok");
        check(
            &event(r#","dataschema":"/schema.json""#),
            "uri: attribute `dataschema`: not an absolute URI (`/schema.json`)",
        );
        check(
            &event(r#","dataschema":"https://exa mple.com""#),
            "uri: attribute `dataschema`: not an absolute URI (`https://exa mple.com`)",
        );
    }

    #[test]
    fn time_attribute() {
        check(&event(r#","time":"2022-01-27T16:17:06.458868Z""#), "ok");
        check(
            &event(r#","time":"2022-13-01T00:00:00Z""#),
            "rfc3339: attribute `time`: not an RFC 3339 timestamp (`2022-13-01T00:00:00Z`)",
        );
        check(
            &event(r#","time":1643300226"#),
            "type: attribute `time`: must be a string, got a number",
        );
    }

    #[test]
    fn datacontenttype_attribute() {
        check(
            &event(r#","datacontenttype":"application/json; charset=utf-8""#),
            "ok",
        );
        check(
            &event(r#","datacontenttype":"json""#),
            "media-type: attribute `datacontenttype`: not an RFC 2046 media type (`json`)",
        );
    }

    #[test]
    fn extensions() {
        check(&event(r#","ext":"value""#), "ok");
        check(&event(r#","ext":true"#), "ok");
        check(&event(r#","ext":false"#), "ok");
        check(&event(r#","ext":0"#), "ok");
        check(&event(r#","ext":-0"#), "ok");
        check(&event(r#","ext":2147483647"#), "ok");
        check(&event(r#","ext":-2147483648"#), "ok");
        let refused = |value: &str, kind: &str| {
            check(
                &event(&format!(r#","ext":{value}"#)),
                &format!(
                    "extension-type: attribute `ext`: must be a string, a boolean or an integer in the 32-bit range, got {kind} `{value}`"
                ),
            );
        };
        refused("2147483648", "a number");
        refused("-2147483649", "a number");
        refused("123456789012345678901234567890", "a number");
        refused("1.0", "a number");
        refused("1.5", "a number");
        refused("1e3", "a number");
        refused("1E3", "a number");
        refused("{}", "an object");
        refused(r#"{"a":1}"#, "an object");
        refused("[]", "an array");
        refused("[1,2]", "an array");
        check(&event(r#","ext":"""#), "ok");
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

    #[test]
    fn data_is_byte_exact() {
        let data = r#"{"big":123456789012345678901234567890,"frac":0.1000000000000000055511151231257827,"exp":-1.5E+400,"s":"\u00e9\n\ufffe"}"#;
        let event = parse_event(event(&format!(r#","data":{data}"#)).as_bytes())
            .expect("the event is valid");
        assert_eq!(event.data().map(RawValue::get), Some(data));
        assert_eq!(event.attribute_str("data"), None);
    }

    #[test]
    fn a_byte_order_mark_is_named() {
        let line = format!("\u{feff}{}", event(""));
        let error = parse_event(line.as_bytes()).expect_err("a BOM is refused");
        assert_eq!(error.rule(), "json");
        assert!(error.to_string().contains("byte order mark"), "{error}");
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
    fn error_accessors() {
        let error = parse_event(event(r#","time":"x""#).as_bytes()).expect_err("bad time");
        assert_eq!(error.attribute(), Some("time"));
        assert_eq!(error.rule(), "rfc3339");
        let error = parse_event(b"{}").expect_err("empty");
        assert_eq!(error.attribute(), Some("id"));
        assert_eq!(error.rule(), "required");
        let error = parse_event(b"{").expect_err("truncated");
        assert_eq!(error.attribute(), None);
        assert_eq!(error.rule(), "json");
        let long = "x".repeat(200);
        let error =
            parse_event(event(&format!(r#","time":"{long}""#)).as_bytes()).expect_err("bad time");
        assert_eq!(
            error.to_string(),
            format!(
                "attribute `time`: not an RFC 3339 timestamp (`{}…`)",
                "x".repeat(80)
            )
        );
    }

    #[test]
    fn wrap() {
        let payload =
            br#"{"n":123456789012345678901234567890, "f":0.1000000000000000055511151231257827}"#;
        let event = Event::wrap(payload, "golioth/app", "DEVICE", Some("stream"))
            .expect("the payload is valid");
        let names: Vec<_> = event.attributes().map(|(name, _)| name).collect();
        assert_eq!(
            names,
            [
                "specversion",
                "id",
                "source",
                "type",
                "subject",
                "datacontenttype",
                "time",
                "data"
            ]
        );
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
        refused(
            &[&base[..], &[("id", "2")]].concat(),
            "duplicate: duplicate attribute `id`",
        );
        refused(
            &[&base[..], &[("time", "yesterday")]].concat(),
            "rfc3339: attribute `time`: not an RFC 3339 timestamp (`yesterday`)",
        );
        refused(
            &[&base[..], &[("data", "x")]].concat(),
            "name: attribute `data`: reserved for the event data, not an attribute",
        );
        refused(
            &[&base[..], &[("data_base64", "AA==")]].concat(),
            "name: attribute `data_base64`: reserved for the event data, not an attribute",
        );
        refused(
            &[&base[..], &[("Ext", "x")]].concat(),
            "name: attribute `Ext`: name must consist of lower-case ASCII letters and digits",
        );
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

    mod syntax {
        use super::super::*;

        /// Checks one syntax against inputs that must be accepted or refused.
        fn check(syntax: fn(&str) -> bool, accepted: &[&str], refused: &[&str]) {
            for input in accepted {
                assert!(syntax(input), "should accept {input:?}");
            }
            for input in refused {
                assert!(!syntax(input), "should refuse {input:?}");
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

        #[test]
        fn rfc3339() {
            check(
                is_rfc3339,
                &[
                    "2022-01-27T16:17:06.458868Z",
                    "2022-01-27T16:17:06Z",
                    "2022-01-27t16:17:06z",
                    "2022-01-27T16:17:06+05:30",
                    "2022-01-27T16:17:06-00:00",
                    "2022-01-27T16:17:06.1+23:59",
                    "1985-04-12T23:20:50.52Z",
                    "1996-12-19T16:39:57-08:00",
                    "1990-12-31T23:59:60Z",
                    "1990-12-31T15:59:60-08:00",
                    "2024-02-29T00:00:00Z",
                    "2000-02-29T00:00:00Z",
                    "0000-01-01T00:00:00Z",
                    "9999-12-31T23:59:59.999999999999Z",
                    "2022-01-31T00:00:00Z",
                    "2022-04-30T00:00:00Z",
                ],
                &[
                    "",
                    "2022-13-01T00:00:00Z",
                    "2022-00-01T00:00:00Z",
                    "2022-01-00T00:00:00Z",
                    "2022-01-32T00:00:00Z",
                    "2022-04-31T00:00:00Z",
                    "2023-02-29T00:00:00Z",
                    "1900-02-29T00:00:00Z",
                    "2022-01-27T24:00:00Z",
                    "2022-01-27T23:60:00Z",
                    "2022-01-27T23:59:61Z",
                    "2022-01-27 16:17:06Z",
                    "2022-01-27T16:17:06",
                    "2022-01-27T16:17:06.Z",
                    "2022-01-27T16:17:06.5",
                    "2022-01-27T16:17:06+0530",
                    "2022-01-27T16:17:06+05",
                    "2022-01-27T16:17:06+24:00",
                    "2022-01-27T16:17:06+05:60",
                    "2022-01-27T16:17:06ZZ",
                    "2022-01-27T16:17:06Z ",
                    " 2022-01-27T16:17:06Z",
                    "2022-1-27T16:17:06Z",
                    "22-01-27T16:17:06Z",
                    "2022/01/27T16:17:06Z",
                    "2022-01-27T16-17-06Z",
                    "2022-01-27",
                    "2022-01-27T16:17Z",
                    "+2022-01-27T16:17:06Z",
                    "2022-01-27T16:17:06,5Z",
                    "2022-01-27T16:17:06.٣Z",
                    "２022-01-27T16:17:06Z",
                ],
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

        #[test]
        fn i32_token() {
            check(
                is_i32_token,
                &["0", "-0", "1", "-1", "2147483647", "-2147483648"],
                &[
                    "2147483648",
                    "-2147483649",
                    "1.0",
                    "1e2",
                    "1E2",
                    "0.5",
                    "99999999999999999999",
                ],
            );
        }
    }
}
