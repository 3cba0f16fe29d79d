//! `ownmail-spamcheck`: `ownmail spamcheck` for mail pipes that start one
//! process per message. It calls the same code; only the command line is
//! smaller, so the binary does not link the TLS libraries, whose loading
//! was most of a check's time ([`ownmail::cli::SpamcheckCli`]).

use std::process::ExitCode;

use clap::Parser;
use ownmail::cli::SpamcheckCli;

fn main() -> ExitCode {
    let cli = match SpamcheckCli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return ownmail::cmd::usage_exit(&e),
    };
    ownmail::cmd::init_logging(&cli.global);
    ownmail::cmd::exit(ownmail::cmd::run_spamcheck(cli))
}
