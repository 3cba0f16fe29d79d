//! Transcripts: the client's commands out, the server's lines in, the
//! events the session reports. `C:` lines are what we must send, byte for
//! byte; `S:` lines are what a server sends.

use super::*;
use crate::auth::Secret;

fn secret(s: &str) -> Secret {
    Secret::new(s.to_owned())
}

/// One step of a transcript.
enum Step {
    /// Queue a command; the session must output exactly these bytes.
    C(Command, &'static str),
    /// Feed these bytes; the session must report exactly these events.
    S(&'static [u8], Vec<Event>),
}
use Step::{C, S};

fn ok(kind: Kind, text: &str) -> Event {
    Event::Ok {
        kind,
        text: text.into(),
    }
}

fn greeting() -> Step {
    S(
        b"+OK Dovecot ready.\r\n",
        vec![Event::Greeting {
            apop_timestamp: None,
            text: "Dovecot ready.".into(),
        }],
    )
}

fn logged_in() -> Vec<Step> {
    vec![
        greeting(),
        C(Command::User("me".into()), "USER me\r\n"),
        C(Command::Pass(secret("pw")), "PASS pw\r\n"),
        S(
            b"+OK\r\n+OK Logged in.\r\n",
            vec![ok(Kind::User, ""), ok(Kind::Pass, "Logged in.")],
        ),
    ]
}

fn play(name: &str, steps: Vec<Step>) -> Client {
    let mut client = Client::new();
    for (i, step) in steps.into_iter().enumerate() {
        match step {
            C(command, wire) => {
                client
                    .send(command)
                    .unwrap_or_else(|e| panic!("{name}: step {i}: {e}"));
                assert_eq!(
                    String::from_utf8(client.take_output()).unwrap(),
                    wire,
                    "{name}: step {i}"
                );
            }
            S(bytes, expected) => {
                client.feed(bytes);
                let mut events = Vec::new();
                while let Some(e) = client
                    .next_event()
                    .unwrap_or_else(|e| panic!("{name}: step {i}: {e}"))
                {
                    events.push(e);
                }
                assert_eq!(events, expected, "{name}: step {i}");
            }
        }
    }
    client
}

#[test]
fn login_transcripts() {
    let cases: Vec<(&str, Vec<Step>)> = vec![
        ("user and pass", logged_in()),
        (
            "apop with the greeting's timestamp",
            vec![
                S(
                    b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n",
                    vec![Event::Greeting {
                        apop_timestamp: Some("<1896.697170952@dbc.mtview.ca.us>".into()),
                        text: "POP3 server ready <1896.697170952@dbc.mtview.ca.us>".into(),
                    }],
                ),
                // RFC 1939 7's example.
                C(
                    Command::Apop {
                        user: "mrose".into(),
                        digest: "c4c9334bac560ecc979e58001b3e22fb".into(),
                    },
                    "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n",
                ),
                S(
                    b"+OK maildrop has 1 message (369 octets)\r\n",
                    vec![ok(Kind::Apop, "maildrop has 1 message (369 octets)")],
                ),
            ],
        ),
        (
            "sasl plain with an initial response (RFC 5034)",
            vec![
                greeting(),
                C(
                    Command::Auth {
                        mechanism: "PLAIN".into(),
                        initial: Some(secret("\0me\0pw")),
                    },
                    "AUTH PLAIN AG1lAHB3\r\n",
                ),
                S(b"+OK Logged in.\r\n", vec![ok(Kind::Auth, "Logged in.")]),
            ],
        ),
        (
            "sasl with a challenge, then an empty answer to an error challenge",
            vec![
                greeting(),
                C(
                    Command::Auth {
                        mechanism: "XOAUTH2".into(),
                        initial: None,
                    },
                    "AUTH XOAUTH2\r\n",
                ),
                S(b"+ \r\n", vec![Event::Challenge(vec![])]),
                C(Command::AuthResponse(secret("token")), "dG9rZW4=\r\n"),
                S(
                    b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n",
                    vec![Event::Challenge(b"{\"status\":\"401\"}".to_vec())],
                ),
                C(Command::AuthResponse(secret("")), "\r\n"),
                S(
                    b"-ERR [AUTH] Invalid credentials\r\n",
                    vec![Event::Err {
                        kind: Kind::Auth,
                        reply: ErrReply {
                            code: Some(ResponseCode::Auth),
                            text: "Invalid credentials".into(),
                        },
                    }],
                ),
            ],
        ),
        (
            "an empty initial response is =",
            vec![
                greeting(),
                C(
                    Command::Auth {
                        mechanism: "EXTERNAL".into(),
                        initial: Some(secret("")),
                    },
                    "AUTH EXTERNAL =\r\n",
                ),
                C(Command::AuthCancel, "*\r\n"),
                S(
                    b"-ERR Cancelled\r\n",
                    vec![Event::Err {
                        kind: Kind::Auth,
                        reply: ErrReply {
                            code: None,
                            text: "Cancelled".into(),
                        },
                    }],
                ),
            ],
        ),
        (
            "a wrong password, with a response code",
            vec![
                greeting(),
                C(Command::User("me".into()), "USER me\r\n"),
                C(Command::Pass(secret("a b c")), "PASS a b c\r\n"),
                S(
                    b"+OK\r\n-ERR [AUTH] Authentication failed.\r\n",
                    vec![
                        ok(Kind::User, ""),
                        Event::Err {
                            kind: Kind::Pass,
                            reply: ErrReply {
                                code: Some(ResponseCode::Auth),
                                text: "Authentication failed.".into(),
                            },
                        },
                    ],
                ),
            ],
        ),
        (
            "capa, stls, capa again",
            vec![
                greeting(),
                C(Command::Capa, "CAPA\r\n"),
                S(
                    b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nSTLS\r\nSASL PLAIN xoauth2\r\nPIPELINING\r\n.\r\n",
                    vec![Event::Capabilities(Capabilities {
                        lines: ["CAPA", "TOP", "UIDL", "STLS", "SASL PLAIN xoauth2", "PIPELINING"]
                            .map(String::from)
                            .to_vec(),
                    })],
                ),
                C(Command::Stls, "STLS\r\n"),
                S(b"+OK Begin TLS negotiation now.\r\n", vec![Event::StartTls]),
            ],
        ),
        (
            "the server is busy (RFC 2449 IN-USE)",
            vec![
                greeting(),
                C(Command::User("me".into()), "USER me\r\n"),
                C(Command::Pass(secret("pw")), "PASS pw\r\n"),
                S(
                    b"+OK\r\n-ERR [IN-USE] Mailbox is locked by another POP3 session\r\n",
                    vec![
                        ok(Kind::User, ""),
                        Event::Err {
                            kind: Kind::Pass,
                            reply: ErrReply {
                                code: Some(ResponseCode::InUse),
                                text: "Mailbox is locked by another POP3 session".into(),
                            },
                        },
                    ],
                ),
            ],
        ),
    ];
    for (name, steps) in cases {
        play(name, steps);
    }
}

#[test]
fn transaction_transcripts() {
    let mut steps = logged_in();
    steps.extend([
        C(Command::Stat, "STAT\r\n"),
        C(Command::List, "LIST\r\n"),
        C(Command::Uidl, "UIDL\r\n"),
        S(
            b"+OK 2 320\r\n+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n",
            vec![
                Event::Stat {
                    count: 2,
                    size: 320,
                },
                Event::Listing(vec![(1, 120), (2, 200)]),
                Event::UidListing(vec![
                    (1, "whqtswO00WBw418f9t5JxYwZ".into()),
                    (2, "QhdPYR:00WBw1Ph7x7".into()),
                ]),
            ],
        ),
        // Pipelined (RFC 2449 6.6): both RETRs before either reply.
        C(
            Command::Retr {
                number: 1,
                max: 1000,
            },
            "RETR 1\r\n",
        ),
        C(
            Command::Retr {
                number: 2,
                max: 1000,
            },
            "RETR 2\r\n",
        ),
        S(
            b"+OK 120 octets\r\nSubject: a\r\n\r\n..dot\r\n.\r\n+OK\r\nX: 1\r\n\r\nbody\r\n...\r\n.x\r\n.\r\n",
            vec![
                Event::Message {
                    number: 1,
                    data: b"Subject: a\r\n\r\n.dot\r\n".to_vec(),
                },
                Event::Message {
                    number: 2,
                    data: b"X: 1\r\n\r\nbody\r\n..\r\n.x\r\n".to_vec(),
                },
            ],
        ),
        C(Command::Dele(1), "DELE 1\r\n"),
        C(Command::Dele(9), "DELE 9\r\n"),
        C(Command::Quit, "QUIT\r\n"),
        S(
            b"+OK Marked to be deleted.\r\n-ERR There's no message 9.\r\n+OK Logging out, messages deleted.\r\n",
            vec![
                ok(Kind::Dele(1), "Marked to be deleted."),
                Event::Err {
                    kind: Kind::Dele(9),
                    reply: ErrReply {
                        code: None,
                        text: "There's no message 9.".into(),
                    },
                },
                Event::Closed {
                    text: "Logging out, messages deleted.".into(),
                },
            ],
        ),
    ]);
    let client = play("transaction", steps);
    assert!(client.is_closed());
}

#[test]
fn messages_arrive_whole_however_the_bytes_are_split() {
    // Every split point, including inside "\r\n.\r\n" and "\r\n..".
    let wire: &[u8] = b"+OK\r\nA: 1\r\n\r\n..a\r\n.\r\n+OK\r\nB\r\n.\r\n";
    for split in 0..=wire.len() {
        let mut c = play("login", logged_in());
        c.send(Command::Retr {
            number: 1,
            max: 100,
        })
        .unwrap();
        c.send(Command::Retr {
            number: 2,
            max: 100,
        })
        .unwrap();
        let mut events = Vec::new();
        for part in [&wire[..split], &wire[split..]] {
            c.feed(part);
            while let Some(e) = c.next_event().unwrap() {
                events.push(e);
            }
        }
        assert_eq!(
            events,
            vec![
                Event::Message {
                    number: 1,
                    data: b"A: 1\r\n\r\n.a\r\n".to_vec()
                },
                Event::Message {
                    number: 2,
                    data: b"B\r\n".to_vec()
                }
            ],
            "split at {split}"
        );
    }
    // One byte at a time.
    let mut c = play("login", logged_in());
    c.send(Command::Retr {
        number: 1,
        max: 100,
    })
    .unwrap();
    let mut events = Vec::new();
    for b in b"+OK\r\n..\r\n.\r\n" {
        c.feed(&[*b]);
        while let Some(e) = c.next_event().unwrap() {
            events.push(e);
        }
    }
    assert_eq!(
        events,
        vec![Event::Message {
            number: 1,
            data: b".\r\n".to_vec()
        }]
    );
}

#[test]
fn long_message_lines_are_fine_and_memory_stays_bounded() {
    let mut c = play("login", logged_in());
    c.send(Command::Retr {
        number: 1,
        max: 3_000_000,
    })
    .unwrap();
    c.feed(b"+OK\r\n");
    assert_eq!(c.next_event().unwrap(), None);
    // A 2 MB line, fed in 64 KiB pieces: the input buffer never holds more
    // than a piece.
    let piece = vec![b'x'; 64 * 1024];
    for _ in 0..32 {
        c.feed(&piece);
        assert_eq!(c.next_event().unwrap(), None);
        assert!(c.buffered() <= piece.len(), "{}", c.buffered());
    }
    c.feed(b"\r\n.\r\n");
    let Some(Event::Message { data, .. }) = c.next_event().unwrap() else {
        panic!("no message")
    };
    assert_eq!(data.len(), 32 * 64 * 1024 + 2);
}

#[test]
fn hostile_servers_end_the_session_with_an_error() {
    let big_line = [vec![b'+'; MAX_LINE + 1], b"\r\n".to_vec()].concat();
    let endless_line = vec![b'a'; MAX_LINE + 10];
    let cases: Vec<(&str, Vec<Command>, Vec<u8>, Pop3Error)> = vec![
        (
            "a status line without end",
            vec![Command::Noop],
            endless_line.clone(),
            Pop3Error::LineTooLong,
        ),
        (
            "an over-long status line",
            vec![Command::Noop],
            big_line,
            Pop3Error::LineTooLong,
        ),
        (
            "a message bigger than allowed",
            vec![Command::Retr { number: 3, max: 10 }],
            b"+OK\r\n0123456789\r\n.\r\n".to_vec(),
            Pop3Error::MessageTooBig { number: 3, max: 10 },
        ),
        (
            "a reply to nothing",
            vec![],
            b"+OK surprise\r\n".to_vec(),
            Pop3Error::Unsolicited("+OK surprise".into()),
        ),
        (
            "garbage instead of a status",
            vec![Command::Noop],
            b"HTTP/1.1 400 Bad Request\r\n".to_vec(),
            Pop3Error::Malformed {
                what: "status line",
                line: "HTTP/1.1 400 Bad Request".into(),
            },
        ),
        (
            "a listing entry that is not a number",
            vec![Command::List],
            b"+OK\r\n1 many\r\n.\r\n".to_vec(),
            Pop3Error::Malformed {
                what: "LIST line",
                line: "1 many".into(),
            },
        ),
        (
            "a unique id with a control character",
            vec![Command::Uidl],
            b"+OK\r\n1 a\x1bb\r\n.\r\n".to_vec(),
            Pop3Error::Malformed {
                what: "UIDL line",
                line: "1 a?b".into(),
            },
        ),
        (
            "a challenge outside AUTH",
            vec![Command::Noop],
            b"+ abc\r\n".to_vec(),
            Pop3Error::Unsolicited("+ abc".into()),
        ),
    ];
    for (name, commands, input, expected) in cases {
        let mut c = play(name, logged_in());
        for command in commands {
            c.send(command).unwrap();
        }
        c.feed(&input);
        let mut result = c.next_event();
        while let Ok(Some(_)) = result {
            result = c.next_event();
        }
        assert_eq!(result, Err(expected.clone()), "{name}");
        // The error sticks: the session is over.
        assert_eq!(c.next_event(), Err(expected.clone()), "{name}");
        assert_eq!(c.send(Command::Noop), Err(expected), "{name}");
    }
}

#[test]
fn an_endless_listing_is_cut_off() {
    let mut c = play("login", logged_in());
    c.send(Command::Capa).unwrap();
    c.feed(b"+OK\r\n");
    for _ in 0..MAX_CAPA_LINES {
        c.feed(b"X-CAP\r\n");
        assert_eq!(c.next_event(), Ok(None));
    }
    c.feed(b"X-CAP\r\n");
    assert_eq!(c.next_event(), Err(Pop3Error::CapaTooLong));
}

#[test]
fn nothing_sent_before_tls_is_read_as_coming_through_it() {
    let mut c = Client::new();
    c.feed(b"+OK ready\r\n");
    c.next_event().unwrap();
    c.send(Command::Stls).unwrap();
    c.feed(b"+OK Begin TLS\r\n+OK injected\r\n");
    assert_eq!(c.next_event(), Ok(Some(Event::StartTls)));
    assert_eq!(c.next_event(), Err(Pop3Error::DataAfterStls));

    let mut c = Client::new();
    c.feed(b"+OK ready\r\n");
    c.next_event().unwrap();
    c.send(Command::Stls).unwrap();
    assert_eq!(c.take_output(), b"STLS\r\n");
    c.feed(b"+OK Begin TLS\r\n");
    assert_eq!(c.next_event(), Ok(Some(Event::StartTls)));
    assert!(c.send(Command::Capa).is_err(), "nothing before TLS is up");
    c.tls_started();
    c.send(Command::Capa).unwrap();
    assert_eq!(c.take_output(), b"CAPA\r\n");
}

#[test]
fn commands_are_refused_out_of_turn_or_with_bad_arguments() {
    let mut c = Client::new();
    c.feed(b"+OK\r\n");
    c.next_event().unwrap();
    let refused = [
        Command::Retr { number: 1, max: 9 },
        Command::Dele(1),
        Command::Stat,
        Command::User("two words".into()),
        Command::User("evil\r\nDELE 1".into()),
        Command::Pass(secret("x\r\nDELE 1")),
        Command::Pass(secret("")),
        Command::AuthResponse(secret("x")),
    ];
    for command in refused {
        let name = format!("{command:?}");
        assert!(c.send(command).is_err(), "{name}");
    }
    assert!(c.take_output().is_empty());
    let mut c = play("login", logged_in());
    assert!(c.send(Command::User("me".into())).is_err());
    c.send(Command::Quit).unwrap();
    assert!(c.send(Command::Noop).is_err(), "nothing after QUIT");
}

#[test]
fn a_refusing_greeting_is_an_error() {
    let mut c = Client::new();
    c.feed(b"-ERR [SYS/TEMP] too many connections\r\n");
    assert_eq!(
        c.next_event(),
        Err(Pop3Error::Refused("[SYS/TEMP] too many connections".into()))
    );
}

#[test]
fn secrets_do_not_print() {
    let debug = format!(
        "{:?} {:?} {:?}",
        Command::Pass(secret("hunter2")),
        Command::Auth {
            mechanism: "PLAIN".into(),
            initial: Some(secret("hunter2"))
        },
        Command::AuthResponse(secret("hunter2"))
    );
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[test]
fn capabilities_are_looked_up_case_insensitively() {
    let caps = Capabilities {
        lines: vec!["pipelining".into(), "SASL PLAIN xoauth2".into()],
    };
    assert!(caps.has("PIPELINING"));
    assert!(!caps.has("STLS"));
    assert_eq!(caps.sasl(), vec!["PLAIN", "XOAUTH2"]);
    assert!(
        ErrReply {
            code: Some(ResponseCode::SysTemp),
            text: String::new()
        }
        .is_temporary()
    );
}
