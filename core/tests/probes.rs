//! The probes against scikit-learn on real data (MNIST and Fashion-MNIST, 2,000 training and
//! 1,000 test images, 2×2-pooled pixels), with reference values from
//! `probes/make_probe_reference.py`, and the hard cases that must neither hang nor panic.
//!
//! The datasets are read from `../shared/data` (or `LOSSLENS_DATA`) and
//! `/usr/share/datasets/fashion-mnist` (or `LOSSLENS_FASHION_MNIST`); a missing one skips its
//! test unless `LOSSLENS_TEST_DATA=require`.

use std::path::{Path, PathBuf};

use losslens_core::data::idx::read_idx_set;
use losslens_core::features::Layer;
use losslens_core::probe::knn::{nearest_neighbors, predict_all_k};
use losslens_core::probe::metrics::accuracy;
use losslens_core::probe::{
    KnnConfig, LbfgsConfig, LinearProbeConfig, TieBreak, Vote, fit_logistic, knn_probe, linear_probe,
};
use losslens_core::{Compute, Precision};
use serde_json::Value;

fn run<T>(f: impl Future<Output = losslens_core::Result<T>>) -> T {
    pollster::block_on(f).unwrap_or_else(|e| panic!("{e}"))
}

fn reference() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/probes/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn dataset_dir(name: &str) -> Option<PathBuf> {
    let dir = match name {
        "mnist" => std::env::var_os("LOSSLENS_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
            .join("mnist"),
        _ => std::env::var_os("LOSSLENS_FASHION_MNIST")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/share/datasets/fashion-mnist")),
    };
    if dir.join("train-images-idx3-ubyte.gz").exists() {
        return Some(dir);
    }
    if std::env::var("LOSSLENS_TEST_DATA").as_deref() == Ok("require") {
        panic!(
            "LOSSLENS_TEST_DATA=require but {} has no {name} IDX files",
            dir.display()
        );
    }
    eprintln!("skipped: no {name} data in {}", dir.display());
    None
}

/// The first `n` images 2×2-pooled to 196 values (`ImageSet::pooled_features`: `(a + b + c + d) /
/// 1020` rounded to `f32`) and their labels — exactly what the reference script computes.
fn pooled(dir: &Path, split: &str, n: usize) -> (Layer, Vec<usize>) {
    let set = read_idx_set(
        &dir.join(format!("{split}-images-idx3-ubyte.gz")),
        &dir.join(format!("{split}-labels-idx1-ubyte.gz")),
    )
    .unwrap();
    let first = set.subset(&(0..n).collect::<Vec<_>>());
    (first.pooled_features(2).unwrap(), first.labels)
}

struct Data {
    train: Layer,
    train_labels: Vec<usize>,
    test: Layer,
    test_labels: Vec<usize>,
}

fn load(name: &str, reference: &Value) -> Option<Data> {
    let dir = dataset_dir(name)?;
    let (n_train, n_test) = (
        reference["n_train"].as_u64().unwrap() as usize,
        reference["n_test"].as_u64().unwrap() as usize,
    );
    let (train, train_labels) = pooled(&dir, "train", n_train);
    let (test, test_labels) = pooled(&dir, "t10k", n_test);
    let losslens_core::features::FloatData::F32(values) = &train.data else {
        unreachable!()
    };
    let checksum: f64 = values.iter().map(|&v| f64::from(v)).sum();
    let expected = reference[name]["feature_checksum"].as_f64().unwrap();
    assert!(
        (checksum - expected).abs() < 1e-6 * expected,
        "{name}: features differ from the reference script's"
    );
    Some(Data {
        train,
        train_labels,
        test,
        test_labels,
    })
}

#[test]
fn linear_probe_matches_scikit_learn_at_the_chosen_lambda() {
    let reference = reference();
    for name in ["mnist", "fashion-mnist"] {
        let Some(d) = load(name, &reference) else { continue };
        let mut seen = 0;
        let result = run(linear_probe(
            &Compute::cpu(),
            &d.train,
            &d.train_labels,
            &d.test,
            &d.test_labels,
            &LinearProbeConfig::default(),
            &mut |_| seen += 1,
        ));
        assert_eq!(seen, 45);
        assert_eq!(result.path.len(), 45);
        let sk = reference[name]["linear"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| (p["lambda"].as_f64().unwrap() / result.lambda - 1.0).abs() < 1e-9)
            .expect("the chosen λ is on the reference path");
        let sk_accuracy = sk["test_accuracy"].as_f64().unwrap();
        eprintln!(
            "{name}: λ = {:.3e}, losslens {:.4} vs scikit-learn {:.4} (validation {:.4})",
            result.lambda,
            result.accuracy,
            sk_accuracy,
            result
                .path
                .iter()
                .find(|p| p.lambda == result.lambda)
                .unwrap()
                .validation_accuracy
        );
        assert!(
            (result.accuracy - sk_accuracy).abs() <= 0.005,
            "{name}: {} vs {sk_accuracy}",
            result.accuracy
        );
        assert!(
            result.refit.converged,
            "{name}: the refit converged ({:?})",
            result.refit.termination
        );
        assert!(
            result.accuracy > 0.7,
            "{name}: a linear probe on pixels does far better than chance"
        );
        assert!((0.0..=1.0).contains(&result.test.ece) && result.test.temperature > 0.0);
    }
}

#[test]
fn linear_fits_reach_scikit_learns_objective() {
    let reference = reference();
    for name in ["mnist", "fashion-mnist"] {
        let Some(d) = load(name, &reference) else { continue };
        for p in reference[name]["linear"].as_array().unwrap().iter().step_by(8) {
            let lambda = p["lambda"].as_f64().unwrap();
            // The reference was fitted to a gradient tolerance of 1e-6 in at most 3,000 iterations.
            let optimizer = LbfgsConfig {
                gradient_tolerance: 1e-6,
                max_iterations: 3000,
                ..Default::default()
            };
            let compute = Compute::cpu().with_precision(Precision::F64);
            let (model, point) = run(fit_logistic(&compute, &d.train, &d.train_labels, lambda, &optimizer));
            let sk = p["objective"].as_f64().unwrap();
            // Below λ = 1e-2 these data are nearly separable: the optimum has a huge norm and both
            // optimisers stop on their tolerances short of it, so only closeness is required there.
            let (objective_tol, accuracy_tol) = if lambda >= 1e-2 { (1e-4, 0.005) } else { (0.05, 0.015) };
            assert!(
                point.objective <= sk * (1.0 + objective_tol) + 1e-6,
                "{name} λ={lambda}: objective {} vs scikit-learn {sk}",
                point.objective
            );
            let config = LinearProbeConfig {
                fixed_lambda: Some(lambda),
                optimizer,
                ..Default::default()
            };
            let fixed = run(linear_probe(
                &Compute::cpu(),
                &d.train,
                &d.train_labels,
                &d.test,
                &d.test_labels,
                &config,
                &mut |_| {},
            ));
            let sk_acc = p["test_accuracy"].as_f64().unwrap();
            assert!(
                (fixed.accuracy - sk_acc).abs() <= accuracy_tol,
                "{name} λ={lambda}: {} vs {sk_acc}",
                fixed.accuracy
            );
            assert_eq!(model.params.len(), 196 * 10 + 10);
        }
    }
}

#[test]
fn knn_leave_one_out_matches_scikit_learn_for_every_k() {
    let reference = reference();
    let compute = Compute::cpu().with_precision(Precision::F64);
    for name in ["mnist", "fashion-mnist"] {
        let Some(d) = load(name, &reference) else { continue };
        let k_max = reference["k_max"].as_u64().unwrap() as usize;
        let config = KnnConfig {
            k_max,
            vote: Vote::Majority,
            tie_break: TieBreak::SmallestLabel,
            ..Default::default()
        };
        let loo = run(nearest_neighbors(&compute, &d.train, &d.train, k_max, true));
        let expected = &reference[name]["knn"];
        for (i, predictions) in predict_all_k(&loo, &d.train_labels, 10, &config).iter().enumerate() {
            let ours = accuracy(predictions, &d.train_labels);
            let sk = expected["loo_accuracy"][i].as_f64().unwrap();
            assert!(
                (ours - sk).abs() < 1e-12,
                "{name} k={}: leave-one-out {ours} vs scikit-learn {sk}",
                i + 1
            );
        }
        let test = run(nearest_neighbors(&compute, &d.test, &d.train, k_max, false));
        for (i, predictions) in predict_all_k(&test, &d.train_labels, 10, &config).iter().enumerate() {
            let ours = accuracy(predictions, &d.test_labels);
            let sk = expected["test_accuracy"][i].as_f64().unwrap();
            assert!(
                (ours - sk).abs() < 1e-12,
                "{name} k={}: test {ours} vs scikit-learn {sk}",
                i + 1
            );
        }
        // The whole protocol in f32 with the default tie-break.
        let result = run(knn_probe(
            &Compute::cpu(),
            &d.train,
            &d.train_labels,
            &d.test,
            &d.test_labels,
            &KnnConfig::default(),
        ));
        let best_sk = expected["loo_accuracy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .fold(0.0, f64::max);
        // Breaking ties by the nearest neighbour instead of the smallest label can only help here.
        assert!(
            result.leave_one_out_accuracy >= best_sk - 0.002,
            "{name}: {} vs {best_sk}",
            result.leave_one_out_accuracy
        );
        assert!(result.accuracy > 0.7);
    }
}

/// Assignment accuracy (Table F.1) against scipy's `linear_sum_assignment` on replicated target
/// classes (`assignment/make_assignment_reference.py`): the same replication and the same number
/// of correctly mapped examples, for square, wide, narrow and 100-to-10 class sets.
#[test]
fn assignment_accuracy_matches_scipy() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/assignment/reference.json");
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let numbers = |v: &Value| -> Vec<usize> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect()
    };
    for case in reference["cases"].as_array().unwrap() {
        let (s, t) = (
            case["source_classes"].as_u64().unwrap() as usize,
            case["target_classes"].as_u64().unwrap() as usize,
        );
        let (predictions, labels) = (numbers(&case["predictions"]), numbers(&case["labels"]));
        let fitted = losslens_core::probe::fit_assignment(&predictions, &labels, s, t).unwrap();
        let correct = (fitted.fit_accuracy * labels.len() as f64).round() as u64;
        assert_eq!(
            (fitted.replication, correct),
            (
                case["replication"].as_u64().unwrap() as usize,
                case["correct"].as_u64().unwrap()
            ),
            "{s} source classes, {t} target classes"
        );
        assert!((fitted.fit_accuracy - case["accuracy"].as_f64().unwrap()).abs() < 1e-12);
        // Scoring the examples it was fitted on gives the fit accuracy back.
        assert_eq!(fitted.accuracy(&predictions, &labels).unwrap(), fitted.fit_accuracy);
    }
}
