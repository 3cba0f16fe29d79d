//! Issue 2, interop: Dovecot serves a Maildir that `ownmail deliver` filled,
//! and Python's imaplib sees every message, byte for byte, with the flags
//! and keywords `deliver` set.
//!
//! The peers are real and must be installed (a missing one fails the test):
//! Dovecot (Debian: dovecot-imapd) and python3. Nothing leaves 127.0.0.1.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{corpus_dir, corpus_files, dovecot, ownmail, run};

const USER: &str = "alice";
const PASSWORD: &str = "imap-secret";
const RECIPIENT: &str = "alice@example.org";
const SUBFOLDER: &str = "Lists/rust";
const SUBFOLDER_DIR: &str = ".Lists.rust";

/// The `--flags` given to `deliver`, cycled over the messages. The subfolder
/// takes them in reverse, so that its `dovecot-keywords` gives the same
/// keywords other letters than INBOX's: Dovecot must read each folder's own.
const FLAG_SETS: &[&str] = &[
    "",
    "\\Seen",
    "\\Flagged \\Answered",
    "$Label1 work",
    "\\Seen \\Flagged $Label1 work urgent",
    "\\Draft \\Deleted $Junk",
];

/// One corpus message in this many (sorted by path): 25 of the 6,046,
/// spread over every group.
const CORPUS_STEP: usize = 250;

/// Corpus messages taken besides the sample, for what they hold: the one
/// message with CR LF line ends and carriage returns before them.
const SPECIAL: &[&str] = &["spam-2/00083.1aead789d4b4c7022c51bc632e4f2445.txt"];

/// A message as handed to `deliver`, and what must come of it.
struct Sent {
    folder: &'static str,
    /// `--flags` as given; the IMAP flags expected are its words.
    flags: &'static str,
    /// The file `deliver` created.
    file: PathBuf,
    /// What the file must hold, worked out by this test from the input.
    expected: Vec<u8>,
    label: String,
}

