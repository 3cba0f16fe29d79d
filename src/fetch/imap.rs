//! Fetching from an IMAP server, with async-imap over a [`Guarded`]
//! connection: log in, then for each folder SELECT, list UIDs and sizes,
//! fetch what is new in batches (`BODY.PEEK[]`, so nothing is marked
//! seen), deliver and record, `\Deleted` and UID EXPUNGE.
//!
//! - TLS: implicit (993), or STARTTLS (RFC 3501 6.2.1), required when asked
//!   for; a server answering NO is refused, never used without TLS.
//! - Login: LOGIN (RFC 3501 6.2.3), AUTHENTICATE PLAIN (RFC 4616),
//!   XOAUTH2 or OAUTHBEARER (RFC 7628) with a token; `auth: auto` takes
//!   LOGIN for a password and XOAUTH2 for a token.
//! - A message is known by (folder, UIDVALIDITY, UID) (RFC 3501 2.3.1.1).
//!   When a folder's UIDVALIDITY changes, the UIDs mean nothing any more:
//!   the folder's messages are matched to what was fetched before by
//!   Message-ID and size (ENVELOPE and RFC822.SIZE), the matches recorded
//!   under the new UIDVALIDITY and not fetched again, the others fetched;
//!   the report says so.
//! - Deleting: `UID STORE +FLAGS.SILENT (\Deleted)` per batch, then, after
//!   the state is fsynced, `UID EXPUNGE` (RFC 4315) for exactly those; a
//!   server without UIDPLUS gets EXPUNGE, which also removes what other
//!   clients marked `\Deleted`. A message another client marked
//!   `\Deleted` is not fetched (as fetchmail does).
//! - `--idle`: IDLE (RFC 2177) on the first folder, re-issued every 29
//!   minutes; any news runs a pass over every folder.
//! - Memory: async-imap holds one response at a time (its own ceiling is
//!   512 MiB); the guard's budget holds each command's responses to what
//!   the sizes announced, so a server cannot make us hold more.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;

use super::flow::{self, Fetched, Flow};
use super::login::{self, Login};
use super::state::{Entry, Key, State};
use super::{Context, FetchError, Report, Skipped};
use crate::auth::Secret;
use crate::config::fetch::{AuthMethod, TlsMode};
use crate::net::{self, Guard, Guarded, Stream};

type Session = async_imap::Session<Guarded<Stream>>;
type Client = async_imap::Client<Guarded<Stream>>;

/// Budget for a small exchange (greeting, login, SELECT, STORE).
const SMALL: u64 = 1024 * 1024;
/// Budget per message for a `UID RFC822.SIZE` listing line.
const PER_SIZE_LINE: u64 = 256;
/// Budget per message for an ENVELOPE listing line (they can be long).
const PER_ENVELOPE: u64 = 16 * 1024;
/// IDLE is re-issued this often (RFC 2177 3: before 30 minutes).
const IDLE_REISSUE: Duration = Duration::from_secs(29 * 60);

fn imap_err(server: &str) -> impl Fn(async_imap::error::Error) -> FetchError + '_ {
    move |e| match e {
        async_imap::error::Error::Io(io) => FetchError::io(server)(io),
        async_imap::error::Error::ConnectionLost => FetchError::Closed {
            server: server.to_owned(),
        },
        async_imap::error::Error::No(text) => FetchError::Imap {
            server: server.to_owned(),
            message: format!("the server said NO: {}", server_text(&text)),
        },
        async_imap::error::Error::Bad(text) => FetchError::Imap {
            server: server.to_owned(),
            message: format!("the server said BAD: {}", server_text(&text)),
        },
        other => FetchError::Imap {
            server: server.to_owned(),
            message: other.to_string(),
        },
    }
}

