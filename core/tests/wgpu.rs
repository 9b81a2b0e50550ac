//! The analyses on the wgpu device agree with the CPU device (and so with the numpy goldens).
//!
//! Runs on whatever adapter wgpu finds: a real GPU, or Mesa's llvmpipe on a machine without one.
//! Without any adapter the test is skipped, unless `LOSSLENS_TEST_GPU=require` (set by
//! `scripts/test`, which installs Mesa) makes that a failure.
#![cfg(feature = "wgpu")]

use std::path::PathBuf;

use losslens_core::analysis::{self, CkaConfig, CkaEstimator, CkaForm, Classes, Distance, MinibatchCkaConfig};
use losslens_core::features::{FeatureFile, Layer};
use losslens_core::{Compute, Precision};

fn run<T>(f: impl Future<Output = losslens_core::Result<T>>) -> T {
    pollster::block_on(f).unwrap_or_else(|e| panic!("{e}"))
}

#[track_caller]
fn close(gpu: f64, cpu: f64, what: &str) {
    assert!(
        (gpu - cpu).abs() <= 1e-4 * cpu.abs().max(0.1),
        "{what}: wgpu {gpu} vs CPU {cpu}"
    );
}

/// The wgpu device, started once for all tests (EGL refuses two contexts started concurrently),
/// and the calling test's turn on it; `None` to skip.
///
/// The tests take turns: burn's device channel can deadlock when two threads use one wgpu
/// device while autotune runs, which it does on a machine whose kernel cache is still empty.
fn gpu_device() -> Option<(burn::tensor::Device, std::sync::MutexGuard<'static, ()>)> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    static GPU: std::sync::OnceLock<Option<burn::tensor::Device>> = std::sync::OnceLock::new();
    let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let device = GPU.get_or_init(|| {
        // Autotune results and kernels in losslens' kernel cache, as the command line keeps them
        // (`LOSSLENS_CACHE`, else ~/.cache/losslens), so that only the first run on a machine
        // tunes (minutes on a software adapter).
        let cache = std::env::var_os("LOSSLENS_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/losslens")))
            .unwrap_or_else(std::env::temp_dir);
        losslens_core::device::use_kernel_cache(&cache.join("kernels")).unwrap();
        gpu_or_skip()
    });
    device.clone().map(|device| (device, turn))
}

/// The wgpu adapter, `None` to skip (no adapter is a failure under `LOSSLENS_TEST_GPU=require`).
///
/// Software adapters (Mesa's llvmpipe) are skipped unless `LOSSLENS_TEST_SOFTWARE_GPU=1`: with
/// fusion and autotune in the build, burn 0.22.1 deadlocks on the first kernel it has to tune
/// (its fusion thread waits for exclusive use of the device while the device thread waits for
/// the fusion thread), so on a machine whose kernel cache is empty the tests would hang. A
/// machine whose cache already holds the tuned kernels can run them with the variable set.
fn gpu_or_skip() -> Option<burn::tensor::Device> {
    match pollster::block_on(losslens_core::device::gpu()) {
        Ok(gpu)
            if gpu.name.contains("llvmpipe") && std::env::var("LOSSLENS_TEST_SOFTWARE_GPU").as_deref() != Ok("1") =>
        {
            eprintln!(
                "skipped: {} is a software adapter, where the first autotune of burn 0.22.1 deadlocks \
                 (LOSSLENS_TEST_SOFTWARE_GPU=1 runs it anyway)",
                gpu.name
            );
            None
        }
        Ok(gpu) => {
            eprintln!("wgpu adapter: {}", gpu.name);
            Some(gpu.device)
        }
        Err(e) if std::env::var("LOSSLENS_TEST_GPU").as_deref() == Ok("require") => {
            panic!("LOSSLENS_TEST_GPU=require but no wgpu adapter: {e}")
        }
        Err(e) => {
            eprintln!("skipped: no wgpu adapter ({e})");
            None
        }
    }
}

