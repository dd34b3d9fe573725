//! The merged, validated, normalized allowlist, and the check that builds it.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use crate::Origin;
use crate::diagnostic::{Diagnostic, Warning, render};
use crate::domain::Domain;
use crate::source::{self, Source};

/// The set of allowed domains, each standing for itself and its subdomains.
///
/// Normalized: no entry covers another, and iteration is in name order, so every
/// artifact rendered from it is byte-identical for the same input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    /// Sorted by domain, no duplicates, no entry covering another.
    entries: Vec<(Domain, Origin)>,
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
    // Source order: sources come in order and origins order like them (file, then
    // variable); the stable sort keeps the order of several findings on one entry.
    diagnostics
        .sort_by(|a, b| (a.origin.is_none(), &a.origin).cmp(&(b.origin.is_none(), &b.origin)));
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
        // Sorting by name (stable, so the first listing of a duplicate stays first) puts
        // duplicates side by side and lets the map be built in one pass.
        let mut sorted: Vec<(Domain, Origin)> = domains.into_iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut unique: Vec<(Domain, Origin)> = Vec::with_capacity(sorted.len());
        for (domain, origin) in sorted {
            match unique.last() {
                Some((last, first)) if *last == domain => {
                    let first = first.clone();
                    diagnostics.push(Diagnostic::warning(
                        Some(origin),
                        Warning::Duplicate { domain, first },
                    ));
                }
                _ => unique.push((domain, origin)),
            }
        }

        // A name is covered when one of its proper parents is listed: one lookup per label.
        let index: HashMap<&str, usize> = unique
            .iter()
            .enumerate()
            .map(|(i, (d, _))| (d.as_str(), i))
            .collect();
        let covered: Vec<Option<usize>> = unique
            .iter()
            .map(|(domain, _)| {
                let name = domain.as_str();
                // From the right: the broadest listed parent comes first, and it is the one kept.
                name.rmatch_indices('.')
                    .find_map(|(i, _)| index.get(&name[i + 1..]).copied())
            })
            .collect();
        drop(index);
        for (i, cover) in covered.iter().enumerate() {
            if let Some(&c) = cover.as_ref() {
                let (by, at) = unique[c].clone();
                diagnostics.push(Diagnostic::warning(
                    Some(unique[i].1.clone()),
                    Warning::Covered {
                        domain: unique[i].0.clone(),
                        by,
                        at,
                    },
                ));
            }
        }
        let entries = unique
            .into_iter()
            .zip(covered)
            .filter_map(|(entry, cover)| cover.is_none().then_some(entry))
            .collect();
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
            if self.position(candidate).is_ok() {
                return true;
            }
            match candidate.split_once('.') {
                Some((_, parent)) => candidate = parent,
                None => return false,
            }
        }
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(d, _)| d.as_str().cmp(name))
    }

    /// The domains, in name order.
    pub fn domains(&self) -> impl ExactSizeIterator<Item = &Domain> {
        self.entries.iter().map(|(d, _)| d)
    }

    /// The domains with their origins, in name order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = Entry<'_>> {
        self.entries
            .iter()
            .map(|(domain, origin)| Entry { domain, origin })
    }

    /// TEMPORARY stub until the tunnel options land.
    pub fn opaque_domains(&self) -> impl Iterator<Item = &Domain> {
        std::iter::empty()
    }

    /// How many domains (after normalization).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
