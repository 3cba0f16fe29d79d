//! One `fetch` per account at a time: an flock(2) on
//! `<data_dir>/fetch/<account>.lock`. The kernel releases it when the
//! process dies, however it dies, so a `kill -9` never leaves an account
//! locked (a dotlock would, until it went stale).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A held account lock; dropping it releases the lock.
#[derive(Debug)]
pub struct AccountLock {
    _file: File,
    path: PathBuf,
}

impl AccountLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the lock of `account` in `dir`, waiting up to `wait` for another
/// `fetch` to finish. `None`: it is still busy.
pub async fn acquire(dir: &Path, account: &str, wait: Duration) -> io::Result<Option<AccountLock>> {
    let path = dir.join(format!("{account}.lock"));
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)?
    };
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(20);
    loop {
        // SAFETY: a valid descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Some(AccountLock { _file: file, path }));
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) && err.kind() != io::ErrorKind::Interrupted
        {
            return Err(err);
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_taker_waits_then_gives_up_and_gets_it_once_free() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), "isp", Duration::ZERO).await.unwrap();
        assert!(first.is_some());
        let started = Instant::now();
        let second = acquire(dir.path(), "isp", Duration::from_millis(200))
            .await
            .unwrap();
        assert!(second.is_none());
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(
            acquire(dir.path(), "other", Duration::ZERO)
                .await
                .unwrap()
                .is_some(),
            "accounts lock separately"
        );
        drop(first);
        assert!(
            acquire(dir.path(), "isp", Duration::ZERO)
                .await
                .unwrap()
                .is_some()
        );
    }
}
