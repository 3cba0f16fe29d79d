//! The command line: clap definitions, one Args struct per subcommand. The
//! same definitions generate `--help`, the man pages and the shell
//! completions ([`docs`]), so the three cannot disagree.

pub mod docs;

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

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
    /// The configuration file (default: $OWNMAIL_CONFIG, else the first that exists of ./ownmail.yaml, $XDG_CONFIG_HOME/ownmail/ownmail.yaml, /etc/ownmail/ownmail.yaml)
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
    ConvertMbox(ConvertMboxArgs),
    Fetch(FetchArgs),
    Spamcheck(SpamcheckArgs),
    Tunnel(TunnelArgs),
    ServeImap(ServeImapArgs),
    Serve(ServeArgs),
    ServeSmtp(ServeSmtpArgs),
    Queue(QueueArgs),
    Sendmail(SendmailArgs),
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
our Delivered-To: for this recipient below another hop's fields is refused as
a mail loop (the Delivered-To: the MTA running us has just put on top is not
one).

Exit codes (sysexits): 0 delivered; 64 bad arguments; 65 empty message or
mail loop; 67 unknown user; 73 folder missing or cannot be created;
75 temporary failure (disk full, I/O error, lock timeout, permission denied
on the Maildir or the users file, a configuration that cannot be used): the
MTA keeps the mail and retries, so a wrong owner or a typo in the
configuration delays mail until it is fixed instead of bouncing it (Postfix
bounces on 78).",
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

/// Convert mbox files and trees into Maildir folders, once
#[derive(Debug, Args)]
#[command(
    long_about = "\
Convert mbox files, or folders of them, into Maildir folders that Dovecot and
ownmail read: mutt and pine ~/Mail trees, Thunderbird profiles (X.sbd/
subfolders; .msf files ignored), Apple Mail exports (Name.mbox/mbox), spools
(/var/mail/USER). A file named INBOX or inbox, and a spool, become INBOX;
other files become folders named after them (`.` in a name becomes `_`).

Status:, X-Status:, X-Mozilla-Status: and X-Keywords: become Maildir flags
and keywords, and are removed from the messages with UW-IMAP's X-IMAP:,
X-IMAPbase: and X-UID: unless --keep-headers. The From_ line's date becomes
the message's date (IMAP INTERNALDATE). Everything else is kept byte for
byte. UW-IMAP's \"FOLDER INTERNAL DATA\" message is skipped.

Safe to run again and to interrupt: each message's file name says which mbox
offset and content it came from, so a second run adds only what is missing.
Messages are durable (files and folders fsynced) before they are counted.

On a terminal, progress is shown on standard error; otherwise nothing but the
summary (on standard output; --json for JSON). Problems are reported on
standard error as they are met: a damaged message with its byte offset, a
file that is not an mbox and why.

Exit codes (sysexits): 0 everything converted; 1 converted, but some
messages were damaged (stored as found) or some files could not be
converted; 64 bad arguments; 65 --strict stopped at a damaged message or a
file that is not an mbox; 66 a SOURCE does not exist; 67 unknown user;
73 the Maildir cannot be created; 74 read error; 75 temporary failure (disk
full, another convert-mbox running on the same Maildir); 77 run as root
into a Maildir another user owns (run it as that user); 78 bad
configuration.",
    after_help = "\
Examples:
  ownmail convert-mbox /var/mail/alice --user alice
  ownmail convert-mbox ~/Mail --maildir ~/Maildir --folder Old
  ownmail convert-mbox ~/.thunderbird/x.default/Mail/Local\\ Folders --user alice
  ownmail convert-mbox 'Work.mbox' --user alice --dry-run --json
  zcat 2009.mbox.gz | ownmail convert-mbox - --user alice --folder Archive/2009"
)]
#[command(group = clap::ArgGroup::new("destination").required(true).args(["user", "maildir"]))]
pub struct ConvertMboxArgs {
    /// mbox files, or folders of them; `-` reads one mbox from standard input
    /// (into --folder, else INBOX)
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<PathBuf>,
    /// Convert into this user's Maildir (<data_dir>/mail/NAME, from the configuration)
    #[arg(long, short = 'u', value_name = "NAME")]
    pub user: Option<String>,
    /// Convert into the Maildir at DIR (created if missing; no configuration needed)
    #[arg(long, short = 'm', value_name = "DIR")]
    pub maildir: Option<PathBuf>,
    /// The folder a single mbox goes into, or a tree goes below (e.g. Old/2019)
    #[arg(long, short = 'f', value_name = "PREFIX")]
    pub folder: Option<String>,
    /// The mbox variant (auto: Content-Length when it fits, else mboxrd)
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = MboxFormat::Auto)]
    pub format: MboxFormat,
    /// Read everything and report, but write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Keep Status:, X-Status:, X-Keywords: and the like in the messages
    #[arg(long)]
    pub keep_headers: bool,
    /// Stop at the first damaged message or file that is not an mbox
    #[arg(long)]
    pub strict: bool,
    /// Print the summary as JSON, also when the run fails or is interrupted (then with an "error" field)
    #[arg(long)]
    pub json: bool,
    /// Reader threads, and twice as many writer threads, 1 to 64 (default:
    /// one reader and two writers per core)
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MboxFormat {
    Auto,
    Mboxo,
    Mboxrd,
    Mboxcl,
    Mboxcl2,
}

