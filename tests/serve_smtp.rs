//! `ownmail serve-smtp` against real clients: swaks and Python's smtplib,
//! on loopback high ports. Delivery, STARTTLS, AUTH on the submission
//! ports, relay refusal, throttling, the connection limit, SIGTERM, inetd
//! mode, and sendmail + queue flush.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::smtp::*;

/// Loopback is not trusted here, so relaying needs AUTH.
const UNTRUSTED: &str = "  trusted_networks: [10.0.0.0/8]\n";

fn ok(out: &std::process::Output) -> String {
    let t = transcript(out);
    assert!(out.status.success(), "swaks failed:\n{t}");
    t
}

#[test]
fn mail_for_a_local_user_is_delivered_with_trace_fields() {
    let s = Server::start(UNTRUSTED, "aliases:\n  postmaster: bob\n");
    let t = ok(&s.swaks(
        s.port,
        &[
            "--from",
            "sender@example.net",
            "--to",
            "alice@example.org",
            "--pipeline",
        ],
    ));
    assert!(t.contains("250 2.0.0 OK id="), "{t}");
    // postmaster, by its alias, and several recipients in one transaction.
    ok(&s.swaks(
        s.port,
        &[
            "--from",
            "<>",
            "--to",
            "postmaster@example.org,alice@example.org",
        ],
    ));
    let alice = s.inbox("alice");
    assert_eq!(alice.len(), 2);
    let first = alice
        .iter()
        .find(|m| m.contains("sender@example.net"))
        .unwrap_or_else(|| panic!("{alice:?}"));
    assert!(first.starts_with("Return-Path: <sender@example.net>\nDelivered-To: alice@example.org\nReceived: from client.example ([127.0.0.1])\n\tby mx.example.org (ownmail) with ESMTP\n"), "{first}");
    assert!(!first.contains('\r'), "stored with LF line ends");
    let bounce_like = alice
        .iter()
        .find(|m| m.starts_with("Return-Path: <>"))
        .unwrap();
    assert!(
        !bounce_like.contains("\tfor <"),
        "no `for` with two recipients"
    );
    assert_eq!(s.inbox("bob").len(), 1, "postmaster went to bob");
}

#[test]
fn unknown_users_and_strangers_relaying_are_refused() {
    let s = Server::start(UNTRUSTED, "");
    let t = transcript(&s.swaks(
        s.port,
        &["--from", "a@example.net", "--to", "nobody@example.org"],
    ));
    assert!(t.contains("550 5.1.1"), "{t}");
    let t = transcript(&s.swaks(
        s.port,
        &["--from", "a@example.net", "--to", "victim@gmail.example"],
    ));
    assert!(t.contains("554 5.7.1 Relay access denied"), "{t}");
    for trick in [
        "user%victim.example@example.org",
        "\"user@victim.example\"@example.org",
        "@example.org:user@victim.example",
        "victim.example!user@example.org",
    ] {
        let t = transcript(&s.swaks(s.port, &["--from", "a@example.net", "--to", trick]));
        assert!(t.contains("550 5.7.1"), "{trick}: {t}");
    }
    let t = transcript(&s.swaks(
        s.port,
        &[
            "--from",
            "a@example.net",
            "--to",
            "user@victim.example@example.org",
        ],
    ));
    assert!(t.contains("501 5.1.3"), "{t}");
    assert!(
        std::fs::read_dir(s.scratch.dir.path().join("data/queue"))
            .unwrap()
            .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".json"))
    );
}

#[test]
fn starttls_on_port_25_is_recorded_in_received() {
    let s = Server::start(UNTRUSTED, "");
    let t = ok(&s.swaks(
        s.port,
        &[
            "--tls",
            "--from",
            "a@example.net",
            "--to",
            "alice@example.org",
        ],
    ));
    assert!(t.contains("220 2.0.0 Ready to start TLS"), "{t}");
    let m = &s.inbox("alice")[0];
    assert!(m.contains("with ESMTPS\n\t(using TLSv1."), "{m}");
    assert!(m.contains(" with cipher "), "{m}");
}

