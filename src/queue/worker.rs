//! The delivery worker: sends what is queued, one pass at a time, under an
//! flock(2) on `queue/worker.lock` so that `ownmail queue flush` and a
//! running server never send the same message at once.
//!
//! Per recipient: a local domain is delivered into the Maildir; anything
//! else goes to the smarthost (`smtp.relay`, via lettre). A temporary
//! failure is retried with backoff ([`backoff`]: 5 minutes doubling to 4
//! hours) until `smtp.queue_lifetime`; a permanent failure or expiry
//! bounces ([`super::bounce`]) unless the message is itself a bounce.
//! One recipient's failure never holds up the others.
//!
//! Duplicates: a message is removed (or its envelope updated) only after
//! the remote server's reply to the end of data. A crash or a lost
//! connection between that reply and our update sends it again: the
//! duplicate SMTP itself cannot avoid (RFC 1047). A bounce is queued
//! before the envelope is updated, so the same crash may bounce twice,
//! never not at all.

use std::fs::File;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Quit, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use tokio::sync::{Notify, watch};

use super::bounce::{self, Failure};
use super::{Envelope, Queue, QueueError, Status, unix_now};
use crate::config::Config;
use crate::config::fetch::TlsMode;
use crate::config::smtp::RelayConfig;
use crate::proto::smtp::Directory;

/// How often the queue is looked at when nobody wakes the worker (so
/// messages `sendmail` queued are picked up).
pub const POLL: Duration = Duration::from_secs(5);
/// How long one SMTP exchange with the smarthost may take.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(60);

/// The delay before attempt `n + 1` after `n` failed ones.
pub fn backoff(attempts: u32) -> Duration {
    let minutes = 5u64.saturating_mul(1 << attempts.saturating_sub(1).min(10));
    Duration::from_secs(minutes.min(4 * 60) * 60)
}

/// What happened to one recipient in one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Try again later; the text says why.
    Temporary(String),
    /// Never; `status` is the enhanced code for the bounce.
    Permanent {
        status: String,
        text: String,
    },
}

/// What a pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub delivered: usize,
    pub deferred: usize,
    pub failed: usize,
    pub bounces: usize,
    /// Damaged entries moved to `queue/corrupt/`.
    pub corrupt: usize,
}

