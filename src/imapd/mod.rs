//! The IMAP server: commands parsed by [`crate::proto::imap`] executed
//! against the Maildir store. A [`Session`] takes the client's bytes and
//! gives [`Out`]s (bytes, a file to stream, start TLS, close); the driver in
//! [`crate::net::server`] pumps them over TCP, TLS or stdin/stdout.
//!
//! - [`session`]: states (RFC 3501 3), authentication, every command.
//! - [`mailbox`]: a selected folder's view and what changed on disk.
//! - [`fetch`]: FETCH items, ENVELOPE, BODYSTRUCTURE, sections.
//! - [`search`]: SEARCH keys.
//! - [`condstore`]: mod-sequences of a selected folder (RFC 7162).
//!
//! This module opens files (the store) but no sockets and no clocks of its
//! own: waiting (login throttling, IDLE) is the driver's job.

pub mod condstore;
pub mod fetch;
pub mod index;
pub mod mailbox;
pub mod search;
pub mod session;
pub mod shared;

use std::collections::HashMap;
use std::fs::File;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use session::Session;

use crate::proto::imap::Limits;

/// What the driver must do next, in order.
#[derive(Debug)]
pub enum Out {
    Bytes(Vec<u8>),
    /// `len` bytes of a message file as IMAP serves it (a CR before every
    /// bare LF), after skipping `skip` such bytes. A file shorter than
    /// promised (truncated by another process) is padded with spaces, so
    /// the literal stays the announced size.
    File {
        src: FileRef,
        skip: u64,
        len: u64,
    },
    /// Wait before sending what follows (a failed login).
    Sleep(Duration),
    /// Start TLS now: nothing more is read in plain text.
    StartTls,
    /// Close the connection after sending what came before.
    Close,
}

/// A message file to stream: opened by the driver when its turn comes,
/// found again by its base name if another process renamed it meanwhile.
#[derive(Debug, Clone)]
pub struct FileRef {
    pub path: PathBuf,
    pub folder: PathBuf,
    pub base: String,
}

impl FileRef {
    /// The file, or `None` when it was expunged meanwhile (the driver then
    /// pads the literal it announced).
    pub fn open(&self) -> Option<File> {
        File::open(&self.path).ok().or_else(|| {
            let (sub, name) = crate::store::uidlist::locate(&self.folder, &self.base)?;
            File::open(self.folder.join(sub).join(name)).ok()
        })
    }
}

/// Reads a message file as IMAP serves it, in chunks: a CR before every
/// bare LF, a NUL as 0x80 ([`no_nul`]), `skip` such bytes skipped, exactly
/// `len` bytes given (padded with spaces if the file turns out shorter).
/// Memory: one chunk.
pub struct CrlfChunks {
    file: Option<File>,
    skip: u64,
    left: u64,
    prev: u8,
    eof: bool,
    raw: Vec<u8>,
}

pub const CHUNK: usize = 64 * 1024;

impl CrlfChunks {
    pub fn new(file: Option<File>, skip: u64, len: u64) -> CrlfChunks {
        let eof = file.is_none();
        CrlfChunks {
            file,
            skip,
            left: len,
            prev: 0,
            eof,
            // What the file can give is at most skip + len bytes (the CRs
            // only add): a small message gets a small buffer.
            raw: vec![0; (skip.saturating_add(len)).clamp(1, CHUNK as u64) as usize],
        }
    }

