//! Maintained lists of the hosts a tool really reaches, named once in the allowlist file
//! (`presets: [github, npm]`) instead of copied entry by entry.
//!
//! A client reaches more hosts than its registry's name: a download redirects to a CDN
//! or blob host (GitHub release assets, PyPI's files), a checksum database is asked on
//! the side (Go). Each preset lists those hosts, with the vendor's documentation page
//! that names them; the lists are locked by snapshots, so a change to one shows in review.
//!
//! Every entry of every preset is a plain TLS entry: an opaque tunnel is a decision the
//! user writes out (`{domain: ssh.github.com, tunnel: opaque}`), never one a preset makes.

use std::sync::Arc;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::Origin;
use crate::diagnostic::{Diagnostic, Error, Warning};
use crate::domain::is_same_or_subdomain;
use crate::options::Tunnel;
use crate::source::RawEntry;

/// One preset: a name and the hosts it allows, each standing for itself and its
/// subdomains, as an allowlist entry does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preset {
    /// The name written in the allowlist file, such as `github`.
    pub name: &'static str,
    /// What it is for, in a few words.
    pub summary: &'static str,
    /// The hosts, in name order, each a canonical domain that validates without a
    /// warning; none covers another, in this preset or another (unit tests say so).
    /// They are validated like any entry when the allowlist is checked.
    pub domains: &'static [&'static str],
    /// The vendor's pages that name the hosts.
    pub sources: &'static [&'static str],
}

impl Preset {
    /// Whether an entry of this preset allows `host` (any case, trailing dot ignored).
    pub fn allows(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        !host.is_empty() && self.domains.iter().any(|d| is_same_or_subdomain(&host, d))
    }
}

/// Shows a preset as `safeai presets` prints it: the name and summary, one host per
/// line, then the sources.
///
/// ```text
/// go: Go modules: the module proxy and the checksum database
///   proxy.golang.org
///   sum.golang.org
///   sources: https://proxy.golang.org/
///            https://go.dev/doc/toolchain
/// ```
impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}: {}", self.name, self.summary)?;
        for d in self.domains {
            writeln!(f, "  {d}")?;
        }
        for (i, source) in self.sources.iter().enumerate() {
            let label = if i == 0 { "sources:" } else { "" };
            writeln!(f, "  {label:8} {source}")?;
        }
        Ok(())
    }
}

