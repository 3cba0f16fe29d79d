//! The `fetch:` section: the remote POP3 and IMAP accounts `ownmail fetch`
//! empties (or copies) into local mailboxes.
//!
//! ```yaml
//! fetch:
//!   accounts:
//!     - name: isp                 # letters, digits, . _ -; names the state and the lock
//!       protocol: pop3            # or imap
//!       host: pop.isp.example
//!       port: 995                 # default by protocol and tls: 995/110, 993/143
//!       tls: tls                  # tls | starttls | none (none only to loopback, or with allow_plaintext: true)
//!       tls_fingerprint: sha256:AB:CD:...   # pin a self-signed certificate instead of the system's CAs
//!       username: me
//!       password_file: isp.pass   # or password_command: "pass show isp", or token_command (OAuth2)
//!       auth: auto                # pop3: user | apop | plain; imap: login | plain; both: xoauth2 | oauthbearer
//!       keep: false               # leave mail on the server?
//!       folders: [INBOX]          # imap only
//!       deliver_to: {user: alice} # or {maildir: PATH} or {mda: "procmail -d alice"}
//!                                 # or {smtp: "127.0.0.1:25", recipient: alice@example.org};
//!                                 # user and maildir take an optional folder: NAME
//!       max_size: 50M             # bigger messages are left on the server and reported
//!       delete_rejected: false    # delete a message delivery refused for good? (it is then lost)
//! ```
//!
//! Validation follows the rest of the file: unknown keys are errors, and
//! every error names the line and the key (`fetch.accounts[isp].port`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, Serializer};
use serde_saphyr::{Location, Spanned};

use super::{ConfigError, check_domain};
pub use crate::net::tls::Fingerprint;
use crate::store::MailboxName;

/// The largest `max_size`: a message is held in memory while it is fetched,
/// so this also bounds what one account may make us allocate.
pub const MAX_MAX_SIZE: u64 = 1024 * 1024 * 1024;
/// `max_size` when the account does not say.
pub const DEFAULT_MAX_SIZE: u64 = 50 * 1024 * 1024;

/// The `fetch:` section, resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FetchConfig {
    pub accounts: Vec<FetchAccount>,
}

impl FetchConfig {
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

/// One remote account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FetchAccount {
    pub name: String,
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_fingerprint: Option<Fingerprint>,
    pub username: String,
    #[serde(flatten)]
    pub credential: Credential,
    pub auth: AuthMethod,
    pub keep: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub folders: Vec<String>,
    pub deliver_to: DeliverTo,
    pub max_size: u64,
    pub allow_plaintext: bool,
    pub delete_rejected: bool,
}

impl FetchAccount {
    /// `host:port` for messages (IPv6 literals in brackets).
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Pop3,
    Imap,
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (ports 995, 993).
    Tls,
    /// STLS (POP3, RFC 2595) or STARTTLS (IMAP, RFC 3501 6.2.1); refused
    /// when the server does not offer it, never silently skipped.
    Starttls,
    /// No TLS: only to loopback, or with `allow_plaintext: true`.
    None,
}

/// Where the password or the OAuth2 token comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    /// A file whose first line is the password.
    PasswordFile(PathBuf),
    /// A shell command whose first line of output is the password.
    PasswordCommand(String),
    /// A shell command whose first line of output is an OAuth2 access token.
    TokenCommand(String),
}

/// The login method; `Auto` picks the best the server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    Auto,
    /// POP3 USER and PASS (RFC 1939 7).
    User,
    /// POP3 APOP (RFC 1939 7): the password never crosses the wire.
    Apop,
    /// IMAP LOGIN (RFC 3501 6.2.3).
    Login,
    /// SASL PLAIN (RFC 4616): POP3 AUTH (RFC 5034), IMAP AUTHENTICATE.
    Plain,
    /// Google's and Microsoft's SASL XOAUTH2.
    Xoauth2,
    /// SASL OAUTHBEARER (RFC 7628).
    Oauthbearer,
}

impl AuthMethod {
    fn is_oauth(self) -> bool {
        matches!(self, AuthMethod::Xoauth2 | AuthMethod::Oauthbearer)
    }
}

