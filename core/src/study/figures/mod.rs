//! The study's figures, drawn the same way in `losslens report` and the browser explorer:
//! R² and sparsity by layer for each objective (Figs. 3, 4), transfer accuracy against class
//! separation (Fig. 5a) and against source accuracy (Fig. 1), R² and transfer against the
//! cosine-softmax temperature (Fig. 5b), CKA between the networks at one layer (Fig. 2b) and
//! between every layer of two networks (Fig. 2a), singular value spectra (Fig. E.2), angular
//! visual hardness (Fig. E.1), cosine distances between examples (Fig. E.3), and the agreement
//! of the networks' predictions and of their ensembles (Figs. C.4–C.7), and the training
//! dynamics ([`dynamics`]: Figs. C.1–C.3, D.2, E.4) and the error under corruptions
//! ([`robustness`]: Table C.2).

mod dynamics;
mod robustness;

pub use dynamics::dynamics_figures;
pub use robustness::corruption_figure;

use crate::analysis::agreement::leaf_order;
use crate::analysis::{Histogram, Spectra, Spectrum};
use crate::figure::{Point, Series, dendrogram, heatmap, line_chart, scatter};
use crate::study::results::{LayerValue, RunResult, StudyResults, mean};

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

/// Mean over seeds of a per-layer value, one series per objective.
pub(crate) fn by_layer(
    results: &StudyResults,
    only: &[String],
    pick: fn(&RunResult) -> &[LayerValue],
) -> (Vec<String>, Vec<Series>) {
    let layers = results.layers();
    let series = results
        .main_objectives(only)
        .into_iter()
        .map(|o| Series {
            values: layers
                .iter()
                .map(|l| mean(results.runs_of(&o).filter_map(|r| RunResult::at(pick(r), l))))
                .collect(),
            name: o,
        })
        .collect();
    (layers, series)
}

/// Every figure of a study, for the objectives in `only` (all when empty); the scatter of
/// transfer against R² uses `layer` (the penultimate layer when `None` or absent).
pub fn figures(results: &StudyResults, only: &[String], layer: Option<&str>) -> Vec<Figure> {
    // The main objectives: sweep entries only appear in the temperature figure.
    let objectives = results.main_objectives(only);
    let all_layers = results.layers();
    let layer = layer
        .filter(|l| all_layers.iter().any(|x| x == l))
        .unwrap_or("penultimate")
        .to_string();
    let mut out = Vec::new();
    let (names, series) = by_layer(results, only, |r| &r.separation);
    out.push(Figure {
        name: "r2-by-layer".into(),
        caption: "Class separation R² (cosine) of each layer on source training images, every block on its whole \
                  output, mean over seeds (Fig. 4)"
            .into(),
        svg: line_chart("Class separation R² by layer", &names, &series, "R²"),
    });
    let (names, series) = by_layer(results, only, |r| &r.sparsity);
    out.push(Figure {
        name: "sparsity-by-layer".into(),
        caption: "Fraction of non-zero activations of each layer on source test images, mean over seeds (Fig. 3)"
            .into(),
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
                        x: mean(results.runs_of(o).filter_map(x))?,
                        y: results.mean_transfer(o)?,
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
                &points(&|r| RunResult::at(&r.separation, &layer)),
                &format!("R² ({layer})"),
                "mean linear transfer accuracy",
            ),
        });
        // Fig. 1 plots every run, coloured by its objective.
        let runs: Vec<Point> = results
            .runs
            .iter()
            .filter_map(|r| {
                let series = objectives.iter().position(|o| *o == r.objective)?;
                let transfer = mean(r.transfer.iter().map(|t| t.linear))?;
                Some(Point {
                    label: r.objective.split(':').next().unwrap_or(&r.objective).to_string(),
                    x: r.source.top1,
                    y: transfer,
                    series,
                })
            })
            .collect();
        out.push(Figure {
            name: "transfer-vs-source".into(),
            caption: "Mean linear transfer accuracy against source top-1 accuracy, one point per run, coloured by \
                      objective (Fig. 1)"
                .into(),
            svg: scatter(
                "Transfer accuracy against source accuracy",
                &runs,
                "source top-1 accuracy",
                "mean linear transfer accuracy",
            ),
        });
    }
    // Fig. 5b: every cosine-softmax entry, main and sweep.
    if let Some(figure) = temperature_figure(results, &results.objectives(only)) {
        out.push(figure);
    }
    out.extend(finetune_figures(results, &objectives));
    out.extend(spectra_figures(results, &objectives));
    out.extend(angle_figures(results, &objectives));
    out.extend(agreement_figures(results, &objectives));
    out.extend(dynamics_figures(results, &objectives, &layer));
    out.extend(corruption_figure(results, &objectives));
    if let Some(cka) = results.cka.iter().find(|c| c.layer == layer) {
        out.push(cka_figure(results, cka, only));
    }
    for (i, blocks) in results.cka_blocks.iter().enumerate() {
        let objective_of = |label: &str| results.runs.iter().find(|r| r.label() == label).map(|r| &r.objective);
        let shown = only.is_empty() || objective_of(&blocks.b).is_none_or(|o| only.contains(o));
        if shown {
            out.push(block_cka_figure(blocks, i));
        }
    }
    out
}

