//! Servers that misbehave, scripted on loopback by the test: a line that
//! never ends, a message far bigger than LIST said, an IMAP server that
//! never stops talking or announces a literal of gigabytes. `fetch` must
//! end with a clear, temporary error, record nothing, delete nothing, and
//! never hold more than its bounds: it runs here with its address space
//! limited to 1 GiB while the servers offer far more than that.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::Output;
use std::time::{Duration, Instant};

use support::fetch::*;

/// Serves one connection with `script`, on a thread; returns the port.
fn serve(script: fn(TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            stream
                .set_write_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            script(stream);
        }
    });
    port
}

/// Serves `n` connections one after the other with `script`, which is told
/// which connection it serves (0, 1, ...); returns the port.
fn serve_many(script: fn(TcpStream, usize), n: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for i in 0..n {
            if let Ok((stream, _)) = listener.accept() {
                stream
                    .set_write_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                script(stream, i);
            }
        }
    });
    port
}

/// Reads one command line.
fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut s = String::new();
    r.read_line(&mut s).unwrap_or(0);
    s
}

/// Writes `chunk` until the client goes away or `total` bytes are sent.
/// What a fake IMAP server does with one command.
enum Answer {
    Say(String),
    /// End the connection (after whatever was written).
    Hang,
}

/// A fake IMAP server: greets, then gives each command (its tag, and the
/// rest in upper case) to `answer`; CAPABILITY and LOGOUT are answered
/// here.
fn fake_imap(s: TcpStream, mut answer: impl FnMut(&str, &str, &mut TcpStream) -> Answer) {
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    w.write_all(b"* OK ready\r\n").unwrap();
    loop {
        let l = line(&mut r);
        if l.is_empty() {
            return;
        }
        let mut words = l.split_whitespace();
        let tag = words.next().unwrap_or("").to_owned();
        let cmd = words.collect::<Vec<_>>().join(" ").to_ascii_uppercase();
        let reply = if cmd.starts_with("CAPABILITY") {
            format!("* CAPABILITY IMAP4rev1 UIDPLUS\r\n{tag} OK\r\n")
        } else if cmd.starts_with("LOGOUT") {
            let _ = w.write_all(format!("* BYE\r\n{tag} OK\r\n").as_bytes());
            return;
        } else {
            match answer(&tag, &cmd, &mut w) {
                Answer::Say(reply) => reply,
                Answer::Hang => return,
            }
        };
        w.write_all(reply.as_bytes()).unwrap();
    }
}

fn flood(w: &mut TcpStream, chunk: &[u8], total: u64) {
    let mut sent = 0;
    while sent < total {
        if w.write_all(chunk).is_err() {
            return;
        }
        sent += chunk.len() as u64;
    }
}

fn pop3_login(stream: &TcpStream) -> BufReader<TcpStream> {
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream.try_clone().unwrap());
    w.write_all(b"+OK ready\r\n").unwrap();
    loop {
        let l = line(&mut r);
        let reply: &[u8] = match l.split_whitespace().next().unwrap_or("") {
            "CAPA" => b"+OK\r\nUSER\r\nUIDL\r\nPIPELINING\r\n.\r\n",
            "USER" => b"+OK\r\n",
            "PASS" => {
                w.write_all(b"+OK logged in\r\n").unwrap();
                return r;
            }
            "" => return r,
            _ => b"-ERR what\r\n",
        };
        w.write_all(reply).unwrap();
    }
}

fn run_fetch(local: &Local) -> (Output, Duration) {
    let mut cmd = local.cmd();
    cmd.args(["fetch"]);
    // SAFETY: setrlimit is async-signal-safe; the child only execs after.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1 << 30,
                rlim_max: 1 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let out = support::run(&mut cmd, b"");
    (out, started.elapsed())
}

fn setup(protocol: &str, port: u16) -> Local {
    let local = Local::new();
    let pw = local.password_file("pw");
    local.write(&account(
        "bad",
        protocol,
        port,
        "none",
        &format!(
            "password_file: {}\ndeliver_to: {{maildir: Maildir}}",
            pw.display()
        ),
    ));
    local
}

