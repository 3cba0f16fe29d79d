//! Deliver, record, then say what may be deleted: the order of
//! [`super`]'s "never lose, never double", shared by POP3 and IMAP.
//!
//! The protocol hands each fetched message to [`Flow::take`]; after a batch
//! it calls [`Flow::flush`], which returns the keys of the messages that
//! are now durably delivered and recorded, and only those may be deleted
//! on the server. [`Flow::finish`] fsyncs the state; QUIT or EXPUNGE come
//! after it.

use super::sink::{DeliveryError, Sink};
use super::state::{Entry, Key, Pending, State};
use super::{FetchError, Observer, Rejected, Report};
use crate::store::TmpMessage;

/// A message as the server sent it.
pub struct Fetched {
    pub key: Key,
    pub entry: Entry,
    /// How to name it in a report ("message 5 (UIDL 1f3a)", "INBOX UID 42").
    pub label: String,
    pub data: Vec<u8>,
}

pub struct Flow<'a> {
    sink: &'a Sink,
    state: &'a mut State,
    observer: &'a dyn Observer,
    delete_rejected: bool,
    /// Written into `tmp/`, not yet committed (Maildir kinds).
    staged: Vec<(TmpMessage, Key, Entry)>,
    /// Recorded as fetched but needing a state fsync before they are safe
    /// (refused messages with `delete_rejected`).
    unsynced: Vec<Key>,
    /// Durably delivered and recorded since the last flush.
    safe: Vec<Key>,
}

impl<'a> Flow<'a> {
    pub fn new(
        sink: &'a Sink,
        state: &'a mut State,
        observer: &'a dyn Observer,
        delete_rejected: bool,
    ) -> Flow<'a> {
        Flow {
            sink,
            state,
            observer,
            delete_rejected,
            staged: Vec::new(),
            unsynced: Vec::new(),
            safe: Vec::new(),
        }
    }

    pub fn state(&self) -> &State {
        self.state
    }

    pub fn state_mut(&mut self) -> &mut State {
        self.state
    }

    /// Delivers one message (MDA, SMTP) or writes it into `tmp/` for the
    /// batch (Maildir). A refusal for good is reported and the run goes on;
    /// a temporary failure is returned: the caller flushes what it has and
    /// stops, leaving this message and the rest on the server.
    pub async fn take(&mut self, message: Fetched, report: &mut Report) -> Result<(), FetchError> {
        let Fetched {
            key,
            entry,
            label,
            data,
        } = message;
        let result = if self.sink.deliverer().is_some() {
            self.sink.write(&data).map(|tmp| {
                self.staged.push((tmp, key.clone(), entry.clone()));
            })
        } else {
            match self.sink.deliver(&data).await {
                Ok(()) => {
                    // The MDA or the MTA has it. A crash before this record
                    // is fsynced fetches this message again (see `super`).
                    self.state.record(key.clone(), entry.clone());
                    self.state.sync()?;
                    report.fetched += 1;
                    report.bytes += entry.size;
                    self.observer.fetched(entry.size);
                    self.safe.push(key.clone());
                    Ok(())
                }
                Err(e) => Err(e),
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.is_temporary() => Err(FetchError::Delivery(DeliveryError::temporary(
                format!("{label}: {}", e.message),
            ))),
            Err(e) => {
                tracing::debug!(%label, "refused: {e}");
                // Only a refusal about the message is deleted; one that
                // may be ours stays on the server, tried again next run.
                let deletable = e.is_deletable();
                let delete = self.delete_rejected && deletable;
                if delete {
                    // Recorded, so it is never fetched again, and deleted.
                    self.state.record(key.clone(), entry);
                    self.unsynced.push(key);
                }
                report.rejected.push(Rejected {
                    message: label,
                    reason: e.message,
                    deleted: delete,
                    deletable,
                });
                Ok(())
            }
        }
    }

    /// Makes the batch durable and recorded; returns the keys that may now
    /// be deleted on the server.
    pub fn flush(&mut self, report: &mut Report) -> Result<Vec<Key>, FetchError> {
        if !self.staged.is_empty() {
            // 1. Name every file before any of them is visible (each in its
            // folder: spam goes to the junk folder).
            for (tmp, key, entry) in &self.staged {
                self.state.begin(Pending {
                    dir: tmp.folder().to_owned(),
                    base: tmp.base().to_owned(),
                    key: key.clone(),
                    entry: entry.clone(),
                });
            }
            if let Err(e) = self.state.sync() {
                // Nothing was renamed: give the files up (dropping a
                // TmpMessage removes it); the messages stay on the server.
                for (tmp, _, _) in self.staged.drain(..) {
                    self.state.abandon(tmp.base());
                }
                return Err(e.into());
            }
            // 2. Rename them into new/, then one fsync for the folder.
            let mut committed = Vec::with_capacity(self.staged.len());
            let mut failed = None;
            for (tmp, key, entry) in self.staged.drain(..) {
                let base = tmp.base().to_owned();
                if failed.is_some() {
                    self.state.abandon(&base);
                    continue;
                }
                match self.sink.commit(tmp) {
                    Ok(_) => committed.push((base, key, entry)),
                    Err(e) => {
                        self.state.abandon(&base);
                        failed = Some(e);
                    }
                }
            }
            if let Err(e) = self.sink.sync() {
                // Whether the renames are durable is unknown: the P records
                // stay open and the next run looks for the files.
                return Err(e.into());
            }
            // 3. Done: recorded with the next fsync of the state, which
            // comes before any QUIT or EXPUNGE.
            for (base, key, entry) in committed {
                self.state.done(&base);
                report.fetched += 1;
                report.bytes += entry.size;
                self.observer.fetched(entry.size);
                self.safe.push(key);
            }
            if let Some(e) = failed {
                return Err(e.into());
            }
        }
        if !self.unsynced.is_empty() {
            self.state.sync()?;
            self.safe.append(&mut self.unsynced);
        }
        Ok(std::mem::take(&mut self.safe))
    }

    /// Fsyncs the state: call before QUIT or EXPUNGE makes deletions real.
    pub fn finish(&mut self) -> Result<(), FetchError> {
        Ok(self.state.sync()?)
    }
}

/// Splits messages into batches of at most [`super::BATCH_MESSAGES`] and
/// about [`super::BATCH_BYTES`].
pub fn batches<T>(items: Vec<T>, size: impl Fn(&T) -> u64) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut batch = Vec::new();
    let mut bytes = 0;
    for item in items {
        let s = size(&item);
        if !batch.is_empty()
            && (batch.len() >= super::BATCH_MESSAGES || bytes + s > super::BATCH_BYTES)
        {
            out.push(std::mem::take(&mut batch));
            bytes = 0;
        }
        bytes += s;
        batch.push(item);
    }
    if !batch.is_empty() {
        out.push(batch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_bounded_by_count_and_bytes() {
        let sizes: Vec<u64> = vec![1; 300];
        let b = batches(sizes, |s| *s);
        assert_eq!(
            b.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![128, 128, 44]
        );
        let big = super::super::BATCH_BYTES;
        let b = batches(vec![big, 1, big / 2, big / 2, 1], |s| *s);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 2, 2]);
        assert!(batches(Vec::<u64>::new(), |s| *s).is_empty());
    }
}
