//! An OpenSSH server of the test's own, for `tunnel ssh`: Debian's
//! `/usr/sbin/sshd` on 127.0.0.1, a high port, with a host key, a user key,
//! an authorized_keys and a known_hosts made for the test in one temporary
//! folder. Nothing is read from /etc/ssh or ~/.ssh, by the server or (with
//! [`Sshd::ssh_options`]) by the client.
//!
//! ```ignore
//! let sshd = sshd::Sshd::start();
//! let tunnel = tunnel::Tunnel::ssh(&sshd, &["--smtp", "2525:25"]);
//! ```
//!
//! The server logs (`LogLevel VERBOSE`) to a file that is printed when the
//! [`Sshd`] is dropped during a panic. It is stopped on drop (SIGTERM, then
//! SIGKILL to its process group).
//!
//! Running as root: sshd wants `/run/sshd` (its privilege separation
//! folder), which Debian's service creates at boot; it is created here when
//! missing. `StrictModes no`, because the temporary folder's owner and modes
//! are not a home directory's; `PermitRootLogin prohibit-password`, keys
//! only. Password and keyboard-interactive logins are off; PAM is not used.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::dovecot::{is_root, probe, stop_group, user_name};

/// What to install when OpenSSH is missing.
pub const DEBIAN_PACKAGES: &str = "openssh-server openssh-client";
pub const SSHD: &str = "/usr/sbin/sshd";

const START_TIMEOUT: Duration = Duration::from_secs(20);
const PORT_ATTEMPTS: usize = 5;

/// A running sshd. Dropping it stops it.
pub struct Sshd {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
    user: String,
    // Last: removed after the server is stopped.
    dir: tempfile::TempDir,
}

impl Sshd {
    /// Starts a server that lets the current user in with [`Sshd::user_key`].
    /// Fails the test, naming the Debian packages, when OpenSSH is missing.
    pub fn start() -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install the Debian packages {DEBIAN_PACKAGES} (scripts/install-peers.sh)"
        );
        let dir = tempfile::Builder::new()
            .prefix("ownmail-sshd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("user_key"));
        keygen(&d.join("stranger_key"));
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
        if is_root() {
            std::fs::create_dir_all("/run/sshd").unwrap();
        }
        let user = user_name(unsafe { libc::geteuid() });
        let log = d.join("sshd.log");
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            std::fs::write(d.join("sshd_config"), config(d, port)).unwrap();
            // known_hosts names a non-22 port as [host]:port.
            let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
            let mut fields = host_pub.split_whitespace();
            let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
            std::fs::write(
                d.join("known_hosts"),
                format!("[127.0.0.1]:{port} {kind} {key}\n"),
            )
            .unwrap();
            let mut child = Command::new(SSHD)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(d.join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {SSHD}: {e}"));
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    if text.contains("Address already in use") {
                        break;
                    }
                    panic!("sshd exited with {status} at start:\n{text}");
                }
                if probe(port, Some(b"SSH-2.0-")) {
                    return Sshd {
                        child: Some(child),
                        port,
                        log,
                        user,
                        dir,
                    };
                }
                assert!(
                    Instant::now() < deadline,
                    "sshd did not answer on port {port} in {START_TIMEOUT:?}:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("sshd found no free port in {PORT_ATTEMPTS} attempts");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `USER@127.0.0.1`.
    pub fn destination(&self) -> String {
        format!("{}@127.0.0.1", self.user)
    }

    /// The key the server lets in.
    pub fn user_key(&self) -> PathBuf {
        self.dir.path().join("user_key")
    }

    /// A key the server does not know.
    pub fn stranger_key(&self) -> PathBuf {
        self.dir.path().join("stranger_key")
    }

    /// known_hosts holding this server's host key.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// The ssh client options that reach this server with the user key and
    /// its known host key, and nothing from the machine's or user's files.
    pub fn ssh_options(&self) -> Vec<String> {
        self.ssh_options_with(&self.user_key(), &self.known_hosts())
    }

    /// As [`Sshd::ssh_options`], with another key or known_hosts.
    pub fn ssh_options_with(&self, key: &Path, known_hosts: &Path) -> Vec<String> {
        vec![
            format!("Port={}", self.port),
            format!("IdentityFile={}", key.display()),
            "IdentitiesOnly=yes".into(),
            "IdentityAgent=none".into(),
            format!("UserKnownHostsFile={}", known_hosts.display()),
            "GlobalKnownHostsFile=/dev/null".into(),
            "StrictHostKeyChecking=yes".into(),
            "UpdateHostKeys=no".into(),
        ]
    }

    /// `--ssh-option OPT` for each of `options`.
    pub fn tunnel_args(options: &[String]) -> Vec<String> {
        options
            .iter()
            .flat_map(|o| ["--ssh-option".to_owned(), o.clone()])
            .collect()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_group(child);
        }
        if std::thread::panicking() {
            eprintln!("--- sshd log ---\n{}", self.log_text());
        }
    }
}

fn config(d: &Path, port: u16) -> String {
    let p = |name: &str| d.join(name).display().to_string();
    format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {host_key}\n\
         PidFile {pid}\n\
         AuthorizedKeysFile {authorized}\n\
         StrictModes no\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         AllowTcpForwarding local\n\
         X11Forwarding no\n\
         PermitTTY no\n\
         UseDNS no\n\
         MaxStartups 100\n\
         LogLevel VERBOSE\n",
        host_key = p("host_key"),
        pid = p("sshd.pid"),
        authorized = p("authorized_keys"),
    )
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ownmail-test", "-f"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("ssh-keygen: {e}: install the Debian package openssh-client"));
    assert!(
        out.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub use super::smtp::free_port;
