//! Transcripts: `C:` lines are what the client sends (CR LF added), `S:`
//! lines the start of what the server must answer, line by line. Lines
//! without a `C:` between them are pipelined: fed at once. The harness
//! answers events as a driver would: the password of alice and bob is
//! `secret`, every message is stored (`250 2.0.0 Stored`), STARTTLS
//! succeeds.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;

fn directory() -> Arc<Directory> {
    let mut aliases = BTreeMap::new();
    aliases.insert("postmaster".to_owned(), vec!["alice".to_owned()]);
    aliases.insert(
        "info".to_owned(),
        vec!["alice".to_owned(), "bob".to_owned()],
    );
    Arc::new(Directory::new(
        vec!["example.org".into()],
        ["alice".to_owned(), "bob".to_owned()],
        aliases,
    ))
}

fn settings() -> Settings {
    Settings {
        hostname: "mx.example.org".into(),
        max_message_size: 10_000,
        starttls: true,
        implicit_tls: None,
        auth_without_tls: false,
        submission: false,
        trusted: false,
    }
}

struct Harness {
    session: Session,
    /// Reply lines not yet matched.
    lines: Vec<String>,
    messages: Vec<Transaction>,
    closed: bool,
}

impl Harness {
    fn new(settings: Settings) -> Harness {
        let mut h = Harness {
            session: Session::new(settings, directory()),
            lines: Vec::new(),
            messages: Vec::new(),
            closed: false,
        };
        h.pump();
        h
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.session.feed(bytes);
        self.pump();
    }

    fn pump(&mut self) {
        while let Some(event) = self.session.next_event() {
            match event {
                Event::StartTls => {
                    self.collect();
                    self.session.tls_started(TlsInfo {
                        version: "TLSv1.3".into(),
                        cipher: "TLS_AES_256_GCM_SHA384".into(),
                    });
                }
                Event::Authenticate { user, password } => {
                    let ok =
                        ["alice", "bob"].contains(&user.as_str()) && password.expose() == "secret";
                    self.session.auth_result(if ok {
                        AuthOutcome::Ok
                    } else {
                        AuthOutcome::Failed
                    });
                }
                Event::Message(tx) => {
                    self.messages.push(*tx);
                    self.session.message_result(Reply::OK.with_text("Stored"));
                }
                Event::Close => self.closed = true,
            }
        }
        self.collect();
    }

    fn collect(&mut self) {
        let out = self.session.take_output();
        let text = String::from_utf8(out).unwrap();
        for line in text.split_inclusive("\r\n") {
            assert!(line.ends_with("\r\n"), "reply without CR LF: {line:?}");
            self.lines.push(line.trim_end().to_owned());
        }
    }

    /// Plays a transcript.
    fn play(&mut self, script: &str) -> &mut Harness {
        let mut pending = Vec::new();
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if line == "C:" {
                pending.extend_from_slice(b"\r\n");
            } else if let Some(c) = line.strip_prefix("C: ") {
                pending.extend_from_slice(c.as_bytes());
                pending.extend_from_slice(b"\r\n");
            } else if let Some(s) = line.strip_prefix("S: ") {
                if !pending.is_empty() {
                    self.feed(&std::mem::take(&mut pending));
                }
                assert!(
                    !self.lines.is_empty(),
                    "expected {s:?}, the server said nothing more\nscript:\n{script}"
                );
                let got = self.lines.remove(0);
                assert!(
                    got.starts_with(s),
                    "expected {s:?}, got {got:?}\nscript:\n{script}"
                );
            } else {
                panic!("bad transcript line {line:?}");
            }
        }
        if !pending.is_empty() {
            self.feed(&pending);
        }
        assert!(
            self.lines.is_empty(),
            "unexpected replies {:?}\nscript:\n{script}",
            self.lines
        );
        self
    }
}

fn run(script: &str) -> Harness {
    let mut h = Harness::new(settings());
    h.play(script);
    h
}

/// A transaction up to DATA's 354, after [`EHLO`].
const DATA_FOR_ALICE: &str = "
    C: MAIL FROM:<a@example.net>
    S: 250
    C: RCPT TO:<alice@example.org>
    S: 250
    C: DATA
    S: 354";

