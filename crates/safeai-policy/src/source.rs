//! Where allowlist entries come from: the YAML file and `SAFE_AI_DEFAULT_DOMAINS`.
//!
//! Each source yields raw entries with their [`Origin`]; validation happens later,
//! over all sources at once, so every problem is reported together.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::Origin;
use crate::diagnostic::{Diagnostic, Error, Warning};
use crate::options::Tunnel;

/// The variable holding the path of the allowlist file.
pub const ALLOWLIST_VAR: &str = "SAFE_AI_ALLOWLIST";
/// The variable holding extra comma-separated domains.
pub const DEFAULT_DOMAINS_VAR: &str = "SAFE_AI_DEFAULT_DOMAINS";
/// The allowlist file used when none is named.
pub const DEFAULT_ALLOWLIST_PATH: &str = "allowlist.yaml";
/// No allowlist is this large; a bigger file is the wrong file.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// The part of the process environment the policy reads, passed in explicitly:
/// the library never reads the environment itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    /// `SAFE_AI_ALLOWLIST`.
    pub allowlist: Option<String>,
    /// `SAFE_AI_DEFAULT_DOMAINS`.
    pub default_domains: Option<String>,
}

impl Env {
    /// The allowlist file: `flag`, else `SAFE_AI_ALLOWLIST`, else `allowlist.yaml` in `dir`;
    /// and whether it must exist (named explicitly) or may be missing (the default).
    pub fn allowlist_file(&self, flag: Option<&Path>, dir: &Path) -> (PathBuf, bool) {
        match (flag, self.allowlist.as_deref().filter(|s| !s.is_empty())) {
            (Some(path), _) => (path.to_owned(), true),
            (None, Some(path)) => (PathBuf::from(path), true),
            (None, None) => (dir.join(DEFAULT_ALLOWLIST_PATH), false),
        }
    }

    /// Reads the variables through `lookup`, such as `|k| std::env::var(k).ok()`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Env {
        Env {
            allowlist: lookup(ALLOWLIST_VAR),
            default_domains: lookup(DEFAULT_DOMAINS_VAR),
        }
    }
}

/// One source of allowlist entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A YAML file on disk.
    File {
        /// Its path, shown in messages as given.
        path: PathBuf,
        /// Named explicitly (missing is an error) or the default path (missing is a warning).
        required: bool,
    },
    /// YAML already in memory, named for messages.
    Yaml {
        /// The name used in origins, such as `allowlist.yaml`.
        name: String,
        /// The document.
        text: String,
    },
    /// A comma-separated list, such as the value of `SAFE_AI_DEFAULT_DOMAINS`.
    List {
        /// The variable's name, used in origins.
        var: String,
        /// Its value.
        value: String,
    },
    /// Domains given in code.
    Code(Vec<String>),
}

impl Source {
    /// The sources the stack uses: the file (`flag`, else `SAFE_AI_ALLOWLIST`, else
    /// `allowlist.yaml` in `dir`), then `SAFE_AI_DEFAULT_DOMAINS` if set.
    pub fn standard(env: &Env, flag: Option<&Path>, dir: &Path) -> Vec<Source> {
        let (path, required) = env.allowlist_file(flag, dir);
        let file = Source::File { path, required };
        let mut sources = vec![file];
        if let Some(value) = &env.default_domains {
            sources.push(Source::List {
                var: DEFAULT_DOMAINS_VAR.to_owned(),
                value: value.clone(),
            });
        }
        sources
    }
}

/// An entry before validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawEntry {
    /// The name to validate, or why there is none.
    pub text: Result<String, Error>,
    pub tunnel: Tunnel,
    /// Where the entry starts: the name's errors and the kept entry point here.
    pub origin: Origin,
    /// Problems with the entry's options, each at its own key or value (empty, without
    /// allocating, for a plain name).
    pub problems: Vec<(Origin, Error)>,
}

impl RawEntry {
    /// A plain name: the default tunnel, no options.
    fn name(text: String, origin: Origin) -> RawEntry {
        RawEntry {
            text: Ok(text),
            tunnel: Tunnel::Tls,
            origin,
            problems: Vec::new(),
        }
    }
}

