//! `safeai`: a thin front-end over safeai-policy and safeai-core. It reads the
//! environment and the arguments, turns them into library values, and prints what the
//! libraries return.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use safeai_core::{Artifacts, ProxySettings, Stack};
use safeai_policy::{Checked, Env, Source, check, render as render_diagnostics};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the input is invalid (every problem is printed), or --check found drift
  2  usage error";

/// Builds the safe-ai sandbox's configuration from the allowlist: validate it, render
/// the artifacts, and check the committed ones are current.
#[derive(Debug, Parser)]
#[command(name = "safeai", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Debug, clap::Args)]
struct AllowlistArgs {
    /// The allowlist file [default: $SAFE_AI_ALLOWLIST, else ./allowlist.yaml];
    /// SAFE_AI_DEFAULT_DOMAINS (comma-separated) is merged in
    #[arg(long, value_name = "FILE")]
    allowlist: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the merged allowlist and print it with the origin of every domain
    #[command(after_help = EXIT_CODES)]
    Check {
        #[command(flatten)]
        allowlist: AllowlistArgs,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Write every artifact (docker-compose.yaml, seccomp.json, squid.conf, dnsmasq.conf,
    /// dnsmasq.servers) into a directory
    #[command(after_help = EXIT_CODES)]
    Generate {
        #[command(flatten)]
        allowlist: AllowlistArgs,
        /// The directory to write into
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
        /// Write nothing; compare with the files in DIR, print a unified diff and exit 1
        /// if any differs or is missing
        #[arg(long)]
        check: bool,
        /// Only these artifacts (comma-separated); the proxy renders its own three with
        /// `--only squid,dnsmasq,dnsmasq-servers`
        #[arg(long, value_name = "ARTIFACT", value_delimiter = ',')]
        only: Vec<Artifact>,
    },
    /// Re-render the running proxy's configuration from the current allowlist and
    /// environment (`docker compose exec proxy safeai-proxy reload`); an invalid
    /// allowlist changes nothing
    #[command(after_help = EXIT_CODES)]
    Reload {
        #[command(flatten)]
        allowlist: AllowlistArgs,
    },
    /// Try, from inside the running sandbox, everything the security model says is
    /// prevented, and print one line per property
    #[command(
        after_help = "Run it in the directory of the running stack (it uses `docker compose exec`), \
or name the containers with --sandbox and --proxy.\n\nExit codes:\n  0  every check passed (or is not applicable)\n  1  a check failed\n  2  usage error"
    )]
    Verify {
        #[command(flatten)]
        allowlist: AllowlistArgs,
        /// A URL the allowlist allows [default: https://FIRST-ALLOWLISTED-DOMAIN/]
        #[arg(long, value_name = "URL")]
        allowed: Option<String>,
        /// A host name the allowlist does not allow
        #[arg(long, value_name = "HOST", default_value = "example.com")]
        denied: String,
        /// The sandbox container's name (instead of `docker compose exec`)
        #[arg(long, value_name = "NAME", requires = "proxy")]
        sandbox: Option<String>,
        /// The proxy container's name
        #[arg(long, value_name = "NAME", requires = "sandbox")]
        proxy: Option<String>,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Add domains to the allowlist file, keeping its comments, then reload the proxy
    #[command(after_help = EXIT_CODES)]
    Allow {
        /// The domains, such as `api.example.com` (each also allows its subdomains)
        #[arg(required = true, value_name = "DOMAIN")]
        domains: Vec<String>,
        #[command(flatten)]
        allowlist: AllowlistArgs,
        /// Edit the file only; do not reload the proxy
        #[arg(long)]
        no_reload: bool,
    },
    /// Print the presets the allowlist can name (`presets: [github, npm]`): each one's
    /// hosts and the vendor pages they come from
    #[command(after_help = presets::AFTER_HELP)]
    Presets {
        /// Only this preset, such as `github`
        name: Option<String>,
    },
    /// Show the proxy's decisions, oldest first: every request, CONNECT and DNS query
    /// it allowed or denied, with the reason or the allowlist entry that decided
    #[command(
        after_help = "Run it in the directory of the running stack (it reads the proxy's log with `docker compose exec`), or name a file of events with --events.\n\nExit codes:\n  0  success\n  1  the log could not be read\n  2  usage error"
    )]
    Logs {
        #[command(subcommand)]
        command: Option<LogsCommand>,
        /// Denials only
        #[arg(long)]
        denied: bool,
        /// Only since this long ago (30s, 10m, 2h, 1d) or this time (2026-12-02T15:20:38Z)
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Keep printing new events as they come
        #[arg(long, short)]
        follow: bool,
        /// Output format: text (one line per decision) or json (the events themselves,
        /// one per line, as the proxy wrote them)
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Read the events from FILE instead of the running proxy
        #[arg(long, value_name = "FILE", global = true)]
        events: Option<PathBuf>,
    },
    /// Turn the denials seen into a proposed change of the allowlist file: the entries to
    /// add, each with the requests it would have allowed, printed as a diff; `--apply`
    /// makes it
    #[command(
        after_help = "It never opens anything by itself: without --apply nothing changes. It names the denials it will not propose (IP addresses, blocked ranges, SNI mismatches, ports) and why.\n\nExit codes:\n  0  success\n  1  the log or the allowlist could not be read, or the change failed\n  2  usage error"
    )]
    Learn {
        /// Only the denials since this long ago (30s, 10m, 2h, 1d) or this time
        /// [default: since the last `learn --apply`, else all]
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Add the proposed entries to the allowlist file (as `safeai allow` does) and
        /// reload the proxy
        #[arg(long)]
        apply: bool,
        /// With --apply, edit the file only; do not reload the proxy
        #[arg(long, requires = "apply")]
        no_reload: bool,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Read the events from FILE instead of the running proxy
        #[arg(long, value_name = "FILE")]
        events: Option<PathBuf>,
        #[command(flatten)]
        allowlist: AllowlistArgs,
    },
    /// Helpers the proxy container runs (not for the host)
    #[command(subcommand, hide = true)]
    Proxy(ProxyCommand),
    /// Print one artifact to standard output
    #[command(after_help = EXIT_CODES)]
    Render {
        /// The artifact
        artifact: Artifact,
        #[command(flatten)]
        allowlist: AllowlistArgs,
    },
    /// Create, show or rotate the stack's certificate authority, with which the proxy
    /// inspects and answers HTTPS
    #[command(after_help = ca::EXIT_CODES)]
    Ca {
        #[command(subcommand)]
        command: ca::CaCommand,
    },
}

