//! The training loop on the CPU: a small network learns real CIFAR-10 images, an interrupted run
//! resumes to the same weights as an uninterrupted one, and bad runs are refused.

mod common;

use common::unpacked;
use std::path::PathBuf;

use burn::tensor::Device;
use losslens_core::data::DatasetSource;
use losslens_core::data::ProceduralConfig;
use losslens_core::data::autoaugment::Policy;
use losslens_core::data::mixup::MixupConfig;
use losslens_core::model::Architecture;
use losslens_core::objective::{ObjectiveConfig, ObjectiveKind};
use losslens_core::train::run::load_weights;
use losslens_core::train::{RunDir, TrainConfig, TrainOptions, paper_epochs_of, train};

/// Tensors equal up to float rounding (relative 1e-5 of each tensor's largest value).
fn assert_close(a: &[Vec<f32>], b: &[Vec<f32>], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    let mut exact = true;
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let scale = x.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
        let diff = x.iter().zip(y).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        exact &= diff == 0.0;
        assert!(
            diff <= 1e-5 * scale,
            "{what}: tensor {i} differs by {diff} (scale {scale})"
        );
    }
    eprintln!("{what}: {}", if exact { "identical" } else { "equal up to rounding" });
}

/// Every float tensor of a module (parameters and batch-norm statistics), in module order.
fn values<M: burn::module::Module>(module: M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<burn::tensor::Tensor<D>>) {
            self.0.push(param.val().into_data().try_to_vec::<f32>().unwrap());
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

/// Training draws initial weights from the CPU backend's process-wide generator, so the tests of
/// this file run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn quick(data: DatasetSource) -> TrainConfig {
    TrainConfig {
        data,
        model: Architecture::Small,
        epochs: Some(3),
        batch_size: 32,
        learning_rate: 0.4,
        weight_decay: 5e-4,
        warmup_epochs: 0.5,
        holdout_fraction: 0.1,
        eval_batch_size: 200,
        ..TrainConfig::default()
    }
}

fn procedural(classes: usize, per_class: usize, size: usize) -> DatasetSource {
    DatasetSource::Procedural {
        config: ProceduralConfig {
            classes,
            per_class,
            size,
            seed: 7,
            noise: 0.15,
        },
        test_per_class: 5,
    }
}

#[test]
fn small_network_learns_real_cifar10() {
    let _serial = serial();
    let Some(root) = unpacked("cifar10") else { return };
    let out = tempfile::tempdir().unwrap();
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cache");
    // About two minutes on two CPU cores (the flex backend trains the small network at ~55
    // images/s at 32 px).
    let config = TrainConfig {
        epochs: Some(3),
        batch_size: 64,
        train_limit: Some(2000),
        holdout_fraction: 0.01,
        ..quick(DatasetSource::Folder { path: root, size: None })
    };
    let options = TrainOptions {
        cache_dir: Some(cache),
        ..TrainOptions::default()
    };
    let summary = train(&config, out.path(), &options, &Device::flex(), &mut |_| {}).unwrap();
    let info = &summary.info;
    assert_eq!(info.classes.len(), 10);
    assert_eq!(info.holdout_images, 500);
    assert!((1990..=2010).contains(&info.train_images), "{}", info.train_images);
    let best = info.best_holdout_accuracy.unwrap();
    eprintln!(
        "CIFAR-10, 2,000 images, 3 epochs: holdout accuracy by epoch {:?}",
        summary
            .history
            .iter()
            .map(|r| r.holdout_accuracy.unwrap())
            .collect::<Vec<_>>()
    );
    assert!(best > 0.2, "holdout accuracy {best} is not clearly above chance (0.1)");
    assert!(summary.history.iter().all(|r| r.train_loss.is_finite()));
    // The run folder is complete and loadable.
    let run = RunDir::new(out.path());
    assert_eq!(run.config().unwrap().epochs, Some(3));
    let metrics = std::fs::read_to_string(run.metrics_path()).unwrap();
    assert_eq!(metrics.lines().count(), 3);
    let trained = run.load(&Device::flex()).unwrap();
    assert_eq!(trained.info.best_epoch, info.best_epoch);
}

