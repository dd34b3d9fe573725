//! What the allowlist says beyond the domain: per-host method and path rules (`rules:`)
//! and brokered credentials (`credentials:`).
//!
//! Every value here is built only by validation, so nothing a user writes reaches a
//! rendered file as text: a path pattern becomes an anchored regex made of escaped
//! literals and two wildcards, a header name is an HTTP token, a credential's secret is
//! a name the proxy looks up, never a value in the allowlist.

use std::fmt;

use serde::Serialize;

use crate::diagnostic::Shown;
use crate::{Domain, Origin};

/// An HTTP method a rule can allow. `GET` also allows `HEAD` (the same request without
/// the body); nothing else is implied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET` (and `HEAD`).
    Get,
    /// `HEAD` alone.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
    /// `OPTIONS`.
    Options,
}

impl Method {
    /// Every method, in the order of the docs.
    pub const ALL: [Method; 7] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
    ];

    /// The name as written in a rule and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }

    /// The methods on the wire this one allows: `GET` allows `HEAD` too.
    pub fn wire(self) -> &'static [&'static str] {
        match self {
            Method::Get => &["GET", "HEAD"],
            Method::Head => &["HEAD"],
            Method::Post => &["POST"],
            Method::Put => &["PUT"],
            Method::Patch => &["PATCH"],
            Method::Delete => &["DELETE"],
            Method::Options => &["OPTIONS"],
        }
    }

    fn parse(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A path pattern: `/` then segments of URL path characters, where a segment may hold
/// `*` (any characters but `/`) and a whole segment `**` means any number of segments,
/// none included. `/repos/acme/**` matches `/repos/acme`, `/repos/acme/x` and
/// `/repos/acme/x/y`; `/repos/*/pulls` matches `/repos/x/pulls` only. The query string
/// is not part of the pattern: any query passes.
///
/// Built only by [`PathGlob::parse`], which refuses every character that could mean
/// something else after decoding (`%`, `\`), empty, `.` and `..` segments, `?` and `#`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PathGlob(String);

/// One segment of a pattern.
enum Segment<'a> {
    /// `**`: any number of segments.
    Any,
    /// Literal text and `*`s.
    Text(&'a str),
}

impl PathGlob {
    /// Validates a pattern.
    ///
    /// # Errors
    ///
    /// The first problem, in words for [`RuleError::BadPath`].
    pub fn parse(text: &str) -> Result<PathGlob, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err("a path starts with `/`".into());
        };
        if rest.is_empty() {
            return Ok(PathGlob(text.to_owned()));
        }
        for (i, segment) in rest.split('/').enumerate() {
            let last = i == rest.split('/').count() - 1;
            match segment {
                "" if last => {}
                "" => return Err("`//` (an empty segment) could mean another path upstream".into()),
                "." | ".." => {
                    return Err(format!(
                        "a `{segment}` segment could mean another path upstream"
                    ));
                }
                "**" => {}
                s if s.contains("**") => {
                    return Err("`**` stands for whole segments only: write `/a/**`".into());
                }
                s => {
                    if let Some(c) = s.chars().find(|&c| !path_char(c) && c != '*') {
                        return Err(match c {
                            '%' | '\\' => format!(
                                "`{}` could mean another path after decoding; write the path as the server reads it",
                                Shown(&c.to_string())
                            ),
                            '?' | '#' => {
                                "a pattern is a path only: the query string is not matched".into()
                            }
                            c => format!(
                                "`{}` is not allowed in a path pattern",
                                Shown(&c.to_string())
                            ),
                        });
                    }
                }
            }
        }
        Ok(PathGlob(text.to_owned()))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn segments(&self) -> impl Iterator<Item = Segment<'_>> {
        self.0[1..].split('/').map(|s| match s {
            "**" => Segment::Any,
            s => Segment::Text(s),
        })
    }

    /// The POSIX extended regex Squid's `urlpath_regex` matches it with: anchored at
    /// both ends, every literal character but letters, digits and `/` in a bracket (so no
    /// character of the pattern has a meaning in the regex), and an optional query
    /// string at the end (`urlpath_regex` sees the path and the query).
    pub fn regex(&self) -> String {
        let mut re = String::from("^");
        for segment in self.segments() {
            match segment {
                // Zero or more whole segments: `/a/**` matches `/a` and `/a/b/c`.
                Segment::Any => re.push_str("(/[^?]*)?"),
                Segment::Text(text) => {
                    re.push('/');
                    if text == "*" {
                        // A whole-segment `*` needs at least one character.
                        re.push_str("[^/?]+");
                        continue;
                    }
                    for c in text.chars() {
                        match c {
                            '*' => re.push_str("[^/?]*"),
                            c if c.is_ascii_alphanumeric() => re.push(c),
                            c => {
                                re.push('[');
                                re.push(c);
                                re.push(']');
                            }
                        }
                    }
                }
            }
        }
        re.push_str("([?].*)?$");
        re
    }

    /// Whether `path` (without its query string) matches: the same language as
    /// [`PathGlob::regex`], for `safeai check` and the tests.
    pub fn matches(&self, path: &str) -> bool {
        let path = path.split('?').next().unwrap_or("");
        let Some(path) = path.strip_prefix('/') else {
            return false;
        };
        if self.0 == "/" {
            return path.is_empty();
        }
        let want: Vec<Segment<'_>> = self.segments().collect();
        let have: Vec<&str> = path.split('/').collect();
        matches_segments(&want, &have)
    }
}

