//! Running a study: for every objective × seed, train (or reuse a finished run), evaluate on the
//! source test split, probe every target with fixed penultimate features, and measure class
//! separation and sparsity per layer; optionally fine-tune every network on each target
//! ([`crate::study::finetune`]). Finished pieces are skipped: each run's results are saved with
//! the configuration that produced them and reused while it is unchanged.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::analysis::classes::Classes;
use crate::analysis::collapse::{Collapse, neural_collapse};
use crate::analysis::minibatch_cka::{MinibatchCkaConfig, minibatch_cka};
use crate::analysis::separation::{Distance, class_separation};
use crate::analysis::sparsity::fraction_nonzero;
use crate::compute::{Compute, Precision};
use crate::data::{DatasetSource, ImageSet, Split};
use crate::error::{Error, Result, invalid_setting};
use crate::features::{Array, FeatureFile, LABELS, Layer};
use crate::inference::{self, Pooling, Request};
use crate::model::{Architecture, PENULTIMATE};
use crate::objective::ObjectiveConfig;
use crate::probe::knn::{KnnConfig, knn_probe};
use crate::probe::linear::{LinearProbeConfig, linear_probe};
use crate::probe::metrics::{Evaluation, evaluate};
use crate::probe::split::stratified_sample;
use crate::study::aggregate::{summarize, tables};
use crate::study::finetune::{FinetuneConfig, FinetuneTarget, Pretrained, finetune_objective};
use crate::study::results::{
    LayerCka, LayerValue, Measure, RESULTS_VERSION, RunResult, SourceEval, StudyResults, TargetInfo, Transfer,
};
use crate::train::{RunDir, TrainConfig, TrainOptions, TrainedModel, train};

/// A target dataset of a study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Its name in tables.
    pub name: String,
    /// The dataset (with `train` and `test` splits).
    pub data: DatasetSource,
    /// Its accuracy measure. Default top-1.
    #[serde(default)]
    pub measure: Measure,
}

/// How much data the analyses use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Source training images (class-stratified) for class separation. Default 2,000.
    pub separation_images: usize,
    /// Source training images for activation sparsity (whole maps). Default 256.
    pub sparsity_images: usize,
    /// At most this many training images per target for the probes (class-stratified); default
    /// all.
    pub probe_train_limit: Option<usize>,
    /// At most this many test images (class-stratified) of the source and of each target; default
    /// all. For quick looks: the accuracies are then estimates from fewer images.
    pub test_limit: Option<usize>,
    /// Source training images (class-stratified, the same for every run) whose features of every
    /// layer are saved with each run (`features.npz`) and compared across runs with CKA
    /// (Fig. 2). Default 500; 0 skips both.
    pub feature_images: usize,
    /// Images per inference batch. Default 256.
    pub batch_size: usize,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            separation_images: 2000,
            sparsity_images: 256,
            probe_train_limit: None,
            test_limit: None,
            feature_images: 500,
            batch_size: 256,
        }
    }
}

/// A study (`STUDY.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyConfig {
    /// Its name.
    pub name: String,
    /// The pretraining dataset.
    pub source: DatasetSource,
    /// The transfer datasets.
    #[serde(default)]
    pub targets: Vec<TargetConfig>,
    /// The network.
    pub model: Architecture,
    /// The objectives to compare (with hyperparameters).
    pub objectives: Vec<ObjectiveConfig>,
    /// Seeds; each objective is trained once per seed. Default `[0]`.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// The training recipe; its `data`, `model`, `objective` and `seed` are set per run.
    #[serde(default)]
    pub train: TrainConfig,
    /// Analysis sizes.
    #[serde(default)]
    pub analysis: AnalysisConfig,
    /// Fine-tuning the whole network on each target (Table 2): slow, so off unless this
    /// section is present (`[finetune]` alone takes the paper's protocol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetune: Option<FinetuneConfig>,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

