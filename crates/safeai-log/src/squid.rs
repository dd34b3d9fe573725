//! Squid's access log lines (`logformat safeai` in squid.conf) into events.
//!
//! The format is `key=value` pairs separated by single spaces. The values a client
//! chooses (method, host, path, SNI) are URL-encoded by Squid (`%#` in the logformat), so
//! none holds a space, a quote or a control byte, and no client can add a pair: a
//! repeated key is refused rather than trusted. Each is decoded once here, back to the
//! bytes the client sent (invalid UTF-8 becomes U+FFFD), and [`crate::Event::to_line`]
//! escapes it again for JSON.

use crate::{Decision, Event, Kind, Timestamp};

/// A line that is not one of `logformat safeai`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A word without `=`.
    #[error("`{0}` is not key=value")]
    NotKeyValue(String),
    /// A key seen twice.
    #[error("`{0}` appears twice")]
    Repeated(String),
    /// A key the format always has is missing.
    #[error("no `{0}=`")]
    Missing(&'static str),
    /// A value that does not read as its type.
    #[error("`{key}={value}` is not valid")]
    Invalid {
        /// The key.
        key: &'static str,
        /// The value as found.
        value: String,
    },
}

/// What a line of Squid's access log is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A decision.
    Event(Box<Event>),
    /// A request that named no host (a malformed request, the proxy's own health check):
    /// nothing was decided about a destination.
    NoHost,
}

/// Decodes `%XX` escapes once; anything else is kept as it is.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// `-` is Squid's "none".
fn value(v: &str) -> Option<&str> {
    (v != "-" && !v.is_empty()).then_some(v)
}

/// Parses one line of `logformat safeai`.
///
/// # Errors
///
/// [`ParseError`] for a line of another format, a repeated key, or a value that is not
/// of its type.
pub fn parse(line: &str) -> Result<Parsed, ParseError> {
    let line = line.trim_end_matches(['\n', '\r']);
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for word in line.split(' ').filter(|w| !w.is_empty()) {
        let (k, v) = word
            .split_once('=')
            .ok_or_else(|| ParseError::NotKeyValue(word.to_owned()))?;
        if pairs.iter().any(|(seen, _)| *seen == k) {
            return Err(ParseError::Repeated(k.to_owned()));
        }
        pairs.push((k, v));
    }
    let get = |k: &'static str| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    let need = |k: &'static str| get(k).ok_or(ParseError::Missing(k));
    let number = |k: &'static str| -> Result<Option<u64>, ParseError> {
        match get(k).and_then(value) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| ParseError::Invalid {
                key: k,
                value: v.to_owned(),
            }),
        }
    };
    let ts = need("ts")?;
    let time = parse_ts(ts).ok_or_else(|| ParseError::Invalid {
        key: "ts",
        value: ts.to_owned(),
    })?;
    let client = need("client")?;
    let method = value(need("method")?).map(percent_decode);
    let action = need("action")?;
    let Some(host) = value(need("host")?).map(percent_decode) else {
        return Ok(Parsed::NoHost);
    };
    let reason = get("reason").and_then(value).map(str::to_owned);
    let rule = get("rule").and_then(value).map(percent_decode);
    let kind = if method.as_deref() == Some("CONNECT") {
        Kind::Connect
    } else if get("scheme") == Some("https") {
        Kind::Https
    } else {
        Kind::Http
    };
    let decision = if reason.is_some() || rule.is_some() || action.starts_with("TCP_DENIED") {
        Decision::Denied
    } else {
        Decision::Allowed
    };
    let mut e = Event::new(time, kind, client, &host, decision);
    let small = |k: &'static str, n: Option<u64>| -> Result<Option<u16>, ParseError> {
        n.map(|n| {
            u16::try_from(n).map_err(|_| ParseError::Invalid {
                key: k,
                value: n.to_string(),
            })
        })
        .transpose()
    };
    e.port = small("port", number("port")?)?;
    e.method = method;
    if kind != Kind::Connect {
        e.path = get("path").and_then(value).map(percent_decode);
    }
    e.sni = get("sni").and_then(value).map(percent_decode);
    e.reason = reason;
    e.rule = rule;
    e.status = small("status", number("status")?)?.filter(|&s| s != 0);
    e.result = value(action).map(str::to_owned);
    e.tls = get("tls").and_then(value).map(str::to_owned);
    e.bytes = number("bytes")?;
    e.ms = number("ms")?;
    Ok(Parsed::Event(Box::new(e)))
}

