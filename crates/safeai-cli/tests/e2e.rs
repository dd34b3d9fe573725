//! The end-to-end suite: builds the images from the real Dockerfiles, brings the stack up
//! with test-only stand-in upstreams (`tests/e2e/compose.e2e.yaml`), runs every check as a
//! separately named test, and tears everything down (containers, networks, volumes), also
//! on failure. Traffic goes only to the project's own containers.
//!
//! Needs Docker with Compose v2 (`.ci/provision.sh`). In CI (`CI=true`) a missing Docker
//! fails the suite; elsewhere the suite says it is skipped.

use std::net::TcpListener;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const PROJECT: &str = "safeai-e2e";
const SUBNET: &str = "172.30.43.0/24";
const PROXY_IP: &str = "172.30.43.2";
const EXTERNAL_SUBNET: &str = "172.30.99.0/24";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The running test stack and its scratch directory (allowlist, SSH key).
struct Stack {
    scratch: PathBuf,
    ssh_port: u16,
}

impl Stack {
    fn env(&self) -> Vec<(&'static str, String)> {
        let root = repo();
        vec![
            ("COMPOSE_PROJECT_NAME", PROJECT.into()),
            (
                "COMPOSE_FILE",
                format!(
                    "{}:{}",
                    root.join("docker-compose.yaml").display(),
                    root.join("tests/e2e/compose.e2e.yaml").display()
                ),
            ),
            ("SAFE_AI_SUBNET", SUBNET.into()),
            ("SAFE_AI_PROXY_IP", PROXY_IP.into()),
            ("SAFE_AI_SSH_PORT", self.ssh_port.to_string()),
            (
                "SAFE_AI_SSH_KEY",
                self.scratch.join("id.pub").display().to_string(),
            ),
            ("SAFE_AI_ALLOWLIST", self.allowlist().display().to_string()),
            ("SAFE_AI_PRIVATE_EXCEPTIONS", EXTERNAL_SUBNET.into()),
            ("SAFE_AI_DEFAULT_DOMAINS", String::new()),
            // The default (4) is more than a 2-core CI machine has: Docker refuses it.
            ("SAFE_AI_SANDBOX_CPUS", "1.5".into()),
        ]
    }

    fn allowlist(&self) -> PathBuf {
        self.scratch.join("allowlist.yaml")
    }

    /// A command in the repository with the stack's environment.
    fn cmd(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .current_dir(repo())
            .envs(self.env())
            .stdin(Stdio::null());
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        self.cmd(program, args).output().unwrap()
    }

    fn compose(&self, args: &[&str]) -> Output {
        let mut all = vec!["compose"];
        all.extend_from_slice(args);
        self.run("docker", &all)
    }

    /// `bash -lc script` in a service as `user`.
    fn exec(&self, service: &str, user: &str, script: &str) -> Output {
        self.compose(&["exec", "-T", "-u", user, service, "bash", "-lc", script])
    }

    fn sandbox(&self, script: &str) -> Output {
        self.exec("sandbox", "dev", script)
    }

    /// The HTTP status the sandbox gets for `url` through its proxy settings.
    fn status_from_sandbox(&self, url: &str) -> String {
        let out = self.sandbox(&format!(
            "curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 {url}"
        ));
        text(&out.stdout)
    }

    fn safeai(&self, args: &[&str]) -> Output {
        self.run(env!("CARGO_BIN_EXE_safeai"), args)
    }

    fn health(&self, service: &str) -> String {
        let id = text(&self.compose(&["ps", "-q", service]).stdout)
            .trim()
            .to_owned();
        if id.is_empty() {
            return "absent".into();
        }
        let out = self.run(
            "docker",
            &["inspect", "-f", "{{.State.Health.Status}}", &id],
        );
        text(&out.stdout).trim().to_owned()
    }

