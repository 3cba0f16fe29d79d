//! `convert-mbox`: years of mbox mail into Maildir++ folders, once, fast,
//! losing nothing, and safe to run again or to interrupt.
//!
//! - [`sources`]: which files of a source tree are mailboxes, and their folders.
//! - [`status`]: `Status:`, `X-Status:`, `X-Mozilla-Status:`, `X-Keywords:`
//!   into flags and keywords; those headers out of the message.
//! - [`identity`]: the file name every converted message gets, which says
//!   where it came from.
//! - `engine`: readers, writers and batches.
//!
//! Reading is [`crate::message::mbox`]'s; writing is the store's
//! ([`crate::store::TmpMessage`]). This module never prints: it reports to
//! an [`Observer`], and `cmd` decides what a person sees.
//!
//! # Exactly once: the file names are the record
//!
//! Each message is stored under a name made from its identity: the byte
//! offset of its From_ line in the mbox, and a digest (SHA-256, 128 bits) of
//! its From_ line and content ([`identity`]). Before writing a message, the
//! converter looks for that identity among the names already in the target
//! folder (listed once per folder and run, in `new/` and `cur/`, whatever
//! flags or `cur/` moves Dovecot made since). So:
//!
//! - a second run over the same source finds every message and adds none;
//! - a run killed at any instant (kill -9, power loss) and started again
//!   stores exactly the messages whose names are not there: a name exists
//!   only after its whole file was written out (the store renames a
//!   written-out file from `tmp/` into place with `rename_noreplace`), so
//!   there is no state in which a message is half there, and none in which
//!   it is there but not seen;
//! - there is no checkpoint file to fall out of step with the folder: the
//!   trap of a checkpoint written after a batch's fsync (lost when the
//!   process dies between the two, so the next run duplicates the batch)
//!   cannot happen, because the batch's names *are* the checkpoint, made
//!   durable by the same fsync. A checkpoint would also not save reading:
//!   knowing that a source has not changed before the checkpoint needs a
//!   read of that prefix anyway. Instead, a message whose offset is already
//!   in the folder is read without being written, and skipped when its
//!   digest matches (a second run over 1 GB reads 1 GB and writes nothing).
//! - An mbox that grew since (a spool) gets only its new messages added. A
//!   source moved or renamed is still recognised (the identity does not
//!   depend on the path). Two sources into one folder do not mix up: the
//!   digest tells their messages apart at equal offsets.
//! - Each mbox is read under a shared lock (an fcntl open file description
//!   lock), which conflicts with the exclusive one MTAs and mail readers
//!   take to append or rewrite it: a spool that mail is arriving into is
//!   read before or after the delivery (waiting up to 10 s), never with
//!   half a message at its end that a later run would store again whole.
//! - A run holds an exclusive lock (flock on the Maildir's root
//!   directory) for its whole length, so two runs never both decide a
//!   message is missing.
//!
//! What remains, named: a message deleted from the Maildir after a run
//! comes back if the same source is converted again, since the folder is
//! the record; two byte-identical messages at the same offset of two
//! different mbox files into the same folder are stored once; and a source
//! rewritten in place between runs (an MUA that compacted it) gets its
//! moved messages stored again (more copies, never fewer).
//!
//! # Durable before it says yes
//!
//! Each writer writes a message into an unnamed file (`O_TMPFILE` in the
//! folder's `new/`, [`crate::store::durable::create_unnamed`]) with one
//! write(2), sets its mtime and hands the open file to the one syncer
//! thread. Once at least 2,048 messages (or 64 MB) are waiting, the
//! syncer makes all those waiting (up to 8,192, or what the open files
//! limit allows) durable at once with syncfs(2) (every file's data and
//! inode on the device, the device cache flushed:
//! [`crate::store::durable::sync_filesystem`]) and hands the batch to the
//! one namer thread, which names each file into `new/` or `cur/` with
//! `linkat` (which never replaces a name), while the syncer syncs the next
//! batch and the writers write the one after; the syncer closes the named
//! files (the namer is the one thread every name waits for), dropping
//! their pages from the page cache first: they are clean by then, and a
//! conversion of years of mail would otherwise push everything else out
//! of the cache. Those names
//! become durable with the next syncfs that starts after they are made,
//! and with a last one when the writers are done; only then are the
//! messages counted in the [`Summary`]. So one device flush per batch of
//! thousands of messages instead of one or two per message, the data
//! always on the device before the name that points to it, and one
//! directory entry made per message (no create in `tmp/` and rename out
//! of it). This holds on a file system
//! without a journal too (ext4 without one, ext2): there, a directory
//! fsync would not write the linked file's new link count, and
//! `sync_file_range` before naming would write no inode; syncfs writes
//! both. Where unnamed files are not supported (an old kernel, a file
//! system without `O_TMPFILE`), and for messages larger than
//! [`INLINE_MAX`] (streamed by their reader into `tmp/`), the file is
//! written into `tmp/`, closed, and renamed into place with
//! `rename_noreplace` instead, under the same two syncfs. At the end every
//! target folder is synced again, which also makes durable the names a
//! killed earlier run left unsynced and this run skipped. What a power
//! loss can take back is the names made since the last syncfs: their
//! files are whole, and the next run stores those messages again, once. A
//! kill -9 loses nothing that was named; an unnamed file vanishes with the
//! process, and what a kill leaves in `tmp/` is never seen, and is removed
//! by the Maildir rule (after 36 hours).
//!
//! # Parallel and bounded
//!
//! Reader threads take source files, largest first; writer threads (two
//! per core) create the files, one syncer syncs and one namer names them, so
//! even one big mbox keeps every core busy. Messages go from thread to
//! thread in handfuls of up to 32, not one by one: each handoff can wake a
//! thread. Messages up to
//! [`INLINE_MAX`] are handed from readers to writers in memory, under a
//! budget of [`QUEUE_BYTES`]; a larger message is streamed by its reader
//! straight into its `tmp/` file. Memory is therefore bounded whatever the
//! input: the budget, one read buffer and one header section per reader,
//! and a small write buffer per open file.