/// Ranks 1, 2, 3, 5, 8, … (about ×1.5 apart) up to `n`, and `n`: where a spectrum is drawn.
fn log_ranks(n: usize) -> Vec<usize> {
    let mut ranks: Vec<usize> = Vec::new();
    let mut x = 1.0f64;
    while (x.round() as usize) <= n {
        let rank = x.round() as usize;
        if ranks.last() != Some(&rank) {
            ranks.push(rank);
        }
        x *= 1.5;
    }
    if ranks.last() != Some(&n) {
        ranks.push(n);
    }
    ranks
}

/// Which spectrum of a run's [`Spectra`] a figure draws.
type PickSpectrum = fn(&Spectra) -> Option<&Spectrum>;

/// The lines of one spectrum figure: the ranks drawn (up to the shortest spectrum) and, per
/// objective with spectra, `log10(s_i / s_1)` at each rank, mean over seeds; `None` when no run
/// has the spectrum.
fn spectrum_lines(
    results: &StudyResults,
    objectives: &[String],
    pick: PickSpectrum,
) -> Option<(Vec<usize>, Vec<Series>)> {
    let of = |o: &String| -> Vec<&Spectrum> {
        results
            .runs
            .iter()
            .filter(|r| r.objective == *o)
            .filter_map(|r| r.spectra.as_ref().and_then(pick))
            .collect()
    };
    let shortest = objectives.iter().flat_map(&of).map(|s| s.singular_values.len()).min();
    let ranks = log_ranks(shortest.filter(|&n| n >= 2)?);
    let relative = |s: &Spectrum, rank: usize| {
        let (top, value) = (s.singular_values[0], s.singular_values[rank - 1]);
        (top > 0.0 && value > 1e-9 * top).then(|| (value / top).log10())
    };
    let series = objectives
        .iter()
        .map(|o| (o, of(o)))
        .filter(|(_, spectra)| !spectra.is_empty())
        .map(|(o, spectra)| Series {
            name: o.clone(),
            values: ranks
                .iter()
                .map(|&rank| mean(spectra.iter().filter_map(|s| relative(s, rank))))
                .collect(),
        })
        .collect();
    Some((ranks, series))
}

/// Fig. E.2: the singular value spectra of the penultimate features, of their class centroids
/// and of the classifier's weights, one figure each, one line per objective: `log10(s_i / s_1)`
/// at log-spaced ranks `i`, mean over seeds (values below `10⁻⁹ s_1`, numerically zero, are
/// left out). Runs measured before spectra were recorded have none and are skipped.
pub fn spectra_figures(results: &StudyResults, objectives: &[String]) -> Vec<Figure> {
    let kinds: [(&str, &str, PickSpectrum); 3] = [
        ("spectrum-features", "penultimate-layer features", |s| Some(&s.features)),
        ("spectrum-class-means", "class centroids", |s| s.class_means.as_ref()),
        ("spectrum-weights", "classifier weights", |s| s.weights.as_ref()),
    ];
    let mut out = Vec::new();
    for (name, what, pick) in kinds {
        let Some((ranks, series)) = spectrum_lines(results, objectives, pick) else {
            continue;
        };
        let labels: Vec<String> = ranks.iter().map(ToString::to_string).collect();
        out.push(Figure {
            name: name.into(),
            caption: format!(
                "Singular values of the {what} (source training images) relative to the largest, log10, at \
                 log-spaced ranks, mean over seeds (Fig. E.2)"
            ),
            svg: line_chart(
                &format!("Singular value spectrum: {what}"),
                &labels,
                &series,
                "log10(s_i / s_1)",
            ),
        });
    }
    out
}

