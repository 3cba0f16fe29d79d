//! Tuning `spamcheck` without looking at the measure split: cross-validation
//! inside the training split (easy-ham-1 + spam-1 of the SpamAssassin public
//! corpus). Each fold is classified by a database trained on the other
//! folds (the filter's own tokenizer, token probabilities and combining);
//! prints false positives and negatives of the final score (rules plus
//! Bayes bucket) with the rules file in effect, and of the Bayes
//! probability alone at a few cutoffs.
//!
//! `SPLIT` picks the folds:
//! - `block` (default): 5 folds of consecutive arrival (the corpus files
//!   are numbered in arrival order), so a fold is judged by a database
//!   that has not seen its weeks: drift shows, as the measure split has it;
//! - `kfold`: 5 interleaved folds (no drift);
//! - `time`: one hold-out, the older 60% of each class trains, the newest
//!   40% is classified.
//!
//! Then it learns the rule scores: a logistic regression over the rule
//! hits and the Bayes bucket of each out-of-fold message, itself
//! cross-validated (5 folds of those rows), and prints the figures of the
//! learnt scores at a few operating points and the rules-file lines of the
//! one chosen with `CUT` (a logit; default 2.0). `RULES=FILE` measures a
//! rules file (as `--rules` reads it) instead of the built-in one.
//!
//! Other knobs: `L2`, `HAM_WEIGHT`, `NONNEG=1` (rule weights at or above
//! zero), `FIXED=RULE,...` (rules kept at their score, not learnt) for the
//! regression; `CAP` (clamp each token's probability to [CAP, 1 - CAP]) and
//! `MINDEV` (a minimum clue strength above the filter's) for the
//! classifier; `DUMP=1` lists the messages the rules in effect get wrong.
//!
//!   cargo run --release --example spam_cv [DATA_DIR]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ownmail::spam::{chi, rules, tokenize};

const FOLDS: usize = 5;

struct Msg {
    spam: bool,
    /// Position in its class, in arrival order, as a fraction in [0, 1).
    at: f64,
    /// Interleaved index.
    i: usize,
    tokens: Vec<u32>,
    body_tokens: Vec<u32>,
    hits: Vec<&'static str>,
    path: PathBuf,
}

/// One classified message: class, rule hits, out-of-fold probability.
struct Row {
    spam: bool,
    hits: Vec<&'static str>,
    p: f64,
    /// The body tokens' probability.
    pb: f64,
    fold: usize,
    path: PathBuf,
    split: &'static str,
}

