//! The command line: clap definitions, one Args struct per subcommand. The
//! same definitions generate `--help`, the man pages and the shell
//! completions ([`docs`]), so the three cannot disagree.

pub mod docs;

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

const ABOUT: &str = "Composable mail commands for people who run their own mail server";

const LONG_ABOUT: &str = "\
ownmail is a toolkit of mail commands for a server at home, for a family or a
small team. Each subcommand does one job and shares one configuration file
and one Maildir store, which Dovecot can read too.";

const AFTER_HELP: &str = "\
Configuration is read from --config FILE, else $OWNMAIL_CONFIG, else
./ownmail.yaml, else $XDG_CONFIG_HOME/ownmail/ownmail.yaml, else
/etc/ownmail/ownmail.yaml. `ownmail check-config` shows what is in effect.

Exit codes follow sysexits(3): 0 success, 64 usage, 65 bad message,
67 unknown user, 73 cannot create, 75 temporary failure (try again later),
78 configuration error.";

#[derive(Debug, Parser)]
#[command(name = "ownmail", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
#[command(propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The configuration file (default: see below)
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log more (-v: info, -vv: debug, -vvv: trace)
    #[arg(long, short = 'v', global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Log less (-q: errors only, -qq: nothing)
    #[arg(long, short = 'q', global = true, action = ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Deliver(DeliverArgs),
    User(UserArgs),
    CheckConfig(CheckConfigArgs),
    Fetch(FetchArgs),
    ServeImap(ServeImapArgs),
    Serve(ServeArgs),
    /// Write the man pages and shell completions into DIR/man and DIR/completions
    #[command(hide = true)]
    GenerateDocs {
        /// The project folder to write into
        dir: PathBuf,
    },
}

/// Deliver one message from standard input into a Maildir folder
#[derive(Debug, Args)]
#[command(
    long_about = "\
Deliver one message from standard input into a Maildir folder, durably: the
exit status is 0 only when the message file and its folder are on disk
(fsynced). A leading mbox `From ` line is removed; Return-Path: and
Delivered-To: are added; CRLF line ends become LF. A message that already has
our Delivered-To: for this recipient is refused as a mail loop.

Exit codes (sysexits): 0 delivered; 64 bad arguments; 65 empty message or
mail loop; 67 unknown user; 73 folder missing or cannot be created;
75 temporary failure (disk full, I/O error, lock timeout): the MTA retries;
78 bad configuration.",
    after_help = "\
Examples:
  ownmail deliver --user alice < message.eml
  ownmail deliver --maildir ~/Maildir --folder Lists/rust --create < message.eml
  ownmail deliver --user alice --flags '\\Seen $Label1' < message.eml

Postfix (main.cf), one user per system account:
  mailbox_command = /usr/bin/ownmail deliver --user \"$USER\"
A .forward file:
  \"|/usr/bin/ownmail deliver --maildir $HOME/Maildir\"
A procmail recipe:
  :0 w
  | /usr/bin/ownmail deliver --maildir $HOME/Maildir --folder Lists --create"
)]
#[command(group = clap::ArgGroup::new("destination").required(true).args(["user", "maildir"]))]
pub struct DeliverArgs {
    /// Deliver to this user's Maildir (<data_dir>/mail/NAME, from the configuration)
    #[arg(long, short = 'u', value_name = "NAME")]
    pub user: Option<String>,
    /// Deliver to the Maildir at DIR (created if missing; no configuration needed)
    #[arg(long, short = 'm', value_name = "DIR")]
    pub maildir: Option<PathBuf>,
    /// The folder, `/` between levels (e.g. Lists/rust)
    #[arg(long, short = 'f', value_name = "NAME", default_value = "INBOX")]
    pub folder: String,
    /// Create the folder if it does not exist
    #[arg(long)]
    pub create: bool,
    /// The envelope sender, for Return-Path: (default: the `From ` line, else $SENDER)
    #[arg(long, short = 'F', value_name = "ADDR")]
    pub from: Option<String>,
    /// The final recipient, for Delivered-To: (default: $RECIPIENT, else USER@first domain)
    #[arg(long, short = 'a', value_name = "ADDR")]
    pub recipient: Option<String>,
    /// IMAP flags and keywords to set, separated by spaces or commas (e.g. '\Seen $Label1')
    #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
    pub flags: Option<String>,
}

