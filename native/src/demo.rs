//! `losslens demo`: a self-contained tour of the analysis engine that needs no download.
//!
//! It builds a labelled data set of Gaussian class clusters, passes it through two randomly
//! initialised ReLU networks of different widths (He initialisation, different seeds), taps every
//! layer, writes both as `.npz` feature files, and runs every analysis on them — the same
//! commands a user runs on features extracted from their own models.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::{Tensor, TensorData, activation::relu};
use clap::Args;
use losslens_core::analysis::{self, Classes, Distance, MinibatchCkaConfig};
use losslens_core::features::{Array, FeatureFile, Layer};
use losslens_core::rng::SplitMix64;
use serde_json::json;

use crate::common::ComputeArgs;
use crate::table::{Table, fmt};

/// Arguments of `losslens demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the two feature files.
    #[arg(long, default_value = "losslens-demo")]
    out: PathBuf,
    /// Examples per class.
    #[arg(long, default_value_t = 200)]
    per_class: usize,
    /// Number of classes.
    #[arg(long, default_value_t = 10)]
    classes: usize,
    #[command(flatten)]
    compute: ComputeArgs,
}

/// Input dimension of the synthetic data.
const INPUT_DIM: usize = 64;
/// Distance scale of the class centres relative to the unit within-class noise.
const CENTRE_SCALE: f64 = 1.5;

/// Runs the demo.
pub fn run(args: DemoArgs) -> Result<()> {
    anyhow::ensure!(args.classes >= 3, "--classes must be at least 3");
    anyhow::ensure!(args.per_class >= 2, "--per-class must be at least 2");
    let (compute, device) = args.compute.compute_on()?;
    let n = args.classes * args.per_class;
    println!(
        "losslens demo on {}: {n} examples of {} Gaussian classes in {INPUT_DIM} dimensions,",
        device.name, args.classes
    );
    println!("through two random ReLU networks (widths 256-128-64 and 512-256-32).\n");

    let mut rng = SplitMix64::new(0x5EED);
    let centres: Vec<f64> = (0..args.classes * INPUT_DIM)
        .map(|_| CENTRE_SCALE * rng.normal())
        .collect();
    let labels: Vec<usize> = (0..n).map(|i| i % args.classes).collect();
    let inputs: Vec<f64> = (0..n * INPUT_DIM)
        .map(|idx| centres[labels[idx / INPUT_DIM] * INPUT_DIM + idx % INPUT_DIM] + rng.normal())
        .collect();

    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut paths = Vec::new();
    for (name, widths, seed) in [("net_a", [256, 128, 64], 1u64), ("net_b", [512, 256, 32], 2)] {
        let layers = random_relu_network(&compute, &inputs, n, &widths, seed)?;
        let mut arrays: Vec<(String, Array)> = layers
            .iter()
            .map(|l| {
                let data = match &l.data {
                    losslens_core::features::FloatData::F32(v) => v.clone(),
                    losslens_core::features::FloatData::F64(v) => v.iter().map(|&x| x as f32).collect(),
                };
                (l.name.clone(), Array::from_f32(l.rows, l.cols, data))
            })
            .collect();
        arrays.push(("labels".into(), Array::from_labels(&labels)));
        let metadata = json!({
            "model": format!("random ReLU MLP {widths:?}"), "objective": "none (random init)",
            "seed": seed, "dataset": "synthetic Gaussian classes", "split": "all",
            "layers": layers.iter().map(|l| json!({"name": l.name, "shape": l.shape})).collect::<Vec<_>>(),
        });
        let path = args.out.join(format!("{name}.npz"));
        FeatureFile::new(&path, arrays, Some(metadata)).save(&path)?;
        paths.push(path);
    }
    println!("wrote {} and {}\n", paths[0].display(), paths[1].display());

    let a = FeatureFile::open(&paths[0])?;
    let b = FeatureFile::open(&paths[1])?;
    let (la, lb) = (a.layers()?, b.layers()?);
    let classes = Classes::new(a.labels()?, None)?;

    let config = MinibatchCkaConfig {
        batch_size: 500,
        shuffle_seed: Some(0),
    };
    let m = block_on(analysis::minibatch_cka(&compute, &la, &lb, &config))?;
    println!("minibatch CKA, net_a layers (rows) vs net_b layers (columns):");
    let mut t = Table::new(std::iter::once(String::new()).chain(m.cols.iter().cloned()));
    for (name, row) in m.rows.iter().zip(&m.values) {
        t.row(std::iter::once(name.clone()).chain(row.iter().map(|v| fmt(*v, 3))));
    }
    println!("{}\n", t.render());

    println!("per layer of net_a:");
    let mut t = Table::new(["layer", "% non-zero", "R² cosine", "R² mean-sub.", "R² sq. Euclid."]);
    for layer in &la {
        let sparsity = block_on(analysis::fraction_nonzero(&compute, layer))?;
        let mut row = vec![layer.name.clone(), fmt(100.0 * sparsity, 1)];
        for distance in Distance::ALL {
            row.push(fmt(
                block_on(analysis::class_separation(&compute, layer, &classes, distance))?.r2,
                4,
            ));
        }
        t.row(row);
    }
    println!("{}\n", t.render());

    let last = la.last().expect("three layers");
    let c = block_on(analysis::neural_collapse(&compute, last, &classes, None))?;
    let s = block_on(analysis::spectra(&compute, last, Some(&classes), None))?;
    println!(
        "{}: Tr(Σ_W Σ_B†)/C = {:.3}, class-mean equinorm {:.3}, equiangularity {:.3}; effective rank {:.1} (features), {:.1} (centroids)\n",
        last.name,
        c.nc1,
        c.means.equinorm,
        c.means.equiangular,
        s.features.effective_rank,
        s.class_means.as_ref().map_or(0.0, |sp| sp.effective_rank)
    );
    println!("The same analyses on your own features (e.g. saved with numpy.savez):");
    println!(
        "  losslens analyze cka-matrix {} {}",
        paths[0].display(),
        paths[1].display()
    );
    println!(
        "  losslens analyze separation {} --layer penultimate",
        paths[0].display()
    );
    println!("  losslens analyze sparsity {} --json", paths[0].display());
    Ok(())
}

fn block_on<T>(future: impl Future<Output = losslens_core::Result<T>>) -> Result<T> {
    Ok(pollster::block_on(future)?)
}

/// Activations of every layer of a random ReLU MLP with He-initialised weights.
///
/// # Shapes
/// - `inputs`: `[n, INPUT_DIM]` row-major; returns one `[n, width]` layer per width
fn random_relu_network(
    compute: &losslens_core::Compute,
    inputs: &[f64],
    n: usize,
    widths: &[usize; 3],
    seed: u64,
) -> Result<Vec<Layer>> {
    let mut rng = SplitMix64::new(seed);
    let names = ["block1", "block2", "penultimate"];
    let mut h: Tensor<2> = compute.matrix(inputs.to_vec(), n, INPUT_DIM);
    let mut fan_in = INPUT_DIM;
    let mut layers = Vec::new();
    for (&width, name) in widths.iter().zip(names) {
        let std = (2.0 / fan_in as f64).sqrt();
        let w: Vec<f64> = (0..fan_in * width).map(|_| std * rng.normal()).collect();
        let w = Tensor::<2>::from_data(
            TensorData::new(w, [fan_in, width]),
            (&compute.device, compute.precision.dtype()),
        );
        h = relu(h.matmul(w)); // [n, width]
        let values = pollster::block_on(compute.read(h.clone()))?;
        layers.push(Layer::from_f64(name, n, width, values));
        fan_in = width;
    }
    Ok(layers)
}
