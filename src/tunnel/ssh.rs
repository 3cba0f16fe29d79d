//! `tunnel ssh`: the system's OpenSSH client, run and watched the way
//! autossh does it. We never speak SSH ourselves: the user's keys, agent,
//! `~/.ssh/config` and known_hosts are OpenSSH's business.
//!
//! The loop: start `ssh -N -L ...`; poll the forwards until the link
//! answers (see [`link_answers`]: a forward's SMTP `220` or IMAP `* OK`
//! greeting read through it); then check them every `check_interval`. ssh
//! is started again when it exits, or when the link fails two checks in a
//! row (a frozen connection that ssh's own keepalives have not noticed
//! yet). While one forward answers, the link is fine: a forward whose
//! server is down is reported (once, and once when it is back), and ssh,
//! with the connections of the other forwards, is left alone (autossh too
//! restarts only when its link monitor fails). Restarts back off from 1 s
//! to 60 s, and the delay starts again at 1 s after a run of a minute or
//! more.
//!
//! ssh's own words (its standard error) are kept, the last
//! [`MAX_WORDS`] lines, and shown when it exits. A failure that trying
//! again cannot cure (host key unknown or changed, authentication refused,
//! a bad option, the local port taken) ends the supervision with those
//! words; anything else (network down, server unreachable) is retried.
//!
//! Never: leave ssh running after we stop, or start two at once.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use super::TunnelError;
use super::forward::{Forward, Service};

/// The first restart delay, and the delay after a good run.
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// The longest restart delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A run at least this long resets the delay to [`MIN_BACKOFF`].
pub const GOOD_RUN: Duration = Duration::from_secs(60);
/// How long ssh may take to bring its forwards up before it is restarted.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the forwards are polled while ssh starts.
const START_POLL: Duration = Duration::from_millis(200);
/// How long ssh has to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Lines of ssh's standard error kept for the error message.
pub const MAX_WORDS: usize = 20;
/// The longest line of ssh's standard error kept (longer ones are cut).
pub const MAX_WORD_LINE: usize = 1000;

/// What to run and how to watch it.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// `[USER@]HOST`, or a `Host` alias from `~/.ssh/config`.
    pub destination: String,
    pub forwards: Vec<Forward>,
    /// `-o` options for ssh, given before ours so that they win (ssh takes
    /// the first value it sees).
    pub ssh_options: Vec<String>,
    /// The ssh program (looked up on `PATH`).
    pub program: OsString,
    pub check_interval: Duration,
    pub check_timeout: Duration,
}

impl SshOptions {
    pub fn new(destination: &str, forwards: Vec<Forward>) -> SshOptions {
        SshOptions {
            destination: destination.to_owned(),
            forwards,
            ssh_options: Vec::new(),
            program: "ssh".into(),
            check_interval: Duration::from_secs(30),
            check_timeout: Duration::from_secs(10),
        }
    }

    /// Refuses what ssh would misread: a destination that looks like an
    /// option, an option with a line break, no forward at all.
    pub fn validate(&self) -> Result<(), TunnelError> {
        let d = &self.destination;
        if d.is_empty() || d.starts_with('-') || d.contains(char::is_whitespace) {
            return Err(TunnelError::Usage(format!(
                "{d:?} is not an ssh destination ([USER@]HOST)"
            )));
        }
        if let Some(o) = self
            .ssh_options
            .iter()
            .find(|o| o.is_empty() || o.contains(['\n', '\r']))
        {
            return Err(TunnelError::Usage(format!(
                "--ssh-option {o:?} is empty or has a line break"
            )));
        }
        if self.forwards.is_empty() {
            return Err(TunnelError::Usage("there is nothing to forward".into()));
        }
        for (i, a) in self.forwards.iter().enumerate() {
            if let Some(b) = self.forwards[..i].iter().find(|b| b.local == a.local) {
                return Err(TunnelError::Usage(format!(
                    "{a} and {b} both want {}",
                    a.local
                )));
            }
        }
        Ok(())
    }

