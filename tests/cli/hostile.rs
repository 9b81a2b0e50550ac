//! Hostile input: files and settings made to break losslens, each of which must end in a clear
//! refusal (or a finite result), with nothing written outside the output folder and nothing
//! already written lost.

use std::path::Path;

use losslens_core::features::{Array, ArrayData, FeatureFile, npy_bytes};
use losslens_core::study::StudyResults;
use losslens_core::study::results::{LayerValue, Measure, RunResult, SourceEval, TargetInfo, Transfer};

use crate::common::*;

/// A results file of one run, as `losslens study` writes it.
fn results(objective: &str, features: Option<&str>) -> StudyResults {
    StudyResults {
        version: losslens_core::study::RESULTS_VERSION,
        name: "hostile".into(),
        source: "s".into(),
        model: "small".into(),
        targets: vec![TargetInfo {
            name: "t".into(),
            data: "d".into(),
            measure: Measure::Top1,
            multilabel: false,
        }],
        runs: vec![RunResult {
            objective: objective.into(),
            kind: "softmax".into(),
            seed: 0,
            best_epoch: Some(1),
            source: SourceEval {
                top1: 0.5,
                top5: 1.0,
                nll: 1.0,
                ece: 0.1,
                probability: Default::default(),
                temperature: None,
                nll_calibrated: None,
                ece_calibrated: None,
                temperature_images: None,
                relearned_head: None,
                hardness: None,
                train: None,
                robustness: None,
            },
            transfer: vec![Transfer {
                target: "t".into(),
                linear: 0.5,
                lambda: 1.0,
                knn: 0.4,
                k: 3,
                assignment: None,
                classes: Vec::new(),
            }],
            separation: vec![LayerValue {
                layer: "../../penultimate".into(),
                value: 0.3,
            }],
            separation_distances: Vec::new(),
            sparsity: Vec::new(),
            collapse: None,
            spectra: None,
            distances: None,
            predictions: Vec::new(),
            features: features.map(str::to_string),
            finetune: Vec::new(),
            dynamics: Vec::new(),
        }],
        cka: Vec::new(),
        cka_blocks: Vec::new(),
        sweeps: Vec::new(),
        protocol: None,
        tuning: Vec::new(),
        summary: None,
        agreement: None,
    }
}

/// Every file under `dir` with its bytes, sorted.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_results_file_cannot_make_report_write_or_copy_outside_the_site() {
    let root = tempfile::tempdir().unwrap();
    let study = root.path().join("study");
    std::fs::create_dir_all(&study).unwrap();
    let secret = root.path().join("secret.npz");
    let arrays = vec![("a".to_string(), Array::from_f32(2, 2, vec![1.0, 2.0, 3.0, 4.0]))];
    FeatureFile::new(&secret, arrays.clone(), None).save(&secret).unwrap();
    FeatureFile::new(study.join("f.npz"), arrays, None)
        .save(study.join("f.npz"))
        .unwrap();
    let site = root.path().join("site");
    let write_results = |r: &StudyResults| {
        std::fs::write(study.join("results.json"), serde_json::to_string(r).unwrap()).unwrap();
    };
    let before = snapshot(root.path());

    // Paths that lead out of the study folder are refused by name.
    for bad in ["../secret.npz", secret.to_str().unwrap(), "runs/../../secret.npz"] {
        write_results(&results("softmax", Some(bad)));
        fails_with(
            &["report", s(&study), "--out", s(&site), "--static-only"],
            &["results.json", "features", bad],
        );
    }
    // A link inside the study folder that points outside is refused too.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&secret, study.join("link.npz")).unwrap();
        write_results(&results("softmax", Some("link.npz")));
        fails_with(
            &["report", s(&study), "--out", s(&site), "--static-only"],
            &["link.npz", "outside the study folder"],
        );
        std::fs::remove_file(study.join("link.npz")).unwrap();
    }

    // Names from the results file become safe file names inside the site.
    write_results(&results("../../../escaped/x", Some("f.npz")));
    let (ok, _, stderr) = losslens(&["report", s(&study), "--out", s(&site), "--static-only"]);
    assert!(ok, "{stderr}");
    let copied: Vec<String> = std::fs::read_dir(site.join("features"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(copied, ["..-..-..-escaped-x-s0.npz"]);
    let site_results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(site.join("results.json")).unwrap()).unwrap();
    assert_eq!(
        site_results["runs"][0]["features"],
        "features/..-..-..-escaped-x-s0.npz"
    );

    // Nothing outside the site changed: the study folder and the secret are as they were.
    let after: Vec<(String, Vec<u8>)> = snapshot(root.path())
        .into_iter()
        .filter(|(p, _)| !p.starts_with("site") && p != "study/results.json")
        .collect();
    let before: Vec<(String, Vec<u8>)> = before.into_iter().filter(|(p, _)| p != "study/results.json").collect();
    assert_eq!(after, before);
    assert!(!root.path().join("escaped").exists());
}

