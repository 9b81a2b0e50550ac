//! `losslens probe`: linear and kNN transfer probes on fixed features; the linear probe of a
//! multi-label target (a 0/1 `labels` matrix) fits one logistic regression per class and reports
//! ROC AUC (Table D.1).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use losslens_core::features::{FeatureFile, LABELS, Layer};
use losslens_core::probe::metrics::Measure;
use losslens_core::probe::{
    KnnConfig, LabelMatrix, LbfgsConfig, LinearProbeConfig, TieBreak, Vote, knn_probe, linear_probe, multilabel_probe,
};
use serde::Serialize;

use crate::common::{ComputeArgs, print_report};
use crate::table::{Table, fmt};

/// Arguments of `losslens probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(subcommand)]
    command: ProbeCommand,
}

#[derive(Debug, Subcommand)]
enum ProbeCommand {
    /// L2-regularised multinomial logistic regression (L-BFGS) with λ chosen on a validation split;
    /// for multi-label files (`labels` a 0/1 matrix [examples, classes]) one binary logistic
    /// regression per class, each class's λ chosen by validation ROC AUC, reported as ROC AUC.
    Linear(LinearArgs),
    /// k-nearest neighbours on cosine similarity with k chosen by leave-one-out accuracy.
    Knn(KnnArgs),
}

/// The train/test feature files.
#[derive(Debug, Args)]
struct Files {
    /// Training features (with a `labels` array).
    #[arg(long)]
    train: PathBuf,
    /// Test features (with a `labels` array).
    #[arg(long)]
    test: PathBuf,
    /// Layer of both files; required when they hold several.
    #[arg(long)]
    layer: Option<String>,
    /// The accuracy λ (linear) or k (kNN) is chosen by: top-1, or mean per-class accuracy for
    /// unbalanced datasets.
    #[arg(long, value_enum, default_value_t = Measure::Top1)]
    select_by: Measure,
}

#[derive(Debug, Args)]
struct LinearArgs {
    #[command(flatten)]
    files: Files,
    /// Number of log-spaced λ values on the path.
    #[arg(long, default_value_t = 45)]
    lambdas: usize,
    /// Smallest λ of the path.
    #[arg(long, default_value_t = 1e-6)]
    lambda_min: f64,
    /// Largest λ of the path.
    #[arg(long, default_value_t = 1e5)]
    lambda_max: f64,
    /// Skip the path: fit this λ on the whole training file.
    #[arg(long)]
    lambda: Option<f64>,
    /// Fraction of each class held out to choose λ.
    #[arg(long, default_value_t = 0.2)]
    validation_fraction: f64,
    /// Seed of the validation split.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Standardise features with the training mean and standard deviation.
    #[arg(long)]
    standardize: bool,
    /// L-BFGS iterations per λ at most.
    #[arg(long, default_value_t = 1000)]
    max_iter: usize,
    /// Stop when the largest gradient component of the per-example objective is below this.
    #[arg(long, default_value_t = 1e-4)]
    tol: f64,
    #[command(flatten)]
    compute: ComputeArgs,
}

/// The vote of the kNN probe.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum VoteArg {
    /// One vote per neighbour.
    Majority,
    /// Votes weighted by exp(similarity / temperature) (DINO).
    Weighted,
}

#[derive(Debug, Args)]
struct KnnArgs {
    #[command(flatten)]
    files: Files,
    /// Largest k tried; every k from 1 to this is scored by leave-one-out accuracy.
    #[arg(long, default_value_t = 50)]
    k_max: usize,
    /// How neighbours vote.
    #[arg(long, value_enum, default_value_t = VoteArg::Majority)]
    vote: VoteArg,
    /// Temperature of the weighted vote.
    #[arg(long, default_value_t = 0.07)]
    temperature: f64,
    /// How ties between classes are broken.
    #[arg(long, value_enum, default_value_t = TieBreak::Nearest)]
    tie_break: TieBreak,
    #[command(flatten)]
    compute: ComputeArgs,
}

