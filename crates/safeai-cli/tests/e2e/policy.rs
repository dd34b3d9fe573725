//! The policy file the sandbox reads (/etc/safe-ai/policy.txt): there, read-only, the
//! same text `safeai render policy` gives for the allowlist, and rewritten by a reload.

use std::time::{Duration, Instant};

use crate::stack::{Restore, Stack, ensure, text};

const POLICY: &str = "/etc/safe-ai/policy.txt";

/// The policy file as the sandbox's user reads it; an error when it cannot be read.
fn policy_in_sandbox(s: &Stack) -> Result<String, String> {
    let out = s.sandbox(&format!("cat {POLICY}"));
    ensure(out.status.success() && !out.stdout.is_empty(), || {
        format!(
            "the sandbox cannot read {POLICY}: status {:?}, {}",
            out.status.code(),
            text(&out.stderr).trim()
        )
    })?;
    Ok(text(&out.stdout))
}

/// What the host renders for the stack's allowlist and settings.
fn policy_on_host(s: &Stack) -> Result<String, String> {
    let allowlist = s.allowlist();
    let out = s.safeai(&[
        "render",
        "policy",
        "--allowlist",
        allowlist.to_str().unwrap(),
    ]);
    ensure(out.status.success() && !out.stdout.is_empty(), || {
        format!("safeai render policy: {}", text(&out.stderr).trim())
    })?;
    Ok(text(&out.stdout))
}

/// Polls the sandbox's file (bounded: 10 s) until it equals `want`.
fn wait_for_policy(s: &Stack, want: &str, what: &str) -> Result<(), String> {
    let started = Instant::now();
    let mut seen = String::new();
    while started.elapsed() < Duration::from_secs(10) {
        seen = policy_in_sandbox(s)?;
        if seen == want {
            eprintln!(
                "figure: policy file {what} in the sandbox after {:.2} s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "the sandbox's {POLICY} is not what the host renders {what}:\n--- sandbox\n{seen}\n--- host\n{want}"
    ))
}

pub fn the_policy_file_is_read_only_in_the_sandbox_and_follows_reloads(
    s: &Stack,
) -> Result<(), String> {
    let original = std::fs::read_to_string(s.allowlist())
        .map_err(|e| format!("reading the allowlist: {e}"))?;
    let restore = Restore::new(|| {
        std::fs::write(s.allowlist(), &original)
            .map_err(|e| format!("restoring the allowlist: {e}"))?;
        let out = s.safeai(&["reload"]);
        ensure(out.status.success(), || {
            format!("safeai reload: {}", text(&out.stderr).trim())
        })?;
        // The file follows the restore too, back to the suite's list.
        wait_for_policy(s, &policy_on_host(s)?, "after the restore")
    });
    let result = policy_checks(s);
    restore.finish(result)
}

fn policy_checks(s: &Stack) -> Result<(), String> {
    // There, and the same text as the host renders: every domain with its origin.
    let inside = policy_in_sandbox(s)?;
    let host = policy_on_host(s)?;
    ensure(inside == host, || {
        format!(
            "{POLICY} differs from `safeai render policy`:\n--- sandbox\n{inside}\n--- host\n{host}"
        )
    })?;
    // A domain's line: its name, how, and where it was listed.
    let row = |domain: &str, how: &str| {
        inside.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 3 && f[0] == domain && f[1] == how && f[2].starts_with("allowlist.yaml:")
        })
    };
    ensure(
        row("api.allowed.test", "tls") && row("opaque.allowed.test", "opaque"),
        || format!("{POLICY} does not list the allowlist's entries with how and where:\n{inside}"),
    )?;
    for needle in ["X-Safe-AI-Denied", "safeai allow HOST", "http://"] {
        ensure(inside.contains(needle), || {
            format!("{POLICY} lacks {needle:?}:\n{inside}")
        })?;
    }
    ensure(!inside.contains("-----BEGIN"), || {
        format!("{POLICY} holds key or certificate material:\n{inside}")
    })?;

    // Not writable: not by dev, not by root, through the link or in the directory; the
    // mount itself is read-only.
    let probe = "f=/etc/safe-ai/policy/policy.txt; \
                 printf 'mode=%s\\n' \"$(stat -c '%a %U' \"$f\")\"; \
                 printf 'mount=%s\\n' \"$(awk '$5 == \"/etc/safe-ai/policy\" {print $6}' /proc/self/mountinfo)\"; \
                 if echo x >>/etc/safe-ai/policy.txt; then echo append=yes; else echo append=no; fi; \
                 if touch /etc/safe-ai/policy/new; then echo create=yes; else echo create=no; fi; \
                 if rm -f \"$f\"; then echo remove=yes; else echo remove=no; fi";
    for user in ["dev", "root"] {
        let out = s.exec("sandbox", user, probe);
        let said = text(&out.stdout);
        let kv = crate::stack::key_values(&said);
        let get = |k: &str| kv.get(k).map(String::as_str).unwrap_or("(no answer)");
        ensure(get("mode") == "644 root", || {
            format!(
                "{user}: {POLICY} should be root's, mode 644: {said:?} {}",
                text(&out.stderr)
            )
        })?;
        ensure(get("mount").split(',').next() == Some("ro"), || {
            format!("{user}: /etc/safe-ai/policy is not mounted read-only: {said:?}")
        })?;
        for op in ["append", "create", "remove"] {
            ensure(get(op) == "no", || {
                format!(
                    "{user} could {op} in the policy volume ({}): {said:?} {}",
                    get(op),
                    text(&out.stderr)
                )
            })?;
        }
    }
    ensure(policy_in_sandbox(s)? == host, || {
        format!("{POLICY} changed under the write attempts")
    })?;

    // A reload with one more domain rewrites it; the restore (above) takes it back.
    let allowlist = s.allowlist();
    let out = s.safeai(&[
        "allow",
        "policy-new.allowed.test",
        "--allowlist",
        allowlist.to_str().unwrap(),
    ]);
    ensure(out.status.success(), || {
        format!("safeai allow: {}", text(&out.stderr).trim())
    })?;
    let after = policy_on_host(s)?;
    ensure(
        after != host && after.contains("\n  policy-new.allowed.test "),
        || format!("the host's render does not list the new domain:\n{after}"),
    )?;
    wait_for_policy(s, &after, "after the reload")
}

pub const CHECKS: &[(&str, crate::stack::Check)] =
    crate::checks![the_policy_file_is_read_only_in_the_sandbox_and_follows_reloads];
