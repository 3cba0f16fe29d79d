//! One IMAP session: RFC 3501's states (not authenticated, authenticated,
//! selected, logout), every command, and the untagged news of changes made
//! by others. Bytes in ([`Session::feed`]), [`Out`]s out
//! ([`Session::take_output`]); the driver does the waiting and the sockets.

use std::fs;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use mail_parser::decoders::charsets::map::charset_decoder;

use super::condstore;
use super::fetch;
use super::index::{Index, Record};
use super::mailbox::{Changes, Selected};
use super::search::{self, Candidate};
use super::{Context, Out, Peer};
use crate::auth::{Secret, UserName, Users};
use crate::proto::imap::command::{self, Command, FetchItem, SectionText, StatusItem, StoreMode};
use crate::proto::imap::framer::{Frame, Framer};
use crate::proto::imap::response::{mailbox as mailbox_name, sequence_set};
use crate::store::delivery::{Adopt, Durability};
use crate::store::flags::{Flag, Flags};
use crate::store::keywords::Keywords;
use crate::store::name::decode_mutf7;
use crate::store::subscriptions;
use crate::store::{MailboxName, Maildir, StoreError, uidlist};

/// Errors in a row before the session is closed (RFC 9051 suggests a
/// server may give up on a client that only sends garbage).
const MAX_BAD: u32 = 20;
#[cfg(test)]
pub(crate) const MAX_BAD_FOR_TESTS: u32 = MAX_BAD;
/// RFC 3501 5.4: the autologout timer is at least 30 minutes.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Normal,
    /// AUTHENTICATE PLAIN sent `+ `: the next line is the response.
    Sasl {
        tag: String,
    },
    /// IDLE: the next line must be DONE.
    Idle {
        tag: String,
    },
    Logout,
}

/// A session. See the module documentation.
pub struct Session {
    ctx: Arc<Context>,
    peer: Peer,
    tls: bool,
    framer: Framer,
    mode: Mode,
    user: Option<UserName>,
    maildir: Option<Maildir>,
    selected: Option<Selected>,
    outs: Vec<Out>,
    buf: Vec<u8>,
    bad: u32,
    /// The folder's [`Selected::stamp`] when IDLE last looked.
    idle_stamp: Option<super::shared::Stamp>,
    idle_polls: u32,
    /// CONDSTORE enabled (RFC 7162 3.1): MODSEQ in every FETCH response
    /// that carries flags.
    condstore: bool,
    /// An APPEND whose message is being written to `tmp/` as it arrives.
    spool: Option<Spool>,
    /// Where a long response goes while it is being computed ([`Early`]).
    early: Option<Early>,
    /// The last offer was given back: `outs` holds a send's worth already.
    early_refused: bool,
}

/// Takes output before the command that produces it is done (the driver
/// sends it meanwhile), or gives it back when it cannot take more now
/// (the session keeps it, and offers it again with what follows).
pub type Early = Box<dyn FnMut(Vec<Out>) -> Result<(), Vec<Out>> + Send>;

/// A streamed APPEND (see [`crate::proto::imap::framer::SPOOL_MIN`]).
struct Spool {
    tag: String,
    /// Where the message goes; or the answer to give once the client has
    /// sent it all (the bytes are then dropped).
    target: Result<SpoolTarget, Reply>,
    /// A CR ended the last chunk (CRLF becomes LF across chunks).
    pending_cr: bool,
}

struct SpoolTarget {
    folder: crate::store::Folder,
    tmp: crate::store::TmpMessage,
    flags: Flags,
    date: Option<command::DateTime>,
}

type Res = Result<String, Reply>;

/// A tagged answer other than OK.
enum Reply {
    No(String),
    Bad(String),
    /// The session was closed with `* BYE`: no tagged answer.
    Closed,
}

/// What Dovecot says when the selected folder is not the one the session
/// knew (renamed, deleted, or replaced: a new UIDVALIDITY).
const BYE_INCONSISTENT: &str = "IMAP session state is inconsistent, please relogin.";

impl From<StoreError> for Reply {
    fn from(e: StoreError) -> Reply {
        match &e {
            // The path and the cause are for the log: a client is told
            // no file system paths.
            StoreError::Io { .. } => {
                tracing::error!("imap: {e}");
                Reply::No(SERVERBUG.into())
            }
            StoreError::NoSuchFolder(_) => Reply::No(format!("[NONEXISTENT] {e}")),
            StoreError::FolderExists(_) => Reply::No(format!("[ALREADYEXISTS] {e}")),
            StoreError::NotMaildir { .. } => internal(&e),
            StoreError::Keyword(_) => match e {
                StoreError::Keyword(k) => keyword_err(k),
                e => Reply::No(e.to_string()),
            },
            _ => Reply::No(e.to_string()),
        }
    }
}

/// The answer to a fault on our side (Dovecot's words, without its time).
const SERVERBUG: &str =
    "[SERVERBUG] Internal error occurred. Refer to server log for more information.";

/// A fault on our side: logged loudly with its paths, answered without.
fn internal(e: impl std::fmt::Display) -> Reply {
    tracing::error!("imap: {e}");
    Reply::No(SERVERBUG.into())
}

/// COPY or MOVE of a message another session expunged (Dovecot's words).
const EXPUNGEISSUED_COPY: &str = "[EXPUNGEISSUED] Some of the requested messages no longer exist.";

fn no<T>(msg: impl Into<String>) -> Result<T, Reply> {
    Err(Reply::No(msg.into()))
}

impl Session {
    /// A new session, greeting written.
    pub fn new(ctx: Arc<Context>, peer: Peer) -> Session {
        let mut s = Session::blank(ctx, peer);
        let caps = s.capabilities();
        s.line(&format!("* OK [CAPABILITY {caps}] ownmail ready"));
        s
    }

    /// A session already authenticated as `user` (`--stdio --preauth`).
    pub fn preauth(ctx: Arc<Context>, peer: Peer, user: UserName) -> Result<Session, StoreError> {
        let mut s = Session::blank(ctx, peer);
        s.start_user(user)?;
        let caps = s.capabilities();
        s.line(&format!("* PREAUTH [CAPABILITY {caps}] ownmail ready"));
        Ok(s)
    }

    fn blank(ctx: Arc<Context>, peer: Peer) -> Session {
        let framer = Framer::new(ctx.limits);
        Session {
            tls: peer.tls,
            ctx,
            peer,
            framer,
            mode: Mode::Normal,
            user: None,
            maildir: None,
            selected: None,
            outs: Vec::new(),
            buf: Vec::new(),
            bad: 0,
            idle_stamp: None,
            idle_polls: 0,
            condstore: false,
            spool: None,
            early: None,
            early_refused: false,
        }
    }

    pub fn user(&self) -> Option<&UserName> {
        self.user.as_ref()
    }

    pub fn is_idling(&self) -> bool {
        matches!(self.mode, Mode::Idle { .. })
    }

    pub fn is_done(&self) -> bool {
        self.mode == Mode::Logout
    }

    /// Whether a command is partly received.
    pub fn in_command(&self) -> bool {
        self.framer.in_command()
    }

    /// Tells the session TLS is now on (after [`Out::StartTls`]).
    pub fn tls_started(&mut self) {
        self.tls = true;
    }

    /// The output so far.
    pub fn take_output(&mut self) -> Vec<Out> {
        self.flush_buf();
        std::mem::take(&mut self.outs)
    }

    /// Where to offer a long response's output as it is computed (a FETCH
    /// of a whole folder); `None`: everything waits for [`take_output`].
    ///
    /// [`take_output`]: Session::take_output
    pub fn set_early(&mut self, early: Option<Early>) {
        self.early = early;
        self.early_refused = false;
    }

    /// Offers the output so far once it is a send's worth ([`super::CHUNK`]
    /// bytes, counting literals streamed from files).
    fn offer_early(&mut self) {
        if self.early.is_none() {
            return;
        }
        if !self.early_refused && self.buf.len() < super::CHUNK {
            let pending = self.buf.len()
                + self
                    .outs
                    .iter()
                    .map(|o| match o {
                        Out::Bytes(b) => b.len(),
                        Out::File { len, .. } => usize::try_from(*len).unwrap_or(usize::MAX),
                        _ => 0,
                    })
                    .fold(0usize, usize::saturating_add);
            if pending < super::CHUNK {
                return;
            }
        }
        self.flush_buf();
        let outs = std::mem::take(&mut self.outs);
        self.early_refused = false;
        if let Some(early) = self.early.as_mut()
            && let Err(outs) = early(outs)
        {
            self.outs = outs;
            self.early_refused = true;
        }
    }

    /// Server shutdown or autologout: `* BYE` and close.
    pub fn bye(&mut self, why: &str) {
        self.line(&format!("* BYE {why}"));
        self.close();
    }

    fn close(&mut self) {
        self.mode = Mode::Logout;
        self.flush_buf();
        self.outs.push(Out::Close);
    }

