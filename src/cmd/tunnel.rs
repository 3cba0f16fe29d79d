//! `ownmail tunnel ssh | tls | fingerprint`: resolve the arguments, print
//! the mail client settings, run the tunnel until Ctrl-C or SIGTERM.
//!
//! Standard output: the settings to use (not with -q), and the fingerprint.
//! Standard error: what happens to ssh (restarts, ssh's own words), errors.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::{UsageError, load_config};
use crate::cli::{
    GlobalArgs, TunnelArgs, TunnelCommand, TunnelFingerprintArgs, TunnelSshArgs, TunnelTlsArgs,
};
use crate::error::sysexits;
use crate::net::tls::{Connector, Fingerprint, Trust};
use crate::net::tls_server::ServerIdentity;
use crate::tunnel::forward::{Forward, Service};
use crate::tunnel::ssh::{self, Event, SshOptions};
use crate::tunnel::tls::{self as ttls, Remote};

pub fn run(global: &GlobalArgs, args: TunnelArgs) -> anyhow::Result<u8> {
    match args.command {
        TunnelCommand::Ssh(a) => run_ssh(global, a),
        TunnelCommand::Tls(a) => run_tls(global, a),
        TunnelCommand::Fingerprint(a) => run_fingerprint(a),
    }
}

/// A future that completes on Ctrl-C (SIGINT), SIGTERM or SIGHUP (the
/// terminal closed). The handlers are installed now, so a signal that comes
/// before the future is first polled is not lost (nor does it kill us with
/// ssh, in its own process group, left running and holding the ports).
fn stop_signal(
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<impl std::future::Future<Output = ()> + use<>> {
    use tokio::signal::unix::{SignalKind, signal};
    let _context = rt.enter();
    let mut term = signal(SignalKind::terminate()).context("catching SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("catching SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("catching SIGHUP")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {}
        }
    })
}

fn run_ssh(global: &GlobalArgs, a: TunnelSshArgs) -> anyhow::Result<u8> {
    let mut forwards = Vec::new();
    for (service, spec) in [(Service::Smtp, &a.smtp), (Service::Imap, &a.imap)] {
        if spec != "none" {
            forwards.push(Forward::parse(service, spec).map_err(|e| UsageError(e.to_string()))?);
        }
    }
    for spec in &a.forward {
        forwards.push(Forward::parse(Service::Other, spec).map_err(|e| UsageError(e.to_string()))?);
    }
    let mut opts = SshOptions::new(&a.destination, forwards);
    opts.ssh_options = a.ssh_option;
    opts.check_interval = Duration::from_secs(a.check_interval);
    opts.check_timeout = Duration::from_secs(a.check_timeout);
    opts.validate()?;
    let quiet = global.quiet > 0;
    if !quiet {
        // For the person who started it: the tunnel runs whether or not
        // anyone reads this.
        let _ = out!(
            "Tunnel to {} through ssh. Mail client settings while it runs:\n{}",
            opts.destination,
            ssh::client_settings(&opts.forwards)
        );
    }
    let destination = opts.destination.clone();
    let rt = super::runtime(Some(2))?;
    let stop = stop_signal(&rt)?;
    rt.block_on(ssh::supervise(&opts, stop, |event| {
        say(quiet, &destination, event)
    }))?;
    Ok(sysexits::OK)
}

/// One line on standard error per thing that happened to ssh.
fn say(quiet: bool, destination: &str, event: Event) {
    let line = match event {
        Event::Started { pid } => {
            tracing::info!("ssh started (pid {pid})");
            return;
        }
        Event::Up { after } => {
            format!(
                "up: connected to {destination} in {:.1} s",
                after.as_secs_f32()
            )
        }
        Event::Exited { status, words } => {
            let words = if words.is_empty() {
                "it said nothing".to_owned()
            } else {
                format!("it said: {}", words.join(" / "))
            };
            format!("ssh to {destination} ended ({status}); {words}")
        }
        Event::Unhealthy {
            forward,
            reason,
            words,
        } => {
            format!(
                "the {forward} did not answer ({reason}): restarting ssh{}",
                said(&words)
            )
        }
        Event::ForwardDown {
            forward,
            reason,
            words,
        } => format!(
            "the {forward} does not answer ({reason}); another forward does, so the ssh link \
             is fine and ssh keeps running: check the mail server behind this forward{}",
            said(&words)
        ),
        Event::ForwardBack { forward } => format!("the {forward} answers again"),
        Event::StartTimedOut { words } => format!(
            "ssh to {destination} did not bring the forwards up in {} s: restarting it{}",
            ssh::START_TIMEOUT.as_secs(),
            said(&words)
        ),
        Event::Restarting { delay } => format!("starting ssh again in {} s", delay.as_secs()),
        Event::Stopped => {
            tracing::info!("ssh stopped");
            return;
        }
    };
    if !quiet {
        say!("ownmail tunnel: {line}");
    }
}

