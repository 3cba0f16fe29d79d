//! The `smtp:` section (what `ownmail serve-smtp` listens on and whom it
//! relays for) and the top-level `aliases:` (extra local addresses).
//!
//! ```yaml
//! smtp:
//!   listen: ["0.0.0.0:25"]           # receiving: mail for our domains, from anyone
//!   submission: ["0.0.0.0:587"]      # STARTTLS, then AUTH, required (needs tls:)
//!   submissions: ["0.0.0.0:465"]     # implicit TLS, AUTH required (needs tls:)
//!   trusted_networks: [127.0.0.0/8, "::1"]   # may relay without AUTH
//!   max_message_size: 50M
//!   max_connections: 100
//!   reverse_dns: false               # look up the client's name for Received:
//!   queue_lifetime: 5d               # give up on an outbound message after this
//!   dns_servers: ["127.0.0.1:5353"]  # for MX lookups; default: /etc/resolv.conf
//!   relay:                           # the smarthost; without it, direct to MX
//!     host: smtp.isp.example
//!     port: 587
//!     tls: starttls                  # starttls | tls | none
//!     username: me
//!     password_file: relay.pass
//! aliases:
//!   postmaster: alice                # a local part, in every one of our domains
//!   info@example.org: [alice, bob]   # or one address; the targets are users
//! ```
//!
//! `postmaster` always exists (RFC 5321 4.5.1): without an alias or a user
//! of that name it is delivered to the Maildir `<data_dir>/mail/postmaster`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_saphyr::{Location, Spanned};

use super::ConfigError;
use super::fetch::{RawSize, TlsMode, parse_size};
use crate::auth::UserName;

/// `max_message_size` when the file does not say (the issue's 50 MB).
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 50 * 1024 * 1024;
/// The largest `max_message_size`: a message is held in memory while it is
/// received (see `proto::smtp`), so this bounds one session's memory.
pub const MAX_MAX_MESSAGE_SIZE: u64 = 1024 * 1024 * 1024;
/// `max_connections` when the file does not say.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100;
/// `queue_lifetime` when the file does not say: RFC 5321 4.5.4.1 suggests
/// at least 4-5 days.
pub const DEFAULT_QUEUE_LIFETIME: Duration = Duration::from_secs(5 * 24 * 3600);

/// The `smtp:` section, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmtpConfig {
    pub listen: Vec<SocketAddr>,
    pub submission: Vec<SocketAddr>,
    pub submissions: Vec<SocketAddr>,
    #[serde(serialize_with = "display_list")]
    pub trusted_networks: Vec<IpNet>,
    pub max_message_size: u64,
    pub max_connections: usize,
    pub reverse_dns: bool,
    #[serde(serialize_with = "seconds")]
    pub queue_lifetime: Duration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<RelayConfig>,
    /// DNS servers for MX lookups; empty: the system's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_servers: Vec<SocketAddr>,
    /// Whether the configuration has an `smtp:` section: `ownmail serve`
    /// runs the SMTP server only then (its default, port 25 on every
    /// address, is not something to start by surprise).
    #[serde(skip)]
    pub configured: bool,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 25))],
            submission: Vec::new(),
            submissions: Vec::new(),
            trusted_networks: vec![
                IpNet::parse("127.0.0.0/8").expect("a valid network"),
                IpNet::parse("::1").expect("a valid network"),
            ],
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            reverse_dns: false,
            queue_lifetime: DEFAULT_QUEUE_LIFETIME,
            relay: None,
            dns_servers: Vec::new(),
            configured: false,
        }
    }
}

impl SmtpConfig {
    /// Whether a client at `ip` may relay without authenticating.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted_networks.iter().any(|n| n.contains(ip))
    }
}

/// The smarthost outbound mail goes through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelayConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

/// A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`); a bare address
/// is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn parse(text: &str) -> Option<IpNet> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An IPv4 client seen through an IPv6 socket (`::ffff:127.0.0.1`) is an
/// IPv4 client.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// `aliases:`: extra addresses, each delivered to one or more users.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Aliases {
    /// Keys in lower case: a local part (`postmaster`) or an address
    /// (`info@example.org`).
    pub map: BTreeMap<String, Vec<String>>,
}

