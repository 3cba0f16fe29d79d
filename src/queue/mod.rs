//! The outbound queue: `<data_dir>/queue`, one message as two files.
//!
//! ```text
//! queue/<id>.eml    the message as received (CR LF line ends), never changed
//! queue/<id>.json   the envelope: sender, recipients and their state, retries
//! queue/tmp/        files being written
//! queue/corrupt/    entries set aside because they cannot be sent: an
//!                   envelope that does not parse, or one whose message
//!                   file is gone (with `<id>.reason`); never deleted
//! queue/entries.lock  flock(2) held while an envelope is replaced or an
//!                   entry removed, so that `queue delete` and the worker's
//!                   update never interleave
//! ```
//!
//! Durability (the `250` and `sendmail`'s exit 0 come after
//! [`Queue::enqueue`] returns): both files are written in `tmp/` and
//! fsynced; the `.eml` is renamed into place and the directory fsynced,
//! then the `.json`, and the directory fsynced again. The `.json` is the
//! commit point: a crash before it leaves an `.eml` alone, which was never
//! acknowledged and is removed by [`Queue::clean`]; after it, the message
//! is whole. Envelope updates replace the `.json` atomically, and only
//! while it exists: an entry `queue delete` removed while the worker was
//! sending it stays removed (regression: the worker's update wrote the
//! envelope back without its message, and that entry stopped the queue).
//!
//! [`worker`] sends what is queued.

pub mod bounce;
pub mod mx;
pub mod submit;
pub mod worker;

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{ExitStatus, io_exit_code, sysexits};
use crate::store::durable;

/// The envelope of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    /// The envelope sender; empty for the null sender of a bounce.
    pub sender: String,
    pub recipients: Vec<RecipientState>,
    /// Unix seconds.
    pub created: u64,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Unix seconds; 0: as soon as possible.
    pub next_attempt: u64,
}

impl Envelope {
    /// A bounce (null sender) never gets a bounce of its own (RFC 5321 6.1).
    pub fn is_bounce(&self) -> bool {
        self.sender.is_empty()
    }

