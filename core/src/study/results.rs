//! `results.json`: what a study found, in one versioned schema that `losslens study` writes,
//! `losslens report` reads (and rewrites into a site) and the browser explorer reads; the summary
//! types of its tables; and the queries that the tables, the figures and the explorer share
//! (objectives in study order, layers, runs of an objective).

use serde::{Deserialize, Serialize};

use crate::analysis::stats::MeanSd;
use crate::error::{Error, Result};
use crate::probe::metrics::Probability;

/// Version of the `results.json` schema.
///
/// 2: R² of every block on its whole (flattened) output and under the three distances of Table
/// E.1 (`separation_distances`), the images each analysis used (`protocol`), sparsity on test
/// images, calibration before and after temperature scaling (`source`), the cosine-softmax
/// classifier's normalised rows in neural collapse, sweep entries apart from the main
/// objectives (`sweeps`), CKA between the networks on source test images over the blocks' whole
/// outputs (`cka`, Fig. 2b) and between every block of two networks (`cka_blocks`, Fig. 2a).
pub const RESULTS_VERSION: u32 = 2;

pub use crate::probe::metrics::Measure;

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
    /// Linear CKA between the networks of the main objectives at each layer (Fig. 2b), on the
    /// same source test images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cka: Vec<LayerCka>,
    /// Linear CKA between every block of one network and every block of another (Fig. 2a): the
    /// reference network (softmax) against a network of each main objective, another softmax
    /// network and a network at initialisation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cka_blocks: Vec<BlockCka>,
    /// Objectives of the study that are a sweep of a hyperparameter (the cosine-softmax
    /// temperatures of Table 4), not among the main objectives of Table 1, Figs. 1 and 5a and
    /// the rank correlation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweeps: Vec<String>,
    /// Which images each analysis used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// The epochs chosen for each objective on a holdout (`[tune]`), with which the final runs
    /// trained on every training image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tuning: Vec<Tuning>,
    /// Aggregated over seeds ([`crate::study::aggregate::summarize`]); absent while empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// How alike the main objectives' networks predict (Figs. C.4–C.7); absent with fewer than
    /// two networks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<Agreement>,
}

