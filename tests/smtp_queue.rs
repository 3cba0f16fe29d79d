//! The outbound queue against a real smarthost, Postfix's `smtp-sink` on
//! loopback: down (the message waits), up (it arrives, once), refusing
//! recipients for good (the local recipient still gets it, the sender gets
//! an RFC 3464 bounce), and a bounce that fails is not bounced.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use support::smtp::*;

struct Sink {
    child: Child,
}

impl Sink {
    /// `smtp-sink` on `port`, dumping each message into `dump`; `extra`:
    /// more options (`-f RCPT` to refuse recipients).
    fn start(port: u16, dump: &Path, extra: &[&str]) -> Sink {
        let sink = require("smtp-sink", "postfix");
        std::fs::create_dir_all(dump).unwrap();
        // smtp-sink drops root privileges to `nobody`, who must write here.
        Command::new("chmod").arg("777").arg(dump).status().unwrap();
        let child = Command::new(sink)
            .args(["-u", "nobody", "-d"])
            .arg(format!("{}/%M.", dump.display()))
            .args(extra)
            .arg(format!("127.0.0.1:{port}"))
            .arg("10")
            .spawn()
            .unwrap();
        wait_port(port);
        Sink { child }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dumped(dir: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

fn queue(s: &Server, args: &[&str]) -> Output {
    s.scratch.cmd().arg("queue").args(args).output().unwrap()
}

fn wait_for(what: &str, s: &Server, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_smarthost_down_then_up_then_refusing() {
    let relay_port = free_port();
    let s = Server::start(
        &format!("  relay: {{host: 127.0.0.1, port: {relay_port}, tls: none}}\n"),
        "",
    );
    let dump = s.scratch.dir.path().join("sink");
    let auth = [
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        "alice",
        "--auth-password",
        PASSWORD,
        "--from",
        "alice@example.org",
    ];

    // 1. Down: accepted, queued, tried, waiting.
    let out = s.swaks(
        s.submission,
        &[
            &auth[..],
            &[
                "--to",
                "r1@remote.example,r2@remote.example",
                "--header",
                "Subject: first",
            ],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", transcript(&out));
    wait_for("the first attempt", &s, || {
        String::from_utf8_lossy(&queue(&s, &["list"]).stdout).contains("attempts 1")
    });
    let list = String::from_utf8_lossy(&queue(&s, &["list"]).stdout).into_owned();
    assert!(
        list.contains("r1@remote.example pending: ") && list.contains("r2@remote.example pending"),
        "{list}"
    );
    assert!(dumped(&dump).is_empty());

    // 2. Up: `queue flush` sends it now, once, to both.
    let sink = Sink::start(relay_port, &dump, &[]);
    let out = queue(&s, &["flush"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let msgs = dumped(&dump);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        msgs[0].contains("X-Mail-Args: <alice@example.org>"),
        "{}",
        msgs[0]
    );
    assert!(
        msgs[0].contains("X-Rcpt-Args: <r1@remote.example>")
            && msgs[0].contains("X-Rcpt-Args: <r2@remote.example>")
    );
    assert!(
        msgs[0].contains("Subject: first") && msgs[0].contains("with ESMTPSA"),
        "{}",
        msgs[0]
    );
    assert!(String::from_utf8_lossy(&queue(&s, &["list"]).stdout).is_empty());
    drop(sink);

    // 3. Refusing every recipient for good: the local one is not held up,
    // and the sender gets a delivery status notification.
    let _sink = Sink::start(
        relay_port,
        &dump,
        &["-f", "RCPT", "-B", "550 5.1.1 No such user here"],
    );
    let out = s.swaks(
        s.submission,
        &[
            &auth[..],
            &[
                "--to",
                "r3@remote.example,bob@example.org",
                "--header",
                "Subject: third",
            ],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", transcript(&out));
    assert_eq!(
        s.inbox("bob").len(),
        1,
        "the local recipient has it at once"
    );
    wait_for("the bounce", &s, || !s.inbox("alice").is_empty());
    let bounce = &s.inbox("alice")[0];
    assert!(bounce.starts_with("Return-Path: <>\n"), "{bounce}");
    for needle in [
        "Content-Type: multipart/report; report-type=delivery-status;",
        "Final-Recipient: rfc822; r3@remote.example\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; ",
        "No such user here",
        "Subject: third",
    ] {
        assert!(bounce.contains(needle), "{needle:?} not in\n{bounce}");
    }
    wait_for("an empty queue", &s, || {
        String::from_utf8_lossy(&queue(&s, &["list"]).stdout).is_empty()
    });

    // 4. A bounce (null sender) that fails is dropped, never bounced.
    let out = s.swaks(s.port, &["--from", "<>", "--to", "r4@remote.example"]);
    assert!(out.status.success(), "{}", transcript(&out));
    wait_for("the failed bounce to be dropped", &s, || {
        s.log().contains("r4@remote.example")
            && String::from_utf8_lossy(&queue(&s, &["list"]).stdout).is_empty()
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(s.inbox("alice").len(), 1, "no bounce of a bounce");
    assert_eq!(dumped(&dump).len(), 1, "nothing more arrived at the sink");
}

/// A smarthost of our own on loopback: the first message's end of data is
/// reported on `got` and answered with `451` only when `go` says so; every
/// later one is accepted and its RCPT lines recorded in `accepted`.
struct SlowSmarthost {
    port: u16,
    got: std::sync::mpsc::Receiver<()>,
    go: std::sync::mpsc::Sender<()>,
    accepted: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl SlowSmarthost {
    fn start() -> SlowSmarthost {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (got_tx, got) = std::sync::mpsc::channel();
        let (go, go_rx) = std::sync::mpsc::channel::<()>();
        let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let acc = accepted.clone();
        std::thread::spawn(move || {
            let mut first = true;
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                let _ = w.write_all(b"220 smarthost.test ESMTP\r\n");
                let mut rcpts = Vec::new();
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let cmd = line.to_ascii_uppercase();
                    let reply: &[u8] = if cmd.starts_with("EHLO") {
                        b"250 smarthost.test\r\n"
                    } else if cmd.starts_with("RCPT") {
                        rcpts.push(line.trim_end().to_owned());
                        b"250 2.1.5 OK\r\n"
                    } else if cmd.starts_with("DATA") {
                        let _ = w.write_all(b"354 go ahead\r\n");
                        let mut l = String::new();
                        loop {
                            l.clear();
                            if r.read_line(&mut l).unwrap_or(0) == 0 || l == ".\r\n" {
                                break;
                            }
                        }
                        if first {
                            first = false;
                            let _ = got_tx.send(());
                            let _ = go_rx.recv_timeout(Duration::from_secs(60));
                            b"451 4.3.0 try again later\r\n"
                        } else {
                            acc.lock().unwrap().append(&mut rcpts);
                            b"250 2.0.0 queued\r\n"
                        }
                    } else if cmd.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n");
                        break;
                    } else {
                        b"250 2.0.0 OK\r\n"
                    };
                    if w.write_all(reply).is_err() {
                        break;
                    }
                }
            }
        });
        SlowSmarthost {
            port,
            got,
            go,
            accepted,
        }
    }
}

fn sendmail(s: &Server, to: &str, subject: &str) {
    let out = support::run(
        s.scratch
            .cmd()
            .args(["sendmail", "-oi", "-f", "bob@example.org", to]),
        format!("Subject: {subject}\n\nx\n").as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Regression: `queue delete` while the worker was sending the message,
/// then a 451 from the smarthost: the worker's update wrote the envelope
/// back without its message, and from then on every pass stopped at that
/// entry (`queue flush` exited 75 sending nothing, the daemon logged the
/// error every 5 seconds). Now the deletion holds, and an entry without
/// its message is set aside in `corrupt/` while the others go out.
#[test]
fn queue_delete_during_a_send_holds_and_a_damaged_entry_stops_nothing() {
    let host = SlowSmarthost::start();
    let s = Server::start(
        &format!(
            "  relay: {{host: 127.0.0.1, port: {}, tls: none}}\n",
            host.port
        ),
        "",
    );
    let qdir = s.scratch.dir.path().join("data/queue");
    sendmail(&s, "first@remote.example", "deleted while sent");
    host.got
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("the worker never sent it\n{}", s.log()));
    let list = String::from_utf8_lossy(&queue(&s, &["list"]).stdout).into_owned();
    let id = list.split_whitespace().next().unwrap().to_owned();
    let started = Instant::now();
    let out = queue(&s, &["delete", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "delete waited for the send"
    );
    host.go.send(()).unwrap();
    wait_for("the worker to see the deletion", &s, || {
        s.log().contains("while being sent")
    });
    assert!(
        !qdir.join(format!("{id}.json")).exists(),
        "resurrected\n{}",
        s.log()
    );
    assert!(!qdir.join(format!("{id}.eml")).exists());

    // A damaged entry, as the old race left one: an envelope, older than
    // the rest, whose message file is gone.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let damaged = "1000-000000-1-1";
    std::fs::write(
        qdir.join(format!("{damaged}.json")),
        format!(
            r#"{{"id":"{damaged}","sender":"bob@example.org","recipients":[{{"address":"lost@remote.example","status":"pending"}}],"created":{},"attempts":0,"next_attempt":0}}"#,
            now - 60
        ),
    )
    .unwrap();
    sendmail(&s, "second@remote.example", "after the damage");
    let out = queue(&s, &["flush"]);
    let flushed = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{flushed}");
    wait_for("the second message", &s, || {
        host.accepted
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.contains("second@remote.example"))
    });
    assert!(qdir.join(format!("corrupt/{damaged}.json")).exists());
    let list = String::from_utf8_lossy(&queue(&s, &["list"]).stdout).into_owned();
    assert!(
        list.contains(&format!("{damaged}  damaged, set aside in ")) && list.contains("missing"),
        "{list}"
    );
    // Said loudly by whichever pass found it: the daemon's or the flush.
    assert!(
        s.log().contains("damaged entry moved to") || flushed.contains("damaged entr"),
        "{flushed}\n{}",
        s.log()
    );
}
