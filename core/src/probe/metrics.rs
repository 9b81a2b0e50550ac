//! Classification metrics of the probes: top-1, top-5 and mean per-class accuracy, negative
//! log-likelihood, expected calibration error (Guo et al. 2017, 15 equal-width bins) and
//! temperature scaling fitted on a holdout.
//!
//! All of them take logits on the host, row-major `[examples, classes]`, in `f64`.

use serde::{Deserialize, Serialize};

/// Number of confidence bins of the expected calibration error.
pub const ECE_BINS: usize = 15;

/// The class each row's largest score picks (the lowest class index among equal maxima).
pub(crate) fn argmax_rows(scores: &[f64], classes: usize) -> Vec<usize> {
    scores
        .chunks(classes)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold(
                    (0, f64::NEG_INFINITY),
                    |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) },
                )
                .0
        })
        .collect()
}

/// Fraction of predictions equal to the labels.
pub fn accuracy(predictions: &[usize], labels: &[usize]) -> f64 {
    if labels.is_empty() {
        return f64::NAN;
    }
    predictions.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len() as f64
}

/// Mean over the classes present in `labels` of each class's accuracy.
pub fn mean_per_class_accuracy(predictions: &[usize], labels: &[usize], classes: usize) -> f64 {
    let mut hits = vec![0usize; classes];
    let mut counts = vec![0usize; classes];
    for (&p, &l) in predictions.iter().zip(labels) {
        counts[l] += 1;
        hits[l] += usize::from(p == l);
    }
    let present: Vec<f64> = hits
        .iter()
        .zip(&counts)
        .filter(|(_, c)| **c > 0)
        .map(|(h, c)| *h as f64 / *c as f64)
        .collect();
    if present.is_empty() {
        f64::NAN
    } else {
        present.iter().sum::<f64>() / present.len() as f64
    }
}

/// Fraction of rows whose label is among the `k` largest scores (ties counted in the label's
/// favour only when strictly fewer than `k` scores exceed it).
pub(crate) fn top_k_accuracy(scores: &[f64], classes: usize, labels: &[usize], k: usize) -> f64 {
    if labels.is_empty() {
        return f64::NAN;
    }
    let hits = scores
        .chunks(classes)
        .zip(labels)
        .filter(|&(row, &l)| row.iter().filter(|&&v| v > row[l]).count() < k)
        .count();
    hits as f64 / labels.len() as f64
}

/// `log Σ_k exp(z_k / T)` and the softmax of one row at temperature `T`.
fn log_softmax_row(row: &[f64], temperature: f64) -> (f64, Vec<f64>) {
    let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v)) / temperature;
    let exps: Vec<f64> = row.iter().map(|&v| (v / temperature - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    (max + sum.ln(), exps.into_iter().map(|e| e / sum).collect())
}

/// Mean negative log-likelihood of the labels under `softmax(z / T)`.
pub fn nll(logits: &[f64], classes: usize, labels: &[usize], temperature: f64) -> f64 {
    let total: f64 = logits
        .chunks(classes)
        .zip(labels)
        .map(|(row, &l)| {
            let (lse, _) = log_softmax_row(row, temperature);
            lse - row[l] / temperature
        })
        .sum();
    total / labels.len() as f64
}

/// Expected calibration error of `softmax(z / T)`: confidences (the largest probability) fall
/// into [`ECE_BINS`] equal-width bins `((b−1)/15, b/15]`, and `ECE = Σ_b (n_b / N) |acc_b − conf_b|`.
pub fn ece(logits: &[f64], classes: usize, labels: &[usize], temperature: f64) -> f64 {
    let mut count = [0usize; ECE_BINS];
    let mut correct = [0f64; ECE_BINS];
    let mut confidence = [0f64; ECE_BINS];
    for (row, &l) in logits.chunks(classes).zip(labels) {
        let (_, p) = log_softmax_row(row, temperature);
        let (pred, conf) = p
            .iter()
            .enumerate()
            .fold((0, -1.0), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) });
        let bin = ((conf * ECE_BINS as f64).ceil() as usize).clamp(1, ECE_BINS) - 1;
        count[bin] += 1;
        correct[bin] += f64::from(u8::from(pred == l));
        confidence[bin] += conf;
    }
    let n = labels.len() as f64;
    (0..ECE_BINS)
        .filter(|&b| count[b] > 0)
        .map(|b| (correct[b] - confidence[b]).abs() / n)
        .sum()
}

/// The temperature `T` minimising the NLL of `softmax(z / T)` on a holdout (Guo et al. 2017).
///
/// The NLL is convex in `β = 1/T`, and its derivative `mean_i (E_p[z_i] − z_{i,y_i})` is monotone,
/// so `β` is found by bisection in log-space over `[1e-4, 1e4]`.
pub(crate) fn fit_temperature(logits: &[f64], classes: usize, labels: &[usize]) -> f64 {
    let derivative = |beta: f64| -> f64 {
        let total: f64 = logits
            .chunks(classes)
            .zip(labels)
            .map(|(row, &l)| {
                let (_, p) = log_softmax_row(row, 1.0 / beta);
                p.iter().zip(row).map(|(pi, zi)| pi * zi).sum::<f64>() - row[l]
            })
            .sum();
        total / labels.len() as f64
    };
    let (mut lo, mut hi) = (1e-4f64.ln(), 1e4f64.ln());
    if derivative(hi.exp()) <= 0.0 {
        return 1.0 / hi.exp();
    }
    if derivative(lo.exp()) >= 0.0 {
        return 1.0 / lo.exp();
    }
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if derivative(mid.exp()) > 0.0 {
            hi = mid
        } else {
            lo = mid
        }
    }
    1.0 / (0.5 * (lo + hi)).exp()
}

