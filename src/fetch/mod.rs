//! `fetch`: brings mail home from remote POP3 and IMAP accounts, from cron
//! or as a daemon (`--idle`), without ever losing or doubling a message.
//!
//! # Never lose, never double
//!
//! For every message, in this order, each step durable before the next:
//!
//! 1. **deliver**: into the Maildir's `tmp/` (the batch's files written out
//!    together), then a `P` (pending) record naming each file is appended
//!    to the account's state and fsynced, then the files are renamed into
//!    `new/` and the folder is fsynced once for the batch ([`flow`]);
//! 2. **record**: a `D` record turns each pending delivery into a fetched
//!    message; these are fsynced with the next batch's `P` records, and in
//!    any case before step 3 takes effect;
//! 3. **delete** (unless `keep`): POP3 DELE (effective only at QUIT) or
//!    IMAP `\Deleted` (effective only at EXPUNGE). QUIT and EXPUNGE are sent
//!    after the state is fsynced.
//!
//! A crash anywhere loses nothing (nothing is deleted on the server before
//! the message is durable in the Maildir) and doubles nothing (a delivery
//! that happened is found by its `P` record and its file name; one that did
//! not is fetched again). See [`state`] for the one window that remains
//! (someone moves the very message in the Maildir between the crash and
//! the next run).
//!
//! An MDA or an SMTP server acknowledges each message itself; the message
//! is recorded (fsynced) right after that acknowledgement, then deleted.
//! There a window remains that no client can close: a crash between the
//! acknowledgement and the fsync of its record fetches that one message
//! again on the next run (fetchmail and getmail have the same window).
//!
//! # Modules
//!
//! - [`state`]: what was fetched, and deliveries under way; [`lock`]: one
//!   run per account.
//! - [`login`]: passwords, tokens, SASL strings; [`sink`]: `deliver_to`.
//! - [`flow`]: deliver, record, then tell the protocol what may be deleted.
//! - [`pop3`], [`imap`]: the two protocols.

pub mod flow;
pub mod imap;
pub mod lock;
pub mod login;
pub mod pop3;
pub mod sink;
pub mod state;

use std::time::Duration;

use crate::config::Config;
use crate::config::fetch::{FetchAccount, Protocol, TlsMode};
use crate::error::sysexits;
use crate::net::{NetError, TlsSettings};

pub use sink::DeliveryError;
pub use state::StateError;

/// How long a run waits for another run of the same account.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);
/// How often `--idle` polls a POP3 account (POP3 has no IDLE).
pub const POP3_POLL: Duration = Duration::from_secs(300);
/// Messages per batch: one fsync of the state and one of the folder each.
pub const BATCH_MESSAGES: usize = 128;
/// Bytes per batch (by the sizes the server gave).
pub const BATCH_BYTES: u64 = 16 * 1024 * 1024;

/// What the command line asks of a run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Leave everything on the servers this time, whatever `keep` says.
    pub keep: bool,
    /// Fetch every message again, including ones fetched before.
    pub all: bool,
    /// Keep running: IMAP IDLE, POP3 polled every [`POP3_POLL`].
    pub idle: bool,
    /// How long to wait for a busy account.
    pub lock_wait: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            keep: false,
            all: false,
            idle: false,
            lock_wait: LOCK_WAIT,
        }
    }
}

/// Told what happens, for progress bars and for `--idle`'s reports.
pub trait Observer: Send + Sync {
    /// More messages to fetch were found.
    fn found(&self, _messages: u64, _bytes: u64) {}
    /// One message was delivered.
    fn fetched(&self, _bytes: u64) {}
    /// A pass over the account ended (each pass with `--idle`).
    fn pass_done(&self, _report: &Report) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// What a run did for one account.
#[derive(Debug, Default)]
pub struct Report {
    pub account: String,
    /// Delivered and recorded.
    pub fetched: u64,
    /// Bytes delivered, as the server counted them.
    pub bytes: u64,
    /// Deleted from the server (POP3: after QUIT was accepted; IMAP: after
    /// EXPUNGE).
    pub deleted: u64,
    /// Messages over `max_size` seen for the first time (left on the server).
    pub too_big: Vec<Skipped>,
    /// All messages over `max_size` still on the server.
    pub too_big_total: u64,
    /// Messages delivery refused for good.
    pub rejected: Vec<Rejected>,
    /// Things worth saying: a changed UIDVALIDITY, a recovered crash.
    pub notes: Vec<String>,
    /// Another run holds the account.
    pub busy: bool,
    /// Why the run stopped early, if it did.
    pub error: Option<FetchError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub message: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub message: String,
    pub reason: String,
    /// Deleted from the server anyway (`delete_rejected: true`).
    pub deleted: bool,
    /// About the message itself (an MDA's 65, an SMTP 5xx, a loop), which
    /// `delete_rejected` deletes; else perhaps a fault of ours, kept.
    pub deletable: bool,
}

/// How a run ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Temporary,
    Failed,
}

