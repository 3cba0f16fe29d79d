//! Seeded random inputs against every parser that reads bytes from disk or
//! from a sender: no panic on any input, and the invariants that keep data
//! safe (a folder name never escapes, encodings round-trip, nothing is
//! lost). The same entry points have cargo-fuzz targets in `fuzz/` for long
//! runs; these run in every `cargo test`.

mod support;
use std::path::Path;

use ownmail::store::name::{decode_mutf7, encode_mutf7};
use ownmail::store::{Flags, Keywords, MailboxName};
use support::Rng;

const ROUNDS: usize = 20_000;

/// Bytes biased towards the characters each parser cares about.
fn random_bytes(rng: &mut Rng, alphabet: &[u8], max_len: u64) -> Vec<u8> {
    let len = rng.below(max_len + 1) as usize;
    (0..len)
        .map(|_| {
            if rng.below(4) == 0 {
                rng.below(256) as u8
            } else {
                alphabet[rng.below(alphabet.len() as u64) as usize]
            }
        })
        .collect()
}

fn random_unicode(rng: &mut Rng, max_len: u64) -> String {
    let pool = [
        'a', 'Z', '&', '-', ',', ' ', '~', 'é', 'ü', '台', '日', '😀', 'Ж', '/', '.', '\u{7f}', '+',
    ];
    (0..rng.below(max_len + 1))
        .map(|_| pool[rng.below(pool.len() as u64) as usize])
        .collect()
}

#[test]
fn modified_utf7_round_trips_and_decoding_is_canonical() {
    let mut rng = Rng::from_time();
    for _ in 0..ROUNDS {
        let s = random_unicode(&mut rng, 12);
        assert_eq!(
            decode_mutf7(&encode_mutf7(&s)).as_deref(),
            Some(s.as_str()),
            "{s:?}"
        );

        let raw = random_bytes(&mut rng, b"&-,+AZaz09BTFwU", 16);
        if let Ok(text) = std::str::from_utf8(&raw)
            && let Some(decoded) = decode_mutf7(text)
        {
            // One spelling per name: whatever decodes re-encodes to itself.
            assert_eq!(encode_mutf7(&decoded), text, "{text:?} is not canonical");
        }
    }
}

#[test]
fn no_mailbox_name_leaves_the_maildir() {
    let mut rng = Rng::from_time();
    for _ in 0..ROUNDS {
        let s = random_unicode(&mut rng, 10);
        if let Ok(name) = MailboxName::new(&s)
            && let Some(dir) = name.dir_name()
        {
            assert!(
                dir.starts_with('.') && !dir.contains('/') && dir != "." && dir != "..",
                "{s:?} -> {dir:?}"
            );
            assert!(!dir.contains(".."), "{s:?} -> {dir:?}");
            assert_eq!(MailboxName::from_dir_name(&dir).unwrap(), name);
        }
        let raw = random_bytes(&mut rng, b"..&-AC8/Lw,x", 12);
        if let Ok(dir) = std::str::from_utf8(&raw)
            && let Ok(name) = MailboxName::from_dir_name(dir)
        {
            assert_eq!(
                name.dir_name().as_deref(),
                Some(dir),
                "on-disk names are canonical"
            );
        }
    }
}

#[test]
fn header_sections_lose_no_bytes() {
    use ownmail::message::header::HeaderSection;
    let mut rng = Rng::from_time();
    for _ in 0..ROUNDS {
        let raw = random_bytes(&mut rng, b"ab: \r\n\t-", 200);
        let mut input: &[u8] = &raw;
        let mut h = HeaderSection::read(&mut input, None).unwrap();
        // Nothing is lost or invented: what was consumed, with CRLF folded
        // to LF, is exactly the section's lines plus the blank line.
        let consumed = &raw[..raw.len() - input.len()];
        let mut folded = Vec::with_capacity(consumed.len());
        for (i, &b) in consumed.iter().enumerate() {
            if !(b == b'\r' && consumed.get(i + 1) == Some(&b'\n')) {
                folded.push(b);
            }
        }
        let mut rebuilt = h.bytes.clone();
        if h.blank_line {
            rebuilt.push(b'\n');
        }
        assert_eq!(rebuilt, folded, "{raw:?}");
        let _ = h.fields().count();
        let before = h.bytes.len();
        h.remove("ab");
        assert!(h.bytes.len() <= before);
    }
}

