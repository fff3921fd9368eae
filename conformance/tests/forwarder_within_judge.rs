//! Forwarder ⊆ judge: every event the forwarder accepts (parse, validate, encode, in process) is
//! passed by the conformance judge, over generated edge cases.
//!
//! Timestamps and IP-literals come with their validity decided by construction from RFC 3339 and
//! RFC 3986, independently of both the forwarder's and the judge's parsers; the forwarder must
//! agree with that oracle, and the judge must pass whatever the forwarder accepts.

use proptest::prelude::*;
use proptest::sample::select;

use conformance::{Message, judge};
use forwarder::encode::encode;
use forwarder::event::parse_event;

mod strategies {
    use proptest::prelude::*;
    use proptest::sample::select;

    /// The days of a month in the proleptic Gregorian calendar.
    fn days_in_month(year: u32, month: u32) -> u32 {
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

    prop_compose! {
        /// A timestamp near the edges (leap seconds at and away from 23:59:60 UTC, offsets,
        /// lower-case `t`/`z`, long fractions), with whether RFC 3339 allows it.
        pub fn time()(
            year in select(vec![0u32, 1900, 2000, 2016, 2100, 9999]),
            month in 0u32..=13,
            day in select(vec![0u32, 1, 28, 29, 30, 31, 32]),
            hour in select(vec![0u32, 1, 12, 18, 22, 23, 24]),
            minute in select(vec![0u32, 29, 30, 58, 59, 60]),
            second in select(vec![0u32, 59, 60, 61]),
            fraction in select(vec!["", ".", ".5", ".123456789", ".1234567890123456789012"]),
            separator in select(vec!["T", "t"]),
            offset in prop_oneof![
                select(vec![("Z".to_owned(), 0i64), ("z".to_owned(), 0)]),
                (select(vec!['+', '-']), select(vec![0i64, 1, 5, 14, 23]), select(vec![0i64, 30, 59]))
                    .prop_map(|(sign, h, m)| {
                        let minutes = if sign == '-' { -(h * 60 + m) } else { h * 60 + m };
                        (format!("{sign}{h:02}:{m:02}"), minutes)
                    }),
            ],
        ) -> (String, bool) {
            let utc_minute = (i64::from(hour * 60 + minute) - offset.1).rem_euclid(24 * 60);
            let valid = (1..=12).contains(&month)
                && (1..=days_in_month(year, month)).contains(&day)
                && hour < 24
                && minute < 60
                && (second < 60 || (second == 60 && utc_minute == 23 * 60 + 59))
                && fraction != ".";
            let time = format!(
                "{year:04}-{month:02}-{day:02}{separator}{hour:02}:{minute:02}:{second:02}{fraction}{}",
                offset.0
            );
            (time, valid)
        }
    }

    /// A `source` with an authority whose host is an IP-literal, with whether RFC 3986 allows it.
    pub fn ip_literal_source() -> impl Strategy<Value = (String, bool)> {
        let valid = vec![
            "::",
            "::1",
            "2001:db8::7",
            "1:2:3:4:5:6:7:8",
            "::ffff:192.0.2.1",
            "v7.x",
            "V1f.a:b",
            "vF.!$&'()*+,;=",
        ];
        let invalid = vec![
            "zz",
            "",
            "v.x",
            "v7.",
            "vz.x",
            "1:2:3:4:5:6:7:8:9",
            "12345::",
            "::1%25eth0",
            ":::",
            "1::2::3",
            "::256.0.0.1",
            "[::1]",
        ];
        prop_oneof![
            select(valid).prop_map(|inside| (inside, true)),
            select(invalid).prop_map(|inside| (inside, false)),
        ]
        .prop_flat_map(|(inside, valid)| {
            select(vec!["//", "http://", "x://u@"])
                .prop_map(move |prefix| (format!("{prefix}[{inside}]/x"), valid))
        })
    }

    /// A `source` with percent-escapes valid and not, as JSON string content.
    pub fn escaped_source() -> impl Strategy<Value = String> {
        select(vec![
            "/a%20b",
            "/a%2",
            "/a%zz",
            "/%",
            "urn:x%41",
            "?q=%E2%82%AC",
            "#%",
            "a:b",
            "/a b",
        ])
        .prop_map(str::to_owned)
    }

    /// A JSON string's content (already escaped) that is an edge case for CloudEvents strings:
    /// control characters, noncharacters, surrogates paired and not.
    pub fn hostile_text() -> impl Strategy<Value = String> {
        select(vec![
            "x",
            "\\u0000",
            "\\u001f",
            "\\u007f",
            "\\u0085",
            "\\u009f",
            "\\ufdd0",
            "\\ufdef",
            "\\ufffe",
            "\\uffff",
            "\\ud83f\\udffe",
            "\\udbff\\udfff",
            "\\ud800",
            "\\udc00",
            "a\\ud800b",
            "\\ud83d\\ude00",
            "\u{fffd}",
            "\\\\ud800",
            "\u{a0}",
            "",
        ])
        .prop_map(str::to_owned)
    }

    /// An extension value at the edges of the 32-bit integer range, or another JSON value.
    pub fn extension_value() -> impl Strategy<Value = String> {
        select(vec![
            "2147483647",
            "2147483648",
            "-2147483648",
            "-2147483649",
            "0",
            "-0",
            "1.0",
            "1e3",
            "true",
            "null",
            "\"s\"",
            "{}",
            "[]",
        ])
        .prop_map(str::to_owned)
    }

    /// A content type and data, JSON or not, string or not.
    pub fn content_and_data() -> impl Strategy<Value = String> {
        (
            proptest::option::of(select(vec![
                "text/plain",
                "application/json",
                "application/vnd.x+json; charset=utf-8",
                "Application/JSON",
                "application/jsonx",
                "application/xml",
                "text/json",
            ])),
            proptest::option::of(prop_oneof![
                hostile_text().prop_map(|text| format!("\"{text}\"")),
                select(vec![
                    "{\"a\":1}",
                    "[1,2]",
                    "3",
                    "true",
                    "{\"k\":\"\\ud800\"}"
                ])
                .prop_map(str::to_owned),
            ]),
        )
            .prop_map(|(content_type, data)| {
                let mut members = String::new();
                if let Some(content_type) = content_type {
                    members.push_str(&format!(",\"datacontenttype\":\"{content_type}\""));
                }
                if let Some(data) = data {
                    members.push_str(&format!(",\"data\":{data}"));
                }
                members
            })
    }
}

/// The event line with the given `source`, and `extra` members (each starting with a comma).
fn line(source: &str, extra: &str) -> String {
    format!(r#"{{"specversion":"1.0","id":"1","source":"{source}","type":"t"{extra}}}"#)
}

/// Asserts that if the forwarder accepts `line`, the judge passes what it would send; returns
/// whether the forwarder accepted.
fn within_judge(line: &str) -> Result<bool, TestCaseError> {
    let Ok(event) = parse_event(line.as_bytes()) else {
        return Ok(false);
    };
    let body = encode(&event);
    let verdict = judge(&Message {
        message_id: "m".to_owned(),
        body: body.clone(),
        ..Message::default()
    });
    prop_assert!(
        verdict.conformant,
        "forwarder accepted, judge refused:\n{line}\n{body}\n{:?}",
        verdict.problems
    );
    Ok(true)
}

proptest! {
    #[test]
    fn times((time, valid) in strategies::time()) {
        let accepted = within_judge(&line("/s", &format!(",\"time\":\"{time}\"")))?;
        prop_assert_eq!(accepted, valid, "{}", time);
    }

    #[test]
    fn ip_literals((source, valid) in strategies::ip_literal_source()) {
        let accepted = within_judge(&line(&source, ""))?;
        prop_assert_eq!(accepted, valid, "{}", source);
    }

    #[test]
    fn percent_escapes(source in strategies::escaped_source()) {
        within_judge(&line(&source, ""))?;
    }

    #[test]
    fn strings_and_data(
        attribute in select(vec!["id", "type", "subject", "ext", "data"]),
        text in strategies::hostile_text(),
    ) {
        let member = format!("\"{attribute}\":\"{text}\"");
        let event = if matches!(attribute, "id" | "type") {
            line("/s", "").replace(&format!("\"{attribute}\":\"{}\"", if attribute == "id" { "1" } else { "t" }), &member)
        } else {
            line("/s", &format!(",{member}"))
        };
        within_judge(&event)?;
        within_judge(&line(&format!("/s{text}"), ""))?;
    }

    #[test]
    fn content_types_and_data(members in strategies::content_and_data()) {
        within_judge(&line("/s", &members))?;
    }

    #[test]
    fn extension_integers(value in strategies::extension_value()) {
        within_judge(&line("/s", &format!(",\"ext\":{value}")))?;
    }
}