/// Runs losslens on `args` in `cwd` under a 2 GiB address-space limit: `(ok, stdout, stderr)`,
/// failing the test if it panicked, aborted or took 30 s or more.
fn limited(cwd: &Path, args: &[&str]) -> (bool, String, String) {
    let started = std::time::Instant::now();
    let out = std::process::Command::new("sh")
        .current_dir(cwd)
        .arg("-c")
        .arg(r#"ulimit -v 2097152 && exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_losslens"))
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .expect("runs");
    let seconds = started.elapsed().as_secs_f64();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        !stderr.contains("panicked") && out.status.code().is_some(),
        "losslens {args:?} panicked or was killed ({:?}):\n{stderr}",
        out.status
    );
    assert!(seconds < 30.0, "losslens {args:?} took {seconds:.1} s");
    (out.status.success(), stdout, stderr)
}

/// `limited`, expecting a refusal whose message holds every needle.
fn refused(cwd: &Path, args: &[&str], needles: &[&str]) {
    let (ok, stdout, stderr) = limited(cwd, args);
    assert!(!ok, "losslens {args:?} should refuse, printed:\n{stdout}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "the refusal of {args:?} should mention `{needle}`:\n{stderr}"
        );
    }
}

/// `limited`, expecting success and only finite numbers in its one JSON object: no value is
/// `null` (how JSON writes NaN) but the fields in `absent`, which hold nothing by design.
fn finite(cwd: &Path, args: &[&str], absent: &[&str]) -> serde_json::Value {
    let (ok, stdout, stderr) = limited(cwd, args);
    assert!(ok, "losslens {args:?} failed:\n{stderr}");
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    for (key, v) in value.as_object().unwrap() {
        assert!(
            !v.is_null() || absent.contains(&key.as_str()),
            "`{key}` is null in {args:?}: {stdout}"
        );
    }
    value
}

/// An `.npz` with one `.npy` member `name` of `header_shape` f32 values, followed inside the
/// member by `trailing` zero bytes: a decompression bomb when large (it deflates to almost
/// nothing).
fn npz_with_trailing(path: &Path, name: &str, data: &Array, trailing: u64) {
    use std::io::Write;
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    zip.start_file(format!("{name}.npy"), options).unwrap();
    zip.write_all(&npy_bytes(data)).unwrap();
    let zeros = vec![0u8; 1 << 20];
    let mut left = trailing;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        zip.write_all(&zeros[..n]).unwrap();
        left -= n as u64;
    }
    zip.finish().unwrap();
}

