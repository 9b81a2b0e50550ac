//! The linear probe (Appendix A.2): multinomial logistic regression on fixed features,
//! `L(W, b) = Σ_i CE(x_i W + b, y_i) + λ ‖W‖²_F` (λ on the sum of per-example losses, the bias
//! unregularised), minimised with L-BFGS.
//!
//! Protocol: hold out a stratified validation part of the training set; sweep λ over 45
//! log-spaced values from 1e-6 to 1e5, in increasing order, each fit warm-started from the
//! previous solution; choose λ by validation accuracy (ties go to the larger λ); refit on
//! training + validation, warm-started from the chosen λ's solution; report test metrics.
//! The temperature for calibrated metrics is fitted on the validation part.
//!
//! scikit-learn's `LogisticRegression(C=…)` minimises `Σ_i CE_i + ‖W‖²/(2C)`, so `C = 1/(2λ)`.
//! The optimiser works on that objective divided by the number of examples (as scikit-learn
//! does), so the gradient tolerance means the same in both.
//!
//! The features stay on the device for the whole path, in row chunks of at most
//! [`Compute::chunk_elements`] elements; each evaluation costs two matrix products per chunk
//! and one read-back of the gradient.

use serde::{Deserialize, Serialize};

use crate::analysis::Classes;
use crate::compute::Compute;
use crate::error::{Error, Result, invalid_setting};
use crate::features::{FloatData, Layer};
use crate::probe::lbfgs::{LbfgsConfig, Termination};
pub use crate::probe::logistic::LogisticModel;
use crate::probe::logistic::{Resident, fit};
use crate::probe::metrics::{Evaluation, Measure, argmax_rows, evaluate, fit_temperature};
use crate::probe::split::stratified_split;

/// Settings of the linear probe; defaults are the paper's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinearProbeConfig {
    /// Number of λ values on the path. Default 45.
    pub lambda_count: usize,
    /// Smallest λ. Default 1e-6.
    pub lambda_min: f64,
    /// Largest λ. Default 1e5.
    pub lambda_max: f64,
    /// Skip the path and fit this λ on the whole training set. Default none.
    pub fixed_lambda: Option<f64>,
    /// Fraction of each class held out for choosing λ. Default 0.2.
    pub validation_fraction: f64,
    /// Seed of the validation split. Default 0.
    pub seed: u64,
    /// Standardise each feature with the training set's mean and standard deviation (features
    /// with zero variance are only centred). Default off, as in the paper.
    pub standardize: bool,
    /// The optimiser.
    pub optimizer: LbfgsConfig,
    /// The accuracy λ is chosen by on the validation split (the target's measure: mean
    /// per-class accuracy for unbalanced datasets). Default top-1.
    #[serde(default)]
    pub select_by: Measure,
}

impl Default for LinearProbeConfig {
    fn default() -> Self {
        Self {
            lambda_count: 45,
            lambda_min: 1e-6,
            lambda_max: 1e5,
            fixed_lambda: None,
            validation_fraction: 0.2,
            seed: 0,
            standardize: false,
            optimizer: LbfgsConfig::default(),
            select_by: Measure::Top1,
        }
    }
}

impl LinearProbeConfig {
    /// The λ path, increasing.
    pub fn lambdas(&self) -> Vec<f64> {
        if let Some(lambda) = self.fixed_lambda {
            return vec![lambda];
        }
        let n = self.lambda_count;
        let (lo, hi) = (self.lambda_min.log10(), self.lambda_max.log10());
        (0..n)
            .map(|i| {
                if n == 1 {
                    self.lambda_min
                } else {
                    10f64.powf(lo + (hi - lo) * i as f64 / (n - 1) as f64)
                }
            })
            .collect()
    }