/// Check the configuration and print it resolved
#[derive(Debug, Args)]
#[command(long_about = "\
Load and validate the configuration, then print it resolved: paths made
absolute, defaults filled in. On an error, name the file, the line and the
key that is wrong, and exit 78. Also checks that the users file can be read
and that the TLS certificate and key exist: when one cannot, the exit code
says why, as for any file (73: it is not a file, 75: it cannot be read now,
for instance for want of permission).")]
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

/// Reach your mail server from any network, encrypted (ssh or TLS)
#[derive(Debug, Args)]
#[command(long_about = "\
Reach your own mail server from any network, encrypted: on a hotel or cafe
network the ISP's SMTP server refuses your laptop, and plain SMTP and IMAP
passwords travel in the clear. `tunnel ssh` runs OpenSSH to forward local
ports to the server's SMTP and IMAP, watched and restarted like autossh;
`tunnel tls` carries a local plaintext port over TLS (stunnel's client mode)
or wraps a plain local service in TLS (stunnel's server mode).")]
pub struct TunnelArgs {
    #[command(subcommand)]
    pub command: TunnelCommand,
}

#[derive(Debug, Subcommand)]
pub enum TunnelCommand {
    Ssh(TunnelSshArgs),
    Tls(TunnelTlsArgs),
    Fingerprint(TunnelFingerprintArgs),
}

/// Forward local SMTP and IMAP ports to your server through ssh, supervised
#[derive(Debug, Args)]
#[command(
    long_about = "\
Forward local ports on 127.0.0.1 to your mail server through the system's
OpenSSH client (`ssh -N -L ...`), so your keys, agent and ~/.ssh/config
just work. Mail sent through the tunnel reaches the server from its own
loopback, which ownmail serve-smtp trusts for relay: no SMTP password, and
no ISP in the way.

The tunnel watches ssh the way autossh does: it starts ssh again when it
exits (after 1 s, doubling to at most 60 s; back to 1 s after a run of a
minute), and every --check-interval reads the SMTP `220` and IMAP `* OK`
greeting through each forward. While one forward answers, the ssh link is
fine: a forward whose server does not answer is reported once (and once
when it answers again), and ssh keeps running, with the connections of the
other forwards. When no forward answers two checks in a row (with a single
forward, when it fails), as with a frozen link, ssh is restarted. Forwards
without a known protocol (--forward) are only checked to be listening,
which ssh's own listener does even on a frozen link: they do not count as
answering. ssh runs with BatchMode=yes (no prompts),
ExitOnForwardFailure=yes, ServerAliveInterval=15, ServerAliveCountMax=3,
ConnectTimeout=15 and no ControlMaster; --ssh-option values come first and
win.

When ssh cannot log in (host key unknown or changed, key refused), has a
bad option, or a local port is taken, the tunnel stops and shows ssh's own
words; network trouble is retried for ever. Ctrl-C or SIGTERM stops ssh and
exits 0.

LOCAL is [ADDR:]PORT, ADDR a loopback address (default 127.0.0.1); REMOTE
is [HOST:]PORT as the server sees it (default 127.0.0.1). `none` turns a
default forward off.

Mail client settings with the defaults (printed again at start):
  Outgoing mail (SMTP): server 127.0.0.1, port 2525, connection security:
    none (the tunnel encrypts it), authentication: none (your server relays
    mail that reaches it through the tunnel)
  Incoming mail (IMAP): server 127.0.0.1, port 1143, connection security:
    none (the tunnel encrypts it), user name and password: your mail
    account's

Exit codes: 0 stopped by a signal; 64 bad arguments or ssh options;
69 no ssh, or a local port taken; 77 host key or login refused.",
    after_help = "\
Examples:
  ownmail tunnel ssh alice@mail.example.org
  ownmail tunnel ssh mail --ssh-option Port=2222 --smtp 10025:25
  ownmail tunnel ssh alice@mail.example.org --imap none --forward 4190:4190

As a user service: examples/ownmail-tunnel-ssh.service
  systemctl --user enable --now ownmail-tunnel-ssh"
)]
pub struct TunnelSshArgs {
    /// The server: [USER@]HOST, or a Host from ~/.ssh/config
    #[arg(value_name = "[USER@]HOST")]
    pub destination: String,
    /// Forward for SMTP, checked by its 220 greeting (`none`: no SMTP forward)
    #[arg(long, value_name = "LOCAL:REMOTE", default_value = "2525:25")]
    pub smtp: String,
    /// Forward for IMAP, checked by its `* OK` greeting (`none`: no IMAP forward)
    #[arg(long, value_name = "LOCAL:REMOTE", default_value = "1143:143")]
    pub imap: String,
    /// Another forward (repeatable), only checked to be listening
    #[arg(long, value_name = "LOCAL:REMOTE")]
    pub forward: Vec<String>,
    /// An ssh option, passed as `-o OPT` (repeatable), e.g. Port=2222 or IdentityFile=~/.ssh/mail
    #[arg(long, value_name = "OPT", allow_hyphen_values = true)]
    pub ssh_option: Vec<String>,
    /// Seconds between health checks of the forwards
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub check_interval: u64,
    /// Seconds a forward has to show its server's greeting
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub check_timeout: u64,
}