/// Runs `losslens probe`.
pub fn run(args: ProbeArgs) -> Result<()> {
    match args.command {
        ProbeCommand::Linear(a) => linear(a),
        ProbeCommand::Knn(a) => knn(a),
    }
}

/// A feature file's labels: one class per example, or a 0/1 matrix of several per example.
enum Labels {
    Classes(Vec<usize>),
    Matrix(LabelMatrix),
}

/// A layer of a feature file and its labels, either kind.
fn load_any(path: &Path, layer: Option<&str>) -> Result<(Layer, Labels)> {
    let mut file = FeatureFile::open(path)?;
    let labels = match file.array(LABELS).filter(|a| a.shape.len() == 2) {
        Some(array) => {
            let matrix = LabelMatrix::from_array(path, LABELS, array)?;
            // The metadata's `classes` name the columns when there is one per column.
            let names = file
                .metadata
                .as_ref()
                .and_then(|m| serde_json::from_value::<Vec<String>>(m.get("classes")?.clone()).ok())
                .filter(|names| names.len() == matrix.classes());
            Labels::Matrix(match names {
                Some(names) => matrix.with_names(names)?,
                None => matrix,
            })
        }
        None => Labels::Classes(
            file.labels()
                .with_context(|| format!("{}: a probe needs labels", path.display()))?,
        ),
    };
    let layer = file.take_layer(layer)?;
    Ok((layer, labels))
}

/// A layer of a feature file and its labels, one class per example.
fn load(path: &Path, layer: Option<&str>) -> Result<(Layer, Vec<usize>)> {
    match load_any(path, layer)? {
        (layer, Labels::Classes(labels)) => Ok((layer, labels)),
        (_, Labels::Matrix(_)) => bail!(
            "{}: `labels` is a multi-label 0/1 matrix; the kNN probe needs one class per example \
             (`losslens probe linear` takes multi-label files)",
            path.display()
        ),
    }
}

fn linear(args: LinearArgs) -> Result<()> {
    let (train, train_labels) = load_any(&args.files.train, args.files.layer.as_deref())?;
    let (test, test_labels) = load_any(&args.files.test, args.files.layer.as_deref())?;
    let (train_labels, test_labels) = match (train_labels, test_labels) {
        (Labels::Classes(a), Labels::Classes(b)) => (a, b),
        (Labels::Matrix(a), Labels::Matrix(b)) => return multilabel(&args, (&train, &a), (&test, &b)),
        _ => bail!(
            "{} and {}: one holds one class per example, the other a multi-label 0/1 matrix; both need the same kind",
            args.files.train.display(),
            args.files.test.display()
        ),
    };
    let config = linear_config(&args);
    config.validate()?;
    let (compute, device) = args.compute.compute_on()?;
    let steps = if args.lambda.is_some() { 1 } else { args.lambdas as u64 };
    let bar = path_bar(steps);
    let started = std::time::Instant::now();
    let result = pollster::block_on(linear_probe(
        &compute,
        &train,
        &train_labels,
        &test,
        &test_labels,
        &config,
        &mut |point| {
            bar.set_message(format!("λ={:.1e} val {:.4}", point.lambda, point.validation_accuracy));
            bar.inc(1);
        },
    ))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if args.compute.json {
        #[derive(Serialize)]
        struct Output<'a> {
            lambda: f64,
            accuracy: f64,
            mean_per_class_accuracy: f64,
            top5_accuracy: f64,
            nll: f64,
            ece: f64,
            temperature: f64,
            nll_calibrated: f64,
            ece_calibrated: f64,
            path: &'a [losslens_core::probe::PathPoint],
            refit: &'a losslens_core::probe::PathPoint,
            classes: usize,
            features: usize,
            train_examples: usize,
            validation_examples: usize,
            test_examples: usize,
            seconds: f64,
        }
        let t = &result.test;
        return print_report(
            &args.compute,
            &device,
            Output {
                lambda: result.lambda,
                accuracy: result.accuracy,
                mean_per_class_accuracy: result.mean_per_class_accuracy,
                top5_accuracy: t.top5_accuracy,
                nll: t.nll,
                ece: t.ece,
                temperature: t.temperature,
                nll_calibrated: t.nll_calibrated,
                ece_calibrated: t.ece_calibrated,
                path: &result.path,
                refit: &result.refit,
                classes: result.classes,
                features: result.features,
                train_examples: result.train_examples,
                validation_examples: result.validation_examples,
                test_examples: result.test_examples,
                seconds,
            },
        );
    }
    let t = &result.test;
    println!(
        "linear probe on {} ({} features, {} classes; {} train / {} validation / {} test) on {}",
        train.name,
        result.features,
        result.classes,
        result.train_examples,
        result.validation_examples,
        result.test_examples,
        device.name
    );
    if !result.path.is_empty() {
        let mut table = Table::new(["λ", "validation acc", "iterations", "max |∇|", "converged"]);
        for p in &result.path {
            let mark = if p.lambda == result.lambda { " ◀" } else { "" };
            table.row([
                format!("{:.2e}{mark}", p.lambda),
                fmt(p.validation_accuracy, 4),
                p.iterations.to_string(),
                format!("{:.1e}", p.gradient_norm),
                if p.converged {
                    "yes".to_string()
                } else {
                    format!("{:?}", p.termination)
                },
            ]);
        }
        println!("{}", table.render());
    }
    println!(
        "chosen λ = {:.3e} (refit on train + validation: {} iterations)",
        result.lambda, result.refit.iterations
    );
    println!(
        "test accuracy {:.4}, mean per-class {:.4}, top-5 {:.4}",
        result.accuracy, result.mean_per_class_accuracy, t.top5_accuracy
    );
    println!(
        "NLL {:.4}, ECE {:.4}; temperature-scaled (T = {:.3}): NLL {:.4}, ECE {:.4}",
        t.nll, t.ece, t.temperature, t.nll_calibrated, t.ece_calibrated
    );
    println!("{seconds:.2} s");
    Ok(())
}

