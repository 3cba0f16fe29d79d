//! `ownmail user add|passwd|del|list`: the users file and the Maildirs that
//! go with it.

use std::io::BufRead;

use anyhow::{Context, bail};

use super::{UsageError, known_user, load_config};
use crate::auth::{DEFAULT_FOLDERS, PasswordHash, Secret, UserName, Users, UsersError};
use crate::cli::{GlobalArgs, UserArgs, UserCommand};
use crate::error::sysexits;
use crate::store::{MailboxName, Maildir};

pub fn run(global: &GlobalArgs, args: UserArgs) -> anyhow::Result<u8> {
    let config = load_config(global)?;
    match args.command {
        UserCommand::Add {
            name,
            password_stdin,
        } => {
            let user = UserName::new(&name).map_err(|e| UsageError(e.to_string()))?;
            if Users::load(&config.users_file)?
                .get(user.as_str())
                .is_some()
            {
                return Err(UsersError::Exists(user.to_string()).into());
            }
            let hash = PasswordHash::new_argon2id(&read_password(password_stdin, &user)?)?;
            Users::update(&config.users_file, |u| u.add(user.clone(), hash))?;
            let maildir = Maildir::create(config.user_maildir(&user))?;
            for folder in DEFAULT_FOLDERS {
                maildir.folder_or_create(&MailboxName::new(folder)?)?;
            }
            say!("added {user}; mail goes to {}", maildir.root().display());
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let user = known_user(&config, &name)?;
            let hash = PasswordHash::new_argon2id(&read_password(password_stdin, &user)?)?;
            Users::update(&config.users_file, |u| u.set_password(user.as_str(), hash))?;
            say!("changed the password of {user}");
        }
        UserCommand::Del { name, purge } => {
            let user = UserName::new(&name).map_err(|e| UsageError(e.to_string()))?;
            Users::update(&config.users_file, |u| u.remove(user.as_str()))?;
            let maildir = config.user_maildir(&user);
            if purge && maildir.exists() {
                std::fs::remove_dir_all(&maildir)
                    .with_context(|| format!("removing {}", maildir.display()))?;
                say!("deleted {user} and their mail in {}", maildir.display());
            } else if maildir.exists() {
                say!(
                    "deleted {user}; their mail is kept in {} (--purge deletes it)",
                    maildir.display()
                );
            } else {
                say!("deleted {user}");
            }
        }
        UserCommand::List => {
            let users = Users::load(&config.users_file)?;
            for entry in users.entries() {
                match (entry.nologin(), entry.allow_nets()) {
                    (Some(why), _) => out!("{}\t(cannot log in: {why})", entry.name)?,
                    (None, Some(nets)) => {
                        out!("{}\t(logs in only from allow_nets={nets})", entry.name)?
                    }
                    (None, None) => out!("{}", entry.name)?,
                }
            }
            for (name, why) in users.problems() {
                out!("{name}\t(cannot log in: {why})")?;
            }
        }
    }
    Ok(sysexits::OK)
}

/// A new password: one line from stdin, or typed twice at a no-echo prompt.
fn read_password(from_stdin: bool, user: &UserName) -> anyhow::Result<Secret> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.truncate(line.trim_end_matches(['\r', '\n']).len());
        Secret::new(line)
    } else {
        // The prompt reads the terminal itself (/dev/tty), not stdin.
        if std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .is_err()
        {
            return Err(UsageError(
                "no terminal to ask for the password on: give it with --password-stdin".into(),
            )
            .into());
        }
        let first = Secret::new(
            rpassword::prompt_password(format!("New password for {user}: "))
                .context("reading the password (no terminal? use --password-stdin)")?,
        );
        let again = Secret::new(rpassword::prompt_password("Again: ")?);
        if first.expose() != again.expose() {
            bail!(UsageError(
                "the two passwords differ; nothing was changed".into()
            ));
        }
        first
    };
    if password.expose().is_empty() {
        bail!(UsageError(
            "the password is empty; nothing was changed".into()
        ));
    }
    Ok(password)
}
