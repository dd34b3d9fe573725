//! One snapshot per fixture scenario: what `check` says about it.
//!
//! Its own test binary: insta's `glob!` failure collector is process-global.

use std::path::Path;

use safeai_policy::{Source, Tunnel, check, render};

/// The sources of a fixture directory: `allowlist.yaml`, and `default-domains` as the
/// value of `SAFE_AI_DEFAULT_DOMAINS` when present.
fn sources(dir: &Path) -> Vec<Source> {
    let mut sources = vec![Source::Yaml {
        name: "allowlist.yaml".into(),
        text: std::fs::read_to_string(dir.join("allowlist.yaml")).unwrap(),
    }];
    if let Ok(value) = std::fs::read_to_string(dir.join("default-domains")) {
        sources.push(Source::List {
            var: "SAFE_AI_DEFAULT_DOMAINS".into(),
            value: value.trim_end_matches('\n').into(),
        });
    }
    sources
}

#[test]
fn valid_fixtures() {
    insta::glob!("../../../fixtures", "valid/*/allowlist.yaml", |path| {
        let checked = check(&sources(path.parent().unwrap()))
            .unwrap_or_else(|r| panic!("{} was rejected:\n{r}", path.display()));
        let mut out = String::from("==== allowlist ====\n");
        for e in checked.allowlist.entries() {
            out.push_str(&format!("{}  ({})", e.domain, e.origin));
            if e.tunnel != Tunnel::Tls {
                out.push_str(&format!("  tunnel: {}", e.tunnel.as_str()));
            }
            out.push('\n');
        }
        // With tunnels, what the renderers read differs from the entries: show it.
        if checked.allowlist.opaque_domains().len() > 0 {
            out.push_str("==== domains (no entry covering another) ====\n");
            for d in checked.allowlist.domains() {
                out.push_str(&format!("{d}\n"));
            }
            out.push_str("==== opaque domains ====\n");
            for d in checked.allowlist.opaque_domains() {
                out.push_str(&format!("{d}\n"));
            }
        }
        let (rules, credentials) = (checked.allowlist.rules(), checked.allowlist.credentials());
        if !rules.is_empty() {
            out.push_str("==== rules ====\n");
            for r in rules {
                out.push_str(&format!("{}  ({})\n", r.domain, r.origin));
                for rule in &r.allow {
                    out.push_str(&format!("  {rule}  {}\n", rule.path.regex()));
                }
            }
        }
        if !credentials.is_empty() {
            out.push_str("==== credentials ====\n");
            for c in credentials {
                out.push_str(&format!(
                    "{}  {}: {}  sandbox_env: {}  ({})\n",
                    c.domain,
                    c.header.as_str(),
                    c.value,
                    c.sandbox_env.as_ref().map_or("-", |e| e.as_str()),
                    c.origin
                ));
            }
        }
        out.push_str("==== diagnostics ====\n");
        out.push_str(&render(&checked.diagnostics));
        insta::assert_snapshot!(out);
    });
}

#[test]
fn invalid_fixtures() {
    insta::glob!("../../../fixtures", "invalid/*/allowlist.yaml", |path| {
        let rejected = match check(&sources(path.parent().unwrap())) {
            Ok(c) => panic!(
                "{} was accepted: {:?}",
                path.display(),
                c.allowlist.domains().collect::<Vec<_>>()
            ),
            Err(r) => r,
        };
        insta::assert_snapshot!(rejected.to_string());
    });
}
