//! Class-overlap assignment accuracy (Kornblith et al. 2021, Appendix F, Table F.1).
//!
//! How far a target task can be solved by the source network's own classifier: each source
//! class is mapped to one target class, the mapping chosen to classify as many target
//! examples as possible. With `M[s][t]` the number of target examples of class `t` the source
//! network assigns to source class `s` (the matching matrix), the best mapping is a maximum
//! weight assignment of source classes to target classes. So that several source classes may
//! map to one target class, every target class is replicated `k` times, with `k` the smallest
//! replication that one more does not improve (the paper uses
//! `scipy.optimize.linear_sum_assignment`; here the Kuhn–Munkres algorithm of the `pathfinding`
//! crate, which finds the same optimum).

use pathfinding::kuhn_munkres::kuhn_munkres;
use pathfinding::matrix::Matrix;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A mapping of source classes to target classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// The target class of each source class (`None`: the source class is left unmapped, its
    /// predictions count as wrong).
    pub mapping: Vec<Option<usize>>,
    /// How many times each target class was replicated (source classes per target class at
    /// most).
    pub replication: usize,
    /// Fraction of the fitting examples the mapping classifies correctly.
    pub fit_accuracy: f64,
}

impl Assignment {
    /// The fraction of examples whose predicted source class maps to their target label.
    ///
    /// # Errors
    /// Different lengths, no examples, or a prediction outside the mapping's source classes.
    pub fn accuracy(&self, predictions: &[usize], labels: &[usize]) -> Result<f64> {
        check_lengths(predictions, labels)?;
        let mut correct = 0usize;
        for (&p, &l) in predictions.iter().zip(labels) {
            let mapped = self
                .mapping
                .get(p)
                .ok_or_else(|| out_of_range("prediction", p, self.mapping.len()))?;
            correct += usize::from(*mapped == Some(l));
        }
        Ok(correct as f64 / predictions.len() as f64)
    }
}

/// The matching matrix `M[s][t]`: examples of target class `t` predicted as source class `s`.
///
/// # Shapes
/// - returns `[source_classes, target_classes]`, row-major
///
/// # Errors
/// Different lengths, no examples, or a prediction or label out of range.
pub fn matching_matrix(
    predictions: &[usize],
    labels: &[usize],
    source_classes: usize,
    target_classes: usize,
) -> Result<Vec<u64>> {
    check_lengths(predictions, labels)?;
    let mut counts = vec![0u64; source_classes * target_classes];
    for (&p, &l) in predictions.iter().zip(labels) {
        if p >= source_classes {
            return Err(out_of_range("prediction", p, source_classes));
        }
        if l >= target_classes {
            return Err(out_of_range("label", l, target_classes));
        }
        counts[p * target_classes + l] += 1;
    }
    Ok(counts)
}

/// The mapping of source classes to target classes that classifies the most of the given
/// examples correctly, each target class replicated until one more replication does not help.
///
/// # Errors
/// As [`matching_matrix`], or no class on either side.
pub fn fit_assignment(
    predictions: &[usize],
    labels: &[usize],
    source_classes: usize,
    target_classes: usize,
) -> Result<Assignment> {
    if source_classes == 0 || target_classes == 0 {
        return Err(Error::InvalidSetting {
            name: "classes",
            value: format!("{source_classes} source, {target_classes} target"),
            allowed: "at least one class on each side".into(),
        });
    }
    let counts = matching_matrix(predictions, labels, source_classes, target_classes)?;
    // Once every source class can have a slot, more replicas cannot help.
    let most = source_classes.div_ceil(target_classes);
    let mut best = best_mapping(&counts, source_classes, target_classes, 1);
    for k in 2..=most {
        let next = best_mapping(&counts, source_classes, target_classes, k);
        if next.0 <= best.0 {
            break;
        }
        best = next;
    }
    let (correct, mapping, replication) = best;
    Ok(Assignment {
        mapping,
        replication,
        fit_accuracy: correct as f64 / predictions.len() as f64,
    })
}

