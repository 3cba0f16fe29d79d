//! The client's commands (RFC 3501 6, 9 and the extensions we offer) and
//! their parser. Input is one whole command as the [`super::framer`] cut
//! it: literals inline, as sent. The parser never allocates more than the
//! input's size, and nesting (search keys in parentheses, NOT, OR) is
//! bounded by [`MAX_DEPTH`].

use std::fmt;

/// The deepest nesting of search keys.
pub const MAX_DEPTH: usize = 32;
/// `*` in a sequence set.
pub const STAR: u32 = u32::MAX;

/// A parsed command with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub tag: String,
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capability,
    Noop,
    Logout,
    StartTls,
    Login {
        user: Vec<u8>,
        password: Vec<u8>,
    },
    Authenticate {
        mechanism: String,
        /// SASL-IR (RFC 4959): the initial response, still base64; `=` is empty.
        initial: Option<Vec<u8>>,
    },
    Select {
        mailbox: Vec<u8>,
        condstore: bool,
    },
    Examine {
        mailbox: Vec<u8>,
        condstore: bool,
    },
    Create(Vec<u8>),
    Delete(Vec<u8>),
    Rename(Vec<u8>, Vec<u8>),
    Subscribe(Vec<u8>),
    Unsubscribe(Vec<u8>),
    List {
        reference: Vec<u8>,
        patterns: Vec<Vec<u8>>,
        /// LIST-EXTENDED selection options (RFC 5258 3.1).
        select: Vec<String>,
        /// LIST-EXTENDED return options: `SPECIAL-USE`, `CHILDREN`, `SUBSCRIBED`, `STATUS`.
        returns: Vec<String>,
        /// LIST-STATUS (RFC 5819) items.
        status: Vec<StatusItem>,
    },
    Lsub {
        reference: Vec<u8>,
        pattern: Vec<u8>,
    },
    Status {
        mailbox: Vec<u8>,
        items: Vec<StatusItem>,
    },
    Append {
        mailbox: Vec<u8>,
        flags: Vec<String>,
        date: Option<DateTime>,
        message: Vec<u8>,
    },
    Check,
    Close,
    Unselect,
    Expunge,
    UidExpunge(SeqSet),
    Search {
        uid: bool,
        /// ESEARCH return options (RFC 4731); `None`: a plain SEARCH.
        ret: Option<Vec<String>>,
        charset: Option<String>,
        key: SearchKey,
    },
    Fetch {
        uid: bool,
        set: SeqSet,
        items: Vec<FetchItem>,
        changed_since: Option<u64>,
    },
    Store {
        uid: bool,
        set: SeqSet,
        mode: StoreMode,
        silent: bool,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    },
    Copy {
        uid: bool,
        set: SeqSet,
        mailbox: Vec<u8>,
    },
    Move {
        uid: bool,
        set: SeqSet,
        mailbox: Vec<u8>,
    },
    Idle,
    Namespace,
    Id(Vec<(String, Option<String>)>),
    Enable(Vec<String>),
}

impl Command {
    /// The command's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Capability => "CAPABILITY",
            Command::Noop => "NOOP",
            Command::Logout => "LOGOUT",
            Command::StartTls => "STARTTLS",
            Command::Login { .. } => "LOGIN",
            Command::Authenticate { .. } => "AUTHENTICATE",
            Command::Select { .. } => "SELECT",
            Command::Examine { .. } => "EXAMINE",
            Command::Create(_) => "CREATE",
            Command::Delete(_) => "DELETE",
            Command::Rename(..) => "RENAME",
            Command::Subscribe(_) => "SUBSCRIBE",
            Command::Unsubscribe(_) => "UNSUBSCRIBE",
            Command::List { .. } => "LIST",
            Command::Lsub { .. } => "LSUB",
            Command::Status { .. } => "STATUS",
            Command::Append { .. } => "APPEND",
            Command::Check => "CHECK",
            Command::Close => "CLOSE",
            Command::Unselect => "UNSELECT",
            Command::Expunge => "EXPUNGE",
            Command::UidExpunge(_) => "UID EXPUNGE",
            Command::Search { .. } => "SEARCH",
            Command::Fetch { .. } => "FETCH",
            Command::Store { .. } => "STORE",
            Command::Copy { .. } => "COPY",
            Command::Move { .. } => "MOVE",
            Command::Idle => "IDLE",
            Command::Namespace => "NAMESPACE",
            Command::Id(_) => "ID",
            Command::Enable(_) => "ENABLE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    HighestModSeq,
    /// RFC 8438 STATUS=SIZE.
    Size,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Replace,
    Add,
    Remove,
}

/// A date-time as APPEND gives it: the instant, and the zone as minutes east.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// Seconds since 1970, UTC.
    pub unix: i64,
    pub zone_minutes: i32,
}

/// A date (SEARCH BEFORE/ON/SINCE): days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub i64);

/// A sequence set: ranges with [`STAR`] for `*`, as the client wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqSet(pub Vec<(u32, u32)>);

impl SeqSet {
    /// Whether `n` is in the set, `*` standing for `largest`.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        self.0.iter().any(|&(a, b)| {
            let a = if a == STAR { largest } else { a };
            let b = if b == STAR { largest } else { b };
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            (lo..=hi).contains(&n)
        })
    }
}