/// Runs passes until `stop`.
pub async fn run(
    config: Arc<Config>,
    queue: Queue,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        if let Err(e) = pass(&config, &queue, false).await {
            tracing::error!("queue: {e}");
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One pass over the queue: every message that is due, or all of them
/// with `force` (`queue flush`). Waits for a pass another process runs.
pub async fn pass(config: &Config, queue: &Queue, force: bool) -> Result<Summary, QueueError> {
    let lock_path = queue.dir().join("worker.lock");
    let _lock = tokio::task::spawn_blocking(move || lock(&lock_path))
        .await
        .map_err(|e| QueueError::Io {
            path: queue.dir().to_owned(),
            source: std::io::Error::other(e),
        })??;
    let mut summary = Summary::default();
    let now = unix_now();
    let (envelopes, damaged) = queue.scan()?;
    for (id, e) in damaged {
        match e {
            QueueError::Corrupt { .. } => set_aside(queue, &id, &e.to_string(), &mut summary),
            // An I/O error may pass: leave the entry for the next pass.
            e => tracing::error!(id, "queue: skipped: {e}"),
        }
    }
    // Regression: `attempt(...)?` let one entry without its message file
    // stop every pass, and with it all outbound mail. Each entry now fails
    // alone.
    for env in envelopes {
        if !(force || env.next_attempt <= now) {
            continue;
        }
        let id = env.id.clone();
        match attempt(config, queue, env, &mut summary).await {
            Ok(()) => {}
            Err(e @ QueueError::MissingMessage { .. }) => {
                set_aside(queue, &id, &e.to_string(), &mut summary)
            }
            Err(QueueError::NotFound(_)) => {
                tracing::info!(id, "removed from the queue (queue delete) while being sent");
            }
            Err(e) => tracing::error!(id, "queue: this attempt failed, retried later: {e}"),
        }
    }
    Ok(summary)
}

/// Moves a damaged entry to `queue/corrupt/`, loudly.
fn set_aside(queue: &Queue, id: &str, why: &str, summary: &mut Summary) {
    match queue.move_aside(id, why) {
        Ok(true) => {
            tracing::error!(
                id,
                "queue: damaged entry moved to {}: {why}",
                queue.dir().join("corrupt").display()
            );
            summary.corrupt += 1;
        }
        Ok(false) => {}
        Err(e) => tracing::error!(
            id,
            "queue: damaged entry ({why}) could not be moved aside: {e}"
        ),
    }
}

fn lock(path: &std::path::Path) -> Result<File, QueueError> {
    super::flock_exclusive(path)
}

async fn attempt(
    config: &Config,
    queue: &Queue,
    mut env: Envelope,
    summary: &mut Summary,
) -> Result<(), QueueError> {
    let message = queue.read_message(&env.id)?;
    let directory = directory(config);
    let pending: Vec<usize> = (0..env.recipients.len())
        .filter(|&i| env.recipients[i].status == Status::Pending)
        .collect();
    let (local, remote): (Vec<usize>, Vec<usize>) = pending.iter().partition(|&&i| {
        let r = &env.recipients[i];
        r.local_user.is_some()
            || r.address
                .rsplit_once('@')
                .is_some_and(|(_, d)| directory.is_local_domain(d))
    });
    let mut outcomes: Vec<(usize, Outcome)> = Vec::new();
    for i in local {
        let r = &env.recipients[i];
        let outcome = match &r.local_user {
            Some(user) => deliver_to_user(config, &env.sender, user, &r.address, &message),
            None => deliver_local(config, &directory, &env.sender, &r.address, &message),
        };
        outcomes.push((i, outcome));
    }
    if !remote.is_empty() {
        let addrs: Vec<String> = remote
            .iter()
            .map(|&i| env.recipients[i].address.clone())
            .collect();
        let results = match &config.smtp.relay {
            Some(relay) => send_via_relay(config, relay, &env.sender, &addrs, &message).await,
            None => send_direct(config, &env.sender, &addrs, &message).await,
        };
        outcomes.extend(remote.into_iter().zip(results));
    }

    let expired = unix_now() >= env.created + config.smtp.queue_lifetime.as_secs();
    let mut failures: Vec<(usize, String, String)> = Vec::new();
    for (i, outcome) in outcomes {
        let r = &mut env.recipients[i];
        match outcome {
            Outcome::Delivered => {
                r.status = Status::Delivered;
                r.last_error = None;
                summary.delivered += 1;
                tracing::info!(id = env.id, to = r.address, "delivered");
            }
            Outcome::Temporary(text) if expired => {
                failures.push((
                    i,
                    "4.4.7".into(),
                    format!("expired in the queue; last error: {text}"),
                ));
            }
            Outcome::Temporary(text) => {
                tracing::info!(id = env.id, to = r.address, "deferred: {text}");
                r.last_error = Some(text);
                summary.deferred += 1;
            }
            Outcome::Permanent { status, text } => failures.push((i, status, text)),
        }
    }
    for (i, _, text) in &failures {
        let r = &mut env.recipients[*i];
        tracing::warn!(id = env.id, to = r.address, "failed: {text}");
        r.status = Status::Failed;
        r.last_error = Some(text.clone());
        summary.failed += 1;
    }
    // Deleted while we were sending (`queue delete`): no bounce either.
    let deleted = matches!(queue.load(&env.id), Err(QueueError::NotFound(_)));
    if !failures.is_empty() && !env.is_bounce() && !deleted {
        let list: Vec<Failure> = failures
            .iter()
            .map(|(i, status, text)| Failure {
                address: &env.recipients[*i].address,
                status,
                diagnostic: text,
            })
            .collect();
        let dsn = bounce::build(
            &config.hostname,
            &env.sender,
            &message,
            env.created,
            &list,
            SystemTime::now(),
        );
        let id = queue.enqueue("", std::slice::from_ref(&env.sender), &dsn)?;
        tracing::info!(id = env.id, bounce = id, to = env.sender, "bounced");
        summary.bounces += 1;
    }
    if env.pending().next().is_none() {
        match queue.remove(&env.id) {
            Err(QueueError::NotFound(_)) => {}
            r => r?,
        }
    } else {
        env.attempts += 1;
        env.next_attempt = unix_now() + backoff(env.attempts).as_secs();
        queue.update(&env)?;
    }
    Ok(())
}

/// Direct to each recipient domain's MX hosts, one domain at a time.
async fn send_direct(
    config: &Config,
    sender: &str,
    recipients: &[String],
    message: &[u8],
) -> Vec<Outcome> {
    let resolver = match super::mx::resolver(&config.smtp.dns_servers) {
        Ok(r) => r,
        Err(e) => {
            return recipients
                .iter()
                .map(|_| Outcome::Temporary(e.clone()))
                .collect();
        }
    };
    let mut outcomes: Vec<Option<Outcome>> = vec![None; recipients.len()];
    let mut domains: Vec<String> = recipients
        .iter()
        .filter_map(|r| r.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
        .collect();
    domains.sort();
    domains.dedup();
    for domain in domains {
        let idx: Vec<usize> = (0..recipients.len())
            .filter(|&i| {
                recipients[i]
                    .rsplit_once('@')
                    .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&domain))
            })
            .collect();
        let list: Vec<String> = idx.iter().map(|&i| recipients[i].clone()).collect();
        let res =
            super::mx::deliver_domain(config, &resolver, &domain, sender, &list, message).await;
        for (i, o) in idx.into_iter().zip(res) {
            outcomes[i] = Some(o);
        }
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| Outcome::Permanent {
                status: "5.1.3".into(),
                text: "no domain in the address".into(),
            })
        })
        .collect()
}

