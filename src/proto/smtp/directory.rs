//! Who lives here: our domains, our users and our aliases, as plain data,
//! so the session can answer RCPT and check MAIL FROM without I/O. The
//! driver builds one from the users file and the configuration.

use std::collections::{BTreeMap, HashMap};

/// Our domains, users and aliases.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// Lower case, no trailing dot.
    pub domains: Vec<String>,
    /// Lower-cased user name -> the name as in the users file.
    users: HashMap<String, String>,
    /// Lower-cased local part or address -> user names.
    aliases: BTreeMap<String, Vec<String>>,
    /// Why the users could not be read, when they could not: every lookup
    /// that needs them fails temporarily instead of finding nobody.
    unavailable: Option<String>,
}

/// The users could not be read: a temporary failure, never "no such user"
/// (RFC 5321 4.2.5: `451 4.3.0`, as Postfix answers a failed table lookup).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("user lookup failed: {0}")]
pub struct LookupFailed(pub String);

/// The name mail for `postmaster` goes to when nobody was made postmaster.
pub const POSTMASTER: &str = "postmaster";

impl Directory {
    pub fn new(
        domains: Vec<String>,
        users: impl IntoIterator<Item = String>,
        aliases: BTreeMap<String, Vec<String>>,
    ) -> Directory {
        Directory {
            domains: domains
                .into_iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            users: users.into_iter().map(|u| (u.to_lowercase(), u)).collect(),
            aliases: aliases
                .into_iter()
                .map(|(k, v)| (k.to_lowercase(), v))
                .collect(),
            unavailable: None,
        }
    }

    /// Our domains and aliases, with the users unknown because they could
    /// not be read (`why`): aliases and postmaster still resolve, anything
    /// else is a [`LookupFailed`].
    pub fn unavailable(
        domains: Vec<String>,
        aliases: BTreeMap<String, Vec<String>>,
        why: String,
    ) -> Directory {
        Directory {
            unavailable: Some(why),
            ..Directory::new(domains, Vec::new(), aliases)
        }
    }

    pub fn is_local_domain(&self, domain: &str) -> bool {
        let d = domain.strip_suffix('.').unwrap_or(domain);
        self.domains.iter().any(|ours| ours.eq_ignore_ascii_case(d))
    }

    /// The users a local address goes to: an alias (the whole address
    /// first, then the local part), else a user named after the local part
    /// (or after the whole address, for users named `a@b`), else
    /// postmaster. `Ok(None)`: nobody here; `Err`: the users could not be
    /// read, so we cannot tell.
    pub fn resolve(&self, local: &str, domain: &str) -> Result<Option<Vec<String>>, LookupFailed> {
        let local = local.to_lowercase();
        let full = format!("{local}@{}", domain.to_lowercase());
        if let Some(users) = self.aliases.get(&full).or_else(|| self.aliases.get(&local)) {
            return Ok(Some(users.clone()));
        }
        if let Some(u) = self.users.get(&local).or_else(|| self.users.get(&full)) {
            return Ok(Some(vec![u.clone()]));
        }
        // RFC 5321 4.5.1: postmaster always exists.
        if local == POSTMASTER {
            return Ok(Some(vec![POSTMASTER.to_owned()]));
        }
        match &self.unavailable {
            Some(why) => Err(LookupFailed(why.clone())),
            None => Ok(None),
        }
    }

    /// Whether `user` may send as `local@domain`: their own address in any
    /// of our domains, or an alias that delivers to them.
    pub fn may_send_as(&self, user: &str, local: &str, domain: &str) -> bool {
        if !self.is_local_domain(domain) {
            return false;
        }
        self.resolve(local, domain)
            .ok()
            .flatten()
            .is_some_and(|users| users.iter().any(|u| u.eq_ignore_ascii_case(user)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_resolve_to_users_aliases_or_postmaster() {
        let mut aliases = BTreeMap::new();
        aliases.insert(
            "info".to_owned(),
            vec!["alice".to_owned(), "bob".to_owned()],
        );
        aliases.insert("sales@example.net".to_owned(), vec!["bob".to_owned()]);
        let d = Directory::new(
            vec!["example.org".into(), "Example.NET".into()],
            [
                "alice".to_owned(),
                "bob".to_owned(),
                "carol@example.org".to_owned(),
            ],
            aliases,
        );
        let r = |l: &str, dom: &str| d.resolve(l, dom).unwrap();
        assert_eq!(r("Alice", "example.org"), Some(vec!["alice".into()]));
        assert_eq!(
            r("info", "example.net"),
            Some(vec!["alice".into(), "bob".into()])
        );
        assert_eq!(r("sales", "example.net"), Some(vec!["bob".into()]));
        assert_eq!(r("sales", "example.org"), None);
        assert_eq!(
            r("carol", "example.org"),
            Some(vec!["carol@example.org".into()])
        );
        assert_eq!(
            r("postmaster", "example.org"),
            Some(vec!["postmaster".into()])
        );
        assert_eq!(r("mallory", "example.org"), None);
        assert!(d.is_local_domain("EXAMPLE.org."));
        assert!(!d.is_local_domain("example.com"));
        assert!(d.may_send_as("alice", "alice", "example.net"));
        assert!(d.may_send_as("bob", "info", "example.org"));
        assert!(!d.may_send_as("alice", "bob", "example.org"));
        assert!(!d.may_send_as("alice", "alice", "gmail.com"));
    }

    /// Regression: an unreadable users file made every user unknown (550
    /// at RCPT, bounces from the queue). Without the users, only what does
    /// not need them resolves; the rest is a temporary failure.
    #[test]
    fn unreadable_users_are_a_lookup_failure_not_nobody() {
        let mut aliases = BTreeMap::new();
        aliases.insert("info".to_owned(), vec!["alice".to_owned()]);
        let d = Directory::unavailable(
            vec!["example.org".into()],
            aliases,
            "passwd: Permission denied".into(),
        );
        assert_eq!(
            d.resolve("alice", "example.org"),
            Err(LookupFailed("passwd: Permission denied".into()))
        );
        assert_eq!(
            d.resolve("info", "example.org"),
            Ok(Some(vec!["alice".into()]))
        );
        assert_eq!(
            d.resolve("postmaster", "example.org"),
            Ok(Some(vec!["postmaster".into()]))
        );
    }
}
