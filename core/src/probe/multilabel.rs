//! The multi-label linear probe (Table D.1): for a target whose examples carry any number of 0/1
//! labels (CheXpert's pathologies), one L²-regularised binary logistic regression per class on
//! fixed features, `L(w_c, b_c) = Σ_i BCE(x_i w_c + b_c, y_ic) + λ_c ‖w_c‖²` (the bias
//! unregularised), each class's λ_c chosen by ROC AUC on a validation part of the training set,
//! refitted on every training example and scored by its test ROC AUC; the target's measure is the
//! mean over classes.
//!
//! The classes are independent problems. They are fitted together, one matrix product for all
//! of them per evaluation, with a common λ on the path and each class's own λ in the refit, which
//! minimises the same objectives as fitting them one by one. scikit-learn's
//! `LogisticRegression(C = 1/(2λ))` per class minimises the same objective. The λ path, the
//! optimiser and the validation fraction are the linear probe's ([`LinearProbeConfig`]; its
//! `select_by` does not apply: classes are chosen by AUC).
//!
//! The validation part is stratified by each example's rarest positive class, so that every
//! class with two or more positive training examples has positives on both sides.

use serde::{Deserialize, Serialize};

use crate::compute::Compute;
use crate::error::{Error, Result};
use crate::features::{Array, ArrayData, Layer};
use crate::probe::auc::roc_auc;
use crate::probe::lbfgs::{LbfgsConfig, Termination};
use crate::probe::linear::{LinearProbeConfig, PathPoint, standardize};
use crate::probe::logistic::{LogisticModel, Resident, fit};
use crate::rng::SplitMix64;

/// 0/1 labels of examples that may belong to any number of classes.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelMatrix {
    /// Examples.
    pub rows: usize,
    /// Class names, one per column.
    pub names: Vec<String>,
    /// Whether example `i` belongs to class `c`, at `i * classes + c`.
    pub values: Vec<bool>,
}

impl LabelMatrix {
    /// Labels from a row-major `[rows, classes]` 0/1 matrix; classes named `0`, `1`, ….
    ///
    /// # Errors
    /// `values` is not `rows × classes` long, or there is no class.
    pub fn new(rows: usize, classes: usize, values: Vec<bool>) -> Result<Self> {
        if classes == 0 || values.len() != rows * classes {
            return Err(Error::Degenerate {
                what: "multi-label labels".into(),
                reason: format!(
                    "{} values do not form {rows} rows of {classes} classes (at least one)",
                    values.len()
                ),
            });
        }
        Ok(Self {
            rows,
            names: (0..classes).map(|c| c.to_string()).collect(),
            values,
        })
    }

    /// Labels from a 2-D array `[examples, classes]` whose every value is 0 or 1 (integers or
    /// floats), read from `path`.
    pub fn from_array(path: &std::path::Path, name: &str, array: &Array) -> Result<Self> {
        let [rows, classes] = array.shape[..] else {
            return Err(Error::Shape {
                path: path.to_path_buf(),
                array: name.to_string(),
                shape: array.shape.clone(),
                expected: "multi-label labels are a 0/1 matrix [examples, classes]".into(),
            });
        };
        let values: Vec<f64> = match &array.data {
            ArrayData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            ArrayData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            ArrayData::F64(v) => v.clone(),
        };
        if let Some(i) = values.iter().position(|&v| v != 0.0 && v != 1.0) {
            return Err(Error::format(
                path,
                format!(
                    "`{name}`: the label of example {} for class {} is {}; multi-label labels are 0 or 1 \
                     (map uncertain or missing labels to one of them first)",
                    i / classes.max(1),
                    i % classes.max(1),
                    values[i]
                ),
            ));
        }
        Self::new(rows, classes, values.iter().map(|&v| v == 1.0).collect())
    }

