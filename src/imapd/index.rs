//! `ownmail.index`: a per-folder cache of what FETCH and SEARCH would
//! otherwise read every message for: the IMAP size, the ENVELOPE, BODY and
//! BODYSTRUCTURE as sent, and the decoded, lower-cased text SEARCH TEXT and
//! BODY look in.
//!
//! A record may be partial: the ENVELOPE alone (BODY empty, no text), as a
//! FETCH of ENVELOPE computed it from the header. It serves ENVELOPE; a
//! FETCH of BODY or BODYSTRUCTURE, or a SEARCH of the text, computes the
//! whole record then and appends it (the later record of a name wins).
//! The index is filled this way, by the work clients ask for, not by a
//! pass of its own over every message competing with them.
//!
//! The cache is never the only copy of anything: every record is computed
//! from the message file, keyed by the file's base name (which flag changes
//! do not touch) and checked against the file's size, so a record for
//! another message can never be used. Flags stay in the file names, UIDs in
//! `dovecot-uidlist`. Losing the file costs only time.
//!
//! # Format
//!
//! ```text
//! "ownmail-index 3\n"                      16 bytes, the version
//! record*: len u32 LE, crc32 u32 LE, payload (len bytes)
//! payload: base, size u64, vsize u64, envelope, body, bodystructure,
//!          header text length u32, text
//!          (strings and byte strings as u32 LE length + bytes)
//! ```
//!
//! Records are appended, each in one `write(2)` on an `O_APPEND` file, so
//! several processes may add to it at once. Reading stops at the first
//! record that is cut short or fails its checksum; the file is then
//! rewritten without the damage (into a temporary file, renamed into place).
//! A file with another version line is replaced.
//!
//! This module reads message files and its own file; it never writes a
//! message, a flag or a UID.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use memchr::memmem;

use super::fetch;
use crate::message::mime;

pub const FILE_NAME: &str = "ownmail.index";
/// Version 2: records may be partial (version 1 readers would serve an
/// empty BODY from them, so they replace this file rather than read it).
/// Version 3: the header text repeats only folded or encoded fields
/// ([`super::search::header_text`]); older texts are computed again, so
/// that every message of a folder answers a search by the same rule.
const MAGIC: &[u8; 16] = b"ownmail-index 3\n";
/// A record larger than this is damage.
const MAX_RECORD: usize = 64 * 1024 * 1024;
/// Messages larger than this are not cached (SEARCH reads them as before):
/// the cache must stay a fraction of the mail.
pub const MAX_MESSAGE: u64 = 16 * 1024 * 1024;
/// The whole file is never read beyond this.
const MAX_FILE: u64 = 4 * 1024 * 1024 * 1024;

/// What the cache knows of one message (the text stays on disk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The raw file size the record was computed from.
    pub size: u64,
    /// RFC822.SIZE: the size with CRLF line ends.
    pub vsize: u64,
    pub envelope: Box<[u8]>,
    pub body: Box<[u8]>,
    pub bodystructure: Box<[u8]>,
    /// Where the text is in the file, and how long it is.
    text_at: u64,
    text_len: u32,
    /// The header part of the text (before the NUL that ends it).
    header_len: u32,
}

impl Meta {
    /// Whether the record has everything (else the ENVELOPE alone).
    pub fn is_full(&self) -> bool {
        !self.body.is_empty()
    }
}

/// A record as computed from a message file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub base: String,
    pub size: u64,
    pub vsize: u64,
    pub envelope: Vec<u8>,
    pub body: Vec<u8>,
    pub bodystructure: Vec<u8>,
    /// Lower-cased: the header text (raw and RFC 2047 decoded), a NUL,
    /// then every text leaf decoded, NUL-separated.
    pub text: Vec<u8>,
    pub header_len: u32,
}

/// Which text a search looks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Header and body (SEARCH TEXT).
    All,
    /// The body's text leaves (SEARCH BODY).
    Body,
}

/// One folder's cache, loaded.
#[derive(Debug)]
pub struct Index {
    path: PathBuf,
    metas: HashMap<Box<str>, Meta>,
    /// The file read, as opened (texts are read from this inode even when
    /// another process renamed a new file into place meanwhile).
    file: Option<File>,
    ino: u64,
    /// How far the file has been read.
    read_to: u64,
    /// Buffer for texts.
    scratch: Vec<u8>,
}

