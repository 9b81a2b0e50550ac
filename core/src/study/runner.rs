//! Running a study: for every objective × seed, train (or reuse a finished run), then measure it
//! ([`crate::study::measure`]); optionally fine-tune every objective's networks on each target
//! ([`crate::study::finetune`]); then CKA between the networks, the tables and `results.json`.
//! Finished pieces are skipped: each is saved with the settings that produced it and reused while
//! they are unchanged ([`crate::study::store`]).
//!
//! The work is done unit by unit ([`crate::study::plan`]), alone or shared with other worker
//! processes ([`crate::study::workers`]); the results are then assembled from the units' records,
//! so that they are the same however the work was shared.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::compute::{Compute, Precision};
use crate::error::{Error, Result};
use crate::objective::ObjectiveConfig;
use crate::study::aggregate::{summarize, write_tables};
use crate::study::agreement::study_agreement;
use crate::study::cka::CkaSettings;
use crate::study::cka::study_cka;
use crate::study::config::{FinetuneConfig, StudyConfig, TuneConfig};
use crate::study::dynamics::measure_dynamics;
use crate::study::finetune::{FinetuneCka, FinetuneTarget, Pretrained, finetune_objective};
use crate::study::measure::{FEATURES_FILE, Measurer, StudyData};
use crate::study::plan::{PlannedUnit, Unit, plan};
use crate::study::results::{
    Finetune, LayerValue, Protocol, RESULTS_VERSION, RunResult, StudyResults, TargetInfo, Tuning,
};
use crate::study::store::{Marker, Record, Saved, key_of};
use crate::study::workers::{Board, Claim, Share, Take};
use crate::train::{Event, RunDir, TrainConfig, TrainOptions, TrainedModel, train};

/// Progress of a study.
#[derive(Debug, Clone)]
pub enum StudyEvent<'a> {
    /// A piece starts: `what` of run `index` of `total`.
    Piece {
        /// Run index, from 1.
        index: usize,
        /// Runs in the study.
        total: usize,
        /// The run's objective and seed.
        run: &'a str,
        /// What is being done.
        what: &'a str,
    },
    /// A run's results were reused from an earlier invocation.
    Reused {
        /// The run's objective and seed.
        run: &'a str,
    },
    /// This worker waits for units that other workers are doing (or that belong to them).
    Waiting {
        /// The units it waits for.
        units: &'a [String],
    },
    /// A run's training progressed.
    Training {
        /// The run's objective and seed.
        run: &'a str,
        /// What happened.
        event: &'a Event<'a>,
    },
}

/// What a run's measurements record (`runs/<run>/results.json`, keyed by the run's training
/// settings, the targets and the analysis settings).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Measured {
    result: RunResult,
}

/// What a worker's share of a study came to.
#[derive(Debug)]
pub enum StudyOutcome {
    /// Every unit is finished and the results are written.
    Finished(Box<StudyResults>),
    /// This worker's units are finished; these units are other workers' (or, collecting,
    /// unfinished).
    Left(Vec<String>),
}

/// Runs the study into `out`: `out/runs/<objective>-s<seed>/` per run, `out/results.json`, and
/// the summaries shaped like the paper's Tables 1 and 3 (and 2 when it fine-tunes, 4 for a
/// cosine-softmax temperature sweep) as `out/tableN.md` and `out/tableN.csv`.
pub fn run_study(
    study: &StudyConfig,
    out: &Path,
    device: &Device,
    cache_dir: Option<PathBuf>,
    observer: &mut dyn FnMut(StudyEvent),
) -> Result<StudyResults> {
    match run_study_shared(study, out, device, cache_dir, Share::Alone, observer)? {
        StudyOutcome::Finished(results) => Ok(*results),
        StudyOutcome::Left(units) => Err(Error::Unfinished { units }),
    }
}

