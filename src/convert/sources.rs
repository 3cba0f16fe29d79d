//! Which files to convert, and into which folders: the layouts mail
//! programs leave behind.
//!
//! | layout                | on disk                                   | folders                  |
//! | --------------------- | ----------------------------------------- | ------------------------ |
//! | one mbox file         | `old.mbox`, `sent-mail`                   | `old`, `sent-mail`       |
//! | a spool               | `/var/mail/alice`, `/var/spool/mail/alice` | INBOX                   |
//! | mutt, pine `~/Mail`   | `sent`, `lists/rust`                      | `sent`, `lists/rust`     |
//! | Thunderbird profile   | `Inbox`, `Archives`, `Archives.sbd/2019`, `*.msf` | INBOX, `Archives`, `Archives/2019` |
//! | Apple Mail export     | `Work.mbox/mbox`, `Work.mbox/Info.plist`  | `Work`                   |
//!
//! A file named `INBOX` or `inbox` at the top of a tree, or a spool, is
//! INBOX. With a prefix (`--folder Old`), a tree goes below it (`Old/sent`)
//! and a single file or a tree's INBOX goes into the prefix itself.
//!
//! In a tree, files that are certainly not mailboxes (Thunderbird's `.msf`
//! indexes, `.dat`, `.json`, ..., dot files) are passed over in silence;
//! other files are sniffed, and one that does not start like an mbox is
//! passed over with a note saying why. Maildir and MH folders inside a tree
//! are noted and left alone. Symbolic links to directories are not
//! followed (a loop would never end).
//!
//! Folder names come from file names: `.` is the hierarchy separator of
//! Maildir++ on disk and cannot be in a level, so `lists.rust` becomes
//! `lists_rust` (as do `/`, `*`, `%` and control characters); names that
//! are not UTF-8 are read lossily.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{ConvertError, Problem};
use crate::message::mbox;
use crate::store::MailboxName;

/// Extensions of files that sit beside mailboxes but are not mailboxes.
const NOT_MAILBOXES: [&str; 16] = [
    "msf", "dat", "json", "html", "htm", "sqlite", "log", "plist", "lock", "toc", "snm", "db",
    "ini", "js", "mozlz4", "emlx",
];
/// How deep a tree may go.
const MAX_DEPTH: usize = 32;
/// The path a job reading the SOURCE `-` has.
const STDIN: &str = "/dev/stdin";
const SNIFF: usize = 4096;

/// One mbox file and the folder it goes into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub path: PathBuf,
    pub folder: MailboxName,
    /// Bytes, when planned (for progress); `None` for what is not a plain
    /// file (standard input, a pipe), whose size is known only at its end.
    pub size: Option<u64>,
}

/// Finds the mbox files of every source. A source that does not exist is
/// an error (nothing is converted then); problems inside trees are noted.
pub fn plan(
    sources: &[PathBuf],
    prefix: Option<&MailboxName>,
    problems: &mut Vec<Problem>,
) -> Result<Vec<Job>, ConvertError> {
    let mut jobs: Vec<Job> = Vec::new();
    for source in sources {
        // `-`: standard input (`zcat old.mbox.gz | ownmail convert-mbox -`),
        // into the prefix folder, else INBOX. Once: it can be read once,
        // and two readers at once would each get half of it.
        if source.as_os_str() == "-" {
            if !jobs.iter().any(|j| j.path == Path::new(STDIN)) {
                let folder = prefix.cloned().unwrap_or_else(MailboxName::inbox);
                push(&mut jobs, problems, PathBuf::from(STDIN), Ok(folder));
            }
            continue;
        }
        let meta = fs::metadata(source).map_err(|e| ConvertError::Source {
            path: source.clone(),
            source: e,
        })?;
        if meta.is_dir() {
            let bundle = bundle_mbox(source);
            match bundle {
                // An Apple Mail export given directly: Work.mbox/
                Some(file) => {
                    let name = strip_mbox(source.file_name().unwrap_or_default());
                    let (folder, levels) = match prefix {
                        Some(p) => (Ok(p.clone()), vec![]),
                        None => (MailboxName::new(&name), vec![name]),
                    };
                    push(&mut jobs, problems, file, folder);
                    walk(source, &levels, prefix, 1, &mut jobs, problems);
                }
                None => walk(source, &[], prefix, 0, &mut jobs, problems),
            }
        } else {
            let folder = match prefix {
                Some(p) => Ok(p.clone()),
                None if is_inbox(source) || is_spool(source) => Ok(MailboxName::inbox()),
                None => MailboxName::new(&strip_mbox(source.file_name().unwrap_or_default())),
            };
            push(&mut jobs, problems, source.clone(), folder);
        }
    }
    Ok(jobs)
}

