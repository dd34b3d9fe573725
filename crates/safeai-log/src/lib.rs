//! The safe-ai decision log: one event per decision the proxy makes (an HTTP request, a
//! CONNECT, a request decrypted inside one, a DNS query), schema-versioned, and what the
//! host-side commands make of them.
//!
//! - [`Event`]: the schema (the `v` field is [`SCHEMA_VERSION`]); [`Event::to_line`] is the
//!   one JSON encoding, which nothing a client sends can break or forge.
//! - [`squid`] and [`dnsmasq`]: the parsers of the lines Squid (`logformat safeai`) and
//!   dnsmasq (`log-queries=extra`) write, each tested on real lines.
//! - [`attribute`]: the allowlist entry (and its origin) that covers an event's host.
//! - [`summary`]: denials grouped by registrable domain and host.
//! - [`learn`]: denials turned into proposed allowlist entries, and the ones it refuses.
//!
//! The library never prints and never reads the environment.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod dnsmasq;
mod event;
pub mod learn;
pub mod squid;
pub mod summary;
mod time;

pub use event::{Decision, Event, Kind, SCHEMA_VERSION, attribute, registrable_domain};
pub use time::{Timestamp, parse_since};
