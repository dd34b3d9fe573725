//! Every judge on recorded real outputs: from the e2e stack's sandbox, from the sandbox
//! image started with `docker run` with the model's options and with weaker ones (no
//! `cap_drop: ALL`, Docker's default seccomp profile), and from probes that never ran.

use super::*;
use crate::Stack;

fn ok(stdout: &str) -> Recorded {
    Recorded::new(Some(0), stdout, "")
}

fn expected() -> Expected {
    Expected::of(&Stack::default().sandbox)
}

fn is_pass(o: &Outcome) -> bool {
    matches!(o, Outcome::Pass(_))
}

/// A failure whose detail contains `needle`.
#[track_caller]
fn assert_fail(o: &Outcome, needle: &str) {
    match o {
        Outcome::Fail(d) => assert!(d.contains(needle), "{d:?} lacks {needle:?}"),
        other => panic!("expected a failure with {needle:?}, got {other:?}"),
    }
}

// The ways a probe does not run, as recorded.
/// `docker exec` of a container that does not exist.
fn no_container() -> Recorded {
    Recorded::new(
        Some(1),
        "",
        "Error response from daemon: No such container: h11v-nonexistent\n",
    )
}
/// `docker compose exec` outside the stack's directory, or with the sandbox stopped.
fn not_running() -> Recorded {
    Recorded::new(Some(1), "", "service \"sandbox\" is not running\n")
}
/// No docker at all.
fn no_docker() -> Recorded {
    Recorded::new(
        None,
        "",
        "cannot run docker: No such file or directory (os error 2)",
    )
}
/// The probe's command is missing (run with an empty PATH).
fn command_not_found(cmd: &str) -> Recorded {
    Recorded::new(Some(127), "", format!("bash: {cmd}: command not found\n"))
}

fn never_ran() -> [Recorded; 3] {
    [no_container(), not_running(), no_docker()]
}

// ---- capabilities ----------------------------------------------------------------------

const DEV_STATUS: &str = "CapPrm=0000000000000000\nCapEff=0000000000000000\nNoNewPrivs=1\nSeccomp=2\nprctl_no_new_privs=1\n";
/// Dev in the e2e stack's sandbox under runsc (Debian's 0.0~20240729): gVisor's
/// `/proc/self/status` has no NoNewPrivs line, and no filter (runsc runs without
/// `--oci-seccomp`); its kernel answers the prctl.
const DEV_STATUS_GVISOR: &str =
    "CapPrm=0000000000000000\nCapEff=0000000000000000\nSeccomp=0\nprctl_no_new_privs=1\n";
/// Root in the sandbox: the seven capabilities the model adds.
const ROOT_CAPS_MODEL: &str = "self_bnd=00000000200404c9\npid1_bnd=00000000200404c9\n";
/// Root in the sandbox image started with the model's options but without `cap_drop: ALL`:
/// Docker's default set plus the seven.
const ROOT_CAPS_NO_CAP_DROP: &str = "self_bnd=00000000a80425fb\npid1_bnd=00000000a80425fb\n";

#[test]
fn expected_bounding_set_is_the_seven_the_model_adds() {
    assert_eq!(expected().bounding_set, 0x2004_04c9);
    assert_eq!(
        capability_names(expected().bounding_set),
        "CHOWN, FOWNER, SETGID, SETUID, NET_BIND_SERVICE, SYS_CHROOT, AUDIT_WRITE"
    );
}

#[test]
fn capabilities_pass_with_the_models_bounding_set() {
    let o = judge_capabilities(&expected(), &ok(DEV_STATUS), &ok(ROOT_CAPS_MODEL));
    assert!(is_pass(&o), "{o:?}");
}

#[test]
fn capabilities_fail_without_cap_drop_all() {
    // dev has no capability either way: only root's bounding set tells.
    let o = judge_capabilities(&expected(), &ok(DEV_STATUS), &ok(ROOT_CAPS_NO_CAP_DROP));
    assert_fail(&o, "cap_drop: ALL");
    assert_fail(
        &o,
        "DAC_OVERRIDE, FSETID, KILL, SETPCAP, NET_RAW, MKNOD, SETFCAP",
    );
}

