//! Durability primitives: the only place that decides how bytes become
//! durable. Every "yes" we give (deliver's exit 0, SMTP 250, IMAP APPEND OK)
//! comes after one of these returned.
//!
//! # The order, and why
//!
//! The textbook sequence is fsync(file), rename, fsync(dir). Each fsync
//! there is a journal commit and a device cache flush, one after the other.
//! We give the same guarantee for less waiting:
//!
//! 1. write the file in `tmp/`;
//! 2. [`write_out`]: `sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER)`
//!    puts the data on the device (not yet flushed from its cache) and its
//!    block allocation and size in the running journal transaction, the way
//!    git's `core.fsyncMethod=batch` does;
//! 3. rename into `new/` or `cur/`;
//! 4. [`fsync_file_and_dir`]: fsync(file) and fsync(dir), issued at the same
//!    time. Sequential, the second one finds the commit done and still sends
//!    its own cache flush (measured here: about 3 ms each under load);
//!    together, they wait on one commit and one flush. We return only when
//!    both have.
//!
//! Crash window: none that exposes half a message. Before step 4 returns, a
//! crash leaves either no name in `new/` (the message was never
//! acknowledged, the sender retries; the file in `tmp/` is cleaned after 36
//! hours) or the whole message: the data was written in step 2, before the
//! rename, and the commit that makes the rename durable flushes the device
//! cache before its commit record. On systems without `sync_file_range` we
//! fall back to fsync(file) before the rename, which gives the same
//! guarantee.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Puts a file's written data on the device before it is given a name that
/// readers see. See the module documentation.
pub fn write_out(file: &File) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        // SAFETY: a valid open descriptor; offset 0 and length 0 mean the whole file.
        let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, flags) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        // Some file systems (and some container sandboxes) do not support it.
        if !matches!(
            err.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::ESPIPE)
        ) {
            return Err(err);
        }
    }
    file.sync_data()
}

/// Starts writing a file's data out without waiting, so that a batch of
/// files can be written out in parallel before [`write_out`] waits for each.
pub fn start_write_out(file: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: as above. A failure only loses the head start.
        unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// Makes everything written on the file system holding `path` durable:
/// syncfs(2), which writes out every dirty file's data and metadata there
/// (inodes, block maps, directories) and flushes the device's cache. One
/// call for a batch of thousands of new files instead of an fsync each,
/// correct with or without a journal (where `sync_file_range` is not: it
/// writes no metadata). Since Linux 5.8 it reports write-back errors.
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    let dir = File::open(path)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } == 0 {
            return Ok(());
        }
        Err(io::Error::last_os_error())
    }
    #[cfg(not(target_os = "linux"))]
    {
        // No syncfs: sync(2) does the same for every file system, but
        // reports nothing; fsync the directory for an error at least.
        // SAFETY: no arguments.
        unsafe { libc::sync() };
        dir.sync_all()
    }
}

/// Creates an unnamed file (`O_TMPFILE`) on the file system of directory
/// `dir`: a file that no directory names yet, which vanishes if the process
/// dies before [`link_unnamed`] names it. A writer of thousands of files
/// writes each one this way, makes the batch durable with one
/// [`sync_filesystem`] and only then names them: one directory entry made
/// per file (instead of a create in `tmp/`, then a rename that removes it
/// there and adds it in `new/`), and nothing left in `tmp/` by a kill.
///
/// `Ok(None)` where the kernel or the file system has no `O_TMPFILE`
/// (remembered, so the caller's fallback costs one failed call per process).
pub fn create_unnamed(dir: &File, mode: u32) -> io::Result<Option<File>> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::{AsRawFd, FromRawFd};
        use std::sync::atomic::{AtomicBool, Ordering};
        static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
        if UNSUPPORTED.load(Ordering::Relaxed) {
            return Ok(None);
        }
        // SAFETY: a valid directory descriptor and a NUL-terminated path.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                c".".as_ptr(),
                libc::O_TMPFILE | libc::O_WRONLY | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if fd >= 0 {
            // SAFETY: a descriptor we just opened and own.
            return Ok(Some(unsafe { File::from_raw_fd(fd) }));
        }
        let err = io::Error::last_os_error();
        // EISDIR: a kernel before 3.11 (it reads O_TMPFILE as O_DIRECTORY);
        // EOPNOTSUPP: a file system without it.
        if matches!(
            err.raw_os_error(),
            Some(libc::EISDIR) | Some(libc::EOPNOTSUPP) | Some(libc::EINVAL)
        ) {
            UNSUPPORTED.store(true, Ordering::Relaxed);
            return Ok(None);
        }
        Err(err)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (dir, mode);
        Ok(None)
    }
}

