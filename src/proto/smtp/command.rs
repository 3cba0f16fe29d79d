//! Parsing one command line (its CR LF already removed) into a
//! [`Command`], and reverse paths and forward paths into [`Path`]s
//! (RFC 5321 4.1.1, 4.1.2). Nothing here decides; it only reads.

use super::reply::Reply;

// RFC 5321 4.5.3.1.1 names 64 octets for a local part, but as the least
// a server must take (4.5.3.1: "implementation techniques that impose no
// limits on the length of these objects should be used"): VERP and SRS
// bounce addresses run longer, so no limit is enforced here. The command
// line (`MAX_COMMAND_LINE`) bounds it.
/// RFC 5321 4.5.3.1.2: a domain is at most 255 octets.
pub const MAX_DOMAIN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    Mail {
        path: Path,
        params: MailParams,
    },
    Rcpt {
        path: Path,
    },
    Data,
    /// RFC 3030 2: a chunk of `size` octets follows the line.
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Vrfy,
    Help,
    StartTls,
    /// RFC 4954 4: `AUTH mechanism [initial-response]`.
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    /// EXPN, TURN, ETRN and other commands we know and do not offer.
    NotImplemented,
}

/// The parameters of MAIL FROM we understand (RFC 1870, 6152, 6531, 4954 5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// SIZE=, the client's estimate.
    pub size: Option<u64>,
    /// BODY=8BITMIME.
    pub eight_bit: bool,
    /// SMTPUTF8.
    pub smtputf8: bool,
}

/// A reverse or forward path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// `<>`: the null reverse path of a bounce (RFC 5321 4.5.5).
    pub mailbox: Option<Mailbox>,
    /// `<@a,@b:user@c>`: an RFC 821 source route was given.
    pub source_route: bool,
}

/// `local@domain`. The local part is as written, quotes removed; the
/// domain in lower case, a trailing dot removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub local: String,
    pub domain: String,
    /// The local part was a quoted string.
    pub quoted: bool,
}

impl Mailbox {
    /// Whether the local part holds characters that old mailers route on
    /// (`%`, `!`, `@`): `user%other@us`, `host!user@us`, `"a@b"@us`.
    pub fn has_routing_characters(&self) -> bool {
        self.local.contains(['%', '!', '@'])
    }

    pub fn is_ascii(&self) -> bool {
        self.local.is_ascii() && self.domain.is_ascii()
    }
}

impl std::fmt::Display for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.quoted || self.local.is_empty() || !is_dot_string(&self.local) {
            write!(f, "\"")?;
            for c in self.local.chars() {
                if c == '"' || c == '\\' {
                    write!(f, "\\")?;
                }
                write!(f, "{c}")?;
            }
            write!(f, "\"@{}", self.domain)
        } else {
            write!(f, "{}@{}", self.local, self.domain)
        }
    }
}

