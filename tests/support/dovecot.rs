//! A Dovecot of the test's own, for interop tests: IMAP and POP3 (plain,
//! STARTTLS and implicit TLS) on 127.0.0.1, high ports, users from a
//! passwd-file, each with a Maildir++ of the test's choice.
//!
//! Everything lives in one temporary folder: the configuration, base_dir
//! (sockets, pid file), state_dir, the log, the passwd-file, the TLS key and
//! certificate. Nothing is read from /etc/dovecot and nothing is written to
//! /var or to syslog. The server is stopped when the [`Dovecot`] is dropped:
//! SIGTERM to the PID this module started, then SIGKILL to whatever is left
//! of its process group; its log is printed when that happens during a
//! panic, so a failing test shows what the server saw.
//!
//! ```ignore
//! let mut setup = dovecot::Setup::new();
//! setup.imap().pop3().tls();
//! let maildir = setup.user("alice", "secret"); // fill it before start()
//! let server = setup.start();
//! connect_to(server.imap_port());
//! ```
//!
//! # Running as root
//!
//! Dovecot refuses to give a mail process uid 0 ("userdb returned 0 as
//! uid"). When the tests run as root, mail is accessed as [`mail_owner`]
//! (`nobody`): fill a Maildir as that user ([`as_mail_owner`]) or hand it
//! over afterwards ([`give_to_mail_owner`]). Run as anyone else, Dovecot runs
//! entirely as that user and group (no chroot, no privilege changes).
//!
//! # No traffic off this machine
//!
//! Listeners bind 127.0.0.1 only; passdb and userdb are a local file;
//! `hostname` is set so that Dovecot has no reason to resolve its own name;
//! no auth policy server, no winbind, no proxying, no DNS client use.
//!
//! Never used: `login_trusted_networks` (loopback needs no trust), syslog.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// What to install when a Dovecot binary is missing.
pub const DEBIAN_PACKAGES: &str = "dovecot-core dovecot-imapd dovecot-pop3d";

const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Starts that fail because another process took a port between our probe
/// and Dovecot's bind are retried with fresh ports.
const PORT_ATTEMPTS: usize = 5;

/// A Dovecot to be configured and started. Fill the users' Maildirs before
/// [`Setup::start`].
pub struct Setup {
    dir: tempfile::TempDir,
    users: Vec<User>,
    imap: bool,
    pop3: bool,
    tls: bool,
    extra: String,
}

struct User {
    name: String,
    password: String,
    maildir: PathBuf,
    home: PathBuf,
}

/// The ports a running Dovecot listens on (0: not enabled).
#[derive(Debug, Clone, Copy, Default)]
struct Ports {
    imap: u16,
    imaps: u16,
    pop3: u16,
    pop3s: u16,
}

/// A running Dovecot. Dropping it stops it.
pub struct Dovecot {
    child: Option<Child>,
    ports: Ports,
    config: PathBuf,
    log: PathBuf,
    stderr: PathBuf,
    cert: Option<PathBuf>,
    binaries: Binaries,
    // Last: removed after the server is stopped.
    dir: tempfile::TempDir,
}

#[derive(Clone)]
struct Binaries {
    dovecot: PathBuf,
    doveadm: Option<PathBuf>,
}

