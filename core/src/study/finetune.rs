//! Fine-tuning on each target (Appendix A.3, Table 2): the whole network of a finished run with
//! a new classifier, SGD with momentum 0.9 and cosine decay, a learning-rate × weight-decay grid
//! chosen on a validation split (the validation accuracy averaged over the objective's seeds, as
//! the paper averaged over its pretrained networks), then a refit on training + validation images
//! and the test accuracy.
//!
//! Every fine-tuning run is a training run ([`crate::train::train`] with
//! [`TrainConfig::pretrained`]) in its own folder under the pretrained run:
//!
//! ```text
//! runs/<run>/finetune/<target>/lr-<lr>-wd-<wd>/         a grid point (weights removed once measured)
//! runs/<run>/finetune/<target>/final-lr-<lr>-wd-<wd>/   the refit at the chosen point, with its weights
//! ```
//!
//! Each folder holds `job.json`: the configuration it runs and, once done, what it measured. A
//! killed study resumes each unfinished job from its last checkpoint and reuses finished ones
//! while their configuration is unchanged.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::data::{DatasetSource, ImageSet};
use crate::error::{Error, Result, invalid_setting};
use crate::objective::{ObjectiveConfig, ObjectiveKind};
use crate::study::results::{Finetune, GridPoint, Measure};
use crate::train::{Decay, RunDir, TrainConfig, TrainOptions, train};

/// `n` values spaced evenly in log space from `10^lo` to `10^hi` (NumPy's `logspace`).
pub fn log_grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![10f64.powf(lo)],
        _ => (0..n)
            .map(|i| 10f64.powf(lo + (hi - lo) * i as f64 / (n - 1) as f64))
            .collect(),
    }
}

/// How the study fine-tunes its networks on each target. Absent from a study: no fine-tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FinetuneConfig {
    /// Optimiser steps per fine-tuning run, rounded up to whole epochs. Default 20,000 (the
    /// paper's).
    pub steps: usize,
    /// Examples per step. Default 256.
    pub batch_size: usize,
    /// Learning rates to try, per 256 examples (the step size is `rate · batch_size / 256`).
    /// Default the paper's: 8 values spaced evenly in log space over [10^-5.5, 10^-1].
    pub learning_rates: Vec<f64>,
    /// Weight decays to try; each is divided by the step size before use, so that the weights
    /// shrink by this fraction per step at the peak rate. 0 means none. Default the paper's: 8
    /// values spaced evenly in log space over [10^-6.5, 10^-3], and 0.
    pub weight_decays: Vec<f64>,
    /// Fraction of each class of the target's training images held out to choose the learning
    /// rate and weight decay, in (0, 1). Default 0.2.
    pub validation_fraction: f64,
    /// Use a class-stratified sample of this many of the target's training images (training and
    /// validation together); default all.
    pub train_limit: Option<usize>,
    /// Momentum (plain, not Nesterov's). Default 0.9.
    pub momentum: f64,
    /// The objective of the new classifier. Default softmax cross-entropy.
    pub objective: ObjectiveConfig,
    /// Validation evaluations and checkpoints per run, spread evenly (the last epoch always has
    /// one). Default 10.
    pub checkpoints: usize,
    /// Fine-tune the networks of only the first this many of the study's seeds of each
    /// objective (the paper fine-tuned 3 of its 8); default all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seeds: Option<usize>,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self {
            steps: 20_000,
            batch_size: 256,
            learning_rates: log_grid(-5.5, -1.0, 8),
            weight_decays: log_grid(-6.5, -3.0, 8).into_iter().chain([0.0]).collect(),
            validation_fraction: 0.2,
            train_limit: None,
            momentum: 0.9,
            objective: ObjectiveConfig::default_for(ObjectiveKind::Softmax),
            checkpoints: 10,
            seeds: None,
        }
    }
}

