//! `losslens probe linear|knn`: the JSON contract, and bad input refused clearly.

use losslens_core::features::Array;

use crate::common::*;

#[test]
fn probes_follow_the_json_contract_and_refuse_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let labels: Vec<usize> = (0..60).map(|i| i % 3).collect();
    let train = write(
        d,
        "train.npz",
        vec![
            ("penultimate", Array::from_f32(60, 4, features(60, 4, 0.0))),
            ("labels", Array::from_labels(&labels)),
        ],
    );
    let test = write(
        d,
        "test.npz",
        vec![
            ("penultimate", Array::from_f32(30, 4, features(30, 4, 1.0))),
            ("labels", Array::from_labels(&labels[..30])),
        ],
    );
    let linear = json(&[
        "probe",
        "linear",
        "--train",
        s(&train),
        "--test",
        s(&test),
        "--lambdas",
        "5",
        "--device",
        "cpu",
        "--json",
    ]);
    for key in ["lambda", "accuracy", "mean_per_class_accuracy"] {
        assert!(linear[key].is_f64(), "linear `{key}`: {linear}");
    }
    assert_eq!(linear["path"].as_array().unwrap().len(), 5);
    assert!(linear["path"][0]["validation_accuracy"].is_f64());
    assert!((0.0..=1.0).contains(&linear["accuracy"].as_f64().unwrap()));
    let knn = json(&[
        "probe",
        "knn",
        "--train",
        s(&train),
        "--test",
        s(&test),
        "--k-max",
        "7",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(knn["k"].is_u64() && knn["k"].as_u64().unwrap() <= 7, "{knn}");
    for key in ["accuracy", "mean_per_class_accuracy", "leave_one_out_accuracy"] {
        assert!(knn[key].is_f64(), "knn `{key}`: {knn}");
    }
    assert_eq!(knn["grid"].as_array().unwrap().len(), 7);
    let (ok, table, _) = losslens(&[
        "probe",
        "knn",
        "--train",
        s(&train),
        "--test",
        s(&test),
        "--device",
        "cpu",
        "--vote",
        "weighted",
    ]);
    assert!(ok && table.contains("chosen k"), "{table}");

    // Bad input: different widths, unseen test labels, no labels, bad settings.
    let wide = write(
        d,
        "wide.npz",
        vec![
            ("penultimate", Array::from_f32(30, 5, features(30, 5, 0.0))),
            ("labels", Array::from_labels(&labels[..30])),
        ],
    );
    fails_with(
        &[
            "probe",
            "knn",
            "--train",
            s(&train),
            "--test",
            s(&wide),
            "--device",
            "cpu",
        ],
        &["4 features", "5"],
    );
    let unseen: Vec<usize> = (0..30).map(|i| i % 4).collect();
    let odd = write(
        d,
        "odd.npz",
        vec![
            ("penultimate", Array::from_f32(30, 4, features(30, 4, 0.0))),
            ("labels", Array::from_labels(&unseen)),
        ],
    );
    fails_with(
        &[
            "probe",
            "linear",
            "--train",
            s(&train),
            "--test",
            s(&odd),
            "--device",
            "cpu",
        ],
        &["label 3", "0..3"],
    );
    let unlabelled = write(
        d,
        "unlabelled.npz",
        vec![("penultimate", Array::from_f32(30, 4, features(30, 4, 0.0)))],
    );
    fails_with(
        &[
            "probe",
            "knn",
            "--train",
            s(&unlabelled),
            "--test",
            s(&test),
            "--device",
            "cpu",
        ],
        &["labels"],
    );
    fails_with(
        &[
            "probe",
            "linear",
            "--train",
            s(&train),
            "--test",
            s(&test),
            "--validation-fraction",
            "0",
            "--device",
            "cpu",
        ],
        &["validation fraction"],
    );
    fails_with(
        &[
            "probe",
            "knn",
            "--train",
            s(&train),
            "--test",
            s(&test),
            "--k-max",
            "0",
            "--device",
            "cpu",
        ],
        &["k_max"],
    );
}