impl Aliases {
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The users an address of one of our domains goes to, if it is an
    /// alias: the whole address first, then the local part.
    pub fn lookup(&self, local: &str, domain: &str) -> Option<&[String]> {
        let local = local.to_ascii_lowercase();
        let full = format!("{local}@{}", domain.to_ascii_lowercase());
        self.map
            .get(&full)
            .or_else(|| self.map.get(&local))
            .map(Vec::as_slice)
    }
}

fn display_list<T: std::fmt::Display, S: serde::Serializer>(
    v: &[T],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|x| x.to_string()))
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format!("{}s", d.as_secs()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    listen: Option<Vec<Spanned<String>>>,
    submission: Option<Vec<Spanned<String>>>,
    submissions: Option<Vec<Spanned<String>>>,
    trusted_networks: Option<Vec<Spanned<String>>>,
    max_message_size: Option<Spanned<RawSize>>,
    max_connections: Option<Spanned<u64>>,
    reverse_dns: Option<bool>,
    queue_lifetime: Option<Spanned<String>>,
    relay: Option<Spanned<RawRelay>>,
    dns_servers: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelay {
    host: Spanned<String>,
    port: Option<Spanned<u16>>,
    tls: Option<TlsMode>,
    username: Option<String>,
    password_file: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "expected a user name, or a list of user names")]
pub(super) enum RawTargets {
    One(String),
    Many(Vec<String>),
}

pub(super) struct Context<'a> {
    pub path: &'a std::path::Path,
    pub base: &'a std::path::Path,
    pub has_tls: bool,
}

impl Context<'_> {
    fn invalid(&self, at: &Location, key: &str, message: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            line: at.line(),
            key: key.to_owned(),
            message,
        }
    }
}