impl fmt::Display for SeqSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(a, b)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let show = |n: u32| {
                if n == STAR {
                    "*".to_owned()
                } else {
                    n.to_string()
                }
            };
            if a == b {
                f.write_str(&show(a))?;
            } else {
                write!(f, "{}:{}", show(a), show(b))?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    And(Vec<SearchKey>),
    Not(Box<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    SeqSet(SeqSet),
    Uid(SeqSet),
    /// A system flag letter (`S`, `R`, `F`, `T`, `D`) set or not.
    Flag(u8, bool),
    Keyword(String, bool),
    New,
    Old,
    Recent,
    Header(String, Vec<u8>),
    Body(Vec<u8>),
    Text(Vec<u8>),
    Before(Date),
    On(Date),
    Since(Date),
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Larger(u64),
    Smaller(u64),
    ModSeq(u64),
}

/// A `BODY[...]` section (RFC 3501 6.4.5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    /// Part numbers (`1.2`); empty: the whole message.
    pub part: Vec<u32>,
    pub text: SectionText,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SectionText {
    #[default]
    Full,
    Header,
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    Mime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    Envelope,
    Flags,
    InternalDate,
    Rfc822,
    Rfc822Header,
    Rfc822Size,
    Rfc822Text,
    /// `BODY` (no section): the body structure without extension data.
    Body,
    BodyStructure,
    Uid,
    ModSeq,
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<(u64, u64)>,
    },
}

/// Why a command did not parse: answered with a tagged (or untagged) BAD.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub tag: Option<String>,
    pub message: String,
}

/// RFC 3501 9: tag = 1*<any ASTRING-CHAR except "+">.
pub fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// ATOM-CHAR: any CHAR except atom-specials.
fn is_atom_char(b: u8) -> bool {
    b > 0x20
        && b < 0x7f
        && !matches!(
            b,
            b'(' | b')' | b'{' | b' ' | b'%' | b'*' | b'"' | b'\\' | b']'
        )
}

fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

struct P<'a> {
    b: &'a [u8],
    i: usize,
    depth: usize,
}

type R<T> = Result<T, String>;

