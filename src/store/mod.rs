//! The Maildir++ store, laid out as Dovecot lays it out, so that people can
//! move between Dovecot and ownmail without losing a flag.
//!
//! ```text
//! <root>/                 INBOX: cur/ new/ tmp/
//! <root>/.Sent/           folder "Sent": cur/ new/ tmp/ maildirfolder
//! <root>/.Archive.2024/   folder "Archive/2024"
//! <root>/.Entw&APw-rfe/   folder "Entwürfe" (modified UTF-7)
//! <folder>/dovecot-keywords   keyword letters -> names
//! ```
//!
//! - [`name`]: the [`MailboxName`] newtype; nothing outside the root can be named.
//! - [`maildir`]: a user's [`Maildir`] and its [`Folder`]s.
//! - [`delivery`]: unique names and the two-phase write ([`TmpMessage`]).
//! - [`flags`], [`keywords`]: the info part of file names and `dovecot-keywords`.
//! - [`durable`], [`dotlock`]: fsync discipline and Dovecot-compatible locks.
//!
//! This module never speaks a protocol and never reads the configuration.
//! - [`uidlist`]: IMAP UIDs in `dovecot-uidlist`, beside `dovecot-keywords`.
//! - [`uidvalidity`]: the user's next UIDVALIDITY, in `<root>/dovecot-uidvalidity`.
//! - [`subscriptions`]: subscribed folders in `<root>/subscriptions`, as Dovecot keeps them.
//! - [`modseq`]: CONDSTORE mod-sequences in `ownmail-modseq`, beside `dovecot-uidlist`.
//! - [`recent`]: the first \Recent UID in `ownmail-recent`, beside `dovecot-uidlist`.

pub mod delivery;
pub mod dotlock;
pub mod durable;
pub mod flags;
pub mod keywords;
pub mod maildir;
pub mod modseq;
pub mod name;
pub mod recent;
pub mod subscriptions;
pub mod uidlist;
pub mod uidvalidity;

use std::io;
use std::path::PathBuf;

pub use delivery::{
    Adopt, ClosedTmp, Delivered, Durability, FolderDirs, TmpMessage, UnnamedMessage,
};
pub use flags::{Flag, Flags};
pub use keywords::{KeywordError, Keywords};
pub use maildir::{Folder, Maildir};
pub use name::{MailboxName, NameError};
pub use uidlist::{MessageFile, Snapshot, UidError};

use crate::error::{ExitStatus, io_exit_code, sysexits};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("folder {0:?} does not exist")]
    NoSuchFolder(MailboxName),
    #[error("folder {0:?} already exists")]
    FolderExists(MailboxName),
    /// A folder someone had open was renamed or deleted meanwhile, or
    /// replaced by another of the same name (a new UIDVALIDITY).
    #[error("folder {0:?} was renamed or deleted meanwhile")]
    FolderGone(MailboxName),
    #[error("{path} is not a Maildir (it has no cur/, new/ and tmp/)")]
    NotMaildir { path: PathBuf },
    #[error(transparent)]
    Keyword(#[from] KeywordError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }
}

impl ExitStatus for StoreError {
    fn exit_code(&self) -> u8 {
        match self {
            StoreError::Name(_) => sysexits::USAGE,
            StoreError::NoSuchFolder(_) => sysexits::CANTCREAT,
            StoreError::FolderExists(_) => sysexits::CANTCREAT,
            StoreError::FolderGone(_) => sysexits::TEMPFAIL,
            StoreError::NotMaildir { .. } => sysexits::CANTCREAT,
            StoreError::Keyword(KeywordError::Full { .. }) => sysexits::DATAERR,
            StoreError::Keyword(KeywordError::Io { source, .. }) => io_exit_code(source),
            StoreError::Io { source, .. } => io_exit_code(source),
        }
    }
}
