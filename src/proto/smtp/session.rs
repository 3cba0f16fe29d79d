//! The server session's state machine. See the module above for what it
//! implements; this file decides what every command means in every state.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::command::{self, Command, MailParams, Mailbox, Path};
use super::directory::Directory;
use super::reply::Reply;
use super::{HARD_ERROR_LIMIT, MAX_AUTH_LINE, MAX_COMMAND_LINE, MAX_ERRORS, MAX_RECIPIENTS};
use crate::auth::Secret;

/// What the session may offer; fixed for a connection by the listener.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Our name, in the greeting and EHLO.
    pub hostname: String,
    /// RFC 1870: SIZE.
    pub max_message_size: u64,
    /// A certificate is loaded: STARTTLS may be offered.
    pub starttls: bool,
    /// TLS from the first byte (port 465): the session starts under TLS.
    pub implicit_tls: Option<TlsInfo>,
    /// AUTH may be used without TLS: the client is on loopback.
    pub auth_without_tls: bool,
    /// A submission port: MAIL needs AUTH first.
    pub submission: bool,
    /// The client is in `trusted_networks`: it may relay without AUTH.
    pub trusted: bool,
}

/// What TLS the session runs under, for `Received:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
}

/// The driver's answer to [`Event::Authenticate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Ok,
    Failed,
    /// Too many failures from this client lately.
    Throttled,
    /// The users file could not be read.
    TempFail,
}

/// Where a recipient's mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Into these users' Maildirs.
    Local(Vec<String>),
    /// Out, through the queue.
    Remote,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub mailbox: Mailbox,
    pub route: Route,
}

/// A message to deliver, with everything `Received:` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The EHLO or HELO name, and whether it was EHLO.
    pub helo: String,
    pub esmtp: bool,
    /// `None`: the null sender `<>`.
    pub sender: Option<Mailbox>,
    pub recipients: Vec<Recipient>,
    /// The message as received: dot-unstuffed, CR LF line ends.
    pub data: Vec<u8>,
    pub smtputf8: bool,
    pub tls: Option<TlsInfo>,
    /// The user who authenticated.
    pub authenticated: Option<String>,
}

/// What the driver must do.
#[derive(Debug)]
pub enum Event {
    /// Write out the output (it ends with `220 Ready to start TLS`), run
    /// the TLS handshake, then call [`Session::tls_started`] (or close).
    StartTls,
    /// Check a password; answer with [`Session::auth_result`].
    Authenticate { user: String, password: Secret },
    /// Deliver (durably) or queue; answer with [`Session::message_result`].
    Message(Box<Transaction>),
    /// Write out the output, then close the connection.
    Close,
}

#[derive(Debug)]
enum Mode {
    Command,
    /// A line was too long: drop bytes up to and including its LF.
    DiscardLine,
    Data {
        line_start: bool,
        prev_cr: bool,
    },
    /// A BDAT chunk: `remaining` octets to read; `refusal`: the chunk is
    /// read and dropped, and this is the answer.
    Bdat {
        size: u64,
        remaining: u64,
        last: bool,
        refusal: Option<Reply>,
    },
    /// AUTH PLAIN waiting for its response line.
    AuthPlain,
    /// AUTH LOGIN waiting for the user name, then the password.
    AuthLogin {
        user: Option<String>,
    },
}

#[derive(Debug)]
enum Waiting {
    Tls,
    Auth(String),
    Message,
}

#[derive(Debug)]
struct Tx {
    sender: Option<Mailbox>,
    params: MailParams,
    recipients: Vec<Recipient>,
    data: Vec<u8>,
    too_big: bool,
    line_ends: LineEnds,
    /// A BDAT chunk has been received: DATA is out, and so are more RCPTs.
    chunking: bool,
}

/// RFC 5321 2.3.8: CR and LF appear in a message only together, as CR LF.
/// Watches the message bytes across reads and chunks for either alone; a
/// message with one is refused at its end, so no reading of `<LF>.<LF>` or
/// `<CR>.<CR>` at a later hop can split it (SMTP smuggling).
#[derive(Debug, Default)]
struct LineEnds {
    /// The last byte seen was a CR.
    prev_cr: bool,
    bare_lf: bool,
    bare_cr: bool,
}

