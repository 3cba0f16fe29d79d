//! The driver: pumps one [`Session`] over one connection (TCP, TLS, or
//! inetd's standard input and output), answering its events: TLS
//! handshakes, password checks, deliveries. Timeouts per RFC 5321 4.5.3.2;
//! a reply the client does not read is a timeout too.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::{Kind, Server, local, received};
use crate::config::smtp::canonical;
use crate::proto::smtp::{Event, Reply, Route, Session, Settings, TlsInfo, Transaction};
use crate::queue::{RecipientState, Status, unix_now};

/// RFC 5321 4.5.3.2.7: at least 5 minutes waiting for a command; we use
/// the same for each read inside DATA (4.5.3.2.5's 3 minutes is the
/// client's, and a server must be more patient than its clients).
pub const READ_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How long a client may take to read our replies.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2 * 60);
/// How much is read at once; the session holds at most this plus a line.
const READ_CHUNK: usize = 64 * 1024;

/// Anything a session can run over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The timeouts, separate so tests can shorten them.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub read: Duration,
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            read: READ_TIMEOUT,
            write: WRITE_TIMEOUT,
        }
    }
}

/// Tells a client over the connection limit to come back later.
pub async fn refuse(mut stream: Box<dyn Io>) {
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        stream.write_all(Reply::TOO_MANY_CONNECTIONS.to_string().as_bytes()),
    )
    .await;
    let _ = stream.shutdown().await;
}

/// Runs one session to its end.
pub async fn handle(
    server: Arc<Server>,
    stream: Box<dyn Io>,
    peer: Option<SocketAddr>,
    kind: Kind,
    stop: watch::Receiver<bool>,
) {
    let ip = peer.map(|p| canonical(p.ip()));
    if let Err(e) = run(server, stream, ip, kind, stop, Timeouts::default()).await {
        tracing::debug!(ip = ?ip, "connection ended: {e}");
    }
}

/// The session loop; an `Err` is the connection breaking.
pub async fn run(
    server: Arc<Server>,
    mut stream: Box<dyn Io>,
    ip: Option<IpAddr>,
    kind: Kind,
    mut stop: watch::Receiver<bool>,
    timeouts: Timeouts,
) -> std::io::Result<()> {
    let config = server.config.clone();
    let mut implicit_tls = None;
    if kind == Kind::Submissions {
        let Some(acceptor) = &server.acceptor else {
            return Err(std::io::Error::other("no TLS certificate"));
        };
        let tls = crate::net::tls::accept(acceptor, stream)
            .await
            .map_err(std::io::Error::other)?;
        implicit_tls = Some(tls_info(tls.ssl()));
        stream = Box::new(tls);
    }
    let server2 = server.clone();
    let (directory, users) = tokio::task::spawn_blocking(move || server2.directory())
        .await
        .map_err(std::io::Error::other)?;
    let users = users.map(Arc::new);
    // AUTH without TLS only from loopback on port 25 (an ssh tunnel lands
    // there); the submission ports always want TLS first. No address (a
    // pipe or Unix socket on --stdio: socat, stunnel `exec =`) is anybody,
    // and anybody is neither local nor trusted: failing open made an open
    // relay of every such setup.
    let local = ip.is_some_and(|ip| ip.is_loopback()) && kind == Kind::Mx;
    let settings = Settings {
        hostname: config.hostname.clone(),
        max_message_size: config.smtp.max_message_size,
        starttls: server.acceptor.is_some() && kind != Kind::Submissions,
        implicit_tls,
        auth_without_tls: local,
        submission: kind != Kind::Mx,
        trusted: ip.is_some_and(|ip| config.smtp.is_trusted(ip)),
    };
    let rdns = match ip {
        Some(ip) if config.smtp.reverse_dns => reverse_lookup(ip).await,
        _ => None,
    };
    let mut session = Session::new(settings, Arc::new(directory));
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        while let Some(event) = session.next_event() {
            match event {
                Event::StartTls => {
                    write_out(&mut stream, &mut session, timeouts).await?;
                    let Some(acceptor) = &server.acceptor else {
                        return Ok(());
                    };
                    let tls = crate::net::tls::accept(acceptor, stream)
                        .await
                        .map_err(std::io::Error::other)?;
                    session.tls_started(tls_info(tls.ssl()));
                    stream = Box::new(tls);
                }
                Event::Authenticate { user, password } => {
                    let outcome = server
                        .check_password(users.as_ref(), ip, user, password)
                        .await;
                    session.auth_result(outcome);
                }
                Event::Message(tx) => {
                    let reply = deliver(&server, *tx, ip, rdns.as_deref()).await;
                    session.message_result(reply);
                }
                Event::Close => {
                    write_out(&mut stream, &mut session, timeouts).await?;
                    let _ = tokio::time::timeout(timeouts.write, stream.shutdown()).await;
                    return Ok(());
                }
            }
        }
        write_out(&mut stream, &mut session, timeouts).await?;
        if *stop.borrow() {
            session.abort(Reply::SHUTTING_DOWN);
            continue;
        }
        tokio::select! {
            r = tokio::time::timeout(timeouts.read, stream.read(&mut buf)) => match r {
                Err(_) => session.abort(Reply::TIMEOUT),
                Ok(Ok(0)) => return Ok(()),
                Ok(Ok(n)) => session.feed(&buf[..n]),
                Ok(Err(e)) => return Err(e),
            },
            _ = stop.changed() => session.abort(Reply::SHUTTING_DOWN),
        }
    }
}