/// `Write::write_all_vectored` (not stable): every slice written, in order.
fn write_all_vectored(f: &mut File, mut slices: &mut [io::IoSlice<'_>]) -> io::Result<()> {
    io::IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match f.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

impl Record {
    /// Whether the record's text contains `needle` (lower-cased, no NUL).
    pub fn text_contains(&self, needle: &[u8], scope: Scope) -> bool {
        let hay = match scope {
            Scope::All => &self.text[..],
            Scope::Body => self.text.get(self.header_len as usize..).unwrap_or(&[]),
        };
        memmem::find(hay, needle).is_some()
    }

    /// A partial record: the ENVELOPE as computed from the header of a file
    /// of `size` bytes.
    pub fn envelope_only(base: &str, size: u64, envelope: Vec<u8>) -> Record {
        Record {
            base: base.to_owned(),
            size,
            vsize: 0,
            envelope,
            body: Vec::new(),
            bodystructure: Vec::new(),
            text: Vec::new(),
            header_len: 0,
        }
    }

    /// Computes a message's record from its file; `None` when it cannot be
    /// read or is too large to cache.
    pub fn compute(file: File, base: &str) -> Option<Record> {
        Record::compute_with(file, base, None)
    }

    /// [`Record::compute`], taking the ENVELOPE from a partial record of the
    /// same file (`envelope`: a FETCH ENVELOPE computed it from the same
    /// header) instead of computing it again.
    pub fn compute_with(file: File, base: &str, envelope: Option<&[u8]>) -> Option<Record> {
        let size = file.metadata().ok()?.len();
        if size > MAX_MESSAGE {
            return None;
        }
        let mut raw = Vec::with_capacity(size as usize);
        file.take(MAX_MESSAGE).read_to_end(&mut raw).ok()?;
        let size = raw.len() as u64;
        let bytes = mime::to_crlf(&raw);
        drop(raw);
        let part = mime::parse(&bytes);
        let header = &bytes[part.header.clone()];
        let envelope = match envelope {
            Some(e) => e.to_vec(),
            None => {
                let mut e = Vec::new();
                fetch::envelope(&mut e, header);
                e
            }
        };
        let mut body = Vec::new();
        fetch::body_structure(&mut body, &bytes, &part, false);
        let mut bodystructure = Vec::new();
        fetch::body_structure(&mut bodystructure, &bytes, &part, true);
        // A NUL in the text stops a match as the separators do: a needle
        // has none (SEARCH compares each part on its own).
        let mut text = super::search::header_text(header).into_bytes();
        let header_len = text.len() as u32;
        text.reserve(bytes.len() - header.len());
        for leaf in mime::leaves(&part) {
            push_leaf_text(&mut text, &bytes, leaf);
        }
        Some(Record {
            base: base.to_owned(),
            size,
            vsize: bytes.len() as u64,
            envelope,
            body,
            bodystructure,
            text,
            header_len,
        })
    }

    /// The record as written: length, checksum, payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_head(out);
        out.extend_from_slice(&self.text);
    }

    /// [`Record::encode`] but for the text, which follows it in the file:
    /// length and checksum (both of the whole payload), then the payload
    /// up to its text.
    fn encode_head(&self, out: &mut Vec<u8>) {
        // Written in place behind a head filled in last (no second copy).
        let head = out.len();
        out.extend_from_slice(&[0; 8]);
        let p = &mut *out;
        put_bytes(p, self.base.as_bytes());
        p.extend_from_slice(&self.size.to_le_bytes());
        p.extend_from_slice(&self.vsize.to_le_bytes());
        put_bytes(p, &self.envelope);
        put_bytes(p, &self.body);
        put_bytes(p, &self.bodystructure);
        p.extend_from_slice(&self.header_len.to_le_bytes());
        p.extend_from_slice(&(self.text.len() as u32).to_le_bytes());
        let len = (out.len() - head - 8 + self.text.len()) as u32;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&out[head + 8..]);
        crc.update(&self.text);
        out[head..head + 4].copy_from_slice(&len.to_le_bytes());
        out[head + 4..head + 8].copy_from_slice(&crc.finalize().to_le_bytes());
    }

    /// What the index keeps of the record, its text at `text_at`.
    fn meta(&self, text_at: u64) -> Meta {
        Meta {
            size: self.size,
            vsize: self.vsize,
            envelope: self.envelope.as_slice().into(),
            body: self.body.as_slice().into(),
            bodystructure: self.bodystructure.as_slice().into(),
            text_at,
            text_len: self.text.len() as u32,
            header_len: self.header_len,
        }
    }
}