/// Figs. C.4–C.7 for the networks of `objectives`: agreement on the examples both networks get
/// wrong (C.4a) in the order of the clustering, its dendrogram (C.4b, when every network is
/// shown), agreement on every example and on being right (C.5), and the ensembles: agreement
/// between objectives' ensembles (C.6) and the accuracy of ensembles mixing two objectives
/// (C.7).
pub fn agreement_figures(results: &StudyResults, objectives: &[String]) -> Vec<Figure> {
    let Some(a) = results.agreement.as_ref().filter(|a| a.is_consistent()) else {
        return Vec::new();
    };
    let shown = |label: &String| {
        results
            .runs
            .iter()
            .find(|r| r.label() == *label)
            .is_some_and(|r| objectives.contains(&r.objective))
    };
    let n = a.runs.len();
    let order: Vec<usize> = leaf_order(&a.linkage, n)
        .into_iter()
        .filter(|&i| i < n && shown(&a.runs[i]))
        .collect();
    let mut out = Vec::new();
    if order.len() >= 2 {
        let labels: Vec<String> = order.iter().map(|&i| a.runs[i].clone()).collect();
        let matrix = |m: &dyn Fn(usize, usize) -> f64| -> Vec<Vec<f64>> {
            order
                .iter()
                .map(|&i| order.iter().map(|&j| m(i, j)).collect())
                .collect()
        };
        let p = &a.pairwise;
        for (name, title, caption, values) in [
            (
                "agreement-errors",
                "Same prediction where both are wrong",
                "Among the source test images two networks both get wrong, the share where they predict the same \
                 class (Fig. C.4a), networks in the order of the dendrogram",
                matrix(&|i, j| p.same_error[i][j].unwrap_or(f64::NAN)),
            ),
            (
                "agreement-predictions",
                "Same prediction",
                "Share of the source test images on which two networks predict the same class (Fig. C.5, left)",
                matrix(&|i, j| p.same_prediction[i][j]),
            ),
            (
                "agreement-correctness",
                "Both right or both wrong",
                "Share of the source test images that two networks both get right or both get wrong (Fig. C.5, \
                 middle)",
                matrix(&|i, j| p.same_correctness[i][j]),
            ),
        ] {
            out.push(Figure {
                name: name.into(),
                caption: caption.into(),
                svg: heatmap(title, &labels, &labels, &values, (0.0, 1.0)),
            });
        }
        if order.len() == n {
            let merges: Vec<(usize, usize, f64)> = a.linkage.iter().map(|m| (m.a, m.b, m.distance)).collect();
            out.push(Figure {
                name: "agreement-dendrogram".into(),
                caption: "The networks clustered by how alike they err (average linkage on 1 − the share of \
                          common errors with the same prediction; Fig. C.4b)"
                    .into(),
                svg: dendrogram(
                    "Networks clustered by their errors",
                    &a.runs,
                    &merges,
                    &leaf_order(&a.linkage, n),
                    "1 − agreement on errors",
                ),
            });
        }
    }
    let kept: Vec<usize> = (0..a.objectives.len())
        .filter(|&i| objectives.contains(&a.objectives[i]))
        .collect();
    if kept.len() >= 2 {
        let names: Vec<String> = kept.iter().map(|&i| a.objectives[i].clone()).collect();
        let pick = |m: &Vec<Vec<f64>>| -> Vec<Vec<f64>> {
            kept.iter().map(|&i| kept.iter().map(|&j| m[i][j]).collect()).collect()
        };
        out.push(Figure {
            name: "ensemble-agreement".into(),
            caption: "Share of the source test images on which two objectives' ensembles (the modal vote of each \
                      objective's networks) predict the same class (Fig. C.6)"
                .into(),
            svg: heatmap(
                "Ensembles: same prediction",
                &names,
                &names,
                &pick(&a.ensemble_agreement),
                (0.0, 1.0),
            ),
        });
        let mixed = pick(&a.mixed_accuracy);
        let finite = mixed.iter().flatten().copied().filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
        let range = if lo < hi { (lo, hi) } else { (0.0, 1.0) };
        out.push(Figure {
            name: "ensemble-mixed".into(),
            caption: format!(
                "Top-1 accuracy of the modal vote of {0} networks of the row's objective and {0} of the \
                 column's (the diagonal: {1} of one objective, where it has them) on the source test split \
                 (Fig. C.7)",
                a.mixed_size,
                2 * a.mixed_size
            ),
            svg: heatmap("Ensembles of two objectives: accuracy", &names, &names, &mixed, range),
        });
    }
    out
}

