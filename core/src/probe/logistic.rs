//! Logistic regression on fixed features, fitted by L-BFGS: what the linear probe (multinomial,
//! softmax over the classes) and the multi-label probe (one sigmoid per class) share. The
//! objective is `(Σ_i loss_i + Σ_c λ_c ‖w_c‖²) / N` (the bias unregularised); the features stay
//! on the device in row chunks of at most [`Compute::chunk_elements`] elements, and each
//! evaluation costs two matrix products per chunk and one read-back of the gradient.

use burn::tensor::activation::{log_softmax, sigmoid};
use burn::tensor::{Int, Tensor, TensorData};

use crate::compute::Compute;
use crate::error::Result;
use crate::features::Layer;
use crate::probe::lbfgs::{Differentiable, LbfgsConfig, minimize};
use crate::probe::linear::PathPoint;

/// A fitted logistic regression.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticModel {
    /// Feature width `P`.
    pub features: usize,
    /// Number of classes `C`.
    pub classes: usize,
    /// `[P * C]`, row-major `[P, C]`, then the bias `[C]`.
    pub params: Vec<f64>,
}

/// How the scores `z = x W + b` of an example give its loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// Cross-entropy of `softmax(z)` against a one-hot target (one class per example).
    Softmax,
    /// Binary cross-entropy of `sigmoid(z_c)` against each 0/1 target (any number of classes).
    Sigmoid,
}

/// Rows of a layer resident on the device, with their targets when they are fitted on.
pub(crate) struct Resident {
    x: Vec<Tensor<2>>,
    y: Vec<Tensor<2>>,
    link: Link,
    rows: usize,
}

impl Resident {
    /// Rows to score only.
    pub fn new(compute: &Compute, layer: &Layer) -> Self {
        Self::with_targets(compute, layer, 1, Link::Softmax, |_| Vec::new())
    }

    /// Rows with one class each, `labels` in `0..classes` (one-hot targets, softmax).
    pub fn with_labels(compute: &Compute, layer: &Layer, labels: &[usize], classes: usize) -> Self {
        Self::with_targets(compute, layer, classes, Link::Softmax, |r| {
            let idx: Vec<i64> = labels[r].iter().map(|&l| l as i64).collect();
            let n = idx.len();
            vec![
                Tensor::<1, Int>::from_data(TensorData::new(idx, [n]), &compute.device)
                    .one_hot::<2>(classes)
                    .float()
                    .cast(compute.precision.dtype()),
            ]
        })
    }

    /// Rows with 0/1 targets `values` (row-major `[rows, classes]`, sigmoids).
    pub fn with_binary_targets(compute: &Compute, layer: &Layer, values: &[bool], classes: usize) -> Self {
        Self::with_targets(compute, layer, classes, Link::Sigmoid, |r| {
            let chunk = values[r.start * classes..r.end * classes]
                .iter()
                .map(|&v| f64::from(u8::from(v)))
                .collect();
            vec![compute.matrix(chunk, r.len(), classes)]
        })
    }

    fn with_targets(
        compute: &Compute,
        layer: &Layer,
        classes: usize,
        link: Link,
        targets: impl Fn(std::ops::Range<usize>) -> Vec<Tensor<2>>,
    ) -> Self {
        let chunks = compute.row_chunks(layer.rows, layer.cols.max(classes));
        let x = chunks
            .iter()
            .map(|r| compute.upload_rows(layer, r.start, r.end))
            .collect();
        let y = chunks.iter().flat_map(|r| targets(r.clone())).collect();
        Self {
            x,
            y,
            link,
            rows: layer.rows,
        }
    }

    fn params(compute: &Compute, params: &[f64], features: usize, classes: usize) -> (Tensor<2>, Tensor<2>) {
        let w = compute.matrix(params[..features * classes].to_vec(), features, classes);
        let b = compute.matrix(params[features * classes..].to_vec(), 1, classes);
        (w, b)
    }

