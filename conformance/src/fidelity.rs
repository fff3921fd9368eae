//! The fidelity verdict: what a producer delivered, compared with what it was given.
//!
//! Each vector is a CloudEvent (one NDJSON line) that the producer under test was asked to
//! deliver; each message is what the queue held afterwards, read back in full and in order.
//! A message is matched to its vector by `source` and `id` (which CloudEvents makes unique),
//! in either content mode. Then, per vector: delivered intact, altered (and what differs),
//! missing, duplicated, out of order within its message group (FIFO), or not conformant; and
//! every message that matches no vector.
//!
//! Comparison is semantic but exact where it matters: object members in any order, strings
//! after their escapes are read (so `\u00e9` and `é` are equal, as are a character SQS refuses
//! written raw in the vector and escaped in the body), numbers by their exact tokens (`1.50` is
//! not `1.5`, `1e2` is not `100`), text data byte for byte, binary data by its bytes. A
//! structured message must keep each attribute's JSON type; binary mode carries every context
//! attribute as a string, so there only the canonical string is compared (`42` and `"42"`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use base64::Engine as _;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::binary::{self, ContentMode};
use crate::{Message, judge, judge_event_json};

/// One vector: an event the producer was given, with its place in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vector {
    /// 1-based line number in the vector file.
    pub line: usize,
    /// The event's `id`.
    pub id: String,
    /// The event's `source`.
    pub source: String,
    /// The event, as its JSON text.
    pub text: String,
}

/// Why a vector file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("vectors line {line}: {problem}")]
pub struct VectorError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub problem: String,
}

/// What happened to one vector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VectorResult {
    /// The vector's `id`.
    pub id: String,
    /// Its line in the vector file.
    pub line: usize,
    /// How many messages carried it.
    pub delivered: usize,
    /// Everything wrong with it; empty when it arrived exactly once, intact and conformant.
    pub faults: Vec<Fault>,
}

/// One way a delivery differs from its vector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// No message carried the vector.
    Missing,
    /// More than one message carried it.
    Duplicated {
        /// How many.
        copies: usize,
    },
    /// A message carried it with differences.
    Altered {
        /// Each difference: where, and what was expected and found.
        differences: Vec<String>,
    },
    /// It arrived after a later vector of the same message group (FIFO queues only).
    OutOfOrder {
        /// The message group.
        group: String,
        /// The id of the later vector that arrived first.
        after: String,
    },
    /// The message carrying it is not a conformant CloudEvent.
    NotConformant {
        /// The judge's problems, as `rule path: message`.
        problems: Vec<String>,
    },
}

/// A message that matches no vector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unexpected {
    /// The SQS message id.
    pub message_id: String,
    /// Why it matches none.
    pub reason: String,
}

/// The whole verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fidelity {
    /// One result per vector, in file order.
    pub vectors: Vec<VectorResult>,
    /// Messages that match no vector.
    pub unexpected: Vec<Unexpected>,
}

impl Fidelity {
    /// Whether every vector arrived exactly once, intact, and nothing else arrived.
    pub fn passed(&self) -> bool {
        self.unexpected.is_empty() && self.vectors.iter().all(|v| v.faults.is_empty())
    }
}

/// Reads NDJSON vectors: each non-empty line a conformant CloudEvent, `(source, id)` unique.
pub fn read_vectors(text: &str) -> Result<Vec<Vector>, VectorError> {
    let mut vectors = Vec::new();
    let mut seen = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let error = |problem: String| VectorError {
            line: number,
            problem,
        };
        let verdict = judge_event_json(line);
        if let Some(problem) = verdict.problems.first() {
            return Err(error(format!(
                "not a conformant CloudEvent: {} {}: {}",
                problem.rule, problem.path, problem.message
            )));
        }
        let members = members(line).map_err(|err| error(err.to_string()))?;
        let string = |name: &str| {
            members
                .get(name)
                .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
                .unwrap_or_default()
        };
        let (source, id) = (string("source"), string("id"));
        if let Some(first) = seen.insert((source.clone(), id.clone()), number) {
            return Err(error(format!(
                "source {source:?} and id {id:?} were already given on line {first}"
            )));
        }
        vectors.push(Vector {
            line: number,
            id,
            source,
            text: line.to_owned(),
        });
    }
    Ok(vectors)
}

