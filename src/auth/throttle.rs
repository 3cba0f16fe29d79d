//! Throttling of failed logins, per client address: after
//! [`MAX_FAILURES`] failures within [`WINDOW`], every login from that
//! address is refused (without checking the password, so guessing gains
//! nothing) until the window has passed. The table is bounded: at
//! [`MAX_ENTRIES`] the oldest windows are dropped first.
//!
//! No clock of its own: callers pass `now`, so tests need no sleeping.
//!
//! A server run once per connection (inetd, `--stdio`) starts with an
//! empty table each time; [`FailureLog`] keeps the failures in a file for
//! those, so that a new connection does not bring new guesses.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Failures allowed within [`WINDOW`].
pub const MAX_FAILURES: u32 = 5;
/// How long failures are remembered.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The most addresses remembered.
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Default)]
pub struct Throttle {
    inner: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    /// Where failures are also written, for the next process.
    log: Option<FailureLog>,
}

impl Throttle {
    pub fn new() -> Throttle {
        Throttle::default()
    }

    /// A throttle that also writes failures and successes to `log`.
    pub fn with_log(log: FailureLog) -> Throttle {
        Throttle {
            log: Some(log),
            ..Throttle::default()
        }
    }

    /// Takes in what the log holds of `ip`'s recent failures (a process
    /// serving one connection, at its start).
    pub fn seed(&self, ip: IpAddr, now: Instant) {
        let Some(log) = &self.log else { return };
        for age in log.failures(ip, WINDOW) {
            self.count_failure(ip, now.checked_sub(age).unwrap_or(now), now);
        }
    }

    /// Whether a login from `ip` may be tried now.
    pub fn allowed(&self, ip: IpAddr, now: Instant) -> bool {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&ip) {
            Some((n, since)) => *n < MAX_FAILURES || now.duration_since(*since) >= WINDOW,
            None => true,
        }
    }

    /// Records a failed login.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        self.count_failure(ip, now, now);
        if let Some(log) = &self.log {
            log.failed(ip);
        }
    }

    /// Counts a failure at `at` (`now`, or earlier for one from the log).
    fn count_failure(&self, ip: IpAddr, at: Instant, now: Instant) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES && !map.contains_key(&ip) {
            map.retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
            if map.len() >= MAX_ENTRIES
                && let Some(oldest) = map.iter().min_by_key(|(_, (_, s))| *s).map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        let entry = map.entry(ip).or_insert((0, at));
        if at.saturating_duration_since(entry.1) >= WINDOW {
            *entry = (0, at);
        }
        entry.0 += 1;
    }

    /// Forgets an address's failures after a successful login.
    pub fn succeeded(&self, ip: IpAddr) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if map.remove(&ip).is_some()
            && let Some(log) = &self.log
        {
            log.succeeded(ip);
        }
    }
}

/// Failed logins in a file, shared by processes that each serve one
/// connection: lines `<unix seconds> <address>` for a failure and
/// `<unix seconds> <address> ok` for a success, which forgets the
/// failures before it. Each line is appended in one write (`O_APPEND`), so
/// processes do not mix their lines. Only the last [`LOG_TAIL`] bytes are
/// read, and the file is cut back to them when it grows past twice that.
/// Best effort: a log that cannot be read or written is logged and
/// ignored, as a broken log must not stop logins.
#[derive(Debug, Clone)]
pub struct FailureLog {
    path: PathBuf,
}

/// What [`FailureLog`] reads and keeps: about 6,000 lines.
pub const LOG_TAIL: u64 = 256 * 1024;

impl FailureLog {
    pub fn new(path: PathBuf) -> FailureLog {
        FailureLog { path }
    }