    /// The same labels with these class names.
    pub fn with_names(self, names: Vec<String>) -> Result<Self> {
        if names.len() != self.classes() {
            return Err(Error::Degenerate {
                what: "multi-label labels".into(),
                reason: format!("{} names for {} classes", names.len(), self.classes()),
            });
        }
        Ok(Self { names, ..self })
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.names.len()
    }

    /// Column `c`: which examples belong to class `c`.
    pub fn column(&self, c: usize) -> Vec<bool> {
        let k = self.classes();
        (0..self.rows).map(|i| self.values[i * k + c]).collect()
    }

    /// Positive examples of every class.
    pub fn positives(&self) -> Vec<usize> {
        let k = self.classes();
        let mut counts = vec![0; k];
        for (i, &v) in self.values.iter().enumerate() {
            counts[i % k] += usize::from(v);
        }
        counts
    }

    /// The labels of examples `rows`, in that order.
    pub fn select_rows(&self, rows: &[usize]) -> Self {
        let k = self.classes();
        Self {
            rows: rows.len(),
            names: self.names.clone(),
            values: rows
                .iter()
                .flat_map(|&i| self.values[i * k..(i + 1) * k].iter().copied())
                .collect(),
        }
    }

    /// Refuses a class without a positive or without a negative example (its AUC is undefined);
    /// `part` names these labels in the message, which ends with `remedy`.
    fn check_both_kinds(&self, part: &str, remedy: &str) -> Result<()> {
        for (c, &p) in self.positives().iter().enumerate() {
            if p == 0 || p == self.rows {
                let kind = if p == 0 { "positive" } else { "negative" };
                return Err(Error::Degenerate {
                    what: "multi-label probe".into(),
                    reason: format!(
                        "class `{}` has no {kind} example in the {part} labels ({p} of {} positive), \
                         so its ROC AUC is undefined: {remedy}",
                        self.names[c], self.rows
                    ),
                });
            }
        }
        Ok(())
    }
}

/// One class of a [`MultiLabelResult`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassAuc {
    /// The class's name.
    pub class: String,
    /// Its chosen λ.
    pub lambda: f64,
    /// Its validation AUC at that λ (NaN for a fixed λ).
    pub validation_auc: f64,
    /// Its test ROC AUC.
    pub auc: f64,
    /// Positive training examples.
    pub train_positives: usize,
    /// Positive test examples.
    pub test_positives: usize,
}

/// One λ of the path: every class fitted with it on the training part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiLabelPathPoint {
    /// λ.
    pub lambda: f64,
    /// Each class's validation ROC AUC.
    pub validation_auc: Vec<f64>,
    /// L-BFGS iterations.
    pub iterations: usize,
    /// `max |∇|` of the per-example objective at the end.
    pub gradient_norm: f64,
    /// Whether L-BFGS converged.
    pub converged: bool,
    /// Why it stopped.
    pub termination: Termination,
}

/// The result of the multi-label probe.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MultiLabelResult {
    /// Mean test ROC AUC over the classes: the target's measure.
    pub mean_auc: f64,
    /// Every class.
    pub classes: Vec<ClassAuc>,
    /// The λ path on the training part (empty for a fixed λ).
    pub path: Vec<MultiLabelPathPoint>,
    /// The final fit on every training example with each class's λ.
    pub refit: PathPoint,
    /// Feature width.
    pub features: usize,
    /// Examples fitted during the path.
    pub train_examples: usize,
    /// Examples held out for choosing λ.
    pub validation_examples: usize,
    /// Test examples.
    pub test_examples: usize,
}