#[test]
fn submission_needs_tls_then_auth_and_checks_the_sender() {
    let s = Server::start(UNTRUSTED, "aliases:\n  info: [alice, bob]\n");
    // 587 without TLS: no AUTH before STARTTLS, no MAIL before AUTH.
    let t = transcript(&s.swaks(
        s.submission,
        &["--from", "alice@example.org", "--to", "x@remote.example"],
    ));
    assert!(t.contains("530 5.7.0 Must issue a STARTTLS"), "{t}");
    let t = transcript(&s.swaks(
        s.submission,
        &[
            "--tls",
            "--from",
            "alice@example.org",
            "--to",
            "x@remote.example",
        ],
    ));
    assert!(t.contains("530 5.7.0 Authentication required"), "{t}");
    let auth = [
        "--auth",
        "PLAIN",
        "--auth-user",
        "alice",
        "--auth-password",
        PASSWORD,
    ];
    let t = transcript(
        &s.swaks(
            s.submission,
            &[
                &[
                    "--tls",
                    "--from",
                    "bob@example.org",
                    "--to",
                    "x@remote.example",
                ][..],
                &auth,
            ]
            .concat(),
        ),
    );
    assert!(t.contains("553 5.7.1"), "{t}");
    let t = ok(&s.swaks(
        s.submission,
        &[
            &[
                "--tls",
                "--from",
                "info@example.org",
                "--to",
                "x@remote.example,bob@example.org",
            ][..],
            &auth,
        ]
        .concat(),
    ));
    assert!(t.contains("235 2.7.0"), "{t}");
    assert_eq!(s.inbox("bob").len(), 1);
    let queued: Vec<_> = std::fs::read_dir(s.scratch.dir.path().join("data/queue"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(queued.len(), 1, "the remote recipient is queued");
    // 465: TLS from the first byte, AUTH LOGIN this time.
    let t = ok(&s.swaks(
        s.submissions,
        &[
            "--tlsc",
            "--from",
            "alice@example.org",
            "--to",
            "bob@example.org",
            "--auth",
            "LOGIN",
            "--auth-user",
            "alice",
            "--auth-password",
            PASSWORD,
        ],
    ));
    assert!(t.contains("235 2.7.0"), "{t}");
    let m = s
        .inbox("bob")
        .into_iter()
        .find(|m| m.contains("ESMTPSA"))
        .expect("via 465");
    assert!(m.contains("(using TLSv1."), "{m}");
}

#[test]
fn failed_logins_are_throttled_per_address() {
    let s = Server::start(UNTRUSTED, "");
    for _ in 0..5 {
        let t = transcript(&s.swaks(
            s.submission,
            &[
                "--tls",
                "--quit-after",
                "AUTH",
                "--auth",
                "PLAIN",
                "--auth-user",
                "alice",
                "--auth-password",
                "wrong",
            ],
        ));
        assert!(t.contains("535 5.7.8"), "{t}");
    }
    let t = transcript(&s.swaks(
        s.submission,
        &[
            "--tls",
            "--quit-after",
            "AUTH",
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice",
            "--auth-password",
            PASSWORD,
        ],
    ));
    assert!(t.contains("454 4.7.0 Too many failed logins"), "{t}");
}

#[test]
fn python_smtplib_sends_through_submission_and_sees_refusals() {
    require("python3", "python3");
    let s = Server::start(UNTRUSTED, "");
    let script = format!(
        r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", {sub}, timeout=20) as c:
    c.ehlo("py.example")
    assert c.has_extn("starttls") and not c.has_extn("auth"), c.esmtp_features
    c.starttls(context=ctx)
    c.ehlo("py.example")
    assert "PLAIN" in c.esmtp_features["auth"], c.esmtp_features
    c.login("alice", "{pw}")
    refused = c.sendmail("alice@example.org", ["bob@example.org", "ghost@example.org"],
                         b"Subject: from python\r\n\r\nhello\r\n")
    assert list(refused) == ["ghost@example.org"] and refused["ghost@example.org"][0] == 550, refused
with smtplib.SMTP("127.0.0.1", {mx}, timeout=20) as c:
    try:
        c.sendmail("a@example.net", ["x@remote.example"], b"Subject: x\r\n\r\nx\r\n")
        sys.exit("relayed!")
    except smtplib.SMTPRecipientsRefused as e:
        assert e.recipients["x@remote.example"][0] == 554, e.recipients
    code, _ = c.docmd("VRFY", "alice")
    assert code == 252, code
print("ok")
"#,
        sub = s.submission,
        mx = s.port,
        pw = PASSWORD
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    let bob = s.inbox("bob");
    assert_eq!(bob.len(), 1);
    assert!(bob[0].contains("Subject: from python"));
}

fn read_reply(r: &mut impl BufRead) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 {
            return all;
        }
        all.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return all;
        }
    }
}

