//! The sendmail interface's message handling: read the message (up to a
//! lone dot unless `-i`), take recipients from the header with `-t`
//! (dropping `Bcc:`), add `Date:`, `From:` and `Message-ID:` when missing,
//! put a `Received:` on top, and turn line ends into CR LF for the queue.

use std::io::{self, BufRead};
use std::time::SystemTime;

use crate::proto::smtp::Path;

#[derive(Debug, Clone)]
pub struct Options {
    /// `-t`.
    pub from_headers: bool,
    /// `-i` / `-oi`.
    pub ignore_dots: bool,
    /// The envelope sender.
    pub sender: String,
    /// `-F`: the sender's name, for a `From:` the message lacks.
    pub full_name: Option<String>,
    /// The recipients on the command line.
    pub recipients: Vec<String>,
    /// For addresses without a domain, `Message-ID:` and `Received:`.
    pub domain: String,
    pub hostname: String,
    /// The most bytes read.
    pub max_size: u64,
    /// Who ran the command, for `Received:`.
    pub login: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("reading the message: {0}")]
    Read(io::Error),
    #[error("the message is bigger than smtp.max_message_size ({0} bytes)")]
    TooBig(u64),
    #[error("no recipients (give them as arguments, or use -t)")]
    NoRecipients,
    #[error("{0:?} is not an address")]
    BadAddress(String),
    #[error("the message is empty")]
    Empty,
}

impl crate::error::ExitStatus for SubmitError {
    fn exit_code(&self) -> u8 {
        use crate::error::sysexits;
        match self {
            SubmitError::Read(_) => sysexits::IOERR,
            SubmitError::TooBig(_) | SubmitError::Empty => sysexits::DATAERR,
            SubmitError::NoRecipients | SubmitError::BadAddress(_) => sysexits::USAGE,
        }
    }
}

/// What goes into the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub sender: String,
    pub recipients: Vec<String>,
    /// CR LF line ends.
    pub message: Vec<u8>,
}

/// Reads and prepares a message; `id` names it in `Received:`.
pub fn prepare(
    input: impl BufRead,
    opts: &Options,
    id: &str,
    now: SystemTime,
) -> Result<Submission, SubmitError> {
    let lines = read_lines(input, opts)?;
    if lines.iter().all(|l| l.is_empty()) {
        return Err(SubmitError::Empty);
    }
    // The header section: up to the first empty line, or the first line
    // that is neither a field nor a field's continuation (`echo text |
    // sendmail alice`): that one starts the body, after an empty line we
    // add (RFC 5322 2.1), as Postfix's cleanup does.
    let split = lines
        .iter()
        .enumerate()
        .position(|(i, l)| {
            l.is_empty()
                || !(is_field(l) || (i > 0 && (l.starts_with(b" ") || l.starts_with(b"\t"))))
        })
        .unwrap_or(lines.len());
    let (head, body) = lines.split_at(split);
    let add_blank = body.first().is_some_and(|l| !l.is_empty());
    let mut fields: Vec<Vec<u8>> = Vec::new();
    for line in head {
        match fields.last_mut() {
            Some(f) if line.starts_with(b" ") || line.starts_with(b"\t") => {
                f.extend_from_slice(b"\r\n");
                f.extend_from_slice(line);
            }
            _ => fields.push(line.clone()),
        }
    }
    let name_is = |f: &[u8], n: &str| {
        f.len() > n.len() && f[..n.len()].eq_ignore_ascii_case(n.as_bytes()) && f[n.len()] == b':'
    };
    let mut recipients = Vec::new();
    for r in &opts.recipients {
        recipients.push(normalize(r, &opts.domain)?);
    }
    if opts.from_headers {
        for f in &fields {
            if ["To", "Cc", "Bcc"].iter().any(|n| name_is(f, n)) {
                let mut raw = f.clone();
                raw.extend_from_slice(b"\r\n\r\n");
                let parsed = mail_parser::MessageParser::default().parse_headers(&raw[..]);
                if let Some(p) = parsed {
                    for addr in [p.to(), p.cc(), p.bcc()].into_iter().flatten() {
                        for a in addr.iter() {
                            if let Some(a) = a.address() {
                                recipients.push(normalize(a, &opts.domain)?);
                            }
                        }
                    }
                }
            }
        }
        fields.retain(|f| !name_is(f, "Bcc"));
    }
    let mut seen = std::collections::HashSet::new();
    recipients.retain(|r| seen.insert(r.to_lowercase()));
    if recipients.is_empty() {
        return Err(SubmitError::NoRecipients);
    }
    let mut out = Vec::new();
    let date = crate::smtp::received::rfc5322_date(now);
    out.extend_from_slice(
        format!(
            "Received: (from {}) by {} (ownmail sendmail) id {id}; {date}\r\n",
            opts.login.replace(['\r', '\n', '(', ')'], ""),
            opts.hostname
        )
        .as_bytes(),
    );
    // RFC 5322 3.6: Date: and From: are required; Message-ID: should be there.
    if !fields.iter().any(|f| name_is(f, "Date")) {
        out.extend_from_slice(format!("Date: {date}\r\n").as_bytes());
    }
    if !fields.iter().any(|f| name_is(f, "From")) {
        let from = if opts.sender.is_empty() {
            format!("MAILER-DAEMON@{}", opts.hostname)
        } else {
            opts.sender.clone()
        };
        match opts.full_name.as_deref().map(display_name) {
            Some(name) if !name.is_empty() && !opts.sender.is_empty() => {
                out.extend_from_slice(format!("From: {name} <{from}>\r\n").as_bytes())
            }
            _ => out.extend_from_slice(format!("From: {from}\r\n").as_bytes()),
        }
    }
    if !fields.iter().any(|f| name_is(f, "Message-ID")) {
        out.extend_from_slice(format!("Message-ID: <{id}@{}>\r\n", opts.hostname).as_bytes());
    }
    for f in &fields {
        out.extend_from_slice(f);
        out.extend_from_slice(b"\r\n");
    }
    if add_blank {
        out.extend_from_slice(b"\r\n");
    }
    for l in body {
        out.extend_from_slice(l);
        out.extend_from_slice(b"\r\n");
    }
    Ok(Submission {
        sender: opts.sender.clone(),
        recipients,
        message: out,
    })
}

