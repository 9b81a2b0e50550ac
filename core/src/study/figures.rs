//! The study's figures, drawn the same way in `losslens report` and the browser explorer:
//! R² and sparsity by layer for each objective (Figs. 3, 4), transfer accuracy against class
//! separation (Fig. 5a) and against source accuracy (Fig. 1), R² and transfer against the
//! cosine-softmax temperature (Fig. 5b), and CKA between the networks (Fig. 2).

use crate::figure::{Point, Series, heatmap, line_chart, scatter};
use crate::study::results::{LayerValue, RunResult, StudyResults};

/// One figure: a file stem, a caption and the SVG.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File stem in a report (`r2-by-layer`, `cka-penultimate`).
    pub name: String,
    /// What it shows.
    pub caption: String,
    /// The drawing.
    pub svg: String,
}

/// The objectives of `results` in study order, limited to `only` when it is not empty.
pub fn objectives(results: &StudyResults, only: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for run in &results.runs {
        if !out.contains(&run.objective) && (only.is_empty() || only.contains(&run.objective)) {
            out.push(run.objective.clone());
        }
    }
    out
}

/// The layers a per-layer measurement covers, in network order (first run that has them).
pub fn layers(results: &StudyResults) -> Vec<String> {
    results
        .runs
        .iter()
        .map(|r| r.separation.iter().map(|l| l.layer.clone()).collect::<Vec<_>>())
        .max_by_key(Vec::len)
        .unwrap_or_default()
}

fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.into_iter().fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

fn runs_of<'a>(results: &'a StudyResults, objective: &'a str) -> impl Iterator<Item = &'a RunResult> + 'a {
    results.runs.iter().filter(move |r| r.objective == objective)
}

fn value_at(values: &[LayerValue], layer: &str) -> Option<f64> {
    values.iter().find(|v| v.layer == layer).map(|v| v.value)
}

/// Mean over seeds of a per-layer value, one series per objective.
pub fn by_layer(
    results: &StudyResults,
    only: &[String],
    pick: fn(&RunResult) -> &[LayerValue],
) -> (Vec<String>, Vec<Series>) {
    let layers = layers(results);
    let series = objectives(results, only)
        .into_iter()
        .map(|o| Series {
            values: layers
                .iter()
                .map(|l| mean(runs_of(results, &o).filter_map(|r| value_at(pick(r), l))))
                .collect(),
            name: o,
        })
        .collect();
    (layers, series)
}

/// Mean linear transfer accuracy over targets and seeds of one objective.
pub fn mean_transfer(results: &StudyResults, objective: &str) -> Option<f64> {
    mean(runs_of(results, objective).flat_map(|r| r.transfer.iter().map(|t| t.linear)))
}

/// Every figure of a study, for the objectives in `only` (all when empty); the scatter of
/// transfer against R² uses `layer` (the penultimate layer when `None` or absent).
pub fn figures(results: &StudyResults, only: &[String], layer: Option<&str>) -> Vec<Figure> {
    let objectives = objectives(results, only);
    let all_layers = layers(results);
    let layer = layer
        .filter(|l| all_layers.iter().any(|x| x == l))
        .unwrap_or("penultimate")
        .to_string();
    let mut out = Vec::new();
    let (names, series) = by_layer(results, only, |r| &r.separation);
    out.push(Figure {
        name: "r2-by-layer".into(),
        caption: "Class separation R² (cosine) of each layer on source training images, mean over seeds (Fig. 4)"
            .into(),
        svg: line_chart("Class separation R² by layer", &names, &series, "R²"),
    });
    let (names, series) = by_layer(results, only, |r| &r.sparsity);
    out.push(Figure {
        name: "sparsity-by-layer".into(),
        caption: "Fraction of non-zero activations of each layer, mean over seeds (Fig. 3)".into(),
        svg: line_chart("Non-zero activations by layer", &names, &series, "fraction non-zero"),
    });
    if !results.targets.is_empty() {
        let points = |x: &dyn Fn(&RunResult) -> Option<f64>| -> Vec<Point> {
            objectives
                .iter()
                .enumerate()
                .filter_map(|(i, o)| {
                    Some(Point {
                        label: o.split(':').next().unwrap_or(o).to_string(),
                        x: mean(runs_of(results, o).filter_map(x))?,
                        y: mean_transfer(results, o)?,
                        series: i,
                    })
                })
                .collect()
        };
        out.push(Figure {
            name: "transfer-vs-r2".into(),
            caption: format!(
                "Mean linear transfer accuracy over the targets against class separation R² of layer {layer} (Fig. 5a)"
            ),
            svg: scatter(
                "Transfer accuracy against class separation",
                &points(&|r| value_at(&r.separation, &layer)),
                &format!("R² ({layer})"),
                "mean linear transfer accuracy",
            ),
        });
        out.push(Figure {
            name: "transfer-vs-source".into(),
            caption: "Mean linear transfer accuracy against source top-1 accuracy (Fig. 1)".into(),
            svg: scatter(
                "Transfer accuracy against source accuracy",
                &points(&|r| Some(r.source.top1)),
                "source top-1 accuracy",
                "mean linear transfer accuracy",
            ),
        });
    }
    if let Some(figure) = temperature_figure(results, &objectives) {
        out.push(figure);
    }
    if let Some(cka) = results.cka.iter().find(|c| c.layer == layer) {
        out.push(cka_figure(results, cka, only));
    }
    out
}

