//! SEARCH (RFC 3501 6.4.4): every key, evaluated per message. The file is
//! read only when a key needs it (header, body, text, sent date), and only
//! once per message. TEXT and BODY compare decoded text (transfer encoding
//! and charset undone, RFC 2047 words in headers decoded), ignoring case.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::fetch::{self, Loaded};
use super::index::{Index, Record, Scope};
use super::mailbox::{Msg, Selected};
use crate::message::mime;
use crate::proto::imap::SearchKey;
use crate::proto::imap::command::{Date, days_from_civil};

/// Messages per batch of [`fill_texts`], and the most bytes of message
/// files one batch reads (its records are appended before the next).
const FILL_BATCH: usize = 256;
const FILL_BATCH_BYTES: u64 = 8 << 20;
/// Records a worker of [`fill_texts`] hands over at once, and the most
/// bytes of message files they come from.
const SEND_BATCH: usize = 16;
const SEND_BATCH_BYTES: u64 = 1 << 20;

/// A message [`fill_texts`] computes: its index in the view, its file size,
/// and the ENVELOPE of its partial record if it has one.
type Missing = (usize, u64, Option<Box<[u8]>>);

/// Computes the index records a TEXT or BODY search needs and the index
/// lacks (or has only the ENVELOPE of), on a few threads at once: the
/// client waits for the answer, so every core is its. The records are
/// appended batch by batch (memory: one batch). Messages whose record
/// cannot be computed are left to the search, which reads them itself.
/// Records of messages gone from the folder are pruned when they are many.
pub fn fill_texts(sel: &Selected, idx: &mut Index) {
    // With the ENVELOPE of a partial record (a FETCH ENVELOPE made it from
    // the same file): it is not computed again.
    let missing: Vec<Missing> = (0..sel.msgs.len())
        .filter(|&i| !sel.msgs[i].gone)
        .filter_map(|i| {
            let m = &sel.msgs[i];
            let size = m.size(&sel.path)?;
            match idx.get(m.base(), size) {
                None => Some((i, size, None)),
                Some(meta) if !meta.is_full() => Some((i, size, Some(meta.envelope.clone()))),
                Some(_) => None,
            }
        })
        .collect();
    if missing.is_empty() {
        return;
    }
    // Each worker takes the next message as it finishes one (a split by
    // count left one core idle behind the other's big messages), and this
    // thread appends the records as they come, a batch at a time, while
    // the workers go on: no barrier per batch, no core waiting for a write.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let next = AtomicUsize::new(0);
    let missing = &missing[..];
    let compute = |k: usize| -> Option<(Record, u64)> {
        let (i, size, envelope) = &missing[k];
        let base = sel.msgs[*i].base();
        sel.open_file(*i)
            .and_then(|f| Record::compute_with(f, base, envelope.as_deref()))
            .map(|r| (r, *size))
    };
    let written = std::thread::scope(|scope| {
        // Each worker sends a few records at a time: one wake-up of this
        // thread per record cost a tenth of the CPU.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(Record, u64)>>(2 * workers);
        for _ in 0..workers {
            let (tx, next, compute) = (tx.clone(), &next, &compute);
            scope.spawn(move || {
                let mut out = Vec::with_capacity(SEND_BATCH);
                let mut bytes = 0;
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= missing.len() {
                        break;
                    }
                    // Gone, its file unreadable, or a fault in the parser
                    // (a worker's panic stays in the worker, as it did when
                    // each was joined): left to the search.
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| compute(k)));
                    if let Ok(Some(r)) = r {
                        bytes += r.1;
                        out.push(r);
                    }
                    if out.len() >= SEND_BATCH || bytes >= SEND_BATCH_BYTES {
                        if tx.send(std::mem::take(&mut out)).is_err() {
                            return;
                        }
                        bytes = 0;
                    }
                }
                if !out.is_empty() {
                    let _ = tx.send(out);
                }
            });
        }
        drop(tx);
        let mut batch = Vec::with_capacity(FILL_BATCH);
        let mut bytes = 0u64;
        for (record, size) in rx.iter().flatten() {
            bytes += size;
            batch.push(record);
            if batch.len() >= FILL_BATCH || bytes >= FILL_BATCH_BYTES {
                if idx.append(&batch).is_err() {
                    // Not writable: the search reads the files itself
                    // (the workers stop at their next send).
                    return false;
                }
                batch.clear();
                bytes = 0;
            }
        }
        batch.is_empty() || idx.append(&batch).is_ok()
    });
    if !written {
        return;
    }
    let present: std::collections::HashSet<&str> = sel.msgs.iter().map(Msg::base).collect();
    idx.prune(&|b| present.contains(b));
}

