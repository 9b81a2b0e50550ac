//! The training loop (Appendix A.1): SGD with Nesterov momentum, weight decay on weights only,
//! warm-up then decay, EMA evaluation, holdout early stopping, a checkpoint every epoch.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, MultiGradientsParams, SgdConfig};
use burn::tensor::{Bytes, Device, Int, Tensor, TensorData};

use crate::data::augment::{Augmentation, ChannelStats, Crop, batch, train_crop};
use crate::data::{ImageSet, Split};
use crate::error::{Error, Result, invalid_setting};
use crate::inference::{self, InputSpec, Pooling, Request};
use crate::model::{Classifier, ModelConfig, Stem};
use crate::objective::{Objective, ObjectiveConfig};
use crate::probe::split::{stratified_sample, stratified_split};
use crate::rng::SplitMix64;
use crate::train::config::TrainConfig;
use crate::train::ema::Ema;
use crate::train::run::{CheckpointState, EpochRecord, RUN_VERSION, RunDir, RunInfo, load_weights, weights_bytes};
use crate::train::schedule::Schedule;

/// How a call to [`train`] behaves besides the configuration.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue the run in the output folder from its last checkpoint (it must exist and hold
    /// the same configuration).
    pub resume: bool,
    /// Stop (cleanly) at the first checkpoint once this many epochs are done (every epoch has
    /// one unless [`TrainConfig::checkpoints`] spreads them).
    pub stop_after_epoch: Option<usize>,
    /// Folder for decoded-image caches of ImageFolder datasets; none decodes every time.
    pub cache_dir: Option<PathBuf>,
    /// More devices for data-parallel training: each step splits its batch between the main
    /// device and these (batch-norm statistics are per device, as in PyTorch's DDP without
    /// SyncBatchNorm). Empty: one device.
    pub replicas: Vec<Device>,
}

/// What the loop reports while it runs.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// The run starts (or resumes) at `start_epoch`.
    Start {
        /// The resolved configuration.
        config: &'a TrainConfig,
        /// The run information.
        info: &'a RunInfo,
        /// Steps per epoch.
        steps_per_epoch: usize,
        /// Epochs already done.
        start_epoch: usize,
    },
    /// A step finished.
    Step {
        /// Epoch, from 1.
        epoch: usize,
        /// Step within the epoch, from 1.
        step: usize,
        /// Steps per epoch.
        steps_per_epoch: usize,
        /// Images per step.
        batch_size: usize,
    },
    /// The holdout evaluation of an epoch starts.
    Evaluating {
        /// Epoch, from 1.
        epoch: usize,
    },
    /// An epoch finished and was checkpointed.
    Epoch(&'a EpochRecord),
}

/// The outcome of [`train`].
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// The run information (as saved in `run.json`).
    pub info: RunInfo,
    /// Every epoch's record.
    pub history: Vec<EpochRecord>,
}

/// The configuration with every unset option resolved against the training images (and the
/// pretrained run, if any): input size, stem, augmentation, normalisation, and epochs (from
/// `steps` when the run counts steps).
pub fn resolve(config: &TrainConfig, train: &ImageSet) -> Result<TrainConfig> {
    let base = match &config.pretrained {
        Some(path) => Some(pretrained_info(config, path)?),
        None => None,
    };
    resolve_from(config, train, base.as_ref())
}

/// [`resolve`] with the pretrained run's information already read.
fn resolve_from(config: &TrainConfig, train: &ImageSet, base: Option<&RunInfo>) -> Result<TrainConfig> {
    let stored = train.height.min(train.width);
    let image_size = config
        .image_size
        .or(base.map(|b| b.image_size))
        .unwrap_or(if stored >= 256 { 224 } else { stored });
    let stats = match (&config.normalization, base) {
        (crate::data::augment::Normalization::Dataset, Some(b)) => b.normalization.clone(),
        (n, _) => n.resolve(train)?,
    };
    let stem = config
        .stem
        .or(base.map(|b| b.model.stem))
        .unwrap_or(Stem::for_image_size(image_size));
    let epochs = match config.steps {
        Some(steps) => {
            let per_epoch = (train.len() / config.batch_size.min(train.len()).max(1)).max(1);
            steps.div_ceil(per_epoch)
        }
        None => config.epochs(),
    };
    Ok(TrainConfig {
        epochs: Some(epochs),
        steps: None,
        stem: Some(stem),
        image_size: Some(image_size),
        augmentation: Some(config.augmentation.unwrap_or(Augmentation::for_image_size(image_size))),
        normalization: crate::data::augment::Normalization::Custom {
            mean: stats.mean,
            std: stats.std,
        },
        ..config.clone()
    })
}

