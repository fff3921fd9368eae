//! Binary content mode: an event whose context travels in `ce-*` message attributes and whose
//! data is the message body, read back into the structured event it stands for.
//!
//! The layout is the one of the CloudEvents HTTP and Kafka bindings, which the SQS binding
//! proposed for sdk-go follows: the String attribute `ce-NAME` holds context attribute `NAME`
//! (extensions included, every value a string), `content-type` holds `datacontenttype`, and
//! the body is the data. A JSON `content-type` means the body is JSON; another one, that it is
//! text; without one, the body is JSON when it parses as JSON and text otherwise.
//!
//! Telling the modes apart: a message is binary when it has a `ce-specversion` attribute,
//! unless its `content-type` is `application/cloudevents…` (a structured body, as in HTTP) or
//! its body is itself a structured event with the same `specversion` and `id` as the
//! attributes (a structured body with the context copied beside it, as `forwarder
//! --attributes cloudevents` writes).

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use crate::judge::{Message, Problem};
use crate::rules;

/// How a message carries its event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentMode {
    /// The body is the event as JSON.
    Structured,
    /// The context is in attributes, the body is the data.
    Binary,
}

/// The content mode of a message; see the module documentation.
pub fn content_mode(message: &Message) -> ContentMode {
    let Some(specversion) = message.attributes.get("ce-specversion") else {
        return ContentMode::Structured;
    };
    let structured_type = message
        .attributes
        .get("content-type")
        .is_some_and(|value| is_event_format(value));
    if structured_type {
        return ContentMode::Structured;
    }
    let copied_beside = serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(&message.body)
        .ok()
        .is_some_and(|members| {
            let same = |name: &str, expected: Option<&String>| {
                let member = members
                    .get(name)
                    .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
                member.as_ref() == expected
            };
            same("specversion", Some(specversion)) && same("id", message.attributes.get("ce-id"))
        });
    if copied_beside {
        ContentMode::Structured
    } else {
        ContentMode::Binary
    }
}

/// Whether a `content-type` names a CloudEvents event format (`application/cloudevents+json`
/// and its kin): the body is a structured event, and the attribute is not its `datacontenttype`.
pub(crate) fn is_event_format(content_type: &str) -> bool {
    content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("application/cloudevents")
}

/// The structured JSON text of the event a binary-mode message carries, and what stood in the
/// way of reading it (a JSON `content-type` over a body that is not JSON, a `ce-*` attribute
/// that is not a context attribute). Message attributes other than `ce-*` and `content-type`
/// are not CloudEvents' concern and are left out.
pub fn rebuild(message: &Message) -> (String, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut members: Vec<(String, String)> = Vec::new();
    for (key, value) in &message.attributes {
        let name = match key.strip_prefix("ce-") {
            Some("data" | "data_base64" | "datacontenttype") => {
                problems.push(Problem::new(
                    "attributes",
                    key,
                    format!(
                        "{key} is not a context attribute in binary mode (the data is the body, its type is content-type)"
                    ),
                ));
                continue;
            }
            Some(name) => name,
            None if key == "content-type" => "datacontenttype",
            None => continue,
        };
        members.push((name.to_owned(), json_string(value)));
    }
    if let Some(data) = data(message, &mut problems) {
        members.push(("data".to_owned(), data));
    }
    let mut text = String::from("{");
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&json_string(name));
        text.push(':');
        text.push_str(value);
    }
    text.push('}');
    (text, problems)
}

/// The message attribute (or `body`) that a JSON pointer into the rebuilt event stands for.
pub(crate) fn origin(pointer: &str) -> String {
    let Some(rest) = pointer.strip_prefix('/') else {
        return pointer.to_owned();
    };
    let (name, _) = rest.split_once('/').unwrap_or((rest, ""));
    match name {
        "data" => "body".to_owned(),
        "datacontenttype" => "content-type".to_owned(),
        name => format!("ce-{}", name.replace("~1", "/").replace("~0", "~")),
    }
}

/// Problems with the SQS character set in the attribute values (the body's are checked by the
/// judge as for any message).
pub(crate) fn attribute_charset(message: &Message) -> Vec<Problem> {
    message
        .attributes
        .iter()
        .filter(|(key, _)| key.starts_with("ce-") || *key == "content-type")
        .flat_map(|(key, value)| {
            rules::check_charset(value).into_iter().map(move |problem| {
                Problem::new(
                    &problem.rule,
                    key,
                    problem.message.replacen("body", "value", 1),
                )
            })
        })
        .collect()
}

