//! The sandbox seccomp profile, checked the way runc reads it: from the rendered JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use safeai_core::seccomp::{
    Action, Architecture, ArgCondition, ArgIndex, Comparison, Condition, DENIED_SYSCALLS,
    DockerProfile, Errno, Operator, Rule, SeccompError, SeccompProfile, SyscallEntry, SyscallName,
    render,
};

fn sandbox_json() -> String {
    render(&SeccompProfile::sandbox())
}

/// The profile as the runtime sees it: parsed back from the rendered text.
fn rendered() -> DockerProfile {
    serde_json::from_str(&sandbox_json()).expect("the rendered profile parses as Docker's format")
}

fn entries_for<'a>(profile: &'a DockerProfile, name: &str) -> Vec<&'a SyscallEntry> {
    profile
        .syscalls
        .iter()
        .filter(|e| e.names.iter().any(|n| n.as_str() == name))
        .collect()
}

/// libseccomp's comparisons on a 64-bit ABI, with `value` and `valueTwo` read as runc passes
/// them on: for MASKED_EQ, `value` is the mask and `valueTwo` the expected bits.
fn holds(condition: &ArgCondition, arg: u64) -> bool {
    let value = condition.value;
    match condition.op {
        Operator::NotEqual => arg != value,
        Operator::LessThan => arg < value,
        Operator::LessOrEqual => arg <= value,
        Operator::Equal => arg == value,
        Operator::GreaterOrEqual => arg >= value,
        Operator::GreaterThan => arg > value,
        Operator::MaskedEqual => arg & value == condition.value_two.unwrap_or(0),
    }
}

/// What the filter answers: `Ok` when the call runs, `Err(errno)` when it is refused.
/// An entry matches when all its conditions hold; entries for one syscall are alternatives.
fn decide(profile: &DockerProfile, entries: &[&SyscallEntry], args: [u64; 6]) -> Result<(), u16> {
    let matching = entries
        .iter()
        .find(|e| e.args.iter().all(|c| holds(c, args[usize::from(c.index)])));
    match matching {
        Some(entry) => match entry.action {
            Action::Allow => Ok(()),
            Action::Errno => Err(entry.errno_ret.unwrap_or(1)),
        },
        None => Err(profile.default_errno_ret.unwrap_or(1)),
    }
}

fn verdict(profile: &DockerProfile, name: &str, args: [u64; 6]) -> Result<(), u16> {
    decide(profile, &entries_for(profile, name), args)
}

fn arg0(value: u64) -> [u64; 6] {
    [value, 0, 0, 0, 0, 0]
}

fn arg1(value: u64) -> [u64; 6] {
    [3, value, 0, 0, 0, 0]
}

/// A deterministic stream of pseudo-random `u64`s (xorshift64).
fn random_u64s(count: usize) -> impl Iterator<Item = u64> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    std::iter::repeat_with(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    })
    .take(count)
}

/// Arguments worth probing around `excluded` 32-bit values: every value up to `dense_up_to`,
/// the same with high bits set, every one-bit flip of each excluded value over 64 bits, and
/// random values, some of them forced onto an excluded value's low 32 bits.
fn probes(excluded: &[u32], dense_up_to: u64) -> Vec<u64> {
    let high = [0, 1 << 32, 0xffff_ffff_0000_0000, 0x8000_0000_0000_0000];
    let mut out = Vec::new();
    for v in 0..=dense_up_to {
        out.extend(high.iter().map(|h| h | v));
    }
    for &e in excluded {
        out.extend((0..64).map(|bit| u64::from(e) ^ (1 << bit)));
    }
    for (i, r) in random_u64s(100_000).enumerate() {
        out.push(r);
        let e = excluded[i % excluded.len()];
        out.push((r & 0xffff_ffff_0000_0000) | u64::from(e));
    }
    out
}

