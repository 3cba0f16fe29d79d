//! The status headers mbox readers wrote into messages, turned into
//! Maildir flags, and removed from the message unless asked to keep them.
//!
//! | header              | written by                  | becomes                                  |
//! | ------------------- | --------------------------- | ---------------------------------------- |
//! | `Status:`           | mutt, pine, UW-IMAP, Dovecot | `R` -> `S`; `O` or `R` -> `cur/`        |
//! | `X-Status:`         | the same                    | `A` -> `R`, `F` -> `F`, `D` -> `T`, `T` -> `D` |
//! | `X-Mozilla-Status:` | Thunderbird (hex bits)      | 0x1 read -> `S`, 0x2 replied -> `R`, 0x4 marked -> `F`, 0x8 expunged -> `T`, 0x1000 forwarded -> `P` |
//! | `X-Keywords:`       | Dovecot, mutt               | keywords                                 |
//! | `X-Mozilla-Keys:`   | Thunderbird                 | keywords                                 |
//!
//! Removed unless `keep_headers`: those, `X-Mozilla-Status2:`, and UW-IMAP's
//! `X-IMAP:`, `X-IMAPbase:`, `X-UID:` (they describe the mbox, and would be
//! wrong or misleading in a Maildir). A keyword that cannot be stored (not
//! an IMAP atom, or a folder that already has 26) keeps its header in the
//! message, so nothing is lost.
//!
//! UW-IMAP (and Dovecot's mbox driver) put a pseudo-message first in each
//! file, "DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA", holding the
//! folder's UIDVALIDITY; it is not mail and is skipped.

use crate::message::mbox::{fields, raw_fields};
use crate::store::Flags;
use crate::store::flags::is_keyword;

/// Headers removed from converted messages unless `--keep-headers`.
pub const STATUS_HEADERS: [&str; 9] = [
    "Status",
    "X-Status",
    "X-Mozilla-Status",
    "X-Mozilla-Status2",
    "X-Keywords",
    "X-Mozilla-Keys",
    "X-IMAP",
    "X-IMAPbase",
    "X-UID",
];

const KEYWORD_HEADERS: [&str; 2] = ["X-Keywords", "X-Mozilla-Keys"];

/// The subject of UW-IMAP's folder-data pseudo-message.
pub const PSEUDO_SUBJECT: &[u8] = b"DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA";

/// What a message's status headers say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// System flags (keywords are in `keywords`, by name).
    pub flags: Flags,
    /// `Status: O` or `R`: someone has seen the folder since it arrived.
    pub old: bool,
    /// Keyword names, in order, without duplicates.
    pub keywords: Vec<String>,
    /// Words of the keyword headers that are not valid keywords.
    pub bad_keywords: Vec<String>,
    /// UW-IMAP's folder-data pseudo-message.
    pub pseudo: bool,
}

/// Reads the status headers of a header section.
pub fn read(header: &[u8]) -> Status {
    let mut st = Status::default();
    let (mut subject_is_pseudo, mut has_x_imap) = (false, false);
    for (name, value) in fields(header) {
        let value = value.trim_ascii();
        if name.eq_ignore_ascii_case(b"Status") {
            for &c in value {
                match c {
                    b'R' => {
                        st.flags.set_system(b'S');
                        st.old = true;
                    }
                    b'O' => st.old = true,
                    _ => {}
                }
            }
        } else if name.eq_ignore_ascii_case(b"X-Status") {
            for &c in value {
                match c {
                    b'A' => st.flags.set_system(b'R'),
                    b'F' => st.flags.set_system(b'F'),
                    b'D' => st.flags.set_system(b'T'),
                    b'T' => st.flags.set_system(b'D'),
                    _ => {}
                }
            }
        } else if name.eq_ignore_ascii_case(b"X-Mozilla-Status") {
            // Thunderbird's nsMsgMessageFlags, four hex digits.
            let bits = std::str::from_utf8(value)
                .ok()
                .and_then(|v| u32::from_str_radix(v, 16).ok())
                .unwrap_or(0);
            for (bit, letter) in [
                (0x1, b'S'),
                (0x2, b'R'),
                (0x4, b'F'),
                (0x8, b'T'),
                (0x1000, b'P'),
            ] {
                if bits & bit != 0 {
                    st.flags.set_system(letter);
                }
            }
        } else if KEYWORD_HEADERS
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
        {
            for word in value.split(|&b| b == b' ' || b == b',' || b.is_ascii_whitespace()) {
                if word.is_empty() {
                    continue;
                }
                let word = String::from_utf8_lossy(word).into_owned();
                if !is_keyword(&word) {
                    st.bad_keywords.push(word);
                } else if !st.keywords.iter().any(|k| k.eq_ignore_ascii_case(&word)) {
                    st.keywords.push(word);
                }
            }
        } else if name.eq_ignore_ascii_case(b"Subject") {
            subject_is_pseudo = value.starts_with(PSEUDO_SUBJECT);
        } else if name.eq_ignore_ascii_case(b"X-IMAP") || name.eq_ignore_ascii_case(b"X-IMAPbase") {
            has_x_imap = true;
        }
    }
    st.pseudo = subject_is_pseudo && has_x_imap;
    st
}