/// Regression: a users file that could not be read was an empty one, so
/// every local recipient failed (550) and the bounce, local too, was lost.
/// Now those recipients are deferred (see [`crate::smtp::directory`]).
fn directory(config: &Config) -> Directory {
    crate::smtp::directory(config).0
}

fn deliver_local(
    config: &Config,
    directory: &Directory,
    sender: &str,
    address: &str,
    message: &[u8],
) -> Outcome {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Outcome::Permanent {
            status: "5.1.3".into(),
            text: format!("bad address {address}"),
        };
    };
    let users = match directory.resolve(local, domain) {
        Ok(Some(users)) => users,
        Ok(None) => {
            return Outcome::Permanent {
                status: "5.1.1".into(),
                text: "550 5.1.1 No such user here".into(),
            };
        }
        Err(e) => return Outcome::Temporary(e.to_string()),
    };
    let targets: Vec<(String, String)> =
        users.into_iter().map(|u| (u, address.to_owned())).collect();
    // Not through the spam filter: the queue holds what our own users
    // submitted (authenticated SMTP, sendmail); mail from outside is
    // filtered when serve-smtp delivers it.
    local_outcome(crate::smtp::local::deliver(
        &config.data_dir,
        b"",
        message,
        sender,
        &targets,
        None,
    ))
}

/// A local copy the server could not make when it accepted the message
/// (see [`crate::smtp::conn`]): to that user, as `address`, through the
/// spam filter as the server would have.
fn deliver_to_user(
    config: &Config,
    sender: &str,
    user: &str,
    address: &str,
    message: &[u8],
) -> Outcome {
    let targets = [(user.to_owned(), address.to_owned())];
    let spam = Some(&config.spam).filter(|s| s.enabled);
    local_outcome(crate::smtp::local::deliver(
        &config.data_dir,
        b"",
        message,
        sender,
        &targets,
        spam,
    ))
}

