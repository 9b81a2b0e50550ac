//! Studies: the paper's comparison of objectives on a source dataset and its transfer targets.
//!
//! - [`config`]: the study file (`STUDY.toml`) with every setting's default;
//! - [`results`]: the versioned `results.json` schema (shared with the browser explorer), the
//!   summary tables' types and the queries tables, figures and the explorer share;
//! - [`aggregate`]: mean ± sd over seeds, the bold-facing rule, R² against transfer: the tables;
//! - [`figures`]: the study's SVG figures;
//! - `runner`: running a study incrementally, [`run_study`] (native, with training);
//! - `measure`: what is measured on each trained network (native, with training);
//! - `cka`: CKA between the networks on the blocks' whole outputs (Fig. 2; native, with
//!   training);
//! - `dynamics`: the kept weights of each run measured epoch by epoch (native, with training);
//! - `robustness`: accuracy on extra test sets and under corruptions (Table C.2; native, with
//!   training);
//! - `finetune`: fine-tuning every network on each target (Table 2; native, with training);
//! - `store`: reusing finished work while the settings that produced it are unchanged;
//! - [`plan`]: the units of a study's work and what each waits for;
//! - [`workers`]: sharing a study's units between worker processes on shared storage.

pub mod aggregate;
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
mod agreement;
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
mod cka;
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
pub mod config;
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
mod dynamics;
pub mod figures;
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
mod finetune;
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
mod measure;
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
pub mod plan;
pub mod results;
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
mod robustness;
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
mod runner;
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
mod store;
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
pub mod workers;

#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
pub use config::{
    AnalysisConfig, ExtraTestConfig, FinetuneConfig, PerClass, StudyConfig, StudyObjective, TargetConfig, TuneConfig,
};
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
pub use measure::FEATURES_FILE;
pub use results::{RESULTS_VERSION, StudyResults};
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
pub use runner::{StudyEvent, StudyOutcome, UnitState, run_study, run_study_shared, study_units};

/// `name` made safe as a file or folder name: ASCII letters, digits, `.` and `-` are kept, every
/// other character becomes `-` (`cosine-softmax:temperature=0.05` → `cosine-softmax-temperature-0.05`).
pub fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}
