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
    /// Its accuracy measure. Default top-1. A multi-label target is measured by ROC AUC.
    #[serde(default)]
    pub measure: Measure,
    /// A multi-label target (Table D.1): its images and 0/1 labels listed in a CSV label file
    /// under `data`'s folder ([`crate::data::label_file`]); probed per class and scored by the
    /// mean ROC AUC over its classes. Default: a single-label target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<crate::data::label_file::LabelFile>,
}

/// How many images of each class: a number, or `"all"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PerClass {
    /// At most this many of each class.
    Count(usize),
    /// Every image.
    All(AllImages),
}

/// The word `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllImages {
    /// Every image.
    All,
}

impl PerClass {
    /// The limit per class, if any.
    pub fn limit(self) -> Option<usize> {
        match self {
            PerClass::Count(n) => Some(n),
            PerClass::All(_) => None,
        }
    }
}

/// How much data the analyses use, and on which split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Source training images per class (a class-stratified sample, the same for every run) for
    /// class separation R² and neural collapse, or `"all"`. R² counts each example paired with
    /// itself (eq. 11), so with `N_k` images per class it reads about `(1 − R²) / N_k` too high:
    /// the default 256 keeps that below 0.004 for every layer. The blocks' outputs are streamed,
    /// so memory stays bounded whatever the count.
    pub separation_per_class: PerClass,
    /// Also record R² of each block's spatially mean-pooled output (`pooled` in the results),
    /// beside the paper's R² on the whole (flattened) output. Default false.
    pub separation_pooled: bool,
    /// Source test images (class-stratified) for activation sparsity (whole maps, streamed), as
    /// the paper measures it on validation images; default all.
    pub sparsity_images: Option<usize>,
    /// At most this many training images per target for the probes (class-stratified); default
    /// all.
    pub probe_train_limit: Option<usize>,
    /// At most this many test images (class-stratified) of the source and of each target; default
    /// all. For quick looks: the accuracies are then estimates from fewer images.
    pub test_limit: Option<usize>,
    /// Source training images (class-stratified, the same for every run) whose features of every
    /// layer (spatially mean-pooled) are saved with each run (`features.npz`), for the explorer
    /// and `losslens analyze`. Default 500; 0 saves none.
    pub feature_images: usize,
    /// CKA between the networks (Fig. 2): examples per minibatch of the minibatch CKA (unbiased
    /// HSIC, Nguyen et al. 2021) on each block's whole (flattened) output. Default 1,500, as the
    /// paper. Each minibatch holds one `m × m` Gram matrix per network and layer on the device.
    pub cka_batch_size: usize,
    /// CKA between the networks: passes over the images, each in a new shuffled order (the paper
    /// processed the ImageNet validation set for 10 epochs). Default 10; 0 skips Fig. 2.
    pub cka_passes: usize,
    /// CKA between the networks: source test images (class-stratified), default all the test
    /// images the study evaluates on (see `test_limit`).
    pub cka_images: Option<usize>,
    /// Calibration (Table C.3): at most this many of a run's holdout images (class-stratified)
    /// to fit the temperature on; default all. One parameter is fitted, so a thousand images pin
    /// it well.
    pub calibration_images: Option<usize>,
    /// Relearning the source head (Fig. 6): split the source test images 80/20 (stratified),
    /// fit a linear probe on the penultimate features of the 80 % and compare it with the
    /// network's own head on the 20 %. Default off.
    pub relearn_head: bool,
    /// Class-overlap assignment accuracy (Table F.1): map the source network's own predictions
    /// on each target to the target's classes by the best assignment (fitted on the target's
    /// training images, scored on its test images). Default off.
    pub assignment: bool,
    /// Angles in the penultimate layer: the angular visual hardness of the source test images
    /// (Fig. E.1) and the cosine distances between source training images of the same and of
    /// different classes (Fig. E.3, at most 10,000 of the class-separation images, as the
    /// paper). Default off.
    pub angles: bool,
    /// Table C.1: top-1 and top-5 accuracy of each final network on the images it trained on,
    /// unaugmented (the evaluation crop). Default off.
    pub train_accuracy: bool,
    /// At most this many of those training images (class-stratified); default all (the paper:
    /// every ImageNet training image).
    pub train_accuracy_images: Option<usize>,
    /// Robustness (Table C.2): ImageNet-C's corruptions to apply to the source test images at
    /// each of five severities, by name (`gaussian-noise`, `shot-noise`, `impulse-noise`,
    /// `gaussian-blur`, `brightness`, `contrast`, `pixelate`, `jpeg-compression`), or `["all"]`.
    /// Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corruptions: Vec<String>,
    /// At most this many source test images (class-stratified) to corrupt; default all (the
    /// paper: every ImageNet validation image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corruption_images: Option<usize>,
    /// Images per inference batch. Default 256.
    pub batch_size: usize,
}

