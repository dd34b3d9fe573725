//! The merged, validated, normalized allowlist, and the check that builds it.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use crate::Origin;
use crate::diagnostic::{Diagnostic, Warning, render};
use crate::domain::Domain;
use crate::options::Tunnel;
use crate::rules::{Credential, HostRules, RuleError};
use crate::sections::Sections;
use crate::source::{self, Source};

/// The set of allowed domains, each standing for itself and its subdomains, with what
/// may travel inside a CONNECT to it.
///
/// Normalized (see [`Allowlist::normalize`]): no entry is made redundant by another,
/// and iteration is in name order, so every artifact rendered from it is byte-identical
/// for the same input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    /// Sorted by domain, no duplicates, no entry covered by a broader one that allows
    /// at least as much.
    entries: Vec<Kept>,
    /// Indices into `entries` of the names no other entry covers, whatever its tunnel.
    names: Vec<usize>,
    /// Indices into `entries` of the opaque entries.
    opaque: Vec<usize>,
    /// The hosts with method and path rules, by domain.
    rules: Vec<HostRules>,
    /// The brokered credentials, by domain and header.
    credentials: Vec<Credential>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Kept {
    domain: Domain,
    tunnel: Tunnel,
    origin: Origin,
}

/// A domain of the allowlist with its options and the place it was first listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Entry<'a> {
    /// The domain.
    pub domain: &'a Domain,
    /// Where it was listed.
    pub origin: &'a Origin,
    /// What may travel inside a CONNECT to it.
    pub tunnel: Tunnel,
}

/// What the proxy does with one host: the effective policy `safeai check` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostPolicy<'a> {
    /// The host (and its subdomains, except those listed on their own).
    pub domain: &'a Domain,
    /// Where the entry that allows it is written (a rules or credentials entry when
    /// only that allows it).
    pub origin: &'a Origin,
    /// `splice`, `opaque` or `decrypt`.
    pub handling: Handling,
    /// For a decrypted host with rules: the rules that judge it, and where they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<&'a HostRules>,
    /// The credentials the proxy adds on its requests (secrets by name only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<&'a Credential>,
}

/// How the proxy passes a host's HTTPS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Handling {
    /// Passed through untouched after the SNI check: end-to-end TLS with the server.
    Splice,
    /// `tunnel: opaque`: any bytes, never read.
    Opaque,
    /// Decrypted with the stack CA; each request checked (rules) or given a credential.
    Decrypt,
}

/// A usable allowlist and the warnings and notes found on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The allowlist.
    pub allowlist: Allowlist,
    /// Warnings and notes, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

/// An allowlist that was rejected: at least one of the diagnostics is an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// Every error, warning and note, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.diagnostics.iter().filter(|d| d.is_error()).count();
        write!(
            f,
            "{}the allowlist has {errors} error{}; nothing was changed",
            render(&self.diagnostics),
            if errors == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Rejected {}

impl Sections {
    /// Sorts the entries by host (and header), and reports a second entry for one host
    /// (one header of a host) as an error at the later one.
    fn dedup(&mut self, diagnostics: &mut Vec<Diagnostic>) {
        let mut error = |origin: &Origin, e: RuleError| {
            diagnostics.push(Diagnostic::error(origin.clone(), e.into()));
        };
        // Stable sorts: the first listing stays first, the later ones are the errors.
        self.rules.sort_by(|a, b| a.domain.cmp(&b.domain));
        self.rules.dedup_by(|later, first| {
            let same = later.domain == first.domain;
            if same {
                error(
                    &later.origin,
                    RuleError::DuplicateRules {
                        domain: later.domain.clone(),
                        first: first.origin.clone(),
                    },
                );
            }
            same
        });
        self.credentials
            .sort_by(|a, b| (&a.domain, &a.header).cmp(&(&b.domain, &b.header)));
        self.credentials.dedup_by(|later, first| {
            let same = later.domain == first.domain && later.header == first.header;
            if same {
                error(
                    &later.origin,
                    RuleError::DuplicateCredential {
                        domain: later.domain.clone(),
                        header: later.header.as_str().to_owned(),
                        first: first.origin.clone(),
                    },
                );
            }
            same
        });
    }
}

/// Reads, validates, merges and normalizes `sources`, in order.
///
/// Every problem of every source is reported at once.
///
/// # Errors
///
/// [`Rejected`] when any entry or source has an error; nothing is returned to render then.
pub fn check(sources: &[Source]) -> Result<Checked, Rejected> {
    let mut diagnostics = Vec::new();
    let mut valid = Vec::new();
    let mut sections = Sections::default();
    for src in sources {
        for raw in source::read(src, &mut diagnostics, &mut sections) {
            // The name's findings first: the entry's position comes before its options'.
            match raw.text.map(|text| Domain::parse(&text)) {
                Ok(Ok(v)) => {
                    for w in v.warnings {
                        diagnostics.push(Diagnostic::warning(Some(raw.origin.clone()), w));
                    }
                    valid.push((v.domain, raw.tunnel, raw.origin));
                }
                Ok(Err(errors)) => {
                    for e in errors {
                        diagnostics.push(Diagnostic::error(raw.origin.clone(), e));
                    }
                }
                Err(e) => diagnostics.push(Diagnostic::error(raw.origin, e)),
            }
            for (origin, e) in raw.problems {
                diagnostics.push(Diagnostic::error(origin, e));
            }
        }
    }
    // Source order: sources come in order and origins order like them (file, then
    // variable); the stable sort keeps the order of several findings on one entry.
    // A preset's entries sort at the place the preset is named.
    fn key(d: &Diagnostic) -> (bool, Option<&Origin>) {
        let listed = d.origin.as_ref().map(Origin::listed);
        (listed.is_none(), listed)
    }
    sections.dedup(&mut diagnostics);
    if diagnostics.iter().any(Diagnostic::is_error) {
        diagnostics.sort_by(|a, b| key(a).cmp(&key(b)));
        return Err(Rejected { diagnostics });
    }
    let mut allowlist = Allowlist::normalize(valid, &mut diagnostics);
    allowlist.attach(sections, &mut diagnostics);
    diagnostics.sort_by(|a, b| key(a).cmp(&key(b)));
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(Rejected { diagnostics });
    }
    if allowlist.is_empty() {
        diagnostics.push(Diagnostic::warning(None, Warning::EmptyAllowlist));
    }
    Ok(Checked {
        allowlist,
        diagnostics,
    })
}

