//! The images a training run sees: the training split of its dataset (in a pretrained network's
//! channels), an optional class-stratified sample of it, a class-stratified holdout, and an
//! optional class-stratified limit on what remains for training.

use std::path::Path;

use crate::data::{ImageSet, Split};
use crate::error::{Error, Result};
use crate::probe::split::{stratified_sample, stratified_split};
use crate::rng::stream;
use crate::train::config::TrainConfig;
use crate::train::run::RunInfo;

/// Seed streams of a run (the second argument of [`stream`]).
pub(crate) mod streams {
    /// The holdout split.
    pub const HOLDOUT: u64 = 1;
    /// The training limit.
    pub const TRAIN_LIMIT: u64 = 2;
    /// The initial weights.
    pub const INIT: u64 = 3;
    /// The order of each epoch.
    pub const ORDER: u64 = 4;
    /// The crops of each epoch.
    pub const CROPS: u64 = 5;
    /// The dropout masks of each step.
    pub const DROPOUT: u64 = 6;
    /// The data limit.
    pub const DATA_LIMIT: u64 = 7;
    /// Mixup's λ and partners of each step.
    pub const MIXUP: u64 = 8;
    /// AutoAugment's sub-policies, probabilities and signs of each step.
    pub const AUTOAUGMENT: u64 = 9;
}

/// The training and holdout images of a run.
#[derive(Debug, Clone)]
pub(crate) struct TrainData {
    /// What the network trains on.
    pub train: ImageSet,
    /// What the epochs are evaluated on (empty without a holdout).
    pub holdout: ImageSet,
}

impl TrainData {
    /// Loads and splits the training images of `config`; `base` is the pretrained run, whose
    /// channels the images take.
    pub fn prepare(config: &TrainConfig, base: Option<&RunInfo>, cache_dir: Option<&Path>) -> Result<TrainData> {
        let mut full = config.data.load(Split::Train, cache_dir)?;
        if let Some(base) = base {
            full = full.with_channels(base.model.channels)?;
        }
        full.validate()?;
        let (train_idx, holdout_idx) = split_indices(config, &full.labels);
        let train = full.subset(&train_idx);
        let holdout = full.subset(&holdout_idx);
        if train.is_empty() {
            return Err(Error::TooFewExamples {
                analysis: "training",
                needed: 1,
                found: 0,
            });
        }
        Ok(TrainData { train, holdout })
    }
}

/// Which images of a training split of `labels` a run trains on and holds out: an optional
/// class-stratified sample (`data_limit`), a class-stratified holdout, and an optional
/// class-stratified limit on what remains for training. Indices into the split, ascending.
pub(crate) fn split_indices(config: &TrainConfig, labels: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut pool: Vec<usize> = (0..labels.len()).collect();
    if let Some(limit) = config.data_limit
        && limit < labels.len()
    {
        pool = stratified_sample(
            labels,
            limit as f64 / labels.len() as f64,
            stream(config.seed, streams::DATA_LIMIT, 0),
        );
    }
    let pool_labels: Vec<usize> = pool.iter().map(|&i| labels[i]).collect();
    let split = stratified_split(
        &pool_labels,
        config.holdout_fraction,
        stream(config.seed, streams::HOLDOUT, 0),
    );
    let mut train_idx = split.train;
    if let Some(limit) = config.train_limit
        && limit < train_idx.len()
    {
        let train_labels: Vec<usize> = train_idx.iter().map(|&i| pool_labels[i]).collect();
        let keep = limit as f64 / train_idx.len() as f64;
        let sub = stratified_sample(&train_labels, keep, stream(config.seed, streams::TRAIN_LIMIT, 0));
        train_idx = sub.iter().map(|&j| train_idx[j]).collect();
    }
    let train = train_idx.iter().map(|&i| pool[i]).collect();
    let holdout = split.holdout.iter().map(|&i| pool[i]).collect();
    (train, holdout)
}
