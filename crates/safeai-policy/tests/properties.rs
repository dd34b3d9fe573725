//! The laws of the policy, as property tests.

use proptest::prelude::*;
use safeai_policy::{Allowlist, Domain, Origin, Source, Tunnel, check, presets};

/// Labels from a small alphabet, so that generated names often overlap.
fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("api".to_owned()),
        // `xn--…` is punycode, valid only when it decodes: not a plain label.
        "[a-z][a-z0-9-]{0,6}[a-z0-9]".prop_filter("not an IDNA label", |l| !l.starts_with("xn--")),
    ]
}

/// Names under a few registrable roots, one to three labels deep.
fn name() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(label(), 0..3),
        prop_oneof![Just("example.com"), Just("example.org"), Just("corp.test")],
    )
        .prop_map(|(labels, root)| {
            let mut parts = labels;
            parts.push(root.to_owned());
            parts.join(".")
        })
}

/// How a user might spell a name.
fn spelling() -> impl Strategy<Value = String> {
    (name(), 0..4u8).prop_map(|(n, how)| match how {
        0 => n,
        1 => format!("*.{n}"),
        2 => format!(".{}", n.to_uppercase()),
        _ => format!("{n}."),
    })
}

fn allowlist(names: &[String]) -> Allowlist {
    check(&[Source::Code(names.to_vec())]).unwrap().allowlist
}

fn names_of(a: &Allowlist) -> Vec<String> {
    a.domains().map(|d| d.to_string()).collect()
}

/// Names with tunnels, as a YAML file of map entries (and plain strings for TLS, half the time).
fn with_tunnels(entries: &[(String, bool)]) -> Allowlist {
    let mut text = String::from("domains:\n");
    for (i, (name, opaque)) in entries.iter().enumerate() {
        match (opaque, i % 2) {
            (true, _) => text.push_str(&format!("  - {{domain: \"{name}\", tunnel: opaque}}\n")),
            (false, 0) => text.push_str(&format!("  - \"{name}\"\n")),
            (false, _) => text.push_str(&format!("  - domain: \"{name}\"\n    tunnel: tls\n")),
        }
    }
    check(&[Source::Yaml {
        name: "a.yaml".into(),
        text,
    }])
    .unwrap()
    .allowlist
}

fn tunnels_of(a: &Allowlist) -> Vec<(String, Tunnel)> {
    a.entries()
        .map(|e| (e.domain.to_string(), e.tunnel))
        .collect()
}

/// A host of some preset, or a name under one, or an unrelated name: lists that overlap
/// the presets in every way (equal, covered, covering, apart).
fn near_presets() -> impl Strategy<Value = String> {
    let hosts: Vec<&'static str> = presets::ALL
        .iter()
        .flat_map(|p| p.domains.iter().copied())
        .collect();
    prop_oneof![
        prop::sample::select(hosts.clone()).prop_map(str::to_owned),
        (label(), prop::sample::select(hosts)).prop_map(|(l, h)| format!("{l}.{h}")),
        Just("githubusercontent.com".to_owned()),
        name(),
    ]
}

/// Preset names, with repeats, in any order.
fn preset_names() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(
        prop::sample::select(presets::names().collect::<Vec<_>>()),
        0..6,
    )
}

