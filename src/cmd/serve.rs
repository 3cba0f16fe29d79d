//! `ownmail serve`: every configured server in one process (today: IMAP).
//! With no configuration anywhere, a first-try setup in the working folder.

use std::net::SocketAddr;

use anyhow::Context as _;

use super::load_config_if_any;
use crate::cli::{GlobalArgs, ServeArgs};
use crate::config::Config;
use crate::error::sysexits;

/// Where IMAP listens when the configuration does not say.
pub const DEFAULT_IMAP: &str = "127.0.0.1:1143";
const FIRST_CONFIG: &str = "\
# Written by `ownmail serve` for a first try; edit freely.
data_dir: ownmail-data
imap:
  listen: [\"127.0.0.1:1143\"]
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
        eprintln!(
            "ownmail: no users yet; add one with `ownmail user add NAME`{}",
            match &config.source {
                Some(p) => format!(" (configuration: {})", p.display()),
                None => String::new(),
            }
        );
    }
    for a in &plain {
        eprintln!(
            "ownmail: IMAP on {a} (plain; STARTTLS {})",
            if config.tls.is_some() {
                "offered"
            } else {
                "off: no tls: configured"
            }
        );
    }
    for a in &tls {
        eprintln!("ownmail: IMAP over TLS on {a}");
    }
    super::serve_imap::serve(&config, &plain, &tls)?;
    Ok(sysexits::OK)
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
    eprintln!(
        "ownmail: no configuration found; wrote {} (data in ./ownmail-data, IMAP on {DEFAULT_IMAP})",
        path.display()
    );
    Ok(Config::load(&path)?)
}