#[test]
fn hostile_feature_files_are_refused_in_bounded_memory_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = write(
        d,
        "good.npz",
        vec![
            ("f", Array::from_f32(6, 2, features(6, 2, 0.3))),
            ("labels", Array::from_labels(&[0, 1, 2, 0, 1, 2])),
        ],
    );

    // A member that inflates to 3 GiB behind a header that declares 16 bytes.
    let bomb = d.join("bomb.npz");
    npz_with_trailing(&bomb, "f", &Array::from_f32(2, 2, vec![1.0, 2.0, 3.0, 4.0]), 3 << 30);
    assert!(std::fs::metadata(&bomb).unwrap().len() < 16 << 20);
    refused(
        d,
        &["analyze", "sparsity", s(&bomb), "--device", "cpu"],
        &["bomb.npz", "more data than its header declares"],
    );

    // A small archive whose directory declares a 4 GiB member.
    let declared = d.join("declared.npz");
    let mut bytes = std::fs::read(&good).unwrap();
    let central = bytes.windows(4).rposition(|w| w == [0x50, 0x4b, 0x01, 0x02]).unwrap();
    bytes[central + 24..central + 28].copy_from_slice(&0xffff_0000u32.to_le_bytes());
    std::fs::write(&declared, &bytes).unwrap();
    let (ok, _, stderr) = limited(
        d,
        &["analyze", "sparsity", s(&declared), "--layer", "f", "--device", "cpu"],
    );
    assert!(ok || stderr.contains("declared.npz"), "{stderr}");

    // A feature file that is a link to an endless device.
    #[cfg(unix)]
    {
        let zero = d.join("zero.npy");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        refused(
            d,
            &["analyze", "sparsity", s(&zero), "--device", "cpu"],
            &["zero.npy", "not a regular file"],
        );
    }

    // A 1-D array is not a feature array.
    let flat = d.join("flat.npy");
    std::fs::write(&flat, npy_bytes(&Array::new(vec![5], ArrayData::F32(vec![1.0; 5])))).unwrap();
    refused(
        d,
        &["analyze", "sparsity", s(&flat), "--device", "cpu"],
        &["flat.npy", "2-D or larger"],
    );

    // Labels near 2⁶³ and 2⁶⁴, and absurd class counts.
    for (name, label) in [("big.npz", i64::MAX), ("huge.npz", i64::MAX - 1)] {
        let path = write(
            d,
            name,
            vec![
                ("f", Array::from_f32(3, 2, features(3, 2, 0.1))),
                ("labels", Array::new(vec![3], ArrayData::I64(vec![0, 1, label]))),
            ],
        );
        refused(
            d,
            &["analyze", "separation", s(&path), "--device", "cpu"],
            &[name, "class"],
        );
    }
    for classes in ["18446744073709551615", "100000000000"] {
        refused(
            d,
            &[
                "analyze",
                "separation",
                s(&good),
                "--num-classes",
                classes,
                "--device",
                "cpu",
            ],
            &["good.npz", "class"],
        );
    }
    refused(
        d,
        &[
            "probe",
            "linear",
            "--train",
            s(&good),
            "--test",
            s(&good),
            "--lambdas",
            "1000000000000",
            "--device",
            "cpu",
        ],
        &["lambda count"],
    );

    // 50,000 tensors and their order list parse in linear time.
    let many = d.join("many.safetensors");
    let arrays: Vec<(String, Array)> = (0..50_000)
        .map(|i| (format!("t{i}"), Array::from_f32(2, 1, vec![i as f32, 1.0])))
        .collect();
    FeatureFile::new(&many, arrays, None).save(&many).unwrap();
    let (ok, _, stderr) = limited(
        d,
        &[
            "analyze",
            "cka",
            s(&many),
            s(&many),
            "--layer",
            "t49999",
            "--device",
            "cpu",
        ],
    );
    assert!(ok, "{stderr}");

    // Numbers at the edges of f32 give finite results or a refusal, never `null`.
    let same = write(
        d,
        "same.npz",
        vec![("f", Array::from_f32(60, 3, [0.3f32, -2.0, 5.0].repeat(60)))],
    );
    let varied = write(
        d,
        "varied.npz",
        vec![("f", Array::from_f32(60, 3, features(60, 3, 0.9)))],
    );
    refused(
        d,
        &["analyze", "cka", s(&same), s(&varied), "--device", "cpu"],
        &["same.npz", "zero variance"],
    );
    let zeros = write(
        d,
        "zeros.npz",
        vec![
            ("f", Array::from_f32(6, 2, vec![0.0; 12])),
            ("labels", Array::from_labels(&[0, 1, 2, 0, 1, 2])),
        ],
    );
    refused(
        d,
        &[
            "probe",
            "knn",
            "--train",
            s(&zeros),
            "--test",
            s(&zeros),
            "--device",
            "cpu",
        ],
        &["zeros.npz", "zero"],
    );
    let mixed: Vec<f32> = (0..40)
        .map(|i| {
            if i % 2 == 0 {
                1e37 * (1.0 + (i as f32).sin())
            } else {
                1e-37 * (i as f32)
            }
        })
        .collect();
    let mixed = write(d, "mixed.npz", vec![("f", Array::from_f32(20, 2, mixed))]);
    let cka = finite(
        d,
        &["analyze", "cka", s(&mixed), s(&mixed), "--device", "cpu", "--json"],
        &[],
    );
    assert!((cka["cka"].as_f64().unwrap() - 1.0).abs() < 1e-4, "{cka}");
    let huge: Vec<f32> = features(30, 4, 0.7).iter().map(|v| v * 1e37).collect();
    let labels: Vec<usize> = (0..30).map(|i| i % 3).collect();
    let huge = write(
        d,
        "huge.npz",
        vec![
            ("f", Array::from_f32(30, 4, huge)),
            ("labels", Array::from_labels(&labels)),
        ],
    );
    let weights = [
        "equinorm_weights",
        "equiangular_weights",
        "max_angle_weights",
        "self_duality",
    ];
    let collapse = finite(
        d,
        &["analyze", "collapse", s(&huge), "--device", "cpu", "--json"],
        &weights,
    );
    assert!(collapse["nc1"].as_f64().unwrap().is_finite());
}