/// Every rule of a `Rule::allow_unless_u32` encoding is one masked comparison of `index`
/// whose mask stays inside the low 32 bits, and whose expected bits lie inside the mask.
fn assert_low32_patterns(entries: &[&SyscallEntry], index: u8) {
    assert!(!entries.is_empty());
    for entry in entries {
        assert_eq!(entry.action, Action::Allow);
        let [condition] = entry.args.as_slice() else {
            panic!("one condition per entry, or runc and libseccomp disagree: {entry:?}");
        };
        assert_eq!(condition.index, index);
        assert_eq!(condition.op, Operator::MaskedEqual);
        assert_eq!(
            condition.value >> 32,
            0,
            "the mask must ignore the high 32 bits: {condition:?}"
        );
        let expected = condition.value_two.expect("MASKED_EQ carries valueTwo");
        assert_eq!(
            expected & !condition.value,
            0,
            "{condition:?} can never match"
        );
    }
}

// ARM's private syscalls (arch/arm/kernel/traps.c, numbered from __ARM_NR_BASE = 0x0f0000)
// are outside the syscall tables the `syscalls` crate is generated from; libseccomp knows them.
const ARM_PRIVATE: [&str; 3] = ["breakpoint", "cacheflush", "set_tls"];

fn in_kernel_tables(name: &str) -> bool {
    syscalls::x86_64::Sysno::from_str(name).is_ok()
        || syscalls::x86::Sysno::from_str(name).is_ok()
        || syscalls::aarch64::Sysno::from_str(name).is_ok()
        || syscalls::arm::Sysno::from_str(name).is_ok()
}

#[test]
fn every_name_is_in_the_kernel_tables() {
    let profile = rendered();
    let named = profile
        .syscalls
        .iter()
        .flat_map(|e| &e.names)
        .chain(DENIED_SYSCALLS);
    let unknown: BTreeSet<&str> = named
        .map(SyscallName::as_str)
        .filter(|n| !in_kernel_tables(n) && !ARM_PRIVATE.contains(n))
        .collect();
    assert!(
        unknown.is_empty(),
        "not a syscall on x86_64, x86, aarch64 or arm: {unknown:?}"
    );

    // The exception must not outlive its reason.
    for name in ARM_PRIVATE {
        assert!(
            !in_kernel_tables(name),
            "`{name}` is in the tables now: drop it from ARM_PRIVATE"
        );
    }
}

#[test]
fn the_name_check_rejects_what_is_not_a_syscall() {
    assert!(in_kernel_tables("openat"));
    assert!(in_kernel_tables("socketcall"), "x86 only");
    assert!(in_kernel_tables("set_thread_area"), "x86 family only");
    assert!(!in_kernel_tables("open_at"));
    assert!(!in_kernel_tables("sys_read"));
}

/// What libseccomp or runc would get wrong in `profile`: a syscall with an unconditional entry
/// and more entries (the conditional ones are shadowed), entries of one syscall with different
/// actions, a name repeated in an entry, an argument compared twice in one entry (runc splits
/// those comparisons into either-or rules).
fn rule_conflicts(profile: &DockerProfile) -> Vec<String> {
    let mut conflicts = Vec::new();
    let mut by_name: BTreeMap<&str, Vec<&SyscallEntry>> = BTreeMap::new();
    for entry in &profile.syscalls {
        let distinct: BTreeSet<&SyscallName> = entry.names.iter().collect();
        if distinct.len() != entry.names.len() {
            conflicts.push(format!("a name is repeated in {:?}", entry.names));
        }
        let indexes: BTreeSet<u8> = entry.args.iter().map(|c| c.index).collect();
        if indexes.len() != entry.args.len() {
            conflicts.push(format!(
                "an argument is compared twice for {:?}",
                entry.names
            ));
        }
        for name in distinct {
            by_name.entry(name.as_str()).or_default().push(entry);
        }
    }
    for (name, entries) in &by_name {
        if entries.len() > 1 && entries.iter().any(|e| e.args.is_empty()) {
            conflicts.push(format!(
                "`{name}` has an unconditional entry that shadows {} more",
                entries.len() - 1
            ));
        }
        let actions: BTreeSet<(Action, Option<u16>)> =
            entries.iter().map(|e| (e.action, e.errno_ret)).collect();
        if actions.len() > 1 {
            conflicts.push(format!("`{name}` has entries with different actions"));
        }
    }
    conflicts
}

