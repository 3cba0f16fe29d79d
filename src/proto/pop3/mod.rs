//! A POP3 client session, sans-IO: the caller queues [`Command`]s and sends
//! the bytes [`Client::take_output`] gives; it feeds what the server sent
//! into [`Client::feed`] and pulls [`Event`]s with [`Client::next_event`]
//! until that returns `None` (more input needed). No sockets, no files, no
//! clocks: the driver in `fetch::pop3` owns those.
//!
//! What it implements, and how far:
//!
//! | RFC        | section | what                                                     |
//! | ---------- | ------- | -------------------------------------------------------- |
//! | 1939       | 3       | status lines, multi-line responses, dot-unstuffing       |
//! | 1939       | 4-6     | greeting, USER/PASS, STAT, LIST, RETR, DELE, NOOP, RSET, QUIT |
//! | 1939       | 7       | APOP (the greeting's timestamp; the caller makes the digest), UIDL |
//! | 2449       | 5, 6    | CAPA; PIPELINING (commands may be queued before replies)  |
//! | 2449, 3206 | 8       | response codes: IN-USE, LOGIN-DELAY, SYS/TEMP, SYS/PERM, AUTH |
//! | 2595       | 4       | STLS: nothing after the `+OK` may be read before TLS      |
//! | 5034       | 4       | AUTH with an initial response, challenges, cancel         |
//!
//! Not implemented: TOP, LIST/UIDL with an argument (the fetcher always asks
//! for the whole listing), RESP-CODES beyond the ones above.
//!
//! Every buffer is bounded: a status or listing line by [`MAX_LINE`], a
//! listing by [`MAX_LISTING`] entries, CAPA by [`MAX_CAPA_LINES`], a message
//! by the limit given with each [`Command::Retr`]. Message lines may be of
//! any length: their bytes are collected without waiting for the line end,
//! so a hostile server cannot make us hold more than the message limit.

mod client;
#[cfg(test)]
mod tests;

use std::fmt;

pub use client::Client;

use crate::auth::Secret;

/// The longest status or listing line we accept, line end included.
/// RFC 2449 4 says 512 octets; real servers' greetings and error texts run
/// longer, so we allow more, but not without end.
pub const MAX_LINE: usize = 8 * 1024;
/// The most entries a LIST or UIDL listing may have.
pub const MAX_LISTING: usize = 1_000_000;
/// The most lines a CAPA response may have.
pub const MAX_CAPA_LINES: usize = 256;
/// The longest command argument we send (RFC 2449 4: a command line is at
/// most 255 octets).
pub const MAX_ARGUMENT: usize = 240;

/// A command the client sends.
pub enum Command {
    /// RFC 2449 5.
    Capa,
    /// RFC 2595 4.
    Stls,
    User(String),
    Pass(Secret),
    /// RFC 1939 7: `digest` is the lower-case hex MD5 of the greeting's
    /// timestamp followed by the password.
    Apop {
        user: String,
        digest: String,
    },
    /// RFC 5034 4: `initial` is sent base64-encoded on the command line
    /// (`=` when empty); `None` waits for the server's first challenge.
    Auth {
        mechanism: String,
        initial: Option<Secret>,
    },
    /// The answer to a [`Event::Challenge`], sent base64-encoded.
    AuthResponse(Secret),
    /// RFC 5034 4: `*` cancels the exchange.
    AuthCancel,
    Stat,
    List,
    Uidl,
    /// `max`: the most bytes (after dot-unstuffing, CRLF included) we accept
    /// for this message before giving up on the connection.
    Retr {
        number: u32,
        max: u64,
    },
    Dele(u32),
    Noop,
    Rset,
    Quit,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets never print; a user name does.
        match self {
            Command::Pass(_) => f.write_str("Pass(..)"),
            Command::Apop { user, .. } => write!(f, "Apop({user:?}, ..)"),
            Command::Auth { mechanism, .. } => write!(f, "Auth({mechanism:?}, ..)"),
            Command::AuthResponse(_) => f.write_str("AuthResponse(..)"),
            Command::User(u) => write!(f, "User({u:?})"),
            other => write!(f, "{:?}", other.kind()),
        }
    }
}

/// Which command a reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Capa,
    Stls,
    User,
    Pass,
    Apop,
    Auth,
    Stat,
    List,
    Uidl,
    Retr(u32),
    Dele(u32),
    Noop,
    Rset,
    Quit,
}

impl Command {
    pub fn kind(&self) -> Kind {
        match self {
            Command::Capa => Kind::Capa,
            Command::Stls => Kind::Stls,
            Command::User(_) => Kind::User,
            Command::Pass(_) => Kind::Pass,
            Command::Apop { .. } => Kind::Apop,
            Command::Auth { .. } | Command::AuthResponse(_) | Command::AuthCancel => Kind::Auth,
            Command::Stat => Kind::Stat,
            Command::List => Kind::List,
            Command::Uidl => Kind::Uidl,
            Command::Retr { number, .. } => Kind::Retr(*number),
            Command::Dele(n) => Kind::Dele(*n),
            Command::Noop => Kind::Noop,
            Command::Rset => Kind::Rset,
            Command::Quit => Kind::Quit,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Capa => f.write_str("CAPA"),
            Kind::Stls => f.write_str("STLS"),
            Kind::User => f.write_str("USER"),
            Kind::Pass => f.write_str("PASS"),
            Kind::Apop => f.write_str("APOP"),
            Kind::Auth => f.write_str("AUTH"),
            Kind::Stat => f.write_str("STAT"),
            Kind::List => f.write_str("LIST"),
            Kind::Uidl => f.write_str("UIDL"),
            Kind::Retr(n) => write!(f, "RETR {n}"),
            Kind::Dele(n) => write!(f, "DELE {n}"),
            Kind::Noop => f.write_str("NOOP"),
            Kind::Rset => f.write_str("RSET"),
            Kind::Quit => f.write_str("QUIT"),
        }
    }
}

