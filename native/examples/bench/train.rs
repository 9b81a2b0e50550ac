//! Training throughput: images per second of full training steps (augmentation on the device,
//! forward, backward, SGD with Nesterov momentum and weight decay, EMA update) for a network at
//! several batch sizes, and the same steps in PyTorch when it is installed on the machine
//! (`native/examples/bench_train_torch.py`, the identical network and optimiser), with the ratio.
//!
//! ```text
//! scripts/bench train [--model resnet18] [--batches 128,512] [--image-size 32] \
//!     [--steps 20] [--warmup 3] [--precision f32|mixed|both] [--device auto|cpu|gpu|cuda] \
//!     [--breakdown] [--no-torch]
//! ```
//!
//! `--precision mixed` times the mixed-precision step of the trainer (f16 convolutions on f16
//! copies of the f32 weights, the loss scaled by 2¹⁶ and the gradients unscaled and checked).
//! With `$LOSSLENS_BENCH_JSON` set, every measurement is also appended there as a JSON line
//! (`scripts/gpu-bench` reads them).

use std::time::Instant;

use crate::common::{kernel_cache, python, record, script};
use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{FloatDType, Int, Tensor, TensorData};
use losslens_core::data::augment::{Augmentation, ChannelStats, batch, train_crop};
use losslens_core::data::{ProceduralConfig, procedural};
use losslens_core::device::{DeviceChoice, select};
use losslens_core::model::{Architecture, ModelConfig, Stem};
use losslens_core::objective::{ObjectiveConfig, ObjectiveKind};
use losslens_core::rng::SplitMix64;
use losslens_core::train::ema::Ema;
use losslens_core::train::mixed::unscale_gradients;

struct Options {
    model: Architecture,
    batches: Vec<usize>,
    image_size: usize,
    steps: usize,
    warmup: usize,
    device: DeviceChoice,
    breakdown: bool,
    torch: bool,
    mixed: Vec<bool>,
}

