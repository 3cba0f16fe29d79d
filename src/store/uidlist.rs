//! `dovecot-uidlist`: the per-folder map from IMAP UIDs to Maildir file
//! names, in Dovecot's format, so that Dovecot and ownmail give every
//! message the same UID and a folder the same UIDVALIDITY.
//!
//! ```text
//! 3 V1700000000 N4 G5f0c0e3b2a1d4c5b6a7980f1e2d3c4b5
//! 1 :1700000000.M1P2Q1.host,S=120,W=124:2,S
//! 3 W2040 :1700000002.M3P4Q1.host,S=2000,W=2040
//! ```
//!
//! The header is the version (3), `V` the UIDVALIDITY, `N` the next UID and
//! `G` the folder's GUID; each line is a UID, optional extension fields
//! (kept as they are) and, after ` :`, the file name as it was when the
//! line was written. Files are matched by their base name (up to the `:`
//! of the info part), because flag changes rename them.
//!
//! # Rules
//!
//! - Reading is tolerant: a damaged line is skipped, a UID out of order is
//!   skipped, and the next UID is never below the highest UID listed plus
//!   one (Dovecot appends lines without rewriting the header).
//! - A list that cannot be read at all is rebuilt with a new UIDVALIDITY
//!   (higher than the old one when the old header still parses), since the
//!   old UIDs can no longer be promised (RFC 3501 2.3.1.1).
//! - Writing happens under the `dovecot-uidlist.lock` dotlock, into the
//!   lock file, fsynced and renamed into place ([`DotLock::replace`]).
//! - New files found in `new/` and `cur/` get the next UIDs in the order of
//!   their names (which begin with the delivery time). A UID is never
//!   reused: `N` only grows.
//!
//! This module never speaks IMAP; it only reads and names files.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::dotlock::DotLock;
use super::flags::Flags;

pub const FILE_NAME: &str = "dovecot-uidlist";
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// A million messages with long names fit; more is damage, read no further.
const MAX_FILE: u64 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum UidError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: the folder has used every UID (4294967295); it must be renumbered")]
    Exhausted { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> UidError + '_ {
    move |source| UidError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One line of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub uid: u32,
    /// Extension fields as written (`W2040 S2000`), without the spaces around.
    pub ext: String,
    /// The file name as written (with or without an info part).
    pub file: String,
}

impl Entry {
    /// The base name: the file name up to the info part.
    pub fn base(&self) -> &str {
        base_name(&self.file)
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidList {
    pub uid_validity: u32,
    pub next_uid: u32,
    /// 32 hex digits (Dovecot's mailbox GUID), empty when the file had none.
    pub guid: String,
    /// Sorted by UID, strictly increasing.
    pub entries: Vec<Entry>,
}

/// What reading a file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Ok(UidList),
    /// The header was unusable; the UIDVALIDITY it named, if any.
    Damaged {
        old_validity: Option<u32>,
    },
}

/// The base of a Maildir file name: everything before the info separator.
pub fn base_name(file: &str) -> &str {
    match file.find(':') {
        Some(i) => &file[..i],
        None => file,
    }
}

impl UidList {
    /// Parses the file's bytes.
    pub fn parse(bytes: &[u8]) -> Parsed {
        let text = String::from_utf8_lossy(bytes);
        let mut lines = text.split('\n');
        let header = lines.next().unwrap_or("");
        let mut fields = header.split(' ');
        let version = fields.next().unwrap_or("");
        let (mut v, mut n, mut g) = (None, None, String::new());
        match version {
            "3" => {
                for f in fields {
                    let mut chars = f.chars();
                    let key = chars.next();
                    let value = chars.as_str();
                    match key.map(String::from).as_deref().unwrap_or("") {
                        "V" => v = value.parse::<u32>().ok(),
                        "N" => n = value.parse::<u32>().ok(),
                        "G" if value.len() == 32
                            && value.bytes().all(|b| b.is_ascii_hexdigit()) =>
                        {
                            g = value.to_owned()
                        }
                        _ => {}
                    }
                }
            }
            // Version 1: `1 <uidvalidity> <nextuid>`, lines `<uid> <file>`.
            "1" => {
                v = fields.next().and_then(|s| s.parse().ok());
                n = fields.next().and_then(|s| s.parse().ok());
            }
            _ => return Parsed::Damaged { old_validity: None },
        }
        let (Some(uid_validity), Some(n)) = (v.filter(|&v| v != 0), n) else {
            return Parsed::Damaged { old_validity: v };
        };
        let mut entries: Vec<Entry> = Vec::new();
        for line in lines {
            let Some(entry) = parse_line(line, version == "1") else {
                continue;
            };
            if entries.last().is_some_and(|last| last.uid >= entry.uid) {
                continue;
            }
            entries.push(entry);
        }
        let after_last = entries.last().map_or(1, |e| e.uid.saturating_add(1)).max(1);
        Parsed::Ok(UidList {
            uid_validity,
            next_uid: n.max(after_last),
            guid: g,
            entries,
        })
    }