/// The data member: the body as JSON or as a string, per `content-type`.
fn data(message: &Message, problems: &mut Vec<Problem>) -> Option<String> {
    if message.body.is_empty() {
        return None;
    }
    let as_json = || serde_json::from_str::<Box<RawValue>>(&message.body);
    match message.attributes.get("content-type") {
        Some(content_type) if rules::is_json_media_type(content_type) => match as_json() {
            Ok(raw) => Some(raw.get().to_owned()),
            Err(err) => {
                problems.push(Problem::new(
                    "json",
                    "body",
                    format!("content-type is {content_type:?} but the body is not JSON: {err}"),
                ));
                None
            }
        },
        Some(_) => Some(json_string(&message.body)),
        None => Some(match as_json() {
            Ok(raw) => raw.get().to_owned(),
            Err(_) => json_string(&message.body),
        }),
    }
}

fn json_string(text: &str) -> String {
    // A string always serializes.
    serde_json::to_string(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str, attributes: &[(&str, &str)]) -> Message {
        Message {
            message_id: "m".to_owned(),
            body: body.to_owned(),
            attributes: attributes
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            group_id: None,
        }
    }

    const CONTEXT: [(&str, &str); 4] = [
        ("ce-specversion", "1.0"),
        ("ce-id", "1"),
        ("ce-source", "/s"),
        ("ce-type", "t"),
    ];

    #[test]
    fn tells_the_modes_apart() {
        let check = |body: &str, extra: &[(&str, &str)], expected: ContentMode| {
            let mut attributes = CONTEXT.to_vec();
            attributes.extend_from_slice(extra);
            assert_eq!(
                content_mode(&message(body, &attributes)),
                expected,
                "{body}"
            );
        };
        assert_eq!(
            content_mode(&message("{}", &[("ce-id", "1")])),
            ContentMode::Structured
        );
        check("{\"x\":1}", &[], ContentMode::Binary);
        check(
            "hello",
            &[("content-type", "text/plain")],
            ContentMode::Binary,
        );
        check(
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#,
            &[("content-type", "application/json")],
            ContentMode::Structured,
        );
        check(
            r#"{"specversion":"1.0","id":"2","source":"/s","type":"t"}"#,
            &[],
            ContentMode::Binary,
        );
        check(
            "{}",
            &[(
                "content-type",
                "application/cloudevents+json; charset=UTF-8",
            )],
            ContentMode::Structured,
        );
    }

    #[test]
    fn rebuilds_the_event() {
        let check = |body: &str, extra: &[(&str, &str)], expected: &str, rules: &[&str]| {
            let mut attributes = CONTEXT.to_vec();
            attributes.extend_from_slice(extra);
            let (text, problems) = rebuild(&message(body, &attributes));
            let expected: serde_json::Value = serde_json::from_str(expected).expect("JSON");
            let actual: serde_json::Value = serde_json::from_str(&text).expect("rebuilt JSON");
            assert_eq!(actual, expected, "{text}");
            let actual_rules: Vec<&str> = problems.iter().map(|p| p.rule.as_str()).collect();
            assert_eq!(actual_rules, rules);
        };
        let base = r#""specversion":"1.0","id":"1","source":"/s","type":"t""#;
        check(
            r#"{"n": 1}"#,
            &[("content-type", "application/json"), ("ce-ext", "42")],
            &format!(
                r#"{{{base},"datacontenttype":"application/json","ext":"42","data":{{"n":1}}}}"#
            ),
            &[],
        );
        check(
            "a \"b\"",
            &[("content-type", "text/plain"), ("trace", "x")],
            &format!(r#"{{{base},"datacontenttype":"text/plain","data":"a \"b\""}}"#),
            &[],
        );
        check("[1]", &[], &format!(r#"{{{base},"data":[1]}}"#), &[]);
        check(
            "not json",
            &[],
            &format!(r#"{{{base},"data":"not json"}}"#),
            &[],
        );
        check(
            "not json",
            &[("content-type", "application/json")],
            &format!(r#"{{{base},"datacontenttype":"application/json"}}"#),
            &["json"],
        );
        check(
            "1",
            &[("ce-datacontenttype", "application/json")],
            &format!(r#"{{{base},"data":1}}"#),
            &["attributes"],
        );
    }

    #[test]
    fn points_back_at_attributes() {
        assert_eq!(origin("/time"), "ce-time");
        assert_eq!(origin("/data/a/0"), "body");
        assert_eq!(origin("/datacontenttype"), "content-type");
        assert_eq!(origin(""), "");
    }
}
