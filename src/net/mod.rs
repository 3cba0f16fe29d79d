//! Connections: TCP, TLS (implicit or upgraded in place), and the guard
//! every byte from a remote server passes through.
//!
//! - [`connect`]: a TCP connection with a deadline, optionally TLS at once.
//! - [`Stream`]: plain or TLS, one type, so a session can upgrade in place
//!   (POP3 STLS, IMAP STARTTLS) without changing type.
//! - [`Guarded`]: an idle timeout on every read and write, and a byte
//!   budget a caller sets before each exchange ([`Guard::set_budget`]), so
//!   a server that stops talking or never stops talking is an error, not a
//!   hang or an allocation without end.
//! - [`tls`]: certificates verified against the system store, or pinned by
//!   fingerprint; never silently unverified.
//! - [`tls_server`]: our servers' certificate and key, reloaded when the
//!   files change.
//!
//! - [`stdio`]: standard input and output as one stream, the socket
//!   itself when inetd hands us one.
//! - [`server`]: listeners, the connection limit, graceful shutdown, and
//!   the driver that pumps an IMAP session over any stream.
//! - [`watch`]: one inotify instance telling idling sessions their folder changed.
//!
//! This module speaks no mail protocol.

pub mod server;
pub mod tls;
pub mod tls_server;
pub mod watch;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

pub use tls::{TlsError, TlsSettings};

/// Standard input and output, as a server run by inetd sees them.
#[derive(Debug)]
pub enum Stdio {
    /// One TCP socket on both (inetd, systemd `Accept=yes`): the client's
    /// address is known.
    Tcp {
        stream: TcpStream,
        peer: std::net::SocketAddr,
    },
    /// One Unix socket on both (socat `EXEC:`, stunnel `exec =`): a client
    /// whose address we cannot know.
    Unix(tokio::net::UnixStream),
    /// Pipes, a terminal, files: tokio's standard input and output, whose
    /// reads and writes run on blocking threads. A write there may still be
    /// under way when flushed (`Pending`), which OpenSSL's handshake takes
    /// for an error ("operation would block"): no TLS over these.
    Pipes(tokio::io::Join<tokio::io::Stdin, tokio::io::Stdout>),
}

/// Standard input and output as one stream; needs a tokio runtime. When
/// both are the same stream socket, it is used directly, non-blocking under
/// tokio's reactor, so a TLS handshake (STARTTLS) can run over it.
pub fn stdio() -> Stdio {
    match stdio_socket() {
        Some(s) => s,
        None => Stdio::Pipes(tokio::io::join(tokio::io::stdin(), tokio::io::stdout())),
    }
}

/// Whether descriptors `a` and `b` are the same socket: inetd hands the
/// connection over as standard input, output and error alike.
pub fn same_socket(a: std::os::fd::RawFd, b: std::os::fd::RawFd) -> bool {
    // SAFETY: fstat into zeroed structs of the right type.
    unsafe {
        let mut x: libc::stat = std::mem::zeroed();
        let mut y: libc::stat = std::mem::zeroed();
        libc::fstat(a, &mut x) == 0
            && libc::fstat(b, &mut y) == 0
            && (x.st_mode & libc::S_IFMT) == libc::S_IFSOCK
            && x.st_dev == y.st_dev
            && x.st_ino == y.st_ino
    }
}

