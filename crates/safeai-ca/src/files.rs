//! Atomic file replacement: a reader (Squid, the sandbox's entrypoint, the next `init`)
//! sees the old file or the new one, never half of one.

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::Error;

/// Writes `contents` to `path` through a temporary file in the same directory: created
/// with `mode` (so a key is never readable by others, not even for a moment), owned by
/// `owner` or else by the owner of the file it replaces, flushed to disk, then renamed
/// over `path`, and the directory flushed so the rename survives a crash.
pub(crate) fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let io = |action: &'static str, at: &Path| {
        let at = at.to_path_buf();
        move |source| Error::Io {
            action,
            path: at,
            source,
        }
    };
    // A leftover from a crashed run of this same pid: create_new below must not fail on it.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("remove", &tmp)(e)),
        _ => {}
    }
    // Replacing a file keeps its owner: `safeai ca rotate` runs as root inside the proxy
    // and must leave files Squid's user can still read.
    let owner = owner.or_else(|| std::fs::metadata(path).ok().map(|m| (m.uid(), m.gid())));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        // The umask may have cleared bits of `mode`; the modes are part of the contract.
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(io("set the mode of", &tmp))?;
        if let Some((uid, gid)) = owner {
            let meta = file.metadata().map_err(io("stat", &tmp))?;
            if (meta.uid(), meta.gid()) != (uid, gid) {
                std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
                    .map_err(io("change the owner of", &tmp))?;
            }
        }
        file.write_all(contents).map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("flush", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io("replace", path))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("flush", dir))
}
