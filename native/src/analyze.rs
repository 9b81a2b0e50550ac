//! `losslens analyze`: representation analyses of feature files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use losslens_core::analysis::{self, CkaConfig, CkaEstimator, CkaForm, Classes, Distance, MinibatchCkaConfig};
use losslens_core::features::{FeatureFile, Layer, labels_from_array};

use std::collections::BTreeMap;

use serde::Serialize;

use crate::common::{ComputeArgs, print_report};
use crate::table::{Table, fmt};

/// Arguments of `losslens analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(subcommand)]
    command: AnalyzeCommand,
}

#[derive(Debug, Subcommand)]
enum AnalyzeCommand {
    /// Linear CKA between one layer of A and one layer of B (same examples, same order).
    Cka(CkaArgs),
    /// Minibatch CKA between every layer of A and every layer of B.
    CkaMatrix(CkaMatrixArgs),
    /// Class separation R² (cosine; mean-subtracted cosine and squared Euclidean variants).
    Separation(ClassArgs),
    /// Fraction of non-zero activations in each layer.
    Sparsity(SparsityArgs),
    /// Neural-collapse / simplex-ETF measurements (Table E.2).
    Collapse(WeightsArgs),
    /// Singular value spectra of the features, class centroids and classifier weights.
    Spectrum(SpectrumArgs),
}

#[derive(Debug, Args)]
struct CkaArgs {
    /// First feature file.
    a: PathBuf,
    /// Second feature file.
    b: PathBuf,
    /// Layer of A (and of B unless --layer-b); required when a file holds several.
    #[arg(long)]
    layer: Option<String>,
    /// Layer of B.
    #[arg(long)]
    layer_b: Option<String>,
    /// Use the unbiased HSIC estimator (Song et al. 2007) instead of the biased one.
    #[arg(long)]
    debiased: bool,
    /// Computation form (the result is the same).
    #[arg(long, value_enum, default_value_t = CkaForm::Auto)]
    form: CkaForm,
    #[command(flatten)]
    compute: ComputeArgs,
}

#[derive(Debug, Args)]
struct CkaMatrixArgs {
    /// Feature file of the first network (rows).
    a: PathBuf,
    /// Feature file of the second network (columns).
    b: PathBuf,
    /// Examples per minibatch (at least 4).
    #[arg(long, default_value_t = 1500)]
    batch_size: usize,
    /// Shuffle the examples with this seed before batching (advisable if sorted by class).
    #[arg(long)]
    shuffle_seed: Option<u64>,
    #[command(flatten)]
    compute: ComputeArgs,
}

/// Where labels come from.
#[derive(Debug, Args)]
struct LabelArgs {
    /// Read labels from this file (its `labels` array, or its only array) instead of the
    /// feature file's `labels`.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Number of classes (default: largest label + 1); every class needs an example.
    #[arg(long)]
    num_classes: Option<usize>,
}

#[derive(Debug, Args)]
struct ClassArgs {
    /// Feature file.
    file: PathBuf,
    /// Layer; required when the file holds several (see --all-layers).
    #[arg(long, conflicts_with = "all_layers")]
    layer: Option<String>,
    /// Analyse every layer in the file.
    #[arg(long)]
    all_layers: bool,
    #[command(flatten)]
    labels: LabelArgs,
    #[command(flatten)]
    compute: ComputeArgs,
}

#[derive(Debug, Args)]
struct SparsityArgs {
    /// Feature file.
    file: PathBuf,
    /// Only this layer (default: every layer).
    #[arg(long)]
    layer: Option<String>,
    #[command(flatten)]
    compute: ComputeArgs,
}

#[derive(Debug, Args)]
struct WeightsArgs {
    /// Feature file (penultimate-layer features and labels).
    file: PathBuf,
    /// Layer; required when the file holds several.
    #[arg(long)]
    layer: Option<String>,
    /// File holding the final-layer weights [classes, features] (default: the feature file).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Name of the weights array.
    #[arg(long, default_value = "weights")]
    weights_array: String,
    #[command(flatten)]
    labels: LabelArgs,
    #[command(flatten)]
    compute: ComputeArgs,
}

#[derive(Debug, Args)]
struct SpectrumArgs {
    #[command(flatten)]
    inner: WeightsArgs,
    /// Print at most this many singular values per spectrum in the table (JSON has all).
    #[arg(long, default_value_t = 10)]
    top: usize,
}

/// Runs `losslens analyze`.
pub fn run(args: AnalyzeArgs) -> Result<()> {
    match args.command {
        AnalyzeCommand::Cka(a) => cka(a),
        AnalyzeCommand::CkaMatrix(a) => cka_matrix(a),
        AnalyzeCommand::Separation(a) => separation(a),
        AnalyzeCommand::Sparsity(a) => sparsity(a),
        AnalyzeCommand::Collapse(a) => collapse(a),
        AnalyzeCommand::Spectrum(a) => spectrum(a),
    }
}

