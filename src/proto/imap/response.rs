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
        out.extend_from_slice(bytes);
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
}