/// Stopping after epoch 1 and resuming gives the same weights, EMA and metrics as running all
/// epochs at once (dropout, AutoAugment and Mixup exercise the per-step random state too). The runs use one CPU
/// thread: with several, the CPU backend's parallel reductions may add floats in a different
/// order from run to run, which is the device's nondeterminism, not the checkpoint's.
#[test]
fn interrupted_run_resumes_to_the_same_weights() {
    let _serial = serial();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    pool.install(interrupted_run_resumes_to_the_same_weights_on_one_thread);
}

fn interrupted_run_resumes_to_the_same_weights_on_one_thread() {
    let config = TrainConfig {
        objective: ObjectiveConfig::default_for(ObjectiveKind::Dropout),
        autoaugment: Some(Policy::Cifar10),
        mixup: Some(MixupConfig { alpha: 0.4 }),
        keep_every: Some(1),
        ..quick(procedural(4, 40, 16))
    };
    let whole = tempfile::tempdir().unwrap();
    let a = train(
        &config,
        whole.path(),
        &TrainOptions::default(),
        &Device::flex(),
        &mut |_| {},
    )
    .unwrap();
    let parts = tempfile::tempdir().unwrap();
    let stop = TrainOptions {
        stop_after_epoch: Some(1),
        ..TrainOptions::default()
    };
    let first = train(&config, parts.path(), &stop, &Device::flex(), &mut |_| {}).unwrap();
    assert_eq!(first.info.epochs_done, 1);
    assert!(!first.info.finished);
    let resume = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    let b = train(&config, parts.path(), &resume, &Device::flex(), &mut |_| {}).unwrap();
    assert!(b.info.finished);
    assert_eq!(a.history.len(), b.history.len());
    for (x, y) in a.history.iter().zip(&b.history) {
        assert!(
            (x.train_loss - y.train_loss).abs() <= 1e-6 * x.train_loss.abs(),
            "epoch {}: {x:?} vs {y:?}",
            x.epoch
        );
        assert_eq!(x.train_accuracy, y.train_accuracy, "epoch {}", x.epoch);
        assert_eq!(x.holdout_accuracy, y.holdout_accuracy, "epoch {}", x.epoch);
    }
    let saved = |dir: &std::path::Path| values(RunDir::new(dir).load(&Device::flex()).unwrap().model);
    assert_close(&saved(whole.path()), &saved(parts.path()), "final weights");
    let training = |dir: &std::path::Path| {
        let info = RunDir::new(dir).info().unwrap();
        let model = info.model.init(&Device::flex()).unwrap();
        values(load_weights(model, &dir.join("checkpoint/epoch-0003/model.bpk")).unwrap())
    };
    assert_close(&training(whole.path()), &training(parts.path()), "training weights");
    // The weights kept for the dynamics: every epoch, the interrupted run's too.
    for dir in [whole.path(), parts.path()] {
        assert_eq!(RunDir::new(dir).kept_epochs().unwrap(), [1, 2, 3]);
    }
    let kept = |dir: &std::path::Path| values(RunDir::new(dir).load_kept(3, &Device::flex()).unwrap().model);
    assert_close(&kept(whole.path()), &kept(parts.path()), "kept weights");
    // Resuming a finished run does nothing more.
    let c = train(&config, parts.path(), &resume, &Device::flex(), &mut |_| {}).unwrap();
    assert_eq!(c.history.len(), 3);
}

