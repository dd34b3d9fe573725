//! Parse + validate + normalize allowlists of 10 000 and 100 000 domains.
//!
//! `cargo bench -p safeai-policy`; figures in BENCHMARKS.md.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use safeai_policy::{Source, check};

/// A YAML allowlist of `n` distinct names over a few hundred registrable domains,
/// one in ten covered by a parent that is also listed.
pub fn allowlist_yaml(n: usize) -> String {
    let mut text = String::with_capacity(n * 40);
    text.push_str("domains:\n");
    for i in 0..n {
        if i % 10 == 0 {
            text.push_str(&format!("  - svc{}.example{}.com\n", i / 10, i % 300));
        } else {
            text.push_str(&format!(
                "  - host-{i}.team{}.example{}.org\n",
                i % 97,
                i % 300
            ));
        }
    }
    text
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("check");
    group.sample_size(10);
    for n in [10_000, 100_000] {
        let sources = [Source::Yaml {
            name: "allowlist.yaml".into(),
            text: allowlist_yaml(n),
        }];
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &sources, |b, s| {
            b.iter(|| check(s).expect("valid"));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
