//! `ownmail fetch`: pick the accounts, run them side by side, report.
//!
//! Standard output: one summary line per account (with `-q` only for
//! accounts where something happened), or with `--json` one JSON document.
//! Standard error: one line per error, naming the account, whatever `-q`.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{UsageError, load_config};
use crate::cli::{FetchArgs, GlobalArgs};
use crate::config::{Config, ConfigError, FetchAccount};
use crate::error::{ExitStatus, sysexits};
use crate::fetch::{FetchError, Observer, Options, Outcome, Report};

/// The exit code when an account failed for good.
pub const FAILED: u8 = 1;

impl ExitStatus for FetchError {
    fn exit_code(&self) -> u8 {
        if self.is_temporary() {
            sysexits::TEMPFAIL
        } else {
            FAILED
        }
    }
}

pub fn run(global: &GlobalArgs, args: FetchArgs) -> anyhow::Result<u8> {
    let config = load_config(global)?;
    if config.fetch.is_empty() {
        return Err(ConfigError::Invalid {
            path: config.source.clone().unwrap_or_default(),
            line: 1,
            key: "fetch.accounts".into(),
            message: "there are no accounts to fetch from (see `ownmail help fetch`)".into(),
        }
        .into());
    }
    let accounts = select(&config, &args.account)?;
    let options = Options {
        keep: args.keep,
        all: args.all,
        idle: args.idle,
        ..Options::default()
    };
    let quiet = global.quiet > 0;
    let show_progress = !quiet && !args.json && std::io::stderr().is_terminal();
    let multi = MultiProgress::with_draw_target(if show_progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });

    let runtime = super::runtime(Some(2))?;
    let config = Arc::new(config);
    let reports = runtime.block_on(async {
        let mut tasks = Vec::new();
        for account in accounts {
            let config = Arc::clone(&config);
            let options = options.clone();
            let bar = multi.add(ProgressBar::no_length());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12} [{bar:30}] {msg} {bytes}/{total_bytes} {binary_bytes_per_sec}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(account.name.clone());
            let observer = Bars {
                bar,
                found: AtomicU64::new(0),
                done: AtomicU64::new(0),
                idle: options.idle,
                quiet,
                json: args.json,
            };
            let name = account.name.clone();
            tasks.push((
                name,
                tokio::spawn(async move {
                    let report =
                        crate::fetch::run_account(&config, &account, &options, &observer).await;
                    observer.bar.finish_and_clear();
                    report
                }),
            ));
        }
        let mut reports = Vec::new();
        for (name, task) in tasks {
            match task.await {
                Ok(report) => reports.push(report),
                // A panic in an account's task: report it as that, not as
                // a success; its state is safe (nothing is deleted before
                // it is recorded).
                Err(e) => {
                    let mut r = Report::new(&name);
                    r.error = Some(FetchError::Internal(format!(
                        "the run stopped unexpectedly: {e}"
                    )));
                    reports.push(r);
                }
            }
        }
        reports
    });

    let mut out = super::stdout();
    if args.json {
        writeln!(out, "{}", json(&reports))?;
    } else {
        for report in &reports {
            if !quiet || report.has_news() {
                for line in summary(report) {
                    writeln!(out, "{line}")?;
                }
            }
        }
    }
    out.flush()?;
    for report in &reports {
        print_errors(report);
    }
    Ok(exit_code(&reports))
}

/// The accounts named with `--account`, in the configuration's order, or all.
fn select(config: &Config, names: &[String]) -> Result<Vec<FetchAccount>, UsageError> {
    let all = &config.fetch.accounts;
    for name in names {
        if !all.iter().any(|a| &a.name == name) {
            let known: Vec<&str> = all.iter().map(|a| a.name.as_str()).collect();
            return Err(UsageError(format!(
                "--account {name}: no such account (the configuration has: {})",
                known.join(", ")
            )));
        }
    }
    Ok(all
        .iter()
        .filter(|a| names.is_empty() || names.contains(&a.name))
        .cloned()
        .collect())
}

/// 1 when an account failed, else 75 when one failed for now, else 0.
pub fn exit_code(reports: &[Report]) -> u8 {
    let outcomes: Vec<Outcome> = reports.iter().map(Report::outcome).collect();
    if outcomes.contains(&Outcome::Failed) {
        FAILED
    } else if outcomes.contains(&Outcome::Temporary) {
        sysexits::TEMPFAIL
    } else {
        sysexits::OK
    }
}