fn assert_clean_temporary_failure(local: &Local, out: &Output, says: &str) {
    assert_eq!(out.status.code(), Some(75), "{}", show(out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("ownmail fetch: bad: ") && err.contains(says) && err.lines().count() == 1,
        "{}",
        show(out)
    );
    assert!(stored(&local.maildir("Maildir")).is_empty());
    let state = std::fs::read_to_string(local.state_file("bad")).unwrap();
    assert_eq!(state, "ownmail-fetch-state 1\n", "nothing recorded");
}

#[test]
fn pop3_a_line_that_never_ends() {
    let port = serve(|s| {
        let mut w = s.try_clone().unwrap();
        flood(&mut w, &[b'+'; 65536], 4 << 30);
    });
    let local = setup("pop3", port);
    let (out, took) = run_fetch(&local);
    assert_clean_temporary_failure(&local, &out, "a line longer than 8192 octets");
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn pop3_a_message_far_bigger_than_list_said() {
    let port = serve_many(
        |s, run| {
            let mut r = pop3_login(&s);
            let mut w = s.try_clone().unwrap();
            loop {
                let l = line(&mut r);
                match l.split_whitespace().next().unwrap_or("") {
                    "STAT" => w.write_all(b"+OK 1 100\r\n").unwrap(),
                    "UIDL" => w.write_all(b"+OK\r\n1 abc\r\n.\r\n").unwrap(),
                    "LIST" => w.write_all(b"+OK\r\n1 100\r\n.\r\n").unwrap(),
                    "RETR" if run == 0 => {
                        w.write_all(b"+OK\r\nSubject: big\r\n\r\n").unwrap();
                        // 4 GiB of lines, never the terminating dot.
                        flood(
                            &mut w,
                            &[b"x".repeat(1022), b"\r\n".to_vec()].concat(),
                            4 << 30,
                        );
                        return;
                    }
                    "QUIT" => {
                        w.write_all(b"+OK bye\r\n").unwrap();
                        return;
                    }
                    "" => return,
                    _ => w.write_all(b"-ERR no\r\n").unwrap(),
                }
            }
        },
        2,
    );
    let local = setup("pop3", port);
    let (out, _) = run_fetch(&local);
    // Stopped at max_size's bound (50 MiB, doubled for the wire), not at
    // what LIST said; said once, remembered as too big.
    assert_eq!(out.status.code(), Some(75), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("message 1 is bigger than 104858624 octets"),
        "{}",
        show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "bad: message 1 (UIDL abc) is bigger than the 100 bytes LIST said, more than \
             max_size allows: left on the server (raise max_size to fetch it)"
        ),
        "{}",
        show(&out)
    );
    assert!(stored(&local.maildir("Maildir")).is_empty());
    // The next run does not try it again (it would never get past it).
    let (out, _) = run_fetch(&local);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "bad: no new messages, 1 message over max_size left on the server\n"
    );
}

/// Three messages; the second is bigger than LIST says (but within
/// max_size); on the first connection the third breaks off halfway.
fn pop3_breaks_at_the_third(s: TcpStream, run: usize) {
    let mut r = pop3_login(&s);
    let mut w = s.try_clone().unwrap();
    let big = format!("Subject: 2\r\n\r\n{}\r\n", "y".repeat(3000));
    loop {
        let l = line(&mut r);
        let mut words = l.split_whitespace();
        match (words.next().unwrap_or(""), words.next()) {
            ("STAT", _) => w.write_all(b"+OK 3 60\r\n").unwrap(),
            ("UIDL", _) => w
                .write_all(b"+OK\r\n1 u1\r\n2 u2\r\n3 u3\r\n.\r\n")
                .unwrap(),
            ("LIST", _) => w
                .write_all(b"+OK\r\n1 20\r\n2 20\r\n3 20\r\n.\r\n")
                .unwrap(),
            ("RETR", Some("1")) => w
                .write_all(b"+OK\r\nSubject: 1\r\n\r\none\r\n.\r\n")
                .unwrap(),
            ("RETR", Some("2")) => w
                .write_all(format!("+OK\r\n{big}.\r\n").as_bytes())
                .unwrap(),
            ("RETR", Some("3")) if run == 0 => {
                w.write_all(b"+OK\r\nSubject: 3\r\n").unwrap();
                return;
            }
            ("RETR", Some("3")) => w
                .write_all(b"+OK\r\nSubject: 3\r\n\r\nthree\r\n.\r\n")
                .unwrap(),
            ("DELE", _) => w.write_all(b"+OK\r\n").unwrap(),
            ("QUIT", _) => {
                w.write_all(b"+OK bye\r\n").unwrap();
                return;
            }
            ("", _) => return,
            _ => w.write_all(b"-ERR what\r\n").unwrap(),
        }
    }
}

