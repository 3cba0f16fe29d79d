//! One file per subcommand: resolve the arguments and the configuration,
//! call the library, report. No logic a library test would need lives here.
//! `anyhow` is allowed here and in the binary only.

/// A line for the person running the command, on stderr. A stderr that is
/// gone (a closed pipe, a full disk) must neither stop the work nor panic,
/// as `eprintln!` would: the line is dropped, as tracing drops its own.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// A line of the command's output, on stdout, as an `io::Result`: where
/// `println!` would panic when the reader has gone (`| head`), this gives
/// the error back, and [`exit`] takes a broken pipe as the reader's choice.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!($crate::cmd::stdout(), $($arg)*)
    }};
}

mod check_config;
mod convert_mbox;
mod deliver;
mod fetch;
mod queue;
mod sendmail;
mod serve;
mod serve_imap;
mod serve_smtp;
mod spamcheck;
mod tunnel;
mod user;

use anyhow::Context;

use crate::auth::{UserName, Users};
use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::{Config, ConfigError, SearchPath};
use crate::error::{ExitStatus, sysexits};

/// Runs a parsed command line; the `Ok` value is the exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Deliver(args) => deliver::run(&cli.global, args),
        Command::User(args) => user::run(&cli.global, args),
        Command::CheckConfig(_) => check_config::run(&cli.global),
        Command::ConvertMbox(args) => convert_mbox::run(&cli.global, args),
        Command::Fetch(args) => fetch::run(&cli.global, args),
        Command::Spamcheck(args) => spamcheck::run(&cli.global, args),
        Command::Tunnel(args) => tunnel::run(&cli.global, args),
        Command::ServeImap(args) => serve_imap::run(&cli.global, args),
        Command::Serve(args) => serve::run(&cli.global, args),
        Command::ServeSmtp(args) => serve_smtp::run(&cli.global, args),
        Command::Queue(args) => queue::run(&cli.global, args),
        Command::Sendmail(args) => sendmail::run(&cli.global, args),
        Command::GenerateDocs { dir } => {
            for file in crate::cli::docs::write_all(&dir)
                .with_context(|| format!("writing into {}", dir.display()))?
            {
                out!("{file}")?;
            }
            Ok(sysexits::OK)
        }
    }
}

/// The tokio runtime a command runs in: `workers` threads, or one per core.
fn runtime(workers: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        b.worker_threads(n);
    }
    b.enable_all().build().context("starting the runtime")
}

/// A command line clap refused (or `--help`, `--version`): its message and
/// exit code 64, or 0 for help and version.
pub fn usage_exit(e: &clap::Error) -> std::process::ExitCode {
    let _ = e.print();
    std::process::ExitCode::from(if e.use_stderr() {
        sysexits::USAGE
    } else {
        sysexits::OK
    })
}

/// The end of `main`: the exit code, or the error on one
/// line (MTAs put it in the bounce or the log) and its sysexits code.
pub fn exit(result: anyhow::Result<u8>) -> std::process::ExitCode {
    use std::process::ExitCode;
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            if TO_SYSLOG.load(std::sync::atomic::Ordering::Relaxed) {
                tracing::error!("{}", one_line(&e));
            } else {
                say!("ownmail: {}", one_line(&e));
            }
            ExitCode::from(exit_code(&e))
        }
    }
}

/// An error and its causes, outermost first, each said once. Our errors
/// name their cause in their own message, so that a log line or an SMTP
/// reply that prints only the outer error still says why, and they also
/// give it as their source; printing the whole chain (`{:#}`) would say
/// "No space left on device" twice.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// `ownmail user list | head -1` is not an error: a broken pipe on our
/// own standard output is the reader's choice. One anywhere else (a
/// server, a program we write to) is a failure, and must not exit 0.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| {
            io.kind() == std::io::ErrorKind::BrokenPipe
                && io.get_ref().is_some_and(|inner| inner.is::<OnStdout>())
        })
    })
}

/// The command's standard output, whose write errors say where they
/// happened (see [`is_broken_pipe`]). Every command writes its output
/// through this (or [`out!`]).
pub(crate) fn stdout() -> Stdout {
    Stdout(std::io::stdout().lock())
}

