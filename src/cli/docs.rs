//! Man pages and shell completions, generated from the clap definitions and
//! committed under `man/` and `completions/`. `tests/docs.rs` fails when the
//! committed files are stale; `ownmail generate-docs .` refreshes them.

use std::io;
use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// Every generated file: (path relative to the project folder, contents).
pub fn render_all() -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let mut cmd = Cli::command();
    cmd.build();
    man_pages(&cmd, "ownmail", &mut files)?;
    for (shell, name) in [
        (Shell::Bash, "ownmail.bash"),
        (Shell::Zsh, "_ownmail"),
        (Shell::Fish, "ownmail.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "ownmail", &mut out);
        files.push((format!("completions/{name}"), out));
    }
    Ok(files)
}

/// Writes every generated file below `dir`.
pub fn write_all(dir: &Path) -> io::Result<Vec<String>> {
    let mut written = Vec::new();
    for (rel, contents) in render_all()? {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, contents)?;
        written.push(rel);
    }
    Ok(written)
}

fn man_pages(
    cmd: &clap::Command,
    name: &str,
    files: &mut Vec<(String, Vec<u8>)>,
) -> io::Result<()> {
    let mut out = Vec::new();
    // A fixed date keeps the pages reproducible (no "generated on" churn).
    let page = clap_mangen::Man::new(cmd.clone().name(name.to_owned()))
        .title(name.to_uppercase())
        .date("2026");
    page.render(&mut out)?;
    files.push((format!("man/{name}.1"), out));
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        man_pages(sub, &format!("{name}-{}", sub.get_name()), files)?;
    }
    Ok(())
}