pub(super) fn resolve(raw: Option<RawSmtp>, cx: &Context) -> Result<SmtpConfig, ConfigError> {
    let mut out = SmtpConfig::default();
    let Some(raw) = raw else { return Ok(out) };
    out.configured = true;
    let addrs = |list: &Option<Vec<Spanned<String>>>,
                 key: &str|
     -> Result<Option<Vec<SocketAddr>>, ConfigError> {
        let Some(list) = list else { return Ok(None) };
        let mut v = Vec::new();
        for (i, a) in list.iter().enumerate() {
            let addr = a.value.trim().parse::<SocketAddr>().map_err(|_| {
                cx.invalid(
                    &a.referenced,
                    &format!("smtp.{key}[{i}]"),
                    format!(
                        "{:?} is not an address and port such as 0.0.0.0:25 or [::]:25",
                        a.value
                    ),
                )
            })?;
            v.push(addr);
        }
        Ok(Some(v))
    };
    if let Some(v) = addrs(&raw.listen, "listen")? {
        out.listen = v;
    }
    for (key, list, slot) in [
        ("submission", &raw.submission, &mut out.submission),
        ("submissions", &raw.submissions, &mut out.submissions),
    ] {
        if let Some(v) = addrs(list, key)? {
            if let Some(first) = list.as_ref().and_then(|l| l.first())
                && !cx.has_tls
            {
                return Err(cx.invalid(
                    &first.referenced,
                    &format!("smtp.{key}"),
                    "submission needs TLS (passwords cross the network): add tls: {cert, key}"
                        .into(),
                ));
            }
            *slot = v;
        }
    }
    if let Some(list) = &raw.trusted_networks {
        let mut nets = Vec::new();
        for n in list {
            nets.push(IpNet::parse(&n.value).ok_or_else(|| {
                cx.invalid(
                    &n.referenced,
                    "smtp.trusted_networks",
                    format!("{:?} is not a network such as 10.0.0.0/8 or ::1", n.value),
                )
            })?);
        }
        out.trusted_networks = nets;
    }
    if let Some(s) = &raw.max_message_size {
        let n = match &s.value {
            RawSize::Bytes(n) => Some(*n),
            RawSize::Text(t) => parse_size(t),
        };
        out.max_message_size = n
            .filter(|n| (1024..=MAX_MAX_MESSAGE_SIZE).contains(n))
            .ok_or_else(|| {
                cx.invalid(
                    &s.referenced,
                    "smtp.max_message_size",
                    "expected a size such as 50M (from 1K to 1G)".into(),
                )
            })?;
    }
    if let Some(n) = &raw.max_connections {
        out.max_connections = usize::try_from(n.value)
            .ok()
            .filter(|n| (1..=100_000).contains(n))
            .ok_or_else(|| {
                cx.invalid(
                    &n.referenced,
                    "smtp.max_connections",
                    "expected 1 to 100000".into(),
                )
            })?;
    }
    out.reverse_dns = raw.reverse_dns.unwrap_or(false);
    if let Some(l) = &raw.queue_lifetime {
        out.queue_lifetime = parse_duration(&l.value).ok_or_else(|| {
            cx.invalid(
                &l.referenced,
                "smtp.queue_lifetime",
                "expected a duration such as 5d, 12h or 90m".into(),
            )
        })?;
    }
    for d in raw.dns_servers.iter().flatten() {
        let t = d.value.trim();
        let addr = t
            .parse::<SocketAddr>()
            .ok()
            .or_else(|| t.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
            .ok_or_else(|| {
                cx.invalid(
                    &d.referenced,
                    "smtp.dns_servers",
                    format!("{t:?} is not an address such as 127.0.0.1 or 127.0.0.1:5353"),
                )
            })?;
        out.dns_servers.push(addr);
    }
    if let Some(r) = raw.relay {
        let at = r.referenced;
        let r = r.value;
        let host = r.host.value.trim_start_matches('[').trim_end_matches(']');
        if host.parse::<IpAddr>().is_err() {
            super::check_domain(host)
                .map_err(|m| cx.invalid(&r.host.referenced, "smtp.relay.host", m))?;
        }
        let tls = r.tls.unwrap_or(TlsMode::Starttls);
        let port = match r.port {
            Some(p) if p.value == 0 => {
                return Err(cx.invalid(&p.referenced, "smtp.relay.port", "port 0".into()));
            }
            Some(p) => p.value,
            None if tls == TlsMode::Tls => 465,
            None => 587,
        };
        let password_file = r
            .password_file
            .map(|p| super::normalize(&cx.base.join(&p.value)));
        if tls == TlsMode::None && r.username.is_some() && !super::fetch::is_loopback(host) {
            return Err(cx.invalid(
                &at,
                "smtp.relay.tls",
                format!(
                    "tls: none would send the password to {host} unencrypted; use starttls or tls"
                ),
            ));
        }
        if password_file.is_some() != r.username.is_some() {
            return Err(cx.invalid(
                &at,
                "smtp.relay",
                "username and password_file go together".into(),
            ));
        }
        out.relay = Some(RelayConfig {
            host: host.to_owned(),
            port,
            tls,
            username: r.username,
            password_file,
        });
    }
    Ok(out)
}

pub(super) fn resolve_aliases(
    raw: Option<BTreeMap<String, Spanned<RawTargets>>>,
    cx: &Context,
) -> Result<Aliases, ConfigError> {
    let mut out = Aliases::default();
    for (key, targets) in raw.unwrap_or_default() {
        let at = targets.referenced;
        let targets = targets.value;
        let name = key.trim().to_ascii_lowercase();
        let ok_key = !name.is_empty()
            && name.len() <= 254
            && name.split('@').count() <= 2
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"<>()[]\\,;:\"".contains(&b));
        if !ok_key {
            return Err(cx.invalid(
                &at,
                "aliases",
                format!("{key:?} is not a local part or an address"),
            ));
        }
        let targets = match targets {
            RawTargets::One(t) => vec![t],
            RawTargets::Many(v) => v,
        };
        if targets.is_empty() {
            return Err(cx.invalid(
                &at,
                &format!("aliases.{name}"),
                "an alias needs at least one user".into(),
            ));
        }
        let mut users = Vec::new();
        for t in targets {
            let user = UserName::new(t.trim())
                .map_err(|e| cx.invalid(&at, &format!("aliases.{name}"), e.to_string()))?;
            users.push(user.to_string());
        }
        if out.map.insert(name.clone(), users).is_some() {
            return Err(cx.invalid(&at, "aliases", format!("{name} is listed twice")));
        }
    }
    Ok(out)
}