/// Compares what the queue held (in the order it was read) with the vectors. `fifo`: order
/// within each message group must follow the vector file.
pub fn compare(vectors: &[Vector], messages: &[Message], fifo: bool) -> Fidelity {
    let index: HashMap<(&str, &str), usize> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| ((v.source.as_str(), v.id.as_str()), i))
        .collect();
    let mut results: Vec<VectorResult> = vectors
        .iter()
        .map(|v| VectorResult {
            id: v.id.clone(),
            line: v.line,
            delivered: 0,
            faults: Vec::new(),
        })
        .collect();
    let mut unexpected = Vec::new();
    // The highest vector index seen so far in each message group.
    let mut latest: BTreeMap<String, usize> = BTreeMap::new();
    for message in messages {
        let received = match Received::read(message) {
            Ok(received) => received,
            Err(reason) => {
                unexpected.push(Unexpected {
                    message_id: message.message_id.clone(),
                    reason,
                });
                continue;
            }
        };
        let Some(&at) = index.get(&(received.source.as_str(), received.id.as_str())) else {
            unexpected.push(Unexpected {
                message_id: message.message_id.clone(),
                reason: format!(
                    "no vector has source {:?} and id {:?}",
                    received.source, received.id
                ),
            });
            continue;
        };
        let result = &mut results[at];
        result.delivered += 1;
        if result.delivered > 1 {
            continue;
        }
        let differences = differences(&vectors[at].text, &received);
        if !differences.is_empty() {
            result.faults.push(Fault::Altered { differences });
        }
        let verdict = judge(message);
        if !verdict.conformant {
            result.faults.push(Fault::NotConformant {
                problems: verdict
                    .problems
                    .iter()
                    .map(|p| format!("{} {}: {}", p.rule, p.path, p.message))
                    .collect(),
            });
        }
        if fifo {
            let group = message.group_id.clone().unwrap_or_default();
            match latest.get(&group) {
                Some(&later) if later > at => result.faults.push(Fault::OutOfOrder {
                    group,
                    after: vectors[later].id.clone(),
                }),
                _ => {
                    latest.insert(group, at);
                }
            }
        }
    }
    for result in &mut results {
        match result.delivered {
            0 => result.faults.insert(0, Fault::Missing),
            1 => {}
            copies => result.faults.insert(0, Fault::Duplicated { copies }),
        }
    }
    Fidelity {
        vectors: results,
        unexpected,
    }
}

/// A received message read as an event.
struct Received {
    mode: ContentMode,
    source: String,
    id: String,
    members: BTreeMap<String, Box<RawValue>>,
}

impl Received {
    fn read(message: &Message) -> Result<Received, String> {
        let mode = binary::content_mode(message);
        let text = match mode {
            ContentMode::Structured => message.body.clone(),
            ContentMode::Binary => binary::rebuild(message).0,
        };
        let members =
            members(&text).map_err(|err| format!("not an event ({mode:?} mode): {err}"))?;
        let string = |name: &str| {
            members
                .get(name)
                .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
                .ok_or_else(|| format!("not an event: no string {name}"))
        };
        Ok(Received {
            mode,
            source: string("source")?,
            id: string("id")?,
            members,
        })
    }
}

fn members(text: &str) -> Result<BTreeMap<String, Box<RawValue>>, serde_json::Error> {
    serde_json::from_str(text)
}

/// Every difference between a vector and what arrived for it.
fn differences(vector: &str, received: &Received) -> Vec<String> {
    let Ok(expected) = members(vector) else {
        return vec!["the vector is not a JSON object".to_owned()];
    };
    let names: BTreeSet<&String> = expected.keys().chain(received.members.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let path = format!("/{name}");
            let (want, got) = match (expected.get(name), received.members.get(name)) {
                (Some(want), Some(got)) => (want, got),
                (Some(_), None) => return Some(format!("{path}: missing")),
                (None, Some(got)) => return Some(format!("{path}: added ({})", shown(got.get()))),
                (None, None) => return None,
            };
            let became = || format!("{path}: {} became {}", shown(want.get()), shown(got.get()));
            if name == "data_base64" {
                (bytes(want) != bytes(got)).then(became)
            } else if received.mode == ContentMode::Binary && name != "data" {
                (canonical(want) != canonical(got)).then(became)
            } else {
                first_difference(&path, want.get(), got.get())
            }
        })
        .collect()
}

