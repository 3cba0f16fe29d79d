//! `ownmail serve-smtp`: bind, run until SIGTERM or SIGINT.

use std::sync::Arc;

use anyhow::Context;

use super::load_config;
use crate::cli::{GlobalArgs, ServeSmtpArgs};
use crate::error::sysexits;
use crate::smtp::{Listeners, Server, serve_smtp, serve_stdio};

pub fn run(global: &GlobalArgs, args: ServeSmtpArgs) -> anyhow::Result<u8> {
    if args.stdio {
        super::stderr_is_the_client();
    }
    let config = Arc::new(load_config(global)?);
    let runtime = super::runtime(Some(2))?;
    runtime.block_on(async {
        if args.stdio {
            serve_stdio(config).await?;
            return Ok(sysexits::OK);
        }
        // The queue and the signal handlers are ready before the ports
        // open: a client or a SIGTERM may come the moment they do.
        let server = Server::new(config.clone())?;
        crate::net::server::hangups_are_ignored().context("catching SIGHUP")?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        let interrupt = tokio::signal::ctrl_c();
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt => {}
            }
        };
        let listeners = Listeners::bind(&config, &args.listen).await?;
        serve_smtp(server, listeners, shutdown).await?;
        Ok(sysexits::OK)
    })
}
