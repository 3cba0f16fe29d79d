//! `ownmail fetch` against Dovecot's POP3 (Debian: dovecot-pop3d), on
//! loopback with a self-signed certificate made for the test: the whole
//! corpus in delete and keep modes, TLS in its three forms, every login
//! method, and the errors people meet. A missing Dovecot fails the tests.

mod support;

use std::time::{Duration, Instant};

use support::fetch::*;

/// An account block for the server's POP3 port without TLS (loopback).
fn plain_account(server: &Server, local: &Local, extra: &str) -> String {
    let pw = local.password_file(PASSWORD);
    account(
        "isp",
        "pop3",
        server.dovecot.pop3_port(),
        "none",
        &format!("password_file: {}\n{extra}", pw.display()),
    )
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_corpus_is_fetched_once_deleted_and_new_mail_only_once() {
    let mut server = ServerSetup::new().start();
    let corpus = corpus_messages();
    server.add(None, &corpus);
    let local = Local::new();
    local.write(&plain_account(
        &server,
        &local,
        "deliver_to: {maildir: Maildir}",
    ));

    let started = Instant::now();
    let out = local.fetch(&[]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).starts_with("isp: 6046 messages fetched (")
            && stdout(&out).contains("6046 deleted from the server"),
        "{}",
        show(&out)
    );
    eprintln!("6,046 messages over POP3 in {took:?}");
    // Byte for byte what the server held (line ends as LF, as Maildir stores).
    let expected: Vec<Vec<u8>> = corpus.iter().map(|m| via_pop3(m)).collect();
    assert_same_messages(&stored(&local.maildir("Maildir")), &expected, "first run");
    assert!(
        server.held(None).is_empty(),
        "the server still has messages"
    );

    // Nothing new: nothing fetched, and with -q nothing said at all.
    let out = local.fetch(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(stdout(&out), "isp: no new messages\n");
    let out = local.fetch(&["-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!((stdout(&out).as_str(), stderr(&out).as_str()), ("", ""));

    // New mail between runs: fetched once.
    let new: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            format!("Message-ID: <new{i}@example.net>\nSubject: new {i}\n\nbody {i}\n").into_bytes()
        })
        .collect();
    server.add(None, &new);
    let out = local.fetch(&["-q"]);
    assert_eq!(
        stdout(&out),
        "isp: 3 messages fetched (174 B), 3 deleted from the server\n",
        "{}",
        show(&out)
    );
    let out = local.fetch(&["-q"]);
    assert_eq!(stdout(&out), "", "{}", show(&out));
    let mut all = expected;
    all.extend(new.iter().map(|m| via_pop3(m)));
    assert_same_messages(&stored(&local.maildir("Maildir")), &all, "after new mail");
    assert!(
        server.dovecot.log_problems().is_empty(),
        "{:?}",
        server.dovecot.log_problems()
    );
}

#[test]
fn keep_mode_leaves_the_corpus_on_the_server_and_fetches_each_message_once() {
    let mut server = ServerSetup::new().start();
    let corpus = corpus_messages();
    server.add(None, &corpus);
    let local = Local::new();
    // A user of ours, as `deliver --user` stores it: Delivered-To on top.
    std::fs::write(
        local.config(),
        "hostname: mail.example.org\ndomains: [example.org]\ndata_dir: data\n",
    )
    .unwrap();
    let add = support::run(
        local
            .cmd()
            .args(["user", "add", "alice", "--password-stdin"]),
        b"local password\n",
    );
    assert!(add.status.success(), "{}", show(&add));
    let block = plain_account(&server, &local, "keep: true\ndeliver_to: {user: alice}");
    local.write(&block);

    let out = local.fetch(&["-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).starts_with("isp: 6046 messages fetched ("),
        "{}",
        show(&out)
    );
    assert!(!stdout(&out).contains("deleted"), "{}", show(&out));
    let inbox = local.dir.path().join("data/mail/alice");
    let with_header = |m: &Vec<u8>| {
        let mut e = b"Delivered-To: alice@example.org\n".to_vec();
        e.extend(via_pop3(m));
        e
    };
    let expected: Vec<Vec<u8>> = corpus.iter().map(with_header).collect();
    assert_same_messages(&stored(&inbox), &expected, "keep mode");
    assert_eq!(
        server.held(None).len(),
        6046,
        "keep: true deleted something"
    );

    // Nothing twice; new mail once.
    let out = local.fetch(&["-q"]);
    assert_eq!(
        (out.status.code(), stdout(&out).as_str()),
        (Some(0), ""),
        "{}",
        show(&out)
    );
    let new = vec![b"Subject: later\n\nlater\n".to_vec()];
    server.add(None, &new);
    let out = local.fetch(&["-q"]);
    assert!(
        stdout(&out).starts_with("isp: 1 message fetched"),
        "{}",
        show(&out)
    );
    let out = local.fetch(&["-q"]);
    assert_eq!(stdout(&out), "", "{}", show(&out));
    assert_eq!(stored(&inbox).len(), 6047);

    // --all fetches everything again, on purpose.
    let out = local.fetch(&["-q", "--all"]);
    assert!(
        stdout(&out).starts_with("isp: 6047 messages fetched"),
        "{}",
        show(&out)
    );
    assert_eq!(stored(&inbox).len(), 2 * 6047);

    // keep: false now: everything fetched before is deleted, nothing fetched.
    local.write(&block.replace("keep: true", "keep: false"));
    let out = local.fetch(&["--keep"]);
    assert_eq!(
        stdout(&out),
        "isp: no new messages\n",
        "--keep overrides: {}",
        show(&out)
    );
    assert_eq!(server.held(None).len(), 6047);
    let out = local.fetch(&[]);
    assert_eq!(
        stdout(&out),
        "isp: no new messages, 6047 deleted from the server\n",
        "{}",
        show(&out)
    );
    assert!(server.held(None).is_empty());
    assert_eq!(stored(&inbox).len(), 2 * 6047);
    // And the state forgets them once the server lists something again
    // (an empty listing forgets nothing: some servers show one for a moment).
    let out = local.fetch(&[]);
    assert_eq!(stdout(&out), "isp: no new messages\n", "{}", show(&out));
    server.add(None, &[b"Subject: one more\n\nx\n".to_vec()]);
    let out = local.fetch(&["-q"]);
    assert!(
        stdout(&out).starts_with("isp: 1 message fetched"),
        "{}",
        show(&out)
    );
    let out = local.fetch(&["-q"]);
    assert_eq!(stdout(&out), "", "{}", show(&out));
    let state = std::fs::read_to_string(local.state_file("isp")).unwrap();
    assert_eq!(state.lines().count(), 2, "{state}");
    assert!(
        state.lines().nth(1).unwrap().starts_with("F % 0 "),
        "{state}"
    );
}

#[test]
fn tls_stls_implicit_verified_pinned_and_refused() {
    let mut server = ServerSetup::new().start();
    let local = Local::new();
    let pw = local.password_file(PASSWORD);
    let fingerprint = server.fingerprint();
    let cert = server.dovecot.cert().to_owned();
    let run = |name: &str, port: u16, tls: &str, extra: &str, env_cert: bool| {
        local.write(&account(
            name,
            "pop3",
            port,
            tls,
            &format!(
                "password_file: {}\ndeliver_to: {{maildir: Maildir}}\n{extra}",
                pw.display()
            ),
        ));
        let mut cmd = local.cmd();
        cmd.arg("fetch");
        if env_cert {
            // The test's certificate as the whole trust store.
            cmd.env("SSL_CERT_FILE", &cert)
                .env("SSL_CERT_DIR", "/nonexistent");
        } else {
            cmd.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
        }
        support::run(&mut cmd, b"")
    };
    let pinned = format!("tls_fingerprint: {fingerprint}");
    let cases = [
        (
            "stls",
            server.dovecot.pop3_port(),
            "starttls",
            pinned.as_str(),
            false,
        ),
        (
            "implicit",
            server.dovecot.pop3s_port(),
            "tls",
            pinned.as_str(),
            false,
        ),
        ("verified", server.dovecot.pop3s_port(), "tls", "", true),
        (
            "stls-verified",
            server.dovecot.pop3_port(),
            "starttls",
            "",
            true,
        ),
    ];
    for (i, (name, port, tls, extra, env_cert)) in cases.into_iter().enumerate() {
        server.add(None, &[format!("Subject: {name}\n\n{i}\n").into_bytes()]);
        let out = run(name, port, tls, extra, env_cert);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", show(&out));
        assert!(
            stdout(&out).starts_with(&format!("{name}: 1 message fetched")),
            "{name}: {}",
            show(&out)
        );
    }
    assert_eq!(stored(&local.maildir("Maildir")).len(), 4);

    // Refused: the self-signed certificate unpinned, a wrong pin. Nothing
    // is sent, nothing fetched, nothing deleted.
    server.add(None, &[b"Subject: stays\n\nx\n".to_vec()]);
    let wrong = format!("tls_fingerprint: sha256:{}", ["AB"; 32].join(":"));
    let refusals = [
        (
            "untrusted",
            server.dovecot.pop3s_port(),
            "tls",
            "",
            "certificate is not trusted",
        ),
        (
            "untrusted-stls",
            server.dovecot.pop3_port(),
            "starttls",
            "",
            "certificate is not trusted",
        ),
        (
            "wrong-pin",
            server.dovecot.pop3s_port(),
            "tls",
            wrong.as_str(),
            "not the pinned sha256:AB:AB",
        ),
        (
            "wrong-pin-stls",
            server.dovecot.pop3_port(),
            "starttls",
            wrong.as_str(),
            "not the pinned",
        ),
    ];
    for (name, port, tls, extra, says) in refusals {
        let out = run(name, port, tls, extra, false);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", show(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!("ownmail fetch: {name}: "))
                && err.contains(says)
                && err.lines().count() == 1,
            "{name}: {}",
            show(&out)
        );
        if name.starts_with("wrong-pin") {
            assert!(
                err.contains(&fingerprint.to_uppercase().replace("SHA256", "sha256")),
                "{err}"
            );
        } else {
            // The refused certificate's fingerprint, to check and pin.
            // Regression: fetch did not show it (native-tls keeps it).
            assert!(err.contains("tls_fingerprint"), "{err}");
            assert!(
                err.contains(&format!(
                    "self-signed certificate; its fingerprint is {fingerprint}"
                )),
                "{err}"
            );
        }
    }
    assert_eq!(server.held(None).len(), 1);
    assert_eq!(stored(&local.maildir("Maildir")).len(), 4);
    let log = server.dovecot.log_text();
    assert_eq!(
        log.matches("Login: user=<remote>").count(),
        4,
        "only the four good runs logged in:\n{log}"
    );
}

#[test]
fn starttls_is_never_skipped_when_the_server_does_not_offer_it() {
    let mut setup = support::dovecot::Setup::new();
    setup.pop3();
    let maildir = setup.user(USER, PASSWORD);
    let server = setup.start();
    let local = Local::new();
    let pw = local.password_file(PASSWORD);
    local.write(&account(
        "isp",
        "pop3",
        server.pop3_port(),
        "starttls",
        &format!(
            "password_file: {}\ndeliver_to: {{maildir: Maildir}}",
            pw.display()
        ),
    ));
    let out = local.fetch(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("does not offer STLS"),
        "{}",
        show(&out)
    );
    assert!(
        !server.log_text().contains("Login:"),
        "logged in without TLS"
    );
    let _ = maildir;
}

#[test]
fn a_wrong_password_is_a_clear_error_and_nothing_is_deleted() {
    let mut server = ServerSetup::new().start();
    server.add(None, &[b"Subject: keep me\n\nx\n".to_vec()]);
    let local = Local::new();
    let pw = local.password_file("not the password");
    for (auth, method) in [
        ("user", "USER/PASS"),
        ("plain", "SASL PLAIN"),
        ("apop", "APOP"),
    ] {
        local.write(&account(
            "isp",
            "pop3",
            server.dovecot.pop3_port(),
            "none",
            &format!(
                "password_file: {}\nauth: {auth}\ndeliver_to: {{maildir: Maildir}}",
                pw.display()
            ),
        ));
        let out = local.fetch(&["-q"]);
        assert_eq!(out.status.code(), Some(1), "{auth}: {}", show(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!(
                "ownmail fetch: isp: 127.0.0.1:{} refused the login of {USER} ({method}): -ERR",
                server.dovecot.pop3_port()
            )) && err.contains(&format!("the password in {}", pw.display())),
            "{auth}: {err}"
        );
        assert_eq!(stdout(&out), "");
    }
    // A token refused: XOAUTH2's error challenge is answered and the -ERR reported.
    local.write(&account(
        "isp",
        "pop3",
        server.dovecot.pop3_port(),
        "none",
        "token_command: echo expired-token\nauth: xoauth2\ndeliver_to: {maildir: Maildir}",
    ));
    let out = local.fetch(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("(SASL XOAUTH2): -ERR") && stderr(&out).contains("token_command"),
        "{}",
        show(&out)
    );
    assert_eq!(server.held(None).len(), 1);
    assert!(stored(&local.maildir("Maildir")).is_empty());
}

#[test]
fn every_login_method_reaches_the_mailbox() {
    let mut server = ServerSetup::new().start();
    let local = Local::new();
    let pw = local.password_file(PASSWORD);
    let token = format!("token_command: \"echo '{PASSWORD}'\"");
    let password = format!("password_file: {}", pw.display());
    // Dovecot's xoauth2 and oauthbearer check the token as a password,
    // which lets a test log in with them for real.
    let cases = [
        ("user", &password, "PLAIN"),
        ("apop", &password, "APOP"),
        ("plain", &password, "PLAIN"),
        ("auto", &password, "PLAIN"),
        ("xoauth2", &token, "XOAUTH2"),
        ("oauthbearer", &token, "OAUTHBEARER"),
        ("auto", &token, "OAUTHBEARER"),
    ];
    for (i, (auth, cred, logged)) in cases.into_iter().enumerate() {
        server.add(None, &[format!("Subject: {auth} {i}\n\nx\n").into_bytes()]);
        local.write(&account(
            "isp",
            "pop3",
            server.dovecot.pop3_port(),
            "none",
            &format!("{cred}\nauth: {auth}\ndeliver_to: {{maildir: Maildir}}"),
        ));
        let out = local.fetch(&["-q"]);
        assert!(
            stdout(&out).starts_with("isp: 1 message fetched"),
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
    assert_eq!(stored(&local.maildir("Maildir")).len(), cases.len());
}

#[test]
fn messages_over_max_size_stay_on_the_server_and_are_reported_once() {
    let mut server = ServerSetup::new().start();
    let big = format!("Subject: big\n\n{}\n", "x".repeat(4000)).into_bytes();
    server.add(None, &[big.clone(), b"Subject: small\n\nx\n".to_vec()]);
    let local = Local::new();
    local.write(&plain_account(
        &server,
        &local,
        "max_size: 2K\ndeliver_to: {maildir: Maildir}",
    ));
    let out = local.fetch(&["-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    assert!(text.starts_with("isp: 1 message fetched (21 B), 1 deleted from the server, 1 message over max_size left on the server\n"), "{text}");
    assert!(
        text.contains("isp: message 1 (UIDL ")
            && text.contains("is 3.92 KiB, over max_size: left on the server"),
        "{text}"
    );
    // Said once: a quiet run has nothing more to say about it.
    let out = local.fetch(&["-q"]);
    assert_eq!(stdout(&out), "", "{}", show(&out));
    let out = local.fetch(&[]);
    assert_eq!(
        stdout(&out),
        "isp: no new messages, 1 message over max_size left on the server\n"
    );
    assert_eq!(server.held(None), vec![big]);
}

#[test]
fn a_busy_account_is_waited_for_a_little_then_left_alone() {
    use std::os::fd::AsRawFd;
    let mut server = ServerSetup::new().start();
    server.add(None, &[b"Subject: x\n\nx\n".to_vec()]);
    let local = Local::new();
    local.write(&plain_account(
        &server,
        &local,
        "deliver_to: {maildir: Maildir}",
    ));
    std::fs::create_dir_all(local.dir.path().join("data/fetch")).unwrap();
    let lock = std::fs::File::create(local.dir.path().join("data/fetch/isp.lock")).unwrap();
    // SAFETY: a valid descriptor.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);

    // Held throughout: exit 0, saying so, after about ten seconds.
    let started = Instant::now();
    let out = local.fetch(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        stdout(&out),
        "isp: busy: another ownmail fetch is working on it; left alone\n"
    );
    let out = local.fetch(&["-q", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["accounts"][0]["status"], "busy", "{json}");

    // Released a moment after the start: the run waits, then does its work.
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        drop(lock);
    });
    let out = local.fetch(&["-q"]);
    holder.join().unwrap();
    assert!(
        stdout(&out).starts_with("isp: 1 message fetched"),
        "{}",
        show(&out)
    );
}

#[test]
fn json_says_what_happened_per_account() {
    let mut server = ServerSetup::new().start();
    server.add(None, &[b"Subject: x\n\nx\n".to_vec()]);
    let local = Local::new();
    let pw = local.password_file(PASSWORD);
    let good = plain_account(&server, &local, "deliver_to: {maildir: Maildir}");
    let bad = account(
        "refused",
        "pop3",
        server.dovecot.pop3_port(),
        "none",
        "password_command: echo wrong\ndeliver_to: {maildir: Maildir}",
    );
    let down = account(
        "down",
        "pop3",
        1,
        "none",
        &format!(
            "password_file: {}\ndeliver_to: {{maildir: Maildir}}",
            pw.display()
        ),
    );
    local.write(&format!("{good}{bad}{down}"));
    let out = local.fetch(&["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = &json["accounts"];
    assert_eq!(
        (
            a[0]["account"].as_str(),
            a[0]["status"].as_str(),
            a[0]["fetched"].as_u64()
        ),
        (Some("isp"), Some("ok"), Some(1)),
        "{json}"
    );
    assert_eq!(
        (a[1]["status"].as_str(), a[1]["temporary"].as_bool()),
        (Some("failed"), Some(false)),
        "{json}"
    );
    assert_eq!(
        (a[2]["status"].as_str(), a[2]["temporary"].as_bool()),
        (Some("temporary_failure"), Some(true)),
        "{json}"
    );
    assert!(
        a[2]["error"]
            .as_str()
            .unwrap()
            .contains("cannot connect to 127.0.0.1:1"),
        "{json}"
    );
    // Errors on stderr, one line each, naming the account.
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("ownmail fetch: refused: ")
            && lines[1].starts_with("ownmail fetch: down: "),
        "{err}"
    );
    assert!(
        lines[1].ends_with("will try again on the next run"),
        "{err}"
    );

    // Only the unreachable one: every failure temporary, exit 75.
    let out = local.fetch(&["-q", "--account", "down"]);
    assert_eq!(out.status.code(), Some(75), "{}", show(&out));
    let out = local.fetch(&["--account", "nope"]);
    assert_eq!(out.status.code(), Some(64), "{}", show(&out));
    assert!(
        stderr(&out).contains("no such account (the configuration has: isp, refused, down)"),
        "{}",
        show(&out)
    );
}