mod engine;
pub mod identity;
pub mod sources;
pub mod status;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use engine::{INLINE_MAX, QUEUE_BYTES};
pub use sources::Job;

use crate::error::{ExitStatus, sysexits};
use crate::message::mbox::{Damage, Format, NotMbox};
use crate::store::{MailboxName, StoreError};

/// The most reader threads a run takes (with twice as many writers):
/// more only cost memory, since the file system is the limit.
pub const MAX_THREADS: usize = 64;

/// What to convert and how. The default: detect the variant, name folders
/// after files, write, remove status headers, go on past problems, one
/// reader and two writers per core.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `None`: detect per message (see [`crate::message::mbox`]).
    pub format: Option<Format>,
    /// The folder that a single file goes into, or that a tree goes below.
    pub prefix: Option<MailboxName>,
    /// Read everything, write nothing.
    pub dry_run: bool,
    /// Keep `Status:` and the other status headers in the messages.
    pub keep_headers: bool,
    /// Stop at the first damaged message or file that is not an mbox.
    pub strict: bool,
    /// Reader threads, and half the writer threads; 0: one per core. At
    /// most [`MAX_THREADS`].
    pub threads: usize,
    /// Set from outside (by a signal handler) to end the run early: what
    /// was read is written and synced, as after a fatal error, and the run
    /// ends with [`ConvertError::Interrupted`].
    pub interrupt: Option<&'static std::sync::atomic::AtomicBool>,
}

/// What a run did. With `dry_run`, what it would have done.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Messages stored (durably) by this run.
    pub messages: u64,
    /// Folders converted into.
    pub folders: u64,
    /// Bytes of the messages stored, as stored.
    pub bytes: u64,
    /// Messages not stored: already there from an earlier run, or UW-IMAP's
    /// folder-data message.
    pub skipped: u64,
    /// Damaged messages (stored as found) and sources that could not be
    /// converted.
    pub errors: u64,
    pub seconds: f64,
    /// mbox files read.
    pub files: u64,
    /// Bytes of mbox read.
    pub source_bytes: u64,
    pub dry_run: bool,
}

/// Something to tell the person running the conversion: a damaged message,
/// a file passed over, a keyword that could not be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    /// The byte offset of the message's From_ line, for a message.
    pub offset: Option<u64>,
    pub message: String,
    /// Counts as an error (exit code 1 at the end), else a note.
    pub error: bool,
}

