//! The IMAP server's framer and command parser, fed a client's bytes in
//! chunks of arbitrary sizes: never a panic, never a frame over its bounds,
//! and a command that parses carries the tag the framer saw.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ownmail::proto::imap::{Frame, Framer, Limits, command, framer};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_line: 256,
        max_literal: 512,
        max_literals: 8,
    };
    let mut f = Framer::new(limits);
    // The first byte chooses the chunk size, so splits land everywhere.
    let (size, rest) = match data.split_first() {
        Some((s, r)) => (usize::from(*s).max(1), r),
        None => return,
    };
    for chunk in rest.chunks(size) {
        f.push(chunk);
        while let Some(frame) = f.next_frame() {
            if let Frame::Command(bytes) = frame {
                assert!(bytes.len() <= limits.max_line * (limits.max_literals + 1) + 512);
                match command::parse(&bytes) {
                    Ok(t) => assert_eq!(Some(t.tag), framer::tag_of(&bytes)),
                    Err(e) => assert_eq!(e.tag, framer::tag_of(&bytes)),
                }
            }
        }
    }
});
