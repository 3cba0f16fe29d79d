//! Mailbox names: the validated newtype that keeps every folder inside the
//! user's Maildir, and the modified UTF-7 codec (RFC 3501 5.1.3) that Dovecot
//! uses for folder names on disk.
//!
//! A [`MailboxName`] is the name a person or an IMAP client sees, UTF-8 with
//! `/` as the hierarchy separator. On disk, Maildir++ flattens the hierarchy
//! into one directory `.A.B` below the root, each component in modified UTF-7.
//! Because `.` separates components on disk, a `.` inside a component is
//! refused (Dovecot's Maildir++ layout refuses it too): `a.b` would otherwise
//! come back as `a/b`.
//!
//! Nothing here touches the file system.

use std::fmt;

/// The longest directory name a folder may have on disk (one path component).
const MAX_DIR_NAME: usize = 255;

/// Why a mailbox name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the mailbox name is empty")]
    Empty,
    #[error("mailbox name {0:?} contains a control character or NUL")]
    Control(String),
    #[error("mailbox name {0:?} has an empty level (leading, trailing or doubled '/')")]
    EmptyLevel(String),
    #[error("mailbox name {0:?} contains '.', which Maildir++ uses to separate levels on disk")]
    Dot(String),
    #[error("mailbox name {0:?} contains the wildcard '{1}'")]
    Wildcard(String, char),
    #[error(
        "mailbox name {0:?} is too long for one directory name on disk ({1} bytes, at most 255)"
    )]
    TooLong(String, usize),
    #[error("folder directory {0:?} is not valid modified UTF-7")]
    BadUtf7(String),
    #[error("folder directory {0:?} is not how its name is spelled on disk")]
    NotCanonical(String),
}

/// A validated mailbox name: UTF-8, `/` separated, canonical `INBOX`.
///
/// Construction is the only place names are checked, so a `MailboxName` can
/// always be turned into a path below the Maildir root and never above it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxName(String);

/// Debug is the quoted name: error messages print `folder "Sent"`.
impl fmt::Debug for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl MailboxName {
    pub const SEPARATOR: char = '/';

    /// The INBOX, stored in the Maildir root.
    pub fn inbox() -> Self {
        MailboxName("INBOX".to_owned())
    }

    /// Validates a name as a person or a client gave it.
    pub fn new(name: &str) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.chars().any(|c| c.is_control()) {
            return Err(NameError::Control(name.to_owned()));
        }
        for c in ['*', '%'] {
            if name.contains(c) {
                return Err(NameError::Wildcard(name.to_owned(), c));
            }
        }
        if name.split(Self::SEPARATOR).any(str::is_empty) {
            return Err(NameError::EmptyLevel(name.to_owned()));
        }
        if name.contains('.') {
            return Err(NameError::Dot(name.to_owned()));
        }
        // RFC 3501 5.1: INBOX is case-insensitive; so is its use as a parent.
        let canonical = match name.split_once(Self::SEPARATOR) {
            None if name.eq_ignore_ascii_case("INBOX") => "INBOX".to_owned(),
            Some((first, rest)) if first.eq_ignore_ascii_case("INBOX") => format!("INBOX/{rest}"),
            _ => name.to_owned(),
        };
        let this = MailboxName(canonical);
        if let Some(dir) = this.dir_name()
            && dir.len() > MAX_DIR_NAME
        {
            return Err(NameError::TooLong(name.to_owned(), dir.len()));
        }
        Ok(this)
    }

    /// Reads a folder directory name from disk (`.Sent`, `.Archive.2024`).
    pub fn from_dir_name(dir: &str) -> Result<Self, NameError> {
        let Some(body) = dir.strip_prefix('.') else {
            return Err(NameError::BadUtf7(dir.to_owned()));
        };
        let mut name = String::with_capacity(body.len());
        for (i, level) in body.split('.').enumerate() {
            if i > 0 {
                name.push(Self::SEPARATOR);
            }
            let decoded = decode_mutf7(level).ok_or_else(|| NameError::BadUtf7(dir.to_owned()))?;
            if decoded.contains(Self::SEPARATOR) {
                return Err(NameError::BadUtf7(dir.to_owned()));
            }
            name.push_str(&decoded);
        }
        let this = Self::new(&name)?;
        // One directory per name: `.INBOX` is not INBOX (that is the root)
        // and `.inbox.Sub` is not `.INBOX.Sub`; such strays are not folders.
        if this.dir_name().as_deref() != Some(dir) {
            return Err(NameError::NotCanonical(dir.to_owned()));
        }
        Ok(this)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_inbox(&self) -> bool {
        self.0 == "INBOX"
    }

    /// The directory below the Maildir root, or `None` for INBOX (the root).
    pub fn dir_name(&self) -> Option<String> {
        if self.is_inbox() {
            return None;
        }
        let mut dir = String::with_capacity(self.0.len() + 1);
        for level in self.0.split(Self::SEPARATOR) {
            dir.push('.');
            dir.push_str(&encode_mutf7(level));
        }
        Some(dir)
    }

    /// The parent's name, if this name has more than one level.
    pub fn parent(&self) -> Option<MailboxName> {
        self.0
            .rsplit_once(Self::SEPARATOR)
            .map(|(p, _)| MailboxName(p.to_owned()))
    }
}

impl fmt::Display for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for MailboxName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        Self::new(s)
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn b64_value(c: u8) -> Option<u32> {
    B64.iter().position(|&b| b == c).map(|p| p as u32)
}

