//! `losslens analyze`: the JSON contract of every analysis, and a clear error (never a panic)
//! for each kind of bad input.

use losslens_core::features::{Array, ArrayData, npy_bytes};

use crate::common::*;

#[test]
fn json_contract_of_each_analysis() {
    let dir = tempfile::tempdir().unwrap();
    let labels: Vec<usize> = (0..30).map(|i| i % 3).collect();
    let a = write(
        dir.path(),
        "a.npz",
        vec![
            // Every third activation is zero, and no example is all zero.
            (
                "block1",
                Array::new(
                    vec![30, 2, 2, 2],
                    ArrayData::F32(
                        features(30, 8, 0.0)
                            .iter()
                            .enumerate()
                            .map(|(i, v)| if i % 3 == 0 { 0.0 } else { v.abs() + 0.1 })
                            .collect(),
                    ),
                ),
            ),
            ("pool", Array::from_f32(30, 5, features(30, 5, 1.0))),
            ("labels", Array::from_labels(&labels)),
        ],
    );
    let b = write(
        dir.path(),
        "b.safetensors",
        vec![("pool", Array::from_f32(30, 4, features(30, 4, 2.0)))],
    );

    let v = json(&[
        "analyze",
        "cka",
        s(&a),
        s(&b),
        "--layer",
        "pool",
        "--device",
        "cpu",
        "--json",
    ]);
    let biased = v["cka"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&biased));
    let v = json(&[
        "analyze",
        "cka",
        s(&a),
        s(&b),
        "--layer",
        "pool",
        "--debiased",
        "--device",
        "cpu",
        "--json",
    ]);
    assert_ne!(v["cka"].as_f64().unwrap(), biased);
    assert_eq!(v["estimator"], "debiased");

    let v = json(&[
        "analyze",
        "cka-matrix",
        s(&a),
        s(&a),
        "--batch-size",
        "10",
        "--device",
        "cpu",
        "--json",
    ]);
    assert_eq!(v["rows"], serde_json::json!(["block1", "pool"]));
    assert!((v["cka"][1][1].as_f64().unwrap() - 1.0).abs() < 1e-5);

    let v = json(&[
        "analyze",
        "separation",
        s(&a),
        "--layer",
        "pool",
        "--device",
        "cpu",
        "--json",
    ]);
    for key in ["r2", "r2_mean_subtracted", "r2_euclidean"] {
        assert!((0.0..=1.0).contains(&v[key].as_f64().unwrap()), "{key}");
    }
    let v = json(&[
        "analyze",
        "separation",
        s(&a),
        "--all-layers",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(v["layers"]["block1"]["r2"].is_f64());

    let v = json(&["analyze", "sparsity", s(&a), "--device", "cpu", "--json"]);
    let block1 = v["layers"]["block1"].as_f64().unwrap();
    assert!(
        (block1 - 2.0 / 3.0).abs() < 1e-12,
        "{block1}: 160 of 240 activations are non-zero"
    );
    assert_eq!(v["layers"]["pool"].as_f64().unwrap(), 1.0);

    let v = json(&[
        "analyze",
        "collapse",
        s(&a),
        "--layer",
        "pool",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(v["nc1"].as_f64().unwrap() > 0.0);
    let v = json(&[
        "analyze",
        "spectrum",
        s(&a),
        "--layer",
        "pool",
        "--device",
        "cpu",
        "--json",
    ]);
    assert_eq!(v["features"]["singular_values"].as_array().unwrap().len(), 5);

    // Tables for people.
    let (ok, out, _) = losslens(&["analyze", "separation", s(&a), "--layer", "pool", "--device", "cpu"]);
    assert!(ok && out.contains("cosine"));
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = write(
        d,
        "good.npz",
        vec![
            ("f", Array::from_f32(12, 3, features(12, 3, 0.0))),
            ("labels", Array::from_labels(&[0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])),
        ],
    );

    // Files that are not what they claim.
    let missing = d.join("missing.npz");
    fails_with(&["analyze", "sparsity", s(&missing)], &["missing.npz"]);
    let garbage = d.join("garbage.npy");
    std::fs::write(&garbage, b"this is not numpy").unwrap();
    fails_with(&["analyze", "sparsity", s(&garbage)], &["garbage.npy", "magic"]);
    let bytes = std::fs::read(&good).unwrap();
    let cut = d.join("cut.npz");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    fails_with(&["analyze", "sparsity", s(&cut)], &["cut.npz"]);
    let short = d.join("short.npy");
    let full = npy_bytes(&Array::from_f32(100, 10, vec![0.5; 1000]));
    std::fs::write(&short, &full[..full.len() - 400]).unwrap();
    fails_with(
        &["analyze", "sparsity", s(&short)],
        &["short.npy", "truncated", "[100, 10]"],
    );
    let txt = d.join("features.csv");
    std::fs::write(&txt, "1,2,3").unwrap();
    fails_with(
        &["analyze", "sparsity", s(&txt)],
        &["features.csv", "unknown file type"],
    );

    // Values and shapes.
    let nan = write(
        d,
        "nan.npz",
        vec![("f", Array::from_f32(2, 2, vec![1.0, f32::NAN, 0.0, 1.0]))],
    );
    fails_with(&["analyze", "sparsity", s(&nan)], &["nan.npz", "non-finite", "NaN"]);
    let inf = write(
        d,
        "inf.npz",
        vec![("f", Array::new(vec![2, 1], ArrayData::F64(vec![1.0, f64::INFINITY])))],
    );
    fails_with(&["analyze", "sparsity", s(&inf)], &["inf.npz", "inf"]);
    let ints = write(
        d,
        "ints.npz",
        vec![("f", Array::new(vec![2, 2], ArrayData::I64(vec![1, 2, 3, 4])))],
    );
    fails_with(
        &["analyze", "sparsity", s(&ints), "--layer", "f"],
        &["ints.npz", "int64"],
    );
    let other = write(
        d,
        "other.npz",
        vec![("f", Array::from_f32(10, 3, features(10, 3, 1.0)))],
    );
    fails_with(
        &["analyze", "cka", s(&good), s(&other), "--layer", "f", "--device", "cpu"],
        &["good.npz", "other.npz", "12", "10"],
    );
    let two = write(
        d,
        "two.npz",
        vec![
            ("a", Array::from_f32(4, 2, vec![1.0; 8])),
            ("b", Array::from_f32(4, 2, vec![1.0; 8])),
        ],
    );
    fails_with(
        &["analyze", "cka", s(&two), s(&two), "--device", "cpu"],
        &["two.npz", "--layer", "a, b"],
    );
    fails_with(
        &["analyze", "cka", s(&two), s(&two), "--layer", "c", "--device", "cpu"],
        &["no array named `c`"],
    );
    let flat = write(
        d,
        "flat.npz",
        vec![
            ("a", Array::from_f32(4, 2, vec![1.0; 8])),
            ("b", Array::from_f32(4, 2, features(4, 2, 0.0))),
        ],
    );
    fails_with(
        &[
            "analyze",
            "cka",
            s(&flat),
            s(&flat),
            "--layer",
            "a",
            "--layer-b",
            "b",
            "--device",
            "cpu",
        ],
        &["flat.npz:a", "zero variance"],
    );

    // Labels.
    fails_with(
        &["analyze", "separation", s(&other), "--device", "cpu"],
        &["other.npz", "labels"],
    );
    let lab = |name: &str, labels: Vec<i64>| {
        let n = labels.len();
        write(
            d,
            name,
            vec![
                ("f", Array::from_f32(n, 3, features(n, 3, 0.5))),
                ("labels", Array::new(vec![n], ArrayData::I64(labels))),
            ],
        )
    };
    let negative = lab("negative.npz", vec![0, 1, -1, 2]);
    fails_with(
        &["analyze", "separation", s(&negative), "--device", "cpu"],
        &["label -1", "out of range"],
    );
    let range = lab("range.npz", vec![0, 1, 2, 3]);
    fails_with(
        &[
            "analyze",
            "separation",
            s(&range),
            "--num-classes",
            "3",
            "--device",
            "cpu",
        ],
        &["label 3", "0..3"],
    );
    let single = lab("single.npz", vec![0, 0, 0, 0]);
    fails_with(
        &["analyze", "separation", s(&single), "--device", "cpu"],
        &["at least 2 classes"],
    );
    let empty = lab("empty.npz", vec![0, 2, 0, 2]);
    fails_with(
        &["analyze", "separation", s(&empty), "--device", "cpu"],
        &["class 1", "no examples"],
    );
    let rows = write(
        d,
        "rows.npz",
        vec![
            ("f", Array::from_f32(4, 3, features(4, 3, 0.5))),
            ("labels", Array::from_labels(&[0, 1, 0])),
        ],
    );
    fails_with(
        &["analyze", "separation", s(&rows), "--device", "cpu"],
        &["rows.npz", "4", "3"],
    );
    let zero = write(
        d,
        "zero.npz",
        vec![
            ("f", Array::from_f32(4, 2, vec![0.0, 0.0, 1.0, 1.0, 2.0, 0.0, 1.0, 3.0])),
            ("labels", Array::from_labels(&[0, 1, 0, 1])),
        ],
    );
    fails_with(
        &["analyze", "separation", s(&zero), "--device", "cpu"],
        &["zero.npz", "all-zero embedding", "example 0"],
    );

    // Settings.
    fails_with(
        &[
            "analyze",
            "cka-matrix",
            s(&good),
            s(&good),
            "--batch-size",
            "2",
            "--device",
            "cpu",
        ],
        &["batch_size", "at least 4"],
    );
    fails_with(
        &[
            "analyze",
            "cka",
            s(&good),
            s(&good),
            "--device",
            "gpu",
            "--precision",
            "f64",
        ],
        &["f64", "CPU"],
    );
}
