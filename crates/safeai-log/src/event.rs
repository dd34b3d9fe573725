//! The event: one decision of the proxy, the schema the README documents.

use std::fmt::Write as _;

use safeai_policy::{Allowlist, Escaped};
use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// The schema's version, the `v` of every event. A change that removes or renames a field,
/// or changes a field's meaning, raises it; new optional fields do not.
pub const SCHEMA_VERSION: u32 = 1;

/// What was decided on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A plain HTTP request (`GET http://host/path`).
    Http,
    /// A CONNECT (HTTPS and other tunnels), with the SNI of its ClientHello when peeked.
    Connect,
    /// A request decrypted inside a CONNECT: the page of a denied CONNECT (which repeats
    /// the CONNECT's decision), or a request of a decrypted host checked by its rules.
    Https,
    /// A DNS query to the proxy's dnsmasq.
    Dns,
}

impl Kind {
    /// The word in the schema.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Connect => "connect",
            Kind::Https => "https",
            Kind::Dns => "dns",
        }
    }
}

/// What the proxy did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Passed (forwarded, tunnelled, resolved).
    Allowed,
    /// Refused: a 403 page, a cut connection, or the unspecified address for a name.
    Denied,
}

/// One decision. Optional fields are absent from the JSON when unknown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// [`SCHEMA_VERSION`].
    pub v: u32,
    /// When it was decided (Squid's own time; for DNS, when the tap read the line).
    pub time: Timestamp,
    /// What was decided on.
    pub kind: Kind,
    /// The client's address.
    pub client: String,
    /// The host asked for, as the client wrote it (a name or an address), lower-cased
    /// for DNS.
    pub host: String,
    /// The port asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The request's method (HTTP, CONNECT, decrypted requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The request's path, where the proxy saw one (plain HTTP, decrypted requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The server name of the TLS ClientHello, where the proxy peeked at one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// The DNS query type (`A`, `AAAA`, `MX`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Allowed or denied.
    pub decision: Decision,
    /// Why it was denied, in the deny page's words (`not-allowlisted`, `port`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The method/path rule that denied a decrypted request, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The allowlist entry that covers the host (the one that allowed it, or, for a
    /// denial by address, port or SNI, the one that would have).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// Where that entry was listed: `allowlist.yaml:12:5`, `SAFE_AI_DEFAULT_DOMAINS[0]`,
    /// or a preset's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The HTTP status sent to the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Squid's result code (`TCP_TUNNEL`, `TCP_DENIED`, …); for DNS, what dnsmasq did:
    /// `sinkholed`, `forwarded`, `cached`, `refused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// What Squid did with the TLS of a CONNECT: `splice`, `bump`, `peek`, `terminate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// Bytes sent to the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// How long it took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
}

impl Event {
    /// An event with only the fields every event has.
    pub fn new(time: Timestamp, kind: Kind, client: &str, host: &str, decision: Decision) -> Event {
        Event {
            v: SCHEMA_VERSION,
            time,
            kind,
            client: client.to_owned(),
            host: host.to_owned(),
            port: None,
            method: None,
            path: None,
            sni: None,
            query: None,
            decision,
            reason: None,
            rule: None,
            entry: None,
            origin: None,
            status: None,
            result: None,
            tls: None,
            bytes: None,
            ms: None,
        }
    }

    /// Whether it is a decision of its own, rather than a second line about one: the page
    /// Squid decrypts a denied CONNECT to deliver (an `https` denial without a rule
    /// repeats its CONNECT's), or the start of a spliced tunnel (`NONE_NONE`: its end,
    /// with the bytes, follows). The summary, `learn` and the text of `safeai logs`
    /// count these only; the JSON has every line.
    pub fn is_decision(&self) -> bool {
        match self.kind {
            Kind::Https => self.rule.is_some() || self.decision == Decision::Allowed,
            Kind::Connect => {
                self.decision == Decision::Denied || self.result.as_deref() != Some("NONE_NONE")
            }
            Kind::Http | Kind::Dns => true,
        }
    }

    /// Whether it was denied.
    pub fn is_denied(&self) -> bool {
        self.decision == Decision::Denied
    }

