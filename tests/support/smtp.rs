//! A real `ownmail serve-smtp` on loopback high ports, with a self-signed
//! certificate made by openssl for the test, and users alice and bob
//! (password `secret`). Peers (swaks, smtp-sink) are found on PATH; a
//! missing one fails the test with the package to install.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::Scratch;

pub const PASSWORD: &str = "secret";

/// A free TCP port on loopback (bound, then released) for a server the
/// test starts. Picked below the kernel's ephemeral range: a port the
/// kernel handed out (`bind` to port 0) is also the kind it gives the
/// outgoing connections of the tests running beside this one, and one of
/// those took it before the server could bind it ("nothing listens").
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768)
        .max(11000);
    let span = u64::from(low - 10000);
    let mut seed = std::collections::hash_map::RandomState::new().build_hasher();
    seed.write_u32(std::process::id());
    let mut n = seed.finish();
    // Never the same port twice in one test binary: two servers of one
    // test would collide.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let port = 10000 + (n % span) as u16;
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
    }
    panic!("no free port between 10000 and {low} on 127.0.0.1")
}

/// Waits until something accepts on `port`.
pub fn wait_port(port: u16) {
    wait_port_on("127.0.0.1", port)
}

/// Waits until something accepts on `host:port`.
pub fn wait_port_on(host: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect((host, port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Fails (never skips) when a peer program is missing.
pub fn require(program: &str, package: &str) -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/bin"])
    {
        let p = Path::new(dir).join(program);
        if p.is_file() {
            return p;
        }
    }
    panic!("{program} is not installed: run scripts/install-peers.sh (Debian package {package})");
}

/// A self-signed certificate and key for `mx.example.org` in `dir`.
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    require("openssl", "openssl");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    super::succeed(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            ])
            .arg("/CN=mx.example.org")
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    (cert, key)
}

pub struct Server {
    pub scratch: Scratch,
    pub child: Option<Child>,
    pub port: u16,
    /// Where `port` listens.
    pub host: String,
    pub submission: u16,
    pub submissions: u16,
    /// The `smtp:` lines added to the configuration.
    pub extra: String,
}

impl Server {
    /// Configures and starts a server; `extra` is more YAML under `smtp:`
    /// (indented two spaces), `top` more at the top level.
    pub fn start(extra: &str, top: &str) -> Server {
        Server::start_as("example.org", "127.0.0.1", free_port(), extra, top)
    }

    /// A server for `domain` whose port-25 listener is `host:port`. The
    /// other ports are picked free, and another test may take one before
    /// the server binds it: then the start is tried again with new ones.
    pub fn start_as(domain: &str, host: &str, port: u16, extra: &str, top: &str) -> Server {
        let mut attempt = 0;
        loop {
            match Server::try_start_as(domain, host, port, extra, top) {
                Ok(s) => return s,
                Err(why) if attempt < 4 && why.contains("cannot listen") => attempt += 1,
                Err(why) => panic!("serve-smtp did not start: {why}"),
            }
        }
    }

    fn try_start_as(
        domain: &str,
        host: &str,
        port: u16,
        extra: &str,
        top: &str,
    ) -> Result<Server, String> {
        let scratch = Scratch::new();
        // Tests never ask a DNS server off this machine: without a relay or
        // servers of the test's own, MX lookups go to a loopback port where
        // nobody answers, so mail for elsewhere stays queued (a temporary
        // failure), whatever the machine's resolver would have said.
        let extra = if extra.contains("relay:") || extra.contains("dns_servers:") {
            extra.to_owned()
        } else {
            format!("{extra}  dns_servers: ['127.0.0.1:{}']\n", free_port())
        };
        let (cert, key) = self_signed(scratch.dir.path());
        let (submission, submissions) = (free_port(), free_port());
        std::fs::write(
            scratch.config(),
            format!(
                "hostname: mx.{domain}\ndomains: [{domain}]\ndata_dir: data\ntls:\n  cert: {}\n  key: {}\n{top}smtp:\n  listen: ['{host}:{port}']\n  submission: ['127.0.0.1:{submission}']\n  submissions: ['127.0.0.1:{submissions}']\n{extra}",
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        scratch.add_user("alice", PASSWORD);
        scratch.add_user("bob", PASSWORD);
        let mut s = Server {
            scratch,
            child: None,
            port,
            host: host.to_owned(),
            submission,
            submissions,
            extra: extra.to_owned(),
        };
        s.try_spawn()?;
        Ok(s)
    }

    /// Starts (or restarts) the process.
    pub fn spawn(&mut self) {
        if let Err(why) = self.try_spawn() {
            panic!("serve-smtp did not start: {why}");
        }
    }

    /// Starts the process and waits for its ports; the reason and its log
    /// when it exits first or does not listen within 20 s.
    fn try_spawn(&mut self) -> Result<(), String> {
        let child = self
            .scratch
            .cmd()
            .args(["-v", "serve-smtp"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.scratch.dir.path().join("server.log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        for (host, port) in [
            (self.host.clone(), self.port),
            ("127.0.0.1".to_owned(), self.submission),
            ("127.0.0.1".to_owned(), self.submissions),
        ] {
            while std::net::TcpStream::connect((host.as_str(), port)).is_err() {
                let child = self.child.as_mut().expect("just spawned");
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("it {status}:\n{}", self.log()));
                }
                if Instant::now() >= deadline {
                    return Err(format!("nothing listens on {port}:\n{}", self.log()));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.scratch.dir.path().join("server.log")).unwrap_or_default()
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap()
    }

    /// SIGKILL: a crash.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn inbox(&self, user: &str) -> Vec<String> {
        super::messages(&self.scratch.maildir(user))
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    /// Runs swaks against this server; the arguments follow `--server`.
    pub fn swaks(&self, port: u16, args: &[&str]) -> Output {
        let swaks = require("swaks", "swaks");
        Command::new(swaks)
            .arg("--server")
            .arg(format!("127.0.0.1:{port}"))
            .args(["--helo", "client.example", "--timeout", "20"])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The SMTP transcript swaks printed.
pub fn transcript(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