/// The run a configuration starts from, checked against it.
fn pretrained_info(config: &TrainConfig, path: &Path) -> Result<RunInfo> {
    let run = RunDir::new(path);
    if !run.exists() {
        return Err(Error::format(
            path,
            "`pretrained` names no run folder here (config.toml is missing)",
        ));
    }
    let info = run.info()?;
    if info.best_epoch.is_none() {
        return Err(Error::format(
            path,
            "the pretrained run has not finished an epoch yet, so it has no weights",
        ));
    }
    if info.model.architecture != config.model {
        return invalid_setting(
            "model",
            config.model,
            format!("the pretrained run's network, {}", info.model.architecture),
        );
    }
    if let Some(stem) = config.stem
        && stem != info.model.stem
    {
        return invalid_setting(
            "stem",
            stem.name(),
            format!("the pretrained run's stem, {}", info.model.stem.name()),
        );
    }
    Ok(info)
}

/// Whether epoch `epoch` of `epochs` ends with a holdout evaluation and a checkpoint: every
/// epoch, or `checkpoints` of them spread evenly (always the last).
fn checkpointed(epoch: usize, epochs: usize, checkpoints: Option<usize>) -> bool {
    match checkpoints {
        None => true,
        Some(c) => epoch == epochs || epoch * c / epochs > (epoch - 1) * c / epochs,
    }
}

