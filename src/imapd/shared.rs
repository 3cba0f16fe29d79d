//! One state per folder for the whole process, shared by every session
//! that has the folder selected: the last listing of its messages (UIDs,
//! file names, flags) and its [`Index`] (sizes, envelopes, body structures,
//! search text). Sessions keep only their own view (sequence numbers,
//! \Recent, expunges not yet reported) and share the file names.
//!
//! The disk stays the truth. A listing is reused only while the folder's
//! stamp (the modification times of `new/` and `cur/`, and the uidlist's
//! time, inode and size) is unchanged *and* was taken well after those
//! times (file times move in coarse ticks, so a change in the same tick as
//! the last read would otherwise go unseen). Any other process (Dovecot,
//! `deliver`, another ownmail) changing the folder changes the stamp, and
//! the next look reads the folder again ([`uidlist::sync`]).
//!
//! This module never speaks IMAP.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime};

use super::index::Index;
use crate::store::flags::Flags;
use crate::store::uidlist::{self, UidError};

/// File times move with the kernel's coarse clock, one tick at a time (1 to
/// 10 ms on Linux, whatever its HZ): a stamp is trusted only when its
/// times are this much older than the read that followed it, so that a
/// change made after the read began has a later time.
pub const STAMP_MARGIN: Duration = Duration::from_millis(20);
/// The same for a file system that keeps whole seconds (FAT, ext3, some
/// NFS servers): times without a fraction of a second.
pub const STAMP_MARGIN_SECONDS: Duration = Duration::from_millis(1100);

/// The margin a file time needs (see [`STAMP_MARGIN`]).
fn margin(t: SystemTime) -> Duration {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) if d.subsec_nanos() != 0 => STAMP_MARGIN,
        _ => STAMP_MARGIN_SECONDS,
    }
}

/// Whether a stamp taken after a read that began at `began` shows every
/// change made since: each of its times is older than `began` by its margin.
fn trusted(stamp: &Stamp, began: SystemTime) -> bool {
    stamp
        .iter()
        .all(|t| t.is_some_and(|(t, _, _)| t + margin(t) < began))
}

/// How long until a read would give a listing [`trusted`] with `stamp`.
fn settles_in(stamp: &Stamp) -> Duration {
    let settled = stamp
        .iter()
        .flatten()
        .map(|&(t, _, _)| t + margin(t) + Duration::from_millis(1))
        .max();
    settled
        .and_then(|s| s.duration_since(SystemTime::now()).ok())
        .unwrap_or_default()
}

/// A message as the folder lists it now.
#[derive(Debug, Clone)]
pub struct Entry {
    pub uid: u32,
    pub sub: &'static str,
    /// Shared by every session's view (one copy per process).
    pub name: Arc<str>,
    pub flags: Flags,
}

/// The folder's messages at one moment, lowest UID first.
#[derive(Debug)]
pub struct Listing {
    pub uid_validity: u32,
    pub next_uid: u32,
    pub msgs: Vec<Entry>,
    /// The view a session starts from, made by the first to open it.
    pub view: std::sync::OnceLock<Arc<Vec<super::mailbox::Msg>>>,
}

/// A file's modification time, inode and size.
pub type FileStamp = (SystemTime, u64, u64);

/// What changes when anyone changes the folder.
pub type Stamp = [Option<FileStamp>; 3];

/// Cheap: three stats.
pub fn stamp(folder: &Path) -> Stamp {
    let m = |p: PathBuf| {
        fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.ino(), m.len())))
    };
    [
        m(folder.join("new")),
        m(folder.join("cur")),
        m(folder.join(uidlist::FILE_NAME)),
    ]
}