    /// Refuses settings that cannot work.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_LAMBDAS).contains(&self.lambda_count) {
            return invalid_setting(
                "lambda count",
                self.lambda_count,
                format!("1 to {MAX_LAMBDAS} (each is a full fit)"),
            );
        }
        if !(self.lambda_min > 0.0 && self.lambda_max >= self.lambda_min && self.lambda_max.is_finite()) {
            return invalid_setting(
                "lambda range",
                format!("{}..{}", self.lambda_min, self.lambda_max),
                "0 < min ≤ max < ∞",
            );
        }
        if let Some(l) = self.fixed_lambda
            && !(l.is_finite() && l >= 0.0)
        {
            return invalid_setting("lambda", l.to_string(), "a finite number ≥ 0");
        }
        if !(self.validation_fraction > 0.0 && self.validation_fraction < 1.0) && self.fixed_lambda.is_none() {
            return invalid_setting(
                "validation fraction",
                self.validation_fraction.to_string(),
                "a number in (0, 1)",
            );
        }
        self.optimizer.validate()
    }
}

/// Most λ values on a path: each is a full L-BFGS fit (the paper's path has 96).
pub const MAX_LAMBDAS: usize = 10_000;

/// One fit on the path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathPoint {
    /// λ.
    pub lambda: f64,
    /// Accuracy on the validation part (NaN for a fixed λ).
    pub validation_accuracy: f64,
    /// L-BFGS iterations.
    pub iterations: usize,
    /// Objective evaluations.
    pub evaluations: usize,
    /// `max |∇|` of the per-example objective at the end.
    pub gradient_norm: f64,
    /// The per-example objective at the end.
    pub objective: f64,
    /// Whether L-BFGS converged.
    pub converged: bool,
    /// Why L-BFGS stopped.
    pub termination: Termination,
}

/// The result of the linear probe.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinearProbeResult {
    /// The chosen λ.
    pub lambda: f64,
    /// Test top-1 accuracy, a fraction.
    pub accuracy: f64,
    /// Test mean per-class accuracy, a fraction.
    pub mean_per_class_accuracy: f64,
    /// Every test metric.
    pub test: Evaluation,
    /// The λ path on the training part.
    pub path: Vec<PathPoint>,
    /// The final fit on training + validation at the chosen λ.
    pub refit: PathPoint,
    /// Number of classes.
    pub classes: usize,
    /// Feature width.
    pub features: usize,
    /// Examples fitted during the path.
    pub train_examples: usize,
    /// Examples held out for choosing λ.
    pub validation_examples: usize,
    /// Test examples.
    pub test_examples: usize,
}

/// Standardises both layers with the training layer's column statistics.
pub(crate) fn standardize(train: &Layer, test: &Layer) -> (Layer, Layer) {
    let (n, p) = (train.rows, train.cols);
    let values = |layer: &Layer| -> Vec<f64> {
        match &layer.data {
            FloatData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            FloatData::F64(v) => v.clone(),
        }
    };
    let (a, b) = (values(train), values(test));
    let mut mean = vec![0.0; p];
    for row in a.chunks(p) {
        mean.iter_mut().zip(row).for_each(|(m, x)| *m += x / n as f64);
    }
    let mut var = vec![0.0; p];
    for row in a.chunks(p) {
        var.iter_mut()
            .zip(row)
            .zip(&mean)
            .for_each(|((v, x), m)| *v += (x - m) * (x - m) / n as f64);
    }
    let scale: Vec<f64> = var.iter().map(|v| if *v > 0.0 { v.sqrt() } else { 1.0 }).collect();
    let apply = |data: Vec<f64>, like: &Layer| {
        let out: Vec<f64> = data
            .chunks(p)
            .flat_map(|row| row.iter().zip(&mean).zip(&scale).map(|((x, m), s)| (x - m) / s))
            .collect();
        Layer {
            name: like.name.clone(),
            origin: like.origin.clone(),
            rows: like.rows,
            cols: like.cols,
            shape: like.shape.clone(),
            data: FloatData::F64(out),
        }
    };
    (apply(a, train), apply(b, test))
}

