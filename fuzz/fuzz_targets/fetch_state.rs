//! A fetch state file as found on disk (torn, damaged, hostile): opening it
//! must give a state or a clear error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ownmail::fetch::state::State;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("ownmail-fuzz-state-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let mut text = b"ownmail-fetch-state 1\n".to_vec();
    text.extend_from_slice(data);
    std::fs::write(dir.join("a.state"), &text).unwrap();
    if let Ok(mut s) = State::open(&dir, "a") {
        let _ = s.fetched().count();
        let _ = s.compact(|_| true);
    }
});
