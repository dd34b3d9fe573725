//! `safeai logs` and `safeai logs summary`: the proxy's decision log, read from the
//! running stack of the current directory (`docker compose exec proxy`, as `safeai verify`
//! does) or from a file of events.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use safeai_log::{Event, SCHEMA_VERSION, Timestamp, parse_since, summary};

use crate::{Failed, Format};

/// Where the tap writes in the proxy (with `.1`, the previous part); `safeai-proxy.sh`
/// passes the same path.
pub const EVENTS_FILE: &str = "/var/log/safe-ai/events.jsonl";

/// Where the events come from.
#[derive(Debug, Clone)]
pub enum From {
    /// The running stack of the current directory.
    Compose,
    /// A file of events (a copy of the proxy's, or a test's).
    File(PathBuf),
}

impl From {
    /// `--events FILE`, else the running stack.
    pub fn new(file: Option<PathBuf>) -> From {
        file.map_or(From::Compose, From::File)
    }
}

/// What to show.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Denials only.
    pub denied: bool,
    /// Only events at or after.
    pub since: Option<Timestamp>,
}

impl Filter {
    pub fn keeps(&self, e: &Event) -> bool {
        (!self.denied || e.is_denied()) && self.since.is_none_or(|t| e.time >= t)
    }
}

/// `--since` against the clock.
pub fn since(arg: Option<&str>) -> Result<Option<Timestamp>, Failed> {
    arg.map(|a| {
        parse_since(a, Timestamp::now()).map_err(|e| {
            eprintln!("error: --since: {e}");
            Failed
        })
    })
    .transpose()
}

fn compose_exec(script: &str) -> Command {
    let mut c = Command::new("docker");
    c.args(["compose", "exec", "-T", "proxy", "sh", "-c", script])
        .stdin(Stdio::null());
    c
}

/// Reads lines of events, skipping (and counting) the lines that are not events of this
/// schema.
fn parse_lines(text: &str, bad: &mut usize) -> Vec<Event> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match Event::from_line(l) {
            Ok(e) if e.v == SCHEMA_VERSION => Some(e),
            _ => {
                *bad += 1;
                None
            }
        })
        .collect()
}

fn warn_bad(bad: usize) {
    if bad > 0 {
        eprintln!(
            "warning: {bad} line(s) are not events of schema v{SCHEMA_VERSION} and were skipped"
        );
    }
}

/// Every event, oldest first.
pub fn read(from: &From) -> Result<Vec<Event>, Failed> {
    let text = match from {
        From::File(path) => std::fs::read_to_string(path).map_err(|e| {
            eprintln!("error: cannot read {}: {e}", path.display());
            Failed
        })?,
        From::Compose => {
            let out = compose_exec(&format!(
                "cat {EVENTS_FILE}.1 2>/dev/null; cat {EVENTS_FILE}"
            ))
            .output()
            .map_err(|e| {
                eprintln!("error: cannot run `docker compose exec`: {e}");
                Failed
            })?;
            if !out.status.success() {
                eprint!("{}", String::from_utf8_lossy(&out.stderr));
                eprintln!(
                    "error: cannot read the proxy's decision log ({EVENTS_FILE})\n  = hint: run this in the directory of the running stack (`docker compose ps` lists it)"
                );
                return Err(Failed);
            }
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let mut bad = 0;
    let events = parse_lines(&text, &mut bad);
    warn_bad(bad);
    Ok(events)
}

fn show(e: &Event, format: Format, out: &mut impl Write) -> std::io::Result<()> {
    match format {
        Format::Json => writeln!(out, "{}", e.to_line()),
        // The text shows each decision once (the page of a denied CONNECT repeats it).
        Format::Text if e.is_decision() => writeln!(out, "{}", e.to_text()),
        Format::Text => Ok(()),
    }
}

/// `safeai logs`: the events that pass the filter, then, with `follow`, each new one as
/// it comes.
pub fn logs(from: &From, filter: &Filter, follow: bool, format: Format) -> Result<(), Failed> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let fail = |e: std::io::Error| {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write to standard output: {e}");
        }
        Failed
    };
    if !follow {
        for e in read(from)?.iter().filter(|e| filter.keeps(e)) {
            show(e, format, &mut out).map_err(fail)?;
        }
        return out.flush().map_err(fail);
    }
    let mut child = match from {
        From::Compose => compose_exec(&format!(
            "cat {EVENTS_FILE}.1 2>/dev/null; exec tail -n +1 -F {EVENTS_FILE} 2>/dev/null"
        )),
        From::File(path) => {
            let mut c = Command::new("tail");
            c.arg("-n").arg("+1").arg("-F").arg(path);
            c
        }
    }
    .stdout(Stdio::piped())
    .spawn()
    .map_err(|e| {
        eprintln!("error: cannot follow the log: {e}");
        Failed
    })?;
    let Some(pipe) = child.stdout.take() else {
        return Err(Failed);
    };
    let mut bad = 0;
    for line in BufReader::new(pipe).lines() {
        let Ok(line) = line else { break };
        for e in parse_lines(&line, &mut bad) {
            if filter.keeps(&e) {
                show(&e, format, &mut out)
                    .and_then(|()| out.flush())
                    .map_err(|e| {
                        let _ = child.kill();
                        fail(e)
                    })?;
            }
        }
    }
    let _ = child.wait();
    warn_bad(bad);
    Ok(())
}

/// `safeai logs summary`.
pub fn summary(from: &From, since: Option<Timestamp>, format: Format) -> Result<(), Failed> {
    let events = read(from)?;
    let filter = Filter {
        denied: true,
        since,
    };
    let s = summary::summarize(events.iter().filter(|e| filter.keeps(e)));
    match format {
        Format::Text => crate::print(&s.to_text()),
        Format::Json => crate::print(&format!("{:#}\n", serde_json::json!(s))),
    }
}

/// The mark `safeai learn --apply` leaves beside the allowlist: the time up to which it
/// has learned.
pub fn learn_mark(allowlist: &Path) -> PathBuf {
    let name = allowlist
        .file_name()
        .map_or_else(|| "allowlist.yaml".into(), |n| n.to_string_lossy());
    allowlist.with_file_name(format!(".{name}.safeai-learned"))
}