impl AnalysisConfig {
    /// The corruptions of `corruptions`, in ImageNet-C's order; unknown names are refused.
    pub fn corruptions(&self) -> Result<Vec<crate::data::corrupt::Corruption>> {
        use crate::data::corrupt::Corruption;
        if self.corruptions.iter().any(|c| c.trim() == "all") {
            return Ok(Corruption::ALL.to_vec());
        }
        let mut chosen = self
            .corruptions
            .iter()
            .map(|c| {
                c.parse::<Corruption>().map_err(|_| {
                    let names: Vec<&str> = Corruption::ALL.iter().map(|c| c.name()).collect();
                    crate::error::Error::invalid_setting(
                        "analysis.corruptions",
                        c,
                        format!("corruption names: {}, or \"all\"", names.join(", ")),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        chosen.sort_unstable();
        chosen.dedup();
        Ok(chosen)
    }
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            separation_per_class: PerClass::Count(256),
            separation_pooled: false,
            sparsity_images: None,
            probe_train_limit: None,
            test_limit: None,
            feature_images: 500,
            cka_batch_size: 1500,
            cka_passes: 10,
            cka_images: None,
            calibration_images: None,
            relearn_head: false,
            assignment: false,
            angles: false,
            train_accuracy: false,
            train_accuracy_images: None,
            corruptions: Vec::new(),
            corruption_images: None,
            batch_size: 256,
        }
    }
}

/// An objective of a study: its configuration, and whether it belongs to a sweep rather than to
/// the main comparison. Written like an objective, with an optional `sweep = true`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StudyObjective {
    /// The objective.
    pub config: ObjectiveConfig,
    /// Part of a hyperparameter sweep (Table 4, Fig. 5b), not of the main comparison.
    pub sweep: bool,
}

impl From<ObjectiveConfig> for StudyObjective {
    fn from(config: ObjectiveConfig) -> Self {
        Self { config, sweep: false }
    }
}

impl std::ops::Deref for StudyObjective {
    type Target = ObjectiveConfig;
    fn deref(&self) -> &ObjectiveConfig {
        &self.config
    }
}

impl Serialize for StudyObjective {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut value = serde_json::to_value(self.config).map_err(serde::ser::Error::custom)?;
        if self.sweep
            && let Some(map) = value.as_object_mut()
        {
            map.insert("sweep".into(), serde_json::Value::Bool(true));
        }
        value.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for StudyObjective {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let mut value = serde_json::Value::deserialize(deserializer)?;
        let sweep = match value.as_object_mut().and_then(|m| m.remove("sweep")) {
            None => false,
            Some(serde_json::Value::Bool(b)) => b,
            Some(other) => {
                return Err(serde::de::Error::custom(format!(
                    "`sweep` must be true or false, not {other}"
                )));
            }
        };
        let config = serde_json::from_value(value).map_err(serde::de::Error::custom)?;
        Ok(Self { config, sweep })
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
    /// More labelled test sets of the source task (Table C.2: ImageNet-V2, -A, -Sketch, -R):
    /// each is scored by the networks' own heads on the source classes it has. Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_tests: Vec<ExtraTestConfig>,
    /// The network.
    pub model: Architecture,
    /// The objectives to compare (with hyperparameters); entries marked `sweep = true` (a
    /// hyperparameter sweep such as the cosine-softmax temperatures of Table 4) are trained and
    /// measured like the others but kept out of Table 1, Figs. 1 and 5a and the rank correlation.
    pub objectives: Vec<StudyObjective>,
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
    /// The paper's protocol for the final networks (Appendix A.1): tune the number of epochs on
    /// a holdout, then train every seed on all training images for that many. Off unless this
    /// section is present; without it every run trains with `[train]`'s holdout and keeps its
    /// best epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tune: Option<TuneConfig>,
}

/// A labelled test set of the source task from another distribution (ImageNet-A, -R, …): an
/// ImageFolder tree (`root/test/<class>/…` or `root/<class>/…`) or any other dataset's test split,
/// whose classes (folder names) are source classes, possibly fewer (ImageNet-A and -R have 200 of
/// the 1,000). Each network predicts among those classes only (the argmax of its outputs over
/// them), as the sets' own protocols do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraTestConfig {
    /// Its name in tables and results.
    pub name: String,
    /// The dataset.
    pub data: DatasetSource,
}

/// Tuning the epochs of each objective on a holdout (the paper's Appendix A.1: "held out a
/// validation set of 50,046 ImageNet training examples … After determining the hyperparameters,
/// we trained models on the full training set").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TuneConfig {
    /// Tuning runs per objective (seeds 1000, 1001, …, apart from the study's). Default 3, the
    /// paper's.
    pub seeds: usize,
    /// Fraction of each class held out to choose the epoch. Default 50,046 / 1,281,167 (the
    /// paper's ImageNet holdout).
    pub holdout_fraction: f64,
    /// Epochs of the tuning runs; the chosen epoch is the one whose holdout accuracy, averaged
    /// over the tuning runs, is highest (the earliest of equals). Default 1.25 × the study's
    /// epochs (the objective's Table A.1 count when unset), rounded up.
    pub max_epochs: Option<usize>,
}

impl Default for TuneConfig {
    fn default() -> Self {
        Self {
            seeds: 3,
            holdout_fraction: 50_046.0 / 1_281_167.0,
            max_epochs: None,
        }
    }
}

impl TuneConfig {
    /// The seed of tuning run `k` (apart from any study seed a user would pick).
    pub fn seed(k: usize) -> u64 {
        1000 + k as u64
    }
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
        if let Some(t) = &self.tune {
            if t.seeds == 0 {
                return invalid_setting("tune.seeds", 0, "at least 1");
            }
            if !(t.holdout_fraction > 0.0 && t.holdout_fraction < 1.0) {
                return invalid_setting("tune.holdout_fraction", t.holdout_fraction, "in (0, 1)");
            }
            if t.max_epochs == Some(0) {
                return invalid_setting("tune.max_epochs", 0, "at least 1");
            }
            if matches!(self.train.decay, crate::train::Decay::Cosine) {
                return invalid_setting(
                    "tune",
                    "with cosine decay",
                    "exponential decay: a cosine schedule depends on the total epochs, so the accuracy at an epoch \
                     of a longer tuning run is not what a shorter run reaches",
                );
            }
            for o in &self.objectives {
                self.tune_config(t, o, 0).validate()?;
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
        if self.analysis.separation_per_class == PerClass::Count(0) {
            return invalid_setting("analysis.separation_per_class", 0, "at least 1, or \"all\"");
        }
        if self.analysis.cka_batch_size < 4 {
            return invalid_setting(
                "analysis.cka_batch_size",
                self.analysis.cka_batch_size,
                "at least 4 (the unbiased HSIC divides by m − 3)",
            );
        }
        if self.analysis.cka_images.is_some_and(|n| n < 4) {
            return invalid_setting(
                "analysis.cka_images",
                self.analysis.cka_images.unwrap_or(0),
                "at least 4 (unset: every test image)",
            );
        }
        if self.analysis.calibration_images == Some(0) {
            return invalid_setting(
                "analysis.calibration_images",
                0,
                "at least 1 (unset: every holdout image)",
            );
        }
        if self.analysis.train_accuracy_images == Some(0) {
            return invalid_setting(
                "analysis.train_accuracy_images",
                0,
                "at least 1 (unset: every training image)",
            );
        }
        if self.analysis.sparsity_images == Some(0) {
            return invalid_setting("analysis.sparsity_images", 0, "at least 1 (unset: all test images)");
        }
        self.analysis.corruptions()?;
        if self.analysis.corruption_images == Some(0) {
            return invalid_setting("analysis.corruption_images", 0, "at least 1 (unset: all test images)");
        }
        let mut extra: Vec<&str> = self.extra_tests.iter().map(|t| t.name.as_str()).collect();
        extra.sort_unstable();
        if extra.windows(2).any(|w| w[0] == w[1]) || extra.iter().any(|n| n.trim().is_empty()) {
            return invalid_setting("extra_tests", format!("{extra:?}"), "distinct, non-empty names");
        }
        for t in self.targets.iter().filter(|t| t.labels.is_some()) {
            if !matches!(t.data, DatasetSource::Folder { .. }) {
                return invalid_setting(
                    "targets.labels",
                    &t.name,
                    "a folder dataset: the label file lists images under its folder",
                );
            }
            if self.finetune.is_some() {
                return invalid_setting(
                    "finetune",
                    format!("with the multi-label target `{}`", t.name),
                    "single-label targets only (fine-tuning trains one class per image)",
                );
            }
        }
        let mut names: Vec<&str> = self.targets.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return invalid_setting("targets", format!("{names:?}"), "distinct target names");
        }
        Ok(())
    }

    /// The objectives marked as a sweep, as written in tables (`cosine-softmax:temperature=0.01`).
    pub fn sweeps(&self) -> Vec<String> {
        self.objectives
            .iter()
            .filter(|o| o.sweep)
            .map(|o| o.config.to_string())
            .collect()
    }

    /// The training configuration of tuning run `k` of an objective (`[tune]`): its holdout,
    /// every epoch checkpointed and evaluated, the longest epoch count, no weights kept for the
    /// dynamics (those are the final runs').
    pub fn tune_config(&self, tune: &TuneConfig, objective: &ObjectiveConfig, k: usize) -> TrainConfig {
        let base = self.run_config(objective, TuneConfig::seed(k));
        TrainConfig {
            epochs: Some(
                tune.max_epochs
                    .unwrap_or_else(|| (base.epochs() as f64 * 1.25).ceil() as usize),
            ),
            holdout_fraction: tune.holdout_fraction,
            checkpoints: None,
            keep_every: None,
            ..base
        }
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
    /// Measure CKA between each block of the pretrained and the fine-tuned network on the
    /// target's test images (Fig. D.3), with the `analysis.cka_*` settings (`cka_images` caps the
    /// images, class-stratified). Default true.
    pub cka: bool,
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
            cka: true,
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
