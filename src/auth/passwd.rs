//! The users file in Dovecot's passwd-file format:
//! `name:{SCHEME}hash:uid:gid:gecos:home:shell:extra`, where everything
//! after the password is kept as it is and otherwise ignored.
//!
//! Reading is lenient line by line: a line with a refused scheme (`{PLAIN}`),
//! a damaged hash, or bytes that are not UTF-8 (a Latin-1 name in the GECOS
//! field) makes that one user unable to log in, with the reason shown by
//! `user list` and logged, while everyone else keeps working. Such a user
//! still receives mail ([`Users::mail_names`]): the line names them, only
//! their password is unusable. Dovecot's passwd-file fails the whole file
//! instead; one damaged line deferring every user's mail and logins is a
//! larger outage than the damage, and the other lines do not depend on it.
//! A file that cannot be read at all is an error for the caller, which
//! must treat it as temporary (SMTP `451 4.3.0`), never as "no users".
//! Comments, blank lines, unknown fields and unreadable lines survive
//! every rewrite byte for byte.
//!
//! Every change is a read-modify-write under an exclusive `flock` on
//! `<file>.lock` (a separate file, so the rename does not drop the lock),
//! written to a temporary file, fsynced and renamed into place.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::UserName;
use super::hash::{HashError, PasswordHash, Secret};
use crate::error::{ExitStatus, io_exit_code, sysexits};
use crate::store::durable;

const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// A users file larger than this is refused (a million users would fit).
const MAX_USERS_FILE: u64 = 256 * 1024 * 1024;

/// One user's line.
#[derive(Debug, Clone)]
pub struct UserEntry {
    pub name: UserName,
    pub hash: PasswordHash,
    /// Everything after the password field, kept verbatim (may be empty).
    rest: String,
}

impl UserEntry {
    /// Dovecot's extra fields: the eighth field of the line, `key=value`
    /// (or a bare `key`) separated by spaces.
    fn extra_fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.rest
            .splitn(6, ':')
            .nth(5)
            .unwrap_or("")
            .split_whitespace()
            .map(|f| f.split_once('=').unwrap_or((f, "")))
    }

    /// The extra field `key`'s value, if the line has it.
    fn extra(&self, key: &str) -> Option<&str> {
        self.extra_fields().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Dovecot's `nologin`: no login at all, with its `reason=` if given
    /// (`nologin=n` and the like turn it off).
    pub fn nologin(&self) -> Option<String> {
        let value = self.extra("nologin")?;
        if matches!(value, "n" | "no" | "0" | "false") {
            return None;
        }
        Some(match self.extra("reason") {
            Some(r) if !r.is_empty() => format!("nologin ({r})"),
            _ => "nologin".to_owned(),
        })
    }

    /// Dovecot's `allow_nets`: the only networks logins may come from.
    pub fn allow_nets(&self) -> Option<&str> {
        self.extra("allow_nets")
    }

    /// Why this user may not log in from `ip` (`None`: an address not
    /// known), as Dovecot's passwd-file reads the extra fields: `nologin`
    /// refuses every login, `allow_nets=` every address outside those
    /// networks. Mail is still delivered.
    pub fn login_refusal(&self, ip: Option<std::net::IpAddr>) -> Option<String> {
        if let Some(why) = self.nologin() {
            return Some(why);
        }
        let nets = self.allow_nets()?;
        let allowed = ip.is_some_and(|ip| {
            nets.split(',')
                .filter_map(crate::config::smtp::IpNet::parse)
                .any(|net| net.contains(ip))
        });
        (!allowed).then(|| {
            format!(
                "allow_nets={nets} does not include {}",
                ip.map_or("an unknown address".to_owned(), |ip| ip.to_string())
            )
        })
    }
}

#[derive(Debug, Clone)]
enum Line {
    User(UserEntry),
    /// A comment, a blank line, or a line we could not use (kept as is).
    Other(String),
    /// A line that is not UTF-8, kept byte for byte.
    NotUtf8(Vec<u8>),
}

