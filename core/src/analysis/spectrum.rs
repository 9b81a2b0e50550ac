//! Singular value spectra of activations, class centroids and classifier weights
//! (Kornblith et al. 2021, Fig. E.2).
//!
//! The singular values of an `n × p` matrix are the square roots of the eigenvalues of the
//! smaller of its two Gram matrices (`XᵀX`, `p × p`, or `XXᵀ`, `n × n`), formed on the device and
//! diagonalised on the host in `f64`. In single precision, singular values below about
//! `1e-3 · s_max` carry rounding noise. Layers with at most as many features as examples are
//! streamed through the device in chunks of rows.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::analysis::cka::center_columns;
use crate::analysis::classes::Classes;
use crate::analysis::eigen::eigenvalues;
use crate::analysis::products;
use crate::compute::Compute;
use crate::error::Result;
use crate::features::Layer;

/// A spectrum and summaries of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spectrum {
    /// Singular values, non-increasing; `min(n, p)` of them (or the largest of them, after
    /// [`Spectrum::truncated`]).
    pub singular_values: Vec<f64>,
    /// Effective rank `exp(H(s/Σs))` (Roy & Vetterli 2007).
    pub effective_rank: f64,
    /// Fraction of `Σ s²` in the largest singular value.
    pub top_fraction: f64,
}

impl Spectrum {
    /// The same spectrum with only its `n` largest singular values (the summaries unchanged).
    pub fn truncated(mut self, n: usize) -> Self {
        self.singular_values.truncate(n);
        self
    }

    fn from_values(singular_values: Vec<f64>) -> Self {
        let sum: f64 = singular_values.iter().sum();
        let entropy: f64 = singular_values
            .iter()
            .filter(|&&s| s > 0.0)
            .map(|&s| {
                let p = s / sum;
                -p * p.ln()
            })
            .sum();
        let energy: f64 = singular_values.iter().map(|s| s * s).sum();
        let top = singular_values.first().copied().unwrap_or(0.0);
        Self {
            effective_rank: if sum > 0.0 { entropy.exp() } else { 0.0 },
            top_fraction: if energy > 0.0 { top * top / energy } else { 0.0 },
            singular_values,
        }
    }
}

/// The spectra of Fig. E.2 for one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spectra {
    /// Of the mean-centered activations `[N, P]`.
    pub features: Spectrum,
    /// Of the global-mean-subtracted class centroids `[K, P]`, when labels were given.
    pub class_means: Option<Spectrum>,
    /// Of the classifier weights `[K, P]`, when given.
    pub weights: Option<Spectrum>,
}

impl Spectra {
    /// Every spectrum with only its `n` largest singular values.
    pub fn truncated(self, n: usize) -> Self {
        Self {
            features: self.features.truncated(n),
            class_means: self.class_means.map(|s| s.truncated(n)),
            weights: self.weights.map(|s| s.truncated(n)),
        }
    }
}

/// Singular values of a device matrix.
///
/// # Shapes
/// - `x`: `[n, p]`; returns `min(n, p)` values
pub async fn singular_values(compute: &Compute, x: Tensor<2>) -> Result<Vec<f64>> {
    let [n, p] = x.dims();
    let (gram, size) = if p <= n {
        (products::columns_gram(compute, x).await?, p) // [p, p]
    } else {
        (products::rows_gram(compute, x).await?, n) // [n, n]
    };
    let values = eigenvalues(&compute.read(gram).await?, size)?;
    Ok(values.into_iter().map(|v| v.max(0.0).sqrt()).collect())
}

/// Singular values of a layer after centering its columns. With at most as many features as
/// examples, `XᵀX` is accumulated over chunks of rows (bounded memory); otherwise the `N × N`
/// Gram matrix of the whole (small-`N`) layer is used.
pub(crate) async fn centered_singular_values(compute: &Compute, layer: &Layer) -> Result<Vec<f64>> {
    if layer.cols > layer.rows {
        return singular_values(compute, center_columns(compute.upload(layer))).await;
    }
    let mean = compute.column_means(layer); // [1, P]
    let mut gram: Option<Tensor<2>> = None;
    for rows in compute.row_chunks(layer.rows, layer.cols) {
        let x = compute.upload_rows(layer, rows.start, rows.end) - mean.clone(); // [n_c, P]
        let part = products::columns_gram(compute, x).await?; // [P, P]
        gram = Some(match gram {
            Some(g) => g + part,
            None => part,
        });
    }
    let gram = gram.expect("a layer has at least one row");
    let values = eigenvalues(&compute.read(gram).await?, layer.cols)?;
    Ok(values.into_iter().map(|v| v.max(0.0).sqrt()).collect())
}

/// Spectra of a layer (centered), of its class centroids and of classifier weights.
pub async fn spectra(
    compute: &Compute,
    layer: &Layer,
    classes: Option<&Classes>,
    weights: Option<&Layer>,
) -> Result<Spectra> {
    let features = Spectrum::from_values(centered_singular_values(compute, layer).await?);
    let class_means = match classes {
        Some(classes) => {
            let (k, p) = (classes.num_classes(), layer.cols);
            let mu = classes.layer_means(compute, layer, 1.0).await?; // [K, P]
            let centered = compute.matrix(classes.centered_means(&mu, p), k, p); // [K, P]
            Some(Spectrum::from_values(singular_values(compute, centered).await?))
        }
        None => None,
    };
    let weights = match weights {
        Some(w) => Some(Spectrum::from_values(
            singular_values(compute, compute.upload(w)).await?,
        )),
        None => None,
    };
    Ok(Spectra {
        features,
        class_means,
        weights,
    })
}
