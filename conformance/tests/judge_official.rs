//! The judge against the official CloudEvents material, found at test time
//! by `testkit::official` and never copied into the project:
//!
//! - it accepts every case of `format-tests/json/valid-events.json` and
//!   refuses every case of `invalid-events.json`, our schema alone refusing
//!   them too;
//! - it is stricter than the official `cloudevents.schema.json`: whatever it
//!   accepts, official cases or generated events, the official schema accepts.

use proptest::prelude::*;
use serde_json::Value;

use conformance::{judge_event_json, schema};
use testkit::official::{cases, read};

#[test]
fn judge_accepts_every_valid_event() {
    let refused: Vec<String> = cases("valid-events.json")
        .into_iter()
        .filter_map(|case| {
            let verdict = judge_event_json(case.event.get());
            (!verdict.conformant).then(|| format!("{}: {:?}", case.id, verdict.problems))
        })
        .collect();
    assert!(
        refused.is_empty(),
        "valid cases refused:\n{}",
        refused.join("\n")
    );
}

#[test]
fn judge_refuses_every_invalid_event() {
    let accepted: Vec<String> = cases("invalid-events.json")
        .into_iter()
        .filter(|case| judge_event_json(case.event.get()).conformant)
        .map(|case| case.id)
        .collect();
    assert!(accepted.is_empty(), "invalid cases accepted: {accepted:?}");
}

#[test]
fn our_schema_alone_refuses_every_invalid_event() {
    let validator = compile(schema());
    let accepted: Vec<String> = cases("invalid-events.json")
        .into_iter()
        .filter(|case| validator.is_valid(&parse(case.event.get())))
        .map(|case| case.id)
        .collect();
    assert!(
        accepted.is_empty(),
        "invalid cases our schema accepts: {accepted:?}"
    );
}

#[test]
fn official_schema_accepts_the_valid_events() {
    let official = official();
    let refused: Vec<String> = cases("valid-events.json")
        .into_iter()
        .filter(|case| !official.is_valid(&parse(case.event.get())))
        .map(|case| case.id)
        .collect();
    assert!(
        refused.is_empty(),
        "valid cases the official schema refuses: {refused:?}"
    );
}

/// Generated conformant events: the judge accepts them (so the property
/// below is not vacuous) and so does the official schema.
#[test]
fn official_schema_accepts_generated_conformant_events() {
    let official = official();
    proptest!(|(event in strategies::conformant_event())| {
        let verdict = judge_event_json(&event);
        prop_assert!(verdict.conformant, "{event}\n{:#?}", verdict.problems);
        prop_assert!(official.is_valid(&parse(&event)), "{event}");
    });
}

/// Events mixing valid and invalid members: whenever the judge accepts one,
/// the official schema does too.
#[test]
fn official_schema_accepts_whatever_the_judge_accepts() {
    let official = official();
    proptest!(|(event in strategies::mixed_event())| {
        if judge_event_json(&event).conformant {
            prop_assert!(official.is_valid(&parse(&event)), "{event}");
        }
    });
}

/// The official schema, compiled with format assertions on, like ours. It is
/// read before any generated case runs, so that missing material fails with
/// the instructions rather than inside proptest.
fn official() -> jsonschema::Validator {
    compile(&parse(&read("cloudevents.schema.json")))
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|err| panic!("{err}: {text}"))
}

fn compile(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("schema compiles")
}

mod strategies {
    use base64::Engine as _;
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    const CORE: [&str; 8] = [
        "specversion",
        "id",
        "source",
        "type",
        "datacontenttype",
        "dataschema",
        "subject",
        "time",
    ];

    /// A non-empty CloudEvents String: no control characters, no
    /// noncharacters (`\PC` leaves out all of category C).
    fn text() -> impl Strategy<Value = String> {
        prop_oneof!["[ -~]{1,30}", "\\PC{1,12}"]
    }

