//! A user's Maildir++ and its folders.
//!
//! Creating is durable (every new directory's parent is fsynced) and
//! idempotent: two processes creating the same folder at once both succeed,
//! and a folder that lost a subdirectory in a crash gets it back on open.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::StoreError;
use super::delivery::{self, Adopt, Delivered, FolderDirs, TmpMessage};
use super::durable;
use super::flags::Flags;
use super::name::MailboxName;

const DIR_MODE: u32 = 0o700;
const SUBDIRS: [&str; 3] = ["cur", "new", "tmp"];
/// Where a folder being deleted goes first (Dovecot's
/// `MAILBOX_LIST_MAILDIR_TRASH_DIR_NAME`, so each cleans up the other's).
const TRASH_DIR: &str = "DOVECOT-TRASHED";

/// Removes a deleted folder's trash; gone already is fine (another
/// process removed it).
fn remove_trash(trash: &Path) -> Result<(), StoreError> {
    match fs::remove_dir_all(trash) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(trash)(e)),
    }
}

/// A user's Maildir++: INBOX at the root, folders as `.Name` directories.
#[derive(Debug, Clone)]
pub struct Maildir {
    root: PathBuf,
}

/// One folder (INBOX included) of a [`Maildir`].
#[derive(Debug, Clone)]
pub struct Folder {
    path: PathBuf,
    name: MailboxName,
}

impl Maildir {
    /// Opens an existing Maildir: `root` must have `cur/`, `new/` and `tmp/`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Maildir, StoreError> {
        let root = root.into();
        if !SUBDIRS.iter().all(|d| root.join(d).is_dir()) {
            return Err(StoreError::NotMaildir { path: root });
        }
        Ok(Maildir { root })
    }

    /// Opens a Maildir, creating it (and its parents) if it does not exist.
    pub fn create(root: impl Into<PathBuf>) -> Result<Maildir, StoreError> {
        let root = root.into();
        if !root.is_dir() {
            if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                durable::create_dir_all_durable(parent, DIR_MODE)
                    .map_err(StoreError::io(parent))?;
            }
            // As root, the new Maildir gets its subdirectories and its
            // owner before it is named: see create_dir_durable_with.
            durable::create_dir_durable_with(
                &root,
                DIR_MODE,
                durable::parent_dir(&root),
                ensure_subdirs_io,
            )
            .map_err(StoreError::io(&root))?;
        }
        ensure_subdirs(&root)?;
        Ok(Maildir { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a folder (which may not exist).
    pub fn folder_path(&self, name: &MailboxName) -> PathBuf {
        match name.dir_name() {
            None => self.root.clone(),
            Some(dir) => self.root.join(dir),
        }
    }

    /// Opens an existing folder.
    pub fn folder(&self, name: &MailboxName) -> Result<Folder, StoreError> {
        let path = self.folder_path(name);
        if !path.is_dir() {
            return Err(StoreError::NoSuchFolder(name.clone()));
        }
        // A crash while the folder was being created may have left it
        // without a subdirectory; put it back rather than refuse mail.
        ensure_subdirs(&path)?;
        Ok(Folder {
            path,
            name: name.clone(),
        })
    }

    /// Creates a folder; an existing one is an error.
    pub fn create_folder(&self, name: &MailboxName) -> Result<Folder, StoreError> {
        if name.is_inbox() || self.folder_path(name).is_dir() {
            return Err(StoreError::FolderExists(name.clone()));
        }
        self.folder_or_create(name)
    }

    /// Opens a folder, creating it if needed (safe against a concurrent creator).
    pub fn folder_or_create(&self, name: &MailboxName) -> Result<Folder, StoreError> {
        let path = self.folder_path(name);
        if !name.is_inbox() {
            // Staged in the Maildir's tmp/, where a `.`-name is not a folder.
            let tmp = self.root.join("tmp");
            let staging = if tmp.is_dir() { &tmp } else { &self.root };
            durable::create_dir_durable_with(&path, DIR_MODE, staging, |dir| {
                ensure_subdirs_io(dir)?;
                make_folder_marker(dir)
            })
            .map_err(StoreError::io(&path))?;
            // A folder made by someone else, or half made before a crash.
            ensure_subdirs(&path)?;
            let marker = path.join("maildirfolder");
            make_folder_marker(&path).map_err(StoreError::io(&marker))?;
        }
        Ok(Folder {
            path,
            name: name.clone(),
        })
    }

    /// Deletes a folder (not INBOX; its subfolders stay), as Dovecot does:
    /// renamed in one step to `DOVECOT-TRASHED` in the root (not a folder
    /// name: no leading dot), the root fsynced, then removed. A crash leaves
    /// the folder whole or gone, never half its messages; a trash left by a
    /// crash, ours or Dovecot's, goes with the next delete.
    pub fn delete_folder(&self, name: &MailboxName) -> Result<(), StoreError> {
        let path = self.folder_path(name);
        let trash = self.root.join(TRASH_DIR);
        let mut tries = 0;
        loop {
            match durable::rename_noreplace(&path, &trash) {
                Ok(()) => break,
                Err(e)
                    if tries < 3
                        && (e.kind() == io::ErrorKind::AlreadyExists
                            || e.kind() == io::ErrorKind::DirectoryNotEmpty) =>
                {
                    tries += 1;
                    remove_trash(&trash)?;
                }
                Err(e) => return Err(StoreError::io(&path)(e)),
            }
        }
        durable::fsync_dir(&self.root).map_err(StoreError::io(&self.root))?;
        remove_trash(&trash)
    }

    /// The folders below the root (INBOX not included), sorted by name.
    /// Directories whose names do not decode are skipped with a warning.
    pub fn list_folders(&self) -> Result<Vec<MailboxName>, StoreError> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(StoreError::io(&self.root))? {
            let entry = entry.map_err(StoreError::io(&self.root))?;
            let file_name = entry.file_name();
            let Some(dir) = file_name.to_str() else {
                continue;
            };
            if !dir.starts_with('.') || dir == "." || dir == ".." || !entry.path().is_dir() {
                continue;
            }
            match MailboxName::from_dir_name(dir) {
                Ok(name) => names.push(name),
                Err(e) => {
                    tracing::warn!(root = %self.root.display(), "skipping folder directory: {e}")
                }
            }
        }
        names.sort();
        Ok(names)
    }
}

