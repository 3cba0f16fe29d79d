//! Issue 8, `tunnel ssh` against real peers: Debian's sshd started by the
//! test (its own host key, user key and known_hosts), forwarding to
//! Dovecot's IMAP and to Postfix's smtp-sink. swaks submits through the
//! SMTP forward, Python's imaplib reads mail through the IMAP forward, and
//! the tunnel comes back by itself when its ssh is killed or frozen.
//!
//! The same against our own serve-smtp and serve-imap: tests/tunnel_e2e.rs.
//!
//! The peers must be installed (a missing one fails the test): openssh-server,
//! openssh-client, dovecot-imapd, postfix (smtp-sink), swaks, python3.
//! Nothing leaves 127.0.0.1.

mod support;

use std::time::{Duration, Instant};

use support::dovecot;
use support::smtp_sink::SmtpSink;
use support::sshd::{Sshd, free_port};
use support::tunnel::{ImapClient, Tunnel, alive, decode_messages, greeting, imap_read_all, swaks};

const USER: &str = "alice";
const PASSWORD: &str = "tunnel-secret";
const MESSAGE: &[u8] =
    b"From: bob@example.net\r\nTo: alice@example.org\r\nSubject: over ssh\r\n\r\nRead through the tunnel.\r\n";
/// How long a tunnel may take to come up at first (ssh's handshake).
const UP: Duration = Duration::from_secs(15);

fn dovecot_with_one_message() -> dovecot::Dovecot {
    let mut setup = dovecot::Setup::new();
    setup.imap();
    let maildir = setup.user(USER, PASSWORD);
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    std::fs::write(maildir.join("new/1700000000.M1P1.test"), MESSAGE).unwrap();
    dovecot::give_to_mail_owner(&maildir);
    setup.start()
}

/// `tunnel ssh` through `sshd` with an SMTP forward to `smtp_remote` and
/// an IMAP forward to `imap_remote` (ports on the server), from two free
/// local ports: the tunnel and those two ports.
fn smtp_and_imap(sshd: &Sshd, smtp_remote: u16, imap_remote: u16) -> (Tunnel, u16, u16) {
    let (smtp_local, imap_local) = (free_port(), free_port());
    let tunnel = Tunnel::ssh(
        sshd,
        &[
            "--smtp",
            &format!("{smtp_local}:{smtp_remote}"),
            "--imap",
            &format!("{imap_local}:{imap_remote}"),
        ],
    );
    (tunnel, smtp_local, imap_local)
}

