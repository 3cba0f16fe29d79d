//! Writing the server's side of RFC 3501 9: strings as atoms, quoted
//! strings or literals, whichever the bytes allow; mailbox names in
//! modified UTF-7 (RFC 3501 5.1.3).

use crate::store::name::encode_mutf7;

/// Appends `bytes` as an IMAP string: quoted when that is possible, else a
/// literal.
pub fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    let quotable = bytes.len() < 1024
        && bytes
            .iter()
            .all(|&b| b != b'\r' && b != b'\n' && b != 0 && b < 0x80);
    if quotable {
        out.push(b'"');
        for &b in bytes {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{{{}}}\r\n", bytes.len()).as_bytes());
        // RFC 3501 4.3: CHAR8 excludes NUL; 0x80 in its place, as Dovecot.
        out.extend(bytes.iter().map(|&b| if b == 0 { 0x80 } else { b }));
    }
}

/// `NIL` or a string.
pub fn nstring(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => string(out, b),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// A mailbox name as the wire carries it: modified UTF-7, quoted.
pub fn mailbox(out: &mut Vec<u8>, name: &str) {
    string(out, encode_mutf7(name).as_bytes());
}

/// A sequence set (RFC 3501 9, `sequence-set`) from numbers in the order
/// given, runs of consecutive ascending numbers joined: `1:3,5`. The order
/// is kept, so two sets built from paired lists stay paired (COPYUID,
/// RFC 4315 3).
pub fn sequence_set(nums: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut end = start;
        while i + 1 < nums.len() && nums[i + 1] == end + 1 {
            i += 1;
            end = nums[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_or_literal() {
        let cases: &[(&[u8], &str)] = &[
            (b"abc", "\"abc\""),
            (b"a\"b\\", "\"a\\\"b\\\\\""),
            (b"", "\"\""),
            (b"a\r\nb", "{4}\r\na\r\nb"),
            ("é".as_bytes(), "{2}\r\né"),
        ];
        for (input, want) in cases {
            let mut out = Vec::new();
            string(&mut out, input);
            assert_eq!(String::from_utf8(out).unwrap(), *want);
        }
        let mut out = Vec::new();
        mailbox(&mut out, "Entwürfe");
        assert_eq!(out, b"\"Entw&APw-rfe\"");
    }

    #[test]
    fn sequence_sets_join_runs_and_keep_the_order() {
        assert_eq!(sequence_set(&[1, 2, 3, 5, 8, 9]), "1:3,5,8:9");
        assert_eq!(sequence_set(&[9, 4, 5, 1]), "9,4:5,1");
        assert_eq!(sequence_set(&[7]), "7");
        assert_eq!(sequence_set(&[]), "");
    }
}
