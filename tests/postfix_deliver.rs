//! A real Postfix hands mail to `ownmail deliver` through the pipe(8)
//! transport that examples/postfix-main.cf describes: the example's own
//! master.cf and main.cf lines are read from the file and used as they are,
//! with the test's binary, configuration, pipe user and domain put in.
//!
//! Each test runs its own Postfix (tests/support/postfix.rs) on 127.0.0.1
//! and a high port, sends with Python's smtplib, and checks what Postfix
//! made of `deliver`'s exit code: 0 delivered, 75 deferred and retried,
//! 67 bounced back to the sender.
//!
//! Peers: Postfix (Debian: postfix) and python3; run as root (Postfix's
//! master needs it). Missing, they fail the test, never skip it. Nothing
//! leaves 127.0.0.1.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::dovecot::{give_to_mail_owner, mail_owner, user_name};
use support::postfix::Postfix;
use support::{Scratch, messages};

/// Long enough for a loaded machine; a healthy run needs well under a second
/// per step.
const WAIT: Duration = Duration::from_secs(30);

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/postfix-main.cf");

/// ownmail's users, their Maildirs given to the pipe user, and a Postfix
/// that delivers @example.test through the example's `ownmail` transport.
struct Site {
    // First: stopped before the Maildirs go.
    postfix: Postfix,
    scratch: Scratch,
}

impl Site {
    /// alice and carol, delivered to by the example's pipe transport.
    fn start() -> Site {
        Site::start_with(&["alice", "carol"], example_lines)
    }

    /// ownmail's `users`, and a Postfix configured by `postfix_cf`, which
    /// is given ownmail's configuration file and returns the main.cf and
    /// master.cf lines to add.
    fn start_with(users: &[&str], postfix_cf: impl FnOnce(&Path) -> (String, String)) -> Site {
        let scratch = Scratch::new();
        std::fs::write(
            scratch.config(),
            "hostname: mx.example.test\ndomains: [example.test]\ndata_dir: data\n",
        )
        .unwrap();
        for user in users {
            scratch.add_user(user, "secret");
        }
        // The pipe user reads the configuration and the users file and
        // writes the Maildirs.
        std::fs::set_permissions(scratch.dir.path(), std::fs::Permissions::from_mode(0o711))
            .unwrap();
        give_to_mail_owner(&scratch.dir.path().join("data"));

        let (main_cf, master_cf) = postfix_cf(&scratch.config());
        let postfix = Postfix::start(&main_cf, &master_cf);
        Site { postfix, scratch }
    }

    fn maildir(&self, user: &str) -> PathBuf {
        self.scratch.maildir(user)
    }

    fn inbox(&self, user: &str) -> Vec<PathBuf> {
        messages(&self.maildir(user))
    }

    /// Sends `message` with Python's smtplib; fails the test unless Postfix
    /// accepts it for `to`.
    fn send(&self, from: &str, to: &str, message: &[u8]) {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(SEND)
            .arg(self.postfix.port().to_string())
            .args([from, to])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("python3: {e}: install the Debian package python3"));
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), message).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "smtplib could not send to {to}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Waits until Postfix's queue is empty: everything delivered or bounced.
    fn wait_queue_empty(&self) {
        self.postfix
            .wait_for("an empty queue", WAIT, || self.postfix.queue().is_empty());
    }

    /// Waits until `user`'s INBOX holds `n` messages, and returns them.
    fn wait_inbox(&self, user: &str, n: usize) -> Vec<PathBuf> {
        self.postfix
            .wait_for(&format!("{n} message(s) in {user}'s INBOX"), WAIT, || {
                self.inbox(user).len() >= n
            });
        self.inbox(user)
    }
}

/// Sends stdin as one message: argv = port, envelope sender, recipient.
const SEND: &str = r#"
import smtplib, sys
port, sender, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    refused = s.sendmail(sender, [rcpt], sys.stdin.buffer.read())
    assert not refused, refused
