//! TLS for our clients: the server's certificate is verified against the
//! system's trust store (OpenSSL's default paths, which honour
//! `SSL_CERT_FILE` and `SSL_CERT_DIR`) and its name checked, or, when a
//! fingerprint is pinned, the certificate must be exactly that one. There
//! is no third way: a certificate is never silently accepted unverified.
//!
//! TLS 1.2 is the oldest version we speak (RFC 8996 retired 1.0 and 1.1).

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_native_tls::TlsStream;

/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How to check the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The name the certificate must carry (or the literal address), also
    /// sent as SNI when it is a name.
    pub host: String,
    /// When set, the certificate must have this fingerprint, and the trust
    /// store and the name are not consulted (a self-signed certificate).
    pub fingerprint: Option<Fingerprint>,
}

/// A pinned certificate: the SHA-256 of its DER encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// `sha256:` then 64 hex digits, colons between pairs allowed, as
    /// `openssl x509 -noout -fingerprint -sha256` prints it.
    pub fn parse(text: &str) -> Option<Fingerprint> {
        let hex = text
            .strip_prefix("sha256:")
            .or_else(|| text.strip_prefix("SHA256:"))
            .or_else(|| text.strip_prefix("sha256 Fingerprint="))?;
        let digits: Vec<u8> = hex.bytes().filter(|b| *b != b':').collect();
        if digits.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let s = std::str::from_utf8(pair).ok()?;
            out[i] = u8::from_str_radix(s, 16).ok()?;
        }
        Some(Fingerprint(out))
    }

    /// The fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Fingerprint {
        Fingerprint(openssl::sha::sha256(der))
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sha256:")?;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS with {host} failed: {reason}")]
    Handshake { host: String, reason: String },
    #[error("TLS with {host}: no answer in {} seconds", HANDSHAKE_TIMEOUT.as_secs())]
    Timeout { host: String },
    #[error(
        "{host}'s certificate is not trusted: {reason} (if it is self-signed and you trust it, \
         pin it with tls_fingerprint)"
    )]
    Untrusted { host: String, reason: String },
    #[error(
        "{host}'s certificate has fingerprint {got}, not the pinned {expected}: refused \
         (if the server's certificate was replaced, check the new one and update tls_fingerprint)"
    )]
    Mismatch {
        host: String,
        expected: Fingerprint,
        got: Fingerprint,
    },
    #[error("{host} sent no certificate")]
    NoCertificate { host: String },
    #[error("TLS is already on")]
    AlreadyTls,
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

impl TlsError {
    /// A certificate we refuse stays refused until someone acts; a broken
    /// handshake may be the network's doing.
    pub fn is_temporary(&self) -> bool {
        matches!(self, TlsError::Handshake { .. } | TlsError::Timeout { .. })
    }
}

/// Runs the TLS handshake on a connection and checks the certificate.
pub async fn handshake(
    tcp: TcpStream,
    settings: &TlsSettings,
) -> Result<TlsStream<TcpStream>, TlsError> {
    let host = settings.host.clone();
    let mut builder = native_tls::TlsConnector::builder();
    builder.min_protocol_version(Some(native_tls::Protocol::Tlsv12));
    if settings.fingerprint.is_some() {
        // The pin replaces the trust store and the name check; it is
        // checked below, before a single byte of the protocol is read.
        builder
            .danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true);
    }
    let connector = builder
        .build()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let connector = tokio_native_tls::TlsConnector::from(connector);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(&host, tcp)).await {
        Err(_) => return Err(TlsError::Timeout { host }),
        Ok(Err(e)) => {
            let reason = e.to_string();
            // OpenSSL says why in words only.
            return Err(if reason.contains("certificate verify failed") {
                TlsError::Untrusted {
                    host,
                    reason: verify_reason(&reason),
                }
            } else {
                TlsError::Handshake { host, reason }
            });
        }
        Ok(Ok(tls)) => tls,
    };
    if let Some(expected) = settings.fingerprint {
        let got =
            peer_fingerprint(&tls).ok_or_else(|| TlsError::NoCertificate { host: host.clone() })?;
        if got != expected {
            return Err(TlsError::Mismatch {
                host,
                expected,
                got,
            });
        }
    }
    Ok(tls)
}

/// The fingerprint of the certificate the server presented.
pub fn peer_fingerprint(tls: &TlsStream<TcpStream>) -> Option<Fingerprint> {
    let cert = tls.get_ref().peer_certificate().ok()??;
    Some(Fingerprint::of_der(&cert.to_der().ok()?))
}

/// OpenSSL's "error:...:certificate verify failed:...: (self-signed
/// certificate)" made readable: the part in parentheses.
fn verify_reason(text: &str) -> String {
    match (text.rfind('('), text.rfind(')')) {
        (Some(a), Some(b)) if a < b => text[a + 1..b].to_owned(),
        _ => "certificate verify failed".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_as_openssl_prints_them() {
        let hex = "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
        let fp = Fingerprint::parse(&format!("sha256:{hex}")).unwrap();
        assert_eq!(fp.to_string(), format!("sha256:{hex}"));
        assert_eq!(
            Fingerprint::parse(&format!("sha256 Fingerprint={hex}")),
            Some(fp)
        );
        assert_eq!(
            Fingerprint::parse(&format!("sha256:{}", hex.replace(':', "").to_lowercase())),
            Some(fp)
        );
        for bad in [
            "",
            "sha256:",
            "md5:00",
            &format!("sha1:{hex}"),
            &format!("sha256:{hex}:00"),
            "sha256:zz",
        ] {
            assert_eq!(Fingerprint::parse(bad), None, "{bad}");
        }
        assert_eq!(
            verify_reason(
                "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:../ssl/statem/statem_clnt.c:1889: (self-signed certificate)"
            ),
            "self-signed certificate"
        );
    }
}
