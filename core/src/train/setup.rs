//! Everything a run decides before its first step: the configuration resolved against its
//! images (and the pretrained run it starts from), what follows from it (input size, schedule,
//! steps per epoch), and the training state, initialised or read back from the last checkpoint.

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{ModuleOptimizer, SgdConfig};
use burn::tensor::{Bytes, Device, Tensor};

use crate::data::ImageSet;
use crate::data::augment::{Augmentation, ChannelStats, Normalization};
use crate::error::{Error, Result, RunFolderState, invalid_setting};
use crate::model::{Body, Classifier, ModelConfig, Stem};
use crate::objective::Objective;
use crate::train::batch_norm::initial_network;
use crate::train::config::{TrainConfig, TrainPrecision};
use crate::train::data::TrainData;
use crate::train::ema::Ema;
use crate::train::mixed::LossScale;
use crate::train::run::{CheckpointState, RUN_VERSION, RunDir, RunInfo, load_weights};
use crate::train::schedule::Schedule;

/// The configuration with every unset option resolved against the training images (and the
/// pretrained run, if any): input size, stem, augmentation, normalisation, and epochs (from
/// `steps` when the run counts steps).
pub fn resolve(config: &TrainConfig, train: &ImageSet) -> Result<TrainConfig> {
    let base = pretrained_base(config)?;
    resolve_from(config, train, base.as_ref())
}

/// [`resolve`] with the pretrained run's information already read.
fn resolve_from(config: &TrainConfig, train: &ImageSet, base: Option<&RunInfo>) -> Result<TrainConfig> {
    let stored = train.shorter_side();
    let image_size = config
        .image_size
        .or(base.map(|b| b.image_size))
        .unwrap_or(if stored >= 256 { 224 } else { stored });
    let stats = match (&config.normalization, base) {
        (Normalization::Dataset, Some(b)) => b.normalization.clone(),
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
        normalization: Normalization::Custom {
            mean: stats.mean,
            std: stats.std,
        },
        ..config.clone()
    })
}