/// What the server said, in the order it said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The `+OK` greeting; `apop_timestamp` is its `<...>` part, if any
    /// (RFC 1939 7), which means the server offers APOP.
    Greeting {
        apop_timestamp: Option<String>,
        text: String,
    },
    /// A single-line `+OK` (USER, PASS, APOP, AUTH, DELE, NOOP, RSET).
    Ok {
        kind: Kind,
        text: String,
    },
    /// `-ERR`, for any command.
    Err {
        kind: Kind,
        reply: ErrReply,
    },
    /// A SASL challenge (`+ base64`), decoded: answer with
    /// [`Command::AuthResponse`] or [`Command::AuthCancel`].
    Challenge(Vec<u8>),
    Capabilities(Capabilities),
    Stat {
        count: u32,
        size: u64,
    },
    /// LIST: (message number, size in octets as the server will send it).
    Listing(Vec<(u32, u64)>),
    /// UIDL: (message number, unique id).
    UidListing(Vec<(u32, String)>),
    /// A whole message, dot-unstuffed, line ends as the server sent them.
    Message {
        number: u32,
        data: Vec<u8>,
    },
    /// `+OK` to STLS: start TLS on the connection now, then call
    /// [`Client::tls_started`]. Capabilities must be asked again.
    StartTls,
    /// `+OK` to QUIT: the server has deleted what was marked (RFC 1939 6).
    Closed {
        text: String,
    },
}

/// A `-ERR` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrReply {
    pub code: Option<ResponseCode>,
    /// The text after `-ERR` (and the code), control characters replaced.
    pub text: String,
}

impl ErrReply {
    /// Whether trying again later may succeed: RFC 2449 8.1.1 (IN-USE,
    /// LOGIN-DELAY) and RFC 3206 (SYS/TEMP).
    pub fn is_temporary(&self) -> bool {
        matches!(
            self.code,
            Some(ResponseCode::InUse | ResponseCode::LoginDelay | ResponseCode::SysTemp)
        )
    }
}

impl fmt::Display for ErrReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("-ERR ")?;
        if let Some(code) = &self.code {
            write!(f, "[{code}] ")?;
        }
        f.write_str(&self.text)
    }
}

/// Extended response codes: RFC 2449 8 and RFC 3206.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseCode {
    InUse,
    LoginDelay,
    SysTemp,
    SysPerm,
    Auth,
    Other(String),
}

impl ResponseCode {
    fn parse(code: &str) -> ResponseCode {
        match code.to_ascii_uppercase().as_str() {
            "IN-USE" => ResponseCode::InUse,
            "LOGIN-DELAY" => ResponseCode::LoginDelay,
            "SYS/TEMP" => ResponseCode::SysTemp,
            "SYS/PERM" => ResponseCode::SysPerm,
            "AUTH" => ResponseCode::Auth,
            _ => ResponseCode::Other(code.to_owned()),
        }
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResponseCode::InUse => "IN-USE",
            ResponseCode::LoginDelay => "LOGIN-DELAY",
            ResponseCode::SysTemp => "SYS/TEMP",
            ResponseCode::SysPerm => "SYS/PERM",
            ResponseCode::Auth => "AUTH",
            ResponseCode::Other(s) => s,
        })
    }
}

/// The server's CAPA response (RFC 2449 6), the tags upper-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub lines: Vec<String>,
}

impl Capabilities {
    /// Whether the capability `tag` (case-insensitive) is listed.
    pub fn has(&self, tag: &str) -> bool {
        self.lines.iter().any(|l| {
            l.split_ascii_whitespace()
                .next()
                .is_some_and(|t| t.eq_ignore_ascii_case(tag))
        })
    }

    /// The SASL mechanisms offered (RFC 5034 6: `SASL PLAIN XOAUTH2 ...`).
    pub fn sasl(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|l| {
                let mut words = l.split_ascii_whitespace();
                words
                    .next()
                    .filter(|t| t.eq_ignore_ascii_case("SASL"))
                    .map(|_| words.map(|w| w.to_ascii_uppercase()).collect::<Vec<_>>())
            })
            .flatten()
            .collect()
    }
}

/// What can go wrong in a session. All of them end the session: the
/// server's byte stream can no longer be trusted to be in step with us.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Pop3Error {
    #[error("the server refused the connection: {0}")]
    Refused(String),
    #[error("the server sent a line longer than {MAX_LINE} octets")]
    LineTooLong,
    #[error("the server sent a malformed {what}: {line:?}")]
    Malformed { what: &'static str, line: String },
    #[error("the server sent a reply nobody asked for: {0:?}")]
    Unsolicited(String),
    #[error("the server's {kind} listing has more than {MAX_LISTING} entries")]
    ListingTooLong { kind: Kind },
    #[error("the server's CAPA response has more than {MAX_CAPA_LINES} lines")]
    CapaTooLong,
    #[error(
        "message {number} is bigger than {max} octets, more than the server said or max_size allows"
    )]
    MessageTooBig { number: u32, max: u64 },
    #[error(
        "the server sent data after its +OK to STLS, before TLS started (an injection attempt?)"
    )]
    DataAfterStls,
    #[error("{command} cannot be sent now: {why}")]
    WrongState {
        command: &'static str,
        why: &'static str,
    },
    #[error("{what} cannot be sent: it is empty, too long, or has spaces or line breaks")]
    BadArgument { what: &'static str },
}