#[test]
fn capabilities_fail_when_pid1_alone_holds_more_or_one_is_missing() {
    let pid1 = "self_bnd=00000000200404c9\npid1_bnd=00000000a80425fb\n";
    assert_fail(
        &judge_capabilities(&expected(), &ok(DEV_STATUS), &ok(pid1)),
        "PID 1",
    );
    let fewer = "self_bnd=00000000000404c9\npid1_bnd=00000000000404c9\n";
    assert_fail(
        &judge_capabilities(&expected(), &ok(DEV_STATUS), &ok(fewer)),
        "missing: AUDIT_WRITE",
    );
    let dev = DEV_STATUS.replace("CapEff=0000000000000000", "CapEff=00000000200404c9");
    assert_fail(
        &judge_capabilities(&expected(), &ok(&dev), &ok(ROOT_CAPS_MODEL)),
        "dev holds capabilities",
    );
}

#[test]
fn capabilities_fail_when_the_probe_did_not_run() {
    for r in never_ran() {
        assert_fail(
            &judge_capabilities(&expected(), &ok(DEV_STATUS), &r),
            "did not run",
        );
        assert_fail(
            &judge_capabilities(&expected(), &r, &ok(ROOT_CAPS_MODEL)),
            "did not run",
        );
        assert_fail(&judge_no_new_privileges(Kernel::Host, &r), "did not run");
    }
    assert_fail(
        &judge_capabilities(&expected(), &ok(DEV_STATUS), &command_not_found("sed")),
        "did not run",
    );
}

#[test]
fn no_new_privileges() {
    assert!(is_pass(&judge_no_new_privileges(
        Kernel::Host,
        &ok(DEV_STATUS)
    )));
    assert_fail(
        &judge_no_new_privileges(
            Kernel::Host,
            &ok(&DEV_STATUS.replace("NoNewPrivs=1", "NoNewPrivs=0")),
        ),
        "NoNewPrivs 0",
    );
}

// ---- seccomp -------------------------------------------------------------------------

/// The sandbox's filter, as dev and as root alike.
const SECCOMP_MODEL: &str = "arch=x86_64\nunshare_newuser=EPERM\nptrace_no_such_pid=EPERM\ntiocsti_bad_fd=EPERM\nsocket_can_bad_type=EPERM\n";
/// The sandbox image under Docker's default profile (cap_drop ALL and the seven): unshare is
/// refused there too, the other three reach the kernel.
const SECCOMP_DOCKER_DEFAULT: &str = "arch=x86_64\nunshare_newuser=EPERM\nptrace_no_such_pid=ESRCH\ntiocsti_bad_fd=EBADF\nsocket_can_bad_type=EINVAL\n";

#[test]
fn seccomp_passes_under_the_stacks_filter() {
    let o = judge_seccomp(
        Kernel::Host,
        &ok(DEV_STATUS),
        &ok(SECCOMP_MODEL),
        &ok(SECCOMP_MODEL),
    );
    assert!(is_pass(&o), "{o:?}");
}

#[test]
fn seccomp_fails_under_dockers_default_profile() {
    // Seccomp: 2 and a refused unshare, all the old check looked at, hold there too.
    let o = judge_seccomp(
        Kernel::Host,
        &ok(DEV_STATUS),
        &ok(SECCOMP_DOCKER_DEFAULT),
        &ok(SECCOMP_DOCKER_DEFAULT),
    );
    assert_fail(&o, "ptrace_no_such_pid: ESRCH, the kernel's answer");
    assert_fail(&o, "tiocsti_bad_fd: EBADF");
    // Root alone under another filter fails too.
    let o = judge_seccomp(
        Kernel::Host,
        &ok(DEV_STATUS),
        &ok(SECCOMP_MODEL),
        &ok(SECCOMP_DOCKER_DEFAULT),
    );
    assert_fail(&o, "as root");
}

#[test]
fn seccomp_fails_without_a_filter() {
    let status = DEV_STATUS.replace("Seccomp=2", "Seccomp=0");
    assert_fail(
        &judge_seccomp(
            Kernel::Host,
            &ok(&status),
            &ok(SECCOMP_MODEL),
            &ok(SECCOMP_MODEL),
        ),
        "Seccomp 0",
    );
}