/// Runs the linear-probe protocol.
///
/// `progress` is called after each fit on the path. Labels of the training set define the
/// classes (`0..=max`, every class with at least one training example); test labels must lie
/// in that range.
pub async fn linear_probe(
    compute: &Compute,
    train: &Layer,
    train_labels: &[usize],
    test: &Layer,
    test_labels: &[usize],
    config: &LinearProbeConfig,
    progress: &mut dyn FnMut(&PathPoint),
) -> Result<LinearProbeResult> {
    config.validate()?;
    let classes = super::check_probe_inputs(train, train_labels, test, test_labels)?;
    let standardized;
    let (train, test) = if config.standardize {
        standardized = standardize(train, test);
        (&standardized.0, &standardized.1)
    } else {
        (train, test)
    };
    let features = train.cols;
    let zeros = vec![0.0; features * classes + classes];
    let mut path = Vec::new();
    let mut chosen = (config.fixed_lambda.unwrap_or(f64::NAN), zeros.clone(), f64::NAN);
    let (train_examples, validation_examples);
    if config.fixed_lambda.is_none() {
        let split = stratified_split(train_labels, config.validation_fraction, config.seed);
        if split.holdout.is_empty() {
            return Err(Error::InvalidSetting {
                name: "validation fraction",
                value: config.validation_fraction.to_string(),
                allowed: format!(
                    "a larger fraction: {} training examples leave none for validation",
                    train.rows
                ),
            });
        }
        let fit_labels: Vec<usize> = split.train.iter().map(|&i| train_labels[i]).collect();
        let val_labels: Vec<usize> = split.holdout.iter().map(|&i| train_labels[i]).collect();
        let fit_data = Resident::with_labels(compute, &train.select_rows(&split.train), &fit_labels, classes);
        let val_data = Resident::new(compute, &train.select_rows(&split.holdout));
        (train_examples, validation_examples) = (split.train.len(), split.holdout.len());
        let mut params = zeros.clone();
        let mut best_accuracy = f64::NEG_INFINITY;
        let mut best_logits = Vec::new();
        for lambda in config.lambdas() {
            let (model, mut point) = fit(
                compute,
                &fit_data,
                &vec![lambda; classes],
                params,
                features,
                &config.optimizer,
            )
            .await?;
            let logits = val_data.scores(compute, &model).await?;
            point.validation_accuracy = config
                .select_by
                .of(&argmax_rows(&logits, classes), &val_labels, classes);
            progress(&point);
            if point.validation_accuracy >= best_accuracy {
                best_accuracy = point.validation_accuracy;
                chosen = (lambda, model.params.clone(), f64::NAN);
                best_logits = logits;
            }
            path.push(point);
            params = model.params;
        }
        chosen.2 = fit_temperature(&best_logits, classes, &val_labels);
    } else {
        (train_examples, validation_examples) = (train.rows, 0);
    }
    let all = Resident::with_labels(compute, train, train_labels, classes);
    let (model, refit) = fit(
        compute,
        &all,
        &vec![chosen.0; classes],
        chosen.1,
        features,
        &config.optimizer,
    )
    .await?;
    let test_data = Resident::new(compute, test);
    let logits = test_data.scores(compute, &model).await?;
    let temperature = if chosen.2.is_finite() {
        chosen.2
    } else {
        // A fixed λ has no holdout: calibrate on the training set itself.
        let train_logits = Resident::new(compute, train).scores(compute, &model).await?;
        fit_temperature(&train_logits, classes, train_labels)
    };
    let test_eval = evaluate(&logits, classes, test_labels, temperature);
    Ok(LinearProbeResult {
        lambda: chosen.0,
        accuracy: test_eval.accuracy,
        mean_per_class_accuracy: test_eval.mean_per_class_accuracy,
        test: test_eval,
        path,
        refit,
        classes,
        features,
        train_examples,
        validation_examples,
        test_examples: test.rows,
    })
}

/// Fits one λ on a whole layer (no path, no split), from zero.
pub async fn fit_logistic(
    compute: &Compute,
    layer: &Layer,
    labels: &[usize],
    lambda: f64,
    optimizer: &LbfgsConfig,
) -> Result<(LogisticModel, PathPoint)> {
    let classes = Classes::new(labels.to_vec(), None)?.num_classes();
    let data = Resident::with_labels(compute, layer, labels, classes);
    let zeros = vec![0.0; layer.cols * classes + classes];
    fit(compute, &data, &vec![lambda; classes], zeros, layer.cols, optimizer).await
}
