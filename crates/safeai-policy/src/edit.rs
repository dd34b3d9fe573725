//! Adding domains to an allowlist file as text, so that its comments, layout and line
//! endings stay as the user wrote them (`safeai allow`).
//!
//! Every position comes from the YAML parser (which, unlike `str::lines`, ends a line at a
//! lone CR too), and the edited text is checked before it is returned: it must allow
//! exactly what the old one did plus the new domains. A layout this module cannot extend
//! is an error, never a wrong file.

use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::allowlist::{Rejected, check};
use crate::diagnostic::Shown;
use crate::domain::Domain;
use crate::options::Tunnel;
use crate::source::Source;

/// Why domains could not be added to the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditError {
    /// The file as it is does not pass the check.
    Invalid(Rejected),
    /// `domains` is written in a way this editor does not extend (an alias, a block
    /// scalar, a list inside a flow map, …): the domains are to be added by hand.
    Layout(&'static str),
    /// The edited text would not allow exactly the old entries plus the new domains
    /// (a layout the editor misread): nothing is to be written.
    Unverified(String),
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::Invalid(r) => write!(f, "{r}"),
            EditError::Layout(what) => {
                write!(
                    f,
                    "`domains` is written as {what}, which `safeai allow` cannot extend"
                )
            }
            EditError::Unverified(why) => write!(
                f,
                "the edited file would not allow what it should ({}); nothing was written",
                Shown(why)
            ),
        }
    }
}

impl std::error::Error for EditError {}

/// `text` with `new` added to its `domains` list, in the list's own style:
///
/// - a block list (`- a.com` lines, plain or map entries) gets one `- name` line per
///   domain after its last entry, indented like it;
/// - a flow list (`[a.com, b.com]`, `[]`) gets the names after its `[`;
/// - a null `domains` (`domains:`, `domains: ~`, `domains:  # none yet`) becomes a block list;
/// - a file without `domains` (empty, comments only, `presets:` only) gets a `domains:`
///   block list at its end.
///
/// New lines use the file's line ending (CRLF stays CRLF). `name` is the file's name, for
/// messages.
///
/// # Errors
///
/// See [`EditError`]: the text is then not to be written.
pub fn add_domains(name: &str, text: &str, new: &[Domain]) -> Result<String, EditError> {
    let yaml = |text: &str| Source::Yaml {
        name: name.to_owned(),
        text: text.to_owned(),
    };
    check(&[yaml(text)]).map_err(EditError::Invalid)?;
    if new.is_empty() {
        return Ok(text.to_owned());
    }
    let edited = splice(text, new)?;
    verify(&yaml(text), &yaml(&edited), new)?;
    Ok(edited)
}

/// The edit itself, from the parser's positions.
fn splice(text: &str, new: &[Domain]) -> Result<String, EditError> {
    let eol = line_ending(text);
    let shape = Shape::read(text);
    let byte = CharToByte::new(text);
    let mut out = text.to_owned();
    match shape.value {
        // A block map without `domains` (only `presets:`) gets the key at its end.
        None if shape.flow_mapping => {
            return Err(EditError::Layout("a flow map without `domains`"));
        }
        None => {
            if !out.is_empty() && !out.ends_with(['\n', '\r']) {
                out.push_str(eol);
            }
            out.push_str("domains:");
            out.push_str(eol);
            for d in new {
                out.push_str(&format!("  - {d}{eol}"));
            }
        }
        Some(Value::Null { at, len }) => {
            let key = byte.at(shape.key.map_or(0, |m| m.index()));
            let (insert, prefix) = after_line(text, key, eol);
            let lines: String = new.iter().map(|d| format!("  - {d}{eol}")).collect();
            // The later edit first, so the earlier offset stays right.
            let start = byte.at(at);
            let end = byte.at(at + len);
            if start >= insert {
                out.replace_range(start..end, "");
                out.insert_str(insert, &format!("{prefix}{lines}"));
            } else {
                out.insert_str(insert, &format!("{prefix}{lines}"));
                out.replace_range(start..end, "");
            }
        }
        Some(Value::Flow { open, empty }) => {
            let at = byte.at(open) + 1;
            let names: Vec<&str> = new.iter().map(Domain::as_str).collect();
            let mut added = names.join(", ");
            if !empty {
                added.push_str(", ");
            }
            out.insert_str(at, &added);
        }
        Some(Value::Block { first, last }) => {
            let first = byte.at(first);
            let dash = text[..first].trim_end_matches(' ');
            if !dash.ends_with('-') {
                return Err(EditError::Layout(
                    "a list whose last entry does not follow its `-`",
                ));
            }
            let dash = dash.len() - 1;
            let line_start = text[..dash].rfind(['\n', '\r']).map_or(0, |i| i + 1);
            let indent = &text[line_start..dash];
            if indent.bytes().any(|b| b != b' ') {
                return Err(EditError::Layout(
                    "a list whose entries do not start their lines",
                ));
            }
            let (insert, prefix) = after_line(text, byte.at(last), eol);
            let lines: String = new.iter().map(|d| format!("{indent}- {d}{eol}")).collect();
            out.insert_str(insert, &format!("{prefix}{lines}"));
        }
        Some(Value::Other(what)) => return Err(EditError::Layout(what)),
    }
    Ok(out)
}

