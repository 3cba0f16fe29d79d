//! Seeded random inputs against what `fetch` reads from servers and from
//! disk: the POP3 client session and the state file. No panic on any
//! input, buffers bounded, and what a valid transcript says comes through
//! whole however the bytes are split. The same entry points have cargo-fuzz
//! targets in `fuzz/` (`pop3_client`, `fetch_state`).

mod support;

use ownmail::auth::Secret;
use ownmail::fetch::state::{Entry, Key, State};
use ownmail::proto::pop3::{Client, Command, Event, MAX_LINE};
use support::Rng;

const ROUNDS: usize = 5_000;

fn random_bytes(rng: &mut Rng, alphabet: &[u8], max_len: u64) -> Vec<u8> {
    let len = rng.below(max_len + 1) as usize;
    (0..len)
        .map(|_| {
            if rng.below(4) == 0 {
                rng.below(256) as u8
            } else {
                alphabet[rng.below(alphabet.len() as u64) as usize]
            }
        })
        .collect()
}

fn logged_in() -> Client {
    let mut c = Client::new();
    c.feed(b"+OK hi\r\n");
    c.next_event().unwrap();
    c.send(Command::User("u".into())).unwrap();
    c.send(Command::Pass(Secret::new("p".into()))).unwrap();
    c.feed(b"+OK\r\n+OK\r\n");
    while c.next_event().unwrap().is_some() {}
    c.take_output();
    c
}

#[test]
fn the_pop3_client_survives_any_server_and_stays_bounded() {
    let mut rng = Rng::from_time();
    for _ in 0..ROUNDS {
        let mut c = logged_in();
        for _ in 0..rng.below(6) {
            let command = match rng.below(6) {
                0 => Command::Capa,
                1 => Command::Uidl,
                2 => Command::List,
                3 => Command::Stat,
                4 => Command::Dele(rng.below(9) as u32 + 1),
                _ => Command::Retr {
                    number: rng.below(9) as u32 + 1,
                    max: rng.below(300),
                },
            };
            c.send(command).unwrap();
        }
        let input = random_bytes(&mut rng, b"+OK-ERR .\r\n0123 abc[]", 600);
        let piece = rng.below(64) as usize + 1;
        'feed: for chunk in input.chunks(piece) {
            c.feed(chunk);
            loop {
                match c.next_event() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
            assert!(c.buffered() <= MAX_LINE + piece);
        }
    }
}

#[test]
fn a_valid_retr_arrives_whole_at_any_split() {
    let mut rng = Rng::from_time();
    for _ in 0..ROUNDS / 5 {
        // A message of random lines, some starting with dots.
        let body = random_bytes(&mut rng, b"..ab\r\n", 200);
        let body: Vec<u8> = String::from_utf8_lossy(&body)
            .replace('\r', "")
            .lines()
            .map(|l| format!("{l}\r\n"))
            .collect::<String>()
            .into_bytes();
        let mut wire = b"+OK\r\n".to_vec();
        for line in body.split_inclusive(|b| *b == b'\n') {
            if line.starts_with(b".") {
                wire.push(b'.');
            }
            wire.extend_from_slice(line);
        }
        wire.extend_from_slice(b".\r\n");
        let mut c = logged_in();
        c.send(Command::Retr {
            number: 1,
            max: body.len() as u64,
        })
        .unwrap();
        let mut got = None;
        let piece = rng.below(16) as usize + 1;
        for chunk in wire.chunks(piece) {
            c.feed(chunk);
            while let Some(e) = c.next_event().unwrap() {
                got = Some(e);
            }
        }
        assert_eq!(
            got,
            Some(Event::Message {
                number: 1,
                data: body.clone()
            }),
            "{:?}",
            String::from_utf8_lossy(&wire)
        );
    }
}

#[test]
fn state_files_open_or_fail_cleanly_and_records_round_trip() {
    let mut rng = Rng::from_time();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.state");
    for _ in 0..ROUNDS / 10 {
        let mut text = b"ownmail-fetch-state 1\n".to_vec();
        text.extend(random_bytes(&mut rng, b"FPDXR %0123456789/ab\n", 200));
        std::fs::write(&path, &text).unwrap();
        if let Ok(mut s) = State::open(dir.path(), "a") {
            let _ = s.fetched().count();
            s.compact(|_| true).unwrap();
        }
        // Nothing outside the state folder was touched.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(names.iter().all(|n| n == "a.state"), "{names:?}");
    }
    // Any key and entry written comes back.
    let _ = std::fs::remove_file(&path);
    let mut want = Vec::new();
    {
        let mut s = State::open(dir.path(), "a").unwrap();
        for _ in 0..500 {
            let raw = |rng: &mut Rng| {
                String::from_utf8_lossy(&random_bytes(rng, b"a %\n\t/", 12)).into_owned()
            };
            let key = Key {
                folder: raw(&mut rng),
                uidvalidity: rng.next() as u32,
                uid: raw(&mut rng),
            };
            let id = raw(&mut rng);
            let entry = Entry {
                size: rng.next(),
                message_id: (!id.is_empty()).then_some(id),
            };
            s.record(key.clone(), entry.clone());
            want.push((key, entry));
        }
        s.sync().unwrap();
    }
    let s = State::open(dir.path(), "a").unwrap();
    for (key, entry) in &want {
        assert!(s.is_fetched(key), "{key:?}");
        let got = s.fetched().find(|(k, _)| *k == key).unwrap().1;
        // A later record of the same key wins; compare with the last.
        let last = want.iter().rev().find(|(k, _)| k == key).unwrap();
        assert_eq!(got, &last.1, "{entry:?}");
    }
}