    /// How long ago `ip` failed, for each failure within `window` since its
    /// last success.
    pub fn failures(&self, ip: IpAddr, window: Duration) -> Vec<Duration> {
        let tail = match self.tail() {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), "cannot read: {e}");
                return Vec::new();
            }
        };
        let now = unix_now();
        let ip = ip.to_string();
        let mut ages = Vec::new();
        for line in tail.lines() {
            let mut words = line.split(' ');
            let (Some(secs), Some(addr)) = (words.next(), words.next()) else {
                continue;
            };
            if addr != ip {
                continue;
            }
            if words.next() == Some("ok") {
                ages.clear();
                continue;
            }
            if let Ok(secs) = secs.parse::<u64>() {
                let age = Duration::from_secs(now.saturating_sub(secs));
                if age < window {
                    ages.push(age);
                }
            }
        }
        ages
    }

    pub fn failed(&self, ip: IpAddr) {
        self.append(&format!("{} {ip}\n", unix_now()));
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.append(&format!("{} {ip} ok\n", unix_now()));
    }

    fn append(&self, line: &str) {
        use std::os::unix::fs::OpenOptionsExt;
        let result = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)
            .and_then(|mut f| {
                f.write_all(line.as_bytes())?;
                f.metadata()
            });
        match result {
            Ok(meta) if meta.len() > 2 * LOG_TAIL => {
                if let Err(e) = self.tail().and_then(|t| {
                    crate::store::durable::replace_file(&self.path, t.as_bytes(), 0o600)
                }) {
                    tracing::warn!(path = %self.path.display(), "cannot cut back: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(path = %self.path.display(), "cannot write: {e}"),
        }
    }

    /// The last [`LOG_TAIL`] bytes, from the first whole line.
    fn tail(&self) -> std::io::Result<String> {
        let mut f = std::fs::File::open(&self.path)?;
        let len = f.metadata()?.len();
        let start = len.saturating_sub(LOG_TAIL);
        f.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        f.take(LOG_TAIL).read_to_end(&mut bytes)?;
        if start > 0 {
            let first = memchr::memchr(b'\n', &bytes).map_or(bytes.len(), |i| i + 1);
            bytes.drain(..first);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_an_address_out_for_the_window() {
        let t = Throttle::new();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert!(t.allowed(a, t0), "failure {i}");
            t.failed(a, t0);
        }
        assert!(!t.allowed(a, t0 + Duration::from_secs(60)));
        assert!(t.allowed(b, t0), "other addresses are not affected");
        assert!(t.allowed(a, t0 + WINDOW));
        t.failed(a, t0 + WINDOW);
        assert!(
            t.allowed(a, t0 + WINDOW),
            "a new window starts counting afresh"
        );
        t.succeeded(a);
        assert!(t.allowed(a, t0 + WINDOW));
    }

    #[test]
    fn failures_in_the_log_carry_over_to_the_next_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("login-failures");
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        // One process per connection, each failing once.
        for _ in 0..MAX_FAILURES {
            let t = Throttle::with_log(FailureLog::new(path.clone()));
            let now = Instant::now();
            t.seed(a, now);
            assert!(t.allowed(a, now));
            t.failed(a, now);
            t.failed(b, now);
        }
        let next = Throttle::with_log(FailureLog::new(path.clone()));
        let now = Instant::now();
        next.seed(a, now);
        assert!(!next.allowed(a, now), "the sixth connection is refused");
        assert!(next.allowed(a, now + WINDOW));
        // A success forgets, for later processes too.
        let t = Throttle::with_log(FailureLog::new(path.clone()));
        t.seed(b, now);
        assert!(!t.allowed(b, now));
        t.succeeded(b);
        let later = Throttle::with_log(FailureLog::new(path.clone()));
        later.seed(b, now);
        assert!(later.allowed(b, now));
        // Old failures do not count; the file stays small.
        let log = FailureLog::new(path.clone());
        assert_eq!(log.failures(a, WINDOW).len(), MAX_FAILURES as usize);
        assert!(log.failures(a, Duration::ZERO).is_empty());
        for _ in 0..30_000 {
            log.failed(b);
        }
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len <= 2 * LOG_TAIL + 64, "{len}");
        // A log that cannot be read is no log: logins go on.
        let none = FailureLog::new(dir.path().join("missing/login-failures"));
        none.failed(a);
        assert!(none.failures(a, WINDOW).is_empty());
    }

    #[test]
    fn the_table_is_bounded() {
        let t = Throttle::new();
        let t0 = Instant::now();
        for i in 0..(MAX_ENTRIES as u32 + 10) {
            t.failed(
                IpAddr::from(i.to_be_bytes()),
                t0 + Duration::from_millis(i as u64),
            );
        }
        assert!(t.inner.lock().unwrap().len() <= MAX_ENTRIES);
    }
}
