//! The delivery agent: one message from a reader into one folder, durably.
//! Used by `ownmail deliver`, and by SMTP and `fetch` for local delivery.
//!
//! What happens to the message, in order:
//! 1. A leading mbox `From ` line is removed (its sender is the envelope
//!    sender when none was given).
//! 2. `Return-Path:` (RFC 5321 4.4: added at final delivery, replacing any
//!    the message carried) and `Delivered-To:` are put on top.
//! 3. A message already carrying our `Delivered-To:` for this recipient is
//!    refused as a mail loop, before anything is written.
//! 4. CRLF line ends become LF (Maildir stores LF); everything else, 8-bit
//!    and NUL bytes included, is kept as it is.
//!
//! Memory is bounded by the header section bound (1 MiB) and one copy
//! buffer, whatever the message size.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;

use crate::error::{ExitStatus, sysexits};
use crate::message::header::{self, HeaderSection};
use crate::store::{
    Delivered, Durability, Flag, Flags, Folder, KeywordError, Keywords, MailboxName, Maildir,
    StoreError, TmpMessage,
};

/// A `From ` line longer than this is not an envelope line.
const MAX_FROM_LINE: u64 = 4096;

/// Who the message is from and for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The envelope sender as given; `Some("")` is the null sender of a
    /// bounce. `None`: take the one on a leading `From ` line.
    pub sender: Option<String>,
    /// The sender to use when neither of the above is known (`$SENDER`).
    pub fallback_sender: Option<String>,
    /// The final recipient, for `Delivered-To:`.
    pub recipient: String,
    /// Refuse a message that already has `Delivered-To:` for the recipient
    /// (a mail loop). Off for `fetch`: a fetched message's `Delivered-To:`
    /// fields were written by the remote server (the ISP's own, for the
    /// same address when a domain moves home), not by a delivery here, and
    /// nothing here sends a delivered message out again.
    pub refuse_loops: bool,
}

/// Where the message goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// The user's Maildir root (created if missing, as dovecot-lda does).
    pub maildir: PathBuf,
    pub folder: MailboxName,
    /// Create the folder if it does not exist.
    pub create: bool,
    pub flags: Vec<Flag>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("the message is empty")]
    Empty,
    #[error("mail loop: the message already has Delivered-To: {0}")]
    Loop(String),
    #[error("reading the message: {0}")]
    Read(io::Error),
    #[error("{0:?} is not a usable address (no spaces or control characters, at most 998 bytes)")]
    BadAddress(String),
    #[error("folder {0:?} does not exist (use --create to create it)")]
    NoSuchFolder(MailboxName),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DeliverError {
    /// Whether the refusal is about the message itself (empty, a loop), so
    /// that no retry can help: only then may `fetch` give the message up
    /// (`delete_rejected`). Every other failure is ours or our
    /// configuration's, and the message must wait for it to be fixed.
    pub fn is_about_the_message(&self) -> bool {
        matches!(self, DeliverError::Empty | DeliverError::Loop(_))
    }
}

impl ExitStatus for DeliverError {
    fn exit_code(&self) -> u8 {
        match self {
            DeliverError::Empty | DeliverError::Loop(_) => sysexits::DATAERR,
            DeliverError::BadAddress(_) => sysexits::USAGE,
            // The sender (an MTA's pipe) broke off: it will retry.
            DeliverError::Read(_) => sysexits::TEMPFAIL,
            DeliverError::NoSuchFolder(_) => sysexits::CANTCREAT,
            DeliverError::Store(e) => e.exit_code(),
        }
    }
}

/// Delivers one message from `input`, durably: when this returns `Ok`, the
/// message file and its directory are fsynced.
pub fn deliver(
    input: impl Read,
    envelope: &Envelope,
    target: &Target,
) -> Result<Delivered, DeliverError> {
    check_envelope(envelope)?;
    // Everything that can refuse the message happens before a file exists.
    let parsed = Parsed::read(input, envelope)?;
    let deliverer = Deliverer::open(target)?;
    let tmp = deliverer.write_parsed(parsed, envelope)?;
    let delivered = tmp.commit(&deliverer.flags, false, Durability::Immediate)?;
    deliverer.clean_tmp();
    Ok(delivered)
}

