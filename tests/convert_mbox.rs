//! `ownmail convert-mbox`, the real binary: the corpus in every mbox variant
//! against Python's `mailbox` as an independent reader, hand-made edge
//! cases, flags on every header combination read back through the store,
//! a 100 MB message in bounded memory, trees of mail programs, exit codes,
//! and SIGKILL at random moments or a disk that fills, each followed by a
//! re-run.
//!
//! python3 is a peer here like Dovecot elsewhere: missing, the tests fail.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use ownmail::convert::identity::parse_key;
use ownmail::store::{Flags, Keywords, MailboxName, Maildir};
use support::Rng;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn convert(args: &[&str]) -> Output {
    let out = support::ownmail()
        .arg("convert-mbox")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    eprintln!(
        "convert-mbox {args:?}: {}\nstdout: {}stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn summary(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("--json prints the summary as JSON")
}

/// Runs python3; a missing python3 fails the test, it never skips it.
fn python(args: &[&Path]) -> String {
    let out = Command::new("python3")
        .args(args)
        .output()
        .expect("python3 is needed for this test (scripts/install-peers.sh installs it)");
    assert!(
        out.status.success(),
        "python3 {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The corpus as an mbox in one variant, written once per test run.
fn corpus_mbox(variant: &str) -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    let path = dir.path().join(format!("corpus.{variant}"));
    let _held = LOCK.lock().unwrap();
    if !path.exists() {
        let corpus = support::corpus_dir();
        let tmp = dir.path().join(format!("corpus.{variant}.part"));
        python(&[
            &Path::new(DATA).join("make_mbox.py"),
            Path::new(variant),
            &corpus,
            &tmp,
        ]);
        fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// The messages of a folder in mbox order (by the offset in their name),
/// with their file names.
fn stored(folder: &Path) -> Vec<(String, Vec<u8>)> {
    let mut by_offset = BTreeMap::new();
    for path in support::messages(folder) {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let key = parse_key(&name).unwrap_or_else(|| panic!("{name} is not a convert-mbox name"));
        let previous = by_offset.insert(key.offset, (name, fs::read(&path).unwrap()));
        assert!(
            previous.is_none(),
            "two messages from offset {}",
            key.offset
        );
    }
    by_offset.into_values().collect()
}

fn assert_same_messages(got: &[(String, Vec<u8>)], expected: &[Vec<u8>], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}: message count");
    for (i, ((name, bytes), want)) in got.iter().zip(expected).enumerate() {
        if bytes != want {
            let at = bytes
                .iter()
                .zip(want)
                .position(|(a, b)| a != b)
                .unwrap_or(bytes.len().min(want.len()));
            panic!(
                "{what}: message {} ({name}) differs at byte {at} of {} (expected {}): {:?} vs {:?}",
                i + 1,
                bytes.len(),
                want.len(),
                String::from_utf8_lossy(&bytes[at.saturating_sub(40)..(at + 40).min(bytes.len())]),
                String::from_utf8_lossy(&want[at.saturating_sub(40)..(at + 40).min(want.len())]),
            );
        }
    }
}

/// What Python's mailbox reads out of the corpus mbox of a variant (see
/// python_mbox_dump.py; for mboxcl2 it reads the mboxrd twin), once per
/// test run.
fn python_messages(variant: &str) -> Arc<Vec<Vec<u8>>> {
    static CACHE: Mutex<BTreeMap<String, Arc<Vec<Vec<u8>>>>> = Mutex::new(BTreeMap::new());
    if let Some(m) = CACHE.lock().unwrap().get(variant) {
        return m.clone();
    }
    let mbox = corpus_mbox(if variant == "mboxcl2" {
        "mboxrd"
    } else {
        variant
    });
    let messages = Arc::new(python_read(variant, &mbox));
    CACHE
        .lock()
        .unwrap()
        .insert(variant.to_owned(), messages.clone());
    messages
}

fn python_read(variant: &str, mbox: &Path) -> Vec<Vec<u8>> {
    let out = tempfile::tempdir().unwrap();
    let n: usize = python(&[
        &Path::new(DATA).join("python_mbox_dump.py"),
        Path::new(variant),
        mbox,
        out.path(),
    ])
    .trim()
    .parse()
    .unwrap();
    (1..=n)
        .map(|i| fs::read(out.path().join(format!("{i:06}"))).unwrap())
        .collect()
}

/// Removes the status headers from a message's header section, line by
/// line: an independent statement of what convert-mbox must remove.
fn without_status_headers(message: &[u8]) -> Vec<u8> {
    const REMOVED: [&str; 9] = [
        "status",
        "x-status",
        "x-mozilla-status",
        "x-mozilla-status2",
        "x-keywords",
        "x-mozilla-keys",
        "x-imap",
        "x-imapbase",
        "x-uid",
    ];
    let mut out = Vec::new();
    let mut in_header = true;
    let mut dropping = false;
    for line in message.split_inclusive(|&b| b == b'\n') {
        if in_header && (line == b"\n" || line == b"\r\n") {
            in_header = false;
        }
        if in_header {
            if line[0] == b' ' || line[0] == b'\t' {
                if dropping {
                    continue;
                }
            } else {
                let name = line.split(|&b| b == b':').next().unwrap();
                let name = String::from_utf8_lossy(name).trim().to_ascii_lowercase();
                dropping = line.contains(&b':') && REMOVED.contains(&name.as_str());
                if dropping {
                    continue;
                }
            }
        }
        out.extend_from_slice(line);
    }
    out
}

#[test]
fn the_corpus_in_every_variant_reads_as_pythons_mailbox_reads_it() {
    for (variant, format) in [
        ("mboxo", "mboxo"),
        ("mboxrd", "mboxrd"),
        ("mboxcl", "mboxcl"),
        ("mboxcl2", "mboxcl2"),
        // Detection: Content-Length where it frames, else mboxrd.
        ("mboxrd", "auto"),
        ("mboxcl2", "auto"),
    ] {
        let mbox = corpus_mbox(variant);
        // Python cannot frame mboxcl2: it reads the mboxrd twin instead.
        let expected = python_messages(variant);
        assert_eq!(expected.len(), 6046, "Python reads the corpus {variant}");
        let md = tempfile::tempdir().unwrap();
        let out = convert(&[
            mbox.to_str().unwrap(),
            "--maildir",
            md.path().to_str().unwrap(),
            "--folder",
            "Corpus",
            "--format",
            format,
            "--keep-headers",
            "--json",
        ]);
        assert!(out.status.success(), "{variant} as {format}");
        let s = summary(&out);
        assert_eq!(
            (s["messages"].as_u64(), s["errors"].as_u64()),
            (Some(6046), Some(0))
        );
        let got = stored(&md.path().join(".Corpus"));
        assert_same_messages(&got, &expected, &format!("{variant} read as {format}"));
    }
}

#[test]
fn status_headers_are_removed_and_nothing_else_changes() {
    let mbox = corpus_mbox("mboxrd");
    let expected: Vec<Vec<u8>> = python_messages("mboxrd")
        .iter()
        .map(|m| without_status_headers(m))
        .collect();
    let md = tempfile::tempdir().unwrap();
    let out = convert(&[
        mbox.to_str().unwrap(),
        "--maildir",
        md.path().to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success());
    // A single file is named after itself ('.' cannot be in a level).
    let folder = md.path().join(".corpus_mboxrd");
    let got = stored(&folder);
    assert_same_messages(&got, &expected, "without status headers");
    // The corpus has one "X-Keywords: NotJunk": it is a keyword now.
    let kw = Keywords::load(&folder).unwrap();
    let index = kw.index_of("NotJunk").expect("NotJunk in dovecot-keywords");
    let flagged: Vec<&String> = got
        .iter()
        .map(|(name, _)| name)
        .filter(|name| Flags::from_file_name(name).has_keyword(index))
        .collect();
    assert_eq!(flagged.len(), 1, "{flagged:?}");
}

/// (file, --format, expected messages, exit code, text expected on stderr)
type EdgeCase = (
    &'static str,
    &'static str,
    Vec<&'static [u8]>,
    i32,
    &'static str,
);

#[test]
fn hand_made_edge_cases() {
    let cases: Vec<EdgeCase> = vec![
        (
            "from-quoting.mboxrd",
            "auto",
            vec![
                b"Subject: quoting\n\nFrom one level\n>From two levels\n>>From three levels\n>>>From four levels\nFrom: not a From_ line\n> From a reply\n>Fromage\n",
                b"Subject: after\n\nFrom at the end",
            ],
            0,
            "",
        ),
        (
            "from-quoting.mboxo",
            "mboxo",
            vec![b"Subject: quoting\n\nFrom one level\n>>From two levels\n", b"Subject: after\n\nx\n"],
            0,
            "",
        ),
        (
            "content-length.mboxcl2",
            "auto",
            vec![
                b"Subject: cl2\nContent-Length: 63\n\nFrom the body Thu Aug 22 12:36:23 2002\n\nFrom again\n>From stays\n",
                b"Subject: next\nContent-Length: 2\n\nok\n",
            ],
            0,
            "",
        ),
        (
            "lying-content-length.mbox",
            "auto",
            vec![
                b"Subject: short\nContent-Length: 3\n\nbody one\n",
                b"Subject: long\nContent-Length: 99999\n\nbody two\n",
                b"Subject: inside\nContent-Length: 7\n\nbody three\nline\n",
            ],
            0,
            "",
        ),
        (
            // Named as mboxcl2, lying lengths are damage: reported, stored as found.
            "lying-content-length.mbox",
            "mboxcl2",
            vec![
                b"Subject: short\nContent-Length: 3\n\nbody one\n",
                b"Subject: long\nContent-Length: 99999\n\nbody two\n",
                b"Subject: inside\nContent-Length: 7\n\nbody three\nline\n",
            ],
            1,
            "message at byte 0: Content-Length: 3 does not end at a message boundary; stored as found",
        ),
        (
            "no-final-newline.mbox",
            "auto",
            vec![b"Subject: one\n\nfirst\n", b"Subject: two\n\nno newline at the end"],
            0,
            "",
        ),
        (
            "crlf.mbox",
            "auto",
            vec![
                b"Subject: crlf\r\n\r\nline one\r\nline two\r\n",
                b"Subject: crlf 2\r\n\r\nFrom quoted\r\n",
            ],
            0,
            "",
        ),
        (
            "empty-message.mbox",
            "auto",
            vec![b"Subject: before\n\nx\n", b"", b"Subject: header only\n", b"Subject: after\n\ny\n"],
            0,
            "",
        ),
        (
            "binary.mbox",
            "auto",
            vec![
                b"Subject: binary\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\nNUL\0here \xff\xfe\x80 lone\rCR\n\0\0\0\n\xff\xff\xff\xff\nend\n",
                b"Subject: 8bit \xc3\xa9t\xc3\xa9\n\n\xe4\xf6\xfc\n",
            ],
            0,
            "",
        ),
        (
            "damaged.mbox",
            "auto",
            vec![
                b"Subject: good\n\nfine\n",
                b"\x01\x02junk without any header\n",
                b"Subject: good too\n\nfine\n",
            ],
            1,
            "damaged.mbox: message at byte 69: it does not start with a header field; stored as found",
        ),
        (
            "uw-imap.mbox",
            "auto",
            vec![b"Subject: real\n\nhi\n"],
            0,
            "",
        ),
        (
            "single-message.eml",
            "auto",
            vec![],
            1,
            "single-message.eml: not an mbox: it starts with a header field (Return-Path:), not a `From ` line",
        ),
        // An mbox never written to (a Drafts never used) is an empty folder.
        ("never-used.mbox", "auto", vec![], 0, ""),
        ("document.pdf", "auto", vec![], 1, "document.pdf: not an mbox: it holds binary data"),
        ("rmail.babyl", "auto", vec![], 1, "rmail.babyl: not an mbox: it is a Babyl file"),
    ];
    for (file, format, expected, code, stderr) in cases {
        let md = tempfile::tempdir().unwrap();
        let out = convert(&[
            &format!("{DATA}/mbox-edge/{file}"),
            "--maildir",
            md.path().to_str().unwrap(),
            "--folder",
            "Edge",
            "--format",
            format,
        ]);
        let what = format!("{file} as {format}");
        assert_eq!(out.status.code(), Some(code), "{what}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(stderr),
            "{what}: stderr lacks {stderr:?}: {err}"
        );
        // A file that is not an mbox makes no folder.
        let folder = md.path().join(".Edge");
        assert_eq!(folder.is_dir(), code == 0 || !expected.is_empty(), "{what}");
        let got = if folder.is_dir() {
            stored(&folder)
        } else {
            Vec::new()
        };
        let expected: Vec<Vec<u8>> = expected.iter().map(|e| e.to_vec()).collect();
        assert_same_messages(&got, &expected, &what);
    }
}

#[test]
fn strict_stops_at_the_first_problem_with_what_came_before_stored() {
    let md = tempfile::tempdir().unwrap();
    let out = convert(&[
        &format!("{DATA}/mbox-edge/damaged.mbox"),
        "--maildir",
        md.path().to_str().unwrap(),
        "--strict",
    ]);
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "damaged.mbox: message at byte 69: it does not start with a header field (stopped there: --strict)"
    ));
    assert_eq!(stored(&md.path().join(".damaged")).len(), 1);

    let out = convert(&[
        &format!("{DATA}/mbox-edge/single-message.eml"),
        "--maildir",
        md.path().to_str().unwrap(),
        "--strict",
    ]);
    assert_eq!(out.status.code(), Some(65));
    let out = convert(&[
        "/nonexistent/mbox",
        "--maildir",
        md.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(66));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/mbox"));
}

#[test]
fn the_uw_imap_message_is_skipped_and_flags_kept() {
    let md = tempfile::tempdir().unwrap();
    let out = convert(&[
        &format!("{DATA}/mbox-edge/uw-imap.mbox"),
        "--maildir",
        md.path().to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success());
    let s = summary(&out);
    assert_eq!(
        (s["messages"].as_u64(), s["skipped"].as_u64()),
        (Some(1), Some(1))
    );
    let folder = md.path().join(".uw-imap");
    let names: Vec<String> = stored(&folder).into_iter().map(|(n, _)| n).collect();
    assert!(names[0].ends_with(":2,RSa"), "{names:?}");
    assert_eq!(
        fs::read_to_string(folder.join("dovecot-keywords")).unwrap(),
        "0 $Label1\n"
    );
}

/// Every combination of the status headers, one message each, read back
/// through the store: flags from the file names, keywords through
/// dovecot-keywords, new/ or cur/, and the headers gone (or kept).
#[test]
fn flags_on_every_header_combination() {
    let statuses = ["", "O", "R", "RO"];
    let xstatus_letters = ["A", "F", "D", "T"];
    let mozilla = ["", "0001", "0002", "0004", "0008", "1000", "000f", "zz"];
    let keywords = ["", "$Label1", "work $Label1", "bad\"word ok"];
    let mut mbox = Vec::new();
    let mut expected = Vec::new();
    let mut n = 0;
    for status in statuses {
        for xs in 0..16 {
            for moz in mozilla {
                let kws = keywords[n % keywords.len()];
                let xstatus: String = (0..4)
                    .filter(|b| xs & (1 << b) != 0)
                    .map(|b| xstatus_letters[b])
                    .collect();
                let mut header = format!("Subject: {n}\n");
                if !status.is_empty() {
                    header.push_str(&format!("Status: {status}\n"));
                }
                if xs != 0 {
                    header.push_str(&format!("X-Status: {xstatus}\n"));
                }
                if !moz.is_empty() {
                    header.push_str(&format!(
                        "X-Mozilla-Status: {moz}\nX-Mozilla-Status2: 00000000\n"
                    ));
                }
                if !kws.is_empty() {
                    header.push_str(&format!("X-Keywords: {kws}\n"));
                }
                header.push_str("X-UID: 7\nX-IMAPbase: 1 2\n");
                mbox.extend_from_slice(
                    format!("From a@b Thu Aug 22 12:36:23 2002\n{header}\nbody {n}\n\n").as_bytes(),
                );
                // The issue's table, stated again independently.
                let mut letters = String::new();
                let moz_bits = u32::from_str_radix(moz, 16).unwrap_or(0);
                if xs & 0b0100 != 0 {
                    letters.push('T'); // X-Status D: deleted
                }
                if xs & 0b1000 != 0 {
                    letters.push('D'); // X-Status T: draft
                }
                if xs & 0b0010 != 0 || moz_bits & 4 != 0 {
                    letters.push('F');
                }
                if moz_bits & 0x1000 != 0 {
                    letters.push('P');
                }
                if xs & 0b0001 != 0 || moz_bits & 2 != 0 {
                    letters.push('R');
                }
                if status.contains('R') || moz_bits & 1 != 0 {
                    letters.push('S');
                }
                if moz_bits & 8 != 0 {
                    letters.push('T');
                }
                let mut flags = Flags::from_info(&letters).to_string();
                let mut words: Vec<&str> = kws
                    .split(' ')
                    .filter(|w| !w.is_empty() && !w.contains('"'))
                    .collect();
                words.sort();
                let bad = kws.contains('"');
                let cur = !status.is_empty() || !flags.is_empty() || !words.is_empty();
                flags.push_str(&words.join(" "));
                expected.push((flags, cur, bad));
                n += 1;
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags");
    fs::write(&path, &mbox).unwrap();
    for keep in [false, true] {
        let md = tempfile::tempdir().unwrap();
        let mut args = vec![
            path.to_str().unwrap(),
            "--maildir",
            md.path().to_str().unwrap(),
        ];
        if keep {
            args.push("--keep-headers");
        }
        let out = convert(&args);
        assert_eq!(out.status.code(), Some(0));
        let folder = Maildir::open(md.path())
            .unwrap()
            .folder(&MailboxName::new("flags").unwrap())
            .unwrap();
        let kw = Keywords::load(folder.path()).unwrap();
        let got = stored(folder.path());
        assert_eq!(got.len(), expected.len());
        for (i, ((name, bytes), (want, cur, bad))) in got.iter().zip(&expected).enumerate() {
            let f = Flags::from_file_name(name);
            let mut flags = f
                .to_string()
                .chars()
                .filter(|c| c.is_ascii_uppercase())
                .collect::<String>();
            let mut names: Vec<&str> = f.keyword_indexes().map(|k| kw.name(k).unwrap()).collect();
            names.sort();
            flags.push_str(&names.join(" "));
            assert_eq!(&flags, want, "message {i}: {name}");
            let in_cur = support::messages(folder.path()).iter().any(|p| {
                p.file_name().unwrap() == name.as_str() && p.parent().unwrap().ends_with("cur")
            });
            assert_eq!(in_cur, *cur, "message {i}: {name}");
            let text = String::from_utf8_lossy(bytes);
            for header in [
                "Status:",
                "X-Status:",
                "X-Mozilla-Status",
                "X-UID:",
                "X-IMAPbase:",
            ] {
                let present = text.lines().any(|l| l.starts_with(header));
                let written =
                    String::from_utf8_lossy(&mbox).contains(&format!("Subject: {i}\n{header}"));
                if keep {
                    assert!(!written || present, "message {i}: {header} kept");
                } else {
                    assert!(!present, "message {i}: {header} removed: {text}");
                }
            }
            // A keyword that cannot be stored keeps its header.
            let has_keywords = text.lines().any(|l| l.starts_with("X-Keywords:"));
            if !keep && expected[i].0.contains('$') {
                assert_eq!(has_keywords, *bad, "message {i}");
            }
        }
    }
}

#[test]
fn a_100_mb_message_is_stored_whole_in_bounded_memory() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.mbox");
    let mut f = std::io::BufWriter::new(fs::File::create(&path).unwrap());
    let header = b"From a@b Thu Aug 22 12:36:23 2002\nSubject: big\nContent-Type: application/octet-stream\n\n";
    f.write_all(header).unwrap();
    let mut expected = Sha256::new();
    expected.update(&header[34..]);
    let mut rng = Rng(0x1234_5678);
    let mut line = [0u8; 77];
    let mut size = header.len() - 34;
    while size < 100 << 20 {
        for b in line.iter_mut().take(76) {
            *b = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                [rng.below(64) as usize];
        }
        line[76] = b'\n';
        f.write_all(&line).unwrap();
        expected.update(line);
        size += line.len();
    }
    f.write_all(b"\nFrom c@d Fri Aug 23 01:02:03 2002\nSubject: small\n\nx\n")
        .unwrap();
    drop(f);

    let md = dir.path().join("md");
    let mut child = support::ownmail()
        .args([
            "convert-mbox",
            path.to_str().unwrap(),
            "--maildir",
            md.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let max_rss_kb = peak_rss_kb(&mut child);
    let got = stored(&md.join(".big"));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1.len(), size);
    assert_eq!(
        Sha256::digest(&got[0].1).as_slice(),
        expected.finalize().as_slice()
    );
    assert_eq!(got[1].1, b"Subject: small\n\nx\n");
    assert!(
        max_rss_kb < 64 * 1024,
        "peak RSS {max_rss_kb} kB for a 100 MB message"
    );
}

/// Waits for a child to exit successfully and returns its peak RSS (kB),
/// from its own address space's high-water mark (VmHWM). Not wait4's
/// ru_maxrss: Linux carries that over exec from the forking process, here
/// the test binary and the corpus it holds for other tests.
fn peak_rss_kb(child: &mut std::process::Child) -> u64 {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(text) = fs::read_to_string(&status_file)
            && let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kb);
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            assert!(peak > 0, "VmHWM was never read");
            return peak;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn trees_of_mail_programs_become_folder_trees() {
    let dir = tempfile::tempdir().unwrap();
    let m = |sender: &str| {
        format!("From {sender} Thu Aug 22 12:36:23 2002\nSubject: {sender}\n\nx\n\n")
    };
    let files = [
        ("Mail/Local Folders/Inbox", m("inbox")),
        (
            "Mail/Local Folders/Inbox.msf",
            "// <!-- <mdb:mork:z v=\"1.4\"/> -->".into(),
        ),
        ("Mail/Local Folders/Entwürfe", m("drafts")),
        ("Mail/Local Folders/Archives", m("archives")),
        ("Mail/Local Folders/Archives.sbd/2019", m("y2019")),
        ("Mail/Local Folders/Archives.sbd/2019.msf", String::new()),
        ("Mail/Local Folders/Trash", String::new()),
        (
            "Mail/Local Folders/popstate.dat",
            "# POP3 State File".into(),
        ),
        ("Export/Work.mbox/mbox", m("work")),
        ("Export/Work.mbox/Info.plist", "<plist/>".into()),
    ];
    for (rel, contents) in &files {
        let p = dir.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, contents).unwrap();
    }
    let md = dir.path().join("Maildir");
    let out = convert(&[
        dir.path().join("Mail/Local Folders").to_str().unwrap(),
        dir.path().join("Export").to_str().unwrap(),
        "--maildir",
        md.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success());
    assert_eq!(summary(&out)["folders"].as_u64(), Some(6));
    let maildir = Maildir::open(&md).unwrap();
    let names: Vec<String> = maildir
        .list_folders()
        .unwrap()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        names,
        vec!["Archives", "Archives/2019", "Entwürfe", "Trash", "Work"]
    );
    assert!(md.join(".Entw&APw-rfe").is_dir() && md.join(".Archives.2019").is_dir());
    for (folder, subject) in [
        ("INBOX", "inbox"),
        ("Entwürfe", "drafts"),
        ("Archives", "archives"),
        ("Archives/2019", "y2019"),
        ("Work", "work"),
    ] {
        let f = maildir.folder(&MailboxName::new(folder).unwrap()).unwrap();
        let got = stored(f.path());
        assert_eq!(got.len(), 1, "{folder}");
        assert_eq!(
            got[0].1,
            format!("Subject: {subject}\n\nx\n").into_bytes(),
            "{folder}"
        );
    }
}

#[test]
fn runs_again_add_only_what_is_new_and_dry_runs_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("alice");
    let message =
        |n: u32| format!("From a@b Thu Aug 22 12:36:{n:02} 2002\nSubject: {n}\n\nbody\n\n");
    fs::write(&spool, (0..3).map(message).collect::<String>()).unwrap();
    let md = dir.path().join("md");
    let md_arg = md.to_str().unwrap();
    let spool_arg = spool.to_str().unwrap();

    let out = convert(&[spool_arg, "--maildir", md_arg, "--dry-run", "--json"]);
    let s = summary(&out);
    assert_eq!(
        (s["messages"].as_u64(), s["dry_run"].as_bool()),
        (Some(3), Some(true))
    );
    assert!(!md.exists(), "a dry run creates nothing");

    let s = summary(&convert(&[
        spool_arg,
        "--maildir",
        md_arg,
        "--folder",
        "INBOX",
        "--json",
    ]));
    assert_eq!(
        (s["messages"].as_u64(), s["skipped"].as_u64()),
        (Some(3), Some(0))
    );
    let s = summary(&convert(&[
        spool_arg,
        "--maildir",
        md_arg,
        "--folder",
        "INBOX",
        "--json",
    ]));
    assert_eq!(
        (s["messages"].as_u64(), s["skipped"].as_u64()),
        (Some(0), Some(3))
    );
    // The spool grows; so does a copy of it elsewhere: only the new ones come.
    let mut f = fs::OpenOptions::new().append(true).open(&spool).unwrap();
    f.write_all((3..5).map(message).collect::<String>().as_bytes())
        .unwrap();
    let copy = dir.path().join("copy-of-alice");
    fs::copy(&spool, &copy).unwrap();
    let s = summary(&convert(&[
        copy.to_str().unwrap(),
        "--maildir",
        md_arg,
        "--folder",
        "INBOX",
        "--json",
    ]));
    assert_eq!(
        (s["messages"].as_u64(), s["skipped"].as_u64()),
        (Some(2), Some(3))
    );
    let s = summary(&convert(&[
        spool_arg,
        "--maildir",
        md_arg,
        "--folder",
        "INBOX",
        "--dry-run",
        "--json",
    ]));
    assert_eq!(
        (s["messages"].as_u64(), s["skipped"].as_u64()),
        (Some(0), Some(5))
    );
    // Dovecot moving a message to cur/ with flags does not hide it.
    let new = support::messages(&md);
    let first = new[0].clone();
    let name = first.file_name().unwrap().to_str().unwrap();
    fs::rename(&first, md.join("cur").join(format!("{name}:2,S"))).unwrap();
    let s = summary(&convert(&[
        spool_arg,
        "--maildir",
        md_arg,
        "--folder",
        "INBOX",
        "--json",
    ]));
    assert_eq!(
        (s["messages"].as_u64(), s["skipped"].as_u64()),
        (Some(0), Some(5))
    );
    assert_eq!(support::messages(&md).len(), 5);
}

#[test]
fn a_second_run_at_the_same_time_is_refused() {
    use std::os::fd::AsRawFd;
    let md = tempfile::tempdir().unwrap();
    Maildir::create(md.path()).unwrap();
    let held = fs::File::open(md.path()).unwrap();
    // SAFETY: a valid descriptor; the lock goes with it.
    assert_eq!(
        unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    let out = convert(&[
        &format!("{DATA}/mbox-edge/crlf.mbox"),
        "--maildir",
        md.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(75));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another convert-mbox is writing into"));
    drop(held);
    let out = convert(&[
        &format!("{DATA}/mbox-edge/crlf.mbox"),
        "--maildir",
        md.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_user_from_the_configuration() {
    let s = support::Scratch::new();
    s.add_user("alice", "correct horse");
    support::succeed(s.cmd().args([
        "convert-mbox",
        &format!("{DATA}/mbox-edge/no-final-newline.mbox"),
        "--user",
        "alice",
        "--folder",
        "Old",
    ]));
    assert_eq!(stored(&s.maildir("alice").join(".Old")).len(), 2);
    let out = s
        .cmd()
        .args([
            "convert-mbox",
            &format!("{DATA}/mbox-edge/crlf.mbox"),
            "--user",
            "bob",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(67));
}

/// SIGKILL at random moments, then a run to the end: every message is in
/// the Maildir exactly once, byte for byte.
#[test]
fn killed_at_random_moments_then_run_again_every_message_is_there_once() {
    // Three files in two folders, so readers and writers run in parallel.
    let corpus = fs::read(corpus_mbox("mboxrd")).unwrap();
    let cuts = split_points(&corpus, 3);
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("Mail");
    fs::create_dir_all(tree.join("lists")).unwrap();
    fs::write(tree.join("inbox"), &corpus[..cuts[0]]).unwrap();
    fs::write(tree.join("lists/one"), &corpus[cuts[0]..cuts[1]]).unwrap();
    fs::write(tree.join("lists/two"), &corpus[cuts[1]..]).unwrap();
    let folders = ["", ".lists.one", ".lists.two"];

    // The reference: one uninterrupted run.
    let reference = dir.path().join("reference");
    assert!(
        convert(&[
            tree.to_str().unwrap(),
            "--maildir",
            reference.to_str().unwrap()
        ])
        .status
        .success()
    );
    let count = |md: &Path| -> usize {
        folders
            .iter()
            .map(|f| support::messages(&md.join(f)).len())
            .sum()
    };
    assert_eq!(count(&reference), 6046);
    let by_offset: Vec<std::collections::HashMap<u64, Vec<u8>>> = folders
        .iter()
        .map(|f| {
            support::messages(&reference.join(f))
                .into_iter()
                .map(|p| {
                    let key = parse_key(p.file_name().unwrap().to_str().unwrap()).unwrap();
                    (key.offset, fs::read(&p).unwrap())
                })
                .collect()
        })
        .collect();

    let mut rng = Rng::from_time();
    // Kills that left some messages stored but not all. A run can finish
    // before its kill comes (a fast machine, a resumed run with little
    // left): campaigns go on until three kills landed, each from an empty
    // Maildir, each ending in a full check.
    let mut landed = 0;
    let mut campaign = 0;
    while landed < 3 {
        campaign += 1;
        assert!(
            campaign <= 12,
            "only {landed} kills in 11 campaigns landed in the middle of a run: the test proved too little"
        );
        let md = dir.path().join(format!("md{campaign}"));
        for round in 0..4 {
            let before = if md.exists() { count(&md) } else { 0 };
            let mut child = support::ownmail()
                .args([
                    "convert-mbox",
                    tree.to_str().unwrap(),
                    "--maildir",
                    md.to_str().unwrap(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // Killed once the Maildir holds a random number of messages
            // more than it did (so the kills follow this machine's speed),
            // or, one round in four, as it starts.
            let target = before + 1 + rng.below((6046 - before).max(1) as u64) as usize;
            if round == 3 {
                std::thread::sleep(std::time::Duration::from_millis(rng.below(30)));
            } else {
                while child.try_wait().unwrap().is_none() && (!md.exists() || count(&md) < target) {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            }
            let _ = child.kill();
            let status = child.wait().unwrap();
            let n = if md.exists() { count(&md) } else { 0 };
            eprintln!(
                "campaign {campaign} round {round}: target {target}: {status}: {before} -> {n} messages stored"
            );
            if status.signal().is_some() && n > 0 && n < 6046 {
                landed += 1;
            }
            // Whatever a kill left visible is whole: no half message, ever,
            // and no second copy (`stored` fails on two from one offset).
            for (folder, reference) in folders.iter().zip(&by_offset) {
                for (name, bytes) in stored(&md.join(folder)) {
                    let offset = parse_key(&name).unwrap().offset;
                    assert!(
                        reference.get(&offset) == Some(&bytes),
                        "campaign {campaign} round {round}: {name} is not whole"
                    );
                }
            }
        }
        // Run again: it ends well (whatever lock a kill left behind), and
        // every message is there exactly once.
        let out = convert(&[
            tree.to_str().unwrap(),
            "--maildir",
            md.to_str().unwrap(),
            "--json",
        ]);
        assert!(
            out.status.success(),
            "campaign {campaign}: the re-run failed"
        );
        for folder in folders {
            let want: Vec<Vec<u8>> = stored(&reference.join(folder))
                .into_iter()
                .map(|(_, b)| b)
                .collect();
            assert_same_messages(
                &stored(&md.join(folder)),
                &want,
                &format!("campaign {campaign}: folder {folder:?}"),
            );
        }
        assert_eq!(count(&md), 6046);
        let s = summary(&convert(&[
            tree.to_str().unwrap(),
            "--maildir",
            md.to_str().unwrap(),
            "--json",
        ]));
        assert_eq!(
            (s["messages"].as_u64(), s["skipped"].as_u64()),
            (Some(0), Some(6046))
        );
        fs::remove_dir_all(&md).unwrap();
    }
}

/// The CI failure of the test above: a run killed while it added a keyword
/// to a folder's `dovecot-keywords` left the lock behind, and every run in
/// the next two minutes failed with 75 ("timed out waiting for lock"). The
/// lock a killed run leaves now names its dead process, and is taken over.
#[test]
fn a_keyword_lock_left_by_a_killed_run_does_not_stop_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("inbox");
    fs::write(
        &mbox,
        "From a@example.org Thu Aug 22 12:36:23 2002\nX-Keywords: work\nSubject: x\n\nbody\n",
    )
    .unwrap();
    let md = dir.path().join("md");
    for sub in ["new", "cur", "tmp"] {
        fs::create_dir_all(md.join(sub)).unwrap();
    }
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let lock = md.join("dovecot-keywords.lock");
    fs::write(&lock, ownmail::store::dotlock::owner_text(pid)).unwrap();

    let started = std::time::Instant::now();
    let out = convert(&[mbox.to_str().unwrap(), "--maildir", md.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "waited for a dead process's lock"
    );
    assert!(!lock.exists());
    assert_eq!(
        fs::read_to_string(md.join("dovecot-keywords")).unwrap(),
        "0 work\n"
    );
    let files = support::messages(&md);
    assert_eq!(files.len(), 1);
    assert!(
        files[0].to_str().unwrap().ends_with(":2,a"),
        "{:?}",
        files[0]
    );
}

fn split_points(mbox: &[u8], parts: usize) -> Vec<usize> {
    (1..parts)
        .map(|i| {
            let from = mbox.len() * i / parts;
            from + memchr::memmem::find(&mbox[from..], b"\n\nFrom ").unwrap() + 2
        })
        .collect()
}

/// Dovecot reads what convert-mbox wrote: every folder of a tree (one with
/// a non-ASCII name), each message byte for byte (as IMAP serves it, CRLF),
/// its flags and keywords from every kind of status header, its
/// INTERNALDATE from the From_ line, and RFC822.SIZE equal to what is
/// served (W= right, a CRLF mbox included). Nothing in Dovecot's log.
#[test]
fn dovecot_serves_what_convert_mbox_stored() {
    use support::dovecot;
    // (status headers, IMAP flags expected)
    let statuses: [(&str, &[&str]); 7] = [
        ("", &[]),
        ("Status: O\n", &[]),
        ("Status: RO\nX-Status: A\n", &["\\Seen", "\\Answered"]),
        (
            "X-Status: F\nX-Keywords: $Label1 work\n",
            &["\\Flagged", "$Label1", "work"],
        ),
        (
            "Status: R\nX-Status: DT\n",
            &["\\Seen", "\\Deleted", "\\Draft"],
        ),
        (
            "X-Mozilla-Status: 0005\nX-Mozilla-Keys: nonjunk\n",
            &["\\Seen", "\\Flagged", "nonjunk"],
        ),
        (
            "X-Mozilla-Status: 0008\nX-UID: 9\nX-IMAPbase: 1 9\n",
            &["\\Deleted"],
        ),
    ];
    // folder on disk -> (IMAP name, line end)
    let files = [
        ("inbox", "INBOX", "\n"),
        ("Entwürfe", "Entw&APw-rfe", "\n"),
        ("lists/rust", "lists/rust", "\n"),
        ("crlf", "crlf", "\r\n"),
    ];
    let dir = tempfile::tempdir().unwrap();
    // (IMAP folder, served bytes, flags, INTERNALDATE as seconds)
    let mut expected: Vec<(String, Vec<u8>, Vec<&str>, i64)> = Vec::new();
    let mut n = 0i64;
    for (file, imap, eol) in files {
        let mut mbox = Vec::new();
        for (status, flags) in statuses {
            n += 1;
            let (hour, minute) = (n / 60, n % 60);
            let from = format!("From a@example.org Thu Aug 22 {hour:02}:{minute:02}:07 2002 +0200");
            let body = format!("Subject: message {n}\nFrom: <a@example.org>\n");
            let message = format!("{body}{status}\nbody of {n}\n>From quoted\n").replace('\n', eol);
            mbox.extend_from_slice(format!("{from}{eol}{message}{eol}").as_bytes());
            let stored = format!("{body}\nbody of {n}\nFrom quoted\n").replace('\n', eol);
            let served = stored.replace("\r\n", "\n").replace('\n', "\r\n");
            // 2002-08-22 00:00:00 +0200
            let date = 1_029_967_200 + hour * 3600 + minute * 60 + 7;
            expected.push((imap.to_owned(), served.into_bytes(), flags.to_vec(), date));
        }
        let path = dir.path().join("Mail").join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, mbox).unwrap();
    }

    let mut setup = dovecot::Setup::new();
    setup.imap();
    let maildir = setup.user("alice", "imap-secret");
    // Converted by root, as the test runs, then given to Dovecot's user:
    // root is refused a Maildir that someone else owns.
    if dovecot::is_root() {
        std::os::unix::fs::chown(&maildir, Some(0), Some(0)).unwrap();
    }
    let out = convert(&[
        dir.path().join("Mail").to_str().unwrap(),
        "--maildir",
        maildir.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success());
    assert_eq!(
        summary(&out)["messages"].as_u64(),
        Some(expected.len() as u64)
    );
    dovecot::give_to_mail_owner(&maildir);
    let server = setup.start();

    let script = server.dir().join("imap_fetch.py");
    fs::write(&script, IMAP_FETCH).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .args([
            "127.0.0.1",
            &server.imap_port().to_string(),
            "alice",
            "imap-secret",
        ])
        .output()
        .expect("python3 is needed (scripts/install-peers.sh)");
    assert!(
        out.status.success(),
        "imaplib: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let mut listed: Vec<&str> = seen
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec!["Entw&APw-rfe", "INBOX", "crlf", "lists", "lists/rust"]
    );
    let mut served_count = 0;
    for (folder, messages) in seen.as_object().unwrap() {
        for m in messages.as_array().unwrap() {
            served_count += 1;
            let body = m["body_hex"].as_str().unwrap();
            let body: Vec<u8> = (0..body.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&body[i..i + 2], 16).unwrap())
                .collect();
            let (_, _, flags, date) = expected
                .iter()
                .find(|(f, b, _, _)| f == folder && *b == body)
                .unwrap_or_else(|| {
                    panic!(
                        "{folder}: served a message that is none of ours: {:?}",
                        String::from_utf8_lossy(&body)
                    )
                });
            let mut got: Vec<&str> = m["flags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .filter(|f| *f != "\\Recent")
                .collect();
            got.sort();
            let mut want = flags.clone();
            want.sort();
            assert_eq!(
                got,
                want,
                "{folder}: flags of {:?}",
                String::from_utf8_lossy(&body[..20])
            );
            assert_eq!(
                m["internaldate"].as_i64(),
                Some(*date),
                "{folder}: INTERNALDATE"
            );
            assert_eq!(
                m["size"].as_u64(),
                Some(body.len() as u64),
                "{folder}: RFC822.SIZE"
            );
        }
    }
    assert_eq!(served_count, expected.len(), "every message served once");
    let problems = server.log_problems();
    assert!(problems.is_empty(), "dovecot complained: {problems:#?}");
    server.stop();
}

/// Logs in, lists every folder, fetches every message: JSON
/// {folder: [{flags, internaldate (epoch seconds), size, body_hex}]}.
const IMAP_FETCH: &str = r#"
import imaplib, json, re, sys, time

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

def check(result, what):
    typ, data = result
    if typ != "OK":
        sys.exit(f"{what}: {typ} {data!r}")
    return data

M = imaplib.IMAP4(host, port, timeout=30)
check(M.login(user, password), "LOGIN")
LIST = re.compile(rb'^\((?P<attrs>[^)]*)\) (?P<delim>"[^"]*"|NIL) "?(?P<name>[^"]+)"?$')
out = {}
for item in check(M.list('""', '*'), "LIST"):
    m = LIST.match(item)
    if not m:
        sys.exit(f"unparsed LIST line: {item!r}")
    name = m["name"].decode()
    out[name] = []
    if b"\\noselect" in m["attrs"].lower():
        continue
    n = int(check(M.select('"' + name + '"', readonly=True), "SELECT " + name)[0])
    if n == 0:
        continue
    for part in check(M.fetch("1:*", "(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"), "FETCH"):
        if not isinstance(part, tuple):
            continue
        head, body = part
        flags = re.search(rb"FLAGS \(([^)]*)\)", head).group(1).decode().split()
        size = int(re.search(rb"RFC822\.SIZE (\d+)", head).group(1))
        date = int(time.mktime(imaplib.Internaldate2tuple(head)))
        out[name].append({"flags": flags, "internaldate": date, "size": size, "body_hex": body.hex()})
print(json.dumps(out))
"#;

/// A spool that a delivery holds locked (fcntl, as Postfix's local and
/// procmail lock it) is read only once the delivery is done: the message
/// being appended is read whole, never cut.
#[test]
fn a_spool_being_delivered_into_is_read_after_the_delivery() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("alice");
    fs::write(
        &spool,
        "From a@b Thu Aug 22 12:36:23 2002\nSubject: 1\n\nfirst\n\n",
    )
    .unwrap();
    let mut delivery = fs::OpenOptions::new().append(true).open(&spool).unwrap();
    // SAFETY: plain data, a valid descriptor.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    assert_eq!(
        unsafe { libc::fcntl(delivery.as_raw_fd(), libc::F_SETLK, &fl) },
        0
    );
    // Half a message is in the file when the conversion starts.
    delivery
        .write_all(b"From c@d Fri Aug 23 01:02:03 2002\nSubject: 2\n\nhalf of")
        .unwrap();
    let md = dir.path().join("md");
    let child = support::ownmail()
        .args([
            "convert-mbox",
            spool.to_str().unwrap(),
            "--maildir",
            md.to_str().unwrap(),
            "--folder",
            "INBOX",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    delivery.write_all(b" the second message\n\n").unwrap();
    drop(delivery); // closing releases the lock
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<Vec<u8>> = stored(&md).into_iter().map(|(_, b)| b).collect();
    assert_eq!(
        got,
        vec![
            b"Subject: 1\n\nfirst\n".to_vec(),
            b"Subject: 2\n\nhalf of the second message\n".to_vec()
        ]
    );
}

/// `convert-mbox <(zcat old.mbox.gz)`: a pipe is read forward only, the
/// same way, and a second run through a pipe adds nothing.
/// Under a low open files limit the batches and handoffs shrink (to one
/// message a handoff here): every written message is an open file until it
/// is named. The sizes' arithmetic has its own unit test in the engine.
#[test]
fn a_low_open_files_limit_still_converts_everything() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("md");
    let mut cmd = support::ownmail();
    cmd.args([
        "convert-mbox",
        "--threads",
        "4",
        "--folder",
        "INBOX",
        "--json",
        "--maildir",
    ])
    .arg(&md)
    .arg(corpus_mbox("mboxrd"))
    .stdin(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 300,
                rlim_max: 300,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(summary(&out)["messages"].as_u64(), Some(6046));
    assert_eq!(support::messages(&md).len(), 6046);
    assert_eq!(fs::read_dir(md.join("tmp")).unwrap().count(), 0);
}

/// Pages of `path` in the page cache, and pages in all.
fn cached_pages(path: &Path) -> (usize, usize) {
    use std::os::fd::AsRawFd;
    let file = fs::File::open(path).unwrap();
    let len = file.metadata().unwrap().len() as usize;
    if len == 0 {
        return (0, 0);
    }
    // SAFETY: plain queries.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let pages = len.div_ceil(page);
    // SAFETY: a read-only shared mapping of an open file, never read
    // through (reading would bring the pages in); unmapped below.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED, "mmap {}", path.display());
    let mut vec = vec![0u8; pages];
    // SAFETY: `vec` has a byte for each page of the mapping.
    let rc = unsafe { libc::mincore(map, len, vec.as_mut_ptr()) };
    let err = std::io::Error::last_os_error();
    // SAFETY: the mapping made above.
    unsafe { libc::munmap(map, len) };
    assert_eq!(rc, 0, "mincore {}: {err}", path.display());
    (vec.iter().filter(|&&b| b & 1 != 0).count(), pages)
}

/// Years of mail would push out of the page cache what the machine's other
/// programs use: what a conversion stored does not stay there. On disk,
/// in the build folder: a tmpfs keeps its pages whatever one advises.
#[test]
fn converted_messages_do_not_stay_in_the_page_cache() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let md = dir.path().join("md");
    let corpus = corpus_mbox("mboxrd");
    let md_arg = md.to_str().unwrap();
    let out = convert(&[
        "--folder",
        "INBOX",
        "--json",
        "--maildir",
        md_arg,
        corpus.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let files = support::messages(&md);
    assert_eq!(files.len(), 6046);
    let (cached, pages) = files
        .iter()
        .map(|f| cached_pages(f))
        .fold((0, 0), |(c, p), (fc, fp)| (c + fc, p + fp));
    assert!(pages > 6046, "{pages} pages");
    assert_eq!(cached, 0, "{cached} of {pages} pages still cached");
}

#[test]
fn a_pipe_is_a_source_too() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("md");
    let mbox = fs::read(format!("{DATA}/mbox-edge/content-length.mboxcl2")).unwrap();
    for run in 0..2 {
        let fifo = dir.path().join(format!("fifo{run}"));
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let writer = {
            let (fifo, mbox) = (fifo.clone(), mbox.clone());
            std::thread::spawn(move || fs::write(fifo, mbox).unwrap())
        };
        let out = convert(&[
            fifo.to_str().unwrap(),
            "--maildir",
            md.to_str().unwrap(),
            "--folder",
            "Piped",
            "--json",
        ]);
        writer.join().unwrap();
        assert!(out.status.success());
        let s = summary(&out);
        assert_eq!(
            (s["messages"].as_u64(), s["skipped"].as_u64()),
            if run == 0 {
                (Some(2), Some(0))
            } else {
                (Some(0), Some(2))
            }
        );
    }
    let got: Vec<Vec<u8>> = stored(&md.join(".Piped"))
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    assert_eq!(got[1], b"Subject: next\nContent-Length: 2\n\nok\n");
    assert!(got[0].starts_with(b"Subject: cl2\nContent-Length: 63\n\nFrom the body"));
    assert_eq!(
        fs::read_dir(md.join(".Piped/tmp")).unwrap().count(),
        0,
        "nothing left in tmp/"
    );
}

/// On a terminal: progress bars, one per file being read and one overall,
/// with messages, bytes, a rate and an ETA (drawn through `script`, from
/// bsdutils, which gives the command a pseudo-terminal). Not on a terminal:
/// nothing but the summary.
#[test]
fn mail_in_a_tree_that_is_not_converted_is_an_error_not_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("Mail");
    fs::create_dir(&tree).unwrap();
    let one = "From a@x Thu Aug 22 12:36:23 2002\nSubject: a\n\nbody\n";
    fs::write(tree.join("ok"), one).unwrap();
    // Classic Mac OS line ends; a file that cannot be read; a folder
    // deeper than the walk goes. Each is mail left behind: exit 1.
    fs::write(tree.join("mac"), one.replace('\n', "\r")).unwrap();
    std::os::unix::fs::symlink("/proc/self/mem", tree.join("unreadable")).unwrap();
    let deep: PathBuf = (1..=40).fold(tree.join("deep"), |p, i| p.join(format!("d{i}")));
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("leaf"), one).unwrap();
    // Beside them, files that are not mail stay notes.
    fs::write(tree.join("notes.txt"), "shopping list\n").unwrap();
    // A file name with an escape sequence and a line break in it.
    fs::write(tree.join("odd\x1b[31m\nownmail: fake"), "x\n").unwrap();

    let md = dir.path().join("md");
    let out = convert(&[
        tree.to_str().unwrap(),
        "--maildir",
        md.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        (
            summary(&out)["messages"].as_u64(),
            summary(&out)["errors"].as_u64()
        ),
        (Some(1), Some(3))
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (what, words) in [
        ("mac", "error: "),
        ("mac", "end in CR alone"),
        ("unreadable", "cannot read"),
        ("d32", "deeper than 32 levels"),
        ("notes.txt", "note: "),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.contains(what))
            .unwrap_or_default();
        assert!(line.contains(words), "{what}: {words:?} in {stderr}");
    }
    assert!(
        !stderr.contains('\x1b'),
        "an escape reached the terminal: {stderr:?}"
    );
    assert!(
        stderr.contains("odd\\u{1b}[31m\\nownmail: fake"),
        "{stderr}"
    );
    assert!(
        !stderr.lines().any(|l| l.starts_with("ownmail: fake")),
        "{stderr}"
    );

    let out = convert(&[
        tree.to_str().unwrap(),
        "--maildir",
        dir.path().join("strict").to_str().unwrap(),
        "--strict",
    ]);
    assert_eq!(out.status.code(), Some(65));
}

/// Root converting into a Maildir another user owns would leave files
/// only root can read: refused (77), naming the owner and the way to run
/// it, which works: that user reading the mbox from a pipe root made.
/// Needs root, as CI runs it (and `setpriv`, util-linux).
#[test]
fn root_is_refused_a_maildir_of_another_user_who_can_read_from_a_pipe() {
    // SAFETY: geteuid cannot fail.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test needs root (CI runs as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    // tempdir is 0700: let nobody through to its home.
    fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let md = home.join("Maildir");
    let mbox = format!("{DATA}/mbox-edge/content-length.mboxcl2");

    let out = convert(&[&mbox, "--maildir", md.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(77));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sudo -u nobody ownmail convert-mbox"),
        "{stderr}"
    );
    assert!(!md.exists(), "nothing made");

    let out = support::run(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_ownmail"))
            .args([
                "convert-mbox",
                "-",
                "--maildir",
                md.to_str().unwrap(),
                "--json",
            ])
            .env("XDG_CONFIG_HOME", "/nonexistent"),
        &fs::read(&mbox).unwrap(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(summary(&out)["messages"].as_u64(), Some(2));
    for (_, bytes) in stored(&md) {
        assert!(!bytes.is_empty());
    }
    use std::os::unix::fs::MetadataExt;
    assert!(
        support::messages(&md)
            .iter()
            .all(|f| fs::metadata(f).unwrap().uid() == 65534)
    );
}

#[test]
fn threads_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = format!("{DATA}/mbox-edge/content-length.mboxcl2");
    let md = dir.path().join("md");
    for (n, code) in [("0", 64), ("65", 64), ("20000", 64), ("64", 0)] {
        let out = convert(&[&mbox, "--maildir", md.to_str().unwrap(), "--threads", n]);
        assert_eq!(out.status.code(), Some(code), "--threads {n}");
    }
}

#[test]
fn a_dash_is_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("md");
    let mbox = fs::read(format!("{DATA}/mbox-edge/content-length.mboxcl2")).unwrap();
    let run = |extra: &[&str]| {
        let out = support::run(
            support::ownmail()
                .args([
                    "convert-mbox",
                    "-",
                    "--maildir",
                    md.to_str().unwrap(),
                    "--json",
                ])
                .args(extra),
            &mbox,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = summary(&out);
        (
            s["messages"].as_u64().unwrap(),
            s["skipped"].as_u64().unwrap(),
        )
    };
    // Into INBOX, once however often it is run; into --folder if given.
    assert_eq!(run(&[]), (2, 0));
    assert_eq!(run(&[]), (0, 2));
    assert_eq!(stored(&md).len(), 2);
    assert_eq!(run(&["--folder", "Archive/2009"]), (2, 0));
    assert_eq!(stored(&md.join(".Archive.2009")).len(), 2);
}

#[test]
fn progress_on_a_terminal_and_only_the_summary_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = corpus_mbox("mboxrd");
    let md = dir.path().join("tty");
    // What a shell command shows on a terminal (`script` gives it one).
    let on_terminal = |command: &str| {
        let out = Command::new("script")
            .args(["-q", "-e", "-c", command, "/dev/null"])
            .env("TERM", "xterm")
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .env_remove("OWNMAIL_CONFIG")
            .stdin(Stdio::null())
            .output()
            .expect("script (bsdutils) is needed for this test (scripts/install-peers.sh)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        text
    };
    let bin = env!("CARGO_BIN_EXE_ownmail");
    let text = on_terminal(&format!(
        "{bin} convert-mbox {} --maildir {}",
        mbox.display(),
        md.display()
    ));
    for part in [
        "messages",
        "ETA",
        "/s",
        "MiB",
        mbox.file_name().unwrap().to_str().unwrap(),
        "converted 6046 messages",
    ] {
        assert!(text.contains(part), "{part:?} not on the terminal: {text}");
    }

    // Standard input has no size to count down from: bytes and speed, but
    // no total (it would say "/0 B") and no ETA.
    let text = on_terminal(&format!(
        "cat {} | {bin} convert-mbox - --maildir {}",
        mbox.display(),
        dir.path().join("piped").display()
    ));
    assert!(text.contains("converted 6046 messages"), "{text}");
    assert!(text.contains("MiB/s"), "{text}");
    assert!(!text.contains("/0 B") && !text.contains("ETA"), "{text}");

    let plain = convert(&[
        mbox.to_str().unwrap(),
        "--maildir",
        dir.path().join("plain").to_str().unwrap(),
    ]);
    assert!(plain.status.success());
    assert!(plain.stderr.is_empty(), "no progress off a terminal");
    let stdout = String::from_utf8(plain.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("converted 6046 messages"), "{stdout}");
}

/// A disk that fills in mid-run: exit 75 (try again), nothing half-made
/// left behind, and once there is room a second run stores exactly what
/// the first did not. The file system is a 16 MB tmpfs in a mount
/// namespace of the test's own (`unshare`, util-linux), so no root and no
/// loop device are needed; a system without user namespaces fails the test.
#[test]
fn a_full_disk_stops_the_run_and_the_next_run_completes_it() {
    let mbox = corpus_mbox("mboxrd");
    let expected = python_messages("mboxrd");
    let want = expected.len();
    let dir = tempfile::tempdir().unwrap();
    let fs_dir = dir.path().join("fs");
    fs::create_dir(&fs_dir).unwrap();
    // Outputs go beside the tmpfs, which vanishes with the namespace.
    let script = r#"
        set -u
        bin=$1 mbox=$2 fs=$3 out=$4
        mount -t tmpfs -o size=16m ownmail-test "$fs" || exit 90
        "$bin" convert-mbox "$mbox" --maildir "$fs/md" --folder INBOX --keep-headers --json >"$out/first.json" 2>"$out/first.err"
        echo "first $?"
        echo "tmp $(ls -A "$fs/md/tmp" | wc -l)"
        echo "stored $(find "$fs/md/new" "$fs/md/cur" -type f | wc -l)"
        mount -o remount,size=256m "$fs" || exit 91
        "$bin" convert-mbox "$mbox" --maildir "$fs/md" --folder INBOX --keep-headers --json >"$out/second.json" 2>"$out/second.err"
        echo "second $?"
        cp -a "$fs/md" "$out/md"
    "#;
    let out = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(env!("CARGO_BIN_EXE_ownmail"))
        .arg(&mbox)
        .arg(&fs_dir)
        .arg(dir.path())
        .output()
        .expect("unshare (util-linux) is needed for this test");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: BTreeMap<&str, usize> = said
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k, v.trim().parse().unwrap()))
        .collect();
    let first_err = fs::read_to_string(dir.path().join("first.err")).unwrap();
    assert_eq!(got["first"], 75, "{first_err}");
    assert_eq!(first_err.lines().count(), 1, "{first_err}");
    assert!(first_err.contains("No space left on device"), "{first_err}");
    assert_eq!(got["tmp"], 0, "nothing half-made in tmp/");
    // What the batches synced before the disk filled: the first, usually
    // (the writers' failure can stop it from being named first, under load).
    let first = got["stored"];
    assert!(first < want, "{first} of {want} before the disk filled");
    // --json still says what was done, and why it stopped: the messages it
    // counts are durable, so at most those named in the folder.
    let first_json = fs::read(dir.path().join("first.json")).unwrap();
    let first_json: serde_json::Value = serde_json::from_slice(&first_json)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&first_json)));
    let counted = first_json["messages"].as_u64().unwrap() as usize;
    assert!(counted <= first, "{first_json} with {first} stored");
    assert!(
        first_json["error"]
            .as_str()
            .is_some_and(|e| e.contains("No space left on device")),
        "{first_json}"
    );

    assert_eq!(got["second"], 0);
    let second = fs::read(dir.path().join("second.json")).unwrap();
    let second: serde_json::Value = serde_json::from_slice(&second).unwrap();
    assert_eq!(second["skipped"].as_u64(), Some(first as u64));
    assert_eq!(second["messages"].as_u64(), Some((want - first) as u64));
    // Every message once (`stored` refuses two from one offset), whole.
    let got = stored(&dir.path().join("md"));
    assert_same_messages(&got, &expected, "after a full disk and a second run");
}

/// With --json, a run that ends on an error still prints one JSON object:
/// what was done before the error, and the error; the exit code and the
/// line on stderr are those of the error.
#[test]
fn json_is_printed_when_the_run_fails() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.mbox");
    let file = dir.path().join("file");
    fs::write(&file, "not a folder").unwrap();
    let good = dir.path().join("good.mbox");
    let message =
        |n: u32| format!("From a@b Thu Aug 22 12:36:{n:02} 2002\nSubject: {n}\n\nbody\n\n");
    fs::write(&good, (0..3).map(message).collect::<String>()).unwrap();
    let not_mbox = dir.path().join("notes.txt");
    fs::write(&not_mbox, "hello\n").unwrap();
    let md = dir.path().join("md");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    // (arguments, exit code, messages done, words of the error)
    let cases: Vec<(Vec<String>, i32, u64, String)> = vec![
        (
            vec![s(&missing), "--maildir".into(), s(&md)],
            66,
            0,
            format!("{}: No such file or directory", missing.display()),
        ),
        (
            vec![s(&good), "--maildir".into(), s(&file.join("Maildir"))],
            73,
            0,
            format!("{}: Not a directory", file.display()),
        ),
        (
            // One reader takes the larger file first: its three messages
            // are stored before the other stops the run.
            vec![
                s(&good),
                s(&not_mbox),
                "--maildir".into(),
                s(&md),
                "--strict".into(),
                "--threads".into(),
                "1".into(),
            ],
            65,
            3,
            format!("{}: not an mbox", not_mbox.display()),
        ),
    ];
    for (args, code, messages, words) in cases {
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.push("--json");
        let out = convert(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(&words), "{args:?}: {stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout.lines().count(), 1, "one object: {stdout}");
        let json: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: stdout {stdout:?}, stderr {stderr}"));
        for field in ["messages", "folders", "bytes", "skipped", "errors"] {
            assert!(json[field].is_u64(), "{field} in {json}");
        }
        assert!(json["seconds"].is_f64(), "{json}");
        assert_eq!(json["messages"].as_u64(), Some(messages), "{json}");
        let error = json["error"].as_str().unwrap_or_default();
        assert!(error.contains(&words), "{json}");
        assert_eq!(
            stderr.trim_end(),
            format!("ownmail: {error}"),
            "the same words on stderr"
        );
    }
    // A run that succeeds has no "error".
    let out = convert(&[&s(&good), "--maildir", &s(&md), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json.get("error").is_none(), "{json}");
    assert_eq!(json["skipped"].as_u64(), Some(3), "{json}");
}

/// With --json, SIGINT in the middle of a run: the run stops in order,
/// stdout has the JSON object counting exactly the messages stored, with
/// the error, and the process still ends by SIGINT as before.
#[test]
fn json_is_printed_when_the_run_is_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("big");
    let mut text = String::new();
    for n in 0..300_000 {
        text.push_str(&format!(
            "From a@b Thu Aug 22 12:36:00 2002\nSubject: {n}\n\nbody {n}\n\n"
        ));
    }
    fs::write(&mbox, text).unwrap();
    let md = dir.path().join("md");
    let child = support::ownmail()
        .args(["convert-mbox", mbox.to_str().unwrap(), "--maildir"])
        .arg(&md)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupted once the first messages are stored, long before the end.
    let started = std::time::Instant::now();
    while support::messages(&md.join(".big")).is_empty() {
        assert!(started.elapsed().as_secs() < 60, "nothing stored in 60 s");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // SAFETY: a signal to our own child, by its id.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGINT), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&out.stdout)));
    let stored = support::messages(&md.join(".big")).len() as u64;
    assert!(stored > 0 && stored < 300_000, "{stored}");
    assert_eq!(json["messages"].as_u64(), Some(stored), "{json}");
    assert!(
        json["error"]
            .as_str()
            .unwrap_or_default()
            .contains("interrupted"),
        "{json}"
    );
}
