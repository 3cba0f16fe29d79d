//! `deliver` under pressure: real-world mail, parallel writers, and SIGKILL
//! at random moments. Each test runs the real binary.

mod support;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use support::*;

/// What `deliver` must store for a corpus file: the headers it adds, then the
/// message without its `From ` line, CRLF as LF.
fn expected_bytes(raw: &[u8], recipient: &str) -> Vec<u8> {
    // 593 corpus files have no `From ` line: no sender is known, so no
    // Return-Path is added and the message's own is kept.
    let (sender, body) = if raw.starts_with(b"From ") {
        let first_end = raw.iter().position(|&b| b == b'\n').unwrap() + 1;
        let sender = String::from_utf8_lossy(&raw[..first_end])
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned();
        // mbox writers name the null sender (a bounce) MAILER-DAEMON.
        let sender = if sender == "MAILER-DAEMON" {
            String::new()
        } else {
            sender
        };
        (Some(sender), &raw[first_end..])
    } else {
        (None, raw)
    };
    let mut out = match &sender {
        Some(sender) => {
            format!("Return-Path: <{sender}>\nDelivered-To: {recipient}\n").into_bytes()
        }
        None => format!("Delivered-To: {recipient}\n").into_bytes(),
    };
    // Return-Path in the message is replaced by ours (RFC 5321 4.4).
    let (headers, rest) = match body.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&body[..i + 1], &body[i + 1..]),
        None => (body, &b""[..]),
    };
    let mut skipping = false;
    for line in headers.split_inclusive(|&b| b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            skipping = sender.is_some()
                && line.len() >= 12
                && line[..12].eq_ignore_ascii_case(b"return-path:");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(rest);
    // CRLF -> LF, lone CR kept.
    let mut normalised = Vec::with_capacity(out.len());
    for (i, &b) in out.iter().enumerate() {
        if b == b'\r' && out.get(i + 1) == Some(&b'\n') {
            continue;
        }
        normalised.push(b);
    }
    normalised
}