#[test]
fn swaks_and_imap_go_through_and_the_tunnel_is_back_within_5_s_after_ssh_dies() {
    let imap = dovecot_with_one_message();
    let sink = SmtpSink::start();
    let sshd = Sshd::start();
    let (mut tunnel, smtp_local, imap_local) = smtp_and_imap(&sshd, sink.port(), imap.imap_port());
    tunnel.wait_greeting(smtp_local, "220 sink.test", UP);
    tunnel.wait_greeting(imap_local, "* OK", UP);
    // The settings to type into a mail client, exactly.
    let settings = tunnel.stdout();
    assert!(
        settings.contains(&format!(
            "Outgoing mail (SMTP): server 127.0.0.1, port {smtp_local}, connection security: none"
        )) && settings.contains(&format!(
            "Incoming mail (IMAP): server 127.0.0.1, port {imap_local}, connection security: none"
        )),
        "{settings}"
    );
    // The forwards really lead through sshd (its log names them).
    let log = sshd.log_text();
    assert!(
        log.contains(&format!(
            "Accepted publickey for {}",
            sshd.destination().split('@').next().unwrap()
        )),
        "{log}"
    );

    let sent = swaks(smtp_local, "bob@example.net", "alice@example.org", &[]);
    let transcript = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success(),
        "swaks: {transcript}{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(transcript.contains("<-  220 sink.test"), "{transcript}");
    assert!(
        transcript.contains("-> Subject: through the tunnel"),
        "{transcript}"
    );
    let read = decode_messages(&imap_read_all(
        ImapClient::Plain(imap_local),
        USER,
        PASSWORD,
    ));
    assert_eq!(read, vec![MESSAGE.to_vec()]);

    // ssh dies: the tunnel is back within 5 seconds, with a new ssh.
    let first = tunnel.ssh_pid(Duration::ZERO);
    // SAFETY: the ssh process the tunnel started, found by its parent.
    unsafe { libc::kill(first as libc::pid_t, libc::SIGKILL) };
    let killed = Instant::now();
    while greeting(imap_local).is_some() {
        assert!(
            killed.elapsed() < Duration::from_secs(2),
            "the forward outlived ssh"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    tunnel.wait_greeting(imap_local, "* OK", Duration::from_secs(5));
    tunnel.wait_greeting(
        smtp_local,
        "220 ",
        Duration::from_secs(5) - killed.elapsed().min(Duration::from_secs(5)),
    );
    let back = killed.elapsed();
    assert!(back < Duration::from_secs(5), "back after {back:?}");
    let second = tunnel.ssh_pid(Duration::ZERO);
    assert_ne!(first, second);
    assert!(
        tunnel.stderr().contains("ended (killed by signal 9)"),
        "{}",
        tunnel.stderr()
    );
    let read = decode_messages(&imap_read_all(
        ImapClient::Plain(imap_local),
        USER,
        PASSWORD,
    ));
    assert_eq!(read, vec![MESSAGE.to_vec()]);
    eprintln!("the tunnel was back {back:?} after ssh was killed");

    // SIGTERM stops ssh and exits 0; the forwards are gone.
    let status = tunnel.stop(libc::SIGTERM);
    assert_eq!(status.code(), Some(0), "{}", tunnel.stderr());
    assert!(
        !alive(second),
        "ssh {second} still runs after the tunnel stopped"
    );
    assert!(greeting(smtp_local).is_none() && greeting(imap_local).is_none());
}

#[test]
fn a_frozen_ssh_is_restarted_by_the_health_check_and_ctrl_c_stops_it() {
    let sink = SmtpSink::start();
    let sshd = Sshd::start();
    let smtp_local = free_port();
    let mut tunnel = Tunnel::ssh(
        &sshd,
        &[
            "--imap",
            "none",
            "--smtp",
            &format!("{smtp_local}:{}", sink.port()),
        ],
    );
    tunnel.wait_greeting(smtp_local, "220 ", UP);
    // The tunnel's own check has seen it up (not only this test).
    tunnel.wait_said("ownmail tunnel: up: connected", 1, UP);
    let first = tunnel.ssh_pid(Duration::ZERO);
    // A frozen ssh keeps its listening socket: connections are accepted by
    // the kernel and then nothing comes. Only the greeting check sees it.
    // SAFETY: the ssh process the tunnel started.
    unsafe { libc::kill(first as libc::pid_t, libc::SIGSTOP) };
    let frozen = Instant::now();
    let deadline = frozen + Duration::from_secs(20);
    let second = loop {
        let pids = tunnel.ssh_pids();
        if let Some(p) = pids.iter().find(|p| **p != first) {
            break *p;
        }
        assert!(
            Instant::now() < deadline,
            "ssh was not restarted:\n{}",
            tunnel.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    tunnel.wait_greeting(smtp_local, "220 ", UP);
    eprintln!("restarted and back {:?} after ssh froze", frozen.elapsed());
    assert!(!alive(first), "the frozen ssh was left behind");
    let said = tunnel.stderr();
    assert!(
        said.contains(&format!("the SMTP forward 127.0.0.1:{smtp_local} -> 127.0.0.1:{} did not answer (no greeting in 2 s): restarting ssh", sink.port())),
        "{said}"
    );
    // Ctrl-C (SIGINT to the tunnel alone, as a terminal would send it to
    // the foreground group; ssh has its own group) stops it all, exit 0.
    let status = tunnel.stop(libc::SIGINT);
    assert_eq!(status.code(), Some(0), "{}", tunnel.stderr());
    assert!(!alive(second));
}

#[test]
fn a_mail_server_that_goes_away_is_reported_with_ssh_own_words() {
    let sink = SmtpSink::start();
    let sshd = Sshd::start();
    let smtp_local = free_port();
    let mut tunnel = Tunnel::ssh(
        &sshd,
        &[
            "--imap",
            "none",
            "--smtp",
            &format!("{smtp_local}:{}", sink.port()),
        ],
    );
    tunnel.wait_greeting(smtp_local, "220 ", UP);
    tunnel.wait_said("ownmail tunnel: up: connected", 1, UP);
    let first = tunnel.ssh_pid(Duration::ZERO);
    drop(sink);
    // Two failed checks (1 s apart), then ssh is restarted, and what ssh
    // said about the forward is shown.
    tunnel.wait_said("restarting ssh", 1, Duration::from_secs(15));
    let said = tunnel.stderr();
    assert!(
        said.contains("did not answer (the connection was closed without a greeting): restarting ssh; ssh said: ")
            && said.contains("open failed: connect failed: Connection refused"),
        "{said}"
    );
    assert!(!alive(first));
    // SIGHUP (its terminal closed) stops ssh too: no ssh is left holding
    // the ports. Regression: the tunnel died of it and ssh ran on.
    let running = tunnel.ssh_pids();
    assert_eq!(tunnel.stop(libc::SIGHUP).code(), Some(0));
    for pid in running {
        assert!(!alive(pid), "ssh {pid} still runs after SIGHUP");
    }
}

/// Runs a tunnel that must fail at once; its exit code and standard error.
fn failing(tunnel: &mut Tunnel) -> (Option<i32>, String) {
    let status = tunnel.wait(Duration::from_secs(30));
    (status.code(), tunnel.stderr())
}

#[test]
fn ssh_that_cannot_start_is_reported_in_its_own_words() {
    let sshd = Sshd::start();
    let port = free_port().to_string();
    let only_imap = ["--smtp", "none", "--imap", &format!("{port}:143")];

    // No ssh binary at all.
    let empty = tempfile::tempdir().unwrap();
    let mut args = vec!["tunnel".to_owned(), "ssh".into(), sshd.destination()];
    args.extend(only_imap.iter().map(|s| s.to_string()));
    let mut t = Tunnel::spawn_cmd(support::ownmail().args(&args).env("PATH", empty.path()));
    let (code, said) = failing(&mut t);
    assert_eq!(code, Some(69), "{said}");
    assert!(
        said.contains("cannot run ssh: it is not on PATH") && said.contains("openssh-client"),
        "{said}"
    );

    // The server's host key is unknown.
    let no_hosts = sshd.dir().join("empty_known_hosts");
    std::fs::write(&no_hosts, "").unwrap();
    let options = sshd.ssh_options_with(&sshd.user_key(), &no_hosts);
    let mut t = Tunnel::ssh_with(&sshd, &options, &only_imap);
    let (code, said) = failing(&mut t);
    assert_eq!(code, Some(77), "{said}");
    assert!(said.contains("Host key verification failed."), "{said}");
    // The command to run keeps the user's options (port, key, the
    // known_hosts to check), and lets ssh ask although they say not to.
    // Regression: it was `ssh DESTINATION`, which reached port 22 and
    // checked ~/.ssh/known_hosts.
    let mut command = "ssh -o StrictHostKeyChecking=ask".to_owned();
    for o in &options {
        command.push_str(&format!(" -o {o}"));
    }
    assert!(
        said.contains(&format!(
            "by running `{command} {}` at a terminal",
            sshd.destination()
        )),
        "{said}"
    );
    assert!(command.contains(&format!("UserKnownHostsFile={}", no_hosts.display())));

    // A key the server does not accept.
    let options = sshd.ssh_options_with(&sshd.stranger_key(), &sshd.known_hosts());
    let mut t = Tunnel::ssh_with(&sshd, &options, &only_imap);
    let (code, said) = failing(&mut t);
    assert_eq!(code, Some(77), "{said}");
    assert!(said.contains("Permission denied (publickey)"), "{said}");
    assert!(said.contains("BatchMode=yes"), "{said}");
    assert!(
        said.contains(&format!(
            "-o IdentityFile={} ",
            sshd.stranger_key().display()
        )) && said.contains(&format!("{}` at a terminal", sshd.destination())),
        "{said}"
    );

    // An option ssh does not know.
    let mut options = sshd.ssh_options();
    options.push("NoSuchOption=yes".into());
    let mut t = Tunnel::ssh_with(&sshd, &options, &only_imap);
    let (code, said) = failing(&mut t);
    assert_eq!(code, Some(64), "{said}");
    assert!(
        said.contains("Bad configuration option: nosuchoption"),
        "{said}"
    );

    // The local port is taken by someone else.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let mut t = Tunnel::ssh(
        &sshd,
        &["--smtp", "none", "--imap", &format!("{taken_port}:143")],
    );
    let (code, said) = failing(&mut t);
    assert_eq!(code, Some(69), "{said}");
    assert!(
        said.contains(&format!("cannot listen on 127.0.0.1:{taken_port}")),
        "{said}"
    );
}

#[test]
fn a_changed_host_key_is_told_apart_from_an_unknown_one() {
    // Regression: a changed key got the unknown key's hint (accept it at a
    // terminal), but ssh does not ask about a changed key: it refuses.
    let sshd = Sshd::start();
    let port = free_port().to_string();
    let only_imap = ["--smtp", "none", "--imap", &format!("{port}:143")];
    // known_hosts holds another key for the server.
    let changed = sshd.dir().join("changed_known_hosts");
    let other = std::fs::read_to_string(sshd.stranger_key().with_extension("pub")).unwrap();
    let mut fields = other.split_whitespace();
    let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
    let host = format!("[127.0.0.1]:{}", sshd.port());
    std::fs::write(&changed, format!("{host} {kind} {key}\n")).unwrap();
    let options = sshd.ssh_options_with(&sshd.user_key(), &changed);
    let mut t = Tunnel::ssh_with(&sshd, &options, &only_imap);
    let (code, said) = failing(&mut t);
    assert_eq!(code, Some(77), "{said}");
    assert!(
        said.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{said}"
    );
    assert!(said.contains("host key has changed"), "{said}");
    assert!(!said.contains("does not know"), "{said}");
    assert!(said.contains("server's administrator"), "{said}");
    // The command removes the old key from the known_hosts the tunnel uses.
    let remove = format!("ssh-keygen -f {} -R '{host}'", changed.display());
    assert!(said.contains(&format!("`{remove}`")), "{said}");
    // And the command given does remove it.
    let out = std::process::Command::new("sh")
        .args(["-c", &remove])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read_to_string(&changed).unwrap().trim(), "");
    assert!(
        said.contains(&format!(
            "`ssh -o StrictHostKeyChecking=ask -o Port={}",
            sshd.port()
        )),
        "{said}"
    );
}

#[test]
fn an_unreachable_server_is_retried_with_growing_delays() {
    // Nothing listens on this port: ssh fails, temporarily, again and again.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("known_hosts");
    std::fs::write(&hosts, "").unwrap();
    let local = free_port();
    let mut t = Tunnel::spawn(&[
        "ssh".into(),
        "nobody@127.0.0.1".into(),
        "--ssh-option".into(),
        format!("Port={port}"),
        "--ssh-option".into(),
        format!("UserKnownHostsFile={}", hosts.display()),
        "--smtp".into(),
        "none".into(),
        "--imap".into(),
        format!("{local}:143"),
    ]);
    std::thread::sleep(Duration::from_millis(3500));
    let said = t.stderr();
    assert!(said.contains("Connection refused"), "{said}");
    assert!(
        said.contains("starting ssh again in 1 s") && said.contains("starting ssh again in 2 s"),
        "{said}"
    );
    assert_eq!(t.stop(libc::SIGTERM).code(), Some(0));
}

#[test]
fn a_dead_server_behind_one_forward_leaves_ssh_and_the_other_forward_alone() {
    // Regression: with SMTP and IMAP forwarded and only the SMTP server
    // down, ssh was restarted every minute, cutting the IMAP connections
    // that worked; the ssh link itself was fine.
    let imap = dovecot_with_one_message();
    let sink = SmtpSink::start();
    let sink_port = sink.port();
    let sshd = Sshd::start();
    let (mut tunnel, smtp_local, imap_local) = smtp_and_imap(&sshd, sink_port, imap.imap_port());
    tunnel.wait_greeting(smtp_local, "220 ", UP);
    tunnel.wait_said("ownmail tunnel: up: connected", 1, UP);
    let first = tunnel.ssh_pid(Duration::ZERO);

    // A mail client's IMAP connection, open before the SMTP server goes.
    let client = std::net::TcpStream::connect(("127.0.0.1", imap_local)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = std::io::BufReader::new(&client);
    let line = |reader: &mut std::io::BufReader<&std::net::TcpStream>| {
        let mut l = String::new();
        std::io::BufRead::read_line(reader, &mut l).unwrap();
        l
    };
    assert!(line(&mut reader).starts_with("* OK"));
    std::io::Write::write_all(&mut &client, b"a1 NOOP\r\n").unwrap();
    assert!(line(&mut reader).starts_with("a1 OK"));

    drop(sink);
    let dead = format!(
        "the SMTP forward 127.0.0.1:{smtp_local} -> 127.0.0.1:{sink_port} does not answer \
         (the connection was closed without a greeting)"
    );
    tunnel.wait_said(&dead, 1, Duration::from_secs(10));
    // Several check intervals (1 s each) later: the same ssh, no restart,
    // the warning said once.
    std::thread::sleep(Duration::from_secs(6));
    let said = tunnel.stderr();
    assert_eq!(tunnel.ssh_pid(Duration::ZERO), first, "{said}");
    assert!(!said.contains("restarting"), "{said}");
    assert_eq!(said.matches(&dead).count(), 1, "{said}");
    assert!(said.contains("ssh keeps running"), "{said}");
    // The IMAP connection opened before still works.
    std::io::Write::write_all(&mut &client, b"a2 NOOP\r\n").unwrap();
    assert!(line(&mut reader).starts_with("a2 OK"), "{said}");
    tunnel.wait_greeting(imap_local, "* OK", Duration::from_secs(2));

    // The SMTP server comes back: said once, still the same ssh.
    let _sink = SmtpSink::start_on(sink_port);
    let back =
        format!("the SMTP forward 127.0.0.1:{smtp_local} -> 127.0.0.1:{sink_port} answers again");
    tunnel.wait_said(&back, 1, Duration::from_secs(10));
    tunnel.wait_greeting(smtp_local, "220 sink.test", Duration::from_secs(2));
    std::thread::sleep(Duration::from_secs(3));
    let said = tunnel.stderr();
    assert_eq!(said.matches(&back).count(), 1, "{said}");
    assert_eq!(tunnel.ssh_pid(Duration::ZERO), first, "{said}");
    std::io::Write::write_all(&mut &client, b"a3 LOGOUT\r\n").unwrap();
    assert!(line(&mut reader).starts_with("* BYE"), "{said}");
    assert_eq!(tunnel.stop(libc::SIGTERM).code(), Some(0));
}

#[test]
fn a_server_down_from_the_start_does_not_keep_the_other_forward_from_coming_up() {
    // Regression: the tunnel waited for every forward before it called
    // itself up, and restarted ssh after a minute without, again and again.
    let sink = SmtpSink::start();
    let nobody = free_port();
    let sshd = Sshd::start();
    let (mut tunnel, smtp_local, imap_local) = smtp_and_imap(&sshd, sink.port(), nobody);
    tunnel.wait_greeting(smtp_local, "220 ", UP);
    tunnel.wait_said("ownmail tunnel: up: connected", 1, UP);
    let dead = format!(
        "the IMAP forward 127.0.0.1:{imap_local} -> 127.0.0.1:{nobody} does not answer \
         (the connection was closed without a greeting)"
    );
    tunnel.wait_said(&dead, 1, Duration::from_secs(5));
    let first = tunnel.ssh_pid(Duration::ZERO);
    std::thread::sleep(Duration::from_secs(4));
    let said = tunnel.stderr();
    assert_eq!(tunnel.ssh_pid(Duration::ZERO), first, "{said}");
    assert_eq!(said.matches(&dead).count(), 1, "{said}");
    assert!(!said.contains("restarting"), "{said}");
    assert_eq!(tunnel.stop(libc::SIGTERM).code(), Some(0));
}