/// Encodes UTF-8 as modified UTF-7 (RFC 3501 5.1.3).
pub fn encode_mutf7(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        out.push('&');
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &b)| acc | (b as u32) << (16 - 8 * i));
            let chars = chunk.len() + 1;
            for i in 0..chars {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out.push('-');
        pending.clear();
    };
    for c in s.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decodes modified UTF-7, strictly: `None` for anything a conforming encoder
/// would not have written (so every name has exactly one spelling on disk).
pub fn decode_mutf7(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if !(0x20..=0x7e).contains(&c) {
            return None;
        }
        if c != b'&' {
            out.push(c as char);
            i += 1;
            continue;
        }
        let end = i + 1 + bytes[i + 1..].iter().position(|&b| b == b'-')?;
        let run = &bytes[i + 1..end];
        i = end + 1;
        if run.is_empty() {
            out.push('&');
            continue;
        }
        let mut bits = 0u32;
        let mut nbits = 0;
        let mut units = Vec::with_capacity(run.len() * 6 / 16);
        for &b in run {
            bits = (bits << 6) | b64_value(b)?;
            nbits += 6;
            if nbits >= 16 {
                nbits -= 16;
                units.push((bits >> nbits) as u16);
                bits &= (1 << nbits) - 1;
            }
        }
        // Leftover bits must be zero padding, fewer than 6 of them.
        if nbits >= 6 || bits != 0 {
            return None;
        }
        let text = String::from_utf16(&units).ok()?;
        // A run that encodes printable ASCII is not canonical.
        if text.chars().any(|c| (' '..='~').contains(&c)) {
            return None;
        }
        // Two adjacent runs are not canonical either: one run would do.
        if bytes.get(i) == Some(&b'&') && bytes.get(i + 1) != Some(&b'-') {
            return None;
        }
        out.push_str(&text);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutf7_round_trips_rfc_examples() {
        // RFC 3501 5.1.3's example, and Dovecot's spelling of common names.
        let cases = [
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("Gelöschte Elemente", "Gel&APY-schte Elemente"),
            ("A&B", "A&-B"),
            ("Отправленные", "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"),
            ("😀", "&2D3eAA-"),
            ("plain", "plain"),
        ];
        for (utf8, wire) in cases {
            assert_eq!(encode_mutf7(utf8), wire, "encoding {utf8}");
            assert_eq!(decode_mutf7(wire).as_deref(), Some(utf8), "decoding {wire}");
        }
    }

    #[test]
    fn mutf7_refuses_non_canonical_and_broken_input() {
        for bad in [
            "&",
            "&AGE-",
            "&U,BTFw",
            "&U,BTF-",
            "a\u{7f}",
            "&2D0-",
            "&U,BTFw-&ZeVnLIqe-",
            "é",
        ] {
            assert_eq!(decode_mutf7(bad), None, "{bad:?} should be refused");
        }
    }

    #[test]
    #[allow(clippy::type_complexity)] // a table of cases
    fn names_that_could_escape_or_confuse_are_refused() {
        let cases: &[(&str, fn(&NameError) -> bool)] = &[
            ("", |e| matches!(e, NameError::Empty)),
            ("..", |e| matches!(e, NameError::Dot(_))),
            ("../etc", |e| matches!(e, NameError::Dot(_))),
            ("a/../../b", |e| matches!(e, NameError::Dot(_))),
            (".hidden", |e| matches!(e, NameError::Dot(_))),
            ("a.b", |e| matches!(e, NameError::Dot(_))),
            ("/abs", |e| matches!(e, NameError::EmptyLevel(_))),
            ("a//b", |e| matches!(e, NameError::EmptyLevel(_))),
            ("a/", |e| matches!(e, NameError::EmptyLevel(_))),
            ("a\0b", |e| matches!(e, NameError::Control(_))),
            ("a\nb", |e| matches!(e, NameError::Control(_))),
            ("a*", |e| matches!(e, NameError::Wildcard(..))),
            ("a%", |e| matches!(e, NameError::Wildcard(..))),
        ];
        for (name, expected) in cases {
            let err = MailboxName::new(name).expect_err(name);
            assert!(expected(&err), "{name:?} gave {err:?}");
        }
        let long = "x".repeat(255);
        assert!(matches!(
            MailboxName::new(&long),
            Err(NameError::TooLong(..))
        ));
        assert!(MailboxName::new(&"x".repeat(254)).is_ok());
    }

    #[test]
    fn names_map_to_maildirpp_directories_and_back() {
        let cases = [
            ("INBOX", None),
            ("inbox", None),
            ("Sent", Some(".Sent")),
            ("Archive/2024", Some(".Archive.2024")),
            ("inbox/Sub", Some(".INBOX.Sub")),
            ("Entwürfe", Some(".Entw&APw-rfe")),
        ];
        for (name, dir) in cases {
            let n = MailboxName::new(name).unwrap();
            assert_eq!(n.dir_name().as_deref(), dir, "{name}");
            if let Some(dir) = dir {
                assert_eq!(MailboxName::from_dir_name(dir).unwrap(), n);
            }
        }
        assert_eq!(MailboxName::new("inbox").unwrap().as_str(), "INBOX");
    }

    #[test]
    fn hostile_directory_names_on_disk_are_refused() {
        // `.INBOX`, `.inbox`, `.inbox.Sub`: found by the mailbox_name fuzz
        // target; they were read back as INBOX, aliasing the root.
        for dir in [
            "..",
            ".",
            "...",
            ".a..b",
            ".&Lw-",
            ".a&AC8-b",
            "Sent",
            ".&-&",
            ".x\u{1}",
            ".INBOX",
            ".inbox",
            ".inbox.Sub",
        ] {
            assert!(MailboxName::from_dir_name(dir).is_err(), "{dir:?}");
        }
    }
}
