//! One forward of `tunnel ssh`: a local port on loopback whose connections
//! ssh carries to a port on (or near) the server, and the health check that
//! reads the mail server's greeting through it.
//!
//! The local end is always a loopback address: what travels through it is
//! plaintext, and the server trusts mail that comes out of the tunnel (it
//! arrives from its own loopback), so a forward open to the network would
//! be an open relay. Never: bind anything else.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest greeting line we read; RFC 5321 4.5.3.1.5 allows 512 octets
/// for an SMTP reply line, and an IMAP greeting is no longer in practice.
pub const MAX_GREETING: usize = 512;

/// What listens at the far end, which decides how a forward is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// An SMTP server: healthy when it greets with `220` (RFC 5321 4.2).
    Smtp,
    /// An IMAP server: healthy when it greets with `* OK` or `* PREAUTH`
    /// (RFC 9051 7.1).
    Imap,
    /// Anything else: only checked to be listening on our side.
    Other,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Smtp => "SMTP",
            Service::Imap => "IMAP",
            Service::Other => "forward",
        }
    }

    /// Whether `line` (the first line the server sent) is a healthy greeting.
    pub fn greeting_ok(self, line: &[u8]) -> bool {
        let starts = |prefix: &[u8]| {
            line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
        };
        match self {
            // RFC 5321 4.2: "220" then SP or "-" (a multi-line greeting).
            Service::Smtp => starts(b"220 ") || starts(b"220-") || line == b"220\r\n",
            // RFC 9051 7.1.1 / 7.1.4: `* OK` or `* PREAUTH`; `* BYE` is a refusal.
            Service::Imap => starts(b"* OK") || starts(b"* PREAUTH"),
            Service::Other => true,
        }
    }

    /// What we send after a good greeting, so the server logs a clean
    /// goodbye rather than a dropped connection.
    fn goodbye(self) -> &'static [u8] {
        match self {
            Service::Smtp => b"QUIT\r\n",
            Service::Imap => b"a LOGOUT\r\n",
            Service::Other => b"",
        }
    }
}

/// A forward: `local` on this machine to `remote_host:remote_port` as the
/// ssh server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub service: Service,
    pub local: SocketAddr,
    pub remote_host: String,
    pub remote_port: u16,
}

/// A forward that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{spec:?}: {why} (expected LOCAL:REMOTE, e.g. 2525:25 or 127.0.0.1:2525:mail.lan:25)")]
pub struct ForwardError {
    pub spec: String,
    pub why: String,
}