impl FinetuneConfig {
    /// Refuses empty grids and settings outside their ranges, naming the setting.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            return invalid_setting("finetune.steps", 0, "at least 1");
        }
        if self.batch_size == 0 {
            return invalid_setting("finetune.batch_size", 0, "at least 1");
        }
        if self.learning_rates.is_empty() {
            return invalid_setting("finetune.learning_rates", "[]", "at least one rate");
        }
        if let Some(&bad) = self.learning_rates.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
            return invalid_setting("finetune.learning_rates", bad, "finite numbers > 0");
        }
        if self.weight_decays.is_empty() {
            return invalid_setting("finetune.weight_decays", "[]", "at least one value (0 for none)");
        }
        if let Some(&bad) = self.weight_decays.iter().find(|d| !(d.is_finite() && **d >= 0.0)) {
            return invalid_setting("finetune.weight_decays", bad, "finite numbers ≥ 0");
        }
        if !(self.validation_fraction > 0.0 && self.validation_fraction < 1.0) {
            return invalid_setting("finetune.validation_fraction", self.validation_fraction, "in (0, 1)");
        }
        if self.train_limit == Some(0) {
            return invalid_setting("finetune.train_limit", 0, "at least 1");
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return invalid_setting("finetune.momentum", self.momentum, "in [0, 1)");
        }
        if self.seeds == Some(0) {
            return invalid_setting("finetune.seeds", 0, "at least 1");
        }
        if self.checkpoints == 0 {
            return invalid_setting("finetune.checkpoints", 0, "at least 1");
        }
        self.objective.validate()
    }

    /// The grid in the order it is searched: learning rates, then weight decays.
    pub fn grid(&self) -> Vec<(f64, f64)> {
        self.learning_rates
            .iter()
            .flat_map(|&lr| self.weight_decays.iter().map(move |&wd| (lr, wd)))
            .collect()
    }

    /// The training configuration that fine-tunes `pretrained` (a run trained as `base`) on
    /// `data` with one grid point: with the validation split held out for the search, without
    /// it for the refit.
    pub fn train_config(
        &self,
        base: &TrainConfig,
        pretrained: &Path,
        data: &DatasetSource,
        (learning_rate, weight_decay): (f64, f64),
        validation: bool,
    ) -> TrainConfig {
        let step_size = learning_rate * self.batch_size as f64 / 256.0;
        TrainConfig {
            data: data.clone(),
            model: base.model,
            stem: None,
            objective: self.objective,
            epochs: None,
            steps: Some(self.steps),
            pretrained: Some(pretrained.to_path_buf()),
            batch_size: self.batch_size,
            learning_rate,
            momentum: self.momentum,
            nesterov: false,
            weight_decay: weight_decay / step_size,
            warmup_epochs: 0.0,
            decay: Decay::Cosine,
            ema_decay: 0.0,
            holdout_fraction: if validation { self.validation_fraction } else { 0.0 },
            train_limit: None,
            data_limit: self.train_limit,
            image_size: None,
            augmentation: None,
            normalization: crate::data::augment::Normalization::Dataset,
            seed: base.seed,
            eval_batch_size: base.eval_batch_size,
            checkpoints: Some(self.checkpoints),
        }
    }
}

/// A pretrained run of one seed of an objective.
#[derive(Debug, Clone)]
pub struct Pretrained {
    /// Its folder.
    pub dir: PathBuf,
    /// Its training configuration.
    pub config: TrainConfig,
}

/// A fine-tuning target: its name, data, accuracy measure and test images (in the networks'
/// channels).
#[derive(Debug, Clone, Copy)]
pub struct FinetuneTarget<'a> {
    /// The name (also the folder name under `finetune/`).
    pub name: &'a str,
    /// The dataset.
    pub data: &'a DatasetSource,
    /// The accuracy measure.
    pub measure: Measure,
    /// The test images.
    pub test: &'a ImageSet,
}

/// What a finished job measured (`job.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    /// What it runs ([`job_key`]), as compact JSON text: compared as text, since numbers read
    /// back from JSON may differ from the written ones in the last bit.
    key: String,
    /// Validation accuracy of the last epoch in the target's measure (grid points); `None` while
    /// unfinished or for the refit.
    #[serde(default)]
    validation: Option<f64>,
    /// Test accuracy (a refit).
    #[serde(default)]
    test: Option<f64>,
    /// Why the run stopped early (a loss that became infinite or NaN).
    #[serde(default)]
    diverged: Option<String>,
    /// Whether it finished.
    done: bool,
}

