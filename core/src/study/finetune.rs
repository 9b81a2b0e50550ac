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

use crate::compute::Compute;
use crate::data::{DatasetSource, ImageSet};
use crate::error::{Error, Result};
use crate::study::cka::{CkaSettings, Network, network_cka};
use crate::study::config::FinetuneConfig;
use crate::study::measure::accuracy_in;
use crate::study::results::{Finetune, GridPoint, LayerValue, Measure};
use crate::study::store::{Record, Saved, key_of};
use crate::train::{Decay, RunDir, TrainConfig, TrainOptions, train};

impl FinetuneConfig {
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
            // Fine-tuning trains the new final layer and the body, not an auxiliary classifier.
            aux_head: false,
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
            autoaugment: None,
            mixup: None,
            normalization: crate::data::augment::Normalization::Dataset,
            seed: base.seed,
            eval_batch_size: base.eval_batch_size,
            checkpoints: Some(self.checkpoints),
            keep_every: None,
            precision: base.precision,
            loss_scale: base.loss_scale,
        }
    }
}

/// A pretrained run of one seed of an objective.
#[derive(Debug, Clone)]
pub(crate) struct Pretrained {
    /// Its folder.
    pub dir: PathBuf,
    /// Its training configuration.
    pub config: TrainConfig,
}

/// A fine-tuning target: its name, data, accuracy measure and test images (in the networks'
/// channels).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FinetuneTarget<'a> {
    /// The name (also the folder name under `finetune/`).
    pub name: &'a str,
    /// The dataset.
    pub data: &'a DatasetSource,
    /// The accuracy measure.
    pub measure: Measure,
    /// The test images.
    pub test: &'a ImageSet,
    /// CKA between the pretrained and the fine-tuned networks (Fig. D.3), when measured.
    pub cka: Option<FinetuneCka<'a>>,
}

/// How CKA between a pretrained and its fine-tuned network is measured (Fig. D.3).
#[derive(Clone, Copy)]
pub(crate) struct FinetuneCka<'a> {
    /// The target's test images it is measured on.
    pub images: &'a ImageSet,
    /// Minibatches and passes.
    pub settings: CkaSettings,
    /// Where the products are computed.
    pub compute: &'a Compute,
}

impl std::fmt::Debug for FinetuneCka<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FinetuneCka")
            .field("images", &self.images.len())
            .field("settings", &self.settings)
            .finish()
    }
}

/// What `cka.json` in a refit's folder holds: the CKA of each layer, under the key of the
/// settings and images it was measured with.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedFinetuneCka {
    layers: Vec<LayerValue>,
}

/// CKA between each layer of the pretrained network in `pretrained` and the same layer of the
/// fine-tuned one in `refit`, both fed the target's images as the fine-tuned network takes
/// them; reused from `cka.json` in `refit` while its settings and images are unchanged
/// (`starts` is called only when it is measured).
fn refit_cka(
    pretrained: &Path,
    refit: &Path,
    cka: FinetuneCka,
    device: &Device,
    starts: &mut dyn FnMut(),
) -> Result<Vec<LayerValue>> {
    let images = cka.images;
    let record = Record::new(
        refit.join("cka.json"),
        key_of(&serde_json::json!({
            "images": fingerprint(images),
            "batch_size": cka.settings.batch_size,
            "passes": cka.settings.passes,
        })),
    );
    if let Saved::Same(saved) = record.read::<SavedFinetuneCka>() {
        return Ok(saved.layers);
    }
    starts();
    let tuned = RunDir::new(refit).load(device)?;
    let before = RunDir::new(pretrained).load(device)?;
    let networks = [
        Network {
            label: "pretrained".into(),
            model: before.model,
            input: tuned.input.clone(),
            config: before.info.model,
        },
        Network {
            label: "fine-tuned".into(),
            model: tuned.model,
            input: tuned.input,
            config: tuned.info.model,
        },
    ];
    let found = network_cka(
        &networks,
        &[],
        images,
        &cka.settings,
        cka.compute,
        device,
        &mut |_, _| {},
    )?;
    let layers: Vec<LayerValue> = found
        .layers
        .into_iter()
        .zip(found.same_layer)
        .map(|(layer, values)| LayerValue {
            layer,
            value: values[0][1],
        })
        .collect();
    record.write(&SavedFinetuneCka { layers: layers.clone() })?;
    Ok(layers)
}