impl Allowlist {
    /// Builds an allowlist from validated domains, each with its tunnel. The rules, all
    /// order-independent and idempotent:
    ///
    /// - Duplicates of a domain become one entry with the most permissive tunnel of
    ///   them (opaque if any says opaque) and the origin of the first listing; each
    ///   later listing gets a [`Warning::Duplicate`].
    /// - An entry under a broader one (a parent domain) is dropped with a
    ///   [`Warning::Covered`] only when the broader one allows at least as much
    ///   ([`Tunnel::covers`]): an opaque parent covers every child, a TLS parent only TLS
    ///   children. An opaque child of a TLS parent (`ssh.github.com` under `github.com`)
    ///   stays: it widens the parent for that name.
    ///
    /// What a host may do is unchanged by it: [`Allowlist::allows`] and
    /// [`Allowlist::tunnel`] answer as they would over the entries as listed.
    pub fn normalize(
        domains: impl IntoIterator<Item = (Domain, Tunnel, Origin)>,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Allowlist {
        // Sorting by name (stable, so the first listing of a duplicate stays first) puts
        // duplicates side by side and lets the map be built in one pass.
        let mut sorted: Vec<Kept> = domains
            .into_iter()
            .map(|(domain, tunnel, origin)| Kept {
                domain,
                tunnel,
                origin,
            })
            .collect();
        sorted.sort_by(|a, b| a.domain.cmp(&b.domain));
        let mut unique: Vec<Kept> = Vec::with_capacity(sorted.len());
        for entry in sorted {
            match unique.last_mut() {
                Some(first) if first.domain == entry.domain => {
                    first.tunnel = first.tunnel.max(entry.tunnel);
                    diagnostics.push(Diagnostic::warning(
                        Some(entry.origin),
                        Warning::Duplicate {
                            domain: entry.domain,
                            first: first.origin.clone(),
                        },
                    ));
                }
                _ => unique.push(entry),
            }
        }

        // A name's proper parents: one lookup per label, the broadest first.
        let index: HashMap<&str, usize> = unique
            .iter()
            .enumerate()
            .map(|(i, e)| (e.domain.as_str(), i))
            .collect();
        let parents = |name: &'_ str| {
            name.rmatch_indices('.')
                .filter_map(|(i, _)| index.get(&name[i + 1..]).copied())
                .collect::<Vec<usize>>()
        };
        let any_opaque = unique.iter().any(|e| e.tunnel == Tunnel::Opaque);
        let covered: Vec<Option<usize>> = unique
            .iter()
            .map(|entry| {
                let name = entry.domain.as_str();
                if !any_opaque {
                    // Every parent covers: stop at the first (broadest), with no Vec.
                    return name
                        .rmatch_indices('.')
                        .find_map(|(i, _)| index.get(&name[i + 1..]).copied());
                }
                // The broadest parent that allows as much is kept itself: anything
                // broader that covered it would allow as much too and be found first.
                parents(name)
                    .into_iter()
                    .find(|&p| unique[p].tunnel.covers(entry.tunnel))
            })
            .collect();
        // The renderers' names: an opaque entry kept under a TLS parent is inside it.
        let inside_kept: Vec<bool> = if any_opaque {
            unique
                .iter()
                .map(|entry| {
                    parents(entry.domain.as_str())
                        .iter()
                        .any(|&p| covered[p].is_none())
                })
                .collect()
        } else {
            Vec::new()
        };
        drop(index);
        for (i, cover) in covered.iter().enumerate() {
            if let Some(&c) = cover.as_ref() {
                diagnostics.push(Diagnostic::warning(
                    Some(unique[i].origin.clone()),
                    Warning::Covered {
                        domain: unique[i].domain.clone(),
                        by: unique[c].domain.clone(),
                        at: unique[c].origin.clone(),
                    },
                ));
            }
        }
        let mut allowlist = Allowlist::default();
        for (i, entry) in unique.into_iter().enumerate() {
            if covered[i].is_some() {
                continue;
            }
            let at = allowlist.entries.len();
            if !inside_kept.get(i).copied().unwrap_or(false) {
                allowlist.names.push(at);
            }
            if entry.tunnel == Tunnel::Opaque {
                allowlist.opaque.push(at);
            }
            allowlist.entries.push(entry);
        }
        allowlist
    }