"#;

/// The master.cf and main.cf lines of the example's pipe transport, with
/// this test's binary and configuration in argv, the pipe user that may
/// write the Maildirs in `user=`, and example.test for the example's
/// domain. Fails the test when the example no longer has them.
fn example_lines(config: &Path) -> (String, String) {
    let text = std::fs::read_to_string(EXAMPLE).unwrap();
    let (mut master_cf, mut main_cf) = (String::new(), String::new());
    let mut section = None;
    for line in text.lines() {
        if line.contains("In master.cf:") {
            section = Some(&mut master_cf);
            continue;
        }
        if line.contains("in main.cf") {
            section = Some(&mut main_cf);
            continue;
        }
        // Configuration lines are commented out with "#   ".
        match (line.strip_prefix("#   "), section.as_mut()) {
            (Some(cf), Some(out)) => {
                out.push_str(cf);
                out.push('\n');
            }
            (None, _) => section = None,
            _ => {}
        }
    }
    assert!(
        master_cf.contains("pipe") && master_cf.contains("argv=/usr/bin/ownmail "),
        "{EXAMPLE} no longer has a pipe transport running /usr/bin/ownmail:\n{master_cf}"
    );
    assert!(
        master_cf.contains("user=vmail"),
        "{EXAMPLE}: the pipe transport no longer runs as vmail:\n{master_cf}"
    );
    let (uid, _) = mail_owner();
    let argv = format!(
        "argv={} --config {} ",
        env!("CARGO_BIN_EXE_ownmail"),
        config.display()
    );
    let master_cf = master_cf
        .replace("argv=/usr/bin/ownmail ", &argv)
        .replace("user=vmail", &format!("user={}", user_name(uid)));
    let main_cf = main_cf.replace("example.org", "example.test");
    (main_cf, master_cf)
}

fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: Carol <carol@example.test>\r\n\
         To: Alice <alice@example.test>\r\n\
         Subject: {subject}\r\n\
         Date: Wed, 25 Nov 2026 14:00:00 +0000\r\n\
         Message-ID: <{}@example.test>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n\
         Hello Alice,\r\n\
         .a line that starts with a dot (SMTP doubles it, Postfix undoes that)\r\n\
         From the body: not an mbox envelope line, kept as it is\r\n\
         caf\u{e9} \u{2014} 8-bit UTF-8\r\n\
         \r\n\
         -- \r\n\
         Carol\r\n",
        subject.replace(' ', "-")
    )
    .into_bytes()
}

/// `bytes` with CRLF line ends made LF, as `deliver` stores them.
fn lf(bytes: &[u8]) -> Vec<u8> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .replace("\r\n", "\n")
        .into_bytes()
}

/// Asserts that `stored` is exactly `sent` (LF line ends) below the header
/// fields the delivery added: `deliver`'s Return-Path: and Delivered-To:,
/// then Postfix's one Received: field, and nothing else.
fn assert_delivered_as_sent(stored: &[u8], sent: &[u8], return_path: &str, recipient: &str) {
    let stored = String::from_utf8_lossy(stored);
    let sent = String::from_utf8(lf(sent)).unwrap();
    let Some(added) = stored.strip_suffix(&sent) else {
        panic!("the stored message does not end with the message as sent:\n{stored}");
    };
    let expected_top = format!("Return-Path: <{return_path}>\nDelivered-To: {recipient}\n");
    let Some(received) = added.strip_prefix(&expected_top) else {
        panic!("the stored message does not start with {expected_top:?}:\n{stored}");
    };
    // One Received: field, folded over lines that start with white space.
    assert!(
        received.starts_with("Received: from ")
            && received.lines().skip(1).all(|l| l.starts_with([' ', '\t'])),
        "between Delivered-To: and the message as sent there should be Postfix's \
         Received: field and nothing else, found:\n{added}"
    );
}

