//! `ownmail spamcheck` through the real binary: headers checked against
//! what the real SpamAssassin writes for the same message, training, exit
//! codes, and `deliver` filing spam into Junk when `spam.enabled`.

mod support;

use std::process::Command;

use support::{Scratch, run};

const SPAMMY: &str = "Subject: cheap pills\nFrom: seller@pills.example\nTo: you@example.org\nDate: Mon, 7 Oct 2002 10:00:00 +0000\nMessage-ID: <1@pills.example>\n\nbuy cheap viagra pills now, best price guaranteed\n";
const HAMMY: &str = "Subject: meeting notes\nFrom: colleague@work.example\nTo: you@example.org\nDate: Mon, 7 Oct 2002 10:00:00 +0000\nMessage-ID: <2@work.example>\n\nthe meeting about the project schedule is moved to thursday\n";

/// Trains a database at `db` from 20 spam and 20 ham written into `dir`.
fn train(dir: &std::path::Path, db: &std::path::Path, extra: &[&str]) {
    let (spam, ham) = (dir.join("spam"), dir.join("ham"));
    std::fs::create_dir_all(&spam).unwrap();
    std::fs::create_dir_all(&ham).unwrap();
    for i in 0..20 {
        std::fs::write(
            spam.join(format!("{i}")),
            SPAMMY.replace("cheap pills", &format!("cheap pills {i}")),
        )
        .unwrap();
        std::fs::write(
            ham.join(format!("{i}")),
            HAMMY.replace("notes", &format!("notes {i}")),
        )
        .unwrap();
    }
    let out = support::succeed(
        support::ownmail()
            .args(extra)
            .args(["spamcheck", "--db"])
            .arg(db)
            .args(["train", "--spam"])
            .arg(&spam)
            .arg("--ham")
            .arg(&ham),
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("learnt 20 spam and 20 ham") && said.contains("12 bytes per token"),
        "{said}"
    );
}

fn header_block(message: &str) -> Vec<String> {
    // The X-Spam-* fields, unfolded, in order.
    let head = message.split("\n\n").next().unwrap_or("");
    let mut fields: Vec<String> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            fields.push(line.to_owned());
        }
    }
    fields
        .into_iter()
        .filter(|f| f.starts_with("X-Spam-"))
        .collect()
}

/// The shape of `X-Spam-Status` that client rules match on.
fn status_shape(status: &str) -> (String, bool) {
    let v = status.strip_prefix("X-Spam-Status: ").unwrap();
    let (yes, rest) = v.split_once(", ").unwrap();
    let parts: Vec<&str> = rest.split(' ').collect();
    let keys: Vec<&str> = parts
        .iter()
        .filter_map(|p| p.split_once('=').map(|(k, _)| k))
        .collect();
    let ok = parts[0].starts_with("score=")
        && parts[0][6..].parse::<f64>().is_ok()
        && parts[1].starts_with("required=")
        && parts[2].starts_with("tests=");
    (format!("{yes} {}", keys.join(" ")), ok)
}

