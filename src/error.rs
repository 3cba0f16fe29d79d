//! Exit codes: every library error maps to a sysexits(3) code, so that an MTA
//! or cron can tell "try later" (75) from "give up" (65, 67, ...).
//!
//! Never map an error we cannot classify to a permanent code: a bounce loses
//! mail, a retry does not. Unknown I/O faults are [`TEMPFAIL`].

/// sysexits(3) codes.
pub mod sysexits {
    pub const OK: u8 = 0;
    /// The command was used incorrectly.
    pub const USAGE: u8 = 64;
    /// The input data was incorrect (empty message, mail loop).
    pub const DATAERR: u8 = 65;
    /// An input file did not exist or was not readable.
    pub const NOINPUT: u8 = 66;
    /// The addressee is unknown.
    pub const NOUSER: u8 = 67;
    /// A service is unavailable.
    pub const UNAVAILABLE: u8 = 69;
    /// An internal software error.
    pub const SOFTWARE: u8 = 70;
    /// A (user specified) output file or folder cannot be created.
    pub const CANTCREAT: u8 = 73;
    /// An error occurred while doing I/O on some file.
    pub const IOERR: u8 = 74;
    /// A temporary failure: the caller should try again later.
    pub const TEMPFAIL: u8 = 75;
    /// Permission denied.
    pub const NOPERM: u8 = 77;
    /// Something was found in an unconfigured or misconfigured state.
    pub const CONFIG: u8 = 78;
}

/// An error that knows which sysexits code it deserves.
pub trait ExitStatus {
    fn exit_code(&self) -> u8;
}

/// The code for an I/O error on our side: permanent only where retrying
/// cannot help and the cause is the caller's (a path that cannot be created);
/// everything else is temporary.
///
/// Permission denied is temporary: a Maildir or a users file the delivering
/// uid cannot use is a local fault an administrator fixes (a wrong chown),
/// and the mail must wait for that, not bounce. Postfix bounces 73 and 77
/// alike; dovecot-lda answers 75 for a mailbox or userdb it cannot open.
pub fn io_exit_code(err: &std::io::Error) -> u8 {
    use std::io::ErrorKind::*;
    match err.kind() {
        NotADirectory | IsADirectory | InvalidFilename => sysexits::CANTCREAT,
        _ => sysexits::TEMPFAIL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn io_faults_are_temporary_unless_the_path_cannot_be_made() {
        let cases = [
            (ErrorKind::PermissionDenied, sysexits::TEMPFAIL),
            (ErrorKind::StorageFull, sysexits::TEMPFAIL),
            (ErrorKind::Other, sysexits::TEMPFAIL),
            (ErrorKind::NotADirectory, sysexits::CANTCREAT),
            (ErrorKind::IsADirectory, sysexits::CANTCREAT),
        ];
        for (kind, code) in cases {
            assert_eq!(io_exit_code(&Error::from(kind)), code, "{kind:?}");
        }
    }
}