/// Carry a local plaintext port over TLS to a server, or wrap a local service in TLS
#[derive(Debug, Args)]
#[command(
    long_about = "\
Client mode (--connect): a local plaintext port (--listen, on loopback)
whose connections are carried over TLS to HOST:PORT, for mail clients that
cannot do TLS themselves; or one connection over standard input and output
(--stdio), for mutt's `tunnel` and mbsync's `Tunnel`. The server's
certificate is verified against the system's trust store and its name
checked, or against --ca FILE (a private CA), or pinned with --pin (a
self-signed certificate: get the fingerprint with `ownmail tunnel
fingerprint HOST:PORT`, on a network you trust). A certificate that fails
is refused, with the fingerprint that was seen; nothing is relayed.

Server mode (--accept): TLS connections are accepted on ADDR and carried in
plaintext to --to (a loopback address), with the certificate and key of the
configuration's `tls:` section, read again whenever the files change (a
renewed certificate needs no restart). The service behind sees every
connection come from 127.0.0.1: never put it in front of a port that trusts
loopback, such as serve-smtp's relay port, or the world may relay through
you.

Mail client settings in client mode, e.g. with --listen 127.0.0.1:1143 and
--connect mail.example.org:993: server 127.0.0.1, port 1143, connection
security: none (the tunnel encrypts it), user name and password: your mail
account's. For SMTP (--connect HOST:465), the same with authentication:
your account's user name and password.

Exit codes: 0 stopped by a signal (or --stdio: the server closed);
64 bad arguments; 69 cannot listen; 75 server unreachable (--stdio);
77 certificate refused (--stdio); 78 bad certificate or key files.",
    after_help = "\
Examples:
  ownmail tunnel tls --connect mail.example.org:993 --listen 127.0.0.1:1143
  ownmail tunnel tls --connect mail.example.org:465 --listen 127.0.0.1:2525 \\
      --pin sha256:AB:CD:...
  ownmail tunnel tls --accept 0.0.0.0:993 --to 127.0.0.1:143