#[test]
fn seccomp_fails_when_the_probe_did_not_run() {
    for r in never_ran()
        .into_iter()
        .chain([command_not_found("python3")])
    {
        assert_fail(
            &judge_seccomp(Kernel::Host, &ok(DEV_STATUS), &r, &ok(SECCOMP_MODEL)),
            "did not run",
        );
        assert_fail(
            &judge_seccomp(Kernel::Host, &ok(DEV_STATUS), &ok(SECCOMP_MODEL), &r),
            "did not run",
        );
        assert_fail(
            &judge_seccomp(Kernel::Host, &r, &ok(SECCOMP_MODEL), &ok(SECCOMP_MODEL)),
            "did not run",
        );
    }
    // Python ran but stopped after the architecture (a crash): not a pass.
    assert_fail(
        &judge_seccomp(
            Kernel::Host,
            &ok(DEV_STATUS),
            &ok("arch=x86_64\n"),
            &ok(SECCOMP_MODEL),
        ),
        "did not run",
    );
}

#[test]
fn seccomp_is_not_applicable_on_an_unknown_architecture() {
    let o = judge_seccomp(
        Kernel::Host,
        &ok(DEV_STATUS),
        &ok("arch=unknown:riscv64\n"),
        &ok(SECCOMP_MODEL),
    );
    assert!(matches!(o, Outcome::NotApplicable(_)), "{o:?}");
}

// ---- mount, pids -------------------------------------------------------------------

const MOUNT_REFUSED: &str = "mount_exit=32\nmount_error=mount: /mnt: permission denied.        dmesg(1) may have more information after failed mount system call.\nmounted=0\n";

#[test]
fn mount_passes_when_refused() {
    let o = judge_mount(&ok(MOUNT_REFUSED));
    assert!(is_pass(&o), "{o:?}");
}

#[test]
fn mount_fails_when_it_went_through() {
    assert_fail(
        &judge_mount(&ok("mount_exit=0\nmount_error=\nmounted=1\n")),
        "exit 0",
    );
}

#[test]
fn mount_fails_when_the_probe_did_not_run() {
    // The old judge passed every one of these: `docker exec` exited non-zero.
    for r in never_ran() {
        assert_fail(&judge_mount(&r), "did not run");
    }
    // mount missing, recorded with an empty PATH (grep missing as well).
    let missing =
        ok("mount_exit=127\nmount_error=bash: line 1: mount: command not found\nmounted=\n");
    assert_fail(&judge_mount(&missing), "exit 127");
}

/// The host's file of the sandbox's pids cgroup, as the CLI records it.
fn host_pids(v: &str) -> Recorded {
    ok(&format!("pids_max={v}\n"))
}

#[test]
fn pids() {
    let host = host_pids("1024");
    let judge = |inside: &str| judge_pids(&expected(), Kernel::Host, &ok(inside), &host);
    assert!(is_pass(&judge("pids_max=1024\n")));
    // On the host's kernel the sandbox's own file is the limit: the host's does not stand in.
    assert_fail(&judge("pids_max=max\n"), "expected 1024");
    assert_fail(&judge("pids_max=\n"), "expected 1024");
    for r in never_ran() {
        assert_fail(
            &judge_pids(&expected(), Kernel::Host, &r, &host),
            "did not run",
        );
    }
}

// ---- under gVisor ----------------------------------------------------------------------
// Recorded from the e2e stack's sandbox under runsc (Debian's 0.0~20240729), where the
// old judges failed no-new-privileges (no NoNewPrivs line), seccomp (Seccomp 0) and
// pids-limit (gVisor's own pids.max, "max").

/// The seccomp probe under runsc, as dev and as root alike: every call reaches gVisor's
/// kernel, which answers as an unfiltered Linux would, but for unshare: gVisor ignores
/// CSIGNAL's bit and creates the user namespace (its own, in its kernel).
const SECCOMP_GVISOR: &str = "arch=x86_64\nunshare_newuser=OK\nptrace_no_such_pid=ESRCH\ntiocsti_bad_fd=EBADF\nsocket_can_bad_type=EINVAL\n";