#[test]
fn each_syscall_has_one_rule() {
    let profile = rendered();
    assert_eq!(rule_conflicts(&profile), Vec::<String>::new());

    // The model and the rendering agree on which syscalls have a rule.
    let rendered_names: BTreeSet<&str> = profile
        .syscalls
        .iter()
        .flat_map(|e| &e.names)
        .map(SyscallName::as_str)
        .collect();
    let model = SeccompProfile::sandbox();
    let modelled: BTreeSet<&str> = model.rules().map(|(name, _)| name.as_str()).collect();
    assert_eq!(modelled, rendered_names);
}

#[test]
fn the_conflict_check_finds_what_the_builder_prevents() {
    let name = |n: &str| SyscallName::new(n).expect("valid");
    let entry = |n: &str, args: Vec<ArgCondition>| SyscallEntry {
        names: vec![name(n)],
        action: Action::Allow,
        errno_ret: None,
        args,
        comment: None,
    };
    let ne = |value| ArgCondition {
        index: 1,
        value,
        value_two: None,
        op: Operator::NotEqual,
    };
    let mut profile = rendered();
    profile.syscalls = vec![
        entry("read", vec![]),
        entry("read", vec![ne(0)]),
        entry("ioctl", vec![ne(0x5412), ne(0x541c)]),
        SyscallEntry {
            names: vec![name("write"), name("write")],
            ..entry("write", vec![])
        },
        SyscallEntry {
            action: Action::Errno,
            errno_ret: Some(38),
            ..entry("close", vec![ne(1)])
        },
        entry("close", vec![ne(2)]),
    ];
    let conflicts = rule_conflicts(&profile);
    assert_eq!(conflicts.len(), 4, "{conflicts:#?}");
    for needle in [
        "`read` has an unconditional entry",
        "compared twice",
        "repeated",
        "`close` has entries with different actions",
    ] {
        assert!(
            conflicts.iter().any(|c| c.contains(needle)),
            "{needle:?} not in {conflicts:#?}"
        );
    }
}

#[test]
fn denied_syscalls_fall_to_the_default_eperm() {
    let profile = rendered();
    let model = SeccompProfile::sandbox();
    let distinct: BTreeSet<&SyscallName> = DENIED_SYSCALLS.iter().collect();
    assert_eq!(
        distinct.len(),
        DENIED_SYSCALLS.len(),
        "DENIED_SYSCALLS repeats a name"
    );
    for name in DENIED_SYSCALLS {
        assert!(
            entries_for(&profile, name.as_str()).is_empty(),
            "`{name}` has an entry"
        );
        assert_eq!(model.rule(name.as_str()), None, "`{name}` has a rule");
        assert_eq!(
            verdict(&profile, name.as_str(), arg0(0)),
            Err(1),
            "`{name}`"
        );
    }
}

#[test]
fn the_dangerous_syscalls_are_on_the_denied_list() {
    let listed: BTreeSet<&str> = DENIED_SYSCALLS.iter().map(SyscallName::as_str).collect();
    let required = [
        "ptrace",
        "mount",
        "umount",
        "umount2",
        "pivot_root",
        "bpf",
        "unshare",
        "setns",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "create_module",
        "keyctl",
        "add_key",
        "request_key",
        "userfaultfd",
        "perf_event_open",
        "open_by_handle_at",
        "name_to_handle_at",
        "swapon",
        "swapoff",
        "reboot",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "acct",
        "lookup_dcookie",
        "quotactl",
        "settimeofday",
        "clock_settime",
        "adjtimex",
        "syslog",
        "vhangup",
        "iopl",
        "ioperm",
        "fsopen",
        "fsmount",
        "move_mount",
        "open_tree",
    ];
    let missing: Vec<&str> = required
        .into_iter()
        .filter(|n| !listed.contains(n))
        .collect();
    assert!(missing.is_empty(), "not on DENIED_SYSCALLS: {missing:?}");
}

#[test]
fn everything_else_is_refused_with_eperm_on_the_five_abis() {
    let profile = rendered();
    assert_eq!(profile.default_action, Action::Errno);
    assert_eq!(profile.default_errno_ret, Some(1));
    assert_eq!(
        profile.architectures,
        [
            Architecture::X86_64,
            Architecture::X86,
            Architecture::X32,
            Architecture::Aarch64,
            Architecture::Arm
        ],
    );
    let json = sandbox_json();
    assert!(json.contains(
        r#""architectures": [
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM"
  ]"#
    ));
    assert!(
        json.starts_with(
            "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"defaultErrnoRet\": 1,\n"
        )
    );
    assert_eq!(verdict(&profile, "not_a_listed_syscall", arg0(0)), Err(1));
}

