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
