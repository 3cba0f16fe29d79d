//! `ownmail serve`: every configured server in one process: IMAP always,
//! SMTP (receiving, submission, the outbound queue) when the configuration
//! has an `smtp:` section.
//! With no configuration anywhere, a first-try setup in the working folder.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;

use super::{UsageError, load_config_if_any};
use crate::cli::{GlobalArgs, ServeArgs};
use crate::config::Config;
use crate::error::sysexits;
use crate::smtp::{Listeners, Server, serve_smtp};

/// Where IMAP listens when the configuration does not say.
pub const DEFAULT_IMAP: &str = "127.0.0.1:1143";
const FIRST_CONFIG: &str = "\
# Written by `ownmail serve` for a first try; edit freely.
data_dir: ownmail-data
imap:
  listen: [\"127.0.0.1:1143\"]
smtp:
  listen: [\"127.0.0.1:2525\"]
";

pub fn run(global: &GlobalArgs, _args: ServeArgs) -> anyhow::Result<u8> {
    let config = match load_config_if_any(global)? {
        Some(c) => c,
        None => first_try()?,
    };
    let (mut plain, tls) = (config.imap.listen.clone(), config.imap.listen_tls.clone());
    if plain.is_empty() && tls.is_empty() {
        plain.push(DEFAULT_IMAP.parse::<SocketAddr>()?);
    }
    let users = crate::auth::Users::load(&config.users_file)?;
    if users.entries().next().is_none() {
        say!(
            "ownmail: no users yet; add one with `ownmail user add NAME`{}",
            match &config.source {
                Some(p) => format!(" (configuration: {})", p.display()),
                None => String::new(),
            }
        );
    }
    let acceptor = super::serve_imap::acceptor(&config)?;
    if !tls.is_empty() && acceptor.is_none() {
        return Err(UsageError(
            "imap.listen_tls needs a certificate: add tls: {cert: ..., key: ...} to the configuration"
                .into(),
        )
        .into());
    }
    let config = Arc::new(config);
    crate::net::server::tune_allocator();
    let rt = super::runtime(None)?;
    rt.block_on(async {
        // Every port is bound before any is announced: a port that cannot
        // be had stops the start with an error naming it, and nothing was
        // said to be listening.
        // The signal handlers and the queue are ready before the ports
        // open: a SIGTERM or a client may come the moment they do.
        let shutdown = crate::net::server::shutdown_on_signals()?;
        let smtp_server = if config.smtp.configured {
            // One certificate for both: loaded once, reloaded once.
            Some(Server::with_identity(config.clone(), acceptor.clone())?)
        } else {
            None
        };
        let imap_listeners = crate::net::server::bind_imap(&plain, &tls).await?;
        let smtp_server = match smtp_server {
            Some(server) => Some((server, Listeners::bind(&config, &[]).await?)),
            None => None,
        };
        announce(&config, &plain, &tls, acceptor.is_some());
        let imap =
            super::serve_imap::serve_until(&config, imap_listeners, acceptor, shutdown.clone());
        let smtp = async {
            let Some((server, listeners)) = smtp_server else {
                return Ok(());
            };
            let mut stop = shutdown.clone();
            let stopped = async move {
                while !*stop.borrow() {
                    if stop.changed().await.is_err() {
                        break;
                    }
                }
            };
            serve_smtp(server, listeners, stopped).await?;
            anyhow::Ok(())
        };
        tokio::try_join!(imap, smtp)
    })?;
    Ok(sysexits::OK)
}

/// Says where each server listens (once all are bound).
fn announce(config: &Config, plain: &[SocketAddr], tls: &[SocketAddr], has_certificate: bool) {
    let starttls = if has_certificate {
        "offered"
    } else {
        "off: no tls: configured"
    };
    for a in plain {
        say!("ownmail: IMAP on {a} (plain; STARTTLS {starttls})");
    }
    for a in tls {
        say!("ownmail: IMAP over TLS on {a}");
    }
    let smtp = &config.smtp;
    if smtp.configured {
        for a in &smtp.listen {
            say!("ownmail: SMTP on {a} (mail for our domains; STARTTLS {starttls})");
        }
        for a in &smtp.submission {
            say!("ownmail: SMTP submission on {a} (STARTTLS, then AUTH)");
        }
        for a in &smtp.submissions {
            say!("ownmail: SMTP submission over TLS on {a}");
        }
    } else {
        say!("ownmail: SMTP off (add an smtp: section to the configuration to receive mail)");
    }
}

/// Writes `./ownmail.yaml` (data in `./ownmail-data`) and loads it, so that
/// `ownmail user add` run in the same folder finds the same setup.
fn first_try() -> anyhow::Result<Config> {
    let path = std::env::current_dir()
        .context("the working folder")?
        .join(crate::config::FILE_NAME);
    crate::store::durable::create_new(&path, 0o600)
        .and_then(|mut f| std::io::Write::write_all(&mut f, FIRST_CONFIG.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))?;
    say!(
        "ownmail: no configuration found; wrote {} (data in ./ownmail-data, IMAP on {DEFAULT_IMAP}, SMTP on 127.0.0.1:2525)",
        path.display()
    );
    Ok(Config::load(&path)?)
}
