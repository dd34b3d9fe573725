//! `make setup` (scripts/setup.sh) as a new user runs it, against a stand-in `docker` that
//! answers like a given machine: the Quickstart must work on a 2-core host with no file
//! edited, and setup must never overwrite a file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A copy of the files setup reads and writes, in a fresh directory, with a stand-in
/// `docker` in `bin/` that reports `engine` and `ncpu`.
fn checkout(name: &str, engine: &str, ncpu: u32) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("safeai-setup-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["scripts", "bin"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for file in [
        "scripts/setup.sh",
        ".env.example",
        "docker-compose.override.yaml.example",
        "docker-compose.yaml",
    ] {
        std::fs::copy(repo().join(file), dir.join(file)).unwrap();
    }
    // Only what setup asks; `compose config -q` is the real check, done in `accepted`.
    let docker = format!(
        r#"#!/bin/sh
case "$*" in
  --version) echo "Docker version {engine}, build test" ;;
  "version --format {{{{.Server.Version}}}}") echo "{engine}" ;;
  "compose version --short") echo "2.26.1" ;;
  "buildx version") echo "github.com/docker/buildx 0.13.1 test" ;;
  "info --format {{{{.NCPU}}}}") echo "{ncpu}" ;;
  "info --format {{{{json .Runtimes}}}}") echo '{{"runc":{{}}}}' ;;
  "compose config -q") exit 0 ;;
  *) echo "stand-in docker: unexpected: $*" >&2; exit 1 ;;
esac
"#
    );
    let path = dir.join("bin/docker");
    std::fs::write(&path, docker).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn setup(dir: &Path) -> Output {
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap()
    );
    let mut cmd = Command::new("bash");
    cmd.arg(dir.join("scripts/setup.sh"))
        .current_dir(dir)
        .env("PATH", path)
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env("SAFE_AI_ASCII", "1");
    for (k, _) in std::env::vars() {
        if k.starts_with("SAFE_AI_") && k != "SAFE_AI_ASCII" {
            cmd.env_remove(k);
        }
    }
    cmd.output().unwrap()
}

/// The value `docker compose config` gives the sandbox's `cpus` with this `.env`: the real
/// Compose, so the file and the value are checked by the program that reads them.
fn compose_cpus(dir: &Path) -> Result<String, String> {
    let out = Command::new("docker")
        .args(["compose", "config", "--format", "json"])
        .current_dir(dir)
        .env("SAFE_AI_SSH_KEY", "/dev/null")
        .env_remove("SAFE_AI_SANDBOX_CPUS")
        .output()
        .map_err(|e| format!("docker: {e}"))?;
    if !out.status.success() {
        return Err(text(&out.stderr));
    }
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Ok(config["services"]["sandbox"]["cpus"].to_string())
}

fn compose_available() -> bool {
    Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_version_comparisons_pass_their_self_test() {
    let out = Command::new("bash")
        .arg(repo().join("scripts/setup.sh"))
        .arg("--self-test")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("checks passed"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn on_a_two_core_host_setup_writes_a_cpu_limit_docker_accepts() {
    let dir = checkout("two-core", "26.1.5", 2);
    let out = setup(&dir);
    let said = text(&out.stdout);
    assert!(
        out.status.success(),
        "setup failed:\n{said}{}",
        text(&out.stderr)
    );
    let env = std::fs::read_to_string(dir.join(".env")).unwrap();
    assert!(
        env.ends_with("SAFE_AI_SANDBOX_CPUS=2\n"),
        "the new .env does not end with the fitting limit:\n{env}"
    );
    assert!(said.contains("SAFE_AI_SANDBOX_CPUS=2 in .env"), "{said}");
    assert!(!said.contains("Docker will refuse"), "{said}");

    // A second run leaves the file as it is.
    let again = setup(&dir);
    assert!(again.status.success(), "{}", text(&again.stdout));
    assert_eq!(std::fs::read_to_string(dir.join(".env")).unwrap(), env);
    assert!(text(&again.stdout).contains(".env exists: left as is"));

    // The real Compose reads the limit from that .env (checked when Compose is here; CI
    // provisions it, and the e2e suite fails without it there).
    if compose_available() {
        assert_eq!(compose_cpus(&dir).unwrap(), "2");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn on_a_large_host_setup_writes_four_cpus() {
    let dir = checkout("large", "27.3.1", 16);
    let out = setup(&dir);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let env = std::fs::read_to_string(dir.join(".env")).unwrap();
    assert!(env.ends_with("SAFE_AI_SANDBOX_CPUS=4\n"), "{env}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_setup_the_compose_default_is_no_cpu_limit() {
    // `docker compose up` straight after a clone: no .env, and a default every host takes.
    if !compose_available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "docker compose is missing in CI: .ci/provision.sh installs it"
        );
        return;
    }
    let dir = checkout("no-env", "26.1.5", 2);
    // Compose drops a zero limit: the container gets none (the old default, 4, made
    // Docker refuse to start the sandbox on a 2-core host).
    assert_eq!(compose_cpus(&dir).unwrap(), "null");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_too_high_limit_in_an_existing_env_is_a_warning_with_its_fix() {
    let dir = checkout("too-high", "26.1.5", 2);
    std::fs::write(dir.join(".env"), "SAFE_AI_SANDBOX_CPUS=4\n").unwrap();
    let out = setup(&dir);
    let said = text(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("SAFE_AI_SANDBOX_CPUS is 4 but the Docker host has 2 CPU(s)"),
        "{said}"
    );
    assert!(
        said.contains("Set SAFE_AI_SANDBOX_CPUS=2 (or less) in .env"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join(".env")).unwrap(),
        "SAFE_AI_SANDBOX_CPUS=4\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_engine_without_start_interval_is_refused() {
    let dir = checkout("old-engine", "24.0.9", 2);
    let out = setup(&dir);
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("Docker Engine 24.0.9 is too old: safe-ai needs 25.0.0 or later"),
        "{said}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