#[derive(Debug, Subcommand)]
enum LogsCommand {
    /// Denials grouped by registrable domain and by host, with counts, first and last
    /// seen, and the reasons
    Summary {
        /// Only since this long ago (30s, 10m, 2h, 1d) or this time (2026-12-02T15:20:38Z)
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
enum ProxyCommand {
    /// Squid's external ACL helper: answers whether a ClientHello's SNI names the CONNECT
    /// target (`ID SNI HOST` in, `ID OK|ERR` out)
    SniCheck,
    /// Squid's external ACL helper for ruled hosts: answers whether a path, as the
    /// client sent it, could mean another once decoded (`ID PATH` in, `ID OK|ERR` out)
    PathCheck,
    /// Render the live config into a fresh directory of DIR, check it with Squid's
    /// parser and make it current (at start)
    Render(#[command(flatten)] proxy::LiveArgs),
    /// The same under the reload lock, then tell Squid and dnsmasq; an invalid allowlist
    /// changes nothing
    Reload(#[command(flatten)] proxy::LiveArgs),
    /// Print the address the SSH forwarder listens on: the proxy's own on the network of
    /// its default route (where the host's published port leads)
    SshAddress,
    /// The decision log: read Squid's access log and dnsmasq's query log (named pipes),
    /// write one JSON event per decision to stdout and to FILE (with FILE.1, capped)
    Tap {
        /// Squid's access log pipe
        #[arg(long, value_name = "PIPE")]
        squid: PathBuf,
        /// dnsmasq's log pipe
        #[arg(long, value_name = "PIPE")]
        dnsmasq: PathBuf,
        /// The events file
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The cap of FILE and FILE.1 together, in bytes
        #[arg(long, value_name = "BYTES", default_value_t = 8 << 20)]
        max_bytes: u64,
        #[command(flatten)]
        allowlist: AllowlistArgs,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Artifact {
    /// docker-compose.yaml
    Compose,
    /// squid.conf
    Squid,
    /// dnsmasq.conf
    Dnsmasq,
    /// dnsmasq.servers, the allowlisted names dnsmasq forwards
    DnsmasqServers,
    /// seccomp.json
    Seccomp,
    /// The proxy's error pages, into DIR/errors/ (only when named with --only)
    ErrorPages,
    /// policy.txt, what the sandbox reads at /etc/safe-ai/policy.txt (only when named
    /// with --only)
    Policy,
}

impl Artifact {
    fn file_name(self) -> &'static str {
        match self {
            Artifact::Compose => "docker-compose.yaml",
            Artifact::Squid => "squid.conf",
            Artifact::Dnsmasq => "dnsmasq.conf",
            Artifact::DnsmasqServers => safeai_core::DNSMASQ_SERVERS_FILE,
            Artifact::Seccomp => "seccomp.json",
            Artifact::ErrorPages => "errors",
            Artifact::Policy => safeai_core::sandbox_policy::POLICY_FILE,
        }
    }
}

/// A failure already explained on stderr.
struct Failed;

mod allow;
mod ca;
mod check;
mod learn;
mod logs;
mod presets;
mod proxy;
mod tap;
mod verify;

/// The allowlist file the commands edit: the flag, else `SAFE_AI_ALLOWLIST`, else the default.
fn allowlist_path(args: &AllowlistArgs) -> PathBuf {
    Env::from_lookup(env_var)
        .allowlist_file(args.allowlist.as_deref(), Path::new(""))
        .0
}

/// The standard sources: the allowlist file and `SAFE_AI_DEFAULT_DOMAINS`.
fn sources(args: &AllowlistArgs) -> Vec<Source> {
    Source::standard(
        &Env::from_lookup(env_var),
        args.allowlist.as_deref(),
        Path::new(""),
    )
}

/// Runs the proxy's own reload in the running stack of the current directory.
fn reload(allowlist: &Path) -> Result<(), Failed> {
    // The proxy reads the file through a bind mount of its inode: an editor that saves by
    // replacing the file leaves the proxy reading the old one. Compare before reloading,
    // rather than reload a list the user no longer has.
    if let Ok(host) = std::fs::read(allowlist) {
        let seen = std::process::Command::new("docker")
            .args([
                "compose",
                "exec",
                "-T",
                "proxy",
                "cat",
                "/etc/safe-ai/allowlist.yaml",
            ])
            .output();
        if let Ok(seen) = seen
            && seen.status.success()
            && seen.stdout != host
        {
            eprintln!(
                "error: the proxy sees an older {} than this one (the file was replaced, not \
                 rewritten: some editors save that way)\n  = hint: run `docker compose up -d \
                 --force-recreate proxy` to mount the new file (open connections are dropped)",
                allowlist.display()
            );
            return Err(Failed);
        }
    }
    let status = std::process::Command::new("docker")
        .args(["compose", "exec", "-T", "proxy", "safeai-proxy", "reload"])
        .status()
        .map_err(|e| {
            eprintln!("error: cannot run `docker compose exec`: {e}");
            Failed
        })?;
    if status.success() {
        Ok(())
    } else {
        eprintln!(
            "error: the proxy did not reload (see above); it keeps its previous configuration"
        );
        Err(Failed)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed) => ExitCode::from(1),
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The allowlist from the flag, the environment and the working directory. Warnings go
/// to stderr; on errors, every one is printed and nothing else happens.
fn load(args: &AllowlistArgs) -> Result<Checked, Failed> {
    match check(&sources(args)) {
        Ok(checked) => {
            eprint!("{}", render_diagnostics(&checked.diagnostics));
            Ok(checked)
        }
        Err(rejected) => {
            eprintln!("{rejected}");
            Err(Failed)
        }
    }
}

fn stack() -> Result<Stack, Failed> {
    let settings = ProxySettings::default()
        .with_env(env_var)
        .map_err(|errors| {
            for e in errors {
                eprintln!("error: {e}");
            }
            Failed
        })?;
    if let Some(path) = &settings.upstream_ca {
        // Squid would start without the extra CAs and refuse every upstream they sign:
        // better a clear error now.
        let pem = std::fs::read_to_string(path.as_str()).unwrap_or_default();
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            eprintln!(
                "error: {}={path} holds no PEM certificate\n  = hint: point it at a file of CA certificates \
                 (-----BEGIN CERTIFICATE----- blocks), or unset it",
                safeai_core::env::UPSTREAM_CA
            );
            return Err(Failed);
        }
    }
    Ok(Stack {
        proxy_settings: settings,
        ..Stack::default()
    })
}

/// The sandbox's policy file for the allowlist, as the proxy writes it.
fn policy(args: &AllowlistArgs) -> Result<String, Failed> {
    let checked = load(args)?;
    Ok(safeai_core::render_sandbox_policy(
        &stack()?.proxy_settings,
        &checked.allowlist,
    ))
}

fn artifacts(args: &AllowlistArgs) -> Result<Artifacts, Failed> {
    let checked = load(args)?;
    Ok(safeai_core::render_all(&stack()?, &checked.allowlist))
}

fn run(command: Command) -> Result<(), Failed> {
    match command {
        Command::Check { allowlist, format } => check::run(&allowlist, format),
        Command::Generate {
            allowlist,
            out,
            check,
            only,
        } => {
            let checked = load(&allowlist)?;
            let stack = stack()?;
            let mut artifacts = safeai_core::render_all(&stack, &checked.allowlist);
            if !only.is_empty() {
                let keep: Vec<&str> = only.iter().map(|a| a.file_name()).collect();
                artifacts.retain(|name, _| keep.contains(name));
            }
            // Not committed either: it is what the running proxy writes for the sandbox.
            if only.iter().any(|a| matches!(a, Artifact::Policy)) {
                artifacts.insert(
                    safeai_core::sandbox_policy::POLICY_FILE,
                    policy(&allowlist)?,
                );
            }
            // The pages are not committed: written only into the proxy's runtime
            // directory, when asked for.
            let pages = only
                .iter()
                .any(|a| matches!(a, Artifact::ErrorPages))
                .then(|| {
                    let plan = safeai_core::tls_plan(&stack.proxy_settings, &checked.allowlist);
                    safeai_core::render_error_pages(&plan)
                });
            if check {
                compare(&artifacts, &out)
            } else {
                write(&artifacts, &out, true)?;
                match pages {
                    Some(pages) => {
                        let dir = out.join("errors");
                        write(&pages, &dir, false)?;
                        eprintln!("wrote {} error pages into {}", pages.len(), dir.display());
                        Ok(())
                    }
                    None => Ok(()),
                }
            }
        }
        Command::Reload { allowlist } => reload(&allowlist_path(&allowlist)),
        Command::Verify {
            allowlist,
            allowed,
            denied,
            sandbox,
            proxy,
            format,
        } => {
            let allowed = match allowed {
                Some(url) => url,
                None => match load(&allowlist)?.allowlist.domains().next() {
                    Some(d) => format!("https://{d}/"),
                    None => {
                        eprintln!(
                            "error: the allowlist is empty: name a reachable URL with --allowed"
                        );
                        return Err(Failed);
                    }
                },
            };
            let target = match (sandbox, proxy) {
                (Some(sandbox), Some(proxy)) => verify::Target::Containers { sandbox, proxy },
                _ => verify::Target::Compose,
            };
            let lines = verify::run(&verify::Probe {
                target,
                allowed,
                denied,
            });
            match format {
                Format::Text => print(&verify::table(&lines))?,
                Format::Json => print(&format!("{:#}\n", serde_json::json!({ "checks": lines })))?,
            }
            if lines
                .iter()
                .any(|l| matches!(l.outcome, verify::Outcome::Fail(_)))
            {
                Err(Failed)
            } else {
                Ok(())
            }
        }
        Command::Allow {
            domains,
            allowlist,
            no_reload,
        } => {
            allow::allow(&domains, &allowlist_path(&allowlist))?;
            if no_reload {
                Ok(())
            } else {
                reload(&allowlist_path(&allowlist))
            }
        }
        Command::Proxy(ProxyCommand::SniCheck) => {
            proxy::helper("sni-check", safeai_core::tls::sni_check)
        }
        Command::Proxy(ProxyCommand::PathCheck) => {
            proxy::helper("path-check", safeai_core::decrypt::path_check)
        }
        Command::Proxy(ProxyCommand::Render(args)) => proxy::install(&args, false),
        Command::Proxy(ProxyCommand::Reload(args)) => proxy::install(&args, true),
        Command::Proxy(ProxyCommand::SshAddress) => proxy::ssh_address(),
        Command::Proxy(ProxyCommand::Tap {
            squid,
            dnsmasq,
            file,
            max_bytes,
            allowlist,
        }) => tap::run(tap::Tap {
            squid,
            dnsmasq,
            file,
            max_bytes,
            allowlist,
        }),
        Command::Logs {
            command: Some(LogsCommand::Summary { since, format }),
            events,
            ..
        } => logs::summary(
            &logs::From::new(events),
            logs::since(since.as_deref())?,
            format,
        ),
        Command::Logs {
            command: None,
            denied,
            since,
            follow,
            format,
            events,
        } => logs::logs(
            &logs::From::new(events),
            &logs::Filter {
                denied,
                since: logs::since(since.as_deref())?,
            },
            follow,
            format,
        ),
        Command::Learn {
            since,
            apply,
            no_reload,
            format,
            events,
            allowlist,
        } => learn::learn(&learn::Learn {
            from: logs::From::new(events),
            since: logs::since(since.as_deref())?,
            apply,
            no_reload,
            format,
            allowlist,
        }),
        Command::Render {
            artifact,
            allowlist,
        } => {
            if let Artifact::Policy = artifact {
                return print(&policy(&allowlist)?);
            }
            let mut artifacts = artifacts(&allowlist)?;
            print(&artifacts.remove(artifact.file_name()).unwrap_or_default())
        }
        Command::Ca { command } => ca::run(command),
        Command::Presets { name } => presets::run(name.as_deref()),
    }
}

/// `check --format json`: one document on stdout, valid or not, and nothing on stderr.
fn print(text: &str) -> Result<(), Failed> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| {
            eprintln!("error: cannot write to standard output: {e}");
            Failed
        })
}

/// Writes each file into `dir`, naming each on stderr when `announce`.
fn write<K: AsRef<str> + Ord>(
    artifacts: &std::collections::BTreeMap<K, String>,
    dir: &Path,
    announce: bool,
) -> Result<(), Failed> {
    let fail = |path: &Path, e: std::io::Error| {
        eprintln!("error: cannot write {}: {e}", path.display());
        Failed
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    for (name, text) in artifacts {
        let name = name.as_ref();
        let path = dir.join(name);
        // Write then rename, so a reader never sees half a file.
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).map_err(|e| fail(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| fail(&path, e))?;
        if announce {
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

fn compare(artifacts: &Artifacts, dir: &Path) -> Result<(), Failed> {
    let mut drift = 0;
    for (name, expected) in artifacts {
        let path = dir.join(name);
        let actual = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("{} is missing", path.display());
                drift += 1;
                continue;
            }
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return Err(Failed);
            }
        };
        if actual != *expected {
            drift += 1;
            let diff = similar::TextDiff::from_lines(&actual, expected);
            let shown = path.display().to_string();
            print(
                &diff
                    .unified_diff()
                    .header(&shown, &format!("{shown} (generated)"))
                    .to_string(),
            )?;
        }
    }
    if drift == 0 {
        eprintln!(
            "all {} artifacts in {} are current",
            artifacts.len(),
            dir.display()
        );
        Ok(())
    } else {
        eprintln!(
            "{drift} artifact(s) differ from the generator: run `safeai generate --out {}`",
            dir.display()
        );
        Err(Failed)
    }
}