    /// ssh's arguments (without the program name).
    pub fn ssh_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        for o in &self.ssh_options {
            args.push("-o".into());
            args.push(o.into());
        }
        for o in [
            // Exit rather than run without a forward we asked for.
            "ExitOnForwardFailure=yes",
            // Notice a dead connection within 45 s even between checks.
            "ServerAliveInterval=15",
            "ServerAliveCountMax=3",
            "ConnectTimeout=15",
            // Never wait for a password or a host key question nobody sees.
            "BatchMode=yes",
            // Our own connection, whose life we control: not riding a
            // ControlMaster that may go away, nor becoming one.
            "ControlMaster=no",
            "ControlPath=none",
        ] {
            args.push("-o".into());
            args.push(o.into());
        }
        args.push("-N".into());
        args.push("-T".into());
        for f in &self.forwards {
            args.push("-L".into());
            args.push(f.ssh_spec().into());
        }
        args.push("--".into());
        args.push(self.destination.clone().into());
        args
    }
}

impl SshOptions {
    /// The ssh command for the user to run at a terminal, to see and accept
    /// the host key or try the login: the user's `--ssh-option` values (the
    /// port, key and known_hosts of the tunnel's ssh: without them it would
    /// check another known_hosts, or reach another server), shell-quoted.
    /// Where those forbid the questions it is run for (BatchMode,
    /// StrictHostKeyChecking), an option before them lets ssh ask: ssh takes
    /// the first value it sees.
    pub fn terminal_command(&self) -> String {
        let sets = |key: &str| {
            self.ssh_options
                .iter()
                .any(|o| option_key(o).eq_ignore_ascii_case(key))
        };
        let mut words = vec!["ssh".to_owned()];
        for (key, ask) in [
            ("BatchMode", "BatchMode=no"),
            ("StrictHostKeyChecking", "StrictHostKeyChecking=ask"),
        ] {
            if sets(key) {
                words.extend(["-o".to_owned(), ask.to_owned()]);
            }
        }
        for o in &self.ssh_options {
            words.extend(["-o".to_owned(), shell_quote(o)]);
        }
        words.push(shell_quote(&self.destination));
        words.join(" ")
    }
}

impl SshOptions {
    /// The `ssh-keygen -R` command that removes the server's key from the
    /// known_hosts the tunnel's ssh reads: the `UserKnownHostsFile` of
    /// `--ssh-option` (its first file), else ssh's default. The host is
    /// the name ssh looked up, from its `words` ("Host key for HOST has
    /// changed"); without them, `HostKeyAlias`, or the destination's host
    /// with a `Port` other than 22 as `[host]:port`.
    pub fn forget_host_key_command(&self, words: &[String]) -> String {
        // ssh takes the first value it is given.
        let option = |key: &str| {
            self.ssh_options
                .iter()
                .find(|o| option_key(o).eq_ignore_ascii_case(key))
                .map(|o| option_value(o))
        };
        let host = changed_host(words).map(str::to_owned).unwrap_or_else(|| {
            if let Some(alias) = option("HostKeyAlias") {
                return alias.to_owned();
            }
            let host = self
                .destination
                .rsplit_once('@')
                .map_or(self.destination.as_str(), |(_, h)| h);
            match option("Port") {
                Some(port) if port != "22" => format!("[{host}]:{port}"),
                _ => host.to_owned(),
            }
        });
        let mut words = vec!["ssh-keygen".to_owned()];
        if let Some(file) = option("UserKnownHostsFile").and_then(|v| v.split_whitespace().next()) {
            // ssh expands a leading ~; so does the shell, unquoted.
            let file = match file.strip_prefix("~/") {
                Some(rest) => format!("~/{}", shell_quote(rest)),
                None => shell_quote(file),
            };
            words.extend(["-f".to_owned(), file]);
        }
        words.extend(["-R".to_owned(), shell_quote(&host)]);
        words.join(" ")
    }
}

/// The host ssh names in "Host key for HOST has changed and you have
/// requested strict checking." (OpenSSH's sshconnect.c).
fn changed_host(words: &[String]) -> Option<&str> {
    words.iter().find_map(|w| {
        w.trim()
            .strip_prefix("Host key for ")?
            .split_once(" has changed")
            .map(|(host, _)| host)
            .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace))
    })
}

/// The value of an ssh option (`Port=22`, `Port 22`, ` port = 22`: `22`).
fn option_value(option: &str) -> &str {
    let o = option.trim_start();
    let rest = &o[option_key(o).len()..];
    let rest = rest.trim_start();
    rest.strip_prefix('=').unwrap_or(rest).trim()
}

