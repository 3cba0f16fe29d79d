//! Robinson-Fisher chi-square combining, as SpamBayes (`classifier.py`,
//! `chi2_spamprob`) and bogofilter (`robinson_fisher`) do it.
//!
//! Gary Robinson, "A Statistical Approach to the Spam Problem", Linux
//! Journal 107 (2003): each token's probability is smoothed towards 0.5 by
//! its evidence ([`token_probability`]); the strongest clues are combined
//! with Fisher's method, once for spamminess and once for hamminess
//! ([`combine`]). Pure arithmetic: no I/O, no allocation beyond the caller's.

/// Robinson's `s`: how much weight the prior `x` has, in messages.
/// SpamBayes uses 0.45; 1.0 did better on a temporal hold-out of the
/// training split (first 60% of easy-ham-1 + spam-1 trained, last 40%
/// measured: 32 of 200 spam unsure or missed instead of 43).
pub const STRENGTH: f64 = 1.0;
/// Robinson's `x`: the probability of a token never seen (SpamBayes 0.5).
pub const UNKNOWN: f64 = 0.5;
/// Tokens whose probability is closer to 0.5 than this are no clue
/// (SpamBayes' `minimum_prob_strength` is 0.1). 0.2 did better on
/// cross-validation of the training split (`examples/spam_cv.rs`, folds of
/// consecutive arrival plus the temporal hold-out): ham called spam 7 of
/// 2,500 -> 2, spam missed 82 of 700 -> 84; 0.15 and 0.25 were between or
/// worse. Many weak clues that all lean one way (a mailing list's
/// boilerplate in both classes) no longer add up to certainty.
pub const MIN_DEVIATION: f64 = 0.2;
/// At most this many clues are combined. SpamBayes takes 150, bogofilter
/// all; on the same hold-out 1000 beat 150 and 300 (long spam quoting
/// ham-like text is judged on all its evidence).
pub const MAX_CLUES: usize = 1000;

/// Robinson's f(w): the probability that a message containing the token is
/// spam, from the number of spam and ham messages it was seen in.
///
/// `p(w) = (b/nspam) / (b/nspam + g/nham)`, `f(w) = (s*x + n*p(w)) / (s + n)`
/// with `n = b + g`.
pub fn token_probability(spam: u32, ham: u32, nspam: u32, nham: u32) -> f64 {
    let n = f64::from(spam) + f64::from(ham);
    if n == 0.0 || nspam == 0 || nham == 0 {
        return UNKNOWN;
    }
    // A token cannot be in more messages than were trained (a forget may
    // have lowered the totals more than the counts): clamp the ratios.
    let b = (f64::from(spam) / f64::from(nspam)).min(1.0);
    let g = (f64::from(ham) / f64::from(nham)).min(1.0);
    let p = if b + g == 0.0 { UNKNOWN } else { b / (b + g) };
    (STRENGTH * UNKNOWN + n * p) / (STRENGTH + n)
}

/// The upper tail of the chi-square distribution, `Q(x2 | v)`, for an even
/// number of degrees of freedom `v` (the series SpamBayes' `chi2Q` uses).
pub fn chi2q(x2: f64, v: u32) -> f64 {
    debug_assert!(v.is_multiple_of(2));
    if !x2.is_finite() || x2 < 0.0 {
        return if x2.is_nan() || x2 > 0.0 { 0.0 } else { 1.0 };
    }
    let m = x2 / 2.0;
    let mut term = (-m).exp();
    let mut sum = term;
    for i in 1..v / 2 {
        term *= m / f64::from(i);
        sum += term;
    }
    sum.min(1.0)
}

