//! The accuracy benchmark as a test: train on easy-ham-1 + spam-1, measure
//! on easy-ham-2 + hard-ham-1 + spam-2 (../shared/corpus.md), through the
//! real binary.
//!
//! Issue 7's targets are at most 0.5% of ham called spam AND at most 5% of
//! spam missed. The filter does not reach them yet (1.82% and 20.77%, 30 and
//! 290 messages, when this was written; 2.61% and 21.49% before;
//! BENCHMARKS.md says where the errors come from), so
//! what this test asserts for now is that it gets no worse than that, with
//! a little room for a change of tokenizer to move a message or two. When
//! the targets are reached, the guard becomes the target.

/// Issue 7's targets, in percent.
const TARGET_FP: f64 = 0.5;
const TARGET_FN: f64 = 5.0;
/// What the filter reaches today, plus a message's worth of room: the
/// regression guard asserted until the targets are met.
const GUARD_FP: f64 = 2.0;
const GUARD_FN: f64 = 21.5;

mod support;

use std::io::Write;
use std::process::Stdio;

#[test]
fn accuracy_on_the_spamassassin_corpus_does_not_regress() {
    let data = support::corpus_dir();
    assert!(
        data.join("spam-2").is_dir(),
        "no corpus at {} (scripts/corpus.sh)",
        data.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("site.db");
    support::succeed(
        support::ownmail()
            .args(["spamcheck", "--db"])
            .arg(&db)
            .args(["train", "--spam"])
            .arg(data.join("spam-1"))
            .arg("--ham")
            .arg(data.join("easy-ham-1")),
    );
    let mut list = String::new();
    let mut counts = [0usize; 2];
    for (group, spam) in [
        ("easy-ham-2", false),
        ("hard-ham-1", false),
        ("spam-2", true),
    ] {
        for e in std::fs::read_dir(data.join(group)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "txt") {
                list.push_str(&format!("{}\n", p.display()));
                counts[usize::from(spam)] += 1;
            }
        }
    }
    assert_eq!(counts, [1650, 1396]);
    let mut child = support::ownmail()
        .args(["spamcheck", "--bulk", "--db"])
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Feed the list from another thread: the verdicts come back while it
    // is read, and both exceed a pipe buffer (writing all, then reading,
    // deadlocks).
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(list.as_bytes()));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let (mut fp, mut fn_, mut lines) = (0, 0, 0);
    for line in text.lines() {
        let mut f = line.split(' ');
        let (path, _score, class) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        lines += 1;
        let is_spam = path.contains("/spam-2/");
        match (is_spam, class) {
            (false, "spam") => fp += 1,
            (true, "ham") => fn_ += 1,
            _ => {}
        }
    }
    assert_eq!(lines, 3046);
    let fp_rate = 100.0 * fp as f64 / 1650.0;
    let fn_rate = 100.0 * fn_ as f64 / 1396.0;
    eprintln!(
        "ham called spam: {fp} ({fp_rate:.2}%), spam missed: {fn_} ({fn_rate:.2}%); \
         issue 7's targets: at most {TARGET_FP}% and {TARGET_FN}%"
    );
    assert!(
        fp_rate <= GUARD_FP,
        "ham called spam: {fp_rate:.2}%, worse than the {GUARD_FP}% this filter reached"
    );
    assert!(
        fn_rate <= GUARD_FN,
        "spam missed: {fn_rate:.2}%, worse than the {GUARD_FN}% this filter reached"
    );
}
