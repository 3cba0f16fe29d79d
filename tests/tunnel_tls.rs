//! Issue 8, `tunnel tls` against real peers: client mode against Dovecot's
//! implicit-TLS IMAP port (certificate made by openssl in the test), pinned,
//! CA-verified and refused; `--stdio` under Python's `imaplib.IMAP4_stream`
//! (what mutt's `tunnel` does); server mode in front of Dovecot's plain IMAP
//! and Postfix's smtp-sink, read by Python's ssl module, by swaks and by
//! our own client mode; `tunnel fingerprint` agreeing with openssl.
//!
//! The peers must be installed (a missing one fails the test): dovecot-imapd,
//! postfix (smtp-sink), swaks, python3, openssl. Nothing leaves 127.0.0.1.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::dovecot;
use support::smtp_sink::SmtpSink;
use support::sshd::free_port;
use support::tunnel::{
    ImapClient, Tunnel, decode_messages, greeting, imap_read_all, openssl_fingerprint, swaks,
};
use support::{Scratch, ownmail, run};

const USER: &str = "alice";
const PASSWORD: &str = "tls-secret";
const MESSAGE: &[u8] =
    b"From: bob@example.net\r\nTo: alice@example.org\r\nSubject: over TLS\r\n\r\nCarried by the tunnel.\r\n";
const UP: Duration = Duration::from_secs(10);

fn dovecot_with_one_message(tls: bool) -> dovecot::Dovecot {
    let mut setup = dovecot::Setup::new();
    setup.imap();
    if tls {
        setup.tls();
    }
    let maildir = setup.user(USER, PASSWORD);
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    std::fs::write(maildir.join("new/1700000000.M1P1.test"), MESSAGE).unwrap();
    dovecot::give_to_mail_owner(&maildir);
    setup.start()
}

fn fingerprint_of(port: u16) -> (String, String) {
    let out = run(
        ownmail().args(["tunnel", "fingerprint", &format!("127.0.0.1:{port}")]),
        b"",
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    (
        String::from_utf8(out.stdout).unwrap().trim().to_owned(),
        err,
    )
}

fn client(imaps: u16, local: u16, trust: &[&str]) -> Tunnel {
    let mut args: Vec<String> = vec![
        "tls".into(),
        "--connect".into(),
        format!("127.0.0.1:{imaps}"),
        "--listen".into(),
        format!("127.0.0.1:{local}"),
    ];
    args.extend(trust.iter().map(|s| s.to_string()));
    Tunnel::spawn(&args)
}

#[test]
fn client_mode_pins_verifies_and_refuses_against_dovecot_imaps() {
    let server = dovecot_with_one_message(true);
    let imaps = server.imaps_port();
    let expected = openssl_fingerprint(server.cert());

    // `tunnel fingerprint` sees what openssl sees in the file.
    let (fp, about) = fingerprint_of(imaps);
    assert_eq!(fp, expected);
    assert!(about.contains("subject: CN=localhost"), "{about}");

    // Pinned: the mail comes through, byte for byte.
    let local = free_port();
    let mut pinned = client(imaps, local, &["--pin", &fp]);
    pinned.wait_greeting(local, "* OK", UP);
    let read = decode_messages(&imap_read_all(ImapClient::Plain(local), USER, PASSWORD));
    assert_eq!(read, vec![MESSAGE.to_vec()]);
    assert!(
        pinned.stdout().contains(&format!(
            "server 127.0.0.1, port {local}, connection security: none"
        )),
        "{}",
        pinned.stdout()
    );
    // The pin also parses as openssl prints it, and in lower case without colons.
    let bare = fp
        .trim_start_matches("sha256:")
        .replace(':', "")
        .to_lowercase();
    let local2 = free_port();
    let mut bare_pin = client(imaps, local2, &["--pin", &format!("sha256:{bare}")]);
    bare_pin.wait_greeting(local2, "* OK", UP);

    // Verified by --ca (the self-signed certificate is its own CA; it names 127.0.0.1).
    let local3 = free_port();
    let ca = server.cert().display().to_string();
    let mut by_ca = client(imaps, local3, &["--ca", &ca]);
    by_ca.wait_greeting(local3, "* OK", UP);

    // A wrong pin: nothing relayed, the fingerprint seen is named.
    let wrong = format!("sha256:{}", ["00"; 32].join(":"));
    let local4 = free_port();
    let refused = client(imaps, local4, &["--pin", &wrong]);
    assert_refused(
        &refused,
        local4,
        &format!("has fingerprint {fp}, not the pinned {wrong}: refused"),
    );

    // No pin, no CA: the system store does not know this certificate.
    let local5 = free_port();
    let untrusted = client(imaps, local5, &[]);
    assert_refused(
        &untrusted,
        local5,
        "certificate is not trusted: self-signed certificate",
    );
    let said = untrusted.stderr();
    assert!(
        said.contains("--pin") && said.contains("--ca FILE"),
        "{said}"
    );
    // The fingerprint to check and pin, as --pin takes it. Regression: only
    // a pin's mismatch named it.
    assert!(
        said.contains(&format!("its fingerprint is {fp}")) && said.contains(&format!("--pin {fp}")),
        "{said}"
    );
}

/// A certificate made here: for `name` (a DNS name or an IP address),
/// valid from `from` to `to` days from now, self-signed. Its certificate
/// and key files, and its fingerprint.
fn certificate(
    dir: &std::path::Path,
    name: &str,
    from: i64,
    to: i64,
) -> (PathBuf, PathBuf, String) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::extension::SubjectAlternativeName;
    use openssl::x509::{X509, X509NameBuilder};

    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut subject = X509NameBuilder::new().unwrap();
    subject.append_entry_by_text("CN", name).unwrap();
    let subject = subject.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    // Each its own serial number and files.
    static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let serial = BigNum::from_u32(n).unwrap().to_asn1_integer().unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&subject).unwrap();
    b.set_issuer_name(&subject).unwrap();
    b.set_pubkey(&key).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    b.set_not_before(&Asn1Time::from_unix(now + from * 86400).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(now + to * 86400).unwrap())
        .unwrap();
    let mut san = SubjectAlternativeName::new();
    if name.parse::<std::net::IpAddr>().is_ok() {
        san.ip(name);
    } else {
        san.dns(name);
    }
    let san = san.build(&b.x509v3_context(None, None)).unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    let (cert_file, key_file) = (dir.join(format!("{n}.pem")), dir.join(format!("{n}.key")));
    std::fs::write(&cert_file, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&key_file, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let fp = openssl_fingerprint(&cert_file);
    (cert_file, key_file, fp)
}