/// The linear probe's settings from the command line.
fn linear_config(args: &LinearArgs) -> LinearProbeConfig {
    LinearProbeConfig {
        lambda_count: args.lambdas,
        lambda_min: args.lambda_min,
        lambda_max: args.lambda_max,
        fixed_lambda: args.lambda,
        validation_fraction: args.validation_fraction,
        seed: args.seed,
        standardize: args.standardize,
        optimizer: LbfgsConfig {
            max_iterations: args.max_iter,
            gradient_tolerance: args.tol,
            ..Default::default()
        },
        select_by: args.files.select_by,
    }
}

/// A progress bar over the fits of a λ path.
fn path_bar(steps: u64) -> ProgressBar {
    ProgressBar::new(steps).with_style(
        ProgressStyle::with_template("{spinner} λ path {bar:30} {pos}/{len} [{elapsed}] {msg}")
            .expect("valid template"),
    )
}

/// The linear probe of a multi-label target (Table D.1): one logistic regression per class,
/// ROC AUC.
fn multilabel(args: &LinearArgs, train: (&Layer, &LabelMatrix), test: (&Layer, &LabelMatrix)) -> Result<()> {
    let config = linear_config(args);
    config.validate()?;
    let (compute, device) = args.compute.compute_on()?;
    let bar = path_bar(if args.lambda.is_some() { 1 } else { args.lambdas as u64 });
    let started = std::time::Instant::now();
    let result = pollster::block_on(multilabel_probe(
        &compute,
        train.0,
        train.1,
        test.0,
        test.1,
        &config,
        &mut |point| {
            let mean = point.validation_auc.iter().sum::<f64>() / point.validation_auc.len().max(1) as f64;
            bar.set_message(format!("λ={:.1e} mean validation AUC {mean:.4}", point.lambda));
            bar.inc(1);
        },
    ))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if args.compute.json {
        #[derive(Serialize)]
        struct Output<'a> {
            mean_auc: f64,
            classes: &'a [losslens_core::probe::multilabel::ClassAuc],
            path: &'a [losslens_core::probe::multilabel::MultiLabelPathPoint],
            refit: &'a losslens_core::probe::PathPoint,
            features: usize,
            train_examples: usize,
            validation_examples: usize,
            test_examples: usize,
            seconds: f64,
        }
        return print_report(
            &args.compute,
            &device,
            Output {
                mean_auc: result.mean_auc,
                classes: &result.classes,
                path: &result.path,
                refit: &result.refit,
                features: result.features,
                train_examples: result.train_examples,
                validation_examples: result.validation_examples,
                test_examples: result.test_examples,
                seconds,
            },
        );
    }
    println!(
        "multi-label linear probe on {} ({} features, {} classes; {} train / {} validation / {} test) on {}",
        train.0.name,
        result.features,
        result.classes.len(),
        result.train_examples,
        result.validation_examples,
        result.test_examples,
        device.name
    );
    let mut table = Table::new(["class", "positives (train / test)", "λ", "validation AUC", "test AUC"]);
    for c in &result.classes {
        table.row([
            c.class.clone(),
            format!("{} / {}", c.train_positives, c.test_positives),
            format!("{:.2e}", c.lambda),
            fmt(c.validation_auc, 4),
            fmt(c.auc, 4),
        ]);
    }
    println!("{}", table.render());
    println!(
        "mean test ROC AUC {:.4} (refit on train + validation: {} iterations, {seconds:.2} s)",
        result.mean_auc, result.refit.iterations
    );
    Ok(())
}

