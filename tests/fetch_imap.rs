//! `ownmail fetch` against Dovecot's IMAP (Debian: dovecot-imapd), on
//! loopback with a self-signed certificate made for the test: the corpus
//! over two folders in keep and delete modes, STARTTLS and implicit TLS,
//! login methods, a changed UIDVALIDITY, and `--idle`. A missing Dovecot
//! fails the tests.

mod support;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::fetch::*;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn imap_account(server: &Server, local: &Local, extra: &str) -> String {
    let pw = local.password_file(PASSWORD);
    account(
        "work",
        "imap",
        server.dovecot.imap_port(),
        "none",
        &format!("password_file: {}\n{extra}", pw.display()),
    )
}

#[test]
fn the_corpus_in_two_folders_is_fetched_once_kept_then_expunged() {
    let mut server = ServerSetup::new().start();
    let corpus = corpus_messages();
    let (inbox, archive) = corpus.split_at(4000);
    server.add(None, inbox);
    server.add(Some("Archive"), archive);
    let local = Local::new();
    let block = imap_account(
        &server,
        &local,
        "keep: true\nfolders: [INBOX, Archive]\ndeliver_to: {maildir: Maildir}",
    );
    local.write(&block);

    let started = Instant::now();
    let out = local.fetch(&["-q"]);
    eprintln!("6,046 messages over IMAP in {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).starts_with("work: 6046 messages fetched ("),
        "{}",
        show(&out)
    );
    // IMAP gives the exact bytes (a message without a last line end stays so).
    let expected: Vec<Vec<u8>> = corpus.iter().map(|m| crlf_to_lf(m)).collect();
    assert_same_messages(&stored(&local.maildir("Maildir")), &expected, "keep mode");
    assert_eq!(server.held(None).len(), 4000);
    assert_eq!(server.held(Some("Archive")).len(), 2046);

    let out = local.fetch(&["-q"]);
    assert_eq!(
        (out.status.code(), stdout(&out).as_str()),
        (Some(0), ""),
        "{}",
        show(&out)
    );
    let new = vec![b"Message-ID: <late@x>\nSubject: late\n\nlate\n".to_vec()];
    server.add(Some("Archive"), &new);
    let out = local.fetch(&["-q"]);
    assert!(
        stdout(&out).starts_with("work: 1 message fetched"),
        "{}",
        show(&out)
    );
    let out = local.fetch(&["-q"]);
    assert_eq!(stdout(&out), "", "{}", show(&out));

    // Delete mode: what was fetched is expunged, nothing fetched again.
    local.write(&block.replace("keep: true", "keep: false"));
    let out = local.fetch(&[]);
    assert_eq!(
        stdout(&out),
        "work: no new messages, 6047 deleted from the server\n",
        "{}",
        show(&out)
    );
    assert!(server.held(None).is_empty() && server.held(Some("Archive")).is_empty());
    let mut all = expected;
    all.extend(new.iter().map(|m| crlf_to_lf(m)));
    assert_same_messages(
        &stored(&local.maildir("Maildir")),
        &all,
        "after delete mode",
    );
    // New mail in delete mode: fetched, then expunged, once.
    server.add(None, &[b"Subject: fresh\n\nx\n".to_vec()]);
    let out = local.fetch(&["-q"]);
    assert_eq!(
        stdout(&out),
        "work: 1 message fetched (21 B), 1 deleted from the server\n",
        "{}",
        show(&out)
    );
    assert!(server.held(None).is_empty());
    assert_eq!(stored(&local.maildir("Maildir")).len(), 6048);
    assert!(
        server.dovecot.log_problems().is_empty(),
        "{:?}",
        server.dovecot.log_problems()
    );
}

#[test]
fn starttls_implicit_tls_wrong_pin_and_wrong_password() {
    let mut server = ServerSetup::new().start();
    let local = Local::new();
    let pw = local.password_file(PASSWORD);
    let fingerprint = server.fingerprint();
    let block = |name: &str, port: u16, tls: &str, extra: &str| {
        account(
            name,
            "imap",
            port,
            tls,
            &format!(
                "password_file: {}\ndeliver_to: {{maildir: Maildir}}\n{extra}",
                pw.display()
            ),
        )
    };
    let pin = format!("tls_fingerprint: {fingerprint}");
    for (i, (name, port, tls)) in [
        ("starttls", server.dovecot.imap_port(), "starttls"),
        ("implicit", server.dovecot.imaps_port(), "tls"),
    ]
    .into_iter()
    .enumerate()
    {
        server.add(None, &[format!("Subject: {name}\n\n{i}\n").into_bytes()]);
        local.write(&block(name, port, tls, &pin));
        let out = local.fetch(&["-q"]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", show(&out));
        assert!(
            stdout(&out).starts_with(&format!("{name}: 1 message fetched")),
            "{name}: {}",
            show(&out)
        );
    }
    assert!(
        server
            .dovecot
            .log_text()
            .matches("Login: user=<remote>")
            .count()
            == 2
    );

    server.add(None, &[b"Subject: stays\n\nx\n".to_vec()]);
    let wrong_pin = format!("tls_fingerprint: sha256:{}", ["00"; 32].join(":"));
    let wrong_pw = local.dir.path().join("wrong.pass");
    std::fs::write(&wrong_pw, "nope\n").unwrap();
    // The refused certificate's fingerprint, to check and pin. Regression:
    // fetch did not show it (native-tls keeps it).
    let untrusted =
        format!("not trusted: self-signed certificate; its fingerprint is {fingerprint}");
    let cases = [
        (
            block("pin", server.dovecot.imaps_port(), "tls", &wrong_pin),
            "not the pinned",
        ),
        (
            block(
                "pin-starttls",
                server.dovecot.imap_port(),
                "starttls",
                &wrong_pin,
            ),
            "not the pinned",
        ),
        (
            block("untrusted", server.dovecot.imaps_port(), "tls", ""),
            untrusted.as_str(),
        ),
        (
            account(
                "password",
                "imap",
                server.dovecot.imaps_port(),
                "tls",
                &format!(
                    "password_file: {}\ndeliver_to: {{maildir: Maildir}}\n{pin}",
                    wrong_pw.display()
                ),
            ),
            "refused the login of remote (LOGIN): [AUTHENTICATIONFAILED] Authentication failed.",
        ),
    ];
    for (block, says) in cases {
        local.write(&block);
        let out = local.fetch(&["-q"]);
        assert_eq!(out.status.code(), Some(1), "{block}: {}", show(&out));
        assert!(
            stderr(&out).contains(says) && stderr(&out).lines().count() == 1,
            "{}",
            show(&out)
        );
        assert_eq!(stdout(&out), "");
    }
    let out = local.fetch(&[]);
    assert!(stderr(&out).contains(&format!("the password in {}", wrong_pw.display())));
    // A failed run claims nothing on standard output ("no new messages").
    assert_eq!(stdout(&out), "", "{}", show(&out));
    assert_eq!(server.held(None).len(), 1, "nothing deleted");
    assert_eq!(stored(&local.maildir("Maildir")).len(), 2);
    assert_eq!(
        server
            .dovecot
            .log_text()
            .matches("Login: user=<remote>")
            .count(),
        2
    );
}

#[test]
fn every_login_method_reaches_the_mailbox() {
    let mut server = ServerSetup::new().start();
    let local = Local::new();
    let pw = local.password_file(PASSWORD);
    let token = format!("token_command: \"echo '{PASSWORD}'\"");
    let password = format!("password_file: {}", pw.display());
    let cases = [
        ("login", &password, "PLAIN"),
        ("plain", &password, "PLAIN"),
        ("auto", &password, "PLAIN"),
        ("xoauth2", &token, "XOAUTH2"),
        ("oauthbearer", &token, "OAUTHBEARER"),
        ("auto", &token, "XOAUTH2"),
    ];
    for (i, (auth, cred, logged)) in cases.into_iter().enumerate() {
        server.add(None, &[format!("Subject: {auth} {i}\n\nx\n").into_bytes()]);
        local.write(&account(
            "work",
            "imap",
            server.dovecot.imap_port(),
            "none",
            &format!("{cred}\nauth: {auth}\ndeliver_to: {{maildir: Maildir}}"),
        ));
        let out = local.fetch(&["-q"]);
        assert!(
            stdout(&out).starts_with("work: 1 message fetched"),
            "{auth}: {}",
            show(&out)
        );
        let log = server.dovecot.log_text();
        let last = log
            .lines()
            .rev()
            .find(|l| l.contains("Login: user=<remote>"))
            .unwrap();
        assert!(
            last.contains(&format!("method={logged},")),
            "{auth}: {last}"
        );
    }
    // A refused token: the error challenge is answered, NO reported.
    local.write(&account(
        "work",
        "imap",
        server.dovecot.imap_port(),
        "none",
        "token_command: echo expired\nauth: oauthbearer\ndeliver_to: {maildir: Maildir}",
    ));
    let out = local.fetch(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("(AUTHENTICATE OAUTHBEARER)"),
        "{}",
        show(&out)
    );
    // A folder that does not exist: named in the error.
    local.write(&imap_account(
        &server,
        &local,
        "folders: [INBOX, Nope]\ndeliver_to: {maildir: Maildir}",
    ));
    let out = local.fetch(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("SELECT Nope failed"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_changed_uidvalidity_is_matched_by_message_id_and_size_and_said() {
    let mut server = ServerSetup::new().start();
    let with_id: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("Message-ID: <m{i}@example.net>\nSubject: {i}\n\nbody {i}\n").into_bytes())
        .collect();
    let without_id = b"Subject: no id\n\nbody\n".to_vec();
    server.add(None, &with_id);
    server.add(None, std::slice::from_ref(&without_id));
    let local = Local::new();
    let pw = local.password_file(PASSWORD);
    let write = |port: u16| {
        local.write(&account(
            "work",
            "imap",
            port,
            "none",
            &format!(
                "password_file: {}\nkeep: true\ndeliver_to: {{maildir: Maildir}}",
                pw.display()
            ),
        ))
    };
    write(server.dovecot.imap_port());
    let out = local.fetch(&["-q"]);
    assert!(
        stdout(&out).starts_with("work: 6 messages fetched"),
        "{}",
        show(&out)
    );

    // The server forgets its UIDs (a restore, a migration): UIDVALIDITY
    // changes. The mailbox moves out of the stopped server's folder first.
    let keep = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(keep.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    let maildir = keep.path().join("mail");
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(&server.maildir)
        .arg(&maildir)
        .status()
        .unwrap();
    assert!(cp.success());
    server.dovecot.stop();
    for entry in std::fs::read_dir(&maildir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with("dovecot") {
            std::fs::remove_file(maildir.join(&name)).unwrap();
        }
    }
    // UIDVALIDITY is a time in seconds: make sure it moves.
    std::thread::sleep(Duration::from_millis(1100));
    let mut setup = support::dovecot::Setup::new();
    setup.imap().user_at(USER, PASSWORD, &maildir);
    let restarted = setup.start();
    let late = b"Message-ID: <late@example.net>\nSubject: late\n\nlate\n".to_vec();
    let path = maildir.join("new/1800000000.M1P1.late");
    std::fs::write(&path, &late).unwrap();
    support::dovecot::give_to_mail_owner(&path);
    write(restarted.imap_port());

    let out = local.fetch(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    assert!(text.starts_with("work: 2 messages fetched"), "{text}");
    assert!(
        text.contains("work: INBOX: UIDVALIDITY changed from ")
            && text.contains("5 messages matched one fetched before (same Message-ID and size) and are not fetched again; the other 2 are fetched"),
        "{text}"
    );
    // The one without a Message-ID could not be matched: it is there twice,
    // and said so above; the rest once.
    let mut expected: Vec<Vec<u8>> = with_id.clone();
    expected.push(without_id.clone());
    expected.push(without_id);
    expected.push(late);
    assert_same_messages(
        &stored(&local.maildir("Maildir")),
        &expected,
        "after the change",
    );
    let out = local.fetch(&["-q"]);
    assert_eq!(stdout(&out), "", "settled: {}", show(&out));
}

#[test]
fn idle_fetches_mail_as_it_arrives() {
    let mut server = ServerSetup::new().start();
    server.add(None, &[b"Subject: before\n\nx\n".to_vec()]);
    let local = Local::new();
    local.write(&imap_account(
        &server,
        &local,
        "deliver_to: {maildir: Maildir}",
    ));
    let mut child = local
        .cmd()
        .args(["fetch", "--idle"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let md = local.maildir("Maildir");
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while stored(&md).len() < n {
            assert!(
                Instant::now() < deadline,
                "{n} messages did not arrive in 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(1);
    // Give it a moment to be in IDLE, then new mail arrives.
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    server.add(None, &[b"Subject: during\n\ny\n".to_vec()]);
    wait_for(2);
    let took = started.elapsed();
    assert!(server.held(None).len() <= 1);
    // SAFETY: the PID of the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(out.contains("work: 1 message fetched"), "{out}");
    // IDLE, not the 5-minute poll: Dovecot tells at once.
    assert!(took < Duration::from_secs(20), "{took:?}");
}
