//! What `fetch` remembers per account: which messages it has delivered, so
//! that none is fetched twice, and which deliveries were under way when a
//! run died, so that a crash doubles nothing either.
//!
//! # The file
//!
//! `<data_dir>/fetch/<account>.state`, an append-only log of text lines,
//! fsynced before anything depends on it, and rewritten atomically
//! (temporary file, fsync, rename, fsync of the folder) when it has grown:
//!
//! ```text
//! ownmail-fetch-state 1
//! F <folder> <uidvalidity> <uid> <size> <message-id>          fetched: delivered and recorded
//! P <dir> <base> <folder> <uidvalidity> <uid> <size> <message-id>
//!                                                             pending: being delivered into
//!                                                             Maildir folder <dir> as file <base>
//! D <base>                                                    the pending delivery <base> is done
//! R <folder> <uidvalidity> <uid> <size> <message-id>          reported once as too big
//! ```
//!
//! A message is known by its key: (folder, UIDVALIDITY, uid). For POP3 the
//! folder is empty, UIDVALIDITY 0 and the uid the UIDL unique id; for IMAP
//! the folder name, the folder's UIDVALIDITY and the UID. Size and
//! Message-ID are kept so that a changed UIDVALIDITY can be matched (IMAP).
//! Every field is percent-encoded (bytes outside `!`..`~`, and `%`); an
//! empty field is a lone `%`.
//!
//! # Why pending records
//!
//! A Maildir delivery and a line in this file cannot be made durable in
//! one step. Recording after delivering leaves a window (delivered, not
//! recorded: the next run fetches the message again); recording before
//! leaves the opposite one (recorded, not delivered: lost). So the
//! delivery's file name is recorded first, as pending, then the message is
//! renamed into `new/` and the folder fsynced, then `D` marks it done. A run
//! that finds a `P` without its `D` looks in the folder: a file with that
//! name means the message was delivered (it becomes fetched); none means it
//! was not (it is fetched again, and its file in `tmp/` removed).
//!
//! Remaining window, by design: if, between a crash and the next run,
//! someone moves or deletes that very message in the Maildir, it is
//! fetched again. Nothing is ever lost.
//!
//! A torn last line (a crash while appending) was never fsynced, so nothing
//! depended on it: it is ignored.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use crate::store::durable;

/// The first line of every state file.
const MAGIC: &str = "ownmail-fetch-state 1";
/// A state file bigger than this is refused (about ten million messages).
pub const MAX_STATE_BYTES: u64 = 1 << 30;
/// The longest line we read back.
const MAX_RECORD: usize = 16 * 1024;
/// The longest Message-ID we keep (RFC 5322 lines are at most 998).
pub const MAX_MESSAGE_ID: usize = 998;

/// A message on a server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The IMAP folder; empty for POP3.
    pub folder: String,
    /// The folder's UIDVALIDITY; 0 for POP3.
    pub uidvalidity: u32,
    /// The UIDL unique id (POP3) or the UID in decimal (IMAP).
    pub uid: String,
}

impl Key {
    pub fn pop3(uid: &str) -> Key {
        Key {
            folder: String::new(),
            uidvalidity: 0,
            uid: uid.to_owned(),
        }
    }

    pub fn imap(folder: &str, uidvalidity: u32, uid: u32) -> Key {
        Key {
            folder: folder.to_owned(),
            uidvalidity,
            uid: uid.to_string(),
        }
    }
}

/// What we remember about a fetched message besides its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The size the server gave (LIST, RFC822.SIZE).
    pub size: u64,
    pub message_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{}: line {line} is damaged ({why}); move the file aside to start over \
         (messages still on the server will then be fetched again)",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        why: &'static str,
    },
    #[error("{}: {size} bytes is more than a state file may have ({MAX_STATE_BYTES})", path.display())]
    TooBig { path: PathBuf, size: u64 },
}

impl StateError {
    /// The sysexits code: I/O follows [`crate::error::io_exit_code`]; a
    /// damaged file needs a person.
    pub fn exit_code(&self) -> u8 {
        match self {
            StateError::Io { source, .. } => crate::error::io_exit_code(source),
            _ => crate::error::sysexits::DATAERR,
        }
    }
}

