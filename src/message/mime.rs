//! The MIME structure of a message (RFC 2045, 2046): where each part's
//! header and body start and end, and what its Content-* fields say. IMAP's
//! BODYSTRUCTURE, `BODY[1.2]` and SEARCH all read it.
//!
//! Our own walker, not mail-parser's, splits multiparts: mail-parser 0.11
//! ends a part at `--boundary` found in the middle of a line (upstream issue
//! 156), which cuts a body short and shifts every section number after it.
//! RFC 2046 5.1.1 says a delimiter is a whole line: CRLF, `--`, the
//! boundary, optional white space, CRLF. mail-parser is only ever handed one
//! leaf part at a time (to decode its text), where no boundary applies.
//!
//! The input is the message as IMAP serves it (CRLF line ends), so every
//! offset and size here is what a client counts. Nesting is bounded by
//! [`MAX_DEPTH`] and the number of parts by [`MAX_PARTS`]; deeper or more is
//! treated as opaque body text, never an error.

use std::borrow::Cow;
use std::ops::Range;

pub const MAX_DEPTH: usize = 20;
pub const MAX_PARTS: usize = 2000;

/// One MIME entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The header, its final blank line included.
    pub header: Range<usize>,
    pub body: Range<usize>,
    /// Lower case.
    pub mime_type: String,
    pub subtype: String,
    /// Parameter names lower case, values unquoted.
    pub params: Vec<(String, String)>,
    pub id: Option<String>,
    pub description: Option<String>,
    pub encoding: Option<String>,
    pub md5: Option<String>,
    pub disposition: Option<(String, Vec<(String, String)>)>,
    pub language: Option<String>,
    pub location: Option<String>,
    /// The parts of a multipart.
    pub children: Vec<Part>,
    /// The message inside a message/rfc822 part.
    pub message: Option<Box<Part>>,
}

impl Part {
    pub fn is_multipart(&self) -> bool {
        self.mime_type == "multipart"
    }