impl Forward {
    /// Parses `LOCAL:REMOTE`, where LOCAL is `[ADDR:]PORT` (ADDR a loopback
    /// address, 127.0.0.1 when left out) and REMOTE is `[HOST:]PORT` as the
    /// server sees it (127.0.0.1 when left out). The three-part form is
    /// `PORT:HOST:PORT` when it starts with a number, as in `ssh -L`, else
    /// `ADDR:PORT:PORT`. IPv6 addresses go in brackets.
    pub fn parse(service: Service, spec: &str) -> Result<Forward, ForwardError> {
        let fail = |why: &str| ForwardError {
            spec: spec.to_owned(),
            why: why.to_owned(),
        };
        let parts = split(spec).ok_or_else(|| fail("unbalanced brackets"))?;
        let is_port = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let (addr, lport, host, rport) = match parts.as_slice() {
            [l, r] => (None, *l, None, *r),
            [a, l, r] if !is_port(a) => (Some(*a), *l, None, *r),
            [l, h, r] => (None, *l, Some(*h), *r),
            [a, l, h, r] => (Some(*a), *l, Some(*h), *r),
            _ => return Err(fail("wrong number of parts")),
        };
        let port = |s: &str, which: &str| -> Result<u16, ForwardError> {
            match s.parse::<u16>() {
                Ok(p) if p != 0 && is_port(s) => Ok(p),
                _ => Err(fail(&format!(
                    "{which} port {s:?} is not a port number (1-65535)"
                ))),
            }
        };
        let local_port = port(lport, "the local")?;
        let remote_port = port(rport, "the remote")?;
        let ip = match addr {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(a) => unbracket(a)
                .parse::<IpAddr>()
                .map_err(|_| fail(&format!("the local address {a:?} is not an IP address")))?,
        };
        if !ip.is_loopback() {
            return Err(fail(&format!(
                "the local address {ip} is not a loopback address: the forward carries \
                 plaintext and the server trusts what comes out of it, so it may only \
                 listen on this machine"
            )));
        }
        let remote_host = match host {
            None => "127.0.0.1".to_owned(),
            Some(h) => {
                let h = unbracket(h);
                let ok = !h.is_empty()
                    && !h.starts_with('-')
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b));
                if !ok {
                    return Err(fail(&format!(
                        "the remote host {h:?} is not a host name or address"
                    )));
                }
                h.to_owned()
            }
        };
        Ok(Forward {
            service,
            local: SocketAddr::new(ip, local_port),
            remote_host,
            remote_port,
        })
    }

    /// The argument of `ssh -L`: `BIND:PORT:HOST:HOSTPORT`.
    pub fn ssh_spec(&self) -> String {
        let bracket = |h: &str| {
            if h.contains(':') {
                format!("[{h}]")
            } else {
                h.to_owned()
            }
        };
        format!(
            "{}:{}:{}:{}",
            bracket(&self.local.ip().to_string()),
            self.local.port(),
            bracket(&self.remote_host),
            self.remote_port
        )
    }

    /// Checks the forward from our end: for SMTP and IMAP, the server's
    /// greeting must come back through it within `timeout`; for anything
    /// else, ssh must accept the connection. `Err` says what went wrong.
    pub async fn check(&self, timeout: Duration) -> Result<(), String> {
        match tokio::time::timeout(timeout, self.check_inner()).await {
            Ok(r) => r,
            Err(_) => Err(format!("no greeting in {} s", timeout.as_secs_f32())),
        }
    }

    async fn check_inner(&self) -> Result<(), String> {
        let mut tcp = TcpStream::connect(self.local)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        if self.service == Service::Other {
            return Ok(());
        }
        let mut buf = [0u8; MAX_GREETING];
        let mut len = 0;
        // One line, bounded: a server that sends more without a line end is
        // judged on what fits.
        while len < buf.len() && !buf[..len].contains(&b'\n') {
            let n = tcp
                .read(&mut buf[len..])
                .await
                .map_err(|e| format!("reading the greeting: {e}"))?;
            if n == 0 {
                return Err(if len == 0 {
                    "the connection was closed without a greeting".to_owned()
                } else {
                    format!("the greeting stopped half-way: {}", printable(&buf[..len]))
                });
            }
            len += n;
        }
        let line = match buf[..len].iter().position(|&b| b == b'\n') {
            Some(end) => &buf[..=end],
            None => &buf[..len],
        };
        if !self.service.greeting_ok(line) {
            return Err(format!(
                "not an {} greeting: {}",
                self.service.name(),
                printable(line)
            ));
        }
        let _ = tcp.write_all(self.service.goodbye()).await;
        Ok(())
    }
}

impl std::fmt::Display for Forward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} forward {} -> {}:{}",
            self.service.name(),
            self.local,
            self.remote_host,
            self.remote_port
        )
    }
}

/// A line from the network made safe to print: trimmed, control characters
/// escaped, at most 100 characters.
fn printable(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end();
    let mut out: String = text
        .chars()
        .take(100)
        .flat_map(char::escape_default)
        .collect();
    if text.chars().count() > 100 {
        out.push_str("...");
    }
    format!("\"{out}\"")
}

fn unbracket(s: &str) -> &str {
    s.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s)
}