/// Seed of a stream tied to `(seed, a, b)`.
fn stream(seed: u64, a: u64, b: u64) -> u64 {
    let mut r = SplitMix64::new(seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
    r.next_u64()
}

/// Trains a network as `config` says, writing the run to `out` ([`RunDir`]).
pub fn train(
    config: &TrainConfig,
    out: &Path,
    options: &TrainOptions,
    device: &Device,
    observer: &mut dyn FnMut(Event),
) -> Result<TrainSummary> {
    config.validate()?;
    let run = RunDir::new(out);
    let checkpoint = if options.resume {
        if !run.exists() {
            return Err(Error::format(
                out,
                "nothing to resume: no run here (config.toml is missing)",
            ));
        }
        run.latest_checkpoint()?
    } else {
        if run.exists() {
            return Err(Error::format(
                out,
                "already holds a run; pass --resume to continue it, or choose another output folder",
            ));
        }
        None
    };

    // Data: the training split (in a pretrained network's channels), an optional stratified
    // sample of it, a stratified holdout, an optional stratified limit.
    let base = match &config.pretrained {
        Some(path) => Some(pretrained_info(config, path)?),
        None => None,
    };
    let mut full = config.data.load(Split::Train, options.cache_dir.as_deref())?;
    if let Some(base) = &base {
        full = full.with_channels(base.model.channels)?;
    }
    full.validate()?;
    if let Some(limit) = config.data_limit
        && limit < full.len()
    {
        let sample = stratified_sample(
            &full.labels,
            limit as f64 / full.len() as f64,
            stream(config.seed, 7, 0),
        );
        full = full.subset(&sample);
    }
    let split = stratified_split(&full.labels, config.holdout_fraction, stream(config.seed, 1, 0));
    let mut train_idx = split.train;
    if let Some(limit) = config.train_limit
        && limit < train_idx.len()
    {
        let labels: Vec<usize> = train_idx.iter().map(|&i| full.labels[i]).collect();
        let keep = limit as f64 / train_idx.len() as f64;
        let sub = stratified_sample(&labels, keep, stream(config.seed, 2, 0));
        train_idx = sub.iter().map(|&j| train_idx[j]).collect();
    }
    let train_set = full.subset(&train_idx);
    let holdout_set = full.subset(&split.holdout);
    drop(full);
    if train_set.is_empty() {
        return Err(Error::TooFewExamples {
            analysis: "training",
            needed: 1,
            found: 0,
        });
    }

    let resolved = if options.resume {
        let saved = run.config()?;
        let again = resolve_from(config, &train_set, base.as_ref())?;
        if saved != again {
            return Err(Error::format(
                run.config_path(),
                "the run was started with a different configuration; resume it with the same settings \
                 (or without any: `losslens train --resume --out DIR`)",
            ));
        }
        saved
    } else {
        resolve_from(config, &train_set, base.as_ref())?
    };
    let image_size = resolved.image_size.unwrap_or(train_set.height);
    let augmentation = resolved.augmentation.unwrap_or(Augmentation::None);
    let stats = resolved.normalization.resolve(&train_set)?;
    let epochs = resolved.epochs();
    let model_config = ModelConfig {
        architecture: resolved.model,
        stem: resolved.stem.unwrap_or(Stem::for_image_size(image_size)),
        classes: train_set.classes.len(),
        channels: train_set.channels,
    };
    let objective: Objective = resolved.objective.init()?;
    let batch_size = resolved.batch_size.min(train_set.len());
    let steps_per_epoch = train_set.len() / batch_size;
    let schedule = Schedule {
        peak: resolved.learning_rate * batch_size as f64 / 256.0,
        warmup_steps: (resolved.warmup_epochs * steps_per_epoch as f64).round() as usize,
        steps_per_epoch,
        total_steps: steps_per_epoch * epochs,
        decay: resolved.decay,
    };

    let mut info = RunInfo {
        version: RUN_VERSION,
        model: model_config,
        classes: train_set.classes.clone(),
        image_size,
        normalization: stats.clone(),
        train_images: train_set.len(),
        holdout_images: holdout_set.len(),
        epochs_done: 0,
        epochs,
        best_epoch: None,
        best_holdout_accuracy: None,
        finished: false,
    };
    if !options.resume {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        run.write_config(&resolved)?;
        run.write_info(&info)?;
    }

    // The network, its EMA and the optimiser: fresh, or from the checkpoint.
    device.seed(stream(resolved.seed, 3, 0));
    let mut model = model_config.init(device)?;
    if let Some(path) = &resolved.pretrained {
        // The pretrained body under the new head.
        let base = RunDir::new(path).load(device)?;
        if base.info.model.channels != model_config.channels {
            return invalid_setting(
                "pretrained",
                path.display(),
                format!("a network for {}-channel images", model_config.channels),
            );
        }
        model.body = base.model.body;
    }
    let mut ema = Ema::new(&model, resolved.ema_decay, 0);
    let mut state = CheckpointState {
        epoch: 0,
        step: 0,
        ema_updates: 0,
        best: None,
        history: Vec::new(),
    };
    let mut optimizer_bytes = None;
    if let Some((dir, saved)) = checkpoint {
        model = load_weights(model, &dir.join("model.bpk"))?;
        let average = load_weights(model_config.init(device)?, &dir.join("ema.bpk"))?;
        ema = Ema::new(&average, resolved.ema_decay, saved.ema_updates);
        optimizer_bytes = Some((dir.join("optimizer.bpk"), read(&dir.join("optimizer.bpk"))?));
        state = saved;
        info.epochs_done = state.epoch;
        info.best_epoch = state.best.map(|b| b.0);
        info.best_holdout_accuracy = state.best.map(|b| b.1);
    }
    let autodiff = device.clone().autodiff();
    let mut model = model.fork(&autodiff).train();
    let mut optimizer = optimizer(&resolved, &model);
    if let Some((path, bytes)) = optimizer_bytes {
        optimizer = optimizer
            .from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| Error::format(path, format!("not an optimiser state: {e}")))?;
    }

    observer(Event::Start {
        config: &resolved,
        info: &info,
        steps_per_epoch,
        start_epoch: state.epoch,
    });

    let n = train_set.len();
    let width = model_config.layout().features();
    let keep_prob = match resolved.objective {
        ObjectiveConfig::Dropout(c) if c.keep_prob < 1.0 => Some(c.keep_prob),
        _ => None,
    };
    let replicas = &options.replicas;
    let context = StepContext {
        set: &train_set,
        objective: &objective,
        stats: &stats,
        image_size,
        width,
    };
    for epoch in state.epoch + 1..=epochs {
        let started = Instant::now();
        let order = SplitMix64::new(stream(resolved.seed, 4, epoch as u64)).permutation(n);
        let mut crop_rng = SplitMix64::new(stream(resolved.seed, 5, epoch as u64));
        let mut loss_sum = Tensor::<1>::zeros([1], device);
        let mut correct = Tensor::<1, Int>::zeros([1], device);
        let mut lr = 0.0;
        for s in 0..steps_per_epoch {
            let indices = &order[s * batch_size..(s + 1) * batch_size];
            let crops: Vec<_> = indices
                .iter()
                .map(|_| {
                    train_crop(
                        &augmentation,
                        train_set.height,
                        train_set.width,
                        image_size,
                        &mut crop_rng,
                    )
                })
                .collect();
            // Dropout masks come from the run's own generator, not the device's, so they are the
            // same on every device and for a resumed run.
            let mask: Option<Vec<f32>> = keep_prob.map(|keep| {
                let mut rng = SplitMix64::new(stream(resolved.seed, 6, state.step as u64));
                (0..indices.len() * width)
                    .map(|_| if rng.uniform() < keep { 1.0 } else { 0.0 })
                    .collect()
            });
            lr = schedule.rate(state.step);
            if replicas.is_empty() {
                let shard = Shard {
                    indices,
                    crops: &crops,
                    mask: mask.as_deref(),
                    weight: 1.0,
                };
                let (loss, hits, grads) = shard.run(&model, &autodiff, &context);
                loss_sum = loss_sum + loss;
                correct = correct + hits;
                model = optimizer.step(lr, model, grads);
            } else {
                // Data parallel: one shard of the batch per device, each loss weighted by its
                // share so the summed gradients are the whole batch's mean gradient; burn
                // accumulates each parameter's gradients on one device and steps there.
                let devices: Vec<Device> = std::iter::once(device.clone())
                    .chain(replicas.iter().cloned())
                    .collect();
                let parts = devices.len().min(indices.len());
                let mut multi = MultiGradientsParams::default();
                for (d, dev) in devices.iter().take(parts).enumerate() {
                    let (lo, hi) = (d * indices.len() / parts, (d + 1) * indices.len() / parts);
                    let dev_ad = dev.clone().autodiff();
                    let replica = model.clone().fork(&dev_ad);
                    let shard = Shard {
                        indices: &indices[lo..hi],
                        crops: &crops[lo..hi],
                        mask: mask.as_deref().map(|m| &m[lo * width..hi * width]),
                        weight: (hi - lo) as f64 / indices.len() as f64,
                    };
                    let (loss, hits, grads) = shard.run(&replica, &dev_ad, &context);
                    loss_sum = loss_sum + loss.to_device(device);
                    correct = correct + hits.to_device(device);
                    multi.grads.push((grads, dev.clone()));
                }
                model = optimizer.step_multi(lr, model, multi).fork(&autodiff);
            }
            if resolved.ema_decay > 0.0 {
                ema.update(&model);
            }
            state.step += 1;
            observer(Event::Step {
                epoch,
                step: s + 1,
                steps_per_epoch,
                batch_size,
            });
        }
        let seconds = started.elapsed().as_secs_f64();
        if !checkpointed(epoch, epochs, resolved.checkpoints) {
            // Between checkpoints the epoch's numbers stay on the device: no sync, no files.
            continue;
        }
        let train_loss = scalar(loss_sum)? / steps_per_epoch as f64;
        if !train_loss.is_finite() {
            return Err(Error::Degenerate {
                what: format!("training loss at epoch {epoch}"),
                reason: format!(
                    "became {train_loss}; lower the learning rate ({}) or check the data",
                    resolved.learning_rate
                ),
            });
        }
        let train_accuracy = scalar_int(correct)? / (steps_per_epoch * batch_size) as f64;

        // Evaluate the weights that would be kept: the EMA, else the current ones.
        observer(Event::Evaluating { epoch });
        let evaluated = if resolved.ema_decay > 0.0 {
            ema.model().clone()
        } else {
            model.valid()
        };
        let input = InputSpec {
            image_size,
            normalization: stats.clone(),
        };
        let holdout = if holdout_set.is_empty() {
            None
        } else {
            Some(accuracy(
                &evaluated,
                &objective,
                &holdout_set,
                &input,
                resolved.eval_batch_size,
                device,
            )?)
        };
        let holdout_accuracy = holdout.map(|h| h.0);
        let improved = match (holdout_accuracy, state.best) {
            (None, _) => true,
            (Some(a), Some((_, best))) => a > best,
            (Some(_), None) => true,
        };
        if improved {
            crate::atomic::write(&run.model_path(), &weights_bytes(evaluated)?)?;
            state.best = Some((epoch, holdout_accuracy.unwrap_or(f64::NAN)));
        }
        let record = EpochRecord {
            epoch,
            step: state.step,
            learning_rate: lr,
            train_loss,
            train_accuracy,
            holdout_accuracy,
            holdout_mean_per_class_accuracy: holdout.map(|h| h.1),
            seconds,
            images_per_second: (steps_per_epoch * batch_size) as f64 / seconds.max(1e-9),
        };
        state.history.push(record.clone());
        state.epoch = epoch;
        state.ema_updates = ema.updates();
        let optimizer_state = optimizer
            .into_bytes()
            .map_err(|e| Error::Device(format!("cannot serialise the optimiser state: {e}")))?;
        run.write_checkpoint(
            &state,
            &[
                ("model.bpk", weights_bytes(model.valid())?),
                ("ema.bpk", weights_bytes(ema.model().clone())?),
                ("optimizer.bpk", optimizer_state.to_vec()),
            ],
        )?;
        run.write_metrics(&state.history)?;
        info.epochs_done = epoch;
        info.best_epoch = state.best.map(|b| b.0);
        info.best_holdout_accuracy = state.best.and_then(|b| b.1.is_finite().then_some(b.1));
        info.finished = epoch == epochs;
        run.write_info(&info)?;
        observer(Event::Epoch(&record));
        if options.stop_after_epoch.is_some_and(|stop| epoch >= stop) {
            break;
        }
    }
    Ok(TrainSummary {
        info,
        history: state.history,
    })
}

