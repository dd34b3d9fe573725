//! The checks of `safeai verify`: for each, the probe script it runs in the sandbox and a
//! pure judge of the probe's recorded output ([`Recorded`]) that gives an [`Outcome`].
//! Nothing here runs anything: the CLI runs the scripts (`docker exec`) and hands the
//! recordings over, so every judge is tested on real outputs, those of a probe that never
//! ran included.
//!
//! Every probe prints `key=value` lines and every judge requires the keys it reads: a
//! probe that did not run (Docker failing, a missing container, a missing command) lacks
//! them and fails, never passes. Each check tests the property it names, with a probe the
//! weaker configuration would answer differently: root's capability bounding set (a
//! non-root process has no capability whatever the container was given), syscalls that
//! only this stack's seccomp filter refuses (Docker's default profile lets them reach the
//! kernel, which answers with another errno).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::stack::SecurityProfile;

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "result", content = "detail")]
pub enum Outcome {
    /// The property holds.
    Pass(String),
    /// It does not, or the probe could not show that it does.
    Fail(String),
    /// It cannot be checked here, and why.
    #[serde(rename = "n/a")]
    NotApplicable(String),
}

fn pass(s: impl Into<String>) -> Outcome {
    Outcome::Pass(s.into())
}

fn fail(s: impl Into<String>) -> Outcome {
    Outcome::Fail(s.into())
}