impl Folder {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn name(&self) -> &MailboxName {
        &self.name
    }

    /// Starts a delivery: a new file in `tmp/` to write the message into.
    pub fn create_tmp(&self) -> Result<TmpMessage, StoreError> {
        TmpMessage::create(self.path.clone())
    }

    /// As [`Folder::create_tmp`], with a write buffer of `capacity` bytes.
    pub fn create_tmp_with_buffer(&self, capacity: usize) -> Result<TmpMessage, StoreError> {
        TmpMessage::create_with_buffer(self.path.clone(), capacity)
    }

    /// Takes the message file `src`, from another folder of this Maildir
    /// (or this one), by hard link or rename under a new name: see
    /// [`delivery::adopt`]. `Ok(None)`: copy the bytes instead.
    pub fn adopt(
        &self,
        src: &Path,
        flags: &Flags,
        how: Adopt,
    ) -> Result<Option<(String, Delivered)>, StoreError> {
        delivery::adopt(&self.path, src, flags, how)
    }

    /// Opens `new/` and `cur/` to create and name messages relative to
    /// them (see [`FolderDirs`]).
    pub fn open_dirs(&self) -> Result<FolderDirs, StoreError> {
        FolderDirs::open(&self.path)
    }

    /// Calls `f` with the file name of every message in `new/` and `cur/`
    /// (names that are not UTF-8 are not ours and are skipped). Streams the
    /// directories: memory does not grow with the folder.
    pub fn scan_names(&self, mut f: impl FnMut(&str)) -> Result<(), StoreError> {
        for sub in ["new", "cur"] {
            let dir = self.path.join(sub);
            for entry in fs::read_dir(&dir).map_err(StoreError::io(&dir))? {
                let entry = entry.map_err(StoreError::io(&dir))?;
                if let Some(name) = entry.file_name().to_str()
                    && !name.starts_with('.')
                {
                    f(name);
                }
            }
        }
        Ok(())
    }

    /// fsyncs `new/`, `cur/` or both: the end of a batch that committed
    /// into only one of them. An fsync of a directory that did not change
    /// still costs a device cache flush on ext4 (about 3 ms on a VM disk),
    /// so batches that know what they touched save it.
    pub fn sync_dirs(&self, new: bool, cur: bool) -> Result<(), StoreError> {
        for (sub, wanted) in [("new", new), ("cur", cur)] {
            if wanted {
                let dir = self.path.join(sub);
                durable::fsync_dir(&dir).map_err(StoreError::io(&dir))?;
            }
        }
        Ok(())
    }

    /// Makes a batch of [`Durability::Deferred`](super::Durability::Deferred)
    /// commits durable: one syncfs(2) of the file system that holds the
    /// folder, which writes every new file's data and inode and the
    /// directories that name them, and flushes the device cache. An fsync of
    /// `new/` and `cur/` alone was enough only where a journal commit
    /// carries the files' inodes along (ext4 with its journal); on a file
    /// system without one (found on the CI machine) the names could
    /// outlive a crash while the files' sizes did not.
    pub fn sync(&self) -> Result<(), StoreError> {
        durable::sync_filesystem(&self.path).map_err(StoreError::io(&self.path))
    }

    /// Removes files in `tmp/` left by deliveries that died more than 36
    /// hours ago (the Maildir spec's rule). Returns how many were removed.
    pub fn clean_tmp(&self) -> usize {
        delivery::clean_tmp(&self.path.join("tmp"), delivery::STALE_TMP)
    }
}

fn ensure_subdirs(dir: &Path) -> Result<(), StoreError> {
    make_subdirs(dir).map_err(|(path, e)| StoreError::io(path)(e))
}

/// [`ensure_subdirs`] for a directory that is not named yet.
fn ensure_subdirs_io(dir: &Path) -> io::Result<()> {
    make_subdirs(dir).map_err(|(_, e)| e)
}

