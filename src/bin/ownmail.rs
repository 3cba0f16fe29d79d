//! The `ownmail` binary: parse the command line, run, turn the result into
//! a sysexits code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use ownmail::cli::Cli;

fn main() -> ExitCode {
    // Called as `sendmail` (a symlink): the sendmail interface, with
    // sendmail's own -q.
    let args = ownmail::cli::sendmail_argv(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return ownmail::cmd::usage_exit(&e),
    };
    ownmail::cmd::init_logging(&cli.global);
    ownmail::cmd::exit(ownmail::cmd::run(cli))
}
