//! The real binary: exit codes, error lines, the user lifecycle.

mod support;
use std::path::Path;

use support::*;

#[test]
fn deliver_exit_codes_follow_sysexits() {
    let s = Scratch::new();
    s.add_user("alice", "pw");
    // (arguments, input, exit code, words the one error line must contain)
    let cases: &[(&[&str], &[u8], i32, &str)] = &[
        (
            &["deliver", "--user", "alice"],
            b"Subject: x\n\nhi\n",
            0,
            "",
        ),
        (
            &["deliver", "--user", "bob"],
            b"Subject: x\n\nhi\n",
            67,
            "unknown user bob",
        ),
        (&["deliver", "--user", "alice"], b"", 65, "empty"),
        (
            &["deliver", "--user", "alice"],
            b"Received: by mx\nDelivered-To: alice@example.org\n\nx",
            65,
            "mail loop",
        ),
        (
            &["deliver", "--user", "alice", "--folder", "Nope"],
            b"X: 1\n\nx",
            73,
            "--create",
        ),
        (
            &["deliver", "--user", "alice", "--folder", "../../etc"],
            b"X: 1\n\nx",
            64,
            "mailbox name",
        ),
        (
            &["deliver", "--user", "alice", "--flags", "\\Bogus"],
            b"X: 1\n\nx",
            64,
            "flag",
        ),
        (
            &["deliver", "--user", "../alice"],
            b"X: 1\n\nx",
            64,
            "user name",
        ),
        (&["deliver"], b"X: 1\n\nx", 64, "--user"),
    ];
    for (args, input, code, words) in cases {
        let out = run(s.cmd().args(*args), input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
        if *code != 0 && *code != 64 {
            assert_eq!(
                stderr.lines().count(),
                1,
                "one line naming the reason: {stderr}"
            );
        }
    }
    // Exactly one message made it, and nothing escaped the data folder.
    assert_eq!(messages(&s.maildir("alice")).len(), 1);
    assert!(!s.dir.path().join("etc").exists());
}

#[test]
fn a_missing_or_broken_config_is_exit_78_naming_the_problem() {
    let s = Scratch::new();
    std::fs::write(s.config(), "hostname: mail.example.org\ndata_dri: /x\n").unwrap();
    let out = run(s.cmd().args(["check-config"]), b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr.contains("ownmail.yaml") && stderr.contains("line 2") && stderr.contains("data_dri"),
        "{stderr}"
    );
    // `deliver` says the same but exits 75: Postfix bounces on 78, and one
    // typo in the configuration would bounce every message (dovecot-lda
    // defers too). Fixed, the mail follows.
    for args in [&["--user", "alice"][..], &["--maildir", "md"][..]] {
        let out = run(s.cmd().arg("deliver").args(args), b"X: 1\n\nx");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(75), "{args:?}: {stderr}");
        assert!(
            stderr.contains("line 2") && stderr.contains("data_dri") && stderr.contains("retries"),
            "{args:?}: {stderr}"
        );
    }

    let out = run(
        ownmail()
            .current_dir(s.dir.path().join(".."))
            .args(["check-config"]),
        b"",
    );
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"));
}

#[test]
fn a_system_error_is_said_once_naming_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "not a folder").unwrap();
    let under_file = file.join("Maildir");
    let missing = dir.path().join("missing.mbox");
    let md = dir.path().join("md");
    // (arguments, exit code, the path named, the system's words)
    let cases: &[(&[&Path], i32, &Path, &str)] = &[
        (
            &["deliver".as_ref(), "--maildir".as_ref(), &under_file],
            73,
            &file,
            "Not a directory",
        ),
        (
            &["convert-mbox".as_ref(), &missing, "--maildir".as_ref(), &md],
            66,
            &missing,
            "No such file or directory",
        ),
    ];
    for (args, code, path, words) in cases {
        let out = run(ownmail().args(*args), b"X: 1\n\nx\n");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        let said = format!("{}: {words}", path.display());
        assert!(stderr.contains(&said), "{stderr}");
        assert_eq!(stderr.matches(words).count(), 1, "said once: {stderr}");
    }
}

#[test]
fn deliver_to_a_maildir_needs_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("Maildir");
    let out = run(
        ownmail()
            .current_dir(dir.path())
            .env("SENDER", "bob@example.net")
            .env("RECIPIENT", "me@example.org")
            .args(["deliver", "--maildir"])
            .arg(&md)
            .args(["--folder", "Lists/rust", "--create"]),
        b"Subject: hi\r\n\r\nbody\r\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = messages(&md.join(".Lists.rust"));
    assert_eq!(files.len(), 1);
    assert_eq!(
        std::fs::read_to_string(&files[0]).unwrap(),
        "Return-Path: <bob@example.net>\nDelivered-To: me@example.org\nSubject: hi\n\nbody\n"
    );
}

