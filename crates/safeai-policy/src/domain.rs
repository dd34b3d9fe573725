//! The `Domain` newtype and the validation that is the only way to build one.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use serde::Serialize;

use crate::diagnostic::{Error, Warning};

/// DNS limits (RFC 1035).
const MAX_LABEL: usize = 63;
const MAX_NAME: usize = 253;

/// A validated, normalized domain name: it stands for the name and every subdomain.
///
/// It holds only `[a-z0-9.-]`, at least two labels of 1 to 63 characters that neither
/// start nor end with a hyphen, at most 253 characters, no wildcard, no trailing dot,
/// and is not a bare public suffix. So it can be written into squid.conf or
/// dnsmasq.conf as it is: no entry can inject a directive.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Domain(Box<str>);

/// A domain that passed validation, with what is worth telling about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validated {
    /// The canonical domain.
    pub domain: Domain,
    /// Warnings and notes about it (unknown suffix, shared hosting suffix, IDN conversion).
    pub warnings: Vec<Warning>,
}

impl Domain {
    /// Validates one allowlist entry.
    ///
    /// Accepts `github.com`, `.github.com` and `*.github.com` (all meaning the name and its
    /// subdomains), any case, one trailing dot, and Unicode (converted to punycode with a note).
    ///
    /// # Errors
    ///
    /// Every rule the entry breaks, usually one; see [`Error`].
    pub fn parse(input: &str) -> Result<Validated, Vec<Error>> {
        validate(input)
    }

