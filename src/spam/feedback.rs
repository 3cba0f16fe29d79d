//! Learning from the user, as Dovecot's antispam plugin and IMAPSieve
//! setups do: in `serve-imap`, a COPY or MOVE (and their UID forms) into
//! the junk folder trains the messages as spam in the user's database; a
//! MOVE out of the junk folder to any folder but Trash trains them as ham.
//!
//! The IMAP command never waits for this and never fails because of it:
//! the training runs on a thread of its own, after the copies are durable,
//! and its errors are logged. Training an earlier spam as ham does not
//! forget a spam training first: the database does not record which
//! messages it learnt (only token counts), and forgetting what was never
//! learnt (a message the filter itself filed into Junk) would corrupt
//! the counts.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Class, MAX_SCAN_BYTES, learn};
use crate::auth::UserName;
use crate::config::SpamConfig;
use crate::store::MailboxName;

/// What a copy from `from` to `to` teaches, if anything.
pub fn lesson(
    config: &SpamConfig,
    from: &MailboxName,
    to: &MailboxName,
    is_move: bool,
) -> Option<Class> {
    if !config.enabled {
        return None;
    }
    let junk = &config.junk_folder;
    if to == junk && from != junk {
        Some(Class::Spam)
    } else if is_move && from == junk && to != junk && !to.to_string().eq_ignore_ascii_case("Trash")
    {
        Some(Class::Ham)
    } else {
        None
    }
}

/// Called by `serve-imap` after a COPY or MOVE from `from` to `to` made
/// the messages named `bases` (their unique file-name parts) durable in
/// the folder at `dest`: trains the user's database in the background when
/// the move teaches something ([`lesson`]). Returns the thread, if one was
/// started (tests wait for it).
pub fn after_copy(
    config: &SpamConfig,
    user: &UserName,
    from: &MailboxName,
    to: &MailboxName,
    is_move: bool,
    dest: &Path,
    bases: &[String],
) -> Option<std::thread::JoinHandle<()>> {
    let class = lesson(config, from, to, is_move)?;
    if bases.is_empty() {
        return None;
    }
    let (config, user, dest, bases) = (
        config.clone(),
        user.clone(),
        dest.to_owned(),
        bases.to_vec(),
    );
    // Bounded: at most MAX_LEARNERS threads at once in the process (a
    // client copying into Junk in a loop does not pile them up), each
    // holding at most LEARN_BATCH_BYTES of messages at a time.
    if LEARNERS.fetch_add(1, Ordering::SeqCst) >= MAX_LEARNERS {
        LEARNERS.fetch_sub(1, Ordering::SeqCst);
        tracing::warn!(user = %user, "spam training skipped: {MAX_LEARNERS} already running");
        return None;
    }
    let spawned = std::thread::Builder::new()
        .name("spam-learn".into())
        .spawn(move || {
            struct Slot;
            impl Drop for Slot {
                fn drop(&mut self) {
                    LEARNERS.fetch_sub(1, Ordering::SeqCst);
                }
            }
            let _slot = Slot;
            let files = find(&dest, &bases);
            let mut messages = Vec::new();
            let mut bytes = 0;
            for (i, f) in files.iter().enumerate() {
                match std::fs::metadata(f).map(|m| m.len()) {
                    Ok(n) if n <= MAX_SCAN_BYTES as u64 => match std::fs::read(f) {
                        Ok(m) => {
                            bytes += m.len();
                            messages.push(m);
                        }
                        Err(e) => tracing::warn!(file = %f.display(), "spam training: {e}"),
                    },
                    Ok(_) => {}
                    Err(e) => tracing::warn!(file = %f.display(), "spam training: {e}"),
                }
                if bytes >= LEARN_BATCH_BYTES || i + 1 == files.len() {
                    train_batch(&config, &user, class, &std::mem::take(&mut messages));
                    bytes = 0;
                }
            }
        });
    match spawned {
        Ok(h) => Some(h),
        Err(e) => {
            LEARNERS.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("spam training: no thread: {e}");
            None
        }
    }
}

/// Learning threads running in this process, and the most allowed.
static LEARNERS: AtomicUsize = AtomicUsize::new(0);
const MAX_LEARNERS: usize = 4;
/// How much message text one learning thread holds at a time.
const LEARN_BATCH_BYTES: usize = 32 << 20;

fn train_batch(config: &SpamConfig, user: &UserName, class: Class, messages: &[Vec<u8>]) {
    if messages.is_empty() {
        return;
    }
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    match learn(config, Some(user), class, false, &refs) {
        Ok(t) => tracing::info!(
            user = %user,
            "learnt {} message(s) as {class:?}: {} spam, {} ham trained",
            refs.len(),
            t.nspam,
            t.nham
        ),
        Err(e) => tracing::warn!(user = %user, "spam training failed: {e}"),
    }
}

/// The files in `dest`'s `cur/` and `new/` whose names start with one of
/// `bases`.
fn find(dest: &Path, bases: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in ["cur", "new"] {
        let Ok(entries) = std::fs::read_dir(dest.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if bases.iter().any(|b| name.starts_with(b.as_str())) {
                out.push(e.path());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lessons() {
        let mut c = SpamConfig::defaults(Path::new("/d"));
        let n = |s: &str| MailboxName::new(s).unwrap();
        assert_eq!(lesson(&c, &n("INBOX"), &n("Junk"), false), None, "disabled");
        c.enabled = true;
        assert_eq!(
            lesson(&c, &n("INBOX"), &n("Junk"), false),
            Some(Class::Spam)
        );
        assert_eq!(lesson(&c, &n("INBOX"), &n("Junk"), true), Some(Class::Spam));
        assert_eq!(lesson(&c, &n("Junk"), &n("INBOX"), true), Some(Class::Ham));
        assert_eq!(
            lesson(&c, &n("Junk"), &n("Archive"), true),
            Some(Class::Ham)
        );
        assert_eq!(
            lesson(&c, &n("Junk"), &n("INBOX"), false),
            None,
            "a copy out"
        );
        assert_eq!(lesson(&c, &n("Junk"), &n("Trash"), true), None);
        assert_eq!(lesson(&c, &n("Junk"), &n("Junk"), true), None);
        assert_eq!(lesson(&c, &n("INBOX"), &n("Archive"), true), None);
    }
}
