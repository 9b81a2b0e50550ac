//! Numerically safe building blocks shared by the objectives.
//!
//! Every function here is finite, with finite gradients, for all-zero inputs and for logits as
//! large as `±1e4` in `f32`.
//!
//! The objectives scale by constants with `mul_scalar(1 / c)`, never `div_scalar(c)`: in burn
//! 0.22.1 the backward pass of `div_scalar` rounds the divisor to single precision, which costs
//! `f64` gradients seven digits.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// `ε²` in `‖v‖_ε = sqrt(‖v‖² + ε²)`: the norm used wherever the objectives normalise a vector.
///
/// `ε = 1e-6` changes no norm above `1e-3` by more than one part in 10⁶, and keeps both the
/// norm and its gradient finite at `v = 0`, where `v / ‖v‖_ε = 0`.
pub(crate) const NORM_EPS_SQUARED: f64 = 1e-12;

/// One-hot targets in the dtype of `like`.
///
/// # Shapes
/// - `targets`: `[batch]`, class indices in `0..num_classes`
/// - `like`: any float tensor whose dtype and device the result takes
/// - output: `[batch, num_classes]`
///
/// # Panics
/// If a target is outside `0..num_classes` (callers validate labels when they read them).
pub(crate) fn one_hot(targets: Tensor<1, Int>, num_classes: usize, like: &Tensor<2>) -> Tensor<2> {
    targets.one_hot::<2>(num_classes).float().cast(like.dtype())
}

/// Mean over the batch of the cross-entropy `−Σ_k t_k log softmax(z)_k` with (possibly soft)
/// target distributions `t`.
///
/// # Shapes
/// - `logits`, `targets`: `[batch, classes]`
/// - output: `[1]`
pub(crate) fn cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let log_probs = log_softmax(logits, 1);
    (log_probs * targets).sum_dim(1).neg().mean()
}

/// `softplus(x) = log(1 + eˣ)`, evaluated as `max(x, 0) + log1p(e^{−|x|})` so it neither
/// overflows for large `x` nor loses precision for very negative `x`.
pub(crate) fn softplus<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let tail = x.clone().abs().neg().exp().log1p();
    x.clamp_min(0.0) + tail
}

/// `‖v‖_ε` along `dim`, kept as a size-1 axis so it broadcasts back.
///
/// # Shapes
/// - `x`: `[..]`
/// - output: `x`'s shape with `dim` of size 1
pub(crate) fn safe_norm<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    x.powi_scalar(2).sum_dim(dim).add_scalar(NORM_EPS_SQUARED).sqrt()
}

/// `v / ‖v‖_ε` along `dim` (see [`NORM_EPS_SQUARED`]).
pub(crate) fn normalize<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    let norm = safe_norm(x.clone(), dim);
    x / norm
}
