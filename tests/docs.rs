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
