//! Which message a Maildir file came from: every converted message gets a
//! file name made from where it was in its mbox and what it held, so a
//! later run can tell what is already there by listing the folder.
//!
//! The base name is `<secs>.O<offset>H<digest>.<host>`: `secs` the
//! message's date (so Dovecot, which numbers new files in name order, keeps
//! them in date order), `offset` the byte offset of its From_ line in the
//! mbox (12 hex digits or more), `digest` the first 128 bits of SHA-256
//! over the From_ line, a line feed and the message as read (unquoted,
//! before any header is removed). Dovecot treats the base as opaque;
//! renaming into `cur/` and adding flags keep it.
//!
//! The key (offset, digest) ignores `secs` and the host: a file mtime that
//! moved or a new host name does not make an old message look new.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use crate::store::delivery::host;
use crate::store::{Folder, StoreError};

/// A message's identity: where it was and what it held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub offset: u64,
    pub digest: u128,
}

/// The digest of a message, fed as it is read.
pub struct MessageDigest(Sha256);

impl MessageDigest {
    pub fn new(from_line: &[u8]) -> MessageDigest {
        let mut h = Sha256::new();
        h.update(from_line);
        h.update(b"\n");
        MessageDigest(h)
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> u128 {
        let out = self.0.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&out[..16]);
        u128::from_be_bytes(first)
    }
}

/// The base file name for a message.
pub fn base_name(secs: i64, key: Key) -> String {
    format!(
        "{}.O{:012x}H{:032x}.{}",
        secs.max(0),
        key.offset,
        key.digest,
        host()
    )
}

/// The key in a Maildir file name, if the name is one of ours.
pub fn parse_key(file_name: &str) -> Option<Key> {
    let part = file_name.split('.').nth(1)?;
    let rest = part.strip_prefix('O')?;
    let (offset, digest) = rest.split_once('H')?;
    if offset.len() < 12 || offset.len() > 16 || digest.len() != 32 {
        return None;
    }
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    if !hex(offset) || !hex(digest) {
        return None;
    }
    Some(Key {
        offset: u64::from_str_radix(offset, 16).ok()?,
        digest: u128::from_str_radix(digest, 16).ok()?,
    })
}

/// The keys of the messages a folder already holds from earlier runs: 24
/// bytes per such message (a 2 GB mbox of typical mail, some 400,000
/// messages, is under 10 MB). Files not named by us are not counted.
#[derive(Debug, Default)]
pub struct Index {
    keys: HashSet<Key>,
    offsets: HashSet<u64>,
}

impl Index {
    pub fn load(folder: &Folder) -> Result<Index, StoreError> {
        let mut index = Index::default();
        folder.scan_names(|name| {
            if let Some(key) = parse_key(name) {
                index.keys.insert(key);
                index.offsets.insert(key.offset);
            }
        })?;
        Ok(index)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether some message from this offset (of any source) is there: then
    /// the digest decides.
    pub fn has_offset(&self, offset: u64) -> bool {
        self.offsets.contains(&offset)
    }

    pub fn contains(&self, key: &Key) -> bool {
        self.keys.contains(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_key_through_flags_and_renames() {
        let key = Key {
            offset: 0x1234,
            digest: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
        };
        let base = base_name(1_030_019_783, key);
        assert!(base.starts_with("1030019783.O000000001234H0123456789abcdef0011223344556677."));
        for name in [
            base.clone(),
            format!("{base},S=12,W=13"),
            format!("{base},S=12,W=13:2,RS"),
        ] {
            assert_eq!(parse_key(&name), Some(key), "{name}");
        }
        assert_eq!(parse_key(&base_name(-5, key)).unwrap(), key);
        assert!(base_name(-5, key).starts_with("0.O"));
    }

    #[test]
    fn other_names_are_not_ours() {
        for name in [
            "1700000000.M12P34Q5.host,S=1,W=2",
            "1.O12H34.host",
            "1.O000000001234H0123456789ABCDEF0011223344556677.host",
            "1.O00000000123xH0123456789abcdef0011223344556677.host",
            "1.P000000001234H0123456789abcdef0011223344556677.host",
            "garbage",
            "",
        ] {
            assert_eq!(parse_key(name), None, "{name}");
        }
    }

    #[test]
    fn digests_differ_with_the_from_line_and_the_content() {
        let d = |from: &[u8], parts: &[&[u8]]| {
            let mut h = MessageDigest::new(from);
            for p in parts {
                h.update(p);
            }
            h.finish()
        };
        let a = d(
            b"From a Thu Aug 22 12:36:23 2002",
            &[b"A: 1\n", b"\n", b"x"],
        );
        assert_eq!(a, d(b"From a Thu Aug 22 12:36:23 2002", &[b"A: 1\n\nx"]));
        assert_ne!(a, d(b"From b Thu Aug 22 12:36:23 2002", &[b"A: 1\n\nx"]));
        assert_ne!(a, d(b"From a Thu Aug 22 12:36:23 2002", &[b"A: 1\n\ny"]));
    }
}