#[test]
fn headers_match_what_spamassassin_writes() {
    let dir = tempfile::tempdir().unwrap();
    let message = "Subject: test\nTo: a@example.org\n\nhello there\n";
    // The real SpamAssassin, local tests only, headers added in place.
    let sa = run(
        Command::new("spamassassin")
            .args(["-L", "--cf=report_safe 0"])
            .env("HOME", dir.path()),
        message.as_bytes(),
    );
    assert!(
        sa.status.success(),
        "spamassassin (Debian package spamassassin) must be installed: {}",
        String::from_utf8_lossy(&sa.stderr)
    );
    let sa_out = String::from_utf8(sa.stdout).unwrap();
    let ours = run(
        support::ownmail()
            .args(["spamcheck", "--db"])
            .arg(dir.path().join("none.db")),
        message.as_bytes(),
    );
    assert!(
        ours.status.success(),
        "{}",
        String::from_utf8_lossy(&ours.stderr)
    );
    let ours = String::from_utf8(ours.stdout).unwrap();
    let (theirs, mine) = (header_block(&sa_out), header_block(&ours));
    let names = |h: &[String]| -> Vec<String> {
        h.iter()
            .map(|f| f.split(':').next().unwrap().to_owned())
            .filter(|n| n != "X-Spam-Score" && n != "X-Spam-Report")
            .collect()
    };
    // Same fields in the same order (X-Spam-Score is ours alone; SpamAssassin
    // writes it only when configured to).
    assert_eq!(
        names(&mine),
        names(&theirs),
        "\nours:\n{ours}\nSpamAssassin:\n{sa_out}"
    );
    let status = |h: &[String]| {
        h.iter()
            .find(|f| f.starts_with("X-Spam-Status:"))
            .unwrap()
            .clone()
    };
    let (their_shape, their_ok) = status_shape(&status(&theirs));
    let (my_shape, my_ok) = status_shape(&status(&mine));
    assert!(their_ok && my_ok);
    assert_eq!(my_shape, their_shape);
    // Same verdict and the same stars for the same score range.
    let level = |h: &[String]| {
        h.iter()
            .find(|f| f.starts_with("X-Spam-Level:"))
            .unwrap()
            .clone()
    };
    let stars = |l: String| l.matches('*').count();
    let score_of = |s: &str| {
        s.split("score=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    assert_eq!(
        stars(level(&mine)),
        score_of(&status(&mine)).max(0.0).floor() as usize
    );
    assert_eq!(
        stars(level(&theirs)),
        score_of(&status(&theirs)).max(0.0).floor() as usize
    );
    // The folding: continuation lines start with a tab, as SpamAssassin's.
    for line in ours.lines().take_while(|l| !l.is_empty()) {
        assert!(!line.starts_with(' '), "{line:?}");
    }
    // The body is untouched in both.
    assert!(ours.ends_with("\n\nhello there\n") && sa_out.ends_with("\n\nhello there\n"));
}

#[test]
fn spamcheck_modes_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("site.db");
    train(dir.path(), &db, &[]);
    let check = |args: &[&str], msg: &str| {
        run(
            support::ownmail()
                .args(["spamcheck", "--db"])
                .arg(&db)
                .args(args),
            msg.as_bytes(),
        )
    };
    let spam_msg = format!("X-Spam-Flag: NO\nX-Spam-Status: No, score=-9\n{SPAMMY}");
    let out = check(&[], &spam_msg);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("X-Spam-Flag: YES\n") && text.contains("X-Spam-Status: Yes, score="),
        "{text}"
    );
    assert!(
        !text.contains("X-Spam-Flag: NO") && !text.contains("score=-9"),
        "the sender's own X-Spam fields are removed"
    );
    assert!(text.ends_with(&SPAMMY[SPAMMY.find("Subject").unwrap()..]));
    assert_eq!(check(&["--exit-code"], &spam_msg).status.code(), Some(1));
    assert_eq!(check(&["--exit-code"], HAMMY).status.code(), Some(0));
    let score = String::from_utf8(check(&["--score-only"], HAMMY).stdout).unwrap();
    assert!(score.trim().parse::<f64>().unwrap() < 0.0, "{score}");
    let report = String::from_utf8(check(&["--report"], SPAMMY).stdout).unwrap();
    assert!(
        report.contains("BAYES_99") && report.contains("Bayes spam probability"),
        "{report}"
    );
    let missing = check(&["/nonexistent/message"], "");
    assert_eq!(missing.status.code(), Some(66));
    // --forget undoes training: back to untrained, no Bayes rule.
    let out = support::ownmail()
        .args(["spamcheck", "--db"])
        .arg(&db)
        .args(["train", "--forget", "--spam"])
        .arg(dir.path().join("spam"))
        .arg("--ham")
        .arg(dir.path().join("ham"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let report = String::from_utf8(check(&["--report"], SPAMMY).stdout).unwrap();
    assert!(!report.contains("BAYES"), "{report}");
    // A bad rules file is a configuration error naming the line.
    std::fs::write(dir.path().join("bad.rules"), "HTML_ONLY 1\nNOPE 2\n").unwrap();
    let out = check(
        &["--rules", dir.path().join("bad.rules").to_str().unwrap()],
        HAMMY,
    );
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2: no rule is named NOPE"));
}

/// The one message in `folder`: it starts with `head` and then our
/// checker's header, and carries `X-Spam-Flag: YES` exactly when `spam`.
fn filed(folder: &std::path::Path, head: &str, spam: bool) -> String {
    let files = support::messages(folder);
    assert_eq!(files.len(), 1, "{}", folder.display());
    let stored = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        stored.starts_with(&format!("{head}X-Spam-Checker-Version: ownmail")),
        "{stored}"
    );
    assert_eq!(stored.contains("X-Spam-Flag: YES"), spam, "{stored}");
    stored
}

