//! Mixed precision (Micikevicius et al. 2018): convolutions compute in f16 on f16 copies of the
//! f32 master weights ([`crate::model::ConvDtype`]), while batch norm, the loss, the optimiser
//! state and the weight average stay in f32; the loss is scaled so that small gradients survive
//! f16, and a step whose gradients overflow is skipped.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{FloatDType, Tensor};
use serde::{Deserialize, Serialize};

use crate::model::Classifier;

/// Dynamic loss scaling of a mixed-precision run (Micikevicius et al. 2018): the loss is
/// multiplied by `scale` before the backward pass so that small gradients survive f16, and the
/// gradients are divided by it before the step. A step whose gradients overflow is skipped and
/// the scale halves; after [`LossScale::GROWTH_INTERVAL`] clean steps in a row it doubles.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossScale {
    /// The current scale.
    pub scale: f64,
    /// Clean steps since the scale last changed.
    pub clean_steps: u64,
    /// Steps skipped so far.
    pub skipped_steps: u64,
}

impl LossScale {
    /// Clean steps after which the scale doubles.
    pub const GROWTH_INTERVAL: u64 = 2000;

    /// A scale starting at `scale`.
    pub fn new(scale: f64) -> Self {
        Self {
            scale,
            clean_steps: 0,
            skipped_steps: 0,
        }
    }

    /// Updates the scale after a step whose gradients were `finite` (else it was skipped).
    pub fn after_step(&mut self, finite: bool) {
        if finite {
            self.clean_steps += 1;
            if self.clean_steps >= Self::GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.clean_steps = 0;
            }
        } else {
            self.scale = (self.scale / 2.0).max(1.0);
            self.clean_steps = 0;
            self.skipped_steps += 1;
        }
    }
}

/// Divides every gradient of `model` by `scale` and tells whether they are all finite (one
/// scalar read from the device: NaN and infinity survive a sum).
pub fn unscale_gradients(mut grads: GradientsParams, model: &Classifier, scale: f64) -> (GradientsParams, bool) {
    struct Unscale<'a> {
        grads: &'a mut GradientsParams,
        inverse: f64,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for Unscale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                let g = g.mul_scalar(self.inverse);
                let sum = g.clone().sum().cast(FloatDType::F32);
                self.total = Some(match self.total.take() {
                    Some(t) => t + sum,
                    None => sum,
                });
                self.grads.register::<D>(param.id, g);
            }
        }
    }
    let mut visitor = Unscale {
        grads: &mut grads,
        inverse: 1.0 / scale,
        total: None,
    };
    model.visit(&mut visitor);
    let finite = match visitor.total {
        Some(total) => total
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .map(|v| v.iter().all(|x| x.is_finite()))
            .unwrap_or(false),
        None => true,
    };
    (grads, finite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_halves_on_overflow_and_doubles_after_clean_steps() {
        let mut s = LossScale::new(1024.0);
        s.after_step(false);
        s.after_step(false);
        assert_eq!((s.scale, s.skipped_steps, s.clean_steps), (256.0, 2, 0));
        for _ in 0..LossScale::GROWTH_INTERVAL - 1 {
            s.after_step(true);
        }
        assert_eq!(s.scale, 256.0);
        s.after_step(true);
        assert_eq!((s.scale, s.clean_steps), (512.0, 0));
        // An overflow resets the count of clean steps; the scale never drops below 1.
        let mut low = LossScale::new(1.0);
        low.after_step(false);
        assert_eq!(low.scale, 1.0);
    }
}
