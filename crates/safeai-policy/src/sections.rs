//! The `rules:` and `credentials:` sections of an allowlist file, read with the position
//! of every key and value.
//!
//! serde checks the file's shape first (unknown top-level keys are errors); these
//! sections are small, so they are read again from the parser's events into a tree that
//! keeps each node's position, and every problem points at its own key or value.

use std::sync::Arc;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::Origin;
use crate::diagnostic::{Diagnostic, Error};
use crate::domain::Domain;
use crate::rules::{Credential, EnvName, HeaderName, HostRules, Rule, RuleError, ValueTemplate};

/// What the two sections of one file hold, validated entry by entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sections {
    pub rules: Vec<HostRules>,
    pub credentials: Vec<Credential>,
}

/// A YAML node with its position.
struct Node {
    mark: Marker,
    value: Value,
}

enum Value {
    /// A scalar: its text, and whether it is a plain `null`/`~`/empty one.
    Scalar(String, bool),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Alias,
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Scalar(_, true) => "null",
            Value::Scalar(..) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a map",
            Value::Alias => "an alias",
        }
    }
}

/// Builds the trees of the top-level `rules` and `credentials` values.
#[derive(Default)]
struct Collect {
    depth: usize,
    /// At depth 1: the next node is a key.
    expect_key: bool,
    /// The depth-1 key whose value comes next, if it is one of ours.
    capture: Option<&'static str>,
    /// Nodes being built: (key-or-not marker for maps, node).
    stack: Vec<Node>,
    /// A map's key waiting for its value, per open map on the stack.
    pending: Vec<Option<Node>>,
    done: Vec<(&'static str, Node)>,
    current: Option<&'static str>,
}

impl Collect {
    fn push_done(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => {
                if let Some(key) = self.current.take() {
                    self.done.push((key, node));
                }
            }
            Some(parent) => match &mut parent.value {
                Value::Seq(items) => items.push(node),
                Value::Map(pairs) => {
                    let slot = self.pending.last_mut().expect("a map has a slot");
                    match slot.take() {
                        None => *slot = Some(node),
                        Some(key) => pairs.push((key, node)),
                    }
                }
                _ => {}
            },
        }
    }
}

impl MarkedEventReceiver for Collect {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let capturing = self.current.is_some();
        match ev {
            Event::Scalar(..) | Event::Alias(_) => {
                let value = match ev {
                    Event::Scalar(text, style, ..) => {
                        let null = style == TScalarStyle::Plain
                            && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL");
                        Value::Scalar(text, null)
                    }
                    _ => Value::Alias,
                };
                if capturing {
                    self.push_done(Node { mark, value });
                } else if self.depth == 1 {
                    if self.expect_key {
                        self.capture = match &value {
                            Value::Scalar(k, _) if k == "rules" => Some("rules"),
                            Value::Scalar(k, _) if k == "credentials" => Some("credentials"),
                            _ => None,
                        };
                    } else if let Some(key) = self.capture.take() {
                        // A scalar value: kept as it is, for the shape error.
                        self.done.push((key, Node { mark, value }));
                    }
                    self.expect_key = !self.expect_key;
                }
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                if !capturing && self.depth == 1 && !self.expect_key {
                    self.current = self.capture.take();
                    self.expect_key = true;
                } else if !capturing && self.depth == 1 {
                    self.expect_key = !self.expect_key;
                }
                if self.current.is_some() {
                    self.stack.push(Node {
                        mark,
                        value: if is_map {
                            Value::Map(Vec::new())
                        } else {
                            Value::Seq(Vec::new())
                        },
                    });
                    if is_map {
                        self.pending.push(None);
                    }
                }
                self.depth += 1;
                if self.depth == 1 {
                    self.expect_key = true;
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                self.depth = self.depth.saturating_sub(1);
                if self.current.is_some()
                    && let Some(node) = self.stack.pop()
                {
                    if matches!(node.value, Value::Map(_)) {
                        self.pending.pop();
                    }
                    self.push_done(node);
                }
            }
            _ => {}
        }
    }
}

/// Reads the sections of one file; every problem goes to `diagnostics`, at its place.
pub(crate) fn read(name: &Arc<str>, text: &str, diagnostics: &mut Vec<Diagnostic>) -> Sections {
    let mut collect = Collect::default();
    // serde accepted the document already; a parser error here leaves partial trees.
    let _ = Parser::new_from_str(text).load(&mut collect, false);
    let mut out = Sections::default();
    let at = |m: Marker| Origin::file_at(name.clone(), m.line(), m.col() + 1);
    let mut error = |m: Marker, e: Error| diagnostics.push(Diagnostic::error(at(m), e));
    for (section, node) in collect.done {
        let items = match node.value {
            Value::Seq(items) => items,
            Value::Scalar(_, true) => continue,
            other => {
                error(
                    node.mark,
                    RuleError::NotAList {
                        key: section,
                        found: other.kind(),
                    }
                    .into(),
                );
                continue;
            }
        };
        for item in items {
            let fields = match fields(section, item, &mut error) {
                Some(f) => f,
                None => continue,
            };
            match section {
                "rules" => {
                    if let Some(r) = host_rules(fields, &at, &mut error) {
                        out.rules.push(r);
                    }
                }
                _ => {
                    if let Some(c) = credential(fields, &at, &mut error) {
                        out.credentials.push(c);
                    }
                }
            }
        }
    }
    out
}

/// An entry's keys and values, each key once; problems reported.
struct Fields {
    section: &'static str,
    mark: Marker,
    pairs: Vec<(String, Node)>,
}

impl Fields {
    fn take(&mut self, key: &str) -> Option<Node> {
        let i = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.remove(i).1)
    }
}