#[derive(Default)]
struct Looked {
    stamp: Stamp,
    trusted: bool,
    listing: Option<Arc<Listing>>,
    /// When the read that gave `listing` began.
    read_began: Option<std::time::Instant>,
    /// The uidlist as last parsed, while its time, inode and size stay.
    list: Option<(Option<FileStamp>, Arc<ParsedList>)>,
    /// UIDs of that list two reads in a row did not find (expunged).
    gone: std::collections::HashSet<u32>,
    /// A read once the times settle was started (see [`Folder::listing`]).
    settling: bool,
}

/// A parsed uidlist with its base names looked up.
struct ParsedList {
    uid_validity: u32,
    next_uid: u32,
    /// Base name -> UID.
    uids: HashMap<Box<str>, u32>,
}

impl ParsedList {
    fn load(folder: &Path) -> Option<ParsedList> {
        let Ok(Some(uidlist::Parsed::Ok(list))) = uidlist::UidList::load(folder) else {
            return None;
        };
        Some(ParsedList {
            uid_validity: list.uid_validity,
            next_uid: list.next_uid,
            uids: list
                .entries
                .into_iter()
                .map(|e| (Box::from(e.base()), e.uid))
                .collect(),
        })
    }
}

/// A folder's shared state.
pub struct Folder {
    pub path: PathBuf,
    looked: Mutex<Looked>,
    index: Mutex<Option<Index>>,
}

impl std::fmt::Debug for Folder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Folder").field("path", &self.path).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long a folder nobody has selected keeps its state (so that a
/// client's next SELECT, or the next connection, finds it warm).
const KEEP_IDLE: Duration = Duration::from_secs(300);
/// The most folders kept without a session.
const MAX_IDLE: usize = 64;

/// The process's state of a folder (created on first use, dropped a while
/// after the last session let go of it).
pub fn folder(path: &Path) -> Arc<Folder> {
    type Map = HashMap<PathBuf, (Arc<Folder>, std::time::Instant)>;
    static FOLDERS: OnceLock<Mutex<Map>> = OnceLock::new();
    let mut map = lock(FOLDERS.get_or_init(Default::default));
    let now = std::time::Instant::now();
    if let Some((f, used)) = map.get_mut(path) {
        *used = now;
        return f.clone();
    }
    // Unused ones (held by the map alone) go after a while, or when too many.
    map.retain(|_, (f, used)| Arc::strong_count(f) > 1 || now.duration_since(*used) < KEEP_IDLE);
    let idle = map
        .values()
        .filter(|(f, _)| Arc::strong_count(f) == 1)
        .count();
    if idle >= MAX_IDLE
        && let Some(oldest) = map
            .iter()
            .filter(|(_, (f, _))| Arc::strong_count(f) == 1)
            .min_by_key(|(_, (_, used))| *used)
            .map(|(p, _)| p.clone())
    {
        map.remove(&oldest);
    }
    let f = Arc::new(Folder {
        path: path.to_owned(),
        looked: Mutex::new(Looked::default()),
        index: Mutex::new(None),
    });
    map.insert(path.to_owned(), (f.clone(), now));
    f
}

