//! Fetching from a POP3 server: the driver that pumps the sans-IO
//! [`crate::proto::pop3::Client`] over a [`Guarded`] connection, and the run:
//! log in, list, fetch in pipelined batches, deliver and record, delete.
//!
//! - TLS: implicit (995), or STLS (RFC 2595) which must be offered; the
//!   capabilities are asked again after it (RFC 2595 4).
//! - Login: `auth: auto` takes SASL PLAIN (RFC 5034) when offered, APOP on
//!   a connection without TLS when the greeting offers it, else USER/PASS;
//!   a token logs in with OAUTHBEARER when offered, else XOAUTH2.
//! - Messages are known by UIDL; a server without UIDL is refused rather
//!   than risk fetching everything again on every run.
//! - RETR and DELE are pipelined when the server says PIPELINING
//!   (RFC 2449 6.6), one batch at a time.
//! - Every exchange has a byte budget: the greeting and CAPA 64 KiB, the
//!   listings a line's worth per message (STAT counted them), a batch of
//!   messages about twice the sizes LIST gave, plus room for one message
//!   of `max_size` (a server may count a message smaller than it is).
//! - A message bigger than LIST said is fetched when it fits `max_size`;
//!   one bigger than that is reported, remembered as too big and skipped
//!   from then on. When the connection breaks in the middle of a batch,
//!   what was completely received is delivered and recorded first.

use std::collections::{HashMap, HashSet};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::flow::{self, Fetched, Flow};
use super::login::{self, Login};
use super::state::{Entry, Key, State};
use super::{Context, FetchError, Report, Skipped};
use crate::auth::Secret;
use crate::config::fetch::{AuthMethod, TlsMode};
use crate::net::{self, Guard, Guarded, Stream};
use crate::proto::pop3::{Capabilities, Client, Command, Event, Kind, MAX_LISTING};

/// Budget for a status exchange (greeting, CAPA, login, QUIT).
const SMALL: u64 = 64 * 1024;
/// Budget per message for a listing line.
const PER_LISTING_LINE: u64 = 128;
/// Read size.
const CHUNK: usize = 64 * 1024;

/// A POP3 connection: the session and the stream it runs over.
struct Conn {
    stream: Option<Guarded<Stream>>,
    guard: Guard,
    client: Client,
    buf: Vec<u8>,
    server: String,
    /// The greeting's APOP timestamp.
    timestamp: Option<String>,
    client_capabilities: Capabilities,
}

impl Conn {
    fn stream(&mut self) -> &mut Guarded<Stream> {
        self.stream
            .as_mut()
            .expect("the stream is only away during a TLS upgrade")
    }

    fn pop3_err(&self) -> impl Fn(crate::proto::pop3::Pop3Error) -> FetchError + '_ {
        move |source| FetchError::Pop3 {
            server: self.server.clone(),
            source,
        }
    }

    async fn flush(&mut self) -> Result<(), FetchError> {
        if self.client.has_output() {
            let out = self.client.take_output();
            let server = self.server.clone();
            let stream = self.stream();
            stream
                .write_all(&out)
                .await
                .map_err(FetchError::io(&server))?;
            stream.flush().await.map_err(FetchError::io(&server))?;
        }
        Ok(())
    }

    fn send(&mut self, command: Command) -> Result<(), FetchError> {
        let server = self.server.clone();
        self.client
            .send(command)
            .map_err(|source| FetchError::Pop3 { server, source })
    }

    /// The next event, reading as needed (and sending what is queued first).
    async fn event(&mut self) -> Result<Event, FetchError> {
        loop {
            if let Some(event) = self.client.next_event().map_err(self.pop3_err())? {
                return Ok(event);
            }
            self.flush().await?;
            let server = self.server.clone();
            let mut buf = std::mem::take(&mut self.buf);
            let n = self
                .stream()
                .read(&mut buf)
                .await
                .map_err(FetchError::io(&server));
            self.buf = buf;
            let n = n?;
            if n == 0 {
                return Err(FetchError::Closed { server });
            }
            self.client.feed(&self.buf[..n]);
        }
    }

    async fn command(&mut self, command: Command) -> Result<Event, FetchError> {
        self.send(command)?;
        self.event().await
    }

    /// CAPA; a server without it (RFC 1939 only) has no capabilities.
    async fn capabilities(&mut self) -> Result<Capabilities, FetchError> {
        self.guard.set_budget(SMALL);
        match self.command(Command::Capa).await? {
            Event::Capabilities(c) => Ok(c),
            Event::Err { .. } => Ok(Capabilities::default()),
            other => Err(self.unexpected("CAPA", other)),
        }
    }

    fn unexpected(&self, command: &str, event: Event) -> FetchError {
        FetchError::Refused {
            server: self.server.clone(),
            command: command.to_owned(),
            text: format!("unexpected reply {event:?}"),
            temporary: true,
        }
    }
}

