//! One snapshot per valid fixture: every artifact, joined under `==== name ====` headers.
//!
//! Its own test binary: insta's `glob!` failure collector is process-global.

mod common;

#[test]
fn every_artifact_of_every_valid_fixture() {
    insta::glob!("../../../fixtures", "valid/*/allowlist.yaml", |path| {
        let mut out = String::new();
        for (name, text) in common::artifacts(path.parent().unwrap(), |_| {}) {
            out.push_str(&format!("==== {name} ====\n{text}"));
        }
        insta::assert_snapshot!(out);
    });
}

/// Every reason's page, and the page of each ruled host (the fixture with rules).
#[test]
fn the_error_pages() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/valid/rules-and-credentials");
    let plan = safeai_core::tls_plan(&Default::default(), &common::allowlist(&fixture));
    let mut out = String::new();
    for (name, text) in safeai_core::render_error_pages(&plan) {
        out.push_str(&format!("==== {name} ====\n{text}"));
    }
    insta::assert_snapshot!(out);
}
