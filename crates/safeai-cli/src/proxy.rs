//! `safeai proxy …`: the parts of the proxy container's work that need more than a
//! shell: Squid's helpers, the locked render and swap of the live config, the SSH
//! forwarder's address. Not for the host: the proxy image calls them.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use safeai_core::live::{InstallError, LiveDir, default_gateway, squid_parse_accepts};
use safeai_core::secrets::Secrets;

use crate::{AllowlistArgs, Failed};

/// One of Squid's external ACL helpers: one answer per line from `judge`, flushed at
/// once (Squid waits for it), until Squid closes the pipe.
pub fn helper(name: &str, judge: fn(&str) -> String) -> Result<(), Failed> {
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lines() {
        let line = line.map_err(|e| {
            eprintln!("safeai proxy {name}: cannot read from Squid: {e}");
            Failed
        })?;
        writeln!(stdout, "{}", judge(&line))
            .and_then(|()| stdout.flush())
            .map_err(|e| {
                eprintln!("safeai proxy {name}: cannot answer Squid: {e}");
                Failed
            })?;
    }
    Ok(())
}

/// The supervisor's messages, as it writes its own.
macro_rules! say {
    ($($arg:tt)*) => { eprintln!("safe-ai proxy: {}", format!($($arg)*)) };
}

/// Where `safeai proxy render|reload` reads and writes.
#[derive(Debug, clap::Args)]
pub struct LiveArgs {
    /// The proxy's runtime directory
    #[arg(long, value_name = "DIR")]
    run_dir: PathBuf,
    /// The directory of the credentials' secrets, one file per secret
    #[arg(long, value_name = "DIR", default_value = "/etc/safe-ai/secrets")]
    secrets: PathBuf,
    /// Where the sandbox reads the credentials' variables (placeholders only)
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/var/lib/safe-ai/policy/sandbox.env"
    )]
    sandbox_env: PathBuf,
    /// Also write the sandbox's policy file (policy.txt) into DIR, once the config is
    /// current
    #[arg(long, value_name = "DIR")]
    policy_dir: Option<PathBuf>,
    #[command(flatten)]
    allowlist: AllowlistArgs,
}

/// Renders the proxy's live config (squid.conf, dnsmasq.conf, dnsmasq.servers, the
/// error pages) into a fresh directory under `run_dir`, has Squid parse it, and swaps it
/// in (`live::LiveDir::install`: one lock, one rename). With `reload`, tells Squid and
/// dnsmasq while still holding the lock. A refused render changes nothing; so does a
/// credential whose secret is missing from `secrets_dir` (fail closed: at start, the
/// proxy does not run). Then, still under the lock, the sandbox's policy file goes into
/// `policy_dir`, replaced by one rename, so that it says what the running config does.
pub fn install(args: &LiveArgs, reload: bool) -> Result<(), Failed> {
    let LiveArgs {
        run_dir,
        secrets: secrets_dir,
        sandbox_env,
        policy_dir,
        allowlist,
    } = args;
    let (run_dir, policy_dir) = (run_dir.as_path(), policy_dir.as_deref());
    let live = LiveDir::new(run_dir);
    let installed = live.install(|dir| {
        let checked = crate::load(allowlist)?;
        let stack = crate::stack()?;
        let names = checked
            .allowlist
            .credentials()
            .iter()
            .map(|c| &c.value.secret);
        let secrets = Secrets::load(secrets_dir, names).map_err(|errors| {
            for e in errors {
                say!("{e}");
            }
            Failed
        })?;
        let settings = &stack.proxy_settings;
        let mut artifacts = safeai_core::render_all(&stack, &checked.allowlist);
        artifacts
            .retain(|name, _| ["dnsmasq.conf", safeai_core::DNSMASQ_SERVERS_FILE].contains(name));
        artifacts.insert(
            "squid.conf",
            safeai_core::render_squid_with(settings, &checked.allowlist, &secrets),
        );
        let policy = safeai_core::render_sandbox_policy(&stack.proxy_settings, &checked.allowlist);
        crate::write(&artifacts, dir, false)?;
        let conf = dir.join("squid.conf");
        if matches!(&secrets, Secrets::Loaded(map) if !map.is_empty()) {
            keep_from_others(&conf)?;
        }
        let plan = safeai_core::tls_plan(settings, &checked.allowlist);
        crate::write(
            &safeai_core::render_error_pages(&plan),
            &dir.join("errors"),
            false,
        )?;
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
        // Squid quotes the lines it rejects: never a secret in the proxy's log.
        let output = secrets.redact(&format!(
            "{}{}",
            String::from_utf8_lossy(&parse.stdout),
            String::from_utf8_lossy(&parse.stderr)
        ));
        if !squid_parse_accepts(parse.status.success(), &output) {
            say!("squid rejected the rendered squid.conf:");
            eprint!("{output}");
            return Err(Failed);
        }
        Ok((
            checked.allowlist.len(),
            safeai_core::decrypt::sandbox_env_file(&checked.allowlist),
            policy,
        ))
    });
    let (_lock, (domains, env_file, policy)) = match installed {
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
    // Under the lock still: the sandbox's sessions read the variables from here.
    if let (Some(dir), Some(name)) = (sandbox_env.parent(), sandbox_env.file_name()) {
        let name = name.to_string_lossy();
        crate::write(
            &std::collections::BTreeMap::from([(name, env_file)]),
            dir,
            false,
        )?;
    }
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

/// A squid.conf that holds secrets: readable by root and Squid's group only, not by the
/// other users of the proxy (dnsmasq, the SSH forwarder's `nobody`).
fn keep_from_others(conf: &Path) -> Result<(), Failed> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |e: std::io::Error| {
        say!("cannot restrict {}: {e}", conf.display());
        Failed
    };
    let group = std::fs::read_to_string("/etc/group")
        .ok()
        .and_then(|groups| safeai_core::live::group_id(&groups, "proxy"));
    if let Some(gid) = group {
        std::os::unix::fs::chown(conf, Some(0), Some(gid)).map_err(fail)?;
    }
    std::fs::set_permissions(conf, std::fs::Permissions::from_mode(0o640)).map_err(fail)
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