/// Parses one command line. The errors are replies.
pub fn parse(line: &[u8]) -> Result<Command, Reply> {
    let line = std::str::from_utf8(line).map_err(|_| Reply::SYNTAX_ERROR)?;
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    let no_args = |c: Command| {
        if rest.trim().is_empty() {
            Ok(c)
        } else {
            Err(Reply::PARAM_SYNTAX)
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" | "HELO" => {
            let name = rest.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(Reply::PARAM_SYNTAX.with_text("EHLO and HELO need exactly one name"));
            }
            Ok(if verb.eq_ignore_ascii_case("EHLO") {
                Command::Ehlo(name.to_owned())
            } else {
                Command::Helo(name.to_owned())
            })
        }
        "MAIL" => {
            let rest = strip_prefix_ci(rest, "FROM:").ok_or(Reply::PARAM_SYNTAX)?;
            // RFC 3463 3.2: a bad reverse path is the sender's X.1.7, not
            // the recipient's X.1.3 that the path parser answers.
            let sender = |r: Reply| {
                if r.code == Reply::ADDRESS_SYNTAX.code && r.status == Reply::ADDRESS_SYNTAX.status
                {
                    Reply::SENDER_SYNTAX
                } else {
                    r
                }
            };
            let (path, params) = split_path(rest).map_err(sender)?;
            let path = parse_path(path, true).map_err(sender)?;
            Ok(Command::Mail {
                path,
                params: parse_mail_params(params)?,
            })
        }
        "RCPT" => {
            let rest = strip_prefix_ci(rest, "TO:").ok_or(Reply::PARAM_SYNTAX)?;
            let (path, params) = split_path(rest)?;
            // RFC 5321 4.5.1: `RCPT TO:<Postmaster>` without a domain.
            let path = if path.eq_ignore_ascii_case("<postmaster>") {
                Path {
                    mailbox: Some(Mailbox {
                        local: "postmaster".into(),
                        domain: String::new(),
                        quoted: false,
                    }),
                    source_route: false,
                }
            } else {
                parse_path(path, false)?
            };
            if !params.trim().is_empty() {
                // DSN (NOTIFY=, ORCPT=) is not offered.
                return Err(Reply::PARAM_NOT_IMPLEMENTED);
            }
            Ok(Command::Rcpt { path })
        }
        "DATA" => no_args(Command::Data),
        "BDAT" => {
            let mut words = rest.split(' ').filter(|w| !w.is_empty());
            let size = words
                .next()
                .filter(|w| w.len() <= 19 && w.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|w| w.parse::<u64>().ok())
                .ok_or(Reply::PARAM_SYNTAX)?;
            let last = match words.next() {
                None => false,
                Some(w) if w.eq_ignore_ascii_case("LAST") => true,
                Some(_) => return Err(Reply::PARAM_SYNTAX),
            };
            if words.next().is_some() {
                return Err(Reply::PARAM_SYNTAX);
            }
            Ok(Command::Bdat { size, last })
        }
        "RSET" => no_args(Command::Rset),
        // RFC 5321 4.1.1.9: NOOP may have an argument, which is ignored.
        "NOOP" => Ok(Command::Noop),
        "QUIT" => no_args(Command::Quit),
        // RFC 5321 4.1.1.6: `"VRFY" SP String`; the string is required.
        "VRFY" if rest.trim().is_empty() => Err(Reply::PARAM_SYNTAX),
        "VRFY" => Ok(Command::Vrfy),
        "HELP" => Ok(Command::Help),
        "STARTTLS" => no_args(Command::StartTls),
        "AUTH" => {
            let mut words = rest.split(' ').filter(|w| !w.is_empty());
            let mechanism = words
                .next()
                .ok_or(Reply::PARAM_SYNTAX)?
                .to_ascii_uppercase();
            let initial = words.next().map(str::to_owned);
            if words.next().is_some() {
                return Err(Reply::PARAM_SYNTAX);
            }
            Ok(Command::Auth { mechanism, initial })
        }
        "EXPN" | "TURN" | "ETRN" | "SEND" | "SOML" | "SAML" => Ok(Command::NotImplemented),
        _ => Err(Reply::SYNTAX_ERROR),
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    // Many clients write `MAIL FROM: <a@b>`; RFC 5321 has no space, but
    // refusing it helps nobody.
    head.eq_ignore_ascii_case(prefix)
        .then(|| s[prefix.len()..].trim_start_matches(' '))
}

/// Splits `<path> params` where the path may hold spaces inside quotes.
fn split_path(s: &str) -> Result<(&str, &str), Reply> {
    if !s.starts_with('<') {
        return Err(Reply::ADDRESS_SYNTAX);
    }
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '>' if !in_quotes => {
                let rest = &s[i + 1..];
                if !rest.is_empty() && !rest.starts_with(' ') {
                    return Err(Reply::ADDRESS_SYNTAX);
                }
                return Ok((&s[..=i], rest));
            }
            _ => {}
        }
    }
    Err(Reply::ADDRESS_SYNTAX)
}

/// RFC 5321 4.1.2: `"<" [ A-d-l ":" ] Mailbox ">"`, or `<>` when `null_ok`.
pub fn parse_path(s: &str, null_ok: bool) -> Result<Path, Reply> {
    let inner = s
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .ok_or(Reply::ADDRESS_SYNTAX)?;
    if inner.is_empty() {
        return if null_ok {
            Ok(Path {
                mailbox: None,
                source_route: false,
            })
        } else {
            Err(Reply::ADDRESS_SYNTAX)
        };
    }
    let (source_route, mailbox) = if inner.starts_with('@') {
        // `@a,@b:mailbox`: the route ends at the first colon.
        let colon = inner.find(':').ok_or(Reply::ADDRESS_SYNTAX)?;
        for hop in inner[..colon].split(',') {
            let domain = hop.strip_prefix('@').ok_or(Reply::ADDRESS_SYNTAX)?;
            parse_domain(domain)?;
        }
        (true, &inner[colon + 1..])
    } else {
        (false, inner)
    };
    Ok(Path {
        mailbox: Some(parse_mailbox(mailbox)?),
        source_route,
    })
}