/// The keyword of an ssh option (`Port=22`, `Port 22`, ` port = 22`).
fn option_key(option: &str) -> &str {
    let o = option.trim_start();
    o.split(|c: char| c == '=' || c.is_whitespace())
        .next()
        .unwrap_or(o)
}

/// `word` as a POSIX shell reads it back: as it is when it holds nothing
/// the shell treats specially, else in single quotes (a single quote
/// itself written `'\''`).
pub fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The restart delay: doubles from [`MIN_BACKOFF`] to [`MAX_BACKOFF`], and
/// starts again after a run of [`GOOD_RUN`].
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: MIN_BACKOFF }
    }
}

impl Backoff {
    /// The delay before the next start, after a run that lasted `ran`.
    pub fn delay(&mut self, ran: Duration) -> Duration {
        if ran >= GOOD_RUN {
            self.next = MIN_BACKOFF;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        delay
    }
}

/// What happens, for the caller to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// ssh was started (its process id).
    Started { pid: u32 },
    /// The link answered: the tunnel is usable (a forward that did not
    /// answer follows as [`Event::ForwardDown`]).
    Up { after: Duration },
    /// A forward does not answer while another does: its server is down,
    /// not the link, so ssh keeps running. Said once, until it is back.
    /// `words`: what ssh said meanwhile.
    ForwardDown {
        forward: String,
        reason: String,
        words: Vec<String>,
    },
    /// A forward reported down answers again.
    ForwardBack { forward: String },
    /// ssh exited on its own; `words` is the end of its standard error.
    Exited { status: String, words: Vec<String> },
    /// The link failed two checks in a row (no forward answered, or the
    /// only one); ssh is stopped and restarted. `forward`: the first that
    /// failed.
    /// `words`: what ssh said meanwhile (e.g. "open failed: connect
    /// failed: Connection refused" when the mail server is down).
    Unhealthy {
        forward: String,
        reason: String,
        words: Vec<String>,
    },
    /// The forwards did not come up in [`START_TIMEOUT`]; what ssh said.
    StartTimedOut { words: Vec<String> },
    /// The next start, after this delay.
    Restarting { delay: Duration },
    /// ssh was stopped because we were asked to stop.
    Stopped,
}

/// Why ssh failed in a way that trying again will not cure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permanent {
    /// The server's host key is not in known_hosts (ssh would ask at a
    /// terminal).
    HostKey,
    /// known_hosts holds another key for the server: ssh refuses, and
    /// does not ask, until the old key is removed.
    HostKeyChanged,
    Auth,
    BadOption,
    PortInUse,
}

impl Permanent {
    /// Recognises a permanent failure in ssh's words (OpenSSH 9's wording).
    pub fn classify(words: &[String]) -> Option<Permanent> {
        let has = |needle: &str| words.iter().any(|w| w.contains(needle));
        // Before the unknown key: ssh ends both with "Host key verification
        // failed".
        if has("REMOTE HOST IDENTIFICATION HAS CHANGED") || changed_host(words).is_some() {
            Some(Permanent::HostKeyChanged)
        } else if has("Host key verification failed") || has("host key is known for") {
            Some(Permanent::HostKey)
        } else if has("Permission denied (") || has("Too many authentication failures") {
            Some(Permanent::Auth)
        } else if has("Bad configuration option")
            || has("command-line line")
            || has("command-line: line")
            || has("Unsupported option")
            || has("usage: ssh")
            || has("Bad local forwarding specification")
        {
            Some(Permanent::BadOption)
        } else if has("Address already in use")
            || has("Could not request local forwarding")
            || has("cannot listen to port")
        {
            Some(Permanent::PortInUse)
        } else {
            None
        }
    }