impl StudyConfig {
    /// Refuses empty studies and bad settings.
    pub fn validate(&self) -> Result<()> {
        if self.objectives.is_empty() {
            return invalid_setting("objectives", "[]", "at least one objective");
        }
        if self.seeds.is_empty() {
            return invalid_setting("seeds", "[]", "at least one seed");
        }
        for o in &self.objectives {
            o.validate()?;
        }
        if let Some(f) = &self.finetune {
            f.validate()?;
            if self.targets.is_empty() {
                return invalid_setting("finetune", "a [finetune] section", "targets to fine-tune on");
            }
        }
        if self.analysis.batch_size == 0 {
            return invalid_setting("analysis.batch_size", 0, "at least 1");
        }
        let mut names: Vec<&str> = self.targets.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return invalid_setting("targets", format!("{names:?}"), "distinct target names");
        }
        Ok(())
    }

    /// The training configuration of one run.
    pub fn run_config(&self, objective: &ObjectiveConfig, seed: u64) -> TrainConfig {
        TrainConfig {
            data: self.source.clone(),
            model: self.model,
            objective: *objective,
            seed,
            ..self.train.clone()
        }
    }
}

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
}

/// The saved results of a run with the configuration that produced them (as JSON text: compared
/// as text, since numbers read back from JSON may differ from the written ones in the last bit).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Piece {
    key: String,
    result: RunResult,
}

/// Runs the study into `out`: `out/runs/<objective>-s<seed>/` per run, `out/results.json`, and
/// the summaries shaped like the paper's Tables 1 and 3 (and 4 for a cosine-softmax temperature
/// sweep) as `out/tableN.md` and `out/tableN.csv`.
pub fn run_study(
    study: &StudyConfig,
    out: &Path,
    device: &Device,
    cache_dir: Option<PathBuf>,
    observer: &mut dyn FnMut(StudyEvent),
) -> Result<StudyResults> {
    study.validate()?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let total = study.objectives.len() * study.seeds.len();
    let mut runs = Vec::new();
    // Data every run reads, loaded once.
    let limit_test = |set: ImageSet| match study.analysis.test_limit {
        Some(limit) => stratified_subset(&set, limit, 15),
        None => set,
    };
    let source_test = limit_test(study.source.load(Split::Test, cache_dir.as_deref())?);
    let source_train = study.source.load(Split::Train, cache_dir.as_deref())?;
    let separation_set = stratified_subset(&source_train, study.analysis.separation_images, 11);
    let sparsity_set = stratified_subset(&source_train, study.analysis.sparsity_images, 12);
    let feature_set = stratified_subset(&source_train, study.analysis.feature_images, 14);
    drop(source_train);
    // Targets are read once, in the source's channels (gray repeated into RGB for an RGB
    // source), which is what every network of the study takes.
    let channels = source_test.channels;
    let mut targets = Vec::new();
    for t in &study.targets {
        let train_set = t
            .data
            .load(Split::Train, cache_dir.as_deref())?
            .with_channels(channels)?;
        let train_set = match study.analysis.probe_train_limit {
            Some(limit) => stratified_subset(&train_set, limit, 13),
            None => train_set,
        };
        let test_set = limit_test(
            t.data
                .load(Split::Test, cache_dir.as_deref())?
                .with_channels(channels)?,
        );
        targets.push((t, train_set, test_set));
    }
    let compute = Compute::new(device.clone(), Precision::F32);
    let mut index = 0;
    for objective in &study.objectives {
        let first_run = runs.len();
        let mut pretrained = Vec::new();
        for &seed in &study.seeds {
            index += 1;
            let config = study.run_config(objective, seed);
            let label = format!("{objective} seed {seed}");
            let dir = out.join("runs").join(run_folder(objective, seed));
            pretrained.push(Pretrained {
                dir: dir.clone(),
                config: config.clone(),
            });
            let piece_path = dir.join("results.json");
            let key = serde_json::json!({
                "train": config,
                "targets": study.targets,
                "analysis": study.analysis,
            })
            .to_string();
            if let Ok(text) = std::fs::read_to_string(&piece_path)
                && let Ok(piece) = serde_json::from_str::<Piece>(&text)
                && piece.key == key
            {
                observer(StudyEvent::Reused { run: &label });
                runs.push(piece.result);
                continue;
            }
            let mut step = |what: &str| {
                observer(StudyEvent::Piece {
                    index,
                    total,
                    run: &label,
                    what,
                })
            };
            step("training");
            let run_dir = RunDir::new(&dir);
            prepare_run_dir(&dir, &config)?;
            let finished = run_dir.exists() && run_dir.info().is_ok_and(|i| i.finished);
            if !finished {
                let options = TrainOptions {
                    resume: run_dir.exists(),
                    cache_dir: cache_dir.clone(),
                    ..TrainOptions::default()
                };
                train(&config, &dir, &options, device, &mut |_| {})?;
            }
            let trained = run_dir.load(device)?;
            step("evaluating on the source test split");
            let source = evaluate_source(&trained, &source_test, study.analysis.batch_size, device)?;
            let mut transfer = Vec::new();
            for (t, train_set, test_set) in &targets {
                step(&format!("probing {}", t.name));
                transfer.push(probe_target(&trained, t, train_set, test_set, &compute, study, device)?);
            }
            step("class separation, sparsity and neural collapse");
            let sets = AnalysisSets {
                separation: &separation_set,
                sparsity: &sparsity_set,
                features: &feature_set,
            };
            let analyses = layer_analyses(&trained, &sets, &compute, study, device, &dir)?;
            let result = RunResult {
                objective: objective.to_string(),
                kind: objective.kind().name().to_string(),
                seed,
                best_epoch: trained.info.best_epoch,
                source,
                transfer,
                separation: analyses.separation,
                sparsity: analyses.sparsity,
                collapse: analyses.collapse,
                features: analyses
                    .features
                    .map(|_| format!("runs/{}/{FEATURES_FILE}", run_folder(objective, seed))),
                finetune: Vec::new(),
            };
            let piece = Piece {
                key,
                result: result.clone(),
            };
            let text = serde_json::to_string_pretty(&piece).map_err(|e| Error::format(&piece_path, e.to_string()))?;
            crate::atomic::write(&piece_path, text.as_bytes())?;
            runs.push(result);
        }
        if let Some(finetune) = &study.finetune {
            // The seeds of an objective share one choice of hyperparameters per target.
            let label = objective.to_string();
            for (t, _, test_set) in &targets {
                let target = FinetuneTarget {
                    name: &t.name,
                    data: &t.data,
                    measure: t.measure,
                    test: test_set,
                };
                let count = finetune.seeds.map_or(pretrained.len(), |n| n.min(pretrained.len()));
                let results = finetune_objective(
                    finetune,
                    &pretrained[..count],
                    target,
                    study.analysis.batch_size,
                    device,
                    cache_dir.as_deref(),
                    &mut |what| {
                        observer(StudyEvent::Piece {
                            index,
                            total,
                            run: &label,
                            what,
                        })
                    },
                )?;
                for (run, result) in runs[first_run..].iter_mut().zip(results) {
                    run.finetune.push(result);
                }
            }
        }
    }
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
            })
            .collect(),
        cka: cka_between_runs(out, &runs, &compute, &mut |what| {
            observer(StudyEvent::Piece {
                index: total,
                total,
                run: "all runs",
                what,
            })
        })?,
        runs,
        summary: None,
    };
    let summary = summarize(&results)?;
    for (name, table) in tables(&results)? {
        crate::atomic::write(&out.join(format!("{name}.md")), table.markdown().as_bytes())?;
        crate::atomic::write(&out.join(format!("{name}.csv")), table.csv().as_bytes())?;
    }
    let results = StudyResults {
        summary: Some(summary),
        ..results
    };
    let path = out.join("results.json");
    let text = serde_json::to_string_pretty(&results).map_err(|e| Error::format(&path, e.to_string()))?;
    crate::atomic::write(&path, text.as_bytes())?;
    Ok(results)
}

