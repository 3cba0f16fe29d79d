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
        clap_complete::generate(
            shell,
            &mut without_hidden(Cli::command()),
            "ownmail",
            &mut out,
        );
        files.push((format!("completions/{name}"), out));
    }
    Ok(files)
}

/// `cmd` without its hidden subcommands, at every level: clap_complete
/// offers every subcommand it is given, `hide = true` or not, and clap
/// cannot remove one. A level with a hidden subcommand is rebuilt from its
/// parts (what completions read: names, help, arguments, groups, version);
/// the others are kept as they are.
fn without_hidden(cmd: clap::Command) -> clap::Command {
    let cmd = cmd.mut_subcommands(without_hidden);
    if !cmd.get_subcommands().any(|s| s.is_hide_set()) {
        return cmd;
    }
    let mut out = clap::Command::new(cmd.get_name().to_owned())
        .propagate_version(cmd.is_propagate_version_set())
        .subcommand_required(cmd.is_subcommand_required_set())
        .arg_required_else_help(cmd.is_arg_required_else_help_set())
        .disable_help_subcommand(cmd.is_disable_help_subcommand_set())
        .disable_help_flag(cmd.is_disable_help_flag_set())
        .disable_version_flag(cmd.is_disable_version_flag_set())
        .hide(cmd.is_hide_set());
    if let Some(v) = cmd.get_version() {
        out = out.version(v.to_owned());
    }
    if let Some(v) = cmd.get_long_version() {
        out = out.long_version(v.to_owned());
    }
    if let Some(a) = cmd.get_about() {
        out = out.about(a.clone());
    }
    if let Some(a) = cmd.get_long_about() {
        out = out.long_about(a.clone());
    }
    if let Some(a) = cmd.get_after_help() {
        out = out.after_help(a.clone());
    }
    out = out
        .args(cmd.get_arguments().cloned())
        .groups(cmd.get_groups().cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    out
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