impl<'a> P<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> R<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", c as char, self.i))
        }
    }

    fn sp(&mut self) -> R<()> {
        self.expect(b' ')
    }

    fn end(&mut self) -> R<()> {
        self.eat(b'\r');
        if self.eat(b'\n') && self.i == self.b.len() {
            Ok(())
        } else {
            Err(format!("unexpected text at byte {}", self.i))
        }
    }

    fn at_end(&self) -> bool {
        matches!(self.peek(), Some(b'\r') | Some(b'\n') | None)
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        &self.b[start..self.i]
    }

    fn atom(&mut self) -> R<&'a [u8]> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            Err(format!("expected an atom at byte {}", self.i))
        } else {
            Ok(a)
        }
    }

    fn atom_upper(&mut self) -> R<String> {
        Ok(String::from_utf8_lossy(self.atom()?).to_ascii_uppercase())
    }

    fn number(&mut self) -> R<u64> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() || d.len() > 19 {
            return Err(format!("expected a number at byte {}", self.i));
        }
        std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "number out of range".to_owned())
    }

    fn nz_number32(&mut self) -> R<u32> {
        let n = self.number()?;
        u32::try_from(n)
            .ok()
            .filter(|&n| n != 0)
            .ok_or_else(|| format!("{n} is not a valid message number"))
    }

    fn quoted(&mut self) -> R<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r') | Some(b'\n') => return Err("unterminated quoted string".into()),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(c);
                            self.i += 1;
                        }
                        _ => return Err("bad escape in quoted string".into()),
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn literal(&mut self) -> R<Vec<u8>> {
        self.expect(b'{')?;
        let n = self.number()?;
        self.eat(b'+');
        self.expect(b'}')?;
        self.eat(b'\r');
        self.expect(b'\n')?;
        let n = usize::try_from(n).map_err(|_| "literal too big".to_owned())?;
        if self.b.len() - self.i < n {
            return Err("literal shorter than announced".into());
        }
        let out = self.b[self.i..self.i + n].to_vec();
        self.i += n;
        Ok(out)
    }

    fn string(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            _ => Err(format!("expected a string at byte {}", self.i)),
        }
    }

    fn astring(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => {
                let a = self.take_while(is_astring_char);
                if a.is_empty() {
                    Err(format!("expected a string at byte {}", self.i))
                } else {
                    Ok(a.to_vec())
                }
            }
        }
    }

    fn nstring_or_nil(&mut self) -> R<Option<Vec<u8>>> {
        if self.peek() == Some(b'"') || self.peek() == Some(b'{') {
            return Ok(Some(self.string()?));
        }
        let a = self.atom()?;
        if a.eq_ignore_ascii_case(b"NIL") {
            Ok(None)
        } else {
            Err("expected a string or NIL".into())
        }
    }

    fn list_mailbox(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => {
                let a = self.take_while(is_list_char);
                if a.is_empty() {
                    Err("expected a mailbox pattern".into())
                } else {
                    Ok(a.to_vec())
                }
            }
        }
    }

    fn seq_number(&mut self) -> R<u32> {
        if self.eat(b'*') {
            Ok(STAR)
        } else {
            self.nz_number32()
        }
    }

    fn seq_set(&mut self) -> R<SeqSet> {
        let mut ranges = Vec::new();
        loop {
            let a = self.seq_number()?;
            let b = if self.eat(b':') {
                self.seq_number()?
            } else {
                a
            };
            ranges.push((a, b));
            if ranges.len() > 10_000 {
                return Err("sequence set too long".into());
            }
            if !self.eat(b',') {
                return Ok(SeqSet(ranges));
            }
        }
    }

    fn flag(&mut self) -> R<String> {
        let start = self.i;
        self.eat(b'\\');
        if self.i > start && self.eat(b'*') {
            return Ok("\\*".into());
        }
        self.atom()?;
        Ok(String::from_utf8_lossy(&self.b[start..self.i]).into_owned())
    }

    fn flag_list(&mut self) -> R<Vec<String>> {
        self.expect(b'(')?;
        let mut flags = Vec::new();
        if self.eat(b')') {
            return Ok(flags);
        }
        loop {
            flags.push(self.flag()?);
            if self.eat(b')') {
                return Ok(flags);
            }
            self.sp()?;
        }
    }

    /// `d-Mon-yyyy` or `"d-Mon-yyyy"`.
    fn date(&mut self) -> R<Date> {
        let quoted = self.eat(b'"');
        let text = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'-');
        if quoted {
            self.expect(b'"')?;
        }
        parse_date(text).ok_or_else(|| "bad date (expected d-Mon-yyyy)".to_owned())
    }

    fn section(&mut self) -> R<Section> {
        self.expect(b'[')?;
        let mut s = Section::default();
        loop {
            if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                s.part.push(self.nz_number32()?);
                if s.part.len() > 64 {
                    return Err("section too deep".into());
                }
                if self.eat(b'.') {
                    continue;
                }
            }
            break;
        }
        if self.peek() != Some(b']') {
            let word = self
                .take_while(|b| b.is_ascii_alphanumeric() || b == b'.')
                .to_ascii_uppercase();
            s.text = match &word[..] {
                b"HEADER" => SectionText::Header,
                b"TEXT" => SectionText::Text,
                b"MIME" if !s.part.is_empty() => SectionText::Mime,
                b"HEADER.FIELDS" | b"HEADER.FIELDS.NOT" => {
                    self.sp()?;
                    self.expect(b'(')?;
                    let mut names = Vec::new();
                    loop {
                        let n = self.astring()?;
                        names.push(String::from_utf8_lossy(&n).into_owned());
                        if names.len() > 1000 {
                            return Err("too many header fields".into());
                        }
                        if self.eat(b')') {
                            break;
                        }
                        self.sp()?;
                    }
                    if word.len() == 13 {
                        SectionText::HeaderFields(names)
                    } else {
                        SectionText::HeaderFieldsNot(names)
                    }
                }
                _ => return Err("unknown section".into()),
            };
        }
        self.expect(b']')?;
        Ok(s)
    }

    fn fetch_att(&mut self) -> R<Vec<FetchItem>> {
        let start = self.i;
        let word = self
            .take_while(|b| b.is_ascii_alphanumeric() || b == b'.')
            .to_ascii_uppercase();
        use FetchItem::*;
        Ok(match &word[..] {
            b"ALL" => vec![Flags, InternalDate, Rfc822Size, Envelope],
            b"FAST" => vec![Flags, InternalDate, Rfc822Size],
            b"FULL" => vec![Flags, InternalDate, Rfc822Size, Envelope, Body],
            b"ENVELOPE" => vec![Envelope],
            b"FLAGS" => vec![Flags],
            b"INTERNALDATE" => vec![InternalDate],
            b"RFC822" => vec![Rfc822],
            b"RFC822.HEADER" => vec![Rfc822Header],
            b"RFC822.SIZE" => vec![Rfc822Size],
            b"RFC822.TEXT" => vec![Rfc822Text],
            b"BODYSTRUCTURE" => vec![BodyStructure],
            b"UID" => vec![Uid],
            b"MODSEQ" => vec![ModSeq],
            b"BODY" | b"BODY.PEEK" if self.peek() == Some(b'[') => {
                let section = self.section()?;
                let partial = if self.eat(b'<') {
                    let off = self.number()?;
                    self.expect(b'.')?;
                    let len = self.number()?;
                    if len == 0 {
                        return Err("a partial of zero bytes".into());
                    }
                    self.expect(b'>')?;
                    Some((off, len))
                } else {
                    None
                };
                vec![BodySection {
                    peek: word.len() == 9,
                    section,
                    partial,
                }]
            }
            b"BODY" => vec![Body],
            _ => {
                return Err(format!(
                    "unknown FETCH item {:?}",
                    String::from_utf8_lossy(&self.b[start..self.i])
                ));
            }
        })
    }

    fn fetch_items(&mut self) -> R<Vec<FetchItem>> {
        if self.eat(b'(') {
            let mut items = Vec::new();
            loop {
                items.extend(self.fetch_att()?);
                if items.len() > 100 {
                    return Err("too many FETCH items".into());
                }
                if self.eat(b')') {
                    return Ok(items);
                }
                self.sp()?;
            }
        }
        self.fetch_att()
    }

    fn search_keys(&mut self) -> R<SearchKey> {
        let mut keys = vec![self.search_key()?];
        while self.eat(b' ') {
            keys.push(self.search_key()?);
            if keys.len() > 1000 {
                return Err("too many search keys".into());
            }
        }
        Ok(if keys.len() == 1 {
            keys.pop().unwrap_or(SearchKey::All)
        } else {
            SearchKey::And(keys)
        })
    }

    fn search_key(&mut self) -> R<SearchKey> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("search keys nested too deep".into());
        }
        let k = self.search_key_inner();
        self.depth -= 1;
        k
    }

    fn search_key_inner(&mut self) -> R<SearchKey> {
        use SearchKey as K;
        if self.eat(b'(') {
            let mut keys = vec![self.search_key()?];
            while !self.eat(b')') {
                self.sp()?;
                keys.push(self.search_key()?);
                if keys.len() > 1000 {
                    return Err("too many search keys".into());
                }
            }
            return Ok(if keys.len() == 1 {
                keys.pop().unwrap_or(K::All)
            } else {
                K::And(keys)
            });
        }
        if self.peek().is_some_and(|b| b.is_ascii_digit() || b == b'*') {
            return Ok(K::SeqSet(self.seq_set()?));
        }
        let word = self.atom_upper()?;
        let astr = |p: &mut Self| -> R<Vec<u8>> {
            p.sp()?;
            p.astring()
        };
        let date = |p: &mut Self| -> R<Date> {
            p.sp()?;
            p.date()
        };
        let hdr = |p: &mut Self, name: &str| -> R<K> { Ok(K::Header(name.into(), astr(p)?)) };
        Ok(match word.as_str() {
            "ALL" => K::All,
            "ANSWERED" => K::Flag(b'R', true),
            "DELETED" => K::Flag(b'T', true),
            "DRAFT" => K::Flag(b'D', true),
            "FLAGGED" => K::Flag(b'F', true),
            "SEEN" => K::Flag(b'S', true),
            "UNANSWERED" => K::Flag(b'R', false),
            "UNDELETED" => K::Flag(b'T', false),
            "UNDRAFT" => K::Flag(b'D', false),
            "UNFLAGGED" => K::Flag(b'F', false),
            "UNSEEN" => K::Flag(b'S', false),
            "NEW" => K::New,
            "OLD" => K::Old,
            "RECENT" => K::Recent,
            "KEYWORD" | "UNKEYWORD" => {
                self.sp()?;
                K::Keyword(self.flag()?, word == "KEYWORD")
            }
            "BCC" => hdr(self, "BCC")?,
            "CC" => hdr(self, "CC")?,
            "FROM" => hdr(self, "FROM")?,
            "TO" => hdr(self, "TO")?,
            "SUBJECT" => hdr(self, "SUBJECT")?,
            "HEADER" => {
                let name = astr(self)?;
                K::Header(
                    String::from_utf8_lossy(&name).to_ascii_uppercase(),
                    astr(self)?,
                )
            }
            "BODY" => K::Body(astr(self)?),
            "TEXT" => K::Text(astr(self)?),
            "BEFORE" => K::Before(date(self)?),
            "ON" => K::On(date(self)?),
            "SINCE" => K::Since(date(self)?),
            "SENTBEFORE" => K::SentBefore(date(self)?),
            "SENTON" => K::SentOn(date(self)?),
            "SENTSINCE" => K::SentSince(date(self)?),
            "LARGER" => {
                self.sp()?;
                K::Larger(self.number()?)
            }
            "SMALLER" => {
                self.sp()?;
                K::Smaller(self.number()?)
            }
            "UID" => {
                self.sp()?;
                K::Uid(self.seq_set()?)
            }
            "NOT" => {
                self.sp()?;
                K::Not(Box::new(self.search_key()?))
            }
            "OR" => {
                self.sp()?;
                let a = self.search_key()?;
                self.sp()?;
                let b = self.search_key()?;
                K::Or(Box::new(a), Box::new(b))
            }
            "MODSEQ" => {
                self.sp()?;
                // RFC 7162 3.1.5: an optional entry name and type first.
                if self.peek() == Some(b'"') {
                    self.quoted()?;
                    self.sp()?;
                    self.atom()?;
                    self.sp()?;
                }
                K::ModSeq(self.number()?)
            }
            other => return Err(format!("unknown search key {other}")),
        })
    }

    fn paren_atoms(&mut self) -> R<Vec<String>> {
        self.expect(b'(')?;
        let mut out = Vec::new();
        if self.eat(b')') {
            return Ok(out);
        }
        loop {
            out.push(self.atom_upper()?);
            if out.len() > 100 {
                return Err("list too long".into());
            }
            if self.eat(b')') {
                return Ok(out);
            }
            self.sp()?;
        }
    }

    fn status_items(&mut self) -> R<Vec<StatusItem>> {
        let names = self.paren_atoms()?;
        names
            .iter()
            .map(|n| {
                Ok(match n.as_str() {
                    "MESSAGES" => StatusItem::Messages,
                    "RECENT" => StatusItem::Recent,
                    "UIDNEXT" => StatusItem::UidNext,
                    "UIDVALIDITY" => StatusItem::UidValidity,
                    "UNSEEN" => StatusItem::Unseen,
                    "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
                    "SIZE" => StatusItem::Size,
                    other => return Err(format!("unknown STATUS item {other}")),
                })
            })
            .collect()
    }

    fn select_params(&mut self) -> R<bool> {
        if !self.eat(b' ') {
            return Ok(false);
        }
        let params = self.paren_atoms()?;
        if params.iter().any(|p| p != "CONDSTORE") {
            return Err("unknown SELECT parameter".into());
        }
        Ok(!params.is_empty())
    }
}

