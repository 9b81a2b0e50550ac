//! A study file (`STUDY.toml`): the source and target datasets, the network, the objectives and
//! seeds, the training recipe, how much data the analyses use, and how the networks are
//! fine-tuned. Every setting has its default here, and `validate` refuses bad values by name
//! before anything runs.

use serde::{Deserialize, Serialize};

use crate::data::DatasetSource;
use crate::error::{Result, invalid_setting};
use crate::model::Architecture;
use crate::objective::{ObjectiveConfig, ObjectiveKind};
use crate::study::results::Measure;
use crate::train::TrainConfig;

/// A target dataset of a study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Its name in tables.
    pub name: String,
    /// The dataset (with `train` and `test` splits).
    pub data: DatasetSource,
    /// Its accuracy measure. Default top-1.
    #[serde(default)]
    pub measure: Measure,
}

/// How much data the analyses use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Source training images (class-stratified) for class separation. Default 2,000.
    pub separation_images: usize,
    /// Source training images for activation sparsity (whole maps). Default 256.
    pub sparsity_images: usize,
    /// At most this many training images per target for the probes (class-stratified); default
    /// all.
    pub probe_train_limit: Option<usize>,
    /// At most this many test images (class-stratified) of the source and of each target; default
    /// all. For quick looks: the accuracies are then estimates from fewer images.
    pub test_limit: Option<usize>,
    /// Source training images (class-stratified, the same for every run) whose features of every
    /// layer are saved with each run (`features.npz`) and compared across runs with CKA
    /// (Fig. 2). Default 500; 0 skips both.
    pub feature_images: usize,
    /// Images per inference batch. Default 256.
    pub batch_size: usize,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            separation_images: 2000,
            sparsity_images: 256,
            probe_train_limit: None,
            test_limit: None,
            feature_images: 500,
            batch_size: 256,
        }
    }
}

/// A study (`STUDY.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyConfig {
    /// Its name.
    pub name: String,
    /// The pretraining dataset.
    pub source: DatasetSource,
    /// The transfer datasets.
    #[serde(default)]
    pub targets: Vec<TargetConfig>,
    /// The network.
    pub model: Architecture,
    /// The objectives to compare (with hyperparameters).
    pub objectives: Vec<ObjectiveConfig>,
    /// Seeds; each objective is trained once per seed. Default `[0]`.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// The training recipe; its `data`, `model`, `objective` and `seed` are set per run.
    #[serde(default)]
    pub train: TrainConfig,
    /// Analysis sizes.
    #[serde(default)]
    pub analysis: AnalysisConfig,
    /// Fine-tuning the whole network on each target (Table 2): slow, so off unless this
    /// section is present (`[finetune]` alone takes the paper's protocol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetune: Option<FinetuneConfig>,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

impl StudyConfig {
    /// Refuses empty studies and bad settings: every run's training settings, the analysis and
    /// the fine-tuning settings, so that a study refuses before it touches any folder.
    pub fn validate(&self) -> Result<()> {
        if self.objectives.is_empty() {
            return invalid_setting("objectives", "[]", "at least one objective");
        }
        if self.seeds.is_empty() {
            return invalid_setting("seeds", "[]", "at least one seed");
        }
        for o in &self.objectives {
            o.validate()?;
            for &seed in &self.seeds {
                self.run_config(o, seed).validate()?;
            }
        }
        if let Some(f) = &self.finetune {
            f.validate()?;
            if self.targets.is_empty() {
                return invalid_setting("finetune", "a [finetune] section", "targets to fine-tune on");
            }
        }
        if self.analysis.batch_size == 0 {
            return invalid_setting("analysis.batch_size", 0, "at least 1");
        }
        let mut names: Vec<&str> = self.targets.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return invalid_setting("targets", format!("{names:?}"), "distinct target names");
        }
        Ok(())
    }

    /// The training configuration of one run.
    pub fn run_config(&self, objective: &ObjectiveConfig, seed: u64) -> TrainConfig {
        TrainConfig {
            data: self.source.clone(),
            model: self.model,
            objective: *objective,
            seed,
            ..self.train.clone()
        }
    }
}

