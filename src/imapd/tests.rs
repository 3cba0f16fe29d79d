//! Transcript tests: client lines in, server lines expected, one or more
//! per command, against a real Maildir in a temporary folder.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::auth::{PasswordHash, Secret};
use crate::proto::imap::Limits;
use crate::store::{Durability, Flags, MailboxName, Maildir};

struct T {
    dir: tempfile::TempDir,
    s: Session,
    sleeps: Vec<Duration>,
}

const MSG1: &str = "From: Alice <alice@example.org>\nTo: bob@example.net\nSubject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\nDate: Mon, 1 Jan 2024 10:00:00 +0000\nMessage-ID: <m1@example.org>\n\nHello Bob,\nthe Zebra is here.\n";
const MSG2: &str = "From: carol@example.org\nSubject: multipart\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nK=E4se --b mid-line\n--b\nContent-Type: application/octet-stream\n\nAAAA\n--b--\n";

/// As `deliver` stores a message: in `new/`, or, with flags (`--flags S`),
/// straight into `cur/`.
fn deliver(md: &Maildir, folder: &str, text: &str, flags: &str) {
    let f = md
        .folder_or_create(&MailboxName::new(folder).unwrap())
        .unwrap();
    let mut m = f.create_tmp().unwrap();
    m.write_all(text.as_bytes()).unwrap();
    m.commit(&Flags::from_info(flags), false, Durability::Immediate)
        .unwrap();
}

fn context(dir: &std::path::Path, limits: Limits) -> Arc<Context> {
    let users = dir.join("passwd");
    let hash = PasswordHash::new_argon2id(&Secret::new("secret".into())).unwrap();
    std::fs::write(&users, format!("alice:{hash}::::::\n")).unwrap();
    Arc::new(Context {
        hostname: "test".into(),
        users_file: users,
        mail_root: dir.join("mail"),
        tls: true,
        limits,
        throttle: Throttle::default(),
        spam: crate::config::SpamConfig::defaults(dir),
    })
}

fn setup_with(peer_ip: &str, limits: Limits) -> T {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), limits);
    let md = Maildir::create(dir.path().join("mail/alice")).unwrap();
    deliver(&md, "INBOX", MSG1, "");
    deliver(&md, "INBOX", MSG2, "S");
    md.create_folder(&MailboxName::new("Sent").unwrap())
        .unwrap();
    md.create_folder(&MailboxName::new("Lists/rust").unwrap())
        .unwrap();
    let peer = Peer {
        ip: Some(peer_ip.parse().unwrap()),
        tls: false,
        local: false,
    };
    let s = Session::new(ctx, peer);
    let mut t = T {
        dir,
        s,
        sleeps: Vec::new(),
    };
    let greeting = t.out();
    assert!(
        greeting.starts_with("* OK [CAPABILITY IMAP4rev1 "),
        "{greeting}"
    );
    t
}

fn setup() -> T {
    setup_with("127.0.0.1", Limits::default())
}

/// What the driver would send for `outs` (a pause noted in `sleeps`).
fn render(outs: Vec<Out>, sleeps: &mut Vec<Duration>) -> String {
    String::from_utf8(render_bytes(outs, sleeps)).unwrap()
}

fn render_bytes(outs: Vec<Out>, sleeps: &mut Vec<Duration>) -> Vec<u8> {
    let mut text = Vec::new();
    for o in outs {
        match o {
            Out::Bytes(b) => text.extend_from_slice(&b),
            Out::File { src, skip, len } => {
                let mut c = CrlfChunks::new(src.open(), skip, len);
                let mut chunk = Vec::new();
                while c.next_chunk(&mut chunk).unwrap() {
                    text.extend_from_slice(&chunk);
                }
            }
            Out::Sleep(d) => sleeps.push(d),
            Out::StartTls => text.extend_from_slice(b"[STARTTLS]"),
            Out::Close => text.extend_from_slice(b"[CLOSE]"),
        }
    }
    text
}

impl T {
    fn out(&mut self) -> String {
        render(self.s.take_output(), &mut self.sleeps)
    }

    fn send(&mut self, input: &str) -> String {
        self.s.feed(input.as_bytes());
        self.out()
    }

    fn login(&mut self) {
        let r = self.send("l LOGIN alice secret\r\n");
        assert!(r.starts_with("l OK [CAPABILITY "), "{r}");
    }

    fn select(&mut self) -> String {
        self.login();
        self.send("s SELECT INBOX\r\n")
    }

    fn inbox(&self) -> std::path::PathBuf {
        self.dir.path().join("mail/alice")
    }
}

/// The number after the first `key` in `text`.
fn num_after(text: &str, key: &str) -> u64 {
    let i = text
        .find(key)
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        + key.len();
    let digits: String = text[i..].chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after {key} in {text}"))
}

/// The lines of a response, UIDVALIDITY values replaced by `V` and
/// HIGHESTMODSEQ values (clock-derived) by `M`.
fn lines(text: &str) -> Vec<String> {
    let re_v = |l: &str| -> String {
        if let Some(i) = l.find("[HIGHESTMODSEQ ") {
            let end = l[i..].find(']').map_or(l.len(), |e| e + i);
            return format!("{}[HIGHESTMODSEQ M{}", &l[..i], &l[end..]);
        }
        match l.find("UIDVALIDITY ") {
            Some(i) => {
                let rest = &l[i + 12..];
                let end = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                format!("{}UIDVALIDITY V{}", &l[..i], &rest[end..])
            }
            None => l.to_owned(),
        }
    };
    text.split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| {
            let l = re_v(l);
            match (l.find("APPENDUID "), l.find("COPYUID ")) {
                (Some(i), _) | (None, Some(i)) => {
                    let kw_end = l[i..].find(' ').unwrap() + i + 1;
                    let num_end = l[kw_end..].find(' ').unwrap() + kw_end;
                    format!("{}V{}", &l[..kw_end], &l[num_end..])
                }
                _ => l,
            }
        })
        .collect()
}

#[test]
fn capability_noop_logout_and_bad_commands() {
    let mut t = setup();
    let caps = t.send("c CAPABILITY\r\n");
    assert_eq!(
        lines(&caps),
        vec![
            "* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE STARTTLS AUTH=PLAIN",
            "c OK CAPABILITY completed"
        ]
    );
    assert_eq!(t.send("n NOOP\r\n"), "n OK NOOP completed\r\n");
    assert_eq!(t.send("x FOO\r\n"), "x BAD unknown command FOO\r\n");
    assert_eq!(t.send("s SELECT INBOX\r\n"), "s BAD log in first\r\n");
    assert_eq!(
        lines(&t.send("i ID NIL\r\n")),
        vec![
            format!(
                "* ID (\"name\" \"ownmail\" \"version\" \"{}\")",
                env!("CARGO_PKG_VERSION")
            ),
            "i OK ID completed".into()
        ]
    );
    assert_eq!(
        t.send("o LOGOUT\r\n"),
        "* BYE logging out\r\no OK LOGOUT completed\r\n[CLOSE]"
    );
    assert_eq!(t.send("n NOOP\r\n"), "");
}

#[test]
fn login_is_disabled_in_plain_text_from_afar_and_throttled() {
    let mut t = setup_with("192.0.2.7", Limits::default());
    let caps = t.send("c CAPABILITY\r\n");
    assert!(caps.contains("STARTTLS LOGINDISABLED\r\n"), "{caps}");
    assert!(!caps.contains("AUTH=PLAIN"), "{caps}");
    assert_eq!(
        t.send("l LOGIN alice secret\r\n"),
        "l NO [PRIVACYREQUIRED] LOGINDISABLED: use STARTTLS first\r\n"
    );
    assert_eq!(
        t.send("a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
        "a NO [PRIVACYREQUIRED] LOGINDISABLED: use STARTTLS first\r\n"
    );
    // Anything pipelined after STARTTLS is dropped.
    assert_eq!(
        t.send("t STARTTLS\r\n"),
        "t OK Begin TLS negotiation now\r\n[STARTTLS]"
    );
    t.s.tls_started();
    let caps = t.send("c CAPABILITY\r\n");
    assert!(caps.contains("IDLE AUTH=PLAIN\r\n"), "{caps}");
    assert_eq!(t.send("t STARTTLS\r\n"), "t BAD TLS is already on\r\n");
    for _ in 0..3 {
        assert_eq!(
            t.send("l LOGIN alice wrong\r\n"),
            "l NO [AUTHENTICATIONFAILED] invalid user name or password\r\n"
        );
    }
    assert_eq!(
        t.sleeps,
        vec![
            Duration::from_secs(1),
            Duration::from_secs(2),
            Duration::from_secs(4)
        ]
    );
    // AUTHENTICATE PLAIN with a continuation, then SASL-IR.
    assert_eq!(t.send("a AUTHENTICATE PLAIN\r\n"), "+ \r\n");
    assert_eq!(t.send("*\r\n"), "a BAD authentication cancelled\r\n");
    assert_eq!(t.send("a AUTHENTICATE PLAIN\r\n"), "+ \r\n");
    let ok = t.send("AGFsaWNlAHNlY3JldA==\r\n");
    assert!(ok.starts_with("a OK [CAPABILITY IMAP4rev1"), "{ok}");
    assert!(ok.contains(" UIDPLUS MOVE "), "{ok}");
}

#[test]
fn select_examine_status_and_list() {
    let mut t = setup();
    assert_eq!(
        lines(&t.select()),
        vec![
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
            "* 2 EXISTS",
            "* 1 RECENT",
            "* OK [UNSEEN 1] first unseen",
            "* OK [UIDVALIDITY V] UIDs valid",
            "* OK [UIDNEXT 3] predicted next UID",
            "* OK [HIGHESTMODSEQ M] highest",
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] flags permitted",
            "s OK [READ-WRITE] SELECT completed",
        ]
    );
    let ex = t.send("e EXAMINE Lists/rust\r\n");
    assert!(ex.contains("* 0 EXISTS\r\n"), "{ex}");
    assert!(
        ex.ends_with("e OK [READ-ONLY] EXAMINE completed\r\n"),
        "{ex}"
    );
    assert_eq!(
        t.send("e EXAMINE Nope\r\n"),
        "* OK [CLOSED] previous folder closed\r\ne NO [NONEXISTENT] folder \"Nope\" does not exist\r\n"
    );
    assert_eq!(
        t.send("f FETCH 1 FLAGS\r\n"),
        "f BAD no folder selected\r\n"
    );
    assert_eq!(
        lines(&t.send("st STATUS INBOX (MESSAGES UIDNEXT UNSEEN RECENT SIZE UIDVALIDITY)\r\n")),
        vec![
            format!(
                "* STATUS \"INBOX\" (MESSAGES 2 UIDNEXT 3 UNSEEN 1 RECENT 0 SIZE {} UIDVALIDITY V)",
                crate::message::mime::to_crlf(MSG1.as_bytes()).len()
                    + crate::message::mime::to_crlf(MSG2.as_bytes()).len()
            ),
            "st OK STATUS completed".into(),
        ]
    );
    assert_eq!(
        lines(&t.send("l LIST \"\" *\r\n")),
        vec![
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"",
            "* LIST (\\Noselect \\HasChildren) \"/\" \"Lists\"",
            "* LIST (\\HasNoChildren) \"/\" \"Lists/rust\"",
            "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
            "l OK LIST completed",
        ]
    );
    assert_eq!(
        lines(&t.send("l LIST \"\" %\r\n")),
        vec![
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"",
            "* LIST (\\Noselect \\HasChildren) \"/\" \"Lists\"",
            "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
            "l OK LIST completed",
        ]
    );
    assert_eq!(
        lines(&t.send("l LIST \"\" \"\"\r\n")),
        vec!["* LIST (\\Noselect) \"/\" \"\"", "l OK LIST completed"]
    );
    assert_eq!(
        lines(&t.send("l LIST (SPECIAL-USE) \"\" * RETURN (STATUS (MESSAGES))\r\n")),
        vec![
            "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
            "* STATUS \"Sent\" (MESSAGES 0)",
            "l OK LIST completed",
        ]
    );
    assert_eq!(
        lines(&t.send("n NAMESPACE\r\n")),
        vec![
            "* NAMESPACE ((\"\" \"/\")) NIL NIL",
            "n OK NAMESPACE completed"
        ]
    );
}

