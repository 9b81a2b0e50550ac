//! One epoch of optimiser steps: each step's images are cropped and augmented on the device,
//! the objective's loss is differentiated and SGD steps, on one device or split over several
//! (data parallel), and the average of the weights follows.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, MultiGradientsParams};
use burn::tensor::{Device, FloatDType, Int, Tensor, TensorData};

use crate::data::ImageSet;
use crate::data::augment::{ChannelStats, Crop, batch, crop_pixels, train_crop, whole};
use crate::data::autoaugment::Policy;
use crate::data::mixup::MixupDraw;
use crate::error::Result;
use crate::model::inception::InceptionAux;
use crate::model::{Classifier, ConvDtype, Head};
use crate::objective::{Objective, ObjectiveOutput};
use crate::rng::{SplitMix64, stream};
use crate::train::collective::{Collective, all_reduce_step, shard_of};
use crate::train::data::streams;
use crate::train::event::Event;
use crate::train::mixed::unscale_gradients;
use crate::train::setup::{Plan, TrainState};

/// What an epoch's steps add up to, still on the device (read only at checkpoints).
pub(crate) struct EpochTotals {
    /// Sum of the steps' mean losses.
    pub loss_sum: Tensor<1>,
    /// Correctly classified training images.
    pub correct: Tensor<1, Int>,
    /// Steps whose loss and accuracy count (all but those skipped for an overflow).
    pub counted_steps: usize,
    /// Steps skipped because a gradient overflowed (mixed precision).
    pub skipped_steps: u64,
    /// Step size of the last step.
    pub learning_rate: f64,
    /// Wall-clock seconds of the steps.
    pub seconds: f64,
    /// Seconds of the first step, when this epoch is the first the process runs.
    pub first_step_seconds: Option<f64>,
}

/// The devices and processes a step's batch is split between.
#[derive(Clone, Copy)]
pub(crate) struct Parallel<'a> {
    /// More devices of this process (each step's batch split between them and the main device).
    pub replicas: &'a [Device],
    /// Other processes: this one computes its shard of each batch, the gradients are summed.
    pub collective: Option<&'a dyn Collective>,
}

