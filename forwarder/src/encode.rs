//! The structured JSON body of an SQS message: one event, minified and safe for SQS.
//!
//! Attributes are written in the event's order, each value as its raw JSON text, tokens kept
//! verbatim. Only two things change: whitespace between tokens is dropped, and characters SQS
//! refuses in a message body are written as `\uXXXX` escapes. SQS accepts
//! `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`; in valid JSON the other
//! characters (U+FFFE, U+FFFF, raw control characters) can only occur inside strings, where an
//! escape means the same character.

use crate::event::Event;

/// Writes the structured JSON body of an event: attributes in order, no nulls, no insignificant
/// whitespace, and only characters SQS accepts.
pub fn encode(event: &Event) -> String {
    let capacity = 2 + event
        .attributes()
        .map(|(name, value)| name.len() + value.get().len() + 4)
        .sum::<usize>();
    let mut out = String::with_capacity(capacity);
    out.push('{');
    for (i, (name, value)) in event.attributes().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Names are `[a-z0-9]+` or `data_base64`: nothing to escape.
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        write_value(value.get(), &mut out, Whitespace::Drop);
    }
    out.push('}');
    out
}

/// JSON text as it is, whitespace included, with only the characters SQS refuses written as
/// `\uXXXX` escapes (the same characters to a JSON reader): the body of a binary-mode message
/// whose data is JSON.
pub fn sqs_safe_json(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    write_value(raw, &mut out, Whitespace::Keep);
    out
}

/// Whether SQS accepts every character of `s` in a message body or attribute value.
pub fn sqs_safe(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\t' | b'\n' | b'\r' => {}
            0x00..=0x1F => return false,
            // U+FFFE and U+FFFF are EF BF BE and EF BF BF in UTF-8.
            0xEF if b.get(i + 1) == Some(&0xBF) && matches!(b.get(i + 2), Some(0xBE | 0xBF)) => {
                return false;
            }
            _ => {}
        }
        i += 1;
    }
    true
}

/// What [`write_value`] does with whitespace between tokens.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Whitespace {
    Drop,
    Keep,
}

