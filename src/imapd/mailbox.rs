//! A selected folder as one session sees it: the messages in sequence
//! order, their UIDs and flags, and what changed on disk since the session
//! last looked (other sessions, other servers, `deliver`).
//!
//! The disk is the truth: every refresh reads the folder's `dovecot-uidlist`
//! and its `new/` and `cur/` ([`uidlist::sync`]). Expunges are reported only
//! when RFC 3501 7.4.1 allows (not during FETCH, STORE or SEARCH); until
//! then the message keeps its sequence number and its last known flags.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::store::flags::Flags;
use crate::store::keywords::Keywords;
use std::sync::Arc;

use super::shared::{self, Entry, Folder, Listing};
use crate::store::recent;
use crate::store::uidlist::{self, UidError};
use crate::store::{MailboxName, StoreError};

/// One message in the session's view: 32 bytes (every session holds one
/// per message of its folder: 20 sessions on 6,046 messages made 48 bytes
/// each 5.8 MB), the file name shared with the folder's [`Listing`].
#[derive(Debug, Clone)]
pub struct Msg {
    pub uid: u32,
    /// Shared with the folder's [`Listing`] while unchanged.
    pub name: Arc<str>,
    pub flags: Flags,
    /// In `new/` (else `cur/`).
    in_new: bool,
    pub recent: bool,
    /// Gone from disk; reported as expunged at the next chance.
    pub gone: bool,
}

impl Msg {
    /// The Maildir subfolder the file is in: `new` or `cur`.
    pub fn sub(&self) -> &'static str {
        if self.in_new { "new" } else { "cur" }
    }

    fn set_sub(&mut self, sub: &str) {
        self.in_new = sub == "new";
    }

    pub fn base(&self) -> &str {
        uidlist::base_name(&self.name)
    }

    pub fn path(&self, folder: &Path) -> PathBuf {
        folder.join(self.sub()).join(&*self.name)
    }

    /// The raw file size: `S=` from the name when there, else a stat.
    pub fn size(&self, folder: &Path) -> Option<u64> {
        name_field(&self.name, "S=").or_else(|| {
            fs::metadata(self.path(folder))
                .ok()
                .map(|m| m.len())
                .or_else(|| {
                    let (s, n) = uidlist::locate(folder, self.base())?;
                    fs::metadata(folder.join(s).join(n)).ok().map(|m| m.len())
                })
        })
    }

    /// RFC822.SIZE: `W=` from the name when there, else counted.
    pub fn vsize(&self, folder: &Path) -> u64 {
        if let Some(w) = name_field(&self.name, "W=") {
            return w;
        }
        count_vsize(&self.path(folder)).unwrap_or(0)
    }
}

/// A `,S=123` or `,W=123` field of a Maildir name.
pub fn name_field(name: &str, key: &str) -> Option<u64> {
    let base = uidlist::base_name(name);
    base.split(',')
        .skip(1)
        .find_map(|f| f.strip_prefix(key))
        .and_then(|v| v.parse().ok())
}

/// The size of a file as IMAP serves it (a CR added before every bare LF).
pub fn count_vsize(path: &Path) -> io::Result<u64> {
    use std::io::Read;
    let mut f = fs::File::open(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    let (mut total, mut prev) = (0u64, 0u8);
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        for &b in &buf[..n] {
            if b == b'\n' && prev != b'\r' {
                total += 1;
            }
            total += 1;
            prev = b;
        }
    }
}

/// The untagged news a refresh found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Sequence numbers to report expunged, in the order to send them.
    pub expunged: Vec<u32>,
    /// The new EXISTS count, when messages arrived.
    pub exists: Option<usize>,
    pub recent: usize,
    /// Sequence numbers whose flags changed.
    pub flags: Vec<u32>,
}

