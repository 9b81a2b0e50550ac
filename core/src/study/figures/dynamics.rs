//! The training-dynamics figures: source test and training accuracy (Figs. C.1–C.3), linear
//! transfer to each target (Fig. D.2) and class separation R² on training and test images (Fig.
//! E.4) at each kept epoch, one curve per objective (the mean over its seeds at each epoch; a
//! run's curve ends at its best epoch).

use crate::figure::{Point, Series, line_chart, scatter};
use crate::study::figures::Figure;
use crate::study::results::{DynamicsPoint, RunResult, StudyResults, mean};

/// A quantity of a dynamics point (`None` where it was not measured).
type Pick<'a> = &'a dyn Fn(&DynamicsPoint) -> Option<f64>;

/// The epochs any shown run was measured at, in order, and one series per objective: the mean
/// over its seeds of `pick` at each of them. `None` when no shown run has a value.
fn curves(results: &StudyResults, objectives: &[String], pick: Pick) -> Option<(Vec<String>, Vec<Series>)> {
    let mut epochs: Vec<usize> = objectives
        .iter()
        .flat_map(|o| with_dynamics(results, o))
        .flat_map(|r| r.dynamics.iter().filter(|p| pick(p).is_some()).map(|p| p.epoch))
        .collect();
    epochs.sort_unstable();
    epochs.dedup();
    if epochs.is_empty() {
        return None;
    }
    let series = objectives
        .iter()
        .map(|o| {
            let runs = with_dynamics(results, o);
            Series {
                name: o.clone(),
                values: epochs
                    .iter()
                    .map(|&e| {
                        mean(
                            runs.iter()
                                .filter_map(|r| r.dynamics.iter().find(|p| p.epoch == e).and_then(pick)),
                        )
                    })
                    .collect(),
            }
        })
        .collect();
    Some((epochs.iter().map(usize::to_string).collect(), series))
}

/// The runs of `objective` that have dynamics.
fn with_dynamics<'a>(results: &'a StudyResults, objective: &'a str) -> Vec<&'a RunResult> {
    results.runs_of(objective).filter(|r| !r.dynamics.is_empty()).collect()
}

/// Every dynamics figure of the objectives shown; R² on training images at `layer`.
pub fn dynamics_figures(results: &StudyResults, objectives: &[String], layer: &str) -> Vec<Figure> {
    let mut out = Vec::new();
    let mut line = |name: String, title: &str, caption: String, y_label: &str, pick: Pick| {
        if let Some((epochs, series)) = curves(results, objectives, pick) {
            out.push(Figure {
                name,
                caption,
                svg: line_chart(title, &epochs, &series, y_label),
            });
        }
    };
    let ending = "at each epoch whose weights training kept, mean over seeds; a run's curve ends at its best epoch";
    line(
        "dynamics-test-accuracy".into(),
        "Source test accuracy during training",
        format!("Top-1 accuracy on the source test split {ending} (Fig. C.1)"),
        "top-1 accuracy",
        &|p| Some(p.top1),
    );
    line(
        "dynamics-train-accuracy".into(),
        "Training accuracy during training",
        format!("Top-1 accuracy on the network's own training images, unaugmented, {ending} (Fig. C.2)"),
        "top-1 accuracy",
        &|p| p.train_top1,
    );
    for target in &results.targets {
        let name = target.name.clone();
        line(
            format!("dynamics-transfer-{}", crate::study::slug(&target.name)),
            &format!("Linear transfer to {} during training", target.name),
            format!("Linear transfer accuracy on {} {ending} (Fig. D.2)", target.name),
            "linear transfer accuracy",
            &move |p| p.transfer.iter().find(|t| t.target == name).map(|t| t.value),
        );
    }
    let at = layer.to_string();
    line(
        "dynamics-r2-train".into(),
        "Class separation during training (training images)",
        format!("Class separation R² (cosine) of layer {layer} on source training images {ending} (Fig. E.4, left)"),
        &format!("R² ({layer})"),
        &move |p| RunResult::at(&p.separation, &at),
    );
    line(
        "dynamics-r2-test".into(),
        "Class separation during training (test images)",
        format!(
            "Class separation R² (cosine) of the penultimate layer on the source test split {ending} (Fig. E.4, right)"
        ),
        "R² (penultimate)",
        &|p| Some(p.test_separation),
    );
    if let Some(figure) = train_vs_test(results, objectives) {
        out.push(figure);
    }
    out
}

