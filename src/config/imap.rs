//! The `imap:` section: where `ownmail serve-imap` (and `ownmail serve`)
//! listen.
//!
//! ```yaml
//! imap:
//!   listen: ["127.0.0.1:143"]        # plain IMAP; STARTTLS offered when tls: is set
//!   listen_tls: ["0.0.0.0:993"]      # implicit TLS (needs tls:)
//! ```
//!
//! Both default to nothing; `--listen` / `--listen-tls` on the command line
//! replace them. LOGIN and AUTHENTICATE are refused in plain text unless
//! the client is on loopback (LOGINDISABLED), so a plain port open to the
//! world is only useful with STARTTLS.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::ConfigError;

/// The `imap:` section, resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImapConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listen: Vec<SocketAddr>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listen_tls: Vec<SocketAddr>,
}

impl ImapConfig {
    pub fn is_empty(&self) -> bool {
        self.listen.is_empty() && self.listen_tls.is_empty()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImap {
    listen: Option<Vec<Spanned<String>>>,
    listen_tls: Option<Vec<Spanned<String>>>,
}

pub(super) fn resolve(
    raw: RawImap,
    path: &std::path::Path,
    has_tls: bool,
) -> Result<ImapConfig, ConfigError> {
    let addrs = |list: Option<Vec<Spanned<String>>>, key: &str| {
        let mut out = Vec::new();
        for a in list.unwrap_or_default() {
            let addr: SocketAddr = a.value.parse().map_err(|_| ConfigError::Invalid {
                path: path.to_owned(),
                line: a.referenced.line(),
                key: key.to_owned(),
                message: format!(
                    "{:?} is not an address with a port (e.g. 127.0.0.1:143 or [::]:993)",
                    a.value
                ),
            })?;
            out.push((addr, a.referenced.line()));
        }
        Ok::<_, ConfigError>(out)
    };
    let listen = addrs(raw.listen, "imap.listen")?;
    let listen_tls = addrs(raw.listen_tls, "imap.listen_tls")?;
    if let Some((_, line)) = listen_tls.first()
        && !has_tls
    {
        return Err(ConfigError::Invalid {
            path: path.to_owned(),
            line: *line,
            key: "imap.listen_tls".into(),
            message: "implicit TLS needs a certificate: add tls: {cert: ..., key: ...}".into(),
        });
    }
    Ok(ImapConfig {
        listen: listen.into_iter().map(|(a, _)| a).collect(),
        listen_tls: listen_tls.into_iter().map(|(a, _)| a).collect(),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    fn parse(text: &str) -> Result<Config, crate::config::ConfigError> {
        Config::parse(text, Path::new("/etc/ownmail/ownmail.yaml"))
    }

    #[test]
    fn addresses_parse_and_errors_name_line_and_key() {
        let c = parse("imap:\n  listen: [\"127.0.0.1:143\", \"[::1]:1143\"]\n").unwrap();
        assert_eq!(c.imap.listen.len(), 2);
        assert!(c.imap.listen_tls.is_empty());
        let msg = parse("imap:\n  listen: [\"localhost\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("line 2") && msg.contains("imap.listen"),
            "{msg}"
        );
        let msg = parse("imap:\n  listen_tls: [\"0.0.0.0:993\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("imap.listen_tls") && msg.contains("tls:"),
            "{msg}"
        );
        let msg = parse("imap:\n  lisen: []\n").unwrap_err().to_string();
        assert!(msg.contains("lisen"), "{msg}");
        let c = parse("tls: {cert: c.pem, key: k.pem}\nimap: {listen_tls: [\"0.0.0.0:993\"]}\n")
            .unwrap();
        assert_eq!(c.imap.listen_tls[0].port(), 993);
    }
}