    /// A new, empty list.
    pub fn new(uid_validity: u32) -> UidList {
        UidList {
            uid_validity,
            next_uid: 1,
            guid: new_guid(),
            entries: Vec::new(),
        }
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = format!("3 V{} N{}", self.uid_validity, self.next_uid);
        if !self.guid.is_empty() {
            out.push_str(" G");
            out.push_str(&self.guid);
        }
        out.push('\n');
        for e in &self.entries {
            use std::fmt::Write;
            if e.ext.is_empty() {
                let _ = writeln!(out, "{} :{}", e.uid, e.file);
            } else {
                let _ = writeln!(out, "{} {} :{}", e.uid, e.ext, e.file);
            }
        }
        out
    }

    /// Reads a folder's list: `None` when there is none.
    pub fn load(folder: &Path) -> Result<Option<Parsed>, UidError> {
        let path = folder.join(FILE_NAME);
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_FILE)
            .read_to_end(&mut bytes)
            .map_err(io_err(&path))?;
        Ok(Some(UidList::parse(&bytes)))
    }
}

fn parse_line(line: &str, v1: bool) -> Option<Entry> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (uid, rest) = line.split_once(' ')?;
    let uid: u32 = uid.parse().ok().filter(|&u| u != 0)?;
    let (ext, file) = if v1 {
        ("", rest)
    } else if let Some(file) = rest.strip_prefix(':') {
        ("", file)
    } else {
        let i = rest.find(" :")?;
        (rest[..i].trim(), &rest[i + 2..])
    };
    if file.is_empty() || file.contains('/') || file.starts_with('.') {
        return None;
    }
    Some(Entry {
        uid,
        ext: ext.to_owned(),
        file: file.to_owned(),
    })
}

fn new_guid() -> String {
    use rand_core::RngCore;
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new folder's UIDVALIDITY: from the user's `dovecot-uidvalidity`, so
/// that a folder made again under an old name (even within a second) has a
/// new one (RFC 3501 2.3.1.1). When that file cannot be used, the time (as
/// Dovecot falls back to), with a warning.
fn next_validity(folder: &Path) -> u32 {
    let root = super::uidvalidity::root_of(folder);
    match super::uidvalidity::next(root) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(root = %root.display(), "dovecot-uidvalidity: {e}: using the time");
            now_secs()
        }
    }
}

/// Now, in seconds, as a UIDVALIDITY: never 0.
pub(super) fn now_secs() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    u32::try_from(secs).unwrap_or(u32::MAX).max(1)
}

/// A message of a folder as it is on disk now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFile {
    pub uid: u32,
    /// `new` or `cur`.
    pub sub: &'static str,
    /// The file name now (with its info part).
    pub name: String,
    pub flags: Flags,
}

impl MessageFile {
    pub fn base(&self) -> &str {
        base_name(&self.name)
    }

    pub fn path(&self, folder: &Path) -> PathBuf {
        folder.join(self.sub).join(&self.name)
    }
}

/// A folder's messages with their UIDs, lowest UID first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub uid_validity: u32,
    pub next_uid: u32,
    pub messages: Vec<MessageFile>,
}

/// A file found in `new/` or `cur/`.
/// The order the message directories are read in: `new/` first, since
/// files only ever move from `new/` to `cur/`.
pub const SCAN_ORDER: [&str; 2] = ["new", "cur"];

struct Found {
    sub: &'static str,
    name: String,
}

/// Every message file in `new/` and `cur/`. `new/` is read first: a file
/// moved from `new/` to `cur/` while we read (a session claiming it as
/// \Recent) is then seen once or twice, never missed.
fn scan(folder: &Path) -> Result<Vec<Found>, UidError> {
    let mut found = Vec::new();
    for sub in SCAN_ORDER {
        let dir = folder.join(sub);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err(&dir))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            found.push(Found { sub, name });
        }
    }
    Ok(found)
}

