//! What a study measures on each trained network: accuracy and calibration on the source test
//! split, fixed-feature transfer to every target (linear and kNN probes), and per layer class
//! separation, sparsity and neural collapse, with every layer's features saved for CKA between
//! the networks. Fine-tuning scores its networks with [`evaluate`] too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::analysis::classes::Classes;
use crate::analysis::collapse::{Collapse, neural_collapse};
use crate::analysis::minibatch_cka::{MinibatchCkaConfig, minibatch_cka};
use crate::analysis::separation::{Distance, class_separation};
use crate::analysis::sparsity::fraction_nonzero;
use crate::compute::Compute;
use crate::data::{ImageSet, Split};
use crate::error::Result;
use crate::features::{Array, FeatureFile, FloatData, LABELS, Layer};
use crate::inference::{self, Pooling, Request};
use crate::model::PENULTIMATE;
use crate::probe::knn::{KnnConfig, knn_probe};
use crate::probe::linear::{LinearProbeConfig, linear_probe};
use crate::probe::metrics::{Evaluation, evaluate as evaluate_logits};
use crate::probe::split::stratified_sample;
use crate::study::config::{StudyConfig, TargetConfig};
use crate::study::results::{LayerCka, LayerValue, Measure, RunResult, SourceEval, Transfer};
use crate::train::TrainedModel;

/// The name of the features file in each run folder.
pub const FEATURES_FILE: &str = "features.npz";

/// A target's images, in the source's channels.
pub(crate) struct TargetData {
    /// The target as the study file names it.
    pub config: TargetConfig,
    /// Training images of the probes (at most `analysis.probe_train_limit`).
    pub train: ImageSet,
    /// Test images (at most `analysis.test_limit`).
    pub test: ImageSet,
}

/// The images every run of a study is measured on, read once.
pub(crate) struct StudyData {
    /// The source test split (at most `analysis.test_limit`).
    pub source_test: ImageSet,
    /// Source training images for class separation and neural collapse.
    pub separation: ImageSet,
    /// Source training images for activation sparsity.
    pub sparsity: ImageSet,
    /// Source training images whose features are saved with each run (CKA between runs).
    pub features: ImageSet,
    /// The targets, in study order.
    pub targets: Vec<TargetData>,
}

impl StudyData {
    /// Reads the study's data. Targets take the source's channels (gray repeated into RGB for an
    /// RGB source), which is what every network of the study takes.
    pub fn load(study: &StudyConfig, cache_dir: Option<&Path>) -> Result<StudyData> {
        let analysis = &study.analysis;
        let limit_test = |set: ImageSet| match analysis.test_limit {
            Some(limit) => stratified_subset(&set, limit, 15),
            None => set,
        };
        let source_test = limit_test(study.source.load(Split::Test, cache_dir)?);
        let source_train = study.source.load(Split::Train, cache_dir)?;
        let separation = stratified_subset(&source_train, analysis.separation_images, 11);
        let sparsity = stratified_subset(&source_train, analysis.sparsity_images, 12);
        let features = stratified_subset(&source_train, analysis.feature_images, 14);
        drop(source_train);
        let channels = source_test.channels;
        let mut targets = Vec::new();
        for t in &study.targets {
            let train = t.data.load(Split::Train, cache_dir)?.with_channels(channels)?;
            let train = match analysis.probe_train_limit {
                Some(limit) => stratified_subset(&train, limit, 13),
                None => train,
            };
            let test = limit_test(t.data.load(Split::Test, cache_dir)?.with_channels(channels)?);
            targets.push(TargetData {
                config: t.clone(),
                train,
                test,
            });
        }
        Ok(StudyData {
            source_test,
            separation,
            sparsity,
            features,
            targets,
        })
    }
}

/// `limit` images of `set`, class-stratified with `seed`; all when `limit` covers them.
fn stratified_subset(set: &ImageSet, limit: usize, seed: u64) -> ImageSet {
    if limit >= set.len() {
        return set.clone();
    }
    set.subset(&stratified_sample(&set.labels, limit as f64 / set.len() as f64, seed))
}

