//! Issue 4: the real `ownmail serve-imap` binary against real clients.
//!
//! - Python's imaplib over every command, plain and over STARTTLS and
//!   implicit TLS (a certificate made by `openssl req`);
//! - 20 concurrent clients doing SELECT/FETCH/STORE/EXPUNGE while
//!   `ownmail deliver` adds mail; then every session's view (after a NOOP,
//!   without selecting again) must equal the disk;
//! - SIGTERM: a connected client is told `* BYE` and the server exits 0.
//!
//! The peers are real and must be installed (a missing one fails the
//! test): python3 and openssl. Nothing leaves 127.0.0.1.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ownmail::store::Keywords;
use ownmail::store::uidlist;
use support::{Scratch, dovecot};

const PASSWORD: &str = "serve-secret";

struct Server {
    child: Child,
    port: u16,
    tls_port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

use support::smtp::free_port;

/// Starts `serve-imap` on two free loopback ports (plain, TLS) and waits
/// for its greeting.
fn start(scratch: &Scratch) -> Server {
    let (port, tls_port) = (free_port(), free_port());
    let child = scratch
        .cmd()
        .args(["serve-imap", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--listen-tls")
        .arg(format!("127.0.0.1:{tls_port}"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        port,
        tls_port,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line).unwrap();
            assert!(line.starts_with("* OK [CAPABILITY IMAP4rev1"), "{line}");
            return server;
        }
        assert!(Instant::now() < deadline, "serve-imap did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A scratch setup with alice, a certificate and some mail.
fn setup() -> Scratch {
    let scratch = Scratch::new();
    let cert = dovecot::make_certificate(scratch.dir.path());
    let key = scratch.dir.path().join("key.pem");
    std::fs::write(
        scratch.config(),
        format!(
            "hostname: mail.example.org\ndomains: [example.org]\ndata_dir: data\ntls: {{cert: {}, key: {}}}\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    scratch.add_user("alice", PASSWORD);
    for i in 0..5 {
        deliver(
            &scratch,
            &format!("From: s{i}@example.org\nSubject: hello {i}\n\nbody {i} zebra\n"),
        );
    }
    scratch
}

fn deliver(scratch: &Scratch, msg: &str) {
    let out = support::run(
        scratch.cmd().args(["deliver", "--user", "alice"]),
        msg.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What every client script may use: `ok(result, what)` returns an
/// imaplib result's data and records a non-OK answer in `out["errors"]`.
const PRELUDE: &str = r#"
def ok(result, what):
    typ, data = result
    if typ != "OK":
        out["errors"].append(f"{what}: {typ} {data!r}")
    return data
"#;

fn python(script: &str, args: &[String]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!("{PRELUDE}{script}"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}: install the Debian package python3"));
    assert!(
        out.status.success(),
        "the imaplib client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn imaplib_runs_every_command_against_the_binary() {
    let scratch = setup();
    let server = start(&scratch);
    let cert = scratch.dir.path().join("cert.pem");
    let seen = python(
        EVERY_COMMAND,
        &[
            server.port.to_string(),
            server.tls_port.to_string(),
            cert.display().to_string(),
            PASSWORD.into(),
        ],
    );
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen:#}");
    assert_eq!(seen["exists"], 5, "{seen}");
    assert_eq!(seen["search_zebra"], "1 2 3 4 5", "{seen}");
    assert_eq!(seen["body1"], "body 0 zebra\r\n", "{seen}");
    assert_eq!(seen["appenduid_ok"], true, "{seen}");
    assert_eq!(seen["tls_exists"], 5, "{seen}");
    assert_eq!(seen["idle_saw_exists"], true, "{seen}");
    // What the commands did is on disk.
    let md = scratch.maildir("alice");
    assert!(md.join(".Projects.2025").is_dir());
    assert!(!md.join(".Old").exists());
    let snap = uidlist::sync(&md.join(".Projects.2025")).unwrap();
    assert_eq!(snap.messages.len(), 1);
    let inbox = uidlist::sync(&md).unwrap();
    let kw = Keywords::load(&md).unwrap();
    let flagged: Vec<u32> = inbox
        .messages
        .iter()
        .filter(|m| m.flags.has_system(b'F'))
        .map(|m| m.uid)
        .collect();
    assert_eq!(flagged, vec![2], "{inbox:?}");
    assert!(kw.index_of("work").is_some());
}

#[test]
fn twenty_clients_and_deliver_at_once_end_with_every_view_equal_to_the_disk() {
    let scratch = setup();
    let server = start(&scratch);
    let deliver_cmd = format!(
        "{} --config {} deliver --user alice",
        env!("CARGO_BIN_EXE_ownmail"),
        scratch.config().display()
    );
    let views = python(
        CONCURRENT,
        &[server.port.to_string(), PASSWORD.into(), deliver_cmd],
    );
    assert_eq!(views["errors"], serde_json::json!([]), "{views:#}");
    let md = scratch.maildir("alice");
    let snap = uidlist::sync(&md).unwrap();
    let kw = Keywords::load(&md).unwrap();
    let disk: Vec<serde_json::Value> = snap
        .messages
        .iter()
        .map(|m| {
            let mut flags: Vec<String> = m.flags.system_names().map(str::to_owned).collect();
            flags.extend(
                m.flags
                    .keyword_indexes()
                    .filter_map(|i| kw.name(i))
                    .map(str::to_owned),
            );
            flags.sort();
            serde_json::json!([m.uid, flags])
        })
        .collect();
    let disk = serde_json::Value::Array(disk);
    let sessions = views["views"].as_array().unwrap();
    assert_eq!(sessions.len(), 20);
    for (i, v) in sessions.iter().enumerate() {
        assert_eq!(v, &disk, "session {i} differs from the disk");
    }
    // Every delivered message got a UID; some were expunged, none doubled.
    let uids: Vec<u64> = disk
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[0].as_u64().unwrap())
        .collect();
    assert!(uids.windows(2).all(|w| w[0] < w[1]), "{uids:?}");
    assert!(
        snap.next_uid as u64 > 5 + views["delivered"].as_u64().unwrap(),
        "{}",
        snap.next_uid
    );
    assert!(views["delivered"].as_u64().unwrap() >= 20);
}

#[test]
fn sigterm_says_bye_to_every_session_and_exits() {
    let scratch = setup();
    let mut server = start(&scratch);
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    s.write_all(format!("a LOGIN alice {PASSWORD}\r\n").as_bytes())
        .unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("a OK"), "{line}");
    // SIGHUP (a reload, to a Postfix or Dovecot admin) is no reason to
    // stop. Regression: it killed the server without a word.
    // SAFETY: a PID this test started.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(b"n NOOP\r\n").unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("n OK"), "{line}");
    assert!(server.child.try_wait().unwrap().is_none());
    // SAFETY: a PID this test started.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    line.clear();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "* BYE server shutting down\r\n");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serve-imap did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Path::new("");
}

const EVERY_COMMAND: &str = r#"
import imaplib, json, re, socket, ssl, sys, threading, time

port, tls_port, cert, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
out = {"errors": []}

M = imaplib.IMAP4("127.0.0.1", port, timeout=30)
caps = M.capabilities
for c in ["IMAP4REV1", "STARTTLS", "AUTH=PLAIN", "IDLE", "LITERAL+", "SASL-IR", "ID", "ENABLE"]:
    if c not in caps:
        out["errors"].append(f"missing capability {c}: {caps}")
ok(M.noop(), "NOOP")
try:
    M.login("alice", "wrong")
    out["errors"].append("a wrong password was accepted")
except imaplib.IMAP4.error:
    pass
ok(M.login("alice", password), "LOGIN")
caps = ok(M.capability(), "CAPABILITY")[0].decode().upper().split()
for c in ["UIDPLUS", "MOVE", "UNSELECT", "NAMESPACE", "SPECIAL-USE", "CHILDREN", "ESEARCH"]:
    if c not in caps:
        out["errors"].append(f"missing capability {c} after login: {caps}")
ok(M.namespace(), "NAMESPACE")
ok(M.xatom("ID", "NIL"), "ID")
ok(M.enable("UTF8=ACCEPT"), "ENABLE")
ok(M.create("Projects"), "CREATE")
ok(M.create("Old"), "CREATE Old")
ok(M.rename("Projects", "Projects/2025"), "RENAME")
ok(M.delete("Old"), "DELETE")
ok(M.subscribe("Projects/2025"), "SUBSCRIBE")
ok(M.unsubscribe("Projects/2025"), "UNSUBSCRIBE")
names = ok(M.list('""', "*"), "LIST")
if not any(b'"Projects/2025"' in n for n in names):
    out["errors"].append(f"LIST: {names!r}")
ok(M.lsub('""', "*"), "LSUB")
st = ok(M.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT)"), "STATUS")
if b"MESSAGES 5" not in st[0]:
    out["errors"].append(f"STATUS: {st!r}")
out["exists"] = int(ok(M.select("INBOX"), "SELECT")[0])
ok(M.examine("INBOX") if hasattr(M, "examine") else M.select("INBOX", readonly=True), "EXAMINE")
ok(M.select("INBOX"), "SELECT again")
ok(M.fetch("1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)"), "FETCH all")
body = ok(M.fetch("1", "(BODY.PEEK[TEXT])"), "FETCH BODY.PEEK[TEXT]")
out["body1"] = body[0][1].decode()
ok(M.fetch("1", "(RFC822.HEADER BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[1] BODY.PEEK[]<0.10>)"), "FETCH sections")
ok(M.fetch("1", "(RFC822)"), "FETCH RFC822")
ok(M.store("2", "+FLAGS", r"(\Flagged work)"), "STORE")
ok(M.store("1", "-FLAGS.SILENT", r"(\Seen)"), "STORE silent")
out["search_zebra"] = ok(M.search(None, "TEXT", "zebra"), "SEARCH")[0].decode()
ok(M.uid("SEARCH", "UNSEEN", "SUBJECT", "hello"), "UID SEARCH")
ok(M.search(None, "OR", "FLAGGED", "NOT", "SEEN"), "SEARCH OR NOT")
r = ok(M.append("INBOX", r"(\Seen)", None, b"Subject: appended\r\n\r\nnew\r\n"), "APPEND")
out["appenduid_ok"] = bool(re.search(rb"APPENDUID \d+ 6", r[0]))
ok(M.copy("1", "Projects/2025"), "COPY")
ok(M.uid("MOVE", "6", "Junk"), "UID MOVE")
ok(M.uid("COPY", "5", "Trash"), "UID COPY")
ok(M.store("5", "+FLAGS", r"(\Deleted)"), "STORE Deleted")
ok(M.uid("EXPUNGE", "5"), "UID EXPUNGE")
ok(M.expunge(), "EXPUNGE")
ok(M.check(), "CHECK")
ok(M.unselect(), "UNSELECT")
ok(M.select("Junk"), "SELECT Junk")
ok(M.close(), "CLOSE")

# IDLE: a delivery by another connection arrives as * n EXISTS.
ok(M.select("INBOX"), "SELECT for IDLE")
tag = M._new_tag().decode()
M.send(f"{tag} IDLE\r\n".encode())
if not M.readline().startswith(b"+"):
    out["errors"].append("IDLE: no continuation")
N = imaplib.IMAP4("127.0.0.1", port, timeout=30)
N.login("alice", password)
N.append("INBOX", None, None, b"Subject: during idle\r\n\r\nx\r\n")
N.logout()
M.sock.settimeout(10)
line = M.readline()
out["idle_saw_exists"] = line.endswith(b"EXISTS\r\n")
M.send(b"DONE\r\n")
while True:
    line = M.readline()
    if line.startswith(tag.encode()):
        if b" OK " not in line:
            out["errors"].append(f"IDLE end: {line!r}")
        break
if M.logout()[0] != "BYE":
    out["errors"].append("LOGOUT: no BYE")

# STARTTLS and implicit TLS with the self-signed certificate pinned as CA.
ctx = ssl.create_default_context(cafile=cert)
S = imaplib.IMAP4("127.0.0.1", port, timeout=30)
ok(S.starttls(ssl_context=ctx), "STARTTLS")
ok(S.authenticate("PLAIN", lambda _: b"\0alice\0" + password.encode()), "AUTHENTICATE PLAIN")
S.logout()
T = imaplib.IMAP4_SSL("127.0.0.1", tls_port, ssl_context=ctx, timeout=30)
ok(T.login("alice", password), "LOGIN over TLS")
out["tls_exists"] = int(ok(T.select("INBOX"), "SELECT over TLS")[0])
T.logout()
print(json.dumps(out))
"#;

const CONCURRENT: &str = r#"
import imaplib, json, random, re, subprocess, sys, threading

port, password, deliver = int(sys.argv[1]), sys.argv[2], sys.argv[3]
CLIENTS, ROUNDS, DELIVERIES = 20, 15, 40
errors, views = [], [None] * CLIENTS
mutated = threading.Barrier(CLIENTS + 1)
lock = threading.Lock()

def err(msg):
    with lock:
        errors.append(msg)

def check(r, what):
    if r[0] != "OK":
        err(f"{what}: {r!r}")
    return r[1]

def client(n):
    rng = random.Random(n)
    try:
        M = imaplib.IMAP4("127.0.0.1", port, timeout=60)
        check(M.login("alice", password), "LOGIN")
        for _ in range(ROUNDS):
            check(M.select("INBOX"), "SELECT")
            data = check(M.fetch("1:*", "(UID FLAGS)"), "FETCH")
            uids = [int(m[1]) for m in (re.search(rb"UID (\d+)", d) for d in data if isinstance(d, bytes)) if m]
            if not uids:
                continue
            u = rng.choice(uids)
            check(M.uid("STORE", str(u), "+FLAGS", rng.choice([r"(\Seen)", r"(\Flagged)", "(work)", f"(k{n % 5})"])), "STORE")
            if rng.random() < 0.3:
                check(M.uid("STORE", str(rng.choice(uids)), "-FLAGS", r"(\Seen work)"), "STORE -")
            if rng.random() < 0.2:
                check(M.uid("STORE", str(rng.choice(uids)), "+FLAGS", r"(\Deleted)"), "STORE Deleted")
                check(M.expunge(), "EXPUNGE")
            check(M.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"), "FETCH headers")
        mutated.wait()
        mutated.wait()
        # No new SELECT: the session's own view, brought up to date by NOOP.
        check(M.noop(), "NOOP")
        M.response("FETCH")  # the NOOP's flag news; the FETCH below is what counts
        data = check(M.fetch("1:*", "(UID FLAGS)"), "final FETCH")
        view = {}
        for d in data:
            if not isinstance(d, bytes):
                continue
            uid = int(re.search(rb"UID (\d+)", d)[1])
            flags = sorted(f for f in re.search(rb"FLAGS \(([^)]*)\)", d)[1].decode().split() if f != "\\Recent")
            view[uid] = flags
        views[n] = sorted([u, f] for u, f in view.items())
        M.logout()
    except Exception as e:
        err(f"client {n}: {e!r}")
        try:
            mutated.abort()
        except Exception:
            pass

threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
for t in threads:
    t.start()
delivered = 0
for i in range(DELIVERIES):
    p = subprocess.run(deliver, shell=True, input=f"Subject: delivered {i}\n\nbody {i}\n".encode(), capture_output=True)
    if p.returncode != 0:
        err(f"deliver: {p.stderr!r}")
    else:
        delivered += 1
try:
    mutated.wait()
    mutated.wait()
except threading.BrokenBarrierError:
    err("a client failed before the end")
for t in threads:
    t.join()
print(json.dumps({"errors": errors, "views": views, "delivered": delivered}))
"#;

/// `ownmail serve` with no configuration anywhere: it writes
/// ./ownmail.yaml, says how to add a user, and serves IMAP on
/// 127.0.0.1:1143; `ownmail user add` in the same folder makes a user who
/// can then log in.
#[test]
fn serve_with_no_configuration_starts_imap_and_smtp_on_loopback_and_says_how_to_add_a_user() {
    let dir = tempfile::tempdir().unwrap();
    let child = support::ownmail()
        .arg("serve")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed on a failure, like the other servers here.
    let mut server = Server {
        child,
        port: 1143,
        tls_port: 0,
    };
    let mut stderr = BufReader::new(server.child.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("IMAP on 127.0.0.1:1143 (plain") {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "serve said only: {said}"
        );
        said.push_str(&line);
    }
    assert!(
        said.contains("wrote ") && said.contains("ownmail.yaml"),
        "{said}"
    );
    assert!(said.contains("ownmail user add NAME"), "{said}");
    let yaml = std::fs::read_to_string(dir.path().join("ownmail.yaml")).unwrap();
    assert!(yaml.contains("data_dir: ownmail-data"), "{yaml}");
    let out = support::run(
        support::ownmail()
            .current_dir(dir.path())
            .args(["user", "add", "bob", "--password-stdin"]),
        b"bob-secret\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let s = loop {
        match TcpStream::connect(("127.0.0.1", 1143)) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "no IMAP on 1143: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    (&s).write_all(b"a LOGIN bob bob-secret\r\n").unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("a OK [CAPABILITY"), "{line}");
    assert!(dir.path().join("ownmail-data/mail/bob").is_dir());
    // The same process receives mail over SMTP on 127.0.0.1:2525, for the
    // host name it greets with, into the INBOX that IMAP serves.
    let smtp = TcpStream::connect(("127.0.0.1", 2525)).expect("no SMTP on 2525");
    smtp.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut sr = BufReader::new(smtp.try_clone().unwrap());
    let mut reply = |expect: &str| {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            assert!(sr.read_line(&mut l).unwrap() > 0, "SMTP closed after {all}");
            all.push_str(&l);
            if l.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
        assert!(all.starts_with(expect), "expected {expect}, got {all}");
        all
    };
    let greeting = reply("220 ");
    let host = greeting[4..].split_whitespace().next().unwrap().to_owned();
    for (line, expect) in [
        ("EHLO test.example\r\n".to_owned(), "250"),
        ("MAIL FROM:<carol@elsewhere.example>\r\n".to_owned(), "250"),
        (format!("RCPT TO:<bob@{host}>\r\n"), "250"),
        ("DATA\r\n".to_owned(), "354"),
        (
            "Subject: first mail\r\n\r\nHello Bob.\r\n.\r\n".to_owned(),
            "250",
        ),
        ("QUIT\r\n".to_owned(), "221"),
    ] {
        (&smtp).write_all(line.as_bytes()).unwrap();
        reply(expect);
    }
    (&s).write_all(b"b SELECT INBOX\r\n").unwrap();
    let mut selected = String::new();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "{selected}");
        selected.push_str(&line);
        if line.starts_with("b ") {
            break;
        }
    }
    assert!(
        selected.contains("* 1 EXISTS") && selected.contains("b OK"),
        "{selected}"
    );
    // SAFETY: a PID this test started.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    assert!(server.child.wait().unwrap().success());
}

/// benches/serve_imap.sh: SEARCH TEXT "viagra" found 50 messages where
/// Dovecot found 51. The one missed is corpus spam-2/00680.e8df67f…: an
/// HTML-only message whose `<head>` is never closed, which mail-parser's
/// HTML-to-text conversion emptied. HTML is now searched as decoded source.
#[test]
fn search_text_finds_the_html_message_with_an_unclosed_head() {
    let path = support::corpus_dir().join("spam-2/00680.e8df67f239cb166c5a8a78401eeeb1ba.txt");
    let raw = std::fs::read(&path).unwrap();
    let msg = &raw[raw.iter().position(|&b| b == b'\n').unwrap() + 1..];
    let part = ownmail::message::mime::parse(msg);
    let leaves = ownmail::message::mime::leaves(&part);
    let text: String = leaves
        .iter()
        .filter_map(|p| ownmail::message::mime::leaf_text(msg, p))
        .collect();
    assert!(text.to_lowercase().contains("viagra (sexual)"), "{text:?}");
}

/// Issue 4: IDLE wakes within a second of a change, through inotify. With a
/// watch, the periodic rescan behind it runs only every 5 s (checked: with
/// the watch disabled and that rescan alone, this test fails at 5 s); where
/// inotify is unavailable, a 500 ms poll takes over.
#[test]
fn idle_reports_exists_within_a_second_of_a_deliver() {
    let scratch = setup();
    let server = start(&scratch);
    let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    let mut read_until = |r: &mut BufReader<TcpStream>, prefix: &str| -> String {
        loop {
            line.clear();
            let n = r.read_line(&mut line).unwrap();
            assert!(n > 0, "the server closed the connection");
            if line.starts_with(prefix) {
                return line.clone();
            }
        }
    };
    read_until(&mut r, "* OK");
    write!(
        w,
        "a LOGIN alice {PASSWORD}\r\nb SELECT INBOX\r\nc IDLE\r\n"
    )
    .unwrap();
    read_until(&mut r, "a OK");
    read_until(&mut r, "b OK");
    read_until(&mut r, "+ ");
    for n in 6..9 {
        deliver(&scratch, &format!("Subject: during idle {n}\n\nx\n"));
        let delivered = Instant::now();
        let got = read_until(&mut r, "* ");
        let took = delivered.elapsed();
        assert_eq!(got, format!("* {n} EXISTS\r\n"));
        assert!(took < Duration::from_secs(1), "EXISTS after {took:?}");
        // RECENT follows EXISTS.
        read_until(&mut r, "* ");
    }
    write!(w, "DONE\r\nz LOGOUT\r\n").unwrap();
    read_until(&mut r, "c OK");
}

/// The server's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"))
}

#[test]
fn a_100_mb_append_is_streamed_to_disk_not_held_in_memory() {
    let scratch = setup();
    let server = start(&scratch);
    let before = peak_rss_kib(server.child.id());
    let seen = python(BIG_APPEND, &[server.port.to_string(), PASSWORD.into()]);
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen:#}");
    let size = seen["size"].as_u64().unwrap();
    assert!(size > 100_000_000, "{seen}");
    assert_eq!(seen["rfc822_size"].as_u64(), Some(size), "{seen}");
    let peak = peak_rss_kib(server.child.id());
    eprintln!("peak RSS: {before} KiB before the APPEND, {peak} KiB after");
    // A message held in memory would be 100 MB at least (twice, framed).
    assert!(
        peak < before + 30 * 1024,
        "peak RSS {peak} KiB (before the APPEND: {before} KiB)"
    );
    // On disk: the message with LF line ends, byte for byte.
    let md = scratch.maildir("alice");
    let snap = uidlist::sync(&md).unwrap();
    let m = snap.messages.last().unwrap();
    assert!(m.flags.has_system(b'S'), "{m:?}");
    let on_disk = std::fs::read(m.path(&md)).unwrap();
    let want: String = seen["lf_sha256"].as_str().unwrap().to_owned();
    use sha2::Digest;
    let got = sha2::Sha256::digest(&on_disk)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    assert_eq!(got, want);
    assert!(std::fs::read_dir(md.join("tmp")).unwrap().next().is_none());
}

const BIG_APPEND: &str = r#"
import hashlib, imaplib, json, re, sys

port, password = int(sys.argv[1]), sys.argv[2]
out = {"errors": []}
line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?\r\n"
n = 100_000_000 // len(line) + 1
msg = b"From: big@example.org\r\nSubject: big\r\n\r\n" + line * n
out["size"] = len(msg)
out["lf_sha256"] = hashlib.sha256(msg.replace(b"\r\n", b"\n")).hexdigest()
M = imaplib.IMAP4("127.0.0.1", port, timeout=120)
M.login("alice", password)
typ, data = M.append("INBOX", r"(\Seen)", None, msg)
if typ != "OK" or not re.search(rb"APPENDUID \d+ 6", data[0]):
    out["errors"].append(f"APPEND: {typ} {data!r}")
del msg
M.select("INBOX")
typ, data = M.uid("FETCH", "6", "(RFC822.SIZE)")
m = re.search(rb"RFC822.SIZE (\d+)", data[0] or b"")
out["rfc822_size"] = int(m.group(1)) if m else None
M.logout()
print(json.dumps(out))
"#;

#[test]
fn imaplib_condstore_survives_a_restart_and_rename_inbox_and_list_extended_work() {
    let scratch = setup();
    let server = start(&scratch);
    let first = python(
        CONDSTORE,
        &[server.port.to_string(), PASSWORD.into(), "0".into()],
    );
    assert_eq!(first["errors"], serde_json::json!([]), "{first:#}");
    drop(server);
    // Restarted, the numbers are the same; a change after is above them.
    let server = start(&scratch);
    let high = first["high"].as_u64().unwrap();
    let second = python(
        CONDSTORE,
        &[server.port.to_string(), PASSWORD.into(), high.to_string()],
    );
    assert_eq!(second["errors"], serde_json::json!([]), "{second:#}");
    assert_eq!(second["high_at_select"].as_u64(), Some(high), "{second}");
    assert!(second["high"].as_u64().unwrap() > high, "{second}");
    let md = scratch.maildir("alice");
    assert!(md.join(ownmail::store::modseq::FILE_NAME).is_file());
    // RENAME INBOX moved the messages; INBOX is there and empty.
    assert_eq!(uidlist::sync(&md).unwrap().messages.len(), 0);
    assert_eq!(
        uidlist::sync(&md.join(".Archive.2"))
            .unwrap()
            .messages
            .len(),
        5
    );
}

const CONDSTORE: &str = r#"
import imaplib, json, re, sys

port, password, before = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
out = {"errors": []}

def num(pattern, data):
    m = re.search(pattern, b" ".join(d if isinstance(d, bytes) else b"" for d in data))
    return int(m.group(1)) if m else None

A = imaplib.IMAP4("127.0.0.1", port, timeout=30)
B = imaplib.IMAP4("127.0.0.1", port, timeout=30)
for M in (A, B):
    ok(M.login("alice", password), "LOGIN")
if "CONDSTORE" not in A.capabilities and b"CONDSTORE" not in ok(A.capability(), "CAPABILITY")[0]:
    out["errors"].append("no CONDSTORE capability")
ok(A.enable("CONDSTORE"), "ENABLE")
ok(A._simple_command("SELECT", "INBOX", "(CONDSTORE)"), "SELECT (CONDSTORE)")
A.state = "SELECTED"  # imaplib's select() cannot send the parameter
# imaplib files `* OK [HIGHESTMODSEQ n]` under the code's name.
high = int(A.untagged_responses.get("HIGHESTMODSEQ", [b"0"])[-1])
out["high_at_select"] = high
if before and high != before:
    out["errors"].append(f"HIGHESTMODSEQ {high} after a restart, was {before}")
ok(B.select("INBOX"), "SELECT B")
ok(B.store("1", "+FLAGS", r"(\Answered)" if before else r"(\Flagged)"), "STORE B")
typ, data = A.noop()
fetches = A.untagged_responses.pop("FETCH", [])
m1 = num(rb"MODSEQ \((\d+)\)", fetches)
if not m1 or m1 <= high:
    out["errors"].append(f"NOOP after B's STORE: {fetches!r} (highest was {high})")
data = ok(A.uid("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {high})"), "UID FETCH CHANGEDSINCE")
if len([d for d in data if d]) != 1 or b"\\Flagged" not in (data[0] or b""):
    out["errors"].append(f"CHANGEDSINCE: {data!r}")
typ, data = A.uid("STORE", "1", f"(UNCHANGEDSINCE {high}) +FLAGS (\\Seen)")
# imaplib files the tagged OK's [MODIFIED 1] under MODIFIED too.
modified = A.untagged_responses.pop("MODIFIED", [None])[-1]
if typ != "OK" or modified != b"1":
    out["errors"].append(f"UNCHANGEDSINCE: {typ} {data!r}")
data = ok(A.uid("SEARCH", f"MODSEQ {m1}"), "SEARCH MODSEQ")
if not (data[0] or b"").startswith(b"1 (MODSEQ"):
    out["errors"].append(f"SEARCH MODSEQ: {data!r}")
st = ok(B.status("INBOX", "(HIGHESTMODSEQ)"), "STATUS HIGHESTMODSEQ")
out["high"] = num(rb"HIGHESTMODSEQ (\d+)", st)
if out["high"] != m1:
    out["errors"].append(f"STATUS {st!r}, want {m1}")
if before:
    # LIST-EXTENDED, then RENAME INBOX (RFC 3501 6.3.5).
    ok(B.create("Archive/1"), "CREATE")
    ok(B.subscribe("Archive/1"), "SUBSCRIBE")
    data = ok(B._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "%"), "LIST RECURSIVEMATCH")
    data = B.untagged_responses.pop("LIST", [])
    if not any(b'"Archive" ("CHILDINFO" ("SUBSCRIBED"))' in d for d in data):
        out["errors"].append(f"LIST (SUBSCRIBED RECURSIVEMATCH): {data!r}")
    ok(B.rename("Archive/1", "Archive/3"), "RENAME")
    data = ok(B.lsub('""', "*"), "LSUB")
    if not any(b'"Archive/3"' in d for d in data) or any(b'"Archive/1"' in d for d in data):
        out["errors"].append(f"LSUB after RENAME: {data!r}")
    ok(B.close(), "CLOSE")
    ok(A.close(), "CLOSE A")
    ok(B.rename("INBOX", "Archive/2"), "RENAME INBOX")
    st = ok(B.status("INBOX", "(MESSAGES)"), "STATUS INBOX")
    if b"MESSAGES 0" not in st[0]:
        out["errors"].append(f"INBOX after RENAME: {st!r}")
for M in (A, B):
    M.logout()
print(json.dumps(out))
"#;

/// An address of this machine that is not loopback: a client that is not
/// local, without another machine.
fn non_loopback_address() -> std::net::IpAddr {
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    // A UDP connect sends nothing; it picks the route's source address.
    udp.connect("192.0.2.1:9")
        .expect("this test needs a network interface with a route (a non-loopback address)");
    let ip = udp.local_addr().unwrap().ip();
    assert!(!ip.is_loopback() && !ip.is_unspecified(), "{ip}");
    ip
}

/// inetd on 993 (`--stdio --tls`) and on 143 (`--stdio`): the socket inetd
/// hands over carries the session, TLS runs over it, and its peer is the
/// client, so a remote one gets LOGINDISABLED without TLS, as on a
/// listener. Regressions: TLS failed after the handshake ("operation would
/// block"), and every stdio session took passwords in plain text.
#[test]
fn stdio_on_an_inetd_socket_speaks_tls_and_knows_its_client() {
    use std::os::fd::OwnedFd;
    use std::process::Stdio;
    let scratch = setup();
    let script = r#"
import imaplib, json, ssl, sys
host, port, tls, password = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "tls", sys.argv[4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if tls:
    c = imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=20)
else:
    c = imaplib.IMAP4(host, port, timeout=20)
out = {"caps": sorted(c.capabilities)}
try:
    c.login("alice", password)
    out["exists"] = int(c.select("INBOX")[1][0])
except imaplib.IMAP4.error as e:
    out["refused"] = str(e)
c.logout()
print(json.dumps(out))
"#;
    let remote = non_loopback_address();
    let cases = [
        ("127.0.0.1".parse().unwrap(), "tls"),
        (remote, "tls"),
        ("127.0.0.1".parse().unwrap(), "plain"),
        (remote, "plain"),
    ];
    for (ip, mode) in cases {
        let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let python = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args([
                ip.to_string(),
                port.to_string(),
                mode.into(),
                PASSWORD.into(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3: install the Debian package python3");
        let (tcp, _) = listener.accept().unwrap();
        let mut server = scratch.cmd();
        server.args(["serve-imap", "--stdio"]);
        if mode == "tls" {
            server.arg("--tls");
        }
        let server = server
            .stdin(Stdio::from(OwnedFd::from(tcp.try_clone().unwrap())))
            .stdout(Stdio::from(OwnedFd::from(tcp)))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let py = python.wait_with_output().unwrap();
        let served = server.wait_with_output().unwrap();
        let what = format!(
            "{ip} {mode}: {}{}\nserver: {}",
            String::from_utf8_lossy(&py.stdout),
            String::from_utf8_lossy(&py.stderr),
            String::from_utf8_lossy(&served.stderr)
        );
        assert!(py.status.success() && served.status.success(), "{what}");
        let seen: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
        let disabled = seen["caps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "LOGINDISABLED");
        if mode == "plain" && ip == remote {
            assert!(disabled && seen["refused"].is_string(), "{what}");
        } else {
            assert!(!disabled && seen["exists"] == 5, "{what}");
        }
    }
}

/// Under inetd each connection is a process of its own, so failed logins
/// are counted in a file: the wait before a failed LOGIN's answer doubles
/// across connections as it does within one (1, 2, then 4 s). Regression:
/// every connection started again at 1 s.
#[test]
fn failed_logins_count_across_stdio_sessions() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::fd::OwnedFd;
    use std::process::Stdio;
    let scratch = setup();
    let login = |password: &str| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (tcp, _) = listener.accept().unwrap();
        let mut server = scratch
            .cmd()
            .args(["serve-imap", "--stdio"])
            .stdin(Stdio::from(OwnedFd::from(tcp.try_clone().unwrap())))
            .stdout(Stdio::from(OwnedFd::from(tcp)))
            .spawn()
            .unwrap();
        let mut r = BufReader::new(client.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let started = std::time::Instant::now();
        (&client)
            .write_all(format!("a LOGIN alice \"{password}\"\r\nb LOGOUT\r\n").as_bytes())
            .unwrap();
        let answer = loop {
            line.clear();
            assert!(r.read_line(&mut line).unwrap() > 0, "no answer to LOGIN");
            if line.starts_with("a ") {
                break line.clone();
            }
        };
        let waited = started.elapsed();
        server.wait().unwrap();
        (answer, waited)
    };
    for (i, wait) in [1, 2, 4].into_iter().enumerate() {
        let (answer, waited) = login("wrong");
        assert!(
            answer.starts_with("a NO [AUTHENTICATIONFAILED]"),
            "{answer}"
        );
        assert!(
            waited >= Duration::from_secs(wait) && waited < Duration::from_secs(wait * 2),
            "connection {i}: waited {waited:?}, not {wait} s"
        );
    }
    // The right password gets in, and forgets the failures.
    let (answer, _) = login(PASSWORD);
    assert!(answer.starts_with("a OK"), "{answer}");
    let (_, waited) = login("wrong");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}

/// inetd hands the client's socket over as stderr too: a log line there
/// would land in the middle of the protocol. Regression: with `-vv` the
/// client read the server's debug lines. They go to syslog instead.
#[test]
fn under_inetd_log_lines_never_reach_the_client() {
    use std::io::{Read, Write};
    use std::os::fd::OwnedFd;
    use std::process::Stdio;
    let scratch = setup();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (tcp, _) = listener.accept().unwrap();
    let mut server = scratch
        .cmd()
        .args(["-vvv", "serve-imap", "--stdio"])
        .stdin(Stdio::from(OwnedFd::from(tcp.try_clone().unwrap())))
        .stdout(Stdio::from(OwnedFd::from(tcp.try_clone().unwrap())))
        .stderr(Stdio::from(OwnedFd::from(tcp)))
        .spawn()
        .unwrap();
    client
        .write_all(
            format!("a LOGIN alice nope\r\nb LOGIN alice \"{PASSWORD}\"\r\nc SELECT INBOX\r\nd LOGOUT\r\n")
                .as_bytes(),
        )
        .unwrap();
    let mut got = String::new();
    client.read_to_string(&mut got).unwrap();
    assert!(server.wait().unwrap().success());
    assert!(got.contains("d OK LOGOUT"), "{got}");
    for line in got.lines() {
        let first = line.split(' ').next().unwrap_or("");
        assert!(
            ["*", "+", "a", "b", "c", "d"].contains(&first),
            "not IMAP: {line:?}\n{got}"
        );
    }
}

/// On a Unix socket (socat or stunnel `exec`) the client is unknown, so
/// it gets no plain-text login, as serve-smtp does; over pipes (ssh) it
/// does. Regression: both took plain-text passwords.
#[test]
fn stdio_on_a_unix_socket_takes_no_plain_text_password() {
    use std::io::{Read, Write};
    use std::os::fd::OwnedFd;
    use std::process::Stdio;
    let scratch = setup();
    let session = format!("a CAPABILITY\r\nb LOGIN alice \"{PASSWORD}\"\r\nc LOGOUT\r\n");
    let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut server = scratch
        .cmd()
        .args(["serve-imap", "--stdio"])
        .stdin(Stdio::from(OwnedFd::from(theirs.try_clone().unwrap())))
        .stdout(Stdio::from(OwnedFd::from(theirs)))
        .spawn()
        .unwrap();
    ours.write_all(session.as_bytes()).unwrap();
    let mut got = String::new();
    ours.read_to_string(&mut got).unwrap();
    server.wait().unwrap();
    assert!(
        got.contains("LOGINDISABLED") && got.contains("b NO "),
        "{got}"
    );
    // Pipes: ssh's, private already.
    let out = support::run(
        scratch.cmd().args(["serve-imap", "--stdio"]),
        session.as_bytes(),
    );
    let got = String::from_utf8_lossy(&out.stdout);
    assert!(
        !got.contains("LOGINDISABLED") && got.contains("b OK "),
        "{got}"
    );
}

/// The numbers of the test messages (`Subject: move <n>`) in a folder's
/// `new/` and `cur/`, one entry per file.
fn numbers_in(folder: &Path) -> Vec<usize> {
    support::messages(folder)
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let n = text
                .lines()
                .next()
                .unwrap()
                .strip_prefix("Subject: move ")
                .unwrap();
            n.parse().unwrap()
        })
        .collect()
}

/// "A crash at any instant leaves the old state or the new one": kill -9
/// in the middle of a MOVE of 3,000 messages, at three different points.
/// Every message is then in exactly one of the two folders, never in both
/// (a MOVE made of a copy and an expunge left every copied one twice) and
/// never in neither. The server serving them afterwards agrees.
#[test]
fn sigkill_during_a_move_leaves_each_message_in_exactly_one_folder() {
    const N: usize = 3000;
    for (round, cut) in [N / 10, N / 2, N * 9 / 10].into_iter().enumerate() {
        let scratch = setup();
        let inbox = scratch.maildir("alice");
        for i in 0..5 {
            deliver(&scratch, &format!("Subject: other {i}\n\nx\n"));
        }
        // The five messages of setup() and these are not moved: only ours,
        // written straight into cur/ as another program would.
        for f in support::messages(&inbox) {
            std::fs::remove_file(f).unwrap();
        }
        for n in 0..N {
            std::fs::write(
                inbox
                    .join("cur")
                    .join(format!("1700000000.M{n}P1Q1.test:2,S")),
                format!("Subject: move {n}\n\nbody {n}\n"),
            )
            .unwrap();
        }
        let archive = inbox.join(".Archive");
        let mut child = scratch
            .cmd()
            .args(["serve-imap", "--stdio", "--preauth", "--user", "alice"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"c CREATE Archive\r\ns SELECT INBOX\r\nm MOVE 1:* Archive\r\n")
            .unwrap();
        // Kill as soon as `cut` messages have arrived in Archive.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let arrived = ["new", "cur"]
                .iter()
                .filter_map(|s| std::fs::read_dir(archive.join(s)).ok())
                .map(|d| d.count())
                .sum::<usize>();
            if arrived >= cut {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: the MOVE did not start"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let mut seen = numbers_in(&inbox);
        let moved = numbers_in(&archive);
        assert!(
            !moved.is_empty() && moved.len() < N,
            "round {round}: killed after {} of {N}: not in the middle",
            moved.len()
        );
        seen.extend(moved);
        let mut count = vec![0; N];
        for n in seen {
            count[n] += 1;
        }
        let twice: Vec<usize> = (0..N).filter(|&n| count[n] > 1).collect();
        let lost: Vec<usize> = (0..N).filter(|&n| count[n] == 0).collect();
        assert!(
            twice.is_empty() && lost.is_empty(),
            "round {round}: {} messages in both folders (first {:?}), {} in neither (first {:?})",
            twice.len(),
            &twice[..twice.len().min(5)],
            lost.len(),
            &lost[..lost.len().min(5)]
        );
    }
}

/// Regression: `ownmail serve` said "IMAP on ..." and "SMTP on ..." (and
/// bound IMAP, logging "listening") before it found the SMTP port taken.
/// Now it binds everything first: a taken port is an error naming that
/// address, exit 75 as serve-smtp's own, and nothing was announced.
#[test]
fn serve_with_a_port_taken_announces_nothing_and_names_the_address() {
    let s = Scratch::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap();
    let imap_port = free_port();
    std::fs::write(
        s.config(),
        format!(
            "hostname: mail.example.org\ndomains: [example.org]\ndata_dir: data\n\
             imap:\n  listen: [\"127.0.0.1:{imap_port}\"]\n\
             smtp:\n  listen: [\"{taken_addr}\"]\n"
        ),
    )
    .unwrap();
    let mut child = s
        .cmd()
        .arg("serve")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve kept running with {taken_addr} taken");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(75), "{said}");
    assert!(
        said.contains(&format!("cannot listen on {taken_addr}"))
            && said.contains("another program"),
        "{said}"
    );
    for announced in ["listening", "IMAP on", "SMTP on", &imap_port.to_string()] {
        assert!(!said.contains(announced), "{announced:?} in: {said}");
    }
    drop(taken);
}