#[test]
fn no_new_privileges_under_gvisor_is_prctls_answer() {
    let o = judge_no_new_privileges(Kernel::Gvisor, &ok(DEV_STATUS_GVISOR));
    assert!(is_pass(&o), "{o:?}");
    assert_fail(
        &judge_no_new_privileges(
            Kernel::Gvisor,
            &ok(&DEV_STATUS_GVISOR.replace("prctl_no_new_privs=1", "prctl_no_new_privs=0")),
        ),
        "PR_GET_NO_NEW_PRIVS 0",
    );
    // The host's kernel has the field: its absence there is a probe that did not run.
    assert_fail(
        &judge_no_new_privileges(Kernel::Host, &ok(DEV_STATUS_GVISOR)),
        "did not run",
    );
    // python3 missing: no prctl line, not a pass.
    assert_fail(
        &judge_no_new_privileges(
            Kernel::Gvisor,
            &ok("CapPrm=0000000000000000\nCapEff=0000000000000000\nSeccomp=0\n"),
        ),
        "did not run",
    );
}

#[test]
fn seccomp_under_gvisor_requires_gvisors_own_answers() {
    let status = ok(DEV_STATUS_GVISOR);
    let o = judge_seccomp(
        Kernel::Gvisor,
        &status,
        &ok(SECCOMP_GVISOR),
        &ok(SECCOMP_GVISOR),
    );
    match &o {
        Outcome::Pass(d) => assert!(
            d.contains("not applied") && d.contains("ptrace_no_such_pid ESRCH"),
            "{d}"
        ),
        other => panic!("{other:?}"),
    }
    // The same recording from a sandbox on the host's kernel: no filter, a failure.
    assert_fail(
        &judge_seccomp(
            Kernel::Host,
            &status,
            &ok(SECCOMP_GVISOR),
            &ok(SECCOMP_GVISOR),
        ),
        "Seccomp 0",
    );
    // EPERM without a filter is not gVisor's answer to those arguments.
    assert_fail(
        &judge_seccomp(
            Kernel::Gvisor,
            &status,
            &ok(SECCOMP_GVISOR),
            &ok(SECCOMP_MODEL),
        ),
        "as root",
    );
    for r in never_ran() {
        assert_fail(
            &judge_seccomp(Kernel::Gvisor, &status, &r, &ok(SECCOMP_GVISOR)),
            "did not run",
        );
    }
    // runsc registered with --oci-seccomp: the filter must refuse as on the host's kernel.
    let filtered = ok(&DEV_STATUS_GVISOR.replace("Seccomp=0", "Seccomp=2"));
    assert!(is_pass(&judge_seccomp(
        Kernel::Gvisor,
        &filtered,
        &ok(SECCOMP_MODEL),
        &ok(SECCOMP_MODEL)
    )));
    assert_fail(
        &judge_seccomp(
            Kernel::Gvisor,
            &filtered,
            &ok(SECCOMP_GVISOR),
            &ok(SECCOMP_GVISOR),
        ),
        "not this stack's filter",
    );
}

#[test]
fn pids_under_gvisor_is_the_hosts_cgroup() {
    let inside = ok("pids_max=max\n");
    let o = judge_pids(&expected(), Kernel::Gvisor, &inside, &host_pids("1024"));
    assert!(is_pass(&o), "{o:?}");
    assert_fail(
        &judge_pids(&expected(), Kernel::Gvisor, &inside, &host_pids("max")),
        "expected 1024",
    );
    for r in never_ran() {
        assert_fail(
            &judge_pids(&expected(), Kernel::Gvisor, &inside, &r),
            "did not run",
        );
        assert_fail(
            &judge_pids(&expected(), Kernel::Gvisor, &r, &host_pids("1024")),
            "did not run",
        );
    }
    // What the CLI records when it cannot read the host's file (Docker elsewhere).
    let unreadable = Recorded::new(Some(1), "", "/proc/4242/cgroup: No such file or directory");
    assert_fail(
        &judge_pids(&expected(), Kernel::Gvisor, &inside, &unreadable),
        "did not run",
    );
}