/// The file in each run folder that records the study's training configuration of the run.
const TRAINED_WITH: &str = "trained-with.json";

/// Makes `dir` ready to train (or reuse) the run `config`: a run trained with other settings is
/// removed (with everything computed from it), so that it is trained again; the settings are
/// recorded before training starts. A run folder without the record (from an older version) is
/// kept as it is. The record is compared as text: numbers read back from JSON may differ from
/// the written ones in the last bit.
fn prepare_run_dir(dir: &Path, config: &TrainConfig) -> Result<()> {
    let record = dir.join(TRAINED_WITH);
    let key = serde_json::to_string_pretty(config).map_err(|e| Error::format(&record, e.to_string()))?;
    match std::fs::read_to_string(&record) {
        Ok(saved) if saved == key => return Ok(()),
        Ok(_) => {
            tracing::warn!("{}: the training settings changed; training it again", dir.display());
            crate::atomic::remove_dir(dir)?;
        }
        Err(_) if RunDir::new(dir).exists() => return Ok(()),
        Err(_) => {}
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    crate::atomic::write(&record, key.as_bytes())
}

/// `softmax-s0`, `cosine-softmax-temperature-0.05-s1`: a folder name per run.
pub fn run_folder(objective: &ObjectiveConfig, seed: u64) -> String {
    format!("{}-s{seed}", crate::study::slug(&objective.to_string()))
}

fn stratified_subset(set: &ImageSet, limit: usize, seed: u64) -> ImageSet {
    if limit >= set.len() {
        return set.clone();
    }
    set.subset(&stratified_sample(&set.labels, limit as f64 / set.len() as f64, seed))
}

fn evaluate_source(trained: &TrainedModel, test: &ImageSet, batch_size: usize, device: &Device) -> Result<SourceEval> {
    let e = evaluate_on(trained, test, batch_size, device)?;
    Ok(SourceEval {
        top1: e.accuracy,
        top5: e.top5_accuracy,
        nll: e.nll,
        ece: e.ece,
    })
}

/// Accuracy and calibration of a trained network's outputs on `set`.
pub(crate) fn evaluate_on(
    trained: &TrainedModel,
    set: &ImageSet,
    batch_size: usize,
    device: &Device,
) -> Result<Evaluation> {
    let request = Request {
        taps: &[],
        pooling: Pooling::Mean,
        objective: Some(&trained.objective),
        batch_size,
    };
    let forward = inference::forward(&trained.model, set, &trained.input, &request, device, &mut |_, _| {})?;
    let logits: Vec<f64> = forward
        .outputs
        .unwrap_or_default()
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    Ok(evaluate(&logits, trained.info.classes.len(), &set.labels, 1.0))
}

fn penultimate(trained: &TrainedModel, set: &ImageSet, batch_size: usize, device: &Device) -> Result<Layer> {
    let taps = [PENULTIMATE.to_string()];
    let request = Request {
        taps: &taps,
        pooling: Pooling::Mean,
        objective: None,
        batch_size,
    };
    let forward = inference::forward(&trained.model, set, &trained.input, &request, device, &mut |_, _| {})?;
    let (name, shape, values) = forward.layers.into_iter().next().expect("the penultimate tap");
    Ok(Layer::from_f32(name, set.len(), shape[0], values))
}

fn probe_target(
    trained: &TrainedModel,
    target: &TargetConfig,
    train_set: &ImageSet,
    test_set: &ImageSet,
    compute: &Compute,
    study: &StudyConfig,
    device: &Device,
) -> Result<Transfer> {
    let batch = study.analysis.batch_size;
    let train_features = penultimate(trained, train_set, batch, device)?;
    let test_features = penultimate(trained, test_set, batch, device)?;
    let linear = pollster::block_on(linear_probe(
        compute,
        &train_features,
        &train_set.labels,
        &test_features,
        &test_set.labels,
        &LinearProbeConfig::default(),
        &mut |_| {},
    ))?;
    let knn = pollster::block_on(knn_probe(
        compute,
        &train_features,
        &train_set.labels,
        &test_features,
        &test_set.labels,
        &KnnConfig::default(),
    ))?;
    let (linear_acc, knn_acc) = match target.measure {
        Measure::Top1 => (linear.accuracy, knn.accuracy),
        Measure::MeanPerClass => (linear.mean_per_class_accuracy, knn.mean_per_class_accuracy),
    };
    Ok(Transfer {
        target: target.name.clone(),
        linear: linear_acc,
        lambda: linear.lambda,
        knn: knn_acc,
        k: knn.k,
    })
}

/// The name of the features file in each run folder.
pub const FEATURES_FILE: &str = "features.npz";

/// The source images the per-layer analyses use.
struct AnalysisSets<'a> {
    separation: &'a ImageSet,
    sparsity: &'a ImageSet,
    features: &'a ImageSet,
}

