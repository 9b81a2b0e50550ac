//! The kNN probe of a multi-label target: each class scored by the share of an example's `k`
//! nearest training examples (cosine similarity, as the single-label kNN probe) that have it;
//! `k` from 1 to `k_max` chosen by the mean leave-one-out ROC AUC over the classes on the
//! training set (ties to the smaller `k`), then each class's test ROC AUC with that `k`.

use serde::{Deserialize, Serialize};

use crate::compute::Compute;
use crate::error::{Error, Result};
use crate::features::Layer;
use crate::probe::auc::roc_auc;
use crate::probe::knn::{Neighbors, nearest_neighbors};
use crate::probe::multilabel::LabelMatrix;

/// The result of [`multilabel_knn`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiLabelKnn {
    /// The chosen `k`.
    pub k: usize,
    /// Mean test ROC AUC over the classes.
    pub mean_auc: f64,
    /// Each class's test ROC AUC, in class order.
    pub auc: Vec<f64>,
    /// The mean leave-one-out ROC AUC at each `k` from 1.
    pub leave_one_out_auc: Vec<f64>,
}

/// Each class's ROC AUC of the scores "share of the first `k` neighbours with the class".
fn aucs(neighbors: &Neighbors, k: usize, reference: &LabelMatrix, labels: &LabelMatrix) -> Result<Vec<f64>> {
    let classes = reference.classes();
    (0..classes)
        .map(|c| {
            let scores: Vec<f64> = (0..labels.rows)
                .map(|q| {
                    let row = &neighbors.indices[q * neighbors.k..q * neighbors.k + k];
                    row.iter().filter(|&&i| reference.values[i * classes + c]).count() as f64 / k as f64
                })
                .collect();
            roc_auc(&scores, &labels.column(c))
        })
        .collect()
}

/// Runs the multi-label kNN probe (see the module documentation) with `k` up to `k_max`.
///
/// # Errors
/// Features and labels of different lengths or widths, train and test labels with different
/// classes, fewer than two training examples, a class without a positive or a negative example
/// in either set.
pub async fn multilabel_knn(
    compute: &Compute,
    (train, train_labels): (&Layer, &LabelMatrix),
    (test, test_labels): (&Layer, &LabelMatrix),
    k_max: usize,
) -> Result<MultiLabelKnn> {
    super::multilabel::check_pair((train, train_labels), (test, test_labels))?;
    if train.rows < 2 {
        return Err(Error::TooFewExamples {
            analysis: "multi-label kNN probe",
            needed: 2,
            found: train.rows,
        });
    }
    let k_max = k_max.clamp(1, train.rows - 1);
    let own = nearest_neighbors(compute, train, train, k_max, true).await?;
    let mut leave_one_out_auc = Vec::with_capacity(k_max);
    for k in 1..=k_max {
        let per_class = aucs(&own, k, train_labels, train_labels)?;
        leave_one_out_auc.push(per_class.iter().sum::<f64>() / per_class.len() as f64);
    }
    // The smallest k of the best mean AUC.
    let k = 1
        + (0..k_max).fold(0, |b, i| {
            if leave_one_out_auc[i] > leave_one_out_auc[b] {
                i
            } else {
                b
            }
        });
    let neighbors = nearest_neighbors(compute, test, train, k_max, false).await?;
    let auc = aucs(&neighbors, k, train_labels, test_labels)?;
    Ok(MultiLabelKnn {
        k,
        mean_auc: auc.iter().sum::<f64>() / auc.len() as f64,
        auc,
        leave_one_out_auc,
    })
}
