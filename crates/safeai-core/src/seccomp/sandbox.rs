//! The seccomp profile of the safe-ai sandbox.
//!
//! It starts from Docker's default profile (moby/profiles `seccomp/default.json`): what
//! Docker allows to a container without extra capabilities, minus what an agent's dev
//! environment has no use for and what has a history of kernel escapes ([`DENIED_SYSCALLS`]),
//! plus `chroot` for sshd. The sandbox must still run git, gcc/cc1/ld, python3 with venv and
//! pip, node, make, bash, openssh-server with privilege separation, dig and pthreads.

use super::{
    Architecture, ArgIndex, Comparison, Condition, Errno, Rule, SeccompError, SeccompProfile,
    SyscallName,
};

/// Syscalls the sandbox profile deliberately leaves out, so they get the default EPERM.
///
/// Not exhaustive: anything not allowed is denied. These are the ones a reviewer looks for,
/// and the tests check that none of them is allowed.
pub const DENIED_SYSCALLS: &[SyscallName] = &[
    // Escaping the container's namespaces or changing its mounts.
    n("mount"),
    n("umount"),
    n("umount2"),
    n("pivot_root"),
    n("unshare"),
    n("setns"),
    n("fsopen"),
    n("fsconfig"),
    n("fsmount"),
    n("fspick"),
    n("move_mount"),
    n("open_tree"),
    n("open_tree_attr"),
    n("mount_setattr"),
    // Reading or writing other processes.
    n("ptrace"),
    n("process_vm_readv"),
    n("process_vm_writev"),
    n("process_madvise"),
    n("kcmp"),
    n("pidfd_getfd"),
    // Large kernel attack surface behind one syscall.
    n("bpf"),
    n("perf_event_open"),
    n("userfaultfd"),
    n("io_uring_setup"),
    n("io_uring_enter"),
    n("io_uring_register"),
    n("fanotify_init"),
    n("lookup_dcookie"),
    // The kernel keyring is not namespaced.
    n("keyctl"),
    n("add_key"),
    n("request_key"),
    // Kernel modules and replacing the kernel.
    n("init_module"),
    n("finit_module"),
    n("delete_module"),
    n("create_module"),
    n("get_kernel_syms"),
    n("query_module"),
    n("kexec_load"),
    n("kexec_file_load"),
    // File handles bypass path-based checks (the "shocker" escape).
    n("open_by_handle_at"),
    n("name_to_handle_at"),
    // Host-wide state: clocks, swap, power, accounting, quotas, names, the kernel log.
    n("settimeofday"),
    n("stime"),
    n("clock_settime"),
    n("clock_settime64"),
    // adjtimex can only read without CAP_SYS_TIME, but whether it reads or sets hides
    // behind a pointer seccomp cannot follow.
    n("adjtimex"),
    n("clock_adjtime"),
    n("clock_adjtime64"),
    n("swapon"),
    n("swapoff"),
    n("reboot"),
    n("acct"),
    n("quotactl"),
    n("quotactl_fd"),
    n("nfsservctl"),
    n("sethostname"),
    n("setdomainname"),
    n("syslog"),
    n("vhangup"),
    // Raw hardware access.
    n("iopl"),
    n("ioperm"),
    // NUMA placement affects the host's memory, not the container's.
    n("mbind"),
    n("set_mempolicy"),
    n("set_mempolicy_home_node"),
    n("get_mempolicy"),
    n("move_pages"),
    n("migrate_pages"),
    // Obsolete interfaces nothing current needs.
    n("uselib"),
    n("ustat"),
    n("sysfs"),
    n("_sysctl"),
    n("vm86"),
    n("vm86old"),
    // Linux security module attributes (Docker grants them only with CAP_SYS_ADMIN).
    n("lsm_get_self_attr"),
    n("lsm_set_self_attr"),
    n("lsm_list_modules"),
];

const fn n(name: &'static str) -> SyscallName {
    SyscallName::from_static(name)
}

// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET.
// CLONE_NEWTIME (0x80) is not here: in clone's flags those bits are the exit signal, and
// only clone3 and unshare, both refused, can ask for a time namespace.
const CLONE_NAMESPACE_FLAGS: u64 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

/// Pushes a byte into another user's terminal input: the classic way out of `su` and sudo.
const TIOCSTI: u32 = 0x5412;
/// Subcommands of the Linux console, some of which read or inject its contents.
const TIOCLINUX: u32 = 0x541c;

/// The socket families a development environment needs: local sockets, IPv4, IPv6, and
/// netlink (`ip`, `ss`, glibc's `getaddrinfo` with AI_ADDRCONFIG, Node's interface list).
/// Everything else (AF_PACKET, AF_ALG, AF_VSOCK, AF_CAN, AF_BLUETOOTH, AF_KEY, AF_XDP, …) is
/// kernel code an agent has no use for; AF_VSOCK in particular is not namespaced and under
/// Docker Desktop reaches the host VM's services.
const SOCKET_FAMILIES: [u32; 4] = [AF_UNIX, AF_INET, AF_INET6, AF_NETLINK];
const AF_UNIX: u32 = 1;
const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
const AF_NETLINK: u32 = 16;

/// The personas Docker's default profile allows: PER_LINUX, PER_LINUX32, UNAME26,
/// UNAME26 | PER_LINUX32, and 0xffffffff, which only queries. Notably absent:
/// ADDR_NO_RANDOMIZE (0x0040000, `setarch -R`), which turns off ASLR for the next exec.
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

impl SeccompProfile {
    /// The profile of the safe-ai sandbox: a syscall allowlist refusing everything else with
    /// EPERM, on [`Architecture::ALL`].
    ///
    /// `clone` is allowed only without namespace flags, `clone3` answers ENOSYS so glibc falls
    /// back to `clone`, `ioctl` is allowed except TIOCSTI and TIOCLINUX, `socket` only for
    /// AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK, `personality` only for Docker's five personas. Everything in
    /// [`DENIED_SYSCALLS`] is left out.
    ///
    /// # Panics
    /// Never: the profile is a constant, and the test suite builds it.
    pub fn sandbox() -> Self {
        build_sandbox().expect("the sandbox profile gives each syscall one valid rule")
    }
}

