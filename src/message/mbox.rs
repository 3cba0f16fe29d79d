//! Reading mbox files: `From ` line framing, the four variants (mboxo,
//! mboxrd, mboxcl, mboxcl2) and their `>From ` quoting, streamed with
//! bounded memory. Nothing here opens a file: the reader is handed a
//! [`Source`] (a `File`, a byte slice in a `Cursor`, or any stream).
//!
//! # The format, as we read it
//!
//! An mbox is messages, each starting with a `From ` line ("From_ line":
//! `From sender Thu Aug 22 12:36:23 2002`) and followed by one blank line
//! that belongs to the file, not to the message (RFC 4155, qmail's mbox(5)).
//! A line starting with `From ` is the start of the next message when
//!
//! - it follows a blank line (or starts the file): jwz's rule, which every
//!   writer of the format honours; or
//! - it carries a date (`... Thu Aug 22 12:36:23 2002`): mutt's rule, for
//!   writers that forget the blank line.
//!
//! and it is at most [`MAX_FROM_LINE`] bytes. A `From ` line inside a body
//! is quoted by the writer; reading undoes it per variant:
//!
//! | variant   | framing              | unquoting on read                   |
//! | --------- | -------------------- | ----------------------------------- |
//! | `mboxo`   | From_ lines          | `>From ` -> `From ` (one level)     |
//! | `mboxrd`  | From_ lines          | `>>*From ` loses one `>` (all levels) |
//! | `mboxcl`  | Content-Length:      | as mboxo                            |
//! | `mboxcl2` | Content-Length:      | none                                |
//!
//! With [`Format`] left to detection (`None`), each message is framed by its
//! `Content-Length:` header when one is there and ends exactly at a message
//! boundary (the end of the file, or a `From ` line, after an optional blank
//! line), and read as mboxcl2; otherwise it is framed by From_ lines and
//! unquoted as mboxrd. A Content-Length that a sender put in (not the mbox
//! writer) matches the stored body only when quoting did not change it, so
//! trusting it when it matches is safe. Between mboxo and mboxrd nothing in
//! the file decides; mboxrd is the default because it differs from mboxo
//! only on lines that were `>From ` before quoting, which mboxo cannot
//! represent anyway. `mboxcl` cannot be told from `mboxcl2` by reading:
//! name it with `--format`.
//!
//! Everything else is byte for byte: 8-bit and NUL bytes, CRLF line ends
//! (a CRLF mbox has `\r\n` blank lines, which are taken as separators too),
//! and a last message without a final line end.
//!
//! # Bounds
//!
//! One read buffer of [`BUFFER`] bytes, and the header section of the
//! current message up to [`MAX_HEADER_SECTION`]; a longer section is passed
//! on as body, unexamined. Bodies are streamed in slices of the buffer, so
//! a 100 MB message costs no more memory than a 1 kB one. Every decision
//! looks at most [`LOOKAHEAD`] bytes past a line start, so a message parses
//! the same way whatever the read sizes were (the converter's idempotency
//! depends on it).

use std::fmt;
use std::io::{self, Read};

pub use super::header::MAX_HEADER_SECTION;

/// A `From ` line longer than this is body text, not a message start.
pub const MAX_FROM_LINE: usize = 4096;
/// The most any framing decision looks ahead of a line start: a blank line,
/// a From_ line and its line end.
pub const LOOKAHEAD: usize = MAX_FROM_LINE + 8;
/// The read buffer. Small enough to stay in a core's cache while it is
/// scanned: reading a cached 1 GB mbox took 0.10 s of system time through
/// 64 KiB reads and 0.50 s through 256 KiB ones (`read(2)` then `memchr`,
/// on the 2-core VM of BENCHMARKS.md).
pub const BUFFER: usize = 64 * 1024;

/// The four mbox variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Mboxo,
    Mboxrd,
    Mboxcl,
    Mboxcl2,
}

impl Format {
    pub const ALL: [Format; 4] = [
        Format::Mboxo,
        Format::Mboxrd,
        Format::Mboxcl,
        Format::Mboxcl2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Mboxo => "mboxo",
            Format::Mboxrd => "mboxrd",
            Format::Mboxcl => "mboxcl",
            Format::Mboxcl2 => "mboxcl2",
        }
    }

    fn unquote(self) -> Unquote {
        match self {
            Format::Mboxo | Format::Mboxcl => Unquote::One,
            Format::Mboxrd => Unquote::Every,
            Format::Mboxcl2 => Unquote::None,
        }
    }

    fn content_length(self) -> bool {
        matches!(self, Format::Mboxcl | Format::Mboxcl2)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown mbox format {s:?} (known: mboxo, mboxrd, mboxcl, mboxcl2)")
            })
    }
}

/// Which `>From ` lines lose a `>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unquote {
    None,
    /// `>From ` only (mboxo, mboxcl).
    One,
    /// `>+From ` (mboxrd).
    Every,
}

/// Where the reader gets its bytes: a stream, plus reads at an offset for
/// checking a `Content-Length:` without moving the stream.
pub trait Source: Read {
    /// Reads at an absolute offset, like pread(2). A source that cannot
    /// (a pipe) returns [`io::ErrorKind::Unsupported`]; Content-Length is then
    /// never trusted past the read buffer.
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl Source for std::fs::File {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match std::os::unix::fs::FileExt::read_at(self, buf, offset) {
            // A pipe (`convert-mbox <(zcat old.mbox.gz)`) reads forward only.
            Err(e) if e.raw_os_error() == Some(libc::ESPIPE) => {
                Err(io::ErrorKind::Unsupported.into())
            }
            other => other,
        }
    }
}

impl<T: AsRef<[u8]>> Source for io::Cursor<T> {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let data = self.get_ref().as_ref();
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        let Some(rest) = data.get(start..) else {
            return Ok(0);
        };
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
}

/// An in-memory mbox that hands out at most `chunk` bytes per forward
/// read: the fuzz target and the tests read one input in several read
/// sizes, since a message must parse the same whatever they are
/// (convert-mbox's idempotency rests on it).
pub struct Chunked<'a> {
    data: &'a [u8],
    pos: usize,
    chunk: usize,
}

impl<'a> Chunked<'a> {
    /// `data`, read at most `chunk` (at least 1) bytes at a time.
    pub fn new(data: &'a [u8], chunk: usize) -> Chunked<'a> {
        Chunked {
            data,
            pos: 0,
            chunk: chunk.max(1),
        }
    }
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.chunk).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Source for Chunked<'_> {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        io::Cursor::new(self.data).read_at(buf, offset)
    }
}

/// A source that can only be read forward (a pipe, standard input).
pub struct Stream<R>(pub R);

