//! Credentials and what is built from them: the password (from a file or a
//! command) or an OAuth2 access token (from `token_command`), and the SASL
//! and APOP strings the servers want.
//!
//! Commands run as `/bin/sh -c COMMAND`; the first line of their output is
//! the secret. Their exit 75 is a temporary failure (a token helper whose
//! provider is down); any other failure is permanent (it needs a person).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::auth::Secret;
use crate::config::fetch::{Credential, FetchAccount};
use crate::error::sysexits;

/// The most of a password file or a command's output we read.
const MAX_SECRET: u64 = 64 * 1024;
/// How long a password or token command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What we log in with.
#[derive(Debug)]
pub enum Login {
    Password(Secret),
    Token(Secret),
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("password_file {}: {source}", path.display())]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {command:?}: {why}")]
    Command {
        what: &'static str,
        command: String,
        why: String,
        temporary: bool,
    },
    #[error("{what} gave an empty {secret}")]
    Empty { what: String, secret: &'static str },
}

impl CredentialError {
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            CredentialError::Command {
                temporary: true,
                ..
            }
        )
    }
}

/// Reads the account's password or runs its command.
pub async fn obtain(account: &FetchAccount) -> Result<Login, CredentialError> {
    match &account.credential {
        Credential::PasswordFile(path) => {
            let secret = read_password_file(path)?;
            Ok(Login::Password(non_empty(
                secret,
                format!("password_file {}", path.display()),
                "password",
            )?))
        }
        Credential::PasswordCommand(command) => {
            let secret = run("password_command", command).await?;
            Ok(Login::Password(non_empty(
                secret,
                format!("password_command {command:?}"),
                "password",
            )?))
        }
        Credential::TokenCommand(command) => {
            let secret = run("token_command", command).await?;
            Ok(Login::Token(non_empty(
                secret,
                format!("token_command {command:?}"),
                "token",
            )?))
        }
    }
}

fn non_empty(s: Secret, what: String, secret: &'static str) -> Result<Secret, CredentialError> {
    if s.expose().is_empty() {
        Err(CredentialError::Empty { what, secret })
    } else {
        Ok(s)
    }
}

fn read_password_file(path: &Path) -> Result<Secret, CredentialError> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let err = |source| CredentialError::File {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    if meta.mode() & 0o077 != 0 {
        tracing::warn!(
            file = %path.display(),
            "the password file can be read by others (chmod 600 it)"
        );
    }
    let mut bytes = Vec::new();
    file.take(MAX_SECRET).read_to_end(&mut bytes).map_err(err)?;
    Ok(first_line(bytes))
}

/// The first line, without its line end; the buffer is wiped.
fn first_line(mut bytes: Vec<u8>) -> Secret {
    let end = bytes
        .iter()
        .position(|b| *b == b'\n')
        .unwrap_or(bytes.len());
    let line = &bytes[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let secret = Secret::new(String::from_utf8_lossy(line).into_owned());
    bytes.fill(0);
    secret
}

async fn run(what: &'static str, command: &str) -> Result<Secret, CredentialError> {
    let fail = |why: String, temporary| CredentialError::Command {
        what,
        command: command.to_owned(),
        why,
        temporary,
    };
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(e.to_string(), true))?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let run = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut stdout = (&mut stdout).take(MAX_SECRET);
        let mut stderr = (&mut stderr).take(4096);
        let (a, b) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        let status = child.wait().await;
        (a.and(b).map(|_| (out, err)), status)
    };
    let (read, status) = tokio::time::timeout(COMMAND_TIMEOUT, run)
        .await
        .map_err(|_| {
            fail(
                format!("no answer in {} seconds", COMMAND_TIMEOUT.as_secs()),
                true,
            )
        })?;
    let (out, err) = read.map_err(|e| fail(e.to_string(), true))?;
    let status = status.map_err(|e| fail(e.to_string(), true))?;
    if !status.success() {
        let said = String::from_utf8_lossy(&err)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let temporary = status.code() == Some(i32::from(sysexits::TEMPFAIL));
        return Err(fail(
            format!(
                "{status}{}",
                if said.is_empty() {
                    String::new()
                } else {
                    format!(": {said}")
                }
            ),
            temporary,
        ));
    }
    Ok(first_line(out))
}

/// SASL PLAIN (RFC 4616): no authorization identity, then the user and
/// the password, NUL-separated.
pub fn sasl_plain(user: &str, password: &Secret) -> Secret {
    Secret::new(format!("\0{user}\0{}", password.expose()))
}

/// XOAUTH2, as Google and Microsoft document it.
pub fn sasl_xoauth2(user: &str, token: &Secret) -> Secret {
    Secret::new(format!(
        "user={user}\x01auth=Bearer {}\x01\x01",
        token.expose()
    ))
}

/// OAUTHBEARER (RFC 7628 3.1): a GS2 header naming the user (`,` and `=`
/// escaped as RFC 5801 says), the host and port, and the token.
pub fn sasl_oauthbearer(user: &str, host: &str, port: u16, token: &Secret) -> Secret {
    let user = user.replace('=', "=3D").replace(',', "=2C");
    Secret::new(format!(
        "n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
        token.expose()
    ))
}

/// APOP (RFC 1939 7): the lower-case hex MD5 of the greeting's timestamp
/// and the password.
pub fn apop_digest(timestamp: &str, password: &Secret) -> String {
    let mut input = Vec::with_capacity(timestamp.len() + password.expose().len());
    input.extend_from_slice(timestamp.as_bytes());
    input.extend_from_slice(password.expose().as_bytes());
    let digest = openssl::hash::hash(openssl::hash::MessageDigest::md5(), &input)
        .map(|d| d.to_vec())
        .unwrap_or_default();
    input.fill(0);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apop_matches_rfc_1939() {
        // RFC 1939 7's example.
        assert_eq!(
            apop_digest(
                "<1896.697170952@dbc.mtview.ca.us>",
                &Secret::new("tanstaaf".into())
            ),
            "c4c9334bac560ecc979e58001b3e22fb"
        );
    }

    #[test]
    fn sasl_strings() {
        let pw = Secret::new("pw".into());
        assert_eq!(sasl_plain("me", &pw).expose(), "\0me\0pw");
        assert_eq!(
            sasl_xoauth2("me@x", &pw).expose(),
            "user=me@x\x01auth=Bearer pw\x01\x01"
        );
        assert_eq!(
            sasl_oauthbearer("a,b=c", "imap.x", 993, &pw).expose(),
            "n,a=a=2Cb=3Dc,\x01host=imap.x\x01port=993\x01auth=Bearer pw\x01\x01"
        );
    }

    #[tokio::test]
    async fn secrets_come_from_files_and_commands() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "p a s s\r\nsecond line\n").unwrap();
        assert_eq!(read_password_file(&file).unwrap().expose(), "p a s s");
        assert!(matches!(
            read_password_file(&dir.path().join("missing")),
            Err(CredentialError::File { .. })
        ));
        assert_eq!(
            run("token_command", "printf 'tok\\nx'")
                .await
                .unwrap()
                .expose(),
            "tok"
        );
        let e = run("token_command", "echo provider down >&2; exit 75")
            .await
            .unwrap_err();
        assert!(
            e.is_temporary() && e.to_string().contains("provider down"),
            "{e}"
        );
        let e = run("password_command", "exit 1").await.unwrap_err();
        assert!(!e.is_temporary(), "{e}");
    }
}