/// Where fetched messages go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum DeliverTo {
    /// A user's Maildir (`<data_dir>/mail/<user>/`), as `ownmail deliver
    /// --user` stores it: `Delivered-To: user@<first domain>` added.
    User {
        user: String,
        #[serde(serialize_with = "display")]
        folder: MailboxName,
    },
    /// Any Maildir: the message is stored as the server held it (line ends
    /// as LF), no header added.
    Maildir {
        maildir: PathBuf,
        #[serde(serialize_with = "display")]
        folder: MailboxName,
    },
    /// A delivery agent run by `/bin/sh -c`, the message on its standard
    /// input; exit 75 is a temporary failure.
    Mda { mda: String },
    /// An SMTP server (a local MTA), `RCPT TO:<recipient>`.
    Smtp {
        smtp: String,
        #[serde(skip)]
        host: String,
        #[serde(skip)]
        port: u16,
        recipient: String,
    },
}

fn display<T: std::fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFetch {
    accounts: Option<Vec<Spanned<RawAccount>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    name: Option<Spanned<String>>,
    protocol: Option<Spanned<Protocol>>,
    host: Option<Spanned<String>>,
    port: Option<Spanned<u16>>,
    tls: Option<Spanned<TlsMode>>,
    tls_fingerprint: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password_file: Option<Spanned<PathBuf>>,
    password_command: Option<Spanned<String>>,
    token_command: Option<Spanned<String>>,
    auth: Option<Spanned<AuthMethod>>,
    keep: Option<bool>,
    folders: Option<Spanned<Vec<Spanned<String>>>>,
    deliver_to: Option<Spanned<RawDeliverTo>>,
    max_size: Option<Spanned<RawSize>>,
    allow_plaintext: Option<bool>,
    delete_rejected: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeliverTo {
    user: Option<Spanned<String>>,
    maildir: Option<Spanned<PathBuf>>,
    mda: Option<Spanned<String>>,
    smtp: Option<Spanned<String>>,
    folder: Option<Spanned<String>>,
    recipient: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "expected a size such as 50M, or a number of bytes"
)]
pub(super) enum RawSize {
    Bytes(u64),
    Text(String),
}

/// The line of each account's `password_file`, by the account's place in
/// the list, for errors about the file it names.
pub(super) fn password_file_lines(raw: &RawFetch) -> Vec<(usize, u64)> {
    raw.accounts
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, a)| {
            let f = a.value.password_file.as_ref()?;
            Some((i, f.referenced.line()))
        })
        .collect()
}

/// What resolving needs from the file around the section.
pub(super) struct Context<'a> {
    pub path: &'a Path,
    pub base: &'a Path,
}

impl Context<'_> {
    fn invalid(&self, at: &Location, key: String, message: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            line: at.line(),
            key,
            message,
        }
    }
}

pub(super) fn resolve(raw: RawFetch, cx: &Context) -> Result<FetchConfig, ConfigError> {
    let mut accounts: Vec<FetchAccount> = Vec::new();
    for (i, raw) in raw.accounts.unwrap_or_default().into_iter().enumerate() {
        let name_at = raw.value.name.as_ref().map(|n| n.referenced);
        let account = resolve_account(raw, i, cx)?;
        // Names are unique: they name the state file and the lock.
        if let Some(at) = name_at
            && accounts.iter().any(|b| b.name == account.name)
        {
            return Err(cx.invalid(
                &at,
                format!("fetch.accounts[{}].name", account.name),
                format!("{} is listed twice", account.name),
            ));
        }
        accounts.push(account);
    }
    Ok(FetchConfig { accounts })
}