const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_THREAD: u64 = 0x1_0000;
const CLONE_NEWNS: u64 = 0x2_0000;
const CLONE_SYSVSEM: u64 = 0x4_0000;
const CLONE_SETTLS: u64 = 0x8_0000;
const CLONE_PARENT_SETTID: u64 = 0x10_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
const CLONE_CHILD_SETTID: u64 = 0x100_0000;
const CLONE_NEWCGROUP: u64 = 0x200_0000;
const CLONE_NEWUTS: u64 = 0x400_0000;
const CLONE_NEWIPC: u64 = 0x800_0000;
const CLONE_NEWUSER: u64 = 0x1000_0000;
const CLONE_NEWPID: u64 = 0x2000_0000;
const CLONE_NEWNET: u64 = 0x4000_0000;
const SIGCHLD: u64 = 17;
const NAMESPACE_FLAGS: [u64; 7] = [
    CLONE_NEWNS,
    CLONE_NEWCGROUP,
    CLONE_NEWUTS,
    CLONE_NEWIPC,
    CLONE_NEWUSER,
    CLONE_NEWPID,
    CLONE_NEWNET,
];

#[test]
fn clone_masks_namespace_flags_with_value_as_the_mask() {
    let profile = rendered();
    let entries = entries_for(&profile, "clone");
    let [entry] = entries.as_slice() else {
        panic!("one clone entry, found {entries:?}")
    };
    let mask = NAMESPACE_FLAGS.iter().fold(0, |acc, f| acc | f);
    assert_eq!(mask, 2_114_060_288);
    // runc and libseccomp read MASKED_EQ as `arg & value == valueTwo`: the mask goes in
    // `value`, the expected bits (none set) in `valueTwo`. Swapped, every clone would fail.
    assert_eq!(entry.action, Action::Allow);
    assert_eq!(entry.names.len(), 1);
    assert_eq!(
        entry.args,
        [ArgCondition {
            index: 0,
            value: mask,
            value_two: Some(0),
            op: Operator::MaskedEqual
        }],
    );
    let json = sandbox_json();
    assert!(json.contains(
        r#"      "args": [
        {
          "index": 0,
          "value": 2114060288,
          "valueTwo": 0,
          "op": "SCMP_CMP_MASKED_EQ"
        }
      ],"#
    ));
}

#[test]
fn clone_runs_threads_and_processes_but_no_namespaces() {
    let profile = rendered();
    let pthread_create = CLONE_VM
        | CLONE_FS
        | CLONE_FILES
        | CLONE_SIGHAND
        | CLONE_THREAD
        | CLONE_SYSVSEM
        | CLONE_SETTLS
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_CLEARTID;
    let fork = CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD;
    let posix_spawn = CLONE_VM | CLONE_VFORK | SIGCHLD;
    for flags in [pthread_create, fork, posix_spawn, SIGCHLD, 0] {
        assert_eq!(
            verdict(&profile, "clone", arg0(flags)),
            Ok(()),
            "clone({flags:#x})"
        );
    }
    for namespace in NAMESPACE_FLAGS {
        for base in [0, SIGCHLD, pthread_create, 0xffff_ffff_0000_0000] {
            let flags = base | namespace;
            assert_eq!(
                verdict(&profile, "clone", arg0(flags)),
                Err(1),
                "clone({flags:#x})"
            );
        }
    }
}

#[test]
fn clone3_answers_enosys_so_glibc_falls_back_to_clone() {
    let profile = rendered();
    let entries = entries_for(&profile, "clone3");
    let [entry] = entries.as_slice() else {
        panic!("one clone3 entry, found {entries:?}")
    };
    assert_eq!(entry.action, Action::Errno);
    assert_eq!(entry.errno_ret, Some(38));
    assert!(entry.args.is_empty());
    assert_eq!(verdict(&profile, "clone3", arg0(0)), Err(38));
}

const TIOCSTI: u32 = 0x5412;
const TIOCLINUX: u32 = 0x541c;