#[test]
fn every_analysis_on_wgpu_matches_the_cpu() {
    let Some((gpu, _turn)) = gpu_device() else { return };
    let gpu = Compute::new(gpu, Precision::F32);
    let cpu = Compute::cpu();
    let f = FeatureFile::open(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/inputs.npz")).unwrap();
    let layer = |n: &str| f.layer(Some(n)).unwrap();
    let classes = Classes::new(f.labels().unwrap(), None).unwrap();

    for (a, b) in [("x", "y"), ("wide", "wide2"), ("x", "relu")] {
        for estimator in [CkaEstimator::Biased, CkaEstimator::Debiased] {
            for form in [CkaForm::Feature, CkaForm::Gram] {
                let config = CkaConfig { estimator, form };
                let g = run(analysis::linear_cka(&gpu, &layer(a), &layer(b), &config)).cka;
                let c = run(analysis::linear_cka(&cpu, &layer(a), &layer(b), &config)).cka;
                close(g, c, &format!("CKA {a}/{b} {estimator:?} {form:?}"));
            }
        }
    }

    let side = |names: &[&str]| names.iter().map(|n| layer(n)).collect::<Vec<Layer>>();
    let (ma, mb) = (side(&["mb_a0", "mb_a1", "mb_a2"]), side(&["mb_b0", "mb_b1"]));
    let config = MinibatchCkaConfig {
        batch_size: 16,
        shuffle_seed: Some(3),
    };
    let g = run(analysis::minibatch_cka(&gpu, &ma, &mb, &config));
    let c = run(analysis::minibatch_cka(&cpu, &ma, &mb, &config));
    for (gr, cr) in g.values.iter().zip(&c.values) {
        for (gv, cv) in gr.iter().zip(cr) {
            close(*gv, *cv, "minibatch CKA");
        }
    }

    for distance in Distance::ALL {
        let g = run(analysis::class_separation(&gpu, &layer("emb"), &classes, distance)).r2;
        let c = run(analysis::class_separation(&cpu, &layer("emb"), &classes, distance)).r2;
        close(g, c, &format!("R² {distance:?}"));
    }
    assert_eq!(
        run(analysis::fraction_nonzero(&gpu, &layer("relu"))),
        run(analysis::fraction_nonzero(&cpu, &layer("relu")))
    );
    let weights = f.weights("weights").unwrap();
    let g = run(analysis::neural_collapse(&gpu, &layer("emb"), &classes, Some(&weights)));
    let c = run(analysis::neural_collapse(&cpu, &layer("emb"), &classes, Some(&weights)));
    close(g.nc1, c.nc1, "NC1");
    close(g.means.equiangular, c.means.equiangular, "equiangularity");
    close(g.self_duality.unwrap(), c.self_duality.unwrap(), "self-duality");
    let g = run(analysis::spectra(&gpu, &layer("emb"), Some(&classes), None));
    let c = run(analysis::spectra(&cpu, &layer("emb"), Some(&classes), None));
    close(
        g.features.singular_values[0],
        c.features.singular_values[0],
        "top singular value",
    );
}

/// One training step of the small network with every objective: loss and gradients on wgpu
/// agree with the CPU for identical weights and inputs.
#[cfg(feature = "train")]
#[test]
fn objectives_and_backward_on_wgpu_match_the_cpu() {
    use burn::module::Module;
    use burn::tensor::{Device, Int, Tensor, TensorData};
    use losslens_core::model::{Architecture, ModelConfig, Stem};
    use losslens_core::objective::{ObjectiveConfig, ObjectiveKind};

    let Some((gpu, _turn)) = gpu_device() else { return };
    let cpu = Device::flex();
    let model = ModelConfig::new(Architecture::Small, Stem::Cifar, 4)
        .init(&cpu)
        .unwrap();
    let pixels: Vec<f32> = (0..4 * 3 * 16 * 16).map(|i| (0.37 * i as f32).sin()).collect();
    let step = |device: &Device, kind: ObjectiveKind| {
        let device = device.clone().autodiff();
        let model = model.clone().fork(&device).train();
        let images = Tensor::<4>::from_data(TensorData::new(pixels.clone(), [4, 3, 16, 16]), &device);
        let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 3], [4]), &device);
        // Dropout gets a fixed mask so both devices see the same one.
        let mask = Tensor::<2>::from_data(
            TensorData::new(
                (0..4 * 128)
                    .map(|i| ((i * 7) % 10 < 7) as u8 as f32)
                    .collect::<Vec<_>>(),
                [4, 128],
            ),
            &device,
        );
        let objective = ObjectiveConfig::default_for(kind).init().unwrap();
        let out = objective.forward_with_mask(model.features(images), &model.head, targets, Some(mask));
        let grads = out.loss.backward();
        let loss = out.loss.into_scalar::<f64>();
        let stem = model
            .body
            .resnet()
            .unwrap()
            .stem
            .conv
            .weight
            .val()
            .grad(&grads)
            .unwrap();
        let stem = stem.into_data().convert::<f64>().try_into_vec::<f64>().unwrap();
        (loss, stem)
    };
    for kind in ObjectiveKind::ALL {
        let (g_loss, g_grad) = step(&gpu, kind);
        let (c_loss, c_grad) = step(&cpu, kind);
        close(g_loss, c_loss, &format!("{kind} loss"));
        let scale = c_grad.iter().fold(0f64, |m, v| m.max(v.abs()));
        for (g, c) in g_grad.iter().zip(&c_grad) {
            assert!(
                (g - c).abs() <= 1e-3 * scale,
                "{kind}: stem gradient wgpu {g} vs CPU {c} (scale {scale})"
            );
        }
    }
}

/// The whole training loop on wgpu: on-device augmentation (gather), SGD, EMA, evaluation,
/// checkpoint. Each backend draws initial weights from its own generator, so the two runs start
/// from different weights: the first epoch's loss must be finite and of the CPU's size.
#[cfg(feature = "train")]
#[test]
fn training_loop_runs_on_wgpu_like_on_the_cpu() {
    use burn::tensor::Device;
    use losslens_core::data::{DatasetSource, ProceduralConfig};
    use losslens_core::model::Architecture;
    use losslens_core::train::{TrainConfig, TrainOptions, train};

    let Some((gpu, _turn)) = gpu_device() else { return };
    let config = TrainConfig {
        data: DatasetSource::Procedural {
            config: ProceduralConfig {
                classes: 3,
                per_class: 16,
                size: 12,
                seed: 2,
                noise: 0.15,
            },
            test_per_class: 2,
        },
        model: Architecture::Small,
        epochs: Some(1),
        batch_size: 16,
        holdout_fraction: 0.2,
        eval_batch_size: 16,
        ..TrainConfig::default()
    };
    let run = |device: &Device| {
        let out = tempfile::tempdir().unwrap();
        train(&config, out.path(), &TrainOptions::default(), device, &mut |_| {}).unwrap()
    };
    let (cpu, gpu) = (run(&Device::flex()), run(&gpu));
    let (a, b) = (cpu.history[0].train_loss, gpu.history[0].train_loss);
    assert!(b.is_finite() && (a - b).abs() < 0.5 * a, "cpu {a}, gpu {b}");
    assert!(gpu.info.best_holdout_accuracy.is_some());
}