#[test]
fn absurd_sizes_are_refused_before_anything_is_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("run");
    for (data, needle) in [
        ("procedural:classes=100000,per-class=100000", "procedural dataset"),
        ("procedural:size=100000", "procedural dataset"),
    ] {
        refused(
            d,
            &[
                "train",
                "--data",
                data,
                "--model",
                "small",
                "--out",
                s(&out),
                "--device",
                "cpu",
            ],
            &[needle],
        );
    }
    refused(
        d,
        &[
            "train",
            "--model",
            "small",
            "--image-size",
            "100000",
            "--out",
            s(&out),
            "--device",
            "cpu",
        ],
        &["image_size", "100000"],
    );
    assert!(!out.exists(), "a refused run left a folder");

    // An IDX file that inflates far beyond what its header declares.
    let idx = d.join("idx");
    std::fs::create_dir_all(&idx).unwrap();
    let gz = |name: &str, header: &[u8], body: &[u8], trailing: u64| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(idx.join(name)).unwrap(),
            flate2::Compression::fast(),
        );
        e.write_all(header).unwrap();
        e.write_all(body).unwrap();
        let zeros = vec![0u8; 1 << 20];
        let mut left = trailing;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            e.write_all(&zeros[..n]).unwrap();
            left -= n as u64;
        }
        e.finish().unwrap();
    };
    gz(
        "train-images-idx3-ubyte.gz",
        &[0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 8, 0, 0, 0, 8],
        &[7; 128],
        3 << 30,
    );
    gz("train-labels-idx1-ubyte.gz", &[0, 0, 8, 1, 0, 0, 0, 2], &[0, 1], 0);
    refused(
        d,
        &[
            "train",
            "--data",
            &format!("idx:{}", idx.display()),
            "--model",
            "small",
            "--out",
            s(&out),
            "--device",
            "cpu",
        ],
        &["train-images-idx3-ubyte.gz", "more data than its header declares"],
    );
}
