//! The end-to-end suite: builds the images from the real Dockerfiles, brings the stack up
//! with test-only stand-in upstreams (`tests/e2e/compose.e2e.yaml`), runs every check as a
//! separately named test, and tears everything down (containers, networks, volumes), also
//! on failure. Traffic goes only to the project's own containers.
//!
//! Needs Docker with Compose v2 (`.ci/provision.sh`). In CI (`CI=true`) a missing Docker
//! fails the suite; elsewhere the suite says it is skipped.

mod basic;
mod faults;
mod network;
mod sandbox;
mod stack;
mod tls;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;

use stack::{Check, Stack, text};

/// Each check under its function's name, the name `cargo test -- NAME` filters on.
#[macro_export]
macro_rules! checks {
    ($($f:ident),* $(,)?) => { &[$((stringify!($f), $f as $crate::stack::Check)),*] };
}

/// Every check, in order: the disruptive fault checks come last.
fn all_checks() -> Vec<(&'static str, Check)> {
    [
        basic::CHECKS,
        network::CHECKS,
        tls::CHECKS,
        sandbox::CHECKS,
        faults::CHECKS,
    ]
    .concat()
}

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
    let checks = all_checks();
    let selected: Vec<&(&str, Check)> = checks
        .iter()
        .filter(|(name, _)| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())))
        .collect();
    if selected.is_empty() {
        return;
    }

    let stack = Stack::new();
    eprintln!("e2e: compose project {}", stack.project());
    if let Err(e) = stack.start() {
        eprintln!("e2e: the stack did not come up: {e}");
        let logs = stack.compose(&["logs", "--no-color", "--tail", "100"]);
        eprintln!("{}", text(&logs.stdout));
        stack.down();
        println!("0 passed, {} failed", selected.len());
        std::process::exit(1);
    }

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