/// Reads one source. Problems with the source itself (missing file, bad YAML) go to
/// `diagnostics`; its entries, valid or not, are returned for validation.
pub(crate) fn read(source: &Source, diagnostics: &mut Vec<Diagnostic>) -> Vec<RawEntry> {
    match source {
        Source::File { path, required } => {
            let name = path.display().to_string();
            match read_file(path) {
                Ok(text) => read_yaml(&name, &text, diagnostics),
                Err(Error::FileNotFound) if !required => {
                    diagnostics.push(Diagnostic::warning(
                        Some(Origin::file(name)),
                        Warning::DefaultFileMissing,
                    ));
                    Vec::new()
                }
                Err(e) => {
                    diagnostics.push(Diagnostic::error(Origin::file(name), e));
                    Vec::new()
                }
            }
        }
        Source::Yaml { name, text } => read_yaml(name, text, diagnostics),
        Source::List { var, value } => read_list(var, value),
        Source::Code(domains) => domains
            .iter()
            .enumerate()
            .map(|(index, d)| RawEntry::name(d.clone(), Origin::Code { index }))
            .collect(),
    }
}

fn read_file(path: &Path) -> Result<String, Error> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => Error::FileNotFound,
        _ => Error::Io {
            message: e.to_string(),
        },
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opening a FIFO for reading blocks until a writer comes; without blocking it opens at
    // once, and the check below refuses it. A regular file ignores the flag.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(io)?;
    // The opened file's own metadata: no other file can take its place in between.
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            kind: file_kind(&meta.file_type()),
        });
    }
    wait_for_writer(&file)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(Error::TooLarge {
            size: meta.len(),
            limit: MAX_FILE_BYTES,
        });
    }
    let bytes = read_bounded(file, MAX_FILE_BYTES)
        .map_err(io)?
        .ok_or(Error::TooLarge {
            size: MAX_FILE_BYTES + 1,
            limit: MAX_FILE_BYTES,
        })?;
    String::from_utf8(bytes).map_err(|e| Error::Io {
        message: format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Takes a shared lock on the file, so that a `safeai allow` rewriting it in place (under
/// an exclusive lock) is never read half-written. A file system without locks is read
/// as it is; a writer that holds the lock for more than 5 s is an error.
fn wait_for_writer(file: &std::fs::File) -> Result<(), Error> {
    for _ in 0..500 {
        match file.try_lock_shared() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::Error(_)) => return Ok(()),
        }
    }
    Err(Error::Io {
        message: "another process has held a write lock on it for more than 5 s".into(),
    })
}

/// Everything `reader` holds, or `None` when it holds more than `limit` bytes: the read
/// stops there, whatever the file's reported size said (a file still growing, a
/// `/proc` file that reports 0).
fn read_bounded(reader: impl std::io::Read, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;

    let mut bytes = Vec::new();
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

/// What a file that is not a regular file is, with its article, for a message.
fn file_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Splits a comma-separated list: whitespace around items trimmed, empty items ignored,
/// the index counting every item so that it points at the right one.
fn read_list(var: &str, value: &str) -> Vec<RawEntry> {
    value
        .split(',')
        .enumerate()
        .filter_map(|(index, item)| {
            let item = item.trim();
            (!item.is_empty()).then(|| {
                let origin = Origin::Env {
                    var: var.to_owned(),
                    index,
                };
                RawEntry::name(item.to_owned(), origin)
            })
        })
        .collect()
}

/// The file's shape. serde enforces it (unknown keys are errors); the positions of the
/// entries come from a second, event-level pass, since serde_yaml keeps no spans.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    domains: Option<Domains>,
    /// Names of [`crate::presets`], checked and expanded by `presets::read`.
    #[serde(default)]
    presets: Option<serde_yaml::Value>,
}

fn read_yaml(name: &str, text: &str, diagnostics: &mut Vec<Diagnostic>) -> Vec<RawEntry> {
    let name: Arc<str> = Arc::from(name);
    let shape: FileShape = if text.trim().is_empty() {
        FileShape::default()
    } else {
        match serde_yaml::from_str(text) {
            Ok(shape) => shape,
            Err(e) => {
                diagnostics.push(yaml_error(&name, &e));
                return Vec::new();
            }
        }
    };
    let marks = EntryMarks::collect(text);
    let origin_at = |m: Option<Marker>| match m {
        Some(m) => Origin::file_at(name.clone(), m.line(), m.col() + 1),
        None => Origin::file(name.clone()),
    };
    // A preset's entries come first: a name also listed by hand is then the duplicate,
    // and the warning points at the line to remove.
    let mut entries = crate::presets::read(&name, text, shape.presets, diagnostics);
    let items = match shape.domains {
        None | Some(Domains::Null) => return entries,
        Some(Domains::List(items)) => items,
        Some(Domains::Other(found)) => {
            diagnostics.push(Diagnostic::error(
                origin_at(marks.domains_value),
                Error::WrongShape { found },
            ));
            return entries;
        }
    };
    // The fields of map entries, in file order, matched to entries by their item index.
    let mut fields = marks.fields.iter().peekable();
    let listed: Vec<RawEntry> = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let origin = origin_at(marks.items.get(i).copied());
            match item {
                Item::Name(s) => RawEntry::name(s, origin),
                Item::Other { found, shown } => RawEntry {
                    text: Err(Error::NotAString { found, shown }),
                    tunnel: Tunnel::Tls,
                    origin,
                    problems: Vec::new(),
                },
                Item::Map(map) => {
                    let mut at: Vec<&FieldMarks> = Vec::new();
                    while let Some(f) = fields.next_if(|f| f.item <= i) {
                        if f.item == i {
                            at.push(f);
                        }
                    }
                    map_entry(map, origin, &at, &origin_at)
                }
            }
        })
        .collect();
    entries.extend(listed);
    entries
}

