//! `dovecot-uidvalidity`: where a user's next UIDVALIDITY comes from, kept
//! in the Maildir root as Dovecot keeps it (lib-storage's
//! mailbox-uidvalidity.c), so that a folder made again under the name of
//! one deleted or renamed away never gets the UIDVALIDITY the old one had,
//! not even within the same second (RFC 3501 2.3.1.1), and Dovecot and
//! ownmail never give two folders the same one.
//!
//! ```text
//! <root>/dovecot-uidvalidity            "6553f100": the last value given, 8 hex digits
//! <root>/dovecot-uidvalidity.6553f100   empty, read-only: the same value, and the truth
//! ```
//!
//! Taking a value is renaming the empty file from the last value to the
//! new one: of several processes racing, one rename succeeds and the
//! others find the name gone and look again. The new value is the current
//! time, or the last value plus one when that is not older. Dovecot's
//! first value is the time too, then it counts up by one; either way every
//! value is higher than the last, which is all that either program relies
//! on. The first file is made with `O_EXCL`, mode 0444, as Dovecot makes
//! it. `dovecot-uidvalidity` itself is only a hint for Dovecot's fast
//! path: 8 lower-case hex digits, no newline, rewritten after every change
//! (Dovecot rescans the directory when it is missing or not 8 digits).
//! Checked against Dovecot 2.3's `mailbox-uidvalidity.c`.
//!
//! This module never speaks IMAP.

use super::durable;
use super::uidlist::now_secs;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "dovecot-uidvalidity";
/// Races lost in a row before giving up (Dovecot tries 10 times).
const RETRIES: usize = 50;

/// The Maildir root a folder belongs to: its parent for a Maildir++
/// subfolder (it has a `maildirfolder` file), else the folder itself
/// (INBOX is the root).
pub fn root_of(folder: &Path) -> &Path {
    match folder.parent() {
        Some(parent) if folder.join("maildirfolder").exists() => parent,
        _ => folder,
    }
}

fn marker(root: &Path, value: u32) -> PathBuf {
    root.join(format!("{FILE_NAME}.{value:08x}"))
}

/// The highest value a `dovecot-uidvalidity.<hex>` file names, when there
/// is one; lower ones (left by a crash or a lost race) are removed.
fn current(root: &Path) -> io::Result<Option<u32>> {
    let prefix = format!("{FILE_NAME}.");
    let mut values = Vec::new();
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if hex.len() == 8
            && let Ok(v) = u32::from_str_radix(hex, 16)
            && v != 0
        {
            values.push(v);
        }
    }
    let max = values.iter().copied().max();
    for v in values.into_iter().filter(|&v| Some(v) != max) {
        let _ = fs::remove_file(marker(root, v));
    }
    Ok(max)
}

/// Takes the next UIDVALIDITY of the user whose Maildir root is `root`:
/// never one given before by ownmail or Dovecot, and durable (the root
/// fsynced) before it is returned.
pub fn next(root: &Path) -> io::Result<u32> {
    for _ in 0..RETRIES {
        let now = now_secs();
        let taken = match current(root)? {
            None => {
                let v = now;
                match durable::create_new(&marker(root, v), 0o444) {
                    Ok(_) => Some(v),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => None,
                    Err(e) => return Err(e),
                }
            }
            Some(u32::MAX) => {
                return Err(io::Error::other(
                    "every UIDVALIDITY has been used (dovecot-uidvalidity.ffffffff)",
                ));
            }
            Some(last) => {
                let v = now.max(last + 1);
                match durable::rename_noreplace(&marker(root, last), &marker(root, v)) {
                    Ok(()) => Some(v),
                    // Another process took a value meanwhile: look again.
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::NotFound | io::ErrorKind::AlreadyExists
                        ) =>
                    {
                        None
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        if let Some(v) = taken {
            durable::fsync_dir(root)?;
            // The hint for Dovecot's fast path; a stale one only sends it
            // to the rescan above.
            let hint = root.join(FILE_NAME);
            if let Err(e) = durable::replace_file(&hint, format!("{v:08x}").as_bytes(), 0o600) {
                tracing::warn!(path = %hint.display(), "cannot update: {e}");
            }
            return Ok(v);
        }
    }
    Err(io::Error::other(
        "dovecot-uidvalidity: too many processes taking values at once",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_repeat_within_a_second_and_follow_dovecots_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let a = next(root).unwrap();
        let b = next(root).unwrap();
        let c = next(root).unwrap();
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(a >= now_secs() - 5);
        assert_eq!(
            fs::read_to_string(root.join(FILE_NAME)).unwrap(),
            format!("{c:08x}")
        );
        let markers: Vec<String> = fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("dovecot-uidvalidity."))
            .collect();
        assert_eq!(markers, vec![format!("dovecot-uidvalidity.{c:08x}")]);
        // Dovecot counted up past the clock: we go on from its value.
        fs::rename(marker(root, c), marker(root, c + 1000)).unwrap();
        assert_eq!(next(root).unwrap(), c + 1001);
        // Two files (a crash): the higher wins, the lower goes.
        durable::create_new(&marker(root, 5), 0o444).unwrap();
        assert_eq!(next(root).unwrap(), c + 1002);
        assert!(!marker(root, 5).exists());
    }

    #[test]
    fn concurrent_takers_never_get_the_same_value() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let root = root.clone();
                std::thread::spawn(move || (0..5).map(|_| next(&root)).collect::<Vec<_>>())
            })
            .collect();
        let mut all = Vec::new();
        for t in threads {
            // A race lost every time in a row is an error, never a repeat.
            all.extend(t.join().unwrap().into_iter().flatten());
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
        assert!(n >= 20, "{n}");
    }

    #[test]
    fn the_root_of_a_subfolder_is_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join(".Sent");
        fs::create_dir(&sub).unwrap();
        assert_eq!(root_of(&sub), sub.as_path());
        fs::write(sub.join("maildirfolder"), "").unwrap();
        assert_eq!(root_of(&sub), dir.path());
        assert_eq!(root_of(dir.path()), dir.path());
    }
}
