//! Neural-collapse / simplex-ETF measurements (Papyan, Han & Donoho, "Prevalence of neural
//! collapse during the terminal phase of deep learning training", PNAS 2020), as reported in
//! Table E.2 of Kornblith et al. 2021.
//!
//! With `h_i` the penultimate embeddings, `μ_c` the class means, `μ_G` the mean over all
//! examples, `M` the matrix of rows `μ̃_c = μ_c − μ_G` (`C × P`) and `W` the classifier weights
//! (`C × P`, optional):
//! - equinorm: `Std_c(‖μ̃_c‖) / Avg_c(‖μ̃_c‖)` and the same for `w_c` (Std with `n − 1`);
//! - equiangularity: `Std_{c<c'}(cos(μ̃_c, μ̃_c'))`, and for `w`;
//! - maximal angle: `Avg_{c<c'} |cos(μ̃_c, μ̃_c') + 1/(C−1)|`, and for `w`;
//! - self-duality: `‖W/‖W‖_F − M/‖M‖_F‖²_F`;
//! - within-class variability collapse `Tr(Σ_W Σ_B†)/C`, with
//!   `Σ_W = Avg_i (h_i − μ_{y_i})(h_i − μ_{y_i})ᵀ` and `Σ_B = MᵀM / C`; as in Papyan et al.'s code,
//!   the pseudo-inverse keeps the top `C − 1` eigenpairs of `Σ_B` (fewer if `Σ_B` has lower
//!   numerical rank). It is evaluated without forming any `P × P` matrix:
//!   `Tr(Σ_W Σ_B†)/C = ‖R Mᵀ U Λ⁻¹‖²_F / N` with `R` the within-class residuals and
//!   `MMᵀ = UΛUᵀ`.
//!
//! The layer is streamed through the device a group of classes at a time (two passes), so memory
//! is bounded whatever `N`.

use serde::{Deserialize, Serialize};

use crate::analysis::classes::Classes;
use crate::analysis::eigen::eigen;
use crate::compute::{Compute, Precision};
use crate::error::{Error, Result};
use crate::features::Layer;

/// Geometry of a set of class vectors (class means or classifier rows).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimplexGeometry {
    /// `Std_c(‖v_c‖) / Avg_c(‖v_c‖)`: 0 when all vectors have the same norm.
    pub equinorm: f64,
    /// `Std_{c<c'}(cos(v_c, v_c'))`: 0 when all pairs meet at the same angle.
    pub equiangular: f64,
    /// `Avg_{c<c'} |cos(v_c, v_c') + 1/(C−1)|`: 0 for a simplex equiangular tight frame.
    pub max_angle: f64,
}

/// The Table E.2 quantities.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Collapse {
    /// Geometry of the global-mean-subtracted class means.
    pub means: SimplexGeometry,
    /// Geometry of the classifier rows, when weights were given.
    pub weights: Option<SimplexGeometry>,
    /// `‖W/‖W‖_F − M/‖M‖_F‖²_F`, when weights were given.
    pub self_duality: Option<f64>,
    /// `Tr(Σ_W Σ_B†)/C`.
    pub nc1: f64,
    /// Eigenpairs of `Σ_B` kept in its pseudo-inverse.
    pub rank_between: usize,
    /// Classes `C`.
    pub num_classes: usize,
}