/// What is known of one message while its keys are evaluated.
pub struct Candidate<'a> {
    pub sel: &'a Selected,
    pub index: usize,
    pub seq: u32,
    loaded: Option<Option<Loaded>>,
    texts: Option<Vec<String>>,
    /// The folder's index, when the caller holds it.
    cache: Option<&'a mut Index>,
    /// The message's index record, computed here (`Some(None)`: tried).
    record: Option<Option<Record>>,
}

impl<'a> Candidate<'a> {
    pub fn new(sel: &'a Selected, index: usize, cache: Option<&'a mut Index>) -> Candidate<'a> {
        Candidate {
            sel,
            index,
            seq: index as u32 + 1,
            loaded: None,
            texts: None,
            cache,
            record: None,
        }
    }

    fn msg(&self) -> &Msg {
        &self.sel.msgs[self.index]
    }

    fn loaded(&mut self) -> Option<&Loaded> {
        if self.loaded.is_none() {
            let l = self
                .sel
                .open_file(self.index)
                .and_then(|f| fetch::load(f).ok());
            self.loaded = Some(l);
        }
        self.loaded.as_ref().and_then(|l| l.as_ref())
    }

    /// Decoded, lower-cased text of every text leaf.
    fn body_texts(&mut self) -> &[String] {
        if self.texts.is_none() {
            let texts = match self.loaded() {
                Some(l) => mime::leaves(&l.mime)
                    .into_iter()
                    .filter_map(|p| mime::leaf_text(&l.bytes, p))
                    .map(|t| t.to_lowercase())
                    .collect(),
                None => Vec::new(),
            };
            self.texts = Some(texts);
        }
        self.texts.as_deref().unwrap_or(&[])
    }

    fn header_values(&mut self, name: &str) -> Vec<String> {
        let Some(l) = self.loaded() else {
            return Vec::new();
        };
        let header = &l.bytes[l.mime.header.clone()];
        let mut out: Vec<String> = mime::fields(header)
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| String::from_utf8_lossy(&v).to_lowercase())
            .collect();
        // RFC 2047 words decoded too, so a search in UTF-8 finds them.
        if let Some(parsed) = mail_parser::MessageParser::default().parse_headers(header) {
            for h in parsed.headers() {
                if h.name().eq_ignore_ascii_case(name) {
                    out.push(value_text(h.value()).to_lowercase());
                }
            }
        }
        out
    }

    fn all_header_text(&mut self) -> String {
        let Some(l) = self.loaded() else {
            return String::new();
        };
        header_text(&l.bytes[l.mime.header.clone()])
    }

    /// TEXT or BODY answered from the folder's index (the message's record
    /// computed now, and kept for the index, when it lacks one); `None`
    /// when the index cannot answer.
    fn indexed_text(&mut self, needle: &[u8], scope: Scope) -> Option<bool> {
        if needle.contains(&0) {
            return None;
        }
        let needle = String::from_utf8_lossy(needle).to_lowercase();
        let m = &self.sel.msgs[self.index];
        let idx = self.cache.as_deref_mut()?;
        let size = m.size(&self.sel.path)?;
        if let Some(hit) = idx.text_contains((m.base(), size), needle.as_bytes(), scope) {
            return Some(hit);
        }
        if self.record.is_none() {
            let base = m.base().to_owned();
            self.record = Some(
                self.sel
                    .open_file(self.index)
                    .and_then(|f| Record::compute(f, &base)),
            );
        }
        let r = self.record.as_ref()?.as_ref()?;
        Some(r.text_contains(needle.as_bytes(), scope))
    }

    /// The record computed for the index, if any.
    pub fn take_record(&mut self) -> Option<Record> {
        self.record.take().flatten()
    }

    fn sent_date(&mut self) -> Option<Date> {
        let l = self.loaded()?;
        let header = &l.bytes[l.mime.header.clone()];
        let parsed = mail_parser::MessageParser::default().parse_headers(header)?;
        let d = parsed.date()?;
        // RFC 3501 6.4.4: the date disregarding time and time zone.
        Some(Date(days_from_civil(
            d.year as i64,
            d.month as u32,
            d.day as u32,
        )))
    }

    fn internal_day(&self) -> Option<Date> {
        let f = self.sel.open_file(self.index)?;
        let t = f.metadata().ok()?.modified().ok()?;
        let secs = t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Some(Date(secs.div_euclid(86400)))
    }
}

