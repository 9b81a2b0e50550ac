//! The multi-label probe (Table D.1) against scikit-learn: ROC AUC against `roc_auc_score` on
//! fixed cases, and the per-class logistic regressions on real data (MNIST, 2,000 training and
//! 1,000 test images, 2×2-pooled pixels, four 0/1 attributes of each digit), with reference values
//! from `multilabel/make_multilabel_reference.py`; then the bad inputs.

use std::path::{Path, PathBuf};

use losslens_core::data::idx::read_idx_set;
use losslens_core::features::{Array, ArrayData, Layer};
use losslens_core::probe::auc::roc_auc;
use losslens_core::probe::multilabel::{LabelMatrix, fit_sigmoids, multilabel_probe};
use losslens_core::probe::{LbfgsConfig, LinearProbeConfig};
use losslens_core::{Compute, Precision};
use serde_json::Value;

fn run<T>(f: impl Future<Output = losslens_core::Result<T>>) -> T {
    pollster::block_on(f).unwrap_or_else(|e| panic!("{e}"))
}

fn reference() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/multilabel/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn roc_auc_matches_scikit_learn() {
    for case in reference()["auc"].as_array().unwrap() {
        let scores: Vec<f64> = case["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let labels: Vec<bool> = case["labels"].as_array().unwrap().iter().map(|v| v == 1).collect();
        let expected = case["auc"].as_f64().unwrap();
        let auc = roc_auc(&scores, &labels).unwrap();
        assert!(
            (auc - expected).abs() < 1e-12,
            "{auc} vs {expected} ({} scores)",
            scores.len()
        );
    }
}

/// The digits' four attributes, as the reference script derives them.
fn attributes(digits: &[usize]) -> LabelMatrix {
    let members: [&[usize]; 4] = [&[0, 2, 4, 6, 8], &[5, 6, 7, 8, 9], &[0, 6, 8, 9], &[2, 3, 5, 7]];
    let values = digits
        .iter()
        .flat_map(|d| members.iter().map(move |m| m.contains(d)))
        .collect();
    let names = ["even", "greater than 4", "closed loop", "prime"]
        .map(String::from)
        .to_vec();
    LabelMatrix::new(digits.len(), 4, values)
        .unwrap()
        .with_names(names)
        .unwrap()
}

struct Data {
    train: Layer,
    train_labels: LabelMatrix,
    test: Layer,
    test_labels: LabelMatrix,
}

fn pooled(dir: &Path, split: &str, n: usize) -> (Layer, LabelMatrix) {
    let set = read_idx_set(
        &dir.join(format!("{split}-images-idx3-ubyte.gz")),
        &dir.join(format!("{split}-labels-idx1-ubyte.gz")),
    )
    .unwrap();
    let first = set.subset(&(0..n).collect::<Vec<_>>());
    (first.pooled_features(2).unwrap(), attributes(&first.labels))
}

fn load(reference: &Value) -> Option<Data> {
    let dir = std::env::var_os("LOSSLENS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
        .join("mnist");
    if !dir.join("train-images-idx3-ubyte.gz").exists() {
        assert!(
            std::env::var("LOSSLENS_TEST_DATA").as_deref() != Ok("require"),
            "LOSSLENS_TEST_DATA=require but {} has no MNIST",
            dir.display()
        );
        eprintln!("skipped: no MNIST in {}", dir.display());
        return None;
    }
    let n = |key: &str| reference[key].as_u64().unwrap() as usize;
    let (train, train_labels) = pooled(&dir, "train", n("n_train"));
    let (test, test_labels) = pooled(&dir, "t10k", n("n_test"));
    let losslens_core::features::FloatData::F32(values) = &train.data else {
        unreachable!()
    };
    let checksum: f64 = values.iter().map(|&v| f64::from(v)).sum();
    let expected = reference["mnist"]["feature_checksum"].as_f64().unwrap();
    assert!(
        (checksum - expected).abs() < 1e-6 * expected,
        "features differ from the reference script's"
    );
    let positives: Vec<usize> = serde_json::from_value(reference["mnist"]["train_positives"].clone()).unwrap();
    assert_eq!(train_labels.positives(), positives);
    Some(Data {
        train,
        train_labels,
        test,
        test_labels,
    })
}

#[test]
fn per_class_fits_reach_scikit_learns_objective_and_auc() {
    let reference = reference();
    let Some(d) = load(&reference) else { return };
    // Below λ = 1e-2 both optimisers stop on their tolerances short of a far optimum.
    for p in reference["mnist"]["path"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["lambda"].as_f64().unwrap() >= 1e-2)
    {
        let lambda = p["lambda"].as_f64().unwrap();
        let optimizer = LbfgsConfig {
            gradient_tolerance: 1e-7,
            max_iterations: 5000,
            ..Default::default()
        };
        let compute = Compute::cpu().with_precision(Precision::F64);
        // Each class at its own λ: this one and its neighbours on a coarser grid give the same
        // per-class optimum as fitting the class alone.
        let (model, point) = run(fit_sigmoids(
            &compute,
            &d.train,
            &d.train_labels,
            &[lambda; 4],
            &optimizer,
        ));
        let sk: f64 = p["objective"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .sum();
        assert!(
            point.objective <= sk * (1.0 + 1e-5) + 1e-7,
            "λ={lambda}: objective {} vs scikit-learn {sk}",
            point.objective
        );
        assert_eq!(model.params.len(), 196 * 4 + 4);
        let fixed = run(multilabel_probe(
            &compute,
            &d.train,
            &d.train_labels,
            &d.test,
            &d.test_labels,
            &LinearProbeConfig {
                fixed_lambda: Some(lambda),
                optimizer,
                ..Default::default()
            },
            &mut |_| {},
        ));
        for (c, sk_auc) in p["test_auc"].as_array().unwrap().iter().enumerate() {
            let sk_auc = sk_auc.as_f64().unwrap();
            let auc = fixed.classes[c].auc;
            assert!(
                (auc - sk_auc).abs() < 1e-4,
                "λ={lambda} class {c}: AUC {auc} vs {sk_auc}"
            );
        }
    }
    // Different λ per class in one fit: each class as if fitted alone.
    let path = reference["mnist"]["path"].as_array().unwrap();
    let (a, b) = (&path[6], &path[9]);
    let lambdas = [a, b, a, b].map(|p| p["lambda"].as_f64().unwrap());
    let compute = Compute::cpu().with_precision(Precision::F64);
    let optimizer = LbfgsConfig {
        gradient_tolerance: 1e-7,
        max_iterations: 5000,
        ..Default::default()
    };
    let (_, point) = run(fit_sigmoids(&compute, &d.train, &d.train_labels, &lambdas, &optimizer));
    let sk: f64 = [a, b, a, b]
        .iter()
        .enumerate()
        .map(|(c, p)| p["objective"][c].as_f64().unwrap())
        .sum();
    assert!(
        point.objective <= sk * (1.0 + 1e-5) + 1e-7,
        "{} vs {sk}",
        point.objective
    );
    assert!(point.lambda.is_nan(), "no common λ");
}

#[test]
fn the_probe_chooses_each_class_lambda_and_matches_scikit_learn_there() {
    let reference = reference();
    let Some(d) = load(&reference) else { return };
    let path = reference["mnist"]["path"].as_array().unwrap();
    let config = LinearProbeConfig {
        lambda_count: path.len(),
        lambda_min: 1e-4,
        lambda_max: 1e2,
        ..Default::default()
    };
    let mut seen = 0;
    let result = run(multilabel_probe(
        &Compute::cpu(),
        &d.train,
        &d.train_labels,
        &d.test,
        &d.test_labels,
        &config,
        &mut |_| seen += 1,
    ));
    assert_eq!((seen, result.path.len()), (12, 12));
    assert_eq!(
        (result.train_examples + result.validation_examples, result.test_examples),
        (2000, 1000)
    );
    for (c, class) in result.classes.iter().enumerate() {
        let sk = path
            .iter()
            .find(|p| (p["lambda"].as_f64().unwrap() / class.lambda - 1.0).abs() < 1e-9)
            .expect("the chosen λ is on the reference path");
        let sk_auc = sk["test_auc"][c].as_f64().unwrap();
        eprintln!(
            "{}: λ = {:.3e}, AUC losslens {:.4} vs scikit-learn {sk_auc:.4} (validation {:.4})",
            class.class, class.lambda, class.auc, class.validation_auc
        );
        assert!(
            (class.auc - sk_auc).abs() <= 2e-3,
            "{}: {} vs {sk_auc}",
            class.class,
            class.auc
        );
        // The validation AUC it was chosen by is the best on the path for this class.
        let best = result.path.iter().map(|p| p.validation_auc[c]).fold(f64::MIN, f64::max);
        assert_eq!(class.validation_auc, best);
    }
    assert!(
        result.mean_auc > 0.88,
        "pixels separate these attributes well: {}",
        result.mean_auc
    );
    assert!(result.refit.converged, "{:?}", result.refit.termination);
    // Labels that say nothing about the images: AUC near one half.
    let shuffled_rows: Vec<usize> = (0..d.test_labels.rows)
        .map(|i| (i * 7919) % d.test_labels.rows)
        .collect();
    let shuffled = d.test_labels.select_rows(&shuffled_rows);
    let chance = run(multilabel_probe(
        &Compute::cpu(),
        &d.train,
        &d.train_labels,
        &d.test,
        &shuffled,
        &LinearProbeConfig {
            fixed_lambda: Some(1.0),
            ..Default::default()
        },
        &mut |_| {},
    ));
    assert!((chance.mean_auc - 0.5).abs() < 0.05, "{}", chance.mean_auc);
}

#[test]
fn bad_labels_are_clear_errors() {
    let layer = |rows: usize| Layer::from_f32("x", rows, 2, (0..rows * 2).map(|v| (v % 7) as f32).collect());
    let labels = |rows: usize, f: &dyn Fn(usize, usize) -> bool| {
        LabelMatrix::new(rows, 2, (0..rows * 2).map(|i| f(i / 2, i % 2)).collect()).unwrap()
    };
    let good = labels(20, &|i, c| (i + c) % 3 == 0);
    let probe = |train: &LabelMatrix, test: &LabelMatrix| {
        pollster::block_on(multilabel_probe(
            &Compute::cpu(),
            &layer(train.rows),
            train,
            &layer(test.rows),
            test,
            &LinearProbeConfig {
                lambda_count: 3,
                ..Default::default()
            },
            &mut |_| {},
        ))
        .map(|r| r.mean_auc)
    };
    assert!(probe(&good, &good).is_ok_and(|auc| (0.0..=1.0).contains(&auc)));
    // A class without a positive example, in the training or the test labels.
    let none = labels(20, &|i, c| c == 0 && i % 2 == 0);
    let message = probe(&none, &good).unwrap_err().to_string();
    assert!(
        message.contains("class `1` has no positive example in the training labels"),
        "{message}"
    );
    let message = probe(&good, &none).unwrap_err().to_string();
    assert!(message.contains("in the test labels"), "{message}");
    // Every example positive: no negative.
    let all = labels(20, &|i, c| c == 1 || i % 2 == 0);
    assert!(
        probe(&all, &good)
            .unwrap_err()
            .to_string()
            .contains("no negative example")
    );
    // A single positive cannot be both fitted and validated on.
    let single = labels(20, &|i, c| if c == 1 { i == 3 } else { i % 2 == 0 });
    let message = probe(&single, &good).unwrap_err().to_string();
    assert!(message.contains("choose its λ"), "{message}");
    // Rows that do not match, classes that differ.
    let short = labels(19, &|i, c| (i + c) % 3 == 0);
    let mismatch = pollster::block_on(multilabel_probe(
        &Compute::cpu(),
        &layer(20),
        &short,
        &layer(20),
        &good,
        &LinearProbeConfig::default(),
        &mut |_| {},
    ));
    assert!(mismatch.unwrap_err().to_string().contains("19"));
    let three = LabelMatrix::new(20, 3, (0..60).map(|i| i % 4 == 0).collect()).unwrap();
    assert!(probe(&good, &three).unwrap_err().to_string().contains("same classes"));
    // Arrays: 0/1 only, two dimensions.
    let array = |shape: Vec<usize>, values: Vec<f64>| Array::new(shape, ArrayData::F64(values));
    let path = Path::new("labels.npz");
    assert!(LabelMatrix::from_array(path, "labels", &array(vec![2, 2], vec![0.0, 1.0, 1.0, 0.0])).is_ok());
    let message = LabelMatrix::from_array(path, "labels", &array(vec![2, 2], vec![0.0, 1.0, -1.0, 0.0]))
        .unwrap_err()
        .to_string();
    assert!(message.contains("example 1 for class 0 is -1"), "{message}");
    assert!(LabelMatrix::from_array(path, "labels", &array(vec![4], vec![0.0; 4])).is_err());
}

/// The multi-label kNN probe: the leave-one-out AUC at every k and the test AUC at the chosen k,
/// against scikit-learn's neighbours (`multilabel/make_knn_reference.py`).
#[test]
fn knn_probe_matches_scikit_learn() {
    use losslens_core::probe::multilabel_knn;
    let reference = reference();
    let Some(d) = load(&reference) else { return };
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/multilabel/knn_reference.json");
    let knn: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let k_max = knn["k_max"].as_u64().unwrap() as usize;
    let result = run(multilabel_knn(
        &Compute::cpu(),
        (&d.train, &d.train_labels),
        (&d.test, &d.test_labels),
        k_max,
    ));
    assert_eq!(result.leave_one_out_auc.len(), k_max);
    for (k, (ours, theirs)) in result
        .leave_one_out_auc
        .iter()
        .zip(knn["leave_one_out_auc"].as_array().unwrap())
        .enumerate()
    {
        let theirs = theirs.as_f64().unwrap();
        // Neighbours at equal similarity may come in another order.
        assert!((ours - theirs).abs() < 1e-3, "k = {}: {ours} vs {theirs}", k + 1);
    }
    let best = result.leave_one_out_auc.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(result.leave_one_out_auc[result.k - 1], best);
    for (c, theirs) in knn["test_auc"][result.k - 1].as_array().unwrap().iter().enumerate() {
        let theirs = theirs.as_f64().unwrap();
        eprintln!(
            "class {c}: k = {}, AUC losslens {:.4} vs scikit-learn {theirs:.4}",
            result.k, result.auc[c]
        );
        assert!(
            (result.auc[c] - theirs).abs() < 1e-3,
            "class {c}: {} vs {theirs}",
            result.auc[c]
        );
    }
    assert!((result.mean_auc - result.auc.iter().sum::<f64>() / 4.0).abs() < 1e-12);
}