/// A message to alice lands once in her INBOX, as sent, below the
/// Return-Path:, Delivered-To: and Received: fields.
#[test]
fn delivers_through_the_example_pipe_transport() {
    let site = Site::start();
    let sent = message("pipe transport delivery");
    site.send("carol@example.test", "alice@example.test", &sent);

    let line = site
        .postfix
        .wait_log(&["to=<alice@example.test>", "status="], WAIT);
    assert!(
        line.contains("relay=ownmail") && line.contains("status=sent"),
        "Postfix should have delivered through the ownmail transport: {line}"
    );
    site.wait_queue_empty();
    let inbox = site.inbox("alice");
    assert_eq!(inbox.len(), 1, "exactly one copy: {inbox:?}");
    let stored = std::fs::read(&inbox[0]).unwrap();
    assert_delivered_as_sent(&stored, &sent, "carol@example.test", "alice@example.test");
    let stored = String::from_utf8_lossy(&stored);
    assert!(stored.contains("\nSubject: pipe transport delivery\n"));
    assert!(
        site.inbox("carol").is_empty(),
        "nothing should have bounced to carol"
    );
}

/// `deliver` exits 75 while alice's Maildir is not the pipe user's: Postfix
/// keeps the message in its deferred queue and bounces nothing; once the
/// owner is fixed, a flush delivers it, once.
#[test]
fn temporary_failure_is_deferred_then_delivered_once() {
    let site = Site::start();
    let maildir = site.maildir("alice");
    // root's now, and closed to everyone else.
    std::os::unix::fs::chown(&maildir, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&maildir, std::fs::Permissions::from_mode(0o700)).unwrap();

    let sent = message("deferred then delivered");
    site.send("carol@example.test", "alice@example.test", &sent);
    let line = site
        .postfix
        .wait_log(&["to=<alice@example.test>", "status="], WAIT);
    // "temporary failure" is pipe(8)'s text for exit 75 (EX_TEMPFAIL).
    assert!(
        line.contains("status=deferred")
            && line.contains("dsn=4.3.0")
            && line.contains("temporary failure"),
        "deliver's exit 75 should defer the message: {line}"
    );
    site.postfix
        .wait_for("the message in the deferred queue", WAIT, || {
            site.postfix
                .queue()
                .iter()
                .any(|m| m["queue_name"] == "deferred")
        });
    let queue = site.postfix.queue();
    assert_eq!(queue.len(), 1, "{queue:?}");
    let recipients = queue[0]["recipients"].as_array().unwrap();
    assert_eq!(recipients.len(), 1, "{queue:?}");
    assert_eq!(recipients[0]["address"], "alice@example.test");
    let log = site.postfix.log_text();
    assert!(
        !log.contains("status=bounced") && !log.contains("non-delivery notification"),
        "nothing may bounce on a temporary failure:\n{log}"
    );
    assert!(site.inbox("carol").is_empty(), "no bounce to carol");

    // The owner fixed, a retry delivers.
    give_to_mail_owner(&maildir);
    site.postfix.flush();
    let line = site.postfix.wait_log(
        &["to=<alice@example.test>", "relay=ownmail", "status=sent"],
        WAIT,
    );
    assert!(line.contains("dsn=2."), "{line}");
    site.wait_queue_empty();
    let inbox = site.inbox("alice");
    assert_eq!(inbox.len(), 1, "delivered exactly once: {inbox:?}");
    assert_delivered_as_sent(
        &std::fs::read(&inbox[0]).unwrap(),
        &sent,
        "carol@example.test",
        "alice@example.test",
    );
    let log = site.postfix.log_text();
    assert_eq!(
        log.matches("status=sent").count(),
        1,
        "one delivery only:\n{log}"
    );
    assert!(site.inbox("carol").is_empty(), "no bounce to carol");
}