impl Setup {
    /// A new configuration with no users and no protocols. Fails the test
    /// (naming the Debian packages) when Dovecot is not installed.
    pub fn new() -> Setup {
        find_binaries();
        let dir = tempfile::Builder::new()
            .prefix("ownmail-dovecot-")
            .tempdir()
            .unwrap();
        // The mail owner must be able to walk into mail/ and home/.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        for sub in ["mail", "home"] {
            let p = dir.path().join(sub);
            std::fs::create_dir(&p).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o711)).unwrap();
        }
        Setup {
            dir,
            users: Vec::new(),
            imap: false,
            pop3: false,
            tls: false,
            extra: String::new(),
        }
    }

    /// Serves IMAP (and IMAPS with [`Setup::tls`]).
    pub fn imap(&mut self) -> &mut Setup {
        self.imap = true;
        self
    }

    /// Serves POP3 (and POP3S with [`Setup::tls`]).
    pub fn pop3(&mut self) -> &mut Setup {
        self.pop3 = true;
        self
    }

    /// Adds STARTTLS on the plain ports and the implicit-TLS ports, with a
    /// self-signed certificate for `localhost` and 127.0.0.1 made by
    /// `openssl req` ([`Dovecot::cert`] is the one to trust).
    pub fn tls(&mut self) -> &mut Setup {
        self.tls = true;
        self
    }

    /// Appends raw lines to the configuration (global settings or whole
    /// sections), after everything this module writes.
    pub fn config(&mut self, lines: &str) -> &mut Setup {
        self.extra.push_str(lines);
        self.extra.push('\n');
        self
    }

    /// The temporary folder everything lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Adds a user whose Maildir++ is `<dir>/mail/<name>` (created empty,
    /// owned by [`mail_owner`]), and returns that path.
    pub fn user(&mut self, name: &str, password: &str) -> PathBuf {
        let maildir = self.dir.path().join("mail").join(name);
        std::fs::create_dir(&maildir).unwrap();
        std::fs::set_permissions(&maildir, std::fs::Permissions::from_mode(0o700)).unwrap();
        give_to_mail_owner(&maildir);
        self.user_at(name, password, &maildir);
        maildir
    }

    /// Adds a user whose Maildir++ is `maildir`, wherever it is. It must be
    /// readable and writable by [`mail_owner`] when the server starts (see
    /// [`give_to_mail_owner`]), and so must the folders above it be
    /// searchable.
    pub fn user_at(&mut self, name: &str, password: &str, maildir: &Path) -> &mut Setup {
        // passwd-file fields are ':'-separated; mail_location uses ':' too.
        for (what, value) in [("user name", name), ("password", password)] {
            assert!(
                !value.is_empty() && !value.contains([':', '\n', '\r']),
                "{what} {value:?} cannot go into a passwd-file"
            );
        }
        let maildir = std::path::absolute(maildir).unwrap();
        assert!(
            !maildir.to_string_lossy().contains([':', '\n']),
            "{} cannot go into mail_location",
            maildir.display()
        );
        assert!(
            self.users.iter().all(|u| u.name != name),
            "user {name} added twice"
        );
        let home = self.dir.path().join("home").join(name);
        std::fs::create_dir(&home).unwrap();
        give_to_mail_owner(&home);
        self.users.push(User {
            name: name.to_owned(),
            password: password.to_owned(),
            maildir,
            home,
        });
        self
    }

    /// Writes the configuration, starts `dovecot -F`, and waits until every
    /// port answers. Fails the test, printing the log, if it does not.
    pub fn start(self) -> Dovecot {
        assert!(
            self.imap || self.pop3,
            "enable imap() or pop3() before start()"
        );
        let binaries = find_binaries();
        for (wanted, binary, package) in [
            (self.imap, "imap", "dovecot-imapd"),
            (self.pop3, "pop3", "dovecot-pop3d"),
        ] {
            if wanted && find_libexec(binary).is_none() {
                panic!(
                    "Dovecot's {binary} server is not installed: install the Debian package {package} \
                     (apt-get install {DEBIAN_PACKAGES})"
                );
            }
        }
        let dir = self.dir.path().to_owned();
        let cert = self.tls.then(|| make_certificate(&dir));
        self.write_passwd();

        let config = dir.join("dovecot.conf");
        let log = dir.join("dovecot.log");
        let stderr = dir.join("dovecot.stderr");
        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let ports = self.free_ports();
            std::fs::write(&config, self.render(ports, cert.is_some())).unwrap();
            let _ = std::fs::remove_file(&log);
            let mut child = Command::new(&binaries.dovecot)
                .arg("-F")
                .arg("-c")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&stderr).unwrap())
                // Its own process group, so that stopping it reaches every
                // process it forked.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("{}: {e}", binaries.dovecot.display()));
            match wait_ready(&mut child, ports) {
                Ok(()) => {
                    return Dovecot {
                        child: Some(child),
                        ports,
                        config,
                        log,
                        stderr,
                        cert,
                        binaries,
                        dir: self.dir,
                    };
                }
                Err(why) => {
                    stop_group(child);
                    let text = log_text(&log, &stderr);
                    if !text.contains("Address already in use") {
                        panic!("dovecot did not start: {why}\n--- dovecot log ---\n{text}");
                    }
                    last_failure = text;
                }
            }
        }
        panic!("dovecot could not bind free ports in {PORT_ATTEMPTS} attempts:\n{last_failure}");
    }

    fn write_passwd(&self) {
        let (uid, gid) = mail_owner();
        let mut text = String::new();
        for u in &self.users {
            // user:password:uid:gid:gecos:home:shell:extra fields
            writeln!(
                text,
                "{}:{{PLAIN}}{}:{uid}:{gid}::{}::userdb_mail=maildir:{}:LAYOUT=maildir++",
                u.name,
                u.password,
                u.home.display(),
                u.maildir.display()
            )
            .unwrap();
        }
        let path = self.dir.path().join("passwd");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// Free ports on 127.0.0.1, found by binding port 0. They are released
    /// just before Dovecot binds them; a lost race is retried by `start`.
    fn free_ports(&self) -> Ports {
        let take = |wanted: bool| {
            wanted.then(|| {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                let port = l.local_addr().unwrap().port();
                (l, port)
            })
        };
        let held = [
            take(self.imap),
            take(self.imap && self.tls),
            take(self.pop3),
            take(self.pop3 && self.tls),
        ];
        let port = |i: usize| held[i].as_ref().map_or(0, |(_, p)| *p);
        Ports {
            imap: port(0),
            imaps: port(1),
            pop3: port(2),
            pop3s: port(3),
        }
    }

    fn render(&self, ports: Ports, tls: bool) -> String {
        let dir = self.dir.path();
        let d = |sub: &str| dir.join(sub).display().to_string();
        let (uid, gid) = mail_owner();
        let root = is_root();
        // Unique per server, so that process titles tell test servers apart.
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let instance = format!(
            "ownmail-test-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        );
        let mut protocols = Vec::new();
        if self.imap {
            protocols.push("imap");
        }
        if self.pop3 {
            protocols.push("pop3");
        }

        let mut c = String::new();
        let mut line = |s: &str| {
            c.push_str(s);
            c.push('\n');
        };
        line("# Written by tests/support/dovecot.rs; nothing here is read from /etc/dovecot.");
        line(&format!("instance_name = {instance}"));
        line(&format!("base_dir = {}", d("run")));
        line(&format!("state_dir = {}", d("state")));
        line(&format!("log_path = {}", d("dovecot.log")));
        // Dovecot asks for its own domain name when this is empty.
        line("hostname = localhost");
        line("postmaster_address = postmaster@localhost");
        line(&format!("protocols = {}", protocols.join(" ")));
        line("listen = 127.0.0.1");
        line("auth_mechanisms = plain login");
        line("disable_plaintext_auth = no");
        line("auth_verbose = yes");
        line("auth_use_winbind = no");
        line("auth_policy_server_url =");
        line("mail_max_userip_connections = 1000");
        line(&format!("first_valid_uid = {}", uid.max(1)));
        line("last_valid_uid = 0");
        if root {
            line("default_internal_user = dovecot");
            line("default_login_user = dovenull");
        } else {
            let (me, group) = (user_name(uid), group_name(gid));
            line(&format!("default_internal_user = {me}"));
            line(&format!("default_internal_group = {group}"));
            line(&format!("default_login_user = {me}"));
        }
        if tls {
            line("ssl = yes");
            line(&format!("ssl_cert = <{}", d("cert.pem")));
            line(&format!("ssl_key = <{}", d("key.pem")));
        } else {
            line("ssl = no");
        }
        line("passdb {");
        line("  driver = passwd-file");
        line(&format!(
            "  args = scheme=PLAIN username_format=%u {}",
            d("passwd")
        ));
        line("}");
        line("userdb {");
        line("  driver = passwd-file");
        line(&format!("  args = username_format=%u {}", d("passwd")));
        line("}");
        line("namespace inbox {");
        line("  inbox = yes");
        line("  separator = /");
        line("  prefix =");
        line("}");
        let listeners = [
            ("imap-login", "imap", ports.imap, "imaps", ports.imaps),
            ("pop3-login", "pop3", ports.pop3, "pop3s", ports.pop3s),
        ];
        for (service, plain, plain_port, secure, secure_port) in listeners {
            line(&format!("service {service} {{"));
            if !root {
                line("  chroot =");
            }
            for (name, port) in [(plain, plain_port), (secure, secure_port)] {
                line(&format!("  inet_listener {name} {{"));
                line("    address = 127.0.0.1");
                // Port 0 disables a listener.
                line(&format!("    port = {port}"));
                line("  }");
            }
            line("}");
        }
        if root {
            // The passwd-file is in a folder only root may read.
            line("service auth {\n  user = root\n}");
            line("service auth-worker {\n  user = root\n}");
        } else {
            line("service anvil {\n  chroot =\n}");
        }
        c.push_str(&self.extra);
        c
    }
}

impl Dovecot {
    pub fn imap_port(&self) -> u16 {
        assert!(self.ports.imap != 0, "IMAP is not enabled");
        self.ports.imap
    }

    pub fn imaps_port(&self) -> u16 {
        assert!(self.ports.imaps != 0, "IMAP with TLS is not enabled");
        self.ports.imaps
    }

    pub fn pop3_port(&self) -> u16 {
        assert!(self.ports.pop3 != 0, "POP3 is not enabled");
        self.ports.pop3
    }

    pub fn pop3s_port(&self) -> u16 {
        assert!(self.ports.pop3s != 0, "POP3 with TLS is not enabled");
        self.ports.pop3s
    }

    /// The self-signed certificate (PEM) the server presents, for clients
    /// to trust.
    pub fn cert(&self) -> &Path {
        self.cert.as_deref().expect("TLS is not enabled")
    }

    /// The temporary folder: configuration, log, passwd-file, and the mail
    /// of users added with [`Setup::user`].
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The PID of the master process (and its process group).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `doveadm -c <our config>`, for looking at what the server sees.
    pub fn doveadm(&self) -> Command {
        let path = self.binaries.doveadm.as_ref().unwrap_or_else(|| {
            panic!("doveadm is not installed: install the Debian package dovecot-core")
        });
        let mut cmd = Command::new(path);
        cmd.arg("-c").arg(&self.config);
        cmd
    }

    /// Everything the server logged so far (its log file, then anything it
    /// printed before it opened the log).
    pub fn log_text(&self) -> String {
        log_text(&self.log, &self.stderr)
    }

    /// Log lines at level Warning or above, for tests that assert the
    /// server found nothing wrong with what it was given.
    pub fn log_problems(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| {
                [": Warning: ", ": Error: ", ": Fatal: ", ": Panic: "]
                    .iter()
                    .any(|level| l.contains(level))
                    || l.starts_with("Fatal: ")
                    || l.starts_with("Error: ")
            })
            .map(str::to_owned)
            .collect()
    }

    /// Stops the server and waits until every one of its processes is gone.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(child) = self.child.take() {
            stop_group(child);
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.shutdown();
        if std::thread::panicking() {
            eprintln!(
                "--- dovecot log ({}) ---\n{}--- end of dovecot log ---",
                self.log.display(),
                self.log_text()
            );
        }
    }
}

