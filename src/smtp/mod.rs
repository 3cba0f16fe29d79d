//! `serve-smtp`: receive our mail, send our users' mail, relay for nobody
//! else. The listeners and the connection limit ([`serve_smtp`]), the
//! driver that pumps a [`crate::proto::smtp::Session`] over a connection
//! ([`conn`]), local delivery ([`local`]), the trace field ([`received`]).
//! Outbound mail goes to [`crate::queue`].
//!
//! Three kinds of listener:
//!
//! | config key          | port | TLS                  | AUTH                          |
//! | ------------------- | ---- | -------------------- | ----------------------------- |
//! | `smtp.listen`       | 25   | STARTTLS if `tls:`   | offered over TLS or loopback  |
//! | `smtp.submission`   | 587  | STARTTLS, then AUTH  | required before MAIL          |
//! | `smtp.submissions`  | 465  | implicit (RFC 8314)  | required before MAIL          |

pub mod conn;
pub mod group_sync;
pub mod local;
pub mod received;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::net::tls_server::ServerIdentity;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};

use crate::auth::throttle::{FailureLog, Throttle};
use crate::auth::{Secret, Users};
use crate::config::Config;
use crate::error::{ExitStatus, sysexits};
use crate::net::Stdio;
use crate::net::tls::TlsError;
use crate::proto::smtp::{AuthOutcome, Directory};
use crate::queue::{Queue, QueueError};

/// How long connections may take to finish after SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error(transparent)]
    Bind(#[from] crate::net::server::BindError),
    #[error("{0}")]
    Tls(#[from] TlsError),
    #[error("{0}")]
    Queue(#[from] QueueError),
    #[error("{what} needs tls: {{cert, key}} in the configuration")]
    NeedsTls { what: &'static str },
    #[error("nothing to listen on: smtp.listen, smtp.submission and smtp.submissions are empty")]
    NoListeners,
}

impl ExitStatus for SmtpError {
    fn exit_code(&self) -> u8 {
        match self {
            SmtpError::Bind(e) => e.exit_code(),
            SmtpError::Tls(_) | SmtpError::NeedsTls { .. } | SmtpError::NoListeners => {
                sysexits::CONFIG
            }
            SmtpError::Queue(e) => e.exit_code(),
        }
    }
}

/// Which port a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Port 25: mail for us from anyone.
    Mx,
    /// Port 587: STARTTLS, then AUTH, required.
    Submission,
    /// Port 465: implicit TLS, AUTH required.
    Submissions,
}

/// The bound sockets, so a caller (`ownmail serve`, a test) can bind first
/// and learn the ports.
#[derive(Debug, Default)]
pub struct Listeners {
    pub mx: Vec<TcpListener>,
    pub submission: Vec<TcpListener>,
    pub submissions: Vec<TcpListener>,
}

impl Listeners {
    /// Binds what the configuration names; `listen`, when given, replaces
    /// `smtp.listen` (`--listen`).
    pub async fn bind(config: &Config, listen: &[SocketAddr]) -> Result<Listeners, SmtpError> {
        let s = &config.smtp;
        let mx = if listen.is_empty() {
            &s.listen[..]
        } else {
            listen
        };
        let mut out = Listeners::default();
        for (addrs, slot) in [
            (mx, &mut out.mx),
            (&s.submission[..], &mut out.submission),
            (&s.submissions[..], &mut out.submissions),
        ] {
            for addr in addrs {
                slot.push(crate::net::server::bind(*addr).await?);
            }
        }
        Ok(out)
    }
}

/// What every connection shares.
pub struct Server {
    pub config: Arc<Config>,
    pub acceptor: Option<Arc<ServerIdentity>>,
    pub throttle: Throttle,
    pub queue: Queue,
    /// Woken when a message is queued.
    pub queued: Arc<Notify>,
}

impl Server {
    /// The shared state, with the certificate loaded from `config.tls`.
    pub fn new(config: Arc<Config>) -> Result<Server, SmtpError> {
        let acceptor = match &config.tls {
            Some(t) => Some(Arc::new(ServerIdentity::from_config(t)?)),
            None => None,
        };
        Server::with_identity(config, acceptor)
    }

    /// The shared state around a certificate already loaded: `ownmail
    /// serve` hands IMAP and SMTP one identity, so one file watch reloads
    /// both.
    pub fn with_identity(
        config: Arc<Config>,
        acceptor: Option<Arc<ServerIdentity>>,
    ) -> Result<Server, SmtpError> {
        let queue = Queue::open(&config.data_dir.join("queue"))?;
        Ok(Server {
            config,
            acceptor,
            throttle: Throttle::new(),
            queue,
            queued: Arc::new(Notify::new()),
        })
    }

    /// Who lives here, read afresh for each connection so that `ownmail
    /// user add` takes effect without a restart. A users file that cannot
    /// be read is our fault, logged loudly: its users are then a temporary
    /// lookup failure (`451 4.3.0` at RCPT), never unknown (`550`).
    pub fn directory(&self) -> (Directory, Option<Users>) {
        directory(&self.config)
    }
    /// Checks a password, with throttling per client address.
    pub async fn check_password(
        &self,
        users: Option<&Arc<Users>>,
        ip: Option<IpAddr>,
        user: String,
        password: Secret,
    ) -> AuthOutcome {
        if let Some(ip) = ip
            && !self.throttle.allowed(ip, Instant::now())
        {
            return AuthOutcome::Throttled;
        }
        let Some(users) = users.cloned() else {
            return AuthOutcome::TempFail;
        };
        let name = user.clone();
        // Password hashes are slow on purpose: off the async threads.
        let ok = tokio::task::spawn_blocking(move || users.verify_from(&name, &password, ip))
            .await
            .unwrap_or(false);
        match (ok, ip) {
            (true, Some(ip)) => self.throttle.succeeded(ip),
            (false, Some(ip)) => {
                tracing::info!(%ip, user, "failed login");
                self.throttle.failed(ip, Instant::now());
            }
            _ => {}
        }
        if ok {
            AuthOutcome::Ok
        } else {
            AuthOutcome::Failed
        }
    }
}

/// Our domains, users and aliases from the configuration and the users
/// file; the users as read, when they could be. Shared by the server and
/// the queue worker, so both tell "nobody here" from "cannot tell".
pub fn directory(config: &Config) -> (Directory, Option<Users>) {
    match Users::load(&config.users_file) {
        Ok(users) => {
            let dir = Directory::new(
                config.domains.clone(),
                users.mail_names(),
                config.aliases.map.clone(),
            );
            (dir, Some(users))
        }
        Err(e) => {
            tracing::error!("cannot read the users file, local recipients are deferred: {e}");
            let dir = Directory::unavailable(
                config.domains.clone(),
                config.aliases.map.clone(),
                e.to_string(),
            );
            (dir, None)
        }
    }
}

/// Runs the SMTP server until `shutdown` completes, then stops accepting,
/// tells every session `421` at its next read, and waits up to
/// [`SHUTDOWN_GRACE`] for them. The entry point for `ownmail serve-smtp`
/// and `ownmail serve`.
pub async fn serve_smtp(
    server: Server,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SmtpError> {
    if listeners.mx.is_empty()
        && listeners.submission.is_empty()
        && listeners.submissions.is_empty()
    {
        return Err(SmtpError::NoListeners);
    }
    let server = Arc::new(server);
    let config = server.config.clone();
    if server.acceptor.is_none() {
        if !listeners.submission.is_empty() {
            return Err(SmtpError::NeedsTls {
                what: "smtp.submission",
            });
        }
        if !listeners.submissions.is_empty() {
            return Err(SmtpError::NeedsTls {
                what: "smtp.submissions",
            });
        }
    }
    // Regression: cleaning everything at start deleted the file a
    // `sendmail` run at the same moment was writing (it failed, ENOENT).
    let cleaned = server.queue.clean(Duration::from_secs(3600));
    if cleaned > 0 {
        tracing::info!("removed {cleaned} unfinished files from the queue");
    }
    let max = config.smtp.max_connections;
    let limit = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut accept_tasks = Vec::new();
    for (kind, list) in [
        (Kind::Mx, listeners.mx),
        (Kind::Submission, listeners.submission),
        (Kind::Submissions, listeners.submissions),
    ] {
        for l in list {
            if let Ok(addr) = l.local_addr() {
                tracing::info!(%addr, ?kind, "listening");
            }
            accept_tasks.push(tokio::spawn(accept_loop(
                server.clone(),
                l,
                kind,
                limit.clone(),
                stop_rx.clone(),
            )));
        }
    }
    let worker = tokio::spawn(crate::queue::worker::run(
        config.clone(),
        server.queue.clone(),
        server.queued.clone(),
        stop_rx.clone(),
    ));
    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    for t in accept_tasks {
        t.abort();
    }
    // Every connection holds a permit: all of them back means all done.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, limit.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, worker).await;
    Ok(())
}

async fn accept_loop(
    server: Arc<Server>,
    listener: TcpListener,
    kind: Kind,
    limit: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and friends: wait a little rather than spin.
                tracing::error!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let server = server.clone();
        let stop = stop.clone();
        match limit.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    conn::handle(server, Box::new(tcp), Some(peer), kind, stop).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tracing::warn!(%peer, "connection limit reached");
                tokio::spawn(conn::refuse(Box::new(tcp)));
            }
        }
    }
}