const EHLO: &str = "
    S: 220 mx.example.org ESMTP
    C: EHLO client.example
    S: 250-mx.example.org greets client.example
    S: 250-PIPELINING
    S: 250-SIZE 10000
    S: 250-8BITMIME
    S: 250-ENHANCEDSTATUSCODES
    S: 250-SMTPUTF8
    S: 250-CHUNKING
    S: 250 STARTTLS
";

#[test]
fn a_message_for_a_local_user_is_delivered_dot_unstuffed() {
    let mut h = run(EHLO);
    h.play(
        "C: MAIL FROM:<bob@example.net> BODY=8BITMIME SIZE=100
         S: 250 2.1.0
         C: RCPT TO:<Alice@Example.org>
         S: 250 2.1.5
         C: DATA
         S: 354
         C: Subject: hi
         C:
         C: ..leading dot
         C: .
         S: 250 2.0.0 Stored
         C: QUIT
         S: 221 2.0.0",
    );
    assert!(h.closed);
    let m = &h.messages[0];
    assert_eq!(m.data, b"Subject: hi\r\n\r\n.leading dot\r\n");
    assert_eq!(m.sender.as_ref().unwrap().to_string(), "bob@example.net");
    assert_eq!(m.recipients[0].route, Route::Local(vec!["alice".into()]));
    assert!(m.esmtp && m.authenticated.is_none() && m.tls.is_none());
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let mut h = run(EHLO);
    h.play(
        "C: MAIL FROM:<>
         C: RCPT TO:<alice@example.org>
         C: RCPT TO:<nobody@example.org>
         C: RCPT TO:<info@example.org>
         C: DATA
         S: 250 2.1.0
         S: 250 2.1.5
         S: 550 5.1.1
         S: 250 2.1.5
         S: 354
         C: x
         C: .
         C: RSET
         C: NOOP
         S: 250 2.0.0 Stored
         S: 250 2.0.0
         S: 250 2.0.0",
    );
    let m = &h.messages[0];
    assert_eq!(m.sender, None, "the null sender");
    assert_eq!(m.recipients.len(), 2);
    assert_eq!(
        m.recipients[1].route,
        Route::Local(vec!["alice".into(), "bob".into()])
    );
}

#[test]
fn postmaster_always_exists() {
    run(&format!(
        "{EHLO}
         C: MAIL FROM:<x@example.net>
         S: 250
         C: RCPT TO:<Postmaster>
         S: 250 2.1.5
         C: RCPT TO:<postmaster@example.org>
         S: 250 2.1.5"
    ));
    // Without an alias, a Maildir of its own.
    let d = Directory::new(vec!["example.org".into()], Vec::new(), BTreeMap::new());
    assert_eq!(
        d.resolve("PostMaster", "example.org"),
        Ok(Some(vec!["postmaster".into()]))
    );
}