/// A file naming `names` in `presets:` and listing `domains`.
fn with_presets(names: &[&str], domains: &[String]) -> Allowlist {
    let text = format!(
        "presets: [{}]\ndomains: [{}]\n",
        names.join(", "),
        domains
            .iter()
            .map(|d| format!("\"{d}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    check(&[Source::Yaml {
        name: "a.yaml".into(),
        text,
    }])
    .unwrap()
    .allowlist
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn normalization_with_presets_is_idempotent_and_ignores_order(
        names in preset_names(),
        domains in prop::collection::vec(near_presets(), 0..12),
        hosts in prop::collection::vec(near_presets(), 1..30),
    ) {
        let once = with_presets(&names, &domains);
        // Idempotent: the result, listed again by hand, is itself.
        prop_assert_eq!(names_of(&allowlist(&names_of(&once))), names_of(&once));
        prop_assert_eq!(tunnels_of(&with_presets(&[], &names_of(&once))), tunnels_of(&once));
        // Order-independent: presets and domains reversed, presets repeated.
        let (mut n, mut d) = (names.clone(), domains.clone());
        n.reverse();
        d.reverse();
        prop_assert_eq!(tunnels_of(&with_presets(&n, &d)), tunnels_of(&once));
        n.extend(names.iter().copied());
        prop_assert_eq!(tunnels_of(&with_presets(&n, &d)), tunnels_of(&once));
        // A preset means its hosts: the allowed set is the union of the two.
        for host in &hosts {
            let listed = domains.iter().any(|n| host == n || host.ends_with(&format!(".{n}")));
            let preset = names.iter().any(|n| presets::get(n).unwrap().allows(host));
            prop_assert_eq!(once.allows(host), listed || preset, "host {}", host);
        }
        // Every entry a preset brought in says so.
        for e in once.entries() {
            if let Some(p) = e.origin.preset() {
                prop_assert!(names.contains(&p), "{} from {}", e.domain, p);
                prop_assert!(presets::get(p).unwrap().domains.contains(&e.domain.as_str()));
            }
        }
    }

    #[test]
    fn an_empty_presets_list_is_the_identity(domains in prop::collection::vec(near_presets(), 0..12)) {
        let alone = with_presets(&[], &domains);
        let list = domains.iter().map(|d| format!("\"{d}\"")).collect::<Vec<_>>().join(", ");
        for presets in ["presets: []", "presets:", "presets: ~"] {
            let text = format!("{presets}\ndomains: [{list}]\n");
            let merged = check(&[Source::Yaml { name: "a.yaml".into(), text }]).unwrap();
            prop_assert_eq!(&merged.allowlist, &alone);
        }
    }

    #[test]
    fn normalization_keeps_what_each_host_may_do(
        entries in prop::collection::vec((name(), any::<bool>()), 1..30),
        hosts in prop::collection::vec(name(), 1..40),
    ) {
        let normalized = with_tunnels(&entries);
        for host in &hosts {
            // The unnormalized meaning: opaque if any listed opaque name covers the host.
            let under = |n: &String| host == n || host.ends_with(&format!(".{n}"));
            let raw = match entries.iter().filter(|(n, _)| under(n)).map(|&(_, o)| o).max() {
                None => None,
                Some(true) => Some(Tunnel::Opaque),
                Some(false) => Some(Tunnel::Tls),
            };
            prop_assert_eq!(normalized.tunnel(host), raw, "host {}", host);
            prop_assert_eq!(normalized.tunnel(&format!("{}.", host.to_uppercase())), raw);
        }
        // The renderers' lists never overlap within themselves.
        for list in [normalized.domains().collect::<Vec<_>>(), normalized.opaque_domains().collect()] {
            for a in &list {
                for b in &list {
                    prop_assert!(a == b || !a.covers(b), "{} covers {}", a, b);
                }
            }
        }
        // Every allowed host is under a name of `domains()`.
        for host in &hosts {
            let under = normalized.domains().any(|d| host == d.as_str() || host.ends_with(&format!(".{d}")));
            prop_assert_eq!(normalized.allows(host), under, "host {}", host);
        }
    }

    #[test]
    fn normalization_with_tunnels_is_idempotent_and_ignores_order(
        entries in prop::collection::vec((name(), any::<bool>()), 0..30),
    ) {
        let once = with_tunnels(&entries);
        let again: Vec<(String, bool)> = tunnels_of(&once)
            .into_iter()
            .map(|(n, t)| (n, t == Tunnel::Opaque))
            .collect();
        prop_assert_eq!(tunnels_of(&with_tunnels(&again)), tunnels_of(&once));
        let mut reversed = entries.clone();
        reversed.reverse();
        prop_assert_eq!(tunnels_of(&with_tunnels(&reversed)), tunnels_of(&once));
    }

    #[test]
    fn normalization_is_idempotent(names in prop::collection::vec(spelling(), 0..30)) {
        let once = names_of(&allowlist(&names));
        let twice = names_of(&allowlist(&once));
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn normalization_ignores_order(names in prop::collection::vec(spelling(), 0..30), seed in any::<u64>()) {
        let mut shuffled = names.clone();
        // A deterministic shuffle driven by the seed.
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(names_of(&allowlist(&names)), names_of(&allowlist(&shuffled)));
    }

    #[test]
    fn dropping_covered_entries_keeps_the_allowed_set(
        names in prop::collection::vec(name(), 1..30),
        hosts in prop::collection::vec(name(), 1..40),
    ) {
        let normalized = allowlist(&names);
        for host in &hosts {
            // The unnormalized meaning: some listed name is the host or a parent of it.
            let raw = names.iter().any(|n| host == n || host.ends_with(&format!(".{n}")));
            prop_assert_eq!(normalized.allows(host), raw, "host {}", host);
            prop_assert_eq!(normalized.allows(&format!("{}.", host.to_uppercase())), raw);
        }
        // And no entry of the result covers another.
        let domains: Vec<&Domain> = normalized.domains().collect();
        for a in &domains {
            for b in &domains {
                prop_assert!(a == b || !a.covers(b), "{} covers {}", a, b);
            }
        }
    }

    #[test]
    fn merging_with_an_empty_source_is_the_identity(names in prop::collection::vec(spelling(), 0..20)) {
        let alone = check(&[Source::Code(names.clone())]).unwrap();
        for empty in [
            Source::Code(vec![]),
            Source::List { var: "SAFE_AI_DEFAULT_DOMAINS".into(), value: " , ,".into() },
            Source::Yaml { name: "empty.yaml".into(), text: "domains: []".into() },
        ] {
            let merged = check(&[Source::Code(names.clone()), empty.clone()]).unwrap();
            prop_assert_eq!(&merged.allowlist, &alone.allowlist);
            let merged = check(&[empty, Source::Code(names.clone())]).unwrap();
            prop_assert_eq!(&merged.allowlist, &alone.allowlist);
        }
    }

    #[test]
    fn accepted_domains_obey_the_label_rules(input in "[a-zA-Z0-9.*_:/ -]{1,80}|\\PC{1,40}") {
        if let Ok(v) = Domain::parse(&input) {
            let d = v.domain.as_str();
            prop_assert!(d.len() <= 253);
            prop_assert!(d.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'), "{:?}", d);
            let labels: Vec<&str> = d.split('.').collect();
            prop_assert!(labels.len() >= 2, "{:?}", d);
            for l in labels {
                prop_assert!(!l.is_empty() && l.len() <= 63, "{:?}", d);
                prop_assert!(!l.starts_with('-') && !l.ends_with('-'), "{:?}", d);
            }
        }
    }

    #[test]
    fn no_string_panics(input in "\\PC{0,1024}|[\\x00-\\x7f]{0,4096}|(?s).{0,4096}") {
        let _ = Domain::parse(&input);
        let _ = check(&[Source::List { var: "V".into(), value: input.clone() }]);
        let _ = check(&[Source::Yaml { name: "f".into(), text: input.clone() }]);
        let _ = check(&[Source::Yaml { name: "f".into(), text: format!("domains: [{input}]") }]);
        let _ = check(&[Source::Yaml { name: "f".into(), text: format!("domains:\n  - {input}\n") }]);
    }
}

#[test]
fn allows_follows_squid_dstdomain() {
    let a = allowlist(&["github.com".into()]);
    assert!(a.allows("github.com"));
    assert!(a.allows("API.GitHub.COM."));
    assert!(a.allows("a.b.c.github.com"));
    assert!(!a.allows("evilgithub.com"));
    assert!(!a.allows("github.com.evil.test"));
    assert!(!a.allows("com"));
    assert!(!a.allows(""));
    assert!(!a.allows("."));
}

#[test]
fn code_origins_are_indexed() {
    let a = check(&[Source::Code(vec![
        "x.example.com".into(),
        "example.org".into(),
    ])])
    .unwrap();
    let origins: Vec<&Origin> = a.allowlist.entries().map(|e| e.origin).collect();
    assert_eq!(
        origins,
        [&Origin::Code { index: 1 }, &Origin::Code { index: 0 }]
    );
}
