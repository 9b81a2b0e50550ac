//! Statistics of the study tables: mean ± standard deviation over seeds, Welch's t-test (the
//! bold-facing rule of Kornblith et al. 2021's tables) and Spearman's rank correlation with its
//! p-value (Fig. 5a). p-values match `scipy.stats.ttest_ind(equal_var=False)` and
//! `scipy.stats.spearmanr`.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::{Error, Result};

/// Mean and sample standard deviation (`n − 1` denominator).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanSd {
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation; 0 for a single value.
    pub sd: f64,
    /// Number of values.
    pub n: usize,
}

impl std::fmt::Display for MeanSd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let precision = f.precision().unwrap_or(4);
        write!(f, "{:.*} ± {:.*}", precision, self.mean, precision, self.sd)
    }
}

/// Mean ± sd of `values`.
pub fn mean_sd(values: &[f64]) -> Result<MeanSd> {
    check_finite("mean ± sd", values, 1)?;
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let sd = if n > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    Ok(MeanSd { mean, sd, n })
}

/// A two-sided t-test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TTest {
    /// The t statistic (positive when the first sample's mean is larger).
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Welch's unequal-variance t-test of `a` against `b`.
pub fn welch_t_test(a: &[f64], b: &[f64]) -> Result<TTest> {
    check_finite("Welch's t-test", a, 2)?;
    check_finite("Welch's t-test", b, 2)?;
    let (sa, sb) = (mean_sd(a)?, mean_sd(b)?);
    let (va, vb) = (sa.sd.powi(2) / a.len() as f64, sb.sd.powi(2) / b.len() as f64);
    let se2 = va + vb;
    if se2 <= 0.0 {
        return Err(Error::degenerate("Welch's t-test", "both samples have zero variance"));
    }
    let t = (sa.mean - sb.mean) / se2.sqrt();
    let df = se2 * se2 / (va * va / (a.len() - 1) as f64 + vb * vb / (b.len() - 1) as f64);
    Ok(TTest {
        t,
        df,
        p: two_sided_p(t, df),
    })
}

/// Two-way ANOVA of two objectives across datasets (the paper's test for the average column of
/// Table 2): `a[d]` and `b[d]` are the seeds' values of each objective on dataset `d`, with the
/// same number `n` of seeds in every cell. The F-test of the objective factor with datasets as
/// the second factor: `F = SS_obj / (SS_err / df_err)` on `(1, df_err)`, where with `n ≥ 2` the
/// error is the within-cell spread (`df_err = 2D(n − 1)`) and with one seed the interaction
/// (`df_err = D − 1`, the additive model: a paired t-test over the datasets). Returns `t = √F`
/// (signed: positive when `a` is higher), the degrees of freedom and the two-sided p-value.
pub fn two_way_anova(a: &[Vec<f64>], b: &[Vec<f64>]) -> Result<TTest> {
    let d = a.len();
    let n = a.first().map_or(0, Vec::len);
    if d == 0 || b.len() != d || a.iter().chain(b).any(|cell| cell.len() != n) || n == 0 {
        return Err(Error::degenerate(
            "two-way ANOVA",
            "needs the same number of seeds for both objectives on every dataset",
        ));
    }
    for cell in a.iter().chain(b) {
        check_finite("two-way ANOVA", cell, 1)?;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let cell_a: Vec<f64> = a.iter().map(|c| mean(c)).collect();
    let cell_b: Vec<f64> = b.iter().map(|c| mean(c)).collect();
    let (mean_a, mean_b) = (mean(&cell_a), mean(&cell_b));
    let grand = (mean_a + mean_b) / 2.0;
    let (df, error) = if n >= 2 {
        let within: f64 = a
            .iter()
            .zip(&cell_a)
            .chain(b.iter().zip(&cell_b))
            .map(|(cell, m)| cell.iter().map(|y| (y - m).powi(2)).sum::<f64>())
            .sum();
        let df = (2 * d * (n - 1)) as f64;
        (df, within / df)
    } else {
        if d < 2 {
            return Err(Error::degenerate(
                "two-way ANOVA",
                "one seed on one dataset leaves no error to test against",
            ));
        }
        // Interaction of objective × dataset as the error (the additive model).
        let interaction: f64 = (0..d)
            .map(|j| {
                let dataset = (cell_a[j] + cell_b[j]) / 2.0;
                (cell_a[j] - mean_a - dataset + grand).powi(2) + (cell_b[j] - mean_b - dataset + grand).powi(2)
            })
            .sum();
        let df = (d - 1) as f64;
        (df, interaction / df)
    };
    let ss_objective = (d * n) as f64 * ((mean_a - grand).powi(2) + (mean_b - grand).powi(2));
    if error <= 0.0 {
        return Err(Error::degenerate("two-way ANOVA", "the error term is zero"));
    }
    let t = (ss_objective / error).sqrt() * (mean_a - mean_b).signum();
    Ok(TTest {
        t,
        df,
        p: two_sided_p(t, df),
    })
}

/// Spearman's rank correlation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spearman {
    /// ρ, Pearson's correlation of the (average-tie) ranks.
    pub rho: f64,
    /// Two-sided p-value from the t-distribution with `n − 2` degrees of freedom.
    pub p: f64,
    /// Number of pairs.
    pub n: usize,
}