/// Appends the header section to `out` without the status headers; the
/// keyword headers are kept when `keep_keywords` (a keyword could not be
/// stored). Lines that are not fields are kept as they are.
pub fn strip_into(header: &[u8], keep_keywords: bool, out: &mut Vec<u8>) {
    for raw in raw_fields(header) {
        let name = match memchr::memchr(b':', raw) {
            Some(colon) => raw[..colon].trim_ascii_end(),
            None => {
                out.extend_from_slice(raw);
                continue;
            }
        };
        let is = |list: &[&str]| list.iter().any(|h| name.eq_ignore_ascii_case(h.as_bytes()));
        if is(&STATUS_HEADERS) && !(keep_keywords && is(&KEYWORD_HEADERS)) {
            continue;
        }
        out.extend_from_slice(raw);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_header_maps_to_flags() {
        // (header section, info letters, in cur/ because of Status: O/R)
        let cases: &[(&str, &str, bool)] = &[
            ("", "", false),
            ("Status: O\n", "", true),
            ("Status: R\n", "S", true),
            ("Status: RO\n", "S", true),
            ("Status: U\n", "", false),
            ("X-Status: A\n", "R", false),
            ("X-Status: F\n", "F", false),
            ("X-Status: D\n", "T", false),
            ("X-Status: T\n", "D", false),
            ("X-Status: AFDT\n", "DFRT", false),
            ("X-Status: \n", "", false),
            ("Status: RO\nX-Status: AF\n", "FRS", true),
            ("X-Mozilla-Status: 0001\n", "S", false),
            ("X-Mozilla-Status: 0002\n", "R", false),
            ("X-Mozilla-Status: 0004\n", "F", false),
            ("X-Mozilla-Status: 0008\n", "T", false),
            ("X-Mozilla-Status: 1000\n", "P", false),
            ("X-Mozilla-Status: 000f\n", "FRST", false),
            ("X-Mozilla-Status: 0000\n", "", false),
            ("X-Mozilla-Status: zz\n", "", false),
            // Header names are case-insensitive; the letters are not (as Dovecot reads them).
            ("status: r\n", "", false),
            ("status: R\n", "S", true),
            ("STATUS: R\r\n", "S", true),
            (
                "Status: RO\nX-Status: T\nX-Mozilla-Status: 0004\n",
                "DFS",
                true,
            ),
        ];
        for (header, info, old) in cases {
            let st = read(header.as_bytes());
            assert_eq!(
                (st.flags.to_string().as_str(), st.old),
                (*info, *old),
                "{header:?}"
            );
            assert!(!st.pseudo);
        }
    }

    #[test]
    fn keywords_come_from_both_headers_once_each() {
        let st = read(b"X-Keywords: $Label1 work, Work\nX-Mozilla-Keys: nonjunk $label1  \nX-Keywords: bad\"word ok\n");
        assert_eq!(st.keywords, vec!["$Label1", "work", "nonjunk", "ok"]);
        assert_eq!(st.bad_keywords, vec!["bad\"word"]);
        assert!(read(b"X-Keywords: \n").keywords.is_empty());
    }

    #[test]
    fn status_headers_are_removed_with_their_continuations() {
        let header = b"Return-Path: <a@b>\nStatus: RO\nX-Status: A\nX-Keywords: a\n b\nX-UID: 4\nX-IMAPbase: 1 2\nX-IMAP: 1 2\nX-Mozilla-Status: 0001\nX-Mozilla-Status2: 00000000\nX-Mozilla-Keys: \nSubject: s\r\nStatusy: kept\n";
        let mut out = Vec::new();
        strip_into(header, false, &mut out);
        assert_eq!(out, b"Return-Path: <a@b>\nSubject: s\r\nStatusy: kept\n");
        let mut out = Vec::new();
        strip_into(header, true, &mut out);
        assert_eq!(
            out,
            b"Return-Path: <a@b>\nX-Keywords: a\n b\nX-Mozilla-Keys: \nSubject: s\r\nStatusy: kept\n"
        );
    }

    #[test]
    fn the_uw_imap_pseudo_message_is_recognised() {
        let pseudo = b"Date: Mon, 1 Jan 2024 00:00:00 +0000\nFrom: Mail System Internal Data <MAILER-DAEMON@x>\nSubject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\nX-IMAP: 1704067200 0000000002\nStatus: RO\n";
        assert!(read(pseudo).pseudo);
        // The subject alone (someone forwarding it) is not enough.
        assert!(!read(b"Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n").pseudo);
        assert!(read(b"Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\r\nX-IMAPbase: 1 2\r\n").pseudo);
    }
}