#[test]
fn bad_runs_are_refused() {
    let _serial = serial();
    let config = TrainConfig {
        epochs: Some(1),
        ..quick(procedural(3, 10, 12))
    };
    let dir = tempfile::tempdir().unwrap();
    let resume = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    let err = train(&config, dir.path(), &resume, &Device::flex(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("nothing to resume"), "{err}");
    train(
        &config,
        dir.path(),
        &TrainOptions::default(),
        &Device::flex(),
        &mut |_| {},
    )
    .unwrap();
    let err = train(
        &config,
        dir.path(),
        &TrainOptions::default(),
        &Device::flex(),
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("already holds a run"), "{err}");
    let other = TrainConfig {
        seed: 1,
        ..config.clone()
    };
    let err = train(&other, dir.path(), &resume, &Device::flex(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("different configuration"), "{err}");
    // A half-written checkpoint folder left by a crash is ignored; a damaged complete one is
    // refused by name, and nothing is overwritten.
    let checkpoints = dir.path().join("checkpoint");
    std::fs::create_dir_all(checkpoints.join(".epoch-0002.tmp")).unwrap();
    std::fs::write(checkpoints.join(".epoch-0002.tmp/model.bpk"), b"partial").unwrap();
    train(&config, dir.path(), &resume, &Device::flex(), &mut |_| {}).unwrap();
    let optimizer = checkpoints.join("epoch-0001/optimizer.bpk");
    let bytes = std::fs::read(&optimizer).unwrap();
    std::fs::write(&optimizer, &bytes[..bytes.len() / 2]).unwrap();
    let model = std::fs::read(RunDir::new(dir.path()).model_path()).unwrap();
    let err = train(&config, dir.path(), &resume, &Device::flex(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("optimizer.bpk"), "{err}");
    assert_eq!(std::fs::read(RunDir::new(dir.path()).model_path()).unwrap(), model);
    for bad in [
        TrainConfig {
            batch_size: 0,
            ..config.clone()
        },
        TrainConfig {
            learning_rate: f64::NAN,
            ..config.clone()
        },
        TrainConfig {
            holdout_fraction: 1.0,
            ..config.clone()
        },
        TrainConfig {
            ema_decay: 1.0,
            ..config.clone()
        },
    ] {
        let fresh = tempfile::tempdir().unwrap();
        let err = train(
            &bad,
            fresh.path(),
            &TrainOptions::default(),
            &Device::flex(),
            &mut |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("invalid setting"), "{err}");
        // Nothing was written for a refused configuration.
        assert!(!RunDir::new(fresh.path()).exists());
    }
    // A configuration file with a key that does not exist is refused by name.
    let err = toml::from_str::<TrainConfig>("epochs = 3\nlearning_rat = 0.1\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("learning_rat"), "{err}");
}

/// Data-parallel training through burn's multi-device step: two replicas (here two handles of the
/// CPU device, the code path of two GPUs) train the network as well as one device does.
#[test]
fn data_parallel_training_learns() {
    let _serial = serial();
    let config = TrainConfig {
        epochs: Some(4),
        ..quick(procedural(3, 60, 16))
    };
    let one = tempfile::tempdir().unwrap();
    let a = train(
        &config,
        one.path(),
        &TrainOptions::default(),
        &Device::flex(),
        &mut |_| {},
    )
    .unwrap();
    let two = tempfile::tempdir().unwrap();
    let options = TrainOptions {
        replicas: vec![Device::flex()],
        ..TrainOptions::default()
    };
    let b = train(&config, two.path(), &options, &Device::flex(), &mut |_| {}).unwrap();
    let (acc_a, acc_b) = (
        a.info.best_holdout_accuracy.unwrap(),
        b.info.best_holdout_accuracy.unwrap(),
    );
    eprintln!("holdout accuracy: one device {acc_a}, two replicas {acc_b}");
    assert!(acc_b > 0.6, "data-parallel run reached only {acc_b}");
    // The first step sees identical weights and data; per-device batch-norm statistics make
    // the losses differ slightly, never grossly.
    let (la, lb) = (a.history[0].train_loss, b.history[0].train_loss);
    assert!((la - lb).abs() < 0.1 * la, "{la} vs {lb}");
}

/// Every convolution kernel of a module (rank-4 parameters), in module order.
fn conv_weights<M: burn::module::Module>(module: M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<burn::tensor::Tensor<D>>) {
            if D == 4 {
                self.0.push(param.val().into_data().try_to_vec::<f32>().unwrap());
            }
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

#[test]
fn fine_tuning_starts_from_the_pretrained_body_with_a_new_head() {
    let _serial = serial();
    let device = Device::flex();
    let base = tempfile::tempdir().unwrap();
    let config = TrainConfig {
        epochs: Some(1),
        ..quick(procedural(3, 20, 16))
    };
    train(&config, base.path(), &TrainOptions::default(), &device, &mut |_| {}).unwrap();
    let pretrained = RunDir::new(base.path()).load(&device).unwrap();

    // Five other classes of gray 20 px images (an ImageFolder tree), and a rate so small that
    // no weight can move: the fine-tuned convolutions are the run's.
    let data = tempfile::tempdir().unwrap();
    for class in 0..5u8 {
        let folder = data.path().join(format!("class{class}"));
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..10u8 {
            let image = image::GrayImage::from_fn(20, 20, |x, y| {
                image::Luma([(x as u8).wrapping_mul(class + 1).wrapping_add((y as u8) * i)])
            });
            image.save(folder.join(format!("{i}.png"))).unwrap();
        }
    }
    let tune = TrainConfig {
        data: DatasetSource::Folder {
            path: data.path().to_path_buf(),
            size: None,
        },
        epochs: None,
        steps: Some(5),
        pretrained: Some(base.path().to_path_buf()),
        learning_rate: 1e-12,
        weight_decay: 0.0,
        warmup_epochs: 0.0,
        ema_decay: 0.0,
        holdout_fraction: 0.0,
        checkpoints: Some(1),
        nesterov: false,
        ..quick(procedural(3, 20, 16))
    };
    let tuned_dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let options = TrainOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..TrainOptions::default()
    };
    let summary = train(&tune, tuned_dir.path(), &options, &device, &mut |_| {}).unwrap();
    // 50 images in batches of 32: one step per epoch, so five epochs; one checkpoint, the last.
    assert_eq!(summary.info.epochs, 5);
    assert!(summary.info.finished);
    assert_eq!(summary.history.len(), 1);
    assert_eq!(summary.history[0].epoch, 5);
    assert!(tuned_dir.path().join("checkpoint/epoch-0005").is_dir());
    // The run's input: size, stem, channels and normalisation.
    assert_eq!(summary.info.image_size, 16);
    assert_eq!(summary.info.model.stem, pretrained.info.model.stem);
    assert_eq!(summary.info.model.channels, 3);
    assert_eq!(summary.info.normalization, pretrained.info.normalization);
    let saved = RunDir::new(tuned_dir.path()).config().unwrap();
    assert_eq!((saved.epochs, saved.steps), (Some(5), None));
    let tuned = RunDir::new(tuned_dir.path()).load(&device).unwrap();
    assert_eq!(tuned.info.classes.len(), 5);
    assert_eq!(tuned.model.head.weight().shape().dims::<2>()[1], 5);
    assert_close(
        &conv_weights(tuned.model.body.clone()),
        &conv_weights(pretrained.model.body.clone()),
        "convolutions",
    );
    let fresh = tuned.info.model.init(&device).unwrap();
    assert_ne!(conv_weights(fresh.body), conv_weights(pretrained.model.body));

    // Refused, naming what is wrong: another network, a folder that holds no run.
    let other = tempfile::tempdir().unwrap();
    let err = train(
        &TrainConfig {
            model: Architecture::ResNet18,
            ..tune.clone()
        },
        &other.path().join("a"),
        &options,
        &device,
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("model") && err.contains("small"), "{err}");
    let err = train(
        &TrainConfig {
            pretrained: Some(other.path().join("nothing")),
            ..tune.clone()
        },
        &other.path().join("b"),
        &options,
        &device,
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no run folder"), "{err}");
    let err = TrainConfig {
        epochs: Some(2),
        ..tune
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(err.contains("steps"), "{err}");
}

/// Reads `metrics.jsonl` of a run.
fn metrics(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(RunDir::new(dir).metrics_path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn mixed_precision_trains_like_f32_on_real_cifar10() {
    use losslens_core::train::TrainPrecision;
    let _serial = serial();
    let Some(root) = unpacked("cifar10") else { return };
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cache");
    let options = TrainOptions {
        cache_dir: Some(cache),
        ..TrainOptions::default()
    };
    // 1,000 training and 500 holdout images, the same seed, steps and data for both.
    let config = |precision| TrainConfig {
        epochs: Some(2),
        batch_size: 50,
        data_limit: Some(2500),
        holdout_fraction: 0.2,
        train_limit: Some(1000),
        precision,
        ..quick(DatasetSource::Folder {
            path: root.clone(),
            size: None,
        })
    };
    let mut outcome = Vec::new();
    for precision in [TrainPrecision::F32, TrainPrecision::Mixed] {
        let out = tempfile::tempdir().unwrap();
        let summary = train(&config(precision), out.path(), &options, &Device::flex(), &mut |_| {}).unwrap();
        let last = summary.history.last().unwrap().clone();
        let m = metrics(out.path());
        assert_eq!(
            m[0]["precision"].as_str(),
            (precision == TrainPrecision::Mixed).then_some("mixed")
        );
        assert!(m[0]["first_step_seconds"].as_f64().is_some_and(|s| s > 0.0));
        outcome.push((last.train_loss, last.holdout_accuracy.unwrap()));
    }
    let ((loss32, acc32), (loss16, acc16)) = (outcome[0], outcome[1]);
    eprintln!("f32: loss {loss32:.4}, holdout {acc32:.4}; mixed: loss {loss16:.4}, holdout {acc16:.4}");
    assert!(
        (loss16 - loss32).abs() <= 0.05 * loss32,
        "training loss {loss16} vs f32's {loss32}"
    );
    assert!(
        (acc16 - acc32).abs() <= 0.02,
        "holdout accuracy {acc16} vs f32's {acc32}"
    );
}

#[test]
fn an_overflowing_loss_scale_skips_steps_and_resumes_where_it_was() {
    use losslens_core::train::TrainPrecision;
    let _serial = serial();
    // 2⁴⁰ overflows f16 in the backward pass: steps are skipped and the scale halves until the
    // gradients fit; no infinity ever reaches the weights.
    let config = TrainConfig {
        epochs: Some(2),
        batch_size: 8,
        warmup_epochs: 0.0,
        precision: TrainPrecision::Mixed,
        loss_scale: 2f64.powi(40),
        ..quick(procedural(4, 40, 16))
    };
    let out = tempfile::tempdir().unwrap();
    let options = TrainOptions {
        stop_after_epoch: Some(1),
        ..TrainOptions::default()
    };
    train(&config, out.path(), &options, &Device::flex(), &mut |_| {}).unwrap();
    let first = metrics(out.path());
    let skipped = first[0]["skipped_steps"].as_u64().unwrap();
    let scale = first[0]["loss_scale"].as_f64().unwrap();
    assert!(skipped > 0, "an overflowing scale skipped no step");
    assert!(scale < 2f64.powi(40) && scale >= 1.0, "scale {scale}");
    assert_eq!(
        scale,
        2f64.powi(40) / 2f64.powi(skipped as i32),
        "halved once per skipped step"
    );
    let model = RunDir::new(out.path()).load(&Device::flex()).unwrap().model;
    assert!(
        values(model).iter().flatten().all(|v| v.is_finite()),
        "a non-finite value reached the weights"
    );
    // Resumed, the run continues from the scale it had, not from the configured one.
    let resume = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    train(&config, out.path(), &resume, &Device::flex(), &mut |_| {}).unwrap();
    let both = metrics(out.path());
    assert_eq!(both.len(), 2);
    let resumed = both[1]["loss_scale"].as_f64().unwrap();
    let skipped_again = both[1]["skipped_steps"].as_u64().unwrap();
    assert!(
        resumed <= scale,
        "the resumed run restarted its scale ({resumed} after {scale})"
    );
    assert!(skipped_again < skipped, "the resumed run skipped as many steps again");
}

#[test]
fn without_a_holdout_the_run_trains_on_everything_and_keeps_its_last_epoch() {
    let _serial = serial();
    let config = TrainConfig {
        epochs: Some(2),
        holdout_fraction: 0.0,
        ..quick(procedural(3, 20, 16))
    };
    let out = tempfile::tempdir().unwrap();
    let summary = train(
        &config,
        out.path(),
        &TrainOptions::default(),
        &Device::flex(),
        &mut |_| {},
    )
    .unwrap();
    let info = &summary.info;
    assert_eq!(info.holdout_images, 0);
    assert_eq!(info.train_images, 60, "every training image");
    assert_eq!(info.best_epoch, Some(2), "no early stopping: the last epoch is kept");
    assert!(summary.history.iter().all(|r| r.holdout_accuracy.is_none()));
}

/// `keep_every` keeps the evaluated weights of every N-th epoch, checkpointed or not: without a
/// holdout the last one is the weights the run keeps as its own.
#[test]
fn weights_are_kept_every_n_epochs() {
    let _serial = serial();
    let config = TrainConfig {
        epochs: Some(4),
        holdout_fraction: 0.0,
        checkpoints: Some(1),
        keep_every: Some(2),
        ..quick(procedural(3, 20, 16))
    };
    let out = tempfile::tempdir().unwrap();
    train(
        &config,
        out.path(),
        &TrainOptions::default(),
        &Device::flex(),
        &mut |_| {},
    )
    .unwrap();
    let run = RunDir::new(out.path());
    assert_eq!(run.kept_epochs().unwrap(), [2, 4]);
    assert_eq!(
        std::fs::read(run.kept_path(4)).unwrap(),
        std::fs::read(run.model_path()).unwrap()
    );
    assert_ne!(
        std::fs::read(run.kept_path(2)).unwrap(),
        std::fs::read(run.model_path()).unwrap()
    );
    assert_eq!(run.config().unwrap().keep_every, Some(2));
    let zero = TrainConfig {
        keep_every: Some(0),
        ..config
    };
    let message = zero.validate().unwrap_err().to_string();
    assert!(message.contains("keep_every"), "{message}");
}

/// A combination of objectives (Table C.4) trains like a single one, and with AutoAugment and
/// Mixup (Table C.5): the cosine classifier on smoothed targets with dropout, on augmented and
/// mixed batches, a few dozen steps on real CIFAR-10 images. Its loss falls, its run folder
/// records the combination and the augmentations, and the network reloads with it.
#[test]
fn a_combined_objective_trains_with_autoaugment_and_mixup_on_real_cifar10() {
    let _serial = serial();
    let Some(root) = unpacked("cifar10") else { return };
    let out = tempfile::tempdir().unwrap();
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cache");
    let objective: ObjectiveConfig = "cosine-softmax+label-smoothing+dropout:keep-prob=0.8".parse().unwrap();
    let config = TrainConfig {
        objective,
        autoaugment: Some(Policy::Imagenet),
        mixup: Some(MixupConfig::default()),
        epochs: Some(3),
        batch_size: 32,
        train_limit: Some(352),
        holdout_fraction: 0.01,
        ..quick(DatasetSource::Folder { path: root, size: None })
    };
    let options = TrainOptions {
        cache_dir: Some(cache),
        ..TrainOptions::default()
    };
    // Unset epochs would take the longest of its terms' Table A.1 counts (label smoothing's).
    assert_eq!(paper_epochs_of(&objective), 180);
    let summary = train(&config, out.path(), &options, &Device::flex(), &mut |_| {}).unwrap();
    let losses: Vec<f64> = summary.history.iter().map(|r| r.train_loss).collect();
    eprintln!("{objective}: training loss by epoch {losses:?}");
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(losses[2] < losses[0], "the loss falls: {losses:?}");
    let run = RunDir::new(out.path());
    assert_eq!(run.config().unwrap().objective, objective);
    assert_eq!(run.config().unwrap().mixup, Some(MixupConfig { alpha: 0.2 }));
    assert_eq!(run.config().unwrap().autoaugment, Some(Policy::Imagenet));
    let trained = run.load(&Device::flex()).unwrap();
    assert_eq!(trained.objective.config(), &objective);
}

/// Every trained parameter of a module, flattened, in module order (each process keeps its own
/// batch-norm running statistics).
fn parameters<M: burn::module::Module>(module: M) -> Vec<f32> {
    losslens_core::model::trainable_values(&module).unwrap()
}

/// Training across processes (two threads through a collective here; MPI processes in the
/// command line's test) is, bit for bit, the data-parallel step of one process whose batch is
/// split between two devices: each computes its half, the gradients are summed, every process
/// steps alike, and only rank 0 writes. (Batch-norm running statistics, which only evaluation reads, stay each
/// process's own.)
#[test]
fn training_across_processes_matches_one_process_splitting_the_batch() {
    use losslens_core::train::collective::ThreadCollective;
    let _serial = serial();
    // No holdout: the last epoch's weights are kept (the holdout's choice would read each
    // process's own running statistics).
    let config = TrainConfig {
        epochs: Some(2),
        holdout_fraction: 0.0,
        ..quick(procedural(3, 40, 16))
    };
    let one = tempfile::tempdir().unwrap();
    // One CPU thread per process, so that every sum runs in the same order.
    let one_thread = || rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let a = one_thread()
        .install(|| {
            let split = TrainOptions {
                replicas: vec![Device::flex()],
                ..TrainOptions::default()
            };
            train(&config, one.path(), &split, &Device::flex(), &mut |_| {})
        })
        .unwrap();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let summaries: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = ThreadCollective::group(2)
            .into_iter()
            .zip(&dirs)
            .map(|(rank, dir)| {
                let (config, one_thread) = (&config, &one_thread);
                s.spawn(move || {
                    one_thread()
                        .install(|| {
                            let options = TrainOptions {
                                collective: Some(std::rc::Rc::new(rank)),
                                ..TrainOptions::default()
                            };
                            train(config, dir.path(), &options, &Device::flex(), &mut |_| {})
                        })
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        std::fs::read_dir(dirs[1].path()).unwrap().next().is_none(),
        "rank 1 writes nothing"
    );
    for summary in &summaries {
        for (x, y) in a.history.iter().zip(&summary.history) {
            assert!(
                (x.train_loss - y.train_loss).abs() < 1e-6 * x.train_loss,
                "{x:?}\n{y:?}"
            );
            assert_eq!(x.train_accuracy, y.train_accuracy);
        }
    }
    let expected = parameters(RunDir::new(one.path()).load(&Device::flex()).unwrap().model);
    let got = parameters(RunDir::new(dirs[0].path()).load(&Device::flex()).unwrap().model);
    assert_eq!(expected.len(), got.len());
    let worst = expected
        .iter()
        .zip(&got)
        .map(|(x, y)| (x - y).abs() / x.abs().max(1e-2))
        .fold(0.0f32, f32::max);
    eprintln!("two processes against one splitting the batch: weights differ by {worst:e} at most (relative)");
    assert!(worst == 0.0, "weights differ by {worst} (relative)");

    // A collective with replicas is refused.
    let group = ThreadCollective::group(1);
    let both = TrainOptions {
        replicas: vec![Device::flex()],
        collective: Some(std::rc::Rc::new(group[0].clone())),
        ..TrainOptions::default()
    };
    let fresh = tempfile::tempdir().unwrap();
    let e = train(&config, fresh.path(), &both, &Device::flex(), &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("nodes"), "{e}");
}

/// A run without a holdout (its best-epoch accuracy is NaN, null in `state.json`) resumes.
#[test]
fn a_run_without_a_holdout_resumes() {
    let _serial = serial();
    let config = TrainConfig {
        epochs: Some(2),
        holdout_fraction: 0.0,
        ..quick(procedural(3, 20, 16))
    };
    let dir = tempfile::tempdir().unwrap();
    let first = TrainOptions {
        stop_after_epoch: Some(1),
        ..TrainOptions::default()
    };
    train(&config, dir.path(), &first, &Device::flex(), &mut |_| {}).unwrap();
    let resume = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    let summary = train(&config, dir.path(), &resume, &Device::flex(), &mut |_| {}).unwrap();
    assert!(summary.info.finished && summary.history.len() == 2);
    assert_eq!(summary.info.best_epoch, Some(2), "the last epoch is kept");
}