/// Appends a leaf's decoded, lower-cased text to `text` after a NUL; nothing
/// for a leaf without text. The plain case ([`mime::quick_leaf_text`]) is
/// decoded without a parse by mail-parser, and lower-cased in place when
/// ASCII; the rest is decoded by [`mime::leaf_text`]. Both give the same
/// bytes (tested over the corpus).
pub fn push_leaf_text(text: &mut Vec<u8>, msg: &[u8], leaf: &mime::Part) {
    let t = match mime::quick_leaf_text(msg, leaf) {
        Some(t) => t,
        None => match mime::leaf_text(msg, leaf) {
            Some(t) => std::borrow::Cow::Owned(t),
            None => return,
        },
    };
    text.push(0);
    if t.is_ascii() {
        let at = text.len();
        text.extend_from_slice(t.as_bytes());
        text[at..].make_ascii_lowercase();
    } else {
        text.extend_from_slice(t.to_lowercase().as_bytes());
    }
}

/// A reader over one payload; `None` when it runs short.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// Parses one payload found at `payload_at` in the file.
fn decode(p: &[u8], payload_at: u64) -> Option<(Box<str>, Meta)> {
    let mut c = Cursor { b: p, at: 0 };
    let base = std::str::from_utf8(c.bytes()?).ok()?.into();
    let size = c.u64()?;
    let vsize = c.u64()?;
    let envelope = c.bytes()?.into();
    let body = c.bytes()?.into();
    let bodystructure = c.bytes()?.into();
    let header_len = c.u32()?;
    let text_len = c.u32()?;
    let text_at = payload_at + c.at as u64;
    c.take(text_len as usize)?;
    (c.at == p.len() && header_len <= text_len).then_some((
        base,
        Meta {
            size,
            vsize,
            envelope,
            body,
            bodystructure,
            text_at,
            text_len,
            header_len,
        },
    ))
}

/// Reads records from `bytes` (the file from offset `start`): the good
/// ones, and how many bytes they cover.
fn parse_records(bytes: &[u8], start: u64, into: &mut HashMap<Box<str>, Meta>) -> usize {
    let mut at = 0usize;
    while bytes.len() - at >= 8 {
        let len =
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let crc = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        if len > MAX_RECORD || bytes.len() - at - 8 < len {
            break;
        }
        let p = &bytes[at + 8..at + 8 + len];
        if crc32fast::hash(p) != crc {
            break;
        }
        let Some((base, meta)) = decode(p, start + at as u64 + 8) else {
            break;
        };
        into.insert(base, meta);
        at += 8 + len;
    }
    at
}

impl Index {
    /// The folder's cache, read from its file (rebuilt empty when missing,
    /// of another version, or damaged past its good records).
    pub fn open(folder: &Path) -> Index {
        let mut index = Index {
            path: folder.join(FILE_NAME),
            metas: HashMap::new(),
            file: None,
            ino: 0,
            read_to: 0,
            scratch: Vec::new(),
        };
        index.reload();
        index
    }

    /// How many messages the cache knows.
    pub fn len(&self) -> usize {
        self.metas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.metas.is_empty()
    }

    fn reload(&mut self) {
        self.metas.clear();
        self.file = None;
        self.read_to = 0;
        match self.read_from_start() {
            Ok(true) => {}
            Ok(false) => {
                // Missing, another version, or damaged: write what was good.
                if let Err(e) = self.rewrite() {
                    tracing::debug!(path = %self.path.display(), "index not written: {e}");
                }
            }
            Err(e) => tracing::debug!(path = %self.path.display(), "index not read: {e}"),
        }
    }

