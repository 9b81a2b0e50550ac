//! Dropout on the penultimate layer (eq. 3): during training the features `x` are replaced by
//! `x̃ = x ⊙ ξ / ρ` with `ξ_i ~ Bernoulli(ρ)` before the final layer, and the loss is softmax
//! cross-entropy on `z̃ = W x̃ + b`. At evaluation `x` is used as is.

use burn::tensor::{Distribution, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Inverted dropout before the final layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropoutConfig {
    /// ρ, the probability of keeping each penultimate feature, in `(0, 1]`. Default 0.7, the
    /// paper's ImageNet value (Table A.1 searched 0.6–0.85). `1` disables dropout.
    #[serde(default = "DropoutConfig::default_keep_prob", alias = "rho")]
    pub keep_prob: f64,
}

impl Default for DropoutConfig {
    fn default() -> Self {
        Self {
            keep_prob: Self::default_keep_prob(),
        }
    }
}

impl DropoutConfig {
    fn default_keep_prob() -> f64 {
        0.7
    }

    /// Refuses ρ outside `(0, 1]`.
    pub fn validate(&self) -> Result<()> {
        if !(self.keep_prob.is_finite() && self.keep_prob > 0.0 && self.keep_prob <= 1.0) {
            return Err(Error::InvalidSetting {
                name: "dropout keep_prob (ρ)",
                value: self.keep_prob.to_string(),
                allowed: "a number in (0, 1]".into(),
            });
        }
        Ok(())
    }

    /// A fresh Bernoulli(ρ) keep-mask of 0s and 1s, drawn from the device's generator.
    ///
    /// # Shapes
    /// - `features`, output: `[batch, features]`
    pub fn sample_mask(&self, features: &Tensor<2>) -> Tensor<2> {
        features.random_like(Distribution::Bernoulli(self.keep_prob))
    }

    /// `x ⊙ mask / ρ`.
    ///
    /// # Shapes
    /// - `features`, `mask`, output: `[batch, features]`
    pub fn apply(&self, features: Tensor<2>, mask: Tensor<2>) -> Tensor<2> {
        (features * mask).mul_scalar(1.0 / self.keep_prob)
    }
}
