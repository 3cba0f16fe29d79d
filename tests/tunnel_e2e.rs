//! Issue 8 end to end: `tunnel` in front of our own servers. One
//! `ownmail serve` runs IMAP (plain and implicit TLS) and SMTP (port 25 and
//! 465) for example.org, relaying through a second ownmail, the "ISP's
//! smarthost", that holds the mail of elsewhere.example.
//!
//! - through `tunnel ssh` (Debian's sshd, started here), swaks submits a
//!   message without logging in and it is relayed, because it reaches the
//!   server from its own loopback; Python's imaplib reads the mailbox
//!   through the IMAP forward;
//! - through `tunnel tls` against the implicit-TLS ports: a pinned
//!   fingerprint works for IMAP and SMTP, a wrong pin is refused, and
//!   `--stdio` carries Python's imaplib.
//!
//! Peers (a missing one fails the test): openssh-server, openssh-client,
//! swaks, python3, openssl. Nothing leaves 127.0.0.1.

mod support;

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::Scratch;
use support::smtp::{self_signed, wait_port};
use support::sshd::{Sshd, free_port};
use support::tunnel::{
    ImapClient, Tunnel, decode_messages, imap_read_all, openssl_fingerprint, swaks,
};

const PASSWORD: &str = "e2e-secret";
const WELCOME: &[u8] =
    b"From: admin@example.org\nTo: alice@example.org\nSubject: welcome\n\nHello Alice.\n";
const UP: Duration = Duration::from_secs(15);

/// `ownmail serve` for example.org with its ports, and the smarthost.
struct Servers {
    home: Scratch,
    serve: Child,
    cert: PathBuf,
    imap: u16,
    imaps: u16,
    smtp: u16,
    smtps: u16,
    smarthost: support::smtp::Server,
}

