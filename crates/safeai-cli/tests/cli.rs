//! The `safeai` binary as a user runs it: help texts, exit codes, and the committed
//! artifacts kept in sync with the generator.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `safeai ARGS` in `dir`, with none of the SAFE_AI_* variables of the caller.
fn safeai(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_safeai"));
    cmd.current_dir(dir).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("SAFE_AI_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("safeai-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_help_text() {
    for args in [
        &["--help"][..],
        &["check", "--help"],
        &["generate", "--help"],
        &["render", "--help"],
        &["reload", "--help"],
        &["allow", "--help"],
        &["presets", "--help"],
        &["verify", "--help"],
        &["logs", "--help"],
        &["logs", "summary", "--help"],
        &["learn", "--help"],
        &["ca", "--help"],
        &["ca", "init", "--help"],
        &["ca", "rotate", "--help"],
        &["ca", "show", "--help"],
    ] {
        let out = safeai(&repo(), args, &[]);
        assert!(out.status.success());
        insta::assert_snapshot!(format!("help-{}", args.join("-")), text(&out.stdout));
    }
}

#[test]
fn the_committed_artifacts_are_current() {
    let out = safeai(&repo(), &["generate", "--check"], &[]);
    assert!(
        out.status.success(),
        "the committed artifacts drifted from the generator; run `safeai generate`:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn generate_check_prints_a_diff_and_fails_on_drift() {
    let dir = scratch("drift");
    std::fs::write(dir.join("allowlist.yaml"), "domains: [github.com]\n").unwrap();
    let out = safeai(&dir, &["generate", "--out", "out"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        safeai(&dir, &["generate", "--out", "out", "--check"], &[])
            .status
            .success()
    );

    let squid = dir.join("out/squid.conf");
    let edited = std::fs::read_to_string(&squid)
        .unwrap()
        .replace(".github.com", ".github.com .evil.test");
    std::fs::write(&squid, edited).unwrap();
    std::fs::remove_file(dir.join("out/seccomp.json")).unwrap();
    let out = safeai(&dir, &["generate", "--out", "out", "--check"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let diff = text(&out.stdout);
    assert!(
        diff.contains("-acl allowlist dstdomain .github.com .evil.test"),
        "{diff}"
    );
    assert!(
        diff.contains("+acl allowlist dstdomain .github.com"),
        "{diff}"
    );
    assert!(text(&out.stderr).contains("seccomp.json is missing"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_exits_1_with_every_error_on_stderr_and_changes_nothing() {
    let dir = scratch("invalid");
    std::fs::write(
        dir.join("allowlist.yaml"),
        "domains:\n  - https://github.com/x\n  - localhost\n",
    )
    .unwrap();
    let out = safeai(
        &dir,
        &["check"],
        &[("SAFE_AI_DEFAULT_DOMAINS", "pypi.org,10.0.0.1")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("error: allowlist.yaml:2:5: `https://github.com/x` is a URL"),
        "{err}"
    );
    assert!(
        err.contains("error: allowlist.yaml:3:5: `localhost` is a single label"),
        "{err}"
    );
    assert!(
        err.contains("error: SAFE_AI_DEFAULT_DOMAINS[1]: `10.0.0.1` is an IP address"),
        "{err}"
    );
    assert!(text(&out.stdout).is_empty());

    // generate refuses too, and writes nothing.
    let out = safeai(&dir, &["generate", "--out", "out"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.join("out").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_lists_the_merged_allowlist_with_provenance() {
    let dir = scratch("valid");
    std::fs::write(
        dir.join("list.yaml"),
        "domains:\n  - github.com\n  - api.github.com\n",
    )
    .unwrap();
    let out = safeai(
        &dir,
        &["check", "--allowlist", "list.yaml"],
        &[("SAFE_AI_DEFAULT_DOMAINS", " pypi.org ,")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "github.com  list.yaml:2:5               spliced (TLS end to end, SNI checked)\n\
         pypi.org    SAFE_AI_DEFAULT_DOMAINS[0]  spliced (TLS end to end, SNI checked)\n\
         2 domains allowed\n"
    );
    assert!(
        text(&out.stderr).contains("warning: list.yaml:3:5: `api.github.com` is already covered")
    );

    let out = safeai(
        &dir,
        &["check", "--allowlist", "list.yaml", "--format", "json"],
        &[],
    );
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["domains"][0]["domain"], "github.com");
    assert_eq!(doc["domains"][0]["origin"], "list.yaml:2:5");
    assert_eq!(doc["domains"][0]["tunnel"], "tls");
    assert_eq!(doc["diagnostics"][0]["code"], "covered");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_names_the_preset_of_each_entry_it_brought_in() {
    let dir = scratch("presets");
    std::fs::write(
        dir.join("allowlist.yaml"),
        "presets: [go]\ndomains:\n  - example.com\n  - sum.golang.org\n",
    )
    .unwrap();
    let out = safeai(&dir, &["check"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "example.com       allowlist.yaml:3:5                spliced (TLS end to end, SNI checked)\n\
         proxy.golang.org  preset go at allowlist.yaml:1:11  spliced (TLS end to end, SNI checked)\n\
         sum.golang.org    preset go at allowlist.yaml:1:11  spliced (TLS end to end, SNI checked)\n\
         3 domains allowed\n"
    );
    assert_eq!(
        text(&out.stderr),
        "warning: allowlist.yaml:4:5: `sum.golang.org` is listed twice; first at preset go at \
         allowlist.yaml:1:11\n  = hint: remove one of the two\n"
    );
    let out = safeai(&dir, &["check", "--format", "json"], &[]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["domains"][1]["origin"],
        "preset go at allowlist.yaml:1:11"
    );

    std::fs::write(dir.join("allowlist.yaml"), "presets: [golang]\n").unwrap();
    let out = safeai(&dir, &["check"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(
            "error: allowlist.yaml:1:11: unknown preset `golang`\n  = hint: the presets are"
        ),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn render_policy_prints_what_the_sandbox_reads() {
    let dir = scratch("policy");
    std::fs::write(dir.join("allowlist.yaml"), "presets: [go]\n").unwrap();
    let out = safeai(
        &dir,
        &["render", "policy"],
        &[("SAFE_AI_PROXY_IP", "10.1.2.3")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let policy = text(&out.stdout);
    assert!(
        policy.starts_with("safe-ai: what this sandbox may reach\n"),
        "{policy}"
    );
    assert!(
        policy.contains("the proxy at http://10.1.2.3:3128\n"),
        "{policy}"
    );
    assert!(
        policy.contains("\n  proxy.golang.org  tls     preset go (allowlist.yaml:1:11)\n"),
        "{policy}"
    );
    // `generate` writes it only when asked, like the error pages.
    let out = safeai(&dir, &["generate", "--out", "all"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!dir.join("all/policy.txt").exists());
    let out = safeai(
        &dir,
        &["generate", "--only", "policy", "--out", "one"],
        &[("SAFE_AI_PROXY_IP", "10.1.2.3")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.join("one/policy.txt")).unwrap(),
        policy
    );
}

#[test]
fn presets_prints_every_preset_or_one() {
    let out = safeai(&repo(), &["presets"], &[]);
    assert!(out.status.success());
    insta::assert_snapshot!("presets", text(&out.stdout));
    let out = safeai(&repo(), &["presets", "pypi"], &[]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).starts_with("pypi: PyPI, the Python package index (pip, uv, poetry)\n  files.pythonhosted.org\n  pypi.org\n"),
        "{}",
        text(&out.stdout)
    );
    let out = safeai(&repo(), &["presets", "pipy"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).is_empty());
    assert!(
        text(&out.stderr)
            .starts_with("error: unknown preset `pipy`\n  = hint: did you mean `pypi`?"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_marks_opaque_entries() {
    let dir = scratch("opaque");
    std::fs::write(
        dir.join("allowlist.yaml"),
        "domains:\n  - github.com\n  - {domain: ssh.github.com, tunnel: opaque}\n",
    )
    .unwrap();
    let out = safeai(&dir, &["check"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "github.com      allowlist.yaml:2:5  spliced (TLS end to end, SNI checked)\n\
         ssh.github.com  allowlist.yaml:3:5  opaque tunnel (any bytes, unread)\n\
         2 domains allowed\n"
    );
    let out = safeai(&dir, &["check", "--format", "json"], &[]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["domains"][1]["domain"], "ssh.github.com");
    assert_eq!(doc["domains"][1]["tunnel"], "opaque");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_prints_rules_and_credentials_with_secrets_by_name_only() {
    let dir = scratch("rules");
    std::fs::write(
        dir.join("allowlist.yaml"),
        "domains: [github.com]\nrules:\n  - {domain: api.github.com, allow: [GET /repos/acme/**]}\n\
         credentials:\n  - {domain: api.anthropic.com, header: x-api-key, value: '${ANTHROPIC_API_KEY}', sandbox_env: ANTHROPIC_API_KEY}\n",
    )
    .unwrap();
    // A secrets directory the check must never read.
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    std::fs::write(dir.join("secrets/ANTHROPIC_API_KEY"), "sk-must-not-show").unwrap();
    let out = safeai(&dir, &["check"], &[("SAFE_AI_SECRETS_DIR", "secrets")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "api.anthropic.com  allowlist.yaml:5:5   decrypted: every request passes, with the credential\n\
         \x20                    credential x-api-key: ${ANTHROPIC_API_KEY} (secret ANTHROPIC_API_KEY, kept by the proxy); \
         the sandbox's ANTHROPIC_API_KEY holds a placeholder\n\
         api.github.com     allowlist.yaml:3:5   decrypted: only these requests pass\n\
         \x20                    allow GET /repos/acme/**\n\
         github.com         allowlist.yaml:1:11  spliced (TLS end to end, SNI checked)\n\
         2 domains allowed\n"
    );
    let out = safeai(&dir, &["check", "--format", "json"], &[]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let policy = &doc["policy"];
    assert_eq!(policy[0]["handling"], "decrypt");
    assert_eq!(
        policy[0]["credentials"][0]["value"]["secret"],
        "ANTHROPIC_API_KEY"
    );
    assert_eq!(policy[1]["rules"]["allow"][0]["path"], "/repos/acme/**");
    assert_eq!(policy[2]["handling"], "splice");
    assert!(!text(&out.stdout).contains("sk-must-not-show"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_explicit_file_is_an_error_a_missing_default_a_warning() {
    let dir = scratch("missing");
    let out = safeai(&dir, &["check"], &[("SAFE_AI_ALLOWLIST", "nope.yaml")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("error: nope.yaml: allowlist file not found"));
    let out = safeai(&dir, &["check"], &[]);
    assert!(out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("warning: allowlist.yaml: no allowlist file at the default path"),
        "{err}"
    );
    assert!(err.contains("every request will be denied"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn render_prints_one_artifact_and_bad_proxy_settings_are_errors() {
    let out = safeai(
        &repo(),
        &["render", "dnsmasq-servers"],
        &[("SAFE_AI_DNS_UPSTREAM", "10.1.2.3")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("server=/github.com/10.1.2.3\n"));
    let out = safeai(
        &repo(),
        &["render", "squid"],
        &[("SAFE_AI_PRIVATE_EXCEPTIONS", "10.0.0.1/8")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("SAFE_AI_PRIVATE_EXCEPTIONS[0]"),
        "{}",
        text(&out.stderr)
    );
    // Squid cannot listen on a bare IPv6 address: refused before anything is rendered.
    let out = safeai(
        &repo(),
        &["render", "squid"],
        &[("SAFE_AI_PROXY_IP", "fd00::2")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("error: SAFE_AI_PROXY_IP=\"fd00::2\" is not valid: expected an IPv4 address"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).is_empty());
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(
        safeai(&repo(), &["render", "nginx"], &[]).status.code(),
        Some(2)
    );
}

#[test]
fn ca_init_creates_then_keeps_and_show_prints_it() {
    let dir = scratch("ca");
    let init = ["ca", "init", "--dir", "ca", "--export", "public"];
    let first = safeai(&dir, &init, &[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let created = text(&first.stderr);
    let summary = created
        .strip_prefix("safe-ai: stack CA created: CN=safe-ai stack CA ")
        .unwrap_or_else(|| panic!("{created}"));
    assert!(summary.contains(", O=safe-ai, SHA-256 "), "{created}");
    assert!(summary.contains(", valid until "), "{created}");
    assert_eq!(created.lines().count(), 1, "{created}");
    assert!(text(&first.stdout).is_empty());

    let second = safeai(&dir, &init, &[]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(
        text(&second.stderr),
        created.replace("stack CA created:", "stack CA kept:"),
        "the same CA, same fingerprint"
    );

    let cert = std::fs::read_to_string(dir.join("ca/ca.crt")).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("public/ca.crt")).unwrap(),
        cert
    );
    let exported: Vec<_> = std::fs::read_dir(dir.join("public")).unwrap().collect();
    assert_eq!(exported.len(), 1, "the certificate only, never the key");

    let show = safeai(&dir, &["ca", "show", "--dir", "ca"], &[]);
    assert!(show.status.success(), "{}", text(&show.stderr));
    let shown = text(&show.stdout);
    assert!(
        shown.starts_with("subject      CN=safe-ai stack CA "),
        "{shown}"
    );
    let fingerprint = summary
        .split(", SHA-256 ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap();
    assert!(
        shown.contains(&format!("SHA-256      {fingerprint}\n")),
        "{shown}"
    );
    assert!(shown.ends_with(&format!("\n\n{cert}")), "{shown}");

    let rotate = safeai(
        &dir,
        &["ca", "rotate", "--dir", "ca", "--export", "public"],
        &[],
    );
    assert!(rotate.status.success(), "{}", text(&rotate.stderr));
    assert!(text(&rotate.stderr).starts_with("safe-ai: stack CA rotated: "));
    assert!(!text(&rotate.stderr).contains(fingerprint));
    assert_eq!(
        std::fs::read_to_string(dir.join("ca/ca.previous.crt")).unwrap(),
        cert
    );
    assert_ne!(
        std::fs::read_to_string(dir.join("public/ca.crt")).unwrap(),
        cert
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ca_init_refuses_a_corrupt_key_and_changes_nothing() {
    let dir = scratch("ca-corrupt");
    assert!(
        safeai(&dir, &["ca", "init", "--dir", "ca"], &[])
            .status
            .success()
    );
    // A corrupt key: a PEM header with no key under it (the header is assembled so that
    // no key-shaped text sits in the repository).
    let corrupt = format!("-----BEGIN {}-----\ngarbage\n", "PRIVATE KEY");
    std::fs::write(dir.join("ca/ca.key"), &corrupt).unwrap();
    let cert = std::fs::read(dir.join("ca/ca.crt")).unwrap();
    let out = safeai(
        &dir,
        &["ca", "init", "--dir", "ca", "--export", "public"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: ca/ca.key: the private key does not parse"),
        "{err}"
    );
    assert!(err.contains("safeai ca rotate"), "{err}");
    assert_eq!(std::fs::read(dir.join("ca/ca.crt")).unwrap(), cert);
    assert_eq!(
        std::fs::read_to_string(dir.join("ca/ca.key")).unwrap(),
        corrupt
    );
    assert!(!dir.join("public").exists(), "nothing exported");
    assert_eq!(
        safeai(&dir, &["ca", "show", "--dir", "ca"], &[])
            .status
            .code(),
        Some(1)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ca_export_and_owner_need_a_directory() {
    for args in [
        &["ca", "rotate", "--export", "x"][..],
        &["ca", "rotate", "--owner", "13:13"],
        &["ca", "init", "--dir", "x", "--owner", "proxy"],
    ] {
        assert_eq!(
            safeai(&repo(), args, &[]).status.code(),
            Some(2),
            "{args:?}"
        );
    }
}

/// Events as the proxy's tap writes them: a `pip install` and an `npm install` denied,
/// an IP literal and a metadata name refused, an allowed request, a hostile SNI.
const EVENTS: &str = r#"{"v":1,"time":"2026-12-02T15:24:28.104Z","kind":"connect","client":"172.30.49.3","host":"pypi.org","port":443,"method":"CONNECT","sni":"pypi.org","decision":"allowed","entry":"pypi.org","origin":"allowlist.yaml:2:5","status":200,"result":"TCP_TUNNEL","tls":"splice","bytes":2188,"ms":57}
{"v":1,"time":"2026-12-02T15:24:29.216Z","kind":"connect","client":"172.30.49.3","host":"files.pythonhosted.org","port":443,"method":"CONNECT","sni":"files.pythonhosted.org","decision":"denied","reason":"not-allowlisted","status":200,"result":"TCP_DENIED","tls":"bump","bytes":0,"ms":19}
{"v":1,"time":"2026-12-02T15:24:29.217Z","kind":"https","client":"172.30.49.3","host":"files.pythonhosted.org","port":443,"method":"GET","path":"/packages/x.whl","sni":"files.pythonhosted.org","decision":"denied","reason":"not-allowlisted","status":403,"result":"NONE_NONE","bytes":610,"ms":0}
{"v":1,"time":"2026-12-02T15:24:30.000Z","kind":"dns","client":"172.30.49.3","host":"registry.npmjs.org","query":"A","decision":"denied","reason":"not-allowlisted","result":"sinkholed"}
{"v":1,"time":"2026-12-02T15:24:31.256Z","kind":"connect","client":"172.30.49.3","host":"registry.npmjs.org","port":443,"method":"CONNECT","sni":"registry.npmjs.org","decision":"denied","reason":"not-allowlisted","status":200,"result":"TCP_DENIED","tls":"bump","bytes":0,"ms":12}
{"v":1,"time":"2026-12-02T15:24:32.290Z","kind":"connect","client":"172.30.49.3","host":"169.254.169.254","port":443,"method":"CONNECT","decision":"denied","reason":"ip-address","status":200,"result":"TCP_DENIED","tls":"bump","bytes":0,"ms":6}
{"v":1,"time":"2026-12-02T15:24:33.348Z","kind":"connect","client":"172.30.49.3","host":"pypi.org","port":443,"method":"CONNECT","sni":"a b\u001b[31m","decision":"denied","reason":"sni-mismatch","entry":"pypi.org","origin":"allowlist.yaml:2:5","status":200,"result":"NONE_NONE","tls":"bump","bytes":0,"ms":13}
not an event
"#;

#[test]
fn logs_summary_and_learn_read_a_file_of_events() {
    let dir = scratch("logs");
    let events = dir.join("events.jsonl");
    std::fs::write(&events, EVENTS).unwrap();
    std::fs::write(
        dir.join("allowlist.yaml"),
        "# mine\ndomains:\n  - pypi.org # the index\n",
    )
    .unwrap();
    let ev = events.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--events", ev]);
        let out = safeai(&dir, &all, &[]);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };
    let (out, err) = run(&["logs"]);
    assert!(err.contains("1 line(s) are not events"), "{err}");
    insta::assert_snapshot!("logs", out);
    insta::assert_snapshot!(
        "logs-denied-since",
        run(&["logs", "--denied", "--since", "2026-12-02T15:24:30Z"]).0
    );
    // JSON is the events themselves, every line (the page of the denied CONNECT too).
    let json = run(&["logs", "--format", "json"]).0;
    assert_eq!(json.lines().count(), 7);
    assert!(
        json.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
    insta::assert_snapshot!("logs-summary", run(&["logs", "summary"]).0);
    insta::assert_snapshot!("learn", run(&["learn"]).0);
    assert_eq!(
        std::fs::read_to_string(dir.join("allowlist.yaml")).unwrap(),
        "# mine\ndomains:\n  - pypi.org # the index\n",
        "learn without --apply changed the file"
    );
    let (_, err) = run(&["learn", "--apply", "--no-reload"]);
    assert!(err.contains("added files.pythonhosted.org"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("allowlist.yaml")).unwrap(),
        "# mine\ndomains:\n  - pypi.org # the index\n  - registry.npmjs.org\n  - files.pythonhosted.org\n"
    );
    // Since the last learn: nothing new to propose.
    let (out, err) = run(&["learn"]);
    assert!(err.contains("denials since 2026-12-02 15:24:33"), "{err}");
    assert!(out.starts_with("nothing to propose"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_tap_turns_squid_and_dnsmasq_lines_into_attributed_events() {
    use std::io::Write;
    let dir = scratch("tap");
    for pipe in ["access.pipe", "dns.pipe"] {
        let ok = Command::new("mkfifo")
            .arg(dir.join(pipe))
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
    std::fs::write(
        dir.join("allowlist.yaml"),
        "domains:\n  - api.allowed.test\n",
    )
    .unwrap();
    let file = dir.join("log/events.jsonl");
    let mut tap = Command::new(env!("CARGO_BIN_EXE_safeai"))
        .current_dir(&dir)
        .env_remove("SAFE_AI_ALLOWLIST")
        .env_remove("SAFE_AI_DEFAULT_DOMAINS")
        .args([
            "proxy",
            "tap",
            "--squid",
            "access.pipe",
            "--dnsmasq",
            "dns.pipe",
        ])
        .arg("--file")
        .arg(&file)
        .args(["--allowlist", "allowlist.yaml"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let open = |p: &str| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join(p))
            .unwrap()
    };
    let (mut squid, mut dns) = (open("access.pipe"), open("dns.pipe"));
    squid
        .write_all(
            b"ts=1796225068.161 client=172.30.49.3 method=CONNECT scheme=http host=api.allowed.test port=443 path=/ status=200 action=TCP_TUNNEL bytes=2188 ms=57 sni=api.allowed.test tls=splice reason=-\n\
              ts=1796225068.494 client=172.30.49.3 method=GET scheme=- host=- port=- path=- status=400 action=NONE_NONE bytes=308 ms=0 sni=- tls=- reason=-\n\
              2026/12/02 15:20:38| not a line of ours\n",
        )
        .unwrap();
    dns.write_all(
        b"dnsmasq[69]: started, version 2.90 cachesize 1000\n\
          dnsmasq[69]: 1 172.30.49.3/54402 query[A] evil.test from 172.30.49.3\n\
          dnsmasq[69]: 1 172.30.49.3/54402 config evil.test is 0.0.0.0\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let mut got = String::new();
    while started.elapsed() < std::time::Duration::from_secs(10) {
        got = std::fs::read_to_string(&file).unwrap_or_default();
        if got.lines().count() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    tap.kill().unwrap();
    let out = tap.wait_with_output().unwrap();
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 2, "{got}\n{}", text(&out.stderr));
    let tunnel: serde_json::Value =
        serde_json::from_str(lines.iter().find(|l| l.contains("\"connect\"")).unwrap()).unwrap();
    assert_eq!(tunnel["entry"], "api.allowed.test");
    assert_eq!(tunnel["origin"], "allowlist.yaml:2:5");
    assert_eq!(tunnel["bytes"], 2188);
    let dns: serde_json::Value =
        serde_json::from_str(lines.iter().find(|l| l.contains("\"dns\"")).unwrap()).unwrap();
    assert_eq!(
        (&dns["host"], &dns["result"]),
        (&"evil.test".into(), &"sinkholed".into())
    );
    // Both on stdout too; the lines that are no events on stderr, never in the file.
    assert_eq!(
        text(&out.stdout).lines().count(),
        2,
        "{}",
        text(&out.stdout)
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("not a line of Squid's safeai format")
            && err.contains("started, version 2.90"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
