//! `losslens demo`: the main job on an embedded default that needs no download — a small study
//! (`assets/studies/demo.toml`): the nine objectives trained on a generated source task,
//! evaluated, probed on a generated target task with other classes, and analysed layer by layer.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use losslens_core::study::StudyConfig;

use losslens_core::device::DeviceChoice;

use crate::common::{default_cache_dir, select_device};

/// The demo study, embedded.
pub const DEMO_STUDY: &str = include_str!("../../assets/studies/demo.toml");

/// Arguments of `losslens demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output folder (runs, results.json, table1.md, the result site in site/); a second run
    /// reuses what is finished.
    #[arg(long, default_value = "losslens-demo")]
    out: PathBuf,
    /// Device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
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
            .retain(|o| matches!(o.config.name().as_str(), "softmax" | "logit-norm" | "cosine-softmax"));
        study.train.epochs = Some(1);
    }
    Ok(study)
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> Result<()> {
    let study = demo_study(args.quick)?;
    let selected = select_device(args.device)?;
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
    crate::study::run_and_report(
        &study,
        &args.out,
        &selected.device,
        default_cache_dir(),
        losslens_core::study::workers::Share::Alone,
    )?;
    let site_dir = args.out.join("site");
    let site = crate::report::write_site(&args.out, &site_dir, crate::report::Explorer::Find)?;
    crate::report::print_where(&site, &site_dir);
    Ok(())
}