impl<R: Read> Read for Stream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> Source for Stream<R> {
    fn read_at(&mut self, _buf: &mut [u8], _offset: u64) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Why a file is not an mbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotMbox {
    /// It starts with a header field: one message, not a file of them.
    SingleMessage {
        field: String,
    },
    Babyl,
    Mmdf,
    Compressed(&'static str),
    Binary,
    /// A `From ` line too long to be one.
    LongFromLine,
    /// The first line, shortened and escaped.
    FirstLine(String),
    /// Resuming at an offset that holds no From_ line.
    NoFromLineAt(u64),
    /// Lines that end in CR alone (classic Mac OS): mail this reader
    /// cannot frame.
    CrLineEnds,
}

impl NotMbox {
    /// Whether the file is mail all the same, only not in a form read here
    /// (a problem to report, where other files in a tree are passed over).
    pub fn is_mail(&self) -> bool {
        matches!(self, NotMbox::CrLineEnds)
    }
}

impl fmt::Display for NotMbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotMbox::SingleMessage { field } => write!(
                f,
                "it starts with a header field ({field}:), not a `From ` line: it looks like one \
                 message (.eml), not an mbox"
            ),
            NotMbox::Babyl => f.write_str("it is a Babyl file (Emacs Rmail), not an mbox"),
            NotMbox::Mmdf => {
                f.write_str("it is an MMDF mailbox (^A^A^A^A separators), not an mbox")
            }
            NotMbox::Compressed(kind) => write!(f, "it is {kind} compressed; decompress it first"),
            NotMbox::Binary => {
                f.write_str("it holds binary data (NUL bytes) before any `From ` line")
            }
            NotMbox::LongFromLine => write!(
                f,
                "its first line starts with `From ` but is longer than {MAX_FROM_LINE} bytes"
            ),
            NotMbox::FirstLine(line) => {
                write!(f, "its first line is not a `From ` line: \"{line}\"")
            }
            NotMbox::NoFromLineAt(offset) => write!(f, "there is no `From ` line at byte {offset}"),
            NotMbox::CrLineEnds => f.write_str(
                "its lines end in CR alone (classic Mac OS); convert them first, e.g. \
                 `tr '\\r' '\\n' < FILE > FILE.mbox`",
            ),
        }
    }
}

/// What can stop the reader.
#[derive(Debug, thiserror::Error)]
pub enum MboxError {
    #[error("not an mbox: {0}")]
    NotMbox(NotMbox),
    #[error("read error near byte {offset}: {source}")]
    Io { offset: u64, source: io::Error },
}

/// A message that is in the file but not as its format says. It is still
/// read (as found), so nothing is lost; the caller decides what to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// `--format mboxcl`/`mboxcl2`, and the message has no usable
    /// `Content-Length:`; it was framed by From_ lines instead.
    NoContentLength,
    /// `Content-Length: N` does not end at a message boundary; the message
    /// was framed by From_ lines instead.
    BadContentLength(u64),
    /// The message does not start with a header field.
    NoHeader,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::NoContentLength => f.write_str("no usable Content-Length: header"),
            Damage::BadContentLength(n) => {
                write!(f, "Content-Length: {n} does not end at a message boundary")
            }
            Damage::NoHeader => f.write_str("it does not start with a header field"),
        }
    }
}

/// How a message's end was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// By the next From_ line, unquoting as this variant does.
    FromLines(Format),
    /// By `Content-Length:`, read as this variant (mboxcl or mboxcl2).
    ContentLength(Format),
}

/// The date of a From_ line, as written (asctime, usually local time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FromDate {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// Seconds east of UTC, when the line names a zone.
    pub zone: Option<i32>,
}

impl FromDate {
    /// Seconds since the epoch, reading the fields as UTC.
    pub fn unix_as_utc(&self) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// Seconds since the epoch when the line named its zone.
    pub fn unix(&self) -> Option<i64> {
        self.zone.map(|z| self.unix_as_utc() - i64::from(z))
    }
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian; Howard
/// Hinnant's algorithm).
fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The sender and date of a From_ line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    pub sender: Vec<u8>,
    pub date: Option<FromDate>,
}

const WEEKDAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Parses a From_ line (with or without its line end). The date is found
/// wherever it starts, so senders with spaces or comments
/// (`From u (comment) Sat Jul 27 03:26:47 1996`) work; forms taken:
/// `Www Mmm dd hh:mm[:ss] [ZONE] yyyy [ZONE]` and
/// `Www, dd Mmm yyyy hh:mm[:ss] [ZONE]`.
pub fn parse_from_line(line: &[u8]) -> Envelope {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line.strip_prefix(b"From ").unwrap_or(line);
    let tokens: Vec<&[u8]> = rest
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|t| !t.is_empty())
        .collect();
    for i in 1..tokens.len() {
        if let Some(date) = parse_date_at(&tokens[i..]) {
            return Envelope {
                sender: tokens[..i].join(&b' '),
                date: Some(date),
            };
        }
    }
    Envelope {
        sender: tokens.first().map(|t| t.to_vec()).unwrap_or_default(),
        date: None,
    }
}

fn parse_date_at(t: &[&[u8]]) -> Option<FromDate> {
    let weekday = |tok: &[u8]| {
        let tok = tok.strip_suffix(b",").unwrap_or(tok);
        WEEKDAYS.iter().any(|w| w.eq_ignore_ascii_case(tok))
    };
    let month = |tok: &[u8]| {
        MONTHS
            .iter()
            .position(|m| m.eq_ignore_ascii_case(tok))
            .map(|i| i as u8 + 1)
    };
    let mut t = t;
    if weekday(t.first()?) {
        t = &t[1..];
    } else if month(t.first()?).is_none() {
        return None;
    }
    // asctime: Mmm dd hh:mm[:ss] [ZONE] yyyy [ZONE]
    if let Some(mon) = month(t.first()?) {
        let day = number(t.get(1)?, 1, 31)?;
        let (hour, minute, second) = clock(t.get(2)?)?;
        let (mut zone, year_at) = match zone_of(t.get(3)?) {
            Some(z) if !is_year(t.get(3)?) => (Some(z), 4),
            _ => (None, 3),
        };
        let year = year(t.get(year_at)?)?;
        if zone.is_none() {
            zone = t.get(year_at + 1).and_then(|z| zone_of(z));
        }
        return valid(FromDate {
            year,
            month: mon,
            day,
            hour,
            minute,
            second,
            zone,
        });
    }
    // RFC 5322 style: dd Mmm yyyy hh:mm[:ss] [ZONE]
    let day = number(t.first()?, 1, 31)?;
    let mon = month(t.get(1)?)?;
    let year = year(t.get(2)?)?;
    let (hour, minute, second) = clock(t.get(3)?)?;
    let zone = t.get(4).and_then(|z| zone_of(z));
    valid(FromDate {
        year,
        month: mon,
        day,
        hour,
        minute,
        second,
        zone,
    })
}