/// Does this worker's share of the study (see [`Share`]), then, once every unit is finished
/// (by any worker), writes the results as [`run_study`] does. With [`Share::Collect`] no unit is
/// done: a study with unfinished units is refused by their names.
pub fn run_study_shared(
    study: &StudyConfig,
    out: &Path,
    device: &Device,
    cache_dir: Option<PathBuf>,
    share: Share,
    observer: &mut dyn FnMut(StudyEvent),
) -> Result<StudyOutcome> {
    study.validate()?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut board = Board::open(out, share, key_of(study))?;
    let plan = plan(study);
    if *board.share() == Share::Collect {
        let units: Vec<String> = plan
            .iter()
            .filter(|u| !board.is_done(&u.name))
            .map(|u| u.name.clone())
            .collect();
        if !units.is_empty() {
            return Err(Error::Unfinished { units });
        }
    }
    // The results are assembled from the units' records without a word to the observer.
    let quiet = std::cell::Cell::new(false);
    let mut told = |event: StudyEvent| {
        if !quiet.get() {
            observer(event)
        }
    };
    let mut context = StudyContext {
        data: StudyData::load(study, cache_dir.as_deref())?,
        study,
        out,
        device,
        cache_dir,
        compute: Compute::new(device.clone(), Precision::F32),
        total: study.objectives.len() * study.seeds.len(),
        observer: &mut told,
        cancel: None,
        assembling: false,
    };
    let left = context.work(&mut board, &plan)?;
    if !left.is_empty() {
        return Ok(StudyOutcome::Left(left));
    }
    quiet.set(true);
    context.assembling = true;
    context.assemble().map(|r| StudyOutcome::Finished(Box::new(r)))
}

/// One unit of a study as it stands, for `losslens study --dry-run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    /// The unit's name.
    pub name: String,
    /// The units it waits for.
    pub after: Vec<String>,
    /// Finished under the study's current settings.
    pub finished: bool,
    /// The worker that holds a claim on it.
    pub holder: Option<String>,
    /// Whether it is the asking worker's to do.
    pub mine: bool,
}

/// The units of `study` in `out` as they stand, seen by a worker that shares it as `share`;
/// nothing is written.
pub fn study_units(study: &StudyConfig, out: &Path, share: Share) -> Result<Vec<UnitState>> {
    study.validate()?;
    let board = Board::look(out, share, key_of(study));
    let plan = plan(study);
    Ok(plan
        .iter()
        .enumerate()
        .map(|(place, unit)| UnitState {
            name: unit.name.clone(),
            after: unit.after.iter().map(|&a| plan[a].name.clone()).collect(),
            finished: board.is_done(&unit.name),
            holder: board.holder(&unit.name),
            mine: board.owns(place),
        })
        .collect())
}

