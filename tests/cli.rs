//! End-to-end tests of `losslens analyze`: the JSON contract, and clear errors (never panics)
//! for bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

use losslens_core::features::{Array, ArrayData, FeatureFile, npy_bytes};
use serde_json::Value;

fn losslens(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_losslens"))
        .args(args)
        .output()
        .expect("runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(!stderr.contains("panicked"), "losslens panicked on {args:?}:\n{stderr}");
    (out.status.success(), stdout, stderr)
}

fn json(args: &[&str]) -> Value {
    let (ok, stdout, stderr) = losslens(args);
    assert!(ok, "losslens {args:?} failed:\n{stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}):\n{stdout}"))
}

fn json_with_env(args: &[&str], env: &[(&str, &str)]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_losslens"))
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "losslens {args:?} failed:\n{stderr}"
    );
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("one JSON object")
}

fn fails_with(args: &[&str], needles: &[&str]) {
    let (ok, _, stderr) = losslens(args);
    assert!(!ok, "losslens {args:?} should fail");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "error for {args:?} should mention `{needle}`:\n{stderr}"
        );
    }
}

/// `losslens study FILE --out OUT` on the CPU with one thread, so that float sums run in the same
/// order in every process (bit-identical resumes).
fn study_command(file: &Path, out: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_losslens"));
    command
        .env("RAYON_NUM_THREADS", "1")
        .args(["study", s(file), "--out", s(out), "--device", "cpu"]);
    command
}

/// Starts `command` with its output discarded, to be killed.
fn spawn_quiet(mut command: Command) -> std::process::Child {
    command
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Deterministic features: `n` examples of `p` features, 3 classes.
fn features(n: usize, p: usize, phase: f32) -> Vec<f32> {
    (0..n * p)
        .map(|i| ((i / p) % 3) as f32 + (phase + 0.37 * i as f32).sin())
        .collect()
}

fn write(dir: &Path, name: &str, arrays: Vec<(&str, Array)>) -> PathBuf {
    let path = dir.join(name);
    let arrays = arrays.into_iter().map(|(n, a)| (n.to_string(), a)).collect();
    FeatureFile::new(&path, arrays, None).save(&path).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

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

    fails_with(&["model", "resnet51"], &["resnet51", "resnet50"]);
    fails_with(&["model", "small", "--classes", "1"], &["classes", "at least 2"]);
    fails_with(&["model", "small", "--stem", "tiny"], &["tiny", "imagenet"]);
}

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

/// Every float array of a feature file, by name.
fn arrays(path: &Path) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let file = FeatureFile::open(path).unwrap();
    file.layer_names()
        .into_iter()
        .map(|name| {
            let a = file.array(&name).unwrap();
            let values = match &a.data {
                ArrayData::F32(v) => v.clone(),
                other => panic!("{name}: {}", other.dtype_name()),
            };
            (name, a.shape.clone(), values)
        })
        .collect()
}

