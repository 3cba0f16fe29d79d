//! Password hashes in Dovecot's `{SCHEME}hash` notation.
//!
//! We write `{ARGON2ID}` (PHC string, the argon2 crate's OWASP parameters)
//! and read what Dovecot installations commonly have: `{ARGON2ID}`,
//! `{SHA512-CRYPT}` (`$6$`) and `{BLF-CRYPT}` (`$2y$`). Each library
//! compares in constant time (argon2's `verify_password`, sha-crypt's and
//! bcrypt's `subtle::ConstantTimeEq`). `{PLAIN}`, `{CRYPT}` (DES) and
//! anything else are refused when the file is read, so a weak hash is a
//! clear error and never a silent login.

use std::fmt;

/// A password in memory: never printed, wiped when dropped.
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // SAFETY: overwriting with zero bytes keeps the String valid UTF-8.
        unsafe { self.0.as_bytes_mut().fill(0) };
    }
}

/// A stored password hash, its scheme known and supported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordHash {
    Argon2id(String),
    Sha512Crypt(String),
    BlfCrypt(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error(
        "password scheme {{PLAIN}} is refused: store a hash (`ownmail user passwd NAME` writes {{ARGON2ID}})"
    )]
    Plain,
    #[error("unsupported password scheme {{{0}}} (supported: ARGON2ID, SHA512-CRYPT, BLF-CRYPT)")]
    Unsupported(String),
    #[error(
        "the password field has no {{SCHEME}} prefix (supported: ARGON2ID, SHA512-CRYPT, BLF-CRYPT)"
    )]
    NoScheme,
    #[error("the {scheme} hash is malformed")]
    Malformed { scheme: &'static str },
    #[error("could not hash the password: {0}")]
    Hashing(String),
}

impl PasswordHash {
    /// Parses a passwd-file password field (`{SCHEME}hash`).
    pub fn parse(field: &str) -> Result<PasswordHash, HashError> {
        let rest = field.strip_prefix('{').ok_or(HashError::NoScheme)?;
        let (scheme, hash) = rest.split_once('}').ok_or(HashError::NoScheme)?;
        let hash = hash.to_owned();
        match scheme.to_ascii_uppercase().as_str() {
            "ARGON2ID" if hash.starts_with("$argon2id$") => {
                argon2::PasswordHash::new(&hash)
                    .map_err(|_| HashError::Malformed { scheme: "ARGON2ID" })?;
                Ok(PasswordHash::Argon2id(hash))
            }
            "ARGON2ID" => Err(HashError::Malformed { scheme: "ARGON2ID" }),
            "SHA512-CRYPT" if hash.starts_with("$6$") => Ok(PasswordHash::Sha512Crypt(hash)),
            "SHA512-CRYPT" => Err(HashError::Malformed {
                scheme: "SHA512-CRYPT",
            }),
            "BLF-CRYPT" if ["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p)) => {
                Ok(PasswordHash::BlfCrypt(hash))
            }
            "BLF-CRYPT" => Err(HashError::Malformed {
                scheme: "BLF-CRYPT",
            }),
            "PLAIN" | "CLEARTEXT" | "CLEAR" => Err(HashError::Plain),
            other => Err(HashError::Unsupported(other.to_owned())),
        }
    }

    /// Hashes a new password with Argon2id and a random salt.
    pub fn new_argon2id(password: &Secret) -> Result<PasswordHash, HashError> {
        use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
        let salt = SaltString::generate(&mut OsRng);
        let hash = argon2::Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map_err(|e| HashError::Hashing(e.to_string()))?;
        Ok(PasswordHash::Argon2id(hash.to_string()))
    }

    /// Whether `password` matches, in constant time for a given hash.
    pub fn verify(&self, password: &Secret) -> bool {
        let pw = password.expose();
        match self {
            PasswordHash::Argon2id(h) => {
                use argon2::password_hash::PasswordVerifier;
                argon2::PasswordHash::new(h).is_ok_and(|parsed| {
                    argon2::Argon2::default()
                        .verify_password(pw.as_bytes(), &parsed)
                        .is_ok()
                })
            }
            PasswordHash::Sha512Crypt(h) => sha_crypt::sha512_check(pw, h).is_ok(),
            PasswordHash::BlfCrypt(h) => bcrypt::verify(pw, h).unwrap_or(false),
        }
    }

