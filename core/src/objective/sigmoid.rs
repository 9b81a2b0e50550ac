//! Sigmoid cross-entropy (eq. 8): `L = Σ_k BCE(z_k − log K, t_k) = Σ_k [softplus(z'_k) − t_k z'_k]`
//! with `z' = z − log K`, summed over classes and averaged over examples.
//!
//! The paper initialises the final-layer biases to `−log K` so the initial output probabilities
//! are about `1/K`; the released code subtracts `log K` from the logits instead. The two agree
//! at initialisation and differ only by a constant shift of the bias afterwards; losslens uses
//! the shift, so every objective shares the same head initialisation (bias 0). The outputs are
//! the shifted logits `z'`, whose sigmoids are the predicted probabilities.

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::objective::functional::{one_hot, softplus};

/// Sigmoid (binary) cross-entropy, one-vs-rest over the classes. No hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigmoidConfig {}

impl SigmoidConfig {
    /// Nothing to check.
    pub fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// The shifted logits `z − log K` the loss and the accuracy use.
    ///
    /// # Shapes
    /// - `logits`, output: `[batch, classes]`
    pub fn outputs(&self, logits: Tensor<2>) -> Tensor<2> {
        let [_, classes] = logits.dims();
        logits.sub_scalar((classes as f64).ln())
    }

    /// The loss averaged over the batch.
    ///
    /// # Shapes
    /// - `logits`: `[batch, classes]` (unshifted)
    /// - `targets`: `[batch]`
    /// - output: `[1]`
    pub fn loss(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        let [_, classes] = logits.dims();
        let t = one_hot(targets, classes, &logits);
        self.soft_loss(logits, t)
    }

    /// The loss against per-class targets in [0, 1] (e.g. Mixup's mixed target vectors).
    ///
    /// # Shapes
    /// - `logits`: `[batch, classes]` (unshifted)
    /// - `targets`: `[batch, classes]`
    /// - output: `[1]`
    pub fn soft_loss(&self, logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
        let shifted = self.outputs(logits);
        (softplus(shifted.clone()) - shifted * targets).sum_dim(1).mean()
    }
}
