//! Users: the passwd-file (Dovecot's format, so an existing Dovecot file
//! works as it is) and the password hashes in it.
//!
//! - [`passwd`]: reading and rewriting the file, atomically and under a lock.
//! - [`hash`]: `{ARGON2ID}` (what we write), `{SHA512-CRYPT}`, `{BLF-CRYPT}`;
//!   `{PLAIN}` and unknown schemes are refused. Verification is constant-time.
//!
//! A [`UserName`] is validated once, at the edge: it becomes a directory
//! name (`<data_dir>/mail/<user>/`), so it can never contain `/` or be `..`.

pub mod hash;
pub mod passwd;
pub mod throttle;

use std::fmt;

pub use hash::{HashError, PasswordHash, Secret};
pub use passwd::{UserEntry, Users, UsersError};

/// A validated user name: `[A-Za-z0-9]` first, then letters, digits and
/// `._+-@`, at most 64 bytes. Safe as a directory name and a passwd field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a valid user name (letters, digits and ._+-@, starting with a letter or digit, at most 64)"
)]
pub struct BadUserName(pub String);

impl UserName {
    pub fn new(name: &str) -> Result<UserName, BadUserName> {
        let mut bytes = name.bytes();
        let ok = name.len() <= 64
            && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
            && bytes.all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-' | b'@')
            })
            && !name.contains("..");
        if ok {
            Ok(UserName(name.to_owned()))
        } else {
            Err(BadUserName(name.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for UserName {
    type Err = BadUserName;
    fn from_str(s: &str) -> Result<Self, BadUserName> {
        UserName::new(s)
    }
}

/// The folders a new account gets, besides INBOX (RFC 6154 special uses).
pub const DEFAULT_FOLDERS: [&str; 5] = ["Drafts", "Sent", "Junk", "Trash", "Archive"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_that_could_escape_are_refused() {
        for ok in ["alice", "bob.smith", "carol@example.org", "d_e-f+g", "0day"] {
            assert!(UserName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "..",
            ".alice",
            "a/b",
            "a:b",
            "a b",
            "a..b",
            "-x",
            "é",
            "a\n",
            &"x".repeat(65),
        ] {
            assert!(UserName::new(bad).is_err(), "{bad:?}");
        }
    }
}
