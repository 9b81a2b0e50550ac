//! A tiny study end to end on the CPU: two objectives on a generated source task, transfer to a
//! generated target task with other classes; results are complete and in range, and a second
//! invocation reuses every finished piece.

use burn::tensor::Device;
use losslens_core::data::{DatasetSource, ProceduralConfig};
use losslens_core::model::Architecture;
use losslens_core::objective::{ObjectiveConfig, ObjectiveKind};
use losslens_core::study::FinetuneConfig;
use losslens_core::study::results::Measure;
use losslens_core::study::{AnalysisConfig, TargetConfig};
use losslens_core::study::{StudyConfig, StudyEvent, run_study};
use losslens_core::train::{RunDir, TrainConfig};

fn procedural(seed: u64) -> DatasetSource {
    procedural_with(3, 40, seed)
}

fn procedural_with(classes: usize, per_class: usize, seed: u64) -> DatasetSource {
    DatasetSource::Procedural {
        config: ProceduralConfig {
            classes,
            per_class,
            size: 12,
            seed,
            noise: 0.15,
        },
        test_per_class: 10,
    }
}

/// Equal up to the last digit a JSON round trip may change.
fn assert_close<T: serde::Serialize>(a: &T, b: &T) {
    fn walk(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
        use serde_json::Value::*;
        match (a, b) {
            (Number(x), Number(y)) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0), "{at}: {x} vs {y}");
            }
            (Array(x), Array(y)) => {
                assert_eq!(x.len(), y.len(), "{at}");
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    walk(p, q, &format!("{at}[{i}]"));
                }
            }
            (Object(x), Object(y)) => {
                assert_eq!(x.len(), y.len(), "{at}");
                for (k, p) in x {
                    walk(p, &y[k], &format!("{at}.{k}"));
                }
            }
            _ => assert_eq!(a, b, "{at}"),
        }
    }
    walk(&serde_json::to_value(a).unwrap(), &serde_json::to_value(b).unwrap(), "");
}

