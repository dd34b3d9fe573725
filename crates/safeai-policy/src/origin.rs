//! Where an allowlist entry came from, so every message can point at it.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::Escaped;

/// A line and column in a file, both counted from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

/// The provenance of an entry or of a diagnostic.
///
/// Displayed the way editors and terminals link to it: `allowlist.yaml:12:5`,
/// `SAFE_AI_DEFAULT_DOMAINS[3]`; an entry a preset brought in as
/// `preset github at allowlist.yaml:2:12`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// A file, at a position when one is known.
    File {
        /// The path as the user gave it (shared by every entry of the file).
        path: Arc<str>,
        /// Where in the file, if the message is about one place in it.
        position: Option<Position>,
    },
    /// An item of a comma-separated environment variable.
    Env {
        /// The variable's name, such as `SAFE_AI_DEFAULT_DOMAINS`.
        var: String,
        /// The item's index among the comma-separated items, from 0,
        /// counting empty items so that it points at the right place.
        index: usize,
    },
    /// A domain given in code, by its index in the list it was given in.
    Code {
        /// Index in the list, from 0.
        index: usize,
    },
    /// An entry of a preset ([`crate::presets`]), named at `at`.
    Preset {
        /// The preset's name, such as `github`.
        name: &'static str,
        /// Where the preset was named (`presets: [github]` in a file).
        at: Box<Origin>,
    },
}

impl Origin {
    /// The whole file at `path`.
    pub fn file(path: impl Into<Arc<str>>) -> Origin {
        Origin::File {
            path: path.into(),
            position: None,
        }
    }

    /// A place in the file at `path`.
    pub fn file_at(path: impl Into<Arc<str>>, line: usize, column: usize) -> Origin {
        Origin::File {
            path: path.into(),
            position: Some(Position { line, column }),
        }
    }

    /// The name of the preset that brought the entry in, if one did.
    pub fn preset(&self) -> Option<&'static str> {
        match self {
            Origin::Preset { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Where the entry was written down: for a preset's entry, where the preset was
    /// named; otherwise the origin itself. Messages are sorted by it, so that a preset's
    /// findings come at the preset's line.
    pub fn listed(&self) -> &Origin {
        match self {
            Origin::Preset { at, .. } => at.listed(),
            other => other,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File {
                path,
                position: None,
            } => write!(f, "{}", Escaped(path)),
            Origin::File {
                path,
                position: Some(p),
            } => write!(f, "{}:{}:{}", Escaped(path), p.line, p.column),
            Origin::Env { var, index } => write!(f, "{}[{index}]", Escaped(var)),
            Origin::Code { index } => write!(f, "code[{index}]"),
            Origin::Preset { name, at } => write!(f, "preset {name} at {at}"),
        }
    }
}

impl Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
