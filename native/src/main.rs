//! `losslens`: how training objectives shape the features of image classifiers.

mod analyze;
mod catalog;
mod common;
mod demo;
mod devices;
mod extract;
mod nodes;
mod probe;
mod progress;
mod report;
mod study;
mod table;
mod train;

use clap::{Parser, Subcommand};

/// losslens: measure how a classifier's training objective shapes its features (Kornblith et al.,
/// "Why Do Better Loss Functions Lead to Less Transferable Features?", NeurIPS 2021).
#[derive(Debug, Parser)]
#[command(name = "losslens", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Representation analyses of feature files (.npy, .npz, .safetensors).
    Analyze(analyze::AnalyzeArgs),
    /// Transfer probes on fixed features: linear (L-BFGS, λ path) and kNN (leave-one-out k).
    Probe(probe::ProbeArgs),
    /// The nine training objectives and their default hyperparameters.
    Objectives(catalog::ObjectivesArgs),
    /// A network's feature taps (names and shapes) and parameter count.
    Model(catalog::ModelArgs),
    /// Train a network with one objective (the paper's recipe; checkpointed and resumable).
    Train(Box<train::TrainArgs>),
    /// Per-block and penultimate features of a trained network on a dataset split.
    Extract(extract::ExtractArgs),
    /// Run a study: train every objective × seed, evaluate, probe the targets, analyse the
    /// layers; incremental (finished pieces are reused), results in results.json.
    Study(study::StudyArgs),
    /// Write a study's results as a static site: the explorer, tables, figures and features.
    Report(report::ReportArgs),
    /// The main job on built-in data (no download): a small study of the nine objectives.
    Demo(demo::DemoArgs),
    /// The compute devices this build can use and how each computes (API, compiler, f16 tensor
    /// cores).
    Devices(devices::DevicesArgs),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOSSLENS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,wgpu_hal=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Devices(args) => devices::run(args),
        Command::Probe(args) => probe::run(args),
        Command::Train(args) => train::run(*args),
        Command::Extract(args) => extract::run(args),
        Command::Study(args) => study::run(args),
        Command::Report(args) => report::run(args),
        Command::Objectives(args) => catalog::objectives(args),
        Command::Model(args) => catalog::model(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            if let Some(hint) = hint(&error) {
                eprintln!("hint: {hint}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// What to do about an error, in the command line's terms: the library says what is wrong, this
/// says which option fixes it.
fn hint(error: &anyhow::Error) -> Option<&'static str> {
    use losslens_core::Error;
    use losslens_core::error::RunFolderState;
    let error = error.chain().find_map(|e| e.downcast_ref::<Error>())?;
    Some(match error {
        Error::AmbiguousLayer { .. } => "choose one with --layer NAME",
        Error::RunFolder { state, .. } => match state {
            RunFolderState::AlreadyHoldsRun => "pass --resume to continue it, or choose another output folder",
            RunFolderState::ConfigurationChanged => {
                "resume it with the same settings, or without any: `losslens train --resume --out DIR`"
            }
            RunFolderState::NothingToResume => "start it without --resume",
            RunFolderState::NotARun => "train a network with `losslens train` first",
            RunFolderState::NoWeights => "let the run finish its first epoch (`losslens train --resume`)",
        },
        Error::Diverged { .. } => "lower --lr, or check the data",
        _ => return None,
    })
}
