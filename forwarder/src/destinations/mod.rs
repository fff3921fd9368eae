//! Many destinations from one process: `--destinations DIR --route-by ATTRIBUTE`.
//!
//! Each file of the directory is a connection file as `provisioner apply --out` writes it, and
//! its stem is the destination's name (`directory`, `name`). An event goes to the destination
//! its route attribute names (`route`), and to no other: an event without the attribute, or
//! naming no destination, is refused with the reason (dead-lettered where there is a
//! dead-letter file). Every destination has its own client and credentials (`client`: its own
//! keys, or its own role and external id) and its own [`crate::pipeline::Forwarder`] behind a
//! feeder that never makes the caller wait (`destination`), so a slow or failing destination
//! holds back only its own events. [`Destinations`] (`set`) holds those in force and reads the
//! directory again on [`Destinations::reload`].

mod client;
mod destination;
mod directory;
mod name;
mod route;
mod set;

pub use client::{ConnectError, assume_role, connect, static_key};
pub use destination::{Destination, Queued};
pub use directory::{Changes, DirectoryError, Scan, diff, scan};
pub use name::DestinationName;
pub use route::{RouteError, resolve};
pub use set::{Destinations, Reload, Settings};