/// Fine-tunes every seed of one objective on one target: the grid on validation (reusing
/// finished points), the best point by mean validation accuracy over the seeds, the refit of
/// each seed, and each refit's test accuracy. One [`Finetune`] per seed, in `runs` order.
/// `progress` is told what starts. A refit whose loss diverges moves every seed to the next
/// best point; an error only when every point diverges.
pub fn finetune_objective(
    config: &FinetuneConfig,
    runs: &[Pretrained],
    target: FinetuneTarget,
    batch_size: usize,
    device: &Device,
    cache_dir: Option<&Path>,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Finetune>> {
    config.validate()?;
    let grid = config.grid();
    // The pretrained runs by their real paths, so that the saved configurations do not depend on
    // how the output folder was spelled.
    let bases: Vec<PathBuf> = runs
        .iter()
        .map(|r| std::fs::canonicalize(&r.dir).map_err(|e| Error::io(&r.dir, e)))
        .collect::<Result<_>>()?;
    let mut jobs = Jobs {
        config,
        target,
        batch_size,
        device,
        cache_dir,
        progress,
    };
    // validation[p][s]: grid point p, seed s.
    let mut validation = Vec::with_capacity(grid.len());
    for (p, &point) in grid.iter().enumerate() {
        let mut per_seed = Vec::with_capacity(runs.len());
        for (run, base) in runs.iter().zip(&bases) {
            let count = format!(" ({} of {})", p + 1, grid.len());
            per_seed.push(jobs.run(run, base, point, false, &count)?.validation);
        }
        validation.push(per_seed);
    }
    // The best point by mean validation accuracy; should its refit diverge for a seed, the next
    // best (every seed shares the point).
    for (rank, best) in ranking(&validation).into_iter().enumerate() {
        let chosen = grid[best];
        if rank == 0 {
            warn_at_edge(config, target.name, chosen);
        }
        let mut out = Vec::with_capacity(runs.len());
        for (s, (run, base)) in runs.iter().zip(&bases).enumerate() {
            let job = jobs.run(run, base, chosen, true, "")?;
            let Some(accuracy) = job.test else {
                tracing::warn!(
                    "fine-tuning {} on {} at learning rate {:.3e}, weight decay {:.3e} diverged ({}); \
                     trying the next best point",
                    run.dir.display(),
                    target.name,
                    chosen.0,
                    chosen.1,
                    job.diverged.as_deref().unwrap_or("no test accuracy")
                );
                break;
            };
            out.push(Finetune {
                target: target.name.to_string(),
                accuracy,
                learning_rate: chosen.0,
                weight_decay: chosen.1,
                validation: mean_validation(&validation[best]),
                grid: grid
                    .iter()
                    .zip(&validation)
                    .map(|(&(learning_rate, weight_decay), v)| GridPoint {
                        learning_rate,
                        weight_decay,
                        validation: v[s],
                    })
                    .collect(),
            });
        }
        if out.len() == runs.len() {
            return Ok(out);
        }
    }
    Err(Error::Degenerate {
        what: format!("fine-tuning on {}", target.name),
        reason: "the training loss diverged at every point of the grid; lower the learning rates".into(),
    })
}

/// Mean over seeds of one grid point's validation accuracy; a diverged run counts as 0.
fn mean_validation(per_seed: &[Option<f64>]) -> f64 {
    per_seed.iter().map(|v| v.unwrap_or(0.0)).sum::<f64>() / per_seed.len().max(1) as f64
}

/// Grid points from best to worst by mean validation accuracy over seeds (`validation[p][s]`:
/// point `p`, seed `s`); equals keep grid order.
pub fn ranking(validation: &[Vec<Option<f64>>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..validation.len()).collect();
    order.sort_by(|&a, &b| mean_validation(&validation[b]).total_cmp(&mean_validation(&validation[a])));
    order
}

/// Warns when the chosen point lies on the edge of the grid (a wider grid may do better): the
/// paper checked that every choice fell inside its grid.
fn warn_at_edge(config: &FinetuneConfig, target: &str, (lr, wd): (f64, f64)) {
    let edge =
        |values: &[f64], v: f64| values.len() > 1 && (values.iter().all(|&x| x <= v) || values.iter().all(|&x| x >= v));
    if edge(&config.learning_rates, lr) {
        tracing::warn!(
            "fine-tuning on {target}: the chosen learning rate {lr:.3e} is at the edge of the grid; \
             a wider `finetune.learning_rates` may do better"
        );
    }
    // No decay (0) is a choice of its own, not an edge.
    let decays: Vec<f64> = config.weight_decays.iter().copied().filter(|&d| d > 0.0).collect();
    if wd > 0.0 && edge(&decays, wd) {
        tracing::warn!(
            "fine-tuning on {target}: the chosen weight decay {wd:.3e} is at the edge of the grid; \
             a wider `finetune.weight_decays` may do better"
        );
    }
}

/// `runs/<run>/finetune/<target>/lr-1.000e-3-wd-3.162e-5` (a grid point) or
/// `…/final-lr-1.000e-3-wd-3.162e-5` (the refit at that point).
fn job_dir(run: &Path, target: &str, (lr, wd): (f64, f64), refit: bool) -> PathBuf {
    let leaf = format!("{}lr-{lr:.3e}-wd-{wd:.3e}", if refit { "final-" } else { "" });
    run.join("finetune").join(crate::study::slug(target)).join(leaf)
}

/// What identifies a job, as JSON text: its training configuration (without the pretrained
/// run's path: the job's folder lies inside that run, which is replaced when its settings
/// change), the measure it reports, and for a refit the test images it is scored on (their
/// count and a checksum of their labels).
fn job_key(config: &TrainConfig, measure: Measure, test: Option<&ImageSet>) -> String {
    let train = TrainConfig {
        pretrained: None,
        ..config.clone()
    };
    let test = test.map(|t| {
        let checksum = t.labels.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &l| {
            (h ^ l as u64).wrapping_mul(0x0100_0000_01b3)
        });
        serde_json::json!({ "images": t.len(), "labels": format!("{checksum:016x}") })
    });
    serde_json::json!({ "train": train, "measure": measure, "test": test }).to_string()
}

