//! `safeai verify`: tries, from inside the running sandbox, each thing the security model
//! says is prevented, and reports one line per property.
//!
//! This module only runs the probes (`docker exec`, `docker inspect`) and records what
//! they print; each check's script and the judge of its recording live in
//! `safeai_core::verify`, where they are tested on recorded outputs.

use std::process::{Command, Stdio};

use safeai_core::Stack as Model;
pub use safeai_core::verify::Outcome;
use safeai_core::verify::{self as judge, Expected, Recorded};
use serde::Serialize;

/// How to reach the stack: `docker compose` in the current directory, or container names.
#[derive(Debug, Clone)]
pub enum Target {
    /// `docker compose exec` with the services `sandbox` and `proxy`.
    Compose,
    /// `docker exec` with these container names.
    Containers {
        /// The sandbox container.
        sandbox: String,
        /// The proxy container.
        proxy: String,
    },
}

/// What `verify` probes.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Where the stack runs.
    pub target: Target,
    /// A URL that the allowlist allows.
    pub allowed: String,
    /// A host name the allowlist does not allow.
    pub denied: String,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// Stable identifier.
    pub check: &'static str,
    /// The property, in words.
    pub property: &'static str,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

struct Stack<'a> {
    probe: &'a Probe,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_owned()
}

/// What `cmd` (a `docker` command) printed and how it ended.
fn record(cmd: &mut Command) -> Recorded {
    match cmd.output() {
        Ok(o) => Recorded::new(
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        ),
        Err(e) => Recorded::new(None, "", format!("cannot run docker: {e}")),
    }
}

impl Stack<'_> {
    /// `script` in `service` as `user`, recorded.
    fn exec(&self, service: &str, user: &str, script: &str) -> Recorded {
        let mut cmd = Command::new("docker");
        match &self.probe.target {
            Target::Compose => {
                cmd.args(["compose", "exec", "-T", "-u", user, service]);
            }
            Target::Containers { sandbox, proxy } => {
                let name = if service == "sandbox" { sandbox } else { proxy };
                cmd.args(["exec", "-u", user, name]);
            }
        }
        record(cmd.args(["bash", "-c", script]).stdin(Stdio::null()))
    }

    fn sandbox(&self, user: &str, script: &str) -> Recorded {
        self.exec("sandbox", user, script)
    }

    fn container_id(&self, service: &str) -> Option<String> {
        match &self.probe.target {
            Target::Compose => {
                let o = Command::new("docker")
                    .args(["compose", "ps", "-q", service])
                    .output()
                    .ok()?;
                Some(text(&o.stdout)).filter(|s| !s.is_empty())
            }
            Target::Containers { sandbox, proxy } => Some(if service == "sandbox" {
                sandbox.clone()
            } else {
                proxy.clone()
            }),
        }
    }

    /// `docker inspect -f format` of `service`, recorded.
    fn inspect(&self, service: &str, format: &str) -> Recorded {
        let Some(id) = self.container_id(service) else {
            return Recorded::new(Some(1), "", format!("no {service} container"));
        };
        record(Command::new("docker").args(["inspect", "-f", format, &id]))
    }

    /// `file` of the service's cgroup for `controller` on this host, as `key=VALUE`:
    /// the cgroup of the container's main process (`docker inspect`'s `.State.Pid`),
    /// read from `/proc/PID/cgroup` and `/sys/fs/cgroup`. Recorded as a failure when
    /// any step fails (Docker on another machine, a stopped container).
    fn host_cgroup(&self, service: &str, controller: &str, file: &str, key: &str) -> Recorded {
        let pid = self.inspect(service, "{{.State.Pid}}");
        let pid = pid.stdout.trim();
        if pid.is_empty() || pid == "0" || pid.parse::<u32>().is_err() {
            return Recorded::new(
                Some(1),
                "",
                format!("no process of the {service} container: {pid:?}"),
            );
        }
        let proc_cgroup = format!("/proc/{pid}/cgroup");
        let dir = match std::fs::read_to_string(&proc_cgroup) {
            Ok(c) => judge::cgroup_dir(&c, controller),
            Err(e) => return Recorded::new(Some(1), "", format!("{proc_cgroup}: {e}")),
        };
        let Some(dir) = dir else {
            return Recorded::new(
                Some(1),
                "",
                format!("{proc_cgroup} names no {controller} cgroup"),
            );
        };
        let path = format!("/sys/fs/cgroup/{dir}/{file}");
        match std::fs::read_to_string(&path) {
            Ok(v) => Recorded::new(Some(0), format!("{key}={}\n", v.trim()), ""),
            Err(e) => Recorded::new(Some(1), "", format!("{path}: {e}")),
        }
    }

    /// The container's addresses by network name.
    fn addresses(&self, service: &str) -> Vec<(String, String)> {
        let Some(id) = self.container_id(service) else {
            return Vec::new();
        };
        let format =
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.IPAddress}}\n{{end}}";
        let Ok(o) = Command::new("docker")
            .args(["inspect", "-f", format, &id])
            .output()
        else {
            return Vec::new();
        };
        text(&o.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(_, ip)| !ip.is_empty())
            .map(|(n, ip)| (n.to_owned(), ip.to_owned()))
            .collect()
    }

    /// The address of `service` on the internal network (or on any other network).
    fn address(&self, service: &str, internal: bool) -> Option<String> {
        self.addresses(service)
            .into_iter()
            .find(|(net, _)| net.ends_with("internal") == internal)
            .map(|(_, ip)| ip)
    }
}