#[test]
fn every_corpus_message_is_stored_byte_for_byte() {
    let files = corpus_files();
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("Maildir");
    let recipient = "zzzz@example.org";
    // Two workers: one process per message, as an MTA would run it.
    std::thread::scope(|s| {
        for half in files.chunks(files.len() / 2 + 1) {
            let md = &md;
            s.spawn(move || {
                for f in half {
                    let raw = std::fs::read(f).unwrap();
                    let out = run(
                        ownmail()
                            .args(["deliver", "--recipient", recipient, "--maildir"])
                            .arg(md),
                        &raw,
                    );
                    assert!(
                        out.status.success(),
                        "{}: {}",
                        f.display(),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            });
        }
    });
    let stored: HashMap<Vec<u8>, usize> = messages(&md).iter().fold(HashMap::new(), |mut m, p| {
        *m.entry(std::fs::read(p).unwrap()).or_default() += 1;
        m
    });
    assert_eq!(stored.values().sum::<usize>(), 6046);
    let mut unmatched = Vec::new();
    let mut stored = stored;
    for f in &files {
        let expected = expected_bytes(&std::fs::read(f).unwrap(), recipient);
        match stored.get_mut(&expected) {
            Some(n) if *n > 0 => *n -= 1,
            _ => unmatched.push(f.display().to_string()),
        }
    }
    assert!(
        unmatched.is_empty(),
        "not stored byte for byte: {unmatched:?}"
    );
}

fn numbered_message(writer: usize, seq: usize) -> Vec<u8> {
    let mut m = format!("From w{writer}@example.org Mon Jan  1 00:00:00 2024\nSubject: {writer}/{seq}\nX-Seq: {writer}/{seq}\n\n")
        .into_bytes();
    // Bodies of different sizes, some over a pipe buffer, with 8-bit bytes.
    for i in 0..(seq * 37 % 3000) {
        m.extend_from_slice(format!("line {i} of {writer}/{seq} \u{e9}\u{2603}\n").as_bytes());
    }
    m
}

#[test]
fn eight_parallel_writers_deliver_4000_messages_into_one_folder() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("Maildir");
    std::thread::scope(|s| {
        for writer in 0..8 {
            let md = &md;
            s.spawn(move || {
                for seq in 0..500 {
                    let out = run(
                        ownmail()
                            .args([
                                "deliver",
                                "--recipient",
                                "r@example.org",
                                "--folder",
                                "Shared",
                                "--create",
                                "--maildir",
                            ])
                            .arg(md),
                        &numbered_message(writer, seq),
                    );
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            });
        }
    });
    let files = messages(&md.join(".Shared"));
    assert_eq!(files.len(), 4000);
    let names: HashSet<_> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 4000, "file names are unique");
    let mut seen = HashSet::new();
    for p in &files {
        let stored = std::fs::read(p).unwrap();
        let text = String::from_utf8(stored.clone()).unwrap();
        let seq = text
            .lines()
            .find_map(|l| l.strip_prefix("X-Seq: "))
            .unwrap()
            .to_owned();
        let (w, n) = seq.split_once('/').unwrap();
        let (w, n): (usize, usize) = (w.parse().unwrap(), n.parse().unwrap());
        let mut expected =
            format!("Return-Path: <w{w}@example.org>\nDelivered-To: r@example.org\n").into_bytes();
        let raw = numbered_message(w, n);
        expected.extend_from_slice(&raw[raw.iter().position(|&b| b == b'\n').unwrap() + 1..]);
        assert_eq!(stored, expected, "{seq} intact");
        assert!(seen.insert(seq), "delivered once");
    }
    assert_eq!(fs_count(&md.join(".Shared/tmp")), 0, "nothing left in tmp/");
}

fn fs_count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn sigkill_at_any_moment_leaves_a_message_whole_or_absent() {
    let mut rng = Rng::from_time();
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("Maildir");
    let runs = 120;
    let mut delivered = 0;
    for run_no in 0..runs {
        // A few MB, written in chunks by a feeder thread, so the kill can
        // land before, during and after the write, the fsyncs and the rename.
        let size_lines = 1000 + rng.below(60_000) as usize;
        let mut msg = format!("Subject: run {run_no}\nX-Run: {run_no}\n\n").into_bytes();
        for i in 0..size_lines {
            msg.extend_from_slice(format!("{run_no:04} body line {i:06}\n").as_bytes());
        }
        let mut child = ownmail()
            .args(["deliver", "--recipient", "r@example.org", "--maildir"])
            .arg(&md)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feeder = {
            let msg = msg.clone();
            std::thread::spawn(move || {
                for chunk in msg.chunks(64 * 1024) {
                    if stdin.write_all(chunk).is_err() {
                        return;
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_micros(rng.below(40_000)));
        let _ = child.kill();
        let status = child.wait().unwrap();
        feeder.join().unwrap();
        if status.success() {
            delivered += 1;
        }
        // Whatever the moment, new/ and cur/ hold only whole messages.
        let mut expected = b"Delivered-To: r@example.org\n".to_vec();
        expected.extend_from_slice(&msg);
        for p in messages(&md) {
            let stored = std::fs::read(&p).unwrap();
            let text = String::from_utf8_lossy(&stored[..stored.len().min(200)]).into_owned();
            if text.contains(&format!("X-Run: {run_no}\n")) {
                assert_eq!(
                    stored.len(),
                    expected.len(),
                    "run {run_no}: partial message visible at {}",
                    p.display()
                );
                assert_eq!(stored, expected, "run {run_no}: damaged message");
            }
        }
        // A message exists at most once.
        let copies = messages(&md)
            .iter()
            .filter(|p| {
                String::from_utf8_lossy(&std::fs::read(p).unwrap()[..60])
                    .contains(&format!("run {run_no}\n"))
            })
            .count();
        assert!(copies <= 1, "run {run_no}: {copies} copies");
        if status.success() {
            assert_eq!(copies, 1, "run {run_no}: exit 0 but no message");
        }
    }
    // Both outcomes must have happened, or the test proved nothing.
    let killed = runs - delivered;
    assert!(
        killed > 10 && delivered > 10,
        "killed {killed}, delivered {delivered}: adjust the timing"
    );
    eprintln!("killed {killed} of {runs} deliveries, {delivered} completed");
}