/// Runs the account: one pass, or with `--idle` passes whenever the server
/// says there is news, until a permanent error.
pub async fn run(cx: &Context<'_>, state: &mut State, report: Report) -> Report {
    if !cx.options.idle {
        let mut report = report;
        match connect(cx).await {
            Ok((mut session, guard)) => {
                if let Err(e) = pass(cx, state, &mut session, &guard, &mut report).await {
                    report.error = Some(e);
                } else {
                    guard.set_budget(SMALL);
                    let _ = session.logout().await;
                }
            }
            Err(e) => report.error = Some(e),
        }
        return report;
    }
    let mut report = report;
    let mut failures = 0u32;
    loop {
        let mut passed = false;
        let error = idle_session(cx, state, &report.account, &mut passed).await;
        let permanent = !error.is_temporary();
        let r = Report {
            error: Some(error),
            ..Report::new(&report.account)
        };
        cx.observer.pass_done(&r);
        if permanent {
            report.error = r.error;
            return report;
        }
        failures = failures_after(failures, passed);
        tokio::time::sleep(reconnect_delay(failures)).await;
    }
}

/// Sessions that failed in a row: one that got through a pass ends the
/// run of failures (its disconnect is the first of a new one), as a POP3
/// pass without error does.
fn failures_after(failures: u32, passed: bool) -> u32 {
    if passed { 1 } else { failures + 1 }
}

/// How long `--idle` waits before connecting again: 30 seconds per failure
/// in a row, at most 5 minutes.
fn reconnect_delay(failures: u32) -> Duration {
    Duration::from_secs(30) * failures.clamp(1, 10)
}

/// One connection in `--idle` mode: passes until something breaks.
/// `passed` is set once a pass has gone through.
async fn idle_session(
    cx: &Context<'_>,
    state: &mut State,
    account: &str,
    passed: &mut bool,
) -> FetchError {
    let (mut session, guard) = match connect(cx).await {
        Ok(s) => s,
        Err(e) => return e,
    };
    let server = cx.server();
    let can_idle = match session.capabilities().await {
        Ok(c) => c.has_str("IDLE"),
        Err(e) => return imap_err(&server)(e),
    };
    loop {
        let mut report = Report::new(account);
        if let Err(e) = pass(cx, state, &mut session, &guard, &mut report).await {
            return e;
        }
        *passed = true;
        cx.observer.pass_done(&report);
        if !can_idle {
            tokio::time::sleep(super::POP3_POLL).await;
            continue;
        }
        guard.set_budget(SMALL);
        let folder = encode_folder(&cx.account.folders[0]);
        if let Err(e) = session.select(&folder).await {
            return imap_err(&server)(e);
        }
        let mut handle = session.idle();
        if let Err(e) = handle.init().await {
            return imap_err(&server)(e);
        }
        // The server may stay silent for the whole IDLE.
        guard.set_idle_timeout(IDLE_REISSUE + Duration::from_secs(120));
        let (wait, _stop) = handle.wait_with_timeout(IDLE_REISSUE);
        let waited = wait.await;
        guard.set_idle_timeout(net::IDLE_TIMEOUT);
        if let Err(e) = waited {
            return imap_err(&server)(e);
        }
        session = match handle.done().await {
            Ok(s) => s,
            Err(e) => return imap_err(&server)(e),
        };
    }
}

/// Connects, starts TLS as asked, logs in.
async fn connect(cx: &Context<'_>) -> Result<(Session, Guard), FetchError> {
    let account = cx.account;
    let server = cx.server();
    let tls = cx.tls();
    let secret = login::obtain(account).await?;
    let implicit = (account.tls == TlsMode::Tls)
        .then_some(tls.as_ref())
        .flatten();
    let stream = net::connect(&account.host, account.port, implicit).await?;
    let guard = Guard::default();
    guard.set_budget(SMALL);
    let mut client = Client::new(Guarded::new(stream, guard.clone()));
    greeting(&mut client, &server).await?;
    if account.tls == TlsMode::Starttls {
        if let Err(e) = client.run_command_and_check_ok("STARTTLS", None).await {
            return Err(match e {
                async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_) => {
                    FetchError::NoStartTls {
                        server,
                        command: "STARTTLS",
                    }
                }
                other => imap_err(&server)(other),
            });
        }
        // Whatever async-imap read past the OK is dropped with the client:
        // nothing sent before TLS is taken as coming through it.
        let plain = client.into_inner().into_inner();
        let settings = tls.expect("starttls has settings");
        let secure = plain
            .start_tls(&settings)
            .await
            .map_err(|e| FetchError::Net(e.into()))?;
        client = Client::new(Guarded::new(secure, guard.clone()));
    }
    let session = log_in(cx, client, &secret, &server).await?;
    Ok((session, guard))
}

