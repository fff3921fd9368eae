//! What the event module's tests share: a valid event to extend, the one `check` of a line
//! against the verdict expected, and `check_syntax` for the grammars.

use super::parse_event;

/// A valid event with `extra` members appended (`extra` starts with a comma, or is empty).
pub(super) fn event(extra: &str) -> String {
    format!(r#"{{"specversion":"1.0","id":"1","source":"/s","type":"t"{extra}}}"#)
}

/// Parses `line`; `expected` is "ok" or "<rule>: <message>".
pub(super) fn check(line: &str, expected: &str) {
    let actual = match parse_event(line.as_bytes()) {
        Ok(_) => "ok".to_owned(),
        Err(error) => format!("{}: {error}", error.rule()),
    };
    let shown: String = line.chars().take(200).collect();
    assert_eq!(actual, expected, "input: {shown}");
}

/// Checks one syntax against inputs that must be accepted or refused.
pub(super) fn check_syntax(syntax: fn(&str) -> bool, accepted: &[&str], refused: &[&str]) {
    for input in accepted {
        assert!(syntax(input), "should accept {input:?}");
    }
    for input in refused {
        assert!(!syntax(input), "should refuse {input:?}");
    }
}
