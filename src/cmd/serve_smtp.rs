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
        let listeners = Listeners::bind(&config, &args.listen).await?;
        crate::net::server::hangups_are_ignored().context("catching SIGHUP")?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        serve_smtp(Server::new(config)?, listeners, shutdown).await?;
        Ok(sysexits::OK)
    })
}