/// The edited file must allow exactly what the old one and the new domains do together.
fn verify(old: &Source, edited: &Source, new: &[Domain]) -> Result<(), EditError> {
    let entries = |sources: &[Source]| -> Result<Vec<(Domain, Tunnel)>, String> {
        let checked = check(sources).map_err(|r| r.to_string())?;
        Ok(checked
            .allowlist
            .entries()
            .map(|e| (e.domain.clone(), e.tunnel))
            .collect())
    };
    let code = Source::Code(new.iter().map(ToString::to_string).collect());
    let expected = entries(&[old.clone(), code]).map_err(EditError::Unverified)?;
    let got = entries(std::slice::from_ref(edited)).map_err(EditError::Unverified)?;
    if got != expected {
        let missing: Vec<String> = expected
            .iter()
            .filter(|e| !got.contains(e))
            .map(|(d, _)| d.to_string())
            .collect();
        let extra: Vec<String> = got
            .iter()
            .filter(|e| !expected.contains(e))
            .map(|(d, _)| d.to_string())
            .collect();
        return Err(EditError::Unverified(format!(
            "missing: [{}], unexpected: [{}]",
            missing.join(", "),
            extra.join(", ")
        )));
    }
    Ok(())
}

/// The line ending the file uses most: CRLF, LF or a lone CR (LF for a file without one).
fn line_ending(text: &str) -> &'static str {
    let crlf = text.matches("\r\n").count();
    let lf = text.matches('\n').count() - crlf;
    let cr = text.matches('\r').count() - crlf;
    if crlf > lf && crlf >= cr {
        "\r\n"
    } else if cr > lf && cr > crlf {
        "\r"
    } else {
        "\n"
    }
}

/// Where the line holding byte `at` ends, past its line break (CR, LF or CRLF, as YAML
/// counts them), and what to write before an insertion there: a line break when the
/// line is the last one and has none.
fn after_line(text: &str, at: usize, eol: &'static str) -> (usize, &'static str) {
    match text[at..].find(['\n', '\r']) {
        Some(i) => {
            let i = at + i;
            let len = if text[i..].starts_with("\r\n") { 2 } else { 1 };
            (i + len, "")
        }
        None => (text.len(), eol),
    }
}

/// The parser counts characters; edits need byte offsets.
struct CharToByte(Vec<usize>);

impl CharToByte {
    fn new(text: &str) -> CharToByte {
        let mut offsets: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        offsets.push(text.len());
        CharToByte(offsets)
    }

    fn at(&self, char_index: usize) -> usize {
        self.0
            .get(char_index)
            .copied()
            .unwrap_or_else(|| *self.0.last().unwrap_or(&0))
    }
}

/// The value of `domains`, with the positions (in characters) an edit needs.
enum Value {
    /// Null: `at` and `len` of its text (`~`, `null`; empty for nothing).
    Null { at: usize, len: usize },
    /// A flow list: where its `[` is, and whether it has no entries.
    Flow { open: usize, empty: bool },
    /// A block list: the start of its last entry and the last position inside it.
    Block { first: usize, last: usize },
    /// Anything else, named for the message.
    Other(&'static str),
}

/// What the parser says about the top of the file.
#[derive(Default)]
struct Shape {
    /// The file's top-level map is a flow map (`{…}`).
    flow_mapping: bool,
    /// The `domains` key.
    key: Option<Marker>,
    value: Option<Value>,
    depth: usize,
    expect_key: bool,
    at_domains: bool,
    /// Inside the `domains` list, whose entries are at this depth.
    list_depth: Option<usize>,
    /// The list is a flow list.
    flow: bool,
    /// Start and last position of the current (so far last) entry.
    entry: Option<(usize, usize)>,
    chars: Vec<char>,
}

impl Shape {
    fn read(text: &str) -> Shape {
        let mut shape = Shape {
            chars: text.chars().collect(),
            ..Shape::default()
        };
        // The text passed the check: the parse succeeds.
        let _ = Parser::new_from_str(text).load(&mut shape, false);
        if let (Some(Value::Block { .. }), Some((first, last))) = (&shape.value, shape.entry) {
            shape.value = Some(Value::Block { first, last });
        }
        if let Some(Value::Flow { empty, .. }) = &mut shape.value {
            *empty = shape.entry.is_none();
        }
        shape
    }

