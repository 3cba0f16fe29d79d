//! The SMTP server session fed whatever a client might send, in chunks of
//! any size, its events answered as the driver would: it must never panic,
//! its input buffer stays bounded, and no message exceeds the size limit.
#![no_main]
use std::collections::BTreeMap;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use ownmail::proto::smtp::{
    AuthOutcome, Directory, Event, MAX_AUTH_LINE, Reply, Session, Settings, TlsInfo,
};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((&split, rest)) = rest.split_first() else {
        return;
    };
    let settings = Settings {
        hostname: "mx.example.org".into(),
        max_message_size: 4096,
        starttls: flags & 1 != 0,
        implicit_tls: None,
        auth_without_tls: flags & 2 != 0,
        submission: flags & 4 != 0,
        trusted: flags & 8 != 0,
    };
    let dir = Directory::new(vec!["example.org".into()], ["alice".to_owned()], BTreeMap::new());
    let mut s = Session::new(settings, Arc::new(dir));
    for chunk in rest.chunks(usize::from(split).max(1)) {
        s.feed(chunk);
        while let Some(e) = s.next_event() {
            match e {
                Event::StartTls => s.tls_started(TlsInfo { version: "TLSv1.3".into(), cipher: "x".into() }),
                Event::Authenticate { password, .. } => s.auth_result(if password.expose() == "pw" {
                    AuthOutcome::Ok
                } else {
                    AuthOutcome::Failed
                }),
                Event::Message(tx) => {
                    assert!(tx.data.len() <= 4096);
                    s.message_result(Reply::OK);
                }
                Event::Close => return,
            }
        }
        assert!(s.buffered() <= MAX_AUTH_LINE + chunk.len(), "{} buffered", s.buffered());
        let _ = s.take_output();
    }
});