async fn write_out(
    stream: &mut Box<dyn Io>,
    session: &mut Session,
    timeouts: Timeouts,
) -> std::io::Result<()> {
    let out = session.take_output();
    if out.is_empty() {
        return Ok(());
    }
    let write = async {
        stream.write_all(&out).await?;
        stream.flush().await
    };
    match tokio::time::timeout(timeouts.write, write).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client does not read our replies",
        )),
    }
}

fn tls_info(ssl: &openssl::ssl::SslRef) -> TlsInfo {
    TlsInfo {
        version: ssl.version_str().to_owned(),
        cipher: ssl
            .current_cipher()
            .map(|c| c.name().to_owned())
            .unwrap_or_else(|| "unknown".to_owned()),
    }
}

/// Delivers locally and queues what goes out; `250` only when all of it is
/// durable, and a `4xx` or `5xx` only when none of it was delivered, so the
/// client's retry duplicates nothing (regression: with an alias for two
/// users and one Maildir broken, the other user got a copy on every retry;
/// the same when queueing the remote part failed after local delivery).
///
/// One local user and nothing remote: delivered directly, all or nothing.
/// Anything more: the whole message goes into the queue first, one entry
/// per local user and per remote address, held back from the worker; then
/// the local copies are made here, marked delivered, and the entry released
/// to the worker with only what is left (remote addresses, local users
/// whose delivery failed: retried from the queue, bounced if it fails for
/// good). Postfix does the same: accept once, retry only what failed.
///
/// Crash windows: between a local copy and the envelope update that marks
/// it, the worker delivers that copy again after [`HOLD`] (a duplicate,
/// never a loss); a `queue flush` run during those milliseconds may do the
/// same.
async fn deliver(
    server: &Arc<Server>,
    tx: Transaction,
    ip: Option<IpAddr>,
    rdns: Option<&str>,
) -> Reply {
    let id = crate::queue::new_id();
    let remote: Vec<String> = tx
        .recipients
        .iter()
        .filter(|r| r.route == Route::Remote)
        .map(|r| r.mailbox.to_string())
        .collect();
    let single = (tx.recipients.len() == 1).then(|| tx.recipients[0].mailbox.to_string());
    let trace = received::received(&received::Trace {
        helo: &tx.helo,
        esmtp: tx.esmtp,
        ip,
        rdns,
        hostname: &server.config.hostname,
        tls: tx.tls.as_ref(),
        authenticated: tx.authenticated.is_some(),
        smtputf8: tx.smtputf8,
        id: &id,
        recipient: single.as_deref(),
        now: SystemTime::now(),
    });
    let server2 = server.clone();
    let id2 = id.clone();
    let result = tokio::task::spawn_blocking(move || {
        let targets = local::local_targets(&tx);
        let sender = tx
            .sender
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default();
        let spam = Some(&server2.config.spam).filter(|s| s.enabled);
        let data_dir = &server2.config.data_dir;
        if remote.is_empty() && targets.len() <= 1 {
            return match local::deliver(
                data_dir,
                trace.as_bytes(),
                &tx.data,
                &sender,
                &targets,
                spam,
            ) {
                Ok(_) => Ok(targets.len()),
                Err(e) => Err(refusal(&id2, &e)),
            };
        }
        let mut message = trace.into_bytes();
        message.extend_from_slice(&tx.data);
        let queue = &server2.queue;
        if targets.is_empty() {
            // Nothing local: the queue alone, as soon as it is durable.
            let recipients = remote.iter().map(|r| RecipientState::pending(r)).collect();
            if let Err(e) = queue.enqueue_as(&id2, &sender, recipients, &message, 0) {
                tracing::error!(id = id2, "queueing: {e}");
                return Err(Reply::LOCAL_ERROR);
            }
            server2.queued.notify_one();
            return Ok(0);
        }
        let mut recipients: Vec<RecipientState> = targets
            .iter()
            .map(|(user, address)| RecipientState {
                local_user: Some(user.clone()),
                ..RecipientState::pending(address)
            })
            .collect();
        recipients.extend(remote.iter().map(|r| RecipientState::pending(r)));
        let hold = unix_now() + HOLD.as_secs();
        if let Err(e) = queue.enqueue_as(&id2, &sender, recipients, &message, hold) {
            tracing::error!(id = id2, "queueing: {e}");
            return Err(Reply::LOCAL_ERROR);
        }
        let results = local::deliver_each(data_dir, b"", &message, &sender, &targets, spam);
        let mut env = match queue.load(&id2) {
            Ok(env) => env,
            Err(e) => {
                // Queued, and durable: the worker delivers what is left
                // (the local copies again) once the hold is over.
                tracing::error!(id = id2, "reading back the queued envelope: {e}");
                return Ok(targets.len());
            }
        };
        let mut delivered = 0;
        let mut first_error: Option<&local::LocalError> = None;
        for (r, result) in env.recipients.iter_mut().zip(&results) {
            match result {
                Ok(_) => {
                    r.status = Status::Delivered;
                    delivered += 1;
                }
                Err(e) => {
                    tracing::error!(id = id2, "{e}; kept in the queue for a retry");
                    r.last_error = Some(e.to_string());
                    // A temporary failure wins: the client's retry may
                    // then reach everyone.
                    if first_error.is_none_or(|f| f.is_permanent() && !e.is_permanent()) {
                        first_error = Some(e);
                    }
                }
            }
        }
        let released = if delivered == 0 && remote.is_empty() {
            // Nothing went anywhere: take it back and let the client keep
            // the message (its retry is no duplicate), as with one user.
            match queue.remove(&id2) {
                Ok(()) => {
                    return Err(first_error.map_or(Reply::LOCAL_ERROR, |e| refusal(&id2, e)));
                }
                Err(e) => Err(e),
            }
        } else if env.pending().next().is_none() {
            queue.remove(&id2)
        } else {
            env.next_attempt = 0;
            queue.update(&env)
        };
        if let Err(e) = released {
            // The message is durable in the queue; the worker sends what
            // the envelope still calls pending once the hold is over.
            tracing::error!(id = id2, "updating the queued envelope: {e}");
        } else if env.pending().next().is_some() {
            server2.queued.notify_one();
        }
        Ok(delivered)
    })
    .await;
    match result {
        Ok(Ok(n)) => {
            tracing::info!(id, local = n, "accepted");
            Reply::OK.with_text(format!("OK id={id}"))
        }
        Ok(Err(reply)) => reply,
        Err(e) => {
            tracing::error!(id, "delivery task failed: {e}");
            Reply::LOCAL_ERROR
        }
    }
}

