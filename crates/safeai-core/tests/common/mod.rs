//! Shared by the core's test binaries: a fixture directory turned into artifacts.

use std::path::Path;

use safeai_core::{Artifacts, ProxySettings, Stack, render_all};
use safeai_policy::{Allowlist, Source, check};

/// The artifacts of the fixture in `dir`: `allowlist.yaml`, `default-domains` as
/// `SAFE_AI_DEFAULT_DOMAINS`, and `proxy.env` (KEY=VALUE lines) as the proxy's environment.
/// `tweak` adjusts the proxy's settings (the tool checks point the runtime directory and
/// the CA at files they wrote).
pub fn artifacts(dir: &Path, tweak: impl FnOnce(&mut ProxySettings)) -> Artifacts {
    let allowlist = allowlist(dir);
    let env = std::fs::read_to_string(dir.join("proxy.env")).unwrap_or_default();
    let lookup = |key: &str| {
        env.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_owned())
    };
    let mut settings = ProxySettings::default().with_env(lookup).unwrap();
    tweak(&mut settings);
    let stack = Stack {
        proxy_settings: settings,
        ..Stack::default()
    };
    render_all(&stack, &allowlist)
}

/// The allowlist of the fixture in `dir`.
#[allow(dead_code)] // Not every test binary uses both.
pub fn allowlist(dir: &Path) -> Allowlist {
    let mut sources = vec![Source::Yaml {
        name: "allowlist.yaml".into(),
        text: std::fs::read_to_string(dir.join("allowlist.yaml")).unwrap(),
    }];
    if let Ok(value) = std::fs::read_to_string(dir.join("default-domains")) {
        sources.push(Source::List {
            var: "SAFE_AI_DEFAULT_DOMAINS".into(),
            value: value.trim_end_matches('\n').into(),
        });
    }
    check(&sources)
        .unwrap_or_else(|r| panic!("{}: {r}", dir.display()))
        .allowlist
}
