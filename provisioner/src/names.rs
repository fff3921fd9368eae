//! Names, checked up front: queues, IAM users and roles, account ids, external ids and regions.
//!
//! Each type can only hold a valid value, so that the code above never checks a string twice
//! and never builds an ARN from something that could widen it (a `*` or a `?`).

use std::collections::BTreeMap;
use std::fmt;

/// The inline policy's name, on the user or the role.
pub const POLICY_NAME: &str = "sqs-send-only";
/// The tag every created resource carries, so that it can be recognised as created by this tool.
pub const MANAGED_BY: (&str, &str) = ("managed-by", "sqs-cloudevents-provisioner");

/// The tag naming the deployment a resource belongs to: the queue's name without `.fifo`.
pub const DEPLOYMENT_TAG: &str = "deployment";
/// The tag naming the deployment's kind: `standard` or `fifo`.
pub const DEPLOYMENT_KIND_TAG: &str = "deployment-kind";

/// The two kinds of principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// An IAM user.
    User,
    /// An IAM role.
    Role,
}

/// An IAM user or role, by name: what the operations that users and roles share take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// A user or a role.
    pub kind: PrincipalKind,
    /// Its name.
    pub name: String,
}

impl Principal {
    /// The principal `name` of `kind`.
    pub fn new(kind: PrincipalKind, name: impl Into<String>) -> Principal {
        Principal {
            kind,
            name: name.into(),
        }
    }

    /// `user` or `role` for one operation: the SDK names them apart.
    pub fn pick<T>(&self, user: T, role: T) -> T {
        match self.kind {
            PrincipalKind::User => user,
            PrincipalKind::Role => role,
        }
    }
}

impl fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PrincipalKind::User => "user",
            PrincipalKind::Role => "role",
        })
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.kind, self.name)
    }
}

const FIFO_SUFFIX: &str = ".fifo";
const DLQ_SUFFIX: &str = "-dlq";
const PRINCIPAL_SUFFIX: &str = "-forwarder";
const QUEUE_MAX: usize = 80;
const IAM_NAME_MAX: usize = 64;

/// Why a name was refused; the message says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} `{value}` {problem}: {hint}")]
pub struct NameError {
    /// What kind of name it is.
    pub what: &'static str,
    /// The name, with control characters escaped so that the message stays on one line.
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
    /// What to do.
    pub hint: String,
}

/// An SQS queue name: 1 to 80 of `[A-Za-z0-9_-]`, plus `.fifo` (counted) for a FIFO queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueName(String);

/// A name of an IAM user or role: 1 to 64 of `[A-Za-z0-9+=,.@_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IamName(String);

/// A 12-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountId(String);

/// An `sts:ExternalId`: 2 to 1224 of `[A-Za-z0-9+=,.@:/_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExternalId(String);

/// An AWS region such as `eu-west-1`: lower-case letters, digits and single hyphens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Region(String);

/// Every name one provisioning uses, derived from the user's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The queue.
    pub queue: QueueName,
    /// The dead-letter queue, when one is wanted.
    pub dlq: Option<QueueName>,
    /// The IAM user or role.
    pub principal: IamName,
}

