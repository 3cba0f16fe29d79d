//! The `ownmail` binary: parse the command line, run, turn the result into
//! a sysexits code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use ownmail::cli::{Cli, GlobalArgs};
use ownmail::error::sysexits;

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
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                sysexits::USAGE
            } else {
                sysexits::OK
            });
        }
    };
    init_logging(&cli.global);
    match ownmail::cmd::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, naming the reason: MTAs put it in the bounce or the log.
            eprintln!("ownmail: {e:#}");
            ExitCode::from(ownmail::cmd::exit_code(&e))
        }
    }
}

/// `ownmail user list | head -1` is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging(global: &GlobalArgs) {
    use tracing_subscriber::filter::LevelFilter;
    let level = match (global.quiet, global.verbose) {
        (q, _) if q >= 2 => LevelFilter::OFF,
        (1, _) => LevelFilter::ERROR,
        (_, 0) => LevelFilter::WARN,
        (_, 1) => LevelFilter::INFO,
        (_, 2) => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    // RUST_LOG, when set, refines per module; otherwise the plain level
    // filter avoids building an EnvFilter on every start (deliver runs once
    // per message).
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false);
    match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => builder
            .with_env_filter(tracing_subscriber::EnvFilter::new(spec))
            .init(),
        _ => builder.with_max_level(level).init(),
    }
}
