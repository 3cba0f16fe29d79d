//! `ownmail spamcheck`: classify one message, or train the databases.

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;

use anyhow::Context;

use super::{UsageError, known_user, load_config_if_any};
use crate::cli::{GlobalArgs, SpamcheckArgs, SpamcheckCommand};
use crate::config::{DEFAULT_DATA_DIR, SpamConfig};
use crate::error::sysexits;
use crate::spam::{self, Class, Filter, Rules};

pub fn run(global: &GlobalArgs, args: SpamcheckArgs) -> anyhow::Result<u8> {
    // The configuration is optional: a procmail pipe with --db needs none.
    let config = load_config_if_any(global)?;
    let mut settings = config
        .as_ref()
        .map(|c| c.spam.clone())
        .unwrap_or_else(|| SpamConfig::defaults(std::path::Path::new(DEFAULT_DATA_DIR)));
    if let Some(db) = &args.db {
        settings.db = std::path::absolute(db)?;
    }
    if let Some(rules) = &args.rules {
        settings.rules = Some(rules.clone());
    }
    let user = match &args.user {
        Some(name) => {
            let config = config
                .as_ref()
                .ok_or_else(|| UsageError("--user needs a configuration (--config FILE)".into()))?;
            Some(known_user(config, name)?)
        }
        None => None,
    };

    if let Some(SpamcheckCommand::Train { spam, ham, forget }) = args.command {
        if spam.is_empty() && ham.is_empty() {
            return Err(
                UsageError("train: give --spam PATH... and/or --ham PATH...".into()).into(),
            );
        }
        let path = match &user {
            Some(u) => settings.user_db(u),
            None => settings.db.clone(),
        };
        let mut batch: Vec<(Class, Vec<u32>)> = Vec::new();
        let mut counts = (0usize, 0usize);
        for (class, paths) in [(Class::Spam, &spam), (Class::Ham, &ham)] {
            for p in paths {
                let n = spam::input::for_each_message(p, &mut |m| {
                    batch.push((class, spam::tokenize::analyze(m).tokens));
                })
                .with_context(|| format!("reading {}", p.display()))?;
                match class {
                    Class::Spam => counts.0 += n,
                    Class::Ham => counts.1 += n,
                }
            }
        }
        let trained = spam::db::train(
            &path,
            batch.iter().map(|(class, tokens)| spam::db::Learn {
                class: *class,
                forget,
                tokens,
            }),
        )
        .with_context(|| format!("training {}", path.display()))?;
        let per = (trained.bytes as usize - 24)
            .checked_div(trained.tokens)
            .unwrap_or(spam::db::BYTES_PER_TOKEN);
        out!(
            "{} {} spam and {} ham; {}: {} spam, {} ham, {} tokens, {} bytes ({} bytes per token)",
            if forget { "forgot" } else { "learnt" },
            counts.0,
            counts.1,
            path.display(),
            trained.nspam,
            trained.nham,
            trained.tokens,
            trained.bytes,
            per
        )?;
        return Ok(sysexits::OK);
    }

    if args.list_rules {
        let rules = match &settings.rules {
            Some(p) => Rules::load(p)?,
            None => Rules::default(),
        };
        let mut out = super::stdout();
        for r in rules.iter() {
            writeln!(out, "{:<20} {:>5.1}  {}", r.name, r.score, r.description)?;
        }
        return Ok(sysexits::OK);
    }

    let filter = Filter::open(&settings, user.as_ref())?;
    if args.bulk {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, super::stdout());
        let mut buf = Vec::new();
        for line in std::io::stdin().lock().lines() {
            let name = line?;
            if name.is_empty() {
                continue;
            }
            buf.clear();
            let verdict = match std::fs::File::open(&name) {
                Ok(f) => {
                    f.take(spam::MAX_SCAN_BYTES as u64 + 1)
                        .read_to_end(&mut buf)
                        .with_context(|| format!("reading {name}"))?;
                    filter.check(&buf)
                }
                Err(e) => {
                    tracing::error!("{name}: {e}");
                    continue;
                }
            };
            let class = if verdict.is_spam() { "spam" } else { "ham" };
            let tests: Vec<&str> = verdict.hits.iter().map(|h| h.name.as_str()).collect();
            writeln!(
                out,
                "{name} {} {class} {}",
                verdict.score_text(),
                tests.join(",")
            )?;
        }
        out.flush()?;
        return Ok(sysexits::OK);
    }
    let input: Box<dyn Read> = match &args.file {
        Some(p) => Box::new(std::fs::File::open(p).map_err(|e| NoInput(p.clone(), e))?),
        None => Box::new(std::io::stdin().lock()),
    };
    let (verdict, mut tagged) = filter.scan(input).context("reading the message")?;
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, super::stdout());
    if args.score_only {
        writeln!(out, "{}", verdict.score_text())?;
    }
    if args.report {
        out.write_all(verdict.report().as_bytes())?;
    }
    if !args.score_only && !args.report {
        std::io::copy(&mut tagged, &mut out)?;
    }
    out.flush()?;
    Ok(if args.exit_code && verdict.is_spam() {
        1
    } else {
        sysexits::OK
    })
}

/// FILE cannot be opened (exit 66).
#[derive(Debug, thiserror::Error)]
#[error("{}: {}", .0.display(), .1)]
pub struct NoInput(PathBuf, std::io::Error);

impl crate::error::ExitStatus for NoInput {
    fn exit_code(&self) -> u8 {
        sysexits::NOINPUT
    }
}
