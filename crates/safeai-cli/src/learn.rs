//! `safeai learn`: the denials seen since a time (or since the last `learn --apply`),
//! proposed as entries of the allowlist file and printed as a diff of it; `--apply` makes
//! the change through `safeai allow` (validated, comments kept) and reloads the proxy.
//! The proposal itself is `safeai_log::learn`.

use std::path::Path;

use safeai_log::{Timestamp, learn::propose};
use safeai_policy::{Domain, add_domains, presets};

use crate::logs::{self, Filter};
use crate::{AllowlistArgs, Failed, Format};

/// What `learn` was asked.
#[derive(Debug)]
pub struct Learn {
    /// Where the events come from.
    pub from: logs::From,
    /// `--since`, else the mark of the last `--apply`, else every event.
    pub since: Option<Timestamp>,
    /// Make the change.
    pub apply: bool,
    /// Edit the file only.
    pub no_reload: bool,
    /// Output format of the proposal.
    pub format: Format,
    /// The allowlist.
    pub allowlist: AllowlistArgs,
}

fn read_mark(path: &Path) -> Option<Timestamp> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Runs `learn`.
pub fn learn(args: &Learn) -> Result<(), Failed> {
    let file = crate::allowlist_path(&args.allowlist);
    let mark = logs::learn_mark(&file);
    let since = args.since.or_else(|| read_mark(&mark));
    let events = logs::read(&args.from)?;
    let filter = Filter {
        denied: true,
        since,
    };
    let seen: Vec<_> = events.iter().filter(|e| filter.keeps(e)).collect();
    let checked = crate::load(&args.allowlist)?;
    let proposal = propose(seen.iter().copied(), &checked.allowlist, presets::covering);

    match args.format {
        Format::Json => crate::print(&format!("{:#}\n", serde_json::json!(proposal)))?,
        Format::Text => {
            if let Some(t) = since {
                eprintln!("denials since {}", t.short());
            }
            crate::print(&proposal.to_text())?;
        }
    }
    let domains: Vec<Domain> = proposal.domains();
    if domains.is_empty() {
        return Ok(());
    }
    if args.format == Format::Text {
        print_diff(&file, &domains)?;
    }
    if !args.apply {
        eprintln!("nothing was changed: run `safeai learn --apply` to make this change");
        return Ok(());
    }
    let names: Vec<String> = domains.iter().map(|d| d.as_str().to_owned()).collect();
    crate::allow::allow(&names, &file)?;
    // The next `learn` starts after the newest denial this one saw.
    let upto = seen
        .iter()
        .map(|e| e.time)
        .max()
        .unwrap_or_else(Timestamp::now);
    if let Err(e) = std::fs::write(&mark, format!("{}\n", Timestamp(upto.millis() + 1))) {
        eprintln!("warning: cannot write {}: {e}", mark.display());
    }
    if args.no_reload {
        Ok(())
    } else {
        crate::reload(&file)
    }
}

/// The change as a unified diff of the allowlist file.
fn print_diff(file: &Path, domains: &[Domain]) -> Result<(), Failed> {
    let shown = file.display().to_string();
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            eprintln!("error: cannot read {shown}: {e}");
            return Err(Failed);
        }
    };
    let edited = add_domains(&shown, &text, domains).map_err(|e| {
        eprintln!("error: {shown}: {e}");
        Failed
    })?;
    let diff = similar::TextDiff::from_lines(&text, &edited);
    crate::print(&format!(
        "\n{}",
        diff.unified_diff()
            .header(&format!("a/{shown}"), &format!("b/{shown}"))
    ))
}