#[derive(Debug)]
pub struct Selected {
    pub name: MailboxName,
    pub path: PathBuf,
    pub read_only: bool,
    pub uid_validity: u32,
    pub next_uid: u32,
    /// Shared with the folder's [`Listing`] and every session that opened
    /// it since (a SELECT copies nothing), copied when this view changes.
    pub msgs: Arc<Vec<Msg>>,
    pub keywords: Keywords,
    /// How many keywords the last FLAGS response named: a client learns of
    /// one added since (by this session or another) from a new FLAGS.
    pub announced_keywords: usize,
    /// CONDSTORE (RFC 7162): the folder's mod-sequences, shared by the
    /// sessions of this process ([`super::condstore`]).
    pub modseqs: std::sync::Arc<std::sync::Mutex<crate::store::modseq::ModSeqs>>,
    /// Whether the session enabled CONDSTORE: refreshes then keep the
    /// mod-sequences up to date (others leave that to whoever looks).
    pub condstore: bool,
    /// The process's state of this folder, shared with other sessions.
    pub shared: Arc<Folder>,
    /// The shared listing this view last caught up with.
    seen: Arc<Listing>,
}

fn uid_err(e: UidError) -> StoreError {
    match e {
        UidError::Io { path, source } => StoreError::Io { path, source },
        UidError::Exhausted { path } => StoreError::Io {
            path,
            source: io::Error::other("the folder has used every UID"),
        },
    }
}

impl Selected {
    /// Opens a folder's view. Read-write, the messages at or above the
    /// folder's first recent UID, and those still in `new/`, are \Recent to
    /// this session, which raises that UID to UIDNEXT and moves `new/` to
    /// `cur/` (as Dovecot does); read-only, they are recent and stay so.
    pub fn open(name: MailboxName, path: PathBuf, read_only: bool) -> Result<Selected, StoreError> {
        let shared = shared::folder(&path);
        let listing = shared.listing().map_err(uid_err)?;
        let keywords = Keywords::load(&path).map_err(StoreError::io(&path))?;
        let mut msgs = view(&listing);
        let moved = mark_recent(
            &path,
            listing.uid_validity,
            listing.next_uid,
            read_only,
            &mut msgs,
            0,
        );
        if moved {
            // The next look reads the folder again (and, this view's
            // `seen` being the listing before the moves, compares).
            shared.invalidate();
        }
        let modseqs = crate::store::modseq::shared(&path, listing.uid_validity);
        let sel = Selected {
            name,
            path,
            read_only,
            uid_validity: listing.uid_validity,
            next_uid: listing.next_uid,
            msgs,
            announced_keywords: keywords.iter().count(),
            keywords,
            modseqs,
            condstore: false,
            shared,
            seen: listing,
        };
        // RFC 7162 3.1.2.1: HIGHESTMODSEQ is told at every SELECT.
        let all: Vec<(u32, Flags)> = sel.msgs.iter().map(|m| (m.uid, m.flags)).collect();
        sel.sync_modseq(&all, true);
        Ok(sel)
    }

    /// Reads the disk again (through the shared listing: a folder nobody
    /// changed is not read). `allow_expunge`: whether expunges may be
    /// reported now (else they wait, RFC 3501 7.4.1).
    ///
    /// [`StoreError::FolderGone`] when the folder was renamed or deleted,
    /// or is another folder now (a new UIDVALIDITY): what this view holds
    /// can no longer be served, and nothing in it is changed.
    pub fn refresh(&mut self, allow_expunge: bool) -> Result<Changes, StoreError> {
        let gone = || StoreError::FolderGone(self.name.clone());
        if self.is_gone() {
            return Err(gone());
        }
        let listing = match self.shared.listing() {
            Ok(l) => l,
            // Renamed while we read it.
            Err(_) if self.is_gone() => return Err(gone()),
            Err(e) => return Err(uid_err(e)),
        };
        if listing.uid_validity != self.uid_validity {
            return Err(gone());
        }
        let mut changes = Changes::default();
        if Arc::ptr_eq(&listing, &self.seen) {
            // Nothing touched the folder since the last look; expunges held
            // back then may be reported now.
            if allow_expunge {
                changes.expunged = self.take_gone();
            }
            return Ok(changes);
        }
        if let Ok(k) = Keywords::load(&self.path) {
            self.keywords = k;
        }
        // Both lists are sorted by UID: one merge.
        let mut flag_uids = Vec::new();
        let mut on_disk = listing.msgs.iter().peekable();
        for m in Arc::make_mut(&mut self.msgs).iter_mut() {
            while on_disk.next_if(|f| f.uid < m.uid).is_some() {}
            match on_disk.next_if(|f| f.uid == m.uid) {
                None => m.gone = true,
                Some(f) => {
                    if f.flags != m.flags {
                        m.flags = f.flags;
                        flag_uids.push(m.uid);
                    }
                    m.set_sub(f.sub);
                    m.name = f.name.clone();
                }
            }
        }
        if allow_expunge {
            changes.expunged = self.take_gone();
        }
        changes.flags = flag_uids.iter().filter_map(|&u| self.seq_of(u)).collect();
        let last = self.msgs.last().map_or(0, |m| m.uid);
        let before = self.msgs.len();
        let arrived: Vec<Msg> = listing
            .msgs
            .iter()
            .filter(|f| f.uid > last)
            .map(to_msg)
            .collect();
        if !arrived.is_empty() {
            Arc::make_mut(&mut self.msgs).extend(arrived);
            mark_recent(
                &self.path,
                listing.uid_validity,
                listing.next_uid,
                self.read_only,
                &mut self.msgs,
                before,
            );
            changes.recent = self.msgs[before..].iter().filter(|m| m.recent).count();
        }
        if self.msgs.len() != before {
            changes.exists = Some(self.msgs.len());
        }
        self.next_uid = self.next_uid.max(listing.next_uid);
        if self.condstore {
            let all: Vec<(u32, Flags)> = listing.msgs.iter().map(|m| (m.uid, m.flags)).collect();
            self.sync_modseq(&all, true);
        }
        self.seen = listing;
        Ok(changes)
    }