async fn greeting(client: &mut Client, server: &str) -> Result<(), FetchError> {
    use imap_proto::types::{Response, Status};
    let response = client
        .read_response()
        .await
        .map_err(FetchError::io(server))?
        .ok_or_else(|| FetchError::Closed {
            server: server.to_owned(),
        })?;
    match response.parsed() {
        Response::Data {
            status: Status::Ok | Status::PreAuth,
            ..
        } => Ok(()),
        other => Err(FetchError::Refused {
            server: server.to_owned(),
            command: "the greeting".into(),
            text: format!("{other:?}"),
            temporary: true,
        }),
    }
}

/// A SASL exchange: the first challenge gets the payload; a later one is
/// an error report (XOAUTH2 sends JSON), answered empty so the server can
/// say NO.
struct Sasl {
    payload: Option<Secret>,
}

impl async_imap::Authenticator for Sasl {
    type Response = Vec<u8>;
    fn process(&mut self, challenge: &[u8]) -> Vec<u8> {
        match self.payload.take() {
            Some(p) => p.expose().as_bytes().to_vec(),
            None => {
                tracing::debug!(challenge = %String::from_utf8_lossy(challenge), "SASL error challenge");
                Vec::new()
            }
        }
    }
}

async fn log_in(
    cx: &Context<'_>,
    client: Client,
    secret: &Login,
    server: &str,
) -> Result<Session, FetchError> {
    let account = cx.account;
    let user = account.username.as_str();
    let method = match (account.auth, secret) {
        (AuthMethod::Auto, Login::Password(_)) => AuthMethod::Login,
        (AuthMethod::Auto, Login::Token(_)) => AuthMethod::Xoauth2,
        (m, _) => m,
    };
    let result = match (method, secret) {
        (AuthMethod::Login, Login::Password(p)) => client
            .login(user, p.expose())
            .await
            .map_err(|(e, _)| ("LOGIN", e)),
        (AuthMethod::Plain, Login::Password(p)) => client
            .authenticate(
                "PLAIN",
                Sasl {
                    payload: Some(login::sasl_plain(user, p)),
                },
            )
            .await
            .map_err(|(e, _)| ("AUTHENTICATE PLAIN", e)),
        (AuthMethod::Xoauth2, Login::Token(t)) => client
            .authenticate(
                "XOAUTH2",
                Sasl {
                    payload: Some(login::sasl_xoauth2(user, t)),
                },
            )
            .await
            .map_err(|(e, _)| ("AUTHENTICATE XOAUTH2", e)),
        (AuthMethod::Oauthbearer, Login::Token(t)) => client
            .authenticate(
                "OAUTHBEARER",
                Sasl {
                    payload: Some(login::sasl_oauthbearer(
                        user,
                        &account.host,
                        account.port,
                        t,
                    )),
                },
            )
            .await
            .map_err(|(e, _)| ("AUTHENTICATE OAUTHBEARER", e)),
        (m, _) => {
            return Err(FetchError::NoMechanism {
                server: server.to_owned(),
                wanted: format!("{m:?}"),
                offered: "LOGIN, AUTHENTICATE".into(),
            });
        }
    };
    result.map_err(|(method, e)| match e {
        async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text) => {
            // RFC 5530: UNAVAILABLE and INUSE are worth retrying.
            let temporary = text.contains("[UNAVAILABLE]") || text.contains("[INUSE]");
            FetchError::LoginRefused {
                server: server.to_owned(),
                user: user.to_owned(),
                method: method.to_owned(),
                text: server_text(&text),
                hint: if temporary {
                    String::new()
                } else {
                    cx.credential_hint()
                },
                temporary,
            }
        }
        other => imap_err(server)(other),
    })
}