#[test]
fn deliver_files_spam_into_junk_when_enabled() {
    let s = Scratch::new();
    s.add_user("alice", "pw");
    let config = std::fs::read_to_string(s.config()).unwrap();
    std::fs::write(s.config(), format!("{config}spam:\n  enabled: true\n")).unwrap();
    let db = s.dir.path().join("data/spam/site.db");
    train(
        s.dir.path(),
        &db,
        &["--config", s.config().to_str().unwrap()],
    );
    for (msg, folder) in [(SPAMMY, ".Junk"), (HAMMY, "")] {
        let out = run(s.cmd().args(["deliver", "--user", "alice"]), msg.as_bytes());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        filed(
            &s.maildir("alice").join(folder),
            "Delivered-To: alice@example.org\n",
            folder == ".Junk",
        );
    }
}

/// `serve-smtp` with `spam.enabled`: mail from outside, sent by swaks, is
/// classified for each local user, tagged, and spam is filed into Junk.
#[test]
fn serve_smtp_files_spam_into_junk_when_enabled() {
    let s = support::smtp::Server::start(
        "  trusted_networks: [10.0.0.0/8]\n",
        "spam:\n  enabled: true\n",
    );
    let db = s.scratch.dir.path().join("data/spam/site.db");
    train(
        s.scratch.dir.path(),
        &db,
        &["--config", s.scratch.config().to_str().unwrap()],
    );
    for (i, (msg, folder)) in [(SPAMMY, ".Junk"), (HAMMY, "")].into_iter().enumerate() {
        let file = s.scratch.dir.path().join(format!("msg{i}"));
        std::fs::write(&file, msg.replace('\n', "\r\n")).unwrap();
        let out = s.swaks(
            s.port,
            &[
                "--from",
                "sender@example.net",
                "--to",
                "alice@example.org",
                "--data",
                file.to_str().unwrap(),
            ],
        );
        let t = support::smtp::transcript(&out);
        assert!(out.status.success() && t.contains("250 2.0.0 OK"), "{t}");
        let stored = filed(
            &s.scratch.maildir("alice").join(folder),
            "Return-Path: <sender@example.net>\nDelivered-To: alice@example.org\n",
            folder == ".Junk",
        );
        assert!(
            stored.contains("\nReceived: from client.example"),
            "{stored}"
        );
    }
}

/// `fetch` with `spam.enabled`, from Dovecot's POP3 into a user of ours:
/// spam tagged into Junk, ham tagged into the account's folder.
#[test]
fn fetch_files_spam_into_junk_when_enabled() {
    use support::fetch::{Local, PASSWORD, ServerSetup, account, show};
    let mut server = ServerSetup::new().start();
    server.add(
        None,
        &[SPAMMY.as_bytes().to_vec(), HAMMY.as_bytes().to_vec()],
    );
    let local = Local::new();
    let head = "hostname: mail.example.org\ndomains: [example.org]\ndata_dir: data\n";
    std::fs::write(local.config(), head).unwrap();
    let add = run(
        local
            .cmd()
            .args(["user", "add", "alice", "--password-stdin"]),
        b"pw\n",
    );
    assert!(add.status.success(), "{}", show(&add));
    train(
        local.dir.path(),
        &local.dir.path().join("data/spam/site.db"),
        &["--config", local.config().to_str().unwrap()],
    );
    let pw = local.password_file(PASSWORD);
    let acct = account(
        "isp",
        "pop3",
        server.dovecot.pop3_port(),
        "none",
        &format!(
            "password_file: {}\ndeliver_to: {{user: alice, folder: ISP}}",
            pw.display()
        ),
    );
    std::fs::write(
        local.config(),
        format!("{head}spam:\n  enabled: true\nfetch:\n  accounts:\n{acct}"),
    )
    .unwrap();
    let out = local.fetch(&["-q"]);
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).starts_with("isp: 2 messages fetched"),
        "{}",
        show(&out)
    );
    let maildir = local.dir.path().join("data/mail/alice");
    for (folder, subject, spam) in [
        (".Junk", "cheap pills", true),
        (".ISP", "meeting notes", false),
    ] {
        let stored = filed(
            &maildir.join(folder),
            "Delivered-To: alice@example.org\n",
            spam,
        );
        assert!(stored.contains(subject), "{stored}");
    }
    assert!(support::messages(&maildir).is_empty(), "nothing in INBOX");
}