impl StudyContext<'_, '_> {
    /// Does this worker's units of `plan`, in order, each once what it waits for is finished;
    /// returns the units left to other workers (none once the whole study is finished).
    fn work(&mut self, board: &mut Board, plan: &[PlannedUnit]) -> Result<Vec<String>> {
        // Alone, every unit is looked at (one whose records are gone is done again); shared,
        // the marks of finished units are what the workers go by.
        let shared = *board.share() != Share::Alone;
        let finished = |board: &Board, unit: &PlannedUnit| shared && board.is_done(&unit.name);
        let mut done: Vec<bool> = plan.iter().map(|u| finished(board, u)).collect();
        for (unit, _) in plan.iter().zip(&done).filter(|(_, d)| **d) {
            if let Unit::Run { objective, seed } = unit.unit {
                let label = format!(
                    "{} seed {}",
                    self.study.objectives[objective].config, self.study.seeds[seed]
                );
                (self.observer)(StudyEvent::Reused { run: &label });
            }
        }
        let mut waited: Vec<String> = Vec::new();
        loop {
            let mut progressed = false;
            for (place, unit) in plan.iter().enumerate() {
                if done[place] || !unit.after.iter().all(|&a| done[a]) {
                    continue;
                }
                if finished(board, unit) {
                    (done[place], progressed) = (true, true);
                    continue;
                }
                let Take::Mine(claim) = board.take(&unit.name, place)? else {
                    continue;
                };
                // Finished by another worker since it was looked at.
                if finished(board, unit) {
                    done[place] = true;
                    continue;
                }
                self.cancel = claim.as_ref().map(Claim::lost);
                let outcome = self.unit(unit.unit);
                self.cancel = None;
                match outcome {
                    Err(Error::Cancelled) if claim.is_some() => {
                        return Err(Error::degenerate(
                            &unit.name,
                            "another worker took this unit over: this worker's claim was not renewed \
                             within its lease (the process or the shared storage stalled); use a longer lease",
                        ));
                    }
                    outcome => outcome?,
                }
                board.mark_done(&unit.name)?;
                (done[place], progressed) = (true, true);
                drop(claim);
            }
            let left: Vec<String> = plan
                .iter()
                .zip(&done)
                .filter(|(_, d)| !**d)
                .map(|(u, _)| u.name.clone())
                .collect();
            let keep_waiting = match board.share() {
                Share::Fixed(slot) => (0..plan.len()).any(|place| !done[place] && slot.owns(place)),
                // A claiming worker stays until the study is finished, to take over the units of
                // workers that die.
                Share::Claim(_) => !left.is_empty(),
                Share::Alone | Share::Collect => false,
            };
            if !keep_waiting {
                return Ok(left);
            }
            if !progressed {
                if left != waited {
                    (self.observer)(StudyEvent::Waiting { units: &left });
                    waited = left;
                }
                std::thread::sleep(board.poll_interval());
            }
        }
    }

    /// Does one unit of the study's work.
    fn unit(&mut self, unit: Unit) -> Result<()> {
        let study = self.study;
        let seeds = study.seeds.len();
        match unit {
            Unit::Tune { objective, k } => {
                let tune = study.tune.as_ref().ok_or_else(|| unplanned("tuning"))?;
                self.tune_run(tune, &study.objectives[objective].config, k, objective * seeds + 1)
            }
            Unit::Run { objective, seed } => {
                let config = &study.objectives[objective].config;
                let train = self.run_config(objective, seed)?;
                self.run(config, study.seeds[seed], train, objective * seeds + seed + 1)
                    .map(|_| ())
            }
            Unit::Finetune { objective, target } => {
                let finetune = study.finetune.as_ref().ok_or_else(|| unplanned("fine-tuning"))?;
                let pretrained = (0..seeds)
                    .map(|s| self.pretrained(objective, s))
                    .collect::<Result<Vec<_>>>()?;
                let config = &study.objectives[objective].config;
                let index = (objective + 1) * seeds;
                self.finetune_on(finetune, config, &pretrained, index, target)
                    .map(|_| ())
            }
            Unit::Cka => {
                // The main objectives' runs, which the unit waits for (not the sweeps').
                let mut runs = Vec::new();
                for objective in (0..study.objectives.len()).filter(|&o| !study.objectives[o].sweep) {
                    for seed in 0..seeds {
                        runs.push(self.saved_run(objective, seed)?);
                    }
                }
                self.cka(&runs).map(|_| ())
            }
        }
    }

