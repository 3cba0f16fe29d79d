//! `ownmail tunnel` as a running process, and the clients the tunnel tests
//! drive through it (swaks, Python's imaplib, plain greetings).
//!
//! The end-to-end tests against serve-smtp and serve-imap use the same
//! pieces: start the server, then
//! `Tunnel::ssh(&sshd, &["--smtp", &format!("{local}:{smtp_port}")])`,
//! `tunnel.wait_greeting(local, "220 ", UP)`, and
//! `swaks(local, "bob@example.net", "alice@example.org")`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ownmail;
use super::sshd::Sshd;

/// A running `ownmail tunnel ...`; its standard output and error are
/// collected as they come. Dropping it kills it.
pub struct Tunnel {
    child: Option<Child>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Tunnel {
    /// `ownmail tunnel ARGS...`.
    pub fn spawn(args: &[String]) -> Tunnel {
        Tunnel::spawn_cmd(ownmail().arg("tunnel").args(args))
    }

    pub fn spawn_cmd(cmd: &mut Command) -> Tunnel {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let collect = |r: Box<dyn Read + Send>| {
            let text = Arc::new(Mutex::new(String::new()));
            let sink = Arc::clone(&text);
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines() {
                    let Ok(line) = line else { break };
                    let mut t = sink.lock().unwrap();
                    t.push_str(&line);
                    t.push('\n');
                }
            });
            text
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        Tunnel {
            child: Some(child),
            stdout,
            stderr,
        }
    }

    /// `ownmail tunnel ssh` to `sshd` with its client options, health
    /// checks every second (2 s to answer), and `args`.
    pub fn ssh(sshd: &Sshd, args: &[&str]) -> Tunnel {
        Tunnel::ssh_with(sshd, &sshd.ssh_options(), args)
    }

    pub fn ssh_with(sshd: &Sshd, options: &[String], args: &[&str]) -> Tunnel {
        let mut all = vec![
            "ssh".to_owned(),
            sshd.destination(),
            "--check-interval".into(),
            "1".into(),
            "--check-timeout".into(),
            "2".into(),
        ];
        all.extend(Sshd::tunnel_args(options));
        all.extend(args.iter().map(|s| s.to_string()));
        Tunnel::spawn(&all)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The ssh processes the tunnel runs right now (its children named ssh).
    pub fn ssh_pids(&self) -> Vec<u32> {
        children(self.pid(), "ssh")
    }

    /// The one ssh process, waiting up to `within` for it to exist.
    pub fn ssh_pid(&self, within: Duration) -> u32 {
        let deadline = Instant::now() + within;
        loop {
            match self.ssh_pids().as_slice() {
                [pid] => return *pid,
                [] if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                other => panic!(
                    "expected one ssh process, found {other:?}; tunnel said:\n{}",
                    self.stderr()
                ),
            }
        }
    }

    /// Waits until `port` greets with `prefix` (through the forward); how
    /// long it took. Fails the test, showing what the tunnel said, after
    /// `within`.
    pub fn wait_greeting(&mut self, port: u16, prefix: &str, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "the tunnel exited ({status}) while waiting for port {port}:\n{}",
                    self.stderr()
                );
            }
            if greeting(port).is_some_and(|g| g.starts_with(prefix)) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "port {port} did not greet with {prefix:?} within {within:?}; the tunnel said:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until the tunnel has said `text` on standard error (the
    /// `n`th time).
    pub fn wait_said(&self, text: &str, n: usize, within: Duration) {
        let start = Instant::now();
        while self.stderr().matches(text).count() < n {
            assert!(
                start.elapsed() < within,
                "the tunnel did not say {text:?} {n} times within {within:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` and waits (up to 15 s) for the exit.
    pub fn stop(&mut self, signal: libc::c_int) -> ExitStatus {
        let pid = self.pid() as libc::pid_t;
        // SAFETY: our child, not yet reaped.
        unsafe { libc::kill(pid, signal) };
        self.wait(Duration::from_secs(15))
    }

    /// Waits for the exit, killing it after `within` (and failing).
    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                // Let the reader threads catch the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the tunnel did not exit within {within:?}:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            let ssh = children(pid, "ssh");
            let _ = child.kill();
            let _ = child.wait();
            // ssh is in its own process group; a killed tunnel cannot stop it.
            for p in ssh {
                // SAFETY: a process of this test's making, by its id.
                unsafe { libc::kill(p as libc::pid_t, libc::SIGKILL) };
            }
            if std::thread::panicking() {
                eprintln!("--- tunnel stderr ---\n{}", self.stderr());
            }
        }
    }
}

/// The children of `parent` whose command name is `name`, from /proc.
pub fn children(parent: u32, name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let mut rest = stat[close + 1..].split_whitespace();
        let (state, ppid) = (rest.next(), rest.next().and_then(|p| p.parse::<u32>().ok()));
        if comm == name && ppid == Some(parent) && state != Some("Z") {
            found.push(pid);
        }
    }
    found
}

/// Whether a process exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// The first line `port` on 127.0.0.1 sends, within 3 s.
pub fn greeting(port: u16) -> Option<String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).ok()?;
    let _ = (&stream).write_all(b"QUIT\r\n");
    (!line.is_empty()).then_some(line)
}

/// swaks submitting one message to 127.0.0.1:`port` (plain SMTP).
pub fn swaks(port: u16, from: &str, to: &str, extra: &[&str]) -> Output {
    Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port", &port.to_string()])
        .args(["--from", from, "--to", to, "--helo", "laptop.test"])
        .args(["--header", "Subject: through the tunnel", "--timeout", "20"])
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("swaks: {e}: install the Debian package swaks"))
}

/// Python's imaplib: logs in on 127.0.0.1:`port` (plain, or implicit TLS
/// trusting `cafile`, or a command on stdin/stdout with `stream`), and
/// prints every message of INBOX, hex-encoded, one per line.
pub fn imap_read_all(how: ImapClient<'_>, user: &str, password: &str) -> Output {
    let connect = match how {
        ImapClient::Plain(port) => format!("imaplib.IMAP4('127.0.0.1', {port})"),
        ImapClient::Tls(port, cafile) => format!(
            "imaplib.IMAP4_SSL('127.0.0.1', {port}, ssl_context=ssl.create_default_context(cafile={cafile:?}))"
        ),
        ImapClient::Stream(command) => format!("imaplib.IMAP4_stream({command:?})"),
    };
    let script = format!(
        "import imaplib, ssl, sys\n\
         m = {connect}\n\
         m.login({user:?}, {password:?})\n\
         typ, data = m.select('INBOX')\n\
         assert typ == 'OK', data\n\
         typ, nums = m.search(None, 'ALL')\n\
         for n in nums[0].split():\n\
         \x20   typ, d = m.fetch(n, '(BODY.PEEK[])')\n\
         \x20   print(d[0][1].hex())\n\
         m.logout()\n"
    );
    Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}: install the Debian package python3"))
}

/// How [`imap_read_all`] reaches the server.
#[derive(Debug, Clone, Copy)]
pub enum ImapClient<'a> {
    Plain(u16),
    Tls(u16, &'a str),
    Stream(&'a str),
}

/// The messages [`imap_read_all`] printed.
pub fn decode_messages(out: &Output) -> Vec<Vec<u8>> {
    assert!(
        out.status.success(),
        "the IMAP client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect()
}

/// openssl's idea of a certificate's fingerprint, in our notation.
pub fn openssl_fingerprint(cert: &std::path::Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let hex = text.trim().split_once('=').unwrap().1;
    format!("sha256:{hex}")
}