#[test]
fn sigterm_says_421_and_exits_cleanly() {
    let mut s = Server::start("", "");
    let tcp = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = BufReader::new(tcp.try_clone().unwrap());
    assert!(read_reply(&mut r).starts_with("220 "));
    let status = {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(s.child.as_ref().unwrap().id() as i32, libc::SIGTERM) };
        let reply = read_reply(&mut r);
        assert!(reply.starts_with("421 4.3.2"), "{reply:?}");
        s.child.take().unwrap().wait().unwrap()
    };
    assert!(status.success(), "{status}");
}

#[test]
fn the_connection_limit_answers_421() {
    let s = Server::start("  max_connections: 2\n", "");
    let mut held = Vec::new();
    // The probes that waited for the ports may still hold a slot a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while held.len() < 2 {
        let tcp = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        let mut r = BufReader::new(tcp.try_clone().unwrap());
        let reply = read_reply(&mut r);
        if reply.starts_with("220 ") {
            held.push(tcp);
        } else {
            assert!(std::time::Instant::now() < deadline, "{reply:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let tcp = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let reply = read_reply(&mut BufReader::new(tcp));
    assert!(
        reply.starts_with("421 4.7.0 Too many connections"),
        "{reply:?}"
    );
    drop(held);
}

#[test]
fn stdio_runs_one_session_for_inetd() {
    let s = Server::start("", "");
    let mut child = s
        .scratch
        .cmd()
        .args(["serve-smtp", "--stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"EHLO cron\r\nMAIL FROM:<root@example.org>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nSubject: via inetd\r\n\r\nx\r\n.\r\nQUIT\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("\r\n250 2.0.0 OK id=") && text.ends_with("221 2.0.0 Bye\r\n"),
        "{text}"
    );
    assert!(s.inbox("alice")[0].contains("Subject: via inetd"));
}

#[test]
fn sendmail_queues_and_the_server_delivers() {
    let s = Server::start("", "");
    let out = support::run(
        s.scratch
            .cmd()
            .args(["sendmail", "-oi", "-f", "root@example.org", "alice"]),
        b"Subject: from cron\n\nline\n.\nafter the dot\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The running server's worker picks it up.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while s.inbox("alice").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = &s.inbox("alice")[0];
    assert!(
        m.starts_with(
            "Return-Path: <root@example.org>\nDelivered-To: alice@example.org\nReceived: (from "
        ),
        "{m}"
    );
    assert!(
        m.contains("\nDate: ") && m.contains("\nMessage-ID: <"),
        "{m}"
    );
    assert!(
        m.ends_with("line\n.\nafter the dot\n"),
        "-oi keeps the dot: {m}"
    );

    // Called as `sendmail`, with -t; an unknown local user bounces to the sender.
    let link = s.scratch.dir.path().join("sendmail");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ownmail"), &link).unwrap();
    let mut cmd = Command::new(&link);
    cmd.env_remove("OWNMAIL_CONFIG")
        .arg("--config")
        .arg(s.scratch.config())
        .args(["-t", "-f", "bob@example.org"]);
    let out = support::run(
        &mut cmd,
        b"To: ghost@example.org\nBcc: alice@example.org\nSubject: t\n\nx\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while s.inbox("alice").len() < 2 || s.inbox("bob").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let bounce = &s.inbox("bob")[0];
    assert!(bounce.starts_with("Return-Path: <>\n"), "{bounce}");
    assert!(
        bounce
            .contains("Final-Recipient: rfc822; ghost@example.org\nAction: failed\nStatus: 5.1.1"),
        "{bounce}"
    );
    assert!(!s.inbox("alice")[1].contains("Bcc"), "Bcc: is removed");

    // As Debian's cron calls it, with the output of a job that has no
    // header: a From: with the name, the text as the body.
    let out = support::run(
        s.scratch.cmd().args([
            "sendmail",
            "-FCronDaemon",
            "-i",
            "-B8BITMIME",
            "-oem",
            "alice",
        ]),
        b"backup finished OK\n/dev/sda1: 95% full\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // newaliases has nothing to rebuild; other modes say what to use.
    let out = support::run(s.scratch.cmd().args(["sendmail", "-bi"]), b"");
    assert_eq!(out.status.code(), Some(0));
    let out = support::run(s.scratch.cmd().args(["sendmail", "-bp"]), b"");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ownmail queue list"));

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let cron = loop {
        if let Some(m) = s
            .inbox("alice")
            .into_iter()
            .find(|m| m.contains("backup finished"))
        {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let (head, body) = cron.split_once("\n\n").expect("a header and a body");
    assert!(head.contains("\nFrom: CronDaemon <"), "{cron}");
    assert_eq!(body, "backup finished OK\n/dev/sda1: 95% full\n");
}

/// Runs `serve-smtp --stdio` on `stdin` and `stdout`, as inetd would.
fn stdio_server(s: &Server, stdin: Stdio, stdout: Stdio) -> std::process::Child {
    s.scratch
        .cmd()
        .args(["-v", "serve-smtp", "--stdio"])
        .stdin(stdin)
        .stdout(stdout)
        .stderr(std::fs::File::create(s.scratch.dir.path().join("stdio.log")).unwrap())
        .spawn()
        .unwrap()
}

/// Regression: on --stdio, a client whose address was unknown (a pipe, a
/// Unix socket from socat EXEC: or stunnel exec=) was trusted, and could
/// log in without TLS: an open relay. Now it is a stranger.
#[test]
fn stdio_without_a_tcp_peer_is_a_stranger() {
    use std::io::Read;
    use std::os::fd::OwnedFd;
    // Loopback is trusted (the default): the client must not pass for it.
    let s = Server::start("", "");
    let session = b"EHLO c\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<x@remote.example>\r\nRCPT TO:<bob@example.org>\r\nQUIT\r\n";
    for unix in [true, false] {
        let (out, status) = if unix {
            let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
            let child = stdio_server(
                &s,
                Stdio::from(OwnedFd::from(theirs.try_clone().unwrap())),
                Stdio::from(OwnedFd::from(theirs)),
            );
            ours.write_all(session).unwrap();
            ours.shutdown(std::net::Shutdown::Write).unwrap();
            let mut out = Vec::new();
            ours.read_to_end(&mut out).unwrap();
            (out, child.wait_with_output().unwrap().status)
        } else {
            let mut child = stdio_server(&s, Stdio::piped(), Stdio::piped());
            child.stdin.take().unwrap().write_all(session).unwrap();
            let out = child.wait_with_output().unwrap();
            (out.stdout, out.status)
        };
        let text = String::from_utf8_lossy(&out);
        assert!(status.success(), "{text}");
        let replies: Vec<&str> = text
            .lines()
            // Those with an enhanced status: not the greeting, nor EHLO's.
            .filter(|l| l.as_bytes()[3] == b' ' && l.as_bytes()[4].is_ascii_digit())
            .map(|l| &l[..l.len().min(9)])
            .collect();
        assert_eq!(
            replies,
            [
                "538 5.7.1",
                "250 2.1.0",
                "554 5.7.1",
                "250 2.1.5",
                "221 2.0.0"
            ][..],
            "unix socket: {unix}\n{text}"
        );
        assert!(!text.contains("AUTH"), "{text}");
    }
}

/// Regression: under --stdio on inetd's TCP socket, STARTTLS was offered
/// but the handshake failed ("operation would block": tokio's stdout, a
/// blocking thread, leaves a flush pending, which OpenSSL takes for an
/// error). The socket is now used directly. Over pipes, where that cannot
/// be done, STARTTLS is not offered.
#[test]
fn stdio_on_a_tcp_socket_does_starttls_with_python() {
    use std::os::fd::OwnedFd;
    require("python3", "python3");
    let s = Server::start(UNTRUSTED, "");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!(
        r#"
import smtplib, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", {port}, timeout=20) as c:
    c.ehlo("py.example")
    assert c.has_extn("starttls"), c.esmtp_features
    c.starttls(context=ctx)
    c.ehlo("py.example")
    c.login("alice", "{pw}")
    c.sendmail("alice@example.org", ["bob@example.org"],
               b"Subject: stdio tls\r\n\r\nhello\r\n")
print("ok")
"#,
        pw = PASSWORD
    );
    let python = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tcp, _) = listener.accept().unwrap();
    let server = stdio_server(
        &s,
        Stdio::from(OwnedFd::from(tcp.try_clone().unwrap())),
        Stdio::from(OwnedFd::from(tcp)),
    );
    let py = python.wait_with_output().unwrap();
    let status = server.wait_with_output().unwrap().status;
    let log = std::fs::read_to_string(s.scratch.dir.path().join("stdio.log")).unwrap();
    assert!(
        py.status.success() && status.success(),
        "{}{}\n{log}",
        String::from_utf8_lossy(&py.stdout),
        String::from_utf8_lossy(&py.stderr),
    );
    let bob = s.inbox("bob");
    assert_eq!(bob.len(), 1, "{log}");
    assert!(
        bob[0].contains("([127.0.0.1])") && bob[0].contains("with ESMTPSA\n\t(using TLSv1."),
        "{}",
        bob[0]
    );

    // Over pipes: no STARTTLS offered, so none fails.
    let mut child = stdio_server(&s, Stdio::piped(), Stdio::piped());
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"EHLO c\r\nSTARTTLS\r\nQUIT\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("STARTTLS") && text.contains("\r\n502 5.5.1"),
        "{text}"
    );
}

/// Regression: a users file that could not be read was taken for an empty
/// one: `550 5.1.1` at RCPT for every local user, and mail already queued
/// for them failed, bounced to a local sender, failed again: lost. Now the
/// lookup fails temporarily (`451 4.3.0`), the queue defers, and once the
/// file is readable again the mail arrives and nobody got a bounce.
#[test]
fn an_unreadable_users_file_defers_and_loses_nothing() {
    let s = Server::start(UNTRUSTED, "");
    let passwd = s.scratch.dir.path().join("data/passwd");
    let saved = s.scratch.dir.path().join("passwd.saved");
    std::fs::rename(&passwd, &saved).unwrap();
    // A directory where the file should be: unreadable, even for root.
    std::fs::create_dir(&passwd).unwrap();
    let t = transcript(&s.swaks(
        s.port,
        &["--from", "a@example.net", "--to", "alice@example.org"],
    ));
    assert!(t.contains("451 4.3.0 Temporary lookup failure"), "{t}");
    assert!(!t.contains("550"), "{t}");
    assert!(
        s.log().contains("cannot read the users file"),
        "{}",
        s.log()
    );

    let out = support::run(
        s.scratch
            .cmd()
            .args(["sendmail", "-oi", "-f", "bob@example.org", "alice"]),
        b"Subject: queued while broken\n\nx\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let flush = s.scratch.cmd().args(["queue", "flush"]).output().unwrap();
    assert_eq!(
        flush.status.code(),
        Some(75),
        "deferred, not failed: {}",
        String::from_utf8_lossy(&flush.stderr)
    );
    assert!(s.inbox("alice").is_empty() && s.inbox("bob").is_empty());

    std::fs::remove_dir(&passwd).unwrap();
    std::fs::rename(&saved, &passwd).unwrap();
    let flush = s.scratch.cmd().args(["queue", "flush"]).output().unwrap();
    assert!(
        flush.status.success(),
        "{}",
        String::from_utf8_lossy(&flush.stderr)
    );
    let alice = s.inbox("alice");
    assert_eq!(alice.len(), 1, "{alice:?}\n{}", s.log());
    assert!(alice[0].contains("Subject: queued while broken"));
    assert!(s.inbox("bob").is_empty(), "no bounce: {:?}", s.inbox("bob"));
}

/// Regression: with an alias for two users and one Maildir broken, DATA
/// was answered `451` after the other user already had the message, so
/// every retry of the sending MTA gave them another copy. Now the message
/// is accepted once (`250`), the copy that failed waits in the queue, and
/// arrives (once, to the right user, as sent to the alias) when the
/// Maildir works again.
#[test]
fn a_failed_local_copy_is_retried_from_the_queue_without_duplicates() {
    let s = Server::start(UNTRUSTED, "aliases:\n  info: [alice, bob]\n");
    let bob_tmp = s.scratch.maildir("bob").join("tmp");
    std::fs::remove_dir_all(&bob_tmp).unwrap();
    std::fs::write(&bob_tmp, "in the way").unwrap();
    let t = ok(&s.swaks(
        s.port,
        &[
            "--from",
            "sender@example.net",
            "--to",
            "info@example.org",
            "--header",
            "Subject: to both",
        ],
    ));
    assert!(t.contains("250 2.0.0 OK id="), "{t}");
    assert_eq!(s.inbox("alice").len(), 1);
    assert!(s.inbox("bob").is_empty());
    let list = s.scratch.cmd().args(["queue", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        list.contains("info@example.org (for bob) pending: delivery to bob failed")
            && list.contains("info@example.org (for alice) delivered"),
        "{list}"
    );

    std::fs::remove_file(&bob_tmp).unwrap();
    std::fs::create_dir(&bob_tmp).unwrap();
    let flush = s.scratch.cmd().args(["queue", "flush"]).output().unwrap();
    assert!(
        flush.status.success(),
        "{}",
        String::from_utf8_lossy(&flush.stderr)
    );
    let bob = s.inbox("bob");
    assert_eq!(bob.len(), 1, "{}", s.log());
    assert!(
        bob[0].starts_with("Return-Path: <sender@example.net>\nDelivered-To: info@example.org\nReceived: from client.example"),
        "{}",
        bob[0]
    );
    assert!(bob[0].contains("Subject: to both"));
    assert_eq!(s.inbox("alice").len(), 1, "no second copy for alice");
}

/// Regression: when the remote part could not be queued, the local users
/// already had the message and the `451` made the client send it again.
/// Now a `451` means nobody got it.
#[test]
fn a_queue_failure_leaves_nothing_delivered() {
    let s = Server::start("", "");
    let tmp = s.scratch.dir.path().join("data/queue/tmp");
    std::fs::remove_dir_all(&tmp).unwrap();
    std::fs::write(&tmp, "in the way").unwrap();
    let t = transcript(&s.swaks(
        s.port,
        &[
            "--from",
            "sender@example.org",
            "--to",
            "alice@example.org,bob@example.org,x@remote.example",
        ],
    ));
    assert!(t.contains("451 4.3.0"), "{t}");
    assert!(s.inbox("alice").is_empty() && s.inbox("bob").is_empty());
}

/// Under inetd each connection is a process of its own, so failed logins
/// are counted in a file: five connections that each guess once, and the
/// sixth is refused even the right password. Regression: each connection
/// started with a clean slate, so guessing was limited only by how fast
/// connections could be made.
#[test]
fn failed_logins_count_across_stdio_sessions() {
    use std::os::fd::OwnedFd;
    let s = Server::start("", "");
    let login = |password: &str| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (tcp, _) = listener.accept().unwrap();
        let mut server = stdio_server(
            &s,
            Stdio::from(OwnedFd::from(tcp.try_clone().unwrap())),
            Stdio::from(OwnedFd::from(tcp)),
        );
        let plain = base64_plain("alice", password);
        let mut w = client.try_clone().unwrap();
        w.write_all(format!("EHLO c\r\nAUTH PLAIN {plain}\r\nQUIT\r\n").as_bytes())
            .unwrap();
        let replies: Vec<String> = BufReader::new(client)
            .lines()
            .map_while(Result::ok)
            .collect();
        server.wait().unwrap();
        replies
            .into_iter()
            .find(|l| l.starts_with("235") || l.starts_with("535") || l.starts_with("454"))
            .unwrap_or_default()
    };
    for i in 0..5 {
        let reply = login("wrong");
        assert!(reply.starts_with("535"), "guess {i}: {reply}");
    }
    let reply = login(PASSWORD);
    assert!(reply.starts_with("454 4.7.0"), "{reply}");
    let log = std::fs::read_to_string(s.scratch.dir.path().join("data/login-failures")).unwrap();
    assert_eq!(log.lines().count(), 5, "{log}");
}

fn base64_plain(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}
