//! A run folder: what `losslens train` writes and `losslens extract` (and studies) read.
//!
//! ```text
//! OUT/config.toml          the resolved configuration (can be passed back to `losslens train`)
//! OUT/run.json             classes, input size, normalisation, progress, best epoch
//! OUT/metrics.jsonl        one JSON object per finished epoch
//! OUT/model.bpk            weights of the best epoch so far (the EMA weights when enabled)
//! OUT/checkpoint/latest.json → OUT/checkpoint/epoch-NNNN/{model,ema,optimizer}.bpk, state.json
//! OUT/kept/epoch-NNNN.bpk  the evaluated weights of every `keep_every`-th epoch (when set)
//! ```
//!
//! Every file is replaced atomically, and a checkpoint folder is complete before `latest.json`
//! names it, so a run killed at any moment resumes from its last finished epoch.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use serde::{Deserialize, Serialize};

use crate::data::augment::ChannelStats;
use crate::error::{Error, Result};
use crate::inference::InputSpec;
use crate::model::{Classifier, ModelConfig};
use crate::objective::Objective;
use crate::train::config::TrainConfig;
use crate::train::mixed::LossScale;

/// Version of the run folder layout.
pub(crate) const RUN_VERSION: u32 = 1;

/// One finished epoch, as logged in `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Optimiser steps taken so far.
    pub step: usize,
    /// Step size at the last step of the epoch.
    pub learning_rate: f64,
    /// Mean training loss over the epoch's steps.
    pub train_loss: f64,
    /// Training accuracy over the epoch (augmented images, weights as they were at each step).
    pub train_accuracy: f64,
    /// Holdout accuracy of the evaluated weights (EMA when enabled), if there is a holdout set.
    pub holdout_accuracy: Option<f64>,
    /// Mean per-class holdout accuracy of the same weights (the measure of unbalanced datasets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout_mean_per_class_accuracy: Option<f64>,
    /// Wall-clock seconds of the epoch's training steps.
    pub seconds: f64,
    /// Training images per second.
    pub images_per_second: f64,
    /// Wall-clock seconds of the first step this process ran (kernel compilation and tuning
    /// included); only on the first epoch a process trains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_step_seconds: Option<f64>,
    /// `mixed` for a mixed-precision epoch (absent for f32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// The loss scale at the end of the epoch (mixed precision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<f64>,
    /// Steps of the epoch skipped because a gradient overflowed (mixed precision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_steps: Option<u64>,
}

/// What a run folder says about itself (`run.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Layout version ([`RUN_VERSION`]).
    pub version: u32,
    /// The network.
    pub model: ModelConfig,
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Network input size in pixels.
    pub image_size: usize,
    /// The normalisation the network was trained with.
    pub normalization: ChannelStats,
    /// Training images (after the holdout and any limit).
    pub train_images: usize,
    /// Holdout images.
    pub holdout_images: usize,
    /// Epochs finished.
    pub epochs_done: usize,
    /// Epochs planned.
    pub epochs: usize,
    /// The epoch whose weights are in `model.bpk` (best holdout accuracy, else the last).
    pub best_epoch: Option<usize>,
    /// Its holdout accuracy.
    pub best_holdout_accuracy: Option<f64>,
    /// Whether all epochs are done.
    pub finished: bool,
}

/// Resume state of a checkpoint (`state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CheckpointState {
    /// Epochs finished.
    pub epoch: usize,
    /// Optimiser steps taken.
    pub step: usize,
    /// Updates folded into the EMA.
    pub ema_updates: u64,
    /// Best epoch so far and its holdout accuracy (NaN, written as null, without a holdout).
    #[serde(deserialize_with = "best_epoch")]
    pub best: Option<(usize, f64)>,
    /// Every epoch's record so far.
    pub history: Vec<EpochRecord>,
    /// The loss scale of a mixed-precision run, continued on resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<LossScale>,
}