fn resolve_account(
    raw: Spanned<RawAccount>,
    index: usize,
    cx: &Context,
) -> Result<FetchAccount, ConfigError> {
    let at = raw.referenced;
    let raw = raw.value;
    // Keys are named after the account once its name is known.
    let mut prefix = format!("fetch.accounts[{}]", index + 1);
    let missing = |prefix: &str, key: &str| {
        cx.invalid(
            &at,
            format!("{prefix}.{key}"),
            "this key is required".into(),
        )
    };

    let name = raw.name.as_ref().ok_or_else(|| missing(&prefix, "name"))?;
    check_account_name(&name.value)
        .map_err(|m| cx.invalid(&name.referenced, format!("{prefix}.name"), m))?;
    prefix = format!("fetch.accounts[{}]", name.value);
    let key = |k: &str| format!("{prefix}.{k}");
    let bad = |s: &Location, k: &str, m: String| cx.invalid(s, key(k), m);

    let protocol = raw
        .protocol
        .as_ref()
        .ok_or_else(|| missing(&prefix, "protocol"))?
        .value;
    let host = raw.host.as_ref().ok_or_else(|| missing(&prefix, "host"))?;
    let host_value = host.value.trim_start_matches('[').trim_end_matches(']');
    if host_value.parse::<IpAddr>().is_err() {
        check_domain(host_value).map_err(|m| bad(&host.referenced, "host", m))?;
    }
    let host_value = host_value.to_owned();
    let tls = raw.tls.as_ref().map_or(TlsMode::Tls, |t| t.value);
    let port = match &raw.port {
        Some(p) if p.value == 0 => {
            return Err(bad(&p.referenced, "port", "port 0 is not a port".into()));
        }
        Some(p) => p.value,
        None => match (protocol, tls) {
            (Protocol::Pop3, TlsMode::Tls) => 995,
            (Protocol::Pop3, _) => 110,
            (Protocol::Imap, TlsMode::Tls) => 993,
            (Protocol::Imap, _) => 143,
        },
    };
    let allow_plaintext = raw.allow_plaintext.unwrap_or(false);
    if tls == TlsMode::None && !allow_plaintext && !is_loopback(&host_value) {
        let at = raw.tls.as_ref().map_or(&at, |t| &t.referenced);
        return Err(bad(
            at,
            "tls",
            format!(
                "tls: none would send the password to {host_value} unencrypted; use tls or starttls, \
                 or set allow_plaintext: true if you really mean it"
            ),
        ));
    }
    let tls_fingerprint = match &raw.tls_fingerprint {
        Some(f) => {
            let fp = Fingerprint::parse(f.value.trim()).ok_or_else(|| {
                bad(
                    &f.referenced,
                    "tls_fingerprint",
                    "expected sha256: and 64 hex digits (colons allowed), as \
                     `openssl x509 -noout -fingerprint -sha256` prints it"
                        .into(),
                )
            })?;
            if tls == TlsMode::None {
                return Err(bad(
                    &f.referenced,
                    "tls_fingerprint",
                    "a fingerprint needs tls: tls or tls: starttls".into(),
                ));
            }
            Some(fp)
        }
        None => None,
    };

    let username = raw
        .username
        .as_ref()
        .ok_or_else(|| missing(&prefix, "username"))?;
    if username.value.is_empty()
        || username.value.len() > 240
        || username.value.chars().any(|c| c.is_control())
    {
        return Err(bad(
            &username.referenced,
            "username",
            "the user name must be 1 to 240 characters, no control characters".into(),
        ));
    }

    let mut credentials = Vec::new();
    if let Some(f) = &raw.password_file {
        if f.value.as_os_str().is_empty() {
            return Err(bad(
                &f.referenced,
                "password_file",
                "the path is empty".into(),
            ));
        }
        credentials.push((
            &f.referenced,
            Credential::PasswordFile(super::normalize(&cx.base.join(&f.value))),
        ));
    }
    for (field, make) in [
        (
            &raw.password_command,
            Credential::PasswordCommand as fn(String) -> Credential,
        ),
        (&raw.token_command, Credential::TokenCommand),
    ] {
        if let Some(c) = field {
            let k = if matches!(make(String::new()), Credential::TokenCommand(_)) {
                "token_command"
            } else {
                "password_command"
            };
            if c.value.trim().is_empty() || c.value.contains('\0') {
                return Err(bad(&c.referenced, k, "the command is empty".into()));
            }
            credentials.push((&c.referenced, make(c.value.clone())));
        }
    }
    let credential = match credentials.len() {
        0 => {
            return Err(cx.invalid(
                &at,
                key("password_file"),
                "one of password_file, password_command or token_command is required".into(),
            ));
        }
        1 => credentials.pop().unwrap().1,
        _ => {
            return Err(cx.invalid(
                credentials[1].0,
                key("password_file"),
                "give only one of password_file, password_command and token_command".into(),
            ));
        }
    };

    let auth = raw.auth.as_ref().map_or(AuthMethod::Auto, |a| a.value);
    if let Some(a) = &raw.auth {
        let fits = matches!(
            (protocol, a.value),
            (
                _,
                AuthMethod::Auto
                    | AuthMethod::Plain
                    | AuthMethod::Xoauth2
                    | AuthMethod::Oauthbearer
            ) | (Protocol::Pop3, AuthMethod::User | AuthMethod::Apop)
                | (Protocol::Imap, AuthMethod::Login)
        );
        if !fits {
            return Err(bad(
                &a.referenced,
                "auth",
                match protocol {
                    Protocol::Pop3 => {
                        "POP3 logs in with auto, user, apop, plain, xoauth2 or oauthbearer"
                    }
                    Protocol::Imap => {
                        "IMAP logs in with auto, login, plain, xoauth2 or oauthbearer"
                    }
                }
                .into(),
            ));
        }
        let token = matches!(credential, Credential::TokenCommand(_));
        if token != a.value.is_oauth() && a.value != AuthMethod::Auto {
            return Err(bad(
                &a.referenced,
                "auth",
                if token {
                    "a token_command logs in with xoauth2 or oauthbearer".into()
                } else {
                    "xoauth2 and oauthbearer need a token_command".into()
                },
            ));
        }
    }

    let folders = match (&raw.folders, protocol) {
        (Some(f), Protocol::Pop3) => {
            return Err(bad(
                &f.referenced,
                "folders",
                "POP3 has only one mailbox; folders are for imap".into(),
            ));
        }
        (None, Protocol::Pop3) => Vec::new(),
        (None, Protocol::Imap) => vec!["INBOX".to_owned()],
        (Some(f), Protocol::Imap) => {
            if f.value.is_empty() {
                return Err(bad(&f.referenced, "folders", "the list is empty".into()));
            }
            let mut out: Vec<String> = Vec::new();
            for name in &f.value {
                let v = name.value.as_str();
                if v.is_empty() || v.len() > 1000 || v.chars().any(|c| c.is_control()) {
                    return Err(bad(
                        &name.referenced,
                        "folders",
                        format!("{v:?} is not a folder name"),
                    ));
                }
                let v = if v.eq_ignore_ascii_case("INBOX") {
                    "INBOX"
                } else {
                    v
                };
                if out.iter().any(|o| o == v) {
                    return Err(bad(
                        &name.referenced,
                        "folders",
                        format!("{v} is listed twice"),
                    ));
                }
                out.push(v.to_owned());
            }
            out
        }
    };

    let deliver_to = resolve_deliver_to(
        raw.deliver_to
            .ok_or_else(|| missing(&prefix, "deliver_to"))?,
        &prefix,
        cx,
    )?;

    let max_size = match &raw.max_size {
        None => DEFAULT_MAX_SIZE,
        Some(s) => {
            let size = match &s.value {
                RawSize::Bytes(n) => Some(*n),
                RawSize::Text(t) => parse_size(t),
            };
            match size {
                Some(n) if (1..=MAX_MAX_SIZE).contains(&n) => n,
                _ => {
                    return Err(bad(
                        &s.referenced,
                        "max_size",
                        "expected a size such as 50M, 200K or 1G (bytes when bare), from 1 byte to 1G".to_owned(),
                    ));
                }
            }
        }
    };

    Ok(FetchAccount {
        name: name.value.clone(),
        protocol,
        host: host_value,
        port,
        tls,
        tls_fingerprint,
        username: username.value.clone(),
        credential,
        auth,
        keep: raw.keep.unwrap_or(false),
        folders,
        deliver_to,
        max_size,
        allow_plaintext,
        delete_rejected: raw.delete_rejected.unwrap_or(false),
    })
}

