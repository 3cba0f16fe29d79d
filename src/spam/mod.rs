//! `spamcheck`: a Bayesian spam filter (Robinson-Fisher chi-square
//! combining over tokens from decoded headers and bodies) plus rules for
//! what statistics miss, writing SpamAssassin-compatible headers.
//!
//! | module       | what it is for                                          |
//! | ------------ | ------------------------------------------------------- |
//! | [`tokenize`] | raw message to token hashes and facts (mail-parser)     |
//! | [`html`]     | HTML to text, links, hidden-word tricks                 |
//! | [`chi`]      | the combining maths                                     |
//! | [`rules`]    | the rules file and the checks                           |
//! | [`db`]       | the token database: mmap to scan, atomic replace to train |
//! | [`input`]    | messages to train on: Maildirs, mbox files, single files |
//!
//! The API the delivery paths call:
//! - [`Filter::open`] once (site database plus the user's), then
//!   [`Filter::check`] per message, [`tag`] to write the headers, and the
//!   verdict's [`Verdict::is_spam`] to pick the Junk folder;
//!   [`Filter::scan`] does the three for a stream with bounded memory.
//! - [`learn`] to train a user's database from one or more messages (the
//!   IMAP Junk loop: `learn(&cfg, Some(&user), Class::Spam, false, &[msg])`).
//!
//! Bounds: a message over [`MAX_SCAN_BYTES`] is not scanned (it passes with
//! `X-Spam-Status: No, ... too big`); below that, the tokenizer's bounds
//! ([`tokenize`]) keep time linear in the size and memory within a small
//! multiple of it. Nothing here panics on any input.
//! Never: change a message beyond removing `X-Spam-*` and adding ours.

pub mod chi;
pub mod db;
pub mod feedback;
pub mod html;
pub mod input;
pub mod rules;
pub mod tokenize;

use std::io::{self, Read};
use std::path::Path;

use crate::auth::UserName;
use crate::config::SpamConfig;
pub use db::{Db, DbError, Trained};
pub use rules::{Rules, RulesError};

/// Messages larger than this are passed through unscanned ("too big").
pub const MAX_SCAN_BYTES: usize = 4 << 20;
/// Bayes is used once a database has learnt this many of each class.
pub const MIN_TRAINED: u32 = 10;

/// Spam or ham, for training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Spam,
    Ham,
}

#[derive(Debug, thiserror::Error)]
pub enum SpamError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Rules(#[from] RulesError),
}

impl crate::error::ExitStatus for SpamError {
    fn exit_code(&self) -> u8 {
        match self {
            SpamError::Db(e) => e.exit_code(),
            SpamError::Rules(_) => crate::error::sysexits::CONFIG,
        }
    }
}

/// One rule a message hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub name: String,
    pub score: f64,
    pub description: String,
}

/// What the filter says about one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub score: f64,
    pub required: f64,
    /// The Bayes spam probability, when the databases are trained enough.
    pub probability: Option<f64>,
    pub hits: Vec<Hit>,
    /// Not scanned: larger than [`MAX_SCAN_BYTES`].
    pub too_big: bool,
}

impl Verdict {
    pub fn is_spam(&self) -> bool {
        !self.too_big && self.score >= self.required
    }

    /// The score as SpamAssassin prints it: one decimal.
    pub fn score_text(&self) -> String {
        format!("{:.1}", self.score)
    }

