//! How alike the predictions of networks are (the paper's Figs. C.4–C.7): pairwise agreement,
//! a hierarchical clustering of the networks by it, and ensembles by modal vote.
//!
//! For networks `i`, `j` with top-1 predictions `p_i`, `p_j` on the same examples with labels
//! `y`:
//! - `same_prediction`: the share of examples where `p_i = p_j` (Fig. C.5, left);
//! - `same_correctness`: the share where both are right or both are wrong (Fig. C.5, middle);
//! - `same_error`: among the examples both get wrong, the share where `p_i = p_j` (Fig. C.4a);
//!   undefined when no example is wrong for both.
//!
//! [`average_linkage`] clusters the networks by the distance `1 − same_error` (Fig. C.4b),
//! as `scipy.cluster.hierarchy.linkage(method = "average")`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The pairwise agreement of a set of networks' predictions; every matrix is square, in the
/// networks' order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairwiseAgreement {
    /// Share of examples with the same prediction.
    pub same_prediction: Vec<Vec<f64>>,
    /// Share of examples both get right or both get wrong.
    pub same_correctness: Vec<Vec<f64>>,
    /// Among the examples both get wrong, the share with the same prediction; `None` when no
    /// example is wrong for both.
    pub same_error: Vec<Vec<Option<f64>>>,
}

/// The three agreements of every pair of `predictions` (one vector per network, all of the
/// labels' length).
///
/// # Errors
/// Fewer than one network, or a prediction vector whose length is not the labels'.
pub fn pairwise_agreement(predictions: &[Vec<usize>], labels: &[usize]) -> Result<PairwiseAgreement> {
    let n = labels.len();
    if n == 0 {
        return Err(Error::TooFewExamples {
            analysis: "prediction agreement",
            needed: 1,
            found: 0,
        });
    }
    if let Some(bad) = predictions.iter().find(|p| p.len() != n) {
        return Err(Error::RowMismatch {
            what: "prediction agreement".into(),
            a: "a network's predictions".into(),
            rows_a: bad.len(),
            b: "the labels".into(),
            rows_b: n,
        });
    }
    let m = predictions.len();
    let mut out = PairwiseAgreement {
        same_prediction: vec![vec![0.0; m]; m],
        same_correctness: vec![vec![0.0; m]; m],
        same_error: vec![vec![None; m]; m],
    };
    for i in 0..m {
        for j in 0..m {
            let (a, b) = (&predictions[i], &predictions[j]);
            let (mut same, mut correctness, mut both_wrong, mut same_wrong) = (0usize, 0usize, 0usize, 0usize);
            for k in 0..n {
                let (right_a, right_b) = (a[k] == labels[k], b[k] == labels[k]);
                same += usize::from(a[k] == b[k]);
                correctness += usize::from(right_a == right_b);
                if !right_a && !right_b {
                    both_wrong += 1;
                    same_wrong += usize::from(a[k] == b[k]);
                }
            }
            out.same_prediction[i][j] = same as f64 / n as f64;
            out.same_correctness[i][j] = correctness as f64 / n as f64;
            out.same_error[i][j] = (both_wrong > 0).then(|| same_wrong as f64 / both_wrong as f64);
        }
    }
    Ok(out)
}

/// The ensemble's prediction for every example: the class most of `predictions` give, the
/// smallest such class on a tie (`numpy.bincount(...).argmax()`).
pub fn modal_vote(predictions: &[&[usize]]) -> Vec<usize> {
    let n = predictions.first().map_or(0, |p| p.len());
    (0..n)
        .map(|k| {
            let mut votes: Vec<(usize, usize)> = Vec::new(); // (class, count)
            for p in predictions {
                match votes.iter_mut().find(|(c, _)| *c == p[k]) {
                    Some((_, count)) => *count += 1,
                    None => votes.push((p[k], 1)),
                }
            }
            votes
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                .map_or(0, |(class, _)| class)
        })
        .collect()
}

/// Share of `predictions` equal to `labels`.
pub fn accuracy(predictions: &[usize], labels: &[usize]) -> f64 {
    let right = predictions.iter().zip(labels).filter(|(p, y)| p == y).count();
    right as f64 / labels.len().max(1) as f64
}

/// One merge of a hierarchical clustering, as a row of scipy's linkage matrix: the two
/// clusters joined (leaves are `0..n`, the cluster made by merge `t` is `n + t`), their
/// distance and the size of the new cluster.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Merge {
    /// The cluster with the smaller id.
    pub a: usize,
    /// The other cluster.
    pub b: usize,
    /// The distance between them (average over their members' pairs).
    pub distance: f64,
    /// Members of the merged cluster.
    pub size: usize,
}

/// Average-linkage (UPGMA) clustering of `n` items from their symmetric distance matrix: at
/// each step the two clusters with the smallest mean pairwise distance merge (on a tie, the
/// pair found first in id order).
pub fn average_linkage(distance: &[Vec<f64>]) -> Vec<Merge> {
    let n = distance.len();
    // Active clusters: id, members.
    let mut clusters: Vec<(usize, Vec<usize>)> = (0..n).map(|i| (i, vec![i])).collect();
    let mut merges = Vec::with_capacity(n.saturating_sub(1));
    let mean = |x: &[usize], y: &[usize]| {
        let total: f64 = x.iter().flat_map(|&i| y.iter().map(move |&j| distance[i][j])).sum();
        total / (x.len() * y.len()) as f64
    };
    while clusters.len() > 1 {
        let mut best = (0, 1, f64::INFINITY);
        for p in 0..clusters.len() {
            for q in p + 1..clusters.len() {
                let d = mean(&clusters[p].1, &clusters[q].1);
                if d < best.2 {
                    best = (p, q, d);
                }
            }
        }
        let (p, q, d) = best;
        let (second, first) = (clusters.remove(q), clusters.remove(p));
        let members: Vec<usize> = first.1.iter().chain(&second.1).copied().collect();
        merges.push(Merge {
            a: first.0.min(second.0),
            b: first.0.max(second.0),
            distance: d,
            size: members.len(),
        });
        clusters.push((n + merges.len() - 1, members));
    }
    merges
}

/// The leaves of a clustering from left to right as a dendrogram draws them: each merge puts
/// its first cluster (`a`) left of its second. A merge that names a cluster not made before it
/// (a damaged linkage) is not followed, so every walk ends.
pub fn leaf_order(merges: &[Merge], n: usize) -> Vec<usize> {
    fn walk(id: usize, n: usize, merges: &[Merge], out: &mut Vec<usize>) {
        if id < n {
            out.push(id);
        } else if let Some(m) = merges.get(id - n) {
            for child in [m.a, m.b] {
                if child < id {
                    walk(child, n, merges, out);
                }
            }
        }
    }
    let mut out = Vec::with_capacity(n);
    match merges.last() {
        Some(_) => walk(n + merges.len() - 1, n, merges, &mut out),
        None => out.extend(0..n),
    }
    out
}