fn local_outcome(
    result: Result<Vec<std::path::PathBuf>, crate::smtp::local::LocalError>,
) -> Outcome {
    match result {
        Ok(_) => Outcome::Delivered,
        Err(e) if e.is_permanent() => Outcome::Permanent {
            status: "5.4.6".into(),
            text: e.to_string(),
        },
        Err(e) => Outcome::Temporary(e.to_string()),
    }
}

/// Sends one message to the smarthost: one MAIL, one RCPT per recipient
/// (so each gets its own answer), DATA for the accepted ones.
pub async fn send_via_relay(
    config: &Config,
    relay: &RelayConfig,
    sender: &str,
    recipients: &[String],
    message: &[u8],
) -> Vec<Outcome> {
    let target = Target {
        host: relay.host.clone(),
        addr: None,
        port: relay.port,
        tls: match relay.tls {
            TlsMode::Tls => TargetTls::Implicit,
            TlsMode::Starttls => TargetTls::Required,
            TlsMode::None => TargetTls::Off,
        },
        credentials: match (&relay.username, &relay.password_file) {
            (Some(u), Some(f)) => Some((u.clone(), f.clone())),
            _ => None,
        },
    };
    match send_over(config, &target, sender, recipients, message).await {
        Ok(v) => v,
        Err(e) => recipients.iter().map(|_| e.clone()).collect(),
    }
}

/// Where and how one SMTP exchange happens.
#[derive(Debug, Clone)]
pub struct Target {
    /// The name (for TLS and messages).
    pub host: String,
    /// The address to connect to, when already resolved.
    pub addr: Option<std::net::IpAddr>,
    pub port: u16,
    pub tls: TargetTls,
    /// User name and password file.
    pub credentials: Option<(String, std::path::PathBuf)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetTls {
    /// TLS from the first byte, certificate verified.
    Implicit,
    /// STARTTLS required, certificate verified.
    Required,
    /// STARTTLS when offered, any certificate (RFC 7435: better than
    /// plaintext, and MX hosts' certificates rarely match).
    Opportunistic,
    Off,
}

fn outcome_of(e: &lettre::transport::smtp::Error) -> Outcome {
    let text = e.to_string();
    if e.is_permanent() {
        let status = enhanced_status(&text).unwrap_or_else(|| "5.0.0".into());
        Outcome::Permanent { status, text }
    } else {
        Outcome::Temporary(text)
    }
}

/// The RFC 3463 code in a reply text (`... 5.1.1 No such user`).
fn enhanced_status(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == ':' || c == ',')
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts[1..]
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_owned)
}

