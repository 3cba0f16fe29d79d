//! Helpers for the `fetch` tests: a Dovecot whose mailbox the test fills,
//! an ownmail configuration with `fetch:` accounts pointing at it, and
//! comparisons between what the server held and what was delivered.
//!
//! What the server "held" is the file the test put into its Maildir. What
//! Dovecot sends for it is that file with a CR added before every LF that
//! has none; what `fetch` stores (Maildir, LF line ends) is what was sent
//! with every CR LF turned into LF. So the expected bytes for a raw
//! Maildir target are [`crlf_to_lf`] of the file, and for a `{user}`
//! target the same with `Delivered-To:` on top.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::dovecot::{self, Dovecot};

pub const USER: &str = "remote";
pub const PASSWORD: &str = "pop-and-imap secret";

/// Every corpus message as a bare RFC 5322 message (no `From ` line).
pub fn corpus_messages() -> Vec<Vec<u8>> {
    super::corpus_files()
        .iter()
        .map(|p| strip_from_line(&std::fs::read(p).unwrap()).to_vec())
        .collect()
}

pub fn strip_from_line(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"From ") {
        match raw.iter().position(|&b| b == b'\n') {
            Some(i) => &raw[i + 1..],
            None => &[],
        }
    } else {
        raw
    }
}

/// What a raw Maildir target stores for a message the server held as
/// `held`, fetched over POP3: LF line ends, and a last line end if the
/// message had none (POP3's terminating dot must start a line, RFC 1939 3,
/// so the server adds one).
pub fn via_pop3(held: &[u8]) -> Vec<u8> {
    let mut m = crlf_to_lf(held);
    if !m.ends_with(b"\n") {
        m.push(b'\n');
    }
    m
}

pub fn crlf_to_lf(bytes: &[u8]) -> Vec<u8> {
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

/// A Dovecot with one user whose Maildir the test fills.
pub struct Server {
    pub dovecot: Dovecot,
    pub maildir: PathBuf,
    next: usize,
}

/// What to start.
pub struct ServerSetup {
    pub setup: dovecot::Setup,
    pub maildir: PathBuf,
}

impl ServerSetup {
    /// POP3 and IMAP, with TLS (STARTTLS/STLS and implicit).
    pub fn new() -> ServerSetup {
        let mut setup = dovecot::Setup::new();
        setup.imap().pop3().tls();
        // APOP needs the plaintext password, which the passwd-file has.
        setup.config("auth_mechanisms = plain login apop xoauth2 oauthbearer");
        let maildir = setup.user(USER, PASSWORD);
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        ServerSetup { setup, maildir }
    }

    pub fn start(self) -> Server {
        dovecot::give_to_mail_owner(&self.maildir);
        Server {
            dovecot: self.setup.start(),
            maildir: self.maildir,
            next: 0,
        }
    }
}

impl Server {
    /// Puts messages into the user's INBOX (or `folder`), as files Dovecot
    /// picks up; returns their paths.
    pub fn add(&mut self, folder: Option<&str>, messages: &[Vec<u8>]) -> Vec<PathBuf> {
        let dir = match folder {
            None => self.maildir.clone(),
            Some(f) => {
                let d = self.maildir.join(format!(".{f}"));
                for sub in ["cur", "new", "tmp"] {
                    std::fs::create_dir_all(d.join(sub)).unwrap();
                }
                std::fs::write(d.join("maildirfolder"), "").unwrap();
                dovecot::give_to_mail_owner(&d);
                d
            }
        };
        let mut paths = Vec::new();
        for m in messages {
            self.next += 1;
            let path = dir
                .join("new")
                .join(format!("1700000000.M{}P1.test", self.next));
            std::fs::write(&path, m).unwrap();
            dovecot::give_to_mail_owner(&path);
            paths.push(path);
        }
        paths
    }

    /// The messages still in a folder of the server's Maildir.
    pub fn held(&self, folder: Option<&str>) -> Vec<Vec<u8>> {
        let dir = match folder {
            None => self.maildir.clone(),
            Some(f) => self.maildir.join(format!(".{f}")),
        };
        super::messages(&dir)
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    }

    /// `sha256:...` of the server's certificate.
    pub fn fingerprint(&self) -> String {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(self.dovecot.cert())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let hex = text.trim().rsplit('=').next().unwrap();
        format!("sha256:{hex}")
    }
}

/// The ownmail side: a configuration with data_dir, users and accounts.
pub struct Local {
    pub dir: tempfile::TempDir,
}

impl Local {
    pub fn new() -> Local {
        let dir = tempfile::tempdir().unwrap();
        Local { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("ownmail.yaml")
    }

    pub fn password_file(&self, password: &str) -> PathBuf {
        let p = self.dir.path().join("remote.pass");
        std::fs::write(&p, format!("{password}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    /// Writes the configuration with these account blocks (YAML list items
    /// under `fetch.accounts`, indented by four spaces).
    pub fn write(&self, accounts: &str) {
        std::fs::write(
            self.config(),
            format!(
                "hostname: mail.example.org\ndomains: [example.org]\ndata_dir: data\nfetch:\n  accounts:\n{accounts}"
            ),
        )
        .unwrap();
    }

    /// `ownmail --config ... fetch ARGS`.
    pub fn fetch(&self, args: &[&str]) -> Output {
        let mut cmd = super::ownmail();
        cmd.arg("--config")
            .arg(self.config())
            .arg("fetch")
            .args(args);
        super::run(&mut cmd, b"")
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = super::ownmail();
        cmd.arg("--config").arg(self.config());
        cmd
    }

    /// A Maildir below the scratch folder.
    pub fn maildir(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn state_file(&self, account: &str) -> PathBuf {
        self.dir.path().join(format!("data/fetch/{account}.state"))
    }
}

/// An account block for [`Local::write`].
pub fn account(name: &str, protocol: &str, port: u16, tls: &str, extra: &str) -> String {
    let mut s = format!(
        "    - name: {name}\n      protocol: {protocol}\n      host: 127.0.0.1\n      port: {port}\n      tls: {tls}\n      username: {USER}\n"
    );
    for line in extra.lines().filter(|l| !l.trim().is_empty()) {
        s.push_str("      ");
        s.push_str(line.trim());
        s.push('\n');
    }
    s
}

/// The bytes of every message in a Maildir folder.
pub fn stored(folder: &Path) -> Vec<Vec<u8>> {
    super::messages(folder)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// Asserts that `got` holds exactly `want`, as multisets, and says which
/// are missing or extra when not.
pub fn assert_same_messages(got: &[Vec<u8>], want: &[Vec<u8>], what: &str) {
    let mut counts: HashMap<&[u8], i64> = HashMap::new();
    for m in want {
        *counts.entry(m).or_default() += 1;
    }
    for m in got {
        *counts.entry(m).or_default() -= 1;
    }
    let missing: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(m, n)| format!("{n}x {:?}", preview(m)))
        .take(5)
        .collect();
    let extra: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n < 0)
        .map(|(m, n)| format!("{}x {:?}", -n, preview(m)))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && got.len() == want.len(),
        "{what}: {} stored, {} expected; missing {missing:?}; extra (or doubled) {extra:?}",
        got.len(),
        want.len()
    );
}

fn preview(m: &[u8]) -> String {
    let s = String::from_utf8_lossy(&m[..m.len().min(120)]).into_owned();
    s.replace('\n', "\\n")
}

/// Standard output and error, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
