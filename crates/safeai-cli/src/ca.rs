//! `safeai ca`: the stack's certificate authority. `init` and `rotate --dir` run inside
//! the proxy on its own CA volume; `show` and `rotate` without `--dir` reach the running
//! stack of the current directory through `docker compose`.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Subcommand;
use safeai_ca::{CERT_FILE, CaDir, CaInfo, InitOutcome, PROXY_CA_DIR, PROXY_CA_PUBLIC_DIR};

use crate::{Failed, print};

pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the CA is missing, invalid or cannot be written (the error names the file), or a
     `docker compose` command failed
  2  usage error";

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create the CA in DIR if there is none, otherwise check the one there and keep it
    ///
    /// The proxy runs this at every start. A CA that is half-written, corrupt or expired
    /// is an error and is left as it is: replace it with `safeai ca rotate`.
    #[command(after_help = EXIT_CODES)]
    Init {
        /// The CA directory (the private key lives here: the proxy's own volume)
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Replace the CA with a new one, keeping the old certificate as ca.previous.crt
    ///
    /// Without --dir, in the running stack of the current directory: the proxy makes the
    /// new CA, then the proxy and the sandbox restart to use it (open connections and SSH
    /// sessions are dropped).
    #[command(after_help = EXIT_CODES)]
    Rotate {
        /// Rotate the CA in this directory directly (what runs inside the proxy)
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Print the CA certificate: subject, validity, SHA-256 fingerprint and PEM
    #[command(after_help = EXIT_CODES)]
    Show {
        /// Read the CA in this directory [default: the running stack's, through `docker
        /// compose exec`]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct WriteArgs {
    /// Also write the certificate (never the key) as ca.crt into DIR2, the directory the
    /// sandbox trusts
    #[arg(long, value_name = "DIR2", requires = "dir")]
    export: Option<PathBuf>,
    /// Give the files this numeric owner and group, such as Squid's user (otherwise a
    /// replaced file keeps its owner)
    #[arg(long, value_name = "UID:GID", value_parser = parse_owner, requires = "dir")]
    owner: Option<(u32, u32)>,
}

fn parse_owner(s: &str) -> Result<(u32, u32), String> {
    s.split_once(':')
        .and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)))
        .ok_or_else(|| format!("`{s}` is not UID:GID; write numbers, such as 13:13"))
}

pub fn run(command: CaCommand) -> Result<(), Failed> {
    match command {
        CaCommand::Init { dir, write } => {
            let ca = ca_dir(dir, &write);
            let (verb, info) = match ca.init().map_err(fail)? {
                InitOutcome::Created(info) => ("created", info),
                InitOutcome::Existing(info) => ("kept", info),
            };
            export(&ca, &write)?;
            eprintln!("safe-ai: stack CA {verb}: {}", info.summary());
            Ok(())
        }
        CaCommand::Rotate {
            dir: Some(dir),
            write,
        } => {
            let ca = ca_dir(dir, &write);
            let info = ca.rotate().map_err(fail)?;
            export(&ca, &write)?;
            eprintln!("safe-ai: stack CA rotated: {}", info.summary());
            Ok(())
        }
        CaCommand::Rotate { dir: None, .. } => rotate_stack(),
        CaCommand::Show { dir: Some(dir) } => show(&CaDir::new(dir).load().map_err(fail)?),
        CaCommand::Show { dir: None } => show(&stack_cert()?),
    }
}

fn ca_dir(dir: PathBuf, write: &WriteArgs) -> CaDir {
    let ca = CaDir::new(dir);
    match write.owner {
        Some((uid, gid)) => ca.with_owner(uid, gid),
        None => ca,
    }
}

fn export(ca: &CaDir, write: &WriteArgs) -> Result<(), Failed> {
    match &write.export {
        Some(to) => ca.export_cert(to).map(drop).map_err(fail),
        None => Ok(()),
    }
}

fn fail(e: safeai_ca::Error) -> Failed {
    eprintln!("error: {e}");
    Failed
}

fn show(info: &CaInfo) -> Result<(), Failed> {
    print(&format!("{info}\n\n{}", info.cert_pem))
}