fn matches_segments(want: &[Segment<'_>], have: &[&str]) -> bool {
    match want.split_first() {
        None => have.is_empty(),
        Some((Segment::Any, rest)) => (0..=have.len()).any(|k| matches_segments(rest, &have[k..])),
        Some((Segment::Text(t), rest)) => match have.split_first() {
            Some((h, more)) => {
                (if *t == "*" {
                    !h.is_empty()
                } else {
                    segment_matches(t, h)
                }) && matches_segments(rest, more)
            }
            None => false,
        },
    }
}

/// `*` in a segment: any run of characters (a segment holds no `/`).
fn segment_matches(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&k| rest.is_char_boundary(k))
                .any(|k| segment_matches(tail, &rest[k..]))
        }
    }
}

/// The characters a path segment may hold as they are (RFC 3986 `pchar` without
/// percent-encoding).
fn path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()+,;=:@".contains(c)
}

/// One allowed request: a method and a path pattern, written `GET /repos/acme/**`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Rule {
    /// The method.
    pub method: Method,
    /// The path pattern.
    pub path: PathGlob,
}

impl Rule {
    /// Parses `METHOD /pattern`.
    ///
    /// # Errors
    ///
    /// [`RuleError::BadRule`], [`RuleError::UnknownMethod`] or [`RuleError::BadPath`].
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        let mut parts = text.split(' ').filter(|p| !p.is_empty());
        let (Some(method), Some(path), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(RuleError::BadRule { text: text.into() });
        };
        let Some(method) = Method::parse(method) else {
            return Err(RuleError::UnknownMethod {
                text: text.into(),
                method: method.into(),
            });
        };
        let path = PathGlob::parse(path).map_err(|problem| RuleError::BadPath {
            text: text.into(),
            problem,
        })?;
        Ok(Rule { method, path })
    }

    /// Whether a request with this method on the wire and this path is allowed.
    pub fn allows(&self, method: &str, path: &str) -> bool {
        self.method.wire().contains(&method) && self.path.matches(path)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path.as_str())
    }
}

/// The rules of one host: its requests (and its subdomains', unless they have rules of
/// their own) are decrypted, and only those some rule allows pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostRules {
    /// The host; its subdomains follow the same rules unless a more specific entry has
    /// its own.
    pub domain: Domain,
    /// The allowed requests, as written.
    pub allow: Vec<Rule>,
    /// Where the entry is.
    pub origin: Origin,
}

impl HostRules {
    /// Whether a request is allowed by these rules.
    pub fn allows(&self, method: &str, path: &str) -> bool {
        self.allow.iter().any(|r| r.allows(method, path))
    }
}

/// An HTTP header name: an RFC 9110 token, stored lower-case, not one the proxy must
/// own (hop-by-hop and framing headers, `Host`, `Proxy-*`, `X-Safe-AI-*`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct HeaderName(String);

/// Headers a credential must not replace: they frame or route the request.
const RESERVED_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "expect",
    "host",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

impl HeaderName {
    /// Validates a header name.
    ///
    /// # Errors
    ///
    /// [`RuleError::BadHeader`] with the reason.
    pub fn parse(text: &str) -> Result<HeaderName, RuleError> {
        let bad = |problem: &str| RuleError::BadHeader {
            name: text.into(),
            problem: problem.into(),
        };
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        if !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$&'*+-.^_`|~".contains(c))
        {
            return Err(bad(
                "a header name is letters, digits and `-` (an HTTP token)",
            ));
        }
        let lower = text.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str())
            || lower.starts_with("proxy-")
            || lower.starts_with("x-safe-ai")
        {
            return Err(bad("the proxy owns this header"));
        }
        Ok(HeaderName(lower))
    }

    /// The name, lower-case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a secret: a file in the proxy's secrets directory, and what the