    pub fn is_message(&self) -> bool {
        self.mime_type == "message" && (self.subtype == "rfc822" || self.subtype == "global")
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a message (CRLF line ends).
pub fn parse(msg: &[u8]) -> Part {
    let mut budget = MAX_PARTS;
    parse_entity(msg, 0..msg.len(), false, 0, &mut budget)
}

/// The header fields of a header block: (name, raw value unfolded).
pub fn fields(header: &[u8]) -> Vec<(&[u8], Vec<u8>)> {
    fields_where(header, |_| true)
}

/// [`fields`], keeping only those whose name `keep` accepts (the others'
/// values are never copied).
fn fields_where(header: &[u8], keep: impl Fn(&[u8]) -> bool) -> Vec<(&[u8], Vec<u8>)> {
    let mut out: Vec<(&[u8], Vec<u8>)> = Vec::new();
    // Whether the last field line was dropped (its continuations with it).
    let mut dropped = false;
    for line in header.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if !dropped && let Some(last) = out.last_mut() {
                last.1.extend_from_slice(line);
            }
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = trim(&line[..colon]);
        dropped = !keep(name);
        if dropped {
            continue;
        }
        let value = trim(&line[colon + 1..]).to_vec();
        out.push((name, value));
    }
    for f in &mut out {
        let t = trim(&f.1).to_vec();
        f.1 = t;
    }
    out
}

/// The first field of that name (case-insensitive).
pub fn field(header: &[u8], name: &str) -> Option<Vec<u8>> {
    fields(header)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v)
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// Where the header ends: the byte after the blank line (or the end).
pub fn header_end(msg: &[u8], range: Range<usize>) -> usize {
    let s = &msg[range.clone()];
    if s.starts_with(b"\r\n") {
        return range.start + 2;
    }
    if s.starts_with(b"\n") {
        return range.start + 1;
    }
    let mut i = 0;
    while let Some(j) = memchr::memchr(b'\n', &s[i..]) {
        let next = i + j + 1;
        if s[next..].starts_with(b"\r\n") {
            return range.start + next + 2;
        }
        if s[next..].starts_with(b"\n") {
            return range.start + next + 1;
        }
        i = next;
    }
    range.end
}

fn parse_entity(
    msg: &[u8],
    range: Range<usize>,
    digest_child: bool,
    depth: usize,
    budget: &mut usize,
) -> Part {
    *budget = budget.saturating_sub(1);
    let hend = header_end(msg, range.clone());
    let header = &msg[range.start..hend];
    // Only Content-* fields are read here.
    let fs = fields_where(header, |n| {
        n.len() > 8 && n[..8].eq_ignore_ascii_case(b"content-")
    });
    let get = |name: &str| {
        fs.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let (mut mime_type, mut subtype, mut params) = match get("content-type") {
        Some(ct) => parse_content_type(&ct),
        None => (String::new(), String::new(), Vec::new()),
    };
    if mime_type.is_empty() || subtype.is_empty() {
        if digest_child {
            (mime_type, subtype) = ("message".into(), "rfc822".into());
        } else {
            (mime_type, subtype) = ("text".into(), "plain".into());
            if !params.iter().any(|(k, _)| k == "charset") {
                params.push(("charset".into(), "us-ascii".into()));
            }
        }
    }
    if mime_type == "text" && !params.iter().any(|(k, _)| k == "charset") {
        // RFC 2045 5.2: text without a charset is US-ASCII.
        params.push(("charset".into(), "us-ascii".into()));
    }
    let disposition = get("content-disposition").map(|d| {
        let (value, params) = split_params(&d);
        (value.to_ascii_lowercase(), params)
    });
    let mut part = Part {
        header: range.start..hend,
        body: hend..range.end,
        mime_type,
        subtype,
        params,
        id: get("content-id"),
        description: get("content-description"),
        encoding: get("content-transfer-encoding"),
        md5: get("content-md5"),
        disposition,
        language: get("content-language"),
        location: get("content-location"),
        children: Vec::new(),
        message: None,
    };
    if depth >= MAX_DEPTH || *budget == 0 {
        return part;
    }
    if part.is_multipart() {
        if let Some(boundary) = part.param("boundary").map(str::to_owned) {
            let digest = part.subtype == "digest";
            for r in split_multipart(msg, part.body.clone(), boundary.as_bytes()) {
                if *budget == 0 {
                    break;
                }
                part.children
                    .push(parse_entity(msg, r, digest, depth + 1, budget));
            }
        }
    } else if part.is_message() {
        let inner = parse_entity(msg, part.body.clone(), false, depth + 1, budget);
        part.message = Some(Box::new(inner));
    }
    part
}

/// The body ranges of a multipart's parts. RFC 2046 5.1.1: a delimiter is a
/// line of its own; the CRLF before it belongs to the delimiter.
fn split_multipart(msg: &[u8], body: Range<usize>, boundary: &[u8]) -> Vec<Range<usize>> {
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut line_start = body.start;
    while line_start < body.end {
        let line_end = memchr::memchr(b'\n', &msg[line_start..body.end])
            .map_or(body.end, |i| line_start + i + 1);
        let line = &msg[line_start..line_end];
        if let Some(rest) = line.strip_prefix(b"--")
            && let Some(after) = rest.strip_prefix(boundary)
        {
            let closing = after.starts_with(b"--");
            let tail = if closing { &after[2..] } else { after };
            if tail.iter().all(|b| b.is_ascii_whitespace()) {
                if let Some(s) = start {
                    // The CRLF before the delimiter is not the part's.
                    let mut end = line_start;
                    if end > s && msg[end - 1] == b'\n' {
                        end -= 1;
                        if end > s && msg[end - 1] == b'\r' {
                            end -= 1;
                        }
                    }
                    parts.push(s..end.max(s));
                }
                if closing {
                    return parts;
                }
                start = Some(line_end);
            }
        }
        line_start = line_end;
    }
    // No closing delimiter: the last part runs to the end.
    if let Some(s) = start {
        parts.push(s..body.end);
    }
    parts
}

/// `type/subtype; a=b; c="d"`, lower-cased names.
pub fn parse_content_type(value: &str) -> (String, String, Vec<(String, String)>) {
    let (ty, params) = split_params(value);
    let (t, s) = ty.split_once('/').unwrap_or((ty.as_str(), ""));
    (
        t.trim().to_ascii_lowercase(),
        s.trim().to_ascii_lowercase(),
        params,
    )
}

/// A value and its `; name=value` parameters (quoted values unquoted).
pub fn split_params(value: &str) -> (String, Vec<(String, String)>) {
    let value = strip_comments(value);
    let mut pieces = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
            cur.push(c);
        } else if c == ';' && !quoted {
            pieces.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    pieces.push(cur);
    let mut it = pieces.into_iter();
    let head = it.next().unwrap_or_default().trim().to_owned();
    let params = it
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            (!k.is_empty()).then(|| (k, v.to_owned()))
        })
        .take(64)
        .collect();
    (head, merge_rfc2231(params))
}

