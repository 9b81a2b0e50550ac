//! Linear centered kernel alignment (CKA) between two representations of the same examples.
//!
//! Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network Representations Revisited",
//! ICML 2019, eq. 10 (the paper's "linear CKA"):
//!
//! `CKA(X, Y) = HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L))` with `K = XXᵀ`, `L = YYᵀ`.
//!
//! Two estimators of HSIC:
//! - **biased** (Gretton et al. 2005): `tr(KHLH)/(n−1)²`; in feature space, with column-centered
//!   `X`, `Y`, it is `‖XᵀY‖²_F` up to the constant that cancels in the ratio;
//! - **debiased** (unbiased HSIC, Song et al. 2007, "Supervised feature selection via dependence
//!   estimation"): `[tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1/((n−1)(n−2)) − 2/(n−2)·1ᵀK̃L̃1] / (n(n−3))` with `K̃`, `L̃`
//!   the Gram matrices with zeroed diagonals. In feature space this is Kornblith's
//!   `_debiased_dot_product_similarity_helper`; debiased CKA may be slightly negative.
//!
//! Two forms of the same estimators, which agree to rounding:
//! - **feature space**: `O(n·(p·q + p² + q²))`, for `n ≫ p, q`; streamed over chunks of rows, so
//!   memory does not grow with `n`;
//! - **Gram**: forms the `n × n` Gram matrices, `O(n²·(p + q))`, for `p, q ≫ n`.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::products;
use crate::compute::Compute;
use crate::error::{Error, Result};
use crate::features::Layer;

/// Which HSIC estimator CKA uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CkaEstimator {
    /// The biased (V-statistic) HSIC of Gretton et al. 2005: the paper's CKA. Default.
    #[default]
    Biased,
    /// The unbiased HSIC of Song et al. 2007.
    Debiased,
}

/// How the estimator is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum CkaForm {
    /// Whichever of the two forms needs fewer operations. Default.
    #[default]
    Auto,
    /// Cross-covariances `XᵀY` (`p × q`).
    Feature,
    /// Gram matrices `XXᵀ` (`n × n`).
    Gram,
}

/// Settings of [`linear_cka`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CkaConfig {
    /// HSIC estimator; default biased.
    pub estimator: CkaEstimator,
    /// Computation form; default auto.
    pub form: CkaForm,
}

/// Linear CKA and the HSIC terms it was formed from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CkaResult {
    /// `hsic_xy / sqrt(hsic_xx · hsic_yy)`.
    pub cka: f64,
    /// Scaled HSIC(K, L).
    pub hsic_xy: f64,
    /// Scaled HSIC(K, K).
    pub hsic_xx: f64,
    /// Scaled HSIC(L, L).
    pub hsic_yy: f64,
    /// The estimator used.
    pub estimator: CkaEstimator,
    /// The form used (never `Auto`).
    pub form: CkaForm,
    /// Examples.
    pub n: usize,
}

/// Linear CKA between two layers over the same examples.
///
/// # Shapes
/// - `x`: `[n, p]`, `y`: `[n, q]`
///
/// # Errors
/// Different row counts, too few examples (2 biased, 4 debiased), or a representation with
/// zero variance (CKA undefined).
pub async fn linear_cka(compute: &Compute, x: &Layer, y: &Layer, config: &CkaConfig) -> Result<CkaResult> {
    let n = x.rows;
    if y.rows != n {
        return Err(Error::RowMismatch {
            what: "CKA".into(),
            a: x.origin.clone(),
            rows_a: n,
            b: y.origin.clone(),
            rows_b: y.rows,
        });
    }
    let needed = match config.estimator {
        CkaEstimator::Biased => 2,
        CkaEstimator::Debiased => 4,
    };
    if n < needed {
        return Err(Error::TooFewExamples {
            analysis: "CKA",
            needed,
            found: n,
        });
    }
    let (p, q) = (x.cols as f64, y.cols as f64);
    let nf = n as f64;
    let form = match config.form {
        CkaForm::Auto if nf * (p * q + p * p + q * q) <= nf * nf * (p + q + 3.0) => CkaForm::Feature,
        CkaForm::Auto => CkaForm::Gram,
        other => other,
    };
    // CKA does not change when a representation is scaled: compute on the layers scaled to a
    // largest activation of 1, so sums of fourth powers neither overflow nor underflow, and
    // report the HSIC values in the layers' own units.
    let [sx, sy] = unit_scales(compute, &[x, y])?[..] else {
        unreachable!("two layers, two scales")
    };
    let scales = (sx, sy);
    let (hsic_xy, hsic_xx, hsic_yy) = match form {
        CkaForm::Feature => feature_space(compute, x, y, config.estimator, scales).await?,
        _ => {
            let (xt, yt) = (
                center_columns(compute.upload_rows_scaled(x, 0, n, scales.0)),
                center_columns(compute.upload_rows_scaled(y, 0, n, scales.1)),
            );
            gram_space(compute, xt, yt, config.estimator).await?
        }
    };
    for (value, layer) in [(hsic_xx, x), (hsic_yy, y)] {
        if value.is_nan() || value <= 0.0 {
            return Err(Error::degenerate(
                &layer.origin,
                "the representation has zero variance across examples under this estimator, so CKA is undefined",
            ));
        }
    }
    let cka = hsic_xy / (hsic_xx * hsic_yy).sqrt();
    let (ux, uy) = (scales.0.powi(-2), scales.1.powi(-2));
    Ok(CkaResult {
        cka,
        hsic_xy: hsic_xy * ux * uy,
        hsic_xx: hsic_xx * ux * ux,
        hsic_yy: hsic_yy * uy * uy,
        estimator: config.estimator,
        form,
        n,
    })
}