    /// What to do about it, for the tunnel `opts` (whose ssh command the
    /// hint names) after ssh said `words`.
    pub fn hint(self, opts: &SshOptions, words: &[String]) -> String {
        match self {
            Permanent::HostKey => format!(
                "ssh does not know the server's host key: check it and \
                 accept it once by running `{}` at a terminal",
                opts.terminal_command()
            ),
            Permanent::HostKeyChanged => format!(
                "the server's host key has changed since ssh last saw it (a new server, or \
                 someone in between): ssh refuses to connect and will not ask. Check the new \
                 key with the server's administrator; if it is right, remove the old one with \
                 `{}`, then accept the new one by running `{}` at a terminal",
                opts.forget_host_key_command(words),
                opts.terminal_command()
            ),
            Permanent::Auth => format!(
                "ssh could not log in: the tunnel runs ssh with BatchMode=yes (no password \
                 prompt), so a key must work: load it with ssh-add or name it with \
                 --ssh-option IdentityFile=PATH, and try `{}` at a terminal",
                opts.terminal_command()
            ),
            Permanent::BadOption => "ssh did not accept its options: check --ssh-option".into(),
            Permanent::PortInUse => {
                "a local port of the tunnel is taken (another tunnel running?): stop it or \
                 choose other ports"
                    .into()
            }
        }
    }
}

/// Runs and watches ssh until `stop` completes (Ok) or ssh fails for good
/// (Err). `on` hears every [`Event`].
pub async fn supervise<F>(
    opts: &SshOptions,
    stop: F,
    mut on: impl FnMut(Event),
) -> Result<(), TunnelError>
where
    F: std::future::Future<Output = ()>,
{
    opts.validate()?;
    check_ports_free(&opts.forwards)?;
    tokio::pin!(stop);
    let mut backoff = Backoff::default();
    loop {
        let mut child = spawn(opts)?;
        let started = Instant::now();
        on(Event::Started {
            pid: child.id().unwrap_or(0),
        });
        let words = Words::default();
        let reader = child
            .stderr
            .take()
            .map(|stderr| tokio::spawn(words.clone().collect(stderr)));
        let outcome = watch(&mut child, opts, &words, &mut stop, &mut on).await;
        match outcome {
            Outcome::Stop => {
                terminate(&mut child, STOP_GRACE).await;
                on(Event::Stopped);
                return Ok(());
            }
            Outcome::Exited(status) => {
                // ssh's standard error ends when it exits, unless a child of
                // its own (a ProxyCommand) holds it open: do not wait long.
                if let Some(reader) = reader {
                    let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
                }
                let words = words.take();
                if let Some(why) = Permanent::classify(&words) {
                    return Err(TunnelError::SshRefused {
                        why,
                        hint: why.hint(opts, &words),
                        words: words.join("\n"),
                    });
                }
                on(Event::Exited {
                    status: describe(status),
                    words,
                });
            }
            Outcome::Unhealthy { forward, reason } => {
                // A hung ssh has nothing to finish: no grace.
                terminate(&mut child, Duration::ZERO).await;
                on(Event::Unhealthy {
                    forward,
                    reason,
                    words: words.take(),
                });
            }
            Outcome::StartTimedOut => {
                terminate(&mut child, Duration::ZERO).await;
                on(Event::StartTimedOut {
                    words: words.take(),
                });
            }
        }
        let delay = backoff.delay(started.elapsed());
        on(Event::Restarting { delay });
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = &mut stop => return Ok(()),
        }
    }
}

enum Outcome {
    Stop,
    Exited(ExitStatus),
    Unhealthy { forward: String, reason: String },
    StartTimedOut,
}

