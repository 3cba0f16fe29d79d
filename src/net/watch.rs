//! Folder change notification for IDLE (RFC 2177): one inotify instance
//! (through `notify`) for the whole process, watching the `new/` and `cur/`
//! of every folder some session idles on, shared by all those sessions.
//! Linux allows a user only 128 inotify instances by default, so one per
//! session would not do with many clients.
//!
//! A notification only says "look now": the session reads the folder as it
//! always does, and the driver's periodic rescan stays as the safety net for
//! anything inotify misses (a full event queue, network file systems, a
//! failure to set up a watch).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::watch;

/// The subdirectories whose entries change when mail arrives, is flagged
/// or is expunged.
const SUBDIRS: [&str; 2] = ["new", "cur"];

struct Entry {
    users: usize,
    tx: watch::Sender<u64>,
}

struct Hub {
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
    /// Folder path -> its watchers.
    folders: Arc<Mutex<HashMap<PathBuf, Entry>>>,
}

fn hub() -> &'static Hub {
    static HUB: OnceLock<Hub> = OnceLock::new();
    HUB.get_or_init(|| {
        let folders: Arc<Mutex<HashMap<PathBuf, Entry>>> = Arc::default();
        let map = folders.clone();
        let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let Ok(ev) = ev else {
                // An overflowed queue and the like: wake everyone.
                if let Ok(map) = map.lock() {
                    for e in map.values() {
                        e.tx.send_modify(|n| *n = n.wrapping_add(1));
                    }
                }
                return;
            };
            let Ok(map) = map.lock() else { return };
            for path in &ev.paths {
                // <folder>/new/<file> or <folder>/cur/<file>, or the
                // subdirectory itself.
                let folder = path
                    .ancestors()
                    .skip(1)
                    .find(|a| map.contains_key(*a))
                    .filter(|f| {
                        path.strip_prefix(f)
                            .is_ok_and(|r| r.components().count() <= 2)
                    });
                if let Some(e) = folder.and_then(|f| map.get(f)) {
                    e.tx.send_modify(|n| *n = n.wrapping_add(1));
                }
            }
        });
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("imap: no inotify ({e}); IDLE falls back to polling");
                None
            }
        };
        Hub {
            watcher: Mutex::new(watcher),
            folders,
        }
    })
}

/// A session's interest in one folder; dropping it ends the watch when no
/// other session shares it.
pub struct FolderWatch {
    folder: PathBuf,
    rx: watch::Receiver<u64>,
}

impl FolderWatch {
    /// Watches `folder` (a Maildir folder: `new/` and `cur/` below it).
    /// None when inotify is not available or the watch cannot be set up;
    /// the caller then polls.
    pub fn new(folder: &Path) -> Option<FolderWatch> {
        let hub = hub();
        // The watcher's lock serializes watching and unwatching; the
        // folders' lock is only ever held briefly, and never across a call
        // into the watcher: notify's watch() and unwatch() wait for its
        // event thread, which takes the folders' lock to deliver an event
        // (holding it across them deadlocked the first test that raced an
        // event with a drop).
        let mut watcher = hub.watcher.lock().ok()?;
        let watcher = watcher.as_mut()?;
        if let Some(e) = hub.folders.lock().ok()?.get_mut(folder) {
            e.users += 1;
            return Some(FolderWatch {
                folder: folder.to_owned(),
                rx: e.tx.subscribe(),
            });
        }
        for (i, sub) in SUBDIRS.iter().enumerate() {
            if let Err(e) = watcher.watch(&folder.join(sub), RecursiveMode::NonRecursive) {
                tracing::warn!(folder = %folder.display(), "imap: cannot watch for IDLE ({e}); polling");
                for done in &SUBDIRS[..i] {
                    let _ = watcher.unwatch(&folder.join(done));
                }
                return None;
            }
        }
        let (tx, rx) = watch::channel(0);
        hub.folders
            .lock()
            .ok()?
            .insert(folder.to_owned(), Entry { users: 1, tx });
        Some(FolderWatch {
            folder: folder.to_owned(),
            rx,
        })
    }

    /// Waits until something changed in the folder since the last call.
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            // The sender is gone (cannot happen while we hold an entry):
            // never wake, the rescan goes on.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for FolderWatch {
    fn drop(&mut self) {
        let hub = hub();
        // As in new(): the watcher's lock for the whole change, the
        // folders' lock only around the map, released before unwatch().
        let Ok(mut watcher) = hub.watcher.lock() else {
            return;
        };
        let last = {
            let Ok(mut folders) = hub.folders.lock() else {
                return;
            };
            match folders.get_mut(&self.folder) {
                Some(e) if e.users > 1 => {
                    e.users -= 1;
                    false
                }
                Some(_) => {
                    folders.remove(&self.folder);
                    true
                }
                None => false,
            }
        };
        if last && let Some(w) = watcher.as_mut() {
            for sub in SUBDIRS {
                let _ = w.unwatch(&self.folder.join(sub));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_new_file_wakes_every_watcher_of_the_folder_and_only_them() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        for f in [&a, &b] {
            for sub in ["new", "cur", "tmp"] {
                std::fs::create_dir_all(f.join(sub)).unwrap();
            }
        }
        let mut w1 = FolderWatch::new(&a).expect("inotify works here");
        let mut w2 = FolderWatch::new(&a).unwrap();
        let mut wb = FolderWatch::new(&b).unwrap();
        std::fs::write(a.join("tmp/m"), b"x").unwrap();
        std::fs::rename(a.join("tmp/m"), a.join("new/m")).unwrap();
        let within = Duration::from_secs(2);
        tokio::time::timeout(within, w1.changed()).await.unwrap();
        tokio::time::timeout(within, w2.changed()).await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(300), wb.changed())
                .await
                .is_err()
        );
        // The last watcher of a folder ends its watch.
        drop(w1);
        drop(w2);
        assert!(!hub().folders.lock().unwrap().contains_key(&a));
        std::fs::write(b.join("new/n"), b"x").unwrap();
        tokio::time::timeout(within, wb.changed()).await.unwrap();
    }

    /// Regression: `drop` held the folders' lock across `unwatch()`, which
    /// waits for notify's event thread, while that thread waited for the
    /// same lock to deliver an event: a deadlock (it hung the CI run). Here
    /// watches come and go while events pour in; all of it must finish.
    #[test]
    fn watches_come_and_go_while_events_pour_in_without_a_deadlock() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("busy");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(folder.join(sub)).unwrap();
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (folder, stop) = (folder.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let f = folder.join(format!("new/{}", n % 50));
                    let _ = std::fs::write(&f, b"x");
                    let _ = std::fs::remove_file(&f);
                    n += 1;
                }
            })
        };
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let churn = {
            let folder = folder.clone();
            std::thread::spawn(move || {
                for _ in 0..300 {
                    let a = FolderWatch::new(&folder).expect("inotify works here");
                    let b = FolderWatch::new(&folder).unwrap();
                    drop(a);
                    drop(b);
                }
                let _ = done_tx.send(());
            })
        };
        let finished = done_rx.recv_timeout(Duration::from_secs(60)).is_ok();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
        assert!(
            finished,
            "watching and unwatching deadlocked with the event thread"
        );
        churn.join().unwrap();
    }
}
