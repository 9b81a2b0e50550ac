//! Transfer probes on fixed features (Appendix A.2): the linear probe (multinomial logistic
//! regression, L-BFGS, a validated λ path), the multi-label probe (one logistic regression per
//! class, λ per class on validation ROC AUC; Table D.1), the kNN probe (cosine similarity,
//! leave-one-out `k`) and their metrics (top-1/top-5/mean per-class accuracy, ROC AUC, NLL, ECE,
//! temperature scaling).

pub mod assignment;
pub mod auc;
pub mod knn;
pub mod lbfgs;
pub mod linear;
pub mod logistic;
pub mod metrics;
pub mod multilabel;
pub mod multilabel_knn;
pub mod split;

pub use assignment::{Assignment, fit_assignment, matching_matrix};
pub use knn::{
    KnnConfig, KnnResult, TieBreak, Vote, knn_probe, knn_probe_paced, nearest_neighbors, nearest_neighbors_paced,
};
pub use lbfgs::{LbfgsConfig, Termination};
pub use linear::{LinearProbeConfig, LinearProbeResult, PathPoint, fit_logistic, linear_probe};
pub use metrics::Evaluation;
pub use multilabel::{LabelMatrix, MultiLabelResult, fit_sigmoids, multilabel_probe};
pub use multilabel_knn::{MultiLabelKnn, multilabel_knn};

use crate::analysis::Classes;
use crate::error::{Error, Result};
use crate::features::Layer;

/// Checks a train/test pair for a probe and returns the number of classes (from the training
/// labels: `0..=max`, each with at least one example).
pub(crate) fn check_probe_inputs(
    train: &Layer,
    train_labels: &[usize],
    test: &Layer,
    test_labels: &[usize],
) -> Result<usize> {
    for (layer, labels) in [(train, train_labels), (test, test_labels)] {
        if layer.rows != labels.len() {
            return Err(Error::RowMismatch {
                what: "features and labels".into(),
                a: layer.origin.clone(),
                rows_a: layer.rows,
                b: "its labels".into(),
                rows_b: labels.len(),
            });
        }
    }
    check_same_width(train, test)?;
    let classes = Classes::new(train_labels.to_vec(), None)?.num_classes();
    if let Some((index, &label)) = test_labels.iter().enumerate().find(|&(_, &l)| l >= classes) {
        return Err(Error::UnseenLabel {
            label,
            index,
            num_classes: classes,
        });
    }
    if test.rows == 0 {
        return Err(Error::TooFewExamples {
            analysis: "probe test set",
            needed: 1,
            found: 0,
        });
    }
    Ok(classes)
}

/// Refuses two layers of different feature widths (they cannot share a feature space).
pub(crate) fn check_same_width(a: &Layer, b: &Layer) -> Result<()> {
    if a.cols != b.cols {
        return Err(Error::WidthMismatch {
            a: a.origin.clone(),
            cols_a: a.cols,
            b: b.origin.clone(),
            cols_b: b.cols,
        });
    }
    Ok(())
}
