//! The YAML configuration every command reads: where it is found, its
//! defaults, and its validation. Loading has no side effects: nothing is
//! created, nothing is opened but the file itself.
//!
//! ```yaml
//! hostname: mail.example.org      # our name in greetings and Received: headers
//! domains: [example.org]          # mail for these domains is delivered here
//! data_dir: /var/lib/ownmail      # relative paths are relative to the config file's folder
//! users_file: passwd              # default: <data_dir>/passwd
//! tls:                            # optional; PEM files
//!   cert: cert.pem
//!   key: key.pem
//! ```
//!
//! The `fetch:` section (remote accounts for `ownmail fetch`) is described
//! in [`fetch`], the `imap:` section (where `serve-imap` listens) in
//! [`imap`], the `spam:` section (the spam filter) in [`spam`].
//!
//! Unknown keys are errors, so a typo is never silently ignored, and every
//! error names the file, the line and the key. The input is bounded: a file
//! over [`MAX_CONFIG_BYTES`] is refused before it is parsed, and the parser
//! runs with serde-saphyr's budget (events, aliases, nesting), so a hostile
//! or broken file is an error, never a hang.

pub mod fetch;
pub mod imap;
pub mod smtp;
pub mod spam;
mod yaml_error;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::error::{ExitStatus, sysexits};
pub use fetch::{FetchAccount, FetchConfig};
pub use imap::ImapConfig;
pub use smtp::{Aliases, SmtpConfig};
pub use spam::SpamConfig;

/// The largest configuration file we parse.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// Where the data lives when the configuration does not say.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/ownmail";
/// The file name looked for in the working directory and the XDG folder.
pub const FILE_NAME: &str = "ownmail.yaml";

/// The resolved configuration: paths absolute, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    /// The file this came from; `None` for the built-in default.
    #[serde(skip)]
    pub source: Option<PathBuf>,
    pub hostname: String,
    pub domains: Vec<String>,
    pub data_dir: PathBuf,
    pub users_file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    #[serde(skip_serializing_if = "FetchConfig::is_empty")]
    pub fetch: FetchConfig,
    pub spam: SpamConfig,
    #[serde(skip_serializing_if = "ImapConfig::is_empty")]
    pub imap: ImapConfig,
    pub smtp: SmtpConfig,
    #[serde(skip_serializing_if = "Aliases::is_empty")]
    pub aliases: Aliases,
    /// The lines where the file names the files [`Config::check_files`]
    /// opens, by key path, for its errors.
    #[serde(skip)]
    file_lines: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The file as written, every value with its location for error messages.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    hostname: Option<Spanned<String>>,
    domains: Option<Vec<Spanned<String>>>,
    data_dir: Option<Spanned<PathBuf>>,
    users_file: Option<Spanned<PathBuf>>,
    tls: Option<RawTls>,
    fetch: Option<fetch::RawFetch>,
    spam: Option<spam::RawSpam>,
    imap: Option<imap::RawImap>,
    smtp: Option<smtp::RawSmtp>,
    aliases: Option<std::collections::BTreeMap<String, Spanned<smtp::RawTargets>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Spanned<PathBuf>,
    key: Spanned<PathBuf>,
}

/// What can be wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no configuration file found (looked for {}); pass --config FILE or set OWNMAIL_CONFIG", list_paths(.searched))]
    NotFound { searched: Vec<PathBuf> },
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: the file is {size} bytes; a configuration may have at most {MAX_CONFIG_BYTES}", path.display())]
    TooBig { path: PathBuf, size: u64 },
    /// The file is not YAML, or not of the configuration's shape.
    #[error("{}: {}{message}", path.display(), place(*line, *column, key.as_deref()))]
    Parse {
        path: PathBuf,
        line: Option<u64>,
        column: Option<u64>,
        /// The key path, `smtp.listen[1]`, where it can be told.
        key: Option<String>,
        message: String,
    },
    #[error("{}: line {line}: {key}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: u64,
        key: String,
        message: String,
    },
    #[error("{}: {}{key}: cannot use {}: {source}", path.display(), place(*line, None, None), file.display())]
    Unusable {
        path: PathBuf,
        line: Option<u64>,
        key: String,
        file: PathBuf,
        source: std::io::Error,
    },
}