impl StudyResults {
    /// Decodes the text of a `results.json` called `name` (a path or an address, for messages),
    /// refusing other schema versions by name before reading any further.
    pub fn parse(text: &str, name: &str) -> Result<StudyResults> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::format(name, format!("not JSON: {e}")))?;
        let version = value.get("version").and_then(|v| v.as_u64());
        if version != Some(u64::from(RESULTS_VERSION)) {
            return Err(Error::ResultsVersion {
                name: name.to_string(),
                found: version,
                supported: RESULTS_VERSION,
            });
        }
        serde_json::from_value(value).map_err(|e| Error::format(name, format!("not a losslens results file: {e}")))
    }

    /// Reads and decodes the `results.json` at `path` ([`StudyResults::parse`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read(path: &std::path::Path) -> Result<StudyResults> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The main objectives (not sweep entries) in study order, limited to `only` when it is not
    /// empty: the rows of Table 1 and the points of Figs. 1 and 5a.
    pub fn main_objectives(&self, only: &[String]) -> Vec<String> {
        self.objectives(only)
            .into_iter()
            .filter(|o| !self.sweeps.contains(o))
            .collect()
    }

    /// The objectives of the runs in study order, limited to `only` when it is not empty.
    pub fn objectives(&self, only: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for run in &self.runs {
            if !out.contains(&run.objective) && (only.is_empty() || only.contains(&run.objective)) {
                out.push(run.objective.clone());
            }
        }
        out
    }

    /// The layers a per-layer measurement covers, in network order (the run with the most).
    pub fn layers(&self) -> Vec<String> {
        self.runs
            .iter()
            .map(|r| r.separation.iter().map(|l| l.layer.clone()).collect::<Vec<_>>())
            .max_by_key(Vec::len)
            .unwrap_or_default()
    }

    /// The runs (seeds) of one objective.
    pub fn runs_of<'a>(&'a self, objective: &'a str) -> impl Iterator<Item = &'a RunResult> + 'a {
        self.runs.iter().filter(move |r| r.objective == objective)
    }

    /// `f` of every run, grouped by objective (in the order of `objectives`); runs where `f`
    /// gives `None` are left out.
    pub fn per_objective(&self, objectives: &[String], f: &dyn Fn(&RunResult) -> Option<f64>) -> Vec<Vec<f64>> {
        objectives
            .iter()
            .map(|o| self.runs_of(o).filter_map(f).collect())
            .collect()
    }

    /// Each corruption's error summed over the severities, averaged over the study's plain
    /// softmax networks (objective `softmax`): the denominators of ImageNet-C's mCE with softmax
    /// in AlexNet's place. `None` without such networks measured under corruptions.
    pub fn corruption_baseline(&self) -> Option<std::collections::BTreeMap<String, f64>> {
        let mut sums: std::collections::BTreeMap<String, Vec<f64>> = std::collections::BTreeMap::new();
        for run in self.runs.iter().filter(|r| r.objective == "softmax") {
            for c in run.source.robustness.iter().flat_map(|r| &r.corruptions) {
                sums.entry(c.corruption.clone())
                    .or_default()
                    .push(c.errors.iter().sum());
            }
        }
        let baseline: std::collections::BTreeMap<String, f64> =
            sums.into_iter().filter_map(|(c, v)| Some((c, mean(v)?))).collect();
        (!baseline.is_empty()).then_some(baseline)
    }

    /// Mean linear transfer accuracy over targets and seeds of one objective.
    pub fn mean_transfer(&self, objective: &str) -> Option<f64> {
        mean(
            self.runs_of(objective)
                .flat_map(|r| r.transfer.iter().map(|t| t.linear)),
        )
    }

    /// The same study with only the runs of the objectives in `only` (all when empty) and no
    /// summary.
    pub fn filtered(&self, only: &[String]) -> StudyResults {
        let mut out = self.clone();
        if !only.is_empty() {
            out.runs.retain(|r| only.contains(&r.objective));
        }
        out.summary = None;
        out
    }
}

/// Whether `path`, a path a results file holds, is relative and stays inside the folder of that
/// file: no scheme (`javascript:`, `https:`), no leading `/` or `\\`, no `..` component. A
/// results file travels with shared sites, so what it names is untrusted.
pub fn is_inside_path(path: &str) -> bool {
    !path.is_empty()
        && !path.contains(':')
        && !path.starts_with(['/', '\\'])
        && path.split(['/', '\\']).all(|part| part != "..")
}

/// The mean of `values`; `None` when there are none.
pub(crate) fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.into_iter().fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// One column of a table: a value per objective, aggregated over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// Column title.
    pub title: String,
    /// Mean ± sd per objective (row order of [`Summary::objectives`]).
    pub values: Vec<MeanSd>,
    /// Whether each objective ties with the best (bold in the tables).
    pub bold: Vec<bool>,
}

/// A study's summary: the paper's Table 1 (source accuracy, transfer per target, class
/// separation) with its bold-facing, and the correlation of section 3.3. The other tables have
/// the same shape ([`crate::study::aggregate::tables`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Objectives (with hyperparameters), in study order.
    pub objectives: Vec<String>,
    /// Source top-1, source top-5, R² (penultimate), then linear and kNN transfer per target and
    /// the linear average.
    pub columns: Vec<Column>,
    /// Spearman's ρ between penultimate R² and mean linear transfer accuracy over objectives,
    /// with its p-value; `None` with fewer than three objectives or no targets.
    pub r2_vs_transfer: Option<(f64, f64)>,
    /// What the rows are, when they are not objectives (the header of the first column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_header: Option<String>,
}

/// The epochs chosen for one objective on a holdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    /// The objective.
    pub objective: String,
    /// The chosen number of epochs.
    pub epochs: usize,
    /// Holdout accuracy after each epoch, averaged over the tuning runs.
    pub holdout_accuracy: Vec<f64>,
}

