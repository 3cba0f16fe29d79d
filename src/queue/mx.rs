//! Direct delivery, without a smarthost: the recipient domain's MX hosts
//! (RFC 5321 5.1) in preference order, each of their addresses in turn,
//! port 25, with opportunistic STARTTLS (RFC 7435, RFC 3207).
//!
//! - No MX record: the domain itself is the implicit MX (RFC 5321 5.1).
//! - A null MX (`MX 0 .`, RFC 7505): the domain takes no mail: permanent.
//! - An address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`, RFC 5321
//!   4.1.3 and 5.1): that address, no DNS at all.
//! - A host that cannot be reached, or breaks off before the recipients
//!   were answered: the next one. Once a host has answered the recipients,
//!   its answers stand.
//!
//! The resolver is the system's (`/etc/resolv.conf`), or the servers in
//! `smtp.dns_servers` (tests point it at a dnsmasq on loopback).

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

use super::worker::{Outcome, Target, TargetTls, send_over};
use crate::config::Config;

/// The SMTP port of MX hosts.
pub const SMTP_PORT: u16 = 25;
/// The most MX hosts tried, and addresses per host (RFC 5321 5.1 asks for
/// some limit).
const MAX_HOSTS: usize = 5;
const MAX_ADDRESSES: usize = 4;

/// A resolver for MX and address lookups.
pub fn resolver(dns_servers: &[SocketAddr]) -> Result<TokioResolver, String> {
    let builder = if dns_servers.is_empty() {
        TokioResolver::builder_tokio()
            .map_err(|e| format!("reading the system's DNS configuration: {e}"))?
    } else {
        let servers = dns_servers
            .iter()
            .map(|s| {
                let mut udp = ConnectionConfig::udp();
                udp.port = s.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = s.port();
                NameServerConfig::new(s.ip(), true, vec![udp, tcp])
            })
            .collect();
        TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
    };
    builder
        .build()
        .map_err(|e| format!("starting the DNS resolver: {e}"))
}

/// The MX host names of `domain`, best first.
pub async fn mx_hosts(resolver: &TokioResolver, domain: &str) -> Result<Vec<String>, Outcome> {
    let fqdn = format!("{}.", domain.trim_end_matches('.'));
    let lookup = match resolver.mx_lookup(fqdn.as_str()).await {
        Ok(l) => l,
        // RFC 5321 5.1: no MX, the domain is its own mail host.
        Err(e) if e.is_no_records_found() && !e.is_nx_domain() => {
            return Ok(vec![domain.to_owned()]);
        }
        Err(e) if e.is_nx_domain() => {
            return Err(Outcome::Permanent {
                status: "5.1.2".into(),
                text: format!("{domain}: no such domain"),
            });
        }
        Err(e) => {
            return Err(Outcome::Temporary(format!(
                "DNS lookup of MX {domain}: {e}"
            )));
        }
    };
    let mut mx: Vec<(u16, String)> = lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::MX(m) => Some((m.preference, m.exchange.to_ascii())),
            _ => None,
        })
        .collect();
    if mx.is_empty() {
        return Ok(vec![domain.to_owned()]);
    }
    // RFC 7505 3: a single MX with the root as exchange says "no mail".
    if mx.len() == 1 && (mx[0].1 == "." || mx[0].1.is_empty()) {
        return Err(Outcome::Permanent {
            status: "5.1.10".into(),
            text: format!("{domain} accepts no mail (null MX)"),
        });
    }
    mx.sort_by_key(|(pref, _)| *pref);
    Ok(mx
        .into_iter()
        .map(|(_, h)| h.trim_end_matches('.').to_owned())
        .filter(|h| !h.is_empty())
        .take(MAX_HOSTS)
        .collect())
}

/// The address an address literal names (RFC 5321 4.1.3): `None` for a
/// domain name, `Err` for a literal we cannot use (a general literal, or
/// one that does not parse).
pub fn address_literal(domain: &str) -> Option<Result<IpAddr, Outcome>> {
    let inner = domain.strip_prefix('[')?.strip_suffix(']')?;
    let ip = match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => inner[5..]
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(IpAddr::V6),
        _ => inner.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
    };
    Some(ip.ok_or_else(|| Outcome::Permanent {
        status: "5.1.2".into(),
        text: format!("{domain}: not an IPv4 or IPv6 address literal"),
    }))
}

/// Delivers to the recipients of one domain.
pub async fn deliver_domain(
    config: &Config,
    resolver: &TokioResolver,
    domain: &str,
    sender: &str,
    recipients: &[String],
    message: &[u8],
) -> Vec<Outcome> {
    let all = |o: Outcome| recipients.iter().map(|_| o.clone()).collect::<Vec<_>>();
    // Regression: a literal was looked up as an MX name ("Label contains
    // invalid characters") and deferred until it expired.
    match address_literal(domain) {
        Some(Ok(ip)) => {
            return match send_to(config, &ip.to_string(), ip, sender, recipients, message).await {
                Ok(outcomes) => outcomes,
                Err(o) => all(o),
            };
        }
        Some(Err(o)) => return all(o),
        None => {}
    }
    let hosts = match mx_hosts(resolver, domain).await {
        Ok(h) => h,
        Err(o) => return all(o),
    };
    let mut last = Outcome::Temporary(format!("{domain}: no MX host could be reached"));
    for host in hosts {
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => match resolver.lookup_ip(format!("{host}.").as_str()).await {
                Ok(l) => l.iter().take(MAX_ADDRESSES).collect(),
                Err(e) => {
                    last = Outcome::Temporary(format!("DNS lookup of {host}: {e}"));
                    continue;
                }
            },
        };
        for ip in addrs {
            match send_to(config, &host, ip, sender, recipients, message).await {
                Ok(outcomes) => return outcomes,
                // A permanent refusal of MAIL FROM stands; anything else,
                // try the next address.
                Err(o @ Outcome::Permanent { .. }) => return all(o),
                Err(o) => last = o,
            }
        }
    }
    all(last)
}

/// One attempt at one address of a mail host, port 25, opportunistic TLS.
async fn send_to(
    config: &Config,
    host: &str,
    ip: IpAddr,
    sender: &str,
    recipients: &[String],
    message: &[u8],
) -> Result<Vec<Outcome>, Outcome> {
    let target = Target {
        host: host.to_owned(),
        addr: Some(ip),
        port: SMTP_PORT,
        tls: TargetTls::Opportunistic,
        credentials: None,
    };
    send_over(config, &target, sender, recipients, message).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_literals_name_an_address() {
        let ok = |d: &str| address_literal(d).map(|r| r.ok());
        assert_eq!(ok("example.org"), None);
        assert_eq!(
            ok("[192.0.2.55]"),
            Some(Some("192.0.2.55".parse().unwrap()))
        );
        assert_eq!(
            ok("[IPv6:2001:db8::1]"),
            Some(Some("2001:db8::1".parse().unwrap()))
        );
        assert_eq!(ok("[ipv6:::1]"), Some(Some("::1".parse().unwrap())));
        for bad in [
            "[2001:db8::1]",
            "[IPv6:192.0.2.1]",
            "[300.1.1.1]",
            "[x-tag:abc]",
            "[]",
        ] {
            assert!(
                matches!(address_literal(bad), Some(Err(Outcome::Permanent { .. }))),
                "{bad}"
            );
        }
    }
}
