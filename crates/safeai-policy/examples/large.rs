//! Checks a generated allowlist of N domains (default 100 000) once and prints the time:
//! run under `/usr/bin/time -v` to read the peak memory (BENCHMARKS.md).
//!
//! `cargo run --release -p safeai-policy --example large -- 100000`

use std::time::Instant;

use safeai_policy::{Source, check};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |s| s.parse().expect("a number"));
    let mut text = String::from("domains:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  - host-{i}.team{}.example{}.org\n",
            i % 97,
            i % 300
        ));
    }
    let start = Instant::now();
    let checked = check(&[Source::Yaml {
        name: "allowlist.yaml".into(),
        text,
    }])
    .expect("valid");
    let elapsed = start.elapsed();
    println!(
        "{n} domains -> {} entries in {:.1} ms",
        checked.allowlist.len(),
        elapsed.as_secs_f64() * 1e3
    );
}
