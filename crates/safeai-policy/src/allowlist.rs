//! The merged, validated, normalized allowlist, and the check that builds it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;

use crate::diagnostic::{Diagnostic, Warning, render};
use crate::domain::{Domain, is_same_or_subdomain};
use crate::source::{self, Source};
use crate::Origin;

/// The set of allowed domains, each standing for itself and its subdomains.
///
/// Normalized: no entry covers another, and iteration is in name order, so every
/// artifact rendered from it is byte-identical for the same input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    entries: BTreeMap<Domain, Origin>,
}

/// A domain of the allowlist with the place it was first listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Entry<'a> {
    /// The domain.
    pub domain: &'a Domain,
    /// Where it was listed.
    pub origin: &'a Origin,
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
    for src in sources {
        for raw in source::read(src, &mut diagnostics) {
            let text = match raw.text {
                Ok(text) => text,
                Err(e) => {
                    diagnostics.push(Diagnostic::error(raw.origin, e));
                    continue;
                }
            };
            match Domain::parse(&text) {
                Ok(v) => {
                    for w in v.warnings {
                        diagnostics.push(Diagnostic::warning(Some(raw.origin.clone()), w));
                    }
                    valid.push((v.domain, raw.origin));
                }
                Err(errors) => {
                    for e in errors {
                        diagnostics.push(Diagnostic::error(raw.origin.clone(), e));
                    }
                }
            }
        }
    }
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(Rejected { diagnostics });
    }
    let allowlist = Allowlist::normalize(valid, &mut diagnostics);
    if allowlist.is_empty() {
        diagnostics.push(Diagnostic::warning(None, Warning::EmptyAllowlist));
    }
    Ok(Checked {
        allowlist,
        diagnostics,
    })
}

impl Allowlist {
    /// Builds an allowlist from validated domains: duplicates and entries covered by a
    /// broader one are dropped, each with a warning; the first listing of a domain wins.
    pub fn normalize(
        domains: impl IntoIterator<Item = (Domain, Origin)>,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Allowlist {
        let mut unique: Vec<(Domain, Origin)> = Vec::new();
        let mut seen: HashMap<Domain, usize> = HashMap::new();
        for (domain, origin) in domains {
            if let Some(&i) = seen.get(&domain) {
                diagnostics.push(Diagnostic::warning(
                    Some(origin),
                    Warning::Duplicate {
                        domain,
                        first: unique[i].1.clone(),
                    },
                ));
                continue;
            }
            seen.insert(domain.clone(), unique.len());
            unique.push((domain, origin));
        }

        // A name is covered when one of its proper parents is listed: one lookup per label.
        let mut entries = BTreeMap::new();
        for (domain, origin) in &unique {
            let name = domain.as_str();
            let cover = name
                .match_indices('.')
                .map(|(i, _)| &name[i + 1..])
                .find_map(|parent| {
                    seen.get_key_value(parent)
                        .map(|(d, &i)| (d.clone(), unique[i].1.clone()))
                });
            match cover {
                Some((by, at)) => diagnostics.push(Diagnostic::warning(
                    Some(origin.clone()),
                    Warning::Covered {
                        domain: domain.clone(),
                        by,
                        at,
                    },
                )),
                None => {
                    entries.insert(domain.clone(), origin.clone());
                }
            }
        }
        Allowlist { entries }
    }

    /// Whether a request to `host` is allowed, with Squid's `dstdomain .example.com`
    /// semantics: the name or any subdomain, case-insensitive, trailing dot ignored.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        if host.is_empty() {
            return false;
        }
        let mut candidate = host.as_str();
        loop {
            if self.entries.contains_key(candidate) {
                return true;
            }
            match candidate.split_once('.') {
                Some((_, parent)) => candidate = parent,
                None => return false,
            }
        }
    }

    /// The domains, in name order.
    pub fn domains(&self) -> impl ExactSizeIterator<Item = &Domain> {
        self.entries.keys()
    }

    /// The domains with their origins, in name order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = Entry<'_>> {
        self.entries
            .iter()
            .map(|(domain, origin)| Entry { domain, origin })
    }

    /// How many domains (after normalization).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether some listed domain is `domain` or a parent of it.
    pub fn covers(&self, domain: &Domain) -> bool {
        self.entries.keys().any(|d| is_same_or_subdomain(domain.as_str(), d.as_str()))
    }
}

impl std::borrow::Borrow<str> for Domain {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}
