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
    let _dns = Dnsmasq(
        Command::new(dnsmasq)
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
            ])
            .args([
                "--listen-address=127.0.0.1",
                "--user=root",
                "--pid-file=/dev/null",
            ])
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