/// An entry written as a map, with each problem at its key or value (`fields`, by the
/// key's index in the map; without a mark, as for an alias, at the entry's `origin`).
fn map_entry(
    map: EntryMap,
    origin: Origin,
    fields: &[&FieldMarks],
    origin_at: &impl Fn(Option<Marker>) -> Origin,
) -> RawEntry {
    let key_at = |k: usize| {
        fields
            .get(k)
            .map_or(origin.clone(), |f| origin_at(Some(f.key)))
    };
    let value_at = |k: usize| {
        fields
            .get(k)
            .map_or(origin.clone(), |f| origin_at(Some(f.value)))
    };
    let mut problems = Vec::new();
    for (k, found, key) in map.unknown {
        problems.push((key_at(k), Error::UnknownOption { found, key }));
    }
    for (k, key) in map.repeated {
        problems.push((key_at(k), Error::RepeatedKey { key }));
    }
    let tunnel = match map.tunnel {
        None => Tunnel::Tls,
        Some((_, Ok(t))) => t,
        Some((k, Err((found, shown)))) => {
            problems.push((value_at(k), Error::BadTunnel { found, shown }));
            Tunnel::Tls
        }
    };
    problems.sort_by(|a, b| a.0.cmp(&b.0));
    let text = match map.domain {
        Some(Ok(name)) => Ok(name),
        Some(Err((found, shown))) => Err(Error::DomainNotAString { found, shown }),
        None => Err(Error::EntryWithoutDomain),
    };
    RawEntry {
        text,
        tunnel,
        origin,
        problems,
    }
}

