//! mbox files from disk: never a panic, in any variant, and a message
//! parses the same way whatever the read sizes (convert-mbox's idempotency
//! rests on it).
#![no_main]
use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;
use ownmail::message::mbox::{Format, MboxReader, Source};

/// A source that hands out at most `chunk` bytes per read.
struct Chunked<'a> {
    data: &'a [u8],
    pos: usize,
    chunk: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.chunk).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Source for Chunked<'_> {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        io::Cursor::new(self.data).read_at(buf, offset)
    }
}

fn read_all(data: &[u8], format: Option<Format>, chunk: usize) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let mut r = MboxReader::new(Chunked { data, pos: 0, chunk }, format);
    let mut out = Vec::new();
    loop {
        match r.next_message() {
            Ok(Some(head)) => {
                let mut content = head.header.clone();
                content.extend_from_slice(head.blank);
                while let Some(b) = r.read_body().map_err(|e| e.to_string())? {
                    content.extend_from_slice(b);
                }
                out.push((head.offset, content));
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    for format in [None, Some(Format::Mboxo), Some(Format::Mboxrd), Some(Format::Mboxcl), Some(Format::Mboxcl2)] {
        let whole = read_all(data, format, usize::MAX);
        assert_eq!(whole, read_all(data, format, 7), "{format:?}");
        if let Ok(messages) = whole {
            let total: usize = messages.iter().map(|(_, c)| c.len()).sum();
            assert!(total <= data.len());
        }
    }
});
