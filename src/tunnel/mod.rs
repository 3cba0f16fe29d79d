//! `ownmail tunnel`: mail from any network, encrypted, with nothing to
//! babysit.
//!
//! - [`ssh`]: the system's OpenSSH client forwarding local ports to the
//!   mail server, supervised (restarts with backoff, health checks that read
//!   the SMTP and IMAP greetings through each forward).
//! - [`tls`]: stunnel's two modes, a local plaintext port (or stdin/stdout)
//!   carried over TLS to a server whose certificate is verified or pinned,
//!   and TLS accepted in front of a plain local service.
//! - [`forward`]: one ssh forward, its syntax and its health check.
//!
//! Plaintext never leaves loopback: every local listener and every
//! plaintext destination must be a loopback address.

pub mod forward;
pub mod ssh;
pub mod tls;

use crate::error::{ExitStatus, sysexits};
use crate::net::tls::TlsError;

/// Why a tunnel could not run.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("{0}")]
    Usage(String),
    #[error(
        "cannot run {program}: it is not on PATH ({path}); install OpenSSH's client \
         (Debian: apt install openssh-client)"
    )]
    SshMissing { program: String, path: String },
    #[error("cannot run {program}: {source}")]
    SshSpawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{hint}; ssh said:\n{words}")]
    SshRefused {
        why: ssh::Permanent,
        hint: String,
        words: String,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot connect to {server}: {source}")]
    Connect {
        server: String,
        source: std::io::Error,
    },
    #[error("{}", tls_message(.0))]
    Tls(TlsError),
    #[error("relaying: {0}")]
    Relay(std::io::Error),
    /// A file named on the command line that cannot be read: not a
    /// temporary failure, so that cron or systemd do not retry for ever.
    #[error("cannot read {option} {}: {source}", path.display())]
    Unreadable {
        option: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// The TLS errors in the tunnel's words: the hints name its options.
fn tls_message(e: &TlsError) -> String {
    match e {
        TlsError::Mismatch {
            host,
            expected,
            got,
        } => format!(
            "{host}'s certificate has fingerprint {got}, not the pinned {expected}: refused \
             (if the server's certificate was replaced, check the new one on a network you \
             trust with `ownmail tunnel fingerprint`, and pin it with --pin)"
        ),
        TlsError::Untrusted {
            host,
            reason,
            got: Some(got),
        } => format!(
            "{host}'s certificate is not trusted: {reason}; its fingerprint is {got}: refused \
             (if you trust this certificate, e.g. your own self-signed one, check the \
             fingerprint on a network you trust with `ownmail tunnel fingerprint` or `openssl \
             x509 -noout -fingerprint -sha256` on the server, and pin it with --pin {got}; for \
             a private CA: --ca FILE)"
        ),
        TlsError::Untrusted {
            host,
            reason,
            got: None,
        } => format!(
            "{host}'s certificate is not trusted: {reason}: refused (for a self-signed \
             certificate, pin it: --pin with the fingerprint from `ownmail tunnel fingerprint`; \
             for a private CA: --ca FILE)"
        ),
        other => other.to_string(),
    }
}

impl ExitStatus for TunnelError {
    fn exit_code(&self) -> u8 {
        match self {
            TunnelError::Usage(_) => sysexits::USAGE,
            TunnelError::SshMissing { .. } | TunnelError::SshSpawn { .. } => sysexits::UNAVAILABLE,
            TunnelError::SshRefused { why, .. } => match why {
                ssh::Permanent::HostKey | ssh::Permanent::HostKeyChanged | ssh::Permanent::Auth => {
                    sysexits::NOPERM
                }
                ssh::Permanent::BadOption => sysexits::USAGE,
                ssh::Permanent::PortInUse => sysexits::UNAVAILABLE,
            },
            TunnelError::Listen { .. } => sysexits::UNAVAILABLE,
            TunnelError::Connect { .. } | TunnelError::Relay(_) => sysexits::TEMPFAIL,
            TunnelError::Tls(e) if e.is_temporary() => sysexits::TEMPFAIL,
            TunnelError::Tls(TlsError::Setup(_)) => sysexits::CONFIG,
            TunnelError::Tls(_) => sysexits::NOPERM,
            // As convert-mbox and spamcheck answer for the files they are given.
            TunnelError::Unreadable { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound
                | std::io::ErrorKind::PermissionDenied
                | std::io::ErrorKind::NotADirectory
                | std::io::ErrorKind::IsADirectory => sysexits::NOINPUT,
                _ => sysexits::IOERR,
            },
        }
    }
}
