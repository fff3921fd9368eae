//! How the workspace reaches AWS, shared by the forwarder and the provisioner: the SDK
//! configuration and credentials ([`sdk`], including a role assumed with an external id), the
//! one retry policy and the one retry loop ([`retry`]), [`secret::Secret`], and the connection
//! file the provisioner writes and the forwarder reads ([`connection`]).
//!
//! Nothing here knows SQS, IAM or LocalStack: the services' own crates stay with their users.

pub mod connection;
pub mod retry;
pub mod sdk;
pub mod secret;