#[test]
fn create_rename_delete() {
    let mut t = setup();
    t.login();
    // 8-bit names are not atoms (no UTF8=ACCEPT): modified UTF-7 it is.
    assert!(t.send("c CREATE Entwürfe\r\n").starts_with("c BAD "));
    assert_eq!(
        t.send("c CREATE Entw&APw-rfe\r\n"),
        "c OK CREATE completed\r\n"
    );
    assert!(t.inbox().join(".Entw&APw-rfe").is_dir());
    assert_eq!(
        t.send("c CREATE Entw&APw-rfe2/\r\n"),
        "c OK CREATE completed\r\n"
    );
    assert!(t.inbox().join(".Entw&APw-rfe2").is_dir());
    assert_eq!(
        t.send("c CREATE Sent\r\n"),
        "c NO [ALREADYEXISTS] folder \"Sent\" already exists\r\n"
    );
    assert!(t.send("c CREATE a.b\r\n").starts_with("c NO "));
    assert!(
        t.send("r RENAME Nothing Feeds\r\n")
            .starts_with("r NO [NONEXISTENT]")
    );
    // Lists is only a name (\Noselect): its child moves alone.
    assert_eq!(
        t.send("r RENAME Lists Feeds\r\n"),
        "r OK RENAME completed\r\n"
    );
    assert!(t.inbox().join(".Feeds.rust").is_dir());
    assert!(!t.inbox().join(".Feeds").exists());
    assert!(!t.inbox().join(".Lists.rust").exists());
    assert_eq!(
        t.send("d DELETE Feeds/rust\r\n"),
        "d OK DELETE completed\r\n"
    );
    assert!(!t.inbox().join(".Feeds.rust").exists());
    assert_eq!(
        t.send("d DELETE INBOX\r\n"),
        "d NO INBOX cannot be deleted\r\n"
    );
}

#[test]
fn fetch_items_sections_and_implicit_seen() {
    let mut t = setup();
    t.select();
    let r = t.send("f FETCH 1 (UID FLAGS RFC822.SIZE ENVELOPE)\r\n");
    let size = crate::message::mime::to_crlf(MSG1.as_bytes()).len();
    assert_eq!(
        lines(&r),
        vec![
            format!(
                "* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE {size} ENVELOPE (\"Mon, 1 Jan 2024 10:00:00 +0000\" \"=?utf-8?q?gr=C3=BC=C3=9Fe?=\" ((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) ((NIL NIL \"bob\" \"example.net\")) NIL NIL NIL \"<m1@example.org>\"))"
            ),
            "f OK FETCH completed".into()
        ]
    );
    // PEEK leaves \Seen alone; BODY[] sets it and says so.
    let crlf = String::from_utf8(crate::message::mime::to_crlf(MSG1.as_bytes())).unwrap();
    assert_eq!(
        t.send("f FETCH 1 BODY.PEEK[]<0.10>\r\n"),
        format!(
            "* 1 FETCH (BODY[]<0> {{10}}\r\n{})\r\nf OK FETCH completed\r\n",
            &crlf[..10]
        )
    );
    assert_eq!(
        t.send("f UID FETCH 1 BODY[]\r\n"),
        format!(
            "* 1 FETCH (UID 1 BODY[] {{{size}}}\r\n{crlf} FLAGS (\\Seen \\Recent))\r\nf OK UID FETCH completed\r\n"
        )
    );
    let body_start = crlf.find("\r\n\r\n").unwrap() + 4;
    assert_eq!(
        t.send("f FETCH 1 (BODY[TEXT]<6.3> BODY[HEADER.FIELDS (subject)])\r\n"),
        format!(
            "* 1 FETCH (BODY[TEXT]<6> {{3}}\r\n{} BODY[HEADER.FIELDS (subject)] {{40}}\r\nSubject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n\r\n)\r\nf OK FETCH completed\r\n",
            &crlf[body_start + 6..body_start + 9]
        )
    );
    // Names echoed as atoms where they can be, quoted where they cannot.
    assert!(
        t.send("f FETCH 1 BODY.PEEK[HEADER.FIELDS (\"Subject\" \"X(a)\" \"To\")]\r\n")
            .starts_with("* 1 FETCH (BODY[HEADER.FIELDS (Subject \"X(a)\" To)] {")
    );
    // RFC822.HEADER and RFC822.TEXT split it at the blank line (the header
    // read once for both; the message is \Seen already, so no FLAGS).
    assert_eq!(
        t.send("f FETCH 1 (RFC822.HEADER RFC822.TEXT)\r\n"),
        format!(
            "* 1 FETCH (RFC822.HEADER {{{}}}\r\n{} RFC822.TEXT {{{}}}\r\n{})\r\nf OK FETCH completed\r\n",
            body_start,
            &crlf[..body_start],
            crlf.len() - body_start,
            &crlf[body_start..]
        )
    );
    // The second message: a mid-line "--b" does not end part 1.
    assert_eq!(
        t.send("f FETCH 2 (BODY[1] BODY[2.MIME] BODY[3])\r\n"),
        "* 2 FETCH (BODY[1] {19}\r\nK=E4se --b mid-line BODY[2.MIME] {42}\r\nContent-Type: application/octet-stream\r\n\r\n BODY[3] NIL)\r\nf OK FETCH completed\r\n"
    );
    let bs = t.send("f FETCH 2 BODYSTRUCTURE\r\n");
    // Byte for byte what Dovecot 2.3 answers for the same file; the text
    // part has no line end of its own, so 0 lines.
    assert_eq!(
        bs,
        "* 2 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL \"quoted-printable\" 19 0 NIL NIL NIL NIL)(\"application\" \"octet-stream\" NIL NIL NIL \"7bit\" 4 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"b\") NIL NIL NIL))\r\nf OK FETCH completed\r\n"
    );
    let fast = t.send("f FETCH 2 FAST\r\n");
    assert!(
        fast.starts_with("* 2 FETCH (FLAGS (\\Seen) INTERNALDATE \""),
        "{fast}"
    );
    assert_eq!(t.send("f FETCH 3 FLAGS\r\n"), "f OK FETCH completed\r\n");
}

#[test]
fn store_search_expunge() {
    let mut t = setup();
    t.select();
    assert_eq!(
        t.send("s STORE 1 +FLAGS (\\Flagged work)\r\n"),
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft work)\r\n\
         * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft work \\*)] flags permitted\r\n\
         * 1 FETCH (FLAGS (\\Flagged work \\Recent))\r\ns OK STORE completed\r\n"
    );
    assert_eq!(
        std::fs::read_to_string(t.inbox().join("dovecot-keywords")).unwrap(),
        "0 work\n"
    );
    assert_eq!(
        t.send("s UID STORE 1:* FLAGS.SILENT (\\Seen)\r\n"),
        "s OK UID STORE completed\r\n"
    );
    assert_eq!(
        t.send("s STORE 2 -FLAGS (\\Seen)\r\n"),
        "* 2 FETCH (FLAGS ())\r\ns OK STORE completed\r\n"
    );
    let cases = [
        ("ALL", "1 2"),
        ("SEEN", "1"),
        ("UNSEEN", "2"),
        ("FROM alice", "1"),
        ("SUBJECT {7+}\r\ngrüße", "1"),
        ("TEXT zebra", "1"),
        ("BODY {5+}\r\nkäse", "2"),
        ("BODY \"mid-line\"", "2"),
        ("TEXT carol", "2"),
        ("NOT TEXT zebra", "2"),
        ("OR SEEN BODY {5+}\r\nkäse", "1 2"),
        ("HEADER Message-ID m1", "1"),
        ("SENTON 1-Jan-2024", "1"),
        ("SENTBEFORE 1-Jan-2024", ""),
        ("LARGER 200", "2"),
        ("UID 2:*", "2"),
        ("2", "2"),
        ("KEYWORD work", ""),
        ("UNKEYWORD work", "1 2"),
        ("RECENT", "1"),
        ("NEW", ""),
        ("SINCE 1-Jan-2000", "1 2"),
    ];
    for (key, want) in cases {
        let r = t.send(&format!("q SEARCH CHARSET UTF-8 {key}\r\n"));
        let want_line = if want.is_empty() {
            "* SEARCH".to_owned()
        } else {
            format!("* SEARCH {want}")
        };
        assert_eq!(
            lines(&r),
            vec![want_line, "q OK SEARCH completed".into()],
            "{key}"
        );
    }
    assert_eq!(
        lines(&t.send("q UID SEARCH RETURN (MIN MAX COUNT ALL) ALL\r\n")),
        vec![
            "* ESEARCH (TAG \"q\") UID MIN 1 MAX 2 ALL 1:2 COUNT 2",
            "q OK UID SEARCH completed"
        ]
    );
    assert_eq!(
        t.send("s STORE 1 +FLAGS.SILENT (\\Deleted)\r\n"),
        "s OK STORE completed\r\n"
    );
    assert_eq!(
        t.send("x EXPUNGE\r\n"),
        "* 1 EXPUNGE\r\nx OK EXPUNGE completed\r\n"
    );
    assert_eq!(
        lines(&t.send("f FETCH 1 UID\r\n")),
        vec!["* 1 FETCH (UID 2)", "f OK FETCH completed"]
    );
    t.send("s STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
    assert_eq!(t.send("x UID EXPUNGE 1\r\n"), "x OK EXPUNGE completed\r\n");
    assert_eq!(
        t.send("x UID EXPUNGE 2\r\n"),
        "* 1 EXPUNGE\r\nx OK EXPUNGE completed\r\n"
    );
}

