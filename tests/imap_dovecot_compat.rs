//! Issue 4, storage: Dovecot and `ownmail serve-imap` serve the same Maildir
//! one after the other and agree on everything a client keeps: the
//! UIDVALIDITY of every folder, the UID of every message, UIDNEXT, flags and
//! keywords. Each server changes the folder (flags, keywords, an expunge,
//! an APPEND, a COPY into a new folder) before the other takes over, so
//! each reads what the other wrote: `dovecot-uidlist` and `dovecot-keywords`.
//!
//! The peers are real and must be installed (a missing one fails the test):
//! Dovecot (Debian: dovecot-imapd) and python3. Nothing leaves 127.0.0.1.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::dovecot;

const USER: &str = "alice";
const PASSWORD: &str = "compat-secret";

/// A Dovecot and our binary set up over one Maildir.
struct Pair {
    maildir: PathBuf,
    config: PathBuf,
    work: tempfile::TempDir,
}

fn pair(setup: &mut dovecot::Setup) -> Pair {
    // The Maildir lives outside Dovecot's folder, which goes with the server.
    let work = tempfile::Builder::new()
        .prefix("ownmail-compat-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(
        work.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let maildir = work.path().join("maildir");
    std::fs::create_dir(&maildir).unwrap();
    dovecot::give_to_mail_owner(&maildir);
    setup.user_at(USER, PASSWORD, &maildir);
    // Our configuration: <data>/mail/alice is the same Maildir.
    let data = work.path().join("data");
    std::fs::create_dir_all(data.join("mail")).unwrap();
    std::os::unix::fs::symlink(&maildir, data.join("mail").join(USER)).unwrap();
    let config = work.path().join("ownmail.yaml");
    std::fs::write(&config, "hostname: mail.example.org\ndata_dir: data\n").unwrap();
    let out = support::run(
        support::ownmail().arg("--config").arg(&config).args([
            "user",
            "add",
            USER,
            "--password-stdin",
        ]),
        format!("{PASSWORD}\n").as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dovecot::give_to_mail_owner(work.path());
    // `user add` made the Maildir's folders (through the link) as us.
    dovecot::give_to_mail_owner(&maildir);
    // Six messages with every kind of flag, delivered as the mail owner.
    let flag_sets = [
        "",
        "\\Seen",
        "\\Flagged \\Answered",
        "$Label1 work",
        "\\Draft",
        "\\Seen urgent",
    ];
    for (i, flags) in flag_sets.iter().enumerate() {
        let mut cmd = support::ownmail();
        cmd.args(["deliver", "--maildir"]).arg(&maildir);
        if !flags.is_empty() {
            cmd.args(["--flags", flags]);
        }
        dovecot::as_mail_owner(&mut cmd);
        let msg = format!("From: sender{i}@example.org\nSubject: message {i}\n\nbody {i}\n");
        let out = support::run(&mut cmd, msg.as_bytes());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Pair {
        maildir,
        config,
        work,
    }
}

/// Runs the client script against a server: `mutate` first changes things.
fn client(args: &[String], mutate: bool, work: &Path) -> serde_json::Value {
    let script = work.join("compat_client.py");
    std::fs::write(&script, CLIENT).unwrap();
    dovecot::give_to_mail_owner(&script);
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .arg(if mutate { "mutate" } else { "dump" })
        .args(args)
        .env_remove("OWNMAIL_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent");
    dovecot::as_mail_owner(&mut cmd);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}: install the Debian package python3"));
    assert!(
        out.status.success(),
        "the imaplib client failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "client output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn dovecot_args(server: &dovecot::Dovecot) -> Vec<String> {
    vec![
        "tcp".into(),
        server.imap_port().to_string(),
        USER.into(),
        PASSWORD.into(),
    ]
}

fn ownmail_args(p: &Pair) -> Vec<String> {
    vec![
        "stream".into(),
        format!(
            "{} --config {} serve-imap --stdio --preauth --user {USER}",
            env!("CARGO_BIN_EXE_ownmail"),
            p.config.display()
        ),
    ]
}

fn assert_same(a: &serde_json::Value, b: &serde_json::Value, what: &str) {
    assert_eq!(a, b, "{what}:\nfirst:  {a:#}\nsecond: {b:#}");
    let inbox = &a["INBOX"];
    assert!(inbox["uidvalidity"].as_u64().unwrap() > 0, "{a}");
    assert!(inbox["messages"].as_array().unwrap().len() >= 5, "{a}");
}

#[test]
fn a_maildir_served_by_dovecot_first_then_by_ownmail_keeps_uids_and_flags() {
    let mut setup = dovecot::Setup::new();
    setup.imap();
    let p = pair(&mut setup);
    let server = setup.start();
    let by_dovecot = client(&dovecot_args(&server), true, p.work.path());
    server.stop();
    let listing: Vec<_> = std::fs::read_dir(&p.maildir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(p.maildir.join("dovecot-uidlist").is_file(), "{listing:?}");
    let by_ownmail = client(&ownmail_args(&p), false, p.work.path());
    assert_same(&by_dovecot, &by_ownmail, "Dovecot wrote, ownmail read");
    // The expunge happened: UID 3 is gone and never comes back.
    let uids: Vec<u64> = by_ownmail["INBOX"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[0].as_u64().unwrap())
        .collect();
    assert_eq!(uids, vec![1, 2, 4, 5, 6, 7], "{by_ownmail}");

    // And back: ownmail changes things, Dovecot reads them.
    let by_ownmail = client(&ownmail_args(&p), true, p.work.path());
    dovecot::give_to_mail_owner(&p.maildir);
    let mut setup = dovecot::Setup::new();
    setup.imap().user_at(USER, PASSWORD, &p.maildir);
    let server = setup.start();
    let by_dovecot = client(&dovecot_args(&server), false, p.work.path());
    assert_same(&by_ownmail, &by_dovecot, "ownmail wrote, Dovecot read");
}

#[test]
fn a_maildir_served_by_ownmail_first_then_by_dovecot_keeps_uids_and_flags() {
    let mut setup = dovecot::Setup::new();
    setup.imap();
    let p = pair(&mut setup);
    let by_ownmail = client(&ownmail_args(&p), true, p.work.path());
    let text = std::fs::read_to_string(p.maildir.join("dovecot-uidlist")).unwrap();
    assert!(text.starts_with("3 V"), "{text}");
    dovecot::give_to_mail_owner(&p.maildir);
    let server = setup.start();
    let by_dovecot = client(&dovecot_args(&server), false, p.work.path());
    assert_same(&by_ownmail, &by_dovecot, "ownmail wrote, Dovecot read");
    let by_dovecot = client(&dovecot_args(&server), true, p.work.path());
    server.stop();
    let by_ownmail = client(&ownmail_args(&p), false, p.work.path());
    assert_same(&by_dovecot, &by_ownmail, "Dovecot wrote, ownmail read");
}

/// `mutate`: flags and keywords on INBOX, an expunge, an APPEND with a
/// keyword, a COPY into a folder created on the way; then, like `dump`,
/// prints every folder's UIDVALIDITY, UIDNEXT and (UID, flags) as JSON.
const CLIENT: &str = r#"
import imaplib, json, re, sys

mode, how = sys.argv[1], sys.argv[2]
if how == "tcp":
    M = imaplib.IMAP4("127.0.0.1", int(sys.argv[3]), timeout=30)
    typ, data = M.login(sys.argv[4], sys.argv[5])
    assert typ == "OK", data
else:
    M = imaplib.IMAP4_stream(sys.argv[3])

def ok(result, what):
    typ, data = result
    if typ != "OK":
        sys.exit(f"{what}: {typ} {data!r}")
    return data

if mode == "mutate":
    ok(M.select("INBOX"), "SELECT")
    # Run twice (once per server): work on the messages there are.
    uids = ok(M.uid("SEARCH", "ALL"), "SEARCH")[0].split()
    first, second, third = uids[0], uids[1], uids[2]
    ok(M.uid("STORE", first, "+FLAGS", r"(\Seen \Flagged)"), "STORE 1")
    ok(M.uid("STORE", second, "+FLAGS", "($Label2 work)"), "STORE 2")
    ok(M.uid("STORE", uids[-1], "-FLAGS", r"(\Seen urgent)"), "STORE last")
    ok(M.uid("STORE", third, "+FLAGS", r"(\Deleted)"), "STORE 3")
    ok(M.expunge(), "EXPUNGE")
    ok(M.append("INBOX", r"(\Answered appended)", None, b"Subject: appended\r\n\r\nhello\r\n"), "APPEND")
    typ, _ = M.create("Lists/rust")
    ok(M.uid("COPY", second, "Lists/rust"), "COPY")
    ok(M.close(), "CLOSE")

out = {}
LIST = re.compile(rb'^\((?P<attrs>[^)]*)\) (?P<delim>"[^"]*"|NIL) "?(?P<name>[^"]+)"?$')
for item in ok(M.list('""', '*'), "LIST"):
    m = LIST.match(item)
    if not m:
        sys.exit(f"unparsed LIST line: {item!r}")
    if b"\\noselect" in m["attrs"].lower():
        continue
    name = m["name"].decode()
    exists = int(ok(M.select('"' + name + '"', readonly=True), f"EXAMINE {name}")[0])
    folder = {
        "uidvalidity": int(M.response("UIDVALIDITY")[1][0]),
        "uidnext": int(M.response("UIDNEXT")[1][0]),
        "messages": [],
    }
    if exists:
        for line in ok(M.fetch("1:*", "(UID FLAGS)"), "FETCH"):
            uid = int(re.search(rb"UID (\d+)", line)[1])
            flags = re.search(rb"FLAGS \(([^)]*)\)", line)[1].decode().split()
            flags = sorted(f for f in flags if f.lower() != "\\recent")
            folder["messages"].append([uid, flags])
    folder["messages"].sort()
    out[name] = folder
M.logout()
print(json.dumps(out, sort_keys=True))
"#;

/// Runs the subscription script: `ops` are `+NAME` (SUBSCRIBE), `-NAME`
/// (UNSUBSCRIBE), `=NAME` (CREATE); prints the LSUB names, sorted.
fn subscriptions(args: &[String], ops: &[&str], work: &Path) -> Vec<String> {
    let script = work.join("subs_client.py");
    std::fs::write(&script, SUBS_CLIENT).unwrap();
    dovecot::give_to_mail_owner(&script);
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .args(args)
        .arg("--")
        .args(ops)
        .env_remove("OWNMAIL_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent");
    dovecot::as_mail_owner(&mut cmd);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}: install the Debian package python3"));
    assert!(
        out.status.success(),
        "the imaplib client failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn subscriptions_written_by_ownmail_are_read_by_dovecot_and_back() {
    let mut setup = dovecot::Setup::new();
    setup.imap();
    let p = pair(&mut setup);
    let by_ownmail = subscriptions(
        &ownmail_args(&p),
        &[
            "=Lists/rust",
            "+INBOX",
            "+Lists/rust",
            "+Gone",
            "+Entw&APw-rfe",
        ],
        p.work.path(),
    );
    let file = std::fs::read_to_string(p.maildir.join("subscriptions")).unwrap();
    assert_eq!(file, "INBOX\nLists.rust\nGone\nEntw&APw-rfe\n");
    assert_eq!(by_ownmail, ["Entw&APw-rfe", "Gone", "INBOX", "Lists/rust"]);
    dovecot::give_to_mail_owner(&p.maildir);
    let server = setup.start();
    let by_dovecot = subscriptions(&dovecot_args(&server), &[], p.work.path());
    assert_eq!(by_dovecot, by_ownmail, "Dovecot reads what ownmail wrote");
    // Dovecot changes the list; ownmail reads what it wrote.
    let by_dovecot = subscriptions(
        &dovecot_args(&server),
        &["-Gone", "+Sent", "=Archive/2024", "+Archive/2024"],
        p.work.path(),
    );
    server.stop();
    let file = std::fs::read_to_string(p.maildir.join("subscriptions")).unwrap();
    assert_eq!(
        by_dovecot,
        [
            "Archive/2024",
            "Entw&APw-rfe",
            "INBOX",
            "Lists/rust",
            "Sent"
        ],
        "{file:?}"
    );
    let by_ownmail = subscriptions(&ownmail_args(&p), &[], p.work.path());
    assert_eq!(
        by_ownmail, by_dovecot,
        "ownmail reads what Dovecot wrote: {file:?}"
    );
    // And ownmail keeps the file's format when it changes it.
    let after = subscriptions(&ownmail_args(&p), &["-Sent"], p.work.path());
    assert_eq!(
        after,
        ["Archive/2024", "Entw&APw-rfe", "INBOX", "Lists/rust"]
    );
    let new_file = std::fs::read_to_string(p.maildir.join("subscriptions")).unwrap();
    assert_eq!(
        new_file.starts_with("V\t2\n\n"),
        file.starts_with("V\t2\n\n"),
        "{file:?} -> {new_file:?}"
    );
}

const SUBS_CLIENT: &str = r#"
import imaplib, json, re, sys

args = sys.argv[1:]
sep = args.index("--")
how, ops = args[:sep], args[sep + 1:]
if how[0] == "tcp":
    M = imaplib.IMAP4("127.0.0.1", int(how[1]), timeout=30)
    typ, data = M.login(how[2], how[3])
    assert typ == "OK", data
else:
    M = imaplib.IMAP4_stream(how[1])

def ok(result, what):
    typ, data = result
    if typ != "OK":
        sys.exit(f"{what}: {typ} {data!r}")
    return data

for op in ops:
    kind, name = op[0], '"' + op[1:] + '"'
    if kind == "+":
        ok(M.subscribe(name), f"SUBSCRIBE {name}")
    elif kind == "-":
        ok(M.unsubscribe(name), f"UNSUBSCRIBE {name}")
    else:
        ok(M.create(name), f"CREATE {name}")
LSUB = re.compile(rb'^\((?P<attrs>[^)]*)\) (?P<delim>"[^"]*"|NIL) "?(?P<name>[^"]+)"?$')
names = []
for item in ok(M.lsub('""', '*'), "LSUB"):
    if item is None:
        continue
    m = LSUB.match(item)
    if not m:
        sys.exit(f"unparsed LSUB line: {item!r}")
    names.append(m["name"].decode())
M.logout()
print(json.dumps(sorted(names)))
"#;
