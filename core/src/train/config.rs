//! The training configuration: the paper's recipe (Appendix A.1) with every default documented.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::DatasetSource;
use crate::data::augment::{Augmentation, Normalization};
use crate::data::autoaugment::Policy;
use crate::data::mixup::MixupConfig;
use crate::error::{Result, invalid_setting};
use crate::model::{Architecture, Stem};
use crate::objective::{ObjectiveConfig, ObjectiveKind};

/// How the learning rate decays after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Decay {
    /// Multiply by `factor` per epoch (continuously, per step). The paper: 0.975.
    Exponential {
        /// Factor per epoch, in (0, 1]. Default 0.975.
        #[serde(default = "Decay::paper_factor")]
        factor: f64,
    },
    /// Cosine annealing to zero at the last epoch (Loshchilov & Hutter 2017, no restarts).
    Cosine,
}

impl Decay {
    fn paper_factor() -> f64 {
        0.975
    }
}

impl Default for Decay {
    fn default() -> Self {
        Decay::Exponential {
            factor: Self::paper_factor(),
        }
    }
}

/// The arithmetic of training steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum TrainPrecision {
    /// Mixed precision on a GPU with f16 tensor cores, f32 everywhere else (the CPU). Default.
    #[default]
    Auto,
    /// 32-bit floats throughout.
    F32,
    /// Convolutions in f16 (tensor cores) on f16 copies of the f32 master weights; batch norm,
    /// the loss, the optimiser state and the weight average in f32; dynamic loss scaling.
    Mixed,
}

impl TrainPrecision {
    fn is_auto(&self) -> bool {
        *self == TrainPrecision::Auto
    }
}

