//! `losslens study STUDY.toml`: every objective × seed trained, evaluated, probed and analysed,
//! incrementally, into `results.json`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use losslens_core::device::{self, DeviceChoice};
use losslens_core::study::{StudyConfig, StudyEvent, run_study};

use crate::common::DeviceArg;
use crate::train::default_cache_dir;

/// Options of `losslens study`.
#[derive(Debug, Args)]
pub struct StudyArgs {
    /// The study file (see `assets/studies/`).
    pub study: PathBuf,
    /// Output folder: `runs/` (one run folder per objective and seed) and `results.json`.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Device.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// Folder for decoded-image caches of ImageFolder datasets.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

/// Reads a study file.
pub fn read_study(path: &std::path::Path) -> Result<StudyConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let study: StudyConfig = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    study.validate()?;
    Ok(study)
}

/// Runs `losslens study`.
pub fn run(args: StudyArgs) -> Result<()> {
    let study = read_study(&args.study)?;
    let choice = match args.device {
        DeviceArg::Cpu => DeviceChoice::Cpu,
        DeviceArg::Gpu => DeviceChoice::Gpu,
        DeviceArg::Auto => DeviceChoice::Auto,
    };
    let selected = pollster::block_on(device::select(choice)).context("starting the compute device")?;
    eprintln!(
        "study `{}`: {} objectives × {} seeds on {}, {} targets, on {}",
        study.name,
        study.objectives.len(),
        study.seeds.len(),
        study.source,
        study.targets.len(),
        selected.name
    );
    let cache = Some(args.cache_dir.clone().unwrap_or_else(default_cache_dir));
    let results = run_study(&study, &args.out, &selected.device, cache, &mut |event| match event {
        StudyEvent::Piece {
            index,
            total,
            run,
            what,
        } => eprintln!("[{index}/{total}] {run}: {what}"),
        StudyEvent::Reused { run } => eprintln!("{run}: finished earlier, reused"),
    })?;
    if let Some(summary) = &results.summary {
        println!("{}", summary.markdown());
    }
    eprintln!("results in {}", args.out.join("results.json").display());
    Ok(())
}