/// The value of `domains`: a list, null, or the wrong shape (reported, not a parse error).
enum Domains {
    Null,
    List(Vec<Item>),
    Other(&'static str),
}

/// One item of the list: a name, a name with options, or something else to report.
enum Item {
    Name(String),
    Map(EntryMap),
    Other { found: &'static str, shown: String },
}

/// A value that is not what it should be: what it is (`a number`) and, for a scalar,
/// its text.
type Misfit = (&'static str, String);

/// An entry written as a map, as read: every problem kept for reporting, each with the
/// index of its key in the map (to find its position).
#[derive(Default)]
struct EntryMap {
    /// `domain`: the name, or what was found instead.
    domain: Option<Result<String, Misfit>>,
    /// `tunnel`, with its key's index.
    tunnel: Option<(usize, Result<Tunnel, Misfit>)>,
    /// Keys that are not `domain` or `tunnel`: index, what the key is, its text.
    unknown: Vec<(usize, &'static str, String)>,
    /// Keys given again (the last one is used, and reported): index, key.
    repeated: Vec<(usize, &'static str)>,
}

/// A scalar where one is expected, or what was found instead. Nested values are skipped
/// without being built.
enum Scalar {
    Str(String),
    Other(Misfit),
}

impl Scalar {
    fn into_result(self) -> Result<String, Misfit> {
        match self {
            Scalar::Str(s) => Ok(s),
            Scalar::Other(m) => Err(m),
        }
    }
}

/// Visits a YAML node and records what it is, without building a `serde_yaml::Value`
/// (which costs an allocation per node on a 100 000-entry list).
macro_rules! visit_scalars {
    ($ty:ty, $wrap:expr) => {
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<$ty, E> {
            Ok($wrap("a boolean", v.to_string()))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$ty, E> {
            Ok($wrap("a number", v.to_string()))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$ty, E> {
            Ok($wrap("a number", v.to_string()))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<$ty, E> {
            Ok($wrap("a number", v.to_string()))
        }
        fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<$ty, A::Error> {
            use serde::de::VariantAccess;
            let (serde::de::IgnoredAny, variant) = data.variant()?;
            variant.newtype_variant::<serde::de::IgnoredAny>()?;
            Ok($wrap("a tagged value", String::new()))
        }
    };
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Item, D::Error> {
        struct V;
        fn other(found: &'static str, shown: String) -> Item {
            Item::Other { found, shown }
        }
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Item;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a domain name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Item, E> {
                Ok(Item::Name(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Item, E> {
                Ok(Item::Name(v))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Item, E> {
                Ok(other("null", String::new()))
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Item, E> {
                Ok(other("null", String::new()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(other("a list", String::new()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
                let mut entry = EntryMap::default();
                let mut k = 0;
                while let Some(key) = map.next_key::<Scalar>()? {
                    match key {
                        Scalar::Str(key) if key == "domain" => {
                            if entry.domain.is_some() {
                                entry.repeated.push((k, "domain"));
                            }
                            entry.domain = Some(map.next_value::<Scalar>()?.into_result());
                        }
                        Scalar::Str(key) if key == "tunnel" => {
                            if entry.tunnel.is_some() {
                                entry.repeated.push((k, "tunnel"));
                            }
                            let value = map.next_value::<Scalar>()?.into_result();
                            let tunnel = value.and_then(|v| match Tunnel::from_name(&v) {
                                Some(t) => Ok(t),
                                None => Err(("a string", v)),
                            });
                            entry.tunnel = Some((k, tunnel));
                        }
                        key => {
                            let (found, key) = match key {
                                Scalar::Str(key) => ("a string", key),
                                Scalar::Other(misfit) => misfit,
                            };
                            entry.unknown.push((k, found, key));
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                    k += 1;
                }
                Ok(Item::Map(entry))
            }
            visit_scalars!(Item, other);
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        struct V;
        fn other(found: &'static str, shown: String) -> Scalar {
            Scalar::Other((found, shown))
        }
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Str(v))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Scalar, E> {
                Ok(other("null", String::new()))
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Scalar, E> {
                Ok(other("null", String::new()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Scalar, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(other("a list", String::new()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Scalar, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(other("a map", String::new()))
            }
            visit_scalars!(Scalar, other);
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Domains {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Domains, D::Error> {
        struct V;
        fn other(found: &'static str, _shown: String) -> Domains {
            Domains::Other(found)
        }
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Domains;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of domain names")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Domains, E> {
                Ok(Domains::Other("a string"))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Domains, E> {
                Ok(Domains::Null)
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Domains, E> {
                Ok(Domains::Null)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Domains, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Domains::List(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Domains, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Domains::Other("a map"))
            }
            visit_scalars!(Domains, other);
        }
        d.deserialize_any(V)
    }
}

fn yaml_error(name: &str, e: &serde_yaml::Error) -> Diagnostic {
    let origin = match e.location() {
        Some(l) => Origin::file_at(name, l.line(), l.column()),
        None => Origin::file(name),
    };
    // serde_yaml appends " at line L column C"; the origin already says it.
    let full = e.to_string();
    let message = match full.find(" at line ") {
        Some(i) => full[..i].to_owned(),
        None => full,
    };
    let error = if message.contains("repetition limit") || message.contains("recursion limit") {
        Error::TooComplex { message }
    } else {
        Error::Yaml { message }
    };
    Diagnostic::error(origin, error)
}

/// The start of the `domains` value, of each of its items, and of the keys and values
/// of items that are maps, from parser events.
/// Only called after serde accepted the document, so the shapes agree; if they ever
/// did not, entries fall back to the file's name without a position.
#[derive(Default)]
struct EntryMarks {
    domains_value: Option<Marker>,
    items: Vec<Marker>,
    /// The fields of map items, in file order.
    fields: Vec<FieldMarks>,
    /// The current item is a map: the nodes one level down are its keys and values.
    item_is_map: bool,
    /// The key of the current item's field whose value comes next.
    pending_key: Option<Marker>,
    depth: usize,
    /// Depth 1 is the top mapping; true when the next depth-1 node is a key.
    expect_key: bool,
    /// The last depth-1 key was `domains`, so the next depth-1 node is its value.
    at_domains: bool,
    /// Inside the `domains` sequence, at this depth.
    in_domains: Option<usize>,
}

/// Where one `key: value` of a map item is.
struct FieldMarks {
    /// The item's index in `domains`.
    item: usize,
    key: Marker,
    value: Marker,
}

impl EntryMarks {
    fn collect(text: &str) -> EntryMarks {
        let mut marks = EntryMarks::default();
        let mut parser = Parser::new_from_str(text);
        // An error here is reported by serde already; partial marks are fine.
        let _ = parser.load(&mut marks, false);
        marks
    }
}

impl MarkedEventReceiver for EntryMarks {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let starts_node = matches!(
            ev,
            Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
                | Event::Alias(_)
        );
        if starts_node {
            if let Some(d) = self.in_domains {
                if self.depth == d {
                    self.items.push(mark);
                    self.item_is_map = matches!(ev, Event::MappingStart(..));
                    self.pending_key = None;
                } else if self.depth == d + 1 && self.item_is_map {
                    match self.pending_key.take() {
                        None => {
                            // A block map's start event is marked after its first key;
                            // the entry starts at that key (a flow map at its `{`).
                            let item = self.items.len() - 1;
                            if mark.index() < self.items[item].index() {
                                self.items[item] = mark;
                            }
                            self.pending_key = Some(mark);
                        }
                        Some(key) => self.fields.push(FieldMarks {
                            item: self.items.len() - 1,
                            key,
                            value: mark,
                        }),
                    }
                }
            } else if self.depth == 1 {
                if self.expect_key {
                    self.at_domains = matches!(&ev, Event::Scalar(k, ..) if k == "domains");
                } else if self.at_domains {
                    self.domains_value = Some(mark);
                    if matches!(ev, Event::SequenceStart(..)) {
                        self.in_domains = Some(self.depth + 1);
                    }
                    self.at_domains = false;
                }
                self.expect_key = !self.expect_key;
            }
        }
        match ev {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                self.depth += 1;
                if self.depth == 1 {
                    self.expect_key = true;
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if self.in_domains == Some(self.depth) {
                    self.in_domains = None;
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

    #[test]
    fn an_endless_reader_is_read_only_up_to_the_limit() {
        // `repeat` never ends: only the bound makes this return.
        assert_eq!(read_bounded(std::io::repeat(b'a'), 10).unwrap(), None);
        assert_eq!(
            read_bounded(&b"domains: []"[..], 11).unwrap().as_deref(),
            Some(&b"domains: []"[..])
        );
        assert_eq!(read_bounded(&b"domains: []"[..], 10).unwrap(), None);
    }
}
