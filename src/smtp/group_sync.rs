//! Group commit across sessions: many sessions delivering into the same
//! folder at once share one sync instead of queueing an fsync each. A session's message is renamed into `new/` before
//! it asks; [`GroupSync::sync`] returns only after a sync that *started*
//! after the ask has finished, so the message is durable when it returns.
//!
//! The sync is a syncfs(2) of the folder's file system
//! ([`durable::sync_filesystem`]): it writes every new message's data and
//! inode and the directory naming it, and flushes the device cache. An
//! fsync of `new/` alone is enough only where the journal commit carries
//! the files' inodes along (ext4 with a journal); on a file system without
//! a journal the name could outlive a crash while the file's size did not.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use crate::store::durable;

/// The most folders remembered; past it, idle ones are forgotten.
const MAX_DIRS: usize = 10_000;

#[derive(Debug, Default)]
struct State {
    /// Asks so far.
    asked: u64,
    /// Every ask up to this one is covered by a finished fsync.
    done: u64,
    running: bool,
    /// The error of the last fsync, for the asks it covered.
    failed: Option<(u64, u64, String)>,
}

#[derive(Debug, Default)]
pub struct GroupSync {
    state: Mutex<State>,
    cond: Condvar,
}

impl GroupSync {
    /// The coordinator for one directory.
    pub fn for_dir(dir: &Path) -> Arc<GroupSync> {
        static ALL: OnceLock<Mutex<HashMap<PathBuf, Arc<GroupSync>>>> = OnceLock::new();
        let mut all = ALL
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if all.len() >= MAX_DIRS {
            all.retain(|_, g| Arc::strong_count(g) > 1);
        }
        all.entry(dir.to_owned()).or_default().clone()
    }

    /// Returns once `dir` has been fsynced by a call that started after
    /// this one was made.
    pub fn sync(&self, dir: &Path) -> std::io::Result<()> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.asked += 1;
        let mine = s.asked;
        loop {
            if s.done >= mine {
                return match &s.failed {
                    Some((from, to, e)) if (*from..=*to).contains(&mine) => {
                        Err(std::io::Error::other(e.clone()))
                    }
                    _ => Ok(()),
                };
            }
            if !s.running {
                s.running = true;
                let (from, to) = (s.done + 1, s.asked);
                drop(s);
                let result = durable::sync_filesystem(dir);
                s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                s.running = false;
                s.done = to;
                s.failed = result.err().map(|e| (from, to, e.to_string()));
                self.cond.notify_all();
                continue;
            }
            s = self.cond.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_asks_share_fsyncs_and_all_return() {
        let dir = tempfile::tempdir().unwrap();
        let g = GroupSync::for_dir(dir.path());
        assert!(Arc::ptr_eq(&g, &GroupSync::for_dir(dir.path())));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let g = g.clone();
                let d = dir.path().to_owned();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        g.sync(&d).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = g.state.lock().unwrap();
        assert_eq!((s.asked, s.done, s.running), (320, 320, false));
        // A failing fsync is reported to the asks it covered.
        let missing = GroupSync::default();
        assert!(missing.sync(&dir.path().join("gone")).is_err());
        assert!(missing.sync(dir.path()).is_ok());
    }
}