/// RFC 2231 3: `name*0="very long "; name*1="name.pdf"` is one parameter,
/// `name` = `very long name.pdf`. As Dovecot's `rfc2231_parse` does it
/// (what its BODYSTRUCTURE shows): the other parameters first, in their
/// order, then the merged ones; sections in the order of their numbers.
/// A value with a charset (RFC 2231 4: `name*0*=utf-8''%E2%82%AC`) stays
/// encoded, under the name `name*`, its plain sections %-encoded to match
/// (a lone `name*=...` is left as it is). Sections with a number missing
/// are not merged.
fn merge_rfc2231(params: Vec<(String, String)>) -> Vec<(String, String)> {
    struct Section {
        name: String,
        index: u32,
        extended: bool,
        value: String,
    }
    let mut out = Vec::with_capacity(params.len());
    let mut sections: Vec<Section> = Vec::new();
    for (k, v) in params {
        let (base, extended) = match k.strip_suffix('*') {
            Some(b) => (b, true),
            None => (k.as_str(), false),
        };
        let section = base.rsplit_once('*').and_then(|(name, index)| {
            let digits = !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit());
            let index = index.parse::<u32>().ok().filter(|_| digits)?;
            (!name.is_empty() && !name.contains('*')).then(|| (name.to_owned(), index))
        });
        match section {
            Some((name, index)) => sections.push(Section {
                name,
                index,
                extended,
                value: v,
            }),
            None => out.push((k, v)),
        }
    }
    // Stable: by name, then number; names in the order first seen.
    let mut names: Vec<String> = Vec::new();
    for s in &sections {
        if !names.contains(&s.name) {
            names.push(s.name.clone());
        }
    }
    for name in names {
        let mut group: Vec<&Section> = sections.iter().filter(|s| s.name == name).collect();
        group.sort_by_key(|s| s.index);
        let complete = group.iter().enumerate().all(|(i, s)| s.index as usize == i);
        if !complete {
            for s in group {
                let star = if s.extended { "*" } else { "" };
                out.push((format!("{}*{}{star}", s.name, s.index), s.value.clone()));
            }
            continue;
        }
        let extended = group.iter().any(|s| s.extended);
        let mut value = String::new();
        if extended && !group[0].extended {
            // No charset and no language given.
            value.push_str("''");
        }
        for s in &group {
            if extended && !s.extended {
                rfc2231_escape(&mut value, &s.value);
            } else {
                value.push_str(&s.value);
            }
        }
        let key = if extended { format!("{name}*") } else { name };
        out.push((key, value));
    }
    out
}