/// The record in `dir/job.json`, if there is a readable one.
fn read_job(dir: &Path) -> Option<Job> {
    let text = std::fs::read_to_string(dir.join("job.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// The fine-tuning runs of one target, announced to `progress` when they have work to do.
struct Jobs<'a, 'p> {
    config: &'a FinetuneConfig,
    target: FinetuneTarget<'a>,
    batch_size: usize,
    device: &'a Device,
    cache_dir: Option<&'a Path>,
    progress: &'p mut dyn FnMut(&str),
}

impl Jobs<'_, '_> {
    /// Fine-tunes `run` (at its canonical path `base`) at `point`: the search's run on training
    /// images with validation, or the refit on all of them scored on the test images. `count`
    /// ends the progress line.
    fn run(&mut self, run: &Pretrained, base: &Path, point: (f64, f64), refit: bool, count: &str) -> Result<Job> {
        let target = self.target;
        let config = self.config.train_config(&run.config, base, target.data, point, !refit);
        let key = job_key(&config, target.measure, refit.then_some(target.test));
        let dir = job_dir(&run.dir, target.name, point, refit);
        let resume = match read_job(&dir) {
            Some(job) if job.key == key && job.done => return Ok(job),
            Some(job) => job.key == key,
            None => false,
        };
        (self.progress)(&format!(
            "fine-tuning on {}{}: learning rate {:.3e}, weight decay {:.3e}{count}",
            target.name,
            if refit { " (training + validation)" } else { "" },
            point.0,
            point.1
        ));
        let (batch_size, device) = (self.batch_size, self.device);
        run_job(
            &dir,
            key,
            resume,
            &config,
            target.measure,
            device,
            self.cache_dir,
            &mut |run_dir| {
                if refit {
                    test_accuracy(run_dir, target, batch_size, device).map(Some)
                } else {
                    Ok(None)
                }
            },
        )
    }
}

/// Runs the training run `config` in `dir` (continuing it when `resume`, else from nothing): the
/// last epoch's validation accuracy in `measure`, and `test`'s result. A finished grid point
/// keeps only its records; the refit (whose `test` measures it) keeps its weights.
#[allow(clippy::too_many_arguments)]
fn run_job(
    dir: &Path,
    key: String,
    resume: bool,
    config: &TrainConfig,
    measure: Measure,
    device: &Device,
    cache_dir: Option<&Path>,
    test: &mut dyn FnMut(&Path) -> Result<Option<f64>>,
) -> Result<Job> {
    if !resume {
        // Another configuration (or none) was here: start over.
        crate::atomic::remove_dir(dir)?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        write_job(
            &dir.join("job.json"),
            &Job {
                key: key.clone(),
                validation: None,
                test: None,
                diverged: None,
                done: false,
            },
        )?;
    }
    let run = RunDir::new(dir);
    let options = TrainOptions {
        resume: run.exists(),
        cache_dir: cache_dir.map(Path::to_path_buf),
        ..TrainOptions::default()
    };
    let mut job = Job {
        key,
        validation: None,
        test: None,
        diverged: None,
        done: true,
    };
    match train(config, dir, &options, device, &mut |_| {}) {
        Ok(summary) => {
            job.validation = summary.history.last().and_then(|r| match measure {
                Measure::Top1 => r.holdout_accuracy,
                Measure::MeanPerClass => r.holdout_mean_per_class_accuracy,
            });
            job.test = test(dir)?;
        }
        Err(Error::Degenerate { reason, .. }) => job.diverged = Some(reason),
        Err(e) => return Err(e),
    }
    write_job(&dir.join("job.json"), &job)?;
    // What is no longer needed: the checkpoints, and a grid point's weights.
    let checkpoints = dir.join("checkpoint");
    if checkpoints.exists() {
        std::fs::remove_dir_all(&checkpoints).map_err(|e| Error::io(&checkpoints, e))?;
    }
    if job.test.is_none() {
        let _ = std::fs::remove_file(run.model_path());
    }
    Ok(job)
}

fn write_job(path: &Path, job: &Job) -> Result<()> {
    let text = serde_json::to_string_pretty(job).map_err(|e| Error::format(path, e.to_string()))?;
    crate::atomic::write(path, text.as_bytes())
}

/// Accuracy of the fine-tuned network in `dir` on the target's test images, in its measure.
fn test_accuracy(dir: &Path, target: FinetuneTarget, batch_size: usize, device: &Device) -> Result<f64> {
    let trained = RunDir::new(dir).load(device)?;
    let e = crate::study::runner::evaluate_on(&trained, target.test, batch_size, device)?;
    Ok(match target.measure {
        Measure::Top1 => e.accuracy,
        Measure::MeanPerClass => e.mean_per_class_accuracy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_grid() {
        // numpy.logspace(-5.5, -1, 8) and numpy.logspace(-6.5, -3, 8).
        let lr = [
            3.162277660168379e-06,
            1.3894954943731388e-05,
            6.105402296585326e-05,
            0.0002682695795279727,
            0.0011787686347935879,
            0.005179474679231213,
            0.02275845926074791,
            0.1,
        ];
        let wd = [
            3.162277660168379e-07,
            1e-06,
            3.162277660168379e-06,
            9.999999999999999e-06,
            3.1622776601683795e-05,
            0.0001,
            0.00031622776601683794,
            0.001,
        ];
        let c = FinetuneConfig::default();
        assert_eq!(c.learning_rates.len(), 8);
        for (a, b) in c.learning_rates.iter().zip(lr) {
            assert!((a - b).abs() <= 1e-14 * b, "{a} vs {b}");
        }
        assert_eq!(c.weight_decays.len(), 9);
        assert_eq!(c.weight_decays[8], 0.0);
        for (a, b) in c.weight_decays.iter().zip(wd) {
            assert!((a - b).abs() <= 1e-14 * b, "{a} vs {b}");
        }
        assert_eq!(c.grid().len(), 72);
        c.validate().unwrap();
    }

    #[test]
    fn the_best_point_is_the_best_mean_over_seeds() {
        // Seed 0 prefers point 0, seed 1 point 2; the mean prefers point 1 (0.55), then 0 (0.5),
        // then 2 (a diverged run counts as 0: 0.475).
        let validation = vec![
            vec![Some(0.9), Some(0.1)],
            vec![Some(0.5), Some(0.6)],
            vec![None, Some(0.95)],
        ];
        assert_eq!(ranking(&validation), [1, 0, 2]);
        // Equals keep grid order.
        assert_eq!(ranking(&[vec![Some(0.5)], vec![Some(0.5)]]), [0, 1]);
    }

    #[test]
    fn finished_jobs_of_the_paper_grid_are_found_again() {
        // Keys hold numbers such as 0.0011787686347935879 that JSON parsing may not give back
        // bit for bit; jobs must still be recognised.
        let finished = |dir: &Path, key: &str| read_job(dir).filter(|j| j.done && j.key == key);
        let dir = tempfile::tempdir().unwrap();
        let config = FinetuneConfig::default();
        let base = TrainConfig::default();
        let test = ImageSet {
            height: 1,
            width: 1,
            channels: 1,
            pixels: vec![0; 3],
            labels: vec![0, 1, 1],
            classes: vec!["a".into(), "b".into()],
            source: "test".into(),
        };
        for (i, point) in config.grid().into_iter().enumerate() {
            for refit in [false, true] {
                let train = config.train_config(&base, Path::new("/runs/a"), &DatasetSource::default(), point, !refit);
                let key = job_key(&train, Measure::MeanPerClass, refit.then_some(&test));
                let job_dir = dir.path().join(format!("{i}-{refit}"));
                std::fs::create_dir_all(&job_dir).unwrap();
                let job = Job {
                    key: key.clone(),
                    validation: Some(0.5),
                    test: None,
                    diverged: None,
                    done: true,
                };
                write_job(&job_dir.join("job.json"), &job).unwrap();
                assert!(finished(&job_dir, &key).is_some(), "{point:?}");
                // Another measure or another pretrained path: the measure counts, the path not.
                assert!(finished(&job_dir, &job_key(&train, Measure::Top1, refit.then_some(&test))).is_none());
                let moved = TrainConfig {
                    pretrained: Some("/elsewhere/a".into()),
                    ..train.clone()
                };
                assert!(
                    finished(
                        &job_dir,
                        &job_key(&moved, Measure::MeanPerClass, refit.then_some(&test))
                    )
                    .is_some()
                );
            }
        }
    }

    #[test]
    fn weight_decay_is_divided_by_the_step_size() {
        let c = FinetuneConfig {
            batch_size: 128,
            ..FinetuneConfig::default()
        };
        let t = c.train_config(
            &TrainConfig::default(),
            Path::new("runs/a"),
            &DatasetSource::default(),
            (0.02, 1e-4),
            true,
        );
        // Step size 0.02 · 128 / 256 = 0.01; 1e-4 / 0.01 = 0.01.
        assert!((t.weight_decay - 0.01).abs() < 1e-15);
        assert_eq!(t.holdout_fraction, 0.2);
        assert!(!t.nesterov);
        assert_eq!(t.decay, Decay::Cosine);
        assert_eq!(t.ema_decay, 0.0);
        assert_eq!(t.warmup_epochs, 0.0);
        t.validate().unwrap();
        let refit = c.train_config(
            &TrainConfig::default(),
            Path::new("runs/a"),
            &DatasetSource::default(),
            (0.02, 0.0),
            false,
        );
        assert_eq!(refit.holdout_fraction, 0.0);
        assert_eq!(refit.weight_decay, 0.0);
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = [
            FinetuneConfig {
                learning_rates: vec![],
                ..FinetuneConfig::default()
            },
            FinetuneConfig {
                weight_decays: vec![-1.0],
                ..FinetuneConfig::default()
            },
            FinetuneConfig {
                validation_fraction: 0.0,
                ..FinetuneConfig::default()
            },
            FinetuneConfig {
                steps: 0,
                ..FinetuneConfig::default()
            },
            FinetuneConfig {
                seeds: Some(0),
                ..FinetuneConfig::default()
            },
        ];
        let names = [
            "learning_rates",
            "weight_decays",
            "validation_fraction",
            "steps",
            "seeds",
        ];
        for (c, name) in bad.iter().zip(names) {
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
    }
}
