//! The proxy's live configuration directory: each render in a directory of its own
//! under `configs/`, `current` a symlink to the one in use, replaced by one atomic
//! rename, every change made under one lock (`reload.lock`), so that concurrent reloads
//! run one after the other and a reader never sees a half-made or missing config.
//!
//! The files Squid and dnsmasq open (`squid.conf`, `errors`, …) are links through
//! `current`, so they always name one complete config.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

const CONFIGS: &str = "configs";
const CURRENT: &str = "current";
const NEXT_LINK: &str = ".current.next";
const LOCK: &str = "reload.lock";

/// The runtime directory that holds the live config (`/run/safe-ai` in the proxy).
#[derive(Clone, Debug)]
pub struct LiveDir {
    root: PathBuf,
}

/// The reload lock, held until dropped: nothing else renders or swaps meanwhile.
#[derive(Debug)]
pub struct LiveLock {
    _file: File,
}

/// Why [`LiveDir::install`] changed nothing.
#[derive(Debug)]
pub enum InstallError<E> {
    /// The render (or its validation) refused; the running config is unchanged.
    Refused(E),
    /// The runtime directory could not be used (locking, creating, renaming).
    Io(io::Error),
}

impl LiveDir {
    /// The live config under `root`.
    pub fn new(root: impl Into<PathBuf>) -> LiveDir {
        LiveDir { root: root.into() }
    }

    /// The `current` link (what the live files' links go through).
    pub fn current_link(&self) -> PathBuf {
        self.root.join(CURRENT)
    }

    /// The directory `current` points to, if there is one.
    pub fn current(&self) -> Option<PathBuf> {
        let target = fs::read_link(self.current_link()).ok()?;
        Some(self.root.join(target))
    }