pub(crate) struct Stdout(std::io::StdoutLock<'static>);

/// The cause of an error writing to standard output.
#[derive(Debug)]
struct OnStdout(std::io::Error);

impl std::fmt::Display for OnStdout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "standard output: {}", self.0)
    }
}

impl std::error::Error for OnStdout {}

fn on_stdout(e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), OnStdout(e))
}

impl std::io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(on_stdout)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.write_all(buf).map_err(on_stdout)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(on_stdout)
    }
}

pub fn init_logging(global: &GlobalArgs) {
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
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_writer(LogWriters)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => builder
            .with_env_filter(tracing_subscriber::EnvFilter::new(spec))
            .init(),
        _ => builder.with_max_level(level).init(),
    }
}

/// Log lines go to syslog instead of stderr (see [`stderr_is_the_client`]).
static TO_SYSLOG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Where log lines go: stderr, or syslog (facility mail) once a server
/// under inetd found its stderr to be the client's socket. One writer per
/// event, made knowing the event's level.
struct LogWriters;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriters {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter {
            priority: libc::LOG_INFO,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LogWriter {
        let priority = match *meta.level() {
            tracing::Level::ERROR => libc::LOG_ERR,
            tracing::Level::WARN => libc::LOG_WARNING,
            tracing::Level::INFO => libc::LOG_INFO,
            _ => libc::LOG_DEBUG,
        };
        LogWriter { priority }
    }
}

struct LogWriter {
    /// The syslog priority of the event being written.
    priority: libc::c_int,
}

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !TO_SYSLOG.load(std::sync::atomic::Ordering::Relaxed) {
            return std::io::stderr().write(buf);
        }
        for line in buf.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let text = String::from_utf8_lossy(line).replace('\0', "");
            if let Ok(c) = std::ffi::CString::new(text) {
                // SAFETY: a constant format and a NUL-terminated string.
                unsafe { libc::syslog(libc::LOG_MAIL | self.priority, c"%s".as_ptr(), c.as_ptr()) };
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A server run by inetd gets the client's socket on stdin, stdout and
/// stderr alike: a log line on stderr would go to the client, in the middle
/// of the protocol (or of its TLS). When stderr is the same socket as
/// stdin, log lines go to syslog (facility mail, as Postfix's and
/// Dovecot's) and stderr is pointed at /dev/null. Returns whether it was so.
pub(crate) fn stderr_is_the_client() -> bool {
    if !crate::net::same_socket(0, 2) {
        return false;
    }
    // SAFETY: a constant identity (static, as openlog keeps the pointer),
    // then a descriptor we open and place at 2.
    unsafe {
        libc::openlog(c"ownmail".as_ptr(), libc::LOG_PID, libc::LOG_MAIL);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 2);
            libc::close(null);
        }
    }
    TO_SYSLOG.store(true, std::sync::atomic::Ordering::Relaxed);
    true
}

/// The sysexits code for an error: the first error in the chain that knows
/// its code decides; anything else is a temporary failure, because a retry
/// never loses mail and a bounce may.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        macro_rules! known {
            ($($t:ty),*) => {$(
                if let Some(e) = cause.downcast_ref::<$t>() {
                    return e.exit_code();
                }
            )*};
        }
        known!(
            RetryLater,
            ConfigError,
            crate::store::StoreError,
            crate::deliver::DeliverError,
            crate::convert::ConvertError,
            crate::auth::UsersError,
            UsageError,
            UnknownUser,
            NotTheOwner,
            crate::fetch::FetchError,
            crate::fetch::StateError,
            crate::spam::SpamError,
            crate::spam::RulesError,
            crate::spam::DbError,
            spamcheck::NoInput,
            crate::tunnel::TunnelError,
            crate::smtp::SmtpError,
            crate::net::server::BindError,
            crate::queue::QueueError,
            crate::queue::submit::SubmitError
        );
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            return crate::error::io_exit_code(e);
        }
    }
    sysexits::TEMPFAIL
}