/// Where servers run once per connection (`--stdio`) keep failed logins.
pub fn login_failures(config: &Config) -> FailureLog {
    FailureLog::new(config.data_dir.join("login-failures"))
}

/// One session on standard input and output (inetd, `--stdio`). The peer
/// is the TCP socket inetd hands us; on anything else (a Unix socket from
/// socat or stunnel, a pipe) the client's address is unknown, and an unknown
/// client is a stranger: not trusted to relay, no AUTH without TLS. Local
/// programs that should be trusted use `ownmail sendmail`.
pub async fn serve_stdio(config: Arc<Config>) -> Result<(), SmtpError> {
    let mut server = Server::new(config)?;
    let (io, peer): (Box<dyn conn::Io>, _) = match crate::net::stdio() {
        Stdio::Tcp { stream, peer } => (Box::new(stream), Some(peer)),
        Stdio::Unix(stream) => (Box::new(stream), None),
        Stdio::Pipes(io) => {
            // No STARTTLS over pipes: see [`Stdio::Pipes`].
            server.acceptor = None;
            (Box::new(io), None)
        }
    };
    // One process per connection: failed logins are counted across them
    // in a file, else each connection would bring new guesses.
    server.throttle = Throttle::with_log(login_failures(&server.config));
    if let Some(peer) = peer {
        server.throttle.seed(peer.ip(), Instant::now());
    }
    let (_tx, rx) = watch::channel(false);
    conn::handle(Arc::new(server), io, peer, Kind::Mx, rx).await;
    // Whatever was queued is sent by the long-running server; with none,
    // the next `queue flush` or `serve-smtp` start sends it.
    Ok(())
}
