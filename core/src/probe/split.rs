//! Stratified holdout splits.

use crate::rng::SplitMix64;

/// Indices of a training part and a held-out part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Examples to fit on, ascending.
    pub train: Vec<usize>,
    /// Held-out examples, ascending.
    pub holdout: Vec<usize>,
}

/// Holds out `round(fraction · n_k)` examples of every class `k`, chosen by `seed`, but always
/// leaves at least one example of each class in the training part (a class with a single
/// example is never held out).
pub fn stratified_split(labels: &[usize], fraction: f64, seed: u64) -> Split {
    let (holdout, train) = stratified(labels, seed, |n| {
        ((fraction * n as f64).round() as usize).min(n.saturating_sub(1))
    });
    Split { train, holdout }
}

/// A class-stratified sample of `round(fraction · n_k)` examples of every class `k` (at least
/// one for any `fraction > 0`, so no class disappears; none for 0), chosen by `seed`, ascending.
/// Wherever that count is between 1 and `n_k − 1`, it is the held-out part of
/// [`stratified_split`] with the same seed.
pub fn stratified_sample(labels: &[usize], fraction: f64, seed: u64) -> Vec<usize> {
    if fraction <= 0.0 {
        return Vec::new();
    }
    stratified(labels, seed, |n| ((fraction * n as f64).round() as usize).clamp(1, n)).0
}

/// For every class, `take(n_k)` examples in a seeded random order, and the rest: both ascending.
fn stratified(labels: &[usize], seed: u64, take: impl Fn(usize) -> usize) -> (Vec<usize>, Vec<usize>) {
    // The classes present, in increasing label order (labels may be any size: memory follows the
    // examples, not the largest label).
    let mut by_class: std::collections::BTreeMap<usize, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, &label) in labels.iter().enumerate() {
        by_class.entry(label).or_default().push(i);
    }
    let mut rng = SplitMix64::new(seed);
    let (mut taken, mut rest) = (Vec::new(), Vec::new());
    for members in by_class.into_values() {
        let n = members.len();
        let count = take(n);
        let order = rng.permutation(n);
        for (rank, &j) in order.iter().enumerate() {
            if rank < count {
                taken.push(members[j])
            } else {
                rest.push(members[j])
            }
        }
    }
    taken.sort_unstable();
    rest.sort_unstable();
    (taken, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_and_deterministic() {
        let labels: Vec<usize> = (0..100).map(|i| i % 4).chain([4]).collect();
        let split = stratified_split(&labels, 0.2, 7);
        assert_eq!(split, stratified_split(&labels, 0.2, 7));
        assert_ne!(split, stratified_split(&labels, 0.2, 8));
        assert_eq!(split.holdout.len(), 20);
        for k in 0..4 {
            assert_eq!(split.holdout.iter().filter(|&&i| labels[i] == k).count(), 5);
        }
        assert!(split.train.contains(&100), "a single-example class stays in training");
        let mut all: Vec<usize> = split.train.iter().chain(&split.holdout).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..101).collect::<Vec<_>>());
    }

    #[test]
    fn a_sample_keeps_every_class_and_otherwise_matches_the_holdout() {
        let labels: Vec<usize> = (0..100).map(|i| i % 4).chain([4]).collect();
        let sample = stratified_sample(&labels, 0.2, 7);
        // Classes of 25: the same 5 each as the holdout; the single-example class: kept.
        let split = stratified_split(&labels, 0.2, 7);
        let mut expected = split.holdout.clone();
        expected.push(100);
        assert_eq!(sample, expected);
        // A tiny fraction still keeps one of every class.
        let few = stratified_sample(&labels, 0.001, 7);
        assert_eq!(few.len(), 5);
        assert!((0..5).all(|k| few.iter().any(|&i| labels[i] == k)));
        assert!(stratified_sample(&labels, 0.0, 7).is_empty());
    }
}