    /// The event as one line of JSON, without the newline.
    ///
    /// Whatever a client put in a host, a path or an SNI stays inside its string: JSON
    /// escapes quotes, backslashes and control characters, and this also escapes DEL,
    /// the C1 controls (U+0080 to U+009F, which some terminals read as escape sequences),
    /// the line and paragraph separators and the bidi controls, so a line shown raw in a
    /// terminal can neither move the cursor, recolour it, nor reorder what it shows.
    pub fn to_line(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_else(|e| {
            // Every field is a string, a number or an enum: this cannot happen; still,
            // say so in a line of the same schema rather than panic in the proxy.
            format!("{{\"v\":{SCHEMA_VERSION},\"error\":\"cannot encode an event: {e}\"}}")
        });
        let mut out = String::with_capacity(json.len());
        for c in json.chars() {
            if is_unsafe_in_terminal(c) {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            } else {
                out.push(c);
            }
        }
        out
    }

    /// The event as one line for a terminal: time, decision, kind, what was asked, and
    /// why (the reason, or the entry that allowed it and where it was listed). Text from
    /// the client is escaped ([`Escaped`]).
    pub fn to_text(&self) -> String {
        let e = |s: &str| Escaped(s).to_string();
        let target = match self.port {
            Some(p) => format!("{}:{p}", e(&self.host)),
            None => e(&self.host),
        };
        let what = match self.kind {
            Kind::Dns => format!("{} {target}", self.query.as_deref().map_or("?".into(), e)),
            Kind::Connect => match self.sni.as_deref() {
                Some(sni) if !sni.eq_ignore_ascii_case(&self.host) => {
                    format!("{target} (sni {})", e(sni))
                }
                _ => target,
            },
            Kind::Http | Kind::Https => format!(
                "{} {target}{}",
                self.method.as_deref().map_or("?".into(), e),
                self.path.as_deref().map(e).unwrap_or_default()
            ),
        };
        let why = match (self.decision, &self.entry, &self.origin) {
            (Decision::Denied, _, _) => {
                let mut why = self.reason.clone().unwrap_or_else(|| "denied".into());
                if let Some(rule) = &self.rule {
                    let _ = write!(why, " (rule {})", e(rule));
                }
                why
            }
            (Decision::Allowed, Some(entry), Some(origin)) => {
                format!("{} ({})", e(entry), e(origin))
            }
            (Decision::Allowed, _, _) => String::new(),
        };
        let mut line = format!(
            "{}  {:<7}  {:<7}  {what}  {why}",
            self.time.short(),
            match self.decision {
                Decision::Allowed => "allowed",
                Decision::Denied => "DENIED",
            },
            self.kind.as_str(),
        );
        if let Some(b) = self
            .bytes
            .filter(|&b| b > 0 && self.decision == Decision::Allowed)
        {
            let _ = write!(line, "  {b} B");
        }
        line.truncate(line.trim_end().len());
        line
    }

    /// Reads a line written by [`Event::to_line`].
    ///
    /// # Errors
    ///
    /// The JSON error, for a line that is not an event of this schema.
    pub fn from_line(line: &str) -> Result<Event, serde_json::Error> {
        serde_json::from_str(line)
    }
}

/// Characters that JSON leaves raw but a terminal may act on. Only ever found inside a
/// JSON string (the rest of the encoding is ASCII), where `\uXXXX` means the same.
fn is_unsafe_in_terminal(c: char) -> bool {
    matches!(c,
        '\u{7f}'..='\u{9f}'
        | '\u{2028}' | '\u{2029}'
        | '\u{200e}' | '\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
        | '\u{061c}'
    )
}

/// Fills the event's `entry` and `origin` from the allowlist the proxy runs with: the
/// entry that covers its host (the SNI's for a CONNECT whose SNI names another host,
/// which is what Squid checked). An address never matches an entry.
pub fn attribute(event: &mut Event, allowlist: &Allowlist) {
    if let Some(e) = allowlist.entry_for(&event.host) {
        event.entry = Some(e.domain.as_str().to_owned());
        event.origin = Some(e.origin.to_string());
    }
}

