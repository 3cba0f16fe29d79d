//! Dotlocks as Dovecot takes them on `dovecot-keywords` and
//! `dovecot-uidlist`: the lock is the file `<name>.lock`, created with
//! O_EXCL. While it exists, nobody else changes `<name>`.
//!
//! The lock file holds `<pid>:<host>`, the format of Dovecot's own
//! `file_dotlock_create`, for as long as it exists: a lock left by a process
//! that was killed (kill -9, a crash) is recognised at once by the next
//! locker on the same host, us or Dovecot, because that process is gone.
//! The new contents of `<name>` are written into a file beside it, fsynced
//! and renamed over `<name>` while the lock is held; then the lock is
//! removed. (Writing the contents into the lock itself and renaming it over
//! `<name>`, as Dovecot does for the keywords, leaves a lock with no pid in
//! it when the process dies between the write and the rename: every later
//! locker then waits for [`STALE_AFTER`]. A `convert-mbox` killed there made
//! the next run fail for two minutes.)
//!
//! A lock whose owner cannot be told (another host, a pid reused, an older
//! program) is taken over when it is older than [`STALE_AFTER`]; Dovecot
//! uses the same two minutes for the uidlist.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::delivery::system_hostname;
use super::durable;

/// A lock not touched for this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(120);

/// A held dotlock. Dropping it without [`DotLock::replace`] removes the lock
/// and leaves the locked file as it was.
#[derive(Debug)]
pub struct DotLock {
    target: PathBuf,
    lock: PathBuf,
    held: bool,
}

impl DotLock {
    /// Takes the lock on `target`, waiting up to `timeout` for another holder.
    pub fn acquire(target: &Path, timeout: Duration) -> io::Result<DotLock> {
        let lock = suffixed(target, ".lock");
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            match durable::create_new(&lock, 0o600) {
                Ok(mut file) => {
                    let held = DotLock {
                        target: target.to_owned(),
                        lock,
                        held: true,
                    };
                    // Not fsynced: after a power loss every pid is gone
                    // anyway, or reused, and then the age decides.
                    file.write_all(owner_text(std::process::id()).as_bytes())?;
                    return Ok(held);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            if let Some(why) = stale(&lock) {
                tracing::warn!(lock = %lock.display(), "taking over a stale lock ({why})");
                // Another waiter may take it over at the same moment; the
                // O_EXCL create above decides who wins.
                let _ = fs::remove_file(&lock);
                if let Stale::Dead(pid) = why {
                    let _ = fs::remove_file(new_contents_path(target, pid));
                }
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

    /// Writes `contents` as the new locked file, durably, and releases the
    /// lock: the contents into a file beside the target, fsynced, renamed
    /// over it, the lock removed, the directory fsynced.
    pub fn replace(self, contents: &[u8]) -> io::Result<()> {
        self.replace_with(contents, true)
    }

    /// As [`DotLock::replace`], without either fsync: for a file whose
    /// loss, emptiness or staleness after a crash is harmless (the caller
    /// says why in a comment). The rename still makes the change atomic for
    /// every reader.
    pub fn replace_not_durably(self, contents: &[u8]) -> io::Result<()> {
        self.replace_with(contents, false)
    }

    fn replace_with(mut self, contents: &[u8], durably: bool) -> io::Result<()> {
        let new = new_contents_path(&self.target, std::process::id());
        let result = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&new)?;
            file.write_all(contents)?;
            if durably {
                file.sync_all()?;
            }
            fs::rename(&new, &self.target)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&new);
        }
        result?;
        fs::remove_file(&self.lock)?;
        self.held = false;
        if durably {
            durable::fsync_dir(durable::parent_dir(&self.target))?;
        }
        Ok(())
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        if self.held {
            let _ = fs::remove_file(&self.lock);
        }
    }
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Where the holder `pid` writes the new contents: one name per process,
/// so a holder that lost its lock to a takeover cannot write into another's.
fn new_contents_path(target: &Path, pid: u32) -> PathBuf {
    suffixed(target, &format!(".lock.{pid}.new"))
}

/// What a lock file says about its owner: Dovecot's `<pid>:<host>`, with
/// the host name as gethostname(2) gives it.
pub fn owner_text(pid: u32) -> String {
    format!("{pid}:{}", host())
}

fn host() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(system_hostname)
}

/// Why a lock is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stale {
    /// Its owner on this host is gone.
    Dead(u32),
    /// Untouched for [`STALE_AFTER`].
    Old,
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stale::Dead(pid) => write!(f, "its process {pid} is gone"),
            Stale::Old => write!(f, "untouched for {} s", STALE_AFTER.as_secs()),
        }
    }
}

fn stale(lock: &Path) -> Option<Stale> {
    let mut text = String::new();
    let owner = File::open(lock)
        .and_then(|f| f.take(256).read_to_string(&mut text))
        .ok()
        .and_then(|_| {
            let (pid, on) = text.trim_end().split_once(':')?;
            (on == host()).then(|| pid.parse::<u32>().ok())?
        });
    if let Some(pid) = owner
        && pid != 0
        && pid != std::process::id()
        && !process_exists(pid)
    {
        return Some(Stale::Dead(pid));
    }
    let old = fs::metadata(lock)
        .and_then(|m| m.modified())
        .map(|t| SystemTime::now().duration_since(t).unwrap_or_default() > STALE_AFTER)
        .unwrap_or(false);
    old.then_some(Stale::Old)
}

/// Whether a process exists (kill(2) with signal 0; EPERM means it does,
/// under another user).
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 sends nothing; it only checks.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
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

    /// The pid of a process that has just exited.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn the_lock_names_its_owner_while_held_and_is_gone_after_replace() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("dovecot-keywords");
        let lock = dir.path().join("dovecot-keywords.lock");
        let held = DotLock::acquire(&target, Duration::from_secs(1)).unwrap();
        assert_eq!(
            fs::read_to_string(&lock).unwrap(),
            format!("{}:{}", std::process::id(), system_hostname())
        );
        held.replace(b"0 $Label1\n").unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "0 $Label1\n");
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["dovecot-keywords"], "no lock, no temporary file");
    }

    /// The bug: a convert-mbox killed between writing the new keywords into
    /// the lock and renaming it left a lock with no owner in it, and every
    /// run in the next two minutes failed ("timed out waiting for lock").
    #[test]
    fn a_lock_left_by_a_killed_process_is_taken_over_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("dovecot-keywords");
        fs::write(&target, "0 old\n").unwrap();
        let pid = dead_pid();
        fs::write(dir.path().join("dovecot-keywords.lock"), owner_text(pid)).unwrap();
        let half = new_contents_path(&target, pid);
        fs::write(&half, "0 old\n1 ne").unwrap();
        let started = Instant::now();
        let held = DotLock::acquire(&target, Duration::from_secs(5)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(
            !half.exists(),
            "the dead owner's half-written file is removed"
        );
        held.replace(b"0 old\n1 new\n").unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "0 old\n1 new\n");
    }

    #[test]
    fn a_lock_of_a_live_process_or_of_unknown_owner_is_respected() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("dovecot-uidlist");
        let lock = dir.path().join("dovecot-uidlist.lock");
        // Process 1 always exists; Dovecot's replace-style lock holds no pid;
        // another host's process cannot be checked.
        let dead = dead_pid();
        for text in [
            owner_text(1),
            "3 V1 N1\n".to_owned(),
            format!("{dead}:another.host.example"),
        ] {
            fs::write(&lock, &text).unwrap();
            let err = DotLock::acquire(&target, Duration::from_millis(50)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{text:?}");
            assert!(lock.exists());
        }
    }
}