    pub fn scheme(&self) -> &'static str {
        match self {
            PasswordHash::Argon2id(_) => "ARGON2ID",
            PasswordHash::Sha512Crypt(_) => "SHA512-CRYPT",
            PasswordHash::BlfCrypt(_) => "BLF-CRYPT",
        }
    }
}

/// The passwd-file field: `{SCHEME}hash`.
impl fmt::Display for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = match self {
            PasswordHash::Argon2id(h)
            | PasswordHash::Sha512Crypt(h)
            | PasswordHash::BlfCrypt(h) => h,
        };
        write!(f, "{{{}}}{}", self.scheme(), h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::new(s.to_owned())
    }

    #[test]
    fn argon2id_round_trips_and_rejects_a_wrong_password() {
        let h = PasswordHash::new_argon2id(&secret("correct horse")).unwrap();
        let field = h.to_string();
        assert!(field.starts_with("{ARGON2ID}$argon2id$v=19$"), "{field}");
        let parsed = PasswordHash::parse(&field).unwrap();
        assert!(parsed.verify(&secret("correct horse")));
        assert!(!parsed.verify(&secret("correct horsE")));
    }

    #[test]
    fn reads_hashes_made_by_doveadm_pw() {
        // Made by Dovecot 2.3.19's `doveadm pw -s SCHEME -p secret` (BLF-CRYPT with -r 5).
        let fields = [
            "{SHA512-CRYPT}$6$PwULo3lXuykNzB63$Xx3hoVc0wde2waoACZBq9rHdPqCAG6CCTDHD0AiBRw04blFcpANfivhXh1Jl9YyIVgcoLEnk/h1AvpXtDCoHe1",
            "{BLF-CRYPT}$2y$05$WAC1nqfL3xeZygbzdtdBsezTS.ePaZoCyiXLCw2jkZJeKzv1svJ.C",
            "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$QsnprOKKUqJy8vL5DI2M6Q$44GZ6KRCar2rQH2DhciaIhJ0oHuW5SkZicmHWVgWds4",
        ];
        for field in fields {
            let h = PasswordHash::parse(field).unwrap();
            assert_eq!(h.to_string(), field);
            assert!(h.verify(&secret("secret")), "{field}");
            assert!(!h.verify(&secret("Secret")), "{field}");
        }
    }

    #[test]
    fn sha512_and_bcrypt_verify_their_own_hashes() {
        let params = sha_crypt::Sha512Params::new(5000).unwrap();
        let sha = sha_crypt::sha512_simple("s3cret", &params).unwrap();
        let h = PasswordHash::parse(&format!("{{SHA512-CRYPT}}{sha}")).unwrap();
        assert!(h.verify(&secret("s3cret")) && !h.verify(&secret("s3cre")));
        let blf = bcrypt::hash("s3cret", 4).unwrap();
        let h = PasswordHash::parse(&format!("{{BLF-CRYPT}}{blf}")).unwrap();
        assert!(h.verify(&secret("s3cret")) && !h.verify(&secret("S3cret")));
    }

    #[test]
    fn weak_and_unknown_schemes_are_refused() {
        let cases = [
            ("{PLAIN}secret", HashError::Plain),
            ("{plain}secret", HashError::Plain),
            (
                "{CRYPT}abJnggxhB/yWI",
                HashError::Unsupported("CRYPT".into()),
            ),
            (
                "{MD5-CRYPT}$1$x$y",
                HashError::Unsupported("MD5-CRYPT".into()),
            ),
            ("secret", HashError::NoScheme),
            (
                "{ARGON2ID}$argon2i$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA",
                HashError::Malformed { scheme: "ARGON2ID" },
            ),
            (
                "{SHA512-CRYPT}$5$x$y",
                HashError::Malformed {
                    scheme: "SHA512-CRYPT",
                },
            ),
        ];
        for (field, expected) in cases {
            assert_eq!(PasswordHash::parse(field), Err(expected), "{field}");
        }
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", secret("hunter2")), "Secret(..)");
    }
}