fn valid(d: FromDate) -> Option<FromDate> {
    let days_in_month = match d.month {
        2 if d.year % 4 == 0 && (d.year % 100 != 0 || d.year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    (d.day <= days_in_month).then_some(d)
}

fn number(tok: &[u8], min: u32, max: u32) -> Option<u8> {
    if tok.is_empty() || tok.len() > 2 || !tok.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = tok.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    (min..=max).contains(&n).then_some(n as u8)
}

fn clock(tok: &[u8]) -> Option<(u8, u8, u8)> {
    let mut parts = tok.split(|&b| b == b':');
    let hour = number(parts.next()?, 0, 23)?;
    let minute = number(parts.next()?, 0, 59)?;
    let second = match parts.next() {
        Some(s) => number(s, 0, 60)?,
        None => 0,
    };
    parts.next().is_none().then_some((hour, minute, second))
}

fn is_year(tok: &[u8]) -> bool {
    tok.len() == 4 && tok.iter().all(u8::is_ascii_digit)
}

fn year(tok: &[u8]) -> Option<i32> {
    // The length first: a long run of digits would overflow the fold.
    if !matches!(tok.len(), 2 | 4) || !tok.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = tok.iter().fold(0i32, |n, &d| n * 10 + i32::from(d - b'0'));
    match tok.len() {
        4 if n >= 1900 => Some(n),
        // RFC 5322 4.3: two-digit years.
        2 if n >= 50 => Some(1900 + n),
        2 => Some(2000 + n),
        _ => None,
    }
}

/// A numeric zone (`+0200`) or one of RFC 5322 4.3's names.
fn zone_of(tok: &[u8]) -> Option<i32> {
    if let [sign @ (b'+' | b'-'), digits @ ..] = tok {
        if digits.len() == 4 && digits.iter().all(u8::is_ascii_digit) {
            let n = digits
                .iter()
                .fold(0i32, |n, &d| n * 10 + i32::from(d - b'0'));
            let secs = (n / 100) * 3600 + (n % 100) * 60;
            return Some(if *sign == b'-' { -secs } else { secs });
        }
        return None;
    }
    let hours = match tok.to_ascii_uppercase().as_slice() {
        b"UT" | b"UTC" | b"GMT" | b"Z" => 0,
        b"EST" => -5,
        b"EDT" => -4,
        b"CST" => -6,
        b"CDT" => -5,
        b"MST" => -7,
        b"MDT" => -6,
        b"PST" => -8,
        b"PDT" => -7,
        _ => return None,
    };
    Some(hours * 3600)
}

/// One message's envelope and header section, as [`MboxReader::next_message`]
/// returns it; the body follows through [`MboxReader::read_body`].
#[derive(Debug, Clone)]
pub struct MessageHead {
    /// Byte offset of the From_ line in the file.
    pub offset: u64,
    /// The From_ line, without its line end.
    pub from_line: Vec<u8>,
    pub envelope: Envelope,
    /// The header lines as stored (unquoted), each with its line end.
    pub header: Vec<u8>,
    /// The blank line that ended the header section (`\n` or `\r\n`), or
    /// empty when the message ended first or the section was too long.
    pub blank: &'static [u8],
    /// False when the header section exceeded [`MAX_HEADER_SECTION`]: the
    /// rest of it comes as body, and the header should not be edited.
    pub header_complete: bool,
    pub framing: Framing,
    pub damage: Option<Damage>,
}

impl MessageHead {
    /// The header fields: (name, value with folding and line ends kept).
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        fields(&self.header)
    }
}

/// The fields of a raw header section (LF or CRLF): (name, raw value).
pub fn fields(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    raw_fields(header).filter_map(|raw| {
        let colon = memchr::memchr(b':', raw)?;
        Some((raw[..colon].trim_ascii_end(), &raw[colon + 1..]))
    })
}

/// Whole fields, continuation lines included (RFC 5322 2.2.3).
pub fn raw_fields(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = header;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = 0;
        loop {
            end = match memchr::memchr(b'\n', &rest[end..]) {
                Some(i) => end + i + 1,
                None => rest.len(),
            };
            if end >= rest.len() || !matches!(rest[end], b' ' | b'\t') {
                break;
            }
        }
        let (field, tail) = rest.split_at(end);
        rest = tail;
        Some(field)
    })
}

/// Whether a line is a header field: a name of printable ASCII other than
/// `:` (RFC 5322 2.2), white space allowed before the colon (obs-syntax).
fn is_field_line(line: &[u8]) -> bool {
    let name_end = line
        .iter()
        .position(|&b| !(33..=126).contains(&b) || b == b':')
        .unwrap_or(line.len());
    if name_end == 0 {
        return false;
    }
    line[name_end..]
        .iter()
        .find(|&&b| b != b' ' && b != b'\t')
        .is_some_and(|&b| b == b':')
}

/// What the reader is in the middle of.
#[derive(Debug, Clone, Copy)]
enum State {
    /// At a From_ line (or the end of the file).
    Between,
    Body(Scan),
}

/// How the current stretch of a message is being scanned.
#[derive(Debug, Clone, Copy)]
struct Scan {
    /// At the start of a line (else inside one).
    line_start: bool,
    unquote: Unquote,
    /// From_ framing: a separator line ends the message.
    separators: bool,
    /// Reading the header section: a blank line ends it.
    stop_at_blank: bool,
    /// Content-Length framing: the absolute offset where the body ends.
    limit: Option<u64>,
}

/// One step of a scan.
enum Step {
    /// Content at `buf[a..b]`.
    Data(usize, usize),
    /// A blank line of this length at the scan position (header end).
    Blank(usize),
    /// In a header scan, a blank line of this length followed by a From_
    /// line or the end of the file: the message ends here unless its
    /// Content-Length says the From_ line is body.
    BlankThenSeparator(usize),
    /// The message's content ended.
    End,
}

/// What a line start holds, for From_ framing (see the module docs).
enum LineKind {
    Separator,
    BlankThenSeparator(usize),
    Blank(usize),
    Quoted,
    Plain,
}

/// A streaming mbox reader. See the module documentation.
pub struct MboxReader<S> {
    src: S,
    buf: Box<[u8]>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// File offset of `buf[0]`.
    base: u64,
    eof: bool,
    format: Option<Format>,
    state: State,
    at_file_start: bool,
    /// Finds `From ` in bodies (see [`MboxReader::body_run`]).
    from_finder: memchr::memmem::Finder<'static>,
    /// Look at every line of bodies too, as headers are read: the
    /// reference that tests hold the quick way to.
    line_by_line: bool,
}

impl<S: Source> MboxReader<S> {
    /// Reads a whole file from its start. `format: None` detects per message.
    pub fn new(src: S, format: Option<Format>) -> MboxReader<S> {
        MboxReader::starting_at(src, 0, format)
    }