    /// CONDSTORE was just enabled: numbers what changed since the view was
    /// last brought up to date, at once (later refreshes keep it so).
    pub fn catch_up_modseqs(&mut self) {
        let all: Vec<(u32, Flags)> = self
            .msgs
            .iter()
            .filter(|m| !m.gone)
            .map(|m| (m.uid, m.flags))
            .collect();
        self.sync_modseq(&all, true);
    }

    /// Whether the folder is no longer where it was opened (one stat).
    pub fn is_gone(&self) -> bool {
        !self.path.join("cur").is_dir()
    }

    /// Removes the messages marked gone; their sequence numbers, highest
    /// first (so each stays valid as it is sent).
    pub fn take_gone(&mut self) -> Vec<u32> {
        let seqs: Vec<u32> = self
            .msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| m.gone)
            .map(|(i, _)| i as u32 + 1)
            .rev()
            .collect();
        if !seqs.is_empty() {
            Arc::make_mut(&mut self.msgs).retain(|m| !m.gone);
        }
        seqs
    }

    /// What changes when anyone changes the folder: the modification times
    /// of `new/`, `cur/` and the uidlist. Cheap (three stats); IDLE reads
    /// the folder only when it changed.
    pub fn stamp(&self) -> shared::Stamp {
        shared::stamp(&self.path)
    }

    /// Sequence number of a UID.
    pub fn seq_of(&self, uid: u32) -> Option<u32> {
        self.msgs
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| i as u32 + 1)
    }

    /// Indexes of the messages a set names (by sequence number or UID).
    pub fn resolve(&self, set: &crate::proto::imap::SeqSet, uid: bool) -> Vec<usize> {
        if self.msgs.is_empty() {
            return Vec::new();
        }
        if uid {
            let largest = self.msgs.last().map_or(0, |m| m.uid);
            self.msgs
                .iter()
                .enumerate()
                .filter(|(_, m)| set.contains(m.uid, largest))
                .map(|(i, _)| i)
                .collect()
        } else {
            let n = self.msgs.len() as u32;
            (1..=n)
                .filter(|&s| set.contains(s, n))
                .map(|s| s as usize - 1)
                .collect()
        }
    }

    /// Sets a message's flags on disk: a rename within `cur/` (from `new/`
    /// the first time). A file renamed meanwhile by another process is
    /// found by its base name, and `change` applied to its current flags.
    pub fn set_flags(
        &mut self,
        index: usize,
        change: impl Fn(Flags) -> Flags,
    ) -> Result<bool, StoreError> {
        let m = &self.msgs[index];
        if m.gone {
            return Ok(false);
        }
        let (mut sub, mut name, mut current) = (m.sub(), m.name.to_string(), m.flags);
        for _ in 0..3 {
            let new = change(current);
            let base = uidlist::base_name(&name).to_owned();
            let to = format!("{base}:2,{new}");
            if new == current && sub == "cur" {
                let m = &mut Arc::make_mut(&mut self.msgs)[index];
                m.flags = new;
                return Ok(false);
            }
            let from_path = self.path.join(sub).join(&name);
            let to_path = self.path.join("cur").join(&to);
            match fs::rename(&from_path, &to_path) {
                Ok(()) => {
                    let m = &mut Arc::make_mut(&mut self.msgs)[index];
                    m.in_new = false;
                    m.name = to.into();
                    m.flags = new;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match uidlist::locate(&self.path, &base) {
                        Some((s, n)) => {
                            current = Flags::from_file_name(&n);
                            (sub, name) = (s, n);
                        }
                        None => {
                            Arc::make_mut(&mut self.msgs)[index].gone = true;
                            return Ok(false);
                        }
                    }
                }
                Err(e) => return Err(StoreError::io(&from_path)(e)),
            }
        }
        Ok(false)
    }

    /// Removes the files of the given messages (EXPUNGE), durably; they are
    /// marked gone.
    pub fn remove(&mut self, indexes: &[usize]) -> Result<(), StoreError> {
        for &i in indexes {
            let m = &self.msgs[i];
            if m.gone {
                continue;
            }
            let p = m.path(&self.path);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if let Some((s, n)) = uidlist::locate(&self.path, m.base()) {
                        let p = self.path.join(s).join(n);
                        if let Err(e) = fs::remove_file(&p)
                            && e.kind() != io::ErrorKind::NotFound
                        {
                            return Err(StoreError::io(&p)(e));
                        }
                    }
                }
                Err(e) => return Err(StoreError::io(&p)(e)),
            }
            Arc::make_mut(&mut self.msgs)[i].gone = true;
        }
        for sub in ["cur", "new"] {
            let d = self.path.join(sub);
            crate::store::durable::fsync_dir(&d).map_err(StoreError::io(&d))?;
        }
        Ok(())
    }

    /// Where a message's file is now, following a rename by another
    /// process; `None` when it is gone.
    pub fn file_path(&self, index: usize) -> Option<PathBuf> {
        let m = &self.msgs[index];
        let p = m.path(&self.path);
        if p.exists() {
            return Some(p);
        }
        let (s, n) = uidlist::locate(&self.path, m.base())?;
        Some(self.path.join(s).join(n))
    }

    /// Opens a message's file, following a rename by another process.
    pub fn open_file(&self, index: usize) -> Option<fs::File> {
        let m = &self.msgs[index];
        match fs::File::open(m.path(&self.path)) {
            Ok(f) => Some(f),
            Err(_) => {
                let (s, n) = uidlist::locate(&self.path, m.base())?;
                fs::File::open(self.path.join(s).join(n)).ok()
            }
        }
    }

    /// The IMAP names of a message's flags.
    pub fn flag_names(&self, m: &Msg) -> Vec<String> {
        let mut v: Vec<String> = m.flags.system_names().map(str::to_owned).collect();
        for i in m.flags.keyword_indexes() {
            if let Some(k) = self.keywords.name(i) {
                v.push(k.to_owned());
            }
        }
        if m.recent {
            v.push("\\Recent".into());
        }
        v
    }
}