/// `n` values spaced evenly in log space from `10^lo` to `10^hi` (NumPy's `logspace`).
pub fn log_grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![10f64.powf(lo)],
        _ => (0..n)
            .map(|i| 10f64.powf(lo + (hi - lo) * i as f64 / (n - 1) as f64))
            .collect(),
    }
}

/// How the study fine-tunes its networks on each target. Absent from a study: no fine-tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FinetuneConfig {
    /// Optimiser steps per fine-tuning run, rounded up to whole epochs. Default 20,000 (the
    /// paper's).
    pub steps: usize,
    /// Examples per step. Default 256.
    pub batch_size: usize,
    /// Learning rates to try, per 256 examples (the step size is `rate · batch_size / 256`).
    /// Default the paper's: 8 values spaced evenly in log space over [10^-5.5, 10^-1].
    pub learning_rates: Vec<f64>,
    /// Weight decays to try; each is divided by the step size before use, so that the weights
    /// shrink by this fraction per step at the peak rate. 0 means none. Default the paper's: 8
    /// values spaced evenly in log space over [10^-6.5, 10^-3], and 0.
    pub weight_decays: Vec<f64>,
    /// Fraction of each class of the target's training images held out to choose the learning
    /// rate and weight decay, in (0, 1). Default 0.2.
    pub validation_fraction: f64,
    /// Use a class-stratified sample of this many of the target's training images (training and
    /// validation together); default all.
    pub train_limit: Option<usize>,
    /// Momentum (plain, not Nesterov's). Default 0.9.
    pub momentum: f64,
    /// The objective of the new classifier. Default softmax cross-entropy.
    pub objective: ObjectiveConfig,
    /// Validation evaluations and checkpoints per run, spread evenly (the last epoch always has
    /// one). Default 10.
    pub checkpoints: usize,
    /// Fine-tune the networks of only the first this many of the study's seeds of each
    /// objective (the paper fine-tuned 3 of its 8); default all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seeds: Option<usize>,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self {
            steps: 20_000,
            batch_size: 256,
            learning_rates: log_grid(-5.5, -1.0, 8),
            weight_decays: log_grid(-6.5, -3.0, 8).into_iter().chain([0.0]).collect(),
            validation_fraction: 0.2,
            train_limit: None,
            momentum: 0.9,
            objective: ObjectiveConfig::default_for(ObjectiveKind::Softmax),
            checkpoints: 10,
            seeds: None,
        }
    }
}

impl FinetuneConfig {
    /// Refuses empty grids and settings outside their ranges, naming the setting.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            return invalid_setting("finetune.steps", 0, "at least 1");
        }
        if self.batch_size == 0 {
            return invalid_setting("finetune.batch_size", 0, "at least 1");
        }
        if self.learning_rates.is_empty() {
            return invalid_setting("finetune.learning_rates", "[]", "at least one rate");
        }
        if let Some(&bad) = self.learning_rates.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
            return invalid_setting("finetune.learning_rates", bad, "finite numbers > 0");
        }
        if self.weight_decays.is_empty() {
            return invalid_setting("finetune.weight_decays", "[]", "at least one value (0 for none)");
        }
        if let Some(&bad) = self.weight_decays.iter().find(|d| !(d.is_finite() && **d >= 0.0)) {
            return invalid_setting("finetune.weight_decays", bad, "finite numbers ≥ 0");
        }
        if !(self.validation_fraction > 0.0 && self.validation_fraction < 1.0) {
            return invalid_setting("finetune.validation_fraction", self.validation_fraction, "in (0, 1)");
        }
        if self.train_limit == Some(0) {
            return invalid_setting("finetune.train_limit", 0, "at least 1");
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return invalid_setting("finetune.momentum", self.momentum, "in [0, 1)");
        }
        if self.seeds == Some(0) {
            return invalid_setting("finetune.seeds", 0, "at least 1");
        }
        if self.checkpoints == 0 {
            return invalid_setting("finetune.checkpoints", 0, "at least 1");
        }
        self.objective.validate()
    }

    /// The grid in the order it is searched: learning rates, then weight decays.
    pub fn grid(&self) -> Vec<(f64, f64)> {
        self.learning_rates
            .iter()
            .flat_map(|&lr| self.weight_decays.iter().map(move |&wd| (lr, wd)))
            .collect()
    }
}
