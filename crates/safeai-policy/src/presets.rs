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

use crate::domain::{Domain, is_same_or_subdomain};

/// One preset: a name and the hosts it allows, each standing for itself and its
/// subdomains, as an allowlist entry does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preset {
    /// The name written in the allowlist file, such as `github`.
    pub name: &'static str,
    /// What it is for, in a few words.
    pub summary: &'static str,
    /// The hosts, in name order; none covers another (a unit test says so).
    pub domains: &'static [&'static str],
    /// The vendor's pages that name the hosts.
    pub sources: &'static [&'static str],
}

impl Preset {
    /// The hosts as validated domains.
    pub fn domains(&self) -> impl ExactSizeIterator<Item = Domain> + '_ {
        self.domains.iter().map(|d| {
            // Every entry is checked to parse, without a warning, by a unit test.
            Domain::parse(d)
                .unwrap_or_else(|e| panic!("preset {}: `{d}` is invalid: {e:?}", self.name))
                .domain
        })
    }

    /// Whether an entry of this preset allows `host` (any case, trailing dot ignored).
    pub fn allows(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        !host.is_empty()
            && self
                .domains
                .iter()
                .any(|d| is_same_or_subdomain(&host, d))
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
    // index, static.crates.io for the .crate files (the `dl` of the index's config.json),
    // crates.io itself for the web API (search, publish, the old download URLs that
    // redirect to static.crates.io). All three are crates.io or under it.
    Preset {
        name: "crates",
        summary: "crates.io, the Rust package registry (cargo)",
        domains: &["crates.io"],
        sources: &["https://doc.rust-lang.org/cargo/reference/registry-index.html"],
    },
    // GitHub: the site, its API (api.github.com) and git over HTTPS (github.com), archive
    // downloads (codeload.github.com); raw file content; release assets, which redirect
    // to objects.githubusercontent.com and, since 2025, to
    // release-assets.githubusercontent.com.
    Preset {
        name: "github",
        summary: "GitHub: git over HTTPS, the API, raw content, release downloads",
        domains: &[
            "github.com",
            "objects.githubusercontent.com",
            "raw.githubusercontent.com",
            "release-assets.githubusercontent.com",
        ],
        sources: &[
            "https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/about-githubs-ip-addresses",
        ],
    },
    // The Go module proxy and the checksum database the go command asks by default
    // (GOPROXY=https://proxy.golang.org,direct, GOSUMDB=sum.golang.org).
    Preset {
        name: "go",
        summary: "Go modules: the module proxy and the checksum database",
        domains: &["proxy.golang.org", "sum.golang.org"],
        sources: &["https://proxy.golang.org/"],
    },
    // Maven Central: repo.maven.apache.org is the default of Maven, repo1.maven.org the
    // older name many builds (and Gradle's mavenCentral()) still use.
    Preset {
        name: "maven",
        summary: "Maven Central (Maven, Gradle, sbt, Coursier)",
        domains: &["repo.maven.apache.org", "repo1.maven.org"],
        sources: &["https://maven.apache.org/guides/introduction/introduction-to-repositories.html"],
    },
    // The npm registry serves both the metadata and the tarballs.
    Preset {
        name: "npm",
        summary: "the npm registry (npm, yarn, pnpm)",
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
    // PyPI: the index (pypi.org/simple) and the file host it links every
    // distribution to (files.pythonhosted.org).
    Preset {
        name: "pypi",
        summary: "PyPI, the Python package index (pip, uv, poetry)",
        domains: &["files.pythonhosted.org", "pypi.org"],
        sources: &["https://docs.pypi.org/api/"],
    },
    // RubyGems: rubygems.org serves the index and the .gem files; index.rubygems.org
    // (the compact index) is under it.
    Preset {
        name: "rubygems",
        summary: "RubyGems (gem, Bundler)",
        domains: &["rubygems.org"],
        sources: &["https://guides.rubygems.org/rubygems-org-api/"],
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

    #[test]
    fn every_entry_is_a_clean_domain_in_name_order_and_none_overlaps() {
        assert!(ALL.windows(2).all(|w| w[0].name < w[1].name), "presets in name order");
        let mut all: Vec<(&str, &str)> = Vec::new();
        for p in ALL {
            assert!(!p.sources.is_empty(), "{} names its sources", p.name);
            assert!(p.domains.windows(2).all(|w| w[0] < w[1]), "{} in name order", p.name);
            for d in p.domains {
                let v = Domain::parse(d).unwrap_or_else(|e| panic!("{}: {d}: {e:?}", p.name));
                assert_eq!(v.domain.as_str(), *d, "{}: {d} is written canonically", p.name);
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
        assert_eq!(covering("RELEASE-ASSETS.githubusercontent.com."), Some("github"));
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
