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
    let classes = labels.iter().copied().max().map_or(0, |m| m + 1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &label) in labels.iter().enumerate() {
        by_class[label].push(i);
    }
    let mut rng = SplitMix64::new(seed);
    let (mut train, mut holdout) = (Vec::new(), Vec::new());
    for members in by_class {
        let n = members.len();
        let take = ((fraction * n as f64).round() as usize).min(n.saturating_sub(1));
        let order = rng.permutation(n);
        for (rank, &j) in order.iter().enumerate() {
            if rank < take {
                holdout.push(members[j])
            } else {
                train.push(members[j])
            }
        }
    }
    train.sort_unstable();
    holdout.sort_unstable();
    Split { train, holdout }
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
}
