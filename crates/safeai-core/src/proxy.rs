//! squid.conf and the dnsmasq configuration, rendered from line-based templates
//! embedded at compile time.

use std::sync::OnceLock;

use handlebars::Handlebars;
use safeai_policy::Allowlist;
use serde::Serialize;

use crate::decrypt::Decryption;
use crate::secrets::Secrets;
use crate::stack::ProxySettings;
use crate::tls::{PlanInputs, TlsPlan};

const SQUID: &str = include_str!("templates/squid.conf.hbs");
const DNSMASQ: &str = include_str!("templates/dnsmasq.conf.hbs");
const DNSMASQ_SERVERS: &str = include_str!("templates/dnsmasq.servers.hbs");

/// The name of dnsmasq's servers file inside the proxy's runtime directory.
pub const DNSMASQ_SERVERS_FILE: &str = "dnsmasq.servers";

/// Strict (an undefined variable is an error, not an empty string) and without HTML
/// escaping (these are config files); built once.
fn registry() -> &'static Handlebars<'static> {
    static REGISTRY: OnceLock<Handlebars<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut h = Handlebars::new();
        h.set_strict_mode(true);
        h.register_escape_fn(handlebars::no_escape);
        for (name, text) in [
            ("squid", SQUID),
            ("dnsmasq", DNSMASQ),
            ("dnsmasq.servers", DNSMASQ_SERVERS),
        ] {
            // The templates are part of the binary and rendered by every test run.
            h.register_template_string(name, text)
                .unwrap_or_else(|e| panic!("template {name} does not compile: {e}"));
        }
        h
    })
}

fn render<T: Serialize>(name: &str, data: &T) -> String {
    registry()
        .render(name, data)
        // Strict mode fails only on a field the context lacks: a bug here, not bad input,
        // since every value in the context was validated when it was built.
        .unwrap_or_else(|e| panic!("template {name} does not match its context: {e}"))
}

/// What squid.conf.hbs reads. Load-bearing: renaming a field breaks the template
/// (caught by the render tests).
#[derive(Serialize)]
struct SquidContext<'a> {
    listen_address: String,
    http_port: u16,
    runtime_dir: &'a str,
    connect_timeout: u32,
    read_timeout: u32,
    request_body_max: u32,
    dns_upstream: String,
    blocked_ranges: Vec<String>,
    domains: Vec<&'a str>,
    opaque_domains: Vec<&'a str>,
    ca_file: &'a str,
    ssl_db: &'a str,
    cert_cache: u32,
    upstream_ca: Option<&'a str>,
    helper: &'a str,
    marker_acls: Vec<String>,
    deny_info: Vec<String>,
    http_access: Vec<String>,
    ssl_bump: Vec<String>,
    opaque_marker: String,
    reply_headers: Vec<String>,
    request_headers: Vec<String>,
    path_check: bool,
}

/// The TLS and access decisions for `allowlist` under `settings`.
pub fn tls_plan(settings: &ProxySettings, allowlist: &Allowlist) -> TlsPlan {
    let decryption = Decryption::new(allowlist);
    TlsPlan::new(
        PlanInputs {
            allows_any: !allowlist.is_empty(),
            has_opaque: allowlist.opaque_domains().next().is_some(),
            blocks_any: !settings.blocked_destinations().is_empty(),
            decrypts_any: decryption.any(),
        },
        decryption,
    )
}

/// squid.conf: the allowlist as a `dstdomain` ACL, the TLS layer as `ssl_bump` rules,
/// everything else denied with a reason. Credentials carry `[secret NAME]`: this is the
/// host's render, which never holds a secret ([`render_squid_with`] is the proxy's).
pub fn render_squid(settings: &ProxySettings, allowlist: &Allowlist) -> String {
    render_squid_with(settings, allowlist, &Secrets::Redacted)
}

/// squid.conf with the credentials' secrets filled in from `secrets`.
pub fn render_squid_with(
    settings: &ProxySettings,
    allowlist: &Allowlist,
    secrets: &Secrets,
) -> String {
    let plan = tls_plan(settings, allowlist);
    render(
        "squid",
        &SquidContext {
            listen_address: settings.internal_address.to_string(),
            http_port: settings.http_port,
            runtime_dir: &settings.runtime_dir,
            connect_timeout: settings.connect_timeout.0,
            read_timeout: settings.read_timeout.0,
            request_body_max: settings.request_body_max.0,
            dns_upstream: settings.dns_upstream.to_string(),
            blocked_ranges: settings
                .blocked_destinations()
                .iter()
                .map(ToString::to_string)
                .collect(),
            domains: allowlist.domains().map(|d| d.as_str()).collect(),
            opaque_domains: allowlist.opaque_domains().map(|d| d.as_str()).collect(),
            ca_file: &settings.ca_file,
            ssl_db: &settings.ssl_db,
            cert_cache: settings.cert_cache.0,
            upstream_ca: settings.upstream_ca.as_ref().map(|p| p.as_str()),
            helper: &settings.helper,
            marker_acls: plan.marker_acl_lines(),
            deny_info: plan.deny_info_lines(),
            http_access: plan.http_access_lines(),
            ssl_bump: plan.ssl_bump_lines(),
            opaque_marker: plan.opaque_marker(),
            reply_headers: plan.reply_header_lines(),
            request_headers: plan.decryption.request_header_lines(secrets),
            path_check: !plan.decryption.ruled.is_empty(),
        },
    )
}

/// What dnsmasq.conf.hbs reads. Load-bearing.
#[derive(Serialize)]
struct DnsmasqContext {
    listen_address: String,
    servers_file: String,
}

/// What dnsmasq.servers.hbs reads. Load-bearing.
#[derive(Serialize)]
struct ServersContext<'a> {
    upstream: String,
    domains: Vec<&'a str>,
}

/// dnsmasq.conf: answers on the proxy's internal address, sinks every name to the
/// unspecified address, and reads the allowlisted names from the servers file.
pub fn render_dnsmasq(settings: &ProxySettings) -> String {
    render(
        "dnsmasq",
        &DnsmasqContext {
            listen_address: settings.internal_address.to_string(),
            servers_file: format!("{}/{DNSMASQ_SERVERS_FILE}", settings.runtime_dir),
        },
    )
}

/// The servers file: one `server=/domain/upstream` line per allowlisted domain.
/// Kept apart from dnsmasq.conf because dnsmasq re-reads it on SIGHUP (a reload
/// without restart), while dnsmasq.conf is read only at start.
pub fn render_dnsmasq_servers(settings: &ProxySettings, allowlist: &Allowlist) -> String {
    render(
        "dnsmasq.servers",
        &ServersContext {
            upstream: settings.dns_upstream.to_string(),
            domains: allowlist.domains().map(|d| d.as_str()).collect(),
        },
    )
}