mutt (~/.muttrc):
  set tunnel=\"ownmail tunnel tls --stdio --connect mail.example.org:993\"
mbsync (~/.mbsyncrc, in the IMAPAccount):
  Tunnel \"ownmail tunnel tls --stdio --connect mail.example.org:993\""
)]
#[command(group = clap::ArgGroup::new("mode").required(true).args(["connect", "accept"]))]
pub struct TunnelTlsArgs {
    /// Client mode: the TLS server to carry connections to
    #[arg(long, value_name = "HOST:PORT")]
    pub connect: Option<String>,
    /// Client mode: the local plaintext address to listen on (loopback only)
    #[arg(
        long,
        value_name = "ADDR:PORT",
        requires = "connect",
        conflicts_with = "stdio"
    )]
    pub listen: Option<std::net::SocketAddr>,
    /// Client mode: carry one connection over standard input and output
    #[arg(long, requires = "connect")]
    pub stdio: bool,
    /// Client mode: trust only the CA certificates in FILE (PEM), not the system's
    #[arg(
        long,
        value_name = "FILE",
        requires = "connect",
        conflicts_with = "pin"
    )]
    pub ca: Option<PathBuf>,
    /// Client mode: accept exactly the certificate with this fingerprint
    #[arg(long, value_name = "sha256:HEX", requires = "connect")]
    pub pin: Option<String>,
    /// Server mode: the address to accept TLS connections on
    #[arg(long, value_name = "ADDR:PORT", requires = "to", conflicts_with_all = ["connect", "listen", "stdio", "ca", "pin"])]
    pub accept: Option<std::net::SocketAddr>,
    /// Server mode: the plaintext service to carry them to (loopback only)
    #[arg(long, value_name = "ADDR:PORT", requires = "accept")]
    pub to: Option<std::net::SocketAddr>,
}

