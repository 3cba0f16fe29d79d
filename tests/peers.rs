//! `deliver` and `user` driven the way people run them: from procmail, and
//! at a terminal. Real programs, real pseudo-terminals.

mod support;
use std::process::Command;

use support::*;

#[test]
fn procmail_pipes_into_deliver() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("Maildir");
    let rc = dir.path().join("procmailrc");
    let bin = env!("CARGO_BIN_EXE_ownmail");
    std::fs::write(
        &rc,
        format!(
            "SHELL=/bin/sh\nMAILDIR={d}\nLOGFILE={d}/procmail.log\n\n:0 w\n* ^List-Id:.*rust\n| {bin} deliver --maildir {md} --folder Lists/rust --create\n\n:0 w\n| {bin} deliver --maildir {md}\n",
            d = dir.path().display(),
            md = md.display()
        ),
    )
    .unwrap();
    let procmail = |msg: &[u8]| {
        let out = run(
            Command::new("procmail")
                .arg("-m")
                .arg(&rc)
                .env("SENDER", "bob@example.net"),
            msg,
        );
        assert!(
            out.status.success(),
            "procmail (Debian package procmail) failed: {out:?}"
        );
    };
    procmail(b"From bob@example.net Mon Jan  1 00:00:00 2024\nList-Id: <rust.example>\nSubject: list\n\nhi\n");
    procmail(b"From bob@example.net Mon Jan  1 00:00:00 2024\nSubject: personal\n\nhi\n");
    let list = messages(&md.join(".Lists.rust"));
    let inbox = messages(&md);
    assert_eq!((list.len(), inbox.len()), (1, 1));
    let stored = std::fs::read_to_string(&list[0]).unwrap();
    assert!(
        stored.starts_with("Return-Path: <bob@example.net>\nDelivered-To: "),
        "{stored}"
    );
    // procmail ends every message it pipes with an empty line (mbox habit).
    assert!(stored.ends_with("Subject: list\n\nhi\n\n"), "{stored}");
}

/// Runs `ownmail ARGS` on a pseudo-terminal (util-linux `script`), typing `keys`.
fn on_a_terminal(s: &Scratch, args: &str, keys: &[u8]) -> std::process::Output {
    let line = format!(
        "{} --config {} {args}",
        env!("CARGO_BIN_EXE_ownmail"),
        s.config().display()
    );
    run(
        Command::new("script").args(["-qec", &line, "/dev/null"]),
        keys,
    )
}

#[test]
fn passwords_are_asked_twice_at_a_terminal() {
    let s = Scratch::new();
    let out = on_a_terminal(&s, "user add carol", b"hunter2\nhunter2\n");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("New password for carol:") && screen.contains("Again:"),
        "{screen}"
    );
    let users = ownmail::auth::Users::load(&s.dir.path().join("data/passwd")).unwrap();
    assert!(users.verify("carol", &ownmail::auth::Secret::new("hunter2".into())));

    let out = on_a_terminal(&s, "user passwd carol", b"one\ntwo\n");
    assert!(String::from_utf8_lossy(&out.stdout).contains("differ"));
    let users = ownmail::auth::Users::load(&s.dir.path().join("data/passwd")).unwrap();
    assert!(
        users.verify("carol", &ownmail::auth::Secret::new("hunter2".into())),
        "unchanged after a mismatch"
    );
}
