//! Studies: the paper's comparison of objectives on a source dataset and its transfer targets.
//!
//! - [`aggregate`]: mean ± sd over seeds, the bold-facing rule, R² against transfer;
//! - [`figures`]: the study's SVG figures;
//! - [`finetune`]: fine-tuning every network on each target (Table 2; native, with training);
//! - [`results`]: the versioned `results.json` schema, shared with the browser explorer;
//! - [`runner`]: running a study incrementally (native, with training).

pub mod aggregate;
pub mod figures;
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
pub mod finetune;
pub mod results;
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
pub mod runner;

pub use results::{RESULTS_VERSION, StudyResults};
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
pub use runner::{StudyConfig, StudyEvent, run_study};

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
