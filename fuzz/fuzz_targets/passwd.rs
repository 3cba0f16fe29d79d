//! The users file and dovecot-keywords: every line read or skipped, no panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let users = ownmail::auth::Users::parse(std::path::Path::new("/fuzz/passwd"), &text);
    let _ = users.problems();
    let _ = ownmail::store::Keywords::parse(&text);
});