/// A delivery under way (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The Maildir folder it goes into.
    pub dir: PathBuf,
    /// The file name's unique part ([`crate::store::TmpMessage::base`]).
    pub base: String,
    pub key: Key,
    pub entry: Entry,
}

/// An account's state, loaded, with its log open for appending.
#[derive(Debug)]
pub struct State {
    path: PathBuf,
    file: File,
    fetched: HashMap<Key, Entry>,
    reported: HashMap<Key, Entry>,
    pending: HashMap<String, Pending>,
    /// Records appended but not yet written and fsynced.
    unsynced: Vec<u8>,
    /// Lines in the file, to decide when to rewrite it.
    lines: usize,
    /// What the last load found and settled, for the report.
    pub recovered: Recovered,
}

/// Deliveries a crashed run left pending, as settled on load.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Found in the Maildir: recorded as fetched.
    pub delivered: usize,
    /// Not found: will be fetched again.
    pub not_delivered: usize,
}

impl State {
    /// Opens (or creates) the state of `account` in `dir`, settling the
    /// deliveries a crashed run left pending. The caller holds the
    /// account's lock.
    pub fn open(dir: &Path, account: &str) -> Result<State, StateError> {
        let path = dir.join(format!("{account}.state"));
        let io_err = |p: &Path| {
            let p = p.to_owned();
            move |source| StateError::Io { path: p, source }
        };
        if !dir.is_dir() {
            create_dirs(dir).map_err(io_err(dir))?;
        }
        let text = match File::open(&path) {
            Ok(f) => {
                let size = f.metadata().map_err(io_err(&path))?.len();
                if size > MAX_STATE_BYTES {
                    return Err(StateError::TooBig { path, size });
                }
                let mut buf = Vec::with_capacity(size as usize);
                f.take(MAX_STATE_BYTES)
                    .read_to_end(&mut buf)
                    .map_err(io_err(&path))?;
                buf
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let mut state = State {
            file: open_append(&path).map_err(io_err(&path))?,
            path,
            fetched: HashMap::new(),
            reported: HashMap::new(),
            pending: HashMap::new(),
            unsynced: Vec::new(),
            lines: 0,
            recovered: Recovered::default(),
        };
        let valid = state.load(&text)?;
        if valid < text.len() {
            // A torn last line: cut it off so later appends start clean.
            state
                .file
                .set_len(valid as u64)
                .and_then(|()| state.file.sync_data())
                .map_err(io_err(&state.path))?;
        }
        if valid == 0 {
            state.unsynced.extend_from_slice(MAGIC.as_bytes());
            state.unsynced.push(b'\n');
            state.sync()?;
        }
        if !state.pending.is_empty() {
            state.settle_pending()?;
        }
        Ok(state)
    }

    /// Reads the records; returns how many bytes of `text` are whole lines.
    fn load(&mut self, text: &[u8]) -> Result<usize, StateError> {
        let corrupt = |line, why| StateError::Corrupt {
            path: self.path.clone(),
            line,
            why,
        };
        let mut lines = text.split_inclusive(|b| *b == b'\n').enumerate();
        let mut valid = 0;
        match lines.next() {
            None => return Ok(0),
            Some((_, first)) if first.strip_suffix(b"\n") == Some(MAGIC.as_bytes()) => {
                valid += first.len();
            }
            // A first line torn while the file was being created.
            Some((_, first)) if !first.ends_with(b"\n") && MAGIC.as_bytes().starts_with(first) => {
                return Ok(0);
            }
            Some(_) => return Err(corrupt(1, "not an ownmail fetch state file")),
        }
        self.lines = 1;
        for (i, raw) in lines {
            // Torn: never fsynced, so nothing depended on it.
            let Some(line) = raw.strip_suffix(b"\n") else {
                break;
            };
            valid += raw.len();
            self.lines += 1;
            if line.len() > MAX_RECORD {
                return Err(corrupt(i + 1, "the line is too long"));
            }
            let line = std::str::from_utf8(line).map_err(|_| corrupt(i + 1, "not text"))?;
            let mut fields = line.split(' ');
            let kind = fields.next().unwrap_or_default();
            let fields: Vec<&str> = fields.collect();
            let parsed = match (kind, fields.len()) {
                ("F", 5) | ("R", 5) => record(&fields).map(|(k, e)| {
                    let map = if kind == "F" {
                        &mut self.fetched
                    } else {
                        &mut self.reported
                    };
                    map.insert(k, e);
                }),
                ("P", 7) => {
                    // The folder is absolute and the name one plain file
                    // name: a damaged line can never point elsewhere.
                    let dir = decode(fields[0])
                        .map(|d| PathBuf::from(std::ffi::OsString::from_vec(d)))
                        .filter(|d| d.is_absolute());
                    let base = decode_str(fields[1]).filter(|b| is_file_name(b));
                    match (dir, base, record(&fields[2..])) {
                        (Some(dir), Some(base), Some((key, entry))) => {
                            self.pending.insert(
                                base.clone(),
                                Pending {
                                    dir,
                                    base,
                                    key,
                                    entry,
                                },
                            );
                            Some(())
                        }
                        _ => None,
                    }
                }
                ("D", 1) => decode_str(fields[0])
                    .filter(|b| is_file_name(b))
                    .map(|base| {
                        if let Some(p) = self.pending.remove(&base) {
                            self.fetched.insert(p.key, p.entry);
                        }
                    }),
                // A pending delivery found not to have happened.
                ("X", 1) => decode_str(fields[0]).map(|base| {
                    self.pending.remove(&base);
                }),
                _ => None,
            };
            if parsed.is_none() {
                return Err(corrupt(i + 1, "not a record"));
            }
        }
        Ok(valid)
    }

    /// Looks for each pending delivery's file in its folder.
    fn settle_pending(&mut self) -> Result<(), StateError> {
        let pending: Vec<Pending> = self.pending.values().cloned().collect();
        for p in pending {
            if delivered(&p.dir, &p.base) {
                tracing::info!(base = %p.base, "a delivery the last run left pending is in the Maildir");
                self.recovered.delivered += 1;
                self.done(&p.base);
            } else {
                tracing::info!(base = %p.base, "a delivery the last run left pending did not happen");
                self.recovered.not_delivered += 1;
                // Its half-written file, if any: the commit never happened.
                let _ = fs::remove_file(p.dir.join("tmp").join(&p.base));
                self.pending.remove(&p.base);
                self.append(&["X", &encode(p.base.as_bytes())]);
            }
        }
        self.sync()
    }

    /// Whether a message was fetched.
    pub fn is_fetched(&self, key: &Key) -> bool {
        self.fetched.contains_key(key)
    }

    /// The fetched messages.
    pub fn fetched(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        self.fetched.iter()
    }

    /// Whether a message was already reported as too big.
    pub fn is_reported(&self, key: &Key) -> bool {
        self.reported.contains_key(key)
    }

    /// The size a message had when it was reported as too big (for a
    /// message bigger than its server said: the least it is known to be).
    pub fn reported_size(&self, key: &Key) -> Option<u64> {
        self.reported.get(key).map(|e| e.size)
    }

    /// Records that a message was delivered (by an MDA or over SMTP:
    /// durable on the other side). Call [`State::sync`] before anything
    /// depends on it.
    pub fn record(&mut self, key: Key, entry: Entry) {
        let line = format!("F {}", fields(&key, &entry));
        self.append_line(line);
        self.fetched.insert(key, entry);
    }

    /// Records that a message was reported as too big.
    pub fn record_reported(&mut self, key: Key, entry: Entry) {
        let line = format!("R {}", fields(&key, &entry));
        self.append_line(line);
        self.reported.insert(key, entry);
    }

    /// Records a Maildir delivery about to be committed. It must be durable
    /// ([`State::sync`]) before the file is renamed into `new/`.
    pub fn begin(&mut self, pending: Pending) {
        let line = format!(
            "P {} {} {}",
            encode(pending.dir.as_os_str().as_encoded_bytes()),
            encode(pending.base.as_bytes()),
            fields(&pending.key, &pending.entry)
        );
        self.append_line(line);
        self.pending.insert(pending.base.clone(), pending);
    }

    /// Marks a pending delivery done: the file is in `new/` and its folder
    /// fsynced. Durable at the next [`State::sync`].
    pub fn done(&mut self, base: &str) {
        if let Some(p) = self.pending.remove(base) {
            self.fetched.insert(p.key, p.entry);
        }
        self.append(&["D", &encode(base.as_bytes())]);
    }

    /// Forgets a pending delivery that will not be committed (its message
    /// was refused, or the batch gave up before the rename).
    pub fn abandon(&mut self, base: &str) {
        if self.pending.remove(base).is_some() {
            self.append(&["X", &encode(base.as_bytes())]);
        }
    }

    fn append(&mut self, fields: &[&str]) {
        self.append_line(fields.join(" "));
    }

    fn append_line(&mut self, line: String) {
        self.unsynced.extend_from_slice(line.as_bytes());
        self.unsynced.push(b'\n');
        self.lines += 1;
    }

    /// Writes what was appended and fsyncs it. When this returns, every
    /// record so far survives a crash.
    pub fn sync(&mut self) -> Result<(), StateError> {
        if self.unsynced.is_empty() {
            return Ok(());
        }
        let io_err = |source| StateError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&self.unsynced).map_err(io_err)?;
        self.file.sync_data().map_err(io_err)?;
        self.unsynced.clear();
        Ok(())
    }

    /// Rewrites the file with only what is still needed: fetched and
    /// reported messages for which `keep` says yes. Atomic: a crash leaves
    /// the old file or the new one. Pending deliveries must be settled.
    pub fn compact(&mut self, keep: impl Fn(&Key) -> bool) -> Result<(), StateError> {
        self.sync()?;
        debug_assert!(self.pending.is_empty(), "compact with deliveries pending");
        self.fetched.retain(|k, _| keep(k));
        self.reported.retain(|k, _| keep(k));
        let mut entries: Vec<(&str, &Key, &Entry)> = self
            .fetched
            .iter()
            .map(|(k, e)| ("F", k, e))
            .chain(self.reported.iter().map(|(k, e)| ("R", k, e)))
            .collect();
        entries.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
        let mut text = String::with_capacity(64 * (entries.len() + 1));
        text.push_str(MAGIC);
        text.push('\n');
        for (kind, key, entry) in &entries {
            text.push_str(kind);
            text.push(' ');
            text.push_str(&fields(key, entry));
            text.push('\n');
        }
        let io_err = |source| StateError::Io {
            path: self.path.clone(),
            source,
        };
        durable::replace_file(&self.path, text.as_bytes(), 0o600).map_err(io_err)?;
        self.file = open_append(&self.path).map_err(io_err)?;
        self.lines = entries.len() + 1;
        Ok(())
    }

    /// Whether the log has grown enough to be worth rewriting.
    pub fn wants_compaction(&self) -> bool {
        self.lines > 2 * (self.fetched.len() + self.reported.len()) + 1000
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A name that is one file in one folder: not empty, no `/`, no NUL, not
/// `.` or `..`, nothing hidden.
fn is_file_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\0'])
}

/// Whether the folder `dir` has a message file whose name starts with
/// `base` (in `new/`, or in `cur/` with flags a reader gave it).
pub fn delivered(dir: &Path, base: &str) -> bool {
    ["new", "cur"].iter().any(|sub| {
        fs::read_dir(dir.join(sub)).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name();
                let name = name.as_encoded_bytes();
                name.starts_with(base.as_bytes())
                    && matches!(name.get(base.len()), None | Some(b',') | Some(b':'))
            })
        })
    })
}