#[test]
fn pop3_a_connection_lost_mid_batch_keeps_what_was_received() {
    let local = setup("pop3", serve_many(pop3_breaks_at_the_third, 2));
    let (out, _) = run_fetch(&local);
    assert_eq!(out.status.code(), Some(75), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "bad: 2 messages fetched (40 B)\n",
        "{}",
        show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the server closed the connection"),
        "{}",
        show(&out)
    );
    let big = format!("Subject: 2\n\n{}\n", "y".repeat(3000));
    let mut want = vec![b"Subject: 1\n\none\n".to_vec(), big.into_bytes()];
    assert_same_messages(&stored(&local.maildir("Maildir")), &want, "first run");
    // The next run deletes those two and fetches only the third.
    let (out, _) = run_fetch(&local);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "bad: 1 message fetched (20 B), 3 deleted from the server\n"
    );
    want.push(b"Subject: 3\n\nthree\n".to_vec());
    assert_same_messages(&stored(&local.maildir("Maildir")), &want, "second run");
}

#[test]
fn imap_a_server_that_never_stops_talking() {
    let port = serve(|s| {
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        w.write_all(b"* OK ready\r\n").unwrap();
        let l = line(&mut r);
        let tag = l.split_whitespace().next().unwrap_or("A").to_owned();
        let _ = tag;
        // Untagged chatter forever instead of a reply to LOGIN.
        flood(
            &mut w,
            b"* OK still here, still here, still here\r\n",
            4 << 30,
        );
    });
    let local = setup("imap", port);
    let (out, _) = run_fetch(&local);
    assert_clean_temporary_failure(&local, &out, "more than the 1048576 bytes");
}

/// Two messages in one batch; on the first connection the second breaks
/// off in the middle of its literal.
fn imap_breaks_at_the_second(s: TcpStream, run: usize) {
    let one = "Subject: 1\r\n\r\none\r\n";
    let two = "Subject: 2\r\n\r\ntwo\r\n";
    fake_imap(s, |tag, cmd, w| {
        Answer::Say(if cmd.starts_with("SELECT") {
            let exists = if run == 0 { 2 } else { 1 };
            format!(
                "* {exists} EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n{tag} OK [READ-WRITE] done\r\n"
            )
        } else if cmd.starts_with("UID FETCH 1:* ") && run == 0 {
            format!(
                "* 1 FETCH (UID 5 RFC822.SIZE 20 FLAGS ())\r\n\
                 * 2 FETCH (UID 6 RFC822.SIZE 20 FLAGS ())\r\n{tag} OK\r\n"
            )
        } else if cmd.starts_with("UID FETCH 1:* ") {
            format!("* 1 FETCH (UID 6 RFC822.SIZE 20 FLAGS ())\r\n{tag} OK\r\n")
        } else if cmd.starts_with("UID FETCH 5:6 ") {
            w.write_all(
                format!(
                    "* 1 FETCH (UID 5 RFC822.SIZE 20 BODY[] {{{}}}\r\n{one})\r\n\
                     * 2 FETCH (UID 6 RFC822.SIZE 20 BODY[] {{{}}}\r\nSubj",
                    one.len(),
                    two.len()
                )
                .as_bytes(),
            )
            .unwrap();
            return Answer::Hang;
        } else if cmd.starts_with("UID FETCH 6 ") {
            format!(
                "* 1 FETCH (UID 6 RFC822.SIZE 20 BODY[] {{{}}}\r\n{two})\r\n{tag} OK\r\n",
                two.len()
            )
        } else if cmd.starts_with("UID EXPUNGE") {
            format!("* 1 EXPUNGE\r\n{tag} OK\r\n")
        } else {
            format!("{tag} OK\r\n")
        })
    });
}

