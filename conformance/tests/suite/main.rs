//! The end-to-end conformance suite. Each test provisions its own queue and send-only user in
//! LocalStack through the provisioner library (and proves least privilege with
//! `provisioner::verify`), forwards events with that user's key through the real `forwarder`
//! binary, receives what SQS holds with every attribute, judges it, and removes what it
//! created.
//!
//! - `golden`: the forwarder's sample events arrive byte for byte.
//! - `snapshots`: what SQS holds, under both attribute modes and both queue types.
//! - `properties`: arbitrary events and batches come back as sent, in order per FIFO group.
//! - `official`: the official CloudEvents cases, valid ones delivered, invalid ones refused.
//! - `least_privilege`: the stored policy document.
//! - `broken_producer`: `conformance check` catches a producer that is not conformant.
//! - `role_mode`: the forwarder assumes a provisioned role with its external id.
//! - `live_queue`: `conformance check` peeks at a live queue unless told to delete.
//! - `third_party_sdk`: events made by the Python CloudEvents SDK pass in both content modes.
//! - `kit`: `conformance run` on four producers: the forwarder in both content modes and a
//!   careful boto3 producer pass, a faulty one fails with each fault named by its vector.

mod broken_producer;
mod common;
mod golden;
mod kit;
mod least_privilege;
mod live_queue;
mod official;
mod properties;
mod role_mode;
mod snapshots;
mod strategies;
mod third_party_sdk;
