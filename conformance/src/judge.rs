//! The verdict on one SQS message or one standalone event: our JSON Schema
//! (`schema.json`, format assertions on) plus the rules of `rules`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use jsonschema::error::ValidationErrorKind;
use serde::Serialize;
use serde_json::Value;

use crate::binary::{self, ContentMode};
use crate::rules;

/// One SQS message as received: its id, its body, its message attributes
/// that have a string value (`String` and `Number` data types), and its FIFO
/// message group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub message_id: String,
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    pub group_id: Option<String>,
}

/// Whether a message is conformant, and why not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub conformant: bool,
    pub problems: Vec<Problem>,
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A short rule id: `charset`, `json`, `duplicate-key`, `schema`,
    /// `rfc3339`, `media-type`, `integer`, `base64`, `string`, `data` or
    /// `attributes`.
    pub rule: String,
    /// A JSON pointer into the body (empty for the body itself), or the name
    /// of a message attribute.
    pub path: String,
    pub message: String,
}

/// Judges one SQS message in either content mode (see [`binary::content_mode`]).
///
/// Structured: the SQS body character set, the body as a CloudEvent (see
/// [`judge_event_json`]), and the agreement of the `ce-*` and `content-type`
/// message attributes with the body. Binary: the character set of the body and
/// the attributes, and the event rebuilt from them ([`binary::rebuild`]) by the
/// same rules, each problem naming the attribute (or `body`) it comes from.
pub fn judge(msg: &Message) -> Verdict {
    let mut problems = rules::check_charset(&msg.body);
    match binary::content_mode(msg) {
        ContentMode::Structured => match rules::parse_members(&msg.body) {
            Ok(members) => {
                problems.extend(event_problems(&members));
                problems.extend(rules::check_attributes(&members, &msg.attributes));
            }
            Err(problem) => problems.push(problem),
        },
        ContentMode::Binary => {
            problems.extend(binary::attribute_charset(msg));
            let (text, rebuilt) = binary::rebuild(msg);
            problems.extend(rebuilt);
            match rules::parse_members(&text) {
                Ok(members) => {
                    problems.extend(event_problems(&members).into_iter().map(|mut problem| {
                        problem.path = binary::origin(&problem.path);
                        problem
                    }))
                }
                Err(problem) => problems.push(problem),
            }
        }
    }
    Verdict::new(problems)
}

/// Judges a standalone CloudEvent in structured JSON mode: our schema, then
/// the rules a schema cannot state. The text must be one JSON object.
pub fn judge_event_json(value_text: &str) -> Verdict {
    let problems = match rules::parse_members(value_text) {
        Ok(members) => event_problems(&members),
        Err(problem) => vec![problem],
    };
    Verdict::new(problems)
}

/// Our JSON Schema for a CloudEvent, stricter than the official one.
pub fn schema() -> &'static Value {
    &SCHEMA
}

impl Verdict {
    fn new(problems: Vec<Problem>) -> Self {
        Verdict {
            conformant: problems.is_empty(),
            problems,
        }
    }
}

impl Problem {
    pub(crate) fn new(rule: &str, path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            rule: rule.to_owned(),
            path: path.into(),
            message: message.into(),
        }
    }
}

static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("schema.json")).expect("schema.json is valid JSON")
});

static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema())
        .expect("schema.json compiles")
});

fn event_problems(members: &rules::Members) -> Vec<Problem> {
    let mut problems = match members.schema_view() {
        Ok(value) => schema_problems(&value),
        Err(err) => vec![Problem::new("json", "", format!("not valid JSON: {err}"))],
    };
    problems.extend(rules::check_members(members));
    problems
}