fn push(
    jobs: &mut Vec<Job>,
    problems: &mut Vec<Problem>,
    path: PathBuf,
    folder: Result<MailboxName, crate::store::NameError>,
) {
    match folder {
        Ok(folder) => {
            let size = fs::metadata(&path)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            jobs.push(Job { path, folder, size });
        }
        Err(e) => problems.push(Problem::error(
            &path,
            None,
            format!("cannot name a folder after it: {e}"),
        )),
    }
}

/// Walks a tree; `levels` are the folder names of `dir` below the prefix.
fn walk(
    dir: &Path,
    levels: &[String],
    prefix: Option<&MailboxName>,
    depth: usize,
    jobs: &mut Vec<Job>,
    problems: &mut Vec<Problem>,
) {
    if depth > MAX_DEPTH {
        problems.push(Problem::error(
            dir,
            None,
            format!("deeper than {MAX_DEPTH} levels; not read (convert it as a SOURCE of its own)"),
        ));
        return;
    }
    let mut entries: Vec<(PathBuf, fs::FileType)> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_type().ok().map(|t| (e.path(), t)))
            .collect(),
        Err(e) => {
            problems.push(Problem::error(dir, None, format!("cannot list: {e}")));
            return;
        }
    };
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, kind) in entries {
        let file_name = path.file_name().unwrap_or_default();
        if file_name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let raw = file_name.to_string_lossy();
        if kind.is_dir() {
            if ["cur", "new", "tmp"].iter().all(|d| path.join(d).is_dir()) {
                problems.push(Problem::note(&path, "a Maildir already; left alone"));
                continue;
            }
            if path.join(".mh_sequences").exists() {
                problems.push(Problem::note(&path, "an MH folder; left alone"));
                continue;
            }
            // Thunderbird: the subfolders of folder X live in X.sbd/.
            let name = match raw.strip_suffix(".sbd") {
                Some(parent) => level(parent),
                None => strip_mbox(file_name),
            };
            let mut below = levels.to_vec();
            below.push(name);
            if let Some(file) = bundle_mbox(&path) {
                let folder = folder_for(&below, prefix);
                push(jobs, problems, file, folder);
            }
            walk(&path, &below, prefix, depth + 1, jobs, problems);
            continue;
        }
        if kind.is_symlink() && path.is_dir() {
            problems.push(Problem::note(&path, "a link to a directory; not followed"));
            continue;
        }
        if !path.is_file() {
            continue;
        }
        // The `mbox` file of an Apple Mail bundle was taken with its folder.
        if raw == "mbox"
            && path
                .parent()
                .is_some_and(|p| p.extension() == Some(OsStr::new("mbox")))
        {
            continue;
        }
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        if ext.is_some_and(|e| NOT_MAILBOXES.contains(&e.as_str())) || raw == "table_of_contents" {
            continue;
        }
        match sniff_file(&path) {
            Ok(()) => {}
            // Mail that was not converted: a problem, not a file passed over.
            Err(Sniff::Unreadable(e)) => {
                problems.push(Problem::error(&path, None, format!("cannot read: {e}")));
                continue;
            }
            Err(Sniff::NotMbox(why)) if why.is_mail() => {
                problems.push(Problem::error(&path, None, format!("not converted: {why}")));
                continue;
            }
            Err(Sniff::NotMbox(why)) => {
                problems.push(Problem::note(
                    &path,
                    format!("not an mbox ({why}); left alone"),
                ));
                continue;
            }
        }
        let folder = if levels.is_empty() && raw.eq_ignore_ascii_case("inbox") {
            Ok(prefix.cloned().unwrap_or_else(MailboxName::inbox))
        } else {
            let mut all = levels.to_vec();
            all.push(strip_mbox(file_name));
            folder_for(&all, prefix)
        };
        push(jobs, problems, path, folder);
    }
}

fn folder_for(
    levels: &[String],
    prefix: Option<&MailboxName>,
) -> Result<MailboxName, crate::store::NameError> {
    let joined = levels.join("/");
    match prefix {
        Some(p) => MailboxName::new(&format!("{p}/{joined}")),
        None => MailboxName::new(&joined),
    }
}