#[test]
fn check_config_prints_the_resolved_configuration() {
    let s = Scratch::new();
    let out = run(s.cmd().arg("check-config"), b"");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = s.dir.path().join("data");
    assert!(
        stdout.contains(&format!("data_dir: {}", data.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("users_file: {}", data.join("passwd").display())),
        "{stdout}"
    );
    std::fs::write(s.config(), "tls:\n  cert: nope.pem\n  key: nope.key\n").unwrap();
    let out = run(s.cmd().arg("check-config"), b"");
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls.cert"));
}

#[test]
fn the_user_lifecycle() {
    let s = Scratch::new();
    s.add_user("alice", "one");
    for folder in [".Drafts", ".Sent", ".Junk", ".Trash", ".Archive", "new"] {
        assert!(s.maildir("alice").join(folder).is_dir(), "{folder}");
    }
    let out = run(
        s.cmd().args(["user", "add", "alice", "--password-stdin"]),
        b"two\n",
    );
    assert_eq!(out.status.code(), Some(73), "adding twice");
    let out = run(
        s.cmd().args(["user", "add", "bob", "--password-stdin"]),
        b"\n",
    );
    assert_eq!(out.status.code(), Some(64), "empty password");

    let passwd = s.dir.path().join("data/passwd");
    let users = ownmail::auth::Users::load(&passwd).unwrap();
    let pw = |p: &str| ownmail::auth::Secret::new(p.into());
    assert!(users.verify("alice", &pw("one")));
    let out = run(
        s.cmd()
            .args(["user", "passwd", "alice", "--password-stdin"]),
        b"two\n",
    );
    assert!(out.status.success());
    let users = ownmail::auth::Users::load(&passwd).unwrap();
    assert!(users.verify("alice", &pw("two")) && !users.verify("alice", &pw("one")));

    s.add_user("bob", "b");
    let out = run(s.cmd().args(["user", "list"]), b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "alice\nbob\n");
    let out = run(s.cmd().args(["user", "del", "alice"]), b"");
    assert!(
        out.status.success() && s.maildir("alice").is_dir(),
        "mail kept without --purge"
    );
    let out = run(s.cmd().args(["user", "del", "bob", "--purge"]), b"");
    assert!(out.status.success() && !s.maildir("bob").exists());
    let out = run(
        s.cmd().args(["user", "passwd", "bob", "--password-stdin"]),
        b"x\n",
    );
    assert_eq!(out.status.code(), Some(67));
}

/// examples/ownmail.yaml loads as shipped, and with every commented-out
/// section switched on (its paths pointed at files that exist): an example
/// that a key rename broke fails here, not on a user's server.
#[test]
fn the_example_configuration_loads_with_and_without_its_comments() {
    let s = Scratch::new();
    let dir = s.dir.path();
    let data = dir.join("data");
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/ownmail.yaml"
    ))
    .unwrap()
    .replace("/var/lib/ownmail", &data.display().to_string());
    std::fs::write(s.config(), &example).unwrap();
    let out = run(s.cmd().arg("check-config"), b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Uncomment what reads as YAML: `# key:`, `#   key:`, `#   - item`,
    // `#   # comment`; prose (capitalised, or not a key) stays a comment.
    let mut all = String::new();
    let mut uncommented = 0;
    for line in example.lines() {
        let rest = line.strip_prefix("# ").unwrap_or("");
        let body = rest.trim_start();
        let key = body.split_once(':').is_some_and(|(k, _)| {
            !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        });
        if key || body.starts_with("- ") || (body.starts_with('#') && rest.starts_with(' ')) {
            all.push_str(rest);
            uncommented += 1;
        } else {
            all.push_str(line);
        }
        all.push('\n');
    }
    assert!(uncommented > 20, "only {uncommented} lines uncommented");
    let (cert, key) = smtp::self_signed(dir);
    let all = all
        .replace(
            "/etc/letsencrypt/live/mail.example.org/fullchain.pem",
            &cert.display().to_string(),
        )
        .replace(
            "/etc/letsencrypt/live/mail.example.org/privkey.pem",
            &key.display().to_string(),
        );
    for pass in ["isp.pass", "relay.pass"] {
        std::fs::write(dir.join(pass), "secret\n").unwrap();
        std::fs::set_permissions(
            dir.join(pass),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
    }
    std::fs::write(s.config(), &all).unwrap();
    let out = run(s.cmd().arg("check-config"), b"");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{all}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for section in [
        "fetch:",
        "imap:",
        "smtp:",
        "aliases:",
        "relay:",
        "enabled: true",
    ] {
        assert!(
            stdout.contains(section),
            "{section} missing from:\n{stdout}"
        );
    }
}

/// `| head`, a closed log, a full disk: where the output goes must not
/// turn into a panic (exit 101), nor stop the work for a line nobody reads.
#[test]
fn output_with_nowhere_to_go_is_no_panic() {
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let gone = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };
    // Notes on stderr are dropped and the conversion goes on.
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("Mail");
    std::fs::create_dir(&mail).unwrap();
    std::fs::write(mail.join("notes.txt"), "not mail\n").unwrap();
    std::fs::write(
        mail.join("inbox"),
        "From a@b Thu Aug 22 12:36:23 2002\nX: 1\n\nhi\n",
    )
    .unwrap();
    for stderr in [
        full(),
        std::fs::File::from(std::os::fd::OwnedFd::from(gone())),
    ] {
        let md = tempfile::tempdir().unwrap();
        let out = ownmail()
            .args([
                "convert-mbox".as_ref(),
                mail.as_os_str(),
                "--maildir".as_ref(),
                md.path().as_os_str(),
            ])
            .stderr(stderr)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(messages(md.path()).len(), 1);
    }

    // A reader of the output that went away is its choice: exit 0.
    let s = Scratch::new();
    s.add_user("alice", "pw");
    let out = s
        .cmd()
        .args(["user", "list"])
        .stdout(gone())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An IMAP session on standard input and output (inetd, ssh) whose
    // client hung up is over, not failed.
    let out = s
        .cmd()
        .args(["serve-imap", "--stdio", "--preauth", "--user", "alice"])
        .stdin(std::process::Stdio::null())
        .stdout(gone())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Output that cannot be written is an error that says why.
    let out = ownmail()
        .arg("generate-docs")
        .arg(dir.path().join("docs"))
        .stdout(full())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
}

