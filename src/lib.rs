//! ownmail: composable mail commands for people who run their own mail server.
//!
//! # Map
//!
//! | module      | what it is for                                                        |
//! | ----------- | --------------------------------------------------------------------- |
//! | [`config`]  | the YAML configuration: search path, defaults, validation             |
//! | [`error`]   | sysexits codes that every library error maps to                       |
//! | [`store`]   | the Maildir++ store: folders, names, delivery, flags, keywords, locks |
//! | [`auth`]    | the users file (Dovecot passwd-file) and password hashes              |
//! | [`message`] | what we read out of raw messages: headers, envelope, mbox framing     |
//! | [`deliver`] | the delivery agent: one message into one folder, durably              |
//! | [`convert`] | `convert-mbox`: mbox files and trees into Maildir folders, once       |
//! | [`proto`]   | sans-IO protocol sessions (POP3 client, SMTP server, IMAP parser)     |
//! | [`net`]     | connections: TCP, TLS, timeouts and byte budgets                      |
//! | [`imapd`]   | the IMAP server: sessions over the store (serve-imap)                 |
//! | [`fetch`]   | bring mail home from POP3 and IMAP accounts, never losing or doubling |
//! | [`spam`]    | the spam filter: tokenizer, chi-square combining, rules, token database |
//! | [`tunnel`]  | ssh and TLS tunnels to the mail server, supervised                    |
//! | [`smtp`]    | `serve-smtp`: listeners, the session driver, local delivery           |
//! | [`queue`]   | outbound mail: the durable queue, the delivery worker, bounces        |
//! | [`cli`]     | clap definitions, man pages and shell completions                     |
//! | [`cmd`]     | one file per subcommand: resolve arguments and config, call the above |
//!
//! # Layer rules
//!
//! - `store` never speaks a protocol and never reads the configuration.
//! - `proto` never does I/O: bytes in, events out.
//! - `message` does no I/O beyond the readers and writers it is handed.
//! - Library modules return typed errors (thiserror); `anyhow` lives only in
//!   `cmd` and the binary.
//! - `cmd` holds no logic that a test of the library would need.

pub mod auth;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod convert;
pub mod deliver;
pub mod error;
pub mod fetch;
pub mod imapd;
pub mod message;
pub mod net;
pub mod proto;
pub mod queue;
pub mod smtp;
pub mod spam;
pub mod store;
pub mod tunnel;
