//! `safeai presets [NAME]`: the maintained host lists that the allowlist's `presets:` key
//! names, as safeai-policy holds them.

use safeai_policy::{Error, presets};

use crate::{Failed, print};

pub const AFTER_HELP: &str = "\
Name presets in the allowlist file, beside or instead of domains:
  presets: [github, npm, pypi]
Each host stands for itself and its subdomains, as a domain entry does; `safeai check`
shows the preset as the origin of each.

Exit codes:
  0  success
  1  no preset has that name (the known ones are listed)
  2  usage error";

/// Prints one preset, or every one.
pub fn run(name: Option<&str>) -> Result<(), Failed> {
    match name {
        None => {
            let all: Vec<String> = presets::ALL.iter().map(ToString::to_string).collect();
            print(&all.join("\n"))
        }
        Some(name) => match presets::get(name) {
            Some(preset) => print(&preset.to_string()),
            None => {
                let e = Error::UnknownPreset {
                    name: name.to_owned(),
                    suggestion: presets::suggest(name),
                };
                eprintln!("error: {e}\n  = hint: {}", e.hint());
                Err(Failed)
            }
        },
    }
}