impl ExitStatus for ConfigError {
    fn exit_code(&self) -> u8 {
        sysexits::CONFIG
    }
}

/// `line 3 column 5: smtp.relay: `, as much of it as is known.
fn place(line: Option<u64>, column: Option<u64>, key: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(l) = line {
        out.push_str(&format!("line {l}"));
        if let Some(c) = column {
            out.push_str(&format!(" column {c}"));
        }
        out.push_str(": ");
    }
    if let Some(k) = key {
        out.push_str(k);
        out.push_str(": ");
    }
    out
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where the configuration is looked for when `--config` is not given.
#[derive(Debug, Clone, Default)]
pub struct SearchPath {
    /// `$OWNMAIL_CONFIG`.
    pub env: Option<PathBuf>,
    /// The working directory.
    pub cwd: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`, else `$HOME/.config`.
    pub xdg_config_home: Option<PathBuf>,
}

impl SearchPath {
    /// The search path from this process's environment.
    pub fn from_env() -> SearchPath {
        let var = |k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        SearchPath {
            env: var("OWNMAIL_CONFIG"),
            cwd: std::env::current_dir().ok(),
            xdg_config_home: var("XDG_CONFIG_HOME")
                .or_else(|| var("HOME").map(|h| h.join(".config"))),
        }
    }

    /// The candidates, in order: `$OWNMAIL_CONFIG`, `./ownmail.yaml`,
    /// `$XDG_CONFIG_HOME/ownmail/ownmail.yaml`, `/etc/ownmail/ownmail.yaml`.
    pub fn candidates(&self) -> Vec<PathBuf> {
        let mut c = Vec::new();
        if let Some(p) = &self.env {
            // An explicit variable is the only candidate: falling through to
            // another file would silently use the wrong configuration.
            return vec![p.clone()];
        }
        if let Some(cwd) = &self.cwd {
            c.push(cwd.join(FILE_NAME));
        }
        if let Some(x) = &self.xdg_config_home {
            c.push(x.join("ownmail").join(FILE_NAME));
        }
        c.push(PathBuf::from("/etc/ownmail").join(FILE_NAME));
        c
    }

    /// Finds the configuration file to use.
    pub fn find(&self) -> Result<PathBuf, ConfigError> {
        let candidates = self.candidates();
        if self.env.is_some() {
            return Ok(candidates[0].clone());
        }
        candidates
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .ok_or(ConfigError::NotFound {
                searched: candidates,
            })
    }
}

impl Config {
    /// Loads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read_err = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let path = std::path::absolute(path).map_err(read_err)?;
        let read_err = |source| ConfigError::Read {
            path: path.clone(),
            source,
        };
        let meta = std::fs::metadata(&path).map_err(read_err)?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooBig {
                path,
                size: meta.len(),
            });
        }
        let bytes = std::fs::read(&path).map_err(read_err)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = e.utf8_error().valid_up_to();
            parse_error(&path, yaml_error::not_utf8(e.as_bytes(), valid))
        })?;
        Config::parse(&text, &path)
    }

    /// Parses configuration text as if it had been read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooBig {
                path: path.to_owned(),
                size: text.len() as u64,
            });
        }
        // An empty file means "all defaults"; YAML would call it null.
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig {
                hostname: None,
                domains: None,
                data_dir: None,
                users_file: None,
                tls: None,
                fetch: None,
                spam: None,
                imap: None,
                smtp: None,
                aliases: None,
            }
        } else {
            serde_saphyr::from_str(text)
                .map_err(|e| parse_error(path, yaml_error::describe(&e, text)))?
        };
        let base = path.parent().unwrap_or(Path::new("/"));
        raw.resolve(path, base)
    }

    /// The Maildir of a user: `<data_dir>/mail/<user>/`.
    pub fn user_maildir(&self, user: &crate::auth::UserName) -> PathBuf {
        self.data_dir.join("mail").join(user.as_str())
    }

    /// Checks that the files the configuration names can be read: what
    /// `check-config` adds to loading.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        let path = self.source.clone().unwrap_or_default();
        if let Some(tls) = &self.tls {
            for (key, file) in [("tls.cert", &tls.cert), ("tls.key", &tls.key)] {
                std::fs::File::open(file).map_err(|source| ConfigError::Unusable {
                    path: path.clone(),
                    line: self.file_lines.get(key).copied(),
                    key: key.to_owned(),
                    file: file.clone(),
                    source,
                })?;
            }
        }
        for (i, account) in self.fetch.accounts.iter().enumerate() {
            if let fetch::Credential::PasswordFile(file) = &account.credential {
                let key = format!("fetch.accounts[{i}].password_file");
                std::fs::File::open(file).map_err(|source| ConfigError::Unusable {
                    path: path.clone(),
                    line: self.file_lines.get(&key).copied(),
                    key,
                    file: file.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// The configuration as YAML, for `check-config`.
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).unwrap_or_else(|e| format!("# could not render: {e}\n"))
    }
}

impl RawConfig {
    fn resolve(self, path: &Path, base: &Path) -> Result<Config, ConfigError> {
        let invalid =
            |s: &serde_saphyr::Location, key: &str, message: String| ConfigError::Invalid {
                path: path.to_owned(),
                line: s.line(),
                key: key.to_owned(),
                message,
            };
        let hostname = match self.hostname {
            Some(h) => {
                check_domain(&h.value).map_err(|m| invalid(&h.referenced, "hostname", m))?;
                h.value
            }
            None => crate::store::delivery::system_hostname(),
        };
        let domains = match self.domains {
            Some(ds) => {
                let mut out: Vec<String> = Vec::with_capacity(ds.len());
                for d in ds {
                    check_domain(&d.value).map_err(|m| invalid(&d.referenced, "domains", m))?;
                    let lower = d.value.to_ascii_lowercase();
                    if out.contains(&lower) {
                        return Err(invalid(
                            &d.referenced,
                            "domains",
                            format!("{lower} is listed twice"),
                        ));
                    }
                    out.push(lower);
                }
                out
            }
            None => vec![hostname.to_ascii_lowercase()],
        };
        let absolute = |p: &Spanned<PathBuf>, key: &str| -> Result<PathBuf, ConfigError> {
            if p.value.as_os_str().is_empty() {
                return Err(invalid(&p.referenced, key, "the path is empty".into()));
            }
            Ok(normalize(&base.join(&p.value)))
        };
        let data_dir = match &self.data_dir {
            Some(d) => absolute(d, "data_dir")?,
            None => PathBuf::from(DEFAULT_DATA_DIR),
        };
        let users_file = match &self.users_file {
            Some(u) => absolute(u, "users_file")?,
            None => data_dir.join("passwd"),
        };
        let tls = match &self.tls {
            Some(t) => Some(TlsConfig {
                cert: absolute(&t.cert, "tls.cert")?,
                key: absolute(&t.key, "tls.key")?,
            }),
            None => None,
        };
        let mut file_lines = std::collections::BTreeMap::new();
        if let Some(t) = &self.tls {
            file_lines.insert("tls.cert".to_owned(), t.cert.referenced.line());
            file_lines.insert("tls.key".to_owned(), t.key.referenced.line());
        }
        if let Some(raw) = &self.fetch {
            for (i, line) in fetch::password_file_lines(raw) {
                file_lines.insert(format!("fetch.accounts[{i}].password_file"), line);
            }
        }
        let fetch = match self.fetch {
            Some(raw) => fetch::resolve(raw, &fetch::Context { path, base })?,
            None => FetchConfig::default(),
        };
        let spam = spam::resolve(self.spam, path, base, &data_dir)?;
        let imap = match self.imap {
            Some(raw) => imap::resolve(raw, path, tls.is_some())?,
            None => ImapConfig::default(),
        };
        let smtp_cx = smtp::Context {
            path,
            base,
            has_tls: tls.is_some(),
        };
        let smtp = smtp::resolve(self.smtp, &smtp_cx)?;
        let aliases = smtp::resolve_aliases(self.aliases, &smtp_cx)?;
        Ok(Config {
            source: Some(path.to_owned()),
            hostname,
            domains,
            data_dir,
            users_file,
            tls,
            fetch,
            spam,
            imap,
            smtp,
            aliases,
            file_lines,
        })
    }
}

fn parse_error(path: &Path, d: yaml_error::Described) -> ConfigError {
    ConfigError::Parse {
        path: path.to_owned(),
        line: d.line,
        column: d.column,
        key: d.key,
        message: d.message,
    }
}

/// Removes `.` components and folds `..` lexically, so printed paths are clean.
pub(crate) fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// A host or domain name: letters, digits, `-` and `.`, by RFC 1035 2.3.1's
/// rules on label length (63) and name length (253).
pub(crate) fn check_domain(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err(format!(
            "{name:?} is not a domain name (1 to 253 characters)"
        ));
    }
    for label in name.trim_end_matches('.').split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!("{name:?} is not a domain name (label {label:?})"));
        }
    }
    Ok(())
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(p) => writeln!(f, "# {}", p.display())?,
            None => writeln!(f, "# built-in default configuration")?,
        }
        f.write_str(&self.to_yaml())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/ownmail/ownmail.yaml"))
    }

    #[test]
    fn a_full_config_resolves_relative_paths_against_its_folder() {
        let c = parse(
            "hostname: mail.example.org\ndomains: [Example.org, example.net]\ndata_dir: data\nusers_file: ../passwd\ntls:\n  cert: tls/cert.pem\n  key: /k.pem\n",
        )
        .unwrap();
        assert_eq!(c.hostname, "mail.example.org");
        assert_eq!(c.domains, vec!["example.org", "example.net"]);
        assert_eq!(c.data_dir, Path::new("/etc/ownmail/data"));
        assert_eq!(c.users_file, Path::new("/etc/passwd"));
        let tls = c.tls.unwrap();
        assert_eq!(
            (tls.cert.as_path(), tls.key.as_path()),
            (Path::new("/etc/ownmail/tls/cert.pem"), Path::new("/k.pem"))
        );
    }

    #[test]
    fn defaults_fill_in() {
        let c = parse("hostname: mx.example.org\n").unwrap();
        assert_eq!(c.domains, vec!["mx.example.org"]);
        assert_eq!(c.data_dir, Path::new(DEFAULT_DATA_DIR));
        assert_eq!(c.users_file, Path::new("/var/lib/ownmail/passwd"));
        assert!(c.tls.is_none());
        assert!(parse("").is_ok());
        assert!(parse("# only a comment\n").is_ok());
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let cases = [
            ("hostname: a\nhostnmae: b\n", "line 2", "hostnmae"),
            ("tls:\n  cert: a\n  keyy: b\n", "line 3", "keyy"),
            (
                "hostname: a\ndomains: [ok.org, 'bad domain']\n",
                "line 2",
                "domains",
            ),
            ("hostname: -bad-\n", "line 1", "hostname"),
            ("domains: [a.org, A.org]\n", "line 1", "listed twice"),
            ("data_dir: ''\n", "line 1", "data_dir"),
            ("hostname: [a\n", "line 1", "hostname"),
            ("tls:\n  cert: a\n", "", "key"),
        ];
        for (text, line, key) in cases {
            let msg = parse(text).unwrap_err().to_string();
            assert!(msg.starts_with("/etc/ownmail/ownmail.yaml: "), "{msg}");
            assert!(
                msg.contains(line) && msg.contains(key),
                "{text:?} gave {msg}"
            );
        }
    }

    #[test]
    fn hostile_yaml_is_an_error_not_a_hang() {
        // A billion laughs: aliases expanding exponentially.
        let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        for i in 1..12 {
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n",
                p = if i == 1 {
                    String::new()
                } else {
                    (i - 1).to_string()
                }
            ));
        }
        assert!(parse(&bomb).is_err());
        let deep = format!("hostname: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse(&deep).is_err());
        let big = "#".repeat(MAX_CONFIG_BYTES as usize + 1);
        assert!(matches!(parse(&big), Err(ConfigError::TooBig { .. })));
    }

    #[test]
    fn the_search_path_follows_the_documented_order() {
        let sp = SearchPath {
            env: None,
            cwd: Some("/w".into()),
            xdg_config_home: Some("/h/.config".into()),
        };
        assert_eq!(
            sp.candidates(),
            vec![
                PathBuf::from("/w/ownmail.yaml"),
                PathBuf::from("/h/.config/ownmail/ownmail.yaml"),
                PathBuf::from("/etc/ownmail/ownmail.yaml")
            ]
        );
        let sp = SearchPath {
            env: Some("/x.yaml".into()),
            ..sp
        };
        assert_eq!(sp.find().unwrap(), Path::new("/x.yaml"));
    }
}
