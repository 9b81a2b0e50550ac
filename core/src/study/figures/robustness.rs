//! The robustness figure: top-1 error on the corrupted source test images by severity, one line
//! per objective (the mean over its seeds and the corruptions; ImageNet-C, the paper's Table C.2).

use crate::figure::{Series, line_chart};
use crate::study::figures::Figure;
use crate::study::results::{StudyResults, mean};

/// Error by corruption severity for the objectives shown; `None` unless measured.
pub fn corruption_figure(results: &StudyResults, objectives: &[String]) -> Option<Figure> {
    let severities: Vec<String> = (1..=5).map(|s| s.to_string()).collect();
    let series: Vec<Series> = objectives
        .iter()
        .map(|o| Series {
            name: o.clone(),
            values: (0..5)
                .map(|s| {
                    mean(
                        results
                            .runs_of(o)
                            .filter_map(|r| r.source.robustness.as_ref())
                            .flat_map(|r| r.corruptions.iter().filter_map(move |c| c.errors.get(s).copied())),
                    )
                })
                .collect(),
        })
        .collect();
    if series.iter().all(|s| s.values.iter().all(Option::is_none)) {
        return None;
    }
    let names: Vec<String> = results
        .runs
        .iter()
        .filter_map(|r| r.source.robustness.as_ref())
        .flat_map(|r| r.corruptions.iter().map(|c| c.corruption.clone()))
        .fold(Vec::new(), |mut all, c| {
            if !all.contains(&c) {
                all.push(c);
            }
            all
        });
    Some(Figure {
        name: "corruption-error".into(),
        caption: format!(
            "Top-1 error on corrupted source test images by severity (ImageNet-C's corruptions: {}), mean over \
             the corruptions and seeds (Table C.2)",
            names.join(", ")
        ),
        svg: line_chart("Error under corruption", &severities, &series, "top-1 error"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::results::fixtures::{run, study};
    use crate::study::results::{CorruptionErrors, Robustness};

    #[test]
    fn errors_are_averaged_over_corruptions_and_seeds_per_severity() {
        let with = |objective: &str, seed: u64, errors: [[f64; 5]; 2]| {
            let mut r = run(objective, seed, 0.5, 0.3, 0.6);
            r.source.robustness = Some(Robustness {
                extra: Vec::new(),
                corruptions: ["contrast", "pixelate"]
                    .iter()
                    .zip(errors)
                    .map(|(c, e)| CorruptionErrors {
                        corruption: c.to_string(),
                        errors: e.to_vec(),
                    })
                    .collect(),
                corruption_images: 10,
            });
            r
        };
        let results = study(vec![
            with("softmax", 0, [[0.1, 0.2, 0.3, 0.4, 0.5], [0.3, 0.4, 0.5, 0.6, 0.7]]),
            with("softmax", 1, [[0.3, 0.4, 0.5, 0.6, 0.7], [0.1, 0.2, 0.3, 0.4, 0.5]]),
            run("sigmoid", 0, 0.5, 0.3, 0.6),
        ]);
        let figure = corruption_figure(&results, &results.objectives(&[])).unwrap();
        assert!(figure.caption.contains("contrast, pixelate"), "{}", figure.caption);
        // Severity 1: (0.1 + 0.3 + 0.3 + 0.1) / 4 = 0.2; sigmoid has no point.
        assert!(figure.svg.contains("softmax at 1: 0.2000"), "{}", figure.svg);
        assert!(!figure.svg.contains("sigmoid at"));
        // mCE: softmax is its own baseline (100 %).
        let baseline = results.corruption_baseline().unwrap();
        assert!((baseline["contrast"] - 2.0).abs() < 1e-12);
        for r in results.runs.iter().filter_map(|r| r.source.robustness.as_ref()) {
            let mce = r.relative_corruption_error(&baseline).unwrap();
            assert!((mce - 1.0).abs() < 0.25, "{mce}");
        }
        let c2 = crate::study::aggregate::table_c2(&results).unwrap();
        assert!(c2.is_none(), "sigmoid has no robustness, so no complete column");
        assert!(corruption_figure(&study(vec![run("softmax", 0, 0.5, 0.3, 0.6)]), &["softmax".into()]).is_none());
    }
}