/// %-encodes what an RFC 2231 extended value may not hold as it is
/// (RFC 2231 7: `attribute-char`).
fn rfc2231_escape(out: &mut String, value: &str) {
    for b in value.bytes() {
        if b > b' ' && b < 0x7f && !b"*'%()<>@,;:\\\"/[]?=".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

fn strip_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut quoted = false;
    for c in value.chars() {
        match c {
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Lines in a body, for BODYSTRUCTURE (RFC 3501 7.4.2, body-fld-lines):
/// the number of line ends, as Dovecot counts them. A last line with no
/// line end (a part closed by the boundary's own CRLF) is not counted, so
/// both servers give a client the same structure for the same file.
pub fn count_lines(body: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', body).count()
}

/// A message with every bare LF made CRLF: the bytes IMAP serves.
pub fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 30);
    // Whole runs between bare LFs copied at once (memchr finds the LFs).
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', raw) {
        if nl == 0 || raw[nl - 1] != b'\r' {
            out.extend_from_slice(&raw[start..nl]);
            out.extend_from_slice(b"\r\n");
            start = nl + 1;
        }
    }
    out.extend_from_slice(&raw[start..]);
    out
}

/// The fields mail-parser decodes a leaf's body by, the only ones
/// [`leaf_text`] hands it (lower case).
const DECODED_BY: [&[u8]; 3] = [
    b"content-type",
    b"content-transfer-encoding",
    b"content-disposition",
];

/// The decoded text of a leaf part (transfer encoding and charset undone),
/// for SEARCH. Only leaves are handed to mail-parser (see the module docs).
///
/// HTML is searched as its decoded source, as Dovecot searches it, not
/// through mail-parser's HTML-to-text conversion: that drops everything
/// after a `<head>` that is never closed, and so lost the whole body of
/// corpus message spam-2/00680.e8df67f239cb166c5a8a78401eeeb1ba (a SEARCH
/// TEXT "viagra" Dovecot answered and we did not).
///
/// When the header is plain (see [`quick_leaf_text`]), mail-parser is
/// handed only the fields it decodes by (Content-Type,
/// Content-Transfer-Encoding, Content-Disposition) and the body, not every
/// field again: a message's whole header was parsed already for its text.
pub fn leaf_text(msg: &[u8], part: &Part) -> Option<String> {
    if part.mime_type != "text" {
        return None;
    }
    let header = &msg[part.header.clone()];
    if !plain_header(header) {
        return leaf_text_whole(msg, part);
    }
    let mut short = Vec::with_capacity(256 + part.body.len());
    let mut keep = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        if line[0] != b' ' && line[0] != b'\t' {
            let name = line.split(|&b| b == b':').next().map(trim).unwrap_or(b"");
            keep = DECODED_BY.iter().any(|n| name.eq_ignore_ascii_case(n));
        }
        if keep {
            short.extend_from_slice(line);
        }
    }
    short.extend_from_slice(b"\r\n");
    short.extend_from_slice(&msg[part.body.clone()]);
    decoded(&short, part)
}

/// [`leaf_text`] with the leaf's whole header handed to mail-parser (what
/// it did before, and still does for a header that is not plain).
pub fn leaf_text_whole(msg: &[u8], part: &Part) -> Option<String> {
    if part.mime_type != "text" {
        return None;
    }
    decoded(&msg[part.header.start..part.body.end], part)
}

/// mail-parser's text of a leaf given as header and body.
fn decoded(bytes: &[u8], part: &Part) -> Option<String> {
    let parsed = text_parser().parse(bytes)?;
    if part.subtype == "html" {
        parsed.body_html(0).map(|t| t.into_owned())
    } else {
        parsed.body_text(0).map(|t| t.into_owned())
    }
}

/// A leaf's decoded text, for SEARCH, without a parse of the leaf by
/// mail-parser: `None` when [`leaf_text`] must be asked. The text is what
/// [`leaf_text`] gives, byte for byte, as it is made by the same pieces of
/// mail-parser 0.11 that its parse would call for this leaf (the transfer
/// decoder and the charset decoder), skipping the parse of the header and
/// of the message around them. A test over the whole corpus holds the two
/// paths equal.
///
/// Taken only for the plain case, where mail-parser (handed one leaf, as
/// [`leaf_text`] does) decodes the body and returns it: `text/plain` or
/// `text/html`, inline, a charset named, no transfer encoding (or 7bit,
/// 8bit, binary), quoted-printable or base64 that decodes without a fault.
/// Anything unusual in the header (a repeated or RFC 2231 Content-* field,
/// comments, encoded words, a line of white space, which ends
/// mail-parser's header, no blank line before the body) goes the general
/// way.
pub fn quick_leaf_text<'a>(msg: &'a [u8], part: &Part) -> Option<Cow<'a, str>> {
    use mail_parser::decoders::charsets::map::charset_decoder;
    use mail_parser::parsers::MessageStream;
    if part.mime_type != "text" || !(part.subtype == "plain" || part.subtype == "html") {
        return None;
    }
    if part
        .disposition
        .as_ref()
        .is_some_and(|(d, _)| d != "inline")
    {
        return None;
    }
    let header = msg.get(part.header.clone())?;
    if !plain_header(header) {
        return None;
    }
    let body = msg.get(part.body.clone())?;
    let charset = part.param("charset")?;
    let bytes: Cow<'a, [u8]> = match part.encoding.as_deref() {
        None => Cow::Borrowed(body),
        Some(e)
            if ["7bit", "8bit", "binary"]
                .iter()
                .any(|p| e.eq_ignore_ascii_case(p)) =>
        {
            Cow::Borrowed(body)
        }
        Some(e) if e.eq_ignore_ascii_case("quoted-printable") => {
            let (end, b) = MessageStream::new(body).decode_quoted_printable_mime(b"");
            // usize::MAX: a fault, which mail-parser recovers from its way.
            (end != usize::MAX).then_some(b)?
        }
        Some(e) if e.eq_ignore_ascii_case("base64") => {
            let (end, b) = MessageStream::new(body).decode_base64_mime(b"");
            (end != usize::MAX).then_some(b)?
        }
        Some(_) => return None,
    };
    // ASCII reads the same in every charset mail-parser decodes by a table
    // (those an ASCII body may name; UTF-16 and UTF-7 go the general way).
    let ascii_compatible = [
        "us-ascii",
        "ascii",
        "iso-8859-1",
        "iso-8859-15",
        "windows-1252",
    ]
    .iter()
    .any(|c| charset.eq_ignore_ascii_case(c));
    if ascii_compatible && bytes.is_ascii() {
        return Some(match bytes {
            Cow::Borrowed(b) => Cow::Borrowed(std::str::from_utf8(b).ok()?),
            Cow::Owned(b) => Cow::Owned(String::from_utf8(b).ok()?),
        });
    }
    // A charset we default to (RFC 2045) is no charset to mail-parser.
    let decoder = names_charset(header, part)?
        .then(|| charset_decoder(charset.as_bytes()))
        .flatten();
    Some(match decoder {
        Some(decode) => Cow::Owned(decode(&bytes)),
        None => match bytes {
            Cow::Borrowed(b) => lossy(b),
            Cow::Owned(b) => Cow::Owned(
                String::from_utf8(b)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        },
    })
}