/// `5d`, `12h`, `90m`, `30s`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = digits.parse().ok()?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    n.checked_mul(factor)
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/ownmail/ownmail.yaml"))
    }

    #[test]
    fn defaults_listen_on_25_and_trust_loopback() {
        let c = parse("hostname: mx.example.org\n").unwrap();
        assert_eq!(c.smtp, SmtpConfig::default());
        assert!(c.smtp.is_trusted("127.0.0.1".parse().unwrap()));
        assert!(c.smtp.is_trusted("::1".parse().unwrap()));
        assert!(c.smtp.is_trusted("::ffff:127.0.0.9".parse().unwrap()));
        assert!(!c.smtp.is_trusted("192.0.2.1".parse().unwrap()));
        assert_eq!(c.smtp.max_message_size, 50 << 20);
    }

    #[test]
    fn every_key_is_read() {
        let c = parse(
            "tls: {cert: c.pem, key: k.pem}\nsmtp:\n  listen: ['127.0.0.1:2525']\n  submission: ['[::1]:587']\n  submissions: ['0.0.0.0:465']\n  trusted_networks: [10.0.0.0/8]\n  max_message_size: 10M\n  max_connections: 7\n  reverse_dns: true\n  queue_lifetime: 2d\n  relay: {host: smtp.isp.example, username: me, password_file: r.pass}\naliases:\n  Postmaster: alice\n  info@example.org: [alice, bob]\n",
        )
        .unwrap();
        let s = &c.smtp;
        assert_eq!(s.listen, vec!["127.0.0.1:2525".parse().unwrap()]);
        assert_eq!(s.submission, vec!["[::1]:587".parse().unwrap()]);
        assert_eq!(s.submissions.len(), 1);
        assert!(s.is_trusted("10.1.2.3".parse().unwrap()));
        assert!(!s.is_trusted("127.0.0.1".parse().unwrap()));
        assert_eq!((s.max_message_size, s.max_connections), (10 << 20, 7));
        assert!(s.reverse_dns);
        assert_eq!(s.queue_lifetime, Duration::from_secs(2 * 86400));
        let r = s.relay.as_ref().unwrap();
        assert_eq!(
            (r.host.as_str(), r.port, r.tls),
            ("smtp.isp.example", 587, TlsMode::Starttls)
        );
        assert_eq!(
            r.password_file.as_deref(),
            Some(Path::new("/etc/ownmail/r.pass"))
        );
        let users = |v: &[String]| v.to_vec();
        assert_eq!(
            users(c.aliases.lookup("POSTMASTER", "x.org").unwrap()),
            ["alice"]
        );
        assert_eq!(
            users(c.aliases.lookup("info", "Example.org").unwrap()),
            ["alice", "bob"]
        );
        assert!(c.aliases.lookup("info", "example.net").is_none());
        assert!(c.to_yaml().contains("10.0.0.0/8"));
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let cases = [
            ("smtp:\n  listen: [':25']\n", "line 2", "smtp.listen"),
            (
                "smtp:\n  submission: ['0.0.0.0:587']\n",
                "line 2",
                "needs TLS",
            ),
            (
                "smtp:\n  trusted_networks: [10.0.0.0/33]\n",
                "line 2",
                "trusted_networks",
            ),
            (
                "smtp:\n  max_message_size: 10X\n",
                "line 2",
                "max_message_size",
            ),
            (
                "smtp:\n  queue_lifetime: soon\n",
                "line 2",
                "queue_lifetime",
            ),
            ("smtp:\n  listne: []\n", "line 2", "listne"),
            ("aliases:\n  a: '../x'\n", "line 2", "aliases.a"),
            ("aliases:\n  'a b': x\n", "line 2", "aliases"),
            (
                "smtp:\n  relay: {host: x.org, username: me}\n",
                "line 2",
                "password_file",
            ),
        ];
        for (text, line, key) in cases {
            let msg = parse(text).unwrap_err().to_string();
            assert!(
                msg.contains(line) && msg.contains(key),
                "{text:?} gave {msg}"
            );
        }
    }

    #[test]
    fn networks_match_by_prefix() {
        let n = IpNet::parse("192.168.0.0/16").unwrap();
        assert!(n.contains("192.168.255.1".parse().unwrap()));
        assert!(!n.contains("192.169.0.1".parse().unwrap()));
        assert!(!n.contains("::1".parse().unwrap()));
        let all = IpNet::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6 = IpNet::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        for bad in ["", "1.2.3.4/", "1.2.3.4/40", "::/129", "x/8"] {
            assert!(IpNet::parse(bad).is_none(), "{bad}");
        }
    }
}
