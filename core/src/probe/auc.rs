//! The area under the ROC curve, the measure of multi-label targets (Table D.1).

use crate::error::{Error, Result};

/// ROC AUC of `scores` for the examples marked `positive`: the probability that a random
/// positive example scores above a random negative one, equal scores counting one half. This is
/// the Mann–Whitney statistic `U / (n₊ n₋)` from average ranks, exactly what scikit-learn's
/// `roc_auc_score` computes (the paper approximated it with 1,000 bins).
///
/// # Errors
/// Lengths differ; a non-finite score; no positive or no negative example (the AUC is undefined).
pub fn roc_auc(scores: &[f64], positive: &[bool]) -> Result<f64> {
    if scores.len() != positive.len() {
        return Err(Error::RowMismatch {
            what: "ROC AUC".into(),
            a: "the scores".into(),
            rows_a: scores.len(),
            b: "the labels".into(),
            rows_b: positive.len(),
        });
    }
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(Error::Degenerate {
            what: "ROC AUC".into(),
            reason: format!("the score of example {i} is {}", scores[i]),
        });
    }
    let positives = positive.iter().filter(|&&p| p).count();
    let negatives = positive.len() - positives;
    if positives == 0 || negatives == 0 {
        let missing = if positives == 0 { "positive" } else { "negative" };
        return Err(Error::Degenerate {
            what: "ROC AUC".into(),
            reason: format!(
                "no {missing} example among {} ({positives} positive, {negatives} negative): the AUC is undefined",
                positive.len()
            ),
        });
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let average = (start + end + 1) as f64 / 2.0;
        let tied_positives = order[start..end].iter().filter(|&&i| positive[i]).count();
        rank_sum += average * tied_positives as f64;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Ok((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_with_ties_count_one_half() {
        assert_eq!(
            roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap(),
            0.75
        );
        assert_eq!(roc_auc(&[1.0, 1.0], &[false, true]).unwrap(), 0.5);
        assert_eq!(roc_auc(&[3.0, 1.0, 2.0], &[true, false, false]).unwrap(), 1.0);
    }

    #[test]
    fn undefined_cases_are_errors() {
        assert!(roc_auc(&[0.1, 0.2], &[true, true]).is_err());
        assert!(roc_auc(&[0.1, 0.2], &[false, false]).is_err());
        assert!(roc_auc(&[0.1, f64::NAN], &[false, true]).is_err());
        assert!(roc_auc(&[0.1], &[false, true]).is_err());
    }
}