/// A header field's first line: a name of printable ASCII but the colon,
/// then the colon (RFC 5322 2.2).
fn is_field(line: &[u8]) -> bool {
    match memchr::memchr(b':', line) {
        Some(colon) if colon > 0 => line[..colon].iter().all(|&b| (33..=126).contains(&b)),
        _ => false,
    }
}

/// `-F`'s name as a display name: as it is if it is words of plain
/// characters, else quoted (RFC 5322 3.4), or encoded if it is not ASCII
/// (RFC 2047). Line ends and other controls are dropped.
fn display_name(name: &str) -> String {
    let name: String = name.chars().filter(|c| !c.is_control()).collect();
    let name = name.trim();
    if !name.is_ascii() {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(name.as_bytes());
        return format!("=?UTF-8?B?{encoded}?=");
    }
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~ ".contains(c);
    if name.chars().all(atext) {
        return name.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

fn read_lines(mut input: impl BufRead, opts: &Options) -> Result<Vec<Vec<u8>>, SubmitError> {
    let mut lines = Vec::new();
    let mut total = 0u64;
    loop {
        let mut line = Vec::new();
        let n = io::Read::take(&mut input, opts.max_size + 1 - total.min(opts.max_size))
            .read_until(b'\n', &mut line)
            .map_err(SubmitError::Read)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > opts.max_size {
            return Err(SubmitError::TooBig(opts.max_size));
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if !opts.ignore_dots && line == b"." {
            break;
        }
        lines.push(line);
    }
    Ok(lines)
}

/// `alice` becomes `alice@<domain>`; anything else must be an address.
pub fn normalize(addr: &str, domain: &str) -> Result<String, SubmitError> {
    let a = addr.trim().trim_start_matches('<').trim_end_matches('>');
    let full = if a.contains('@') {
        a.to_owned()
    } else {
        format!("{a}@{domain}")
    };
    match crate::proto::smtp::parse_path(&format!("<{full}>"), false) {
        Ok(Path {
            mailbox: Some(m),
            source_route: false,
        }) => Ok(m.to_string()),
        _ => Err(SubmitError::BadAddress(addr.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn opts() -> Options {
        Options {
            from_headers: false,
            ignore_dots: false,
            sender: "root@example.org".into(),
            full_name: None,
            recipients: vec![],
            domain: "example.org".into(),
            hostname: "mx.example.org".into(),
            max_size: 1000,
            login: "root".into(),
        }
    }

    #[test]
    fn minus_t_takes_recipients_from_the_header_and_drops_bcc() {
        let o = Options {
            from_headers: true,
            recipients: vec!["alice".into()],
            ..opts()
        };
        let input = b"To: Bob <bob@example.net>, carol@example.net\nCc: alice@example.org\nBcc: secret@example.net,\n hidden@example.net\nSubject: x\n\nbody\n.\nnot read\n";
        let s = prepare(&input[..], &o, "ID", UNIX_EPOCH).unwrap();
        assert_eq!(
            s.recipients,
            [
                "alice@example.org",
                "bob@example.net",
                "carol@example.net",
                "secret@example.net",
                "hidden@example.net"
            ]
        );
        let text = String::from_utf8(s.message).unwrap();
        assert!(!text.contains("Bcc") && !text.contains("hidden"), "{text}");
        assert!(text.starts_with(
            "Received: (from root) by mx.example.org (ownmail sendmail) id ID; Thu, 1 Jan 1970"
        ));
        assert!(text.contains("\r\nDate: Thu, 1 Jan 1970 00:00:00 +0000\r\nFrom: root@example.org\r\nMessage-ID: <ID@mx.example.org>\r\nTo: Bob"));
        assert!(text.ends_with("Subject: x\r\n\r\nbody\r\n"), "{text}");
    }

    #[test]
    fn a_lone_dot_ends_the_message_unless_minus_i() {
        let input = b"Subject: x\n\n.\nmore\n";
        let o = Options {
            recipients: vec!["a@b.example".into()],
            ..opts()
        };
        let s = prepare(&input[..], &o, "I", UNIX_EPOCH).unwrap();
        assert!(
            String::from_utf8(s.message)
                .unwrap()
                .ends_with("Subject: x\r\n\r\n")
        );
        let o = Options {
            ignore_dots: true,
            ..o
        };
        let s = prepare(&input[..], &o, "I", UNIX_EPOCH).unwrap();
        assert!(
            String::from_utf8(s.message)
                .unwrap()
                .ends_with("\r\n.\r\nmore\r\n")
        );
    }

    #[test]
    fn lines_that_are_not_fields_start_the_body() {
        let o = Options {
            recipients: vec!["a@b.example".into()],
            ..opts()
        };
        let body_of = |input: &[u8]| {
            let s = prepare(input, &o, "I", UNIX_EPOCH).unwrap();
            let text = String::from_utf8(s.message).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").expect("an empty line");
            (head.to_owned(), body.to_owned())
        };
        // `echo text | sendmail alice`: all of it is the body.
        let (head, body) = body_of(b"backup finished OK\n");
        assert_eq!(body, "backup finished OK\r\n");
        assert!(
            head.contains("\r\nMessage-ID: <I@mx.example.org>"),
            "{head}"
        );
        assert!(!head.contains("backup"), "{head}");
        // A header, then a line that is not a field.
        let (head, body) = body_of(b"Subject: disk report\n/dev/sda1 95% full\nsecond: line\n");
        assert!(head.ends_with("\r\nSubject: disk report"), "{head}");
        assert_eq!(body, "/dev/sda1 95% full\r\nsecond: line\r\n");
        // Continuation lines stay in the header; the empty line is not doubled.
        let (head, body) = body_of(b"Subject: a\n long\nX-A: b\n\nbody\n");
        assert!(head.ends_with("Subject: a\r\n long\r\nX-A: b"), "{head}");
        assert_eq!(body, "body\r\n");
        // A first line that looks like a continuation is body.
        let (_, body) = body_of(b" indented\n");
        assert_eq!(body, " indented\r\n");
        let (_, body) = body_of(b"\tindented\n");
        assert_eq!(body, "\tindented\r\n");
    }

    #[test]
    fn minus_f_names_the_sender_of_a_message_without_from() {
        let from = |name: &str, input: &[u8]| {
            let o = Options {
                recipients: vec!["a@b.example".into()],
                full_name: Some(name.into()),
                ..opts()
            };
            let text =
                String::from_utf8(prepare(input, &o, "I", UNIX_EPOCH).unwrap().message).unwrap();
            text.lines()
                .find(|l| l.starts_with("From: "))
                .map(str::to_owned)
                .unwrap_or_default()
        };
        assert_eq!(
            from("CronDaemon", b"Subject: x\n\ny\n"),
            "From: CronDaemon <root@example.org>"
        );
        assert_eq!(
            from("Cron Daemon (host)", b"S: x\n\ny\n"),
            "From: \"Cron Daemon (host)\" <root@example.org>"
        );
        assert_eq!(
            from("a\"b\r\nBcc: x", b"S: x\n\ny\n"),
            "From: \"a\\\"bBcc: x\" <root@example.org>"
        );
        assert_eq!(
            from("Jürgen", b"S: x\n\ny\n"),
            "From: =?UTF-8?B?SsO8cmdlbg==?= <root@example.org>"
        );
        // The message's own From: wins.
        assert_eq!(
            from("CronDaemon", b"From: me@example.net\n\ny\n"),
            "From: me@example.net"
        );
    }

    #[test]
    fn refusals() {
        let o = opts();
        assert!(matches!(
            prepare(&b"X: 1\n\n"[..], &o, "I", UNIX_EPOCH),
            Err(SubmitError::NoRecipients)
        ));
        let o = Options {
            recipients: vec!["a b@c".into()],
            ..opts()
        };
        assert!(matches!(
            prepare(&b"X: 1\n\n"[..], &o, "I", UNIX_EPOCH),
            Err(SubmitError::BadAddress(_))
        ));
        let o = Options {
            recipients: vec!["a@b.example".into()],
            max_size: 10,
            ..opts()
        };
        assert!(matches!(
            prepare(&b"X: 1234567890\n\n"[..], &o, "I", UNIX_EPOCH),
            Err(SubmitError::TooBig(10))
        ));
        assert!(matches!(
            prepare(&b""[..], &o, "I", UNIX_EPOCH),
            Err(SubmitError::Empty)
        ));
    }
}
