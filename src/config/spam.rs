//! The `spam:` section: whether `deliver`, `fetch` (and SMTP local
//! delivery) run the spam filter, the score that makes a message spam,
//! where spam is filed, and where the token databases live.
//!
//! ```yaml
//! spam:
//!   enabled: true          # default false
//!   required_score: 5.0    # default 5.0, as SpamAssassin
//!   junk_folder: Junk      # default Junk
//!   db: spam/site.db       # the site-wide database; default <data_dir>/spam/site.db
//!   rules: spam.rules      # optional: score overrides (see `ownmail spamcheck --list-rules`)
//! ```
//!
//! Per-user databases live beside the site one: `<db folder>/users/<user>.db`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::ConfigError;
use crate::auth::UserName;
use crate::store::MailboxName;

/// The resolved `spam:` section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpamConfig {
    pub enabled: bool,
    pub required_score: f64,
    #[serde(serialize_with = "display")]
    pub junk_folder: MailboxName,
    pub db: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<PathBuf>,
}

impl Eq for SpamConfig {}

fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl SpamConfig {
    /// The defaults for a data folder.
    pub fn defaults(data_dir: &Path) -> SpamConfig {
        SpamConfig {
            enabled: false,
            required_score: 5.0,
            junk_folder: MailboxName::new("Junk").expect("a valid name"),
            db: data_dir.join("spam").join("site.db"),
            rules: None,
        }
    }

    /// A user's own database.
    pub fn user_db(&self, user: &UserName) -> PathBuf {
        let dir = self.db.parent().unwrap_or(Path::new("."));
        dir.join("users").join(format!("{}.db", user.as_str()))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpam {
    enabled: Option<Spanned<bool>>,
    required_score: Option<Spanned<f64>>,
    junk_folder: Option<Spanned<String>>,
    db: Option<Spanned<PathBuf>>,
    rules: Option<Spanned<PathBuf>>,
}

pub(super) fn resolve(
    raw: Option<RawSpam>,
    path: &Path,
    base: &Path,
    data_dir: &Path,
) -> Result<SpamConfig, ConfigError> {
    let mut c = SpamConfig::defaults(data_dir);
    let Some(raw) = raw else {
        return Ok(c);
    };
    let invalid = |at: &serde_saphyr::Location, key: &str, message: String| ConfigError::Invalid {
        path: path.to_owned(),
        line: at.line(),
        key: key.to_owned(),
        message,
    };
    if let Some(e) = raw.enabled {
        c.enabled = e.value;
    }
    if let Some(s) = raw.required_score {
        if !s.value.is_finite() || !(-100.0..=1000.0).contains(&s.value) {
            return Err(invalid(
                &s.referenced,
                "spam.required_score",
                format!("{} is not a score (a number such as 5.0)", s.value),
            ));
        }
        c.required_score = s.value;
    }
    if let Some(f) = raw.junk_folder {
        c.junk_folder = MailboxName::new(&f.value)
            .map_err(|e| invalid(&f.referenced, "spam.junk_folder", e.to_string()))?;
        if c.junk_folder.is_inbox() {
            return Err(invalid(
                &f.referenced,
                "spam.junk_folder",
                "spam cannot be filed into INBOX".into(),
            ));
        }
    }
    let absolute = |p: &Spanned<PathBuf>, key: &str| -> Result<PathBuf, ConfigError> {
        if p.value.as_os_str().is_empty() {
            return Err(invalid(&p.referenced, key, "the path is empty".into()));
        }
        Ok(super::normalize(&base.join(&p.value)))
    };
    if let Some(d) = &raw.db {
        c.db = absolute(d, "spam.db")?;
    }
    if let Some(r) = &raw.rules {
        c.rules = Some(absolute(r, "spam.rules")?);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/ownmail/ownmail.yaml"))
    }

    #[test]
    fn defaults_and_every_key() {
        let c = parse("data_dir: /srv/mail\n").unwrap().spam;
        assert_eq!(c, SpamConfig::defaults(Path::new("/srv/mail")));
        assert!(!c.enabled && c.required_score == 5.0);
        assert_eq!(c.junk_folder.as_str(), "Junk");
        assert_eq!(c.db, Path::new("/srv/mail/spam/site.db"));
        let c = parse("spam:\n  enabled: true\n  required_score: 6.5\n  junk_folder: Spam/Maybe\n  db: db/site.db\n  rules: my.rules\n").unwrap().spam;
        assert!(c.enabled);
        assert_eq!(c.required_score, 6.5);
        assert_eq!(c.junk_folder.as_str(), "Spam/Maybe");
        assert_eq!(c.db, Path::new("/etc/ownmail/db/site.db"));
        assert_eq!(c.rules.as_deref(), Some(Path::new("/etc/ownmail/my.rules")));
        let alice = UserName::new("alice").unwrap();
        assert_eq!(
            c.user_db(&alice),
            Path::new("/etc/ownmail/db/users/alice.db")
        );
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        for (text, want) in [
            ("spam:\n  enabled: maybe\n", "line 2"),
            ("spam:\n  required_score: .nan\n", "spam.required_score"),
            ("spam:\n  junk_folder: a.b\n", "spam.junk_folder"),
            ("spam:\n  junk_folder: inbox\n", "INBOX"),
            ("spam:\n  db: ''\n", "spam.db"),
            ("spam:\n  filter: x\n", "filter"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