    /// The whole study from its finished units' records: `results.json` and the tables.
    fn assemble(&mut self) -> Result<StudyResults> {
        let study = self.study;
        let mut runs = Vec::new();
        let mut tuning = Vec::new();
        let mut index = 0;
        for objective in study.objectives.iter().map(|o| &o.config) {
            let first = runs.len();
            let mut pretrained = Vec::new();
            // The paper's protocol: the epochs tuned on a holdout, then every image for that many.
            let tuned = match &study.tune {
                Some(tune) => Some(self.tune(tune, objective, index + 1)?),
                None => None,
            };
            for &seed in &study.seeds {
                index += 1;
                let config = run_config_tuned(study, objective, seed, tuned.as_ref());
                let (result, run) = self.run(objective, seed, config, index)?;
                runs.push(result);
                pretrained.push(run);
            }
            if let Some(finetune) = &study.finetune {
                self.finetune(finetune, objective, &pretrained, index, &mut runs[first..])?;
            }
            tuning.extend(tuned);
        }
        let (cka, cka_blocks, cka_batch_size) = self.cka(&runs)?;
        // Figs. C.4–C.7 from the runs' predictions, which results.json then leaves out.
        let mains: Vec<String> = study
            .objectives
            .iter()
            .filter(|o| !o.sweep)
            .map(|o| o.config.to_string())
            .collect();
        let agreement = study_agreement(&runs, &mains, &self.data.source_test.labels)?;
        runs.iter_mut().for_each(|r| r.predictions.clear());
        let data = &self.data;
        let results = StudyResults {
            version: RESULTS_VERSION,
            name: study.name.clone(),
            source: study.source.to_string(),
            model: study.model.to_string(),
            targets: study
                .targets
                .iter()
                .map(|t| TargetInfo {
                    name: t.name.clone(),
                    data: t.data.to_string(),
                    measure: t.measure,
                    multilabel: t.labels.is_some(),
                })
                .collect(),
            cka,
            cka_blocks,
            sweeps: study.sweeps(),
            tuning,
            protocol: Some(Protocol {
                separation_images: data.separation.len(),
                separation_per_class: per_class_minimum(&data.separation.labels),
                sparsity_images: data.sparsity.len(),
                test_images: data.source_test.len(),
                feature_images: data.features.len(),
                cka_images: data.cka.len(),
                cka_batch_size,
                cka_passes: study.analysis.cka_passes,
            }),
            runs,
            summary: None,
            agreement,
        };
        let summary = summarize(&results)?;
        write_tables(&results, self.out)?;
        let results = StudyResults {
            summary: Some(summary),
            ..results
        };
        crate::atomic::write_json(&self.out.join("results.json"), &results)?;
        Ok(results)
    }
}

/// The error of a unit that its study does not have (a plan out of step with its study).
fn unplanned(what: &str) -> Error {
    Error::degenerate(
        "the study's plan",
        format!("a {what} unit, but the study has no {what} section"),
    )
}

/// The training configuration of the run of `objective` with `seed`: the study's, with the
/// epochs chosen on the holdout when the study tunes them (`tuned`).
fn run_config_tuned(
    study: &StudyConfig,
    objective: &ObjectiveConfig,
    seed: u64,
    tuned: Option<&Tuning>,
) -> TrainConfig {
    let mut config = study.run_config(objective, seed);
    if let Some(t) = tuned {
        config.epochs = Some(t.epochs);
        config.steps = None;
        config.holdout_fraction = 0.0;
    }
    config
}

/// Images of the smallest class among `labels`.
fn per_class_minimum(labels: &[usize]) -> usize {
    let mut counts = std::collections::BTreeMap::new();
    for &l in labels {
        *counts.entry(l).or_insert(0usize) += 1;
    }
    counts.into_values().min().unwrap_or(0)
}

/// `softmax-s0`, `cosine-softmax-temperature-0.05-s1`: a folder name per run.
pub(crate) fn run_folder(objective: &ObjectiveConfig, seed: u64) -> String {
    format!("{}-s{seed}", crate::study::slug(&objective.to_string()))
}

/// A study in progress: its settings, where it writes, what it runs on and the data every run
/// is measured on.
struct StudyContext<'a, 'o> {
    study: &'a StudyConfig,
    out: &'a Path,
    device: &'a Device,
    cache_dir: Option<PathBuf>,
    compute: Compute,
    data: StudyData,
    /// Runs in the study.
    total: usize,
    observer: &'o mut dyn FnMut(StudyEvent),
    /// Set when another worker took the current unit over: its training stops.
    cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Assembling the results of finished units: nothing may be trained or measured any more.
    assembling: bool,
}