impl LineEnds {
    fn scan(&mut self, bytes: &[u8]) {
        let Some(&first) = bytes.first() else {
            return;
        };
        if self.prev_cr && first != b'\n' {
            self.bare_cr = true;
        }
        for i in memchr::memchr2_iter(b'\r', b'\n', bytes) {
            if bytes[i] == b'\n' {
                if (i == 0 && !self.prev_cr) || (i > 0 && bytes[i - 1] != b'\r') {
                    self.bare_lf = true;
                }
            } else if bytes.get(i + 1).is_some_and(|&b| b != b'\n') {
                self.bare_cr = true;
            }
        }
        self.prev_cr = bytes.last() == Some(&b'\r');
    }

    /// The message ends here: a CR last is alone.
    fn end(&mut self) {
        if self.prev_cr {
            self.bare_cr = true;
        }
    }
}

/// One SMTP server session.
#[derive(Debug)]
pub struct Session {
    settings: Settings,
    directory: Arc<Directory>,
    input: Vec<u8>,
    output: Vec<u8>,
    mode: Mode,
    helo: Option<(String, bool)>,
    tls: Option<TlsInfo>,
    user: Option<String>,
    tx: Option<Tx>,
    /// 5xx replies to mistakes: commands out of place, bad syntax.
    errors: usize,
    /// Recipients refused: unknown users, relaying denied.
    refused: usize,
    waiting: Option<Waiting>,
    /// `Some(false)`: Close must be reported; `Some(true)`: it was.
    closing: Option<bool>,
}

impl Session {
    /// A new session; the greeting is in the output.
    pub fn new(settings: Settings, directory: Arc<Directory>) -> Session {
        let mut s = Session {
            tls: settings.implicit_tls.clone(),
            settings,
            directory,
            input: Vec::new(),
            output: Vec::new(),
            mode: Mode::Command,
            helo: None,
            user: None,
            tx: None,
            errors: 0,
            refused: 0,
            waiting: None,
            closing: None,
        };
        // RFC 5321 4.2: the greeting; "ESMTP" tells old clients to try EHLO.
        let greeting = format!("220 {} ESMTP ownmail\r\n", s.settings.hostname);
        s.output.extend_from_slice(greeting.as_bytes());
        s
    }

