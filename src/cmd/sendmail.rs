//! `ownmail sendmail` (and the binary called as `sendmail`): queue a
//! message from standard input; exit 0 only when it is durable.

use std::io::BufReader;

use super::UsageError;
use super::load_config;
use crate::cli::{GlobalArgs, SendmailArgs};
use crate::error::sysexits;
use crate::queue::submit::{self, Options};
use crate::queue::{Queue, new_id};

pub fn run(global: &GlobalArgs, args: SendmailArgs) -> anyhow::Result<u8> {
    if args.flush_queue {
        // sendmail -q: run the queue now, quietly, as Postfix's does (mail
        // that cannot go yet stays queued for serve-smtp's next try).
        let config = load_config(global)?;
        let queue = Queue::open(&config.data_dir.join("queue"))?;
        super::queue::flush(&config, &queue)?;
        return Ok(sysexits::OK);
    }
    match args.mode.as_str() {
        "m" => {}
        // newaliases: aliases are read from the configuration at each use.
        "i" => return Ok(sysexits::OK),
        "p" => {
            return Err(
                UsageError("-bp: the queue is listed by `ownmail queue list`".into()).into(),
            );
        }
        "d" => {
            return Err(UsageError("-bd: the SMTP server is `ownmail serve-smtp`".into()).into());
        }
        mode => {
            return Err(UsageError(format!(
                "-b{mode} is not supported: ownmail's sendmail queues a message from standard input (-bm)"
            ))
            .into());
        }
    }
    let config = load_config(global)?;
    let domain = config
        .domains
        .first()
        .cloned()
        .unwrap_or_else(|| config.hostname.clone());
    let login = login_name();
    let sender = match &args.from {
        Some(f) if f.is_empty() || f == "<>" => String::new(),
        Some(f) => submit::normalize(f, &domain)?,
        None => submit::normalize(&login, &domain)?,
    };
    let ignore_dots = args.ignore_dots || args.option.iter().any(|o| o == "i");
    let opts = Options {
        from_headers: args.from_headers,
        ignore_dots,
        sender,
        full_name: args.full_name,
        recipients: args.recipients,
        domain,
        hostname: config.hostname.clone(),
        max_size: config.smtp.max_message_size,
        login,
    };
    let id = new_id();
    let s = submit::prepare(
        BufReader::new(std::io::stdin().lock()),
        &opts,
        &id,
        std::time::SystemTime::now(),
    )?;
    let queue = Queue::open(&config.data_dir.join("queue"))?;
    let id = queue.enqueue(&s.sender, &s.recipients, &s.message)?;
    tracing::info!(id, "queued");
    Ok(sysexits::OK)
}

/// The user running the command.
fn login_name() -> String {
    for var in ["LOGNAME", "USER"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            return v;
        }
    }
    // SAFETY: getuid cannot fail.
    super::user_name(unsafe { libc::getuid() }).unwrap_or_else(|| "root".to_owned())
}