#[test]
fn ioctl_refuses_tiocsti_and_tioclinux_whatever_the_high_bits() {
    let profile = rendered();
    let entries = entries_for(&profile, "ioctl");
    assert_low32_patterns(&entries, 1);
    let ioctl = |cmd: u64| decide(&profile, &entries, arg1(cmd));

    assert_eq!(ioctl(0x5412), Err(1), "TIOCSTI");
    assert_eq!(ioctl(0x541c), Err(1), "TIOCLINUX");
    assert_eq!(
        ioctl(0x1_0000_5412),
        Err(1),
        "TIOCSTI with a high bit, which the kernel drops"
    );
    assert_eq!(
        ioctl(0xffff_ffff_0000_541c),
        Err(1),
        "TIOCLINUX with all high bits"
    );
    assert_eq!(ioctl(0x5413), Ok(()), "TIOCGWINSZ");
    assert_eq!(ioctl(0x5401), Ok(()), "TCGETS");
    assert_eq!(ioctl(0x5410), Ok(()), "TIOCSPGRP, for job control");
    assert_eq!(ioctl(0x541b), Ok(()), "FIONREAD");
    assert_eq!(ioctl(0x1_0000_5413), Ok(()), "TIOCGWINSZ with a high bit");
    assert_eq!(ioctl(0), Ok(()));
    assert_eq!(ioctl(u64::MAX), Ok(()));

    let intended = |cmd: u64| {
        let kernel_sees = cmd as u32;
        if kernel_sees == TIOCSTI || kernel_sees == TIOCLINUX {
            Err(1)
        } else {
            Ok(())
        }
    };
    for cmd in probes(&[TIOCSTI, TIOCLINUX], 0x1_0000) {
        assert_eq!(ioctl(cmd), intended(cmd), "ioctl(fd, {cmd:#x})");
    }
}

/// The families `socket` allows: AF_UNIX, AF_INET, AF_INET6, AF_NETLINK.
const SOCKET_FAMILIES: [u32; 4] = [1, 2, 10, 16];

#[test]
fn socket_allows_only_unix_inet_inet6_and_netlink_whatever_the_high_bits() {
    let profile = rendered();
    let entries = entries_for(&profile, "socket");
    assert_eq!(entries.len(), SOCKET_FAMILIES.len(), "one entry per family");
    for entry in &entries {
        let [condition] = entry.args.as_slice() else {
            panic!("one condition per entry, or runc and libseccomp disagree: {entry:?}");
        };
        assert_eq!(entry.action, Action::Allow);
        assert_eq!((condition.index, condition.op), (0, Operator::MaskedEqual));
        assert_eq!(condition.value, 0xffff_ffff, "the mask is the low 32 bits");
    }
    let socket = |family: u64| decide(&profile, &entries, arg0(family));

    for (family, name) in [
        (1, "AF_UNIX"),
        (2, "AF_INET"),
        (10, "AF_INET6"),
        (16, "AF_NETLINK"),
        (
            0x1_0000_0002,
            "AF_INET with a high bit, which the kernel drops",
        ),
        (0xffff_ffff_0000_000a, "AF_INET6 with all high bits"),
    ] {
        assert_eq!(socket(family), Ok(()), "{name}");
    }
    for (family, name) in [
        (0, "AF_UNSPEC"),
        (4, "AF_IPX"),
        (15, "AF_KEY"),
        (17, "AF_PACKET"),
        (29, "AF_CAN"),
        (31, "AF_BLUETOOTH"),
        (38, "AF_ALG"),
        (40, "AF_VSOCK"),
        (44, "AF_XDP"),
        (0x1_0000_0028, "AF_VSOCK with a high bit"),
        (0x1_0000_0000, "AF_UNSPEC with a high bit"),
        (0x0001_0001, "AF_UNIX in a higher half-word"),
        (u64::MAX, "-1"),
    ] {
        assert_eq!(socket(family), Err(1), "{name}");
    }

    let intended = |family: u64| {
        if SOCKET_FAMILIES.contains(&(family as u32)) {
            Ok(())
        } else {
            Err(1)
        }
    };
    for family in probes(&SOCKET_FAMILIES, 0x1000) {
        assert_eq!(socket(family), intended(family), "socket({family:#x})");
    }
}

