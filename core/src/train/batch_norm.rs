//! A network's batch-norm statistics measured on a set of images: the moments every batch norm
//! sees when the images pass through the network in training mode, averaged over batches. This
//! is how the paper's control network for Fig. 2a is made: a network at initialisation "where
//! batch norm moments have been computed on the training set".

use burn::module::Module;
use burn::tensor::Device;

use crate::data::ImageSet;
use crate::error::{Error, Result, invalid_setting};
use crate::inference::InputSpec;
use crate::model::{Classifier, ModelConfig};
use crate::rng::{SplitMix64, stream};
use crate::train::data::streams;

/// The freshly initialised network of a run with `seed`: the weights its training started from.
///
/// burn's devices keep one random generator per process, so seeding it and drawing the weights
/// happen under one process-wide lock: networks initialised at once on several threads (the
/// ranks of an in-process group, runs in parallel tests) each get exactly their seed's draws.
pub fn initial_network(model: &ModelConfig, seed: u64, device: &Device) -> Result<Classifier> {
    static SEEDED_INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = SEEDED_INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(stream(seed, streams::INIT, 0));
    model.init(device)
}

/// `model` with the running mean and variance of every batch norm replaced by the moments of its
/// inputs over `set`: the images (evaluation crops, in an order shuffled by `seed`) pass through
/// the network in training mode in batches of `batch_size`, and each statistic is the average of
/// the batches' (burn's training-mode) moments. The weights do not change.
///
/// # Errors
/// An empty set or a zero batch size.
pub fn estimate_batch_norm(
    model: Classifier,
    set: &ImageSet,
    input: &InputSpec,
    batch_size: usize,
    seed: u64,
    device: &Device,
) -> Result<Classifier> {
    if batch_size == 0 {
        return invalid_setting("batch_size", 0, "at least 1");
    }
    if set.len() < 2 {
        return Err(Error::TooFewExamples {
            analysis: "batch-norm statistics",
            needed: 2,
            found: set.len(),
        });
    }
    let autodiff = device.clone().autodiff();
    let mut model = model.fork(&autodiff).train();
    let defaults: Vec<f64> = model.body.batch_norms_mut().iter().map(|bn| bn.momentum).collect();
    let order = SplitMix64::new(seed).permutation(set.len());
    // Batches whose sizes differ by at most one, of at least two images (a variance needs two).
    let sizes = crate::analysis::minibatch_cka::batch_sizes(set.len(), batch_size.max(2));
    let mut start = 0;
    for (k, &m) in sizes.iter().enumerate() {
        let indices = &order[start..start + m];
        start += m;
        // Momentum 1/(k+1): after batch k the running value is the mean of the k+1 batches'.
        for bn in model.body.batch_norms_mut() {
            bn.momentum = 1.0 / (k + 1) as f64;
        }
        let images = input.eval_batch(set, indices, &autodiff);
        // The forward pass updates the running statistics; nothing is trained.
        let _ = model.body.forward(images);
    }
    for (bn, momentum) in model.body.batch_norms_mut().into_iter().zip(defaults) {
        bn.momentum = momentum;
    }
    Ok(model.valid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::augment::ChannelStats;
    use crate::data::{ProceduralConfig, procedural};
    use crate::model::{Architecture, Stem};
    use burn::tensor::Tensor;

    #[test]
    fn the_stem_statistics_are_the_moments_of_its_inputs() {
        let device = Device::flex();
        let set = procedural(&ProceduralConfig {
            classes: 3,
            per_class: 8,
            size: 16,
            seed: 2,
            noise: 0.2,
        })
        .unwrap();
        let input = InputSpec {
            image_size: 16,
            normalization: ChannelStats {
                mean: vec![0.5; 3],
                std: vec![0.25; 3],
            },
        };
        let config = ModelConfig::new(Architecture::Small, Stem::Cifar, 3);
        let model = initial_network(&config, 0, &device).unwrap();
        let stem_conv = model.body.resnet().unwrap().stem.conv.clone();
        // 24 images in batches of 6: four equal batches, so the mean of the batch means is the
        // mean over every image and position.
        let estimated = estimate_batch_norm(model, &set, &input, 6, 1, &device).unwrap();
        let all: Vec<usize> = (0..set.len()).collect();
        let images = input.eval_batch(&set, &all, &device);
        let conv: Tensor<4> = stem_conv.forward(images); // [24, 32, 16, 16]
        let want = conv.mean_dim(3).mean_dim(2).mean_dim(0).reshape([32]);
        let got = estimated.body.resnet().unwrap().stem.bn.running_mean.value();
        let (want, got) = (
            want.into_data().try_to_vec::<f32>().unwrap(),
            got.into_data().try_to_vec::<f32>().unwrap(),
        );
        for (c, (w, g)) in want.iter().zip(&got).enumerate() {
            assert!((w - g).abs() < 1e-4 * (1.0 + w.abs()), "channel {c}: {g} vs {w}");
        }
        let var = estimated
            .body
            .resnet()
            .unwrap()
            .stem
            .bn
            .running_var
            .value()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(var.iter().all(|v| v.is_finite() && *v > 0.0));
        // The fresh network's statistics were 0 and 1: they changed.
        assert!(got.iter().any(|v| v.abs() > 1e-3));
    }
}