fn parse_mailbox(s: &str) -> Result<Mailbox, Reply> {
    let (local, quoted, domain) = if let Some(body) = s.strip_prefix('"') {
        let mut local = String::new();
        let mut chars = body.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, c)) if c == ' ' || !c.is_control() => local.push(c),
                    _ => return Err(Reply::ADDRESS_SYNTAX),
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c if c.is_control() => return Err(Reply::ADDRESS_SYNTAX),
                c => local.push(c),
            }
        }
        let end = end.ok_or(Reply::ADDRESS_SYNTAX)?;
        let domain = body[end + 1..]
            .strip_prefix('@')
            .ok_or(Reply::ADDRESS_SYNTAX)?;
        (local, true, domain)
    } else {
        // A dot-string cannot hold `@`: `user@other@us` fails here.
        let (local, domain) = s.split_once('@').ok_or(Reply::ADDRESS_SYNTAX)?;
        if !is_dot_string(local) {
            return Err(Reply::ADDRESS_SYNTAX);
        }
        (local.to_owned(), false, domain)
    };
    Ok(Mailbox {
        local,
        domain: parse_domain(domain)?,
        quoted,
    })
}

/// RFC 5321 4.1.2 Dot-string; UTF-8 allowed (RFC 6531 3.3), checked
/// against SMTPUTF8 by the session.
fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
        && s.chars().all(|c| {
            c == '.'
                || (c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c))
                || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
        })
}

/// A domain or an address literal (`[192.0.2.1]`, `[IPv6:...]`), lower
/// case, without a trailing dot.
fn parse_domain(s: &str) -> Result<String, Reply> {
    if s.len() > MAX_DOMAIN || s.is_empty() {
        return Err(Reply::ADDRESS_SYNTAX);
    }
    if let Some(lit) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        let ok = lit.parse::<std::net::Ipv4Addr>().is_ok()
            || lit
                .get(..5)
                .is_some_and(|p| p.eq_ignore_ascii_case("IPv6:"))
                && lit[5..].parse::<std::net::Ipv6Addr>().is_ok();
        return if ok {
            Ok(s.to_ascii_lowercase())
        } else {
            Err(Reply::ADDRESS_SYNTAX)
        };
    }
    let d = s.strip_suffix('.').unwrap_or(s);
    let ok = d.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| {
                c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric())
            })
    });
    if ok {
        Ok(d.to_lowercase())
    } else {
        Err(Reply::ADDRESS_SYNTAX)
    }
}