/// The command lines of `safeai ca rotate` on the running stack, in order: rotate inside
/// the proxy (exporting the new certificate), then restart the proxy (Squid loads the CA
/// at start and caches the certificates it minted with the old one) and the sandbox
/// (its entrypoint builds the trust bundle at start).
fn stack_rotate_commands() -> [Vec<String>; 2] {
    let argv = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect();
    [
        argv(&[
            "docker",
            "compose",
            "exec",
            "-T",
            "proxy",
            "safeai",
            "ca",
            "rotate",
            "--dir",
            PROXY_CA_DIR,
            "--export",
            PROXY_CA_PUBLIC_DIR,
        ]),
        argv(&["docker", "compose", "restart", "proxy", "sandbox"]),
    ]
}

/// Where the running stack's exported certificate is, as `show` names it in errors.
fn stack_cert_path() -> PathBuf {
    Path::new(PROXY_CA_PUBLIC_DIR).join(CERT_FILE)
}

fn stack_show_command() -> Vec<String> {
    let path = stack_cert_path();
    ["docker", "compose", "exec", "-T", "proxy", "cat"]
        .iter()
        .map(|a| (*a).to_owned())
        .chain([path.display().to_string()])
        .collect()
}

fn rotate_stack() -> Result<(), Failed> {
    eprintln!(
        "safe-ai: rotating the stack CA, then restarting the proxy and the sandbox: open \
         connections and SSH sessions will be dropped"
    );
    let [rotate, restart] = stack_rotate_commands();
    if !run_status(&rotate)? {
        eprintln!("error: the proxy did not rotate its CA (see above); nothing was restarted");
        return Err(Failed);
    }
    if !run_status(&restart)? {
        eprintln!(
            "error: the CA was rotated but the restart failed (see above); until `docker \
             compose restart proxy sandbox` succeeds, the proxy signs with the old CA"
        );
        return Err(Failed);
    }
    Ok(())
}

fn stack_cert() -> Result<CaInfo, Failed> {
    let argv = stack_show_command();
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| cannot_run(&argv, &e))?;
    if !out.status.success() {
        eprintln!(
            "error: cannot read the stack's CA certificate: {}\n  = hint: run this in the \
             directory of the running stack, or name a CA directory with --dir",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return Err(Failed);
    }
    let pem = String::from_utf8_lossy(&out.stdout);
    let origin = PathBuf::from(format!("proxy:{}", stack_cert_path().display()));
    CaInfo::from_cert_pem(&pem, &origin).map_err(fail)
}

/// Runs a command with the terminal's stdio; whether it succeeded.
fn run_status(argv: &[String]) -> Result<bool, Failed> {
    Command::new(&argv[0])
        .args(&argv[1..])
        .status()
        .map(|s| s.success())
        .map_err(|e| cannot_run(argv, &e))
}

fn cannot_run(argv: &[String], e: &std::io::Error) -> Failed {
    eprintln!("error: cannot run `{}`: {e}", argv.join(" "));
    Failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotating_the_stack_rotates_inside_the_proxy_then_restarts_both() {
        let [rotate, restart] = stack_rotate_commands();
        assert_eq!(
            rotate.join(" "),
            "docker compose exec -T proxy safeai ca rotate --dir /var/lib/safe-ai/ca \
             --export /var/lib/safe-ai/ca-public"
        );
        assert_eq!(restart.join(" "), "docker compose restart proxy sandbox");
    }

    #[test]
    fn show_reads_the_exported_certificate_never_the_key() {
        assert_eq!(
            stack_show_command().join(" "),
            "docker compose exec -T proxy cat /var/lib/safe-ai/ca-public/ca.crt"
        );
    }

    #[test]
    fn an_owner_is_two_numbers() {
        assert_eq!(parse_owner("13:13"), Ok((13, 13)));
        assert_eq!(parse_owner("0:65534"), Ok((0, 65534)));
        for bad in ["proxy:proxy", "13", "13:", ":13", "-1:2", "1:2:3"] {
            assert!(parse_owner(bad).is_err(), "{bad}");
        }
    }
}
