//! Tests of the filter as a whole: headers, tagging, bounds, hostile input.

use super::*;

fn verdict(score: f64, tests: &[&str]) -> Verdict {
    Verdict {
        score,
        required: 5.0,
        probability: None,
        hits: tests
            .iter()
            .map(|t| Hit {
                name: (*t).to_owned(),
                score: 1.0,
                description: String::new(),
            })
            .collect(),
        too_big: false,
    }
}

#[test]
fn headers_in_spamassassin_format() {
    let v = verdict(7.3, &["HTML_ONLY", "BAYES_99"]);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        v.headers("\n"),
        format!(
            "X-Spam-Checker-Version: ownmail {version}\nX-Spam-Flag: YES\nX-Spam-Score: 7.3\nX-Spam-Level: *******\n\
X-Spam-Status: Yes, score=7.3 required=5.0 tests=BAYES_99,HTML_ONLY\n\tautolearn=no autolearn_force=no version=ownmail-{version}\n"
        )
    );
    let ham = verdict(-2.05, &[]).headers("\r\n");
    assert!(ham.contains("X-Spam-Level: \r\n"), "{ham}");
    assert!(
        ham.contains("X-Spam-Status: No, score=-2.0 required=5.0 tests=none autolearn=no"),
        "{ham}"
    );
    assert!(!ham.contains("X-Spam-Flag"));
    // A long list folds after commas, each line at most 78 columns.
    let many = verdict(
        9.0,
        &[
            "BAYES_999",
            "DATE_IN_FUTURE",
            "HTML_ONLY",
            "INVALID_MSGID",
            "MISSING_MID",
            "OBFUSCATED_TEXT",
            "SUBJ_ALL_CAPS",
            "URI_NUMERIC_IP",
        ],
    )
    .headers("\n");
    for line in many.lines() {
        assert!(line.len() <= 78, "{line:?}");
    }
    assert!(many.contains("tests=BAYES_999,DATE_IN_FUTURE,\n\tHTML_ONLY,INVALID_MSGID,MISSING_MID,OBFUSCATED_TEXT,SUBJ_ALL_CAPS,\n\tURI_NUMERIC_IP autolearn=no"), "{many}");
    let big = Verdict {
        too_big: true,
        ..verdict(0.0, &[])
    };
    assert!(
        big.headers("\n")
            .contains("X-Spam-Status: No, score=0.0 required=5.0 tests=none autolearn=no")
    );
    assert!(big.headers("\n").trim_end().ends_with("too big"));
    assert!(!big.is_spam());
}

#[test]
fn tagging_removes_senders_x_spam_fields_and_keeps_the_rest() {
    let v = verdict(1.0, &[]);
    let msg = b"From bob@x Mon Jan  1 00:00:00 2024\nReturn-Path: <bob@x>\nX-Spam-Flag: YES\nSubject: hi\nx-spam-status: No,\n\tscore=-100\nX-Spam: keep? no\nX-Spammy: kept\n\nX-Spam-Flag: in the body stays\n";
    let tagged = String::from_utf8(tag(msg, &v)).unwrap();
    let want = format!(
        "From bob@x Mon Jan  1 00:00:00 2024\nReturn-Path: <bob@x>\n{}Subject: hi\nX-Spam: keep? no\nX-Spammy: kept\n\nX-Spam-Flag: in the body stays\n",
        v.headers("\n")
    );
    assert_eq!(tagged, want);
    // CRLF in, CRLF out; no header section at all still gets ours.
    let crlf = tag(b"Subject: a\r\n\r\nb\r\n", &v);
    assert!(
        crlf.starts_with(b"X-Spam-Checker-Version: ownmail")
            && crlf.ends_with(b"\r\nSubject: a\r\n\r\nb\r\n")
    );
    assert!(!String::from_utf8_lossy(&crlf).contains("\n\n"));
    assert_eq!(tag(b"", &v), v.headers("\n").as_bytes());
}

fn trained_filter(dir: &Path) -> Filter {
    let db = dir.join("site.db");
    let spam: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("Subject: cheap pills {i}\nFrom: seller{i}@pills.example\n\nbuy cheap viagra pills now, best price guaranteed\n").into_bytes())
        .collect();
    let ham: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("Subject: meeting notes {i}\nFrom: colleague@work.example\n\nthe meeting about the project schedule is moved to thursday\n").into_bytes())
        .collect();
    learn_into(&db, Class::Spam, false, spam.iter().map(|m| m.as_slice())).unwrap();
    learn_into(&db, Class::Ham, false, ham.iter().map(|m| m.as_slice())).unwrap();
    Filter::with_databases(Rules::default(), 5.0, &[db]).unwrap()
}

