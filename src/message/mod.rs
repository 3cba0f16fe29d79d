//! What we read out of raw messages: header lines, the envelope line of an
//! mbox (`From `), and (later) body structure. No I/O beyond the readers and
//! writers handed in.

pub mod header;
pub mod mime;
