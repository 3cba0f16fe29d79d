//! TLS for our servers (IMAP, SMTP, the tunnel's server mode): the
//! certificate and key from the configuration's `tls:` section (PEM files),
//! with Mozilla's "intermediate" settings (TLS 1.2 and 1.3, RFC 8996), read
//! again when either file changes, so a renewed certificate (certbot,
//! acme.sh) is served without a restart.
//!
//! The key may be PKCS#8 (`BEGIN PRIVATE KEY`), or the older RSA or EC forms
//! (`BEGIN RSA PRIVATE KEY`, `BEGIN EC PRIVATE KEY`).
//!
//! Never: serve a key that does not match the certificate (checked each
//! time a pair is loaded), or fall back to no TLS.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};

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

#[derive(Clone)]
struct Loaded {
    stamp: Stamp,
    acceptor: Arc<SslAcceptor>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("stamp", &self.stamp)
            .finish()
    }
}

/// What tells us a file changed: its modification time, size and inode.
type Stamp = [(Option<SystemTime>, u64, u64); 2];

impl ServerIdentity {
    /// The configuration's `tls:` section, loaded; an error names the file.
    pub fn from_config(tls: &crate::config::TlsConfig) -> Result<ServerIdentity, TlsError> {
        ServerIdentity::load(&tls.cert, &tls.key)
    }

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
    pub fn acceptor(&self) -> Arc<SslAcceptor> {
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

/// A PEM file's size, checked before OpenSSL reads it.
fn check_size(path: &Path, what: &str) -> Result<(), TlsError> {
    let fail = |why: String| TlsError::Setup(format!("{what} {}: {why}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if meta.len() > MAX_PEM_BYTES {
        return Err(fail(format!(
            "{} bytes; a PEM file may have at most {MAX_PEM_BYTES}",
            meta.len()
        )));
    }
    Ok(())
}

fn build(cert: &Path, key: &Path) -> Result<Arc<SslAcceptor>, TlsError> {
    check_size(cert, "certificate")?;
    check_size(key, "key")?;
    let setup = |what: &str, path: &Path, e: openssl::error::ErrorStack| {
        TlsError::Setup(format!("{what} {}: {e}", path.display()))
    };
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    b.set_certificate_chain_file(cert)
        .map_err(|e| setup("certificate", cert, e))?;
    b.set_private_key_file(key, SslFiletype::PEM)
        .and_then(|()| b.check_private_key())
        .map_err(|e| {
            if e.to_string().contains("key values mismatch") {
                TlsError::Setup(format!(
                    "key {} does not match the certificate in {}",
                    key.display(),
                    cert.display()
                ))
            } else {
                setup("key", key, e)
            }
        })?;
    Ok(Arc::new(b.build()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh self-signed pair (P-256) as cert.pem and key.pem in `dir`.
    fn pair(dir: &Path) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let out = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-days", "2", "-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl (the Debian package openssl)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (cert, key)
    }

    fn served(identity: &ServerIdentity) -> Vec<u8> {
        let acceptor = identity.acceptor();
        let cert = acceptor.context().certificate().expect("a certificate");
        cert.digest(openssl::hash::MessageDigest::sha256())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn a_renewed_pair_is_served_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(dir.path());
        let identity = ServerIdentity::load(&cert, &key).unwrap();
        let first = served(&identity);
        assert_eq!(served(&identity), first, "nothing changed");

        // certbot's way: new files moved into place.
        let renewed = tempfile::tempdir().unwrap();
        let (new_cert, new_key) = pair(renewed.path());
        std::fs::rename(&new_key, &key).unwrap();
        std::fs::rename(&new_cert, &cert).unwrap();
        let second = served(&identity);
        assert_ne!(second, first, "the renewed certificate is served");

        // A key that does not match: the last good pair stays.
        let other = tempfile::tempdir().unwrap();
        let (_, other_key) = pair(other.path());
        std::fs::rename(&other_key, &key).unwrap();
        assert_eq!(served(&identity), second);
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(dir.path());
        let missing = dir.path().join("missing.pem");
        let e = ServerIdentity::load(&missing, &key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.pem"), "{e}");
        std::fs::write(&key, "not a key").unwrap();
        let e = ServerIdentity::load(&cert, &key).unwrap_err().to_string();
        assert!(e.contains("key.pem"), "{e}");
        let other = tempfile::tempdir().unwrap();
        let (_, other_key) = pair(other.path());
        let e = ServerIdentity::load(&cert, &other_key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not match"), "{e}");
    }
}