fn open(path: &Path) -> Result<FeatureFile> {
    Ok(FeatureFile::open(path)?)
}

fn block<T>(future: impl Future<Output = losslens_core::Result<T>>) -> Result<T> {
    Ok(pollster::block_on(future)?)
}

fn cka(args: CkaArgs) -> Result<()> {
    let (mut fa, mut fb) = (open(&args.a)?, open(&args.b)?);
    let x = fa.take_layer(args.layer.as_deref())?;
    let y = fb.take_layer(args.layer_b.as_deref().or(args.layer.as_deref()))?;
    let (compute, device) = args.compute.compute_on()?;
    let config = CkaConfig {
        estimator: if args.debiased {
            CkaEstimator::Debiased
        } else {
            CkaEstimator::Biased
        },
        form: args.form,
    };
    let result = block(analysis::linear_cka(&compute, &x, &y, &config))?;
    if args.compute.json {
        /// One side of the comparison.
        #[derive(Serialize)]
        struct Side<'a> {
            file: &'a Path,
            layer: &'a str,
            features: usize,
        }
        #[derive(Serialize)]
        struct Output<'a> {
            #[serde(flatten)]
            result: analysis::CkaResult,
            a: Side<'a>,
            b: Side<'a>,
        }
        fn side<'a>(file: &'a Path, layer: &'a Layer) -> Side<'a> {
            Side {
                file,
                layer: &layer.name,
                features: layer.cols,
            }
        }
        print_report(
            &args.compute,
            &device,
            Output {
                result,
                a: side(&args.a, &x),
                b: side(&args.b, &y),
            },
        )?;
    } else {
        let mut t = Table::new(["", "value"]);
        t.row(["A".to_string(), format!("{} ({} features)", x.origin, x.cols)]);
        t.row(["B".to_string(), format!("{} ({} features)", y.origin, y.cols)]);
        t.row(["examples".to_string(), result.n.to_string()]);
        t.row([
            "estimator".to_string(),
            format!("{:?}", result.estimator).to_lowercase(),
        ]);
        t.row(["linear CKA".to_string(), fmt(result.cka, 6)]);
        println!("{}", t.render());
    }
    Ok(())
}

fn cka_matrix(args: CkaMatrixArgs) -> Result<()> {
    let (mut fa, mut fb) = (open(&args.a)?, open(&args.b)?);
    let (la, lb) = (fa.take_layers()?, fb.take_layers()?);
    let (compute, device) = args.compute.compute_on()?;
    let config = MinibatchCkaConfig {
        batch_size: args.batch_size,
        shuffle_seed: args.shuffle_seed,
    };
    let m = block(analysis::minibatch_cka(&compute, &la, &lb, &config))?;
    if args.compute.json {
        #[derive(Serialize)]
        struct Output<'a> {
            rows: &'a [String],
            cols: &'a [String],
            cka: &'a [Vec<f64>],
            batches: usize,
            batch_size: usize,
            n: usize,
            a: &'a Path,
            b: &'a Path,
        }
        print_report(
            &args.compute,
            &device,
            Output {
                rows: &m.rows,
                cols: &m.cols,
                cka: &m.values,
                batches: m.batches,
                batch_size: m.batch_size,
                n: m.n,
                a: &args.a,
                b: &args.b,
            },
        )?;
    } else {
        println!(
            "minibatch CKA (unbiased HSIC), {} examples in {} batches of up to {}; rows: {}, columns: {}",
            m.n,
            m.batches,
            m.batch_size,
            args.a.display(),
            args.b.display()
        );
        let mut t = Table::new(std::iter::once(String::new()).chain(m.cols.iter().cloned()));
        for (name, row) in m.rows.iter().zip(&m.values) {
            t.row(std::iter::once(name.clone()).chain(row.iter().map(|v| fmt(*v, 3))));
        }
        println!("{}", t.render());
    }
    Ok(())
}

/// Labels for `file`'s examples: `--labels` or the file's own `labels`.
fn classes(file: &FeatureFile, labels: &LabelArgs) -> Result<Classes> {
    let values = match &labels.labels {
        Some(path) => {
            let lf = open(path)?;
            match lf.array(losslens_core::features::LABELS) {
                Some(_) => lf.labels()?,
                None => match lf.arrays.as_slice() {
                    [(name, array)] => labels_from_array(path, name, array)?,
                    _ => anyhow::bail!("{}: no `labels` array and more than one array", path.display()),
                },
            }
        }
        None => file.labels()?,
    };
    let source = labels.labels.as_deref().unwrap_or(&file.path).display().to_string();
    Classes::new(values, labels.num_classes).with_context(|| format!("labels of {source}"))
}