#[test]
fn kernel_of_tells_gvisor_from_the_host() {
    assert_eq!(kernel_of(&ok(GVISOR_KERNEL)), Ok(Kernel::Gvisor));
    assert_eq!(kernel_of(&ok(HOST_KERNEL)), Ok(Kernel::Host));
    assert!(kernel_of(&ok("kernel=\n")).is_err());
    for r in never_ran() {
        assert!(kernel_of(&r).is_err());
    }
}

/// `/proc/PID/cgroup` of the sandbox's process under runsc on this machine (cgroup v1,
/// Docker's cgroupfs driver).
const PROC_CGROUP_V1: &str = "9:name=systemd:/docker/d0749063e1d6\n8:pids:/docker/d0749063e1d6\n7:blkio:/docker/d0749063e1d6\n6:freezer:/docker/d0749063e1d6\n5:devices:/docker/d0749063e1d6\n4:memory:/docker/d0749063e1d6\n3:cpuset:/docker/d0749063e1d6\n2:cpuacct:/docker/d0749063e1d6\n1:cpu:/docker/d0749063e1d6\n0::/\n";

#[test]
fn cgroup_dir_reads_v1_and_v2() {
    assert_eq!(
        cgroup_dir(PROC_CGROUP_V1, "pids").as_deref(),
        Some("pids/docker/d0749063e1d6")
    );
    assert_eq!(
        cgroup_dir(PROC_CGROUP_V1, "memory").as_deref(),
        Some("memory/docker/d0749063e1d6")
    );
    // A joint mount (cpu,cpuacct) keeps its directory name.
    assert_eq!(
        cgroup_dir("4:cpu,cpuacct:/docker/abc\n", "cpu").as_deref(),
        Some("cpu,cpuacct/docker/abc")
    );
    // v2 (the unified hierarchy alone, as under systemd): one line, no controller names.
    assert_eq!(
        cgroup_dir("0::/system.slice/docker-abc.scope\n", "pids").as_deref(),
        Some("system.slice/docker-abc.scope")
    );
    // On a v1 host, "0::/" is the unused unified hierarchy, not the answer.
    assert_eq!(cgroup_dir("1:cpu:/docker/abc\n0::/\n", "pids"), None);
    assert_eq!(cgroup_dir("", "pids"), None);
}

// ---- the filesystem ------------------------------------------------------------------

#[test]
fn read_only_root() {
    let r = ok(
        "touch_exit=1\ntouch_error=touch: cannot touch '/etc/.safeai-verify': Read-only file system\n",
    );
    assert!(is_pass(&judge_read_only(&r)));
    assert_fail(
        &judge_read_only(&ok("touch_exit=0\ntouch_error=\n")),
        "exit 0",
    );
    for r in never_ran() {
        assert_fail(&judge_read_only(&r), "did not run");
    }
}

#[test]
fn noexec() {
    let r = ok(
        "copied=OK\nexec_exit=126\nexec_error=bash: line 1: /tmp/.safeai-verify-296: Permission denied\n",
    );
    assert!(is_pass(&judge_noexec(&r)));
    assert_fail(
        &judge_noexec(&ok("copied=OK\nexec_exit=0\nexec_error=\n")),
        "exit 0",
    );
    // The old judge passed a Docker error that says "permission denied".
    let socket = Recorded::new(
        Some(1),
        "",
        "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock\n",
    );
    for r in never_ran().into_iter().chain([socket]) {
        assert_fail(&judge_noexec(&r), "did not run");
    }
}

#[test]
fn writable() {
    let r = ok("write:workspace=OK\nwrite:tmp=OK\nwrite:home=OK\n");
    assert!(is_pass(&judge_writable(&r)));
    assert_fail(
        &judge_writable(&ok("write:workspace=FAIL\nwrite:tmp=OK\nwrite:home=OK\n")),
        "/workspace FAIL",
    );
    for r in never_ran() {
        assert_fail(&judge_writable(&r), "did not run");
    }
}

#[test]
fn ca() {
    assert!(is_pass(&judge_ca(&ok("files=ca.crt\nkeys=\n"))));
    // The directory missing (a container without the volume).
    let missing = Recorded::new(
        Some(0),
        "files=\nkeys=\n",
        "ls: cannot access '/etc/safe-ai/ca': No such file or directory\n",
    );
    assert_fail(&judge_ca(&missing), "holds \"\"");
    assert_fail(
        &judge_ca(&ok("files=ca.crt ca.key\nkeys=/etc/safe-ai/ca/ca.key\n")),
        "ca.key",
    );
    for r in never_ran() {
        assert_fail(&judge_ca(&r), "did not run");
    }
}