fn main() {
    let data = std::env::args().nth(1).map_or_else(
        || PathBuf::from(".cache/corpus/package/data"),
        PathBuf::from,
    );
    let table = match std::env::var("RULES") {
        Ok(f) => rules::Rules::load(Path::new(&f)).expect("rules file"),
        Err(_) => rules::Rules::default(),
    };
    let mut msgs = Vec::new();
    let t0 = std::time::Instant::now();
    for (dir, spam) in [("easy-ham-1", false), ("spam-1", true)] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(data.join(dir))
            .expect("corpus")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        files.sort();
        let n = files.len();
        for (i, f) in files.into_iter().enumerate() {
            let raw = std::fs::read(&f).expect("read");
            let a = tokenize::analyze(&raw);
            msgs.push(Msg {
                path: f.clone(),
                spam,
                at: i as f64 / n as f64,
                i,
                hits: rules::check(&a.facts),
                tokens: a.tokens,
                body_tokens: a.body_tokens,
            });
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let ntok: usize = msgs.iter().map(|m| m.tokens.len()).sum();
    println!(
        "{} messages tokenized in {secs:.2}s ({:.0}/s), {:.0} tokens each",
        msgs.len(),
        msgs.len() as f64 / secs,
        ntok as f64 / msgs.len() as f64
    );
    let split_names = std::env::var("SPLIT").unwrap_or_else(|_| "block".into());
    let splits: Vec<&'static str> = match split_names.as_str() {
        "both" => vec!["block", "time"],
        "time" => vec!["time"],
        "kfold" => vec!["kfold"],
        _ => vec!["block"],
    };
    let split = split_names.as_str();
    // Experiments on the token probabilities: clamp each to [CAP, 1 - CAP]
    // (a cap on one token's influence), drop those nearer 0.5 than MINDEV.
    let cap = env_f64("CAP", 0.0);
    let min_dev = env_f64("MINDEV", 0.0);
    let mut rows: Vec<Row> = Vec::new();
    for &split in &splits {
        // The fold a message is classified in (None: trained in every fold).
        let fold_of = |m: &Msg| -> Option<usize> {
            match split {
                "time" => (m.at >= 0.6).then_some(0),
                "kfold" => Some(m.i % FOLDS),
                _ => Some((m.at * FOLDS as f64) as usize),
            }
        };
        let folds = if split == "time" { 1 } else { FOLDS };
        for fold in 0..folds {
            let mut counts: HashMap<u32, (u32, u32)> = HashMap::new();
            let (mut nspam, mut nham) = (0u32, 0u32);
            for m in msgs.iter().filter(|m| fold_of(m) != Some(fold)) {
                if m.spam {
                    nspam += 1;
                } else {
                    nham += 1;
                }
                for t in &m.tokens {
                    let c = counts.entry(*t).or_default();
                    if m.spam {
                        c.0 += 1;
                    } else {
                        c.1 += 1;
                    }
                }
            }
            for m in msgs.iter().filter(|m| fold_of(m) == Some(fold)) {
                let fb: Vec<f64> = m
                    .body_tokens
                    .iter()
                    .filter_map(|t| counts.get(t))
                    .map(|&(b, g)| chi::token_probability(b, g, nspam, nham))
                    .filter(|f| (f - 0.5).abs() >= min_dev)
                    .collect();
                let fs: Vec<f64> = m
                    .tokens
                    .iter()
                    .filter_map(|t| counts.get(t))
                    .map(|&(b, g)| chi::token_probability(b, g, nspam, nham))
                    .map(|f| f.clamp(cap, 1.0 - cap))
                    .filter(|f| (f - 0.5).abs() >= min_dev)
                    .collect();
                rows.push(Row {
                    spam: m.spam,
                    hits: m.hits.clone(),
                    p: chi::classify(fs).0,
                    pb: chi::classify(fb).0,
                    fold: m.i % FOLDS,
                    split,
                    path: m.path.clone(),
                });
            }
        }
    }
    let nspam = rows.iter().filter(|r| r.spam).count();
    let nham = rows.len() - nspam;
    println!("{nham} ham, {nspam} spam classified, SPLIT={split}");

    // Rule hit counts.
    let mut line = String::from("rule hits (ham/spam):");
    for r in table.iter().filter(|r| !r.name.starts_with("BAYES_")) {
        let h = rows
            .iter()
            .filter(|x| !x.spam && x.hits.contains(&r.name.as_str()))
            .count();
        let s = rows
            .iter()
            .filter(|x| x.spam && x.hits.contains(&r.name.as_str()))
            .count();
        line.push_str(&format!(" {}:{h}/{s}", r.name));
    }
    println!("{line}");
    let mut line = String::from("bucket counts (ham/spam):");
    for (_, b) in rules::BAYES_BUCKETS {
        let h = rows.iter().filter(|x| !x.spam && bucket(x.p) == *b).count();
        let s = rows.iter().filter(|x| x.spam && bucket(x.p) == *b).count();
        line.push_str(&format!(" {b}:{h}/{s}"));
    }
    println!("{line}");

    report("rules in effect", &rows, nham, nspam, |r| score(&table, r));
    if std::env::var("DUMP").is_ok() {
        for r in &rows {
            let s = score(&table, r);
            if r.spam != (s >= 5.0) {
                println!(
                    "  miss {} p={:.4} score={s} {:?}",
                    r.path.display(),
                    r.p,
                    r.hits
                );
            }
        }
    }
    let mut line = String::from("Bayes alone, cutoffs (FP/FN):");
    for cut in [0.5, 0.8, 0.9, 0.95, 0.99, 0.999] {
        let fp = rows.iter().filter(|r| !r.spam && r.p >= cut).count();
        let fn_ = rows.iter().filter(|r| r.spam && r.p < cut).count();
        line.push_str(&format!(" {cut}:{fp}/{fn_}"));
    }
    println!("{line}");
    let mut line = String::from("Body Bayes alone, cutoffs (FP/FN):");
    for cut in [0.5, 0.8, 0.9, 0.95, 0.99, 0.999] {
        let fp = rows.iter().filter(|r| !r.spam && r.pb >= cut).count();
        let fn_ = rows.iter().filter(|r| r.spam && r.pb < cut).count();
        line.push_str(&format!(" {cut}:{fp}/{fn_}"));
    }
    println!("{line}");
    report("rules in effect without BAYES_BODY_99", &rows, 0, 0, |r| {
        score(&table, r)
            - if r.pb >= rules::BAYES_BODY_CUTOFF {
                table.score("BAYES_BODY_99")
            } else {
                0.0
            }
    });

    // Learnt scores: features are the rule names and the buckets.
    let fixed: Vec<String> = std::env::var("FIXED")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let names: Vec<String> = table
        .iter()
        .map(|r| r.name.clone())
        .filter(|n| !fixed.contains(n))
        .collect();
    let offset: Vec<f64> = rows
        .iter()
        .map(|r| {
            r.hits
                .iter()
                .filter(|h| fixed.iter().any(|f| f == *h))
                .map(|h| table.score(h))
                .sum()
        })
        .collect();
    let x: Vec<Vec<usize>> = rows
        .iter()
        .map(|r| {
            let b = bucket(r.p);
            names
                .iter()
                .enumerate()
                .filter(|(_, n)| {
                    r.hits.contains(&n.as_str())
                        || n.as_str() == b
                        || (n.as_str() == "BAYES_BODY_99" && r.pb >= rules::BAYES_BODY_CUTOFF)
                })
                .map(|(i, _)| i)
                .collect()
        })
        .collect();
    let y: Vec<bool> = rows.iter().map(|r| r.spam).collect();
    let l2: f64 = env_f64("L2", 1.0);
    let ham_weight: f64 = env_f64("HAM_WEIGHT", 1.0);
    let nonneg = std::env::var("NONNEG").is_ok_and(|v| v == "1");
    let opts = Opts {
        l2,
        ham_weight,
        nonneg,
    };
    // Nested: learn on 4 folds of the rows, score the fifth.
    let mut logit = vec![0.0; rows.len()];
    for f in 0..FOLDS {
        let train: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].fold != f).collect();
        let w = fit(&names, &x, &y, &offset, &train, opts);
        for i in (0..rows.len()).filter(|&i| rows[i].fold == f) {
            logit[i] = offset[i] + x[i].iter().map(|&j| w[j]).sum::<f64>();
        }
    }
    for split in &splits {
        let mut line = format!(
            "learnt (L2={l2} HAM_WEIGHT={ham_weight} NONNEG={nonneg} FIXED={fixed:?}), nested CV, {split}, logit cut (FP/FN):"
        );
        for cut in [-1.0, 0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0] {
            let of = |spam: bool| {
                (0..rows.len())
                    .filter(|&i| rows[i].split == *split && y[i] == spam)
                    .filter(|&i| (logit[i] >= cut) != spam)
                    .count()
            };
            line.push_str(&format!(" {cut}:{}/{}", of(false), of(true)));
        }
        println!("{line}");
    }
    // The rules-file lines: score = weight for a rule, and for a bucket
    // (exactly one hits) weight - CUT + required, so the sum reaches the
    // required 5.0 where the logit reaches CUT.
    let all: Vec<usize> = (0..rows.len()).collect();
    let w = fit(&names, &x, &y, &offset, &all, opts);
    let cut = env_f64("CUT", 2.0);
    let mut text = String::new();
    for (n, w) in names.iter().zip(&w) {
        let s = if n.starts_with("BAYES_") && n != "BAYES_BODY_99" {
            w - cut + 5.0
        } else {
            *w
        };
        text.push_str(&format!("{n:<16} {s:5.1}\n"));
    }
    println!("learnt rules file at CUT={cut}:\n{text}");
    let learnt = rules::Rules::default()
        .with_overrides(&text, Path::new("<learnt>"))
        .expect("learnt rules parse");
    report("learnt file (in-sample)", &rows, nham, nspam, |r| {
        score(&learnt, r)
    });
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bucket(p: f64) -> &'static str {
    rules::BAYES_BUCKETS
        .iter()
        .find(|(lo, _)| p >= *lo)
        .map_or("BAYES_00", |b| b.1)
}