    fn line(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    fn flush_buf(&mut self) {
        if !self.buf.is_empty() {
            self.outs.push(Out::Bytes(std::mem::take(&mut self.buf)));
        }
    }

    fn capabilities(&self) -> String {
        let mut c = String::from("IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE");
        if self.user.is_none() {
            if self.ctx.tls && !self.tls {
                c.push_str(" STARTTLS");
            }
            if self.login_allowed() {
                c.push_str(" AUTH=PLAIN");
            } else {
                c.push_str(" LOGINDISABLED");
            }
        } else {
            c.push_str(
                " NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN SPECIAL-USE LIST-EXTENDED LIST-STATUS ESEARCH STATUS=SIZE CONDSTORE",
            );
            c.push_str(&format!(" APPENDLIMIT={}", self.ctx.limits.max_literal));
        }
        c
    }

    fn login_allowed(&self) -> bool {
        self.tls || self.peer.may_login_in_plain()
    }

    /// Bytes from the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.mode == Mode::Logout {
            return;
        }
        self.framer.push(bytes);
        while self.mode != Mode::Logout {
            let Some(frame) = self.framer.next_frame() else {
                break;
            };
            if self.spool.is_some() && !matches!(frame, Frame::SpoolData(_) | Frame::SpoolEnd(_)) {
                // The command was cut short (a line too long after it):
                // the temporary file goes.
                self.spool = None;
            }
            match frame {
                Frame::SpoolStart { head, size, sync } => self.spool_start(&head, size, sync),
                Frame::SpoolData(bytes) => self.spool_data(&bytes),
                Frame::SpoolEnd(rest) => self.spool_end(&rest),
                Frame::Continue => self.line("+ Ready for literal data"),
                Frame::LineTooLong { tag } => {
                    self.bad_reply(tag.as_deref(), "[TOOBIG] command line too long")
                }
                Frame::LiteralTooBig { tag, limit } => {
                    let tag = tag.unwrap_or_else(|| "*".into());
                    if limit == self.ctx.limits.max_literal {
                        self.line(&format!(
                            "{tag} NO [TOOBIG] literal larger than APPENDLIMIT={limit}"
                        ));
                    } else {
                        self.line(&format!(
                            "{tag} NO [TOOBIG] literal larger than {limit} bytes (only APPEND takes more)"
                        ));
                    }
                }
                Frame::Fatal { reason, .. } => self.bye(&format!("[TOOBIG] {reason}")),
                Frame::Command(bytes) => {
                    let started_tls = self.command(&bytes);
                    if started_tls {
                        // RFC 3501 6.2.1: nothing sent before the handshake
                        // counts; what the client pipelined is dropped.
                        let _ = self.framer.take_pending();
                        break;
                    }
                }
            }
        }
    }

    /// The tagged answer to a command (none when it said all already, or
    /// closed the session).
    fn answer(&mut self, tag: &str, result: Res) {
        match result {
            Ok(text) if text.is_empty() => {}
            Ok(text) => self.line(&format!("{tag} OK {text}")),
            Err(Reply::No(text)) => self.line(&format!("{tag} NO {text}")),
            Err(Reply::Bad(text)) => self.bad_reply(Some(tag), &text),
            Err(Reply::Closed) => {}
        }
    }

    fn bad_reply(&mut self, tag: Option<&str>, msg: &str) {
        self.line(&format!("{} BAD {msg}", tag.unwrap_or("*")));
        self.bad += 1;
        if self.bad >= MAX_BAD {
            self.bye("too many bad commands");
        }
    }

    /// One command; true when TLS must start now.
    fn command(&mut self, bytes: &[u8]) -> bool {
        match self.mode.clone() {
            Mode::Sasl { tag } => {
                self.mode = Mode::Normal;
                let line = bytes.trim_ascii_end();
                if line == b"*" {
                    self.line(&format!("{tag} BAD authentication cancelled"));
                } else {
                    self.sasl_plain(&tag, line);
                }
                return false;
            }
            Mode::Idle { tag } => {
                if bytes.trim_ascii().eq_ignore_ascii_case(b"DONE") {
                    self.mode = Mode::Normal;
                    if self.updates(true).is_ok() {
                        self.line(&format!("{tag} OK IDLE terminated"));
                    }
                } else {
                    self.mode = Mode::Normal;
                    self.line(&format!("{tag} BAD expected DONE"));
                }
                return false;
            }
            Mode::Normal | Mode::Logout => {}
        }
        let tagged = match command::parse(bytes) {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!("imap: bad command: {e}");
                self.bad_reply(e.tag.as_deref(), &e.message);
                return false;
            }
        };
        self.bad = 0;
        let tag = tagged.tag;
        tracing::debug!(tag, command = tagged.command.name(), "imap command");
        let mut start_tls = false;
        let result = self.execute(&tag, tagged.command, &mut start_tls);
        self.answer(&tag, result);
        if start_tls {
            self.flush_buf();
            self.outs.push(Out::StartTls);
        }
        start_tls
    }

    fn execute(&mut self, tag: &str, cmd: Command, start_tls: &mut bool) -> Res {
        let authed = self.user.is_some();
        let selected = self.selected.is_some();
        let needs = |want_auth: bool, want_sel: bool| -> Result<(), Reply> {
            if want_auth && !authed {
                return Err(Reply::Bad("log in first".into()));
            }
            if !want_auth && authed {
                return Err(Reply::Bad("already logged in".into()));
            }
            if want_sel && !selected {
                return Err(Reply::Bad("no folder selected".into()));
            }
            Ok(())
        };
        let is_examine = matches!(cmd, Command::Examine { .. });
        let is_move = matches!(cmd, Command::Move { .. });
        let cmd_name = cmd.name();
        match cmd {
            Command::Capability => {
                let caps = self.capabilities();
                self.line(&format!("* CAPABILITY {caps}"));
                Ok("CAPABILITY completed".into())
            }
            Command::Noop | Command::Check => {
                // RFC 3501 6.4.1: CHECK is for the selected state only.
                if matches!(cmd, Command::Check) {
                    needs(true, true)?;
                }
                self.updates(true)?;
                Ok(format!(
                    "{} completed",
                    if matches!(cmd, Command::Noop) {
                        "NOOP"
                    } else {
                        "CHECK"
                    }
                ))
            }
            Command::Logout => {
                self.line("* BYE logging out");
                self.line(&format!("{tag} OK LOGOUT completed"));
                self.close();
                Ok(String::new())
            }
            Command::StartTls => {
                needs(false, false)?;
                if self.tls {
                    return Err(Reply::Bad("TLS is already on".into()));
                }
                if !self.ctx.tls {
                    return Err(Reply::Bad(
                        "STARTTLS is not available (no tls: in the configuration)".into(),
                    ));
                }
                if self.framer.pending() > 0 {
                    return Err(Reply::Bad(
                        "nothing may follow STARTTLS before the handshake".into(),
                    ));
                }
                *start_tls = true;
                Ok("Begin TLS negotiation now".into())
            }
            Command::Login { user, password } => {
                needs(false, false)?;
                if !self.login_allowed() {
                    return no("[PRIVACYREQUIRED] LOGINDISABLED: use STARTTLS first");
                }
                let user = String::from_utf8_lossy(&user).into_owned();
                let password = Secret::new(String::from_utf8_lossy(&password).into_owned());
                self.login(&user, &password)
            }
            Command::Authenticate { mechanism, initial } => {
                needs(false, false)?;
                if mechanism != "PLAIN" {
                    return no("unsupported mechanism (AUTH=PLAIN only)");
                }
                if !self.login_allowed() {
                    return no("[PRIVACYREQUIRED] LOGINDISABLED: use STARTTLS first");
                }
                match initial {
                    Some(resp) => {
                        self.sasl_plain(tag, &resp);
                        Ok(String::new())
                    }
                    None => {
                        self.line("+ ");
                        self.mode = Mode::Sasl {
                            tag: tag.to_owned(),
                        };
                        Ok(String::new())
                    }
                }
            }
            Command::Select { mailbox, condstore } | Command::Examine { mailbox, condstore } => {
                needs(true, false)?;
                let read_only = is_examine;
                if condstore {
                    self.condstore = true;
                }
                // RFC 3501 6.3.1: a failed SELECT leaves nothing selected.
                // RFC 7162 3.2.11 (and RFC 9051 7.1): say where the old
                // folder's responses end, as Dovecot does, before anything
                // about the new one (or the NO).
                if self.selected.take().is_some() {
                    self.line("* OK [CLOSED] previous folder closed");
                }
                let name = wire_name(&mailbox)?;
                let path = self.folder_path(&name)?;
                let mut sel = Selected::open(name, path, read_only)?;
                sel.condstore = self.condstore;
                let n = sel.msgs.len();
                let recent = sel.msgs.iter().filter(|m| m.recent).count();
                let first_unseen = sel.msgs.iter().position(|m| !m.flags.has_system(b'S'));
                let flags = flag_list(&sel);
                self.line(&format!("* FLAGS ({flags})"));
                self.line(&format!("* {n} EXISTS"));
                self.line(&format!("* {recent} RECENT"));
                if let Some(i) = first_unseen {
                    self.line(&format!("* OK [UNSEEN {}] first unseen", i + 1));
                }
                self.line(&format!(
                    "* OK [UIDVALIDITY {}] UIDs valid",
                    sel.uid_validity
                ));
                self.line(&format!(
                    "* OK [UIDNEXT {}] predicted next UID",
                    sel.next_uid
                ));
                // RFC 7162 3.1.2.1: on every SELECT and EXAMINE.
                self.line(&format!(
                    "* OK [HIGHESTMODSEQ {}] highest",
                    sel.highest_modseq()
                ));
                if read_only {
                    self.line("* OK [PERMANENTFLAGS ()] read-only");
                } else {
                    self.line(&format!(
                        "* OK [PERMANENTFLAGS ({flags} \\*)] flags permitted"
                    ));
                }
                self.selected = Some(sel);
                Ok(if read_only {
                    "[READ-ONLY] EXAMINE completed".into()
                } else {
                    "[READ-WRITE] SELECT completed".into()
                })
            }
            Command::Create(m) => {
                needs(true, false)?;
                let raw = wire_string(&m)?;
                let raw = raw.strip_suffix('/').unwrap_or(&raw);
                let name = MailboxName::new(raw).map_err(|e| Reply::No(e.to_string()))?;
                self.maildir()?.create_folder(&name)?;
                Ok("CREATE completed".into())
            }
            Command::Delete(m) => {
                needs(true, false)?;
                let name = wire_name(&m)?;
                if name.is_inbox() {
                    return no("INBOX cannot be deleted");
                }
                if self.selected.as_ref().is_some_and(|s| s.name == name) {
                    self.selected = None;
                }
                // Checks that it exists (NONEXISTENT otherwise).
                self.folder_path(&name)?;
                let md = self.maildir()?;
                md.delete_folder(&name)?;
                let root = md.root().to_owned();
                // As Dovecot does: the deleted folder is unsubscribed (its
                // children, which stay, keep theirs).
                if let Err(e) = subscriptions::rename(&root, &name, None) {
                    tracing::error!("imap: subscriptions after DELETE {name}: {e}");
                }
                Ok("DELETE completed".into())
            }
            Command::Rename(from, to) => {
                needs(true, false)?;
                let from = wire_name(&from)?;
                let to = wire_name(&to)?;
                let md = self.maildir()?.clone();
                if from.is_inbox() {
                    return self.rename_inbox(&md, &to);
                }
                let from_path = md.folder_path(&from);
                // Children move with their parent: `.A.x` becomes `.B.x`. A
                // parent that is only a name (LIST's \Noselect, `.A` never
                // made) moves its children alone, as Dovecot does.
                let mut moves = Vec::new();
                if from_path.is_dir() {
                    moves.push((from_path, md.folder_path(&to)));
                }
                for child in md.list_folders()? {
                    if let Some(rest) = child.as_str().strip_prefix(&format!("{}/", from.as_str()))
                    {
                        let new = MailboxName::new(&format!("{}/{rest}", to.as_str()))
                            .map_err(|e| Reply::No(e.to_string()))?;
                        moves.push((md.folder_path(&child), md.folder_path(&new)));
                    }
                }
                if moves.is_empty() {
                    return Err(StoreError::NoSuchFolder(from).into());
                }
                // Nothing is replaced: not `to`, and none of its children
                // (`to` itself may be a name only).
                if md.folder_path(&to).exists() || moves.iter().any(|(_, b)| b.exists()) {
                    return Err(StoreError::FolderExists(to).into());
                }
                for (a, b) in moves {
                    fs::rename(&a, &b).map_err(StoreError::io(&a))?;
                }
                crate::store::durable::fsync_dir(md.root()).map_err(StoreError::io(md.root()))?;
                // RFC 9051 6.3.5: subscriptions follow, children's too.
                if let Err(e) = subscriptions::rename(md.root(), &from, Some(&to)) {
                    tracing::error!("imap: subscriptions after RENAME {from}: {e}");
                }
                Ok("RENAME completed".into())
            }
            Command::Subscribe(m) | Command::Unsubscribe(m) => {
                needs(true, false)?;
                let on = cmd_name == "SUBSCRIBE";
                let name = wire_name(&m)?;
                // RFC 3501 6.3.6: a folder that does not exist may be
                // subscribed; 6.3.7: unsubscribing one that is not is fine.
                let root = self.maildir()?.root().to_owned();
                subscriptions::set(&root, &name, on)
                    .map_err(|e| internal(format_args!("subscriptions: {e}")))?;
                Ok(format!("{cmd_name} completed"))
            }
            Command::List {
                reference,
                patterns,
                select,
                returns,
                status,
            } => {
                needs(true, false)?;
                self.list(&reference, &patterns, &select, &returns, &status, false)
            }
            Command::Lsub { reference, pattern } => {
                needs(true, false)?;
                self.list(&reference, &[pattern], &[], &[], &[], true)
            }
            Command::Status { mailbox, items } => {
                needs(true, false)?;
                let name = wire_name(&mailbox)?;
                let line = self.status_line(&name, &items)?;
                self.line(&line);
                Ok("STATUS completed".into())
            }
            Command::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                needs(true, false)?;
                self.append(&mailbox, &flags, date, &message)
            }
            Command::Close => {
                needs(true, true)?;
                if self.selected.as_ref().is_some_and(|s| !s.read_only) {
                    self.refresh_quietly()?;
                    let sel = self.sel()?;
                    let del: Vec<usize> = (0..sel.msgs.len())
                        .filter(|&i| sel.msgs[i].flags.has_system(b'T'))
                        .collect();
                    sel.remove(&del)?;
                }
                self.selected = None;
                Ok("CLOSE completed".into())
            }
            Command::Unselect => {
                needs(true, true)?;
                self.selected = None;
                Ok("UNSELECT completed".into())
            }
            Command::Expunge | Command::UidExpunge(_) => {
                needs(true, true)?;
                if self.sel()?.read_only {
                    return no("the folder is read-only (EXAMINE)");
                }
                self.refresh_quietly()?;
                let sel = self.sel()?;
                let only = match &cmd {
                    Command::UidExpunge(set) => Some(sel.resolve(set, true)),
                    _ => None,
                };
                let del: Vec<usize> = (0..sel.msgs.len())
                    .filter(|&i| sel.msgs[i].flags.has_system(b'T'))
                    .filter(|i| only.as_ref().is_none_or(|o| o.contains(i)))
                    .collect();
                sel.remove(&del)?;
                self.updates(true)?;
                Ok("EXPUNGE completed".into())
            }
            Command::Search {
                uid,
                ret,
                key,
                charset,
            } => {
                needs(true, true)?;
                // RFC 3501 6.4.4: the search strings are in `charset`; the
                // search runs on UTF-8, so they are decoded first (as
                // Dovecot takes any charset it knows: older clients send
                // their locale's, ISO-8859-1 or windows-1252).
                let key = match charset.as_deref() {
                    None => key,
                    Some(cs)
                        if cs.eq_ignore_ascii_case("UTF-8")
                            || cs.eq_ignore_ascii_case("US-ASCII") =>
                    {
                        key
                    }
                    Some(cs) => match charset_decoder(cs.as_bytes()) {
                        Some(decode) => search::recode(key, decode),
                        None => {
                            return no(format!(
                                "[BADCHARSET (UTF-8 US-ASCII ISO-8859-1 WINDOWS-1252)] \
                                 unknown charset {cs}"
                            ));
                        }
                    },
                };
                let with_modseq = condstore::uses_modseq(&key);
                if with_modseq {
                    self.enable_condstore();
                }
                self.updates(false)?;
                let sel = self.sel()?;
                let mut hits: Vec<u32> = Vec::new();
                // RFC 7162 3.1.5: the highest mod-sequence of those found.
                let mut top_modseq = 0;
                // The index answers TEXT and BODY; records it lacks are
                // computed on the way and added (in batches: bounded memory).
                let wants_text = search::needs_text(&key);
                let shared = sel.shared.clone();
                let mut guard = wants_text.then(|| shared.index());
                let mut idx = guard.as_mut().and_then(|g| g.as_mut());
                if let Some(idx) = idx.as_deref_mut() {
                    search::fill_texts(sel, idx);
                }
                let mut new_records = Vec::new();
                let mut new_bytes = 0;
                for i in 0..sel.msgs.len() {
                    if sel.msgs[i].gone {
                        continue;
                    }
                    let mut c = Candidate::new(sel, i, idx.as_deref_mut());
                    if search::matches(&mut c, &key) {
                        hits.push(if uid { sel.msgs[i].uid } else { i as u32 + 1 });
                        if with_modseq {
                            top_modseq = top_modseq.max(sel.modseq_of(sel.msgs[i].uid));
                        }
                    }
                    if let Some(r) = c.take_record() {
                        new_bytes += r.text.len();
                        new_records.push(r);
                    }
                    if new_bytes > 4 << 20
                        && let Some(idx) = idx.as_deref_mut()
                    {
                        let _ = idx.append(&std::mem::take(&mut new_records));
                        new_bytes = 0;
                    }
                }
                if let Some(idx) = idx {
                    let _ = idx.append(&new_records);
                }
                drop(guard);
                match ret {
                    None => {
                        let mut line = String::from("* SEARCH");
                        for h in &hits {
                            line.push_str(&format!(" {h}"));
                        }
                        if with_modseq && !hits.is_empty() {
                            line.push_str(&format!(" (MODSEQ {top_modseq})"));
                        }
                        self.line(&line);
                    }
                    Some(opts) => {
                        let opts = if opts.is_empty() {
                            vec!["ALL".to_owned()]
                        } else {
                            opts
                        };
                        let mut line = format!("* ESEARCH (TAG \"{tag}\")");
                        if uid {
                            line.push_str(" UID");
                        }
                        if !hits.is_empty() {
                            for o in &opts {
                                match o.as_str() {
                                    "MIN" => line.push_str(&format!(" MIN {}", hits[0])),
                                    "MAX" => {
                                        line.push_str(&format!(" MAX {}", hits[hits.len() - 1]))
                                    }
                                    "ALL" => {
                                        line.push_str(&format!(" ALL {}", sequence_set(&hits)))
                                    }
                                    "COUNT" => {}
                                    other => {
                                        return Err(Reply::Bad(format!(
                                            "unknown RETURN option {other}"
                                        )));
                                    }
                                }
                            }
                        }
                        if opts.iter().any(|o| o == "COUNT") {
                            line.push_str(&format!(" COUNT {}", hits.len()));
                        }
                        if with_modseq && !hits.is_empty() {
                            line.push_str(&format!(" MODSEQ {top_modseq}"));
                        }
                        self.line(&line);
                    }
                }
                Ok(format!("{}SEARCH completed", if uid { "UID " } else { "" }))
            }
            Command::Fetch {
                uid,
                set,
                items,
                changed_since,
            } => {
                needs(true, true)?;
                let mut items = items;
                // RFC 7162 3.1.4.1: CHANGEDSINCE implies MODSEQ; 3.1: both
                // enable CONDSTORE.
                if changed_since.is_some() && !items.contains(&FetchItem::ModSeq) {
                    items.push(FetchItem::ModSeq);
                }
                if items.contains(&FetchItem::ModSeq) {
                    self.enable_condstore();
                }
                self.updates(false)?;
                let expunged = self.fetch(uid, &set, &items, changed_since)?;
                let name = if uid { "UID FETCH" } else { "FETCH" };
                // RFC 2180 4.1.2: what another session expunged is not
                // made up; the client is told why it is missing.
                Ok(if expunged {
                    format!("[EXPUNGEISSUED] {name} completed; some messages were expunged")
                } else {
                    format!("{name} completed")
                })
            }
            Command::Store {
                uid,
                set,
                mode,
                silent,
                flags,
                unchanged_since,
            } => {
                needs(true, true)?;
                if unchanged_since.is_some() {
                    self.enable_condstore();
                }
                self.updates(false)?;
                let (modified, expunged) =
                    self.store(uid, &set, mode, silent, &flags, unchanged_since)?;
                let name = if uid { "UID STORE" } else { "STORE" };
                // RFC 7162 3.1.3: the messages changed since UNCHANGEDSINCE
                // are named in MODIFIED and left alone. RFC 2180 4.2.1: the
                // ones another session expunged are skipped, and said so.
                Ok(if modified.is_empty() && expunged {
                    format!("[EXPUNGEISSUED] {name} completed; some messages were expunged")
                } else if modified.is_empty() {
                    format!("{name} completed")
                } else {
                    format!(
                        "[MODIFIED {}] conditional {name} failed for some messages",
                        sequence_set(&modified)
                    )
                })
            }
            Command::Copy { uid, set, mailbox } | Command::Move { uid, set, mailbox } => {
                needs(true, true)?;
                self.updates(false)?;
                self.copy(uid, &set, &mailbox, is_move)
            }
            Command::Idle => {
                needs(true, false)?;
                self.line("+ idling");
                self.mode = Mode::Idle {
                    tag: tag.to_owned(),
                };
                self.updates(true)?;
                Ok(String::new())
            }
            Command::Namespace => {
                needs(true, false)?;
                self.line("* NAMESPACE ((\"\" \"/\")) NIL NIL");
                Ok("NAMESPACE completed".into())
            }
            Command::Id(_) => {
                self.line(&format!(
                    "* ID (\"name\" \"ownmail\" \"version\" \"{}\")",
                    env!("CARGO_PKG_VERSION")
                ));
                Ok("ID completed".into())
            }
            Command::Enable(caps) => {
                needs(true, false)?;
                // RFC 5161 3.2: ENABLED names what this command enabled.
                // CONDSTORE is all we have that needs enabling (QRESYNC and
                // UTF8=ACCEPT are not offered).
                let mut line = String::from("* ENABLED");
                if !self.condstore && caps.iter().any(|c| c.eq_ignore_ascii_case("CONDSTORE")) {
                    self.enable_condstore();
                    line.push_str(" CONDSTORE");
                }
                self.line(&line);
                Ok("ENABLE completed".into())
            }
        }
    }

    /// RFC 3501 6.3.5: renaming INBOX moves its messages into a new folder
    /// of that name; INBOX stays, empty (of what it held when we looked:
    /// a message delivered meanwhile stays). The files are renamed, not
    /// copied, so nothing is ever in two places or none; the new folder
    /// gives them UIDs of its own, INBOX never reuses theirs.
    fn rename_inbox(&mut self, md: &Maildir, to: &MailboxName) -> Res {
        if to.is_inbox() {
            return no("INBOX cannot be renamed to itself");
        }
        let dest = md.create_folder(to)?;
        let src = md.root().to_owned();
        // Keyword letters are per folder: the new one starts with INBOX's.
        let kw = src.join(crate::store::keywords::FILE_NAME);
        if kw.exists() {
            let to_kw = dest.path().join(crate::store::keywords::FILE_NAME);
            fs::copy(&kw, &to_kw).map_err(StoreError::io(&to_kw))?;
            let f = fs::File::open(&to_kw).map_err(StoreError::io(&to_kw))?;
            f.sync_all().map_err(StoreError::io(&to_kw))?;
        }
        let mut moved = 0usize;
        for sub in ["cur", "new"] {
            let dir = src.join(sub);
            let entries = fs::read_dir(&dir).map_err(StoreError::io(&dir))?;
            for entry in entries.flatten() {
                let name = entry.file_name();
                if name.to_string_lossy().starts_with('.') {
                    continue;
                }
                let target = dest.path().join(sub).join(&name);
                match fs::rename(entry.path(), &target) {
                    Ok(()) => moved += 1,
                    // Expunged or moved by another process meanwhile.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io(entry.path())(e).into()),
                }
            }
        }
        // Durable before OK: both ends of every rename.
        for d in [src.join("cur"), src.join("new")] {
            crate::store::durable::fsync_dir(&d).map_err(StoreError::io(&d))?;
        }
        dest.sync_dirs(true, true)?;
        tracing::info!(to = %to, moved, "imap: INBOX renamed");
        self.updates(false)?;
        Ok("RENAME completed".into())
    }

    /// RFC 7162 3.1: CONDSTORE is on from now on; the selected folder's
    /// mod-sequences are brought up to date at once.
    fn enable_condstore(&mut self) {
        self.condstore = true;
        if let Some(sel) = self.selected.as_mut()
            && !sel.condstore
        {
            sel.condstore = true;
            sel.catch_up_modseqs();
        }
    }

    fn sel(&mut self) -> Result<&mut Selected, Reply> {
        self.selected
            .as_mut()
            .ok_or_else(|| Reply::Bad("no folder selected".into()))
    }

    fn maildir(&self) -> Result<&Maildir, Reply> {
        self.maildir
            .as_ref()
            .ok_or_else(|| Reply::Bad("log in first".into()))
    }

    fn folder_path(&self, name: &MailboxName) -> Result<std::path::PathBuf, Reply> {
        Ok(self.maildir()?.folder(name)?.path().to_owned())
    }

    /// Untagged news of what others changed. `expunge`: EXPUNGE may be sent.
    /// A selected folder that is gone ends the session ([`Reply::Closed`]).
    fn updates(&mut self, expunge: bool) -> Result<(), Reply> {
        let Some(sel) = self.selected.as_mut() else {
            return Ok(());
        };
        let changes = match sel.refresh(expunge) {
            Ok(c) => c,
            Err(e) => return self.refresh_failed(e),
        };
        self.report(changes);
        Ok(())
    }

    /// The selected folder read again, nothing reported yet (EXPUNGE and
    /// CLOSE act on the disk as it is, and report afterwards).
    fn refresh_quietly(&mut self) -> Result<(), Reply> {
        match self.sel()?.refresh(false) {
            Ok(_) => Ok(()),
            Err(e) => self.refresh_failed(e),
        }
    }

    /// RFC 3501 has no answer for a selected folder that disappeared;
    /// Dovecot's is to end the session (the client then logs in again and
    /// sees the folders as they are): nothing is made up for messages that
    /// are no longer there. Another fault leaves the view as it was.
    fn refresh_failed(&mut self, e: StoreError) -> Result<(), Reply> {
        match e {
            StoreError::FolderGone(name) => {
                tracing::info!("imap: selected folder {name} is gone: ending the session");
                self.selected = None;
                self.bye(BYE_INCONSISTENT);
                Err(Reply::Closed)
            }
            e => {
                let name = self.selected.as_ref().map(|s| s.name.to_string());
                tracing::error!("imap: refreshing {}: {e}", name.unwrap_or_default());
                Ok(())
            }
        }
    }

    /// A FLAGS response, and PERMANENTFLAGS, when the folder has keywords
    /// the last one did not name (RFC 3501 7.2.6: as Dovecot, before the
    /// FETCH that shows one), so that a client's list of tags is whole.
    fn announce_new_keywords(&mut self) {
        let Some(sel) = self.selected.as_mut() else {
            return;
        };
        let count = sel.keywords.iter().count();
        if count <= sel.announced_keywords {
            return;
        }
        sel.announced_keywords = count;
        let flags = flag_list(sel);
        let read_only = sel.read_only;
        self.line(&format!("* FLAGS ({flags})"));
        if !read_only {
            self.line(&format!(
                "* OK [PERMANENTFLAGS ({flags} \\*)] flags permitted"
            ));
        }
    }

    fn report(&mut self, changes: Changes) {
        self.announce_new_keywords();
        for seq in &changes.expunged {
            self.line(&format!("* {seq} EXPUNGE"));
        }
        if let Some(n) = changes.exists {
            self.line(&format!("* {n} EXISTS"));
            if changes.recent > 0 {
                let recent = self
                    .selected
                    .as_ref()
                    .map_or(0, |s| s.msgs.iter().filter(|m| m.recent).count());
                self.line(&format!("* {recent} RECENT"));
            }
        }
        let lines: Vec<String> = match self.selected.as_ref() {
            Some(sel) => changes
                .flags
                .iter()
                .filter_map(|&seq| {
                    let m = sel.msgs.get(seq as usize - 1)?;
                    // RFC 7162 3.1: MODSEQ in every unsolicited FETCH.
                    let modseq = if sel.condstore {
                        format!(" MODSEQ ({})", sel.modseq_of(m.uid))
                    } else {
                        String::new()
                    };
                    Some(format!(
                        "* {seq} FETCH (UID {} FLAGS ({}){modseq})",
                        m.uid,
                        sel.flag_names(m).join(" ")
                    ))
                })
                .collect(),
            None => Vec::new(),
        };
        for l in lines {
            self.line(&l);
        }
    }

    /// The folder an IDLE waits on, for the driver to watch.
    pub fn idle_folder(&self) -> Option<std::path::PathBuf> {
        if !self.is_idling() {
            return None;
        }
        self.selected.as_ref().map(|s| s.path.clone())
    }

    /// The folder changed (inotify said so): news now, whatever the stamp.
    pub fn idle_changed(&mut self) {
        if !self.is_idling() {
            return;
        }
        self.idle_stamp = self.selected.as_ref().map(|s| s.stamp());
        let _ = self.updates(true);
    }

    /// IDLE's poll: news now, written at once.
    pub fn idle_poll(&mut self) {
        if !self.is_idling() {
            return;
        }
        let stamp = self.selected.as_ref().map(|s| s.stamp());
        // File times move in coarse ticks: a change in the same tick as the
        // last look leaves the stamp alone, so every 20th poll reads anyway.
        self.idle_polls = self.idle_polls.wrapping_add(1);
        if stamp.is_some() && stamp == self.idle_stamp && !self.idle_polls.is_multiple_of(20) {
            return;
        }
        self.idle_stamp = stamp;
        let _ = self.updates(true);
    }

    fn login(&mut self, user: &str, password: &Secret) -> Res {
        let users = Users::load(&self.ctx.users_file).map_err(|e| {
            tracing::error!("imap: {e}");
            Reply::No("[UNAVAILABLE] the users file cannot be read".into())
        })?;
        let name = UserName::new(user).ok();
        // verify() runs for an invalid name too (a dummy hash): the time
        // taken tells nothing about which names exist.
        let verified = users.verify_from(user, password, self.peer.ip);
        if let (Some(name), true) = (name, verified) {
            self.ctx.throttle.succeeded(self.peer.ip);
            self.start_user(name)?;
            let caps = self.capabilities();
            Ok(format!("[CAPABILITY {caps}] logged in"))
        } else {
            let wait = self.ctx.throttle.failed(self.peer.ip);
            tracing::info!(user, ip = ?self.peer.ip, "imap: login failed");
            self.flush_buf();
            self.outs.push(Out::Sleep(wait));
            no("[AUTHENTICATIONFAILED] invalid user name or password")
        }
    }

    fn sasl_plain(&mut self, tag: &str, b64: &[u8]) {
        let decoded = if b64.is_empty() {
            Some(Vec::new())
        } else {
            base64::engine::general_purpose::STANDARD.decode(b64).ok()
        };
        // RFC 4616: [authzid] NUL authcid NUL passwd.
        let parts: Option<(String, String, String)> = decoded.and_then(|d| {
            let mut it = d.split(|&b| b == 0);
            let z = String::from_utf8(it.next()?.to_vec()).ok()?;
            let c = String::from_utf8(it.next()?.to_vec()).ok()?;
            let p = String::from_utf8(it.next()?.to_vec()).ok()?;
            it.next().is_none().then_some((z, c, p))
        });
        let result = match parts {
            None => Err(Reply::Bad("malformed PLAIN response".into())),
            Some((z, c, _)) if !z.is_empty() && z != c => {
                no("[AUTHORIZATIONFAILED] acting as another user is not allowed")
            }
            Some((_, c, p)) => self.login(&c, &Secret::new(p)),
        };
        self.answer(tag, result);
    }

    fn start_user(&mut self, user: UserName) -> Result<(), StoreError> {
        let root = self.ctx.mail_root.join(user.as_str());
        let md = Maildir::create(root)?;
        self.maildir = Some(md);
        self.user = Some(user);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn list(
        &mut self,
        reference: &[u8],
        patterns: &[Vec<u8>],
        select: &[String],
        returns: &[String],
        status: &[StatusItem],
        lsub: bool,
    ) -> Res {
        let md = self.maildir()?.clone();
        let reference = wire_string(reference)?;
        let cmd = if lsub { "LSUB" } else { "LIST" };
        let special_only = select.iter().any(|s| s == "SPECIAL-USE");
        // RFC 5258 3.1: the SUBSCRIBED selection option; 3.4: the return option.
        let subscribed_only = select.iter().any(|s| s == "SUBSCRIBED");
        // RFC 5258 3.1: RECURSIVEMATCH only together with another
        // selection option; with SUBSCRIBED it also gives the parents of
        // subscribed folders the pattern does not reach (CHILDINFO).
        let recursive = select.iter().any(|s| s == "RECURSIVEMATCH");
        if recursive && !select.iter().any(|s| s != "RECURSIVEMATCH") {
            return Err(Reply::Bad(
                "RECURSIVEMATCH needs another selection option (RFC 5258 3.1)".into(),
            ));
        }
        if let Some(other) = select
            .iter()
            .find(|s| !matches!(s.as_str(), "SUBSCRIBED" | "RECURSIVEMATCH" | "SPECIAL-USE"))
        {
            return Err(Reply::Bad(format!("unknown LIST selection option {other}")));
        }
        // Extended syntax: nonexistent names are \NonExistent (RFC 5258 3).
        let extended = !select.is_empty() || !returns.is_empty();
        let mark_subscribed = subscribed_only || returns.iter().any(|r| r == "SUBSCRIBED");
        let subscribed: Vec<String> = if lsub || mark_subscribed {
            subscriptions::read(md.root())
                .map_err(|e| internal(format_args!("subscriptions: {e}")))?
                .into_iter()
                .map(|n| n.as_str().to_owned())
                .collect()
        } else {
            Vec::new()
        };
        let existing: Vec<MailboxName> = {
            let mut v = vec![MailboxName::inbox()];
            v.extend(md.list_folders()?);
            v
        };
        // LSUB lists the subscription list, whether the folders exist or
        // not (RFC 3501 6.3.9); LIST lists the folders, and with SUBSCRIBED
        // also subscribed names that do not exist (RFC 5258 3.1).
        let mut names: Vec<String> = if lsub {
            subscribed.clone()
        } else {
            existing.iter().map(|n| n.as_str().to_owned()).collect()
        };
        if subscribed_only {
            for n in &subscribed {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
        }
        let mut all: Vec<(String, bool)> = names.iter().map(|n| (n.clone(), true)).collect();
        // Parents that have no directory of their own (`.A.B` without
        // `.A`); for LSUB, parents that are not subscribed themselves, which
        // `%` shows as \Noselect (RFC 3501 6.3.9).
        let names: Vec<MailboxName> = names
            .iter()
            .filter_map(|n| MailboxName::new(n).ok())
            .collect();
        for n in &names {
            let mut p = n.parent();
            while let Some(parent) = p {
                if !all.iter().any(|(x, _)| x == parent.as_str()) {
                    all.push((parent.as_str().to_owned(), false));
                }
                p = parent.parent();
            }
        }
        all.sort_by(|a, b| (a.0 != "INBOX", &a.0).cmp(&(b.0 != "INBOX", &b.0)));
        let mut any_pattern_empty = false;
        let mut lines = Vec::new();
        for pattern in patterns {
            let pattern = wire_string(pattern)?;
            if pattern.is_empty() && !lsub {
                any_pattern_empty = true;
                continue;
            }
            let full = format!("{reference}{pattern}");
            for (name, exists) in &all {
                if !wildcard_match(full.as_bytes(), name.as_bytes()) {
                    continue;
                }
                let children = all.iter().any(|(o, _)| o.starts_with(&format!("{name}/")));
                let is_subscribed = subscribed.contains(name);
                // RFC 5258 3.5 and 4 (example 9): CHILDINFO when a
                // subscribed descendant is itself out of the pattern's reach.
                let childinfo = recursive
                    && subscribed_only
                    && subscribed.iter().any(|d| {
                        d.strip_prefix(name.as_str())
                            .is_some_and(|r| r.starts_with('/'))
                            && !wildcard_match(full.as_bytes(), d.as_bytes())
                    });
                if subscribed_only && !is_subscribed && !childinfo {
                    continue;
                }
                if lsub && !is_subscribed && !pattern.contains('%') {
                    continue;
                }
                let on_disk = existing.iter().any(|e| e.as_str() == name);
                let mut attrs: Vec<&str> = Vec::new();
                if !lsub && !on_disk && (extended || (is_subscribed && subscribed_only)) {
                    // RFC 5258 3: \NonExistent implies \Noselect.
                    attrs.push("\\NonExistent");
                } else if !exists {
                    attrs.push("\\Noselect");
                }
                if mark_subscribed && is_subscribed {
                    attrs.push("\\Subscribed");
                }
                attrs.push(if children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
                let special = special_use(name);
                if let Some(s) = special {
                    attrs.push(s);
                }
                if special_only && special.is_none() {
                    continue;
                }
                if lsub {
                    attrs.retain(|a| *a != "\\HasChildren" && *a != "\\HasNoChildren");
                }
                let mut line = format!("* {cmd} ({}) \"/\" ", attrs.join(" ")).into_bytes();
                mailbox_name(&mut line, name);
                if childinfo {
                    line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
                }
                lines.push((line, name.clone(), *exists));
            }
        }
        if any_pattern_empty && lines.is_empty() {
            self.line("* LIST (\\Noselect) \"/\" \"\"");
        }
        let want_status = returns.iter().any(|r| r == "STATUS") && !status.is_empty();
        for (line, name, exists) in lines {
            self.buf.extend_from_slice(&line);
            self.buf.extend_from_slice(b"\r\n");
            if want_status
                && exists
                && let Ok(n) = MailboxName::new(&name)
                && let Ok(l) = self.status_line(&n, status)
            {
                self.line(&l);
            }
        }
        Ok(format!("{cmd} completed"))
    }

    fn status_line(&mut self, name: &MailboxName, items: &[StatusItem]) -> Result<String, Reply> {
        let path = self.folder_path(name)?;
        let snap = uidlist::sync(&path).map_err(internal)?;
        let mut parts = Vec::new();
        for item in items {
            parts.push(match item {
                StatusItem::Messages => format!("MESSAGES {}", snap.messages.len()),
                StatusItem::Recent => {
                    // Counted as an EXAMINE would, claiming none.
                    let first = crate::store::recent::load(&path, snap.uid_validity)
                        .unwrap_or_else(|e| {
                            tracing::error!(folder = %path.display(), "imap: reading the first recent UID: {e}");
                            None
                        });
                    let recent = snap
                        .messages
                        .iter()
                        .filter(|m| m.sub == "new" || first.is_some_and(|r| m.uid >= r))
                        .count();
                    format!("RECENT {recent}")
                }
                StatusItem::UidNext => format!("UIDNEXT {}", snap.next_uid),
                StatusItem::UidValidity => format!("UIDVALIDITY {}", snap.uid_validity),
                StatusItem::Unseen => format!(
                    "UNSEEN {}",
                    snap.messages
                        .iter()
                        .filter(|m| !m.flags.has_system(b'S'))
                        .count()
                ),
                StatusItem::Size => {
                    let total: u64 = snap
                        .messages
                        .iter()
                        .map(|m| {
                            super::mailbox::name_field(&m.name, "W=").unwrap_or_else(|| {
                                super::mailbox::count_vsize(&m.path(&path)).unwrap_or(0)
                            })
                        })
                        .sum();
                    format!("SIZE {total}")
                }
                StatusItem::HighestModSeq => {
                    let state = crate::store::modseq::shared(&path, snap.uid_validity);
                    let mut state = match state.lock() {
                        Ok(s) => s,
                        Err(p) => p.into_inner(),
                    };
                    let all: Vec<(u32, Flags)> =
                        snap.messages.iter().map(|m| (m.uid, m.flags)).collect();
                    if let Err(e) = state.sync(snap.uid_validity, &all, true) {
                        tracing::error!(folder = %path.display(), "imap: mod-sequences: {e}");
                    }
                    format!("HIGHESTMODSEQ {}", state.highest())
                }
            });
        }
        let mut line = b"* STATUS ".to_vec();
        mailbox_name(&mut line, name.as_str());
        Ok(format!(
            "{} ({})",
            String::from_utf8_lossy(&line),
            parts.join(" ")
        ))
    }

    /// An APPEND's big literal begins: the command is parsed without it
    /// and the message file opened in the folder's `tmp/`.
    fn spool_start(&mut self, head: &[u8], size: u64, sync: bool) {
        let tag = crate::proto::imap::framer::tag_of(head).unwrap_or_else(|| "*".into());
        let target = self.spool_target(head);
        tracing::debug!(tag, size, "imap: APPEND spooled");
        if let Err(e) = &target
            && sync
        {
            // The client waits for `+` before sending: nothing to drop.
            self.framer.cancel_spool();
            match e {
                Reply::No(t) => self.line(&format!("{tag} NO {t}")),
                Reply::Bad(t) => {
                    let t = t.clone();
                    self.bad_reply(Some(&tag), &t)
                }
                Reply::Closed => {}
            }
            return;
        }
        if sync {
            self.line("+ Ready for literal data");
        }
        self.spool = Some(Spool {
            tag,
            target,
            pending_cr: false,
        });
    }

    fn spool_target(&mut self, head: &[u8]) -> Result<SpoolTarget, Reply> {
        // The command as if its message were empty: `{n}` becomes `{0}`.
        let open = head
            .iter()
            .rposition(|&b| b == b'{')
            .ok_or_else(|| Reply::Bad("expected a literal".into()))?;
        let mut cmd = head[..open].to_vec();
        cmd.extend_from_slice(b"{0}\r\n\r\n");
        let parsed = command::parse(&cmd).map_err(|e| Reply::Bad(e.message))?;
        let Command::Append {
            mailbox,
            flags,
            date,
            ..
        } = parsed.command
        else {
            return Err(Reply::Bad("expected APPEND".into()));
        };
        if self.user.is_none() {
            return Err(Reply::Bad("log in first".into()));
        }
        let name = wire_name(&mailbox)?;
        let md = self.maildir()?.clone();
        let folder = md
            .folder(&name)
            .map_err(|_| Reply::No(format!("[TRYCREATE] folder {name} does not exist")))?;
        let flags = resolve_flags(folder.path(), &flags)?;
        let tmp = folder.create_tmp()?;
        Ok(SpoolTarget {
            folder,
            tmp,
            flags,
            date,
        })
    }

    fn spool_data(&mut self, bytes: &[u8]) {
        let Some(spool) = self.spool.as_mut() else {
            return;
        };
        if let Ok(t) = spool.target.as_mut()
            && let Err(e) = write_lf(&mut t.tmp, &mut spool.pending_cr, bytes)
        {
            let e = StoreError::io(t.folder.path().join("tmp"))(e);
            spool.target = Err(Reply::from(e));
        }
    }

    fn spool_end(&mut self, rest: &[u8]) {
        let Some(spool) = self.spool.take() else {
            return;
        };
        let tag = spool.tag;
        let result = match spool.target {
            Err(e) => Err(e),
            Ok(_) if !rest.trim_ascii().is_empty() => Err(Reply::Bad(
                "one message per APPEND (MULTIAPPEND is not offered)".into(),
            )),
            Ok(mut t) => {
                let io_err = |e: std::io::Error| StoreError::io(t.folder.path().join("tmp"))(e);
                match (if spool.pending_cr {
                    t.tmp.write_all(b"\r")
                } else {
                    Ok(())
                })
                .and_then(|()| t.tmp.flush())
                {
                    Err(e) => Err(Reply::from(io_err(e))),
                    Ok(()) => self.append_commit(&t.folder, t.tmp, &t.flags, t.date),
                }
            }
        };
        self.answer(&tag, result);
    }

    fn append(
        &mut self,
        mailbox: &[u8],
        flags: &[String],
        date: Option<command::DateTime>,
        message: &[u8],
    ) -> Res {
        let name = wire_name(mailbox)?;
        let md = self.maildir()?.clone();
        let folder = md
            .folder(&name)
            .map_err(|_| Reply::No(format!("[TRYCREATE] folder {name} does not exist")))?;
        let file_flags = resolve_flags(folder.path(), flags)?;
        let mut tmp = folder.create_tmp()?;
        let io_err = |e: std::io::Error| Reply::from(StoreError::io(folder.path().join("tmp"))(e));
        crate::message::header::copy_crlf_to_lf(&mut &message[..], &mut tmp).map_err(io_err)?;
        tmp.flush().map_err(io_err)?;
        self.append_commit(&folder, tmp, &file_flags, date)
    }

    /// The message written: its date set, committed durably (file and
    /// directory fsynced) and its UID found for APPENDUID.
    fn append_commit(
        &mut self,
        folder: &crate::store::Folder,
        mut tmp: crate::store::TmpMessage,
        file_flags: &Flags,
        date: Option<command::DateTime>,
    ) -> Res {
        if let Some(d) = date {
            let t = if d.unix >= 0 {
                UNIX_EPOCH + Duration::from_secs(d.unix as u64)
            } else {
                UNIX_EPOCH
            };
            tmp.set_mtime(t);
        }
        let base = tmp.base().to_owned();
        // Durable before OK: file and directory fsynced (store::durable).
        tmp.commit(file_flags, false, Durability::Immediate)?;
        let snap = uidlist::sync(folder.path()).map_err(internal)?;
        let uid = snap
            .messages
            .iter()
            .find(|m| m.base().starts_with(&base))
            .map(|m| m.uid);
        // A selected folder gone meanwhile is the next command's news: this
        // one's is that the message is stored.
        if self.selected.as_ref().is_some_and(|s| !s.is_gone()) {
            let _ = self.updates(false);
        }
        Ok(match uid {
            Some(uid) => format!("[APPENDUID {} {uid}] APPEND completed", snap.uid_validity),
            None => "APPEND completed".into(),
        })
    }

    fn store(
        &mut self,
        uid: bool,
        set: &command::SeqSet,
        mode: StoreMode,
        silent: bool,
        flags: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<(Vec<u32>, bool), Reply> {
        let sel = self.sel()?;
        if sel.read_only {
            return no("the folder is read-only (EXAMINE)");
        }
        let wanted = resolve_flags(&sel.path.clone(), flags)?;
        if let Ok(k) = Keywords::load(&sel.path) {
            sel.keywords = k;
        }
        let indexes = sel.resolve(set, uid);
        let mut lines = Vec::new();
        let mut modified = Vec::new();
        let mut done = Vec::with_capacity(indexes.len());
        for i in indexes {
            // RFC 7162 3.1.3. (Another process may change the message
            // between this check and the rename: Dovecot and `deliver` do
            // not take our lock, so no lock here could close that window.)
            if let Some(limit) = unchanged_since
                && !sel.msgs[i].gone
                && sel.modseq_of(sel.msgs[i].uid) > limit
            {
                modified.push(if uid { sel.msgs[i].uid } else { i as u32 + 1 });
                continue;
            }
            done.push(i);
        }
        // Renamed first, numbered after (CONDSTORE), so the FETCH lines
        // carry the new mod-sequences.
        for &i in &done {
            sel.set_flags(i, |cur: Flags| store_apply(cur, wanted, mode))?;
        }
        if sel.condstore {
            sel.record_modseq(&done);
        }
        let expunged = done.iter().any(|&i| sel.msgs[i].gone);
        for &i in &done {
            let m = &sel.msgs[i];
            // .SILENT leaves nothing to say, unless CONDSTORE wants the
            // MODSEQ (RFC 7162 3.2); a message gone meanwhile has neither
            // flags nor a MODSEQ to tell.
            if (silent && !sel.condstore) || m.gone {
                continue;
            }
            let mut items = Vec::with_capacity(3);
            if uid {
                items.push(format!("UID {}", m.uid));
            }
            if !silent {
                items.push(format!("FLAGS ({})", sel.flag_names(m).join(" ")));
            }
            if sel.condstore {
                items.push(format!("MODSEQ ({})", sel.modseq_of(m.uid)));
            }
            lines.push(format!("* {} FETCH ({})", i + 1, items.join(" ")));
        }
        self.announce_new_keywords();
        for l in lines {
            self.line(&l);
        }
        Ok((modified, expunged))
    }

    fn copy(&mut self, uid: bool, set: &command::SeqSet, mailbox: &[u8], is_move: bool) -> Res {
        let dest_name = wire_name(mailbox)?;
        let md = self.maildir()?.clone();
        let dest = md
            .folder(&dest_name)
            .map_err(|_| Reply::No(format!("[TRYCREATE] folder {dest_name} does not exist")))?;
        let sel = self.sel()?;
        if is_move && sel.read_only {
            return no("the folder is read-only (EXAMINE)");
        }
        let indexes: Vec<usize> = sel.resolve(set, uid);
        // RFC 2180 4.4.1, as Dovecot: a copy that cannot be whole is not
        // made (a client that goes on to set \Deleted and EXPUNGE would
        // otherwise lose what was not copied).
        if indexes.iter().any(|&i| sel.msgs[i].gone) {
            return no(EXPUNGEISSUED_COPY);
        }
        if indexes.is_empty() {
            return Ok(format!(
                "{} completed, nothing matched",
                if is_move { "MOVE" } else { "COPY" }
            ));
        }
        let dest_kw = Keywords::load(dest.path()).map_err(StoreError::io(dest.path()))?;
        // Each message is linked (COPY) or renamed (MOVE) into the new
        // folder, as Dovecot links: no byte copied, and a MOVE that a crash
        // interrupts leaves every message in exactly one of the two folders.
        // Where that cannot be (another file system), the bytes are copied.
        let how = if is_move { Adopt::Rename } else { Adopt::Link };
        let mut done = Transfer::default();
        let mut vanished = false;
        let mut failed = None;
        for &i in &indexes {
            match transfer_one(sel, i, &dest, &dest_kw, how, &mut done) {
                Ok(true) => {}
                Ok(false) => {
                    vanished = true;
                    break;
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if vanished || failed.is_some() {
            // Expunged by another process meanwhile, or a fault: nothing is
            // copied or moved (as a failed transaction leaves nothing in
            // Dovecot). What was renamed goes back; copies go.
            done.undo(dest.path());
            if let Some(e) = failed {
                return Err(e);
            }
            return no(EXPUNGEISSUED_COPY);
        }
        let Transfer {
            bases, src_uids, ..
        } = done;
        // One fsync of the folder for the batch, before the answer.
        dest.sync()?;
        // Learning from the user: trains in the background, never fails this.
        let from = self.sel()?.name.clone();
        if let Some(user) = &self.user {
            crate::spam::feedback::after_copy(
                &self.ctx.spam,
                user,
                &from,
                &dest_name,
                is_move,
                dest.path(),
                &bases,
            );
        }
        let snap = uidlist::sync(dest.path()).map_err(internal)?;
        let dest_uids: Vec<u32> = bases
            .iter()
            .filter_map(|b| {
                snap.messages
                    .iter()
                    .find(|m| m.base().starts_with(b.as_str()))
                    .map(|m| m.uid)
            })
            .collect();
        let copyuid = if dest_uids.len() == src_uids.len() && !src_uids.is_empty() {
            format!(
                "[COPYUID {} {} {}] ",
                snap.uid_validity,
                sequence_set(&src_uids),
                sequence_set(&dest_uids)
            )
        } else {
            String::new()
        };
        if is_move {
            // RFC 6851 4.3: COPYUID untagged, then the expunges, then OK.
            if !copyuid.is_empty() {
                self.line(&format!("* OK {copyuid}moved"));
            }
            let sel = self.sel()?;
            sel.remove(&indexes)?;
            let gone = sel.take_gone();
            for seq in gone {
                self.line(&format!("* {seq} EXPUNGE"));
            }
            Ok("MOVE completed".into())
        } else {
            Ok(format!("{copyuid}COPY completed"))
        }
    }

    fn fetch(
        &mut self,
        uid: bool,
        set: &command::SeqSet,
        items: &[FetchItem],
        changed_since: Option<u64>,
    ) -> Result<bool, Reply> {
        let sel = self
            .selected
            .as_mut()
            .ok_or_else(|| Reply::Bad("no folder selected".into()))?;
        let mut indexes = sel.resolve(set, uid);
        if let Some(since) = changed_since {
            // RFC 7162 3.1.4.1: only messages changed after `since`.
            indexes.retain(|&i| sel.modseq_of(sel.msgs[i].uid) > since);
        }
        let mut items = items.to_vec();
        if uid && !items.contains(&FetchItem::Uid) {
            items.insert(0, FetchItem::Uid);
        }
        // Reading a body (not PEEK) sets \Seen (RFC 3501 6.4.5).
        let sets_seen = !sel.read_only
            && items.iter().any(|it| {
                matches!(
                    it,
                    FetchItem::Rfc822
                        | FetchItem::Rfc822Text
                        | FetchItem::BodySection { peek: false, .. }
                )
            });
        // ENVELOPE and body structures come from the folder's index when
        // it has them (checked against the file's size), else from the file.
        let cached = items.iter().any(|it| {
            matches!(
                it,
                FetchItem::Envelope | FetchItem::Body | FetchItem::BodyStructure
            )
        });
        let shared = sel.shared.clone();
        let mut guard = cached.then(|| shared.index());
        // What this FETCH computes for want of a record is kept in the
        // index (in batches: bounded memory), for the next FETCH or SEARCH.
        let mut new_records: Vec<Record> = Vec::new();
        let mut new_bytes = 0;
        let mut expunged = false;
        for i in indexes {
            let sel = self
                .selected
                .as_mut()
                .ok_or_else(|| Reply::Bad("no folder selected".into()))?;
            if sel.msgs[i].gone {
                expunged = true;
                continue;
            }
            let mut seen_set = false;
            if sets_seen && !sel.msgs[i].flags.has_system(b'S') {
                sel.set_flags(i, |mut f| {
                    f.set_system(b'S');
                    f
                })?;
                if sel.msgs[i].gone {
                    expunged = true;
                    continue;
                }
                seen_set = true;
                if sel.condstore {
                    sel.record_modseq(&[i]);
                }
            }
            let mut buf = std::mem::take(&mut self.buf);
            let mut outs = Vec::new();
            let idx = guard.as_ref().and_then(|g| g.as_ref());
            let before = new_records.len();
            fetch_one(
                sel,
                idx,
                i,
                &items,
                seen_set,
                &mut buf,
                &mut outs,
                &mut new_records,
            );
            self.outs.extend(outs);
            self.buf = buf;
            self.offer_early();
            new_bytes += new_records[before..]
                .iter()
                .map(|r| r.text.len() + r.bodystructure.len() + r.envelope.len())
                .sum::<usize>();
            if new_bytes > 4 << 20
                && let Some(idx) = guard.as_mut().and_then(|g| g.as_mut())
            {
                let _ = idx.append(&std::mem::take(&mut new_records));
                new_bytes = 0;
            }
        }
        if let Some(idx) = guard.as_mut().and_then(|g| g.as_mut()) {
            let _ = idx.append(&new_records);
        }
        Ok(expunged)
    }
}

/// The header section of message `i`, read from its file the first time a
/// FETCH item asks for it (empty if the file has gone).
fn header_once<'h>(header: &'h mut Option<Vec<u8>>, sel: &Selected, i: usize) -> &'h [u8] {
    header.get_or_insert_with(|| {
        sel.open_file(i)
            .and_then(|f| fetch::load_header(f).ok())
            .unwrap_or_default()
    })
}

/// One `* n FETCH (...)` response. `buf` holds pending bytes; streamed
/// parts are pushed to `outs` after flushing `buf` into it. With an index
/// (`idx`), the records computed for want of one in it are pushed to
/// `new`.
#[allow(clippy::too_many_arguments)]
fn fetch_one(
    sel: &Selected,
    idx: Option<&Index>,
    i: usize,
    items: &[FetchItem],
    seen_set: bool,
    buf: &mut Vec<u8>,
    outs: &mut Vec<Out>,
    new: &mut Vec<Record>,
) {
    let m = &sel.msgs[i];
    let meta = idx.and_then(|idx| idx.get(m.base(), m.size(&sel.path)?));
    let full = meta.filter(|m| m.is_full());
    // The whole record, computed when BODY or BODYSTRUCTURE is asked for
    // and the index has only part of one (or none).
    let mut computed: Option<Option<Record>> = None;
    // The ENVELOPE computed from the header when the index has none.
    let mut partial: Option<Record> = None;
    let mut loaded: Option<Option<fetch::Loaded>> = None;
    let mut header: Option<Vec<u8>> = None;
    buf.extend_from_slice(format!("* {} FETCH (", i + 1).as_bytes());
    let mut first = true;
    let mut flags_sent = false;
    for item in items {
        if !first {
            buf.push(b' ');
        }
        first = false;
        match item {
            FetchItem::Uid => buf.extend_from_slice(format!("UID {}", m.uid).as_bytes()),
            FetchItem::Flags => {
                flags_sent = true;
                buf.extend_from_slice(
                    format!("FLAGS ({})", sel.flag_names(m).join(" ")).as_bytes(),
                );
            }
            FetchItem::InternalDate => {
                let t = sel
                    .open_file(i)
                    .and_then(|f| f.metadata().ok())
                    .and_then(|md| md.modified().ok())
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs() as i64);
                buf.extend_from_slice(
                    format!("INTERNALDATE {}", fetch::internal_date(t)).as_bytes(),
                );
            }
            FetchItem::Rfc822Size => {
                buf.extend_from_slice(format!("RFC822.SIZE {}", m.vsize(&sel.path)).as_bytes())
            }
            FetchItem::Envelope if meta.is_some() => {
                buf.extend_from_slice(b"ENVELOPE ");
                buf.extend_from_slice(meta.map_or(&[][..], |m| &m.envelope));
            }
            FetchItem::Body if full.is_some() => {
                buf.extend_from_slice(b"BODY ");
                buf.extend_from_slice(full.map_or(&[][..], |m| &m.body));
            }
            FetchItem::BodyStructure if full.is_some() => {
                buf.extend_from_slice(b"BODYSTRUCTURE ");
                buf.extend_from_slice(full.map_or(&[][..], |m| &m.bodystructure));
            }
            FetchItem::Envelope => {
                let size = match header {
                    Some(_) => None,
                    None => {
                        let f = sel.open_file(i);
                        let size = f
                            .as_ref()
                            .and_then(|f| f.metadata().ok())
                            .map(|md| md.len());
                        header = Some(
                            f.and_then(|f| fetch::load_header(f).ok())
                                .unwrap_or_default(),
                        );
                        size
                    }
                };
                buf.extend_from_slice(b"ENVELOPE ");
                let at = buf.len();
                fetch::envelope(buf, header.as_deref().unwrap_or(b""));
                if let Some(size) = size
                    && idx.is_some()
                {
                    partial = Some(Record::envelope_only(m.base(), size, buf[at..].to_vec()));
                }
            }
            FetchItem::Body | FetchItem::BodyStructure
                if idx.is_some()
                    && computed
                        .get_or_insert_with(|| {
                            sel.open_file(i).and_then(|f| Record::compute(f, m.base()))
                        })
                        .is_some() =>
            {
                let r = computed.as_ref().and_then(|c| c.as_ref());
                if matches!(item, FetchItem::Body) {
                    buf.extend_from_slice(b"BODY ");
                    buf.extend_from_slice(r.map_or(&[][..], |r| &r.body));
                } else {
                    buf.extend_from_slice(b"BODYSTRUCTURE ");
                    buf.extend_from_slice(r.map_or(&[][..], |r| &r.bodystructure));
                }
            }
            FetchItem::Body | FetchItem::BodyStructure => {
                let l = loaded
                    .get_or_insert_with(|| sel.open_file(i).and_then(|f| fetch::load(f).ok()));
                let ext = matches!(item, FetchItem::BodyStructure);
                buf.extend_from_slice(if ext { b"BODYSTRUCTURE " } else { b"BODY " });
                match l {
                    Some(l) => fetch::body_structure(buf, &l.bytes, &l.mime, ext),
                    None => buf.extend_from_slice(b"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)"),
                }
            }
            FetchItem::Rfc822 => stream_full(sel, i, "RFC822".into(), None, buf, outs),
            FetchItem::BodySection {
                section, partial, ..
            } if section.part.is_empty() && section.text == SectionText::Full => {
                let name = match partial {
                    Some((off, _)) => format!("BODY[]<{off}>"),
                    None => "BODY[]".to_owned(),
                };
                stream_full(sel, i, name, *partial, buf, outs)
            }
            FetchItem::Rfc822Text => {
                let hlen = header_once(&mut header, sel, i).len() as u64;
                let total = m.vsize(&sel.path);
                buf.extend_from_slice(b"RFC822.TEXT ");
                let src = file_ref(sel, i);
                fetch::push_file(outs, buf, src, hlen.min(total), total.saturating_sub(hlen));
            }
            FetchItem::Rfc822Header => {
                buf.extend_from_slice(b"RFC822.HEADER ");
                fetch::literal(buf, header_once(&mut header, sel, i), None);
            }
            FetchItem::BodySection {
                section, partial, ..
            } => {
                let mut name = fetch::section_name(section);
                if let Some((off, _)) = partial {
                    name.push_str(&format!("<{off}>"));
                }
                buf.extend_from_slice(name.as_bytes());
                buf.push(b' ');
                let header_only = section.part.is_empty()
                    && matches!(
                        section.text,
                        SectionText::Header
                            | SectionText::HeaderFields(_)
                            | SectionText::HeaderFieldsNot(_)
                    );
                if header_only {
                    let h = header_once(&mut header, sel, i);
                    let bytes = match &section.text {
                        SectionText::HeaderFields(n) => fetch::header_fields(h, n, false),
                        SectionText::HeaderFieldsNot(n) => fetch::header_fields(h, n, true),
                        _ => h.to_vec(),
                    };
                    fetch::literal(buf, &bytes, *partial);
                } else if section.part.is_empty() && section.text == SectionText::Text {
                    let hlen = header_once(&mut header, sel, i).len() as u64;
                    let total = m.vsize(&sel.path).saturating_sub(hlen);
                    let (skip, len) = fetch::clip(total, *partial);
                    fetch::push_file(outs, buf, file_ref(sel, i), hlen + skip, len);
                } else {
                    let l = loaded
                        .get_or_insert_with(|| sel.open_file(i).and_then(|f| fetch::load(f).ok()));
                    match l
                        .as_ref()
                        .and_then(|l| fetch::section_bytes(&l.bytes, &l.mime, section))
                    {
                        Some(bytes) => fetch::literal(buf, &bytes, *partial),
                        None => buf.extend_from_slice(b"NIL"),
                    }
                }
            }
            FetchItem::ModSeq => {
                buf.extend_from_slice(format!("MODSEQ ({})", sel.modseq_of(m.uid)).as_bytes())
            }
        }
    }
    if seen_set && !flags_sent {
        buf.extend_from_slice(format!(" FLAGS ({})", sel.flag_names(m).join(" ")).as_bytes());
    }
    if seen_set && sel.condstore && !items.contains(&FetchItem::ModSeq) {
        buf.extend_from_slice(format!(" MODSEQ ({})", sel.modseq_of(m.uid)).as_bytes());
    }
    buf.extend_from_slice(b")\r\n");
    if let Some(r) = computed.flatten().or(partial) {
        new.push(r);
    }
}

/// The whole message, streamed from its file.
fn stream_full(
    sel: &Selected,
    i: usize,
    name: String,
    partial: Option<(u64, u64)>,
    buf: &mut Vec<u8>,
    outs: &mut Vec<Out>,
) {
    buf.extend_from_slice(name.as_bytes());
    buf.push(b' ');
    let total = sel.msgs[i].vsize(&sel.path);
    let (skip, len) = fetch::clip(total, partial);
    fetch::push_file(outs, buf, file_ref(sel, i), skip, len);
}

/// Where the driver finds a message when it streams it (opened only then:
/// a FETCH of thousands of messages holds no file open).
fn file_ref(sel: &Selected, i: usize) -> super::FileRef {
    let m = &sel.msgs[i];
    super::FileRef {
        path: m.path(&sel.path),
        folder: sel.path.clone(),
        base: m.base().to_owned(),
    }
}

/// Removes the files a COPY made that cannot stand (named by the base
/// their temporary file had: the commit adds fields after it).
/// What a COPY or MOVE has put into its destination so far, to report
/// (COPYUID) or, when it fails half-way, to take back.
#[derive(Default)]
struct Transfer {
    /// The base names the messages have in the destination.
    bases: Vec<String>,
    src_uids: Vec<u32>,
    /// Messages renamed away (MOVE): where each is now and where it was.
    moved: Vec<(String, std::path::PathBuf, std::path::PathBuf)>,
}

impl Transfer {
    /// Takes back what was done: renamed messages go back to their old
    /// names, copies and links are removed. A message that cannot go back
    /// stays where it is, in one folder still, never removed.
    fn undo(self, dest: &std::path::Path) {
        let mut stuck = Vec::new();
        for (base, now, was) in &self.moved {
            if let Err(e) = crate::store::durable::rename_noreplace(now, was) {
                tracing::error!(
                    "imap: a failed MOVE leaves {} where it went: {e}",
                    now.display()
                );
                stuck.push(base);
            }
        }
        let remove: Vec<String> = self
            .bases
            .into_iter()
            .filter(|b| !stuck.contains(&b))
            .collect();
        remove_copies(dest, &remove);
        let mut dirs: Vec<&std::path::Path> = self
            .moved
            .iter()
            .filter_map(|(_, _, was)| was.parent())
            .collect();
        dirs.dedup();
        for dir in dirs {
            if let Err(e) = crate::store::durable::fsync_dir(dir) {
                tracing::error!("imap: fsync of {}: {e}", dir.display());
            }
        }
    }
}

/// Copies (or, `how` Rename, moves) message `i` of `sel` into `dest`, its
/// keywords mapped by name to `dest`'s letters. `Ok(false)`: the message
/// was expunged by another process.
fn transfer_one(
    sel: &Selected,
    i: usize,
    dest: &crate::store::Folder,
    dest_kw: &Keywords,
    how: Adopt,
    done: &mut Transfer,
) -> Result<bool, Reply> {
    let m = &sel.msgs[i];
    // Open first: the file stays readable through any rename by another
    // session, for the byte copy when a link or rename cannot be made.
    let Some(mut file) = sel.open_file(i) else {
        return Ok(false);
    };
    // Keywords are letters per folder: map by name.
    let mut flags = Flags::EMPTY;
    for letter in [b'D', b'F', b'P', b'R', b'S', b'T'] {
        if m.flags.has_system(letter) {
            flags.set_system(letter);
        }
    }
    let names: Vec<&str> = m
        .flags
        .keyword_indexes()
        .filter_map(|k| sel.keywords.name(k))
        .collect();
    // A letter dovecot-keywords does not name stays the letter it is (as
    // Dovecot keeps it), where the destination gives that letter no other
    // name.
    for k in m.flags.keyword_indexes() {
        if sel.keywords.name(k).is_none() && dest_kw.name(k).is_none() {
            flags.set_keyword(k);
        }
    }
    if !names.is_empty() {
        let idx = if names.iter().all(|n| dest_kw.index_of(n).is_some()) {
            names.iter().filter_map(|n| dest_kw.index_of(n)).collect()
        } else {
            Keywords::resolve(dest.path(), &names).map_err(StoreError::from)?
        };
        for k in idx {
            flags.set_keyword(k);
        }
    }
    // RFC 3501 6.4.7: the copy is \Recent. A copy without flags goes into
    // `new/`, for the next SELECT to claim, as Dovecot stores it; one with
    // flags needs `cur/` to carry them.
    if let Some(src) = sel.file_path(i)
        && let Some((base, to)) = dest.adopt(&src, &flags, how)?
    {
        if how == Adopt::Rename {
            done.moved.push((base.clone(), to.path, src));
        }
        done.bases.push(base);
        done.src_uids.push(m.uid);
        return Ok(true);
    }
    let mut tmp = dest.create_tmp()?;
    let mtime = file.metadata().and_then(|m| m.modified()).ok();
    std::io::copy(&mut file, &mut tmp).map_err(StoreError::io(dest.path().join("tmp")))?;
    if let Some(t) = mtime {
        tmp.set_mtime(t);
    }
    done.bases.push(tmp.base().to_owned());
    tmp.commit(&flags, false, Durability::Deferred)?;
    done.src_uids.push(m.uid);
    Ok(true)
}

fn remove_copies(folder: &std::path::Path, bases: &[String]) {
    for sub in ["new", "cur"] {
        let dir = folder.join(sub);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let ours = bases.iter().any(|b| {
                name.strip_prefix(b.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([',', ':']))
            });
            if ours && let Err(e) = fs::remove_file(entry.path()) {
                tracing::error!(
                    "imap: removing a partial copy {}: {e}",
                    entry.path().display()
                );
            }
        }
        if let Err(e) = crate::store::durable::fsync_dir(&dir) {
            tracing::error!("imap: {}: {e}", dir.display());
        }
    }
}

/// A keyword that cannot be added: the client is told why, without the
/// folder's path (that goes to the log when the fault is ours).
fn keyword_err(e: crate::store::KeywordError) -> Reply {
    match e {
        crate::store::KeywordError::Full { keyword, .. } => Reply::No(format!(
            "[LIMIT] a folder holds 26 keywords at most (Maildir's letters a to z); {keyword} was not added"
        )),
        e => internal(e),
    }
}

/// A mailbox name from the wire: modified UTF-7 decoded, then validated.
fn wire_name(raw: &[u8]) -> Result<MailboxName, Reply> {
    let s = wire_string(raw)?;
    MailboxName::new(&s).map_err(|e| Reply::No(e.to_string()))
}

fn wire_string(raw: &[u8]) -> Result<String, Reply> {
    let s = std::str::from_utf8(raw)
        .map_err(|_| Reply::Bad("mailbox names are ASCII (modified UTF-7)".into()))?;
    decode_mutf7(s).ok_or_else(|| Reply::Bad(format!("{s:?} is not valid modified UTF-7")))
}

/// The longest LIST pattern matched; longer ones match nothing.
const MAX_PATTERN: usize = 1024;

/// RFC 3501 6.3.8: `*` matches anything, `%` anything but the separator.
/// Dynamic programming, O(pattern x name): a pattern of many wildcards
/// costs no more than one of letters.
pub fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    // INBOX is case-insensitive (RFC 3501 5.1).
    let (pattern, name) = if name.starts_with(b"INBOX")
        && pattern.len() >= 5
        && pattern[..5].eq_ignore_ascii_case(b"INBOX")
    {
        (&pattern[5..], &name[5..])
    } else {
        (pattern, name)
    };
    if pattern.len() > MAX_PATTERN {
        return false;
    }
    // row[j]: the pattern so far matches name[..j].
    let mut row = vec![false; name.len() + 1];
    row[0] = true;
    for &p in pattern {
        let mut next = vec![false; name.len() + 1];
        match p {
            b'*' => {
                next[0] = row[0];
                for j in 1..=name.len() {
                    next[j] = row[j] || next[j - 1];
                }
            }
            b'%' => {
                next[0] = row[0];
                for j in 1..=name.len() {
                    next[j] = row[j] || (next[j - 1] && name[j - 1] != b'/');
                }
            }
            c => {
                for j in 1..=name.len() {
                    next[j] = row[j - 1] && name[j - 1] == c;
                }
            }
        }
        row = next;
    }
    row[name.len()]
}

/// RFC 6154 attributes by the default folder names.
fn special_use(name: &str) -> Option<&'static str> {
    Some(match name {
        "Drafts" => "\\Drafts",
        "Sent" => "\\Sent",
        "Junk" => "\\Junk",
        "Trash" => "\\Trash",
        "Archive" => "\\Archive",
        _ => return None,
    })
}