const RULE_KEYS: &str = "`domain` and `allow`";
const CREDENTIAL_KEYS: &str = "`domain`, `header`, `value` and `sandbox_env`";

fn fields(
    section: &'static str,
    item: Node,
    error: &mut impl FnMut(Marker, Error),
) -> Option<Fields> {
    let Value::Map(pairs) = item.value else {
        error(
            item.mark,
            RuleError::NotAMap {
                section,
                found: item.value.kind(),
            }
            .into(),
        );
        return None;
    };
    let (known, keys): (&[&str], _) = if section == "rules" {
        (&["domain", "allow"], RULE_KEYS)
    } else {
        (
            &["domain", "header", "value", "sandbox_env"],
            CREDENTIAL_KEYS,
        )
    };
    // A block map's first key comes before the map's own start mark.
    // (a flow map's at its `{`, before its first key).
    let mark = match pairs.first() {
        Some((k, _)) if k.mark.index() < item.mark.index() => k.mark,
        _ => item.mark,
    };
    let mut out = Fields {
        section,
        mark,
        pairs: Vec::new(),
    };
    let mut ok = true;
    for (key, value) in pairs {
        let text = match &key.value {
            Value::Scalar(t, _) => t.clone(),
            other => other.kind().to_owned(),
        };
        if !known.contains(&text.as_str()) {
            error(
                key.mark,
                RuleError::UnknownKey {
                    section,
                    key: text,
                    keys,
                }
                .into(),
            );
            ok = false;
        } else if out.pairs.iter().any(|(k, _)| *k == text) {
            error(
                key.mark,
                RuleError::RepeatedKey { section, key: text }.into(),
            );
            ok = false;
        } else {
            out.pairs.push((text, value));
        }
    }
    ok.then_some(out)
}

/// A string value, or the problem reported.
fn string(
    key: &'static str,
    node: Node,
    error: &mut impl FnMut(Marker, Error),
) -> Option<(String, Marker)> {
    match node.value {
        Value::Scalar(s, false) => Some((s, node.mark)),
        Value::Alias => {
            error(node.mark, RuleError::Alias.into());
            None
        }
        other => {
            error(
                node.mark,
                RuleError::NotAString {
                    key,
                    found: other.kind(),
                }
                .into(),
            );
            None
        }
    }
}

fn required(
    f: &mut Fields,
    key: &'static str,
    error: &mut impl FnMut(Marker, Error),
) -> Option<Node> {
    let node = f.take(key);
    if node.is_none() {
        error(
            f.mark,
            RuleError::MissingKey {
                section: f.section,
                key,
            }
            .into(),
        );
    }
    node
}

/// The entry's `domain`, validated as every allowlist name is.
fn domain(f: &mut Fields, error: &mut impl FnMut(Marker, Error), exact: bool) -> Option<Domain> {
    let (text, mark) = string("domain", required(f, "domain", error)?, error)?;
    if exact && (text.starts_with('*') || text.starts_with('.')) {
        error(mark, RuleError::WildcardCredential { text }.into());
        return None;
    }
    match Domain::parse(&text) {
        // Warnings (unknown suffix, shared hosting) are the domain entries' business; a
        // rules host is usually listed there too.
        Ok(v) => Some(v.domain),
        Err(errors) => {
            for e in errors {
                error(mark, e);
            }
            None
        }
    }
}

fn host_rules(
    mut f: Fields,
    at: &impl Fn(Marker) -> Origin,
    error: &mut impl FnMut(Marker, Error),
) -> Option<HostRules> {
    let origin = at(f.mark);
    let domain = domain(&mut f, error, false);
    let allow = required(&mut f, "allow", error).and_then(|node| {
        let mark = node.mark;
        let items = match node.value {
            Value::Seq(items) => items,
            Value::Alias => {
                error(mark, RuleError::Alias.into());
                return None;
            }
            other => {
                error(
                    mark,
                    RuleError::NotAList {
                        key: "allow",
                        found: other.kind(),
                    }
                    .into(),
                );
                return None;
            }
        };
        if items.is_empty() {
            error(mark, RuleError::EmptyAllow.into());
            return None;
        }
        let mut rules = Vec::new();
        let mut ok = true;
        for item in items {
            match string("allow", item, error) {
                Some((text, mark)) => match Rule::parse(&text) {
                    Ok(r) => rules.push(r),
                    Err(e) => {
                        error(mark, e.into());
                        ok = false;
                    }
                },
                None => ok = false,
            }
        }
        ok.then_some(rules)
    });
    Some(HostRules {
        domain: domain?,
        allow: allow?,
        origin,
    })
}

fn credential(
    mut f: Fields,
    at: &impl Fn(Marker) -> Origin,
    error: &mut impl FnMut(Marker, Error),
) -> Option<Credential> {
    let origin = at(f.mark);
    let domain = domain(&mut f, error, true);
    let header = required(&mut f, "header", error).and_then(|n| string("header", n, error));
    let value = required(&mut f, "value", error).and_then(|n| string("value", n, error));
    let env = match f.take("sandbox_env") {
        None => Some(None),
        Some(n) => string("sandbox_env", n, error).map(Some),
    };
    let header = header.and_then(|(t, m)| valid(HeaderName::parse(&t), m, error));
    let value = value.and_then(|(t, m)| valid(ValueTemplate::parse(&t), m, error));
    let sandbox_env = match env? {
        None => None,
        Some((t, m)) => Some(valid(EnvName::parse(&t), m, error)?),
    };
    Some(Credential {
        domain: domain?,
        header: header?,
        value: value?,
        sandbox_env,
        origin,
    })
}

fn valid<T>(
    r: Result<T, RuleError>,
    mark: Marker,
    error: &mut impl FnMut(Marker, Error),
) -> Option<T> {
    r.map_err(|e| error(mark, e.into())).ok()
}