/// What a probe left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The exit status of the command that ran the probe (`docker exec …`); `None` when
    /// it could not be started or was killed by a signal.
    pub status: Option<i32>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Recorded {
    /// A recording.
    pub fn new(status: Option<i32>, stdout: impl Into<String>, stderr: impl Into<String>) -> Self {
        Recorded {
            status,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    /// The `key=value` lines of stdout (the last one wins), trimmed.
    fn pairs(&self) -> BTreeMap<&str, &str> {
        self.stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect()
    }

    /// The values of `keys`, or the failure of a probe that did not run.
    fn fields<const N: usize>(&self, what: &str, keys: [&str; N]) -> Result<[&str; N], Outcome> {
        let pairs = self.pairs();
        let mut values = [""; N];
        for (value, key) in values.iter_mut().zip(keys) {
            *value = *pairs.get(key).ok_or_else(|| self.did_not_run(what, key))?;
        }
        Ok(values)
    }

    fn did_not_run(&self, what: &str, key: &str) -> Outcome {
        let status = self
            .status
            .map_or("no exit status".to_owned(), |s| format!("exit {s}"));
        fail(format!(
            "{what}: the probe did not run (no {key}=; {status}): {}",
            one_line(&format!("{}{}", self.stdout, self.stderr))
        ))
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `s` as one shell word.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What the sandbox is expected to have, from the stack model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Root's capability bounding set: exactly the capabilities the model adds back after
    /// dropping all.
    pub bounding_set: u64,
    /// The pids limit.
    pub pids: u32,
}

impl Expected {
    /// The expectations of a service confined by `profile`.
    pub fn of(profile: &SecurityProfile) -> Self {
        Expected {
            bounding_set: profile.cap_add.iter().fold(0, |m, c| m | 1 << c.bit()),
            pids: profile.pids,
        }
    }
}

/// The kernel's capability names by number (`include/uapi/linux/capability.h`).
const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The names of the capabilities in `mask`.
fn capability_names(mask: u64) -> String {
    let names: Vec<String> = (0..64)
        .filter(|bit| mask & 1 << bit != 0)
        .map(|bit| {
            CAPABILITIES
                .get(bit)
                .map_or(format!("capability {bit}"), |n| (*n).to_owned())
        })
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

// ---- through the proxy -----------------------------------------------------------------

/// curl through the sandbox's proxy settings: `TAG_http=`, `TAG_connect=` (the codes) and
/// `TAG_exit=` (curl's status).
pub fn curl_probe(tag: &str, url: &str) -> String {
    format!(
        "curl -sS -o /dev/null --max-time 15 -w '{tag}_http=%{{http_code}}\\n{tag}_connect=%{{http_connect}}\\n' {} 2>/dev/null; echo \"{tag}_exit=$?\"\n",
        quote(url)
    )
}

fn is_code(c: &str) -> bool {
    c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit())
}

/// `allowed-reachable`, over [`curl_probe`]`("allowed", url)`.
pub fn judge_allowed(url: &str, r: &Recorded) -> Outcome {
    let [code, connect, _] =
        match r.fields("curl", ["allowed_http", "allowed_connect", "allowed_exit"]) {
            Ok(v) => v,
            Err(o) => return o,
        };
    let https = url.starts_with("https:");
    // Through a proxy, a 403 is Squid's refusal; a 5xx means Squid let the request through
    // and could not reach the upstream (no DNS answer, no route: offline), which says
    // nothing about isolation.
    let proxy_code = if https { connect } else { code };
    if !is_code(proxy_code) {
        return fail(format!("{url}: no HTTP status from curl: {:?}", r.stdout));
    }
    match proxy_code {
        "200" if https => pass(format!("{url} → tunnel established, HTTP {code}")),
        c if !https && c != "403" && c != "000" && !c.starts_with('5') => {
            pass(format!("{url} → HTTP {code}"))
        }
        c if c.starts_with('5') => Outcome::NotApplicable(format!(
            "the proxy let {url} through but the upstream did not answer ({proxy_code}): no internet here? name a reachable URL with --allowed"
        )),
        _ => fail(format!("{url} → HTTP {code}, CONNECT {connect}")),
    }
}

/// `denied-403`'s probe: HTTPS and plain HTTP to `host`.
pub fn denied_probe(host: &str) -> String {
    format!(
        "{}{}",
        curl_probe("https", &format!("https://{host}/")),
        curl_probe("http", &format!("http://{host}/"))
    )
}

/// `denied-403`, over [`denied_probe`].
pub fn judge_denied(host: &str, r: &Recorded) -> Outcome {
    let [https, connect, http] =
        match r.fields("curl", ["https_http", "https_connect", "http_http"]) {
            Ok(v) => v,
            Err(o) => return o,
        };
    // A denied CONNECT is answered inside TLS (a certificate from the stack CA, which the
    // sandbox trusts): 403 after the tunnel's 200.
    if https == "403" && connect == "200" && http == "403" {
        pass(format!("{host} → 403 (HTTPS inside TLS, and HTTP)"))
    } else {
        fail(format!(
            "{host}: https → {https} (CONNECT {connect}), http → {http}"
        ))
    }
}

/// 192.0.2.1 is TEST-NET-1: never routed, and the proxy refuses it before connecting.
/// Plain HTTP: an HTTPS denial to an address comes with a certificate clients reject (no
/// IP subjectAltName), so its page says less about the refusal.
pub const IP_LITERAL_URL: &str = "http://192.0.2.1/";

/// `ip-literal-denied`, over [`curl_probe`]`("ip", IP_LITERAL_URL)`.
pub fn judge_ip_literal(r: &Recorded) -> Outcome {
    match r.fields("curl", ["ip_http", "ip_exit"]) {
        Ok(["403", _]) => pass(format!("GET {IP_LITERAL_URL} → 403")),
        Ok([code, exit]) => fail(format!(
            "GET {IP_LITERAL_URL} → HTTP {code} (curl exit {exit})"
        )),
        Err(o) => o,
    }
}

/// The host name of an `https://` URL, if it is one.
pub fn https_host(url: &str) -> Option<&str> {
    url.strip_prefix("https://")
        .and_then(|rest| rest.split(['/', ':']).next())
        .filter(|h| !h.is_empty())
}

/// `sni-checked`'s probe: a CONNECT to `allowed_host` whose ClientHello names `denied`.
pub fn sni_probe(allowed_host: &str, denied: &str) -> String {
    format!(
        "curl -sS -D - -o /dev/null --max-time 15 --connect-to {}:443:{}:443 {} 2>&1; echo \"curl_exit=$?\"\n",
        quote(denied),
        quote(allowed_host),
        quote(&format!("https://{denied}/"))
    )
}

/// `sni-checked`, over [`sni_probe`]; `allowed` is `--allowed`.
pub fn judge_sni(allowed: &str, denied: &str, r: &Recorded) -> Outcome {
    let Some(allowed_host) = https_host(allowed) else {
        return Outcome::NotApplicable("--allowed is not an https:// URL".into());
    };
    if let Err(o) = r.fields("curl", ["curl_exit"]) {
        return o;
    }
    let out = &r.stdout;
    if out.contains("X-Safe-AI-Denied: sni-mismatch") {
        pass(format!(
            "CONNECT {allowed_host} with SNI {denied} → sni-mismatch page"
        ))
    } else if out.contains("HTTP/1.1 200 Connection established") && out.contains("HTTP/1.1 5") {
        Outcome::NotApplicable(format!(
            "the proxy refused, but could not reach {allowed_host} to show the page (offline?)"
        ))
    } else {
        fail(format!(
            "CONNECT {allowed_host} with SNI {denied}: {:?}",
            one_line(out)
        ))
    }
}

/// `denial-readable`'s probe: the page of a denied HTTPS request, with its headers.
pub fn denial_page_probe(denied: &str) -> String {
    format!(
        "curl -sS -i --max-time 15 {} 2>&1; echo \"curl_exit=$?\"\n",
        quote(&format!("https://{denied}/"))
    )
}

/// `denial-readable`, over [`denial_page_probe`].
pub fn judge_denial_page(denied: &str, r: &Recorded) -> Outcome {
    if let Err(o) = r.fields("curl", ["curl_exit"]) {
        return o;
    }
    let page = &r.stdout;
    if page.contains("X-Safe-AI-Denied: not-allowlisted") && page.contains("fix:") {
        pass(format!(
            "https://{denied}/ → 403 not-allowlisted, page read"
        ))
    } else {
        fail(format!("https://{denied}/: {:?}", one_line(page)))
    }
}

/// `ca-key-absent`'s probe, as root: the files of the CA directory, and those holding a key.
pub const CA_PROBE: &str = "echo \"files=$(ls -A /etc/safe-ai/ca | tr '\\n' ' ')\"; \
echo \"keys=$(grep -l 'PRIVATE KEY' /etc/safe-ai/ca/* 2>/dev/null | tr '\\n' ' ')\"\n";

/// `ca-key-absent`, over [`CA_PROBE`].
pub fn judge_ca(r: &Recorded) -> Outcome {
    match r.fields("ls", ["files", "keys"]) {
        Ok(["ca.crt", ""]) => pass("/etc/safe-ai/ca holds ca.crt only"),
        Ok([files, keys]) => fail(format!(
            "/etc/safe-ai/ca holds {files:?}; a private key in {keys:?}"
        )),
        Err(o) => o,
    }
}

// ---- no route around the proxy -------------------------------------------------------

/// `no-direct-egress`'s probe: the default route, then (when the proxy's external address
/// is known) TCP to it with the proxy variables unset.
pub fn egress_probe(proxy_external: Option<&str>) -> String {
    let mut s = String::from(
        "r=$(ip route show default 2>&1); echo \"ip_exit=$?\"; echo \"default_route=$(printf %s \"$r\" | tr '\\n' ' ')\"\n",
    );
    if let Some(ip) = proxy_external {
        let url = quote(&format!("http://{ip}:3128/"));
        let _ = writeln!(
            s,
            "e=$(env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy curl -sS --noproxy '*' --max-time 5 -o /dev/null {url} 2>&1); \
             echo \"curl_exit=$?\"; echo \"curl_error=$(printf %s \"$e\" | tr '\\n' ' ')\""
        );
    }
    s
}

/// `no-direct-egress`, over [`egress_probe`]`(proxy_external)`.
pub fn judge_egress(proxy_external: Option<&str>, r: &Recorded) -> Outcome {
    let [ip_exit, routes] = match r.fields("ip route", ["ip_exit", "default_route"]) {
        Ok(v) => v,
        Err(o) => return o,
    };
    if ip_exit != "0" {
        return fail(format!(
            "`ip route show default` failed (exit {ip_exit}): {routes}"
        ));
    }
    if !routes.is_empty() {
        return fail(format!("default route: {routes}"));
    }
    let Some(ip) = proxy_external else {
        return Outcome::NotApplicable("cannot read the proxy's external address".into());
    };
    let [exit, error] = match r.fields("curl", ["curl_exit", "curl_error"]) {
        Ok(v) => v,
        Err(o) => return o,
    };
    // 7: could not connect (no route, network unreachable), 28: timed out. A refusal is a
    // live host's answer.
    if (exit == "7" || exit == "28") && !error.contains("refused") {
        pass(format!(
            "no default route; TCP to the proxy's external address {ip}: {error}"
        ))
    } else {
        fail(format!(
            "TCP to {ip} got through, was refused by a live host, or curl did not run (exit {exit}): {error}"
        ))
    }
}

/// The ports tried on the internal network's gateway address.
pub const HOST_PORTS: [u16; 4] = [22, 80, 2375, 3128];

/// `host-unreachable`'s probe: TCP to the gateway on [`HOST_PORTS`], and, as the control
/// that the probe can see an open port, to the proxy's Squid port.
pub fn host_probe(gateway: &str, proxy_internal: &str) -> String {
    let targets: Vec<String> = HOST_PORTS
        .iter()
        .map(|p| format!("{gateway}:{p}"))
        .chain([format!("{proxy_internal}:3128")])
        .collect();
    format!(
        "for t in {}; do h=${{t%:*}}; p=${{t##*:}}; \
         e=$(timeout 5 bash -c \"exec 3<>/dev/tcp/$h/$p\" 2>&1); \
         echo \"tcp:$t=$? $(printf %s \"$e\" | tr '\\n' ' ')\"; done\n",
        targets.join(" ")
    )
}

/// The internal network's gateway: the `.1` of the sandbox's /24-or-wider internal
/// address, as Docker assigns it.
pub fn gateway_of(sandbox_internal: &str) -> Option<String> {
    sandbox_internal
        .rsplit_once('.')
        .map(|(prefix, _)| format!("{prefix}.1"))
}

/// `host-unreachable`, over [`host_probe`]`(gateway, proxy_internal)`.
pub fn judge_host(gateway: &str, proxy_internal: &str, r: &Recorded) -> Outcome {
    let control = format!("tcp:{proxy_internal}:3128");
    let pairs = r.pairs();
    let Some(c) = pairs.get(control.as_str()) else {
        return r.did_not_run("/dev/tcp", &control);
    };
    if !c.starts_with("0 ") && *c != "0" {
        return fail(format!(
            "the control failed: the proxy's {proxy_internal}:3128 did not open ({c}), so a silent gateway proves nothing"
        ));
    }
    let mut answers = Vec::new();
    for port in HOST_PORTS {
        let key = format!("tcp:{gateway}:{port}");
        let Some(v) = pairs.get(key.as_str()) else {
            return r.did_not_run("/dev/tcp", &key);
        };
        let (exit, error) = v.split_once(' ').unwrap_or((v, ""));
        // 124: timeout killed the connect; no route and unreachable are the kernel's
        // answer when nothing is there. Open (0) or refused means a live host.
        let silent = exit == "124"
            || error.contains("No route to host")
            || error.contains("Network is unreachable");
        if !silent || error.contains("refused") {
            answers.push(format!("{port}: exit {exit} {error}"));
        }
    }
    if answers.is_empty() {
        pass(format!(
            "{gateway}: no answer on 22, 80, 2375, 3128 (the proxy's 3128 opens)"
        ))
    } else {
        fail(format!("{gateway} answers: {}", answers.join("; ")))
    }
}

// ---- DNS ------------------------------------------------------------------------------

/// `dns-sinkhole`'s probe.
pub fn dns_probe(denied: &str) -> String {
    format!(
        "echo \"answer=$(getent ahostsv4 {} | head -n 1)\"\n",
        quote(denied)
    )
}

/// `dns-sinkhole`, over [`dns_probe`].
pub fn judge_dns(denied: &str, r: &Recorded) -> Outcome {
    match r.fields("getent", ["answer"]) {
        Ok([a]) if a.starts_with("0.0.0.0 ") => pass(format!("{denied} → 0.0.0.0")),
        Ok([a]) => fail(format!("{denied} → {a:?}")),
        Err(o) => o,
    }
}

// ---- the filesystem ------------------------------------------------------------------

/// `read-only-root`'s probe, as root (as dev the permissions alone would refuse).
pub const READ_ONLY_PROBE: &str = "e=$(touch /etc/.safeai-verify 2>&1); rc=$?; \
[ $rc = 0 ] && rm -f /etc/.safeai-verify; echo \"touch_exit=$rc\"; \
echo \"touch_error=$(printf %s \"$e\" | tr '\\n' ' ')\"\n";

/// `read-only-root`, over [`READ_ONLY_PROBE`].
pub fn judge_read_only(r: &Recorded) -> Outcome {
    match r.fields("touch", ["touch_exit", "touch_error"]) {
        Ok([exit, error]) if exit != "0" && error.contains("Read-only file system") => {
            pass("touch /etc/… as root: read-only")
        }
        Ok([exit, error]) => fail(format!("touch /etc/… as root: exit {exit} {error:?}")),
        Err(o) => o,
    }
}

/// `tmp-noexec`'s probe, as dev: a copy of `/bin/true` in /tmp, run.
pub const NOEXEC_PROBE: &str = "f=/tmp/.safeai-verify-$$; cp /bin/true \"$f\" && chmod +x \"$f\" && echo copied=OK; \
e=$(\"$f\" 2>&1); echo \"exec_exit=$?\"; echo \"exec_error=$(printf %s \"$e\" | tr '\\n' ' ')\"; rm -f \"$f\"\n";

/// `tmp-noexec`, over [`NOEXEC_PROBE`].
pub fn judge_noexec(r: &Recorded) -> Outcome {
    match r.fields("cp and exec", ["copied", "exec_exit", "exec_error"]) {
        Ok(["OK", "126", error]) if error.contains("Permission denied") => {
            pass("/tmp/… → permission denied")
        }
        Ok([_, exit, error]) => fail(format!("/tmp/…: exit {exit} {error:?}")),
        Err(o) => o,
    }
}

/// `workspace-writable`'s probe, as dev.
pub const WRITABLE_PROBE: &str = "for d in workspace:/workspace tmp:/tmp \"home:$HOME\"; do \
f=${d#*:}/.safeai-verify-$$; if touch \"$f\" && rm \"$f\"; then echo \"write:${d%%:*}=OK\"; \
else echo \"write:${d%%:*}=FAIL\"; fi; done\n";

/// `workspace-writable`, over [`WRITABLE_PROBE`].
pub fn judge_writable(r: &Recorded) -> Outcome {
    match r.fields("touch", ["write:workspace", "write:tmp", "write:home"]) {
        Ok(["OK", "OK", "OK"]) => pass("written and removed"),
        Ok([w, t, h]) => fail(format!(
            "/workspace {w}, /tmp {t}, home {h}: {}",
            one_line(&r.stderr)
        )),
        Err(o) => o,
    }
}

// ---- privileges ------------------------------------------------------------------------

/// The privilege fields of dev's own process (`no-capabilities`, `no-new-privileges`,
/// `seccomp`), as dev: `/proc/self/status`, and `prctl(PR_GET_NO_NEW_PRIVS)` as
/// `prctl_no_new_privs=` (gVisor's `/proc/self/status` has no `NoNewPrivs` line; its
/// kernel answers the prctl).
pub const DEV_STATUS_PROBE: &str = "sed -n 's/^\\(CapPrm\\|CapEff\\|NoNewPrivs\\|Seccomp\\):[[:space:]]*/\\1=/p' /proc/self/status; \
python3 -c 'import ctypes; print(\"prctl_no_new_privs=%d\" % ctypes.CDLL(None).prctl(39, 0, 0, 0, 0))'\n";

/// Root's bounding set, in a root exec and in PID 1, as root.
pub const ROOT_CAPS_PROBE: &str = "sed -n 's/^CapBnd:[[:space:]]*/self_bnd=/p' /proc/self/status; \
sed -n 's/^CapBnd:[[:space:]]*/pid1_bnd=/p' /proc/1/status\n";

/// `no-capabilities`, over [`DEV_STATUS_PROBE`] as dev and [`ROOT_CAPS_PROBE`] as root.
pub fn judge_capabilities(expected: &Expected, dev: &Recorded, root: &Recorded) -> Outcome {
    let [prm, eff] = match dev.fields("/proc/self/status as dev", ["CapPrm", "CapEff"]) {
        Ok(v) => v,
        Err(o) => return o,
    };
    let [own, pid1] = match root.fields("/proc/*/status as root", ["self_bnd", "pid1_bnd"]) {
        Ok(v) => v,
        Err(o) => return o,
    };
    let zero = "0000000000000000";
    if prm != zero || eff != zero {
        return fail(format!(
            "dev holds capabilities: CapPrm {prm}, CapEff {eff}"
        ));
    }
    let want = expected.bounding_set;
    for (who, hex) in [("a root exec", own), ("PID 1", pid1)] {
        let Ok(got) = u64::from_str_radix(hex, 16) else {
            return fail(format!("{who}: CapBnd {hex:?} is not a mask"));
        };
        if got != want {
            let mut why = Vec::new();
            if got & !want != 0 {
                why.push(format!(
                    "beyond the model's: {} (is `cap_drop: ALL` missing?)",
                    capability_names(got & !want)
                ));
            }
            if want & !got != 0 {
                why.push(format!("missing: {}", capability_names(want & !got)));
            }
            return fail(format!("{who}: CapBnd {hex}; {}", why.join("; ")));
        }
    }
    pass(format!(
        "dev: CapEff 0; root's bounding set (exec and PID 1) is {}",
        capability_names(want)
    ))
}

/// `no-new-privileges`, over [`DEV_STATUS_PROBE`]. On the host's kernel, its own field
/// in `/proc/self/status`; gVisor's has no such line, so there its kernel's answer to
/// `prctl(PR_GET_NO_NEW_PRIVS)`.
pub fn judge_no_new_privileges(kernel: Kernel, dev: &Recorded) -> Outcome {
    match kernel {
        Kernel::Host => match dev.fields("/proc/self/status as dev", ["NoNewPrivs"]) {
            Ok(["1"]) => pass("NoNewPrivs 1"),
            Ok([v]) => fail(format!("NoNewPrivs {v}")),
            Err(o) => o,
        },
        Kernel::Gvisor => match dev.fields("prctl as dev", ["prctl_no_new_privs"]) {
            Ok(["1"]) => {
                pass("gVisor: PR_GET_NO_NEW_PRIVS 1 (its /proc/self/status has no NoNewPrivs line)")
            }
            Ok([v]) => fail(format!("gVisor: PR_GET_NO_NEW_PRIVS {v}")),
            Err(o) => o,
        },
    }
}

/// `seccomp`'s probe (Python, run as dev and as root). Each call is made in a forked child
/// (one that gets through changes only the child) with arguments the kernel itself would
/// refuse with another errno than EPERM: only a filter answers EPERM before looking at
/// them. Docker's default profile lets `ptrace`, `ioctl` and `socket` reach the kernel;
/// the sandbox's refuses PTRACE_*, TIOCSTI and every socket family but four. An unknown
/// architecture prints `arch=unknown:…` and nothing else.
pub const SECCOMP_PROBE: &str = r#"python3 - <<'SAFEAI_PY'
import ctypes, errno, os, platform
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
ARCH = platform.machine()
NR = {
    "x86_64": dict(ioctl=16, socket=41, ptrace=101, unshare=272),
    "aarch64": dict(ioctl=29, socket=198, ptrace=117, unshare=97),
}.get(ARCH)
print(f"arch={ARCH if NR else 'unknown:' + ARCH}", flush=True)
def sc(name, *args):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            ctypes.set_errno(0)
            rc = libc.syscall(ctypes.c_long(NR[name]), *[ctypes.c_ulong(a) for a in args])
            e = ctypes.get_errno()
            os.write(w, ("OK" if rc != -1 else errno.errorcode.get(e, str(e))).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        result = f.read()
    os.waitpid(pid, 0)
    return result or "NO-ANSWER"
if NR:
    # unshare(CLONE_NEWUSER | CSIGNAL's 0x1): an invalid flag, EINVAL from the kernel.
    print("unshare_newuser=" + sc("unshare", 0x10000000 | 0x1))
    # PTRACE_PEEKDATA of a PID above pid_max: ESRCH from the kernel.
    print("ptrace_no_such_pid=" + sc("ptrace", 2, 0x7ffffff0, 0, 0))
    # TIOCSTI on a descriptor that is not open: EBADF from the kernel.
    print("tiocsti_bad_fd=" + sc("ioctl", 987654, 0x5412, 0))
    # AF_CAN with an unknown type flag: EINVAL from the kernel.
    print("socket_can_bad_type=" + sc("socket", 29, 1 | 0x100, 0))
SAFEAI_PY
"#;

/// The calls of [`SECCOMP_PROBE`] and the errno the kernel gives each when no filter
/// stops it.
const SECCOMP_CALLS: [(&str, &str); 4] = [
    ("unshare_newuser", "EINVAL"),
    ("ptrace_no_such_pid", "ESRCH"),
    ("tiocsti_bad_fd", "EBADF"),
    ("socket_can_bad_type", "EINVAL"),
];

/// `seccomp`, over [`DEV_STATUS_PROBE`] and [`SECCOMP_PROBE`] as dev and as root.
///
/// Under gVisor the stack's filter is not applied (runsc is registered without
/// `--oci-seccomp`: README, "gVisor"), an accepted difference: gVisor's kernel answers
/// every call of the sandbox itself, and the host's kernel sees only gVisor's own calls,
/// under runsc's filter. There the check requires no filter in the sandbox and that each
/// call reached gVisor's kernel (an answer that is not the filter's EPERM); should runsc
/// be registered with `--oci-seccomp`, the filter must refuse as on the host's kernel.
pub fn judge_seccomp(
    kernel: Kernel,
    dev_status: &Recorded,
    as_dev: &Recorded,
    as_root: &Recorded,
) -> Outcome {
    let [mode] = match dev_status.fields("/proc/self/status as dev", ["Seccomp"]) {
        Ok(v) => v,
        Err(o) => return o,
    };
    let unfiltered = kernel == Kernel::Gvisor && mode == "0";
    if mode != "2" && !unfiltered {
        return fail(format!("Seccomp {mode}: no filter"));
    }
    let mut seen = Vec::new();
    let mut answers = Vec::new();
    for (user, r) in [("dev", as_dev), ("root", as_root)] {
        let [arch] = match r.fields(&format!("python3 as {user}"), ["arch"]) {
            Ok(v) => v,
            Err(o) => return o,
        };
        if let Some(other) = arch.strip_prefix("unknown:") {
            return Outcome::NotApplicable(format!(
                "no syscall numbers for this architecture ({other})"
            ));
        }
        let keys = SECCOMP_CALLS.map(|(k, _)| k);
        let values = match r.fields(&format!("python3 as {user}"), keys) {
            Ok(v) => v,
            Err(o) => return o,
        };
        if unfiltered {
            // gVisor's kernel answered: anything but a refusal before it looked.
            let refused: Vec<&str> = keys
                .iter()
                .zip(values)
                .filter(|(_, got)| *got == "EPERM" || *got == "NO-ANSWER")
                .map(|(call, _)| *call)
                .collect();
            if !refused.is_empty() {
                return fail(format!(
                    "gVisor, Seccomp 0, as {user}: {} answered EPERM or nothing, which gVisor's kernel does not give those arguments",
                    refused.join(", ")
                ));
            }
            if user == "dev" {
                answers = keys
                    .iter()
                    .zip(values)
                    .map(|(call, got)| format!("{call} {got}"))
                    .collect();
            }
            seen.push(user);
            continue;
        }
        let wrong: Vec<String> = SECCOMP_CALLS
            .iter()
            .zip(values)
            .filter(|(_, got)| *got != "EPERM")
            .map(|((call, kernel), got)| {
                if got == *kernel {
                    format!("{call}: {got}, the kernel's answer (reached it)")
                } else {
                    format!("{call}: {got}")
                }
            })
            .collect();
        if !wrong.is_empty() {
            return fail(format!(
                "as {user}: {} — not this stack's filter (Docker's default profile?)",
                wrong.join(", ")
            ));
        }
        seen.push(user);
    }
    if unfiltered {
        return pass(format!(
            "gVisor: the stack's filter is not applied (an accepted difference, README \"gVisor\"); gVisor's kernel answers every call ({}, as {}), the host's kernel sees only gVisor's own calls",
            answers.join(", "),
            seen.join(" and ")
        ));
    }
    pass(format!(
        "filter mode; unshare, ptrace, TIOCSTI and AF_CAN refused with EPERM before the kernel looked (as {})",
        seen.join(" and ")
    ))
}

/// `mount-refused`'s probe, as root (unmounts again if the mount went through).
pub const MOUNT_PROBE: &str = "e=$(mount -t tmpfs none /mnt 2>&1); rc=$?; echo \"mount_exit=$rc\"; \
echo \"mount_error=$(printf %s \"$e\" | tr '\\n' ' ')\"; \
echo \"mounted=$(grep -c ' /mnt ' /proc/mounts)\"; [ $rc = 0 ] && umount /mnt; true\n";

/// `mount-refused`, over [`MOUNT_PROBE`].
pub fn judge_mount(r: &Recorded) -> Outcome {
    match r.fields("mount", ["mount_exit", "mount_error", "mounted"]) {
        // 32: util-linux's "mount failure", here the kernel's EPERM.
        Ok(["32", error, "0"]) if error.to_lowercase().contains("permission denied") => {
            pass(format!("mount -t tmpfs as root: {}", one_line(error)))
        }
        Ok([exit, error, mounted]) => fail(format!(
            "mount -t tmpfs as root: exit {exit} {error:?}; /mnt mounted {mounted} times"
        )),
        Err(o) => o,
    }
}

/// `pids-limit`'s probe (cgroup v2, then v1).
pub const PIDS_PROBE: &str = "echo \"pids_max=$(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max)\"\n";

/// `pids-limit`, over [`PIDS_PROBE`] in the sandbox and the same file of the sandbox's
/// cgroup on the host (`pids_max=`, read by the CLI through [`cgroup_dir`]).
///
/// On the host's kernel the sandbox's own cgroup file is the limit. gVisor's kernel
/// shows its own cgroup files, which do not carry it ("max"): the limit is on the host's
/// cgroup of the sandbox (gVisor's kernel and its stub processes, about two host tasks
/// per process in the sandbox), so there the host's file is the one judged.
pub fn judge_pids(
    expected: &Expected,
    kernel: Kernel,
    inside: &Recorded,
    host: &Recorded,
) -> Outcome {
    let want = expected.pids.to_string();
    match kernel {
        Kernel::Host => match inside.fields("cat pids.max", ["pids_max"]) {
            Ok([v]) if v == want => pass(format!("pids.max {v}")),
            Ok([v]) => fail(format!("pids.max {v:?}, expected {want}")),
            Err(o) => o,
        },
        Kernel::Gvisor => {
            let [shown] = match inside.fields("cat pids.max", ["pids_max"]) {
                Ok(v) => v,
                Err(o) => return o,
            };
            match host.fields("the sandbox's pids cgroup on the host", ["pids_max"]) {
                Ok([v]) if v == want => pass(format!(
                    "gVisor: pids.max {v} on the host's cgroup of the sandbox (gVisor's kernel and its stubs; inside, gVisor's own cgroup shows {shown:?})"
                )),
                Ok([v]) => fail(format!(
                    "gVisor: pids.max {v:?} on the host's cgroup of the sandbox, expected {want}"
                )),
                Err(o) => o,
            }
        }
    }
}

/// The directory under `/sys/fs/cgroup` of `controller` (`pids`, `memory`, `cpu`) for
/// a process, from its `/proc/PID/cgroup`: cgroup v1's `N:pids:/docker/ID` gives
/// `pids/docker/ID`, v2's single `0::/path` gives `path`. `None` when the file names
/// neither (a process that is gone, a controller that is not mounted).
pub fn cgroup_dir(proc_cgroup: &str, controller: &str) -> Option<String> {
    let entries: Vec<(&str, &str)> = proc_cgroup
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some((controllers, path.trim_start_matches('/')))
        })
        .collect();
    let v1 = entries
        .iter()
        .find(|(controllers, _)| controllers.split(',').any(|c| c == controller));
    match v1 {
        Some((controllers, path)) => Some(
            format!("{controllers}/{path}")
                .trim_end_matches('/')
                .to_owned(),
        ),
        // v2 only when it is the sole hierarchy: on a v1 host, "0::/" is the unused one.
        None if entries.len() == 1 && entries[0].0.is_empty() => {
            Some(entries[0].1.trim_end_matches('/').to_owned())
        }
        None => None,
    }
}

/// Which kernel the sandbox's processes talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// The host's Linux (runc, or any runtime that is not gVisor).
    Host,
    /// gVisor's user-space kernel (runsc).
    Gvisor,
}

/// The kernel [`KERNEL_PROBE`] shows, or the failure of a probe that did not run.
pub fn kernel_of(kernel: &Recorded) -> Result<Kernel, Outcome> {
    match kernel.fields("cat /proc/version", ["kernel"]) {
        Ok([v]) if v.contains(GVISOR_VERSION) => Ok(Kernel::Gvisor),
        Ok([v]) if !v.is_empty() => Ok(Kernel::Host),
        Ok(_) => Err(fail("cat /proc/version printed nothing")),
        Err(o) => Err(o),
    }
}

/// The build string gVisor's kernel reports in `/proc/version`; no Linux kernel does.
pub const GVISOR_VERSION: &str = "#1 SMP Sun Jan 10 15:06:54 PST 2016";

/// `runtime`'s probe in the sandbox: the kernel its processes see.
pub const KERNEL_PROBE: &str = "echo \"kernel=$(cat /proc/version)\"\n";

/// `runtime`, over Docker's word for the sandbox's runtime (`docker inspect -f
/// '{{.HostConfig.Runtime}}'`) and [`KERNEL_PROBE`]: under runsc the kernel must be
/// gVisor's, so that a missing or misregistered runtime is seen; under any other runtime
/// the report names the kernel, the host's under runc.
pub fn judge_runtime(runtime: &Recorded, kernel: &Recorded) -> Outcome {
    let name = runtime.stdout.trim();
    if runtime.status != Some(0) || name.is_empty() || name.contains(char::is_whitespace) {
        return fail(format!(
            "cannot read the sandbox's runtime from docker inspect: {}",
            one_line(&format!("{}{}", runtime.stdout, runtime.stderr))
        ));
    }
    let version = match kernel.fields("cat /proc/version", ["kernel"]) {
        Ok([v]) if !v.is_empty() => v,
        Ok(_) => return fail("cat /proc/version printed nothing"),
        Err(o) => return o,
    };
    let gvisor = version.contains(GVISOR_VERSION);
    match (name, gvisor) {
        ("runsc", true) => pass("runsc: the sandbox's kernel is gVisor's"),
        ("runsc", false) => fail(format!(
            "docker says runsc, but the sandbox's kernel is not gVisor's: {version}"
        )),
        (other, true) => pass(format!("{other}: the sandbox's kernel is gVisor's")),
        (other, false) => {
            let release = version.split_whitespace().nth(2).unwrap_or(version);
            pass(format!(
                "{other}: the host's kernel, Linux {release} (seccomp and capabilities are the boundary)"
            ))
        }
    }
}

#[cfg(test)]
mod tests;
