//! Writing one message into a folder, by the Maildir spec: a unique name, the
//! bytes into `tmp/`, then a rename into `new/` (or `cur/` with flags).
//!
//! A converter that writes thousands of messages in batches can instead
//! write each into an unnamed file ([`UnnamedMessage`], `O_TMPFILE`) and
//! link it into `new/` or `cur/` once the batch is durable.
//!
//! Two phases, so that callers can stream any size of message and batch
//! durability: [`TmpMessage`] is the open file in `tmp/` (a [`Write`]r that
//! counts what it is given), and [`TmpMessage::commit`] names it. A
//! `TmpMessage` dropped without commit removes its file: nothing partial is
//! ever visible in `new/` or `cur/`.
//!
//! File names are Dovecot's: `<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>,W=<vsize>`
//! where S is the size on disk (LF line ends) and W the size with CRLF, which
//! is what IMAP's RFC822.SIZE reports; Dovecot reads both and so saves
//! itself a read of the file. W counts what Dovecot serves: a CR is added
//! before every LF that does not already follow one, so a CR LF pair on
//! disk (the CR of an input line ending in CR CR LF) stays two bytes.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::StoreError;
use super::durable;
use super::flags::Flags;

/// The Maildir spec: files in tmp/ untouched for 36 hours are abandoned.
pub const STALE_TMP: Duration = Duration::from_secs(36 * 3600);
const WRITE_BUFFER: usize = 64 * 1024;

/// How much a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The message is durable when `commit` returns (file and directory
    /// fsynced). Use for every single acknowledged delivery.
    Immediate,
    /// The data is on the device and the name is set, but not yet durable:
    /// the caller makes the batch durable with [`super::Folder::sync`]
    /// before it reports success.
    Deferred,
}

/// A message that was committed into a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub path: PathBuf,
    /// Bytes on disk.
    pub size: u64,
    /// Bytes with every LF not preceded by CR counted as CRLF
    /// (RFC822.SIZE, as Dovecot serves the file).
    pub vsize: u64,
}

/// A message being written into a folder's `tmp/`.
pub struct TmpMessage {
    folder: PathBuf,
    tmp_path: PathBuf,
    base: String,
    out: BufWriter<File>,
    sizes: Sizes,
    mtime: Option<SystemTime>,
    committed: bool,
}

impl TmpMessage {
    pub(crate) fn create(folder: PathBuf) -> Result<TmpMessage, StoreError> {
        TmpMessage::create_with_buffer(folder, WRITE_BUFFER)
    }