    /// Whether a request to `host` is allowed, with Squid's `dstdomain .example.com`
    /// semantics: the name or any subdomain, case-insensitive, trailing dot ignored.
    pub fn allows(&self, host: &str) -> bool {
        self.tunnel(host).is_some()
    }

    /// What may travel inside a CONNECT to `host`: `None` when it is not allowed,
    /// [`Tunnel::Opaque`] when an opaque entry covers it (the name or a parent, matched
    /// as [`Allowlist::allows`] does), else [`Tunnel::Tls`].
    pub fn tunnel(&self, host: &str) -> Option<Tunnel> {
        // The most specific entry decides: an opaque entry above a TLS one would have
        // covered it, so only TLS entries can have a wider entry above them.
        self.covering(host).map(|e| e.tunnel)
    }

    /// Adds the rules and credentials: each host is allowlisted by them if no entry
    /// allows it yet. A second entry for one host (one header), and rules or a credential
    /// under a `tunnel: opaque` entry, are errors.
    fn attach(&mut self, sections: Sections, diagnostics: &mut Vec<Diagnostic>) {
        let mut error = |origin: &Origin, e: RuleError| {
            diagnostics.push(Diagnostic::error(origin.clone(), e.into()));
        };
        let hosts = sections
            .rules
            .iter()
            .map(|r| (&r.domain, &r.origin, "checked"))
            .chain(
                sections
                    .credentials
                    .iter()
                    .map(|c| (&c.domain, &c.origin, "given a credential")),
            );
        let mut implicit = Vec::new();
        for (domain, origin, what) in hosts {
            match self.covering(domain.as_str()) {
                Some(kept) if kept.tunnel == Tunnel::Opaque => error(
                    origin,
                    RuleError::OpaqueHost {
                        domain: domain.clone(),
                        at: kept.origin.clone(),
                        what,
                    },
                ),
                Some(_) => {}
                None => implicit.push((domain.clone(), Tunnel::Tls, origin.clone())),
            }
        }
        if !implicit.is_empty() {
            let listed = std::mem::take(&mut self.entries)
                .into_iter()
                .map(|k| (k.domain, k.tunnel, k.origin));
            *self = Allowlist::normalize(listed.chain(implicit), &mut Vec::new());
        }
        self.rules = sections.rules;
        self.credentials = sections.credentials;
    }

    /// The most specific entry that allows `host` (case-insensitive, a trailing dot
    /// ignored): the one lookup behind [`Allowlist::tunnel`] and [`Allowlist::entry_for`].
    fn covering(&self, host: &str) -> Option<&Kept> {
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        let mut candidate = host.as_str();
        loop {
            if let Ok(i) = self.position(candidate) {
                return Some(&self.entries[i]);
            }
            candidate = candidate.split_once('.')?.1;
        }
    }

