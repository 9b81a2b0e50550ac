//! Exponential moving average of a model's weights (Polyak averaging, as in Szegedy et al. 2016
//! and the paper), batch-norm running statistics included.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

use crate::model::Classifier;

/// The average `a ← d·a + (1 − d)·w` after every step, with the effective decay
/// `d = min(decay, (1 + t) / (10 + t))` at update `t` (TensorFlow's `num_updates` rule), so the
/// average tracks the weights closely early in training.
#[derive(Debug, Clone)]
pub struct Ema {
    decay: f64,
    updates: u64,
    average: Classifier,
}

impl Ema {
    /// An average starting at `model` (any device; the average lives on its inner, non-autodiff
    /// device), having seen `updates` updates.
    pub fn new(model: &Classifier, decay: f64, updates: u64) -> Self {
        Self {
            decay,
            updates,
            average: model.valid(),
        }
    }

    /// Updates seen.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// The averaged model (evaluation mode).
    pub fn model(&self) -> &Classifier {
        &self.average
    }

    /// Replaces the average (when resuming from a checkpoint).
    pub fn set_model(&mut self, model: Classifier) {
        self.average = model;
    }

    /// The decay used by the next update.
    pub fn next_decay(&self) -> f64 {
        let t = self.updates as f64;
        self.decay.min((1.0 + t) / (10.0 + t))
    }

    /// Folds the current weights of `model` into the average.
    pub fn update(&mut self, model: &Classifier) {
        let d = self.next_decay();
        let mut current = Collect::default();
        model.valid().visit(&mut current);
        let mut blend = Blend {
            path: Vec::new(),
            current: current.tensors,
            decay: d,
        };
        self.average = self.average.clone().map(&mut blend);
        self.updates += 1;
    }
}

/// Tensors are matched by their path in the module (`body.stages.0.blocks.1.bn2.gamma`), which
/// survives saving and loading; parameter ids need not.
#[derive(Default)]
struct Collect {
    path: Vec<String>,
    tensors: HashMap<String, Tensor<1>>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.tensors
            .insert(self.path.join("."), param.val().flatten::<1>(0, D - 1));
    }
}

struct Blend {
    path: Vec<String>,
    current: HashMap<String, Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(current) = self.current.remove(&self.path.join(".")) else {
            return param;
        };
        let d = self.decay;
        param.map(|average| {
            let shape = average.shape();
            average.mul_scalar(d) + current.reshape(shape).mul_scalar(1.0 - d)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Architecture, ModelConfig, Stem};
    use burn::tensor::Device;

    fn head(model: &Classifier) -> Vec<f32> {
        model.head.linear.weight.val().into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn average_follows_the_decay_rule() {
        let device = Device::flex();
        let config = ModelConfig::new(Architecture::Small, Stem::Cifar, 3);
        let (a, b) = (config.init(&device).unwrap(), config.init(&device).unwrap());
        let (wa, wb) = (head(&a), head(&b));
        // Update 0: d = min(0.9999, 1/10) = 0.1.
        let mut ema = Ema::new(&a, 0.9999, 0);
        assert!((ema.next_decay() - 0.1).abs() < 1e-12);
        ema.update(&b);
        for ((x, y), z) in wa.iter().zip(&wb).zip(head(ema.model())) {
            assert!((0.1 * x + 0.9 * y - z).abs() < 1e-6);
        }
        // Late in training the configured decay rules.
        let mut late = Ema::new(&a, 0.5, 1_000);
        late.update(&b);
        for ((x, y), z) in wa.iter().zip(&wb).zip(head(late.model())) {
            assert!((0.5 * x + 0.5 * y - z).abs() < 1e-6);
        }
        assert_eq!(late.updates(), 1_001);
        // Averaging a model with itself changes nothing (up to rounding).
        let mut same = Ema::new(&a, 0.9, 5);
        same.update(&a);
        for (x, z) in wa.iter().zip(head(same.model())) {
            assert!((x - z).abs() <= 1e-6 * x.abs().max(1e-3));
        }
    }
}