    /// Bytes from the client. The driver feeds what it reads and reads
    /// again only when [`Session::next_event`] returned `None`, so the
    /// buffer holds at most one read and one bounded line.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.closing.is_none() {
            self.input.extend_from_slice(bytes);
        }
    }

    /// Input bytes held: at most one read plus [`super::MAX_AUTH_LINE`].
    pub fn buffered(&self) -> usize {
        self.input.len()
    }

    /// The bytes to send to the client.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Whether the session has ended (after [`Event::Close`]).
    pub fn is_closed(&self) -> bool {
        self.closing.is_some()
    }

    /// Whether the session is inside DATA or a BDAT chunk (the RFC 5321
    /// 4.5.3.2 timeouts differ there).
    pub fn in_data(&self) -> bool {
        matches!(self.mode, Mode::Data { .. } | Mode::Bdat { .. })
    }

    /// The user who authenticated.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Ends the session with a 421 of the driver's choosing (shutdown,
    /// timeout).
    pub fn abort(&mut self, reply: Reply) {
        if self.closing.is_none() {
            reply.write_to(&mut self.output);
            self.closing = Some(false);
        }
    }

    /// The next thing the driver must do; `None`: send the output and read
    /// more (or, while an event is unanswered, answer it).
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            match self.closing {
                Some(false) => {
                    self.closing = Some(true);
                    return Some(Event::Close);
                }
                Some(true) => return None,
                None => {}
            }
            if self.waiting.is_some() {
                return None;
            }
            match self.step() {
                Step::Continue => {}
                Step::NeedInput => return None,
                Step::Event(e) => return Some(e),
            }
        }
    }

    /// TLS is up (after [`Event::StartTls`]). RFC 3207 4.2: the client
    /// starts again from EHLO; nothing it said before counts.
    pub fn tls_started(&mut self, info: TlsInfo) {
        self.tls = Some(info);
        self.helo = None;
        self.user = None;
        self.tx = None;
        self.input.clear();
        self.mode = Mode::Command;
        self.waiting = None;
    }

    /// The answer to [`Event::Authenticate`].
    pub fn auth_result(&mut self, outcome: AuthOutcome) {
        let Some(Waiting::Auth(user)) = self.waiting.take() else {
            return;
        };
        match outcome {
            AuthOutcome::Ok => {
                self.user = Some(user);
                self.reply(Reply::AUTH_OK);
            }
            AuthOutcome::Failed => self.reply(Reply::AUTH_FAILED),
            AuthOutcome::Throttled => self.reply(Reply::AUTH_THROTTLED),
            AuthOutcome::TempFail => self.reply(Reply::AUTH_TEMPFAIL),
        }
    }

    /// The answer to [`Event::Message`]: `250` only when the message is
    /// durably stored or queued for every recipient.
    pub fn message_result(&mut self, reply: Reply) {
        if matches!(self.waiting, Some(Waiting::Message)) {
            self.waiting = None;
            self.tx = None;
            self.reply(reply);
        }
    }

    fn reply(&mut self, reply: Reply) {
        reply.write_to(&mut self.output);
        if reply.closes() {
            self.closing = Some(false);
        } else if reply.is_error() {
            self.errors += 1;
            self.check_error_limits();
        }
    }

    /// A recipient refused for good. Not a mistake of the client's: a
    /// sender with one good address among many stale ones is normal (a
    /// list, an old address book), so these count only toward
    /// [`HARD_ERROR_LIMIT`], as Postfix's `smtpd_hard_error_limit`, and the
    /// good recipients get their message.
    fn refuse_recipient(&mut self, reply: Reply) {
        reply.write_to(&mut self.output);
        self.refused += 1;
        self.check_error_limits();
    }

    fn check_error_limits(&mut self) {
        if self.errors >= MAX_ERRORS || self.errors + self.refused >= HARD_ERROR_LIMIT {
            Reply::TOO_MANY_ERRORS.write_to(&mut self.output);
            self.closing = Some(false);
        }
    }

    fn step(&mut self) -> Step {
        match &mut self.mode {
            Mode::Command | Mode::AuthPlain | Mode::AuthLogin { .. } => self.step_line(),
            Mode::DiscardLine => match memchr::memchr(b'\n', &self.input) {
                Some(i) => {
                    self.input.drain(..=i);
                    self.mode = Mode::Command;
                    Step::Continue
                }
                None => {
                    self.input.clear();
                    Step::NeedInput
                }
            },
            Mode::Data { .. } => self.step_data(),
            Mode::Bdat { .. } => self.step_bdat(),
        }
    }

    fn step_line(&mut self) -> Step {
        let limit = if matches!(self.mode, Mode::Command) {
            MAX_COMMAND_LINE
        } else {
            MAX_AUTH_LINE
        };
        let window = &self.input[..self.input.len().min(limit)];
        let Some(i) = memchr::memchr(b'\n', window) else {
            if self.input.len() >= limit {
                // RFC 5321 4.5.3.1.4: too long. Drop it up to its end, and
                // no further: what follows its LF is the next command
                // (RFC 2920 3: one reply per command, in order).
                self.mode = Mode::DiscardLine;
                self.reply(Reply::LINE_TOO_LONG);
                return Step::Continue;
            }
            return Step::NeedInput;
        };
        let line: Vec<u8> = self.input.drain(..=i).collect();
        let Some(line) = line.strip_suffix(b"\r\n") else {
            self.mode = Mode::Command;
            self.reply(Reply::BARE_LF_COMMAND);
            return Step::Continue;
        };
        if line.contains(&0) {
            self.mode = Mode::Command;
            self.reply(Reply::NUL_IN_COMMAND);
            return Step::Continue;
        }
        match std::mem::replace(&mut self.mode, Mode::Command) {
            Mode::AuthPlain => self.auth_plain_response(line),
            Mode::AuthLogin { user } => self.auth_login_response(line, user),
            _ => match command::parse(line) {
                Ok(c) => self.command(c),
                Err(reply) => {
                    self.reply(reply);
                    Step::Continue
                }
            },
        }
    }

    fn command(&mut self, c: Command) -> Step {
        match c {
            Command::Ehlo(name) => {
                self.tx = None;
                self.helo = Some((name.clone(), true));
                self.ehlo_reply(&name);
            }
            Command::Helo(name) => {
                self.tx = None;
                self.helo = Some((name.clone(), false));
                let text = format!("250 {} greets {name}\r\n", self.settings.hostname);
                self.output.extend_from_slice(text.as_bytes());
            }
            Command::Mail { path, params } => {
                let reply = self.mail(path, params);
                self.reply(reply);
            }
            Command::Rcpt { path } => {
                let reply = self.rcpt(path);
                let refusals = [
                    Reply::NO_SUCH_USER,
                    Reply::RELAY_DENIED,
                    Reply::ROUTING_REFUSED,
                ];
                if refusals.contains(&reply) {
                    self.refuse_recipient(reply);
                } else {
                    self.reply(reply);
                }
            }
            Command::Data => {
                let reply = match &self.tx {
                    None => Reply::BAD_SEQUENCE,
                    Some(tx) if tx.chunking => Reply::DATA_AFTER_BDAT,
                    Some(tx) if tx.recipients.is_empty() => Reply::NO_VALID_RECIPIENTS,
                    Some(_) => {
                        self.mode = Mode::Data {
                            line_start: true,
                            prev_cr: false,
                        };
                        Reply::START_DATA
                    }
                };
                self.reply(reply);
            }
            Command::Bdat { size, last } => {
                // RFC 3030 2: the chunk follows the line whatever the
                // answer; it is always read, so it is never taken for commands.
                let refusal = match &mut self.tx {
                    None => Some(Reply::BAD_SEQUENCE),
                    Some(tx) if tx.recipients.is_empty() => Some(Reply::NO_VALID_RECIPIENTS),
                    Some(tx) => {
                        tx.chunking = true;
                        None
                    }
                };
                self.mode = Mode::Bdat {
                    size,
                    remaining: size,
                    last,
                    refusal,
                };
            }
            Command::Rset => {
                self.tx = None;
                self.reply(Reply::OK);
            }
            Command::Noop => self.reply(Reply::OK),
            Command::Quit => {
                self.reply(Reply::CLOSING);
                self.closing = Some(false);
            }
            Command::Vrfy => self.reply(Reply::CANNOT_VRFY),
            Command::Help => self.reply(Reply::HELP),
            Command::NotImplemented => self.reply(Reply::NOT_IMPLEMENTED),
            Command::StartTls => {
                let reply = if self.tls.is_some() || !self.settings.starttls {
                    Reply::NOT_IMPLEMENTED
                } else if self.tx.is_some() {
                    Reply::BAD_SEQUENCE
                } else {
                    Reply::TLS_GO_AHEAD
                };
                let go = reply == Reply::TLS_GO_AHEAD;
                self.reply(reply);
                if go {
                    // RFC 3207 4 (and CVE-2011-0411): anything the client
                    // pipelined after STARTTLS came in plaintext; drop it.
                    self.input.clear();
                    self.waiting = Some(Waiting::Tls);
                    return Step::Event(Event::StartTls);
                }
            }
            Command::Auth { mechanism, initial } => return self.auth(mechanism, initial),
        }
        Step::Continue
    }

    fn ehlo_reply(&mut self, name: &str) {
        let mut lines = vec![
            format!("{} greets {name}", self.settings.hostname),
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.settings.max_message_size),
            "8BITMIME".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
            "SMTPUTF8".to_owned(),
            "CHUNKING".to_owned(),
        ];
        if self.settings.starttls && self.tls.is_none() {
            lines.push("STARTTLS".to_owned());
        }
        if self.auth_allowed() && self.user.is_none() {
            lines.push("AUTH PLAIN LOGIN".to_owned());
        }
        let n = lines.len();
        for (i, l) in lines.into_iter().enumerate() {
            let sep = if i + 1 == n { ' ' } else { '-' };
            self.output
                .extend_from_slice(format!("250{sep}{l}\r\n").as_bytes());
        }
    }

    fn auth_allowed(&self) -> bool {
        self.tls.is_some() || self.settings.auth_without_tls
    }

    fn mail(&mut self, path: Path, params: MailParams) -> Reply {
        if self.helo.is_none() {
            return Reply::NEED_HELO;
        }
        if self.tx.is_some() {
            return Reply::BAD_SEQUENCE;
        }
        if self.settings.submission && self.user.is_none() {
            return if self.auth_allowed() {
                Reply::AUTH_REQUIRED
            } else {
                Reply::TLS_REQUIRED
            };
        }
        if params
            .size
            .is_some_and(|s| s > self.settings.max_message_size)
        {
            return Reply::MESSAGE_TOO_BIG;
        }
        if let Some(m) = &path.mailbox
            && !m.is_ascii()
            && !params.smtputf8
        {
            return Reply::UTF8_REQUIRED;
        }
        if let Some(user) = &self.user {
            let owned = path
                .mailbox
                .as_ref()
                .is_some_and(|m| self.directory.may_send_as(user, &m.local, &m.domain));
            if !owned {
                return Reply::SENDER_NOT_OWNED;
            }
        }
        self.tx = Some(Tx {
            sender: path.mailbox,
            params,
            recipients: Vec::new(),
            data: Vec::new(),
            too_big: false,
            line_ends: LineEnds::default(),
            chunking: false,
        });
        Reply::SENDER_OK
    }

    fn rcpt(&mut self, path: Path) -> Reply {
        let relay_ok = self.user.is_some() || self.settings.trusted;
        let Some(tx) = &mut self.tx else {
            return Reply::BAD_SEQUENCE;
        };
        if tx.chunking {
            return Reply::BAD_SEQUENCE;
        }
        if tx.recipients.len() >= MAX_RECIPIENTS {
            return Reply::TOO_MANY_RECIPIENTS;
        }
        let Some(mut mailbox) = path.mailbox else {
            return Reply::ADDRESS_SYNTAX;
        };
        // Source routes: RFC 5321 4.1.1.3 says to ignore them; a route
        // through us to elsewhere is how relays were abused, so we refuse.
        if path.source_route {
            return Reply::ROUTING_REFUSED;
        }
        if !mailbox.is_ascii() && !tx.params.smtputf8 {
            return Reply::UTF8_REQUIRED;
        }
        if mailbox.domain.is_empty() {
            // RFC 5321 4.5.1: `<postmaster>` is our postmaster.
            let Some(first) = self.directory.domains.first() else {
                return Reply::NO_SUCH_USER;
            };
            mailbox.domain = first.clone();
        }
        let route = if self.directory.is_local_domain(&mailbox.domain) {
            // `user%other@us`, `"user@other"@us`, `host!user@us`: never routed.
            if mailbox.has_routing_characters() {
                return Reply::ROUTING_REFUSED;
            }
            match self.directory.resolve(&mailbox.local, &mailbox.domain) {
                Ok(Some(users)) => Route::Local(users),
                Ok(None) => return Reply::NO_SUCH_USER,
                // The driver logged why, loudly, when it read the users.
                Err(_) => return Reply::LOOKUP_FAILED,
            }
        } else if relay_ok {
            Route::Remote
        } else {
            return Reply::RELAY_DENIED;
        };
        if !tx.recipients.iter().any(|r| r.mailbox == mailbox) {
            tx.recipients.push(Recipient { mailbox, route });
        }
        Reply::RECIPIENT_OK
    }

    fn auth(&mut self, mechanism: String, initial: Option<String>) -> Step {
        let reply = if self.user.is_some() {
            Some(Reply::ALREADY_AUTHENTICATED)
        } else if self.tx.is_some() {
            Some(Reply::BAD_SEQUENCE)
        } else if !self.auth_allowed() {
            Some(Reply::ENCRYPTION_REQUIRED)
        } else if mechanism != "PLAIN" && mechanism != "LOGIN" {
            Some(Reply::AUTH_MECHANISM)
        } else {
            None
        };
        if let Some(r) = reply {
            self.reply(r);
            return Step::Continue;
        }
        match (mechanism.as_str(), initial) {
            ("PLAIN", Some(i)) => self.auth_plain_response(i.as_bytes()),
            ("PLAIN", None) => {
                self.output.extend_from_slice(b"334 \r\n");
                self.mode = Mode::AuthPlain;
                Step::Continue
            }
            (_, Some(i)) => self.auth_login_response(i.as_bytes(), None),
            (_, None) => {
                // base64 "Username:"
                self.output.extend_from_slice(b"334 VXNlcm5hbWU6\r\n");
                self.mode = Mode::AuthLogin { user: None };
                Step::Continue
            }
        }
    }

    /// Decodes a SASL response; `Err` is the reply (`*` cancels, RFC 4954 4).
    fn sasl_decode(line: &[u8]) -> Result<Vec<u8>, Reply> {
        if line == b"*" {
            return Err(Reply::AUTH_CANCELLED);
        }
        if line == b"=" {
            return Ok(Vec::new());
        }
        BASE64.decode(line).map_err(|_| Reply::BASE64_ERROR)
    }

    /// RFC 4616 2: `authzid NUL authcid NUL passwd`.
    fn auth_plain_response(&mut self, line: &[u8]) -> Step {
        let decoded = match Self::sasl_decode(line) {
            Ok(d) => d,
            Err(r) => {
                self.reply(r);
                return Step::Continue;
            }
        };
        let mut parts = decoded.split(|b| *b == 0);
        let (Some(authz), Some(user), Some(pass), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            self.reply(Reply::AUTH_FAILED);
            return Step::Continue;
        };
        if !authz.is_empty() && authz != user {
            // Acting as someone else is not offered.
            self.reply(Reply::AUTH_FAILED);
            return Step::Continue;
        }
        self.authenticate(user, pass)
    }

    fn auth_login_response(&mut self, line: &[u8], user: Option<String>) -> Step {
        let decoded = match Self::sasl_decode(line) {
            Ok(d) => d,
            Err(r) => {
                self.reply(r);
                return Step::Continue;
            }
        };
        match user {
            None => {
                let Ok(name) = String::from_utf8(decoded) else {
                    self.reply(Reply::AUTH_FAILED);
                    return Step::Continue;
                };
                // base64 "Password:"
                self.output.extend_from_slice(b"334 UGFzc3dvcmQ6\r\n");
                self.mode = Mode::AuthLogin { user: Some(name) };
                Step::Continue
            }
            Some(name) => self.authenticate(name.as_bytes(), &decoded),
        }
    }

    fn authenticate(&mut self, user: &[u8], pass: &[u8]) -> Step {
        match (std::str::from_utf8(user), std::str::from_utf8(pass)) {
            (Ok(u), Ok(p)) if !u.is_empty() => {
                self.waiting = Some(Waiting::Auth(u.to_owned()));
                Step::Event(Event::Authenticate {
                    user: u.to_owned(),
                    password: Secret::new(p.to_owned()),
                })
            }
            _ => {
                self.reply(Reply::AUTH_FAILED);
                Step::Continue
            }
        }
    }

    /// RFC 5321 4.5.2: reads DATA lines, removing a leading dot, until
    /// `CR LF . CR LF`. Only a CR LF starts a line: after a bare LF a dot
    /// ends nothing, and the message is refused at its end.
    fn step_data(&mut self) -> Step {
        let Mode::Data {
            mut line_start,
            mut prev_cr,
        } = self.mode
        else {
            return Step::Continue;
        };
        let max = self.settings.max_message_size;
        let Some(tx) = self.tx.as_mut() else {
            self.mode = Mode::Command;
            return Step::Continue;
        };
        let mut at = 0;
        let mut ended = false;
        let input = &self.input;
        while at < input.len() {
            let rest = &input[at..];
            if line_start && rest[0] == b'.' {
                if rest.starts_with(b".\r\n") {
                    at += 3;
                    ended = true;
                    break;
                }
                if b".\r\n".starts_with(rest) {
                    break; // wait for the rest of the line
                }
                at += 1; // dot-unstuffing
                line_start = false;
                prev_cr = false;
                continue;
            }
            let (chunk, lf) = match memchr::memchr(b'\n', rest) {
                Some(j) => (&rest[..=j], Some(j)),
                None => (rest, None),
            };
            if let Some(j) = lf {
                line_start = if j == 0 {
                    prev_cr
                } else {
                    rest[j - 1] == b'\r'
                };
            } else {
                line_start = false;
            }
            prev_cr = chunk.last() == Some(&b'\r');
            tx.line_ends.scan(chunk);
            if tx.data.len() as u64 + chunk.len() as u64 > max {
                tx.too_big = true;
            } else if !tx.too_big {
                tx.data.extend_from_slice(chunk);
            }
            at += chunk.len();
        }
        self.input.drain(..at);
        if !ended {
            self.mode = Mode::Data {
                line_start,
                prev_cr,
            };
            return Step::NeedInput;
        }
        self.mode = Mode::Command;
        self.finish_message()
    }

    fn step_bdat(&mut self) -> Step {
        let Mode::Bdat {
            size,
            remaining,
            last,
            refusal,
        } = &mut self.mode
        else {
            return Step::Continue;
        };
        let n = (*remaining).min(self.input.len() as u64) as usize;
        *remaining -= n as u64;
        if refusal.is_none()
            && let Some(tx) = self.tx.as_mut()
        {
            // RFC 5321 2.3.8: the same rule as DATA. The chunk is sent on
            // with DATA, where a bare LF or CR could end it early at the
            // next hop (SMTP smuggling, CVE-2023-51764).
            tx.line_ends.scan(&self.input[..n]);
            if tx.data.len() as u64 + n as u64 > self.settings.max_message_size {
                tx.too_big = true;
            } else if !tx.too_big {
                tx.data.extend_from_slice(&self.input[..n]);
            }
        }
        self.input.drain(..n);
        if *remaining > 0 {
            return Step::NeedInput;
        }
        let (size, last, refusal) = (*size, *last, refusal.take());
        self.mode = Mode::Command;
        if let Some(r) = refusal {
            self.reply(r);
            return Step::Continue;
        }
        let too_big = self.tx.as_ref().is_some_and(|t| t.too_big);
        if too_big {
            // RFC 3030 2: the transaction is over; later chunks get 503.
            self.tx = None;
            self.reply(Reply::MESSAGE_TOO_BIG);
            return Step::Continue;
        }
        if last {
            if let Some(tx) = self.tx.as_mut() {
                tx.line_ends.end();
            }
            return self.finish_message();
        }
        self.reply(Reply::OK.with_text(format!("{size} octets received")));
        Step::Continue
    }

    fn finish_message(&mut self) -> Step {
        let Some(tx) = self.tx.take() else {
            return Step::Continue;
        };
        if tx.too_big {
            self.reply(Reply::MESSAGE_TOO_BIG);
            return Step::Continue;
        }
        if tx.line_ends.bare_lf {
            self.reply(Reply::BARE_LF_DATA);
            return Step::Continue;
        }
        if tx.line_ends.bare_cr {
            self.reply(Reply::BARE_CR_DATA);
            return Step::Continue;
        }
        let (helo, esmtp) = self.helo.clone().unwrap_or_default();
        self.waiting = Some(Waiting::Message);
        Step::Event(Event::Message(Box::new(Transaction {
            helo,
            esmtp,
            sender: tx.sender,
            recipients: tx.recipients,
            data: tx.data,
            smtputf8: tx.params.smtputf8,
            tls: self.tls.clone(),
            authenticated: self.user.clone(),
        })))
    }
}

enum Step {
    Continue,
    NeedInput,
    Event(Event),
}