/// bob is not in ownmail's users file: `deliver` exits 67 (EX_NOUSER),
/// Postfix bounces with 5.1.1 and our error text, and the bounce reaches
/// carol's INBOX with the null sender as its Return-Path.
#[test]
fn unknown_user_is_bounced_to_the_sender() {
    let site = Site::start();
    let mut sent = message("to nobody we know");
    sent = String::from_utf8(sent)
        .unwrap()
        .replace("To: Alice <alice@", "To: Bob <bob@")
        .into_bytes();
    site.send("carol@example.test", "bob@example.test", &sent);

    let line = site
        .postfix
        .wait_log(&["to=<bob@example.test>", "status="], WAIT);
    // "user unknown" and 5.1.1 are pipe(8)'s words for exit 67 (EX_NOUSER).
    assert!(
        line.contains("status=bounced")
            && line.contains("dsn=5.1.1")
            && line.contains("user unknown"),
        "an unknown user should bounce with 5.1.1 (exit 67): {line}"
    );
    assert!(
        line.contains("unknown user bob"),
        "the bounce should carry deliver's error text: {line}"
    );

    let inbox = site.wait_inbox("carol", 1);
    site.wait_queue_empty();
    let inbox_now = site.inbox("carol");
    assert_eq!(inbox_now, inbox, "exactly one bounce");
    let bounce = String::from_utf8_lossy(&std::fs::read(&inbox[0]).unwrap()).into_owned();
    assert!(
        bounce.starts_with("Return-Path: <>\nDelivered-To: carol@example.test\n"),
        "a bounce's Return-Path: is the null sender <>:\n{bounce}"
    );
    assert!(
        bounce.contains("<bob@example.test>") && bounce.contains("unknown user bob"),
        "the bounce should name bob and say why:\n{bounce}"
    );
    assert!(
        bounce.contains("Subject: to nobody we know"),
        "the bounce should carry the message's header:\n{bounce}"
    );
    assert!(
        !site.maildir("bob").exists(),
        "no Maildir may be made for an unknown user"
    );
    assert!(site.inbox("alice").is_empty());
}

/// The example's first form: local(8) runs `mailbox_command` as the
/// recipient's system account (here `nobody`, also an ownmail user) for a
/// domain in mydestination.
#[test]
fn mailbox_command_delivers_for_a_system_account() {
    let (uid, _) = mail_owner();
    let account = user_name(uid);
    let site = Site::start_with(&[&account, "carol"], |config| {
        // The example's settings for this form: its lines not commented out.
        let text = std::fs::read_to_string(EXAMPLE).unwrap();
        let settings: String = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(
            settings.starts_with("mailbox_command = /usr/bin/ownmail "),
            "{EXAMPLE} no longer sets mailbox_command first:\n{settings}"
        );
        let settings = settings.replace(
            "/usr/bin/ownmail ",
            &format!(
                "{} --config {} ",
                env!("CARGO_BIN_EXE_ownmail"),
                config.display()
            ),
        );
        (
            format!("mydestination = example.test\n{settings}"),
            "local unix - n n - - local\n".to_owned(),
        )
    });
    let recipient = format!("{account}@example.test");
    let sent = message("mailbox command delivery");
    site.send("carol@example.test", &recipient, &sent);

    let line = site
        .postfix
        .wait_log(&[&format!("to=<{recipient}>"), "status="], WAIT);
    assert!(
        line.contains("relay=local") && line.contains("status=sent"),
        "local(8) should have delivered through mailbox_command: {line}"
    );
    site.wait_queue_empty();
    let inbox = site.inbox(&account);
    assert_eq!(inbox.len(), 1, "exactly one copy: {inbox:?}");
    let stored = String::from_utf8_lossy(&std::fs::read(&inbox[0]).unwrap()).into_owned();
    assert!(
        stored.starts_with(&format!(
            "Return-Path: <carol@example.test>\nDelivered-To: {recipient}\n"
        )),
        "{stored}"
    );
    assert!(
        stored.ends_with(std::str::from_utf8(&lf(&sent)).unwrap()),
        "{stored}"
    );
}
