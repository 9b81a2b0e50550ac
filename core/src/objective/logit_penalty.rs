//! Logit penalty (eq. 5): `L = CE(z, t) + β ‖z‖² / 2`, the penalty averaged over the batch like
//! the loss.
//!
//! The paper writes `β ‖z‖²`; the released code uses `β · l2_loss(z) = β ‖z‖² / 2`, and the
//! tuned `β` values of Table A.1 go with that convention, which losslens follows.

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::objective::softmax::SoftmaxConfig;

/// Softmax cross-entropy plus an L² penalty on the logits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogitPenaltyConfig {
    /// β, the strength of the penalty, ≥ 0. Default 6e-4, the paper's ImageNet value (Table A.1
    /// searched 5e-5–8e-4).
    #[serde(default = "LogitPenaltyConfig::default_beta")]
    pub beta: f64,
}

impl Default for LogitPenaltyConfig {
    fn default() -> Self {
        Self {
            beta: Self::default_beta(),
        }
    }
}

impl LogitPenaltyConfig {
    fn default_beta() -> f64 {
        6e-4
    }

    /// Refuses a negative or non-finite β.
    pub fn validate(&self) -> Result<()> {
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(Error::InvalidSetting {
                name: "logit-penalty beta",
                value: self.beta.to_string(),
                allowed: "a finite number ≥ 0".into(),
            });
        }
        Ok(())
    }

    /// The loss averaged over the batch.
    ///
    /// # Shapes
    /// - `logits`: `[batch, classes]`
    /// - `targets`: `[batch]`
    /// - output: `[1]`
    pub fn loss(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        let penalty = self.penalty(logits.clone());
        SoftmaxConfig {}.loss(logits, targets) + penalty
    }

    /// The penalty alone, `β ‖z‖² / 2` averaged over the batch (what a combination adds to its
    /// loss).
    ///
    /// # Shapes
    /// - `logits`: `[batch, classes]`
    /// - output: `[1]`
    pub fn penalty(&self, logits: Tensor<2>) -> Tensor<1> {
        logits.powi_scalar(2).sum_dim(1).mean().mul_scalar(self.beta / 2.0)
    }
}