#[test]
fn helo_works_and_order_is_enforced() {
    run("S: 220
         C: MAIL FROM:<a@example.net>
         S: 503 5.5.1 Send EHLO
         C: RCPT TO:<alice@example.org>
         S: 503 5.5.1
         C: DATA
         S: 503 5.5.1
         C: HELO client
         S: 250 mx.example.org
         C: DATA
         S: 503 5.5.1
         C: MAIL FROM:<a@example.net>
         S: 250
         C: MAIL FROM:<a@example.net>
         S: 503 5.5.1
         C: DATA
         S: 554 5.5.1 No valid recipients
         C: VRFY alice
         S: 252 2.5.0
         C: EXPN staff
         S: 502 5.5.1
         C: HELP
         S: 214 2.0.0
         C: FOO
         S: 500 5.5.2");
}

#[test]
fn strangers_may_not_relay() {
    run(&format!(
        "{EHLO}
         C: MAIL FROM:<a@example.net>
         S: 250
         C: RCPT TO:<someone@gmail.example>
         S: 554 5.7.1 Relay access denied"
    ));
}

#[test]
fn trusted_networks_and_authenticated_users_may_relay() {
    let mut s = settings();
    s.trusted = true;
    let mut h = Harness::new(s);
    h.play(&format!(
        "{EHLO}
         C: MAIL FROM:<root@example.org>
         S: 250
         C: RCPT TO:<someone@gmail.example>
         S: 250 2.1.5"
    ));
    let mut s = settings();
    s.auth_without_tls = true;
    let mut h = Harness::new(s);
    h.play(
        "S: 220
         C: EHLO c
         S: 250-
         S: 250-
         S: 250-
         S: 250-
         S: 250-
         S: 250-
         S: 250-CHUNKING
         S: 250-STARTTLS
         S: 250 AUTH PLAIN LOGIN
         C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
         S: 235 2.7.0
         C: MAIL FROM:<alice@example.org>
         S: 250
         C: RCPT TO:<someone@gmail.example>
         S: 250 2.1.5
         C: DATA
         S: 354
         C: x
         C: .
         S: 250",
    );
    let m = &h.messages[0];
    assert_eq!(m.recipients[0].route, Route::Remote);
    assert_eq!(m.authenticated.as_deref(), Some("alice"));
}

/// The classic open-relay tricks, each refused, even from a client that
/// may relay (the local forms would otherwise reach another domain through
/// a later hop that honours `%` or `!`).
#[test]
fn relay_tricks_are_refused() {
    let cases = [
        ("<user%other.example@example.org>", "550 5.7.1"),
        ("<\"user@other.example\"@example.org>", "550 5.7.1"),
        ("<@example.org:user@other.example>", "550 5.7.1"),
        (
            "<@example.org,@mx.example.org:alice@example.org>",
            "550 5.7.1",
        ),
        ("<user@other.example@example.org>", "501 5.1.3"),
        ("<other.example!user@example.org>", "550 5.7.1"),
        ("<other.example!user>", "501 5.1.3"),
    ];
    for trusted in [false, true] {
        for (rcpt, reply) in cases {
            let mut s = settings();
            s.trusted = trusted;
            let mut h = Harness::new(s);
            h.play(&format!(
                "{EHLO}
                 C: MAIL FROM:<a@example.net>
                 S: 250
                 C: RCPT TO:{rcpt}
                 S: {reply}"
            ));
        }
    }
}

#[test]
fn auth_needs_tls_then_works_and_senders_are_checked() {
    let mut h = run(&format!(
        "{EHLO}
         C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
         S: 538 5.7.11
         C: MAIL FROM:<a@example.net>
         C: STARTTLS
         C: RSET
         S: 250 2.1.0
         S: 503 5.5.1
         S: 250 2.0.0
         C: STARTTLS
         C: EHLO injected-before-tls
         S: 220 2.0.0 Ready to start TLS
         C: MAIL FROM:<a@example.net>
         S: 503 5.5.1 Send EHLO
         C: EHLO client.example
         S: 250-mx.example.org
         S: 250-PIPELINING
         S: 250-SIZE
         S: 250-8BITMIME
         S: 250-ENHANCEDSTATUSCODES
         S: 250-SMTPUTF8
         S: 250-CHUNKING
         S: 250 AUTH PLAIN LOGIN
         C: STARTTLS
         S: 502 5.5.1
         C: AUTH PLAIN AGFsaWNlAHdyb25n
         S: 535 5.7.8
         C: AUTH CRAM-MD5
         S: 504 5.5.4
         C: AUTH LOGIN
         S: 334 VXNlcm5hbWU6
         C: *
         S: 501 5.0.0
         C: AUTH PLAIN
         S: 334
         C: !!notbase64
         S: 501 5.5.2
         C: AUTH LOGIN
         S: 334 VXNlcm5hbWU6
         C: Ym9i
         S: 334 UGFzc3dvcmQ6
         C: c2VjcmV0
         S: 235 2.7.0"
    ));
    h.play("C: QUIT\nS: 221");
    // The rest in a session of its own: the mistakes above count toward
    // the ten that close a session.
    let mut s = settings();
    s.implicit_tls = Some(TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "TLS_AES_256_GCM_SHA384".into(),
    });
    let mut h = Harness::new(s);
    h.play(
        "S: 220
         C: EHLO c
         S: 250-
         S: 250-
         S: 250-
         S: 250-
         S: 250-
         S: 250-
         S: 250-CHUNKING
         S: 250 AUTH PLAIN LOGIN
         C: AUTH LOGIN Ym9i
         S: 334 UGFzc3dvcmQ6
         C: c2VjcmV0
         S: 235 2.7.0
         C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
         S: 503 5.5.1 Already
         C: MAIL FROM:<alice@example.org>
         S: 553 5.7.1
         C: MAIL FROM:<>
         S: 553 5.7.1
         C: MAIL FROM:<info@example.org>
         S: 250 2.1.0
         C: RCPT TO:<x@elsewhere.example>
         S: 250 2.1.5
         C: BDAT 3 LAST",
    );
    h.feed(b"abc");
    h.play("S: 250 2.0.0 Stored");
    let m = &h.messages[0];
    assert_eq!(m.data, b"abc");
    assert_eq!(m.authenticated.as_deref(), Some("bob"));
    assert_eq!(m.tls.as_ref().unwrap().version, "TLSv1.3");
}

