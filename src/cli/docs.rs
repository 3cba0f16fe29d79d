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

/// `cmd` without its hidden subcommands and hidden arguments, at every
/// level: clap_complete offers every subcommand and argument it is given,
/// `hide = true` or not, and clap cannot remove one. A level with a hidden
/// subcommand or argument is rebuilt from its parts (what completions read:
/// names, help, arguments, groups, version); the others are kept as they
/// are.
fn without_hidden(cmd: clap::Command) -> clap::Command {
    let cmd = cmd.mut_subcommands(without_hidden);
    if !cmd.get_subcommands().any(|s| s.is_hide_set())
        && !cmd.get_arguments().any(|a| a.is_hide_set())
    {
        return cmd;
    }
    let mut out = clap::Command::new(cmd.get_name().to_owned())
        .propagate_version(cmd.is_propagate_version_set())
        .subcommand_required(cmd.is_subcommand_required_set())
        .arg_required_else_help(cmd.is_arg_required_else_help_set())
        .disable_help_subcommand(cmd.is_disable_help_subcommand_set())
        .disable_help_flag(cmd.is_disable_help_flag_set())
        .hide(cmd.is_hide_set());
    // clap calls the flag disabled where the level has no version of its
    // own yet: a subcommand's comes from its parent's propagate_version,
    // when the whole command is built.
    let own_version = cmd.get_version().is_some() || cmd.get_long_version().is_some();
    if own_version && cmd.is_disable_version_flag_set() {
        out = out.disable_version_flag(true);
    }
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
    let hidden: Vec<&clap::Id> = cmd
        .get_arguments()
        .filter(|a| a.is_hide_set())
        .map(|a| a.get_id())
        .collect();
    // An argument's conflicts may name a hidden argument, or a group
    // holding one, which clap refuses once they are gone: each keeps its
    // conflicts with the visible arguments (a group's spelt out), which
    // is all zsh reads of them.
    let args = cmd.get_arguments().filter(|a| !a.is_hide_set()).map(|a| {
        let conflicts: Vec<clap::Id> = cmd
            .get_arg_conflicts_with(a)
            .into_iter()
            .filter(|c| !c.is_hide_set())
            .map(|c| c.get_id().clone())
            .collect();
        a.clone()
            .conflicts_with(clap::builder::Resettable::Reset)
            .conflicts_with_all(conflicts)
    });
    // A group keeps its visible members (clap derive makes one of every
    // Args struct, holding all its fields); one left empty is dropped.
    let groups = cmd.get_groups().filter_map(|g| {
        let members: Vec<clap::Id> = g
            .get_args()
            .filter(|id| !hidden.contains(id))
            .cloned()
            .collect();
        (!members.is_empty()).then(|| {
            g.clone()
                .arg(clap::builder::Resettable::Reset)
                .args(members)
        })
    });
    out = out
        .args(args)
        .groups(groups)
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction, ArgGroup, Command};

    fn flag(name: &str) -> Arg {
        Arg::new(name.to_owned())
            .long(name.to_owned())
            .action(ArgAction::SetTrue)
    }

    fn ids<'a>(args: impl IntoIterator<Item = &'a Arg>) -> Vec<String> {
        args.into_iter().map(|a| a.get_id().to_string()).collect()
    }

    #[test]
    fn hidden_arguments_go_and_groups_and_conflicts_keep_the_rest() {
        let cmd = Command::new("t")
            .version("1")
            .propagate_version(true)
            .subcommand(
                Command::new("s")
                    .arg(flag("aa").conflicts_with("hid").conflicts_with("bb"))
                    .arg(flag("bb"))
                    .arg(flag("cc").conflicts_with("g"))
                    .arg(flag("hid").hide(true).conflicts_with("cc"))
                    .arg(flag("alone").hide(true))
                    .group(ArgGroup::new("g").args(["bb", "hid"]).multiple(true))
                    .group(ArgGroup::new("h").arg("alone")),
            );
        let mut out = without_hidden(cmd);
        // clap's own checks: no group or conflict names a missing argument.
        out.build();
        let s = out.find_subcommand("s").unwrap();
        assert_eq!(
            ids(s.get_arguments()),
            ["aa", "bb", "cc", "help", "version"]
        );
        let groups: Vec<(String, Vec<String>)> = s
            .get_groups()
            .map(|g| {
                let args = g.get_args().map(|a| a.to_string()).collect();
                (g.get_id().to_string(), args)
            })
            .collect();
        assert_eq!(groups, [("g".to_owned(), vec!["bb".to_owned()])]);
        let conflicts = |name: &str| {
            let arg = s.get_arguments().find(|a| a.get_id() == name).unwrap();
            ids(s.get_arg_conflicts_with(arg))
        };
        assert_eq!(conflicts("aa"), ["bb"]);
        assert_eq!(conflicts("cc"), ["bb"]);
        // The zsh completion still says they exclude each other.
        let mut zsh = Vec::new();
        clap_complete::generate(Shell::Zsh, &mut out, "t", &mut zsh);
        let zsh = String::from_utf8(zsh).unwrap();
        assert!(zsh.contains("'(--bb)--aa["), "{zsh}");
        assert!(!zsh.contains("--hid") && !zsh.contains("--alone"), "{zsh}");
    }
}