/// Fig. 5b: penultimate R² and mean linear transfer accuracy against the cosine-softmax
/// temperature, means over seeds; `None` unless `objectives` hold at least two temperatures.
pub fn temperature_figure(results: &StudyResults, objectives: &[String]) -> Option<Figure> {
    let mut sweep: Vec<(f64, &String)> = objectives
        .iter()
        .filter_map(|o| match o.parse::<crate::objective::ObjectiveConfig>() {
            Ok(crate::objective::ObjectiveConfig::CosineSoftmax(c)) => Some((c.temperature, o)),
            _ => None,
        })
        .collect();
    if sweep.len() < 2 {
        return None;
    }
    sweep.sort_by(|a, b| a.0.total_cmp(&b.0));
    let labels: Vec<String> = sweep.iter().map(|(t, _)| format!("τ = {t}")).collect();
    let mut series = vec![Series {
        name: "R² (penultimate)".into(),
        values: sweep
            .iter()
            .map(|(_, o)| mean(runs_of(results, o).filter_map(|r| value_at(&r.separation, "penultimate"))))
            .collect(),
    }];
    if !results.targets.is_empty() {
        series.push(Series {
            name: "mean linear transfer accuracy".into(),
            values: sweep.iter().map(|(_, o)| mean_transfer(results, o)).collect(),
        });
    }
    Some(Figure {
        name: "cosine-temperature".into(),
        caption: "Class separation R² and mean linear transfer accuracy of cosine-softmax networks against the \
                  temperature τ, means over seeds (Fig. 5b)"
            .into(),
        svg: line_chart("Cosine softmax: temperature", &labels, &series, "R² / accuracy"),
    })
}

/// The CKA heatmap of one layer (Fig. 2) for the runs of the objectives in `only`.
pub fn cka_figure(results: &StudyResults, cka: &crate::study::results::LayerCka, only: &[String]) -> Figure {
    let keep: Vec<usize> = cka
        .runs
        .iter()
        .enumerate()
        .filter(|(_, label)| {
            only.is_empty()
                || results
                    .runs
                    .iter()
                    .any(|r| &r.label() == *label && only.contains(&r.objective))
        })
        .map(|(i, _)| i)
        .collect();
    let names: Vec<String> = keep.iter().map(|&i| cka.runs[i].clone()).collect();
    let values: Vec<Vec<f64>> = keep
        .iter()
        .map(|&i| keep.iter().map(|&j| cka.values[i][j]).collect())
        .collect();
    Figure {
        name: format!("cka-{}", cka.layer),
        caption: format!(
            "Linear CKA between the networks at layer {} on {} source training images (Fig. 2)",
            cka.layer, cka.images
        ),
        svg: heatmap(
            &format!("CKA between networks: {}", cka.layer),
            &names,
            &names,
            &values,
            (0.0, 1.0),
        ),
    }
}

/// `results` with only the runs of the objectives in `only` (all when empty).
pub fn filtered(results: &StudyResults, only: &[String]) -> StudyResults {
    let mut out = results.clone();
    if !only.is_empty() {
        out.runs.retain(|r| only.contains(&r.objective));
    }
    out.summary = None;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::results::{Measure, SourceEval, TargetInfo, Transfer};

    fn run(objective: &str, r2: f64, linear: f64) -> RunResult {
        RunResult {
            objective: objective.into(),
            kind: objective.split(':').next().unwrap().into(),
            seed: 0,
            best_epoch: Some(1),
            source: SourceEval {
                top1: 0.5,
                top5: 1.0,
                nll: 1.0,
                ece: 0.1,
            },
            transfer: vec![Transfer {
                target: "t".into(),
                linear,
                lambda: 1.0,
                knn: linear,
                k: 1,
            }],
            separation: vec![LayerValue {
                layer: "penultimate".into(),
                value: r2,
            }],
            sparsity: Vec::new(),
            collapse: None,
            features: None,
            finetune: Vec::new(),
        }
    }

    #[test]
    fn the_temperature_figure_orders_the_sweep_by_temperature() {
        let results = StudyResults {
            version: 1,
            name: "sweep".into(),
            source: "s".into(),
            model: "small".into(),
            targets: vec![TargetInfo {
                name: "t".into(),
                data: "d".into(),
                measure: Measure::Top1,
            }],
            runs: vec![
                run("softmax", 0.1, 0.9),
                run("cosine-softmax:temperature=0.05", 0.6, 0.5),
                run("cosine-softmax:temperature=0.01", 0.2, 0.8),
            ],
            cka: Vec::new(),
            summary: None,
        };
        let all = objectives(&results, &[]);
        let figure = temperature_figure(&results, &all).unwrap();
        let (low, high) = (
            figure.svg.find("τ = 0.01").unwrap(),
            figure.svg.find("τ = 0.05").unwrap(),
        );
        assert!(low < high, "sorted by temperature");
        assert!(figure.svg.contains("mean linear transfer accuracy"));
        assert!(
            figures(&results, &[], None)
                .iter()
                .any(|f| f.name == "cosine-temperature")
        );
        // One temperature is no sweep.
        let one = vec!["softmax".to_string(), "cosine-softmax:temperature=0.05".to_string()];
        assert!(temperature_figure(&results, &one).is_none());
    }
}
