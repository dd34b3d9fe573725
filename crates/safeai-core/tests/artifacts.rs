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

#[test]
fn the_error_pages() {
    let mut out = String::new();
    for (name, text) in safeai_core::render_error_pages() {
        out.push_str(&format!("==== {name} ====\n{text}"));
    }
    insta::assert_snapshot!(out);
}
