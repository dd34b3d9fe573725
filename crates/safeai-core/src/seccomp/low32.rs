//! "Any 32-bit value except these" as a union of masked-equality patterns.
//!
//! Many syscalls declare an argument as `int` or `unsigned int` (ioctl's request, socket's
//! family, …): the kernel reads only the low 32 bits of the register, but seccomp compares
//! all 64. So `arg > 0x541c` lets `0x1_0000_5412` through, and the kernel then runs request
//! 0x5412 (the snapd CVE-2019-7303 trick). And `arg != a` plus `arg != b` in one entry does
//! not mean "neither": runc turns two comparisons of the same argument into two separate
//! rules, either of which allows the call.
//!
//! What is left is single-condition rules, any of which allows the call, each
//! `arg & mask == pattern` with a mask inside the low 32 bits, so the high bits never matter.
//! Picture the binary trie of all 32-bit values: walk from the root towards each excluded
//! value; every sibling subtree met on the way that holds no excluded value is allowed whole,
//! and a subtree is exactly one prefix pattern. The patterns are disjoint and together cover
//! every value except the excluded ones, using at most 32 per excluded value.

/// One pattern: a value `v` matches when `v & mask == value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pattern {
    pub(crate) mask: u32,
    pub(crate) value: u32,
}

/// The patterns whose union is every `u32` outside `excluded`, in ascending order of `value`.
///
/// `excluded` may be in any order and hold repeats. With nothing excluded, the result is the
/// one pattern that matches everything (mask 0).
pub(crate) fn complement(excluded: &[u32]) -> Vec<Pattern> {
    let mut sorted = excluded.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut patterns = Vec::new();
    walk(&sorted, 0, 0, &mut patterns);
    patterns
}

/// `excluded` is sorted and holds exactly the excluded values that begin with the `depth`
/// top bits of `prefix`.
fn walk(excluded: &[u32], depth: u32, prefix: u32, patterns: &mut Vec<Pattern>) {
    if excluded.is_empty() {
        patterns.push(Pattern {
            mask: top_bits(depth),
            value: prefix,
        });
        return;
    }
    if depth == 32 {
        // The prefix is a whole value, and an excluded one.
        return;
    }
    let bit = 1u32 << (31 - depth);
    // Sorted values sharing the prefix have this bit clear first, then set.
    let split = excluded.partition_point(|v| v & bit == 0);
    walk(&excluded[..split], depth + 1, prefix, patterns);
    walk(&excluded[split..], depth + 1, prefix | bit, patterns);
}

/// A mask of the `n` most significant bits of a `u32`.
fn top_bits(n: u32) -> u32 {
    match n {
        0 => 0,
        n => u32::MAX << (32 - n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(patterns: &[Pattern], v: u32) -> usize {
        patterns.iter().filter(|p| v & p.mask == p.value).count()
    }

    /// Values worth probing for an exclusion set: each excluded value, its neighbours and
    /// every one-bit flip of it, the extremes, and a pseudo-random sweep.
    fn probes(excluded: &[u32]) -> Vec<u32> {
        let mut out = vec![0, 1, u32::MAX, u32::MAX - 1, 1 << 31];
        for &e in excluded {
            out.extend([e, e.wrapping_add(1), e.wrapping_sub(1)]);
            out.extend((0..32).map(|b| e ^ (1 << b)));
        }
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..20_000 {
            // xorshift32
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            out.push(x);
        }
        out
    }

    fn check(excluded: &[u32]) {
        let patterns = complement(excluded);
        for p in &patterns {
            assert_eq!(p.value & !p.mask, 0, "{p:?} can never match");
        }
        for v in probes(excluded) {
            let expected = usize::from(!excluded.contains(&v));
            // Exactly one: allowed values are covered, and the patterns are disjoint.
            assert_eq!(
                matches(&patterns, v),
                expected,
                "{v:#x} against {excluded:x?}"
            );
        }
    }

    #[test]
    fn nothing_excluded_is_one_catch_all_pattern() {
        assert_eq!(complement(&[]), [Pattern { mask: 0, value: 0 }]);
    }

    #[test]
    fn one_excluded_value_takes_32_patterns() {
        let patterns = complement(&[0x5412]);
        assert_eq!(patterns.len(), 32);
        check(&[0x5412]);
    }

    #[test]
    fn two_values_share_the_patterns_of_their_common_prefix() {
        // 0x5412 and 0x541c agree on their top 28 bits, then need 3 more patterns each.
        assert_eq!(complement(&[0x5412, 0x541c]).len(), 28 + 2 * 3);
        assert_eq!(
            complement(&[0x541c, 0x5412, 0x5412]),
            complement(&[0x5412, 0x541c])
        );
    }

    #[test]
    fn patterns_cover_exactly_the_complement() {
        for excluded in [
            &[0x5412, 0x541c][..],
            &[38, 40],
            &[0],
            &[u32::MAX],
            &[0, u32::MAX],
            &[0x8000_0000, 0x7fff_ffff],
            &[1, 2, 3, 4, 5, 6, 7],
        ] {
            check(excluded);
        }
    }

    #[test]
    fn patterns_are_sorted_and_exhaustive_on_a_small_space() {
        // Every value of the top byte, with the rest zero, checked against a brute-force count.
        let excluded = [0x1200_0000, 0x1300_0000, 0xff00_0000];
        let patterns = complement(&excluded);
        assert!(patterns.windows(2).all(|w| w[0].value < w[1].value));
        for top in 0..=255u32 {
            let v = top << 24;
            assert_eq!(
                matches(&patterns, v),
                usize::from(!excluded.contains(&v)),
                "{v:#x}"
            );
        }
    }
}