/// [`scan`], read a second time when a file the list names was not found,
/// with the files only that second read found added. A listed file not
/// found is left out of the snapshot (every session then reports it
/// expunged) and dropped from the list: make sure it is gone, not renamed
/// under our `readdir` (a flag change in `cur/` can move a name behind the
/// read), by not finding it twice.
fn scan_listed(folder: &Path, list: &UidList) -> Result<Vec<Found>, UidError> {
    let mut found = scan(folder)?;
    let have: std::collections::HashSet<&str> = found.iter().map(|f| base_name(&f.name)).collect();
    let missing: std::collections::HashSet<&str> = list
        .entries
        .iter()
        .map(Entry::base)
        .filter(|b| !have.contains(b))
        .collect();
    drop(have);
    if !missing.is_empty() {
        let again = scan(folder)?;
        found.extend(
            again
                .into_iter()
                .filter(|f| missing.contains(base_name(&f.name))),
        );
    }
    Ok(found)
}

/// Reads the folder's messages and their UIDs, giving new files the next
/// UIDs (and rewriting the list under its lock) when there are any.
///
/// Files the list names but that are gone are left out, and dropped from
/// the list the next time it is rewritten.
pub fn sync(folder: &Path) -> Result<Snapshot, UidError> {
    // Fast path: every file is listed, nothing to write, no lock taken.
    if let Some(Parsed::Ok(list)) = UidList::load(folder)? {
        let found = scan_listed(folder, &list)?;
        if let Some(snap) = match_all(&list, &found) {
            return Ok(snap);
        }
    }
    let path = folder.join(FILE_NAME);
    let lock = DotLock::acquire(&path, LOCK_TIMEOUT).map_err(io_err(&path))?;
    // Under the lock: read and scan again, another process may have written.
    let loaded = UidList::load(folder)?;
    // A new list is written even when the folder is empty: the UIDVALIDITY
    // a client is told must be the one every later reader finds.
    let fresh = !matches!(loaded, Some(Parsed::Ok(_)));
    let mut list = match loaded {
        Some(Parsed::Ok(list)) => list,
        Some(Parsed::Damaged { old_validity }) => {
            tracing::warn!(path = %path.display(), "damaged uidlist: rebuilt with a new UIDVALIDITY");
            UidList::new(next_validity(folder).max(old_validity.unwrap_or(0).saturating_add(1)))
        }
        None => UidList::new(next_validity(folder)),
    };
    let found = scan_listed(folder, &list)?;
    if !fresh && let Some(snap) = match_all(&list, &found) {
        return Ok(snap);
    }
    let listed: std::collections::HashMap<&str, usize> = list
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.base(), i))
        .collect();
    let mut present = vec![false; list.entries.len()];
    let mut new_files: Vec<&Found> = Vec::new();
    for f in &found {
        match listed.get(base_name(&f.name)) {
            Some(&i) => present[i] = true,
            None => new_files.push(f),
        }
    }
    // Keyed once per file: a comparison that parsed both names was most
    // of a first SELECT's time on a folder of thousands.
    new_files.sort_by_cached_key(|f| delivery_order(base_name(&f.name)));
    new_files.dedup_by(|a, b| base_name(&a.name) == base_name(&b.name));
    let mut entries: Vec<Entry> = list
        .entries
        .iter()
        .zip(&present)
        .filter(|(_, p)| **p)
        .map(|(e, _)| e.clone())
        .collect();
    for f in new_files {
        if list.next_uid == u32::MAX {
            return Err(UidError::Exhausted { path });
        }
        entries.push(Entry {
            uid: list.next_uid,
            ext: String::new(),
            file: f.name.clone(),
        });
        list.next_uid += 1;
    }
    list.entries = entries;
    lock.replace(list.render().as_bytes())
        .map_err(io_err(&path))?;
    match_all(&list, &found).ok_or_else(|| {
        io_err(&path)(io::Error::other(
            "the uidlist just written does not name every file",
        ))
    })
}

