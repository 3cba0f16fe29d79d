//! Postfix's `smtp-sink` (Debian package postfix): an SMTP server that
//! greets with `220`, accepts every message and throws it away, on
//! 127.0.0.1 and a high port. Only the binary is used: no Postfix
//! configuration, queue or service is involved.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::dovecot::{is_root, probe, stop_group};
use super::sshd::free_port;

pub const SMTP_SINK: &str = "/usr/sbin/smtp-sink";

/// A running smtp-sink. Dropping it stops it.
pub struct SmtpSink {
    child: Option<Child>,
    port: u16,
}

impl SmtpSink {
    /// Starts one; fails the test (naming the package) when it is missing.
    pub fn start() -> SmtpSink {
        for _ in 0..5 {
            // The port may be taken meanwhile: another one.
            if let Some(sink) = SmtpSink::try_start(free_port()) {
                return sink;
            }
        }
        panic!("smtp-sink could not start");
    }

    /// Starts one on `port` (e.g. again, after a stopped one); fails the
    /// test when the port is taken.
    pub fn start_on(port: u16) -> SmtpSink {
        SmtpSink::try_start(port).unwrap_or_else(|| panic!("smtp-sink could not start on {port}"))
    }

    fn try_start(port: u16) -> Option<SmtpSink> {
        assert!(
            Path::new(SMTP_SINK).exists(),
            "{SMTP_SINK} is missing: install the Debian package postfix (scripts/install-peers.sh)"
        );
        let mut cmd = Command::new(SMTP_SINK);
        // Run as root, it must be told whom to become (-u).
        if is_root() {
            cmd.args(["-u", "nobody"]);
        }
        let mut child = cmd
            .args(["-h", "sink.test", &format!("127.0.0.1:{port}"), "64"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {SMTP_SINK}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait().unwrap().is_some() {
                return None;
            }
            if probe(port, Some(b"220 ")) {
                return Some(SmtpSink {
                    child: Some(child),
                    port,
                });
            }
            assert!(
                Instant::now() < deadline,
                "smtp-sink did not greet on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_group(child);
        }
    }
}
