//! The statistics of the before/after judge, kept small and checked
//! against `scipy.stats` (fixtures in the tests below):
//!
//! - the Mann-Whitney U test, two-sided, normal approximation with the tie
//!   correction and the continuity correction (`mannwhitneyu(x, y,
//!   method="asymptotic")`), as Kayenta's canary judge uses it;
//! - the exact conditional test for two Poisson rates (incidents per week):
//!   given `k1 + k2` events, `k2` is binomial with `p = t2 / (t1 + t2)`
//!   under "same rate", two-sided as `scipy.stats.binomtest`.

/// The result of a Mann-Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of the first sample (scipy's `statistic`).
    pub u: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Mann-Whitney U of `x` against `y`; `None` when a sample is empty.
pub fn mann_whitney_u(x: &[f64], y: &[f64]) -> Option<MannWhitney> {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|v| (*v, true))
        .chain(y.iter().map(|v| (*v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len();
    // Average ranks over ties, and the tie term sum(t^3 - t).
    let mut rank_sum_x = 0.0;
    let mut ties = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_x += rank * all[i..=j].iter().filter(|v| v.1).count() as f64;
        ties += t * t * t - t;
        i = j + 1;
    }
    let (n1f, n2f, nf) = (n1 as f64, n2 as f64, n as f64);
    let u1 = rank_sum_x - n1f * (n1f + 1.0) / 2.0;
    let u2 = n1f * n2f - u1;
    let mu = n1f * n2f / 2.0;
    let sigma = (n1f * n2f / 12.0 * ((nf + 1.0) - ties / (nf * (nf - 1.0)))).sqrt();
    let p_value = if sigma > 0.0 {
        let z = (u1.max(u2) - mu - 0.5) / sigma;
        (2.0 * normal_sf(z)).min(1.0)
    } else {
        // Every value the same: no evidence of any difference.
        1.0
    };
    Some(MannWhitney { u: u1, p_value })
}

/// Two-sided p-value that `k2` events in time `t2` and `k1` in `t1` come
/// from the same rate (exact, conditional on `k1 + k2`).
pub fn poisson_rates_p_value(k1: u64, t1: f64, k2: u64, t2: f64) -> f64 {
    let n = k1 + k2;
    if n == 0 || t1 <= 0.0 || t2 <= 0.0 {
        return 1.0;
    }
    let p = t2 / (t1 + t2);
    let ln_pmf =
        |k: u64| -> f64 { ln_choose(n, k) + k as f64 * p.ln() + (n - k) as f64 * (1.0 - p).ln() };
    let observed = ln_pmf(k2);
    // As scipy's binomtest: the outcomes at most as likely as the
    // observed one, with a relative tolerance for rounding.
    let limit = observed + (1.0 + 1e-7f64).ln();
    let total: f64 = (0..=n)
        .map(ln_pmf)
        .filter(|l| *l <= limit)
        .map(f64::exp)
        .sum();
    total.min(1.0)
}

fn ln_choose(n: u64, k: u64) -> f64 {
    let k = k.min(n - k);
    (0..k)
        .map(|i| ((n - i) as f64).ln() - ((i + 1) as f64).ln())
        .sum()
}

/// The upper tail of the standard normal distribution, `P(Z > z)`.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function to about 1e-14 relative: a series of
/// positive terms below 3 (no cancellation), the continued fraction
/// above.
fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 3.0 {
        // erf(x) = 2/sqrt(pi) e^(-x^2) sum 2^n x^(2n+1) / (2n+1)!!
        let mut term = x;
        let mut sum = x;
        let mut k = 0.0;
        while term > sum * 1e-17 {
            k += 1.0;
            term *= 2.0 * x * x / (2.0 * k + 1.0);
            sum += term;
        }
        1.0 - 2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
    } else {
        // erfc(x) = e^(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
        let mut f = x;
        for k in (1..=80).rev() {
            f = x + (k as f64 / 2.0) / f;
        }
        (-x * x).exp() / std::f64::consts::PI.sqrt() / f
    }
}

/// Percentile `q` (0..=1) of sorted values, nearest rank.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    percentile_of_sorted(&[sorted], q)
}