/// Makes whichever of `cur/`, `new/` and `tmp/` is missing. As root they
/// are made in place and given to the owner of `dir` at once: either `dir`
/// is not named yet, or one was lost in a crash and the window of one
/// system call where it is root's is a window of an already broken folder.
fn make_subdirs(dir: &Path) -> Result<(), (PathBuf, io::Error)> {
    let mut created = false;
    for sub in SUBDIRS {
        let p = dir.join(sub);
        if p.is_dir() {
            continue;
        }
        match durable::create_dir_owned(&p, DIR_MODE) {
            Ok(()) => created = true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err((p, e)),
        }
    }
    if created {
        durable::fsync_dir(dir).map_err(|e| (dir.to_owned(), e))?;
    }
    Ok(())
}

/// The `maildirfolder` file of the Maildir++ spec, unless it is there.
fn make_folder_marker(dir: &Path) -> io::Result<()> {
    match durable::create_new_owned(&dir.join("maildirfolder"), 0o600) {
        Ok(_) => durable::fsync_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_created_as_dovecot_lays_them_out() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path().join("alice")).unwrap();
        for name in ["Sent", "Archive/2024", "Entwürfe"] {
            md.create_folder(&MailboxName::new(name).unwrap()).unwrap();
        }
        for dir_name in [".Sent", ".Archive.2024", ".Entw&APw-rfe"] {
            let p = md.root().join(dir_name);
            for sub in ["cur", "new", "tmp", "maildirfolder"] {
                assert!(p.join(sub).exists(), "{dir_name}/{sub}");
            }
        }
        let names: Vec<String> = md
            .list_folders()
            .unwrap()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, vec!["Archive/2024", "Entwürfe", "Sent"]);
        assert!(matches!(
            md.create_folder(&MailboxName::new("Sent").unwrap()),
            Err(StoreError::FolderExists(_))
        ));
        assert!(matches!(
            md.folder(&MailboxName::new("Nope").unwrap()),
            Err(StoreError::NoSuchFolder(_))
        ));
    }

    /// DELETE goes through Dovecot's trash directory: one rename, so a
    /// crash leaves the folder whole or gone. A trash a crash left behind
    /// (here with a message in it) is no folder, and goes with the next
    /// delete; the deleted folder's children stay.
    #[test]
    fn a_folder_is_deleted_whole_through_the_trash_directory() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path().join("alice")).unwrap();
        for name in ["Old", "Old/kept", "Other"] {
            md.create_folder(&MailboxName::new(name).unwrap()).unwrap();
        }
        fs::write(md.root().join(".Old/cur/1.a:2,S"), "x").unwrap();
        let left = md.root().join(TRASH_DIR);
        fs::create_dir_all(left.join("cur")).unwrap();
        fs::write(left.join("cur/2.b:2,"), "left by a crash").unwrap();
        let names = |md: &Maildir| -> Vec<String> {
            md.list_folders()
                .unwrap()
                .iter()
                .map(|n| n.to_string())
                .collect()
        };
        assert_eq!(names(&md), vec!["Old", "Old/kept", "Other"]);
        md.delete_folder(&MailboxName::new("Old").unwrap()).unwrap();
        assert_eq!(names(&md), vec!["Old/kept", "Other"]);
        assert!(!left.exists() && !md.root().join(".Old").exists());
        md.delete_folder(&MailboxName::new("Other").unwrap())
            .unwrap();
        assert_eq!(names(&md), vec!["Old/kept"]);
        assert!(!left.exists());
    }

    /// Creators racing for one Maildir and one folder all succeed, and
    /// (as root, where each is made under a temporary name and renamed)
    /// no temporary directory is left behind.
    #[test]
    fn concurrent_creators_all_succeed_and_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mail/alice");
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let md = Maildir::create(&root).unwrap();
                    md.folder_or_create(&MailboxName::new("Sent").unwrap())
                        .unwrap();
                });
            }
        });
        let md = Maildir::open(&root).unwrap();
        for sub in ["cur", "new", "tmp", "maildirfolder"] {
            assert!(root.join(".Sent").join(sub).exists(), "{sub}");
        }
        let names = |d: &Path| -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&root), [".Sent", "cur", "new", "tmp"]);
        assert!(names(&root.join("tmp")).is_empty());
        assert_eq!(names(&dir.path().join("mail")), ["alice"]);
        assert_eq!(names(dir.path()), ["mail"]);
        assert_eq!(md.list_folders().unwrap().len(), 1);
    }

    #[test]
    fn a_folder_missing_a_subdirectory_is_repaired_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path()).unwrap();
        let name = MailboxName::new("Sent").unwrap();
        let f = md.create_folder(&name).unwrap();
        fs::remove_dir(f.path().join("tmp")).unwrap();
        assert!(md.folder(&name).unwrap().path().join("tmp").is_dir());
    }

    #[test]
    fn hostile_directories_are_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path()).unwrap();
        for bad in [".a..b", ".&Lw-", ".x&AC8-y"] {
            fs::create_dir(dir.path().join(bad)).unwrap();
        }
        assert!(md.list_folders().unwrap().is_empty());
    }
}
