//! `safeai verify`: tries, from inside the running sandbox, each thing the security model
//! says is prevented, and reports one line per property.
//!
//! Each check tests the property it names: direct egress is tried with the proxy
//! variables unset and by address; the read-only root is tried as root (as `dev` the
//! permissions alone would refuse); seccomp is tried with calls the capabilities would
//! allow (`unshare -U` needs none).

use std::process::{Command, Output, Stdio};

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

/// The result of one check.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase", tag = "result", content = "detail")]
pub enum Outcome {
    /// The property holds.
    Pass(String),
    /// It does not.
    Fail(String),
    /// It cannot be checked here, and why.
    #[serde(rename = "n/a")]
    NotApplicable(String),
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

impl Stack<'_> {
    fn exec(&self, service: &str, user: &str, script: &str) -> std::io::Result<Output> {
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
        cmd.args(["bash", "-c", script])
            .stdin(Stdio::null())
            .output()
    }

    /// `script` in the sandbox as `user`; stdout and stderr together, and the exit code.
    fn sandbox(&self, user: &str, script: &str) -> (i32, String) {
        match self.exec("sandbox", user, script) {
            Ok(o) => (
                o.status.code().unwrap_or(-1),
                format!("{}{}", text(&o.stdout), text(&o.stderr)),
            ),
            Err(e) => (-1, format!("cannot run docker: {e}")),
        }
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
            .map(|(n, ip)| (n.to_owned(), ip.to_owned()))
            .collect()
    }
}

fn pass(s: impl Into<String>) -> Outcome {
    Outcome::Pass(s.into())
}
fn fail(s: impl Into<String>) -> Outcome {
    Outcome::Fail(s.into())
}

/// curl through the sandbox's proxy settings: "HTTP_CODE CONNECT_CODE".
fn curl(url: &str) -> String {
    format!(
        "curl -sS -o /dev/null --max-time 15 -w '%{{http_code}} %{{http_connect}}' '{url}' 2>/dev/null; true"
    )
}