/// The run a configuration starts from (`pretrained`), checked against it; `None` for a run
/// from scratch.
pub(crate) fn pretrained_base(config: &TrainConfig) -> Result<Option<RunInfo>> {
    let Some(path) = &config.pretrained else {
        return Ok(None);
    };
    let run = RunDir::new(path);
    if !run.exists() {
        return Err(Error::run_folder(path, RunFolderState::NotARun));
    }
    let info = run.info()?;
    if info.best_epoch.is_none() {
        return Err(Error::run_folder(path, RunFolderState::NoWeights));
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
    Ok(Some(info))
}

/// The last checkpoint of the run in `run` when resuming (`None` if it has none yet), after
/// checking that the folder holds a run exactly when resuming.
pub(crate) fn checkpoint_to_resume(run: &RunDir, resume: bool) -> Result<Option<(PathBuf, CheckpointState)>> {
    match (resume, run.exists()) {
        (true, false) => Err(Error::run_folder(&run.path, RunFolderState::NothingToResume)),
        (true, true) => {
            let checkpoint = run.latest_checkpoint()?;
            if checkpoint.is_none() {
                tracing::warn!(
                    "{}: the run has no complete checkpoint yet; it starts again from its first epoch",
                    run.path.display()
                );
            }
            Ok(checkpoint)
        }
        (false, true) => Err(Error::run_folder(&run.path, RunFolderState::AlreadyHoldsRun)),
        (false, false) => Ok(None),
    }
}

/// What a run decided before its first step.
pub(crate) struct Plan {
    /// The resolved configuration (as saved in `config.toml`).
    pub config: TrainConfig,
    /// The network.
    pub model: ModelConfig,
    /// Its objective.
    pub objective: Objective,
    /// Network input size in pixels.
    pub image_size: usize,
    /// Training-time augmentation.
    pub augmentation: Augmentation,
    /// Per-channel normalisation.
    pub stats: ChannelStats,
    /// Epochs to train.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Steps per epoch (the last partial batch of an epoch is dropped).
    pub steps_per_epoch: usize,
    /// The learning-rate schedule.
    pub schedule: Schedule,
    /// Width of the penultimate features.
    pub width: usize,
    /// Keep probability of the penultimate dropout, for the dropout objective.
    pub keep_prob: Option<f64>,
    /// Mixed precision: convolutions in f16, dynamic loss scaling.
    pub mixed: bool,
}

impl Plan {
    /// The plan of `config` on `data`: a resumed run must be asked for with the settings it
    /// was started with.
    pub fn new(
        config: &TrainConfig,
        run: &RunDir,
        data: &TrainData,
        base: Option<&RunInfo>,
        (resume, tensor_cores_f16): (bool, bool),
    ) -> Result<Plan> {
        let resolved = resolve_from(config, &data.train, base)?;
        let resolved = if resume {
            let saved = run.config()?;
            if saved != resolved {
                return Err(Error::run_folder(
                    run.config_path(),
                    RunFolderState::ConfigurationChanged,
                ));
            }
            saved
        } else {
            resolved
        };
        let train = &data.train;
        let image_size = resolved.image_size.unwrap_or(train.shorter_side());
        let model = ModelConfig {
            architecture: resolved.model,
            stem: resolved.stem.unwrap_or(Stem::for_image_size(image_size)),
            classes: train.classes.len(),
            channels: train.channels,
            aux_head: resolved.aux_head,
        };
        model.validate()?;
        model.check_image_size(image_size)?;
        let batch_size = resolved.batch_size.min(train.len());
        let steps_per_epoch = train.len() / batch_size;
        let epochs = resolved.epochs();
        let objective = resolved.objective.init()?;
        Ok(Plan {
            objective,
            augmentation: resolved.augmentation.unwrap_or(Augmentation::None),
            stats: resolved.normalization.resolve(train)?,
            schedule: Schedule {
                peak: resolved.learning_rate * batch_size as f64 / 256.0,
                warmup_steps: (resolved.warmup_epochs * steps_per_epoch as f64).round() as usize,
                steps_per_epoch,
                total_steps: steps_per_epoch * epochs,
                decay: resolved.decay,
            },
            width: model.features(),
            keep_prob: objective.keep_prob(),
            mixed: match resolved.precision {
                TrainPrecision::Mixed => true,
                TrainPrecision::F32 => false,
                TrainPrecision::Auto => tensor_cores_f16,
            },
            image_size,
            model,
            epochs,
            batch_size,
            steps_per_epoch,
            config: resolved,
        })
    }

    /// `run.json` of the run before its first epoch.
    pub fn info(&self, data: &TrainData) -> RunInfo {
        RunInfo {
            version: RUN_VERSION,
            model: self.model,
            classes: data.train.classes.clone(),
            image_size: self.image_size,
            normalization: self.stats.clone(),
            train_images: data.train.len(),
            holdout_images: data.holdout.len(),
            epochs_done: 0,
            epochs: self.epochs,
            best_epoch: None,
            best_holdout_accuracy: None,
            finished: false,
        }
    }
}

/// What changes from step to step: the network (on the autodiff device), its average, the
/// optimiser, the progress and the run information.
pub(crate) struct TrainState {
    /// The network being trained, in training mode on the autodiff device.
    pub model: Classifier,
    /// The exponential moving average of its weights.
    pub ema: Ema,
    /// The optimiser with its momentum buffers.
    pub optimizer: ModuleOptimizer,
    /// Epochs and steps done, the best epoch, the history.
    pub progress: CheckpointState,
    /// What `run.json` says.
    pub info: RunInfo,
    /// The autodiff device of `model`.
    pub autodiff: Device,
}

impl TrainState {
    /// A fresh state (the pretrained body under a new head when the plan says so), or the state
    /// of `checkpoint` (its folder and saved progress).
    pub fn start(
        plan: &Plan,
        info: RunInfo,
        checkpoint: Option<(PathBuf, CheckpointState)>,
        device: &Device,
    ) -> Result<TrainState> {
        let config = &plan.config;
        let mut model = initial_network(&plan.model, config.seed, device)?;
        if let Some(path) = &config.pretrained {
            // Every layer but the classifiers comes from the run: a fresh auxiliary classifier
            // for this data where the plan has one, none otherwise.
            let fresh_aux = model.body.inception().and_then(|i| i.aux_logits.clone());
            model.body = pretrained_body(path, &plan.model, device)?;
            if let Body::Inception(inception) = &mut model.body {
                inception.aux_logits = fresh_aux;
            }
        }
        let mut ema = Ema::new(&model, config.ema_decay, 0);
        let mut info = info;
        let mut progress = CheckpointState {
            epoch: 0,
            step: 0,
            ema_updates: 0,
            best: None,
            history: Vec::new(),
            loss_scale: plan.mixed.then(|| LossScale::new(config.loss_scale)),
        };
        let mut optimizer_bytes = None;
        if let Some((dir, saved)) = checkpoint {
            model = load_weights(model, &dir.join("model.bpk"))?;
            let average = load_weights(plan.model.init(device)?, &dir.join("ema.bpk"))?;
            ema = Ema::new(&average, config.ema_decay, saved.ema_updates);
            let path = dir.join("optimizer.bpk");
            optimizer_bytes = Some((std::fs::read(&path).map_err(|e| Error::io(&path, e))?, path));
            info.epochs_done = saved.epoch;
            info.best_epoch = saved.best.map(|b| b.0);
            info.best_holdout_accuracy = saved.best.map(|b| b.1);
            progress = CheckpointState {
                // A run resumed with mixed precision continues its scale (a run that was f32
                // starts one).
                loss_scale: match (plan.mixed, saved.loss_scale) {
                    (true, Some(scale)) => Some(scale),
                    (true, None) => Some(LossScale::new(config.loss_scale)),
                    (false, _) => None,
                },
                ..saved
            };
        }
        let autodiff = device.clone().autodiff();
        let model = model.fork(&autodiff).train();
        let mut optimizer = optimizer(config, &model);
        if let Some((bytes, path)) = optimizer_bytes {
            optimizer = optimizer
                .from_bytes(Bytes::from_bytes_vec(bytes))
                .map_err(|e| Error::format(path, format!("not an optimiser state: {e}")))?;
        }
        Ok(TrainState {
            model,
            ema,
            optimizer,
            progress,
            info,
            autodiff,
        })
    }
}

/// The body of the pretrained run at `path`, for a network shaped as `model`.
fn pretrained_body(path: &Path, model: &ModelConfig, device: &Device) -> Result<Body> {
    let base = RunDir::new(path).load(device)?;
    if base.info.model.channels != model.channels {
        return invalid_setting(
            "pretrained",
            path.display(),
            format!("a network for {}-channel images", model.channels),
        );
    }
    Ok(base.model.body)
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