/// The order new files get UIDs in: by delivery time, `<secs>.M<usecs>`
/// compared as numbers (as Dovecot's maildir_filename_sort_cmp does; `M99`
/// is before `M100`), then by name. Names in other forms sort by name.
fn delivery_order(base: &str) -> (u64, u64, &str) {
    let mut parts = base.splitn(2, '.');
    let secs = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX);
    let usecs = parts
        .next()
        .and_then(|r| r.strip_prefix('M'))
        .map(|r| &r[..r.bytes().take_while(u8::is_ascii_digit).count()])
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    (secs, usecs, base)
}

/// The snapshot when the list names every file found; `None` otherwise.
fn match_all(list: &UidList, found: &[Found]) -> Option<Snapshot> {
    let by_base: std::collections::HashMap<&str, &Found> =
        found.iter().map(|f| (base_name(&f.name), f)).collect();
    let mut named = 0;
    let mut messages = Vec::with_capacity(found.len());
    for e in &list.entries {
        if let Some(f) = by_base.get(e.base()) {
            named += 1;
            messages.push(MessageFile {
                uid: e.uid,
                sub: f.sub,
                name: f.name.clone(),
                flags: Flags::from_file_name(&f.name),
            });
        }
    }
    (named == by_base.len()).then_some(Snapshot {
        uid_validity: list.uid_validity,
        next_uid: list.next_uid,
        messages,
    })
}