    fn char_at(&self, index: usize) -> Option<char> {
        self.chars.get(index).copied()
    }
}

impl MarkedEventReceiver for Shape {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let starts_node = matches!(
            ev,
            Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
                | Event::Alias(_)
        );
        if let Some(d) = self.list_depth {
            if starts_node && self.depth == d {
                self.entry = Some((mark.index(), mark.index()));
                if let Event::Scalar(_, TScalarStyle::Literal | TScalarStyle::Folded, ..) = ev
                    && !self.flow
                {
                    self.value = Some(Value::Other("a list with a block scalar (`|`, `>`)"));
                    self.list_depth = None;
                }
            } else if self.depth > d || (self.depth == d && !starts_node) {
                // Inside the entry: a node's start, or a flow map's closing `}`.
                let counts = starts_node
                    || (matches!(ev, Event::MappingEnd | Event::SequenceEnd)
                        && matches!(self.char_at(mark.index()), Some('}' | ']'))
                        && self.depth > d);
                if let Some((first, last)) = &mut self.entry
                    && counts
                {
                    // A block map's start is marked after its first key: keep the earliest.
                    *first = (*first).min(mark.index());
                    *last = (*last).max(mark.index());
                }
            }
        } else if starts_node && self.depth == 1 {
            if self.expect_key {
                self.at_domains = matches!(&ev, Event::Scalar(k, ..) if k.trim_start_matches('\u{feff}') == "domains");
                if self.at_domains {
                    self.key = Some(mark);
                }
            } else if self.at_domains {
                self.value = Some(match &ev {
                    Event::Scalar(v, TScalarStyle::Plain, ..)
                        if matches!(v.as_str(), "" | "~" | "null" | "Null" | "NULL") =>
                    {
                        Value::Null {
                            at: mark.index(),
                            len: v.chars().count(),
                        }
                    }
                    Event::SequenceStart(..) => {
                        self.list_depth = Some(self.depth + 1);
                        self.flow = self.char_at(mark.index()) == Some('[');
                        if self.flow {
                            Value::Flow {
                                open: mark.index(),
                                empty: true,
                            }
                        } else {
                            Value::Block { first: 0, last: 0 }
                        }
                    }
                    Event::Alias(_) => Value::Other("an alias"),
                    _ => Value::Other("something other than a list"),
                });
                self.at_domains = false;
            }
            self.expect_key = !self.expect_key;
        }
        match ev {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                self.depth += 1;
                if self.depth == 1 {
                    self.flow_mapping = matches!(ev, Event::MappingStart(..))
                        && self.char_at(mark.index()) == Some('{');
                    self.expect_key = true;
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if self.list_depth == Some(self.depth) {
                    self.list_depth = None;
                }
                self.depth = self.depth.saturating_sub(1);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(text: &str, new: &[&str]) -> Result<String, EditError> {
        let new: Vec<Domain> = new
            .iter()
            .map(|d| Domain::parse(d).unwrap().domain)
            .collect();
        add_domains("allowlist.yaml", text, &new)
    }

    fn ok(text: &str, new: &[&str]) -> String {
        add(text, new).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn a_block_list_grows_after_its_last_entry_keeping_comments() {
        let text = "# top\ndomains:\n  # tools\n  - github.com  # code\n\n# trailing comment\n";
        assert_eq!(
            ok(text, &["pypi.org", "crates.io"]),
            "# top\ndomains:\n  # tools\n  - github.com  # code\n  - pypi.org\n  - crates.io\n\n# trailing comment\n"
        );
        assert_eq!(
            ok("domains:\n- a.com", &["b.com"]),
            "domains:\n- a.com\n- b.com\n"
        );
    }

    #[test]
    fn crlf_stays_crlf() {
        let text = "domains:\r\n  - a.com\r\n# end\r\n";
        assert_eq!(
            ok(text, &["b.com"]),
            "domains:\r\n  - a.com\r\n  - b.com\r\n# end\r\n"
        );
        assert_eq!(
            ok("# c\r\n", &["b.com"]),
            "# c\r\ndomains:\r\n  - b.com\r\n"
        );
    }

    #[test]
    fn a_lone_cr_in_a_comment_does_not_swallow_the_new_entry() {
        // YAML ends the comment at the CR, so `# more` is a line of its own: the old editor
        // (which split at LF only) wrote the domain after `# more`, inside the comment line.
        let text = "domains:\n  - a.com # note\r  # more\n";
        let out = ok(text, &["b.com"]);
        assert_eq!(out, "domains:\n  - a.com # note\r  - b.com\n  # more\n");
        let text = "domains: # none yet\r  - a.com\n";
        assert_eq!(
            ok(text, &["b.com"]),
            "domains: # none yet\r  - a.com\n  - b.com\n"
        );
    }

    #[test]
    fn null_and_comment_only_domains_become_a_block_list() {
        assert_eq!(ok("domains: ~\n", &["a.com"]), "domains: \n  - a.com\n");
        assert_eq!(
            ok("domains: null # x\n", &["a.com"]),
            "domains:  # x\n  - a.com\n"
        );
        assert_eq!(
            ok("domains:  # none yet\n# end\n", &["a.com"]),
            "domains:  # none yet\n  - a.com\n# end\n"
        );
        assert_eq!(ok("domains:", &["a.com"]), "domains:\n  - a.com\n");
        assert_eq!(
            ok("domains:\n  ~\n", &["a.com"]),
            "domains:\n  - a.com\n  \n"
        );
        assert_eq!(ok("", &["a.com"]), "domains:\n  - a.com\n");
        assert_eq!(
            ok("# only a comment", &["a.com"]),
            "# only a comment\ndomains:\n  - a.com\n"
        );
    }

    #[test]
    fn a_flow_list_grows_after_its_bracket() {
        assert_eq!(ok("domains: []\n", &["a.com"]), "domains: [a.com]\n");
        assert_eq!(
            ok("domains: [x.com, ]  # c\n", &["a.com", "b.com"]),
            "domains: [a.com, b.com, x.com, ]  # c\n"
        );
        assert_eq!(
            ok("domains: [\n  x.com, # c\n  y.com\n]\r\n", &["a.com"]),
            "domains: [a.com, \n  x.com, # c\n  y.com\n]\r\n"
        );
        assert_eq!(
            ok(
                "domains: [{domain: ssh.github.com, tunnel: opaque}]\n",
                &["a.com"]
            ),
            "domains: [a.com, {domain: ssh.github.com, tunnel: opaque}]\n"
        );
    }

    #[test]
    fn map_entries_keep_their_option_lines() {
        let text = "domains:\n  - domain: ssh.github.com\n    tunnel: opaque\n# end\n";
        assert_eq!(
            ok(text, &["pypi.org"]),
            "domains:\n  - domain: ssh.github.com\n    tunnel: opaque\n  - pypi.org\n# end\n"
        );
        let text = "domains:\n  - {domain: ssh.github.com,\n     tunnel: opaque}\n";
        assert_eq!(
            ok(text, &["pypi.org"]),
            "domains:\n  - {domain: ssh.github.com,\n     tunnel: opaque}\n  - pypi.org\n"
        );
    }

    #[test]
    fn a_file_of_presets_only_gets_a_domains_list() {
        assert_eq!(
            ok("presets: [github]\n", &["b.com"]),
            "presets: [github]\ndomains:\n  - b.com\n"
        );
        assert_eq!(
            ok("presets:\n  - npm\n  - pypi", &["b.com"]),
            "presets:\n  - npm\n  - pypi\ndomains:\n  - b.com\n"
        );
        assert!(matches!(
            add("{presets: [npm]}\n", &["b.com"]),
            Err(EditError::Layout("a flow map without `domains`"))
        ));
        // Next to presets, the list itself is extended as always.
        assert_eq!(
            ok("presets: [npm]\ndomains: [a.com]\n", &["b.com"]),
            "presets: [npm]\ndomains: [b.com, a.com]\n"
        );
    }

    #[test]
    fn layouts_it_cannot_extend_are_errors_not_wrong_files() {
        assert!(matches!(
            add("domains: >-\n  a.com\n", &["b.com"]),
            Err(EditError::Invalid(_))
        ));
        assert!(matches!(
            add("domains:\n  - >-\n    a.com\n", &["b.com"]),
            Err(EditError::Layout(_))
        ));
        assert!(matches!(add("{}\n", &["b.com"]), Err(EditError::Layout(_))));
        assert!(matches!(
            add("domains: [a.com\n", &["b.com"]),
            Err(EditError::Invalid(_))
        ));
        // Parsed positions in a layout the editor misreads are caught by the re-check.
        assert!(matches!(
            add("domains:\n- a.com\n...\n", &["b.com"]),
            Err(EditError::Unverified(_)) | Ok(_)
        ));
    }

    #[test]
    fn every_result_allows_exactly_the_old_and_the_new() {
        for text in [
            "domains:\n  - a.com\n",
            "domains: [a.com]\n",
            "domains:\r\n  - 'a.com'\r\n",
            "domains:\n  - \"a.com\" # q\n",
            "\u{feff}domains:\n  - bücher.de\n  - a.com\n",
        ] {
            let out = ok(text, &["new.example.com"]);
            let checked = check(&[Source::Yaml {
                name: "f".into(),
                text: out.clone(),
            }])
            .unwrap();
            assert!(checked.allowlist.allows("new.example.com"), "{out:?}");
            assert!(
                checked.allowlist.allows("a.com") || checked.allowlist.allows("xn--bcher-kva.de")
            );
        }
    }
}