// Skipped by rustfmt, which would put every name on a line of its own.
#[rustfmt::skip]
fn build_sandbox() -> Result<SeccompProfile, SeccompError> {
    let mut b = SeccompProfile::builder(Errno::EPERM, Architecture::ALL);

    b.allow("file descriptors and file I/O", [
        "read", "readv", "pread64", "preadv", "preadv2",
        "write", "writev", "pwrite64", "pwritev", "pwritev2",
        "open", "openat", "openat2", "creat", "close", "close_range",
        "dup", "dup2", "dup3", "pipe", "pipe2",
        "lseek", "_llseek", "fcntl", "fcntl64", "flock",
        "fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "arm_sync_file_range",
        "fallocate", "truncate", "truncate64", "ftruncate", "ftruncate64",
        "fadvise64", "fadvise64_64", "arm_fadvise64_64", "readahead", "cachestat",
        "sendfile", "sendfile64", "splice", "tee", "vmsplice", "copy_file_range",
    ])?;
    b.allow("asynchronous I/O, the libaio kind (io_uring stays refused)", [
        "io_setup", "io_destroy", "io_submit", "io_cancel",
        "io_getevents", "io_pgetevents", "io_pgetevents_time64",
    ])?;
    b.allow("file metadata, directories and links", [
        "stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "fstatat64", "newfstatat", "statx",
        "statfs", "statfs64", "fstatfs", "fstatfs64",
        "access", "faccessat", "faccessat2",
        "getcwd", "chdir", "fchdir", "getdents", "getdents64",
        "mkdir", "mkdirat", "mknod", "mknodat", "rmdir",
        "rename", "renameat", "renameat2",
        "link", "linkat", "symlink", "symlinkat", "unlink", "unlinkat", "readlink", "readlinkat",
        "chmod", "fchmod", "fchmodat", "fchmodat2",
        "chown", "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32", "umask",
        "utime", "utimes", "utimensat", "utimensat_time64", "futimesat",
    ])?;
    b.allow("extended attributes", [
        "getxattr", "lgetxattr", "fgetxattr", "getxattrat",
        "setxattr", "lsetxattr", "fsetxattr", "setxattrat",
        "listxattr", "llistxattr", "flistxattr", "listxattrat",
        "removexattr", "lremovexattr", "fremovexattr", "removexattrat",
    ])?;
    b.allow("file change notification (fanotify_mark is inert without fanotify_init, which is refused)", [
        "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "fanotify_mark",
    ])?;
    b.allow("listing mounts, read-only (every call that changes mounts is refused)", [
        "listmount", "statmount",
    ])?;
    b.allow("memory", [
        "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync",
        "mlock", "mlock2", "mlockall", "munlock", "munlockall",
        "pkey_alloc", "pkey_free", "pkey_mprotect",
        "membarrier", "memfd_create", "memfd_secret", "remap_file_pages", "mseal", "map_shadow_stack",
    ])?;
    b.allow("processes (clone has its own rule below)", [
        "fork", "vfork", "execve", "execveat", "exit", "exit_group",
        "wait4", "waitid", "waitpid",
        "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
        "pidfd_open", "pidfd_send_signal", "process_mrelease", "restart_syscall",
    ])?;
    b.allow("threads and futexes", [
        "set_tid_address", "set_robust_list", "get_robust_list", "rseq",
        "futex", "futex_time64", "futex_waitv", "futex_wait", "futex_wake", "futex_requeue",
        "set_thread_area", "get_thread_area",
    ])?;
    b.allow("scheduling, priorities and resource limits (all bounded by the container's cgroup and rlimits)", [
        "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getattr", "sched_setattr",
        "sched_getparam", "sched_setparam", "sched_getscheduler", "sched_setscheduler",
        "sched_get_priority_max", "sched_get_priority_min",
        "sched_rr_get_interval", "sched_rr_get_interval_time64",
        "getcpu", "getpriority", "setpriority", "ioprio_get", "ioprio_set",
        "getrlimit", "setrlimit", "ugetrlimit", "prlimit64", "getrusage",
    ])?;
    b.allow("signals", [
        "kill", "tkill", "tgkill",
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigpending",
        "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
        "sigaltstack", "sigreturn", "sigprocmask", "signalfd", "signalfd4", "pause", "alarm",
    ])?;
    b.allow("clocks, sleeping and timers (setting the clock is refused)", [
        "clock_gettime", "clock_gettime64", "clock_getres", "clock_getres_time64",
        "clock_nanosleep", "clock_nanosleep_time64", "nanosleep", "gettimeofday", "time", "times",
        "getitimer", "setitimer",
        "timer_create", "timer_delete", "timer_getoverrun",
        "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
        "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64",
    ])?;
    // socketcall is 32-bit x86's multiplexer, whose arguments sit behind a pointer seccomp
    // cannot read. Leaving it out would not close that door: libseccomp turns every rule on
    // `socket` for x86 into `socketcall(SYS_SOCKET)` with the family condition dropped.
    b.allow("sockets (socket has its own rule below; socketcall is 32-bit x86's door to all of them, family unchecked)", [
        "socketpair", "bind", "listen", "accept", "accept4", "connect", "shutdown",
        "getsockname", "getpeername", "getsockopt", "setsockopt",
        "send", "sendto", "sendmsg", "sendmmsg", "recv", "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64",
        "socketcall",
    ])?;
    b.allow("polling and event notification", [
        "poll", "ppoll", "ppoll_time64", "select", "_newselect", "pselect6", "pselect6_time64",
        "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
        "epoll_wait", "epoll_wait_old", "epoll_pwait", "epoll_pwait2",
        "eventfd", "eventfd2",
    ])?;
    b.allow("System V and POSIX IPC (private to the container's IPC namespace)", [
        "ipc", "msgget", "msgctl", "msgsnd", "msgrcv",
        "semget", "semctl", "semop", "semtimedop", "semtimedop_time64",
        "shmget", "shmctl", "shmat", "shmdt",
        "mq_open", "mq_unlink", "mq_notify", "mq_getsetattr",
        "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64",
    ])?;
    b.allow("users, groups and capabilities (sshd switches to the user who logs in; capabilities still bound what succeeds)", [
        "getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid", "getegid32",
        "getresuid", "getresuid32", "getresgid", "getresgid32", "getgroups", "getgroups32",
        "setuid", "setuid32", "setgid", "setgid32",
        "setreuid", "setreuid32", "setregid", "setregid32",
        "setresuid", "setresuid32", "setresgid", "setresgid32",
        "setfsuid", "setfsuid32", "setfsgid", "setfsgid32", "setgroups", "setgroups32",
        "capget", "capset",
    ])?;
    b.allow("sshd privilege separation chroots into an empty directory (needs CAP_SYS_CHROOT too)", [
        "chroot",
    ])?;
    b.allow("restricting oneself: processes can only narrow their own rights (sshd installs its own seccomp sandbox)", [
        "prctl", "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
    ])?;
    b.allow("system information and randomness", [
        "uname", "sysinfo", "getrandom",
    ])?;
    // set_tls, cacheflush and breakpoint are 32-bit Arm's private syscalls: glibc sets up
    // thread-local storage with set_tls and JITs flush the instruction cache with cacheflush,
    // so no arm binary would start without them.
    b.allow("architecture-specific: thread registers, LDT, Arm cache and TLS, uretprobe trampolines", [
        "arch_prctl", "modify_ldt", "set_tls", "cacheflush", "breakpoint", "uretprobe",
    ])?;

    b.group(
        "clone: allowed without namespace flags; MASKED_EQ takes `value` as the mask and `valueTwo` as the expected bits",
        Rule::AllowIf(vec![vec![Condition::new(
            ArgIndex::ARG0,
            Comparison::MaskedEqual { mask: CLONE_NAMESPACE_FLAGS, value: 0 },
        )]]),
        ["clone"],
    )?;
    b.group(
        "clone3: its flags sit behind a pointer seccomp cannot read, so it answers ENOSYS and glibc falls back to clone (EPERM would fail pthread_create)",
        Rule::Errno(Errno::ENOSYS),
        ["clone3"],
    )?;
    b.group(
        "ioctl: any request but TIOCSTI (0x5412) and TIOCLINUX (0x541c); one prefix pattern of the request's low 32 bits per entry, since the kernel ignores the high bits",
        Rule::allow_unless_u32(ArgIndex::ARG1, &[TIOCSTI, TIOCLINUX]),
        ["ioctl"],
    )?;
    b.group(
        "socket: AF_UNIX (1), AF_INET (2), AF_INET6 (10) and AF_NETLINK (16) only, one entry each comparing the family's low 32 bits (the kernel ignores the high bits); every other family gets the default EPERM",
        Rule::allow_only_u32(ArgIndex::ARG0, &SOCKET_FAMILIES),
        ["socket"],
    )?;
    b.group(
        "personality: PER_LINUX, PER_LINUX32, UNAME26 and the query 0xffffffff only; ADDR_NO_RANDOMIZE would turn off ASLR",
        Rule::AllowIf(
            PERSONALITIES
                .iter()
                .map(|&persona| vec![Condition::new(ArgIndex::ARG0, Comparison::Equal(persona))])
                .collect(),
        ),
        ["personality"],
    )?;

    Ok(b.build())
}
