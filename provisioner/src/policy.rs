//! The policy documents, pure: the single-statement send policy, the role's trust policy, the
//! queue's ARN, and the decoding of documents as IAM returns them (URL-encoded).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::names::{AccountId, ExternalId, QueueName, Region};

/// The policy language version every document uses.
pub const VERSION: &str = "2012-10-17";
/// The one action the forwarder needs.
pub const SEND_ACTION: &str = "sqs:SendMessage";

/// A queue's ARN, `arn:PARTITION:sqs:REGION:ACCOUNT:NAME`, built from checked parts only (so it
/// never holds a wildcard), never parsed from a URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueArn {
    region: Region,
    account: AccountId,
    name: QueueName,
}

/// An IAM policy document as this tool writes it. Field order is the conventional one, so the
/// rendered JSON reads like AWS's own examples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// Always [`VERSION`].
    #[serde(rename = "Version")]
    pub version: String,
    /// The statements: exactly one in every document this tool writes.
    #[serde(rename = "Statement")]
    pub statement: Vec<Statement>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// A label.
    #[serde(rename = "Sid", default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// `Allow`.
    #[serde(rename = "Effect")]
    pub effect: String,
    /// Who may act (trust policies only).
    #[serde(rename = "Principal", default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    /// The one action.
    #[serde(rename = "Action")]
    pub action: String,
    /// The one resource (identity policies only).
    #[serde(rename = "Resource", default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The external-id condition (trust policies only).
    #[serde(rename = "Condition", default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
}

/// An AWS principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// The principal's ARN.
    #[serde(rename = "AWS")]
    pub aws: String,
}

/// `{"StringEquals": {"sts:ExternalId": X}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The only operator used.
    #[serde(rename = "StringEquals")]
    pub string_equals: ExternalIdCondition,
}

/// `{"sts:ExternalId": X}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalIdCondition {
    /// The external id the caller must present.
    #[serde(rename = "sts:ExternalId")]
    pub external_id: String,
}

/// What [`parse_trust_policy`] found in a trust policy of the shape this tool writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    /// The only account allowed to assume the role.
    pub account: AccountId,
    /// The external id it must present.
    pub external_id: ExternalId,
}

impl QueueArn {
    /// The ARN of queue `name` in `region` of `account`.
    pub fn new(region: &Region, account: &AccountId, name: &QueueName) -> QueueArn {
        QueueArn {
            region: region.clone(),
            account: account.clone(),
            name: name.clone(),
        }
    }

    /// The partition, from the region.
    pub fn partition(&self) -> &'static str {
        self.region.partition()
    }

    /// The region.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// The account.
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// The queue's name.
    pub fn name(&self) -> &QueueName {
        &self.name
    }
}

impl fmt::Display for QueueArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:sqs:{}:{}:{}",
            self.partition(),
            self.region,
            self.account,
            self.name
        )
    }
}

impl PolicyDocument {
    /// The document as sent to IAM.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The document pretty-printed, for people.
    pub fn to_pretty_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The document as a JSON value, for comparing with what IAM returns.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The queue's resource policy: it denies every request over plain HTTP
/// (`aws:SecureTransport` false) and grants nothing, so the identity policy alone decides who
/// may send.
pub fn queue_policy(queue: &QueueArn) -> Value {
    serde_json::json!({
        "Version": VERSION,
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:*",
            "Resource": queue.to_string(),
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        }]
    })
}

/// The statements of a queue policy that grant anything beyond `sqs:SendMessage` on `queue` to
/// `principal_arn` alone, one line each naming the statement (its `Sid`, else its position):
/// a `*` principal, another account or principal, another action (`sqs:*`), another resource,
/// or any `Not…` element.
pub fn queue_policy_grants(policy: &Value, principal_arn: &str, queue: &QueueArn) -> Vec<String> {
    let queue = queue.to_string();
    let statements = match policy.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single) => vec![single],
        None => Vec::new(),
    };
    let only = |value: Option<&Value>, wanted: &str| match value {
        Some(Value::String(s)) => s == wanted,
        Some(Value::Array(items)) => !items.is_empty() && items.iter().all(|i| i == wanted),
        _ => false,
    };
    statements
        .into_iter()
        .enumerate()
        .filter(|(_, s)| s.get("Effect").and_then(Value::as_str) != Some("Deny"))
        .filter(|(_, s)| {
            let principal = s.get("Principal").and_then(|p| p.get("AWS"));
            let narrow = only(principal, principal_arn)
                && only(s.get("Action"), SEND_ACTION)
                && only(s.get("Resource"), &queue)
                && ["NotPrincipal", "NotAction", "NotResource"]
                    .iter()
                    .all(|k| s.get(*k).is_none());
            !narrow
        })
        .map(|(i, s)| {
            let name = match s.get("Sid").and_then(Value::as_str) {
                Some(sid) => format!("statement `{sid}`"),
                None => format!("statement {}", i + 1),
            };
            let part = |k: &str| {
                s.get(k)
                    .map(Value::to_string)
                    .unwrap_or_else(|| "(none)".into())
            };
            format!(
                "{name} grants {} to {} on {}",
                part("Action"),
                part("Principal"),
                part("Resource")
            )
        })
        .collect()
}

