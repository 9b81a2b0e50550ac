//! `losslens study STUDY.toml`: every objective × seed trained, evaluated, probed and analysed,
//! incrementally, into `results.json`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::Args;
use losslens_core::study::aggregate::table2;
use losslens_core::study::{StudyConfig, StudyEvent, run_study};

use losslens_core::device::DeviceChoice;

use crate::common::{default_cache_dir, select_device_cached};
use crate::progress::TrainProgress;

/// Options of `losslens study`.
#[derive(Debug, Args)]
pub struct StudyArgs {
    /// The study file (see `assets/studies/`).
    pub study: PathBuf,
    /// Output folder: `runs/` (one run folder per objective and seed) and `results.json`.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Folder for decoded-image caches of ImageFolder datasets.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

/// Reads a study file.
pub fn read_study(path: &std::path::Path) -> Result<StudyConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let study: StudyConfig = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    study
        .validate()
        .with_context(|| format!("{}: a setting of the study is out of range", path.display()))?;
    Ok(study)
}

/// Runs `losslens study`.
pub fn run(args: StudyArgs) -> Result<()> {
    let study = read_study(&args.study)?;
    let selected = select_device_cached(args.device, args.cache_dir.as_deref())?;
    eprintln!(
        "study `{}`: {} objectives × {} seeds on {}, {} targets, on {}",
        study.name,
        study.objectives.len(),
        study.seeds.len(),
        study.source,
        study.targets.len(),
        selected.name
    );
    let cache = args.cache_dir.clone().unwrap_or_else(default_cache_dir);
    run_and_report(&study, &args.out, &selected.device, cache)
}

/// Runs `study` into `out` with progress on stderr, then prints the Table 1-shaped summary and
/// where the results are (shared by `losslens study` and `losslens demo`).
pub fn run_and_report(study: &StudyConfig, out: &Path, device: &Device, cache_dir: PathBuf) -> Result<()> {
    let started = std::time::Instant::now();
    // One progress bar (or plain lines, off a terminal) per run being trained.
    let mut training: Option<(String, TrainProgress)> = None;
    let results = run_study(study, out, device, Some(cache_dir), &mut |event| match event {
        StudyEvent::Piece {
            index,
            total,
            run,
            what,
        } => {
            if let Some((_, progress)) = training.take() {
                progress.finish();
            }
            eprintln!("[{index}/{total}] {run}: {what}")
        }
        StudyEvent::Reused { run } => eprintln!("{run}: finished earlier, reused"),
        StudyEvent::Training { run, event } => {
            if training.as_ref().is_none_or(|(r, _)| r != run) {
                training = Some((run.to_string(), TrainProgress::new(run, false)));
            }
            if let Some((_, progress)) = training.as_mut() {
                progress.event(event);
            }
        }
    })?;
    if let Some((_, progress)) = training.take() {
        progress.finish();
    }
    if let Some(summary) = &results.summary {
        println!("{}", summary.markdown());
    }
    if let Some(tuned) = table2(&results)? {
        println!("Fine-tuned (Table 2):\n\n{}", tuned.markdown());
    }
    println!(
        "results: {} (tableN.md, tableN.csv, runs/) in {:.0} s",
        out.join("results.json").display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