/// Which images each analysis of a study used (the same for every run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Protocol {
    /// Class separation R² and neural collapse: source training images, class-stratified.
    pub separation_images: usize,
    /// Images of the smallest class in that sample (R² reads about `(1 − R²) / N_k` too high).
    pub separation_per_class: usize,
    /// Activation sparsity: source test images.
    pub sparsity_images: usize,
    /// Source test images for accuracy and calibration.
    pub test_images: usize,
    /// Saved features (`features.npz`, for the explorer): source training images,
    /// class-stratified.
    pub feature_images: usize,
    /// CKA between the networks: source test images (class-stratified).
    #[serde(default)]
    pub cka_images: usize,
    /// CKA between the networks: examples per minibatch (the largest).
    #[serde(default)]
    pub cka_batch_size: usize,
    /// CKA between the networks: passes over the images, each shuffled anew.
    #[serde(default)]
    pub cka_passes: usize,
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
    /// A multi-label target: its transfer numbers are mean ROC AUC over its classes.
    #[serde(default, skip_serializing_if = "is_false")]
    pub multilabel: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
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
    /// Class separation R² (cosine, eq. 11) of each layer on source training images, network
    /// order: every block on its whole output (the spatial positions flattened, as the paper's
    /// Fig. 4), the penultimate layer on its pooled features.
    pub separation: Vec<LayerValue>,
    /// The same layers under each distance of Table E.1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub separation_distances: Vec<LayerSeparation>,
    /// Fraction of non-zero activations of each layer on source test images.
    pub sparsity: Vec<LayerValue>,
    /// Neural-collapse geometry of the penultimate layer and the classifier (Table E.2); absent
    /// for fewer than three source classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collapse: Option<crate::analysis::collapse::Collapse>,
    /// Singular value spectra of the penultimate features, their class centroids and the
    /// classifier's rows as the objective applies them, on the same images (Fig. E.2), each cut
    /// to its 512 largest values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spectra: Option<crate::analysis::Spectra>,
    /// Cosine distances between source training images of the same and of different classes
    /// (Fig. E.3), when the study asks for them (`analysis.angles`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distances: Option<CosineDistances>,
    /// Top-1 predictions on the source test split (the same images for every run), kept in the
    /// run's own record for the study's agreement analysis; a study's `results.json` leaves them
    /// out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub predictions: Vec<usize>,
    /// Features of every layer on a class-stratified sample of source training images (the same
    /// images for every run), relative to the folder of `results.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<String>,
    /// Fine-tuning the whole network on each target (Table 2), in the study's target order;
    /// empty when the study does not fine-tune.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finetune: Vec<Finetune>,
    /// The network at each epoch whose weights training kept (`train.keep_every`) before its
    /// best epoch, then at the best epoch (the final network): the training dynamics. Empty
    /// unless weights were kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dynamics: Vec<DynamicsPoint>,
}

impl RunResult {
    /// `softmax s0`: the run's name in figures.
    pub fn label(&self) -> String {
        format!("{} s{}", self.objective, self.seed)
    }

    /// The value of a per-layer measurement (`separation`, `sparsity`) at `layer`.
    pub fn at(values: &[LayerValue], layer: &str) -> Option<f64> {
        values.iter().find(|v| v.layer == layer).map(|v| v.value)
    }

    /// Class separation R² of the penultimate layer.
    pub fn penultimate_r2(&self) -> Option<f64> {
        Self::at(&self.separation, crate::model::PENULTIMATE)
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
    /// run `j` at this layer, on its whole (flattened) output.
    pub values: Vec<Vec<f64>>,
    /// Source test images compared.
    pub images: usize,
}

/// Linear CKA between every block of network `a` (rows) and every block of network `b`
/// (columns), on the same source test images as [`LayerCka`] (Fig. 2a).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockCka {
    /// The first network ([`RunResult::label`]).
    pub a: String,
    /// The second network: a run label, or `initialisation (…)` for the control network.
    pub b: String,
    /// The layers of both, in network order (rows and columns).
    pub layers: Vec<String>,
    /// `values[i][j]`: minibatch CKA between layer `i` of `a` and layer `j` of `b`.
    pub values: Vec<Vec<f64>>,
}

