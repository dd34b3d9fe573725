//! The proxy's TLS layer and its refusals, as typed decisions that squid.conf renders.
//!
//! Every CONNECT the allowlist admits is peeked at (Squid reads the TLS ClientHello) and
//! then handled by the first [`BumpRule`] that matches: spliced (end-to-end TLS with the
//! real server) when the SNI names the CONNECT target, passed through unread for
//! `tunnel: opaque` entries, and otherwise refused. Every refusal carries a
//! [`DenyReason`]: the same words on the page the client reads, in the
//! `X-Safe-AI-Denied` header, and in the log.
//!
//! Denials reach the client as HTTP even for HTTPS: Squid answers a denied CONNECT inside
//! TLS with a certificate minted from the stack CA (it bumps the connection to deliver
//! the error), so the agent sees a 403 and a page, not a tunnel failure.

use std::fmt;

use crate::decrypt::Decryption;

/// A Squid ACL that squid.conf defines, by the name the rules use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acl {
    /// `method CONNECT`.
    Connect,
    /// `port 443`: the only port a CONNECT may name.
    HttpsPort,
    /// `port 80`: the only port a plain HTTP request may name.
    HttpPort,
    /// `proto HTTP`: the only scheme a plain request may name.
    HttpScheme,
    /// A destination written as an IPv4 (any form) or IPv6 address.
    IpLiteral,
    /// The allowlisted names (`dstdomain`).
    Allowlist,
    /// Addresses an allowlisted name must not resolve to: the blocked ranges minus the
    /// private exceptions.
    BlockedRange,
    /// Squid's cache manager URLs.
    Manager,
    /// The first step of the TLS handshake: the CONNECT is established, nothing read yet.
    Step1,
    /// The second step: the ClientHello (and its SNI) has been read.
    Step2,
    /// Names whose entries say `tunnel: opaque`.
    OpaqueTunnel,
    /// The ClientHello's SNI names the CONNECT target (the `safeai proxy sni-check` helper).
    /// On a decrypted request: the connection's SNI names the request's host.
    SniMatchesTarget,
    /// SNI names the proxy decrypts (hosts with rules or credentials).
    DecryptSni,
    /// A request that travels inside a connection the proxy decrypted.
    Decrypted,
    /// A request with an `Upgrade` header (WebSocket, h2c).
    UpgradeRequest,
    /// Every request.
    All,
}

impl Acl {
    /// The ACL's name in squid.conf.
    pub fn name(self) -> &'static str {
        match self {
            Acl::Connect => "CONNECT",
            Acl::HttpsPort => "https_port",
            Acl::HttpPort => "http_port",
            Acl::HttpScheme => "http_scheme",
            Acl::IpLiteral => "ip_literal",
            Acl::Allowlist => "allowlist",
            Acl::BlockedRange => "blocked_range",
            Acl::Manager => "manager",
            Acl::Step1 => "step1",
            Acl::Step2 => "step2",
            Acl::OpaqueTunnel => "opaque_tunnel",
            Acl::SniMatchesTarget => "sni_matches_target",
            Acl::DecryptSni => "decrypt_sni",
            Acl::Decrypted => "decrypted",
            Acl::UpgradeRequest => "upgrade_request",
            Acl::All => "all",
        }
    }
}

/// An ACL, or its negation, as one condition of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Test {
    /// The ACL matches.
    Is(Acl),
    /// The ACL does not match.
    Not(Acl),
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Test::Is(acl) => f.write_str(acl.name()),
            Test::Not(acl) => write!(f, "!{}", acl.name()),
        }
    }
}

/// Why the proxy refused a request or a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DenyReason {
    /// The host is not on the allowlist.
    NotAllowlisted,
    /// A CONNECT to a port other than 443, or plain HTTP to a port other than 80.
    Port,
    /// A plain request whose URI names another scheme than `http`, such as `ftp://`,
    /// `whois://` or `https://` (which Squid would speak itself, on any port).
    Scheme,
    /// The destination is written as an IP address.
    IpAddress,
    /// An allowlisted name resolved to a private, loopback, link-local or metadata address.
    PrivateAddress,
    /// The TLS ClientHello's SNI is missing or names another host than the CONNECT.
    SniMismatch,
    /// The bytes inside a CONNECT were not TLS, and the entry does not say `tunnel: opaque`.
    OpaqueTunnel,
    /// A decrypted request that no rule of its host allows.
    Rule,
    /// A decrypted (or plain) request to a ruled host whose path could mean another
    /// path once decoded: `..`, `%2e`, `%2f`, `%5c`, `//`, a backslash.
    AmbiguousPath,
    /// A request inside a decrypted connection whose `Host:` or absolute URI names
    /// another host than the connection's.
    OtherHost,
    /// A WebSocket (or other protocol) upgrade, or a CONNECT, inside a decrypted
    /// connection: it would carry bytes no rule can read.
    Upgrade,
}

