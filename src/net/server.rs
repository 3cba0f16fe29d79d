//! The server side: listeners, the connection limit, graceful shutdown, and
//! the one driver that pumps an IMAP [`Session`] over any stream (TCP, TLS,
//! stdin/stdout).
//!
//! The session does the store's file I/O, so each batch of client bytes is
//! fed to it on tokio's blocking pool (`spawn_blocking`); the driver only
//! reads, writes and waits. A message literal is streamed from its file in
//! [`CHUNK`]-sized pieces.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
/// The server-side TLS setup, shared by every connection.
type TlsAcceptor = Arc<crate::net::tls_server::ServerIdentity>;

use crate::auth::UserName;
use crate::imapd::session::IDLE_TIMEOUT;
use crate::imapd::{CHUNK, Context, CrlfChunks, Out, Peer, Session};
use crate::net::watch::FolderWatch;

/// Output is sent in pieces of about this size (at most this plus one
/// [`CHUNK`] is held).
const SEND_AT: usize = CHUNK;

/// Connections served at once; more are told `* BYE` and closed.
pub const MAX_CONNECTIONS: usize = 1000;
/// How long a TLS handshake may take.
/// How often an idling session looks at its folder (a stat of three
/// files; the folder is read only when one changed) when inotify cannot
/// watch it.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// The rescan behind inotify: the safety net for changes it misses.
const IDLE_RESCAN: Duration = Duration::from_secs(5);
/// How long shutdown waits for sessions to say goodbye.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Any byte stream a session can run over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Runs one session until it ends (LOGOUT, the client leaves, an error,
/// autologout, or `shutdown` turning true).
pub async fn run_session(
    mut io: Box<dyn Io>,
    session: Session,
    acceptor: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut session = Some(session);
    let mut buf = vec![0u8; 16 * 1024];
    // Bytes gathered for the next send (kept across the batches of one
    // long response: each batch is about a send's worth, not a multiple).
    let mut pending: Vec<u8> = Vec::new();
    // The folder an IDLE is watching, and the watch (None: polling).
    let mut watching: Option<(std::path::PathBuf, Option<FolderWatch>)> = None;
    loop {
        let s = session
            .as_mut()
            .ok_or_else(|| io::Error::other("session lost"))?;
        let sent = send(&mut io, s.take_output(), acceptor.as_ref(), &mut pending).await?;
        finish(&mut io, &mut pending).await?;
        if sent.tls {
            s.tls_started();
        }
        if sent.close {
            let _ = io.shutdown().await;
            return Ok(());
        }
        let idling = s.is_idling();
        let folder = if idling { s.idle_folder() } else { None };
        if watching.as_ref().map(|w| &w.0) != folder.as_ref() {
            watching = folder.map(|f| {
                let w = FolderWatch::new(&f);
                (f, w)
            });
        }
        let watch = watching.as_mut().and_then(|w| w.1.as_mut());
        let has_watch = watch.is_some();
        let poll = if has_watch { IDLE_RESCAN } else { IDLE_POLL };
        let n = tokio::select! {
            r = tokio::time::timeout(IDLE_TIMEOUT, io.read(&mut buf)) => match r {
                Ok(r) => r?,
                Err(_) => {
                    s.bye("autologout: idle for 30 minutes");
                    continue;
                }
            },
            _ = shutdown.changed() => {
                s.bye("server shutting down");
                continue;
            }
            _ = tokio::time::sleep(poll), if idling => {
                let mut s = session.take().ok_or_else(|| io::Error::other("session lost"))?;
                session = Some(blocking(move || { s.idle_poll(); s }).await?);
                continue;
            }
            _ = async { if let Some(w) = watch { w.changed().await } }, if has_watch => {
                // A delivery is a write in tmp/ and a rename into new/;
                // a moment lets a burst of changes become one look.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let mut s = session.take().ok_or_else(|| io::Error::other("session lost"))?;
                session = Some(blocking(move || { s.idle_changed(); s }).await?);
                continue;
            }
        };
        if n == 0 {
            return Ok(());
        }
        let mut s = session
            .take()
            .ok_or_else(|| io::Error::other("session lost"))?;
        let bytes = buf[..n].to_vec();
        ACTIVITY.fetch_add(1, Ordering::Relaxed);
        // A long response (a FETCH of a whole folder) is sent while the
        // session computes the rest: the session offers what it has at each
        // send's worth, and keeps it (to offer again, or to give at the end)
        // while EARLY_BATCHES wait unsent.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Out>>(EARLY_BATCHES);
        s.set_early(Some(Box::new(move |outs| {
            tx.try_send(outs).map_err(|e| e.into_inner())
        })));
        let mut task = tokio::task::spawn_blocking(move || {
            s.feed(&bytes);
            s.set_early(None);
            s
        });
        let mut early = Sent::default();
        let mut s = loop {
            tokio::select! {
                biased;
                Some(outs) = rx.recv() => {
                    let sent = send(&mut io, outs, acceptor.as_ref(), &mut pending).await?;
                    early.tls |= sent.tls;
                    early.close |= sent.close;
                }
                r = &mut task => {
                    break r.map_err(|e| io::Error::other(format!("session task failed: {e}")))?;
                }
            }
        };
        // Offered batches are in the channel before the task ends.
        while let Ok(outs) = rx.try_recv() {
            let sent = send(&mut io, outs, acceptor.as_ref(), &mut pending).await?;
            early.tls |= sent.tls;
            early.close |= sent.close;
        }
        if early.tls {
            s.tls_started();
        }
        if early.close {
            finish(&mut io, &mut pending).await?;
            let _ = io.shutdown().await;
            return Ok(());
        }
        session = Some(s);
    }
}

