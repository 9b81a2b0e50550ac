//! Softmax cross-entropy (eq. 1): `L = −Σ_k t_k z_k + log Σ_k e^{z_k}`.

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::objective::functional::{cross_entropy, one_hot};

/// Softmax cross-entropy, the baseline. No hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftmaxConfig {}

impl SoftmaxConfig {
    /// Nothing to check.
    pub fn validate(&self) -> Result<()> {
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

    /// The loss against target distributions (rows summing to 1, e.g. Mixup's).
    ///
    /// # Shapes
    /// - `logits`, `targets`: `[batch, classes]`
    /// - output: `[1]`
    pub fn soft_loss(&self, logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
        cross_entropy(logits, targets)
    }
}