/// allowlist writes as `${NAME}`. Letters, digits and `_`, not starting with a digit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SecretName(String);

impl SecretName {
    /// Validates a secret's name.
    ///
    /// # Errors
    ///
    /// [`RuleError::BadSecretName`].
    pub fn parse(text: &str) -> Result<SecretName, RuleError> {
        if is_identifier(text) {
            Ok(SecretName(text.to_owned()))
        } else {
            Err(RuleError::BadSecretName { name: text.into() })
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && text.len() <= 64
}

/// A header's value: literal text around one `${NAME}`, the secret the proxy fills in
/// (`Bearer ${OPENAI_API_KEY}`). The literal text is printable ASCII without `"`, `\`
/// and `%`, so it can be written into squid.conf as it is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ValueTemplate {
    /// Text before the secret.
    pub prefix: String,
    /// The secret.
    pub secret: SecretName,
    /// Text after it.
    pub suffix: String,
}

impl ValueTemplate {
    /// Parses `prefix${NAME}suffix`.
    ///
    /// # Errors
    ///
    /// [`RuleError::BadValue`] or [`RuleError::BadSecretName`].
    pub fn parse(text: &str) -> Result<ValueTemplate, RuleError> {
        let bad = |problem: &str| RuleError::BadValue {
            problem: problem.into(),
        };
        let Some((prefix, rest)) = text.split_once("${") else {
            return Err(bad("it names no secret"));
        };
        let Some((name, suffix)) = rest.split_once('}') else {
            return Err(bad("`${` is not closed by `}`"));
        };
        if suffix.contains("${") {
            return Err(bad("it names more than one secret"));
        }
        for part in [prefix, suffix] {
            if part
                .chars()
                .any(|c| !(' '..='~').contains(&c) || matches!(c, '"' | '\\' | '%' | '$'))
            {
                return Err(bad(
                    "the text around the secret is printable ASCII without `\"`, `\\`, `%` and `$`",
                ));
            }
        }
        Ok(ValueTemplate {
            prefix: prefix.into(),
            secret: SecretName::parse(name)?,
            suffix: suffix.into(),
        })
    }
}

impl fmt::Display for ValueTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}${{{}}}{}",
            self.prefix,
            self.secret.as_str(),
            self.suffix
        )
    }
}

/// An environment variable of the sandbox's sessions that holds a placeholder for a
/// brokered credential, so that a client insisting on a key starts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct EnvName(String);