/// Combines token probabilities into one spam probability in `[0, 1]`:
/// `S = 1 - Q(-2 sum ln(1 - f), 2n)`, `H = 1 - Q(-2 sum ln f, 2n)`,
/// `I = (1 + S - H) / 2`. No clues is 0.5 (no opinion).
pub fn combine(probabilities: &[f64]) -> f64 {
    if probabilities.is_empty() {
        return 0.5;
    }
    let (mut ln_ham, mut ln_spam) = (0.0f64, 0.0f64);
    for &f in probabilities {
        // ln(0) would be -inf: no token is ever certain.
        let f = f.clamp(1e-9, 1.0 - 1e-9);
        ln_ham += f.ln();
        ln_spam += (1.0 - f).ln();
    }
    let v = 2 * probabilities.len() as u32;
    let s = 1.0 - chi2q(-2.0 * ln_spam, v);
    let h = 1.0 - chi2q(-2.0 * ln_ham, v);
    if s > SATURATED && h > SATURATED {
        // Strong evidence both ways: both tails underflow and chi-square
        // says 0.5 whatever the balance. Robinson's geometric-mean method
        // (his first combining rule) still weighs one side against the
        // other: P = 1 - (prod (1-f))^(1/n), Q = 1 - (prod f)^(1/n),
        // S = (P - Q) / (P + Q), in [-1, 1].
        let n = probabilities.len() as f64;
        let p = 1.0 - (ln_spam / n).exp();
        let q = 1.0 - (ln_ham / n).exp();
        if p + q > 0.0 {
            return ((1.0 + (p - q) / (p + q)) / 2.0).clamp(0.0, 1.0);
        }
    }
    ((s - h + 1.0) / 2.0).clamp(0.0, 1.0)
}

/// Both chi-square tails this close to 1 carry no information on balance.
const SATURATED: f64 = 1.0 - 1e-12;