fn stdio_socket() -> Option<Stdio> {
    use std::os::fd::{FromRawFd, OwnedFd};
    if !same_socket(0, 1) {
        return None;
    }
    // SAFETY: getsockopt and getsockname on fd 0 with buffers of the right
    // size; a failure leaves them unused.
    let (ty, family) = unsafe {
        let mut ty: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        if libc::getsockopt(
            0,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&raw mut ty).cast(),
            &mut len,
        ) != 0
        {
            return None;
        }
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getsockname(0, (&raw mut storage).cast(), &mut len) != 0 {
            return None;
        }
        (ty, i32::from(storage.ss_family))
    };
    if ty != libc::SOCK_STREAM {
        return None;
    }
    // A descriptor of our own, so that tokio closing it leaves 0 and 1 be.
    // O_NONBLOCK is set on the socket, which 0 and 1 share; inetd has
    // closed its copy, and nothing else here reads or writes them.
    // SAFETY: duplicating a descriptor we checked is open.
    let fd = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    match family {
        libc::AF_INET | libc::AF_INET6 => {
            let std = std::net::TcpStream::from(fd);
            let peer = std.peer_addr().ok()?;
            std.set_nonblocking(true).ok()?;
            let stream = TcpStream::from_std(std).ok()?;
            Some(Stdio::Tcp { stream, peer })
        }
        libc::AF_UNIX => {
            let std = std::os::unix::net::UnixStream::from(fd);
            std.set_nonblocking(true).ok()?;
            tokio::net::UnixStream::from_std(std).ok().map(Stdio::Unix)
        }
        _ => None,
    }
}

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may stay silent when we wait for it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a connection could not be made or broke.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot connect to {server}: {source}")]
    Connect { server: String, source: io::Error },
    #[error("cannot connect to {server}: no answer in {} seconds", CONNECT_TIMEOUT.as_secs())]
    ConnectTimeout { server: String },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl NetError {
    /// Whether trying again later may succeed.
    pub fn is_temporary(&self) -> bool {
        match self {
            NetError::Connect { .. } | NetError::ConnectTimeout { .. } => true,
            NetError::Tls(e) => e.is_temporary(),
        }
    }
}

/// Connects to `host:port` (a name is resolved by the system resolver; a
/// literal address is not looked up at all), with TLS at once when
/// `tls` is given.
pub async fn connect(host: &str, port: u16, tls: Option<&TlsSettings>) -> Result<Stream, NetError> {
    let server = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port))).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(source)) => return Err(NetError::Connect { server, source }),
        Err(_) => return Err(NetError::ConnectTimeout { server }),
    };
    let _ = tcp.set_nodelay(true);
    let stream = Stream::Plain(tcp);
    match tls {
        Some(settings) => Ok(stream.start_tls(settings).await?),
        None => Ok(stream),
    }
}

/// A TCP connection, with or without TLS.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_openssl::SslStream<TcpStream>>),
}