    /// Waits for the reload lock and takes it.
    ///
    /// # Errors
    ///
    /// The lock file cannot be created or locked.
    pub fn lock(&self) -> io::Result<LiveLock> {
        fs::create_dir_all(&self.root)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(LOCK))?;
        file.lock()?;
        Ok(LiveLock { _file: file })
    }

    /// Under the lock: renders into a fresh directory with `prepare` (which also
    /// validates), then makes it `current` in one rename and removes configs older than
    /// the one it replaced. Returns the lock, still held, with `prepare`'s value, so the
    /// caller can tell the running programs while no other reload runs.
    ///
    /// At the first install there is no running config to protect: `current` points at
    /// the fresh directory before `prepare` runs (Squid's parser wants the error
    /// directory the live links name), and is removed again if `prepare` refuses.
    ///
    /// # Errors
    ///
    /// [`InstallError::Refused`] with `prepare`'s error (the fresh directory is removed
    /// and `current` is what it was), or [`InstallError::Io`].
    pub fn install<T, E>(
        &self,
        prepare: impl FnOnce(&Path) -> Result<T, E>,
    ) -> Result<(LiveLock, T), InstallError<E>> {
        let lock = self.lock().map_err(InstallError::Io)?;
        let fresh = self.fresh(&lock).map_err(InstallError::Io)?;
        let first = self.current().is_none();
        if first {
            self.point_current_at(&lock, &fresh)
                .map_err(InstallError::Io)?;
        }
        match prepare(&fresh) {
            Ok(value) => {
                let previous = self.current();
                if !first {
                    self.point_current_at(&lock, &fresh)
                        .map_err(InstallError::Io)?;
                }
                self.prune(&lock, &[Some(fresh), previous])
                    .map_err(InstallError::Io)?;
                Ok((lock, value))
            }
            Err(e) => {
                if first {
                    let _ = fs::remove_file(self.current_link());
                }
                let _ = fs::remove_dir_all(&fresh);
                Err(InstallError::Refused(e))
            }
        }
    }

    /// A new, empty directory under `configs/`.
    fn fresh(&self, _lock: &LiveLock) -> io::Result<PathBuf> {
        let configs = self.root.join(CONFIGS);
        fs::create_dir_all(&configs)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        for n in 0u32.. {
            let dir = configs.join(format!("{nanos:x}-{n}"));
            match fs::create_dir(&dir) {
                Ok(()) => return Ok(dir),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("u32 names run out")
    }

    /// `current` → `dir`, in one rename of a new link over the old one.
    fn point_current_at(&self, _lock: &LiveLock, dir: &Path) -> io::Result<()> {
        let name = dir
            .file_name()
            .ok_or_else(|| io::Error::other("a config directory without a name"))?;
        let next = self.root.join(NEXT_LINK);
        match fs::remove_file(&next) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::os::unix::fs::symlink(Path::new(CONFIGS).join(name), &next)?;
        fs::rename(&next, self.current_link())
    }

    /// Removes every directory under `configs/` but `keep`.
    fn prune(&self, _lock: &LiveLock, keep: &[Option<PathBuf>]) -> io::Result<()> {
        for entry in fs::read_dir(self.root.join(CONFIGS))? {
            let path = entry?.path();
            if !keep.iter().flatten().any(|k| *k == path) {
                fs::remove_dir_all(&path)?;
            }
        }
        Ok(())
    }
}

/// The numeric id of group `name` in the text of `/etc/group`.
pub fn group_id(etc_group: &str, name: &str) -> Option<u32> {
    etc_group.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

/// Whether `squid -k parse` accepted a config, from its exit status and output: Squid
/// reports some fatal problems with exit status 0, so any `FATAL` or `ERROR` refuses.
pub fn squid_parse_accepts(success: bool, output: &str) -> bool {
    success && !output.contains("FATAL") && !output.contains("ERROR")
}

/// The gateway of the IPv4 default route, from `/proc/net/route` (addresses there are
/// the kernel's 32-bit words in host byte order, written in hex), and its interface.
pub fn default_gateway(proc_net_route: &str) -> Option<(String, std::net::Ipv4Addr)> {
    proc_net_route.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (iface, dest, gateway, mask) = (f.first()?, f.get(1)?, f.get(2)?, f.get(7)?);
        if *dest != "00000000" || *mask != "00000000" {
            return None;
        }
        let word = u32::from_str_radix(gateway, 16).ok()?;
        let ip = std::net::Ipv4Addr::from(word.to_ne_bytes());
        (!ip.is_unspecified()).then(|| ((*iface).to_owned(), ip))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    /// A fresh, empty directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("safeai-live-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(dir: &Path, text: &str) -> Result<(), String> {
        fs::write(dir.join("squid.conf"), text).map_err(|e| e.to_string())
    }

    /// What the live link serves, read the way Squid does: through `current/`.
    fn live(root: &Path) -> String {
        fs::read_to_string(root.join("current/squid.conf")).unwrap()
    }

    fn configs(root: &Path) -> usize {
        fs::read_dir(root.join(CONFIGS)).unwrap().count()
    }

    #[test]
    fn install_swaps_and_keeps_the_previous_config_only() {
        let root = scratch("swap");
        let d = LiveDir::new(&root);
        for n in 0..4 {
            let (_lock, ()) = d.install(|dir| write(dir, &format!("v{n}"))).unwrap();
            assert_eq!(live(&root), format!("v{n}"));
            assert!(fs::symlink_metadata(d.current_link()).unwrap().is_symlink());
            assert_eq!(configs(&root), (n + 1).min(2));
        }
        assert!(!root.join(NEXT_LINK).exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_refused_render_leaves_the_running_config_and_nothing_behind() {
        let root = scratch("refused");
        let d = LiveDir::new(&root);
        let _ = d.install(|dir| write(dir, "good")).unwrap();
        let before = d.current();
        let err = d
            .install(|dir| {
                write(dir, "half")?;
                Err::<(), _>("squid rejected it".to_owned())
            })
            .unwrap_err();
        assert!(matches!(err, InstallError::Refused(e) if e == "squid rejected it"));
        assert_eq!(d.current(), before);
        assert_eq!(live(&root), "good");
        assert_eq!(configs(&root), 1);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn at_the_first_install_current_is_there_for_validation_and_gone_if_refused() {
        let root = scratch("first");
        let d = LiveDir::new(&root);
        let err = d
            .install(|dir| {
                // Squid's parser sees the error directory through the live link.
                assert_eq!(d.current().as_deref(), Some(dir));
                Err::<(), _>("invalid")
            })
            .unwrap_err();
        assert!(matches!(err, InstallError::Refused("invalid")));
        assert!(fs::symlink_metadata(d.current_link()).is_err());
        assert_eq!(configs(&root), 0);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn concurrent_installs_run_one_at_a_time_and_readers_always_see_a_whole_config() {
        let root = scratch("concurrent");
        let d = LiveDir::new(&root);
        let _ = d.install(|dir| write(dir, "start")).unwrap();
        let (inside, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let done = Arc::new(AtomicBool::new(false));
        // A reader that opens the live file through the link the whole time.
        let reader = {
            let (root, done) = (root.clone(), done.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !done.load(Ordering::SeqCst) {
                    let text = fs::read_to_string(root.join("current/squid.conf"))
                        .expect("the live config is always there");
                    assert!(text == "start" || text.starts_with("ok "), "{text:?}");
                    reads += 1;
                }
                reads
            })
        };
        let workers: Vec<_> = (0..8)
            .map(|n| {
                let (d, inside, most) = (d.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    d.install(|dir| {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        // Half a file first: no reader may ever see it.
                        fs::write(dir.join("squid.conf"), "half").unwrap();
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        let result = if n % 3 == 0 {
                            Err(format!("invalid {n}"))
                        } else {
                            write(dir, &format!("ok {n}"))
                        };
                        inside.fetch_sub(1, Ordering::SeqCst);
                        result
                    })
                    .map(|_| ())
                })
            })
            .collect();
        let results: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        done.store(true, Ordering::SeqCst);
        assert!(reader.join().unwrap() > 0);
        assert_eq!(most.load(Ordering::SeqCst), 1, "two renders ran at once");
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 3);
        assert!(live(&root).starts_with("ok "));
        assert!(configs(&root) <= 2);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn squid_parse_verdicts_on_real_output() {
        let ok = "2026/12/02 12:59:35| Processing: visible_hostname x\n\
                  2026/12/02 12:59:35| Initializing https:// proxy context\n\
                  2026/12/02 12:59:35| Requiring client certificates.\n";
        assert!(squid_parse_accepts(true, ok));
        assert!(!squid_parse_accepts(false, ok));
        // Squid 5 exits 0 after some of these.
        for bad in [
            "2026/12/02 13:00:01| ERROR: '10.0.0.0/8' is a subnetwork of '10.0.0.0/8'\n",
            "2026/12/02 13:00:01| FATAL: Bungled /run/safe-ai/next/squid.conf line 6: http_port\n",
        ] {
            assert!(!squid_parse_accepts(true, &format!("{ok}{bad}")), "{bad}");
        }
    }

    #[test]
    fn the_default_gateway_from_proc_net_route() {
        // From a container on two networks (the default route is the external one's).
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT       \n\
                     eth0\t00001EAC\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0       \n\
                     eth1\t00000000\t010011AC\t0003\t0\t0\t0\t00000000\t0\t0\t0       \n\
                     eth1\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0       \n";
        let (iface, gw) = default_gateway(table).unwrap();
        assert_eq!(iface, "eth1");
        if cfg!(target_endian = "little") {
            assert_eq!(gw, std::net::Ipv4Addr::new(172, 17, 0, 1));
        }
        // No default route (a container on an internal network only).
        let header = table.lines().next().unwrap();
        assert_eq!(default_gateway(header), None);
        assert_eq!(default_gateway(""), None);
    }
}