    /// As [`TmpMessage::create`] with a write buffer of `capacity` bytes:
    /// a converter that keeps hundreds of messages open at once (to write
    /// them out together) wants small buffers.
    pub(crate) fn create_with_buffer(
        folder: PathBuf,
        capacity: usize,
    ) -> Result<TmpMessage, StoreError> {
        let tmp_dir = folder.join("tmp");
        // A collision means another process used our pid in the same
        // microsecond; a fresh name (the counter moves on) settles it.
        for _ in 0..8 {
            let base = unique_base();
            let tmp_path = tmp_dir.join(&base);
            match durable::create_new(&tmp_path, 0o600) {
                Ok(file) => {
                    // As root (an admin trying `deliver` by hand), the
                    // message is the folder owner's, or a server running
                    // as the mail user could not read it.
                    if durable::running_as_root()
                        && let Err(e) = durable::give_to_owner_of(&file, &folder)
                    {
                        let _ = fs::remove_file(&tmp_path);
                        return Err(StoreError::io(&tmp_path)(e));
                    }
                    return Ok(TmpMessage {
                        folder,
                        tmp_path,
                        base,
                        out: BufWriter::with_capacity(capacity, file),
                        sizes: Sizes::default(),
                        mtime: None,
                        committed: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StoreError::io(&tmp_dir)(e)),
            }
        }
        Err(StoreError::io(&tmp_dir)(io::Error::other(
            "could not find a unique file name",
        )))
    }

    /// The unique part of the file name (`<secs>.M<usecs>P<pid>Q<n>.<host>`),
    /// which stays the start of the name in `new/` or `cur/` whatever flags
    /// it gets later: a caller can record it before the commit and find the
    /// message again after a crash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The folder this message goes into.
    pub fn folder(&self) -> &std::path::Path {
        &self.folder
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.sizes.size
    }

    /// Sets the file's modification time (what IMAP shows as INTERNALDATE).
    pub fn set_mtime(&mut self, t: SystemTime) {
        self.mtime = Some(t);
    }

    /// Starts writing the data to the device without waiting; see
    /// [`durable::start_write_out`]. For batches.
    pub fn start_write_out(&mut self) -> io::Result<()> {
        self.out.flush()?;
        durable::start_write_out(self.out.get_ref());
        Ok(())
    }

    /// Gives the message its final name in `new/` (no flags) or `cur/`
    /// (flags set, or `seen` true: a message someone has already looked at).
    pub fn commit(
        self,
        flags: &Flags,
        in_cur: bool,
        durability: Durability,
    ) -> Result<Delivered, StoreError> {
        let base = self.base.clone();
        self.commit_as(&base, flags, in_cur, durability)
    }

    /// As [`TmpMessage::commit`], with a base name the caller chose instead
    /// of the unique one the file has in `tmp/`: a converter that names
    /// each message after its source can then tell, on a second run, what
    /// is already there. The name is taken with `rename_noreplace`, so an
    /// existing file of the same name is never replaced: the commit fails
    /// with [`io::ErrorKind::AlreadyExists`] and the temporary file is
    /// removed.
    ///
    /// `base` must be a valid base name: see [`is_valid_base`].
    pub fn commit_as(
        mut self,
        base: &str,
        flags: &Flags,
        in_cur: bool,
        durability: Durability,
    ) -> Result<Delivered, StoreError> {
        let (sub, name) =
            final_name(base, self.sizes, flags, in_cur).map_err(StoreError::io(&self.tmp_path))?;
        let io_err = StoreError::io(&self.tmp_path);
        self.out.flush().map_err(io_err)?;
        let file = self.out.get_ref();
        if let Some(t) = self.mtime {
            file.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
                .map_err(StoreError::io(&self.tmp_path))?;
        }
        durable::write_out(file).map_err(StoreError::io(&self.tmp_path))?;

        let dir = self.folder.join(sub);
        let path = dir.join(name);
        durable::rename_noreplace(&self.tmp_path, &path).map_err(StoreError::io(&path))?;
        self.committed = true;
        if durability == Durability::Immediate {
            durable::fsync_file_and_dir(self.out.get_ref(), &dir).map_err(
                |(e, which)| match which {
                    durable::Which::File => StoreError::io(&path)(e),
                    durable::Which::Dir => StoreError::io(&dir)(e),
                },
            )?;
        }
        Ok(self.sizes.delivered(path))
    }
}

impl TmpMessage {
    /// Writes out what is buffered, sets the modification time and closes
    /// the file, leaving it in `tmp/` to be named later by
    /// [`ClosedTmp::commit_as`]: for a converter that writes a batch of
    /// thousands of messages, makes all of it durable with one
    /// [`durable::sync_filesystem`], and only then names them (without an
    /// open file per waiting message).
    pub fn close(mut self) -> Result<ClosedTmp, StoreError> {
        self.out.flush().map_err(StoreError::io(&self.tmp_path))?;
        if let Some(t) = self.mtime {
            self.out
                .get_ref()
                .set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
                .map_err(StoreError::io(&self.tmp_path))?;
        }
        // From here the ClosedTmp owns the file in tmp/ (and removes it if
        // dropped unnamed).
        self.committed = true;
        Ok(ClosedTmp {
            folder: std::mem::take(&mut self.folder),
            tmp_path: std::mem::take(&mut self.tmp_path),
            sizes: self.sizes,
            named: false,
        })
    }
}

/// A message written and closed in `tmp/`, not yet named (see
/// [`TmpMessage::close`]). Dropped unnamed, its file is removed.
#[derive(Debug)]
pub struct ClosedTmp {
    folder: PathBuf,
    tmp_path: PathBuf,
    sizes: Sizes,
    named: bool,
}

impl ClosedTmp {
    /// Bytes written.
    pub fn size(&self) -> u64 {
        self.sizes.size
    }

    /// Names the message `base` in `new/` or `cur/`, never replacing a file
    /// (as [`TmpMessage::commit_as`]). It waits for nothing: the caller has
    /// made the file durable before (a [`durable::sync_filesystem`] after
    /// [`TmpMessage::close`]), so that the name never points to data that
    /// is not on the device; the caller fsyncs the directory after.
    pub fn commit_as(
        mut self,
        base: &str,
        flags: &Flags,
        in_cur: bool,
    ) -> Result<Delivered, StoreError> {
        let (sub, name) =
            final_name(base, self.sizes, flags, in_cur).map_err(StoreError::io(&self.tmp_path))?;
        let path = self.folder.join(sub).join(name);
        durable::rename_noreplace(&self.tmp_path, &path).map_err(StoreError::io(&path))?;
        self.named = true;
        Ok(self.sizes.delivered(path))
    }
}

impl Drop for ClosedTmp {
    fn drop(&mut self) {
        if !self.named {
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

/// A folder's `new/` and `cur/` held open, to create and name messages
/// relative to them (no path to build and look up per message).
#[derive(Debug)]
pub struct FolderDirs {
    path: PathBuf,
    new: File,
    cur: File,
}

impl FolderDirs {
    pub(crate) fn open(folder: &Path) -> Result<FolderDirs, StoreError> {
        let open = |sub: &str| {
            let dir = folder.join(sub);
            File::open(&dir).map_err(StoreError::io(&dir))
        };
        Ok(FolderDirs {
            path: folder.to_owned(),
            new: open("new")?,
            cur: open("cur")?,
        })
    }

    /// Starts a message as an unnamed file (see
    /// [`durable::create_unnamed`]); `None` where the system cannot, and
    /// the caller writes into `tmp/` instead.
    pub fn create_unnamed(&self) -> Result<Option<UnnamedMessage>, StoreError> {
        match durable::create_unnamed(&self.new, 0o600) {
            Ok(file) => Ok(file.map(|file| UnnamedMessage {
                file,
                sizes: Sizes::default(),
            })),
            Err(e) => Err(StoreError::io(self.path.join("new"))(e)),
        }
    }
}

/// A message written into an unnamed file: invisible, and gone if the
/// process dies, until [`UnnamedMessage::commit_as`] names it. The caller
/// makes its data durable before (a [`durable::sync_filesystem`] of the
/// batch) and the name after (another one: linking changes the file's
/// link count, which a directory fsync does not write on a file system
/// without a journal).
#[derive(Debug)]
pub struct UnnamedMessage {
    file: File,
    sizes: Sizes,
}

impl UnnamedMessage {
    /// Bytes written.
    pub fn size(&self) -> u64 {
        self.sizes.size
    }

    /// Drops the file's pages from the page cache. Once they are on the
    /// device (after a sync) they are clean and go at once; dirty ones
    /// stay. Advice only: nothing to fail.
    pub fn drop_cached_pages(&self) {
        // SAFETY: a valid descriptor.
        unsafe { libc::posix_fadvise(self.file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    }

    /// Sets the file's modification and access time (INTERNALDATE).
    pub fn set_mtime(&self, t: SystemTime) -> io::Result<()> {
        self.file
            .set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
    }

    /// Names the message `base` in `dirs`' `new/` or `cur/` (as
    /// [`ClosedTmp::commit_as`]: never replacing a file, `AlreadyExists`
    /// if the name is taken) and closes it.
    pub fn commit_as(
        self,
        dirs: &FolderDirs,
        base: &str,
        flags: &Flags,
        in_cur: bool,
    ) -> Result<Delivered, StoreError> {
        let (sub, name) = self.link(dirs, base, flags, in_cur)?;
        Ok(self.sizes.delivered(dirs.path.join(sub).join(name)))
    }

    /// Names the message as [`Self::commit_as`] does, and leaves the file
    /// open, for the caller to close where closing costs it nothing (a
    /// converter names every file from one thread). Returns the folder's
    /// subdirectory and the file name.
    pub fn link(
        &self,
        dirs: &FolderDirs,
        base: &str,
        flags: &Flags,
        in_cur: bool,
    ) -> Result<(&'static str, String), StoreError> {
        let (sub, mut name) = final_name(base, self.sizes, flags, in_cur)
            .map_err(StoreError::io(dirs.path.join("new")))?;
        let dir = if sub == "cur" { &dirs.cur } else { &dirs.new };
        name.push('\0');
        let result = std::ffi::CStr::from_bytes_with_nul(name.as_bytes())
            .map_err(io::Error::other)
            .and_then(|cname| durable::link_unnamed(&self.file, dir, cname));
        name.pop();
        result.map_err(|e| StoreError::io(dirs.path.join(sub).join(&name))(e))?;
        Ok((sub, name))
    }
}

impl Write for UnnamedMessage {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.sizes.add(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The subdirectory and file name a message gets:
/// `<base>,S=<size>,W=<vsize>` in `new/`, with `:2,<flags>` in `cur/`.
fn final_name(
    base: &str,
    sizes: Sizes,
    flags: &Flags,
    in_cur: bool,
) -> io::Result<(&'static str, String)> {
    if !is_valid_base(base) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{base:?} is not a valid Maildir base name"),
        ));
    }
    let in_cur = in_cur || !flags.is_empty();
    let mut name = format!("{base},S={},W={}", sizes.size, sizes.vsize());
    if in_cur {
        name.push_str(":2,");
        name.push_str(&flags.to_string());
        return Ok(("cur", name));
    }
    Ok(("new", name))
}

/// How [`adopt`] takes a message file from another folder of the same
/// Maildir (IMAP COPY and MOVE, as Dovecot's `maildir_copy_with_hardlinks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopt {
    /// A hard link: the message is in both folders, no byte copied. The
    /// file's modification time (INTERNALDATE) is the same inode's.
    Link,
    /// A rename: the message leaves its folder for this one in one step,
    /// so a crash at any moment leaves it in exactly one of the two.
    Rename,
}

/// Puts the message file `src` into `folder` under a new unique base name,
/// in `new/` without flags and in `cur/` with them, by [`Adopt`]: no bytes
/// copied, nothing to clean up if interrupted. The new name is not durable
/// until the caller syncs the folder (and, for a rename, the source's).
///
/// `Ok(None)` when it cannot be done here and the caller should copy the
/// bytes instead: the source is on another file system (a folder that is a
/// symbolic link elsewhere), the file system refuses hard links, the file
/// has too many, or `src` is gone (renamed by another process that changed
/// its flags: the caller's open file still has it).
pub(crate) fn adopt(
    folder: &Path,
    src: &Path,
    flags: &Flags,
    how: Adopt,
) -> Result<Option<(String, Delivered)>, StoreError> {
    let sizes = match src
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(sizes_in_name)
    {
        Some(sizes) => sizes,
        None => match count_sizes(src) {
            Ok(sizes) => sizes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(src)(e)),
        },
    };
    for _ in 0..8 {
        let base = unique_base();
        let (sub, name) = final_name(&base, sizes, flags, false).map_err(StoreError::io(src))?;
        let path = folder.join(sub).join(name);
        let done = match how {
            Adopt::Link => fs::hard_link(src, &path),
            Adopt::Rename => durable::rename_noreplace(src, &path),
        };
        match done {
            Ok(()) => return Ok(Some((base, sizes.delivered(path)))),
            // Our pid in the same microsecond elsewhere: a fresh name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || matches!(
                        e.raw_os_error(),
                        Some(libc::EXDEV | libc::EPERM | libc::EMLINK | libc::EOPNOTSUPP)
                    ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(StoreError::io(&path)(e)),
        }
    }
    Err(StoreError::io(folder)(io::Error::other(
        "could not find a unique file name",
    )))
}

/// The sizes a Maildir file name records (`,S=<bytes>,W=<bytes>` after the
/// base, as Dovecot and we write them), when it records both.
fn sizes_in_name(name: &str) -> Option<Sizes> {
    let head = name.split(':').next()?;
    let mut size = None;
    let mut vsize = None;
    for field in head.split(',').skip(1) {
        if let Some(v) = field.strip_prefix("S=") {
            size = v.parse::<u64>().ok();
        } else if let Some(v) = field.strip_prefix("W=") {
            vsize = v.parse::<u64>().ok();
        }
    }
    let (size, vsize) = (size?, vsize?);
    Some(Sizes {
        size,
        bare_lfs: vsize.checked_sub(size)?,
        last_cr: false,
    })
}

/// The sizes of a file whose name does not record them, by reading it.
fn count_sizes(path: &Path) -> io::Result<Sizes> {
    use std::io::Read;
    let mut file = File::open(path)?;
    let mut sizes = Sizes::default();
    let mut buf = vec![0; WRITE_BUFFER];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(sizes),
            Ok(n) => sizes.add(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl Write for TmpMessage {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.sizes.add(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Drop for TmpMessage {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

/// What a message file's name records of its size, counted as it is
/// written: `S=` the bytes, `W=` the bytes IMAP serves (CRLF line ends).
#[derive(Debug, Default, Clone, Copy)]
struct Sizes {
    size: u64,
    /// LFs not preceded by a CR: the bytes IMAP adds when it serves CRLF.
    bare_lfs: u64,
    /// Whether the last byte written was a CR (for an LF in the next write).
    last_cr: bool,
}

impl Sizes {
    fn add(&mut self, written: &[u8]) {
        self.size += written.len() as u64;
        self.bare_lfs += count_bare_lfs(written, self.last_cr);
        if let Some(&last) = written.last() {
            self.last_cr = last == b'\r';
        }
    }

    fn vsize(&self) -> u64 {
        self.size + self.bare_lfs
    }

    fn delivered(&self, path: PathBuf) -> Delivered {
        Delivered {
            path,
            size: self.size,
            vsize: self.vsize(),
        }
    }
}

/// LFs in `bytes` not preceded by a CR; `after_cr`: the byte before
/// `bytes` was a CR. All LFs less the CR LF pairs: counted in one pass
/// each, not LF by LF (this runs over every byte a conversion writes).
fn count_bare_lfs(bytes: &[u8], after_cr: bool) -> u64 {
    let lfs = memchr::memchr_iter(b'\n', bytes).count();
    let mut crlfs = usize::from(after_cr && bytes.first() == Some(&b'\n'));
    if memchr::memchr(b'\r', bytes).is_some() {
        crlfs += memchr::memmem::find_iter(bytes, b"\r\n").count();
    }
    (lfs - crlfs) as u64
}

/// Whether a caller-chosen base name is safe: not empty, at most 200
/// bytes, not starting with `.`, and without `/`, `:` or `,` (which end the
/// base in the names Dovecot parses) or control characters.
pub fn is_valid_base(base: &str) -> bool {
    !base.is_empty()
        && base.len() <= 200
        && !base.starts_with('.')
        && !base
            .bytes()
            .any(|b| matches!(b, b'/' | b':' | b',') || b.is_ascii_control())
}

/// `<secs>.M<usecs>P<pid>Q<n>.<host>`: unique by time, process and a
/// per-process counter, as the Maildir spec and Dovecot make them.
fn unique_base() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    format!(
        "{}.M{}P{}Q{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        n,
        host()
    )
}

/// The host name, with the characters that would break a Maildir name
/// escaped as the spec says (`/` as `\057`, `:` as `\072`; `,` as `\054`
/// too, since it separates the `S=` fields).
pub fn host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| sanitize_host(&system_hostname()))
}

fn sanitize_host(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '/' => out.push_str("\\057"),
            ':' => out.push_str("\\072"),
            ',' => out.push_str("\\054"),
            c if c.is_control() || c == ' ' => out.push('_'),
            c => out.push(c),
        }
    }
    if out.is_empty() {
        "localhost".to_owned()
    } else {
        out
    }
}

/// The system's host name (gethostname(2)).
pub fn system_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; the result is NUL-terminated or truncated.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_owned();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

pub(crate) fn clean_tmp(tmp: &Path, older_than: Duration) -> usize {
    let Ok(entries) = fs::read_dir(tmp) else {
        return 0;
    };
    let now = SystemTime::now();
    let cutoff = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(older_than)
        .as_secs();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        // Our names start with their creation time: skip the fresh ones
        // without a stat, so this stays cheap on every delivery.
        let secs = name
            .to_str()
            .and_then(|n| n.split('.').next())
            .and_then(|s| s.parse::<u64>().ok());
        if secs.is_some_and(|s| s > cutoff) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let last_use = meta
            .accessed()
            .unwrap_or(SystemTime::UNIX_EPOCH)
            .max(meta.modified().unwrap_or(UNIX_EPOCH));
        if meta.is_file()
            && now.duration_since(last_use).unwrap_or_default() > older_than
            && fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MailboxName, Maildir};

    fn inbox() -> (tempfile::TempDir, crate::store::Folder) {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::create(dir.path()).unwrap();
        let f = md.folder(&MailboxName::inbox()).unwrap();
        (dir, f)
    }

    #[test]
    fn a_committed_message_has_dovecots_name_and_exact_bytes() {
        let (_d, f) = inbox();
        let mut m = f.create_tmp().unwrap();
        m.write_all(b"Subject: hi\n\nbody\n").unwrap();
        let d = m
            .commit(&Flags::EMPTY, false, Durability::Immediate)
            .unwrap();
        assert_eq!((d.size, d.vsize), (18, 21));
        let name = d.path.file_name().unwrap().to_str().unwrap();
        assert!(
            d.path.parent().unwrap().ends_with("new"),
            "{}",
            d.path.display()
        );
        let re_ok = name.contains(".M")
            && name.contains(&format!("P{}Q", std::process::id()))
            && name.ends_with(",S=18,W=21");
        assert!(re_ok, "{name}");
        assert_eq!(fs::read(&d.path).unwrap(), b"Subject: hi\n\nbody\n");
        assert_eq!(fs::read_dir(f.path().join("tmp")).unwrap().count(), 0);
    }

    /// Regression: W= counted every LF as two bytes, but Dovecot serves a
    /// CR LF already on disk as it is (an input line ending in CR CR LF is
    /// stored ending in CR LF). Dovecot then found W= too large, logged
    /// "Maildir filename has wrong W value", renamed the file, and failed
    /// the FETCH (SpamAssassin corpus spam-2/00083).
    #[test]
    fn w_counts_only_the_crs_imap_adds() {
        let cases: &[(&[&[u8]], u64)] = &[
            (&[b"a\nb\n"], 6),
            (&[b"a\r\nb\n"], 6),
            (&[b"\n"], 2),
            (&[b"a\r", b"\nb\n"], 6),
            (&[b"a\r", b"", b"\n"], 3),
            (&[b"\r\r\n\r"], 4),
            (&[b"x\r"], 2),
        ];
        for (writes, vsize) in cases {
            let (_d, f) = inbox();
            let mut m = f.create_tmp().unwrap();
            for w in *writes {
                m.write_all(w).unwrap();
            }
            let d = m
                .commit(&Flags::EMPTY, false, Durability::Immediate)
                .unwrap();
            assert_eq!(d.vsize, *vsize, "{writes:?}");
            let name = d.path.file_name().unwrap().to_str().unwrap().to_owned();
            assert!(name.ends_with(&format!(",W={vsize}")), "{name}");
        }
    }

    #[test]
    fn bare_lfs_are_counted_as_one_lf_at_a_time_would() {
        let by_each_lf = |bytes: &[u8], after_cr: bool| {
            (0..bytes.len())
                .filter(|&i| bytes[i] == b'\n')
                .filter(|&i| {
                    !if i == 0 {
                        after_cr
                    } else {
                        bytes[i - 1] == b'\r'
                    }
                })
                .count() as u64
        };
        // Every string of up to 7 bytes over CR, LF and one other byte.
        for len in 0..=7u32 {
            for n in 0..3usize.pow(len) {
                let bytes: Vec<u8> = (0..len).map(|k| b"\r\nx"[n / 3usize.pow(k) % 3]).collect();
                for after_cr in [false, true] {
                    assert_eq!(
                        count_bare_lfs(&bytes, after_cr),
                        by_each_lf(&bytes, after_cr),
                        "{bytes:?} after CR: {after_cr}"
                    );
                }
            }
        }
    }

    #[test]
    fn commit_as_uses_the_callers_base_and_never_replaces() {
        let (_d, f) = inbox();
        let mut m = f.create_tmp_with_buffer(16).unwrap();
        m.write_all(b"first\n").unwrap();
        let d = m
            .commit_as(
                "123.Xabc.host",
                &Flags::from_info("S"),
                false,
                Durability::Deferred,
            )
            .unwrap();
        f.sync().unwrap();
        assert_eq!(
            d.path.file_name().unwrap().to_str().unwrap(),
            "123.Xabc.host,S=6,W=7:2,S"
        );
        let mut again = f.create_tmp().unwrap();
        again.write_all(b"other\n").unwrap();
        let err = again
            .commit_as(
                "123.Xabc.host",
                &Flags::from_info("S"),
                false,
                Durability::Deferred,
            )
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Io { source, .. } if source.kind() == io::ErrorKind::AlreadyExists),
            "{err}"
        );
        assert_eq!(fs::read(&d.path).unwrap(), b"first\n");
        assert_eq!(fs::read_dir(f.path().join("tmp")).unwrap().count(), 0);
        for bad in ["", ".x", "a/b", "a:b", "a,b", "a\nb"] {
            let m = f.create_tmp().unwrap();
            assert!(
                m.commit_as(bad, &Flags::EMPTY, false, Durability::Deferred)
                    .is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(fs::read_dir(f.path().join("tmp")).unwrap().count(), 0);
        let mut names = Vec::new();
        f.scan_names(|n| names.push(n.to_owned())).unwrap();
        assert_eq!(names, vec!["123.Xabc.host,S=6,W=7:2,S".to_owned()]);
    }

    #[test]
    fn flags_put_the_message_in_cur_with_an_info_part() {
        let (_d, f) = inbox();
        let mut m = f.create_tmp().unwrap();
        m.write_all(b"x\n").unwrap();
        let d = m
            .commit(&Flags::from_info("SFa"), false, Durability::Immediate)
            .unwrap();
        assert!(d.path.to_str().unwrap().ends_with(":2,FSa"));
        assert!(d.path.parent().unwrap().ends_with("cur"));
    }

    #[test]
    fn a_dropped_delivery_leaves_nothing() {
        let (_d, f) = inbox();
        let mut m = f.create_tmp().unwrap();
        m.write_all(b"half a mess").unwrap();
        drop(m);
        for sub in ["tmp", "new", "cur"] {
            assert_eq!(
                fs::read_dir(f.path().join(sub)).unwrap().count(),
                0,
                "{sub}"
            );
        }
    }

    #[test]
    fn names_are_unique_within_a_process() {
        let names: std::collections::HashSet<String> = (0..10_000).map(|_| unique_base()).collect();
        assert_eq!(names.len(), 10_000);
    }

    #[test]
    fn host_names_are_sanitised() {
        assert_eq!(sanitize_host("a/b:c,d e"), "a\\057b\\072c\\054d_e");
        assert_eq!(sanitize_host(""), "localhost");
    }

    #[test]
    fn stale_tmp_files_are_cleaned_and_fresh_ones_kept() {
        let (_d, f) = inbox();
        let tmp = f.path().join("tmp");
        let old = SystemTime::now() - STALE_TMP - Duration::from_secs(60);
        fs::write(tmp.join("123.M1P1Q1.host"), "old").unwrap();
        File::options()
            .write(true)
            .open(tmp.join("123.M1P1Q1.host"))
            .unwrap()
            .set_times(fs::FileTimes::new().set_modified(old).set_accessed(old))
            .unwrap();
        fs::write(tmp.join(unique_base()), "fresh").unwrap();
        assert_eq!(f.clean_tmp(), 1);
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 1);
    }
}