/// Every preset, in name order.
pub const ALL: &[Preset] = &[
    // Anthropic's API, as the SDKs and Claude Code call it.
    Preset {
        name: "anthropic",
        summary: "Anthropic's API (Claude, the SDKs, Claude Code)",
        domains: &["api.anthropic.com"],
        sources: &["https://docs.anthropic.com/en/api/overview"],
    },
    // cargo with the sparse index (the default since 1.70): index.crates.io for the
    // index; its config.json names `dl: https://crates.io/api/v1/crates`, which redirects
    // each download to static.crates.io, and `api: https://crates.io` (search, publish).
    // All three are crates.io or under it.
    Preset {
        name: "crates",
        summary: "crates.io, the Rust package registry (cargo)",
        domains: &["crates.io"],
        sources: &[
            "https://doc.rust-lang.org/cargo/reference/registry-index.html",
            "https://index.crates.io/config.json",
        ],
    },
    // GitHub: github.com covers the site, git over HTTPS, the API (api.github.com) and
    // archive downloads (codeload.github.com). A release download
    // (github.com/OWNER/REPO/releases/download/…) answers 302 to a signed URL on a blob
    // host: release-assets.githubusercontent.com since 2025, objects.githubusercontent.com
    // and github-releases.githubusercontent.com before (the runner documentation still
    // lists both). raw.githubusercontent.com serves raw file content. Not the whole of
    // githubusercontent.com: it is a shared suffix (user content, Codespaces, Actions).
    Preset {
        name: "github",
        summary: "GitHub: git over HTTPS, the API, raw content, release downloads",
        domains: &[
            "github-releases.githubusercontent.com",
            "github.com",
            "objects.githubusercontent.com",
            "raw.githubusercontent.com",
            "release-assets.githubusercontent.com",
        ],
        sources: &[
            "https://docs.github.com/en/actions/concepts/runners/communicating-with-self-hosted-runners",
            "https://docs.github.com/en/rest/releases/assets",
        ],
    },
    // The Go module proxy and the checksum database the go command asks by default
    // (go.env: GOPROXY=https://proxy.golang.org,direct, GOSUMDB=sum.golang.org); toolchain
    // downloads (GOTOOLCHAIN=auto) come through the proxy too, as golang.org/toolchain.
    // A module the proxy does not have falls back to `direct` (its VCS host), which this
    // preset does not open.
    Preset {
        name: "go",
        summary: "Go modules: the module proxy and the checksum database",
        domains: &["proxy.golang.org", "sum.golang.org"],
        sources: &["https://proxy.golang.org/", "https://go.dev/doc/toolchain"],
    },
    // Maven Central: repo.maven.apache.org/maven2 is the central repository of Maven and
    // Gradle's mavenCentral(); repo1.maven.org/maven2 is the other name of the same
    // repository, the default of Coursier (sbt, Mill) and of many older builds.
    Preset {
        name: "maven",
        summary: "Maven Central (Maven, Gradle, sbt, Coursier)",
        domains: &["repo.maven.apache.org", "repo1.maven.org"],
        sources: &[
            "https://maven.apache.org/guides/introduction/introduction-to-repositories.html",
        ],
    },
    // The npm registry serves both the metadata and the tarballs (each `dist.tarball` is a
    // registry.npmjs.org URL). Yarn's default registry is another name: the `yarn` preset.
    Preset {
        name: "npm",
        summary: "the npm registry (npm, pnpm, Bun)",
        domains: &["registry.npmjs.org"],
        sources: &["https://docs.npmjs.com/cli/v10/using-npm/registry"],
    },
    // OpenAI's API, as the SDKs and Codex CLI call it with an API key.
    Preset {
        name: "openai",
        summary: "OpenAI's API (the SDKs, Codex CLI with an API key)",
        domains: &["api.openai.com"],
        sources: &["https://platform.openai.com/docs/api-reference"],
    },
    // PyPI: the index (pypi.org/simple, the JSON API under pypi.org/pypi) and the file
    // host every distribution's URL points to (files.pythonhosted.org).
    Preset {
        name: "pypi",
        summary: "PyPI, the Python package index (pip, uv, poetry)",
        domains: &["files.pythonhosted.org", "pypi.org"],
        sources: &[
            "https://docs.pypi.org/api/",
            "https://docs.pypi.org/api/json/",
        ],
    },
    // RubyGems: rubygems.org serves the API, the compact index Bundler reads
    // (/versions, /info/NAME; also as index.rubygems.org) and the .gem files, all under
    // rubygems.org.
    Preset {
        name: "rubygems",
        summary: "RubyGems (gem, Bundler)",
        domains: &["rubygems.org"],
        sources: &[
            "https://guides.rubygems.org/rubygems-org-api/",
            "https://guides.rubygems.org/rubygems-org-compact-index-api/",
        ],
    },
    // Yarn asks its own name for the npm registry by default (registry.yarnpkg.com, in
    // Yarn 1's `registry` and Yarn 2+'s `npmRegistryServer`); `yarn set version` and
    // Corepack fetch Yarn 2+ itself from repo.yarnpkg.com.
    Preset {
        name: "yarn",
        summary: "Yarn's registry name and Yarn's own releases",
        domains: &["registry.yarnpkg.com", "repo.yarnpkg.com"],
        sources: &[
            "https://classic.yarnpkg.com/en/docs/cli/config",
            "https://yarnpkg.com/configuration/yarnrc#npmRegistryServer",
        ],
    },
];

/// The preset called `name`, exactly as written in the allowlist file.
pub fn get(name: &str) -> Option<&'static Preset> {
    ALL.iter().find(|p| p.name == name)
}

/// The names of every preset, in name order.
pub fn names() -> impl ExactSizeIterator<Item = &'static str> {
    ALL.iter().map(|p| p.name)
}