impl Report {
    pub fn new(account: &str) -> Report {
        Report {
            account: account.to_owned(),
            ..Report::default()
        }
    }

    pub fn outcome(&self) -> Outcome {
        match &self.error {
            Some(e) if !e.is_temporary() => Outcome::Failed,
            _ if !self.rejected.is_empty() => Outcome::Failed,
            Some(_) => Outcome::Temporary,
            None => Outcome::Ok,
        }
    }

    /// Whether there is something to tell (for `--quiet`).
    pub fn has_news(&self) -> bool {
        self.fetched > 0
            || self.deleted > 0
            || !self.too_big.is_empty()
            || !self.rejected.is_empty()
            || !self.notes.is_empty()
    }
}

/// Why an account's run stopped.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Credential(#[from] login::CredentialError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("{server}: {source}")]
    Io {
        server: String,
        source: std::io::Error,
    },
    #[error("{server}: the server closed the connection")]
    Closed { server: String },
    #[error("{server}: {source}")]
    Pop3 {
        server: String,
        source: crate::proto::pop3::Pop3Error,
    },
    #[error("{server}: IMAP: {message}")]
    Imap { server: String, message: String },
    #[error(
        "{server} does not offer {command}, and tls: starttls needs it \
         (use tls: tls with the implicit-TLS port, or ask the provider)"
    )]
    NoStartTls {
        server: String,
        command: &'static str,
    },
    #[error("{server} refused the login of {user} ({method}): {text}{hint}")]
    LoginRefused {
        server: String,
        user: String,
        method: String,
        text: String,
        hint: String,
        temporary: bool,
    },
    #[error("{server} offers no way to log in with {wanted} (it offers: {offered})")]
    NoMechanism {
        server: String,
        wanted: String,
        offered: String,
    },
    #[error(
        "{server} does not support UIDL, so fetched messages cannot be told from new ones; \
         refusing to fetch (nothing was deleted)"
    )]
    NoUidl { server: String },
    #[error("{server}: {command} failed: {text}")]
    Refused {
        server: String,
        command: String,
        text: String,
        temporary: bool,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("delivery failed: {0} (the message stays on the server)")]
    Delivery(DeliveryError),
    #[error(
        "internal error: {0} (a bug: please report it; nothing was deleted that was not recorded)"
    )]
    Internal(String),
    #[error("cannot use {}: {source}", path.display())]
    Local {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl FetchError {
    /// Whether the next run may well succeed without anyone doing anything.
    pub fn is_temporary(&self) -> bool {
        match self {
            FetchError::Credential(e) => e.is_temporary(),
            FetchError::Net(e) => e.is_temporary(),
            FetchError::Io { .. } | FetchError::Closed { .. } => true,
            FetchError::Pop3 { .. } | FetchError::Imap { .. } => true,
            FetchError::NoStartTls { .. }
            | FetchError::NoMechanism { .. }
            | FetchError::NoUidl { .. } => false,
            FetchError::LoginRefused { temporary, .. } | FetchError::Refused { temporary, .. } => {
                *temporary
            }
            FetchError::State(e) => e.exit_code() == sysexits::TEMPFAIL,
            FetchError::Delivery(e) => e.is_temporary(),
            FetchError::Internal(_) => false,
            FetchError::Local { source, .. } => {
                crate::error::io_exit_code(source) == sysexits::TEMPFAIL
            }
        }
    }

    pub(crate) fn io(server: &str) -> impl Fn(std::io::Error) -> FetchError + '_ {
        move |source| {
            if matches!(
                source.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ) {
                FetchError::Closed {
                    server: server.to_owned(),
                }
            } else {
                FetchError::Io {
                    server: server.to_owned(),
                    source,
                }
            }
        }
    }
}

impl From<DeliveryError> for FetchError {
    fn from(e: DeliveryError) -> Self {
        FetchError::Delivery(e)
    }
}