    /// The `X-Spam-*` header fields, in SpamAssassin's order and folding
    /// (tests folded at 78 columns with a tab), each line ending in `eol`.
    pub fn headers(&self, eol: &str) -> String {
        let mut h = String::new();
        h.push_str(&format!(
            "X-Spam-Checker-Version: ownmail {}{eol}",
            env!("CARGO_PKG_VERSION")
        ));
        if self.is_spam() {
            h.push_str(&format!("X-Spam-Flag: YES{eol}"));
        }
        h.push_str(&format!("X-Spam-Score: {}{eol}", self.score_text()));
        let stars = self.score.floor().clamp(0.0, 50.0) as usize;
        h.push_str(&format!("X-Spam-Level: {}{eol}", "*".repeat(stars)));
        let yes = if self.is_spam() { "Yes" } else { "No" };
        let mut status = format!(
            "X-Spam-Status: {yes}, score={} required={:.1} tests=",
            self.score_text(),
            self.required
        );
        let tests: Vec<&str> = self.hits.iter().map(|h| h.name.as_str()).collect();
        let mut words: Vec<String> = Vec::new();
        if tests.is_empty() {
            words.push("none".into());
        } else {
            // SpamAssassin lists the tests sorted, comma-separated, and folds
            // only after a comma.
            let mut sorted = tests.clone();
            sorted.sort_unstable();
            let n = sorted.len();
            for (i, t) in sorted.into_iter().enumerate() {
                words.push(if i + 1 < n {
                    format!("{t},")
                } else {
                    t.to_owned()
                });
            }
        }
        words.push(" autolearn=no".into());
        words.push(" autolearn_force=no".into());
        words.push(format!(" version=ownmail-{}", env!("CARGO_PKG_VERSION")));
        if self.too_big {
            words.push(" too big".into());
        }
        let mut line_len = status.len();
        for w in words {
            let w_len = w.trim_start().len();
            if line_len + w.len() > 78 && line_len > 0 {
                status.push_str(eol);
                status.push('\t');
                status.push_str(w.trim_start());
                line_len = 8 + w_len;
            } else {
                status.push_str(&w);
                line_len += w.len();
            }
        }
        h.push_str(&status);
        h.push_str(eol);
        h
    }

    /// `--report`: one line per rule hit, as SpamAssassin's report.
    pub fn report(&self) -> String {
        let mut r = format!(
            "Content analysis: score {} (required {:.1}){}\n pts rule name              description\n---- ---------------------- --------------------------------------------------\n",
            self.score_text(),
            self.required,
            if self.too_big {
                ", not scanned: too big"
            } else {
                ""
            }
        );
        for h in &self.hits {
            r.push_str(&format!(
                "{:>4.1} {:<22} {}\n",
                h.score, h.name, h.description
            ));
        }
        if let Some(p) = self.probability {
            r.push_str(&format!("Bayes spam probability: {p:.4}\n"));
        }
        r
    }
}

/// A scanned message as a reader: the tagged head, then the unread rest.
pub type Tagged<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// A loaded filter: rules and databases.
#[derive(Debug)]
pub struct Filter {
    rules: Rules,
    required: f64,
    dbs: Vec<Db>,
}

impl Filter {
    /// The filter of `config`: its rules file, the site database and, with
    /// a user, theirs (counts add up). Missing databases are untrained.
    pub fn open(config: &SpamConfig, user: Option<&UserName>) -> Result<Filter, SpamError> {
        let rules = match &config.rules {
            Some(p) => Rules::load(p)?,
            None => Rules::default(),
        };
        let mut paths = vec![config.db.clone()];
        if let Some(u) = user {
            paths.push(config.user_db(u));
        }
        Filter::with_databases(rules, config.required_score, &paths)
    }

    pub fn with_databases(
        rules: Rules,
        required: f64,
        paths: &[impl AsRef<Path>],
    ) -> Result<Filter, SpamError> {
        let mut dbs = Vec::new();
        for p in paths {
            if let Some(db) = Db::open(p.as_ref())? {
                dbs.push(db);
            }
        }
        Ok(Filter {
            rules,
            required,
            dbs,
        })
    }