/// `(correct, mapping, k)`: the maximum weight assignment with `k` replicas of each target class.
fn best_mapping(counts: &[u64], sources: usize, targets: usize, k: usize) -> (u64, Vec<Option<usize>>, usize) {
    let slots = targets * k;
    let weight = |s: usize, slot: usize| counts[s * targets + slot % targets] as i64;
    let mut mapping = vec![None; sources];
    // Kuhn–Munkres wants no more rows than columns.
    if sources <= slots {
        let m = Matrix::from_fn(sources, slots, |(s, slot)| weight(s, slot));
        let (_, assigned) = kuhn_munkres(&m);
        for (s, &slot) in assigned.iter().enumerate() {
            mapping[s] = Some(slot % targets);
        }
    } else {
        let m = Matrix::from_fn(slots, sources, |(slot, s)| weight(s, slot));
        let (_, assigned) = kuhn_munkres(&m);
        for (slot, &s) in assigned.iter().enumerate() {
            mapping[s] = Some(slot % targets);
        }
    }
    // Source classes with no example mapped to a slot add nothing; the total is recounted from
    // the mapping so that it is exact whichever way the matrix was oriented.
    let correct = mapping
        .iter()
        .enumerate()
        .map(|(s, t)| t.map_or(0, |t| counts[s * targets + t]))
        .sum();
    (correct, mapping, k)
}

fn check_lengths(predictions: &[usize], labels: &[usize]) -> Result<()> {
    if predictions.len() != labels.len() {
        return Err(Error::InvalidSetting {
            name: "predictions",
            value: format!("{} predictions for {} labels", predictions.len(), labels.len()),
            allowed: "one prediction per labelled example".into(),
        });
    }
    if predictions.is_empty() {
        return Err(Error::TooFewExamples {
            analysis: "assignment accuracy",
            needed: 1,
            found: 0,
        });
    }
    Ok(())
}

fn out_of_range(what: &'static str, value: usize, classes: usize) -> Error {
    Error::InvalidSetting {
        name: what,
        value: value.to_string(),
        allowed: format!("a class index below {classes}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_source_classes_map_to_one_target_class() {
        // Source classes 0 and 1 are both target class 0 (dogs of two breeds), 2 is target 1.
        let predictions = [0, 0, 1, 1, 1, 2, 2, 0];
        let labels = [0, 0, 0, 0, 0, 1, 1, 1];
        let a = fit_assignment(&predictions, &labels, 3, 2).unwrap();
        assert_eq!(a.mapping, [Some(0), Some(0), Some(1)]);
        assert_eq!(a.replication, 2);
        assert!((a.fit_accuracy - 7.0 / 8.0).abs() < 1e-12);
        assert!((a.accuracy(&[1, 2, 0], &[0, 1, 1]).unwrap() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn one_replica_when_more_do_not_help() {
        let predictions = [0, 1, 2, 3];
        let labels = [0, 1, 0, 1];
        let a = fit_assignment(&predictions, &labels, 4, 2).unwrap();
        assert_eq!(a.replication, 2, "a second replica lets all four source classes count");
        assert_eq!(a.fit_accuracy, 1.0);
        let a = fit_assignment(&[0, 1], &[1, 0], 2, 2).unwrap();
        assert_eq!((a.replication, a.mapping.clone()), (1, vec![Some(1), Some(0)]));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(fit_assignment(&[0, 5], &[0, 1], 3, 2).is_err());
        assert!(fit_assignment(&[0, 1], &[0, 7], 3, 2).is_err());
        assert!(fit_assignment(&[0], &[0, 1], 3, 2).is_err());
        assert!(fit_assignment(&[], &[], 3, 2).is_err());
        assert!(fit_assignment(&[0], &[0], 0, 2).is_err());
    }
}
