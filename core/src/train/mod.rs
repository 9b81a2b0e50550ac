//! Training a classifier with the paper's recipe (Appendix A.1) and the run folder it writes.
//!
//! - [`config`]: [`TrainConfig`], every setting with its default;
//! - [`schedule`]: warm-up then exponential or cosine decay;
//! - [`ema`]: the exponential moving average of the weights used for evaluation;
//! - [`run`]: the run folder (configuration, metrics, weights, checkpoints) and loading a
//!   trained network from it;
//! - [`trainer`]: the loop itself, [`train`].

pub mod config;
pub mod ema;
pub mod run;
pub mod schedule;
pub mod trainer;

pub use config::{Decay, TrainConfig, paper_epochs};
pub use run::{EpochRecord, RunDir, RunInfo, TrainedModel};
pub use trainer::{Event, TrainOptions, TrainSummary, train};
