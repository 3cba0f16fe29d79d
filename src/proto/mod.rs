//! Protocol sessions, sans-IO: bytes in, commands and events out. Nothing
//! here opens a socket, reads a file or knows about tokio; a driver in
//! [`crate::net`] or a capability module (such as [`crate::fetch`]) pumps
//! them, and tests drive them with plain byte strings.
//!
//! | module   | what it is                          | RFCs                              |
//! | -------- | ----------------------------------- | --------------------------------- |
//! | [`pop3`] | a POP3 client session (for `fetch`) | 1939, 2449, 2595, 3206, 5034      |

pub mod pop3;