/// Runs the steps of epoch `epoch` (from 1) on `device`, and on the replicas and processes of
/// `parallel` too when there are any (each step's batch split between them; batch-norm
/// statistics per device, as in PyTorch's DDP without SyncBatchNorm). The state moves through
/// the steps (so the optimiser may update weights that nothing else holds in place) and comes
/// back with the totals.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_epoch(
    mut state: TrainState,
    plan: &Plan,
    set: &ImageSet,
    epoch: usize,
    first: bool,
    device: &Device,
    parallel: Parallel,
    observer: &mut dyn FnMut(Event),
) -> Result<(TrainState, EpochTotals)> {
    let started = Instant::now();
    let seed = plan.config.seed;
    let order = SplitMix64::new(stream(seed, streams::ORDER, epoch as u64)).permutation(set.len());
    let mut crop_rng = SplitMix64::new(stream(seed, streams::CROPS, epoch as u64));
    let context = StepContext {
        set,
        objective: &plan.objective,
        stats: &plan.stats,
        image_size: plan.image_size,
        width: plan.width,
        conv_dtype: plan.mixed.then_some(FloatDType::F16),
    };
    let mut totals = EpochTotals {
        loss_sum: Tensor::<1>::zeros([1], device),
        correct: Tensor::<1, Int>::zeros([1], device),
        counted_steps: 0,
        skipped_steps: 0,
        learning_rate: 0.0,
        seconds: 0.0,
        first_step_seconds: None,
    };
    let batch_size = plan.batch_size;
    for s in 0..plan.steps_per_epoch {
        let indices = &order[s * batch_size..(s + 1) * batch_size];
        let crops: Vec<Crop> = indices
            .iter()
            .map(|&i| {
                let [h, w] = set.size(i);
                train_crop(&plan.augmentation, h, w, plan.image_size, &mut crop_rng)
            })
            .collect();
        // Dropout masks come from the run's own generator, not the device's, so they are the
        // same on every device and for a resumed run.
        let mask: Option<Vec<f32>> = plan.keep_prob.map(|keep| {
            let mut rng = SplitMix64::new(stream(seed, streams::DROPOUT, state.progress.step as u64));
            (0..indices.len() * plan.width)
                .map(|_| if rng.uniform() < keep { 1.0 } else { 0.0 })
                .collect()
        });
        // AutoAugment acts on each crop's uint8 values: the crops are resampled and augmented
        // on the host (every core), and the device reads them whole.
        let augmented = plan.config.autoaugment.map(|policy| {
            let step = stream(seed, streams::AUTOAUGMENT, state.progress.step as u64);
            autoaugmented(set, indices, &crops, plan.image_size, policy, step)
        });
        let mixing = plan.config.mixup.map(|mixup| {
            let mut rng = SplitMix64::new(stream(seed, streams::MIXUP, state.progress.step as u64));
            mixup.draw(&mut rng, indices.len())
        });
        let shard = Shard {
            indices,
            crops: &crops,
            augmented: augmented.as_ref().map(|set| (set, 0)),
            mask: mask.as_deref(),
            mixing: mixing.as_ref(),
            weight: 1.0,
        };
        totals.learning_rate = plan.schedule.rate(state.progress.step);
        let (next, outcome) = step(state, &context, &shard, totals.learning_rate, device, parallel)?;
        state = next;
        if first && s == 0 {
            // The first step of the process: wait for the device, so that the time holds the
            // kernels' compilation and tuning.
            let _ = outcome.loss.clone().into_data();
            totals.first_step_seconds = Some(started.elapsed().as_secs_f64());
        }
        if outcome.applied {
            totals.loss_sum = totals.loss_sum + outcome.loss;
            totals.correct = totals.correct + outcome.hits;
            totals.counted_steps += 1;
        } else {
            totals.skipped_steps += 1;
        }
        if plan.config.ema_decay > 0.0 {
            state.ema.update(&state.model);
        }
        state.progress.step += 1;
        observer(Event::Step {
            epoch,
            step: s + 1,
            steps_per_epoch: plan.steps_per_epoch,
            batch_size,
        });
    }
    totals.seconds = started.elapsed().as_secs_f64();
    Ok((state, totals))
}

/// What one step did.
struct StepOutcome {
    /// The batch's mean loss (unscaled), on the main device.
    loss: Tensor<1>,
    /// Its correctly classified images.
    hits: Tensor<1, Int>,
    /// Whether the weights were updated (a mixed-precision step whose gradients overflowed is
    /// skipped).
    applied: bool,
}

