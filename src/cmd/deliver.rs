//! `ownmail deliver`: one message on stdin into a Maildir folder.

use anyhow::Context;

use super::{RetryLater, UsageError, known_user, load_config, load_config_if_any};
use crate::cli::{DeliverArgs, GlobalArgs};
use crate::deliver::{self, Envelope, Target};
use crate::error::sysexits;
use crate::store::{Flag, MailboxName};

pub fn run(global: &GlobalArgs, args: DeliverArgs) -> anyhow::Result<u8> {
    let folder =
        MailboxName::new(&args.folder).map_err(|e| UsageError(format!("--folder: {e}")))?;
    let flags = match &args.flags {
        Some(list) => Flag::parse_list(list).map_err(|e| UsageError(format!("--flags: {e}")))?,
        None => Vec::new(),
    };
    // A configuration that cannot be used is 75, not 78: the MTA keeps
    // the mail until it is fixed (Postfix bounces on 78).
    let retry = |e: crate::config::ConfigError| {
        RetryLater(format!(
            "{e} (exit 75: the MTA keeps the message and retries; fix the configuration \
             and the mail follows)"
        ))
    };
    // With --maildir the configuration is optional; with --user it says where mail lives.
    let (maildir, config, user) = match (&args.user, &args.maildir) {
        (Some(name), _) => {
            let config = load_config(global).map_err(retry)?;
            let user = known_user(&config, name)?;
            (config.user_maildir(&user), Some(config), Some(user))
        }
        (None, Some(dir)) => (
            std::path::absolute(dir)?,
            load_config_if_any(global).map_err(retry)?,
            None,
        ),
        (None, None) => unreachable!("clap requires --user or --maildir"),
    };

    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let hostname = config
        .as_ref()
        .map(|c| c.hostname.clone())
        .unwrap_or_else(crate::store::delivery::system_hostname);
    let recipient = args
        .recipient
        .clone()
        .or_else(|| env("RECIPIENT"))
        .unwrap_or_else(|| {
            let domain = config
                .as_ref()
                .and_then(|c| c.domains.first().cloned())
                .unwrap_or(hostname);
            let local = user
                .as_ref()
                .map(|u| u.to_string())
                .or_else(|| env("USER"))
                .unwrap_or_else(|| "root".into());
            if local.contains('@') {
                local
            } else {
                format!("{local}@{domain}")
            }
        });
    // Postfix's local(8) exports the envelope sender as $SENDER ("" for a bounce).
    let envelope = Envelope {
        sender: args.from.clone(),
        fallback_sender: std::env::var("SENDER").ok(),
        recipient,
        refuse_loops: true,
    };
    let target = Target {
        maildir,
        folder,
        create: args.create,
        flags,
    };

    let stdin = std::io::stdin().lock();
    let spam = config.as_ref().map(|c| &c.spam).filter(|s| s.enabled);
    let delivered = match spam {
        // spam.enabled: tag, and file spam into the Junk folder.
        Some(settings) => {
            deliver::deliver_filtered(stdin, &envelope, &target, settings, user.as_ref())
        }
        None => deliver::deliver(stdin, &envelope, &target),
    }
    .with_context(|| format!("delivery to {} failed", envelope.recipient))?;
    tracing::debug!(path = %delivered.path.display(), size = delivered.size, "delivered");
    Ok(sysexits::OK)
}