/// Fits every class of `labels` on the whole `layer`, class `c` with `lambdas[c]`, from zero:
/// the model (`[P, C]` weights and `[C]` biases, as [`LogisticModel`]) and the fit's record
/// (its `objective` is the per-example objective summed over the classes).
pub async fn fit_sigmoids(
    compute: &Compute,
    layer: &Layer,
    labels: &LabelMatrix,
    lambdas: &[f64],
    optimizer: &LbfgsConfig,
) -> Result<(LogisticModel, PathPoint)> {
    check_rows(layer, labels)?;
    if lambdas.len() != labels.classes() || lambdas.iter().any(|l| !(l.is_finite() && *l >= 0.0)) {
        return Err(Error::invalid_setting(
            "lambda",
            format!("{lambdas:?}"),
            format!("one finite λ ≥ 0 per class ({})", labels.classes()),
        ));
    }
    let data = Resident::with_binary_targets(compute, layer, &labels.values, labels.classes());
    let zeros = vec![0.0; layer.cols * labels.classes() + labels.classes()];
    fit(compute, &data, lambdas, zeros, layer.cols, optimizer).await
}

fn check_rows(layer: &Layer, labels: &LabelMatrix) -> Result<()> {
    if layer.rows != labels.rows {
        return Err(Error::RowMismatch {
            what: "features and labels".into(),
            a: layer.origin.clone(),
            rows_a: layer.rows,
            b: "its labels".into(),
            rows_b: labels.rows,
        });
    }
    Ok(())
}

/// Checks a train/test pair of a multi-label probe: features and labels of equal lengths, equal
/// widths, the same classes, and both kinds of example of every class on both sides.
pub(crate) fn check_pair(
    (train, train_labels): (&Layer, &LabelMatrix),
    (test, test_labels): (&Layer, &LabelMatrix),
) -> Result<()> {
    check_rows(train, train_labels)?;
    check_rows(test, test_labels)?;
    super::check_same_width(train, test)?;
    if train_labels.classes() != test_labels.classes() {
        return Err(Error::Degenerate {
            what: "multi-label probe".into(),
            reason: format!(
                "the training labels have {} classes and the test labels {}; both need the same classes",
                train_labels.classes(),
                test_labels.classes()
            ),
        });
    }
    let remedy = "drop the class or add examples";
    train_labels.check_both_kinds("training", remedy)?;
    test_labels.check_both_kinds("test", remedy)
}

/// Held-out and fitted rows: every example keyed by its rarest positive class (by positive
/// count; no positive is a key of its own), `round(fraction · n)` of each key's `n` examples
/// held out, at least one and at most `n − 1` where `n ≥ 2`, chosen by `seed`; both ascending.
fn validation_split(labels: &LabelMatrix, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let k = labels.classes();
    let positives = labels.positives();
    let mut by_key: std::collections::BTreeMap<usize, Vec<usize>> = std::collections::BTreeMap::new();
    for i in 0..labels.rows {
        let key = (0..k)
            .filter(|&c| labels.values[i * k + c])
            .min_by_key(|&c| (positives[c], c))
            .unwrap_or(k);
        by_key.entry(key).or_default().push(i);
    }
    let mut rng = SplitMix64::new(seed);
    let (mut fitted, mut held) = (Vec::new(), Vec::new());
    for members in by_key.into_values() {
        let n = members.len();
        let count = match n {
            0 | 1 => 0,
            _ => ((fraction * n as f64).round() as usize).clamp(1, n - 1),
        };
        for (rank, j) in rng.permutation(n).into_iter().enumerate() {
            if rank < count {
                held.push(members[j]);
            } else {
                fitted.push(members[j]);
            }
        }
    }
    fitted.sort_unstable();
    held.sort_unstable();
    (fitted, held)
}

/// Per-class test AUCs of `model` on `data` labelled `labels`.
async fn aucs(compute: &Compute, data: &Resident, model: &LogisticModel, labels: &LabelMatrix) -> Result<Vec<f64>> {
    let scores = data.scores(compute, model).await?;
    let k = model.classes;
    (0..k)
        .map(|c| {
            let column: Vec<f64> = scores.iter().skip(c).step_by(k).copied().collect();
            roc_auc(&column, &labels.column(c))
        })
        .collect()
}

