//! Times the linear and kNN probes against scikit-learn on the same features, split and
//! protocol, in the same run, and prints times, accuracies and the speed-up.
//!
//! ```text
//! scripts/bench probes [--device cpu|gpu] [--train 10000] [--test 2000] [--data DIR]
//! ```
//!
//! Features: MNIST images from `DIR/mnist` (default `../shared/data`), 2×2-pooled to 196 values.
//! The linear probe runs the full 45-λ path (L-BFGS, tolerance 1e-4, at most 1,000 iterations,
//! warm starts) on the same stratified validation split in both; the kNN probe scores every k up
//! to 50 by leave-one-out accuracy and classifies the test set at the best k. scikit-learn runs
//! in `f64` (its default for these estimators), losslens in `f32` on the chosen device.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use crate::common::{kernel_cache, python, record, script};
use losslens_core::Compute;
use losslens_core::data::idx::read_idx_set;
use losslens_core::device::{DeviceChoice, select};
use losslens_core::features::{Array, FeatureFile, FloatData, Layer, npy_bytes};
use losslens_core::probe::split::stratified_split;
use losslens_core::probe::{KnnConfig, LinearProbeConfig, knn_probe, linear_probe};

/// The first `n` images of a split, 2×2-pooled (`ImageSet::pooled_features`), and their labels.
fn pooled(dir: &std::path::Path, split: &str, n: usize) -> (Vec<f32>, Vec<usize>) {
    let set = read_idx_set(
        &dir.join(format!("{split}-images-idx3-ubyte.gz")),
        &dir.join(format!("{split}-labels-idx1-ubyte.gz")),
    )
    .expect("MNIST IDX files");
    let first = set.subset(&(0..n.min(set.len())).collect::<Vec<_>>());
    let layer = first.pooled_features(2).expect("28 px images pool by 2");
    let FloatData::F32(data) = layer.data else {
        unreachable!("pooled features are f32")
    };
    (data, first.labels)
}

/// `bench probes [ARGS]`.
pub fn run(raw: Vec<String>) {
    let mut device = DeviceChoice::Cpu;
    let (mut n_train, mut n_test) = (10_000, 2_000);
    let mut data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    let mut it = raw.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--device" => {
                device = if it.next().as_deref() == Some("gpu") {
                    DeviceChoice::Gpu
                } else {
                    DeviceChoice::Cpu
                }
            }
            "--train" => n_train = it.next().and_then(|v| v.parse().ok()).expect("--train N"),
            "--test" => n_test = it.next().and_then(|v| v.parse().ok()).expect("--test N"),
            "--data" => data = PathBuf::from(it.next().expect("--data DIR")),
            other => panic!("unknown argument {other}"),
        }
    }
    let mnist = data.join("mnist");
    let (xtr, ytr) = pooled(&mnist, "train", n_train);
    let (xte, yte) = pooled(&mnist, "t10k", n_test);
    let (n_train, n_test) = (ytr.len(), yte.len());
    let train = Layer::from_f32("features", n_train, 196, xtr.clone());
    let test = Layer::from_f32("features", n_test, 196, xte.clone());
    let config = LinearProbeConfig::default();

    // The same files and split for scikit-learn.
    let dir = tempfile::tempdir().expect("temporary folder");
    for (name, x, y, n) in [("train", &xtr, &ytr, n_train), ("test", &xte, &yte, n_test)] {
        let path = dir.path().join(format!("{name}.npz"));
        let arrays = vec![
            ("features".to_string(), Array::from_f32(n, 196, x.clone())),
            ("labels".to_string(), Array::from_labels(y)),
        ];
        FeatureFile::new(&path, arrays, None)
            .save(&path)
            .expect("write features");
    }
    let split = stratified_split(&ytr, config.validation_fraction, config.seed);
    let holdout: Vec<usize> = split.holdout.clone();
    std::fs::write(dir.path().join("holdout.npy"), npy_bytes(&Array::from_labels(&holdout))).expect("write split");

    kernel_cache();
    let selected = pollster::block_on(select(device)).expect("device");
    let compute = Compute::new(selected.device.clone(), losslens_core::Precision::F32);
    let device_name = selected.name.clone();
    println!(
        "MNIST 2×2-pooled pixels: {n_train} train × 196, {n_test} test; losslens on {}",
        selected.name
    );

    let started = Instant::now();
    let linear = pollster::block_on(linear_probe(&compute, &train, &ytr, &test, &yte, &config, &mut |_| {}))
        .expect("linear probe");
    let linear_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let knn =
        pollster::block_on(knn_probe(&compute, &train, &ytr, &test, &yte, &KnnConfig::default())).expect("kNN probe");
    let knn_s = started.elapsed().as_secs_f64();

    let script = script("bench_probes_sklearn.py");
    let out = Command::new(python()).arg(&script).arg(dir.path()).output();
    let sk: Option<serde_json::Value> = match out {
        Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).ok(),
        Ok(o) => {
            eprintln!("scikit-learn side failed:\n{}", String::from_utf8_lossy(&o.stderr));
            None
        }
        Err(e) => {
            eprintln!("python3 not available: {e}");
            None
        }
    };
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>12} {:>12} {:>8}",
        "probe", "losslens s", "sklearn s", "speed-up", "losslens acc", "sklearn acc", "choice"
    );
    let row = |name: &str, ours_s: f64, ours_acc: f64, choice: String, key: &str| {
        let (sk_s, sk_acc) = sk
            .as_ref()
            .map(|v| {
                (
                    v[key]["seconds"].as_f64().unwrap_or(f64::NAN),
                    v[key]["accuracy"].as_f64().unwrap_or(f64::NAN),
                )
            })
            .unwrap_or((f64::NAN, f64::NAN));
        println!(
            "{name:<28} {ours_s:>10.2} {sk_s:>10.2} {:>9.2}× {ours_acc:>12.4} {sk_acc:>12.4} {choice:>8}",
            sk_s / ours_s
        );
        record(serde_json::json!({
            "benchmark": name, "device": device_name, "losslens_seconds": ours_s, "losslens_accuracy": ours_acc,
            "baseline": "scikit-learn", "baseline_seconds": sk_s, "baseline_accuracy": sk_acc,
            "speedup": sk_s / ours_s,
        }));
    };
    let sk_lambda = sk
        .as_ref()
        .and_then(|v| v["linear"]["lambda"].as_f64())
        .unwrap_or(f64::NAN);
    let sk_k = sk.as_ref().and_then(|v| v["knn"]["k"].as_u64()).unwrap_or(0);
    row(
        "linear, 45-λ path + refit",
        linear_s,
        linear.accuracy,
        format!("λ {:.1e}", linear.lambda),
        "linear",
    );
    row(
        "kNN, LOO k ≤ 50 + test",
        knn_s,
        knn.accuracy,
        format!("k {}", knn.k),
        "knn",
    );
    println!("scikit-learn chose λ {sk_lambda:.1e}, k {sk_k}");
    let iterations: usize = linear.path.iter().map(|p| p.iterations).sum();
    let evaluations: usize = linear.path.iter().map(|p| p.evaluations).sum();
    println!("losslens path: {iterations} L-BFGS iterations, {evaluations} evaluations");
}