/// Manage users: add, change passwords, delete, list
#[derive(Debug, Args)]
#[command(long_about = "\
Manage the users file (Dovecot's passwd-file format, so an existing Dovecot
file works as it is). Passwords are stored as {ARGON2ID} hashes;
{SHA512-CRYPT} and {BLF-CRYPT} from Dovecot are accepted. The file is
rewritten atomically under a lock.")]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user and create their Maildir (INBOX, Drafts, Sent, Junk, Trash, Archive)
    #[command(
        after_help = "Examples:\n  ownmail user add alice\n  echo 'correct horse' | ownmail user add alice --password-stdin"
    )]
    Add {
        /// The user name (letters, digits and ._+-@)
        name: String,
        /// Read the password as one line from standard input instead of prompting
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's password
    Passwd {
        name: String,
        /// Read the password as one line from standard input instead of prompting
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete a user (their mail is kept unless --purge)
    Del {
        name: String,
        /// Also delete the user's Maildir, irrecoverably
        #[arg(long)]
        purge: bool,
    },
    /// List the users, and any whose line cannot be used
    List,
}

/// Check the configuration and print it resolved
#[derive(Debug, Args)]
#[command(long_about = "\
Load and validate the configuration, then print it resolved: paths made
absolute, defaults filled in. On an error, name the file, the line and the
key that is wrong, and exit 78. Also checks that the users file can be read
and that the TLS certificate and key exist.")]
pub struct CheckConfigArgs {}

/// Fetch mail from remote POP3 and IMAP accounts into local mailboxes
#[derive(Debug, Args)]
#[command(
    long_about = "\
Fetch mail from the POP3 and IMAP accounts in the configuration's fetch:
section and deliver it locally (deliver_to: a user, a Maildir, an MDA or an
SMTP server), without ever losing or doubling a message: each message is
delivered durably, then recorded in <data_dir>/fetch/<account>.state, and
only then deleted on the server (unless keep: true). A crash at any moment
loses nothing and, on the next run, fetches nothing twice.

Made for cron: with -q nothing is printed when there was nothing to do;
errors go to standard error, one line each, naming the account. A second
fetch started while one runs waits up to 10 seconds for an account, then
leaves it alone (exit 0). Messages bigger than max_size stay on the server
and are reported once. On a terminal, a progress bar per account.

Exit codes: 0 every account done (or busy); 1 an account failed (wrong
password, untrusted certificate, a message refused for good); 75 every
failure was temporary (network, server busy, disk full): try again later;
64 unknown --account; 78 bad configuration.",
    after_help = "\
Examples:
  ownmail fetch
  ownmail fetch --account isp --keep
  ownmail fetch -q                      # from cron: silent unless there is news
  ownmail fetch --json | jq '.accounts[].fetched'
  ownmail fetch --idle                  # as a service: IMAP IDLE, POP3 every 5 minutes

crontab (every 5 minutes):
  */5 * * * * /usr/bin/ownmail fetch -q

Configuration (ownmail.yaml):
  fetch:
    accounts:
      - name: isp
        protocol: pop3
        host: pop.isp.example
        username: me
        password_file: isp.pass
        deliver_to: {user: alice}"
)]
pub struct FetchArgs {
    /// Fetch only this account (repeat for several; default: all)
    #[arg(long, short = 'a', value_name = "NAME")]
    pub account: Vec<String>,
    /// Leave every message on the server this time, whatever keep says
    #[arg(long, short = 'k')]
    pub keep: bool,
    /// Fetch every message again, including ones fetched before
    #[arg(long)]
    pub all: bool,
    /// Keep running: IMAP accounts wait with IDLE, POP3 accounts are polled every 5 minutes
    #[arg(long)]
    pub idle: bool,
    /// Print what was done as JSON on standard output (always, even with -q)
    #[arg(long)]
    pub json: bool,
}

/// Serve the users' Maildirs over IMAP
#[derive(Debug, Args)]
#[command(
    long_about = "\
Serve the users' Maildirs (<data_dir>/mail/<user>) over IMAP4rev1 with IDLE,
UIDPLUS, MOVE, LITERAL+, SASL-IR, NAMESPACE, ID, ENABLE, UNSELECT, CHILDREN,
SPECIAL-USE, LIST-EXTENDED, LIST-STATUS, ESEARCH, STATUS=SIZE and APPENDLIMIT.
UIDs live in each folder's dovecot-uidlist and keywords in dovecot-keywords,
in Dovecot's formats: Dovecot and ownmail can serve the same Maildir, one
after the other or at the same time, and agree on every UID and flag.

Listens on the configuration's imap.listen (plain, with STARTTLS when tls: is
set) and imap.listen_tls (implicit TLS) addresses, or on --listen and
--listen-tls. Passwords are refused in plain text except from loopback
(LOGINDISABLED). Failed logins from one address wait longer and longer (1 s,
doubling to 32 s). SIGTERM or SIGINT: every session is told `* BYE` and the
server exits. At most 1000 connections; a session idle for 30 minutes is
logged out.

