//! Renders a fidelity run as plain text, JSON or JUnit XML (one test case per vector, named by
//! its id, and one per unexpected message).

use std::fmt::Write as _;

use serde_json::json;

use crate::fidelity::{Fault, VectorResult};
use crate::report::{Format, xml_escape};
use crate::run::RunReport;

/// Renders `report` in `format`.
pub fn render(report: &RunReport, format: Format) -> String {
    match format {
        Format::Text => text(report),
        Format::Json => json(report),
        Format::Junit => junit(report),
    }
}

/// `ok   ID` or `FAIL ID (line N): fault; fault` per vector, `FAIL unexpected message ID: why`,
/// the producer's exit, then a summary line.
pub fn text(report: &RunReport) -> String {
    let mut out = String::new();
    for result in &report.fidelity.vectors {
        if result.faults.is_empty() {
            let _ = writeln!(out, "ok   {}", result.id);
        } else {
            let _ = writeln!(
                out,
                "FAIL {} (line {}): {}",
                result.id,
                result.line,
                faults(result)
            );
        }
    }
    for stranger in &report.fidelity.unexpected {
        let _ = writeln!(
            out,
            "FAIL unexpected message {}: {}",
            stranger.message_id, stranger.reason
        );
    }
    if !report.producer.success() {
        let _ = writeln!(out, "FAIL producer: {}", producer(report));
    }
    let intact = report
        .fidelity
        .vectors
        .iter()
        .filter(|v| v.faults.is_empty())
        .count();
    let _ = writeln!(
        out,
        "{intact} of {} vectors delivered once and intact, {} unexpected message(s); producer {}",
        report.fidelity.vectors.len(),
        report.fidelity.unexpected.len(),
        producer(report)
    );
    out
}

/// One JSON document: `passed`, `producer`, `vectors` (id, line, delivered, faults) and
/// `unexpected`.
pub fn json(report: &RunReport) -> String {
    let document = json!({
        "passed": report.passed(),
        "producer": report.producer,
        "vectors": report.fidelity.vectors,
        "unexpected": report.fidelity.unexpected,
    });
    format!("{document:#}\n")
}

/// JUnit XML: a test case per vector (named by its id), per unexpected message, and one for
/// the producer's exit.
pub fn junit(report: &RunReport) -> String {
    let mut cases = Vec::new();
    for result in &report.fidelity.vectors {
        let failure = (!result.faults.is_empty()).then(|| faults(result));
        cases.push(("cloudevents.fidelity.vector", result.id.clone(), failure));
    }
    for stranger in &report.fidelity.unexpected {
        cases.push((
            "cloudevents.fidelity.unexpected",
            stranger.message_id.clone(),
            Some(stranger.reason.clone()),
        ));
    }
    let exit = (!report.producer.success()).then(|| producer(report));
    cases.push(("cloudevents.fidelity.producer", "exit".to_owned(), exit));
    let failures = cases.iter().filter(|(_, _, f)| f.is_some()).count();
    let counts = format!(
        r#"tests="{}" failures="{failures}" errors="0""#,
        cases.len()
    );
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, r#"<testsuites name="conformance-run" {counts}>"#);
    let _ = writeln!(out, r#"  <testsuite name="fidelity" {counts} skipped="0">"#);
    for (class, name, failure) in cases {
        let name = xml_escape(&name);
        let _ = write!(out, r#"    <testcase classname="{class}" name="{name}""#);
        match failure {
            None => out.push_str("/>\n"),
            Some(failure) => {
                let failure = xml_escape(&failure);
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{failure}\">{failure}</failure>\n    </testcase>"
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn faults(result: &VectorResult) -> String {
    result
        .faults
        .iter()
        .map(|fault| match fault {
            Fault::Missing => "missing".to_owned(),
            Fault::Duplicated { copies } => format!("duplicated ({copies} copies)"),
            Fault::Altered { differences } => format!("altered: {}", differences.join(", ")),
            Fault::OutOfOrder { group, after } => {
                format!("out of order: arrived after {after} in group {group:?}")
            }
            Fault::NotConformant { problems } => {
                format!("not conformant: {}", problems.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn producer(report: &RunReport) -> String {
    use crate::run::ProducerExit;
    match &report.producer {
        ProducerExit::Exited { code: 0 } => "exited with 0".to_owned(),
        ProducerExit::Exited { code } => format!("exited with {code}"),
        ProducerExit::Signalled => "ended by a signal".to_owned(),
        ProducerExit::TimedOut { seconds } => format!("killed after the {seconds} s timeout"),
    }
}