/// Runs one account: takes its lock, settles what a crashed run left,
/// fetches, delivers, records, deletes. With `--idle`, keeps going until a
/// permanent error. Never panics on what a server sends.
pub async fn run_account(
    config: &Config,
    account: &FetchAccount,
    options: &Options,
    observer: &dyn Observer,
) -> Report {
    let mut report = Report::new(&account.name);
    let dir = config.data_dir.join("fetch");
    if let Err(source) = std::fs::create_dir_all(&dir) {
        report.error = Some(FetchError::Local { path: dir, source });
        return report;
    }
    let _lock = match lock::acquire(&dir, &account.name, options.lock_wait).await {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            report.busy = true;
            return report;
        }
        Err(source) => {
            report.error = Some(FetchError::Local {
                path: dir.join(format!("{}.lock", account.name)),
                source,
            });
            return report;
        }
    };
    let mut state = match state::State::open(&dir, &account.name) {
        Ok(s) => s,
        Err(e) => {
            report.error = Some(e.into());
            return report;
        }
    };
    let recovered = &state.recovered;
    if recovered.delivered + recovered.not_delivered > 0 {
        report.notes.push(format!(
            "the last run stopped in the middle of a batch: {} of its deliveries had happened \
             (now recorded), {} had not (fetched again)",
            recovered.delivered, recovered.not_delivered
        ));
    }
    let sink = match sink::Sink::open(config, account) {
        Ok(s) => s,
        Err(e) => {
            report.error = Some(e.into());
            return report;
        }
    };
    if let Some(d) = sink.deliverer() {
        sink.clean_orphans();
        d.clean_tmp();
    }
    let cx = Context {
        account,
        options,
        observer,
        sink: &sink,
    };
    match account.protocol {
        Protocol::Pop3 => pop3::run(&cx, &mut state, report).await,
        Protocol::Imap => imap::run(&cx, &mut state, report).await,
    }
}

/// What a protocol run needs.
pub struct Context<'a> {
    pub account: &'a FetchAccount,
    pub options: &'a Options,
    pub observer: &'a dyn Observer,
    pub sink: &'a sink::Sink,
}

impl Context<'_> {
    pub fn keep(&self) -> bool {
        self.options.keep || self.account.keep
    }

    pub fn server(&self) -> String {
        self.account.server()
    }

    /// TLS settings for the account, `None` with `tls: none`.
    pub fn tls(&self) -> Option<TlsSettings> {
        (self.account.tls != TlsMode::None).then(|| TlsSettings {
            host: self.account.host.clone(),
            fingerprint: self.account.tls_fingerprint,
        })
    }

    /// Where the password or token came from, for a refused login.
    pub fn credential_hint(&self) -> String {
        use crate::config::fetch::Credential;
        match &self.account.credential {
            Credential::PasswordFile(p) => {
                format!(
                    " (check the user name, and the password in {})",
                    p.display()
                )
            }
            Credential::PasswordCommand(c) => {
                format!(" (check the user name, and what password_command {c:?} prints)")
            }
            Credential::TokenCommand(c) => {
                format!(
                    " (check the user name, and that token_command {c:?} prints a fresh access token)"
                )
            }
        }
    }
}

/// The unfolded value of the first header field `name` in a message's
/// header section (which ends at the first empty line).
pub fn header_value(data: &[u8], name: &[u8]) -> Option<String> {
    let mut value: Option<Vec<u8>> = None;
    for line in data.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let folded = line[0] == b' ' || line[0] == b'\t';
        match &mut value {
            Some(v) if folded => v.extend_from_slice(line),
            Some(_) => break,
            None if !folded
                && line.len() > name.len()
                && line[..name.len()].eq_ignore_ascii_case(name)
                && line[name.len()..].trim_ascii_start().first() == Some(&b':') =>
            {
                let colon = line.iter().position(|b| *b == b':').unwrap_or(0);
                value = Some(line[colon + 1..].to_vec());
            }
            None => {}
        }
    }
    value.map(|v| String::from_utf8_lossy(v.trim_ascii()).into_owned())
}

/// The message's Message-ID, for matching after a changed UIDVALIDITY.
pub fn message_id(data: &[u8]) -> Option<String> {
    let id = header_value(data, b"Message-ID")?;
    let id = id.split_whitespace().next()?.to_owned();
    (id.len() <= state::MAX_MESSAGE_ID).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_found_unfolded_and_only_in_the_header() {
        let m = b"Received: a\r\n b\r\nMessage-Id:\r\n  <x@y>\r\nSubject: s\r\n\r\nMessage-ID: <body@z>\r\n";
        assert_eq!(message_id(m), Some("<x@y>".into()));
        assert_eq!(header_value(m, b"Received"), Some("a b".into()));
        assert_eq!(header_value(m, b"Subject"), Some("s".into()));
        assert_eq!(header_value(m, b"X-Nope"), None);
        assert_eq!(message_id(b"Subject: x\n\nMessage-ID: <no@x>\n"), None);
        assert_eq!(message_id(b"Message-ID-Extra: <no@x>\n\n"), None);
        assert_eq!(
            message_id(b"message-id : <yes@x>\n\n"),
            Some("<yes@x>".into())
        );
    }
}
