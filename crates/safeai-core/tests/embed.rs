//! The embedding example is compiled and run here.

#[path = "../examples/embed.rs"]
mod embed;

#[test]
fn the_embedding_example_renders_squid_conf() {
    let conf = embed::squid_conf_for(&["github.com", "api.github.com", "pypi.org"]).unwrap();
    assert!(
        conf.contains("acl allowlist dstdomain .github.com .pypi.org\n"),
        "{conf}"
    );
    let rejected = embed::squid_conf_for(&["github.com\nhttp_access allow all"]).unwrap_err();
    assert_eq!(rejected.diagnostics[0].code(), "whitespace");
}
