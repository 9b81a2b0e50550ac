//! Training a classifier with the paper's recipe (Appendix A.1) and the run folder it writes.
//!
//! - [`config`]: [`TrainConfig`], every setting with its default;
//! - `schedule`: warm-up then exponential or cosine decay;
//! - [`ema`]: the exponential moving average of the weights used for evaluation;
//! - [`run`]: the run folder (configuration, metrics, weights, checkpoints) and loading a
//!   trained network from it;
//! - `trainer`: the loop itself, [`train`], over the steps of a run: preparing its images
//!   (`data`), resolving its settings and starting or resuming its state (`setup`), and running an
//!   epoch of optimiser steps (`step`), reporting its progress as [`Event`]s (`event`).

pub mod config;
mod data;
pub mod ema;
mod event;
pub mod run;
mod schedule;
mod setup;
mod step;
mod trainer;

pub use config::{Decay, TrainConfig, paper_epochs};
pub use event::Event;
pub use run::{EpochRecord, RunDir, RunInfo, TrainedModel};
pub use setup::resolve;
pub use trainer::{TrainOptions, TrainSummary, train};