impl DenyReason {
    /// Every reason, in the order of the docs.
    pub const ALL: [DenyReason; 11] = [
        DenyReason::NotAllowlisted,
        DenyReason::Port,
        DenyReason::Scheme,
        DenyReason::IpAddress,
        DenyReason::PrivateAddress,
        DenyReason::SniMismatch,
        DenyReason::OpaqueTunnel,
        DenyReason::Rule,
        DenyReason::AmbiguousPath,
        DenyReason::OtherHost,
        DenyReason::Upgrade,
    ];

    /// The reason's word: the value of `X-Safe-AI-Denied` and of the log's reason.
    pub fn code(self) -> &'static str {
        match self {
            DenyReason::NotAllowlisted => "not-allowlisted",
            DenyReason::Port => "port",
            DenyReason::Scheme => "scheme",
            DenyReason::IpAddress => "ip-address",
            DenyReason::PrivateAddress => "private-address",
            DenyReason::SniMismatch => "sni-mismatch",
            DenyReason::OpaqueTunnel => "opaque-tunnel",
            DenyReason::Rule => "rule",
            DenyReason::AmbiguousPath => "ambiguous-path",
            DenyReason::OtherHost => "other-host",
            DenyReason::Upgrade => "upgrade",
        }
    }

    /// The name of the page Squid serves for it (a file in the error directory).
    pub fn page_name(self) -> String {
        format!(
            "ERR_SAFEAI_{}",
            self.code().replace('-', "_").to_uppercase()
        )
    }

    /// The ACL that marks a denied CONNECT: it annotates the client connection, so that
    /// the request Squid decrypts to deliver the page (a new transaction) carries the
    /// reason too. Only used on CONNECTs, whose connection ends with the page.
    fn tunnel_marker(self) -> String {
        format!("safeai_tls_{}", self.code().replace('-', "_"))
    }

    /// The ACL that marks a denied plain HTTP request: it annotates that transaction
    /// only, since the connection may carry allowed requests afterwards.
    pub(crate) fn request_marker(self) -> String {
        format!("safeai_http_{}", self.code().replace('-', "_"))
    }

    /// The ACL that matches a reply to a request denied for this reason.
    fn reply_acl(self) -> String {
        format!("safeai_denied_{}", self.code().replace('-', "_"))
    }

    /// What happened, for the page (lines of at most 70 characters); `%H` is the host,
    /// `%p` the port.
    fn what(self) -> &'static str {
        match self {
            DenyReason::NotAllowlisted => "%H is not on the allowlist.",
            DenyReason::Port => {
                "port %p is not allowed: the proxy passes HTTPS on port 443 and\n\
                 plain HTTP on port 80, nothing else."
            }
            DenyReason::Scheme => {
                "the request asks the proxy to speak %P://, which it does not:\n\
                 it passes https:// (as CONNECT, port 443) and http:// (port 80)."
            }
            DenyReason::IpAddress => {
                "the destination is written as an IP address; only allowlisted\n\
                 host names are reachable."
            }
            DenyReason::PrivateAddress => {
                "%H resolves to a private, loopback, link-local or\n\
                 cloud-metadata address, which the proxy never connects to."
            }
            DenyReason::SniMismatch => {
                "the TLS server name (SNI) of this connection is missing, or it\n\
                 names another host than the one the connection was opened to."
            }
            DenyReason::OpaqueTunnel => "the connection to %H carried something other than TLS.",
            DenyReason::Rule => "no rule for %H allows %M %U.",
            DenyReason::AmbiguousPath => {
                "the path could mean another path once decoded (`..` or `.`\n\
                 segments, `//`, a backslash, %%2e, %%2f, %%5c, %%25, %%00, %%3f or\n\
                 %%23), and %H's requests are checked against rules."
            }
            DenyReason::OtherHost => {
                "this request names %H, but it travels inside a connection\n\
                 opened to another host: one connection, one host."
            }
            DenyReason::Upgrade => {
                "the request asks to turn a checked connection into another\n\
                 protocol (WebSocket, HTTP/2 over cleartext) or a tunnel."
            }
        }
    }

    /// What to do about it, for the page (lines of at most 70 characters).
    fn fix(self) -> &'static str {
        match self {
            DenyReason::NotAllowlisted => {
                "if the task needs %H, ask the person who runs this\n\
                 sandbox to allow it. On the host, in the stack's directory:\n\
                 safeai allow %H"
            }
            DenyReason::Port => {
                "use the service's standard port (https://%H/ or\n\
                 http://%H/), or ask the person who runs this sandbox."
            }
            DenyReason::Scheme => {
                "use https://%H/ (the client opens the TLS connection itself)\n\
                 or http://%H/; other protocols do not pass the proxy."
            }
            DenyReason::IpAddress => {
                "use the host name; if it is not allowlisted, ask the person who\n\
                 runs this sandbox to allow it (`safeai allow HOST` on the host)."
            }
            DenyReason::PrivateAddress => {
                "if %H is an internal service this sandbox should reach,\n\
                 the person who runs it can add its address range to\n\
                 SAFE_AI_PRIVATE_EXCEPTIONS on the host."
            }
            DenyReason::SniMismatch => {
                "connect with the host's own name as the TLS server name, as\n\
                 every ordinary client does: one connection, one host."
            }
            DenyReason::OpaqueTunnel => {
                "if %H must carry another protocol on port 443 (such as\n\
                 SSH), the person who runs this sandbox can mark its entry\n\
                 `tunnel: opaque` in the allowlist."
            }
            DenyReason::Rule => {
                "if the task needs this request, ask the person who runs\n\
                 this sandbox to add a rule for it to the allowlist."
            }
            DenyReason::AmbiguousPath => {
                "write the path as the server reads it, without encoded\n\
                 separators or dot segments."
            }
            DenyReason::OtherHost => "open a connection to %H itself (its own CONNECT and SNI).",
            DenyReason::Upgrade => {
                "use plain HTTP/1.1 requests on this host; WebSocket and\n\
                 tunnels pass only on hosts without rules or credentials."
            }
        }
    }

    /// The page: plain text with Squid's `%` codes, which Squid fills in.
    pub fn page(self) -> String {
        let indent = |text: &str| text.replace('\n', "\n         ");
        format!(
            "safe-ai: the sandbox's proxy refused this request ({code}).\n\
             \n\
             host:    %H\n\
             reason:  {what}\n\
             fix:     {fix}\n\
             \n\
             This is the sandbox's network policy, not a network fault: retrying\n\
             will not help, and there is no other way out of the sandbox. What it\n\
             allows, and how: /etc/safe-ai/policy.txt in the sandbox.\n",
            code = self.code(),
            what = indent(self.what()),
            fix = indent(self.fix()),
        )
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One refusal: `http_access deny` when every test matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// Why.
    pub reason: DenyReason,
    /// When: all must match.
    pub when: Vec<Test>,
    /// A note for the reader of squid.conf, if the rule needs one.
    pub note: Option<&'static str>,
}