/// Variables the sandbox sets itself, or that change how programs run.
const RESERVED_ENV: &[&str] = &[
    "HOME",
    "PATH",
    "SHELL",
    "USER",
    "LOGNAME",
    "PWD",
    "TERM",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

impl EnvName {
    /// Validates a variable name.
    ///
    /// # Errors
    ///
    /// [`RuleError::BadEnvName`].
    pub fn parse(text: &str) -> Result<EnvName, RuleError> {
        let reserved = RESERVED_ENV.contains(&text)
            || text.starts_with("LD_")
            || text.starts_with("SAFE_AI_")
            || text.ends_with("_CA_CERTS")
            || text.ends_with("_CAINFO")
            || text.ends_with("CA_BUNDLE");
        if is_identifier(text) && !reserved {
            Ok(EnvName(text.to_owned()))
        } else {
            Err(RuleError::BadEnvName {
                name: text.into(),
                reserved,
            })
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The value the sandbox sees in a credential's `sandbox_env`: recognisably not a key.
pub const PLACEHOLDER: &str = "safe-ai-brokered-placeholder";

/// A credential the proxy adds to the requests for one host (exactly that name, no
/// subdomain), after removing whatever the client sent in that header. The secret is
/// named here and read by the proxy from its secrets directory; the allowlist never
/// holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Credential {
    /// The host, exactly.
    pub domain: Domain,
    /// The header.
    pub header: HeaderName,
    /// Its value, around the secret.
    pub value: ValueTemplate,
    /// The sandbox variable that holds [`PLACEHOLDER`].
    pub sandbox_env: Option<EnvName>,
    /// Where the entry is.
    pub origin: Origin,
}

/// A problem with a `rules:` or `credentials:` entry. Part of [`crate::Error`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// `rules` or `credentials` is not a list.
    #[error("`{key}` must be a list, found {found}")]
    NotAList {
        /// The key.
        key: &'static str,
        /// What was found, with its article.
        found: &'static str,
    },
    /// An item of `rules` or `credentials` that is not a map.
    #[error("an entry of `{section}` is {found}, not a map")]
    NotAMap {
        /// The section.
        section: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// A key the entry does not take.
    #[error(
        "unknown key `{}` in an entry of `{section}`; the keys are {keys}",
        Shown(key)
    )]
    UnknownKey {
        /// The section.
        section: &'static str,
        /// The key as written.
        key: String,
        /// The keys it takes, for the message.
        keys: &'static str,
    },
    /// A key given twice.
    #[error("`{key}` is given twice in one entry of `{section}`")]
    RepeatedKey {
        /// The section.
        section: &'static str,
        /// The key.
        key: String,
    },
    /// A key the entry needs.
    #[error("an entry of `{section}` has no `{key}`")]
    MissingKey {
        /// The section.
        section: &'static str,
        /// The key.
        key: &'static str,
    },
    /// A value that should be a string.
    #[error("`{key}` is {found}, not a string")]
    NotAString {
        /// The key.
        key: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// `allow` is empty.
    #[error("`allow` is empty: every request to this host would be denied")]
    EmptyAllow,
    /// A rule that is not `METHOD /path`.
    #[error("`{}` is not a rule of the form `METHOD /path`", Shown(text))]
    BadRule {
        /// The rule.
        text: String,
    },
    /// A method the rules do not know.
    #[error(
        "`{}` in `{}` is not a method a rule can allow",
        Shown(method),
        Shown(text)
    )]
    UnknownMethod {
        /// The rule.
        text: String,
        /// The method as written.
        method: String,
    },
    /// A path pattern that is not valid.
    #[error("the path of `{}` is refused: {problem}", Shown(text))]
    BadPath {
        /// The rule.
        text: String,
        /// Why.
        problem: String,
    },
    /// A wildcard in a credential's domain.
    #[error("a credential is for one host; `{}` names many", Shown(text))]
    WildcardCredential {
        /// The domain as written.
        text: String,
    },
    /// A header name that cannot be used.
    #[error("`{}` cannot be a credential's header: {problem}", Shown(name))]
    BadHeader {
        /// The name as written.
        name: String,
        /// Why.
        problem: String,
    },
    /// A credential's value that is not text around one `${NAME}`.
    #[error("`value` is refused: {problem}")]
    BadValue {
        /// Why.
        problem: String,
    },
    /// A secret's name that is not an identifier.
    #[error("`{}` is not a secret's name (letters, digits and `_`)", Shown(name))]
    BadSecretName {
        /// The name as written.
        name: String,
    },
    /// A `sandbox_env` that is not a variable name, or one the sandbox owns.
    #[error("`{}` cannot be a sandbox_env{}", Shown(name), if *reserved { ": the sandbox sets it itself" } else { "" })]
    BadEnvName {
        /// The name as written.
        name: String,
        /// It is a name the sandbox or its tools own.
        reserved: bool,
    },
    /// A second `rules` entry for a host.
    #[error("`{domain}` has rules already, at {first}")]
    DuplicateRules {
        /// The host.
        domain: Domain,
        /// The first entry.
        first: Origin,
    },
    /// A second credential for the same host and header.
    #[error("`{domain}` has a credential for `{header}` already, at {first}")]
    DuplicateCredential {
        /// The host.
        domain: Domain,
        /// The header.
        header: String,
        /// The first entry.
        first: Origin,
    },
    /// Rules or a credential for a host whose entry says `tunnel: opaque`: its bytes are
    /// never read, so nothing could be checked or added.
    #[error("`{domain}` is `tunnel: opaque` ({at}), so its requests cannot be {what}")]
    OpaqueHost {
        /// The host.
        domain: Domain,
        /// The opaque entry.
        at: Origin,
        /// `checked` or `given a credential`.
        what: &'static str,
    },
    /// A YAML alias where an entry's value is read.
    #[error("aliases are not read in `rules` or `credentials`")]
    Alias,
}

