//! The safe-ai stack model and the renderers of its artifacts.
//!
//! One typed [`Stack`] plan plus a validated [`Allowlist`](safeai_policy::Allowlist)
//! give every file the stack runs on: `docker-compose.yaml`, `seccomp.json`,
//! `squid.conf`, `dnsmasq.conf` and dnsmasq's servers file. The same code runs in
//! `safeai generate` on the host and inside the proxy at start-up and on reload.
//!
//! This crate never reads the environment and never prints: settings come in as
//! values ([`ProxySettings::with_env`] takes a lookup function), text goes out as strings.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod compose;
pub mod decrypt;
pub mod live;
mod proxy;
pub mod sandbox_policy;
pub mod seccomp;
pub mod secrets;
mod stack;
pub mod tls;
pub mod verify;

use std::collections::BTreeMap;

pub use compose::render_compose;
pub use proxy::{
    DNSMASQ_SERVERS_FILE, render_dnsmasq, render_dnsmasq_servers, render_squid, render_squid_with,
    tls_plan,
};
pub use sandbox_policy::render_sandbox_policy;
pub use stack::{
    BLOCKED_RANGES, CaVolumes, Capability, Cidr, ConfigPath, DEFAULT_PROXY_IP, DEFAULT_SUBNET,
    DockerLogs, Knob, METADATA_ADDRESSES, Mebibytes, NamedVolume, NetworkPlan, PolicyVolume,
    PrivateException, ProxySettings, Seconds, SecurityProfile, SshSettings, Stack, Tmpfs,
    blocked_ranges, cidr_difference, env,
};
pub use tls::render_error_pages;

/// Errors of the stack model: settings that do not parse.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A CIDR that does not parse.
    #[error("`{input}` is not a CIDR network ({reason}); write it like 172.30.0.0/16")]
    InvalidCidr {
        /// The text.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An environment variable whose value does not parse.
    #[error("{var}={value:?} is not valid: expected {expected}")]
    InvalidEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What it should look like.
        expected: &'static str,
    },
    /// A path that cannot be written into a config file as it is.
    #[error(
        "`{input}` is not a usable path: write an absolute path of letters, digits, `.`, `_`, `-` and `/`, such as /etc/safe-ai/upstream-ca.pem"
    )]
    InvalidPath {
        /// The text, escaped.
        input: String,
    },
    /// A private exception that would unlock too much, or nothing.
    #[error("`{cidr}` cannot be a private exception: {reason}; {fix}")]
    InvalidException {
        /// The network.
        cidr: Cidr,
        /// What is wrong with it.
        reason: &'static str,
        /// How to fix it.
        fix: &'static str,
    },
    /// An item of a comma-separated environment variable that does not parse.
    #[error("{var}[{index}]: {source}")]
    InvalidEnvItem {
        /// The variable.
        var: &'static str,
        /// The item's index, from 0.
        index: usize,
        /// What is wrong with it.
        source: Box<Error>,
    },
}

/// The files of the stack, by file name, in name order.
pub type Artifacts = BTreeMap<&'static str, String>;

/// Renders every artifact of `stack` for `allowlist`.
pub fn render_all(stack: &Stack, allowlist: &safeai_policy::Allowlist) -> Artifacts {
    let settings = &stack.proxy_settings;
    BTreeMap::from([
        ("docker-compose.yaml", render_compose(stack)),
        (
            "seccomp.json",
            seccomp::render(&seccomp::SeccompProfile::sandbox()),
        ),
        ("squid.conf", render_squid(settings, allowlist)),
        ("dnsmasq.conf", render_dnsmasq(settings)),
        (
            DNSMASQ_SERVERS_FILE,
            render_dnsmasq_servers(settings, allowlist),
        ),
    ])
}