/// Source test split evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceEval {
    /// Top-1 accuracy.
    pub top1: f64,
    /// Top-5 accuracy (top-min(5, classes)).
    pub top5: f64,
    /// Mean negative log-likelihood at temperature 1, in the objective's probability model.
    pub nll: f64,
    /// Expected calibration error (15 bins) at temperature 1.
    pub ece: f64,
    /// How the outputs become probabilities (normalised sigmoids for the sigmoid objective).
    #[serde(default)]
    pub probability: Probability,
    /// The temperature that minimises the NLL on the run's holdout images; none without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// NLL after temperature scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nll_calibrated: Option<f64>,
    /// ECE after temperature scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ece_calibrated: Option<f64>,
    /// Holdout images the temperature was fitted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_images: Option<usize>,
    /// The source head relearned from the penultimate features of part of the test split
    /// (Fig. 6), when the study asks for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relearned_head: Option<HeadRelearning>,
    /// Angular visual hardness of the test images (Fig. E.1), when the study asks for it
    /// (`analysis.angles`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardness: Option<crate::analysis::Histogram>,
    /// Accuracy on the network's own training images, unaugmented (Table C.1), when the study
    /// asks for it (`analysis.train_accuracy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<TrainAccuracy>,
    /// Accuracy on the study's extra test sets and under corruptions (Table C.2), when the study
    /// has either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub robustness: Option<Robustness>,
}

/// Out-of-distribution accuracy of a network (Table C.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Robustness {
    /// Top-1 accuracy on each extra test set, in study order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<ExtraAccuracy>,
    /// Top-1 error under each corruption at severities 1 to 5 (ImageNet-C's order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corruptions: Vec<CorruptionErrors>,
    /// Source test images corrupted.
    #[serde(default)]
    pub corruption_images: usize,
}

/// Accuracy on one extra test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtraAccuracy {
    /// The set's name.
    pub name: String,
    /// Top-1 accuracy among the set's classes.
    pub top1: f64,
    /// Its images.
    pub images: usize,
    /// Its classes (all source classes, or fewer).
    pub classes: usize,
}

/// Top-1 error under one corruption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorruptionErrors {
    /// The corruption's name (`gaussian-noise`).
    pub corruption: String,
    /// The error at severities 1 to 5.
    pub errors: Vec<f64>,
}

impl Robustness {
    /// The mean top-1 error over every corruption and severity.
    pub fn mean_corruption_error(&self) -> Option<f64> {
        let errors: Vec<f64> = self.corruptions.iter().flat_map(|c| c.errors.iter().copied()).collect();
        mean(errors)
    }

    /// The mean corruption error relative to `baseline` (ImageNet-C's mCE): for each corruption,
    /// the sum of the errors over the severities divided by the baseline's sum, averaged over
    /// the corruptions both have. `baseline` maps corruption names to summed errors.
    pub fn relative_corruption_error(&self, baseline: &std::collections::BTreeMap<String, f64>) -> Option<f64> {
        mean(self.corruptions.iter().filter_map(|c| {
            let base = baseline.get(&c.corruption).copied().filter(|b| *b > 0.0)?;
            Some(c.errors.iter().sum::<f64>() / base)
        }))
    }
}

/// Accuracy of a network on the images it trained on, through the evaluation crop (Table C.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainAccuracy {
    /// Top-1 accuracy.
    pub top1: f64,
    /// Top-5 accuracy (top-min(5, classes)).
    pub top5: f64,
    /// Training images measured.
    pub images: usize,
}