/// One SMTP exchange; `Err`: the whole attempt failed (connection, TLS,
/// MAIL), `Ok`: an outcome per recipient.
pub async fn send_over(
    config: &Config,
    target: &Target,
    sender: &str,
    recipients: &[String],
    message: &[u8],
) -> Result<Vec<Outcome>, Outcome> {
    let hello = ClientId::Domain(config.hostname.clone());
    let tls = || {
        let b = TlsParameters::builder(target.host.clone());
        let b = if target.tls == TargetTls::Opportunistic {
            b.dangerous_accept_invalid_certs(true)
                .dangerous_accept_invalid_hostnames(true)
        } else {
            b
        };
        b.build()
            .map_err(|e| Outcome::Temporary(format!("TLS setup: {e}")))
    };
    let implicit = match target.tls {
        TargetTls::Implicit => Some(tls()?),
        _ => None,
    };
    let shown = match target.addr {
        Some(ip) => format!("{} [{ip}]:{}", target.host, target.port),
        None => format!("{}:{}", target.host, target.port),
    };
    let temp = |e: lettre::transport::smtp::Error| Outcome::Temporary(format!("{shown}: {e}"));
    let connect = match target.addr {
        Some(ip) => {
            AsyncSmtpConnection::connect_tokio1(
                std::net::SocketAddr::new(ip, target.port),
                Some(SMTP_TIMEOUT),
                &hello,
                implicit,
                None,
            )
            .await
        }
        None => {
            AsyncSmtpConnection::connect_tokio1(
                (target.host.as_str(), target.port),
                Some(SMTP_TIMEOUT),
                &hello,
                implicit,
                None,
            )
            .await
        }
    };
    let mut conn = connect.map_err(temp)?;
    match target.tls {
        TargetTls::Required if !conn.can_starttls() => {
            return Err(Outcome::Temporary(format!(
                "{shown} does not offer STARTTLS (smtp.relay.tls: starttls)"
            )));
        }
        TargetTls::Required => conn.starttls(tls()?, &hello).await.map_err(temp)?,
        TargetTls::Opportunistic if conn.can_starttls() => {
            conn.starttls(tls()?, &hello).await.map_err(temp)?
        }
        _ => {}
    }
    if let Some((user, file)) = &target.credentials {
        let password = std::fs::read_to_string(file)
            .map_err(|e| Outcome::Temporary(format!("{}: {e}", file.display())))?;
        let password = password.lines().next().unwrap_or("").to_owned();
        let creds = Credentials::new(user.to_owned(), password);
        // A refused login is our configuration's fault: retry, do not bounce.
        conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds)
            .await
            .map_err(temp)?;
    }
    let from = if sender.is_empty() {
        None
    } else {
        Some(sender.parse().map_err(|e| Outcome::Permanent {
            status: "5.1.7".into(),
            text: format!("sender {sender}: {e}"),
        })?)
    };
    let mut params = Vec::new();
    let non_ascii = !sender.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
    if non_ascii {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(Outcome::Permanent {
                status: "5.6.7".into(),
                text: "the relay does not support SMTPUTF8".into(),
            });
        }
        params.push(MailParameter::SmtpUtfEight);
    }
    if !message.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
        params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    if let Err(e) = conn.command(Mail::new(from, params)).await {
        let o = outcome_of(&e);
        conn.abort().await;
        return Err(o);
    }
    let mut outcomes = Vec::with_capacity(recipients.len());
    let mut accepted = Vec::new();
    for (i, r) in recipients.iter().enumerate() {
        let addr = match r.parse() {
            Ok(a) => a,
            Err(e) => {
                outcomes.push(Outcome::Permanent {
                    status: "5.1.3".into(),
                    text: format!("{r}: {e}"),
                });
                continue;
            }
        };
        match conn.command(Rcpt::new(addr, vec![])).await {
            Ok(_) => {
                accepted.push(i);
                outcomes.push(Outcome::Delivered);
            }
            Err(e) => {
                // A reply (4xx, 5xx) is this recipient's; anything else
                // (the connection broke) is the whole attempt's.
                if !e.is_permanent() && !e.is_transient() {
                    return Err(temp(e));
                }
                outcomes.push(outcome_of(&e));
            }
        }
    }
    if accepted.is_empty() {
        let _ = conn.command(Quit).await;
        return Ok(outcomes);
    }
    // lettre ends the data with CR LF "." CR LF, and that first CR LF is
    // the end of the message's last line (RFC 5321 4.1.1.4): without
    // taking the message's own off, every message gained an empty line.
    let body = message.strip_suffix(b"\r\n").unwrap_or(message);
    let data = match conn.command(Data).await {
        Ok(_) => conn.message(body).await,
        Err(e) => Err(e),
    };
    if let Err(e) = data {
        let o = outcome_of(&e);
        for i in accepted {
            outcomes[i] = o.clone();
        }
    }
    let _ = conn.command(Quit).await;
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    /// A minimal SMTP server on loopback that takes one message and
    /// returns the bytes after `354`, up to and with the end of data, as
    /// they came.
    async fn one_message_peer() -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (r, mut w) = tcp.into_split();
            let mut r = BufReader::new(r);
            w.write_all(b"220 peer.test ESMTP\r\n").await.unwrap();
            let mut data = Vec::new();
            let mut in_data = false;
            loop {
                let mut line = Vec::new();
                if r.read_until(b'\n', &mut line).await.unwrap() == 0 {
                    return data;
                }
                if in_data {
                    data.extend_from_slice(&line);
                    if data == b".\r\n" || data.ends_with(b"\r\n.\r\n") {
                        in_data = false;
                        w.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                    }
                    continue;
                }
                let reply: &[u8] = match &line.to_ascii_uppercase()[..4] {
                    b"EHLO" => b"250-peer.test\r\n250 8BITMIME\r\n",
                    b"DATA" => {
                        in_data = true;
                        b"354 go on\r\n"
                    }
                    b"QUIT" => {
                        w.write_all(b"221 bye\r\n").await.unwrap();
                        return data;
                    }
                    _ => b"250 ok\r\n",
                };
                w.write_all(reply).await.unwrap();
            }
        });
        (port, task)
    }

    fn test_config() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse(
            "hostname: mx.example.org\ndata_dir: data\n",
            &dir.path().join("ownmail.yaml"),
        )
        .unwrap();
        (dir, config)
    }

    /// Regression: every message sent out (smarthost or MX) gained an empty
    /// last line: the stored message ends in CR LF and lettre adds
    /// CR LF "." CR LF. The peer must get the message's bytes exactly.
    #[tokio::test]
    async fn the_message_is_sent_exactly_as_stored() {
        let (_dir, config) = test_config();
        let cases: [(&[u8], &[u8]); 3] = [
            (
                b"Subject: tail\r\n\r\nlast line\r\n",
                b"Subject: tail\r\n\r\nlast line\r\n.\r\n",
            ),
            (
                b"Subject: dots\r\n\r\n.leading\r\n\r\n",
                b"Subject: dots\r\n\r\n..leading\r\n\r\n.\r\n",
            ),
            // BDAT may store a message without a final line end: it gets one.
            (
                b"Subject: bdat\r\n\r\nno end",
                b"Subject: bdat\r\n\r\nno end\r\n.\r\n",
            ),
        ];
        for (i, (message, wire)) in cases.into_iter().enumerate() {
            let (port, peer) = one_message_peer().await;
            let to = vec!["ext@remote.example".to_owned()];
            let outcomes = if i % 2 == 0 {
                // Through the smarthost...
                let relay = RelayConfig {
                    host: "127.0.0.1".into(),
                    port,
                    tls: TlsMode::None,
                    username: None,
                    password_file: None,
                };
                send_via_relay(&config, &relay, "alice@example.org", &to, message).await
            } else {
                // ...and as direct delivery does it, to an MX's address.
                let target = Target {
                    host: "mx.remote.example".into(),
                    addr: Some("127.0.0.1".parse().unwrap()),
                    port,
                    tls: TargetTls::Opportunistic,
                    credentials: None,
                };
                send_over(&config, &target, "alice@example.org", &to, message)
                    .await
                    .unwrap()
            };
            assert_eq!(outcomes, vec![Outcome::Delivered]);
            let got = peer.await.unwrap();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(wire),
                "case {i}"
            );
        }
    }

    #[test]
    fn backoff_grows_from_minutes_to_hours() {
        let m = |n| backoff(n).as_secs() / 60;
        assert_eq!((m(1), m(2), m(3), m(4)), (5, 10, 20, 40));
        assert_eq!(m(7), 240);
        assert_eq!(m(1000), 240);
    }

    #[test]
    fn enhanced_codes_are_found_in_reply_texts() {
        assert_eq!(
            enhanced_status("permanent error (550): 5.1.1 <x@y>: Recipient address rejected")
                .as_deref(),
            Some("5.1.1")
        );
        assert_eq!(enhanced_status("550 mailbox 1.2 unavailable"), None);
    }
}
