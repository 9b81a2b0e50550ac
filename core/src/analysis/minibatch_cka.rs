//! Minibatch linear CKA between every layer of one network and every layer of another.
//!
//! Nguyen, Raghu & Kornblith, "Do Wide and Deep Networks Learn the Same Things?", ICLR 2021,
//! eq. 3: the unbiased HSIC of Song et al. 2007 is averaged over minibatches,
//!
//! `CKA_mb(A, B) = mean_i HSIC₁(K_i, L_i) / sqrt(mean_i HSIC₁(K_i, K_i) · mean_i HSIC₁(L_i, L_i))`,
//!
//! `HSIC₁(K, L) = [tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1/((m−1)(m−2)) − 2/(m−2)·1ᵀK̃L̃1] / (m(m−3))`, with `K̃` the
//! linear Gram matrix of a minibatch of `m` examples with its diagonal zeroed (computed from
//! features centered within the batch, which leaves HSIC₁ unchanged). Memory is bounded
//! by the minibatch: per batch, each layer's `m × m` Gram matrix, never `N × N`.
//!
//! The `N` examples are split into `⌈N/m⌉` consecutive batches whose sizes differ by at most one
//! (larger first), so every example is used; an optional seeded shuffle first permutes them
//! (advisable when the file is sorted by class).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::analysis::cka::{center_columns, off_diagonal_mask, unit_scales};
use crate::analysis::products::{self, BatchGrams};
use crate::compute::Compute;
use crate::error::{Error, Result};
use crate::features::Layer;
use crate::rng::SplitMix64;

/// Settings of [`minibatch_cka`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinibatchCkaConfig {
    /// Examples per minibatch, at least 4. Default 1500 (as Nguyen et al.).
    pub batch_size: usize,
    /// Seed of a shuffle of the examples before batching; `None` keeps file order. Default `None`.
    pub shuffle_seed: Option<u64>,
}

impl Default for MinibatchCkaConfig {
    fn default() -> Self {
        Self {
            batch_size: 1500,
            shuffle_seed: None,
        }
    }
}

impl MinibatchCkaConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size < 4 {
            return Err(Error::InvalidSetting {
                name: "batch_size",
                value: self.batch_size.to_string(),
                allowed: "at least 4 (the unbiased HSIC divides by m − 3)".into(),
            });
        }
        Ok(())
    }
}

/// A layer × layer CKA matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CkaMatrix {
    /// Layers of the first network (rows).
    pub rows: Vec<String>,
    /// Layers of the second network (columns).
    pub cols: Vec<String>,
    /// `values[i][j]` = CKA between `rows[i]` and `cols[j]`.
    pub values: Vec<Vec<f64>>,
    /// Number of minibatches.
    pub batches: usize,
    /// Largest minibatch size.
    pub batch_size: usize,
    /// Examples used.
    pub n: usize,
}