fn knn(args: KnnArgs) -> Result<()> {
    let (train, train_labels) = load(&args.files.train, args.files.layer.as_deref())?;
    let (test, test_labels) = load(&args.files.test, args.files.layer.as_deref())?;
    let config = KnnConfig {
        k_max: args.k_max,
        vote: match args.vote {
            VoteArg::Majority => Vote::Majority,
            VoteArg::Weighted => Vote::Weighted {
                temperature: args.temperature,
            },
        },
        tie_break: args.tie_break,
        select_by: args.files.select_by,
    };
    config.validate()?;
    let (compute, device) = args.compute.compute_on()?;
    let started = std::time::Instant::now();
    let result = pollster::block_on(knn_probe(&compute, &train, &train_labels, &test, &test_labels, &config))?;
    let seconds = started.elapsed().as_secs_f64();
    if args.compute.json {
        #[derive(Serialize)]
        struct Output<'a> {
            k: usize,
            accuracy: f64,
            mean_per_class_accuracy: f64,
            leave_one_out_accuracy: f64,
            grid: &'a [losslens_core::probe::knn::GridPoint],
            k_max: usize,
            vote: Vote,
            tie_break: TieBreak,
            classes: usize,
            train_examples: usize,
            test_examples: usize,
            seconds: f64,
        }
        return print_report(
            &args.compute,
            &device,
            Output {
                k: result.k,
                accuracy: result.accuracy,
                mean_per_class_accuracy: result.mean_per_class_accuracy,
                leave_one_out_accuracy: result.leave_one_out_accuracy,
                grid: &result.grid,
                k_max: result.config.k_max,
                vote: result.config.vote,
                tie_break: result.config.tie_break,
                classes: result.classes,
                train_examples: result.train_examples,
                test_examples: result.test_examples,
                seconds,
            },
        );
    }
    println!(
        "kNN probe on {} ({} classes; {} train / {} test) on {}",
        train.name, result.classes, result.train_examples, result.test_examples, device.name
    );
    let mut table = Table::new(["k", "leave-one-out acc"]);
    for g in &result.grid {
        let mark = if g.k == result.k { " ◀" } else { "" };
        table.row([format!("{}{mark}", g.k), fmt(g.accuracy, 4)]);
    }
    println!("{}", table.render());
    println!(
        "chosen k = {}: test accuracy {:.4}, mean per-class {:.4} ({seconds:.2} s)",
        result.k, result.accuracy, result.mean_per_class_accuracy
    );
    Ok(())
}