impl Problem {
    pub fn error(path: &Path, offset: Option<u64>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.to_owned(),
            offset,
            message: message.into(),
            error: true,
        }
    }

    pub fn note(path: &Path, message: impl Into<String>) -> Problem {
        Problem {
            path: path.to_owned(),
            offset: None,
            message: message.into(),
            error: false,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(offset) => write!(
                f,
                "{}: message at byte {offset}: {}",
                self.path.display(),
                self.message
            ),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// Where a run reports as it goes. Called from several threads at once;
/// every method has a default that does nothing.
pub trait Observer: Sync {
    /// The files found, before any is read.
    fn planned(&self, _jobs: &[Job]) {}
    /// A file's reading advanced to `position` bytes, with `messages` read.
    fn progress(&self, _job: &Job, _position: u64, _messages: u64) {}
    /// A file was read to its end (or given up).
    fn finished(&self, _job: &Job) {}
    fn problem(&self, _problem: &Problem) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

/// What stops a conversion.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{path}: {source}")]
    Source { path: PathBuf, source: io::Error },
    #[error("{path}: not an mbox: {reason}")]
    NotMbox { path: PathBuf, reason: NotMbox },
    #[error("{path}: message at byte {offset}: {damage} (stopped there: --strict)")]
    Damaged {
        path: PathBuf,
        offset: u64,
        damage: Damage,
    },
    #[error("{path}: read error near byte {offset}: {source}")]
    Read {
        path: PathBuf,
        offset: u64,
        source: io::Error,
    },
    #[error("another convert-mbox is writing into {maildir}; try again when it is done")]
    Busy { maildir: PathBuf },
    /// `--strict` met a problem in a source tree.
    #[error("{0} (stopped there: --strict)")]
    Stopped(Problem),
    #[error(
        "interrupted; the messages stored so far are kept, and the same command \
         run again converts the rest"
    )]
    Interrupted,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ExitStatus for ConvertError {
    fn exit_code(&self) -> u8 {
        match self {
            ConvertError::Source { source, .. } => match source.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => sysexits::NOINPUT,
                _ => sysexits::IOERR,
            },
            ConvertError::NotMbox { .. } | ConvertError::Damaged { .. } => sysexits::DATAERR,
            ConvertError::Stopped(_) => sysexits::DATAERR,
            ConvertError::Interrupted => sysexits::TEMPFAIL,
            ConvertError::Read { .. } => sysexits::IOERR,
            ConvertError::Busy { .. } => sysexits::TEMPFAIL,
            ConvertError::Store(e) => e.exit_code(),
        }
    }
}

/// A run that stopped on a fault: the fault, and what was done before it
/// (durable, as in a [`Summary`] of a run that ended well).
#[derive(Debug)]
pub struct Failed {
    pub error: ConvertError,
    pub done: Summary,
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Failed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl ExitStatus for Failed {
    fn exit_code(&self) -> u8 {
        self.error.exit_code()
    }
}

impl Failed {
    fn before_anything(error: ConvertError) -> Box<Failed> {
        Box::new(Failed {
            error,
            done: Summary::default(),
        })
    }
}

/// Finds the files of `sources` and converts them into the Maildir at
/// `maildir` (created if missing, unless `dry_run`).
///
/// Problems that concern one message or one file are reported to the
/// observer and counted in [`Summary::errors`]; the rest goes on. An `Err`
/// is a fault that stops everything (the Maildir cannot be written, a
/// source does not exist, or `--strict` met a problem), with what was
/// done before it; everything stored before it is durable.
pub fn convert(
    sources: &[PathBuf],
    maildir: &Path,
    options: &Options,
    observer: &dyn Observer,
) -> Result<Summary, Box<Failed>> {
    let started = std::time::Instant::now();
    let finish = |mut summary: Summary, problems: &[Problem]| {
        summary.errors += problems.iter().filter(|p| p.error).count() as u64;
        summary.seconds = started.elapsed().as_secs_f64();
        summary.dry_run = options.dry_run;
        summary
    };
    let mut problems = Vec::new();
    let planned = sources::plan(sources, options.prefix.as_ref(), &mut problems);
    let fail = |error, done, problems: &[Problem]| {
        Box::new(Failed {
            error,
            done: finish(done, problems),
        })
    };
    let jobs = planned.map_err(|e| fail(e, Summary::default(), &problems))?;
    for p in &problems {
        if p.error && options.strict {
            return Err(fail(
                ConvertError::Stopped(p.clone()),
                Summary::default(),
                &problems,
            ));
        }
        observer.problem(p);
    }
    observer.planned(&jobs);
    match engine::run(&jobs, maildir, options, observer) {
        Ok(summary) => Ok(finish(summary, &problems)),
        Err(failed) => Err(fail(failed.error, failed.done, &problems)),
    }
}
