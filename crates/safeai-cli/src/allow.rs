//! `safeai allow`: add domains to the allowlist file as text, so its comments and layout
//! stay as the user wrote them.

use std::path::Path;

use safeai_policy::{Domain, Origin, Source, check};

use crate::Failed;

/// Appends each domain not yet allowed after the last entry of the file (or starts the
/// list), validates the whole new file, and only then writes it, in place: the proxy
/// sees the file through a bind mount of its inode, which a rename would replace.
pub fn allow(domains: &[String], path: &Path) -> Result<(), Failed> {
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            eprintln!("error: cannot read {shown}: {e}");
            return Err(Failed);
        }
    };
    let current = check(&[Source::Yaml {
        name: shown.clone(),
        text: text.clone(),
    }])
    .map_err(|r| {
        eprintln!("{r}");
        Failed
    })?;

    let mut new = Vec::new();
    let mut bad = false;
    for d in domains {
        match Domain::parse(d) {
            Ok(v) if current.allowlist.allows(v.domain.as_str()) => {
                eprintln!("{} is already allowed", v.domain);
            }
            Ok(v) if !new.contains(&v.domain) => new.push(v.domain),
            Ok(_) => {}
            Err(errors) => {
                bad = true;
                for e in errors {
                    eprintln!("error: {e}\n  = hint: {}", e.hint());
                }
            }
        }
    }
    if bad {
        eprintln!("nothing was changed");
        return Err(Failed);
    }
    if new.is_empty() {
        return Ok(());
    }

    let last_entry = current
        .allowlist
        .entries()
        .filter_map(|e| match e.origin {
            Origin::File {
                position: Some(p), ..
            } => Some(p.line),
            _ => None,
        })
        .max();
    let edited = insert(&text, last_entry, &new).ok_or_else(|| {
        eprintln!(
            "error: {shown}: `domains` is written as a flow list ([a, b]); add {} by hand",
            new.iter()
                .map(Domain::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        );
        Failed
    })?;
    // The edited file must pass the same check as any other before it replaces the old.
    if let Err(r) = check(&[Source::Yaml {
        name: shown.clone(),
        text: edited.clone(),
    }]) {
        eprintln!("{r}");
        return Err(Failed);
    }
    std::fs::write(path, edited).map_err(|e| {
        eprintln!("error: cannot write {shown}: {e}");
        Failed
    })?;
    for d in &new {
        eprintln!("added {d} to {shown}");
    }
    Ok(())
}

/// The text with one `- domain` line per new domain after the entry starting on line
/// `after` (1-based, the last entry; a map entry may go on over more lines), indented like it; or a new `domains:` list when the file has no entries.
/// `None` for a flow-style list, which cannot be extended line by line.
fn insert(text: &str, after: Option<usize>, new: &[Domain]) -> Option<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    match after {
        Some(line) => {
            let entry = lines.get(line - 1)?;
            let dash = entry.find("- ")?;
            if entry.trim_start().starts_with("domains:") || entry.contains('[') {
                return None;
            }
            let indent = entry[..dash].to_owned();
            // An entry written as a block map goes on over the lines indented past its dash.
            let end = line
                + lines[line..]
                    .iter()
                    .take_while(|l| {
                        let depth = l.len() - l.trim_start().len();
                        !l.trim().is_empty() && depth > dash
                    })
                    .count();
            let added = new.iter().map(|d| format!("{indent}- {d}"));
            let tail = lines.split_off(end);
            lines.extend(added);
            lines.extend(tail);
        }
        None => {
            // No entries: drop an empty `domains:` / `domains: []` line, then start the list.
            lines.retain(|l| {
                let t = l.trim();
                !(t == "domains:" || t == "domains: []" || t.starts_with("domains: [] "))
            });
            lines.push("domains:".into());
            lines.extend(new.iter().map(|d| format!("  - {d}")));
        }
    }
    Some(lines.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Domain {
        Domain::parse(s).unwrap().domain
    }

    #[test]
    fn inserts_after_the_last_entry_keeping_comments() {
        let text = "# top\ndomains:\n  # tools\n  - github.com  # code\n\n# trailing comment\n";
        let out = insert(text, Some(4), &[d("pypi.org")]).unwrap();
        assert_eq!(
            out,
            "# top\ndomains:\n  # tools\n  - github.com  # code\n  - pypi.org\n\n# trailing comment\n"
        );
    }

    #[test]
    fn starts_a_list_when_there_is_none() {
        assert_eq!(
            insert("# c\ndomains: []\n", None, &[d("a.com")]).unwrap(),
            "# c\ndomains:\n  - a.com\n"
        );
        assert_eq!(
            insert("", None, &[d("a.com")]).unwrap(),
            "domains:\n  - a.com\n"
        );
    }

    #[test]
    fn inserts_after_a_map_entry_and_its_option_lines() {
        let text = "domains:\n  - domain: ssh.github.com\n    tunnel: opaque\n# end\n";
        assert_eq!(
            insert(text, Some(2), &[d("pypi.org")]).unwrap(),
            "domains:\n  - domain: ssh.github.com\n    tunnel: opaque\n  - pypi.org\n# end\n"
        );
        let text = "domains:\n  - {domain: ssh.github.com, tunnel: opaque}\n";
        assert_eq!(
            insert(text, Some(2), &[d("pypi.org")]).unwrap(),
            "domains:\n  - {domain: ssh.github.com, tunnel: opaque}\n  - pypi.org\n"
        );
    }

    #[test]
    fn refuses_a_flow_list() {
        assert!(insert("domains: [a.com]\n", Some(1), &[d("b.com")]).is_none());
    }
}
