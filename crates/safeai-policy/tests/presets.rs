//! Each preset's hosts, locked: a change to a list shows in review as a snapshot diff.

use safeai_policy::{Source, check, presets};

#[test]
fn every_preset_is_locked() {
    for p in presets::ALL {
        insta::assert_snapshot!(p.name, p.to_string());
    }
}

#[test]
fn a_preset_expands_to_its_hosts_with_its_name_as_origin() {
    for p in presets::ALL {
        let text = format!("presets: [{}]\n", p.name);
        let checked = check(&[Source::Yaml {
            name: "allowlist.yaml".into(),
            text,
        }])
        .unwrap();
        assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
        let entries: Vec<(String, String)> = checked
            .allowlist
            .entries()
            .map(|e| (e.domain.to_string(), e.origin.to_string()))
            .collect();
        let expected: Vec<(String, String)> = p
            .domains
            .iter()
            .map(|d| {
                (
                    d.to_string(),
                    format!("preset {} at allowlist.yaml:1:11", p.name),
                )
            })
            .collect();
        assert_eq!(entries, expected);
        assert!(
            checked
                .allowlist
                .entries()
                .all(|e| e.origin.preset() == Some(p.name))
        );
    }
}

#[test]
fn every_preset_together_gives_no_warning() {
    let names: Vec<&str> = presets::names().collect();
    let text = format!("presets:\n  - {}\n", names.join("\n  - "));
    let checked = check(&[Source::Yaml {
        name: "allowlist.yaml".into(),
        text,
    }])
    .unwrap();
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
    let total: usize = presets::ALL.iter().map(|p| p.domains.len()).sum();
    assert_eq!(checked.allowlist.len(), total);
}
