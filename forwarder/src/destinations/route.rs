//! Route resolution: which destination an event's route attribute names. Pure: the caller
//! says which names exist.

use crate::event::Event;

/// Why an event has no destination. It is dead-lettered (or refused) with this reason and
/// never delivered anywhere else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The event lacks the route attribute (or it is not a string).
    #[error("no destination: the event has no string attribute `{attribute}` (--route-by)")]
    Missing {
        /// The route attribute.
        attribute: String,
    },
    /// The attribute names no destination of the directory.
    #[error("no destination: `{attribute}` is `{value}`, which names no destination")]
    Unknown {
        /// The route attribute.
        attribute: String,
        /// Its value.
        value: String,
    },
}

/// The destination `event` names through `attribute`, as `lookup` finds it by name.
pub fn resolve<T>(
    event: &Event,
    attribute: &str,
    lookup: impl FnOnce(&str) -> Option<T>,
) -> Result<T, RouteError> {
    let value = event
        .attribute_str(attribute)
        .ok_or_else(|| RouteError::Missing {
            attribute: attribute.to_owned(),
        })?;
    lookup(value).ok_or_else(|| RouteError::Unknown {
        attribute: attribute.to_owned(),
        value: value.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;

    fn check(extensions: &str, expected: Result<&str, &str>) {
        let line =
            format!(r#"{{"specversion":"1.0","id":"1","source":"/s","type":"t"{extensions}}}"#);
        let event = parse_event(line.as_bytes()).expect("event");
        let known = ["acme", "globex"];
        let got = resolve(&event, "tenant", |name| {
            known.iter().find(|k| **k == name).copied()
        });
        assert_eq!(
            got.map_err(|e| e.to_string()),
            expected.map_err(str::to_owned),
            "{line}"
        );
    }

    #[test]
    fn routes() {
        check(r#","tenant":"acme""#, Ok("acme"));
        check(r#","tenant":"globex""#, Ok("globex"));
        check(
            r#","tenant":"initech""#,
            Err("no destination: `tenant` is `initech`, which names no destination"),
        );
        check(
            "",
            Err("no destination: the event has no string attribute `tenant` (--route-by)"),
        );
        check(
            r#","tenant":7"#,
            Err("no destination: the event has no string attribute `tenant` (--route-by)"),
        );
        // A near miss is not a match: names are compared exactly.
        check(
            r#","tenant":"ACME""#,
            Err("no destination: `tenant` is `ACME`, which names no destination"),
        );
    }
}
