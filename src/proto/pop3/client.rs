//! The POP3 client state machine. See the module above for the interface.

use std::collections::VecDeque;

use base64::Engine;

use super::{
    Capabilities, Command, ErrReply, Event, Kind, MAX_ARGUMENT, MAX_CAPA_LINES, MAX_LINE,
    MAX_LISTING, Pop3Error, ResponseCode,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Where in the conversation we are (RFC 1939 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Greeting,
    Authorization,
    Transaction,
    Closed,
}

/// What the next input bytes are.
#[derive(Debug)]
enum Reading {
    /// A status line: the greeting, or the reply to the oldest pending command.
    Status,
    /// The lines of a CAPA, LIST or UIDL response, up to the lone dot.
    Lines { kind: Kind, lines: Vec<Vec<u8>> },
    /// A message body, up to the lone dot.
    Data {
        number: u32,
        max: u64,
        at_line_start: bool,
    },
    /// STLS was accepted: nothing may be read until TLS is up.
    Tls,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    kind: Kind,
    max: u64,
    /// AUTH: challenges (`+ `) may come before the final status.
    sasl: bool,
}

/// A POP3 client session. See the module documentation.
#[derive(Debug)]
pub struct Client {
    phase: Phase,
    reading: Reading,
    pending: VecDeque<Pending>,
    input: Vec<u8>,
    /// Bytes of `input` already consumed.
    pos: usize,
    output: Vec<u8>,
    message: Vec<u8>,
    /// The first error; the session is over once one happened.
    failed: Option<Pop3Error>,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A session waiting for the server's greeting.
    pub fn new() -> Client {
        Client {
            phase: Phase::Greeting,
            reading: Reading::Status,
            pending: VecDeque::new(),
            input: Vec::new(),
            pos: 0,
            output: Vec::new(),
            message: Vec::new(),
            failed: None,
        }
    }

    /// Queues a command: its bytes go into the output, and its reply is
    /// expected after those of the commands queued before it (RFC 2449 6.6:
    /// the caller pipelines only when the server offers PIPELINING).
    pub fn send(&mut self, command: Command) -> Result<(), Pop3Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.check_state(&command)?;
        let mut line: Vec<u8> = Vec::with_capacity(64);
        let mut max = 0;
        let mut sasl = false;
        match &command {
            Command::Capa => line.extend_from_slice(b"CAPA"),
            Command::Stls => line.extend_from_slice(b"STLS"),
            Command::User(user) => {
                check_word(user, "the user name")?;
                line.extend_from_slice(b"USER ");
                line.extend_from_slice(user.as_bytes());
            }
            Command::Pass(password) => {
                // RFC 1939 7: the password is the rest of the line, spaces
                // included; only line breaks would split it.
                let p = password.expose();
                if p.is_empty() || p.len() > MAX_ARGUMENT || p.contains(['\r', '\n', '\0']) {
                    return Err(Pop3Error::BadArgument {
                        what: "the password",
                    });
                }
                line.extend_from_slice(b"PASS ");
                line.extend_from_slice(p.as_bytes());
            }
            Command::Apop { user, digest } => {
                check_word(user, "the user name")?;
                check_word(digest, "the APOP digest")?;
                line.extend_from_slice(format!("APOP {user} {digest}").as_bytes());
            }
            Command::Auth { mechanism, initial } => {
                check_word(mechanism, "the SASL mechanism")?;
                sasl = true;
                line.extend_from_slice(b"AUTH ");
                line.extend_from_slice(mechanism.as_bytes());
                if let Some(initial) = initial {
                    line.push(b' ');
                    // RFC 5034 4: "=" is an empty initial response.
                    if initial.expose().is_empty() {
                        line.push(b'=');
                    } else {
                        line.extend_from_slice(B64.encode(initial.expose()).as_bytes());
                    }
                }
            }
            Command::AuthResponse(response) => {
                line.extend_from_slice(B64.encode(response.expose()).as_bytes());
            }
            Command::AuthCancel => line.push(b'*'),
            Command::Stat => line.extend_from_slice(b"STAT"),
            Command::List => line.extend_from_slice(b"LIST"),
            Command::Uidl => line.extend_from_slice(b"UIDL"),
            Command::Retr { number, max: m } => {
                max = *m;
                line.extend_from_slice(format!("RETR {number}").as_bytes());
            }
            Command::Dele(n) => line.extend_from_slice(format!("DELE {n}").as_bytes()),
            Command::Noop => line.extend_from_slice(b"NOOP"),
            Command::Rset => line.extend_from_slice(b"RSET"),
            Command::Quit => line.extend_from_slice(b"QUIT"),
        }
        line.extend_from_slice(b"\r\n");
        self.output.extend_from_slice(&line);
        // A SASL response continues the AUTH already pending.
        if !matches!(command, Command::AuthResponse(_) | Command::AuthCancel) {
            self.pending.push_back(Pending {
                kind: command.kind(),
                max,
                sasl,
            });
        }
        Ok(())
    }

    fn check_state(&self, command: &Command) -> Result<(), Pop3Error> {
        let name = match command {
            Command::AuthResponse(_) | Command::AuthCancel => "an AUTH response",
            _ => match command.kind() {
                Kind::Capa => "CAPA",
                Kind::Stls => "STLS",
                Kind::User => "USER",
                Kind::Pass => "PASS",
                Kind::Apop => "APOP",
                Kind::Auth => "AUTH",
                Kind::Stat => "STAT",
                Kind::List => "LIST",
                Kind::Uidl => "UIDL",
                Kind::Retr(_) => "RETR",
                Kind::Dele(_) => "DELE",
                Kind::Noop => "NOOP",
                Kind::Rset => "RSET",
                Kind::Quit => "QUIT",
            },
        };
        let wrong = |why| Err(Pop3Error::WrongState { command: name, why });
        if matches!(self.reading, Reading::Tls) {
            return wrong("TLS must start first");
        }
        if self.phase == Phase::Closed || self.pending.back().is_some_and(|p| p.kind == Kind::Quit)
        {
            return wrong("the session is closing");
        }
        let sasl_pending = self.pending.back().is_some_and(|p| p.sasl);
        match command {
            Command::AuthResponse(_) | Command::AuthCancel => {
                if !sasl_pending {
                    return wrong("no AUTH is in progress");
                }
                return Ok(());
            }
            _ if sasl_pending => return wrong("an AUTH exchange is in progress"),
            _ => {}
        }
        match command.kind() {
            Kind::Capa | Kind::Quit => Ok(()),
            Kind::Stls if !self.pending.is_empty() => wrong("replies are still pending"),
            Kind::Stls | Kind::User | Kind::Pass | Kind::Apop | Kind::Auth => {
                if self.phase == Phase::Transaction {
                    wrong("already logged in")
                } else {
                    Ok(())
                }
            }
            _ => {
                if self.phase == Phase::Transaction {
                    Ok(())
                } else {
                    wrong("not logged in yet")
                }
            }
        }
    }

    /// The bytes to send to the server, taken out of the session.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Whether there are bytes to send.
    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// How many commands await their reply.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Input bytes held, not yet turned into events.
    pub fn buffered(&self) -> usize {
        self.input.len() - self.pos
    }

    /// Whether the session ended with QUIT's `+OK`.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Whether the server accepted the login.
    pub fn is_logged_in(&self) -> bool {
        self.phase == Phase::Transaction
    }

    /// Hands bytes the server sent to the session. Call
    /// [`Client::next_event`] until it returns `None` before feeding more,
    /// so that the input buffer holds at most one unfinished line.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// Call when the TLS handshake that followed [`Event::StartTls`] is done.
    pub fn tls_started(&mut self) {
        if matches!(self.reading, Reading::Tls) {
            self.reading = Reading::Status;
        }
    }

    /// Gives a message buffer back for reuse, so that a long run allocates
    /// once.
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        buffer.clear();
        if buffer.capacity() > self.message.capacity() {
            self.message = buffer;
        }
    }

    /// The next thing the server said, `None` when more input is needed.
    /// An error ends the session: every later call returns it again.
    pub fn next_event(&mut self) -> Result<Option<Event>, Pop3Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.step();
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn step(&mut self) -> Result<Option<Event>, Pop3Error> {
        loop {
            match &mut self.reading {
                Reading::Tls => {
                    // RFC 2595 4 (as RFC 3207 6 for SMTP): whatever came
                    // before TLS must not be taken as coming through it.
                    if self.pos < self.input.len() {
                        return Err(Pop3Error::DataAfterStls);
                    }
                    return Ok(None);
                }
                Reading::Status if self.phase == Phase::Closed => {
                    // Anything after QUIT's +OK is ignored.
                    self.pos = self.input.len();
                    return Ok(None);
                }
                Reading::Status => {
                    let Some(line) = self.take_line()? else {
                        return Ok(None);
                    };
                    if let Some(event) = self.status(&line)? {
                        return Ok(Some(event));
                    }
                }
                Reading::Lines { .. } => {
                    let Some(line) = self.take_line()? else {
                        return Ok(None);
                    };
                    let Reading::Lines { kind, lines } = &mut self.reading else {
                        unreachable!()
                    };
                    let kind = *kind;
                    if line == b"." {
                        let lines = std::mem::take(lines);
                        self.reading = Reading::Status;
                        self.pending.pop_front();
                        return Ok(Some(finish_lines(kind, lines)?));
                    }
                    // RFC 1939 3: a line starting with "." is byte-stuffed.
                    let line = match line.strip_prefix(b".") {
                        Some(rest) => rest.to_vec(),
                        None => line,
                    };
                    let limit = if kind == Kind::Capa {
                        MAX_CAPA_LINES
                    } else {
                        MAX_LISTING
                    };
                    if lines.len() >= limit {
                        return Err(if kind == Kind::Capa {
                            Pop3Error::CapaTooLong
                        } else {
                            Pop3Error::ListingTooLong { kind }
                        });
                    }
                    lines.push(line);
                }
                Reading::Data { .. } => {
                    if let Some(event) = self.data()? {
                        return Ok(Some(event));
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// Reads message data as far as the input goes. Returns the message
    /// when its terminating dot line was seen.
    fn data(&mut self) -> Result<Option<Event>, Pop3Error> {
        let Reading::Data {
            number,
            max,
            at_line_start,
        } = &mut self.reading
        else {
            unreachable!()
        };
        loop {
            let avail = &self.input[self.pos..];
            if avail.is_empty() {
                return Ok(None);
            }
            if *at_line_start && avail[0] == b'.' {
                match (avail.get(1), avail.get(2)) {
                    // The terminating line: "." CRLF (or a bare LF, leniently).
                    (Some(b'\n'), _) | (Some(b'\r'), Some(b'\n')) => {
                        self.pos += if avail[1] == b'\n' { 2 } else { 3 };
                        let number = *number;
                        self.reading = Reading::Status;
                        self.pending.pop_front();
                        let data = std::mem::take(&mut self.message);
                        return Ok(Some(Event::Message { number, data }));
                    }
                    // A stuffed dot: drop it, keep the rest of the line.
                    (Some(b'.'), _) => {
                        self.pos += 1;
                        *at_line_start = false;
                        continue;
                    }
                    // Not enough bytes to tell yet.
                    (None, _) | (Some(b'\r'), None) => return Ok(None),
                    // A dot the server forgot to stuff: keep it.
                    _ => *at_line_start = false,
                }
            }
            // Up to the next line that starts with a dot, or all we have.
            let end = match memchr::memmem::find(avail, b"\n.") {
                Some(i) => i + 1,
                None => avail.len(),
            };
            if self.message.len() as u64 + end as u64 > *max {
                return Err(Pop3Error::MessageTooBig {
                    number: *number,
                    max: *max,
                });
            }
            self.message.extend_from_slice(&avail[..end]);
            *at_line_start = avail[end - 1] == b'\n';
            self.pos += end;
        }
    }

    /// Handles one status line. `None`: nothing to report yet (a
    /// multi-line response starts).
    fn status(&mut self, line: &[u8]) -> Result<Option<Event>, Pop3Error> {
        let (ok, text) = if let Some(rest) = strip_word(line, b"+OK") {
            (true, rest)
        } else if let Some(rest) = strip_word(line, b"-ERR") {
            (false, rest)
        } else if line == b"+" || line.starts_with(b"+ ") {
            // RFC 5034 4: a SASL challenge.
            if !self.pending.front().is_some_and(|p| p.sasl) {
                return Err(Pop3Error::Unsolicited(clean(line)));
            }
            let encoded = line.get(2..).unwrap_or_default().trim_ascii();
            let challenge = B64.decode(encoded).map_err(|_| Pop3Error::Malformed {
                what: "SASL challenge",
                line: clean(line),
            })?;
            return Ok(Some(Event::Challenge(challenge)));
        } else {
            return Err(Pop3Error::Malformed {
                what: "status line",
                line: clean(line),
            });
        };

        if self.phase == Phase::Greeting {
            if !ok {
                return Err(Pop3Error::Refused(clean(text)));
            }
            self.phase = Phase::Authorization;
            return Ok(Some(Event::Greeting {
                apop_timestamp: apop_timestamp(text),
                text: clean(text),
            }));
        }

        let Some(pending) = self.pending.front().copied() else {
            return Err(Pop3Error::Unsolicited(clean(line)));
        };
        let kind = pending.kind;
        if !ok {
            self.pending.pop_front();
            return Ok(Some(Event::Err {
                kind,
                reply: err_reply(text),
            }));
        }
        match kind {
            Kind::Capa | Kind::List | Kind::Uidl => {
                self.reading = Reading::Lines {
                    kind,
                    lines: Vec::new(),
                };
                Ok(None)
            }
            Kind::Retr(number) => {
                self.message.clear();
                self.reading = Reading::Data {
                    number,
                    max: pending.max,
                    at_line_start: true,
                };
                Ok(None)
            }
            Kind::Stls => {
                self.pending.pop_front();
                self.reading = Reading::Tls;
                Ok(Some(Event::StartTls))
            }
            Kind::Stat => {
                self.pending.pop_front();
                let mut words = text.split(|b| *b == b' ').filter(|w| !w.is_empty());
                match (
                    words.next().and_then(parse_num::<u32>),
                    words.next().and_then(parse_num::<u64>),
                ) {
                    (Some(count), Some(size)) => Ok(Some(Event::Stat { count, size })),
                    _ => Err(Pop3Error::Malformed {
                        what: "STAT reply",
                        line: clean(line),
                    }),
                }
            }
            Kind::Quit => {
                self.pending.pop_front();
                self.phase = Phase::Closed;
                Ok(Some(Event::Closed { text: clean(text) }))
            }
            Kind::Pass | Kind::Apop | Kind::Auth => {
                self.pending.pop_front();
                self.phase = Phase::Transaction;
                Ok(Some(Event::Ok {
                    kind,
                    text: clean(text),
                }))
            }
            Kind::User | Kind::Dele(_) | Kind::Noop | Kind::Rset => {
                self.pending.pop_front();
                Ok(Some(Event::Ok {
                    kind,
                    text: clean(text),
                }))
            }
        }
    }

    /// The next whole line without its line end, or `None` when the input
    /// has no line end yet. Lines are bounded by [`MAX_LINE`].
    fn take_line(&mut self) -> Result<Option<Vec<u8>>, Pop3Error> {
        let avail = &self.input[self.pos..];
        match memchr::memchr(b'\n', avail) {
            Some(i) if i + 1 > MAX_LINE => Err(Pop3Error::LineTooLong),
            Some(i) => {
                let mut line = &avail[..i];
                if let Some(l) = line.strip_suffix(b"\r") {
                    line = l;
                }
                let line = line.to_vec();
                self.pos += i + 1;
                Ok(Some(line))
            }
            None if avail.len() >= MAX_LINE => Err(Pop3Error::LineTooLong),
            None => Ok(None),
        }
    }
}

fn finish_lines(kind: Kind, lines: Vec<Vec<u8>>) -> Result<Event, Pop3Error> {
    let malformed = |what, line: &[u8]| Pop3Error::Malformed {
        what,
        line: clean(line),
    };
    match kind {
        Kind::Capa => Ok(Event::Capabilities(Capabilities {
            lines: lines.iter().map(|l| clean(l)).collect(),
        })),
        Kind::List => {
            let mut entries = Vec::with_capacity(lines.len());
            for line in &lines {
                let mut words = line.split(|b| *b == b' ').filter(|w| !w.is_empty());
                match (
                    words.next().and_then(parse_num::<u32>),
                    words.next().and_then(parse_num::<u64>),
                ) {
                    (Some(n), Some(size)) => entries.push((n, size)),
                    _ => return Err(malformed("LIST line", line)),
                }
            }
            Ok(Event::Listing(entries))
        }
        Kind::Uidl => {
            let mut entries = Vec::with_capacity(lines.len());
            for line in &lines {
                let mut words = line.split(|b| *b == b' ').filter(|w| !w.is_empty());
                let n = words.next().and_then(parse_num::<u32>);
                let uid = words.next();
                match (n, uid) {
                    // RFC 1939 7: 1 to 70 characters in 0x21..0x7E. We allow
                    // longer ones (bounded by the line) but nothing else.
                    (Some(n), Some(uid)) if uid.iter().all(|b| (0x21..=0x7e).contains(b)) => {
                        entries.push((n, String::from_utf8_lossy(uid).into_owned()))
                    }
                    _ => return Err(malformed("UIDL line", line)),
                }
            }
            Ok(Event::UidListing(entries))
        }
        _ => unreachable!("only CAPA, LIST and UIDL have listings"),
    }
}

/// `word` at the start of `line`, case-insensitively, followed by a space
/// or the end; returns the rest.
fn strip_word<'a>(line: &'a [u8], word: &[u8]) -> Option<&'a [u8]> {
    if line.len() < word.len() || !line[..word.len()].eq_ignore_ascii_case(word) {
        return None;
    }
    let rest = &line[word.len()..];
    match rest.first() {
        None => Some(rest),
        Some(b' ') => Some(&rest[1..]),
        Some(_) => None,
    }
}

fn err_reply(text: &[u8]) -> ErrReply {
    // RFC 2449 8: "-ERR [CODE] text".
    if let Some(rest) = text.strip_prefix(b"[")
        && let Some(end) = rest.iter().position(|b| *b == b']')
    {
        let code = String::from_utf8_lossy(&rest[..end]).into_owned();
        return ErrReply {
            code: Some(ResponseCode::parse(&code)),
            text: clean(rest[end + 1..].trim_ascii_start()),
        };
    }
    ErrReply {
        code: None,
        text: clean(text),
    }
}

/// RFC 1939 7: the greeting's `<...>` timestamp, which APOP hashes.
fn apop_timestamp(text: &[u8]) -> Option<String> {
    let start = text.iter().position(|b| *b == b'<')?;
    let len = text[start..].iter().position(|b| *b == b'>')?;
    let stamp = &text[start..=start + len];
    let ok = stamp.len() <= 256 && stamp.iter().all(|b| (0x21..=0x7e).contains(b));
    ok.then(|| String::from_utf8_lossy(stamp).into_owned())
}

fn parse_num<T: std::str::FromStr>(word: &[u8]) -> Option<T> {
    if word.is_empty() || !word.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(word).ok()?.parse().ok()
}

fn check_word(word: &str, what: &'static str) -> Result<(), Pop3Error> {
    let ok = !word.is_empty()
        && word.len() <= MAX_ARGUMENT
        && word
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) || b >= 0x80);
    if ok {
        Ok(())
    } else {
        Err(Pop3Error::BadArgument { what })
    }
}

/// Server text made safe to print: control characters (a terminal escape,
/// say) replaced, at most [`MAX_LINE`] long by construction.
fn clean(text: &[u8]) -> String {
    String::from_utf8_lossy(text)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