#[test]
fn train_kill_resume_and_extract() {
    let dir = tempfile::tempdir().unwrap();
    let data = "procedural:classes=3,per-class=100,test-per-class=10,size=16,seed=3";
    let settings = [
        "--data",
        data,
        "--model",
        "small",
        "--epochs",
        "6",
        "--batch-size",
        "30",
        "--lr",
        "0.4",
        "--warmup-epochs",
        "0.5",
        "--holdout",
        "0.1",
        "--device",
        "cpu",
        "--objective",
        "dropout",
    ];
    let whole = dir.path().join("whole");
    let mut args = vec!["train", "--out", s(&whole), "--json"];
    args.extend(settings);
    let out = json_with_env(&args, &[("RAYON_NUM_THREADS", "1")]);
    assert_eq!(out["run"]["finished"], true);
    assert_eq!(out["history"].as_array().unwrap().len(), 6);
    assert_eq!(out["run"]["train_images"], 270);
    for file in [
        "config.toml",
        "run.json",
        "metrics.jsonl",
        "model.bpk",
        "checkpoint/latest.json",
    ] {
        assert!(whole.join(file).is_file(), "{file}");
    }

    // The same run, killed (SIGKILL) once its first checkpoint exists, then resumed.
    let parts = dir.path().join("parts");
    // One CPU thread for both runs, so their float sums are ordered alike (see the core test).
    let mut child = Command::new(env!("CARGO_BIN_EXE_losslens"))
        .env("RAYON_NUM_THREADS", "1")
        .args(["train", "--out", s(&parts)])
        .args(settings)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let latest = parts.join("checkpoint/latest.json");
    let started = std::time::Instant::now();
    while !latest.exists() && started.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The last complete checkpoint is what a resumed run starts from.
    let name: String = serde_json::from_str(&std::fs::read_to_string(&latest).unwrap()).unwrap();
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(parts.join("checkpoint").join(name).join("state.json")).unwrap())
            .unwrap();
    let done = state["epoch"].as_u64().unwrap();
    assert!((1..6).contains(&done), "the run finished before it could be killed");
    let resumed = Command::new(env!("CARGO_BIN_EXE_losslens"))
        .env("RAYON_NUM_THREADS", "1")
        .args(["train", "--resume", "--out", s(&parts), "--device", "cpu"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success() && !stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains(&format!("resuming after epoch {done}")), "{stderr}");
    let metrics = |run: &Path| std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let strip = |text: String| -> Vec<Value> {
        text.lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                let o = v.as_object_mut().unwrap();
                o.remove("seconds");
                o.remove("images_per_second");
                v
            })
            .collect()
    };
    assert_eq!(strip(metrics(&whole)), strip(metrics(&parts)));

    // Features of both runs on the test split: every block, the penultimate layer, labels.
    let fa = dir.path().join("whole.npz");
    let fb = dir.path().join("parts.safetensors");
    for (run, file) in [(&whole, &fa), (&parts, &fb)] {
        let (ok, _, stderr) = losslens(&[
            "extract",
            s(run),
            "--split",
            "test",
            "--out",
            s(file),
            "--device",
            "cpu",
        ]);
        assert!(ok, "{stderr}");
    }
    let (a, b) = (arrays(&fa), arrays(&fb));
    let names: Vec<&str> = a.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["block1.0", "block2.0", "block3.0", "penultimate"]);
    assert_eq!(a[0].1, [30, 32]);
    assert_eq!(a[3].1, [30, 128]);
    assert!(a == b, "the resumed run's features differ from the uninterrupted run's");
    let file = FeatureFile::open(&fa).unwrap();
    assert_eq!(file.labels().unwrap().len(), 30);
    let meta = file.metadata.clone().unwrap();
    assert_eq!(meta["split"], "test");
    assert!(meta["objective"].as_str().unwrap().starts_with("dropout"), "{meta}");
    // Whole maps on request, and the features feed the analyses.
    let full = dir.path().join("full.npz");
    let (ok, _, stderr) = losslens(&[
        "extract",
        s(&whole),
        "--layers",
        "block2.0",
        "--pool",
        "none",
        "--out",
        s(&full),
        "--device",
        "cpu",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(arrays(&full)[0].1, [30, 64, 8, 8]);
    let r2 = json(&[
        "analyze",
        "separation",
        s(&fa),
        "--layer",
        "penultimate",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(r2["r2"].as_f64().is_some(), "{r2}");

    // Bad input.
    fails_with(&args, &["already holds a run", "--resume"]);
    fails_with(
        &[
            "train",
            "--resume",
            "--out",
            s(&dir.path().join("none")),
            "--device",
            "cpu",
        ],
        &["nothing to resume"],
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "epochs = 2\nlearning_rat = 0.1\n").unwrap();
    fails_with(
        &["train", s(&bad), "--out", s(&dir.path().join("x"))],
        &["bad.toml", "learning_rat"],
    );
    fails_with(
        &[
            "train",
            "--data",
            s(&dir.path().join("missing")),
            "--out",
            s(&dir.path().join("y")),
            "--device",
            "cpu",
        ],
        &["missing", "no such folder"],
    );
    fails_with(
        &["train", "--data", data, "--lr=-1", "--out", s(&dir.path().join("z"))],
        &["learning_rate"],
    );
    fails_with(
        &[
            "train",
            "--data",
            data,
            "--gpus",
            "2",
            "--device",
            "cpu",
            "--out",
            s(&dir.path().join("g")),
        ],
        &["--gpus 2 needs GPUs"],
    );
    fails_with(&["extract", s(dir.path()), "--out", s(&fa)], &["not a run folder"]);
    fails_with(
        &[
            "extract",
            s(&whole),
            "--layers",
            "block9.9",
            "--out",
            s(&full),
            "--device",
            "cpu",
        ],
        &["block9.9"],
    );
    fails_with(
        &["extract", s(&whole), "--out", s(&dir.path().join("f.txt"))],
        &["f.txt"],
    );
}

#[test]
fn study_runs_from_a_file_and_ships_valid_study_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.toml");
    std::fs::write(
        &file,
        r#"
name = "tiny"
model = "small"
source = { format = "procedural", classes = 3, per_class = 30, size = 12, seed = 1, test_per_class = 6 }
objectives = [{ kind = "softmax" }, { kind = "logit-norm" }]

[[targets]]
name = "other"
data = { format = "procedural", classes = 3, per_class = 20, size = 12, seed = 2, test_per_class = 6 }

[train]
epochs = 1
batch_size = 15
warmup_epochs = 0.5

[analysis]
separation_images = 30
sparsity_images = 6
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let (ok, stdout, stderr) = losslens(&["study", s(&file), "--out", s(&out), "--device", "cpu"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("other linear") && stdout.contains("logit-norm"),
        "{stdout}"
    );
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["version"], 1);
    assert_eq!(results["runs"].as_array().unwrap().len(), 2);
    let (ok, _, stderr) = losslens(&["study", s(&file), "--out", s(&out), "--device", "cpu"]);
    assert!(ok && stderr.matches("reused").count() == 2, "{stderr}");

    std::fs::write(&file, "name = \"x\"\nmodel = \"small\"\nsource = { format = \"procedural\", classes = 3, per_class = 3, size = 8, seed = 0 }\nobjectives = []\n").unwrap();
    fails_with(&["study", s(&file), "--out", s(&out)], &["objectives"]);
    std::fs::write(&file, "name = \"x\"\nmodle = \"small\"\n").unwrap();
    fails_with(&["study", s(&file), "--out", s(&out)], &["modle"]);

    // The study files that ship with losslens parse and validate.
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/studies");
    for entry in std::fs::read_dir(&assets).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let study: losslens_core::study::StudyConfig =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        study.validate().unwrap();
    }
}

/// Compares two JSON documents, numbers to 1e-9 (serde_json may round the last digit of an f64).
fn assert_json_close(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-9 * x.abs().max(1.0), "{at}: {x} != {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}: lengths");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_json_close(x, y, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{at}: keys");
            for (k, v) in x {
                assert_json_close(v, &y[k], &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

#[test]
fn a_killed_study_finishes_the_rest_with_the_same_results_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("study.toml");
    std::fs::write(
        &file,
        r#"
name = "killed"
model = "small"
source = { format = "procedural", classes = 4, per_class = 40, size = 12, seed = 1, test_per_class = 6 }
objectives = [{ kind = "softmax" }, { kind = "logit-norm" }, { kind = "cosine-softmax" }]

[[targets]]
name = "other"
data = { format = "procedural", classes = 3, per_class = 20, size = 12, seed = 2, test_per_class = 6 }

[train]
epochs = 3
batch_size = 20
warmup_epochs = 0.5

[analysis]
separation_images = 40
sparsity_images = 8
feature_images = 24
"#,
    )
    .unwrap();
    let study = |out: &Path| -> (bool, String) {
        let o = study_command(&file, out).output().unwrap();
        (o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let whole = dir.path().join("whole");
    let (ok, stderr) = study(&whole);
    assert!(ok, "{stderr}");

    // Killed (SIGKILL) once the first run's results are saved, then started again.
    let parts = dir.path().join("parts");
    let mut child = spawn_quiet(study_command(&file, &parts));
    let first = parts.join("runs/softmax-s0/results.json");
    let started = std::time::Instant::now();
    while !first.exists() && started.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!parts.join("results.json").exists(), "killed before the end");
    let (ok, stderr) = study(&parts);
    assert!(ok, "{stderr}");
    let reused = stderr.matches("finished earlier, reused").count();
    assert!(
        (1..3).contains(&reused),
        "only finished runs are reused ({reused}):\n{stderr}"
    );
    assert!(stderr.contains("[2/3]") && stderr.contains("[3/3]"), "{stderr}");
    let read = |p: &Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(p.join("results.json")).unwrap()).unwrap()
    };
    let (a, b) = (read(&whole), read(&parts));
    assert_json_close(&a, &b, "results");
    // Fig. 2: a square, symmetric CKA matrix per layer, ones on the diagonal.
    let cka = a["cka"].as_array().unwrap();
    assert_eq!(cka.len(), a["runs"][0]["separation"].as_array().unwrap().len());
    for m in cka {
        let v = m["values"].as_array().unwrap();
        assert_eq!(v.len(), 3);
        for (i, row) in v.iter().enumerate() {
            assert!((row[i].as_f64().unwrap() - 1.0).abs() < 1e-5, "{m}");
            for (j, value) in row.as_array().unwrap().iter().enumerate() {
                assert_eq!(value, &v[j][i]);
            }
        }
    }
    assert!(a["runs"][0]["collapse"]["nc1"].as_f64().unwrap() >= 0.0);

    // The report: a static site with the explorer (a stand-in build here), tables, figures,
    // features, and results.json pointing at the copied features.
    let web = dir.path().join("web");
    std::fs::create_dir_all(web.join("pkg")).unwrap();
    std::fs::write(
        web.join("pkg/losslens_web.js"),
        "export default async function init() {}",
    )
    .unwrap();
    std::fs::write(web.join("pkg/losslens_web_bg.wasm"), b"\0asm").unwrap();
    let site = dir.path().join("site");
    let (ok, stdout, stderr) = losslens(&["report", s(&parts), "--out", s(&site), "--web", s(&web)]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("index.html"), "{stdout}");
    let index = std::fs::read_to_string(site.join("index.html")).unwrap();
    assert!(index.contains("name=\"losslens-results\"") && index.contains("summary-static") && index.contains("<svg"));
    assert!(index.contains("pkg/losslens_web.js"));
    for f in [
        "results.json",
        "style.css",
        "table1.md",
        "table1.csv",
        "pkg/losslens_web_bg.wasm",
        "figures/r2-by-layer.svg",
        "figures/cka-penultimate.svg",
        "figures/transfer-vs-r2.svg",
    ] {
        assert!(site.join(f).is_file(), "{f}");
    }
    let report = read(&site);
    for run in report["runs"].as_array().unwrap() {
        let features = run["features"].as_str().unwrap();
        assert!(
            features.starts_with("features/") && site.join(features).is_file(),
            "{features}"
        );
        let shapes = json(&[
            "analyze",
            "sparsity",
            s(&site.join(features)),
            "--device",
            "cpu",
            "--json",
        ]);
        assert!(shapes["layers"].as_object().unwrap().contains_key("penultimate"));
    }

    // Without an explorer the page is static; bad input is a clear error.
    let plain = dir.path().join("plain");
    let (ok, stdout, stderr) = losslens(&["report", s(&parts), "--out", s(&plain), "--static-only"]);
    assert!(ok && stdout.contains("not included"), "{stderr}");
    let index = std::fs::read_to_string(plain.join("index.html")).unwrap();
    assert!(!index.contains("<script") && !plain.join("pkg").exists() && index.contains("summary-static"));
    fails_with(
        &[
            "report",
            s(&parts),
            "--out",
            s(&plain),
            "--web",
            s(&dir.path().join("nowhere")),
        ],
        &["not a built explorer"],
    );
    fails_with(
        &["report", s(&dir.path().join("nothing")), "--out", s(&site)],
        &["results.json", "losslens study"],
    );
    std::fs::write(dir.path().join("results.json"), r#"{"version": 7}"#).unwrap();
    fails_with(&["report", s(dir.path()), "--out", s(&site)], &["version"]);
}

#[test]
fn a_killed_fine_tuning_resumes_from_its_checkpoint_with_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("study.toml");
    std::fs::write(
        &file,
        r#"
name = "tuned"
model = "small"
source = { format = "procedural", classes = 4, per_class = 30, size = 12, seed = 1, test_per_class = 6 }
objectives = [{ kind = "softmax" }]

[[targets]]
name = "other"
data = { format = "procedural", classes = 3, per_class = 40, size = 12, seed = 2, test_per_class = 10 }

[train]
epochs = 2
batch_size = 20
warmup_epochs = 0.5

[analysis]
separation_images = 40
sparsity_images = 8
feature_images = 0

[finetune]
steps = 60
batch_size = 10
learning_rates = [0.01, 0.1]
weight_decays = [0.0]
validation_fraction = 0.25
checkpoints = 3
"#,
    )
    .unwrap();
    let study = |out: &Path| -> (bool, String, String) {
        let o = study_command(&file, out).output().unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let whole = dir.path().join("whole");
    let (ok, stdout, stderr) = study(&whole);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("Table 2") && stdout.contains("other fine-tuned"),
        "{stdout}"
    );
    assert!(stderr.contains("fine-tuning on other"), "{stderr}");

    // Killed (SIGKILL) in the middle of the first fine-tuning run, once it has a checkpoint and
    // has logged its epoch.
    let parts = dir.path().join("parts");
    let mut child = spawn_quiet(study_command(&file, &parts));
    let job = parts.join("runs/softmax-s0/finetune/other/lr-1.000e-2-wd-0.000e0");
    let started = std::time::Instant::now();
    let done = || std::fs::read_to_string(job.join("job.json")).is_ok_and(|t| t.contains("\"done\": true"));
    // The epoch log is written after the checkpoint: once it has a line, so has the checkpoint.
    let logged = || std::fs::read_to_string(job.join("metrics.jsonl")).is_ok_and(|t| !t.is_empty());
    while !logged() && !done() && started.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let record = std::fs::read_to_string(job.join("job.json")).unwrap();
    assert!(
        record.contains("\"done\": false"),
        "killed before the job ended: {record}"
    );
    let before = std::fs::read_to_string(job.join("metrics.jsonl")).unwrap_or_default();
    let (ok, _, stderr) = study(&parts);
    assert!(ok, "{stderr}");
    let read = |p: &Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(p.join("results.json")).unwrap()).unwrap()
    };
    let (a, b) = (read(&whole), read(&parts));
    assert_json_close(&a, &b, "results");
    for run in a["runs"].as_array().unwrap() {
        let tuned = &run["finetune"][0];
        assert_eq!(tuned["target"], "other");
        assert_eq!(tuned["grid"].as_array().unwrap().len(), 2);
        let accuracy = tuned["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&accuracy), "{tuned}");
    }
    // The resumed job went on from its checkpoint: the epochs logged before the kill are kept as
    // they were (with their timings), and every checkpoint is logged once.
    let metrics = std::fs::read_to_string(job.join("metrics.jsonl")).unwrap();
    assert!(!before.is_empty());
    for (i, (a, b)) in before.lines().zip(metrics.lines()).enumerate() {
        let (a, b): (Value, Value) = (serde_json::from_str(a).unwrap(), serde_json::from_str(b).unwrap());
        assert_json_close(&a, &b, &format!("metrics line {i}"));
    }
    let whole_metrics =
        std::fs::read_to_string(whole.join("runs/softmax-s0/finetune/other/lr-1.000e-2-wd-0.000e0/metrics.jsonl"))
            .unwrap();
    assert_eq!(metrics.lines().count(), whole_metrics.lines().count());
    assert!(whole.join("table2.md").is_file() && whole.join("table2.csv").is_file());

    // `losslens train --pretrained` fine-tunes a finished run by hand: the network follows the
    // run, the classifier is new.
    let by_hand = dir.path().join("by-hand");
    let (ok, _, stderr) = losslens(&[
        "train",
        "--pretrained",
        s(&parts.join("runs/softmax-s0")),
        "--data",
        "procedural:classes=5,per-class=8,size=12,seed=9",
        "--steps",
        "3",
        "--batch-size",
        "10",
        "--warmup-epochs",
        "0",
        "--ema-decay",
        "0",
        "--no-nesterov",
        "--device",
        "cpu",
        "--out",
        s(&by_hand),
    ]);
    assert!(ok, "{stderr}");
    let info: Value = serde_json::from_str(&std::fs::read_to_string(by_hand.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["model"]["architecture"], "small");
    assert_eq!(info["classes"].as_array().unwrap().len(), 5);
    fails_with(
        &[
            "train",
            "--pretrained",
            s(&dir.path().join("nothing")),
            "--out",
            s(&dir.path().join("y")),
        ],
        &["--pretrained", "not a run folder"],
    );

    // A [finetune] section without targets is refused before any work.
    let lonely = dir.path().join("lonely.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let cut = text.find("[[targets]]").unwrap();
    let end = text.find("[train]").unwrap();
    std::fs::write(&lonely, format!("{}{}", &text[..cut], &text[end..])).unwrap();
    fails_with(
        &["study", s(&lonely), "--out", s(&dir.path().join("x"))],
        &["finetune", "targets"],
    );
}