#[test]
fn append_copy_move_with_uidplus() {
    let mut t = setup();
    t.select();
    assert_eq!(
        lines(&t.send("a APPEND Sent (\\Seen $Label1) \"01-Feb-2024 12:00:00 +0100\" {20+}\r\nSubject: x\r\n\r\nbody\r\n\r\n")),
        vec!["a OK [APPENDUID V 1] APPEND completed"]
    );
    let sent = t.inbox().join(".Sent/cur");
    let files: Vec<_> = std::fs::read_dir(&sent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    // Stored with LF line ends, flags in the name, the date as mtime.
    assert_eq!(std::fs::read(&files[0]).unwrap(), b"Subject: x\n\nbody\n");
    assert!(files[0].to_str().unwrap().ends_with(":2,Sa"), "{files:?}");
    let mtime = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    assert_eq!(session::unix(mtime), 1_706_785_200);
    assert_eq!(
        t.send("a APPEND Nope {1+}\r\nx\r\n"),
        "a NO [TRYCREATE] folder Nope does not exist\r\n"
    );
    assert_eq!(
        t.send("a APPEND INBOX {10}\r\n"),
        "+ Ready for literal data\r\n"
    );
    let r = t.send("0123456789\r\n");
    // Our own APPEND to the selected folder shows at once.
    assert_eq!(
        lines(&r),
        vec![
            "* 3 EXISTS",
            "* 2 RECENT",
            "a OK [APPENDUID V 3] APPEND completed"
        ]
    );
    t.send("s STORE 1 +FLAGS.SILENT (work)\r\n");
    assert_eq!(
        lines(&t.send("c UID COPY 1:2 Lists/rust\r\n")),
        vec!["c OK [COPYUID V 1:2 1:2] COPY completed"]
    );
    let kw = std::fs::read_to_string(t.inbox().join(".Lists.rust/dovecot-keywords")).unwrap();
    assert_eq!(kw, "0 work\n");
    assert_eq!(
        lines(&t.send("m MOVE 2:3 Sent\r\n")),
        vec![
            "* OK [COPYUID V 2:3 2:3] moved",
            "* 3 EXPUNGE",
            "* 2 EXPUNGE",
            "m OK MOVE completed"
        ]
    );
    assert_eq!(
        lines(&t.send("s STATUS Sent (MESSAGES)\r\n")),
        vec!["* STATUS \"Sent\" (MESSAGES 3)", "s OK STATUS completed"]
    );
}

#[test]
fn another_sessions_changes_arrive_in_order_and_idle_reports_them() {
    let mut a = setup();
    a.select();
    let mut b = second_session(&a);
    b.select();
    assert_eq!(
        a.send("s STORE 1 +FLAGS (\\Deleted)\r\n"),
        "* 1 FETCH (FLAGS (\\Deleted \\Recent))\r\ns OK STORE completed\r\n"
    );
    // b is idling: flags, the expunge and new mail all arrive.
    assert_eq!(
        b.send("i IDLE\r\n"),
        "+ idling\r\n* 1 FETCH (UID 1 FLAGS (\\Deleted))\r\n"
    );
    a.send("x EXPUNGE\r\n");
    deliver(
        &Maildir::open(a.inbox()).unwrap(),
        "INBOX",
        "Subject: new\n\nx\n",
        "",
    );
    b.s.idle_poll();
    assert_eq!(b.out(), "* 1 EXPUNGE\r\n* 2 EXISTS\r\n* 1 RECENT\r\n");
    assert_eq!(b.send("DONE\r\n"), "i OK IDLE terminated\r\n");
    // During FETCH an expunge waits (RFC 3501 7.4.1); NOOP then tells it.
    let r = b.send("s STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
    assert_eq!(r, "s OK STORE completed\r\n");
    b.send("x EXPUNGE\r\n");
    let r = a.send("f FETCH 1:* UID\r\n");
    // b heard of the new message first: \Recent is b's alone (RFC 3501 2.3.2).
    // Message 1, expunged by b, is not made up (RFC 2180 4.1.2).
    assert_eq!(
        lines(&r),
        vec![
            "* 2 EXISTS",
            "* 2 FETCH (UID 3)",
            "f OK [EXPUNGEISSUED] FETCH completed; some messages were expunged"
        ]
    );
    assert_eq!(
        a.send("n NOOP\r\n"),
        "* 1 EXPUNGE\r\nn OK NOOP completed\r\n"
    );
    assert_eq!(
        lines(&a.send("f FETCH 1:* UID\r\n")),
        vec!["* 1 FETCH (UID 3)", "f OK FETCH completed"]
    );
}

#[test]
fn bounds_too_long_lines_big_literals_and_garbage() {
    let limits = Limits {
        max_line: 100,
        max_literal: 50,
        max_literals: 10,
    };
    let mut t = setup_with("127.0.0.1", limits);
    assert_eq!(
        t.send(&format!("x1 NOOP {}\r\n", "a".repeat(200))),
        "x1 BAD [TOOBIG] command line too long\r\n"
    );
    t.login();
    assert_eq!(
        t.send("a APPEND INBOX {51}\r\n"),
        "a NO [TOOBIG] literal larger than APPENDLIMIT=50\r\n"
    );
    let caps = t.send("c CAPABILITY\r\n");
    assert!(caps.contains("APPENDLIMIT=50"), "{caps}");
    assert_eq!(
        t.send("a APPEND INBOX {51+}\r\n"),
        "* BYE [TOOBIG] non-synchronizing literal above the size limit\r\n[CLOSE]"
    );
    let mut t = setup();
    let mut all = String::new();
    for _ in 0..session::MAX_BAD_FOR_TESTS {
        all.push_str(&t.send("x GARBAGE\r\n"));
    }
    assert!(
        all.ends_with("* BYE too many bad commands\r\n[CLOSE]"),
        "{all}"
    );
}

/// Regression: a FETCH of thousands of bodies held every file open until
/// it was written (EMFILE, then empty bodies). Files are now opened by the
/// driver one at a time, found again after a rename, and a message
/// expunged meanwhile is padded to the length announced.
#[test]
fn streamed_bodies_are_opened_late_and_survive_renames_and_expunges() {
    let mut t = setup();
    t.select();
    t.s.feed(b"f FETCH 1:2 BODY.PEEK[]\r\n");
    let outs = t.s.take_output();
    // Another process sets a flag on message 1 and expunges message 2.
    let cur = t.inbox().join("cur");
    for e in std::fs::read_dir(&cur).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        if name.ends_with(":2,") {
            std::fs::rename(&p, cur.join(format!("{name}F"))).unwrap();
        } else {
            std::fs::remove_file(&p).unwrap();
        }
    }
    // Anything but bytes and bodies would show in the text as [..].
    let text = render(outs, &mut Vec::new());
    let m1 = String::from_utf8(crate::message::mime::to_crlf(MSG1.as_bytes())).unwrap();
    let n2 = crate::message::mime::to_crlf(MSG2.as_bytes()).len();
    assert_eq!(
        text,
        format!(
            "* 1 FETCH (BODY[] {{{}}}\r\n{m1})\r\n* 2 FETCH (BODY[] {{{n2}}}\r\n{})\r\nf OK FETCH completed\r\n",
            m1.len(),
            " ".repeat(n2)
        )
    );
}

#[test]
fn subscribe_unsubscribe_lsub_and_list_subscribed() {
    let mut t = setup();
    t.login();
    assert_eq!(t.send("l LSUB \"\" *\r\n"), "l OK LSUB completed\r\n");
    assert_eq!(
        t.send("s SUBSCRIBE inbox\r\n"),
        "s OK SUBSCRIBE completed\r\n"
    );
    assert_eq!(
        t.send("s SUBSCRIBE Lists/rust\r\n"),
        "s OK SUBSCRIBE completed\r\n"
    );
    // A name that does not exist may be subscribed (RFC 3501 6.3.6).
    t.send("s SUBSCRIBE Gone\r\n");
    t.send("s SUBSCRIBE Entw&APw-rfe\r\n");
    assert!(t.send("s SUBSCRIBE \"a.b\"\r\n").starts_with("s NO "));
    let file = std::fs::read_to_string(t.inbox().join("subscriptions")).unwrap();
    assert_eq!(file, "INBOX\nLists.rust\nGone\nEntw&APw-rfe\n");
    assert_eq!(
        lines(&t.send("l LSUB \"\" *\r\n")),
        vec![
            "* LSUB () \"/\" \"INBOX\"",
            "* LSUB () \"/\" \"Entw&APw-rfe\"",
            "* LSUB () \"/\" \"Gone\"",
            "* LSUB () \"/\" \"Lists/rust\"",
            "l OK LSUB completed"
        ]
    );
    // `%` shows the unsubscribed parent as \Noselect (RFC 3501 6.3.9).
    assert_eq!(
        lines(&t.send("l LSUB \"\" L%\r\n")),
        vec!["* LSUB (\\Noselect) \"/\" \"Lists\"", "l OK LSUB completed"]
    );
    assert_eq!(
        lines(&t.send("l LSUB \"\" Lists\r\n")),
        vec!["l OK LSUB completed"]
    );
    // RFC 5258: the SUBSCRIBED selection and return options.
    assert_eq!(
        lines(&t.send("l LIST (SUBSCRIBED) \"\" *\r\n")),
        vec![
            "* LIST (\\Subscribed \\HasNoChildren) \"/\" \"INBOX\"",
            "* LIST (\\NonExistent \\Subscribed \\HasNoChildren) \"/\" \"Entw&APw-rfe\"",
            "* LIST (\\NonExistent \\Subscribed \\HasNoChildren) \"/\" \"Gone\"",
            "* LIST (\\Subscribed \\HasNoChildren) \"/\" \"Lists/rust\"",
            "l OK LIST completed"
        ]
    );
    assert_eq!(
        lines(&t.send("l LIST \"\" * RETURN (SUBSCRIBED)\r\n")),
        vec![
            "* LIST (\\Subscribed \\HasNoChildren) \"/\" \"INBOX\"",
            "* LIST (\\NonExistent \\HasChildren) \"/\" \"Lists\"",
            "* LIST (\\Subscribed \\HasNoChildren) \"/\" \"Lists/rust\"",
            "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
            "l OK LIST completed"
        ]
    );
    assert_eq!(
        t.send("u UNSUBSCRIBE Gone\r\n"),
        "u OK UNSUBSCRIBE completed\r\n"
    );
    assert_eq!(
        t.send("u UNSUBSCRIBE Gone\r\n"),
        "u OK UNSUBSCRIBE completed\r\n"
    );
    let file = std::fs::read_to_string(t.inbox().join("subscriptions")).unwrap();
    assert_eq!(file, "INBOX\nLists.rust\nEntw&APw-rfe\n");
}

fn second_session(a: &T) -> T {
    let peer = Peer {
        ip: Some("127.0.0.1".parse().unwrap()),
        tls: false,
        local: false,
    };
    let ctx = context(a.dir.path(), Limits::default());
    let mut b = T {
        dir: tempfile::tempdir().unwrap(),
        s: Session::new(ctx, peer),
        sleeps: Vec::new(),
    };
    b.out();
    b
}

#[test]
fn condstore_modseqs_changedsince_unchangedsince_and_search() {
    let mut t = setup();
    t.login();
    assert!(t.send("c CAPABILITY\r\n").contains(" CONDSTORE"));
    assert_eq!(
        t.send("e ENABLE CONDSTORE\r\n"),
        "* ENABLED CONDSTORE\r\ne OK ENABLE completed\r\n"
    );
    // Enabled once: not again (RFC 5161 3.2).
    assert_eq!(
        t.send("e ENABLE CONDSTORE\r\n"),
        "* ENABLED\r\ne OK ENABLE completed\r\n"
    );
    let sel = t.send("s SELECT INBOX\r\n");
    let h0 = num_after(&sel, "[HIGHESTMODSEQ ");
    let f = t.send("f FETCH 1:* (MODSEQ)\r\n");
    let (m1, m2) = (
        num_after(&f, "* 1 FETCH (MODSEQ ("),
        num_after(&f, "* 2 FETCH (MODSEQ ("),
    );
    assert!(m1 < m2 && m2 == h0, "{f} {h0}");
    let st = t.send("s STORE 1 +FLAGS (\\Flagged)\r\n");
    let m3 = num_after(&st, "MODSEQ (");
    assert!(m3 > h0);
    assert_eq!(
        st,
        format!("* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ ({m3}))\r\ns OK STORE completed\r\n")
    );
    // Only what changed since h0; MODSEQ comes with CHANGEDSINCE.
    assert_eq!(
        t.send(&format!("f UID FETCH 1:* (FLAGS) (CHANGEDSINCE {h0})\r\n")),
        format!(
            "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent) MODSEQ ({m3}))\r\nf OK UID FETCH completed\r\n"
        )
    );
    // A conditional STORE: message 2 is unchanged since m2, message 1 not.
    let r = t.send(&format!(
        "s STORE 1:2 (UNCHANGEDSINCE {m2}) +FLAGS.SILENT (\\Answered)\r\n"
    ));
    let m4 = num_after(&r, "* 2 FETCH (MODSEQ (");
    assert!(m4 > m3);
    assert_eq!(
        r,
        format!(
            "* 2 FETCH (MODSEQ ({m4}))\r\ns OK [MODIFIED 1] conditional STORE failed for some messages\r\n"
        )
    );
    // Message 1 was refused above, so it is unchanged: its flags are
    // stored again (no change, no new mod-sequence); message 2 changed.
    let r = t.send(&format!(
        "s UID STORE 1,2 (UNCHANGEDSINCE {m3}) -FLAGS (\\Answered)\r\n"
    ));
    assert_eq!(
        r,
        format!(
            "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent) MODSEQ ({m3}))\r\ns OK [MODIFIED 2] conditional UID STORE failed for some messages\r\n"
        )
    );
    let r = t.send("s STORE 1 -FLAGS (\\Flagged)\r\n");
    let m5 = num_after(&r, "MODSEQ (");
    assert!(m5 > m4);
    // SEARCH MODSEQ: the highest of those found (RFC 7162 3.1.5).
    assert_eq!(
        t.send(&format!("x SEARCH MODSEQ {m3}\r\n")),
        format!("* SEARCH 1 2 (MODSEQ {m5})\r\nx OK SEARCH completed\r\n")
    );
    assert_eq!(
        t.send(&format!("x UID SEARCH RETURN (COUNT) MODSEQ {m5}\r\n")),
        format!("* ESEARCH (TAG \"x\") UID COUNT 1 MODSEQ {m5}\r\nx OK UID SEARCH completed\r\n")
    );
    assert_eq!(
        t.send(&format!("x SEARCH MODSEQ {}\r\n", m5 + 1)),
        "* SEARCH\r\nx OK SEARCH completed\r\n"
    );
    assert_eq!(
        t.send("st STATUS INBOX (HIGHESTMODSEQ MESSAGES)\r\n"),
        format!("* STATUS \"INBOX\" (HIGHESTMODSEQ {m5} MESSAGES 2)\r\nst OK STATUS completed\r\n")
    );
    // A flag change behind our back (Dovecot renaming the file) is found
    // and numbered above everything before.
    let cur = t.inbox().join("cur");
    let file = std::fs::read_dir(&cur)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(":2,RS"))
        .unwrap();
    let renamed = file.to_string_lossy().replace(":2,RS", ":2,DRS");
    std::fs::rename(&file, &renamed).unwrap();
    let r = t.send("n NOOP\r\n");
    let m6 = num_after(&r, "MODSEQ (");
    assert!(m6 > m5);
    assert_eq!(
        r,
        format!(
            "* 2 FETCH (UID 2 FLAGS (\\Draft \\Answered \\Seen) MODSEQ ({m6}))\r\nn OK NOOP completed\r\n"
        )
    );
    // FETCH setting \Seen tells the new mod-sequence too.
    let r = t.send("f FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])\r\n");
    let m7 = num_after(&r, "MODSEQ (");
    assert!(m7 > m6, "{r}");
    // The state file lost: HIGHESTMODSEQ still only grows.
    std::fs::remove_file(t.inbox().join(crate::store::modseq::FILE_NAME)).unwrap();
    let high = num_after(
        &t.send("st STATUS INBOX (HIGHESTMODSEQ)\r\n"),
        "HIGHESTMODSEQ ",
    );
    assert!(high > m7);
    let sel = t.send("s EXAMINE INBOX\r\n");
    assert!(num_after(&sel, "[HIGHESTMODSEQ ") >= high, "{sel}");
}

