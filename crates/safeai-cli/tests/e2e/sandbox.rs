//! Confinement inside the sandbox, and the work that must keep working there.
//!
//! Every refusal is checked for its cause, not only for failing: a seccomp refusal is
//! told apart from the kernel's own checks by calling the syscall once more with an
//! argument the kernel itself would reject with another errno (a bad file descriptor, an
//! invalid flag, a bad pointer). The seccomp filter answers before the kernel looks at any
//! argument, so only the filter can turn those calls into EPERM (or ENOSYS for clone3).

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::stack::{Stack, ensure, free_port, key_values, text, unique};

// ---- helpers ---------------------------------------------------------------------------

/// Compares a probe's `KEY=VALUE` answers with what is expected of each key; every
/// mismatch is listed, with the probe's whole output as the evidence.
fn expect_all(who: &str, out: &Output, want: &[(&str, &str)]) -> Result<(), String> {
    let got = key_values(&text(&out.stdout));
    let wrong: Vec<String> = want
        .iter()
        .filter(|(k, v)| got.get(*k).map(String::as_str) != Some(*v))
        .map(|(k, v)| {
            format!(
                "{k}: expected {v}, got {}",
                got.get(*k).map_or("nothing", String::as_str)
            )
        })
        .collect();
    ensure(wrong.is_empty(), || {
        format!(
            "{who}:\n  {}\n--- stdout ---\n{}--- stderr ---\n{}",
            wrong.join("\n  "),
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

/// A name no other run or check uses, for files in the shared volumes.
/// Python with ctypes, shared by the syscall probes: `sc(name, *args)` calls the raw
/// syscall and returns "OK" or the errno's name. An unknown architecture prints
/// `arch=unknown:…` and stops: the caller fails on it rather than test wrong numbers.
const PY_SYSCALL: &str = r#"
import ctypes, errno, os, platform, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
ARCH = platform.machine()
NR = {
    "x86_64": dict(ioctl=16, socket=41, ptrace=101, personality=135, mount=165,
                   keyctl=250, unshare=272, bpf=321, clone3=435),
    "aarch64": dict(ioctl=29, mount=40, unshare=97, ptrace=117, personality=92,
                    socket=198, keyctl=219, bpf=280, clone3=435),
}.get(ARCH)
print(f"arch={ARCH if NR else 'unknown:' + ARCH}", flush=True)
if NR is None:
    sys.exit(0)
def arg(a):
    return a if isinstance(a, (ctypes.Array, ctypes.c_char_p)) else ctypes.c_ulong(a)
def sc(name, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(NR[name]), *[arg(a) for a in args])
    e = ctypes.get_errno()
    return "OK" if r != -1 else errno.errorcode.get(e, str(e))
def iso(name, *args):
    """sc() in a forked child: a call the filter lets through (PTRACE_TRACEME, unshare,
    personality) changes only that child, not the probe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.write(w, sc(name, *args).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        result = f.read()
    os.waitpid(pid, 0)
    return result or "NO-ANSWER"
def out(key, value):
    print(f"{key}={value}", flush=True)
"#;

/// A Python program after [`PY_SYSCALL`], as a bash heredoc.
fn python(body: &str) -> String {
    format!("python3 - <<'SAFEAI_PY'\n{PY_SYSCALL}\n{body}\nSAFEAI_PY\n")
}

/// `ssh` from the host with `extra` arguments (options, destination, command), bounded
/// to `secs` seconds: killed by its PID when it takes longer.
fn ssh(s: &Stack, extra: &[&str], env: &[(&str, &str)], secs: u64) -> Result<Output, String> {
    let mut args = s.ssh_options();
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let mut cmd = Command::new("ssh");
    cmd.args(&args)
        .env_remove("SSH_AUTH_SOCK")
        .envs(env.iter().copied());
    bounded(cmd, &format!("ssh {}", extra.join(" ")), secs, &s.scratch)
}

/// Runs `cmd` to completion with stdout and stderr in scratch files, killing it (by the
/// PID spawned here) after `secs` seconds.
fn bounded(
    mut cmd: Command,
    what: &str,
    secs: u64,
    dir: &std::path::Path,
) -> Result<Output, String> {
    let base = dir.join(unique("out"));
    let (o, e) = (base.with_extension("stdout"), base.with_extension("stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&o).unwrap())
        .stderr(File::create(&e).unwrap())
        .spawn()
        .map_err(|err| format!("{what}: could not start: {err}"))?;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&o);
            let _ = std::fs::remove_file(&e);
            return Err(format!("{what}: still running after {secs} s, killed"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = Output {
        status,
        stdout: std::fs::read(&o).unwrap_or_default(),
        stderr: std::fs::read(&e).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(&o);
    let _ = std::fs::remove_file(&e);
    Ok(out)
}

/// A host process started by a check, killed (by its PID) and reaped when dropped.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scratch path removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A directory in the sandbox's /workspace, removed (as dev) when dropped.
struct WorkDir<'a> {
    s: &'a Stack,
    path: String,
}

impl<'a> WorkDir<'a> {
    fn new(s: &'a Stack, tag: &str) -> Result<Self, String> {
        let path = format!("/workspace/.{}", unique(tag));
        let out = s.sandbox(&format!("mkdir '{path}'"));
        ensure(out.status.success(), || {
            format!("mkdir {path} as dev: {}", text(&out.stderr))
        })?;
        Ok(WorkDir { s, path })
    }
}

impl Drop for WorkDir<'_> {
    fn drop(&mut self) {
        self.s.sandbox(&format!("rm -rf '{}'", self.path));
    }
}

// ---- 1. seccomp ------------------------------------------------------------------------

/// The syscall probe: each key is one call, each value "OK" or the errno's name.
/// `BADFD` is a descriptor number that is not open: for an ioctl that seccomp lets
/// through, the kernel answers EBADF; only the filter answers EPERM.
const SECCOMP_PROBE: &str = r#"
import fcntl, pty, struct, termios, threading
out("kernel", os.uname().release)
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
BADFD = 987654

# Namespaces. Unfiltered, an unprivileged process may create a user namespace; a network
# namespace takes CAP_SYS_ADMIN, so its EPERM could be the kernel's. The flag 0x1
# (CSIGNAL's) is invalid for unshare: unfiltered, the kernel answers EINVAL to both.
out("unshare_newuser", iso("unshare", CLONE_NEWUSER))
out("unshare_newnet", iso("unshare", CLONE_NEWNET))
out("unshare_newuser_invalid_flag", iso("unshare", CLONE_NEWUSER | 0x1))
out("unshare_newnet_invalid_flag", iso("unshare", CLONE_NEWNET | 0x1))

# ptrace. Unfiltered, PTRACE_TRACEME succeeds for anyone (no Yama here), and PEEKDATA of
# a PID above pid_max answers ESRCH.
out("ptrace_traceme", iso("ptrace", 0, 0, 0, 0))
out("ptrace_peek_no_such_pid", iso("ptrace", 2, 0x7ffffff0, 0, 0))

# bpf. BPF_MAP_CREATE of a one-entry array: unprivileged BPF may be refused by the
# kernel too (kernel.unprivileged_bpf_disabled), so the same command with an unreadable
# attribute pointer tells them apart: since Linux 6.5 the kernel copies the attributes
# before any permission check and answers EFAULT.
attr = ctypes.create_string_buffer(struct.pack("IIII", 2, 4, 4, 1), 64)
out("bpf_map_create", iso("bpf", 0, attr, 64))
out("bpf_bad_pointer", iso("bpf", 0, 1, 64))

# keyctl. Unfiltered, KEYCTL_GET_KEYRING_ID of the session keyring answers its ID (or
# ENOKEY), and an unknown operation EOPNOTSUPP.
out("keyctl_get_keyring_id", iso("keyctl", 0, -3 & 0xffffffffffffffff, 0))
out("keyctl_unknown_op", iso("keyctl", 0x7fffffff, 0, 0, 0))

# TIOCSTI (push a byte into a terminal's input: a way out of a terminal shared with the
# host). On a pty that is not our controlling terminal the kernel refuses it by itself
# (EPERM), so: the pty as the controlling terminal of a new session (where an unfiltered
# kernel with dev.tty.legacy_tiocsti=1 accepts it), and a bad descriptor (EBADF
# unfiltered). The same request with bits above 32 set: the kernel looks only at the
# low 32, so must the filter. TIOCGWINSZ on the same pty must work, and on the bad
# descriptor reach the kernel (EBADF).
master, slave = pty.openpty()
try:
    fcntl.ioctl(slave, termios.TIOCSTI, b"x")
    out("tiocsti_pty", "OK")
except OSError as e:
    out("tiocsti_pty", errno.errorcode[e.errno])
pid = os.fork()
if pid == 0:
    try:
        os.setsid()
        fd = os.open(os.ttyname(slave), os.O_RDWR)  # becomes the controlling terminal
        fcntl.ioctl(fd, termios.TIOCSTI, b"x")
        os._exit(0)
    except OSError as e:
        os._exit(e.errno)
    finally:
        os._exit(255)
code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
out("tiocsti_controlling_tty", "OK" if code == 0 else errno.errorcode.get(code, str(code)))
byte = ctypes.c_char_p(b"x")
out("tiocsti_high_bits_pty", iso("ioctl", slave, 0x100005412, byte))
out("tiocsti_bad_fd", iso("ioctl", BADFD, 0x5412, byte))
out("tiocsti_high_bits_bad_fd", iso("ioctl", BADFD, 0x100005412, byte))
out("tioclinux_bad_fd", iso("ioctl", BADFD, 0x541C, byte))
try:
    fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\0" * 8)
    out("tiocgwinsz_pty", "OK")
except OSError as e:
    out("tiocgwinsz_pty", errno.errorcode[e.errno])
winsz = ctypes.create_string_buffer(8)
out("tiocgwinsz_bad_fd", sc("ioctl", BADFD, termios.TIOCGWINSZ, winsz))

# personality: the query (0xffffffff) works; ADDR_NO_RANDOMIZE (turns ASLR off for the
# programs this process runs) always succeeds unfiltered.
out("personality_query", iso("personality", 0xffffffff))
out("personality_addr_no_randomize", iso("personality", 0x0040000))

# clone3: ENOSYS, so that glibc falls back to clone (whose flags seccomp can see). The
# arguments are ones the kernel (5.3+, which has clone3) rejects with EINVAL before
# creating anything: a NULL struct of size 0 (below CLONE_ARGS_SIZE_VER0), and a full
# 88-byte struct whose exit_signal is not a signal. So ENOSYS can only be the filter's,
# and an unfiltered kernel would not fork this process either.
out("clone3_null", iso("clone3", 0, 0))
args = ctypes.create_string_buffer(struct.pack("QQQQQQQQQQQ", 0, 0, 0, 0, 0x1000, 0, 0, 0, 0, 0, 0), 88)
out("clone3_struct", iso("clone3", args, 88))

# pthread_create still works (glibc tries clone3, gets ENOSYS, uses clone).
done = []
threads = [threading.Thread(target=lambda i=i: done.append(i)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
out("threads", "OK" if sorted(done) == [0, 1, 2, 3] else f"FAIL:{done}")
"#;

const SECCOMP_EXPECTED: &[(&str, &str)] = &[
    ("unshare_newuser", "EPERM"),
    ("unshare_newnet", "EPERM"),
    ("unshare_newuser_invalid_flag", "EPERM"),
    ("unshare_newnet_invalid_flag", "EPERM"),
    ("ptrace_traceme", "EPERM"),
    ("ptrace_peek_no_such_pid", "EPERM"),
    ("bpf_map_create", "EPERM"),
    ("bpf_bad_pointer", "EPERM"),
    ("keyctl_get_keyring_id", "EPERM"),
    ("keyctl_unknown_op", "EPERM"),
    ("tiocsti_pty", "EPERM"),
    ("tiocsti_controlling_tty", "EPERM"),
    ("tiocsti_high_bits_pty", "EPERM"),
    ("tiocsti_bad_fd", "EPERM"),
    ("tiocsti_high_bits_bad_fd", "EPERM"),
    ("tioclinux_bad_fd", "EPERM"),
    ("tiocgwinsz_pty", "OK"),
    ("tiocgwinsz_bad_fd", "EBADF"),
    ("personality_query", "OK"),
    ("personality_addr_no_randomize", "EPERM"),
    ("clone3_null", "ENOSYS"),
    ("clone3_struct", "ENOSYS"),
    ("threads", "OK"),
];

/// The same probe under gVisor (runsc 0.0~20240729, registered without `--oci-seccomp`:
/// README, "gVisor"), where no filter is applied and gVisor's kernel answers each call
/// itself. What fails there, fails in gVisor's kernel; what it allows happens in gVisor's
/// kernel only (no host kernel object is made for it, and for user namespaces
/// [`seccomp_refuses_dangerous_syscalls`] checks that on the host).
const SECCOMP_EXPECTED_GVISOR: &[(&str, &str)] = &[
    // Contained: gVisor's kernel makes user namespaces itself (and ignores CSIGNAL's bit
    // that Linux rejects); one grants capabilities over gVisor's objects only.
    ("unshare_newuser", "OK"),
    ("unshare_newuser_invalid_flag", "OK"),
    // Fails: no CAP_SYS_ADMIN, gVisor's own capability check.
    ("unshare_newnet", "EPERM"),
    ("unshare_newnet_invalid_flag", "EPERM"),
    // Contained: gVisor implements ptrace among its own tasks; no host process is traced.
    ("ptrace_traceme", "OK"),
    ("ptrace_peek_no_such_pid", "ESRCH"),
    // Fails: gVisor's kernel offers no BPF maps or programs to unprivileged callers.
    ("bpf_map_create", "EPERM"),
    ("bpf_bad_pointer", "EPERM"),
    // Contained: gVisor's kernel keeps a session keyring of its own (nothing reaches the
    // host's keyrings); operations it lacks answer ENOSYS.
    ("keyctl_get_keyring_id", "OK"),
    ("keyctl_unknown_op", "ENOSYS"),
    // Fails: gVisor's terminals do not implement TIOCSTI (ENOTTY), and gVisor's
    // terminal is never the host's.
    ("tiocsti_pty", "ENOTTY"),
    ("tiocsti_controlling_tty", "ENOTTY"),
    ("tiocsti_high_bits_pty", "ENOTTY"),
    ("tiocsti_bad_fd", "EBADF"),
    ("tiocsti_high_bits_bad_fd", "EBADF"),
    ("tioclinux_bad_fd", "EBADF"),
    ("tiocgwinsz_pty", "OK"),
    ("tiocgwinsz_bad_fd", "EBADF"),
    // Fails: gVisor's personality(2) accepts no change of persona and not even the query
    // (EINVAL), so ASLR cannot be turned off.
    ("personality_query", "EINVAL"),
    ("personality_addr_no_randomize", "EINVAL"),
    // gVisor implements clone3 (EINVAL for these invalid arguments), so pthreads do not
    // depend on the ENOSYS fallback there.
    ("clone3_null", "EINVAL"),
    ("clone3_struct", "EINVAL"),
    ("threads", "OK"),
];

/// The user namespaces of `service`'s processes on the host (its cgroup's tasks).
fn host_user_namespaces(s: &Stack, service: &str) -> Result<Vec<String>, String> {
    let procs = s.host_cgroup_file(service, "pids", "cgroup.procs")?;
    let mut namespaces: Vec<String> = procs
        .lines()
        .filter_map(|pid| std::fs::read_link(format!("/proc/{}/ns/user", pid.trim())).ok())
        .map(|l| l.display().to_string())
        .collect();
    ensure(!namespaces.is_empty(), || {
        format!("no host process of the {service} container: {procs:?}")
    })?;
    namespaces.sort();
    namespaces.dedup();
    Ok(namespaces)
}

/// seccomp refuses namespaces, ptrace, bpf, keyctl, TIOCSTI (also with high bits set),
/// personality(ADDR_NO_RANDOMIZE) with EPERM and clone3 with ENOSYS, for dev and for
/// root, while the harmless neighbours (TIOCGWINSZ, the personality query, threads) work.
/// Under gVisor, each call gets gVisor's kernel's answer ([`SECCOMP_EXPECTED_GVISOR`]),
/// and a user namespace made inside is gVisor's: the host sees none.
pub fn seccomp_refuses_dangerous_syscalls(s: &Stack) -> Result<(), String> {
    if s.runtime == "runsc" {
        return dangerous_syscalls_under_gvisor(s);
    }
    let probe = python(SECCOMP_PROBE);
    for user in ["dev", "root"] {
        let out = s.exec("sandbox", user, &probe);
        let got = key_values(&text(&out.stdout));
        let arch = got.get("arch").cloned().unwrap_or_default();
        ensure(arch == "x86_64" || arch == "aarch64", || {
            format!(
                "{user}: no syscall numbers for this architecture ({arch:?}); stdout {}, stderr {}",
                text(&out.stdout),
                text(&out.stderr)
            )
        })?;
        let kernel = got.get("kernel").map_or("?", String::as_str);
        expect_all(
            &format!("{user} ({arch}, kernel {kernel})"),
            &out,
            SECCOMP_EXPECTED,
        )?;
    }

    // The same refusal through the util-linux commands (present: `command -v` first, so
    // that "command not found" cannot pass for a refusal).
    for user in ["dev", "root"] {
        let out = s.exec(
            "sandbox",
            user,
            "command -v unshare >/dev/null || { echo 'unshare: not installed'; exit 0; }
             for f in -U -n; do printf '%s: ' \"$f\"; unshare \"$f\" true 2>&1 && echo RAN; done; true",
        );
        let got = text(&out.stdout);
        ensure(
            got.matches("unshare failed: Operation not permitted")
                .count()
                == 2
                && !got.contains("RAN"),
            || format!("{user}: `unshare -U true` / `unshare -n true`:\n{got}"),
        )?;
    }
    Ok(())
}

fn dangerous_syscalls_under_gvisor(s: &Stack) -> Result<(), String> {
    let probe = python(SECCOMP_PROBE);
    for user in ["dev", "root"] {
        let out = s.exec("sandbox", user, &probe);
        let got = key_values(&text(&out.stdout));
        ensure(
            got.get("arch").map(String::as_str) == Some("x86_64"),
            || {
                format!(
                    "{user}: the gVisor answers were recorded on x86_64 only: {} {}",
                    text(&out.stdout),
                    text(&out.stderr)
                )
            },
        )?;
        expect_all(
            &format!(
                "{user} under gVisor (kernel {})",
                got.get("kernel").map_or("?", String::as_str)
            ),
            &out,
            SECCOMP_EXPECTED_GVISOR,
        )?;
    }
    // util-linux: `unshare -U` runs (in gVisor's kernel), `unshare -n` is refused.
    for user in ["dev", "root"] {
        let out = s.exec(
            "sandbox",
            user,
            "printf 'U: '; unshare -U true 2>&1 && echo RAN; printf 'n: '; unshare -n true 2>&1 && echo RAN; true",
        );
        let got = text(&out.stdout);
        ensure(
            got.lines().any(|l| l == "U: RAN")
                && got.lines().any(|l| {
                    l.starts_with("n: ") && l.ends_with("unshare failed: Operation not permitted")
                })
                && got.matches("RAN").count() == 1,
            || format!("{user} under gVisor: `unshare -U true` / `unshare -n true`:\n{got}"),
        )?;
    }
    // Contained: while a process in the sandbox sits in a user namespace of its own (its
    // uid_map shows it), the host's processes of the sandbox are in the user namespaces
    // they were in before: the namespace is an object of gVisor's kernel only.
    let before = host_user_namespaces(s, "sandbox")?;
    let inside = std::thread::scope(|scope| {
        let held = scope.spawn(|| {
            s.sandbox(
                "unshare -U -r sh -c 'echo \"uid_map=$(cat /proc/self/uid_map | tr -s \" \" | sed \"s/^ //\")\"; sleep 4'",
            )
        });
        std::thread::sleep(Duration::from_secs(2));
        let during = host_user_namespaces(s, "sandbox");
        (held.join(), during)
    });
    let (held, during) = inside;
    let held = held.map_err(|_| "the unshare thread panicked".to_owned())?;
    let during = during?;
    let uid_map = key_values(&text(&held.stdout))
        .get("uid_map")
        .cloned()
        .unwrap_or_default();
    ensure(uid_map == "0 1000 1", || {
        format!(
            "`unshare -U -r` as dev did not enter a user namespace of its own: {} {}",
            text(&held.stdout),
            text(&held.stderr)
        )
    })?;
    ensure(during.iter().all(|ns| before.contains(ns)), || {
        format!(
            "a user namespace appeared on the host while one was made in the sandbox: before {before:?}, during {during:?}"
        )
    })?;
    eprintln!(
        "gVisor: a user namespace inside (uid_map {uid_map}); the host's processes of the sandbox stay in {before:?}"
    );
    Ok(())
}

/// The socket probe. Unfiltered, the kernel rejects a type with an unknown flag bit
/// (0x100) with EINVAL before it looks at the family, whatever the family and whoever
/// asks; only the filter can answer EPERM to that call. A family the filter allows reaches
/// the kernel and gets EINVAL; a refused one gets EPERM. Then real sockets of the four
/// allowed families, and of two refused ones.
const SOCKET_PROBE: &str = r#"
import socket
BAD_TYPE = socket.SOCK_STREAM | 0x100
FAMILIES = dict(unix=1, inet=2, inet6=10, netlink=16, unspec=0, key=15, packet=17,
                can=29, bluetooth=31, alg=38, vsock=40, xdp=44)
for name, family in FAMILIES.items():
    out(f"bad_type_{name}", iso("socket", family, BAD_TYPE, 0))
    out(f"bad_type_{name}_high_bits", iso("socket", family | 1 << 32, BAD_TYPE, 0))
def real(family, kind, proto=0):
    try:
        socket.socket(family, kind, proto).close()
        return "OK"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
out("real_unix", real(socket.AF_UNIX, socket.SOCK_STREAM))
out("real_inet", real(socket.AF_INET, socket.SOCK_STREAM))
out("real_inet6", real(socket.AF_INET6, socket.SOCK_DGRAM))
out("real_netlink_route", real(socket.AF_NETLINK, socket.SOCK_RAW, 0))
out("real_packet", real(socket.AF_PACKET, socket.SOCK_DGRAM))
out("real_can", real(socket.AF_CAN, socket.SOCK_RAW, 1))
"#;

/// seccomp lets `socket` through for AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK only (also
/// with high bits set, which the kernel drops) and refuses every other family with EPERM,
/// for dev and root; the allowed families give working sockets, and `ip` (netlink) and
/// Python's loopback TCP over IPv4 work.
pub fn seccomp_allows_only_four_socket_families(s: &Stack) -> Result<(), String> {
    let mut want: Vec<(String, &str)> = Vec::new();
    for (family, verdict) in [
        ("unix", "EINVAL"),
        ("inet", "EINVAL"),
        ("inet6", "EINVAL"),
        ("netlink", "EINVAL"),
        ("unspec", "EPERM"),
        ("key", "EPERM"),
        ("packet", "EPERM"),
        ("can", "EPERM"),
        ("bluetooth", "EPERM"),
        ("alg", "EPERM"),
        ("vsock", "EPERM"),
        ("xdp", "EPERM"),
    ] {
        want.push((format!("bad_type_{family}"), verdict));
        want.push((format!("bad_type_{family}_high_bits"), verdict));
    }
    for (key, verdict) in [
        ("real_unix", "OK"),
        ("real_inet", "OK"),
        ("real_inet6", "OK"),
        ("real_netlink_route", "OK"),
        ("real_packet", "EPERM"),
        ("real_can", "EPERM"),
    ] {
        want.push((key.to_owned(), verdict));
    }
    let want: Vec<(&str, &str)> = want.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let probe = python(SOCKET_PROBE);
    for user in ["dev", "root"] {
        let out = s.exec("sandbox", user, &probe);
        let arch = key_values(&text(&out.stdout))
            .get("arch")
            .cloned()
            .unwrap_or_default();
        ensure(arch == "x86_64" || arch == "aarch64", || {
            format!(
                "{user}: no syscall numbers for {arch:?}: {}",
                text(&out.stderr)
            )
        })?;
        expect_all(&format!("{user} socket families"), &out, &want)?;
    }

    // Netlink in use (`ip` lists the interfaces over NETLINK_ROUTE), and TCP over loopback.
    let out = s.sandbox(
        r#"ip -o link show lo >/dev/null && echo ip=OK
python3 - <<'PY'
import socket
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.1", 0)); srv.listen(1)
cli = socket.create_connection(srv.getsockname()); conn, _ = srv.accept()
cli.sendall(b"ping"); print("tcp_loopback=" + conn.recv(4).decode())
PY"#,
    );
    expect_all(
        "ip and loopback TCP",
        &out,
        &[("ip", "OK"), ("tcp_loopback", "ping")],
    )
}

// ---- 2. privileges ---------------------------------------------------------------------

/// dev holds no capability and `no_new_privs` is set; a setuid-root binary on a mount
/// without `nosuid` does not raise dev's effective uid; `mount` fails for dev and root.
pub fn setuid_binaries_do_not_elevate_and_dev_has_no_capabilities(s: &Stack) -> Result<(), String> {
    // Capabilities, in the `docker exec` session and in an SSH session (the way the agent
    // and the IDE come in: sshd runs as root with seven capabilities and drops to dev).
    // no_new_privs and the ambient set are asked of prctl, which gVisor answers too (its
    // /proc/self/status has no NoNewPrivs or CapAmb line).
    let status = r#"grep -E '^(CapInh|CapPrm|CapEff|Seccomp):' /proc/self/status; python3 -c '
import ctypes
prctl = ctypes.CDLL(None).prctl
print("NoNewPrivs:\t%d" % prctl(39, 0, 0, 0, 0))  # PR_GET_NO_NEW_PRIVS
amb = [c for c in range(64) if prctl(47, 1, c, 0, 0) == 1]  # PR_CAP_AMBIENT_IS_SET
print("CapAmb:\t" + (",".join(map(str, amb)) or "none"))'"#;
    // Under gVisor the stack's seccomp profile is not applied (README, "gVisor"): its
    // kernel answers every call itself, so the status shows no filter.
    let seccomp = if s.runtime == "runsc" { "0" } else { "2" };
    let want: &[(&str, &str)] = &[
        ("CapInh", "0000000000000000"),
        ("CapPrm", "0000000000000000"),
        ("CapEff", "0000000000000000"),
        ("CapAmb", "none"),
        ("NoNewPrivs", "1"),
        ("Seccomp", seccomp),
    ];
    let as_kv = |o: Output| Output {
        stdout: text(&o.stdout).replace(":\t", "=").into_bytes(),
        ..o
    };
    expect_all("dev (docker exec)", &as_kv(s.sandbox(status)), want)?;
    let over_ssh = ssh(s, &["dev@127.0.0.1", status], &[], 30)?;
    expect_all("dev (ssh)", &as_kv(over_ssh), want)?;

    // The image carries no setuid or setgid file at all (the Dockerfile strips them).
    let out = s.sandbox("find / -xdev -perm /6000 -type f 2>/dev/null; true");
    let found = text(&out.stdout);
    ensure(found.trim().is_empty(), || {
        format!("setuid/setgid files in the image: {found}")
    })?;
    // So `passwd` runs as dev and refuses by itself: it cannot read another account.
    let out = s.sandbox("passwd -S root 2>&1; echo rc=$?");
    let got = text(&out.stdout);
    ensure(
        got.contains("You may not view or modify password information for root")
            && !got.contains("rc=0"),
        || format!("`passwd -S root` as dev: {got}"),
    )?;

    // Hence a setuid-root binary made for the purpose: dev compiles it in /workspace, root
    // (CAP_CHOWN, then chmod as the new owner) makes it setuid root. /workspace is a volume
    // mounted without `nosuid`, so the only thing left between dev and euid 0 is
    // no-new-privileges: with it, execve ignores the setuid bit.
    let dir = WorkDir::new(s, "setuid")?;
    let bin = format!("{}/euid", dir.path);
    let out = s.sandbox(&format!(
        "cd '{}' && printf '%s\\n' '#include <stdio.h>' '#include <unistd.h>' \
         'int main(void) {{ printf(\"uid=%d euid=%d\\n\", (int)getuid(), (int)geteuid()); return 0; }}' > euid.c \
         && gcc -o euid euid.c && ./euid",
        dir.path
    ));
    ensure(text(&out.stdout).trim() == "uid=1000 euid=1000", || {
        format!(
            "building the euid probe: {} {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })?;
    let out = s.exec(
        "sandbox",
        "root",
        &format!("chown 0:0 '{bin}' && chmod 4755 '{bin}' && stat -c 'mode=%a owner=%U' '{bin}' && '{bin}'"),
    );
    ensure(
        text(&out.stdout) == "mode=4755 owner=root\nuid=0 euid=0\n",
        || {
            format!(
                "making the probe setuid root: {} {}",
                text(&out.stdout),
                text(&out.stderr)
            )
        },
    )?;
    let out = s.sandbox(&format!(
        "awk '$2 == \"/workspace\" {{ print \"options=\" $4 }}' /proc/mounts; '{bin}'"
    ));
    let got = text(&out.stdout);
    let options = key_values(&got).get("options").cloned().unwrap_or_default();
    ensure(
        !options.is_empty() && !options.split(',').any(|o| o == "nosuid"),
        || {
            format!(
                "/workspace is mounted nosuid or not found ({options:?}): this would not test no-new-privileges"
            )
        },
    )?;
    ensure(got.lines().last() == Some("uid=1000 euid=1000"), || {
        format!(
            "a setuid-root binary run by dev: {got}{}",
            text(&out.stderr)
        )
    })?;
    drop(dir);

    // mount(2) itself, as dev and as root (no CAP_SYS_ADMIN, and not in the seccomp
    // allowlist): EPERM, not ENOENT (/mnt exists) nor util-linux's own refusal.
    let probe = python(
        r#"out("mnt_is_dir", os.path.isdir("/mnt"))
out("mount_tmpfs", sc("mount", ctypes.c_char_p(b"none"), ctypes.c_char_p(b"/mnt"), ctypes.c_char_p(b"tmpfs"), 0, 0))"#,
    );
    for user in ["dev", "root"] {
        let out = s.exec("sandbox", user, &probe);
        expect_all(
            &format!("mount(2) as {user}"),
            &out,
            &[("mnt_is_dir", "True"), ("mount_tmpfs", "EPERM")],
        )?;
    }
    // And the command: as root it reaches the syscall ("permission denied"); as dev
    // util-linux refuses before (not setuid here), which must fail all the same.
    let out = s.exec(
        "sandbox",
        "root",
        "mount -t tmpfs none /mnt 2>&1; echo rc=$?; grep -c ' /mnt ' /proc/mounts",
    );
    let got = text(&out.stdout);
    ensure(
        got.contains("permission denied") && got.contains("rc=32") && got.ends_with("0\n"),
        || format!("`mount -t tmpfs none /mnt` as root: {got}"),
    )?;
    let out = s.sandbox("mount -t tmpfs none /mnt 2>&1; echo rc=$?; grep -c ' /mnt ' /proc/mounts");
    let got = text(&out.stdout);
    ensure(!got.contains("rc=0") && got.ends_with("0\n"), || {
        format!("`mount -t tmpfs none /mnt` as dev: {got}")
    })
}

// ---- resource limits -------------------------------------------------------------------

/// The sandbox's cgroup limits, v2 (`cpu.max`, `memory.max`) or v1 (the CFS quota and
/// period, `memory.limit_in_bytes`), as `cpu=QUOTA PERIOD` and `memory=BYTES`.
const LIMITS_PROBE: &str = r#"if [ -f /sys/fs/cgroup/cpu.max ]; then
    echo "cpu=$(cat /sys/fs/cgroup/cpu.max)"; echo "memory=$(cat /sys/fs/cgroup/memory.max)"
else
    echo "cpu=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"
    echo "memory=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
fi"#;

/// The limits of `service`'s cgroup on the host, where Docker applies them whatever the
/// runtime shows inside: `(cpu quota, cpu period, memory, pids)`, v1 files first, then v2.
fn host_limits(s: &Stack, service: &str) -> Result<(f64, f64, String, String), String> {
    let read = |controller: &str, v1: &str, v2: &str| {
        s.host_cgroup_file(service, controller, v1).or_else(|e1| {
            s.host_cgroup_file(service, controller, v2)
                .map_err(|e2| format!("{e1}; {e2}"))
        })
    };
    let cpu = match s.host_cgroup_file(service, "cpu", "cpu.cfs_quota_us") {
        Ok(quota) => format!(
            "{quota} {}",
            s.host_cgroup_file(service, "cpu", "cpu.cfs_period_us")?
        ),
        Err(e1) => s
            .host_cgroup_file(service, "cpu", "cpu.max")
            .map_err(|e2| format!("{e1}; {e2}"))?,
    };
    let (quota, period) = cpu
        .split_once(' ')
        .and_then(|(q, p)| Some((q.parse::<f64>().ok()?, p.parse::<f64>().ok()?)))
        .ok_or_else(|| format!("no CPU quota in the host's cgroup of {service}: {cpu:?}"))?;
    let memory = read("memory", "memory.limit_in_bytes", "memory.max")?;
    let pids = s.host_cgroup_file(service, "pids", "pids.max")?;
    Ok((quota, period, memory, pids))
}

/// The sandbox holds the CPU, memory and pids limits this run configures (the compose
/// model with the run's environment, as `docker compose config` resolves it): on the
/// host's cgroup of the sandbox, the CFS quota over its period is `cpus`, the memory
/// limit `mem_limit`, pids.max `pids_limit`; under runc the sandbox's own cgroup files
/// show the same. Under gVisor they show gVisor's own cgroups, which carry none of them
/// (a quota of -1): the limits hold on gVisor's kernel from outside, so the host's files
/// are the ones that count there.
pub fn cpu_memory_and_pids_limits_are_the_configured_ones(s: &Stack) -> Result<(), String> {
    let config = s.service_config("sandbox")?;
    let cpus = config["cpus"]
        .as_f64()
        .or_else(|| config["cpus"].as_str().and_then(|c| c.parse().ok()))
        .ok_or_else(|| format!("no cpus in the sandbox's config: {}", config["cpus"]))?;
    let memory: u64 = config["mem_limit"]
        .as_str()
        .and_then(|m| m.parse().ok())
        .or_else(|| config["mem_limit"].as_u64())
        .ok_or_else(|| {
            format!(
                "no mem_limit in bytes in the sandbox's config: {}",
                config["mem_limit"]
            )
        })?;
    let pids = config["pids_limit"].as_u64().ok_or_else(|| {
        format!(
            "no pids_limit in the sandbox's config: {}",
            config["pids_limit"]
        )
    })?;

    let (quota, period, host_memory, host_pids) = host_limits(s, "sandbox")?;
    ensure((quota / period - cpus).abs() < 1e-6, || {
        format!(
            "the host's cgroup: CPU quota {quota} per {period} µs = {} CPUs, configured {cpus}",
            quota / period
        )
    })?;
    ensure(host_memory == memory.to_string(), || {
        format!("the host's cgroup: memory limit {host_memory:?}, configured {memory}")
    })?;
    ensure(host_pids == pids.to_string(), || {
        format!("the host's cgroup: pids.max {host_pids:?}, configured {pids}")
    })?;

    let out = s.sandbox(LIMITS_PROBE);
    let got = key_values(&text(&out.stdout));
    let evidence = || format!("{}{}", text(&out.stdout), text(&out.stderr));
    if s.runtime == "runsc" {
        eprintln!(
            "sandbox limits (host's cgroup): {cpus} CPUs (quota {quota}/{period}), memory {memory} bytes, pids {pids}; inside, gVisor shows {}",
            evidence().trim().replace('\n', ", ")
        );
        return Ok(());
    }
    let cpu = got.get("cpu").cloned().unwrap_or_default();
    let (quota, period) = cpu
        .split_once(' ')
        .and_then(|(q, p)| Some((q.parse::<f64>().ok()?, p.parse::<f64>().ok()?)))
        .ok_or_else(|| format!("no CPU quota in the sandbox's cgroup: {}", evidence()))?;
    ensure((quota / period - cpus).abs() < 1e-6, || {
        format!(
            "CPU quota {quota} per {period} µs = {} CPUs, configured {cpus}",
            quota / period
        )
    })?;
    let limit = got.get("memory").cloned().unwrap_or_default();
    ensure(limit == memory.to_string(), || {
        format!(
            "memory limit {limit:?}, configured {memory}: {}",
            evidence()
        )
    })?;
    eprintln!(
        "sandbox limits: {cpus} CPUs (quota {quota}/{period}), memory {memory} bytes, pids {pids} (the same on the host's cgroup)"
    );
    Ok(())
}

// ---- 3. work -------------------------------------------------------------------------

/// gcc with pthreads, a Python venv and git all work in /workspace, and commits carry the
/// sandbox's system identity.
pub fn work_inside_keeps_working(s: &Stack) -> Result<(), String> {
    let dir = WorkDir::new(s, "work")?;
    // Four threads, each summing 0..=1000*(i+1); the sum of the four sums.
    let want: u64 = (1..=4u64).map(|n| (1000 * n) * (1000 * n + 1) / 2).sum();
    let out = s.sandbox(&format!(
        r#"set -e; cd '{}'
cat > threads.c <<'C'
#include <pthread.h>
#include <stdio.h>
#include <string.h>
static long part[4];
static void *work(void *arg) {{
    long i = (long)arg, sum = 0;
    for (long k = 0; k <= 1000 * (i + 1); k++) sum += k;
    part[i] = sum;
    return NULL;
}}
int main(void) {{
    pthread_t t[4];
    for (long i = 0; i < 4; i++) {{
        int e = pthread_create(&t[i], NULL, work, (void *)i);
        if (e) {{ fprintf(stderr, "pthread_create: %s\n", strerror(e)); return 1; }}
    }}
    long sum = 0;
    for (int i = 0; i < 4; i++) {{ pthread_join(t[i], NULL); sum += part[i]; }}
    printf("sum=%ld\n", sum);
    return 0;
}}
C
gcc -pthread -o threads threads.c
./threads
"#,
        dir.path
    ));
    let got = key_values(&text(&out.stdout));
    ensure(
        out.status.success() && got.get("sum") == Some(&want.to_string()),
        || {
            format!(
                "threaded C program: expected sum={want}: {} {}",
                text(&out.stdout),
                text(&out.stderr)
            )
        },
    )?;

    let venv = format!("{}/.venv", dir.path);
    let out = s.sandbox(&format!(
        "python3 -m venv '{venv}' && '{venv}/bin/python' -c 'import sys; print(\"prefix=\" + sys.prefix)' \
         && '{venv}/bin/python' -m pip --version >/dev/null && echo pip=OK"
    ));
    let got = key_values(&text(&out.stdout));
    ensure(
        got.get("prefix") == Some(&venv) && got.get("pip").map(String::as_str) == Some("OK"),
        || format!("python venv: {} {}", text(&out.stdout), text(&out.stderr)),
    )?;

    let out = s.sandbox(&format!(
        "set -e; cd '{}'; git init -q repo; cd repo; echo hello > f; git add f; \
         git commit -q -m 'e2e commit'; git log -1 --format='author=%an <%ae>'; \
         git log -1 --format='committer=%cn <%ce>'",
        dir.path
    ));
    expect_all(
        "git in /workspace",
        &out,
        &[
            ("author", "dev (via safe-ai) <dev@safe-ai.invalid>"),
            ("committer", "dev (via safe-ai) <dev@safe-ai.invalid>"),
        ],
    )
}

// ---- 4. filesystem -------------------------------------------------------------------

const FS_PROBE: &str = r#"
import shutil, subprocess
def create(path):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
        os.unlink(path)
        return "OK"
    except OSError as e:
        return errno.errorcode[e.errno]
tag = f"e2e-fs-{os.getpid()}"
for d in ["/etc", "/usr/local", "/opt", "/var/lib", "/usr/bin", ""]:
    out("create:" + (d or "/"), create(f"{d}/{tag}"))
try:
    os.close(os.open("/etc/passwd", os.O_WRONLY | os.O_APPEND))
    out("append:/etc/passwd", "OK")
except OSError as e:
    out("append:/etc/passwd", errno.errorcode[e.errno])
"#;

/// As dev and as root: nothing outside /workspace, /tmp, /var/tmp, ~ (and /dev/shm) can be
/// written, the read-only root answering EROFS; what is copied into the tmpfs mounts
/// cannot be executed, not even through the dynamic loader.
pub fn writes_outside_workspace_tmp_and_home_fail(s: &Stack) -> Result<(), String> {
    let creates = ["/etc", "/usr/local", "/opt", "/var/lib", "/usr/bin", "/"];
    let probe = python(FS_PROBE);
    for user in ["dev", "root"] {
        let out = s.exec("sandbox", user, &probe);
        // Creating a file: Linux checks the read-only mount before permissions, so dev
        // gets EROFS too; gVisor checks permissions first, so dev gets EACCES there, and
        // root, whom permissions let through, shows the read-only mount under both.
        // Appending to an existing file: dev is refused by permissions first (EACCES);
        // root, who owns the file, only by the read-only mount.
        let create = if user == "dev" && s.runtime == "runsc" {
            "EACCES"
        } else {
            "EROFS"
        };
        let append = if user == "dev" { "EACCES" } else { "EROFS" };
        let mut want: Vec<(String, &str)> = creates
            .iter()
            .map(|d| (format!("create:{d}"), create))
            .collect();
        want.push(("append:/etc/passwd".to_owned(), append));
        let want: Vec<(&str, &str)> = want.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        expect_all(
            &format!("writes outside the writable mounts as {user}"),
            &out,
            &want,
        )?;
    }

    // Writable for dev, and nothing else but /dev/shm and /dev/mqueue (no regular files).
    let out = s.sandbox(
        "for d in /workspace /tmp /var/tmp ~ /dev/shm; do f=$d/.e2e-w-$$; \
         if : > \"$f\" && rm \"$f\"; then echo \"write:$d=OK\"; else echo \"write:$d=FAIL\"; fi; done; \
         find / \\( -path /proc -o -path /sys \\) -prune -o -writable -type d -print 2>/dev/null | \
         grep -vE '^(/workspace|/tmp|/var/tmp|/home/dev|/dev/shm|/dev/mqueue)(/|$)' | sed 's/^/extra=/'",
    );
    expect_all(
        "writable places for dev",
        &out,
        &[
            ("write:/workspace", "OK"),
            ("write:/tmp", "OK"),
            ("write:/var/tmp", "OK"),
            ("write:/home/dev", "OK"),
            ("write:/dev/shm", "OK"),
        ],
    )?;
    let extra = key_values(&text(&out.stdout)).get("extra").cloned();
    ensure(extra.is_none(), || {
        format!("dev can write to other directories: {}", text(&out.stdout))
    })?;

    // noexec: the same executable (a copy of /bin/true with +x) runs from /workspace and
    // not from the tmpfs mounts, where execve answers EACCES. Through the dynamic loader
    // (`ld.so /tmp/x`) it fails too: the kernel refuses PROT_EXEC mappings of files on
    // noexec mounts ("failed to map segment from shared object").
    let dir = WorkDir::new(s, "noexec")?;
    let out = s.sandbox(&format!(
        r#"ldso=$(ls /lib64/ld-linux-x86-64.so.2 /lib/ld-linux-aarch64.so.1 2>/dev/null | head -n 1)
echo "ldso=$ldso"
for d in '{dir}' /tmp /var/tmp /dev/shm; do
    f=$d/e2e-true-$$
    cp /bin/true "$f" && chmod 755 "$f"
    if "$f" 2>/dev/null; then echo "exec:$d=OK"; else echo "exec:$d=FAIL $?"; fi
    if err=$("$ldso" "$f" 2>&1); then echo "ldso:$d=OK"; else echo "ldso:$d=FAIL $err"; fi
    python3 -c 'import os, sys, errno
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[1], [sys.argv[1]])
    except OSError as e:
        os._exit(e.errno)
    os._exit(255)
code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print(f"execve:{{sys.argv[2]}}=" + ("OK" if code == 0 else errno.errorcode.get(code, str(code))))' "$f" "$d"
    rm -f "$f"
done
# Accepted: an interpreter reads a script from /tmp and runs it (noexec covers execve and
# executable mappings, not reading), and a binary copied into a memfd runs (memfd_create
# is allowed; vm.memfd_noexec is the host's). /workspace is executable anyway, so noexec
# /tmp is defence in depth, not a boundary.
printf '#!/bin/sh\necho ran\n' > /tmp/e2e-s-$$; chmod +x /tmp/e2e-s-$$
echo "interpreter=$(sh /tmp/e2e-s-$$ 2>&1)"; rm -f /tmp/e2e-s-$$
python3 -c 'import os
fd = os.memfd_create("e2e", 0); os.write(fd, open("/bin/true", "rb").read())
pid = os.fork()
if pid == 0:
    try: os.execv(f"/proc/self/fd/{{fd}}", ["true"])
    finally: os._exit(127)
print("memfd=" + ("RAN" if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0 else "REFUSED"))'
"#,
        dir = dir.path
    ));
    let got = key_values(&text(&out.stdout));
    let evidence = || format!("{}{}", text(&out.stdout), text(&out.stderr));
    ensure(got.get("ldso").is_some_and(|l| !l.is_empty()), || {
        format!("no dynamic loader found: {}", evidence())
    })?;
    // The control: the copy runs where exec is allowed, so a refusal elsewhere is the
    // mount's, not a broken copy's.
    for key in ["exec", "ldso", "execve"] {
        let value = got.get(&format!("{key}:{}", dir.path));
        ensure(value.map(String::as_str) == Some("OK"), || {
            format!(
                "{key} from /workspace (the control): {value:?}\n{}",
                evidence()
            )
        })?;
    }
    for d in ["/tmp", "/var/tmp", "/dev/shm"] {
        let exec = got.get(&format!("exec:{d}")).cloned().unwrap_or_default();
        let execve = got.get(&format!("execve:{d}")).cloned().unwrap_or_default();
        ensure(exec.starts_with("FAIL") && execve == "EACCES", || {
            format!(
                "{d} is not noexec: exec {exec:?}, execve {execve:?}\n{}",
                evidence()
            )
        })?;
        // The dynamic loader only mmaps the file: Linux refuses PROT_EXEC mappings of a
        // noexec mount, so this fails too (a kernel where it runs fails the check).
        // gVisor's kernel maps it: there `ld.so /tmp/x` runs, an accepted risk the README
        // names, and the check holds it to exactly that.
        let ldso = got.get(&format!("ldso:{d}")).cloned().unwrap_or_default();
        if s.runtime == "runsc" {
            ensure(ldso == "OK", || {
                format!(
                    "`ld.so {d}/x` under gVisor: {ldso:?} (it ran before: update the README's accepted risk)\n{}",
                    evidence()
                )
            })?;
            eprintln!("note (accepted under gVisor): ld.so {d}/x runs");
            continue;
        }
        ensure(
            ldso.starts_with("FAIL") && ldso.contains("failed to map segment"),
            || {
                format!(
                    "`ld.so {d}/x`: {ldso:?} (must fail to map the segment)\n{}",
                    evidence()
                )
            },
        )?;
    }
    for key in ["interpreter", "memfd"] {
        eprintln!(
            "note (accepted): {key}: {}",
            got.get(key).map_or("?", String::as_str)
        );
    }
    Ok(())
}

// ---- 5. SSH --------------------------------------------------------------------------

/// sshd offers only publickey, refuses root even with a key it would accept for dev,
/// refuses remote forwarding, agent and X11 forwarding, and allows local forwarding.
pub fn ssh_refuses_passwords_root_and_remote_forwarding(s: &Stack) -> Result<(), String> {
    // The effective configuration, as sshd itself computes it.
    let out = s.exec(
        "sandbox",
        "root",
        "/usr/sbin/sshd -T -f /etc/ssh/sshd_config",
    );
    let cfg = text(&out.stdout);
    for line in [
        "permitrootlogin no",
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "authenticationmethods publickey",
        "allowtcpforwarding local",
        "permitopen localhost:* 127.0.0.1:*",
        "permituserrc no",
        "allowagentforwarding no",
        "x11forwarding no",
        "permittunnel no",
        "allowstreamlocalforwarding no",
        "allowusers dev",
    ] {
        ensure(cfg.lines().any(|l| l == line), || {
            format!("`sshd -T` lacks {line:?}:\n{cfg}{}", text(&out.stderr))
        })?;
    }

    // The control: the key logs in as dev.
    let out = ssh(s, &["dev@127.0.0.1", "id -un"], &[], 30)?;
    ensure(out.status.success() && text(&out.stdout) == "dev\n", || {
        format!("key login as dev failed: {}", text(&out.stderr))
    })?;

    // Password: the server's list of methods after the client's "none" is publickey only.
    let out = ssh(
        s,
        &[
            "-v",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            "-o",
            "PubkeyAuthentication=no",
            "dev@127.0.0.1",
            "true",
        ],
        &[],
        30,
    )?;
    let log = text(&out.stderr);
    let offered: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once("Authentications that can continue: "))
        .map(|(_, m)| m.trim())
        .collect();
    ensure(
        !out.status.success()
            && !offered.is_empty()
            && offered.iter().all(|m| *m == "publickey")
            && log.contains("Permission denied (publickey)"),
        || {
            format!(
                "password login: status {:?}, methods offered {offered:?}\n{log}",
                out.status.code()
            )
        },
    )?;

    // root, with the very key that logs dev in (AuthorizedKeysFile is one file for every
    // user, so only AllowUsers and PermitRootLogin stand in the way).
    let out = ssh(s, &["root@127.0.0.1", "id -un"], &[], 30)?;
    let err = text(&out.stderr);
    ensure(
        !out.status.success() && err.contains("Permission denied") && out.stdout.is_empty(),
        || {
            format!(
                "root login: status {:?}, stdout {:?}, stderr {err}",
                out.status.code(),
                text(&out.stdout)
            )
        },
    )?;
    let logs = text(&s.compose(&["logs", "--no-color", "sandbox"]).stdout);
    ensure(
        logs.lines().any(|l| {
            l.contains("User root from") && l.contains("not allowed")
                || l.contains("ROOT LOGIN REFUSED")
        }),
        || format!("sshd did not log its refusal of root:\n{logs}"),
    )?;

    // Remote forwarding: refused (the agent could otherwise open a listener on the host).
    let out = ssh(
        s,
        &[
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            "127.0.0.1:0:127.0.0.1:22",
            "dev@127.0.0.1",
            "true",
        ],
        &[],
        30,
    )?;
    let err = text(&out.stderr);
    ensure(
        !out.status.success() && err.contains("remote port forwarding failed"),
        || format!("-R: status {:?}, stderr {err}", out.status.code()),
    )?;

    // Agent and X11 forwarding: requested by the client, not set up in the session. (The
    // image has no xauth, so sshd could not set up X11 even if allowed: for X11 the
    // evidence is `x11forwarding no` above; the agent socket is the behavioural proof.)
    let agent_sock = s.scratch.join(format!("{}.sock", unique("agent")));
    let _agent_sock = Scratch(agent_sock.clone());
    let agent = Spawned(
        Command::new("ssh-agent")
            .args(["-D", "-a", agent_sock.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("ssh-agent: {e}"))?,
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !agent_sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    ensure(agent_sock.exists(), || {
        "ssh-agent made no socket in 5 s".to_owned()
    })?;
    let out = ssh(
        s,
        &[
            "-o",
            "ForwardAgent=yes",
            "-o",
            "ForwardX11=yes",
            "-o",
            "ForwardX11Trusted=yes",
            "dev@127.0.0.1",
            "echo \"agent=${SSH_AUTH_SOCK:-none}\"; echo \"display=${DISPLAY:-none}\"",
        ],
        &[
            ("SSH_AUTH_SOCK", agent_sock.to_str().unwrap()),
            ("DISPLAY", "127.0.0.1:99"),
        ],
        30,
    )?;
    drop(agent);
    expect_all(
        "agent and X11 forwarding",
        &out,
        &[("agent", "none"), ("display", "none")],
    )?;

    // ~/.ssh/rc, which dev (or the agent) can write, is not run at login.
    let marker = format!("/tmp/{}", unique("ssh-rc"));
    let out = s.sandbox(&format!(
        "mkdir -p ~/.ssh && printf 'touch {marker}\\n' > ~/.ssh/rc && cat ~/.ssh/rc"
    ));
    ensure(text(&out.stdout).contains(&marker), || {
        format!("could not write ~/.ssh/rc: {}", text(&out.stderr))
    })?;
    let login = ssh(s, &["dev@127.0.0.1", "echo logged-in"], &[], 30);
    let out = s.sandbox(&format!(
        "rm -f ~/.ssh/rc; test -e {marker} && echo rc=RAN || echo rc=absent; rm -f {marker}"
    ));
    let login = login?;
    ensure(text(&login.stdout) == "logged-in\n", || {
        format!("login with ~/.ssh/rc present: {}", text(&login.stderr))
    })?;
    expect_all("~/.ssh/rc", &out, &[("rc", "absent")])?;

    // Local forwarding works (VS Code Remote-SSH reaches its server this way): a file
    // served on the sandbox's loopback comes back through `ssh -L`, named either way.
    local_forwarding_works(s, "127.0.0.1", 8765)?;
    local_forwarding_works(s, "localhost", 8766)?;

    // ... and reaches nothing else: the proxy's Squid port, which the sandbox itself can
    // reach, is refused through `ssh -L` (sshd answers the channel open with
    // "administratively prohibited", and the client closes the local connection).
    local_forwarding_is_refused(s, &s.proxy_ip(), 3128)
}

/// `ssh -L` to `host:port` in the sandbox: the tunnel comes up (the local port listens),
/// but a connection through it gets nothing back and ssh reports that sshd refused it.
fn local_forwarding_is_refused(s: &Stack, host: &str, remote_port: u16) -> Result<(), String> {
    let port = free_port();
    let (mut tunnel, err_path, _err_file) = tunnel(s, port, host, remote_port)?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Some(status) = tunnel.0.try_wait().unwrap() {
            last = format!("ssh -L exited with {status}");
            break;
        }
        match fetch(port, "/") {
            Ok(body) if !body.is_empty() => {
                return Err(format!(
                    "`ssh -L {port}:{host}:{remote_port}` reached the target: {body:?}"
                ));
            }
            // Nothing came back (an empty answer, a reset, or ssh not listening yet): a
            // refusal only when sshd said so.
            outcome => {
                let ssh_err = std::fs::read_to_string(&err_path).unwrap_or_default();
                if ssh_err.contains("administratively prohibited") {
                    return Ok(());
                }
                last = format!("{outcome:?}");
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(tunnel);
    let ssh_err = std::fs::read_to_string(&err_path).unwrap_or_default();
    Err(format!(
        "`ssh -L {port}:{host}:{remote_port}`: no refusal seen in 15 s; last {last}\nssh: {ssh_err}"
    ))
}

/// `ssh -N -L 127.0.0.1:port:host:remote_port` as dev, its stderr in a scratch file.
fn tunnel(
    s: &Stack,
    port: u16,
    host: &str,
    remote_port: u16,
) -> Result<(Spawned, PathBuf, Scratch), String> {
    let mut args = s.ssh_options();
    args.extend(
        [
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-L",
            &format!("127.0.0.1:{port}:{host}:{remote_port}"),
            "dev@127.0.0.1",
        ]
        .iter()
        .map(|a| (*a).to_owned()),
    );
    let err_path = s.scratch.join(format!("{}.stderr", unique("ssh-L")));
    let err_file = Scratch(err_path.clone());
    let tunnel = Spawned(
        Command::new("ssh")
            .args(&args)
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&err_path).unwrap())
            .spawn()
            .map_err(|e| format!("ssh -L: {e}"))?,
    );
    Ok((tunnel, err_path, err_file))
}

/// A file served on the sandbox's loopback on `remote_port` comes back through
/// `ssh -L …:host:remote_port`.
fn local_forwarding_works(s: &Stack, host: &str, remote_port: u16) -> Result<(), String> {
    let dir = WorkDir::new(s, "forward")?;
    let marker = unique("marker");
    // The server lives at most 60 s whatever happens; its PID (timeout's, which passes
    // SIGTERM on) is killed at the end.
    let out = s.sandbox(&format!(
        "cd '{}' && echo '{marker}' > marker.txt && \
         {{ setsid timeout 60 python3 -m http.server {remote_port} --bind 127.0.0.1 \
         </dev/null >/dev/null 2>&1 & echo \"pid=$!\"; }}",
        dir.path
    ));
    let pid = key_values(&text(&out.stdout))
        .get("pid")
        .cloned()
        .unwrap_or_default();
    ensure(
        !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()),
        || {
            format!(
                "the server did not start: {} {}",
                text(&out.stdout),
                text(&out.stderr)
            )
        },
    )?;
    struct Server<'a>(&'a Stack, String);
    impl Drop for Server<'_> {
        fn drop(&mut self) {
            self.0
                .sandbox(&format!("kill {} 2>/dev/null; true", self.1));
        }
    }
    let _server = Server(s, pid);

    let port = free_port();
    let (mut tunnel, err_path, _err_file) = tunnel(s, port, host, remote_port)?;

    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Some(status) = tunnel.0.try_wait().unwrap() {
            last = format!("ssh -L exited with {status}");
            break;
        }
        match fetch(port, "/marker.txt") {
            Ok(body) if body.starts_with("HTTP/1.0 200") && body.contains(&marker) => {
                return Ok(());
            }
            Ok(body) => last = format!("answer: {body:?}"),
            Err(e) => last = format!("error: {e}"),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(tunnel);
    let ssh_err = std::fs::read_to_string(&err_path).unwrap_or_default();
    Err(format!(
        "nothing came through `ssh -L {port}:{host}:{remote_port}` in 15 s; last {last}\nssh: {ssh_err}"
    ))
}

/// A plain HTTP/1.0 GET on the host's loopback, bounded by socket timeouts.
fn fetch(port: u16, path: &str) -> std::io::Result<String> {
    let addr = ([127, 0, 0, 1], port).into();
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    conn.set_read_timeout(Some(Duration::from_secs(3)))?;
    conn.set_write_timeout(Some(Duration::from_secs(3)))?;
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())?;
    let mut body = String::new();
    conn.read_to_string(&mut body)?;
    Ok(body)
}

pub const CHECKS: &[(&str, crate::stack::Check)] = crate::checks![
    seccomp_refuses_dangerous_syscalls,
    seccomp_allows_only_four_socket_families,
    setuid_binaries_do_not_elevate_and_dev_has_no_capabilities,
    cpu_memory_and_pids_limits_are_the_configured_ones,
    work_inside_keeps_working,
    writes_outside_workspace_tmp_and_home_fail,
    ssh_refuses_passwords_root_and_remote_forwarding,
];
