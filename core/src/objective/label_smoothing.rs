//! Label smoothing (eq. 2): cross-entropy against `t' = (1 − α) t + α/K`, the loss multiplied
//! by `1/(1 − α)` so the gradient with respect to the correct-class logit keeps its scale.

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::objective::functional::{cross_entropy, one_hot};

/// Label smoothing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSmoothingConfig {
    /// α, the weight of the uniform distribution in the targets, in `[0, 1)`. Default 0.1 (the
    /// paper's ImageNet value; Table A.1 searched 0.08–0.12).
    #[serde(default = "LabelSmoothingConfig::default_alpha")]
    pub alpha: f64,
}

impl Default for LabelSmoothingConfig {
    fn default() -> Self {
        Self {
            alpha: Self::default_alpha(),
        }
    }
}

impl LabelSmoothingConfig {
    fn default_alpha() -> f64 {
        0.1
    }

    /// Refuses α outside `[0, 1)`.
    pub fn validate(&self) -> Result<()> {
        if !(self.alpha.is_finite() && (0.0..1.0).contains(&self.alpha)) {
            return Err(Error::InvalidSetting {
                name: "label-smoothing alpha",
                value: self.alpha.to_string(),
                allowed: "a number in [0, 1)".into(),
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

    /// The loss against target distributions (e.g. Mixup's), smoothed the same way:
    /// `(1 − α) t + α/K`.
    ///
    /// # Shapes
    /// - `logits`, `targets`: `[batch, classes]`
    /// - output: `[1]`
    pub fn soft_loss(&self, logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
        let [_, classes] = logits.dims();
        let alpha = self.alpha;
        let smoothed = targets.mul_scalar(1.0 - alpha).add_scalar(alpha / classes as f64);
        cross_entropy(logits, smoothed).mul_scalar(1.0 / (1.0 - alpha))
    }
}