    /// The name, such as `github.com`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this domain allows `other`: the same name or one of its subdomains.
    pub fn covers(&self, other: &Domain) -> bool {
        is_same_or_subdomain(other.as_str(), self.as_str())
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Domain {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Domain {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// `host` is `parent` or ends with `.parent`; both lower-case, no trailing dot.
pub(crate) fn is_same_or_subdomain(host: &str, parent: &str) -> bool {
    host == parent
        || (host.len() > parent.len()
            && host.ends_with(parent)
            && host.as_bytes()[host.len() - parent.len() - 1] == b'.')
}

fn validate(input: &str) -> Result<Validated, Vec<Error>> {
    let owned = || input.to_owned();
    if input.is_empty() {
        return Err(vec![Error::Empty]);
    }
    // Checked first and alone: a newline or tab must never travel further.
    if let Some((i, ch)) = input
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_whitespace() || c.is_control())
    {
        return Err(vec![Error::Whitespace {
            input: owned(),
            ch,
            at: i + 1,
        }]);
    }
    if let Some(e) = classify_non_name(input) {
        return Err(vec![e]);
    }

    // `*.x`, `.x` and `x` all mean the name and its subdomains: the prefix goes.
    let body = match input {
        "*" | "." | "*." | "*.." => {
            return Err(vec![Error::BareWildcard { input: owned() }]);
        }
        _ => input
            .strip_prefix("*.")
            .or_else(|| input.strip_prefix('.'))
            .unwrap_or(input),
    };
    if body.contains('*') {
        return Err(vec![Error::MisplacedWildcard { input: owned() }]);
    }
    let body = body.strip_suffix('.').unwrap_or(body);

    // Printable ASCII outside the host-name alphabet is an error; non-ASCII goes to IDNA.
    if let Some((i, ch)) = input.chars().enumerate().find(|&(_, c)| {
        c.is_ascii() && !(c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '*')
    }) {
        return Err(vec![Error::InvalidCharacter {
            input: owned(),
            ch,
            at: i + 1,
        }]);
    }

    let mut warnings = Vec::new();
    let name = if body.is_ascii() {
        body.to_ascii_lowercase()
    } else {
        match idna::domain_to_ascii_strict(body) {
            Ok(ascii) if !ascii.is_empty() => {
                warnings.push(Warning::IdnConverted {
                    input: owned(),
                    domain: Domain(ascii.clone().into_boxed_str()),
                });
                ascii
            }
            _ => return Err(vec![Error::InvalidUnicode { input: owned() }]),
        }
    };

    let mut errors = Vec::new();
    let mut empty_label = false;
    for label in name.split('.') {
        if label.is_empty() {
            empty_label = true;
        } else if label.len() > MAX_LABEL {
            errors.push(Error::LabelTooLong {
                input: owned(),
                label: label.to_owned(),
                len: label.len(),
            });
        } else if label.starts_with('-') || label.ends_with('-') {
            errors.push(Error::HyphenAtLabelEdge {
                input: owned(),
                label: label.to_owned(),
            });
        } else if label.starts_with("xn--") && !punycode_ok(label) {
            errors.push(Error::InvalidPunycode {
                input: owned(),
                label: label.to_owned(),
            });
        }
    }
    if empty_label {
        errors.insert(0, Error::EmptyLabel { input: owned() });
    }
    if name.len() > MAX_NAME {
        errors.push(Error::NameTooLong {
            input: owned(),
            len: name.len(),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    if name.split('.').all(is_inet_aton_number) {
        return Err(vec![Error::IpLike { input: owned() }]);
    }
    let top = name.rsplit('.').next().unwrap_or(&name);
    if is_inet_aton_number(top) {
        return Err(vec![Error::NumericTopLabel { input: owned() }]);
    }

    let suffix = psl::suffix(name.as_bytes());
    let is_whole_suffix = suffix.is_some_and(|s| s.as_bytes() == name.as_bytes());
    match suffix.and_then(|s| s.typ()) {
        Some(psl::Type::Icann) if is_whole_suffix => {
            return Err(vec![Error::PublicSuffix { input: owned() }]);
        }
        _ if !name.contains('.') => return Err(vec![Error::SingleLabel { input: owned() }]),
        Some(psl::Type::Private) if is_whole_suffix => {
            warnings.push(Warning::PrivateSuffix {
                domain: Domain(name.clone().into_boxed_str()),
            });
        }
        Some(_) => {}
        None => warnings.push(Warning::UnknownSuffix {
            domain: Domain(name.clone().into_boxed_str()),
            suffix: top.to_owned(),
        }),
    }

    if has_suffix_below(&name) {
        warnings.push(Warning::SuffixesBelow {
            domain: Domain(name.clone().into_boxed_str()),
        });
    }

    Ok(Validated {
        domain: Domain(name.into_boxed_str()),
        warnings,
    })
}

/// A label that `inet_aton` (and the URL standard's IPv4 parser) reads as a number:
/// decimal or octal digits (`127`, `017`), or hex after `0x` (`0x7f`, and `0x` alone,
/// which is 0). A name made only of such labels is an IPv4 address in another spelling
/// (`0x7f.1`, `2130706433`); one whose last label is one is read as an address too.
fn is_inet_aton_number(label: &str) -> bool {
    match label.strip_prefix("0x") {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// Whether the public suffix list has a rule strictly below `name` (`s3.amazonaws.com`
/// under `amazonaws.com`, `*.kawasaki.jp` under `kawasaki.jp`): then `name` allows every
/// tenant of that suffix.
///
/// The list is compiled into a trie that asks for the next label, right to left, only
/// when the node it reached has children: it asks for one label past `name` exactly when
/// a rule lies below it. (The tests check this against names whose rules are known.)
fn has_suffix_below(name: &str) -> bool {
    use psl::Psl;
    use std::cell::Cell;

    let labels: Vec<&[u8]> = name.rsplit('.').map(str::as_bytes).collect();
    let asked = Cell::new(0);
    let iter = (0..).map_while(|i| {
        asked.set(i + 1);
        labels.get(i).copied()
    });
    let _ = psl::List.find(iter);
    asked.get() > labels.len()
}

fn punycode_ok(label: &str) -> bool {
    let (_, result) = idna::domain_to_unicode(label);
    // `domain_to_unicode` reports a failed decode as an error; a label that decodes to
    // plain ASCII is also not a real IDN label.
    result.is_ok() && idna::domain_to_ascii_strict(label).is_ok_and(|a| a == label)
}

/// Recognizes the inputs that are not host names at all: URLs, paths, CIDRs, IPs, ports.
fn classify_non_name(input: &str) -> Option<Error> {
    let owned = || input.to_owned();
    if let Some((_, rest)) = input.split_once("://") {
        return Some(Error::Url {
            input: owned(),
            host: host_of(rest),
        });
    }
    if let Some((left, right)) = input.split_once('/') {
        let ip_like = strip_brackets(left).parse::<IpAddr>().is_ok();
        if ip_like && !right.is_empty() && right.bytes().all(|b| b.is_ascii_digit()) {
            return Some(Error::Cidr { input: owned() });
        }
        return Some(Error::Url {
            input: owned(),
            host: host_of(input),
        });
    }
    if input.parse::<IpAddr>().is_ok() || strip_brackets(input).parse::<Ipv6Addr>().is_ok() {
        return Some(Error::IpLiteral { input: owned() });
    }
    // `[::1]:443` and `10.0.0.1:443`.
    if let Some((host, port)) = input.rsplit_once(':') {
        let port_ok = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        if port_ok && strip_brackets(host).parse::<IpAddr>().is_ok() {
            return Some(Error::IpLiteral { input: owned() });
        }
        if port_ok && !host.contains(':') && !host.is_empty() {
            return Some(Error::HostPort {
                input: owned(),
                host: host.to_owned(),
            });
        }
    }
    None
}

fn strip_brackets(s: &str) -> &str {
    s.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s)
}

/// The host of `rest` (a URL without its scheme), if it is itself a valid domain.
fn host_of(rest: &str) -> Option<String> {
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host_port,
    };
    validate(host).ok().map(|v| v.domain.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        Domain::parse(s).unwrap().domain.to_string()
    }

    fn err(s: &str) -> &'static str {
        Domain::parse(s).unwrap_err()[0].code()
    }

    #[test]
    fn accepts_the_three_spellings_and_normalizes() {
        assert_eq!(ok("GitHub.com"), "github.com");
        assert_eq!(ok(".github.com"), "github.com");
        assert_eq!(ok("*.github.com"), "github.com");
        assert_eq!(ok("github.com."), "github.com");
        assert_eq!(ok("bücher.de"), "xn--bcher-kva.de");
        assert_eq!(ok("xn--bcher-kva.de"), "xn--bcher-kva.de");
    }

    #[test]
    fn rejects_each_rule_with_its_own_code() {
        assert_eq!(err(""), "empty");
        assert_eq!(err("a.com\nacl x"), "whitespace");
        assert_eq!(err("https://github.com/x"), "url");
        assert_eq!(err("github.com/x"), "url");
        assert_eq!(err("github.com:443"), "host-port");
        assert_eq!(err("10.0.0.1"), "ip-literal");
        assert_eq!(err("10.0.0.1:80"), "ip-literal");
        assert_eq!(err("::1"), "ip-literal");
        assert_eq!(err("[2001:db8::1]"), "ip-literal");
        assert_eq!(err("[2001:db8::1]:443"), "ip-literal");
        assert_eq!(err("10.0.0.0/8"), "cidr");
        assert_eq!(err("127.1"), "ip-like");
        assert_eq!(err("example.123"), "numeric-top-label");
        assert_eq!(err("example.0x7f"), "numeric-top-label");
        assert_eq!(err("a.*.com"), "misplaced-wildcard");
        assert_eq!(err("**.a.com"), "misplaced-wildcard");
        assert_eq!(err("*"), "bare-wildcard");
        assert_eq!(err("."), "bare-wildcard");
        assert_eq!(err("*."), "bare-wildcard");
        assert_eq!(err("a..b.com"), "empty-label");
        assert_eq!(err(&format!("{}.com", "a".repeat(64))), "label-too-long");
        assert_eq!(
            err(&format!("{}com", "abcdefghi.".repeat(26))),
            "name-too-long"
        );
        assert_eq!(err("my_host.com"), "invalid-character");
        assert_eq!(err("a.com;"), "invalid-character");
        assert_eq!(err("-a.com"), "hyphen-at-label-edge");
        assert_eq!(err("localhost"), "single-label");
        assert_eq!(err("com"), "public-suffix");
        assert_eq!(err("co.uk"), "public-suffix");
        assert_eq!(err("xn--zz.com"), "invalid-punycode");
    }

    #[test]
    fn warns_on_unknown_and_private_suffixes() {
        let v = Domain::parse("github.cmo").unwrap();
        assert_eq!(v.warnings[0].code(), "unknown-suffix");
        let v = Domain::parse("github.io").unwrap();
        assert_eq!(v.warnings[0].code(), "private-suffix");
        let v = Domain::parse("s3.amazonaws.com").unwrap();
        assert_eq!(v.warnings[0].code(), "private-suffix");
        assert!(
            Domain::parse("pages.github.io")
                .unwrap()
                .warnings
                .is_empty()
        );
        assert!(Domain::parse("github.com").unwrap().warnings.is_empty());
    }

    #[test]
    fn rejects_every_inet_aton_spelling_of_an_address() {
        for name in [
            "0x7f.0x0.0x0.0x1",
            "0X7F.0.0.1",
            "1.0x7f",
            "0x7f",
            "017.1",
            "2130706433",
            "127.0.1",
            "0x.0x",
            "1.2.3.4.5",
        ] {
            assert_eq!(err(name), "ip-like", "{name}");
        }
        for name in [
            "1password.com",
            "0x.example.com",
            "7-zip.org",
            "0x7f.example.com",
            "123.example.com",
            "0xg.0x1g",
            "deadbeef.com",
        ] {
            assert!(Domain::parse(name).is_ok(), "{name}");
        }
    }

    fn warning_codes(s: &str) -> Vec<&'static str> {
        Domain::parse(s)
            .unwrap()
            .warnings
            .iter()
            .map(Warning::code)
            .collect()
    }

    #[test]
    fn warns_when_a_public_suffix_lies_below_the_entry() {
        for name in [
            "amazonaws.com",
            "windows.net",
            "core.windows.net",
            "digitaloceanspaces.com",
            "kawasaki.jp",
        ] {
            assert_eq!(warning_codes(name), ["suffixes-below"], "{name}");
        }
        // A private suffix with more suffixes under it says both.
        assert_eq!(
            warning_codes("azurewebsites.net"),
            ["private-suffix", "suffixes-below"]
        );
        // Leaves of the list, tenants, exceptions and ordinary names: nothing below.
        for name in [
            "s3.amazonaws.com",
            "blob.core.windows.net",
            "city.kawasaki.jp",
            "my-bucket.s3.amazonaws.com",
            "github.com",
            "pypi.org",
            "googleapis.com",
            "corp.internal",
        ] {
            assert!(
                !warning_codes(name).contains(&"suffixes-below"),
                "{name}: {:?}",
                warning_codes(name)
            );
        }
    }

    #[test]
    fn subdomain_test_respects_label_boundaries() {
        assert!(is_same_or_subdomain("api.github.com", "github.com"));
        assert!(is_same_or_subdomain("github.com", "github.com"));
        assert!(!is_same_or_subdomain("evilgithub.com", "github.com"));
        assert!(!is_same_or_subdomain("com", "github.com"));
    }
}