// ---- the network -------------------------------------------------------------------

#[test]
fn probes_quote_what_the_user_typed() {
    assert_eq!(quote("a'b"), r"'a'\''b'");
    assert!(curl_probe("allowed", "https://x/'; touch /tmp/p; '").contains(r"'\''"));
}

#[test]
fn egress_on_a_sandbox_without_a_route() {
    // The sandbox image on no network at all: no route, nothing reached.
    let r = ok(
        "ip_exit=0\ndefault_route=\ncurl_exit=7\ncurl_error=curl: (7) Failed to connect to 172.30.99.3 port 3128 after 0 ms: Couldn't connect to server\n",
    );
    assert!(is_pass(&judge_egress(Some("172.30.99.3"), &r)));
    let refused = ok(
        "ip_exit=0\ndefault_route=\ncurl_exit=7\ncurl_error=curl: (7) Failed to connect to 172.30.99.3 port 3128 after 0 ms: Connection refused\n",
    );
    assert_fail(&judge_egress(Some("172.30.99.3"), &refused), "refused");
    let routed = ok(
        "ip_exit=0\ndefault_route=default via 172.30.40.1 dev eth0\ncurl_exit=28\ncurl_error=\n",
    );
    assert_fail(&judge_egress(Some("172.30.99.3"), &routed), "default route");
    let no_ip = ok("ip_exit=0\ndefault_route=\n");
    assert!(matches!(
        judge_egress(None, &no_ip),
        Outcome::NotApplicable(_)
    ));
    let no_curl =
        ok("ip_exit=0\ndefault_route=\ncurl_exit=127\ncurl_error=bash: curl: command not found\n");
    assert_fail(&judge_egress(Some("172.30.99.3"), &no_curl), "exit 127");
    let no_ip_command = ok("ip_exit=127\ndefault_route=bash: ip: command not found\n");
    assert_fail(&judge_egress(Some("172.30.99.3"), &no_ip_command), "failed");
    for r in never_ran() {
        // The old judge passed these: exit non-zero, no "refused".
        assert_fail(&judge_egress(Some("172.30.99.3"), &r), "did not run");
    }
}

#[test]
fn host_on_a_sandbox_without_a_network() {
    // The sandbox image on no network: even the control cannot connect.
    let r = ok(
        "tcp:172.30.99.1:22=1 bash: connect: Network is unreachable bash: line 1: /dev/tcp/172.30.99.1/22: Network is unreachable\ntcp:172.30.99.1:80=1 bash: connect: Network is unreachable bash: line 1: /dev/tcp/172.30.99.1/80: Network is unreachable\ntcp:172.30.99.1:2375=1 bash: connect: Network is unreachable bash: line 1: /dev/tcp/172.30.99.1/2375: Network is unreachable\ntcp:172.30.99.1:3128=1 bash: connect: Network is unreachable bash: line 1: /dev/tcp/172.30.99.1/3128: Network is unreachable\ntcp:172.30.99.2:3128=1 bash: connect: Network is unreachable bash: line 1: /dev/tcp/172.30.99.2/3128: Network is unreachable\n",
    );
    assert_fail(
        &judge_host("172.30.99.1", "172.30.99.2", &r),
        "the control failed",
    );
    for r in never_ran() {
        // The old judge passed these: no "open", no "refused" in Docker's error.
        assert_fail(&judge_host("172.30.99.1", "172.30.99.2", &r), "did not run");
    }
}

#[test]
fn gateway_is_the_dot_one() {
    assert_eq!(gateway_of("172.30.40.3").as_deref(), Some("172.30.40.1"));
    assert_eq!(gateway_of(""), None);
}

