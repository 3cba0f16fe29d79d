//! `ownmail convert-mbox`: resolve the destination and options, run the
//! converter, show progress on a terminal, print the summary.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{NotTheOwner, UsageError, known_user, load_config};
use crate::cli::{ConvertMboxArgs, GlobalArgs, MboxFormat};
use crate::convert::{self, Job, MAX_THREADS, Observer, Options, Problem, Summary};
use crate::error::sysexits;
use crate::message::mbox::Format;
use crate::store::MailboxName;

/// The exit code when some messages or files had problems.
const SOME_ERRORS: u8 = 1;

pub fn run(global: &GlobalArgs, args: ConvertMboxArgs) -> anyhow::Result<u8> {
    let json = args.json;
    let started = std::time::Instant::now();
    let mut done = Summary {
        dry_run: args.dry_run,
        ..Summary::default()
    };
    let (summary, maildir) = match convert(global, args, &mut done) {
        Ok(done) => done,
        Err(e) => {
            if json {
                // A script reading stdout gets its object whatever happened;
                // the error line still goes to stderr, with its exit code,
                // from `exit`.
                if done.seconds == 0.0 {
                    done.seconds = started.elapsed().as_secs_f64();
                }
                let report = Report {
                    summary: &done,
                    error: Some(super::one_line(&e)),
                };
                let mut out = super::stdout();
                if serde_json::to_writer(&mut out, &report).is_ok() {
                    let _ = writeln!(out);
                    let _ = out.flush();
                }
                if let Some(convert::ConvertError::Interrupted) = e.downcast_ref() {
                    say!("ownmail: {}", super::one_line(&e));
                    die_of_signal(SIGNAL.load(Ordering::SeqCst));
                }
            }
            return Err(e);
        }
    };
    let mut out = super::stdout();
    if json {
        let report = Report {
            summary: &summary,
            error: None,
        };
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", human(&summary, &maildir))?;
    }
    out.flush()?;
    Ok(if summary.errors > 0 {
        SOME_ERRORS
    } else {
        sysexits::OK
    })
}

/// The `--json` object: the summary, and the error that ended the run.
#[derive(serde::Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    summary: &'a Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The run: its summary and the Maildir, or the error that ended it with
/// what it had done by then in `done`.
fn convert(
    global: &GlobalArgs,
    args: ConvertMboxArgs,
    done: &mut Summary,
) -> anyhow::Result<(Summary, PathBuf)> {
    let prefix = match &args.folder {
        Some(f) => Some(MailboxName::new(f).map_err(|e| UsageError(format!("--folder: {e}")))?),
        None => None,
    };
    if let Some(n) = args.threads
        && !(1..=MAX_THREADS).contains(&n)
    {
        return Err(UsageError(format!("--threads must be 1 to {MAX_THREADS}, not {n}")).into());
    }
    let maildir = match (&args.user, &args.maildir) {
        (Some(name), _) => {
            let config = load_config(global)?;
            let user = known_user(&config, name)?;
            config.user_maildir(&user)
        }
        (None, Some(dir)) => std::path::absolute(dir)?,
        (None, None) => unreachable!("clap requires --user or --maildir"),
    };
    if !args.dry_run {
        refuse_root_into_others(&maildir)?;
    }
    let options = Options {
        format: match args.format {
            MboxFormat::Auto => None,
            MboxFormat::Mboxo => Some(Format::Mboxo),
            MboxFormat::Mboxrd => Some(Format::Mboxrd),
            MboxFormat::Mboxcl => Some(Format::Mboxcl),
            MboxFormat::Mboxcl2 => Some(Format::Mboxcl2),
        },
        prefix,
        dry_run: args.dry_run,
        keep_headers: args.keep_headers,
        strict: args.strict,
        threads: args.threads.unwrap_or(0),
        // With --json, an interrupt ends the run in order, so that the
        // object says what was done; without, it kills it, which is safe.
        interrupt: if args.json {
            catch_interrupts()?;
            Some(&INTERRUPTED)
        } else {
            None
        },
    };
    let display = Display::new(std::io::stderr().is_terminal(), global.quiet);
    let result = convert::convert(&args.sources, &maildir, &options, &display);
    display.clear();
    let summary = match result {
        Ok(summary) => summary,
        Err(failed) => {
            let convert::Failed {
                error,
                done: so_far,
            } = *failed;
            *done = so_far;
            return Err(error.into());
        }
    };
    Ok((summary, maildir))
}

/// Set by the SIGINT and SIGTERM handler (with --json).
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The signal that set [`INTERRUPTED`].
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    SIGNAL.store(signal, Ordering::SeqCst);
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT and SIGTERM set [`INTERRUPTED`] instead of killing the process;
/// a second one kills it (the handler resets itself).
fn catch_interrupts() -> std::io::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores
        // to atomics, which is async-signal-safe.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Ends the process by `signal`, as if it had not been caught: the exit
/// status a caller sees is the one an interrupt always gave.
fn die_of_signal(signal: libc::c_int) -> ! {
    // SAFETY: restoring the default action and raising a signal.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
    std::process::exit(128 + signal)
}

