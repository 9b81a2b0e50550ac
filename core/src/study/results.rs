//! `results.json`: what a study found, in one versioned schema that `losslens study` writes and
//! the browser explorer reads.

use serde::{Deserialize, Serialize};

/// Version of the `results.json` schema.
pub const RESULTS_VERSION: u32 = 1;

/// How a target dataset's accuracy is measured (the dataset creators' choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Measure {
    /// Top-1 accuracy.
    #[default]
    Top1,
    /// Mean per-class accuracy (unbalanced datasets such as Caltech-101).
    MeanPerClass,
}

/// A study's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyResults {
    /// Schema version ([`RESULTS_VERSION`]).
    pub version: u32,
    /// The study's name.
    pub name: String,
    /// The source dataset, as written on the command line.
    pub source: String,
    /// The network.
    pub model: String,
    /// The target datasets, in order.
    pub targets: Vec<TargetInfo>,
    /// One entry per (objective, seed).
    pub runs: Vec<RunResult>,
    /// Linear CKA between the networks at each layer (Fig. 2), on the same source images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cka: Vec<LayerCka>,
    /// Aggregated over seeds ([`crate::study::aggregate::summarize`]); absent while empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<crate::study::aggregate::Summary>,
}

/// A target dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// Its name in tables.
    pub name: String,
    /// The dataset, as written on the command line.
    pub data: String,
    /// Its accuracy measure.
    pub measure: Measure,
}

/// Everything measured for one trained network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The objective with its hyperparameters (`cosine-softmax:temperature=0.05`).
    pub objective: String,
    /// The objective's name (`cosine-softmax`).
    pub kind: String,
    /// The seed.
    pub seed: u64,
    /// The epoch whose weights were kept.
    pub best_epoch: Option<usize>,
    /// Accuracy and calibration on the source test split.
    pub source: SourceEval,
    /// Transfer to each target, in the study's target order.
    pub transfer: Vec<Transfer>,
    /// Class separation R² (cosine) of each layer on source training images, network order.
    pub separation: Vec<LayerValue>,
    /// Fraction of non-zero activations of each layer on source training images.
    pub sparsity: Vec<LayerValue>,
    /// Neural-collapse geometry of the penultimate layer and the classifier (Table E.2); absent
    /// for fewer than three source classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collapse: Option<crate::analysis::collapse::Collapse>,
    /// Features of every layer on a class-stratified sample of source training images (the same
    /// images for every run), relative to the folder of `results.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<String>,
    /// Fine-tuning the whole network on each target (Table 2), in the study's target order;
    /// empty when the study does not fine-tune.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finetune: Vec<Finetune>,
}

impl RunResult {
    /// `softmax s0`: the run's name in figures.
    pub fn label(&self) -> String {
        format!("{} s{}", self.objective, self.seed)
    }
}

/// Linear CKA between every pair of runs at one layer: a square, symmetric matrix with ones on
/// the diagonal (each network compared with itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerCka {
    /// The layer.
    pub layer: String,
    /// The runs ([`RunResult::label`]), rows and columns in this order.
    pub runs: Vec<String>,
    /// `values[i][j]`: minibatch CKA (unbiased HSIC, Nguyen et al. 2021) between run `i` and
    /// run `j` at this layer.
    pub values: Vec<Vec<f64>>,
    /// Images compared.
    pub images: usize,
}

/// Source test split evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceEval {
    /// Top-1 accuracy.
    pub top1: f64,
    /// Top-5 accuracy (top-min(5, classes)).
    pub top5: f64,
    /// Mean negative log-likelihood.
    pub nll: f64,
    /// Expected calibration error (15 bins).
    pub ece: f64,
}

/// Fixed-feature transfer to one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    /// The target's name.
    pub target: String,
    /// Linear probe accuracy, in the target's measure.
    pub linear: f64,
    /// The selected L² strength.
    pub lambda: f64,
    /// kNN probe accuracy, in the target's measure.
    pub knn: f64,
    /// The selected k.
    pub k: usize,
}

/// A number for one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerValue {
    /// The layer (`block1.0` …, `penultimate`).
    pub layer: String,
    /// The value.
    pub value: f64,
}

/// Fine-tuning the whole network on one target (SPEC §4, the paper's Appendix A.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finetune {
    /// The target's name.
    pub target: String,
    /// Test accuracy after the refit on training + validation images, in the target's measure.
    pub accuracy: f64,
    /// The chosen learning rate, per 256 examples.
    pub learning_rate: f64,
    /// The chosen weight decay (before division by the step size).
    pub weight_decay: f64,
    /// Validation accuracy of the chosen point, averaged over the objective's seeds (the
    /// quantity maximised).
    pub validation: f64,
    /// This run's validation accuracy at every point of the grid.
    pub grid: Vec<GridPoint>,
}

/// One learning rate × weight decay of the fine-tuning search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridPoint {
    /// Learning rate, per 256 examples.
    pub learning_rate: f64,
    /// Weight decay (before division by the step size).
    pub weight_decay: f64,
    /// Validation accuracy of the last epoch, in the target's measure; `None` when the loss
    /// diverged.
    pub validation: Option<f64>,
}