/// What every shard of every step shares.
struct StepContext<'a> {
    set: &'a ImageSet,
    objective: &'a Objective,
    stats: &'a ChannelStats,
    image_size: usize,
    width: usize,
}

/// Part of a batch: its images, crops, dropout mask and share of the batch.
struct Shard<'a> {
    indices: &'a [usize],
    crops: &'a [Crop],
    mask: Option<&'a [f32]>,
    weight: f64,
}

impl Shard<'_> {
    /// Forward and backward on `device` (an autodiff device): the shard's weighted loss and
    /// correct count (on the inner device) and the gradients.
    fn run(
        &self,
        model: &Classifier,
        device: &Device,
        c: &StepContext,
    ) -> (Tensor<1>, Tensor<1, Int>, GradientsParams) {
        let n = self.indices.len();
        let images = batch(c.set, self.indices, self.crops, c.image_size, c.stats, device);
        let labels: Vec<i64> = self.indices.iter().map(|&i| c.set.labels[i] as i64).collect();
        let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), device);
        let mask = self
            .mask
            .map(|m| Tensor::<2>::from_data(TensorData::new(m.to_vec(), [n, c.width]), device));
        let output = c
            .objective
            .forward_with_mask(model.features(images), &model.head, targets.clone(), mask);
        let loss = if self.weight == 1.0 {
            output.loss
        } else {
            output.loss.mul_scalar(self.weight)
        };
        let predicted = output.outputs.inner().argmax(1).reshape([n]);
        let hits = predicted.equal(targets.inner()).int().sum();
        let grads = GradientsParams::from_grads(loss.backward(), model);
        (loss.inner(), hits, grads)
    }
}