    /// Every host the proxy treats on its own, in name order: each entry, and each host
    /// with rules or a credential, with how its HTTPS passes.
    pub fn policy(&self) -> Vec<HostPolicy<'_>> {
        let mut hosts: Vec<(&Domain, &Origin)> = self
            .entries
            .iter()
            .map(|e| (&e.domain, &e.origin))
            .chain(self.rules.iter().map(|r| (&r.domain, &r.origin)))
            .chain(self.credentials.iter().map(|c| (&c.domain, &c.origin)))
            .collect();
        // The entry's origin first for a name listed both ways (stable sort).
        hosts.sort_by(|a, b| a.0.cmp(b.0));
        hosts.dedup_by(|later, first| later.0 == first.0);
        hosts
            .into_iter()
            .map(|(domain, origin)| {
                let name = domain.as_str();
                let (rules, credentials) = (
                    self.rules_for(name),
                    self.credentials_for(name).collect::<Vec<_>>(),
                );
                let handling = if self.tunnel(name) == Some(Tunnel::Opaque) {
                    Handling::Opaque
                } else if rules.is_some() || !credentials.is_empty() {
                    Handling::Decrypt
                } else {
                    Handling::Splice
                };
                HostPolicy {
                    domain,
                    origin,
                    handling,
                    rules: rules.filter(|_| handling == Handling::Decrypt),
                    credentials: if handling == Handling::Decrypt {
                        credentials
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect()
    }

    /// The hosts with rules, in name order.
    pub fn rules(&self) -> &[HostRules] {
        &self.rules
    }

    /// The brokered credentials, in name and header order.
    pub fn credentials(&self) -> &[Credential] {
        &self.credentials
    }

    /// The rules that judge the requests to `host`: those of the most specific ruled
    /// domain that is `host` or one of its parents.
    pub fn rules_for(&self, host: &str) -> Option<&HostRules> {
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        let mut candidate = host.as_str();
        loop {
            if let Ok(i) = self
                .rules
                .binary_search_by(|r| r.domain.as_str().cmp(candidate))
            {
                return Some(&self.rules[i]);
            }
            candidate = candidate.split_once('.')?.1;
        }
    }

    /// The credentials added to the requests for exactly `host`.
    pub fn credentials_for<'a>(
        &'a self,
        host: &'a str,
    ) -> impl Iterator<Item = &'a Credential> + 'a {
        let host = host.strip_suffix('.').unwrap_or(host);
        self.credentials
            .iter()
            .filter(move |c| c.domain.as_str().eq_ignore_ascii_case(host))
    }

    /// Whether the proxy decrypts the connections to `host`: it has rules, or a
    /// credential.
    pub fn decrypts(&self, host: &str) -> bool {
        self.rules_for(host).is_some() || self.credentials_for(host).next().is_some()
    }

    /// The entry that decides for `host` (matched as [`Allowlist::allows`] does): the
    /// most specific one that covers it, with its origin, or `None` when it is not
    /// allowed. The decision log names it for every request.
    pub fn entry_for(&self, host: &str) -> Option<Entry<'_>> {
        self.covering(host).map(|e| Entry {
            domain: &e.domain,
            origin: &e.origin,
            tunnel: e.tunnel,
        })
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|e| e.domain.as_str().cmp(name))
    }

    /// The names no other entry covers, whatever the tunnels, in name order: what an
    /// allowlist of names alone (Squid's `dstdomain` ACL, dnsmasq's servers) needs, with
    /// no entry overlapping another.
    pub fn domains(&self) -> impl ExactSizeIterator<Item = &Domain> {
        self.names.iter().map(|&i| &self.entries[i].domain)
    }

    /// The names marked `tunnel: opaque`, in name order; none covers another.
    pub fn opaque_domains(&self) -> impl ExactSizeIterator<Item = &Domain> {
        self.opaque.iter().map(|&i| &self.entries[i].domain)
    }

