//! Cutting the client's byte stream into whole commands: a command is a
//! line, or lines joined by literals (RFC 3501 4.3, RFC 7888). The framer
//! asks for the continuation of a synchronizing literal, refuses one that is
//! too big before the client sends it, and bounds everything it holds.
//!
//! It does not parse commands: [`super::command::parse`] reads the bytes a
//! [`Frame::Command`] holds, literals included as they were sent.
//!
//! The message literal of an APPEND at least [`SPOOL_MIN`] long is not held:
//! it is handed on as it arrives ([`Frame::SpoolStart`], [`Frame::SpoolData`],
//! [`Frame::SpoolEnd`]) for the session to write to the folder's `tmp/`, so
//! a message up to APPENDLIMIT costs one read buffer, whatever its size.
//! Every other literal is held, and their total in one command is bounded
//! by [`INLINE_MAX`].

/// The bounds of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest line (one piece between literals), CRLF included.
    pub max_line: usize,
    /// The largest literal and the most literal bytes in one command
    /// (RFC 7889 APPENDLIMIT).
    pub max_literal: u64,
    /// The most literals in one command.
    pub max_literals: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // Dovecot's imap_max_line_length is 64 KiB as well.
            max_line: 64 * 1024,
            // APPENDLIMIT: messages are spooled to disk as they arrive, so
            // the size costs disk, not memory.
            max_literal: 256 * 1024 * 1024,
            max_literals: 1000,
        }
    }
}

/// An APPEND literal this long or longer is spooled, not held.
pub const SPOOL_MIN: u64 = 64 * 1024;
/// The most literal bytes one command may have held in memory (APPEND
/// messages, spooled, count against APPENDLIMIT only).
pub const INLINE_MAX: u64 = 2 * 1024 * 1024;

/// RFC 7888 4: a non-synchronizing literal above this is refused when the
/// server offers LITERAL- only; we offer LITERAL+, but keep the number for
/// the capability's sake.
pub const LITERAL_MINUS_MAX: u64 = 4096;

/// What the framer has for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole command, CRLF and literals included.
    Command(Vec<u8>),
    /// A synchronizing literal is announced and allowed: send `+ ...`.
    Continue,
    /// An APPEND's message literal begins: `head` is the command up to and
    /// including the `{size}` line; the literal's bytes follow as
    /// [`Frame::SpoolData`]. When `sync`, the session sends `+ ...` itself.
    SpoolStart {
        head: Vec<u8>,
        size: u64,
        sync: bool,
    },
    /// The next bytes of a spooled literal.
    SpoolData(Vec<u8>),
    /// The rest of a command whose literal was spooled, CRLF included.
    SpoolEnd(Vec<u8>),
    /// A line was longer than [`Limits::max_line`]; it was dropped up to its
    /// end. The tag, when the start of the line had one.
    LineTooLong { tag: Option<String> },
    /// A synchronizing literal above the limit was announced: the client
    /// waits for our answer and sends nothing more of this command.
    /// `limit`: the limit it passed (APPENDLIMIT, or [`INLINE_MAX`] for
    /// what is held in memory).
    LiteralTooBig { tag: Option<String>, limit: u64 },
    /// A non-synchronizing literal above the limit (or too many literals):
    /// its bytes are on their way and cannot be told apart from commands.
    /// The only safe answer is to close the connection.
    Fatal {
        tag: Option<String>,
        reason: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Line,
    /// Bytes of a literal still to come.
    Literal(u64),
    /// Bytes of a spooled literal still to come.
    Spool(u64),
    /// Dropping a too long line up to its LF.
    Discard,
    /// A fatal frame was given; nothing more is read.
    Dead,
}

/// The framer: [`Framer::push`] what the client sent, then take
/// [`Framer::next_frame`] until it returns `None`.
#[derive(Debug)]
pub struct Framer {
    limits: Limits,
    input: Vec<u8>,
    pos: usize,
    command: Vec<u8>,
    literals: usize,
    literal_bytes: u64,
    /// Literal bytes held in `command` (not spooled).
    inline_bytes: u64,
    /// The command under way had a literal spooled.
    spooled: bool,
    state: State,
    discard_tag: Option<String>,
}