/// Which histogram of a run a figure draws.
type PickHistogram = fn(&RunResult) -> Option<&Histogram>;

/// The densities of one [`Histogram`] per run, averaged over the seeds of each objective, on a
/// common grid of `bins` bins over the range every run's values occupy: the grid's bin centres
/// and one series per objective that has the histogram.
fn density_lines(
    results: &StudyResults,
    objectives: &[String],
    pick: PickHistogram,
    bins: usize,
) -> Option<(Vec<f64>, Vec<Series>)> {
    let all: Vec<&Histogram> = results
        .runs
        .iter()
        .filter(|r| objectives.contains(&r.objective))
        .filter_map(pick)
        .collect();
    let (lo, hi) = all
        .iter()
        .filter_map(|h| h.occupied())
        .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))?;
    let width = (hi - lo) / bins as f64;
    let centres = (0..bins).map(|i| lo + (i as f64 + 0.5) * width).collect();
    let series = objectives
        .iter()
        .filter_map(|o| {
            let densities: Vec<Vec<f64>> = results
                .runs
                .iter()
                .filter(|r| r.objective == *o)
                .filter_map(pick)
                .map(|h| h.density_on(lo, hi, bins))
                .collect();
            (!densities.is_empty()).then(|| Series {
                name: o.clone(),
                values: (0..bins).map(|i| mean(densities.iter().map(|d| d[i]))).collect(),
            })
        })
        .collect();
    Some((centres, series))
}

/// Figs. E.1 and E.3: the density of angular visual hardness on the source test split, and of
/// the cosine distance between training examples of the same class and of different classes,
/// one line per objective (mean over seeds); absent for runs that did not measure them
/// (`analysis.angles`).
pub fn angle_figures(results: &StudyResults, objectives: &[String]) -> Vec<Figure> {
    let kinds: [(&str, &str, &str, PickHistogram); 3] = [
        (
            "hardness",
            "Angular visual hardness",
            "Density of the angular visual hardness of the source test images (Fig. E.1): the angle to the \
             own class's weights over the sum of the angles to every class's, penultimate layer, mean over seeds",
            |r| r.source.hardness.as_ref(),
        ),
        (
            "distance-within",
            "Cosine distance, same class",
            "Density of the cosine distance between source training images of the same class (Fig. E.3), \
             penultimate layer, mean over seeds",
            |r| r.distances.as_ref().map(|d| &d.within),
        ),
        (
            "distance-between",
            "Cosine distance, different classes",
            "Density of the cosine distance between source training images of different classes (Fig. E.3), \
             penultimate layer, mean over seeds",
            |r| r.distances.as_ref().map(|d| &d.between),
        ),
    ];
    let mut out = Vec::new();
    for (name, title, caption, pick) in kinds {
        let Some((centres, series)) = density_lines(results, objectives, pick, 24) else {
            continue;
        };
        // Enough decimals to tell neighbouring bins apart.
        let step = centres.get(1).zip(centres.first()).map_or(1.0, |(b, a)| b - a);
        let decimals = (-step.log10()).ceil().max(0.0) as usize + 1;
        let labels: Vec<String> = centres.iter().map(|c| format!("{c:.decimals$}")).collect();
        out.push(Figure {
            name: name.into(),
            caption: caption.into(),
            svg: line_chart(title, &labels, &series, "density"),
        });
    }
    out
}

