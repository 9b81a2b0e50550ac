//! Unit tests of the explorer's WebAssembly-facing code, run by `wasm-bindgen-test` (under Node):
//! decoding uploads, refusing bad files, the URL state, cancellation, and the analyses on the
//! CPU backend inside WebAssembly.

#![cfg(target_arch = "wasm32")]

use losslens_core::device::DeviceChoice;
use losslens_core::features::{Array, FeatureFile, Format};
use losslens_core::probe::KnnConfig;
use losslens_web::browser::check_size;
use losslens_web::jobs::{self, Engine, Failure, Job};
use losslens_web::loaded::Loaded;
use losslens_web::url_state::{UrlState, View};
use losslens_web::views::study::parse_results;
use wasm_bindgen_test::wasm_bindgen_test;

/// `n` examples of `classes` classes in `p` dimensions with class structure (deterministic).
fn clustered(n: usize, classes: usize, p: usize) -> (Vec<f32>, Vec<usize>) {
    let labels: Vec<usize> = (0..n).map(|i| i % classes).collect();
    let x = (0..n * p)
        .map(|k| {
            let (i, j) = (k / p, k % p);
            let centre = ((labels[i] * 7 + j * 3) % 5) as f32;
            centre + 0.3 * ((k as f32 * 12.9898).sin() * 43758.547).fract()
        })
        .collect();
    (x, labels)
}

fn npz(arrays: Vec<(&str, Array)>) -> Vec<u8> {
    let arrays = arrays.into_iter().map(|(n, a)| (n.to_string(), a)).collect();
    FeatureFile::new("x.npz", arrays, None).to_bytes(Format::Npz).unwrap()
}

#[wasm_bindgen_test]
fn uploads_decode_into_layers_and_labels() {
    let (x, labels) = clustered(40, 4, 6);
    let bytes = npz(vec![
        ("block1", Array::from_f32(40, 6, x.clone())),
        ("penultimate", Array::from_f32(40, 6, x)),
        ("labels", Array::from_labels(&labels)),
    ]);
    let loaded = Loaded::decode("feats.npz", &bytes).unwrap();
    assert_eq!(loaded.layers.len(), 2);
    assert_eq!(loaded.labels().unwrap(), labels.as_slice());
    assert_eq!(loaded.layer(Some("penultimate")).name, "penultimate");
    assert_eq!(loaded.summary(), "feats.npz: 2 layers, 40 examples, labels (4 classes)");
}

#[wasm_bindgen_test]
fn bad_uploads_are_clear_errors() {
    let (x, labels) = clustered(10, 2, 3);
    let good = npz(vec![
        ("f", Array::from_f32(10, 3, x.clone())),
        ("labels", Array::from_labels(&labels)),
    ]);
    let truncated = Loaded::decode("t.npz", &good[..good.len() / 2]).unwrap_err();
    assert!(truncated.contains("t.npz"), "{truncated}");
    let mut with_nan = x.clone();
    with_nan[4] = f32::NAN;
    let nan = Loaded::decode("n.npz", &npz(vec![("f", Array::from_f32(10, 3, with_nan))])).unwrap_err();
    assert!(nan.contains("NaN"), "{nan}");
    let rows = Loaded::decode(
        "r.npz",
        &npz(vec![
            ("f", Array::from_f32(10, 3, x)),
            ("labels", Array::from_labels(&labels[..9])),
        ]),
    )
    .unwrap_err();
    assert!(rows.contains("10 rows but there are 9 labels"), "{rows}");
    let kind = Loaded::decode("x.csv", b"1,2,3").unwrap_err();
    assert!(kind.contains("unknown file type"), "{kind}");
    let only_labels = Loaded::decode("l.npz", &npz(vec![("labels", Array::from_labels(&labels))])).unwrap_err();
    assert!(only_labels.contains("no feature array"), "{only_labels}");
    assert!(check_size("big.npz", 3e9, 1e9).unwrap_err().contains("3.00 GB"));
    assert!(check_size("empty.npz", 0.0, 1e9).unwrap_err().contains("empty"));
    assert!(check_size("ok.npz", 1e6, 1e9).is_ok());
}