/// Names a file made by [`create_unnamed`] `name` in directory `dir`,
/// failing with `AlreadyExists` if that name is taken (linkat never
/// replaces). Through `AT_EMPTY_PATH` (Linux 6.10 lets any process link a
/// file it opened; before, that needed `CAP_DAC_READ_SEARCH`), else
/// through `/proc/self/fd`.
#[cfg(target_os = "linux")]
pub fn link_unnamed(file: &File, dir: &File, name: &std::ffi::CStr) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    static NO_EMPTY_PATH: AtomicBool = AtomicBool::new(false);
    if !NO_EMPTY_PATH.load(Ordering::Relaxed) {
        // SAFETY: valid descriptors and NUL-terminated paths.
        let rc = unsafe {
            libc::linkat(
                file.as_raw_fd(),
                c"".as_ptr(),
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        // ENOENT: not allowed to link by descriptor (an older kernel).
        if err.raw_os_error() != Some(libc::ENOENT) {
            return Err(err);
        }
        NO_EMPTY_PATH.store(true, Ordering::Relaxed);
    }
    let proc_path = std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(io::Error::other)?;
    // SAFETY: valid descriptors and NUL-terminated paths.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            proc_path.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
pub fn link_unnamed(_file: &File, _dir: &File, _name: &std::ffi::CStr) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Raises this process's limit of open files to its hard limit (a batch
/// of unnamed files stays open until it is durable) and returns the new
/// soft limit.
pub fn raise_open_files_limit() -> u64 {
    // SAFETY: plain data, filled by getrlimit.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: a valid rlimit; raising the soft limit up to the hard one is always allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    lim.rlim_cur as u64
}

/// Which of the two fsyncs of [`fsync_file_and_dir`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    File,
    Dir,
}

/// fsyncs a file and the directory that names it, both before returning.
///
/// The two run at the same time, from two threads. Done one after the
/// other, the second finds the journal already committed and still sends
/// the device its own cache flush; done together, both wait on the same
/// commit and its one flush. The guarantee is the same either way: neither
/// returns before its data is durable, and we wait for both.
pub fn fsync_file_and_dir(file: &File, dir: &Path) -> Result<(), (io::Error, Which)> {
    let dir_file = File::open(dir).map_err(|e| (e, Which::Dir))?;
    std::thread::scope(|s| {
        let dir_sync = s.spawn(|| dir_file.sync_all());
        let file_result = file.sync_all().map_err(|e| (e, Which::File));
        let dir_result = dir_sync
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("fsync thread panicked")));
        file_result?;
        dir_result.map_err(|e| (e, Which::Dir))
    })
}

/// fsyncs a directory, making the names created or removed in it durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Renames `from` to `to` unless `to` exists (then `AlreadyExists`), so a
/// name collision can never overwrite a delivered message.
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let cfrom = CString::new(from.as_os_str().as_bytes()).map_err(io::Error::other)?;
        let cto = CString::new(to.as_os_str().as_bytes()).map_err(io::Error::other)?;
        // SAFETY: two valid NUL-terminated paths, relative to the working directory.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                cfrom.as_ptr(),
                libc::AT_FDCWD,
                cto.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if !matches!(err.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
            return Err(err);
        }
    }
    // The Maildir spec's own way: link fails on an existing name.
    fs::hard_link(from, to)?;
    fs::remove_file(from)
}