/// A key and its entry as the five fields of an F, R or P record.
fn fields(key: &Key, entry: &Entry) -> String {
    format!(
        "{} {} {} {} {}",
        encode(key.folder.as_bytes()),
        key.uidvalidity,
        encode(key.uid.as_bytes()),
        entry.size,
        encode(entry.message_id.as_deref().unwrap_or_default().as_bytes())
    )
}

fn record(fields: &[&str]) -> Option<(Key, Entry)> {
    let [folder, validity, uid, size, message_id] = fields else {
        return None;
    };
    let message_id = decode_str(message_id)?;
    Some((
        Key {
            folder: decode_str(folder)?,
            uidvalidity: validity.parse().ok()?,
            uid: decode_str(uid)?,
        },
        Entry {
            size: size.parse().ok()?,
            message_id: (!message_id.is_empty()).then_some(message_id),
        },
    ))
}

/// Percent-encodes everything outside `!`..`~` and `%` itself; an empty
/// field becomes a lone `%`.
fn encode(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "%".to_owned();
    }
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(field: &str) -> Option<Vec<u8>> {
    if field == "%" {
        return Some(Vec::new());
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b if (0x21..=0x7e).contains(&b) => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

fn decode_str(field: &str) -> Option<String> {
    String::from_utf8(decode(field)?).ok()
}

fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let existed = path.exists();
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    if !existed {
        durable::fsync_dir(durable::parent_dir(path))?;
    }
    Ok(file)
}

fn create_dirs(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dirs(parent)?;
    }
    durable::create_dir_durable(dir, 0o700).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: u64, id: Option<&str>) -> Entry {
        Entry {
            size,
            message_id: id.map(str::to_owned),
        }
    }

    #[test]
    fn records_survive_a_reopen_and_odd_bytes_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let odd = Key {
            folder: "Entwürfe 2024/%x".into(),
            uidvalidity: 7,
            uid: "12".into(),
        };
        {
            let mut s = State::open(dir.path(), "isp").unwrap();
            s.record(Key::pop3("a1"), entry(10, None));
            s.record(odd.clone(), entry(20, Some("<a b@c>")));
            s.record_reported(Key::pop3("big"), entry(1 << 30, None));
            s.sync().unwrap();
        }
        let s = State::open(dir.path(), "isp").unwrap();
        assert!(s.is_fetched(&Key::pop3("a1")));
        assert!(!s.is_fetched(&Key::pop3("a2")));
        assert!(s.is_reported(&Key::pop3("big")));
        let got: HashMap<_, _> = s.fetched().map(|(k, e)| (k.clone(), e.clone())).collect();
        assert_eq!(got[&odd], entry(20, Some("<a b@c>")));
        let text = fs::read_to_string(dir.path().join("isp.state")).unwrap();
        assert!(
            text.starts_with("ownmail-fetch-state 1\nF % 0 a1 10 %\n"),
            "{text}"
        );
        assert!(
            text.contains("F Entw%C3%BCrfe%202024/%25x 7 12 20 <a%20b@c>\n"),
            "{text}"
        );
    }

    #[test]
    fn unsynced_records_are_not_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(dir.path(), "isp").unwrap();
        s.record(Key::pop3("a1"), entry(10, None));
        drop(s);
        let s = State::open(dir.path(), "isp").unwrap();
        assert!(!s.is_fetched(&Key::pop3("a1")));
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_later_appends_are_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("isp.state");
        fs::write(&path, "ownmail-fetch-state 1\nF % 0 a1 10 %\nF % 0 a2 1").unwrap();
        let mut s = State::open(dir.path(), "isp").unwrap();
        assert!(s.is_fetched(&Key::pop3("a1")));
        assert!(!s.is_fetched(&Key::pop3("a2")));
        s.record(Key::pop3("a3"), entry(5, None));
        s.sync().unwrap();
        let s = State::open(dir.path(), "isp").unwrap();
        assert!(s.is_fetched(&Key::pop3("a3")));
        // A file torn while its first line was written is a fresh start.
        fs::write(&path, "ownmail-fe").unwrap();
        assert!(State::open(dir.path(), "isp").is_ok());
    }

    #[test]
    fn damage_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("isp.state");
        for (text, line) in [
            ("something else\n", 1),
            ("ownmail-fetch-state 1\nF % 0 a1 10 %\nZ nonsense\n", 3),
            ("ownmail-fetch-state 1\nF % x a1 10 %\n", 2),
            ("ownmail-fetch-state 1\nF % 0 a1 10 %zz\n", 2),
            ("ownmail-fetch-state 1\nF % 0 a\x01 10 %\n", 2),
            // Paths that would reach outside a Maildir folder's tmp/.
            (
                "ownmail-fetch-state 1\nP /m ../../etc/passwd % 0 u 1 %\n",
                2,
            ),
            ("ownmail-fetch-state 1\nP /m a%2Fb % 0 u 1 %\n", 2),
            ("ownmail-fetch-state 1\nP relative/m base % 0 u 1 %\n", 2),
            ("ownmail-fetch-state 1\nD ..\n", 2),
        ] {
            fs::write(&path, text).unwrap();
            let err = State::open(dir.path(), "isp").unwrap_err();
            assert!(
                matches!(err, StateError::Corrupt { line: l, .. } if l == line),
                "{text:?}: {err}"
            );
            assert!(err.to_string().contains("move the file aside"), "{err}");
        }
    }

    /// The crash windows of a Maildir delivery, one by one.
    #[test]
    fn pending_deliveries_are_settled_by_looking_in_the_maildir() {
        let dir = tempfile::tempdir().unwrap();
        let md = crate::store::Maildir::create(dir.path().join("Maildir")).unwrap();
        let folder = md.folder(&crate::store::MailboxName::inbox()).unwrap();
        let pending = |base: &str, uid: &str| Pending {
            dir: folder.path().to_owned(),
            base: base.into(),
            key: Key::pop3(uid),
            entry: entry(3, None),
        };
        {
            let mut s = State::open(dir.path(), "isp").unwrap();
            // Crashed after the rename: the file is there (a reader moved it to cur/).
            s.begin(pending("111.M1P1Q1.h", "renamed"));
            fs::write(folder.path().join("cur/111.M1P1Q1.h,S=3,W=3:2,S"), "x\n").unwrap();
            // Crashed before the rename: only the file in tmp/.
            s.begin(pending("111.M1P1Q2.h", "in-tmp"));
            fs::write(folder.path().join("tmp/111.M1P1Q2.h"), "x\n").unwrap();
            // Crashed before even writing: nothing; a similar name is no match.
            s.begin(pending("111.M1P1Q3.h", "nothing"));
            fs::write(folder.path().join("new/111.M1P1Q30.h,S=3"), "x\n").unwrap();
            // Done and recorded before the crash.
            s.begin(pending("111.M1P1Q4.h", "done"));
            s.done("111.M1P1Q4.h");
            s.sync().unwrap();
        }
        let s = State::open(dir.path(), "isp").unwrap();
        assert_eq!(
            s.recovered,
            Recovered {
                delivered: 1,
                not_delivered: 2
            }
        );
        assert!(s.is_fetched(&Key::pop3("renamed")));
        assert!(s.is_fetched(&Key::pop3("done")));
        assert!(!s.is_fetched(&Key::pop3("in-tmp")));
        assert!(!s.is_fetched(&Key::pop3("nothing")));
        assert!(!folder.path().join("tmp/111.M1P1Q2.h").exists());
        // Settled for good: the next open finds nothing pending.
        drop(s);
        let s = State::open(dir.path(), "isp").unwrap();
        assert_eq!(s.recovered, Recovered::default());
        assert!(s.is_fetched(&Key::pop3("renamed")));
    }

    #[test]
    fn compaction_keeps_what_is_asked_and_nothing_pending() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(dir.path(), "isp").unwrap();
        for i in 0..100 {
            s.record(Key::pop3(&format!("u{i}")), entry(i, None));
        }
        s.record_reported(Key::pop3("big"), entry(1, None));
        s.compact(|k| k.uid.ends_with('7') || k.uid == "big")
            .unwrap();
        s.record(Key::pop3("new"), entry(1, None));
        s.sync().unwrap();
        drop(s);
        let s = State::open(dir.path(), "isp").unwrap();
        let mut uids: Vec<_> = s.fetched().map(|(k, _)| k.uid.clone()).collect();
        uids.sort();
        assert_eq!(
            uids,
            [
                "new", "u17", "u27", "u37", "u47", "u57", "u67", "u7", "u77", "u87", "u97"
            ]
        );
        assert!(s.is_reported(&Key::pop3("big")));
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("isp.state")]);
    }
}