impl Servers {
    fn start() -> Servers {
        // The smarthost: an ownmail for elsewhere.example that takes any
        // mail from loopback (trusted by default).
        let smarthost =
            support::smtp::Server::start_as("elsewhere.example", "127.0.0.1", free_port(), "", "");
        let home = Scratch::new();
        let (cert, key) = self_signed(home.dir.path());
        let (imap, imaps, smtp, smtps) = (free_port(), free_port(), free_port(), free_port());
        std::fs::write(
            home.config(),
            format!(
                "hostname: mail.example.org\ndomains: [example.org]\ndata_dir: data\n\
                 tls:\n  cert: {}\n  key: {}\n\
                 imap:\n  listen: ['127.0.0.1:{imap}']\n  listen_tls: ['127.0.0.1:{imaps}']\n\
                 smtp:\n  listen: ['127.0.0.1:{smtp}']\n  submissions: ['127.0.0.1:{smtps}']\n\
                 \x20 relay: {{host: 127.0.0.1, port: {}, tls: none}}\n",
                cert.display(),
                key.display(),
                smarthost.port
            ),
        )
        .unwrap();
        home.add_user("alice", PASSWORD);
        let out = support::run(home.cmd().args(["deliver", "--user", "alice"]), WELCOME);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let serve = home
            .cmd()
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(home.dir.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap();
        for port in [imap, imaps, smtp, smtps] {
            wait_port(port);
        }
        Servers {
            home,
            serve,
            cert,
            imap,
            imaps,
            smtp,
            smtps,
            smarthost,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.home.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// Waits until the smarthost holds a message for `user` containing `text`.
    fn wait_relayed(&self, user: &str, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.smarthost.inbox(user).iter().any(|m| m.contains(text)) {
            assert!(
                Instant::now() < deadline,
                "not relayed to {user}@elsewhere.example:\n--- serve ---\n{}\n--- smarthost ---\n{}",
                self.log(),
                self.smarthost.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = self.serve.kill();
        let _ = self.serve.wait();
    }
}

#[test]
fn through_ssh_swaks_is_relayed_from_loopback_and_imap_reads_the_mailbox() {
    let servers = Servers::start();
    let sshd = Sshd::start();
    let (smtp_local, imap_local) = (free_port(), free_port());
    let mut tunnel = Tunnel::ssh(
        &sshd,
        &[
            "--smtp",
            &format!("{smtp_local}:{}", servers.smtp),
            "--imap",
            &format!("{imap_local}:{}", servers.imap),
        ],
    );
    tunnel.wait_greeting(smtp_local, "220 ", UP);
    tunnel.wait_greeting(imap_local, "* OK", UP);

    // No login: the tunnel's connections reach serve-smtp from loopback,
    // which is trusted for relay.
    let out = swaks(
        smtp_local,
        "alice@example.org",
        "bob@elsewhere.example",
        &["--body", "relayed through ssh"],
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    servers.wait_relayed("bob", "relayed through ssh");

    // And local mail, read back through the IMAP forward.
    let out = swaks(
        smtp_local,
        "carol@elsewhere.example",
        "alice@example.org",
        &["--body", "for alice, through ssh"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let read = decode_messages(&imap_read_all(
        ImapClient::Plain(imap_local),
        "alice",
        PASSWORD,
    ));
    assert_eq!(read.len(), 2, "{read:?}");
    assert!(String::from_utf8_lossy(&read[0]).contains("Subject: welcome\r\n"));
    assert!(String::from_utf8_lossy(&read[1]).contains("for alice, through ssh"));

    assert!(tunnel.stop(libc::SIGTERM).success());
}

#[test]
fn through_tls_pinned_imap_and_smtp_work_a_wrong_pin_is_refused_and_stdio_carries_imaplib() {
    let servers = Servers::start();
    let fp = openssl_fingerprint(&servers.cert);

    // IMAP over a pinned TLS tunnel.
    let imap_local = free_port();
    let mut imap = Tunnel::spawn(&[
        "tls".into(),
        "--connect".into(),
        format!("127.0.0.1:{}", servers.imaps),
        "--listen".into(),
        format!("127.0.0.1:{imap_local}"),
        "--pin".into(),
        fp.clone(),
    ]);
    imap.wait_greeting(imap_local, "* OK", UP);
    let read = decode_messages(&imap_read_all(
        ImapClient::Plain(imap_local),
        "alice",
        PASSWORD,
    ));
    assert_eq!(read.len(), 1);
    assert!(String::from_utf8_lossy(&read[0]).contains("Hello Alice.\r\n"));

    // SMTP submission (465) over a pinned TLS tunnel: the session is TLS
    // to the server, so AUTH is offered and a logged-in user may relay.
    let smtp_local = free_port();
    let mut smtp = Tunnel::spawn(&[
        "tls".into(),
        "--connect".into(),
        format!("127.0.0.1:{}", servers.smtps),
        "--listen".into(),
        format!("127.0.0.1:{smtp_local}"),
        "--pin".into(),
        fp.clone(),
    ]);
    smtp.wait_greeting(smtp_local, "220 ", UP);
    let out = swaks(
        smtp_local,
        "alice@example.org",
        "bob@elsewhere.example",
        &[
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice",
            "--auth-password",
            PASSWORD,
            "--body",
            "submitted through tls",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    servers.wait_relayed("bob", "submitted through tls");

    // A wrong pin: refused, showing the fingerprint seen.
    let wrong = format!("sha256:{}", ["AB"; 32].join(":"));
    let out = support::run(
        support::ownmail().args([
            "tunnel",
            "tls",
            "--stdio",
            "--connect",
            &format!("127.0.0.1:{}", servers.imaps),
            "--pin",
            &wrong,
        ]),
        b"a LOGOUT\r\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(err.contains(&fp), "{err}");
    assert!(out.stdout.is_empty());

    // --stdio, as mutt's tunnel and mbsync's Tunnel use it.
    let bin = env!("CARGO_BIN_EXE_ownmail");
    let command = format!(
        "{bin} tunnel tls --stdio --connect 127.0.0.1:{} --pin {fp}",
        servers.imaps
    );
    let read = decode_messages(&imap_read_all(
        ImapClient::Stream(&command),
        "alice",
        PASSWORD,
    ));
    assert_eq!(read.len(), 1);

    assert!(imap.stop(libc::SIGTERM).success());
    assert!(smtp.stop(libc::SIGTERM).success());
}