/// One optimiser step on the whole batch `batch` at step size `lr`: the new state and what the
/// step did.
fn step(
    mut state: TrainState,
    context: &StepContext,
    batch: &Shard,
    lr: f64,
    device: &Device,
    parallel: Parallel,
) -> Result<(TrainState, StepOutcome)> {
    if let Some(scale) = state.progress.loss_scale {
        // Mixed precision: the loss times the scale goes backward, the gradients come back
        // divided by it, and a step whose gradients overflowed is skipped.
        let (loss, hits, grads) = batch.run(&state.model, &state.autodiff, context, scale.scale);
        let (grads, finite) = unscale_gradients(grads, &state.model, scale.scale);
        if finite {
            state.model = state.optimizer.step(lr, state.model, grads);
        }
        if let Some(s) = state.progress.loss_scale.as_mut() {
            s.after_step(finite);
        }
        let outcome = StepOutcome {
            loss,
            hits,
            applied: finite,
        };
        return Ok((state, outcome));
    }
    if parallel.replicas.is_empty() {
        let (loss, hits, grads) = match parallel.collective {
            // Across processes: this process's shard, then the sums of every process's
            // gradients, losses and counts, so every process takes the same step.
            Some(collective) => {
                let n = batch.indices.len();
                let (lo, hi) = shard_of(n, collective.rank(), collective.size());
                let mixing = batch.mixing.map(|m| m.restricted(lo, hi));
                let shard = batch.part(lo, hi, context.width, mixing.as_ref());
                let (loss, hits, grads) = shard.run(&state.model, &state.autodiff, context, 1.0);
                let (grads, loss, hits) = all_reduce_step(grads, &state.model, loss, hits, collective, device)?;
                (loss, hits, grads)
            }
            None => batch.run(&state.model, &state.autodiff, context, 1.0),
        };
        state.model = state.optimizer.step(lr, state.model, grads);
        let outcome = StepOutcome {
            loss,
            hits,
            applied: true,
        };
        return Ok((state, outcome));
    }
    // Data parallel: one shard of the batch per device, each loss weighted by its share so the
    // summed gradients are the whole batch's mean gradient; burn accumulates each parameter's
    // gradients on one device and steps there.
    let devices: Vec<Device> = std::iter::once(device.clone())
        .chain(parallel.replicas.iter().cloned())
        .collect();
    let n = batch.indices.len();
    let parts = devices.len().min(n);
    let mut multi = MultiGradientsParams::default();
    let mut loss_sum = Tensor::<1>::zeros([1], device);
    let mut correct = Tensor::<1, Int>::zeros([1], device);
    for (d, dev) in devices.iter().take(parts).enumerate() {
        let (lo, hi) = shard_of(n, d, parts);
        let dev_ad = dev.clone().autodiff();
        let replica = state.model.clone().fork(&dev_ad);
        let mixing = batch.mixing.map(|m| m.restricted(lo, hi));
        let shard = batch.part(lo, hi, context.width, mixing.as_ref());
        let (loss, hits, grads) = shard.run(&replica, &dev_ad, context, 1.0);
        loss_sum = loss_sum + loss.to_device(device);
        correct = correct + hits.to_device(device);
        multi.grads.push((grads, dev.clone()));
    }
    state.model = state.optimizer.step_multi(lr, state.model, multi).fork(&state.autodiff);
    let outcome = StepOutcome {
        loss: loss_sum,
        hits: correct,
        applied: true,
    };
    Ok((state, outcome))
}

/// What every shard of every step shares.
struct StepContext<'a> {
    set: &'a ImageSet,
    objective: &'a Objective,
    stats: &'a ChannelStats,
    image_size: usize,
    width: usize,
    /// The convolutions' dtype (f16 under mixed precision).
    conv_dtype: ConvDtype,
}

/// Part of a batch: its images, crops, dropout mask, Mixup pairs and share of the batch.
struct Shard<'a> {
    indices: &'a [usize],
    crops: &'a [Crop],
    /// The images already cropped and augmented on the host (AutoAugment): the set of the
    /// whole batch and the position of the shard's first image in it.
    augmented: Option<(&'a ImageSet, usize)>,
    mask: Option<&'a [f32]>,
    /// Mixup's λ and partners within the shard.
    mixing: Option<&'a MixupDraw>,
    weight: f64,
}