fn separation(args: ClassArgs) -> Result<()> {
    let mut file = open(&args.file)?;
    let classes = classes(&file, &args.labels)?;
    let layers = if args.all_layers {
        file.take_layers()?
    } else {
        vec![file.take_layer(args.layer.as_deref())?]
    };
    let (compute, device) = args.compute.compute_on()?;
    let mut results = Vec::new();
    for layer in &layers {
        let mut by_distance = Vec::new();
        for distance in Distance::ALL {
            by_distance.push(block(analysis::class_separation(&compute, layer, &classes, distance))?);
        }
        results.push((layer, by_distance));
    }
    if args.compute.json {
        /// One layer's R² under the three distances (Table E.1).
        #[derive(Serialize)]
        struct Entry<'a> {
            layer: &'a str,
            r2: f64,
            r2_mean_subtracted: f64,
            r2_euclidean: f64,
            within: f64,
            total: f64,
            features: usize,
        }
        #[derive(Serialize)]
        struct Output<'a> {
            file: &'a Path,
            n: usize,
            num_classes: usize,
            /// One layer: its entry's fields at the top level.
            #[serde(flatten, skip_serializing_if = "Option::is_none")]
            one: Option<Entry<'a>>,
            /// `--all-layers`: an entry per layer.
            #[serde(skip_serializing_if = "Option::is_none")]
            layers: Option<BTreeMap<&'a str, Entry<'a>>>,
        }
        fn entry<'a>(layer: &'a Layer, r: &[analysis::Separation]) -> Entry<'a> {
            Entry {
                layer: &layer.name,
                r2: r[0].r2,
                r2_mean_subtracted: r[1].r2,
                r2_euclidean: r[2].r2,
                within: r[0].within,
                total: r[0].total,
                features: layer.cols,
            }
        }
        let entries = results.iter().map(|(l, r)| (l.name.as_str(), entry(l, r)));
        let (one, layers) = if args.all_layers {
            (None, Some(entries.collect()))
        } else {
            (entries.map(|(_, e)| e).next(), None)
        };
        print_report(
            &args.compute,
            &device,
            Output {
                file: &args.file,
                n: classes.len(),
                num_classes: classes.num_classes(),
                one,
                layers,
            },
        )?;
    } else {
        println!(
            "class separation R² (Kornblith et al. 2021, eq. 11): {} examples, {} classes",
            classes.len(),
            classes.num_classes()
        );
        let mut t = Table::new(["layer", "cosine", "cosine (mean-subtracted)", "squared Euclidean"]);
        for (layer, r) in &results {
            t.row([layer.name.clone(), fmt(r[0].r2, 4), fmt(r[1].r2, 4), fmt(r[2].r2, 4)]);
        }
        println!("{}", t.render());
    }
    Ok(())
}

fn sparsity(args: SparsityArgs) -> Result<()> {
    let mut file = open(&args.file)?;
    let layers = match &args.layer {
        Some(name) => vec![file.take_layer(Some(name))?],
        None => file.take_layers()?,
    };
    let (compute, device) = args.compute.compute_on()?;
    let mut fractions = Vec::new();
    for layer in &layers {
        fractions.push(block(analysis::fraction_nonzero(&compute, layer))?);
    }
    if args.compute.json {
        #[derive(Serialize)]
        struct Output<'a> {
            file: &'a Path,
            /// Fraction of non-zero activations per layer.
            layers: BTreeMap<&'a str, f64>,
        }
        let layers = layers
            .iter()
            .map(|l| l.name.as_str())
            .zip(fractions.iter().copied())
            .collect();
        print_report(
            &args.compute,
            &device,
            Output {
                file: &args.file,
                layers,
            },
        )?;
    } else {
        let mut t = Table::new(["layer", "shape", "% non-zero"]);
        for (layer, f) in layers.iter().zip(&fractions) {
            t.row([layer.name.clone(), format!("{:?}", layer.shape), fmt(100.0 * f, 2)]);
        }
        println!("{}", t.render());
    }
    Ok(())
}

/// Layer, classes and optional weights for `collapse` and `spectrum`.
fn layer_classes_weights(args: &WeightsArgs) -> Result<(Layer, Classes, Option<Layer>)> {
    let mut file = open(&args.file)?;
    let classes = classes(&file, &args.labels)?;
    let layer = file.take_layer(args.layer.as_deref())?;
    let weights = match &args.weights {
        Some(path) => {
            let wf = open(path)?;
            let name = if wf.array(&args.weights_array).is_some() || wf.arrays.len() != 1 {
                args.weights_array.clone()
            } else {
                wf.arrays[0].0.clone()
            };
            Some(wf.weights(&name)?)
        }
        None if file.array(&args.weights_array).is_some() => Some(file.weights(&args.weights_array)?),
        None => None,
    };
    Ok((layer, classes, weights))
}