impl Folder {
    /// The folder's messages now: the last listing when nothing changed
    /// since it was read, else read again (giving new files their UIDs).
    pub fn listing(&self) -> Result<Arc<Listing>, UidError> {
        let called = std::time::Instant::now();
        let mut looked = lock(&self.looked);
        // A read that began after this call did sees every change made
        // before it (many sessions asking at once share one read).
        if looked.read_began.is_some_and(|b| b >= called)
            && let Some(l) = &looked.listing
        {
            return Ok(l.clone());
        }
        let now = stamp(&self.path);
        if looked.trusted
            && looked.stamp == now
            && let Some(l) = &looked.listing
        {
            return Ok(l.clone());
        }
        let read_began = std::time::Instant::now();
        let began = SystemTime::now();
        looked.read_began = None;
        let snap = match self.quick_scan(&mut looked, &now) {
            Some(s) => s,
            None => uidlist::sync(&self.path)?,
        };
        looked.read_began = Some(read_began);
        // The stamp after the read (sync may have written the list), trusted
        // when every time in it is well before the read began: a change
        // during the read has a later time.
        let after = stamp(&self.path);
        looked.trusted = trusted(&after, began);
        if !looked.trusted && !looked.settling {
            // The first read of a folder writes its uidlist (and a new
            // message's arrival changes a directory): then the listing is
            // not trusted until a tick has passed, and each session's next
            // look reads the folder again. The first time in this process,
            // one read in the background when the times settle makes it
            // trusted for the client's next connections (Apple Mail opens
            // several at once); later changes wait for the next look, so a
            // folder changing all the time is not read more.
            looked.settling = true;
            let (path, wait) = (self.path.clone(), settles_in(&after));
            std::thread::spawn(move || {
                std::thread::sleep(wait);
                let _ = folder(&path).listing();
            });
        }
        looked.stamp = after;
        // Names unchanged since the last listing keep their shared copy.
        let old: HashMap<u32, &Arc<str>> = looked
            .listing
            .as_ref()
            .map(|l| l.msgs.iter().map(|e| (e.uid, &e.name)).collect())
            .unwrap_or_default();
        let msgs = snap
            .messages
            .into_iter()
            .map(|m| {
                let name = match old.get(&m.uid) {
                    Some(n) if ***n == *m.name => Arc::clone(n),
                    _ => Arc::from(m.name),
                };
                Entry {
                    uid: m.uid,
                    sub: m.sub,
                    name,
                    flags: m.flags,
                }
            })
            .collect();
        drop(old);
        let listing = Arc::new(Listing {
            uid_validity: snap.uid_validity,
            next_uid: snap.next_uid,
            msgs,
            view: Default::default(),
        });
        looked.listing = Some(listing.clone());
        Ok(listing)
    }

    /// The folder read with the uidlist parsed before (when its stamp is
    /// the same): a `readdir` of `new/` and `cur/`, each name looked up.
    /// `None` when a file is not listed yet (then [`uidlist::sync`] gives it
    /// a UID under the lock) or the list cannot be read.
    ///
    /// A listed message not found is read for again before it counts as
    /// gone (the rule [`uidlist::sync`] follows): a flag change renames a
    /// file in `cur/`, and a rename during a `readdir` can move the name
    /// behind the read. Missed once, the message would look expunged to
    /// every session, and come back with a UID lower than ones they have
    /// seen, so they would never show it again. Listed UIDs missed by two
    /// reads (expunged, and still in the list until it is next rewritten)
    /// are remembered with the list, so they cost no third read.
    fn quick_scan(&self, looked: &mut Looked, now: &Stamp) -> Option<uidlist::Snapshot> {
        let list = match &looked.list {
            Some((st, l)) if st.is_some() && *st == now[2] => l.clone(),
            _ => {
                let l = Arc::new(ParsedList::load(&self.path)?);
                looked.list = Some((now[2], l.clone()));
                looked.gone.clear();
                l
            }
        };
        let mut messages = Vec::with_capacity(list.uids.len());
        let mut found = std::collections::HashSet::with_capacity(list.uids.len());
        self.scan_listed(&list, &mut messages, &mut found)?;
        if found.len() < list.uids.len()
            && list
                .uids
                .values()
                .any(|u| !found.contains(u) && !looked.gone.contains(u))
        {
            // Only files the first read missed are taken from the second.
            let mut again = Vec::new();
            let mut found_again = std::collections::HashSet::new();
            self.scan_listed(&list, &mut again, &mut found_again)?;
            for m in again {
                if found.insert(m.uid) {
                    messages.push(m);
                }
            }
            looked.gone = list
                .uids
                .values()
                .filter(|u| !found.contains(u))
                .copied()
                .collect();
        }
        messages.sort_unstable_by_key(|m| m.uid);
        // Two files with one base name (a rename seen half-done): let the
        // full read decide.
        if messages.windows(2).any(|w| w[0].uid == w[1].uid) {
            return None;
        }
        Some(uidlist::Snapshot {
            uid_validity: list.uid_validity,
            next_uid: list.next_uid,
            messages,
        })
    }

