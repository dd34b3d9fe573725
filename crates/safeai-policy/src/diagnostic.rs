//! Everything the policy can say about its input: errors, warnings and notes,
//! each with the place it came from and a hint a person can act on.

use std::fmt;

use serde::Serialize;

use crate::{Domain, Origin};

/// A problem that makes the allowlist unusable: with any of these, nothing is rendered.
///
/// Messages name the offending text (escaped, so a newline in an entry shows as `\n`
/// and never reaches a terminal or a config file raw); [`Error::hint`] says how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An entry that is the empty string.
    #[error("empty entry")]
    Empty,
    /// Whitespace or a control character inside an entry: a newline here would
    /// inject a directive into squid.conf.
    #[error("`{}` contains {} at character {at}", Shown(input), char_name(*.ch))]
    Whitespace {
        /// The entry.
        input: String,
        /// The first offending character.
        ch: char,
        /// Its position in the entry, in characters from 1.
        at: usize,
    },
    /// A URL (`https://github.com/x`) or a name with a path (`github.com/x`).
    #[error("`{}` is a URL, not a domain", Shown(input))]
    Url {
        /// The entry.
        input: String,
        /// The host part, when one could be read from it.
        host: Option<String>,
    },
    /// A name with a port (`github.com:443`).
    #[error(
        "`{}` has a port; the allowlist takes names only (HTTPS goes to 443, HTTP to 80)",
        Shown(input)
    )]
    HostPort {
        /// The entry.
        input: String,
        /// The part before the port.
        host: String,
    },
    /// An IPv4 or IPv6 address, bracketed or not, with or without a port.
    #[error(
        "`{}` is an IP address; the proxy denies IP destinations",
        Shown(input)
    )]
    IpLiteral {
        /// The entry.
        input: String,
    },
    /// A CIDR range (`10.0.0.0/8`).
    #[error(
        "`{}` is an address range; the allowlist takes domain names",
        Shown(input)
    )]
    Cidr {
        /// The entry.
        input: String,
    },
    /// A name every label of which is a number as `inet_aton` reads one, decimal, octal or
    /// hex (`127.1`, `0x7f.0x0.0x0.0x1`, `1.0x7f`, `017.1`, `2130706433`): an IPv4 address
    /// in another spelling.
    #[error(
        "`{}` is an IPv4 address in another spelling (every label is a decimal, octal or hex number)",
        Shown(input)
    )]
    IpLike {
        /// The entry.
        input: String,
    },
    /// A name whose last label is a number (`example.123`, `example.0x7f`): URL parsers
    /// read such a host as an IPv4 address and refuse it.
    #[error(
        "`{}` ends in a numeric label, so it would be read as an IP address",
        Shown(input)
    )]
    NumericTopLabel {
        /// The entry.
        input: String,
    },
    /// `*` anywhere but a leading `*.` (`a.*.com`, `*github.com`, `**.a.com`).
    #[error("`{}` has a `*` that is not a leading `*.`", Shown(input))]
    MisplacedWildcard {
        /// The entry.
        input: String,
    },
    /// A wildcard with no name: `*`, `.`, `*.`.
    #[error("`{}` would allow every domain", Shown(input))]
    BareWildcard {
        /// The entry.
        input: String,
    },
    /// Two dots in a row, or a dot at the start of the name part.
    #[error("`{}` has an empty label (two dots in a row)", Shown(input))]
    EmptyLabel {
        /// The entry.
        input: String,
    },
    /// A label longer than DNS allows.
    #[error(
        "`{}` has a label of {len} characters (`{label}`); DNS allows 63",
        Shown(input)
    )]
    LabelTooLong {
        /// The entry.
        input: String,
        /// The label.
        label: String,
        /// Its length.
        len: usize,
    },
    /// A name longer than DNS allows.
    #[error("`{}…` is {len} characters long; DNS allows 253", Shown(&.input.chars().take(40).collect::<String>()))]
    NameTooLong {
        /// The entry.
        input: String,
        /// Its length once normalized.
        len: usize,
    },
    /// A character that cannot appear in a host name (`_`, `;`, `#`, quotes, …).
    #[error(
        "`{}` contains `{ch}` at character {at}, which cannot appear in a domain name",
        Shown(input)
    )]
    InvalidCharacter {
        /// The entry.
        input: String,
        /// The first offending character.
        ch: char,
        /// Its position in the entry, in characters from 1.
        at: usize,
    },
    /// A label that starts or ends with a hyphen.
    #[error(
        "`{}` has a label that starts or ends with a hyphen (`{label}`)",
        Shown(input)
    )]
    HyphenAtLabelEdge {
        /// The entry.
        input: String,
        /// The label.
        label: String,
    },
    /// A name of one label (`localhost`, `proxy`).
    #[error("`{}` is a single label, not a fully qualified domain", Shown(input))]
    SingleLabel {
        /// The entry.
        input: String,
    },
    /// A bare public suffix (`com`, `co.uk`): it would open a whole top-level domain.
    #[error(
        "`{}` is a public suffix; allowing it would open every domain under it",
        Shown(input)
    )]
    PublicSuffix {
        /// The entry.
        input: String,
    },
    /// An `xn--` label that is not valid punycode.
    #[error(
        "`{}` has a label that is not valid punycode (`{label}`)",
        Shown(input)
    )]
    InvalidPunycode {
        /// The entry.
        input: String,
        /// The label.
        label: String,
    },
    /// A Unicode name that IDNA (strict) cannot convert.
    #[error("`{}` is not a valid internationalized domain name", Shown(input))]
    InvalidUnicode {
        /// The entry.
        input: String,
    },
    /// An entry that is neither a string nor a map (a number, a boolean, null, a list).
    #[error("entry is {found}, not a domain name")]
    NotAString {
        /// What was found, with its article: `a number`, `null`.
        found: &'static str,
        /// The value as YAML would print it, for the hint.
        shown: String,
    },
    /// A key other than `domain` and `tunnel` in an entry written as a map (`tunel: opaque`).
    #[error(
        "unknown key {} in an entry; the keys are `domain` and `tunnel`",
        Found(found, key)
    )]
    UnknownOption {
        /// What the key is, with its article: `a string`, `a list`.
        found: &'static str,
        /// The key as written, when it is a scalar.
        key: String,
    },
    /// `domain` or `tunnel` given twice in one entry.
    #[error("`{key}` is given twice in one entry")]
    RepeatedKey {
        /// The key.
        key: &'static str,
    },
    /// A `tunnel` other than `tls` or `opaque`, or not a string.
    #[error("`tunnel` is {}; it takes `tls` or `opaque`", Found(found, shown))]
    BadTunnel {
        /// What the value is, with its article.
        found: &'static str,
        /// The value as written, when it is a scalar.
        shown: String,
    },
    /// An entry written as a map without a `domain` key.
    #[error("entry has no `domain` key")]
    EntryWithoutDomain,
    /// The `domain` of an entry written as a map is not a string.
    #[error("`domain` is {found}, not a domain name")]
    DomainNotAString {
        /// What was found, with its article.
        found: &'static str,
        /// The value as YAML would print it, for the hint.
        shown: String,
    },
    /// `domains` is not a list (`domains: github.com`).
    #[error("`domains` must be a list, found {found}")]
    WrongShape {
        /// What was found, with its article.
        found: &'static str,
    },
    /// A name in `presets` that is not a preset (`presets: [githb]`).
    #[error("unknown preset `{}`", Shown(name))]
    UnknownPreset {
        /// The name as written.
        name: String,
        /// The preset it is probably a typo of.
        suggestion: Option<&'static str>,
    },
    /// An item of `presets` that is not a string.
    #[error("preset is {found}, not a preset name")]
    PresetNotAString {
        /// What was found, with its article.
        found: &'static str,
    },
    /// `presets` is not a list (`presets: github`).
    #[error("`presets` must be a list of preset names, found {found}")]
    PresetsWrongShape {
        /// What was found, with its article.
        found: &'static str,
    },
    /// The file is not valid YAML, or has a key other than `domains` and `presets`.
    #[error("{}", Shown(message))]
    Yaml {
        /// The parser's message.
        message: String,
    },
    /// The YAML expands aliases or nests beyond the parser's limits (an alias bomb).
    #[error("the YAML repeats aliases or nests too deeply ({})", Shown(message))]
    TooComplex {
        /// The parser's message.
        message: String,
    },
    /// A file named explicitly (flag or `SAFE_AI_ALLOWLIST`) that does not exist.
    #[error("allowlist file not found")]
    FileNotFound,
    /// A file that exists but cannot be read.
    #[error("cannot read the allowlist file: {}", Shown(message))]
    Io {
        /// The operating system's message.
        message: String,
    },
    /// A path that names something other than a regular file: a directory, a device
    /// (`/dev/zero`), a named pipe. Refused before anything is read, so it never blocks.
    #[error("the allowlist is {kind}, not a regular file")]
    NotAFile {
        /// What it is, with its article: `a directory`, `a named pipe (FIFO)`.
        kind: &'static str,
    },
    /// A file too large to be an allowlist.
    #[error("the file is {size} bytes or more; the limit is {limit}")]
    TooLarge {
        /// Its size as reported, or the number of bytes read before the limit stopped the read.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A problem with a `rules:` or `credentials:` entry.
    #[error(transparent)]
    Rule(#[from] crate::rules::RuleError),
}

impl Error {
    /// How to fix it, in a sentence fragment a person can act on.
    pub fn hint(&self) -> String {
        match self {
            Error::Empty => "remove the empty entry".into(),
            Error::Whitespace { input, .. } => {
                let trimmed = input.trim();
                if !trimmed.is_empty() && !trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    format!("write it without the surrounding whitespace: {}", Shown(trimmed))
                } else {
                    "one entry holds one domain: split it into several entries".into()
                }
            }
            Error::Url { host: Some(host), .. } => format!("write the domain alone: {host}"),
            Error::Url { host: None, .. } => "write the domain alone, without scheme or path".into(),
            Error::HostPort { host, .. } => format!("write the name without the port: {}", Shown(host)),
            Error::IpLiteral { .. }
            | Error::Cidr { .. }
            | Error::IpLike { .. }
            | Error::NumericTopLabel { .. } => {
                "allowlist the service by its domain name".into()
            }
            Error::MisplacedWildcard { .. } => {
                "a name already includes its subdomains: write `example.com` (or `*.example.com`)".into()
            }
            Error::BareWildcard { .. } => "list the domains to allow one by one".into(),
            Error::EmptyLabel { .. } => "remove the extra dot".into(),
            Error::LabelTooLong { .. } | Error::NameTooLong { .. } => "check the entry for a pasted mistake".into(),
            Error::InvalidCharacter { ch: '_', .. } => {
                "host names use hyphens, not underscores; check the real name of the service".into()
            }
            Error::InvalidCharacter { .. } => {
                "a domain has letters, digits, hyphens and dots only; a comment in YAML starts with ` #`".into()
            }
            Error::HyphenAtLabelEdge { .. } => "remove the leading or trailing hyphen".into(),
            Error::SingleLabel { .. } => "write the fully qualified name, such as `proxy.corp.internal`".into(),
            Error::PublicSuffix { input } => format!(
                "allow the registered domain under it, such as `example.{}`",
                Shown(input.trim_start_matches("*.").trim_start_matches('.'))
            ),
            Error::InvalidPunycode { .. } => "copy the name again from its source, or write it in Unicode".into(),
            Error::InvalidUnicode { .. } => "check the name's spelling, or write its punycode form".into(),
            Error::NotAString { shown, .. } if shown.is_empty() => {
                "write one domain name per entry, as a string".into()
            }
            Error::NotAString { shown, .. } => {
                format!("quote it if it is meant as a name: \"{shown}\"")
            }
            Error::UnknownOption { .. } => {
                "an entry is a name or a map of `domain` and `tunnel`: `{domain: example.com, tunnel: opaque}`".into()
            }
            Error::RepeatedKey { .. } => "keep one of them: one entry names one domain with its options".into(),
            Error::BadTunnel { .. } => {
                "write `tunnel: tls` (the default: TLS naming the host) or `tunnel: opaque` (any bytes, unchecked)".into()
            }
            Error::EntryWithoutDomain => {
                "name the domain the options are for: `{domain: example.com, tunnel: opaque}`".into()
            }
            Error::DomainNotAString { shown, .. } if shown.is_empty() => {
                "write one domain name, as a string: `domain: example.com`".into()
            }
            Error::DomainNotAString { shown, .. } => {
                format!("quote it if it is meant as a name: \"{shown}\"")
            }
            Error::WrongShape { .. } => "write a list: `domains: [github.com]` or one `- github.com` per line".into(),
            Error::UnknownPreset { suggestion, .. } => {
                let known = crate::presets::names().collect::<Vec<_>>().join(", ");
                match suggestion {
                    Some(s) => format!("did you mean `{s}`? the presets are {known}"),
                    None => format!("the presets are {known}; `safeai presets` shows their hosts"),
                }
            }
            Error::PresetNotAString { .. } => "write each preset's name as a string: `presets: [github, npm]`".into(),
            Error::PresetsWrongShape { .. } => "write a list: `presets: [github, npm]` or one `- github` per line".into(),
            Error::Yaml { .. } => {
                "the file's keys are `domains` (a list of names), `presets` (a list of preset names), `rules` and `credentials`".into()
            }
            Error::TooComplex { .. } => "write the list out without YAML aliases".into(),
            Error::FileNotFound => "check the path given with --allowlist or SAFE_AI_ALLOWLIST".into(),
            Error::Io { .. } => "check the file's permissions".into(),
            Error::NotAFile { .. } => {
                "name the allowlist file itself: a regular YAML file".into()
            }
            Error::TooLarge { .. } => "an allowlist holds domain names; check that this is the right file".into(),
            Error::Rule(e) => e.hint(),
        }
    }

    /// A stable identifier for machines (`--format json`), kebab-case.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Empty => "empty",
            Error::Whitespace { .. } => "whitespace",
            Error::Url { .. } => "url",
            Error::HostPort { .. } => "host-port",
            Error::IpLiteral { .. } => "ip-literal",
            Error::Cidr { .. } => "cidr",
            Error::IpLike { .. } => "ip-like",
            Error::NumericTopLabel { .. } => "numeric-top-label",
            Error::MisplacedWildcard { .. } => "misplaced-wildcard",
            Error::BareWildcard { .. } => "bare-wildcard",
            Error::EmptyLabel { .. } => "empty-label",
            Error::LabelTooLong { .. } => "label-too-long",
            Error::NameTooLong { .. } => "name-too-long",
            Error::InvalidCharacter { .. } => "invalid-character",
            Error::HyphenAtLabelEdge { .. } => "hyphen-at-label-edge",
            Error::SingleLabel { .. } => "single-label",
            Error::PublicSuffix { .. } => "public-suffix",
            Error::InvalidPunycode { .. } => "invalid-punycode",
            Error::InvalidUnicode { .. } => "invalid-unicode",
            Error::NotAString { .. } => "not-a-string",
            Error::UnknownOption { .. } => "unknown-option",
            Error::RepeatedKey { .. } => "repeated-key",
            Error::BadTunnel { .. } => "bad-tunnel",
            Error::EntryWithoutDomain => "entry-without-domain",
            Error::DomainNotAString { .. } => "domain-not-a-string",
            Error::WrongShape { .. } => "wrong-shape",
            Error::UnknownPreset { .. } => "unknown-preset",
            Error::PresetNotAString { .. } => "preset-not-a-string",
            Error::PresetsWrongShape { .. } => "presets-wrong-shape",
            Error::Yaml { .. } => "yaml",
            Error::TooComplex { .. } => "too-complex",
            Error::FileNotFound => "file-not-found",
            Error::Io { .. } => "io",
            Error::NotAFile { .. } => "not-a-file",
            Error::TooLarge { .. } => "too-large",
            Error::Rule(e) => e.code(),
        }
    }
}

