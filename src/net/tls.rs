//! TLS for our clients: the server's certificate is verified against the
//! system's trust store (OpenSSL's default paths, which honour
//! `SSL_CERT_FILE` and `SSL_CERT_DIR`) and its name checked, or, when a
//! fingerprint is pinned, the certificate must be exactly that one. There
//! is no third way: a certificate is never silently accepted unverified.
//!
//! TLS 1.2 is the oldest version we speak (RFC 8996 retired 1.0 and 1.1).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpStream;

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
        "{host}'s certificate is not trusted: {reason}{} (if it is self-signed and you trust \
         it, pin it with tls_fingerprint)",
        match .got { Some(fp) => format!("; its fingerprint is {fp}"), None => String::new() }
    )]
    Untrusted {
        host: String,
        /// OpenSSL's verification error ("self-signed certificate",
        /// "hostname mismatch", "certificate has expired", ...).
        reason: String,
        /// The refused certificate's fingerprint, for a person to check and
        /// pin; `None` where the TLS library does not show it.
        got: Option<Fingerprint>,
    },
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

/// Runs the TLS handshake on a connection and checks the certificate (or
/// the pin), for one connection (fetch's POP3 and IMAP, STLS and
/// STARTTLS). On OpenSSL directly, as [`Connector`], and not native-tls:
/// native-tls keeps a refused certificate to itself, and the user needs
/// its fingerprint to check and pin it.
pub async fn handshake(
    tcp: TcpStream,
    settings: &TlsSettings,
) -> Result<tokio_openssl::SslStream<TcpStream>, TlsError> {
    let trust = match settings.fingerprint {
        Some(fp) => Trust::Pin(fp),
        None => Trust::System,
    };
    Connector::new(&settings.host, &trust)?.connect(tcp).await
}

/// A pinned certificate's check: `got` (the fingerprint of the
/// certificate the server presented, if any) must be `expected`.
fn check_pin(
    host: String,
    expected: Fingerprint,
    got: Option<Fingerprint>,
) -> Result<(), TlsError> {
    match got {
        None => Err(TlsError::NoCertificate { host }),
        Some(got) if got != expected => Err(TlsError::Mismatch {
            host,
            expected,
            got,
        }),
        Some(_) => Ok(()),
    }
}

/// A failed client handshake, told apart: an untrusted certificate is not
/// the network's fault.
fn handshake_error(host: String, e: &native_tls::Error) -> TlsError {
    let reason = e.to_string();
    // OpenSSL says why in words only.
    if reason.contains("certificate verify failed") {
        TlsError::Untrusted {
            host,
            reason: verify_reason(&reason),
            // native-tls keeps the refused certificate to itself ([`inspect`]
            // accepts every certificate: this is not reached there).
            got: None,
        }
    } else {
        TlsError::Handshake { host, reason }
    }
}

/// Whom a [`Connector`] trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The system's trust store, and the name checked.
    System,
    /// Only the CA certificates in this PEM text (one or more), and the
    /// name checked: for a private CA.
    Ca(Vec<u8>),
    /// Exactly the certificate with this fingerprint, whoever signed it.
    Pin(Fingerprint),
}

/// A client TLS setup built once and used for every connection, for one
/// server: the trust store is read once, and the last TLS session is kept
/// and offered again (RFC 8446 2.2: resumption), so a tunnel's connections
/// after the first skip the certificate exchange and its signatures.
///
/// Built on OpenSSL directly (native-tls cannot resume sessions). A resumed
/// session still carries the certificate it was made with, so the pin is
/// checked on every connection, resumed or not.
#[derive(Clone)]
pub struct Connector {
    host: String,
    pin: Option<Fingerprint>,
    ctx: openssl::ssl::SslConnector,
    session: Arc<Mutex<Option<openssl::ssl::SslSession>>>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("host", &self.host)
            .field("pin", &self.pin)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// A connector for the server `host` (a name or a literal address: the
    /// certificate must carry it, unless pinned).
    pub fn new(host: &str, trust: &Trust) -> Result<Connector, TlsError> {
        use openssl::ssl::{
            SslConnector, SslMethod, SslSessionCacheMode, SslVerifyMode, SslVersion,
        };
        let setup = |e: openssl::error::ErrorStack| TlsError::Setup(e.to_string());
        // Verifies the peer against the default paths (system store).
        let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(setup)?;
        b.set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(setup)?;
        let mut pin = None;
        match trust {
            Trust::System => {}
            Trust::Ca(pem) => {
                let certs = openssl::x509::X509::stack_from_pem(pem).map_err(|e| {
                    TlsError::Setup(format!("cannot read the CA certificates: {e}"))
                })?;
                if certs.is_empty() {
                    return Err(TlsError::Setup(
                        "the CA file holds no PEM certificate".to_owned(),
                    ));
                }
                let mut store = openssl::x509::store::X509StoreBuilder::new().map_err(setup)?;
                for cert in certs {
                    store.add_cert(cert).map_err(setup)?;
                }
                b.set_cert_store(store.build());
            }
            Trust::Pin(fp) => {
                // The pin replaces the store and the name; it is checked
                // after the handshake, before a byte is relayed or read.
                b.set_verify(SslVerifyMode::NONE);
                pin = Some(*fp);
            }
        }
        let session = Arc::new(Mutex::new(None));
        let keep = Arc::clone(&session);
        b.set_session_cache_mode(SslSessionCacheMode::CLIENT);
        b.set_new_session_callback(move |_, s| {
            *keep.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
        });
        Ok(Connector {
            host: host.to_owned(),
            pin,
            ctx: b.build(),
            session,
        })
    }