fn options(args: Vec<String>) -> Options {
    let mut o = Options {
        model: Architecture::ResNet18,
        batches: vec![128, 512],
        image_size: 32,
        steps: 20,
        warmup: 3,
        device: DeviceChoice::Auto,
        breakdown: false,
        torch: true,
        mixed: vec![false],
    };
    let mut i = 0;
    while i < args.len() {
        let value = || args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--model" => o.model = value().parse().expect("--model"),
            "--batches" => o.batches = value().split(',').map(|b| b.parse().expect("--batches")).collect(),
            "--image-size" => o.image_size = value().parse().expect("--image-size"),
            "--steps" => o.steps = value().parse().expect("--steps"),
            "--warmup" => o.warmup = value().parse().expect("--warmup"),
            "--device" => {
                o.device = match value().as_str() {
                    "cpu" => DeviceChoice::Cpu,
                    "gpu" => DeviceChoice::Gpu,
                    #[cfg(feature = "cuda")]
                    "cuda" => DeviceChoice::Cuda,
                    _ => DeviceChoice::Auto,
                }
            }
            "--precision" => {
                o.mixed = match value().as_str() {
                    "f32" => vec![false],
                    "mixed" => vec![true],
                    "both" => vec![false, true],
                    other => panic!("--precision f32|mixed|both, not {other}"),
                }
            }
            "--breakdown" => {
                o.breakdown = true;
                i -= 1;
            }
            "--no-torch" => {
                o.torch = false;
                i -= 1;
            }
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    o
}

fn sync(t: Tensor<1>) -> f32 {
    t.into_data().try_to_vec::<f32>().expect("f32")[0]
}

/// `bench train [ARGS]`.
pub fn run(args: Vec<String>) {
    let o = options(args);
    kernel_cache();
    let selected = pollster::block_on(select(o.device)).expect("device");
    let device = selected.device.clone();
    println!(
        "# training throughput: {} ({} stem), {} px, {} timed steps after {} warm-up steps, on {}",
        o.model,
        Stem::for_image_size(o.image_size).name(),
        o.image_size,
        o.steps,
        o.warmup,
        selected.name
    );
    let max_batch = *o.batches.iter().max().expect("a batch size");
    let data = procedural(&ProceduralConfig {
        classes: 10,
        per_class: max_batch.div_ceil(10),
        size: o.image_size,
        seed: 0,
        noise: 0.15,
    })
    .expect("data");
    let stats = ChannelStats {
        mean: vec![0.5; 3],
        std: vec![0.25; 3],
    };
    let augmentation = Augmentation::for_image_size(o.image_size);
    let objective = ObjectiveConfig::default_for(ObjectiveKind::Softmax)
        .init()
        .expect("objective");
    let mut results = Vec::new();
    for (&b, &mixed) in o.batches.iter().flat_map(|b| o.mixed.iter().map(move |m| (b, m))) {
        let config = ModelConfig::new(o.model, Stem::for_image_size(o.image_size), 10);
        let autodiff = device.clone().autodiff();
        let mut model = config.init(&device).expect("model").fork(&autodiff).train();
        let mut ema = Ema::new(&model, 0.9999, 0);
        let mut optimizer = SgdConfig::new()
            .with_momentum(Some(MomentumConfig {
                momentum: 0.9,
                dampening: 0.0,
                nesterov: true,
            }))
            .with_weight_decay(Some(WeightDecayConfig::new(5e-5)))
            .init();
        let mut rng = SplitMix64::new(1);
        let indices: Vec<usize> = (0..b).collect();
        let labels: Vec<i64> = indices.iter().map(|&i| data.labels[i] as i64).collect();
        let mut phases = [0f64; 4];
        let mut started = Instant::now();
        let mut first_step = 0.0;
        for step in 0..o.warmup + o.steps {
            if step == o.warmup {
                started = Instant::now();
                phases = [0.0; 4];
            }
            let t0 = Instant::now();
            let crops: Vec<_> = indices
                .iter()
                .map(|&i| {
                    let [h, w] = data.size(i);
                    train_crop(&augmentation, h, w, o.image_size, &mut rng)
                })
                .collect();
            let images = batch(&data, &indices, &crops, o.image_size, &stats, &autodiff);
            let targets = Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [b]), &autodiff);
            if o.breakdown {
                sync(images.clone().inner().sum().reshape([1]));
            }
            let t1 = Instant::now();
            let dtype = mixed.then_some(FloatDType::F16);
            let out = objective.forward(model.features_in(images, dtype), &model.head, targets);
            let loss = out.loss.clone();
            let scale = if mixed { 65_536.0 } else { 1.0 };
            let grads = GradientsParams::from_grads(out.loss.mul_scalar(scale).backward(), &model);
            let (grads, finite) = if mixed {
                unscale_gradients(grads, &model, scale)
            } else {
                (grads, true)
            };
            if o.breakdown {
                sync(loss.clone().inner());
            }
            let t2 = Instant::now();
            if finite {
                model = optimizer.step(0.1, model, grads);
            }
            if o.breakdown {
                sync(model.head.linear.weight.val().inner().sum().reshape([1]));
            }
            let t3 = Instant::now();
            ema.update(&model);
            let last = sync(loss.inner());
            let t4 = Instant::now();
            assert!(last.is_finite(), "loss {last}");
            for (p, d) in phases.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3]) {
                *p += d.as_secs_f64();
            }
            if step == 0 {
                first_step = (t4 - t0).as_secs_f64();
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let rate = (b * o.steps) as f64 / seconds;
        let precision = if mixed { "mixed" } else { "f32" };
        println!("losslens-{precision} batch {b:>4}: {rate:>9.1} images/s  (first step {first_step:.2} s)");
        record(serde_json::json!({
            "implementation": format!("losslens-{precision}"), "model": o.model.name(),
            "image_size": o.image_size, "batch": b, "images_per_second": rate,
            "first_step_seconds": first_step, "device": selected.name,
        }));
        if o.breakdown {
            let per = |p: f64| 1000.0 * p / o.steps as f64;
            println!(
                "          per step: data {:.1} ms, forward+backward {:.1} ms, optimiser {:.1} ms, EMA {:.1} ms",
                per(phases[0]),
                per(phases[1]),
                per(phases[2]),
                per(phases[3])
            );
        }
        if !mixed {
            results.push((b, rate));
        }
    }
    if !o.torch {
        return;
    }
    let script = script("bench_train_torch.py");
    let batches = o.batches.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(",");
    let output = std::process::Command::new(python())
        .arg(script)
        .args(["--model", o.model.name(), "--batches", &batches])
        .args(["--image-size", &o.image_size.to_string()])
        .args(["--steps", &o.steps.to_string(), "--warmup", &o.warmup.to_string()])
        .args(["--device", if selected.kind == "gpu" { "cuda" } else { "cpu" }])
        .output();
    match output {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            for line in text.lines() {
                println!("{line}");
                // "pytorch-<mode> batch B: R images/s"
                if let Some((head, rest)) = line.split_once(':')
                    && let Some(b) = head.split_whitespace().last().and_then(|b| b.parse::<usize>().ok())
                    && let Some(r) = rest.split_whitespace().next().and_then(|r| r.parse::<f64>().ok())
                    && let Some((_, ours)) = results.iter().find(|(bb, _)| *bb == b)
                {
                    println!(
                        "          ratio losslens / {}: {:.3}",
                        head.split_whitespace().next().unwrap_or("torch"),
                        ours / r
                    );
                }
                if let Some((head, rest)) = line.split_once(':')
                    && let Some(b) = head.split_whitespace().last().and_then(|b| b.parse::<usize>().ok())
                    && let Some(r) = rest.split_whitespace().next().and_then(|r| r.parse::<f64>().ok())
                {
                    record(serde_json::json!({
                        "implementation": head.split_whitespace().next().unwrap_or("pytorch"),
                        "model": o.model.name(), "image_size": o.image_size, "batch": b,
                        "images_per_second": r, "device": selected.name,
                    }));
                }
            }
        }
        Ok(out) => println!(
            "# PyTorch comparison skipped: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("python3 failed")
        ),
        Err(e) => println!("# PyTorch comparison skipped: {e}"),
    }
}