/// `String::from_utf8_lossy`, through the faster check first (most text is
/// valid UTF-8, and `from_utf8` checks ASCII a word at a time).
pub fn lossy(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// Whether a leaf's Content-Type field names a charset (`false` with no
/// field: mail-parser then reads UTF-8, where we default to US-ASCII);
/// `None` for a field that does not read as the leaf's type (say a type
/// without a subtype, which we take for text/plain), which mail-parser may
/// read otherwise.
fn names_charset(header: &[u8], part: &Part) -> Option<bool> {
    let Some((_, value)) = fields_where(header, |n| n.eq_ignore_ascii_case(b"content-type"))
        .into_iter()
        .next()
    else {
        return Some(false);
    };
    let (ty, sub, params) = parse_content_type(&String::from_utf8_lossy(&value));
    (ty == part.mime_type && sub == part.subtype)
        .then(|| params.iter().any(|(k, _)| k == "charset"))
}

/// Whether a leaf's header is one mail-parser reads as we do (see
/// [`quick_leaf_text`]): it ends with a blank line, has no line of white
/// space alone, every field line has a colon, and its Content-Type,
/// Content-Transfer-Encoding and Content-Disposition fields appear at most
/// once each, without comments, encoded words, RFC 2231 parameters or
/// escapes.
fn plain_header(header: &[u8]) -> bool {
    let Some(fields_part) = header.strip_suffix(b"\r\n") else {
        return false;
    };
    if !(fields_part.is_empty() || fields_part.ends_with(b"\r\n")) {
        return false;
    }
    let mut seen = [0u8; 3];
    let mut current: Option<usize> = None;
    // mail-parser reads a field from a first line that begins with white
    // space; we take it for a continuation of nothing.
    if fields_part
        .first()
        .is_some_and(|&b| b == b' ' || b == b'\t')
    {
        return false;
    }
    for line in fields_part.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            // Only the split's last, empty piece (after the final CRLF).
            continue;
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            return false;
        }
        let value = if line[0] == b' ' || line[0] == b'\t' {
            line
        } else {
            let Some(colon) = memchr::memchr(b':', line) else {
                return false;
            };
            let name = trim(&line[..colon]);
            current = DECODED_BY.iter().position(|n| name.eq_ignore_ascii_case(n));
            if let Some(i) = current {
                seen[i] += 1;
                if seen[i] > 1 {
                    return false;
                }
            }
            &line[colon + 1..]
        };
        if current.is_some()
            && (value
                .iter()
                .any(|&b| matches!(b, b'(' | b'*' | b'\\') || !b.is_ascii())
                || memchr::memmem::find(value, b"=?").is_some())
        {
            return false;
        }
    }
    true
}