    /// `Σ_i loss_i` and its gradient `[∂W (P·C), ∂b (C)]`.
    async fn loss_and_gradient(
        &self,
        compute: &Compute,
        params: &[f64],
        features: usize,
        classes: usize,
    ) -> Result<(f64, Vec<f64>)> {
        let (w, b) = Self::params(compute, params, features, classes);
        let mut total: Option<Tensor<1>> = None;
        for (x, y) in self.x.iter().zip(&self.y) {
            let z = x.clone().matmul(w.clone()) + b.clone(); // [rows, C]
            let (loss, d) = match self.link {
                Link::Softmax => {
                    let logp = log_softmax(z, 1);
                    ((logp.clone() * y.clone()).sum().neg(), logp.exp() - y.clone())
                }
                Link::Sigmoid => {
                    // BCE with logits, stably: max(z, 0) − z·y + log(1 + e^{−|z|}).
                    let bce = z.clone().clamp_min(0.0) - z.clone() * y.clone() + z.clone().abs().neg().exp().log1p();
                    (bce.sum(), sigmoid(z) - y.clone())
                }
            }; // [1], [rows, C]
            let gw = x.clone().transpose().matmul(d.clone()).reshape([features * classes]);
            let gb = d.sum_dim(0).reshape([classes]);
            let packed = Tensor::cat(vec![gw, gb, loss], 0); // [P·C + C + 1]
            total = Some(match total {
                Some(t) => t + packed,
                None => packed,
            });
        }
        let packed = compute.read(total.expect("at least one row chunk")).await?;
        let loss = packed[features * classes + classes];
        Ok((loss, packed[..features * classes + classes].to_vec()))
    }

    /// Scores `x W + b` (logits), row-major `[rows, C]`.
    pub async fn scores(&self, compute: &Compute, model: &LogisticModel) -> Result<Vec<f64>> {
        let (w, b) = Self::params(compute, &model.params, model.features, model.classes);
        let mut out = Vec::with_capacity(self.rows * model.classes);
        for x in &self.x {
            out.extend(compute.read(x.clone().matmul(w.clone()) + b.clone()).await?);
        }
        Ok(out)
    }
}

/// The per-example objective `(Σ_i loss_i + Σ_c λ_c ‖w_c‖²) / N`.
struct Regularized<'a> {
    compute: &'a Compute,
    data: &'a Resident,
    lambdas: &'a [f64],
    features: usize,
}

impl Differentiable for Regularized<'_> {
    async fn evaluate(&mut self, params: &[f64]) -> Result<(f64, Vec<f64>)> {
        let classes = self.lambdas.len();
        let (loss, mut grad) = self
            .data
            .loss_and_gradient(self.compute, params, self.features, classes)
            .await?;
        let pc = self.features * classes;
        let mut penalty = 0.0;
        for (j, (g, w)) in grad[..pc].iter_mut().zip(&params[..pc]).enumerate() {
            let lambda = self.lambdas[j % classes];
            penalty += lambda * w * w;
            *g += 2.0 * lambda * w;
        }
        let n = self.data.rows as f64;
        grad.iter_mut().for_each(|g| *g /= n);
        Ok(((loss + penalty) / n, grad))
    }
}

/// Fits `data` from `start` with class `c`'s weights penalised by `lambdas[c]`: the model and
/// the fit's record (its `lambda` the common λ, NaN when the classes' differ).
pub(crate) async fn fit(
    compute: &Compute,
    data: &Resident,
    lambdas: &[f64],
    start: Vec<f64>,
    features: usize,
    optimizer: &LbfgsConfig,
) -> Result<(LogisticModel, PathPoint)> {
    let mut objective = Regularized {
        compute,
        data,
        lambdas,
        features,
    };
    let out = minimize(&mut objective, start, optimizer).await?;
    let common = lambdas.iter().all(|&l| l == lambdas[0]);
    let point = PathPoint {
        lambda: if common { lambdas[0] } else { f64::NAN },
        validation_accuracy: f64::NAN,
        iterations: out.iterations,
        evaluations: out.evaluations,
        gradient_norm: out.gradient_norm,
        objective: out.value,
        converged: out.termination.converged(),
        termination: out.termination,
    };
    let model = LogisticModel {
        features,
        classes: lambdas.len(),
        params: out.x,
    };
    Ok((model, point))
}
