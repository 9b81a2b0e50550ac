//! `losslens study` from a file (and the shipped study files parse), a study killed with SIGKILL
//! and started again (only the remaining work is done; the same `results.json` as an
//! uninterrupted study), fine-tuning killed and resumed, and `losslens report` with and without
//! the explorer.

use std::path::Path;

use serde_json::Value;

use crate::common::*;

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
objectives = [{ kind = "softmax" }, { kind = "logit-norm" }, { kind = "sigmoid+dropout", keep_prob = 0.8 }]

[[targets]]
name = "other"
data = { format = "procedural", classes = 3, per_class = 20, size = 12, seed = 2, test_per_class = 6 }

[train]
epochs = 1
batch_size = 15
warmup_epochs = 0.5

[analysis]
separation_per_class = 10
sparsity_images = 6
angles = true
train_accuracy = true
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
    assert_eq!(results["version"], 2);
    assert_eq!(results["runs"].as_array().unwrap().len(), 3);
    assert_eq!(results["runs"][2]["objective"], "sigmoid+dropout:keep-prob=0.8");
    // Fig. E.2's spectra of every run: features (30 images × 128), 3 class centroids, 3 classifier
    // rows; min(rows, columns) values each.
    for run in results["runs"].as_array().unwrap() {
        let values = |which: &str| -> Vec<f64> {
            let list = run["spectra"][which]["singular_values"].as_array();
            list.unwrap_or_else(|| panic!("{which}: {run}"))
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        for (which, count) in [("features", 30), ("class_means", 3), ("weights", 3)] {
            let s = values(which);
            assert_eq!(s.len(), count, "{which}");
            assert!(s.windows(2).all(|w| w[0] >= w[1]) && s[0] > 0.0, "{which}: {s:?}");
        }
    }
    // Figs. E.1 and E.3: hardness of the 18 test images, distances between the 30 separation
    // images: 3 classes of 10, so 3 · 45 pairs within and 300 between.
    for run in results["runs"].as_array().unwrap() {
        assert_eq!(run["source"]["hardness"]["count"], 18, "{run}");
        let distances = &run["distances"];
        assert_eq!(distances["images"], 30);
        assert_eq!(distances["within"]["count"], 135);
        assert_eq!(distances["between"]["count"], 300);
    }
    // Figs. C.4–C.7: the three networks' agreement, from predictions each run keeps in its own
    // record (results.json leaves them out).
    let agreement = &results["agreement"];
    assert_eq!(agreement["runs"].as_array().unwrap().len(), 3, "{agreement}");
    assert_eq!(agreement["linkage"].as_array().unwrap().len(), 2);
    assert_eq!(agreement["mixed_accuracy"].as_array().unwrap().len(), 3);
    let same = &agreement["pairwise"]["same_prediction"];
    assert_eq!(same[1][1], 1.0);
    assert_eq!(same[0][2], same[2][0]);
    assert!(
        results["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.get("predictions").is_none())
    );
    let record = std::fs::read_to_string(out.join("runs/softmax-s0/results.json")).unwrap();
    assert!(
        record.contains("\"predictions\""),
        "the run's record keeps its predictions"
    );
    // Table C.1: the 87 images each network trained on (30 per class less a 4 % holdout).
    for run in results["runs"].as_array().unwrap() {
        let train = &run["source"]["train"];
        assert_eq!(train["images"], 87, "{run}");
        assert!((0.0..=1.0).contains(&train["top1"].as_f64().unwrap()));
    }
    assert!(out.join("tableC1.md").is_file());
    // A combination puts the Table C.4 grid beside the other tables.
    let c4 = std::fs::read_to_string(out.join("tableC4.md")).unwrap();
    assert!(
        c4.contains("| normalisation and regularisers | top-1 softmax | top-1 sigmoid |")
            && c4.contains("| dropout:keep-prob=0.8 | — |")
            && c4.contains("| logit-norm:temperature=0.04 |"),
        "{c4}"
    );
    let (ok, _, stderr) = losslens(&["study", s(&file), "--out", s(&out), "--device", "cpu"]);
    assert!(ok && stderr.matches("reused").count() == 3, "{stderr}");

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
separation_per_class = 12
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
    // Pre-compressed copies for static hosts: the same bytes after gunzip.
    for f in [
        "index.html",
        "results.json",
        "pkg/losslens_web_bg.wasm",
        "pkg/losslens_web.js",
    ] {
        let packed = std::fs::read(site.join(format!("{f}.gz"))).unwrap_or_else(|e| panic!("{f}.gz: {e}"));
        let mut unpacked = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&packed[..]), &mut unpacked).unwrap();
        assert_eq!(unpacked, std::fs::read(site.join(f)).unwrap(), "{f}.gz");
    }
    assert!(
        !std::fs::read_dir(site.join("features")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".gz"))
    );
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
separation_per_class = 12
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
