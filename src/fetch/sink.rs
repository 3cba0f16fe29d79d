//! Where fetched messages go (`deliver_to`), and how each kind says "done":
//!
//! | kind      | done when                                  | temporary failure            |
//! | --------- | ------------------------------------------ | ---------------------------- |
//! | `user`    | the batch is fsynced into the Maildir      | disk full, I/O error         |
//! | `maildir` | the same                                   | the same                     |
//! | `mda`     | the command exits 0                        | 75, 126, 127, a signal, a timeout |
//! | `smtp`    | the server answers 250 to the data         | 4xx, no connection           |
//!
//! A refusal for good (which `delete_rejected` deletes on the server) must
//! be about the message, never a fault of ours: for the Maildir kinds an
//! empty message or a mail loop; for an MDA exit 65 (EX_DATAERR); for SMTP
//! a 5xx reply. A permission denied or a missing MDA (126, 127) would fail
//! every message: the message stays on the server and the run ends with
//! 75. Any other exit code of an MDA (1, 67 unknown user, 77) is about
//! this message or about us, nobody can tell: it is reported and kept on
//! the server, `delete_rejected` or not, and the run goes on with the next
//! message, as fetchmail goes on after an MDA failed and never deletes
//! what it failed on.
//!
//! The Maildir kinds are batched ([`Sink::write`] then a commit per
//! message and one fsync per batch, see `fetch::flow`); the others deliver
//! one message at a time ([`Sink::deliver`]), durable on the other side.
//!
//! Messages arrive as the server sent them: CRLF line ends. The Maildir
//! gets LF (as Maildir stores), an MDA gets LF (as Unix tools expect), an
//! SMTP server gets CRLF.

use std::process::Stdio;
use std::time::Duration;

use lettre::AsyncTransport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::Config;
use crate::config::fetch::{DeliverTo, FetchAccount};
use crate::deliver::{DeliverError, Deliverer, Envelope, Target};
use crate::error::{ExitStatus, sysexits};
use crate::store::{Delivered, Durability, TmpMessage};

/// How long an MDA may take for one message.
pub const MDA_TIMEOUT: Duration = Duration::from_secs(300);
/// How long an SMTP server may take for one command.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(120);
/// How much of an MDA's standard error we keep for the report.
const MDA_STDERR: usize = 2048;

/// A delivery that did not happen.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub kind: Failure,
    pub message: String,
}

/// What a failed delivery means for the message on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The same delivery may succeed later: the message stays on the
    /// server, the run stops, and the next run tries it again.
    Temporary,
    /// Refused, and about the message itself: `delete_rejected` may delete
    /// it on the server.
    Refused,
    /// Refused, perhaps through a fault of ours: reported and kept on the
    /// server, and the run goes on.
    Kept,
}

impl DeliveryError {
    pub(super) fn temporary(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            kind: Failure::Temporary,
            message: message.into(),
        }
    }

    fn permanent(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            kind: Failure::Refused,
            message: message.into(),
        }
    }

    fn kept(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            kind: Failure::Kept,
            message: message.into(),
        }
    }

    pub fn is_temporary(&self) -> bool {
        self.kind == Failure::Temporary
    }

    pub fn is_deletable(&self) -> bool {
        self.kind == Failure::Refused
    }
}

impl From<DeliverError> for DeliveryError {
    fn from(e: DeliverError) -> Self {
        if e.is_about_the_message() {
            DeliveryError::permanent(e.to_string())
        } else {
            DeliveryError::temporary(e.to_string())
        }
    }
}

/// An open delivery target.
pub enum Sink {
    Maildir {
        deliverer: Deliverer,
        /// `Some` for `{user}`: headers added as `deliver --user` adds them.
        envelope: Option<Envelope>,
        /// With `spam.enabled`: the filter, and where spam goes.
        junk: Option<Box<Junk>>,
    },
    Mda {
        command: String,
        account: String,
    },
    Smtp {
        transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
        recipient: lettre::Address,
        server: String,
    },
}

/// The spam filter of a Maildir sink (`spam.enabled`): messages are
/// classified with the site database and, for `deliver_to: {user}`, the
/// user's, tagged, and spam is written into the junk folder, as `deliver`
/// and SMTP local delivery do ([`crate::spam::check_for_delivery`]).
pub struct Junk {
    settings: crate::config::SpamConfig,
    user: Option<crate::auth::UserName>,
    maildir: std::path::PathBuf,
    /// The junk folder, opened (created if missing) at the first spam.
    deliverer: std::sync::OnceLock<Deliverer>,
}

