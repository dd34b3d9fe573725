//! `safeai logs summary`: the denials, grouped by registrable domain and by host, with
//! counts, first and last seen, and the reasons.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use safeai_policy::Escaped;
use serde::Serialize;

use crate::{Event, Timestamp, registrable_domain};

/// Denials of one host, or of every host of one domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The host, or the registrable domain.
    pub name: String,
    /// How many denials.
    pub count: u64,
    /// The first one.
    pub first: Timestamp,
    /// The last one.
    pub last: Timestamp,
    /// Their reasons (`not-allowlisted`, …; `denied` when Squid named none).
    pub reasons: BTreeSet<String>,
}

impl Row {
    fn new(name: &str, e: &Event) -> Row {
        Row {
            name: name.to_owned(),
            count: 0,
            first: e.time,
            last: e.time,
            reasons: BTreeSet::new(),
        }
    }

    fn add(&mut self, e: &Event) {
        self.count += 1;
        self.first = self.first.min(e.time);
        self.last = self.last.max(e.time);
        self.reasons.insert(reason(e).to_owned());
    }
}

/// One registrable domain: its total and its hosts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The domain's total.
    #[serde(flatten)]
    pub total: Row,
    /// Each host under it, most denied first.
    pub hosts: Vec<Row>,
}

/// Every denial, grouped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// How many denials.
    pub denials: u64,
    /// The groups, most denied first (then by name).
    pub domains: Vec<Group>,
}

/// The event's reason, or `denied` when it has none (a refusal Squid did not explain).
pub fn reason(e: &Event) -> &str {
    match (&e.rule, &e.reason) {
        (Some(_), _) => "rule",
        (None, Some(r)) => r,
        (None, None) => "denied",
    }
}

/// Summarizes the denied decisions among `events` ([`Event::is_decision`]: the page of a
/// denied CONNECT is not counted twice).
pub fn summarize<'a>(events: impl IntoIterator<Item = &'a Event>) -> Summary {
    let mut groups: BTreeMap<String, (Row, BTreeMap<String, Row>)> = BTreeMap::new();
    let mut denials = 0;
    for e in events {
        if !e.is_denied() || !e.is_decision() {
            continue;
        }
        denials += 1;
        let domain = registrable_domain(&e.host);
        let (total, hosts) = groups
            .entry(domain.clone())
            .or_insert_with(|| (Row::new(&domain, e), BTreeMap::new()));
        total.add(e);
        let host = e.host.to_ascii_lowercase();
        hosts
            .entry(host.clone())
            .or_insert_with(|| Row::new(&host, e))
            .add(e);
    }
    let by_count = |a: &Row, b: &Row| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name));
    let mut domains: Vec<Group> = groups
        .into_values()
        .map(|(total, hosts)| {
            let mut hosts: Vec<Row> = hosts.into_values().collect();
            hosts.sort_by(by_count);
            Group { total, hosts }
        })
        .collect();
    domains.sort_by(|a, b| by_count(&a.total, &b.total));
    Summary { denials, domains }
}

impl Summary {
    /// The summary as a table for a terminal: one line per domain, and one per host
    /// under it when it has more than one (or the host differs from the domain).
    pub fn to_text(&self) -> String {
        if self.denials == 0 {
            return "no denials\n".to_owned();
        }
        let shown = |r: &Row| Escaped(&r.name).to_string();
        let width = self
            .domains
            .iter()
            .flat_map(|g| {
                std::iter::once(shown(&g.total).chars().count())
                    .chain(g.hosts.iter().map(|h| shown(h).chars().count() + 2))
            })
            .max()
            .unwrap_or(0)
            .max("DOMAIN / HOST".len());
        let mut out = String::new();
        let line = |out: &mut String, name: &str, r: &Row| {
            let reasons: Vec<&str> = r.reasons.iter().map(String::as_str).collect();
            let _ = writeln!(
                out,
                "{name:<width$}  {:>7}  {}  {}  {}",
                r.count,
                r.first.short(),
                r.last.short(),
                reasons.join(", ")
            );
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:>7}  {:<19}  {:<19}  REASON",
            "DOMAIN / HOST", "DENIALS", "FIRST", "LAST"
        );
        for g in &self.domains {
            line(&mut out, &shown(&g.total), &g.total);
            if g.hosts.len() > 1 || g.hosts.iter().any(|h| h.name != g.total.name) {
                for h in &g.hosts {
                    line(&mut out, &format!("  {}", shown(h)), h);
                }
            }
        }
        let hosts: usize = self.domains.iter().map(|g| g.hosts.len()).sum();
        let _ = writeln!(
            out,
            "{} denial{}, {hosts} host{}, {} domain{}",
            self.denials,
            plural(self.denials),
            plural(hosts as u64),
            self.domains.len(),
            plural(self.domains.len() as u64)
        );
        out
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decision, Kind};

    fn denied(t: u64, kind: Kind, host: &str, reason: &str) -> Event {
        let mut e = Event::new(
            Timestamp(1_796_224_838_000 + t * 1000),
            kind,
            "c",
            host,
            Decision::Denied,
        );
        e.reason = Some(reason.into());
        e
    }

    #[test]
    fn groups_by_domain_and_host_and_counts_a_connect_once() {
        let events = [
            denied(0, Kind::Connect, "registry.npmjs.org", "not-allowlisted"),
            // The page of that CONNECT: not a second denial.
            denied(0, Kind::Https, "registry.npmjs.org", "not-allowlisted"),
            denied(5, Kind::Connect, "registry.npmjs.org", "not-allowlisted"),
            denied(7, Kind::Dns, "www.npmjs.org", "not-allowlisted"),
            denied(9, Kind::Http, "169.254.169.254", "ip-address"),
            denied(9, Kind::Connect, "x\u{1b}[31m.evil.test", "not-allowlisted"),
            Event::new(
                Timestamp(0),
                Kind::Connect,
                "c",
                "api.allowed.test",
                Decision::Allowed,
            ),
        ];
        let s = summarize(&events);
        assert_eq!(s.denials, 5);
        insta::assert_snapshot!(s.to_text(), @r"
        DOMAIN / HOST            DENIALS  FIRST                LAST                 REASON
        npmjs.org                      3  2026-12-02 15:20:38  2026-12-02 15:20:45  not-allowlisted
          registry.npmjs.org           2  2026-12-02 15:20:38  2026-12-02 15:20:43  not-allowlisted
          www.npmjs.org                1  2026-12-02 15:20:45  2026-12-02 15:20:45  not-allowlisted
        169.254.169.254                1  2026-12-02 15:20:47  2026-12-02 15:20:47  ip-address
        evil.test                      1  2026-12-02 15:20:47  2026-12-02 15:20:47  not-allowlisted
          x\u{1b}[31m.evil.test        1  2026-12-02 15:20:47  2026-12-02 15:20:47  not-allowlisted
        5 denials, 4 hosts, 3 domains
        ");
        assert_eq!(summarize(&[]).to_text(), "no denials\n");
    }
}