#[test]
fn condstore_is_enabled_by_select_and_fetch_modseq_and_other_sessions_agree() {
    let mut a = setup();
    a.login();
    let sel = a.send("s SELECT INBOX (CONDSTORE)\r\n");
    let h0 = num_after(&sel, "[HIGHESTMODSEQ ");
    let mut b = second_session(&a);
    b.login();
    let bsel = b.send("s SELECT INBOX\r\n");
    assert_eq!(num_after(&bsel, "[HIGHESTMODSEQ "), h0);
    // b has not enabled CONDSTORE: no MODSEQ in its answers.
    assert_eq!(
        b.send("s STORE 2 +FLAGS (\\Flagged)\r\n"),
        "* 2 FETCH (FLAGS (\\Flagged \\Seen))\r\ns OK STORE completed\r\n"
    );
    // a hears of it with a mod-sequence above h0.
    let r = a.send("n NOOP\r\n");
    let m = num_after(&r, "MODSEQ (");
    assert!(m > h0, "{r}");
    // FETCH MODSEQ enables CONDSTORE in b, which agrees on the number.
    let r = b.send("f FETCH 2 (MODSEQ)\r\n");
    assert_eq!(
        r,
        format!("* 2 FETCH (MODSEQ ({m}))\r\nf OK FETCH completed\r\n")
    );
    let r = b.send("s STORE 1 +FLAGS.SILENT (\\Seen)\r\n");
    let m2 = num_after(&r, "* 1 FETCH (MODSEQ (");
    assert!(m2 > m);
    assert_eq!(
        a.send("n NOOP\r\n"),
        format!(
            "* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ ({m2}))\r\nn OK NOOP completed\r\n"
        )
    );
    // An expunge raises HIGHESTMODSEQ.
    b.send("s STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
    b.send("x EXPUNGE\r\n");
    let r = a.send("st STATUS INBOX (HIGHESTMODSEQ)\r\n");
    assert!(num_after(&r, "HIGHESTMODSEQ ") > m2 + 1, "{r}");
}

#[test]
fn recent_goes_to_one_session_only() {
    let mut a = setup();
    a.select();
    let mut b = second_session(&a);
    b.login();
    // a took the recent message when it selected; b sees none.
    let r = b.send("s SELECT INBOX\r\n");
    assert!(r.contains("* 0 RECENT\r\n"), "{r}");
    let md = Maildir::open(a.inbox()).unwrap();
    deliver(&md, "INBOX", "Subject: one\n\nx\n", "");
    deliver(&md, "INBOX", "Subject: two\n\nx\n", "");
    // b looks first: both are b's.
    assert_eq!(
        b.send("n NOOP\r\n"),
        "* 4 EXISTS\r\n* 2 RECENT\r\nn OK NOOP completed\r\n"
    );
    assert_eq!(
        a.send("n NOOP\r\n"),
        "* 4 EXISTS\r\nn OK NOOP completed\r\n"
    );
    assert_eq!(
        lines(&a.send("f FETCH 3:4 FLAGS\r\n")),
        vec![
            "* 3 FETCH (FLAGS ())",
            "* 4 FETCH (FLAGS ())",
            "f OK FETCH completed"
        ]
    );
    assert_eq!(
        lines(&b.send("f FETCH 3:4 FLAGS\r\n")),
        vec![
            "* 3 FETCH (FLAGS (\\Recent))",
            "* 4 FETCH (FLAGS (\\Recent))",
            "f OK FETCH completed"
        ]
    );
    let search = b.send("r SEARCH RECENT\r\n");
    assert_eq!(search, "* SEARCH 3 4\r\nr OK SEARCH completed\r\n");
    assert_eq!(
        a.send("r SEARCH RECENT\r\n"),
        "* SEARCH 1\r\nr OK SEARCH completed\r\n"
    );
    // A third session selecting later gets none of them.
    let mut c = second_session(&a);
    c.login();
    assert!(c.send("s SELECT INBOX\r\n").contains("* 0 RECENT\r\n"));
}

#[test]
fn rename_inbox_moves_its_messages_and_subscriptions_follow() {
    let mut t = setup();
    t.login();
    t.send("s SUBSCRIBE Lists/rust\r\n");
    t.send("s SUBSCRIBE Lists\r\n");
    t.send("s SUBSCRIBE Sent\r\n");
    t.send("s SELECT INBOX\r\n");
    t.send("s STORE 1 +FLAGS (Important)\r\n");
    // RFC 3501 7.4.1: the expunges wait for a command that may tell them.
    assert_eq!(
        t.send("r RENAME INBOX Old/inbox\r\n"),
        "r OK RENAME completed\r\n"
    );
    assert_eq!(
        t.send("n NOOP\r\n"),
        "* 2 EXPUNGE\r\n* 1 EXPUNGE\r\nn OK NOOP completed\r\n"
    );
    let r = t.send("st STATUS INBOX (MESSAGES UIDNEXT)\r\n");
    assert_eq!(
        r,
        "* STATUS \"INBOX\" (MESSAGES 0 UIDNEXT 3)\r\nst OK STATUS completed\r\n"
    );
    let r = t.send("s SELECT Old/inbox\r\n");
    assert!(r.contains("* 2 EXISTS\r\n"), "{r}");
    assert_eq!(
        lines(&t.send("f FETCH 1:2 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n"))[..1],
        ["* 1 FETCH (FLAGS (Important) BODY[HEADER.FIELDS (SUBJECT)] {40}".to_owned()]
    );
    assert_eq!(
        t.send("r RENAME INBOX Sent\r\n"),
        "r NO [ALREADYEXISTS] folder \"Sent\" already exists\r\n"
    );
    // RENAME and DELETE take subscriptions along, children's too.
    t.send("c CREATE Lists\r\n");
    assert_eq!(
        t.send("r RENAME Lists Feeds\r\n"),
        "r OK RENAME completed\r\n"
    );
    let file = std::fs::read_to_string(t.inbox().join("subscriptions")).unwrap();
    assert_eq!(file, "Feeds.rust\nFeeds\nSent\n");
    assert_eq!(t.send("d DELETE Feeds\r\n"), "d OK DELETE completed\r\n");
    let file = std::fs::read_to_string(t.inbox().join("subscriptions")).unwrap();
    assert_eq!(file, "Feeds.rust\nSent\n");
}

#[test]
fn list_extended_recursivematch_childinfo_and_nonexistent() {
    let mut t = setup();
    t.login();
    t.send("c CREATE Foo/Bar\r\n");
    t.send("c CREATE Foo/Baz\r\n");
    t.send("s SUBSCRIBE Foo/Bar\r\n");
    t.send("s SUBSCRIBE Lists/rust\r\n");
    t.send("s SUBSCRIBE Lists\r\n");
    // RFC 5258 4, example 9: the parent is not subscribed itself.
    assert_eq!(
        lines(&t.send("l LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %\r\n")),
        vec![
            "* LIST (\\NonExistent \\HasChildren) \"/\" \"Foo\" (\"CHILDINFO\" (\"SUBSCRIBED\"))",
            "* LIST (\\NonExistent \\Subscribed \\HasChildren) \"/\" \"Lists\" (\"CHILDINFO\" (\"SUBSCRIBED\"))",
            "l OK LIST completed",
        ]
    );
    // Without RECURSIVEMATCH the unsubscribed parent is not listed.
    assert_eq!(
        lines(&t.send("l LIST (SUBSCRIBED) \"\" %\r\n")),
        vec![
            "* LIST (\\NonExistent \\Subscribed \\HasChildren) \"/\" \"Lists\"",
            "l OK LIST completed",
        ]
    );
    // `*` reaches the children: no CHILDINFO needed.
    assert_eq!(
        lines(&t.send("l LIST (SUBSCRIBED RECURSIVEMATCH) \"\" *\r\n")),
        vec![
            "* LIST (\\Subscribed \\HasNoChildren) \"/\" \"Foo/Bar\"",
            "* LIST (\\NonExistent \\Subscribed \\HasChildren) \"/\" \"Lists\"",
            "* LIST (\\Subscribed \\HasNoChildren) \"/\" \"Lists/rust\"",
            "l OK LIST completed",
        ]
    );
    assert_eq!(
        t.send("l LIST (RECURSIVEMATCH) \"\" %\r\n"),
        "l BAD RECURSIVEMATCH needs another selection option (RFC 5258 3.1)\r\n"
    );
    assert_eq!(
        t.send("l LIST (REMOTE) \"\" %\r\n"),
        "l BAD unknown LIST selection option REMOTE\r\n"
    );
    // RETURN (CHILDREN): \NonExistent for a parent with no folder of its own.
    assert_eq!(
        lines(&t.send("l LIST \"\" % RETURN (CHILDREN)\r\n")),
        vec![
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"",
            "* LIST (\\NonExistent \\HasChildren) \"/\" \"Foo\"",
            "* LIST (\\NonExistent \\HasChildren) \"/\" \"Lists\"",
            "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
            "l OK LIST completed",
        ]
    );
}

#[test]
fn a_big_append_is_spooled_to_tmp_as_it_arrives() {
    let mut t = setup();
    // Before login: refused before the client sends the message.
    assert_eq!(
        t.send("a APPEND INBOX {70000}\r\n"),
        "a BAD log in first\r\n"
    );
    t.login();
    let mut msg = b"Subject: big\r\n\r\n".to_vec();
    while msg.len() < 70_000 {
        msg.extend_from_slice(b"0123456789 abcdefghij\r\n");
    }
    msg.extend_from_slice(b"no line end\r");
    let n = msg.len();
    assert_eq!(
        t.send(&format!("a APPEND INBOX (\\Seen) {{{n}}}\r\n")),
        "+ Ready for literal data\r\n"
    );
    // Cut anywhere, a CRLF across two pieces among them.
    let cut = msg.iter().position(|&b| b == b'\r').unwrap() + 1;
    for piece in [&msg[..cut], &msg[cut..40_000], &msg[40_000..]] {
        t.s.feed(piece);
        assert_eq!(t.out(), "");
        // The message is being written in tmp/.
        assert_eq!(std::fs::read_dir(t.inbox().join("tmp")).unwrap().count(), 1);
    }
    assert_eq!(
        lines(&t.send("\r\n")),
        vec!["a OK [APPENDUID V 3] APPEND completed"]
    );
    let snap = crate::store::uidlist::sync(&t.inbox()).unwrap();
    let m = snap.messages.last().unwrap();
    assert!(m.flags.has_system(b'S'));
    let want: Vec<u8> = String::from_utf8(msg.clone())
        .unwrap()
        .replace("\r\n", "\n")
        .into_bytes();
    assert_eq!(std::fs::read(m.path(&t.inbox())).unwrap(), want);
    assert!(
        std::fs::read_dir(t.inbox().join("tmp"))
            .unwrap()
            .next()
            .is_none()
    );
    // No such folder: refused at once, nothing is sent.
    assert_eq!(
        t.send(&format!("b APPEND Nope {{{n}}}\r\n")),
        "b NO [TRYCREATE] folder Nope does not exist\r\n"
    );
    assert_eq!(t.send("c NOOP\r\n"), "c OK NOOP completed\r\n");
    // LITERAL+: the bytes come anyway; they are dropped, then the answer.
    t.s.feed(format!("d APPEND Nope {{{n}+}}\r\n").as_bytes());
    t.s.feed(&msg);
    assert_eq!(
        t.send("\r\n"),
        "d NO [TRYCREATE] folder Nope does not exist\r\n"
    );
    assert!(
        std::fs::read_dir(t.inbox().join("tmp"))
            .unwrap()
            .next()
            .is_none()
    );
    assert_eq!(t.send("c NOOP\r\n"), "c OK NOOP completed\r\n");
}

/// The bases and file sizes of INBOX's messages.
fn inbox_files(t: &T) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(t.inbox().join("cur"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            (
                crate::store::uidlist::base_name(&name).to_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_index_is_filled_by_the_fetch_and_search_that_need_it() {
    use super::index::Index;
    let mut t = setup();
    t.select();
    let files = inbox_files(&t);
    assert_eq!(files.len(), 2);
    // Nothing read the messages yet: no pass of its own fills the index.
    std::thread::sleep(Duration::from_millis(50));
    assert!(Index::open(&t.inbox()).is_empty());
    // ENVELOPE computed from the headers: kept as partial records, and
    // the next FETCH answers the same from them.
    let env = t.send("f FETCH 1:* (UID ENVELOPE)\r\n");
    assert!(env.contains("\"<m1@example.org>\""), "{env}");
    let idx = Index::open(&t.inbox());
    for (base, size) in &files {
        let m = idx.get(base, *size).expect("an ENVELOPE record");
        assert!(!m.is_full(), "{base}");
    }
    assert_eq!(t.send("f FETCH 1:* (UID ENVELOPE)\r\n"), env);
    // BODYSTRUCTURE needs the whole record: computed, kept, served again
    // the same.
    let bs = t.send("f FETCH 1:* (BODYSTRUCTURE ENVELOPE)\r\n");
    assert!(bs.contains("\"mixed\" (\"boundary\" \"b\")"), "{bs}");
    let idx = Index::open(&t.inbox());
    for (base, size) in &files {
        assert!(idx.get(base, *size).is_some_and(|m| m.is_full()), "{base}");
    }
    assert_eq!(t.send("f FETCH 1:* (BODYSTRUCTURE ENVELOPE)\r\n"), bs);
    // An ENVELOPE FETCH after that keeps the whole records.
    t.send("f FETCH 1:* ENVELOPE\r\n");
    let idx = Index::open(&t.inbox());
    assert!(
        files
            .iter()
            .all(|(b, s)| idx.get(b, *s).is_some_and(|m| m.is_full()))
    );
    // The index lost: a TEXT search computes every record it needs.
    std::fs::remove_file(t.inbox().join(super::index::FILE_NAME)).unwrap();
    let mut u = second_session(&t);
    u.login();
    u.send("s SELECT INBOX\r\n");
    assert_eq!(
        u.send("s SEARCH TEXT zebra\r\n"),
        "* SEARCH 1\r\ns OK SEARCH completed\r\n"
    );
    assert_eq!(
        u.send("s SEARCH BODY mid-line\r\n"),
        "* SEARCH 2\r\ns OK SEARCH completed\r\n"
    );
    let idx = Index::open(&t.inbox());
    assert!(
        files
            .iter()
            .all(|(b, s)| idx.get(b, *s).is_some_and(|m| m.is_full()))
    );
    assert_eq!(
        u.send("s SEARCH TEXT ZEBRA\r\n"),
        "* SEARCH 1\r\ns OK SEARCH completed\r\n"
    );
}

/// A FETCH of a whole folder is offered to the driver in send-sized
/// batches while it is computed; a driver that cannot take a batch yet
/// gets it later with what follows. Either way the bytes and their order
/// are what the session gives without the driver taking early.
#[test]
fn a_long_fetch_is_offered_early_in_order_and_refused_batches_come_later() {
    let mut t = setup();
    let md = Maildir::open(t.inbox()).unwrap();
    for i in 0..60 {
        let body = format!("line {i} of a long message\n").repeat(150);
        deliver(&md, "INBOX", &format!("Subject: m{i}\n\n{body}"), "");
    }
    t.select();
    let fetch = "f UID FETCH 1:* (FLAGS BODY.PEEK[])\r\n";
    let whole = t.send(fetch);
    assert_eq!(
        whole.matches(" FETCH (UID ").count(),
        62,
        "{}",
        &whole[..200]
    );
    assert!(whole.len() > 3 * CHUNK, "{}", whole.len());
    assert!(whole.ends_with("f OK UID FETCH completed\r\n"), "{whole}");

    // A driver that takes every batch: several, each a send's worth,
    // before the command is done.
    let taken = Arc::new(std::sync::Mutex::new(Vec::<Vec<Out>>::new()));
    let sink = taken.clone();
    t.s.set_early(Some(Box::new(move |outs| {
        sink.lock().unwrap().push(outs);
        Ok(())
    })));
    t.s.feed(fetch.as_bytes());
    t.s.set_early(None);
    let batches = std::mem::take(&mut *taken.lock().unwrap());
    assert!(batches.len() >= 3, "{} batches", batches.len());
    let mut early = String::new();
    for b in batches {
        let text = render(b, &mut t.sleeps);
        assert!(text.len() >= CHUNK, "a batch of {} bytes", text.len());
        early.push_str(&text);
    }
    assert!(!early.contains(" OK "), "the tagged reply comes last");
    assert_eq!(early + &t.out(), whole);

    // A driver that refuses every other offer: nothing lost, nothing
    // reordered.
    let mut refuse = true;
    let sink = taken.clone();
    t.s.set_early(Some(Box::new(move |outs| {
        refuse = !refuse;
        if !refuse {
            return Err(outs);
        }
        sink.lock().unwrap().push(outs);
        Ok(())
    })));
    t.s.feed(fetch.as_bytes());
    t.s.set_early(None);
    let batches = std::mem::take(&mut *taken.lock().unwrap());
    assert!(!batches.is_empty());
    let mut early = String::new();
    for b in batches {
        early.push_str(&render(b, &mut t.sleeps));
    }
    assert_eq!(early + &t.out(), whole);
    assert!(t.sleeps.is_empty());
}

// Regressions found by comparing with Dovecot 2.3, one test per bug.
const BYE_INCONSISTENT: &str =
    "* BYE IMAP session state is inconsistent, please relogin.\r\n[CLOSE]";

#[test]
fn a_selected_folder_renamed_or_deleted_under_the_session_ends_it_without_invented_data() {
    // By this session: RENAME, then every command that looks at the folder.
    for (change, cmd) in [
        ("RENAME T1 T2", "f FETCH 1 (UID BODY.PEEK[])"),
        ("RENAME T1 T2", "s STORE 1 +FLAGS (\\Flagged)"),
        ("RENAME T1 T2", "n NOOP"),
        ("RENAME T1 T2", "x EXPUNGE"),
        ("RENAME T1 T2", "c CLOSE"),
    ] {
        let mut t = setup();
        t.login();
        t.send("c CREATE T1\r\n");
        let r = t.send("a APPEND T1 {10+}\r\nSubject: x\r\n");
        assert!(r.starts_with("a OK "), "{r}");
        assert!(t.send("s SELECT T1\r\n").contains("s OK "));
        assert_eq!(
            t.send(&format!("r {change}\r\n")),
            "r OK RENAME completed\r\n"
        );
        assert_eq!(t.send(&format!("{cmd}\r\n")), BYE_INCONSISTENT, "{cmd}");
        assert!(t.s.is_done());
        // The flag was not stored anywhere.
        let cur = t.inbox().join(".T2/cur");
        for e in std::fs::read_dir(&cur).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            assert!(name.ends_with(":2,"), "{name}");
        }
    }
    // By another session: RENAME or DELETE, or a new folder by the old name.
    for change in [
        "RENAME Ren1 Ren2",
        "DELETE Ren1",
        "RENAME Ren1 Ren2\r\nc2 CREATE Ren1",
    ] {
        for cmd in [
            "n NOOP",
            "f FETCH 1 (BODY[HEADER] ENVELOPE BODYSTRUCTURE)",
            "x EXPUNGE",
            "s SEARCH ALL",
            "c COPY 1 INBOX",
        ] {
            let mut a = setup();
            a.login();
            a.send("c CREATE Ren1\r\n");
            a.send("a APPEND Ren1 {10+}\r\nSubject: x\r\n");
            let mut b = second_session(&a);
            b.login();
            assert!(b.send("s SELECT Ren1\r\n").contains("s OK "));
            let r = a.send(&format!("r {change}\r\n"));
            assert!(r.contains("r OK "), "{r}");
            assert_eq!(
                b.send(&format!("{cmd}\r\n")),
                BYE_INCONSISTENT,
                "{change}: {cmd}"
            );
        }
    }
}

#[test]
fn what_another_session_expunged_is_not_fetched_stored_or_copied() {
    let mut a = setup();
    a.select();
    let mut b = second_session(&a);
    b.select();
    assert!(
        a.send("s STORE 2 +FLAGS.SILENT (\\Deleted)\r\n")
            .contains("s OK")
    );
    assert!(a.send("x EXPUNGE\r\n").contains("* 2 EXPUNGE"));
    // b has not been told: 2 is still its message 2.
    assert_eq!(
        b.send("f FETCH 2 (UID FLAGS)\r\n"),
        "f OK [EXPUNGEISSUED] FETCH completed; some messages were expunged\r\n"
    );
    assert_eq!(
        b.send("f FETCH 1:2 UID\r\n"),
        "* 1 FETCH (UID 1)\r\nf OK [EXPUNGEISSUED] FETCH completed; some messages were expunged\r\n"
    );
    assert_eq!(
        b.send("s STORE 2 +FLAGS (\\Flagged)\r\n"),
        "s OK [EXPUNGEISSUED] STORE completed; some messages were expunged\r\n"
    );
    assert_eq!(
        b.send("c COPY 1:2 Sent\r\n"),
        "c NO [EXPUNGEISSUED] Some of the requested messages no longer exist.\r\n"
    );
    assert_eq!(
        b.send("m MOVE 2 Sent\r\n"),
        "m NO [EXPUNGEISSUED] Some of the requested messages no longer exist.\r\n"
    );
    // Nothing was copied, not even message 1.
    assert_eq!(
        lines(&a.send("s STATUS Sent (MESSAGES)\r\n")),
        vec!["* STATUS \"Sent\" (MESSAGES 0)", "s OK STATUS completed"]
    );
    // Told at NOOP, and all is well again.
    assert_eq!(
        b.send("n NOOP\r\n"),
        "* 2 EXPUNGE\r\nn OK NOOP completed\r\n"
    );
    assert!(b.send("c COPY 1 Sent\r\n").contains("c OK [COPYUID "));
}

#[test]
fn a_folder_made_again_within_a_second_has_a_new_uidvalidity() {
    let mut t = setup();
    t.login();
    let mut seen = Vec::new();
    for step in [
        "c CREATE F1",
        "d DELETE F1\r\nc CREATE F1",
        "r RENAME F1 F2\r\nc CREATE F1",
    ] {
        let r = t.send(&format!("{step}\r\n"));
        assert!(r.ends_with("c OK CREATE completed\r\n"), "{r}");
        let r = t.send("a APPEND F1 {10+}\r\nSubject: x\r\n");
        assert!(r.contains("[APPENDUID "), "{r}");
        let v = num_after(&r, "[APPENDUID ");
        assert!(
            !seen.contains(&v),
            "{step}: UIDVALIDITY {v} again: {seen:?}"
        );
        seen.push(v);
    }
    // Kept where Dovecot keeps it, in its format.
    let hint = std::fs::read_to_string(t.inbox().join("dovecot-uidvalidity")).unwrap();
    assert_eq!(u32::from_str_radix(&hint, 16).unwrap() as u64, seen[2]);
    assert!(
        t.inbox()
            .join(format!("dovecot-uidvalidity.{hint}"))
            .exists()
    );
}

#[test]
fn a_nul_in_a_message_is_sent_as_0x80_byte_for_byte() {
    let mut t = setup();
    deliver(
        &Maildir::open(t.inbox()).unwrap(),
        "INBOX",
        "Subject: nul\nX-N: a\0b\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nc\0d\n--b--\n",
        "",
    );
    t.select();
    for (cmd, want) in [
        (
            "f FETCH 3 BODY.PEEK[]\r\n",
            &b"X-N: a\x80b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nc\x80d\r\n--b--\r\n"[..],
        ),
        ("f FETCH 3 BODY.PEEK[1]\r\n", b"{3}\r\nc\x80d)"),
        ("f FETCH 3 BODY.PEEK[HEADER.FIELDS (X-N)]\r\n", b"{12}\r\nX-N: a\x80b\r\n\r\n)"),
        ("f FETCH 3 BODY.PEEK[TEXT]\r\n", b"\r\nc\x80d\r\n--b--\r\n"),
    ] {
        t.s.feed(cmd.as_bytes());
        let r = render_bytes(t.s.take_output(), &mut t.sleeps);
        assert!(!r.contains(&0), "{cmd}: {}", String::from_utf8_lossy(&r));
        assert!(
            r.windows(want.len()).any(|w| w == want),
            "{cmd}: {}",
            String::from_utf8_lossy(&r)
        );
        // The size announced is the size sent: the response ends right.
        assert!(r.ends_with(b")\r\nf OK FETCH completed\r\n"), "{cmd}");
    }
    // In a string of the ENVELOPE or BODYSTRUCTURE too (a literal there).
    let mut out = Vec::new();
    crate::proto::imap::response::string(&mut out, b"a\0\xc3\xa9");
    assert_eq!(out, b"{4}\r\na\x80\xc3\xa9");
}

#[test]
fn a_parent_that_is_only_a_name_is_renamed_with_its_children() {
    let mut t = setup();
    t.login();
    assert_eq!(t.send("c CREATE x/y\r\n"), "c OK CREATE completed\r\n");
    t.send("c CREATE x/w/v\r\n");
    assert!(!t.inbox().join(".x").exists());
    assert!(
        t.send("l LIST \"\" x\r\n")
            .contains("* LIST (\\Noselect \\HasChildren) \"/\" \"x\"\r\n")
    );
    assert_eq!(t.send("r RENAME x z\r\n"), "r OK RENAME completed\r\n");
    assert!(t.inbox().join(".z.y").is_dir());
    assert!(t.inbox().join(".z.w.v").is_dir());
    assert!(!t.inbox().join(".x.y").exists());
    // Nothing replaced: a child of the new name exists already.
    t.send("c CREATE q/y\r\n");
    t.send("c CREATE z/q\r\n");
    assert!(
        t.send("r RENAME z q\r\n")
            .starts_with("r NO [ALREADYEXISTS]")
    );
    assert!(t.inbox().join(".z.y").is_dir());
    assert!(
        t.send("r RENAME nothing q2\r\n")
            .starts_with("r NO [NONEXISTENT]")
    );
}

#[test]
fn keyword_letters_dovecot_keywords_does_not_name_survive_copy_and_move() {
    let mut t = setup();
    // Keywords a (named) and z (not named in dovecot-keywords).
    let folder = t.inbox().join(".Lists.rust");
    std::fs::write(folder.join("dovecot-keywords"), "0 work\n").unwrap();
    std::fs::write(folder.join("cur/1700000000.M1P1.test:2,Saz"), MSG1).unwrap();
    t.login();
    assert!(t.send("s SELECT Lists/rust\r\n").contains("s OK "));
    assert!(t.send("c COPY 1 Sent\r\n").contains("c OK [COPYUID "));
    assert!(t.send("m MOVE 1 Sent\r\n").contains("m OK MOVE completed"));
    let sent: Vec<String> = std::fs::read_dir(t.inbox().join(".Sent/cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|n| n.ends_with(":2,Saz")), "{sent:?}");
    assert_eq!(
        std::fs::read_to_string(t.inbox().join(".Sent/dovecot-keywords")).unwrap(),
        "0 work\n"
    );
}

#[test]
fn small_answers_as_dovecot_gives_them() {
    let mut t = setup();
    t.login();
    // CHECK is for the selected state.
    assert!(t.send("k CHECK\r\n").starts_with("k BAD "));
    // A big literal outside APPEND names the limit it passed.
    assert_eq!(
        t.send("c CREATE {3000000}\r\n"),
        "c NO [TOOBIG] literal larger than 2097152 bytes (only APPEND takes more)\r\n"
    );
    // A day the month does not have is a bad date.
    assert!(
        t.send("a APPEND INBOX \"29-Feb-2023 12:00:00 +0000\" {1+}\r\nx\r\n")
            .starts_with("a BAD ")
    );
    t.send("s SELECT INBOX\r\n");
    assert!(t.send("k CHECK\r\n").starts_with("k OK "));
    assert!(
        t.send("s SEARCH SINCE 31-Feb-2024\r\n")
            .starts_with("s BAD ")
    );
    // \Recent and \* are no flags a client sets; nothing changes.
    assert_eq!(
        t.send("s STORE 2 FLAGS (\\Recent)\r\n"),
        "s BAD Invalid system flag \\Recent\r\n"
    );
    assert_eq!(
        t.send("s STORE 2 +FLAGS (\\*)\r\n"),
        "s BAD Invalid system flag \\*\r\n"
    );
    assert!(t.send("f FETCH 2 FLAGS\r\n").contains("\\Seen"));
    // The 27th keyword: refused, no path told.
    let many: Vec<String> = (0..26).map(|i| format!("k{i}")).collect();
    let r = t.send(&format!("s STORE 1 +FLAGS.SILENT ({})\r\n", many.join(" ")));
    // .SILENT is about the messages: the folder's new FLAGS are still told.
    assert!(r.starts_with("* FLAGS (") && r.contains(" k25)\r\n"), "{r}");
    assert!(
        r.ends_with("flags permitted\r\ns OK STORE completed\r\n"),
        "{r}"
    );
    let r = t.send("s STORE 1 +FLAGS.SILENT (one-more)\r\n");
    assert_eq!(
        r,
        "s NO [LIMIT] a folder holds 26 keywords at most (Maildir's letters a to z); one-more was not added\r\n"
    );
    assert!(!r.contains('/'));
}

/// Regression: a keyword new to the folder, set by this session or
/// another, came only in a FETCH; clients that build their list of tags
/// from FLAGS did not see it until they selected the folder again. As
/// Dovecot: a new FLAGS and PERMANENTFLAGS first.
#[test]
fn a_new_keyword_is_announced_in_flags_before_it_is_shown() {
    let mut a = setup();
    a.login();
    a.send("s SELECT INBOX\r\n");
    let mut b = second_session(&a);
    b.login();
    b.send("s SELECT INBOX\r\n");
    let got = a.send("t STORE 1 +FLAGS ($Label1)\r\n");
    let flags = got.find("* FLAGS (").expect(&got);
    let permanent = got.find("* OK [PERMANENTFLAGS (").expect(&got);
    let fetch = got.find("* 1 FETCH (FLAGS (").expect(&got);
    assert!(flags < permanent && permanent < fetch, "{got}");
    assert!(
        got[flags..].starts_with("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)"),
        "{got}"
    );
    // Once is enough.
    let again = a.send("u STORE 2 +FLAGS ($Label1)\r\n");
    assert!(!again.contains("* FLAGS"), "{again}");
    // The other session hears of it at its next command.
    let news = b.send("n NOOP\r\n");
    let flags = news.find("* FLAGS (").expect(&news);
    let fetch = news.find(" FETCH (").expect(&news);
    assert!(flags < fetch && news[flags..].contains("$Label1"), "{news}");
    // EXAMINE: FLAGS, and no PERMANENTFLAGS to offer.
    b.send("e EXAMINE INBOX\r\n");
    a.send("v STORE 1 +FLAGS (Urgent)\r\n");
    let news = b.send("n NOOP\r\n");
    assert!(
        news.contains("* FLAGS (") && news.contains("Urgent"),
        "{news}"
    );
    assert!(!news.contains("PERMANENTFLAGS"), "{news}");
}

/// Regression: EXAMINE said `* 0 RECENT` and SEARCH RECENT found nothing
/// while mail sat unclaimed in `new/`. As Dovecot: it is recent to an
/// EXAMINE, which claims none of it, so the next SELECT still does.
#[test]
fn examine_sees_new_mail_as_recent_and_leaves_it_to_select() {
    let mut a = setup();
    a.login();
    let in_new = |t: &T| std::fs::read_dir(t.inbox().join("new")).unwrap().count();
    let waiting = in_new(&a);
    assert!(waiting > 0);
    let ex = a.send("e EXAMINE INBOX\r\n");
    assert!(ex.contains(&format!("* {waiting} RECENT\r\n")), "{ex}");
    let found = a.send("r SEARCH RECENT\r\n");
    let hits = found.lines().next().unwrap().split_whitespace().count() - 2;
    assert_eq!(hits, waiting, "{found}");
    // Mail arriving while it looks is recent too.
    deliver(
        &Maildir::open(a.inbox()).unwrap(),
        "INBOX",
        "Subject: late\n\nx\n",
        "",
    );
    let news = a.send("n NOOP\r\n");
    assert!(
        news.contains(&format!("* {} RECENT\r\n", waiting + 1)),
        "{news}"
    );
    assert_eq!(in_new(&a), waiting + 1, "EXAMINE claims nothing");
    let mut b = second_session(&a);
    b.login();
    let sel = b.send("s SELECT INBOX\r\n");
    assert!(
        sel.contains(&format!("* {} RECENT\r\n", waiting + 1)),
        "{sel}"
    );
    assert_eq!(in_new(&a), 0, "SELECT claims it");
}

/// RFC 3501 6.4.7: a copy is recent in its new folder. As Dovecot stores
/// it: a copy without flags goes into `new/`, so the next session to
/// SELECT the folder is told it is recent; a copy with flags needs `cur/`
/// for them, and, in a folder never selected (no `ownmail-recent` to give
/// its first recent UID), is not: such a folder keeps the `new/` rule.
#[test]
fn a_copy_without_flags_is_recent_in_its_new_folder() {
    let mut a = setup();
    a.login();
    a.send("s SELECT INBOX\r\n");
    // Message 1 has no flags, message 2 is \Seen.
    assert!(a.send("c COPY 1:2 Sent\r\n").contains("c OK [COPYUID "));
    assert!(a.send("m MOVE 1 Lists/rust\r\n").contains("m OK"));
    let sent = a.inbox().join(".Sent");
    let count = |sub: &str| std::fs::read_dir(sent.join(sub)).unwrap().count();
    assert_eq!((count("new"), count("cur")), (1, 1));
    let mut b = second_session(&a);
    b.login();
    let sel = b.send("s SELECT Sent\r\n");
    assert!(
        sel.contains("* 2 EXISTS\r\n") && sel.contains("* 1 RECENT\r\n"),
        "{sel}"
    );
    let flags = b.send("f FETCH 1:2 (FLAGS)\r\n");
    assert!(
        flags.contains("* 1 FETCH (FLAGS (\\Recent))")
            && flags.contains("* 2 FETCH (FLAGS (\\Seen))"),
        "{flags}"
    );
    let sel = b.send("s SELECT Lists/rust\r\n");
    assert!(sel.contains("* 1 RECENT\r\n"), "{sel}");
}

/// RFC 7162 3.2.11: a SELECT or EXAMINE that replaces a selected folder
/// first says `[CLOSED]`, so a client pipelining it knows which responses
/// are the old folder's. Nothing was open before the first one.
#[test]
fn selecting_another_folder_says_the_old_one_closed() {
    let mut t = setup();
    t.login();
    let first = t.send("s SELECT INBOX\r\n");
    assert!(!first.contains("[CLOSED]"), "{first}");
    let second = t.send("e EXAMINE Sent\r\n");
    assert!(second.starts_with("* OK [CLOSED] "), "{second}");
    let failed = t.send("s SELECT Nowhere\r\n");
    assert!(
        failed.starts_with("* OK [CLOSED] ") && failed.contains("s NO "),
        "{failed}"
    );
    let after = t.send("s SELECT INBOX\r\n");
    assert!(!after.contains("[CLOSED]"), "nothing was selected: {after}");
}

/// The inode of the only message file in `folder` whose name starts with
/// anything (new/ or cur/), with its link count.
fn only_file(folder: &std::path::Path) -> (std::path::PathBuf, u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut found = Vec::new();
    for sub in ["new", "cur"] {
        for e in std::fs::read_dir(folder.join(sub)).unwrap() {
            let p = e.unwrap().path();
            let md = std::fs::metadata(&p).unwrap();
            found.push((p, md.ino(), md.nlink()));
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    found.pop().unwrap()
}

/// As Dovecot (`maildir_copy_with_hardlinks`): COPY links the file into
/// the new folder and MOVE renames it there, under a new name; no byte is
/// copied, and a MOVE cut short by a crash leaves each message in exactly
/// one folder, never in both.
#[test]
fn copy_links_and_move_renames_the_file() {
    use std::os::unix::fs::MetadataExt;
    let mut t = setup();
    t.login();
    t.send("s SELECT INBOX\r\n");
    let inbox = t.inbox();
    let files: Vec<(std::path::PathBuf, u64)> = ["new", "cur"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(inbox.join(sub)).unwrap())
        .map(|e| {
            let p = e.unwrap().path();
            let ino = std::fs::metadata(&p).unwrap().ino();
            (p, ino)
        })
        .collect();
    let ino_of = |text: &str| {
        files
            .iter()
            .find(|(p, _)| std::fs::read_to_string(p).unwrap().contains(text))
            .unwrap()
            .1
    };
    let (first, second) = (ino_of("Zebra"), ino_of("multipart"));
    assert!(t.send("c COPY 1 Sent\r\n").contains("c OK [COPYUID "));
    let (_, ino, links) = only_file(&inbox.join(".Sent"));
    assert_eq!((ino, links), (first, 2), "a link, not a copy");
    let moved = t.send("m MOVE 2 Lists/rust\r\n");
    assert!(
        moved.contains("* 2 EXPUNGE\r\n") && moved.contains("m OK"),
        "{moved}"
    );
    let (path, ino, links) = only_file(&inbox.join(".Lists.rust"));
    assert_eq!((ino, links), (second, 1), "renamed, not copied");
    assert!(path.to_str().unwrap().ends_with(":2,S"), "{path:?}");
    // Both read back whole, with their flags, in their new folders.
    t.send("s SELECT Lists/rust\r\n");
    let f = t.send("f FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n");
    assert!(
        f.contains("FLAGS (\\Seen)") && f.contains("Subject: multipart"),
        "{f}"
    );
}

/// Where a folder is on another file system (a symbolic link to another
/// disk), a link or rename cannot be made: the bytes are copied, and MOVE
/// still takes the message out of its old folder.
#[test]
fn copy_and_move_to_another_file_system_copy_the_bytes() {
    use std::os::unix::fs::MetadataExt;
    let mut t = setup();
    t.login();
    let elsewhere =
        tempfile::tempdir_in("/dev/shm").expect("/dev/shm (tmpfs) for a second file system");
    let far = elsewhere.path().join("Far");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(far.join(sub)).unwrap();
    }
    std::fs::write(far.join("maildirfolder"), "").unwrap();
    std::os::unix::fs::symlink(&far, t.inbox().join(".Far")).unwrap();
    assert_ne!(
        std::fs::metadata(&far).unwrap().dev(),
        std::fs::metadata(t.inbox()).unwrap().dev(),
        "the test needs /dev/shm on another file system than the temporary folder"
    );
    t.send("s SELECT INBOX\r\n");
    assert!(t.send("c COPY 1 Far\r\n").contains("c OK [COPYUID "));
    let moved = t.send("m MOVE 1:2 Far\r\n");
    assert!(moved.contains("m OK"), "{moved}");
    assert!(t.send("n NOOP\r\n").contains("n OK"));
    let status = t.send("s STATUS INBOX (MESSAGES)\r\n");
    assert!(status.contains("(MESSAGES 0)"), "{status}");
    t.send("s SELECT Far\r\n");
    let f = t.send("f FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n");
    assert_eq!(f.matches("Subject: ").count(), 3, "{f}");
    for e in std::fs::read_dir(far.join("cur"))
        .unwrap()
        .chain(std::fs::read_dir(far.join("new")).unwrap())
    {
        assert_eq!(std::fs::metadata(e.unwrap().path()).unwrap().nlink(), 1);
    }
}

/// RFC 3501 6.4.4: SEARCH CHARSET names the charset of the search strings.
/// Older clients send their locale's (ISO-8859-1, windows-1252): the
/// strings are decoded, and the search finds what UTF-8 would. An unknown
/// charset is NO [BADCHARSET], as before; `utf-8` in lower case is UTF-8.
#[test]
fn search_strings_in_another_charset_are_decoded() {
    let mut t = setup();
    t.select();
    for charset in ["ISO-8859-1", "windows-1252"] {
        // "Käse" in that charset: E4 is ä. Message 2 has it, quoted-printable.
        t.s.feed(format!("s SEARCH CHARSET {charset} BODY {{4+}}\r\n").as_bytes());
        t.s.feed(b"K\xe4se\r\n");
        assert_eq!(
            t.out(),
            "* SEARCH 2\r\ns OK SEARCH completed\r\n",
            "{charset}"
        );
    }
    assert_eq!(
        t.send("s SEARCH CHARSET utf-8 BODY \"K\u{e4}se\"\r\n"),
        "* SEARCH 2\r\ns OK SEARCH completed\r\n"
    );
    let bad = t.send("s SEARCH CHARSET X-BOGUS TEXT x\r\n");
    assert!(bad.starts_with("s NO [BADCHARSET ("), "{bad}");
}

/// The UIDs a session's `UID SEARCH RECENT` finds.
fn recent_uids(t: &mut T) -> Vec<u32> {
    let r = t.send("r UID SEARCH RECENT\r\n");
    assert!(r.ends_with("r OK UID SEARCH completed\r\n"), "{r}");
    r.lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(2)
        .map(|u| u.parse().unwrap())
        .collect()
}

/// Regression: \Recent was "moved from `new/` by this session's SELECT",
/// so a message that arrived in `cur/` (an APPEND with flags, a COPY of a
/// flagged message, `deliver --flags S`) was recent to nobody, where
/// Dovecot's first recent UID makes it recent to the next SELECT.
#[test]
fn mail_arriving_in_cur_is_recent_to_the_next_select_and_nobody_after() {
    let mut a = setup();
    a.login();
    // Selected once: Sent has its first recent UID from now on.
    assert!(a.send("s SELECT Sent\r\n").contains("* 0 RECENT\r\n"));
    a.send("s SELECT INBOX\r\n");
    assert!(
        a.send("f STORE 1 +FLAGS.SILENT (\\Flagged)\r\n")
            .contains("f OK")
    );
    assert!(a.send("c COPY 1 Sent\r\n").contains("c OK [COPYUID "));
    let r = a.send("a APPEND Sent (\\Seen) {20+}\r\nSubject: x\r\n\r\nbody\r\n\r\n");
    assert!(r.contains("a OK [APPENDUID "), "{r}");
    deliver(
        &Maildir::open(a.inbox()).unwrap(),
        "Sent",
        "Subject: d\n\nx\n",
        "S",
    );
    let sent = a.inbox().join(".Sent");
    let count = |sub: &str| std::fs::read_dir(sent.join(sub)).unwrap().count();
    assert_eq!((count("new"), count("cur")), (0, 3), "all three in cur/");

    let mut b = second_session(&a);
    b.login();
    let sel = b.send("s SELECT Sent\r\n");
    assert!(
        sel.contains("* 3 EXISTS\r\n") && sel.contains("* 3 RECENT\r\n"),
        "{sel}"
    );
    assert_eq!(
        lines(&b.send("f FETCH 1:3 (FLAGS)\r\n")),
        vec![
            "* 1 FETCH (FLAGS (\\Flagged \\Recent))",
            "* 2 FETCH (FLAGS (\\Seen \\Recent))",
            "* 3 FETCH (FLAGS (\\Seen \\Recent))",
            "f OK FETCH completed"
        ]
    );
    // Nobody after: not a, not a third session, not b selecting again.
    assert!(a.send("s SELECT Sent\r\n").contains("* 0 RECENT\r\n"));
    let mut c = second_session(&a);
    c.login();
    assert!(c.send("s SELECT Sent\r\n").contains("* 0 RECENT\r\n"));
    assert!(c.send("e EXAMINE Sent\r\n").contains("* 0 RECENT\r\n"));
    assert_eq!(recent_uids(&mut b), vec![1, 2, 3]);
    assert!(b.send("s SELECT Sent\r\n").contains("* 0 RECENT\r\n"));
}

/// RFC 3501 2.3.2: of sessions selecting one folder at once, exactly one is
/// told of each message as recent, whether it waits in `new/` or `cur/`,
/// at SELECT and when it arrives while they are selected.
#[test]
fn concurrent_sessions_never_share_a_recent_message() {
    let mut a = setup();
    a.login();
    // INBOX has no `ownmail-recent` yet: its one message in new/ is recent.
    let md = Maildir::open(a.inbox()).unwrap();
    let mut sessions: Vec<T> = (0..6)
        .map(|_| {
            let mut t = second_session(&a);
            t.login();
            t
        })
        .collect();
    let mut expected: Vec<u32> = vec![1];
    for round in 0..4 {
        let results: Vec<(T, Vec<u32>)> = std::thread::scope(|s| {
            let handles: Vec<_> = sessions
                .drain(..)
                .map(|mut t| {
                    s.spawn(move || {
                        let cmd = if round == 0 {
                            "s SELECT INBOX\r\n"
                        } else {
                            "n NOOP\r\n"
                        };
                        let r = t.send(cmd);
                        assert!(r.contains(" OK "), "{r}");
                        let uids = recent_uids(&mut t);
                        (t, uids)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut told: Vec<u32> = Vec::new();
        for (t, mut uids) in results {
            uids.retain(|u| expected.contains(u));
            told.extend(uids);
            sessions.push(t);
        }
        told.sort_unstable();
        assert_eq!(told, expected, "round {round}: each recent exactly once");
        // Mail for the next round, in both new/ and cur/.
        for i in 0..3 {
            deliver(&md, "INBOX", &format!("Subject: n{round}{i}\n\nx\n"), "");
            deliver(&md, "INBOX", &format!("Subject: c{round}{i}\n\nx\n"), "S");
        }
        let first = expected.last().map_or(1, |u| u + 1).max(3);
        expected = (first..first + 6).collect();
    }
}

/// EXAMINE and STATUS count what is recent and claim none of it: the next
/// SELECT still gets it.
#[test]
fn examine_and_status_count_recent_in_cur_without_claiming() {
    let mut a = setup();
    a.select();
    let md = Maildir::open(a.inbox()).unwrap();
    deliver(&md, "INBOX", "Subject: c\n\nx\n", "FS");
    deliver(&md, "INBOX", "Subject: n\n\nx\n", "");
    let mut b = second_session(&a);
    b.login();
    for _ in 0..2 {
        let st = b.send("t STATUS INBOX (RECENT)\r\n");
        assert!(st.contains("* STATUS \"INBOX\" (RECENT 2)\r\n"), "{st}");
        assert!(b.send("e EXAMINE INBOX\r\n").contains("* 2 RECENT\r\n"));
        assert_eq!(recent_uids(&mut b), vec![3, 4]);
        // Mail arriving while it looks is recent too.
    }
    deliver(&md, "INBOX", "Subject: c2\n\nx\n", "S");
    let n = b.send("n NOOP\r\n");
    assert!(n.contains("* 5 EXISTS\r\n* 3 RECENT\r\n"), "{n}");
    b.send("c CLOSE\r\n");
    // a is the first session to look since: all three are a's (with the
    // one it had, 4 in all).
    let n = a.send("n NOOP\r\n");
    assert!(
        n.contains("* 5 EXISTS\r\n* 4 RECENT\r\n"),
        "a claims them: {n}"
    );
    assert_eq!(recent_uids(&mut a), vec![1, 3, 4, 5]);
    let st = b.send("t STATUS INBOX (RECENT)\r\n");
    assert!(st.contains("(RECENT 0)"), "{st}");
    assert!(b.send("e EXAMINE INBOX\r\n").contains("* 0 RECENT\r\n"));
}

/// A folder without `ownmail-recent` (a Maildir from Dovecot or from an
/// older ownmail) keeps the old rule: what is in `new/` is recent, a
/// message in `cur/` is not; EXAMINE and STATUS write nothing; the first
/// SELECT writes the file, and mail arriving in `cur/` after it is recent.
#[test]
fn a_folder_without_the_recent_file_keeps_the_new_dir_rule_until_select() {
    let mut a = setup();
    a.login();
    let file = a.inbox().join(crate::store::recent::FILE_NAME);
    let st = a.send("t STATUS INBOX (RECENT)\r\n");
    assert!(st.contains("(RECENT 1)"), "{st}");
    assert!(a.send("e EXAMINE INBOX\r\n").contains("* 1 RECENT\r\n"));
    assert_eq!(recent_uids(&mut a), vec![1]);
    assert!(!file.exists(), "EXAMINE and STATUS write nothing");
    assert!(a.send("s SELECT INBOX\r\n").contains("* 1 RECENT\r\n"));
    assert_eq!(recent_uids(&mut a), vec![1]);
    assert!(file.exists(), "the first SELECT writes it");
    // A file of another UIDVALIDITY counts as none.
    std::fs::write(&file, "ownmail-recent 1 V1 R1\n").unwrap();
    let mut b = second_session(&a);
    b.login();
    assert!(b.send("s SELECT INBOX\r\n").contains("* 0 RECENT\r\n"));
    let md = Maildir::open(a.inbox()).unwrap();
    deliver(&md, "INBOX", "Subject: c\n\nx\n", "S");
    assert!(
        b.send("n NOOP\r\n")
            .contains("* 3 EXISTS\r\n* 1 RECENT\r\n")
    );
    assert!(a.send("n NOOP\r\n").contains("* 3 EXISTS\r\nn OK"));
}