fn parse_mail_params(s: &str) -> Result<MailParams, Reply> {
    let mut p = MailParams::default();
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        match (key.to_ascii_uppercase().as_str(), value) {
            ("SIZE", Some(v)) => {
                // RFC 1870 6: digits; a number too big for u64 is surely too big.
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Reply::PARAM_SYNTAX);
                }
                p.size = Some(v.parse().unwrap_or(u64::MAX));
            }
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => p.eight_bit = true,
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => p.eight_bit = false,
            ("SMTPUTF8", None) => p.smtputf8 = true,
            // RFC 4954 5: AUTH= on MAIL is accepted and not trusted.
            ("AUTH", Some(_)) => {}
            _ => return Err(Reply::PARAM_NOT_IMPLEMENTED),
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(local: &str, domain: &str, quoted: bool) -> Mailbox {
        Mailbox {
            local: local.into(),
            domain: domain.into(),
            quoted,
        }
    }

    #[test]
    fn commands_parse_or_name_their_error() {
        let cases: &[(&str, Result<Command, Reply>)] = &[
            (
                "EHLO client.example",
                Ok(Command::Ehlo("client.example".into())),
            ),
            ("helo [192.0.2.1]", Ok(Command::Helo("[192.0.2.1]".into()))),
            (
                "EHLO",
                Err(Reply::PARAM_SYNTAX.with_text("EHLO and HELO need exactly one name")),
            ),
            ("DATA", Ok(Command::Data)),
            ("DATA x", Err(Reply::PARAM_SYNTAX)),
            (
                "BDAT 100",
                Ok(Command::Bdat {
                    size: 100,
                    last: false,
                }),
            ),
            (
                "BDAT 0 LAST",
                Ok(Command::Bdat {
                    size: 0,
                    last: true,
                }),
            ),
            ("BDAT -1", Err(Reply::PARAM_SYNTAX)),
            ("BDAT 99999999999999999999", Err(Reply::PARAM_SYNTAX)),
            ("BDAT 1 FIRST", Err(Reply::PARAM_SYNTAX)),
            ("NOOP anything", Ok(Command::Noop)),
            ("quit", Ok(Command::Quit)),
            ("VRFY alice", Ok(Command::Vrfy)),
            ("VRFY", Err(Reply::PARAM_SYNTAX)),
            ("VRFY  ", Err(Reply::PARAM_SYNTAX)),
            ("EXPN staff", Ok(Command::NotImplemented)),
            ("FOO", Err(Reply::SYNTAX_ERROR)),
            (
                "AUTH plain AGFsaWNlAHB3",
                Ok(Command::Auth {
                    mechanism: "PLAIN".into(),
                    initial: Some("AGFsaWNlAHB3".into()),
                }),
            ),
            ("AUTH", Err(Reply::PARAM_SYNTAX)),
            (
                "RCPT TO:<a@b.org> NOTIFY=NEVER",
                Err(Reply::PARAM_NOT_IMPLEMENTED),
            ),
            (
                "MAIL FROM:<a@b.org> RET=FULL",
                Err(Reply::PARAM_NOT_IMPLEMENTED),
            ),
            ("MAIL FROM:<a@b.org> SIZE=x", Err(Reply::PARAM_SYNTAX)),
            ("MAIL FROM:a@b.org", Err(Reply::SENDER_SYNTAX)),
            ("MAIL TO:<a@b.org>", Err(Reply::PARAM_SYNTAX)),
            ("MAIL FROM:<a@b.org>x", Err(Reply::SENDER_SYNTAX)),
        ];
        for (line, expected) in cases {
            assert_eq!(&parse(line.as_bytes()), expected, "{line}");
        }
        let Ok(Command::Mail { path, params }) =
            parse(b"MAIL FROM: <a@B.org.> SIZE=1000 BODY=8BITMIME SMTPUTF8 AUTH=<>")
        else {
            panic!()
        };
        assert_eq!(path.mailbox, Some(mb("a", "b.org", false)));
        assert_eq!(
            params,
            MailParams {
                size: Some(1000),
                eight_bit: true,
                smtputf8: true
            }
        );
        assert_eq!(
            parse(b"MAIL FROM:<>"),
            Ok(Command::Mail {
                path: Path {
                    mailbox: None,
                    source_route: false
                },
                params: MailParams::default()
            })
        );
        assert_eq!(parse(b"RCPT TO:<>"), Err(Reply::ADDRESS_SYNTAX));
    }

    #[test]
    #[allow(clippy::type_complexity)] // a table of cases
    fn paths_keep_what_relay_checks_need() {
        let cases: &[(&str, Result<(Mailbox, bool), Reply>)] = &[
            (
                "<alice@example.org>",
                Ok((mb("alice", "example.org", false), false)),
            ),
            (
                "<user%other@example.org>",
                Ok((mb("user%other", "example.org", false), false)),
            ),
            (
                "<\"user@other\"@example.org>",
                Ok((mb("user@other", "example.org", true), false)),
            ),
            (
                "<\"a\\\"b c\"@x.org>",
                Ok((mb("a\"b c", "x.org", true), false)),
            ),
            (
                "<@example.org,@b.org:user@other.net>",
                Ok((mb("user", "other.net", false), true)),
            ),
            (
                "<host!user@example.org>",
                Ok((mb("host!user", "example.org", false), false)),
            ),
            ("<user@other@example.org>", Err(Reply::ADDRESS_SYNTAX)),
            ("<host!user>", Err(Reply::ADDRESS_SYNTAX)),
            ("<a..b@x.org>", Err(Reply::ADDRESS_SYNTAX)),
            ("<a@-x.org>", Err(Reply::ADDRESS_SYNTAX)),
            (
                "<a@[192.0.2.1]>",
                Ok((mb("a", "[192.0.2.1]", false), false)),
            ),
            ("<a@[IPv6:::1]>", Ok((mb("a", "[ipv6:::1]", false), false))),
            ("<a@[300.0.0.1]>", Err(Reply::ADDRESS_SYNTAX)),
            (
                "<δοκιμή@παράδειγμα.δοκιμή>",
                Ok((mb("δοκιμή", "παράδειγμα.δοκιμή", false), false)),
            ),
        ];
        for (text, expected) in cases {
            let got = parse_path(text, false).map(|p| (p.mailbox.unwrap(), p.source_route));
            assert_eq!(&got, expected, "{text}");
        }
        let long = format!("<{}@x.org>", "a".repeat(65));
        assert_eq!(
            parse_path(&long, false).map(|p| p.mailbox.unwrap().local.len()),
            Ok(65)
        );
        assert_eq!(mb("a b", "x.org", true).to_string(), "\"a b\"@x.org");
        assert_eq!(mb("a", "x.org", false).to_string(), "a@x.org");
    }
}