    pub fn pending(&self) -> impl Iterator<Item = &RecipientState> {
        self.recipients
            .iter()
            .filter(|r| r.status == Status::Pending)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientState {
    pub address: String,
    pub status: Status,
    /// The last reply or error, for `queue show` and the bounce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Set when the server queued a local delivery: the user whose INBOX
    /// it goes to, `address` being the address that reached them (for
    /// `Delivered-To:`). Not looked up again: an alias that reaches several
    /// users is queued once per user, so a retry gives no one a second copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_user: Option<String>,
}

impl RecipientState {
    /// A recipient still to be sent to.
    pub fn pending(address: &str) -> RecipientState {
        RecipientState {
            address: address.to_owned(),
            status: Status::Pending,
            last_error: None,
            local_user: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Delivered,
    /// Refused for good, or expired; bounced (unless a bounce).
    Failed,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not a queue envelope: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("no queued message {0:?}")]
    NotFound(String),
    #[error("queued message {id}: the envelope is there but the message file {} is missing", path.display())]
    MissingMessage { id: String, path: PathBuf },
}

impl ExitStatus for QueueError {
    fn exit_code(&self) -> u8 {
        match self {
            QueueError::Io { source, .. } => io_exit_code(source),
            QueueError::Corrupt { .. } | QueueError::MissingMessage { .. } => sysexits::DATAERR,
            QueueError::NotFound(_) => sysexits::NOINPUT,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> QueueError + '_ {
    move |source| QueueError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What [`Queue::scan`] found: the envelopes, and the ids of those that
/// could not be read, with why.
pub type Scan = (Vec<Envelope>, Vec<(String, QueueError)>);

/// The queue folder.
#[derive(Debug, Clone)]
pub struct Queue {
    dir: PathBuf,
}

impl Queue {
    /// Opens the queue in `dir`, creating it if needed.
    pub fn open(dir: &Path) -> Result<Queue, QueueError> {
        for d in [dir, &dir.join("tmp")] {
            if let Some(parent) = d.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            durable::create_dir_durable(d, 0o700).map_err(io_err(d))?;
        }
        Ok(Queue {
            dir: dir.to_owned(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Puts a message in the queue, durably; returns its id.
    pub fn enqueue(
        &self,
        sender: &str,
        recipients: &[String],
        message: &[u8],
    ) -> Result<String, QueueError> {
        let id = new_id();
        let recipients = recipients
            .iter()
            .map(|r| RecipientState::pending(r))
            .collect();
        self.enqueue_as(&id, sender, recipients, message, 0)?;
        Ok(id)
    }

    /// Puts a message in the queue, durably, under `id` (from [`new_id`]),
    /// not to be tried before `next_attempt` (Unix seconds; 0: now).
    pub fn enqueue_as(
        &self,
        id: &str,
        sender: &str,
        recipients: Vec<RecipientState>,
        message: &[u8],
        next_attempt: u64,
    ) -> Result<(), QueueError> {
        if !is_id(id) {
            return Err(QueueError::NotFound(id.to_owned()));
        }
        let id = id.to_owned();
        let now = unix_now();
        let env = Envelope {
            id: id.clone(),
            sender: sender.to_owned(),
            recipients,
            created: now,
            attempts: 0,
            next_attempt,
        };
        let json = serde_json::to_vec_pretty(&env).map_err(|e| QueueError::Corrupt {
            path: self.envelope_path(&id),
            reason: e.to_string(),
        })?;
        let tmp = self.dir.join("tmp");
        let tmp_eml = tmp.join(format!("{id}.eml"));
        let tmp_json = tmp.join(format!("{id}.json"));
        let result = (|| {
            for (path, bytes) in [(&tmp_eml, message), (&tmp_json, &json[..])] {
                let mut f = durable::create_new(path, 0o600).map_err(io_err(path))?;
                f.write_all(bytes).map_err(io_err(path))?;
                f.sync_all().map_err(io_err(path))?;
            }
            let eml = self.message_path(&id);
            fs::rename(&tmp_eml, &eml).map_err(io_err(&eml))?;
            durable::fsync_dir(&self.dir).map_err(io_err(&self.dir))?;
            let envelope = self.envelope_path(&id);
            fs::rename(&tmp_json, &envelope).map_err(io_err(&envelope))?;
            durable::fsync_dir(&self.dir).map_err(io_err(&self.dir))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp_eml);
            let _ = fs::remove_file(&tmp_json);
            let _ = fs::remove_file(self.message_path(&id));
        }
        result
    }

    pub fn message_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.eml"))
    }

    fn envelope_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn corrupt_dir(&self) -> PathBuf {
        self.dir.join("corrupt")
    }

    /// The lock that serialises envelope replacements and removals; held
    /// only for the file operations, never while a message is sent.
    fn lock_entries(&self) -> Result<File, QueueError> {
        flock_exclusive(&self.dir.join("entries.lock"))
    }

    /// The message file of a queued entry; an entry whose envelope is there
    /// without it is [`QueueError::MissingMessage`], one removed meanwhile
    /// [`QueueError::NotFound`].
    pub fn read_message(&self, id: &str) -> Result<Vec<u8>, QueueError> {
        let path = self.message_path(id);
        match fs::read(&path) {
            Ok(m) => Ok(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if self.envelope_path(id).exists() {
                    Err(QueueError::MissingMessage {
                        id: id.to_owned(),
                        path,
                    })
                } else {
                    Err(QueueError::NotFound(id.to_owned()))
                }
            }
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// The envelope of one message.
    pub fn load(&self, id: &str) -> Result<Envelope, QueueError> {
        if !is_id(id) {
            return Err(QueueError::NotFound(id.to_owned()));
        }
        let path = self.envelope_path(id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(QueueError::NotFound(id.to_owned()));
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| QueueError::Corrupt {
            path,
            reason: e.to_string(),
        })
    }

    /// Every queued envelope, oldest first. Unreadable ones are logged and
    /// left alone (never deleted: they may be someone's mail).
    pub fn list(&self) -> Result<Vec<Envelope>, QueueError> {
        let (out, bad) = self.scan()?;
        for (_, e) in bad {
            tracing::error!("{e}");
        }
        Ok(out)
    }

    /// Every queued envelope, oldest first, and the ids of those that could
    /// not be read, with why.
    pub fn scan(&self) -> Result<Scan, QueueError> {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            match self.load(id) {
                Ok(e) => out.push(e),
                Err(QueueError::NotFound(_)) => {}
                Err(e) => bad.push((id.to_owned(), e)),
            }
        }
        out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok((out, bad))
    }

    /// Sets a damaged entry aside in `corrupt/`, with `why` in
    /// `<id>.reason`, so that it neither stops nor slows the others and
    /// nothing of it is lost (Postfix's `corrupt` queue). Returns whether
    /// anything was moved (nothing: it was removed meanwhile).
    pub fn move_aside(&self, id: &str, why: &str) -> Result<bool, QueueError> {
        if !is_id(id) {
            return Err(QueueError::NotFound(id.to_owned()));
        }
        let _lock = self.lock_entries()?;
        let corrupt = self.corrupt_dir();
        durable::create_dir_durable(&corrupt, 0o700).map_err(io_err(&corrupt))?;
        let reason = corrupt.join(format!("{id}.reason"));
        durable::replace_file(&reason, format!("{why}\n").as_bytes(), 0o600)
            .map_err(io_err(&reason))?;
        let mut moved = false;
        // The message first: the envelope in `corrupt/` is the sign that
        // the entry is complete there.
        for from in [self.message_path(id), self.envelope_path(id)] {
            let Some(name) = from.file_name() else {
                continue;
            };
            let to = corrupt.join(name);
            match fs::rename(&from, &to) {
                Ok(()) => moved = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&from)(e)),
            }
        }
        durable::fsync_dir(&corrupt).map_err(io_err(&corrupt))?;
        durable::fsync_dir(&self.dir).map_err(io_err(&self.dir))?;
        Ok(moved)
    }

    /// The entries set aside in `corrupt/`: id and reason, oldest id first.
    pub fn corrupt(&self) -> Vec<(String, String)> {
        let Ok(entries) = fs::read_dir(self.corrupt_dir()) else {
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let id = name.to_str()?.strip_suffix(".reason")?.to_owned();
                let why = fs::read_to_string(e.path()).unwrap_or_default();
                Some((id, why.trim_end().to_owned()))
            })
            .collect();
        out.sort();
        out
    }

    /// Replaces an envelope, atomically and durably; never recreates one
    /// that was removed ([`QueueError::NotFound`]: `queue delete` won).
    pub fn update(&self, env: &Envelope) -> Result<(), QueueError> {
        if !is_id(&env.id) {
            return Err(QueueError::NotFound(env.id.clone()));
        }
        let path = self.envelope_path(&env.id);
        let json = serde_json::to_vec_pretty(env).map_err(|e| QueueError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let _lock = self.lock_entries()?;
        match fs::symlink_metadata(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(QueueError::NotFound(env.id.clone()));
            }
            Err(e) => return Err(io_err(&path)(e)),
        }
        durable::replace_file(&path, &json, 0o600).map_err(io_err(&path))
    }

    /// Removes a message: the envelope first (the commit point), then the
    /// message.
    pub fn remove(&self, id: &str) -> Result<(), QueueError> {
        if !is_id(id) {
            return Err(QueueError::NotFound(id.to_owned()));
        }
        let _lock = self.lock_entries()?;
        let env = self.envelope_path(id);
        match fs::remove_file(&env) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(QueueError::NotFound(id.to_owned()));
            }
            Err(e) => return Err(io_err(&env)(e)),
        }
        let _ = fs::remove_file(self.message_path(id));
        durable::fsync_dir(&self.dir).map_err(io_err(&self.dir))
    }

    /// Removes what a crash left more than `older_than` ago: files in
    /// `tmp/`, and messages whose envelope was never committed (never
    /// acknowledged). Younger ones may be a `sendmail` writing right now.
    pub fn clean(&self, older_than: std::time::Duration) -> usize {
        let stale = |e: &fs::DirEntry| {
            e.metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= older_than)
        };
        let mut removed = 0;
        if let Ok(entries) = fs::read_dir(self.dir.join("tmp")) {
            for e in entries.flatten() {
                if stale(&e) {
                    removed += usize::from(fs::remove_file(e.path()).is_ok());
                }
            }
        }
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                if let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".eml"))
                    && !self.envelope_path(id).exists()
                    && stale(&e)
                {
                    removed += usize::from(fs::remove_file(e.path()).is_ok());
                }
            }
        }
        removed
    }
}

