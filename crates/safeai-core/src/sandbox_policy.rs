//! The policy as the sandbox sees it: a plain-text file the proxy renders at every start
//! and reload, into a volume the sandbox mounts read-only, so that an agent can read
//! what it may reach, how, and what to do when it is refused, instead of guessing.
//!
//! It is built from the stack's settings and the normalized allowlist alone, which hold
//! names, tunnels and origins: no secret can reach it.

use std::fmt::Write as _;

use safeai_policy::{Allowlist, Handling, Origin, Tunnel};

use crate::ProxySettings;
use crate::tls::DenyReason;

/// The file's name in the policy volume.
pub const POLICY_FILE: &str = "policy.txt";

/// Where the sandbox reads it (a link in the sandbox image into the volume's directory).
pub const POLICY_PATH_IN_SANDBOX: &str = "/etc/safe-ai/policy.txt";

/// The text of the sandbox's policy file for `allowlist` under `settings`. Deterministic
/// (no time in it): the file changes exactly when what it says changes.
pub fn render_sandbox_policy(settings: &ProxySettings, allowlist: &Allowlist) -> String {
    let proxy = format!(
        "http://{}:{}",
        settings.internal_address, settings.http_port
    );
    let mut out = String::new();
    let mut line = |s: &str| {
        out.push_str(s);
        out.push('\n');
    };
    line("safe-ai: what this sandbox may reach");
    line("====================================");
    line("The proxy writes this file from its allowlist at every start and reload;");
    line("it is read-only here. The allowlist itself lives on the host.");
    line("");
    line("How to connect");
    line("--------------");
    line(&format!("- Everything goes through the proxy at {proxy}"));
    line("  (HTTP_PROXY and HTTPS_PROXY are set to it). There is no other way out:");
    line("  this network has no route to the internet, and a name that is not");
    line("  allowed resolves to 0.0.0.0.");
    line("- https:// goes as a CONNECT to port 443, http:// to port 80. No other port,");
    line("  no IP address, no private, loopback or cloud-metadata address.");
    line("- The proxy signs its own answers (a refusal inside HTTPS) with the stack CA,");
    line("  /etc/safe-ai/ca/ca.crt, which the system trust store here includes.");
    line("");
    let header = match allowlist.len() {
        0 => "Allowed: nothing (every request is denied)".to_owned(),
        1 => "Allowed: 1 domain, with its subdomains".to_owned(),
        n => format!("Allowed: {n} domains, each with its subdomains"),
    };
    line(&header);
    line(&"-".repeat(header.len()));
    if !allowlist.is_empty() {
        let width = allowlist
            .entries()
            .map(|e| e.domain.as_str().len())
            .max()
            .unwrap_or(0)
            .max("DOMAIN".len());
        line(&format!("  {:width$}  {:6}  FROM", "DOMAIN", "HOW"));
        for e in allowlist.entries() {
            let how = if e.tunnel == Tunnel::Tls && allowlist.decrypts(e.domain.as_str()) {
                "check"
            } else {
                e.tunnel.as_str()
            };
            line(&format!(
                "  {:width$}  {how:6}  {}",
                e.domain.as_str(),
                listed(e.origin)
            ));
        }
        line("");
        line("  tls     TLS only, and its handshake must name the host (SNI); then the");
        line("          bytes pass unread: end-to-end TLS with the real server.");
        if allowlist.entries().any(|e| e.tunnel == Tunnel::Opaque) {
            line("  opaque  any bytes (such as SSH on port 443), nothing checked.");
        }
        if !allowlist.rules().is_empty() || !allowlist.credentials().is_empty() {
            line("  check   decrypted by the proxy, each request checked: see below.");
        }
    }
    let checked: Vec<_> = allowlist
        .policy()
        .into_iter()
        .filter(|p| p.handling == Handling::Decrypt)
        .collect();
    if !checked.is_empty() {
        line("");
        line("Checked hosts");
        line("-------------");
        line("The proxy decrypts these (with the stack CA) and checks every request;");
        line("HTTP/1.1 only, no WebSocket. One connection carries one host's requests.");
        for p in &checked {
            line(&format!("  {}", p.domain));
            match p.rules {
                Some(r) => {
                    if r.domain != *p.domain {
                        line(&format!("    the rules of {}:", r.domain));
                    }
                    for rule in &r.allow {
                        line(&format!("    allow {rule}"));
                    }
                }
                None => line("    every request passes"),
            }
            for c in &p.credentials {
                line(&format!(
                    "    the proxy adds the key (header {})",
                    c.header.as_str()
                ));
                if let Some(e) = &c.sandbox_env {
                    line(&format!(
                        "    ${} holds a placeholder: use it as the key",
                        e.as_str()
                    ));
                }
            }
        }
        line("  Keys for these hosts are not in this sandbox: do not look for them.");
    }
    line("");
    line("When a request is denied");
    line("------------------------");
    line("The proxy answers 403 Forbidden with the reason in the X-Safe-AI-Denied");
    line("header, and a page naming the host, the reason and the fix (for https://,");
    line("inside the TLS connection: read it with `curl -sS -D - URL`). The reasons:");
    for reason in DenyReason::ALL {
        line(&format!("  {:16} {}", reason.code(), meaning(reason)));
    }
    line("");
    line("Do not look for a way around the proxy: there is none, and the attempt is");
    line("logged. If the task needs a host that is not allowed, stop and ask the");
    line("person who runs this sandbox. On the host, in the stack's directory:");
    line("  safeai allow HOST     adds HOST (and its subdomains), then reloads the proxy");
    line("  safeai learn          proposes entries for the denials seen so far");
    line("");
    let _ = writeln!(
        out,
        "After a change the proxy rewrites this file: read {POLICY_PATH_IN_SANDBOX} again."
    );
    out
}