/// Batches of output a session may have offered and the driver not yet
/// sent (each about [`CHUNK`] bytes, or [`CHUNK`] of literals to stream).
const EARLY_BATCHES: usize = 4;

/// What sending a session's output did besides sending.
#[derive(Default)]
struct Sent {
    /// TLS was started: the session must be told.
    tls: bool,
    /// The session asked to close.
    close: bool,
}

/// Sends a session's output in order, but for the last bytes (left in
/// `pending` for [`finish`] or the next batch). Bytes are gathered up to
/// SEND_AT and sent together: a FETCH of thousands of small messages was
/// two sends per message.
async fn send(
    io: &mut Box<dyn Io>,
    outs: Vec<Out>,
    acceptor: Option<&TlsAcceptor>,
    pending: &mut Vec<u8>,
) -> io::Result<Sent> {
    let mut sent = Sent::default();
    let mut chunk = Vec::new();
    for out in outs {
        match out {
            Out::Bytes(b) if pending.is_empty() && b.len() >= SEND_AT => io.write_all(&b).await?,
            Out::Bytes(b) => pending.extend_from_slice(&b),
            Out::File { src, skip, len } => {
                let mut chunks = CrlfChunks::new(src.open(), skip, len);
                while chunks.next_chunk(&mut chunk)? {
                    pending.extend_from_slice(&chunk);
                    if pending.len() >= SEND_AT {
                        io.write_all(pending).await?;
                        pending.clear();
                    }
                }
            }
            Out::Sleep(d) => {
                io.write_all(pending).await?;
                pending.clear();
                io.flush().await?;
                tokio::time::sleep(d).await;
            }
            Out::StartTls => {
                io.write_all(pending).await?;
                pending.clear();
                io.flush().await?;
                let Some(acceptor) = acceptor else {
                    return Err(io::Error::other("STARTTLS without a certificate"));
                };
                let plain = std::mem::replace(
                    io,
                    Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink())),
                );
                let tls = crate::net::tls::accept(acceptor, plain)
                    .await
                    .map_err(io::Error::other)?;
                *io = Box::new(tls);
                sent.tls = true;
            }
            Out::Close => sent.close = true,
        }
        if pending.len() >= SEND_AT {
            io.write_all(pending).await?;
            pending.clear();
        }
    }
    Ok(sent)
}

/// Sends what [`send`] left, and lets go of a big buffer (an idle
/// connection keeps none).
async fn finish(io: &mut Box<dyn Io>, pending: &mut Vec<u8>) -> io::Result<()> {
    io.write_all(pending).await?;
    io.flush().await?;
    pending.clear();
    if pending.capacity() > 16 * 1024 {
        *pending = Vec::new();
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(format!("session task failed: {e}")))
}

/// Keeps the server's memory small with glibc's allocator: two arenas
/// instead of one per thread of the blocking pool (each keeping what its
/// thread freed), and buffers from 128 KiB up (message loads, index reads,
/// each session's view of a big folder, a folder's listing) taken with
/// `mmap` and given back when freed, instead of staying in an arena as
/// the dynamic threshold would have it.
pub fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets the allocator's parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 4 * 1024 * 1024);
    }
}

/// Commands fed to sessions so far (for [`trim_while_busy`]).
static ACTIVITY: AtomicU64 = AtomicU64::new(0);

/// How often the allocator's free pages are given back while sessions work.
const TRIM_EVERY: Duration = Duration::from_secs(2);