With --stdio, one session is served on standard input and output (inetd);
with --preauth it is already logged in as the invoking user (or --user), for
`ssh host ownmail serve-imap --stdio --preauth` as mutt's tunnel or mbsync's
Tunnel.",
    after_help = "\
Examples:
  ownmail serve-imap                                  # addresses from ownmail.yaml
  ownmail serve-imap --listen 127.0.0.1:1143
  ownmail serve-imap --listen-tls 0.0.0.0:993
  ssh mail.example.org ownmail serve-imap --stdio --preauth

Configuration (ownmail.yaml):
  tls: {cert: /etc/ownmail/cert.pem, key: /etc/ownmail/key.pem}
  imap:
    listen: [\"127.0.0.1:143\"]
    listen_tls: [\"0.0.0.0:993\"]

mbsync (~/.mbsyncrc):
  IMAPAccount home
  Tunnel \"ssh mail.example.org ownmail serve-imap --stdio --preauth\""
)]
pub struct ServeImapArgs {
    /// Listen for plain IMAP (STARTTLS when tls: is configured) on ADDR (repeatable; replaces imap.listen)
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<std::net::SocketAddr>,
    /// Listen for IMAP over TLS on ADDR (repeatable; replaces imap.listen_tls)
    #[arg(long, value_name = "ADDR")]
    pub listen_tls: Vec<std::net::SocketAddr>,
    /// Serve one session on standard input and output
    #[arg(long, conflicts_with_all = ["listen", "listen_tls"])]
    pub stdio: bool,
    /// With --stdio: speak TLS from the first byte
    #[arg(long, requires = "stdio")]
    pub tls: bool,
    /// With --stdio: the session starts logged in (as the invoking user, or --user)
    #[arg(long, requires = "stdio")]
    pub preauth: bool,
    /// With --preauth: the user to serve
    #[arg(long, short = 'u', value_name = "NAME", requires = "preauth")]
    pub user: Option<String>,
}

/// Run every configured server in one process (for now: IMAP)
#[derive(Debug, Args)]
#[command(long_about = "\
Run every server the configuration sets up, in one process: today IMAP
(imap.listen, imap.listen_tls; 127.0.0.1:1143 when neither is set).

With no configuration file anywhere, it starts at once for a first try: it
writes ./ownmail.yaml (data in ./ownmail-data, IMAP on 127.0.0.1:1143) and
tells you how to add a user (`ownmail user add NAME`).")]
pub struct ServeArgs {}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn deliver_needs_a_destination_but_only_one() {
        assert!(Cli::try_parse_from(["ownmail", "deliver"]).is_err());
        assert!(
            Cli::try_parse_from(["ownmail", "deliver", "--user", "a", "--maildir", "/m"]).is_err()
        );
        let cli = Cli::try_parse_from(["ownmail", "-v", "deliver", "-u", "a", "--flags", "\\Seen"])
            .unwrap();
        let Command::Deliver(d) = cli.command else {
            panic!("not deliver")
        };
        assert_eq!(
            (d.user.as_deref(), d.folder.as_str(), d.flags.as_deref()),
            (Some("a"), "INBOX", Some("\\Seen"))
        );
        assert_eq!(cli.global.verbose, 1);
    }

    #[test]
    fn fetch_takes_the_global_quiet_flag_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "ownmail",
            "fetch",
            "--quiet",
            "-a",
            "isp",
            "--account",
            "work",
            "--keep",
        ])
        .unwrap();
        let Command::Fetch(f) = cli.command else {
            panic!("not fetch")
        };
        assert_eq!(f.account, vec!["isp", "work"]);
        assert!(f.keep && !f.all && !f.idle && !f.json);
        assert_eq!(cli.global.quiet, 1);
    }

    #[test]
    fn serve_imap_flags_depend_on_stdio() {
        assert!(Cli::try_parse_from(["ownmail", "serve-imap", "--preauth"]).is_err());
        assert!(
            Cli::try_parse_from([
                "ownmail",
                "serve-imap",
                "--stdio",
                "--listen",
                "127.0.0.1:1"
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["ownmail", "serve-imap", "--stdio", "--user", "a"]).is_err());
        let cli = Cli::try_parse_from(["ownmail", "serve-imap", "--stdio", "--preauth", "-u", "a"])
            .unwrap();
        let Command::ServeImap(a) = cli.command else {
            panic!("not serve-imap")
        };
        assert!(a.stdio && a.preauth && !a.tls);
        assert_eq!(a.user.as_deref(), Some("a"));
    }
}