    /// Reads from a message boundary: `src` must be positioned at `offset`,
    /// where a From_ line starts (a message found by an earlier read).
    pub fn starting_at(src: S, offset: u64, format: Option<Format>) -> MboxReader<S> {
        MboxReader {
            src,
            buf: vec![0; BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            base: offset,
            eof: false,
            format,
            state: State::Between,
            at_file_start: offset == 0,
            from_finder: memchr::memmem::Finder::new(b"From "),
            line_by_line: false,
        }
    }

    /// Reads bodies line by line, as the header section is read, instead of
    /// searching them for `From `: for tests that compare the two.
    #[doc(hidden)]
    pub fn line_by_line(mut self) -> MboxReader<S> {
        self.line_by_line = true;
        self
    }

    /// The file offset the reader has consumed up to.
    pub fn position(&self) -> u64 {
        self.base + self.start as u64
    }

    /// The next message's envelope and header section, or `None` at the end
    /// of the file. The rest of the previous message, if unread, is skipped.
    pub fn next_message(&mut self) -> Result<Option<MessageHead>, MboxError> {
        while let State::Body(_) = self.state {
            self.read_body()?;
        }
        self.fill(LOOKAHEAD)?;
        if self.at_file_start {
            self.at_file_start = false;
            // Blank lines before the first message belong to no message.
            loop {
                let n = blank_len(&self.buf[self.start..self.end]);
                if n == 0 {
                    break;
                }
                self.start += n;
                self.fill(LOOKAHEAD)?;
            }
            if let Some(why) = not_mbox(&self.buf[self.start..self.end]) {
                return Err(MboxError::NotMbox(why));
            }
        }
        if self.start == self.end {
            return Ok(None);
        }
        let offset = self.position();
        let rest = &self.buf[self.start..self.end];
        if !rest.starts_with(b"From ") {
            return Err(MboxError::NotMbox(NotMbox::NoFromLineAt(offset)));
        }
        let window = &rest[..rest.len().min(MAX_FROM_LINE + 1)];
        let line_len = match memchr::memchr(b'\n', window) {
            Some(i) => i + 1,
            None if self.eof && rest.len() <= MAX_FROM_LINE => rest.len(),
            None => return Err(MboxError::NotMbox(NotMbox::LongFromLine)),
        };
        let mut from_line = rest[..line_len].to_vec();
        self.start += line_len;
        trim_line_end(&mut from_line);
        let envelope = parse_from_line(&from_line);

        // The header section, up to its blank line.
        let mut header = Vec::new();
        let mut blank: &'static [u8] = b"";
        let mut ended = false;
        let content_length_framing = self.format.is_none_or(Format::content_length);
        // (Content-Length value, whether it ends at a message boundary)
        let mut length: Option<(u64, bool)> = None;
        let mut scan = Scan {
            line_start: true,
            unquote: self.format.map_or(Unquote::Every, Format::unquote),
            separators: true,
            stop_at_blank: true,
            limit: None,
        };
        while header.len() <= MAX_HEADER_SECTION {
            match self.step(&mut scan)? {
                Step::Data(a, b) => header.extend_from_slice(&self.buf[a..b]),
                Step::Blank(n) => {
                    blank = if n == 2 { b"\r\n" } else { b"\n" };
                    self.start += n;
                    if content_length_framing {
                        length = self.checked_length(&header)?;
                    }
                    break;
                }
                Step::BlankThenSeparator(n) => {
                    // An mboxcl2 body may start with an unquoted From_ line:
                    // the blank line ends the header if Content-Length says so.
                    self.start += n;
                    if content_length_framing {
                        length = self.checked_length(&header)?;
                    }
                    if length.is_some_and(|(_, ok)| ok) {
                        blank = if n == 2 { b"\r\n" } else { b"\n" };
                    } else {
                        length = None;
                        ended = true;
                    }
                    break;
                }
                Step::End => {
                    ended = true;
                    break;
                }
            }
        }
        let header_complete = ended || !blank.is_empty();
        let mut damage = match header.split(|&b| b == b'\n').next() {
            Some(first) if !first.is_empty() && !is_field_line(first) => Some(Damage::NoHeader),
            _ if header.is_empty() && !blank.is_empty() => Some(Damage::NoHeader),
            _ => None,
        };

        // How the body ends.
        let mut framing = Framing::FromLines(self.format.unwrap_or(Format::Mboxrd));
        let mut body_length = 0;
        if !blank.is_empty() && content_length_framing {
            match length {
                Some((n, true)) => {
                    framing = Framing::ContentLength(self.format.unwrap_or(Format::Mboxcl2));
                    body_length = n;
                }
                Some((n, false)) if self.format.is_some() => {
                    damage = Some(Damage::BadContentLength(n));
                }
                None if self.format.is_some() => damage = Some(Damage::NoContentLength),
                _ => {}
            }
        } else if self.format.is_some_and(Format::content_length) && !ended && damage.is_none() {
            damage = Some(Damage::NoContentLength);
        }
        self.state = if ended {
            State::Between
        } else {
            match framing {
                Framing::ContentLength(f) => State::Body(Scan {
                    line_start: true,
                    unquote: f.unquote(),
                    separators: false,
                    stop_at_blank: false,
                    limit: Some(self.position() + body_length),
                }),
                Framing::FromLines(f) => State::Body(Scan {
                    line_start: scan.line_start,
                    unquote: f.unquote(),
                    separators: true,
                    stop_at_blank: false,
                    limit: None,
                }),
            }
        };
        Ok(Some(MessageHead {
            offset,
            from_line,
            envelope,
            header,
            blank,
            header_complete,
            framing,
            damage,
        }))
    }

    /// The next slice of the current message's body, or `None` at its end.
    pub fn read_body(&mut self) -> Result<Option<&[u8]>, MboxError> {
        let State::Body(mut scan) = self.state else {
            return Ok(None);
        };
        let step = self.step(&mut scan)?;
        match step {
            Step::Data(a, b) => {
                self.state = State::Body(scan);
                Ok(Some(&self.buf[a..b]))
            }
            // Only header scans stop at blank lines.
            Step::Blank(_) | Step::BlankThenSeparator(_) | Step::End => {
                self.state = State::Between;
                Ok(None)
            }
        }
    }

    /// The header's Content-Length and whether it ends at a boundary.
    fn checked_length(&mut self, header: &[u8]) -> Result<Option<(u64, bool)>, MboxError> {
        match content_length(header) {
            Some(n) => Ok(Some((n, self.ends_at_boundary(n)?))),
            None => Ok(None),
        }
    }

    /// Whether `Content-Length: n`, counted from the current position (just
    /// after the header's blank line), ends at a message boundary.
    fn ends_at_boundary(&mut self, n: u64) -> Result<bool, MboxError> {
        let body_start = self.position();
        let Some(target) = body_start.checked_add(n) else {
            return Ok(false);
        };
        // The last body byte must exist (for n = 0, the blank line's).
        let mut probe = vec![0u8; LOOKAHEAD + 1];
        let from = target - 1;
        let got = if from + (LOOKAHEAD as u64) < self.base + self.end as u64 {
            let i = (from - self.base) as usize;
            probe.copy_from_slice(&self.buf[i..i + LOOKAHEAD + 1]);
            probe.len()
        } else if self.eof {
            if from >= self.base + self.end as u64 {
                return Ok(false);
            }
            let i = (from - self.base) as usize;
            let avail = self.end.saturating_sub(i);
            probe[..avail].copy_from_slice(&self.buf[i..i + avail]);
            avail
        } else {
            let mut got = 0;
            while got < probe.len() {
                match self.src.read_at(&mut probe[got..], from + got as u64) {
                    Ok(0) => break,
                    Ok(k) => got += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::Unsupported => return Ok(false),
                    Err(source) => {
                        return Err(MboxError::Io {
                            offset: from,
                            source,
                        });
                    }
                }
            }
            got
        };
        if got == 0 {
            return Ok(false);
        }
        let after = &probe[1..got];
        let at_eof = got < probe.len();
        let blank = blank_len(after);
        let next = &after[blank..];
        Ok(if next.is_empty() {
            at_eof
        } else {
            is_separator(next, blank > 0, at_eof)
        })
    }

    /// Makes at least `want` bytes available at `start`, or all that is
    /// left of the file.
    fn fill(&mut self, want: usize) -> Result<(), MboxError> {
        while self.end - self.start < want && !self.eof {
            // We only fill when fewer than `want` bytes are left, so moving
            // them to the front is cheap, and each read then gets the room
            // of the whole buffer.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.base += self.start as u64;
                self.end -= self.start;
                self.start = 0;
            }
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(MboxError::Io {
                        offset: self.base + self.end as u64,
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Bytes available from `p` to the scan's limit, and whether that is
    /// all there is (the end of the file or of the Content-Length body).
    fn window(&self, p: usize, scan: &Scan) -> (usize, bool) {
        match scan.limit {
            Some(limit) => {
                let to_limit = limit.saturating_sub(self.base + p as u64);
                let avail = (self.end - p) as u64;
                if to_limit <= avail {
                    (to_limit as usize, true)
                } else {
                    (self.end - p, self.eof)
                }
            }
            None => (self.end - p, self.eof),
        }
    }

    /// Classifies the line starting at `p`; needs [`LOOKAHEAD`] bytes there
    /// (or the end of the data). Looks at no more than that, so the answer
    /// does not depend on how much happens to be buffered.
    fn classify(&self, p: usize, scan: &Scan) -> LineKind {
        let (avail, all) = self.window(p, scan);
        let seen = avail.min(LOOKAHEAD);
        let rest = &self.buf[p..p + seen];
        let complete = all && avail <= LOOKAHEAD;
        match rest.first() {
            Some(b'F') if scan.separators && is_separator(rest, false, complete) => {
                LineKind::Separator
            }
            Some(b'\n' | b'\r') => match blank_len(rest) {
                0 => LineKind::Plain,
                // A blank line that ends the file is the last separator.
                n if scan.separators
                    && ((complete && rest.len() == n)
                        || is_separator(&rest[n..], true, complete)) =>
                {
                    LineKind::BlankThenSeparator(n)
                }
                n => LineKind::Blank(n),
            },
            Some(b'>') if is_quoted(rest, scan.unquote) => LineKind::Quoted,
            _ => LineKind::Plain,
        }
    }

    /// [`MboxReader::step`] in a body, past the line at `region`: the run
    /// of content lines up to the first line that is not content, found by
    /// searching for `From ` rather than looking at every line (a tenth of
    /// the reader's time on a large mbox). In a body only a line with
    /// `From ` after its `>`s, a blank line before one, or a blank line
    /// that ends the file can be anything but content; [`Self::classify`]
    /// decides, on the same bytes as the line-by-line scan sees: a line
    /// start with less than [`LOOKAHEAD`] after it before the end of what
    /// is read waits for the next read.
    fn body_run(&mut self, region: usize, avail: usize, all: bool, scan: &mut Scan) -> Step {
        let stop = region + avail;
        // Line starts before `safe` have all the lookahead they need.
        let safe = if all { stop } else { stop - LOOKAHEAD };
        let mut from = region;
        let cut = loop {
            let Some(i) = self.from_finder.find(&self.buf[from..stop]) else {
                break None;
            };
            let hit = from + i;
            from = hit + 1;
            let mut s = hit;
            while s > region && self.buf[s - 1] == b'>' {
                s -= 1;
            }
            // `region` itself was classified by the caller.
            if s == region || self.buf[s - 1] != b'\n' {
                continue;
            }
            // A blank line right before it (after `region`) comes first.
            let blank = if s >= region + 2 && self.buf[s - 2] == b'\n' {
                Some(s - 1)
            } else if s >= region + 3 && self.buf[s - 3..s - 1] == *b"\n\r" {
                Some(s - 2)
            } else {
                None
            };
            let q = blank.unwrap_or(s);
            if s >= safe {
                break Some(q);
            }
            if blank.is_some()
                && !matches!(self.classify(q, scan), LineKind::Plain | LineKind::Blank(_))
            {
                break Some(q);
            }
            if !matches!(self.classify(s, scan), LineKind::Plain) {
                break Some(s);
            }
        };
        let cut = cut.or_else(|| {
            if all {
                // A blank line that ends the data may be the last separator.
                let t = if stop >= region + 2 && self.buf[stop - 2..stop] == *b"\n\n" {
                    Some(stop - 1)
                } else if stop >= region + 3 && self.buf[stop - 3..stop] == *b"\n\r\n" {
                    Some(stop - 2)
                } else {
                    None
                };
                t.filter(|&t| {
                    !matches!(self.classify(t, scan), LineKind::Plain | LineKind::Blank(_))
                })
            } else {
                // Up to the last line start the search could judge, or
                // into a line longer than that.
                Some(
                    memchr::memrchr(b'\n', &self.buf[region..safe])
                        .map_or(safe, |i| region + i + 1),
                )
            }
        });
        let end = cut.unwrap_or(stop);
        self.start = end;
        scan.line_start = match cut {
            Some(c) => self.buf[c - 1] == b'\n',
            None => self.buf[stop - 1] == b'\n',
        };
        Step::Data(region, end)
    }

    /// Advances the scan: the next run of content, a header-ending blank
    /// line, or the end of the message.
    fn step(&mut self, scan: &mut Scan) -> Result<Step, MboxError> {
        loop {
            let (avail, all) = self.window(self.start, scan);
            if avail == 0 && all {
                // The end of the file or of the Content-Length body: drop
                // the separating blank line, if any, before the next From_.
                if scan.limit.is_some() {
                    self.fill(LOOKAHEAD)?;
                    let n = blank_len(&self.buf[self.start..self.end]);
                    let next = &self.buf[self.start + n..self.end];
                    if n > 0 && (next.starts_with(b"From ") || (next.is_empty() && self.eof)) {
                        self.start += n;
                    }
                }
                return Ok(Step::End);
            }
            if avail < LOOKAHEAD && !all {
                let before = self.end - self.start;
                self.fill(LOOKAHEAD)?;
                if self.end - self.start > before || self.eof {
                    continue;
                }
            }
            // Fast path: no quoting and no framing by lines (mboxcl2 bodies).
            if !scan.separators && !scan.stop_at_blank && scan.unquote == Unquote::None {
                let (avail, _) = self.window(self.start, scan);
                let a = self.start;
                self.start += avail;
                return Ok(Step::Data(a, a + avail));
            }
            let region = self.start;
            if scan.line_start {
                match self.classify(region, scan) {
                    LineKind::Separator => return Ok(Step::End),
                    LineKind::BlankThenSeparator(n) if scan.stop_at_blank => {
                        return Ok(Step::BlankThenSeparator(n));
                    }
                    LineKind::BlankThenSeparator(n) => {
                        self.start += n;
                        return Ok(Step::End);
                    }
                    LineKind::Blank(n) if scan.stop_at_blank => return Ok(Step::Blank(n)),
                    LineKind::Quoted => {
                        // Drop the quoting '>' and go on with the line.
                        self.start += 1;
                        scan.line_start = false;
                        continue;
                    }
                    LineKind::Blank(_) | LineKind::Plain => {}
                }
            }
            // The line at `region` is content (classified above, or we are
            // inside it): take it and every following content line.
            let (avail, all) = self.window(region, scan);
            if !scan.stop_at_blank && !self.line_by_line && (all || avail >= 2 * LOOKAHEAD) {
                return Ok(self.body_run(region, avail, all, scan));
            }
            let stop = region + avail;
            let mut q = region;
            loop {
                match memchr::memchr(b'\n', &self.buf[q..stop]) {
                    Some(i) => q += i + 1,
                    None => {
                        // The line goes on past what we have.
                        self.start = stop;
                        scan.line_start = false;
                        return Ok(Step::Data(region, stop));
                    }
                }
                if q == stop {
                    break;
                }
                // Only these can start a line that is not plain content.
                if !matches!(self.buf[q], b'F' | b'\n' | b'\r' | b'>') {
                    continue;
                }
                let (left, _) = self.window(q, scan);
                if left < LOOKAHEAD && !all {
                    break;
                }
                match self.classify(q, scan) {
                    LineKind::Plain => {}
                    LineKind::Blank(_) if !scan.stop_at_blank => {}
                    _ => break,
                }
            }
            self.start = q;
            scan.line_start = true;
            return Ok(Step::Data(region, q));
        }
    }
}

/// The length of a blank line at the start of `rest` (`\n` or `\r\n`), or 0.
fn blank_len(rest: &[u8]) -> usize {
    match rest {
        [b'\n', ..] => 1,
        [b'\r', b'\n', ..] => 2,
        _ => 0,
    }
}

/// Whether `rest` starts with a From_ line that starts a message: after a
/// blank line any `From ` line does, otherwise only one with a date.
/// `complete` says `rest` is all the data there is.
fn is_separator(rest: &[u8], after_blank: bool, complete: bool) -> bool {
    if !rest.starts_with(b"From ") {
        return false;
    }
    let window = &rest[..rest.len().min(MAX_FROM_LINE + 1)];
    let line = match memchr::memchr(b'\n', window) {
        Some(i) => &window[..i],
        None if complete && rest.len() <= MAX_FROM_LINE => rest,
        None => return false,
    };
    after_blank || parse_from_line(line).date.is_some()
}

fn is_quoted(rest: &[u8], unquote: Unquote) -> bool {
    match unquote {
        Unquote::None => false,
        Unquote::One => rest.starts_with(b">From "),
        Unquote::Every => {
            let gts = rest.iter().take_while(|&&b| b == b'>').count();
            gts >= 1 && rest[gts..].starts_with(b"From ")
        }
    }
}

fn trim_line_end(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
}

/// The value of the header's `Content-Length:`, when there is exactly one
/// usable value (several that disagree count as none).
fn content_length(header: &[u8]) -> Option<u64> {
    let mut found = None;
    for (name, value) in fields(header) {
        if !name.eq_ignore_ascii_case(b"Content-Length") {
            continue;
        }
        let value = value.trim_ascii();
        if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = value
            .iter()
            .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        if found.is_some_and(|f| f != n) {
            return None;
        }
        found = Some(n);
    }
    found
}

/// Whether the start of a file (its first few kilobytes) can be an mbox:
/// empty, or blank lines then a `From ` line. For choosing files in a tree
/// without reading them through.
pub fn sniff(start: &[u8]) -> Result<(), NotMbox> {
    let mut rest = start;
    loop {
        match blank_len(rest) {
            0 => break,
            n => rest = &rest[n..],
        }
    }
    match not_mbox(rest) {
        Some(why) => Err(why),
        None => Ok(()),
    }
}

/// Why the start of a file is not an mbox, if it is not.
fn not_mbox(start: &[u8]) -> Option<NotMbox> {
    // A CR inside the first line: it would be read as one line, the whole
    // file its From_ line.
    let first = &start[..memchr::memchr(b'\n', start).unwrap_or(start.len())];
    if memchr::memchr(b'\r', first).is_some_and(|i| i + 1 < first.len()) {
        return Some(NotMbox::CrLineEnds);
    }
    if start.is_empty() || start.starts_with(b"From ") {
        return None;
    }
    let magic: [(&[u8], &str); 6] = [
        (b"\x1f\x8b", "gzip"),
        (b"BZh", "bzip2"),
        (b"\xfd7zXZ\0", "xz"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
        (b"PK\x03\x04", "zip"),
        (b"\x1f\x9d", "compress (.Z)"),
    ];
    if let Some((_, kind)) = magic.iter().find(|(m, _)| start.starts_with(m)) {
        return Some(NotMbox::Compressed(kind));
    }
    if start.starts_with(b"BABYL OPTIONS:") {
        return Some(NotMbox::Babyl);
    }
    if start.starts_with(b"\x01\x01\x01\x01") {
        return Some(NotMbox::Mmdf);
    }
    let head = &start[..start.len().min(1024)];
    if memchr::memchr(0, head).is_some() {
        return Some(NotMbox::Binary);
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if is_field_line(line) {
        let colon = memchr::memchr(b':', line).unwrap_or(line.len());
        let field = String::from_utf8_lossy(line[..colon].trim_ascii_end()).into_owned();
        return Some(NotMbox::SingleMessage { field });
    }
    let shown: String = line
        .iter()
        .take(60)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    Some(NotMbox::FirstLine(shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message as read: envelope sender, header, blank, body, framing, damage.
    #[derive(Debug, PartialEq, Eq)]
    struct Read_ {
        offset: u64,
        sender: String,
        content: Vec<u8>,
        framing: Framing,
        damage: Option<Damage>,
    }

    fn read_all_with(
        input: &[u8],
        format: Option<Format>,
        chunk: usize,
    ) -> Result<Vec<Read_>, MboxError> {
        let src = Chunked::new(input, chunk);
        let mut r = MboxReader::new(src, format);
        let mut out = Vec::new();
        while let Some(head) = r.next_message()? {
            let mut content = head.header.clone();
            content.extend_from_slice(head.blank);
            while let Some(b) = r.read_body()? {
                assert!(!b.is_empty(), "empty body chunks are never returned");
                content.extend_from_slice(b);
            }
            out.push(Read_ {
                offset: head.offset,
                sender: String::from_utf8_lossy(&head.envelope.sender).into_owned(),
                content,
                framing: head.framing,
                damage: head.damage,
            });
        }
        Ok(out)
    }

    /// Reads with several read sizes and checks they all agree.
    fn read_all(input: &[u8], format: Option<Format>) -> Result<Vec<Read_>, MboxError> {
        let reference = read_all_with(input, format, usize::MAX);
        for chunk in [1, 2, 3, 7, 64, 4099, 70_000] {
            let other = read_all_with(input, format, chunk);
            match (&reference, &other) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "read size {chunk} disagrees"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                _ => panic!("read size {chunk}: {other:?} vs {reference:?}"),
            }
        }
        reference
    }

    fn contents(input: &[u8], format: Option<Format>) -> Vec<Vec<u8>> {
        read_all(input, format)
            .unwrap()
            .into_iter()
            .map(|m| m.content)
            .collect()
    }

    const F1: &str = "From a@example.org Thu Aug 22 12:36:23 2002\n";
    const F2: &str = "From b@example.org Fri Aug 23 01:02:03 2002\n";

    #[test]
    fn framing_and_separators() {
        let s = |parts: &[&str]| parts.concat().into_bytes();
        let cases: Vec<(Vec<u8>, Vec<&str>)> = vec![
            (
                s(&[F1, "A: 1\n\nbody\n\n", F2, "B: 2\n\nz\n"]),
                vec!["A: 1\n\nbody\n", "B: 2\n\nz\n"],
            ),
            // A message that itself ends with a blank line keeps it.
            (
                s(&[F1, "A: 1\n\nbody\n\n\n", F2, "B: 2\n\nz\n\n"]),
                vec!["A: 1\n\nbody\n\n", "B: 2\n\nz\n"],
            ),
            // The last message without a final newline.
            (s(&[F1, "A: 1\n\nno newline"]), vec!["A: 1\n\nno newline"]),
            // No blank line before the next From_ line, but it has a date (mutt's rule).
            (
                s(&[F1, "A: 1\n\nx\n", F2, "B: 2\n\ny\n"]),
                vec!["A: 1\n\nx\n", "B: 2\n\ny\n"],
            ),
            // An unquoted From line without a date and without a blank line is body.
            (
                s(&[F1, "A: 1\n\nx\nFrom here on\ny\n"]),
                vec!["A: 1\n\nx\nFrom here on\ny\n"],
            ),
            // After a blank line any From line separates (jwz's rule).
            (
                s(&[F1, "A: 1\n\nx\n\nFrom nobody\nB: 2\n\ny\n"]),
                vec!["A: 1\n\nx\n", "B: 2\n\ny\n"],
            ),
            // Empty messages, with and without the blank line.
            (s(&[F1, "\n", F2, F1, "A: 1\n"]), vec!["", "", "A: 1\n"]),
            // A header-only message followed by a separator.
            (s(&[F1, "A: 1\n\n", F2, "B: 2\n"]), vec!["A: 1\n", "B: 2\n"]),
            // Leading blank lines before the first message.
            (s(&["\n\r\n", F1, "A: 1\n\nb\n"]), vec!["A: 1\n\nb\n"]),
            // Empty file.
            (vec![], vec![]),
            // A From_ line alone at the end of the file.
            (s(&[F1, "A: 1\n\n", F2.trim_end()]), vec!["A: 1\n", ""]),
        ];
        for (input, expected) in cases {
            let got = contents(&input, None);
            let expected: Vec<Vec<u8>> = expected.iter().map(|e| e.as_bytes().to_vec()).collect();
            assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(&input));
        }
    }

    #[test]
    fn crlf_mboxes_keep_crlf_and_lose_their_separator_lines() {
        let input = b"From a Thu Aug 22 12:36:23 2002\r\nA: 1\r\n\r\nbody\r\n\r\nFrom b Thu Aug 22 12:36:23 2002\r\nB: 2\r\n\r\nz\r\n";
        assert_eq!(
            contents(input, None),
            vec![
                b"A: 1\r\n\r\nbody\r\n".to_vec(),
                b"B: 2\r\n\r\nz\r\n".to_vec()
            ]
        );
        let got = read_all(input, None).unwrap();
        assert_eq!(got[0].sender, "a");
    }

    #[test]
    fn unquoting_per_variant_at_every_depth() {
        let body = ">From a\n>>From b\n>>>From c\nFrom: not quoted\n> From d\n>Fromage\n";
        let input = format!("{F1}A: 1\n\n{body}");
        let cases = [
            (
                Some(Format::Mboxrd),
                "From a\n>From b\n>>From c\nFrom: not quoted\n> From d\n>Fromage\n",
            ),
            (
                None,
                "From a\n>From b\n>>From c\nFrom: not quoted\n> From d\n>Fromage\n",
            ),
            (
                Some(Format::Mboxo),
                "From a\n>>From b\n>>>From c\nFrom: not quoted\n> From d\n>Fromage\n",
            ),
            (Some(Format::Mboxcl2), body),
        ];
        for (format, expected) in cases {
            let got = read_all(input.as_bytes(), format).unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(
                String::from_utf8_lossy(&got[0].content),
                format!("A: 1\n\n{expected}"),
                "{format:?}"
            );
        }
        // Quoting right after the From_ line and at the end of the file.
        let input = format!("{F1}>From x\n\n{F2}>>From y");
        assert_eq!(
            contents(input.as_bytes(), None),
            vec![b"From x\n".to_vec(), b">From y".to_vec()]
        );
    }

    #[test]
    fn content_length_frames_mboxcl2_bodies_with_from_lines_inside() {
        let body = "From inside Thu Aug 22 12:36:23 2002\n\nFrom again\n>From kept\n";
        let input = format!(
            "{F1}Content-Length: {}\n\n{body}\n{F2}B: 2\n\nz\n",
            body.len()
        );
        for format in [None, Some(Format::Mboxcl2)] {
            let got = read_all(input.as_bytes(), format).unwrap();
            assert_eq!(got.len(), 2, "{format:?}");
            assert_eq!(
                got[0].content,
                format!("Content-Length: {}\n\n{body}", body.len()).into_bytes()
            );
            assert_eq!(got[0].framing, Framing::ContentLength(Format::Mboxcl2));
            assert_eq!(got[1].content, b"B: 2\n\nz\n");
            assert_eq!(
                got[1].framing,
                Framing::FromLines(format.unwrap_or(Format::Mboxrd))
            );
            assert_eq!(got[1].damage, format.map(|_| Damage::NoContentLength));
        }
        // mboxcl: the length counts the stored (quoted) body, and >From is unquoted.
        let body = ">From quoted\nline\n";
        let input = format!(
            "{F1}Content-Length: {}\n\n{body}\n{F2}Content-Length: 0\n\n",
            body.len()
        );
        let got = read_all(input.as_bytes(), Some(Format::Mboxcl)).unwrap();
        assert_eq!(
            got[0].content,
            format!("Content-Length: {}\n\nFrom quoted\nline\n", body.len()).into_bytes()
        );
        assert_eq!(got[1].content, b"Content-Length: 0\n\n");
        assert!(
            got.iter()
                .all(|m| m.framing == Framing::ContentLength(Format::Mboxcl))
        );
    }

    #[test]
    fn a_content_length_that_lies_is_not_trusted() {
        for (length, why) in [
            (3, "too short"),
            (500, "past the end"),
            (9, "inside a line"),
        ] {
            let input =
                format!("{F1}Content-Length: {length}\n\nbody text\nmore\n\n{F2}B: 2\n\nz\n");
            let auto = read_all(input.as_bytes(), None).unwrap();
            assert_eq!(auto.len(), 2, "{why}");
            assert_eq!(auto[0].framing, Framing::FromLines(Format::Mboxrd), "{why}");
            assert_eq!(
                auto[0].damage, None,
                "detection does not call it damage: {why}"
            );
            assert_eq!(
                auto[0].content,
                format!("Content-Length: {length}\n\nbody text\nmore\n").into_bytes()
            );
            let strict = read_all(input.as_bytes(), Some(Format::Mboxcl2)).unwrap();
            assert_eq!(
                strict[0].damage,
                Some(Damage::BadContentLength(length)),
                "{why}"
            );
            assert_eq!(strict[0].content, auto[0].content, "{why}");
        }
        // Two lengths that disagree count as none.
        let input = format!("{F1}Content-Length: 2\nContent-Length: 3\n\nab\n{F2}");
        assert_eq!(
            read_all(input.as_bytes(), None).unwrap()[0].framing,
            Framing::FromLines(Format::Mboxrd)
        );
    }

    #[test]
    fn a_content_length_is_checked_past_the_buffer() {
        // The body is longer than the read buffer, so the check reads ahead
        // with read_at; a stream that cannot falls back to From_ lines.
        let body = "x".repeat(BUFFER * 2) + "\n";
        let input = format!(
            "{F1}Content-Length: {}\n\n{body}\n{F2}B: 2\n\nz\n",
            body.len()
        );
        let got = read_all_with(input.as_bytes(), None, usize::MAX).unwrap();
        assert_eq!(got[0].framing, Framing::ContentLength(Format::Mboxcl2));
        let mut r = MboxReader::new(Stream(input.as_bytes()), None);
        assert_eq!(
            r.next_message().unwrap().unwrap().framing,
            Framing::FromLines(Format::Mboxrd)
        );
        let mut n = 0;
        while let Some(b) = r.read_body().unwrap() {
            n += b.len();
        }
        assert_eq!(n, body.len());
        assert_eq!(r.next_message().unwrap().unwrap().header, b"B: 2\n");
    }

    #[test]
    fn binary_bytes_and_nul_are_kept() {
        let mut input = F1.as_bytes().to_vec();
        input.extend_from_slice(b"A: \xff\xfe\n\n\0\0\x01\xff\r\r\n\x80From \n");
        let expected = b"A: \xff\xfe\n\n\0\0\x01\xff\r\r\n\x80From \n".to_vec();
        assert_eq!(contents(&input, None), vec![expected]);
    }

    #[test]
    fn damage_is_reported_and_the_message_kept() {
        let input = format!("{F1}not a header line\nA: 1\n\nx\n\n{F2}\nbody without header\n");
        let got = read_all(input.as_bytes(), None).unwrap();
        assert_eq!(got[0].damage, Some(Damage::NoHeader));
        assert_eq!(got[0].content, b"not a header line\nA: 1\n\nx\n");
        assert_eq!(got[1].damage, Some(Damage::NoHeader));
        assert_eq!(
            got[1].offset,
            (F1.len() + "not a header line\nA: 1\n\nx\n\n".len()) as u64
        );
    }

    #[test]
    fn files_that_are_not_mboxes_say_why() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"Return-Path: <a@b>\nSubject: x\n\nhi\n",
                "header field (Return-Path:)",
            ),
            (b"\x1f\x8b\x08\x00", "gzip compressed"),
            (b"BABYL OPTIONS: -*- rmail -*-\n", "Babyl"),
            (b"\x01\x01\x01\x01\nA: 1\n", "MMDF"),
            (b"%PDF-1.4\n\0\0", "binary data"),
            (
                b"hello world\n",
                "first line is not a `From ` line: \"hello world\"",
            ),
            (b"\n\nFrom:x\n", "header field (From:)"),
            // Classic Mac OS line ends: read as one line, the whole file
            // would be a From_ line and the mail in it lost.
            (
                b"From a@x Thu Aug 22 12:36:23 2002\rSubject: a\r\rbody\r",
                "end in CR alone",
            ),
        ];
        for (input, reason) in cases {
            let err = read_all(input, None).unwrap_err();
            assert!(matches!(err, MboxError::NotMbox(_)));
            assert!(err.to_string().contains(reason), "{err} lacks {reason}");
        }
        assert!(NotMbox::CrLineEnds.is_mail() && !NotMbox::Binary.is_mail());
        // CR LF, and a CR only at the end of the sniffed start, are fine.
        assert_eq!(
            sniff(b"From a@x Thu Aug 22 12:36:23 2002\r\nA: 1\r\n"),
            Ok(())
        );
        assert_eq!(sniff(b"From a@x Thu Aug 22 12:36:23 2002\r"), Ok(()));
        let long = format!("From {}\n", "x".repeat(MAX_FROM_LINE + 10));
        assert!(matches!(
            read_all(long.as_bytes(), None),
            Err(MboxError::NotMbox(NotMbox::LongFromLine))
        ));
    }

    #[test]
    fn a_long_header_section_is_passed_on_as_body() {
        let mut input = F1.as_bytes().to_vec();
        for i in 0..(MAX_HEADER_SECTION / 20 + 10) {
            input.extend_from_slice(format!("X-Filler: {i:09}\n").as_bytes());
        }
        input.extend_from_slice(b"\nbody\n");
        let mut r = MboxReader::new(io::Cursor::new(&input), None);
        let head = r.next_message().unwrap().unwrap();
        assert!(!head.header_complete);
        assert!(head.header.len() <= MAX_HEADER_SECTION + BUFFER);
        let mut all = head.header.clone();
        while let Some(b) = r.read_body().unwrap() {
            all.extend_from_slice(b);
        }
        assert_eq!(all, &input[F1.len()..]);
    }

    #[test]
    fn a_huge_message_streams_in_bounded_slices() {
        let line = "y".repeat(1000) + "\n";
        let mut input = format!("{F1}A: 1\n\n").into_bytes();
        for _ in 0..5000 {
            input.extend_from_slice(line.as_bytes());
        }
        input.extend_from_slice(format!("\n{F2}B: 2\n").as_bytes());
        let mut r = MboxReader::new(io::Cursor::new(&input), None);
        r.next_message().unwrap().unwrap();
        let (mut total, mut biggest) = (0, 0);
        while let Some(b) = r.read_body().unwrap() {
            total += b.len();
            biggest = biggest.max(b.len());
        }
        assert_eq!(total, 5000 * line.len());
        assert!(biggest <= BUFFER);
        assert_eq!(r.next_message().unwrap().unwrap().header, b"B: 2\n");
        assert!(r.next_message().unwrap().is_none());
    }

    #[test]
    fn resuming_at_a_message_reads_it_as_a_full_read_does() {
        let input = format!("{F1}A: 1\n\n>From x\n\n{F2}B: 2\n\ny\n");
        let all = read_all(input.as_bytes(), None).unwrap();
        let offset = all[1].offset;
        let mut cur = io::Cursor::new(input.as_bytes());
        cur.set_position(offset);
        let mut r = MboxReader::starting_at(cur, offset, None);
        let head = r.next_message().unwrap().unwrap();
        assert_eq!(head.offset, offset);
        assert_eq!(head.header, b"B: 2\n");
        let mut cur = io::Cursor::new(input.as_bytes());
        cur.set_position(3);
        let mut r = MboxReader::starting_at(cur, 3, None);
        assert!(matches!(
            r.next_message(),
            Err(MboxError::NotMbox(NotMbox::NoFromLineAt(3)))
        ));
    }

    #[test]
    fn from_lines_parse() {
        let d = |y, mo, da, h, mi, s, z| {
            Some(FromDate {
                year: y,
                month: mo,
                day: da,
                hour: h,
                minute: mi,
                second: s,
                zone: z,
            })
        };
        let cases: &[(&str, &str, Option<FromDate>)] = &[
            (
                "From a@b Thu Aug 22 12:36:23 2002",
                "a@b",
                d(2002, 8, 22, 12, 36, 23, None),
            ),
            (
                "From a@b  Mon Jan  1 00:00:00 2024\r\n",
                "a@b",
                d(2024, 1, 1, 0, 0, 0, None),
            ),
            (
                "From MAILER-DAEMON Fri Jun 14 01:53:13 EDT 1996",
                "MAILER-DAEMON",
                d(1996, 6, 14, 1, 53, 13, Some(-4 * 3600)),
            ),
            (
                "From x Sat Jan 3 01:05:34 1996 -0800",
                "x",
                d(1996, 1, 3, 1, 5, 34, Some(-8 * 3600)),
            ),
            (
                "From u2@a.invalid (comment) Sat Jul 27 03:26:47 1996",
                "u2@a.invalid (comment)",
                d(1996, 7, 27, 3, 26, 47, None),
            ),
            (
                "From u3 <u3@a.invalid> Mon Aug 12 14:43:33 1996",
                "u3 <u3@a.invalid>",
                d(1996, 8, 12, 14, 43, 33, None),
            ),
            (
                "From x Thu, 22 Aug 2002 12:36:23 +0100",
                "x",
                d(2002, 8, 22, 12, 36, 23, Some(3600)),
            ),
            (
                "From x Aug 22 12:36 2002",
                "x",
                d(2002, 8, 22, 12, 36, 0, None),
            ),
            (
                "From x Thu Aug 22 12:36:23 02 remote from y",
                "x",
                d(2002, 8, 22, 12, 36, 23, None),
            ),
            ("From x Thu Feb 30 12:36:23 2002", "x", None),
            ("From x Thu Aug 22 25:36:23 2002", "x", None),
            ("From nobody", "nobody", None),
            ("From here on we go", "here", None),
            ("From ", "", None),
            // Found by fuzzing: a year of many digits overflowed (a panic).
            (
                "From x Thu Aug 22 12:36:23 206666666666666666666666",
                "x",
                None,
            ),
        ];
        for (line, sender, date) in cases {
            let env = parse_from_line(line.as_bytes());
            assert_eq!(
                (String::from_utf8_lossy(&env.sender).as_ref(), env.date),
                (*sender, *date),
                "{line}"
            );
        }
        let t = parse_from_line(b"From a Thu Jan  1 00:00:10 1970 +0000")
            .date
            .unwrap();
        assert_eq!((t.unix_as_utc(), t.unix()), (10, Some(10)));
        let t = parse_from_line(b"From a Thu Aug 22 12:36:23 2002")
            .date
            .unwrap();
        assert_eq!(t.unix_as_utc(), 1_030_019_783);
        assert_eq!(t.unix(), None);
        let t = parse_from_line(b"From a Tue Feb 29 23:59:59 2000 -0100")
            .date
            .unwrap();
        assert_eq!(t.unix(), Some(951_868_799 + 3600));
    }

    #[test]
    fn formats_parse_by_name() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
        }
        assert_eq!("MBOXRD".parse::<Format>(), Ok(Format::Mboxrd));
        assert!(
            "mmdf"
                .parse::<Format>()
                .unwrap_err()
                .contains("known: mboxo")
        );
    }

    #[test]
    fn header_fields_with_folding_and_crlf() {
        let h = b"Status: RO\r\nX-Keywords: a\r\n b\r\nbroken line\r\nX-UID: 7\r\n";
        let got: Vec<(&[u8], &[u8])> = fields(h).collect();
        let expected: Vec<(&[u8], &[u8])> = vec![
            (b"Status", b" RO\r\n"),
            (b"X-Keywords", b" a\r\n b\r\n"),
            (b"X-UID", b" 7\r\n"),
        ];
        assert_eq!(got, expected);
        assert_eq!(content_length(b"Content-Length:  12 \r\n"), Some(12));
        assert_eq!(content_length(b"content-length: 1x\n"), None);
        assert_eq!(content_length(b"A: b\n"), None);
    }
}