#[test]
fn imap_a_connection_lost_mid_batch_keeps_what_was_received() {
    let local = setup("imap", serve_many(imap_breaks_at_the_second, 2));
    let (out, _) = run_fetch(&local);
    assert_eq!(out.status.code(), Some(75), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "bad: 1 message fetched (20 B)\n",
        "{}",
        show(&out)
    );
    let mut want = vec![b"Subject: 1\n\none\n".to_vec()];
    assert_same_messages(&stored(&local.maildir("Maildir")), &want, "first run");
    let (out, _) = run_fetch(&local);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    want.push(b"Subject: 2\n\ntwo\n".to_vec());
    assert_same_messages(&stored(&local.maildir("Maildir")), &want, "second run");
}

/// An IMAP server whose FETCH of a 100-byte message announces a literal of
/// `LITERAL` bytes and sends them.
fn imap_literal<const LITERAL: u64>(s: TcpStream) {
    fake_imap(s, |tag, cmd, w| {
        Answer::Say(if cmd.starts_with("SELECT") {
            format!("* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n{tag} OK [READ-WRITE] done\r\n")
        } else if cmd.starts_with("UID FETCH 1:* ") {
            format!("* 1 FETCH (UID 5 RFC822.SIZE 100)\r\n{tag} OK\r\n")
        } else if cmd.starts_with("UID FETCH") {
            w.write_all(
                format!("* 1 FETCH (UID 5 RFC822.SIZE 100 BODY[] {{{LITERAL}}}\r\n").as_bytes(),
            )
            .unwrap();
            flood(w, &[b'x'; 65536], LITERAL);
            return Answer::Hang;
        } else {
            format!("{tag} OK\r\n")
        })
    });
}

#[test]
fn imap_a_literal_far_bigger_than_rfc822_size_said() {
    // 400 MB: under async-imap's own ceiling (512 MiB), so our budget for
    // the batch (the sizes announced, doubled, plus 1 MiB, plus one
    // message of max_size, doubled) is what stops it.
    let local = setup("imap", serve(imap_literal::<400_000_000>));
    let (out, _) = run_fetch(&local);
    assert_clean_temporary_failure(
        &local,
        &out,
        "more than the 105914568 bytes this exchange may take",
    );
}

#[test]
fn imap_a_literal_of_gigabytes() {
    // 3 GB: async-imap refuses to make room for it at all.
    let local = setup("imap", serve(imap_literal::<3_000_000_000>));
    let (out, _) = run_fetch(&local);
    assert_clean_temporary_failure(&local, &out, "incoming data too large");
}

/// An RFC 1939-only server: no CAPA (so no PIPELINING), and it checks that
/// no command arrives before the reply to the one before.
fn strict_pop3(s: TcpStream) {
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let messages: [&[u8]; 3] = [
        b"Subject: 1\r\n\r\n..dot\r\n",
        b"Subject: 2\r\n\r\ntwo\r\n",
        b"Subject: 3\r\n\r\nthree\r\n",
    ];
    let mut deleted = Vec::new();
    w.write_all(b"+OK RFC 1939 only\r\n").unwrap();
    loop {
        let l = line(&mut r);
        if l.is_empty() {
            return;
        }
        // Pipelining would have put the next command in the buffer already.
        s.set_nonblocking(true).unwrap();
        let mut peek = [0u8; 1];
        let early = !r.buffer().is_empty() || s.peek(&mut peek).is_ok_and(|n| n > 0);
        s.set_nonblocking(false).unwrap();
        if early {
            w.write_all(b"-ERR you pipelined without PIPELINING\r\n")
                .unwrap();
            return;
        }
        let mut words = l.split_whitespace();
        let reply = match (words.next().unwrap_or(""), words.next()) {
            ("CAPA", _) => b"-ERR unknown command\r\n".to_vec(),
            ("USER", _) | ("PASS", _) | ("NOOP", _) => b"+OK\r\n".to_vec(),
            ("STAT", _) => b"+OK 3 60\r\n".to_vec(),
            ("UIDL", None) => b"+OK\r\n1 u1\r\n2 u2\r\n3 u3\r\n.\r\n".to_vec(),
            ("LIST", None) => b"+OK\r\n1 22\r\n2 21\r\n3 23\r\n.\r\n".to_vec(),
            ("RETR", Some(n)) => {
                let m = messages[n.parse::<usize>().unwrap() - 1];
                let mut out = b"+OK\r\n".to_vec();
                out.extend_from_slice(m);
                out.extend_from_slice(b".\r\n");
                out
            }
            ("DELE", Some(n)) => {
                deleted.push(n.to_owned());
                b"+OK\r\n".to_vec()
            }
            ("QUIT", _) => {
                let text = format!("+OK deleted {}\r\n", deleted.join(","));
                w.write_all(text.as_bytes()).unwrap();
                return;
            }
            _ => b"-ERR what\r\n".to_vec(),
        };
        w.write_all(&reply).unwrap();
    }
}