/// RFC 3501 2.3.2: marks which of `msgs[from..]` are \Recent to this
/// session; whether a file was moved from `new/` to `cur/`.
///
/// Recent are the messages at or above the folder's first recent UID
/// ([`recent`]) and those still in `new/`. Read-only (EXAMINE), that is
/// all: nothing is claimed. Read-write, the session claims them, so that
/// no other session is told of them as recent:
///
/// - the UIDs from the first recent one up, by raising it to UIDNEXT under
///   its lock. The files of that range still in `new/` move to `cur/`
///   before the number is raised, still under the lock: a session that
///   reads the raised number without the lock finds them moved already.
/// - a file in `new/` below it (any, in a folder without `ownmail-recent`;
///   one another program put back there), by moving it to `cur/`: the one
///   session whose rename succeeds.
///
/// A crash between the moves and the raise leaves the moved files above
/// the old number, and the next session is told of them, the crashed one
/// having answered nothing yet.
///
/// When the number cannot be read, locked or raised (a read-only folder,
/// a full disk), the moves alone decide, as in a Maildir without the file;
/// the fault is logged.
fn mark_recent(
    folder: &Path,
    uid_validity: u32,
    next_uid: u32,
    read_only: bool,
    msgs: &mut Arc<Vec<Msg>>,
    from: usize,
) -> bool {
    let log = |what: &str, e: io::Error| {
        tracing::error!(folder = %folder.display(), "imap: {what} {}: {e}", recent::FILE_NAME);
    };
    let first = recent::load(folder, uid_validity).unwrap_or_else(|e| {
        log("reading", e);
        None
    });
    let by_number = |m: &Msg, first: Option<u32>| first.is_some_and(|r| m.uid >= r);
    // The view is in UID order: whether any message is at or above the
    // number is its last one's (a SELECT of a big folder scans no more
    // than for `new/`).
    let any_recent = |first: Option<u32>| {
        msgs[from..].last().is_some_and(|m| by_number(m, first))
            || msgs[from..].iter().any(|m| m.in_new)
    };
    if read_only {
        if any_recent(first) {
            for m in &mut Arc::make_mut(msgs)[from..] {
                m.recent = m.in_new || by_number(m, first);
            }
        }
        return false;
    }
    let claim = match first {
        // Nothing of ours above the number: only what is left in `new/`.
        Some(_) if !msgs[from..].last().is_some_and(|m| by_number(m, first)) => None,
        _ => match recent::lock(folder, uid_validity) {
            Ok(c) => Some(c),
            Err(e) => {
                log("locking", e);
                None
            }
        },
    };
    let first = claim.as_ref().and_then(|c| c.first_recent);
    if !any_recent(first) {
        if let Some(c) = claim
            && let Err(e) = c.raise(next_uid)
        {
            log("writing", e);
        }
        return false;
    }
    let mut moved = false;
    let mut numbered = Vec::new();
    for (i, m) in Arc::make_mut(msgs).iter_mut().enumerate().skip(from) {
        if m.in_new && claim_new(folder, m) {
            moved = true;
            m.recent = true;
        }
        if by_number(m, first) {
            m.recent = true;
            numbered.push(i);
        }
    }
    if let Some(c) = claim
        && let Err(e) = c.raise(next_uid)
    {
        log("writing", e);
        // Not raised: the next session is told of these as recent (the
        // moved ones too, being above the number), so this one is not.
        for i in numbered {
            Arc::make_mut(msgs)[i].recent = false;
        }
    }
    moved
}