#[test]
fn tiny_study_is_complete_and_incremental() {
    let study = StudyConfig {
        name: "tiny".into(),
        source: procedural(1),
        targets: vec![TargetConfig {
            name: "other-classes".into(),
            data: procedural(2),
            measure: Measure::MeanPerClass,
            labels: None,
        }],
        model: Architecture::Small,
        objectives: vec![
            ObjectiveConfig::default_for(ObjectiveKind::Softmax).into(),
            ObjectiveConfig::default_for(ObjectiveKind::CosineSoftmax).into(),
        ],
        seeds: vec![0],
        train: TrainConfig {
            epochs: Some(2),
            batch_size: 20,
            learning_rate: 0.4,
            warmup_epochs: 0.5,
            holdout_fraction: 0.1,
            ..TrainConfig::default()
        },
        analysis: AnalysisConfig {
            separation_per_class: losslens_core::study::PerClass::Count(20),
            sparsity_images: Some(12),
            calibration_images: Some(5),
            relearn_head: true,
            assignment: true,
            ..AnalysisConfig::default()
        },
        finetune: None,
        tune: None,
        extra_tests: Vec::new(),
    };
    let out = tempfile::tempdir().unwrap();
    let mut pieces = 0;
    let results = run_study(&study, out.path(), &Device::flex(), None, &mut |e| {
        if matches!(e, StudyEvent::Piece { .. }) {
            pieces += 1;
        }
    })
    .unwrap();
    assert!(pieces > 0);
    assert_eq!(results.runs.len(), 2);
    assert_eq!(results.runs[0].kind, "softmax");
    assert_eq!(results.runs[1].kind, "cosine-softmax");
    let unit = |v: f64| (0.0..=1.0).contains(&v);
    for run in &results.runs {
        assert!(unit(run.source.top1) && unit(run.source.top5) && unit(run.source.ece));
        assert!(run.source.nll.is_finite() && run.source.nll >= 0.0);
        // The temperature is fitted on a class-stratified sample of about 5 of the run's 9
        // holdout images (each class rounded, at least one).
        let fitted = run
            .source
            .temperature_images
            .expect("a holdout to fit the temperature on");
        assert!((4..9).contains(&fitted), "{fitted} holdout images");
        assert!(run.source.temperature.is_some_and(|t| t > 0.0));
        // Fig. 6: the head relearned on 80 % of the 30 test images, both heads scored on 20 %.
        let head = run.source.relearned_head.as_ref().expect("the head relearned");
        assert_eq!((head.fit_images, head.eval_images), (24, 6));
        assert!(unit(head.original) && unit(head.relearned) && head.lambda > 0.0);
        // Table F.1: the source head's predictions on the target, mapped to its classes.
        let assigned = run.transfer[0].assignment.as_ref().expect("assignment accuracy");
        assert!(unit(assigned.accuracy) && unit(assigned.fit_accuracy) && assigned.replication >= 1);
        assert_eq!(run.transfer.len(), 1);
        assert!(unit(run.transfer[0].linear) && unit(run.transfer[0].knn));
        let layers: Vec<&str> = run.separation.iter().map(|l| l.layer.as_str()).collect();
        assert_eq!(layers, ["block1.0", "block2.0", "block3.0", "penultimate"]);
        assert!(run.separation.iter().all(|l| unit(l.value)), "{:?}", run.separation);
        assert!(run.sparsity.iter().all(|l| unit(l.value)), "{:?}", run.sparsity);
    }
    // Fig. 2b: CKA between the two networks at every layer, on the 30 test images, 10 passes.
    let protocol = results.protocol.as_ref().unwrap();
    assert_eq!(
        (protocol.cka_images, protocol.cka_batch_size, protocol.cka_passes),
        (30, 30, 10)
    );
    assert_eq!(results.cka.len(), 4);
    for layer in &results.cka {
        assert_eq!(layer.images, 30);
        assert_eq!(
            layer.runs,
            ["softmax s0", "cosine-softmax:loss-scaling=auto,temperature=0.05 s0"]
        );
        assert_eq!((layer.values[0][0], layer.values[1][1]), (1.0, 1.0));
        assert!(
            layer.values[0][1] > 0.0 && layer.values[0][1] < 1.0,
            "{:?}",
            layer.values
        );
    }
    // Fig. 2a: softmax against cosine softmax (one seed each) and against the control network.
    assert_eq!(results.cka_blocks.len(), 2);
    assert_eq!(results.cka_blocks[0].a, "softmax s0");
    assert!(results.cka_blocks[0].b.starts_with("cosine-softmax"));
    assert!(
        results.cka_blocks[1].b.starts_with("initialisation (seed 0;"),
        "{}",
        results.cka_blocks[1].b
    );
    for blocks in &results.cka_blocks {
        assert_eq!(blocks.values.len(), 4);
        assert!(blocks.values.iter().flatten().all(|v| v.is_finite() && *v < 1.0 + 1e-6));
    }
    let text = std::fs::read_to_string(out.path().join("results.json")).unwrap();
    let saved: losslens_core::study::StudyResults = serde_json::from_str(&text).unwrap();
    assert_close(&saved, &results);

    // Again: every run is reused, and CKA between the networks too; the results are the same.
    let (mut reused, mut pieces) = (0, 0);
    let again = run_study(&study, out.path(), &Device::flex(), None, &mut |e| match e {
        StudyEvent::Reused { .. } => reused += 1,
        StudyEvent::Piece { .. } => pieces += 1,
        _ => {}
    })
    .unwrap();
    assert_eq!((reused, pieces), (2, 0));
    assert_close(&again, &results);

    // A different analysis size recomputes the analyses but keeps the trained networks.
    let changed = StudyConfig {
        analysis: AnalysisConfig {
            separation_per_class: losslens_core::study::PerClass::Count(10),
            ..study.analysis.clone()
        },
        ..study.clone()
    };
    let model = std::fs::read(out.path().join("runs/softmax-s0/model.bpk")).unwrap();
    let mut reused = 0;
    let changed_results = run_study(&changed, out.path(), &Device::flex(), None, &mut |e| {
        if matches!(e, StudyEvent::Reused { .. }) {
            reused += 1;
        }
    })
    .unwrap();
    assert_eq!(reused, 0);
    assert_close(&changed_results.runs[0].source, &results.runs[0].source);
    assert_eq!(
        std::fs::read(out.path().join("runs/softmax-s0/model.bpk")).unwrap(),
        model
    );
    let metrics = std::fs::read_to_string(out.path().join("runs/softmax-s0/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2);

    // A different training setting trains the networks again.
    let retrained = StudyConfig {
        train: TrainConfig {
            epochs: Some(1),
            ..study.train.clone()
        },
        ..study.clone()
    };
    // An invalid training setting is refused before any folder is touched.
    let before = snapshot(out.path());
    for bad in [
        TrainConfig {
            epochs: Some(0),
            ..study.train.clone()
        },
        TrainConfig {
            batch_size: 0,
            ..study.train.clone()
        },
        TrainConfig {
            learning_rate: f64::NAN,
            ..study.train.clone()
        },
        TrainConfig {
            holdout_fraction: 1.0,
            ..study.train.clone()
        },
        TrainConfig {
            image_size: Some(1_000_000),
            ..study.train.clone()
        },
    ] {
        let refused = StudyConfig {
            train: bad,
            ..study.clone()
        };
        assert!(run_study(&refused, out.path(), &Device::flex(), None, &mut |_| {}).is_err());
        assert!(snapshot(out.path()) == before, "a refused study changed its folder");
    }

    run_study(&retrained, out.path(), &Device::flex(), None, &mut |_| {}).unwrap();
    let metrics = std::fs::read_to_string(out.path().join("runs/softmax-s0/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 1);
    assert_ne!(
        std::fs::read(out.path().join("runs/softmax-s0/model.bpk")).unwrap(),
        model
    );
    // The run trained with the earlier settings is kept aside, whole.
    let kept = out.path().join("runs/softmax-s0.superseded-1");
    assert_eq!(std::fs::read(kept.join("model.bpk")).unwrap(), model);
    assert!(kept.join("results.json").is_file() && kept.join("metrics.jsonl").is_file());
}

/// Every file under `dir` with its bytes, sorted by path.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn fine_tuning_chooses_on_validation_over_seeds_and_refits() {
    let study = StudyConfig {
        name: "tuned".into(),
        source: procedural(1),
        targets: vec![TargetConfig {
            name: "other classes".into(),
            data: procedural_with(4, 30, 5),
            measure: Measure::MeanPerClass,
            labels: None,
        }],
        model: Architecture::Small,
        objectives: vec![ObjectiveConfig::default_for(ObjectiveKind::Softmax).into()],
        seeds: vec![0, 1],
        train: TrainConfig {
            epochs: Some(1),
            batch_size: 20,
            learning_rate: 0.4,
            warmup_epochs: 0.5,
            holdout_fraction: 0.1,
            ..TrainConfig::default()
        },
        analysis: AnalysisConfig {
            separation_per_class: losslens_core::study::PerClass::Count(10),
            sparsity_images: Some(6),
            feature_images: 0,
            ..AnalysisConfig::default()
        },
        finetune: Some(FinetuneConfig {
            steps: 6,
            batch_size: 16,
            learning_rates: vec![1e-4, 0.2],
            weight_decays: vec![1e-4, 0.0],
            validation_fraction: 0.25,
            train_limit: Some(80),
            checkpoints: 2,
            ..FinetuneConfig::default()
        }),
        tune: None,
        extra_tests: Vec::new(),
    };
    let out = tempfile::tempdir().unwrap();
    let results = run_study(&study, out.path(), &Device::flex(), None, &mut |_| {}).unwrap();
    assert_eq!(results.runs.len(), 2);
    // The choice maximises the validation accuracy averaged over the two seeds, and both seeds
    // share it.
    let grids: Vec<_> = results.runs.iter().map(|r| &r.finetune[0].grid).collect();
    assert_eq!(grids[0].len(), 4);
    // Measured in the target's measure (mean per-class here); nothing diverged at these rates.
    assert!(
        grids.iter().all(|g| g.iter().all(|p| p.validation.is_some())),
        "{grids:?}"
    );
    let mean = |p: usize| grids.iter().map(|g| g[p].validation.unwrap_or(0.0)).sum::<f64>() / 2.0;
    let best = (0..4).fold(0, |b, p| if mean(p) > mean(b) { p } else { b });
    for run in &results.runs {
        assert_eq!(run.finetune.len(), 1);
        let f = &run.finetune[0];
        assert_eq!(f.target, "other classes");
        assert!((0.0..=1.0).contains(&f.accuracy), "{f:?}");
        assert_eq!(
            (f.learning_rate, f.weight_decay),
            (grids[0][best].learning_rate, grids[0][best].weight_decay)
        );
        assert!((f.validation - mean(best)).abs() < 1e-12);
        assert!(
            f.grid
                .iter()
                .all(|p| p.validation.is_none_or(|v| (0.0..=1.0).contains(&v)))
        );
    }
    // The search trains on 60 of the 80 sampled images and validates on 20; the refit trains on
    // all 80, keeps its weights and drops its checkpoints; searched points keep only records.
    let tuned = out.path().join("runs/softmax-s0/finetune/other-classes");
    let point = RunDir::new(tuned.join("lr-1.000e-4-wd-0.000e0"));
    let info = point.info().unwrap();
    assert_eq!((info.train_images, info.holdout_images), (60, 20));
    assert!(!point.model_path().exists() && !point.path.join("checkpoint").exists());
    let chosen = &results.runs[0].finetune[0];
    let refit_dir = tuned.join(format!(
        "final-lr-{:.3e}-wd-{:.3e}",
        chosen.learning_rate, chosen.weight_decay
    ));
    let refit = RunDir::new(&refit_dir);
    let info = refit.info().unwrap();
    assert_eq!((info.train_images, info.holdout_images), (80, 0));
    assert!(info.finished && refit.model_path().exists());
    assert!(!refit.path.join("checkpoint").exists());
    let saved = refit.config().unwrap();
    assert!(!saved.nesterov);
    let base = std::fs::canonicalize(out.path().join("runs/softmax-s0")).unwrap();
    assert_eq!(saved.pretrained.as_deref(), Some(base.as_path()));
    // Table 2 is written.
    let table = std::fs::read_to_string(out.path().join("table2.md")).unwrap();
    assert!(table.contains("other classes fine-tuned"), "{table}");
    // Fig. D.3: CKA of every layer between the pretrained and the fine-tuned network on the
    // target's test images, saved beside the refit.
    for run in &results.runs {
        let cka = &run.finetune[0].cka;
        let layers: Vec<&str> = cka.iter().map(|v| v.layer.as_str()).collect();
        assert_eq!(layers, ["block1.0", "block2.0", "block3.0", "penultimate"], "{cka:?}");
        assert!(cka.iter().all(|v| (0.0..=1.0 + 1e-6).contains(&v.value)), "{cka:?}");
    }
    assert!(refit_dir.join("cka.json").is_file());

    // Again, with the output folder spelled differently: every job is reused (nothing is
    // fine-tuned) and the numbers are the same.
    let mut tuning = 0;
    let again = run_study(&study, &out.path().join("."), &Device::flex(), None, &mut |e| {
        if let StudyEvent::Piece { what, .. } = e
            && (what.starts_with("fine-tuning") || what.starts_with("CKA between the pretrained"))
        {
            tuning += 1;
        }
    })
    .unwrap();
    assert_eq!(tuning, 0);
    assert_close(&again, &results);
    let job = std::fs::read_to_string(refit_dir.join("job.json")).unwrap();
    assert!(job.contains("\"done\": true"), "{job}");
}

#[test]
fn tuning_chooses_the_epochs_on_a_holdout_then_trains_on_everything() {
    use losslens_core::study::TuneConfig;
    let out = tempfile::tempdir().unwrap();
    let study = StudyConfig {
        extra_tests: Vec::new(),
        name: "tuned-epochs".into(),
        source: procedural(3),
        targets: Vec::new(),
        model: Architecture::Small,
        objectives: vec![ObjectiveConfig::default_for(ObjectiveKind::Softmax).into()],
        seeds: vec![0],
        train: TrainConfig {
            batch_size: 20,
            warmup_epochs: 0.0,
            ..TrainConfig::default()
        },
        analysis: AnalysisConfig {
            separation_per_class: losslens_core::study::PerClass::Count(10),
            feature_images: 0,
            ..AnalysisConfig::default()
        },
        finetune: None,
        tune: Some(TuneConfig {
            seeds: 2,
            holdout_fraction: 0.25,
            max_epochs: Some(3),
        }),
    };
    let results = run_study(&study, out.path(), &Device::flex(), None, &mut |_| {}).unwrap();
    let tuning = &results.tuning[0];
    assert_eq!(tuning.holdout_accuracy.len(), 3, "one mean holdout accuracy per epoch");
    let best = tuning
        .holdout_accuracy
        .iter()
        .cloned()
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(tuning.holdout_accuracy[tuning.epochs - 1], best);
    assert!(
        tuning.holdout_accuracy[..tuning.epochs - 1].iter().all(|&a| a < best),
        "the earliest best epoch"
    );
    // Two tuning runs on their holdout, then the final run on every image for the chosen epochs.
    for k in [1000, 1001] {
        let tune = RunDir::new(out.path().join(format!("runs/softmax-tune-s{k}")));
        assert!(tune.info().unwrap().holdout_images > 0);
    }
    let run = RunDir::new(out.path().join("runs/softmax-s0"));
    let info = run.info().unwrap();
    assert_eq!(info.holdout_images, 0);
    assert_eq!(info.epochs, tuning.epochs);
    assert_eq!(info.best_epoch, Some(tuning.epochs));
}

/// Figs. C.1–C.3, D.2, E.4: with `keep_every`, a study measures every kept epoch up to the best
/// one; the last point is the final network's measurements, each kept point matches the kept
/// weights evaluated independently, the figures are drawn, and a killed study reuses the epochs
/// it had measured.
#[test]
fn training_dynamics_are_measured_at_every_kept_epoch_up_to_the_best() {
    use losslens_core::analysis::classes::Classes;
    use losslens_core::analysis::separation::{Distance, class_separation};
    use losslens_core::compute::{Compute, Precision};
    use losslens_core::features::Layer;
    use losslens_core::inference::{Pooling, Request, forward};

    let study = StudyConfig {
        name: "dynamics".into(),
        source: procedural(1),
        targets: vec![TargetConfig {
            name: "other classes".into(),
            data: procedural(2),
            measure: Measure::Top1,
            labels: None,
        }],
        model: Architecture::Small,
        objectives: vec![ObjectiveConfig::default_for(ObjectiveKind::Softmax).into()],
        seeds: vec![0],
        train: TrainConfig {
            epochs: Some(3),
            keep_every: Some(1),
            batch_size: 20,
            learning_rate: 0.4,
            warmup_epochs: 0.5,
            holdout_fraction: 0.0,
            ..TrainConfig::default()
        },
        analysis: AnalysisConfig {
            separation_per_class: losslens_core::study::PerClass::Count(20),
            sparsity_images: Some(12),
            cka_passes: 0,
            train_accuracy: true,
            ..AnalysisConfig::default()
        },
        finetune: None,
        tune: None,
        extra_tests: Vec::new(),
    };
    let out = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let results = run_study(&study, out.path(), &device, None, &mut |_| {}).unwrap();
    let run = &results.runs[0];
    let epochs: Vec<usize> = run.dynamics.iter().map(|p| p.epoch).collect();
    assert_eq!(epochs, [1, 2, 3]);
    let unit = |v: f64| (0.0..=1.0).contains(&v);
    for p in &run.dynamics {
        assert!(unit(p.top1) && unit(p.test_separation) && p.train_top1.is_some_and(unit));
        assert_eq!(p.transfer.len(), 1);
        assert!(unit(p.transfer[0].value));
        let layers: Vec<&str> = p.separation.iter().map(|l| l.layer.as_str()).collect();
        assert_eq!(layers, ["block1.0", "block2.0", "block3.0", "penultimate"]);
        assert!(p.separation.iter().all(|l| unit(l.value)));
    }
    // The curve ends at the final network, measured as the study measures it.
    let last = run.dynamics.last().unwrap();
    assert_eq!(last.top1, run.source.top1);
    assert_eq!(last.train_top1, run.source.train.as_ref().map(|t| t.top1));
    assert_eq!(last.transfer[0].value, run.transfer[0].linear);
    assert_eq!(last.separation, run.separation);

    // Epoch 1 evaluated here from the kept weights: accuracy and penultimate R² on the test split.
    let dir = RunDir::new(out.path().join("runs/softmax-s0"));
    assert_eq!(dir.kept_epochs().unwrap(), [1, 2, 3]);
    let kept = dir.load_kept(1, &device).unwrap();
    let test = procedural(1).load(losslens_core::data::Split::Test, None).unwrap();
    let taps = ["penultimate".to_string()];
    let request = Request {
        taps: &taps,
        pooling: Pooling::Mean,
        objective: Some(&kept.objective),
        batch_size: 256,
    };
    let pass = forward(&kept.model, &test, &kept.input, &request, &device, &mut |_, _| {}).unwrap();
    let logits = pass.outputs.unwrap();
    let k = kept.info.classes.len();
    let correct = logits
        .chunks(k)
        .zip(&test.labels)
        .filter(|(row, label)| {
            let best = (0..k).fold(0, |b, j| if row[j] > row[b] { j } else { b });
            best == **label
        })
        .count();
    let first = &run.dynamics[0];
    assert_eq!(first.top1, correct as f64 / test.len() as f64);
    let (_, shape, values) = pass.layers.into_iter().next().unwrap();
    let layer = Layer::from_f32("penultimate", test.len(), shape.iter().product(), values);
    let classes = Classes::new(test.labels.clone(), Some(k)).unwrap();
    let compute = Compute::new(device.clone(), Precision::F32);
    let r2 = pollster::block_on(class_separation(&compute, &layer, &classes, Distance::Cosine)).unwrap();
    assert!(
        (first.test_separation - r2.r2).abs() < 1e-9,
        "{} vs {}",
        first.test_separation,
        r2.r2
    );
    // Another epoch's weights give another network.
    assert_ne!(run.dynamics[0], run.dynamics[1]);
    // A missing epoch is refused with the ones there are.
    let message = dir.load_kept(7, &device).unwrap_err().to_string();
    assert!(message.contains("1, 2, 3"), "{message}");

    let names: Vec<String> = losslens_core::study::figures::figures(&results, &[], None)
        .into_iter()
        .map(|f| f.name)
        .collect();
    for name in [
        "dynamics-test-accuracy",
        "dynamics-train-accuracy",
        "dynamics-transfer-other-classes",
        "dynamics-r2-train",
        "dynamics-r2-test",
        "dynamics-test-vs-train",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} missing from {names:?}");
    }

    // A study killed after measuring epoch 1: it is not measured again (its record, marked here,
    // is reused), epoch 2 and the final network are.
    let record = out.path().join("runs/softmax-s0/dynamics/epoch-0001.json");
    let mut saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    saved["top1"] = serde_json::json!(0.125);
    std::fs::write(&record, serde_json::to_string(&saved).unwrap()).unwrap();
    std::fs::remove_file(out.path().join("runs/softmax-s0/dynamics/epoch-0002.json")).unwrap();
    std::fs::remove_file(out.path().join("runs/softmax-s0/results.json")).unwrap();
    let mut measured = Vec::new();
    let again = run_study(&study, out.path(), &device, None, &mut |e| {
        if let StudyEvent::Piece { what, .. } = e
            && what.starts_with("training dynamics")
        {
            measured.push(what.to_string());
        }
    })
    .unwrap();
    assert_eq!(
        measured,
        [
            "training dynamics: the weights of epoch 2",
            "training dynamics: the weights of epoch 3"
        ]
    );
    assert_eq!(again.runs[0].dynamics[0].top1, 0.125);
    assert_close(&again.runs[0].dynamics[1..].to_vec(), &run.dynamics[1..].to_vec());
}

/// Table C.2: an extra test set with some of the source classes (an ImageFolder tree without
/// splits) scored among its classes, and the error under corruptions at five severities, equal to
/// the errors computed here from the public corruption functions; softmax is its own mCE baseline.
#[test]
fn robustness_on_extra_test_sets_and_corruptions() {
    use losslens_core::data::Split;
    use losslens_core::data::augment::evaluation_crops;
    use losslens_core::data::corrupt::{Corruption, STUDY_SEED, corrupt_set};
    use losslens_core::study::ExtraTestConfig;

    let dir = tempfile::tempdir().unwrap();
    // Two of the source's three classes, as PNG files: the source's own test images.
    let test = procedural(1).load(Split::Test, None).unwrap();
    let extra = dir.path().join("extra");
    for i in 0..test.len() {
        let label = test.labels[i];
        if label == 1 {
            continue;
        }
        let folder = extra.join(&test.classes[label]);
        std::fs::create_dir_all(&folder).unwrap();
        let [h, w] = test.size(i);
        image::save_buffer(
            folder.join(format!("{i:03}.png")),
            test.image(i),
            w as u32,
            h as u32,
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    }
    let study = StudyConfig {
        name: "robustness".into(),
        source: procedural(1),
        targets: Vec::new(),
        extra_tests: vec![ExtraTestConfig {
            name: "two classes".into(),
            data: DatasetSource::Folder {
                path: extra.clone(),
                size: None,
            },
        }],
        model: Architecture::Small,
        objectives: vec![ObjectiveConfig::default_for(ObjectiveKind::Softmax).into()],
        seeds: vec![0],
        train: TrainConfig {
            epochs: Some(2),
            batch_size: 20,
            learning_rate: 0.4,
            warmup_epochs: 0.5,
            holdout_fraction: 0.0,
            ..TrainConfig::default()
        },
        analysis: AnalysisConfig {
            separation_per_class: losslens_core::study::PerClass::Count(20),
            cka_passes: 0,
            corruptions: vec!["contrast".into(), "gaussian-noise".into()],
            ..AnalysisConfig::default()
        },
        finetune: None,
        tune: None,
    };
    let out = dir.path().join("out");
    let device = Device::flex();
    let results = run_study(&study, &out, &device, None, &mut |_| {}).unwrap();
    let robustness = results.runs[0].source.robustness.as_ref().expect("robustness measured");
    assert_eq!(robustness.extra.len(), 1);
    let e = &robustness.extra[0];
    assert_eq!((e.name.as_str(), e.images, e.classes), ("two classes", 20, 2));
    assert!((0.0..=1.0).contains(&e.top1));
    // ImageNet-C's order, five severities, every test image.
    let names: Vec<&str> = robustness.corruptions.iter().map(|c| c.corruption.as_str()).collect();
    assert_eq!(names, ["gaussian-noise", "contrast"]);
    assert_eq!(robustness.corruption_images, 30);
    // The errors, recomputed here from the network and the public corruption functions.
    let trained = RunDir::new(out.join("runs/softmax-s0")).load(&device).unwrap();
    let crops = evaluation_crops(&test, trained.input.image_size);
    let k = trained.info.classes.len();
    for c in &robustness.corruptions {
        assert_eq!(c.errors.len(), 5);
        let corruption: Corruption = c.corruption.parse().unwrap();
        for (s, &error) in c.errors.iter().enumerate() {
            let corrupted = corrupt_set(&crops, corruption, s + 1, STUDY_SEED).unwrap();
            let request = losslens_core::inference::Request {
                taps: &[],
                pooling: losslens_core::inference::Pooling::Mean,
                objective: Some(&trained.objective),
                batch_size: 64,
            };
            let pass = losslens_core::inference::forward(
                &trained.model,
                &corrupted,
                &trained.input,
                &request,
                &device,
                &mut |_, _| {},
            )
            .unwrap();
            let wrong = pass
                .outputs
                .unwrap()
                .chunks(k)
                .zip(&corrupted.labels)
                .filter(|(row, label)| (0..k).fold(0, |b, j| if row[j] > row[b] { j } else { b }) != **label)
                .count();
            let expected = wrong as f64 / corrupted.len() as f64;
            assert!(
                (error - expected).abs() < 1e-12,
                "{corruption} severity {}: {error} vs {expected}",
                s + 1
            );
        }
    }
    // Table C.2: the extra set, the mean error and the mCE, softmax being its own baseline.
    let c2 = losslens_core::study::aggregate::table_c2(&results)
        .unwrap()
        .expect("Table C.2");
    let titles: Vec<&str> = c2.columns.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(titles, ["two classes top-1", "corruption error", "mCE (softmax = 100)"]);
    assert!((c2.columns[2].values[0].mean - 1.0).abs() < 1e-12);
    assert!(
        std::fs::read_to_string(out.join("tableC2.md"))
            .unwrap()
            .contains("two classes")
    );

    // An extra set with a class the source does not have, a corruption that does not exist.
    std::fs::create_dir_all(extra.join("class999")).unwrap();
    std::fs::copy(
        extra.join("class000").join("000.png"),
        extra.join("class999").join("000.png"),
    )
    .unwrap();
    let message = run_study(&study, &out, &device, None, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("class999") && message.contains("two classes"),
        "{message}"
    );
    let fog = StudyConfig {
        analysis: AnalysisConfig {
            corruptions: vec!["fog".into()],
            ..study.analysis.clone()
        },
        ..study.clone()
    };
    let message = run_study(&fog, &out, &device, None, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("fog") && message.contains("jpeg-compression"),
        "{message}"
    );
}

/// Table D.1: a multi-label target (images listed in a CSV label file, split by their folders),
/// probed per class by ROC AUC, linear and kNN; the label file's bad input is refused by name.
#[test]
fn a_multi_label_target_is_probed_by_roc_auc() {
    use losslens_core::data::Split;
    use losslens_core::data::label_file::LabelFile;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("multi");
    // Two attributes of another task's classes: "round" for classes 0 and 1, "bright" for 1 and 2.
    let mut csv = String::from("path,round,bright,note\n");
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        let set = procedural(2).load(split, None).unwrap();
        std::fs::create_dir_all(root.join(name)).unwrap();
        for i in 0..set.len() {
            let [h, w] = set.size(i);
            let file = format!("{name}/{i:03}.png");
            image::save_buffer(
                root.join(&file),
                set.image(i),
                w as u32,
                h as u32,
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
            let label = set.labels[i];
            let (round, bright) = (u8::from(label <= 1), if label >= 1 { "1.0" } else { "-1.0" });
            csv.push_str(&format!("{file},{round},{bright},image {i}\n"));
        }
    }
    let labels = root.join("labels.csv");
    std::fs::write(&labels, &csv).unwrap();
    let target = |classes: Option<Vec<String>>| TargetConfig {
        name: "multi".into(),
        data: DatasetSource::Folder {
            path: root.clone(),
            size: None,
        },
        measure: Measure::Top1,
        labels: Some(LabelFile {
            file: labels.clone(),
            classes,
        }),
    };
    let study = StudyConfig {
        name: "multi-label".into(),
        source: procedural(1),
        targets: vec![target(Some(vec!["round".into(), "bright".into()]))],
        extra_tests: Vec::new(),
        model: Architecture::Small,
        objectives: vec![ObjectiveConfig::default_for(ObjectiveKind::Softmax).into()],
        seeds: vec![0],
        train: TrainConfig {
            epochs: Some(1),
            batch_size: 20,
            learning_rate: 0.4,
            warmup_epochs: 0.5,
            holdout_fraction: 0.0,
            ..TrainConfig::default()
        },
        analysis: AnalysisConfig {
            separation_per_class: losslens_core::study::PerClass::Count(20),
            cka_passes: 0,
            assignment: true,
            ..AnalysisConfig::default()
        },
        finetune: None,
        tune: None,
    };
    let out = dir.path().join("out");
    let results = run_study(&study, &out, &Device::flex(), None, &mut |_| {}).unwrap();
    assert!(results.targets[0].multilabel);
    let t = &results.runs[0].transfer[0];
    let unit = |v: f64| (0.0..=1.0).contains(&v);
    assert!(unit(t.linear) && unit(t.knn) && t.lambda > 0.0 && t.k >= 1, "{t:?}");
    assert!(t.assignment.is_none(), "no class assignment for a multi-label target");
    let names: Vec<&str> = t.classes.iter().map(|c| c.class.as_str()).collect();
    assert_eq!(names, ["round", "bright"]);
    assert!(
        t.classes
            .iter()
            .all(|c| unit(c.auc) && c.train_positives > 0 && c.test_positives > 0)
    );
    assert!((t.linear - (t.classes[0].auc + t.classes[1].auc) / 2.0).abs() < 1e-12);
    let table1 = losslens_core::study::aggregate::summarize(&results).unwrap();
    assert!(table1.columns.iter().any(|c| c.title == "multi linear AUC"));
    let d1 = losslens_core::study::aggregate::table_d1(&results)
        .unwrap()
        .expect("Table D.1");
    let titles: Vec<&str> = d1.columns.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(titles, ["multi: round AUC", "multi: bright AUC"]);
    assert!(out.join("tableD1.md").is_file());

    // Bad label files: a text column taken as a class, a class without a positive test example,
    // a path in neither split, a missing image, fine-tuning on a multi-label target.
    // Each in a new folder: a finished run's measurements are reused while the study file is
    // unchanged, whatever the label file holds now.
    let refused = |study: &StudyConfig, needles: &[&str]| {
        let fresh = tempfile::tempdir().unwrap();
        let Err(e) = run_study(study, fresh.path(), &Device::flex(), None, &mut |_| {}) else {
            panic!("{needles:?}: the study ran");
        };
        let message = e.to_string();
        assert!(needles.iter().all(|n| message.contains(n)), "{message}");
    };
    let all_columns = StudyConfig {
        targets: vec![target(None)],
        ..study.clone()
    };
    refused(&all_columns, &["note", "image 0", "not a number"]);
    let no_positive = csv
        .lines()
        .map(|l| match l.starts_with("test/") {
            true => l.replacen(",1,", ",0,", 1),
            false => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&labels, no_positive).unwrap();
    refused(&study, &["round", "no positive example in the test labels"]);
    std::fs::write(&labels, format!("{csv}images/x.png,1,1,x\n")).unwrap();
    refused(&study, &["images/x.png", "neither split"]);
    std::fs::write(&labels, format!("{csv}test/../../outside.png,1,1,x\n")).unwrap();
    refused(&study, &["outside.png", "inside the dataset's folder"]);
    std::fs::write(&labels, format!("{csv}test/missing.png,1,1,x\n")).unwrap();
    refused(&study, &["missing.png"]);
    std::fs::write(&labels, &csv).unwrap();
    let tuned = StudyConfig {
        finetune: Some(FinetuneConfig::default()),
        ..study.clone()
    };
    refused(&tuned, &["multi-label", "finetune"]);
}
