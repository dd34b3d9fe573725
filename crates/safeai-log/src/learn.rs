//! `safeai learn`: the denials seen, turned into the allowlist entries that would have
//! allowed them, and the denials no entry can or should fix, each with why.
//!
//! It proposes the exact host that was denied (`files.pythonhosted.org`, not
//! `pythonhosted.org`): each entry also allows the host's subdomains, and nothing more
//! is opened than what was asked for. Proposals are grouped by registrable domain so a
//! reader sees that `registry.npmjs.org` and `www.npmjs.org` belong together.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use safeai_policy::{Allowlist, Domain, Escaped, Warning};
use serde::Serialize;

use crate::summary::reason;
use crate::{Event, Kind, Timestamp, registrable_domain};

/// Requests of one shape (`CONNECT registry.npmjs.org:443`) that an entry would have allowed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Requests {
    /// `METHOD host:port`, or `DNS A host`.
    pub request: String,
    /// How many.
    pub count: u64,
    /// The last one.
    pub last: Timestamp,
}

/// An entry to add.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Proposed {
    /// The entry.
    pub domain: Domain,
    /// Its registrable domain, the group it is shown in.
    pub group: String,
    /// The denied requests it would have allowed.
    pub requests: Vec<Requests>,
    /// The preset that already allows it, if one does (`presets: [NAME]` instead).
    pub preset: Option<&'static str>,
    /// What `safeai check` would say about it (shared hosting, unknown suffix, …).
    #[serde(serialize_with = "messages")]
    pub warnings: Vec<Warning>,
}

fn messages<S: serde::Serializer>(w: &[Warning], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(w.iter().map(|w| format!("{w} ({})", w.code())))
}

/// Denials `learn` does not turn into entries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refused {
    /// The host as asked for.
    pub host: String,
    /// The denial's reason.
    pub reason: String,
    /// How many.
    pub count: u64,
    /// Why no entry is proposed.
    pub why: &'static str,
}

/// What `learn` proposes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Proposal {
    /// The entries to add, by group then name.
    pub entries: Vec<Proposed>,
    /// The denials it will not propose, by host.
    pub refused: Vec<Refused>,
}

/// Why a denial of this reason gets no entry, or `None` when an entry is the fix.
pub fn refusal(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "not-allowlisted" => return None,
        "ip-address" => {
            "the destination is an IP address: only names can be allowlisted; have the client use the host's name"
        }
        "private-address" => {
            "the name is allowlisted but resolves to a private, loopback, link-local or metadata address, which stays blocked; for a service of your own, see SAFE_AI_PRIVATE_EXCEPTIONS"
        }
        "sni-mismatch" => {
            "the TLS server name is missing or differs from the CONNECT target (a misconfigured client, or domain fronting): no entry changes that"
        }
        "port" => "only port 443 (HTTPS) and port 80 (HTTP) pass the proxy; no entry opens another",
        "scheme" => "the proxy speaks only http:// and CONNECT; no entry changes the scheme",
        "opaque-tunnel" => {
            "the bytes inside the CONNECT were not TLS: that needs `tunnel: opaque` on the entry, which learn never adds; add it by hand if you mean it"
        }
        "rule" => {
            "a method/path rule of the entry refused it: learn does not widen rules; edit the rule by hand"
        }
        _ => "denied for a reason learn does not know",
    })
}

