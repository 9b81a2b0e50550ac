//! What a training run reports while it runs: its start, each step, each evaluation, each
//! checkpointed epoch.

use crate::train::config::TrainConfig;
use crate::train::run::{EpochRecord, RunInfo};

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