impl Junk {
    fn new(
        config: &Config,
        user: Option<crate::auth::UserName>,
        maildir: &std::path::Path,
    ) -> Option<Box<Junk>> {
        config.spam.enabled.then(|| {
            Box::new(Junk {
                settings: config.spam.clone(),
                user,
                maildir: maildir.to_owned(),
                deliverer: std::sync::OnceLock::new(),
            })
        })
    }

    /// Classifies and tags `data`; `Some(junk folder)` for spam. A database
    /// that cannot be opened is logged and the message goes untagged where
    /// it was going: a broken filter must not hold up mail.
    fn check(&self, data: &[u8]) -> Result<(Option<&Deliverer>, Option<Vec<u8>>), DeliveryError> {
        let mut target = Target {
            maildir: self.maildir.clone(),
            folder: crate::store::MailboxName::inbox(),
            create: false,
            flags: Vec::new(),
        };
        let tagged = match crate::spam::check_for_delivery(
            &self.settings,
            self.user.as_ref(),
            data,
            &mut target,
        ) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("spamcheck skipped: {e}");
                return Ok((None, None));
            }
        };
        if !target.folder.is_inbox() {
            if self.deliverer.get().is_none() {
                let d = Deliverer::open(&target)?;
                let _ = self.deliverer.set(d);
            }
            return Ok((self.deliverer.get(), Some(tagged)));
        }
        Ok((None, Some(tagged)))
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Maildir { deliverer, .. } => {
                write!(f, "Maildir({:?})", deliverer.folder().path())
            }
            Sink::Mda { command, .. } => write!(f, "Mda({command:?})"),
            Sink::Smtp { server, .. } => write!(f, "Smtp({server})"),
        }
    }
}

impl Sink {
    /// Opens the account's `deliver_to`: the Maildir folder is created if
    /// missing; a user must be in the users file.
    pub fn open(config: &Config, account: &FetchAccount) -> Result<Sink, DeliveryError> {
        match &account.deliver_to {
            DeliverTo::User { user, folder } => {
                let name = crate::auth::UserName::new(user)
                    .map_err(|e| DeliveryError::permanent(e.to_string()))?;
                let users =
                    crate::auth::Users::load(&config.users_file).map_err(|e| DeliveryError {
                        kind: if e.exit_code() == sysexits::TEMPFAIL {
                            Failure::Temporary
                        } else {
                            Failure::Kept
                        },
                        message: e.to_string(),
                    })?;
                if users.get(name.as_str()).is_none() {
                    return Err(DeliveryError::permanent(format!(
                        "deliver_to: user {name} is not in {} (add with `ownmail user add {name}`)",
                        config.users_file.display()
                    )));
                }
                let recipient = if user.contains('@') {
                    user.clone()
                } else {
                    let domain = config
                        .domains
                        .first()
                        .cloned()
                        .unwrap_or_else(|| config.hostname.clone());
                    format!("{user}@{domain}")
                };
                let target = Target {
                    maildir: config.user_maildir(&name),
                    folder: folder.clone(),
                    create: true,
                    flags: Vec::new(),
                };
                Ok(Sink::Maildir {
                    deliverer: Deliverer::open(&target)?,
                    // No loop check: what Delivered-To: a fetched
                    // message has, the remote server wrote (see Envelope).
                    envelope: Some(Envelope {
                        sender: None,
                        fallback_sender: None,
                        recipient,
                        refuse_loops: false,
                    }),
                    junk: Junk::new(config, Some(name), &target.maildir),
                })
            }
            DeliverTo::Maildir { maildir, folder } => {
                let target = Target {
                    maildir: maildir.clone(),
                    folder: folder.clone(),
                    create: true,
                    flags: Vec::new(),
                };
                Ok(Sink::Maildir {
                    deliverer: Deliverer::open(&target)?,
                    envelope: None,
                    junk: Junk::new(config, None, &target.maildir),
                })
            }
            DeliverTo::Mda { mda } => Ok(Sink::Mda {
                command: mda.clone(),
                account: account.name.clone(),
            }),
            DeliverTo::Smtp {
                smtp,
                host,
                port,
                recipient,
            } => {
                let recipient: lettre::Address = recipient.parse().map_err(|e| {
                    DeliveryError::permanent(format!("deliver_to: recipient {recipient}: {e}"))
                })?;
                // A local MTA: plain SMTP, as fetchmail speaks to port 25.
                let transport =
                    lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(
                        host.as_str(),
                    )
                    .port(*port)
                    .hello_name(lettre::transport::smtp::extension::ClientId::Domain(
                        config.hostname.clone(),
                    ))
                    .timeout(Some(SMTP_TIMEOUT))
                    .build();
                Ok(Sink::Smtp {
                    transport,
                    recipient,
                    server: smtp.clone(),
                })
            }
        }
    }