    /// Reads the whole file, one record at a time (memory: the largest
    /// record); `Ok(false)` when it must be rewritten.
    fn read_from_start(&mut self) -> io::Result<bool> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let md = file.metadata()?;
        let total = md.len().min(MAX_FILE);
        let mut r = io::BufReader::with_capacity(64 * 1024, &file);
        let mut magic = [0u8; MAGIC.len()];
        if r.read_exact(&mut magic).is_err() || &magic != MAGIC {
            return Ok(false);
        }
        let mut at = MAGIC.len() as u64;
        let mut rec = Vec::new();
        while total - at >= 8 {
            let mut head = [0u8; 8];
            r.read_exact(&mut head)?;
            let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            if len > MAX_RECORD || total - at - 8 < len as u64 {
                break;
            }
            rec.clear();
            rec.extend_from_slice(&head);
            rec.resize(8 + len, 0);
            r.read_exact(&mut rec[8..])?;
            if parse_records(&rec, at, &mut self.metas) != rec.len() {
                break;
            }
            at += rec.len() as u64;
            if rec.capacity() > 1024 * 1024 {
                rec = Vec::new();
            }
        }
        drop(r);
        self.read_to = at;
        self.ino = md.ino();
        self.file = Some(file);
        Ok(at == md.len())
    }

    /// Writes the good records known into a new file, renamed into place.
    fn rewrite(&mut self) -> io::Result<()> {
        let mut out = MAGIC.to_vec();
        let mut metas = HashMap::with_capacity(self.metas.len());
        if let Some(file) = &self.file {
            let mut kept: Vec<(&Box<str>, &Meta)> = self.metas.iter().collect();
            kept.sort_by_key(|(_, m)| m.text_at);
            for (base, m) in kept {
                let mut text = vec![0; m.text_len as usize];
                if file.read_exact_at(&mut text, m.text_at).is_err() {
                    continue;
                }
                let r = Record {
                    base: base.to_string(),
                    size: m.size,
                    vsize: m.vsize,
                    envelope: m.envelope.to_vec(),
                    body: m.body.to_vec(),
                    bodystructure: m.bodystructure.to_vec(),
                    text,
                    header_len: m.header_len,
                };
                let at = out.len();
                r.encode(&mut out);
                if let Some((b, meta)) = decode(&out[at + 8..], at as u64 + 8) {
                    metas.insert(b, meta);
                }
            }
        }
        let tmp = self.path.with_file_name(format!(
            "{FILE_NAME}.tmp.{}.{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&out)?;
            // Not fsynced: losing the cache costs only time.
            fs::rename(&tmp, &self.path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written?;
        let file = File::open(&self.path)?;
        self.ino = file.metadata()?.ino();
        self.file = Some(file);
        self.read_to = out.len() as u64;
        self.metas = metas;
        Ok(())
    }

    /// Reads what other processes (or other folders' sessions) appended
    /// since; reloads when the file was replaced or cut short.
    pub fn catch_up(&mut self) {
        let Ok(md) = fs::metadata(&self.path) else {
            self.reload();
            return;
        };
        if self.file.is_none() || md.ino() != self.ino || md.len() < self.read_to {
            self.reload();
            return;
        }
        if md.len() == self.read_to {
            return;
        }
        let Some(file) = &self.file else { return };
        let mut bytes = vec![0; (md.len() - self.read_to).min(MAX_FILE) as usize];
        if file.read_exact_at(&mut bytes, self.read_to).is_err() {
            return;
        }
        let good = parse_records(&bytes, self.read_to, &mut self.metas);
        self.read_to += good as u64;
        if good < bytes.len() {
            // A record cut short: perhaps still being written by another
            // process. Damage that stays is found by the next reload.
            tracing::debug!(path = %self.path.display(), "index: partial record at {}", self.read_to);
        }
    }

    /// The cached facts of a message, when they were computed from a file
    /// of this size (a record for any other file is never used).
    pub fn get(&self, base: &str, size: u64) -> Option<&Meta> {
        self.metas.get(base).filter(|m| m.size == size)
    }

    /// Whether a message is known (whatever its size).
    pub fn contains(&self, base: &str) -> bool {
        self.metas.contains_key(base)
    }

    /// Whether a message's whole record is known (whatever its size).
    pub fn contains_full(&self, base: &str) -> bool {
        self.metas.get(base).is_some_and(Meta::is_full)
    }

    /// Appends records (one `writev(2)`, the texts written from where they
    /// are, not copied) and takes them in.
    pub fn append(&mut self, records: &[Record]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            self.rewrite()?;
        }
        // A partial record never hides a whole one (another process may
        // have appended it since the caller looked).
        let records: Vec<&Record> = records
            .iter()
            .filter(|r| !(r.body.is_empty() && self.contains_full(&r.base)))
            .collect();
        // Each record's head, and where its text goes in what is written.
        let mut heads = Vec::with_capacity(records.len() * 512);
        let mut spans = Vec::with_capacity(records.len());
        let mut len = 0u64;
        for r in &records {
            let at = heads.len();
            r.encode_head(&mut heads);
            len += (heads.len() - at) as u64;
            spans.push((at..heads.len(), len));
            len += r.text.len() as u64;
        }
        let mut f = OpenOptions::new().append(true).open(&self.path)?;
        // At most IOV_MAX (1024) pieces a call: a record's two never split.
        for (chunk, recs) in spans.chunks(512).zip(records.chunks(512)) {
            let mut slices: Vec<io::IoSlice<'_>> = chunk
                .iter()
                .zip(recs)
                .flat_map(|((h, _), r)| {
                    [
                        io::IoSlice::new(&heads[h.clone()]),
                        io::IoSlice::new(&r.text),
                    ]
                })
                .collect();
            write_all_vectored(&mut f, &mut slices)?;
        }
        let md = f.metadata()?;
        drop(f);
        if md.ino() == self.ino && md.len() == self.read_to + len {
            // Nobody else appended since we last read, nor before our write
            // lands: our records are where we wrote them, taken from memory
            // rather than read back from the file.
            for (r, (_, text_at)) in records.iter().zip(&spans) {
                self.metas
                    .insert(r.base.as_str().into(), r.meta(self.read_to + text_at));
            }
            self.read_to += len;
        } else {
            self.catch_up();
        }
        if !records.iter().all(|r| self.contains(&r.base)) {
            // Damage before our records stops every reader: rewrite.
            self.reload();
        }
        Ok(())
    }

    /// Whether the cached text of a message contains `needle` (already
    /// lower-cased, without NUL); `None` when it could not be read.
    pub fn text_contains(
        &mut self,
        meta_of: (&str, u64),
        needle: &[u8],
        scope: Scope,
    ) -> Option<bool> {
        let m = self.get(meta_of.0, meta_of.1).filter(|m| m.is_full())?;
        let (at, len, header_len) = (m.text_at, m.text_len as usize, m.header_len as usize);
        let file = self.file.as_ref()?;
        self.scratch.resize(len, 0);
        file.read_exact_at(&mut self.scratch, at).ok()?;
        let hay = match scope {
            Scope::All => &self.scratch[..],
            Scope::Body => &self.scratch[header_len.min(len)..],
        };
        let found = memmem::find(hay, needle).is_some();
        // Bounded: a huge text is not kept around.
        if self.scratch.capacity() > 1024 * 1024 {
            self.scratch = Vec::new();
        }
        Some(found)
    }

    /// Drops records of messages no longer in the folder, when they are
    /// more than half of the file (rewritten then).
    pub fn prune(&mut self, present: &dyn Fn(&str) -> bool) {
        let gone = self.metas.keys().filter(|b| !present(b)).count();
        if gone > 64 && gone * 2 > self.metas.len() {
            self.metas.retain(|b, _| present(b));
            if let Err(e) = self.rewrite() {
                tracing::debug!(path = %self.path.display(), "index not rewritten: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imapd::mailbox::Selected;
    use crate::imapd::search::{self, Candidate};
    use crate::proto::imap::SearchKey;
    use crate::store::MailboxName;

    const PLAIN: &str = "From: =?UTF-8?B?SsO8cmdlbg==?= <j@example.org>\nSubject: Hello world\nDate: Tue, 1 Jul 2025 10:00:00 +0000\n\nThe quick brown FOX jumps.\n";
    const MIME: &str = "From: a@example.org\nSubject: parts\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\nR3LDvMOfZSBhdXMgS8O2bG4K\n--b\nContent-Type: text/html\n\n<p>Viagra <b>offer</b></p>\n--b--\n";

    fn folder(msgs: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        for (name, body) in msgs {
            fs::write(dir.path().join("cur").join(name), body).unwrap();
        }
        dir
    }

    fn fill(dir: &Path) -> Index {
        let mut idx = Index::open(dir);
        let mut recs = Vec::new();
        for e in fs::read_dir(dir.join("cur")).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let base = crate::store::uidlist::base_name(&name).to_owned();
            recs.push(Record::compute(File::open(e.path()).unwrap(), &base).unwrap());
        }
        idx.append(&recs).unwrap();
        idx
    }

    #[test]
    fn records_survive_a_reopen_and_match_the_files() {
        let d = folder(&[("1.a:2,", PLAIN), ("2.b:2,S", MIME)]);
        let idx = fill(d.path());
        assert_eq!(idx.len(), 2);
        let again = Index::open(d.path());
        assert_eq!(again.metas, idx.metas);
        let m = again.get("1.a", PLAIN.len() as u64).unwrap();
        assert_eq!(m.vsize, (PLAIN.len() + PLAIN.matches('\n').count()) as u64);
        let mut env = Vec::new();
        let header = mime::to_crlf(PLAIN.split("\n\n").next().unwrap().as_bytes());
        fetch::envelope(&mut env, &header);
        assert_eq!(&*m.envelope, &env[..]);
        // A record is used only for a file of the size it was made from.
        assert!(again.get("1.a", PLAIN.len() as u64 + 1).is_none());
        assert!(again.get("3.c", 10).is_none());
    }

    #[test]
    fn a_missing_truncated_corrupt_or_foreign_file_is_rebuilt() {
        let d = folder(&[("1.a:2,", PLAIN), ("2.b:2,S", MIME)]);
        let path = d.path().join(FILE_NAME);
        // Missing: created empty.
        let idx = Index::open(d.path());
        assert!(idx.is_empty());
        assert_eq!(fs::read(&path).unwrap(), MAGIC);
        drop(idx);
        fill(d.path());
        let full = fs::read(&path).unwrap();
        // Cut short inside the second record: the first one kept, the file
        // rewritten without the stump.
        fs::write(&path, &full[..full.len() - 5]).unwrap();
        let idx = Index::open(d.path());
        assert_eq!(idx.len(), 1);
        let rewritten = fs::read(&path).unwrap();
        assert!(rewritten.len() < full.len() - 5);
        assert_eq!(Index::open(d.path()).metas, idx.metas);
        // A flipped byte in the first record's text: its checksum fails and
        // reading stops there.
        fs::write(&path, &full).unwrap();
        let mut bad = full.clone();
        let at = MAGIC.len() + 40;
        bad[at] ^= 0x55;
        fs::write(&path, &bad).unwrap();
        let idx = Index::open(d.path());
        assert!(idx.is_empty());
        assert_eq!(fs::read(&path).unwrap(), MAGIC);
        // Another version (or anything else): replaced.
        fs::write(&path, b"ownmail-index 9\n\x01\x02").unwrap();
        assert!(Index::open(d.path()).is_empty());
        assert_eq!(fs::read(&path).unwrap(), MAGIC);
        // A length field claiming gigabytes is damage, not an allocation.
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 12]);
        fs::write(&path, &huge).unwrap();
        assert!(Index::open(d.path()).is_empty());
    }

    #[test]
    fn appends_by_another_process_are_read_and_a_replaced_file_reloaded() {
        let d = folder(&[("1.a:2,", PLAIN), ("2.b:2,S", MIME)]);
        let mut mine = Index::open(d.path());
        // "Another process": its own handle, appending.
        fill(d.path());
        mine.catch_up();
        assert_eq!(mine.len(), 2);
        // It replaces the file (rewrite after damage): reloaded.
        fs::write(d.path().join(FILE_NAME), MAGIC).unwrap();
        mine.catch_up();
        assert!(mine.is_empty());
    }

    fn search(sel: &Selected, idx: Option<&mut Index>, key: &SearchKey) -> Vec<u32> {
        let mut idx = idx;
        (0..sel.msgs.len())
            .filter(|&i| {
                let mut c = Candidate::new(sel, i, idx.as_deref_mut());
                search::matches(&mut c, key)
            })
            .map(|i| sel.msgs[i].uid)
            .collect()
    }

    #[test]
    fn text_and_body_searches_answer_as_reading_the_files_does() {
        let d = folder(&[("1.a:2,", PLAIN), ("2.b:2,S", MIME)]);
        let sel = Selected::open(MailboxName::inbox(), d.path().into(), true).unwrap();
        let mut idx = fill(d.path());
        let cases: &[(&[u8], &[u32], &[u32])] = &[
            // needle, TEXT hits, BODY hits
            (b"fox", &[1], &[1]),
            (b"J\xc3\x9cRGEN", &[1], &[]),
            (b"hello", &[1], &[]),
            (b"gr\xc3\xbc\xc3\x9fe aus", &[2], &[2]),
            (b"viagra", &[2], &[2]),
            (b"subject", &[1, 2], &[]),
            (b"nothing like it", &[], &[]),
        ];
        for (needle, text, body) in cases {
            for (key, want) in [
                (SearchKey::Text(needle.to_vec()), text),
                (SearchKey::Body(needle.to_vec()), body),
            ] {
                let slow = search(&sel, None, &key);
                let fast = search(&sel, Some(&mut idx), &key);
                assert_eq!(&slow, want, "{key:?} read from the files");
                assert_eq!(&fast, want, "{key:?} from the index");
            }
        }
    }

    #[test]
    fn a_partial_record_serves_the_envelope_and_never_hides_a_whole_one() {
        let d = folder(&[("1.a:2,", PLAIN)]);
        let size = PLAIN.len() as u64;
        let mut idx = Index::open(d.path());
        let env = b"(NIL \"x\")".to_vec();
        idx.append(&[Record::envelope_only("1.a", size, env.clone())])
            .unwrap();
        let again = Index::open(d.path());
        let m = again.get("1.a", size).unwrap();
        assert!(!m.is_full());
        assert_eq!(&*m.envelope, &env[..]);
        // No text to search in: the caller computes it.
        let mut again = again;
        assert_eq!(again.text_contains(("1.a", size), b"fox", Scope::All), None);
        // The whole record replaces it; a partial one after that is not
        // written over it.
        let full = fill(d.path());
        assert!(full.get("1.a", size).unwrap().is_full());
        let mut idx = Index::open(d.path());
        idx.append(&[Record::envelope_only("1.a", size, env)])
            .unwrap();
        let last = Index::open(d.path());
        assert!(last.get("1.a", size).unwrap().is_full());
        assert_eq!(last.metas, full.metas);
    }

    /// Each leaf's text through [`push_leaf_text`] against mail-parser's
    /// (the general path), and which way it went.
    #[test]
    fn leaf_text_fast_path_edge_cases_match_the_general_path() {
        let cases: &[(&str, &str, bool)] = &[
            // (name, message with LF ends, fast path taken for its leaves)
            ("plain", "Subject: a\n\nHello WORLD\n", true),
            ("no header", "\nJust A body\n", true),
            (
                "utf-8 8bit",
                "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\nGr\u{fc}\u{df}e \u{3a3}OS \u{130}\n",
                true,
            ),
            (
                "html",
                "Content-Type: text/html; charset=\"us-ascii\"\n\n<P>Viagra <B>Offer</B></P>\n",
                true,
            ),
            ("no body", "Subject: only a header\nFrom: a@b\n", false),
            ("empty body", "Subject: x\n\n", true),
            (
                "quoted-printable",
                "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nK=E4se soft=\nbreak =3D trailing  \nsoft with space= \nend=\n",
                true,
            ),
            (
                "base64",
                "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: BASE64\n\nR3LDvMOfZSBhdXMgS8O2bG4K\n",
                true,
            ),
            (
                "latin-1, 8 bit",
                "Content-Type: text/plain; charset=iso-8859-1\n\nK\u{e4}se\n",
                true,
            ),
            (
                "quoted-printable with a fault (mail-parser recovers its way)",
                "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: quoted-printable\n\nA ==3D fault =ZZ\n",
                false,
            ),
            (
                "quoted-printable, bad hex kept as it is",
                "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: quoted-printable\n\n100=%, =4 x=\r\n",
                true,
            ),
            (
                "base64 with a fault",
                "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\nR3L!DvM --\n",
                false,
            ),
            (
                "a charset in another parameter's value is not named",
                "Content-Type: text/plain; name=\"charset=koi8-r\"\n\ncaf\u{e9}\n",
                true,
            ),
            (
                "x-charset is not charset",
                "Content-Type: text/plain; x-charset=koi8-r\n\ncaf\u{e9}\n",
                true,
            ),
            (
                "a type without a subtype (text/plain to us)",
                "Content-Type: text; charset=koi8-r\n\n\u{f0}\u{d2}\u{c9}\n",
                false,
            ),
            (
                "koi8-r, 8 bit",
                "Content-Type: text/plain; charset=koi8-r\n\n\u{f0}\u{d2}\u{c9}\n",
                true,
            ),
            (
                "utf-16, base64",
                "Content-Type: text/plain; charset=utf-16le\nContent-Transfer-Encoding: base64\n\nSABpAA==\n",
                true,
            ),
            (
                "uuencode is not decoded here",
                "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: x-uuencode\n\nbegin\n",
                false,
            ),
            (
                "no charset named, 8-bit bytes (mail-parser reads UTF-8, not our default)",
                "Subject: x\n\ncaf\u{e9}\n",
                true,
            ),
            (
                "us-ascii named, 8-bit bytes (mail-parser reads cp1252)",
                "Content-Type: text/plain; charset=us-ascii\n\ncaf\u{e9}\n",
                true,
            ),
            (
                "attachment",
                "Content-Type: text/plain\nContent-Disposition: attachment; filename=a.txt\n\nsecret\n",
                false,
            ),
            (
                "two Content-Types",
                "Content-Type: text/plain\nContent-Type: text/html\n\n<b>x</b>\n",
                false,
            ),
            (
                "white space line ends mail-parser's header",
                "Subject: x\n  \nContent-Type: text/html\n\n<b>x</b>\n",
                false,
            ),
            (
                "RFC 2231 charset",
                "Content-Type: text/plain; charset*=iso-8859-1''\n\nK\u{e4}se\n",
                false,
            ),
            (
                "enriched is not plain",
                "Content-Type: text/enriched\n\n<bold>x</bold>\n",
                false,
            ),
            (
                "multipart: plain, QP html, inner message",
                "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhello --b in the MIDDLE\n--b\nContent-Type: text/html; charset=windows-1252\nContent-Transfer-Encoding: quoted-printable\n\n<p>Caf=E9</p>\n--b\nContent-Type: message/rfc822\n\nSubject: inner\n\nINNER body\n--b--\n",
                true,
            ),
        ];
        for (name, msg, fast) in cases {
            let bytes = mime::to_crlf(msg.as_bytes());
            let part = mime::parse(&bytes);
            let leaves = mime::leaves(&part);
            let mut text = Vec::new();
            let mut general = Vec::new();
            for leaf in &leaves {
                push_leaf_text(&mut text, &bytes, leaf);
                if let Some(t) = mime::leaf_text_whole(&bytes, leaf) {
                    general.push(0);
                    general.extend_from_slice(t.to_lowercase().as_bytes());
                }
            }
            assert_eq!(
                String::from_utf8_lossy(&text),
                String::from_utf8_lossy(&general),
                "{name}"
            );
            assert_eq!(
                mime::quick_leaf_text(&bytes, leaves[0]).is_some(),
                *fast,
                "{name}: fast path"
            );
        }
        // Every leaf of the multipart (the QP one too) is decoded quickly.
        let bytes = mime::to_crlf(cases.last().unwrap().1.as_bytes());
        let part = mime::parse(&bytes);
        let leaves = mime::leaves(&part);
        assert!(
            leaves
                .iter()
                .all(|l| mime::quick_leaf_text(&bytes, l).is_some())
        );
        let mut text = Vec::new();
        for leaf in &leaves {
            push_leaf_text(&mut text, &bytes, leaf);
        }
        assert_eq!(
            text,
            "\0hello --b in the middle\0<p>caf\u{e9}</p>\0inner body".as_bytes()
        );
    }

    #[test]
    fn more_records_than_one_writev_takes_are_all_written_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        let mut idx = Index::open(d.path());
        // 1,100 records: three writev calls of at most 512 each.
        let records: Vec<Record> = (0..1100)
            .map(|i| Record {
                text: format!("text of {i}").into_bytes(),
                header_len: 4,
                body: b"(\"text\" \"plain\")".to_vec(),
                ..Record::envelope_only(&format!("{i}.x"), i, format!("env {i}").into_bytes())
            })
            .collect();
        idx.append(&records).unwrap();
        assert_eq!(idx.len(), 1100);
        let mut again = Index::open(d.path());
        assert_eq!(again.metas, idx.metas);
        assert_eq!(
            again.text_contains(("1099.x", 1099), b"text of 1099", Scope::All),
            Some(true)
        );
        assert_eq!(
            again.text_contains(("513.x", 513), b"text of 512", Scope::All),
            Some(false)
        );
    }

    #[test]
    fn a_stale_record_is_never_used() {
        // No S= in the name: the size is the file's.
        let d = folder(&[("1.a:2,", PLAIN)]);
        let mut idx = fill(d.path());
        // Another message written under the same base name (which Maildir
        // forbids, but a restore from backup might do).
        fs::write(
            d.path().join("cur/1.a:2,"),
            "Subject: other\n\nno animals here at all\n",
        )
        .unwrap();
        let sel = Selected::open(MailboxName::inbox(), d.path().into(), true).unwrap();
        assert_eq!(
            search(&sel, Some(&mut idx), &SearchKey::Text(b"fox".to_vec())),
            Vec::<u32>::new()
        );
        assert_eq!(
            search(&sel, Some(&mut idx), &SearchKey::Text(b"animals".to_vec())),
            vec![1]
        );
    }
}