#[test]
fn network_judges_fail_when_the_probe_did_not_run() {
    for r in never_ran() {
        // The old allowed-reachable judge passed a plain-HTTP URL on Docker's error text.
        assert_fail(
            &judge_allowed("http://api.allowed.test/", &r),
            "did not run",
        );
        assert_fail(
            &judge_allowed("https://api.allowed.test/", &r),
            "did not run",
        );
        assert_fail(&judge_denied("evil.test", &r), "did not run");
        assert_fail(&judge_ip_literal(&r), "did not run");
        assert_fail(
            &judge_sni("https://api.allowed.test/", "evil.test", &r),
            "did not run",
        );
        assert_fail(&judge_denial_page("evil.test", &r), "did not run");
        assert_fail(&judge_dns("evil.test", &r), "did not run");
    }
}

#[test]
fn network_judges_on_a_sandbox_without_a_network() {
    // The sandbox image on no network: curl cannot resolve or connect, getent has nothing.
    let curl = ok("allowed_http=000\nallowed_connect=000\nallowed_exit=6\n");
    assert_fail(
        &judge_allowed("https://api.allowed.test/", &curl),
        "HTTP 000",
    );
    assert_fail(&judge_dns("evil.test", &ok("answer=\n")), "\"\"");
    assert!(matches!(
        judge_sni(
            "http://api.allowed.test/",
            "evil.test",
            &Recorded::default()
        ),
        Outcome::NotApplicable(_)
    ));
}

// ---- recorded in the e2e stack's sandbox ----------------------------------------------

#[test]
fn every_network_judge_passes_on_the_e2e_stack() {
    // `bash -lc` there: curl's HTTPS after the tunnel failed on the login shell's CA
    // settings (exit 60), which the check does not look at: the CONNECT's 200 is the proxy's.
    let https = ok("allowed_http=000\nallowed_connect=200\nallowed_exit=60\n");
    assert!(is_pass(&judge_allowed("https://api.allowed.test/", &https)));
    let http = ok("allowed_http=200\nallowed_connect=000\nallowed_exit=0\n");
    assert!(is_pass(&judge_allowed("http://api.allowed.test/", &http)));
    let denied = ok(
        "https_http=403\nhttps_connect=200\nhttps_exit=0\nhttp_http=403\nhttp_connect=000\nhttp_exit=0\n",
    );
    assert!(is_pass(&judge_denied("evil.test", &denied)));
    assert!(is_pass(&judge_ip_literal(&ok(
        "ip_http=403\nip_connect=000\nip_exit=0\n"
    ))));
    let sni = ok(
        "HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 403 Forbidden\r\nDate: Wed, 02 Dec 2026 13:04:16 GMT\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 491\r\nConnection: close\r\nX-Safe-AI-Denied: sni-mismatch\r\n\r\ncurl_exit=0\n",
    );
    assert!(is_pass(&judge_sni(
        "https://api.allowed.test/",
        "evil.test",
        &sni
    )));
    let page = ok(
        "HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 403 Forbidden\r\nX-Safe-AI-Denied: not-allowlisted\r\n\r\nsafe-ai: the sandbox's proxy refused this request (not-allowlisted).\n\nhost:    evil.test\nreason:  evil.test is not on the allowlist.\nfix:     if the task needs evil.test, ask the person who runs this\n         sandbox to allow it. On the host, in the stack's directory:\n         safeai allow evil.test\ncurl_exit=0\n",
    );
    assert!(is_pass(&judge_denial_page("evil.test", &page)));
    // The same page through a missing CA: no pass.
    assert_fail(
        &judge_sni(
            "https://api.allowed.test/",
            "evil.test",
            &ok(
                "curl: (60) SSL certificate problem: unable to get local issuer certificate\ncurl_exit=60\n",
            ),
        ),
        "SSL certificate problem",
    );
    assert!(is_pass(&judge_ca(&ok("files=ca.crt \nkeys=\n"))));
    let egress = ok(
        "ip_exit=0\ndefault_route=\ncurl_exit=7\ncurl_error=curl: (7) Failed to connect to 172.30.100.5 port 3128 after 0 ms: Couldn't connect to server\n",
    );
    assert!(is_pass(&judge_egress(Some("172.30.100.5"), &egress)));
    assert!(is_pass(&judge_dns(
        "evil.test",
        &ok("answer=0.0.0.0         STREAM evil.test\n")
    )));
    assert_fail(
        &judge_dns(
            "evil.test",
            &ok("answer=172.30.100.10   STREAM evil.test\n"),
        ),
        "172.30.100.10",
    );
}