/// Everything that defines a training run. Unset options (`None`) are resolved from the data
/// and the objective when the run starts, and the resolved values are saved with the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// The training data. Default: the procedural dataset (10 classes, 32 px).
    pub data: DatasetSource,
    /// The network. Default `resnet50`, the paper's.
    pub model: Architecture,
    /// The input stem; default from the input size ([`Stem::for_image_size`]). The ResNets'
    /// only: Inception v3 has its own.
    pub stem: Option<Stem>,
    /// Inception v3's auxiliary classifier on the 17×17 grid, trained with the run's objective
    /// at weight 0.4 (needs 299 px inputs; `model` must be `inception-v3`). Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub aux_head: bool,
    /// The objective and its hyperparameters. Default softmax cross-entropy.
    pub objective: ObjectiveConfig,
    /// Epochs; default the objective's epoch count in the paper's Table A.1
    /// ([`paper_epochs`]).
    pub epochs: Option<usize>,
    /// Optimiser steps instead of epochs (fine-tuning counts steps: the paper's 20,000),
    /// rounded up to whole epochs when the run starts; not together with `epochs`. Default
    /// unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// Start from a trained run (its folder): every layer but the classifier takes the run's
    /// saved weights (`model.bpk`, its best epoch so far), the classifier is new (sized for this data's classes, initialised as usual), and
    /// the input size, stem, channels and normalisation default to the run's (gray images are
    /// repeated into RGB for an RGB network). `model` must be the run's. Default unset: random
    /// initialisation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<PathBuf>,
    /// Examples per step. Default 256.
    pub batch_size: usize,
    /// Peak learning rate per 256 examples; the step size is `learning_rate · batch_size / 256`
    /// (the paper: 1.6 at batch 4,096, i.e. 0.1). Default 0.1.
    pub learning_rate: f64,
    /// Momentum. Default 0.9.
    pub momentum: f64,
    /// Nesterov's form of momentum (the paper's pretraining); false gives plain heavy-ball
    /// momentum (its fine-tuning). Default true.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub nesterov: bool,
    /// L² weight decay on convolution and linear weights (not on batch-norm parameters or
    /// biases), added to the gradient. Default 8e-5 (the paper's, ImageNet scale).
    pub weight_decay: f64,
    /// Epochs of linear warm-up from 0 to the peak learning rate. Default 10.
    pub warmup_epochs: f64,
    /// Decay after the warm-up. Default exponential, ×0.975 per epoch.
    pub decay: Decay,
    /// Exponential moving average of the weights (and batch-norm statistics), used for
    /// evaluation and for the saved model; 0 turns it off. Its effective decay at step `t` is
    /// `min(ema_decay, (1 + t) / (10 + t))`, as in TensorFlow's `ExponentialMovingAverage`
    /// with `num_updates`. Default 0.9999.
    pub ema_decay: f64,
    /// Fraction of each class held out of training to pick the best epoch (early stopping); 0
    /// keeps the last epoch. Default 0.04 (the paper held out 50,046 of 1.28 M ImageNet images).
    pub holdout_fraction: f64,
    /// Train on a class-stratified subset of this many images (after the holdout is taken);
    /// default all.
    pub train_limit: Option<usize>,
    /// Use a class-stratified sample of about this many images of the training split (at least
    /// one of every class) before anything else (the holdout is taken from it), so that runs with
    /// and without a holdout see the same images; default all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_limit: Option<usize>,
    /// Network input size in pixels; default the stored image size, or 224 for images of 256 px
    /// and more.
    pub image_size: Option<usize>,
    /// Training augmentation; default [`Augmentation::for_image_size`].
    pub augmentation: Option<Augmentation>,
    /// AutoAugment of each training image after its crop and flip, with a learned policy
    /// (`autoaugment = "imagenet"`, the paper's; or `"cifar10"`, `"svhn"`); default off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoaugment: Option<Policy>,
    /// Mixup of each training batch after the crops (`mixup = { alpha = 0.2 }`); default off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixup: Option<MixupConfig>,
    /// Per-channel normalisation. Default: measured on the training images.
    pub normalization: Normalization,
    /// Seed of initialisation, holdout split, shuffling, augmentation and dropout. Default 0.
    pub seed: u64,
    /// Examples per evaluation batch. Default 256.
    pub eval_batch_size: usize,
    /// Holdout evaluations and checkpoints over the run, spread evenly over the epochs (the last
    /// epoch always has one); fewer save time and disk on runs of many short epochs. Default
    /// unset: every epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<usize>,
    /// Keep the evaluated weights (the average, when enabled) of every epoch that is a multiple
    /// of this, as `kept/epoch-NNNN.bpk` in the run folder, for the training dynamics a study
    /// measures (Figs. C.1–C.3, D.2, E.4; the paper: every 6 or 8 epochs). Default unset: none
    /// kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_every: Option<usize>,
    /// Arithmetic of the training steps. Default `auto`: mixed precision where the GPU has f16
    /// tensor cores, f32 elsewhere.
    #[serde(default, skip_serializing_if = "TrainPrecision::is_auto")]
    pub precision: TrainPrecision,
    /// Loss scale a mixed-precision run starts from; it halves (and the step is skipped) when a
    /// gradient overflows f16 and doubles after 2,000 clean steps. Default 65,536 (2¹⁶).
    #[serde(default = "default_loss_scale", skip_serializing_if = "is_default_loss_scale")]
    pub loss_scale: f64,
}

fn default_loss_scale() -> f64 {
    65_536.0
}

fn is_default_loss_scale(value: &f64) -> bool {
    *value == default_loss_scale()
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            data: DatasetSource::default(),
            model: Architecture::ResNet50,
            stem: None,
            aux_head: false,
            objective: ObjectiveConfig::default_for(ObjectiveKind::Softmax),
            epochs: None,
            steps: None,
            pretrained: None,
            batch_size: 256,
            learning_rate: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 8e-5,
            warmup_epochs: 10.0,
            decay: Decay::default(),
            ema_decay: 0.9999,
            holdout_fraction: 0.04,
            train_limit: None,
            data_limit: None,
            image_size: None,
            augmentation: None,
            autoaugment: None,
            mixup: None,
            normalization: Normalization::Dataset,
            seed: 0,
            eval_batch_size: 256,
            checkpoints: None,
            keep_every: None,
            precision: TrainPrecision::Auto,
            loss_scale: default_loss_scale(),
        }
    }
}

/// The largest network input size, in pixels: 8 times the paper's 224 (a 2,048 × 2,048 RGB
/// batch of 256 images already needs 12 GiB before the first layer).
pub const MAX_IMAGE_SIZE: usize = 2048;