/// Splits on `:` outside brackets; `None` when the brackets do not pair.
fn split(spec: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut depth = 0u32;
    let mut start = 0;
    for (i, c) in spec.char_indices() {
        match c {
            '[' if depth == 0 => depth = 1,
            ']' if depth == 1 => depth = 0,
            '[' | ']' => return None,
            ':' if depth == 0 => {
                parts.push(&spec[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    parts.push(&spec[start..]);
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_specs() {
        let ok = |spec: &str, want: &str| {
            let f = Forward::parse(Service::Smtp, spec).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(f.ssh_spec(), want, "{spec}");
        };
        ok("2525:25", "127.0.0.1:2525:127.0.0.1:25");
        ok("127.0.0.1:2525:25", "127.0.0.1:2525:127.0.0.1:25");
        ok("localhost:2525:25", "127.0.0.1:2525:127.0.0.1:25");
        ok("127.0.0.2:2525:25", "127.0.0.2:2525:127.0.0.1:25");
        ok("2525:mail.lan:25", "127.0.0.1:2525:mail.lan:25");
        ok("[::1]:2525:[::1]:25", "[::1]:2525:[::1]:25");
        ok("127.0.0.1:1143:10.0.0.5:143", "127.0.0.1:1143:10.0.0.5:143");
        for bad in [
            "",
            "2525",
            "0:25",
            "2525:0",
            "65536:25",
            "+25:25",
            "x:25",
            "0.0.0.0:2525:25",
            "192.168.1.2:2525:25",
            "[::]:2525:25",
            "2525:-oProxyCommand=x:25",
            "2525:a b:25",
            "[::1:2525:25",
            "1:2:3:4:5",
        ] {
            let err = Forward::parse(Service::Imap, bad);
            assert!(err.is_err(), "{bad} parsed as {err:?}");
        }
        let e = Forward::parse(Service::Smtp, "0.0.0.0:2525:25").unwrap_err();
        assert!(e.to_string().contains("not a loopback address"), "{e}");
    }

    #[test]
    fn greetings() {
        let table: &[(Service, &[u8], bool)] = &[
            (Service::Smtp, b"220 mail.example.org ESMTP\r\n", true),
            (Service::Smtp, b"220-mail.example.org ESMTP\r\n", true),
            (Service::Smtp, b"220\r\n", true),
            (Service::Smtp, b"554 5.3.2 go away\r\n", false),
            (Service::Smtp, b"2200 x\r\n", false),
            (Service::Smtp, b"* OK IMAP\r\n", false),
            (
                Service::Imap,
                b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n",
                true,
            ),
            (Service::Imap, b"* ok hello\r\n", true),
            (Service::Imap, b"* PREAUTH welcome\r\n", true),
            (Service::Imap, b"* BYE too many connections\r\n", false),
            (Service::Imap, b"220 smtp\r\n", false),
            (Service::Imap, b"", false),
            (Service::Other, b"", true),
        ];
        for (service, line, want) in table {
            assert_eq!(
                service.greeting_ok(line),
                *want,
                "{service:?} {}",
                String::from_utf8_lossy(line)
            );
        }
    }

    async fn one_shot_server(reply: &'static [u8]) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(reply).await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        addr
    }

    fn at(service: Service, local: SocketAddr) -> Forward {
        Forward {
            service,
            local,
            remote_host: "127.0.0.1".into(),
            remote_port: 25,
        }
    }

    #[tokio::test]
    async fn checks_read_the_greeting_through_the_forward() {
        let t = Duration::from_secs(2);
        let good = one_shot_server(b"220 mx ESMTP\r\n").await;
        at(Service::Smtp, good).check(t).await.unwrap();
        let bye = one_shot_server(b"* BYE busy\r\n").await;
        let e = at(Service::Imap, bye).check(t).await.unwrap_err();
        assert_eq!(e, "not an IMAP greeting: \"* BYE busy\"");
        let silent = one_shot_server(b"").await;
        let e = at(Service::Imap, silent)
            .check(Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(e.starts_with("no greeting in 0.3"), "{e}");
        // A flood with no line end is judged on its first 512 bytes.
        let flood = one_shot_server(&[b'x'; 4096]).await;
        let e = at(Service::Smtp, flood).check(t).await.unwrap_err();
        assert!(e.ends_with("...\""), "{e}");
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let e = at(Service::Other, closed).check(t).await.unwrap_err();
        assert!(e.starts_with("cannot connect"), "{e}");
    }
}