    /// The next chunk into `out` (cleared first); `false` when done.
    pub fn next_chunk(&mut self, out: &mut Vec<u8>) -> std::io::Result<bool> {
        use std::io::Read;
        out.clear();
        while self.left > 0 && out.len() < CHUNK {
            if self.eof {
                let pad = self.left.min((CHUNK - out.len()) as u64) as usize;
                out.resize(out.len() + pad, b' ');
                self.left -= pad as u64;
                break;
            }
            let Some(file) = self.file.as_mut() else {
                self.eof = true;
                continue;
            };
            let n = file.read(&mut self.raw)?;
            if n == 0 {
                self.eof = true;
                continue;
            }
            let raw = std::mem::take(&mut self.raw);
            let data = &raw[..n];
            // Whole runs between bare LFs at once (memchr finds the LFs).
            let mut start = 0;
            for nl in memchr::memchr_iter(b'\n', data) {
                let prev = if nl == 0 { self.prev } else { data[nl - 1] };
                if prev != b'\r' {
                    self.emit(&data[start..nl], out);
                    self.emit(b"\r\n", out);
                    start = nl + 1;
                }
            }
            self.emit(&data[start..], out);
            self.prev = data[n - 1];
            self.raw = raw;
        }
        Ok(!out.is_empty())
    }

    /// Bytes of the converted stream: the first `skip` dropped, at most
    /// `left` kept.
    fn emit(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let skipped = self.skip.min(bytes.len() as u64) as usize;
        self.skip -= skipped as u64;
        let rest = &bytes[skipped..];
        let kept = self.left.min(rest.len() as u64) as usize;
        let at = out.len();
        out.extend_from_slice(&rest[..kept]);
        no_nul(&mut out[at..]);
        self.left -= kept as u64;
    }
}

/// RFC 3501 4.3: a literal is CHAR8 (%x01-ff), no NUL. As Dovecot does, a
/// NUL in a message is sent as 0x80: one byte for one, so the sizes
/// announced stay right.
pub fn no_nul(bytes: &mut [u8]) {
    for b in bytes.iter_mut().filter(|b| **b == 0) {
        *b = 0x80;
    }
}

/// What every session of a server shares.
#[derive(Debug)]
pub struct Context {
    /// Greeting name.
    pub hostname: String,
    pub users_file: PathBuf,
    /// `<data_dir>/mail`: a user's Maildir is `<mail_root>/<user>`.
    pub mail_root: PathBuf,
    /// Whether STARTTLS can be offered.
    pub tls: bool,
    pub limits: Limits,
    pub throttle: Throttle,
    /// The spam filter's settings: moves into and out of the junk folder
    /// train it ([`crate::spam::feedback`]).
    pub spam: crate::config::SpamConfig,
}

/// Failed logins per address: each failure doubles the wait before the
/// next answer (from 1 s, at most 32 s); an hour without failure forgets.
#[derive(Debug, Default, Clone)]
pub struct Throttle {
    inner: Arc<Mutex<HashMap<IpAddr, (u32, Instant)>>>,
    /// Where failures are also written, for the next process (`--stdio`).
    log: Option<crate::auth::throttle::FailureLog>,
}

const THROTTLE_FORGET: Duration = Duration::from_secs(3600);
const THROTTLE_MAX_ENTRIES: usize = 100_000;

impl Throttle {
    /// A throttle that also writes failures and successes to `log`.
    pub fn with_log(log: crate::auth::throttle::FailureLog) -> Throttle {
        Throttle {
            log: Some(log),
            ..Throttle::default()
        }
    }

    /// Takes in what the log holds of `ip`'s recent failures (a process
    /// serving one connection, at its start): its first answer waits as
    /// long as it would have in a server that saw them all.
    pub fn seed(&self, ip: IpAddr) {
        let Some(log) = &self.log else { return };
        let failures = log.failures(ip, THROTTLE_FORGET);
        if let (false, Ok(mut map)) = (failures.is_empty(), self.inner.lock()) {
            let last = failures.iter().min().copied().unwrap_or_default();
            let now = Instant::now();
            let n = u32::try_from(failures.len()).unwrap_or(u32::MAX);
            map.insert(ip, (n, now.checked_sub(last).unwrap_or(now)));
        }
    }

