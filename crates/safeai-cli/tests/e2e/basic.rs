//! The basics: the stack is up, the allowlist is enforced, SSH works, the root is
//! read-only, reload works and refuses an invalid list, `safeai verify` passes.

use std::time::{Duration, Instant};

use crate::stack::{Stack, ensure, text};

pub fn both_services_are_healthy(s: &Stack) -> Result<(), String> {
    let (p, b) = (s.health("proxy"), s.health("sandbox"));
    ensure(p == "healthy" && b == "healthy", || {
        format!("proxy {p}, sandbox {b}")
    })
}

/// The sandbox runs under the runtime this pass asked for, and its processes see that
/// runtime's kernel: the host's under runc, gVisor's under runsc. Without this, a pass
/// "under gVisor" could quietly be one more pass under runc.
pub fn the_sandbox_runs_under_its_runtime(s: &Stack) -> Result<(), String> {
    let id = text(&s.compose(&["ps", "-q", "sandbox"]).stdout)
        .trim()
        .to_owned();
    let out = s.run("docker", &["inspect", "-f", "{{.HostConfig.Runtime}}", &id]);
    let runtime = text(&out.stdout).trim().to_owned();
    ensure(out.status.success() && runtime == s.runtime, || {
        format!(
            "docker says the sandbox runs under {runtime:?} (status {:?}), not {:?}",
            out.status.code(),
            s.runtime
        )
    })?;
    let out = s.sandbox("cat /proc/version");
    let version = text(&out.stdout);
    ensure(out.status.success() && !version.is_empty(), || {
        format!(
            "cat /proc/version in the sandbox failed: {}",
            text(&out.stderr)
        )
    })?;
    let gvisor = version.contains(safeai_core::verify::GVISOR_VERSION);
    ensure(gvisor == (s.runtime == "runsc"), || {
        format!(
            "under {}, the sandbox's /proc/version is {version:?}",
            s.runtime
        )
    })
}

pub fn allowlisted_upstream_answers_through_the_proxy(s: &Stack) -> Result<(), String> {
    let code = s.status_from_sandbox("http://api.allowed.test/");
    ensure(code == "200", || {
        format!("expected 200 from api.allowed.test, got {code:?}")
    })
}

pub fn non_allowlisted_name_gets_403_and_is_logged(s: &Stack) -> Result<(), String> {
    let code = s.status_from_sandbox("http://evil.test/");
    ensure(code == "403", || {
        format!("expected 403 from evil.test, got {code:?}")
    })?;
    // `docker compose logs proxy` shows the decision log's events.
    let logs = text(&s.compose(&["logs", "--no-color", "proxy"]).stdout);
    ensure(
        logs.lines().any(|l| {
            l.split_once("| ")
                .and_then(|(_, json)| serde_json::from_str::<serde_json::Value>(json).ok())
                .is_some_and(|e| {
                    e["host"] == "evil.test"
                        && e["decision"] == "denied"
                        && e["reason"] == "not-allowlisted"
                })
        }),
        || format!("no denial event for evil.test in the proxy's log:\n{logs}"),
    )
}