/// IMAP flag names to file flags, adding unknown keywords to the folder's
/// `dovecot-keywords`. `\Recent` is ignored (the server sets it).
fn resolve_flags(folder: &std::path::Path, names: &[String]) -> Result<Flags, Reply> {
    let mut flags = Flags::EMPTY;
    let mut keywords = Vec::new();
    for n in names {
        // RFC 3501 2.3.2: \Recent is the server's to set; `\*` is no flag
        // (only PERMANENTFLAGS names it). Dovecot's words.
        if n.eq_ignore_ascii_case("\\Recent") || n == "\\*" {
            return Err(Reply::Bad(format!("Invalid system flag {n}")));
        }
        match Flag::parse(n).map_err(|e| Reply::Bad(e.to_string()))? {
            Flag::System(l) => flags.set_system(l),
            Flag::Keyword(k) => keywords.push(k),
        }
    }
    if !keywords.is_empty() {
        let refs: Vec<&str> = keywords.iter().map(String::as_str).collect();
        for i in Keywords::resolve(folder, &refs).map_err(keyword_err)? {
            flags.set_keyword(i);
        }
    }
    Ok(flags)
}

/// Writes a chunk of a message with CRLF made LF (the Maildir way), a CR
/// at the chunk's end held back until the next chunk shows what follows.
fn write_lf(
    out: &mut impl std::io::Write,
    pending_cr: &mut bool,
    chunk: &[u8],
) -> std::io::Result<()> {
    if chunk.is_empty() {
        return Ok(());
    }
    let mut start = 0;
    if *pending_cr {
        if chunk[0] != b'\n' {
            out.write_all(b"\r")?;
        }
        *pending_cr = false;
    }
    let len = chunk.len();
    for i in memchr::memchr_iter(b'\r', chunk) {
        if i + 1 == len {
            out.write_all(&chunk[start..i])?;
            start = len;
            *pending_cr = true;
        } else if chunk[i + 1] == b'\n' {
            out.write_all(&chunk[start..i])?;
            start = i + 1;
        }
    }
    out.write_all(&chunk[start..])
}

