//! The hosts the proxy decrypts: those with method and path rules, and those it adds a
//! brokered credential for. Every other allowlisted host is spliced after the SNI check
//! (see [`crate::tls`]) and never read.
//!
//! A decrypted connection's requests are judged one by one, and always by one host:
//! the CONNECT target, which the SNI names (the TLS layer checks that before it
//! decrypts). A request inside it whose `Host:` or absolute URI names any other host is
//! refused before anything else looks at it ([`crate::tls::DenyReason::OtherHost`]):
//! Squid would otherwise send it to that other host, with that host's rules and
//! credentials.

use safeai_policy::{Allowlist, Domain, HeaderName, Method, Origin, Rule, ValueTemplate};

use crate::secrets::Secrets;
use crate::tls::DenyReason;

/// What the decrypted hosts need from squid.conf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decryption {
    /// The SNI names to decrypt, as `ssl::server_name` takes them (`.x` for a host and
    /// its subdomains, `x` for that host alone), none covering another.
    pub sni: Vec<String>,
    /// The hosts with rules, in name order.
    pub ruled: Vec<RuledHost>,
    /// The credentials, in host and header order.
    pub credentials: Vec<CredentialHeader>,
}

/// The rules of one host, as the proxy applies them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuledHost {
    /// The host: its requests and its subdomains' are judged by these rules…
    pub domain: Domain,
    /// …except those of the more specific ruled hosts under it (indices into `ruled`).
    pub inner: Vec<usize>,
    /// The allowed requests.
    pub allow: Vec<Rule>,
    /// Where the rules are written.
    pub origin: Origin,
}

/// One header the proxy replaces on the requests to one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialHeader {
    /// The host, exactly.
    pub domain: Domain,
    /// The header.
    pub header: HeaderName,
    /// Its value, around the secret's name.
    pub value: ValueTemplate,
}

/// Whether a request's path, as the client sent it (not decoded), could name another
/// resource once the upstream decodes or normalizes it: an encoded dot, slash,
/// backslash, NUL, percent sign, `?` or `#`; a raw backslash; an empty segment; a `.` or
/// `..` segment. Checked on the path only, before any `?`.
///
/// Squid's own regex ACLs match the *decoded* path (checked with Squid 5.7: `%2f`
/// reaches `urlpath_regex` as `/`), so this check runs as the external ACL helper
/// `safeai proxy path-check` on `%>rp`, the path as received.
pub fn ambiguous_path(raw: &str) -> bool {
    let path = raw.split('?').next().unwrap_or(raw);
    let lower = path.to_ascii_lowercase();
    ["%2e", "%2f", "%5c", "%00", "%25", "%3f", "%23"]
        .iter()
        .any(|e| lower.contains(e))
        || path.contains('\\')
        || path.contains("//")
        || path.split('/').skip(1).any(|seg| seg == "." || seg == "..")
}

/// One answer of the path helper (`safeai proxy path-check`), which Squid's
/// `external_acl_type` runs with `%>rp`: `ID PATH -` in (the path as the client sent
/// it, `-` for the ACL's empty arguments), `ID OK` (ambiguous: the ACL matches, the request is
/// refused) or `ID ERR` out. A line it cannot read is OK: refused, fail closed.
pub fn path_check(line: &str) -> String {
    let mut fields = line.split_ascii_whitespace();
    let id = fields.next().unwrap_or("0");
    let ambiguous = match (fields.next(), fields.next(), fields.next()) {
        // Squid passes `%>rp` as received (checked with Squid 5.7: `%2f` arrives as
        // `%2f`), so the field is judged as it is; a character Squid escapes itself
        // (a backslash as `%5C`) is refused either way.
        (Some(path), None | Some("-"), None) => ambiguous_path(path),
        _ => true,
    };
    format!("{id} {}", if ambiguous { "OK" } else { "ERR" })
}