#[test]
fn submission_wants_tls_then_auth() {
    let mut s = settings();
    s.submission = true;
    let mut h = Harness::new(s);
    h.play(&format!(
        "{EHLO}
         C: MAIL FROM:<alice@example.org>
         S: 530 5.7.0 Must issue a STARTTLS
         C: STARTTLS
         S: 220 2.0.0
         C: EHLO c
         S: 250-
         S: 250-
         S: 250-
         S: 250-
         S: 250-
         S: 250-
         S: 250-
         S: 250 AUTH PLAIN LOGIN
         C: MAIL FROM:<alice@example.org>
         S: 530 5.7.0 Authentication required
         C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
         S: 235
         C: MAIL FROM:<alice@example.org>
         S: 250"
    ));
    // Implicit TLS (465): AUTH at once, no STARTTLS.
    let mut s = settings();
    s.submission = true;
    s.implicit_tls = Some(TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "x".into(),
    });
    let mut h = Harness::new(s);
    h.play(
        "S: 220
         C: EHLO c
         S: 250-
         S: 250-
         S: 250-
         S: 250-
         S: 250-
         S: 250-
         S: 250-CHUNKING
         S: 250 AUTH PLAIN LOGIN",
    );
}

#[test]
fn size_is_enforced_on_mail_and_on_data_and_the_session_goes_on() {
    let big = "x".repeat(1000);
    let mut script = format!(
        "{EHLO}
         C: MAIL FROM:<a@example.net> SIZE=10001
         S: 552 5.3.4
         C: MAIL FROM:<a@example.net>
         S: 250
         C: RCPT TO:<alice@example.org>
         S: 250
         C: DATA
         S: 354
"
    );
    for _ in 0..11 {
        script.push_str(&format!("C: {big}\n"));
    }
    script.push_str(
        "C: .
         S: 552 5.3.4
         C: MAIL FROM:<a@example.net>
         S: 250
         C: RCPT TO:<alice@example.org>
         S: 250
         C: BDAT 6000",
    );
    let mut h = run(&script);
    // The chunk bytes are read as data, never as commands.
    h.feed(&b"QUIT\r\n".repeat(1000));
    h.play(
        "S: 250 2.0.0 6000 octets
         C: BDAT 5000 LAST",
    );
    h.feed(&vec![b'y'; 5000]);
    h.play(
        "S: 552 5.3.4
         C: BDAT 4 LAST
         C: ab
         S: 503 5.5.1
         C: NOOP
         S: 250",
    );
    assert!(h.messages.is_empty());
}

#[test]
fn a_hundred_recipients_and_no_more() {
    let mut s = settings();
    s.trusted = true;
    let mut h = Harness::new(s);
    h.play(&format!("{EHLO}\nC: MAIL FROM:<a@example.net>\nS: 250"));
    for i in 0..100 {
        h.play(&format!(
            "C: RCPT TO:<r{i}@elsewhere.example>\nS: 250 2.1.5"
        ));
    }
    h.play(
        "C: RCPT TO:<r100@elsewhere.example>
         S: 452 4.5.3
         C: DATA
         S: 354
         C: x
         C: .
         S: 250",
    );
    assert_eq!(h.messages[0].recipients.len(), 100);
}

