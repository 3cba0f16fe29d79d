//! The `ownmail` binary: parse the command line, run, turn the result into
//! a sysexits code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use ownmail::cli::Cli;

fn main() -> ExitCode {
    // Called as `sendmail` (a symlink): the sendmail interface.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let called = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_os_string());
    if called.is_some_and(|n| n == "sendmail") {
        args.insert(1, "sendmail".into());
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return ownmail::cmd::usage_exit(&e),
    };
    ownmail::cmd::init_logging(&cli.global);
    ownmail::cmd::exit(ownmail::cmd::run(cli))
}