/// `1796224838.771`: seconds and milliseconds.
fn parse_ts(ts: &str) -> Option<Timestamp> {
    let (s, ms) = ts.split_once('.').unwrap_or((ts, "0"));
    if ms.len() > 3 || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let s: u64 = s.parse().ok()?;
    let ms: u64 = format!("{ms:0<3}").parse().ok()?;
    Some(Timestamp(s.checked_mul(1000)? + ms))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Lines captured from the running proxy (Squid 5.7, bookworm's squid-openssl) for
    /// each kind of decision, with the event each becomes.
    pub(crate) const REAL: &[(&str, &str)] = &[
        // Allowed HTTPS: the spliced tunnel's start (at the SNI check), then its end.
        (
            "ts=1796225068.104 client=172.30.49.3 method=CONNECT scheme=- host=api.allowed.test port=443 path=- status=200 action=NONE_NONE bytes=0 ms=9 sni=api.allowed.test tls=splice reason=-",
            r#"{"v":1,"time":"2026-12-02T15:24:28.104Z","kind":"connect","client":"172.30.49.3","host":"api.allowed.test","port":443,"method":"CONNECT","sni":"api.allowed.test","decision":"allowed","status":200,"result":"NONE_NONE","tls":"splice","bytes":0,"ms":9}"#,
        ),
        (
            "ts=1796225068.161 client=172.30.49.3 method=CONNECT scheme=http host=api.allowed.test port=443 path=/ status=200 action=TCP_TUNNEL bytes=2188 ms=57 sni=api.allowed.test tls=splice reason=-",
            r#"{"v":1,"time":"2026-12-02T15:24:28.161Z","kind":"connect","client":"172.30.49.3","host":"api.allowed.test","port":443,"method":"CONNECT","sni":"api.allowed.test","decision":"allowed","status":200,"result":"TCP_TUNNEL","tls":"splice","bytes":2188,"ms":57}"#,
        ),
        // Allowed plain HTTP, with a query string (a `%22` the client sent stays `%22`).
        (
            "ts=1796225068.178 client=172.30.49.3 method=GET scheme=http host=api.allowed.test port=80 path=/x?y=1&z=%2522 status=200 action=TCP_MISS bytes=266 ms=3 sni=- tls=- reason=-",
            r#"{"v":1,"time":"2026-12-02T15:24:28.178Z","kind":"http","client":"172.30.49.3","host":"api.allowed.test","port":80,"method":"GET","path":"/x?y=1&z=%22","decision":"allowed","status":200,"result":"TCP_MISS","bytes":266,"ms":3}"#,
        ),
        // Denied by name: the CONNECT, then the page Squid decrypts it to deliver.
        (
            "ts=1796225068.216 client=172.30.49.3 method=CONNECT scheme=- host=evil.test port=443 path=- status=200 action=TCP_DENIED bytes=0 ms=19 sni=evil.test tls=bump reason=not-allowlisted",
            r#"{"v":1,"time":"2026-12-02T15:24:28.216Z","kind":"connect","client":"172.30.49.3","host":"evil.test","port":443,"method":"CONNECT","sni":"evil.test","decision":"denied","reason":"not-allowlisted","status":200,"result":"TCP_DENIED","tls":"bump","bytes":0,"ms":19}"#,
        ),
        (
            "ts=1796225068.217 client=172.30.49.3 method=GET scheme=https host=evil.test port=443 path=/b status=403 action=NONE_NONE bytes=610 ms=0 sni=evil.test tls=- reason=not-allowlisted",
            r#"{"v":1,"time":"2026-12-02T15:24:28.217Z","kind":"https","client":"172.30.49.3","host":"evil.test","port":443,"method":"GET","path":"/b","sni":"evil.test","decision":"denied","reason":"not-allowlisted","status":403,"result":"NONE_NONE","bytes":610,"ms":0}"#,
        ),
        (
            "ts=1796225068.232 client=172.30.49.3 method=GET scheme=http host=evil.test port=80 path=/p status=403 action=TCP_DENIED bytes=615 ms=0 sni=- tls=- reason=not-allowlisted",
            r#"{"v":1,"time":"2026-12-02T15:24:28.232Z","kind":"http","client":"172.30.49.3","host":"evil.test","port":80,"method":"GET","path":"/p","decision":"denied","reason":"not-allowlisted","status":403,"result":"TCP_DENIED","bytes":615,"ms":0}"#,
        ),
        // Denied by port, over CONNECT and plain HTTP.
        (
            "ts=1796225068.256 client=172.30.49.3 method=CONNECT scheme=- host=api.allowed.test port=8443 path=- status=200 action=TCP_DENIED bytes=0 ms=12 sni=api.allowed.test tls=bump reason=port",
            r#"{"v":1,"time":"2026-12-02T15:24:28.256Z","kind":"connect","client":"172.30.49.3","host":"api.allowed.test","port":8443,"method":"CONNECT","sni":"api.allowed.test","decision":"denied","reason":"port","status":200,"result":"TCP_DENIED","tls":"bump","bytes":0,"ms":12}"#,
        ),
        (
            "ts=1796225068.361 client=172.30.49.3 method=GET scheme=http host=api.allowed.test port=8080 path=/ status=403 action=TCP_DENIED bytes=656 ms=1 sni=- tls=- reason=port",
            r#"{"v":1,"time":"2026-12-02T15:24:28.361Z","kind":"http","client":"172.30.49.3","host":"api.allowed.test","port":8080,"method":"GET","path":"/","decision":"denied","reason":"port","status":403,"result":"TCP_DENIED","bytes":656,"ms":1}"#,
        ),
        // Denied by IP literal, plain and CONNECT (no SNI).
        (
            "ts=1796225068.271 client=172.30.49.3 method=GET scheme=http host=1.2.3.4 port=80 path=/ status=403 action=TCP_DENIED bytes=644 ms=0 sni=- tls=- reason=ip-address",
            r#"{"v":1,"time":"2026-12-02T15:24:28.271Z","kind":"http","client":"172.30.49.3","host":"1.2.3.4","port":80,"method":"GET","path":"/","decision":"denied","reason":"ip-address","status":403,"result":"TCP_DENIED","bytes":644,"ms":0}"#,
        ),
        (
            "ts=1796225068.290 client=172.30.49.3 method=CONNECT scheme=- host=169.254.169.254 port=443 path=- status=200 action=TCP_DENIED bytes=0 ms=6 sni=- tls=bump reason=ip-address",
            r#"{"v":1,"time":"2026-12-02T15:24:28.290Z","kind":"connect","client":"172.30.49.3","host":"169.254.169.254","port":443,"method":"CONNECT","decision":"denied","reason":"ip-address","status":200,"result":"TCP_DENIED","tls":"bump","bytes":0,"ms":6}"#,
        ),
        // Denied: an allowlisted name resolving to the metadata address.
        (
            "ts=1796225068.320 client=172.30.49.3 method=CONNECT scheme=- host=metadata.allowed.test port=443 path=- status=200 action=TCP_DENIED bytes=0 ms=10 sni=metadata.allowed.test tls=bump reason=private-address",
            r#"{"v":1,"time":"2026-12-02T15:24:28.320Z","kind":"connect","client":"172.30.49.3","host":"metadata.allowed.test","port":443,"method":"CONNECT","sni":"metadata.allowed.test","decision":"denied","reason":"private-address","status":200,"result":"TCP_DENIED","tls":"bump","bytes":0,"ms":10}"#,
        ),
        // Denied: the SNI names another host than the CONNECT.
        (
            "ts=1796225068.348 client=172.30.49.3 method=CONNECT scheme=- host=api.allowed.test port=443 path=- status=200 action=NONE_NONE bytes=0 ms=13 sni=evil.test tls=bump reason=sni-mismatch",
            r#"{"v":1,"time":"2026-12-02T15:24:28.348Z","kind":"connect","client":"172.30.49.3","host":"api.allowed.test","port":443,"method":"CONNECT","sni":"evil.test","decision":"denied","reason":"sni-mismatch","status":200,"result":"NONE_NONE","tls":"bump","bytes":0,"ms":13}"#,
        ),
        // Hostile: an SNI with spaces, a forged pair, a quote and ESC; a host with a quote;
        // a path with a quote and an escape the client sent.
        (
            "ts=1796225068.457 client=172.30.49.3 method=CONNECT scheme=- host=api.allowed.test port=443 path=- status=200 action=NONE_NONE bytes=0 ms=9 sni=a%20b%20reason=forged%22%1B%5B31m tls=bump reason=sni-mismatch",
            r#"{"v":1,"time":"2026-12-02T15:24:28.457Z","kind":"connect","client":"172.30.49.3","host":"api.allowed.test","port":443,"method":"CONNECT","sni":"a b reason=forged\"\u001b[31m","decision":"denied","reason":"sni-mismatch","status":200,"result":"NONE_NONE","tls":"bump","bytes":0,"ms":9}"#,
        ),
        (
            "ts=1796225068.493 client=172.30.49.3 method=CONNECT scheme=- host=we%22ird.test port=443 path=- status=200 action=TCP_DENIED_ABORTED bytes=0 ms=0 sni=- tls=bump reason=not-allowlisted",
            r#"{"v":1,"time":"2026-12-02T15:24:28.493Z","kind":"connect","client":"172.30.49.3","host":"we\"ird.test","port":443,"method":"CONNECT","decision":"denied","reason":"not-allowlisted","status":200,"result":"TCP_DENIED_ABORTED","tls":"bump","bytes":0,"ms":0}"#,
        ),
        (
            "ts=1796225068.494 client=172.30.49.3 method=GET scheme=http host=evil.test port=80 path=/%2522q%250A%251B%2520reason=x status=403 action=TCP_DENIED bytes=615 ms=0 sni=- tls=- reason=not-allowlisted",
            r#"{"v":1,"time":"2026-12-02T15:24:28.494Z","kind":"http","client":"172.30.49.3","host":"evil.test","port":80,"method":"GET","path":"/%22q%0A%1B%20reason=x","decision":"denied","reason":"not-allowlisted","status":403,"result":"TCP_DENIED","bytes":615,"ms":0}"#,
        ),
    ];

    #[test]
    fn real_lines_become_their_events() {
        for (line, json) in REAL {
            match parse(line) {
                Ok(Parsed::Event(e)) => assert_eq!(e.to_line(), *json, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn requests_without_a_host_decide_nothing() {
        // A malformed request, and the proxy's own health check (`GET /`, no host).
        for line in [
            "ts=1796225068.494 client=172.30.49.3 method=GET scheme=- host=- port=- path=- status=400 action=NONE_NONE bytes=308 ms=0 sni=- tls=- reason=-",
            "ts=1796224829.597 client=172.30.49.2 method=GET host=- port=- status=400 action=NONE_NONE bytes=299 ms=0 sni=- tls=- reason=-",
        ] {
            assert_eq!(parse(line), Ok(Parsed::NoHost), "{line}");
        }
    }

    #[test]
    fn a_rule_is_kept_and_is_a_denial() {
        let line = "ts=1.5 client=c method=POST scheme=https host=api.github.com port=443 path=/repos status=403 action=TCP_DENIED bytes=1 ms=0 sni=api.github.com tls=bump reason=- rule=allowlist.yaml:7:9";
        let Ok(Parsed::Event(e)) = parse(line) else {
            panic!()
        };
        assert_eq!(e.rule.as_deref(), Some("allowlist.yaml:7:9"));
        assert_eq!((e.kind, e.decision), (Kind::Https, Decision::Denied));
        assert!(e.is_decision());
        assert_eq!(e.time, Timestamp(1500));
    }

    #[test]
    fn other_lines_and_forged_pairs_are_refused() {
        for (line, err) in [
            (
                "2026/12/02 15:20:38| ERROR: Unknown TLS option",
                "is not key=value",
            ),
            (
                "ts=1 client=c method=GET host=a.test host=b.test status=200 action=TCP_MISS",
                "appears twice",
            ),
            (
                "ts=1 client=c method=GET host=a.test status=200",
                "no `action=`",
            ),
            (
                "ts=x client=c method=GET host=a.test status=200 action=TCP_MISS",
                "`ts=x`",
            ),
            (
                "ts=1 client=c method=GET host=a.test port=70000 status=200 action=TCP_MISS",
                "`port=70000`",
            ),
        ] {
            let got = parse(line).unwrap_err().to_string();
            assert!(got.contains(err), "{line}: {got}");
        }
    }

    #[test]
    fn decoding_is_once_and_tolerates_stray_percents() {
        assert_eq!(percent_decode("a%2522b"), "a%22b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }
}