fn checks(s: &Stack) -> Vec<Line> {
    let p = s.probe;
    let mut lines = Vec::new();
    let mut add = |check, property, outcome| {
        lines.push(Line {
            check,
            property,
            outcome,
        })
    };

    // Reachability through the proxy.
    let (_, out) = s.sandbox("dev", &curl(&p.allowed));
    let (code, connect) = out.split_once(' ').unwrap_or((&out, ""));
    let https = p.allowed.starts_with("https:");
    // Through a proxy, a 403 is Squid's refusal; a 5xx means Squid let the request through
    // and could not reach the upstream (no DNS answer, no route: offline), which says
    // nothing about isolation.
    let proxy_code = if https { connect } else { code };
    add(
        "allowed-reachable",
        "an allowlisted domain is reachable through the proxy",
        match proxy_code {
            "200" if https => pass(format!("{} → tunnel established, HTTP {code}", p.allowed)),
            c if !https && c != "403" && c != "000" && !c.starts_with('5') => {
                pass(format!("{} → HTTP {code}", p.allowed))
            }
            c if c.starts_with('5') => Outcome::NotApplicable(format!(
                "the proxy let {} through but the upstream did not answer ({proxy_code}): no internet here? name a reachable URL with --allowed",
                p.allowed
            )),
            _ => fail(format!("{} → HTTP {code}, CONNECT {connect}", p.allowed)),
        },
    );
    let (_, https) = s.sandbox("dev", &curl(&format!("https://{}/", p.denied)));
    let (_, http) = s.sandbox("dev", &curl(&format!("http://{}/", p.denied)));
    add(
        "denied-403",
        "a domain outside the allowlist gets 403 (HTTPS and HTTP)",
        // A denied CONNECT is answered inside TLS (a certificate from the stack CA,
        // which the sandbox trusts): 403 after the tunnel's 200.
        if https == "403 200" && http.starts_with("403 ") {
            pass(format!("{} → 403 (HTTPS inside TLS, and HTTP)", p.denied))
        } else {
            fail(format!("{}: https → {https:?}, http → {http:?}", p.denied))
        },
    );
    // 192.0.2.1 is TEST-NET-1: never routed, and the proxy refuses it before connecting.
    // Plain HTTP: an HTTPS denial to an address comes with a certificate clients reject
    // (no IP subjectAltName), so its page says less about the refusal.
    let (_, ip) = s.sandbox("dev", &curl("http://192.0.2.1/"));
    add(
        "ip-literal-denied",
        "an IP address as destination is refused by the proxy",
        if ip.starts_with("403 ") {
            pass("GET http://192.0.2.1/ → 403")
        } else {
            fail(format!("GET http://192.0.2.1/ → {ip:?}"))
        },
    );
    // The TLS layer: a ClientHello naming another host than the CONNECT is refused, and
    // the refusal is a page the agent can read, trusted through the stack CA.
    let allowed_host = p
        .allowed
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', ':']).next())
        .unwrap_or("")
        .to_owned();
    let (_, sni) = s.sandbox(
        "dev",
        &format!(
            "curl -sS -D - -o /dev/null --max-time 15 --connect-to {d}:443:{allowed_host}:443 https://{d}/ 2>&1; true",
            d = p.denied
        ),
    );
    add(
        "sni-checked",
        "a TLS name (SNI) other than the CONNECT's host is refused",
        if allowed_host.is_empty() || !p.allowed.starts_with("https:") {
            Outcome::NotApplicable("--allowed is not an https:// URL".into())
        } else if sni.contains("X-Safe-AI-Denied: sni-mismatch") {
            pass(format!(
                "CONNECT {allowed_host} with SNI {} → sni-mismatch page",
                p.denied
            ))
        } else if sni.contains("HTTP/1.1 200 Connection established") && sni.contains("HTTP/1.1 5")
        {
            Outcome::NotApplicable(format!(
                "the proxy refused, but could not reach {allowed_host} to show the page (offline?)"
            ))
        } else {
            fail(format!(
                "CONNECT {allowed_host} with SNI {}: {sni:?}",
                p.denied
            ))
        },
    );
    let (_, page) = s.sandbox(
        "dev",
        &format!("curl -sS -i --max-time 15 https://{}/ 2>&1; true", p.denied),
    );
    add(
        "denial-readable",
        "an HTTPS denial is a page naming host, reason and fix, trusted without a certificate error",
        if page.contains("X-Safe-AI-Denied: not-allowlisted") && page.contains("fix:") {
            pass(format!(
                "https://{}/ → 403 not-allowlisted, page read",
                p.denied
            ))
        } else {
            fail(format!("https://{}/: {page:?}", p.denied))
        },
    );
    let (_, keys) = s.sandbox(
        "root",
        "ls -A /etc/safe-ai/ca; grep -l 'PRIVATE KEY' /etc/safe-ai/ca/* 2>/dev/null; true",
    );
    add(
        "ca-key-absent",
        "the sandbox has the stack CA's certificate, not its key",
        if keys.trim() == "ca.crt" {
            pass("/etc/safe-ai/ca holds ca.crt only")
        } else {
            fail(format!("/etc/safe-ai/ca: {keys:?}"))
        },
    );

    // No route around the proxy.
    let (_, routes) = s.sandbox("dev", "ip route show default");
    let external: Vec<String> = s
        .addresses("proxy")
        .into_iter()
        .filter(|(net, _)| !net.ends_with("internal"))
        .map(|(_, ip)| ip)
        .filter(|ip| !ip.is_empty())
        .collect();
    add(
        "no-direct-egress",
        "with the proxy variables unset, the sandbox reaches nothing outside (no default route)",
        match external.first() {
            _ if !routes.is_empty() => fail(format!("default route: {routes}")),
            None => Outcome::NotApplicable("cannot read the proxy's external address".into()),
            Some(ip) => {
                let (rc, out) = s.sandbox(
                    "dev",
                    &format!("env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy curl -sS --noproxy '*' --max-time 5 -o /dev/null http://{ip}:3128/ 2>&1"),
                );
                if rc != 0 && !out.contains("refused") {
                    pass(format!(
                        "no default route; TCP to the proxy's external address {ip}: {out}"
                    ))
                } else {
                    fail(format!(
                        "TCP to {ip} got through or was refused by a live host: {out}"
                    ))
                }
            }
        },
    );

    // The host: the internal network's gateway address must not exist.
    let internal: Option<String> = s
        .addresses("sandbox")
        .into_iter()
        .find(|(net, _)| net.ends_with("internal"))
        .map(|(_, ip)| ip);
    add(
        "host-unreachable",
        "the host is unreachable through the internal network's gateway address",
        match internal.as_deref().and_then(|ip| ip.rsplit_once('.')) {
            None => Outcome::NotApplicable("cannot read the sandbox's internal address".into()),
            Some((prefix, _)) => {
                let gw = format!("{prefix}.1");
                let (_, out) = s.sandbox(
                    "dev",
                    &format!("for port in 22 80 2375 3128; do timeout 5 bash -c \"exec 3<>/dev/tcp/{gw}/$port\" 2>&1 && echo \"open $port\"; done; true"),
                );
                if out.contains("open") || out.contains("refused") {
                    fail(format!("{gw} answers: {out}"))
                } else {
                    pass(format!("{gw}: no answer on 22, 80, 2375, 3128"))
                }
            }
        },
    );

    // DNS.
    let (_, dns) = s.sandbox("dev", &format!("getent ahostsv4 {} | head -1", p.denied));
    add(
        "dns-sinkhole",
        "a name outside the allowlist resolves to 0.0.0.0",
        if dns.starts_with("0.0.0.0") {
            pass(format!("{} → 0.0.0.0", p.denied))
        } else {
            fail(format!("{} → {dns:?}", p.denied))
        },
    );

    // The filesystem.
    let (rc, out) = s.sandbox("root", "touch /etc/.safeai-verify 2>&1");
    add(
        "read-only-root",
        "system files are immutable, even for root",
        if rc != 0 && out.contains("Read-only file system") {
            pass("touch /etc/… as root: read-only")
        } else {
            fail(format!("touch /etc/… as root: {out:?}"))
        },
    );
    let (rc, out) = s.sandbox("dev", "cp /bin/true /tmp/.safeai-verify && chmod +x /tmp/.safeai-verify && /tmp/.safeai-verify 2>&1; r=$?; rm -f /tmp/.safeai-verify; exit $r");
    add(
        "tmp-noexec",
        "a program in /tmp cannot be executed",
        if rc != 0 && out.contains("Permission denied") {
            pass("/tmp/… → permission denied")
        } else {
            fail(format!("exit {rc}: {out:?}"))
        },
    );
    let (rc, out) = s.sandbox("dev", "touch /workspace/.safeai-verify /tmp/.safeai-verify ~/.safeai-verify && rm /workspace/.safeai-verify /tmp/.safeai-verify ~/.safeai-verify");
    add(
        "workspace-writable",
        "/workspace, /tmp and the home directory are writable",
        if rc == 0 {
            pass("written and removed")
        } else {
            fail(out)
        },
    );

    // Privileges.
    let (_, status) = s.sandbox(
        "dev",
        "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status",
    );
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(str::trim)
            .unwrap_or("?")
            .to_owned()
    };
    add(
        "no-capabilities",
        "dev has no effective capability",
        if field("CapEff:") == "0000000000000000" {
            pass("CapEff 0")
        } else {
            fail(format!("CapEff {}", field("CapEff:")))
        },
    );
    add(
        "no-new-privileges",
        "setuid binaries cannot elevate (no_new_privs)",
        if field("NoNewPrivs:") == "1" {
            pass("NoNewPrivs 1")
        } else {
            fail(format!("NoNewPrivs {}", field("NoNewPrivs:")))
        },
    );
    let (rc_u, out_u) = s.sandbox("dev", "unshare -U true 2>&1");
    let (rc_n, out_n) = s.sandbox("root", "unshare -n true 2>&1");
    add(
        "seccomp",
        "a seccomp filter refuses namespaces (unshare -U as dev, unshare -n as root)",
        if field("Seccomp:") == "2" && rc_u != 0 && rc_n != 0 {
            pass(format!(
                "filter mode; unshare -U: {out_u}; unshare -n: {out_n}"
            ))
        } else {
            fail(format!(
                "Seccomp {}; unshare -U exit {rc_u}; unshare -n exit {rc_n}",
                field("Seccomp:")
            ))
        },
    );
    let (rc, out) = s.sandbox("root", "mount -t tmpfs none /mnt 2>&1");
    add(
        "mount-refused",
        "mount fails, even for root",
        if rc != 0 {
            pass(out)
        } else {
            fail("mount succeeded")
        },
    );
    let (_, pids) = s.sandbox(
        "dev",
        "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max",
    );
    add(
        "pids-limit",
        "the number of processes is bounded",
        if pids.parse::<u64>().is_ok() {
            pass(format!("pids.max {pids}"))
        } else {
            fail(format!("pids.max {pids:?}"))
        },
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
