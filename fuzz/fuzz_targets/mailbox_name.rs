//! Folder names from disk and from clients: never a panic, never a name
//! outside the Maildir, one spelling per name.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ownmail::store::MailboxName;
use ownmail::store::name::{decode_mutf7, encode_mutf7};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(decoded) = decode_mutf7(text) {
        assert_eq!(encode_mutf7(&decoded), text);
    }
    if let Ok(name) = MailboxName::from_dir_name(text) {
        assert_eq!(name.dir_name().as_deref(), Some(text));
    }
    if let Ok(name) = MailboxName::new(text) {
        if let Some(dir) = name.dir_name() {
            assert!(dir.starts_with('.') && !dir.contains('/') && !dir.contains(".."));
            assert_eq!(MailboxName::from_dir_name(&dir).unwrap(), name);
        }
    }
});