impl Shard<'_> {
    /// Images `lo..hi` of this whole batch (its weight their share of it), with `mixing` the
    /// batch's Mixup pairs restricted to them.
    fn part<'b>(&'b self, lo: usize, hi: usize, width: usize, mixing: Option<&'b MixupDraw>) -> Shard<'b> {
        Shard {
            indices: &self.indices[lo..hi],
            crops: &self.crops[lo..hi],
            augmented: self.augmented.map(|(set, first)| (set, first + lo)),
            mask: self.mask.map(|m| &m[lo * width..hi * width]),
            mixing,
            weight: (hi - lo) as f64 / self.indices.len() as f64,
        }
    }

    /// Forward and backward on `device` (an autodiff device): the shard's weighted loss and
    /// correct count (on the inner device) and the gradients of the loss times `scale`.
    fn run(
        &self,
        model: &Classifier,
        device: &Device,
        c: &StepContext,
        scale: f64,
    ) -> (Tensor<1>, Tensor<1, Int>, GradientsParams) {
        let n = self.indices.len();
        let images = match self.augmented {
            Some((set, first)) => {
                let crops = vec![whole(c.image_size); n];
                let at: Vec<usize> = (first..first + n).collect();
                batch(set, &at, &crops, c.image_size, c.stats, device)
            }
            None => batch(c.set, self.indices, self.crops, c.image_size, c.stats, device),
        };
        let labels: Vec<usize> = self.indices.iter().map(|&i| c.set.labels[i]).collect();
        let mask = self
            .mask
            .map(|m| Tensor::<2>::from_data(TensorData::new(m.to_vec(), [n, c.width]), device));
        // The auxiliary classifier (Inception v3's, when on) adds its own loss under the same
        // objective and targets, without dropout, at its weight.
        let with_aux = |output: ObjectiveOutput,
                        aux: Option<Tensor<2>>,
                        loss: &dyn Fn(Tensor<2>, &Head) -> Tensor<1>| {
            match (aux, model.aux_head()) {
                (Some(features), Some(head)) => ObjectiveOutput {
                    loss: output.loss + loss(features, head).mul_scalar(InceptionAux::LOSS_WEIGHT),
                    ..output
                },
                _ => output,
            }
        };
        let (output, counted) = match self.mixing {
            None => {
                let targets = int_tensor(&labels, device);
                let (features, aux) = model.body.forward_train(images, c.conv_dtype);
                let counted = targets.clone().inner();
                let output = c
                    .objective
                    .forward_with_mask(features, &model.head, targets.clone(), mask);
                let output = with_aux(output, aux, &|f, head| {
                    c.objective.forward_with_mask(f, head, targets.clone(), None).loss
                });
                (output, counted)
            }
            Some(mixing) => {
                let targets = mixing.targets(&labels, model.head.classes(), device);
                let (features, aux) = model.body.forward_train(mixing.images(images), c.conv_dtype);
                let output = c.objective.forward_soft(features, &model.head, targets.clone(), mask);
                let output = with_aux(output, aux, &|f, head| {
                    c.objective.forward_soft(f, head, targets.clone(), None).loss
                });
                (output, int_tensor(&mixing.dominant(&labels), device).inner())
            }
        };
        let loss = if self.weight == 1.0 {
            output.loss
        } else {
            output.loss.mul_scalar(self.weight)
        };
        let predicted = output.outputs.inner().argmax(1).reshape([n]);
        let hits = predicted.equal(counted).int().sum();
        let scaled = if scale == 1.0 {
            loss.clone()
        } else {
            loss.clone().mul_scalar(scale)
        };
        let grads = GradientsParams::from_grads(scaled.backward(), model);
        (loss.inner(), hits, grads)
    }
}

/// Class indices as an integer tensor.
///
/// # Shapes
/// - output: `[labels.len()]`
fn int_tensor(labels: &[usize], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    Tensor::<1, Int>::from_data(TensorData::new(values, [labels.len()]), device)
}

/// The crops of a batch resampled to `size × size` and augmented by `policy`, each image from
/// its own stream of the step's seed, in parallel: a set of `size × size` images in batch order
/// (labels as in `set`).
fn autoaugmented(
    set: &ImageSet,
    indices: &[usize],
    crops: &[Crop],
    size: usize,
    policy: Policy,
    seed: u64,
) -> ImageSet {
    use rayon::prelude::*;
    let images: Vec<Vec<u8>> = indices
        .par_iter()
        .zip(crops)
        .enumerate()
        .map(|(j, (&i, crop))| {
            let mut pixels = crop_pixels(set, i, crop, size);
            let mut rng = SplitMix64::new(stream(seed, j as u64, 0));
            policy.apply(&mut pixels, [size, size, set.channels], &mut rng);
            pixels
        })
        .collect();
    ImageSet::uniform(
        [size, size],
        set.channels,
        images.concat(),
        indices.iter().map(|&i| set.labels[i]).collect(),
        set.classes.clone(),
        format!("{} (AutoAugment)", set.source),
    )
}