/// Learning from the user, end to end: Python's imaplib against the real
/// `ownmail serve-imap`. A message moved into Junk (UID MOVE) trains the
/// user's database as spam, so `spamcheck --score-only` of a similar
/// message goes up; moved back out to the INBOX it trains as ham and the
/// score goes down. Every command answers OK.
#[test]
fn imap_moves_into_and_out_of_junk_train_the_users_database() {
    let s = Scratch::new();
    let cert = support::dovecot::make_certificate(s.dir.path());
    std::fs::write(
        s.config(),
        format!(
            "hostname: mail.example.org\ndomains: [example.org]\ndata_dir: data\ntls: {{cert: {}, key: {}}}\nspam:\n  enabled: true\n",
            cert.display(),
            s.dir.path().join("key.pem").display()
        ),
    )
    .unwrap();
    s.add_user("alice", "imap-secret");
    train(
        s.dir.path(),
        &s.dir.path().join("data/spam/site.db"),
        &["--config", s.config().to_str().unwrap()],
    );
    const NEW_KIND: &str = "From: garden@seeds.example\nTo: alice@example.org\nSubject: heirloom tomato catalogue\nDate: Mon, 7 Oct 2002 10:00:00 +0000\nMessage-ID: <7@seeds.example>\n\nheirloom tomato seeds catalogue, order your greenhouse kit\n";
    let out = run(
        s.cmd().args(["deliver", "--user", "alice"]),
        NEW_KIND.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let score = || -> f64 {
        let out = run(
            s.cmd()
                .args(["spamcheck", "--user", "alice", "--score-only"]),
            NEW_KIND.replace("<7@", "<8@").as_bytes(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    // Training runs in the background: wait for the score to move.
    let settle = |before: f64, up: bool| -> f64 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let now = score();
            if (up && now > before) || (!up && now < before) {
                return now;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "score stayed at {now} (was {before}, expected it to go {})",
                if up { "up" } else { "down" }
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let before = score();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(
        s.cmd()
            .args(["serve-imap", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "serve-imap did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let imap = |script: &str| {
        let out = Command::new("python3")
            .arg("-c")
            .arg(format!(
                r#"
import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
M = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]), timeout=30)
M.starttls(ssl_context=ctx)
assert M.login("alice", "imap-secret")[0] == "OK"
def ok(r):
    assert r[0] == "OK", r
    return r[1]
{script}
M.logout()
"#
            ))
            .arg(port.to_string())
            .arg(&cert)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "imaplib: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    imap(
        "ok(M.select('INBOX'))\nuid = ok(M.uid('SEARCH', 'ALL'))[0].split()[-1]\nok(M.uid('MOVE', uid, 'Junk'))",
    );
    let junked = settle(before, true);
    imap("ok(M.select('Junk'))\nok(M.uid('MOVE', '1:*', 'INBOX'))");
    let back = settle(junked, false);
    assert!(before < junked && back < junked, "{before} {junked} {back}");
    let user_db = s.dir.path().join("data/spam/users/alice.db");
    assert!(user_db.is_file(), "the user's own database was trained");
}
