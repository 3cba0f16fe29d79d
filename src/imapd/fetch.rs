//! FETCH (RFC 3501 6.4.5, 7.4.2): ENVELOPE, BODYSTRUCTURE, sections and
//! partials, written as IMAP wants them.
//!
//! `BODY[]`, `RFC822` and `BODY[TEXT]` are streamed from the file by the
//! driver ([`Out::File`]): a 200 MB message costs a buffer, not 200 MB.
//! Everything that needs the MIME structure (BODYSTRUCTURE, `BODY[1.2]`)
//! reads the message into memory, up to [`MAX_LOAD`]; ENVELOPE and header
//! sections read the header only.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use super::Out;
use crate::message::mime::{self, Part};
use crate::proto::imap::command::{Section, SectionText, civil_from_days, month_name};
use crate::proto::imap::response::{nstring, string};

/// The most of a message read into memory for its structure.
pub const MAX_LOAD: u64 = 256 * 1024 * 1024;
/// The most of a header read for ENVELOPE and header sections.
pub const MAX_HEADER: u64 = 1024 * 1024;

/// A message read into memory, as IMAP serves it (CRLF).
pub struct Loaded {
    pub bytes: Vec<u8>,
    pub mime: Part,
}

pub fn load(file: File) -> io::Result<Loaded> {
    let mut raw = Vec::new();
    file.take(MAX_LOAD).read_to_end(&mut raw)?;
    let bytes = mime::to_crlf(&raw);
    let mime = mime::parse(&bytes);
    Ok(Loaded { bytes, mime })
}

/// The header (with its blank line), CRLF, bounded by [`MAX_HEADER`].
pub fn load_header(file: File) -> io::Result<Vec<u8>> {
    let mut r = BufReader::new(file.take(MAX_HEADER));
    let mut out = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let blank = line == b"\n" || line == b"\r\n";
        out.extend_from_slice(&mime::to_crlf(&line));
        if blank {
            break;
        }
    }
    Ok(out)
}

/// `"17-Jul-1996 02:44:25 +0000"` for a time in seconds since 1970 (UTC).
pub fn internal_date(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86400), unix.rem_euclid(86400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "\"{d:02}-{}-{y:04} {:02}:{:02}:{:02} +0000\"",
        month_name(m),
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// ENVELOPE from a header block.
pub fn envelope(out: &mut Vec<u8>, header: &[u8]) {
    let fields = mime::fields(header);
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    };
    out.push(b'(');
    nstring(out, get("date"));
    out.push(b' ');
    nstring(out, get("subject"));
    let from = get("from");
    for (name, fallback) in [
        ("from", None),
        ("sender", from),
        ("reply-to", from),
        ("to", None),
        ("cc", None),
        ("bcc", None),
    ] {
        out.push(b' ');
        match get(name).filter(|v| !v.is_empty()).or(fallback) {
            Some(v) => addresses(out, v),
            None => out.extend_from_slice(b"NIL"),
        }
    }
    out.push(b' ');
    nstring(out, get("in-reply-to"));
    out.push(b' ');
    nstring(out, get("message-id"));
    out.push(b')');
}

