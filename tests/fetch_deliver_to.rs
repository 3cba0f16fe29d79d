//! Every `deliver_to` kind, fetching from Dovecot's POP3: a user of ours,
//! a Maildir, an MDA (`ownmail deliver`, and scripts that fail), and SMTP.
//!
//! The SMTP kind is tested twice: into `ownmail serve-smtp`, and against a
//! small SMTP sink that the test writes and starts on loopback (Python's
//! standard library only: socket), which records each message as it
//! arrived in DATA, dot-unstuffed, and can answer 451 or 554 instead of 250.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::fetch::*;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Messages that exercise the edges: dots at line starts, CRLF, no last
/// line end, 8-bit bytes, a Return-Path.
fn edge_messages() -> Vec<Vec<u8>> {
    vec![
        b"Return-Path: <bob@example.net>\nMessage-ID: <1@x>\nSubject: dots\n\n.\n..\n.leading\nend\n".to_vec(),
        b"Subject: crlf\r\n\r\nline\r\n".to_vec(),
        b"Subject: no last line end\n\nbody".to_vec(),
        b"Subject: 8bit \xe9\n\n\xff\xfe bytes\n".to_vec(),
    ]
}

fn pop3_account(server: &Server, local: &Local, extra: &str) -> String {
    let pw = local.password_file(PASSWORD);
    account(
        "isp",
        "pop3",
        server.dovecot.pop3_port(),
        "none",
        &format!("password_file: {}\n{extra}", pw.display()),
    )
}