/// The uid and gid Dovecot accesses mail as: ours, or `nobody`'s when we
/// are root (Dovecot never accesses mail as uid 0).
pub fn mail_owner() -> (u32, u32) {
    if !is_root() {
        // SAFETY: these cannot fail.
        return unsafe { (libc::geteuid(), libc::getegid()) };
    }
    // SAFETY: a NUL-terminated name; the result is read before any other
    // passwd lookup can overwrite it.
    unsafe {
        let pw = libc::getpwnam(c"nobody".as_ptr());
        if pw.is_null() {
            (65534, 65534)
        } else {
            ((*pw).pw_uid, (*pw).pw_gid)
        }
    }
}

/// Makes `cmd` run as [`mail_owner`] (when we are root), so that what it
/// writes into a Maildir is what Dovecot can read and change.
pub fn as_mail_owner(cmd: &mut Command) -> &mut Command {
    if is_root() {
        let (uid, gid) = mail_owner();
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// Gives a file or a whole tree to [`mail_owner`] (a no-op unless root).
pub fn give_to_mail_owner(path: &Path) {
    if !is_root() {
        return;
    }
    let (uid, gid) = mail_owner();
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for entry in std::fs::read_dir(path).unwrap() {
            give_to_mail_owner(&entry.unwrap().path());
        }
    }
}

pub fn is_root() -> bool {
    // SAFETY: cannot fail.
    unsafe { libc::geteuid() == 0 }
}

pub fn user_name(uid: u32) -> String {
    // SAFETY: as in mail_owner.
    unsafe {
        let pw = libc::getpwuid(uid);
        assert!(
            !pw.is_null(),
            "uid {uid} has no name; Dovecot needs one for default_internal_user"
        );
        std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

fn group_name(gid: u32) -> String {
    // SAFETY: as in mail_owner.
    unsafe {
        let gr = libc::getgrgid(gid);
        assert!(
            !gr.is_null(),
            "gid {gid} has no name; Dovecot needs one for default_internal_group"
        );
        std::ffi::CStr::from_ptr((*gr).gr_name)
            .to_string_lossy()
            .into_owned()
    }
}

/// Finds `dovecot` (and `doveadm`) in PATH or the sbin folders a non-root
/// PATH lacks; a missing `dovecot` fails the test naming the package.
fn find_binaries() -> Binaries {
    let find = |name: &str| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    };
    let dovecot = find("dovecot").unwrap_or_else(|| {
        panic!(
            "dovecot is not installed (not in PATH, /usr/sbin or /usr/local/sbin): \
             install the Debian packages {DEBIAN_PACKAGES}"
        )
    });
    Binaries {
        dovecot,
        doveadm: find("doveadm"),
    }
}

/// A server binary in Dovecot's libexec folder (Debian's, or upstream's).
fn find_libexec(name: &str) -> Option<PathBuf> {
    [
        "/usr/lib/dovecot",
        "/usr/libexec/dovecot",
        "/usr/local/libexec/dovecot",
    ]
    .iter()
    .map(|d| Path::new(d).join(name))
    .find(|p| p.is_file())
}

/// A self-signed certificate for localhost and 127.0.0.1 (P-256: quick to
/// make), written as cert.pem and key.pem, readable by root only.
pub fn make_certificate(dir: &Path) -> PathBuf {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| {
            panic!("openssl: {e}: install the Debian package openssl");
        });
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    cert
}

/// Whether a port accepts a connection (and, for a plain port, greets
/// with `greeting`).
pub fn probe(port: u16, greeting: Option<&[u8]>) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let Some(greeting) = greeting else {
        return true;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut line = Vec::new();
    BufReader::new(stream).read_until(b'\n', &mut line).is_ok() && line.starts_with(greeting)
}

/// Waits until every enabled port answers (a plain port with its greeting).
fn wait_ready(child: &mut Child, ports: Ports) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let pending = [
        (ports.imap, Some(&b"* OK"[..])),
        (ports.imaps, None),
        (ports.pop3, Some(&b"+OK"[..])),
        (ports.pop3s, None),
    ];
    for (port, greeting) in pending.into_iter().filter(|(p, _)| *p != 0) {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Err(format!("it exited with {status}"));
            }
            if Instant::now() > deadline {
                return Err(format!("port {port} did not answer in {START_TIMEOUT:?}"));
            }
            if probe(port, greeting) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// Stops a server we started: SIGTERM to its master (which stops its
/// children cleanly), then SIGKILL to whatever is left of its process group
/// after [`STOP_TIMEOUT`].
pub fn stop_group(mut child: Child) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: the PID of a child we spawned and have not reaped yet.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + STOP_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            signal_group(pid, libc::SIGKILL);
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // A child the master did not wait for would still be in the group.
    let deadline = Instant::now() + STOP_TIMEOUT;
    while group_alive(pid) {
        if Instant::now() > deadline {
            signal_group(pid, libc::SIGKILL);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn log_text(log: &Path, stderr: &Path) -> String {
    let mut text = std::fs::read_to_string(log).unwrap_or_default();
    let early = std::fs::read_to_string(stderr).unwrap_or_default();
    if !early.trim().is_empty() {
        text.push_str("--- stderr ---\n");
        text.push_str(&early);
    }
    text
}

fn signal_group(pgid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: a process group this module created (pgid = the PID of the
    // child it spawned with process_group(0)); never 0 or 1.
    assert!(pgid > 1);
    unsafe {
        libc::kill(-pgid, signal);
    }
}

fn group_alive(pgid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(-pgid, 0) == 0 }
}