/// Minibatch CKA between every layer in `a` and every layer in `b` (all over the same examples).
///
/// # Shapes
/// - each layer of `a` and `b`: `[N, p_l]` with the same `N`
pub async fn minibatch_cka(
    compute: &Compute,
    a: &[Layer],
    b: &[Layer],
    config: &MinibatchCkaConfig,
) -> Result<CkaMatrix> {
    config.validate()?;
    let (Some(first), true) = (a.first().or(b.first()), !a.is_empty() && !b.is_empty()) else {
        return Err(Error::InvalidSetting {
            name: "layers",
            value: format!("{} and {}", a.len(), b.len()),
            allowed: "at least one layer on each side".into(),
        });
    };
    let n = first.rows;
    if let Some(bad) = a.iter().chain(b).find(|l| l.rows != n) {
        return Err(Error::RowMismatch {
            what: "minibatch CKA".into(),
            a: first.origin.clone(),
            rows_a: n,
            b: bad.origin.clone(),
            rows_b: bad.rows,
        });
    }
    if n < 4 {
        return Err(Error::TooFewExamples {
            analysis: "minibatch CKA",
            needed: 4,
            found: n,
        });
    }
    // Computed on each layer scaled to a largest activation of 1 (CKA does not change), so no
    // sum of fourth powers overflows; constant layers are refused.
    let mut scale_a = unit_scales(compute, &a.iter().chain(b).collect::<Vec<_>>())?;
    let scale_b = scale_a.split_off(a.len());
    let order: Option<Vec<usize>> = config.shuffle_seed.map(|seed| permutation(n, seed));
    let sizes = batch_sizes(n, config.batch_size);
    let batches = sizes.len();

    let (la, lb) = (a.len(), b.len());
    let mut sum_ab = vec![0.0f64; la * lb];
    let mut sum_aa = vec![0.0f64; la];
    let mut sum_bb = vec![0.0f64; lb];
    let mut start = 0;
    for &m in &sizes {
        let end = start + m;
        let batch = |(layer, &scale): (&Layer, &f64)| match &order {
            Some(order) => compute.upload_rows_scaled(&layer.select_rows(&order[start..end]), 0, m, scale),
            None => compute.upload_rows_scaled(layer, start, end, scale),
        };
        let (hsic, self_a, self_b) = if compute.is_cpu() {
            let rows: Vec<usize> = match &order {
                Some(order) => order[start..end].to_vec(),
                None => (start..end).collect(),
            };
            let ga = products::batch_grams(compute.precision, a, &scale_a, &rows)?;
            let gb = products::batch_grams(compute.precision, b, &scale_b, &rows)?;
            (
                Hsic1Terms::host(&ga, Some(&gb), m),
                Hsic1Terms::host(&ga, None, m),
                Hsic1Terms::host(&gb, None, m),
            )
        } else {
            let mask = off_diagonal_mask(compute, m);
            let (ga, sa) = stack_grams(compute, a.iter().zip(&scale_a).map(batch), &mask).await?;
            let (gb, sb) = stack_grams(compute, b.iter().zip(&scale_b).map(batch), &mask).await?;
            (
                Hsic1Terms::pairs(compute, &ga, &sa, &gb, &sb).await?,
                Hsic1Terms::diagonal(compute, &ga, &sa).await?,
                Hsic1Terms::diagonal(compute, &gb, &sb).await?,
            )
        };
        for (acc, value) in sum_ab.iter_mut().zip(hsic.finish(m)) {
            *acc += value;
        }
        for (acc, value) in sum_aa.iter_mut().zip(self_a.finish(m)) {
            *acc += value;
        }
        for (acc, value) in sum_bb.iter_mut().zip(self_b.finish(m)) {
            *acc += value;
        }
        start = end;
    }
    for (layers, sums) in [(a, &sum_aa), (b, &sum_bb)] {
        if let Some(i) = sums.iter().position(|&s| s.is_nan() || s <= 0.0) {
            return Err(Error::degenerate(
                &layers[i].origin,
                "the layer has no variance within minibatches (its unbiased HSIC is not positive), so CKA is undefined",
            ));
        }
    }
    let values = (0..la)
        .map(|i| {
            (0..lb)
                .map(|j| sum_ab[i * lb + j] / (sum_aa[i] * sum_bb[j]).sqrt())
                .collect()
        })
        .collect();
    Ok(CkaMatrix {
        rows: a.iter().map(|l| l.name.clone()).collect(),
        cols: b.iter().map(|l| l.name.clone()).collect(),
        values,
        batches,
        batch_size: sizes[0],
        n,
    })
}

/// The sizes of the minibatches `n` examples are split into: `⌈n/m⌉` batches whose sizes differ
/// by at most one, larger first.
pub(crate) fn batch_sizes(n: usize, m: usize) -> Vec<usize> {
    let batches = n.div_ceil(m.max(1));
    (0..batches)
        .map(|i| n / batches + usize::from(i < n % batches))
        .collect()
}

/// One layer's zero-diagonal Gram matrix `K̃` of a minibatch (flattened) and its row sums.
///
/// # Shapes
/// - `x`: `[m, p]`; `mask`: `[m, m]` ([`off_diagonal_mask`])
/// - returns `([1, m²], [1, m])`
pub(crate) async fn zero_diagonal_gram(
    compute: &Compute,
    x: Tensor<2>,
    mask: &Tensor<2>,
) -> Result<(Tensor<2>, Tensor<2>)> {
    let m = x.dims()[0];
    // HSIC₁ is invariant to translating the features; centering them first removes the large
    // constant part of the Gram matrix, which would otherwise cancel in f32.
    let x = center_columns(x);
    let k = products::rows_gram(compute, x).await? * mask.clone(); // [m, m], K̃
    let s = k.clone().sum_dim(0); // [1, m], 1ᵀK̃ (= (K̃1)ᵀ)
    Ok((k.reshape([1, m * m]), s))
}