fn resolve_deliver_to(
    raw: Spanned<RawDeliverTo>,
    prefix: &str,
    cx: &Context,
) -> Result<DeliverTo, ConfigError> {
    let at = raw.referenced;
    let d = raw.value;
    let key = |k: &str| format!("{prefix}.deliver_to.{k}");
    let kinds = [
        d.user.is_some(),
        d.maildir.is_some(),
        d.mda.is_some(),
        d.smtp.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err(cx.invalid(
            &at,
            format!("{prefix}.deliver_to"),
            "give exactly one of user, maildir, mda and smtp".into(),
        ));
    }
    let folder = match &d.folder {
        Some(f) if d.mda.is_some() || d.smtp.is_some() => {
            return Err(cx.invalid(
                &f.referenced,
                key("folder"),
                "folder goes with user or maildir; an MDA or MTA decides for itself".into(),
            ));
        }
        Some(f) => MailboxName::new(&f.value)
            .map_err(|e| cx.invalid(&f.referenced, key("folder"), e.to_string()))?,
        None => MailboxName::inbox(),
    };
    if let Some(r) = &d.recipient
        && d.smtp.is_none()
    {
        return Err(cx.invalid(
            &r.referenced,
            key("recipient"),
            "recipient goes with smtp".into(),
        ));
    }
    if let Some(user) = d.user {
        crate::auth::UserName::new(&user.value)
            .map_err(|e| cx.invalid(&user.referenced, key("user"), e.to_string()))?;
        return Ok(DeliverTo::User {
            user: user.value,
            folder,
        });
    }
    if let Some(maildir) = d.maildir {
        if maildir.value.as_os_str().is_empty() {
            return Err(cx.invalid(
                &maildir.referenced,
                key("maildir"),
                "the path is empty".into(),
            ));
        }
        return Ok(DeliverTo::Maildir {
            maildir: super::normalize(&cx.base.join(&maildir.value)),
            folder,
        });
    }
    if let Some(mda) = d.mda {
        if mda.value.trim().is_empty() || mda.value.contains('\0') {
            return Err(cx.invalid(&mda.referenced, key("mda"), "the command is empty".into()));
        }
        return Ok(DeliverTo::Mda { mda: mda.value });
    }
    let smtp = d.smtp.expect("one kind is set");
    let (host, port) = parse_host_port(&smtp.value).ok_or_else(|| {
        cx.invalid(
            &smtp.referenced,
            key("smtp"),
            format!(
                "{:?} is not HOST:PORT (such as 127.0.0.1:25 or [::1]:25)",
                smtp.value
            ),
        )
    })?;
    let recipient = d.recipient.ok_or_else(|| {
        cx.invalid(
            &at,
            key("recipient"),
            "smtp needs recipient: ADDRESS, the local address the mail is for".into(),
        )
    })?;
    let r = recipient.value.trim();
    let ok = r.len() <= 254
        && r.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
        && !r
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>".contains(c));
    if !ok {
        return Err(cx.invalid(
            &recipient.referenced,
            key("recipient"),
            format!("{r:?} is not a mail address"),
        ));
    }
    Ok(DeliverTo::Smtp {
        smtp: smtp.value.clone(),
        host,
        port,
        recipient: r.to_owned(),
    })
}