/// The identity policy: allow `sqs:SendMessage` on this one queue, nothing else.
pub fn send_policy(queue: &QueueArn) -> PolicyDocument {
    PolicyDocument {
        version: VERSION.to_owned(),
        statement: vec![Statement {
            sid: Some("SendOnly".to_owned()),
            effect: "Allow".to_owned(),
            principal: None,
            action: SEND_ACTION.to_owned(),
            resource: Some(queue.to_string()),
            condition: None,
        }],
    }
}

/// The role's trust policy: only `trusted` (its root, that is any principal the account
/// allows) may assume the role, and only presenting `external_id`.
pub fn trust_policy(
    partition: &str,
    trusted: &AccountId,
    external_id: &ExternalId,
) -> PolicyDocument {
    PolicyDocument {
        version: VERSION.to_owned(),
        statement: vec![Statement {
            sid: Some("TrustedAccountWithExternalId".to_owned()),
            effect: "Allow".to_owned(),
            principal: Some(Principal {
                aws: format!("arn:{partition}:iam::{trusted}:root"),
            }),
            action: "sts:AssumeRole".to_owned(),
            resource: None,
            condition: Some(Condition {
                string_equals: ExternalIdCondition {
                    external_id: external_id.as_str().to_owned(),
                },
            }),
        }],
    }
}

/// The account and external id of a trust policy, if it has exactly the shape
/// [`trust_policy`] writes; `None` for anything else.
pub fn parse_trust_policy(document: &Value) -> Option<Trust> {
    let parsed: PolicyDocument = serde_json::from_value(document.clone()).ok()?;
    let [statement] = parsed.statement.as_slice() else {
        return None;
    };
    let principal = &statement.principal.as_ref()?.aws;
    let rest = principal.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    let account = rest.strip_prefix("iam::")?.strip_suffix(":root")?;
    let account = AccountId::new(account).ok()?;
    let external_id =
        ExternalId::new(&statement.condition.as_ref()?.string_equals.external_id).ok()?;
    (trust_policy(partition, &account, &external_id) == parsed).then_some(Trust {
        account,
        external_id,
    })
}

