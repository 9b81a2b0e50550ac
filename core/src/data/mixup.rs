//! Mixup (Zhang et al. 2018), the paper's Tables C.5, C.6 and E.3: each training batch is
//! replaced by convex combinations of its images and of their targets,
//! `x̃_i = λ x_i + (1 − λ) x_{π(i)}` and `t̃_i = λ t_i + (1 − λ) t_{π(i)}`, with one
//! `λ ~ Beta(α, α)` per batch and `π` a random permutation of the batch.
//!
//! Every objective trains on the mixed target vectors: cross-entropy losses (softmax, label
//! smoothing, cosine softmax, logit normalisation) against the mixed distribution, sigmoid
//! cross-entropy against the mixed per-class targets, squared error towards the mixed scaled
//! targets with the mixed weights (see [`crate::objective::Objective::forward_soft`]).
//!
//! `λ` and `π` come from the run's own generator, one stream per step, so a resumed run mixes
//! exactly as an uninterrupted one. With several devices each device mixes its own share of
//! the batch (as each process does in PyTorch's distributed training).

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid_setting};
use crate::rng::SplitMix64;

/// Mixup's setting.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixupConfig {
    /// α of `λ ~ Beta(α, α)`, > 0: small α mixes little (λ near 0 or 1), α = 1 draws λ
    /// uniformly. Default 0.2 (the paper chose α from {0.1, 0.2, 0.3, 0.4} on its holdout).
    #[serde(default = "MixupConfig::default_alpha")]
    pub alpha: f64,
}

impl Default for MixupConfig {
    fn default() -> Self {
        Self {
            alpha: Self::default_alpha(),
        }
    }
}

impl MixupConfig {
    fn default_alpha() -> f64 {
        0.2
    }

    /// Refuses α ≤ 0 and α that is not finite.
    pub fn validate(&self) -> Result<()> {
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return invalid_setting("mixup alpha", self.alpha, "a finite number > 0");
        }
        Ok(())
    }

    /// The mixing of a batch of `n`: `λ` then the partners `π`, both from `rng`.
    pub fn draw(&self, rng: &mut SplitMix64, n: usize) -> MixupDraw {
        let beta = Beta::new(self.alpha, self.alpha).expect("α was validated");
        let lambda: f64 = beta.sample(rng);
        MixupDraw {
            lambda,
            partner: rng.permutation(n),
        }
    }
}

/// One batch's mixing: the weight of each image and its partner's index.
#[derive(Debug, Clone, PartialEq)]
pub struct MixupDraw {
    /// λ, the weight of each image itself, in (0, 1).
    pub lambda: f64,
    /// `π(i)`: the image each image is mixed with.
    pub partner: Vec<usize>,
}

impl MixupDraw {
    /// `λ x + (1 − λ) x[π]`.
    ///
    /// # Shapes
    /// - `images`, output: `[batch, channels, height, width]`
    pub fn images(&self, images: Tensor<4>) -> Tensor<4> {
        let n = self.partner.len();
        let partners: Vec<i64> = self.partner.iter().map(|&p| p as i64).collect();
        let index = Tensor::<1, Int>::from_data(TensorData::new(partners, [n]), &images.device());
        let others = images.clone().select(0, index);
        images.mul_scalar(self.lambda) + others.mul_scalar(1.0 - self.lambda)
    }

    /// The mixed target distributions `λ e_y + (1 − λ) e_{y[π]}` of `labels`.
    ///
    /// # Shapes
    /// - output: `[batch, classes]`
    pub fn targets(&self, labels: &[usize], classes: usize, device: &Device) -> Tensor<2> {
        let n = labels.len();
        let mut t = vec![0.0f32; n * classes];
        for (i, &label) in labels.iter().enumerate() {
            t[i * classes + label] += self.lambda as f32;
            t[i * classes + labels[self.partner[i]]] += (1.0 - self.lambda) as f32;
        }
        Tensor::<2>::from_data(TensorData::new(t, [n, classes]), device)
    }

    /// The same mixing within the images `lo..hi` alone (one device's share of a batch): each
    /// image's partner is found by following `π` until it lands inside the range (the
    /// permutation `π` induces on the range), indices relative to `lo`.
    pub fn restricted(&self, lo: usize, hi: usize) -> MixupDraw {
        let partner = (lo..hi)
            .map(|i| {
                let mut j = self.partner[i];
                while !(lo..hi).contains(&j) {
                    j = self.partner[j];
                }
                j - lo
            })
            .collect();
        MixupDraw {
            lambda: self.lambda,
            partner,
        }
    }

    /// The label with the larger weight in each mixed image (the image's own where λ ≥ ½): what
    /// the training accuracy of a mixed batch is counted against.
    pub fn dominant(&self, labels: &[usize]) -> Vec<usize> {
        (0..labels.len())
            .map(|i| {
                if self.lambda >= 0.5 {
                    labels[i]
                } else {
                    labels[self.partner[i]]
                }
            })
            .collect()
    }
}