/// What the per-layer analyses of one run found.
struct LayerAnalyses {
    separation: Vec<LayerValue>,
    sparsity: Vec<LayerValue>,
    collapse: Option<Collapse>,
    /// Where the features were saved.
    features: Option<PathBuf>,
}

fn layer_analyses(
    trained: &TrainedModel,
    sets: &AnalysisSets,
    compute: &Compute,
    study: &StudyConfig,
    device: &Device,
    dir: &Path,
) -> Result<LayerAnalyses> {
    let taps: Vec<String> = trained
        .info
        .model
        .layout()
        .block_names()
        .into_iter()
        .chain([PENULTIMATE.to_string()])
        .collect();
    let batch = study.analysis.batch_size;
    let run = |set: &ImageSet, pooling: Pooling| -> Result<Vec<Layer>> {
        let request = Request {
            taps: &taps,
            pooling,
            objective: None,
            batch_size: batch,
        };
        let forward = inference::forward(&trained.model, set, &trained.input, &request, device, &mut |_, _| {})?;
        Ok(forward
            .layers
            .into_iter()
            .map(|(name, shape, values)| Layer::from_f32(name, set.len(), shape.iter().product(), values))
            .collect())
    };
    let num_classes = trained.info.classes.len();
    let classes = Classes::new(sets.separation.labels.clone(), Some(num_classes))?;
    let mut separation = Vec::new();
    let mut collapse = None;
    for layer in run(sets.separation, Pooling::Mean)? {
        let s = pollster::block_on(class_separation(compute, &layer, &classes, Distance::Cosine))?;
        separation.push(LayerValue {
            layer: layer.name.clone(),
            value: s.r2,
        });
        if layer.name == PENULTIMATE && num_classes >= 3 {
            // The classifier rows `[classes, features]` (burn stores `[features, classes]`).
            let weights = trained.model.head.weight().transpose();
            let [rows, cols] = weights.shape().dims::<2>();
            let values = pollster::block_on(compute.read(weights))?;
            let weights = Layer::from_f64("weights", rows, cols, values);
            collapse = Some(pollster::block_on(neural_collapse(
                compute,
                &layer,
                &classes,
                Some(&weights),
            ))?);
        }
    }
    let mut sparsity = Vec::new();
    for layer in run(sets.sparsity, Pooling::None)? {
        sparsity.push(LayerValue {
            layer: layer.name.clone(),
            value: pollster::block_on(fraction_nonzero(compute, &layer))?,
        });
    }
    let mut features = None;
    if !sets.features.is_empty() {
        let mut arrays: Vec<(String, Array)> = Vec::new();
        for layer in run(sets.features, Pooling::Mean)? {
            let values = match layer.data {
                crate::features::FloatData::F32(v) => v,
                crate::features::FloatData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            };
            arrays.push((layer.name.clone(), Array::from_f32(layer.rows, layer.cols, values)));
        }
        arrays.push((LABELS.to_string(), Array::from_labels(&sets.features.labels)));
        let path = dir.join(FEATURES_FILE);
        let metadata = serde_json::json!({
            "objective": trained.objective.config().to_string(),
            "seed": trained.config.seed,
            "model": study.model.to_string(),
            "dataset": study.source.to_string(),
            "split": "train (class-stratified sample)",
            "pooling": "mean",
        });
        FeatureFile::new(&path, arrays, Some(metadata)).save(&path)?;
        features = Some(path);
    }
    Ok(LayerAnalyses {
        separation,
        sparsity,
        collapse,
        features,
    })
}