/// With no terminal to prompt on (cron, a script, ssh without -t) and no
/// --password-stdin, `user add` is a usage error that says what to do.
/// Regression: it was exit 75, "try again later", which a script would.
#[test]
fn user_add_without_a_terminal_says_to_use_password_stdin() {
    use std::os::unix::process::CommandExt;
    let s = Scratch::new();
    let mut cmd = s.cmd();
    cmd.args(["user", "add", "zed"])
        .stdin(std::process::Stdio::null());
    // SAFETY: setsid in the child before exec: no controlling terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("--password-stdin"), "{stderr}");
}

/// `user list` says who cannot log in, or only from where, by Dovecot's
/// extra fields; both still receive mail.
#[test]
fn user_list_shows_nologin_and_allow_nets() {
    let s = Scratch::new();
    s.add_user("alice", "pw");
    let users = s.dir.path().join("data/passwd");
    let line = std::fs::read_to_string(&users).unwrap();
    let hash = line.trim().split(':').nth(1).unwrap().to_owned();
    std::fs::write(
        &users,
        format!(
            "{}gina:{hash}::::::nologin reason=closed\nhank:{hash}::::::allow_nets=10.0.0.0/8\n",
            line
        ),
    )
    .unwrap();
    let out = succeed(s.cmd().args(["user", "list"]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "alice\ngina\t(cannot log in: nologin (closed))\nhank\t(logs in only from allow_nets=10.0.0.0/8)\n"
    );
}

/// Regression: `sudo ownmail user add` left the users file, its lock and the
/// new Maildir owned by root, which a server running as the mail user
/// cannot read. As root, what is created takes the owner of the directory
/// it is made in, and a replaced file keeps its owner, group and mode.
#[test]
fn user_commands_run_as_root_leave_files_owned_by_the_mail_user() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // SAFETY: geteuid cannot fail.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test needs root: it checks what `user add` does when run as root \
         (run it with sudo, or in the CI container, which runs as root)"
    );
    let (mail_uid, mail_gid) = (65534, 65534);
    let s = Scratch::new();
    let data = s.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(mail_uid), Some(mail_gid)).unwrap();
    s.add_user("alice", "one");
    // An admin trying `deliver` by hand, as root: the message is the mail
    // user's too, or the IMAP server could not read it.
    let out = run(
        s.cmd().args(["deliver", "--user", "alice"]),
        b"Subject: delivered by root\n\nx\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_dir(s.maildir("alice").join("new"))
            .unwrap()
            .count(),
        1
    );

    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.clone());
            if p.is_dir() {
                walk(&p, out);
            }
        }
    }
    let mut made = Vec::new();
    walk(&data, &mut made);
    assert!(made.len() > 10, "{made:?}");
    assert!(
        !made
            .iter()
            .any(|p| p.to_string_lossy().contains("ownmail-mkdir")),
        "a staging directory was left behind: {made:?}"
    );
    for p in [
        data.join("passwd"),
        data.join("mail"),
        s.maildir("alice").join("new"),
        s.maildir("alice").join(".Sent/maildirfolder"),
    ] {
        assert!(made.contains(&p), "{} was not made", p.display());
    }
    for p in &made {
        let m = std::fs::symlink_metadata(p).unwrap();
        assert_eq!(
            (m.uid(), m.gid()),
            (mail_uid, mail_gid),
            "owner of {}",
            p.display()
        );
    }

    // An existing users file keeps its owner, group and mode, whoever that is.
    let passwd = data.join("passwd");
    std::os::unix::fs::chown(&passwd, Some(mail_uid - 1), Some(mail_gid - 2)).unwrap();
    std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o640)).unwrap();
    let check = |what: &str| {
        let m = std::fs::metadata(&passwd).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (mail_uid - 1, mail_gid - 2, 0o640),
            "users file after {what}"
        );
    };
    s.add_user("bob", "two");
    check("user add");
    let out = run(
        s.cmd().args(["user", "passwd", "bob", "--password-stdin"]),
        b"three\n",
    );
    assert!(out.status.success());
    check("user passwd");
    let out = run(s.cmd().args(["user", "del", "bob", "--purge"]), b"");
    assert!(out.status.success());
    check("user del");
}

