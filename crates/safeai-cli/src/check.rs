//! `safeai check`: the allowlist's problems, then the effective policy per host: how its
//! HTTPS passes (spliced, opaque, decrypted), the rules that judge it, the credentials
//! the proxy adds (their secrets by name only).

use safeai_policy::{Allowlist, Handling, HostPolicy, check};

use crate::{AllowlistArgs, Failed, Format, load, print, sources};

/// Runs `safeai check`.
pub fn run(args: &AllowlistArgs, format: Format) -> Result<(), Failed> {
    match format {
        Format::Text => {
            let checked = load(args)?;
            print(&text(&checked.allowlist))
        }
        Format::Json => json(args),
    }
}

/// The policy as a table a terminal shows: one line per host, its rules and
/// credentials indented under it.
fn text(allowlist: &Allowlist) -> String {
    let policy = allowlist.policy();
    let width = policy
        .iter()
        .map(|p| p.domain.as_str().len())
        .max()
        .unwrap_or(0);
    let origin_width = policy
        .iter()
        .map(|p| p.origin.to_string().len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for p in &policy {
        out.push_str(&format!(
            "{:width$}  {:origin_width$}  {}\n",
            p.domain.as_str(),
            p.origin.to_string(),
            how(p)
        ));
        let indent = " ".repeat(width + 4);
        if let Some(rules) = p.rules {
            for r in &rules.allow {
                out.push_str(&format!("{indent}allow {r}\n"));
            }
        }
        for c in &p.credentials {
            out.push_str(&format!(
                "{indent}credential {}: {} (secret {}, kept by the proxy){}\n",
                c.header.as_str(),
                c.value,
                c.value.secret.as_str(),
                c.sandbox_env
                    .as_ref()
                    .map(|e| format!("; the sandbox's {} holds a placeholder", e.as_str()))
                    .unwrap_or_default()
            ));
        }
    }
    out.push_str(&format!("{} domains allowed\n", allowlist.len()));
    out
}

fn how(p: &HostPolicy<'_>) -> String {
    match p.handling {
        Handling::Splice => "spliced (TLS end to end, SNI checked)".into(),
        Handling::Opaque => "opaque tunnel (any bytes, unread)".into(),
        Handling::Decrypt => match p.rules {
            Some(r) if r.domain == *p.domain => "decrypted: only these requests pass".into(),
            Some(r) => format!(
                "decrypted: the rules of {} ({}) judge it",
                r.domain, r.origin
            ),
            None => "decrypted: every request passes, with the credential".into(),
        },
    }
}

fn json(args: &AllowlistArgs) -> Result<(), Failed> {
    let (valid, doc) = match check(&sources(args)) {
        Ok(c) => (
            true,
            serde_json::json!({
                "valid": true,
                "domains": c.allowlist.entries().collect::<Vec<_>>(),
                "policy": c.allowlist.policy(),
                "diagnostics": c.diagnostics,
            }),
        ),
        Err(r) => (
            false,
            serde_json::json!({ "valid": false, "domains": [], "policy": [], "diagnostics": r.diagnostics }),
        ),
    };
    print(&format!("{doc:#}\n"))?;
    if valid { Ok(()) } else { Err(Failed) }
}
