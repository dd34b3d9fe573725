//! `safeai allow`: add domains to the allowlist file as text, so its comments, layout and
//! line endings stay as the user wrote them (the edit itself is
//! `safeai_policy::add_domains`; this module owns the file).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use safeai_policy::{Domain, Escaped, MAX_FILE_BYTES, Source, add_domains, check};

use crate::Failed;

/// Adds each domain not yet allowed, then writes the file in place.
///
/// The proxy sees the file through a bind mount of its inode, which a rename would
/// replace: so the new text goes first into a temporary copy beside the file, is checked
/// there, and only then replaces the original's contents (truncate, write, fsync) on the
/// same inode. An exclusive `flock` on the file is held from the read to the end of the
/// write, so two `safeai allow` runs (and the proxy's reader, which takes a shared lock)
/// never see each other's half-written file.
pub fn allow(domains: &[String], path: &Path) -> Result<(), Failed> {
    let shown = Escaped(&path.display().to_string()).to_string();
    let fail = |what: &str, e: std::io::Error| {
        eprintln!("error: cannot {what} {shown}: {}", Escaped(&e.to_string()));
        Failed
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| fail("open", e))?;
    if !file.metadata().map_err(|e| fail("read", e))?.is_file() {
        eprintln!("error: {shown} is not a regular file\n  = hint: name the allowlist file itself");
        return Err(Failed);
    }
    file.lock().map_err(|e| fail("lock", e))?;
    let mut bytes = Vec::new();
    (&mut file)
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail("read", e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        eprintln!("error: {shown} is larger than {MAX_FILE_BYTES} bytes; nothing was changed");
        return Err(Failed);
    }
    let Ok(text) = String::from_utf8(bytes) else {
        eprintln!("error: {shown} is not UTF-8 text; nothing was changed");
        return Err(Failed);
    };
    let yaml = |text: &str| Source::Yaml {
        name: path.display().to_string(),
        text: text.to_owned(),
    };
    let current = check(&[yaml(&text)]).map_err(|r| {
        eprintln!("{r}");
        Failed
    })?;

    let mut new = Vec::new();
    let mut bad = false;
    for d in domains {
        match Domain::parse(d) {
            Ok(v) if current.allowlist.allows(v.domain.as_str()) => {
                eprintln!("{} is already allowed", v.domain);
            }
            Ok(v) if !new.contains(&v.domain) => new.push(v.domain),
            Ok(_) => {}
            Err(errors) => {
                bad = true;
                for e in errors {
                    eprintln!("error: {e}\n  = hint: {}", e.hint());
                }
            }
        }
    }
    if bad {
        eprintln!("nothing was changed");
        return Err(Failed);
    }
    if new.is_empty() {
        return Ok(());
    }
    let names = new
        .iter()
        .map(Domain::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let edited = add_domains(&path.display().to_string(), &text, &new).map_err(|e| {
        eprintln!("error: {shown}: {e}\n  = hint: add {names} by hand");
        Failed
    })?;

    // The copy: checked as the file it will be, and left behind (with the new text) only
    // if the rewrite below fails half-way.
    let copy = temp_copy(path);
    let copy_shown = Escaped(&copy.display().to_string()).to_string();
    std::fs::write(&copy, &edited)
        .and_then(|()| File::open(&copy)?.sync_all())
        .map_err(|e| {
            eprintln!(
                "error: cannot write {copy_shown}: {}",
                Escaped(&e.to_string())
            );
            Failed
        })?;
    let copy_ok = check(&[Source::File {
        path: copy.clone(),
        required: true,
    }])
    .is_ok_and(|c| new.iter().all(|d| c.allowlist.allows(d.as_str())));
    if !copy_ok {
        let _ = std::fs::remove_file(&copy);
        eprintln!("error: the edited copy of {shown} does not allow {names}; nothing was written");
        return Err(Failed);
    }
    rewrite(&mut file, edited.as_bytes()).map_err(|e| {
        eprintln!(
            "error: cannot write {shown}: {}\n  = hint: the edited file is in {copy_shown}",
            Escaped(&e.to_string())
        );
        Failed
    })?;
    let _ = std::fs::remove_file(&copy);
    drop(file);
    for d in &new {
        eprintln!("added {d} to {shown}");
    }
    Ok(())
}

/// `.NAME.safeai-allow` beside the file: same directory, so same file system.
fn temp_copy(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "allowlist.yaml".into(), |n| n.to_string_lossy());
    path.with_file_name(format!(".{name}.safeai-allow"))
}

/// Replaces the file's contents on its own inode, and waits for the disk.
fn rewrite(file: &mut File, bytes: &[u8]) -> std::io::Result<()> {
    file.rewind()?;
    file.set_len(0)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn scratch(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("safeai-allow-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("allowlist.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn writes_in_place_keeping_the_inode_and_crlf() {
        let path = scratch("inode", "domains:\r\n  - a.com\r\n");
        let before = std::fs::metadata(&path).unwrap().ino();
        assert!(allow(&["b.com".into()], &path).is_ok());
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), before);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "domains:\r\n  - a.com\r\n  - b.com\r\n"
        );
        // No copy left behind.
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn a_refused_edit_writes_nothing() {
        let text = "domains: *x\n";
        let path = scratch("refused", text);
        assert!(allow(&["b.com".into()], &path).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let text = "{}\n";
        let path = scratch("refused-map", text);
        assert!(allow(&["b.com".into()], &path).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn concurrent_runs_lose_no_domain() {
        let path = scratch("concurrent", "domains:\n  - a.com\n");
        let names: Vec<String> = (0..8).map(|i| format!("n{i}.example.com")).collect();
        std::thread::scope(|s| {
            for n in &names {
                let path = &path;
                s.spawn(move || assert!(allow(std::slice::from_ref(n), path).is_ok()));
            }
        });
        let checked = check(&[Source::File {
            path: path.clone(),
            required: true,
        }])
        .unwrap();
        for n in &names {
            assert!(checked.allowlist.allows(n), "{n} lost");
        }
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let path = scratch("fifo", "");
        std::fs::remove_file(&path).unwrap();
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&path)
                .status()
                .unwrap()
                .success()
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        std::thread::spawn(move || {
            let _ = tx.send(allow(&["b.com".into()], &p).is_err());
        });
        assert!(rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap());
    }
}