/// Regression: `tunnel tls --ca /missing/file` exited 75, a temporary
/// failure, so cron or systemd would retry it for ever. A file named on the
/// command line that cannot be read is 66, as convert-mbox and spamcheck
/// answer for theirs, and the error names the file.
#[test]
fn tunnel_tls_with_a_missing_ca_file_is_exit_66_naming_it() {
    let s = Scratch::new();
    let missing = s.dir.path().join("missing/ca.pem");
    for mode in [&["--stdio"][..], &["--listen", "127.0.0.1:0"][..]] {
        let out = run(
            ownmail()
                .args(["tunnel", "tls", "--connect", "mail.example.org:993", "--ca"])
                .arg(&missing)
                .args(mode),
            b"",
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(66), "{mode:?}: {err}");
        assert!(
            err.contains(&format!("--ca {}", missing.display())),
            "{mode:?}: {err}"
        );
    }
}

/// Each broken configuration, through `check-config`: one line on stderr
/// naming the file, the place, the key path and what was wrong, in words
/// about the file, never the YAML library's own option or type names.
#[test]
fn check_config_errors_name_the_place_and_no_library_internals() {
    let s = Scratch::new();
    // (what is broken, the file, where, words the message must hold)
    let cases: &[(&str, &[u8], &str, &[&str])] = &[
        (
            "tab indentation after a scalar",
            b"hostname: a.org\ntls:\n  cert: a\n\tkey: b\n",
            "line 4 column 1:",
            &["YAML does not allow tabs for indentation; indent with spaces"],
        ),
        (
            "tab indentation of a section",
            b"smtp:\n\tlisten: [\"0.0.0.0:25\"]\n",
            "line 2 column 1:",
            &["YAML does not allow tabs for indentation; indent with spaces"],
        ),
        (
            "unknown key at the top level",
            b"hostname: a.org\nhostnme: x\n",
            "line 2 column 1:",
            &["hostnme", "top level", "hostname, domains, data_dir"],
        ),
        (
            "unknown nested key",
            b"smtp:\n  listen: [\"0.0.0.0:25\"]\n  lisen: 3\n",
            "line 3 column 3:",
            &["smtp.lisen:", "in smtp", "listen, submission"],
        ),
        (
            "unknown key in a list item",
            b"fetch:\n  accounts:\n    - name: a\n      hots: x\n",
            "line 4 column 7:",
            &["fetch.accounts[0].hots:", "host"],
        ),
        (
            "a word for a number",
            b"smtp:\n  max_connections: lots\n",
            "line 2 column 20:",
            &["smtp.max_connections:", "whole number", "\"lots\""],
        ),
        (
            "a word for true or false",
            b"smtp:\n  reverse_dns: maybe\n",
            "line 2 column 16:",
            &["smtp.reverse_dns:", "true or false", "\"maybe\""],
        ),
        (
            "a number for a section",
            b"hostname: a.org\nsmtp: 5\n",
            "line 2 column 7:",
            &["smtp:", "mapping"],
        ),
        (
            "a list for a user name",
            b"aliases:\n  postmaster: [1, [2]]\n",
            "line 2 column 15:",
            &["aliases.postmaster:", "user name"],
        ),
        (
            "a missing key",
            b"smtp:\n  relay:\n    port: 25\n",
            "line 3 column 5:",
            &["smtp.relay.host:", "missing"],
        ),
        (
            "a bad duration",
            b"smtp:\n  queue_lifetime: 5 fortnights\n",
            "line 2:",
            &["smtp.queue_lifetime:", "duration"],
        ),
        (
            "a bad address",
            b"smtp:\n  listen:\n    - \"0.0.0.0:25\"\n    - \"nowhere\"\n",
            "line 4:",
            &["smtp.listen[1]:", "\"nowhere\""],
        ),
        (
            "a duplicate key",
            b"hostname: a.org\nhostname: b.org\n",
            "line 2 column 1:",
            &["hostname:", "twice"],
        ),
        (
            "two documents",
            b"hostname: a.org\n---\nhostname: b.org\n",
            "line 3 column 1:",
            &["one document"],
        ),
        (
            "a byte that is not UTF-8",
            b"hostname: a.org\ndata_dir: /var/\xff\n",
            "line 2 column 16:",
            &["data_dir:", "0xff", "UTF-8"],
        ),
        (
            "a certificate file that is not there",
            b"tls:\n  cert: nope.pem\n  key: nope.key\n",
            "line 2:",
            &["tls.cert:", "nope.pem", "No such file"],
        ),
        (
            "a password file that is not there",
            b"fetch:\n  accounts:\n    - name: a\n      protocol: pop3\n      host: pop.isp.example\n      username: me\n      password_command: cat a.pass\n      deliver_to: {user: alice}\n    - name: b\n      protocol: pop3\n      host: pop.isp.example\n      username: me\n      password_file: b.pass\n      deliver_to: {user: alice}\n",
            "line 13:",
            &["fetch.accounts[1].password_file:", "b.pass", "No such file"],
        ),
    ];
    // What the library says of itself and of our Rust types.
    let internals = [
        "Options", "Policy", "from_str", "Raw", "struct ", "enum ", "u64", "u16", "scalar",
        "budget", "saphyr", "serde", "-->",
    ];
    let file = s.config().display().to_string();
    for (what, text, place, words) in cases {
        std::fs::write(s.config(), text).unwrap();
        let out = run(s.cmd().arg("check-config"), b"");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{what}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{what}: one line: {stderr}");
        assert!(
            stderr.starts_with(&format!("ownmail: {file}: {place}")),
            "{what}: wants {place}: {stderr}"
        );
        for w in *words {
            assert!(stderr.contains(w), "{what}: wants {w:?}: {stderr}");
        }
        for w in internals {
            assert!(!stderr.contains(w), "{what}: says {w:?}: {stderr}");
        }
    }
    // An empty file is all defaults, not an error.
    std::fs::write(s.config(), "").unwrap();
    let out = run(s.cmd().arg("check-config"), b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `sendmail -q` (and `-q1h`), which cron jobs and scripts written for
/// Postfix or sendmail run, runs the queue now and says nothing; it was
/// ownmail's global "quiet" and then a usage error (no recipients). Called
/// as `sendmail` or as `ownmail sendmail`.
#[test]
fn sendmail_minus_q_runs_the_queue_quietly() {
    let s = Scratch::new();
    s.add_user("alice", "one");
    let queued = run(
        s.cmd().args(["sendmail", "-i", "alice"]),
        b"Subject: queued\n\nx\n",
    );
    assert!(
        queued.status.success(),
        "{}",
        String::from_utf8_lossy(&queued.stderr)
    );
    assert!(
        support::messages(&s.maildir("alice")).is_empty(),
        "no server runs"
    );
    let link = s.dir.path().join("sendmail");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ownmail"), &link).unwrap();
    let mut called_as_sendmail = std::process::Command::new(&link);
    called_as_sendmail
        .env_remove("OWNMAIL_CONFIG")
        .arg("--config")
        .arg(s.config());
    for (cmd, q) in [
        (&mut called_as_sendmail, "-q"),
        (&mut s.cmd().arg("sendmail"), "-q1h"),
    ] {
        let out = run(cmd.arg(q), b"");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{q}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "{q}: {out:?}"
        );
    }
    let inbox = support::messages(&s.maildir("alice"));
    assert_eq!(inbox.len(), 1);
    assert!(
        std::fs::read_to_string(&inbox[0])
            .unwrap()
            .contains("Subject: queued")
    );
}
