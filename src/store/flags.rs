//! Message flags as the Maildir spec stores them in a file name's info part
//! (`:2,DFPRST` then keyword letters `a`-`z`), and as IMAP names them.
//!
//! Keyword letters mean nothing on their own: each folder's
//! `dovecot-keywords` file maps them to names (see [`super::keywords`]).

use std::fmt;

/// Maildir system flags, in the spec's ASCII order.
const SYSTEM: [(u8, &str); 6] = [
    (b'D', "\\Draft"),
    (b'F', "\\Flagged"),
    (b'P', "$Forwarded"), // "passed": Dovecot shows it as no IMAP flag; we keep it on disk only
    (b'R', "\\Answered"),
    (b'S', "\\Seen"),
    (b'T', "\\Deleted"),
];

/// A message's flags: system flags and keyword letters, each a bit set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    system: u8,
    keywords: u32,
}

/// A flag as a person or an IMAP client names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flag {
    /// `D`, `F`, `P`, `R`, `S` or `T`.
    System(u8),
    /// A keyword name (an IMAP atom such as `$Junk` or `work`).
    Keyword(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("unknown system flag {0:?} (known: \\Seen \\Answered \\Flagged \\Deleted \\Draft)")]
    UnknownSystem(String),
    #[error("{0:?} is not a valid keyword (letters, digits and $_-. only, at most 64)")]
    BadKeyword(String),
}

impl Flag {
    /// Parses one IMAP flag: `\Seen` (case-insensitive) or a keyword atom.
    pub fn parse(word: &str) -> Result<Flag, FlagError> {
        if word.starts_with('\\') {
            return SYSTEM
                .iter()
                .find(|(_, name)| name.starts_with('\\') && name.eq_ignore_ascii_case(word))
                .map(|&(letter, _)| Flag::System(letter))
                .ok_or_else(|| FlagError::UnknownSystem(word.to_owned()));
        }
        if is_keyword(word) {
            Ok(Flag::Keyword(word.to_owned()))
        } else {
            Err(FlagError::BadKeyword(word.to_owned()))
        }
    }

    /// Parses a list of flags separated by spaces or commas.
    pub fn parse_list(list: &str) -> Result<Vec<Flag>, FlagError> {
        list.split([' ', ','])
            .filter(|w| !w.is_empty())
            .map(Flag::parse)
            .collect()
    }
}

/// Whether a keyword name is safe to store: an IMAP atom, bounded, and
/// without the characters `dovecot-keywords` or our own syntax would choke on.
pub fn is_keyword(word: &str) -> bool {
    !word.is_empty()
        && word.len() <= 64
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'$' | b'_' | b'-' | b'.'))
}

impl Flags {
    pub const EMPTY: Flags = Flags {
        system: 0,
        keywords: 0,
    };

    /// Parses the info part after `:2,` (unknown letters are ignored, as
    /// Dovecot does, so a foreign flag never makes a message unreadable).
    pub fn from_info(info: &str) -> Flags {
        let mut flags = Flags::EMPTY;
        for b in info.bytes() {
            if let Some(i) = SYSTEM.iter().position(|&(l, _)| l == b) {
                flags.system |= 1 << i;
            } else if b.is_ascii_lowercase() {
                flags.keywords |= 1 << (b - b'a');
            }
        }
        flags
    }

    /// Splits a Maildir file name into its base and flags.
    pub fn from_file_name(name: &str) -> Flags {
        match name.rsplit_once(":2,") {
            Some((_, info)) => Flags::from_info(info),
            None => Flags::EMPTY,
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Flags::EMPTY
    }

    pub fn has_system(&self, letter: u8) -> bool {
        SYSTEM
            .iter()
            .position(|&(l, _)| l == letter)
            .is_some_and(|i| self.system & (1 << i) != 0)
    }

    pub fn set_system(&mut self, letter: u8) {
        if let Some(i) = SYSTEM.iter().position(|&(l, _)| l == letter) {
            self.system |= 1 << i;
        }
    }

    /// Sets keyword letter `index` (0 is `a`); indexes past `z` are ignored.
    pub fn set_keyword(&mut self, index: usize) {
        if index < 26 {
            self.keywords |= 1 << index;
        }
    }

    pub fn has_keyword(&self, index: usize) -> bool {
        index < 26 && self.keywords & (1 << index) != 0
    }

    /// Keyword indexes set, lowest first.
    pub fn keyword_indexes(&self) -> impl Iterator<Item = usize> + '_ {
        (0..26).filter(|&i| self.has_keyword(i))
    }

    /// IMAP names of the system flags set (`P` has none and is left out).
    pub fn system_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        SYSTEM
            .iter()
            .enumerate()
            .filter(|&(i, (_, name))| self.system & (1 << i) != 0 && name.starts_with('\\'))
            .map(|(_, &(_, name))| name)
    }
}

/// The info part, `DFRS` then keyword letters in order.
impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(letter, _)) in SYSTEM.iter().enumerate() {
            if self.system & (1 << i) != 0 {
                write!(f, "{}", letter as char)?;
            }
        }
        for i in self.keyword_indexes() {
            write!(f, "{}", (b'a' + i as u8) as char)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_sorted_and_round_trips() {
        let f = Flags::from_info("TSbRFa");
        assert_eq!(f.to_string(), "FRSTab");
        assert_eq!(Flags::from_info(&f.to_string()), f);
        assert_eq!(
            Flags::from_file_name("1.M2P3.host,S=10:2,SR"),
            Flags::from_info("RS")
        );
        assert!(Flags::from_file_name("1.M2P3.host,S=10").is_empty());
    }

    #[test]
    fn imap_flag_names_parse() {
        let cases: &[(&str, Result<Flag, ()>)] = &[
            ("\\Seen", Ok(Flag::System(b'S'))),
            ("\\seen", Ok(Flag::System(b'S'))),
            ("\\Answered", Ok(Flag::System(b'R'))),
            ("\\Deleted", Ok(Flag::System(b'T'))),
            ("\\Draft", Ok(Flag::System(b'D'))),
            ("\\Flagged", Ok(Flag::System(b'F'))),
            ("\\Recent", Err(())),
            ("$Junk", Ok(Flag::Keyword("$Junk".into()))),
            ("work", Ok(Flag::Keyword("work".into()))),
            ("a b", Err(())),
            ("a:b", Err(())),
            ("", Err(())),
        ];
        for (word, expected) in cases {
            assert_eq!(Flag::parse(word).map_err(|_| ()), *expected, "{word:?}");
        }
        assert_eq!(Flag::parse_list("\\Seen, work  $Junk").unwrap().len(), 3);
    }

    #[test]
    fn system_names_leave_out_passed() {
        let f = Flags::from_info("PS");
        assert_eq!(f.system_names().collect::<Vec<_>>(), vec!["\\Seen"]);
        assert!(f.has_system(b'P'));
    }
}
