//! The plain-leaf fast path of SEARCH's text (`mime::quick_leaf_text`,
//! `index::push_leaf_text`, and `mime::leaf_text` handing mail-parser the
//! Content-* fields alone) against the general path (mail-parser given the
//! leaf's whole header, `mime::leaf_text_whole`) over every corpus message:
//! the same text, byte for byte, for every leaf the fast path takes, and the
//! same text for every message as a whole.

mod support;

use ownmail::imapd::index::push_leaf_text;
use ownmail::message::mime;

/// A message's body text as SEARCH built it before the fast path: every
/// leaf through mail-parser, lower-cased, NUL-separated.
fn general_text(msg: &[u8], part: &mime::Part) -> Vec<u8> {
    let mut text = Vec::new();
    for leaf in mime::leaves(part) {
        if let Some(t) = mime::leaf_text_whole(msg, leaf) {
            text.push(0);
            text.extend_from_slice(t.to_lowercase().as_bytes());
        }
    }
    text
}

#[test]
fn the_plain_leaf_fast_path_gives_mail_parsers_text_for_every_corpus_message() {
    let (mut fast, mut general, mut messages) = (0usize, 0usize, 0usize);
    for path in support::corpus_files() {
        let mut raw = std::fs::read(&path).unwrap();
        // As the benchmark and `convert-mbox` store them: no mbox From line.
        if raw.starts_with(b"From ") {
            let nl = raw
                .iter()
                .position(|&b| b == b'\n')
                .map_or(raw.len(), |i| i + 1);
            raw.drain(..nl);
        }
        // CRLF as IMAP serves them (and the LF file as it is, harder on
        // both parsers).
        for bytes in [mime::to_crlf(&raw), raw.clone()] {
            messages += 1;
            let part = mime::parse(&bytes);
            for leaf in mime::leaves(&part) {
                match mime::quick_leaf_text(&bytes, leaf) {
                    Some(quick) => {
                        fast += 1;
                        let want = mime::leaf_text_whole(&bytes, leaf);
                        assert_eq!(
                            Some(quick.into_owned()),
                            want,
                            "{} part {:?}",
                            path.display(),
                            leaf.body
                        );
                    }
                    None => general += 1,
                }
            }
            let mut text = Vec::new();
            for leaf in mime::leaves(&part) {
                push_leaf_text(&mut text, &bytes, leaf);
            }
            assert!(
                text == general_text(&bytes, &part),
                "{}: the message's text differs",
                path.display()
            );
        }
    }
    // Both paths are exercised: 6,283 leaves of the CRLF copies take the
    // quick path (the LF copies never do: it wants CRLF), the rest not.
    assert_eq!(messages, 2 * 6046);
    assert!(fast > 6000, "{fast} leaves took the fast path");
    assert!(general > 1000, "{general} leaves took the general path");
}