/// Print the fingerprint of a TLS server's certificate, to pin with --pin
#[derive(Debug, Args)]
#[command(
    long_about = "\
Connect to HOST:PORT with TLS (implicit TLS, e.g. IMAP 993, SMTP 465),
accept whatever certificate comes, and print its SHA-256 fingerprint on
standard output, as `--pin` and fetch's `tls_fingerprint` take it; its
subject, issuer and expiry go to standard error. Run it where you trust the
network (at home, or on the server itself with 127.0.0.1): pinning what an
attacker showed you would pin the attacker.",
    after_help = "\
Examples:
  ownmail tunnel fingerprint mail.example.org:993
  ownmail tunnel tls --connect mail.example.org:993 --listen 127.0.0.1:1143 \\
      --pin \"$(ownmail tunnel fingerprint mail.example.org:993)\""
)]
pub struct TunnelFingerprintArgs {
    /// The server
    #[arg(value_name = "HOST:PORT")]
    pub server: String,
}
/// Serve the users' Maildirs over IMAP
#[derive(Debug, Args)]
#[command(
    long_about = "\
Serve the users' Maildirs (<data_dir>/mail/<user>) over IMAP4rev1 with IDLE,
UIDPLUS, MOVE, LITERAL+, SASL-IR, NAMESPACE, ID, ENABLE, UNSELECT, CHILDREN,
SPECIAL-USE, LIST-EXTENDED, LIST-STATUS, ESEARCH, STATUS=SIZE, CONDSTORE and
APPENDLIMIT. UIDs live in each folder's dovecot-uidlist and keywords in
dovecot-keywords, in Dovecot's formats: Dovecot and ownmail can serve the same
Maildir, one after the other or at the same time, and agree on every UID and
flag. CONDSTORE's mod-sequences live in each folder's ownmail-modseq, and its
first recent UID (as in Dovecot's index) in its ownmail-recent.
An APPEND's message (at most 256 MiB) is written to disk as it arrives.

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

/// Run every configured server in one process (IMAP, and SMTP when configured)
#[derive(Debug, Args)]
#[command(long_about = "\
Run every server the configuration sets up, in one process: IMAP
(imap.listen, imap.listen_tls; 127.0.0.1:1143 when neither is set) and,
when the configuration has an smtp: section, the SMTP server with its
outbound queue (smtp.listen, smtp.submission, smtp.submissions). SIGTERM or
SIGINT stops both: IMAP sessions are told BYE, SMTP sessions 421.

With no configuration file anywhere, it starts at once for a first try: it
writes ./ownmail.yaml (data in ./ownmail-data, IMAP on 127.0.0.1:1143, SMTP
on 127.0.0.1:2525) and tells you how to add a user (`ownmail user add
NAME`).")]
pub struct ServeArgs {}

/// Receive mail for our domains and send our users' mail (SMTP server)
#[derive(Debug, Args)]
#[command(
    long_about = "\
Run the SMTP server: receive mail for the configured domains from anyone
(port 25, smtp.listen), and accept mail from our own users for anywhere on
the submission ports (smtp.submission: STARTTLS then AUTH; smtp.submissions:
implicit TLS). Nobody else may relay: mail for another domain is refused
unless the client logged in or is in smtp.trusted_networks (default:
loopback).

A message is accepted (250) only when it is durably in every local
recipient's Maildir and, for other recipients, in the queue
(<data_dir>/queue), which a worker in the same process sends through
smtp.relay. SIGTERM or SIGINT stops accepting, tells clients 421 and waits
up to 30 seconds for sessions to end.

With --stdio, one session runs on standard input and output, for inetd or
systemd socket activation (Accept=yes) handing over a TCP socket: the
client's address is that socket's peer, and STARTTLS is offered when tls: is
configured. On anything else (a pipe, or a Unix socket from socat EXEC: or
stunnel exec=) the client's address is unknown, so it is treated as a
stranger: it may not relay, nor log in without TLS, and a pipe gets no
STARTTLS. Local programs that should be trusted send with `ownmail
sendmail`.",
    after_help = "\
Examples:
  ownmail serve-smtp
  ownmail serve-smtp --listen 127.0.0.1:2525
  ownmail serve-smtp --stdio          # one session under inetd

Configuration (ownmail.yaml):
  tls: {cert: cert.pem, key: key.pem}
  smtp:
    listen: [\"0.0.0.0:25\"]
    submission: [\"0.0.0.0:587\"]
    submissions: [\"0.0.0.0:465\"]
    relay: {host: smtp.isp.example, port: 587, username: me, password_file: relay.pass}
  aliases:
    postmaster: alice"
)]
pub struct ServeSmtpArgs {
    /// Listen on ADDR (e.g. 127.0.0.1:2525) instead of smtp.listen (repeatable)
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<std::net::SocketAddr>,
    /// Run one session on standard input and output (inetd), then exit; a
    /// client not on a TCP socket is untrusted (local programs: use `ownmail
    /// sendmail`)
    #[arg(long, conflicts_with = "listen")]
    pub stdio: bool,
}

/// Look at and act on the outbound queue
#[derive(Debug, Args)]
#[command(long_about = "\
Look at and act on the outbound queue (<data_dir>/queue): messages waiting to
be sent, with the state of each recipient and the last error.")]
pub struct QueueArgs {
    #[command(subcommand)]
    pub command: QueueCommand,
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List the queued messages: id, age, sender, recipients, attempts
    List,
    /// Show one message's envelope and headers
    Show {
        /// The message id, as `queue list` prints it
        id: String,
    },
    /// Try every queued message now, whatever its next retry time
    Flush,
    /// Remove a message from the queue (it is not sent and not bounced)
    Delete {
        /// The message id, as `queue list` prints it
        id: String,
    },
}

/// Queue a message from standard input, as sendmail does
#[derive(Debug, Args)]
#[command(
    long_about = "\
The sendmail interface that cron, scripts and mail clients on the server
use: read a message from standard input and put it in the queue. The exit
status is 0 only when the message is durably queued; a running serve-smtp
sends it within seconds (or run `ownmail queue flush`). The same happens
when the binary is called as `sendmail`.

Without -i, a line with a single dot ends the message, as in sendmail.

A message without a From:, Date: or Message-ID: field gets one; where its
first lines are not header fields (`echo text | sendmail alice`), they
are the body, after an added empty line. The options cron and other
programs pass to Postfix's sendmail are understood (-F, -r, -oi; -q and
-qINTERVAL run the queue now, quietly, as `ownmail queue flush`) or
accepted and ignored (-B, -N, -R, -X, -C, -G, -U, other -o options).",
    after_help = "\
Examples:
  echo 'Subject: hi' | ownmail sendmail bob@example.net
  ownmail sendmail -t < message.eml
  ownmail sendmail -FCronDaemon -i -B8BITMIME -oem alice   # as cron calls it
  ln -s /usr/bin/ownmail /usr/sbin/sendmail"
)]
pub struct SendmailArgs {
    /// Take the recipients from the To:, Cc: and Bcc: fields (Bcc: is removed)
    #[arg(short = 't')]
    pub from_headers: bool,
    /// The envelope sender (default: the user running the command @ the first domain); -r is the same
    #[arg(short = 'f', short_alias = 'r', value_name = "FROM")]
    pub from: Option<String>,
    /// The sender's full name, for the From: field added to a message without one
    #[arg(short = 'F', value_name = "NAME")]
    pub full_name: Option<String>,
    /// A line with a single dot does not end the message
    #[arg(short = 'i')]
    pub ignore_dots: bool,
    /// The mode: m (the default: read a message and queue it) or i (rebuild the aliases: nothing to do here)
    #[arg(
        short = 'b',
        value_name = "MODE",
        default_value = "m",
        hide_default_value = true
    )]
    pub mode: String,
    /// sendmail's -o options: -oi is -i; the others (-oem, -odb, ...) are accepted and ignored
    #[arg(short = 'o', value_name = "OPTION", hide = true)]
    pub option: Vec<String>,
    /// Accepted and ignored, as Postfix's sendmail does (the body type, -B8BITMIME)
    #[arg(short = 'B', value_name = "TYPE", hide = true)]
    pub body_type: Option<String>,
    /// Accepted and ignored (the DSN notifications)
    #[arg(short = 'N', value_name = "DSN", hide = true)]
    pub dsn_notify: Option<String>,
    /// Accepted and ignored (the DSN return: hdrs or full)
    #[arg(short = 'R', value_name = "RET", hide = true)]
    pub dsn_ret: Option<String>,
    /// Accepted and ignored (sendmail's log file)
    #[arg(short = 'X', value_name = "FILE", hide = true)]
    pub log_file: Option<String>,
    /// Accepted and ignored (sendmail's and Postfix's configuration: ownmail's is --config)
    #[arg(short = 'C', value_name = "FILE", hide = true)]
    pub sendmail_config: Option<String>,
    /// Accepted and ignored (a gateway submission)
    #[arg(short = 'G', hide = true)]
    pub gateway: bool,
    /// Accepted and ignored (an initial user submission)
    #[arg(short = 'U', hide = true)]
    pub initial: bool,
    /// sendmail's -q (and -qINTERVAL, -qR..., -qS...): run the queue once
    /// now, as `ownmail queue flush` (see [`sendmail_argv`])
    #[arg(long = "flush-queue", hide = true)]
    pub flush_queue: bool,
    /// The recipients
    pub recipients: Vec<String>,
}

