//! Embedding safe-ai: build an allowlist in code and render squid.conf, no YAML, no CLI.
//!
//! `cargo run -p safeai-core --example embed`

use safeai_core::{ProxySettings, render_squid};
use safeai_policy::{Source, check};

/// The example's work, separate from printing so the tests can run it.
pub fn squid_conf_for(domains: &[&str]) -> Result<String, safeai_policy::Rejected> {
    let sources = [Source::Code(
        domains.iter().map(|d| d.to_string()).collect(),
    )];
    let checked = check(&sources)?;
    Ok(render_squid(&ProxySettings::default(), &checked.allowlist))
}

#[allow(dead_code, clippy::print_stdout, clippy::print_stderr)]
fn main() {
    match squid_conf_for(&["github.com", "api.github.com", "pypi.org"]) {
        Ok(conf) => print!("{conf}"),
        Err(rejected) => {
            eprintln!("{rejected}");
            std::process::exit(1);
        }
    }
}