impl StudyContext<'_, '_> {
    /// Tells the observer that `what` of run `index` starts.
    fn piece(&mut self, index: usize, run: &str, what: &str) {
        announce(self.observer, (index, self.total), run, what);
    }

    /// Trains (or reuses) and measures the run of `objective` with `seed`, the `index`-th run.
    fn run(
        &mut self,
        objective: &ObjectiveConfig,
        seed: u64,
        config: TrainConfig,
        index: usize,
    ) -> Result<(RunResult, Pretrained)> {
        let label = format!("{objective} seed {seed}");
        let folder = run_folder(objective, seed);
        let dir = self.out.join("runs").join(&folder);
        let pretrained = Pretrained {
            dir: dir.clone(),
            config: config.clone(),
        };
        let (record, key) = self.measured_record(&dir, &config);
        if let Saved::Same(Measured { result }) = record.read() {
            (self.observer)(StudyEvent::Reused { run: &label });
            return Ok((result, pretrained));
        }
        if self.assembling {
            return Err(Error::Unfinished {
                units: vec![format!("run-{folder}")],
            });
        }
        self.piece(index, &label, "training");
        let trained = self.train(&dir, &config, &label)?;
        let measurer = Measurer {
            device: self.device,
            compute: &self.compute,
            batch_size: self.study.analysis.batch_size,
        };
        announce(
            self.observer,
            (index, self.total),
            &label,
            "evaluating on the source test split",
        );
        let own = measurer.training_images(&trained, &self.study.analysis, self.cache_dir.as_deref())?;
        let (mut source, predictions) =
            measurer.source(&trained, &self.data.source_test, &self.study.analysis, &own)?;
        source.robustness = {
            let (observer, total) = (&mut *self.observer, self.total);
            measurer.robustness(&trained, &self.data.robustness, &mut |what| {
                announce(observer, (index, total), &label, &format!("robustness: {what}"));
            })?
        };
        let mut transfer = Vec::new();
        for target in &self.data.targets {
            announce(
                self.observer,
                (index, self.total),
                &label,
                &format!("probing {}", target.config.name),
            );
            transfer.push(measurer.transfer(&trained, target, self.study.analysis.assignment)?);
        }
        announce(
            self.observer,
            (index, self.total),
            &label,
            "class separation, sparsity and neural collapse",
        );
        let analysis = &self.study.analysis;
        let layers = measurer.separation(
            &trained,
            &self.data.separation,
            analysis.separation_pooled,
            analysis.angles,
        )?;
        let sparsity = measurer.sparsity(&trained, &self.data.sparsity)?;
        let features = measurer.save_features(
            &trained,
            &self.data.features,
            self.study.source.to_string(),
            &dir.join(FEATURES_FILE),
        )?;
        let mut result = RunResult {
            objective: objective.to_string(),
            kind: objective.name(),
            seed,
            best_epoch: trained.info.best_epoch,
            source,
            transfer,
            separation: layers
                .layers
                .iter()
                .map(|l| LayerValue {
                    layer: l.layer.clone(),
                    value: l.cosine,
                })
                .collect(),
            separation_distances: layers.layers,
            sparsity,
            collapse: layers.collapse,
            spectra: Some(layers.spectra),
            distances: layers.distances,
            predictions,
            features: features.map(|_| format!("runs/{folder}/{FEATURES_FILE}")),
            finetune: Vec::new(),
            dynamics: Vec::new(),
        };
        if config.keep_every.is_some() {
            let observer = &mut *self.observer;
            let total = self.total;
            result.dynamics = measure_dynamics(
                &measurer,
                &dir,
                &trained,
                &result,
                &self.data,
                own.train.as_ref(),
                &key,
                &mut |epoch| {
                    let what = format!("training dynamics: the weights of epoch {epoch}");
                    announce(observer, (index, total), &label, &what);
                },
            )?;
        }
        record.write(&Measured { result: result.clone() })?;
        Ok((result, pretrained))
    }