#[test]
fn config_parsing_never_panics() {
    let valid = "hostname: mail.example.org\ndomains: [example.org]\ndata_dir: data\ntls:\n  cert: c.pem\n  key: k.pem\n";
    let mut rng = Rng::from_time();
    for _ in 0..ROUNDS / 4 {
        let mut text = valid.as_bytes().to_vec();
        for _ in 0..1 + rng.below(6) {
            let at = rng.below(text.len() as u64 + 1) as usize;
            match rng.below(3) {
                0 if at < text.len() => {
                    text.remove(at);
                }
                _ => {
                    const YAML: &[u8] = b"[]{}:&*!|>-'\" \n\t#a%@";
                    text.insert(at, YAML[rng.below(YAML.len() as u64) as usize]);
                }
            }
        }
        let text = String::from_utf8_lossy(&text);
        let _ = ownmail::config::Config::parse(&text, Path::new("/x/ownmail.yaml"));
    }
}

#[test]
fn users_and_keywords_files_never_panic() {
    let mut rng = Rng::from_time();
    for _ in 0..ROUNDS {
        let raw = random_bytes(&mut rng, b"alice:{SHA512-CRYPT}$6$x\n# 0 $Junk", 120);
        let text = String::from_utf8_lossy(&raw);
        let users = ownmail::auth::Users::parse(Path::new("/x/passwd"), &text);
        for e in users.entries() {
            assert!(ownmail::auth::UserName::new(e.name.as_str()).is_ok());
        }
        let _ = users.problems();
        let kw = Keywords::parse(&text);
        for (i, name) in kw.iter() {
            assert!(
                i < 26 && ownmail::store::flags::is_keyword(name),
                "{name:?}"
            );
        }
    }
}

#[test]
fn flags_info_is_canonical_after_one_round() {
    let mut rng = Rng::from_time();
    for _ in 0..ROUNDS {
        let raw = random_bytes(&mut rng, b"DFPRSTabcz,:2", 12);
        let f = Flags::from_info(&String::from_utf8_lossy(&raw));
        let info = f.to_string();
        assert_eq!(Flags::from_info(&info), f);
        let mut sorted: Vec<char> = info.chars().collect();
        sorted.sort_unstable();
        assert_eq!(
            sorted.into_iter().collect::<String>(),
            info,
            "the spec's ASCII order"
        );
    }
}