#[test]
fn ten_errors_close_the_session() {
    let mut script = String::from(EHLO);
    for _ in 0..9 {
        script.push_str("C: BOGUS\nS: 500 5.5.2\n");
    }
    script.push_str("C: RCPT TO:<a@b.example>\nS: 503 5.5.1\nS: 421 4.7.0 Too many errors");
    let mut h = run(&script);
    assert!(h.closed && h.session.is_closed());
    h.feed(b"NOOP\r\n");
    assert!(h.lines.is_empty(), "nothing after 421");
}

#[test]
fn bad_bytes_in_commands_have_answers() {
    let mut h = run(EHLO);
    h.feed(b"NOOP\n");
    h.feed(b"NO\0OP\r\n");
    h.feed(&vec![b'A'; MAX_COMMAND_LINE + 10]);
    h.feed(b"still the long line\r\nNOOP\r\n");
    h.feed(b"\xff\xfe\r\n");
    h.play(
        "S: 500 5.5.2 Bare LF
         S: 500 5.5.2 NUL
         S: 500 5.5.6 Line too long
         S: 250 2.0.0
         S: 500 5.5.2 Syntax error",
    );
}

#[test]
fn bare_lf_in_data_is_refused_and_cannot_end_it() {
    let mut h = run(&format!("{EHLO}{DATA_FOR_ALICE}"));
    // SMTP smuggling: `<LF>.<CR><LF>` and `<CR><LF>.<LF>` end nothing.
    h.feed(b"Subject: a\r\n\r\nline\n.\r\nMAIL FROM:<evil@example.net>\r\n.\n");
    assert!(h.lines.is_empty(), "{:?}", h.lines);
    h.feed(b"RCPT TO:<alice@example.org>\r\n.\r\n");
    h.play("S: 554 5.6.0 Bare LF");
    assert!(h.messages.is_empty());
    // NUL bytes and 8-bit bytes in a message are kept as they are.
    h.play(
        "C: MAIL FROM:<a@example.net>
         S: 250
         C: RCPT TO:<alice@example.org>
         S: 250
         C: DATA
         S: 354",
    );
    h.feed(b"X: \0\xe9\r\n.");
    h.feed(b"\r");
    h.feed(b"\n");
    h.play("S: 250 2.0.0 Stored");
    assert_eq!(h.messages[0].data, b"X: \0\xe9\r\n");
}

#[test]
fn data_split_anywhere_is_the_same_message() {
    let body = b"A: 1\r\n\r\n..a\r\n.\r\n";
    for split in 0..body.len() {
        let mut h = run(&format!("{EHLO}{DATA_FOR_ALICE}"));
        h.feed(&body[..split]);
        h.feed(&body[split..]);
        h.play("S: 250 2.0.0 Stored");
        assert_eq!(
            h.messages[0].data, b"A: 1\r\n\r\n.a\r\n",
            "split at {split}"
        );
    }
}

#[test]
fn bdat_and_data_do_not_mix() {
    let mut h = run(&format!(
        "{EHLO}
         C: MAIL FROM:<a@example.net>
         S: 250
         C: RCPT TO:<alice@example.org>
         S: 250
         C: BDAT 4
         C: ab
         S: 250 2.0.0 4 octets
         C: DATA
         S: 503 5.5.1 DATA and BDAT
         C: RCPT TO:<bob@example.org>
         S: 503 5.5.1
         C: BDAT 0 LAST
         S: 250 2.0.0 Stored
         C: BDAT 3
         C: x
         S: 503 5.5.1"
    ));
    assert_eq!(h.messages[0].data, b"ab\r\n");
    h.play("C: QUIT\nS: 221");
}

#[test]
fn smtputf8_addresses_need_the_parameter() {
    run(&format!(
        "{EHLO}
         C: MAIL FROM:<δοκιμή@example.net>
         S: 553 5.6.7
         C: MAIL FROM:<a@example.net>
         S: 250
         C: RCPT TO:<δοκιμή@example.org>
         S: 553 5.6.7
         C: RSET
         S: 250
         C: MAIL FROM:<δοκιμή@example.net> SMTPUTF8
         S: 250
         C: RCPT TO:<δοκιμή@example.org>
         S: 550 5.1.1"
    ));
}