/// What the proxy does with the bytes of an admitted CONNECT, at one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BumpAction {
    /// Read the ClientHello without deciding yet.
    Peek,
    /// Pass the bytes through untouched: end-to-end TLS with the real server.
    Splice,
    /// Decrypt, with a certificate minted from the stack CA.
    Bump,
    /// Close the connection.
    Terminate,
}

impl BumpAction {
    fn name(self) -> &'static str {
        match self {
            BumpAction::Peek => "peek",
            BumpAction::Splice => "splice",
            BumpAction::Bump => "bump",
            BumpAction::Terminate => "terminate",
        }
    }
}

/// One `ssl_bump` rule: the first whose tests all match decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BumpRule {
    /// What happens.
    pub action: BumpAction,
    /// When; empty means always.
    pub when: Vec<Test>,
    /// Why, for the reader of squid.conf.
    pub why: &'static str,
}

/// The access and TLS decisions of the proxy, in the order Squid applies them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPlan {
    /// The `http_access deny` rules, before the one `allow allowlist` (after a first
    /// rule for connections the bump rules marked as [`DenyReason::SniMismatch`]).
    pub denials: Vec<Denial>,
    /// Whether anything is allowlisted (else everything is denied as not allowlisted).
    pub allows_any: bool,
    /// The `ssl_bump` rules.
    pub bump: Vec<BumpRule>,
    /// The decrypted hosts: their rules go between the denials and the `allow`.
    pub decryption: Decryption,
}

