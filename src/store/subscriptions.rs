//! Folder subscriptions (RFC 3501 6.3.6-6.3.9) in the `subscriptions` file
//! at the root of the Maildir, as Dovecot keeps it (its
//! `lib-storage/list/subscription-file.c`):
//!
//! - version 1 (what Dovecot writes when there is no file yet): one name per
//!   line, in modified UTF-7, its levels separated by `.` as in Maildir++
//!   directory names (`Lists.rust` is `Lists/rust`; a `/` is read as a
//!   separator too);
//! - version 2: the header `V\t2\n\n`, then one name per line with its
//!   levels separated by a tab and each level tab-escaped (`\x01` + `1`,
//!   `t`, `r`, `n` for `\x01`, tab, CR, LF).
//!
//! A change is written the way Dovecot writes it: under the dotlock
//! `subscriptions.lock`, the whole new file into the lock, fsynced, renamed
//! over the old one, and the directory fsynced. A file in version 2 stays in
//! version 2. Names are kept as written, even of folders that do not exist
//! (RFC 3501 6.3.6 allows subscribing to them).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::MailboxName;
use super::dotlock::DotLock;
use super::name::{decode_mutf7, encode_mutf7};

/// The file name, in the Maildir root.
pub const FILE_NAME: &str = "subscriptions";
/// Dovecot's version 2 header.
const V2_HEADER: &str = "V\t2\n\n";
/// Dovecot waits this long for the lock (SUBSCRIPTION_FILE_LOCK_TIMEOUT).
const LOCK_TIMEOUT: Duration = Duration::from_secs(120);
/// A bigger file is refused rather than read into memory.
pub const MAX_FILE: u64 = 4 << 20;

fn path(root: &Path) -> PathBuf {
    root.join(FILE_NAME)
}

/// The parsed file: its version and its lines as names (`/`-separated
/// UTF-8); lines that are not a valid name are kept as they were.
#[derive(Debug, Default)]
struct File {
    v2: bool,
    /// (decoded name if valid, raw line)
    lines: Vec<(Option<String>, String)>,
}

fn tab_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x01' {
            match chars.next() {
                Some('1') => out.push('\x01'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn parse(text: &str) -> File {
    let (v2, body) = match text.strip_prefix(V2_HEADER) {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let lines = body
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let wire = if v2 {
                line.split('\t')
                    .map(tab_unescape)
                    .collect::<Vec<_>>()
                    .join("/")
            } else {
                line.replace('.', "/")
            };
            let name = decode_mutf7(&wire)
                .and_then(|n| MailboxName::new(&n).ok())
                .map(|n| n.as_str().to_owned());
            (name, line.to_owned())
        })
        .collect();
    File { v2, lines }
}

fn read_file(root: &Path) -> io::Result<File> {
    let p = path(root);
    match fs::metadata(&p) {
        Ok(m) if m.len() > MAX_FILE => {
            return Err(io::Error::other(format!(
                "{} is larger than {MAX_FILE} bytes",
                p.display()
            )));
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(File::default()),
        Err(e) => return Err(e),
    }
    match fs::read(&p) {
        Ok(bytes) => Ok(parse(&String::from_utf8_lossy(&bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(File::default()),
        Err(e) => Err(e),
    }
}

/// The subscribed folders of the Maildir at `root`, in file order, without
/// duplicates. No file means none.
pub fn read(root: &Path) -> io::Result<Vec<MailboxName>> {
    let mut out: Vec<MailboxName> = Vec::new();
    for (name, _) in read_file(root)?.lines {
        if let Some(n) = name.and_then(|n| MailboxName::new(&n).ok())
            && !out.contains(&n)
        {
            out.push(n);
        }
    }
    Ok(out)
}

/// How `name` is written as a line of a file of this version.
fn line_for(name: &MailboxName, v2: bool) -> String {
    let wire = encode_mutf7(name.as_str());
    if v2 {
        // MailboxName refuses control characters: nothing needs escaping.
        wire.replace('/', "\t")
    } else {
        // MailboxName refuses '.': the levels come back as they were.
        wire.replace('/', ".")
    }
}

/// Subscribes (`on`) or unsubscribes `name`. Returns whether the file
/// changed; an unchanged file is not rewritten.
pub fn set(root: &Path, name: &MailboxName, on: bool) -> io::Result<bool> {
    let p = path(root);
    let lock = DotLock::acquire(&p, LOCK_TIMEOUT)?;
    let file = read_file(root)?;
    let mut text = String::new();
    if file.v2 {
        text.push_str(V2_HEADER);
    }
    let mut found = false;
    let mut changed = false;
    for (parsed, raw) in &file.lines {
        if parsed.as_deref() == Some(name.as_str()) {
            if !on || found {
                changed = true;
                continue;
            }
            found = true;
        }
        text.push_str(raw);
        text.push('\n');
    }
    if on && !found {
        text.push_str(&line_for(name, file.v2));
        text.push('\n');
        changed = true;
    }
    if changed {
        lock.replace(text.as_bytes())?;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> MailboxName {
        MailboxName::new(s).unwrap()
    }

    #[test]
    fn a_new_file_is_version_1_and_keeps_order() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_empty());
        assert!(set(dir.path(), &name("INBOX"), true).unwrap());
        assert!(set(dir.path(), &name("Lists/rust"), true).unwrap());
        assert!(set(dir.path(), &name("Entwürfe"), true).unwrap());
        assert!(!set(dir.path(), &name("inbox"), true).unwrap());
        let text = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(text, "INBOX\nLists.rust\nEntw&APw-rfe\n");
        assert!(!dir.path().join("subscriptions.lock").exists());
        assert!(set(dir.path(), &name("Lists/rust"), false).unwrap());
        assert!(!set(dir.path(), &name("Lists/rust"), false).unwrap());
        assert_eq!(
            read(dir.path()).unwrap(),
            vec![name("INBOX"), name("Entwürfe")]
        );
    }

    #[test]
    fn version_2_is_read_and_stays_version_2() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE_NAME);
        fs::write(&p, "V\t2\n\nINBOX\nLists\trust\nodd\x01tname\n").unwrap();
        assert_eq!(
            read(dir.path()).unwrap(),
            vec![name("INBOX"), name("Lists/rust")]
        );
        assert!(set(dir.path(), &name("A/B"), true).unwrap());
        assert!(set(dir.path(), &name("INBOX"), false).unwrap());
        let text = fs::read_to_string(&p).unwrap();
        // The line we cannot name is kept as it was.
        assert_eq!(text, "V\t2\n\nLists\trust\nodd\x01tname\nA\tB\n");
    }

    #[test]
    fn damaged_lines_and_duplicates_are_tolerated() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE_NAME);
        fs::write(&p, b"Sent\n\n*bad*\nSent\n&Jjo-\xff\nA/b\n").unwrap();
        assert_eq!(read(dir.path()).unwrap(), vec![name("Sent"), name("A/b")]);
        assert!(set(dir.path(), &name("Sent"), false).unwrap());
        assert_eq!(read(dir.path()).unwrap(), vec![name("A/b")]);
    }
}