#[test]
fn personality_allows_only_dockers_personas() {
    let profile = rendered();
    let entries = entries_for(&profile, "personality");
    let allowed: BTreeSet<u64> = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff].into();
    assert_eq!(entries.len(), allowed.len(), "one entry per persona");
    for entry in &entries {
        let [condition] = entry.args.as_slice() else {
            panic!("one condition per entry: {entry:?}")
        };
        assert_eq!((condition.index, condition.op), (0, Operator::Equal));
    }
    let rendered_values: BTreeSet<u64> = entries.iter().map(|e| e.args[0].value).collect();
    assert_eq!(rendered_values, allowed);

    let personality = |persona: u64| decide(&profile, &entries, arg0(persona));
    assert_eq!(personality(0x004_0000), Err(1), "ADDR_NO_RANDOMIZE");
    assert_eq!(
        personality(0x004_0008),
        Err(1),
        "PER_LINUX32 | ADDR_NO_RANDOMIZE"
    );
    assert_eq!(
        personality(0x1_0000_0000),
        Err(1),
        "PER_LINUX in the kernel's eyes, but refused is safe"
    );
    let candidates = (0..0x3_0000)
        .chain([0xffff_ffff, u64::MAX])
        .chain(random_u64s(10_000));
    for persona in candidates {
        let intended = if allowed.contains(&persona) {
            Ok(())
        } else {
            Err(1)
        };
        assert_eq!(personality(persona), intended, "personality({persona:#x})");
    }
}

#[test]
fn what_the_dev_tools_need_is_allowed() {
    let profile = rendered();
    let model = SeccompProfile::sandbox();
    // glibc start-up, files, processes, threads, sockets, terminals, sshd's privilege separation.
    let unconditional = [
        "read",
        "write",
        "openat",
        "close",
        "newfstatat",
        "statx",
        "fstat",
        "lseek",
        "getdents64",
        "mmap",
        "mprotect",
        "munmap",
        "brk",
        "madvise",
        "execve",
        "vfork",
        "wait4",
        "exit_group",
        "futex",
        "set_robust_list",
        "rseq",
        "set_tid_address",
        "rt_sigaction",
        "rt_sigprocmask",
        "pipe2",
        "dup2",
        "fcntl",
        "prlimit64",
        "getrandom",
        "uname",
        "sched_getaffinity",
        "connect",
        "sendto",
        "recvfrom",
        "sendmsg",
        "recvmsg",
        "bind",
        "listen",
        "accept4",
        "epoll_create1",
        "epoll_ctl",
        "epoll_wait",
        "poll",
        "pselect6",
        "eventfd2",
        "memfd_create",
        "chroot",
        "setresuid",
        "setresgid",
        "setgroups",
        "setuid",
        "setgid",
        "capget",
        "capset",
        "seccomp",
        "prctl",
        "arch_prctl",
        "socketpair",
        "utimensat",
        "fchmodat",
        "fchownat",
        "renameat2",
        "linkat",
        "symlinkat",
        "unlinkat",
        "mkdirat",
        "fsync",
        "ftruncate",
    ];
    for name in unconditional {
        assert_eq!(model.rule(name), Some(&Rule::Allow), "`{name}`");
        assert_eq!(verdict(&profile, name, arg0(0)), Ok(()), "`{name}`");
    }
    assert_eq!(verdict(&profile, "socket", arg0(2)), Ok(()), "AF_INET");
    assert_eq!(verdict(&profile, "ioctl", arg1(0x5401)), Ok(()), "TCGETS");
    assert_eq!(
        verdict(&profile, "personality", arg0(0xffff_ffff)),
        Ok(()),
        "query"
    );
}

#[test]
fn the_rendered_profile_matches_its_snapshot() {
    insta::assert_snapshot!("sandbox_profile", sandbox_json());
}

#[test]
fn rendering_is_deterministic_pretty_and_round_trips() {
    let first = sandbox_json();
    assert_eq!(first, sandbox_json());
    assert!(first.ends_with("}\n"), "one trailing newline");
    assert!(
        first
            .lines()
            .nth(1)
            .is_some_and(|line| line.starts_with("  \"")),
        "two-space indent"
    );
    let parsed: DockerProfile = serde_json::from_str(&first).expect("parses");
    assert_eq!(parsed, SeccompProfile::sandbox().to_docker());
    let again = serde_json::to_string_pretty(&parsed).expect("serializes") + "\n";
    assert_eq!(again, first);
}