/// Something worth knowing that does not stop the allowlist from being used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    /// The suffix is not on the public suffix list (a typo such as `github.cmo`,
    /// or a legitimate internal name such as `artifactory.corp.internal`).
    #[error("`{domain}` ends in `{suffix}`, which is not a known public suffix")]
    UnknownSuffix {
        /// The domain.
        domain: Domain,
        /// Its last label.
        suffix: String,
    },
    /// A suffix from the private section of the public suffix list (`github.io`):
    /// every tenant under it becomes reachable.
    #[error("`{domain}` is a shared hosting suffix; it allows every tenant under it")]
    PrivateSuffix {
        /// The domain.
        domain: Domain,
    },
    /// The public suffix list has a rule strictly below the domain (`s3.amazonaws.com`
    /// under `amazonaws.com`, `*.kawasaki.jp` under `kawasaki.jp`): every tenant of those
    /// shared suffixes becomes reachable.
    #[error(
        "`{domain}` has public suffixes under it (shared hosting or registries); it allows every tenant of each"
    )]
    SuffixesBelow {
        /// The domain.
        domain: Domain,
    },
    /// The same domain listed again.
    #[error("`{domain}` is listed twice; first at {first}")]
    Duplicate {
        /// The domain.
        domain: Domain,
        /// Where it was listed first.
        first: Origin,
    },
    /// An entry already allowed by a broader one; it is dropped.
    #[error("`{domain}` is already covered by `{by}` ({at}); dropped")]
    Covered {
        /// The dropped domain.
        domain: Domain,
        /// The broader domain that covers it.
        by: Domain,
        /// Where the broader domain was listed.
        at: Origin,
    },
    /// The same preset named again in `presets`; it is used once.
    #[error("preset `{name}` is listed twice; first at {first}")]
    PresetRepeated {
        /// The preset.
        name: &'static str,
        /// Where it was named first.
        first: Origin,
    },
    /// The default allowlist file does not exist.
    #[error("no allowlist file at the default path")]
    DefaultFileMissing,
    /// Nothing is allowed.
    #[error("the allowlist is empty: every request will be denied")]
    EmptyAllowlist,
    /// A Unicode name converted to its punycode form.
    #[error("`{}` is written as `{domain}`", Shown(input))]
    IdnConverted {
        /// The Unicode name as given.
        input: String,
        /// The punycode form used from here on.
        domain: Domain,
    },
}