/// Spearman's ρ between paired samples.
pub fn spearman(x: &[f64], y: &[f64]) -> Result<Spearman> {
    check_finite("Spearman's ρ", x, 3)?;
    check_finite("Spearman's ρ", y, 3)?;
    if x.len() != y.len() {
        return Err(Error::RowMismatch {
            what: "Spearman's ρ".into(),
            a: "x".into(),
            rows_a: x.len(),
            b: "y".into(),
            rows_b: y.len(),
        });
    }
    let (rx, ry) = (ranks(x), ranks(y));
    let n = x.len();
    let (mx, my) = (rx.iter().sum::<f64>() / n as f64, ry.iter().sum::<f64>() / n as f64);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return Err(Error::degenerate("Spearman's ρ", "one variable is constant"));
    }
    let rho = (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0);
    let df = (n - 2) as f64;
    let p = if rho.abs() >= 1.0 {
        0.0
    } else {
        two_sided_p(rho * (df / ((1.0 - rho) * (1.0 + rho))).sqrt(), df)
    };
    Ok(Spearman { rho, p, n })
}

/// Which groups tie with the best: the best mean, and every group whose Welch t-test against it
/// has `p ≥ alpha` (the tables' bold-facing rule). `higher_is_better` picks the direction.
pub fn ties_with_best(groups: &[Vec<f64>], higher_is_better: bool, alpha: f64) -> Result<Vec<bool>> {
    let means = groups
        .iter()
        .map(|g| mean_sd(g).map(|s| s.mean))
        .collect::<Result<Vec<_>>>()?;
    let best = (0..groups.len())
        .max_by(|&i, &j| {
            let (a, b) = if higher_is_better {
                (means[i], means[j])
            } else {
                (means[j], means[i])
            };
            a.total_cmp(&b)
        })
        .ok_or_else(|| Error::degenerate("bold-facing rule", "no groups"))?;
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            if i == best {
                return Ok(true);
            }
            match welch_t_test(&groups[best], g) {
                Ok(test) => Ok(test.p >= alpha),
                // Identical constant samples tie; distinct constants do not.
                Err(Error::Degenerate { .. }) => Ok(means[i] == means[best]),
                Err(e) => Err(e),
            }
        })
        .collect()
}

/// Ranks from 1, ties given their average rank.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let average = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = average;
        }
        i = j + 1;
    }
    ranks
}

fn two_sided_p(t: f64, df: f64) -> f64 {
    let dist = StudentsT::new(0.0, 1.0, df).expect("positive degrees of freedom");
    (2.0 * dist.cdf(-t.abs())).min(1.0)
}

fn check_finite(what: &'static str, values: &[f64], needed: usize) -> Result<()> {
    if values.len() < needed {
        return Err(Error::TooFewExamples {
            analysis: what,
            needed,
            found: values.len(),
        });
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(Error::degenerate(what, "a value is NaN or infinite"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_ranks_for_ties() {
        assert_eq!(ranks(&[10.0, 20.0, 20.0, 5.0]), vec![2.0, 3.5, 3.5, 1.0]);
    }

    #[test]
    fn bold_facing_keeps_the_best_and_its_ties() {
        let groups = vec![
            vec![0.70, 0.71, 0.72],
            vec![0.705, 0.715, 0.725],
            vec![0.50, 0.51, 0.52],
        ];
        assert_eq!(ties_with_best(&groups, true, 0.05).unwrap(), vec![true, true, false]);
        assert_eq!(ties_with_best(&groups, false, 0.05).unwrap(), vec![false, false, true]);
    }
}
