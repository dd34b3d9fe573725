//! Sources, positions, merging and the YAML edge cases.

use safeai_policy::{Env, Origin, Source, check, render};

fn yaml(text: &str) -> Source {
    Source::Yaml {
        name: "allowlist.yaml".into(),
        text: text.into(),
    }
}

fn list(value: &str) -> Source {
    Source::List {
        var: "SAFE_AI_DEFAULT_DOMAINS".into(),
        value: value.into(),
    }
}

fn origins_of_errors(sources: &[Source]) -> Vec<String> {
    check(sources)
        .unwrap_err()
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.origin.as_ref().unwrap().to_string())
        .collect()
}

#[test]
fn block_entries_point_at_their_line_and_column() {
    let text = "# comment\ndomains:\n  - github.com\n  - https://x.com/\n  -   'a b.com'\n";
    assert_eq!(
        origins_of_errors(&[yaml(text)]),
        ["allowlist.yaml:4:5", "allowlist.yaml:5:7"]
    );
}

#[test]
fn flow_entries_point_at_their_column() {
    assert_eq!(
        origins_of_errors(&[yaml("domains: [github.com, 10.0.0.1, \"x:1\"]\n")]),
        ["allowlist.yaml:1:23", "allowlist.yaml:1:33"]
    );
}

#[test]
fn nested_values_do_not_shift_positions() {
    let text = "domains:\n  - {a: [b, c]}\n  - [x]\n  - ok.com\n  - bad_name.com\n";
    assert_eq!(
        origins_of_errors(&[yaml(text)]),
        [
            // The map has no `domain`, and `a` is not a key an entry takes.
            "allowlist.yaml:2:5",
            "allowlist.yaml:2:6",
            "allowlist.yaml:3:5",
            "allowlist.yaml:5:5"
        ]
    );
}

#[test]
fn env_items_count_empty_items_and_are_trimmed() {
    let checked = check(&[list(" a.com , ,b.com,")]).unwrap();
    let origins: Vec<String> = checked
        .allowlist
        .entries()
        .map(|e| e.origin.to_string())
        .collect();
    assert_eq!(
        origins,
        ["SAFE_AI_DEFAULT_DOMAINS[0]", "SAFE_AI_DEFAULT_DOMAINS[2]"]
    );
    assert_eq!(
        origins_of_errors(&[list("a.com,,,x_y.com")]),
        ["SAFE_AI_DEFAULT_DOMAINS[3]"]
    );
}

#[test]
fn sources_merge_and_the_first_listing_wins() {
    let checked = check(&[yaml("domains: [github.com]"), list("github.com,pypi.org")]).unwrap();
    let got: Vec<String> = checked
        .allowlist
        .entries()
        .map(|e| format!("{} {}", e.domain, e.origin))
        .collect();
    assert_eq!(
        got,
        [
            "github.com allowlist.yaml:1:11",
            "pypi.org SAFE_AI_DEFAULT_DOMAINS[1]"
        ]
    );
    assert_eq!(checked.diagnostics[0].code(), "duplicate");
}

#[test]
fn covered_entries_are_dropped_in_either_order() {
    for text in [
        "domains: [github.com, api.github.com]",
        "domains: [api.github.com, github.com]",
    ] {
        let checked = check(&[yaml(text)]).unwrap();
        let names: Vec<&str> = checked.allowlist.domains().map(|d| d.as_str()).collect();
        assert_eq!(names, ["github.com"], "{text}");
        assert_eq!(checked.diagnostics[0].code(), "covered");
    }
}