/// mail-parser's parser as `MessageParser::default()` sets it up (each
/// registered field with its own parser, any other one raw), except that
/// `Received:` fields are skipped: nothing reads their parsed form (SEARCH
/// finds their raw text in the header), and parsing them was a third of
/// the time it takes to index a message.
pub fn text_parser() -> &'static mail_parser::MessageParser {
    use mail_parser::HeaderName as H;
    static PARSER: std::sync::OnceLock<mail_parser::MessageParser> = std::sync::OnceLock::new();
    PARSER.get_or_init(|| {
        let mut p = mail_parser::MessageParser::new().ignore_header(H::Received);
        for h in [
            H::Subject,
            H::Comments,
            H::ContentDescription,
            H::ContentLocation,
            H::ContentTransferEncoding,
        ] {
            p = p.header_text(h);
        }
        for h in [
            H::From,
            H::To,
            H::Cc,
            H::Bcc,
            H::ReplyTo,
            H::Sender,
            H::ResentTo,
            H::ResentFrom,
            H::ResentBcc,
            H::ResentCc,
            H::ResentSender,
            H::ListArchive,
            H::ListHelp,
            H::ListId,
            H::ListOwner,
            H::ListPost,
            H::ListSubscribe,
            H::ListUnsubscribe,
        ] {
            p = p.header_address(h);
        }
        for h in [H::Date, H::ResentDate] {
            p = p.header_date(h);
        }
        for h in [
            H::MessageId,
            H::References,
            H::InReplyTo,
            H::ReturnPath,
            H::ContentId,
            H::ResentMessageId,
        ] {
            p = p.header_id(h);
        }
        for h in [H::Keywords, H::ContentLanguage] {
            p = p.header_comma_separated(h);
        }
        for h in [H::ContentType, H::ContentDisposition] {
            p = p.header_content_type(h);
        }
        p.header_raw(H::MimeVersion)
    })
}

/// Every leaf part, depth first (embedded messages included).
pub fn leaves(part: &Part) -> Vec<&Part> {
    let mut out = Vec::new();
    fn walk<'a>(p: &'a Part, out: &mut Vec<&'a Part>) {
        if let Some(m) = &p.message {
            walk(m, out);
        } else if p.children.is_empty() {
            out.push(p);
        } else {
            for c in &p.children {
                walk(c, out);
            }
        }
    }
    walk(part, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_parser_reads_what_the_default_one_does_but_received() {
        let msg = "Received: from a.example.org (a [192.0.2.1]) by b with SMTP id x; Tue, 1 Jul 2025 10:00:00 +0000\r\n\
From: =?UTF-8?B?SsO8cmdlbg==?= <j@example.org>\r\nTo: b@example.org, \"C\" <c@example.org>\r\n\
Subject: =?ISO-8859-1?Q?Gr=FC=DFe?=\r\nDate: Tue, 1 Jul 2025 10:00:00 +0000\r\nMessage-ID: <m@x>\r\n\
Keywords: a, b\r\nX-Other: =?UTF-8?B?SsO8cmdlbg==?=\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nK=F6ln\r\n";
        let ours = text_parser().parse(msg.as_bytes()).unwrap();
        let theirs = mail_parser::MessageParser::default()
            .parse(msg.as_bytes())
            .unwrap();
        assert_eq!(ours.body_text(0), theirs.body_text(0));
        assert_eq!(ours.body_text(0).as_deref(), Some("K\u{f6}ln\r\n"));
        let (a, b) = (ours.headers(), theirs.headers());
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x.name, y.name);
            if x.name == mail_parser::HeaderName::Received {
                assert_eq!(x.value, mail_parser::HeaderValue::Empty);
            } else {
                assert_eq!(x.value, y.value, "{:?}", x.name);
            }
        }
    }

    const MIXED: &str = "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=\"xyz\"\r\n\r\n\
preamble\r\n--xyz\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello --xyz in the middle\r\nsecond line\r\n\
--xyz\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n\
--xyz--\r\nepilogue\r\n";

    #[test]
    fn a_boundary_in_mid_line_does_not_end_the_part() {
        // mail-parser 0.11 (upstream issue 156) ended part 1 at "--xyz in the middle".
        let msg = MIXED.as_bytes();
        let p = parse(msg);
        assert!(p.is_multipart());
        assert_eq!(p.children.len(), 2);
        let text = &p.children[0];
        assert_eq!(
            &msg[text.body.clone()],
            b"hello --xyz in the middle\r\nsecond line"
        );
        assert_eq!(text.param("charset"), Some("utf-8"));
        assert_eq!(
            leaf_text(msg, text).unwrap(),
            "hello --xyz in the middle\r\nsecond line"
        );
        let inner = p.children[1].message.as_ref().unwrap();
        assert_eq!(&msg[inner.body.clone()], b"inner body");
        assert_eq!(
            field(&msg[inner.header.clone()], "subject").unwrap(),
            b"inner"
        );
    }

    #[test]
    fn defaults_params_and_folding() {
        let msg = b"Subject: a\r\n b\r\nContent-Type: TEXT/HTML; Charset=\"ISO-8859-1\" (comment); name=x\r\n\r\nbody";
        let p = parse(msg);
        assert_eq!((p.mime_type.as_str(), p.subtype.as_str()), ("text", "html"));
        assert_eq!(p.param("charset"), Some("ISO-8859-1"));
        assert_eq!(p.param("name"), Some("x"));
        assert_eq!(field(msg, "SUBJECT").unwrap(), b"a b");
        let plain = parse(b"\r\nonly a body");
        assert_eq!(plain.param("charset"), Some("us-ascii"));
        assert_eq!(plain.body, 2..13);
        assert_eq!(count_lines(b"a\r\nb"), 1);
        assert_eq!(count_lines(b"a\r\nb\r\n"), 2);
        assert_eq!(count_lines(b""), 0);
        assert_eq!(to_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
    }

    #[test]
    fn hostile_nesting_is_bounded() {
        let mut msg = String::new();
        for i in 0..100 {
            msg.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
            ));
        }
        msg.push_str("\r\nleaf\r\n");
        let p = parse(msg.as_bytes());
        let mut depth = 0;
        let mut cur = &p;
        while let Some(c) = cur.children.first() {
            depth += 1;
            cur = c;
        }
        assert!(depth <= MAX_DEPTH, "{depth}");
    }
}