/// The lines standard output gets for one account.
pub fn summary(r: &Report) -> Vec<String> {
    let name = &r.account;
    let mut lines = Vec::new();
    if r.busy {
        lines.push(format!(
            "{name}: busy: another ownmail fetch is working on it; left alone"
        ));
        return lines;
    }
    let failed_early =
        r.error.is_some() && r.fetched == 0 && r.deleted == 0 && r.too_big_total == 0;
    let mut head = if failed_early {
        // The error on standard error says it all; "no new messages"
        // would claim a look at the mailbox that never happened.
        String::new()
    } else if r.fetched == 0 {
        format!("{name}: no new messages")
    } else {
        format!(
            "{name}: {} fetched ({})",
            plural(r.fetched, "message"),
            HumanBytes(r.bytes)
        )
    };
    if r.deleted > 0 {
        head.push_str(&format!(", {} deleted from the server", r.deleted));
    }
    if r.too_big_total > 0 {
        head.push_str(&format!(
            ", {} over max_size left on the server",
            plural(r.too_big_total, "message")
        ));
    }
    if !head.is_empty() {
        lines.push(head);
    }
    for s in &r.too_big {
        lines.push(format!(
            "{name}: {} is {}, over max_size: left on the server (raise max_size to fetch it)",
            s.message,
            HumanBytes(s.size)
        ));
    }
    for note in &r.notes {
        lines.push(format!("{name}: {note}"));
    }
    lines
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// One line per problem on standard error, each naming the account.
fn print_errors(r: &Report) {
    let name = &r.account;
    let mut err = std::io::stderr().lock();
    for rejected in &r.rejected {
        let fate = if rejected.deleted {
            "deleted from the server (delete_rejected: true)"
        } else if rejected.deletable {
            "left on the server (set delete_rejected: true to delete such messages)"
        } else {
            "left on the server, tried again on the next run"
        };
        let _ = writeln!(
            err,
            "ownmail fetch: {name}: {}: delivery refused: {}; {fate}",
            rejected.message, rejected.reason
        );
    }
    if let Some(e) = &r.error {
        let when = if e.is_temporary() {
            "; will try again on the next run"
        } else {
            ""
        };
        let _ = writeln!(err, "ownmail fetch: {name}: {e}{when}");
    }
}

/// The whole run as JSON.
pub fn json(reports: &[Report]) -> serde_json::Value {
    let accounts: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            let status = if r.busy {
                "busy"
            } else {
                match r.outcome() {
                    Outcome::Ok => "ok",
                    Outcome::Temporary => "temporary_failure",
                    Outcome::Failed => "failed",
                }
            };
            serde_json::json!({
                "account": r.account,
                "status": status,
                "fetched": r.fetched,
                "bytes": r.bytes,
                "deleted": r.deleted,
                "too_big": r.too_big_total,
                "too_big_new": r.too_big.iter().map(|s| serde_json::json!({
                    "message": s.message, "size": s.size
                })).collect::<Vec<_>>(),
                "rejected": r.rejected.iter().map(|x| serde_json::json!({
                    "message": x.message, "reason": x.reason, "deleted": x.deleted
                })).collect::<Vec<_>>(),
                "notes": r.notes,
                "error": r.error.as_ref().map(|e| e.to_string()),
                "temporary": r.error.as_ref().map(FetchError::is_temporary),
            })
        })
        .collect();
    serde_json::json!({ "accounts": accounts })
}

/// A progress bar per account (hidden off a terminal); with `--idle`, a
/// summary per pass.
struct Bars {
    bar: ProgressBar,
    found: AtomicU64,
    done: AtomicU64,
    idle: bool,
    quiet: bool,
    json: bool,
}

impl Observer for Bars {
    fn found(&self, messages: u64, bytes: u64) {
        let found = self.found.fetch_add(messages, Ordering::Relaxed) + messages;
        self.bar.inc_length(bytes);
        self.bar.set_message(format!(
            "{}/{found} messages",
            self.done.load(Ordering::Relaxed)
        ));
    }

    fn fetched(&self, bytes: u64) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        self.bar.inc(bytes);
        self.bar.set_message(format!(
            "{done}/{} messages",
            self.found.load(Ordering::Relaxed)
        ));
    }

    fn pass_done(&self, report: &Report) {
        if !self.idle {
            return;
        }
        // A reader that has gone must not stop the fetching: what it
        // would have read is dropped.
        if self.json {
            let _ = out!("{}", json(std::slice::from_ref(report)));
        } else if !self.quiet || report.has_news() {
            self.bar.suspend(|| {
                for line in summary(report) {
                    let _ = out!("{line}");
                }
            });
        }
        print_errors(report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::{Rejected, Skipped};

    #[test]
    fn summaries_and_exit_codes() {
        let mut r = Report::new("isp");
        assert_eq!(summary(&r), vec!["isp: no new messages"]);
        assert!(!r.has_news());
        r.fetched = 2;
        r.bytes = 2048;
        r.deleted = 2;
        r.too_big_total = 1;
        r.too_big.push(Skipped {
            message: "message 3 (UIDL x)".into(),
            size: 60 << 20,
        });
        assert_eq!(
            summary(&r),
            vec![
                "isp: 2 messages fetched (2.00 KiB), 2 deleted from the server, 1 message over max_size left on the server",
                "isp: message 3 (UIDL x) is 60.00 MiB, over max_size: left on the server (raise max_size to fetch it)"
            ]
        );
        assert_eq!(exit_code(&[r]), 0);

        let busy = Report {
            busy: true,
            ..Report::new("work")
        };
        assert_eq!(exit_code(&[busy]), 0);
        let temporary = Report {
            error: Some(FetchError::Closed {
                server: "x:1".into(),
            }),
            ..Report::new("a")
        };
        let rejected = Report {
            rejected: vec![Rejected {
                message: "m".into(),
                reason: "r".into(),
                deleted: false,
                deletable: true,
            }],
            ..Report::new("b")
        };
        let failed = Report {
            error: Some(FetchError::NoUidl {
                server: "x:1".into(),
            }),
            ..Report::new("c")
        };
        assert_eq!(exit_code(std::slice::from_ref(&temporary)), 75);
        // A run that failed before fetching anything claims nothing.
        assert!(summary(&temporary).is_empty(), "{:?}", summary(&temporary));
        let mut partial = Report::new("p");
        partial.fetched = 2;
        partial.bytes = 10;
        partial.error = Some(FetchError::Closed {
            server: "x:1".into(),
        });
        assert_eq!(summary(&partial), vec!["p: 2 messages fetched (10 B)"]);
        assert_eq!(exit_code(&[temporary, rejected]), 1);
        assert_eq!(exit_code(&[failed]), 1);
    }
}