/// `tunnel`'s inputs (as fuzz/fuzz_targets/tunnel_input.rs): greetings from
/// the network, forward and HOST:PORT specifications. A forward always
/// listens on loopback and its ssh spelling reads back as itself.
#[test]
fn tunnel_forwards_stay_on_loopback_and_round_trip() {
    use ownmail::tunnel::forward::{Forward, Service};
    let mut rng = Rng::from_time();
    let mut parsed = 0;
    for _ in 0..ROUNDS {
        // Half the time a well-formed spec with one byte changed.
        let raw = if rng.below(2) == 0 {
            let parts = [
                "127.0.0.1",
                "[::1]",
                "localhost",
                "10.0.0.1",
                "mail.lan",
                "[::]",
            ];
            let pick = |rng: &mut Rng| parts[rng.below(parts.len() as u64) as usize];
            let port = |rng: &mut Rng| (rng.below(70_000)).to_string();
            let mut spec = match rng.below(3) {
                0 => format!("{}:{}", port(&mut rng), port(&mut rng)),
                1 => format!("{}:{}:{}", pick(&mut rng), port(&mut rng), port(&mut rng)),
                _ => format!(
                    "{}:{}:{}:{}",
                    pick(&mut rng),
                    port(&mut rng),
                    pick(&mut rng),
                    port(&mut rng)
                ),
            }
            .into_bytes();
            if rng.below(2) == 0 {
                let at = rng.below(spec.len() as u64) as usize;
                spec[at] = b"0:[]x.-"[rng.below(7) as usize];
            }
            spec
        } else {
            random_bytes(&mut rng, b"0123456789:.[]127loca:hst-x", 30)
        };
        for service in [Service::Smtp, Service::Imap] {
            let _ = service.greeting_ok(&raw);
        }
        let text = String::from_utf8_lossy(&raw);
        let _ = ownmail::tunnel::tls::parse_host_port(&text);
        if let Ok(f) = Forward::parse(Service::Smtp, &text) {
            parsed += 1;
            assert!(f.local.ip().is_loopback(), "{text:?}");
            assert_eq!(
                Forward::parse(Service::Smtp, &f.ssh_spec()).unwrap(),
                f,
                "{text:?}"
            );
        }
    }
    // The generator must reach the accepting paths, or this tests nothing.
    assert!(
        parsed > ROUNDS / 20,
        "only {parsed} random inputs parsed as a forward"
    );
}
/// The IMAP server's framer and parser (`fuzz/fuzz_targets/imap_command.rs`
/// runs the same loop): any bytes, split anywhere, never a panic, frames
/// within their bounds, and a BAD always names the tag the framer saw.
#[test]
fn imap_commands_never_panic_and_keep_their_tags() {
    use ownmail::proto::imap::{Frame, Framer, Limits, command, framer};
    let mut rng = Rng::from_time();
    let alphabet = b"a1 *:,()[]<>.{}+\\\"\r\nUIDFETCHSEARCHNOTORBODYPEEKHEADER$%~-";
    let limits = Limits {
        max_line: 256,
        max_literal: 512,
        max_literals: 8,
    };
    let mut parsed = 0;
    for _ in 0..ROUNDS {
        let mut input = random_bytes(&mut rng, alphabet, 300);
        if rng.below(3) == 0 {
            let starts: [&[u8]; 4] = [
                b"a1 UID FETCH 1:* (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (From)]<0.10>)\r\n",
                b"a2 SEARCH OR (FROM x NOT SEEN) TEXT {3}\r\nabc\r\n",
                b"a3 APPEND INBOX (\\Seen) {5+}\r\nhello\r\n",
                b"a4 LIST (SUBSCRIBED) \"\" (* %) RETURN (STATUS (MESSAGES))\r\n",
            ];
            let mut s = starts[rng.below(4) as usize].to_vec();
            s.extend_from_slice(&input);
            input = s;
        }
        let mut f = Framer::new(limits);
        let size = rng.below(40) as usize + 1;
        for chunk in input.chunks(size) {
            f.push(chunk);
            while let Some(frame) = f.next_frame() {
                if let Frame::Command(bytes) = frame {
                    assert!(bytes.len() <= limits.max_line * 9 + 512, "{bytes:?}");
                    match command::parse(&bytes) {
                        Ok(t) => {
                            parsed += 1;
                            assert_eq!(Some(t.tag), framer::tag_of(&bytes));
                        }
                        Err(e) => assert_eq!(e.tag, framer::tag_of(&bytes)),
                    }
                }
            }
        }
    }
    assert!(
        parsed > 100,
        "only {parsed} commands parsed: the inputs are too random"
    );
}

/// `dovecot-uidlist` as any process (or damage) may leave it: never a
/// panic, UIDs strictly increasing, the next UID above every UID listed.
#[test]
fn uidlists_parse_into_increasing_uids() {
    use ownmail::store::uidlist::{Parsed, UidList};
    let mut rng = Rng::from_time();
    let alphabet = b"3 VNG0123456789abcdef:.,=S\nW";
    for _ in 0..ROUNDS {
        let mut text = b"3 V1700000000 N".to_vec();
        text.extend(random_bytes(&mut rng, alphabet, 200));
        if let Parsed::Ok(list) = UidList::parse(&text) {
            assert!(list.entries.windows(2).all(|w| w[0].uid < w[1].uid));
            if let Some(last) = list.entries.last() {
                assert!(list.next_uid > last.uid || last.uid == u32::MAX);
            }
            assert!(list.entries.iter().all(|e| !e.file.contains('/')));
        }
    }
}