    fn up() -> Result<Stack, String> {
        let scratch = std::env::temp_dir().join(format!("safeai-e2e-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).unwrap();
        let stack = Stack {
            ssh_port: free_port(),
            scratch,
        };
        std::fs::write(
            stack.allowlist(),
            "# e2e allowlist\ndomains:\n  - api.allowed.test\n",
        )
        .unwrap();
        let key = stack.scratch.join("id");
        let out = stack.run(
            "ssh-keygen",
            &["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()],
        );
        if !out.status.success() {
            return Err(format!("ssh-keygen failed: {}", text(&out.stderr)));
        }
        // Clean leftovers of an interrupted run first.
        stack.compose(&["down", "-v", "--remove-orphans"]);
        let started = Instant::now();
        let out = stack.compose(&["up", "-d", "--build", "--quiet-pull"]);
        if !out.status.success() {
            return Err(format!("docker compose up failed:\n{}", text(&out.stderr)));
        }
        eprintln!(
            "figure: up (build + start) {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let (p, s) = (stack.health("proxy"), stack.health("sandbox"));
            if p == "healthy" && s == "healthy" {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("not healthy after 180 s: proxy {p}, sandbox {s}"));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        eprintln!(
            "figure: up to healthy {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(stack)
    }

    fn down(&self) {
        let logs = self.compose(&["logs", "--no-color", "--tail", "200"]);
        std::fs::write(self.scratch.join("compose.log"), &logs.stdout).ok();
        let out = self.compose(&["down", "-v", "--remove-orphans"]);
        if !out.status.success() {
            eprintln!("teardown failed: {}", text(&out.stderr));
        }
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

type Check = fn(&Stack) -> Result<(), String>;

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(msg()) }
}

// ---------------------------------------------------------------- checks --

fn both_services_are_healthy(s: &Stack) -> Result<(), String> {
    let (p, b) = (s.health("proxy"), s.health("sandbox"));
    ensure(p == "healthy" && b == "healthy", || {
        format!("proxy {p}, sandbox {b}")
    })
}

fn allowlisted_upstream_answers_through_the_proxy(s: &Stack) -> Result<(), String> {
    let code = s.status_from_sandbox("http://api.allowed.test/");
    ensure(code == "200", || {
        format!("expected 200 from api.allowed.test, got {code:?}")
    })
}

fn non_allowlisted_name_gets_403_and_is_logged(s: &Stack) -> Result<(), String> {
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

fn key_login_through_the_host_port_lands_in_workspace(s: &Stack) -> Result<(), String> {
    let key = s.scratch.join("id");
    let port = s.ssh_port.to_string();
    let out = s.run(
        "ssh",
        &[
            "-i",
            key.to_str().unwrap(),
            "-p",
            &port,
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=10",
            "dev@127.0.0.1",
            "pwd; id -un",
        ],
    );
    let got = text(&out.stdout);
    ensure(out.status.success() && got == "/workspace\ndev\n", || {
        format!(
            "ssh login: status {:?}, stdout {got:?}, stderr {}",
            out.status.code(),
            text(&out.stderr)
        )
    })
}

fn root_filesystem_is_read_only(s: &Stack) -> Result<(), String> {
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

fn reload_adds_a_domain_and_an_invalid_reload_changes_nothing(s: &Stack) -> Result<(), String> {
    let before = s.status_from_sandbox("http://new.allowed.test/");
    ensure(before == "403", || {
        format!("new.allowed.test before the reload: {before:?}")
    })?;

    let allowlist = s.allowlist();
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
    std::fs::write(&allowlist, kept).unwrap();
    Ok(())
}

fn safeai_verify_passes_every_check(s: &Stack) -> Result<(), String> {
    let out = s.safeai(&[
        "verify",
        "--allowed",
        "http://api.allowed.test/",
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

/// Each check under its function's name, the name `cargo test -- NAME` filters on.
macro_rules! checks {
    ($($f:ident),* $(,)?) => { &[$((stringify!($f), $f as Check)),*] };
}

const CHECKS: &[(&str, Check)] = checks![
    both_services_are_healthy,
    allowlisted_upstream_answers_through_the_proxy,
    non_allowlisted_name_gets_403_and_is_logged,
    key_login_through_the_host_port_lands_in_workspace,
    root_filesystem_is_read_only,
    reload_adds_a_domain_and_an_invalid_reload_changes_nothing,
    safeai_verify_passes_every_check,
];

fn docker_available() -> bool {
    Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success())
        && Command::new("docker")
            .arg("info")
            .output()
            .is_ok_and(|o| o.status.success())
}

fn main() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !docker_available() {
        if ci {
            eprintln!(
                "e2e: Docker with Compose v2 is not available; `.ci/provision.sh` provides it"
            );
            std::process::exit(1);
        }
        eprintln!("e2e: SKIPPED outside CI: no Docker engine with Compose v2 here");
        return;
    }
    // `cargo test -- NAME` runs only the checks whose name contains NAME.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let selected: Vec<&(&str, Check)> = CHECKS
        .iter()
        .filter(|(name, _)| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())))
        .collect();
    if selected.is_empty() {
        return;
    }

    let stack = match Stack::up() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("e2e: the stack did not come up: {e}");
            let cleanup = Stack {
                scratch: std::env::temp_dir().join(format!("safeai-e2e-{}", std::process::id())),
                ssh_port: 0,
            };
            let logs = cleanup.compose(&["logs", "--no-color", "--tail", "100"]);
            eprintln!("{}", text(&logs.stdout));
            cleanup.down();
            println!("0 passed, {} failed", selected.len());
            std::process::exit(1);
        }
    };

    let (mut passed, mut failed) = (0, Vec::new());
    for (name, check) in selected {
        let result = catch_unwind(AssertUnwindSafe(|| check(&stack)))
            .unwrap_or_else(|_| Err("panicked".to_owned()));
        match result {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(why) => {
                println!(
                    "test {name} ... FAILED\n    {}",
                    why.replace('\n', "\n    ")
                );
                failed.push(*name);
            }
        }
    }
    if !failed.is_empty() {
        let logs = stack.compose(&["logs", "--no-color", "--tail", "60"]);
        eprintln!(
            "---- last lines of the stack's logs ----\n{}",
            text(&logs.stdout)
        );
    }
    stack.down();
    println!("{passed} passed, {} failed", failed.len());
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
