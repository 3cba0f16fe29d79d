//! What `tunnel` reads: a server's greeting through a forward (from the
//! network), forward and HOST:PORT specifications (from the command line
//! and unit files). Never a panic; a forward always listens on loopback and
//! its ssh spelling reads back as the same forward.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ownmail::tunnel::forward::{Forward, Service};
use ownmail::tunnel::tls::parse_host_port;

fuzz_target!(|data: &[u8]| {
    for service in [Service::Smtp, Service::Imap, Service::Other] {
        let _ = service.greeting_ok(data);
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_host_port(text);
    if let Ok(f) = Forward::parse(Service::Imap, text) {
        assert!(f.local.ip().is_loopback());
        assert_eq!(Forward::parse(Service::Imap, &f.ssh_spec()).unwrap(), f);
    }
});
