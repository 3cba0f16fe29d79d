//! Local delivery of an accepted message: into the INBOX of every user its
//! local recipients resolve to, each copy durable (file and directory
//! fsynced) before this returns, so the `250` that follows is true.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::group_sync::GroupSync;
use crate::auth::UserName;
use crate::config::SpamConfig;
use crate::deliver::{DeliverError, Deliverer, Envelope, Target};
use crate::error::{ExitStatus, sysexits};
use crate::proto::smtp::{Route, Transaction};
use crate::store::{Durability, MailboxName};

/// Why a local delivery failed.
#[derive(Debug, thiserror::Error)]
#[error("delivery to {user} failed: {source}")]
pub struct LocalError {
    pub user: String,
    pub source: DeliverError,
}

impl LocalError {
    /// A loop or a broken message is permanent; the store's faults are not.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self.source.exit_code(),
            sysexits::DATAERR | sysexits::USAGE | sysexits::NOUSER
        )
    }
}

/// `(user, address)`: each user once, with the first address that reached
/// them (for `Delivered-To:`).
pub fn local_targets(tx: &Transaction) -> Vec<(String, String)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in &tx.recipients {
        if let Route::Local(users) = &r.route {
            for u in users {
                if seen.insert(u.to_lowercase()) {
                    out.push((u.clone(), r.mailbox.to_string()));
                }
            }
        }
    }
    out
}

/// Delivers `trace` + the message to every local target, durably, and
/// stops at the first error (the copies already made stay). For one
/// target; with several, the server uses [`deliver_each`] behind the queue
/// so that no retry duplicates a copy.
///
/// With `spam` (the configuration's `spam:` when enabled), each copy is
/// classified with the site's and that user's databases, tagged, and spam
/// filed into the junk folder, as `deliver` does. A database that cannot be
/// opened is logged and the copy delivered untagged to the INBOX: a broken
/// filter must not hold up or lose mail.
pub fn deliver(
    data_dir: &Path,
    trace: &[u8],
    data: &[u8],
    sender: &str,
    targets: &[(String, String)],
    spam: Option<&SpamConfig>,
) -> Result<Vec<PathBuf>, LocalError> {
    copies(data_dir, trace, data, sender, targets, spam).collect()
}

/// Like [`deliver`], but tries every target whatever the others did: one
/// result per target, in order.
pub fn deliver_each(
    data_dir: &Path,
    trace: &[u8],
    data: &[u8],
    sender: &str,
    targets: &[(String, String)],
    spam: Option<&SpamConfig>,
) -> Vec<Result<PathBuf, LocalError>> {
    copies(data_dir, trace, data, sender, targets, spam).collect()
}

/// Each target's copy, made as the iterator is walked.
fn copies<'a>(
    data_dir: &'a Path,
    trace: &'a [u8],
    data: &'a [u8],
    sender: &'a str,
    targets: &'a [(String, String)],
    spam: Option<&'a SpamConfig>,
) -> impl Iterator<Item = Result<PathBuf, LocalError>> + 'a {
    targets
        .iter()
        .map(move |(user, address)| deliver_one(data_dir, trace, data, sender, user, address, spam))
}

fn deliver_one(
    data_dir: &Path,
    trace: &[u8],
    data: &[u8],
    sender: &str,
    user: &str,
    address: &str,
    spam: Option<&SpamConfig>,
) -> Result<PathBuf, LocalError> {
    let err = |source| LocalError {
        user: user.to_owned(),
        source,
    };
    let name = UserName::new(user).map_err(|e| err(DeliverError::BadAddress(e.to_string())))?;
    let mut target = Target {
        maildir: data_dir.join("mail").join(name.as_str()),
        folder: MailboxName::inbox(),
        create: false,
        flags: Vec::new(),
    };
    let tagged = spam.and_then(|settings| {
        let whole = [trace, data].concat();
        crate::spam::check_for_delivery(settings, Some(&name), &whole, &mut target)
            .inspect_err(|e| tracing::warn!(user = %name, "spamcheck skipped: {e}"))
            .ok()
    });
    let envelope = Envelope {
        sender: Some(sender.to_owned()),
        fallback_sender: None,
        recipient: address.to_owned(),
        refuse_loops: true,
    };
    let d = Deliverer::open(&target).map_err(err)?;
    let tmp = match &tagged {
        Some(t) => d.write(&t[..], Some(&envelope)),
        None => d.write(trace.chain(data), Some(&envelope)),
    }
    .map_err(err)?;
    // Made durable by a sync shared with other sessions (group_sync).
    let delivered = d.commit(tmp, Durability::Deferred).map_err(err)?;
    let dir = crate::store::durable::parent_dir(&delivered.path).to_owned();
    GroupSync::for_dir(&dir).sync(&dir).map_err(|e| {
        err(DeliverError::Store(crate::store::StoreError::Io {
            path: dir.clone(),
            source: e,
        }))
    })?;
    Ok(delivered.path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::smtp::{Mailbox, Recipient};

    fn mb(local: &str) -> Mailbox {
        Mailbox {
            local: local.into(),
            domain: "example.org".into(),
            quoted: false,
        }
    }

    #[test]
    fn each_user_gets_one_durable_copy_with_return_path_and_trace() {
        let dir = tempfile::tempdir().unwrap();
        let tx = Transaction {
            helo: "c".into(),
            esmtp: true,
            sender: None,
            recipients: vec![
                Recipient {
                    mailbox: mb("info"),
                    route: Route::Local(vec!["alice".into(), "bob".into()]),
                },
                Recipient {
                    mailbox: mb("alice"),
                    route: Route::Local(vec!["alice".into()]),
                },
                Recipient {
                    mailbox: mb("x"),
                    route: Route::Remote,
                },
            ],
            data: b"Subject: hi\r\n\r\nbody\r\n".to_vec(),
            smtputf8: false,
            tls: None,
            authenticated: None,
        };
        let targets = local_targets(&tx);
        assert_eq!(
            targets,
            vec![
                ("alice".into(), "info@example.org".into()),
                ("bob".into(), "info@example.org".into())
            ]
        );
        let paths = deliver(dir.path(), b"Received: x\r\n", &tx.data, "", &targets, None).unwrap();
        assert_eq!(paths.len(), 2);
        assert_eq!(
            std::fs::read_to_string(&paths[0]).unwrap(),
            "Return-Path: <>\nDelivered-To: info@example.org\nReceived: x\nSubject: hi\n\nbody\n"
        );
        assert!(paths[1].starts_with(dir.path().join("mail/bob/new")));
    }
}
