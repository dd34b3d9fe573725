//! `safeai proxy …`: the parts of the proxy container's work that need more than a
//! shell: Squid's helpers, the locked render and swap of the live config, the SSH
//! forwarder's address. Not for the host: the proxy image calls them.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::Command;

use safeai_core::live::{InstallError, LiveDir, default_gateway, squid_parse_accepts};

use crate::{AllowlistArgs, Failed};

/// Squid's external ACL helper for the SNI check: one answer per line, flushed at once
/// (Squid waits for it), until Squid closes the pipe.
pub fn sni_check() -> Result<(), Failed> {
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lines() {
        let line = line.map_err(|e| {
            eprintln!("safeai proxy sni-check: cannot read from Squid: {e}");
            Failed
        })?;
        let answer = safeai_core::tls::sni_check(&line);
        writeln!(stdout, "{answer}")
            .and_then(|()| stdout.flush())
            .map_err(|e| {
                eprintln!("safeai proxy sni-check: cannot answer Squid: {e}");
                Failed
            })?;
    }
    Ok(())
}

/// The supervisor's messages, as it writes its own.
macro_rules! say {
    ($($arg:tt)*) => { eprintln!("safe-ai proxy: {}", format!($($arg)*)) };
}

/// Renders the proxy's live config (squid.conf, dnsmasq.conf, dnsmasq.servers, the
/// error pages) into a fresh directory under `run_dir`, has Squid parse it, and swaps it
/// in (`live::LiveDir::install`: one lock, one rename). With `reload`, tells Squid and
/// dnsmasq while still holding the lock. Then, still under the lock, the sandbox's policy
/// file goes into `policy_dir`, replaced by one rename, so that it says what the running
/// config does. A refused render changes nothing, the policy file included.
pub fn install(
    run_dir: &Path,
    policy_dir: Option<&Path>,
    allowlist: &AllowlistArgs,
    reload: bool,
) -> Result<(), Failed> {
    let live = LiveDir::new(run_dir);
    let installed = live.install(|dir| {
        let checked = crate::load(allowlist)?;
        let stack = crate::stack()?;
        let policy = safeai_core::render_sandbox_policy(&stack.proxy_settings, &checked.allowlist);
        let mut artifacts = safeai_core::render_all(&stack, &checked.allowlist);
        artifacts.retain(|name, _| {
            [
                "squid.conf",
                "dnsmasq.conf",
                safeai_core::DNSMASQ_SERVERS_FILE,
            ]
            .contains(name)
        });
        crate::write(&artifacts, dir, false)?;
        crate::write(
            &safeai_core::render_error_pages(),
            &dir.join("errors"),
            false,
        )?;
        let conf = dir.join("squid.conf");
        let parse = Command::new("squid")
            .arg("-k")
            .arg("parse")
            .arg("-f")
            .arg(&conf)
            .output()
            .map_err(|e| {
                say!("cannot run squid to check the config: {e}");
                Failed
            })?;
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&parse.stdout),
            String::from_utf8_lossy(&parse.stderr)
        );
        if !squid_parse_accepts(parse.status.success(), &output) {
            say!("squid rejected the rendered squid.conf:");
            eprint!("{output}");
            return Err(Failed);
        }
        Ok((checked.allowlist.len(), policy))
    });
    let (_lock, (domains, policy)) = match installed {
        Ok(done) => done,
        Err(InstallError::Refused(Failed)) => {
            if reload {
                say!("reload refused: the running configuration is unchanged");
            }
            return Err(Failed);
        }
        Err(InstallError::Io(e)) => {
            say!("cannot swap the config in {}: {e}", run_dir.display());
            return Err(Failed);
        }
    };
    // The file only informs the sandbox: one that cannot be written is an error to
    // report (a reload then exits non-zero), never a reason to stop enforcing.
    let write_policy_file = || match policy_dir.map(|d| (d, write_policy(d, &policy))) {
        Some((dir, Err(e))) => {
            say!(
                "the new config is in place but the sandbox's policy file in {} is not: {e}",
                dir.display()
            );
            false
        }
        _ => true,
    };
    if !reload {
        write_policy_file();
        say!("allowlist: {domains} domains");
        return Ok(());
    }
    // The new config is live for every file opened from now on; the running programs
    // re-read theirs when told.
    let squid = Command::new("squid")
        .arg("-k")
        .arg("reconfigure")
        .arg("-f")
        .arg(run_dir.join("squid.conf"))
        .status();
    let pid_file = run_dir.join("dnsmasq.pid");
    let dnsmasq = std::fs::read_to_string(&pid_file)
        .map(|pid| Command::new("kill").args(["-HUP", pid.trim()]).status());
    let mut told = true;
    if !matches!(squid, Ok(s) if s.success()) {
        say!("the new config is in place but Squid did not take it: {squid:?}");
        told = false;
    }
    if !matches!(dnsmasq, Ok(Ok(s)) if s.success()) {
        say!(
            "the new config is in place but dnsmasq was not told ({}): {dnsmasq:?}",
            pid_file.display()
        );
        told = false;
    }
    // Written once Squid and dnsmasq were told: it says what they enforce.
    let written = write_policy_file();
    if told && written {
        say!("reloaded: {domains} domains");
        Ok(())
    } else {
        Err(Failed)
    }
}

/// Replaces `dir/policy.txt` by one rename: a reader in the sandbox sees the old file or
/// the new one, never half of one. World-readable: it holds no secret.
fn write_policy(dir: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;

    let file = dir.join(safeai_core::sandbox_policy::POLICY_FILE);
    let next = dir.join(".policy.txt.next");
    std::fs::write(&next, text)?;
    std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&next, &file)
}

/// Prints the proxy's address on the network of its default route: the external
/// network, where Docker sends the host's published SSH port (the internal network has
/// no gateway). The SSH forwarder listens there only.
pub fn ssh_address() -> Result<(), Failed> {
    let routes = std::fs::read_to_string("/proc/net/route").map_err(|e| {
        say!("cannot read /proc/net/route: {e}");
        Failed
    })?;
    let Some((iface, gateway)) = default_gateway(&routes) else {
        say!("no default route: the proxy is not on the external network");
        return Err(Failed);
    };
    // Connecting a UDP socket sends nothing: it only asks the kernel for the route, and
    // so for the address that faces the gateway.
    let local = std::net::UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| s.connect((gateway, 9)).map(|()| s))
        .and_then(|s| s.local_addr())
        .map_err(|e| {
            say!("no address toward the gateway {gateway} on {iface}: {e}");
            Failed
        })?;
    println!("{}", local.ip());
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_policy_file_is_replaced_whole_and_world_readable() {
        let dir = std::env::temp_dir().join(format!("safeai-policy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("policy.txt");
        write_policy(&dir, "one\n").unwrap();
        // A reader holding the old file keeps reading the old text.
        let held = std::fs::File::open(&file).unwrap();
        write_policy(&dir, "two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "two\n");
        assert_eq!(std::io::read_to_string(held).unwrap(), "one\n");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["policy.txt"]);
        assert!(write_policy(&dir.join("missing"), "x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
