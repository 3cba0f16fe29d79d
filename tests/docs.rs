//! The committed man pages and completions must match the CLI definitions.
//! When this fails: `cargo run -- generate-docs .` and commit the result.

#[test]
fn committed_man_pages_and_completions_are_fresh() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = ownmail::cli::docs::render_all().unwrap();
    assert!(files.iter().any(|(p, _)| p == "man/ownmail-deliver.1"));
    let mut stale = Vec::new();
    for (rel, contents) in &files {
        match std::fs::read(root.join(rel)) {
            Ok(committed) if &committed == contents => {}
            _ => stale.push(rel.clone()),
        }
    }
    // No leftovers from renamed or removed subcommands either.
    for dir in ["man", "completions"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let rel = format!("{dir}/{}", entry.unwrap().file_name().to_string_lossy());
            if !files.iter().any(|(p, _)| *p == rel) {
                stale.push(format!("{rel} (no longer generated)"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale: {stale:?}; run `cargo run -- generate-docs .` and commit"
    );
    // Regression: clap_complete offers hidden subcommands too.
    let completions: Vec<_> = files
        .iter()
        .filter(|(p, _)| p.starts_with("completions/"))
        .collect();
    assert_eq!(completions.len(), 3, "bash, zsh and fish");
    for (rel, contents) in completions {
        let text = String::from_utf8_lossy(contents);
        assert!(
            !text.contains("generate-docs"),
            "{rel} offers generate-docs"
        );
        assert!(text.contains("convert-mbox"), "{rel} lost a subcommand");
    }
}

/// Regression: every subcommand's --config help said "(default: see
/// below)", and below there was nothing. It names the search order.
#[test]
fn the_config_option_says_what_its_default_is() {
    let files = ownmail::cli::docs::render_all().unwrap();
    for (rel, contents) in &files {
        let text = String::from_utf8_lossy(contents);
        assert!(!text.contains("see below"), "{rel}");
    }
    for sub in ["user", "deliver", "serve"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ownmail"))
            .args([sub, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        let config = help
            .lines()
            .skip_while(|l| !l.contains("--config"))
            .take(6)
            .collect::<Vec<_>>()
            .join(" ");
        for default in [
            "OWNMAIL_CONFIG",
            "./ownmail.yaml",
            "/etc/ownmail/ownmail.yaml",
        ] {
            assert!(config.contains(default), "{sub} --help: {config}");
        }
    }
}

/// Whether the completion script `text` for `shell` offers `flag` (`-o`,
/// `--long`) to the subcommand at `path` (`["sendmail"]`, `["queue",
/// "list"]`): read from the script's own section for that subcommand.
fn offers(shell: &str, text: &str, path: &[&str], flag: &str) -> bool {
    match shell {
        "bash" => {
            let mut cmd = "ownmail".to_owned();
            for name in path {
                cmd.push_str(&format!("__subcmd__{}", name.replace('-', "__subcmd__")));
            }
            let arm = format!("{cmd})");
            let mut lines = text.lines().skip_while(|l| l.trim() != arm);
            assert!(lines.next().is_some(), "bash: no section {arm}");
            lines
                .take_while(|l| !(l.starts_with("        ownmail") && l.ends_with(')')))
                .any(|l| {
                    let l = l.trim();
                    l == format!("{flag})")
                        || l.strip_prefix("opts=\"").is_some_and(|o| {
                            o.trim_end_matches('"')
                                .split_whitespace()
                                .any(|w| w == flag)
                        })
                })
        }
        "zsh" => {
            let name = path.last().unwrap();
            let lines: Vec<&str> = text.lines().collect();
            let mut found = false;
            let mut sections = 0;
            for (i, l) in lines.iter().enumerate() {
                if l.trim() != format!("({name})")
                    || !lines
                        .get(i + 1)
                        .is_some_and(|n| n.starts_with("_arguments"))
                {
                    continue;
                }
                sections += 1;
                for spec in lines[i + 1..]
                    .iter()
                    .take_while(|s| !s.contains("&& ret=0"))
                {
                    for before in ["'", "'*", ")"] {
                        for after in ["[", "+[", "=[", "=-[", "+'", "'"] {
                            found |= spec.contains(&format!("{before}{flag}{after}"));
                        }
                    }
                }
            }
            assert!(sections > 0, "zsh: no section ({name})");
            found
        }
        "fish" => {
            let condition = match path {
                [one] => vec![
                    format!("using_subcommand {one}\""),
                    format!("using_subcommand {one}; and not"),
                ],
                [one, two] => vec![format!(
                    "using_subcommand {one}; and __fish_seen_subcommand_from {two}\""
                )],
                _ => panic!("fish: extend offers() for {path:?}"),
            };
            let (kind, name) = match flag.strip_prefix("--") {
                Some(long) => (["-l", "-o"], long),
                None => (["-s", "-s"], &flag[1..]),
            };
            text.lines()
                .filter(|l| condition.iter().any(|c| l.contains(c.as_str())))
                .any(|l| {
                    let words: Vec<&str> = l.split_whitespace().collect();
                    words
                        .windows(2)
                        .any(|w| kind.contains(&w[0]) && w[1] == name)
                })
        }
        _ => unreachable!(),
    }
}

/// Every argument's flags: `-o`, `--long`, and their aliases.
fn flags(arg: &clap::Arg) -> Vec<String> {
    let mut out = Vec::new();
    for s in arg.get_short_and_visible_aliases().unwrap_or_default() {
        out.push(format!("-{s}"));
    }
    for s in arg.get_all_short_aliases().unwrap_or_default() {
        out.push(format!("-{s}"));
    }
    for l in arg.get_long_and_visible_aliases().unwrap_or_default() {
        out.push(format!("--{l}"));
    }
    for l in arg.get_all_aliases().unwrap_or_default() {
        out.push(format!("--{l}"));
    }
    out
}

/// Regression: the completions offered hidden arguments, e.g. sendmail's
/// ignored compatibility options (-o, -B, ...), as hidden subcommands
/// were once offered.
#[test]
fn the_completions_offer_no_hidden_argument() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            path.push(sub.get_name().to_owned());
            for arg in sub.get_arguments().filter(|a| a.is_hide_set()) {
                for flag in flags(arg) {
                    out.push((path.clone(), flag));
                }
            }
            walk(sub, path, out);
            path.pop();
        }
    }
    let mut cmd = ownmail::cli::Cli::command();
    cmd.build();
    let mut hidden = Vec::new();
    walk(&cmd, &mut Vec::new(), &mut hidden);
    assert!(
        hidden.iter().any(|(p, f)| p == &["sendmail"] && f == "-B"),
        "{hidden:?}"
    );
    let files = ownmail::cli::docs::render_all().unwrap();
    for (shell, rel) in [
        ("bash", "completions/ownmail.bash"),
        ("zsh", "completions/_ownmail"),
        ("fish", "completions/ownmail.fish"),
    ] {
        let text = String::from_utf8_lossy(&files.iter().find(|(p, _)| p == rel).unwrap().1);
        // The check sees what is offered: sendmail's visible -t and -F.
        for visible in ["-t", "-F"] {
            assert!(
                offers(shell, &text, &["sendmail"], visible),
                "{shell} {visible}"
            );
        }
        assert!(
            offers(shell, &text, &["queue", "list"], "--config"),
            "{shell}"
        );
        for (path, flag) in &hidden {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            assert!(
                !offers(shell, &text, &path, flag),
                "{rel} offers the hidden {flag} of {path:?}"
            );
        }
    }
}