/// Fig. 2a for one pair of networks: CKA between every layer of `a` (rows) and every layer of
/// `b` (columns); `index` numbers the file.
pub fn block_cka_figure(blocks: &crate::study::results::BlockCka, index: usize) -> Figure {
    Figure {
        name: format!("cka-blocks-{}", index + 1),
        caption: format!(
            "Linear CKA between every layer of {} (rows) and every layer of {} (columns), on source test images \
             (Fig. 2a)",
            blocks.a, blocks.b
        ),
        svg: heatmap(
            &format!("CKA: {} vs {}", blocks.a, blocks.b),
            &blocks.layers,
            &blocks.layers,
            &blocks.values,
            (0.0, 1.0),
        ),
    }
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
            .map(|(_, o)| mean(results.runs_of(o).filter_map(RunResult::penultimate_r2)))
            .collect(),
    }];
    if !results.targets.is_empty() {
        series.push(Series {
            name: "mean linear transfer accuracy".into(),
            values: sweep.iter().map(|(_, o)| results.mean_transfer(o)).collect(),
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

/// Per target that was fine-tuned: the validation accuracy at every learning rate × weight decay
/// of the search, mean over the runs of `objectives` (a diverged point counts as 0), to check that
/// the chosen points lie inside the grid, as the paper did.
pub fn finetune_figures(results: &StudyResults, objectives: &[String]) -> Vec<Figure> {
    let mut out = Vec::new();
    for target in &results.targets {
        let tuned: Vec<&crate::study::results::Finetune> = results
            .runs
            .iter()
            .filter(|r| objectives.contains(&r.objective))
            .filter_map(|r| r.finetune.iter().find(|f| f.target == target.name))
            .collect();
        if tuned.is_empty() {
            continue;
        }
        let mut rates: Vec<f64> = tuned
            .iter()
            .flat_map(|f| f.grid.iter().map(|p| p.learning_rate))
            .collect();
        let mut decays: Vec<f64> = tuned
            .iter()
            .flat_map(|f| f.grid.iter().map(|p| p.weight_decay))
            .collect();
        for v in [&mut rates, &mut decays] {
            v.sort_by(f64::total_cmp);
            v.dedup();
        }
        let values: Vec<Vec<f64>> = rates
            .iter()
            .map(|&lr| {
                decays
                    .iter()
                    .map(|&wd| {
                        mean(tuned.iter().flat_map(|f| {
                            f.grid
                                .iter()
                                .filter(move |p| p.learning_rate == lr && p.weight_decay == wd)
                                .map(|p| p.validation.unwrap_or(0.0))
                        }))
                        .unwrap_or(f64::NAN)
                    })
                    .collect()
            })
            .collect();
        let label = |v: &f64| if *v == 0.0 { "0".to_string() } else { format!("{v:.1e}") };
        let mut chosen: Vec<String> = Vec::new();
        for o in objectives {
            if let Some(f) = results
                .runs
                .iter()
                .filter(|r| &r.objective == o)
                .find_map(|r| r.finetune.iter().find(|f| f.target == target.name))
            {
                chosen.push(format!(
                    "{}: {} × {}",
                    o.split(':').next().unwrap_or(o),
                    label(&f.learning_rate),
                    label(&f.weight_decay)
                ));
            }
        }
        out.push(Figure {
            name: format!("finetune-{}", crate::study::slug(&target.name)),
            caption: format!(
                "Fine-tuning on {}: validation accuracy at each learning rate (rows) × weight decay \
                 (columns), mean over the runs shown; chosen (learning rate × weight decay): {}",
                target.name,
                chosen.join("; ")
            ),
            svg: heatmap(
                &format!("Fine-tuning search: {}", target.name),
                &rates.iter().map(label).collect::<Vec<_>>(),
                &decays.iter().map(label).collect::<Vec<_>>(),
                &values,
                (0.0, 1.0),
            ),
        });
        // Fig. D.3: how much of each layer fine-tuning changed.
        let layers: Vec<String> = tuned
            .iter()
            .find(|f| !f.cka.is_empty())
            .map(|f| f.cka.iter().map(|v| v.layer.clone()).collect())
            .unwrap_or_default();
        if !layers.is_empty() {
            let series: Vec<Series> = objectives
                .iter()
                .filter_map(|o| {
                    let of: Vec<&crate::study::results::Finetune> = results
                        .runs_of(o)
                        .filter_map(|r| r.finetune.iter().find(|f| f.target == target.name))
                        .filter(|f| !f.cka.is_empty())
                        .collect();
                    (!of.is_empty()).then(|| Series {
                        name: o.clone(),
                        values: layers
                            .iter()
                            .map(|l| mean(of.iter().filter_map(|f| RunResult::at(&f.cka, l))))
                            .collect(),
                    })
                })
                .collect();
            out.push(Figure {
                name: format!("finetune-cka-{}", crate::study::slug(&target.name)),
                caption: format!(
                    "CKA between each layer of the pretrained network and the same layer after fine-tuning on {} \
                     (its test images), mean over seeds (Fig. D.3)",
                    target.name
                ),
                svg: line_chart(
                    &format!("Pretrained vs fine-tuned: {}", target.name),
                    &layers,
                    &series,
                    "CKA",
                ),
            });
        }
    }
    out
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
        name: format!("cka-{}", crate::study::slug(&cka.layer)),
        caption: format!(
            "Linear CKA between the networks at layer {} (its whole output) on {} source test images (Fig. 2b)",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::results::fixtures::{run, study};

    #[test]
    fn agreement_figures_follow_the_clustering_and_the_objectives_shown() {
        use crate::analysis::agreement::{Merge, PairwiseAgreement};
        let mut runs = Vec::new();
        for (o, seed) in [("softmax", 0), ("softmax", 1), ("sigmoid", 0)] {
            runs.push(run(o, seed, 0.5, 0.3, 0.6));
        }
        let mut results = study(runs);
        let m = |v: [[f64; 3]; 3]| v.iter().map(|r| r.to_vec()).collect::<Vec<_>>();
        results.agreement = Some(crate::study::results::Agreement {
            runs: vec!["softmax s0".into(), "softmax s1".into(), "sigmoid s0".into()],
            pairwise: PairwiseAgreement {
                same_prediction: m([[1.0, 0.9, 0.7]; 3]),
                same_correctness: m([[1.0, 0.95, 0.8]; 3]),
                same_error: vec![vec![Some(1.0), Some(0.6), None]; 3],
            },
            // sigmoid s0 joins the two softmax networks last; the tree's leaves: 2, 0, 1.
            linkage: vec![
                Merge {
                    a: 0,
                    b: 1,
                    distance: 0.4,
                    size: 2,
                },
                Merge {
                    a: 2,
                    b: 3,
                    distance: 0.9,
                    size: 3,
                },
            ],
            objectives: vec!["softmax".into(), "sigmoid".into()],
            ensemble_accuracy: vec![0.6, 0.55],
            ensemble_agreement: vec![vec![1.0, 0.8], vec![0.8, 1.0]],
            mixed_accuracy: vec![vec![0.6, 0.62], vec![0.62, 0.55]],
            mixed_size: 1,
        });
        let all = results.objectives(&[]);
        let figures = agreement_figures(&results, &all);
        let names: Vec<&str> = figures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "agreement-errors",
                "agreement-predictions",
                "agreement-correctness",
                "agreement-dendrogram",
                "ensemble-agreement",
                "ensemble-mixed"
            ]
        );
        // Rows in the dendrogram's order: sigmoid s0 first.
        let errors = &figures[0].svg;
        assert!(errors.find("sigmoid s0").unwrap() < errors.find("softmax s0").unwrap());
        // Only softmax shown: its two networks, no dendrogram (it clusters all three), no
        // ensemble figures (one objective).
        let one = agreement_figures(&results, &["softmax".to_string()]);
        let names: Vec<&str> = one.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["agreement-errors", "agreement-predictions", "agreement-correctness"]
        );
        results.agreement = None;
        assert!(agreement_figures(&results, &all).is_empty());
    }

    #[test]
    fn angle_figures_average_the_densities_of_each_objective_on_one_grid() {
        let histogram = |values: &[f64]| {
            let mut h = Histogram::new(0.0, 1.0, 10);
            values.iter().for_each(|&v| h.add(v));
            h
        };
        let with = |objective: &str, seed: u64, values: &[f64]| {
            let mut r = run(objective, seed, 0.5, 0.3, 0.6);
            r.source.hardness = Some(histogram(values));
            r
        };
        let results = study(vec![
            with("softmax", 0, &[0.05, 0.15]),
            with("softmax", 1, &[0.15, 0.15]),
            with("sigmoid", 0, &[0.35, 0.35]),
            run("logit-norm", 0, 0.5, 0.3, 0.6),
        ]);
        let objectives = results.objectives(&[]);
        let figures = angle_figures(&results, &objectives);
        let names: Vec<&str> = figures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["hardness"], "no distances measured, no distance figures");
        // The occupied range [0, 0.4] in 24 bins of 1/60: softmax puts ¼ of its mass in
        // [0, 0.1) and ¾ in [0.1, 0.2), the mean of its two seeds.
        let (centres, series) = density_lines(&results, &objectives, |r| r.source.hardness.as_ref(), 24).unwrap();
        assert_eq!(centres.len(), 24);
        assert!((centres[0] - 0.4 / 48.0).abs() < 1e-12);
        assert_eq!(series.len(), 2);
        let softmax = &series[0].values;
        assert!((softmax[0].unwrap() - 0.25 / 0.1).abs() < 1e-9);
        assert!((softmax[7].unwrap() - 0.75 / 0.1).abs() < 1e-9);
        assert!(
            (series[1].values[23].unwrap() - 10.0).abs() < 1e-9,
            "sigmoid: all in [0.3, 0.4)"
        );
    }

    #[test]
    fn spectra_are_drawn_relative_to_the_largest_at_log_spaced_ranks() {
        assert_eq!(log_ranks(10), [1, 2, 3, 5, 8, 10]);
        assert_eq!(log_ranks(2), [1, 2]);
        let spectrum = |values: Vec<f64>| Spectrum {
            singular_values: values,
            effective_rank: 1.0,
            top_fraction: 1.0,
        };
        let with = |objective: &str, seed: u64, values: Vec<f64>| {
            let mut r = run(objective, seed, 0.5, 0.3, 0.6);
            r.spectra = Some(Spectra {
                features: spectrum(values.clone()),
                class_means: Some(spectrum(values[..3].to_vec())),
                weights: None,
            });
            r
        };
        let results = study(vec![
            with("softmax", 0, vec![10.0, 1.0, 0.1, 0.01]),
            with("softmax", 1, vec![100.0, 100.0, 1.0, 0.0]),
            with("sigmoid", 0, vec![2.0, 1.0, 0.5, 0.25]),
            run("logit-norm", 0, 0.5, 0.3, 0.6),
        ]);
        let figures = spectra_figures(&results, &results.objectives(&[]));
        let names: Vec<&str> = figures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["spectrum-features", "spectrum-class-means"],
            "no weights, no figure"
        );
        let svg = &figures[0].svg;
        assert!(svg.contains("softmax") && svg.contains("sigmoid") && !svg.contains("logit-norm"));
        let (ranks, series) = spectrum_lines(&results, &results.objectives(&[]), |s| Some(&s.features)).unwrap();
        assert_eq!(ranks, [1, 2, 3, 4]);
        assert_eq!(series.len(), 2, "logit-norm has no spectra");
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-12;
        // softmax: mean over seeds of log10(1/10) and log10(100/100) at rank 2; at rank 4 only
        // the first seed (the second's 0 is numerically zero).
        assert!(close(series[0].values[0], 0.0));
        assert!(close(series[0].values[1], -0.5));
        assert!(close(series[0].values[3], -3.0));
        assert!(close(series[1].values[3], 0.125f64.log10()));
        assert!(spectra_figures(&study(vec![run("softmax", 0, 0.5, 0.3, 0.6)]), &["softmax".into()]).is_empty());
    }

    #[test]
    fn the_temperature_figure_orders_the_sweep_by_temperature() {
        let results = study(vec![
            run("softmax", 0, 0.5, 0.1, 0.9),
            run("cosine-softmax:temperature=0.05", 0, 0.5, 0.6, 0.5),
            run("cosine-softmax:temperature=0.01", 0, 0.5, 0.2, 0.8),
        ]);
        let all = results.objectives(&[]);
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
        assert!(finetune_figures(&results, &all).is_empty());
        // Fig. 1 has one point per run.
        let mut runs = results.clone();
        runs.runs.push(run("softmax", 1, 0.55, 0.1, 0.85));
        let fig1 = figures(&runs, &[], None)
            .into_iter()
            .find(|f| f.name == "transfer-vs-source")
            .unwrap();
        assert_eq!(fig1.svg.matches("<circle").count(), 4);
        // One temperature is no sweep.
        let one = vec!["softmax".to_string(), "cosine-softmax:temperature=0.05".to_string()];
        assert!(temperature_figure(&results, &one).is_none());
    }

    #[test]
    fn the_fine_tuning_figure_averages_the_search_of_the_runs_shown() {
        use crate::study::results::{Finetune, GridPoint};
        let point = |learning_rate, weight_decay, validation| GridPoint {
            learning_rate,
            weight_decay,
            validation,
        };
        let tuned = |a: f64, b: Option<f64>| Finetune {
            target: "t 1".into(),
            accuracy: 0.9,
            learning_rate: 0.1,
            weight_decay: 0.0,
            validation: a,
            grid: vec![
                point(0.1, 0.0, Some(a)),
                point(0.01, 0.0, b),
                point(0.1, 1e-4, Some(0.5)),
            ],
            cka: Vec::new(),
        };
        let mut a = run("softmax", 0, 0.5, 0.1, 0.9);
        a.finetune.push(tuned(0.8, Some(0.4)));
        let mut b = run("sigmoid", 0, 0.5, 0.1, 0.9);
        b.finetune.push(tuned(0.6, None));
        // Fig. D.3 from the runs that measured it.
        let cka = |values: [f64; 2]| {
            ["block1.0", "penultimate"]
                .iter()
                .zip(values)
                .map(|(l, value)| LayerValue {
                    layer: l.to_string(),
                    value,
                })
                .collect::<Vec<_>>()
        };
        a.finetune[0].cka = cka([0.9, 0.4]);
        b.finetune[0].cka = cka([0.8, 0.2]);
        let mut results = study(vec![a, b]);
        results.targets[0].name = "t 1".into();
        let all = results.objectives(&[]);
        let figures = finetune_figures(&results, &all);
        assert_eq!(figures.len(), 2);
        let d3 = &figures[1];
        assert_eq!(d3.name, "finetune-cka-t-1");
        for point in ["softmax at block1.0: 0.9000", "sigmoid at penultimate: 0.2000"] {
            assert!(d3.svg.contains(point), "{point} in {}", d3.svg);
        }
        let f = &figures[0];
        assert_eq!(f.name, "finetune-t-1");
        // Rows 0.01, 0.1; columns 0, 1e-4. (0.8 + 0.6) / 2 = 0.7; a diverged point counts as 0:
        // (0.4 + 0) / 2 = 0.2; only 0.1 × 1e-4 was searched at 1e-4: 0.5; 0.01 × 1e-4: none.
        for cell in [
            "1.0e-1 × 0: 0.700",
            "1.0e-2 × 0: 0.200",
            "1.0e-1 × 1.0e-4: 0.500",
            "1.0e-2 × 1.0e-4: n/a",
        ] {
            assert!(f.svg.contains(cell), "{cell} in {}", f.svg);
        }
        assert!(f.caption.contains("softmax: 1.0e-1 × 0;"), "{}", f.caption);
        // Only the runs shown.
        let one = finetune_figures(&results, &["sigmoid".to_string()]);
        assert!(one[0].svg.contains("1.0e-1 × 0: 0.600"));
    }
}