/// A TLS server on 127.0.0.1 with `cert` that greets like IMAP; its port.
async fn tls_server(cert: &std::path::Path, key: &std::path::Path) -> u16 {
    use ownmail::net::tls_server::ServerIdentity;
    use tokio::io::AsyncWriteExt;
    let identity = std::sync::Arc::new(ServerIdentity::load(cert, key).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let identity = std::sync::Arc::clone(&identity);
            tokio::spawn(async move {
                // A refusing client ends the handshake: nothing to serve.
                if let Ok(mut tls) = ownmail::net::tls::accept(&identity, tcp).await {
                    let _ = tls.write_all(b"* OK ready\r\n").await;
                }
            });
        }
    });
    port
}

/// Every certificate the client refuses (self-signed, another name,
/// expired, not from the given CA) is refused with OpenSSL's reason and
/// the fingerprint to pin, as --pin takes it. Regression: only a pin's
/// mismatch named the fingerprint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_certificate_is_named_by_its_reason_and_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (good, _, _) = certificate(d, "127.0.0.1", -1, 2);
    let cases = [
        (
            certificate(d, "127.0.0.1", -1, 30),
            None,
            "self-signed certificate",
        ),
        (
            certificate(d, "mail.example.org", -1, 30),
            Some(0),
            "IP address mismatch",
        ),
        (
            certificate(d, "127.0.0.1", -10, -1),
            Some(0),
            "certificate has expired",
        ),
        (
            certificate(d, "127.0.0.1", -1, 30),
            Some(1),
            "self-signed certificate",
        ),
    ];
    for ((cert, key, fp), ca, why) in cases {
        let port = tls_server(&cert, &key).await;
        let mut args = vec![
            "tunnel".to_owned(),
            "tls".into(),
            "--stdio".into(),
            "--connect".into(),
            format!("127.0.0.1:{port}"),
        ];
        match ca {
            // --ca: the certificate itself (so only the name or the dates
            // fail), or another one.
            Some(0) => args.extend(["--ca".into(), cert.display().to_string()]),
            Some(_) => args.extend(["--ca".into(), good.display().to_string()]),
            None => {}
        }
        let out = tokio::task::spawn_blocking(move || run(ownmail().args(&args), b"a LOGOUT\r\n"))
            .await
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(77), "{why}: {err}");
        assert!(out.stdout.is_empty(), "{why}: relayed");
        assert!(
            err.contains(&format!("127.0.0.1's certificate is not trusted: {why}")),
            "{why}: {err}"
        );
        assert!(
            err.contains(&format!("its fingerprint is {fp}"))
                && err.contains(&format!("--pin {fp}")),
            "{why}: {err}"
        );
    }
}