    /// Every kept entry with its tunnel and origin, in name order: an opaque entry under
    /// a TLS one is listed too.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = Entry<'_>> {
        self.entries.iter().map(|e| Entry {
            domain: &e.domain,
            origin: &e.origin,
            tunnel: e.tunnel,
        })
    }

    /// How many entries (after normalization).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[(&str, Tunnel)]) -> (Allowlist, Vec<Diagnostic>) {
        let mut diagnostics = Vec::new();
        let a = Allowlist::normalize(
            entries.iter().enumerate().map(|(index, &(name, tunnel))| {
                (
                    Domain::parse(name).unwrap().domain,
                    tunnel,
                    Origin::Code { index },
                )
            }),
            &mut diagnostics,
        );
        (a, diagnostics)
    }

    fn names<'a>(domains: impl Iterator<Item = &'a Domain>) -> Vec<&'a str> {
        domains.map(Domain::as_str).collect()
    }

    fn codes(diagnostics: &[Diagnostic]) -> Vec<&'static str> {
        diagnostics.iter().map(Diagnostic::code).collect()
    }

    use Tunnel::{Opaque, Tls};

    #[test]
    fn an_opaque_exception_under_a_tls_parent_is_kept() {
        let (a, d) = list(&[("github.com", Tls), ("ssh.github.com", Opaque)]);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(a.len(), 2);
        assert_eq!(names(a.domains()), ["github.com"]);
        assert_eq!(names(a.opaque_domains()), ["ssh.github.com"]);
        assert_eq!(a.tunnel("ssh.github.com"), Some(Opaque));
        assert_eq!(a.tunnel("a.SSH.github.com."), Some(Opaque));
        assert_eq!(a.tunnel("github.com"), Some(Tls));
        assert_eq!(a.tunnel("api.github.com"), Some(Tls));
        assert_eq!(a.tunnel("xssh.github.com"), Some(Tls));
        assert_eq!(a.tunnel("gitlab.com"), None);
        assert_eq!(a.tunnel(""), None);
    }

    #[test]
    fn entry_for_names_the_most_specific_covering_entry() {
        let (a, _) = list(&[("github.com", Tls), ("ssh.github.com", Opaque)]);
        let at = |host: &str| {
            a.entry_for(host)
                .map(|e| (e.domain.as_str(), e.origin.clone()))
        };
        assert_eq!(
            at("API.github.com."),
            Some(("github.com", Origin::Code { index: 0 }))
        );
        assert_eq!(
            at("x.ssh.github.com"),
            Some(("ssh.github.com", Origin::Code { index: 1 }))
        );
        assert_eq!(at("xgithub.com"), None);
        assert_eq!(at("com"), None);
        assert_eq!(at(""), None);
    }

    #[test]
    fn an_opaque_parent_covers_tls_and_opaque_children() {
        let (a, d) = list(&[
            ("github.com", Opaque),
            ("api.github.com", Tls),
            ("ssh.github.com", Opaque),
        ]);
        assert_eq!(codes(&d), ["covered", "covered"]);
        assert_eq!(names(a.entries().map(|e| e.domain)), ["github.com"]);
        assert_eq!(names(a.domains()), ["github.com"]);
        assert_eq!(names(a.opaque_domains()), ["github.com"]);
        assert_eq!(a.tunnel("api.github.com"), Some(Opaque));
    }

    #[test]
    fn a_tls_parent_covers_only_tls_children() {
        let (a, d) = list(&[
            ("example.com", Tls),
            ("a.example.com", Tls),
            ("b.example.com", Opaque),
            ("x.b.example.com", Tls),
            ("y.b.example.com", Opaque),
        ]);
        // x.b is covered by example.com already (TLS covers TLS); y.b by b (opaque).
        assert_eq!(codes(&d), ["covered", "covered", "covered"]);
        assert_eq!(
            names(a.entries().map(|e| e.domain)),
            ["b.example.com", "example.com"]
        );
        assert_eq!(names(a.domains()), ["example.com"]);
        assert_eq!(names(a.opaque_domains()), ["b.example.com"]);
        assert_eq!(a.tunnel("x.b.example.com"), Some(Opaque));
    }

    #[test]
    fn duplicates_keep_the_widest_tunnel_and_the_first_origin() {
        for order in [[Tls, Opaque], [Opaque, Tls]] {
            let (a, d) = list(&[("pypi.org", order[0]), ("pypi.org", order[1])]);
            assert_eq!(codes(&d), ["duplicate"]);
            let entries: Vec<Entry<'_>> = a.entries().collect();
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[0].tunnel, Opaque);
            assert_eq!(entries[0].origin, &Origin::Code { index: 0 });
        }
        let (a, _) = list(&[("pypi.org", Tls), ("pypi.org", Tls)]);
        assert_eq!(a.tunnel("pypi.org"), Some(Tls));
        assert_eq!(a.opaque_domains().len(), 0);
    }

    #[test]
    fn plain_sources_are_tls() {
        let checked = check(&[
            Source::Code(vec!["a.example.com".into()]),
            Source::List {
                var: "V".into(),
                value: "b.example.com".into(),
            },
            Source::Yaml {
                name: "f".into(),
                text: "domains: [c.example.com]".into(),
            },
        ])
        .unwrap();
        assert!(checked.allowlist.entries().all(|e| e.tunnel == Tls));
    }

    #[test]
    fn entries_serialize_their_tunnel() {
        let (a, _) = list(&[("ssh.github.com", Opaque)]);
        let e = a.entries().next().unwrap();
        let yaml = serde_yaml::to_string(&e).unwrap();
        assert!(yaml.contains("tunnel: opaque"), "{yaml}");
    }
}
