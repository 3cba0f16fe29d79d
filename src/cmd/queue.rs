//! `ownmail queue list|show|flush|delete`.

use std::io::Write;

use anyhow::Context;

use super::load_config;
use crate::cli::{GlobalArgs, QueueArgs, QueueCommand};
use crate::config::Config;
use crate::error::sysexits;
use crate::queue::{Queue, Status, unix_now, worker};

pub fn run(global: &GlobalArgs, args: QueueArgs) -> anyhow::Result<u8> {
    let config = load_config(global)?;
    let queue = Queue::open(&config.data_dir.join("queue"))?;
    match args.command {
        QueueCommand::List => {
            let list = queue.list()?;
            let now = unix_now();
            for env in &list {
                let sender = if env.sender.is_empty() {
                    "<>"
                } else {
                    &env.sender
                };
                out!(
                    "{}  {}  {}  attempts {}",
                    env.id,
                    age(now.saturating_sub(env.created)),
                    sender,
                    env.attempts
                )?;
                for r in &env.recipients {
                    let status = match r.status {
                        Status::Pending => "pending",
                        Status::Delivered => "delivered",
                        Status::Failed => "failed",
                    };
                    let to = match &r.local_user {
                        Some(user) => format!("{} (for {user})", r.address),
                        None => r.address.clone(),
                    };
                    match &r.last_error {
                        Some(e) => out!("    {to} {status}: {e}")?,
                        None => out!("    {to} {status}")?,
                    }
                }
            }
            let corrupt = queue.corrupt();
            for (id, why) in &corrupt {
                out!(
                    "{id}  damaged, set aside in {}: {why}",
                    queue.dir().join("corrupt").display()
                )?;
            }
            if list.is_empty() && corrupt.is_empty() && global.quiet == 0 {
                say!("the queue is empty");
            }
        }
        QueueCommand::Show { id } => {
            let env = queue.load(&id)?;
            out!("{}", serde_json::to_string_pretty(&env)?)?;
            let path = queue.message_path(&id);
            let msg =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let end = memchr::memmem::find(&msg, b"\r\n\r\n").map_or(msg.len(), |i| i + 2);
            out!()?;
            super::stdout().write_all(
                String::from_utf8_lossy(&msg[..end])
                    .replace("\r\n", "\n")
                    .as_bytes(),
            )?;
        }
        QueueCommand::Flush => {
            let s = flush(&config, &queue)?;
            if global.quiet == 0 {
                say!(
                    "delivered {}, deferred {}, failed {}, bounces {}",
                    s.delivered,
                    s.deferred,
                    s.failed,
                    s.bounces
                );
            }
            if s.deferred > 0 {
                return Ok(sysexits::TEMPFAIL);
            }
        }
        QueueCommand::Delete { id } => {
            queue.remove(&id)?;
        }
    }
    Ok(sysexits::OK)
}

/// One pass over the whole queue now, retry times or not (`queue flush`,
/// `sendmail -q`); damaged entries set aside are said.
pub(super) fn flush(config: &Config, queue: &Queue) -> anyhow::Result<worker::Summary> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let s = runtime.block_on(worker::pass(config, queue, true))?;
    if s.corrupt > 0 {
        say!(
            "{} damaged entries set aside in {} (see `ownmail queue list`)",
            s.corrupt,
            queue.dir().join("corrupt").display()
        );
    }
    Ok(s)
}

fn age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}