/// What SEARCH TEXT looks in a header for, lower-cased: the header as it
/// is, then once more the value of each field that is folded or holds
/// RFC 2047 words, unfolded and decoded, so that a search finds words a
/// fold splits or another charset spells (as Dovecot's TEXT does). The
/// other fields' values are in the raw text already as they would decode.
/// `Received:` fields are not repeated: nobody searches their unfolded
/// form, and they are the bulk of many headers.
pub fn header_text(header: &[u8]) -> String {
    let mut text = String::with_capacity(header.len() + header.len() / 4);
    push_lowercase(&mut text, &mime::lossy(header));
    // The fields with encoded words, for mail-parser's decoders (one parse
    // for all of them: they are few, and the parse is the costly part).
    let mut encoded = Vec::new();
    for field in field_spans(header) {
        let Some(colon) = memchr::memchr(b':', field) else {
            continue;
        };
        if field[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"received")
        {
            continue;
        }
        let value = &field[colon + 1..];
        if memchr::memmem::find(value, b"=?").is_some() {
            encoded.extend_from_slice(field);
            if !field.ends_with(b"\n") {
                encoded.extend_from_slice(b"\r\n");
            }
        } else if memchr::memchr(b'\n', value.trim_ascii_end()).is_some() {
            let unfolded: Vec<u8> = value
                .trim_ascii()
                .iter()
                .copied()
                .filter(|&b| b != b'\r' && b != b'\n')
                .collect();
            text.push('\n');
            push_lowercase(&mut text, &mime::lossy(&unfolded));
        }
    }
    if !encoded.is_empty() {
        encoded.extend_from_slice(b"\r\n");
        if let Some(parsed) = crate::message::mime::text_parser().parse_headers(&encoded[..]) {
            let mut value = String::new();
            for h in parsed.headers() {
                text.push('\n');
                value.clear();
                push_value_text(&mut value, h.value());
                push_lowercase(&mut text, &value);
            }
        }
    }
    text
}

/// The fields of a header block, each with its continuation lines and
/// line ends; nothing from the blank line that ends it on.
fn field_spans(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    crate::message::mbox::raw_fields(header)
        .take_while(|f| !f.starts_with(b"\n") && !f.starts_with(b"\r\n"))
}

/// Appends `s.to_lowercase()`, without a new string when `s` is ASCII.
fn push_lowercase(out: &mut String, s: &str) {
    if s.is_ascii() {
        let at = out.len();
        out.push_str(s);
        out[at..].make_ascii_lowercase();
    } else {
        out.push_str(&s.to_lowercase());
    }
}

/// The text of a header value as mail-parser decoded it, appended to `out`.
fn push_value_text(out: &mut String, v: &mail_parser::HeaderValue<'_>) {
    use mail_parser::HeaderValue as H;
    match v {
        H::Text(t) => out.push_str(t),
        H::TextList(l) => {
            for (i, t) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(t);
            }
        }
        H::Address(a) => {
            for (i, addr) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(addr.name.as_deref().unwrap_or(""));
                out.push_str(" <");
                out.push_str(addr.address.as_deref().unwrap_or(""));
                out.push('>');
            }
        }
        H::DateTime(d) => out.push_str(&d.to_rfc822()),
        _ => {}
    }
}

/// [`push_value_text`] into a new string.
fn value_text(v: &mail_parser::HeaderValue<'_>) -> String {
    let mut out = String::new();
    push_value_text(&mut out, v);
    out
}

fn contains(hay: &str, needle: &[u8]) -> bool {
    let needle = String::from_utf8_lossy(needle).to_lowercase();
    hay.contains(&needle)
}

/// Whether a key looks in message text (TEXT or BODY), which the index
/// answers.
pub fn needs_text(key: &SearchKey) -> bool {
    use SearchKey as K;
    match key {
        K::Text(_) | K::Body(_) => true,
        K::And(keys) => keys.iter().any(needs_text),
        K::Not(k) => needs_text(k),
        K::Or(a, b) => needs_text(a) || needs_text(b),
        _ => false,
    }
}

