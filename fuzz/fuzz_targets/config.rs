//! The YAML configuration: an error, never a panic or a hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ownmail::config::Config::parse(text, std::path::Path::new("/fuzz/ownmail.yaml"));
    }
});