/// Fig. C.3: test against training accuracy at each kept epoch, one colour per objective (the
/// mean over its seeds at each epoch), the objective named at its last point.
fn train_vs_test(results: &StudyResults, objectives: &[String]) -> Option<Figure> {
    // The same epochs in both: those with a training accuracy.
    let (_, test) = curves(results, objectives, &|p| p.train_top1.map(|_| p.top1))?;
    let (_, train) = curves(results, objectives, &|p| p.train_top1)?;
    let mut points = Vec::new();
    for (series, (tests, trains)) in test.iter().zip(&train).enumerate() {
        let pairs: Vec<(f64, f64)> = tests
            .values
            .iter()
            .zip(&trains.values)
            .filter_map(|(y, x)| Some(((*x)?, (*y)?)))
            .collect();
        for (i, &(x, y)) in pairs.iter().enumerate() {
            let last = i + 1 == pairs.len();
            points.push(Point {
                label: if last { tests.name.clone() } else { String::new() },
                x,
                y,
                series,
            });
        }
    }
    if points.is_empty() {
        return None;
    }
    Some(Figure {
        name: "dynamics-test-vs-train".into(),
        caption: "Top-1 accuracy on the source test split against top-1 accuracy on the network's own training \
                  images (unaugmented) at each kept epoch, mean over seeds, each objective named at its best epoch \
                  (Fig. C.3)"
            .into(),
        svg: scatter(
            "Test against training accuracy during training",
            &points,
            "training top-1 accuracy",
            "test top-1 accuracy",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::results::fixtures::{run, study};

    fn point(epoch: usize, top1: f64, train: Option<f64>) -> DynamicsPoint {
        DynamicsPoint {
            epoch,
            top1,
            train_top1: train,
            transfer: Vec::new(),
            separation: vec![crate::study::results::LayerValue {
                layer: "penultimate".into(),
                value: top1 / 2.0,
            }],
            test_separation: 0.1,
        }
    }

    #[test]
    fn curves_average_the_seeds_at_each_epoch_and_end_where_each_run_ends() {
        let mut a = run("softmax", 0, 0.5, 0.3, 0.6);
        a.dynamics = vec![point(2, 0.2, Some(0.3)), point(4, 0.4, Some(0.5))];
        let mut b = run("softmax", 1, 0.5, 0.3, 0.6);
        b.dynamics = vec![point(2, 0.4, Some(0.5)), point(6, 0.6, Some(0.7))];
        let mut c = run("sigmoid", 0, 0.5, 0.3, 0.6);
        c.dynamics = vec![point(4, 0.8, None)];
        let results = study(vec![a, b, c]);
        let all = results.objectives(&[]);
        let (epochs, series) = curves(&results, &all, &|p| Some(p.top1)).unwrap();
        assert_eq!(epochs, ["2", "4", "6"]);
        let values = |s: &Series| {
            s.values
                .iter()
                .map(|v| v.map(|x| (x * 1e9).round() / 1e9))
                .collect::<Vec<_>>()
        };
        assert_eq!(values(&series[0]), [Some(0.3), Some(0.4), Some(0.6)]);
        assert_eq!(values(&series[1]), [None, Some(0.8), None]);
        // Training accuracy: sigmoid has none, so its curve and the scatter leave it out.
        let figures = dynamics_figures(&results, &all, "penultimate");
        let names: Vec<&str> = figures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "dynamics-test-accuracy",
                "dynamics-train-accuracy",
                "dynamics-r2-train",
                "dynamics-r2-test",
                "dynamics-test-vs-train"
            ]
        );
        let scatter = &figures[4].svg;
        assert_eq!(scatter.matches("<circle").count(), 3, "three softmax epochs");
        assert!(scatter.contains(">softmax</text>") && !scatter.contains(">sigmoid</text>"));
        // No run with dynamics: no figures.
        let plain = study(vec![run("softmax", 0, 0.5, 0.3, 0.6)]);
        assert!(dynamics_figures(&plain, &plain.objectives(&[]), "penultimate").is_empty());
    }
}