    /// Records a failure; the delay to impose before answering.
    pub fn failed(&self, ip: Option<IpAddr>) -> Duration {
        let Some(ip) = ip else {
            return Duration::from_secs(1);
        };
        if let Some(log) = &self.log {
            log.failed(ip);
        }
        let Ok(mut map) = self.inner.lock() else {
            return Duration::from_secs(1);
        };
        let now = Instant::now();
        if map.len() >= THROTTLE_MAX_ENTRIES {
            map.retain(|_, (_, t)| now.duration_since(*t) < THROTTLE_FORGET);
        }
        let e = map.entry(ip).or_insert((0, now));
        if now.duration_since(e.1) > THROTTLE_FORGET {
            e.0 = 0;
        }
        e.0 = e.0.saturating_add(1);
        e.1 = now;
        Duration::from_secs(1u64 << (e.0 - 1).min(5))
    }

    pub fn succeeded(&self, ip: Option<IpAddr>) {
        if let (Some(ip), Ok(mut map)) = (ip, self.inner.lock())
            && map.remove(&ip).is_some()
            && let Some(log) = &self.log
        {
            log.succeeded(ip);
        }
    }
}

/// Who is on the other end.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub ip: Option<IpAddr>,
    /// TLS from the start (imaps, or `--stdio --tls`).
    pub tls: bool,
    /// stdin/stdout: the invoking process is trusted like loopback.
    pub local: bool,
}

impl Peer {
    /// Plain-text passwords are accepted over TLS, from loopback, and on
    /// stdin/stdout; elsewhere LOGINDISABLED (RFC 3501 6.2.3, 7.2.1).
    pub fn may_login_in_plain(&self) -> bool {
        self.local || self.ip.is_some_and(|ip| ip.is_loopback())
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod throttle_tests {
    use super::*;

    #[test]
    fn failed_logins_wait_longer_and_longer() {
        let t = Throttle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let waits: Vec<u64> = (0..8).map(|_| t.failed(Some(ip)).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 32, 32]);
        assert_eq!(t.failed(Some("192.0.2.2".parse().unwrap())).as_secs(), 1);
        t.succeeded(Some(ip));
        assert_eq!(t.failed(Some(ip)).as_secs(), 1);
    }
}

#[cfg(test)]
mod crlf_tests {
    use super::*;

    /// What the stream must equal: a CR before every bare LF, byte by byte.
    fn naive(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = 0u8;
        for &b in raw {
            if b == b'\n' && prev != b'\r' {
                out.push(b'\r');
            }
            out.push(b);
            prev = b;
        }
        out
    }

    #[test]
    fn crlf_chunks_and_to_crlf_add_a_cr_before_every_bare_lf_across_reads() {
        // CRs and LFs at random, over several reads (a CRLF split between
        // two reads included), with and without a partial range.
        let mut raw = Vec::new();
        let mut x: u32 = 12345;
        for _ in 0..(3 * CHUNK + 17) {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            raw.push(match (x >> 16) % 7 {
                0 => b'\n',
                1 => b'\r',
                _ => b'a',
            });
        }
        raw[CHUNK - 1] = b'\r';
        raw[CHUNK] = b'\n';
        raw[2 * CHUNK - 1] = b'a';
        raw[2 * CHUNK] = b'\n';
        raw[0] = b'\n';
        let want = naive(&raw);
        assert_eq!(crate::message::mime::to_crlf(&raw), want);
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("m");
        std::fs::write(&path, &raw).unwrap();
        let total = want.len() as u64;
        for (skip, len) in [
            (0, total),
            (1, 10),
            (CHUNK as u64 - 3, CHUNK as u64 + 9),
            (total - 5, 5),
            (7, total + 20),
        ] {
            let mut c = CrlfChunks::new(Some(File::open(&path).unwrap()), skip, len);
            let mut got = Vec::new();
            let mut chunk = Vec::new();
            while c.next_chunk(&mut chunk).unwrap() {
                got.extend_from_slice(&chunk);
            }
            let end = (skip + len).min(total) as usize;
            let mut expect = want[skip as usize..end].to_vec();
            // Past the end of the file: padded with spaces to the length promised.
            expect.resize(len as usize, b' ');
            assert_eq!(got, expect, "skip {skip} len {len}");
        }
    }
}
