//! Times losslens' analyses against numpy on the same data in the same run and prints the ratios.
//!
//! ```text
//! scripts/bench analyses [--device cpu|gpu] [--repeats 3] [--quick]
//! ```
//!
//! Workloads (the sizes of the losslens analysis issue):
//! - linear CKA, 10,000 × 2,048 vs 10,000 × 2,048 (feature-space form, biased);
//! - minibatch CKA, 17 × 17 layers of 3,000 examples × 512 features, minibatch 1,500;
//! - cosine class separation R², 50,000 × 2,048 with 100 classes.
//!
//! The data are written as `.npy` files to a temporary folder and `native/examples/bench_numpy.py` times numpy's version of each estimator on them; both values are printed, so the
//! comparison is also a correctness check. Times are the best of `--repeats` runs, including the
//! upload to the device and the read-back of the result, excluding file loading.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::common::{kernel_cache, python, record, script};
use losslens_core::analysis::{self, CkaConfig, Classes, Distance, MinibatchCkaConfig};
use losslens_core::device::{DeviceChoice, select};
use losslens_core::features::{Array, Layer, npy_bytes};
use losslens_core::rng::SplitMix64;
use losslens_core::{Compute, Precision};

struct Args {
    device: DeviceChoice,
    repeats: usize,
    quick: bool,
}

fn parse_args(raw: Vec<String>) -> Args {
    let mut args = Args {
        device: DeviceChoice::Cpu,
        repeats: 3,
        quick: false,
    };
    let mut it = raw.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--device" => {
                args.device = match it.next().as_deref() {
                    Some("gpu") => DeviceChoice::Gpu,
                    Some("auto") => DeviceChoice::Auto,
                    _ => DeviceChoice::Cpu,
                }
            }
            "--repeats" => args.repeats = it.next().and_then(|v| v.parse().ok()).unwrap_or(3),
            "--quick" => args.quick = true,
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

/// Deterministic pseudo-random features (SplitMix64, uniform in [-1, 1) plus structure).
fn features(rows: usize, cols: usize, seed: u64, labels: Option<&[usize]>) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..rows * cols)
        .map(|i| {
            let class_signal = labels.map_or(0.0, |l| if (i % cols) % 100 == l[i / cols] { 2.0 } else { 0.0 });
            ((2.0 * rng.uniform() - 1.0) as f32 + class_signal).max(0.0) // post-ReLU-like, non-negative
        })
        .collect()
}

fn save(dir: &Path, name: &str, array: &Array) {
    std::fs::write(dir.join(format!("{name}.npy")), npy_bytes(array)).expect("write benchmark data");
}

