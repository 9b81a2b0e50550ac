//! Singular value spectra of activations, class centroids and classifier weights
//! (Kornblith et al. 2021, Fig. E.2).
//!
//! The singular values of an `n × p` matrix are the square roots of the eigenvalues of the
//! smaller of its two Gram matrices (`XᵀX`, `p × p`, or `XXᵀ`, `n × n`), formed on the device and
//! diagonalised on the host in `f64`. In single precision, singular values below about
//! `1e-3 · s_max` carry rounding noise.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::analysis::cka::center_columns;
use crate::analysis::classes::Classes;
use crate::analysis::eigen::eigenvalues;
use crate::compute::Compute;
use crate::error::Result;
use crate::features::Layer;

/// A spectrum and summaries of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spectrum {
    /// Singular values, non-increasing; `min(n, p)` of them.
    pub singular_values: Vec<f64>,
    /// Effective rank `exp(H(s/Σs))` (Roy & Vetterli 2007).
    pub effective_rank: f64,
    /// Fraction of `Σ s²` in the largest singular value.
    pub top_fraction: f64,
}

impl Spectrum {
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

/// Singular values of a device matrix.
///
/// # Shapes
/// - `x`: `[n, p]`; returns `min(n, p)` values
pub async fn singular_values(compute: &Compute, x: Tensor<2>) -> Result<Vec<f64>> {
    let [n, p] = x.dims();
    let (gram, size) = if p <= n {
        (x.clone().transpose().matmul(x), p) // [p, p]
    } else {
        (x.clone().matmul(x.transpose()), n) // [n, n]
    };
    let values = eigenvalues(&compute.read(gram).await?, size)?;
    Ok(values.into_iter().map(|v| v.max(0.0).sqrt()).collect())
}

/// Spectra of a layer (centered), of its class centroids and of classifier weights.
pub async fn spectra(
    compute: &Compute,
    layer: &Layer,
    classes: Option<&Classes>,
    weights: Option<&Layer>,
) -> Result<Spectra> {
    let x = compute.upload(layer); // [N, P]
    let features = Spectrum::from_values(singular_values(compute, center_columns(x.clone())).await?);
    let class_means = match classes {
        Some(classes) => {
            let means = classes.means(compute, x.clone()); // [K, P]
            let centered = means - x.mean_dim(0);
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