/// An address list as IMAP writes it: `((name adl mailbox host) ...)`,
/// groups as `(NIL NIL "group" NIL) ... (NIL NIL NIL NIL)`.
fn addresses(out: &mut Vec<u8>, value: &[u8]) {
    let items = split_top(value, b',');
    let mut any = false;
    let mut body = Vec::new();
    for item in items {
        let mut item = item.as_slice();
        // A group: `name: a, b;` (the members follow in later items).
        if let Some(colon) = find_top(item, b':')
            && find_top(item, b'<').is_none_or(|lt| colon < lt)
        {
            body.extend_from_slice(b"(NIL NIL ");
            string(&mut body, unquote(trim(&item[..colon])).as_slice());
            body.extend_from_slice(b" NIL)");
            item = &item[colon + 1..];
            any = true;
        }
        let mut end_group = false;
        let t = trim(item);
        let t = if let Some(s) = t.strip_suffix(b";") {
            end_group = true;
            trim(s)
        } else {
            t
        };
        if !t.is_empty() {
            let (name, addr) = match (find_top(t, b'<'), t.iter().rposition(|&b| b == b'>')) {
                (Some(lt), Some(gt)) if lt < gt => {
                    let n = trim(&t[..lt]);
                    (
                        (!n.is_empty()).then(|| unquote(n)),
                        strip_comments(&t[lt + 1..gt]),
                    )
                }
                _ => (None, strip_comments(t)),
            };
            let addr = trim(&addr).to_vec();
            // A source route `@a,@b:` before the mailbox is dropped.
            let addr = match addr.iter().position(|&b| b == b':') {
                Some(i) if addr.first() == Some(&b'@') => addr[i + 1..].to_vec(),
                _ => addr,
            };
            let (local, host) = match addr.iter().rposition(|&b| b == b'@') {
                Some(at) => (addr[..at].to_vec(), addr[at + 1..].to_vec()),
                None => (addr.clone(), Vec::new()),
            };
            body.push(b'(');
            nstring(&mut body, name.as_deref());
            body.extend_from_slice(b" NIL ");
            string(&mut body, &unquote(&local));
            body.push(b' ');
            string(&mut body, &host);
            body.push(b')');
            any = true;
        }
        if end_group {
            body.extend_from_slice(b"(NIL NIL NIL NIL)");
        }
    }
    if any {
        out.push(b'(');
        out.extend_from_slice(&body);
        out.push(b')');
    } else {
        out.extend_from_slice(b"NIL");
    }
}

fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

fn unquote(b: &[u8]) -> Vec<u8> {
    let b = trim(b);
    if b.len() >= 2 && b[0] == b'"' && b[b.len() - 1] == b'"' {
        let mut out = Vec::with_capacity(b.len());
        let mut esc = false;
        for &c in &b[1..b.len() - 1] {
            if esc || c != b'\\' {
                out.push(c);
                esc = false;
            } else {
                esc = true;
            }
        }
        out
    } else {
        b.to_vec()
    }
}

fn strip_comments(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let (mut depth, mut quoted) = (0usize, false);
    for &c in b {
        match c {
            b'"' if depth == 0 => {
                quoted = !quoted;
                out.push(c)
            }
            b'(' if !quoted => depth += 1,
            b')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Position of `c` outside quotes, comments and angle brackets.
fn find_top(b: &[u8], c: u8) -> Option<usize> {
    let (mut depth, mut quoted, mut angle, mut esc) = (0usize, false, false, false);
    for (i, &x) in b.iter().enumerate() {
        if esc {
            esc = false;
            continue;
        }
        match x {
            b'\\' if quoted => esc = true,
            b'"' if depth == 0 => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted && depth > 0 => depth -= 1,
            _ if x == c && !quoted && depth == 0 && !angle => return Some(i),
            b'<' if !quoted && depth == 0 => angle = true,
            b'>' if !quoted && depth == 0 => angle = false,
            _ => {}
        }
    }
    None
}

/// Splits at `sep` outside quotes, comments and angle brackets; a group's
/// `;` ends an item too.
fn split_top(b: &[u8], sep: u8) -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    let mut rest = b;
    loop {
        let cut = find_top(rest, sep);
        let semi = find_top(rest, b';');
        match (cut, semi) {
            (Some(c), Some(s)) if s < c => {
                items.push(rest[..=s].to_vec());
                rest = &rest[s + 1..];
            }
            (Some(c), _) => {
                items.push(rest[..c].to_vec());
                rest = &rest[c + 1..];
            }
            (None, Some(s)) => {
                items.push(rest[..=s].to_vec());
                rest = &rest[s + 1..];
            }
            (None, None) => {
                items.push(rest.to_vec());
                return items;
            }
        }
        if items.len() > 1000 {
            return items;
        }
    }
}

/// BODY or BODYSTRUCTURE (`ext`: with extension data).
pub fn body_structure(out: &mut Vec<u8>, msg: &[u8], part: &Part, ext: bool) {
    out.push(b'(');
    if part.is_multipart() {
        if part.children.is_empty() {
            // RFC 3501 requires at least one part.
            out.extend_from_slice(
                b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)",
            );
        }
        for c in &part.children {
            body_structure(out, msg, c, ext);
        }
        out.push(b' ');
        string(out, part.subtype.as_bytes());
        if ext {
            out.push(b' ');
            params(out, &part.params);
            extension(out, part);
        }
    } else {
        string(out, part.mime_type.as_bytes());
        out.push(b' ');
        string(out, part.subtype.as_bytes());
        out.push(b' ');
        params(out, &part.params);
        out.push(b' ');
        nstring(out, part.id.as_deref().map(str::as_bytes));
        out.push(b' ');
        nstring(out, part.description.as_deref().map(str::as_bytes));
        out.push(b' ');
        let enc = part
            .encoding
            .as_deref()
            .unwrap_or("7bit")
            .to_ascii_lowercase();
        string(out, enc.as_bytes());
        let body = &msg[part.body.clone()];
        out.extend_from_slice(format!(" {}", body.len()).as_bytes());
        if let Some(inner) = &part.message {
            out.push(b' ');
            envelope(out, &msg[inner.header.clone()]);
            out.push(b' ');
            body_structure(out, msg, inner, ext);
            out.extend_from_slice(format!(" {}", mime::count_lines(body)).as_bytes());
        } else if part.mime_type == "text" {
            out.extend_from_slice(format!(" {}", mime::count_lines(body)).as_bytes());
        }
        if ext {
            out.push(b' ');
            nstring(out, part.md5.as_deref().map(str::as_bytes));
            extension(out, part);
        }
    }
    out.push(b')');
}

fn params(out: &mut Vec<u8>, params: &[(String, String)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, k.as_bytes());
        out.push(b' ');
        string(out, v.as_bytes());
    }
    out.push(b')');
}

