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

/// gVisor's kernel reports this build string in `/proc/version`; the host's never does.
const GVISOR_VERSION: &str = "#1 SMP Sun Jan 10 15:06:54 PST 2016";

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
    let gvisor = version.contains(GVISOR_VERSION);
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
    let logs = text(&s.compose(&["logs", "--no-color", "proxy"]).stdout);
    ensure(
        logs.lines()
            .any(|l| l.contains("host=evil.test") && l.contains("TCP_DENIED")),
        || format!("no TCP_DENIED line for evil.test in the proxy's log:\n{logs}"),
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

pub const CHECKS: &[(&str, crate::stack::Check)] = crate::checks![
    both_services_are_healthy,
    the_sandbox_runs_under_its_runtime,
    allowlisted_upstream_answers_through_the_proxy,
    non_allowlisted_name_gets_403_and_is_logged,
    key_login_through_the_host_port_lands_in_workspace,
    root_filesystem_is_read_only,
    reload_adds_a_domain_and_an_invalid_reload_changes_nothing,
    safeai_verify_passes_every_check,
];
