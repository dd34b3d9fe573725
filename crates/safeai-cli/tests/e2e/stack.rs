//! The test stack: brought up once for the whole suite, torn down at the end.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The image of [`Stack::in_tools_image`].
pub const TOOLS_IMAGE: &str = "safe-ai-e2e-tools:latest";

/// Several suites can run at once on one machine (developers, helpers, CI): each takes
/// the first free slot, held by a lock file for the life of the process, and gets its
/// own compose project and subnets from it.
const SLOTS: u8 = 10;

/// Takes the first free slot.
fn take_slot() -> (u8, std::fs::File) {
    for slot in 0..SLOTS {
        let path = std::env::temp_dir().join(format!("safeai-e2e-slot-{slot}.lock"));
        let file = std::fs::File::create(&path).unwrap();
        if file.try_lock().is_ok() {
            return (slot, file);
        }
    }
    panic!("all {SLOTS} e2e slots are taken: are that many suites running?");
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The running test stack and its scratch directory (allowlist, SSH key).
pub struct Stack {
    pub scratch: PathBuf,
    pub ssh_port: u16,
    /// This run's slot (see [`take_slot`]).
    pub slot: u8,
    /// The sandbox's OCI runtime: `runc`, or `runsc` (gVisor) for the second pass.
    pub runtime: &'static str,
    _slot_lock: Option<std::fs::File>,
}

impl Stack {
    /// The arguments every SSH client here gets: the scratch key only, no host configuration,
    /// no agent, no prompts, bounded connection time.
    pub fn ssh_options(&self) -> Vec<String> {
        let key = self.scratch.join("id");
        [
            "-F",
            "/dev/null",
            "-i",
            key.to_str().unwrap(),
            "-p",
            &self.ssh_port.to_string(),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=2",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .collect()
    }

    /// The compose project of this run.
    pub fn project(&self) -> String {
        format!("safeai-e2e-{}", self.slot)
    }

    /// The internal network's subnet.
    pub fn subnet(&self) -> String {
        format!("172.30.{}.0/24", 40 + self.slot)
    }

    /// The proxy's address on the internal network.
    pub fn proxy_ip(&self) -> String {
        format!("172.30.{}.2", 40 + self.slot)
    }

    /// The external network's subnet, where the stand-in upstreams live.
    pub fn external_subnet(&self) -> String {
        format!("172.30.{}.0/24", 100 + self.slot)
    }

    /// The stand-in upstream's address (`api.allowed.test`, `evil.test`, …).
    pub fn upstream_ip(&self) -> String {
        format!("172.30.{}.10", 100 + self.slot)
    }

    /// The upstream whose certificate no one trusts (`untrusted.allowed.test`).
    pub fn untrusted_ip(&self) -> String {
        format!("172.30.{}.11", 100 + self.slot)
    }

    /// The upstream that does not speak TLS (`raw.allowed.test`, `opaque.allowed.test`).
    pub fn raw_ip(&self) -> String {
        format!("172.30.{}.12", 100 + self.slot)
    }

    /// The fast TLS server (`fast.allowed.test`, `fast-opaque.allowed.test`).
    pub fn fast_ip(&self) -> String {
        format!("172.30.{}.13", 100 + self.slot)
    }

    /// The logging nameserver's address: the proxy's DNS upstream in the suite.
    pub fn nameserver_ip(&self) -> String {
        format!("172.30.{}.53", 100 + self.slot)
    }

    /// Puts the test CA, with the sandbox's own bundle (system CAs and the stack CA, which
    /// signs the pages of denied CONNECTs), at `/tmp/e2e-ca.pem` in the sandbox (a tmpfs:
    /// gone after a restart) and returns that path.
    pub fn ca_in_sandbox(&self) -> Result<&'static str, String> {
        let pem = std::fs::read_to_string(self.test_ca().join("ca.pem"))
            .map_err(|e| format!("no test CA: {e}"))?;
        let out = self.sandbox(&format!(
            "{{ cat /etc/ssl/certs/ca-certificates.crt; cat <<'PEM'\n{pem}PEM\n}} > /tmp/e2e-ca.pem"
        ));
        if !out.status.success() {
            return Err(format!("cannot write the CA: {}", text(&out.stderr)));
        }
        Ok("/tmp/e2e-ca.pem")
    }

    /// The test CA that signs the stand-in upstream's certificate (`ca.pem`, `ca.key`),
    /// made by the suite; the proxy trusts it through `SAFE_AI_UPSTREAM_CA`.
    pub fn test_ca(&self) -> PathBuf {
        self.scratch.join("test-ca")
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        let root = repo();
        let mut env = vec![
            ("COMPOSE_PROJECT_NAME", self.project()),
            (
                "COMPOSE_FILE",
                format!(
                    "{}:{}",
                    root.join("docker-compose.yaml").display(),
                    root.join("tests/e2e/compose.e2e.yaml").display()
                ),
            ),
            ("SAFE_AI_SUBNET", self.subnet()),
            ("SAFE_AI_PROXY_IP", self.proxy_ip()),
            ("SAFE_AI_E2E_EXTERNAL_SUBNET", self.external_subnet()),
            ("SAFE_AI_E2E_UPSTREAM_IP", self.upstream_ip()),
            ("SAFE_AI_E2E_UNTRUSTED_IP", self.untrusted_ip()),
            ("SAFE_AI_E2E_RAW_IP", self.raw_ip()),
            ("SAFE_AI_E2E_FAST_IP", self.fast_ip()),
            ("SAFE_AI_E2E_NAMESERVER_IP", self.nameserver_ip()),
            ("SAFE_AI_DNS_UPSTREAM", self.nameserver_ip()),
            ("SAFE_AI_SSH_PORT", self.ssh_port.to_string()),
            (
                "SAFE_AI_SSH_KEY",
                self.scratch.join("id.pub").display().to_string(),
            ),
            ("SAFE_AI_ALLOWLIST", self.allowlist().display().to_string()),
            (
                "SAFE_AI_SECRETS_DIR",
                self.secrets_dir().display().to_string(),
            ),
            (
                "SAFE_AI_E2E_TEST_CA_DIR",
                self.test_ca().display().to_string(),
            ),
            (
                "SAFE_AI_UPSTREAM_CA",
                self.test_ca().join("ca.pem").display().to_string(),
            ),
            ("SAFE_AI_PRIVATE_EXCEPTIONS", self.external_subnet()),
            ("SAFE_AI_DEFAULT_DOMAINS", String::new()),
            ("SAFE_AI_RUNTIME", self.runtime.into()),
            // The default (4) is more than a 2-core CI machine has: Docker refuses it.
            ("SAFE_AI_SANDBOX_CPUS", "1.5".into()),
            // A small cap, so that a bounded flood shows the decision log rotating.
            ("SAFE_AI_EVENTS_MAX_BYTES", "262144".into()),
        ];
        if self.runtime == "runsc" {
            // Under gVisor the memory hog meets the configured limit itself (runsc has
            // no `docker update`): one the machine fills in seconds.
            env.push(("SAFE_AI_SANDBOX_MEMORY", "2g".into()));
        }
        env
    }

    /// The directory of `service`'s cgroup for `controller` on this host, from the
    /// container's main process (under runsc, gVisor's kernel): where Docker applies the
    /// limits, whatever the runtime shows inside.
    pub fn host_cgroup(&self, service: &str, controller: &str) -> Result<PathBuf, String> {
        let id = text(&self.compose(&["ps", "-q", service]).stdout)
            .trim()
            .to_owned();
        let out = self.run("docker", &["inspect", "-f", "{{.State.Pid}}", &id]);
        let pid = text(&out.stdout).trim().to_owned();
        let proc_cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map_err(|e| format!("/proc/{pid}/cgroup of {service} ({id:?}): {e}"))?;
        safeai_core::verify::cgroup_dir(&proc_cgroup, controller)
            .map(|dir| Path::new("/sys/fs/cgroup").join(dir))
            .ok_or_else(|| format!("no {controller} cgroup for {service}: {proc_cgroup}"))
    }

    /// `file` of `service`'s cgroup for `controller` on this host, trimmed.
    pub fn host_cgroup_file(
        &self,
        service: &str,
        controller: &str,
        file: &str,
    ) -> Result<String, String> {
        let path = self.host_cgroup(service, controller)?.join(file);
        std::fs::read_to_string(&path)
            .map(|v| v.trim().to_owned())
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn allowlist(&self) -> PathBuf {
        self.scratch.join("allowlist.yaml")
    }

    /// The host directory of the credentials' secrets (`SAFE_AI_SECRETS_DIR`).
    pub fn secrets_dir(&self) -> PathBuf {
        self.scratch.join("secrets")
    }

    /// The value of the secret `E2E_API_KEY`: unique to this run, so that finding it
    /// anywhere can only mean it leaked there. `E2E_TOKEN` is the same with `token`.
    pub fn secret(&self) -> String {
        format!(
            "e2e-key-{}-{}-{}",
            std::process::id(),
            self.slot,
            self.runtime
        )
    }

    /// A command in the repository with the stack's environment.
    pub fn cmd(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .current_dir(repo())
            .envs(self.env())
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        self.cmd(program, args).output().unwrap()
    }

    pub fn compose(&self, args: &[&str]) -> Output {
        let mut all = vec!["compose"];
        all.extend_from_slice(args);
        self.run("docker", &all)
    }

    /// `bash -lc script` in a service as `user`.
    pub fn exec(&self, service: &str, user: &str, script: &str) -> Output {
        self.compose(&["exec", "-T", "-u", user, service, "bash", "-lc", script])
    }

    pub fn sandbox(&self, script: &str) -> Output {
        self.exec("sandbox", "dev", script)
    }

    /// The HTTP status the sandbox gets for `url` through its proxy settings.
    pub fn status_from_sandbox(&self, url: &str) -> String {
        let out = self.sandbox(&format!(
            "curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 {url}"
        ));
        text(&out.stdout)
    }

    pub fn safeai(&self, args: &[&str]) -> Output {
        self.run(env!("CARGO_BIN_EXE_safeai"), args)
    }

    pub fn health(&self, service: &str) -> String {
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

    /// A stack in a free slot whose sandbox runs under `runtime`, with its scratch files,
    /// not started yet.
    pub fn new(runtime: &'static str) -> Stack {
        let (slot, lock) = take_slot();
        let scratch =
            std::env::temp_dir().join(format!("safeai-e2e-{}-{runtime}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).unwrap();
        Stack {
            ssh_port: free_port(),
            scratch,
            slot,
            runtime,
            _slot_lock: Some(lock),
        }
    }

    /// Builds the images (unless `build` is false: a second pass reuses the first's) and
    /// starts the stack; waits until both services are healthy.
    pub fn start(&self, build: bool) -> Result<(), String> {
        let stack = self;
        std::fs::write(
            stack.allowlist(),
            "# e2e allowlist\ndomains:\n  - api.allowed.test\n  - git.allowed.test\n  \
             # They resolve, in the proxy, to addresses it must refuse.\n  \
             - metadata.allowed.test\n  - loopback.allowed.test\n  - internal.allowed.test\n  \
             - dual.allowed.test\n  - mapped.allowed.test\n  \
             # TLS checked (raw.allowed.test does not speak TLS), and an opaque tunnel.\n  \
             - raw.allowed.test\n  - untrusted.allowed.test\n  \
             - {domain: opaque.allowed.test, tunnel: opaque}\n  \
             # The TLS figures: the same server spliced after the SNI check, and opaque.\n  \
             - fast.allowed.test\n  - {domain: fast-opaque.allowed.test, tunnel: opaque}\n\
             # Decrypted and checked, request by request (the figures' bumped path too).\n\
             rules:\n  \
             - domain: rules.allowed.test\n    allow:\n      - GET /repos/acme/**\n      \
             - POST /repos/acme/*/pulls\n  \
             - domain: git-ro.allowed.test  # clone and fetch, no push\n    \
             allow: [GET /repo.git/info/refs, POST /repo.git/git-upload-pack]\n  \
             - {domain: git-rw.allowed.test, allow: [GET /repo.git/**, POST /repo.git/**]}\n  \
             - {domain: fast-bumped.allowed.test, allow: [GET /**]}\n\
             credentials:\n  \
             - domain: key.allowed.test\n    header: x-api-key\n    \
             value: ${E2E_API_KEY}\n    sandbox_env: E2E_API_KEY\n  \
             - {domain: bearer.allowed.test, header: Authorization, value: 'Bearer ${E2E_TOKEN}'}\n  \
             # Decrypted, behind a certificate no one trusts: the key must never go out.\n  \
             - {domain: untrusted-key.allowed.test, header: x-api-key, value: '${E2E_API_KEY}'}\n",
        )
        .unwrap();
        // The credentials' secrets: only the proxy mounts this directory.
        let secrets = stack.secrets_dir();
        std::fs::create_dir_all(&secrets).unwrap();
        std::fs::write(secrets.join("E2E_API_KEY"), format!("{}\n", stack.secret())).unwrap();
        std::fs::write(
            secrets.join("E2E_TOKEN"),
            stack.secret().replace("key", "token"),
        )
        .unwrap();
        let ca = stack.test_ca();
        std::fs::create_dir_all(&ca).unwrap();
        let out = stack.run(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=safe-ai e2e test CA",
                "-keyout",
                ca.join("ca.key").to_str().unwrap(),
                "-out",
                ca.join("ca.pem").to_str().unwrap(),
            ],
        );
        if !out.status.success() {
            return Err(format!(
                "openssl could not make the test CA: {}",
                text(&out.stderr)
            ));
        }
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
        if build {
            stack.build_images()?;
        }
        let started = Instant::now();
        let out = stack.compose(&["up", "-d", "--quiet-pull"]);
        if !out.status.success() {
            return Err(format!("docker compose up failed:\n{}", text(&out.stderr)));
        }
        eprintln!(
            "figure: up (start) {:.1} s",
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
        // The first key login, as a user would try it right after `up`.
        loop {
            let mut args = stack.ssh_options();
            args.extend(["dev@127.0.0.1".into(), "true".into()]);
            let ok = Command::new("ssh")
                .args(&args)
                .env_remove("SSH_AUTH_SOCK")
                .stdin(Stdio::null())
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                break;
            }
            if Instant::now() > deadline {
                return Err("no SSH login as dev within 180 s of `up`".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "figure: up to first SSH login {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// `bash -lc script` as root in a throwaway container of the tools image, confined and
    /// placed like the sandbox: on the internal network only, the proxy's variables, the
    /// stack CA's certificate volume, a read-only root, the sandbox's runtime (so Node,
    /// cargo and Java run under gVisor in the runsc pass). The entrypoint prepares it as
    /// it does the sandbox (the trust bundle, the Java trust store), then runs the script.
    pub fn in_tools_image(&self, script: &str) -> Output {
        let project = self.project();
        let proxy = format!("http://{}:3128", self.proxy_ip());
        let (network, ca) = (
            format!("{project}_internal"),
            format!("{project}_ca-public:/etc/safe-ai/ca:ro"),
        );
        let mut args = vec![
            "run",
            "--rm",
            "--runtime",
            self.runtime,
            "--network",
            &network,
            "--read-only",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "CHOWN",
            "--cap-add",
            "SETUID",
            "--cap-add",
            "SETGID",
            "--security-opt",
            "no-new-privileges",
            "--tmpfs",
            "/run:rw,noexec,nosuid,nodev,mode=755",
            "--tmpfs",
            "/tmp:rw,exec",
            "--tmpfs",
            "/etc/ssh/host-keys",
            "-v",
            &ca,
        ];
        let env: Vec<String> = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"]
            .iter()
            .map(|k| format!("{k}={proxy}"))
            .collect();
        for e in &env {
            args.extend(["-e", e]);
        }
        args.extend([TOOLS_IMAGE, "bash", "-lc", script]);
        self.run("docker", &args)
    }

    /// The stack CA's SHA-256 fingerprint as `service` sees the certificate at `path`.
    pub fn ca_fingerprint(&self, service: &str, path: &str) -> String {
        text(
            &self
                .exec(
                    service,
                    "root",
                    &format!("openssl x509 -noout -fingerprint -sha256 -in {path}"),
                )
                .stdout,
        )
        .trim()
        .to_owned()
    }

    /// Builds every image the suite runs: the stack's, the stand-ins', the tools image.
    fn build_images(&self) -> Result<(), String> {
        let stack = self;
        let built = Instant::now();
        let out = stack.compose(&["build", "--quiet"]);
        if !out.status.success() {
            return Err(format!(
                "docker compose build failed:\n{}",
                text(&out.stderr)
            ));
        }
        // The tools image (the Java example image plus Node and cargo), for the check that
        // each tool trusts the stack CA; built in order, since one is the other's base.
        for args in [
            &[
                "build",
                "-q",
                "-f",
                "examples/java.Dockerfile",
                "--build-arg",
                "BASE=safe-ai-sandbox:latest",
                "-t",
                "safe-ai-e2e-java:latest",
                "examples",
            ][..],
            &["build", "-q", "-t", TOOLS_IMAGE, "tests/e2e/tools"],
        ] {
            let out = stack.run("docker", args);
            if !out.status.success() {
                return Err(format!("docker {args:?} failed:\n{}", text(&out.stderr)));
            }
        }
        eprintln!(
            "figure: image build (the machine's build cache as it is) {:.1} s",
            built.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// `service` as this run's stack runs it: the generated compose file with this run's
    /// environment, as `docker compose config` resolves it (`mem_limit` in bytes, `cpus`
    /// a number). The source of every configured value a check compares against.
    pub fn service_config(&self, service: &str) -> Result<serde_json::Value, String> {
        let out = self.compose(&["config", "--format", "json"]);
        if !out.status.success() {
            return Err(format!("docker compose config: {}", text(&out.stderr)));
        }
        let all: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("docker compose config: not JSON: {e}"))?;
        all["services"]
            .get(service)
            .cloned()
            .ok_or_else(|| format!("docker compose config has no service {service}"))
    }

    /// `safeai verify --format json` against containers by name: each check's result and
    /// detail, by check name, and verify's exit status.
    pub fn verify_containers(
        &self,
        sandbox: &str,
        proxy: &str,
    ) -> Result<(Option<i32>, VerifyReport), String> {
        self.verify_json(&["--sandbox", sandbox, "--proxy", proxy])
    }

    /// `safeai verify --format json` with the suite's allowed URL and denied host, plus
    /// `extra` (none: the stack in this run's compose project).
    pub fn verify_json(&self, extra: &[&str]) -> Result<(Option<i32>, VerifyReport), String> {
        let mut args = vec![
            "verify",
            "--allowed",
            "https://api.allowed.test/",
            "--denied",
            "evil.test",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = self.safeai(&args);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "safeai verify --format json: not JSON ({e}): {}{}",
                text(&out.stdout),
                text(&out.stderr)
            )
        })?;
        let lines = report["checks"]
            .as_array()
            .ok_or_else(|| format!("safeai verify: no checks: {report}"))?
            .iter()
            .map(|c| {
                let field = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
                (field("check"), (field("result"), field("detail")))
            })
            .collect();
        Ok((out.status.code(), lines))
    }

    /// The external network of this run's project, where the stand-in upstreams live.
    pub fn external_network(&self) -> String {
        format!("{}_external", self.project())
    }

    /// `bash -c script` in a throwaway container of the sandbox image on the external
    /// network (beside the upstreams, outside the sandbox's confinement), with `volumes`
    /// (`-v` arguments): the place of a client that is not the sandbox.
    pub fn on_external(&self, volumes: &[&str], script: &str) -> Output {
        let network = self.external_network();
        let mut args = vec!["run", "--rm", "--network", &network];
        for v in volumes {
            args.extend(["-v", v]);
        }
        args.extend([
            "--entrypoint",
            "bash",
            "safe-ai-sandbox:latest",
            "-c",
            script,
        ]);
        self.run("docker", &args)
    }

    pub fn down(&self) {
        let logs = self.compose(&["logs", "--no-color", "--tail", "200"]);
        std::fs::write(self.scratch.join("compose.log"), &logs.stdout).ok();
        let out = self.compose(&["down", "-v", "--remove-orphans"]);
        if !out.status.success() {
            eprintln!("teardown failed: {}", text(&out.stderr));
        }
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// A name no earlier run used: `TAG-PID-NANOS`.
/// The allowlist text `allowlist` with `name` as the first item of its `domains:` list
/// (the list is not the file's last key: appending a line would land in another one).
pub fn with_domain(allowlist: &str, name: &str) -> String {
    assert!(
        allowlist.contains("\ndomains:\n"),
        "no block `domains:` list"
    );
    allowlist.replacen("\ndomains:\n", &format!("\ndomains:\n  - {name}\n"), 1)
}

pub fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{tag}-{}-{nanos}", std::process::id())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub type Check = fn(&Stack) -> Result<(), String>;

/// `safeai verify`'s lines: check name → (result, detail).
pub type VerifyReport = BTreeMap<String, (String, String)>;

/// A check's cleanup: runs when dropped (failure, panic) or through [`Restore::finish`],
/// which also reports a cleanup that failed.
pub struct Restore<'a> {
    undo: Option<Box<dyn FnOnce() -> Result<(), String> + 'a>>,
}

impl<'a> Restore<'a> {
    pub fn new(undo: impl FnOnce() -> Result<(), String> + 'a) -> Self {
        Restore {
            undo: Some(Box::new(undo)),
        }
    }

    /// Runs the cleanup now; the check fails if either the check or its cleanup did.
    pub fn finish(mut self, result: Result<(), String>) -> Result<(), String> {
        let undone = self.undo.take().map_or(Ok(()), |undo| undo());
        match (result, undone) {
            (Ok(()), Ok(())) => Ok(()),
            (Ok(()), Err(c)) => Err(format!("the check passed but its cleanup failed: {c}")),
            (Err(e), Ok(())) => Err(e),
            (Err(e), Err(c)) => Err(format!("{e}\nand its cleanup failed too: {c}")),
        }
    }
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        if let Some(undo) = self.undo.take()
            && let Err(e) = undo()
        {
            eprintln!("e2e: cleanup failed: {e}");
        }
    }
}

pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(msg()) }
}

/// `KEY=VALUE` lines (what the in-container probes print) as a map; the first `=` splits.
pub fn key_values(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

impl Stack {
    /// The proxy's address on the external network (where the host's SSH port leads).
    pub fn proxy_external_ip(&self) -> Result<String, String> {
        let id = text(&self.compose(&["ps", "-q", "proxy"]).stdout)
            .trim()
            .to_owned();
        let format = format!(
            "{{{{(index .NetworkSettings.Networks \"{}_external\").IPAddress}}}}",
            self.project()
        );
        let out = self.run("docker", &["inspect", "-f", &format, &id]);
        let ip = text(&out.stdout).trim().to_owned();
        if out.status.success() && ip.parse::<std::net::Ipv4Addr>().is_ok() {
            Ok(ip)
        } else {
            Err(format!(
                "no external address for the proxy ({id:?}): {ip:?} {}",
                text(&out.stderr)
            ))
        }
    }
}

/// One event of the proxy's decision log, as JSON.
pub type Event = serde_json::Value;

impl Stack {
    /// The proxy's decision log as `safeai logs --format json` reads it (the tap's file in
    /// the proxy), every event; a log that cannot be read is an error, never "no events".
    pub fn events(&self) -> Result<Vec<Event>, String> {
        let out = self.safeai(&["logs", "--format", "json"]);
        if !out.status.success() {
            return Err(format!("safeai logs failed: {}", text(&out.stderr)));
        }
        text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).map_err(|e| format!("not JSON ({e}): {l}")))
            .collect()
    }

    /// The events whose host is `host`.
    pub fn events_for(&self, host: &str) -> Result<Vec<Event>, String> {
        Ok(self
            .events()?
            .into_iter()
            .filter(|e| e["host"] == host)
            .collect())
    }
}