/// The score the filter gives: the sum of the hits' scores and the
/// bucket's, rounded to a tenth.
fn score(table: &rules::Rules, r: &Row) -> f64 {
    let body = (r.pb >= rules::BAYES_BODY_CUTOFF).then_some("BAYES_BODY_99");
    let s: f64 = r
        .hits
        .iter()
        .copied()
        .chain([bucket(r.p)])
        .chain(body)
        .filter_map(|n| table.get(n).map(|r| r.score))
        .sum();
    (s * 10.0).round() / 10.0
}

fn report(what: &str, rows: &[Row], _nham: usize, _nspam: usize, score: impl Fn(&Row) -> f64) {
    let mut line = format!("{what}: score>=5");
    for split in ["block", "time", "kfold"] {
        let these: Vec<&Row> = rows.iter().filter(|r| r.split == split).collect();
        if these.is_empty() {
            continue;
        }
        let nspam = these.iter().filter(|r| r.spam).count();
        let nham = these.len() - nspam;
        let fp = these.iter().filter(|r| !r.spam && score(r) >= 5.0).count();
        let fn_ = these.iter().filter(|r| r.spam && score(r) < 5.0).count();
        line.push_str(&format!(
            " | {split}: FP {fp} ({:.2}%) FN {fn_} ({:.2}%)",
            100.0 * fp as f64 / nham as f64,
            100.0 * fn_ as f64 / nspam as f64
        ));
    }
    println!("{line}");
}