impl RuleError {
    /// How to fix it.
    pub fn hint(&self) -> String {
        match self {
            RuleError::NotAList { key: "allow", .. } => "write a list: `allow: [GET /**]`, or one `- GET /path` per line".into(),
            RuleError::NotAList { key, .. } => format!("write `{key}:` followed by `- domain: …` entries"),
            RuleError::NotAMap { section, .. } | RuleError::MissingKey { section, .. } | RuleError::UnknownKey { section, .. } => {
                if *section == "rules" {
                    "a rule entry is `{domain: api.github.com, allow: [GET /repos/acme/**]}`".into()
                } else {
                    "a credential is `{domain: api.anthropic.com, header: x-api-key, value: \"${ANTHROPIC_API_KEY}\", sandbox_env: ANTHROPIC_API_KEY}`".into()
                }
            }
            RuleError::RepeatedKey { .. } => "keep one of them".into(),
            RuleError::NotAString { .. } => "write it as a string".into(),
            RuleError::EmptyAllow => "list the allowed requests, or remove the entry to leave the host out".into(),
            RuleError::BadRule { .. } => "write the method, one space, and the path: `GET /repos/acme/**`".into(),
            RuleError::UnknownMethod { .. } => {
                let names: Vec<&str> = Method::ALL.iter().map(|m| m.as_str()).collect();
                format!("write one of {} in capitals (GET also allows HEAD)", names.join(", "))
            }
            RuleError::BadPath { .. } => "write a path such as `/repos/acme/**`: `*` is one segment, `**` any depth".into(),
            RuleError::WildcardCredential { .. } => "write the host the key is for, such as `api.anthropic.com`".into(),
            RuleError::BadHeader { .. } => "name the header the service reads the key from, such as `x-api-key` or `authorization`".into(),
            RuleError::BadValue { .. } => "write the secret's name in `${…}`, with any fixed text around it: `\"Bearer ${OPENAI_API_KEY}\"`".into(),
            RuleError::BadSecretName { .. } => "name the secret like a variable: `ANTHROPIC_API_KEY`".into(),
            RuleError::BadEnvName { .. } => "use the variable the client reads its key from, such as `ANTHROPIC_API_KEY`".into(),
            RuleError::DuplicateRules { .. } => "merge the two entries' `allow` lists into one entry".into(),
            RuleError::DuplicateCredential { .. } => "keep one of them: a header gets one value".into(),
            RuleError::OpaqueHost { .. } => "remove `tunnel: opaque` from the entry, or the rules or credential".into(),
            RuleError::Alias => "write the entry out in full".into(),
        }
    }