impl Framer {
    pub fn new(limits: Limits) -> Framer {
        Framer {
            limits,
            input: Vec::new(),
            pos: 0,
            command: Vec::new(),
            literals: 0,
            literal_bytes: 0,
            inline_bytes: 0,
            spooled: false,
            state: State::Line,
            discard_tag: None,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Adds bytes from the client. The caller reads at most a buffer's
    /// worth before taking frames, so what is held stays bounded by
    /// `max_line` plus one read (a literal is moved on at once).
    pub fn push(&mut self, bytes: &[u8]) {
        if self.state == State::Dead {
            return;
        }
        if self.pos > 0 && self.pos == self.input.len() {
            self.input.clear();
            self.pos = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// Bytes pushed and not yet framed.
    pub fn pending(&self) -> usize {
        self.input.len() - self.pos
    }

    /// Whether a command is partly received (a literal or a line under way).
    pub fn in_command(&self) -> bool {
        !self.command.is_empty() || self.pending() > 0 || self.spooled
    }

    /// Drops a spooled literal the session refused before asking for it
    /// (a synchronizing one: the client sends nothing until `+`).
    pub fn cancel_spool(&mut self) {
        if matches!(self.state, State::Spool(_)) {
            self.state = State::Line;
            self.command.clear();
            self.reset_counts();
        }
    }

    /// Takes every byte not yet framed (after STARTTLS none may be left; the
    /// caller checks).
    pub fn take_pending(&mut self) -> Vec<u8> {
        let rest = self.input[self.pos..].to_vec();
        self.input.clear();
        self.pos = 0;
        rest
    }

    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            match self.state {
                State::Dead => return None,
                State::Spool(left) => {
                    let avail = self.input.len() - self.pos;
                    if avail == 0 {
                        return None;
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(avail);
                    let data = self.input[self.pos..self.pos + take].to_vec();
                    self.pos += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::Line
                    } else {
                        State::Spool(left)
                    };
                    self.compact();
                    return Some(Frame::SpoolData(data));
                }
                State::Literal(left) => {
                    let avail = self.input.len() - self.pos;
                    if avail == 0 {
                        return None;
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(avail);
                    self.command
                        .extend_from_slice(&self.input[self.pos..self.pos + take]);
                    self.pos += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::Line
                    } else {
                        State::Literal(left)
                    };
                    self.compact();
                }
                State::Discard => match memchr::memchr(b'\n', &self.input[self.pos..]) {
                    Some(i) => {
                        self.pos += i + 1;
                        self.state = State::Line;
                        let tag = self.discard_tag.take();
                        self.compact();
                        return Some(Frame::LineTooLong { tag });
                    }
                    None => {
                        self.pos = self.input.len();
                        self.compact();
                        return None;
                    }
                },
                State::Line => {
                    let rest = &self.input[self.pos..];
                    let Some(i) = memchr::memchr(b'\n', rest) else {
                        if rest.len() >= self.limits.max_line {
                            self.discard_tag = tag_of(if self.command.is_empty() {
                                rest
                            } else {
                                &self.command
                            });
                            self.command.clear();
                            self.reset_counts();
                            self.pos = self.input.len();
                            self.state = State::Discard;
                            self.compact();
                        }
                        return None;
                    };
                    let line_len = i + 1;
                    if line_len > self.limits.max_line {
                        let tag = tag_of(if self.command.is_empty() {
                            rest
                        } else {
                            &self.command
                        });
                        self.pos += line_len;
                        self.command.clear();
                        self.reset_counts();
                        self.compact();
                        return Some(Frame::LineTooLong { tag });
                    }
                    let line = &self.input[self.pos..self.pos + line_len];
                    self.command.extend_from_slice(line);
                    self.pos += line_len;
                    match literal_announced(line) {
                        None => {
                            let cmd = std::mem::take(&mut self.command);
                            let spooled = self.spooled;
                            self.reset_counts();
                            self.compact();
                            return Some(if spooled {
                                Frame::SpoolEnd(cmd)
                            } else {
                                Frame::Command(cmd)
                            });
                        }
                        Some((n, sync)) => {
                            self.literals += 1;
                            self.literal_bytes = self.literal_bytes.saturating_add(n);
                            let spool = n >= SPOOL_MIN && is_append(&self.command);
                            if !spool {
                                self.inline_bytes = self.inline_bytes.saturating_add(n);
                            }
                            let over_max = n > self.limits.max_literal
                                || self.literal_bytes > self.limits.max_literal;
                            let inline_max = INLINE_MAX.min(self.limits.max_literal);
                            let too_big = over_max || self.inline_bytes > inline_max;
                            let limit = if over_max {
                                self.limits.max_literal
                            } else {
                                inline_max
                            };
                            let too_many = self.literals > self.limits.max_literals;
                            if too_big || too_many {
                                let tag = tag_of(&self.command);
                                self.command.clear();
                                self.reset_counts();
                                if sync && !too_many {
                                    self.compact();
                                    return Some(Frame::LiteralTooBig { tag, limit });
                                }
                                self.state = State::Dead;
                                self.input.clear();
                                self.pos = 0;
                                return Some(Frame::Fatal {
                                    tag,
                                    reason: if too_many {
                                        "too many literals in one command"
                                    } else {
                                        "non-synchronizing literal above the size limit"
                                    },
                                });
                            }
                            if spool {
                                self.spooled = true;
                                self.state = State::Spool(n);
                                let head = std::mem::take(&mut self.command);
                                self.compact();
                                return Some(Frame::SpoolStart {
                                    head,
                                    size: n,
                                    sync,
                                });
                            }
                            self.state = if n == 0 {
                                State::Line
                            } else {
                                State::Literal(n)
                            };
                            if sync {
                                self.compact();
                                return Some(Frame::Continue);
                            }
                        }
                    }
                }
            }
        }
    }

    fn reset_counts(&mut self) {
        self.literals = 0;
        self.literal_bytes = 0;
        self.inline_bytes = 0;
        self.spooled = false;
    }

    /// Drops consumed input once it is a good part of the buffer.
    fn compact(&mut self) {
        if self.pos == self.input.len() {
            self.input.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 && self.pos * 2 > self.input.len() {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
    }
}

/// `{123}\r\n` or `{123+}\r\n` (a bare LF is accepted too) at the end of a
/// line: the size and whether it is synchronizing. `~{n}` (BINARY) is not
/// recognised: we do not offer BINARY.
pub fn literal_announced(line: &[u8]) -> Option<(u64, bool)> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let mut digits = &inner[open + 1..];
    let sync = match digits.strip_suffix(b"+") {
        Some(d) => {
            digits = d;
            false
        }
        None => true,
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse::<u64>().ok()?;
    Some((n, sync))
}

/// Whether a command begins `<tag> APPEND ` (any case).
fn is_append(command: &[u8]) -> bool {
    let Some(sp) = command.iter().position(|&b| b == b' ') else {
        return false;
    };
    command
        .get(sp + 1..sp + 8)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"APPEND "))
}

/// The tag at the start of a command, if it is a valid one.
pub fn tag_of(bytes: &[u8]) -> Option<String> {
    let end = bytes
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .unwrap_or(bytes.len());
    let tag = &bytes[..end];
    (!tag.is_empty() && tag.len() <= 64 && tag.iter().all(|&b| super::command::is_tag_char(b)))
        .then(|| String::from_utf8_lossy(tag).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(limits: Limits, chunks: &[&[u8]]) -> Vec<Frame> {
        let mut f = Framer::new(limits);
        let mut out = Vec::new();
        for c in chunks {
            f.push(c);
            while let Some(fr) = f.next_frame() {
                out.push(fr);
            }
        }
        out
    }

    fn cmd(s: &str) -> Frame {
        Frame::Command(s.as_bytes().to_vec())
    }

    #[test]
    fn commands_literals_and_bounds() {
        let small = Limits {
            max_line: 32,
            max_literal: 10,
            max_literals: 2,
        };
        type Case<'a> = (&'a str, Limits, Vec<&'a [u8]>, Vec<Frame>);
        let cases: Vec<Case> = vec![
            (
                "one line",
                small,
                vec![b"a NOOP\r\n"],
                vec![cmd("a NOOP\r\n")],
            ),
            (
                "split anywhere",
                small,
                vec![b"a NO", b"OP\r", b"\nb NOOP\r\n"],
                vec![cmd("a NOOP\r\n"), cmd("b NOOP\r\n")],
            ),
            (
                "sync literal asks to continue",
                small,
                vec![b"a LOGIN {3}\r\n", b"bob x\r\n"],
                vec![Frame::Continue, cmd("a LOGIN {3}\r\nbob x\r\n")],
            ),
            (
                "LITERAL+ does not",
                small,
                vec![b"a LOGIN {3+}\r\nbob {1+}\r\nx\r\n"],
                vec![cmd("a LOGIN {3+}\r\nbob {1+}\r\nx\r\n")],
            ),
            (
                "a literal holding CRLF and braces",
                small,
                vec![b"a X {5}\r\n{1}\r\n\r\n"],
                vec![Frame::Continue, cmd("a X {5}\r\n{1}\r\n\r\n")],
            ),
            (
                "too big sync literal is refused before it is sent",
                small,
                vec![b"t1 APPEND INBOX {11}\r\n", b"t2 NOOP\r\n"],
                vec![
                    Frame::LiteralTooBig {
                        tag: Some("t1".into()),
                        limit: 10,
                    },
                    cmd("t2 NOOP\r\n"),
                ],
            ),
            (
                "too big non-sync literal is fatal",
                small,
                vec![b"t1 APPEND INBOX {11+}\r\n0123456789a\r\n"],
                vec![Frame::Fatal {
                    tag: Some("t1".into()),
                    reason: "non-synchronizing literal above the size limit",
                }],
            ),
            (
                "too many literals",
                small,
                vec![b"t X {1+}\r\na {1+}\r\nb {1+}\r\nc\r\n"],
                vec![Frame::Fatal {
                    tag: Some("t".into()),
                    reason: "too many literals in one command",
                }],
            ),
            (
                "a too long line is dropped to its end",
                small,
                vec![b"t9 ", &[b'x'; 40], b"\r\nt10 NOOP\r\n"],
                vec![
                    Frame::LineTooLong {
                        tag: Some("t9".into()),
                    },
                    cmd("t10 NOOP\r\n"),
                ],
            ),
            (
                "a too long line without an end yet is dropped as it comes",
                small,
                vec![b"t9 ", &[b'x'; 40], &[b'x'; 40], b"\r\n", b"t10 NOOP\r\n"],
                vec![
                    Frame::LineTooLong {
                        tag: Some("t9".into()),
                    },
                    cmd("t10 NOOP\r\n"),
                ],
            ),
        ];
        for (what, limits, chunks, want) in cases {
            assert_eq!(frames(limits, &chunks), want, "{what}");
        }
    }

    #[test]
    fn append_literals_are_spooled_others_held_and_bounded() {
        let limits = Limits::default();
        let big = SPOOL_MIN as usize + 10;
        let data = vec![b'x'; big];
        let head = format!("a APPEND INBOX (\\Seen) {{{big}}}\r\n");
        let mut f = Framer::new(limits);
        f.push(head.as_bytes());
        assert_eq!(
            f.next_frame(),
            Some(Frame::SpoolStart {
                head: head.clone().into_bytes(),
                size: big as u64,
                sync: true
            })
        );
        assert_eq!(f.next_frame(), None);
        let mut got = Vec::new();
        for chunk in data.chunks(7000) {
            f.push(chunk);
            while let Some(fr) = f.next_frame() {
                match fr {
                    Frame::SpoolData(d) => {
                        assert!(d.len() <= 7000);
                        got.extend(d)
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(got, data);
        f.push(b"\r\nb NOOP\r\n");
        assert_eq!(f.next_frame(), Some(Frame::SpoolEnd(b"\r\n".to_vec())));
        assert_eq!(f.next_frame(), Some(cmd("b NOOP\r\n")));
        // The same size in another command is held, up to INLINE_MAX.
        let mut f = Framer::new(limits);
        f.push(format!("a SEARCH TEXT {{{big}+}}\r\n").as_bytes());
        f.push(&data);
        f.push(b"\r\n");
        assert!(matches!(f.next_frame(), Some(Frame::Command(c)) if c.len() > big));
        let mut f = Framer::new(limits);
        f.push(format!("a SEARCH TEXT {{{}}}\r\n", INLINE_MAX + 1).as_bytes());
        assert_eq!(
            f.next_frame(),
            Some(Frame::LiteralTooBig {
                tag: Some("a".into()),
                limit: INLINE_MAX,
            })
        );
    }

    #[test]
    fn literal_announcements() {
        type Case<'a> = (&'a [u8], Option<(u64, bool)>);
        let cases: &[Case] = &[
            (b"a {5}\r\n", Some((5, true))),
            (b"a {0+}\r\n", Some((0, false))),
            (b"a {5}\n", Some((5, true))),
            (b"a {}\r\n", None),
            (b"a {+}\r\n", None),
            (b"a {5} \r\n", None),
            (b"a {-5}\r\n", None),
            (b"a {99999999999999999999}\r\n", None),
            (b"a 5}\r\n", None),
        ];
        for (line, want) in cases {
            assert_eq!(literal_announced(line), *want, "{line:?}");
        }
    }
}