/// Picks the clues as SpamBayes does (each at least [`MIN_DEVIATION`] from
/// 0.5, the [`MAX_CLUES`] strongest) and combines them.
pub fn classify(mut probabilities: Vec<f64>) -> (f64, usize) {
    probabilities.retain(|f| (f - 0.5).abs() >= MIN_DEVIATION);
    if probabilities.len() > MAX_CLUES {
        probabilities.select_nth_unstable_by(MAX_CLUES - 1, |a, b| {
            (b - 0.5).abs().total_cmp(&(a - 0.5).abs())
        });
        probabilities.truncate(MAX_CLUES);
    }
    (combine(&probabilities), probabilities.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, eps: f64) -> bool {
        (a - b).abs() < eps
    }

    #[test]
    fn chi2q_matches_the_table() {
        // Critical values from the chi-square table: Q(x | v) = p.
        let cases = [
            (0.0, 2, 1.0),
            (4.605_170, 2, 0.10),
            (5.991_465, 2, 0.05),
            (9.210_340, 2, 0.01),
            (9.487_729, 4, 0.05),
            (13.276_704, 4, 0.01),
            (18.307_038, 10, 0.05),
            (31.410_433, 20, 0.05),
            (37.566_235, 20, 0.01),
            (124.342_113, 100, 0.05),
        ];
        for (x, v, p) in cases {
            assert!(
                close(chi2q(x, v), p, 1e-6),
                "Q({x} | {v}) = {}",
                chi2q(x, v)
            );
        }
        // Q(x | 4) = e^(-x/2) (1 + x/2), exactly.
        for x in [0.5, 3.0, 10.0, 50.0] {
            assert!(close(
                chi2q(x, 4),
                (-x / 2.0f64).exp() * (1.0 + x / 2.0),
                1e-12
            ));
        }
        assert_eq!(chi2q(f64::INFINITY, 4), 0.0);
        assert_eq!(chi2q(f64::NAN, 4), 0.0);
        assert_eq!(chi2q(1e6, 300), 0.0);
    }

    #[test]
    fn robinson_smoothing() {
        // Never seen: x.
        assert_eq!(token_probability(0, 0, 10, 10), 0.5);
        // Once in spam only: (1*0.5 + 1*1) / 2 = 0.75.
        assert!(close(token_probability(1, 0, 10, 10), 0.75, 1e-12));
        // Once in ham only: 0.5 / 2 = 0.25.
        assert!(close(token_probability(0, 1, 10, 10), 0.25, 1e-12));
        // Ratios, not counts: 5 of 10 spam, 50 of 100 ham is no clue.
        assert!(close(token_probability(5, 50, 10, 100), 0.5, 1e-12));
        // 10 of 100 spam vs 1 of 100 ham: p = 10/11, n = 11.
        let p = 10.0 / 11.0;
        assert!(close(
            token_probability(10, 1, 100, 100),
            (0.5 + 11.0 * p) / 12.0,
            1e-12
        ));
        // Counts above the totals (after a forget) stay in range.
        let f = token_probability(9, 0, 3, 3);
        assert!(f > 0.9 && f < 1.0);
        assert_eq!(token_probability(3, 3, 0, 5), 0.5);
    }

    #[test]
    fn combining_known_values() {
        assert_eq!(combine(&[]), 0.5);
        // One clue f: S = 1 - Q(-2 ln(1-f), 2) = 1 - (1-f) = f; H = 1 - f.
        // I = (1 + f - (1 - f)) / 2 = f.
        for f in [0.1, 0.3, 0.844_827, 0.99] {
            assert!(close(combine(&[f]), f, 1e-9), "{f}");
        }
        // Symmetric clues cancel.
        assert!(close(combine(&[0.9, 0.1]), 0.5, 1e-12));
        assert!(close(combine(&[0.99, 0.01, 0.7, 0.3]), 0.5, 1e-12));
        // Two clues of 0.9: S = 1 - Q(-2 ln 0.01, 4), H = 1 - Q(-2 ln 0.81, 4).
        let x_s = -2.0 * (0.01f64).ln();
        let x_h = -2.0 * (0.81f64).ln();
        let q = |x: f64| (-x / 2.0).exp() * (1.0 + x / 2.0);
        let want = ((1.0 - q(x_s)) - (1.0 - q(x_h)) + 1.0) / 2.0;
        assert!(close(combine(&[0.9, 0.9]), want, 1e-12));
        assert!(close(want, 0.962_316, 1e-6), "{want}");
        // Many strong clues saturate without NaN or leaving [0, 1].
        assert!(combine(&[0.999_999; 1000]) > 0.999_999);
        assert!(combine(&[0.000_001; 1000]) < 0.000_001);
        assert!(combine(&[0.0, 1.0]).is_finite());
        // Mixed strong evidence is unsure: near 0.5, not an extreme.
        let mixed: Vec<f64> = (0..100)
            .map(|i| if i % 2 == 0 { 0.99 } else { 0.01 })
            .collect();
        assert!(close(combine(&mixed), 0.5, 1e-9));
        // When both tails saturate, the geometric means weigh the balance:
        // 200 clues at 0.999 and 100 at 0.001 lean to spam, by Robinson's
        // P = 1 - (0.001^200 0.999^100)^(1/300), Q = 1 - (0.999^200 0.001^100)^(1/300).
        let mut lean: Vec<f64> = vec![0.999; 200];
        lean.extend([0.001; 100]);
        let p = 1.0 - ((200.0 * 0.001f64.ln() + 100.0 * 0.999f64.ln()) / 300.0).exp();
        let q = 1.0 - ((200.0 * 0.999f64.ln() + 100.0 * 0.001f64.ln()) / 300.0).exp();
        let want = (1.0 + (p - q) / (p + q)) / 2.0;
        assert!(
            close(combine(&lean), want, 1e-9),
            "{} vs {want}",
            combine(&lean)
        );
        assert!(want > 0.52 && want < 0.53, "{want}");
        let mut other: Vec<f64> = vec![0.001; 200];
        other.extend([0.999; 100]);
        assert!(close(combine(&other), 1.0 - want, 1e-9));
    }

    #[test]
    fn clue_selection() {
        let (p, n) = classify(vec![0.5, 0.55, 0.45, 0.6, 0.35, 0.69]);
        assert_eq!((p, n), (0.5, 0));
        let (_, n) = classify(vec![0.99; 1400]);
        assert_eq!(n, MAX_CLUES);
        // The strongest are kept: 500 hammy clues beat 900 weak spammy ones.
        let mut v = vec![0.75; 900];
        v.extend(vec![0.001; 500]);
        let (p, n) = classify(v);
        assert_eq!(n, MAX_CLUES);
        assert!(p < 0.01, "{p}");
    }
}
