//! `dovecot-keywords`: the per-folder map from keyword letters (`a` is 0) to
//! keyword names, in Dovecot's format (`<index> <name>` per line), so that
//! Dovecot and ownmail read the same keywords from the same file names.
//!
//! Adding a keyword happens under the file's dotlock; reading needs none,
//! because the file is only ever replaced by a rename.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::dotlock::DotLock;
use super::flags::is_keyword;

pub const FILE_NAME: &str = "dovecot-keywords";
/// Maildir file names have 26 keyword letters.
pub const MAX_KEYWORDS: usize = 26;
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// 26 keywords of at most 64 bytes fit many times over; a larger file is
/// damaged or hostile, and only its start is read.
const MAX_FILE: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeywordError {
    #[error(
        "folder {folder} already has 26 keywords, the most a Maildir can name; {keyword:?} was not added"
    )]
    Full { folder: PathBuf, keyword: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// The keyword names of one folder, indexed by letter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keywords {
    names: Vec<Option<String>>,
}

impl Keywords {
    /// Parses the file's text. Lines that do not parse are skipped, as
    /// Dovecot skips them: a damaged line must not hide the others.
    pub fn parse(text: &str) -> Keywords {
        let mut kw = Keywords::default();
        for line in text.lines() {
            let Some((idx, name)) = line.split_once(' ') else {
                continue;
            };
            let Ok(idx) = idx.parse::<usize>() else {
                continue;
            };
            if idx >= MAX_KEYWORDS || !is_keyword(name) {
                continue;
            }
            if kw.names.len() <= idx {
                kw.names.resize(idx + 1, None);
            }
            kw.names[idx] = Some(name.to_owned());
        }
        kw
    }

    /// Reads a folder's keywords (none if the file does not exist).
    pub fn load(folder: &Path) -> io::Result<Keywords> {
        use std::io::Read;
        let file = match fs::File::open(folder.join(FILE_NAME)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Keywords::default()),
            Err(e) => return Err(e),
        };
        let mut bytes = Vec::new();
        file.take(MAX_FILE).read_to_end(&mut bytes)?;
        Ok(Keywords::parse(&String::from_utf8_lossy(&bytes)))
    }

    /// The letter index of a keyword, compared case-insensitively as IMAP does.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names
            .iter()
            .position(|n| n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
    }

    pub fn name(&self, index: usize) -> Option<&str> {
        self.names.get(index).and_then(|n| n.as_deref())
    }

    /// Every (index, name) pair, lowest index first.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &str)> {
        self.names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_deref().map(|n| (i, n)))
    }

    fn render(&self) -> String {
        self.iter().map(|(i, n)| format!("{i} {n}\n")).collect()
    }

    /// Resolves keyword names to letter indexes, adding the missing ones to
    /// the folder's file under its lock.
    pub fn resolve(folder: &Path, wanted: &[&str]) -> Result<Vec<usize>, KeywordError> {
        let io_err = |source| KeywordError::Io {
            path: folder.join(FILE_NAME),
            source,
        };
        let current = Keywords::load(folder).map_err(io_err)?;
        if let Some(found) = wanted
            .iter()
            .map(|w| current.index_of(w))
            .collect::<Option<Vec<_>>>()
        {
            return Ok(found);
        }
        let lock = DotLock::acquire(&folder.join(FILE_NAME), LOCK_TIMEOUT).map_err(io_err)?;
        // Reload under the lock: another writer may have added some.
        let mut kw = Keywords::load(folder).map_err(io_err)?;
        let mut indexes = Vec::with_capacity(wanted.len());
        for &name in wanted {
            let idx = match kw.index_of(name) {
                Some(i) => i,
                None => {
                    let free = kw
                        .names
                        .iter()
                        .position(Option::is_none)
                        .unwrap_or(kw.names.len());
                    if free >= MAX_KEYWORDS {
                        return Err(KeywordError::Full {
                            folder: folder.to_owned(),
                            keyword: name.to_owned(),
                        });
                    }
                    if free == kw.names.len() {
                        kw.names.push(None);
                    }
                    kw.names[free] = Some(name.to_owned());
                    free
                }
            };
            indexes.push(idx);
        }
        lock.replace(kw.render().as_bytes()).map_err(io_err)?;
        Ok(indexes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dovecots_format_and_skips_damage() {
        let kw = Keywords::parse("0 $Junk\n1 work\nbroken\n30 toolate\n3 $Label1\nx y\n");
        assert_eq!(kw.name(0), Some("$Junk"));
        assert_eq!(kw.name(1), Some("work"));
        assert_eq!(kw.name(2), None);
        assert_eq!(kw.name(3), Some("$Label1"));
        assert_eq!(kw.index_of("WORK"), Some(1));
        assert_eq!(kw.render(), "0 $Junk\n1 work\n3 $Label1\n");
    }

    #[test]
    fn resolve_adds_missing_keywords_into_free_slots() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), "0 a\n2 c\n").unwrap();
        assert_eq!(
            Keywords::resolve(dir.path(), &["c", "b", "d"]).unwrap(),
            vec![2, 1, 3]
        );
        assert_eq!(
            fs::read_to_string(dir.path().join(FILE_NAME)).unwrap(),
            "0 a\n1 b\n2 c\n3 d\n"
        );
        assert_eq!(Keywords::resolve(dir.path(), &["A"]).unwrap(), vec![0]);
    }

    #[test]
    fn a_huge_keywords_file_costs_bounded_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("0 first\n");
        text.push_str(&"#".repeat(10 * MAX_FILE as usize));
        text.push_str("\n1 beyond\n");
        fs::write(dir.path().join(FILE_NAME), text).unwrap();
        let kw = Keywords::load(dir.path()).unwrap();
        assert_eq!((kw.name(0), kw.name(1)), (Some("first"), None));
    }

    #[test]
    fn a_full_folder_refuses_the_27th_keyword() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..26).map(|i| format!("k{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(Keywords::resolve(dir.path(), &refs).unwrap().len(), 26);
        assert!(matches!(
            Keywords::resolve(dir.path(), &["one-more"]),
            Err(KeywordError::Full { .. })
        ));
    }
}
