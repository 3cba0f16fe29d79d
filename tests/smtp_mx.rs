//! Direct delivery to MX hosts, with DNS answered by a dnsmasq on loopback
//! that knows only its own zone (`--no-resolv`: no query leaves this
//! machine). The MX of `remote.example` is another `ownmail serve-smtp`
//! on 127.0.25.1:25, behind a better-preference MX that is down: the
//! message skips the dead host, arrives over opportunistic STARTTLS (its
//! certificate is self-signed), and a domain that does not exist
//! (NXDOMAIN) bounces.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::smtp::*;

struct Dnsmasq(std::process::Child);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn mail_goes_to_the_best_reachable_mx_over_starttls() {
    let dns_port = free_port();
    let dnsmasq = require("dnsmasq", "dnsmasq-base");
    // Its pid file in a folder of the test's own: dnsmasq, as root, unlinks
    // the pid file before creating it, and given /dev/null it replaced the
    // machine's /dev/null with a regular file.
    let run = tempfile::tempdir().unwrap();
    let _dns = Dnsmasq(
        Command::new(dnsmasq)
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
            ])
            .args(["--listen-address=127.0.0.1", "--user=root"])
            .arg(format!(
                "--pid-file={}",
                run.path().join("dnsmasq.pid").display()
            ))
            .arg(format!("--port={dns_port}"))
            // Everything under .example is answered here, never forwarded.
            .arg("--local=/example/")
            .arg("--mx-host=remote.example,mx0.remote.example,5")
            .arg("--mx-host=remote.example,mx1.remote.example,10")
            .arg("--host-record=mx0.remote.example,127.0.25.2")
            .arg("--host-record=mx1.remote.example,127.0.25.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The destination: a server for remote.example on 127.0.25.1:25.
    let mx = Server::start_as("remote.example", "127.0.25.1", 25, "", "");
    // The sender: no smarthost, DNS from dnsmasq.
    let s = Server::start(&format!("  dns_servers: ['127.0.0.1:{dns_port}']\n"), "");
    let out = s.swaks(
        s.port,
        &[
            "--from",
            "alice@example.org",
            "--to",
            "alice@remote.example,ghost@nxdomain.example",
        ],
    );
    assert!(out.status.success(), "{}", transcript(&out));
    let deadline = Instant::now() + Duration::from_secs(30);
    while mx.inbox("alice").is_empty() {
        assert!(
            Instant::now() < deadline,
            "not delivered\n{}\n{}",
            s.log(),
            mx.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // dnsmasq has written its pid file by now: the machine's /dev/null is
    // still the device (it was once given as the pid file, and replaced).
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device(),
        "/dev/null is no longer a device"
    );
    assert!(run.path().join("dnsmasq.pid").exists());
    let m = &mx.inbox("alice")[0];
    assert!(
        m.contains("by mx.remote.example (ownmail) with ESMTPS\n\t(using TLSv1."),
        "{m}"
    );
    assert!(m.contains("Received: from mx.example.org"), "{m}");
    // The domain that does not exist bounces (NXDOMAIN is permanent).
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.inbox("alice").is_empty() {
        assert!(Instant::now() < deadline, "no bounce\n{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let bounce = &s.inbox("alice")[0];
    assert!(
        bounce.contains(
            "Final-Recipient: rfc822; ghost@nxdomain.example\nAction: failed\nStatus: 5.1.2"
        ),
        "{bounce}"
    );
}

/// Regression: without a relay, `RCPT TO:<y@[192.0.2.55]>` was accepted,
/// then looked up as an MX name ("Label contains invalid characters") and
/// deferred until it expired. RFC 5321 5.1: an address literal is where
/// to connect, no DNS. Here a bare SMTP server of the test's own listens
/// on 127.0.25.3:25 and must receive the message; DNS goes to a port where
/// nobody answers.
#[test]
fn an_address_literal_is_delivered_to_that_address() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.25.3:25").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((conn, _)) = listener.accept() else {
            return;
        };
        let mut w = conn.try_clone().unwrap();
        let mut r = BufReader::new(conn);
        let _ = w.write_all(b"220 literal.test ESMTP\r\n");
        let mut seen = String::new();
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            let upper = line.to_ascii_uppercase();
            seen.push_str(&line);
            let reply: &[u8] = if upper.starts_with("EHLO") {
                b"250 literal.test\r\n"
            } else if upper.starts_with("DATA") {
                let _ = w.write_all(b"354 go ahead\r\n");
                let mut l = String::new();
                while r.read_line(&mut l).unwrap_or(0) > 0 && l != ".\r\n" {
                    seen.push_str(&l);
                    l.clear();
                }
                b"250 2.0.0 taken\r\n"
            } else if upper.starts_with("QUIT") {
                let _ = w.write_all(b"221 bye\r\n");
                break;
            } else {
                b"250 2.0.0 OK\r\n"
            };
            let _ = w.write_all(reply);
            line.clear();
        }
        let _ = tx.send(seen);
    });
    let s = Server::start("", "");
    let out = s.swaks(
        s.port,
        &[
            "--from",
            "alice@example.org",
            "--to",
            "y@[127.0.25.3]",
            "--header",
            "Subject: to a literal",
        ],
    );
    assert!(out.status.success(), "{}", transcript(&out));
    let seen = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("never connected\n{}", s.log()));
    assert!(seen.contains("RCPT TO:<y@[127.0.25.3]>"), "{seen}");
    assert!(seen.contains("Subject: to a literal"), "{seen}");
    assert!(!s.log().contains("DNS lookup"), "{}", s.log());
}
