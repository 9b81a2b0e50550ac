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

/// `probe linear` on multi-label files (a 0/1 `labels` matrix): one logistic regression per
/// class, ROC AUC; the kNN probe and mixed files refused, bad matrices named.
#[test]
fn multi_label_files_are_probed_per_class_by_roc_auc() {
    use losslens_core::features::ArrayData;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let matrix = |n: usize, f: &dyn Fn(usize, usize) -> i64| {
        Array::new(
            vec![n, 2],
            ArrayData::I64((0..n * 2).map(|i| f(i / 2, i % 2)).collect()),
        )
    };
    let attribute = |i: usize, c: usize| i64::from(if c == 0 { i.is_multiple_of(3) } else { i % 3 != 2 });
    let file = |name: &str, n: usize, phase: f32, labels: Array| {
        write(
            d,
            name,
            vec![
                ("penultimate", Array::from_f32(n, 4, features(n, 4, phase))),
                ("labels", labels),
            ],
        )
    };
    let train = file("train.npz", 60, 0.0, matrix(60, &attribute));
    let test = file("test.npz", 30, 1.0, matrix(30, &attribute));
    let linear = |train: &std::path::Path, test: &std::path::Path| {
        vec![
            "probe".to_string(),
            "linear".into(),
            "--train".into(),
            s(train).into(),
            "--test".into(),
            s(test).into(),
            "--lambdas".into(),
            "5".into(),
            "--device".into(),
            "cpu".into(),
        ]
    };
    let mut args = linear(&train, &test);
    args.push("--json".into());
    let out = json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let classes = out["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 2, "{out}");
    for c in classes {
        let auc = c["auc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&auc), "{out}");
        assert!(c["lambda"].as_f64().unwrap() > 0.0);
    }
    assert!(
        out["mean_auc"].as_f64().unwrap() > 0.9,
        "these attributes follow the features: {out}"
    );
    assert_eq!(out["path"].as_array().unwrap().len(), 5);
    // The human report names each class.
    let (ok, stdout, stderr) = losslens(&linear(&train, &test).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{stderr}");
    assert!(stdout.contains("mean test ROC AUC"), "{stdout}");

    // Refused: kNN on multi-label labels, one file of each kind, a label that is not 0/1, a class
    // without a positive test example.
    fails_with(
        &[
            "probe",
            "knn",
            "--train",
            s(&train),
            "--test",
            s(&test),
            "--device",
            "cpu",
        ],
        &["multi-label", "probe linear"],
    );
    let single = write(
        d,
        "single.npz",
        vec![
            ("penultimate", Array::from_f32(30, 4, features(30, 4, 1.0))),
            (
                "labels",
                Array::from_labels(&(0..30).map(|i| i % 3).collect::<Vec<_>>()),
            ),
        ],
    );
    let refused = |test: &std::path::Path, needles: &[&str]| {
        fails_with(
            &linear(&train, test).iter().map(String::as_str).collect::<Vec<_>>(),
            needles,
        )
    };
    refused(&single, &["same kind"]);
    let two = file(
        "two.npz",
        30,
        1.0,
        matrix(30, &|i, c| if i == 4 { 2 } else { attribute(i, c) }),
    );
    refused(&two, &["example 4 for class 0 is 2", "0 or 1"]);
    let empty = file(
        "empty.npz",
        30,
        1.0,
        matrix(30, &|i, c| if c == 1 { 0 } else { attribute(i, c) }),
    );
    refused(&empty, &["class `1` has no positive example in the test labels"]);
}
