//! `ownmail-modseq`: CONDSTORE's modification sequences (RFC 7162) for one
//! folder, in a file of ours beside `dovecot-uidlist`.
//!
//! ```text
//! ownmail-modseq 1 V1700000000 H1763980800000123
//! 1 1763980800000001 S
//! 2 1763980800000002 FSa
//! 2 1763980800000107 S
//! 1 1763980800000123 -
//! ```
//!
//! The header names the UIDVALIDITY the numbers belong to and a floor for
//! HIGHESTMODSEQ (`H`, written when the log is compacted). Each line is a
//! UID, the mod-sequence it was given and the flags (the info letters of
//! its file name) it had then; `-` records an expunge. Later lines win.
//!
//! # Design (why it is safe)
//!
//! - The flags are never kept here: they stay in the file names. A line
//!   only says "UID u had flags F at mod-sequence m". Whoever looks at the
//!   folder (any ownmail session, in any process) and finds a message whose
//!   flags differ from its last line, or a UID with no line, or a line for
//!   a file that is gone, gives it a new mod-sequence. So changes made by
//!   Dovecot, by `deliver` or by an ownmail process that does not track
//!   mod-sequences get one as soon as somebody looks.
//! - New mod-sequences are handed out under the `ownmail-modseq.lock`
//!   dotlock (the same style as `dovecot-uidlist.lock`), after reading what
//!   the others appended: several processes on one Maildir agree.
//! - A new mod-sequence is `max(HIGHESTMODSEQ + 1, now in microseconds)`.
//!   Every value handed out is thus at most the clock at that moment (plus
//!   one per change made faster than one a microsecond), so when this file
//!   is lost, damaged, or older than the truth (a crash), the values given
//!   afterwards are still above every value given before: HIGHESTMODSEQ
//!   never goes down for a UIDVALIDITY, and a change a client was told of
//!   is never hidden behind a lower number. The one case this cannot cover
//!   is the file lost *and* the clock set back at the same time. The values
//!   stay below 2^53 until the year 2255, so clients that keep them as
//!   doubles (JavaScript) are safe too.
//! - Lines are appended (O_APPEND, one write per batch) without fsync: the
//!   flag changes they describe are renames that are not fsynced either, so
//!   after a power loss the file is as old as the flags or older, and an
//!   older file only costs new (higher) mod-sequences, per the rule above.
//!   The log is compacted (rewritten atomically, fsynced) when it has grown
//!   to more than twice the live lines. The first file of a folder is
//!   written atomically but not fsynced, by the same rule: missing, empty
//!   or cut short after a crash, it only costs new (higher) numbers.
//!
//! This module never speaks IMAP.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::dotlock::DotLock;
use super::flags::Flags;

pub const FILE_NAME: &str = "ownmail-modseq";
const MAGIC: &str = "ownmail-modseq 1";
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines beyond twice the live ones (plus this) trigger a compaction.
const COMPACT_SLACK: usize = 1000;
/// The most folders whose state one process keeps in memory.
const MAX_SHARED: usize = 512;

/// The largest mod-sequence RFC 7162 allows (63 bits).
pub const MAX_MODSEQ: u64 = i64::MAX as u64;

/// One folder's mod-sequences as far as this process has read them.
#[derive(Debug)]
pub struct ModSeqs {
    folder: PathBuf,
    uid_validity: u32,
    highest: u64,
    /// Live messages: UID -> (mod-sequence, flags then).
    map: HashMap<u32, (u64, Flags), UidHash>,
    /// How far the file has been read, and which file it was.
    offset: u64,
    file_id: Option<(u64, u64)>,
    /// Whether the header read names `uid_validity`.
    header_ok: bool,
    lines: usize,
}

/// Hashing for UIDs, which this process's own uidlist hands out (no
/// outsider picks them): one multiplication, where SipHash was a fifth of
/// every SELECT of a big folder (each looks up every message's UID).
type UidHash = std::hash::BuildHasherDefault<UidHasher>;

#[derive(Default)]
struct UidHasher(u64);

impl std::hash::Hasher for UidHasher {
    fn finish(&self) -> u64 {
        // Fibonacci hashing: the high bits, which the table's probe and
        // tags read, depend on every bit of the UID.
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
}

/// The clock floor: microseconds since 1970.
fn clock_floor() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(MAX_MODSEQ))
        .min(MAX_MODSEQ)
}

fn file_id(md: &fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (md.dev(), md.ino())
}

