//! Creates an SQS queue, an IAM user (or role) whose only permission is `sqs:SendMessage` on
//! that queue, and its credentials; proves least privilege; tears it all down.
//!
//! The library path, as the conformance suite uses it:
//!
//! ```no_run
//! # async fn example() -> Result<(), provisioner::ProvisionError> {
//! let options = aws_access::sdk::AwsOptions {
//!     region: Some("eu-west-1".into()),
//!     ..Default::default()
//! };
//! let clients = provisioner::Clients::new(&options).await?;
//! let spec = provisioner::Spec::new("orders");
//! let outcome = provisioner::apply(&clients, &spec).await?; // outcome.config holds the key
//! provisioner::verify(&clients, &spec).await?;
//! provisioner::destroy(&clients, &spec).await?;
//! # Ok(()) }
//! ```
//!
//! `plan` and `policy` are pure; `aws` holds the thin SDK wrappers; `observe` reads the current
//! state that `plan::compute` compares with the desired one; `apply`, `verify` and `destroy`
//! are the commands; `template` prints a CloudFormation template of the same resources.

pub mod apply;
pub mod aws;
pub mod destroy;
pub mod error;
pub mod names;
mod observe;
pub mod plan;
pub mod policy;
pub mod template;
pub mod verify;

#[cfg(test)]
mod strategies;

use aws_access::retry::Backoff;
use aws_access::sdk::AwsOptions;

pub use crate::apply::{Outcome, Resources, apply};
pub use crate::destroy::{DestroyPlan, DestroyReport, destroy, plan_destroy};
pub use crate::error::ProvisionError;
pub use crate::names::{MANAGED_BY, Names, POLICY_NAME};
pub use crate::plan::{Change, OutFile, Plan};
pub use crate::verify::{Check, VerifyReport, verify};

use crate::aws::{Iam, Sqs, Sts};
use crate::names::{AccountId, ExternalId, Region};

/// What to provision: the library's input, and what the command line fills in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The queue's name; `.fifo` is appended for a FIFO queue when missing.
    pub name: String,
    /// A FIFO queue.
    pub fifo: bool,
    /// A dead-letter queue `NAME-dlq` (or `NAME-dlq.fifo`) with `maxReceiveCount` 5.
    pub dlq: bool,
    /// A user with an access key, or a role for another account.
    pub auth: Auth,
    /// The user's (or role's) name; `NAME-forwarder` by default.
    pub user_name: Option<String>,
    /// Replace the user's access key(s) by a new one.
    pub rotate_key: bool,
    /// Destroy queues that still hold messages.
    pub force: bool,
    /// Where apply writes the forwarder's configuration (and where it looks for a key to keep).
    pub out: Option<OutFile>,
}

/// How the forwarder authenticates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// An IAM user and its access key.
    #[default]
    User,
    /// An IAM role that `trust_account` assumes, presenting `external_id`.
    Role {
        /// The account allowed to assume the role; apply and plan need it.
        trust_account: Option<String>,
        /// The external id; when `None`, the existing one is kept or a new one generated.
        external_id: Option<String>,
    },
}

/// The AWS clients every command uses, with the region and endpoint they were built for.
#[derive(Debug, Clone)]
pub struct Clients {
    /// SQS.
    pub sqs: Sqs,
    /// IAM.
    pub iam: Iam,
    /// STS.
    pub sts: Sts,
    region: Region,
    endpoint: Option<String>,
}

impl Spec {
    /// A standard queue `name` with user `NAME-forwarder` and no configuration file.
    pub fn new(name: impl Into<String>) -> Spec {
        Spec {
            name: name.into(),
            fifo: false,
            dlq: false,
            auth: Auth::User,
            user_name: None,
            rotate_key: false,
            force: false,
            out: None,
        }
    }

    /// The names this spec uses, checked.
    pub fn names(&self) -> Result<Names, ProvisionError> {
        Ok(Names::new(
            &self.name,
            self.fifo,
            self.dlq,
            self.user_name.as_deref(),
        )?)
    }

    /// Checks everything that can be checked without a request.
    pub fn validate(&self) -> Result<(), ProvisionError> {
        self.names()?;
        if let Auth::Role {
            trust_account,
            external_id,
        } = &self.auth
        {
            if let Some(account) = trust_account {
                AccountId::new(account)?;
            }
            if let Some(id) = external_id {
                ExternalId::new(id)?;
            }
            if self.rotate_key {
                return Err(ProvisionError::Usage(
                    "--rotate-key is for --auth user: a role has no key".into(),
                ));
            }
        }
        Ok(())
    }
}

impl Clients {
    /// Builds the clients through [`aws_access::sdk::sdk_config`] (SDK retries off, one retry
    /// policy).
    pub async fn new(options: &AwsOptions) -> Result<Clients, ProvisionError> {
        let config = aws_access::sdk::sdk_config(options).await?;
        let region = config
            .region()
            .map(|r| r.as_ref().to_owned())
            .unwrap_or_default();
        let backoff = Backoff::default();
        Ok(Clients {
            sqs: Sqs::new(aws_sdk_sqs::Client::new(&config), backoff),
            iam: Iam::new(aws_sdk_iam::Client::new(&config), backoff),
            sts: Sts::new(aws_sdk_sts::Client::new(&config)),
            region: Region::new(&region)?,
            endpoint: options.endpoint_url.clone(),
        })
    }

    /// The region.
    pub fn region(&self) -> &str {
        self.region.as_str()
    }

    /// The endpoint, when it is not AWS's own.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }
}

/// What `apply` would do, changing nothing.
pub async fn plan(clients: &Clients, spec: &Spec) -> Result<Plan, ProvisionError> {
    let (desired, observed) = observe::prepare(clients, spec).await?;
    plan::compute(&desired, &observed)
}