/// A run's network at one epoch of its training, measured as the study measures the final
/// network (Figs. C.1–C.3, D.2, E.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynamicsPoint {
    /// The epoch (from 1) at whose end the weights were kept.
    pub epoch: usize,
    /// Top-1 accuracy on the source test split (Fig. C.1).
    pub top1: f64,
    /// Top-1 accuracy on the unaugmented training images of Table C.1 (Fig. C.2), when the study
    /// measures it (`analysis.train_accuracy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_top1: Option<f64>,
    /// Linear transfer accuracy (the linear probe of [`Transfer::linear`]) on each target, in
    /// the study's target order (Fig. D.2).
    pub transfer: Vec<TargetValue>,
    /// Class separation R² (cosine) of each layer on the source training images of
    /// [`RunResult::separation`] (Fig. E.4, left).
    pub separation: Vec<LayerValue>,
    /// Class separation R² (cosine) of the penultimate layer on the source test split (Fig. E.4,
    /// right).
    pub test_separation: f64,
}

/// One number per target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetValue {
    /// The target's name.
    pub target: String,
    /// The value.
    pub value: f64,
}

/// How alike the networks of a study predict on the source test split (Figs. C.4–C.7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// The networks compared (run labels, `softmax s0`), main objectives in study order.
    pub runs: Vec<String>,
    /// Pairwise agreement of their predictions (Figs. C.4a, C.5).
    pub pairwise: crate::analysis::agreement::PairwiseAgreement,
    /// Average-linkage clustering of the networks by `1 − same_error` (Fig. C.4b; a pair with
    /// no common error counts as distance 1).
    pub linkage: Vec<crate::analysis::agreement::Merge>,
    /// The objectives of the ensembles, in study order.
    pub objectives: Vec<String>,
    /// Accuracy of the modal vote of each objective's networks (Fig. C.6).
    pub ensemble_accuracy: Vec<f64>,
    /// Share of examples where two objectives' ensembles predict alike (Fig. C.6).
    pub ensemble_agreement: Vec<Vec<f64>>,
    /// Accuracy of the modal vote of `mixed_size` networks of one objective with as many of
    /// another (Fig. C.7; the diagonal: twice as many of one, where it has them).
    pub mixed_accuracy: Vec<Vec<f64>>,
    /// Networks each objective gives a mixed ensemble.
    pub mixed_size: usize,
}

impl Agreement {
    /// Whether every matrix has the sizes its lists of networks and objectives imply (a results
    /// file is untrusted input).
    pub fn is_consistent(&self) -> bool {
        let square = |m: &[Vec<f64>], n: usize| m.len() == n && m.iter().all(|r| r.len() == n);
        let (n, k) = (self.runs.len(), self.objectives.len());
        let p = &self.pairwise;
        square(&p.same_prediction, n)
            && square(&p.same_correctness, n)
            && p.same_error.len() == n
            && p.same_error.iter().all(|r| r.len() == n)
            && self.ensemble_accuracy.len() == k
            && square(&self.ensemble_agreement, k)
            && square(&self.mixed_accuracy, k)
    }
}

/// The cosine distances between the penultimate features of source training images (Fig. E.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CosineDistances {
    /// Pairs of the same class.
    pub within: crate::analysis::Histogram,
    /// Pairs of different classes.
    pub between: crate::analysis::Histogram,
    /// Images whose pairs were counted.
    pub images: usize,
}

/// The network's own head against a linear probe fitted on the penultimate features of 80 %
/// of the source test images (class-stratified), both scored on the other 20 % (Fig. 6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadRelearning {
    /// Top-1 accuracy of the network's own head on the scoring part.
    pub original: f64,
    /// Top-1 accuracy of the relearned head on the scoring part.
    pub relearned: f64,
    /// The L² strength chosen for the relearned head.
    pub lambda: f64,
    /// Images the head was relearned on.
    pub fit_images: usize,
    /// Images both heads were scored on.
    pub eval_images: usize,
}

/// Class separation R² of one layer under each distance of Table E.1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerSeparation {
    /// The layer.
    pub layer: String,
    /// Cosine distance (the paper's index; equals `separation`).
    pub cosine: f64,
    /// Cosine distance after subtracting the mean embedding.
    pub cosine_mean_subtracted: f64,
    /// Squared Euclidean distance.
    pub squared_euclidean: f64,
    /// Cosine distance on the block's spatially mean-pooled output (`analysis.separation_pooled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooled_cosine: Option<f64>,
}

