//! An SMTP server session, sans-IO: the driver feeds the client's bytes
//! into [`Session::feed`], pulls [`Event`]s with [`Session::next_event`]
//! (deliver this message, check this password, start TLS, close) and
//! answers them, and writes out what [`Session::take_output`] gives. No
//! sockets, no files, no clocks: the driver in [`crate::smtp`] owns those.
//!
//! What it implements, and how far:
//!
//! | RFC  | section      | what                                                       |
//! | ---- | ------------ | ---------------------------------------------------------- |
//! | 5321 | 3, 4.1       | EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, VRFY (252), HELP |
//! | 5321 | 4.1.2        | paths: source routes, quoted local parts, address literals |
//! | 5321 | 4.5.1        | `postmaster` always exists, also without a domain          |
//! | 5321 | 4.5.2        | dot-unstuffing                                             |
//! | 5321 | 4.5.3.1      | bounded lines, 100 recipients                              |
//! | 5321 | 2.3.8        | CR LF only: a bare LF or CR in DATA or BDAT is refused (smuggling) |
//! | 1870 |              | SIZE, on MAIL and while receiving                          |
//! | 2920 |              | PIPELINING: all complete commands in the buffer are read   |
//! | 2034, 3463 |        | ENHANCEDSTATUSCODES, always                                |
//! | 3030 |              | CHUNKING (BDAT); not BINARYMIME                            |
//! | 3207 | 4, 4.2       | STARTTLS; input buffered before TLS is discarded, state reset |
//! | 4954 | 4-6          | AUTH PLAIN (RFC 4616) and LOGIN, only over TLS or loopback |
//! | 6152 |              | 8BITMIME                                                   |
//! | 6531 | 3.2-3.4      | SMTPUTF8: UTF-8 addresses only with the MAIL parameter     |
//!
//! Not implemented: DSN (RFC 3461; NOTIFY/RET are refused with 555),
//! BINARYMIME, EXPN (502), ETRN.
//!
//! Every buffer is bounded: a command line by [`MAX_COMMAND_LINE`] (AUTH
//! lines by [`MAX_AUTH_LINE`]), a message by `max_message_size` (the bytes
//! past it are read and dropped), recipients by [`MAX_RECIPIENTS`], errors by
//! [`MAX_ERRORS`] and, with refused recipients, [`HARD_ERROR_LIMIT`]. The
//! message is held in memory until it is handed over.

mod command;
mod directory;
mod reply;
mod session;
#[cfg(test)]
mod tests;

pub use command::{Command, MailParams, Mailbox, Path, parse_path};
pub use directory::{Directory, LookupFailed};
pub use reply::Reply;
pub use session::{AuthOutcome, Event, Recipient, Route, Session, Settings, TlsInfo, Transaction};

/// RFC 5321 4.5.3.1.4 says 512 octets; extensions (SIZE, BODY, SMTPUTF8,
/// AUTH=) may lengthen MAIL, so we allow more, but not without end.
pub const MAX_COMMAND_LINE: usize = 2048;
/// RFC 4954 4: an AUTH line or SASL response may be 12288 octets.
pub const MAX_AUTH_LINE: usize = 12288;
/// RFC 5321 4.5.3.1.8: at least 100 recipients must be accepted; we take no
/// more.
pub const MAX_RECIPIENTS: usize = 100;
/// Mistakes (5xx replies to commands out of place, bad syntax, failed
/// logins) before the session is closed with 421: a client that is lost or
/// flooding. Refused recipients do not count here.
pub const MAX_ERRORS: usize = 10;
/// Mistakes and refused recipients (unknown user, relay denied) together
/// before the session is closed with 421 (Postfix's
/// `smtpd_hard_error_limit`, 20): the bound on address harvesting per
/// connection, high enough that one good recipient among many unknown ones
/// still gets the message.
pub const HARD_ERROR_LIMIT: usize = 20;
