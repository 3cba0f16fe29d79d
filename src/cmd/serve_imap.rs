//! `ownmail serve-imap`: resolve the addresses, the TLS certificate and the
//! user for `--preauth`, then run [`crate::net::server`].

use std::net::SocketAddr;
use std::sync::Arc;

use super::{UsageError, known_user, load_config};
use crate::cli::{GlobalArgs, ServeImapArgs};
use crate::config::Config;
use crate::error::sysexits;
use crate::imapd::{Context, Throttle};
use crate::net::server;
use crate::net::tls_server::ServerIdentity;
use crate::proto::imap::Limits;

pub fn run(global: &GlobalArgs, args: ServeImapArgs) -> anyhow::Result<u8> {
    if args.stdio {
        super::stderr_is_the_client();
    }
    let config = load_config(global)?;
    if args.stdio {
        return run_stdio(&config, &args);
    }
    let plain = if args.listen.is_empty() && args.listen_tls.is_empty() {
        config.imap.listen.clone()
    } else {
        args.listen.clone()
    };
    let tls = if args.listen.is_empty() && args.listen_tls.is_empty() {
        config.imap.listen_tls.clone()
    } else {
        args.listen_tls.clone()
    };
    if plain.is_empty() && tls.is_empty() {
        return Err(UsageError(
            "nowhere to listen: set imap.listen or imap.listen_tls in the configuration, or pass --listen ADDR".into(),
        )
        .into());
    }
    serve(&config, &plain, &tls)?;
    Ok(sysexits::OK)
}

/// Runs the IMAP listeners until SIGTERM (shared with `ownmail serve`).
pub(super) fn serve(
    config: &Config,
    plain: &[SocketAddr],
    tls: &[SocketAddr],
) -> anyhow::Result<()> {
    let acceptor = acceptor(config)?;
    if !tls.is_empty() && acceptor.is_none() {
        return Err(UsageError(
            "--listen-tls needs a certificate: add tls: {cert: ..., key: ...} to the configuration"
                .into(),
        )
        .into());
    }
    crate::net::server::tune_allocator();
    let rt = super::runtime(None)?;
    rt.block_on(async {
        let shutdown = server::shutdown_on_signals()?;
        let listeners = server::bind_imap(plain, tls).await?;
        serve_until(config, listeners, acceptor, shutdown).await
    })
}

/// The IMAP listeners (from [`server::bind_imap`]) until `shutdown`
/// (inside a runtime: `ownmail serve` runs this beside the SMTP server).
pub(super) async fn serve_until(
    config: &Config,
    listeners: Vec<(tokio::net::TcpListener, bool)>,
    acceptor: Option<Arc<ServerIdentity>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let ctx = context(config, acceptor.is_some());
    server::serve_imap(ctx, listeners, acceptor, shutdown).await?;
    Ok(())
}

pub(super) fn acceptor(config: &Config) -> anyhow::Result<Option<Arc<ServerIdentity>>> {
    match &config.tls {
        Some(t) => Ok(Some(Arc::new(ServerIdentity::from_config(t)?))),
        None => Ok(None),
    }
}

fn context(config: &Config, tls: bool) -> Arc<Context> {
    context_with(config, tls, Throttle::default())
}

fn context_with(config: &Config, tls: bool, throttle: Throttle) -> Arc<Context> {
    Arc::new(Context {
        hostname: config.hostname.clone(),
        users_file: config.users_file.clone(),
        mail_root: config.data_dir.join("mail"),
        tls,
        limits: Limits::default(),
        throttle,
        spam: config.spam.clone(),
    })
}

fn run_stdio(config: &Config, args: &ServeImapArgs) -> anyhow::Result<u8> {
    let acceptor = if args.tls {
        Some(acceptor(config)?.ok_or_else(|| {
            UsageError(
                "--tls needs a certificate: add tls: {cert: ..., key: ...} to the configuration"
                    .into(),
            )
        })?)
    } else {
        None
    };
    let preauth = if args.preauth {
        let name = match &args.user {
            Some(u) => u.clone(),
            None => invoking_user().ok_or_else(|| {
                UsageError("cannot tell who is running this; pass --user NAME".into())
            })?,
        };
        Some(known_user(config, &name)?)
    } else {
        None
    };
    // No STARTTLS on stdin/stdout: TLS is there from the start or not at all.
    // One process per connection: failed logins are counted across them
    // in a file.
    let ctx = context_with(
        config,
        false,
        Throttle::with_log(crate::smtp::login_failures(config)),
    );
    let rt = super::runtime(Some(1))?;
    let served = rt.block_on(async {
        let shutdown = server::shutdown_on_signals()?;
        server::serve_stdio(ctx, acceptor, preauth, shutdown).await
    });
    match served {
        // The client hung up without LOGOUT: the end of its session.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            Ok(sysexits::OK)
        }
        served => served.map(|()| sysexits::OK).map_err(Into::into),
    }
}

/// The name of the Unix user running this process.
fn invoking_user() -> Option<String> {
    // SAFETY: getuid cannot fail.
    super::user_name(unsafe { libc::getuid() })
}