    /// The record of the measurements of the run in `dir` trained with `config`, and its key.
    fn measured_record(&self, dir: &Path, config: &TrainConfig) -> (Record, String) {
        let mut key = serde_json::json!({
            "train": config,
            "targets": self.study.targets,
            "analysis": self.study.analysis,
        });
        if !self.study.extra_tests.is_empty() {
            key["extra_tests"] = serde_json::json!(self.study.extra_tests);
        }
        let key = key_of(&key);
        (Record::new(dir.join("results.json"), key.clone()), key)
    }

    /// The training configuration of the study's `objective`-th objective with its `seed`-th
    /// seed, with the epochs chosen by its finished tuning runs when the study tunes them.
    fn run_config(&self, objective: usize, seed: usize) -> Result<TrainConfig> {
        let config = &self.study.objectives[objective].config;
        let tuned = match &self.study.tune {
            Some(tune) => Some(self.tuned(tune, config)?),
            None => None,
        };
        Ok(run_config_tuned(
            self.study,
            config,
            self.study.seeds[seed],
            tuned.as_ref(),
        ))
    }

    /// The pretrained network of the `objective`-th objective with the `seed`-th seed.
    fn pretrained(&self, objective: usize, seed: usize) -> Result<Pretrained> {
        let folder = run_folder(&self.study.objectives[objective].config, self.study.seeds[seed]);
        Ok(Pretrained {
            dir: self.out.join("runs").join(folder),
            config: self.run_config(objective, seed)?,
        })
    }

    /// The saved measurements of a finished run (the `objective`-th objective, `seed`-th seed).
    fn saved_run(&self, objective: usize, seed: usize) -> Result<RunResult> {
        let run = self.pretrained(objective, seed)?;
        match self.measured_record(&run.dir, &run.config).0.read() {
            Saved::Same(Measured { result }) => Ok(result),
            _ => Err(Error::Unfinished {
                units: vec![format!(
                    "run-{}",
                    run_folder(&self.study.objectives[objective].config, self.study.seeds[seed])
                )],
            }),
        }
    }

    /// CKA between the networks of the main objectives (Fig. 2b) and between the blocks of the
    /// reference network and its partners (Fig. 2a); see [`crate::study::cka`].
    fn cka(
        &mut self,
        runs: &[RunResult],
    ) -> Result<(
        Vec<crate::study::results::LayerCka>,
        Vec<crate::study::results::BlockCka>,
        usize,
    )> {
        let mains: Vec<String> = self
            .study
            .objectives
            .iter()
            .filter(|o| !o.sweep)
            .map(|o| o.config.to_string())
            .collect();
        let main_runs: Vec<&RunResult> = runs.iter().filter(|r| mains.contains(&r.objective)).collect();
        let passes = self.study.analysis.cka_passes;
        if passes == 0 || main_runs.len() < 2 {
            return Ok((Vec::new(), Vec::new(), 0));
        }
        let total = self.total;
        let observer = &mut *self.observer;
        let mut progress = |done: usize, all: usize| {
            let per_pass = (all / passes).max(1);
            if done % per_pass == 1 || per_pass == 1 {
                let what = format!("CKA between the networks, pass {} of {passes}", done / per_pass + 1);
                announce(observer, (total, total), "all runs", &what);
            }
        };
        study_cka(
            self.study,
            self.out,
            &main_runs,
            &self.data.cka,
            &self.data.separation,
            &self.compute,
            self.device,
            &mut progress,
        )
    }

    /// Trains the tuning runs of `objective` on their holdout (or reuses them) and chooses the
    /// epoch with the highest holdout accuracy averaged over them (the earliest of equals).
    fn tune(&mut self, tune: &TuneConfig, objective: &ObjectiveConfig, index: usize) -> Result<Tuning> {
        for k in 0..tune.seeds {
            self.tune_run(tune, objective, k, index)?;
        }
        self.tuned(tune, objective)
    }