fn collapse(args: WeightsArgs) -> Result<()> {
    let (layer, classes, weights) = layer_classes_weights(&args)?;
    let (compute, device) = args.compute.compute_on()?;
    let c = block(analysis::neural_collapse(&compute, &layer, &classes, weights.as_ref()))?;
    if args.compute.json {
        #[derive(Serialize)]
        struct Output<'a> {
            file: &'a Path,
            layer: &'a str,
            n: usize,
            num_classes: usize,
            equinorm_means: f64,
            equiangular_means: f64,
            max_angle_means: f64,
            equinorm_weights: Option<f64>,
            equiangular_weights: Option<f64>,
            max_angle_weights: Option<f64>,
            self_duality: Option<f64>,
            nc1: f64,
            rank_between: usize,
        }
        print_report(
            &args.compute,
            &device,
            Output {
                file: &args.file,
                layer: &layer.name,
                n: classes.len(),
                num_classes: c.num_classes,
                equinorm_means: c.means.equinorm,
                equiangular_means: c.means.equiangular,
                max_angle_means: c.means.max_angle,
                equinorm_weights: c.weights.map(|w| w.equinorm),
                equiangular_weights: c.weights.map(|w| w.equiangular),
                max_angle_weights: c.weights.map(|w| w.max_angle),
                self_duality: c.self_duality,
                nc1: c.nc1,
                rank_between: c.rank_between,
            },
        )?;
    } else {
        println!(
            "neural collapse (Papyan et al. 2020; Table E.2): {}, {} examples, {} classes",
            layer.origin,
            classes.len(),
            c.num_classes
        );
        let w = |f: fn(&analysis::SimplexGeometry) -> f64| c.weights.as_ref().map_or("-".into(), |g| fmt(f(g), 4));
        let mut t = Table::new(["quantity", "class means", "classifier"]);
        t.row([
            "Std(‖v‖)/Avg(‖v‖)".to_string(),
            fmt(c.means.equinorm, 4),
            w(|g| g.equinorm),
        ]);
        t.row([
            "Std(cos(v_c, v_c'))".to_string(),
            fmt(c.means.equiangular, 4),
            w(|g| g.equiangular),
        ]);
        t.row([
            "Avg|cos + 1/(C-1)|".to_string(),
            fmt(c.means.max_angle, 4),
            w(|g| g.max_angle),
        ]);
        t.row([
            "‖W/‖W‖ - M/‖M‖‖²".to_string(),
            "".into(),
            c.self_duality.map_or("-".into(), |v| fmt(v, 4)),
        ]);
        t.row(["Tr(Σ_W Σ_B†)/C".to_string(), fmt(c.nc1, 4), String::new()]);
        println!("{}", t.render());
    }
    Ok(())
}

fn spectrum(args: SpectrumArgs) -> Result<()> {
    let inner = &args.inner;
    let (layer, classes, weights) = layer_classes_weights(inner)?;
    let (compute, device) = inner.compute.compute_on()?;
    let s = block(analysis::spectra(&compute, &layer, Some(&classes), weights.as_ref()))?;
    if inner.compute.json {
        #[derive(Serialize)]
        struct Output<'a> {
            file: &'a Path,
            layer: &'a str,
            #[serde(flatten)]
            spectra: &'a analysis::Spectra,
        }
        print_report(
            &inner.compute,
            &device,
            Output {
                file: &inner.file,
                layer: &layer.name,
                spectra: &s,
            },
        )?;
    } else {
        println!(
            "singular value spectra of {} ({} examples, {} features)",
            layer.origin, layer.rows, layer.cols
        );
        let mut t = Table::new(["matrix", "effective rank", "top share", "largest singular values"]);
        let mut add = |name: &str, sp: &analysis::Spectrum| {
            let top: Vec<String> = sp
                .singular_values
                .iter()
                .take(args.top)
                .map(|v| format!("{v:.4}"))
                .collect();
            t.row([
                name.to_string(),
                fmt(sp.effective_rank, 2),
                fmt(sp.top_fraction, 3),
                top.join(" "),
            ]);
        };
        add("features (centered)", &s.features);
        if let Some(sp) = &s.class_means {
            add("class centroids", sp);
        }
        if let Some(sp) = &s.weights {
            add("classifier weights", sp);
        }
        println!("{}", t.render());
    }
    Ok(())
}