/// The gateway of the e2e stack's internal network: no route to it; the proxy's port opens.
const HOST_E2E: &str = "tcp:172.30.40.1:22=1 bash: connect: No route to host bash: line 1: /dev/tcp/172.30.40.1/22: No route to host\ntcp:172.30.40.1:80=1 bash: connect: No route to host bash: line 1: /dev/tcp/172.30.40.1/80: No route to host\ntcp:172.30.40.1:2375=1 bash: connect: No route to host bash: line 1: /dev/tcp/172.30.40.1/2375: No route to host\ntcp:172.30.40.1:3128=1 bash: connect: No route to host bash: line 1: /dev/tcp/172.30.40.1/3128: No route to host\ntcp:172.30.40.2:3128=0 \n";

#[test]
fn host_passes_on_the_e2e_stack_and_fails_on_an_answer() {
    assert!(is_pass(&judge_host(
        "172.30.40.1",
        "172.30.40.2",
        &ok(HOST_E2E)
    )));
    let open = HOST_E2E.replace(
        "tcp:172.30.40.1:22=1 bash: connect: No route to host bash: line 1: /dev/tcp/172.30.40.1/22: No route to host",
        "tcp:172.30.40.1:22=0 ",
    );
    assert_fail(
        &judge_host("172.30.40.1", "172.30.40.2", &ok(&open)),
        "22: exit 0",
    );
    let refused = HOST_E2E.replace("2375: No route to host\n", "2375: Connection refused\n");
    assert_fail(
        &judge_host("172.30.40.1", "172.30.40.2", &ok(&refused)),
        "2375",
    );
    let timeout = HOST_E2E.replace(
        "tcp:172.30.40.1:80=1 bash: connect: No route to host bash: line 1: /dev/tcp/172.30.40.1/80: No route to host",
        "tcp:172.30.40.1:80=124 ",
    );
    assert!(is_pass(&judge_host(
        "172.30.40.1",
        "172.30.40.2",
        &ok(&timeout)
    )));
    // One port's line missing (the loop cut short): not a pass.
    let cut: String = HOST_E2E
        .lines()
        .filter(|l| !l.contains(":3128=1"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_fail(
        &judge_host("172.30.40.1", "172.30.40.2", &ok(&cut)),
        "did not run",
    );
}

// `runtime`: recorded from the e2e stack under runc and under runsc (Debian's 0.0~20240729).
const HOST_KERNEL: &str = "kernel=Linux version 6.18.44-fc-v1098 (builder@sandboxing) (gcc (GCC) 15.3.0, GNU ld (GNU Binutils) 2.46) #1 SMP PREEMPT_DYNAMIC @0\n";
const GVISOR_KERNEL: &str = "kernel=Linux version 4.4.0 #1 SMP Sun Jan 10 15:06:54 PST 2016\n";

#[test]
fn runtime_names_the_kernel_under_runc_and_requires_gvisors_under_runsc() {
    let runc = judge_runtime(&ok("runc\n"), &ok(HOST_KERNEL));
    assert_eq!(
        runc,
        Outcome::Pass(
            "runc: the host's kernel, Linux 6.18.44-fc-v1098 (seccomp and capabilities are the boundary)"
                .into()
        )
    );
    assert!(is_pass(&judge_runtime(&ok("runsc\n"), &ok(GVISOR_KERNEL))));
    // Docker says runsc, but the kernel is the host's: a runtime registered under that
    // name that is not gVisor.
    assert_fail(
        &judge_runtime(&ok("runsc\n"), &ok(HOST_KERNEL)),
        "not gVisor's",
    );
}

#[test]
fn runtime_fails_when_a_probe_did_not_run() {
    assert_fail(
        &judge_runtime(&no_container(), &ok(HOST_KERNEL)),
        "cannot read the sandbox's runtime",
    );
    assert_fail(
        &judge_runtime(&ok("runc\n"), &no_container()),
        "did not run",
    );
    assert_fail(&judge_runtime(&ok("runc\n"), &not_running()), "did not run");
    assert_fail(
        &judge_runtime(&ok("runc\n"), &ok("kernel=\n")),
        "printed nothing",
    );
}