/// What the plan depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanInputs {
    /// Anything is allowlisted.
    pub allows_any: bool,
    /// Some entry says `tunnel: opaque`.
    pub has_opaque: bool,
    /// Some address is blocked (the blocked ranges are not all excepted).
    pub blocks_any: bool,
    /// Some host is decrypted (it has rules or a credential).
    pub decrypts_any: bool,
}

impl TlsPlan {
    /// The plan for an allowlist, with its decrypted hosts.
    pub fn new(inputs: PlanInputs, decryption: Decryption) -> TlsPlan {
        use Acl::*;
        use Test::{Is, Not};
        let deny = |reason, when: Vec<Test>| Denial {
            reason,
            when,
            note: None,
        };
        // A decrypted request is on 443 and `https`: the plain-request rules skip it.
        let plain = |mut when: Vec<Test>| {
            if inputs.decrypts_any {
                when.push(Not(Decrypted));
            }
            when
        };
        let mut denials = Vec::new();
        if inputs.decrypts_any {
            denials.extend([
                Denial {
                    note: Some(
                        "One connection, one host: inside a decrypted connection the request's host must be the SNI's (the CONNECT's).",
                    ),
                    ..deny(DenyReason::OtherHost, vec![Is(Decrypted), Not(SniMatchesTarget)])
                },
                deny(DenyReason::Upgrade, vec![Is(Decrypted), Is(UpgradeRequest)]),
                deny(DenyReason::Upgrade, vec![Is(Decrypted), Is(Connect)]),
            ]);
        }
        denials.extend([
            deny(DenyReason::NotAllowlisted, vec![Not(Connect), Is(Manager)]),
            deny(DenyReason::Port, vec![Is(Connect), Not(HttpsPort)]),
            deny(DenyReason::Port, plain(vec![Not(Connect), Not(HttpPort)])),
            Denial {
                note: Some(
                    "Plain requests are http:// only: Squid would speak ftp://, whois:// or https:// itself.",
                ),
                ..deny(DenyReason::Scheme, plain(vec![Not(Connect), Not(HttpScheme)]))
            },
            deny(DenyReason::IpAddress, vec![Is(IpLiteral)]),
        ]);
        if inputs.allows_any {
            denials.push(Denial {
                note: Some("Names outside the allowlist are denied before any DNS lookup."),
                ..deny(DenyReason::NotAllowlisted, vec![Not(Allowlist)])
            });
            if inputs.blocks_any {
                denials.push(deny(DenyReason::PrivateAddress, vec![Is(BlockedRange)]));
            }
        }

        let mut bump = Vec::new();
        if inputs.has_opaque {
            bump.push(BumpRule {
                action: BumpAction::Splice,
                when: vec![Is(Step1), Is(OpaqueTunnel)],
                why: "`tunnel: opaque` entries: any bytes, never read",
            });
        }
        bump.push(BumpRule {
            action: BumpAction::Peek,
            when: vec![Is(Step1)],
            why: "read the ClientHello (non-TLS bytes end the connection: on_unsupported_protocol)",
        });
        if inputs.decrypts_any {
            bump.push(BumpRule {
                action: BumpAction::Bump,
                when: vec![Is(Step2), Is(SniMatchesTarget), Is(DecryptSni)],
                why: "hosts with rules or credentials, when the SNI names the CONNECT target: decrypted, each request checked",
            });
        }
        bump.extend([
            BumpRule {
                action: BumpAction::Splice,
                when: vec![Is(Step2), Is(SniMatchesTarget)],
                why: "the SNI names the CONNECT target: end-to-end TLS with the real server",
            },
            BumpRule {
                action: BumpAction::Bump,
                when: vec![Is(Step2)],
                why: "any other SNI, or none: decrypted only to answer with the sni-mismatch page",
            },
            BumpRule {
                action: BumpAction::Terminate,
                when: vec![Is(All)],
                why: "nothing else passes",
            },
        ]);
        TlsPlan {
            denials,
            allows_any: inputs.allows_any,
            bump,
            decryption,
        }
    }