/// The users file, as read.
#[derive(Debug, Clone)]
pub struct Users {
    path: PathBuf,
    lines: Vec<Line>,
}

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("unknown user {0:?}")]
    Unknown(String),
    #[error("user {0:?} already exists")]
    Exists(String),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: the users file is larger than {MAX_USERS_FILE} bytes", path.display())]
    TooBig { path: PathBuf },
    #[error("{}: timed out after {}s waiting for the lock {}.lock (another `ownmail user` is running?)", path.display(), LOCK_TIMEOUT.as_secs(), path.display())]
    LockTimeout { path: PathBuf },
    #[error(transparent)]
    Hash(#[from] HashError),
}

impl ExitStatus for UsersError {
    fn exit_code(&self) -> u8 {
        match self {
            UsersError::Unknown(_) => sysexits::NOUSER,
            UsersError::Exists(_) => sysexits::CANTCREAT,
            UsersError::Io { source, .. } => io_exit_code(source),
            UsersError::TooBig { .. } => sysexits::CONFIG,
            UsersError::LockTimeout { .. } => sysexits::TEMPFAIL,
            UsersError::Hash(_) => sysexits::SOFTWARE,
        }
    }
}

impl Users {
    /// Reads the users file; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<Users, UsersError> {
        let io_err = |source| UsersError::Io {
            path: path.to_owned(),
            source,
        };
        let text = match fs::metadata(path) {
            Ok(m) if m.len() > MAX_USERS_FILE => {
                return Err(UsersError::TooBig {
                    path: path.to_owned(),
                });
            }
            Ok(_) => fs::read(path).map_err(io_err)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(e)),
        };
        Ok(Users::parse_bytes(path, &text))
    }

    /// Like [`Users::parse`], line by line: a line that is not UTF-8 is
    /// kept as it is and names a user who cannot log in.
    pub fn parse_bytes(path: &Path, bytes: &[u8]) -> Users {
        let mut lines = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (line, next) = match memchr::memchr(b'\n', rest) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &[][..]),
            };
            rest = next;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            lines.push(match std::str::from_utf8(line) {
                Ok(text) => parse_line(text),
                Err(_) => {
                    let name = String::from_utf8_lossy(line.split(|&b| b == b':').next().unwrap_or(b""))
                        .into_owned();
                    tracing::error!(
                        users_file = %path.display(),
                        "user {name:?}: the line is not UTF-8; this user cannot log in until it is fixed"
                    );
                    Line::NotUtf8(line.to_vec())
                }
            });
        }
        Users {
            path: path.to_owned(),
            lines,
        }
    }

    pub fn parse(path: &Path, text: &str) -> Users {
        let lines = text.lines().map(parse_line).collect();
        Users {
            path: path.to_owned(),
            lines,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, name: &str) -> Option<&UserEntry> {
        self.entries().find(|e| e.name.as_str() == name)
    }

    pub fn entries(&self) -> impl Iterator<Item = &UserEntry> {
        self.lines.iter().filter_map(|l| match l {
            Line::User(e) => Some(e),
            Line::Other(_) | Line::NotUtf8(_) => None,
        })
    }

    /// Everyone who receives mail: the users who can log in, and those
    /// whose line names them validly but whose password or another field
    /// is unusable (see [`Users::problems`]). A damaged line must not turn
    /// its user's mail into bounces.
    pub fn mail_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.entries().map(|e| e.name.to_string()).collect();
        names.extend(
            self.problems()
                .into_iter()
                .filter(|(name, _)| UserName::new(name).is_ok())
                .map(|(name, _)| name),
        );
        names
    }

    /// Checks a password. An unknown user costs a hash computation too, so
    /// the time taken does not tell whether the user exists.
    pub fn verify(&self, name: &str, password: &Secret) -> bool {
        if let Some(entry) = self.get(name) {
            return entry.hash.verify(password);
        }
        if let Some(why) = self.problem_of(name) {
            tracing::warn!(user = name, users_file = %self.path.display(), "login refused: {why}");
        }
        let _ = dummy_hash().verify(password);
        false
    }

    /// As [`Users::verify`], and then the user's own limits (Dovecot's
    /// `nologin` and `allow_nets`) for a client at `ip`.
    pub fn verify_from(&self, name: &str, password: &Secret, ip: Option<std::net::IpAddr>) -> bool {
        if !self.verify(name, password) {
            return false;
        }
        match self.get(name).and_then(|e| e.login_refusal(ip)) {
            Some(why) => {
                tracing::warn!(user = name, users_file = %self.path.display(), "login refused: {why}");
                false
            }
            None => true,
        }
    }

    /// Adds a user; the name must be new, also ignoring case: mail
    /// addresses are matched without it, so `Alice` and `alice` would
    /// share one mailbox's mail.
    pub fn add(&mut self, name: UserName, hash: PasswordHash) -> Result<(), UsersError> {
        if let Some(e) = self
            .entries()
            .find(|e| e.name.as_str().eq_ignore_ascii_case(name.as_str()))
        {
            return Err(UsersError::Exists(e.name.to_string()));
        }
        self.lines.push(Line::User(UserEntry {
            name,
            hash,
            rest: String::new(),
        }));
        Ok(())
    }

    /// Replaces a user's password, keeping the rest of the line.
    pub fn set_password(&mut self, name: &str, hash: PasswordHash) -> Result<(), UsersError> {
        for line in &mut self.lines {
            if let Line::User(e) = line
                && e.name.as_str() == name
            {
                e.hash = hash;
                return Ok(());
            }
        }
        Err(UsersError::Unknown(name.to_owned()))
    }

    pub fn remove(&mut self, name: &str) -> Result<(), UsersError> {
        let before = self.lines.len();
        self.lines
            .retain(|l| !matches!(l, Line::User(e) if e.name.as_str() == name));
        if self.lines.len() == before {
            Err(UsersError::Unknown(name.to_owned()))
        } else {
            Ok(())
        }
    }

    fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in &self.lines {
            match line {
                Line::Other(text) => out.extend_from_slice(text.as_bytes()),
                Line::NotUtf8(bytes) => out.extend_from_slice(bytes),
                Line::User(e) => {
                    out.extend_from_slice(e.name.as_str().as_bytes());
                    out.push(b':');
                    out.extend_from_slice(e.hash.to_string().as_bytes());
                    if !e.rest.is_empty() {
                        out.push(b':');
                        out.extend_from_slice(e.rest.as_bytes());
                    }
                }
            }
            out.push(b'\n');
        }
        out
    }

    /// Changes the file: takes the lock, reads it afresh, applies `change`,
    /// and writes the result atomically. Nothing is written if `change` fails.
    pub fn update<T>(
        path: &Path,
        change: impl FnOnce(&mut Users) -> Result<T, UsersError>,
    ) -> Result<T, UsersError> {
        let io_err = |source| UsersError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            durable::create_dir_all_durable(dir, 0o755).map_err(io_err)?;
        }
        let _lock = FileLock::acquire(path)?;
        let mut users = Users::load(path)?;
        let result = change(&mut users)?;
        let mode = fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o600);
        durable::replace_file(path, &users.render(), mode).map_err(io_err)?;
        Ok(result)
    }
}