/// Stacks each layer's zero-diagonal Gram matrix (flattened) and its row sums.
///
/// # Shapes
/// - each input: `[m, p_l]`
/// - returns `([L, m²], [L, m])`
async fn stack_grams(
    compute: &Compute,
    layers: impl Iterator<Item = Tensor<2>>,
    mask: &Tensor<2>,
) -> Result<(Tensor<2>, Tensor<2>)> {
    let (mut grams, mut sums) = (Vec::new(), Vec::new());
    for x in layers {
        let (g, s) = zero_diagonal_gram(compute, x, mask).await?;
        grams.push(g);
        sums.push(s);
    }
    Ok((Tensor::cat(grams, 0), Tensor::cat(sums, 0)))
}

/// The three sums HSIC₁ is made of, read back for `f64` assembly on the host.
pub(crate) struct Hsic1Terms {
    /// `tr(K̃L̃)` per pair.
    trace: Vec<f64>,
    /// `1ᵀK̃1` per left layer.
    total_left: Vec<f64>,
    /// `1ᵀL̃1` per right layer.
    total_right: Vec<f64>,
    /// `1ᵀK̃L̃1` per pair.
    cross: Vec<f64>,
    /// Pairs are `left × right`, row-major; `None` means the diagonal only.
    right_len: Option<usize>,
}

impl Hsic1Terms {
    /// The terms of every pair of a left layer (row of `ga`) and a right layer (row of `gb`).
    ///
    /// # Shapes
    /// - `ga`: `[La, m²]`, `sa`: `[La, m]`, `gb`: `[Lb, m²]`, `sb`: `[Lb, m]`
    pub(crate) async fn pairs(
        compute: &Compute,
        ga: &Tensor<2>,
        sa: &Tensor<2>,
        gb: &Tensor<2>,
        sb: &Tensor<2>,
    ) -> Result<Self> {
        let trace = compute
            .read(products::product_nt(compute, ga.clone(), gb.clone()).await?)
            .await?; // [La, Lb]
        let cross = compute.read(sa.clone().matmul(sb.clone().transpose())).await?; // [La, Lb]
        let total_left = compute.read(sa.clone().sum_dim(1)).await?;
        let total_right = compute.read(sb.clone().sum_dim(1)).await?;
        Ok(Self {
            trace,
            total_left,
            total_right,
            cross,
            right_len: Some(sb.dims()[0]),
        })
    }

    /// The terms from minibatch Gram matrices computed on the host: every pair of a `left` and
    /// a `right` layer, or each `left` layer with itself (`right = None`).
    fn host(left: &BatchGrams, right: Option<&BatchGrams>, m: usize) -> Self {
        let trace = products::batch_traces(left, right);
        let totals = |g: &BatchGrams| g.sums.chunks(m).map(|s| s.iter().sum()).collect::<Vec<f64>>();
        let dot = |u: &[f64], v: &[f64]| u.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
        let (total_left, total_right, cross) = match right {
            Some(right) => {
                let cross = left
                    .sums
                    .chunks(m)
                    .flat_map(|u| right.sums.chunks(m).map(move |v| dot(u, v)))
                    .collect();
                (totals(left), totals(right), cross)
            }
            None => {
                let total = totals(left);
                (total.clone(), total, left.sums.chunks(m).map(|u| dot(u, u)).collect())
            }
        };
        Self {
            trace,
            total_left,
            total_right,
            cross,
            right_len: right.map(|r| r.layers),
        }
    }

    async fn diagonal(compute: &Compute, g: &Tensor<2>, s: &Tensor<2>) -> Result<Self> {
        let trace = compute.read(g.clone().square().sum_dim(1)).await?; // [L]
        let cross = compute.read(s.clone().square().sum_dim(1)).await?; // [L]
        let total = compute.read(s.clone().sum_dim(1)).await?;
        Ok(Self {
            trace,
            total_left: total.clone(),
            total_right: total,
            cross,
            right_len: None,
        })
    }

    /// HSIC₁ for each pair, row-major (or each layer, for the diagonal).
    pub(crate) fn finish(&self, m: usize) -> Vec<f64> {
        let m = m as f64;
        let scale = 1.0 / (m * (m - 3.0));
        (0..self.trace.len())
            .map(|idx| {
                let (i, j) = match self.right_len {
                    Some(lb) => (idx / lb, idx % lb),
                    None => (idx, idx),
                };
                (self.trace[idx] + self.total_left[i] * self.total_right[j] / ((m - 1.0) * (m - 2.0))
                    - 2.0 / (m - 2.0) * self.cross[idx])
                    * scale
            })
            .collect()
    }
}

/// A seeded permutation of `0..n`, identical on every platform.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    SplitMix64::new(seed).permutation(n)
}