impl Warning {
    /// How to act on it.
    pub fn hint(&self) -> String {
        match self {
            Warning::UnknownSuffix { .. } => {
                "fine for internal names; otherwise check the spelling of the last label".into()
            }
            Warning::PrivateSuffix { domain } => {
                format!("allow only the tenant you need, such as `your-name.{domain}`")
            }
            Warning::SuffixesBelow { domain } => {
                format!("allow only the hosts you need under `{domain}`, each by its full name")
            }
            Warning::Duplicate { .. } | Warning::PresetRepeated { .. } => {
                "remove one of the two".into()
            }
            Warning::Covered { by, .. } => {
                format!("remove the entry: `{by}` already includes its subdomains")
            }
            Warning::DefaultFileMissing => {
                "create allowlist.yaml, or name a file with --allowlist or SAFE_AI_ALLOWLIST".into()
            }
            Warning::EmptyAllowlist => {
                "add domains to allowlist.yaml or SAFE_AI_DEFAULT_DOMAINS".into()
            }
            Warning::IdnConverted { domain, .. } => {
                format!("write `{domain}` to silence this note")
            }
        }
    }

    /// A stable identifier for machines, kebab-case.
    pub fn code(&self) -> &'static str {
        match self {
            Warning::UnknownSuffix { .. } => "unknown-suffix",
            Warning::PrivateSuffix { .. } => "private-suffix",
            Warning::SuffixesBelow { .. } => "suffixes-below",
            Warning::Duplicate { .. } => "duplicate",
            Warning::PresetRepeated { .. } => "preset-repeated",
            Warning::Covered { .. } => "covered",
            Warning::DefaultFileMissing => "default-file-missing",
            Warning::EmptyAllowlist => "empty-allowlist",
            Warning::IdnConverted { .. } => "idn-converted",
        }
    }

    /// How loud it is: the IDN conversion is a note, the rest are warnings.
    pub fn severity(&self) -> Severity {
        match self {
            Warning::IdnConverted { .. } => Severity::Note,
            _ => Severity::Warning,
        }
    }
}