    /// A stable identifier for machines, kebab-case.
    pub fn code(&self) -> &'static str {
        match self {
            RuleError::NotAList { .. } => "rules-not-a-list",
            RuleError::NotAMap { .. } => "rules-not-a-map",
            RuleError::UnknownKey { .. } => "rules-unknown-key",
            RuleError::RepeatedKey { .. } => "rules-repeated-key",
            RuleError::MissingKey { .. } => "rules-missing-key",
            RuleError::NotAString { .. } => "rules-not-a-string",
            RuleError::EmptyAllow => "empty-allow",
            RuleError::BadRule { .. } => "bad-rule",
            RuleError::UnknownMethod { .. } => "unknown-method",
            RuleError::BadPath { .. } => "bad-path",
            RuleError::WildcardCredential { .. } => "wildcard-credential",
            RuleError::BadHeader { .. } => "bad-header",
            RuleError::BadValue { .. } => "bad-value",
            RuleError::BadSecretName { .. } => "bad-secret-name",
            RuleError::BadEnvName { .. } => "bad-env-name",
            RuleError::DuplicateRules { .. } => "duplicate-rules",
            RuleError::DuplicateCredential { .. } => "duplicate-credential",
            RuleError::OpaqueHost { .. } => "opaque-host",
            RuleError::Alias => "rules-alias",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(s: &str) -> PathGlob {
        PathGlob::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn globs_match_segments_and_depths() {
        let g = glob("/repos/acme/**");
        for p in [
            "/repos/acme",
            "/repos/acme/",
            "/repos/acme/x",
            "/repos/acme/x/y?z=1",
        ] {
            assert!(g.matches(p), "{p}");
        }
        for p in ["/repos/acmex", "/repos/other/x", "/repos", "repos/acme"] {
            assert!(!g.matches(p), "{p}");
        }
        let g = glob("/repos/*/pulls");
        assert!(g.matches("/repos/x/pulls"));
        assert!(!g.matches("/repos//pulls"));
        assert!(!g.matches("/repos/x/y/pulls"));
        let g = glob("/acme/*.git/git-upload-pack");
        assert!(g.matches("/acme/tools.git/git-upload-pack"));
        assert!(!g.matches("/acme/tools/git-upload-pack"));
        assert!(glob("/").matches("/"));
        assert!(!glob("/").matches("/x"));
        assert!(glob("/**").matches("/"));
        assert!(glob("/**").matches("/a/b"));
        assert!(glob("/a/**/z").matches("/a/z"));
        assert!(glob("/a/**/z").matches("/a/b/c/z"));
        assert!(!glob("/a/**/z").matches("/a/b/c/zz"));
    }

    #[test]
    fn confusing_patterns_are_refused() {
        for bad in [
            "repos", "/a//b", "/a/../b", "/a/./b", "/a/%2e", "/a\\b", "/a?x", "/a#x", "/a**",
            "/a/b**c", "/a b", "/a\"b", "/a\n",
        ] {
            assert!(PathGlob::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_regex_is_anchored_and_escapes_every_literal() {
        assert_eq!(
            glob("/repos/acme/**").regex(),
            "^/repos/acme(/[^?]*)?([?].*)?$"
        );
        assert_eq!(
            glob("/repos/*/pulls").regex(),
            "^/repos/[^/?]+/pulls([?].*)?$"
        );
        assert_eq!(glob("/a/x.git").regex(), "^/a/x[.]git([?].*)?$");
        assert_eq!(glob("/").regex(), "^/([?].*)?$");
        assert_eq!(glob("/**").regex(), "^(/[^?]*)?([?].*)?$");
    }

    #[test]
    fn rules_parse_method_and_path() {
        let r = Rule::parse("GET /repos/acme/**").unwrap();
        assert_eq!(r.to_string(), "GET /repos/acme/**");
        assert!(r.allows("GET", "/repos/acme/x"));
        assert!(r.allows("HEAD", "/repos/acme/x"));
        assert!(!r.allows("POST", "/repos/acme/x"));
        assert!(matches!(
            Rule::parse("get /x"),
            Err(RuleError::UnknownMethod { .. })
        ));
        assert!(matches!(
            Rule::parse("CONNECT /x"),
            Err(RuleError::UnknownMethod { .. })
        ));
        assert!(matches!(Rule::parse("GET"), Err(RuleError::BadRule { .. })));
        assert!(matches!(
            Rule::parse("GET /a /b"),
            Err(RuleError::BadRule { .. })
        ));
        assert!(matches!(
            Rule::parse("GET /a/../b"),
            Err(RuleError::BadPath { .. })
        ));
    }

    #[test]
    fn headers_values_and_names_are_checked() {
        assert_eq!(
            HeaderName::parse("X-Api-Key").unwrap().as_str(),
            "x-api-key"
        );
        for bad in [
            "",
            "Host",
            "proxy-authorization",
            "X-Safe-AI-Denied",
            "a b",
            "a:b",
            "a\r\n",
        ] {
            assert!(HeaderName::parse(bad).is_err(), "{bad:?}");
        }
        let v = ValueTemplate::parse("Bearer ${OPENAI_API_KEY}").unwrap();
        assert_eq!(
            (v.prefix.as_str(), v.secret.as_str(), v.suffix.as_str()),
            ("Bearer ", "OPENAI_API_KEY", "")
        );
        assert_eq!(v.to_string(), "Bearer ${OPENAI_API_KEY}");
        for bad in [
            "sk-123", "${A}${B}", "${A", "\"${A}", "${A}%s", "${1A}", "${}", "x\n${A}",
        ] {
            assert!(ValueTemplate::parse(bad).is_err(), "{bad:?}");
        }
        assert!(EnvName::parse("ANTHROPIC_API_KEY").is_ok());
        for bad in [
            "PATH",
            "LD_PRELOAD",
            "SAFE_AI_X",
            "NODE_EXTRA_CA_CERTS",
            "1A",
            "A-B",
            "",
        ] {
            assert!(EnvName::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        /// The regex Squid gets and the matcher `check` uses agree on every path.
        #[test]
        fn regex_and_matcher_agree(
            pattern in "(/(\\*\\*|[ab*.]{1,3})){1,4}",
            path in "(/[ab.?=]{0,3}){0,5}",
        ) {
            if let Ok(g) = PathGlob::parse(&pattern) {
                let re = regex::Regex::new(&g.regex()).unwrap();
                let path = if path.is_empty() { "/".to_owned() } else { path };
                proptest::prop_assert_eq!(re.is_match(&path), g.matches(&path), "{} {} {}", pattern, g.regex(), path);
            }
        }
    }
}
