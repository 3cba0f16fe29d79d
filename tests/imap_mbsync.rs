//! Issue 4: mbsync (isync) syncs the whole 6,046-message corpus down from
//! `ownmail serve-imap --stdio --preauth` (its `Tunnel`, as over ssh) into a
//! local Maildir, and a local folder up; a second run finds nothing to do:
//! neither side changes by a single file name or UID.
//!
//! The peer is real and must be installed (a missing one fails the test):
//! mbsync (Debian: isync). Nothing leaves this machine.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use ownmail::store::uidlist;
use ownmail::store::{Durability, Flags, MailboxName, Maildir};
use support::{Scratch, corpus_files};

const UPLOADS: usize = 25;

fn fill(md: &Maildir, folder: &str, files: &[std::path::PathBuf]) {
    let f = md
        .folder_or_create(&MailboxName::new(folder).unwrap())
        .unwrap();
    for (i, path) in files.iter().enumerate() {
        let mut m = f.create_tmp().unwrap();
        m.write_all(&std::fs::read(path).unwrap()).unwrap();
        let flags = if i % 3 == 0 {
            Flags::from_info("S")
        } else {
            Flags::EMPTY
        };
        m.commit(&flags, false, Durability::Deferred).unwrap();
    }
    f.sync().unwrap();
}

/// Every folder's files (names) on the local side.
fn local_state(root: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for entry in walk(root) {
        if entry.ends_with("cur") || entry.ends_with("new") {
            let mut names: Vec<String> = std::fs::read_dir(&entry)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            out.insert(
                entry.strip_prefix(root).unwrap().display().to_string(),
                names,
            );
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.push(p.clone());
            out.extend(walk(&p));
        }
    }
    out
}

/// (UID, base name, flags).
type ServerMessage = (u32, String, String);

/// Every server folder's UIDVALIDITY and (UID, base name, flags): what a
/// client can tell apart (a move from new/ to cur/ is not a change).
fn server_state(md: &Maildir) -> BTreeMap<String, (u32, Vec<ServerMessage>)> {
    let mut names = vec![MailboxName::inbox()];
    names.extend(md.list_folders().unwrap());
    names
        .into_iter()
        .map(|n| {
            let snap = uidlist::sync(&md.folder_path(&n)).unwrap();
            let msgs = snap
                .messages
                .into_iter()
                .map(|m| (m.uid, m.base().to_owned(), m.flags.to_string()))
                .collect();
            (n.to_string(), (snap.uid_validity, msgs))
        })
        .collect()
}

fn mbsync(config: &Path) -> String {
    let out = Command::new("mbsync")
        .arg("-c")
        .arg(config)
        .arg("-a")
        .output()
        .unwrap_or_else(|e| panic!("mbsync: {e}: install the Debian package isync"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mbsync failed: {text}");
    text
}

#[test]
fn mbsync_syncs_the_corpus_down_and_a_folder_up_then_finds_nothing_to_do() {
    let scratch = Scratch::new();
    scratch.add_user("alice", "unused");
    let md = Maildir::open(scratch.maildir("alice")).unwrap();
    let corpus = corpus_files();
    fill(&md, "INBOX", &corpus);

    let local = scratch.dir.path().join("local");
    let local_md = Maildir::create(local.join("Uploads")).unwrap();
    let uploads: Vec<_> = corpus.iter().rev().take(UPLOADS).cloned().collect();
    for path in &uploads {
        let f = local_md.folder(&MailboxName::inbox()).unwrap();
        let mut m = f.create_tmp().unwrap();
        m.write_all(&std::fs::read(path).unwrap()).unwrap();
        m.commit(&Flags::EMPTY, true, Durability::Deferred).unwrap();
    }
    let config = scratch.dir.path().join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "# The test checks the files, not their durability.\nFSync no\n\n\
             IMAPAccount ours\n\
             Tunnel \"{bin} --config {cfg} serve-imap --stdio --preauth --user alice\"\n\n\
             IMAPStore remote\nAccount ours\n\n\
             MaildirStore local\nPath {local}/\nInbox {local}/INBOX\nSubFolders Verbatim\n\n\
             Channel all\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nSyncState *\n",
            bin = env!("CARGO_BIN_EXE_ownmail"),
            cfg = scratch.config().display(),
            local = local.display()
        ),
    )
    .unwrap();

    mbsync(&config);
    let local_first = local_state(&local);
    let server_first = server_state(&md);
    // Down: every corpus message, with \Seen where it was set.
    let inbox: usize = ["INBOX/cur", "INBOX/new"]
        .iter()
        .map(|k| local_first.get(*k).map_or(0, Vec::len))
        .sum();
    assert_eq!(inbox, corpus.len());
    let seen_local = local_first["INBOX/cur"]
        .iter()
        .filter(|n| n.rsplit_once(":2,").is_some_and(|(_, f)| f.contains('S')))
        .count();
    assert_eq!(seen_local, corpus.len().div_ceil(3));
    // Up: the local folder exists on the server with every message, byte for byte.
    let (_, up) = &server_first["Uploads"];
    assert_eq!(up.len(), UPLOADS);
    let uploaded = md.folder(&MailboxName::new("Uploads").unwrap()).unwrap();
    let mut got: Vec<Vec<u8>> = support::messages(uploaded.path())
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).unwrap();
            // mbsync adds its X-TUID: header to what it uploads.
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let i = text.find("X-TUID: ").expect("mbsync's X-TUID header");
            let end = text[i..].find('\n').unwrap() + i + 1;
            let mut out = bytes[..i].to_vec();
            out.extend_from_slice(&bytes[end..]);
            out
        })
        .collect();
    let mut want: Vec<Vec<u8>> = uploads
        .iter()
        .map(|p| {
            let raw = std::fs::read(p).unwrap();
            // APPEND stores LF line ends, as deliver does.
            let mut out = Vec::new();
            ownmail::message::header::copy_crlf_to_lf(&mut &raw[..], &mut out).unwrap();
            out
        })
        .collect();
    got.sort();
    want.sort();
    assert!(got == want, "uploaded messages differ from the local ones");

    // Twice: nothing changes on either side.
    mbsync(&config);
    same(&local_state(&local), &local_first, "the local side");
    same(&server_state(&md), &server_first, "the server");
}

/// Equal maps, or a failure naming the first differences (not the whole
/// 6,046-message state).
fn same<V: PartialEq + std::fmt::Debug>(
    after: &BTreeMap<String, V>,
    before: &BTreeMap<String, V>,
    what: &str,
) {
    let diffs: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .take(3)
        .map(|k| {
            let show = |v: Option<&V>| {
                let t = format!("{v:?}");
                t.chars().take(600).collect::<String>()
            };
            format!(
                "{k}: before {}\n   after {}",
                show(before.get(k)),
                show(after.get(k))
            )
        })
        .collect();
    assert!(
        diffs.is_empty(),
        "the second run changed {what}:\n{}",
        diffs.join("\n")
    );
}