/// Runs the account: one pass, or with `--idle` a pass every
/// [`super::POP3_POLL`] until a permanent error.
pub async fn run(cx: &Context<'_>, state: &mut State, report: Report) -> Report {
    if !cx.options.idle {
        return pass(cx, state, report).await;
    }
    let mut report = report;
    let mut failures = 0u32;
    loop {
        let r = pass(cx, state, Report::new(&report.account)).await;
        let permanent = r.error.as_ref().is_some_and(|e| !e.is_temporary());
        failures = if r.error.is_some() { failures + 1 } else { 0 };
        cx.observer.pass_done(&r);
        if permanent {
            report.error = r.error;
            return report;
        }
        tokio::time::sleep(super::POP3_POLL * failures.clamp(1, 4)).await;
    }
}

/// One connection: log in, fetch what is new, delete what was fetched.
pub async fn pass(cx: &Context<'_>, state: &mut State, mut report: Report) -> Report {
    match session(cx, state, &mut report).await {
        Ok(()) => {}
        Err(e) => report.error = Some(e),
    }
    report
}

async fn session(
    cx: &Context<'_>,
    state: &mut State,
    report: &mut Report,
) -> Result<(), FetchError> {
    let secret = login::obtain(cx.account).await?;
    let mut conn = connect(cx).await?;
    log_in(cx, &mut conn, &secret).await?;

    // STAT first: it bounds what the listings may take.
    conn.guard.set_budget(SMALL);
    let count = match conn.command(Command::Stat).await? {
        Event::Stat { count, .. } => count as u64,
        other => return Err(conn.unexpected("STAT", other)),
    };
    if count > MAX_LISTING as u64 {
        return Err(FetchError::Refused {
            server: conn.server.clone(),
            command: "STAT".into(),
            text: format!("{count} messages, more than the {MAX_LISTING} we list"),
            temporary: false,
        });
    }
    conn.guard
        .set_budget(SMALL + 2 * PER_LISTING_LINE * (count + 16));
    // RFC 2449 6.6: only a server that says PIPELINING gets commands
    // before the replies to the ones before.
    let pipelining = conn.client_capabilities.has("PIPELINING");
    conn.send(Command::Uidl)?;
    if pipelining {
        conn.send(Command::List)?;
    }
    let uids = match conn.event().await? {
        Event::UidListing(u) => u,
        Event::Err { .. } => {
            return Err(FetchError::NoUidl {
                server: conn.server.clone(),
            });
        }
        other => return Err(conn.unexpected("UIDL", other)),
    };
    if !pipelining {
        conn.send(Command::List)?;
    }
    let sizes: HashMap<u32, u64> = match conn.event().await? {
        Event::Listing(l) => l.into_iter().collect(),
        Event::Err { reply, .. } => {
            return Err(FetchError::Refused {
                server: conn.server.clone(),
                command: "LIST".into(),
                text: reply.to_string(),
                temporary: true,
            });
        }
        other => return Err(conn.unexpected("LIST", other)),
    };

    // What is new, what is too big, what was fetched before and may go.
    let keep = cx.keep();
    let max_size = cx.account.max_size;
    let mut wanted = Vec::new();
    let mut old = Vec::new();
    let mut seen = HashSet::new();
    let mut on_server = HashSet::new();
    for (number, uid) in &uids {
        let key = Key::pop3(uid);
        on_server.insert(key.clone());
        if !seen.insert(uid.clone()) {
            // RFC 1939 7: unique ids are unique; a server that repeats one
            // cannot tell us which message is which.
            tracing::warn!(server = %conn.server, uid, "the server lists a unique id twice; skipping the second");
            continue;
        }
        let Some(&size) = sizes.get(number) else {
            tracing::warn!(server = %conn.server, number, "UIDL lists a message LIST does not; skipping it");
            continue;
        };
        // A message found bigger than LIST said is as big as it was found.
        let size = size.max(state.reported_size(&key).unwrap_or(0));
        let entry = Entry {
            size,
            message_id: None,
        };
        if state.is_fetched(&key) && !cx.options.all {
            old.push(*number);
            continue;
        }
        if size > max_size {
            report.too_big_total += 1;
            if !state.is_reported(&key) {
                report.too_big.push(Skipped {
                    message: format!("message {number} (UIDL {uid})"),
                    size,
                });
                state.record_reported(key, entry);
            }
            continue;
        }
        wanted.push((*number, uid.clone(), entry));
    }
    cx.observer
        .found(wanted.len() as u64, wanted.iter().map(|w| w.2.size).sum());

    let mut flow = Flow::new(cx.sink, state, cx.observer, cx.account.delete_rejected);
    let mut dele_ok = 0u64;
    // Fetched on an earlier run whose QUIT never came (or with keep: true
    // then): recorded, so safe to delete now.
    if !keep && !old.is_empty() {
        conn.guard.set_budget(SMALL + 64 * old.len() as u64);
        dele(&mut conn, &old, pipelining, &mut dele_ok).await?;
    }

    let mut stop: Option<FetchError> = None;
    // The connection cannot go on (it broke, or a message overran its
    // bound mid-stream): what was received is still delivered and recorded.
    let mut broken: Option<FetchError> = None;
    let numbers_by_uid: HashMap<String, u32> = uids.iter().map(|(n, u)| (u.clone(), *n)).collect();
    for batch in flow::batches(wanted, |w| w.2.size) {
        // What the server may send for this batch: the messages, with
        // room for dot-stuffing and status lines, one message of max_size
        // more than announced, and the DELE replies.
        let budget: u64 = batch
            .iter()
            .map(|w| retr_max(w.2.size, max_size))
            .sum::<u64>()
            + retr_cap(max_size)
            + SMALL * 2;
        conn.guard.set_budget(budget);
        let mut expected: HashMap<u32, (String, Entry)> = HashMap::new();
        if pipelining {
            for (number, uid, entry) in &batch {
                conn.send(Command::Retr {
                    number: *number,
                    max: retr_cap(max_size),
                })?;
                expected.insert(*number, (uid.clone(), entry.clone()));
            }
        }
        let mut queue = batch.into_iter();
        loop {
            if !pipelining && conn.client.pending() == 0 {
                if stop.is_some() {
                    break;
                }
                match queue.next() {
                    Some((number, uid, entry)) => {
                        conn.send(Command::Retr {
                            number,
                            max: retr_cap(max_size),
                        })?;
                        expected.insert(number, (uid, entry));
                    }
                    None => break,
                }
            }
            if conn.client.pending() == 0 {
                break;
            }
            let event = match conn.event().await {
                Ok(event) => event,
                Err(e) => {
                    if let FetchError::Pop3 {
                        source: crate::proto::pop3::Pop3Error::MessageTooBig { number, max },
                        ..
                    } = &e
                        && let Some((uid, entry)) = expected.get(number)
                    {
                        too_big_found(report, flow.state_mut(), *number, uid, entry, *max);
                    }
                    broken = Some(e);
                    break;
                }
            };
            match event {
                Event::Message { number, data } => {
                    let Some((uid, entry)) = expected.remove(&number) else {
                        continue;
                    };
                    if stop.is_some() {
                        // A temporary failure stopped delivery; the
                        // pipelined rest is read and left on the server.
                        conn.client.recycle(data);
                        continue;
                    }
                    let got = data.len() as u64;
                    if got > max_size && got > retr_max(entry.size, u64::MAX) {
                        // Far bigger than LIST said, and over max_size.
                        too_big_found(report, flow.state_mut(), number, &uid, &entry, got);
                        conn.client.recycle(data);
                        continue;
                    }
                    let message = Fetched {
                        key: Key::pop3(&uid),
                        entry,
                        label: format!("message {number} (UIDL {uid})"),
                        data,
                    };
                    if let Err(e) = flow.take(message, report).await {
                        stop = Some(e);
                    }
                }
                Event::Ok {
                    kind: Kind::Dele(_),
                    ..
                } => dele_ok += 1,
                Event::Err {
                    kind: Kind::Retr(number),
                    reply,
                } => {
                    // Gone since the listing (another session deleted it).
                    expected.remove(&number);
                    tracing::warn!(server = %conn.server, number, "RETR failed: {reply}");
                }
                Event::Err {
                    kind: Kind::Dele(number),
                    reply,
                } => {
                    tracing::warn!(server = %conn.server, number, "DELE failed: {reply}");
                }
                other => {
                    broken = Some(conn.unexpected("RETR", other));
                    break;
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
            // No DELE or QUIT on this connection: what was recorded now is
            // deleted on the next run (it is fetched already).
            flow.finish()?;
            return Err(stop.unwrap_or(e));
        }
        if !keep && !safe.is_empty() {
            let numbers: Vec<u32> = safe
                .iter()
                .filter_map(|k| numbers_by_uid.get(&k.uid).copied())
                .collect();
            if pipelining {
                // Replies are read with the next batch's messages.
                for n in &numbers {
                    conn.send(Command::Dele(*n))?;
                }
            } else {
                dele(&mut conn, &numbers, false, &mut dele_ok).await?;
            }
        }
        if stop.is_some() {
            break;
        }
    }
    // The DELE replies still in flight.
    conn.guard
        .set_budget(SMALL + 64 * conn.client.pending() as u64);
    while conn.client.pending() > 0 {
        match conn.event().await? {
            Event::Ok {
                kind: Kind::Dele(_),
                ..
            } => dele_ok += 1,
            Event::Err {
                kind: Kind::Dele(number),
                reply,
            } => tracing::warn!(server = %conn.server, number, "DELE failed: {reply}"),
            Event::Message { .. } | Event::Err { .. } => {}
            other => return Err(conn.unexpected("DELE", other)),
        }
    }

    // Everything recorded is durable before QUIT makes the deletions real.
    flow.finish()?;
    conn.guard.set_budget(SMALL);
    match conn.command(Command::Quit).await {
        Ok(Event::Closed { .. }) => report.deleted += dele_ok,
        Ok(Event::Err { reply, .. }) => {
            // RFC 1939 6: the deletions did not happen; they will be
            // tried again on the next run.
            stop.get_or_insert(FetchError::Refused {
                server: conn.server.clone(),
                command: "QUIT".into(),
                text: format!("{reply} (messages marked for deletion stay on the server)"),
                temporary: true,
            });
        }
        Ok(other) => return Err(conn.unexpected("QUIT", other)),
        Err(e) => {
            stop.get_or_insert(e);
        }
    }

    // Forget what is no longer on the server. Not on an empty listing: a
    // server that shows an empty maildrop for a moment (some do, under
    // maintenance) must not make us forget, then fetch everything again.
    let state = flow.state_mut();
    let gone = state
        .fetched()
        .filter(|(k, _)| !on_server.contains(k))
        .count();
    if !on_server.is_empty() && (gone > 0 || state.wants_compaction()) {
        state.compact(|k| on_server.contains(k))?;
    }
    match stop {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A message found bigger than LIST said and than `max_size` allows: said
/// once, and remembered as at least `size`, so that later runs skip it
/// (until max_size is raised) instead of failing on it every time.
fn too_big_found(
    report: &mut Report,
    state: &mut State,
    number: u32,
    uid: &str,
    entry: &Entry,
    size: u64,
) {
    let key = Key::pop3(uid);
    if !state.is_reported(&key) {
        report.notes.push(format!(
            "message {number} (UIDL {uid}) is bigger than the {} bytes LIST said, more than \
             max_size allows: left on the server (raise max_size to fetch it)",
            entry.size
        ));
    }
    report.too_big_total += 1;
    let entry = Entry {
        size,
        message_id: None,
    };
    state.record_reported(key, entry);
}

/// The bytes a message should take on the wire: what LIST said, with
/// room for a server that counts LF line ends (CRLF doubles them at worst)
/// and for dot-stuffing, never more than [`retr_cap`]. Budgets batches.
fn retr_max(size: u64, max_size: u64) -> u64 {
    size.saturating_mul(2)
        .saturating_add(1024)
        .min(retr_cap(max_size))
}

/// The most one message may take, whatever LIST said: `max_size` with the
/// same room. A message LIST counted smaller than it is still comes in
/// when it fits.
fn retr_cap(max_size: u64) -> u64 {
    max_size.saturating_mul(2).saturating_add(1024)
}

async fn dele(
    conn: &mut Conn,
    numbers: &[u32],
    pipelining: bool,
    ok: &mut u64,
) -> Result<(), FetchError> {
    for chunk in numbers.chunks(if pipelining { 256 } else { 1 }) {
        for n in chunk {
            conn.send(Command::Dele(*n))?;
        }
        for _ in chunk {
            match conn.event().await? {
                Event::Ok { .. } => *ok += 1,
                Event::Err { kind, reply } => {
                    tracing::warn!(server = %conn.server, "{kind} failed: {reply}")
                }
                other => return Err(conn.unexpected("DELE", other)),
            }
        }
    }
    Ok(())
}

/// Connects, reads the greeting, asks CAPA, starts TLS if it must.
async fn connect(cx: &Context<'_>) -> Result<Conn, FetchError> {
    let account = cx.account;
    let tls = cx.tls();
    let implicit = (account.tls == TlsMode::Tls)
        .then_some(tls.as_ref())
        .flatten();
    let stream = net::connect(&account.host, account.port, implicit).await?;
    let guard = Guard::default();
    let mut conn = Conn {
        stream: Some(Guarded::new(stream, guard.clone())),
        guard,
        client: Client::new(),
        buf: vec![0; CHUNK],
        server: cx.server(),
        timestamp: None,
        client_capabilities: Capabilities::default(),
    };
    conn.guard.set_budget(SMALL);
    match conn.event().await? {
        Event::Greeting { apop_timestamp, .. } => conn.timestamp = apop_timestamp,
        other => return Err(conn.unexpected("the greeting", other)),
    }
    let mut caps = conn.capabilities().await?;
    if account.tls == TlsMode::Starttls {
        // RFC 2595 4: offered in CAPA; a server without CAPA may still
        // take it, and says -ERR if not.
        if !caps.lines.is_empty() && !caps.has("STLS") {
            return Err(FetchError::NoStartTls {
                server: conn.server.clone(),
                command: "STLS",
            });
        }
        conn.guard.set_budget(SMALL);
        match conn.command(Command::Stls).await? {
            Event::StartTls => {}
            Event::Err { .. } => {
                return Err(FetchError::NoStartTls {
                    server: conn.server.clone(),
                    command: "STLS",
                });
            }
            other => return Err(conn.unexpected("STLS", other)),
        }
        // Anything the server sent after its +OK, before TLS, is refused
        // by the session (an injection attempt).
        conn.client.next_event().map_err(conn.pop3_err())?;
        let settings = tls.expect("starttls has settings");
        let plain = conn.stream.take().expect("stream").into_inner();
        let secure = plain
            .start_tls(&settings)
            .await
            .map_err(|e| FetchError::Net(e.into()))?;
        conn.stream = Some(Guarded::new(secure, conn.guard.clone()));
        conn.client.tls_started();
        caps = conn.capabilities().await?;
    }
    conn.client_capabilities = caps;
    Ok(conn)
}

/// Logs in with the method the account asks for, or the best offered.
async fn log_in(cx: &Context<'_>, conn: &mut Conn, login: &Login) -> Result<(), FetchError> {
    let account = cx.account;
    let user = account.username.as_str();
    let caps = conn.client_capabilities.clone();
    let sasl = caps.sasl();
    let encrypted = conn.stream.as_ref().is_some_and(|s| s.get_ref().is_tls());
    let method = match (account.auth, login) {
        (AuthMethod::Auto, Login::Password(_)) => {
            if sasl.iter().any(|m| m == "PLAIN") {
                AuthMethod::Plain
            } else if !encrypted && conn.timestamp.is_some() {
                AuthMethod::Apop
            } else {
                AuthMethod::User
            }
        }
        (AuthMethod::Auto, Login::Token(_)) => {
            if sasl.iter().any(|m| m == "OAUTHBEARER") {
                AuthMethod::Oauthbearer
            } else {
                AuthMethod::Xoauth2
            }
        }
        (m, _) => m,
    };
    let refused =
        |conn: &Conn, method: &str, text: String, temporary: bool| FetchError::LoginRefused {
            server: conn.server.clone(),
            user: user.to_owned(),
            method: method.to_owned(),
            text,
            hint: if temporary {
                String::new()
            } else {
                cx.credential_hint()
            },
            temporary,
        };
    conn.guard.set_budget(SMALL);
    match (method, login) {
        (AuthMethod::User, Login::Password(password)) => {
            // One at a time: USER and PASS are not to be pipelined.
            for command in [
                Command::User(user.to_owned()),
                Command::Pass(Secret::new(password.expose().to_owned())),
            ] {
                match conn.command(command).await? {
                    Event::Ok {
                        kind: Kind::User, ..
                    } => {}
                    Event::Ok {
                        kind: Kind::Pass, ..
                    } => return Ok(()),
                    Event::Err { reply, .. } => {
                        let temporary = reply.is_temporary();
                        return Err(refused(conn, "USER/PASS", reply.to_string(), temporary));
                    }
                    other => return Err(conn.unexpected("PASS", other)),
                }
            }
            Err(conn.unexpected(
                "PASS",
                Event::Closed {
                    text: String::new(),
                },
            ))
        }
        (AuthMethod::Apop, Login::Password(password)) => {
            let Some(timestamp) = conn.timestamp.clone() else {
                return Err(FetchError::NoMechanism {
                    server: conn.server.clone(),
                    wanted: "APOP".into(),
                    offered: "no APOP timestamp in its greeting".into(),
                });
            };
            let digest = login::apop_digest(&timestamp, password);
            match conn
                .command(Command::Apop {
                    user: user.to_owned(),
                    digest,
                })
                .await?
            {
                Event::Ok { .. } => Ok(()),
                Event::Err { reply, .. } => {
                    let temporary = reply.is_temporary();
                    Err(refused(conn, "APOP", reply.to_string(), temporary))
                }
                other => Err(conn.unexpected("APOP", other)),
            }
        }
        (AuthMethod::Plain | AuthMethod::Xoauth2 | AuthMethod::Oauthbearer, _) => {
            let (name, payload) = match (method, login) {
                (AuthMethod::Plain, Login::Password(p)) => ("PLAIN", login::sasl_plain(user, p)),
                (AuthMethod::Xoauth2, Login::Token(t)) => ("XOAUTH2", login::sasl_xoauth2(user, t)),
                (AuthMethod::Oauthbearer, Login::Token(t)) => (
                    "OAUTHBEARER",
                    login::sasl_oauthbearer(user, &account.host, account.port, t),
                ),
                _ => unreachable!("the configuration pairs methods and credentials"),
            };
            if !caps.lines.is_empty() && !sasl.iter().any(|m| m == name) {
                return Err(FetchError::NoMechanism {
                    server: conn.server.clone(),
                    wanted: format!("SASL {name}"),
                    offered: offered(&caps, conn.timestamp.is_some()),
                });
            }
            conn.send(Command::Auth {
                mechanism: name.to_owned(),
                initial: Some(payload),
            })?;
            // An error challenge (XOAUTH2 sends its JSON so) is answered
            // with an empty line; then comes -ERR.
            for _ in 0..4 {
                match conn.event().await? {
                    Event::Ok { .. } => return Ok(()),
                    Event::Err { reply, .. } => {
                        let temporary = reply.is_temporary();
                        return Err(refused(
                            conn,
                            &format!("SASL {name}"),
                            reply.to_string(),
                            temporary,
                        ));
                    }
                    Event::Challenge(c) => {
                        tracing::debug!(challenge = %String::from_utf8_lossy(&c), "SASL challenge");
                        conn.send(Command::AuthResponse(Secret::new(String::new())))?;
                    }
                    other => return Err(conn.unexpected("AUTH", other)),
                }
            }
            Err(refused(
                conn,
                &format!("SASL {name}"),
                "too many challenges".into(),
                false,
            ))
        }
        (m, _) => Err(FetchError::NoMechanism {
            server: conn.server.clone(),
            wanted: format!("{m:?}"),
            offered: offered(&caps, conn.timestamp.is_some()),
        }),
    }
}

fn offered(caps: &Capabilities, apop: bool) -> String {
    let mut list = Vec::new();
    if caps.lines.is_empty() || caps.has("USER") {
        list.push("USER/PASS".to_owned());
    }
    if apop {
        list.push("APOP".to_owned());
    }
    list.extend(caps.sasl().into_iter().map(|m| format!("SASL {m}")));
    list.join(", ")
}