/// Finds a message's current file by its base name (another process may
/// have renamed it to change its flags): `(sub, name)`.
pub fn locate(folder: &Path, base: &str) -> Option<(&'static str, String)> {
    for sub in SCAN_ORDER {
        let Ok(entries) = fs::read_dir(folder.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            if let Ok(name) = entry.file_name().into_string()
                && base_name(&name) == base
            {
                return Some((sub, name));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(folder: &Path, sub: &str, name: &str) {
        fs::write(folder.join(sub).join(name), "x\n").unwrap();
    }

    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        dir
    }

    #[test]
    fn parses_dovecots_format_tolerantly() {
        let text = b"3 V1700000000 N5 G0123456789abcdef0123456789abcdef\n\
            1 :a.host:2,S\n\
            2 W20 S10 :b.host\n\
            garbage\n\
            2 :dup.host\n\
            0 :zero.host\n\
            4 :../escape\n\
            7 :c.host,S=3:2,\n";
        let Parsed::Ok(list) = UidList::parse(text) else {
            panic!("parsed as damaged")
        };
        assert_eq!(list.uid_validity, 1_700_000_000);
        // N5 is stale: Dovecot appended uid 7 without rewriting the header.
        assert_eq!(list.next_uid, 8);
        assert_eq!(list.guid, "0123456789abcdef0123456789abcdef");
        let got: Vec<(u32, &str, &str)> = list
            .entries
            .iter()
            .map(|e| (e.uid, e.ext.as_str(), e.base()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "", "a.host"),
                (2, "W20 S10", "b.host"),
                (7, "", "c.host,S=3")
            ]
        );
        assert_eq!(
            list.render(),
            "3 V1700000000 N8 G0123456789abcdef0123456789abcdef\n1 :a.host:2,S\n2 W20 S10 :b.host\n7 :c.host,S=3:2,\n"
        );
    }

    #[test]
    fn damaged_headers_are_recognised() {
        let cases: &[(&[u8], Parsed)] = &[
            (b"", Parsed::Damaged { old_validity: None }),
            (b"9 V1 N1\n", Parsed::Damaged { old_validity: None }),
            (
                b"3 V0 N1\n",
                Parsed::Damaged {
                    old_validity: Some(0),
                },
            ),
            (
                b"3 V12 Nx\n",
                Parsed::Damaged {
                    old_validity: Some(12),
                },
            ),
            (b"\xff\xfe", Parsed::Damaged { old_validity: None }),
        ];
        for (bytes, want) in cases {
            assert_eq!(&UidList::parse(bytes), want, "{bytes:?}");
        }
        let Parsed::Ok(v1) = UidList::parse(b"1 77 3\n1 a.host\n2 b.host:2,S\n") else {
            panic!()
        };
        assert_eq!((v1.uid_validity, v1.next_uid, v1.entries.len()), (77, 3, 2));
    }

    #[test]
    fn new_files_get_the_next_uids_in_name_order_and_uids_are_never_reused() {
        let dir = folder();
        let f = dir.path();
        touch(f, "new", "200.M1P1.h,S=2,W=3");
        touch(f, "cur", "100.M1P1.h,S=2,W=3:2,S");
        let s1 = sync(f).unwrap();
        let got: Vec<(u32, &str)> = s1.messages.iter().map(|m| (m.uid, m.base())).collect();
        assert_eq!(
            got,
            vec![(1, "100.M1P1.h,S=2,W=3"), (2, "200.M1P1.h,S=2,W=3")]
        );
        assert!(s1.messages[0].flags.has_system(b'S'));
        assert_eq!(s1.next_uid, 3);
        assert!(!f.join("dovecot-uidlist.lock").exists());

        // A flag change renames a file: same UID. Expunge uid 2, deliver one.
        fs::rename(
            f.join("cur/100.M1P1.h,S=2,W=3:2,S"),
            f.join("cur/100.M1P1.h,S=2,W=3:2,FS"),
        )
        .unwrap();
        fs::remove_file(f.join("new/200.M1P1.h,S=2,W=3")).unwrap();
        touch(f, "new", "300.M1P1.h,S=2,W=3");
        let s2 = sync(f).unwrap();
        let got: Vec<(u32, &str)> = s2.messages.iter().map(|m| (m.uid, m.base())).collect();
        assert_eq!(
            got,
            vec![(1, "100.M1P1.h,S=2,W=3"), (3, "300.M1P1.h,S=2,W=3")]
        );
        assert_eq!(s2.uid_validity, s1.uid_validity);
        assert!(s2.messages[0].flags.has_system(b'F'));
        // The rewritten list no longer names the expunged file.
        let text = fs::read_to_string(f.join(FILE_NAME)).unwrap();
        assert!(!text.contains("200.M1"), "{text}");
        assert!(
            text.starts_with(&format!("3 V{} N4 G", s1.uid_validity)),
            "{text}"
        );
        // Nothing new: the file is not rewritten.
        let before = fs::metadata(f.join(FILE_NAME)).unwrap().modified().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(sync(f).unwrap(), s2);
        assert_eq!(
            fs::metadata(f.join(FILE_NAME)).unwrap().modified().unwrap(),
            before
        );
    }

    #[test]
    fn new_files_are_numbered_in_delivery_order() {
        let dir = folder();
        for name in ["100.M99P1.h", "100.M100P1.h", "99.M500000P1.h", "zzz"] {
            touch(dir.path(), "new", name);
        }
        let s = sync(dir.path()).unwrap();
        let got: Vec<&str> = s.messages.iter().map(|m| m.base()).collect();
        assert_eq!(
            got,
            vec!["99.M500000P1.h", "100.M99P1.h", "100.M100P1.h", "zzz"]
        );
    }

    #[test]
    fn a_damaged_list_is_rebuilt_with_a_higher_uidvalidity() {
        let dir = folder();
        let f = dir.path();
        touch(f, "cur", "1.a:2,S");
        let far = u32::MAX - 10;
        fs::write(f.join(FILE_NAME), format!("3 V{far} Nbroken\n1 :1.a\n")).unwrap();
        let s = sync(f).unwrap();
        assert_eq!(s.uid_validity, far + 1);
        assert_eq!(s.messages[0].uid, 1);
    }

    #[test]
    fn a_held_lock_makes_a_writer_wait_but_not_a_reader() {
        let dir = folder();
        let f = dir.path();
        touch(f, "cur", "1.a:2,");
        let s = sync(f).unwrap();
        let lock = DotLock::acquire(&f.join(FILE_NAME), Duration::from_secs(1)).unwrap();
        // Nothing new: read without the lock.
        assert_eq!(sync(f).unwrap(), s);
        drop(lock);
    }

    #[test]
    fn an_empty_folder_keeps_the_uidvalidity_it_was_given() {
        let dir = folder();
        let s = sync(dir.path()).unwrap();
        assert!(dir.path().join(FILE_NAME).is_file());
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(sync(dir.path()).unwrap().uid_validity, s.uid_validity);
    }

    #[test]
    fn locate_finds_a_renamed_file() {
        let dir = folder();
        touch(dir.path(), "cur", "5.b,S=1:2,RS");
        assert_eq!(
            locate(dir.path(), "5.b,S=1"),
            Some(("cur", "5.b,S=1:2,RS".to_owned()))
        );
        assert_eq!(locate(dir.path(), "5.b"), None);
    }
}