/// One pass over every folder.
async fn pass(
    cx: &Context<'_>,
    state: &mut State,
    session: &mut Session,
    guard: &Guard,
    report: &mut Report,
) -> Result<(), FetchError> {
    let server = cx.server();
    guard.set_budget(SMALL);
    let uidplus = session
        .capabilities()
        .await
        .map_err(imap_err(&server))?
        .has_str("UIDPLUS");
    let mut on_server: HashSet<Key> = HashSet::new();
    let mut listed: HashSet<String> = HashSet::new();
    let mut result = Ok(());
    for folder in &cx.account.folders {
        let before = on_server.len();
        match fetch_folder(
            cx,
            state,
            session,
            guard,
            report,
            folder,
            uidplus,
            &mut on_server,
        )
        .await
        {
            // An empty listing forgets nothing (see pop3.rs).
            Ok(()) if on_server.len() > before => {
                listed.insert(folder.clone());
            }
            Ok(()) => {}
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    // Forget what is no longer on the server, in the folders listed.
    let stale = state
        .fetched()
        .filter(|(k, _)| listed.contains(&k.folder) && !on_server.contains(k))
        .count();
    if stale > 0 || state.wants_compaction() {
        state.compact(|k| !listed.contains(&k.folder) || on_server.contains(k))?;
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn fetch_folder(
    cx: &Context<'_>,
    state: &mut State,
    session: &mut Session,
    guard: &Guard,
    report: &mut Report,
    folder: &str,
    uidplus: bool,
    on_server: &mut HashSet<Key>,
) -> Result<(), FetchError> {
    let server = cx.server();
    let err = imap_err(&server);
    guard.set_budget(SMALL);
    let mailbox = session
        .select(encode_folder(folder))
        .await
        .map_err(|e| match e {
            async_imap::error::Error::No(text) => FetchError::Refused {
                server: server.clone(),
                command: format!("SELECT {folder}"),
                text: server_text(&text),
                temporary: false,
            },
            other => err(other),
        })?;
    let Some(validity) = mailbox.uid_validity else {
        return Err(FetchError::Refused {
            server: server.clone(),
            command: format!("SELECT {folder}"),
            text: "no UIDVALIDITY, so fetched messages cannot be told from new ones".into(),
            temporary: false,
        });
    };
    let exists = u64::from(mailbox.exists);

    // UID and size of every message, and which are marked \Deleted.
    let mut listing: Vec<(u32, u64)> = Vec::with_capacity(mailbox.exists as usize);
    let mut marked_deleted: HashSet<u32> = HashSet::new();
    if exists > 0 {
        guard.set_budget(SMALL + PER_SIZE_LINE * exists);
        let mut fetches = session
            .uid_fetch("1:*", "(UID RFC822.SIZE FLAGS)")
            .await
            .map_err(&err)?;
        while let Some(f) = fetches.next().await {
            let f = f.map_err(&err)?;
            if let (Some(uid), Some(size)) = (f.uid, f.size) {
                listing.push((uid, u64::from(size)));
                if f.flags()
                    .any(|flag| flag == async_imap::types::Flag::Deleted)
                {
                    marked_deleted.insert(uid);
                }
            }
        }
    }
    for (uid, _) in &listing {
        on_server.insert(Key::imap(folder, validity, *uid));
    }

    // A changed UIDVALIDITY: match by Message-ID and size.
    let old: Vec<(Option<String>, u64, u32)> = state
        .fetched()
        .filter(|(k, _)| k.folder == folder && k.uidvalidity != validity)
        .map(|(k, e)| (e.message_id.clone(), e.size, k.uidvalidity))
        .collect();
    if !old.is_empty() && !listing.is_empty() {
        let known: HashSet<(String, u64)> = old
            .iter()
            .filter_map(|(id, size, _)| id.clone().map(|id| (id, *size)))
            .collect();
        guard.set_budget(SMALL + PER_ENVELOPE * exists);
        let mut ids: HashMap<u32, String> = HashMap::new();
        {
            let mut fetches = session
                .uid_fetch("1:*", "(UID RFC822.SIZE ENVELOPE)")
                .await
                .map_err(&err)?;
            while let Some(f) = fetches.next().await {
                let f = f.map_err(&err)?;
                let id = f
                    .envelope()
                    .and_then(|e| e.message_id.as_ref())
                    .and_then(|id| {
                        String::from_utf8_lossy(id)
                            .split_whitespace()
                            .next()
                            .map(str::to_owned)
                    });
                if let (Some(uid), Some(id)) = (f.uid, id) {
                    ids.insert(uid, id);
                }
            }
        }
        let mut matched = 0;
        for (uid, size) in &listing {
            let key = Key::imap(folder, validity, *uid);
            if state.is_fetched(&key) {
                continue;
            }
            if let Some(id) = ids.get(uid)
                && known.contains(&(id.clone(), *size))
            {
                state.record(
                    key,
                    Entry {
                        size: *size,
                        message_id: Some(id.clone()),
                    },
                );
                matched += 1;
            }
        }
        state.sync()?;
        let before: std::collections::BTreeSet<u32> = old.iter().map(|o| o.2).collect();
        let before: Vec<String> = before.iter().map(u32::to_string).collect();
        report.notes.push(format!(
            "{folder}: UIDVALIDITY changed from {} to {validity}, so its UIDs start over: \
             {matched} messages matched one fetched before (same Message-ID and size) and are \
             not fetched again; the other {} are fetched",
            before.join(", "),
            listing.len() - matched
        ));
    }

    // What is new, what is too big, what was fetched and may go.
    let keep = cx.keep();
    let max_size = cx.account.max_size;
    let mut wanted = Vec::new();
    let mut old_here = Vec::new();
    for (uid, size) in &listing {
        let key = Key::imap(folder, validity, *uid);
        if state.is_fetched(&key) && !cx.options.all {
            old_here.push(*uid);
            continue;
        }
        // Marked \Deleted by another client that has not expunged yet: as
        // fetchmail does, not fetched, and not expunged by us. (What we
        // mark is recorded first, so it is in old_here above.)
        if marked_deleted.contains(uid) {
            continue;
        }
        if *size > max_size {
            report.too_big_total += 1;
            if !state.is_reported(&key) {
                report.too_big.push(Skipped {
                    message: format!("{folder} UID {uid}"),
                    size: *size,
                });
                state.record_reported(
                    key,
                    Entry {
                        size: *size,
                        message_id: None,
                    },
                );
            }
            continue;
        }
        wanted.push((*uid, *size));
    }
    cx.observer
        .found(wanted.len() as u64, wanted.iter().map(|w| w.1).sum());

    let mut flow = Flow::new(cx.sink, state, cx.observer, cx.account.delete_rejected);
    let mut to_expunge: Vec<u32> = Vec::new();
    if !keep && !old_here.is_empty() {
        // Fetched before (a run that did not get to EXPUNGE, or keep: true
        // then): recorded, so safe to delete.
        store_deleted(session, guard, &err, &old_here).await?;
        to_expunge.extend(&old_here);
    }
    let mut stop = None;
    // The connection broke in the middle of a batch: what was received is
    // still delivered and recorded, then the run stops.
    let mut broken = None;
    for batch in flow::batches(wanted, |w| w.1) {
        let sizes: HashMap<u32, u64> = batch.iter().copied().collect();
        // The sizes announced, doubled, and one message of max_size more:
        // a server that counts a message smaller than it is still gets it
        // through, in this batch or as the first of the next run's.
        let budget = SMALL
            + batch.iter().map(|w| 2 * w.1 + 4096).sum::<u64>()
            + max_size.saturating_mul(2)
            + 4096;
        guard.set_budget(budget);
        let set = uid_set(batch.iter().map(|w| w.0));
        'fetch: {
            let mut fetches = match session
                .uid_fetch(&set, "(UID RFC822.SIZE BODY.PEEK[])")
                .await
            {
                Ok(f) => f,
                Err(e) => {
                    broken = Some(err(e));
                    break 'fetch;
                }
            };
            while let Some(f) = fetches.next().await {
                let f = match f {
                    Ok(f) => f,
                    Err(e) => {
                        broken = Some(err(e));
                        break;
                    }
                };
                let (Some(uid), Some(body)) = (f.uid, f.body()) else {
                    continue;
                };
                let Some(&size) = sizes.get(&uid) else {
                    continue;
                };
                if stop.is_some() {
                    continue;
                }
                let message = Fetched {
                    key: Key::imap(folder, validity, uid),
                    entry: Entry {
                        size,
                        message_id: super::message_id(body),
                    },
                    label: format!("{folder} UID {uid}"),
                    data: body.to_vec(),
                };
                if let Err(e) = flow.take(message, report).await {
                    stop = Some(e);
                }
            }
        }
        let safe = match flow.flush(report) {
            Ok(safe) => safe,
            Err(e) => {
                stop.get_or_insert(e);
                Vec::new()
            }
        };
        if let Some(e) = broken {
            // Recorded: marked and expunged on the next run.
            flow.finish()?;
            return Err(stop.unwrap_or(e));
        }
        if !keep && !safe.is_empty() {
            let uids: Vec<u32> = safe.iter().filter_map(|k| k.uid.parse().ok()).collect();
            store_deleted(session, guard, &err, &uids).await?;
            to_expunge.extend(uids);
        }
        if stop.is_some() {
            break;
        }
    }
    // Everything recorded is durable before EXPUNGE makes deletions real.
    flow.finish()?;
    if !to_expunge.is_empty() {
        guard.set_budget(SMALL + 64 * to_expunge.len() as u64);
        let expunged = if uidplus {
            let set = uid_set(to_expunge.iter().copied());
            let s = session.uid_expunge(&set).await.map_err(&err)?;
            let mut s = std::pin::pin!(s);
            let mut n = 0;
            while let Some(r) = s.next().await {
                r.map_err(&err)?;
                n += 1;
            }
            n
        } else {
            let s = session.expunge().await.map_err(&err)?;
            let mut s = std::pin::pin!(s);
            let mut n = 0;
            while let Some(r) = s.next().await {
                r.map_err(&err)?;
                n += 1;
            }
            n
        };
        report.deleted += expunged;
    }
    match stop {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn store_deleted(
    session: &mut Session,
    guard: &Guard,
    err: &impl Fn(async_imap::error::Error) -> FetchError,
    uids: &[u32],
) -> Result<(), FetchError> {
    guard.set_budget(SMALL + 256 * uids.len() as u64);
    let set = uid_set(uids.iter().copied());
    let s = session
        .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
        .await
        .map_err(err)?;
    let mut s = std::pin::pin!(s);
    while let Some(r) = s.next().await {
        r.map_err(err)?;
    }
    Ok(())
}

/// A UID set: ranges of consecutive UIDs joined, `1:5,8,10:12`.
fn uid_set(uids: impl Iterator<Item = u32>) -> String {
    let mut uids: Vec<u32> = uids.collect();
    uids.sort_unstable();
    uids.dedup();
    crate::proto::imap::response::sequence_set(&uids)
}

/// A folder name as IMAP wants it: modified UTF-7 (RFC 3501 5.1.3).
fn encode_folder(name: &str) -> String {
    if name.is_ascii() && !name.contains('&') {
        name.to_owned()
    } else {
        crate::store::name::encode_mutf7(name)
    }
}

fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// What the server said in a NO or BAD, as it said it: async-imap hands
/// it over as `code: <Debug>, info: <Debug>`, which is no text for a
/// person (`code: None, info: Some("[AUTHENTICATIONFAILED] ...")`).
fn server_text(text: &str) -> String {
    let Some((code, info)) = text
        .strip_prefix("code: ")
        .and_then(|rest| rest.split_once(", info: "))
    else {
        return clean(text);
    };
    let code = match code.strip_prefix("Some(").and_then(|c| c.strip_suffix(')')) {
        // A bare response code (Alert, Unavailable); one with arguments
        // stays in the text the server wrote, if anywhere.
        Some(c) if c.chars().all(|c| c.is_ascii_alphanumeric()) => {
            format!("[{}]", c.to_ascii_uppercase())
        }
        _ => String::new(),
    };
    let info = info
        .strip_prefix("Some(\"")
        .and_then(|i| i.strip_suffix("\")"))
        .map(unescape_debug)
        .unwrap_or_default();
    let joined = match (code.is_empty(), info.is_empty()) {
        (false, false) => format!("{code} {info}"),
        _ => format!("{code}{info}"),
    };
    clean(&joined)
}

/// Undoes `{:?}` on a string: `\"`, `\\`, `\n` and friends, `\u{..}`.
fn unescape_debug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some('u') => {
                let hex: String = chars
                    .by_ref()
                    .skip_while(|c| *c == '{')
                    .take_while(|c| *c != '}')
                    .collect();
                out.push(
                    u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .unwrap_or('?'),
                );
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_reconnects_back_off_only_while_sessions_fail_in_a_row() {
        // Disconnects after good sessions: the delay stays at 30 seconds.
        let mut failures = 0;
        for _ in 0..6 {
            failures = failures_after(failures, true);
        }
        assert_eq!(reconnect_delay(failures), Duration::from_secs(30));
        // Sessions that never get through: 30, 60, ... 300 seconds.
        let delays: Vec<u64> = (0..12)
            .map(|_| {
                failures = failures_after(failures, false);
                reconnect_delay(failures).as_secs()
            })
            .collect();
        assert_eq!(
            delays,
            [60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300, 300]
        );
        assert_eq!(
            reconnect_delay(failures_after(failures, true)),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn server_texts_are_shown_plainly() {
        let cases = [
            (
                r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")"#,
                "[AUTHENTICATIONFAILED] Authentication failed.",
            ),
            (
                r#"code: Some(Alert), info: Some("Account \"me\" is locked\tnow")"#,
                "[ALERT] Account \"me\" is locked?now",
            ),
            (r#"code: Some(Unavailable), info: None"#, "[UNAVAILABLE]"),
            (r#"code: None, info: None"#, ""),
            ("plain words", "plain words"),
            ("bell\x07", "bell?"),
        ];
        for (raw, shown) in cases {
            assert_eq!(server_text(raw), shown, "{raw}");
        }
    }

    #[test]
    fn uid_sets_join_ranges() {
        assert_eq!(
            uid_set([5, 1, 2, 3, 8, 10, 11, 12, 3].into_iter()),
            "1:3,5,8,10:12"
        );
        assert_eq!(uid_set([7].into_iter()), "7");
        assert_eq!(uid_set(std::iter::empty()), "");
    }

    #[test]
    fn folder_names_are_modified_utf7() {
        assert_eq!(encode_folder("INBOX"), "INBOX");
        assert_eq!(encode_folder("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(encode_folder("A&B"), "A&-B");
    }
}