/// What STORE makes of a message's flags.
/// The system flags and the folder's keywords, as FLAGS names them.
fn flag_list(sel: &Selected) -> String {
    let mut flags = String::from("\\Answered \\Flagged \\Deleted \\Seen \\Draft");
    for (_, k) in sel.keywords.iter() {
        flags.push(' ');
        flags.push_str(k);
    }
    flags
}

fn store_apply(cur: Flags, wanted: Flags, mode: StoreMode) -> Flags {
    match mode {
        StoreMode::Replace => {
            // \Recent is session-only; the `P` (passed) flag has no IMAP name and stays.
            let mut f = wanted;
            if cur.has_system(b'P') {
                f.set_system(b'P');
            }
            f
        }
        StoreMode::Add => union(cur, wanted),
        StoreMode::Remove => minus(cur, wanted),
    }
}

fn union(a: Flags, b: Flags) -> Flags {
    Flags::from_info(&format!("{a}{b}"))
}

fn minus(a: Flags, b: Flags) -> Flags {
    let remove = b.to_string();
    Flags::from_info(
        &a.to_string()
            .chars()
            .filter(|c| !remove.contains(*c))
            .collect::<String>(),
    )
}

/// The seconds since 1970 of a system time (0 before).
pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod wildcard_tests {
    use super::wildcard_match;

    #[test]
    fn list_wildcards() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "INBOX", true),
            ("%", "Lists/rust", false),
            ("Lists/%", "Lists/rust", true),
            ("Lists/%", "Lists/rust/x", false),
            ("Lists/*", "Lists/rust/x", true),
            ("inbox", "INBOX", true),
            ("inbox/%", "INBOX/a", true),
            ("*t", "Sent", true),
            ("S%t", "Sent", true),
            ("S%t", "S/t", false),
            ("", "", true),
            ("a", "", false),
        ];
        for (p, n, want) in cases {
            assert_eq!(wildcard_match(p.as_bytes(), n.as_bytes()), *want, "{p} {n}");
        }
        // A hostile pattern is quick and bounded.
        let hostile = "*a".repeat(500);
        let name = "a".repeat(255) + "b";
        let t = std::time::Instant::now();
        assert!(!wildcard_match(hostile.as_bytes(), name.as_bytes()));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }
}