/// `[A-Za-z0-9]` then letters, digits and `._-`, at most 64: it names files.
fn check_account_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let ok = name.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not an account name (letters, digits and ._-, starting with a letter or digit, at most 64)"
        ))
    }
}

/// Whether a host is this machine, by its literal address or the name
/// `localhost` (RFC 6761 6.3: always loopback), without a DNS lookup.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `50M`, `200K`, `1G`, `1000` (bytes); K, M, G are powers of 1024.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t
        .strip_suffix(['B', 'b'])
        .filter(|s| s.ends_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or(t);
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let factor: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}

fn parse_host_port(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.trim().rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.parse::<IpAddr>().is_err() && check_domain(host).is_err() {
        return None;
    }
    Some((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/ownmail/ownmail.yaml"))
    }

    fn account(lines: &str) -> Result<FetchAccount, ConfigError> {
        let text = format!("fetch:\n  accounts:\n    - name: isp\n{lines}");
        parse(&text).map(|c| c.fetch.accounts.into_iter().next().unwrap())
    }

    const POP3: &str = "      protocol: pop3\n      host: pop.isp.example\n      username: me\n      password_file: isp.pass\n      deliver_to: {user: alice}\n";

    #[test]
    fn an_account_resolves_with_defaults() {
        let a = account(POP3).unwrap();
        assert_eq!(a.name, "isp");
        assert_eq!(
            (a.protocol, a.port, a.tls),
            (Protocol::Pop3, 995, TlsMode::Tls)
        );
        assert_eq!(
            a.credential,
            Credential::PasswordFile("/etc/ownmail/isp.pass".into())
        );
        assert_eq!(a.auth, AuthMethod::Auto);
        assert!(!a.keep && !a.allow_plaintext && !a.delete_rejected);
        assert!(a.folders.is_empty());
        assert_eq!(a.max_size, 50 << 20);
        assert_eq!(
            a.deliver_to,
            DeliverTo::User {
                user: "alice".into(),
                folder: MailboxName::inbox()
            }
        );
        assert_eq!(a.server(), "pop.isp.example:995");
        assert!(parse("fetch: {}\n").unwrap().fetch.is_empty());
        assert!(parse("hostname: a.org\n").unwrap().fetch.is_empty());
    }

    #[test]
    fn every_key_is_read() {
        let a = account(
            "      protocol: imap\n      host: '[::1]'\n      port: 1993\n      tls: starttls\n      \
             tls_fingerprint: sha256:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff\n      \
             username: me@isp.example\n      token_command: oauth2 isp\n      auth: oauthbearer\n      keep: true\n      \
             folders: [inbox, Archive, \"Entwürfe\"]\n      deliver_to: {maildir: ../Maildir, folder: Old/ISP}\n      \
             max_size: 200k\n      allow_plaintext: true\n      delete_rejected: true\n",
        )
        .unwrap();
        assert_eq!(
            (a.protocol, a.port, a.tls),
            (Protocol::Imap, 1993, TlsMode::Starttls)
        );
        assert_eq!(a.host, "::1");
        assert_eq!(a.server(), "[::1]:1993");
        assert_eq!(
            a.tls_fingerprint.unwrap().to_string(),
            "sha256:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"
        );
        assert_eq!(a.credential, Credential::TokenCommand("oauth2 isp".into()));
        assert_eq!(a.auth, AuthMethod::Oauthbearer);
        assert_eq!(a.folders, vec!["INBOX", "Archive", "Entwürfe"]);
        assert_eq!(
            a.deliver_to,
            DeliverTo::Maildir {
                maildir: "/etc/Maildir".into(),
                folder: MailboxName::new("Old/ISP").unwrap()
            }
        );
        assert_eq!(a.max_size, 200 * 1024);
        assert!(a.keep && a.allow_plaintext && a.delete_rejected);

        let smtp = account(&POP3.replace(
            "{user: alice}",
            "{smtp: \"127.0.0.1:2525\", recipient: alice@example.org}",
        ))
        .unwrap();
        assert_eq!(
            smtp.deliver_to,
            DeliverTo::Smtp {
                smtp: "127.0.0.1:2525".into(),
                host: "127.0.0.1".into(),
                port: 2525,
                recipient: "alice@example.org".into()
            }
        );
        let mda = account(&POP3.replace("{user: alice}", "{mda: \"procmail -d alice\"}")).unwrap();
        assert_eq!(
            mda.deliver_to,
            DeliverTo::Mda {
                mda: "procmail -d alice".into()
            }
        );
        let plain = account(&format!(
            "{}      tls: none\n      host: 127.0.0.1\n",
            POP3.replace("      host: pop.isp.example\n", "")
        ))
        .unwrap();
        assert_eq!((plain.port, plain.tls), (110, TlsMode::None));
        for (size, bytes) in [
            ("1000", 1000),
            ("2M", 2 << 20),
            ("1G", 1 << 30),
            ("3KB", 3072),
        ] {
            let a = account(&format!("{POP3}      max_size: {size}\n")).unwrap();
            assert_eq!(a.max_size, bytes, "{size}");
        }
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "      protocol: pop3\n",
                "line 3",
                "fetch.accounts[isp].host: this key is required",
            ),
            (&format!("{POP3}      prot: x\n"), "line 9", "prot"),
            (&POP3.replace("pop3", "smtp"), "line 4", "protocol"),
            (
                &POP3.replace("pop.isp.example", "bad host"),
                "line 5",
                ".host",
            ),
            (&format!("{POP3}      port: 0\n"), "line 9", ".port"),
            (&format!("{POP3}      port: 70000\n"), "line 9", "port"),
            (
                &format!("{POP3}      tls: none\n"),
                "line 9",
                "allow_plaintext",
            ),
            (
                &format!("{POP3}      tls_fingerprint: md5:00\n"),
                "line 9",
                "tls_fingerprint",
            ),
            (
                &POP3.replace("      username: me\n", ""),
                "line 3",
                ".username",
            ),
            (
                &POP3.replace("      password_file: isp.pass\n", ""),
                "line 3",
                "one of password_file",
            ),
            (
                &format!("{POP3}      password_command: pass isp\n"),
                "line 9",
                "only one",
            ),
            (
                &format!("{POP3}      auth: login\n"),
                "line 9",
                "POP3 logs in with",
            ),
            (
                &format!("{POP3}      auth: xoauth2\n"),
                "line 9",
                "need a token_command",
            ),
            (
                &format!("{POP3}      folders: [INBOX]\n"),
                "line 9",
                "folders are for imap",
            ),
            (
                &POP3.replace("{user: alice}", "{user: alice, mda: x}"),
                "line 8",
                "exactly one",
            ),
            (
                &POP3.replace("{user: alice}", "{user: ../x}"),
                "line 8",
                "deliver_to.user",
            ),
            (
                &POP3.replace("{user: alice}", "{user: alice, folder: a.b}"),
                "line 8",
                "deliver_to.folder",
            ),
            (
                &POP3.replace("{user: alice}", "{smtp: \"127.0.0.1\"}"),
                "line 8",
                "HOST:PORT",
            ),
            (
                &POP3.replace("{user: alice}", "{smtp: \"127.0.0.1:25\"}"),
                "line 8",
                "needs recipient",
            ),
            (
                &POP3.replace("{user: alice}", "{mda: x, folder: y}"),
                "line 8",
                "folder goes with",
            ),
            (
                &POP3.replace("{user: alice}", "{user: alice, kind: x}"),
                "line 8",
                "kind",
            ),
            (&format!("{POP3}      max_size: 2G\n"), "line 9", "max_size"),
            (
                &format!("{POP3}      max_size: lots\n"),
                "line 9",
                "max_size",
            ),
        ];
        for (lines, line, key) in cases {
            let msg = account(lines).unwrap_err().to_string();
            assert!(msg.starts_with("/etc/ownmail/ownmail.yaml: "), "{msg}");
            assert!(
                msg.contains(line) && msg.contains(key),
                "{lines}\ngave {msg}"
            );
        }
        let twice = format!("fetch:\n  accounts:\n    - name: a\n{POP3}    - name: a\n{POP3}");
        let msg = parse(&twice).unwrap_err().to_string();
        assert!(msg.contains("line 9") && msg.contains("twice"), "{msg}");
        let bad_name = format!("fetch:\n  accounts:\n    - name: ../x\n{POP3}");
        let msg = parse(&bad_name).unwrap_err().to_string();
        assert!(
            msg.contains("line 3") && msg.contains("fetch.accounts[1].name"),
            "{msg}"
        );
    }

    #[test]
    fn loopback_is_known_without_dns() {
        for host in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "[::1]",
            "localhost",
            "LocalHost",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["10.0.0.1", "localhost.example", "pop.isp.example", "::2"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn check_config_prints_accounts() {
        let c = parse(&format!("fetch:\n  accounts:\n    - name: isp\n{POP3}")).unwrap();
        let yaml = c.to_yaml();
        for want in [
            "name: isp",
            "protocol: pop3",
            "password_file: /etc/ownmail/isp.pass",
            "user: alice",
            "folder: INBOX",
            "max_size: 52428800",
        ] {
            assert!(yaml.contains(want), "{want} not in\n{yaml}");
        }
    }
}