fn parse_line(text: &str) -> Line {
    let trimmed = text.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Line::Other(text.to_owned());
    }
    let mut fields = text.splitn(3, ':');
    let (Some(name), Some(password)) = (fields.next(), fields.next()) else {
        tracing::warn!("users file: skipping a line with no password field");
        return Line::Other(text.to_owned());
    };
    let Ok(name) = UserName::new(name) else {
        tracing::warn!("users file: skipping invalid user name {name:?}");
        return Line::Other(text.to_owned());
    };
    match PasswordHash::parse(password) {
        Ok(hash) => Line::User(UserEntry {
            name,
            hash,
            rest: fields.next().unwrap_or("").to_owned(),
        }),
        // Kept verbatim for rewrites; `problems` tells the admin why.
        Err(_) => Line::Other(text.to_owned()),
    }
}

impl Users {
    /// Users whose lines could not be used, with the reason: for `user list`
    /// and `check-config`.
    pub fn problems(&self) -> Vec<(String, String)> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Other(text)
                    if !text.trim().is_empty() && !text.trim_start().starts_with('#') =>
                {
                    let mut fields = text.splitn(3, ':');
                    let name = fields.next().unwrap_or("").to_owned();
                    let why = match (UserName::new(&name), fields.next()) {
                        (Err(e), _) => e.to_string(),
                        (Ok(_), None) => "the line has no password field".to_owned(),
                        (Ok(_), Some(pw)) => PasswordHash::parse(pw)
                            .err()
                            .map(|e| e.to_string())
                            .unwrap_or_default(),
                    };
                    Some((name, why))
                }
                Line::NotUtf8(bytes) => {
                    let name = bytes.split(|&b| b == b':').next().unwrap_or(b"");
                    Some((
                        String::from_utf8_lossy(name).into_owned(),
                        "the line is not UTF-8 (the users file is read as UTF-8)".to_owned(),
                    ))
                }
                _ => None,
            })
            .collect()
    }

    /// Why a listed-but-unusable user cannot log in, if so.
    pub fn problem_of(&self, name: &str) -> Option<String> {
        self.problems()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, why)| why)
    }
}