impl Stream {
    /// Starts TLS on a plain connection (STLS, STARTTLS). On a connection
    /// that already has TLS this is an error.
    pub async fn start_tls(self, settings: &TlsSettings) -> Result<Stream, TlsError> {
        match self {
            Stream::Plain(tcp) => Ok(Stream::Tls(Box::new(tls::handshake(tcp, settings).await?))),
            Stream::Tls(_) => Err(TlsError::AlreadyTls),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The knobs of a [`Guarded`] stream, shared so that a caller can turn
/// them while a library (async-imap) owns the stream.
#[derive(Debug, Clone)]
pub struct Guard {
    inner: Arc<GuardState>,
}

#[derive(Debug)]
struct GuardState {
    /// Bytes the server may still send; `u64::MAX`: no budget.
    budget: AtomicU64,
    /// The budget as last set, for the error message.
    granted: AtomicU64,
    idle_ms: AtomicU64,
}

impl Default for Guard {
    fn default() -> Self {
        Guard::new(IDLE_TIMEOUT)
    }
}

impl Guard {
    pub fn new(idle: Duration) -> Guard {
        Guard {
            inner: Arc::new(GuardState {
                budget: AtomicU64::new(u64::MAX),
                granted: AtomicU64::new(u64::MAX),
                idle_ms: AtomicU64::new(idle.as_millis() as u64),
            }),
        }
    }

    /// From now on the server may send at most `bytes` more; more is an
    /// error ([`BudgetExceeded`]).
    pub fn set_budget(&self, bytes: u64) {
        self.inner.granted.store(bytes, Ordering::Relaxed);
        self.inner.budget.store(bytes, Ordering::Relaxed);
    }

    /// How long the server may stay silent from now on (IMAP IDLE waits
    /// longer than a command does).
    pub fn set_idle_timeout(&self, idle: Duration) {
        self.inner
            .idle_ms
            .store(idle.as_millis() as u64, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        Duration::from_millis(self.inner.idle_ms.load(Ordering::Relaxed))
    }
}

/// The server sent more than the budget its exchange was given.
#[derive(Debug, thiserror::Error)]
#[error("the server sent more than the {0} bytes this exchange may take")]
pub struct BudgetExceeded(pub u64);

/// The server was silent for longer than the idle timeout.
#[derive(Debug, thiserror::Error)]
#[error("the server did not answer for {} seconds", .0.as_secs())]
pub struct IdleTimeout(pub Duration);

/// A stream with an idle timeout and a byte budget; see [`Guard`].
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    guard: Guard,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// Whether we are waiting for the server (the deadline runs); time we
    /// spend on our side between reads never counts.
    waiting: bool,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, guard: Guard) -> Guarded<S> {
        let deadline = Box::pin(tokio::time::sleep(guard.idle()));
        Guarded {
            inner,
            guard,
            deadline,
            waiting: false,
        }
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    pub fn into_inner(self) -> S {
        self.inner
    }

    fn progressed(&mut self) {
        self.waiting = false;
    }

    fn check_idle(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.waiting {
            self.waiting = true;
            let next = tokio::time::Instant::now() + self.guard.idle();
            self.deadline.as_mut().reset(next);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                IdleTimeout(self.guard.idle()),
            ));
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let budget = this.guard.inner.budget.load(Ordering::Relaxed);
        if budget == 0 {
            let granted = this.guard.inner.granted.load(Ordering::Relaxed);
            return Poll::Ready(Err(io::Error::other(BudgetExceeded(granted))));
        }
        // Never read past the budget: what is not read is not held.
        let room = buf
            .remaining()
            .min(usize::try_from(budget).unwrap_or(usize::MAX));
        let mut limited = buf.take(room);
        match Pin::new(&mut this.inner).poll_read(cx, &mut limited) {
            Poll::Ready(Ok(())) => {
                let n = limited.filled().len();
                // SAFETY: `limited` wrote these bytes into `buf`'s unfilled part.
                unsafe { buf.assume_init(n) };
                buf.advance(n);
                if budget != u64::MAX {
                    this.guard
                        .inner
                        .budget
                        .fetch_sub(n as u64, Ordering::Relaxed);
                }
                this.progressed();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.check_idle(cx) {
                Err(e) => Poll::Ready(Err(e)),
                Ok(()) => Poll::Pending,
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => match this.check_idle(cx) {
                Err(e) => Poll::Ready(Err(e)),
                Ok(()) => Poll::Pending,
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => match this.check_idle(cx) {
                Err(e) => Poll::Ready(Err(e)),
                Ok(()) => Poll::Pending,
            },
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_budget_stops_a_server_that_never_stops() {
        let (mut server, client) = tokio::io::duplex(1 << 16);
        let guard = Guard::default();
        let mut client = Guarded::new(client, guard.clone());
        guard.set_budget(10);
        server.write_all(&[b'x'; 100]).await.unwrap();
        let mut buf = [0u8; 100];
        let mut got = 0;
        let err = loop {
            match client.read(&mut buf).await {
                Ok(n) => got += n,
                Err(e) => break e,
            }
        };
        assert_eq!(got, 10);
        assert!(err.get_ref().unwrap().is::<BudgetExceeded>(), "{err}");
        guard.set_budget(u64::MAX);
        assert_eq!(client.read(&mut buf).await.unwrap(), 90);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_server_times_out() {
        let (_server, client) = tokio::io::duplex(64);
        let mut client = Guarded::new(client, Guard::new(Duration::from_secs(5)));
        let mut buf = [0u8; 8];
        let err = client.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("5 seconds"), "{err}");
    }
}
