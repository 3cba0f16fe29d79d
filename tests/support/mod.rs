//! Helpers shared by the integration tests: the real binary, a scratch
//! configuration, and Maildir inspection.
#![allow(dead_code)]

pub mod dovecot;
pub mod fetch;
pub mod postfix;
pub mod smtp;
pub mod smtp_sink;
pub mod sshd;
pub mod tunnel;

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

/// Runs `cmd` to its end and asserts it succeeded, naming the command and
/// what it said on stderr when it did not.
pub fn succeed(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{:?}: {e}", cmd.get_program()));
    assert!(
        out.status.success(),
        "{:?} {:?}: {}\n{}",
        cmd.get_program(),
        cmd.get_args().collect::<Vec<_>>(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
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

/// The SpamAssassin corpus folder, fetched beforehand by `scripts/corpus.sh`
/// (which `scripts/test.sh` runs) into the git-ignored cache. Tests never
/// fetch it themselves, since no test may reach off this machine; a missing
/// corpus fails the test, it never skips.
pub fn corpus_dir() -> PathBuf {
    let cache = std::env::var_os("OWNMAIL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache"));
    let data = cache.join("corpus/package/data");
    assert!(
        data.join(".complete").exists(),
        "the SpamAssassin corpus is not in {}: run scripts/corpus.sh first",
        data.display()
    );
    data
}

/// Every corpus message file (`*.txt`), sorted: 6,046 of them.
pub fn corpus_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for group in std::fs::read_dir(corpus_dir()).unwrap() {
        let group = group.unwrap().path();
        if !group.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&group).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "txt") {
                files.push(f);
            }
        }
    }
    files.sort();
    assert_eq!(files.len(), 6046, "the corpus should have 6,046 messages");
    files
}

/// A small deterministic generator (xorshift64*), so randomised tests can
/// print their seed and be replayed.
pub struct Rng(pub u64);

impl Rng {
    pub fn from_time() -> Rng {
        let seed = std::env::var("OWNMAIL_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("random seed: {seed} (replay with OWNMAIL_TEST_SEED={seed})");
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
