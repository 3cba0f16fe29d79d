//! What we read out of raw messages: header lines, the envelope line of an
//! mbox (`From `), mbox framing, and (later) body structure. No I/O beyond
//! the readers and writers handed in.
//!
//! - [`header`]: a bounded header section, its fields, CRLF to LF.
//! - [`mbox`]: a streaming reader of mbox files in their four variants.

pub mod header;
pub mod mbox;
pub mod mime;