#[test]
fn a_driver_can_end_the_session() {
    let mut h = run(EHLO);
    h.session.abort(Reply::SHUTTING_DOWN);
    h.pump();
    h.play("S: 421 4.3.2");
    assert!(h.closed);
}

/// Regression: a BDAT chunk with a bare LF was stored as it came and sent
/// on with DATA, so `<LF>.<LF>` reached the next hop (SMTP smuggling,
/// CVE-2023-51764). BDAT now follows DATA's rule, across chunks too.
#[test]
fn bare_lf_or_cr_in_bdat_is_refused_as_in_data() {
    let start = format!(
        "{EHLO}
         C: MAIL FROM:<a@example.net>
         S: 250
         C: RCPT TO:<alice@example.org>
         S: 250"
    );
    let smuggled: &[u8] =
        b"Subject: bdat\r\n\r\nhello\n.\nMAIL FROM:<ceo@bank.example>\nRCPT TO:<x@y.example>\n";
    let cases: [(&[&[u8]], &str); 6] = [
        (&[smuggled], "554 5.6.0 Bare LF"),
        // The CR LF split between two chunks is one line end...
        (&[b"a: b\r", b"\n\r\nhi\r\n"], "250 2.0.0 Stored"),
        // ...but a LF first in a chunk after a line without its CR is not.
        (&[b"a: b\r\n", b"\nhi\r\n"], "554 5.6.0 Bare LF"),
        (
            &[b"a: b\r\n\r\nhi\r.\rMAIL FROM:<x@y>\r"],
            "554 5.6.0 Bare CR",
        ),
        (&[b"a: b\r\n\r\nhi\r", b"x\r\n"], "554 5.6.0 Bare CR"),
        (&[b"a: b\r\n\r\nhi\r"], "554 5.6.0 Bare CR"),
    ];
    for (chunks, reply) in cases {
        let mut h = run(&start);
        for (i, c) in chunks.iter().enumerate() {
            let last = if i + 1 == chunks.len() { " LAST" } else { "" };
            h.feed(format!("BDAT {}{last}\r\n", c.len()).as_bytes());
            h.feed(c);
            if last.is_empty() {
                h.play("S: 250 2.0.0");
            }
        }
        h.play(&format!("S: {reply}\nC: NOOP\nS: 250"));
        assert_eq!(h.messages.len(), usize::from(reply.contains("Stored")));
    }
}

#[test]
fn bare_cr_in_data_is_refused() {
    let mut h = run(&format!("{EHLO}{DATA_FOR_ALICE}"));
    h.feed(b"Subject: a\r\n\r\nline\r.\rMAIL FROM:<evil@example.net>\r");
    h.feed(b"\r\n.\r\n");
    h.play("S: 554 5.6.0 Bare CR");
    assert!(h.messages.is_empty());
}

/// Regression: after a line too long the rest of the buffer was thrown
/// away (its LF and the commands pipelined after it), and the next line
/// was swallowed too: a command went unanswered and pipelining clients
/// hung. One reply per command, however the bytes arrive.
#[test]
fn a_line_too_long_gets_one_reply_and_the_next_commands_theirs() {
    let long = format!("NOOP {}\r\n", "X".repeat(3000));
    let mut h = run(EHLO);
    h.feed(long.as_bytes());
    h.play("S: 500 5.5.6 Line too long");
    h.play("C: NOOP\nS: 250 2.0.0");
    h.feed(format!("{long}RSET\r\nNOOP\r\n").as_bytes());
    h.play(
        "S: 500 5.5.6 Line too long
         S: 250 2.0.0
         S: 250 2.0.0
         C: QUIT
         S: 221",
    );
    // Byte by byte, the same.
    let mut h = run(EHLO);
    for b in format!("{long}NOOP\r\n").bytes() {
        h.feed(&[b]);
    }
    h.play("S: 500 5.5.6\nS: 250 2.0.0");
    // AUTH responses have their own, longer bound.
    let mut s = settings();
    s.auth_without_tls = true;
    let mut h = Harness::new(s);
    h.feed(b"EHLO c\r\n");
    h.lines.clear();
    h.play("C: AUTH PLAIN\nS: 334");
    h.feed(format!("{}\r\nNOOP\r\n", "A".repeat(MAX_AUTH_LINE + 100)).as_bytes());
    h.play("S: 500 5.5.6 Line too long\nS: 250 2.0.0");
}