pub fn key_login_through_the_host_port_lands_in_workspace(s: &Stack) -> Result<(), String> {
    let mut args = s.ssh_options();
    // An interactive login shell on a terminal, as a person or an IDE gets;
    // `ssh host cmd` starts in the home directory, as everywhere.
    args.extend([
        "-tt".into(),
        "dev@127.0.0.1".into(),
        "bash -il -c 'pwd; id -un'".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = s.run("ssh", &args);
    let got = text(&out.stdout).replace('\r', "");
    ensure(
        out.status.success() && got.ends_with("/workspace\ndev\n"),
        || {
            format!(
                "ssh login: status {:?}, stdout {got:?}, stderr {}",
                out.status.code(),
                text(&out.stderr)
            )
        },
    )
}

pub fn root_filesystem_is_read_only(s: &Stack) -> Result<(), String> {
    let out = s.exec(
        "sandbox",
        "root",
        "touch /etc/safeai-e2e 2>&1; touch /usr/bin/safeai-e2e 2>&1; true",
    );
    let err = text(&out.stdout);
    ensure(err.matches("Read-only file system").count() == 2, || {
        format!("root could write to the root filesystem: {err:?}")
    })?;
    let out = s.sandbox("touch /workspace/ok /tmp/ok ~/ok && echo written");
    ensure(text(&out.stdout).trim() == "written", || {
        format!("/workspace, /tmp or ~ not writable: {}", text(&out.stderr))
    })
}

pub fn reload_adds_a_domain_and_an_invalid_reload_changes_nothing(s: &Stack) -> Result<(), String> {
    let before = s.status_from_sandbox("http://new.allowed.test/");
    ensure(before == "403", || {
        format!("new.allowed.test before the reload: {before:?}")
    })?;

    let allowlist = s.allowlist();
    let original = std::fs::read_to_string(&allowlist).unwrap();
    let out = s.safeai(&[
        "allow",
        "new.allowed.test",
        "--allowlist",
        allowlist.to_str().unwrap(),
    ]);
    ensure(out.status.success(), || {
        format!("safeai allow failed: {}", text(&out.stderr))
    })?;
    let started = Instant::now();
    let mut code = String::new();
    while started.elapsed() < Duration::from_secs(5) {
        code = s.status_from_sandbox("http://new.allowed.test/");
        if code == "200" {
            break;
        }
    }
    eprintln!(
        "figure: reload to new domain answering {:.2} s",
        started.elapsed().as_secs_f64()
    );
    ensure(code == "200", || {
        format!("new.allowed.test after the reload: {code:?}")
    })?;
    let kept = std::fs::read_to_string(&allowlist).unwrap();
    ensure(kept.starts_with("# e2e allowlist\n"), || {
        format!("allow lost the comment:\n{kept}")
    })?;

    // An invalid list, written in place like an editor would: the reload is refused and
    // the previous list stays in force.
    std::fs::write(&allowlist, "domains:\n  - https://api.allowed.test/\n").unwrap();
    let out = s.safeai(&["reload"]);
    let err = text(&out.stderr) + &text(&out.stdout);
    ensure(!out.status.success(), || {
        "an invalid reload succeeded".to_owned()
    })?;
    ensure(err.contains("is a URL, not a domain"), || {
        format!("the reload did not say why:\n{err}")
    })?;
    for host in ["api.allowed.test", "new.allowed.test"] {
        let code = s.status_from_sandbox(&format!("http://{host}/"));
        ensure(code == "200", || {
            format!("{host} after the invalid reload: {code:?}")
        })?;
    }
    // Leave the list as it was, enforced, for the checks that follow.
    std::fs::write(&allowlist, original).unwrap();
    let out = s.safeai(&["reload"]);
    ensure(out.status.success(), || {
        format!("the restoring reload failed: {}", text(&out.stderr))
    })?;
    Ok(())
}

/// `safeai verify` names the sandbox's runtime and, under runsc, finds gVisor's kernel.
pub fn safeai_verify_names_the_runtime(s: &Stack) -> Result<(), String> {
    let (_, report) = s.verify_json(&[])?;
    let (result, detail) = report
        .get("runtime")
        .ok_or_else(|| format!("no runtime line in safeai verify's report: {report:?}"))?;
    let want = if s.runtime == "runsc" {
        "runsc: the sandbox's kernel is gVisor's".to_owned()
    } else {
        format!("{}: the host's kernel", s.runtime)
    };
    ensure(result == "pass" && detail.starts_with(&want), || {
        format!(
            "safeai verify's runtime line: {result} {detail:?}, expected a pass saying {want:?}"
        )
    })
}

pub fn safeai_verify_passes_every_check(s: &Stack) -> Result<(), String> {
    let out = s.safeai(&[
        "verify",
        "--allowed",
        "https://api.allowed.test/",
        "--denied",
        "evil.test",
    ]);
    let report = text(&out.stdout);
    eprint!("{report}");
    ensure(
        out.status.success() && report.contains(" 0 fail, 0 not applicable"),
        || format!("safeai verify:\n{report}{}", text(&out.stderr)),
    )
}

/// A container of the sandbox image, started with `docker run` and removed (by its name)
/// when dropped.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.0])
            .output();
    }
}

