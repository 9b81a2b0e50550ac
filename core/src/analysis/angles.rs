//! Angles in the penultimate layer: angular visual hardness (Chen et al. 2020; the paper's Fig.
//! E.1) and the cosine distances between examples of the same and of different classes (Fig.
//! E.3).
//!
//! - The angular visual hardness of an example `x` of class `y`, with classifier rows `w_k`, is
//!   `AVH(x) = A(x, w_y) / Σ_k A(x, w_k)` with `A(u, v) = arccos(u·v / (‖u‖ ‖v‖))`: small when
//!   `x` points at its own class's weights and away from the others. Angles do not depend on
//!   the rows' norms, so the raw and the normalised rows of a cosine classifier agree.
//! - The cosine distance `1 − cos(x_i, x_j)` of every pair `i < j` of examples, counted
//!   separately for pairs of the same class and of different classes.
//!
//! Both are kept as [`Histogram`]s: AVH lies in [0, 1] and mostly near `1/K`, so its bins span
//! `[0, min(1, 4/K)]`; cosine distances lie in [0, 2]. Products run on the compute device in
//! chunks of rows; norms are the objectives' safe norm, so zero vectors give cosine 0.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::analysis::products::product_nt;
use crate::compute::Compute;
use crate::error::{Error, Result};
use crate::features::Layer;
use crate::objective::functional::normalize;

/// Bins of the histograms the study keeps.
pub const HISTOGRAM_BINS: usize = 400;

/// Counts of values in equal bins over `[lo, hi]`; values outside count in the first or last
/// bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Lower edge of the first bin.
    pub lo: f64,
    /// Upper edge of the last bin.
    pub hi: f64,
    /// Values per bin.
    pub counts: Vec<u64>,
    /// Number of values.
    pub count: u64,
    /// Their mean.
    pub mean: f64,
}

impl Histogram {
    /// An empty histogram of `bins` bins over `[lo, hi]`.
    pub fn new(lo: f64, hi: f64, bins: usize) -> Self {
        Self {
            lo,
            hi,
            counts: vec![0; bins.max(1)],
            count: 0,
            mean: 0.0,
        }
    }

    /// Counts `value`.
    pub fn add(&mut self, value: f64) {
        let bins = self.counts.len();
        let at = ((value - self.lo) / (self.hi - self.lo) * bins as f64).floor();
        let at = if at.is_nan() {
            0
        } else {
            (at.max(0.0) as usize).min(bins - 1)
        };
        self.counts[at] += 1;
        self.count += 1;
        self.mean += (value - self.mean) / self.count as f64;
    }

    /// Width of a bin.
    pub fn width(&self) -> f64 {
        (self.hi - self.lo) / self.counts.len() as f64
    }

    /// The density on `bins` equal bins over `[lo, hi]` (each of this histogram's bins spread
    /// evenly over its width), integrating to the share of values inside `[lo, hi]`.
    pub fn density_on(&self, lo: f64, hi: f64, bins: usize) -> Vec<f64> {
        let width = (hi - lo) / bins as f64;
        let own = self.width();
        let mut out = vec![0.0; bins];
        if self.count == 0 {
            return out;
        }
        for (i, &n) in self.counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            let (a, b) = (self.lo + i as f64 * own, self.lo + (i + 1) as f64 * own);
            for (j, value) in out.iter_mut().enumerate() {
                let (c, d) = (lo + j as f64 * width, lo + (j + 1) as f64 * width);
                let overlap = (b.min(d) - a.max(c)).max(0.0);
                *value += n as f64 * overlap / own;
            }
        }
        out.iter().map(|v| v / (self.count as f64 * width)).collect()
    }

    /// The range of the bins that hold values: `[lower edge of the first, upper edge of the
    /// last]`; `None` when empty.
    pub fn occupied(&self) -> Option<(f64, f64)> {
        let first = self.counts.iter().position(|&n| n > 0)?;
        let last = self.counts.iter().rposition(|&n| n > 0)?;
        Some((
            self.lo + first as f64 * self.width(),
            self.lo + (last + 1) as f64 * self.width(),
        ))
    }
}

