//! `losslens train` killed with SIGKILL and resumed to the same metrics and features as an
//! uninterrupted run, and `losslens extract` into both file formats.

use std::path::Path;
use std::process::Command;

use losslens_core::features::{ArrayData, FeatureFile};
use serde_json::Value;

use crate::common::*;

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
        // A combined objective, AutoAugment and Mixup: all draw per-step random numbers that a
        // resumed run must draw again exactly.
        "--objective",
        "cosine-softmax+dropout",
        "--augment",
        "autoaugment+mixup:alpha=0.3",
        // Weights kept for the training dynamics, the interrupted run's too.
        "--keep-every",
        "2",
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
    let config = std::fs::read_to_string(whole.join("config.toml")).unwrap();
    assert!(
        config.contains("kind = \"cosine-softmax+dropout\"")
            && config.contains("alpha = 0.3")
            && config.contains("autoaugment = \"imagenet\""),
        "{config}"
    );

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
                // Times differ between processes.
                o.remove("seconds");
                o.remove("images_per_second");
                o.remove("first_step_seconds");
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
    assert!(
        meta["objective"]
            .as_str()
            .unwrap()
            .starts_with("cosine-softmax+dropout"),
        "{meta}"
    );
    // Whole maps on request, and the features feed the analyses.
    let full = dir.path().join("full.npz");
    let (ok, _, stderr) = losslens(&[
        "extract",
        s(&whole),
        "--layers",
        "block2.0",
        "--pool",
        "none",
        "--logits",
        "--out",
        s(&full),
        "--device",
        "cpu",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(arrays(&full)[0].1, [30, 64, 8, 8]);
    // `--logits`: the cosine classifier's outputs, cos/τ + b for τ = 0.05.
    let logits = FeatureFile::open(&full).unwrap().array("logits").unwrap().clone();
    assert_eq!(logits.shape, [30, 3]);
    let ArrayData::F32(values) = &logits.data else {
        panic!("f32 logits")
    };
    assert!(values.iter().all(|v| v.is_finite() && v.abs() < 40.0), "{values:?}");
    assert!(
        FeatureFile::open(&fa).unwrap().array("logits").is_none(),
        "only on request"
    );
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
    // The classifier rides along: neural collapse and spectra take it from the file.
    assert_eq!(file.array("weights").unwrap().shape, [3, 128]);
    let collapse = json(&[
        "analyze",
        "collapse",
        s(&fa),
        "--layer",
        "penultimate",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(collapse["equinorm_weights"].as_f64().is_some(), "{collapse}");
    assert!(collapse["self_duality"].as_f64().is_some(), "{collapse}");
    // The kept weights of an earlier epoch, from both runs alike.
    for run in [&whole, &parts] {
        let kept: Vec<bool> = (1..=6)
            .map(|e| run.join(format!("kept/epoch-{e:04}.bpk")).is_file())
            .collect();
        assert_eq!(kept, [false, true, false, true, false, true]);
    }
    let early = dir.path().join("early.npz");
    let (ok, _, stderr) = losslens(&[
        "extract",
        s(&whole),
        "--epoch",
        "2",
        "--out",
        s(&early),
        "--device",
        "cpu",
    ]);
    assert!(ok, "{stderr}");
    let early = FeatureFile::open(&early).unwrap();
    assert_eq!(early.metadata.clone().unwrap()["epoch"], 2);
    fails_with(
        &[
            "extract",
            s(&whole),
            "--epoch",
            "3",
            "--out",
            s(&dir.path().join("never.npz")),
            "--device",
            "cpu",
        ],
        &["epoch", "2, 4, 6"],
    );

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
fn inception_v3_trains_with_its_auxiliary_classifier_and_extracts_at_299_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("inception");
    let data = "procedural:classes=3,per-class=4,test-per-class=2,size=32,seed=5";
    let mut args = vec!["train", "--out", s(&run), "--json", "--data", data];
    let settings = [
        "--model",
        "inception-v3",
        "--aux-head",
        "--steps",
        "1",
        "--batch-size",
        "12",
        "--holdout",
        "0",
        "--device",
        "cpu",
    ];
    // The auxiliary classifier needs the 17×17 grid of 299 px inputs: refused below, clearly.
    let small = dir.path().join("small");
    let (ok, _, stderr) = losslens(
        &[
            &["train", "--out", s(&small), "--data", data, "--image-size", "224"],
            &settings[..],
        ]
        .concat(),
    );
    assert!(!ok && !stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("at least 299"), "{stderr}");
    assert!(!small.join("model.bpk").exists());
    args.extend(["--image-size", "299"]);
    args.extend(settings);
    let out = json(&args);
    assert_eq!(out["run"]["finished"], true);
    let loss = out["history"][0]["train_loss"].as_f64().unwrap();
    // Softmax loss of 3 classes near ln 3 plus 0.4 times the auxiliary classifier's.
    assert!(loss.is_finite() && loss > 1.2 * 3f64.ln(), "{loss}");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        config.contains("aux_head = true") && config.contains("model = \"inception-v3\""),
        "{config}"
    );

    // Features at 299 px: two Inception blocks and the penultimate layer.
    let features = dir.path().join("inception.npz");
    let (ok, _, stderr) = losslens(&[
        "extract",
        s(&run),
        "--split",
        "test",
        "--layers",
        "mixed_5b,mixed_7c,penultimate",
        "--out",
        s(&features),
        "--device",
        "cpu",
    ]);
    assert!(ok, "{stderr}");
    let layers = arrays(&features);
    let shapes: Vec<(&str, &[usize])> = layers.iter().map(|(n, shape, _)| (n.as_str(), &shape[..])).collect();
    assert_eq!(
        shapes,
        [
            ("mixed_5b", &[6, 256][..]),
            ("mixed_7c", &[6, 2048]),
            ("penultimate", &[6, 2048])
        ]
    );
    assert!(layers.iter().all(|(_, _, v)| v.iter().all(|x| x.is_finite())));
    // A block name of the other architecture is refused with the names to use.
    let (ok, _, stderr) = losslens(&[
        "extract",
        s(&run),
        "--layers",
        "block1.0",
        "--out",
        s(&dir.path().join("wrong.npz")),
        "--device",
        "cpu",
    ]);
    assert!(
        !ok && !stderr.contains("panicked") && stderr.contains("mixed_5b"),
        "{stderr}"
    );
}