/// [`deliver`] through the spam filter (`spam.enabled`): the message is
/// classified, tagged, and spam filed into the junk folder. Empty input is
/// refused before it is tagged (tags alone are no message). A filter that
/// cannot be loaded (a damaged database, a bad rules file) is logged and
/// the message delivered untagged, as `fetch` and SMTP local delivery do:
/// a broken filter must not bounce mail.
pub fn deliver_filtered(
    input: impl Read,
    envelope: &Envelope,
    target: &Target,
    spam: &crate::config::SpamConfig,
    user: Option<&crate::auth::UserName>,
) -> Result<Delivered, DeliverError> {
    check_envelope(envelope)?;
    let mut input = BufReader::with_capacity(64 * 1024, input);
    let (from_line_sender, _) = read_envelope_line(&mut input).map_err(DeliverError::Read)?;
    // Empty as Parsed::read sees it: nothing, or one blank line, after the
    // envelope line.
    let mut start = Vec::with_capacity(3);
    (&mut input)
        .take(3)
        .read_to_end(&mut start)
        .map_err(DeliverError::Read)?;
    if matches!(&start[..], b"" | b"\n" | b"\r\n") {
        return Err(DeliverError::Empty);
    }
    let input = io::Cursor::new(start).chain(input);
    // The envelope line is gone: its sender comes along in the envelope,
    // in the same order of precedence.
    let envelope = Envelope {
        sender: envelope.sender.clone().or(from_line_sender),
        ..envelope.clone()
    };
    let filter = match crate::spam::Filter::open(spam, user) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!("spamcheck skipped, the message is delivered untagged: {e}");
            return deliver(input, &envelope, target);
        }
    };
    let (verdict, tagged) = filter.scan(input).map_err(DeliverError::Read)?;
    let mut target = target.clone();
    crate::spam::file_by_verdict(spam, &verdict, &mut target);
    deliver(tagged, &envelope, &target)
}

/// Many messages into one folder, with the fsyncs batched: [`Deliverer::write`]
/// puts each into `tmp/` and starts writing it out, [`Deliverer::commit`]
/// names it, [`Deliverer::sync`] makes a batch of
/// [`Durability::Deferred`] commits durable at once. Used by `fetch`.
#[derive(Debug)]
pub struct Deliverer {
    folder: Folder,
    flags: Flags,
}

impl Deliverer {
    /// Opens (or, with `target.create`, creates) the target folder.
    pub fn open(target: &Target) -> Result<Deliverer, DeliverError> {
        let maildir = Maildir::create(&target.maildir)?;
        let folder = match maildir.folder(&target.folder) {
            Ok(f) => f,
            Err(StoreError::NoSuchFolder(_)) if target.create => {
                maildir.folder_or_create(&target.folder)?
            }
            Err(StoreError::NoSuchFolder(name)) => return Err(DeliverError::NoSuchFolder(name)),
            Err(e) => return Err(e.into()),
        };
        let flags = resolve_flags(folder.path(), &target.flags)?;
        Ok(Deliverer { folder, flags })
    }

    pub fn folder(&self) -> &Folder {
        &self.folder
    }

    /// Writes one message into `tmp/` and starts writing it out to the
    /// device. With an envelope, as [`deliver`] stores it (headers added,
    /// loops refused); without, exactly as given but with LF line ends.
    /// Nothing is visible in `new/` until [`Deliverer::commit`].
    pub fn write(
        &self,
        input: impl Read,
        envelope: Option<&Envelope>,
    ) -> Result<TmpMessage, DeliverError> {
        let mut tmp = match envelope {
            Some(envelope) => {
                check_envelope(envelope)?;
                let parsed = Parsed::read(input, envelope)?;
                self.write_parsed(parsed, envelope)?
            }
            None => {
                let mut input = BufReader::with_capacity(64 * 1024, input);
                if input.fill_buf().map_err(DeliverError::Read)?.is_empty() {
                    return Err(DeliverError::Empty);
                }
                let mut tmp = self.folder.create_tmp()?;
                self.copy_body(&mut input, &mut tmp)?;
                tmp
            }
        };
        tmp.start_write_out().map_err(|e| StoreError::Io {
            path: self.folder.path().join("tmp"),
            source: e,
        })?;
        Ok(tmp)
    }

