//! `losslens demo` on its built-in data, and the catalogues (`objectives`, `model`).

use serde_json::Value;

use crate::common::*;

#[test]
fn demo_runs_a_study() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let (ok, stdout, stderr) = losslens(&["demo", "--quick", "--out", s(&out), "--device", "cpu"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("| cosine-softmax") && stdout.contains("other-classes linear"),
        "{stdout}"
    );
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["runs"].as_array().unwrap().len(), 3);
    // The demo writes its result site and says where.
    assert!(
        stdout.contains("report: ") && out.join("site/index.html").is_file(),
        "{stdout}"
    );
    assert!(out.join("site/figures/r2-by-layer.svg").is_file());
    // The features of a demo run feed the analyses like any other run's.
    let features = dir.path().join("f.npz");
    let (ok, _, stderr) = losslens(&[
        "extract",
        s(&out.join("runs/softmax-s0")),
        "--out",
        s(&features),
        "--device",
        "cpu",
    ]);
    assert!(ok, "{stderr}");
    let v = json(&[
        "analyze",
        "separation",
        s(&features),
        "--layer",
        "penultimate",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(v["r2"].as_f64().is_some(), "{v}");
}

#[test]
fn objectives_and_models_are_listed() {
    let list = json(&["objectives", "--json"]);
    let names: Vec<&str> = list["objectives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 9);
    assert!(names.contains(&"cosine-softmax") && names.contains(&"squared-error"));
    let (ok, table, _) = losslens(&["objectives"]);
    assert!(ok && table.contains("label-smoothing") && table.contains("alpha=0.1"));
    assert!(
        table.contains("cosine-softmax+dropout"),
        "combinations are explained: {table}"
    );
    // A combination that makes no sense is refused before anything is read or written.
    fails_with(
        &[
            "train",
            "--objective",
            "softmax+sigmoid",
            "--out",
            "/nonexistent/run",
            "--device",
            "cpu",
        ],
        &["softmax+sigmoid", "at most one loss"],
    );
    fails_with(
        &[
            "train",
            "--augment",
            "mixup:alpha=0",
            "--out",
            "/nonexistent/run",
            "--device",
            "cpu",
        ],
        &["mixup alpha", "> 0"],
    );
    fails_with(
        &[
            "train",
            "--augment",
            "cutmix",
            "--out",
            "/nonexistent/run",
            "--device",
            "cpu",
        ],
        &["cutmix", "mixup", "autoaugment"],
    );
    fails_with(
        &[
            "train",
            "--augment",
            "autoaugment:policy=mnist",
            "--out",
            "/nonexistent/run",
            "--device",
            "cpu",
        ],
        &["mnist", "cifar10"],
    );

    let resnet50 = json(&["model", "resnet50", "--json"]);
    assert_eq!(resnet50["trainable_parameters"], 25_557_032);
    let taps = resnet50["taps"].as_array().unwrap();
    assert_eq!(taps.len(), 17);
    assert_eq!(taps[15]["name"], "block4.2");
    assert_eq!(taps[15]["shape"], serde_json::json!([2048, 7, 7]));
    let small = json(&["model", "small", "--classes", "10", "--image-size", "32", "--json"]);
    assert_eq!(small["stem"], "cifar");
    assert_eq!(
        small["taps"].as_array().unwrap().last().unwrap()["shape"],
        serde_json::json!([128])
    );

    // Inception v3 as torchvision counts it (core/tests/inception/reference.json).
    let inception = json(&["model", "inception-v3", "--image-size", "299", "--aux-head", "--json"]);
    assert_eq!(inception["trainable_parameters"], 27_161_264);
    assert_eq!(inception["aux_head"], true);
    let taps = inception["taps"].as_array().unwrap();
    assert_eq!(taps.len(), 12);
    assert_eq!(taps[0]["name"], "mixed_5b");
    assert_eq!(taps[10]["shape"], serde_json::json!([2048, 8, 8]));
    fails_with(
        &["model", "inception-v3", "--image-size", "64"],
        &["image_size", "at least 75"],
    );
    fails_with(&["model", "resnet50", "--aux-head"], &["aux_head", "inception-v3"]);

    fails_with(&["model", "resnet51"], &["resnet51", "resnet50"]);
    fails_with(&["model", "small", "--classes", "1"], &["classes", "at least 2"]);
    fails_with(&["model", "small", "--stem", "tiny"], &["tiny", "imagenet"]);
}
