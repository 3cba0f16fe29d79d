//! TLS for our servers: the certificate and key from the configuration's
//! `tls:` section (PEM files), read again when either file changes, so a
//! renewed certificate (certbot, acme.sh) is served without a restart.
//!
//! The key may be PKCS#8 (`BEGIN PRIVATE KEY`), or the older RSA or EC forms
//! (`BEGIN RSA PRIVATE KEY`, `BEGIN EC PRIVATE KEY`). TLS 1.2 is the oldest
//! version we accept (RFC 8996).
//!
//! Never: serve a key that does not match the certificate (OpenSSL checks
//! when the acceptor is built), or fall back to no TLS.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use super::tls::TlsError;

/// The most a certificate or key file may hold: a long chain is a few
/// kilobytes.
pub const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// A server identity (certificate chain and key) that follows its files.
#[derive(Debug)]
pub struct ServerIdentity {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<Loaded>,
}

#[derive(Debug, Clone)]
struct Loaded {
    stamp: Stamp,
    acceptor: tokio_native_tls::TlsAcceptor,
}

/// What tells us a file changed: its modification time, size and inode.
type Stamp = [(Option<SystemTime>, u64, u64); 2];

impl ServerIdentity {
    /// Loads the certificate chain and the key; an error names the file.
    pub fn load(cert: &Path, key: &Path) -> Result<ServerIdentity, TlsError> {
        let stamp = stamp(cert, key);
        let acceptor = build(cert, key)?;
        Ok(ServerIdentity {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: Mutex::new(Loaded { stamp, acceptor }),
        })
    }

    /// The acceptor for a new connection: the files are read again when
    /// they changed since the last look (two `stat`s per connection). A
    /// broken new pair is logged and the old one kept, so a renewal caught
    /// half-written does not take the service down.
    pub fn acceptor(&self) -> tokio_native_tls::TlsAcceptor {
        let now = stamp(&self.cert, &self.key);
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if now != current.stamp {
            match build(&self.cert, &self.key) {
                Ok(acceptor) => {
                    tracing::info!("{}: certificate reloaded", self.cert.display());
                    *current = Loaded {
                        stamp: now,
                        acceptor,
                    };
                }
                Err(e) => {
                    tracing::error!("{e} (still serving the certificate loaded before)");
                    // Not retried until the files change again.
                    current.stamp = now;
                }
            }
        }
        current.acceptor.clone()
    }
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let one = |p: &Path| match std::fs::metadata(p) {
        Ok(m) => (m.modified().ok(), m.len(), m.ino()),
        Err(_) => (None, 0, 0),
    };
    [one(cert), one(key)]
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, TlsError> {
    let fail = |why: String| TlsError::Setup(format!("{what} {}: {why}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if meta.len() > MAX_PEM_BYTES {
        return Err(fail(format!(
            "{} bytes; a PEM file may have at most {MAX_PEM_BYTES}",
            meta.len()
        )));
    }
    std::fs::read(path).map_err(|e| fail(e.to_string()))
}

fn build(cert: &Path, key: &Path) -> Result<tokio_native_tls::TlsAcceptor, TlsError> {
    let cert_pem = read_pem(cert, "certificate")?;
    let key_pem = read_pem(key, "key")?;
    // native-tls takes PKCS#8 only; OpenSSL reads every PEM key form.
    let pkey = openssl::pkey::PKey::private_key_from_pem(&key_pem).map_err(|e| {
        TlsError::Setup(format!("key {}: not a PEM private key: {e}", key.display()))
    })?;
    let pkcs8 = pkey
        .private_key_to_pem_pkcs8()
        .map_err(|e| TlsError::Setup(format!("key {}: {e}", key.display())))?;
    let identity = native_tls::Identity::from_pkcs8(&cert_pem, &pkcs8).map_err(|e| {
        TlsError::Setup(format!(
            "certificate {}: not a PEM certificate chain: {e}",
            cert.display()
        ))
    })?;
    let acceptor = native_tls::TlsAcceptor::builder(identity)
        .min_protocol_version(Some(native_tls::Protocol::Tlsv12))
        .build()
        .map_err(|e| {
            TlsError::Setup(format!(
                "certificate {} and key {} do not go together: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    Ok(tokio_native_tls::TlsAcceptor::from(acceptor))
}