/// The proposal for the denied decisions among `events` against the `allowlist` that
/// runs now; `preset` names the preset that already allows a host.
pub fn propose<'a>(
    events: impl IntoIterator<Item = &'a Event>,
    allowlist: &Allowlist,
    preset: impl Fn(&str) -> Option<&'static str>,
) -> Proposal {
    // host -> (check's warnings, request shape -> (count, last)); DNS lookups apart.
    type Shapes = BTreeMap<String, (u64, Timestamp)>;
    let mut asked: BTreeMap<Domain, (Vec<Warning>, Shapes)> = BTreeMap::new();
    let mut looked_up: BTreeMap<String, u64> = BTreeMap::new();
    let mut refused: BTreeMap<(String, String), (u64, &'static str)> = BTreeMap::new();
    for e in events {
        if !e.is_denied() || !e.is_decision() {
            continue;
        }
        let reason = reason(e);
        let host = e.host.to_ascii_lowercase();
        if let Some(why) = refusal(reason) {
            refused
                .entry((host, reason.to_owned()))
                .or_insert((0, why))
                .0 += 1;
            continue;
        }
        let Ok(v) = Domain::parse(&host) else {
            refused
                .entry((host, reason.to_owned()))
                .or_insert((0, "not a name an entry can hold (see `safeai check`)"))
                .0 += 1;
            continue;
        };
        if allowlist.allows(v.domain.as_str()) {
            // Allowed since (an earlier learn, or `safeai allow`).
            continue;
        }
        if e.kind == Kind::Dns {
            *looked_up.entry(v.domain.as_str().to_owned()).or_default() += 1;
            continue;
        }
        let shape = match e.port {
            Some(port) => format!("{} {}:{port}", e.method.as_deref().unwrap_or("?"), v.domain),
            None => format!("{} {}", e.method.as_deref().unwrap_or("?"), v.domain),
        };
        let (_, shapes) = asked
            .entry(v.domain)
            .or_insert_with(|| (v.warnings, BTreeMap::new()));
        let slot = shapes.entry(shape).or_insert((0, e.time));
        slot.0 += 1;
        slot.1 = slot.1.max(e.time);
    }
    // A name only looked up, never asked for through the proxy: a client that uses the
    // proxy needs no DNS answer, so an entry would open a name nothing needs.
    for (host, count) in looked_up {
        let covered = Domain::parse(&host).is_ok_and(|v| asked.keys().any(|d| d.covers(&v.domain)));
        if !covered {
            refused.insert(
                (host, "not-allowlisted".to_owned()),
                (
                    count,
                    "only looked up in DNS, never asked for through the proxy: a client that uses the proxy does not need the name resolved (one that does not has no route out anyway)",
                ),
            );
        }
    }
    // An entry under another proposed one is redundant: the broader one allows it.
    let names: BTreeSet<Domain> = asked.keys().cloned().collect();
    let mut entries: Vec<Proposed> = Vec::new();
    let mut folded: BTreeMap<Domain, Vec<Requests>> = BTreeMap::new();
    for (domain, (warnings, shapes)) in asked {
        let requests: Vec<Requests> = shapes
            .into_iter()
            .map(|(request, (count, last))| Requests {
                request,
                count,
                last,
            })
            .collect();
        if let Some(parent) = names.iter().find(|p| **p != domain && p.covers(&domain)) {
            folded.entry(parent.clone()).or_default().extend(requests);
            continue;
        }
        entries.push(Proposed {
            group: registrable_domain(domain.as_str()),
            preset: preset(domain.as_str()),
            domain,
            requests,
            warnings,
        });
    }
    for e in &mut entries {
        if let Some(more) = folded.remove(&e.domain) {
            e.requests.extend(more);
        }
    }
    entries.sort_by(|a, b| (&a.group, &a.domain).cmp(&(&b.group, &b.domain)));
    Proposal {
        entries,
        refused: refused
            .into_iter()
            .map(|((host, reason), (count, why))| Refused {
                host,
                reason,
                count,
                why,
            })
            .collect(),
    }
}

impl Proposal {
    /// The domains to add, in order.
    pub fn domains(&self) -> Vec<Domain> {
        self.entries.iter().map(|e| e.domain.clone()).collect()
    }

    /// The proposal as text for a terminal (the diff of the file follows it).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if self.entries.is_empty() {
            out.push_str("nothing to propose: no denial that an entry would fix\n");
        } else {
            let _ = writeln!(
                out,
                "{} entr{} to add:",
                self.entries.len(),
                if self.entries.len() == 1 { "y" } else { "ies" }
            );
            let mut group = None;
            for e in &self.entries {
                if group != Some(&e.group) {
                    let _ = writeln!(out, "\n  {}", Escaped(&e.group));
                    group = Some(&e.group);
                }
                let total: u64 = e.requests.iter().map(|r| r.count).sum();
                let _ = writeln!(
                    out,
                    "    + {}  would have allowed {total} denied request{}:",
                    e.domain,
                    if total == 1 { "" } else { "s" }
                );
                for r in &e.requests {
                    let _ = writeln!(out, "        {} ×{}", Escaped(&r.request), r.count);
                }
                if let Some(p) = e.preset {
                    let _ = writeln!(
                        out,
                        "      preset `{p}` already allows it: `presets: [{p}]` says the same, with the hosts its client needs"
                    );
                }
                for w in &e.warnings {
                    let _ = writeln!(out, "      warning: {w}\n        = hint: {}", w.hint());
                }
            }
        }
        if !self.refused.is_empty() {
            out.push_str("\nnot proposed:\n");
            for r in &self.refused {
                let _ = writeln!(
                    out,
                    "  {} ({}, ×{}): {}",
                    Escaped(&r.host),
                    r.reason,
                    r.count,
                    r.why
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Decision;

    fn denied(kind: Kind, method: &str, host: &str, port: Option<u16>, reason: &str) -> Event {
        let mut e = Event::new(
            Timestamp(1_796_224_838_000),
            kind,
            "c",
            host,
            Decision::Denied,
        );
        e.method = (!method.is_empty()).then(|| method.to_owned());
        e.port = port;
        e.reason = Some(reason.into());
        e
    }

    fn allowlist() -> Allowlist {
        safeai_policy::check(&[safeai_policy::Source::Yaml {
            name: "allowlist.yaml".into(),
            text: "domains:\n  - pypi.org\n  - metadata.allowed.test\n".into(),
        }])
        .unwrap()
        .allowlist
    }

    #[test]
    fn proposes_the_denied_hosts_and_names_what_it_will_not() {
        use Kind::{Connect, Dns, Http, Https};
        let events = [
            denied(
                Connect,
                "CONNECT",
                "files.pythonhosted.org",
                Some(443),
                "not-allowlisted",
            ),
            denied(
                Https,
                "GET",
                "files.pythonhosted.org",
                Some(443),
                "not-allowlisted",
            ),
            denied(
                Connect,
                "CONNECT",
                "files.pythonhosted.org",
                Some(443),
                "not-allowlisted",
            ),
            denied(
                Http,
                "GET",
                "Files.Pythonhosted.org",
                Some(80),
                "not-allowlisted",
            ),
            denied(
                Connect,
                "CONNECT",
                "a.b.github.io",
                Some(443),
                "not-allowlisted",
            ),
            denied(
                Connect,
                "CONNECT",
                "registry.npmjs.org",
                Some(443),
                "not-allowlisted",
            ),
            denied(
                Connect,
                "CONNECT",
                "x.registry.npmjs.org",
                Some(443),
                "not-allowlisted",
            ),
            denied(Dns, "", "registry.npmjs.org", None, "not-allowlisted"),
            denied(Dns, "", "telemetry.example.com", None, "not-allowlisted"),
            // Allowed since: nothing to add.
            denied(Connect, "CONNECT", "pypi.org", Some(443), "not-allowlisted"),
            denied(
                Connect,
                "CONNECT",
                "169.254.169.254",
                Some(443),
                "ip-address",
            ),
            denied(
                Connect,
                "CONNECT",
                "metadata.allowed.test",
                Some(443),
                "private-address",
            ),
            denied(Connect, "CONNECT", "pypi.org", Some(443), "sni-mismatch"),
            denied(Connect, "CONNECT", "pypi.org", Some(8443), "port"),
            denied(
                Connect,
                "CONNECT",
                "we\"ird\u{1b}.test",
                Some(443),
                "not-allowlisted",
            ),
        ];
        let preset = |h: &str| (h == "registry.npmjs.org").then_some("npm");
        let p = propose(&events, &allowlist(), preset);
        assert_eq!(
            p.domains().iter().map(Domain::as_str).collect::<Vec<_>>(),
            [
                "a.b.github.io",
                "registry.npmjs.org",
                "files.pythonhosted.org"
            ]
        );
        insta::assert_snapshot!(p.to_text(), @r#"
        3 entries to add:

          b.github.io
            + a.b.github.io  would have allowed 1 denied request:
                CONNECT a.b.github.io:443 ×1

          npmjs.org
            + registry.npmjs.org  would have allowed 2 denied requests:
                CONNECT registry.npmjs.org:443 ×1
                CONNECT x.registry.npmjs.org:443 ×1
              preset `npm` already allows it: `presets: [npm]` says the same, with the hosts its client needs

          pythonhosted.org
            + files.pythonhosted.org  would have allowed 3 denied requests:
                CONNECT files.pythonhosted.org:443 ×2
                GET files.pythonhosted.org:80 ×1

        not proposed:
          169.254.169.254 (ip-address, ×1): the destination is an IP address: only names can be allowlisted; have the client use the host's name
          metadata.allowed.test (private-address, ×1): the name is allowlisted but resolves to a private, loopback, link-local or metadata address, which stays blocked; for a service of your own, see SAFE_AI_PRIVATE_EXCEPTIONS
          pypi.org (port, ×1): only port 443 (HTTPS) and port 80 (HTTP) pass the proxy; no entry opens another
          pypi.org (sni-mismatch, ×1): the TLS server name is missing or differs from the CONNECT target (a misconfigured client, or domain fronting): no entry changes that
          telemetry.example.com (not-allowlisted, ×1): only looked up in DNS, never asked for through the proxy: a client that uses the proxy does not need the name resolved (one that does not has no route out anyway)
          we"ird\u{1b}.test (not-allowlisted, ×1): not a name an entry can hold (see `safeai check`)
        "#);
    }

    #[test]
    fn a_shared_hosting_suffix_carries_check_s_warning() {
        let events = [denied(
            Kind::Connect,
            "CONNECT",
            "github.io",
            Some(443),
            "not-allowlisted",
        )];
        let p = propose(&events, &allowlist(), |_| None);
        assert_eq!(p.entries.len(), 1);
        assert_eq!(
            p.entries[0]
                .warnings
                .iter()
                .map(Warning::code)
                .collect::<Vec<_>>(),
            ["private-suffix"]
        );
        assert!(
            p.to_text()
                .contains("warning: `github.io` is a shared hosting suffix"),
            "{}",
            p.to_text()
        );
    }

    #[test]
    fn nothing_denied_proposes_nothing() {
        let p = propose(&[], &allowlist(), |_| None);
        assert_eq!(
            p.to_text(),
            "nothing to propose: no denial that an entry would fix\n"
        );
    }
}