/// Subtracts the column means.
///
/// # Shapes
/// - `x`: `[n, p]` → `[n, p]`
pub(crate) fn center_columns(x: Tensor<2>) -> Tensor<2> {
    let mean = x.clone().mean_dim(0); // [1, p]
    x - mean
}

/// The factor that brings each layer's largest activation near 1 ([`Layer::unit_scale`]), after
/// refusing a layer with a non-finite or only zero activations and then one that does not vary
/// across examples, in that order. The layers are scanned in parallel.
pub(crate) fn unit_scales(compute: &Compute, layers: &[&Layer]) -> Result<Vec<f64>> {
    let summarise = |layer: &&Layer| {
        let max = layer.max_abs();
        (max, layer.relative_variance_given_max(max))
    };
    #[cfg(not(target_arch = "wasm32"))]
    let summaries: Vec<(f64, f64)> = {
        use rayon::prelude::*;
        layers.par_iter().map(summarise).collect()
    };
    #[cfg(target_arch = "wasm32")]
    let summaries: Vec<(f64, f64)> = layers.iter().map(summarise).collect();
    let scales = layers
        .iter()
        .zip(&summaries)
        .map(|(layer, &(max, _))| layer.unit_scale_given_max(max, "CKA"))
        .collect::<Result<Vec<f64>>>()?;
    for (layer, &(_, variance)) in layers.iter().zip(&summaries) {
        refuse_constant(compute, layer, variance)?;
    }
    Ok(scales)
}

/// Refuses a layer that does not vary across examples (relative to its size and the precision
/// of the computation), given its [`Layer::relative_variance`]: CKA of a constant representation
/// is undefined, and computing it anyway gives rounding noise.
fn refuse_constant(compute: &Compute, layer: &Layer, variance: f64) -> Result<()> {
    if variance.is_nan() || variance <= compute.constant_tolerance() {
        return Err(Error::degenerate(
            &layer.origin,
            "the representation has zero variance across examples (every example is the same, up to \
             rounding), so CKA is undefined",
        ));
    }
    Ok(())
}

/// `(hsic_xy, hsic_xx, hsic_yy)` in feature space, of the layers times `scales`. The
/// cross-products `XᵀY`, `XᵀX`, `YᵀY` of the column-centered layers are accumulated over chunks
/// of rows, so memory is bounded by the chunk size and `(p + q)²`, whatever `n`.
async fn feature_space(
    compute: &Compute,
    x: &Layer,
    y: &Layer,
    estimator: CkaEstimator,
    (fx, fy): (f64, f64),
) -> Result<(f64, f64, f64)> {
    let n = x.rows as f64;
    let ((xty, xtx, yty), (sx, sy)) = if compute.is_cpu() {
        let sums = products::centered_cross_sums(
            compute.precision,
            compute.chunk_elements,
            (x, fx),
            (y, fy),
            estimator == CkaEstimator::Debiased,
        )?;
        (sums.sums, sums.row_norms)
    } else {
        device_cross_sums(compute, (x, fx), (y, fy), estimator == CkaEstimator::Debiased).await?
    };
    Ok(match estimator {
        CkaEstimator::Biased => (xty, xtx, yty),
        CkaEstimator::Debiased => {
            let (nx, ny) = (sx.iter().sum::<f64>(), sy.iter().sum::<f64>());
            let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>();
            let debias = |value: f64, a: &[f64], b: &[f64], na: f64, nb: f64| {
                value - n / (n - 2.0) * dot(a, b) + na * nb / ((n - 1.0) * (n - 2.0))
            };
            (
                debias(xty, &sx, &sy, nx, ny),
                debias(xtx, &sx, &sx, nx, nx),
                debias(yty, &sy, &sy, ny, ny),
            )
        }
    })
}

