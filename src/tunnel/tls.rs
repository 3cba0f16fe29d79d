//! `tunnel tls`: plaintext on this machine's loopback, TLS on the network;
//! stunnel's two modes.
//!
//! - Client ([`run_client`], [`run_stdio`]): a local plaintext port (or
//!   stdin/stdout) whose connections are carried over TLS to a server,
//!   whose certificate is verified (system store or `--ca`) or pinned.
//! - Server ([`run_server`]): TLS connections accepted on the network and
//!   carried in plaintext to a service on loopback, with the configuration's
//!   certificate (reloaded when it is renewed).
//!
//! Bytes are relayed as they come, both ways, each direction closed on its
//! own (a half-close travels through). Connections are capped at
//! [`MAX_CONNECTIONS`]; each holds two [`BUFFER`]-sized buffers.
//!
//! Never: carry a byte before the certificate was verified or the pin
//! matched, or put plaintext on anything but loopback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::TunnelError;
use crate::net::tls::{Connector, TlsError};
use crate::net::tls_server::ServerIdentity;

/// The most connections carried at once, per tunnel; more wait in the
/// listen queue.
pub const MAX_CONNECTIONS: usize = 1000;
/// The relay buffer per direction: one TLS record's worth of plaintext
/// (RFC 8446 5.1: at most 2^14 bytes) times four.
pub const BUFFER: usize = 64 * 1024;
/// How long a TCP connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A `HOST:PORT` (IPv6 in brackets), split.
pub fn parse_host_port(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) => inner,
        // An IPv6 address without brackets: where does the port start?
        None if host.contains(':') => return None,
        None => host,
    };
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    if host.is_empty() || host.contains(['[', ']', '/', ' ']) || host.starts_with('-') {
        return None;
    }
    if host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_err() {
        return None;
    }
    Some((host.to_owned(), port))
}

/// Where the client mode goes: the server and how to check it.
#[derive(Debug, Clone)]
pub struct Remote {
    pub host: String,
    pub port: u16,
    pub connector: Connector,
}

impl Remote {
    /// TCP to the server, then the TLS handshake with its checks.
    pub async fn connect(&self) -> Result<tokio_openssl::SslStream<TcpStream>, TunnelError> {
        let server = display_host_port(&self.host, self.port);
        let tcp = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => return Err(TunnelError::Connect { server, source }),
            Err(_) => {
                return Err(TunnelError::Connect {
                    server,
                    source: std::io::ErrorKind::TimedOut.into(),
                });
            }
        };
        let _ = tcp.set_nodelay(true);
        self.connector.connect(tcp).await.map_err(TunnelError::from)
    }
}

fn display_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Refuses a plaintext address that is not on this machine.
pub fn require_loopback(addr: SocketAddr, what: &str) -> Result<(), TunnelError> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(TunnelError::Usage(format!(
            "{what} {addr} is not a loopback address: the plaintext side of the tunnel \
             stays on this machine (use 127.0.0.1)"
        )))
    }
}

/// Binds a listener, naming the address in the error.
pub async fn listen(addr: SocketAddr) -> Result<TcpListener, TunnelError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| TunnelError::Listen {
            addr: addr.to_string(),
            source,
        })
}

/// Client mode: each connection to `listener` is carried over TLS to
/// `remote`, until `stop` completes. A connection the server's certificate
/// fails is closed at once and the reason logged (the pin's mismatch with
/// the fingerprint seen).
pub async fn run_client<F>(
    listener: TcpListener,
    remote: Arc<Remote>,
    stop: F,
) -> Result<(), TunnelError>
where
    F: std::future::Future<Output = ()>,
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(stop);
    while let Some((permit, local, peer)) = next_connection(&listener, &slots, &mut stop).await {
        let remote = Arc::clone(&remote);
        tokio::spawn(async move {
            let _permit = permit;
            let _ = local.set_nodelay(true);
            match remote.connect().await {
                Ok(tls) => {
                    if let Err(e) = relay(local, tls).await {
                        tracing::debug!("{peer}: {e}");
                    }
                }
                Err(e) => tracing::error!("{e}"),
            }
        });
    }
    Ok(())
}

/// Client mode on standard input and output: one connection, for mutt's
/// `tunnel` and mbsync's `Tunnel`. Returns when the server closes.
pub async fn run_stdio(remote: &Remote) -> Result<(), TunnelError> {
    let tls = remote.connect().await?;
    let (mut from_server, mut to_server) = tokio::io::split(tls);
    let mut stdin = tokio::io::stdin();
    let mut stdout = tokio::io::stdout();
    let upstream = async {
        let mut buf = vec![0u8; BUFFER];
        copy(&mut stdin, &mut to_server, &mut buf).await?;
        to_server.shutdown().await
    };
    let downstream = async {
        let mut buf = vec![0u8; BUFFER];
        copy(&mut from_server, &mut stdout, &mut buf).await?;
        stdout.flush().await
    };
    tokio::pin!(upstream);
    tokio::pin!(downstream);
    // The server closing ends the session, whatever stdin does (a client
    // may keep it open after LOGOUT).
    let mut up_done = false;
    loop {
        tokio::select! {
            r = &mut upstream, if !up_done => {
                up_done = true;
                if let Err(e) = r {
                    return Err(TunnelError::Relay(e));
                }
            }
            // The client closing its end (mutt quit) ends the session too.
            r = &mut downstream => return match r {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                r => r.map_err(TunnelError::Relay),
            },
        }
    }
}