#[test]
fn a_trained_filter_tells_spam_from_ham() {
    let dir = tempfile::tempdir().unwrap();
    let f = trained_filter(dir.path());
    let spam = f.check(b"Subject: cheap pills\nFrom: x@pills.example\nDate: Mon, 7 Oct 2002 10:00:00 +0000\nMessage-ID: <a@b>\nTo: y@z\n\nbuy viagra now, best price\n");
    assert!(spam.is_spam(), "{spam:?}");
    assert!(spam.probability.unwrap() > 0.99);
    assert!(spam.hits.iter().any(|h| h.name.starts_with("BAYES_99")));
    // The body alone is spam: BAYES_BODY_99, though the headers are a
    // colleague's.
    let posted = f.check(b"Subject: meeting notes\nFrom: colleague@work.example\nDate: Mon, 7 Oct 2002 10:00:00 +0000\nMessage-ID: <a@b>\nTo: y@z\n\nbuy cheap viagra pills now, best price guaranteed\n");
    assert!(
        posted
            .hits
            .iter()
            .any(|h| h.name == "BAYES_BODY_99" && h.score == 2.5),
        "{posted:?}"
    );
    assert!(spam.hits.iter().any(|h| h.name == "BAYES_BODY_99"));
    let ham = f.check(b"Subject: meeting\nFrom: colleague@work.example\nDate: Mon, 7 Oct 2002 10:00:00 +0000\nMessage-ID: <a@b>\nTo: y@z\n\nthe project meeting is on thursday\n");
    assert!(!ham.is_spam() && ham.probability.unwrap() < 0.01, "{ham:?}");
    assert!(ham.hits.iter().all(|h| h.name != "BAYES_BODY_99"));
    assert!(ham.score < 0.0);
    // Untrained: rules only, no Bayes.
    let empty =
        Filter::with_databases(Rules::default(), 5.0, &[dir.path().join("none.db")]).unwrap();
    let v = empty.check(b"Subject: x\n\ny\n");
    assert_eq!(v.probability, None);
    let names: Vec<&str> = v.hits.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        ["MISSING_DATE", "MISSING_FROM", "MISSING_MID", "MISSING_TO"]
    );
    assert_eq!(v.score, 2.8);
}

#[test]
fn scan_streams_big_messages_through_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let f = trained_filter(dir.path());
    let mut big = b"X-Spam-Flag: YES\nSubject: big\n\n".to_vec();
    big.resize(MAX_SCAN_BYTES + 1000, b'a');
    let start = std::time::Instant::now();
    let (v, mut reader) = f.scan(&big[..]).unwrap();
    assert!(v.too_big && !v.is_spam());
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    let head = v.headers("\n");
    assert!(head.contains("X-Spam-Status: No, score=0.0") && head.contains("too big"));
    assert_eq!(&out[..head.len()], head.as_bytes());
    assert_eq!(
        &out[head.len()..],
        &big[17..],
        "the sender's X-Spam-Flag goes, the rest is untouched"
    );
    assert!(start.elapsed().as_secs() < 5);
    let (v, _) = f
        .scan(&b"Subject: small\n\nbuy cheap viagra pills now\n"[..])
        .unwrap();
    assert!(!v.too_big);
}

/// Hostile input: every case gives a verdict, fast, without a panic.
#[test]
fn hostile_messages_get_a_verdict_in_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    let f = trained_filter(dir.path());
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // Deep nesting: 5,000 nested multiparts.
    let mut deep = b"Subject: deep\n".to_vec();
    for i in 0..5000 {
        deep.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n").as_bytes(),
        );
    }
    deep.extend_from_slice(b"Content-Type: text/plain\n\nbottom\n");
    cases.push(("deep multipart nesting", deep));
    // Deep message/rfc822 nesting.
    let mut rfc822 = Vec::new();
    for _ in 0..2000 {
        rfc822.extend_from_slice(b"Content-Type: message/rfc822\n\n");
    }
    rfc822.extend_from_slice(b"Subject: inner\n\nx\n");
    cases.push(("deep message/rfc822", rfc822));
    // Many tiny parts, up to the scan limit (about 400,000).
    let mut tiny = b"Subject: tiny\nContent-Type: multipart/mixed; boundary=t\n\n".to_vec();
    while tiny.len() < MAX_SCAN_BYTES - 16 {
        tiny.extend_from_slice(b"--t\n\nx\n");
    }
    cases.push(("400,000 tiny parts", tiny));
    // Invalid charsets and broken encodings.
    cases.push((
        "invalid charset",
        b"Subject: =?x-unknown?B?!!!?=\nContent-Type: text/plain; charset=\"x-\xff\xfe\"\nContent-Transfer-Encoding: base64\n\n\xff\xfe!!!====\n".to_vec(),
    ));
    cases.push((
        "garbage",
        (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
    ));
    cases.push(("empty", Vec::new()));
    cases.push(("no header", b"\n\n\n".to_vec()));
    let mut html = b"Subject: h\nContent-Type: text/html\n\n".to_vec();
    for _ in 0..100_000 {
        html.extend_from_slice(b"<a href=\"http://1.2.3.4/\"><!--");
    }
    cases.push(("unclosed html", html));
    let long_line = [b"Subject: l\n\n".as_slice(), &vec![b'x'; 3 << 20]].concat();
    cases.push(("one 3 MB word", long_line));
    for (name, msg) in cases {
        let start = std::time::Instant::now();
        let v = f.check(&msg);
        let took = start.elapsed();
        assert!(took.as_secs_f64() < 5.0, "{name}: {took:?}");
        assert!(v.score.is_finite(), "{name}");
        let _ = tag(&msg, &v);
    }
}
