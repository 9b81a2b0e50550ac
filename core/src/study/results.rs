//! `results.json`: what a study found, in one versioned schema that `losslens study` writes,
//! `losslens report` reads (and rewrites into a site) and the browser explorer reads; the summary
//! types of its tables; and the queries that the tables, the figures and the explorer share
//! (objectives in study order, layers, runs of an objective).

use serde::{Deserialize, Serialize};

use crate::analysis::stats::MeanSd;
use crate::error::{Error, Result};

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
    pub summary: Option<Summary>,
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
            },
            transfer: vec![Transfer {
                target: "t".into(),
                linear,
                lambda: 1.0,
                knn: linear - 0.1,
                k: 5,
            }],
            separation: vec![LayerValue {
                layer: "penultimate".into(),
                value: r2,
            }],
            sparsity: Vec::new(),
            collapse: None,
            features: None,
            finetune: Vec::new(),
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
            }],
            cka: Vec::new(),
            runs,
            summary: None,
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