/// Percentile `q` (0..=1, nearest rank) of the values of several sorted
/// lists taken together, without merging them: a service's checks'
/// samples pooled, at no second copy of weeks of durations.
pub fn percentile_of_sorted(lists: &[&[f64]], q: f64) -> Option<f64> {
    let n: usize = lists.iter().map(|l| l.len()).sum();
    if n == 0 {
        return None;
    }
    let rank = ((q * n as f64).ceil().max(1.0) as usize).min(n);
    // The answer is the smallest value with at least `rank` values at or
    // below it; it is in some list, where that count first reaches `rank`.
    let at_most = |v: f64| -> usize { lists.iter().map(|l| l.partition_point(|x| *x <= v)).sum() };
    lists
        .iter()
        .filter_map(|l| l.get(l.partition_point(|v| at_most(*v) < rank)))
        .copied()
        .min_by(f64::total_cmp)
}

pub fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1e-300)
    }

    /// `scipy.stats.mannwhitneyu(x, y, alternative="two-sided",
    /// method="asymptotic", use_continuity=True)`, scipy 1.17.1.
    #[test]
    fn mann_whitney_matches_scipy() {
        let cases: [(&[f64], &[f64], f64, f64); 4] = [
            (
                &[1., 2., 3., 4., 5., 6., 7., 8., 9., 10.],
                &[6., 7., 8., 9., 10., 11., 12., 13., 14., 15.],
                12.5,
                0.005075392315273923,
            ),
            (
                &[1., 1., 2., 2., 2., 3., 3., 4.],
                &[2., 3., 3., 4., 4., 4., 5., 5., 6.],
                10.0,
                0.012303628712335571,
            ),
            (
                &[
                    0.112, 0.131, 0.098, 0.145, 0.120, 0.101, 0.133, 0.127, 0.119, 0.140, 0.108,
                    0.115,
                ],
                &[
                    0.150, 0.121, 0.162, 0.171, 0.139, 0.158, 0.147, 0.166, 0.143, 0.155, 0.161,
                    0.149, 0.137,
                ],
                10.0,
                0.00024111599977501955,
            ),
            (
                &[5., 5., 5., 6., 6., 7.],
                &[5., 5., 6., 6., 7., 7.],
                14.0,
                0.5504668540589885,
            ),
        ];
        for (x, y, u, p) in cases {
            let r = mann_whitney_u(x, y).unwrap();
            assert_eq!(r.u, u, "{x:?}");
            assert!(close(r.p_value, p), "{x:?}: {} vs {p}", r.p_value);
        }
    }

    /// `scipy.stats.binomtest(k2, k1 + k2, t2 / (t1 + t2)).pvalue`.
    #[test]
    fn poisson_rate_test_matches_scipy_binomtest() {
        assert!(close(poisson_rates_p_value(2, 28.0, 9, 28.0), 0.0654296875));
        assert!(close(
            poisson_rates_p_value(3, 28.0, 3, 14.0),
            0.4074074074074074
        ));
        assert_eq!(poisson_rates_p_value(0, 28.0, 0, 28.0), 1.0);
    }

    #[test]
    fn the_percentile_of_sorted_lists_is_that_of_their_merge() {
        let lists: [&[f64]; 4] = [
            &[100.0, 100.0, 101.0, 130.0],
            &[],
            &[90.0, 100.0, 1_000.0, 1_000.0, 1_200.0],
            &[5.0],
        ];
        let mut merged: Vec<f64> = lists.iter().flat_map(|l| l.iter()).copied().collect();
        merged.sort_by(f64::total_cmp);
        for q in [0.0, 0.1, 0.25, 0.5, 0.6, 0.75, 0.9, 0.95, 0.99, 1.0] {
            // Nearest rank: the ceil(q × n)-th value, at least the first.
            let rank = ((q * merged.len() as f64).ceil() as usize).max(1);
            assert_eq!(
                percentile_of_sorted(&lists, q),
                Some(merged[rank - 1]),
                "q = {q}"
            );
        }
        // 10 values: the median is the 5th (100), p95 the 10th (1,200).
        assert_eq!(percentile_of_sorted(&lists, 0.5), Some(100.0));
        assert_eq!(percentile_of_sorted(&lists, 0.95), Some(1_200.0));
        assert_eq!(percentile_of_sorted(&[&[], &[]], 0.5), None);
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn normal_tail_is_accurate_far_out() {
        // scipy.stats.norm.sf
        assert!(close(normal_sf(0.0), 0.5));
        assert!(close(normal_sf(1.96), 0.024997895148220435));
        assert!(close(normal_sf(5.0), 2.866515718791933e-07));
        assert!(close(normal_sf(-1.0), 0.8413447460685429));
    }
}