/// Shows user input in a message: control characters (ESC, CR, newline), whitespace
/// other than the plain space, and every other character Rust does not print as itself
/// (format characters such as the bidi overrides, the soft hyphen, unassigned code
/// points) are escaped (`\u{1b}`, `\r`, `\n`, `\u{202e}`), so a message is always one line
/// and never carries raw control bytes to a terminal or a log.
///
/// Every piece of text that came from outside (an entry, a YAML key, a parser's message
/// quoting the input, a path, an environment value) goes through it before it is shown.
///
/// ```
/// use safeai_policy::Escaped;
/// assert_eq!(Escaped("\u{1b}[31mred\r").to_string(), "\\u{1b}[31mred\\r");
/// assert_eq!(Escaped("bücher.de a\\b").to_string(), "bücher.de a\\b");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(pub &'a str);

pub(crate) use Escaped as Shown;

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            // `escape_debug` also escapes quotes and the backslash, which print fine.
            let plain = c == ' '
                || matches!(c, '"' | '\'' | '\\')
                || (!c.is_whitespace() && c.escape_debug().len() == 1);
            if plain {
                write!(f, "{c}")?;
            } else {
                write!(f, "{}", c.escape_debug())?;
            }
        }
        Ok(())
    }
}

/// Shows a YAML value in a message: a scalar as written (escaped, in backticks), anything
/// else by what it is (`a list`).
struct Found<'a>(&'a str, &'a str);