/// Reads [`CheckpointState::best`], whose accuracy JSON writes as null when it is NaN (a run
/// without a holdout keeps its last epoch).
fn best_epoch<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<(usize, f64)>, D::Error> {
    let best = Option::<(usize, Option<f64>)>::deserialize(d)?;
    Ok(best.map(|(epoch, accuracy)| (epoch, accuracy.unwrap_or(f64::NAN))))
}

/// A run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// Its path.
    pub path: PathBuf,
}

impl RunDir {
    /// The folder at `path` (not checked).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.toml")
    }
    /// `run.json`.
    pub(crate) fn info_path(&self) -> PathBuf {
        self.path.join("run.json")
    }
    /// `model.bpk`.
    pub fn model_path(&self) -> PathBuf {
        self.path.join("model.bpk")
    }
    /// `metrics.jsonl`.
    pub fn metrics_path(&self) -> PathBuf {
        self.path.join("metrics.jsonl")
    }
    fn checkpoints(&self) -> PathBuf {
        self.path.join("checkpoint")
    }
    /// `kept/epoch-NNNN.bpk`: the evaluated weights kept at the end of `epoch`.
    pub fn kept_path(&self, epoch: usize) -> PathBuf {
        self.path.join("kept").join(format!("epoch-{epoch:04}.bpk"))
    }

    /// Keeps `weights` (burnpack bytes) as the weights of `epoch`.
    pub(crate) fn write_kept(&self, epoch: usize, weights: &[u8]) -> Result<()> {
        let path = self.kept_path(epoch);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        crate::atomic::write(&path, weights)
    }

    /// The epochs whose weights were kept (`keep_every`), in order.
    pub fn kept_epochs(&self) -> Result<Vec<usize>> {
        let dir = self.path.join("kept");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut epochs: Vec<usize> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.strip_prefix("epoch-")?.strip_suffix(".bpk")?.parse().ok()
            })
            .collect();
        epochs.sort_unstable();
        Ok(epochs)
    }

    /// Whether the folder holds a run (a configuration was written).
    pub fn exists(&self) -> bool {
        self.config_path().is_file()
    }

    /// The saved configuration. losslens writes it whole, so a file that does not read back to
    /// exactly the text losslens would write (cut short, edited) is refused as damaged rather
    /// than read with defaults in place of what is missing.
    pub fn config(&self) -> Result<TrainConfig> {
        let path = self.config_path();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let damaged = |why: String| {
            Error::format(
                &path,
                format!("the run's configuration is damaged ({why}); it cannot be resumed or read"),
            )
        };
        let config: TrainConfig = toml::from_str(&text).map_err(|e| damaged(e.to_string()))?;
        if toml::to_string(&config).map_err(|e| damaged(e.to_string()))? != text {
            return Err(damaged(
                "it is not the whole configuration losslens wrote: cut short or edited".into(),
            ));
        }
        Ok(config)
    }

    /// Writes the configuration.
    pub(crate) fn write_config(&self, config: &TrainConfig) -> Result<()> {
        let text = toml::to_string(config).map_err(|e| Error::format(self.config_path(), e.to_string()))?;
        crate::atomic::write(&self.config_path(), text.as_bytes())
    }

    /// The saved run information.
    pub fn info(&self) -> Result<RunInfo> {
        read_json(&self.info_path())
    }

    /// Writes the run information.
    pub(crate) fn write_info(&self, info: &RunInfo) -> Result<()> {
        crate::atomic::write_json(&self.info_path(), info)
    }

    /// The epoch records of `metrics.jsonl`.
    pub fn history(&self) -> Result<Vec<EpochRecord>> {
        let path = self.metrics_path();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| Error::format(&path, e.to_string())))
            .collect()
    }

    /// Writes `metrics.jsonl` from the epoch records.
    pub(crate) fn write_metrics(&self, history: &[EpochRecord]) -> Result<()> {
        let mut text = String::new();
        for record in history {
            text.push_str(
                &serde_json::to_string(record).map_err(|e| Error::format(self.metrics_path(), e.to_string()))?,
            );
            text.push('\n');
        }
        crate::atomic::write(&self.metrics_path(), text.as_bytes())
    }

    /// The network, its evaluation input and its objective, with the weights of `model.bpk`, on
    /// `device`.
    pub fn load(&self, device: &Device) -> Result<TrainedModel> {
        self.load_from(&self.model_path(), device)
    }

    /// The network with the weights of `weights` (a burnpack file of this run).
    fn load_from(&self, weights: &Path, device: &Device) -> Result<TrainedModel> {
        let info = self.info()?;
        let config = self.config()?;
        if info.best_epoch.is_none() {
            return Err(Error::run_folder(&self.path, crate::error::RunFolderState::NoWeights));
        }
        let model = load_weights(info.model.init(device)?, weights)?;
        Ok(TrainedModel {
            objective: config.objective.init()?,
            input: InputSpec {
                image_size: info.image_size,
                normalization: info.normalization.clone(),
            },
            model,
            info,
            config,
        })
    }

    /// The network as [`RunDir::load`] gives it, with the weights kept at the end of `epoch`
    /// instead of the best epoch's.
    pub fn load_kept(&self, epoch: usize, device: &Device) -> Result<TrainedModel> {
        if !self.kept_path(epoch).is_file() {
            let kept = self.kept_epochs()?;
            let expected = match kept.is_empty() {
                true => "an epoch whose weights were kept, but this run kept none (train it with keep_every)".into(),
                false => {
                    let list: Vec<String> = kept.iter().map(usize::to_string).collect();
                    format!("an epoch whose weights were kept: {}", list.join(", "))
                }
            };
            return Err(Error::invalid_setting("epoch", epoch, expected));
        }
        self.load_from(&self.kept_path(epoch), device)
    }

    /// The last complete checkpoint: its folder and state. Without the `latest.json` marker
    /// (lost with a damaged disk, or removed by hand) the newest complete checkpoint folder is
    /// taken; none at all means the run has not finished a checkpointed epoch.
    pub(crate) fn latest_checkpoint(&self) -> Result<Option<(PathBuf, CheckpointState)>> {
        let root = self.checkpoints();
        let latest = root.join("latest.json");
        if latest.is_file() {
            let name: String = read_json(&latest)?;
            let dir = root.join(name);
            let state = read_json(&dir.join("state.json"))?;
            return Ok(Some((dir, state)));
        }
        // Complete checkpoint folders are renamed into place whole (`epoch-NNNN`); partial ones
        // keep their temporary name and are ignored.
        let mut complete: Vec<(usize, PathBuf)> = std::fs::read_dir(&root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let epoch = name.strip_prefix("epoch-")?.parse::<usize>().ok()?;
                Some((epoch, entry.path()))
            })
            .collect();
        complete.sort();
        match complete.pop() {
            Some((epoch, dir)) => {
                let state = read_json(&dir.join("state.json"))?;
                tracing::warn!(
                    "{}: no latest.json; resuming from the newest complete checkpoint (epoch {epoch})",
                    root.display()
                );
                Ok(Some((dir, state)))
            }
            None => Ok(None),
        }
    }

    /// Writes a checkpoint folder for `state.epoch` completely, then points `latest.json` at it
    /// and removes older ones. `files` are `(name, bytes)` pairs.
    pub(crate) fn write_checkpoint(&self, state: &CheckpointState, files: &[(&str, Vec<u8>)]) -> Result<()> {
        let root = self.checkpoints();
        std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        let name = format!("epoch-{:04}", state.epoch);
        let tmp = root.join(format!(".{name}.tmp"));
        let dir = root.join(&name);
        for stale in [&tmp, &dir] {
            if stale.exists() {
                std::fs::remove_dir_all(stale).map_err(|e| Error::io(stale, e))?;
            }
        }
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        for (file, bytes) in files {
            crate::atomic::write(&tmp.join(file), bytes)?;
        }
        crate::atomic::write_json(&tmp.join("state.json"), state)?;
        std::fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, e))?;
        crate::atomic::write_json(&root.join("latest.json"), &name)?;
        if let Ok(entries) = std::fs::read_dir(&root) {
            for entry in entries.flatten() {
                let n = entry.file_name().to_string_lossy().to_string();
                if n != name && (n.starts_with("epoch-") || n.starts_with(".epoch-")) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        Ok(())
    }
}

