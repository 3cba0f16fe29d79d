//! Helpers shared by the integration tests: the real binary, a scratch
//! configuration, and Maildir inspection.
#![allow(dead_code)]

pub mod dovecot;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn ownmail() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ownmail"));
    // Tests must not pick up a configuration from the machine or the user.
    cmd.env_remove("OWNMAIL_CONFIG")
        .env_remove("SENDER")
        .env_remove("RECIPIENT")
        .env("XDG_CONFIG_HOME", "/nonexistent");
    cmd
}

/// Runs the binary with `stdin` as input.
pub fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A refused message may close stdin early; that is not the test's failure.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

/// A scratch folder with an ownmail.yaml whose data lives beside it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ownmail.yaml"),
            "hostname: mail.example.org\ndomains: [example.org]\ndata_dir: data\n",
        )
        .unwrap();
        Scratch { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("ownmail.yaml")
    }

    pub fn cmd(&self) -> Command {
        let mut c = ownmail();
        c.arg("--config").arg(self.config());
        c
    }

    pub fn add_user(&self, name: &str, password: &str) {
        let out = run(
            self.cmd().args(["user", "add", name, "--password-stdin"]),
            format!("{password}\n").as_bytes(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.path().join("data/mail").join(user)
    }
}

/// Every message file in a folder's new/ and cur/.
pub fn messages(folder: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["new", "cur"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(folder.join(sub)).ok())
        .flatten()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}