/// Watches one ssh process until it exits, we are asked to stop, or the
/// link fails.
async fn watch<F>(
    child: &mut Child,
    opts: &SshOptions,
    words: &Words,
    stop: &mut std::pin::Pin<&mut F>,
    on: &mut impl FnMut(Event),
) -> Outcome
where
    F: std::future::Future<Output = ()>,
{
    let started = tokio::time::Instant::now();
    let mut up = false;
    let mut failures = 0;
    let mut down = vec![false; opts.forwards.len()];
    let mut next = started + START_POLL;
    loop {
        let check = async {
            tokio::time::sleep_until(next).await;
            check_all(&opts.forwards, opts.check_timeout).await
        };
        tokio::select! {
            status = child.wait() => {
                return match status {
                    Ok(s) => Outcome::Exited(s),
                    // We cannot tell what ssh does: treat it as gone.
                    Err(e) => Outcome::Unhealthy { forward: "ssh".into(), reason: e.to_string() },
                };
            }
            _ = stop.as_mut() => return Outcome::Stop,
            results = check => {
                let now = tokio::time::Instant::now();
                let alive = link_answers(&opts.forwards, &results);
                match (up, alive) {
                    (false, true) => {
                        up = true;
                        on(Event::Up { after: now - started });
                    }
                    (false, false) if now - started >= START_TIMEOUT => return Outcome::StartTimedOut,
                    (false, false) => {
                        next = now + START_POLL;
                        continue;
                    }
                    (true, true) => failures = 0,
                    (true, false) => {
                        failures += 1;
                        if failures >= 2 {
                            let (forward, reason) = first_failure(&opts.forwards, results);
                            return Outcome::Unhealthy { forward, reason };
                        }
                        // One failure may be the server's hiccup: look again soon.
                        next = now + opts.check_interval.min(Duration::from_secs(1));
                        continue;
                    }
                }
                // The link is fine: say which forwards changed.
                for ((f, result), down) in opts.forwards.iter().zip(results).zip(&mut down) {
                    match result {
                        Err(reason) if !*down => {
                            *down = true;
                            on(Event::ForwardDown {
                                forward: f.to_string(),
                                reason,
                                words: words.take(),
                            });
                        }
                        Ok(()) if *down => {
                            *down = false;
                            on(Event::ForwardBack { forward: f.to_string() });
                        }
                        _ => {}
                    }
                }
                next = now + opts.check_interval;
            }
        }
    }
}

/// Checks every forward, all at once; each result in the order of
/// `forwards`, an `Err` saying why it failed.
async fn check_all(forwards: &[Forward], timeout: Duration) -> Vec<Result<(), String>> {
    futures::future::join_all(forwards.iter().map(|f| f.check(timeout))).await
}

/// Whether the checks show the ssh link working. A greeting (SMTP, IMAP)
/// can only have come through the link: one is enough, and the forwards
/// that failed have their server to blame. A forward without a protocol
/// (`--forward`) is answered by ssh's own listener, even when the link is
/// frozen: it proves nothing, unless there is nothing else, in which case
/// every forward must answer. With a single forward, the link and its
/// server cannot be told apart: its failure is the link's.
pub fn link_answers(forwards: &[Forward], results: &[Result<(), String>]) -> bool {
    let greets = |f: &Forward| f.service != Service::Other;
    if forwards.iter().any(greets) {
        forwards
            .iter()
            .zip(results)
            .any(|(f, r)| greets(f) && r.is_ok())
    } else {
        results.iter().all(Result::is_ok)
    }
}

/// The first forward that failed, and why.
fn first_failure(forwards: &[Forward], results: Vec<Result<(), String>>) -> (String, String) {
    forwards
        .iter()
        .zip(results)
        .find_map(|(f, r)| r.err().map(|reason| (f.to_string(), reason)))
        .unwrap_or_else(|| ("link".into(), "no check answered".into()))
}

/// Before the first start: a local port already taken would make ssh exit
/// at once (ExitOnForwardFailure), and the health check might meet another
/// program there. Say so plainly instead.
fn check_ports_free(forwards: &[Forward]) -> Result<(), TunnelError> {
    for f in forwards {
        if let Err(source) = std::net::TcpListener::bind(f.local) {
            return Err(TunnelError::Listen {
                addr: f.local.to_string(),
                source,
            });
        }
    }
    Ok(())
}

fn spawn(opts: &SshOptions) -> Result<Child, TunnelError> {
    let mut cmd = Command::new(&opts.program);
    cmd.args(opts.ssh_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group: a Ctrl-C at the terminal reaches us only,
        // and we stop ssh in order.
        .process_group(0)
        .kill_on_drop(true);
    cmd.spawn().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            TunnelError::SshMissing {
                program: opts.program.to_string_lossy().into_owned(),
                path: std::env::var("PATH").unwrap_or_default(),
            }
        } else {
            TunnelError::SshSpawn {
                program: opts.program.to_string_lossy().into_owned(),
                source,
            }
        }
    })
}