#[test]
fn a_small_profile_renders_grouped_entries() {
    let mut b =
        SeccompProfile::builder(Errno::EPERM, [Architecture::Aarch64, Architecture::X86_64]);
    b.allow("basics", ["write", "read"]).expect("valid");
    b.group("refused softly", Rule::Errno(Errno::ENOSYS), ["clone3"])
        .expect("valid");
    let either = Rule::AllowIf(vec![
        vec![Condition::new(ArgIndex::ARG0, Comparison::Equal(1))],
        vec![
            Condition::new(
                ArgIndex::ARG0,
                Comparison::MaskedEqual {
                    mask: 0xf0,
                    value: 0x20,
                },
            ),
            Condition::new(ArgIndex::ARG2, Comparison::LessThan(9)),
        ],
    ]);
    b.group("either", either, ["kill"]).expect("valid");
    let expected = r#"{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "architectures": [
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_AARCH64"
  ],
  "syscalls": [
    {
      "names": [
        "read",
        "write"
      ],
      "action": "SCMP_ACT_ALLOW",
      "comment": "basics"
    },
    {
      "names": [
        "clone3"
      ],
      "action": "SCMP_ACT_ERRNO",
      "errnoRet": 38,
      "comment": "refused softly"
    },
    {
      "names": [
        "kill"
      ],
      "action": "SCMP_ACT_ALLOW",
      "args": [
        {
          "index": 0,
          "value": 1,
          "op": "SCMP_CMP_EQ"
        }
      ],
      "comment": "either"
    },
    {
      "names": [
        "kill"
      ],
      "action": "SCMP_ACT_ALLOW",
      "args": [
        {
          "index": 0,
          "value": 240,
          "valueTwo": 32,
          "op": "SCMP_CMP_MASKED_EQ"
        },
        {
          "index": 2,
          "value": 9,
          "op": "SCMP_CMP_LT"
        }
      ],
      "comment": "either"
    }
  ]
}
"#;
    assert_eq!(render(&b.build()), expected);
}

fn assert_actionable(error: &SeccompError, mentions: &[&str]) {
    let message = error.to_string();
    assert!(!message.ends_with('.'), "trailing period: {message}");
    assert!(message.contains(": "), "no hint: {message}");
    for needle in mentions {
        assert!(
            message.contains(needle),
            "{message:?} does not mention {needle:?}"
        );
    }
}

#[test]
fn the_builder_refuses_a_second_rule_for_a_syscall() {
    let mut b = SeccompProfile::builder(Errno::EPERM, Architecture::ALL);
    b.allow("files", ["read", "write"]).expect("valid");
    let conditional = Rule::AllowIf(vec![vec![Condition::new(
        ArgIndex::ARG0,
        Comparison::Equal(0),
    )]]);
    let error = b
        .group("conditional read", conditional, ["close", "read"])
        .expect_err("read has a rule");
    let name = SyscallName::new("read").expect("valid");
    assert_eq!(
        error,
        SeccompError::DuplicateSyscall {
            name,
            first: "files".into()
        }
    );
    assert_actionable(&error, &["`read`", "\"files\"", "one rule"]);

    let error = b
        .allow("twice", ["close", "close"])
        .expect_err("close is named twice");
    assert!(
        matches!(&error, SeccompError::DuplicateSyscall { name, first } if name.as_str() == "close" && first == "twice")
    );

    // A refused group adds nothing, not even its valid names.
    let profile = b.build();
    assert_eq!(profile.rule("read"), Some(&Rule::Allow));
    assert_eq!(profile.rule("close"), None);
    assert_eq!(profile.rules().count(), 2);
}