fn checks(s: &Stack) -> Vec<Line> {
    let p = s.probe;
    let expected = Expected::of(&Model::default().sandbox);
    let mut lines = Vec::new();
    let mut add = |check, property, outcome| {
        lines.push(Line {
            check,
            property,
            outcome,
        })
    };

    // Which kernel the sandbox's processes talk to; the checks that read what a kernel
    // shows (its /proc, its cgroup files, its answers to syscalls) judge by it.
    let kernel_probe = s.sandbox("dev", judge::KERNEL_PROBE);
    add(
        "runtime",
        "the sandbox runs under its configured runtime (under runsc, gVisor's kernel answers)",
        judge::judge_runtime(
            &s.inspect("sandbox", "{{.HostConfig.Runtime}}"),
            &kernel_probe,
        ),
    );
    let kernel = judge::kernel_of(&kernel_probe);
    let by_kernel = |judge: &dyn Fn(judge::Kernel) -> Outcome| match &kernel {
        Ok(k) => judge(*k),
        Err(Outcome::Fail(why)) => {
            Outcome::Fail(format!("cannot tell the sandbox's kernel: {why}"))
        }
        Err(other) => other.clone(),
    };

    // Reachability through the proxy.
    add(
        "allowed-reachable",
        "an allowlisted domain is reachable through the proxy",
        judge::judge_allowed(
            &p.allowed,
            &s.sandbox("dev", &judge::curl_probe("allowed", &p.allowed)),
        ),
    );
    add(
        "denied-403",
        "a domain outside the allowlist gets 403 (HTTPS and HTTP)",
        judge::judge_denied(
            &p.denied,
            &s.sandbox("dev", &judge::denied_probe(&p.denied)),
        ),
    );
    add(
        "ip-literal-denied",
        "an IP address as destination is refused by the proxy",
        judge::judge_ip_literal(&s.sandbox("dev", &judge::curl_probe("ip", judge::IP_LITERAL_URL))),
    );
    // The TLS layer: a ClientHello naming another host than the CONNECT is refused, and
    // the refusal is a page the agent can read, trusted through the stack CA.
    let sni = match judge::https_host(&p.allowed) {
        Some(host) => s.sandbox("dev", &judge::sni_probe(host, &p.denied)),
        None => Recorded::default(),
    };
    add(
        "sni-checked",
        "a TLS name (SNI) other than the CONNECT's host is refused",
        judge::judge_sni(&p.allowed, &p.denied, &sni),
    );
    add(
        "denial-readable",
        "an HTTPS denial is a page naming host, reason and fix, trusted without a certificate error",
        judge::judge_denial_page(
            &p.denied,
            &s.sandbox("dev", &judge::denial_page_probe(&p.denied)),
        ),
    );
    add(
        "ca-key-absent",
        "the sandbox has the stack CA's certificate, not its key",
        judge::judge_ca(&s.sandbox("root", judge::CA_PROBE)),
    );

    // No route around the proxy.
    let external = s.address("proxy", false);
    add(
        "no-direct-egress",
        "with the proxy variables unset, the sandbox reaches nothing outside (no default route)",
        judge::judge_egress(
            external.as_deref(),
            &s.sandbox("dev", &judge::egress_probe(external.as_deref())),
        ),
    );

    // The host: the internal network's gateway address must not answer.
    let gateway = s
        .address("sandbox", true)
        .and_then(|ip| judge::gateway_of(&ip));
    add(
        "host-unreachable",
        "the host is unreachable through the internal network's gateway address",
        match (gateway, s.address("proxy", true)) {
            (Some(gw), Some(proxy)) => judge::judge_host(
                &gw,
                &proxy,
                &s.sandbox("dev", &judge::host_probe(&gw, &proxy)),
            ),
            _ => Outcome::NotApplicable(
                "cannot read the sandbox's and the proxy's internal addresses".into(),
            ),
        },
    );

    // DNS.
    add(
        "dns-sinkhole",
        "a name outside the allowlist resolves to 0.0.0.0",
        judge::judge_dns(&p.denied, &s.sandbox("dev", &judge::dns_probe(&p.denied))),
    );

    // The filesystem.
    add(
        "read-only-root",
        "system files are immutable, even for root",
        judge::judge_read_only(&s.sandbox("root", judge::READ_ONLY_PROBE)),
    );
    add(
        "tmp-noexec",
        "a program in /tmp cannot be executed",
        judge::judge_noexec(&s.sandbox("dev", judge::NOEXEC_PROBE)),
    );
    add(
        "workspace-writable",
        "/workspace, /tmp and the home directory are writable",
        judge::judge_writable(&s.sandbox("dev", judge::WRITABLE_PROBE)),
    );

    // Privileges.
    let status = s.sandbox("dev", judge::DEV_STATUS_PROBE);
    add(
        "no-capabilities",
        "dev has no capability, and root's bounding set is exactly the model's seven",
        judge::judge_capabilities(
            &expected,
            &status,
            &s.sandbox("root", judge::ROOT_CAPS_PROBE),
        ),
    );
    add(
        "no-new-privileges",
        "setuid binaries cannot elevate (no_new_privs)",
        by_kernel(&|k| judge::judge_no_new_privileges(k, &status)),
    );
    let (as_dev, as_root) = (
        s.sandbox("dev", judge::SECCOMP_PROBE),
        s.sandbox("root", judge::SECCOMP_PROBE),
    );
    add(
        "seccomp",
        "the stack's seccomp filter, not Docker's default, refuses namespaces, ptrace, TIOCSTI and unlisted socket families (under gVisor: its kernel answers every call)",
        by_kernel(&|k| judge::judge_seccomp(k, &status, &as_dev, &as_root)),
    );
    add(
        "mount-refused",
        "mount fails, even for root",
        judge::judge_mount(&s.sandbox("root", judge::MOUNT_PROBE)),
    );
    let (inside, host) = (
        s.sandbox("dev", judge::PIDS_PROBE),
        s.host_cgroup("sandbox", "pids", "pids.max", "pids_max"),
    );
    add(
        "pids-limit",
        "the number of processes is bounded",
        by_kernel(&|k| judge::judge_pids(&expected, k, &inside, &host)),
    );
    lines
}

/// Runs every check.
pub fn run(probe: &Probe) -> Vec<Line> {
    checks(&Stack { probe })
}

/// The report as a table.
pub fn table(lines: &[Line]) -> String {
    let width = lines.iter().map(|l| l.check.len()).max().unwrap_or(0);
    let mut out = String::new();
    for l in lines {
        let (word, detail) = match &l.outcome {
            Outcome::Pass(d) => ("PASS", d),
            Outcome::Fail(d) => ("FAIL", d),
            Outcome::NotApplicable(d) => ("N/A ", d),
        };
        out.push_str(&format!(
            "{word}  {:width$}  {}\n      {:width$}  {}\n",
            l.check,
            l.property,
            "",
            detail.replace('\n', " ")
        ));
    }
    let count = |f: fn(&Outcome) -> bool| lines.iter().filter(|l| f(&l.outcome)).count();
    out.push_str(&format!(
        "verify: {} pass, {} fail, {} not applicable\n",
        count(|o| matches!(o, Outcome::Pass(_))),
        count(|o| matches!(o, Outcome::Fail(_))),
        count(|o| matches!(o, Outcome::NotApplicable(_))),
    ));
    out
}
