//! `kill -9` at random moments while `fetch` works through a mailbox in
//! delete mode, again and again, then one run to the end: every message
//! must be in the Maildir exactly once and the server empty. The moments
//! are random (the seed is printed; OWNMAIL_TEST_SEED replays a run), so
//! kills land while messages are written into tmp/, while the state is
//! appended, between the rename and the D record, during DELE and QUIT,
//! and during a compaction.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::Rng;
use support::fetch::*;

/// Runs `fetch` and kills it after a random while, until a run ends by
/// itself; returns how many were killed. The first `EARLY_KILLS` runs are
/// killed within `EARLY_MS`, well before a whole run could finish on any
/// machine, so at least that many kills land however fast this one is;
/// after them the moments spread over `max_ms`.
fn kill_until_done(local: &Local, rng: &mut Rng, max_ms: u64) -> usize {
    const EARLY_KILLS: usize = 3;
    const EARLY_MS: u64 = 150;
    let mut killed = 0;
    for round in 0..200 {
        let mut child = local
            .cmd()
            .args(["fetch", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let spread = if killed < EARLY_KILLS {
            EARLY_MS
        } else {
            max_ms
        };
        let wait = Duration::from_millis(20 + rng.below(spread));
        let deadline = Instant::now() + wait;
        let mut ended = None;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                ended = Some(status);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        match ended {
            Some(status) => {
                let out = child.wait_with_output().unwrap();
                assert_eq!(
                    status.code(),
                    Some(0),
                    "round {round}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                return killed;
            }
            None => {
                // SAFETY: the PID of the child we started and have not reaped.
                unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
                let _ = child.wait();
                killed += 1;
            }
        }
    }
    panic!("200 runs were killed before one could finish");
}

#[test]
fn pop3_killed_at_random_loses_nothing_and_doubles_nothing() {
    let mut rng = Rng::from_time();
    let mut server = ServerSetup::new().start();
    let corpus = corpus_messages();
    server.add(None, &corpus);
    let local = Local::new();
    let pw = local.password_file(PASSWORD);
    local.write(&account(
        "isp",
        "pop3",
        server.dovecot.pop3_port(),
        "none",
        &format!(
            "password_file: {}\ndeliver_to: {{maildir: Maildir}}",
            pw.display()
        ),
    ));
    let killed = kill_until_done(&local, &mut rng, 1500);
    eprintln!("{killed} runs killed");
    assert!(killed >= 3, "the kills did not land: {killed}");
    let out = local.fetch(&["-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{}", show(&out));
    let expected: Vec<Vec<u8>> = corpus.iter().map(|m| via_pop3(m)).collect();
    assert_same_messages(
        &stored(&local.maildir("Maildir")),
        &expected,
        "after the kills",
    );
    assert!(
        server.held(None).is_empty(),
        "the server still has {} messages",
        server.held(None).len()
    );
    // What the killed runs left half-written in tmp/ was cleaned up (their
    // processes are gone), and nothing of the last run's is left.
    let tmp = std::fs::read_dir(local.maildir("Maildir/tmp"))
        .unwrap()
        .count();
    assert_eq!(tmp, 0, "files left in tmp/");
}

#[test]
fn imap_killed_at_random_loses_nothing_and_doubles_nothing() {
    let mut rng = Rng::from_time();
    let mut server = ServerSetup::new().start();
    // A third of the corpus in each of three folders' worth of work.
    let corpus = corpus_messages();
    let part: Vec<Vec<u8>> = corpus.iter().step_by(3).cloned().collect();
    let (a, b) = part.split_at(part.len() / 2);
    server.add(None, a);
    server.add(Some("Archive"), b);
    let local = Local::new();
    let pw = local.password_file(PASSWORD);
    local.write(&account(
        "work",
        "imap",
        server.dovecot.imap_port(),
        "none",
        &format!(
            "password_file: {}\nfolders: [INBOX, Archive]\ndeliver_to: {{maildir: Maildir}}",
            pw.display()
        ),
    ));
    let killed = kill_until_done(&local, &mut rng, 1000);
    eprintln!("{killed} runs killed");
    assert!(killed >= 3, "the kills did not land: {killed}");
    let out = local.fetch(&["-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let expected: Vec<Vec<u8>> = part.iter().map(|m| crlf_to_lf(m)).collect();
    assert_same_messages(
        &stored(&local.maildir("Maildir")),
        &expected,
        "after the kills",
    );
    assert!(server.held(None).is_empty() && server.held(Some("Archive")).is_empty());
    let tmp = std::fs::read_dir(local.maildir("Maildir/tmp"))
        .unwrap()
        .count();
    assert_eq!(tmp, 0, "files left in tmp/");
}