/// SIGTERM, then SIGKILL after `grace` (at once when it is zero); always
/// reaps.
async fn terminate(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id().filter(|_| !grace.is_zero()) {
        // SAFETY: kill(2) on the process we started and have not reaped
        // (its id is still ours: `id()` is None once it was waited for).
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// The last lines ssh wrote to its standard error, bounded in count and
/// length.
#[derive(Debug, Clone, Default)]
struct Words(Arc<Mutex<VecDeque<String>>>);

impl Words {
    async fn collect(self, stderr: impl AsyncRead + Unpin) {
        let mut reader = BufReader::with_capacity(4096, stderr);
        let mut line = Vec::new();
        loop {
            line.clear();
            // Bounded: a line is cut at MAX_WORD_LINE, the rest skipped.
            let mut too_long = false;
            loop {
                let buf = match reader.fill_buf().await {
                    Ok(b) => b,
                    Err(_) => return,
                };
                if buf.is_empty() {
                    if !line.is_empty() {
                        self.push(&line);
                    }
                    return;
                }
                let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (&buf[..i], Some(i + 1)),
                    None => (buf, None),
                };
                let room = MAX_WORD_LINE.saturating_sub(line.len());
                too_long |= chunk.len() > room;
                line.extend_from_slice(&chunk[..chunk.len().min(room)]);
                let used = done.unwrap_or(buf.len());
                reader.consume(used);
                if done.is_some() {
                    break;
                }
            }
            if too_long {
                line.extend_from_slice(b"...");
            }
            self.push(&line);
        }
    }

    fn push(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line).trim_end().to_owned();
        if text.is_empty() {
            return;
        }
        tracing::info!("ssh: {text}");
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() == MAX_WORDS {
            q.pop_front();
        }
        q.push_back(text);
    }

    fn take(&self) -> Vec<String> {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        q.drain(..).collect()
    }
}