/// Where two JSON texts first differ semantically (members in any order, strings decoded,
/// numbers by token), as `pointer: expected became found`.
fn first_difference(path: &str, want: &str, got: &str) -> Option<String> {
    let became = || Some(format!("{path}: {} became {}", shown(want), shown(got)));
    let kind = |text: &str| text.trim_start().bytes().next();
    match (kind(want), kind(got)) {
        (Some(b'{'), Some(b'{')) => {
            let (Ok(want_members), Ok(got_members)) = (members(want), members(got)) else {
                return became();
            };
            let names: BTreeSet<&String> = want_members.keys().chain(got_members.keys()).collect();
            names.into_iter().find_map(|name| {
                let path = format!("{path}/{}", name.replace('~', "~0").replace('/', "~1"));
                match (want_members.get(name), got_members.get(name)) {
                    (Some(w), Some(g)) => first_difference(&path, w.get(), g.get()),
                    (Some(_), None) => Some(format!("{path}: missing")),
                    (None, Some(g)) => Some(format!("{path}: added ({})", shown(g.get()))),
                    (None, None) => None,
                }
            })
        }
        (Some(b'['), Some(b'[')) => {
            let (Ok(w), Ok(g)) = (
                serde_json::from_str::<Vec<Box<RawValue>>>(want),
                serde_json::from_str::<Vec<Box<RawValue>>>(got),
            ) else {
                return became();
            };
            if w.len() != g.len() {
                return Some(format!("{path}: {} elements became {}", w.len(), g.len()));
            }
            w.iter()
                .zip(&g)
                .enumerate()
                .find_map(|(i, (w, g))| first_difference(&format!("{path}/{i}"), w.get(), g.get()))
        }
        (Some(b'"'), Some(b'"')) => {
            let decode = |text: &str| serde_json::from_str::<String>(text).ok();
            if decode(want) == decode(got) {
                None
            } else {
                became()
            }
        }
        _ if want.trim() == got.trim() => None,
        _ => became(),
    }
}

/// The canonical string of an attribute value: a string decoded, anything else its token.
fn canonical(raw: &RawValue) -> String {
    serde_json::from_str::<String>(raw.get()).unwrap_or_else(|_| raw.get().trim().to_owned())
}