/// The SMTP server session, as `fuzz/fuzz_targets/smtp_session.rs` drives
/// it: random command soup in random chunks; no panic, bounded input,
/// messages within the size limit.
#[test]
fn the_smtp_session_survives_anything() {
    use ownmail::proto::smtp::{
        AuthOutcome, Directory, Event, MAX_AUTH_LINE, Reply, Session, Settings, TlsInfo,
    };
    use std::sync::Arc;
    let mut rng = Rng::from_time();
    let words: &[&[u8]] = &[
        b"EHLO x\r\n",
        b"HELO x\r\n",
        b"MAIL FROM:<a@b.example>\r\n",
        b"MAIL FROM:<> SIZE=99\r\n",
        b"RCPT TO:<alice@example.org>\r\n",
        b"RCPT TO:<x@remote.example>\r\n",
        b"DATA\r\n",
        b"BDAT 5\r\n",
        b"BDAT 3 LAST\r\n",
        b"RSET\r\n",
        b"STARTTLS\r\n",
        b"AUTH PLAIN\r\n",
        b"AUTH LOGIN\r\n",
        b"AGFsaWNlAHB3\r\n",
        b"\r\n.\r\n",
        b".\r\n",
        b"..x\r\n",
        b"\n",
        b"\r",
        b"\0",
        b"QUIT\r\n",
        b"NOOP\r\n",
        b"x",
        b"=\r\n",
        b"*\r\n",
    ];
    for _ in 0..ROUNDS / 4 {
        let flags = rng.below(16);
        let settings = Settings {
            hostname: "mx.example.org".into(),
            max_message_size: 4096,
            starttls: flags & 1 != 0,
            implicit_tls: None,
            auth_without_tls: flags & 2 != 0,
            submission: flags & 4 != 0,
            trusted: flags & 8 != 0,
        };
        let dir = Directory::new(
            vec!["example.org".into()],
            ["alice".to_owned()],
            Default::default(),
        );
        let mut s = Session::new(settings, Arc::new(dir));
        let mut input = Vec::new();
        for _ in 0..rng.below(60) {
            if rng.below(8) == 0 {
                input.extend(random_bytes(&mut rng, b"AB.\r\n:<>@ ", 300));
            } else {
                input.extend_from_slice(words[rng.below(words.len() as u64) as usize]);
            }
        }
        if rng.below(20) == 0 {
            input.extend(std::iter::repeat_n(b'A', 20_000));
        }
        let split = 1 + rng.below(200) as usize;
        'session: for chunk in input.chunks(split) {
            s.feed(chunk);
            while let Some(e) = s.next_event() {
                match e {
                    Event::StartTls => s.tls_started(TlsInfo {
                        version: "v".into(),
                        cipher: "c".into(),
                    }),
                    Event::Authenticate { password, .. } => {
                        s.auth_result(if password.expose() == "pw" {
                            AuthOutcome::Ok
                        } else {
                            AuthOutcome::Failed
                        })
                    }
                    Event::Message(tx) => {
                        assert!(tx.data.len() <= 4096);
                        s.message_result(Reply::OK);
                    }
                    Event::Close => break 'session,
                }
            }
            assert!(s.buffered() <= MAX_AUTH_LINE + chunk.len());
            let out = s.take_output();
            assert!(out.is_empty() || out.ends_with(b"\r\n"));
        }
    }
}

/// The pieces that matter in an mbox: From_ lines with and without dates,
/// quoting at several depths, blank lines in LF and CRLF, Content-Length
/// that fits or lies.
const MBOX_PIECES: &[&[u8]] = &[
    b"From a@b Thu Aug 22 12:36:23 2002\n",
    b"From a@b Thu Aug 22 12:36:23 2002\r\n",
    b"From nobody\n",
    b"From ",
    b">From x\n",
    b">>From y\n",
    b">>>From z\r\n",
    b"\n",
    b"\r\n",
    b"\n\n",
    b"Subject: s\n",
    b"Content-Length: 5\n",
    b"Content-Length: 0\n",
    b"Content-Length: 300\n",
    b"body\n",
    b"body From here\n",
    b"12345",
    b"\0\xff\r",
];

/// One of [`MBOX_PIECES`], at random.
fn mbox_piece(rng: &mut Rng) -> &'static [u8] {
    MBOX_PIECES[rng.below(MBOX_PIECES.len() as u64) as usize]
}

/// Detection, then each variant forced.
fn mbox_formats() -> impl Iterator<Item = Option<ownmail::message::mbox::Format>> {
    std::iter::once(None).chain(ownmail::message::mbox::Format::ALL.map(Some))
}

type MboxRead = Result<Vec<(u64, Vec<u8>, Vec<u8>)>, String>;

/// (offset, From_ line, content) of every message in `data`, read
/// `chunk` bytes at a time (bodies line by line if `by_line`), or the error.
fn read_mbox(
    data: &[u8],
    format: Option<ownmail::message::mbox::Format>,
    chunk: usize,
    by_line: bool,
) -> MboxRead {
    use ownmail::message::mbox::{Chunked, MboxReader};
    let mut r = MboxReader::new(Chunked::new(data, chunk), format);
    if by_line {
        r = r.line_by_line();
    }
    let mut out = Vec::new();
    while let Some(head) = r.next_message().map_err(|e| e.to_string())? {
        let mut content = head.header.clone();
        content.extend_from_slice(head.blank);
        while let Some(b) = r.read_body().map_err(|e| e.to_string())? {
            assert!(!b.is_empty());
            content.extend_from_slice(b);
        }
        out.push((head.offset, head.from_line, content));
    }
    Ok(out)
}