/// One folder level made from a file name.
fn level(raw: &str) -> String {
    let s: String = raw
        .chars()
        .map(|c| match c {
            '.' | '/' | '*' | '%' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    if s.trim().is_empty() {
        "_".to_owned()
    } else {
        s
    }
}

/// The folder level of a file or directory name, without a `.mbox` ending.
fn strip_mbox(name: &OsStr) -> String {
    let raw = name.to_string_lossy();
    let stem = match raw.len().checked_sub(5) {
        Some(cut)
            if cut > 0 && raw.is_char_boundary(cut) && raw[cut..].eq_ignore_ascii_case(".mbox") =>
        {
            &raw[..cut]
        }
        _ => &raw[..],
    };
    level(stem)
}

/// The mbox file inside an Apple Mail export bundle (`Name.mbox/mbox`).
fn bundle_mbox(dir: &Path) -> Option<PathBuf> {
    if !dir
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mbox"))
    {
        return None;
    }
    let file = dir.join("mbox");
    file.is_file().then_some(file)
}

fn is_inbox(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.eq_ignore_ascii_case("inbox"))
}

/// `/var/mail/USER` or `/var/spool/mail/USER`.
fn is_spool(path: &Path) -> bool {
    let parent = match path.parent().map(fs::canonicalize) {
        Some(Ok(p)) => p,
        _ => return false,
    };
    parent == Path::new("/var/mail") || parent == Path::new("/var/spool/mail")
}

/// Opens a job's mbox. Standard input is the descriptor this process was
/// given: opening `/dev/stdin` again would be refused when the pipe
/// belongs to another user (`sudo cat … | sudo -u ownmail ownmail …`).
pub fn open(path: &Path) -> io::Result<fs::File> {
    use std::os::fd::AsFd;
    if path == Path::new(STDIN) {
        return Ok(io::stdin().as_fd().try_clone_to_owned()?.into());
    }
    fs::File::open(path)
}

/// Why a file in a tree was not taken as an mbox.
pub enum Sniff {
    Unreadable(io::Error),
    NotMbox(mbox::NotMbox),
}

/// Reads the start of a file and says whether it can be an mbox.
pub fn sniff_file(path: &Path) -> Result<(), Sniff> {
    let mut start = Vec::with_capacity(SNIFF);
    fs::File::open(path)
        .and_then(|f| f.take(SNIFF as u64).read_to_end(&mut start))
        .map_err(Sniff::Unreadable)?;
    mbox::sniff(&start).map_err(Sniff::NotMbox)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MBOX: &str = "From a Thu Aug 22 12:36:23 2002\nA: 1\n\nx\n";

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (rel, contents) in files {
            let p = dir.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, contents).unwrap();
        }
        dir
    }

    fn folders(jobs: &[Job], root: &Path) -> Vec<(String, String)> {
        jobs.iter()
            .map(|j| {
                let rel = j.path.strip_prefix(root).unwrap_or(&j.path);
                (rel.display().to_string(), j.folder.to_string())
            })
            .collect()
    }

    #[test]
    fn layouts_map_to_folders() {
        let dir = tree(&[
            // Thunderbird
            ("tb/Inbox", MBOX),
            ("tb/Inbox.msf", "// <!-- <mdb:mork:z v=\"1.4\"/> -->"),
            ("tb/Archives", MBOX),
            ("tb/Archives.sbd/2019", MBOX),
            ("tb/Archives.sbd/2019.msf", ""),
            ("tb/Trash", ""),
            ("tb/msgFilterRules.dat", "version=\"9\""),
            ("tb/popstate.dat", "# POP3 State File"),
            // mutt
            ("mutt/sent-mail", MBOX),
            ("mutt/lists.rust", MBOX),
            ("mutt/lists/dovecot", MBOX),
            ("mutt/.mutt_cache", "x"),
            ("mutt/notes.txt", "just some notes\n"),
            ("mutt/maildir/cur/x", ""),
            ("mutt/maildir/new/x", ""),
            ("mutt/maildir/tmp/x", ""),
            // Apple Mail export
            ("apple/Work.mbox/mbox", MBOX),
            ("apple/Work.mbox/Info.plist", "<plist/>"),
            ("apple/Work.mbox/table_of_contents", "\0\0"),
            ("apple/Work.mbox/Old.mbox/mbox", MBOX),
        ]);
        let root = dir.path();
        let mut problems = Vec::new();
        let jobs = plan(&[root.join("tb")], None, &mut problems).unwrap();
        assert_eq!(
            folders(&jobs, &root.join("tb")),
            vec![
                ("Archives".into(), "Archives".into()),
                ("Archives.sbd/2019".into(), "Archives/2019".into()),
                ("Inbox".into(), "INBOX".into()),
                ("Trash".into(), "Trash".into()),
            ]
        );
        assert!(problems.is_empty(), "{problems:?}");

        let jobs = plan(
            &[root.join("mutt")],
            Some(&MailboxName::new("Old").unwrap()),
            &mut problems,
        )
        .unwrap();
        assert_eq!(
            folders(&jobs, &root.join("mutt")),
            vec![
                ("lists/dovecot".into(), "Old/lists/dovecot".into()),
                ("lists.rust".into(), "Old/lists_rust".into()),
                ("sent-mail".into(), "Old/sent-mail".into()),
            ]
        );
        let notes: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("maildir: a Maildir already"), "{notes:?}");
        assert!(
            notes[1].contains("notes.txt: not an mbox (its first line is not a `From ` line"),
            "{notes:?}"
        );
        assert!(problems.iter().all(|p| !p.error));

        problems.clear();
        let jobs = plan(&[root.join("apple")], None, &mut problems).unwrap();
        assert_eq!(
            folders(&jobs, &root.join("apple")),
            vec![
                ("Work.mbox/mbox".into(), "Work".into()),
                ("Work.mbox/Old.mbox/mbox".into(), "Work/Old".into()),
            ]
        );
        let jobs = plan(&[root.join("apple/Work.mbox")], None, &mut problems).unwrap();
        assert_eq!(
            folders(&jobs, &root.join("apple/Work.mbox")),
            vec![
                ("mbox".into(), "Work".into()),
                ("Old.mbox/mbox".into(), "Work/Old".into())
            ]
        );
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn single_files_go_to_their_name_inbox_or_the_prefix() {
        let dir = tree(&[("inbox", MBOX), ("Takeout.mbox", MBOX), ("sent", MBOX)]);
        let mut problems = Vec::new();
        let files: Vec<PathBuf> = ["inbox", "Takeout.mbox", "sent"]
            .iter()
            .map(|f| dir.path().join(f))
            .collect();
        let jobs = plan(&files, None, &mut problems).unwrap();
        let names: Vec<String> = jobs.iter().map(|j| j.folder.to_string()).collect();
        assert_eq!(names, vec!["INBOX", "Takeout", "sent"]);
        let prefix = MailboxName::new("Archive/2019").unwrap();
        let jobs = plan(&files[2..], Some(&prefix), &mut problems).unwrap();
        assert_eq!(jobs[0].folder.to_string(), "Archive/2019");
        // `-` is standard input, read once however often it is named.
        let dash = [PathBuf::from("-"), files[2].clone(), PathBuf::from("-")];
        let jobs = plan(&dash, Some(&prefix), &mut problems).unwrap();
        let paths: Vec<&Path> = jobs.iter().map(|j| j.path.as_path()).collect();
        assert_eq!(paths, [Path::new("/dev/stdin"), &files[2]]);
        assert_eq!(jobs[0].folder.to_string(), "Archive/2019");
        assert_eq!(
            plan(&dash[..1], None, &mut problems).unwrap()[0]
                .folder
                .to_string(),
            "INBOX"
        );
        let err = plan(&[dir.path().join("missing")], None, &mut problems).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        assert!(problems.is_empty());
    }

    #[test]
    fn file_names_become_valid_folder_levels() {
        for (raw, level_) in [
            ("a.b", "a_b"),
            ("x*y%z", "x_y_z"),
            ("tab\there", "tab_here"),
            ("Entwürfe", "Entwürfe"),
            ("  ", "_"),
        ] {
            assert_eq!(level(raw), level_);
            MailboxName::new(&level(raw)).unwrap();
        }
        assert_eq!(strip_mbox(OsStr::new("All mail.mbox")), "All mail");
        assert_eq!(strip_mbox(OsStr::new(".mbox")), "_mbox");
        assert_eq!(strip_mbox(OsStr::new("x.MBOX")), "x");
    }
}