fn best_of<T>(repeats: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut value = None;
    for _ in 0..repeats {
        let t = Instant::now();
        value = Some(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, value.expect("at least one repeat"))
}

fn block_on<T>(future: impl Future<Output = losslens_core::Result<T>>) -> T {
    pollster::block_on(future).expect("analysis")
}

/// `bench analyses [ARGS]`.
pub fn run(raw: Vec<String>) {
    let args = parse_args(raw);
    let scale = if args.quick { 10 } else { 1 };
    kernel_cache();
    let selected = pollster::block_on(select(args.device)).expect("device");
    let compute = Compute::new(selected.device, Precision::F32);
    let dir = tempfile::tempdir().expect("temp dir");

    // Workloads: each generated once, saved for numpy, kept for losslens.
    let layer = |name: &str, rows: usize, cols: usize, data: Vec<f32>| {
        save(dir.path(), name, &Array::from_f32(rows, cols, data.clone()));
        Layer::from_f32(name, rows, cols, data)
    };
    let (n_cka, p_cka) = (10_000 / scale, 2_048);
    let x = layer("cka_x", n_cka, p_cka, features(n_cka, p_cka, 1, None));
    let y = layer("cka_y", n_cka, p_cka, features(n_cka, p_cka, 2, None));

    let (layers, n_mb, p_mb, batch) = (17, 3_000 / scale, 512, 1_500 / scale);
    let mb = |side: &str, seed: u64| -> Vec<Layer> {
        (0..layers)
            .map(|l| {
                layer(
                    &format!("mb_{side}{l}"),
                    n_mb,
                    p_mb,
                    features(n_mb, p_mb, seed + l as u64, None),
                )
            })
            .collect()
    };
    let (mb_a, mb_b) = (mb("a", 100), mb("b", 200));
    std::fs::write(dir.path().join("layers.txt"), layers.to_string()).unwrap();
    std::fs::write(dir.path().join("batch.txt"), batch.to_string()).unwrap();

    let (n_sep, p_sep, k) = (50_000 / scale, 2_048, 100);
    let labels: Vec<usize> = (0..n_sep).map(|i| (i * 37) % k).collect();
    let sep = layer("sep_x", n_sep, p_sep, features(n_sep, p_sep, 3, Some(&labels)));
    save(dir.path(), "sep_labels", &Array::from_labels(&labels));
    let classes = Classes::new(labels, None).expect("labels");

    // losslens.
    eprintln!("timing losslens on {} ...", selected.name);
    let config = CkaConfig::default();
    let (t_cka, cka) = best_of(args.repeats, || {
        block_on(analysis::linear_cka(&compute, &x, &y, &config)).cka
    });
    let mb_config = MinibatchCkaConfig {
        batch_size: batch,
        shuffle_seed: None,
    };
    let (t_mb, m) = best_of(args.repeats, || {
        block_on(analysis::minibatch_cka(&compute, &mb_a, &mb_b, &mb_config))
    });
    let (t_sep, r2) = best_of(args.repeats, || {
        block_on(analysis::class_separation(&compute, &sep, &classes, Distance::Cosine)).r2
    });

    // numpy, same data, same run.
    eprintln!("timing numpy ...");
    let script = script("bench_numpy.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(dir.path())
        .arg(args.repeats.to_string())
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output();
    // A missing baseline is reported, not fatal: losslens' own times are still printed.
    let np: serde_json::Value = match out {
        Ok(out) if out.status.success() => serde_json::from_slice(&out.stdout).expect("numpy JSON"),
        Ok(out) => {
            let reason = String::from_utf8_lossy(&out.stderr);
            println!(
                "# numpy baseline not measured: {}",
                reason.lines().last().unwrap_or("failed")
            );
            serde_json::Value::Null
        }
        Err(e) => {
            println!("# numpy baseline not measured: {e}");
            serde_json::Value::Null
        }
    };
    let f = |k: &str| np[k].as_f64().unwrap_or(f64::NAN);
    let np_mb00 = np["minibatch"][0][0].as_f64().unwrap_or(f64::NAN);

    println!(
        "losslens ({}, f32) vs numpy {} ({} threads available), best of {}:",
        selected.name,
        np["numpy"].as_str().unwrap_or("?"),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        args.repeats
    );
    println!(
        "{:<46} {:>11} {:>11} {:>8}  values (losslens / numpy)",
        "workload", "losslens s", "numpy s", "speedup"
    );
    let row = |name: &str, ours: f64, theirs: f64, values: String| {
        println!(
            "{name:<46} {ours:>11.3} {theirs:>11.3} {:>7.2}x  {values}",
            theirs / ours
        );
        record(serde_json::json!({
            "benchmark": name, "device": selected.name, "losslens_seconds": ours,
            "baseline": "numpy", "baseline_seconds": theirs.is_finite().then_some(theirs),
            "speedup": theirs.is_finite().then_some(theirs / ours),
        }));
    };
    row(
        &format!("CKA {n_cka}x{p_cka} vs {n_cka}x{p_cka}"),
        t_cka,
        f("cka_s"),
        format!("{cka:.6} / {:.6}", f("cka")),
    );
    row(
        &format!("minibatch CKA {layers}x{layers} layers, {n_mb}x{p_mb}, m={batch}"),
        t_mb,
        f("minibatch_s"),
        format!("[0][0] {:.6} / {np_mb00:.6}", m.values[0][0]),
    );
    row(
        &format!("R² cosine {n_sep}x{p_sep}, {k} classes"),
        t_sep,
        f("separation_s"),
        format!("{r2:.6} / {:.6}", f("r2")),
    );
}
