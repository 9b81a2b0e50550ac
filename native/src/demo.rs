//! `losslens demo`: the main job on an embedded default that needs no download — a small study
//! (`assets/studies/demo.toml`): the nine objectives trained on a generated source task,
//! evaluated, probed on a generated target task with other classes, and analysed layer by layer.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use losslens_core::device::{self, DeviceChoice};
use losslens_core::study::{StudyConfig, StudyEvent, run_study};

use crate::common::DeviceArg;
use crate::train::default_cache_dir;

/// The demo study, embedded.
pub const DEMO_STUDY: &str = include_str!("../../assets/studies/demo.toml");

/// Arguments of `losslens demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output folder (runs, results.json, table1.md); a second run reuses what is finished.
    #[arg(long, default_value = "losslens-demo")]
    out: PathBuf,
    /// Device.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    device: DeviceArg,
    /// A one-minute version: three objectives, one epoch.
    #[arg(long)]
    quick: bool,
}

/// The demo study (the quick version with `quick`).
pub fn demo_study(quick: bool) -> Result<StudyConfig> {
    let mut study: StudyConfig = toml::from_str(DEMO_STUDY).context("the embedded demo study")?;
    if quick {
        study.name = "demo-quick".into();
        study
            .objectives
            .retain(|o| matches!(o.kind().name(), "softmax" | "logit-norm" | "cosine-softmax"));
        study.train.epochs = Some(1);
    }
    Ok(study)
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> Result<()> {
    let study = demo_study(args.quick)?;
    let choice = match args.device {
        DeviceArg::Cpu => DeviceChoice::Cpu,
        DeviceArg::Gpu => DeviceChoice::Gpu,
        DeviceArg::Auto => DeviceChoice::Auto,
    };
    let selected = pollster::block_on(device::select(choice)).context("starting the compute device")?;
    eprintln!(
        "losslens demo on {}: {} objectives trained on {}; fixed features probed on {}",
        selected.name,
        study.objectives.len(),
        study.source,
        study
            .targets
            .iter()
            .map(|t| t.data.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let started = std::time::Instant::now();
    let results = run_study(
        &study,
        &args.out,
        &selected.device,
        Some(default_cache_dir()),
        &mut |event| match event {
            StudyEvent::Piece {
                index,
                total,
                run,
                what,
            } => eprintln!("[{index}/{total}] {run}: {what}"),
            StudyEvent::Reused { run } => eprintln!("{run}: finished earlier, reused"),
        },
    )?;
    if let Some(summary) = &results.summary {
        println!("{}", summary.markdown());
    }
    println!(
        "results: {} (table1.md, table1.csv, runs/) in {:.0} s",
        args.out.join("results.json").display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