/// Decodes a policy document as IAM returns it: URL-encoded JSON (RFC 3986). A document that is
/// already plain JSON (as some emulators return it) is taken as it is.
pub fn decode_document(text: &str) -> Result<Value, String> {
    if let Ok(value) = serde_json::from_str(text) {
        return Ok(value);
    }
    let decoded = percent_decode(text)?;
    serde_json::from_str(&decoded).map_err(|e| format!("the policy document is not JSON: {e}"))
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    format!("bad percent-encoding at byte {i} of the policy document")
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the policy document is not UTF-8 once decoded".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_policy_grants_beyond_the_principal_are_named() {
        let queue = arn("eu-west-1", "events", false);
        let q = queue.to_string();
        let me = "arn:aws:iam::123456789012:user/events-forwarder";
        let doc =
            |statements: Value| serde_json::json!({"Version": VERSION, "Statement": statements});
        // What apply writes grants nothing.
        assert_eq!(
            queue_policy_grants(&queue_policy(&queue), me, &queue),
            Vec::<String>::new()
        );
        // Sending by the principal alone is no widening.
        let narrow = doc(
            serde_json::json!([{"Effect": "Allow", "Principal": {"AWS": me}, "Action": "sqs:SendMessage", "Resource": q}]),
        );
        assert_eq!(
            queue_policy_grants(&narrow, me, &queue),
            Vec::<String>::new()
        );
        for (sid, statement) in [
            (
                "Anyone",
                serde_json::json!({"Sid": "Anyone", "Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": q}),
            ),
            (
                "AnyoneAws",
                serde_json::json!({"Sid": "AnyoneAws", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sqs:SendMessage", "Resource": q}),
            ),
            (
                "Account",
                serde_json::json!({"Sid": "Account", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"}, "Action": "sqs:SendMessage", "Resource": q}),
            ),
            (
                "All",
                serde_json::json!({"Sid": "All", "Effect": "Allow", "Principal": {"AWS": me}, "Action": "sqs:*", "Resource": q}),
            ),
            (
                "Two",
                serde_json::json!({"Sid": "Two", "Effect": "Allow", "Principal": {"AWS": me}, "Action": ["sqs:SendMessage", "sqs:ReceiveMessage"], "Resource": q}),
            ),
            (
                "Wild",
                serde_json::json!({"Sid": "Wild", "Effect": "Allow", "Principal": {"AWS": me}, "Action": "sqs:SendMessage", "Resource": "*"}),
            ),
            (
                "Not",
                serde_json::json!({"Sid": "Not", "Effect": "Allow", "Principal": {"AWS": me}, "NotAction": "sqs:ReceiveMessage", "Action": "sqs:SendMessage", "Resource": q}),
            ),
        ] {
            let found = queue_policy_grants(&doc(serde_json::json!([statement])), me, &queue);
            assert_eq!(found.len(), 1, "{sid}: {found:?}");
            assert!(
                found[0].starts_with(&format!("statement `{sid}`")),
                "{found:?}"
            );
        }
        // A statement without a Sid is named by its position.
        let unnamed = doc(
            serde_json::json!([{"Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Resource": q}]),
        );
        assert!(queue_policy_grants(&unnamed, me, &queue)[0].starts_with("statement 1 "));
    }

    fn arn(region: &str, name: &str, fifo: bool) -> QueueArn {
        QueueArn::new(
            &Region::new(region).expect("region"),
            &AccountId::new("123456789012").expect("account"),
            &QueueName::new(name, fifo).expect("name"),
        )
    }

    #[test]
    fn queue_arns() {
        assert_eq!(
            arn("eu-west-1", "events", false).to_string(),
            "arn:aws:sqs:eu-west-1:123456789012:events"
        );
        assert_eq!(
            arn("cn-north-1", "o", true).to_string(),
            "arn:aws-cn:sqs:cn-north-1:123456789012:o.fifo"
        );
        assert_eq!(
            arn("us-gov-west-1", "x", false).to_string(),
            "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:x"
        );
    }

    #[test]
    fn send_policy_snapshot() {
        insta::assert_json_snapshot!(
            "send_policy",
            send_policy(&arn("eu-west-1", "events", false))
        );
        assert_eq!(
            send_policy(&arn("eu-west-1", "events", false)).to_json(),
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"SendOnly","Effect":"Allow","Action":"sqs:SendMessage","Resource":"arn:aws:sqs:eu-west-1:123456789012:events"}]}"#
        );
    }

    #[test]
    fn trust_policy_snapshot_and_parse() {
        let account = AccountId::new("210987654321").expect("account");
        let external_id = ExternalId::new("tenant-42").expect("external id");
        let document = trust_policy("aws", &account, &external_id);
        insta::assert_json_snapshot!("trust_policy", document);
        let parsed = parse_trust_policy(&document.to_value()).expect("our shape");
        assert_eq!(
            parsed,
            Trust {
                account: account.clone(),
                external_id
            }
        );

        let mut without_condition = document.to_value();
        without_condition["Statement"][0]
            .as_object_mut()
            .expect("object")
            .remove("Condition");
        assert_eq!(parse_trust_policy(&without_condition), None);
        let mut wildcard = document.to_value();
        wildcard["Statement"][0]["Principal"]["AWS"] = "*".into();
        assert_eq!(parse_trust_policy(&wildcard), None);
        let mut two = document.to_value();
        let statement = two["Statement"][0].clone();
        two["Statement"]
            .as_array_mut()
            .expect("array")
            .push(statement);
        assert_eq!(parse_trust_policy(&two), None);
    }

    #[test]
    fn decodes_documents_as_iam_returns_them() {
        let document = send_policy(&arn("us-east-1", "q", false));
        let encoded: String = document
            .to_json()
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        assert!(encoded.starts_with("%7B%22Version%22"), "{encoded}");
        assert_eq!(decode_document(&encoded), Ok(document.to_value()));
        assert_eq!(
            decode_document(&document.to_json()),
            Ok(document.to_value())
        );
        assert!(decode_document("%7B%2").is_err());
        assert!(decode_document("%FF%FE").is_err());
    }

    proptest::proptest! {
        #[test]
        fn send_policy_is_one_action_on_one_queue(
            name in crate::strategies::queue_name(),
            region in crate::strategies::region(),
            account in crate::strategies::account(),
        ) {
            let arn = QueueArn::new(&region, &account, &name);
            let document = send_policy(&arn);
            let [statement] = document.statement.as_slice() else {
                panic!("not one statement: {document:?}");
            };
            proptest::prop_assert_eq!(&statement.effect, "Allow");
            proptest::prop_assert_eq!(&statement.action, SEND_ACTION);
            let resource = statement.resource.as_deref().unwrap_or_default();
            proptest::prop_assert_eq!(resource, arn.to_string());
            proptest::prop_assert!(!resource.contains(['*', '?']), "wildcard in {}", resource);
            proptest::prop_assert_eq!(
                resource,
                format!("arn:{}:sqs:{region}:{account}:{name}", region.partition())
            );
            // The JSON sent to IAM says the same: one statement, one action, that resource.
            let value: Value = serde_json::from_str(&document.to_json()).expect("json");
            proptest::prop_assert_eq!(value["Statement"].as_array().map(Vec::len), Some(1));
            proptest::prop_assert_eq!(&value["Statement"][0]["Action"], SEND_ACTION);
            proptest::prop_assert_eq!(&value["Statement"][0]["Resource"], resource);
            proptest::prop_assert!(value["Statement"][0].get("NotAction").is_none());
        }
    }
}
