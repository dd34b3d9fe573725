//! `safeai proxy tap`: the proxy's decision log. Reads Squid's access log and dnsmasq's
//! query log (two named pipes), turns each line into an event (`safeai_log`), names the
//! allowlist entry that covers its host, and writes the events as JSON lines to stdout
//! (`docker compose logs proxy`) and to a size-capped file that `safeai logs` reads.
//!
//! The proxy's supervisor runs it like its other children: when it exits, the proxy
//! restarts whole. Lines it cannot read go to stderr, escaped, never into the file.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime};

use safeai_log::{Timestamp, attribute, dnsmasq, squid};
use safeai_policy::{Allowlist, Escaped, check};

use crate::{AllowlistArgs, Failed};

/// What the tap reads and where it writes.
#[derive(Debug)]
pub struct Tap {
    /// Squid's access log pipe.
    pub squid: PathBuf,
    /// dnsmasq's log pipe.
    pub dnsmasq: PathBuf,
    /// The events file (`FILE` and `FILE.1`).
    pub file: PathBuf,
    /// The cap of `FILE` and `FILE.1` together, in bytes.
    pub max_bytes: u64,
    /// The allowlist the proxy renders from.
    pub allowlist: AllowlistArgs,
}

macro_rules! say {
    ($($arg:tt)*) => { eprintln!("safe-ai proxy: tap: {}", format!($($arg)*)) };
}

#[derive(Clone, Copy)]
enum Input {
    Squid,
    Dnsmasq,
}

/// Opens a named pipe for reading without waiting for a writer, and without ever seeing
/// an end of file when a writer closes it (Squid reopens its log on reconfigure): opened
/// read-write, as `cat <>pipe` does.
fn open_pipe(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

/// The events file, `FILE` then `FILE.1`: when `FILE` would pass half the cap, it
/// becomes `FILE.1` (replacing the previous one) and a new `FILE` starts, so the two
/// together stay under the cap.
struct Rotating {
    path: PathBuf,
    file: BufWriter<File>,
    size: u64,
    half: u64,
}

/// The size of each buffer: a pipe's reads, the file's and stdout's writes.
const BUFFER: usize = 64 << 10;

impl Rotating {
    fn open(path: &Path, max_bytes: u64) -> std::io::Result<Rotating> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Rotating {
            path: path.to_owned(),
            file: BufWriter::with_capacity(BUFFER, file),
            size,
            half: (max_bytes / 2).max(1),
        })
    }

    fn write(&mut self, line: &str) -> std::io::Result<()> {
        let len = line.len() as u64 + 1;
        if self.size > 0 && self.size + len > self.half {
            self.file.flush()?;
            let mut old = self.path.clone().into_os_string();
            old.push(".1");
            std::fs::rename(&self.path, &old)?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.file = BufWriter::with_capacity(BUFFER, file);
            self.size = 0;
        }
        // Whole lines into the buffer (one slice each): a write of the buffer never ends
        // inside an event, so a reader never sees half of one.
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.file.write_all(&buf)?;
        self.size += len;
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// The allowlist as the proxy renders it, re-read when the file changes (at most once a
/// second): a reload that the proxy refused keeps the previous one, as the proxy does.
struct Policy {
    args: AllowlistArgs,
    allowlist: Allowlist,
    seen: Option<(SystemTime, u64)>,
    checked_at: Instant,
}

impl Policy {
    fn load(args: AllowlistArgs) -> Policy {
        let mut p = Policy {
            args,
            allowlist: Allowlist::default(),
            seen: None,
            checked_at: Instant::now(),
        };
        p.reload();
        p
    }

    fn stamp(&self) -> Option<(SystemTime, u64)> {
        let path = crate::allowlist_path(&self.args);
        let m = std::fs::metadata(path).ok()?;
        Some((m.modified().ok()?, m.len()))
    }

    fn reload(&mut self) {
        self.seen = self.stamp();
        match check(&crate::sources(&self.args)) {
            Ok(checked) => self.allowlist = checked.allowlist,
            Err(_) => {
                say!("the allowlist does not check: events keep the entries of the previous one")
            }
        }
    }

    fn current(&mut self) -> &Allowlist {
        if self.checked_at.elapsed() >= Duration::from_secs(1) {
            self.checked_at = Instant::now();
            if self.stamp() != self.seen {
                self.reload();
            }
        }
        &self.allowlist
    }
}

/// Where events go: stdout and the file, one writer for both readers.
struct Sink {
    out: BufWriter<std::io::Stdout>,
    file: Option<Rotating>,
}

impl Sink {
    fn write(&mut self, line: &str) -> Result<(), Failed> {
        if let Some(Err(e)) = self.file.as_mut().map(|f| f.write(line)) {
            give_up(&mut self.file, &e);
        }
        writeln!(self.out, "{line}").map_err(|_| Failed)
    }

    fn flush(&mut self) -> Result<(), Failed> {
        if let Some(Err(e)) = self.file.as_mut().map(Rotating::flush) {
            give_up(&mut self.file, &e);
        }
        self.out.flush().map_err(|_| Failed)
    }
}

/// Runs until a pipe cannot be read or stdout cannot be written.
///
/// Each pipe has its own thread, which parses, attributes and writes its lines itself
/// (no hand-off per line), and flushes when it has consumed everything one read brought:
/// a burst of requests costs a few writes, not two per line.
pub fn run(tap: Tap) -> Result<(), Failed> {
    let open = |p: &Path| {
        open_pipe(p).map_err(|e| {
            say!("cannot open {}: {e}", p.display());
            Failed
        })
    };
    let (squid_pipe, dns_pipe) = (open(&tap.squid)?, open(&tap.dnsmasq)?);
    if let Some(dir) = tap.file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // Without its file the log still reaches stdout: a missing log is no reason to stop
    // the proxy (and with it the sandbox's egress).
    let file = Rotating::open(&tap.file, tap.max_bytes)
        .map_err(|e| {
            say!(
                "cannot open {}: {e}; events go to stdout only (`safeai logs` has none)",
                tap.file.display()
            );
        })
        .ok();
    let sink = Arc::new(Mutex::new(Sink {
        out: BufWriter::with_capacity(BUFFER, std::io::stdout()),
        file,
    }));
    let (done, ended) = mpsc::channel::<()>();
    for (from, pipe) in [(Input::Squid, squid_pipe), (Input::Dnsmasq, dns_pipe)] {
        let (sink, done, args) = (Arc::clone(&sink), done.clone(), tap.allowlist.clone());
        std::thread::spawn(move || {
            let _ = read(from, pipe, &sink, Policy::load(args));
            let _ = done.send(());
        });
    }
    let _ = ended.recv();
    if let Ok(mut sink) = sink.lock() {
        let _ = sink.flush();
    }
    say!("a log pipe closed, or stdout failed: stopping");
    Err(Failed)
}

/// One pipe's loop.
fn read(from: Input, pipe: File, sink: &Mutex<Sink>, mut policy: Policy) -> Result<(), Failed> {
    let mut r = BufReader::with_capacity(BUFFER, pipe);
    let mut dns = dnsmasq::Parser::new();
    while let Some(bytes) = read_lines(&mut r) {
        let mut lines = Vec::new();
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let line = String::from_utf8_lossy(line);
            let line = line.trim_end_matches('\r');
            let event = match from {
                Input::Squid => match squid::parse(line) {
                    Ok(squid::Parsed::Event(e)) => Some(*e),
                    Ok(squid::Parsed::NoHost) => None,
                    Err(e) => {
                        say!(
                            "not a line of Squid's safeai format ({e}): {}",
                            Escaped(line)
                        );
                        None
                    }
                },
                Input::Dnsmasq => match dns.feed(line, Timestamp::now()) {
                    dnsmasq::Line::Event(e) => Some(*e),
                    dnsmasq::Line::Query => None,
                    dnsmasq::Line::Other => {
                        eprintln!("{}", Escaped(line));
                        None
                    }
                },
            };
            if let Some(mut event) = event {
                attribute(&mut event, policy.current());
                lines.push(event.to_line());
            }
        }
        let mut sink = sink.lock().map_err(|_| Failed)?;
        for line in &lines {
            sink.write(line)?;
        }
        if r.buffer().is_empty() {
            sink.flush()?;
        }
    }
    Err(Failed)
}