    /// Removes what killed runs of ours left in the Maildir's `tmp/`: files
    /// named by ownmail on this host (`<secs>.M<usecs>P<pid>Q<n>.<host>`)
    /// whose process is gone. A live process's files, and everyone else's,
    /// are left to the Maildir rule (36 hours).
    pub fn clean_orphans(&self) -> usize {
        let Some(deliverer) = self.deliverer() else {
            return 0;
        };
        let tmp = deliverer.folder().path().join("tmp");
        let host = crate::store::delivery::host();
        let Ok(entries) = std::fs::read_dir(&tmp) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(pid) = orphan_pid(name, host) else {
                continue;
            };
            if pid == std::process::id() {
                continue;
            }
            // SAFETY: signal 0 only asks whether the process exists.
            let gone = unsafe { libc::kill(pid as libc::pid_t, 0) } != 0
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
            if gone && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(dir = %tmp.display(), "removed {removed} files a killed run left in tmp/");
        }
        removed
    }

    /// Whether deliveries are batched (Maildir kinds).
    pub fn deliverer(&self) -> Option<&Deliverer> {
        match self {
            Sink::Maildir { deliverer, .. } => Some(deliverer),
            _ => None,
        }
    }

    /// Writes a message into the Maildir's `tmp/` (Maildir kinds only); with
    /// the spam filter, a spam into the junk folder's (see
    /// [`TmpMessage::folder`]).
    pub fn write(&self, data: &[u8]) -> Result<TmpMessage, DeliveryError> {
        match self {
            Sink::Maildir {
                deliverer,
                envelope,
                junk,
            } => {
                let (to, tagged) = match junk {
                    Some(j) => j.check(data)?,
                    None => (None, None),
                };
                let to = to.unwrap_or(deliverer);
                let data = tagged.as_deref().unwrap_or(data);
                Ok(to.write(data, envelope.as_ref())?)
            }
            _ => Err(DeliveryError::permanent("not a Maildir target")),
        }
    }

    /// Names a message written by [`Sink::write`]; durable after [`Sink::sync`].
    pub fn commit(&self, tmp: TmpMessage) -> Result<Delivered, DeliveryError> {
        match self {
            Sink::Maildir { deliverer, .. } => Ok(deliverer.commit(tmp, Durability::Deferred)?),
            _ => Err(DeliveryError::permanent("not a Maildir target")),
        }
    }

    /// Makes the commits so far durable.
    pub fn sync(&self) -> Result<(), DeliveryError> {
        match self {
            Sink::Maildir {
                deliverer, junk, ..
            } => {
                deliverer.sync()?;
                if let Some(d) = junk.as_ref().and_then(|j| j.deliverer.get()) {
                    d.sync()?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Delivers one message now (MDA, SMTP): durable on the other side
    /// when this returns `Ok`.
    pub async fn deliver(&self, data: &[u8]) -> Result<(), DeliveryError> {
        match self {
            Sink::Maildir { .. } => Err(DeliveryError::permanent("a Maildir target is batched")),
            Sink::Mda { command, account } => run_mda(command, account, data).await,
            Sink::Smtp {
                transport,
                recipient,
                server,
            } => {
                let sender = return_path(data).and_then(|s| s.parse::<lettre::Address>().ok());
                let envelope = lettre::address::Envelope::new(sender, vec![recipient.clone()])
                    .map_err(|e| DeliveryError::permanent(e.to_string()))?;
                // lettre ends the data with CRLF "." CRLF; the message's own
                // last line end is that first CRLF (RFC 5321 4.1.1.4).
                let body = data.strip_suffix(b"\r\n").unwrap_or(data);
                match transport.send_raw(&envelope, body).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_permanent() => Err(DeliveryError::permanent(format!(
                        "SMTP server {server} refused the message: {e}"
                    ))),
                    Err(e) => Err(DeliveryError::temporary(format!(
                        "SMTP server {server}: {e}"
                    ))),
                }
            }
        }
    }
}

/// Runs an MDA for one message: `/bin/sh -c COMMAND`, the message (LF line
/// ends) on its standard input.
async fn run_mda(command: &str, account: &str, data: &[u8]) -> Result<(), DeliveryError> {
    let lf = crlf_to_lf(data);
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env("OWNMAIL_FETCH_ACCOUNT", account)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| DeliveryError::temporary(format!("cannot run the MDA {command:?}: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let write = async move {
        let r = stdin.write_all(&lf).await;
        drop(stdin);
        r
    };
    let read = async move {
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        // Keep the start, drain the rest so the MDA never blocks on us.
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let room = MDA_STDERR.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
        kept
    };
    let run = async {
        let (written, stderr) = tokio::join!(write, read);
        let status = child.wait().await;
        (written, stderr, status)
    };
    let (written, stderr, status) = match tokio::time::timeout(MDA_TIMEOUT, run).await {
        Ok(r) => r,
        Err(_) => {
            return Err(DeliveryError::temporary(format!(
                "the MDA {command:?} took more than {} seconds (killed)",
                MDA_TIMEOUT.as_secs()
            )));
        }
    };
    let status = status
        .map_err(|e| DeliveryError::temporary(format!("waiting for the MDA {command:?}: {e}")))?;
    let said = String::from_utf8_lossy(&stderr)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let said = if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    };
    use std::os::unix::process::ExitStatusExt;
    match status.code() {
        Some(0) if written.is_ok() => Ok(()),
        // It said yes without reading the whole message: it may have
        // stored half of it. Try again rather than trust that.
        Some(0) => Err(DeliveryError::temporary(format!(
            "the MDA {command:?} exited 0 before reading the whole message"
        ))),
        Some(code) if code == i32::from(sysexits::TEMPFAIL) => Err(DeliveryError::temporary(
            format!("the MDA {command:?} exited {code} (try again later){said}"),
        )),
        // EX_DATAERR: the message itself is refused; retrying cannot help.
        Some(code) if code == i32::from(sysexits::DATAERR) => Err(DeliveryError::permanent(
            format!("the MDA {command:?} exited {code}{said}"),
        )),
        // The shell's "cannot execute" and "not found": a typo in its
        // path, a wrong permission. Every message would fail: stop, and
        // the messages wait on the server.
        Some(code @ (126 | 127)) => Err(DeliveryError::temporary(format!(
            "the MDA {command:?} exited {code} ({}){said}",
            if code == 126 {
                "the command cannot be executed"
            } else {
                "the command was not found"
            }
        ))),
        // Any other code (1, 67 unknown user, 77): this message's fault or
        // ours, nobody can tell. It stays on the server, reported, and the
        // next message is tried.
        Some(code) => Err(DeliveryError::kept(format!(
            "the MDA {command:?} exited {code}{said}"
        ))),
        None => Err(DeliveryError::temporary(format!(
            "the MDA {command:?} was killed by signal {}{said}",
            status.signal().unwrap_or(0)
        ))),
    }
}

/// The PID in one of our own tmp/ names on this host, else `None`.
fn orphan_pid(name: &str, host: &str) -> Option<u32> {
    let (secs, rest) = name.split_once(".M")?;
    let (usecs, rest) = rest.split_once('P')?;
    let (pid, rest) = rest.split_once('Q')?;
    let (n, file_host) = rest.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(secs) && digits(usecs) && digits(pid) && digits(n)) || file_host != host {
        return None;
    }
    pid.parse().ok().filter(|p| *p > 1)
}

fn crlf_to_lf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while let Some(i) = memchr::memmem::find(rest, b"\r\n") {
        out.extend_from_slice(&rest[..i]);
        out.push(b'\n');
        rest = &rest[i + 2..];
    }
    out.extend_from_slice(rest);
    out
}

