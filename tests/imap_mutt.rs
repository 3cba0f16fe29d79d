//! Issue 4, real clients: mutt reads a message over `serve-imap --stdio
//! --preauth` (its `tunnel`, as over ssh) and moves it into another folder;
//! the Maildir afterwards is checked file by file.
//!
//! mutt runs on a pseudo-terminal made by `script` (tmux cannot start its
//! server in every sandbox), driven by `push`ed functions: display the
//! first message, pipe it to a file, save it to `=Archive` (created on the
//! way), sync (expunge) and quit.
//!
//! The peers are real and must be installed (a missing one fails the test):
//! mutt (Debian: mutt) and script (Debian: bsdutils).

mod support;

use std::process::{Command, Stdio};

use support::Scratch;

#[test]
fn mutt_reads_a_message_and_moves_it_to_another_folder() {
    let scratch = Scratch::new();
    std::fs::write(
        scratch.config(),
        "hostname: mail.example.org\ndomains: [example.org]\ndata_dir: data\n",
    )
    .unwrap();
    scratch.add_user("alice", "mutt-secret");
    for i in 0..3 {
        let msg = format!(
            "From: s{i}@example.org\nSubject: hello {i}\nDate: Mon, {} Jan 2024 10:00:00 +0000\n\nbody {i} zebra\n",
            i + 1
        );
        let out = support::run(
            scratch.cmd().args(["deliver", "--user", "alice"]),
            msg.as_bytes(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = scratch.dir.path();
    let read = dir.join("read.eml");
    let tunnel = format!(
        "{} --config {} serve-imap --stdio --preauth --user alice",
        env!("CARGO_BIN_EXE_ownmail"),
        scratch.config().display()
    );
    let muttrc = dir.join("muttrc");
    std::fs::write(
        &muttrc,
        format!(
            r#"set tunnel="{tunnel}"
set folder="imap://alice@localhost/"
set spoolfile="+INBOX"
set record=""
set postponed=""
set header_cache=""
set message_cachedir=""
set confirmappend=no
set confirmcreate=no
set delete=yes
set quit=yes
set move=no
set wait_key=no
set pipe_decode=no
set sort=date-sent
set timeout=600
set charset="utf-8"
push "<display-message><exit><pipe-message>cat > {read}<enter><save-message><kill-line>=Archive<enter><sync-mailbox><quit>"
"#,
            read = read.display()
        ),
    )
    .unwrap();
    let mutt = format!("mutt -n -F {}", muttrc.display());
    let out = Command::new("timeout")
        .args(["60", "script", "-qec", &mutt, "/dev/null"])
        .env("TERM", "xterm")
        .env("HOME", dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("script: {e}: install the Debian package bsdutils"));
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "mutt failed ({}): install the Debian package mutt\n{screen}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(screen.contains("Mutt: =INBOX"), "{screen}");

    // What mutt read is the first message, whole.
    let got = std::fs::read_to_string(&read).unwrap();
    assert!(got.contains("Subject: hello 0\n"), "{got:?}");
    assert!(got.ends_with("\nbody 0 zebra\n"), "{got:?}");

    // The message moved: once in Archive, read (\Seen), and gone from INBOX.
    let md = scratch.maildir("alice");
    let archive = support::messages(&md.join(".Archive"));
    assert_eq!(archive.len(), 1, "{archive:?}");
    let name = archive[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(name.ends_with(":2,S"), "{name}");
    let moved = std::fs::read_to_string(&archive[0]).unwrap();
    assert!(moved.contains("Subject: hello 0\n"), "{moved}");
    assert!(moved.ends_with("\nbody 0 zebra\n"), "{moved:?}");
    let inbox = support::messages(&md);
    let mut subjects: Vec<String> = inbox
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.lines()
                .find(|l| l.starts_with("Subject: "))
                .unwrap()
                .to_owned()
        })
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["Subject: hello 1", "Subject: hello 2"]);
    // The others were neither read nor flagged.
    for p in &inbox {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains(":2,S"), "{name}");
    }
}