    /// One read of `new/` then `cur/` ([`uidlist::SCAN_ORDER`]: files only
    /// move from `new/` to `cur/`), every file looked up in the list; `None`
    /// when one is not listed or a directory cannot be read.
    fn scan_listed(
        &self,
        list: &ParsedList,
        messages: &mut Vec<uidlist::MessageFile>,
        found: &mut std::collections::HashSet<u32>,
    ) -> Option<()> {
        for sub in uidlist::SCAN_ORDER {
            let entries = match fs::read_dir(self.path.join(sub)) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(_) => return None,
            };
            for entry in entries {
                let entry = entry.ok()?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.starts_with('.') {
                    continue;
                }
                let uid = *list.uids.get(uidlist::base_name(name))?;
                found.insert(uid);
                messages.push(uidlist::MessageFile {
                    uid,
                    sub,
                    name: name.to_owned(),
                    flags: Flags::from_file_name(name),
                });
            }
        }
        Some(())
    }

    /// Forgets the last listing (this process changed the folder).
    pub fn invalidate(&self) {
        let mut looked = lock(&self.looked);
        looked.trusted = false;
        looked.read_began = None;
    }

    /// The folder's index, locked, read (or caught up) first: always
    /// `Some` (an `Option` only because the guard cannot be mapped).
    pub fn index(&self) -> MutexGuard<'_, Option<Index>> {
        let mut guard = lock(&self.index);
        match guard.as_mut() {
            Some(i) => i.catch_up(),
            None => *guard = Some(Index::open(&self.path)),
        }
        guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn age(path: &Path) {
        let old = SystemTime::now() - Duration::from_secs(10);
        for p in ["new", "cur", uidlist::FILE_NAME] {
            fs::File::open(path.join(p))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
    }

    #[test]
    fn times_without_a_fraction_of_a_second_need_a_second() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let fine = t + Duration::from_nanos(4_000_123);
        let at = |t: SystemTime| [Some((t, 1, 1)), Some((t, 2, 1)), Some((t, 3, 1))];
        let later = |t: SystemTime, ms| t + Duration::from_millis(ms);
        assert!(!trusted(&at(fine), later(fine, 10)));
        assert!(trusted(&at(fine), later(fine, 30)));
        // A file system of whole seconds: a change later in the same
        // second would keep the time.
        assert!(!trusted(&at(t), later(t, 500)));
        assert!(trusted(&at(t), later(t, 1200)));
        assert!(!trusted(
            &[None, Some((fine, 2, 1)), Some((fine, 3, 1))],
            later(fine, 30)
        ));
    }

    #[test]
    fn a_first_listing_becomes_trusted_by_itself_once_the_times_settle() {
        let d = tempfile::tempdir().unwrap();
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir(d.path().join(sub)).unwrap();
        }
        for i in 0..10 {
            fs::write(d.path().join(format!("new/{i}.x")), "x\n").unwrap();
        }
        let f = folder(d.path());
        assert_eq!(f.listing().unwrap().msgs.len(), 10);
        // That read wrote the uidlist: not trusted yet.
        assert!(!lock(&f.looked).trusted);
        let began = std::time::Instant::now();
        while !lock(&f.looked).trusted {
            assert!(began.elapsed() < Duration::from_secs(5), "never trusted");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Now a look costs three stats, and sees a change.
        fs::write(d.path().join("new/10.x"), "x\n").unwrap();
        assert_eq!(f.listing().unwrap().msgs.len(), 11);
    }

    /// Regression: a flag change renaming a file in `cur/` during the
    /// listing's `readdir` could move its name behind the read; the message
    /// then looked expunged to every session (and came back later under a
    /// UID lower than ones they had seen, never to be shown again).
    #[test]
    fn a_file_renamed_during_the_read_is_never_missed() {
        const N: usize = 3000;
        let d = tempfile::tempdir().unwrap();
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir(d.path().join(sub)).unwrap();
        }
        for i in 0..N {
            fs::write(d.path().join(format!("cur/{i}.x:2,")), "x\n").unwrap();
        }
        let f = folder(d.path());
        assert_eq!(f.listing().unwrap().msgs.len(), N);
        let stop = Arc::new(AtomicBool::new(false));
        let renamer = {
            let (dir, stop) = (d.path().to_owned(), stop.clone());
            std::thread::spawn(move || {
                // Each file renamed once per pass (a flag set, then cleared
                // on the next pass), in an order unlike the directory's.
                let mut pass = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let (from, to) = if pass.is_multiple_of(2) {
                        ("", "S")
                    } else {
                        ("S", "")
                    };
                    for k in 0..N {
                        let i = (k * 7919) % N;
                        let _ = fs::rename(
                            dir.join(format!("cur/{i}.x:2,{from}")),
                            dir.join(format!("cur/{i}.x:2,{to}")),
                        );
                    }
                    pass += 1;
                }
            })
        };
        let began = std::time::Instant::now();
        let mut reads = 0;
        let mut short = Vec::new();
        while began.elapsed() < Duration::from_secs(2) || reads < 50 {
            f.invalidate();
            let l = f.listing().unwrap();
            if l.msgs.len() != N {
                short.push(l.msgs.len());
            }
            reads += 1;
            if reads > 5000 {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        renamer.join().unwrap();
        assert!(
            short.is_empty(),
            "{} of {reads} listings missed messages: {short:?}",
            short.len()
        );
    }

    #[test]
    fn one_listing_for_every_session_until_another_process_changes_the_folder() {
        let d = tempfile::tempdir().unwrap();
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir(d.path().join(sub)).unwrap();
        }
        fs::write(d.path().join("cur/1.a:2,"), "x\n").unwrap();
        fs::write(d.path().join("cur/2.b:2,S"), "y\n").unwrap();
        let f = folder(d.path());
        assert!(Arc::ptr_eq(&f, &folder(d.path())), "one state per folder");
        let first = f.listing().unwrap();
        assert_eq!(
            first.msgs.iter().map(|e| e.uid).collect::<Vec<_>>(),
            vec![1, 2]
        );
        age(d.path());
        let trusted = f.listing().unwrap();
        assert!(
            Arc::ptr_eq(&trusted, &f.listing().unwrap()),
            "not read again"
        );
        // deliver: a new file in new/.
        fs::write(d.path().join("new/3.c"), "z\n").unwrap();
        let l = f.listing().unwrap();
        assert_eq!(
            l.msgs.iter().map(|e| e.uid).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        // The unchanged names are shared with the listing before.
        assert!(Arc::ptr_eq(&l.msgs[0].name, &trusted.msgs[0].name));
        // Another server sets a flag (a rename in cur/) and expunges.
        age(d.path());
        f.listing().unwrap();
        fs::rename(d.path().join("cur/1.a:2,"), d.path().join("cur/1.a:2,F")).unwrap();
        fs::remove_file(d.path().join("cur/2.b:2,S")).unwrap();
        let l = f.listing().unwrap();
        assert_eq!(l.msgs.len(), 2);
        assert!(l.msgs[0].flags.has_system(b'F'));
        assert_eq!(l.msgs[1].uid, 3);
        // Another server rewrites the uidlist (a new UIDVALIDITY): seen
        // even with the directories untouched.
        age(d.path());
        f.listing().unwrap();
        let list = fs::read_to_string(d.path().join(uidlist::FILE_NAME)).unwrap();
        let rest = list.split_once('\n').unwrap().1;
        fs::write(
            d.path().join(uidlist::FILE_NAME),
            format!("3 V77 N9\n{rest}"),
        )
        .unwrap();
        age(d.path());
        assert_eq!(f.listing().unwrap().uid_validity, 77);
    }
}