/// Moves a message from `new/` to `cur/`; whether this call moved it (not
/// another process, first).
fn claim_new(folder: &Path, m: &mut Msg) -> bool {
    let to = format!("{}:2,{}", m.base(), m.flags);
    if fs::rename(
        folder.join("new").join(&*m.name),
        folder.join("cur").join(&to),
    )
    .is_ok()
    {
        m.in_new = false;
        m.name = to.into();
        return true;
    }
    false
}

/// The view of a listing as a session starts from: made once per listing,
/// shared by every session that opens the folder while it holds.
fn view(listing: &Listing) -> Arc<Vec<Msg>> {
    listing
        .view
        .get_or_init(|| Arc::new(listing.msgs.iter().map(to_msg).collect()))
        .clone()
}

fn to_msg(f: &Entry) -> Msg {
    Msg {
        uid: f.uid,
        in_new: f.sub == "new",
        name: f.name.clone(),
        flags: f.flags,
        recent: false,
        gone: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::imap::SeqSet;

    fn folder_with(names: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        for (sub, n) in names {
            fs::write(dir.path().join(sub).join(n), "a\nb\n").unwrap();
        }
        dir
    }

    #[test]
    fn a_view_entry_is_32_bytes_and_keeps_its_folder_flags_and_marks() {
        assert!(
            std::mem::size_of::<Msg>() <= 32,
            "{}",
            std::mem::size_of::<Msg>()
        );
        let mut flags = Flags::from_file_name("1.a:2,DFRST");
        flags.set_keyword(25);
        let e = Entry {
            uid: u32::MAX,
            sub: "new",
            name: "1.a:2,DFRST".into(),
            flags,
        };
        let mut m = to_msg(&e);
        assert_eq!((m.uid, m.sub(), &*m.name), (u32::MAX, "new", "1.a:2,DFRST"));
        assert_eq!(m.flags, flags);
        for letter in *b"DFRST" {
            assert!(m.flags.has_system(letter), "{}", letter as char);
        }
        assert!(!m.flags.has_system(b'P'));
        assert!(m.flags.has_keyword(25) && !m.flags.has_keyword(24));
        assert!(!m.recent && !m.gone);
        m.recent = true;
        m.set_sub("cur");
        assert_eq!((m.sub(), m.recent, m.gone), ("cur", true, false));
        m.gone = true;
        m.set_sub("new");
        assert_eq!((m.sub(), m.recent, m.gone), ("new", true, true));
        assert_eq!(m.path(Path::new("/f")), Path::new("/f/new/1.a:2,DFRST"));
    }

    #[test]
    fn select_moves_new_to_cur_and_marks_recent() {
        let d = folder_with(&[("new", "1.a,S=4,W=6"), ("cur", "2.b:2,S")]);
        let s = Selected::open(MailboxName::inbox(), d.path().into(), false).unwrap();
        assert_eq!(s.msgs.len(), 2);
        assert!(s.msgs[0].recent && !s.msgs[1].recent);
        assert_eq!(s.msgs[0].sub(), "cur");
        assert!(d.path().join("cur/1.a,S=4,W=6:2,").exists());
        assert_eq!(s.msgs[0].vsize(d.path()), 6);
        assert_eq!(s.msgs[1].vsize(d.path()), 6);
        // A second session sees the same UIDs, nothing recent.
        let s2 = Selected::open(MailboxName::inbox(), d.path().into(), false).unwrap();
        assert_eq!(
            s2.msgs.iter().map(|m| m.uid).collect::<Vec<_>>(),
            s.msgs.iter().map(|m| m.uid).collect::<Vec<_>>()
        );
        assert!(!s2.msgs[0].recent);
    }

    #[test]
    fn a_file_in_new_below_the_first_recent_uid_is_recent_to_whoever_moves_it() {
        let d = folder_with(&[("cur", "1.a:2,S"), ("new", "2.b"), ("cur", "3.c:2,S")]);
        let uv = uidlist::sync(d.path()).unwrap().uid_validity;
        recent::lock(d.path(), uv).unwrap().raise(3).unwrap();
        let mut e = Selected::open(MailboxName::inbox(), d.path().into(), true).unwrap();
        let recent = |s: &Selected| s.msgs.iter().map(|m| m.recent).collect::<Vec<_>>();
        assert_eq!(recent(&e), [false, true, true], "EXAMINE");
        let s = Selected::open(MailboxName::inbox(), d.path().into(), false).unwrap();
        assert_eq!(recent(&s), [false, true, true], "SELECT");
        assert_eq!(recent::load(d.path(), uv).unwrap(), Some(4));
        assert!(d.path().join("cur/2.b:2,").exists());
        let s2 = Selected::open(MailboxName::inbox(), d.path().into(), false).unwrap();
        assert_eq!(recent(&s2), [false, false, false]);
        // The EXAMINE keeps what it was told.
        e.refresh(true).unwrap();
        assert_eq!(recent(&e), [false, true, true]);
    }

    fn age(path: &Path) {
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(10);
        for p in [
            path.join("new"),
            path.join("cur"),
            path.join(uidlist::FILE_NAME),
        ] {
            fs::File::open(&p).unwrap().set_modified(old).unwrap();
        }
    }

    #[test]
    fn an_unchanged_folder_is_not_read_again_and_a_changed_one_is() {
        let d = folder_with(&[("cur", "1.a:2,")]);
        let mut s = Selected::open(MailboxName::inbox(), d.path().into(), false).unwrap();
        age(d.path());
        assert_eq!(s.refresh(true).unwrap(), Changes::default());
        let first = s.seen.clone();
        assert_eq!(s.refresh(true).unwrap(), Changes::default());
        assert!(
            Arc::ptr_eq(&first, &s.seen),
            "an unchanged folder is not read again"
        );
        // Trusted: a change to the list alone (no directory touched) is not
        // looked for, which is what saves the read.
        let list = fs::read_to_string(d.path().join(uidlist::FILE_NAME)).unwrap();
        assert_eq!(s.refresh(true).unwrap(), Changes::default());
        // A delivery touches new/: seen at once.
        fs::write(d.path().join("new/2.b"), "x").unwrap();
        assert_eq!(s.refresh(true).unwrap().exists, Some(2));
        // A flag change by another process renames within cur/: seen.
        age(d.path());
        s.refresh(true).unwrap();
        let before = s.msgs[0].path(d.path());
        fs::rename(&before, d.path().join("cur/1.a:2,S")).unwrap();
        assert_eq!(s.refresh(true).unwrap().flags, vec![1]);
        assert!(list.starts_with("3 V"));
    }

    #[test]
    fn sessions_share_one_view_until_one_changes_its_own() {
        let d = folder_with(&[("cur", "1.a:2,"), ("cur", "2.b:2,")]);
        let mut a = Selected::open(MailboxName::inbox(), d.path().into(), false).unwrap();
        age(d.path());
        let mut a2 = Selected::open(MailboxName::inbox(), d.path().into(), false).unwrap();
        let b = Selected::open(MailboxName::inbox(), d.path().into(), false).unwrap();
        assert!(Arc::ptr_eq(&a2.msgs, &b.msgs), "a SELECT copies no view");
        // A NOOP with nothing to report copies nothing either.
        a2.refresh(true).unwrap();
        assert!(Arc::ptr_eq(&a2.msgs, &b.msgs));
        // A flag change is this session's own until the others look.
        a2.set_flags(1, |mut f| {
            f.set_system(b'F');
            f
        })
        .unwrap();
        assert!(a2.msgs[1].flags.has_system(b'F'));
        assert!(!b.msgs[1].flags.has_system(b'F'));
        assert!(!Arc::ptr_eq(&a2.msgs, &b.msgs));
        // And the first session sees it at its next look.
        age(d.path());
        assert_eq!(a.refresh(true).unwrap().flags, vec![2]);
        assert!(a.msgs[1].flags.has_system(b'F'));
        assert!(!b.msgs[1].flags.has_system(b'F'));
    }

    #[test]
    fn two_views_see_each_others_changes_in_order() {
        let d = folder_with(&[("cur", "1.a:2,"), ("cur", "2.b:2,"), ("cur", "3.c:2,")]);
        let mut a = Selected::open(MailboxName::inbox(), d.path().into(), false).unwrap();
        let mut b = Selected::open(MailboxName::inbox(), d.path().into(), false).unwrap();
        a.set_flags(0, |mut f| {
            f.set_system(b'S');
            f
        })
        .unwrap();
        a.remove(&[1]).unwrap();
        assert_eq!(a.take_gone(), vec![2]);
        fs::write(d.path().join("new/4.d"), "x").unwrap();
        // During a FETCH, b hears of flags and the new message, not the expunge.
        let c = b.refresh(false).unwrap();
        assert_eq!(c.expunged, Vec::<u32>::new());
        assert_eq!(c.flags, vec![1]);
        assert_eq!(c.exists, Some(4));
        assert_eq!(b.msgs[3].uid, 4);
        // At NOOP, the expunge.
        let c = b.refresh(true).unwrap();
        assert_eq!(c.expunged, vec![2]);
        assert_eq!(b.msgs.len(), 3);
        // b changes flags on a file a renamed: found by base name.
        let i = b.resolve(&SeqSet(vec![(1, 1)]), false)[0];
        Arc::make_mut(&mut b.msgs)[i].name = "1.a:2,".into(); // stale name
        b.set_flags(i, |mut f| {
            f.set_system(b'F');
            f
        })
        .unwrap();
        assert!(d.path().join("cur/1.a:2,FS").exists());
        assert_eq!(b.resolve(&SeqSet(vec![(3, u32::MAX)]), true), vec![1, 2]);
    }
}