#[cfg(test)]
mod transfer_tests {
    use super::Transfer;
    use std::fs;

    /// A COPY or MOVE that fails half-way takes back what it did: renamed
    /// messages go back under their old names, copies go; a message that
    /// cannot go back (its old name taken meanwhile) stays where it went,
    /// never removed.
    #[test]
    fn a_failed_transfer_puts_moved_messages_back_and_removes_copies() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dest) = (dir.path().join("src"), dir.path().join("dest"));
        for d in [&src, &dest] {
            for sub in ["cur", "new", "tmp"] {
                fs::create_dir_all(d.join(sub)).unwrap();
            }
        }
        let was = src.join("cur/1.a,S=1,W=1:2,S");
        let now = dest.join("cur/9.x,S=1,W=1:2,S");
        fs::write(&now, "a").unwrap();
        let copy = dest.join("new/9.y,S=1,W=1");
        fs::write(&copy, "b").unwrap();
        let stuck_was = src.join("cur/2.b,S=1,W=1:2,");
        let stuck_now = dest.join("cur/9.z,S=1,W=1:2,");
        fs::write(&stuck_now, "c").unwrap();
        fs::write(&stuck_was, "taken meanwhile").unwrap();
        let done = Transfer {
            bases: vec!["9.x".into(), "9.y".into(), "9.z".into()],
            src_uids: vec![1, 2, 3],
            moved: vec![
                ("9.x".into(), now.clone(), was.clone()),
                ("9.z".into(), stuck_now.clone(), stuck_was.clone()),
            ],
        };
        done.undo(&dest);
        assert_eq!(fs::read_to_string(&was).unwrap(), "a");
        assert!(!now.exists() && !copy.exists());
        assert_eq!(fs::read_to_string(&stuck_now).unwrap(), "c");
    }
}