    /// Classifies one message (the whole of it, at most [`MAX_SCAN_BYTES`];
    /// a longer slice is judged too big).
    pub fn check(&self, message: &[u8]) -> Verdict {
        if message.len() > MAX_SCAN_BYTES {
            return self.too_big();
        }
        let analysis = tokenize::analyze(message);
        let mut names: Vec<&str> = rules::check(&analysis.facts);
        let probabilities = self.probabilities(&analysis.tokens, &analysis.body_tokens);
        let probability = probabilities.map(|p| p.0);
        if let Some((p, body)) = probabilities {
            let bucket = rules::BAYES_BUCKETS
                .iter()
                .find(|(lo, _)| p >= *lo)
                .map_or("BAYES_00", |b| b.1);
            names.push(bucket);
            if body >= rules::BAYES_BODY_CUTOFF {
                names.push("BAYES_BODY_99");
            }
        }
        let mut hits: Vec<Hit> = names
            .into_iter()
            .filter_map(|n| {
                let r = self.rules.get(n)?;
                (r.score != 0.0).then(|| Hit {
                    name: r.name.clone(),
                    score: r.score,
                    description: r.description.clone(),
                })
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.name.cmp(&b.name)));
        let score = (hits.iter().map(|h| h.score).sum::<f64>() * 10.0).round() / 10.0;
        Verdict {
            score,
            required: self.required,
            probability,
            hits,
            too_big: false,
        }
    }

    fn too_big(&self) -> Verdict {
        Verdict {
            score: 0.0,
            required: self.required,
            probability: None,
            hits: Vec::new(),
            too_big: true,
        }
    }

    /// The Bayes spam probability of a token set, if trained enough.
    pub fn probability(&self, tokens: &[u32]) -> Option<f64> {
        self.probabilities(tokens, &[]).map(|p| p.0)
    }

    /// The Bayes spam probability of a message's tokens and of its body
    /// tokens alone (`body` sorted, a subset of `tokens`), if trained
    /// enough: each token is looked up once.
    pub fn probabilities(&self, tokens: &[u32], body: &[u32]) -> Option<(f64, f64)> {
        let nspam: u32 = self
            .dbs
            .iter()
            .map(|d| d.nspam)
            .fold(0, u32::saturating_add);
        let nham: u32 = self.dbs.iter().map(|d| d.nham).fold(0, u32::saturating_add);
        if nspam < MIN_TRAINED || nham < MIN_TRAINED {
            return None;
        }
        let mut counts = vec![(0u32, 0u32); tokens.len()];
        for db in &self.dbs {
            db.get_sorted(tokens, |i, s, g| {
                counts[i].0 = counts[i].0.saturating_add(s);
                counts[i].1 = counts[i].1.saturating_add(g);
            });
        }
        let (mut all, mut body_probs) = (Vec::with_capacity(tokens.len()), Vec::new());
        let mut b = body.iter().peekable();
        for (&t, &(s, g)) in tokens.iter().zip(&counts) {
            let in_body = b.next_if(|&&h| h <= t).is_some_and(|&h| h == t);
            if s + g == 0 {
                continue;
            }
            let f = chi::token_probability(s, g, nspam, nham);
            all.push(f);
            if in_body {
                body_probs.push(f);
            }
        }
        Some((chi::classify(all).0, chi::classify(body_probs).0))
    }

    /// Reads a message from `input` (at most [`MAX_SCAN_BYTES`] + 1 bytes
    /// are held), classifies it and returns the verdict with a reader of
    /// the tagged message: the tagged head, then the rest of `input`.
    pub fn scan<R: Read>(&self, input: R) -> io::Result<(Verdict, Tagged<R>)> {
        let mut input = input;
        let mut head = Vec::with_capacity(64 * 1024);
        (&mut input)
            .take(MAX_SCAN_BYTES as u64 + 1)
            .read_to_end(&mut head)?;
        let verdict = if head.len() > MAX_SCAN_BYTES {
            self.too_big()
        } else {
            self.check(&head)
        };
        let tagged = tag(&head, &verdict);
        Ok((verdict, io::Cursor::new(tagged).chain(input)))
    }
}

/// Files a message by its verdict, as every delivery with `spam.enabled`
/// does (`deliver`, SMTP local delivery, `fetch`): spam goes to the junk
/// folder (created if missing, as Dovecot's autocreate does), ham stays
/// where it was going.
pub fn file_by_verdict(
    settings: &SpamConfig,
    verdict: &Verdict,
    target: &mut crate::deliver::Target,
) {
    if verdict.is_spam() {
        target.folder = settings.junk_folder.clone();
        target.create = true;
    }
    tracing::debug!(score = verdict.score, spam = verdict.is_spam(), "spamcheck");
}