/// Minibatch CKA between every pair of runs at each layer, from the saved features (the same
/// images in the same order for every run). Symmetric, so each pair is computed once.
fn cka_between_runs(
    out: &Path,
    runs: &[RunResult],
    compute: &Compute,
    step: &mut dyn FnMut(&str),
) -> Result<Vec<LayerCka>> {
    let with_features: Vec<&RunResult> = runs.iter().filter(|r| r.features.is_some()).collect();
    if with_features.len() < 2 {
        return Ok(Vec::new());
    }
    step("CKA between the networks");
    let mut files = Vec::new();
    for run in &with_features {
        let mut file = FeatureFile::open(out.join(run.features.as_deref().expect("filtered")))?;
        files.push(file.take_layers()?);
    }
    let layer_names: Vec<String> = files[0].iter().map(|l| l.name.clone()).collect();
    let n = with_features.len();
    let config = MinibatchCkaConfig::default();
    let mut out = Vec::new();
    for (l, name) in layer_names.iter().enumerate() {
        let mut values = vec![vec![f64::NAN; n]; n];
        for i in 0..n {
            for j in i..n {
                let (a, b) = (&files[i][l], &files[j][l]);
                let m = pollster::block_on(minibatch_cka(
                    compute,
                    std::slice::from_ref(a),
                    std::slice::from_ref(b),
                    &config,
                ))?;
                values[i][j] = m.values[0][0];
                values[j][i] = m.values[0][0];
            }
        }
        out.push(LayerCka {
            layer: name.clone(),
            runs: with_features.iter().map(|r| r.label()).collect(),
            values,
            images: files[0][l].rows,
        });
    }
    Ok(out)
}