/// mbox files built from the pieces that matter (From_ lines with and
/// without dates, quoting at several depths, blank lines in LF and CRLF,
/// Content-Length that fits or lies) and random bytes: never a panic, the
/// same messages whatever the read sizes, and no byte invented or lost
/// beyond what the format removes (From_ lines, separators, quoting).
#[test]
fn mbox_files_read_the_same_in_any_read_size_and_lose_nothing() {
    let mut rng = Rng::from_time();
    for _ in 0..ROUNDS / 10 {
        let mut data = Vec::new();
        if rng.below(8) != 0 {
            data.extend_from_slice(MBOX_PIECES[0]);
        }
        for _ in 0..rng.below(40) {
            if rng.below(5) == 0 {
                data.extend(random_bytes(&mut rng, b"From >\n\r", 8));
            } else {
                data.extend_from_slice(mbox_piece(&mut rng));
            }
        }
        for format in mbox_formats() {
            let whole = read_mbox(&data, format, usize::MAX, false);
            for chunk in [1, 3, 64] {
                assert_eq!(
                    read_mbox(&data, format, chunk, false),
                    whole,
                    "{format:?}, reads of {chunk}: {:?}",
                    String::from_utf8_lossy(&data)
                );
            }
            let Ok(messages) = whole else { continue };
            // Account for every input byte: From_ lines with their line
            // ends, contents, and what the format drops (a separator blank
            // line per message, leading blank lines, one '>' per quoted
            // line).
            let accounted: usize = messages
                .iter()
                .map(|(_, from, c)| from.len() + c.len())
                .sum();
            assert!(accounted <= data.len(), "{format:?}: bytes invented");
            let quotes = data
                .windows(6)
                .filter(|w| w.ends_with(b"From ") && w[0] == b'>')
                .count()
                + data.windows(7).filter(|w| w.ends_with(b">From ")).count();
            let leading = data
                .iter()
                .take_while(|&&b| b == b'\n' || b == b'\r')
                .count();
            let slack = messages.len() * 4 + quotes + leading;
            assert!(
                data.len() - accounted <= slack,
                "{format:?}: {} bytes unaccounted for (at most {slack}): {:?}",
                data.len() - accounted,
                String::from_utf8_lossy(&data)
            );
            for w in messages.windows(2) {
                assert!(w[0].0 < w[1].0, "offsets increase");
            }
        }
    }
}

/// The reader finds the lines that matter in a body by searching for
/// `From `; this holds it to reading every line, as the header section is
/// read: large mboxes (reads end inside bodies, long `>` runs and lines
/// straddle the lookahead), every format, several read sizes.
#[test]
fn mbox_body_search_finds_what_reading_every_line_finds() {
    let mut rng = Rng::from_time();
    for _ in 0..ROUNDS / 400 {
        let mut data = Vec::new();
        data.extend_from_slice(MBOX_PIECES[0]);
        let target = 20_000 + rng.below(180_000) as usize;
        while data.len() < target {
            match rng.below(6) {
                0 => {
                    // A long line, or a long '>' run before From.
                    let n = rng.below(6_000) as usize;
                    let fill = if rng.below(2) == 0 { b'>' } else { b'x' };
                    data.extend(std::iter::repeat_n(fill, n));
                    data.extend_from_slice(mbox_piece(&mut rng));
                }
                1 => data.extend(random_bytes(&mut rng, b"From >\n\r", 12)),
                2 => {
                    // Plain text lines.
                    for _ in 0..rng.below(50) {
                        data.extend(std::iter::repeat_n(b'a', rng.below(90) as usize));
                        data.push(b'\n');
                    }
                }
                _ => data.extend_from_slice(mbox_piece(&mut rng)),
            }
        }
        if rng.below(2) == 0 {
            data.extend_from_slice(b"\n");
        }
        for format in mbox_formats() {
            let reference = read_mbox(&data, format, usize::MAX, true);
            for chunk in [usize::MAX, 4_099, 9_000, 65_543] {
                assert!(
                    read_mbox(&data, format, chunk, false) == reference,
                    "{format:?}, reads of {chunk}: the body search disagrees; input {:?}",
                    String::from_utf8_lossy(&data)
                );
            }
            if let Ok(m) = &reference {
                assert!(!m.is_empty());
            }
        }
    }
}