#[test]
fn dovecot_serves_what_deliver_stored_with_its_flags_and_keywords() {
    let mut setup = dovecot::Setup::new();
    setup.imap();
    let maildir = setup.user(USER, PASSWORD);

    let mut sent = Vec::new();
    let mut counts = HashMap::<&str, usize>::new();
    let mut next_flags = |folder: &'static str| {
        let n = counts.entry(folder).or_default();
        let i = if folder == "INBOX" {
            *n % FLAG_SETS.len()
        } else {
            FLAG_SETS.len() - 1 - *n % FLAG_SETS.len()
        };
        *n += 1;
        FLAG_SETS[i]
    };

    // Hand-made messages: 8-bit headers and bodies, an mbox From line, CRLF
    // input, no final line end, a Return-Path that --from replaces.
    for HandMade {
        folder,
        from,
        input,
        expected,
    } in hand_made()
    {
        let flags = next_flags(folder);
        let label = format!("hand-made {:?}", String::from_utf8_lossy(&input[..30]));
        let file = deliver(setup.dir(), &maildir, folder, flags, from, &input, &label);
        sent.push(Sent {
            folder,
            flags,
            file,
            expected,
            label,
        });
    }
    // Real mail: the From line stripped, no sender given, so that the
    // message's own Return-Path stays and deliver only adds Delivered-To.
    for (i, path) in corpus_sample().into_iter().enumerate() {
        let raw = std::fs::read(&path).unwrap();
        let bare = strip_from_line(&raw).to_vec();
        let folder = if i % 3 == 2 { SUBFOLDER } else { "INBOX" };
        let flags = next_flags(folder);
        let label = path.display().to_string();
        let file = deliver(setup.dir(), &maildir, folder, flags, None, &bare, &label);
        let mut expected = format!("Delivered-To: {RECIPIENT}\n").into_bytes();
        expected.extend(crlf_to_lf(&bare));
        sent.push(Sent {
            folder,
            flags,
            file,
            expected,
            label,
        });
    }

    // What deliver stored, before any server touches it.
    for s in &sent {
        let stored = std::fs::read(&s.file).unwrap();
        assert!(
            stored == s.expected,
            "{}: the stored file differs from what was delivered",
            s.label
        );
        let (size, vsize) = sizes_in_name(&s.file);
        assert_eq!(size, stored.len() as u64, "S= of {}", s.file.display());
        assert_eq!(
            vsize,
            to_crlf(&stored).len() as u64,
            "W= of {}",
            s.file.display()
        );
    }
    // The test covers what it claims: a keyword has different letters in
    // the two folders.
    let letter = |dir: &Path, keyword: &str| {
        let text = std::fs::read_to_string(dir.join("dovecot-keywords")).unwrap();
        text.lines()
            .find_map(|l| {
                l.strip_suffix(keyword)?
                    .strip_suffix(' ')
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("{keyword} not in {}", dir.display()))
    };
    assert_ne!(
        letter(&maildir, "$Junk"),
        letter(&maildir.join(SUBFOLDER_DIR), "$Junk")
    );

    let server = setup.start();
    let seen = imap_client(&server, server.imap_port());

    // Folders: exactly ours, with "/" as the separator; "Lists" is only the
    // parent of "Lists/rust".
    let listed: BTreeSet<&str> = seen["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        BTreeSet::from(["INBOX", "Lists", SUBFOLDER]),
        "LIST: {}",
        seen["list"]
    );
    for m in seen["list"].as_array().unwrap() {
        assert_eq!(m["delimiter"], "/", "{m}");
        let noselect = m["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().eq_ignore_ascii_case("\\Noselect"));
        assert_eq!(noselect, m["name"] == "Lists", "{m}");
    }

    for folder in ["INBOX", SUBFOLDER] {
        let ours: Vec<&Sent> = sent.iter().filter(|s| s.folder == folder).collect();
        let got = &seen["folders"][folder];
        let messages = got["messages"].as_array().unwrap();
        assert_eq!(got["exists"], ours.len(), "EXISTS in {folder}");
        assert_eq!(messages.len(), ours.len(), "messages fetched in {folder}");
        assert!(got["uidvalidity"].as_u64().unwrap() > 0, "{folder}: {got}");

        // The FLAGS that SELECT announces include every keyword we set.
        let announced: BTreeSet<&str> = got["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        for s in &ours {
            for word in s.flags.split_whitespace() {
                assert!(
                    announced.contains(word),
                    "{folder}: {word} missing from FLAGS {announced:?}"
                );
            }
        }

        // Each served message is exactly one of ours: match by content, as
        // IMAP serves it (a CR before every LF that has none).
        let mut by_body: HashMap<Vec<u8>, &Sent> = HashMap::new();
        for s in &ours {
            assert!(
                by_body.insert(to_crlf(&s.expected), s).is_none(),
                "two test messages are identical: {}",
                s.label
            );
        }
        let mut last_uid = 0;
        for m in messages {
            let uid = m["uid"].as_u64().unwrap();
            assert!(
                uid > last_uid,
                "{folder}: UIDs not ascending: {uid} after {last_uid}"
            );
            last_uid = uid;

            let served = hex_decode(m["body_hex"].as_str().unwrap());
            let bare_lf =
                (0..served.len()).any(|j| served[j] == b'\n' && (j == 0 || served[j - 1] != b'\r'));
            assert!(
                !bare_lf,
                "{folder} UID {uid}: IMAP must serve CRLF line ends"
            );
            let s = by_body.remove(&served).unwrap_or_else(|| {
                panic!(
                    "{folder} UID {uid}: served a message that is none of ours (or served \
                     one of ours twice):\n{}",
                    String::from_utf8_lossy(&served[..served.len().min(400)])
                )
            });

            let flags: BTreeSet<&str> = m["flags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .filter(|f| *f != "\\Recent")
                .collect();
            let wanted: BTreeSet<&str> = s.flags.split_whitespace().collect();
            assert_eq!(flags, wanted, "{folder} UID {uid}: flags of {}", s.label);

            let (_, vsize) = sizes_in_name(&s.file);
            assert_eq!(m["size"], vsize, "{folder} UID {uid}: RFC822.SIZE vs W=");
            assert_eq!(
                served.len() as u64,
                vsize,
                "{folder} UID {uid}: bytes served vs W="
            );
        }
        assert!(
            by_body.is_empty(),
            "{folder}: never served: {:?}",
            by_body.values().map(|s| &s.label).collect::<Vec<_>>()
        );
    }

    // Dovecot found nothing to complain about in our files (a wrong W= or a
    // broken dovecot-keywords is logged as an error).
    let problems = server.log_problems();
    assert!(problems.is_empty(), "dovecot complained: {problems:#?}");
    server.stop();
}

/// The harness itself, as the POP3 and TLS tests will use it: POP3 and
/// IMAP with STARTTLS and with implicit TLS, a certificate the client
/// verifies, and nothing left running after stop.
#[test]
fn the_harness_serves_pop3_and_tls_and_stops_every_process() {
    let mut setup = dovecot::Setup::new();
    setup.imap().pop3().tls();
    let maildir = setup.user("bob", "pop-secret");
    let input = b"Subject: over TLS\nMessage-ID: <tls@example.net>\n\nhello \xc3\xa9\n";
    let file = deliver(
        setup.dir(),
        &maildir,
        "INBOX",
        "",
        Some("a@example.net"),
        input,
        "tls",
    );
    let (_, vsize) = sizes_in_name(&file);
    // Read now: Dovecot moves the file from new/ to cur/.
    let stored = std::fs::read(&file).unwrap();
    let server = setup.start();

    let out = Command::new("python3")
        .arg("-c")
        .arg(TLS_CLIENT)
        .arg(server.cert())
        .args(
            [
                server.imap_port(),
                server.imaps_port(),
                server.pop3_port(),
                server.pop3s_port(),
            ]
            .map(|p| p.to_string()),
        )
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}: install the Debian package python3"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["imaps_exists"], 1, "{seen}");
    assert_eq!(seen["starttls_exists"], 1, "{seen}");
    assert!(
        seen["imap_capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "STARTTLS"),
        "{seen}"
    );
    for port in ["pop3s", "stls"] {
        assert_eq!(
            seen[port]["stat"],
            serde_json::json!([1, vsize]),
            "{port}: {seen}"
        );
        let served = hex_decode(seen[port]["retr_hex"].as_str().unwrap());
        assert_eq!(served, stored, "{port}: RETR");
    }
    for version in ["imaps_tls", "starttls_tls"] {
        assert!(
            seen[version].as_str().unwrap().starts_with("TLSv1."),
            "{seen}"
        );
    }

    let problems = server.log_problems();
    assert!(problems.is_empty(), "dovecot complained: {problems:#?}");
    let pid = libc::pid_t::try_from(server.pid()).unwrap();
    server.stop();
    // SAFETY: signal 0 only asks whether the group has a member left.
    let left = unsafe { libc::kill(-pid, 0) };
    assert_eq!(
        left, -1,
        "processes of the dovecot group {pid} are still running"
    );
}

const TLS_CLIENT: &str = r#"
import imaplib, json, poplib, ssl, sys

cert = sys.argv[1]
imap, imaps, pop3, pop3s = map(int, sys.argv[2:6])
ctx = ssl.create_default_context(cafile=cert)  # verifies the chain and 127.0.0.1
out = {}

M = imaplib.IMAP4_SSL("127.0.0.1", imaps, ssl_context=ctx, timeout=30)
M.login("bob", "pop-secret")
out["imaps_exists"] = int(M.select("INBOX", readonly=True)[1][0])
out["imaps_tls"] = M.sock.version()
M.logout()

M = imaplib.IMAP4("127.0.0.1", imap, timeout=30)
out["imap_capabilities"] = list(M.capabilities)
M.starttls(ssl_context=ctx)
M.login("bob", "pop-secret")
out["starttls_exists"] = int(M.select("INBOX", readonly=True)[1][0])
out["starttls_tls"] = M.sock.version()
M.logout()

def pop(p):
    p.user("bob")
    p.pass_("pop-secret")
    stat = list(p.stat())
    lines = p.retr(1)[1]
    p.quit()
    # poplib strips the CRLFs; the Maildir file has LF line ends.
    return {"stat": stat, "retr_hex": b"".join(l + b"\n" for l in lines).hex()}

out["pop3s"] = pop(poplib.POP3_SSL("127.0.0.1", pop3s, context=ctx, timeout=30))
P = poplib.POP3("127.0.0.1", pop3, timeout=30)
P.stls(context=ctx)
out["stls"] = pop(P)
print(json.dumps(out))
"#;

/// A message written for this test, and the file `deliver` must make of it.
struct HandMade {
    folder: &'static str,
    from: Option<&'static str>,
    input: Vec<u8>,
    expected: Vec<u8>,
}

fn hand_made() -> Vec<HandMade> {
    let top = |sender: &str| format!("Return-Path: <{sender}>\nDelivered-To: {RECIPIENT}\n");
    let mut cases = Vec::new();
    // Latin-1 in a header and the body, bytes 0x80-0xff.
    let latin1: &[u8] = b"From: Zo\xeb <zoe@example.net>\nSubject: caf\xe9 cr\xe8me\n\
        Message-ID: <latin1@example.net>\n\nbody \xe0\xe9\xff\x80 8-bit\n\xa0\n";
    cases.push(HandMade {
        folder: "INBOX",
        from: Some("zoe@example.net"),
        input: latin1.to_vec(),
        expected: [top("zoe@example.net").as_bytes(), latin1].concat(),
    });
    // An mbox From line (the sender comes from it), CRLF line ends, UTF-8.
    cases.push(HandMade {
        folder: SUBFOLDER,
        from: None,
        input: b"From list@rust-lang.example Mon Jan  1 00:00:00 2024\r\nSubject: gr\xc3\xbc\xc3\x9fe\r\n\
          Message-ID: <crlf@example.net>\r\n\r\nEuro \xe2\x82\xac\r\n\r\n-- \r\nsig\r\n"
            .to_vec(),
        expected: [
            top("list@rust-lang.example").as_bytes(),
            b"Subject: gr\xc3\xbc\xc3\x9fe\nMessage-ID: <crlf@example.net>\n\nEuro \xe2\x82\xac\n\n-- \nsig\n",
        ]
        .concat(),
    });
    // No line end after the last line.
    let unterminated: &[u8] = b"Subject: no final newline\nMessage-ID: <nofinal@example.net>\n\n\
        last line \xf0\x9f\x93\xac";
    cases.push(HandMade {
        folder: "INBOX",
        from: Some("nofinal@example.net"),
        input: unterminated.to_vec(),
        expected: [top("nofinal@example.net").as_bytes(), unterminated].concat(),
    });
    // A Return-Path in the message is replaced by the envelope sender.
    cases.push(HandMade {
        folder: SUBFOLDER,
        from: Some("real@example.net"),
        input: b"Return-Path: <forged@example.com>\nSubject: replaced\nMessage-ID: <rp@example.net>\n\nx\n"
            .to_vec(),
        expected: [
            top("real@example.net").as_bytes(),
            b"Subject: replaced\nMessage-ID: <rp@example.net>\n\nx\n",
        ]
        .concat(),
    });
    cases
}

/// Runs `ownmail deliver` as the user Dovecot will read the mail as, and
/// returns the one file it added to the folder.
fn deliver(
    scratch: &Path,
    maildir: &Path,
    folder: &str,
    flags: &str,
    from: Option<&str>,
    input: &[u8],
    label: &str,
) -> PathBuf {
    let folder_dir = if folder == "INBOX" {
        maildir.to_owned()
    } else {
        maildir.join(SUBFOLDER_DIR)
    };
    let before = support::messages(&folder_dir);
    let mut cmd = ownmail();
    cmd.current_dir(scratch)
        .args(["deliver", "--recipient", RECIPIENT, "--maildir"])
        .arg(maildir)
        .args(["--folder", folder]);
    if folder != "INBOX" {
        cmd.arg("--create");
    }
    if !flags.is_empty() {
        cmd.args(["--flags", flags]);
    }
    if let Some(from) = from {
        cmd.args(["--from", from]);
    }
    dovecot::as_mail_owner(&mut cmd);
    let out = run(&mut cmd, input);
    assert!(
        out.status.success(),
        "deliver {label}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut added: Vec<PathBuf> = support::messages(&folder_dir)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(added.len(), 1, "deliver {label} added {added:?}");
    added.pop().unwrap()
}

/// Logs in with Python's imaplib, LISTs, EXAMINEs every folder and FETCHes
/// every message; returns what it saw.
fn imap_client(server: &dovecot::Dovecot, port: u16) -> serde_json::Value {
    let script = server.dir().join("imap_client.py");
    std::fs::write(&script, IMAP_CLIENT).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .args(["127.0.0.1", &port.to_string(), USER, PASSWORD])
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}: install the Debian package python3"));
    assert!(
        out.status.success(),
        "the imaplib client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "imaplib client output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

const IMAP_CLIENT: &str = r#"
import imaplib, json, re, sys

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

def check(result, what):
    typ, data = result
    if typ != "OK":
        sys.exit(f"{what}: {typ} {data!r}")
    return data

def unquote(s):
    if s.startswith(b'"'):
        return re.sub(rb'\\(.)', rb'\1', s[1:-1])
    return s

def quote(name):
    return '"' + name.replace('\\', '\\\\').replace('"', '\\"') + '"'

M = imaplib.IMAP4(host, port, timeout=30)
check(M.login(user, password), "LOGIN")
out = {"list": [], "folders": {}}

LIST = re.compile(rb'^\((?P<attrs>[^)]*)\) (?P<delim>"(?:[^"\\]|\\.)*"|NIL) (?P<name>.+)$')
for item in check(M.list('""', '*'), "LIST"):
    if not isinstance(item, bytes):
        sys.exit(f"LIST sent a literal, which this client does not expect: {item!r}")
    m = LIST.match(item)
    if not m:
        sys.exit(f"unparsed LIST line: {item!r}")
    out["list"].append({
        "name": unquote(m["name"]).decode(),
        "delimiter": unquote(m["delim"]).decode(),
        "attributes": m["attrs"].decode().split(),
    })

FETCH_HEAD = re.compile(rb'^(\d+) \(')
for mbox in out["list"]:
    if any(a.lower() == "\\noselect" for a in mbox["attributes"]):
        continue
    name = mbox["name"]
    exists = int(check(M.select(quote(name), readonly=True), f"EXAMINE {name}")[0])
    flags = M.response("FLAGS")[1][0]
    uidvalidity = int(M.response("UIDVALIDITY")[1][0])
    folder = {
        "exists": exists,
        "uidvalidity": uidvalidity,
        "flags": flags.decode().strip("()").split(),
        "messages": [],
    }
    if exists:
        data = check(M.fetch("1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[])"), f"FETCH in {name}")
        i = 0
        while i < len(data):
            item = data[i]
            if not isinstance(item, tuple):
                sys.exit(f"FETCH response without a literal: {item!r}")
            head, body = item
            tail = data[i + 1] if i + 1 < len(data) and isinstance(data[i + 1], bytes) else b""
            i += 2 if tail else 1
            meta = head + b" " + tail
            declared = re.search(rb'BODY\[\] \{(\d+)\}$', head)
            uid = re.search(rb'\bUID (\d+)', meta)
            fl = re.search(rb'\bFLAGS \(([^)]*)\)', meta)
            size = re.search(rb'\bRFC822\.SIZE (\d+)', meta)
            if not (FETCH_HEAD.match(head) and declared and uid and fl and size):
                sys.exit(f"unparsed FETCH response: {meta!r}")
            if int(declared[1]) != len(body):
                sys.exit(f"literal of {len(body)} bytes announced as {declared[1]!r}")
            folder["messages"].append({
                "uid": int(uid[1]),
                "flags": fl[1].decode().split(),
                "size": int(size[1]),
                "body_hex": body.hex(),
            })
    folder["messages"].sort(key=lambda m: m["uid"])
    out["folders"][name] = folder
    check(M.close(), f"CLOSE {name}")

M.logout()
print(json.dumps(out))
"#;

/// Every `CORPUS_STEP`th corpus message. The corpus must be fetched first
/// (`scripts/corpus.sh`); the test does not fetch it, since no test may
/// reach off this machine.
fn corpus_sample() -> Vec<PathBuf> {
    let data = corpus_dir();
    let all = corpus_files();
    let mut sample: Vec<PathBuf> = all.iter().step_by(CORPUS_STEP).cloned().collect();
    for special in SPECIAL {
        let path = data.join(special);
        assert!(
            all.contains(&path),
            "{} is not in the corpus",
            path.display()
        );
        sample.push(path);
    }
    sample
}

/// Removes a leading mbox `From ` line.
fn strip_from_line(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"From ") {
        match raw.iter().position(|&b| b == b'\n') {
            Some(i) => &raw[i + 1..],
            None => &[],
        }
    } else {
        raw
    }
}

fn crlf_to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// A message with LF line ends as IMAP serves it: a CR before every LF
/// that does not follow one (a CR LF on disk stays as it is).
fn to_crlf(stored: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stored.len() + stored.len() / 32);
    for (i, &b) in stored.iter().enumerate() {
        if b == b'\n' && (i == 0 || stored[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// S= and W= from a Maildir file name.
fn sizes_in_name(file: &Path) -> (u64, u64) {
    let name = file.file_name().unwrap().to_str().unwrap();
    let base = name.split(":2,").next().unwrap();
    let field = |key: &str| {
        base.split(',')
            .find_map(|f| f.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {name}"))
            .parse::<u64>()
            .unwrap()
    };
    (field("S="), field("W="))
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