/// Parses one command (as a [`super::framer::Frame::Command`] holds it).
pub fn parse(bytes: &[u8]) -> Result<Tagged, ParseError> {
    let tag = super::framer::tag_of(bytes);
    let Some(tag) = tag else {
        return Err(ParseError {
            tag: None,
            message: "a command starts with a tag".into(),
        });
    };
    let mut p = P {
        b: bytes,
        i: tag.len(),
        depth: 0,
    };
    match parse_rest(&mut p) {
        Ok(command) => Ok(Tagged { tag, command }),
        Err(message) => Err(ParseError {
            tag: Some(tag),
            message,
        }),
    }
}

fn parse_rest(p: &mut P<'_>) -> R<Command> {
    p.sp()?;
    let mut name = p.atom_upper()?;
    let mut uid = false;
    if name == "UID" {
        p.sp()?;
        uid = true;
        name = p.atom_upper()?;
        if !matches!(
            name.as_str(),
            "FETCH" | "STORE" | "SEARCH" | "COPY" | "MOVE" | "EXPUNGE"
        ) {
            return Err(format!("UID {name} is not a command"));
        }
    }
    let cmd = match name.as_str() {
        "CAPABILITY" => Command::Capability,
        "NOOP" => Command::Noop,
        "LOGOUT" => Command::Logout,
        "STARTTLS" => Command::StartTls,
        "CHECK" => Command::Check,
        "CLOSE" => Command::Close,
        "UNSELECT" => Command::Unselect,
        "IDLE" => Command::Idle,
        "NAMESPACE" => Command::Namespace,
        "EXPUNGE" if uid => {
            p.sp()?;
            Command::UidExpunge(p.seq_set()?)
        }
        "EXPUNGE" => Command::Expunge,
        "LOGIN" => {
            p.sp()?;
            let user = p.astring()?;
            p.sp()?;
            let password = p.astring()?;
            Command::Login { user, password }
        }
        "AUTHENTICATE" => {
            p.sp()?;
            let mechanism = p.atom_upper()?;
            let initial = if p.eat(b' ') {
                if p.eat(b'=') {
                    Some(Vec::new())
                } else {
                    let r = p.take_while(|b| {
                        b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='
                    });
                    if r.is_empty() {
                        return Err("bad initial response".into());
                    }
                    Some(r.to_vec())
                }
            } else {
                None
            };
            Command::Authenticate { mechanism, initial }
        }
        "SELECT" | "EXAMINE" => {
            p.sp()?;
            let mailbox = p.astring()?;
            let condstore = p.select_params()?;
            if name == "SELECT" {
                Command::Select { mailbox, condstore }
            } else {
                Command::Examine { mailbox, condstore }
            }
        }
        "CREATE" | "DELETE" | "SUBSCRIBE" | "UNSUBSCRIBE" => {
            p.sp()?;
            let m = p.astring()?;
            // RFC 6154 5.3 CREATE-SPECIAL-USE is not offered; a parameter list is refused.
            match name.as_str() {
                "CREATE" => Command::Create(m),
                "DELETE" => Command::Delete(m),
                "SUBSCRIBE" => Command::Subscribe(m),
                _ => Command::Unsubscribe(m),
            }
        }
        "RENAME" => {
            p.sp()?;
            let a = p.astring()?;
            p.sp()?;
            Command::Rename(a, p.astring()?)
        }
        "LIST" => {
            p.sp()?;
            let select = if p.peek() == Some(b'(') {
                let s = p.paren_atoms()?;
                p.sp()?;
                s
            } else {
                Vec::new()
            };
            let reference = p.astring()?;
            p.sp()?;
            let patterns = if p.eat(b'(') {
                let mut v = vec![p.list_mailbox()?];
                while !p.eat(b')') {
                    p.sp()?;
                    v.push(p.list_mailbox()?);
                    if v.len() > 100 {
                        return Err("too many patterns".into());
                    }
                }
                v
            } else {
                vec![p.list_mailbox()?]
            };
            let mut returns = Vec::new();
            let mut status = Vec::new();
            if p.eat(b' ') {
                let word = p.atom_upper()?;
                if word != "RETURN" {
                    return Err("expected RETURN".into());
                }
                p.sp()?;
                p.expect(b'(')?;
                if !p.eat(b')') {
                    loop {
                        let opt = p.atom_upper()?;
                        if opt == "STATUS" {
                            p.sp()?;
                            status = p.status_items()?;
                        }
                        returns.push(opt);
                        if returns.len() > 20 {
                            return Err("too many return options".into());
                        }
                        if p.eat(b')') {
                            break;
                        }
                        p.sp()?;
                    }
                }
            }
            Command::List {
                reference,
                patterns,
                select,
                returns,
                status,
            }
        }
        "LSUB" => {
            p.sp()?;
            let reference = p.astring()?;
            p.sp()?;
            Command::Lsub {
                reference,
                pattern: p.list_mailbox()?,
            }
        }
        "STATUS" => {
            p.sp()?;
            let mailbox = p.astring()?;
            p.sp()?;
            Command::Status {
                mailbox,
                items: p.status_items()?,
            }
        }
        "APPEND" => {
            p.sp()?;
            let mailbox = p.astring()?;
            p.sp()?;
            let flags = if p.peek() == Some(b'(') {
                let f = p.flag_list()?;
                p.sp()?;
                f
            } else {
                Vec::new()
            };
            let date = if p.peek() == Some(b'"') {
                let d = p.quoted()?;
                p.sp()?;
                Some(parse_date_time(&d).ok_or("bad date-time")?)
            } else {
                None
            };
            let message = p.literal()?;
            Command::Append {
                mailbox,
                flags,
                date,
                message,
            }
        }
        "SEARCH" => {
            p.sp()?;
            let mut ret = None;
            if p.b[p.i..].len() >= 6 && p.b[p.i..p.i + 6].eq_ignore_ascii_case(b"RETURN") {
                p.i += 6;
                p.sp()?;
                ret = Some(p.paren_atoms()?);
                p.sp()?;
            }
            let mut charset = None;
            if p.b[p.i..].len() >= 8 && p.b[p.i..p.i + 8].eq_ignore_ascii_case(b"CHARSET ") {
                p.i += 8;
                charset = Some(String::from_utf8_lossy(&p.astring()?).to_ascii_uppercase());
                p.sp()?;
            }
            Command::Search {
                uid,
                ret,
                charset,
                key: p.search_keys()?,
            }
        }
        "FETCH" => {
            p.sp()?;
            let set = p.seq_set()?;
            p.sp()?;
            let items = p.fetch_items()?;
            let mut changed_since = None;
            if p.eat(b' ') {
                p.expect(b'(')?;
                let w = p.atom_upper()?;
                if w != "CHANGEDSINCE" {
                    return Err("unknown FETCH modifier".into());
                }
                p.sp()?;
                changed_since = Some(p.number()?);
                p.expect(b')')?;
            }
            Command::Fetch {
                uid,
                set,
                items,
                changed_since,
            }
        }
        "STORE" => {
            p.sp()?;
            let set = p.seq_set()?;
            p.sp()?;
            let mut unchanged_since = None;
            if p.eat(b'(') {
                let w = p.atom_upper()?;
                if w != "UNCHANGEDSINCE" {
                    return Err("unknown STORE modifier".into());
                }
                p.sp()?;
                unchanged_since = Some(p.number()?);
                p.expect(b')')?;
                p.sp()?;
            }
            let mode = if p.eat(b'+') {
                StoreMode::Add
            } else if p.eat(b'-') {
                StoreMode::Remove
            } else {
                StoreMode::Replace
            };
            let item = p.atom_upper()?;
            let silent = match item.as_str() {
                "FLAGS" => false,
                "FLAGS.SILENT" => true,
                _ => return Err("expected FLAGS or FLAGS.SILENT".into()),
            };
            p.sp()?;
            let flags = if p.peek() == Some(b'(') {
                p.flag_list()?
            } else {
                let mut v = vec![p.flag()?];
                while p.eat(b' ') {
                    v.push(p.flag()?);
                }
                v
            };
            Command::Store {
                uid,
                set,
                mode,
                silent,
                flags,
                unchanged_since,
            }
        }
        "COPY" | "MOVE" => {
            p.sp()?;
            let set = p.seq_set()?;
            p.sp()?;
            let mailbox = p.astring()?;
            if name == "COPY" {
                Command::Copy { uid, set, mailbox }
            } else {
                Command::Move { uid, set, mailbox }
            }
        }
        "ID" => {
            p.sp()?;
            let mut params = Vec::new();
            if p.eat(b'(') {
                if !p.eat(b')') {
                    loop {
                        let k = p.string()?;
                        p.sp()?;
                        let v = p.nstring_or_nil()?;
                        params.push((
                            String::from_utf8_lossy(&k).into_owned(),
                            v.map(|v| String::from_utf8_lossy(&v).into_owned()),
                        ));
                        // RFC 2971 3.3: at most 30 pairs.
                        if params.len() > 30 {
                            return Err("more than 30 ID fields".into());
                        }
                        if p.eat(b')') {
                            break;
                        }
                        p.sp()?;
                    }
                }
            } else {
                let nil = p.atom()?;
                if !nil.eq_ignore_ascii_case(b"NIL") {
                    return Err("expected a list or NIL".into());
                }
            }
            Command::Id(params)
        }
        "ENABLE" => {
            let mut caps = Vec::new();
            while p.eat(b' ') {
                caps.push(p.atom_upper()?);
                if caps.len() > 50 {
                    return Err("too many capabilities".into());
                }
            }
            if caps.is_empty() {
                return Err("ENABLE needs a capability".into());
            }
            Command::Enable(caps)
        }
        other => return Err(format!("unknown command {other}")),
    };
    if !p.at_end() {
        return Err(format!("unexpected text after {name} at byte {}", p.i));
    }
    p.end()?;
    Ok(cmd)
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The civil date of a day number: (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn month_name(m: u32) -> &'static str {
    [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m.clamp(1, 12) - 1) as usize]
}