/// Gives the allocator's free pages back to the system every
/// [`TRIM_EVERY`] while sessions are working (what jemalloc's background
/// purge does): many sessions each listing, selecting and fetching leave
/// free holes between the folder's long-lived data that glibc keeps (the
/// 20-client benchmark: 28.8 MB taken from the system for 15.5 MB in use).
/// Idle, nothing is done.
async fn trim_while_busy() {
    let mut last = ACTIVITY.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(TRIM_EVERY).await;
        let now = ACTIVITY.load(Ordering::Relaxed);
        if now != last {
            last = now;
            let _ = blocking(release_free_memory).await;
        }
    }
}

/// `malloc_trim(0)`: every arena's free pages back to the system.
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The shutdown signal: true after SIGTERM or SIGINT.
pub fn shutdown_on_signals() -> io::Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{SignalKind, signal};
    hangups_are_ignored()?;
    let (tx, rx) = watch::channel(false);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutting down: telling every session BYE");
        let _ = tx.send(true);
    });
    Ok(rx)
}

/// SIGHUP, which admins of Postfix and Dovecot send to reload, and which a
/// closed terminal sends, is not a reason to stop serving: it is logged
/// and ignored (the certificate is reloaded when its files change; the
/// configuration needs a restart). Its default would kill the server
/// without a word to its clients.
pub fn hangups_are_ignored() -> io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::warn!(
                "SIGHUP: nothing to reload (the certificate is reloaded when its files \
                 change); restart for a changed configuration"
            );
        }
    });
    Ok(())
}

/// A port a server could not listen on, with what to do about it.
///
/// The system's error is in the message, not the error chain: the advice
/// comes after it, and a report of the chain would say it twice.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {error}{}", bind_hint(.error, .addr))]
pub struct BindError {
    pub addr: SocketAddr,
    pub error: io::Error,
}

fn bind_hint(e: &io::Error, addr: &SocketAddr) -> String {
    match e.kind() {
        io::ErrorKind::AddrInUse => format!(
            "; another program holds that port (`ss -ltnp 'sport = :{}'` shows which): \
             stop it, or listen on another address",
            addr.port()
        ),
        io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
            "; ports below 1024 need privileges: use a port of 1024 or more, run as root, \
             or give the binary CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep)"
                .to_owned()
        }
        io::ErrorKind::AddrNotAvailable => {
            "; no network interface of this machine has that address: listen on one it has"
                .to_owned()
        }
        _ => String::new(),
    }
}

impl crate::error::ExitStatus for BindError {
    /// A port taken may be free again soon (a server that is stopping); a
    /// port we may not have, or an address this machine lacks, will not be.
    fn exit_code(&self) -> u8 {
        match self.error.kind() {
            io::ErrorKind::AddrInUse => crate::error::sysexits::TEMPFAIL,
            _ => crate::error::sysexits::NOPERM,
        }
    }
}

/// Opens a listening socket on `addr`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| BindError { addr, error })
}

/// The IMAP listening sockets, bound before anything is announced: `plain`
/// (STARTTLS when a certificate is configured) and `tls` (implicit TLS,
/// marked `true`).
pub async fn bind_imap(
    plain: &[SocketAddr],
    tls: &[SocketAddr],
) -> Result<Vec<(TcpListener, bool)>, BindError> {
    let mut listeners = Vec::new();
    for (addrs, implicit) in [(plain, false), (tls, true)] {
        for addr in addrs {
            listeners.push((bind(*addr).await?, implicit));
        }
    }
    Ok(listeners)
}