impl Names {
    /// The tags every resource of this deployment carries: [`MANAGED_BY`], and the deployment's
    /// name and kind, so that another deployment's resources are never taken for its own.
    pub fn tags(&self) -> BTreeMap<String, String> {
        let kind = if self.queue.is_fifo() {
            "fifo"
        } else {
            "standard"
        };
        BTreeMap::from([
            (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
            (DEPLOYMENT_TAG.to_owned(), self.queue.base().to_owned()),
            (DEPLOYMENT_KIND_TAG.to_owned(), kind.to_owned()),
        ])
    }

    /// Whether `tags` say the resource belongs to this deployment.
    pub fn owns(&self, tags: &BTreeMap<String, String>) -> bool {
        self.tags().iter().all(|(k, v)| tags.get(k) == Some(v))
    }

    /// The tags as `key=value, …`, for messages.
    pub fn tags_text(&self) -> String {
        self.tags()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Derives the names: `NAME` (or `NAME.fifo`), `NAME-dlq` (or `NAME-dlq.fifo`) and the
    /// principal `NAME-forwarder` (without `.fifo`) unless `principal` is given.
    pub fn new(
        name: &str,
        fifo: bool,
        dlq: bool,
        principal: Option<&str>,
    ) -> Result<Names, NameError> {
        let queue = QueueName::new(name, fifo)?;
        let dlq = if dlq { Some(queue.dlq()?) } else { None };
        let principal = match principal {
            Some(p) => IamName::new(p)?,
            None => IamName::for_queue(&queue)?,
        };
        Ok(Names {
            queue,
            dlq,
            principal,
        })
    }
}

impl QueueName {
    /// Checks `name`; with `fifo`, appends `.fifo` unless it is already there. Without `fifo`, a
    /// name ending in `.fifo` is refused rather than silently made a FIFO queue.
    pub fn new(name: &str, fifo: bool) -> Result<QueueName, NameError> {
        let error = |problem: String, hint: &str| NameError {
            what: "queue name",
            value: escape(name),
            problem,
            hint: hint.to_owned(),
        };
        let base = match name.strip_suffix(FIFO_SUFFIX) {
            Some(base) if fifo => base,
            Some(_) => {
                return Err(error(
                    "ends in .fifo".into(),
                    "pass --fifo for a FIFO queue",
                ));
            }
            None => name,
        };
        let hint = "use 1 to 80 letters, digits, `-` or `_`";
        if base.is_empty() {
            return Err(error("is empty".into(), hint));
        }
        if let Some(c) = base
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(error(format!("has the character {}", describe(c)), hint));
        }
        let full = if fifo {
            format!("{base}{FIFO_SUFFIX}")
        } else {
            base.to_owned()
        };
        if full.len() > QUEUE_MAX {
            return Err(error(
                format!("is {} characters long with its suffix", full.len()),
                "use at most 80 in all, `.fifo` included",
            ));
        }
        Ok(QueueName(full))
    }

    /// The name as SQS knows it, `.fifo` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a FIFO queue's name.
    pub fn is_fifo(&self) -> bool {
        self.0.ends_with(FIFO_SUFFIX)
    }

    /// The name without `.fifo`.
    pub fn base(&self) -> &str {
        self.0.strip_suffix(FIFO_SUFFIX).unwrap_or(&self.0)
    }

    /// The dead-letter queue's name: `NAME-dlq`, or `NAME-dlq.fifo` for a FIFO queue.
    pub fn dlq(&self) -> Result<QueueName, NameError> {
        let name = format!("{}{DLQ_SUFFIX}", self.base());
        QueueName::new(&name, self.is_fifo()).map_err(|e| NameError {
            what: "dead-letter queue name",
            hint: "shorten --name so that `-dlq` fits in 80 characters".into(),
            ..e
        })
    }
}

impl IamName {
    /// Checks a user or role name.
    pub fn new(name: &str) -> Result<IamName, NameError> {
        let error = |problem: String| NameError {
            what: "IAM user or role name",
            value: escape(name),
            problem,
            hint: "use 1 to 64 letters, digits or `+=,.@_-`".into(),
        };
        if name.is_empty() {
            return Err(error("is empty".into()));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c)))
        {
            return Err(error(format!("has the character {}", describe(c))));
        }
        if name.len() > IAM_NAME_MAX {
            return Err(error(format!("is {} characters long", name.len())));
        }
        Ok(IamName(name.to_owned()))
    }

    /// The default principal of a queue: `NAME-forwarder`, and `NAME.fifo-forwarder` for a FIFO
    /// queue, so that the standard and the FIFO deployment of one name never share a principal
    /// (a standard queue's name has no `.`, so none reaches the FIFO one's).
    pub fn for_queue(queue: &QueueName) -> Result<IamName, NameError> {
        let name = format!("{}{PRINCIPAL_SUFFIX}", queue.as_str());
        IamName::new(&name).map_err(|e| NameError {
            hint: "pass --user with a name of at most 64 characters".into(),
            ..e
        })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AccountId {
    /// Checks a 12-digit account id.
    pub fn new(id: &str) -> Result<AccountId, NameError> {
        if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(id.to_owned()))
        } else {
            Err(NameError {
                what: "account id",
                value: escape(id),
                problem: "is not 12 digits".into(),
                hint: "give the 12-digit AWS account id".into(),
            })
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ExternalId {
    /// Checks an external id.
    pub fn new(id: &str) -> Result<ExternalId, NameError> {
        let error = |problem: String| NameError {
            what: "external id",
            value: escape(id),
            problem,
            hint: "use 2 to 1224 letters, digits or `+=,.@:/_-`".into(),
        };
        if let Some(c) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "+=,.@:/_-".contains(*c)))
        {
            return Err(error(format!("has the character {}", describe(c))));
        }
        if !(2..=1224).contains(&id.len()) {
            return Err(error(format!("is {} characters long", id.len())));
        }
        Ok(ExternalId(id.to_owned()))
    }

    /// A fresh random external id: 32 bytes from the operating system's generator, as 64
    /// lower-case hex digits (256 bits; a UUIDv4 would hold only 122).
    pub fn generate() -> ExternalId {
        let mut bytes = [0u8; 32];
        // Without the system's generator no safe id can be made: nothing sensible goes on.
        getrandom::fill(&mut bytes).expect("the operating system's random number generator");
        ExternalId(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Region {
    /// Checks a region name.
    pub fn new(region: &str) -> Result<Region, NameError> {
        let valid = (1..=32).contains(&region.len())
            && region.starts_with(|c: char| c.is_ascii_lowercase())
            && !region.ends_with('-')
            && !region.contains("--")
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let error = |problem: &str| NameError {
            what: "region",
            value: escape(region),
            problem: problem.into(),
            hint: "pass --region with a region such as eu-west-1".into(),
        };
        if !valid {
            return Err(error("is not a region name"));
        }
        if partition_of(region).is_none() {
            return Err(error(
                "is in no known partition (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc), so its ARNs are unknown",
            ));
        }
        Ok(Region(region.to_owned()))
    }

    /// The partition the region belongs to, from the region's prefix as AWS's partition list
    /// gives it: `aws-cn` (`cn-*`), `aws-us-gov` (`us-gov-*`), `aws-iso` (`us-iso-*`),
    /// `aws-iso-b` (`us-isob-*`), `aws-iso-e` (`eu-isoe-*`), `aws-iso-f` (`us-isof-*`),
    /// `aws-eusc` (`eusc-de-*`), and `aws` for the commercial prefixes. [`Region::new`] refuses
    /// a region of none of them.
    pub fn partition(&self) -> &'static str {
        partition_of(&self.0).unwrap_or("aws")
    }

    /// The region.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The region prefixes of each partition, the longest first so that `us-iso-` wins over `us-`.
const PARTITIONS: [(&str, &str); 16] = [
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-iso-", "aws-iso"),
    ("us-gov-", "aws-us-gov"),
    ("eusc-de-", "aws-eusc"),
    ("cn-", "aws-cn"),
    ("us-", "aws"),
    ("eu-", "aws"),
    ("ap-", "aws"),
    ("sa-", "aws"),
    ("ca-", "aws"),
    ("me-", "aws"),
    ("af-", "aws"),
    ("il-", "aws"),
    ("mx-", "aws"),
];

/// The partition of `PREFIX-WORD-DIGITS`, or `None` when no partition has the prefix.
fn partition_of(region: &str) -> Option<&'static str> {
    let (prefix, partition) = PARTITIONS.iter().find(|(p, _)| region.starts_with(p))?;
    let rest = &region[prefix.len()..];
    let (word, number) = rest.rsplit_once('-')?;
    let word_ok = !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric());
    let number_ok = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
    (word_ok && number_ok).then_some(*partition)
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(QueueName, IamName, AccountId, ExternalId, Region);

/// Keeps a user's input on one line and free of terminal escapes.
fn escape(value: &str) -> String {
    let short: String = value.chars().take(100).collect();
    let mut escaped = short.escape_debug().to_string();
    if value.chars().count() > 100 {
        escaped.push('…');
    }
    escaped
}

fn describe(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("{:?}", c)
    } else {
        format!("`{c}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expected` is the full name on success, or a part of the error message on failure.
    fn check(name: &str, fifo: bool, expected: Result<&str, &str>) {
        let actual = QueueName::new(name, fifo)
            .map(|q| q.as_str().to_owned())
            .map_err(|e| e.to_string());
        match (&actual, expected) {
            (Ok(actual), Ok(expected)) => assert_eq!(actual, expected, "{name:?}"),
            (Err(actual), Err(expected)) => {
                assert!(
                    actual.contains(expected),
                    "{name:?}: `{actual}` lacks `{expected}`"
                );
                assert!(!actual.contains('\n'), "{name:?}: more than one line");
            }
            _ => panic!("{name:?} (fifo {fifo}): got {actual:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn queue_names() {
        check("events", false, Ok("events"));
        check("A-b_9", false, Ok("A-b_9"));
        check(&"a".repeat(80), false, Ok(&"a".repeat(80)));
        check(&"a".repeat(81), false, Err("81 characters"));
        check("", false, Err("is empty"));
        check("my queue", false, Err("has the character ' '"));
        check("a\nb", false, Err("has the character '\\n'"));
        check("événement", false, Err("`é`"));
        check("a*", false, Err("`*`"));
        check("a.b", false, Err("`.`"));
        check("orders.fifo", false, Err("pass --fifo"));
        check("orders", true, Ok("orders.fifo"));
        check("orders.fifo", true, Ok("orders.fifo"));
        check(".fifo", true, Err("is empty"));
        check(
            &"a".repeat(75),
            true,
            Ok(&format!("{}.fifo", "a".repeat(75))),
        );
        check(&"a".repeat(76), true, Err("`.fifo` included"));
    }

    #[test]
    fn derived_names() {
        let names = Names::new("orders", true, true, None).expect("valid");
        assert_eq!(names.queue.as_str(), "orders.fifo");
        assert_eq!(names.queue.base(), "orders");
        assert_eq!(
            names.dlq.as_ref().map(QueueName::as_str),
            Some("orders-dlq.fifo")
        );
        assert_eq!(names.principal.as_str(), "orders.fifo-forwarder");
        let names = Names::new("events", false, false, Some("svc@team")).expect("valid");
        assert_eq!(names.dlq, None);
        assert_eq!(names.principal.as_str(), "svc@team");

        let too_long_for_dlq =
            Names::new(&"a".repeat(78), false, true, Some("u")).expect_err("dlq");
        assert!(
            too_long_for_dlq
                .to_string()
                .contains("dead-letter queue name"),
            "{too_long_for_dlq}"
        );
        let too_long_for_user = Names::new(&"a".repeat(60), false, false, None).expect_err("user");
        assert!(
            too_long_for_user.to_string().contains("pass --user"),
            "{too_long_for_user}"
        );
        assert!(Names::new("q", false, false, Some("bad/name")).is_err());
        assert!(Names::new("q", false, false, Some(&"u".repeat(65))).is_err());
    }

    #[test]
    fn other_names() {
        assert!(AccountId::new("000000000000").is_ok());
        assert!(AccountId::new("12345678901").is_err());
        assert!(AccountId::new("12345678901a").is_err());
        assert!(ExternalId::new("a").is_err());
        assert!(ExternalId::new("tenant:42/x=y").is_ok());
        assert!(ExternalId::new("has space").is_err());
        for (region, partition) in [
            ("eu-west-1", "aws"),
            ("cn-north-1", "aws-cn"),
            ("us-gov-west-1", "aws-us-gov"),
        ] {
            assert_eq!(Region::new(region).expect(region).partition(), partition);
        }
        for bad in ["", "EU-west-1", "eu-west-1*", "eu--west", "-eu", "eu-"] {
            assert!(Region::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_partition_gets_its_arns() {
        // From AWS's published partition list (region prefixes of each partition).
        for (region, partition) in [
            ("us-east-1", "aws"),
            ("il-central-1", "aws"),
            ("mx-central-1", "aws"),
            ("cn-northwest-1", "aws-cn"),
            ("us-gov-east-1", "aws-us-gov"),
            ("us-iso-east-1", "aws-iso"),
            ("us-iso-west-1", "aws-iso"),
            ("us-isob-east-1", "aws-iso-b"),
            ("eu-isoe-west-1", "aws-iso-e"),
            ("us-isof-south-1", "aws-iso-f"),
            ("us-isof-east-1", "aws-iso-f"),
            ("eusc-de-east-1", "aws-eusc"),
        ] {
            assert_eq!(
                Region::new(region).expect(region).partition(),
                partition,
                "{region}"
            );
        }
        // A region of no known partition is refused with the one-line reason, not given `aws`.
        for unknown in ["xx-north-1", "moon-base", "us-isoz-east-1"] {
            let error = Region::new(unknown).expect_err(unknown).to_string();
            assert!(error.contains("no known partition"), "{error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }

    #[test]
    fn a_generated_external_id_has_at_least_128_random_bits() {
        // The oracle: every hex digit position must take more than one value over many draws
        // (a UUIDv4 keeps its version and variant nibbles fixed), and there must be at least 32
        // of them (4 bits each).
        let ids: Vec<String> = (0..64)
            .map(|_| ExternalId::generate().as_str().to_owned())
            .collect();
        let digits: Vec<Vec<char>> = ids
            .iter()
            .map(|id| id.chars().filter(|c| *c != '-').collect())
            .collect();
        let width = digits[0].len();
        assert!(
            digits
                .iter()
                .all(|d| d.len() == width && d.iter().all(char::is_ascii_hexdigit)),
            "{ids:?}"
        );
        let varying = (0..width)
            .filter(|&i| digits.iter().any(|d| d[i] != digits[0][i]))
            .count();
        assert!(
            varying >= 32,
            "only {varying} random hex digits in {:?}",
            ids[0]
        );
        assert!(varying == width, "fixed digits in {:?}", ids[0]);
        assert!(ExternalId::new(&ids[0]).is_ok());
    }

    #[test]
    fn standard_and_fifo_deployments_of_one_name_have_distinct_principals() {
        let standard = Names::new("orders", false, false, None).expect("standard");
        let fifo = Names::new("orders", true, false, None).expect("fifo");
        assert_ne!(standard.principal, fifo.principal);
        // Nor may any other standard name reach the FIFO one's principal.
        for other in ["orders-fifo", "orders_fifo", "ordersfifo"] {
            let names = Names::new(other, false, false, None).expect(other);
            assert_ne!(names.principal, fifo.principal, "{other}");
        }
    }

    #[test]
    fn a_deployment_owns_only_what_carries_its_own_tags() {
        let dd1 = Names::new("dd1", false, true, None).expect("dd1");
        let dd1_dlq = Names::new("dd1-dlq", false, false, None).expect("dd1-dlq");
        let dd1_fifo = Names::new("dd1", true, false, None).expect("dd1 fifo");
        assert!(dd1.owns(&dd1.tags()));
        assert!(
            !dd1.owns(&dd1_dlq.tags()),
            "another deployment named like the DLQ"
        );
        assert!(
            !dd1.owns(&dd1_fifo.tags()),
            "the FIFO deployment of the same name"
        );
        let legacy = BTreeMap::from([(MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned())]);
        assert!(!dd1.owns(&legacy), "the old tag alone names no deployment");
        assert!(!dd1.owns(&BTreeMap::new()));
    }
}