    /// The folder of tuning run `k` of `objective`.
    fn tune_dir(&self, objective: &ObjectiveConfig, k: usize) -> PathBuf {
        self.out.join("runs").join(format!(
            "{}-tune-s{}",
            crate::study::slug(&objective.to_string()),
            TuneConfig::seed(k)
        ))
    }

    /// Trains tuning run `k` of `objective` on its holdout, unless it finished.
    fn tune_run(&mut self, tune: &TuneConfig, objective: &ObjectiveConfig, k: usize, index: usize) -> Result<()> {
        let config = self.study.tune_config(tune, objective, k);
        let label = format!("{objective} tuning run {} of {}", k + 1, tune.seeds);
        let dir = self.tune_dir(objective, k);
        announce(
            self.observer,
            (index, self.total),
            &label,
            "training on the holdout split to choose the epochs",
        );
        self.ensure_trained(&dir, &config, &label)
    }

    /// The epochs chosen by the finished tuning runs of `objective`: the epoch with the highest
    /// holdout accuracy averaged over them (the earliest of equals).
    fn tuned(&self, tune: &TuneConfig, objective: &ObjectiveConfig) -> Result<Tuning> {
        let mut curves: Vec<Vec<f64>> = Vec::new();
        for k in 0..tune.seeds {
            let run = RunDir::new(self.tune_dir(objective, k));
            if !run.info().is_ok_and(|i| i.finished) {
                return Err(Error::Unfinished {
                    units: vec![format!(
                        "tune-{}-s{}",
                        crate::study::slug(&objective.to_string()),
                        TuneConfig::seed(k)
                    )],
                });
            }
            let history = run.history()?;
            curves.push(history.iter().map(|r| r.holdout_accuracy.unwrap_or(f64::NAN)).collect());
        }
        let epochs = curves.iter().map(Vec::len).min().unwrap_or(0);
        let mean: Vec<f64> = (0..epochs)
            .map(|e| curves.iter().map(|c| c[e]).sum::<f64>() / curves.len() as f64)
            .collect();
        let best = mean
            .iter()
            .enumerate()
            .fold(None, |best: Option<(usize, f64)>, (e, &a)| match best {
                Some((_, b)) if b >= a => best,
                _ if a.is_finite() => Some((e, a)),
                _ => best,
            })
            .map(|(e, _)| e + 1)
            .ok_or_else(|| {
                Error::degenerate(
                    format!("tuning {objective}"),
                    "no tuning run reported a holdout accuracy",
                )
            })?;
        tracing::info!("{objective}: {best} epochs chosen on the holdout");
        Ok(Tuning {
            objective: objective.to_string(),
            epochs: best,
            holdout_accuracy: mean,
        })
    }

    /// The trained network of the run `config` in `dir`: trained (or its training resumed)
    /// unless it finished with these settings.
    fn train(&mut self, dir: &Path, config: &TrainConfig, label: &str) -> Result<TrainedModel> {
        self.ensure_trained(dir, config, label)?;
        RunDir::new(dir).load(self.device)
    }

    /// Trains (or resumes) the run `config` in `dir` unless it finished with these settings.
    fn ensure_trained(&mut self, dir: &Path, config: &TrainConfig, label: &str) -> Result<()> {
        let run = RunDir::new(dir);
        if self.assembling {
            if run.info().is_ok_and(|i| i.finished) {
                return Ok(());
            }
            return Err(Error::Unfinished {
                units: vec![dir.display().to_string()],
            });
        }
        prepare_run_dir(dir, config)?;
        let finished = run.exists() && run.info().is_ok_and(|i| i.finished);
        if !finished {
            let options = TrainOptions {
                resume: run.exists(),
                cache_dir: self.cache_dir.clone(),
                cancel: self.cancel.clone(),
                ..TrainOptions::default()
            };
            let observer = &mut *self.observer;
            train(config, dir, &options, self.device, &mut |event| {
                observer(StudyEvent::Training {
                    run: label,
                    event: &event,
                })
            })?;
        }
        Ok(())
    }