/// Schema errors, with instance values masked so that a report never echoes
/// event data. The two errors whose stock message would be unhelpful (an
/// attribute name, reported at the root, and `not`, which prints its
/// subschema) are worded here.
fn schema_problems(value: &Value) -> Vec<Problem> {
    VALIDATOR
        .iter_errors(value)
        .map(|err| {
            if let ValidationErrorKind::PropertyNames { error } = err.kind()
                && let Value::String(name) = error.instance().as_ref()
            {
                return Problem::new(
                    "schema",
                    rules::pointer(name),
                    format!("attribute name {name:?} is not lower-case ASCII letters and digits"),
                );
            }
            if let ValidationErrorKind::Not { .. } = err.kind() {
                return Problem::new("schema", "", "data and data_base64 are mutually exclusive");
            }
            Problem::new(
                "schema",
                err.instance_path().as_str(),
                err.masked().to_string(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    /// The IoT example from the project brief.
    const IOT: &str = r#"{"specversion":"1.0","id":"aa12dc4c-c5ed-4b46-92e5-5a726f4daa81","source":"golioth/app/gateway/coap","type":"DEVICE_STREAM_TYPE","subject":"stream","datacontenttype":"application/json","time":"2022-01-27T16:17:06.458868Z","data":{"data":{"temp":32},"device_id":"612d3cecf3ee17d321adbec6","project_id":"my-first-project","timestamp":{"nanos":174295000,"seconds":1643300226}}}"#;

    /// Builds an event from the minimal one by appending members.
    /// The (rule, path) pairs of a verdict's problems, sorted.
    fn rule_paths(verdict: &crate::Verdict) -> Vec<(&str, &str)> {
        let mut pairs: Vec<(&str, &str)> = verdict
            .problems
            .iter()
            .map(|p| (p.rule.as_str(), p.path.as_str()))
            .collect();
        pairs.sort_unstable();
        pairs
    }

    fn event(extra: &str) -> String {
        let minimal = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t""#;
        if extra.is_empty() {
            format!("{minimal}}}")
        } else {
            format!("{minimal},{extra}}}")
        }
    }

    #[test]
    fn embedded_schema_is_a_valid_schema() {
        assert!(jsonschema::meta::is_valid(crate::schema()));
    }

    mod event {
        use super::{IOT, event};
        use crate::judge_event_json;

        /// `expected` lists the (rule, path) pairs of the problems, sorted and
        /// without repeats; an empty list means conformant.
        fn check(input: &str, expected: &[(&str, &str)]) {
            let verdict = judge_event_json(input);
            let mut actual = super::rule_paths(&verdict);
            actual.dedup();
            assert_eq!(actual, expected, "{input}\n{:#?}", verdict.problems);
            assert_eq!(verdict.conformant, expected.is_empty());
        }

        #[test]
        fn accepts_conformant_events() {
            check(IOT, &[]);
            check(&event(""), &[]);
            check(
                &event(r#""datacontenttype":"application/octet-stream","data_base64":"AAEC/w==""#),
                &[],
            );
            check(&event(r#""data_base64":"""#), &[]);
            check(
                &event(
                    r#""extstring":"text","extempty":"","extboolean":false,"extinteger":-2147483648,"extmax":2147483647,"exturi":"https://cloudevents.io","exttime":"2023-03-31T15:12:00Z","extbinary":"TWE=","extnull":null"#,
                ),
                &[],
            );
            check(
                &event(r#""datacontenttype":null,"dataschema":null,"subject":null,"time":null"#),
                &[],
            );
            check(&event(r#""data":null"#), &[]);
            check(&event(r#""datacontenttype":"text/xml","data":"<a/>""#), &[]);
            check(&event(r#""data":[1,2.5,{"x":null}]"#), &[]);
            // Valid JSON numbers beyond f64 in data are the payload, not a fault.
            check(
                &event(
                    r#""data":{"big":1e400,"long":123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890}"#,
                ),
                &[],
            );
            check(
                &event(r#""dataschema":"https://example.com/schema/1""#),
                &[],
            );
            check(&event(r#""time":"2016-12-31T23:59:60Z""#), &[]);
        }

        #[test]
        fn refuses_other_spec_versions() {
            check(
                r#"{"specversion":"0.3","id":"1","source":"/s","type":"t"}"#,
                &[("schema", "/specversion")],
            );
        }

        #[test]
        fn refuses_bad_media_types() {
            // Each case goes through both the schema's pattern and the parser
            // of `rules`, which must agree.
            let refused = [
                ("media-type", "/datacontenttype"),
                ("schema", "/datacontenttype"),
            ];
            for (media_type, expected) in [
                ("text/plain; charset=utf-8", &[][..]),
                ("text/plain ; charset=\"utf-8\"", &[]),
                ("multipart/form-data; boundary=\"a b\\\"c\"", &[]),
                ("application/cloudevents+json;charset=UTF-8", &[]),
                ("xyz", &refused),
                ("text/plain;", &refused),
                ("text/plain; charset = utf-8", &refused),
                ("text/plain ", &refused),
                ("text /plain", &refused),
                ("t\u{eb}xt/plain", &refused),
                ("text/plain; charset=\"utf-8", &refused),
                ("text/plain; a=\"\u{e9}\"", &refused),
            ] {
                let member = serde_json::Value::from(media_type);
                check(&event(&format!(r#""datacontenttype":{member}"#)), expected);
            }
        }

        #[test]
        fn refuses_bad_attribute_names() {
            check(&event(r#""Upper":"x""#), &[("schema", "/Upper")]);
            check(
                &event(r#""dotted.name":"x""#),
                &[("schema", "/dotted.name")],
            );
            check(
                &event(r#""under_score":"x""#),
                &[("schema", "/under_score")],
            );
            check(&event(r#""a/b~":"x""#), &[("schema", "/a~1b~0")]);
            check(&event(r#""":"x""#), &[("schema", "/")]);
        }

        #[test]
        fn refuses_extension_values_that_are_not_integers() {
            check(
                &event(r#""ext":1.5"#),
                &[("integer", "/ext"), ("schema", "/ext")],
            );
            // A whole number written with a fraction or an exponent passes
            // JSON Schema's `integer` but is not an Integer token.
            check(&event(r#""ext":1.0"#), &[("integer", "/ext")]);
            check(&event(r#""ext":1e3"#), &[("integer", "/ext")]);
            check(
                &event(r#""ext":2147483648"#),
                &[("integer", "/ext"), ("schema", "/ext")],
            );
            check(
                &event(r#""ext":-99999999999999999999999"#),
                &[("integer", "/ext"), ("schema", "/ext")],
            );
            check(&event(r#""ext":{"a":1}"#), &[("schema", "/ext")]);
            check(&event(r#""ext":[1]"#), &[("schema", "/ext")]);
        }

        #[test]
        fn refuses_data_with_data_base64() {
            check(
                &event(r#""data":"text","data_base64":"TWE=""#),
                &[("schema", "")],
            );
            check(
                &event(r#""data":null,"data_base64":"TWE=""#),
                &[("schema", "")],
            );
        }

        #[test]
        fn refuses_empty_or_missing_attributes() {
            check(
                r#"{"specversion":"1.0","id":"1","source":"","type":"t"}"#,
                &[("schema", "/source")],
            );
            check(&event(r#""subject":"""#), &[("schema", "/subject")]);
            check(&event(r#""dataschema":"""#), &[("schema", "/dataschema")]);
            check(
                r#"{"specversion":"1.0","source":"/s","type":"t"}"#,
                &[("schema", "")],
            );
            check(
                r#"{"specversion":"1.0","id":null,"source":"/s","type":"t"}"#,
                &[("schema", "/id")],
            );
        }

        #[test]
        fn refuses_bad_uris() {
            check(
                &event(r#""dataschema":"relative/path""#),
                &[("schema", "/dataschema")],
            );
            check(
                r#"{"specversion":"1.0","id":"1","source":"a b","type":"t"}"#,
                &[("schema", "/source")],
            );
        }

        #[test]
        fn refuses_bad_times() {
            check(
                &event(r#""time":"2022-02-30T00:00:00Z""#),
                &[("rfc3339", "/time"), ("schema", "/time")],
            );
            check(
                &event(r#""time":"2018-04-05T18:31Z""#),
                &[("rfc3339", "/time"), ("schema", "/time")],
            );
            check(
                &event(r#""time":"2018-04-05T18:31:00+25:00""#),
                &[("rfc3339", "/time"), ("schema", "/time")],
            );
        }

        #[test]
        fn refuses_bad_base64() {
            check(
                &event(r#""data_base64":"TWE""#),
                &[("base64", "/data_base64"), ("schema", "/data_base64")],
            );
            check(
                &event(r#""data_base64":"TW E=""#),
                &[("base64", "/data_base64"), ("schema", "/data_base64")],
            );
            // Non-zero padding bits: RFC 4648 lets decoders refuse them.
            check(
                &event(r#""data_base64":"TWF=""#),
                &[("base64", "/data_base64")],
            );
        }

        #[test]
        fn refuses_duplicate_keys() {
            check(
                r#"{"specversion":"1.0","id":"1","id":"2","source":"/s","type":"t"}"#,
                &[("duplicate-key", "/id")],
            );
        }

        #[test]
        fn refuses_bodies_that_are_not_json_objects() {
            check("", &[("json", "")]);
            check("not json", &[("json", "")]);
            check(&format!("{} trailing", event("")), &[("json", "")]);
            check(&format!("[{}]", event("")), &[("json", "")]);
            check("\"1.0\"", &[("json", "")]);
        }

        #[test]
        fn refuses_disallowed_string_characters() {
            check(&event(r#""subject":"a\u0000b""#), &[("string", "/subject")]);
            check(&event(r#""ext":"\uffff""#), &[("string", "/ext")]);
            check(
                &event(r#""ext":"\ud800""#),
                &[("json", ""), ("string", "/ext")],
            );
            // Event data is not an attribute: any JSON string goes.
            check(&event(r#""data":"a\u0000b""#), &[]);
        }

        #[test]
        fn refuses_non_string_data_with_a_non_json_content_type() {
            check(
                &event(r#""datacontenttype":"text/plain","data":{"a":1}"#),
                &[("data", "/data")],
            );
            check(&event(r#""datacontenttype":"text/plain","data":"ok""#), &[]);
            check(
                &event(r#""datacontenttype":"application/vnd.x+json","data":{"a":1}"#),
                &[],
            );
        }
    }

    mod message {
        use std::collections::BTreeMap;

        use super::{IOT, event};
        use crate::{Message, judge};

        /// Judges `body` with message attributes `attributes`; `expected`
        /// lists the (rule, path) pairs of the problems, sorted.
        fn check(body: &str, attributes: &[(&str, &str)], expected: &[(&str, &str)]) {
            let message = Message {
                message_id: "m-1".to_owned(),
                body: body.to_owned(),
                attributes: attributes
                    .iter()
                    .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                    .collect::<BTreeMap<_, _>>(),
                group_id: None,
            };
            let verdict = judge(&message);
            let actual = super::rule_paths(&verdict);
            assert_eq!(actual, expected, "{body}\n{:#?}", verdict.problems);
            assert_eq!(verdict.conformant, expected.is_empty());
        }

        #[test]
        fn accepts_agreeing_attributes() {
            check(IOT, &[], &[]);
            check(
                IOT,
                &[
                    ("ce-specversion", "1.0"),
                    ("ce-id", "aa12dc4c-c5ed-4b46-92e5-5a726f4daa81"),
                    ("ce-source", "golioth/app/gateway/coap"),
                    ("ce-type", "DEVICE_STREAM_TYPE"),
                    ("ce-subject", "stream"),
                    ("ce-time", "2022-01-27T16:17:06.458868Z"),
                    ("content-type", "application/json"),
                    ("trace", "not a CloudEvents attribute"),
                ],
                &[],
            );
            check(
                IOT,
                &[(
                    "content-type",
                    "application/cloudevents+json; charset=UTF-8",
                )],
                &[],
            );
            check(
                &event(r#""extinteger":-5,"extboolean":true"#),
                &[("ce-extinteger", "-5"), ("ce-extboolean", "true")],
                &[],
            );
        }

        #[test]
        fn refuses_disagreeing_attributes() {
            check(
                IOT,
                &[
                    ("ce-id", "another-id"),
                    ("ce-subject", "stream"),
                    ("content-type", "text/plain"),
                ],
                &[("attributes", "ce-id"), ("attributes", "content-type")],
            );
            check(
                &event(r#""subject":null"#),
                &[
                    ("ce-subject", "stream"),
                    ("content-type", "application/json"),
                ],
                &[("attributes", "ce-subject"), ("attributes", "content-type")],
            );
        }

        #[test]
        fn refuses_characters_outside_the_sqs_set() {
            check(
                &event("\"ext\":\"\u{FFFF}\""),
                &[],
                &[("charset", ""), ("string", "/ext")],
            );
            check(&event("\"data\":\"\u{FFFE}\""), &[], &[("charset", "")]);
        }

        #[test]
        fn judges_binary_mode_from_attributes_and_body() {
            let context = [
                ("ce-specversion", "1.0"),
                ("ce-id", "a4c5"),
                ("ce-source", "https://example.com/event-producer"),
                ("ce-type", "com.example.sampletype1"),
            ];
            let with = |extra: &[(&'static str, &'static str)]| {
                let mut attributes = context.to_vec();
                attributes.extend_from_slice(extra);
                attributes
            };
            // As the Python CloudEvents SDK's binary mode lays an event out.
            check(
                r#"{"message": "Hello World!"}"#,
                &with(&[
                    ("content-type", "application/json"),
                    ("ce-time", "2024-05-01T10:00:00.123456+00:00"),
                    ("ce-ext", "42"),
                ]),
                &[],
            );
            check(
                "plain text, \"quoted\"",
                &with(&[("content-type", "text/plain")]),
                &[],
            );
            check(
                "{}",
                &with(&[("ce-time", "2018-04-05T12:00:60Z"), ("ce-Bad", "x")]),
                &[
                    ("rfc3339", "ce-time"),
                    ("schema", "ce-Bad"),
                    ("schema", "ce-time"),
                ],
            );
            check(
                "{not json",
                &with(&[("content-type", "application/json")]),
                &[("json", "body")],
            );
            check(
                "{}",
                &[("ce-specversion", "0.3"), ("ce-id", "1")],
                &[("schema", ""), ("schema", ""), ("schema", "ce-specversion")],
            );
            check(
                "x",
                &with(&[("content-type", "text/plain"), ("ce-subject", "a\u{FFFF}")]),
                &[("charset", "ce-subject"), ("string", "ce-subject")],
            );
        }

        #[test]
        fn refuses_non_json_bodies() {
            check("hello", &[("ce-id", "1")], &[("json", "")]);
        }
    }
}