/// The address in the message's `Return-Path:` header, if it has one.
fn return_path(data: &[u8]) -> Option<String> {
    let value = crate::fetch::header_value(data, b"Return-Path")?;
    let v = value.trim();
    let v = v
        .strip_prefix('<')
        .and_then(|v| v.strip_suffix('>'))
        .unwrap_or(v);
    (!v.is_empty()).then(|| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_tmp_names_on_this_host_are_orphan_candidates() {
        let cases = [
            ("1700000000.M12P4242Q7.myhost", Some(4242)),
            ("1700000000.M12P4242Q7.otherhost", None),
            ("1700000000.M12P4242.myhost", None),
            ("1700000000.M12P4242Q7.myhost,S=12", None),
            ("1700000000.M12P1Q7.myhost", None),
            ("x.M12P4242Q7.myhost", None),
        ];
        for (name, pid) in cases {
            assert_eq!(orphan_pid(name, "myhost"), pid, "{name}");
        }
    }

    #[test]
    fn only_a_refusal_about_the_message_is_for_good() {
        use crate::store::StoreError;
        let io = |kind| {
            DeliverError::Store(StoreError::Io {
                path: "/srv/mail/alice/tmp".into(),
                source: std::io::Error::from(kind),
            })
        };
        let cases = [
            (DeliverError::Empty, false),
            (DeliverError::Loop("alice@example.org".into()), false),
            (io(std::io::ErrorKind::PermissionDenied), true),
            (io(std::io::ErrorKind::NotADirectory), true),
            (io(std::io::ErrorKind::StorageFull), true),
            (
                DeliverError::NoSuchFolder(crate::store::MailboxName::inbox()),
                true,
            ),
            (DeliverError::BadAddress("a b".into()), true),
        ];
        for (e, temporary) in cases {
            let text = e.to_string();
            assert_eq!(DeliveryError::from(e).is_temporary(), temporary, "{text}");
        }
    }

    #[test]
    fn line_ends_become_lf_and_lone_crs_stay() {
        assert_eq!(crlf_to_lf(b"a\r\nb\rc\r\n\r\n"), b"a\nb\rc\n\n");
        assert_eq!(crlf_to_lf(b""), b"");
    }

    #[test]
    fn the_return_path_is_the_smtp_sender() {
        assert_eq!(
            return_path(
                b"Received: x\r\nReturn-Path: <bob@example.net>\r\n\r\nReturn-Path: <no@x>\r\n"
            ),
            Some("bob@example.net".into())
        );
        assert_eq!(return_path(b"Return-Path: <>\r\n\r\n"), None);
        assert_eq!(return_path(b"Subject: x\r\n\r\n"), None);
    }

    #[tokio::test]
    async fn mda_exit_codes_decide_temporary_or_permanent() {
        let msg = b"Subject: x\r\n\r\nbody\r\n";
        assert!(run_mda("cat >/dev/null", "isp", msg).await.is_ok());
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        run_mda(&format!("cat > {}", out.display()), "isp", msg)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"Subject: x\n\nbody\n");
        let e = run_mda("cat >/dev/null; echo disk full >&2; exit 75", "isp", msg)
            .await
            .unwrap_err();
        assert!(e.is_temporary() && e.message.contains("disk full"), "{e}");
        let e = run_mda("cat >/dev/null; exit 65", "isp", msg)
            .await
            .unwrap_err();
        assert!(!e.is_temporary() && e.message.contains("exited 65"), "{e}");
        assert!(e.is_deletable(), "{e}");
        // Faults of ours, not the message's: never a refusal for good
        // (delete_rejected would delete the message on the server). Those
        // that would fail every message stop the run...
        for (mda, says) in [
            (
                "/usr/bin/procmial -d alice",
                "exited 127 (the command was not found)",
            ),
            ("/dev/null", "exited 126 (the command cannot be executed)"),
        ] {
            let e = run_mda(mda, "isp", msg).await.unwrap_err();
            assert!(
                e.is_temporary() && !e.is_deletable() && e.message.contains(says),
                "{mda}: {e}"
            );
        }
        // ...the others keep the message on the server and go on.
        for (mda, says) in [
            ("cat >/dev/null; exit 67", "exited 67"),
            ("cat >/dev/null; exit 77", "exited 77"),
            ("cat >/dev/null; exit 1", "exited 1"),
        ] {
            let e = run_mda(mda, "isp", msg).await.unwrap_err();
            assert!(
                !e.is_temporary() && !e.is_deletable() && e.message.contains(says),
                "{mda}: {e}"
            );
        }
        let e = run_mda("kill -9 $$", "isp", msg).await.unwrap_err();
        assert!(e.is_temporary() && e.message.contains("signal 9"), "{e}");
        let e = run_mda("echo $OWNMAIL_FETCH_ACCOUNT >&2; exit 1", "isp", msg)
            .await
            .unwrap_err();
        assert!(e.message.ends_with(": isp"), "{e}");
    }
}