/// How a dataset's accuracy is measured (the dataset creators' choice): what the probes choose
/// their hyperparameters by and report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Measure {
    /// Top-1 accuracy.
    #[default]
    Top1,
    /// Mean per-class accuracy (unbalanced datasets such as Caltech-101).
    MeanPerClass,
}

impl Measure {
    /// The accuracy of `predictions` in this measure.
    pub fn of(self, predictions: &[usize], labels: &[usize], classes: usize) -> f64 {
        match self {
            Measure::Top1 => accuracy(predictions, labels),
            Measure::MeanPerClass => mean_per_class_accuracy(predictions, labels, classes),
        }
    }
}

/// How a network's outputs become class probabilities (the paper's Table C.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Probability {
    /// `softmax(z / T)`.
    #[default]
    Softmax,
    /// `σ(z_k / T) / Σ_j σ(z_j / T)`: a sigmoid network's per-class probabilities normalised
    /// to sum to 1 ("we normalize the probability distribution by summing probabilities over
    /// all classes").
    NormalizedSigmoid,
}

impl Probability {
    /// The log-scores whose softmax is the probability: `z / T`, or `log σ(z / T)`.
    fn scores(self, row: &[f64], temperature: f64) -> Vec<f64> {
        match self {
            Probability::Softmax => row.iter().map(|&v| v / temperature).collect(),
            // log σ(x) = −softplus(−x), computed without overflow.
            Probability::NormalizedSigmoid => row
                .iter()
                .map(|&v| {
                    let x = v / temperature;
                    -((-x).max(0.0) + (-x.abs()).exp().ln_1p())
                })
                .collect(),
        }
    }

    /// `log p_y` and the probabilities of one row.
    fn log_likelihood(self, row: &[f64], label: usize, temperature: f64) -> (f64, Vec<f64>) {
        let (lse, p) = log_softmax_row(&self.scores(row, temperature), 1.0);
        let s = self.scores(&row[label..=label], temperature)[0];
        (s - lse, p)
    }

    /// Mean negative log-likelihood of the labels at temperature `T`.
    pub fn nll(self, logits: &[f64], classes: usize, labels: &[usize], temperature: f64) -> f64 {
        let total: f64 = logits
            .chunks(classes)
            .zip(labels)
            .map(|(row, &l)| -self.log_likelihood(row, l, temperature).0)
            .sum();
        total / labels.len() as f64
    }

    /// Expected calibration error at temperature `T` ([`ece`]'s binning).
    pub fn ece(self, logits: &[f64], classes: usize, labels: &[usize], temperature: f64) -> f64 {
        let rows: Vec<f64> = logits
            .chunks(classes)
            .flat_map(|row| self.scores(row, temperature))
            .collect();
        ece(&rows, classes, labels, 1.0)
    }

    /// The temperature minimising the NLL on a holdout (Guo et al. 2017): the exact bisection
    /// of [`fit_temperature`] for softmax; for the normalised sigmoid, whose NLL need not be
    /// convex in `T`, the best of 41 log-spaced temperatures in [0.01, 100] refined by a golden
    /// section search around it.
    pub fn fit_temperature(self, logits: &[f64], classes: usize, labels: &[usize]) -> f64 {
        match self {
            Probability::Softmax => fit_temperature(logits, classes, labels),
            Probability::NormalizedSigmoid => {
                let f = |log_t: f64| self.nll(logits, classes, labels, log_t.exp());
                let grid: Vec<f64> = (0..41)
                    .map(|i| (0.01f64).ln() + i as f64 * (1e4f64).ln() / 40.0)
                    .collect();
                let best = grid
                    .iter()
                    .copied()
                    .min_by(|a, b| f(*a).total_cmp(&f(*b)))
                    .expect("a grid");
                let step = (1e4f64).ln() / 40.0;
                let (mut lo, mut hi) = (best - step, best + step);
                let ratio = (5f64.sqrt() - 1.0) / 2.0;
                for _ in 0..60 {
                    let (a, b) = (hi - ratio * (hi - lo), lo + ratio * (hi - lo));
                    if f(a) <= f(b) {
                        hi = b;
                    } else {
                        lo = a;
                    }
                }
                (0.5 * (lo + hi)).exp()
            }
        }
    }
}

/// Every metric of one set of predictions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Top-1 accuracy, a fraction.
    pub accuracy: f64,
    /// Top-5 accuracy (top-`min(5, classes)`), a fraction.
    pub top5_accuracy: f64,
    /// Mean per-class accuracy, a fraction.
    pub mean_per_class_accuracy: f64,
    /// Mean negative log-likelihood at temperature 1.
    pub nll: f64,
    /// Expected calibration error at temperature 1.
    pub ece: f64,
    /// The temperature fitted on the holdout.
    pub temperature: f64,
    /// NLL after temperature scaling.
    pub nll_calibrated: f64,
    /// ECE after temperature scaling.
    pub ece_calibrated: f64,
}

/// Evaluates logits against labels; `temperature` comes from [`fit_temperature`] on a holdout.
pub fn evaluate(logits: &[f64], classes: usize, labels: &[usize], temperature: f64) -> Evaluation {
    let predictions = argmax_rows(logits, classes);
    Evaluation {
        accuracy: accuracy(&predictions, labels),
        top5_accuracy: top_k_accuracy(logits, classes, labels, 5.min(classes)),
        mean_per_class_accuracy: mean_per_class_accuracy(&predictions, labels, classes),
        nll: nll(logits, classes, labels, 1.0),
        ece: ece(logits, classes, labels, 1.0),
        temperature,
        nll_calibrated: nll(logits, classes, labels, temperature),
        ece_calibrated: ece(logits, classes, labels, temperature),
    }
}