/// Epochs of each objective in the paper's Table A.1 (ResNet-50 on ImageNet, chosen by early
/// stopping on the holdout set). A combination, which the paper trained for its maximum (Table
/// C.4 reports the best holdout accuracy at any epoch), takes the longest of its terms' counts.
pub fn paper_epochs_of(objective: &ObjectiveConfig) -> usize {
    objective
        .terms()
        .iter()
        .filter_map(ObjectiveConfig::kind)
        .map(paper_epochs)
        .max()
        .unwrap_or_else(|| paper_epochs(ObjectiveKind::Softmax))
}

/// Epochs of one of the nine objectives in the paper's Table A.1.
pub fn paper_epochs(kind: ObjectiveKind) -> usize {
    match kind {
        ObjectiveKind::Softmax => 146,
        ObjectiveKind::LabelSmoothing => 180,
        ObjectiveKind::Sigmoid => 166,
        ObjectiveKind::ExtraL2 => 168,
        ObjectiveKind::Dropout => 172,
        ObjectiveKind::LogitPenalty => 180,
        ObjectiveKind::LogitNorm => 152,
        ObjectiveKind::CosineSoftmax => 158,
        ObjectiveKind::SquaredError => 196,
    }
}

impl TrainConfig {
    /// The number of epochs, resolved (a run counted in `steps` is resolved against its data
    /// when it starts).
    pub fn epochs(&self) -> usize {
        self.epochs.unwrap_or_else(|| paper_epochs_of(&self.objective))
    }

    /// Refuses settings outside their ranges, naming the setting.
    pub fn validate(&self) -> Result<()> {
        self.objective.validate()?;
        if self.epochs == Some(0) {
            return invalid_setting("epochs", 0, "at least 1");
        }
        if self.steps == Some(0) {
            return invalid_setting("steps", 0, "at least 1");
        }
        if let (Some(_), Some(steps)) = (self.epochs, self.steps) {
            return invalid_setting("steps", steps, "unset when `epochs` is set (one or the other)");
        }
        if self.checkpoints == Some(0) {
            return invalid_setting("checkpoints", 0, "at least 1");
        }
        if self.keep_every == Some(0) {
            return invalid_setting("keep_every", 0, "at least 1 (epochs), or unset to keep none");
        }
        if self.data_limit == Some(0) {
            return invalid_setting("data_limit", 0, "at least 1");
        }
        if self.batch_size == 0 {
            return invalid_setting("batch_size", 0, "at least 1");
        }
        if self.eval_batch_size == 0 {
            return invalid_setting("eval_batch_size", 0, "at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return invalid_setting("learning_rate", self.learning_rate, "a finite number > 0");
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return invalid_setting("momentum", self.momentum, "in [0, 1)");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return invalid_setting("weight_decay", self.weight_decay, "a finite number ≥ 0");
        }
        if !(self.warmup_epochs.is_finite() && self.warmup_epochs >= 0.0) {
            return invalid_setting("warmup_epochs", self.warmup_epochs, "a finite number ≥ 0");
        }
        if let Decay::Exponential { factor } = self.decay
            && !(factor > 0.0 && factor <= 1.0)
        {
            return invalid_setting("decay.factor", factor, "in (0, 1]");
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return invalid_setting("ema_decay", self.ema_decay, "in [0, 1); 0 turns the average off");
        }
        if !(0.0..1.0).contains(&self.holdout_fraction) {
            return invalid_setting("holdout_fraction", self.holdout_fraction, "in [0, 1)");
        }
        if self.train_limit == Some(0) {
            return invalid_setting("train_limit", 0, "at least 1");
        }
        if let Some(size) = self.image_size
            && !(1..=MAX_IMAGE_SIZE).contains(&size)
        {
            return invalid_setting("image_size", size, format!("1 to {MAX_IMAGE_SIZE} pixels"));
        }
        if let Some(a) = &self.augmentation {
            a.validate()?;
        }
        if let Some(m) = &self.mixup {
            m.validate()?;
        }
        if !(self.loss_scale.is_finite() && self.loss_scale >= 1.0) {
            return invalid_setting("loss_scale", self.loss_scale, "a finite number ≥ 1");
        }
        Ok(())
    }

    /// The step size at the peak of the schedule: `learning_rate · batch_size / 256`.
    pub fn peak_step_size(&self) -> f64 {
        self.learning_rate * self.batch_size as f64 / 256.0
    }
}
