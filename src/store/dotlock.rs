//! Dotlocks as Dovecot takes them on `dovecot-keywords` and
//! `dovecot-uidlist`: the lock is the file `<name>.lock`, created with
//! O_EXCL, and the new contents are written into the lock itself and renamed
//! over `<name>`, which releases the lock and publishes the file in one step.
//!
//! A lock older than [`STALE_AFTER`] belongs to a process that died, and is
//! taken over (Dovecot uses the same two minutes for the uidlist).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::durable;

/// A lock not touched for this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(120);

/// A held dotlock. Dropping it without [`DotLock::replace`] removes the lock
/// and leaves the locked file as it was.
#[derive(Debug)]
pub struct DotLock {
    target: PathBuf,
    lock: PathBuf,
    file: Option<File>,
}

impl DotLock {
    /// Takes the lock on `target`, waiting up to `timeout` for another holder.
    pub fn acquire(target: &Path, timeout: Duration) -> io::Result<DotLock> {
        let mut lock = target.as_os_str().to_owned();
        lock.push(".lock");
        let lock = PathBuf::from(lock);
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            match durable::create_new(&lock, 0o600) {
                Ok(file) => {
                    return Ok(DotLock {
                        target: target.to_owned(),
                        lock,
                        file: Some(file),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            if is_stale(&lock) {
                tracing::warn!(lock = %lock.display(), "taking over a stale lock");
                // Another waiter may take it over at the same moment; the
                // O_EXCL create above decides who wins.
                let _ = fs::remove_file(&lock);
                continue;
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("timed out waiting for lock {}", lock.display()),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Writes `contents` as the new locked file, durably, and releases the lock.
    pub fn replace(mut self, contents: &[u8]) -> io::Result<()> {
        let mut file = self.file.take().expect("a held lock has its file");
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&self.lock, &self.target)?;
        self.lock = PathBuf::new();
        durable::fsync_dir(durable::parent_dir(&self.target))
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        if !self.lock.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.lock);
        }
    }
}

fn is_stale(lock: &Path) -> bool {
    fs::metadata(lock)
        .and_then(|m| m.modified())
        .map(|t| SystemTime::now().duration_since(t).unwrap_or_default() > STALE_AFTER)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_locker_waits_then_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("dovecot-keywords");
        let held = DotLock::acquire(&target, Duration::from_secs(1)).unwrap();
        let err = DotLock::acquire(&target, Duration::from_millis(50)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        held.replace(b"0 work\n").unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "0 work\n");
        assert!(!dir.path().join("dovecot-keywords.lock").exists());
        // Released by replace: a new locker gets it at once; dropping leaves the file alone.
        drop(DotLock::acquire(&target, Duration::from_millis(50)).unwrap());
        assert_eq!(fs::read_to_string(&target).unwrap(), "0 work\n");
    }

    #[test]
    fn a_stale_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("dovecot-uidlist");
        let lock = dir.path().join("dovecot-uidlist.lock");
        fs::write(&lock, "").unwrap();
        let old = SystemTime::now() - STALE_AFTER - Duration::from_secs(5);
        File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(old)
            .unwrap();
        DotLock::acquire(&target, Duration::from_millis(50)).unwrap();
    }
}