/// The registrable domain of `host` (`files.pythonhosted.org` → `pythonhosted.org`,
/// `a.b.github.io` → `b.github.io`), by the public suffix list; a name under an unknown
/// suffix counts its last label as the suffix (`x.evil.test` → `evil.test`); an address
/// or a single label is its own group.
pub fn registrable_domain(host: &str) -> String {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if host.parse::<std::net::IpAddr>().is_ok()
        || host.starts_with('[')
        || host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return host;
    }
    match psl::domain_str(&host) {
        Some(d) => d.to_owned(),
        None => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hostile() -> Event {
        let mut e = Event::new(
            Timestamp(1_796_224_838_771),
            Kind::Connect,
            "172.30.49.3",
            "a\"b\\c\nd\re\u{1b}[31mred",
            Decision::Denied,
        );
        e.sni = Some("x\u{9b}31m \u{202e}gpj.exe\u{2028}\u{7f}".into());
        e.path = Some("/\",\"decision\":\"allowed".into());
        e.reason = Some("not-allowlisted".into());
        e
    }

    #[test]
    fn hostile_text_stays_inside_its_field_and_never_reaches_a_terminal_raw() {
        let e = hostile();
        let line = e.to_line();
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        assert!(
            line.chars()
                .all(|c| !c.is_control() && !is_unsafe_in_terminal(c)),
            "{line}"
        );
        assert!(
            line.contains(r#""host":"a\"b\\c\nd\re\u001b[31mred""#),
            "{line}"
        );
        assert!(
            line.contains(r#""sni":"x\u009b31m \u202egpj.exe\u2028\u007f""#),
            "{line}"
        );
        // The forged field is text inside `path`; the decision is still the real one.
        let back = Event::from_line(&line).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.decision, Decision::Denied);
    }

    #[test]
    fn absent_fields_are_left_out_and_read_back_as_absent() {
        let e = Event::new(
            Timestamp(0),
            Kind::Dns,
            "10.0.0.1",
            "evil.test",
            Decision::Denied,
        );
        assert_eq!(
            e.to_line(),
            r#"{"v":1,"time":"1970-01-01T00:00:00.000Z","kind":"dns","client":"10.0.0.1","host":"evil.test","decision":"denied"}"#
        );
        assert_eq!(Event::from_line(&e.to_line()).unwrap(), e);
        // A later version's extra fields do not stop this one from reading the line.
        let newer = r#"{"v":1,"time":"1970-01-01T00:00:00.000Z","kind":"dns","client":"10.0.0.1","host":"evil.test","decision":"denied","new":1}"#;
        assert_eq!(Event::from_line(newer).unwrap(), e);
    }

    #[test]
    fn text_lines_read_well_and_stay_escaped() {
        let lines: Vec<String> = crate::squid::tests::REAL
            .iter()
            .map(|(line, _)| match crate::squid::parse(line) {
                Ok(crate::squid::Parsed::Event(mut e)) => {
                    if e.host == "api.allowed.test" {
                        e.entry = Some("api.allowed.test".into());
                        e.origin = Some("allowlist.yaml:3:5".into());
                    }
                    e.to_text()
                }
                other => panic!("{other:?}"),
            })
            .collect();
        insta::assert_snapshot!(lines.join("\n"));
        assert_eq!(hostile().to_text().lines().count(), 1);
        assert!(!hostile().to_text().contains('\u{1b}'));
    }

    #[test]
    fn registrable_domains() {
        for (host, domain) in [
            ("files.pythonhosted.org", "pythonhosted.org"),
            ("registry.npmjs.org", "npmjs.org"),
            ("a.b.github.io", "b.github.io"),
            ("www.example.co.uk", "example.co.uk"),
            ("x.evil.test", "evil.test"),
            ("Evil.TEST.", "evil.test"),
            ("169.254.169.254", "169.254.169.254"),
            ("::1", "::1"),
            ("localhost", "localhost"),
        ] {
            assert_eq!(registrable_domain(host), domain, "{host}");
        }
    }

    #[test]
    fn attribution_names_the_entry_and_its_origin() {
        let checked = safeai_policy::check(&[safeai_policy::Source::Yaml {
            name: "allowlist.yaml".into(),
            text: "domains:\n  - allowed.test\n  - api.github.com\n".into(),
        }])
        .unwrap();
        let mut e = Event::new(
            Timestamp(0),
            Kind::Connect,
            "c",
            "x.Allowed.test",
            Decision::Allowed,
        );
        attribute(&mut e, &checked.allowlist);
        assert_eq!(e.entry.as_deref(), Some("allowed.test"));
        assert_eq!(e.origin.as_deref(), Some("allowlist.yaml:2:5"));
        let mut e = Event::new(
            Timestamp(0),
            Kind::Connect,
            "c",
            "github.com",
            Decision::Denied,
        );
        attribute(&mut e, &checked.allowlist);
        assert_eq!((e.entry, e.origin), (None, None));
    }
}