/// The command line of the sendmail interface (`ownmail sendmail ARGS`, or
/// the binary called as `sendmail`): sendmail's `-q`, `-q1h`, `-qRsite`
/// (run the queue, what cron jobs and scripts written for Postfix or
/// sendmail call) would be ownmail's global "quiet" option, so after the
/// subcommand they become the hidden `--flush-queue`. `ownmail -q sendmail`
/// is still quiet.
pub fn sendmail_argv(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let called_as_sendmail = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == "sendmail");
    if called_as_sendmail {
        args.insert(1, "sendmail".into());
    }
    // The subcommand: the first word that is neither a global option nor
    // the value of --config / -c.
    let mut at = 1;
    while at < args.len() {
        let a = args[at].to_string_lossy();
        if a == "--config" || a == "-c" {
            at += 2;
        } else if a.starts_with('-') {
            at += 1;
        } else {
            break;
        }
    }
    if args.get(at).is_none_or(|a| a != "sendmail") {
        return args;
    }
    for a in &mut args[at + 1..] {
        if a == "--" {
            break;
        }
        if a.to_string_lossy().starts_with("-q") {
            *a = "--flush-queue".into();
        }
    }
    args
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
    fn convert_mbox_needs_a_source_and_one_destination() {
        assert!(Cli::try_parse_from(["ownmail", "convert-mbox", "--user", "a"]).is_err());
        assert!(Cli::try_parse_from(["ownmail", "convert-mbox", "x"]).is_err());
        assert!(
            Cli::try_parse_from([
                "ownmail",
                "convert-mbox",
                "x",
                "--format",
                "mmdf",
                "-u",
                "a"
            ])
            .is_err()
        );
        let cli = Cli::try_parse_from([
            "ownmail",
            "convert-mbox",
            "a",
            "b",
            "-m",
            "/m",
            "--format",
            "mboxcl2",
            "--json",
        ])
        .unwrap();
        let Command::ConvertMbox(c) = cli.command else {
            panic!("not convert-mbox")
        };
        assert_eq!(c.sources.len(), 2);
        assert_eq!(
            (c.format, c.json, c.dry_run),
            (MboxFormat::Mboxcl2, true, false)
        );
    }

    #[test]
    fn sendmail_takes_what_cron_and_postfix_users_pass() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from(["ownmail", "sendmail"].iter().chain(args))
                .unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let Command::Sendmail(s) = cli.command else {
                panic!("not sendmail")
            };
            s
        };
        // Debian's cron.
        let s = parse(&["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "alice"]);
        assert_eq!(s.full_name.as_deref(), Some("CronDaemon"));
        assert!(s.ignore_dots);
        assert_eq!(
            (s.recipients.as_slice(), s.mode.as_str()),
            (&["alice".to_owned()][..], "m")
        );
        // cronie, and Postfix's -r for -f.
        let s = parse(&[
            "-FCronDaemon",
            "-i",
            "-odi",
            "-oem",
            "-oi",
            "-t",
            "-f",
            "root",
        ]);
        assert!(s.from_headers && s.option.contains(&"i".to_owned()));
        assert_eq!(s.from.as_deref(), Some("root"));
        assert_eq!(
            parse(&["-r", "bounce@example.org", "x"]).from.as_deref(),
            Some("bounce@example.org")
        );
        let s = parse(&[
            "-N",
            "never",
            "-R",
            "hdrs",
            "-G",
            "-U",
            "-X",
            "/dev/null",
            "-C",
            "/etc/postfix",
            "x",
        ]);
        assert_eq!(s.recipients, ["x"]);
        assert_eq!(parse(&["-bi"]).mode, "i");
        assert_eq!(parse(&["-bs"]).mode, "s");
        // -q and its sendmail forms run the queue; `ownmail -q` is quiet.
        let argv = |args: &[&str]| -> Vec<String> {
            sendmail_argv(args.iter().map(Into::into).collect())
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect()
        };
        for q in ["-q", "-q1h", "-qRexample.org", "-q30m"] {
            assert_eq!(
                argv(&["/usr/sbin/sendmail", q]),
                ["/usr/sbin/sendmail", "sendmail", "--flush-queue"]
            );
            assert_eq!(
                argv(&["ownmail", "--config", "/c.yaml", "sendmail", q]),
                [
                    "ownmail",
                    "--config",
                    "/c.yaml",
                    "sendmail",
                    "--flush-queue"
                ]
            );
        }
        assert!(parse(&["--flush-queue"]).flush_queue);
        assert_eq!(
            argv(&["ownmail", "-q", "sendmail", "alice"]),
            ["ownmail", "-q", "sendmail", "alice"]
        );
        assert_eq!(
            argv(&["ownmail", "deliver", "--user", "sendmail", "-q"]),
            ["ownmail", "deliver", "--user", "sendmail", "-q"]
        );
        assert_eq!(
            argv(&["sendmail", "-i", "--", "-q"]),
            ["sendmail", "sendmail", "-i", "--", "-q"]
        );
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
trained with `ownmail spamcheck train`) and BAYES_BODY_99 when the bodies
alone are 99% spam, plus rules for header sanity, forged or missing Date and
Message-ID, HTML-only bodies, hidden words and suspicious links. Rules and scores are listed by --list-rules; a rules file
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