/// SGD with (Nesterov) momentum; weight decay on parameters of rank ≥ 2 (convolution and linear
/// weights) and not on rank-1 ones (batch-norm scales and shifts, biases).
fn optimizer(config: &TrainConfig, model: &Classifier) -> ModuleOptimizer {
    let momentum = Some(MomentumConfig {
        momentum: config.momentum,
        dampening: 0.0,
        nesterov: config.nesterov && config.momentum > 0.0,
    });
    let decayed = SgdConfig::new()
        .with_momentum(momentum.clone())
        .with_weight_decay((config.weight_decay > 0.0).then(|| WeightDecayConfig::new(config.weight_decay as f32)));
    let plain = SgdConfig::new().with_momentum(momentum);
    #[derive(Default)]
    struct Vectors(Vec<ParamId>);
    impl ModuleVisitor for Vectors {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if D == 1 {
                self.0.push(param.id);
            }
        }
    }
    let mut vectors = Vectors::default();
    model.visit(&mut vectors);
    decayed
        .init()
        .with_group(ParamGroup::from_ids(vectors.0), plain.build(), None)
}

/// Top-1 and mean per-class accuracy of `model` on `set`.
pub fn accuracy(
    model: &Classifier,
    objective: &Objective,
    set: &ImageSet,
    input: &InputSpec,
    batch_size: usize,
    device: &Device,
) -> Result<(f64, f64)> {
    let request = Request {
        taps: &[],
        pooling: Pooling::Mean,
        objective: Some(objective),
        batch_size,
    };
    let forward = inference::forward(model, set, input, &request, device, &mut |_, _| {})?;
    let outputs = forward.outputs.unwrap_or_default();
    let k = outputs.len() / set.len().max(1);
    if k == 0 {
        return invalid_setting("classes", 0, "at least 1");
    }
    let scores: Vec<f64> = outputs.iter().map(|&v| f64::from(v)).collect();
    let predictions = crate::probe::metrics::argmax_rows(&scores, k);
    Ok((
        crate::probe::metrics::accuracy(&predictions, &set.labels),
        crate::probe::metrics::mean_per_class_accuracy(&predictions, &set.labels, k),
    ))
}

fn scalar(t: Tensor<1>) -> Result<f64> {
    let v = t
        .into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .map_err(|e| Error::Device(format!("{e:?}")))?;
    Ok(v[0])
}

fn scalar_int(t: Tensor<1, Int>) -> Result<f64> {
    let v = t
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .map_err(|e| Error::Device(format!("{e:?}")))?;
    Ok(v[0] as f64)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}