/// Root converting into a Maildir another user owns (the server's
/// `ownmail` user's, or a person's own ~/Maildir) would leave files that
/// only root can read (they are made 0600): refused, saying how to run it.
/// The owner is the Maildir's, or that of the nearest folder above it.
fn refuse_root_into_others(maildir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if !crate::store::durable::running_as_root() {
        return Ok(());
    }
    let Some(owner) = maildir
        .ancestors()
        .find_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.uid())
        .filter(|&uid| uid != 0)
    else {
        return Ok(());
    };
    let user = super::user_name(owner).unwrap_or_else(|| format!("#{owner}"));
    Err(NotTheOwner(format!(
        "running as root, but {} belongs to {user}: files made by root there would be \
         unreadable to {user}. Run it as {user}: `sudo -u {user} ownmail convert-mbox ...`; \
         an mbox only root can read can come in on standard input: \
         `sudo cat /var/mail/alice | sudo -u {user} ownmail convert-mbox - ...`",
        maildir.display()
    ))
    .into())
}

fn human(s: &Summary, maildir: &Path) -> String {
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{} {} ({:.1} MB) into {} of {} in {:.1} s ({:.0} MB/s); {} skipped (already there), {}",
        if s.dry_run {
            "would convert"
        } else {
            "converted"
        },
        plural(s.messages, "message", "messages"),
        s.bytes as f64 / 1e6,
        plural(s.folders, "folder", "folders"),
        maildir.display(),
        s.seconds,
        s.source_bytes as f64 / 1e6 / s.seconds.max(1e-3),
        s.skipped,
        plural(s.errors, "error", "errors"),
    )
}

/// Problems on standard error; progress bars too, on a terminal.
struct Display {
    bars: Option<Bars>,
    quiet: u8,
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    /// Per file: its bar and how far it had got.
    files: Mutex<HashMap<PathBuf, (ProgressBar, u64)>>,
    messages: std::sync::atomic::AtomicU64,
}

impl Display {
    fn new(terminal: bool, quiet: u8) -> Display {
        let bars = (terminal && quiet == 0).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
            // No total until the sources are planned (and none at all for
            // a pipe, whose size is known only at its end).
            let overall = multi.add(ProgressBar::no_length().with_style(style(UNSIZED)));
            overall.set_message("planning");
            overall.enable_steady_tick(Duration::from_millis(250));
            Bars {
                multi,
                overall,
                files: Mutex::new(HashMap::new()),
                messages: Default::default(),
            }
        });
        Display { bars, quiet }
    }

    fn clear(&self) {
        if let Some(b) = &self.bars {
            for (bar, _) in b.files.lock().unwrap_or_else(|e| e.into_inner()).values() {
                bar.finish_and_clear();
            }
            b.overall.finish_and_clear();
            let _ = b.multi.clear();
        }
    }
}

/// The overall bar, with and without a total to count down from.
const SIZED: &str = "{msg:>16} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}";
const UNSIZED: &str = "{msg:>16} {bytes} {bytes_per_sec}";

/// A bar's style from one of the templates here.
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("a valid template")
}

impl Observer for Display {
    fn planned(&self, jobs: &[Job]) {
        if let Some(b) = &self.bars {
            b.overall.set_message("0 messages");
            if jobs.iter().all(|j| j.size.is_some()) {
                b.overall
                    .set_length(jobs.iter().filter_map(|j| j.size).sum());
                b.overall.set_style(style(SIZED).progress_chars("=> "));
            }
        }
    }

    fn progress(&self, job: &Job, position: u64, messages: u64) {
        let Some(b) = &self.bars else { return };
        let mut files = b.files.lock().unwrap_or_else(|e| e.into_inner());
        let (bar, last) = files.entry(job.path.clone()).or_insert_with(|| {
            let bar = match job.size {
                Some(size) => ProgressBar::new(size).with_style(style(
                    "  {wide_msg} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )),
                None => ProgressBar::no_length()
                    .with_style(style("  {wide_msg} {bytes} {bytes_per_sec}")),
            };
            let bar = b.multi.insert_before(&b.overall, bar);
            (bar, 0)
        });
        bar.set_position(position);
        bar.set_message(format!("{} ({messages} messages)", job.path.display()));
        b.overall.inc(position.saturating_sub(*last));
        *last = position;
        let total = b
            .messages
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        b.overall.set_message(format!("{total} messages"));
    }

    fn finished(&self, job: &Job) {
        if let Some(b) = &self.bars {
            let mut files = b.files.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((bar, last)) = files.remove(&job.path) {
                // A file can end before its planned size (it shrank, or was
                // given up): count it as read all the same.
                b.overall.inc(job.size.unwrap_or(last).saturating_sub(last));
                bar.finish_and_clear();
            }
        }
    }

    fn problem(&self, problem: &Problem) {
        let shown = if problem.error {
            self.quiet < 2
        } else {
            self.quiet < 1
        };
        if !shown {
            return;
        }
        let line = format!(
            "ownmail: convert-mbox: {}: {problem}",
            if problem.error { "error" } else { "note" }
        );
        // A file name may hold anything: no escape sequence reaches the
        // terminal, and no line break makes a line of its own.
        let line: String = line
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        match &self.bars {
            Some(b) => b.multi.suspend(|| say!("{line}")),
            None => say!("{line}"),
        }
    }
}