/// Replaces `path` with `contents` atomically and durably: a temporary file
/// beside it, fsynced, renamed over it, and the directory fsynced. Readers
/// see the old file or the new one, never a mix.
///
/// As root, the new file is given the owner, group and mode of the file it
/// replaces (or, where there is none, the owner and group of its directory)
/// before it is renamed into place, so that a server running as the mail
/// user never sees a file it cannot read.
pub fn replace_file(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("a file path is needed"))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = create_new(&tmp, mode)?;
        if running_as_root() {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            match fs::metadata(path) {
                Ok(old) => {
                    std::os::unix::fs::fchown(&file, Some(old.uid()), Some(old.gid()))?;
                    // After the chown, which clears set-id bits.
                    file.set_permissions(fs::Permissions::from_mode(old.mode() & 0o7777))?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => give_to_owner_of(&file, dir)?,
                Err(e) => return Err(e),
            }
        }
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Whether this process runs with an effective uid of 0. Only then can
/// what it creates end up owned by someone a server running as the mail
/// user is not, and only then can it give it away.
pub fn running_as_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Gives an open file or directory the owner and group of directory `dir`
/// (where it is, or is about to be, named). Only root may; call it only
/// when [`running_as_root`].
pub fn give_to_owner_of(file: &File, dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let owner = fs::metadata(dir)?;
    let now = file.metadata()?;
    if (now.uid(), now.gid()) == (owner.uid(), owner.gid()) {
        return Ok(());
    }
    std::os::unix::fs::fchown(file, Some(owner.uid()), Some(owner.gid()))
}

/// As [`create_new`], but as root the file is given the owner and group of
/// its directory at once (a window of one system call where it is named
/// and owned by root: use it only for files a reader does not open, such
/// as markers and locks).
pub fn create_new_owned(path: &Path, mode: u32) -> io::Result<File> {
    let file = create_new(path, mode)?;
    if running_as_root() {
        give_to_owner_of(&file, parent_dir(path))?;
    }
    Ok(file)
}

/// Creates a file that must not exist yet, with the given permissions.
pub fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

/// Creates a directory (and fsyncs its parent) unless it exists. Returns
/// whether this call made it.
///
/// As root, the directory is made under a temporary name in `dir`'s
/// parent, given the owner and group of that parent, filled by `fill`
/// (which sees the temporary path), and only then renamed into place, so a
/// server running as the mail user never sees a directory named `dir`
/// that it cannot enter. Otherwise it is made in place and `fill` runs on
/// `dir` itself. `fill` runs only when this call made the directory.
pub fn create_dir_durable(dir: &Path, mode: u32) -> io::Result<bool> {
    create_dir_durable_with(dir, mode, parent_dir(dir), |_| Ok(()))
}

/// As [`create_dir_durable`], with the temporary name made in `staging`
/// (on the same file system as `dir`; a directory whose entries nobody
/// reads as names, for where a `.`-name in `dir`'s parent means something,
/// as a folder does in a Maildir's root) and `fill` to put its contents in
/// before it is named.
pub fn create_dir_durable_with(
    dir: &Path,
    mode: u32,
    staging: &Path,
    fill: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<bool> {
    use std::os::unix::fs::DirBuilderExt;
    let parent = parent_dir(dir);
    if !running_as_root() {
        return match fs::DirBuilder::new().mode(mode).create(dir) {
            Ok(()) => {
                fill(dir)?;
                fsync_dir(parent)?;
                Ok(true)
            }
            Err(e) => existing_dir(dir, e),
        };
    }
    if dir.is_dir() {
        return Ok(false);
    }
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = staging.join(format!(
        ".ownmail-mkdir.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    fs::DirBuilder::new().mode(mode).create(&tmp)?;
    let result = (|| {
        give_to_owner_of(&File::open(&tmp)?, parent)?;
        fill(&tmp)?;
        rename_dir_noreplace(&tmp, dir)
    })();
    match result {
        Ok(()) => {
            fsync_dir(parent)?;
            if staging != parent {
                fsync_dir(staging)?;
            }
            Ok(true)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            existing_dir(dir, e)
        }
    }
}

/// The outcome of making a directory that failed with `e`: an existing
/// directory is no failure (made by someone else meanwhile); but a file in
/// the way is "not a directory", which says what is wrong, where "File
/// exists" does not.
fn existing_dir(dir: &Path, e: io::Error) -> io::Result<bool> {
    match e.kind() {
        io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty if dir.is_dir() => {
            Ok(false)
        }
        io::ErrorKind::AlreadyExists => Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
        _ => Err(e),
    }
}

/// Renames directory `from` to `to` unless `to` exists.
fn rename_dir_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    match rename_noreplace(from, to) {
        // No renameat2 on this file system, and link(2) cannot name a
        // directory: rename(2) replaces only an empty directory, which a
        // concurrent creator may just have made; ours is as good.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            if to.exists() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(from, to)
        }
        other => other,
    }
}

/// Creates a directory and its missing parents, each with
/// [`create_dir_durable`] (so, as root, each owned by the owner of the
/// directory it is made in).
pub fn create_dir_all_durable(dir: &Path, mode: u32) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all_durable(parent, mode)?;
    }
    create_dir_durable(dir, mode).map(|_| ())
}

/// Makes a directory in place that nobody can be waiting for (inside one
/// made by [`create_dir_durable_with`] before it is named, or a Maildir
/// subdirectory lost in a crash); as root, gives it the owner and group of
/// its parent.
pub fn create_dir_owned(dir: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().mode(mode).create(dir)?;
    if running_as_root() {
        give_to_owner_of(&File::open(dir)?, parent_dir(dir))?;
    }
    Ok(())
}

/// The directory a path lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_noreplace_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, "new").unwrap();
        fs::write(&b, "delivered").unwrap();
        let err = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&b).unwrap(), "delivered");
        fs::remove_file(&b).unwrap();
        rename_noreplace(&a, &b).unwrap();
        assert!(!a.exists());
        assert_eq!(fs::read_to_string(&b).unwrap(), "new");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn an_unnamed_file_is_invisible_until_linked_and_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let d = File::open(dir.path()).unwrap();
        let Some(mut file) = create_unnamed(&d, 0o600).unwrap() else {
            // tmpfs and ext4 have O_TMPFILE; a test machine without it
            // would not test this path at all, so it must not pass.
            panic!("no O_TMPFILE on the file system of {:?}", dir.path());
        };
        file.write_all(b"whole").unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        fs::write(dir.path().join("taken"), "delivered").unwrap();
        let err = link_unnamed(&file, &d, c"taken").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(
            fs::read_to_string(dir.path().join("taken")).unwrap(),
            "delivered"
        );
        link_unnamed(&file, &d, c"name").unwrap();
        drop(file);
        assert_eq!(
            fs::read_to_string(dir.path().join("name")).unwrap(),
            "whole"
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn replace_file_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("passwd");
        replace_file(&p, b"one\n", 0o600).unwrap();
        replace_file(&p, b"two\n", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two\n");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("passwd")]);
    }
}