/// Appends valid JSON text, with characters SQS refuses escaped and whitespace between tokens
/// dropped or kept. Unchanged runs are copied whole.
fn write_value(raw: &str, out: &mut String, whitespace: Whitespace) {
    let b = raw.as_bytes();
    let mut copied = 0;
    let mut i = 0;
    let mut in_string = false;
    while i < b.len() {
        if in_string {
            i += plain_run(&b[i..]);
            let Some(&c) = b.get(i) else {
                break;
            };
            match c {
                b'\\' => {
                    i += 2;
                    continue;
                }
                b'"' => in_string = false,
                0xEF if b.get(i + 1) == Some(&0xBF)
                    && matches!(b.get(i + 2), Some(0xBE | 0xBF)) =>
                {
                    out.push_str(&raw[copied..i]);
                    out.push_str(if b[i + 2] == 0xBE {
                        "\\ufffe"
                    } else {
                        "\\uffff"
                    });
                    i += 3;
                    copied = i;
                    continue;
                }
                // Not valid JSON, but escaping keeps the body valid and safe.
                0x00..=0x1F => {
                    out.push_str(&raw[copied..i]);
                    out.push_str("\\u00");
                    out.push(char::from(HEX[usize::from(c >> 4)]));
                    out.push(char::from(HEX[usize::from(c & 0xF)]));
                    i += 1;
                    copied = i;
                    continue;
                }
                _ => {}
            }
        } else {
            match b[i] {
                b'"' => in_string = true,
                b' ' | b'\t' | b'\n' | b'\r' if whitespace == Whitespace::Drop => {
                    out.push_str(&raw[copied..i]);
                    i += 1;
                    copied = i;
                    continue;
                }
                _ => {}
            }
        }
        i += 1;
    }
    out.push_str(&raw[copied..]);
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The length of the run at the start of `s`, inside a string, that is copied as it is: up to the
/// next quote, backslash, 0xEF (the first byte of U+FFFE and U+FFFF) or control character. The
/// search is memchr's; the test for control characters has no branch, so it is vectorised, and
/// the run is searched again byte by byte only when it holds one (never in valid JSON).
fn plain_run(s: &[u8]) -> usize {
    let end = memchr::memchr3(b'"', b'\\', 0xEF, s).unwrap_or(s.len());
    let run = &s[..end];
    if run.iter().fold(false, |control, &b| control | (b < 0x20)) {
        run.iter().position(|&b| b < 0x20).unwrap_or(end)
    } else {
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;

    /// Parses `line` and checks its encoded body.
    fn check(line: &str, expected: &str) {
        let event = parse_event(line.as_bytes()).expect("the test event is valid");
        let body = encode(&event);
        assert_eq!(body, expected);
        assert!(sqs_safe(&body), "{body:?}");
        // serde_json's Value refuses numbers beyond f64, so read the body back as an event.
        let again = parse_event(body.as_bytes()).expect("the body is a valid event");
        assert_eq!(encode(&again), body);
    }

    const IOT: &str = r#"{"specversion":"1.0","id":"aa12dc4c-c5ed-4b46-92e5-5a726f4daa81","source":"golioth/app/gateway/coap","type":"DEVICE_STREAM_TYPE","subject":"stream","datacontenttype":"application/json","time":"2022-01-27T16:17:06.458868Z","data":{"data":{"temp":32},"device_id":"612d3cecf3ee17d321adbec6","project_id":"my-first-project","timestamp":{"nanos":174295000,"seconds":1643300226}}}"#;

    #[test]
    fn iot_example_is_unchanged() {
        check(IOT, IOT);
    }

    #[test]
    fn order_is_kept_and_nulls_left_out() {
        check(
            r#"{"type":"t","data":[1],"ext":null,"source":"/s","id":"1","specversion":"1.0","subject":null}"#,
            r#"{"type":"t","data":[1],"source":"/s","id":"1","specversion":"1.0"}"#,
        );
    }

    #[test]
    fn whitespace_is_dropped_outside_strings() {
        check(
            "{ \"specversion\" : \"1.0\" ,\n\t\"id\":\"a b\",\r\n\"source\":\"/s\",\"type\":\"t\",\"data\": { \"k\" : [ 1 , \"x y\" , { } ] } }\n",
            r#"{"specversion":"1.0","id":"a b","source":"/s","type":"t","data":{"k":[1,"x y",{}]}}"#,
        );
    }

    #[test]
    fn numbers_are_byte_exact() {
        check(
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":[123456789012345678901234567890,0.1000000000000000055511151231257827,-1.0E+400,1e-9999,-0]}"#,
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":[123456789012345678901234567890,0.1000000000000000055511151231257827,-1.0E+400,1e-9999,-0]}"#,
        );
    }

    #[test]
    fn escapes_are_kept() {
        check(
            r#"{"specversion":"1.0","id":"\u0031","source":"\/s","type":"t\"\\","data":"\ud83d\ude00 \n \u0000"}"#,
            r#"{"specversion":"1.0","id":"\u0031","source":"\/s","type":"t\"\\","data":"\ud83d\ude00 \n \u0000"}"#,
        );
        // The key is decoded: names are written as their plain text.
        check(
            r#"{"specversion":"1.0","\u0069d":"1","source":"/s","type":"t"}"#,
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#,
        );
    }

    #[test]
    fn characters_sqs_refuses_are_escaped() {
        check(
            "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\",\"ext\":\"\u{FFFD}\u{10FFFD}\u{E000}\u{D7FF}\",\"data\":{\"\u{FFFF}\":\"\\\"\u{FFFE}\\\\\u{FFFF}\"}}",
            "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\",\"ext\":\"\u{FFFD}\u{10FFFD}\u{E000}\u{D7FF}\",\"data\":{\"\\uffff\":\"\\\"\\ufffe\\\\\\uffff\"}}",
        );
    }

    /// The definition, one byte at a time: outside strings whitespace is dropped, inside them
    /// U+FFFE, U+FFFF and control characters become `\\uXXXX`, and everything else is copied.
    fn reference(raw: &str) -> String {
        let mut out = String::new();
        let (mut in_string, mut escaped) = (false, false);
        for c in raw.chars() {
            if !in_string {
                in_string = c == '"';
                if !matches!(c, ' ' | '\t' | '\n' | '\r') {
                    out.push(c);
                }
                continue;
            }
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                '\u{fffe}' | '\u{ffff}' | '\0'..='\u{1f}' => {
                    out.push_str(&format!("\\u{:04x}", u32::from(c)));
                    continue;
                }
                _ => {}
            }
            out.push(c);
        }
        out
    }

    /// The fast path through strings agrees with the definition on strings and whitespace
    /// mixed at every length around each special character.
    #[test]
    fn skipping_plain_runs_agrees_with_the_definition() {
        let pieces = [
            "\"", "\\\\", "\\\"", " ", "\n", "\u{fffe}", "\u{ffff}", "\u{fffd}", "\u{f000}",
            "\u{1}", "\u{1f}", "é", "{", ":", "1",
        ];
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..20_000 {
            let mut raw = String::new();
            for _ in 0..rng.usize(0..8) {
                raw.push_str(&"a".repeat(rng.usize(0..70)));
                raw.push_str(pieces[rng.usize(0..pieces.len())]);
            }
            let mut out = String::new();
            write_value(&raw, &mut out, Whitespace::Drop);
            assert_eq!(out, reference(&raw), "{raw:?}");
        }
    }

    #[test]
    fn raw_control_characters_are_escaped() {
        let mut out = String::new();
        write_value("\"a\u{1}b\u{1f}\"", &mut out, Whitespace::Drop);
        assert_eq!(out, "\"a\\u0001b\\u001f\"");
    }

    #[test]
    fn binary_bodies_keep_whitespace_and_escape_what_sqs_refuses() {
        let raw = "{ \"k\" :\n [1.50, \"\u{FFFE}\\u0041\"] }";
        assert_eq!(
            sqs_safe_json(raw),
            "{ \"k\" :\n [1.50, \"\\ufffe\\u0041\"] }"
        );
        assert_eq!(sqs_safe_json("\"plain\""), "\"plain\"");
    }

    #[test]
    fn wrapped_payload() {
        let event = Event::wrap(b"{ \"n\": 1.50 }", "/s", "t", None).expect("valid payload");
        let body = encode(&event);
        assert!(body.starts_with(r#"{"specversion":"1.0","id":""#), "{body}");
        assert!(body.ends_with(r#"Z","data":{"n":1.50}}"#), "{body}");
    }

    mod safe {
        use super::super::*;

        fn check(input: &str, expected: bool) {
            assert_eq!(sqs_safe(input), expected, "{input:?}");
        }

        #[test]
        fn allowed_characters() {
            check("", true);
            check("plain ASCII ~\u{7f}", true);
            check("\t\n\r", true);
            check("\u{D7FF}\u{E000}\u{FFFD}\u{10000}\u{10FFFF}", true);
            check("\u{EFBF}\u{FEFF}\u{FFEF}", true);
            check("é中😀", true);
        }

        #[test]
        fn refused_characters() {
            check("\u{0}", false);
            check("a\u{1}", false);
            check("\u{8}", false);
            check("\u{B}", false);
            check("\u{C}", false);
            check("\u{1F}", false);
            check("\u{FFFE}", false);
            check("x\u{FFFF}", false);
        }
    }
}