#[test]
fn the_builder_refuses_rules_that_would_not_do_what_they_say() {
    let mut b = SeccompProfile::builder(Errno::EPERM, Architecture::ALL);
    let ne = |v| Condition::new(ArgIndex::ARG1, Comparison::NotEqual(v));

    let error = b
        .group(
            "two",
            Rule::AllowIf(vec![vec![ne(0x5412), ne(0x541c)]]),
            ["ioctl"],
        )
        .expect_err("repeated");
    assert_eq!(
        error,
        SeccompError::RepeatedArgument {
            name: SyscallName::new("ioctl").expect("valid"),
            index: 1
        }
    );
    assert_actionable(&error, &["`ioctl`", "argument 1", "allow_unless_u32"]);

    let error = b
        .group("none", Rule::AllowIf(vec![]), ["ioctl"])
        .expect_err("no alternative");
    assert!(matches!(error, SeccompError::NoAlternatives { .. }));
    assert_actionable(&error, &["`ioctl`", "leave `ioctl` out"]);

    let error = b
        .group("empty", Rule::AllowIf(vec![vec![]]), ["ioctl"])
        .expect_err("empty alternative");
    assert!(matches!(error, SeccompError::EmptyAlternative { .. }));
    assert_actionable(&error, &["`ioctl`", "Rule::Allow"]);

    let masked = Condition::new(
        ArgIndex::ARG0,
        Comparison::MaskedEqual {
            mask: 0xff00,
            value: 0x1,
        },
    );
    let error = b
        .group("mask", Rule::AllowIf(vec![vec![masked]]), ["clone"])
        .expect_err("outside the mask");
    assert!(matches!(
        error,
        SeccompError::ValueOutsideMask {
            mask: 0xff00,
            value: 0x1,
            ..
        }
    ));
    assert_actionable(&error, &["`clone`", "0xff00", "0x1"]);

    let error = b
        .allow("nothing", Vec::<&str>::new())
        .expect_err("empty group");
    assert_actionable(&error, &["\"nothing\""]);

    for bad in ["", "Read", "read;", "open at", "réad"] {
        let error = b.allow("bad", [bad]).expect_err("malformed name");
        assert_eq!(
            error,
            SeccompError::InvalidSyscallName {
                name: bad.to_owned()
            }
        );
        assert_actionable(&error, &[&format!("{bad:?}"), "openat"]);
    }
    assert_eq!(b.build().rules().count(), 0);
}

#[test]
fn names_errnos_and_argument_indexes_exist_only_when_valid() {
    assert_eq!(
        SyscallName::new("_llseek").expect("valid").as_str(),
        "_llseek"
    );
    assert_eq!(
        "epoll_pwait2"
            .parse::<SyscallName>()
            .expect("valid")
            .to_string(),
        "epoll_pwait2"
    );
    assert!(serde_json::from_str::<SyscallName>(r#""Read""#).is_err());
    assert_eq!(
        serde_json::from_str::<SyscallName>(r#""read""#)
            .expect("valid")
            .as_str(),
        "read"
    );
    assert_eq!(Errno::new(0), None);
    assert_eq!(Errno::ENOSYS.get(), 38);
    assert_eq!(Errno::EPERM.get(), 1);
    assert_eq!(ArgIndex::new(5), Some(ArgIndex::ARG5));
    assert_eq!(ArgIndex::new(6), None);
}

#[test]
fn excluding_no_value_is_allowing_everything() {
    assert_eq!(Rule::allow_unless_u32(ArgIndex::ARG1, &[]), Rule::Allow);
    let Rule::AllowIf(alternatives) = Rule::allow_unless_u32(ArgIndex::ARG1, &[7]) else {
        panic!("a conditional rule")
    };
    assert_eq!(
        alternatives.len(),
        32,
        "one pattern per bit of the excluded value"
    );
}

#[test]
fn allowing_only_some_values_is_one_low32_equality_each() {
    let Rule::AllowIf(alternatives) = Rule::allow_only_u32(ArgIndex::ARG0, &[10, 2, 10]) else {
        panic!("a conditional rule")
    };
    let expected: Vec<Vec<Condition>> = [2, 10]
        .into_iter()
        .map(|v| {
            let cmp = Comparison::MaskedEqual {
                mask: 0xffff_ffff,
                value: v,
            };
            vec![Condition::new(ArgIndex::ARG0, cmp)]
        })
        .collect();
    assert_eq!(alternatives, expected, "sorted, repeats dropped");

    let mut b = SeccompProfile::builder(Errno::EPERM, [Architecture::X86_64]);
    let error = b
        .group(
            "nothing",
            Rule::allow_only_u32(ArgIndex::ARG0, &[]),
            ["socket"],
        )
        .expect_err("allowing no value is no rule");
    assert!(matches!(error, SeccompError::NoAlternatives { .. }));
}