/// The settings to type into a mail client for these forwards.
pub fn client_settings(forwards: &[Forward]) -> String {
    let mut out = String::new();
    for f in forwards {
        let (host, port) = (f.local.ip(), f.local.port());
        match f.service {
            super::forward::Service::Smtp => out.push_str(&format!(
                "  Outgoing mail (SMTP): server {host}, port {port}, connection security: none\n\
                 \x20   (the tunnel encrypts it), authentication: none (your server relays mail\n\
                 \x20   that reaches it through the tunnel: it arrives from its own loopback)\n"
            )),
            super::forward::Service::Imap => out.push_str(&format!(
                "  Incoming mail (IMAP): server {host}, port {port}, connection security: none\n\
                 \x20   (the tunnel encrypts it), user name and password: your mail account's\n"
            )),
            super::forward::Service::Other => out.push_str(&format!(
                "  {host}:{port} leads to {}:{} on the server's side\n",
                f.remote_host, f.remote_port
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::forward::Service;
    use super::*;

    fn fw(service: Service, spec: &str) -> Forward {
        Forward::parse(service, spec).unwrap()
    }

    #[test]
    fn the_ssh_command_line() {
        let mut o = SshOptions::new(
            "alice@mail.example.org",
            vec![fw(Service::Smtp, "2525:25"), fw(Service::Imap, "1143:143")],
        );
        o.ssh_options = vec!["Port=2222".into(), "IdentityFile=/k".into()];
        let args: Vec<String> = o
            .ssh_args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args.join(" "),
            "-o Port=2222 -o IdentityFile=/k -o ExitOnForwardFailure=yes \
             -o ServerAliveInterval=15 -o ServerAliveCountMax=3 -o ConnectTimeout=15 \
             -o BatchMode=yes -o ControlMaster=no -o ControlPath=none -N -T \
             -L 127.0.0.1:2525:127.0.0.1:25 -L 127.0.0.1:1143:127.0.0.1:143 \
             -- alice@mail.example.org"
        );
        o.validate().unwrap();
        for bad in ["-oProxyCommand=evil", "", "a b"] {
            let mut o = o.clone();
            o.destination = bad.into();
            assert!(o.validate().is_err(), "{bad}");
        }
        let mut o2 = o.clone();
        o2.ssh_options.push("Port=1\nx".into());
        assert!(o2.validate().is_err());
        let mut o3 = o.clone();
        o3.forwards.push(fw(Service::Other, "2525:587"));
        let e = o3.validate().unwrap_err().to_string();
        assert!(e.contains("both want 127.0.0.1:2525"), "{e}");
    }

    #[test]
    fn shell_quoting() {
        let table = [
            ("Port=2222", "Port=2222"),
            ("alice@mail.example.org", "alice@mail.example.org"),
            ("IdentityFile=~/.ssh/mail", "'IdentityFile=~/.ssh/mail'"),
            ("IdentityFile=/my keys/mail", "'IdentityFile=/my keys/mail'"),
            ("ProxyJump=bob@jump:22", "ProxyJump=bob@jump:22"),
            ("ProxyCommand=nc %h $PORT", "'ProxyCommand=nc %h $PORT'"),
            ("User=o'brien", r"'User=o'\''brien'"),
            ("a;rm -rf /", "'a;rm -rf /'"),
            ("", "''"),
        ];
        for (word, want) in table {
            assert_eq!(shell_quote(word), want, "{word}");
            // What sh reads back is the word itself.
            let out = std::process::Command::new("sh")
                .args(["-c", &format!("printf %s {want}")])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), word);
        }
    }

    #[test]
    fn the_command_to_run_at_a_terminal_keeps_the_ssh_options() {
        let mut o = SshOptions::new("alice@mail.example.org", vec![fw(Service::Smtp, "2525:25")]);
        assert_eq!(o.terminal_command(), "ssh alice@mail.example.org");
        o.ssh_options = vec![
            "Port=2222".into(),
            "IdentityFile=/home/alice/my keys/mail".into(),
            "ProxyJump=bob@jump.example.org".into(),
            "UserKnownHostsFile=/home/alice/.ssh/mail_hosts".into(),
        ];
        assert_eq!(
            o.terminal_command(),
            "ssh -o Port=2222 -o 'IdentityFile=/home/alice/my keys/mail' \
             -o ProxyJump=bob@jump.example.org -o UserKnownHostsFile=/home/alice/.ssh/mail_hosts \
             alice@mail.example.org"
        );
        // Options that forbid the questions are overridden first.
        o.ssh_options = vec![
            "strictHostKeyChecking yes".into(),
            "BatchMode=yes".into(),
            "Port=2222".into(),
        ];
        assert_eq!(
            o.terminal_command(),
            "ssh -o BatchMode=no -o StrictHostKeyChecking=ask \
             -o 'strictHostKeyChecking yes' -o BatchMode=yes -o Port=2222 alice@mail.example.org"
        );
        assert!(
            Permanent::HostKey
                .hint(&o, &[])
                .contains("by running `ssh -o BatchMode=no")
        );
    }

    #[test]
    fn the_command_to_forget_a_changed_host_key() {
        let mut o = SshOptions::new("alice@mail.example.org", vec![fw(Service::Smtp, "2525:25")]);
        let table: &[(&[&str], &[&str], &str)] = &[
            (&[], &[], "ssh-keygen -R mail.example.org"),
            (&["Port=22"], &[], "ssh-keygen -R mail.example.org"),
            (
                &["Port 2222"],
                &[],
                "ssh-keygen -R '[mail.example.org]:2222'",
            ),
            (
                &["HostKeyAlias=mail", "Port=2222"],
                &[],
                "ssh-keygen -R mail",
            ),
            (
                &["UserKnownHostsFile = /home/alice/my hosts", "Port=2222"],
                &[],
                "ssh-keygen -f /home/alice/my -R '[mail.example.org]:2222'",
            ),
            (
                &["UserKnownHostsFile=~/.ssh/mail_hosts /etc/other"],
                &[],
                "ssh-keygen -f ~/.ssh/mail_hosts -R mail.example.org",
            ),
            // The name ssh looked up wins (a Host alias of ~/.ssh/config).
            (
                &["UserKnownHostsFile=/k"],
                &[
                    "Host key for [10.0.0.1]:2222 has changed and you have requested strict checking.",
                ],
                "ssh-keygen -f /k -R '[10.0.0.1]:2222'",
            ),
        ];
        for (options, words, want) in table {
            o.ssh_options = options.iter().map(|s| s.to_string()).collect();
            let words: Vec<String> = words.iter().map(|s| s.to_string()).collect();
            assert_eq!(o.forget_host_key_command(&words), *want, "{options:?}");
        }
        let hint = Permanent::HostKeyChanged.hint(&o, &[]);
        assert!(hint.contains("server's administrator"), "{hint}");
        assert!(hint.contains("`ssh-keygen "), "{hint}");
        assert!(!hint.contains("does not know"), "{hint}");
    }

    #[test]
    fn one_answering_greeting_proves_the_link() {
        let smtp = fw(Service::Smtp, "2525:25");
        let imap = fw(Service::Imap, "1143:143");
        let other = fw(Service::Other, "4190:4190");
        let ok = || Ok(());
        let no = || Err("refused".to_owned());
        type Row<'a> = (Vec<&'a Forward>, Vec<Result<(), String>>, bool);
        let table: Vec<Row> = vec![
            // Two greeting forwards: one answering is enough.
            (vec![&smtp, &imap], vec![no(), ok()], true),
            (vec![&smtp, &imap], vec![ok(), no()], true),
            (vec![&smtp, &imap], vec![ok(), ok()], true),
            (vec![&smtp, &imap], vec![no(), no()], false),
            // One forward: its failure is the link's.
            (vec![&smtp], vec![no()], false),
            (vec![&smtp], vec![ok()], true),
            // ssh's listener answers a --forward even on a frozen link.
            (vec![&smtp, &other], vec![no(), ok()], false),
            (vec![&smtp, &other], vec![ok(), no()], true),
            // Nothing but --forward: every one must answer.
            (vec![&other], vec![ok()], true),
            (vec![&other, &other], vec![ok(), no()], false),
        ];
        for (forwards, results, want) in table {
            let forwards: Vec<Forward> = forwards.into_iter().cloned().collect();
            assert_eq!(
                link_answers(&forwards, &results),
                want,
                "{forwards:?} {results:?}"
            );
        }
    }

    #[test]
    fn backoff_doubles_to_a_minute_and_resets_after_a_good_minute() {
        let mut b = Backoff::default();
        let short = Duration::from_secs(2);
        let got: Vec<u64> = (0..9).map(|_| b.delay(short).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.delay(Duration::from_secs(60)), Duration::from_secs(1));
        assert_eq!(b.delay(Duration::from_secs(59)), Duration::from_secs(2));
        assert_eq!(b.delay(Duration::from_secs(3600)), Duration::from_secs(1));
    }

    #[test]
    fn ssh_failures_that_a_retry_cannot_cure() {
        let table: &[(&str, Option<Permanent>)] = &[
            ("Host key verification failed.", Some(Permanent::HostKey)),
            (
                "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
                Some(Permanent::HostKeyChanged),
            ),
            (
                "Host key for [127.0.0.1]:2222 has changed and you have requested strict checking.",
                Some(Permanent::HostKeyChanged),
            ),
            (
                "alice@127.0.0.1: Permission denied (publickey).",
                Some(Permanent::Auth),
            ),
            (
                "command-line line 0: Bad configuration option: portt",
                Some(Permanent::BadOption),
            ),
            (
                "bind [127.0.0.1]:2525: Address already in use",
                Some(Permanent::PortInUse),
            ),
            (
                "ssh: connect to host 127.0.0.1 port 22: Connection refused",
                None,
            ),
            (
                "ssh: Could not resolve hostname mail.example.org: Temporary failure in name resolution",
                None,
            ),
            ("Connection timed out during banner exchange", None),
            ("client_loop: send disconnect: Broken pipe", None),
        ];
        for (line, want) in table {
            assert_eq!(Permanent::classify(&[line.to_string()]), *want, "{line}");
        }
    }

    #[tokio::test]
    async fn words_are_bounded() {
        let mut text = Vec::new();
        for i in 0..50 {
            text.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        text.extend_from_slice(&[b'x'; 5000]);
        text.extend_from_slice(b"\nlast");
        let w = Words::default();
        w.clone().collect(&text[..]).await;
        let got = w.take();
        assert_eq!(got.len(), MAX_WORDS);
        assert_eq!(got[0], "line 32");
        assert_eq!(got[MAX_WORDS - 2].len(), MAX_WORD_LINE + 3);
        assert_eq!(got[MAX_WORDS - 1], "last");
    }

    #[test]
    fn settings_name_server_and_port() {
        let s = client_settings(&[fw(Service::Smtp, "2525:25"), fw(Service::Imap, "1143:143")]);
        assert!(
            s.contains(
                "Outgoing mail (SMTP): server 127.0.0.1, port 2525, connection security: none"
            ),
            "{s}"
        );
        assert!(
            s.contains(
                "Incoming mail (IMAP): server 127.0.0.1, port 1143, connection security: none"
            ),
            "{s}"
        );
    }
}
