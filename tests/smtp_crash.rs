//! `kill -9` of `serve-smtp` in the middle of a load (8 sessions sending,
//! half the messages local, half through the queue to an `smtp-sink`
//! smarthost), then a restart: every message that got a `250` is in the
//! Maildir exactly once, or at the smarthost. The moment of the kill is
//! random (the seed is printed; OWNMAIL_TEST_SEED replays it).
//!
//! Exactly once at the smarthost too, except one case SMTP cannot avoid:
//! a kill after the smarthost's `250` to our DATA and before our queue
//! records it sends that message again after the restart (RFC 1047). The
//! test allows that duplicate and no other.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::Rng;
use support::smtp::*;

const CLIENT: &str = r#"
import smtplib, sys, threading
port, sessions, per = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
lock = threading.Lock()
def run(s):
    try:
        c = smtplib.SMTP("127.0.0.1", port, timeout=30)
        c.ehlo("load.example")
        for n in range(per):
            tag = "crash-%d-%d" % (s, n)
            rcpt = "alice@example.org" if n % 2 == 0 else "r%d@remote.example" % s
            body = ("Subject: %s\r\n\r\n" % tag + "x" * 2000 + "\r\n").encode()
            c.sendmail("sender@example.net", [rcpt], body)
            with lock:
                print("OK %s %s" % (tag, rcpt), flush=True)
    except Exception as e:
        with lock:
            print("ERR %s" % e, flush=True)
ts = [threading.Thread(target=run, args=(s,)) for s in range(sessions)]
for t in ts: t.start()
for t in ts: t.join()
"#;

#[test]
fn a_killed_server_loses_no_acknowledged_message() {
    require("python3", "python3");
    let mut rng = Rng::from_time();
    let relay_port = free_port();
    let dump = tempfile::tempdir().unwrap();
    Command::new("chmod")
        .arg("777")
        .arg(dump.path())
        .status()
        .unwrap();
    let sink = Command::new(require("smtp-sink", "postfix"))
        .args(["-u", "nobody", "-d"])
        .arg(format!("{}/%M.", dump.path().display()))
        .arg(format!("127.0.0.1:{relay_port}"))
        .arg("50")
        .spawn()
        .unwrap();
    let mut sink = KillOnDrop(sink);
    wait_port(relay_port);
    let mut s = Server::start(
        &format!("  relay: {{host: 127.0.0.1, port: {relay_port}, tls: none}}\n"),
        "",
    );

    let mut client = Command::new("python3")
        .arg("-c")
        .arg(CLIENT)
        .args([s.port.to_string().as_str(), "8", "400"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Let some messages through (however slow the machine), then kill at
    // a random moment after.
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        let stdout = client.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(l);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines.lock().unwrap().len() < 20 {
        assert!(
            Instant::now() < deadline,
            "the load never started\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(rng.below(400)));
    s.kill9();
    eprintln!("killed after {} acknowledged", lines.lock().unwrap().len());
    let _ = client.kill();
    let _ = client.wait();
    reader.join().unwrap();
    let out = lines.lock().unwrap().join("\n");
    let acked: Vec<(&str, &str)> = out
        .lines()
        .filter_map(|l| l.strip_prefix("OK "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    assert!(
        acked.len() >= 10,
        "too few messages before the kill to test anything:\n{out}"
    );
    assert!(acked.len() < 3200, "the kill came after the load ended");

    // Restart; the queue survives and is sent.
    s.spawn();
    let out = s.scratch.cmd().args(["queue", "flush"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut local: HashMap<String, usize> = HashMap::new();
    for m in s.inbox("alice") {
        if let Some(tag) = m.lines().find_map(|l| l.strip_prefix("Subject: ")) {
            *local.entry(tag.to_owned()).or_default() += 1;
        }
    }
    let mut remote: HashMap<String, usize> = HashMap::new();
    for e in std::fs::read_dir(dump.path()).unwrap() {
        let m = std::fs::read_to_string(e.unwrap().path()).unwrap();
        if let Some(tag) = m.lines().find_map(|l| l.strip_prefix("Subject: ")) {
            *remote.entry(tag.to_owned()).or_default() += 1;
        }
    }
    let mut duplicates = 0;
    for (tag, rcpt) in &acked {
        if rcpt.ends_with("@example.org") {
            assert_eq!(
                local.get(*tag),
                Some(&1),
                "{tag}: acknowledged, so exactly once in the Maildir"
            );
        } else {
            let n = remote.get(*tag).copied().unwrap_or(0);
            assert!(
                n >= 1,
                "{tag}: acknowledged but never reached the smarthost"
            );
            duplicates += n - 1;
        }
    }
    assert!(
        local.values().all(|&n| n == 1),
        "a local message twice: {local:?}"
    );
    assert!(duplicates <= 1, "{duplicates} duplicates at the smarthost");
    let leftover = s.scratch.cmd().args(["queue", "list"]).output().unwrap();
    assert!(
        leftover.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&leftover.stdout)
    );
    let _ = sink.0.kill();
    let _ = std::io::stderr().flush();
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