/// Classifies a whole message held in memory for a delivery to `user`
/// (the site database and the user's), files it ([`file_by_verdict`]) and
/// returns it tagged. SMTP local delivery and `fetch` call this; `deliver`
/// streams its input through [`Filter::scan`] instead.
pub fn check_for_delivery(
    settings: &SpamConfig,
    user: Option<&UserName>,
    message: &[u8],
    target: &mut crate::deliver::Target,
) -> Result<Vec<u8>, SpamError> {
    let filter = Filter::open(settings, user)?;
    let verdict = filter.check(message);
    file_by_verdict(settings, &verdict, target);
    Ok(tag(message, &verdict))
}

/// The message with every `X-Spam-*` field removed and the verdict's
/// fields added at the top of the header section (after a leading mbox
/// `From ` line and `Return-Path:`, where SpamAssassin puts them). Works on
/// a prefix of a message too, as long as it holds the header section.
pub fn tag(message: &[u8], verdict: &Verdict) -> Vec<u8> {
    let eol = if memchr::memchr(b'\n', message).is_some_and(|i| i > 0 && message[i - 1] == b'\r') {
        "\r\n"
    } else {
        "\n"
    };
    let mut out = Vec::with_capacity(message.len() + 512);
    let mut rest = message;
    let line = |rest: &mut &[u8]| -> Option<usize> {
        if rest.is_empty() {
            return None;
        }
        Some(memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1))
    };
    // A leading envelope line and Return-Path (with its continuations) stay first.
    if rest.starts_with(b"From ")
        && let Some(n) = line(&mut rest)
    {
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
    if rest.len() >= 12 && rest[..12].eq_ignore_ascii_case(b"Return-Path:") {
        let n = field_len(rest);
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
    out.extend_from_slice(verdict.headers(eol).as_bytes());
    // Copy the header section without X-Spam-* fields.
    while let Some(n) = line(&mut rest) {
        let first = &rest[..n];
        if first == b"\n" || first == b"\r\n" {
            break;
        }
        let n = field_len(rest);
        if !(rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"X-Spam-")) {
            out.extend_from_slice(&rest[..n]);
        }
        rest = &rest[n..];
    }
    out.extend_from_slice(rest);
    out
}

/// The length of the header field at the start of `b`, continuation lines
/// (starting with a space or tab) included.
fn field_len(b: &[u8]) -> usize {
    let mut at = 0;
    loop {
        match memchr::memchr(b'\n', &b[at..]) {
            Some(i) => {
                at += i + 1;
                if !matches!(b.get(at), Some(b' ' | b'\t')) {
                    return at;
                }
            }
            None => return b.len(),
        }
    }
}

/// Learns (or, with `forget`, unlearns) messages into the site database
/// or, with a user, into theirs. Durable when it returns.
pub fn learn(
    config: &SpamConfig,
    user: Option<&UserName>,
    class: Class,
    forget: bool,
    messages: &[&[u8]],
) -> Result<Trained, SpamError> {
    let path = match user {
        Some(u) => config.user_db(u),
        None => config.db.clone(),
    };
    learn_into(&path, class, forget, messages.iter().copied())
}

/// [`learn`] into the database at `path`.
pub fn learn_into<'a>(
    path: &Path,
    class: Class,
    forget: bool,
    messages: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Trained, SpamError> {
    let analyses: Vec<Vec<u32>> = messages
        .into_iter()
        .filter(|m| m.len() <= MAX_SCAN_BYTES)
        .map(|m| tokenize::analyze(m).tokens)
        .collect();
    Ok(db::train(
        path,
        analyses.iter().map(|t| db::Learn {
            class,
            forget,
            tokens: t,
        }),
    )?)
}

#[cfg(test)]
mod tests;
