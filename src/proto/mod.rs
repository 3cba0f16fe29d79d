//! Protocol sessions, sans-IO: bytes in, commands and events out. Nothing
//! here opens a socket, reads a file or knows about tokio; a driver in
//! [`crate::net`] or a capability module (such as [`crate::fetch`]) pumps
//! them, and tests drive them with plain byte strings.
//!
//! | module   | what it is                          | RFCs                              |
//! | -------- | ----------------------------------- | --------------------------------- |
//! | [`pop3`] | a POP3 client session (for `fetch`) | 1939, 2449, 2595, 3206, 5034      |
//! | [`imap`] | the IMAP server's framer and parser  | 3501 and extensions (see there)   |
//! | [`smtp`] | an SMTP server session (`serve-smtp`) | 5321, 1870, 2920, 3030, 3207, 4954, 6531 |

pub mod imap;
pub mod pop3;
pub mod smtp;
