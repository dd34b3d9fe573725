//! Every generated artifact is checked by the program that reads it:
//! `squid -k parse`, `dnsmasq --test`, `docker compose config -q`.
//!
//! The tools are Debian packages that `.ci/run` installs. In CI (`CI=true`) a missing
//! tool fails the test; on a developer machine without them the test says so and passes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/valid");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 5, "the valid fixtures are missing");
    dirs
}

/// Whether `program` runs; if not, fails in CI and says why elsewhere.
fn available(program: &str, probe: &[&str]) -> bool {
    let ok = Command::new(program)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = format!(
            "`{program}` is not installed: the artifact check needs it (`.ci/run` provisions it)"
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED outside CI: {msg}");
    }
    ok
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("safeai-tools-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_all(dir: &Path, artifacts: &safeai_core::Artifacts) {
    for (name, text) in artifacts {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

#[test]
fn squid_parses_every_squid_conf_without_errors_or_overlap_warnings() {
    if !available("squid", &["-v"]) {
        return;
    }
    for fixture in fixtures() {
        let dir = scratch("squid");
        // What the proxy has beside squid.conf: the stack CA and the error pages.
        let ca = safeai_ca::CaDir::new(dir.join("ca"));
        ca.init().unwrap();
        let pages = dir.join("errors");
        std::fs::create_dir_all(&pages).unwrap();
        let plan = safeai_core::tls_plan(&Default::default(), &common::allowlist(&fixture));
        for (name, text) in safeai_core::render_error_pages(&plan) {
            std::fs::write(pages.join(name), text).unwrap();
        }
        write_all(
            &dir,
            &common::artifacts(&fixture, |s| {
                s.runtime_dir = dir.to_str().unwrap().to_owned();
                s.ca_file = dir.join("ca/ca.pem").to_str().unwrap().to_owned();
            }),
        );
        let out = Command::new("squid")
            .args(["-k", "parse", "-f"])
            .arg(dir.join("squid.conf"))
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: squid -k parse failed:\n{log}",
            fixture.display()
        );
        for bad in [
            "ERROR",
            "FATAL",
            "Bungled",
            "is a subdomain of",
            // Overlapping `dst` entries: Squid keeps one and drops the other.
            "is a subnetwork of",
            "duplicate",
        ] {
            assert!(
                !log.contains(bad),
                "{}: squid -k parse reported `{bad}`:\n{log}",
                fixture.display()
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn the_error_pages_replace_every_page_squid_has() {
    // Squid serves its own templates for errors we did not name; each must have ours, or
    // its branded page (and its "cache administrator") would show.
    let templates = Path::new("/usr/share/squid/errors/templates");
    if !available("squid", &["-v"]) {
        return;
    }
    let ours = safeai_core::render_error_pages(&safeai_core::tls_plan(
        &Default::default(),
        &Default::default(),
    ));
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(templates).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with("ERR_") && !ours.contains_key(&name) {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "Squid pages without ours: {missing:?}");
    assert!(
        ours.len() > 40,
        "the list of Squid's pages is short: {}",
        ours.len()
    );
}

#[test]
fn squid_dies_on_an_overlap_that_normalization_removes() {
    // Proof that the check above can fail: the overlap the original shipped, written by
    // hand, is fatal to squid in this order.
    if !available("squid", &["-v"]) {
        return;
    }
    let dir = scratch("squid-overlap");
    let conf = "http_port 3128\nacl a dstdomain .api.github.com .github.com\nhttp_access allow a\nhttp_access deny all\n";
    std::fs::write(dir.join("squid.conf"), conf).unwrap();
    let out = Command::new("squid")
        .args(["-k", "parse", "-f"])
        .arg(dir.join("squid.conf"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() || log.contains("WARNING") || log.contains("FATAL"),
        "squid accepted an overlapping ACL silently:\n{log}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dnsmasq_accepts_every_config_and_servers_file() {
    if !available("dnsmasq", &["--version"]) {
        return;
    }
    for fixture in fixtures() {
        let dir = scratch("dnsmasq");
        let artifacts = common::artifacts(&fixture, |s| {
            s.runtime_dir = dir.to_str().unwrap().to_owned()
        });
        write_all(&dir, &artifacts);
        // The servers file is read at start, not by --test: inline it in a second config
        // so its lines are syntax-checked too.
        let combined = dir.join("combined.conf");
        std::fs::write(
            &combined,
            format!(
                "{}{}",
                artifacts["dnsmasq.conf"], artifacts["dnsmasq.servers"]
            ),
        )
        .unwrap();
        for conf in [dir.join("dnsmasq.conf"), combined] {
            let out = Command::new("dnsmasq")
                .arg("--test")
                .arg("-C")
                .arg(&conf)
                .output()
                .unwrap();
            let log = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && log.contains("syntax check OK"),
                "{}: dnsmasq --test failed on {}:\n{log}",
                fixture.display(),
                conf.display()
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn docker_compose_accepts_the_compose_file() {
    if !available("docker", &["compose", "version"]) {
        return;
    }
    let dir = scratch("compose");
    write_all(&dir, &common::artifacts(&fixtures()[0], |_| {}));
    // The bind sources must exist for `config` to resolve them.
    std::fs::write(dir.join("allowlist.yaml"), "domains: []\n").unwrap();
    std::fs::write(dir.join("key.pub"), "ssh-ed25519 AAAA test\n").unwrap();
    let out = Command::new("docker")
        .args(["compose", "-f"])
        .arg(dir.join("docker-compose.yaml"))
        .args(["config", "-q"])
        .env("SAFE_AI_SSH_KEY", dir.join("key.pub"))
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "docker compose config -q rejected the compose file:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