    fn extension_name() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,20}".prop_filter("not a core attribute", |name| {
            !CORE.contains(&name.as_str()) && name != "data"
        })
    }

    fn extension_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            prop_oneof!["[ -~]{0,30}", "\\PC{0,12}"].prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            Just(Value::Null),
            timestamp().prop_map(Value::from),
        ]
    }

    fn source() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("https://github.com/cloudevents".to_owned()),
            Just("mailto:cncf-wg-serverless@lists.cncf.io".to_owned()),
            Just("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66".to_owned()),
            Just("1-555-123-4567".to_owned()),
            Just("#fragment".to_owned()),
            "/[a-z0-9_.-]{1,10}(/[a-z0-9_.-]{1,10}){0,3}",
            "[a-z]{1,10}(/[a-z0-9]{1,10}){0,3}",
            "https://[a-z]{1,10}\\.example(/[a-z0-9]{1,10}){0,3}(\\?[a-z]=[0-9]{1,3})?",
        ]
    }

    prop_compose! {
        /// An RFC 3339 date-time on a real calendar date, with or without a
        /// fraction, in UTC or at an offset.
        fn timestamp()(
            year in 0u32..=9999,
            month in 1u32..=12,
            day in 1u32..=31,
            hour in 0u32..=23,
            minute in 0u32..=59,
            second in 0u32..=59,
            fraction in proptest::option::of("[0-9]{1,9}"),
            offset in proptest::option::of((prop_oneof![Just('+'), Just('-')], 0u32..=23, 0u32..=59)),
            lower_case in any::<bool>(),
        ) -> String {
            let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
            let last_day = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            let (t, z) = if lower_case { ('t', 'z') } else { ('T', 'Z') };
            let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
            let offset = match offset {
                Some((sign, h, m)) => format!("{sign}{h:02}:{m:02}"),
                None => z.to_string(),
            };
            format!(
                "{year:04}-{month:02}-{:02}{t}{hour:02}:{minute:02}:{second:02}{fraction}{offset}",
                day.min(last_day)
            )
        }
    }

    fn media_type() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("application/json".to_owned()),
            Just("application/json; charset=utf-8".to_owned()),
            Just("text/plain".to_owned()),
            Just("text/plain;charset=\"utf-8\"".to_owned()),
            Just("application/octet-stream".to_owned()),
            Just("application/vnd.apache.thrift.binary".to_owned()),
            Just("application/cloudevents+json".to_owned()),
            "[a-z]{1,10}/[a-z0-9.+-]{1,15}(; ?[a-z]{1,8}=[a-zA-Z0-9-]{1,8})?",
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1.0e9f64..1.0e9).prop_map(Value::from),
            ".{0,20}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-zA-Z_.]{0,8}", inner, 0..4)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    /// What follows the attributes.
    #[derive(Debug, Clone)]
    enum Payload {
        None,
        Data(Value),
        Binary(Vec<u8>),
    }

    fn payload() -> impl Strategy<Value = Payload> {
        prop_oneof![
            Just(Payload::None),
            json_value().prop_map(Payload::Data),
            prop::collection::vec(any::<u8>(), 0..40).prop_map(Payload::Binary),
        ]
    }

    prop_compose! {
        /// A CloudEvent the spec allows, serialized as JSON text.
        pub(super) fn conformant_event()(
            id in text(),
            source in source(),
            event_type in text(),
            datacontenttype in proptest::option::of(proptest::option::of(media_type())),
            dataschema in proptest::option::of(proptest::option::of("https://example\\.com/schemas/[a-z0-9]{1,10}")),
            subject in proptest::option::of(proptest::option::of(text())),
            time in proptest::option::of(proptest::option::of(timestamp())),
            extensions in prop::collection::btree_map(extension_name(), extension_value(), 0..5),
            payload in payload(),
        ) -> String {
            let mut event = Map::new();
            event.insert("specversion".to_owned(), json!("1.0"));
            event.insert("id".to_owned(), json!(id));
            event.insert("source".to_owned(), json!(source));
            event.insert("type".to_owned(), json!(event_type));
            // The outer option decides presence, the inner one a null value.
            let optional = [
                ("datacontenttype", datacontenttype.clone()),
                ("dataschema", dataschema),
                ("subject", subject),
                ("time", time),
            ];
            for (name, value) in optional {
                if let Some(value) = value {
                    event.insert(name.to_owned(), value.map_or(Value::Null, Value::from));
                }
            }
            for (name, value) in extensions {
                event.insert(name, value);
            }
            let declares_json = match datacontenttype.flatten() {
                Some(media_type) => {
                    let essence = media_type.split(';').next().unwrap_or_default().to_owned();
                    essence.ends_with("/json") || essence.ends_with("+json")
                }
                None => true,
            };
            match payload {
                Payload::None => {}
                Payload::Data(data) if !declares_json => {
                    event.insert("data".to_owned(), Value::from(data.to_string()));
                }
                Payload::Data(data) => {
                    event.insert("data".to_owned(), data);
                }
                Payload::Binary(bytes) => {
                    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
                    event.insert("data_base64".to_owned(), json!(encoded));
                }
            }
            Value::Object(event).to_string()
        }
    }

    /// A member value as JSON text, valid or not for the member at hand.
    fn any_member_value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("\"1.0\"".to_owned()),
            Just("\"0.3\"".to_owned()),
            Just("\"\"".to_owned()),
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("1.5".to_owned()),
            Just("1e3".to_owned()),
            Just("2147483648".to_owned()),
            Just("{\"a\":1}".to_owned()),
            Just("\"TWE=\"".to_owned()),
            Just("\"TWE\"".to_owned()),
            Just("\"xyz\"".to_owned()),
            Just("\"text/plain\"".to_owned()),
            Just("\"a b\"".to_owned()),
            Just("\"2022-02-30T00:00:00Z\"".to_owned()),
            Just("\"2018-04-05T18:31Z\"".to_owned()),
            timestamp().prop_map(|t| format!("{t:?}")),
            any::<i32>().prop_map(|n| n.to_string()),
            text().prop_map(|t| Value::from(t).to_string()),
            source().prop_map(|s| Value::from(s).to_string()),
        ]
    }

    fn any_member_name() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(&CORE[..]).prop_map(str::to_owned),
            proptest::sample::select(&["data", "data_base64", "Ext", "my.ext", "ext_x", ""][..])
                .prop_map(str::to_owned),
            extension_name(),
        ]
    }

    prop_compose! {
        /// The four required attributes, mostly well-formed, then any members
        /// with any values, duplicates possible.
        pub(super) fn mixed_event()(
            specversion in prop_oneof![4 => Just("\"1.0\"".to_owned()), 1 => any_member_value()],
            id in prop_oneof![4 => text().prop_map(|t| Value::from(t).to_string()), 1 => any_member_value()],
            source in prop_oneof![4 => source().prop_map(|s| Value::from(s).to_string()), 1 => any_member_value()],
            event_type in prop_oneof![4 => Just("\"t\"".to_owned()), 1 => any_member_value()],
            members in prop::collection::vec((any_member_name(), any_member_value()), 0..6),
        ) -> String {
            let mut all = vec![
                ("specversion".to_owned(), specversion),
                ("id".to_owned(), id),
                ("source".to_owned(), source),
                ("type".to_owned(), event_type),
            ];
            all.extend(members);
            let members: Vec<String> = all
                .into_iter()
                .map(|(name, value)| format!("{}:{value}", Value::from(name)))
                .collect();
            format!("{{{}}}", members.join(","))
        }
    }
}
