//! How alike the networks of a study predict (the paper's Figs. C.4–C.7), from each run's top-1
//! predictions on the source test split: pairwise agreement and its clustering over the main
//! objectives' networks, and modal-vote ensembles of each objective and of pairs of objectives.

use crate::analysis::agreement::{accuracy, average_linkage, modal_vote, pairwise_agreement};
use crate::error::Result;
use crate::study::results::{Agreement, RunResult};

/// The agreement of the runs of `objectives` (in study order) that recorded predictions on the
/// images labelled `labels`; `None` with fewer than two such runs.
pub(crate) fn study_agreement(
    runs: &[RunResult],
    objectives: &[String],
    labels: &[usize],
) -> Result<Option<Agreement>> {
    let compared: Vec<&RunResult> = runs
        .iter()
        .filter(|r| objectives.contains(&r.objective) && r.predictions.len() == labels.len())
        .collect();
    if compared.len() < 2 {
        return Ok(None);
    }
    let predictions: Vec<Vec<usize>> = compared.iter().map(|r| r.predictions.clone()).collect();
    let pairwise = pairwise_agreement(&predictions, labels)?;
    let distance: Vec<Vec<f64>> = pairwise
        .same_error
        .iter()
        .enumerate()
        .map(|(i, row)| {
            row.iter()
                .enumerate()
                .map(|(j, s)| if i == j { 0.0 } else { 1.0 - s.unwrap_or(0.0) })
                .collect()
        })
        .collect();
    let linkage = average_linkage(&distance);
    // Ensembles: each objective's networks, in seed order.
    let ensemble_objectives: Vec<String> = objectives
        .iter()
        .filter(|o| compared.iter().any(|r| &r.objective == *o))
        .cloned()
        .collect();
    let members: Vec<Vec<&[usize]>> = ensemble_objectives
        .iter()
        .map(|o| {
            compared
                .iter()
                .filter(|r| &r.objective == o)
                .map(|r| r.predictions.as_slice())
                .collect()
        })
        .collect();
    let votes: Vec<Vec<usize>> = members.iter().map(|m| modal_vote(m)).collect();
    let ensemble_accuracy = votes.iter().map(|v| accuracy(v, labels)).collect();
    let ensemble_agreement = pairwise_agreement(&votes, labels)?.same_prediction;
    // Fig. C.7: half of an ensemble from each of two objectives.
    let fewest = members.iter().map(Vec::len).min().unwrap_or(0);
    let mixed_size = (fewest / 2).max(1);
    let mixed_accuracy = members
        .iter()
        .map(|a| {
            members
                .iter()
                .map(|b| {
                    let chosen: Vec<&[usize]> = if std::ptr::eq(a, b) {
                        a.iter().take(2 * mixed_size).copied().collect()
                    } else {
                        a.iter()
                            .take(mixed_size)
                            .chain(b.iter().take(mixed_size))
                            .copied()
                            .collect()
                    };
                    accuracy(&modal_vote(&chosen), labels)
                })
                .collect()
        })
        .collect();
    Ok(Some(Agreement {
        runs: compared.iter().map(|r| r.label()).collect(),
        pairwise,
        linkage,
        objectives: ensemble_objectives,
        ensemble_accuracy,
        ensemble_agreement,
        mixed_accuracy,
        mixed_size,
    }))
}