/// Where an entry was listed, as the person on the host knows it: the file's own name
/// (the proxy reads it under another path), a variable, a preset.
fn listed(origin: &Origin) -> String {
    match origin {
        Origin::File { path, position } => {
            let name = path.rsplit('/').next().unwrap_or(path);
            Origin::File {
                path: name.into(),
                position: *position,
            }
            .to_string()
        }
        Origin::Preset { name, at } => format!("preset {name} ({})", listed(at)),
        other => other.to_string(),
    }
}

/// A reason in one line, for the list.
fn meaning(reason: DenyReason) -> &'static str {
    match reason {
        DenyReason::NotAllowlisted => "the host is not on the list above",
        DenyReason::Port => "a port other than 443 (https) or 80 (http)",
        DenyReason::Scheme => "a scheme other than http:// in a plain request",
        DenyReason::IpAddress => "the destination is an IP address, not a name",
        DenyReason::PrivateAddress => "the name resolves to a private or metadata address",
        DenyReason::SniMismatch => "the TLS server name is missing or names another host",
        DenyReason::OpaqueTunnel => "the connection carried something other than TLS",
        DenyReason::Rule => "no rule of a checked host allows this method and path",
        DenyReason::AmbiguousPath => "a checked host's path with `..`, `//`, %2f, %2e, %5c, ...",
        DenyReason::OtherHost => "a request for another host inside a checked connection",
        DenyReason::Upgrade => "WebSocket, another Upgrade or CONNECT on a checked host",
    }
}

#[cfg(test)]
mod tests {
    use safeai_policy::{Source, check};

    use super::*;

    fn allowlist(yaml: &str) -> Allowlist {
        check(&[Source::Yaml {
            name: "/etc/safe-ai/allowlist.yaml".into(),
            text: yaml.into(),
        }])
        .unwrap()
        .allowlist
    }

    #[test]
    fn the_policy_of_a_list_with_a_preset_and_an_opaque_entry() {
        let list = allowlist(
            "presets: [pypi]\ndomains:\n  - github.com\n  - {domain: ssh.github.com, tunnel: opaque}\n\
             rules:\n  - {domain: api.github.com, allow: [GET /repos/acme/**]}\n\
             credentials:\n  - {domain: api.anthropic.com, header: x-api-key, value: '${ANTHROPIC_API_KEY}', sandbox_env: ANTHROPIC_API_KEY}\n",
        );
        insta::assert_snapshot!(render_sandbox_policy(&ProxySettings::default(), &list));
    }

    #[test]
    fn an_empty_list_says_nothing_is_allowed_and_no_table() {
        let text = render_sandbox_policy(&ProxySettings::default(), &Allowlist::default());
        assert!(text.contains("Allowed: nothing (every request is denied)\n"));
        assert!(!text.contains("DOMAIN"));
        assert!(!text.contains("opaque  any bytes"));
    }

    #[test]
    fn it_names_the_proxy_as_configured_and_every_deny_reason() {
        let settings = ProxySettings {
            internal_address: std::net::Ipv4Addr::new(10, 9, 8, 7),
            ..ProxySettings::default()
        };
        let text = render_sandbox_policy(&settings, &allowlist("domains: [a.example.com]"));
        assert!(
            text.contains("the proxy at http://10.9.8.7:3128\n"),
            "{text}"
        );
        assert!(text.contains("Allowed: 1 domain, with its subdomains\n"));
        assert!(
            text.contains("  a.example.com  tls     allowlist.yaml:1:11\n"),
            "{text}"
        );
        for reason in DenyReason::ALL {
            assert!(
                text.contains(&format!("\n  {:16} ", reason.code())),
                "{reason:?}"
            );
        }
        // Every line fits a terminal.
        for l in text.lines() {
            assert!(l.chars().count() <= 80, "{l}");
        }
    }

    #[test]
    fn origins_name_the_file_as_the_host_knows_it() {
        let at = Origin::file_at("/etc/safe-ai/allowlist.yaml", 3, 5);
        assert_eq!(listed(&at), "allowlist.yaml:3:5");
        let preset = Origin::Preset {
            name: "npm",
            at: Box::new(at),
        };
        assert_eq!(listed(&preset), "preset npm (allowlist.yaml:3:5)");
        let env = Origin::Env {
            var: "SAFE_AI_DEFAULT_DOMAINS".into(),
            index: 2,
        };
        assert_eq!(listed(&env), "SAFE_AI_DEFAULT_DOMAINS[2]");
    }
}