impl fmt::Display for Found<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Found(found, shown) = *self;
        if shown.is_empty() && found != "a string" {
            f.write_str(found)
        } else {
            write!(f, "`{}`", Shown(shown))
        }
    }
}

/// Names a whitespace or control character for a message.
fn char_name(c: char) -> String {
    match c {
        '\n' => "a newline".into(),
        '\r' => "a carriage return".into(),
        '\t' => "a tab".into(),
        ' ' => "a space".into(),
        c => format!("the character U+{:04X}", u32::from(c)),
    }
}

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The allowlist is rejected.
    Error,
    /// The allowlist is used, but something deserves a look.
    Warning,
    /// For information.
    Note,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        })
    }
}

/// What a diagnostic says: an error or a warning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// Rejects the allowlist.
    Error(Error),
    /// Does not.
    Warning(Warning),
}

/// One message about the input, with where it points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the input came from; `None` for the merged allowlist as a whole.
    pub origin: Option<Origin>,
    /// What is wrong.
    pub finding: Finding,
}

impl Diagnostic {
    /// An error at `origin`.
    pub fn error(origin: Origin, error: Error) -> Diagnostic {
        Diagnostic {
            origin: Some(origin),
            finding: Finding::Error(error),
        }
    }

    /// A warning at `origin`.
    pub fn warning(origin: Option<Origin>, warning: Warning) -> Diagnostic {
        Diagnostic {
            origin,
            finding: Finding::Warning(warning),
        }
    }