/// Whether a message matches a key. `largest_uid` and `count` give `*`.
pub fn matches(c: &mut Candidate<'_>, key: &SearchKey) -> bool {
    use SearchKey as K;
    let n = c.sel.msgs.len() as u32;
    let largest_uid = c.sel.msgs.last().map_or(0, |m| m.uid);
    match key {
        K::All => true,
        K::And(keys) => keys.iter().all(|k| matches(c, k)),
        K::Not(k) => !matches(c, k),
        K::Or(a, b) => matches(c, a) || matches(c, b),
        K::SeqSet(s) => s.contains(c.seq, n),
        K::Uid(s) => s.contains(c.msg().uid, largest_uid),
        K::Flag(letter, set) => c.msg().flags.has_system(*letter) == *set,
        K::Keyword(name, set) => {
            let has = c
                .sel
                .keywords
                .index_of(name)
                .is_some_and(|i| c.msg().flags.has_keyword(i));
            has == *set
        }
        K::New => c.msg().recent && !c.msg().flags.has_system(b'S'),
        K::Old => !c.msg().recent,
        K::Recent => c.msg().recent,
        K::Header(name, needle) => {
            let values = c.header_values(name);
            if needle.is_empty() {
                !values.is_empty()
            } else {
                values.iter().any(|v| contains(v, needle))
            }
        }
        K::Body(needle) => {
            if let Some(hit) = c.indexed_text(needle, Scope::Body) {
                return hit;
            }
            let needle = needle.clone();
            c.body_texts().iter().any(|t| contains(t, &needle))
        }
        K::Text(needle) => {
            if let Some(hit) = c.indexed_text(needle, Scope::All) {
                return hit;
            }
            let needle = needle.clone();
            contains(&c.all_header_text(), &needle)
                || c.body_texts().iter().any(|t| contains(t, &needle))
        }
        K::Before(d) => c.internal_day().is_some_and(|x| x < *d),
        K::On(d) => c.internal_day().is_some_and(|x| x == *d),
        K::Since(d) => c.internal_day().is_some_and(|x| x >= *d),
        K::SentBefore(d) => c.sent_date().is_some_and(|x| x < *d),
        K::SentOn(d) => c.sent_date().is_some_and(|x| x == *d),
        K::SentSince(d) => c.sent_date().is_some_and(|x| x >= *d),
        K::Larger(size) => c.msg().vsize(&c.sel.path) > *size,
        K::Smaller(size) => c.msg().vsize(&c.sel.path) < *size,
        // RFC 7162 3.1.5: changed at or after the given mod-sequence.
        K::ModSeq(m) => c.sel.modseq_of(c.msg().uid) >= *m,
    }
}

/// `key` with its strings (HEADER's value, BODY, TEXT) decoded from a
/// SEARCH CHARSET by `decode` into the UTF-8 the search runs on.
pub fn recode(key: SearchKey, decode: fn(&[u8]) -> String) -> SearchKey {
    match key {
        SearchKey::And(keys) => {
            SearchKey::And(keys.into_iter().map(|k| recode(k, decode)).collect())
        }
        SearchKey::Not(k) => SearchKey::Not(Box::new(recode(*k, decode))),
        SearchKey::Or(a, b) => {
            SearchKey::Or(Box::new(recode(*a, decode)), Box::new(recode(*b, decode)))
        }
        SearchKey::Header(name, value) => SearchKey::Header(name, decode(&value).into_bytes()),
        SearchKey::Body(v) => SearchKey::Body(decode(&v).into_bytes()),
        SearchKey::Text(v) => SearchKey::Text(decode(&v).into_bytes()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::header_text;

    #[test]
    fn header_text_repeats_folded_and_encoded_fields_decoded_and_nothing_else() {
        let header = b"Received: from a\r\n\tby b\r\n\
Subject: =?iso-8859-1?q?K=E4se?= and\r\n more\r\n\
To: Ann <ann@example.org>,\r\n  Bob <bob@example.org>\r\n\
From: Carl <carl@example.org>\r\n\
X-Bad line without a colon\r\n\
\r\n";
        let text = header_text(header);
        let (raw, decoded) = text.split_at(header.len());
        // The header as it is, lower-cased.
        assert_eq!(raw.as_bytes(), header.to_ascii_lowercase());
        let decoded: Vec<&str> = decoded.split('\n').skip(1).collect();
        // A folded field unfolded (a phrase across the fold is found), an
        // encoded one decoded (and unfolded by mail-parser); Received and
        // the plain one-line field not repeated.
        assert_eq!(
            decoded,
            [
                "ann <ann@example.org>,  bob <bob@example.org>",
                "käse and more"
            ]
        );
        // Nothing after the blank line is a field.
        let with_body = [&header[..], b"Body: looks\r\n like a field\r\n"].concat();
        assert_eq!(
            header_text(&with_body).matches('\n').count(),
            text.matches('\n').count() + 2
        );
        assert!(!header_text(&with_body).contains("looks like"));
    }
}