    /// Names a message written by [`Deliverer::write`]. With
    /// [`Durability::Deferred`] it is durable only after [`Deliverer::sync`].
    pub fn commit(
        &self,
        tmp: TmpMessage,
        durability: Durability,
    ) -> Result<Delivered, DeliverError> {
        Ok(tmp.commit(&self.flags, false, durability)?)
    }

    /// Makes every commit so far durable (see [`crate::store::Folder::sync`]).
    pub fn sync(&self) -> Result<(), DeliverError> {
        Ok(self.folder.sync()?)
    }

    /// Removes what died in `tmp/` more than 36 hours ago.
    pub fn clean_tmp(&self) {
        let cleaned = self.folder.clean_tmp();
        if cleaned > 0 {
            tracing::info!(folder = %self.folder.path().display(), "removed {cleaned} stale files from tmp/");
        }
    }

    fn write_parsed<R: Read>(
        &self,
        parsed: Parsed<R>,
        envelope: &Envelope,
    ) -> Result<TmpMessage, DeliverError> {
        let Parsed {
            mut input,
            mut headers,
            from_line_sender,
        } = parsed;
        let mut tmp = self.folder.create_tmp()?;
        let write_err = |e: io::Error| StoreError::Io {
            path: self.folder.path().join("tmp"),
            source: e,
        };
        let sender = envelope
            .sender
            .as_deref()
            .or(from_line_sender.as_deref())
            .or(envelope.fallback_sender.as_deref());
        let mut top = Vec::with_capacity(256);
        if let Some(sender) = sender {
            headers.remove("Return-Path");
            writeln!(top, "Return-Path: <{}>", sender.trim_matches(['<', '>']))
                .map_err(write_err)?;
        }
        writeln!(top, "Delivered-To: {}", envelope.recipient.trim()).map_err(write_err)?;
        tmp.write_all(&top).map_err(write_err)?;
        tmp.write_all(&headers.bytes).map_err(write_err)?;
        if headers.blank_line {
            tmp.write_all(b"\n").map_err(write_err)?;
        }
        self.copy_body(&mut input, &mut tmp)?;
        Ok(tmp)
    }

    fn copy_body(
        &self,
        input: &mut impl BufRead,
        tmp: &mut TmpMessage,
    ) -> Result<(), DeliverError> {
        // Tell which side failed: a write error is ours (disk full: retry
        // later), a read error is the sender's.
        let mut out = ErrorSlot {
            inner: tmp,
            error: None,
        };
        if let Err(e) = header::copy_crlf_to_lf(input, &mut out) {
            return Err(match out.error.take() {
                Some(write) => StoreError::Io {
                    path: self.folder.path().join("tmp"),
                    source: write,
                }
                .into(),
                None => DeliverError::Read(e),
            });
        }
        Ok(())
    }
}

/// The envelope's addresses go into header lines: a newline in one would
/// forge headers.
fn check_envelope(envelope: &Envelope) -> Result<(), DeliverError> {
    for addr in [
        Some(&envelope.recipient),
        envelope.sender.as_ref(),
        envelope.fallback_sender.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        check_address(addr)?;
    }
    Ok(())
}

/// A message whose header section has been read and checked.
struct Parsed<R> {
    input: BufReader<R>,
    headers: HeaderSection,
    from_line_sender: Option<String>,
}

