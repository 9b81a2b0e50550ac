//! Training a classifier with the paper's recipe (Appendix A.1) and the run folder it writes.
//!
//! - [`config`]: [`TrainConfig`], every setting with its default;
//! - [`batch_norm`]: a network's initial weights, and its batch-norm statistics measured on images;
//! - `schedule`: warm-up then exponential or cosine decay;
//! - [`ema`]: the exponential moving average of the weights used for evaluation;
//! - [`mixed`]: mixed precision: loss scaling and unscaling the gradients;
//! - [`run`]: the run folder (configuration, metrics, weights, checkpoints) and loading a
//!   trained network from it;
//! - `trainer`: the loop itself, [`train`], over the steps of a run: preparing its images
//!   (`data`), resolving its settings and starting or resuming its state (`setup`), and running an
//!   epoch of optimiser steps (`step`), reporting its progress as [`Event`]s (`event`).

pub mod batch_norm;
pub mod collective;
pub mod config;
mod data;
pub mod ema;
mod event;
pub mod mixed;
pub mod run;
mod schedule;
mod setup;
mod step;
mod trainer;

pub use config::{Decay, TrainConfig, TrainPrecision, paper_epochs, paper_epochs_of};
pub use event::Event;
pub use run::{EpochRecord, RunDir, RunInfo, TrainedModel};
pub use setup::resolve;

/// Which images of a training split of `labels` a run trains on and holds out (indices into
/// the split), as the trainer splits them.
pub(crate) fn holdout_indices(config: &TrainConfig, labels: &[usize]) -> (Vec<usize>, Vec<usize>) {
    data::split_indices(config, labels)
}
pub use trainer::{TrainOptions, TrainSummary, train};