/// How long the worker leaves alone an entry the server is still
/// delivering locally: a crash during that time is noticed after it.
pub const HOLD: Duration = Duration::from_secs(10 * 60);

/// The reply for a message no local copy of which was made.
fn refusal(id: &str, e: &local::LocalError) -> Reply {
    if e.is_permanent() {
        if matches!(e.source, crate::deliver::DeliverError::Loop(_)) {
            Reply::MAIL_LOOP
        } else {
            Reply::MESSAGE_REFUSED.with_text(e.to_string())
        }
    } else {
        tracing::error!(id, "{e}");
        Reply::LOCAL_ERROR
    }
}

/// The client's name by reverse DNS (only when `smtp.reverse_dns` is on),
/// through the system resolver, at most 5 seconds.
async fn reverse_lookup(ip: IpAddr) -> Option<String> {
    let lookup = tokio::task::spawn_blocking(move || {
        let addr = SocketAddr::new(ip, 0);
        let (storage, len) = sockaddr(&addr);
        let mut host = [0 as libc::c_char; 1025];
        // SAFETY: valid sockaddr of `len` bytes and a host buffer of its size.
        let rc = unsafe {
            libc::getnameinfo(
                (&raw const storage).cast(),
                len,
                host.as_mut_ptr(),
                host.len() as libc::socklen_t,
                std::ptr::null_mut(),
                0,
                libc::NI_NAMEREQD,
            )
        };
        if rc != 0 {
            return None;
        }
        // SAFETY: getnameinfo wrote a NUL-terminated string.
        let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
        let name = name.to_str().ok()?;
        crate::config::check_domain(name)
            .ok()
            .map(|()| name.to_owned())
    });
    tokio::time::timeout(Duration::from_secs(5), lookup)
        .await
        .ok()?
        .ok()?
}

fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: zeroed sockaddr_storage is valid; we fill the family's fields.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = a.ip().octets();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5321 4.5.3.2: a client that stops talking gets `421 4.4.2` and
    /// is disconnected; a shutdown gets `421 4.3.2`.
    #[tokio::test]
    async fn silence_times_out_and_shutdown_says_421() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Config::parse(
            "hostname: mx.example.org\ndata_dir: data\n",
            &dir.path().join("ownmail.yaml"),
        )
        .unwrap();
        let server = Arc::new(Server::new(Arc::new(config)).unwrap());
        let timeouts = Timeouts {
            read: Duration::from_millis(200),
            write: Duration::from_secs(5),
        };
        for shutdown in [false, true] {
            let (client, ours) = tokio::io::duplex(4096);
            let (stop_tx, stop_rx) = watch::channel(false);
            let task = tokio::spawn(run(
                server.clone(),
                Box::new(ours),
                Some("192.0.2.1".parse().unwrap()),
                Kind::Mx,
                stop_rx,
                if shutdown {
                    Timeouts {
                        read: Duration::from_secs(60),
                        ..timeouts
                    }
                } else {
                    timeouts
                },
            ));
            let mut client = client;
            let mut buf = vec![0u8; 4096];
            let n = client.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"220 mx.example.org"));
            if shutdown {
                stop_tx.send(true).unwrap();
            }
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).await.unwrap();
            let expected: &[u8] = if shutdown { b"421 4.3.2" } else { b"421 4.4.2" };
            assert!(
                rest.starts_with(expected),
                "{}",
                String::from_utf8_lossy(&rest)
            );
            task.await.unwrap().unwrap();
        }
    }
}