/// Measures neural collapse of `layer` (`[N, P]`) under `classes`, and of the classifier
/// `weights` (`[C, P]`) when given.
pub async fn neural_collapse(
    compute: &Compute,
    layer: &Layer,
    classes: &Classes,
    weights: Option<&Layer>,
) -> Result<Collapse> {
    let c = classes.num_classes();
    if c < 3 {
        return Err(Error::TooFewClasses {
            analysis: "neural collapse",
            needed: 3,
            found: c,
        });
    }
    if layer.rows != classes.len() {
        return Err(Error::RowMismatch {
            what: "neural collapse".into(),
            a: layer.origin.clone(),
            rows_a: layer.rows,
            b: "the labels".into(),
            rows_b: classes.len(),
        });
    }
    if let Some(w) = weights
        && (w.rows != c || w.cols != layer.cols)
    {
        return Err(Error::Shape {
            path: w.origin.clone().into(),
            array: w.name.clone(),
            shape: vec![w.rows, w.cols],
            expected: format!("classifier weights must be [classes, features] = [{c}, {}]", layer.cols),
        });
    }
    let n = layer.rows;
    let p = layer.cols;
    // Every quantity here is scale-invariant: compute on the layer scaled to a largest
    // activation of 1, so that no square overflows (features near 1e38) or underflows.
    let factor = layer.unit_scale("neural collapse")?;
    // Pass 1, streamed by groups of classes: class means; the global mean is their
    // count-weighted average.
    let mu = classes.layer_means(compute, layer, factor).await?; // [C, P]
    let m = compute.matrix(classes.centered_means(&mu, p), c, p); // [C, P]
    let gram = compute.read(m.clone().matmul(m.clone().transpose())).await?; // [C, C]
    let means = geometry(&gram, c);
    if trace(&gram, c) <= 0.0 {
        return Err(Error::degenerate(
            &layer.origin,
            "all class means coincide, so the class-mean geometry is undefined",
        ));
    }

    // Σ_B† from the eigenpairs of MMᵀ (C × C).
    let evd = eigen(&gram, c)?;
    let tolerance = match compute.precision {
        Precision::F32 => 1e-6,
        Precision::F64 => 1e-12,
    } * evd.values[0];
    let rank = evd.values.iter().take(c - 1).take_while(|&&v| v > tolerance).count();
    let mut scaled = vec![0.0f64; c * rank]; // U_r Λ_r⁻¹, [C, r]
    for j in 0..rank {
        for i in 0..c {
            scaled[i * rank + j] = evd.vectors[j][i] / evd.values[j];
        }
    }
    let a = m.clone().transpose().matmul(compute.matrix(scaled, c, rank)); // [P, r]
    // Pass 2: within-class residuals projected on A, group by group.
    let mut projected = 0.0;
    for group in classes.groups(compute, p) {
        let h = classes.upload_group(compute, layer, &group, factor); // [n_g, P]
        let rows = (group.classes.end - group.classes.start) * p;
        let means = compute.matrix(mu[group.classes.start * p..][..rows].to_vec(), rows / p, p);
        let residual = classes.group_residuals(compute, &group, h, means); // [n_g, P]
        projected += compute.scalar(residual.matmul(a.clone()).square().sum()).await?;
    }
    let nc1 = projected / n as f64;

    let (weights_geometry, self_duality) = match weights {
        Some(w) => {
            let wt = compute.upload_rows_scaled(w, 0, w.rows, w.unit_scale("the classifier geometry")?); // [C, P]
            let w_gram = compute.read(wt.clone().matmul(wt.clone().transpose())).await?;
            let inner = compute.scalar((wt * m).sum()).await?;
            let (w_norm, m_norm) = (trace(&w_gram, c).sqrt(), trace(&gram, c).sqrt());
            if w_norm <= 0.0 {
                return Err(Error::degenerate(&w.origin, "the classifier weights are all zero"));
            }
            (
                Some(geometry(&w_gram, c)),
                Some((2.0 - 2.0 * inner / (w_norm * m_norm)).max(0.0)),
            )
        }
        None => (None, None),
    };
    Ok(Collapse {
        means,
        weights: weights_geometry,
        self_duality,
        nc1,
        rank_between: rank,
        num_classes: c,
    })
}

fn trace(gram: &[f64], c: usize) -> f64 {
    (0..c).map(|i| gram[i * c + i]).sum()
}

/// Equinorm, equiangularity and maximal-angle measures from a `C × C` Gram matrix.
fn geometry(gram: &[f64], c: usize) -> SimplexGeometry {
    let norms: Vec<f64> = (0..c).map(|i| gram[i * c + i].max(0.0).sqrt()).collect();
    let mut cosines = Vec::with_capacity(c * (c - 1) / 2);
    for i in 0..c {
        for j in i + 1..c {
            let denom = norms[i] * norms[j];
            cosines.push(if denom > 0.0 { gram[i * c + j] / denom } else { 0.0 });
        }
    }
    let offset = 1.0 / (c as f64 - 1.0);
    SimplexGeometry {
        equinorm: sample_sd(&norms) / mean(&norms),
        equiangular: sample_sd(&cosines),
        max_angle: mean(&cosines.iter().map(|v| (v + offset).abs()).collect::<Vec<_>>()),
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Standard deviation with `n − 1` in the denominator (0 for a single value).
fn sample_sd(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = mean(values);
    (values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (values.len() - 1) as f64).sqrt()
}
