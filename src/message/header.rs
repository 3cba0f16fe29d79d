//! Header-section helpers that need no full parse: reading a header section
//! with a bound, finding fields by name, and line-ending conversion for
//! streaming bodies.
//!
//! These work on raw bytes: a message with 8-bit or broken headers is still
//! a message we must not lose.

use std::io::{self, BufRead, Read, Write};

/// RFC 5322 3.6 sets no limit on the header section; we stop looking at
/// headers past this many bytes and treat the rest as body, unexamined.
pub const MAX_HEADER_SECTION: usize = 1024 * 1024;

/// The header section of a message, read from the start of `input` with
/// CRLF turned into LF. `complete` is false when the section was cut at
/// [`MAX_HEADER_SECTION`] or the input ended before a blank line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeaderSection {
    /// The header lines, each ending in LF, without the blank line.
    pub bytes: Vec<u8>,
    /// Whether a blank line ended the section (it is not in `bytes`).
    pub blank_line: bool,
}

impl HeaderSection {
    /// Reads lines until a blank line, the end of input, or the size bound.
    /// `first` is a line already read (without its line end), if any.
    pub fn read(input: &mut impl BufRead, first: Option<Vec<u8>>) -> io::Result<HeaderSection> {
        let mut section = HeaderSection::default();
        let mut line = Vec::new();
        if let Some(first) = first {
            if first.is_empty() {
                section.blank_line = true;
                return Ok(section);
            }
            section.bytes.extend_from_slice(&first);
            section.bytes.push(b'\n');
        }
        while section.bytes.len() < MAX_HEADER_SECTION {
            line.clear();
            let limit = (MAX_HEADER_SECTION - section.bytes.len()) as u64 + 2;
            let n = Read::take(&mut *input, limit).read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            let ended = line.last() == Some(&b'\n');
            strip_line_end(&mut line);
            if line.is_empty() && ended {
                section.blank_line = true;
                break;
            }
            section.bytes.extend_from_slice(&line);
            if ended {
                section.bytes.push(b'\n');
            }
        }
        Ok(section)
    }

    /// The fields of the section: (name, value with folding kept) pairs.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        FieldIter { rest: &self.bytes }
    }

    /// Removes every field with this name (case-insensitive), with its
    /// continuation lines.
    pub fn remove(&mut self, name: &str) {
        let mut kept = Vec::with_capacity(self.bytes.len());
        for raw in (RawFieldIter { rest: &self.bytes }) {
            if !field_name(raw).eq_ignore_ascii_case(name.as_bytes()) {
                kept.extend_from_slice(raw);
            }
        }
        self.bytes = kept;
    }
}

fn strip_line_end(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
}

fn field_name(raw: &[u8]) -> &[u8] {
    let end = memchr::memchr(b':', raw).unwrap_or(0);
    raw[..end].trim_ascii_end()
}

/// Whole fields, continuation lines included, as raw bytes.
struct RawFieldIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for RawFieldIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let mut end = 0;
        loop {
            end = match memchr::memchr(b'\n', &self.rest[end..]) {
                Some(i) => end + i + 1,
                None => self.rest.len(),
            };
            // RFC 5322 2.2.3: a line starting with white space continues the field.
            if end >= self.rest.len() || !matches!(self.rest[end], b' ' | b'\t') {
                break;
            }
        }
        let (field, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(field)
    }
}

struct FieldIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for FieldIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let mut raw = RawFieldIter { rest: self.rest };
        loop {
            let field = raw.next()?;
            self.rest = raw.rest;
            let Some(colon) = memchr::memchr(b':', field) else {
                continue;
            };
            let value = field[colon + 1..].trim_ascii();
            return Some((field[..colon].trim_ascii_end(), value));
        }
    }
}

/// Copies `input` to `out`, turning CRLF into LF and leaving lone CRs alone.
/// Returns the bytes read. Memory stays at one buffer whatever the size.
pub fn copy_crlf_to_lf(input: &mut impl BufRead, out: &mut impl Write) -> io::Result<u64> {
    let mut read = 0u64;
    let mut pending_cr = false;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        let len = chunk.len();
        read += len as u64;
        let mut start = 0;
        if pending_cr {
            if chunk[0] != b'\n' {
                out.write_all(b"\r")?;
            }
            pending_cr = false;
        }
        for i in memchr::memchr_iter(b'\r', chunk) {
            if i + 1 == len {
                out.write_all(&chunk[start..i])?;
                start = len;
                pending_cr = true;
            } else if chunk[i + 1] == b'\n' {
                out.write_all(&chunk[start..i])?;
                start = i + 1;
            }
        }
        out.write_all(&chunk[start..])?;
        input.consume(len);
    }
    if pending_cr {
        out.write_all(b"\r")?;
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_header_section_and_stops_at_the_blank_line() {
        let mut input: &[u8] = b"A: 1\r\nB: two\r\n  folded\r\n\r\nbody\r\n";
        let h = HeaderSection::read(&mut input, None).unwrap();
        assert_eq!(h.bytes, b"A: 1\nB: two\n  folded\n");
        assert!(h.blank_line);
        assert_eq!(input, b"body\r\n");
        let fields: Vec<_> = h.fields().collect();
        assert_eq!(
            fields,
            vec![(&b"A"[..], &b"1"[..]), (&b"B"[..], &b"two\n  folded"[..])]
        );
    }

    #[test]
    fn a_header_only_message_and_an_empty_one() {
        let mut input: &[u8] = b"Subject: x";
        let h = HeaderSection::read(&mut input, None).unwrap();
        assert_eq!(
            (h.bytes.as_slice(), h.blank_line),
            (&b"Subject: x"[..], false)
        );
        let mut input: &[u8] = b"";
        assert_eq!(
            HeaderSection::read(&mut input, None).unwrap(),
            HeaderSection::default()
        );
    }

    #[test]
    fn the_section_is_bounded() {
        let huge = vec![b'x'; MAX_HEADER_SECTION * 2];
        let mut input: &[u8] = &huge;
        let h = HeaderSection::read(&mut input, None).unwrap();
        assert!(h.bytes.len() <= MAX_HEADER_SECTION + 2 && !h.blank_line);
        assert_eq!(
            h.bytes.len() + input.len(),
            huge.len(),
            "nothing is lost, the rest stays to be copied"
        );
    }

    #[test]
    fn remove_takes_continuation_lines_with_it() {
        let mut input: &[u8] = b"Return-Path: <a>\n\t<b>\nX: 1\nreturn-path: <c>\n\n";
        let mut h = HeaderSection::read(&mut input, None).unwrap();
        h.remove("Return-Path");
        assert_eq!(h.bytes, b"X: 1\n");
    }

    #[test]
    fn crlf_becomes_lf_across_buffer_boundaries() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"a\r\nb\r\n", b"a\nb\n"),
            (b"lone\rcr\r", b"lone\rcr\r"),
            (b"\r\r\n\n", b"\r\n\n"),
            (b"bin\0\xff\r\n", b"bin\0\xff\n"),
        ];
        for (input, expected) in cases {
            for cap in [1, 2, 3, 64] {
                let mut reader = io::BufReader::with_capacity(cap, *input);
                let mut out = Vec::new();
                assert_eq!(
                    copy_crlf_to_lf(&mut reader, &mut out).unwrap(),
                    input.len() as u64
                );
                assert_eq!(&out, expected, "{input:?} with buffer {cap}");
            }
        }
    }
}