impl Decryption {
    /// What `allowlist`'s rules and credentials need.
    pub fn new(allowlist: &Allowlist) -> Decryption {
        let rules = allowlist.rules();
        let ruled: Vec<RuledHost> = rules
            .iter()
            .map(|r| RuledHost {
                domain: r.domain.clone(),
                inner: rules
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| o.domain != r.domain && r.domain.covers(&o.domain))
                    .map(|(i, _)| i)
                    .collect(),
                allow: r.allow.clone(),
                origin: r.origin.clone(),
            })
            .collect();
        let credentials: Vec<CredentialHeader> = allowlist
            .credentials()
            .iter()
            .map(|c| CredentialHeader {
                domain: c.domain.clone(),
                header: c.header.clone(),
                value: c.value.clone(),
            })
            .collect();
        // `.x` covers x and its subdomains, `x` only itself: drop every name a dotted
        // one covers (Squid refuses overlapping names in one ACL).
        let mut names: Vec<(&Domain, bool)> = ruled
            .iter()
            .map(|r| (&r.domain, true))
            .chain(credentials.iter().map(|c| (&c.domain, false)))
            .collect();
        names.sort();
        names.dedup_by(|later, first| {
            later.0 == first.0 && {
                first.1 |= later.1;
                true
            }
        });
        let dotted: Vec<&Domain> = names.iter().filter(|n| n.1).map(|n| n.0).collect();
        let sni = names
            .iter()
            .filter(|(d, sub)| !dotted.iter().any(|p| p.covers(d) && (*p != *d || !*sub)))
            .map(|(d, sub)| if *sub { format!(".{d}") } else { d.to_string() })
            .collect();
        Decryption {
            sni,
            ruled,
            credentials,
        }
    }

    /// Whether anything is decrypted.
    pub fn any(&self) -> bool {
        !self.sni.is_empty()
    }

    fn methods(&self) -> Vec<Method> {
        let mut m: Vec<Method> = self
            .ruled
            .iter()
            .flat_map(|r| r.allow.iter().map(|a| a.method))
            .collect();
        m.sort();
        m.dedup();
        m
    }

    /// The ruled hosts none of the others covers, for the ambiguous-path check.
    fn outer_ruled(&self) -> Vec<String> {
        self.ruled
            .iter()
            .filter(|r| {
                !self
                    .ruled
                    .iter()
                    .any(|o| o.domain != r.domain && o.domain.covers(&r.domain))
            })
            .map(|r| format!(".{}", r.domain))
            .collect()
    }

    /// The marker that denies a request to ruled host `i`: it names the host too, for
    /// the log.
    fn rule_marker(i: usize) -> String {
        format!("safeai_http_rule_{i}")
    }

    /// The page of ruled host `i`.
    pub(crate) fn rule_page_name(i: usize) -> String {
        format!("{}_{i}", DenyReason::Rule.page_name())
    }

    /// The ACL definitions.
    pub(crate) fn acl_lines(&self) -> Vec<String> {
        if !self.any() {
            return Vec::new();
        }
        let mut lines = vec![
            format!("acl decrypt_sni ssl::server_name {}", self.sni.join(" ")),
            "acl decrypting annotate_client safeai_decrypted=yes".to_owned(),
            "acl decrypted note safeai_decrypted yes".to_owned(),
            "acl upgrade_request req_header Upgrade .".to_owned(),
        ];
        if self.ruled.is_empty() {
            return lines;
        }
        lines.push(format!(
            "acl ruled dstdomain {}",
            self.outer_ruled().join(" ")
        ));
        lines.push("acl ambiguous_path external safeai_path".to_owned());
        for m in self.methods() {
            lines.push(format!("acl method_{m} method {}", m.wire().join(" ")));
        }
        for (i, r) in self.ruled.iter().enumerate() {
            lines.push(format!("acl rules_{i} dstdomain .{}", r.domain));
            for (k, rule) in r.allow.iter().enumerate() {
                lines.push(format!(
                    "acl rules_{i}_{k} urlpath_regex {}",
                    rule.path.regex()
                ));
            }
            lines.push(format!(
                "acl {} annotate_transaction safeai_reason={} safeai_rule={}",
                Self::rule_marker(i),
                DenyReason::Rule.code(),
                r.domain
            ));
        }
        for (i, c) in self.credentials.iter().enumerate() {
            lines.push(format!("acl credential_{i} dstdomain {}", c.domain));
        }
        lines
    }

    /// `deny_info` for each ruled host's page.
    pub(crate) fn deny_info_lines(&self) -> Vec<String> {
        (0..self.ruled.len())
            .map(|i| {
                format!(
                    "deny_info {} {}",
                    Self::rule_page_name(i),
                    Self::rule_marker(i)
                )
            })
            .collect()
    }

    /// The `http_access` rules of the ruled hosts: after every general denial, before
    /// the allowlist's `allow`. CONNECTs pass them (their requests are judged once
    /// decrypted); plain HTTP requests to a ruled host are judged the same way.
    pub(crate) fn http_access_lines(&self) -> Vec<String> {
        if self.ruled.is_empty() {
            return Vec::new();
        }
        let mut lines = vec![
            "# A ruled host's paths must mean one thing: no encoded or dot segments.".to_owned(),
            format!(
                "http_access deny !CONNECT ruled ambiguous_path {}",
                DenyReason::AmbiguousPath.request_marker()
            ),
        ];
        for (i, r) in self.ruled.iter().enumerate() {
            lines.push(format!(
                "# The rules of {} ({}): only these requests pass.",
                r.domain, r.origin
            ));
            let host: String = std::iter::once(format!("rules_{i}"))
                .chain(r.inner.iter().map(|j| format!("!rules_{j}")))
                .collect::<Vec<_>>()
                .join(" ");
            for (k, rule) in r.allow.iter().enumerate() {
                lines.push(format!(
                    "http_access allow !CONNECT {host} method_{} rules_{i}_{k}",
                    rule.method
                ));
            }
            lines.push(format!(
                "http_access deny !CONNECT {host} {}",
                Self::rule_marker(i)
            ));
        }
        lines
    }

    /// The credentials: the client's header removed on every request to the host, the
    /// real one added on the decrypted ones only (never over plain HTTP).
    pub(crate) fn request_header_lines(&self, secrets: &Secrets) -> Vec<String> {
        let mut lines = Vec::new();
        for (i, c) in self.credentials.iter().enumerate() {
            lines.push(format!(
                "request_header_access {} deny credential_{i}",
                c.header.as_str()
            ));
        }
        for (i, c) in self.credentials.iter().enumerate() {
            lines.push(format!(
                "request_header_add {} \"{}{}{}\" credential_{i} decrypted !CONNECT",
                c.header.as_str(),
                c.value.prefix,
                secrets.squid_value(&c.value.secret),
                c.value.suffix
            ));
        }
        lines
    }

    /// One page per ruled host: what was refused, the rules that did not match.
    pub(crate) fn pages(&self) -> Vec<(String, String)> {
        self.ruled
            .iter()
            .enumerate()
            .map(|(i, r)| {
                // Squid fills in `%` codes: a `%` of ours is written `%%`.
                let origin = r.origin.to_string().replace('%', "%%");
                let rules: Vec<String> =
                    r.allow.iter().map(|a| format!("           {a}")).collect();
                let page = format!(
                    "safe-ai: the sandbox's proxy refused this request ({code}).\n\
                     \n\
                     host:    %H\n\
                     request: %M %U\n\
                     reason:  no rule for {domain} allows this request. Its rules\n\
                     \x20        ({origin}) allow only:\n\
                     {rules}\n\
                     fix:     if the task needs this request, ask the person who runs\n\
                     \x20        this sandbox to add a rule for it to the allowlist.\n\
                     \n\
                     This is the sandbox's network policy, not a network fault: retrying\n\
                     will not help, and there is no other way out of the sandbox. What it\n\
                     allows, and how: /etc/safe-ai/policy.txt in the sandbox.\n",
                    code = DenyReason::Rule.code(),
                    domain = r.domain,
                    rules = rules.join("\n"),
                );
                (Self::rule_page_name(i), page)
            })
            .collect()
    }
}

