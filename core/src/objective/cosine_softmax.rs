//! Cosine softmax (eq. 7): softmax cross-entropy on `z_k = cos(W_k, x) / τ + b_k`, with both the
//! class weight vectors `W_k` and the features `x` L²-normalised.
//!
//! Footnote 1 of the paper: training at `τ < 0.05` was unstable, so there the loss is multiplied
//! by `τ` (which keeps the gradient with respect to the correct-class logit from growing as `1/τ`).
//! [`LossScaling::Auto`] does exactly that; `always`/`never` force it on or off, e.g. to check
//! that the relationships for `τ ≥ 0.05` do not depend on it. Norms are the safe norm
//! `sqrt(‖v‖² + ε²)`, so zero features give zero cosines, not NaN.

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::objective::functional::normalize;
use crate::objective::softmax::SoftmaxConfig;

/// Whether the cosine-softmax loss is multiplied by its temperature τ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossScaling {
    /// Scale by τ when `τ < 0.05` (the paper's rule, footnote 1).
    #[default]
    Auto,
    /// Always scale by τ.
    Always,
    /// Never scale.
    Never,
}

/// Softmax cross-entropy on temperature-scaled cosine similarities plus a per-class bias.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CosineSoftmaxConfig {
    /// τ, the temperature, > 0. Default 0.05, the paper's ImageNet value (Table A.1 searched
    /// 0.04–0.08; Table 4 sweeps 0.01–0.08, see [`CosineSoftmaxConfig::TABLE4_TEMPERATURES`]).
    #[serde(default = "CosineSoftmaxConfig::default_temperature", alias = "tau")]
    pub temperature: f64,
    /// Whether the loss is multiplied by τ. Default `auto` (when τ < 0.05).
    #[serde(default)]
    pub loss_scaling: LossScaling,
}

impl Default for CosineSoftmaxConfig {
    fn default() -> Self {
        Self {
            temperature: Self::default_temperature(),
            loss_scaling: LossScaling::Auto,
        }
    }
}

impl CosineSoftmaxConfig {
    /// The temperatures of the paper's Table 4 sweep.
    pub const TABLE4_TEMPERATURES: [f64; 8] = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08];

    /// Below this temperature [`LossScaling::Auto`] scales the loss by τ.
    pub const AUTO_SCALING_BELOW: f64 = 0.05;

    fn default_temperature() -> f64 {
        0.05
    }

    /// Refuses τ ≤ 0.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(Error::InvalidSetting {
                name: "cosine-softmax temperature (τ)",
                value: self.temperature.to_string(),
                allowed: "a finite number > 0".into(),
            });
        }
        Ok(())
    }

    /// The factor the cross-entropy is multiplied by: τ or 1.
    pub fn loss_factor(&self) -> f64 {
        let scaled = match self.loss_scaling {
            LossScaling::Auto => self.temperature < Self::AUTO_SCALING_BELOW,
            LossScaling::Always => true,
            LossScaling::Never => false,
        };
        if scaled { self.temperature } else { 1.0 }
    }

    /// `cos(W_k, x) / τ + b_k`.
    ///
    /// # Shapes
    /// - `features`: `[batch, features]`
    /// - `weight`: `[features, classes]` (one column per class, burn's `Linear` layout)
    /// - `bias`: `[classes]`
    /// - output: `[batch, classes]`
    pub fn logits(&self, features: Tensor<2>, weight: Tensor<2>, bias: Tensor<1>) -> Tensor<2> {
        let x = normalize(features, 1);
        let w = normalize(weight, 0);
        x.matmul(w).mul_scalar(1.0 / self.temperature) + bias.unsqueeze::<2>()
    }

    /// The loss averaged over the batch, from the logits of [`CosineSoftmaxConfig::logits`].
    ///
    /// # Shapes
    /// - `logits`: `[batch, classes]`
    /// - `targets`: `[batch]`
    /// - output: `[1]`
    pub fn loss(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        let factor = self.loss_factor();
        let loss = SoftmaxConfig {}.loss(logits, targets);
        if factor == 1.0 { loss } else { loss.mul_scalar(factor) }
    }
}