/// A failure the MTA must retry whatever it is underneath (exit 75):
/// `deliver` answers this for a configuration it cannot use, as
/// dovecot-lda does, because Postfix bounces a message on 78 (only 75 and
/// 71 are temporary to it), and one typo would bounce every message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RetryLater(pub String);

impl ExitStatus for RetryLater {
    fn exit_code(&self) -> u8 {
        sysexits::TEMPFAIL
    }
}

/// A mistake in the command line that clap could not see (exit 64).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl ExitStatus for UsageError {
    fn exit_code(&self) -> u8 {
        sysexits::USAGE
    }
}

/// Root about to write files another user must read (exit 77).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotTheOwner(pub String);

impl ExitStatus for NotTheOwner {
    fn exit_code(&self) -> u8 {
        sysexits::NOPERM
    }
}

/// The name of Unix user `uid` (getpwuid_r), if it has one.
fn user_name(uid: libc::uid_t) -> Option<String> {
    // SAFETY: a passwd struct is plain data; zeroed is a valid value.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: valid pointers to a passwd struct and a buffer of the given length.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded: pw_name points to a NUL-terminated string in buf.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    name.to_str().ok().map(str::to_owned)
}

/// A user not in the users file (exit 67), with a hint on what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UnknownUser(pub String);

impl ExitStatus for UnknownUser {
    fn exit_code(&self) -> u8 {
        sysexits::NOUSER
    }
}

/// Loads the configuration named by `--config`, or found on the search path.
fn load_config(global: &GlobalArgs) -> Result<Config, ConfigError> {
    let path = match &global.config {
        Some(p) => p.clone(),
        None => SearchPath::from_env().find()?,
    };
    Config::load(&path)
}

/// Like [`load_config`], but "no file anywhere" is `None` rather than an
/// error, for commands that can do without (deliver --maildir).
fn load_config_if_any(global: &GlobalArgs) -> Result<Option<Config>, ConfigError> {
    match load_config(global) {
        Ok(c) => Ok(Some(c)),
        Err(ConfigError::NotFound { .. }) if global.config.is_none() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Checks that a user exists in the users file.
fn known_user(config: &Config, name: &str) -> anyhow::Result<UserName> {
    let user = UserName::new(name).map_err(|e| UsageError(e.to_string()))?;
    let users = Users::load(&config.users_file)?;
    if users.get(user.as_str()).is_none() {
        let hint = match users.problem_of(user.as_str()) {
            Some(why) => format!(": the line for {user} cannot be used: {why}"),
            None => format!(
                " (not in {}; add with `ownmail user add {user}`)",
                config.users_file.display()
            ),
        };
        return Err(UnknownUser(format!("unknown user {user}{hint}")).into());
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct PathError {
        path: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = || std::io::Error::from_raw_os_error(28);
        let e = anyhow::Error::new(PathError {
            path: "/srv/mail",
            source: io(),
        })
        .context("delivery to alice failed");
        assert_eq!(
            one_line(&e),
            format!("delivery to alice failed: /srv/mail: {}", io())
        );
        // A cause its outer error does not name is still said.
        let e = anyhow::Error::new(io()).context("reading /etc/ownmail.yaml");
        assert_eq!(one_line(&e), format!("reading /etc/ownmail.yaml: {}", io()));
    }

    #[test]
    fn only_a_broken_pipe_on_standard_output_is_the_readers_choice() {
        let pipe = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let ours = anyhow::Error::new(on_stdout(pipe()));
        assert!(is_broken_pipe(&ours));
        assert!(is_broken_pipe(&ours.context("listing users")));
        assert!(one_line(&anyhow::Error::new(on_stdout(pipe()))).starts_with("standard output: "));
        // A server or a program that went away mid-write is a failure.
        let theirs = anyhow::Error::new(pipe()).context("sending RETR 1 to pop.example.net");
        assert!(!is_broken_pipe(&theirs));
        let full = anyhow::Error::new(on_stdout(std::io::Error::from_raw_os_error(28)));
        assert!(!is_broken_pipe(&full));
    }
}