/// The bytes of a `data_base64` value.
fn bytes(raw: &RawValue) -> Option<Vec<u8>> {
    let text = serde_json::from_str::<String>(raw.get()).ok()?;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// A JSON text for a report: at most 60 characters, on one line.
fn shown(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut chars = one_line.chars();
    let head: String = chars.by_ref().take(60).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = r#"{"specversion":"1.0","id":"a","source":"/s","type":"t","ext":7,"data":{"n":1.50,"k":"é","l":[1,2]}}"#;
    const B: &str = r#"{"specversion":"1.0","id":"b","source":"/s","type":"t","datacontenttype":"text/plain","data":"line\n"}"#;
    const C: &str =
        r#"{"specversion":"1.0","id":"c","source":"/s","type":"t","data_base64":"AAEC"}"#;

    fn vectors() -> Vec<Vector> {
        read_vectors(&format!("{A}\n\n{B}\n{C}\n")).expect("valid vectors")
    }

    fn structured(id: &str, body: &str) -> Message {
        Message {
            message_id: id.to_owned(),
            body: body.to_owned(),
            group_id: Some("/s".to_owned()),
            ..Message::default()
        }
    }

    /// The faults of each vector, by kind, and the unexpected message ids.
    fn check(messages: &[Message], fifo: bool, expected: &[&[&str]], unexpected: &[&str]) {
        let fidelity = compare(&vectors(), messages, fifo);
        let kinds: Vec<Vec<String>> = fidelity
            .vectors
            .iter()
            .map(|v| {
                v.faults
                    .iter()
                    .map(
                        |f| match serde_json::to_value(f).expect("serializes")["kind"].clone() {
                            serde_json::Value::String(kind) => kind,
                            other => other.to_string(),
                        },
                    )
                    .collect()
            })
            .collect();
        let expected: Vec<Vec<String>> = expected
            .iter()
            .map(|kinds| kinds.iter().map(|k| (*k).to_owned()).collect())
            .collect();
        assert_eq!(kinds, expected, "{:#?}", fidelity.vectors);
        let ids: Vec<&str> = fidelity
            .unexpected
            .iter()
            .map(|u| u.message_id.as_str())
            .collect();
        assert_eq!(ids, unexpected);
        assert_eq!(
            fidelity.passed(),
            expected.iter().all(Vec::is_empty) && unexpected.is_empty()
        );
    }

    #[test]
    fn reads_vectors_by_line() {
        let vectors = vectors();
        let lines: Vec<usize> = vectors.iter().map(|v| v.line).collect();
        assert_eq!(lines, [1, 3, 4]);
        let error = read_vectors(&format!("{A}\n{A}")).expect_err("a duplicate");
        assert_eq!(
            error.to_string(),
            "vectors line 2: source \"/s\" and id \"a\" were already given on line 1"
        );
        let error = read_vectors(r#"{"id":"x"}"#).expect_err("not an event");
        assert!(
            error
                .to_string()
                .starts_with("vectors line 1: not a conformant CloudEvent: schema"),
            "{error}"
        );
    }

    #[test]
    fn equal_in_meaning_is_intact() {
        check(
            &[
                structured(
                    "1",
                    r#"{"data":{"l":[1,2],"k":"\u00e9","n":1.50},"ext":7,"type":"t","source":"\/s","id":"a","specversion":"1.0"}"#,
                ),
                structured("2", B),
                structured("3", C),
            ],
            true,
            &[&[], &[], &[]],
            &[],
        );
    }

    #[test]
    fn binary_mode_carries_attributes_as_strings() {
        let attributes = |id: &str, extra: &[(&str, &str)]| {
            let mut all: BTreeMap<String, String> = [
                ("ce-specversion", "1.0"),
                ("ce-id", id),
                ("ce-source", "/s"),
                ("ce-type", "t"),
            ]
            .iter()
            .chain(extra)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
            all.remove("");
            all
        };
        let binary = |id: &str, body: &str, extra: &[(&str, &str)]| Message {
            message_id: format!("m-{id}"),
            body: body.to_owned(),
            attributes: attributes(id, extra),
            group_id: None,
        };
        check(
            &[
                binary(
                    "a",
                    r#"{ "n": 1.50, "k": "é", "l": [1, 2] }"#,
                    &[("ce-ext", "7")],
                ),
                binary("b", "line\n", &[("content-type", "text/plain")]),
                structured("3", C),
            ],
            false,
            &[&[], &[], &[]],
            &[],
        );
        check(
            &[
                binary("a", r#"{"n": 1.5, "k": "é", "l": [1, 2]}"#, &[]),
                binary("b", "line", &[("content-type", "text/plain")]),
                structured("3", C),
            ],
            false,
            &[&["altered"], &["altered"], &[]],
            &[],
        );
    }

    #[test]
    fn faults_are_named() {
        let floats = r#"{"specversion":"1.0","id":"a","source":"/s","type":"t","ext":7,"data":{"n":1.5,"k":"é","l":[1,2]}}"#;
        let dropped = r#"{"specversion":"1.0","id":"b","source":"/s","type":"t","data":"line\n"}"#;
        check(
            &[
                structured("1", floats),
                structured("2", dropped),
                structured("3", dropped),
            ],
            false,
            &[&["altered"], &["duplicated", "altered"], &["missing"]],
            &[],
        );
        let fidelity = compare(&vectors(), &[structured("1", floats)], false);
        let Fault::Altered { differences } = &fidelity.vectors[0].faults[0] else {
            panic!("{:?}", fidelity.vectors[0]);
        };
        assert_eq!(differences, &["/data/n: 1.50 became 1.5"]);
        let fidelity = compare(&vectors(), &[structured("2", dropped)], false);
        let Fault::Altered { differences } = &fidelity.vectors[1].faults[0] else {
            panic!("{:?}", fidelity.vectors[1]);
        };
        assert_eq!(differences, &["/datacontenttype: missing"]);
    }

    #[test]
    fn strangers_and_disorder() {
        let other = r#"{"specversion":"1.0","id":"z","source":"/s","type":"t"}"#;
        check(
            &[
                structured("1", B),
                structured("2", A),
                structured("3", C),
                structured("4", other),
                structured("5", "hello"),
            ],
            true,
            &[&["out-of-order"], &[], &[]],
            &["4", "5"],
        );
        // Order is only a FIFO queue's promise.
        check(
            &[structured("1", B), structured("2", A), structured("3", C)],
            false,
            &[&[], &[], &[]],
            &[],
        );
    }

    #[test]
    fn delivered_but_not_conformant() {
        let raw_nonchar = "{\"specversion\":\"1.0\",\"id\":\"c\",\"source\":\"/s\",\"type\":\"t\",\"data_base64\":\"AAEC\",\"x\":\"\u{FFFF}\"}";
        check(
            &[
                structured("1", A),
                structured("2", B),
                structured("3", raw_nonchar),
            ],
            false,
            &[&[], &[], &["altered", "not-conformant"]],
            &[],
        );
    }
}