#[wasm_bindgen_test]
fn url_state_round_trips() {
    let state = UrlState {
        view: View::Knn,
        objectives: vec![
            "softmax".into(),
            "cosine-softmax:loss-scaling=auto,temperature=0.05".into(),
        ],
        layer: Some("block2.0".into()),
        results: Some("results.json".into()),
        device: DeviceChoice::Cpu,
    };
    let query = state.to_query();
    assert_eq!(UrlState::parse(&query), state);
    assert_eq!(UrlState::parse(&format!("?{query}")), state);
    assert_eq!(UrlState::default().to_query(), "");
    let odd = UrlState::parse("?view=nonsense&device=tpu&objective=");
    assert_eq!(odd, UrlState::default());
}

#[wasm_bindgen_test]
fn results_of_another_version_are_refused() {
    // A file of the first version (before R² on whole block outputs) and one from the future.
    for version in [1, 3] {
        let e = parse_results(&format!(r#"{{"version": {version}, "runs": []}}"#), "r.json").unwrap_err();
        assert!(
            e.contains(&format!("version {version}")) && e.contains("reads version 2"),
            "{e}"
        );
    }
    assert!(parse_results("{", "r.json").unwrap_err().contains("not JSON"));
}

#[wasm_bindgen_test]
async fn analyses_run_on_the_cpu_backend() {
    let engine = Engine::start(DeviceChoice::Cpu).await.unwrap();
    assert!(engine.label.starts_with("CPU"));
    let (x, labels) = clustered(60, 3, 8);
    let (y, _) = clustered(60, 3, 5);
    let bytes = npz(vec![
        ("a", Array::from_f32(60, 8, x)),
        ("b", Array::from_f32(60, 5, y)),
        ("labels", Array::from_labels(&labels)),
    ]);
    let file = Loaded::decode("f.npz", &bytes).unwrap();
    let job = Job::start();
    let m = jobs::cka_matrix(
        &engine.compute,
        &file.layers,
        &file.layers,
        &Default::default(),
        &job,
        &|_, _| {},
    )
    .await
    .unwrap();
    for i in 0..2 {
        assert!((m[i][i] - 1.0).abs() < 1e-5, "CKA(X, X) = {}", m[i][i]);
        assert!((m[0][1] - m[1][0]).abs() < 1e-5);
    }
    let sep = jobs::separation(
        &engine.compute,
        &file.layers,
        &labels,
        losslens_core::analysis::Distance::Cosine,
        &job,
        &|_, _| {},
    )
    .await
    .unwrap();
    assert!(sep.iter().all(|s| (0.0..=1.0).contains(&s.r2)));
    let knn = jobs::knn(
        &engine.compute,
        (&file.layers[0], &labels),
        None,
        &KnnConfig {
            k_max: 5,
            ..Default::default()
        },
        &job,
        &|_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(knn.test_examples, 12, "20 % of each class held out");
    assert!((0.0..=1.0).contains(&knn.accuracy));
}

#[wasm_bindgen_test]
async fn a_cancelled_job_stops_at_its_next_piece() {
    let (x, _) = clustered(20, 2, 4);
    let layers = Loaded::decode("f.npz", &npz(vec![("a", Array::from_f32(20, 4, x))]))
        .unwrap()
        .layers;
    let job = Job::start();
    jobs::cancel();
    let compute = losslens_core::Compute::cpu();
    let r = jobs::cka_matrix(&compute, &layers, &layers, &Default::default(), &job, &|_, _| {}).await;
    assert_eq!(r.unwrap_err(), Failure::Cancelled);
    // A kNN probe in blocks stops at its next block, cancelled the same way.
    let (x, labels) = clustered(3000, 3, 4);
    let big = Loaded::decode("b.npz", &npz(vec![("a", Array::from_f32(3000, 4, x))]))
        .unwrap()
        .layers;
    let job = Job::start();
    let pieces = std::cell::Cell::new(0);
    let r = jobs::knn(
        &compute,
        (&big[0], &labels),
        None,
        &KnnConfig::default(),
        &job,
        &|done, _| {
            pieces.set(done);
            jobs::cancel();
        },
    )
    .await;
    assert_eq!(r.unwrap_err(), Failure::Cancelled);
    assert_eq!(pieces.get(), 1, "stopped after the first block");
    // A new job runs.
    let job = Job::start();
    assert!(job.check().is_ok());
}