/// The sandbox image, confined as the compose model says (its `cap_drop`, `cap_add`,
/// `security_opt`, read from `docker compose config`) but for what `weaken` takes away,
/// on no network (the checks here need none); tini runs `sleep` instead of sshd.
fn weakened_sandbox(
    s: &Stack,
    tag: &str,
    weaken: impl Fn(&str, &str) -> bool,
) -> Result<Container, String> {
    let config = s.service_config("sandbox")?;
    let strings = |k: &str| -> Vec<String> {
        config[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let image = config["image"].as_str().unwrap_or_default().to_owned();
    let name = crate::stack::unique(&format!("safeai-e2e-{tag}"));
    let mut args: Vec<String> = ["run", "-d", "--rm", "--name", &name, "--network", "none"]
        .map(str::to_owned)
        .to_vec();
    for (flag, key) in [
        ("--cap-drop", "cap_drop"),
        ("--cap-add", "cap_add"),
        ("--security-opt", "security_opt"),
    ] {
        for v in strings(key) {
            if weaken(key, &v) {
                continue;
            }
            // The seccomp file is relative to the compose file, in the repository root.
            let v = match v.strip_prefix("seccomp=") {
                Some(file) => format!("seccomp={}", crate::stack::repo().join(file).display()),
                None => v,
            };
            args.extend([flag.to_owned(), v]);
        }
    }
    args.extend(
        [
            "--read-only",
            "--tmpfs",
            "/tmp:rw,noexec,nosuid,nodev",
            "--entrypoint",
            "/usr/bin/tini",
        ]
        .map(str::to_owned),
    );
    args.extend([image, "--".into(), "sleep".into(), "300".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = s.run("docker", &args);
    ensure(out.status.success(), || {
        format!("docker {}: {}", args.join(" "), text(&out.stderr))
    })?;
    Ok(Container(name))
}

/// `safeai verify` tells the stack's confinement from weaker ones: on the sandbox image
/// started with the model's options both `no-capabilities` and `seccomp` pass (the
/// control); without `cap_drop: ALL`, `no-capabilities` fails; under Docker's default
/// seccomp profile, `seccomp` fails.
pub fn safeai_verify_fails_without_cap_drop_all_or_the_seccomp_profile(
    s: &Stack,
) -> Result<(), String> {
    let proxy = text(&s.compose(&["ps", "-q", "proxy"]).stdout)
        .trim()
        .to_owned();
    /// What a case leaves out (a compose key and its value), and the lines it expects.
    type Case = (
        &'static str,
        fn(&str, &str) -> bool,
        &'static [(&'static str, &'static str, &'static str)],
    );
    let cases: [Case; 3] = [
        (
            "model",
            |_, _| false,
            &[("no-capabilities", "pass", ""), ("seccomp", "pass", "")],
        ),
        (
            "no-cap-drop",
            |k, _| k == "cap_drop",
            &[
                ("no-capabilities", "fail", "cap_drop: ALL"),
                ("seccomp", "pass", ""),
            ],
        ),
        (
            "default-seccomp",
            |k, v| k == "security_opt" && v.starts_with("seccomp="),
            &[
                ("no-capabilities", "pass", ""),
                ("seccomp", "fail", "the kernel's answer"),
            ],
        ),
    ];
    for (tag, weaken, want) in cases {
        let container = weakened_sandbox(s, tag, weaken)?;
        let (status, lines) = s.verify_containers(&container.0, &proxy)?;
        for (check, result, detail) in want {
            let got = lines.get(*check);
            ensure(
                got.is_some_and(|(r, d)| r == result && d.contains(detail)),
                || {
                    format!(
                        "{tag}: {check} should be {result} (with {detail:?}), got {got:?}; verify exit {status:?}"
                    )
                },
            )?;
        }
        drop(container);
    }
    Ok(())
}

/// The proxy refuses, on reload, an allowlist larger than the policy's bound (64 MiB) and
/// keeps enforcing the previous one; a file of exactly the bound is accepted.
pub fn reload_refuses_an_allowlist_over_the_64_mib_bound(s: &Stack) -> Result<(), String> {
    let limit = usize::try_from(safeai_policy::MAX_FILE_BYTES).unwrap();
    let allowlist = s.allowlist();
    let original = std::fs::read_to_string(&allowlist).unwrap();
    struct Restore<'a>(&'a Stack, String);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            std::fs::write(self.0.allowlist(), &self.1).unwrap();
            self.0.safeai(&["reload"]);
        }
    }
    let restore = Restore(s, original.clone());
    // `list`, padded with a comment line to `size` bytes.
    let padded = |list: &str, size: usize| {
        let mut text = format!("{list}#");
        text.push_str(&"x".repeat(size - text.len() - 1));
        text.push('\n');
        assert_eq!(text.len(), size);
        text
    };
    // At the bound, with new.allowed.test (a name the suite's upstream answers) added.
    let with_new = crate::stack::with_domain(&original, "new.allowed.test");
    std::fs::write(&allowlist, padded(&with_new, limit)).unwrap();
    let started = Instant::now();
    let out = s.safeai(&["reload"]);
    ensure(out.status.success(), || {
        format!(
            "a {limit}-byte allowlist was not reloaded: {}",
            text(&out.stderr)
        )
    })?;
    eprintln!(
        "figure: reload of a {limit}-byte allowlist {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let code = s.status_from_sandbox("http://new.allowed.test/");
    ensure(code == "200", || {
        format!("new.allowed.test after the reload at the bound: {code:?}")
    })?;

    // One byte over, without new.allowed.test: refused, so new.allowed.test stays allowed.
    std::fs::write(&allowlist, padded(&original, limit + 1)).unwrap();
    let out = s.safeai(&["reload"]);
    let err = text(&out.stderr);
    ensure(
        !out.status.success() && err.contains("the limit is"),
        || {
            format!(
                "a {}-byte allowlist: reload exit {:?}: {err}",
                limit + 1,
                out.status.code()
            )
        },
    )?;
    let code = s.status_from_sandbox("http://new.allowed.test/");
    ensure(code == "200", || {
        format!(
            "new.allowed.test after the refused reload: {code:?} (the over-bound list was applied?)"
        )
    })?;
    drop(restore);
    let code = s.status_from_sandbox("http://new.allowed.test/");
    ensure(code == "403", || {
        format!("new.allowed.test after restoring the list: {code:?}")
    })
}

pub const CHECKS: &[(&str, crate::stack::Check)] = crate::checks![
    both_services_are_healthy,
    the_sandbox_runs_under_its_runtime,
    allowlisted_upstream_answers_through_the_proxy,
    non_allowlisted_name_gets_403_and_is_logged,
    key_login_through_the_host_port_lands_in_workspace,
    root_filesystem_is_read_only,
    reload_adds_a_domain_and_an_invalid_reload_changes_nothing,
    reload_refuses_an_allowlist_over_the_64_mib_bound,
    safeai_verify_passes_every_check,
    safeai_verify_names_the_runtime,
    safeai_verify_fails_without_cap_drop_all_or_the_seccomp_profile,
];
