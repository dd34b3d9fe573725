//! Rendering every artifact for allowlists of 10 000 and 100 000 domains.
//!
//! `cargo bench -p safeai-core`; figures in BENCHMARKS.md.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use safeai_core::{Stack, render_all};
use safeai_policy::{Source, check};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("render_all");
    group.sample_size(10);
    for n in [10_000, 100_000] {
        let names = (0..n)
            .map(|i| format!("host-{i}.team{}.example{}.org", i % 97, i % 300))
            .collect();
        let allowlist = check(&[Source::Code(names)]).expect("valid").allowlist;
        let stack = Stack::default();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &allowlist, |b, a| {
            b.iter(|| render_all(&stack, a));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