    /// Fine-tunes the networks of one objective (`pretrained`, one per seed; their results are
    /// `runs`) on every target, the seeds sharing one choice of hyperparameters per target.
    fn finetune(
        &mut self,
        config: &FinetuneConfig,
        objective: &ObjectiveConfig,
        pretrained: &[Pretrained],
        index: usize,
        runs: &mut [RunResult],
    ) -> Result<()> {
        for target in 0..self.data.targets.len() {
            let results = self.finetune_on(config, objective, pretrained, index, target)?;
            for (run, result) in runs.iter_mut().zip(results) {
                run.finetune.push(result);
            }
        }
        Ok(())
    }

    /// Fine-tunes the networks of one objective (`pretrained`, one per seed) on the study's
    /// `target`-th target: one result per fine-tuned seed.
    fn finetune_on(
        &mut self,
        config: &FinetuneConfig,
        objective: &ObjectiveConfig,
        pretrained: &[Pretrained],
        index: usize,
        target: usize,
    ) -> Result<Vec<Finetune>> {
        let label = objective.to_string();
        let count = config.seeds.map_or(pretrained.len(), |n| n.min(pretrained.len()));
        let analysis = &self.study.analysis;
        let t = &self.data.targets[target];
        let cka = (config.cka && analysis.cka_passes > 0).then(|| FinetuneCka {
            images: t.cka_images(),
            settings: CkaSettings {
                batch_size: analysis.cka_batch_size,
                passes: analysis.cka_passes,
                inference_batch: analysis.batch_size,
            },
            compute: &self.compute,
        });
        let target = FinetuneTarget {
            name: &t.config.name,
            data: &t.config.data,
            measure: t.config.measure,
            test: &t.test,
            cka,
        };
        let options = TrainOptions {
            cache_dir: self.cache_dir.clone(),
            cancel: self.cancel.clone(),
            ..TrainOptions::default()
        };
        let total = self.total;
        let observer = &mut *self.observer;
        finetune_objective(
            config,
            &pretrained[..count],
            target,
            analysis.batch_size,
            self.device,
            &options,
            &mut |what| {
                observer(StudyEvent::Piece {
                    index,
                    total,
                    run: &label,
                    what,
                })
            },
        )
    }
}

/// Tells `observer` that `what` of run `index` of `total` starts.
fn announce(observer: &mut dyn FnMut(StudyEvent), (index, total): (usize, usize), run: &str, what: &str) {
    observer(StudyEvent::Piece {
        index,
        total,
        run,
        what,
    });
}

/// The file in each run folder that records the study's training configuration of the run.
const TRAINED_WITH: &str = "trained-with.json";

/// Makes `dir` ready to train (or reuse) the run `config`, just before training starts: a run
/// trained with other settings is moved aside whole (`<run>.superseded-<n>`, with everything
/// computed from it, never deleted), so that it is trained again; the settings are recorded
/// before training starts. A run folder without the record (from an older version) is kept as it
/// is.
fn prepare_run_dir(dir: &Path, config: &TrainConfig) -> Result<()> {
    let record = Record::new(dir.join(TRAINED_WITH), key_of(config));
    let saved = match record.read::<Marker>() {
        // A record of the earlier layout: the settings alone, as pretty JSON.
        Saved::Nothing if record.path().is_file() => {
            let legacy = std::fs::read_to_string(record.path()).ok();
            if legacy.is_some_and(|text| serde_json::to_string_pretty(config).is_ok_and(|key| text == key)) {
                return record.write(&Marker {});
            }
            Saved::Other
        }
        saved => saved,
    };
    match saved {
        Saved::Same(_) => return Ok(()),
        Saved::Other => {
            let kept = crate::atomic::move_aside(dir)?;
            tracing::warn!(
                "{}: the training settings changed; the earlier run is kept in {} and this one is trained again",
                dir.display(),
                kept.display()
            );
        }
        Saved::Nothing if RunDir::new(dir).exists() => return Ok(()),
        Saved::Nothing => {}
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    record.write(&Marker {})
}
