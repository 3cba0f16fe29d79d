//! `ownmail-recent`: the first UID that is still \Recent in a folder
//! (RFC 3501 2.3.2), in a file of ours beside `dovecot-uidlist`, as
//! Dovecot keeps `first_recent_uid` in its index.
//!
//! ```text
//! ownmail-recent 1 V1700000000 R42
//! ```
//!
//! `V` names the UIDVALIDITY the number belongs to, `R` is the first
//! recent UID: every message with a UID at or above it is recent to the
//! next session that selects the folder read-write, which then raises it
//! to UIDNEXT. A message that arrives in `cur/` (an APPEND with flags, a
//! COPY of a flagged message, `deliver --flags`) is thus recent as well as
//! one in `new/`.
//!
//! # Design (why it is safe)
//!
//! - The number is raised only under the `ownmail-recent.lock` dotlock
//!   (the same lock style as `dovecot-uidlist.lock`), after reading it
//!   again under the lock, and only ever upwards: of several sessions, the
//!   one that raises it over a UID is the only one told that UID is recent.
//! - The new value is written into a file beside it, fsynced and renamed
//!   over it, and the folder fsynced ([`DotLock::replace`]): a crash leaves
//!   the old number or the new one, never a lower one that would make a
//!   message recent a second time.
//! - A missing file, a damaged one or one of another UIDVALIDITY reads as
//!   "no number" ([`None`]): the caller falls back to the rule of a Maildir
//!   without it (what is in `new/` is recent), and the next raise writes a
//!   good file.
//!
//! This module never speaks IMAP and never moves a message.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::dotlock::DotLock;

pub const FILE_NAME: &str = "ownmail-recent";
const MAGIC: &str = "ownmail-recent 1";
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

fn path(folder: &Path) -> PathBuf {
    folder.join(FILE_NAME)
}

/// The folder's first recent UID for `uid_validity`; `None` when the file
/// is missing, damaged or belongs to another UIDVALIDITY.
pub fn load(folder: &Path, uid_validity: u32) -> io::Result<Option<u32>> {
    let mut text = String::new();
    match fs::File::open(path(folder)) {
        // Far more than a good file's length: a bigger one is damage.
        Ok(f) => match f.take(256).read_to_string(&mut text) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::InvalidData => return Ok(None),
            Err(e) => return Err(e),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    Ok(parse(&text, uid_validity))
}

fn parse(text: &str, uid_validity: u32) -> Option<u32> {
    let line = text.strip_suffix('\n')?;
    let rest = line.strip_prefix(MAGIC)?.strip_prefix(' ')?;
    let (mut v, mut r) = (None, None);
    for field in rest.split(' ') {
        if let Some(x) = field.strip_prefix('V') {
            v = x.parse::<u32>().ok();
        } else if let Some(x) = field.strip_prefix('R') {
            r = x.parse::<u32>().ok();
        }
    }
    (v? == uid_validity).then_some(r?)
}

/// The folder's number read under its lock, ready to be raised. Dropping
/// it without [`Claim::raise`] changes nothing.
#[derive(Debug)]
pub struct Claim {
    lock: DotLock,
    folder: PathBuf,
    uid_validity: u32,
    /// The first recent UID before this claim (`None`: no good file).
    pub first_recent: Option<u32>,
}

/// Takes the folder's `ownmail-recent.lock` and reads the number under it.
/// Waits up to ten seconds for another holder, then fails with
/// [`io::ErrorKind::TimedOut`].
pub fn lock(folder: &Path, uid_validity: u32) -> io::Result<Claim> {
    let lock = DotLock::acquire(&path(folder), LOCK_TIMEOUT)?;
    let first_recent = load(folder, uid_validity)?;
    Ok(Claim {
        lock,
        folder: folder.to_owned(),
        uid_validity,
        first_recent,
    })
}

impl Claim {
    /// Raises the first recent UID to `next_uid` (it never goes down),
    /// durably, and releases the lock. A missing or foreign file is written
    /// even when the number stays: from then on the folder follows it.
    pub fn raise(self, next_uid: u32) -> io::Result<()> {
        if self.first_recent.is_some_and(|r| r >= next_uid) {
            return Ok(());
        }
        let first = self.first_recent.unwrap_or(0).max(next_uid).max(1);
        let text = format!("{MAGIC} V{} R{first}\n", self.uid_validity);
        let folder = self.folder;
        self.lock
            .replace(text.as_bytes())
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path(&folder).display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_number_only_goes_up_and_belongs_to_its_uidvalidity() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(load(d.path(), 7).unwrap(), None);
        let c = lock(d.path(), 7).unwrap();
        assert_eq!(c.first_recent, None);
        c.raise(5).unwrap();
        assert_eq!(load(d.path(), 7).unwrap(), Some(5));
        assert!(!d.path().join("ownmail-recent.lock").exists());
        // Lower: kept as it is.
        lock(d.path(), 7).unwrap().raise(3).unwrap();
        assert_eq!(load(d.path(), 7).unwrap(), Some(5));
        lock(d.path(), 7).unwrap().raise(9).unwrap();
        assert_eq!(load(d.path(), 7).unwrap(), Some(9));
        assert_eq!(
            fs::read_to_string(d.path().join(FILE_NAME)).unwrap(),
            "ownmail-recent 1 V7 R9\n"
        );
        // Another UIDVALIDITY: no number, and the next raise starts over.
        assert_eq!(load(d.path(), 8).unwrap(), None);
        lock(d.path(), 8).unwrap().raise(2).unwrap();
        assert_eq!(load(d.path(), 8).unwrap(), Some(2));
    }

    #[test]
    fn a_damaged_file_reads_as_none() {
        let d = tempfile::tempdir().unwrap();
        for bad in [
            &b""[..],
            b"ownmail-recent 1 V7 R",
            b"ownmail-recent 1 V7 R5",
            b"ownmail-recent 2 V7 R5\n",
            b"ownmail-recent 1 V7\n",
            b"\xff\xfe\n",
        ] {
            fs::write(d.path().join(FILE_NAME), bad).unwrap();
            assert_eq!(load(d.path(), 7).unwrap(), None, "{bad:?}");
        }
    }

    #[test]
    fn a_held_lock_makes_a_second_claimer_wait_for_the_raised_number() {
        let d = tempfile::tempdir().unwrap();
        let first = lock(d.path(), 7).unwrap();
        let dir = d.path().to_owned();
        let waiter = std::thread::spawn(move || lock(&dir, 7).unwrap().first_recent);
        std::thread::sleep(Duration::from_millis(50));
        first.raise(4).unwrap();
        assert_eq!(waiter.join().unwrap(), Some(4));
    }
}
