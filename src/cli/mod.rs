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
    Spamcheck(SpamcheckArgs),
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
}

/// Classify a message as spam or ham, or train the filter
#[derive(Debug, Args)]
#[command(
    long_about = "\
Read one message (FILE, or standard input) and write it to standard output
with SpamAssassin-compatible headers: X-Spam-Flag: YES (spam only),
X-Spam-Score, X-Spam-Level (one * per point) and X-Spam-Status: Yes|No,
score=S required=R tests=RULES,... Any X-Spam-* header the message already
had is removed first. Nothing else in the message changes.

The score is the sum of the scores of the rules the message hits: one of
BAYES_00 to BAYES_999 from the Bayesian classifier (Robinson-Fisher
chi-square combining over tokens from the decoded headers and bodies, once
trained with `ownmail spamcheck train`), plus rules for header sanity, forged
or missing Date and Message-ID, HTML-only bodies, hidden words and
suspicious links. Rules and scores are listed by --list-rules; a rules file
(spam.rules in the configuration, or --rules) overrides scores.

Databases: the site-wide one (spam.db, default <data_dir>/spam/site.db) and,
with --user, the user's own (<db folder>/users/USER.db); their counts add up.
Messages over 4 MiB are not scanned: they pass through with
X-Spam-Status: No, ... too big.

Exit codes: 0 done (with --exit-code: ham); 1 spam (with --exit-code only);
64 bad arguments; 66 FILE missing; 75 temporary failure; 78 bad configuration
or rules file.",
    after_help = "\
Examples:
  ownmail spamcheck < message.eml
  ownmail spamcheck --report message.eml
  ownmail spamcheck train --spam ~/Maildir/.Junk --ham ~/Maildir/cur
  ownmail spamcheck train --forget --spam wrongly-filed.eml
  ownmail spamcheck --db ./site.db --exit-code < message.eml && echo ham

A procmail recipe:
  :0 fw
  | /usr/bin/ownmail spamcheck
  :0:
  * ^X-Spam-Flag: YES
  .Junk/"
)]
pub struct SpamcheckArgs {
    #[command(subcommand)]
    pub command: Option<SpamcheckCommand>,
    /// The message to check (default: standard input)
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Print each rule hit with its score instead of the message
    #[arg(long)]
    pub report: bool,
    /// Exit 1 for spam, 0 for ham
    #[arg(long)]
    pub exit_code: bool,
    /// Print only the score instead of the message
    #[arg(long)]
    pub score_only: bool,
    /// Also use this user's database (from the configuration)
    #[arg(long, short = 'u', value_name = "NAME", global = true)]
    pub user: Option<String>,
    /// Use this database file instead of the configuration's site database
    #[arg(long, value_name = "FILE", global = true)]
    pub db: Option<PathBuf>,
    /// Score overrides (default: spam.rules from the configuration)
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// List the rules with their scores and descriptions, then exit
    #[arg(long)]
    pub list_rules: bool,
    /// Read file names from standard input, one per line, and print `FILE SCORE spam|ham TESTS` for each
    #[arg(long, conflicts_with_all = ["file", "report", "score_only", "exit_code"])]
    pub bulk: bool,
}

#[derive(Debug, Subcommand)]
pub enum SpamcheckCommand {
    /// Learn messages as spam or ham (Maildirs, folders of files, mbox files, single files)
    #[command(after_help = "\
Examples:
  ownmail spamcheck train --spam ~/Maildir/.Junk --ham ~/Maildir
  ownmail spamcheck train --user alice --spam junk.mbox
  ownmail spamcheck train --forget --ham misfiled.eml

Training rewrites the database atomically (written beside it, fsynced,
renamed): a scan running at the same time sees the old or the new one.")]
    Train {
        /// Spam to learn: a Maildir, a folder of message files, an mbox file or a message file
        #[arg(long, value_name = "PATH", num_args = 1..)]
        spam: Vec<PathBuf>,
        /// Ham (good mail) to learn, in the same forms
        #[arg(long, value_name = "PATH", num_args = 1..)]
        ham: Vec<PathBuf>,
        /// Unlearn these messages instead (undo an earlier training)
        #[arg(long)]
        forget: bool,
    },
}
