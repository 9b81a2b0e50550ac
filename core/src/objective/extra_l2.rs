//! Extra final-layer L² regularisation (eq. 4): `L = CE(z, t) + λ ‖W‖²_F / 2`, on the final
//! layer's weights only (not its bias), on top of the weight decay every layer gets.
//!
//! The paper writes `λ ‖W‖²_F`; the released code uses `λ · l2_loss(W) = λ ‖W‖²_F / 2`, and the
//! tuned `λ` values of Table A.1 go with that convention, which losslens follows.

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::objective::softmax::SoftmaxConfig;

/// Softmax cross-entropy plus extra L² on the final layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraL2Config {
    /// λ_final, the strength of the extra penalty, ≥ 0 (per batch-averaged loss). Default 8e-4,
    /// the paper's ImageNet value (Table A.1 searched 4e-4–1e-3).
    #[serde(default = "ExtraL2Config::default_lambda")]
    pub lambda: f64,
}

impl Default for ExtraL2Config {
    fn default() -> Self {
        Self {
            lambda: Self::default_lambda(),
        }
    }
}

impl ExtraL2Config {
    fn default_lambda() -> f64 {
        8e-4
    }

    /// Refuses a negative or non-finite λ.
    pub fn validate(&self) -> Result<()> {
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(Error::InvalidSetting {
                name: "extra-l2 lambda",
                value: self.lambda.to_string(),
                allowed: "a finite number ≥ 0".into(),
            });
        }
        Ok(())
    }

    /// The loss averaged over the batch, plus the penalty.
    ///
    /// # Shapes
    /// - `logits`: `[batch, classes]`
    /// - `targets`: `[batch]`
    /// - `weight`: the final layer's weight, any 2-D layout
    /// - output: `[1]`
    pub fn loss(&self, logits: Tensor<2>, targets: Tensor<1, Int>, weight: Tensor<2>) -> Tensor<1> {
        SoftmaxConfig {}.loss(logits, targets) + self.penalty(weight)
    }

    /// The penalty alone, `λ ‖W‖²_F / 2` (what a combination adds to its loss).
    ///
    /// # Shapes
    /// - `weight`: the final layer's weight, any 2-D layout
    /// - output: `[1]`
    pub fn penalty(&self, weight: Tensor<2>) -> Tensor<1> {
        weight.powi_scalar(2).sum().mul_scalar(self.lambda / 2.0)
    }
}