/// The sandbox's `sandbox.env`: one `NAME=placeholder` line per credential's
/// `sandbox_env`, which the sandbox sets in every login session so that a client that
/// insists on a key starts; the proxy replaces the header on the wire. Names only,
/// never a secret.
pub fn sandbox_env_file(allowlist: &Allowlist) -> String {
    let mut names: Vec<&str> = allowlist
        .credentials()
        .iter()
        .filter_map(|c| c.sandbox_env.as_ref().map(|e| e.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut out = String::from(
        "# Written by the proxy: the variables of brokered credentials. Each holds a\n\
         # placeholder; the proxy adds the real key on the wire, for its host only.\n",
    );
    for name in names {
        out.push_str(&format!("{name}={}\n", safeai_policy::PLACEHOLDER));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decryption(yaml: &str) -> Decryption {
        let checked = safeai_policy::check(&[safeai_policy::Source::Yaml {
            name: "allowlist.yaml".into(),
            text: yaml.into(),
        }])
        .unwrap();
        Decryption::new(&checked.allowlist)
    }

    #[test]
    fn sni_names_never_overlap_and_inner_hosts_keep_their_own_rules() {
        let d = decryption(
            "rules:\n  - {domain: github.com, allow: [GET /**]}\n  - {domain: api.github.com, allow: [POST /x]}\n\
             credentials:\n  - {domain: api.github.com, header: authorization, value: 'token ${GH}'}\n  - {domain: api.anthropic.com, header: x-api-key, value: '${A}'}\n",
        );
        assert_eq!(d.sni, ["api.anthropic.com", ".github.com"]);
        assert_eq!(d.ruled[0].domain.as_str(), "api.github.com");
        assert_eq!(d.ruled[1].inner, [0]);
        let lines = d.http_access_lines();
        assert!(
            lines.contains(
                &"http_access allow !CONNECT rules_1 !rules_0 method_GET rules_1_0".to_owned()
            ),
            "{lines:#?}"
        );
        assert!(lines.contains(&"http_access deny !CONNECT rules_0 safeai_http_rule_0".to_owned()));
        assert!(
            d.acl_lines()
                .contains(&"acl ruled dstdomain .github.com".to_owned())
        );
        let headers = d.request_header_lines(&Secrets::Redacted);
        assert_eq!(
            headers,
            [
                "request_header_access x-api-key deny credential_0",
                "request_header_access authorization deny credential_1",
                "request_header_add x-api-key \"[secret A]\" credential_0 decrypted !CONNECT",
                "request_header_add authorization \"token [secret GH]\" credential_1 decrypted !CONNECT",
            ]
        );
    }

    #[test]
    fn a_credential_host_alone_is_decrypted_exactly() {
        let d = decryption(
            "credentials:\n  - {domain: api.anthropic.com, header: x-api-key, value: '${A}'}\n",
        );
        assert_eq!(d.sni, ["api.anthropic.com"]);
        assert!(d.http_access_lines().is_empty());
        assert!(!d.acl_lines().iter().any(|l| l.contains("ambiguous")));
        assert!(!decryption("domains: [a.example.com]").any());
    }

    #[test]
    fn the_sandbox_env_file_names_variables_with_placeholders_only() {
        let checked = safeai_policy::check(&[safeai_policy::Source::Yaml {
            name: "a".into(),
            text: "credentials:\n  - {domain: a.example.com, header: x-k, value: '${K}', sandbox_env: B_KEY}\n  - {domain: b.example.com, header: x-k, value: '${K}', sandbox_env: A_KEY}\n  - {domain: c.example.com, header: x-k, value: '${K}'}\n".into(),
        }])
        .unwrap();
        let file = sandbox_env_file(&checked.allowlist);
        let lines: Vec<&str> = file.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "A_KEY=safe-ai-brokered-placeholder",
                "B_KEY=safe-ai-brokered-placeholder"
            ]
        );
    }

    #[test]
    fn ambiguous_paths_are_every_form_that_decodes_to_another_path() {
        for bad in [
            "/a/../b",
            "/a/..",
            "/a/./b",
            "/a/.",
            "/./a",
            "/a/%2e%2e/b",
            "/a/%2E/b",
            "/a%2fb",
            "/a%2Fb",
            "/a%5cb",
            "/a\\b",
            "//a",
            "/a//b",
            "/a%00",
            "/a%252e",
            "/a/..?x",
            "/a%3fb",
            "/a%23b",
        ] {
            assert!(ambiguous_path(bad), "{bad}");
        }
        for good in [
            "/a/b",
            "/a/.b",
            "/a/b..c",
            "/a/b?x=%2f",
            "/a?x=//y",
            "/a?x=/../",
            "/",
            "/a/b.git",
            "/a%20b",
        ] {
            assert!(!ambiguous_path(good), "{good}");
        }
    }

    #[test]
    fn the_path_helper_answers_ok_for_ambiguous_paths_and_fails_closed() {
        for (line, want) in [
            // As Squid sends it: the path URL-encoded, then the ACL's empty arguments.
            ("1 /repos/acme/x%2fy -", "1 OK"),
            ("2 /repos/acme/x -", "2 ERR"),
            ("3 /repos/acme/x?q=%2f -", "3 ERR"),
            ("4 /a/%2E%2E/b -", "4 OK"),
            ("5 /a%5Cb -", "5 OK"),
            ("6", "6 OK"),
            ("7 /a /b -", "7 OK"),
            ("", "0 OK"),
        ] {
            assert_eq!(path_check(line), want, "{line:?}");
        }
    }
}