impl ModSeqs {
    /// An empty state for a folder; nothing read yet.
    pub fn new(folder: &Path, uid_validity: u32) -> ModSeqs {
        ModSeqs {
            folder: folder.to_owned(),
            uid_validity,
            highest: 0,
            map: HashMap::default(),
            offset: 0,
            file_id: None,
            header_ok: false,
            lines: 0,
        }
    }

    /// HIGHESTMODSEQ as last synced (at least 1).
    pub fn highest(&self) -> u64 {
        self.highest.max(1)
    }

    /// A message's mod-sequence, when it has one.
    pub fn get(&self, uid: u32) -> Option<u64> {
        self.map.get(&uid).map(|e| e.0)
    }

    fn path(&self) -> PathBuf {
        self.folder.join(FILE_NAME)
    }

    fn forget(&mut self) {
        self.map.clear();
        self.offset = 0;
        self.file_id = None;
        self.header_ok = false;
        self.lines = 0;
    }

    /// Reads what was appended since the last read (all of it when the
    /// file was replaced). Damaged lines are skipped: a message without a
    /// line only gets a new, higher mod-sequence.
    fn read_new(&mut self) -> io::Result<()> {
        let path = self.path();
        let mut file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.forget();
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let md = file.metadata()?;
        if Some(file_id(&md)) != self.file_id || md.len() < self.offset {
            self.forget();
            self.file_id = Some(file_id(&md));
        }
        if md.len() == self.offset {
            return Ok(());
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.take(md.len() - self.offset).read_to_end(&mut bytes)?;
        // Only whole lines: a line being written (or cut by a crash) is
        // read once it ends.
        let Some(end) = memchr::memrchr(b'\n', &bytes) else {
            return Ok(());
        };
        let text = String::from_utf8_lossy(&bytes[..end]);
        for line in text.split('\n') {
            if self.offset == 0 && !self.header_ok && self.lines == 0 {
                self.lines = 1;
                self.read_header(line);
                continue;
            }
            self.lines += 1;
            self.read_line(line);
        }
        self.offset += end as u64 + 1;
        Ok(())
    }

    fn read_header(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix(MAGIC) else {
            return;
        };
        for f in rest.split(' ') {
            if let Some(v) = f.strip_prefix('V') {
                self.header_ok = v.parse::<u32>().ok() == Some(self.uid_validity);
            } else if let Some(h) = f.strip_prefix('H')
                && let Ok(h) = h.parse::<u64>()
            {
                // The floor counts even under another UIDVALIDITY: it
                // never hurts to stay high.
                self.highest = self.highest.max(h.min(MAX_MODSEQ));
            }
        }
    }

    fn read_line(&mut self, line: &str) {
        let mut parts = line.splitn(3, ' ');
        let (Some(uid), Some(m), Some(flags)) = (parts.next(), parts.next(), parts.next()) else {
            return;
        };
        let (Ok(uid), Ok(m)) = (uid.parse::<u32>(), m.parse::<u64>()) else {
            return;
        };
        if m > MAX_MODSEQ {
            return;
        }
        self.highest = self.highest.max(m);
        if !self.header_ok {
            return;
        }
        if flags == "-" {
            self.map.remove(&uid);
        } else if flags.bytes().all(|b| b.is_ascii_alphabetic()) {
            self.map.insert(uid, (m, Flags::from_info(flags)));
        }
    }

    /// What differs between the file and the folder: messages whose flags
    /// (or existence) are not the last line's, and, when `complete` (the
    /// folder's every message is in `present`), lines of files now gone.
    fn diff(&self, present: &[(u32, Flags)], complete: bool) -> (Vec<(u32, Flags)>, Vec<u32>) {
        let changed: Vec<(u32, Flags)> = present
            .iter()
            .filter(|(uid, f)| self.map.get(uid).is_none_or(|e| e.1 != *f))
            .copied()
            .collect();
        let mut gone = Vec::new();
        if complete && self.map.len() + changed.len() > present.len() {
            let here: HashSet<u32> = present.iter().map(|p| p.0).collect();
            gone = self
                .map
                .keys()
                .filter(|u| !here.contains(u))
                .copied()
                .collect();
            gone.sort_unstable();
        }
        (changed, gone)
    }

    /// Brings the state up to date with the folder as `present` shows it
    /// (UID and flags of file names). Messages whose flags changed get new
    /// mod-sequences, written to the file for every other process.
    /// `complete`: `present` is the whole folder (expunges are recorded).
    /// The UIDs given new mod-sequences.
    pub fn sync(
        &mut self,
        uid_validity: u32,
        present: &[(u32, Flags)],
        complete: bool,
    ) -> io::Result<Vec<u32>> {
        if uid_validity != self.uid_validity {
            self.uid_validity = uid_validity;
            self.forget();
        }
        self.read_new()?;
        let (changed, gone) = self.diff(present, complete);
        // A missing or foreign file is written even for an empty folder:
        // its header keeps the HIGHESTMODSEQ floor.
        if changed.is_empty() && gone.is_empty() && self.header_ok {
            return Ok(Vec::new());
        }
        let path = self.path();
        let lock = DotLock::acquire(&path, LOCK_TIMEOUT)?;
        // Under the lock: what others appended meanwhile counts first.
        self.read_new()?;
        let (changed, gone) = self.diff(present, complete);
        let mut next = self.highest.saturating_add(1).max(clock_floor());
        let mut text = String::new();
        let mut given = Vec::with_capacity(changed.len());
        for (uid, flags) in &changed {
            text.push_str(&format!("{uid} {next} {flags}\n"));
            self.map.insert(*uid, (next, *flags));
            self.highest = next;
            given.push(*uid);
            next = next.saturating_add(1).min(MAX_MODSEQ);
        }
        for uid in &gone {
            text.push_str(&format!("{uid} {next} -\n"));
            self.map.remove(uid);
            self.highest = next;
            next = next.saturating_add(1).min(MAX_MODSEQ);
        }
        self.lines += changed.len() + gone.len();
        let rewrite = !self.header_ok || self.lines > 2 * self.map.len() + COMPACT_SLACK;
        if rewrite {
            if !self.header_ok && given.is_empty() && gone.is_empty() {
                // Nothing numbered: the floor alone is what keeps a new
                // file above whatever an old one held.
                self.highest = self.highest.max(clock_floor());
            }
            // The first file of a folder (or one replacing a foreign or
            // damaged one) is not fsynced: after a crash it may be missing,
            // empty or cut short, and any of those only makes the next
            // numbers come from the clock floor, above every value handed
            // out before (see the module's design notes). A first SELECT
            // then costs no fsync. A compaction stays durable.
            self.rewrite(lock, self.header_ok)?;
        } else if !text.is_empty() {
            let mut f = fs::OpenOptions::new().append(true).open(&path)?;
            // A line cut by a crash is ended first, so ours stays whole.
            if self.offset < f.metadata()?.len() {
                text.insert(0, '\n');
            }
            f.write_all(text.as_bytes())?;
            let md = f.metadata()?;
            if Some(file_id(&md)) == self.file_id {
                self.offset = md.len();
            }
            drop(lock);
        }
        Ok(given)
    }

    /// Writes the live state as a new file (header with HIGHESTMODSEQ as
    /// the floor), atomically (`durably`: fsynced), releasing the lock.
    fn rewrite(&mut self, lock: DotLock, durably: bool) -> io::Result<()> {
        let mut uids: Vec<(&u32, &(u64, Flags))> = self.map.iter().collect();
        uids.sort_unstable_by_key(|(u, _)| **u);
        let mut text = format!("{MAGIC} V{} H{}\n", self.uid_validity, self.highest);
        for (uid, (m, flags)) in uids {
            text.push_str(&format!("{uid} {m} {flags}\n"));
        }
        if durably {
            lock.replace(text.as_bytes())?;
        } else {
            lock.replace_not_durably(text.as_bytes())?;
        }
        let md = fs::metadata(self.path())?;
        self.file_id = Some(file_id(&md));
        self.offset = text.len() as u64;
        self.header_ok = true;
        self.lines = self.map.len() + 1;
        Ok(())
    }
}

type Registry = Mutex<HashMap<PathBuf, Arc<Mutex<ModSeqs>>>>;

/// The state of a folder shared by every session of this process (read
/// once, then only what others append).
pub fn shared(folder: &Path, uid_validity: u32) -> Arc<Mutex<ModSeqs>> {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    let reg = REGISTRY.get_or_init(Default::default);
    let mut reg = match reg.lock() {
        Ok(r) => r,
        Err(p) => p.into_inner(),
    };
    if let Some(s) = reg.get(folder) {
        return s.clone();
    }
    if reg.len() >= MAX_SHARED {
        reg.retain(|_, s| Arc::strong_count(s) > 1);
    }
    let s = Arc::new(Mutex::new(ModSeqs::new(folder, uid_validity)));
    reg.insert(folder.to_owned(), s.clone());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Flags {
        Flags::from_info(s)
    }

    #[test]
    fn changes_get_higher_modseqs_and_processes_agree() {
        let d = tempfile::tempdir().unwrap();
        let mut a = ModSeqs::new(d.path(), 7);
        let mut b = ModSeqs::new(d.path(), 7);
        let before = clock_floor();
        let given = a.sync(7, &[(1, f("")), (2, f("S"))], true).unwrap();
        assert_eq!(given, vec![1, 2]);
        let (m1, m2) = (a.get(1).unwrap(), a.get(2).unwrap());
        assert!(m1 >= before && m2 == m1 + 1, "{m1} {m2}");
        assert_eq!(a.highest(), m2);
        // Another process reads the same numbers and gives none new.
        assert!(
            b.sync(7, &[(1, f("")), (2, f("S"))], true)
                .unwrap()
                .is_empty()
        );
        assert_eq!((b.get(1), b.get(2), b.highest()), (Some(m1), Some(m2), m2));
        // A flag change found by b (made by Dovecot, say) is numbered once.
        assert_eq!(
            b.sync(7, &[(1, f("F")), (2, f("S"))], true).unwrap(),
            vec![1]
        );
        let m3 = b.get(1).unwrap();
        assert!(m3 > m2);
        assert!(
            a.sync(7, &[(1, f("F")), (2, f("S"))], true)
                .unwrap()
                .is_empty()
        );
        assert_eq!(a.get(1), Some(m3));
        // An expunge raises HIGHESTMODSEQ.
        assert!(a.sync(7, &[(1, f("F"))], true).unwrap().is_empty());
        assert!(a.highest() > m3);
        assert_eq!(a.get(2), None);
        b.sync(7, &[(1, f("F"))], true).unwrap();
        assert_eq!(b.highest(), a.highest());
    }

    #[test]
    fn a_lost_or_damaged_file_never_lowers_highestmodseq() {
        let d = tempfile::tempdir().unwrap();
        let mut a = ModSeqs::new(d.path(), 7);
        a.sync(7, &[(1, f("")), (2, f("S"))], true).unwrap();
        for _ in 0..50 {
            a.sync(7, &[(1, f("F")), (2, f("S"))], false).unwrap();
            a.sync(7, &[(1, f("")), (2, f("S"))], false).unwrap();
        }
        let high = a.highest();
        let path = d.path().join(FILE_NAME);
        for damage in [None, Some(&b"garbage\n\x00\xff"[..]), Some(&b""[..])] {
            match damage {
                None => fs::remove_file(&path).unwrap(),
                Some(bytes) => fs::write(&path, bytes).unwrap(),
            }
            let mut fresh = ModSeqs::new(d.path(), 7);
            fresh.sync(7, &[(1, f("")), (2, f("S"))], true).unwrap();
            assert!(fresh.highest() > high, "{damage:?}");
            assert!(fresh.get(1).unwrap() > high);
        }
        // A line cut by a crash is skipped and the next append stays whole.
        let mut f2 = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f2.write_all(b"1 99").unwrap();
        let mut c = ModSeqs::new(d.path(), 7);
        c.sync(7, &[(1, f("D")), (2, f("S"))], true).unwrap();
        let mut e = ModSeqs::new(d.path(), 7);
        e.sync(7, &[(1, f("D")), (2, f("S"))], true).unwrap();
        assert_eq!(e.get(1), c.get(1));
        assert_eq!(e.highest(), c.highest());
    }

    #[test]
    fn a_new_uidvalidity_starts_over_but_never_lower() {
        let d = tempfile::tempdir().unwrap();
        let mut a = ModSeqs::new(d.path(), 7);
        a.sync(7, &[(1, f("S"))], true).unwrap();
        let high = a.highest();
        let mut b = ModSeqs::new(d.path(), 8);
        b.sync(8, &[(1, f("S"))], true).unwrap();
        assert!(b.highest() > high);
        let text = fs::read_to_string(d.path().join(FILE_NAME)).unwrap();
        assert!(text.starts_with("ownmail-modseq 1 V8 H"), "{text}");
    }

    #[test]
    fn the_log_is_compacted() {
        let d = tempfile::tempdir().unwrap();
        let mut a = ModSeqs::new(d.path(), 7);
        for i in 0..(COMPACT_SLACK + 10) {
            let fl = if i % 2 == 0 { f("S") } else { f("") };
            a.sync(7, &[(1, fl)], true).unwrap();
        }
        let high = a.highest();
        let text = fs::read_to_string(d.path().join(FILE_NAME)).unwrap();
        assert!(
            text.lines().count() < COMPACT_SLACK,
            "{}",
            text.lines().count()
        );
        let mut b = ModSeqs::new(d.path(), 7);
        b.sync(7, &[(1, a.map[&1].1)], true).unwrap();
        assert_eq!((b.highest(), b.get(1)), (high, a.get(1)));
    }
}