/// Connections to `port` are closed without a byte of the server's
/// greeting, and the tunnel logs `why`.
fn assert_refused(tunnel: &Tunnel, port: u16, why: &str) {
    let deadline = std::time::Instant::now() + UP;
    loop {
        // Until it listens, a refused connect says nothing either.
        let got = greeting(port);
        assert_eq!(got, None, "the tunnel relayed despite {why}");
        if tunnel.stderr().contains(why) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the tunnel never said {why:?}:\n{}",
            tunnel.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn stdio_carries_python_imaplib_like_mutt_tunnel() {
    let server = dovecot_with_one_message(true);
    let imaps = server.imaps_port();
    let fp = openssl_fingerprint(server.cert());
    let bin = env!("CARGO_BIN_EXE_ownmail");
    let command = format!("{bin} tunnel tls --stdio --connect 127.0.0.1:{imaps} --pin {fp}");
    let read = decode_messages(&imap_read_all(ImapClient::Stream(&command), USER, PASSWORD));
    assert_eq!(read, vec![MESSAGE.to_vec()]);

    // A wrong pin: exit 77, the fingerprint seen on standard error, nothing on stdout.
    let wrong = format!("sha256:{}", ["AB"; 32].join(":"));
    let out = run(
        ownmail().args([
            "tunnel",
            "tls",
            "--stdio",
            "--connect",
            &format!("127.0.0.1:{imaps}"),
            "--pin",
            &wrong,
        ]),
        b"a LOGOUT\r\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(
        err.contains(&format!("has fingerprint {fp}, not the pinned {wrong}")),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // Nobody there: exit 75 (try later).
    let out = run(
        ownmail().args([
            "tunnel",
            "tls",
            "--stdio",
            "--connect",
            &format!("127.0.0.1:{}", free_port()),
        ]),
        b"",
    );
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A scratch configuration whose `tls:` is a fresh openssl certificate,
/// its key in the traditional EC form (`BEGIN EC PRIVATE KEY`), not PKCS#8.
fn config_with_certificate() -> (Scratch, std::path::PathBuf) {
    let s = Scratch::new();
    let dir = s.dir.path().join("tls");
    std::fs::create_dir(&dir).unwrap();
    let cert = dovecot::make_certificate(&dir);
    let key = dir.join("key.pem");
    let ec = dir.join("key-ec.pem");
    let out = Command::new("openssl")
        .args(["ec", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&ec)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        std::fs::read_to_string(&ec)
            .unwrap()
            .starts_with("-----BEGIN EC PRIVATE KEY-----")
    );
    let mut yaml = std::fs::read_to_string(s.config()).unwrap();
    yaml.push_str(&format!(
        "tls:\n  cert: {}\n  key: {}\n",
        cert.display(),
        ec.display()
    ));
    std::fs::write(s.config(), yaml).unwrap();
    (s, cert)
}

fn server(s: &Scratch, accept: u16, to: u16) -> Tunnel {
    Tunnel::spawn_cmd(s.cmd().args([
        "tunnel",
        "tls",
        "--accept",
        &format!("127.0.0.1:{accept}"),
        "--to",
        &format!("127.0.0.1:{to}"),
    ]))
}

#[test]
fn server_mode_wraps_plain_imap_and_smtp_and_follows_a_renewed_certificate() {
    let imap = dovecot_with_one_message(false);
    let sink = SmtpSink::start();
    let (s, cert) = config_with_certificate();
    let fp = openssl_fingerprint(&cert);

    let imaps = free_port();
    let mut wrapped = server(&s, imaps, imap.imap_port());
    // Python's ssl module, verifying against the certificate.
    let deadline = std::time::Instant::now() + UP;
    while fingerprint_of_quietly(imaps).is_none() {
        assert!(std::time::Instant::now() < deadline, "{}", wrapped.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let ca = cert.display().to_string();
    let read = decode_messages(&imap_read_all(ImapClient::Tls(imaps, &ca), USER, PASSWORD));
    assert_eq!(read, vec![MESSAGE.to_vec()]);

    // Our client mode in front of our server mode, pinned.
    let local = free_port();
    let mut chain = client(imaps, local, &["--pin", &fp]);
    chain.wait_greeting(local, "* OK", UP);
    let read = decode_messages(&imap_read_all(ImapClient::Plain(local), USER, PASSWORD));
    assert_eq!(read, vec![MESSAGE.to_vec()]);

    // swaks with implicit TLS through server mode to smtp-sink.
    let smtps = free_port();
    let smtp_wrapped = server(&s, smtps, sink.port());
    let deadline = std::time::Instant::now() + UP;
    while fingerprint_of_quietly(smtps).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            smtp_wrapped.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = swaks(
        smtps,
        "bob@example.net",
        "alice@example.org",
        &["--tls-on-connect"],
    );
    let transcript = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success(),
        "{transcript}{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(
        transcript.contains("=== TLS started with cipher TLSv1."),
        "{transcript}"
    );
    assert!(transcript.contains("<~  220 sink.test"), "{transcript}");

    // A renewed certificate (new files moved into place) is served at once.
    let renewed = tempfile::tempdir().unwrap();
    let new_cert = dovecot::make_certificate(renewed.path());
    let new_fp = openssl_fingerprint(&new_cert);
    assert_ne!(new_fp, fp);
    let key = std::fs::read_to_string(s.config()).unwrap();
    let ec = key
        .lines()
        .find_map(|l| l.trim().strip_prefix("key: "))
        .unwrap()
        .to_owned();
    std::fs::copy(renewed.path().join("key.pem"), format!("{ec}.new")).unwrap();
    std::fs::copy(&new_cert, format!("{}.new", cert.display())).unwrap();
    std::fs::rename(format!("{ec}.new"), &ec).unwrap();
    std::fs::rename(format!("{}.new", cert.display()), &cert).unwrap();
    assert_eq!(fingerprint_of(imaps).0, new_fp);
    // The old pin is now refused; the new certificate still serves mail.
    let local2 = free_port();
    let stale = client(imaps, local2, &["--pin", &fp]);
    assert_refused(
        &stale,
        local2,
        &format!("has fingerprint {new_fp}, not the pinned {fp}"),
    );

    // SIGTERM: exit 0.
    assert_eq!(
        wrapped.stop(libc::SIGTERM).code(),
        Some(0),
        "{}",
        wrapped.stderr()
    );
    drop(chain);
}

fn fingerprint_of_quietly(port: u16) -> Option<String> {
    let out = run(
        ownmail().args(["tunnel", "fingerprint", &format!("127.0.0.1:{port}")]),
        b"",
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn plaintext_never_leaves_loopback_and_server_mode_needs_a_certificate() {
    let s = Scratch::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--connect", "127.0.0.1:993", "--listen", "0.0.0.0:1143"],
            "--listen 0.0.0.0:1143 is not a loopback address",
        ),
        (
            &["--accept", "127.0.0.1:993", "--to", "192.0.2.1:143"],
            "--to 192.0.2.1:143 is not a loopback address",
        ),
        (
            &["--accept", "127.0.0.1:993", "--to", "127.0.0.1:143"],
            "server mode needs a certificate: add `tls: {cert: FILE, key: FILE}`",
        ),
        (
            &[
                "--connect",
                "127.0.0.1:993",
                "--listen",
                "127.0.0.1:1143",
                "--pin",
                "sha256:00",
            ],
            "is not a fingerprint",
        ),
        (&["--connect", "::1:993", "--stdio"], "is not HOST:PORT"),
        (
            &["--connect", "127.0.0.1:993"],
            "needs --listen ADDR:PORT or --stdio",
        ),
    ];
    for (args, why) in cases {
        let out = run(s.cmd().args(["tunnel", "tls"]).args(*args), b"");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
}

/// Client mode keeps the last TLS session and resumes it (RFC 8446 2.2):
/// after the first, connections skip the certificate exchange, whether the
/// certificate was pinned or verified.
#[tokio::test]
async fn client_connections_after_the_first_resume_the_session() {
    use ownmail::net::tls::{Connector, Fingerprint, Trust};
    use ownmail::net::tls_server::ServerIdentity;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    let cert = dovecot::make_certificate(dir.path());
    let identity =
        std::sync::Arc::new(ServerIdentity::load(&cert, &dir.path().join("key.pem")).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let identity = std::sync::Arc::clone(&identity);
            tokio::spawn(async move {
                let mut tls = ownmail::net::tls::accept(&identity, tcp).await.unwrap();
                tls.write_all(b"220 ready\r\n").await.unwrap();
                let mut rest = Vec::new();
                let _ = tls.read_to_end(&mut rest).await;
            });
        }
    });
    let fp = Fingerprint::parse(&openssl_fingerprint(&cert)).unwrap();
    for trust in [Trust::Pin(fp), Trust::Ca(std::fs::read(&cert).unwrap())] {
        let connector = Connector::new("127.0.0.1", &trust).unwrap();
        let mut reused = Vec::new();
        for _ in 0..3 {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut tls = connector.connect(tcp).await.unwrap();
            let mut greeting = [0u8; 11];
            // Reading also takes in the session tickets (TLS 1.3 sends them
            // after the handshake).
            tls.read_exact(&mut greeting).await.unwrap();
            assert_eq!(&greeting, b"220 ready\r\n");
            reused.push(tls.ssl().session_reused());
            tls.shutdown().await.unwrap();
        }
        assert_eq!(reused, [false, true, true], "{trust:?}");
    }
}