/// A trained network ready for inference.
#[derive(Debug, Clone)]
pub struct TrainedModel {
    /// The network with its saved weights.
    pub model: Classifier,
    /// Its objective (for evaluation outputs).
    pub objective: Objective,
    /// How images enter it.
    pub input: InputSpec,
    /// The run information.
    pub info: RunInfo,
    /// The resolved training configuration.
    pub config: TrainConfig,
}

/// What a features file written from a trained run says about its features (its JSON
/// metadata): one shape for `losslens extract` and the features a study saves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureMetadata {
    /// The network.
    pub model: ModelConfig,
    /// Its objective with hyperparameters.
    pub objective: String,
    /// Its seed.
    pub seed: u64,
    /// The dataset the features were computed on, as written on the command line.
    pub dataset: String,
    /// The split (`train`, `test`).
    pub split: String,
    /// Which images of the split: `all`, `first N`, `class-stratified sample of N`.
    pub images: String,
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Each layer's shape, `[examples, …]`.
    pub layers: std::collections::BTreeMap<String, Vec<usize>>,
    /// How block outputs were pooled.
    pub pooling: crate::inference::Pooling,
    /// Network input size in pixels.
    pub image_size: usize,
    /// The run folder, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<PathBuf>,
    /// The epoch whose kept weights computed the features (`keep_every`); absent for the
    /// run's best epoch (`model.bpk`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<usize>,
}