/// Serves IMAP on `listeners` (from [`bind_imap`]; STARTTLS when `acceptor`
/// is given) until `shutdown`; then tells every session `* BYE` and waits
/// for them (at most [`SHUTDOWN_GRACE`]).
pub async fn serve_imap(
    ctx: Arc<Context>,
    listeners: Vec<(TcpListener, bool)>,
    acceptor: Option<TlsAcceptor>,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    for (l, implicit) in &listeners {
        tracing::info!(
            "serve-imap: listening on {}{}",
            l.local_addr()?,
            if *implicit { " (TLS)" } else { "" }
        );
    }
    let tasks = tokio_util_tasks();
    let trim = tokio::spawn(trim_while_busy());
    let mut accepts = Vec::new();
    for (listener, implicit) in listeners {
        let ctx = ctx.clone();
        let acceptor = acceptor.clone();
        let limit = limit.clone();
        let mut stop = shutdown.clone();
        let shutdown = shutdown.clone();
        let tasks = tasks.clone();
        accepts.push(tokio::spawn(async move {
            loop {
                let (tcp, peer_addr) = tokio::select! {
                    r = listener.accept() => match r {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!("accept: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                    _ = stop.changed() => return,
                };
                let _ = tcp.set_nodelay(true);
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    let mut tcp = tcp;
                    tokio::spawn(async move {
                        let _ = tcp
                            .write_all(b"* BYE [UNAVAILABLE] too many connections\r\n")
                            .await;
                    });
                    continue;
                };
                let ctx = ctx.clone();
                let acceptor = acceptor.clone();
                let shutdown = shutdown.clone();
                let handle = tokio::spawn(async move {
                    let _permit = permit;
                    let peer = Peer {
                        ip: Some(peer_addr.ip()),
                        tls: implicit,
                        local: false,
                    };
                    let io: Box<dyn Io> = if implicit {
                        let Some(a) = acceptor.as_ref() else { return };
                        match crate::net::tls::accept(a, tcp).await {
                            Ok(t) => Box::new(t),
                            Err(_) => return,
                        }
                    } else {
                        Box::new(tcp)
                    };
                    let session = match blocking(move || Session::new(ctx, peer)).await {
                        Ok(s) => s,
                        Err(_) => return,
                    };
                    if let Err(e) = run_session(io, session, acceptor, shutdown).await {
                        tracing::debug!(peer = %peer_addr, "imap connection ended: {e}");
                    }
                });
                if let Ok(mut t) = tasks.lock() {
                    t.retain(|h: &tokio::task::JoinHandle<()>| !h.is_finished());
                    t.push(handle);
                }
            }
        }));
    }
    let mut wait = shutdown.clone();
    while !*wait.borrow() {
        if wait.changed().await.is_err() {
            break;
        }
    }
    for a in accepts {
        let _ = a.await;
    }
    let handles: Vec<_> = tasks
        .lock()
        .map(|mut t| t.drain(..).collect())
        .unwrap_or_default();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, futures::future::join_all(handles)).await;
    trim.abort();
    Ok(())
}

/// `stream`, with TLS from the first byte when there is an acceptor.
async fn tls_or_plain<S>(acceptor: &Option<TlsAcceptor>, stream: S) -> io::Result<Box<dyn Io>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    Ok(match acceptor {
        Some(a) => Box::new(
            crate::net::tls::accept(a, stream)
                .await
                .map_err(io::Error::other)?,
        ),
        None => Box::new(stream),
    })
}

type Tasks = Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>;

fn tokio_util_tasks() -> Tasks {
    Arc::new(std::sync::Mutex::new(Vec::new()))
}

/// One session on stdin/stdout (inetd, `ssh host ownmail serve-imap
/// --stdio --preauth`). With `acceptor`, TLS is spoken from the first byte.
///
/// A TCP socket on both (inetd, systemd `Accept=yes`) is used directly: its
/// peer is the client, trusted with a plain-text password only from
/// loopback, as on a listener. Over a Unix socket (socat or stunnel
/// `exec`) the client is unknown: no plain-text password, as serve-smtp.
/// Pipes are ssh's (or a mail client's tunnel command): a session ssh
/// already made private, trusted like loopback. TLS needs a socket; over
/// pipes it cannot run (see [`crate::net::Stdio`]).
pub async fn serve_stdio(
    ctx: Arc<Context>,
    acceptor: Option<TlsAcceptor>,
    preauth: Option<UserName>,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let implicit = acceptor.is_some();
    let (io, ip, local): (Box<dyn Io>, Option<std::net::IpAddr>, bool) = match crate::net::stdio() {
        crate::net::Stdio::Tcp { stream, peer } => (
            tls_or_plain(&acceptor, stream).await?,
            Some(peer.ip()),
            false,
        ),
        // socat or stunnel `exec`: whoever is on the other end of the
        // program in front is unknown, as serve-smtp takes it: no plain-text
        // password (`--tls` gives TLS over the socket).
        crate::net::Stdio::Unix(stream) => (tls_or_plain(&acceptor, stream).await?, None, false),
        crate::net::Stdio::Pipes(_) if implicit => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "--tls needs standard input and output to be a socket (inetd); over pipes, \
                 as through ssh, leave it out: ssh encrypts",
            ));
        }
        crate::net::Stdio::Pipes(pipes) => (Box::new(pipes), None, true),
    };
    if let Some(ip) = ip {
        ctx.throttle.seed(ip);
    }
    let peer = Peer {
        ip,
        tls: implicit,
        local,
    };
    let session = match preauth {
        Some(user) => blocking(move || Session::preauth(ctx, peer, user))
            .await?
            .map_err(|e| io::Error::other(e.to_string()))?,
        None => blocking(move || Session::new(ctx, peer)).await?,
    };
    // No STARTTLS on stdio: TLS is either there from the start or not at all.
    run_session(io, session, None, shutdown).await
}