impl<R: Read> Parsed<R> {
    /// Reads the `From ` line and the header section; refuses an empty
    /// message and a loop.
    fn read(input: R, envelope: &Envelope) -> Result<Parsed<R>, DeliverError> {
        let mut input = BufReader::with_capacity(64 * 1024, input);
        let (from_line_sender, first) =
            read_envelope_line(&mut input).map_err(DeliverError::Read)?;
        let headers = HeaderSection::read(&mut input, first).map_err(DeliverError::Read)?;
        if headers.bytes.is_empty() && input.fill_buf().map_err(DeliverError::Read)?.is_empty() {
            return Err(DeliverError::Empty);
        }
        let recipient = envelope.recipient.trim();
        // The MTA that runs us has just put its own trace fields on top
        // (Postfix's local(8) prepends Delivered-To: to what it pipes into
        // `mailbox_command`, pipe(8) does with its D flag), after its own
        // loop check: those are not a loop, and counting them would bounce
        // every message. A loop is our Delivered-To: below a later hop's
        // fields.
        let looped = envelope.refuse_loops
            && headers
                .fields()
                .skip_while(|(name, _)| is_final_delivery_trace(name))
                .any(|(name, value)| {
                    name.eq_ignore_ascii_case(b"Delivered-To")
                        && strip_angles(value).eq_ignore_ascii_case(recipient.as_bytes())
                });
        if looped {
            return Err(DeliverError::Loop(recipient.to_owned()));
        }
        Ok(Parsed {
            input,
            headers,
            from_line_sender,
        })
    }
}

/// The fields an MTA prepends at final delivery, right above the message
/// it hands to the delivery agent.
fn is_final_delivery_trace(name: &[u8]) -> bool {
    [&b"Delivered-To"[..], b"Return-Path", b"X-Original-To"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
}

/// Reads the first line: an mbox `From sender date` envelope line is
/// consumed, all of it whatever its length, and its sender returned when it
/// is one we can write into `Return-Path:` (a line longer than
/// [`MAX_FROM_LINE`], or a sender with control characters or over 998
/// bytes, gives none: the sender then comes from elsewhere or is left
/// out). Any other line is handed back for the header section (without its
/// line end).
fn read_envelope_line(input: &mut impl BufRead) -> io::Result<(Option<String>, Option<Vec<u8>>)> {
    if !input.fill_buf()?.starts_with(b"From ") {
        return Ok((None, None));
    }
    let mut line = Vec::new();
    Read::take(&mut *input, MAX_FROM_LINE).read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") && skip_line(input)? {
        tracing::warn!(
            "the mbox From line is longer than {MAX_FROM_LINE} bytes: its sender is not used"
        );
        return Ok((None, None));
    }
    let text = String::from_utf8_lossy(&line);
    let sender = text.split_ascii_whitespace().nth(1).and_then(|s| {
        // mbox writers put MAILER-DAEMON for the null sender.
        if s.eq_ignore_ascii_case("MAILER-DAEMON") {
            Some(String::new())
        } else if check_address(s).is_ok() {
            Some(s.to_owned())
        } else {
            tracing::warn!(
                "the mbox From line's sender {s:?} is not a usable address: it is not used"
            );
            None
        }
    });
    Ok((sender, None))
}

/// Reads and drops the rest of a line; whether there was any.
fn skip_line(input: &mut impl BufRead) -> io::Result<bool> {
    let mut skipped = false;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(skipped);
        }
        match memchr::memchr(b'\n', buf) {
            Some(i) => {
                input.consume(i + 1);
                return Ok(true);
            }
            None => {
                let n = buf.len();
                input.consume(n);
                skipped = true;
            }
        }
    }
}

/// A writer that keeps its first error, so a caller can tell it from a
/// read error that came through the same `io::Result`.
struct ErrorSlot<'a, W> {
    inner: &'a mut W,
    error: Option<io::Error>,
}

impl<W: Write> Write for ErrorSlot<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner
            .write(buf)
            .inspect_err(|e| self.error = Some(io::Error::new(e.kind(), e.to_string())))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner
            .flush()
            .inspect_err(|e| self.error = Some(io::Error::new(e.kind(), e.to_string())))
    }
}

/// An envelope address we are willing to write into a header: RFC 5322
/// 2.1.1's line limit, and nothing that could end the line or the field.
fn check_address(addr: &str) -> Result<(), DeliverError> {
    if addr.len() > 998 || addr.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(DeliverError::BadAddress(addr.to_owned()));
    }
    Ok(())
}

fn strip_angles(value: &[u8]) -> &[u8] {
    let v = value.trim_ascii();
    v.strip_prefix(b"<")
        .and_then(|v| v.strip_suffix(b">"))
        .unwrap_or(v)
}