/// Regression: refused recipients counted toward the ten mistakes that end
/// a session, so one good recipient among ten unknown ones never got the
/// message (421 before DATA). They count only toward the hard limit of 20.
#[test]
fn refused_recipients_do_not_end_the_session_before_the_hard_limit() {
    let mut h = run(&format!("{EHLO}\nC: MAIL FROM:<a@example.net>\nS: 250"));
    h.play("C: RCPT TO:<alice@example.org>\nS: 250 2.1.5");
    for i in 0..10 {
        h.play(&format!("C: RCPT TO:<ghost{i}@example.org>\nS: 550 5.1.1"));
    }
    h.play(
        "C: RCPT TO:<x@elsewhere.example>
         S: 554 5.7.1 Relay access denied
         C: RCPT TO:<user%other.example@example.org>
         S: 550 5.7.1
         C: DATA
         S: 354
         C: x
         C: .
         S: 250 2.0.0 Stored",
    );
    assert_eq!(h.messages[0].recipients.len(), 1);
    assert!(!h.closed);
    // Twenty refusals and mistakes together end the session.
    for i in 12..19 {
        h.play(&format!(
            "C: MAIL FROM:<a@example.net>
             S: 250
             C: RCPT TO:<ghost{i}@example.org>
             S: 550 5.1.1
             C: RSET
             S: 250"
        ));
    }
    h.play("C: BOGUS\nS: 500 5.5.2\nS: 421 4.7.0 Too many errors");
    assert!(h.closed);
}

/// Regression (differential test against Postfix): a sender's bad syntax
/// was answered `501 5.1.3`, the status of a bad *destination* address.
/// RFC 3463 3.2: X.1.7 is the sender's, X.1.3 the recipient's.
#[test]
fn a_bad_sender_address_is_5_1_7_and_a_bad_recipient_5_1_3() {
    run(&format!(
        "{EHLO}
         C: MAIL FROM:<a@@example.net>
         S: 501 5.1.7
         C: MAIL FROM:a@example.net
         S: 501 5.1.7
         C: MAIL FROM:<a@example..net>
         S: 501 5.1.7
         C: MAIL FROM:<a@example.net>
         S: 250 2.1.0
         C: RCPT TO:<alice@@example.org>
         S: 501 5.1.3"
    ));
}

/// Regression (differential test against Postfix): a sender whose local
/// part was over 64 octets was refused, and with it the VERP and SRS
/// bounce addresses of real mailing lists and forwarders. RFC 5321
/// 4.5.3.1: 64 is what every server must take, not a limit to enforce
/// ("implementation techniques that impose no limits ... should be used").
/// The command line still bounds it.
#[test]
fn senders_with_local_parts_over_64_octets_are_accepted() {
    let verp = format!("list-bounces+{}=example.org", "a".repeat(80));
    run(&format!(
        "{EHLO}
         C: MAIL FROM:<{verp}@lists.example.net>
         S: 250 2.1.0
         C: RCPT TO:<{}@example.org>
         S: 550 5.1.1
         C: RCPT TO:<alice@example.org>
         S: 250 2.1.5
         C: DATA
         S: 354
         C: Subject: hi
         C:
         C: .
         S: 250",
        "b".repeat(65)
    ));
}

/// Regression (differential test against Postfix): VRFY without an
/// argument got `252`, as if something had been asked. RFC 5321 4.1.1.6:
/// `"VRFY" SP String CRLF`.
#[test]
fn vrfy_without_an_argument_is_a_syntax_error() {
    run(&format!(
        "{EHLO}
         C: VRFY
         S: 501 5.5.4
         C: VRFY alice
         S: 252 2.5.0"
    ));
}