/// Runs the multi-label probe protocol (see the module documentation). `progress` is called
/// after each λ of the path.
///
/// # Errors
/// Features and labels of different lengths or widths; train and test labels with different
/// classes; a class without a positive or a negative example in the training or test labels, or
/// with too few to choose its λ on a validation part.
pub async fn multilabel_probe(
    compute: &Compute,
    train: &Layer,
    train_labels: &LabelMatrix,
    test: &Layer,
    test_labels: &LabelMatrix,
    config: &LinearProbeConfig,
    progress: &mut dyn FnMut(&MultiLabelPathPoint),
) -> Result<MultiLabelResult> {
    config.validate()?;
    check_pair((train, train_labels), (test, test_labels))?;
    let standardized;
    let (train, test) = if config.standardize {
        standardized = standardize(train, test);
        (&standardized.0, &standardized.1)
    } else {
        (train, test)
    };
    let (features, k) = (train.cols, train_labels.classes());
    let zeros = vec![0.0; features * k + k];
    let (mut chosen, mut start) = (vec![config.fixed_lambda.unwrap_or(0.0); k], zeros.clone());
    let mut best = vec![f64::NAN; k];
    let mut path = Vec::new();
    let (train_examples, validation_examples);
    if config.fixed_lambda.is_none() {
        let (fitted, held) = validation_split(train_labels, config.validation_fraction, config.seed);
        let (fit_labels, val_labels) = (train_labels.select_rows(&fitted), train_labels.select_rows(&held));
        let remedy = "a class needs two or more positive and negative training examples to choose its λ \
                      (or fix λ)";
        fit_labels.check_both_kinds("fitted part of the training", remedy)?;
        val_labels.check_both_kinds("validation part of the training", remedy)?;
        let fit_data = Resident::with_binary_targets(compute, &train.select_rows(&fitted), &fit_labels.values, k);
        let val_data = Resident::new(compute, &train.select_rows(&held));
        (train_examples, validation_examples) = (fitted.len(), held.len());
        best = vec![f64::NEG_INFINITY; k];
        let mut params = zeros;
        for lambda in config.lambdas() {
            let (model, point) = fit(
                compute,
                &fit_data,
                &vec![lambda; k],
                params,
                features,
                &config.optimizer,
            )
            .await?;
            let validation_auc = aucs(compute, &val_data, &model, &val_labels).await?;
            for c in 0..k {
                // Ties go to the larger λ (the path increases).
                if validation_auc[c] >= best[c] {
                    best[c] = validation_auc[c];
                    chosen[c] = lambda;
                    for p in 0..features {
                        start[p * k + c] = model.params[p * k + c];
                    }
                    start[features * k + c] = model.params[features * k + c];
                }
            }
            let point = MultiLabelPathPoint {
                lambda,
                validation_auc,
                iterations: point.iterations,
                gradient_norm: point.gradient_norm,
                converged: point.converged,
                termination: point.termination,
            };
            progress(&point);
            path.push(point);
            params = model.params;
        }
    } else {
        (train_examples, validation_examples) = (train.rows, 0);
    }
    let all = Resident::with_binary_targets(compute, train, &train_labels.values, k);
    let (model, refit) = fit(compute, &all, &chosen, start, features, &config.optimizer).await?;
    let test_auc = aucs(compute, &Resident::new(compute, test), &model, test_labels).await?;
    let (train_positives, test_positives) = (train_labels.positives(), test_labels.positives());
    let classes: Vec<ClassAuc> = (0..k)
        .map(|c| ClassAuc {
            class: train_labels.names[c].clone(),
            lambda: chosen[c],
            validation_auc: best[c],
            auc: test_auc[c],
            train_positives: train_positives[c],
            test_positives: test_positives[c],
        })
        .collect();
    Ok(MultiLabelResult {
        mean_auc: test_auc.iter().sum::<f64>() / k as f64,
        classes,
        path,
        refit,
        features,
        train_examples,
        validation_examples,
        test_examples: test.rows,
    })
}