impl TrainedModel {
    /// The metadata of features of this network on `set`, which is `images` (`all`, `first N`,
    /// …) of `dataset`'s `split`, with the given layer shapes and pooling.
    pub fn feature_metadata(
        &self,
        (dataset, split): (String, crate::data::Split),
        set: &crate::data::ImageSet,
        images: String,
        layers: std::collections::BTreeMap<String, Vec<usize>>,
        pooling: crate::inference::Pooling,
    ) -> FeatureMetadata {
        FeatureMetadata {
            model: self.info.model,
            objective: self.objective.config().to_string(),
            seed: self.config.seed,
            dataset,
            split: crate::data::source::split_name(split).to_string(),
            images,
            classes: set.classes.clone(),
            layers,
            pooling,
            image_size: self.input.image_size,
            run: None,
            epoch: None,
        }
    }
}

/// A module's weights as burnpack bytes.
pub(crate) fn weights_bytes<M: Module>(module: M) -> Result<Vec<u8>> {
    let bytes = module
        .into_record()
        .into_bytes()
        .map_err(|e| Error::Device(format!("cannot serialise weights: {e}")))?;
    Ok(bytes.to_vec())
}

/// Loads burnpack weights from `path` into `module`, refusing files that do not fit it.
pub fn load_weights<M: Module>(module: M, path: &Path) -> Result<M> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    weights_from_bytes(module, bytes, path)
}

/// Loads burnpack `bytes` (read from `path`) into `module`.
pub(crate) fn weights_from_bytes<M: Module>(module: M, bytes: Vec<u8>, path: &Path) -> Result<M> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| Error::format(path, format!("not a weights file: {e}")))?;
    module
        .try_load_record(record)
        .map_err(|e| Error::format(path, format!("weights do not fit the network: {e}")))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::format(path, e.to_string()))
}