#[test]
fn pop3_without_capa_or_pipelining_gets_one_command_at_a_time() {
    let local = setup("pop3", serve(strict_pop3));
    let (out, _) = run_fetch(&local);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "bad: 3 messages fetched (66 B), 3 deleted from the server\n"
    );
    let expected: Vec<Vec<u8>> = vec![
        b"Subject: 1\n\n.dot\n".to_vec(),
        b"Subject: 2\n\ntwo\n".to_vec(),
        b"Subject: 3\n\nthree\n".to_vec(),
    ];
    assert_same_messages(
        &stored(&local.maildir("Maildir")),
        &expected,
        "strict server",
    );
}

/// What the \Deleted test's IMAP server was asked, command by command.
static IMAP_COMMANDS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Two messages: UID 5 marked \Deleted by another client (not expunged),
/// UID 6 not.
fn imap_with_a_deleted_message(s: TcpStream) {
    fake_imap(s, |tag, cmd, _| {
        IMAP_COMMANDS.lock().unwrap().push(cmd.to_owned());
        Answer::Say(if cmd.starts_with("SELECT") {
            format!("* 2 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n{tag} OK [READ-WRITE] done\r\n")
        } else if cmd.starts_with("UID FETCH 1:* ") {
            format!(
                "* 1 FETCH (UID 5 RFC822.SIZE 20 FLAGS (\\Deleted \\Seen))\r\n\
                 * 2 FETCH (UID 6 RFC822.SIZE 20 FLAGS ())\r\n{tag} OK\r\n"
            )
        } else if cmd.starts_with("UID FETCH 6 ") {
            let body = "Subject: 6\r\n\r\nsix\r\n";
            format!(
                "* 2 FETCH (UID 6 RFC822.SIZE 20 BODY[] {{{}}}\r\n{body})\r\n{tag} OK\r\n",
                body.len()
            )
        } else if cmd.starts_with("UID EXPUNGE 6") {
            format!("* 2 EXPUNGE\r\n{tag} OK\r\n")
        } else if cmd.starts_with("LOGIN") || cmd.starts_with("UID STORE 6 ") {
            format!("{tag} OK\r\n")
        } else {
            format!("{tag} BAD unexpected\r\n")
        })
    });
}

#[test]
fn imap_a_message_another_client_deleted_is_neither_fetched_nor_expunged() {
    let local = setup("imap", serve(imap_with_a_deleted_message));
    let (out, _) = run_fetch(&local);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "bad: 1 message fetched (20 B), 1 deleted from the server\n"
    );
    assert_same_messages(
        &stored(&local.maildir("Maildir")),
        &[b"Subject: 6\n\nsix\n".to_vec()],
        "only the message not marked \\Deleted",
    );
    let commands = IMAP_COMMANDS.lock().unwrap().clone();
    assert!(
        commands.iter().all(|c| !c.contains(" 5 ")
            && !c.contains(" 5:")
            && !c.contains(",5")
            && c != "EXPUNGE"),
        "{commands:?}"
    );
}
