//! Renders verdicts as plain text, JSON or JUnit XML.
//!
//! No format echoes message bodies: only message ids, rule ids, paths and
//! the problems' messages.

use std::fmt::Write as _;

use serde_json::json;

use crate::{Message, Problem, Verdict};

/// An output format of the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per message, then a summary line.
    #[default]
    Text,
    /// One JSON document: the messages and a summary.
    Json,
    /// JUnit XML: one test case per message.
    Junit,
}

/// Renders `results` in `format`.
pub fn render(results: &[(Message, Verdict)], format: Format) -> String {
    match format {
        Format::Text => text(results),
        Format::Json => json(results),
        Format::Junit => junit(results),
    }
}

/// `ok  <message-id>` or `FAIL <message-id>: rule path: message; ...` per
/// message, then `N conformant, M not conformant`.
pub fn text(results: &[(Message, Verdict)]) -> String {
    let mut out = String::new();
    for (message, verdict) in results {
        let id = one_line(&message.message_id);
        if verdict.conformant {
            let _ = writeln!(out, "ok  {id}");
        } else {
            let problems = verdict
                .problems
                .iter()
                .map(describe)
                .collect::<Vec<_>>()
                .join("; ");
            let _ = writeln!(out, "FAIL {id}: {problems}");
        }
    }
    let summary = Summary::of(results);
    let _ = writeln!(
        out,
        "{} conformant, {} not conformant",
        summary.conformant, summary.not_conformant
    );
    out
}

/// `{"messages": [{"message_id", "conformant", "problems": [{"rule", "path",
/// "message"}]}], "summary": {"conformant", "not_conformant"}}`, pretty-printed.
pub fn json(results: &[(Message, Verdict)]) -> String {
    let summary = Summary::of(results);
    let messages: Vec<_> = results
        .iter()
        .map(|(message, verdict)| {
            json!({
                "message_id": message.message_id,
                "conformant": verdict.conformant,
                "problems": verdict.problems,
            })
        })
        .collect();
    let document = json!({
        "messages": messages,
        "summary": {
            "conformant": summary.conformant,
            "not_conformant": summary.not_conformant,
        },
    });
    format!("{document:#}\n")
}

/// JUnit XML: one `<testcase>` per message, with a `<failure>` listing the
/// problems of each non-conformant one.
pub fn junit(results: &[(Message, Verdict)]) -> String {
    let summary = Summary::of(results);
    let counts = format!(
        r#"tests="{}" failures="{}" errors="0""#,
        results.len(),
        summary.not_conformant
    );
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, r#"<testsuites name="conformance" {counts}>"#);
    let _ = writeln!(
        out,
        r#"  <testsuite name="cloudevents" {counts} skipped="0">"#
    );
    for (message, verdict) in results {
        let name = xml_escape(&message.message_id);
        let _ = write!(
            out,
            r#"    <testcase classname="cloudevents.sqs" name="{name}""#
        );
        if verdict.conformant {
            out.push_str("/>\n");
            continue;
        }
        let headline = format!(
            "{} problem(s): {}",
            verdict.problems.len(),
            verdict
                .problems
                .iter()
                .map(|p| p.rule.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let details = verdict
            .problems
            .iter()
            .map(describe)
            .collect::<Vec<_>>()
            .join("\n");
        let _ = write!(
            out,
            ">\n      <failure type=\"not-conformant\" message=\"{}\">{}</failure>\n    </testcase>\n",
            xml_escape(&headline),
            xml_escape(&details)
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[derive(Debug)]
struct Summary {
    conformant: usize,
    not_conformant: usize,
}

impl Summary {
    fn of(results: &[(Message, Verdict)]) -> Self {
        let conformant = results.iter().filter(|(_, v)| v.conformant).count();
        Summary {
            conformant,
            not_conformant: results.len() - conformant,
        }
    }
}

/// `rule path: message`, or `rule: message` when the problem is about the
/// body as a whole.
fn describe(problem: &Problem) -> String {
    let message = one_line(&problem.message);
    if problem.path.is_empty() {
        format!("{}: {message}", problem.rule)
    } else {
        format!("{} {}: {message}", problem.rule, one_line(&problem.path))
    }
}

/// Replaces control characters so that one message stays on one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Escapes XML markup, and replaces the characters XML 1.0 cannot carry at
/// all (even as references) with U+FFFD.
pub(crate) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}' => {
                out.push(c);
            }
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::report::{Format, render};
    use crate::{Message, Problem, Verdict};

    fn results() -> Vec<(Message, Verdict)> {
        let message = |id: &str| Message {
            message_id: id.to_owned(),
            ..Message::default()
        };
        vec![
            (
                message("id-1"),
                Verdict {
                    conformant: true,
                    problems: Vec::new(),
                },
            ),
            (
                message("id<2>&\"'"),
                Verdict {
                    conformant: false,
                    problems: vec![
                        Problem {
                            rule: "schema".to_owned(),
                            path: "/specversion".to_owned(),
                            message: "const \"1.0\"\nexpected".to_owned(),
                        },
                        Problem {
                            rule: "json".to_owned(),
                            path: String::new(),
                            message: "bad <body> \u{1}".to_owned(),
                        },
                    ],
                },
            ),
        ]
    }

    fn check(format: Format, expected: &str) {
        assert_eq!(render(&results(), format), expected);
    }

    #[test]
    fn renders_text() {
        check(
            Format::Text,
            "ok  id-1\n\
             FAIL id<2>&\"': schema /specversion: const \"1.0\" expected; json: bad <body>  \n\
             1 conformant, 1 not conformant\n",
        );
    }

    #[test]
    fn renders_json() {
        let value: serde_json::Value =
            serde_json::from_str(&render(&results(), Format::Json)).expect("valid JSON");
        assert_eq!(
            value,
            serde_json::json!({
                "messages": [
                    {"message_id": "id-1", "conformant": true, "problems": []},
                    {"message_id": "id<2>&\"'", "conformant": false, "problems": [
                        {"rule": "schema", "path": "/specversion", "message": "const \"1.0\"\nexpected"},
                        {"rule": "json", "path": "", "message": "bad <body> \u{1}"},
                    ]},
                ],
                "summary": {"conformant": 1, "not_conformant": 1},
            })
        );
    }

    #[test]
    fn renders_junit() {
        check(
            Format::Junit,
            r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="conformance" tests="2" failures="1" errors="0">
  <testsuite name="cloudevents" tests="2" failures="1" errors="0" skipped="0">
    <testcase classname="cloudevents.sqs" name="id-1"/>
    <testcase classname="cloudevents.sqs" name="id&lt;2&gt;&amp;&quot;&apos;">
      <failure type="not-conformant" message="2 problem(s): schema, json">schema /specversion: const &quot;1.0&quot; expected&#10;json: bad &lt;body&gt;  </failure>
    </testcase>
  </testsuite>
</testsuites>
"#,
        );
    }

    #[test]
    fn renders_an_empty_run() {
        assert_eq!(
            render(&[], Format::Text),
            "0 conformant, 0 not conformant\n"
        );
    }
}
