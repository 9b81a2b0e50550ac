//! `losslens study STUDY.toml`: every objective × seed trained, evaluated, probed and analysed,
//! incrementally, into `results.json`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::Args;
use losslens_core::study::aggregate::table2;
use losslens_core::study::workers::{ClaimConfig, Share, WorkerSlot};
use losslens_core::study::{StudyConfig, StudyEvent, StudyOutcome, run_study_shared, study_units};

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
    /// Be worker I of N (I from 0, as a Slurm array's or a Kubernetes indexed Job's index) on a
    /// shared output folder: do the units at places I, I+N, I+2N, … of the study's plan (see
    /// --dry-run), waiting for other workers' units that they depend on.
    #[arg(long, value_name = "I/N", conflicts_with_all = ["claim", "collect"])]
    pub worker: Option<WorkerSlot>,
    /// Share the study with any number of workers on a shared output folder: claim free units
    /// through lock files in OUT/work/, kept alive by a heartbeat; a dead worker's unit is
    /// taken over once its lease runs out, and resumed from its last checkpoint. A claiming
    /// worker stays until the study is finished, then writes the results.
    #[arg(long, conflicts_with = "collect")]
    pub claim: bool,
    /// With --claim: seconds a claim stays valid without a heartbeat, so how long a dead
    /// worker's unit waits before another worker takes it over. Longer than any pause of a live
    /// worker (a stopped process, shared storage that blocks).
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0, requires = "claim")]
    pub lease: f64,
    /// Write the results of a study whose units are all finished (by workers), training
    /// nothing; a study with unfinished units is refused by their names.
    #[arg(long)]
    pub collect: bool,
    /// List the study's units (what each waits for, whether it is finished or claimed, whether
    /// it is this worker's) and exit, changing nothing.
    #[arg(long)]
    pub dry_run: bool,
}

impl StudyArgs {
    /// How this process shares the study.
    fn share(&self) -> Result<Share> {
        if let Some(slot) = self.worker {
            return Ok(Share::Fixed(slot));
        }
        if self.claim {
            if !(self.lease.is_finite() && self.lease > 0.0 && self.lease < 1e9) {
                anyhow::bail!(
                    "invalid setting `lease` = {}: a positive number of seconds (default 600)",
                    self.lease
                );
            }
            return Ok(Share::Claim(ClaimConfig::new(std::time::Duration::from_secs_f64(
                self.lease,
            ))));
        }
        Ok(if self.collect { Share::Collect } else { Share::Alone })
    }
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
    let share = args.share()?;
    if args.dry_run {
        return dry_run(&study, &args.out, share);
    }
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
    run_and_report(&study, &args.out, &selected.device, cache, share)
}

/// Lists the units of `study` in `out` as a worker sharing it as `share` sees them.
fn dry_run(study: &StudyConfig, out: &Path, share: Share) -> Result<()> {
    let units = study_units(study, out, share.clone())?;
    let who = match &share {
        Share::Alone => "this process".to_string(),
        Share::Fixed(slot) => format!("worker {slot}"),
        Share::Claim(c) => format!("worker {} (claiming)", c.name),
        Share::Collect => "collecting".to_string(),
    };
    println!(
        "study `{}` in {}: {} units; {who}",
        study.name,
        out.display(),
        units.len()
    );
    for (place, unit) in units.iter().enumerate() {
        let state = if unit.finished {
            "finished".to_string()
        } else if let Some(holder) = &unit.holder {
            format!("claimed by {holder}")
        } else {
            "to do".to_string()
        };
        let after = if unit.after.is_empty() {
            String::new()
        } else {
            format!(", after {}", unit.after.join(" "))
        };
        // A fixed worker's own units (a claiming worker may take any).
        let mine = if unit.mine && matches!(share, Share::Fixed(_)) {
            " [mine]"
        } else {
            ""
        };
        println!("{place:>4}  {}: {state}{after}{mine}", unit.name);
    }
    Ok(())
}

/// Runs `study` into `out` with progress on stderr, then prints the Table 1-shaped summary and
/// where the results are (shared by `losslens study` and `losslens demo`).
pub fn run_and_report(
    study: &StudyConfig,
    out: &Path,
    device: &Device,
    cache_dir: PathBuf,
    share: Share,
) -> Result<()> {
    let started = std::time::Instant::now();
    // One progress bar (or plain lines, off a terminal) per run being trained.
    let mut training: Option<(String, TrainProgress)> = None;
    let worker = match &share {
        Share::Fixed(slot) => Some(format!("worker {slot}")),
        Share::Claim(c) => Some(format!("worker {}", c.name)),
        Share::Alone | Share::Collect => None,
    };
    let outcome = run_study_shared(study, out, device, Some(cache_dir), share, &mut |event| match event {
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
        StudyEvent::Waiting { units } => {
            if let Some((_, progress)) = training.take() {
                progress.finish();
            }
            eprintln!(
                "waiting for {} unit{} of other workers: {}",
                units.len(),
                if units.len() == 1 { "" } else { "s" },
                units.join(", ")
            )
        }
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
    let results = match outcome {
        StudyOutcome::Finished(results) => results,
        StudyOutcome::Left(units) => {
            println!(
                "{}: its units are finished; {} unit{} other workers' ({}). Once they finish, \
                 `losslens study STUDY.toml --out {} --collect` writes the results.",
                worker.as_deref().unwrap_or("this process"),
                units.len(),
                if units.len() == 1 { " is" } else { "s are" },
                units.join(", "),
                out.display()
            );
            return Ok(());
        }
    };
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