/// What a job measured (`job.json`, a [`Record`] keyed by [`job_key`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Job {
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
pub(crate) fn finetune_objective(
    config: &FinetuneConfig,
    runs: &[Pretrained],
    target: FinetuneTarget,
    batch_size: usize,
    device: &Device,
    options: &TrainOptions,
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
        options,
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
            let cka = match target.cka {
                Some(cka) => {
                    let refit = job_dir(&run.dir, target.name, chosen, true);
                    let what = format!(
                        "CKA between the pretrained and the fine-tuned network on {} ({} images)",
                        target.name,
                        cka.images.len()
                    );
                    refit_cka(&run.dir, &refit, cka, device, &mut || (jobs.progress)(&what))?
                }
                None => Vec::new(),
            };
            out.push(Finetune {
                cka,
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
    Err(Error::degenerate(
        format!("fine-tuning on {}", target.name),
        "the training loss diverged at every point of the grid; lower the learning rates",
    ))
}

/// Mean over seeds of one grid point's validation accuracy; a diverged run counts as 0.
fn mean_validation(per_seed: &[Option<f64>]) -> f64 {
    per_seed.iter().map(|v| v.unwrap_or(0.0)).sum::<f64>() / per_seed.len().max(1) as f64
}

/// Grid points from best to worst by mean validation accuracy over seeds (`validation[p][s]`:
/// point `p`, seed `s`); equals keep grid order.
pub(crate) fn ranking(validation: &[Vec<Option<f64>>]) -> Vec<usize> {
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
    let test = test.map(fingerprint);
    key_of(&serde_json::json!({ "train": train, "measure": measure, "test": test }))
}

/// What identifies a set of images in a key: its count and an FNV-1a checksum of its labels.
fn fingerprint(set: &ImageSet) -> serde_json::Value {
    let checksum = set.labels.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &l| {
        (h ^ l as u64).wrapping_mul(0x0100_0000_01b3)
    });
    serde_json::json!({ "images": set.len(), "labels": format!("{checksum:016x}") })
}

/// The record of the job in `dir`.
fn job_record(dir: &Path, key: String) -> Record {
    Record::new(dir.join("job.json"), key)
}

/// The fine-tuning runs of one target, announced to `progress` when they have work to do.
struct Jobs<'a, 'p> {
    config: &'a FinetuneConfig,
    target: FinetuneTarget<'a>,
    batch_size: usize,
    device: &'a Device,
    /// How every job trains besides its configuration (the cache folder, a cancel flag).
    options: &'a TrainOptions,
    progress: &'p mut dyn FnMut(&str),
}

impl Jobs<'_, '_> {
    /// Fine-tunes `run` (at its canonical path `base`) at `point`: the search's run on training
    /// images with validation, or the refit on all of them scored on the test images. `count`
    /// ends the progress line.
    fn run(&mut self, run: &Pretrained, base: &Path, point: (f64, f64), refit: bool, count: &str) -> Result<Job> {
        let target = self.target;
        let config = self.config.train_config(&run.config, base, target.data, point, !refit);
        let dir = job_dir(&run.dir, target.name, point, refit);
        let record = job_record(&dir, job_key(&config, target.measure, refit.then_some(target.test)));
        let resume = match record.read::<Job>() {
            Saved::Same(job) if job.done => return Ok(job),
            Saved::Same(_) => true,
            Saved::Other | Saved::Nothing => false,
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
            &record,
            resume,
            &config,
            target.measure,
            device,
            self.options,
            &mut |run_dir| {
                if refit {
                    let trained = RunDir::new(run_dir).load(device)?;
                    accuracy_in(&trained, target.test, target.measure, batch_size, device).map(Some)
                } else {
                    Ok(None)
                }
            },
        )
    }
}

/// Runs the training run `config` in the folder of `record` (continuing it when `resume`, else
/// from nothing): the last epoch's validation accuracy in `measure`, and `test`'s result. A
/// finished grid point keeps only its records; the refit (whose `test` measures it) keeps its
/// weights.
fn run_job(
    record: &Record,
    resume: bool,
    config: &TrainConfig,
    measure: Measure,
    device: &Device,
    options: &TrainOptions,
    test: &mut dyn FnMut(&Path) -> Result<Option<f64>>,
) -> Result<Job> {
    let dir = record.path().parent().expect("a job record lies in its folder");
    if !resume {
        // Another configuration was here: keep it aside, and start over.
        if dir.exists() {
            let kept = crate::atomic::move_aside(dir)?;
            tracing::warn!(
                "{}: the fine-tuning settings changed; the earlier job is kept in {}",
                dir.display(),
                kept.display()
            );
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        record.write(&Job::default())?;
    }
    let run = RunDir::new(dir);
    let options = TrainOptions {
        resume: run.exists(),
        ..options.clone()
    };
    let mut job = Job {
        done: true,
        ..Job::default()
    };
    match train(config, dir, &options, device, &mut |_| {}) {
        Ok(summary) => {
            job.validation = summary.history.last().and_then(|r| match measure {
                Measure::Top1 => r.holdout_accuracy,
                Measure::MeanPerClass => r.holdout_mean_per_class_accuracy,
            });
            job.test = test(dir)?;
        }
        Err(e @ Error::Diverged { .. }) => job.diverged = Some(e.to_string()),
        Err(e) => return Err(e),
    }
    record.write(&job)?;
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
        let finished = |dir: &Path, key: &str| match job_record(dir, key.to_string()).read::<Job>() {
            Saved::Same(job) if job.done => Some(job),
            _ => None,
        };
        let dir = tempfile::tempdir().unwrap();
        let config = FinetuneConfig::default();
        let base = TrainConfig::default();
        let test = ImageSet::uniform(
            [1, 1],
            1,
            vec![0; 3],
            vec![0, 1, 1],
            vec!["a".into(), "b".into()],
            "test".into(),
        );
        for (i, point) in config.grid().into_iter().enumerate() {
            for refit in [false, true] {
                let train = config.train_config(&base, Path::new("/runs/a"), &DatasetSource::default(), point, !refit);
                let key = job_key(&train, Measure::MeanPerClass, refit.then_some(&test));
                let job_dir = dir.path().join(format!("{i}-{refit}"));
                std::fs::create_dir_all(&job_dir).unwrap();
                let job = Job {
                    validation: Some(0.5),
                    done: true,
                    ..Job::default()
                };
                job_record(&job_dir, key.clone()).write(&job).unwrap();
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