/// An exclusive flock(2) on `path` (created if needed), released when the
/// file is dropped.
pub(crate) fn flock_exclusive(path: &Path) -> Result<File, QueueError> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    loop {
        // SAFETY: a valid descriptor; the lock goes with the file.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(file);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(io_err(path)(e));
        }
    }
}

/// Ids are ours: digits, letters and `-`; anything else names no message
/// (and no file outside the queue).
fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `<secs>-<micros>-<pid>-<n>`, unique on this host.
pub fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}-{:06}-{}-{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enqueue_list_update_remove() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(&dir.path().join("queue")).unwrap();
        let id = q
            .enqueue(
                "a@example.org",
                &["b@example.net".into()],
                b"X: 1\r\n\r\nx\r\n",
            )
            .unwrap();
        let mut env = q.load(&id).unwrap();
        assert_eq!(env.pending().count(), 1);
        assert_eq!(fs::read(q.message_path(&id)).unwrap(), b"X: 1\r\n\r\nx\r\n");
        env.recipients[0].status = Status::Delivered;
        q.update(&env).unwrap();
        assert_eq!(q.list().unwrap(), vec![env]);
        assert_eq!(
            fs::read_dir(dir.path().join("queue/tmp")).unwrap().count(),
            0
        );
        q.remove(&id).unwrap();
        assert!(q.list().unwrap().is_empty());
        assert!(matches!(q.load(&id), Err(QueueError::NotFound(_))));
        assert!(matches!(
            q.load("../../etc/passwd"),
            Err(QueueError::NotFound(_))
        ));
    }

    /// Regression: `queue delete` while the worker was sending, then the
    /// worker's update, brought the envelope back without its message.
    #[test]
    fn update_never_recreates_a_removed_entry() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let id = q
            .enqueue("a@example.org", &["b@example.net".into()], b"x")
            .unwrap();
        let mut env = q.load(&id).unwrap();
        q.remove(&id).unwrap();
        env.attempts += 1;
        assert!(matches!(q.update(&env), Err(QueueError::NotFound(_))));
        assert!(q.list().unwrap().is_empty());
        assert!(!dir.path().join(format!("{id}.json")).exists());
        assert!(matches!(q.read_message(&id), Err(QueueError::NotFound(_))));
    }

    #[test]
    fn a_damaged_entry_is_moved_aside_whole() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let id = q
            .enqueue("a@example.org", &["b@example.net".into()], b"x")
            .unwrap();
        fs::remove_file(q.message_path(&id)).unwrap();
        assert!(matches!(
            q.read_message(&id),
            Err(QueueError::MissingMessage { .. })
        ));
        fs::write(dir.path().join("9-9-9-9.json"), "{").unwrap();
        fs::write(dir.path().join("9-9-9-9.eml"), "mail").unwrap();
        let (ok, bad) = q.scan().unwrap();
        assert_eq!((ok.len(), bad.len()), (1, 1));
        assert!(q.move_aside(&id, "no message file").unwrap());
        assert!(q.move_aside("9-9-9-9", "bad envelope").unwrap());
        assert!(!q.move_aside("9-9-9-9", "again").unwrap());
        assert_eq!(q.scan().unwrap().0.len(), 0);
        assert_eq!(
            fs::read_to_string(dir.path().join("corrupt/9-9-9-9.eml")).unwrap(),
            "mail"
        );
        assert_eq!(q.corrupt().len(), 2);
        assert!(dir.path().join(format!("corrupt/{id}.json")).exists());
    }

    #[test]
    fn an_uncommitted_message_is_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        fs::write(dir.path().join("1-1-1-1.eml"), "half").unwrap();
        fs::write(dir.path().join("tmp/2-2-2-2.json"), "{").unwrap();
        let kept = q.enqueue("", &["x@y.example".into()], b"x").unwrap();
        assert_eq!(
            q.clean(std::time::Duration::from_secs(3600)),
            0,
            "too young"
        );
        assert_eq!(q.clean(std::time::Duration::ZERO), 2);
        assert_eq!(q.list().unwrap().len(), 1);
        assert!(q.message_path(&kept).exists());
    }
}
