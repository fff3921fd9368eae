//! Every MUST rule of CloudEvents 1.0 applied to an event's members, in order: no duplicates,
//! extension names `[a-z0-9]+`, the required attributes present and not null, each attribute's
//! type and syntax, extension values strings, booleans or 32-bit integers; the data members are
//! checked in [`super::data`]. Optional nulls are left out of the event built.

use std::collections::HashSet;

use serde_json::value::RawValue;

use super::data;
use super::error::{EventError, Rule, Shown, invalid, kind};
use super::model::{Attribute, Event};
use super::string::{non_empty_string, owned, string};
use super::syntax::{is_absolute_uri, is_media_type, is_rfc3339, is_uri_reference};

/// Whether a JSON number token is an integer in the range of a 32-bit signed integer, the
/// CloudEvents `Integer` type.
pub fn is_i32_token(raw: &str) -> bool {
    !raw.contains(['.', 'e', 'E']) && raw.parse::<i32>().is_ok()
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

/// Checks every rule and builds the event, leaving out optional nulls.
pub(super) fn validate(members: Vec<(String, Box<RawValue>)>) -> Result<Event, EventError> {
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
                    data::check_data(&name, raw)?;
                    None
                } else {
                    owned(data::check_base64(&name, raw)?)
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
    let event = Event::validated(attributes);
    data::check_data_type(&event)?;
    Ok(event)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;
    use crate::event::testing::{check, event};

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
    }

    #[test]
    fn i32_token() {
        for accepted in ["0", "-0", "1", "-1", "2147483647", "-2147483648"] {
            assert!(is_i32_token(accepted), "should accept {accepted:?}");
        }
        for refused in [
            "2147483648",
            "-2147483649",
            "1.0",
            "1e2",
            "1E2",
            "0.5",
            "99999999999999999999",
        ] {
            assert!(!is_i32_token(refused), "should refuse {refused:?}");
        }
    }
}