/// Every whole line the pipe has for us now (one read, however many lines it brings: one
/// message to the writer per read, not per line), or `None` at the end.
fn read_lines(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let chunk = r.fill_buf().ok()?;
    if chunk.is_empty() {
        return None;
    }
    let mut lines = Vec::new();
    match chunk.iter().rposition(|&b| b == b'\n') {
        Some(end) => {
            lines.extend_from_slice(&chunk[..=end]);
            r.consume(end + 1);
        }
        // Part of a line: the rest comes with the next reads.
        None => {
            if r.read_until(b'\n', &mut lines).ok()? == 0 {
                return None;
            }
        }
    }
    Some(lines)
}

/// Drops the file after a failed write, saying so once; stdout goes on.
fn give_up(file: &mut Option<Rotating>, e: &std::io::Error) {
    if let Some(f) = file.take() {
        say!(
            "cannot write {}: {e}; events go to stdout only from now on",
            f.path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_come_in_whole_lines() {
        // A small buffer, so that a line arrives in parts.
        let mut r = BufReader::with_capacity(8, &b"a=1\nb=22\nccccccccccccc\nd"[..]);
        let mut got = Vec::new();
        while let Some(lines) = read_lines(&mut r) {
            got.push(String::from_utf8(lines).unwrap());
        }
        assert_eq!(got, ["a=1\n", "b=22\n", "ccccccccccccc\n", "d"]);
    }

    #[test]
    fn the_file_and_its_rotation_stay_under_the_cap() {
        let dir = std::env::temp_dir().join(format!("safeai-tap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        let mut f = Rotating::open(&path, 1000).unwrap();
        let line = "x".repeat(99);
        for _ in 0..100 {
            f.write(&line).unwrap();
        }
        f.flush().unwrap();
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let old = dir.join("events.jsonl.1");
        assert!(
            size(&path) <= 500 && size(&old) <= 500,
            "{} {}",
            size(&path),
            size(&old)
        );
        assert_eq!(size(&old), 500);
        // Whole lines only, in both.
        for p in [&path, &old] {
            let text = std::fs::read_to_string(p).unwrap();
            assert!(text.lines().all(|l| l == line), "{}", p.display());
        }
        // A reopened file goes on from its size.
        drop(f);
        let f = Rotating::open(&path, 1000).unwrap();
        assert_eq!(f.size, size(&path));
    }
}