/// How [`fit`] learns: the L2 penalty, the weight of a ham against a spam,
/// rule weights kept at or above zero.
#[derive(Clone, Copy)]
struct Opts {
    l2: f64,
    ham_weight: f64,
    nonneg: bool,
}

/// L2-regularized logistic regression by gradient descent over sparse
/// binary features (the buckets are not regularized: one always hits and
/// they carry the intercept). With `nonneg`, rule weights stay at or above
/// zero (a rule is evidence of spam, never of ham).
fn fit(
    names: &[String],
    x: &[Vec<usize>],
    y: &[bool],
    offset: &[f64],
    rows: &[usize],
    opts: Opts,
) -> Vec<f64> {
    let Opts {
        l2,
        ham_weight,
        nonneg,
    } = opts;
    let mut w = vec![0.0; names.len()];
    for _ in 0..400 {
        let mut g = vec![0.0; w.len()];
        let mut h = vec![1e-6; w.len()];
        for &i in rows {
            let z: f64 = offset[i] + x[i].iter().map(|&j| w[j]).sum::<f64>();
            let p = 1.0 / (1.0 + (-z).exp());
            let (t, cw) = if y[i] { (1.0, 1.0) } else { (0.0, ham_weight) };
            for &j in &x[i] {
                g[j] += cw * (p - t);
                h[j] += cw * p * (1.0 - p);
            }
        }
        for j in 0..w.len() {
            let bucket = names[j].starts_with("BAYES_") && names[j] != "BAYES_BODY_99";
            let reg = if bucket { 0.0 } else { l2 };
            let step = (g[j] + reg * w[j]) / (h[j] + reg + 0.25);
            w[j] = (w[j] - 0.5 * step).clamp(-10.0, 10.0);
            if nonneg && !bucket && w[j] < 0.0 {
                w[j] = 0.0;
            }
        }
    }
    w
}