/// "; ssh said: ..." when it said anything.
fn said(words: &[String]) -> String {
    match words {
        [] => String::new(),
        w => format!("; ssh said: {}", w.join(" / ")),
    }
}

fn run_tls(global: &GlobalArgs, a: TunnelTlsArgs) -> anyhow::Result<u8> {
    if let Some(accept) = a.accept {
        let to = a.to.expect("clap: --accept requires --to");
        ttls::require_loopback(to, "--to")?;
        let config = load_config(global)?;
        let tls = config.tls.as_ref().ok_or_else(|| {
            UsageError(format!(
                "server mode needs a certificate: add `tls: {{cert: FILE, key: FILE}}` to {}",
                config
                    .source
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "the configuration".into())
            ))
        })?;
        let identity = Arc::new(
            ServerIdentity::load(&tls.cert, &tls.key).map_err(crate::tunnel::TunnelError::from)?,
        );
        let rt = super::runtime(Some(2))?;
        let stop = stop_signal(&rt)?;
        rt.block_on(async {
            let listener = ttls::listen(accept).await?;
            if global.quiet == 0 {
                let _ = out!(
                    "Accepting TLS on {} and carrying it to {to}.",
                    listener.local_addr().unwrap_or(accept)
                );
            }
            ttls::run_server(listener, identity, to, stop).await
        })?;
        return Ok(sysexits::OK);
    }

    let connect = a.connect.expect("clap: a mode is required");
    let (host, port) = ttls::parse_host_port(&connect)
        .ok_or_else(|| UsageError(format!("--connect {connect:?} is not HOST:PORT")))?;
    let trust = match (&a.ca, &a.pin) {
        (Some(ca), _) => Trust::Ca(std::fs::read(ca).map_err(|source| {
            crate::tunnel::TunnelError::Unreadable {
                option: "--ca",
                path: ca.clone(),
                source,
            }
        })?),
        (None, Some(pin)) => Trust::Pin(Fingerprint::parse(pin).ok_or_else(|| {
            UsageError(format!(
                "--pin {pin:?} is not a fingerprint: expected sha256: and 64 hex digits \
                 (colons allowed), as `ownmail tunnel fingerprint` prints it"
            ))
        })?),
        (None, None) => Trust::System,
    };
    let connector = Connector::new(&host, &trust).map_err(crate::tunnel::TunnelError::from)?;
    let remote = Arc::new(Remote {
        host,
        port,
        connector,
    });
    let rt = super::runtime(Some(2))?;
    if a.stdio {
        let result = rt.block_on(ttls::run_stdio(&remote));
        // Reading stdin blocks a thread that no one can interrupt: do not
        // wait for it.
        rt.shutdown_background();
        result?;
        return Ok(sysexits::OK);
    }
    let Some(listen) = a.listen else {
        return Err(UsageError("client mode needs --listen ADDR:PORT or --stdio".into()).into());
    };
    ttls::require_loopback(listen, "--listen")?;
    let stop = stop_signal(&rt)?;
    rt.block_on(async {
        let listener = ttls::listen(listen).await?;
        if global.quiet == 0 {
            let local = listener.local_addr().unwrap_or(listen);
            let _ = out!(
                "Carrying {local} over TLS to {connect}. Mail client settings while it runs:\n  \
                 server {}, port {}, connection security: none (the tunnel encrypts it),\n  \
                 user name and password: your mail account's",
                local.ip(),
                local.port()
            );
        }
        ttls::run_client(listener, remote, stop).await
    })?;
    Ok(sysexits::OK)
}

fn run_fingerprint(a: TunnelFingerprintArgs) -> anyhow::Result<u8> {
    let (host, port) = ttls::parse_host_port(&a.server)
        .ok_or_else(|| UsageError(format!("{:?} is not HOST:PORT", a.server)))?;
    let rt = super::runtime(Some(2))?;
    let info = rt.block_on(ttls::fingerprint(&host, port))?;
    say!(
        "subject: {}\nissuer: {}\nexpires: {}",
        info.subject,
        info.issuer,
        info.not_after
    );
    out!("{}", info.fingerprint)?;
    Ok(sysexits::OK)
}