/// Server mode: each TLS connection to `listener` is carried in plaintext
/// to `to` (a loopback address), until `stop` completes.
pub async fn run_server<F>(
    listener: TcpListener,
    identity: Arc<ServerIdentity>,
    to: SocketAddr,
    stop: F,
) -> Result<(), TunnelError>
where
    F: std::future::Future<Output = ()>,
{
    require_loopback(to, "--to")?;
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(stop);
    while let Some((permit, tcp, peer)) = next_connection(&listener, &slots, &mut stop).await {
        let identity = Arc::clone(&identity);
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tcp.set_nodelay(true);
            let tls = match crate::net::tls::accept(&identity, tcp).await {
                Ok(tls) => tls,
                // The client's doing (a scanner, a wrong protocol): quiet.
                Err(e) => return tracing::info!("{peer}: {e}"),
            };
            let plain = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(to)).await {
                Ok(Ok(p)) => p,
                // Ours: the service behind us is down. Loud.
                Ok(Err(e)) => return tracing::error!("{peer}: cannot connect to {to}: {e}"),
                Err(_) => return tracing::error!("{peer}: {to} did not accept in time"),
            };
            let _ = plain.set_nodelay(true);
            if let Err(e) = relay(plain, tls).await {
                tracing::debug!("{peer}: {e}");
            }
        });
    }
    Ok(())
}

/// Waits for a free connection slot, then for a connection; `None` once
/// `stop` completes.
async fn next_connection<F>(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    stop: &mut std::pin::Pin<&mut F>,
) -> Option<(OwnedSemaphorePermit, TcpStream, SocketAddr)>
where
    F: std::future::Future<Output = ()>,
{
    let permit = tokio::select! {
        p = Arc::clone(slots).acquire_owned() => p.expect("never closed"),
        _ = stop.as_mut() => return None,
    };
    loop {
        tokio::select! {
            a = listener.accept() => match a {
                Ok((tcp, peer)) => return Some((permit, tcp, peer)),
                Err(e) => accept_failed(e).await,
            },
            _ = stop.as_mut() => return None,
        }
    }
}

/// An accept error (out of file descriptors, mostly): logged, and a pause
/// so that a persistent one does not spin.
async fn accept_failed(e: std::io::Error) {
    tracing::error!("accepting a connection: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Connects to `host:port`, runs the TLS handshake accepting any
/// certificate, and describes the certificate.
pub async fn fingerprint(
    host: &str,
    port: u16,
) -> Result<crate::net::tls::CertificateInfo, TunnelError> {
    let server = display_host_port(host, port);
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port))).await {
        Ok(Ok(t)) => t,
        Ok(Err(source)) => return Err(TunnelError::Connect { server, source }),
        Err(_) => {
            return Err(TunnelError::Connect {
                server,
                source: std::io::ErrorKind::TimedOut.into(),
            });
        }
    };
    Ok(crate::net::tls::inspect(host, tcp).await?)
}

/// Relays both ways until both directions are closed; each end's EOF is
/// passed on as a shutdown of the other's write side.
pub async fn relay<A, B>(mut a: A, mut b: B) -> std::io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    tokio::io::copy_bidirectional_with_sizes(&mut a, &mut b, BUFFER, BUFFER).await
}

async fn copy<R, W>(r: &mut R, w: &mut W, buf: &mut [u8]) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut total = 0;
    loop {
        let n = r.read(buf).await?;
        if n == 0 {
            return Ok(total);
        }
        w.write_all(&buf[..n]).await?;
        w.flush().await?;
        total += n as u64;
    }
}

impl From<TlsError> for TunnelError {
    fn from(e: TlsError) -> TunnelError {
        TunnelError::Tls(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        assert_eq!(
            parse_host_port("mail.example.org:993"),
            Some(("mail.example.org".into(), 993))
        );
        assert_eq!(parse_host_port("[::1]:993"), Some(("::1".into(), 993)));
        assert_eq!(
            parse_host_port("127.0.0.1:465"),
            Some(("127.0.0.1".into(), 465))
        );
        for bad in [
            "",
            "mail",
            "mail:",
            ":993",
            "mail:0",
            "mail:70000",
            "::1:993",
            "-x:1",
            "a b:1",
        ] {
            assert_eq!(parse_host_port(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn relay_passes_half_closes_through() {
        use tokio::io::AsyncReadExt;
        let (mut client, near) = tokio::io::duplex(1024);
        let (far, mut server) = tokio::io::duplex(1024);
        let task = tokio::spawn(relay(near, far));
        client.write_all(b"hello").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello");
        // The other way still works after the client's half-close.
        server.write_all(b"bye").await.unwrap();
        server.shutdown().await.unwrap();
        let mut back = Vec::new();
        client.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"bye");
        assert_eq!(task.await.unwrap().unwrap(), (5, 3));
    }

    #[test]
    fn plaintext_stays_on_loopback() {
        assert!(require_loopback("127.0.0.1:25".parse().unwrap(), "--to").is_ok());
        assert!(require_loopback("[::1]:25".parse().unwrap(), "--to").is_ok());
        let e = require_loopback("192.0.2.1:25".parse().unwrap(), "--listen").unwrap_err();
        assert!(e.to_string().contains("not a loopback address"), "{e}");
    }
}