/// How one network is measured: on which device, in batches of how many images.
pub(crate) struct Measurer<'a> {
    /// The device the networks run on.
    pub device: &'a Device,
    /// The analyses' device and precision.
    pub compute: &'a Compute,
    /// Images per inference batch.
    pub batch_size: usize,
}

/// Accuracy and calibration of a trained network's outputs on `set`.
pub(crate) fn evaluate(
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
    Ok(evaluate_logits(&logits, trained.info.classes.len(), &set.labels, 1.0))
}

/// Accuracy of a trained network on `set` in `measure`.
pub(crate) fn accuracy_in(
    trained: &TrainedModel,
    set: &ImageSet,
    measure: Measure,
    batch_size: usize,
    device: &Device,
) -> Result<f64> {
    let e = evaluate(trained, set, batch_size, device)?;
    Ok(match measure {
        Measure::Top1 => e.accuracy,
        Measure::MeanPerClass => e.mean_per_class_accuracy,
    })
}

impl Measurer<'_> {
    /// Accuracy and calibration on the source test split.
    pub fn source(&self, trained: &TrainedModel, test: &ImageSet) -> Result<SourceEval> {
        let e = evaluate(trained, test, self.batch_size, self.device)?;
        Ok(SourceEval {
            top1: e.accuracy,
            top5: e.top5_accuracy,
            nll: e.nll,
            ece: e.ece,
        })
    }

    /// The network's taps on `set`: one layer per tap, `[images, features]`.
    fn layers(&self, trained: &TrainedModel, set: &ImageSet, taps: &[String], pooling: Pooling) -> Result<Vec<Layer>> {
        let request = Request {
            taps,
            pooling,
            objective: None,
            batch_size: self.batch_size,
        };
        let forward = inference::forward(
            &trained.model,
            set,
            &trained.input,
            &request,
            self.device,
            &mut |_, _| {},
        )?;
        Ok(forward
            .layers
            .into_iter()
            .map(|(name, shape, values)| Layer::from_f32(name, set.len(), shape.iter().product(), values))
            .collect())
    }

    /// Linear and kNN probes of the penultimate features on one target, in its measure.
    pub fn transfer(&self, trained: &TrainedModel, target: &TargetData) -> Result<Transfer> {
        let taps = [PENULTIMATE.to_string()];
        let penultimate =
            |set: &ImageSet| -> Result<Layer> { Ok(self.layers(trained, set, &taps, Pooling::Mean)?.remove(0)) };
        let (train, test) = (&target.train, &target.test);
        let train_features = penultimate(train)?;
        let test_features = penultimate(test)?;
        let linear = pollster::block_on(linear_probe(
            self.compute,
            &train_features,
            &train.labels,
            &test_features,
            &test.labels,
            &LinearProbeConfig::default(),
            &mut |_| {},
        ))?;
        let knn = pollster::block_on(knn_probe(
            self.compute,
            &train_features,
            &train.labels,
            &test_features,
            &test.labels,
            &KnnConfig::default(),
        ))?;
        let (linear_acc, knn_acc) = match target.config.measure {
            Measure::Top1 => (linear.accuracy, knn.accuracy),
            Measure::MeanPerClass => (linear.mean_per_class_accuracy, knn.mean_per_class_accuracy),
        };
        Ok(Transfer {
            target: target.config.name.clone(),
            linear: linear_acc,
            lambda: linear.lambda,
            knn: knn_acc,
            k: knn.k,
        })
    }

    /// Class separation R² (cosine) of every block and the penultimate layer, with the
    /// neural-collapse geometry of the penultimate layer and the classifier (three or more
    /// classes).
    pub fn separation(&self, trained: &TrainedModel, set: &ImageSet) -> Result<(Vec<LayerValue>, Option<Collapse>)> {
        let num_classes = trained.info.classes.len();
        let classes = Classes::new(set.labels.clone(), Some(num_classes))?;
        let mut separation = Vec::new();
        let mut collapse = None;
        for layer in self.layers(trained, set, &taps(trained), Pooling::Mean)? {
            let s = pollster::block_on(class_separation(self.compute, &layer, &classes, Distance::Cosine))?;
            separation.push(LayerValue {
                layer: layer.name.clone(),
                value: s.r2,
            });
            if layer.name == PENULTIMATE && num_classes >= 3 {
                // The classifier rows `[classes, features]` (burn stores `[features, classes]`).
                let weights = trained.model.head.weight().transpose();
                let [rows, cols] = weights.shape().dims::<2>();
                let values = pollster::block_on(self.compute.read(weights))?;
                let weights = Layer::from_f64("weights", rows, cols, values);
                collapse = Some(pollster::block_on(neural_collapse(
                    self.compute,
                    &layer,
                    &classes,
                    Some(&weights),
                ))?);
            }
        }
        Ok((separation, collapse))
    }

    /// Fraction of non-zero activations of every block (whole maps) and the penultimate layer.
    pub fn sparsity(&self, trained: &TrainedModel, set: &ImageSet) -> Result<Vec<LayerValue>> {
        let mut sparsity = Vec::new();
        for layer in self.layers(trained, set, &taps(trained), Pooling::None)? {
            sparsity.push(LayerValue {
                layer: layer.name.clone(),
                value: pollster::block_on(fraction_nonzero(self.compute, &layer))?,
            });
        }
        Ok(sparsity)
    }

    /// Saves the spatially pooled features of every layer on `set` (source training images of
    /// `dataset`) with their labels as `path`; `None` when `set` is empty.
    pub fn save_features(
        &self,
        trained: &TrainedModel,
        set: &ImageSet,
        dataset: String,
        path: &Path,
    ) -> Result<Option<PathBuf>> {
        if set.is_empty() {
            return Ok(None);
        }
        let mut arrays: Vec<(String, Array)> = Vec::new();
        let mut shapes = BTreeMap::new();
        for layer in self.layers(trained, set, &taps(trained), Pooling::Mean)? {
            let values = match layer.data {
                FloatData::F32(v) => v,
                FloatData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            };
            shapes.insert(layer.name.clone(), vec![layer.rows, layer.cols]);
            arrays.push((layer.name.clone(), Array::from_f32(layer.rows, layer.cols, values)));
        }
        arrays.push((LABELS.to_string(), Array::from_labels(&set.labels)));
        let metadata = trained.feature_metadata(
            (dataset, Split::Train),
            set,
            format!("class-stratified sample of {}", set.len()),
            shapes,
            Pooling::Mean,
        );
        let metadata = serde_json::to_value(metadata).expect("metadata serialises");
        FeatureFile::new(path, arrays, Some(metadata)).save(path)?;
        Ok(Some(path.to_path_buf()))
    }
}

/// Every block of the network and its penultimate layer, in network order.
fn taps(trained: &TrainedModel) -> Vec<String> {
    trained
        .info
        .model
        .layout()
        .block_names()
        .into_iter()
        .chain([PENULTIMATE.to_string()])
        .collect()
}

/// Minibatch CKA between every pair of runs at each layer, from the features saved in each run
/// folder under `out` (the same images in the same order for every run). Symmetric, so each pair
/// is computed once.
pub(crate) fn cka_between_runs(out: &Path, runs: &[RunResult], compute: &Compute) -> Result<Vec<LayerCka>> {
    let with_features: Vec<(&RunResult, &String)> =
        runs.iter().filter_map(|r| Some((r, r.features.as_ref()?))).collect();
    if with_features.len() < 2 {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for (_, features) in &with_features {
        let mut file = FeatureFile::open(out.join(features))?;
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
            runs: with_features.iter().map(|(r, _)| r.label()).collect(),
            values,
            images: files[0][l].rows,
        });
    }
    Ok(out)
}