fn parse_date(text: &[u8]) -> Option<Date> {
    let text = std::str::from_utf8(text).ok()?;
    let mut it = text.split('-');
    let d: u32 = it.next()?.trim_start().parse().ok()?;
    let mon = it.next()?.to_ascii_lowercase();
    let y: i64 = it.next()?.parse().ok()?;
    if it.next().is_some() || !(1..=31).contains(&d) || !(1..=9999).contains(&y) {
        return None;
    }
    let m = MONTHS.iter().position(|&x| x == mon)? as u32 + 1;
    let days = days_from_civil(y, m, d);
    // A day the month does not have (29-Feb-2023, 31-Apr) is no date: it
    // would otherwise become a day of the next month.
    (civil_from_days(days) == (y, m, d)).then_some(Date(days))
}

/// The latest date-time APPEND takes: what a 32-bit file time holds
/// (2106-02-07); file systems clamp later ones (ext4 to 2446), so the date
/// a client is told back would not be the one it gave.
const MAX_DATE_TIME: i64 = u32::MAX as i64;

/// RFC 3501 date-time: `"dd-Mon-yyyy hh:mm:ss +zzzz"` (day may be space-padded).
pub fn parse_date_time(text: &[u8]) -> Option<DateTime> {
    let text = std::str::from_utf8(text).ok()?;
    let (date, rest) = text.trim_start().split_once(' ')?;
    let (time, zone) = rest.split_once(' ')?;
    let Date(days) = parse_date(date.as_bytes())?;
    let t: Vec<u32> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<Vec<_>>>()?;
    if t.len() != 3 || t[0] > 23 || t[1] > 59 || t[2] > 60 {
        return None;
    }
    let (sign, digits) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let zh: i32 = digits[..2].parse().ok()?;
    let zm: i32 = digits[2..].parse().ok()?;
    let zone_minutes = sign * (zh * 60 + zm);
    let local = days * 86400 + (t[0] * 3600 + t[1] * 60 + t[2]) as i64;
    if local - zone_minutes as i64 * 60 > MAX_DATE_TIME {
        return None;
    }
    Some(DateTime {
        unix: local - zone_minutes as i64 * 60,
        zone_minutes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        match parse(line.as_bytes()) {
            Ok(t) => t.command,
            Err(e) => panic!("{line:?}: {e}"),
        }
    }

    fn bad(line: &str) -> Option<String> {
        match parse(line.as_bytes()) {
            Ok(t) => panic!("{line:?} parsed as {t:?}"),
            Err(e) => e.tag,
        }
    }

    #[test]
    fn commands_parse() {
        use Command as C;
        let set = |r: &[(u32, u32)]| SeqSet(r.to_vec());
        let cases: Vec<(&str, Command)> = vec![
            ("a capability\r\n", C::Capability),
            ("a NOOP\r\n", C::Noop),
            ("a noop\n", C::Noop),
            (
                "a LOGIN bob \"p\\\"w\"\r\n",
                C::Login {
                    user: b"bob".to_vec(),
                    password: b"p\"w".to_vec(),
                },
            ),
            (
                "a LOGIN {3+}\r\nbob {2}\r\npw\r\n",
                C::Login {
                    user: b"bob".to_vec(),
                    password: b"pw".to_vec(),
                },
            ),
            (
                "a AUTHENTICATE PLAIN AGJvYgBwdw==\r\n",
                C::Authenticate {
                    mechanism: "PLAIN".into(),
                    initial: Some(b"AGJvYgBwdw==".to_vec()),
                },
            ),
            (
                "a AUTHENTICATE plain =\r\n",
                C::Authenticate {
                    mechanism: "PLAIN".into(),
                    initial: Some(vec![]),
                },
            ),
            (
                "a SELECT inbox (CONDSTORE)\r\n",
                C::Select {
                    mailbox: b"inbox".to_vec(),
                    condstore: true,
                },
            ),
            (
                "a EXAMINE \"Lists/rust\"\r\n",
                C::Examine {
                    mailbox: b"Lists/rust".to_vec(),
                    condstore: false,
                },
            ),
            ("a RENAME a b\r\n", C::Rename(b"a".to_vec(), b"b".to_vec())),
            (
                "a LIST \"\" *\r\n",
                C::List {
                    reference: vec![],
                    patterns: vec![b"*".to_vec()],
                    select: vec![],
                    returns: vec![],
                    status: vec![],
                },
            ),
            (
                "a LIST (SPECIAL-USE) \"\" (% Lists/%) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n",
                C::List {
                    reference: vec![],
                    patterns: vec![b"%".to_vec(), b"Lists/%".to_vec()],
                    select: vec!["SPECIAL-USE".into()],
                    returns: vec!["CHILDREN".into(), "STATUS".into()],
                    status: vec![StatusItem::Messages, StatusItem::Unseen],
                },
            ),
            (
                "a STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT SIZE)\r\n",
                C::Status {
                    mailbox: b"INBOX".to_vec(),
                    items: vec![
                        StatusItem::Messages,
                        StatusItem::UidNext,
                        StatusItem::UidValidity,
                        StatusItem::Unseen,
                        StatusItem::Recent,
                        StatusItem::Size,
                    ],
                },
            ),
            (
                "a APPEND Sent (\\Seen $Label1) \" 7-Feb-1994 21:52:25 -0800\" {5+}\r\nhello\r\n",
                C::Append {
                    mailbox: b"Sent".to_vec(),
                    flags: vec!["\\Seen".into(), "$Label1".into()],
                    date: Some(DateTime {
                        unix: 760_686_745,
                        zone_minutes: -480,
                    }),
                    message: b"hello".to_vec(),
                },
            ),
            (
                "a APPEND INBOX {2}\r\nhi\r\n",
                C::Append {
                    mailbox: b"INBOX".to_vec(),
                    flags: vec![],
                    date: None,
                    message: b"hi".to_vec(),
                },
            ),
            (
                "a UID EXPUNGE 1:3,5\r\n",
                C::UidExpunge(set(&[(1, 3), (5, 5)])),
            ),
            (
                "a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)]<0.100>)\r\n",
                C::Fetch {
                    uid: false,
                    set: set(&[(1, STAR)]),
                    items: vec![
                        FetchItem::Flags,
                        FetchItem::BodySection {
                            peek: true,
                            section: Section {
                                part: vec![],
                                text: SectionText::HeaderFields(vec![
                                    "From".into(),
                                    "Subject".into(),
                                ]),
                            },
                            partial: Some((0, 100)),
                        },
                    ],
                    changed_since: None,
                },
            ),
            (
                "a UID FETCH 4 (BODY[1.2.MIME] BODY[] UID) (CHANGEDSINCE 7)\r\n",
                C::Fetch {
                    uid: true,
                    set: set(&[(4, 4)]),
                    items: vec![
                        FetchItem::BodySection {
                            peek: false,
                            section: Section {
                                part: vec![1, 2],
                                text: SectionText::Mime,
                            },
                            partial: None,
                        },
                        FetchItem::BodySection {
                            peek: false,
                            section: Section::default(),
                            partial: None,
                        },
                        FetchItem::Uid,
                    ],
                    changed_since: Some(7),
                },
            ),
            (
                "a FETCH 2 fast\r\n",
                C::Fetch {
                    uid: false,
                    set: set(&[(2, 2)]),
                    items: vec![
                        FetchItem::Flags,
                        FetchItem::InternalDate,
                        FetchItem::Rfc822Size,
                    ],
                    changed_since: None,
                },
            ),
            (
                "a UID STORE 1,2 +FLAGS.SILENT (\\Deleted)\r\n",
                C::Store {
                    uid: true,
                    set: set(&[(1, 1), (2, 2)]),
                    mode: StoreMode::Add,
                    silent: true,
                    flags: vec!["\\Deleted".into()],
                    unchanged_since: None,
                },
            ),
            (
                "a STORE 1 (UNCHANGEDSINCE 5) FLAGS \\Seen work\r\n",
                C::Store {
                    uid: false,
                    set: set(&[(1, 1)]),
                    mode: StoreMode::Replace,
                    silent: false,
                    flags: vec!["\\Seen".into(), "work".into()],
                    unchanged_since: Some(5),
                },
            ),
            (
                "a UID MOVE 3:* Trash\r\n",
                C::Move {
                    uid: true,
                    set: set(&[(3, STAR)]),
                    mailbox: b"Trash".to_vec(),
                },
            ),
            (
                "a ID (\"name\" \"mutt\" \"version\" NIL)\r\n",
                C::Id(vec![
                    ("name".into(), Some("mutt".into())),
                    ("version".into(), None),
                ]),
            ),
            ("a ID NIL\r\n", C::Id(vec![])),
            (
                "a ENABLE CONDSTORE utf8=accept\r\n",
                C::Enable(vec!["CONDSTORE".into(), "UTF8=ACCEPT".into()]),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(ok(line), want, "{line:?}");
        }
    }

    #[test]
    fn search_keys_parse() {
        use SearchKey as K;
        let search = |s: &str| match ok(&format!("a UID SEARCH {s}\r\n")) {
            Command::Search { key, .. } => key,
            other => panic!("{other:?}"),
        };
        assert_eq!(search("ALL"), K::All);
        assert_eq!(
            search("UNSEEN SINCE 1-Feb-2024 NOT DELETED"),
            K::And(vec![
                K::Flag(b'S', false),
                K::Since(Date(days_from_civil(2024, 2, 1))),
                K::Not(Box::new(K::Flag(b'T', true))),
            ])
        );
        assert_eq!(
            search("OR (FROM alice SUBJECT \"hi there\") TEXT {3}\r\nfoo"),
            K::Or(
                Box::new(K::And(vec![
                    K::Header("FROM".into(), b"alice".to_vec()),
                    K::Header("SUBJECT".into(), b"hi there".to_vec()),
                ])),
                Box::new(K::Text(b"foo".to_vec())),
            )
        );
        assert_eq!(
            search("HEADER x-spam yes 1:3 UID 5:* LARGER 10 KEYWORD $Junk"),
            K::And(vec![
                K::Header("X-SPAM".into(), b"yes".to_vec()),
                K::SeqSet(SeqSet(vec![(1, 3)])),
                K::Uid(SeqSet(vec![(5, STAR)])),
                K::Larger(10),
                K::Keyword("$Junk".into(), true),
            ])
        );
        match ok("a SEARCH RETURN (MIN COUNT) CHARSET utf-8 BODY x\r\n") {
            Command::Search {
                ret, charset, key, ..
            } => {
                assert_eq!(ret, Some(vec!["MIN".into(), "COUNT".into()]));
                assert_eq!(charset.as_deref(), Some("UTF-8"));
                assert_eq!(key, K::Body(b"x".to_vec()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_commands_are_errors_with_their_tag() {
        let cases: &[(&str, Option<&str>)] = &[
            ("\r\n", None),
            ("+ NOOP\r\n", None),
            ("a\r\n", Some("a")),
            ("a FOO\r\n", Some("a")),
            ("a NOOP extra\r\n", Some("a")),
            ("a LOGIN bob\r\n", Some("a")),
            ("a LOGIN \"bob pw\r\n", Some("a")),
            ("a UID NOOP\r\n", Some("a")),
            ("a FETCH 0 FLAGS\r\n", Some("a")),
            ("a FETCH 1 (FLAGS\r\n", Some("a")),
            ("a FETCH 1 BODY[1.0]\r\n", Some("a")),
            ("a FETCH 1 BODY[]<5.0>\r\n", Some("a")),
            ("a FETCH 1 BODY[MIME]\r\n", Some("a")),
            ("a FETCH 4294967296 FLAGS\r\n", Some("a")),
            ("a SEARCH SINCE 31-Foo-2024\r\n", Some("a")),
            ("a SEARCH\r\n", Some("a")),
            ("a APPEND INBOX {10}\r\nshort\r\n", Some("a")),
            ("a STORE 1 FLAGZ (\\Seen)\r\n", Some("a")),
            ("a ENABLE\r\n", Some("a")),
        ];
        for (line, tag) in cases {
            assert_eq!(bad(line).as_deref(), *tag, "{line:?}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("a SEARCH {}ALL{}\r\n", "(".repeat(100), ")".repeat(100));
        assert!(bad(&deep).is_some());
        let nots = format!("a SEARCH {}ALL\r\n", "NOT ".repeat(100));
        assert!(bad(&nots).is_some());
        let ok_depth = format!("a SEARCH {}ALL{}\r\n", "(".repeat(10), ")".repeat(10));
        ok(&ok_depth);
    }

    #[test]
    fn dates_round_trip() {
        for days in [-1, 0, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(
            parse_date_time(b"01-Jan-1970 01:00:00 +0100"),
            Some(DateTime {
                unix: 0,
                zone_minutes: 60
            })
        );
        assert_eq!(parse_date_time(b"01-Jan-1970 25:00:00 +0100"), None);
    }

    #[test]
    fn days_a_month_does_not_have_are_bad_dates() {
        assert!(parse_date(b"29-Feb-2024").is_some());
        assert!(parse_date(b"31-Dec-9999").is_some());
        for bad_date in [
            "29-Feb-2023",
            "31-Feb-2024",
            "31-Apr-2024",
            "29-Feb-1900",
            "0-Jan-2024",
        ] {
            assert_eq!(parse_date(bad_date.as_bytes()), None, "{bad_date}");
        }
        assert!(bad("a SEARCH SINCE 31-Feb-2024\r\n").is_some());
        assert!(bad("a APPEND INBOX \"29-Feb-2023 12:00:00 +0000\" {1+}\r\nx\r\n").is_some());
        // Later than a file time holds: refused, not clamped.
        assert!(bad("a APPEND INBOX \"31-Dec-9999 12:00:00 +0000\" {1+}\r\nx\r\n").is_some());
        assert!(parse_date_time(b"07-Feb-2106 06:28:15 +0000").is_some());
        assert!(parse_date_time(b"07-Feb-2106 06:28:16 +0000").is_none());
    }
}
