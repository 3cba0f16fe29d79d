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
