//! Logit normalisation (eq. 6): softmax cross-entropy on `z / (τ ‖z‖)`.
//!
//! `‖z‖` is the safe norm `sqrt(‖z‖² + ε²)` ([`NORM_EPS_SQUARED`]), so all-zero logits give
//! the uniform distribution and finite gradients.

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
#[cfg(doc)]
use crate::objective::functional::NORM_EPS_SQUARED;
use crate::objective::functional::normalize;
use crate::objective::softmax::SoftmaxConfig;

/// Softmax cross-entropy on L²-normalised logits with a temperature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogitNormConfig {
    /// τ, the temperature, > 0: the normalised logits have norm `1/τ`. Default 0.04, the value of
    /// the authors' released checkpoints (`LOSS_HYPERPARAMETERS` of their code); the paper gives
    /// only the range it searched, {0.03, 0.04, 0.05, 0.06} (Table A.1), and its holdout accuracy
    /// peaks there too (Table C.4: 80.4 % at 0.04, 80.3 % at the others).
    #[serde(default = "LogitNormConfig::default_temperature", alias = "tau")]
    pub temperature: f64,
}

impl Default for LogitNormConfig {
    fn default() -> Self {
        Self {
            temperature: Self::default_temperature(),
        }
    }
}

impl LogitNormConfig {
    fn default_temperature() -> f64 {
        0.04
    }

    /// Refuses τ ≤ 0.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(Error::InvalidSetting {
                name: "logit-norm temperature (τ)",
                value: self.temperature.to_string(),
                allowed: "a finite number > 0".into(),
            });
        }
        Ok(())
    }

    /// `z / (τ ‖z‖)`, the logits the loss and the accuracy use.
    ///
    /// # Shapes
    /// - `logits`, output: `[batch, classes]`
    pub fn outputs(&self, logits: Tensor<2>) -> Tensor<2> {
        normalize(logits, 1).mul_scalar(1.0 / self.temperature)
    }

    /// The loss averaged over the batch.
    ///
    /// # Shapes
    /// - `logits`: `[batch, classes]` (unnormalised)
    /// - `targets`: `[batch]`
    /// - output: `[1]`
    pub fn loss(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        SoftmaxConfig {}.loss(self.outputs(logits), targets)
    }
}
