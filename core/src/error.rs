//! Errors of the losslens library, as data.
//!
//! Every variant carries what a user needs to fix the problem: the file, the array, the value
//! and the allowed range. Binaries add their own context with `anyhow`.

use std::path::PathBuf;

/// Result type of the losslens library.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in losslens.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused to read or write a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A file is not what its name or header says: wrong magic, truncated, corrupt.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// An array's element type is not one losslens reads.
    #[error("{path}: array `{array}` has dtype `{dtype}`; losslens reads float16/32/64 features and integer labels")]
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
        /// The array inside the file.
        array: String,
        /// The dtype as the file spells it.
        dtype: String,
    },

    /// An array holds NaN or infinity.
    #[error("{path}: array `{array}` holds a non-finite value ({value}) at flat index {index}")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The array inside the file.
        array: String,
        /// Flat (C-order) index of the first non-finite value.
        index: usize,
        /// The value, printed.
        value: String,
    },

    /// An array has a shape losslens cannot use for this purpose.
    #[error("{path}: array `{array}` has shape {shape:?}; {expected}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// The array inside the file.
        array: String,
        /// The shape found.
        shape: Vec<usize>,
        /// What was expected instead.
        expected: String,
    },

    /// The file holds several feature arrays and none was chosen.
    #[error("{path}: holds several feature arrays ({}); choose one by name", available.join(", "))]
    AmbiguousLayer {
        /// The file.
        path: PathBuf,
        /// The arrays a user may choose from.
        available: Vec<String>,
    },

    /// The requested array is not in the file.
    #[error("{path}: no array named `{name}`; it holds {}", if available.is_empty() { "no feature arrays".to_string() } else { available.join(", ") })]
    MissingArray {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The arrays that are there.
        available: Vec<String>,
    },

    /// The file holds no array that could be features.
    #[error("{path}: holds no feature array (a floating-point array of shape [examples, features] or [examples, C, H, W]); it has: {}", if available.is_empty() { "nothing".to_string() } else { available.join(", ") })]
    NoFeatureArray {
        /// The file.
        path: PathBuf,
        /// Its arrays, with their shapes.
        available: Vec<String>,
    },

    /// Two inputs that must describe the same examples have different numbers of rows.
    #[error("{what}: {rows_a} examples in {a} but {rows_b} in {b}; both must hold the same examples in the same order")]
    RowMismatch {
        /// What is being compared.
        what: String,
        /// The first input.
        a: String,
        /// Its number of rows.
        rows_a: usize,
        /// The second input.
        b: String,
        /// Its number of rows.
        rows_b: usize,
    },

    /// Two feature sets that must live in one feature space have different widths.
    #[error(
        "{a} has {cols_a} features per example but {b} has {cols_b}; use the same layer of the same network for both"
    )]
    WidthMismatch {
        /// The first input.
        a: String,
        /// Its width.
        cols_a: usize,
        /// The second input.
        b: String,
        /// Its width.
        cols_b: usize,
    },

    /// A test label names a class the training set does not have.
    #[error("test example {index} has label {label}, but the training set only has classes 0..{num_classes}")]
    UnseenLabel {
        /// The label found.
        label: usize,
        /// The test example holding it.
        index: usize,
        /// The number of training classes.
        num_classes: usize,
    },

    /// A label is negative or not below the number of classes.
    #[error("label {label} of example {index} is out of range: labels must lie in 0..{num_classes}")]
    LabelOutOfRange {
        /// The label found.
        label: i64,
        /// The example holding it.
        index: usize,
        /// The number of classes.
        num_classes: usize,
    },

    /// A class in `0..num_classes` has no example.
    #[error("class {class} of 0..{num_classes} has no examples; every class needs at least one (relabel to drop it)")]
    EmptyClass {
        /// The empty class.
        class: usize,
        /// The number of classes.
        num_classes: usize,
    },

    /// The analysis needs more classes than the labels hold.
    #[error("{analysis} needs at least {needed} classes, the labels hold {found}")]
    TooFewClasses {
        /// The analysis.
        analysis: &'static str,
        /// Classes required.
        needed: usize,
        /// Classes found.
        found: usize,
    },

    /// The analysis needs more examples than were given.
    #[error("{analysis} needs at least {needed} examples, got {found}")]
    TooFewExamples {
        /// The analysis.
        analysis: &'static str,
        /// Examples required.
        needed: usize,
        /// Examples found.
        found: usize,
    },

    /// The quantity is undefined because its input does not vary (or is zero).
    #[error("{what}: {reason}")]
    Degenerate {
        /// The input.
        what: String,
        /// Why the quantity is undefined.
        reason: String,
    },

    /// A setting is outside its allowed range.
    #[error("invalid setting `{name}` = {value}: {allowed}")]
    InvalidSetting {
        /// The setting.
        name: &'static str,
        /// Its value, printed.
        value: String,
        /// The allowed range.
        allowed: String,
    },

    /// Training diverged: the mean training loss of an epoch became infinite or NaN.
    #[error(
        "training diverged: the loss became {loss} at epoch {epoch}; lower the learning rate ({learning_rate}) or check the data"
    )]
    Diverged {
        /// The epoch, from 1.
        epoch: usize,
        /// The epoch's mean training loss (infinite or NaN).
        loss: f64,
        /// The configured learning rate (per 256 examples).
        learning_rate: f64,
    },

    /// A run folder is not in the state the operation needs.
    #[error("{path}: {state}")]
    RunFolder {
        /// The run folder.
        path: PathBuf,
        /// What is wrong with it.
        state: RunFolderState,
    },

    /// A `results.json` of another schema version than this losslens reads.
    #[error("{name} has results version {}; this losslens reads version {supported}", found.map_or("none".to_string(), |v| v.to_string()))]
    ResultsVersion {
        /// The file (a path or an address).
        name: String,
        /// The version it declares, if any.
        found: Option<u64>,
        /// The version this losslens reads.
        supported: u32,
    },

    /// The compute device failed or could not be started.
    #[error("device: {0}")]
    Device(String),

    /// The user cancelled the computation (a [`crate::compute::Pacer`] stopped it), or a
    /// study's worker lost its unit to another worker.
    #[error("cancelled")]
    Cancelled,

    /// A study's results were asked for while some of its units are unfinished (not yet done by
    /// the workers that share it).
    #[error(
        "the study is not finished: {} unit{} left ({}); let the workers finish them, then collect the results",
        units.len(),
        if units.len() == 1 { " is" } else { "s are" },
        units.join(", ")
    )]
    Unfinished {
        /// The unfinished units, by name.
        units: Vec<String>,
    },
}