/// Angular visual hardness of every example.
///
/// # Shapes
/// - `features`: `[N, P]`; `labels`: `N` classes below `K`; `weights`: `[K, P]`; returns `N`
///   values
///
/// # Errors
/// Mismatched widths or counts, or a label outside the weights' classes.
pub async fn angular_visual_hardness(
    compute: &Compute,
    features: &Layer,
    labels: &[usize],
    weights: &Layer,
) -> Result<Vec<f64>> {
    let classes = weights.rows;
    if features.cols != weights.cols {
        return Err(Error::WidthMismatch {
            a: format!("the features `{}`", features.name),
            cols_a: features.cols,
            b: "the classifier rows".into(),
            cols_b: weights.cols,
        });
    }
    check_labels(features, labels, "angular visual hardness")?;
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, l)| **l >= classes) {
        return Err(Error::LabelOutOfRange {
            label: label as i64,
            index,
            num_classes: classes,
        });
    }
    let w = normalize(compute.upload(weights), 1); // [K, P]
    let mut out = Vec::with_capacity(features.rows);
    for rows in compute.row_chunks(features.rows, features.cols.max(classes)) {
        let x = normalize(compute.upload_rows(features, rows.start, rows.end), 1); // [n, P]
        let cosines = compute.read(product_nt(compute, x, w.clone()).await?).await?; // [n, K]
        for (row, &label) in cosines.chunks(classes).zip(&labels[rows]) {
            let angles: Vec<f64> = row.iter().map(|c| c.clamp(-1.0, 1.0).acos()).collect();
            let total: f64 = angles.iter().sum();
            out.push(if total > 0.0 { angles[label] / total } else { 0.0 });
        }
    }
    Ok(out)
}

/// Histograms of the cosine distance `1 − cos(x_i, x_j)` over the pairs `i < j` of the same class
/// (`within`) and of different classes (`between`), with `bins` bins over [0, 2].
///
/// # Shapes
/// - `features`: `[N, P]`; `labels`: `N`
pub async fn cosine_distance_histograms(
    compute: &Compute,
    features: &Layer,
    labels: &[usize],
    bins: usize,
) -> Result<(Histogram, Histogram)> {
    check_labels(features, labels, "cosine distances between examples")?;
    let (mut within, mut between) = (Histogram::new(0.0, 2.0, bins), Histogram::new(0.0, 2.0, bins));
    let all: Tensor<2> = normalize(compute.upload(features), 1); // [N, P]
    for rows in compute.row_chunks(features.rows, features.rows.max(features.cols)) {
        let x = normalize(compute.upload_rows(features, rows.start, rows.end), 1);
        let cosines = compute.read(product_nt(compute, x, all.clone()).await?).await?; // [n, N]
        for (i, row) in rows.clone().zip(cosines.chunks(features.rows)) {
            for (j, &c) in row.iter().enumerate().skip(i + 1) {
                let distance = 1.0 - c.clamp(-1.0, 1.0);
                if labels[i] == labels[j] {
                    within.add(distance);
                } else {
                    between.add(distance);
                }
            }
        }
    }
    Ok((within, between))
}

/// One label per example.
fn check_labels(features: &Layer, labels: &[usize], what: &str) -> Result<()> {
    if features.rows != labels.len() {
        return Err(Error::RowMismatch {
            what: what.into(),
            a: format!("the features `{}`", features.name),
            rows_a: features.rows,
            b: "the labels".into(),
            rows_b: labels.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_count_clamp_and_rebin() {
        let mut h = Histogram::new(0.0, 2.0, 4);
        for v in [0.1, 0.6, 0.7, 1.9, 2.0, -0.3, f64::NAN] {
            h.add(v);
        }
        // 2.0 and above count in the last bin, below 0 (and NaN) in the first.
        assert_eq!(h.counts, [3, 2, 0, 2]);
        assert_eq!(h.count, 7);
        assert_eq!(h.occupied(), Some((0.0, 2.0)));
        // The same bins: counts / (count · width); half as wide: each bin's mass split evenly.
        let d = h.density_on(0.0, 2.0, 4);
        assert!((d[0] - 3.0 / (7.0 * 0.5)).abs() < 1e-12);
        let fine = h.density_on(0.0, 1.0, 4);
        assert!((fine[0] - d[0]).abs() < 1e-12 && (fine[3] - d[1]).abs() < 1e-12);
        let total: f64 = h.density_on(0.0, 2.0, 10).iter().map(|v| v * 0.2).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert_eq!(Histogram::new(0.0, 1.0, 3).occupied(), None);
    }
}