/// body-fld-dsp SP body-fld-lang SP body-fld-loc.
fn extension(out: &mut Vec<u8>, part: &Part) {
    out.push(b' ');
    match &part.disposition {
        Some((d, p)) => {
            out.push(b'(');
            string(out, d.as_bytes());
            out.push(b' ');
            params(out, p);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    // RFC 3501 body-fld-lang: the tags of Content-Language (RFC 3282, a
    // comma-separated list) as a list of strings, as Dovecot writes them.
    let tags: Vec<&str> = part
        .language
        .as_deref()
        .map(|l| {
            l.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if tags.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        for (i, t) in tags.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            string(out, t.as_bytes());
        }
        out.push(b')');
    }
    out.push(b' ');
    nstring(out, part.location.as_deref().map(str::as_bytes));
}

/// The bytes a section names, or `None` when the message has no such part.
pub fn section_bytes(msg: &[u8], top: &Part, section: &Section) -> Option<Vec<u8>> {
    // Walk the part numbers (RFC 3501 6.4.5).
    let mut part = top;
    let mut in_message = true; // `part` is a message whose body the next number indexes
    for (i, &n) in section.part.iter().enumerate() {
        let n = n as usize;
        let container = if in_message {
            part
        } else {
            part.message.as_deref()?
        };
        part = if container.is_multipart() {
            container.children.get(n - 1)?
        } else if n == 1 {
            container
        } else {
            return None;
        };
        in_message = false;
        // A following number steps into an embedded message, or a multipart.
        if i + 1 < section.part.len() && part.is_multipart() {
            in_message = true;
        }
    }
    let message_of = |p: &Part| -> Option<Part> {
        if section.part.is_empty() {
            Some(p.clone())
        } else {
            p.message.as_deref().cloned()
        }
    };
    Some(match &section.text {
        SectionText::Full => {
            if section.part.is_empty() {
                msg.to_vec()
            } else {
                msg[part.body.clone()].to_vec()
            }
        }
        SectionText::Mime => msg[part.header.clone()].to_vec(),
        SectionText::Header => msg[message_of(part)?.header].to_vec(),
        SectionText::Text => msg[message_of(part)?.body].to_vec(),
        SectionText::HeaderFields(names) => {
            header_fields(&msg[message_of(part)?.header], names, false)
        }
        SectionText::HeaderFieldsNot(names) => {
            header_fields(&msg[message_of(part)?.header], names, true)
        }
    })
}

/// The header lines (continuations included) whose names are (or, `not`,
/// are not) in `names`, then the blank line.
pub fn header_fields(header: &[u8], names: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keep = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if keep {
                out.extend_from_slice(line);
            }
            continue;
        }
        let name = match line.iter().position(|&b| b == b':') {
            Some(c) => line[..c].trim_ascii(),
            None => {
                keep = false;
                continue;
            }
        };
        let listed = names
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(name));
        keep = listed != not;
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The name of a section in the response: `BODY[1.HEADER.FIELDS (A B)]`.
pub fn section_name(section: &Section) -> String {
    let mut s = String::from("BODY[");
    let parts: Vec<String> = section.part.iter().map(u32::to_string).collect();
    s.push_str(&parts.join("."));
    let dot = if section.part.is_empty() { "" } else { "." };
    // Each name as an atom where it can be one, as Dovecot echoes them
    // (`(SUBJECT FROM)`): some clients match the section they asked for
    // against the reply as text. Quoted otherwise (RFC 3501 9: astring).
    let list = |names: &[String]| {
        names
            .iter()
            .map(|n| {
                let atom = !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b));
                if atom {
                    n.clone()
                } else {
                    format!("\"{}\"", n.replace(['"', '\\'], ""))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    match &section.text {
        SectionText::Full => {}
        SectionText::Header => s.push_str(&format!("{dot}HEADER")),
        SectionText::Text => s.push_str(&format!("{dot}TEXT")),
        SectionText::Mime => s.push_str(&format!("{dot}MIME")),
        SectionText::HeaderFields(n) => s.push_str(&format!("{dot}HEADER.FIELDS ({})", list(n))),
        SectionText::HeaderFieldsNot(n) => {
            s.push_str(&format!("{dot}HEADER.FIELDS.NOT ({})", list(n)))
        }
    }
    s.push(']');
    s
}

/// Appends a literal holding `bytes[partial]` to the output.
pub fn literal(out: &mut Vec<u8>, bytes: &[u8], partial: Option<(u64, u64)>) {
    let (start, len) = clip(bytes.len() as u64, partial);
    out.extend_from_slice(format!("{{{len}}}\r\n").as_bytes());
    let at = out.len();
    out.extend_from_slice(&bytes[start as usize..(start + len) as usize]);
    super::no_nul(&mut out[at..]);
}

/// Offset and length of a partial within `total` bytes.
pub fn clip(total: u64, partial: Option<(u64, u64)>) -> (u64, u64) {
    match partial {
        None => (0, total),
        Some((off, len)) => {
            let start = off.min(total);
            (start, len.min(total - start))
        }
    }
}

/// Pushes the bytes so far and a streamed part of a file.
pub fn push_file(outs: &mut Vec<Out>, buf: &mut Vec<u8>, src: super::FileRef, skip: u64, len: u64) {
    buf.extend_from_slice(format!("{{{len}}}\r\n").as_bytes());
    outs.push(Out::Bytes(std::mem::take(buf)));
    outs.push(Out::File { src, skip, len });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(header: &str) -> String {
        let mut out = Vec::new();
        envelope(&mut out, header.as_bytes());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn envelopes() {
        assert_eq!(
            env(
                "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nSubject: hi\r\nFrom: \"Alice A.\" <alice@example.org>\r\nTo: bob@example.net, Carol <carol@x.org>\r\nMessage-ID: <1@x>\r\n\r\n"
            ),
            "(\"Mon, 1 Jan 2024 10:00:00 +0000\" \"hi\" ((\"Alice A.\" NIL \"alice\" \"example.org\")) ((\"Alice A.\" NIL \"alice\" \"example.org\")) ((\"Alice A.\" NIL \"alice\" \"example.org\")) ((NIL NIL \"bob\" \"example.net\")(\"Carol\" NIL \"carol\" \"x.org\")) NIL NIL NIL \"<1@x>\")"
        );
        assert_eq!(
            env("To: friends: a@x.org, \"b, c\" <b@y.org>;, d@z.org (comment)\r\n\r\n"),
            "(NIL NIL NIL NIL NIL ((NIL NIL \"friends\" NIL)(NIL NIL \"a\" \"x.org\")(\"b, c\" NIL \"b\" \"y.org\")(NIL NIL NIL NIL)(NIL NIL \"d\" \"z.org\")) NIL NIL NIL NIL)"
        );
        assert_eq!(env("\r\n"), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
    }

    const MSG: &str = "Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\r\ntwo-a\r\n--c\r\nContent-Type: text/html\r\n\r\ntwo-b\r\n--c--\r\n--b--\r\n";

    #[test]
    fn sections_resolve_as_rfc_3501_numbers_them() {
        let msg = MSG.as_bytes();
        let top = mime::parse(msg);
        let sec = |part: &[u32], text: SectionText| {
            section_bytes(
                msg,
                &top,
                &Section {
                    part: part.to_vec(),
                    text,
                },
            )
            .map(|b| String::from_utf8(b).unwrap())
        };
        assert_eq!(sec(&[1], SectionText::Full).as_deref(), Some("one"));
        assert_eq!(
            sec(&[1], SectionText::Mime).as_deref(),
            Some("Content-Type: text/plain\r\n\r\n")
        );
        assert_eq!(sec(&[2, 1], SectionText::Full).as_deref(), Some("two-a"));
        assert_eq!(sec(&[2, 2], SectionText::Full).as_deref(), Some("two-b"));
        assert_eq!(
            sec(&[2], SectionText::HeaderFields(vec!["subject".into()])).as_deref(),
            Some("Subject: in\r\n\r\n")
        );
        assert_eq!(sec(&[3], SectionText::Full), None);
        assert_eq!(sec(&[1, 2], SectionText::Full), None);
        assert_eq!(
            sec(
                &[],
                SectionText::HeaderFieldsNot(vec!["content-type".into()])
            )
            .as_deref(),
            Some("Subject: s\r\n\r\n")
        );
        let mut bs = Vec::new();
        body_structure(&mut bs, msg, &top, false);
        let bs = String::from_utf8(bs).unwrap();
        assert!(bs.starts_with("((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 0)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" "), "{bs}");
        assert!(bs.ends_with(" \"alternative\") 10) \"mixed\")"), "{bs}");
        assert_eq!(internal_date(0), "\"01-Jan-1970 00:00:00 +0000\"");
        assert_eq!(clip(10, Some((8, 5))), (8, 2));
        assert_eq!(clip(10, Some((80, 5))), (10, 0));
    }

    #[test]
    fn bodystructure_merges_rfc2231_continuations() {
        let msg = b"Content-Type: application/pdf; name*0=\"very long \"; name*1=\"name.pdf\"\r\nContent-Disposition: attachment; filename*0=\"very long \";\r\n filename*1=\"name.pdf\"\r\n\r\nx\r\n";
        let top = crate::message::mime::parse(msg);
        let mut bs = Vec::new();
        body_structure(&mut bs, msg, &top, true);
        let bs = String::from_utf8(bs).unwrap();
        assert!(
            bs.starts_with("(\"application\" \"pdf\" (\"name\" \"very long name.pdf\") "),
            "{bs}"
        );
        assert!(
            bs.contains(" (\"attachment\" (\"filename\" \"very long name.pdf\")) "),
            "{bs}"
        );
    }

    #[test]
    fn content_language_is_a_list_of_tags() {
        let msg = b"Content-Type: text/plain\r\nContent-Language: en, de\r\n\r\nx\r\n";
        let top = crate::message::mime::parse(msg);
        let mut bs = Vec::new();
        body_structure(&mut bs, msg, &top, true);
        let bs = String::from_utf8(bs).unwrap();
        assert!(bs.ends_with(" NIL NIL (\"en\" \"de\") NIL)"), "{bs}");
    }
}