#[cfg(test)]
mod html_search_tests {
    use super::*;

    /// Reduced from corpus spam-2/00680.e8df67f239cb166c5a8a78401eeeb1ba:
    /// `<head>` never closed, quoted-printable, ISO-8859-1.
    #[test]
    fn html_with_an_unclosed_head_keeps_its_text() {
        let msg = b"Subject: x\r\nContent-Type: text/html; charset=\"iso-8859-1\"\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\n<html>\r\n<head>\r\n<body>\r\n\
<div style=3D\"x\">Viagra (Sexual) K=E4se</div>\r\n";
        let p = parse(msg);
        let text = leaf_text(msg, &p).unwrap();
        assert!(text.contains("Viagra (Sexual) K\u{e4}se"), "{text:?}");
    }

    #[test]
    fn rfc2231_continuations_are_merged_as_dovecot_merges_them() {
        let p = |v: &str| split_params(v).1;
        let kv = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            p("attachment; filename*0=\"very long \"; filename*1=\"name.pdf\""),
            kv(&[("filename", "very long name.pdf")])
        );
        // Out of order, after the plain ones; the others keep their order.
        assert_eq!(
            p("text/plain; a=1; name*1=\"b\"; name*0=a; c=2"),
            kv(&[("a", "1"), ("c", "2"), ("name", "ab")])
        );
        // With a charset: kept encoded under `name*`, plain sections escaped.
        assert_eq!(
            p("x; name*0*=utf-8''%E2%82%AC; name*1=\" rates.pdf\""),
            kv(&[("name*", "utf-8''%E2%82%AC%20rates.pdf")])
        );
        assert_eq!(
            p("x; name*0=\"a b\"; name*1*=%E2%82%AC"),
            kv(&[("name*", "''a%20b%E2%82%AC")])
        );
        // A lone extended value stays as it came; a gap is not merged.
        assert_eq!(
            p("x; name*=utf-8''%E2%82%AC.pdf"),
            kv(&[("name*", "utf-8''%E2%82%AC.pdf")])
        );
        assert_eq!(p("x; n*0=a; n*2=c"), kv(&[("n*0", "a"), ("n*2", "c")]));
    }
}