/// A fixed hash to spend the same time on for unknown users.
fn dummy_hash() -> &'static PasswordHash {
    static DUMMY: std::sync::OnceLock<PasswordHash> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        PasswordHash::new_argon2id(&Secret::new("ownmail-timing-equaliser".to_owned()))
            .expect("hashing a constant cannot fail")
    })
}

/// An exclusive flock on `<path>.lock`, released when dropped.
struct FileLock {
    _file: File,
}

impl FileLock {
    fn acquire(path: &Path) -> Result<FileLock, UsersError> {
        use std::os::fd::AsRawFd;
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        // As root, a new lock file is given to the owner of its directory,
        // so that the mail user can take the lock next time.
        let file = match durable::create_new_owned(&lock_path, 0o666) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                File::options().write(true).open(&lock_path)
            }
            other => other,
        }
        .map_err(|source| UsersError::Io {
            path: PathBuf::from(&lock_path),
            source,
        })?;
        let deadline = Instant::now() + LOCK_TIMEOUT;
        loop {
            // SAFETY: a valid descriptor owned by `file`.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(FileLock { _file: file });
            }
            if Instant::now() >= deadline {
                return Err(UsersError::LockTimeout {
                    path: path.to_owned(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "{SHA512-CRYPT}$6$PwULo3lXuykNzB63$Xx3hoVc0wde2waoACZBq9rHdPqCAG6CCTDHD0AiBRw04blFcpANfivhXh1Jl9YyIVgcoLEnk/h1AvpXtDCoHe1";

    #[test]
    fn a_dovecot_passwd_file_works_as_it_is() {
        let text = format!(
            "# users\nalice:{SHA}:1000:1000::/home/alice::userdb_mail=maildir:~/Maildir\nbob:{{PLAIN}}secret::::::\n\ncarol:{SHA}\n"
        );
        let users = Users::parse(Path::new("/x/passwd"), &text);
        let names: Vec<_> = users.entries().map(|e| e.name.to_string()).collect();
        assert_eq!(names, vec!["alice", "carol"]);
        assert!(users.verify("alice", &Secret::new("secret".into())));
        assert!(!users.verify("alice", &Secret::new("wrong".into())));
        assert!(
            !users.verify("bob", &Secret::new("secret".into())),
            "{{PLAIN}} must be refused"
        );
        assert!(!users.verify("nobody", &Secret::new("secret".into())));
        assert!(users.problem_of("bob").unwrap().contains("PLAIN"));
        // Comments, extra fields and refused lines survive a rewrite untouched.
        assert_eq!(users.render(), text.as_bytes());
        assert_eq!(users.mail_names(), vec!["alice", "carol", "bob"]);
    }

    /// Regression: one Latin-1 byte made the whole file unreadable, and
    /// with it every user unknown (550, bounces, lost mail). Now only that
    /// line's user cannot log in; they still receive mail, everyone else
    /// is untouched, and a rewrite keeps the line byte for byte.
    #[test]
    fn a_line_that_is_not_utf8_spoils_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        let carol = b"carol:{PLAIN}x:1000:1000:J\xfcrgen::\n";
        let mut text = format!("alice:{SHA}\n").into_bytes();
        text.extend_from_slice(carol);
        fs::write(&path, &text).unwrap();
        let users = Users::load(&path).unwrap();
        assert!(users.verify("alice", &Secret::new("secret".into())));
        assert_eq!(users.mail_names(), vec!["alice", "carol"]);
        assert!(users.problem_of("carol").unwrap().contains("UTF-8"));
        let h = PasswordHash::parse(SHA).unwrap();
        Users::update(&path, |u| u.add(UserName::new("dave").unwrap(), h)).unwrap();
        let after = fs::read(&path).unwrap();
        assert!(
            after.starts_with(&text),
            "{}",
            String::from_utf8_lossy(&after)
        );
        assert_eq!(
            Users::load(&path).unwrap().mail_names(),
            vec!["alice", "dave", "carol"]
        );
    }

    /// A file that cannot be read is an error, never an empty list.
    /// Regression: Dovecot's `nologin` and `allow_nets` extra fields were
    /// ignored, so a closed account migrated from Dovecot could log in
    /// again, from anywhere. Mail is still theirs.
    #[test]
    fn nologin_and_allow_nets_are_honoured_as_dovecot_does() {
        let text = format!(
            "gina:{SHA}::::::nologin=y reason=closed\n\
             ivan:{SHA}:1000:1000::/home/ivan::nologin\n\
             hank:{SHA}::::::allow_nets=10.9.9.0/24,2001:db8::/32\n\
             olga:{SHA}::::::nologin=n\n"
        );
        let users = Users::parse(Path::new("passwd"), &text);
        let pw = Secret::new("secret".into());
        let local = Some("127.0.0.1".parse().unwrap());
        for name in ["gina", "ivan", "hank"] {
            assert!(users.verify(name, &pw), "{name}: the password is right");
            assert!(!users.verify_from(name, &pw, local), "{name}");
        }
        assert!(users.verify_from("hank", &pw, Some("10.9.9.7".parse().unwrap())));
        assert!(users.verify_from("hank", &pw, Some("2001:db8::5".parse().unwrap())));
        assert!(
            !users.verify_from("hank", &pw, None),
            "an unknown address is not in the nets"
        );
        assert!(users.verify_from("olga", &pw, local));
        assert_eq!(
            users.get("gina").unwrap().login_refusal(local).unwrap(),
            "nologin (closed)"
        );
        assert_eq!(users.mail_names(), ["gina", "ivan", "hank", "olga"]);
    }

    /// Regression: `Alice` and `alice` could both be added, and SMTP, which
    /// matches addresses without case, gave Alice's mail to alice.
    #[test]
    fn a_name_that_differs_only_in_case_is_taken() {
        let mut users = Users::parse(Path::new("passwd"), &format!("alice:{SHA}\n"));
        let h = || PasswordHash::parse(SHA).unwrap();
        let e = users.add(UserName::new("Alice").unwrap(), h()).unwrap_err();
        assert_eq!(e.to_string(), "user \"alice\" already exists");
        users.add(UserName::new("bob").unwrap(), h()).unwrap();
    }

    #[test]
    fn an_unreadable_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Users::load(dir.path()),
            Err(UsersError::Io { .. })
        ));
        assert_eq!(
            Users::load(&dir.path().join("none"))
                .unwrap()
                .entries()
                .count(),
            0
        );
    }

    #[test]
    fn update_adds_changes_and_removes_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/passwd");
        let h = PasswordHash::parse(SHA).unwrap();
        Users::update(&path, |u| u.add(UserName::new("alice").unwrap(), h.clone())).unwrap();
        Users::update(&path, |u| u.add(UserName::new("bob").unwrap(), h.clone())).unwrap();
        let err =
            Users::update(&path, |u| u.add(UserName::new("bob").unwrap(), h.clone())).unwrap_err();
        assert!(matches!(err, UsersError::Exists(_)));
        let new = PasswordHash::new_argon2id(&Secret::new("n3w".into())).unwrap();
        Users::update(&path, |u| u.set_password("alice", new)).unwrap();
        Users::update(&path, |u| u.remove("bob")).unwrap();
        let users = Users::load(&path).unwrap();
        assert!(users.verify("alice", &Secret::new("n3w".into())));
        assert!(users.get("bob").is_none());
        assert!(matches!(
            Users::update(&path, |u| u.remove("bob")),
            Err(UsersError::Unknown(_))
        ));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn concurrent_updates_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        let h = PasswordHash::parse(SHA).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let (path, h) = (&path, &h);
                s.spawn(move || {
                    for i in 0..10 {
                        let name = UserName::new(&format!("u{t}x{i}")).unwrap();
                        Users::update(path, |u| u.add(name, h.clone())).unwrap();
                    }
                });
            }
        });
        assert_eq!(Users::load(&path).unwrap().entries().count(), 40);
    }
}
