//! A Postfix of the test's own (Debian package postfix), for tests that run
//! `ownmail deliver` the way Postfix runs it: SMTP on 127.0.0.1 and a high
//! port, delivery by pipe(8) to a transport the test describes.
//!
//! Everything lives in one temporary folder: main.cf and master.cf
//! (`postfix -c <dir>/etc`), the queue (`queue_directory`), the
//! `data_directory`, and the log (`maillog_file`, written by postlogd).
//! Nothing is read from or written to /etc/postfix, /var/spool/postfix or
//! syslog, and a Postfix already running on this machine is not touched:
//! its pid file, sockets and queue are elsewhere, and it is never signalled.
//!
//! ```ignore
//! let postfix = postfix::Postfix::start("virtual_transport = ownmail\n", MASTER_CF_LINES);
//! send_to(postfix.port());
//! postfix.wait_log("status=sent", ...);
//! ```
//!
//! Postfix's master must start as root (its daemons then drop to the
//! `postfix` user, and pipe(8) to the `user=` it is given); the tests run as
//! root here and in CI. A missing Postfix, or a test not run as root, fails
//! the test: it never skips.
//!
//! # Stopping
//!
//! The master daemon makes itself a process group leader (setsid), and every
//! daemon and every command pipe(8) starts stays in that group. Dropping the
//! [`Postfix`] runs `postfix -c <dir> stop`, waits for the group to empty,
//! and sends SIGKILL to whatever of the group is left after
//! [`STOP_TIMEOUT`]. The group is the one whose leader's PID is in this
//! instance's own `pid/master.pid`, never another. During a panic the log
//! is printed, so a failing test shows what Postfix did.
//!
//! # No traffic off this machine
//!
//! smtpd listens on 127.0.0.1 only; no DNS (`smtp_dns_support_level =
//! disabled`, no client name lookups); mail for any domain the test does
//! not configure goes to the error(8) transport, which bounces it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::dovecot::{is_root, probe};
use super::smtp::free_port;

pub const DEBIAN_PACKAGE: &str = "postfix";
pub const POSTFIX: &str = "/usr/sbin/postfix";
pub const POSTQUEUE: &str = "/usr/sbin/postqueue";

const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Starts that fail because another process took the port between our
/// probe and smtpd's bind are retried with a fresh port.
const PORT_ATTEMPTS: usize = 5;

/// A running Postfix. Dropping it stops it.
pub struct Postfix {
    conf: PathBuf,
    log: PathBuf,
    port: u16,
    /// The master's PID, also its process group; None once stopped.
    master: Option<libc::pid_t>,
    // Last: removed after the server is stopped.
    dir: tempfile::TempDir,
}