    /// Error, warning or note.
    pub fn severity(&self) -> Severity {
        match &self.finding {
            Finding::Error(_) => Severity::Error,
            Finding::Warning(w) => w.severity(),
        }
    }

    /// Whether this rejects the allowlist.
    pub fn is_error(&self) -> bool {
        matches!(self.finding, Finding::Error(_))
    }

    /// The message, without origin or hint.
    pub fn message(&self) -> String {
        match &self.finding {
            Finding::Error(e) => e.to_string(),
            Finding::Warning(w) => w.to_string(),
        }
    }

    /// How to act on it.
    pub fn hint(&self) -> String {
        match &self.finding {
            Finding::Error(e) => e.hint(),
            // A preset's host cannot be removed from the file: only the broader entry says
            // anything to act on.
            Finding::Warning(Warning::Covered { by, .. })
                if self.origin.as_ref().and_then(Origin::preset).is_some() =>
            {
                format!("nothing to change: `{by}` already allows this host of the preset")
            }
            Finding::Warning(w) => w.hint(),
        }
    }

    /// The stable identifier of the finding.
    pub fn code(&self) -> &'static str {
        match &self.finding {
            Finding::Error(e) => e.code(),
            Finding::Warning(w) => w.code(),
        }
    }
}

/// Renders as two lines:
///
/// ```text
/// error: allowlist.yaml:3:5: `https://github.com/x` is a URL, not a domain
///   = hint: write the domain alone: github.com
/// ```
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.severity())?;
        if let Some(origin) = &self.origin {
            write!(f, "{origin}: ")?;
        }
        write!(f, "{}\n  = hint: {}", self.message(), self.hint())
    }
}

impl Serialize for Diagnostic {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Diagnostic", 5)?;
        s.serialize_field("severity", &self.severity())?;
        s.serialize_field("origin", &self.origin)?;
        s.serialize_field("code", self.code())?;
        s.serialize_field("message", &self.message())?;
        s.serialize_field("hint", &self.hint())?;
        s.end()
    }
}

/// Every diagnostic, one after the other, separated by newlines.
pub fn render(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    out
}
