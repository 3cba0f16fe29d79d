//! Tuning `spamcheck` without looking at the measure split: k-fold
//! cross-validation inside the training split (easy-ham-1 + spam-1 of the
//! SpamAssassin public corpus). Each fold is classified by a database
//! trained on the other folds; prints false positives and negatives of the
//! final score (rules plus Bayes bucket) for a few Robinson parameters.
//!
//! With `SPLIT=time`, one temporal hold-out instead: the first 60% of each
//! class (the corpus files are numbered in arrival order) trains, the last
//! 40% is classified, which shows drift as the measure split has it.
//!
//!   cargo run --release --example spam_cv [DATA_DIR]

use std::collections::HashMap;
use std::path::PathBuf;

use ownmail::spam::{chi, rules, tokenize};

const FOLDS: usize = 5;

struct Msg {
    /// Trained in every fold (temporal split: the older 60%).
    old: bool,
    spam: bool,
    tokens: Vec<u32>,
    rules: f64,
}

fn main() {
    let data = std::env::args().nth(1).map_or_else(
        || PathBuf::from(".cache/corpus/package/data"),
        PathBuf::from,
    );
    let table = rules::Rules::default();
    let mut msgs = Vec::new();
    let t0 = std::time::Instant::now();
    for (dir, spam) in [("easy-ham-1", false), ("spam-1", true)] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(data.join(dir))
            .expect("corpus")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        files.sort();
        let cut = files.len() * 6 / 10;
        for (i, f) in files.into_iter().enumerate() {
            let raw = std::fs::read(&f).expect("read");
            let a = tokenize::analyze(&raw);
            let rules: f64 = rules::check(&a.facts)
                .into_iter()
                .filter_map(|n| table.get(n).map(|r| r.score))
                .sum();
            msgs.push(Msg {
                old: i < cut,
                spam,
                tokens: a.tokens,
                rules,
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
    let temporal = std::env::var("SPLIT").is_ok_and(|s| s == "time");
    let folds = if temporal { 1 } else { FOLDS };
    let test = |i: usize, m: &Msg, fold: usize| {
        if temporal { !m.old } else { i % FOLDS == fold }
    };
    let params: Vec<(f64, usize)> = vec![(0.45, 150), (0.45, 1000), (1.0, 150), (1.0, 1000)];
    // (spam?, rules score, probability per parameter set)
    let mut results: Vec<(bool, f64, Vec<f64>)> = Vec::new();
    for fold in 0..folds {
        let mut counts: HashMap<u32, (u32, u32)> = HashMap::new();
        let (mut nspam, mut nham) = (0u32, 0u32);
        for (i, m) in msgs.iter().enumerate() {
            if test(i, m, fold) {
                continue;
            }
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
        for (i, m) in msgs.iter().enumerate() {
            if !test(i, m, fold) {
                continue;
            }
            let probs = params
                .iter()
                .map(|&(s, clues)| {
                    let mut fs: Vec<f64> = m
                        .tokens
                        .iter()
                        .filter_map(|t| counts.get(t))
                        .map(|&(b, g)| prob(b, g, nspam, nham, s))
                        .filter(|f| (f - 0.5).abs() >= chi::MIN_DEVIATION)
                        .collect();
                    if fs.len() > clues {
                        fs.select_nth_unstable_by(clues - 1, |a, b| {
                            (b - 0.5).abs().total_cmp(&(a - 0.5).abs())
                        });
                        fs.truncate(clues);
                    }
                    chi::combine(&fs)
                })
                .collect();
            results.push((m.spam, m.rules, probs));
        }
    }
    let nspam = results.iter().filter(|r| r.0).count();
    let nham = results.len() - nspam;
    println!(
        "{nham} ham, {nspam} spam classified, {}",
        if temporal {
            "older 60% trained".to_owned()
        } else {
            format!("{FOLDS}-fold")
        }
    );
    for (k, (s, clues)) in params.iter().enumerate() {
        let score = |r: &(bool, f64, Vec<f64>)| {
            let p = r.2[k];
            let bucket = rules::BAYES_BUCKETS
                .iter()
                .find(|(lo, _)| p >= *lo)
                .map_or("BAYES_00", |b| b.1);
            r.1 + table.get(bucket).map_or(0.0, |r| r.score)
        };
        let fp = results.iter().filter(|r| !r.0 && score(r) >= 5.0).count();
        let fn_ = results.iter().filter(|r| r.0 && score(r) < 5.0).count();
        let mut line = format!(
            "s={s} clues={clues}: score>=5 FP {fp} ({:.2}%) FN {fn_} ({:.2}%) | prob cutoffs",
            100.0 * fp as f64 / nham as f64,
            100.0 * fn_ as f64 / nspam as f64
        );
        for cut in [0.5, 0.8, 0.9, 0.95, 0.99, 0.999] {
            let fp = results.iter().filter(|r| !r.0 && r.2[k] >= cut).count();
            let fn_ = results.iter().filter(|r| r.0 && r.2[k] < cut).count();
            line.push_str(&format!(" {cut}:{fp}/{fn_}"));
        }
        println!("{line}");
    }
}

fn prob(spam: u32, ham: u32, nspam: u32, nham: u32, s: f64) -> f64 {
    let n = f64::from(spam + ham);
    let b = f64::from(spam) / f64::from(nspam);
    let g = f64::from(ham) / f64::from(nham);
    let p = b / (b + g);
    (s * chi::UNKNOWN + n * p) / (s + n)
}