#[test]
fn explicit_missing_file_is_an_error_default_missing_is_a_warning() {
    let dir = std::env::temp_dir().join(format!("safeai-policy-missing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let default = Source::standard(&Env::default(), None, &dir);
    let checked = check(&default).unwrap();
    let codes: Vec<&str> = checked.diagnostics.iter().map(|d| d.code()).collect();
    assert_eq!(codes, ["default-file-missing", "empty-allowlist"]);

    let env = Env {
        allowlist: Some(dir.join("nope.yaml").display().to_string()),
        default_domains: Some("github.com".into()),
    };
    let rejected = check(&Source::standard(&env, None, &dir)).unwrap_err();
    assert_eq!(rejected.diagnostics[0].code(), "file-not-found");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_flag_beats_the_variable_which_beats_the_default() {
    let env = Env {
        allowlist: Some("from-env.yaml".into()),
        default_domains: None,
    };
    let dir = std::path::Path::new("/d");
    let flag = std::path::Path::new("from-flag.yaml");
    assert_eq!(
        Source::standard(&env, Some(flag), dir),
        [Source::File {
            path: flag.into(),
            required: true
        }]
    );
    assert_eq!(
        Source::standard(&env, None, dir),
        [Source::File {
            path: "from-env.yaml".into(),
            required: true
        }]
    );
    assert_eq!(
        Source::standard(&Env::default(), None, dir),
        [Source::File {
            path: "/d/allowlist.yaml".into(),
            required: false
        }]
    );
}

#[test]
fn empty_file_and_null_domains_mean_an_empty_list() {
    for text in ["", "# nothing yet\n", "domains:\n", "domains: []\n"] {
        let checked = check(&[yaml(text)]).unwrap();
        assert!(checked.allowlist.is_empty(), "{text:?}");
        assert_eq!(
            checked.diagnostics.last().unwrap().code(),
            "empty-allowlist"
        );
    }
}

#[test]
fn unknown_keys_and_wrong_shapes_are_errors() {
    let r = check(&[yaml("domain: [github.com]\n")]).unwrap_err();
    assert_eq!(r.diagnostics[0].code(), "yaml");
    assert!(
        r.diagnostics[0]
            .message()
            .contains("unknown field `domain`")
    );
    let r = check(&[yaml("domains: github.com\n")]).unwrap_err();
    assert_eq!(r.diagnostics[0].code(), "wrong-shape");
    assert_eq!(
        r.diagnostics[0].origin,
        Some(Origin::file_at("allowlist.yaml", 1, 10))
    );
}

#[test]
fn an_alias_bomb_is_not_expanded() {
    // Ten levels of ten-fold aliases: 10^10 nodes if expanded.
    let mut text = String::from("domains:\n  - &a [x,x,x,x,x,x,x,x,x,x]\n");
    let mut prev = 'a';
    for c in 'b'..='j' {
        let refs = vec![format!("*{prev}"); 10].join(",");
        text.push_str(&format!("  - &{c} [{refs}]\n"));
        prev = c;
    }
    let r = check(&[yaml(&text)]).unwrap_err();
    // The aliased lists are never expanded: each item is reported as a list, once.
    assert_eq!(r.diagnostics.len(), 10, "{}", render(&r.diagnostics));
    assert!(r.diagnostics.iter().all(|d| d.code() == "not-a-string"));
}

#[test]
fn deep_nesting_is_rejected_without_overflowing_the_stack() {
    let text = format!("domains: [{}{}]\n", "[".repeat(10_000), "]".repeat(10_000));
    let r = check(&[yaml(&text)]).unwrap_err();
    assert_eq!(r.diagnostics.len(), 1, "{}", render(&r.diagnostics));
    assert_eq!(
        r.diagnostics[0].code(),
        "not-a-string",
        "{}",
        render(&r.diagnostics)
    );
}

#[test]
fn a_newline_in_an_entry_is_rejected_and_shown_escaped() {
    let r = check(&[yaml("domains: [\"github.com\\nacl all src all\"]\n")]).unwrap_err();
    let shown = render(&r.diagnostics);
    assert!(shown.contains(r"github.com\nacl all src all"), "{shown}");
    assert_eq!(shown.lines().count(), 2, "{shown}");
}

#[test]
fn a_chain_of_covered_entries_names_the_broadest_parent() {
    let checked = check(&[yaml(
        "domains: [a.b.example.com, b.example.com, example.com]",
    )])
    .unwrap();
    let shown = render(&checked.diagnostics);
    assert_eq!(
        shown.matches("covered by `example.com`").count(),
        2,
        "{shown}"
    );
}

#[test]
fn a_key_given_twice_in_an_entry_is_an_error() {
    let r = check(&[yaml(
        "domains:\n  - {domain: a.example.com, tunnel: opaque, tunnel: tls}\n",
    )])
    .unwrap_err();
    let shown = render(&r.diagnostics);
    assert_eq!(r.diagnostics.len(), 1, "{shown}");
    assert_eq!(r.diagnostics[0].code(), "repeated-key", "{shown}");
    assert!(
        shown.starts_with("error: allowlist.yaml:2:45: `tunnel` is given twice"),
        "{shown}"
    );
}

/// `check` on `path` in a thread: the answer's error codes, or a failure after 10 s (the
/// old code read `/dev/zero` and blocked on a FIFO forever).
#[cfg(unix)]
fn codes_within_seconds(path: &std::path::Path) -> Vec<&'static str> {
    let path = path.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let source = Source::File {
            path,
            required: true,
        };
        let codes: Vec<&'static str> = match check(&[source]) {
            Ok(_) => vec!["accepted"],
            Err(r) => r.diagnostics.iter().map(|d| d.code()).collect(),
        };
        let _ = tx.send(codes);
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("check did not return within 10 s")
}

#[cfg(unix)]
#[test]
fn devices_pipes_and_directories_are_refused_without_reading() {
    assert_eq!(
        codes_within_seconds(std::path::Path::new("/dev/zero")),
        ["not-a-file"]
    );
    let dir = std::env::temp_dir().join(format!("safeai-policy-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("allowlist.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    assert_eq!(codes_within_seconds(&fifo), ["not-a-file"]);
    assert_eq!(codes_within_seconds(&dir), ["not-a-file"]);
    let message = check(&[Source::File {
        path: fifo,
        required: true,
    }])
    .unwrap_err()
    .to_string();
    assert!(
        message
            .contains("allowlist.yaml: the allowlist is a named pipe (FIFO), not a regular file"),
        "{message}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn terminal_escapes_in_keys_and_paths_are_shown_escaped() {
    let text = "domains: [github.com]\n\"\\e[31mred\\rx\": 1\n";
    let message = check(&[yaml(text)]).unwrap_err().to_string();
    assert!(
        !message.contains('\u{1b}') && !message.contains('\r'),
        "{message:?}"
    );
    assert!(message.contains("\\u{1b}[31mred\\rx"), "{message}");
    let path = std::path::PathBuf::from("no\u{1b}[2Jfile\n.yaml");
    let message = check(&[Source::File {
        path,
        required: true,
    }])
    .unwrap_err()
    .to_string();
    assert!(message.contains("no\\u{1b}[2Jfile\\n.yaml"), "{message}");
}