    /// The ACL definitions the markers need.
    pub(crate) fn marker_acl_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for reason in DenyReason::ALL {
            let code = reason.code();
            lines.push(format!(
                "acl {} annotate_client safeai_reason={code}",
                reason.tunnel_marker()
            ));
            lines.push(format!(
                "acl {} annotate_transaction safeai_reason={code}",
                reason.request_marker()
            ));
            lines.push(format!(
                "acl {} note safeai_reason {code}",
                reason.reply_acl()
            ));
        }
        lines.push("acl safeai_denied note safeai_reason".to_owned());
        lines.extend(self.decryption.acl_lines());
        lines
    }

    /// `deny_info`: each marker to its reason's page (Squid picks the page by the last
    /// ACL of the denying rule).
    pub(crate) fn deny_info_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = DenyReason::ALL
            .iter()
            .flat_map(|r| {
                [
                    format!("deny_info {} {}", r.page_name(), r.tunnel_marker()),
                    format!("deny_info {} {}", r.page_name(), r.request_marker()),
                ]
            })
            .collect();
        let sni = DenyReason::SniMismatch;
        lines.push(format!("deny_info {} {}", sni.page_name(), sni.reply_acl()));
        lines.extend(self.decryption.deny_info_lines());
        lines
    }

    /// The `http_access` rules, in order. Each denial is rendered for CONNECTs (marking the
    /// connection) and for plain requests (marking the transaction), unless its tests
    /// already say which.
    pub(crate) fn http_access_lines(&self) -> Vec<String> {
        // First: the request Squid decrypted only to answer a connection whose SNI did not
        // match (the bump rule marked it) gets that page, whatever it asks for.
        let mut lines = vec![format!(
            "http_access deny {}",
            DenyReason::SniMismatch.reply_acl()
        )];
        for d in &self.denials {
            let tests: Vec<String> = d.when.iter().map(ToString::to_string).collect();
            let tests = tests.join(" ");
            let only_connect = d.when.contains(&Test::Is(Acl::Connect));
            let only_plain = d.when.contains(&Test::Not(Acl::Connect));
            if let Some(note) = d.note {
                lines.push(format!("# {note}"));
            }
            if d.when.contains(&Test::Is(Acl::Decrypted)) {
                // A request inside a decrypted connection: its own transaction only.
                lines.push(format!(
                    "http_access deny {tests} {}",
                    d.reason.request_marker()
                ));
                continue;
            }
            if !only_plain {
                let prefix = if only_connect { "" } else { "CONNECT " };
                lines.push(format!(
                    "http_access deny {prefix}{tests} {}",
                    d.reason.tunnel_marker()
                ));
            }
            if !only_connect {
                let prefix = if only_plain { "" } else { "!CONNECT " };
                lines.push(format!(
                    "http_access deny {prefix}{tests} {}",
                    d.reason.request_marker()
                ));
            }
        }
        lines.extend(self.decryption.http_access_lines());
        if self.allows_any {
            lines.push("http_access allow allowlist".to_owned());
        }
        let last = DenyReason::NotAllowlisted;
        lines.push(format!("http_access deny CONNECT {}", last.tunnel_marker()));
        lines.push(format!("http_access deny all {}", last.request_marker()));
        lines
    }

    /// The `ssl_bump` rules, each after a comment saying why.
    pub(crate) fn ssl_bump_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for rule in &self.bump {
            lines.push(format!("# {}", rule.why));
            let mut line = format!("ssl_bump {}", rule.action.name());
            for t in &rule.when {
                line.push(' ');
                line.push_str(&t.to_string());
            }
            if rule.action == BumpAction::Bump && rule.when == [Test::Is(Acl::Step2)] {
                // Marks the connection, so that the decrypted request gets the page.
                line.push(' ');
                line.push_str(&DenyReason::SniMismatch.tunnel_marker());
            }
            if rule.when.contains(&Test::Is(Acl::DecryptSni)) {
                // Marks the connection: its requests are the decrypted ones.
                line.push_str(" decrypting");
            }
            lines.push(line);
        }
        lines
    }

    /// `reply_header_add` and the headers a denial page must not carry.
    pub(crate) fn reply_header_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = DenyReason::ALL
            .iter()
            .map(|r| {
                format!(
                    "reply_header_add X-Safe-AI-Denied \"{}\" {}",
                    r.code(),
                    r.reply_acl()
                )
            })
            .collect();
        lines.push("reply_header_access Content-Type deny safeai_denied".to_owned());
        lines.push("reply_header_replace Content-Type text/plain; charset=utf-8".to_owned());
        lines
    }

    /// The marker `on_unsupported_protocol` uses, so the log names the reason.
    pub(crate) fn opaque_marker(&self) -> String {
        DenyReason::OpaqueTunnel.tunnel_marker()
    }
}

