//! The replies the server sends, named (mox's `smtp/codes.go`): a reply code
//! (RFC 5321 4.2) and an enhanced status code (RFC 3463, RFC 2034), which
//! we always send, since ENHANCEDSTATUSCODES is always offered.

use std::borrow::Cow;
use std::fmt;

/// One reply: `code`, enhanced status and text on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// The RFC 3463 status (`5.1.1`); empty for the greeting and EHLO.
    pub status: &'static str,
    pub text: Cow<'static, str>,
}

macro_rules! replies {
    ($($(#[$doc:meta])* $name:ident = $code:literal $status:literal $text:literal;)*) => {
        impl Reply {
            $($(#[$doc])* pub const $name: Reply = Reply {
                code: $code,
                status: $status,
                text: Cow::Borrowed($text),
            };)*
        }
    };
}

replies! {
    /// HELP (RFC 5321 4.1.1.8).
    HELP = 214 "2.0.0" "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH";
    /// The answer to STARTTLS: TLS starts after this line (RFC 3207 4).
    TLS_GO_AHEAD = 220 "2.0.0" "Ready to start TLS";
    /// QUIT (RFC 5321 4.1.1.10).
    CLOSING = 221 "2.0.0" "Bye";
    /// AUTH succeeded (RFC 4954 6).
    AUTH_OK = 235 "2.7.0" "Authentication successful";
    OK = 250 "2.0.0" "OK";
    SENDER_OK = 250 "2.1.0" "Sender OK";
    RECIPIENT_OK = 250 "2.1.5" "Recipient OK";
    /// VRFY is not answered truthfully: RFC 5321 3.5.3 allows 252, and
    /// anything else would let strangers harvest our addresses.
    CANNOT_VRFY = 252 "2.5.0" "Cannot VRFY user, but will accept message and attempt delivery";
    /// DATA (RFC 5321 4.1.1.4).
    START_DATA = 354 "" "End data with <CR><LF>.<CR><LF>";
    /// We are going away (SIGTERM) (RFC 5321 3.8).
    SHUTTING_DOWN = 421 "4.3.2" "Service shutting down, try again later";
    /// RFC 5321 4.5.3.2: the client was silent for too long.
    TIMEOUT = 421 "4.4.2" "Timeout, closing connection";
    /// The session made too many mistakes (10), or mistakes and refused
    /// recipients (20): a client that is lost, flooding or probing.
    TOO_MANY_ERRORS = 421 "4.7.0" "Too many errors, closing connection";
    /// The connection limit is reached.
    TOO_MANY_CONNECTIONS = 421 "4.7.0" "Too many connections, try again later";
    /// Our fault (disk full, I/O error): the client keeps the message and
    /// tries again later.
    LOCAL_ERROR = 451 "4.3.0" "Local error, message not accepted, try again later";
    /// RFC 5321 4.2.5: the users could not be read, so whether a local
    /// recipient exists is unknown: try again, never "no such user".
    LOOKUP_FAILED = 451 "4.3.0" "Temporary lookup failure";
    /// RFC 5321 4.5.3.1.8: 100 recipients; the client sends the rest in
    /// another transaction.
    TOO_MANY_RECIPIENTS = 452 "4.5.3" "Too many recipients";
    /// STARTTLS offered but the certificate could not be loaded.
    TLS_UNAVAILABLE = 454 "4.7.0" "TLS not available";
    /// Too many failed logins from this address.
    AUTH_THROTTLED = 454 "4.7.0" "Too many failed logins, try again later";
    SYNTAX_ERROR = 500 "5.5.2" "Syntax error, command unrecognized";
    /// RFC 5321 4.5.3.1.4: a command line is bounded.
    LINE_TOO_LONG = 500 "5.5.6" "Line too long";
    /// RFC 5321 2.3.8: lines end with CR LF, never LF alone.
    BARE_LF_COMMAND = 500 "5.5.2" "Bare LF in command, lines end with CR LF";
    NUL_IN_COMMAND = 500 "5.5.2" "NUL byte in command";
    PARAM_SYNTAX = 501 "5.5.4" "Syntax error in parameters";
    /// A recipient's address (RFC 3463 3.2: X.1.3, bad destination syntax).
    ADDRESS_SYNTAX = 501 "5.1.3" "Bad address syntax";
    /// The sender's address (RFC 3463 3.2: X.1.7, bad sender syntax).
    SENDER_SYNTAX = 501 "5.1.7" "Bad sender address syntax";
    AUTH_CANCELLED = 501 "5.0.0" "Authentication cancelled";
    BASE64_ERROR = 501 "5.5.2" "Cannot decode base64";
    NOT_IMPLEMENTED = 502 "5.5.1" "Command not implemented";
    /// RFC 4954 4: a mechanism we do not offer.
    AUTH_MECHANISM = 504 "5.5.4" "Unrecognized authentication type";
    /// RFC 4954 6: the password check failed on our side.
    AUTH_TEMPFAIL = 454 "4.7.0" "Temporary authentication failure";
    BAD_SEQUENCE = 503 "5.5.1" "Bad sequence of commands";
    /// RFC 3030 3: a transaction uses DATA or BDAT, never both.
    DATA_AFTER_BDAT = 503 "5.5.1" "DATA and BDAT cannot be mixed in one transaction";
    NEED_HELO = 503 "5.5.1" "Send EHLO or HELO first";
    ALREADY_AUTHENTICATED = 503 "5.5.1" "Already authenticated";
    NO_VALID_RECIPIENTS = 554 "5.5.1" "No valid recipients";
    /// RFC 4954 6: the submission ports want a login first.
    AUTH_REQUIRED = 530 "5.7.0" "Authentication required";
    /// The submission port (587) wants STARTTLS before anything else.
    TLS_REQUIRED = 530 "5.7.0" "Must issue a STARTTLS command first";
    AUTH_FAILED = 535 "5.7.8" "Authentication credentials invalid";
    /// RFC 4954 6: AUTH is offered only over TLS (or on loopback).
    ENCRYPTION_REQUIRED = 538 "5.7.11" "Encryption required for authentication";
    /// A local address that is neither a user nor an alias.
    NO_SUCH_USER = 550 "5.1.1" "No such user here";
    /// `user%other@us`, `"user@other"@us`, `!` paths, source routes: the
    /// classic ways to make a server relay; none is routed.
    ROUTING_REFUSED = 550 "5.7.1" "Address form not accepted: no %, !, quoted @ or source routes";
    /// RFC 1870 6: the message is over SIZE.
    MESSAGE_TOO_BIG = 552 "5.3.4" "Message too big";
    /// An authenticated user sending as someone else.
    SENDER_NOT_OWNED = 553 "5.7.1" "Sender address not owned by the authenticated user";
    /// RFC 6531 3.7.4.1: a UTF-8 address needs SMTPUTF8 on MAIL.
    UTF8_REQUIRED = 553 "5.6.7" "Non-ASCII address needs the SMTPUTF8 parameter";
    /// Our `Delivered-To:` is already on the message (RFC 5321 6.3).
    MAIL_LOOP = 554 "5.4.6" "Mail loop: the message was delivered here before";
    /// Local delivery refused the message for good.
    MESSAGE_REFUSED = 554 "5.6.0" "Message refused";
    /// Mail for another domain from a stranger.
    RELAY_DENIED = 554 "5.7.1" "Relay access denied";
    /// RFC 5321 2.3.8, and the end-of-data smuggling of 2023: a bare LF in
    /// DATA is refused, so no reading of `<LF>.<LF>` can split a message.
    BARE_LF_DATA = 554 "5.6.0" "Bare LF in message, lines end with CR LF";
    /// The same for a CR without its LF (`<CR>.<CR>` ends data for some).
    BARE_CR_DATA = 554 "5.6.0" "Bare CR in message, lines end with CR LF";
    /// RFC 1869 6: an unknown MAIL or RCPT parameter.
    PARAM_NOT_IMPLEMENTED = 555 "5.5.4" "Parameter not recognized or not implemented";
}

impl Reply {
    /// A named reply with another text (`250 2.0.0 Delivered as <id>`).
    pub fn with_text(&self, text: impl Into<String>) -> Reply {
        Reply {
            code: self.code,
            status: self.status,
            text: Cow::Owned(text.into()),
        }
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// Whether the client's mistake counts toward the error limit.
    pub fn is_error(&self) -> bool {
        self.code >= 500
    }

    /// Closes the connection (RFC 5321 3.8: 421).
    pub fn closes(&self) -> bool {
        self.code == 421
    }

    /// The reply on the wire.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_string().as_bytes());
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Text is ours; a line end in it would forge a reply.
        let text = self.text.replace(['\r', '\n'], " ");
        if self.status.is_empty() {
            write!(f, "{} {}\r\n", self.code, text)
        } else {
            write!(f, "{} {} {}\r\n", self.code, self.status, text)
        }
    }
}