/// The name of a preset whose entries allow `host` (the name or one of its subdomains;
/// any case, trailing dot ignored), the first in name order when several do.
///
/// ```
/// use safeai_policy::presets;
/// assert_eq!(presets::covering("files.pythonhosted.org"), Some("pypi"));
/// assert_eq!(presets::covering("Codeload.GitHub.com."), Some("github"));
/// assert_eq!(presets::covering("example.com"), None);
/// ```
pub fn covering(host: &str) -> Option<&'static str> {
    ALL.iter().find(|p| p.allows(host)).map(|p| p.name)
}

/// The preset name closest to `name` (any case), when one is close enough to be a typo:
/// the "did you mean" of an unknown name.
pub fn suggest(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    names()
        .map(|known| (edit_distance(&name, known), known))
        .filter(|&(d, known)| d <= known.len().div_ceil(3))
        .min_by_key(|&(d, _)| d)
        .map(|(_, known)| known)
}

/// The entries of the presets named by the file's `presets` value (`value`, as serde read
/// it; `text` is the document, read again for positions). Each entry's origin names its
/// preset and the place the preset was named; an unknown name or a value of the wrong
/// shape is an entry (or a diagnostic) with an error at its own position.
pub(crate) fn read(
    file: &Arc<str>,
    text: &str,
    value: Option<serde_yaml::Value>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<RawEntry> {
    use serde_yaml::Value;

    let items = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Sequence(items)) => items,
        Some(other) => {
            let marks = Marks::collect(text);
            diagnostics.push(Diagnostic::error(
                at(file, marks.value),
                Error::PresetsWrongShape {
                    found: kind(&other),
                },
            ));
            return Vec::new();
        }
    };
    let marks = Marks::collect(text);
    let mut named: Vec<(&'static str, Origin)> = Vec::new();
    let mut entries = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let origin = at(file, marks.items.get(i).copied());
        let error = |e| RawEntry {
            text: Err(e),
            tunnel: Tunnel::Tls,
            origin: origin.clone(),
            problems: Vec::new(),
        };
        let name = match item {
            Value::String(name) => name,
            other => {
                entries.push(error(Error::PresetNotAString {
                    found: kind(&other),
                }));
                continue;
            }
        };
        let Some(preset) = get(&name) else {
            let suggestion = suggest(&name);
            entries.push(error(Error::UnknownPreset { name, suggestion }));
            continue;
        };
        if let Some((_, first)) = named.iter().find(|(n, _)| *n == preset.name) {
            diagnostics.push(Diagnostic::warning(
                Some(origin),
                Warning::PresetRepeated {
                    name: preset.name,
                    first: first.clone(),
                },
            ));
            continue;
        }
        let from = Origin::Preset {
            name: preset.name,
            at: Box::new(origin.clone()),
        };
        entries.extend(preset.domains.iter().map(|d| RawEntry {
            text: Ok((*d).to_owned()),
            tunnel: Tunnel::Tls,
            origin: from.clone(),
            problems: Vec::new(),
        }));
        named.push((preset.name, origin));
    }
    entries
}

fn at(file: &Arc<str>, mark: Option<Marker>) -> Origin {
    match mark {
        Some(m) => Origin::file_at(file.clone(), m.line(), m.col() + 1),
        None => Origin::file(file.clone()),
    }
}

/// What a YAML value is, with its article, for a message.
fn kind(value: &serde_yaml::Value) -> &'static str {
    use serde_yaml::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        Value::Tagged(_) => "a tagged value",
    }
}

/// The start of the top-level `presets` value and of each of its items, from parser
/// events. Only read after serde accepted the document; a mark that is missing leaves
/// the origin without a position.
#[derive(Default)]
struct Marks {
    value: Option<Marker>,
    items: Vec<Marker>,
    depth: usize,
    /// At depth 1, the next node is a key.
    expect_key: bool,
    /// The last depth-1 key was `presets`.
    at_presets: bool,
    /// Inside the `presets` sequence.
    in_presets: bool,
}