/// [`products::centered_cross_sums`] on a GPU: the cross-products accumulated on the device over
/// chunks of rows, the row norms read back when asked for.
#[allow(clippy::type_complexity)]
async fn device_cross_sums(
    compute: &Compute,
    (x, fx): (&Layer, f64),
    (y, fy): (&Layer, f64),
    row_norms: bool,
) -> Result<((f64, f64, f64), (Vec<f64>, Vec<f64>))> {
    let (mean_x, mean_y) = (compute.column_means_scaled(x, fx), compute.column_means_scaled(y, fy)); // [1, p], [1, q]
    let mut accumulated: Option<[Tensor<2>; 3]> = None;
    let (mut sx, mut sy) = (Vec::new(), Vec::new());
    for rows in compute.row_chunks(x.rows, x.cols + y.cols) {
        let xc = compute.upload_rows_scaled(x, rows.start, rows.end, fx) - mean_x.clone(); // [n_c, p]
        let yc = compute.upload_rows_scaled(y, rows.start, rows.end, fy) - mean_y.clone(); // [n_c, q]
        if row_norms {
            // Row squared norms = diagonals of the Gram matrices.
            sx.extend(compute.read(xc.clone().square().sum_dim(1)).await?);
            sy.extend(compute.read(yc.clone().square().sum_dim(1)).await?);
        }
        let part = [
            xc.clone().transpose().matmul(yc.clone()), // [p, q]
            xc.clone().transpose().matmul(xc),         // [p, p]
            yc.clone().transpose().matmul(yc),         // [q, q]
        ];
        accumulated = Some(match accumulated {
            Some([a, b, c]) => {
                let [d, e, f] = part;
                [a + d, b + e, c + f]
            }
            None => part,
        });
    }
    let [xty, xtx, yty] = accumulated.expect("a layer has at least one row");
    let xty = compute.scalar(xty.square().sum()).await?;
    let xtx = compute.scalar(xtx.square().sum()).await?;
    let yty = compute.scalar(yty.square().sum()).await?;
    Ok(((xty, xtx, yty), (sx, sy)))
}

/// `(hsic_xy, hsic_xx, hsic_yy)` from the `n × n` Gram matrices of column-centered `x`, `y`.
async fn gram_space(compute: &Compute, x: Tensor<2>, y: Tensor<2>, estimator: CkaEstimator) -> Result<(f64, f64, f64)> {
    let k = center_gram(compute, products::rows_gram(compute, x).await?, estimator); // [n, n]
    let l = center_gram(compute, products::rows_gram(compute, y).await?, estimator); // [n, n]
    let kl = compute.scalar((k.clone() * l.clone()).sum()).await?;
    let kk = compute.scalar(k.square().sum()).await?;
    let ll = compute.scalar(l.square().sum()).await?;
    Ok((kl, kk, ll))
}

/// Centers a Gram matrix for the chosen estimator (Kornblith's `center_gram`): the biased form
/// is `HKH`; the unbiased form zeroes the diagonal and removes the U-statistic means, so that
/// `⟨K̃, L̃⟩` is `n(n−3)` times the unbiased HSIC.
///
/// # Shapes
/// - `gram`: `[n, n]` → `[n, n]`
pub(crate) fn center_gram(compute: &Compute, gram: Tensor<2>, estimator: CkaEstimator) -> Tensor<2> {
    let n = gram.dims()[0];
    match estimator {
        CkaEstimator::Biased => {
            let means = gram.clone().mean_dim(0); // [1, n]
            let grand = means.clone().mean(); // [1]
            let centered_means = means - grand.unsqueeze::<2>().div_scalar(2.0);
            gram - centered_means.clone() - centered_means.transpose()
        }
        CkaEstimator::Debiased => {
            let off_diagonal = off_diagonal_mask(compute, n);
            let gram = gram * off_diagonal.clone();
            let means = gram.clone().sum_dim(0).div_scalar((n - 2) as f64); // [1, n]
            let total = means.clone().sum().unsqueeze::<2>().div_scalar(2.0 * (n - 1) as f64);
            let means = means - total;
            (gram - means.clone() - means.transpose()) * off_diagonal
        }
    }
}

/// `1 − I`.
///
/// # Shapes
/// - returns `[n, n]`
pub(crate) fn off_diagonal_mask(compute: &Compute, n: usize) -> Tensor<2> {
    let ones = Tensor::<2>::ones([n, n], (&compute.device, compute.precision.dtype()));
    let eye = Tensor::<2>::eye(n, &compute.device).cast(compute.precision.dtype());
    ones - eye
}
