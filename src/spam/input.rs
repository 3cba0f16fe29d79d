//! Messages to train on: a Maildir (its `cur/` and `new/`), a folder of
//! message files, an mbox file (split at `From ` lines), or one message
//! file. Messages over [`super::MAX_SCAN_BYTES`] are skipped, as the
//! filter never scans them; an mbox is read as a stream, one message held
//! at a time.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::MAX_SCAN_BYTES;

/// Calls `each` with every message under `path`; returns how many there
/// were (skipped ones not counted).
pub fn for_each_message(path: &Path, each: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        let mut files = Vec::new();
        let (cur, new) = (path.join("cur"), path.join("new"));
        if cur.is_dir() || new.is_dir() {
            for d in [cur, new] {
                if d.is_dir() {
                    list_files(&d, &mut files)?;
                }
            }
        } else {
            list_files(path, &mut files)?;
        }
        files.sort();
        let mut n = 0;
        for f in files {
            n += for_each_in_file(&f, each)?;
        }
        Ok(n)
    } else {
        for_each_in_file(path, each)
    }
}

fn list_files(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        // Dot files (Maildir++ subfolders, editor droppings) and the
        // corpus's .json twins are not messages.
        let n = name.to_string_lossy();
        if n.starts_with('.') || n.ends_with(".json") {
            continue;
        }
        if entry.file_type()?.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// One file: an mbox when it starts with `From ` and has more than one
/// such line at the start of a line after a blank one, else one message.
fn for_each_in_file(path: &Path, each: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
    let file = File::open(path)?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut n = 0;
    let mut message: Vec<u8> = Vec::new();
    let mut too_big = false;
    let mut line = Vec::new();
    let mut prev_blank = true;
    let is_mbox = reader.fill_buf()?.starts_with(b"From ");
    loop {
        line.clear();
        let got = (&mut reader).take(64 * 1024).read_until(b'\n', &mut line)?;
        if got == 0 {
            break;
        }
        let is_from = is_mbox && prev_blank && line.starts_with(b"From ");
        if is_from && !message.is_empty() {
            if !too_big {
                each(&message);
                n += 1;
            }
            message.clear();
            too_big = false;
        }
        prev_blank = line == b"\n" || line == b"\r\n";
        if !too_big {
            if message.len() + line.len() > MAX_SCAN_BYTES {
                too_big = true;
                message.clear();
            } else {
                message.extend_from_slice(&line);
            }
        }
    }
    if !message.is_empty() && !too_big {
        each(&message);
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(path: &Path) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let n = for_each_message(path, &mut |m| out.push(m.to_vec())).unwrap();
        assert_eq!(n, out.len());
        out
    }

    #[test]
    fn maildirs_folders_mboxes_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("Maildir");
        for sub in ["cur", "new", "tmp", ".Junk/cur"] {
            std::fs::create_dir_all(md.join(sub)).unwrap();
        }
        std::fs::write(md.join("cur/1:2,S"), "Subject: a\n\nx\n").unwrap();
        std::fs::write(md.join("new/2"), "Subject: b\n\ny\n").unwrap();
        std::fs::write(md.join("tmp/3"), "Subject: half\n").unwrap();
        std::fs::write(md.join(".Junk/cur/4"), "Subject: junk\n").unwrap();
        assert_eq!(collect(&md).len(), 2);

        let mbox = dir.path().join("mbox");
        std::fs::write(&mbox, "From a@b Mon Jan  1 00:00:00 2024\nSubject: 1\n\nbody\nFrom here on\n>From x\n\nFrom c@d Mon Jan  1 00:00:00 2024\nSubject: 2\n\nz\n").unwrap();
        let m = collect(&mbox);
        assert_eq!(m.len(), 2);
        assert!(m[0].ends_with(b">From x\n\n") && m[1].starts_with(b"From c@d"));

        let one = dir.path().join("one.eml");
        std::fs::write(&one, "Subject: one\n\nFrom me\n").unwrap();
        assert_eq!(collect(&one).len(), 1);

        let folder = dir.path().join("corpus");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("00001.txt"), "From x\nSubject: 1\n\n").unwrap();
        std::fs::write(folder.join("00001.json"), "{}").unwrap();
        assert_eq!(collect(&folder).len(), 1);
        assert!(for_each_message(&dir.path().join("missing"), &mut |_| {}).is_err());
    }
}