impl Postfix {
    /// Writes main.cf (this module's settings, then `main_cf`) and
    /// master.cf (the services Postfix needs, then `master_cf`: the test's
    /// transports), starts Postfix and waits for its SMTP greeting. Fails
    /// the test, printing the log, if it does not start.
    pub fn start(main_cf: &str, master_cf: &str) -> Postfix {
        for program in [POSTFIX, POSTQUEUE] {
            assert!(
                Path::new(program).is_file(),
                "{program} is missing: install the Debian package {DEBIAN_PACKAGE} \
                 (scripts/install-peers.sh)"
            );
        }
        assert!(
            is_root(),
            "a private Postfix must be started as root (its master drops privileges to \
             the postfix user): run this test as root"
        );
        let dir = tempfile::Builder::new()
            .prefix("ownmail-postfix-")
            .tempdir()
            .unwrap();
        // The postfix user must walk into queue/ and data/.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let (conf, queue, data) = (
            dir.path().join("etc"),
            dir.path().join("queue"),
            dir.path().join("data"),
        );
        for d in [&conf, &queue, &data] {
            std::fs::create_dir(d).unwrap();
        }
        // postlogd (as postfix) writes the log here.
        chown_to(&data, "postfix");
        let log = data.join("maillog");

        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            std::fs::write(conf.join("main.cf"), render_main(dir.path(), main_cf)).unwrap();
            std::fs::write(conf.join("master.cf"), render_master(port, master_cf)).unwrap();
            // `start` checks the configuration, creates the queue folders,
            // and returns once the master has bound its listeners.
            let out = run_postfix(&conf, &["start"]);
            if out.status.success() {
                let server = Postfix {
                    master: Some(read_pid(&queue).expect("postfix started but wrote no pid file")),
                    conf,
                    log,
                    port,
                    dir,
                };
                server.wait_ready();
                return server;
            }
            // A master that started after all is stopped before going on.
            stop_instance(&conf, read_pid(&queue));
            let text = format!(
                "postfix start: {}\n{}{}\n--- maillog ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            if !text.contains("Address already in use") {
                // What postfix finds wrong before it has read maillog_file
                // goes to syslog only; `postfix check` on a terminal shows it.
                panic!(
                    "postfix did not start: {text}\n(nothing above? run \
                     `script -qc 'postfix -c {} check' /dev/null` to see its complaint)",
                    conf.display()
                );
            }
            last_failure = text;
        }
        panic!("postfix could not bind a free port in {PORT_ATTEMPTS} attempts:\n{last_failure}");
    }

    /// The port smtpd listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary folder everything lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration folder, for `postfix -c` and `postqueue -c`.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// Everything Postfix logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The messages in the queue, one JSON object each (`postqueue -j`):
    /// `queue_name` is "deferred", "active", "incoming" or "hold";
    /// `recipients[].delay_reason` says why one is waiting.
    pub fn queue(&self) -> Vec<serde_json::Value> {
        let out = Command::new(POSTQUEUE)
            .arg("-c")
            .arg(&self.conf)
            .arg("-j")
            .output()
            .unwrap_or_else(|e| panic!("{POSTQUEUE}: {e}"));
        assert!(
            out.status.success(),
            "postqueue -j: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("postqueue -j: {e}: {l}")))
            .collect()
    }

    /// Asks the queue manager to try every deferred message now
    /// (`postqueue -f`).
    pub fn flush(&self) {
        let out = Command::new(POSTQUEUE)
            .arg("-c")
            .arg(&self.conf)
            .arg("-f")
            .output()
            .unwrap_or_else(|e| panic!("{POSTQUEUE}: {e}"));
        assert!(
            out.status.success(),
            "postqueue -f: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Polls every 50 ms until `done` holds, for at most `timeout`; fails
    /// the test naming `what` when it does not.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !done() {
            assert!(
                Instant::now() < deadline,
                "waited {timeout:?} for {what}, in vain"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until a log line contains every one of `needles`, and
    /// returns that line.
    pub fn wait_log(&self, needles: &[&str], timeout: Duration) -> String {
        let mut found = String::new();
        self.wait_for(
            &format!("a log line with {needles:?}"),
            timeout,
            || match self
                .log_text()
                .lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
            {
                Some(line) => {
                    found = line.to_owned();
                    true
                }
                None => false,
            },
        );
        found
    }

    /// Stops Postfix and waits until every one of its processes is gone.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while !probe(self.port, Some(b"220 ")) {
            assert!(
                Instant::now() < deadline,
                "postfix started but smtpd did not greet on port {} in {START_TIMEOUT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn shutdown(&mut self) {
        if let Some(master) = self.master.take() {
            stop_instance(&self.conf, Some(master));
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.shutdown();
        if std::thread::panicking() {
            eprintln!(
                "--- postfix log ({}) ---\n{}--- end of postfix log ---",
                self.log.display(),
                self.log_text()
            );
        }
    }
}

fn run_postfix(conf: &Path, args: &[&str]) -> Output {
    Command::new(POSTFIX)
        .arg("-c")
        .arg(conf)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{POSTFIX}: {e}"))
}

/// The master's PID (and process group), from the instance's own pid file.
fn read_pid(queue: &Path) -> Option<libc::pid_t> {
    std::fs::read_to_string(queue.join("pid/master.pid"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .filter(|&pid: &libc::pid_t| pid > 1)
}

/// `postfix stop`, which sends SIGTERM to the master, which stops its
/// daemons; then waits for the master's process group to empty (a command
/// pipe(8) started may outlive its daemon) and sends SIGKILL to whatever
/// is left of it after [`STOP_TIMEOUT`].
fn stop_instance(conf: &Path, master: Option<libc::pid_t>) {
    let Some(master) = master.filter(|&pid| group_alive(pid)) else {
        return;
    };
    let _ = run_postfix(conf, &["stop"]);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while group_alive(master) {
        if Instant::now() > deadline {
            // SAFETY: the process group this instance's master created (its
            // PID, from its own pid file, checked above to be > 1).
            unsafe { libc::kill(-master, libc::SIGKILL) };
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn render_main(dir: &Path, extra: &str) -> String {
    let d = |sub: &str| dir.join(sub).display().to_string();
    format!(
        "# Written by tests/support/postfix.rs; nothing here comes from /etc/postfix.
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = {top}
maillog_file = {data}/maillog
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.example.test
mydomain = example.test
myorigin = example.test
mydestination =
relay_domains =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtpd_peername_lookup = no
default_transport = error:this test's Postfix sends nothing off this machine
relay_transport = error:this test's Postfix sends nothing off this machine
smtputf8_enable = no
biff = no
{extra}",
        queue = d("queue"),
        data = d("data"),
        top = dir.display(),
    )
}

fn render_master(port: u16, extra: &str) -> String {
    // chroot off everywhere (column 5): nothing is set up inside one.
    format!(
        "# Written by tests/support/postfix.rs.
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
{extra}"
    )
}

fn chown_to(path: &Path, user: &str) {
    let name = std::ffi::CString::new(user).unwrap();
    // SAFETY: a NUL-terminated name; the result is read at once.
    let (uid, gid) = unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        assert!(
            !pw.is_null(),
            "there is no user {user}: install the Debian package {DEBIAN_PACKAGE}, which creates it"
        );
        ((*pw).pw_uid, (*pw).pw_gid)
    };
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

/// Whether a process of the group is still running. Zombies do not count:
/// the master is not our child, so init reaps it and its daemons, later.
fn group_alive(pgid: libc::pid_t) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_ascii_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|p| p.parse::<libc::pid_t>().ok());
        pgrp == Some(pgid) && !matches!(state, Some("Z" | "X"))
    })
}
