//! The POP3 client session fed whatever a server might send: it must never
//! panic, and its buffers stay bounded (a line, a listing, a message limit).
#![no_main]
use libfuzzer_sys::fuzz_target;
use ownmail::auth::Secret;
use ownmail::proto::pop3::{Client, Command, MAX_LINE};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut c = Client::new();
    let mut fed = 0usize;
    // The greeting, then a login and a transaction's worth of commands,
    // each sent when the session allows it.
    let commands = [
        Command::Capa,
        Command::User("me".into()),
        Command::Pass(Secret::new("pw".into())),
        Command::Stat,
        Command::Uidl,
        Command::List,
        Command::Retr { number: 1, max: 4096 },
        Command::Retr { number: 2, max: 64 },
        Command::Dele(1),
        Command::Quit,
    ];
    let mut next = 0;
    for chunk in rest.chunks(usize::from(split).max(1)) {
        while next < commands.len() && c.pending() == 0 {
            let command = match &commands[next] {
                Command::Pass(_) => Command::Pass(Secret::new("pw".into())),
                Command::User(u) => Command::User(u.clone()),
                Command::Retr { number, max } => Command::Retr { number: *number, max: *max },
                Command::Dele(n) => Command::Dele(*n),
                Command::Capa => Command::Capa,
                Command::Stat => Command::Stat,
                Command::Uidl => Command::Uidl,
                Command::List => Command::List,
                _ => Command::Quit,
            };
            next += 1;
            if c.send(command).is_err() {
                break;
            }
        }
        c.feed(chunk);
        fed += chunk.len();
        loop {
            match c.next_event() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(c.buffered() <= MAX_LINE + chunk.len(), "{} buffered of {fed}", c.buffered());
    }
});
