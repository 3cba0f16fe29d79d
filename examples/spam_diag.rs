//! Diagnosis (not tuning): trains in memory on the training split, then
//! for each file named on stdin prints its Bayes probability and its
//! strongest clues with their counts.
use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;

use ownmail::spam::{chi, tokenize};

fn main() {
    let data = PathBuf::from(".cache/corpus/package/data");
    let mut counts: HashMap<u32, (u32, u32)> = HashMap::new();
    let (mut ns, mut nh) = (0u32, 0u32);
    for (dir, spam) in [("easy-ham-1", false), ("spam-1", true)] {
        for e in std::fs::read_dir(data.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "txt") {
                continue;
            }
            let a = tokenize::analyze(&std::fs::read(&p).unwrap());
            if spam {
                ns += 1
            } else {
                nh += 1
            }
            for t in a.tokens {
                let c = counts.entry(t).or_default();
                if spam { c.0 += 1 } else { c.1 += 1 }
            }
        }
    }
    let n: usize = std::env::var("CLUES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    for line in std::io::stdin().lock().lines() {
        let f = line.unwrap();
        let (a, names) = tokenize::analyze_named(&std::fs::read(&f).unwrap());
        let mut clues: Vec<(f64, u32, u32, &str)> = names
            .iter()
            .filter_map(|(h, s)| {
                let &(b, g) = counts.get(h)?;
                Some((chi::token_probability(b, g, ns, nh), b, g, s.as_str()))
            })
            .collect();
        let p = chi::classify(clues.iter().map(|c| c.0).collect()).0;
        clues.sort_by(|x, y| (y.0 - 0.5).abs().total_cmp(&(x.0 - 0.5).abs()));
        println!(
            "{f} p={p:.4} tokens={} known={}",
            a.tokens.len(),
            clues.len()
        );
        for c in clues.iter().take(n) {
            println!("   {:.3} s{} h{} {}", c.0, c.1, c.2, c.3);
        }
    }
}