fn to_crlf(lf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lf.len() + lf.len() / 16);
    for (i, &b) in lf.iter().enumerate() {
        if b == b'\n' && (i == 0 || lf[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

#[test]
fn user_and_maildir_targets_with_folders() {
    let mut server = ServerSetup::new().start();
    let msgs = edge_messages();
    server.add(None, &msgs);
    let local = Local::new();
    std::fs::write(
        local.config(),
        "hostname: mail.example.org\ndomains: [example.org]\ndata_dir: data\n",
    )
    .unwrap();
    let add = support::run(
        local
            .cmd()
            .args(["user", "add", "alice", "--password-stdin"]),
        b"pw\n",
    );
    assert!(add.status.success(), "{}", show(&add));

    // A user who does not exist: a clear error, nothing fetched.
    local.write(&pop3_account(&server, &local, "deliver_to: {user: bob}"));
    let out = local.fetch(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("deliver_to: user bob is not in ")
            && stderr(&out).contains("ownmail user add bob"),
        "{}",
        show(&out)
    );
    assert_eq!(server.held(None).len(), msgs.len());

    local.write(&pop3_account(
        &server,
        &local,
        "keep: true\ndeliver_to: {user: alice, folder: Old/ISP}",
    ));
    let out = local.fetch(&["-q"]);
    assert!(
        stdout(&out).starts_with("isp: 4 messages fetched"),
        "{}",
        show(&out)
    );
    let folder = local.dir.path().join("data/mail/alice/.Old.ISP");
    let expected: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| {
            let mut e = b"Delivered-To: alice@example.org\n".to_vec();
            e.extend(via_pop3(m));
            e
        })
        .collect();
    assert_same_messages(&stored(&folder), &expected, "user target");

    local.write(&pop3_account(
        &server,
        &local,
        "keep: true\ndeliver_to: {maildir: ../elsewhere/Maildir, folder: Lists}",
    ));
    let out = local.fetch(&["-q", "--all"]);
    assert!(
        stdout(&out).starts_with("isp: 4 messages fetched"),
        "{}",
        show(&out)
    );
    let folder = local
        .dir
        .path()
        .parent()
        .unwrap()
        .join("elsewhere/Maildir/.Lists");
    let raw: Vec<Vec<u8>> = msgs.iter().map(|m| via_pop3(m)).collect();
    assert_same_messages(&stored(&folder), &raw, "maildir target");
    std::fs::remove_dir_all(local.dir.path().parent().unwrap().join("elsewhere")).unwrap();

    // The ISP's own Delivered-To: for the same address (a domain that moved
    // home) is no loop through this system: delivered, and kept as it came.
    let isp: &[u8] = b"Delivered-To: alice@example.org\r\nSubject: moved\r\n\r\nhi\r\n";
    server.add(None, &[isp.to_vec()]);
    local.write(&pop3_account(
        &server,
        &local,
        "keep: true\ndeliver_to: {user: alice, folder: Old/ISP}",
    ));
    let out = local.fetch(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).starts_with("isp: 1 message fetched") && stderr(&out).is_empty(),
        "{}",
        show(&out)
    );
    let mut want = expected.clone();
    want.push(
        b"Delivered-To: alice@example.org\nDelivered-To: alice@example.org\nSubject: moved\n\nhi\n"
            .to_vec(),
    );
    let folder = local.dir.path().join("data/mail/alice/.Old.ISP");
    assert_same_messages(&stored(&folder), &want, "the ISP's Delivered-To");
}

#[test]
fn an_mda_delivers_and_its_failures_are_temporary_or_permanent() {
    let mut server = ServerSetup::new().start();
    let msgs = edge_messages();
    server.add(None, &msgs);
    let local = Local::new();
    let bin = env!("CARGO_BIN_EXE_ownmail");
    let md = local.maildir("Maildir");

    // Exit 75: everything stays on the server, exit 75, said once.
    local.write(&pop3_account(
        &server,
        &local,
        "deliver_to: {mda: \"cat >/dev/null; echo no space >&2; exit 75\"}",
    ));
    let out = local.fetch(&[]);
    assert_eq!(out.status.code(), Some(75), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("ownmail fetch: isp: delivery failed: message 1 (UIDL ")
            && err.contains("exited 75 (try again later): no space")
            && err.trim_end().ends_with("will try again on the next run")
            && err.lines().count() == 1,
        "{err}"
    );
    assert_eq!(server.held(None).len(), 4);

    // A permanent refusal of one message: reported, left on the server,
    // the others delivered; exit 1.
    let script = local.dir.path().join("mda.sh");
    refuse_the_crlf_message(&script, &md, 65, "refused");
    local.write(&pop3_account(
        &server,
        &local,
        &format!("deliver_to: {{mda: \"sh {}\"}}", script.display()),
    ));
    let out = local.fetch(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stdout(&out).starts_with("isp: 3 messages fetched"),
        "{}",
        show(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("delivery refused: the MDA")
            && err.contains("exited 65: refused; left on the server (set delete_rejected: true"),
        "{err}"
    );
    assert_eq!(server.held(None).len(), 1);
    assert_eq!(stored(&md).len(), 3);
    // Tried again next time, and with delete_rejected: gone, still reported.
    local.write(&pop3_account(
        &server,
        &local,
        &format!(
            "delete_rejected: true\ndeliver_to: {{mda: \"sh {}\"}}",
            script.display()
        ),
    ));
    let out = local.fetch(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("deleted from the server (delete_rejected: true)"),
        "{}",
        show(&out)
    );
    assert!(server.held(None).is_empty());

    // A fault of ours is never the message's, delete_rejected or not: an
    // MDA that is not found (sh exits 127) leaves everything on the server.
    server.add(None, &msgs);
    local.write(&pop3_account(
        &server,
        &local,
        "delete_rejected: true\ndeliver_to: {mda: \"/usr/bin/procmial -d alice\"}",
    ));
    let out = local.fetch(&[]);
    assert_eq!(out.status.code(), Some(75), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("exited 127 (the command was not found)")
            && err.contains("will try again on the next run")
            && !err.contains("deleted"),
        "{err}"
    );
    assert_eq!(server.held(None).len(), 4);

    // ownmail deliver as the MDA, straight: what it stores.
    let md2 = local.maildir("Maildir2");
    local.write(&pop3_account(
        &server,
        &local,
        &format!(
            "deliver_to: {{mda: \"{bin} deliver --maildir {} --recipient alice@example.org\"}}",
            md2.display()
        ),
    ));
    let out = local.fetch(&["-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let expected: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| {
            // deliver takes the Return-Path it finds as the sender and
            // writes it back on top.
            let lf = via_pop3(m);
            let mut e = Vec::new();
            if let Some(rest) = lf.strip_prefix(b"Return-Path: <bob@example.net>\n".as_slice()) {
                e.extend_from_slice(
                    b"Delivered-To: alice@example.org\nReturn-Path: <bob@example.net>\n",
                );
                e.extend_from_slice(rest);
            } else {
                e.extend_from_slice(b"Delivered-To: alice@example.org\n");
                e.extend_from_slice(&lf);
            }
            e
        })
        .collect();
    assert_same_messages(&stored(&md2), &expected, "ownmail deliver as the MDA");
    assert!(server.held(None).is_empty());

    // An MDA that fails one message with a code that may be its own fault
    // or the message's (exit 1, 67, 77): that one is reported and kept on
    // the server, delete_rejected or not, and the others are delivered.
    server.add(None, &msgs);
    let md3 = local.maildir("Maildir3");
    refuse_the_crlf_message(&script, &md3, 67, "no such user");
    local.write(&pop3_account(
        &server,
        &local,
        &format!(
            "delete_rejected: true\ndeliver_to: {{mda: \"sh {}\"}}",
            script.display()
        ),
    ));
    for run in 0..2 {
        let out = local.fetch(&[]);
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        let err = stderr(&out);
        assert!(
            err.contains(
                "exited 67: no such user; left on the server, tried again on the next run"
            ) && err.lines().count() == 1,
            "run {run}: {err}"
        );
        assert_eq!(server.held(None).len(), 1, "run {run}");
        assert_eq!(stored(&md3).len(), 3, "run {run}");
    }
}

/// Writes an MDA script that refuses the message whose subject is "crlf"
/// (saying `says`, exiting `code`) and delivers the others into `maildir`.
fn refuse_the_crlf_message(script: &Path, maildir: &Path, code: u8, says: &str) {
    let bin = env!("CARGO_BIN_EXE_ownmail");
    std::fs::write(
        script,
        format!(
            "#!/bin/sh\nmsg=$(cat)\ncase \"$msg\" in *'Subject: crlf'*) echo {says} >&2; exit {code};; esac\nprintf '%s\\n' \"$msg\" | {bin} deliver --maildir {} --recipient alice@example.org\n",
            maildir.display()
        ),
    )
    .unwrap();
}

/// The SMTP sink: writes each message to DIR/N.eml and its envelope to
/// DIR/N.env; MODE is ok, tempfail (451 after DATA) or permfail (554).
const SINK: &str = r#"
import os, socket, sys
port_file, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(8)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
n = 0
while True:
    conn, _ = srv.accept()
    f = conn.makefile("rwb")
    def reply(s):
        f.write(s.encode() + b"\r\n")
        f.flush()
    reply("220 sink ESMTP")
    env = []
    while True:
        line = f.readline()
        if not line:
            break
        cmd = line.strip().upper()
        if cmd.startswith(b"EHLO"):
            f.write(b"250-sink\r\n250 8BITMIME\r\n"); f.flush()
        elif cmd.startswith(b"HELO") or cmd in (b"RSET", b"NOOP"):
            reply("250 ok")
        elif cmd.startswith(b"MAIL") or cmd.startswith(b"RCPT"):
            env.append(line.strip().decode("latin-1")); reply("250 ok")
        elif cmd == b"DATA":
            reply("354 go on")
            data = bytearray()
            while True:
                l = f.readline()
                if l == b".\r\n" or not l:
                    break
                if l.startswith(b".."):
                    l = l[1:]
                data += l
            if mode == "tempfail":
                reply("451 4.3.0 try again later")
            elif mode == "permfail":
                reply("554 5.7.1 no thanks")
            else:
                n += 1
                with open(os.path.join(out, "%d.eml" % n), "wb") as m:
                    m.write(data)
                with open(os.path.join(out, "%d.env" % n), "w") as m:
                    m.write("\n".join(env) + "\n")
                reply("250 2.0.0 queued")
            env = []
        elif cmd == b"QUIT":
            reply("221 bye")
            break
        else:
            reply("502 unknown")
    conn.close()
"#;

struct Sink {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Sink {
    fn start(dir: &Path, mode: &str) -> Sink {
        let out = dir.join(format!("sink-{mode}"));
        std::fs::create_dir_all(&out).unwrap();
        let script = dir.join("sink.py");
        std::fs::write(&script, SINK).unwrap();
        let port_file = out.join("port");
        let child = Command::new("python3")
            .arg(&script)
            .arg(&port_file)
            .arg(&out)
            .arg(mode)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 (Debian package python3) runs the SMTP sink");
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p.trim().parse().unwrap();
            }
            assert!(Instant::now() < deadline, "the SMTP sink did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Sink {
            child,
            port,
            dir: out,
        }
    }

    fn received(&self) -> Vec<(Vec<u8>, String)> {
        let mut n = 1;
        let mut got = Vec::new();
        while let Ok(m) = std::fs::read(self.dir.join(format!("{n}.eml"))) {
            let env = std::fs::read_to_string(self.dir.join(format!("{n}.env"))).unwrap();
            got.push((m, env));
            n += 1;
        }
        got
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn smtp_delivers_each_message_as_the_server_sent_it() {
    let mut server = ServerSetup::new().start();
    let msgs = edge_messages();
    server.add(None, &msgs);
    let local = Local::new();
    let block = |port: u16| {
        pop3_account(
            &server,
            &local,
            &format!("deliver_to: {{smtp: \"127.0.0.1:{port}\", recipient: alice@example.org}}"),
        )
    };

    // Nobody listening, then 451: temporary, everything stays.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    local.write(&block(closed_port));
    let out = local.fetch(&[]);
    assert_eq!(out.status.code(), Some(75), "{}", show(&out));
    let temp = Sink::start(local.dir.path(), "tempfail");
    local.write(&block(temp.port));
    let out = local.fetch(&[]);
    assert_eq!(out.status.code(), Some(75), "{}", show(&out));
    assert!(stderr(&out).contains("451"), "{}", show(&out));
    assert_eq!(server.held(None).len(), 4);

    // 554: refused for good, reported, left.
    let perm = Sink::start(local.dir.path(), "permfail");
    local.write(&block(perm.port));
    let out = local.fetch(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(
        stderr(&out)
            .matches("delivery refused: SMTP server")
            .count(),
        4,
        "{}",
        show(&out)
    );
    assert_eq!(server.held(None).len(), 4);

    // 250: delivered and deleted; the data is what the server sent (CRLF).
    let ok = Sink::start(local.dir.path(), "ok");
    local.write(&block(ok.port));
    let out = local.fetch(&["-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).starts_with("isp: 4 messages fetched"),
        "{}",
        show(&out)
    );
    assert!(server.held(None).is_empty());
    let got = ok.received();
    let data: Vec<Vec<u8>> = got.iter().map(|g| g.0.clone()).collect();
    let expected: Vec<Vec<u8>> = msgs.iter().map(|m| to_crlf(&via_pop3(m))).collect();
    assert_same_messages(&data, &expected, "SMTP data");
    for (m, env) in &got {
        assert!(env.contains("RCPT TO:<alice@example.org>"), "{env}");
        let sender = if m.starts_with(b"Return-Path: <bob@example.net>") {
            "MAIL FROM:<bob@example.net>"
        } else {
            "MAIL FROM:<>"
        };
        assert!(env.contains(sender), "{env}");
    }
}

/// `deliver_to: {smtp: ...}` into our own `serve-smtp`: what a user moving
/// off fetchmail + Postfix does. Each message lands in the recipient's
/// INBOX as the POP3 server held it, below the server's trace headers.
#[test]
fn smtp_into_ownmail_serve_smtp() {
    let mut server = ServerSetup::new().start();
    let msgs = edge_messages();
    server.add(None, &msgs);
    let smtpd = support::smtp::Server::start("", "");
    let local = Local::new();
    local.write(&pop3_account(
        &server,
        &local,
        &format!(
            "deliver_to: {{smtp: \"127.0.0.1:{}\", recipient: alice@example.org}}",
            smtpd.port
        ),
    ));
    let out = local.fetch(&["-q"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        show(&out),
        smtpd.log()
    );
    assert!(server.held(None).is_empty(), "deleted once delivered");
    // What the server adds on top: its own Return-Path (replacing the
    // message's), Delivered-To and Received. Below: the message, LF line
    // ends, a last line end added (SMTP DATA ends in CRLF).
    let trace = "Return-Path: <>\nDelivered-To: alice@example.org\nReceived: from mail.example.org ([127.0.0.1])\n\tby mx.example.org (ownmail) with ESMTP\n";
    let mut below = Vec::new();
    for m in stored(&smtpd.scratch.maildir("alice")) {
        let text = String::from_utf8_lossy(&m).into_owned();
        let sender = if text.starts_with("Return-Path: <bob@example.net>\n") {
            "<bob@example.net>"
        } else {
            "<>"
        };
        assert!(text.starts_with(&trace.replacen("<>", sender, 1)), "{text}");
        let end = text
            .find("\tfor <alice@example.org>; ")
            .expect("Received: ends");
        let end = end + text[end..].find('\n').unwrap() + 1;
        below.push(m[end..].to_vec());
    }
    let expected: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| {
            let mut e = crlf_to_lf(&via_pop3(m));
            if e.starts_with(b"Return-Path:") {
                let eol = e.iter().position(|&b| b == b'\n').unwrap();
                e.drain(..=eol);
            }
            if !e.ends_with(b"\n") {
                e.push(b'\n');
            }
            e
        })
        .collect();
    assert_same_messages(&below, &expected, "stored by serve-smtp");
}