    /// The server's name, as the certificate must carry it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Runs the handshake on `tcp` and checks the certificate (or the pin).
    pub async fn connect(
        &self,
        tcp: TcpStream,
    ) -> Result<tokio_openssl::SslStream<TcpStream>, TlsError> {
        let host = self.host.clone();
        let setup = |e: openssl::error::ErrorStack| TlsError::Setup(e.to_string());
        let mut config = self.ctx.configure().map_err(setup)?;
        if self.pin.is_some() {
            config.set_verify_hostname(false);
        }
        // SNI is sent for a name, not for a literal address (RFC 6066 3).
        let mut ssl = config.into_ssl(&host).map_err(setup)?;
        let cached = self
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(session) = cached {
            // SAFETY: the session came from this connector's own context
            // (the new-session callback above), as set_session requires.
            unsafe { ssl.set_session(&session) }.map_err(setup)?;
        }
        let mut tls = tokio_openssl::SslStream::new(ssl, tcp).map_err(setup)?;
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, std::pin::Pin::new(&mut tls).connect()).await
        {
            Err(_) => return Err(TlsError::Timeout { host }),
            Ok(Err(e)) => {
                let verify = tls.ssl().verify_result();
                return Err(if verify != openssl::x509::X509VerifyResult::OK {
                    TlsError::Untrusted {
                        host,
                        reason: verify.error_string().to_owned(),
                        got: refused_fingerprint(tls.ssl()),
                    }
                } else {
                    TlsError::Handshake {
                        host,
                        reason: e.to_string(),
                    }
                });
            }
            Ok(Ok(())) => {}
        }
        if let Some(expected) = self.pin {
            let got = tls
                .ssl()
                .peer_certificate()
                .and_then(|c| c.to_der().ok())
                .map(|der| Fingerprint::of_der(&der));
            if let Err(e) = check_pin(host, expected, got) {
                // Never offer that server's session again.
                *self.session.lock().unwrap_or_else(|e| e.into_inner()) = None;
                return Err(e);
            }
        }
        Ok(tls)
    }
}

/// The fingerprint of the certificate a failed verification refused. The
/// server sent it before OpenSSL judged it, and OpenSSL keeps the chain it
/// received (the server's own certificate first, on a client) even when
/// the handshake is abandoned; nothing was sent or read over the
/// connection, and it is closed.
fn refused_fingerprint(ssl: &openssl::ssl::SslRef) -> Option<Fingerprint> {
    let cert = match ssl.peer_certificate() {
        Some(cert) => cert.to_der().ok()?,
        None => ssl.peer_cert_chain()?.iter().next()?.to_der().ok()?,
    };
    Some(Fingerprint::of_der(&cert))
}

/// What a server's certificate says about itself, for a person deciding
/// whether to pin it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    pub fingerprint: Fingerprint,
    pub subject: String,
    pub issuer: String,
    pub not_after: String,
}

/// Runs a TLS handshake with `host` on `tcp`, accepts whatever certificate
/// comes, and describes it. Nothing is sent after the handshake.
pub async fn inspect(host: &str, tcp: TcpStream) -> Result<CertificateInfo, TlsError> {
    let mut builder = native_tls::TlsConnector::builder();
    builder
        .min_protocol_version(Some(native_tls::Protocol::Tlsv12))
        .danger_accept_invalid_certs(true)
        .danger_accept_invalid_hostnames(true);
    let connector = builder
        .build()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let connector = tokio_native_tls::TlsConnector::from(connector);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(host, tcp)).await {
        Err(_) => return Err(TlsError::Timeout { host: host.into() }),
        Ok(Err(e)) => return Err(handshake_error(host.into(), &e)),
        Ok(Ok(tls)) => tls,
    };
    let der = tls
        .get_ref()
        .peer_certificate()
        .ok()
        .flatten()
        .and_then(|c| c.to_der().ok())
        .ok_or_else(|| TlsError::NoCertificate { host: host.into() })?;
    let x509 = openssl::x509::X509::from_der(&der).map_err(|e| TlsError::Setup(e.to_string()))?;
    let name = |n: &openssl::x509::X509NameRef| {
        n.entries()
            .map(|e| {
                let key = e.object().nid().short_name().unwrap_or("?");
                let value = e.data().to_string().unwrap_or_else(|_| "?".into());
                format!("{key}={value}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    Ok(CertificateInfo {
        fingerprint: Fingerprint::of_der(&der),
        subject: name(x509.subject_name()),
        issuer: name(x509.issuer_name()),
        not_after: x509.not_after().to_string(),
    })
}

/// OpenSSL's "error:...:certificate verify failed:...: (self-signed
/// certificate)" made readable: the part in parentheses.
fn verify_reason(text: &str) -> String {
    match (text.rfind('('), text.rfind(')')) {
        (Some(a), Some(b)) if a < b => text[a + 1..b].to_owned(),
        _ => "certificate verify failed".to_owned(),
    }
}

/// Runs the server side of a TLS handshake on any stream, with
/// [`HANDSHAKE_TIMEOUT`], with the identity's current certificate.
pub async fn accept<S>(
    identity: &super::tls_server::ServerIdentity,
    stream: S,
) -> Result<tokio_openssl::SslStream<S>, TlsError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let host = "client".to_owned();
    let acceptor = identity.acceptor();
    let ssl =
        openssl::ssl::Ssl::new(acceptor.context()).map_err(|e| TlsError::Setup(e.to_string()))?;
    let mut tls =
        tokio_openssl::SslStream::new(ssl, stream).map_err(|e| TlsError::Setup(e.to_string()))?;
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, std::pin::Pin::new(&mut tls).accept()).await {
        Err(_) => Err(TlsError::Timeout { host }),
        Ok(Err(e)) => Err(TlsError::Handshake {
            host,
            reason: e.to_string(),
        }),
        Ok(Ok(())) => Ok(tls),
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
