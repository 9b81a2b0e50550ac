//! Squared error (eq. 9, after Hui & Belkin 2021):
//! `L = scale · (κ (z_c − M)² + Σ_{k≠c} z_k²)` for an example of class `c`, averaged over the
//! batch.
//!
//! The paper's eq. 9 also divides by `K`; the released code does not, and its tuned
//! `κ = 9, M = 60, scale = 10` go with the undivided form, which losslens follows.

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::objective::functional::one_hot;

/// Squared error between the logits and scaled one-hot targets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SquaredErrorConfig {
    /// κ, the weight of the correct class's term relative to the others, ≥ 0. Default 9.
    #[serde(default = "SquaredErrorConfig::default_kappa")]
    pub kappa: f64,
    /// M, the target value of the correct-class logit. Default 60.
    #[serde(default = "SquaredErrorConfig::default_m")]
    pub m: f64,
    /// The factor the whole loss is multiplied by, > 0. Default 10.
    #[serde(default = "SquaredErrorConfig::default_scale")]
    pub scale: f64,
}

impl Default for SquaredErrorConfig {
    fn default() -> Self {
        Self {
            kappa: Self::default_kappa(),
            m: Self::default_m(),
            scale: Self::default_scale(),
        }
    }
}

impl SquaredErrorConfig {
    fn default_kappa() -> f64 {
        9.0
    }
    fn default_m() -> f64 {
        60.0
    }
    fn default_scale() -> f64 {
        10.0
    }

    /// Refuses a negative κ, a non-positive scale and non-finite values.
    pub fn validate(&self) -> Result<()> {
        if !(self.kappa.is_finite() && self.kappa >= 0.0) {
            return Err(Error::InvalidSetting {
                name: "squared-error kappa (κ)",
                value: self.kappa.to_string(),
                allowed: "a finite number ≥ 0".into(),
            });
        }
        if !self.m.is_finite() {
            return Err(Error::InvalidSetting {
                name: "squared-error m (M)",
                value: self.m.to_string(),
                allowed: "a finite number".into(),
            });
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(Error::InvalidSetting {
                name: "squared-error scale",
                value: self.scale.to_string(),
                allowed: "a finite number > 0".into(),
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
        let [_, classes] = logits.dims();
        let t = one_hot(targets, classes, &logits);
        self.soft_loss(logits, t)
    }

    /// The loss against target vectors in [0, 1] (e.g. Mixup's): weight `1 + (κ − 1) t` and
    /// target `M t` per element, which for one-hot `t` is the loss above.
    ///
    /// # Shapes
    /// - `logits`, `targets`: `[batch, classes]`
    /// - output: `[1]`
    pub fn soft_loss(&self, logits: Tensor<2>, t: Tensor<2>) -> Tensor<1> {
        // Per element: κ t (z − M)² + (1 − t) z², i.e. weight w = 1 + (κ − 1) t, target M t.
        let weight = t.clone().mul_scalar(self.kappa - 1.0).add_scalar(1.0);
        let residual = logits - t.mul_scalar(self.m);
        (weight * residual.powi_scalar(2))
            .sum_dim(1)
            .mean()
            .mul_scalar(self.scale)
    }
}