/// What is wrong with a run folder ([`Error::RunFolder`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunFolderState {
    /// Resuming was asked for, but no run is there.
    NothingToResume,
    /// A new run was asked for, but a run is already there.
    AlreadyHoldsRun,
    /// Resuming was asked for with settings other than the run's.
    ConfigurationChanged,
    /// The folder named as a run (a pretrained network, a run to extract from) holds none.
    NotARun,
    /// The run has not finished an epoch, so it has no weights.
    NoWeights,
}

impl std::fmt::Display for RunFolderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunFolderState::NothingToResume => "nothing to resume: no run here (config.toml is missing)",
            RunFolderState::AlreadyHoldsRun => "already holds a run",
            RunFolderState::ConfigurationChanged => "the run was started with a different configuration",
            RunFolderState::NotARun => "no run folder here (config.toml is missing)",
            RunFolderState::NoWeights => "the run has not finished an epoch yet, so it has no weights",
        })
    }
}

impl Error {
    /// An [`Error::RunFolder`] for `path`.
    pub fn run_folder(path: impl Into<PathBuf>, state: RunFolderState) -> Self {
        Error::RunFolder {
            path: path.into(),
            state,
        }
    }

    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Format`] for `path`.
    pub fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// An [`Error::Degenerate`].
    pub fn degenerate(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Degenerate {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// An [`Error::InvalidSetting`].
    pub fn invalid_setting(name: &'static str, value: impl ToString, allowed: impl Into<String>) -> Self {
        Error::InvalidSetting {
            name,
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }
}

/// `Err(`[`Error::invalid_setting`]`)`, for the `validate()` methods of configs.
pub fn invalid_setting<T>(name: &'static str, value: impl ToString, allowed: impl Into<String>) -> Result<T> {
    Err(Error::invalid_setting(name, value, allowed))
}