/// Turns flag names into Maildir flags, adding keywords to the folder's
/// `dovecot-keywords` as needed. A keyword that does not fit (the folder
/// has 26 already, all a Maildir name can carry) is left off with a
/// warning: a flag is not worth a bounce.
pub fn resolve_flags(folder: &std::path::Path, wanted: &[Flag]) -> Result<Flags, StoreError> {
    let mut flags = Flags::EMPTY;
    let mut keywords = Vec::new();
    for flag in wanted {
        match flag {
            Flag::System(letter) => flags.set_system(*letter),
            Flag::Keyword(name) => keywords.push(name.as_str()),
        }
    }
    if keywords.is_empty() {
        return Ok(flags);
    }
    match Keywords::resolve(folder, &keywords) {
        Ok(indexes) => indexes.into_iter().for_each(|i| flags.set_keyword(i)),
        Err(KeywordError::Full { .. }) => {
            // One at a time: the ones already known still apply.
            for name in keywords {
                match Keywords::resolve(folder, &[name]) {
                    Ok(indexes) => indexes.into_iter().for_each(|i| flags.set_keyword(i)),
                    Err(e @ KeywordError::Full { .. }) => tracing::warn!("{e}"),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(dir: &std::path::Path) -> Target {
        Target {
            maildir: dir.join("alice"),
            folder: MailboxName::inbox(),
            create: false,
            flags: vec![],
        }
    }

    fn envelope(sender: Option<&str>) -> Envelope {
        Envelope {
            sender: sender.map(str::to_owned),
            fallback_sender: None,
            recipient: "alice@example.org".into(),
            refuse_loops: true,
        }
    }

    #[test]
    fn delivery_transcripts() {
        // (input, sender given, stored bytes)
        let cases: &[(&[u8], Option<&str>, &[u8])] = &[
            (
                b"From bob@example.net Mon Jan  1 00:00:00 2024\r\nSubject: hi\r\n\r\nbody\r\n",
                None,
                b"Return-Path: <bob@example.net>\nDelivered-To: alice@example.org\nSubject: hi\n\nbody\n",
            ),
            (
                b"Return-Path: <forged@x>\nSubject: hi\n\nbody",
                Some("real@example.net"),
                b"Return-Path: <real@example.net>\nDelivered-To: alice@example.org\nSubject: hi\n\nbody",
            ),
            (b"Subject: no sender\n\n", None, b"Delivered-To: alice@example.org\nSubject: no sender\n\n"),
            (b"From MAILER-DAEMON Mon Jan  1 00:00:00 2024\nX: y\n\nz\n", None, b"Return-Path: <>\nDelivered-To: alice@example.org\nX: y\n\nz\n"),
            (b"\nbody only\n", Some("a@b"), b"Return-Path: <a@b>\nDelivered-To: alice@example.org\n\nbody only\n"),
            (b"X: 8bit \xe9\0\n\n\xff\xfe\r\n", None, b"Delivered-To: alice@example.org\nX: 8bit \xe9\0\n\n\xff\xfe\n"),
        ];
        for (input, sender, stored) in cases {
            let dir = tempfile::tempdir().unwrap();
            let d = deliver(*input, &envelope(*sender), &target(dir.path())).unwrap();
            assert_eq!(
                std::fs::read(&d.path).unwrap(),
                *stored,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn the_sender_comes_from_the_argument_then_the_from_line_then_the_fallback() {
        let from_line: &[u8] = b"From line@x Mon Jan  1 00:00:00 2024\nX: 1\n\n";
        let cases = [
            (Some("arg@x"), from_line, "arg@x"),
            (None, from_line, "line@x"),
            (None, &b"X: 1\n\n"[..], "env@x"),
        ];
        for (given, input, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            let mut env = envelope(given);
            env.fallback_sender = Some("env@x".into());
            let d = deliver(input, &env, &target(dir.path())).unwrap();
            let stored = std::fs::read_to_string(&d.path).unwrap();
            assert!(
                stored.starts_with(&format!("Return-Path: <{expected}>\n")),
                "{stored}"
            );
        }
    }

    #[test]
    fn an_envelope_line_too_long_or_with_a_bad_sender_is_dropped_whole() {
        let long = format!(
            "From {}@example.net Mon Jan  1 00:00:00 2024 {}\nSubject: hi\n\nbody\n",
            "a".repeat(5000),
            "x".repeat(5000)
        );
        let cases: &[(&[u8], &[u8])] = &[
            (
                long.as_bytes(),
                b"Delivered-To: alice@example.org\nSubject: hi\n\nbody\n",
            ),
            (
                b"From a@b\x01c Mon Jan  1 00:00:00 2024\nSubject: hi\n\nbody\n",
                b"Delivered-To: alice@example.org\nSubject: hi\n\nbody\n",
            ),
            (
                // An ordinary envelope line still gives the sender.
                b"From ok@x Mon Jan  1 00:00:00 2024\nSubject: hi\n\n",
                b"Return-Path: <ok@x>\nDelivered-To: alice@example.org\nSubject: hi\n\n",
            ),
        ];
        for (input, stored) in cases {
            let dir = tempfile::tempdir().unwrap();
            let d = deliver(*input, &envelope(None), &target(dir.path())).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&std::fs::read(&d.path).unwrap()),
                String::from_utf8_lossy(stored)
            );
        }
        // The fallback sender takes the dropped one's place.
        let dir = tempfile::tempdir().unwrap();
        let mut env = envelope(None);
        env.fallback_sender = Some("env@x".into());
        let d = deliver(long.as_bytes(), &env, &target(dir.path())).unwrap();
        let stored = std::fs::read_to_string(&d.path).unwrap();
        assert!(
            stored.starts_with("Return-Path: <env@x>\nDelivered-To:"),
            "{stored}"
        );
        // A From line of exactly MAX_FROM_LINE bytes, newline included.
        let mut exact = b"From e@x ".to_vec();
        exact.resize(MAX_FROM_LINE as usize - 1, b'x');
        exact.extend_from_slice(b"\nSubject: e\n\n");
        let dir = tempfile::tempdir().unwrap();
        let d = deliver(&exact[..], &envelope(None), &target(dir.path())).unwrap();
        assert_eq!(
            std::fs::read(&d.path).unwrap(),
            b"Return-Path: <e@x>\nDelivered-To: alice@example.org\nSubject: e\n\n"
        );
    }

    #[test]
    #[allow(clippy::type_complexity)] // a table of cases
    fn refusals_write_nothing() {
        let cases: &[(&[u8], fn(&DeliverError) -> bool)] = &[
            (b"", |e| matches!(e, DeliverError::Empty)),
            (b"From a@b Mon Jan  1 00:00:00 2024\n", |e| {
                matches!(e, DeliverError::Empty)
            }),
            (
                b"Received: by x\nDelivered-To: <Alice@Example.org>\nX: 1\n\n",
                |e| matches!(e, DeliverError::Loop(_)),
            ),
            (
                b"Delivered-To: x@y\nReceived: by x\ndelivered-to: alice@example.org\n\n",
                |e| matches!(e, DeliverError::Loop(_)),
            ),
            (b"X: 1\ndelivered-to:alice@example.org\n\n", |e| {
                matches!(e, DeliverError::Loop(_))
            }),
        ];
        for (input, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            let err = deliver(*input, &envelope(None), &target(dir.path())).unwrap_err();
            assert!(
                expected(&err),
                "{:?} gave {err:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(err.exit_code(), sysexits::DATAERR);
        }
        // Delivered-To for someone else is no loop.
        let dir = tempfile::tempdir().unwrap();
        deliver(
            &b"Delivered-To: bob@example.org\n\nx"[..],
            &envelope(None),
            &target(dir.path()),
        )
        .unwrap();
        // Nor is any without refuse_loops (fetched mail): kept as it came.
        let dir = tempfile::tempdir().unwrap();
        let mut env = envelope(None);
        env.refuse_loops = false;
        let d = deliver(
            &b"Received: by x\nDelivered-To: alice@example.org\n\nx"[..],
            &env,
            &target(dir.path()),
        )
        .unwrap();
        assert_eq!(
            std::fs::read(&d.path).unwrap(),
            b"Delivered-To: alice@example.org\nReceived: by x\nDelivered-To: alice@example.org\n\nx"
        );
    }

    /// Postfix's local(8) prepends `Delivered-To:` (and pipe(8), with its D
    /// and R flags, `Return-Path:` too) to the message it pipes into us,
    /// after its own loop check: that is no loop. Counting it bounced every
    /// message of a `mailbox_command = ownmail deliver` setup.
    #[test]
    fn the_trace_fields_the_delivering_mta_prepends_are_no_loop() {
        for input in [
            &b"Delivered-To: alice@example.org\nReceived: by mx\nSubject: hi\n\nbody\n"[..],
            b"Return-Path: <s@x>\nDelivered-To: <alice@example.org>\nX-Original-To: a@x\nReceived: by mx\n\nbody\n",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let d = deliver(input, &envelope(None), &target(dir.path()))
                .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(input)));
            let stored = std::fs::read_to_string(&d.path).unwrap();
            assert!(stored.contains("Received: by mx\n"), "{stored}");
        }
    }

    #[test]
    fn addresses_that_would_forge_headers_are_refused() {
        for bad in ["a@b\nBcc: victim@x", "a@b\r\n", "a b@c", "a@b\0"] {
            for field in 0..3 {
                let dir = tempfile::tempdir().unwrap();
                let mut env = envelope(None);
                match field {
                    0 => env.recipient = bad.into(),
                    1 => env.sender = Some(bad.into()),
                    _ => env.fallback_sender = Some(bad.into()),
                }
                let err = deliver(&b"X: 1\n\nx"[..], &env, &target(dir.path())).unwrap_err();
                assert!(
                    matches!(err, DeliverError::BadAddress(_)),
                    "{bad:?} in field {field}"
                );
                assert!(!dir.path().join("alice").exists(), "nothing created");
            }
        }
    }

    fn spam_settings(dir: &std::path::Path) -> crate::config::SpamConfig {
        let mut s = crate::config::SpamConfig::defaults(dir);
        s.enabled = true;
        s
    }

    #[test]
    fn filtered_delivery_refuses_empty_input_before_tagging_it() {
        for input in [
            &b""[..],
            b"From a@b Mon Jan  1 00:00:00 2024\n",
            b"From a@b Mon Jan  1 00:00:00 2024\r\n\r\n",
            b"\n",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let spam = spam_settings(dir.path());
            let err = deliver_filtered(input, &envelope(None), &target(dir.path()), &spam, None)
                .unwrap_err();
            assert!(
                matches!(err, DeliverError::Empty),
                "{:?}: {err:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(err.exit_code(), sysexits::DATAERR);
            assert!(!dir.path().join("alice").exists(), "nothing written");
        }
        // A message is tagged, and keeps the From_ line's sender.
        let dir = tempfile::tempdir().unwrap();
        let spam = spam_settings(dir.path());
        let d = deliver_filtered(
            &b"From line@x Mon Jan  1 00:00:00 2024\nSubject: hi\n\nbody\n"[..],
            &envelope(None),
            &target(dir.path()),
            &spam,
            None,
        )
        .unwrap();
        let stored = std::fs::read_to_string(&d.path).unwrap();
        assert!(
            stored.starts_with("Return-Path: <line@x>\nDelivered-To: alice@example.org\nX-Spam-")
                && stored.ends_with("Subject: hi\n\nbody\n"),
            "{stored}"
        );
    }

    #[test]
    fn a_damaged_spam_database_delivers_untagged() {
        let dir = tempfile::tempdir().unwrap();
        let spam = spam_settings(dir.path());
        std::fs::create_dir_all(spam.db.parent().unwrap()).unwrap();
        std::fs::write(&spam.db, "garbage\n").unwrap();
        let d = deliver_filtered(
            &b"Subject: hi\n\nbody\n"[..],
            &envelope(Some("s@x")),
            &target(dir.path()),
            &spam,
            None,
        )
        .unwrap();
        assert_eq!(
            std::fs::read(&d.path).unwrap(),
            b"Return-Path: <s@x>\nDelivered-To: alice@example.org\nSubject: hi\n\nbody\n"
        );
    }

    #[test]
    fn unknown_folders_are_refused_unless_created() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = target(dir.path());
        t.folder = MailboxName::new("Lists/rust").unwrap();
        let err = deliver(&b"X: 1\n\nx"[..], &envelope(None), &t).unwrap_err();
        assert_eq!(err.exit_code(), sysexits::CANTCREAT);
        t.create = true;
        let d = deliver(&b"X: 1\n\nx"[..], &envelope(None), &t).unwrap();
        assert!(d.path.starts_with(dir.path().join("alice/.Lists.rust/new")));
    }

    #[test]
    fn flags_and_keywords_land_in_the_name_and_dovecot_keywords() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = target(dir.path());
        t.flags = Flag::parse_list("\\Seen $Label1 work").unwrap();
        let d = deliver(&b"X: 1\n\nx"[..], &envelope(None), &t).unwrap();
        assert!(
            d.path.to_str().unwrap().ends_with(":2,Sab"),
            "{}",
            d.path.display()
        );
        let kw = std::fs::read_to_string(dir.path().join("alice/dovecot-keywords")).unwrap();
        assert_eq!(kw, "0 $Label1\n1 work\n");
    }

    #[test]
    fn a_keyword_that_does_not_fit_is_left_off_not_bounced() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = target(dir.path());
        let full: String = (0..26).map(|i| format!("{i} k{i}\n")).collect();
        std::fs::create_dir_all(dir.path().join("alice")).unwrap();
        std::fs::write(dir.path().join("alice/dovecot-keywords"), &full).unwrap();
        t.flags = Flag::parse_list("\\Seen newkw k1").unwrap();
        let d = deliver(&b"X: 1\n\nx"[..], &envelope(None), &t).unwrap();
        assert!(
            d.path.to_str().unwrap().ends_with(":2,Sb"),
            "the known keyword and \\Seen stay: {}",
            d.path.display()
        );
        let kw = std::fs::read_to_string(dir.path().join("alice/dovecot-keywords")).unwrap();
        assert_eq!(kw, full, "nothing added");
    }

    #[test]
    fn a_deliverer_batches_and_can_store_a_message_as_it_came() {
        let dir = tempfile::tempdir().unwrap();
        let d = Deliverer::open(&target(dir.path())).unwrap();
        let raw: &[u8] =
            b"From x\r\nReceived: by y\r\nDelivered-To: alice@example.org\r\nSubject: 1\r\n\r\nbody\r\n";
        // Without an envelope: nothing added, nothing refused, LF line ends.
        let a = d.write(raw, None).unwrap();
        let base = a.base().to_owned();
        // With one: as deliver() stores it (this one is a loop).
        assert!(matches!(
            d.write(raw, Some(&envelope(None))),
            Err(DeliverError::Loop(_))
        ));
        let b = d
            .write(&b"Subject: 2\r\n\r\nx"[..], Some(&envelope(Some("s@x"))))
            .unwrap();
        let dropped = d.write(&b"Subject: 3\n\n"[..], None).unwrap();
        drop(dropped);
        assert!(matches!(d.write(&b""[..], None), Err(DeliverError::Empty)));
        let a = d.commit(a, Durability::Deferred).unwrap();
        let b = d.commit(b, Durability::Deferred).unwrap();
        d.sync().unwrap();
        assert!(
            a.path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&base),
            "{}",
            a.path.display()
        );
        assert_eq!(
            std::fs::read(&a.path).unwrap(),
            b"From x\nReceived: by y\nDelivered-To: alice@example.org\nSubject: 1\n\nbody\n"
        );
        assert_eq!(
            std::fs::read(&b.path).unwrap(),
            b"Return-Path: <s@x>\nDelivered-To: alice@example.org\nSubject: 2\n\nx"
        );
        let inbox = dir.path().join("alice");
        assert_eq!(std::fs::read_dir(inbox.join("new")).unwrap().count(), 2);
        assert_eq!(std::fs::read_dir(inbox.join("tmp")).unwrap().count(), 0);
    }
}