impl Marks {
    fn collect(text: &str) -> Marks {
        let mut marks = Marks::default();
        // An error here is reported by serde already; partial marks are fine.
        let _ = Parser::new_from_str(text).load(&mut marks, false);
        marks
    }
}

impl MarkedEventReceiver for Marks {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let starts_node = matches!(
            ev,
            Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
                | Event::Alias(_)
        );
        if starts_node {
            if self.in_presets && self.depth == 2 {
                self.items.push(mark);
            } else if self.depth == 1 {
                if self.expect_key {
                    self.at_presets = matches!(&ev, Event::Scalar(k, ..) if k == "presets");
                } else if self.at_presets {
                    self.value = Some(mark);
                    self.in_presets = matches!(ev, Event::SequenceStart(..));
                    self.at_presets = false;
                }
                self.expect_key = !self.expect_key;
            }
        }
        match ev {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                self.depth += 1;
                if self.depth == 1 {
                    self.expect_key = true;
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if self.in_presets && self.depth == 2 {
                    self.in_presets = false;
                }
                self.depth = self.depth.saturating_sub(1);
            }
            _ => {}
        }
    }
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Domain;

    #[test]
    fn every_entry_is_a_clean_domain_in_name_order_and_none_overlaps() {
        assert!(
            ALL.windows(2).all(|w| w[0].name < w[1].name),
            "presets in name order"
        );
        let mut all: Vec<(&str, &str)> = Vec::new();
        for p in ALL {
            assert!(!p.sources.is_empty(), "{} names its sources", p.name);
            assert!(
                p.domains.windows(2).all(|w| w[0] < w[1]),
                "{} in name order",
                p.name
            );
            for d in p.domains {
                let v = Domain::parse(d).unwrap_or_else(|e| panic!("{}: {d}: {e:?}", p.name));
                assert_eq!(
                    v.domain.as_str(),
                    *d,
                    "{}: {d} is written canonically",
                    p.name
                );
                assert!(v.warnings.is_empty(), "{}: {d}: {:?}", p.name, v.warnings);
                all.push((p.name, d));
            }
        }
        // No entry covers another, in one preset or across two: naming several presets
        // together never gives a warning.
        for &(pa, a) in &all {
            for &(pb, b) in &all {
                if (pa, a) != (pb, b) {
                    assert!(!is_same_or_subdomain(a, b), "{pa}: {a} is under {pb}: {b}");
                }
            }
        }
    }

    #[test]
    fn covering_names_the_preset_of_a_host_and_its_subdomains() {
        assert_eq!(covering("github.com"), Some("github"));
        assert_eq!(covering("api.github.com"), Some("github"));
        assert_eq!(
            covering("RELEASE-ASSETS.githubusercontent.com."),
            Some("github")
        );
        assert_eq!(covering("static.crates.io"), Some("crates"));
        assert_eq!(covering("sum.golang.org"), Some("go"));
        // Not a subdomain: a name that only ends in the same letters.
        assert_eq!(covering("evilgithub.com"), None);
        assert_eq!(covering("githubusercontent.com"), None);
        assert_eq!(covering(""), None);
        assert_eq!(covering("."), None);
        for p in ALL {
            for d in p.domains {
                assert_eq!(covering(d), Some(p.name));
            }
        }
    }

    #[test]
    fn get_is_exact() {
        assert_eq!(get("npm").map(|p| p.name), Some("npm"));
        assert_eq!(get("NPM"), None);
        assert_eq!(get("npm "), None);
        assert_eq!(names().len(), ALL.len());
    }

    #[test]
    fn suggestions_catch_typos_only() {
        assert_eq!(suggest("githb"), Some("github"));
        assert_eq!(suggest("GitHub"), Some("github"));
        assert_eq!(suggest("crate"), Some("crates"));
        assert_eq!(suggest("pip"), Some("pypi"));
        assert_eq!(suggest("rubygem"), Some("rubygems"));
        assert_eq!(suggest("kubernetes"), None);
        assert_eq!(suggest(""), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "go"), 2);
    }
}
