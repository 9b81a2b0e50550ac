//! Class separation R² (Kornblith et al. 2021, eq. 11–12 and Appendix E.1–E.2).
//!
//! `R² = 1 − d̄_within / d̄_total` with class-balanced averages of a distance `d`:
//! `d̄_within = Σ_k Σ_{m,n∈k} d / (K N_k²)`, `d̄_total = Σ_{j,k} Σ_{m∈j,n∈k} d / (K² N_j N_k)`.
//!
//! For the cosine distance, `1 − sim(x, y) = ½‖x̃ − ỹ‖²` on L2-normalised embeddings `x̃`, and by
//! the law of total variance (eq. 16–19) both averages reduce to class means `μ_k`:
//! `d̄_within = W = mean_k mean_{i∈k} ‖z_i − μ_k‖²` and `d̄_total = W + B` with
//! `B = mean_k ‖μ_k − mean_j μ_j‖²` — so `R² = B / (W + B)`, in `O(N·P)` time and memory, never
//! forming the `N × N` distance matrix. Variants (Table E.1):
//! - [`Distance::Cosine`]: the paper's index, on L2-normalised embeddings;
//! - [`Distance::CosineMeanSubtracted`]: the mean over all examples is subtracted first;
//! - [`Distance::SquaredEuclidean`]: `d(x, y) = ‖x − y‖²` on the raw embeddings (the
//!   class-balanced ANOVA η²; the factor ½ cancels in the ratio).
//!
//! `W` is computed from residuals `z_i − μ_{y_i}`, not as `E‖z‖² − ‖μ‖²`, so it stays accurate
//! when classes are nearly collapsed. The layer is streamed through the device a group of classes
//! at a time ([`Compute::chunk_elements`]), so memory is bounded whatever `N`.

use serde::{Deserialize, Serialize};

use crate::analysis::classes::Classes;
use crate::compute::Compute;
use crate::error::{Error, Result};
use crate::features::Layer;

/// The distance whose within/total ratio defines R².
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distance {
    /// `1 − cos(x, y)`: the paper's class separation index.
    Cosine,
    /// Cosine distance after subtracting the mean embedding.
    CosineMeanSubtracted,
    /// `‖x − y‖²`.
    SquaredEuclidean,
}

impl Distance {
    /// Every variant, in Table E.1's order.
    pub const ALL: [Distance; 3] = [
        Distance::Cosine,
        Distance::CosineMeanSubtracted,
        Distance::SquaredEuclidean,
    ];
}

/// R² and the averages it is made of.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Separation {
    /// The distance.
    pub distance: Distance,
    /// `1 − d̄_within / d̄_total`, in `[0, 1]`.
    pub r2: f64,
    /// Class-balanced mean within-class distance `d̄_within`.
    pub within: f64,
    /// Class-balanced mean distance over all pairs `d̄_total`.
    pub total: f64,
}

/// Class separation R² of a layer's embeddings under `distance`.
///
/// # Shapes
/// - `layer`: `[N, P]`, one row per entry of `classes`
///
/// # Errors
/// Row count different from the labels; an all-zero embedding (cosine undefined); every
/// embedding identical (`d̄_total = 0`).
pub async fn class_separation(
    compute: &Compute,
    layer: &Layer,
    classes: &Classes,
    distance: Distance,
) -> Result<Separation> {
    if layer.rows != classes.len() {
        return Err(Error::RowMismatch {
            what: "class separation".into(),
            a: layer.origin.clone(),
            rows_a: layer.rows,
            b: "the labels".into(),
            rows_b: classes.len(),
        });
    }
    // Computed on the layer scaled to a largest activation of 1 (R² does not change; the
    // squared Euclidean distances are scaled back), so that no square overflows or underflows.
    let factor = layer.unit_scale("class separation")?;
    let centre = match distance {
        Distance::CosineMeanSubtracted => Some(compute.column_means_scaled(layer, factor)), // [1, P]
        _ => None,
    };
    // Stream the layer class group by class group: class means, and each class's mean squared
    // distance to its mean (the rows of a group arrive sorted by class).
    let mut within = Vec::with_capacity(classes.num_classes());
    let mut mu = Vec::with_capacity(classes.num_classes() * layer.cols);
    for group in classes.groups(compute, layer.cols) {
        let x = classes.upload_group(compute, layer, &group, factor); // [n_g, P], sorted by class
        let x = match &centre {
            Some(c) => x - c.clone(),
            None => x,
        };
        let z = match distance {
            Distance::SquaredEuclidean => x,
            _ => normalize_rows(compute, x, layer, |i| classes.example_at(&group, i)).await?,
        };
        let means = classes.group_means(&group, z.clone()); // [K_g, P]
        let residual = classes.group_residuals(compute, &group, z, means.clone());
        let residual_sq = compute.read(residual.square().sum_dim(1)).await?; // [n_g]
        let mut rest = residual_sq.as_slice();
        for &count in &classes.counts()[group.classes.clone()] {
            let (class, tail) = rest.split_at(count);
            within.push(class.iter().sum::<f64>() / count as f64);
            rest = tail;
        }
        mu.extend(compute.read(means).await?);
    }
    let within_var = mean(&within);

    let k = classes.num_classes();
    let p = layer.cols;
    let mut grand = vec![0.0f64; p];
    for row in mu.chunks_exact(p) {
        for (g, v) in grand.iter_mut().zip(row) {
            *g += v / k as f64;
        }
    }
    let between_var = mu
        .chunks_exact(p)
        .map(|row| row.iter().zip(&grand).map(|(v, g)| (v - g) * (v - g)).sum::<f64>())
        .sum::<f64>()
        / k as f64;
    let total_var = within_var + between_var;
    if total_var.is_nan() || total_var <= 0.0 {
        return Err(Error::degenerate(
            &layer.origin,
            "every embedding is the same, so the total distance is zero and R² is undefined",
        ));
    }
    // Cosine distance is half the squared distance of normalised embeddings; squared Euclidean
    // distances return to the layer's units.
    let scale = match distance {
        Distance::SquaredEuclidean => 2.0 / (factor * factor),
        _ => 1.0,
    };
    Ok(Separation {
        distance,
        r2: (between_var / total_var).clamp(0.0, 1.0),
        within: scale * within_var,
        total: scale * total_var,
    })
}

/// L2-normalises each row; an all-zero row has no direction and is an error.
///
/// # Shapes
/// - `x`: `[N, P]` → `[N, P]`
async fn normalize_rows(
    compute: &Compute,
    x: burn::tensor::Tensor<2>,
    layer: &Layer,
    example: impl Fn(usize) -> usize,
) -> Result<burn::tensor::Tensor<2>> {
    let norms = x.clone().square().sum_dim(1).sqrt(); // [n, 1]
    let host = compute.read(norms.clone()).await?;
    if let Some(i) = host.iter().position(|&v| v.is_nan() || v <= 0.0) {
        return Err(Error::degenerate(
            &layer.origin,
            format!(
                "example {} has an all-zero embedding, for which cosine distance is undefined",
                example(i)
            ),
        ));
    }
    Ok(x / norms)
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}