/// Fixed-feature transfer to one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    /// The target's name.
    pub target: String,
    /// Linear probe accuracy, in the target's measure (a multi-label target's: the mean ROC
    /// AUC over its classes).
    pub linear: f64,
    /// The selected L² strength (a multi-label target's: the geometric mean of its classes').
    pub lambda: f64,
    /// kNN probe accuracy, in the target's measure (a multi-label target's: mean ROC AUC).
    pub knn: f64,
    /// The selected k.
    pub k: usize,
    /// Class-overlap assignment accuracy (Table F.1), when the study asks for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<AssignmentAccuracy>,
    /// A multi-label target's classes: each one's λ and linear-probe test ROC AUC (Table D.1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<crate::probe::multilabel::ClassAuc>,
}

/// The source network's own predictions on a target, mapped to the target's classes by the
/// assignment that classifies the most training images correctly (Table F.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignmentAccuracy {
    /// Accuracy of the mapping on the target's test images, a fraction (top-1).
    pub accuracy: f64,
    /// Accuracy of the mapping on the training images it was fitted on.
    pub fit_accuracy: f64,
    /// Source classes per target class at most (the replication of the paper).
    pub replication: usize,
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
    /// Minibatch CKA between each layer of the pretrained network and the same layer of the
    /// refit, on the target's test images (Fig. D.3); empty when not measured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cka: Vec<LayerValue>,
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

/// Small results for the tests of the study's tables and figures.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A run with one target `t` (kNN 0.1 below linear) and a penultimate R² (shared fixture
    /// of the study's tests).
    pub(crate) fn run(objective: &str, seed: u64, top1: f64, r2: f64, linear: f64) -> RunResult {
        RunResult {
            objective: objective.into(),
            kind: objective.into(),
            seed,
            best_epoch: Some(1),
            source: SourceEval {
                top1,
                top5: 1.0,
                nll: 0.5,
                ece: 0.1,
                probability: Default::default(),
                temperature: None,
                nll_calibrated: None,
                ece_calibrated: None,
                temperature_images: None,
                relearned_head: None,
                hardness: None,
                train: None,
                robustness: None,
            },
            transfer: vec![Transfer {
                target: "t".into(),
                linear,
                lambda: 1.0,
                knn: linear - 0.1,
                k: 5,
                assignment: None,
                classes: Vec::new(),
            }],
            separation: vec![LayerValue {
                layer: "penultimate".into(),
                value: r2,
            }],
            separation_distances: Vec::new(),
            sparsity: Vec::new(),
            collapse: None,
            spectra: None,
            distances: None,
            predictions: Vec::new(),
            features: None,
            finetune: Vec::new(),
            dynamics: Vec::new(),
        }
    }

    /// A study of `runs` with the one target `t`.
    pub(crate) fn study(runs: Vec<RunResult>) -> StudyResults {
        StudyResults {
            version: 1,
            name: "t".into(),
            source: "s".into(),
            model: "small".into(),
            targets: vec![TargetInfo {
                name: "t".into(),
                data: "d".into(),
                measure: Measure::Top1,
                multilabel: false,
            }],
            cka: Vec::new(),
            cka_blocks: Vec::new(),
            sweeps: Vec::new(),
            protocol: None,
            tuning: Vec::new(),
            runs,
            summary: None,
            agreement: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relative_paths_inside_the_folder_are_inside() {
        for ok in ["features/a.npz", "runs/softmax-s0/features.npz", "./a.npz", "a..b.npz"] {
            assert!(is_inside_path(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x.npz",
            "runs/../../x",
            "javascript:alert(1)",
            "https://example.com/a.npz",
            "C:\\x",
            "\\\\server\\share",
            "a\\..\\..\\b",
        ] {
            assert!(!is_inside_path(bad), "{bad}");
        }
    }
}