/// One answer of the SNI check helper (`safeai proxy sni-check`), which Squid's
/// `external_acl_type` runs with `%ssl::>sni %>rd`: `ID SNI HOST -` in (URL-encoded, `-`
/// for a missing value; the last `-` stands for the ACL's empty arguments), `ID OK` or
/// `ID ERR` out. OK only when the SNI is present and
/// names the CONNECT target, case and a trailing dot ignored. Anything unexpected is ERR:
/// the helper fails closed.
pub fn sni_check(line: &str) -> String {
    let mut fields = line.split_ascii_whitespace();
    let id = fields.next().unwrap_or("0");
    // Squid appends the ACL's arguments (none: `-`) after the format's fields.
    let verdict = match (fields.next(), fields.next(), fields.next(), fields.next()) {
        (Some(sni), Some(host), None | Some("-"), None) => {
            match (squid_decode(sni), squid_decode(host)) {
                (Some(sni), Some(host)) if same_host(&sni, &host) => "OK",
                _ => "ERR",
            }
        }
        _ => "ERR",
    };
    format!("{id} {verdict}")
}

/// A field as Squid's helper protocol sends it: `-` for none, `%XX` escapes.
pub(crate) fn squid_decode(field: &str) -> Option<String> {
    if field == "-" || field.is_empty() {
        return None;
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = field.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn same_host(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
    let (a, b) = (norm(a), norm(b));
    !a.is_empty() && a == b
}

/// The error pages Squid itself may serve (its own template names), each replaced by a
/// plain-text page without Squid's branding or its "cache administrator". Kept in step
/// with Squid 5.7's templates by a test that lists the installed ones.
pub const SQUID_ERROR_PAGES: &[(&str, &str)] = &[
    (
        "ERR_ACCESS_DENIED",
        "the request was refused by the sandbox's policy.",
    ),
    ("ERR_ACL_TIME_QUOTA_EXCEEDED", "a time quota was exceeded."),
    (
        "ERR_AGENT_CONFIGURE",
        "the proxy does not serve browser configuration.",
    ),
    (
        "ERR_AGENT_WPAD",
        "the proxy does not serve proxy auto-configuration.",
    ),
    (
        "ERR_CACHE_ACCESS_DENIED",
        "the request was refused by the sandbox's policy.",
    ),
    (
        "ERR_CACHE_MGR_ACCESS_DENIED",
        "the proxy's manager interface is closed.",
    ),
    (
        "ERR_CANNOT_FORWARD",
        "the proxy could not forward the request to %H.",
    ),
    (
        "ERR_CONFLICT_HOST",
        "the request's Host header does not match its destination.",
    ),
    (
        "ERR_CONNECT_FAIL",
        "the proxy could not connect to %H (%E).",
    ),
    ("ERR_DIR_LISTING", "directory listings are not served."),
    ("ERR_DNS_FAIL", "the name %H does not resolve (%z)."),
    ("ERR_ESI", "an ESI processing error occurred."),
    (
        "ERR_FORWARDING_DENIED",
        "the proxy does not forward this request.",
    ),
    (
        "ERR_FTP_DISABLED",
        "FTP is not supported: only HTTP and HTTPS pass.",
    ),
    (
        "ERR_FTP_FAILURE",
        "FTP is not supported: only HTTP and HTTPS pass.",
    ),
    (
        "ERR_FTP_FORBIDDEN",
        "FTP is not supported: only HTTP and HTTPS pass.",
    ),
    (
        "ERR_FTP_NOT_FOUND",
        "FTP is not supported: only HTTP and HTTPS pass.",
    ),
    (
        "ERR_FTP_PUT_CREATED",
        "FTP is not supported: only HTTP and HTTPS pass.",
    ),
    (
        "ERR_FTP_PUT_ERROR",
        "FTP is not supported: only HTTP and HTTPS pass.",
    ),
    (
        "ERR_FTP_PUT_MODIFIED",
        "FTP is not supported: only HTTP and HTTPS pass.",
    ),
    (
        "ERR_FTP_UNAVAILABLE",
        "FTP is not supported: only HTTP and HTTPS pass.",
    ),
    ("ERR_GATEWAY_FAILURE", "the proxy could not reach %H."),
    ("ERR_ICAP_FAILURE", "a content adaptation error occurred."),
    ("ERR_INVALID_REQ", "the request is not valid HTTP."),
    (
        "ERR_INVALID_RESP",
        "%H sent a response that is not valid HTTP.",
    ),
    ("ERR_INVALID_URL", "the URL is not valid."),
    ("ERR_LIFETIME_EXP", "the connection to %H lasted too long."),
    ("ERR_NO_RELAY", "the proxy does not relay this protocol."),
    ("ERR_ONLY_IF_CACHED_MISS", "the proxy keeps no cache."),
    ("ERR_PRECONDITION_FAILED", "a request precondition failed."),
    (
        "ERR_PROTOCOL_UNKNOWN",
        "the connection carried something other than TLS or HTTP.",
    ),
    ("ERR_READ_ERROR", "reading from %H failed (%E)."),
    ("ERR_READ_TIMEOUT", "%H did not answer in time."),
    (
        "ERR_SECURE_CONNECT_FAIL",
        "the TLS connection to %H failed: its certificate is not trusted or the handshake failed (%D).",
    ),
    (
        "ERR_SHUTTING_DOWN",
        "the proxy is restarting; try again in a moment.",
    ),
    (
        "ERR_SOCKET_FAILURE",
        "the proxy could not open a connection (%E).",
    ),
    (
        "ERR_TOO_BIG",
        "the request or response is larger than the proxy allows.",
    ),
    (
        "ERR_UNSUP_HTTPVERSION",
        "this HTTP version is not supported.",
    ),
    (
        "ERR_UNSUP_REQ",
        "this request method or protocol is not supported: only HTTP and HTTPS pass.",
    ),
    ("ERR_URN_RESOLVE", "URNs are not resolved."),
    ("ERR_WRITE_ERROR", "writing to %H failed (%E)."),
    ("ERR_ZERO_SIZE_OBJECT", "%H sent an empty response."),
];

/// Every page of the proxy's error directory, by file name: one per [`DenyReason`], one
/// per ruled host of `plan`, and one for each of Squid's own errors.
pub fn render_error_pages(plan: &TlsPlan) -> std::collections::BTreeMap<String, String> {
    let mut pages: std::collections::BTreeMap<String, String> = SQUID_ERROR_PAGES
        .iter()
        .map(|(name, what)| {
            (
                (*name).to_owned(),
                format!(
                    "safe-ai: the sandbox's proxy could not complete this request ({name}).\n\
                     \n\
                     host:    %H\n\
                     what:    {what}\n"
                ),
            )
        })
        .collect();
    for reason in DenyReason::ALL {
        pages.insert(reason.page_name(), reason.page());
    }
    pages.extend(plan.decryption.pages());
    // Squid reads the details of TLS errors from here; none: its built-in wording.
    pages.insert("error-details.txt".to_owned(), String::new());
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(allows_any: bool, has_opaque: bool) -> TlsPlan {
        TlsPlan::new(
            PlanInputs {
                allows_any,
                has_opaque,
                blocks_any: true,
                decrypts_any: false,
            },
            Decryption::default(),
        )
    }

    #[test]
    fn splice_needs_the_sni_check_and_opaque_comes_first() {
        let lines = plan(true, true).ssl_bump_lines();
        let rules: Vec<&String> = lines.iter().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            rules,
            [
                "ssl_bump splice step1 opaque_tunnel",
                "ssl_bump peek step1",
                "ssl_bump splice step2 sni_matches_target",
                "ssl_bump bump step2 safeai_tls_sni_mismatch",
                "ssl_bump terminate all",
            ]
        );
        let without = plan(true, false).ssl_bump_lines();
        assert!(!without.iter().any(|l| l.contains("opaque_tunnel")));
    }

    #[test]
    fn every_denial_carries_its_reason_marker_last() {
        for line in plan(true, false)
            .http_access_lines()
            .into_iter()
            .filter(|l| !l.starts_with('#'))
        {
            let last = line.rsplit(' ').next().unwrap();
            assert!(
                line.starts_with("http_access allow")
                    || last.starts_with("safeai_tls_")
                    || last.starts_with("safeai_http_")
                    || last.starts_with("safeai_denied_"),
                "{line}"
            );
        }
    }

    #[test]
    fn connect_denials_mark_the_connection_plain_ones_the_transaction() {
        let lines = plan(true, false).http_access_lines();
        assert!(lines.contains(&"http_access deny CONNECT !https_port safeai_tls_port".into()));
        assert!(lines.contains(&"http_access deny !CONNECT !http_port safeai_http_port".into()));
        assert!(
            lines.contains(&"http_access deny CONNECT ip_literal safeai_tls_ip_address".into())
        );
        assert!(
            lines.contains(&"http_access deny !CONNECT ip_literal safeai_http_ip_address".into())
        );
        // A connection annotation outlives its request: never on a plain request.
        assert!(
            !lines
                .iter()
                .any(|l| l.contains("!CONNECT") && l.contains("safeai_tls_"))
        );
    }

    #[test]
    fn plain_requests_are_http_only_and_one_rule_denies_blocked_addresses() {
        let lines = plan(true, false).http_access_lines();
        let at = |line: &str| lines.iter().position(|l| l == line);
        let scheme = at("http_access deny !CONNECT !http_scheme safeai_http_scheme").unwrap();
        // After the port rules, so a decrypted request on 443 keeps its `port` page.
        assert!(at("http_access deny !CONNECT !http_port safeai_http_port").unwrap() < scheme);
        // One rule per kind of request: the exceptions are cut out of blocked_range itself.
        assert!(
            lines.contains(
                &"http_access deny CONNECT blocked_range safeai_tls_private_address".into()
            )
        );
        assert!(lines.contains(
            &"http_access deny !CONNECT blocked_range safeai_http_private_address".into()
        ));
        assert!(!lines.iter().any(|l| l.contains("private_exception")));
        let nothing_blocked = TlsPlan::new(
            PlanInputs {
                allows_any: true,
                has_opaque: false,
                blocks_any: false,
                decrypts_any: false,
            },
            Decryption::default(),
        );
        assert!(
            !nothing_blocked
                .http_access_lines()
                .iter()
                .any(|l| l.contains("blocked_range"))
        );
    }

    #[test]
    fn an_empty_allowlist_allows_nothing() {
        let lines = plan(false, false).http_access_lines();
        assert!(!lines.iter().any(|l| l.starts_with("http_access allow")));
        assert_eq!(
            lines.last().unwrap(),
            "http_access deny all safeai_http_not_allowlisted"
        );
    }

    #[test]
    fn sni_check_wants_the_connect_target_itself() {
        for (line, want) in [
            ("1 api.allowed.test api.allowed.test", "1 OK"),
            // As Squid 5.7 sends it: the ACL's (empty) arguments last.
            ("1 api.allowed.test api.allowed.test -", "1 OK"),
            ("1 evil.test api.allowed.test -", "1 ERR"),
            ("1 api.allowed.test api.allowed.test extra", "1 ERR"),
            ("7 API.Allowed.Test. api.allowed.test", "7 OK"),
            ("2 api.allowed.test api.allowed.test.", "2 OK"),
            ("3 evil.test api.allowed.test", "3 ERR"),
            // A sibling under the same allowlisted parent is another host.
            ("4 other.allowed.test api.allowed.test", "4 ERR"),
            ("5 - api.allowed.test", "5 ERR"),
            ("6 api.allowed.test -", "6 ERR"),
            ("8 api%2eallowed.test api.allowed.test", "8 OK"),
            ("9 api%zzallowed.test api.allowed.test", "9 ERR"),
            ("10 api.allowed.test%00 api.allowed.test", "10 ERR"),
            ("11 a b c", "11 ERR"),
            ("12", "12 ERR"),
            ("", "0 ERR"),
            ("13 . .", "13 ERR"),
        ] {
            assert_eq!(sni_check(line), want, "{line:?}");
        }
    }

    #[test]
    fn pages_name_host_reason_and_fix_without_squid_branding() {
        let pages = render_error_pages(&plan(true, false));
        assert_eq!(
            pages.len(),
            SQUID_ERROR_PAGES.len() + DenyReason::ALL.len() + 1
        );
        for (name, page) in pages.iter().filter(|(n, _)| n.starts_with("ERR_")) {
            for banned in ["Squid", "squid", "cache administrator", "%w", "%s", "%S"] {
                assert!(!page.contains(banned), "{name} contains {banned}");
            }
            assert!(page.contains("%H"), "{name} does not name the host");
        }
        for r in DenyReason::ALL {
            let page = &pages[&r.page_name()];
            assert!(page.contains(r.code()) && page.contains("fix:"), "{page}");
        }
        assert!(pages["ERR_SAFEAI_NOT_ALLOWLISTED"].contains("safeai allow %H"));
        for r in DenyReason::ALL {
            for line in r.page().lines() {
                // A host name is at most 253 characters; the rest fits a terminal.
                let width = line.replace("%H", "").chars().count();
                assert!(width <= 80, "{r}: {line:?} is {width} wide");
            }
        }
    }
}
