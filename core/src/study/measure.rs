//! What a study measures on each trained network: accuracy and calibration on the source test
//! split (before and after temperature scaling on the run's holdout, in the objective's own
//! probability model), fixed-feature transfer to every target (linear and kNN probes), per layer
//! class separation R² under the three distances of Table E.1 on the whole (flattened) block
//! outputs of class-stratified training images, activation sparsity on test images, and neural
//! collapse, with every layer's features saved for CKA between the networks. The layers are
//! streamed batch by batch, so memory stays bounded whatever the layer or sample size.
//! Fine-tuning scores its networks with [`evaluate`] too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::analysis::angles::{HISTOGRAM_BINS, Histogram, angular_visual_hardness, cosine_distance_histograms};
use crate::analysis::classes::Classes;
use crate::analysis::collapse::{Collapse, neural_collapse};
use crate::analysis::separation::Distance;
use crate::analysis::spectrum::{Spectra, spectra};
use crate::analysis::streaming::StreamingSeparation;
use crate::compute::Compute;
use crate::data::{ImageSet, Split};
use crate::error::Result;
use crate::features::{Array, FeatureFile, FloatData, LABELS, Layer};
use crate::inference::{self, Pooling, Request};
use crate::model::PENULTIMATE;
use crate::probe::assignment::fit_assignment;
use crate::probe::knn::{KnnConfig, knn_probe};
use crate::probe::linear::{LinearProbeConfig, linear_probe};
use crate::probe::metrics::argmax_rows;
use crate::probe::metrics::{Evaluation, evaluate as evaluate_logits};
use crate::probe::multilabel::{LabelMatrix, multilabel_probe};
use crate::probe::multilabel_knn::multilabel_knn;
use crate::probe::split::{stratified_sample, stratified_split};
use crate::study::config::{AnalysisConfig, StudyConfig, TargetConfig};
use crate::study::results::{
    AssignmentAccuracy, CosineDistances, HeadRelearning, LayerSeparation, LayerValue, Measure, SourceEval,
    TrainAccuracy, Transfer,
};
use crate::study::robustness::RobustnessData;
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
    /// The test images CKA before and after fine-tuning is measured on (Fig. D.3): at most
    /// `analysis.cka_images` of them, class-stratified; `None` when that is all of them.
    pub cka_test: Option<ImageSet>,
    /// A multi-label target's labels of `train` and `test`, row for row.
    pub labels: Option<(LabelMatrix, LabelMatrix)>,
}

impl TargetData {
    /// The test images of Fig. D.3.
    pub fn cka_images(&self) -> &ImageSet {
        self.cka_test.as_ref().unwrap_or(&self.test)
    }
}

/// A run's own training images that the analyses use ([`Measurer::training_images`]).
#[derive(Default)]
pub(crate) struct TrainingImages {
    /// The images it trained on (a sample), for Table C.1.
    pub train: Option<ImageSet>,
    /// Its holdout (a sample), for calibration.
    pub holdout: Option<ImageSet>,
}

/// The images every run of a study is measured on, read once.
pub(crate) struct StudyData {
    /// The source test split (at most `analysis.test_limit`).
    pub source_test: ImageSet,
    /// Source training images for class separation and neural collapse, sorted by class.
    pub separation: ImageSet,
    /// Source test images for activation sparsity.
    pub sparsity: ImageSet,
    /// Source training images whose features are saved with each run (for the explorer).
    pub features: ImageSet,
    /// Source test images for CKA between the networks (Fig. 2).
    pub cka: ImageSet,
    /// The targets, in study order.
    pub targets: Vec<TargetData>,
    /// The extra test sets and the images to corrupt (Table C.2).
    pub robustness: RobustnessData,
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
        let full_test = study.source.load(Split::Test, cache_dir)?;
        let corruption_test = match (analysis.corruptions.is_empty(), analysis.corruption_images) {
            (true, _) => None,
            (false, Some(limit)) => Some(stratified_subset(&full_test, limit, 20)),
            (false, None) => Some(full_test.clone()),
        };
        let sparsity = match analysis.sparsity_images {
            Some(limit) => stratified_subset(&full_test, limit, 12),
            None => full_test.clone(),
        };
        let source_test = limit_test(full_test);
        let cka = match analysis.cka_images {
            Some(limit) => stratified_subset(&source_test, limit, 16),
            None => source_test.clone(),
        };
        let source_train = study.source.load(Split::Train, cache_dir)?;
        let separation = per_class_sorted(&source_train, analysis.separation_per_class.limit(), 11);
        let features = stratified_subset(&source_train, analysis.feature_images, 14);
        drop(source_train);
        let channels = source_test.channels;
        let mut targets = Vec::new();
        for t in &study.targets {
            if let Some(file) = &t.labels {
                targets.push(multilabel_target(t, file, analysis, channels)?);
                continue;
            }
            let train = t.data.load(Split::Train, cache_dir)?.with_channels(channels)?;
            let train = match analysis.probe_train_limit {
                Some(limit) => stratified_subset(&train, limit, 13),
                None => train,
            };
            let test = limit_test(t.data.load(Split::Test, cache_dir)?.with_channels(channels)?);
            let cka_test = analysis
                .cka_images
                .filter(|&limit| limit < test.len())
                .map(|limit| stratified_subset(&test, limit, 17));
            targets.push(TargetData {
                config: t.clone(),
                train,
                test,
                cka_test,
                labels: None,
            });
        }
        let robustness = RobustnessData::load(study, (&source_test.classes, channels), corruption_test, cache_dir)?;
        Ok(StudyData {
            source_test,
            separation,
            sparsity,
            features,
            cka,
            targets,
            robustness,
        })
    }
}

/// `limit` images of `set`, class-stratified with `seed`; all when `limit` covers them.
/// A multi-label target's images and labels from its label file, at most
/// `analysis.probe_train_limit` training and `analysis.test_limit` test images (chosen at
/// random), in the source's `channels`.
fn multilabel_target(
    target: &TargetConfig,
    file: &crate::data::label_file::LabelFile,
    analysis: &AnalysisConfig,
    channels: usize,
) -> Result<TargetData> {
    let crate::data::DatasetSource::Folder { path, size } = &target.data else {
        return crate::error::invalid_setting("targets.labels", &target.name, "a folder dataset");
    };
    let part = |split: Split, limit: Option<usize>, seed: u64| -> Result<(ImageSet, LabelMatrix)> {
        let loaded = file.load(path, split, *size)?;
        let (images, labels) = (loaded.images.with_channels(channels)?, loaded.labels);
        Ok(match limit.filter(|&l| l < images.len()) {
            Some(limit) => {
                let rows = stratified_sample(&vec![0; images.len()], limit as f64 / images.len() as f64, seed);
                (images.subset(&rows), labels.select_rows(&rows))
            }
            None => (images, labels),
        })
    };
    let (train, train_labels) = part(Split::Train, analysis.probe_train_limit, 13)?;
    let (test, test_labels) = part(Split::Test, analysis.test_limit, 15)?;
    Ok(TargetData {
        config: target.clone(),
        train,
        test,
        cka_test: None,
        labels: Some((train_labels, test_labels)),
    })
}

fn stratified_subset(set: &ImageSet, limit: usize, seed: u64) -> ImageSet {
    if limit >= set.len() {
        return set.clone();
    }
    set.subset(&stratified_sample(&set.labels, limit as f64 / set.len() as f64, seed))
}

/// At most `limit` images of each class (all when `None`), chosen by `seed`, sorted by class
/// (the order the streamed analyses read them in).
fn per_class_sorted(set: &ImageSet, limit: Option<usize>, seed: u64) -> ImageSet {
    let mut by_class: std::collections::BTreeMap<usize, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, &label) in set.labels.iter().enumerate() {
        by_class.entry(label).or_default().push(i);
    }
    let mut rng = crate::rng::SplitMix64::new(seed);
    let mut keep = Vec::with_capacity(set.len());
    for members in by_class.into_values() {
        let mut chosen: Vec<usize> = match limit {
            Some(limit) if limit < members.len() => rng
                .permutation(members.len())
                .into_iter()
                .take(limit)
                .map(|j| members[j])
                .collect(),
            _ => members,
        };
        chosen.sort_unstable();
        keep.extend(chosen);
    }
    set.subset(&keep)
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

/// A trained network's outputs on `set`, `[images × classes]` row-major.
pub(super) fn outputs(trained: &TrainedModel, set: &ImageSet, batch_size: usize, device: &Device) -> Result<Vec<f64>> {
    let request = Request {
        taps: &[],
        pooling: Pooling::Mean,
        objective: Some(&trained.objective),
        batch_size,
    };
    let forward = inference::forward(&trained.model, set, &trained.input, &request, device, &mut |_, _| {})?;
    Ok(forward
        .outputs
        .unwrap_or_default()
        .iter()
        .map(|&v| f64::from(v))
        .collect())
}

/// Accuracy and calibration (at temperature 1) of a trained network's outputs on `set`.
pub(crate) fn evaluate(
    trained: &TrainedModel,
    set: &ImageSet,
    batch_size: usize,
    device: &Device,
) -> Result<Evaluation> {
    let logits = outputs(trained, set, batch_size, device)?;
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
    /// The run's own training images the analyses use, read once: a class-stratified sample of
    /// at most `analysis.train_accuracy_images` of the images it trained on (Table C.1, with
    /// `analysis.train_accuracy`) and its holdout (for calibration, when it has one), both in
    /// the network's channels. `cache_dir` holds the decoded training images.
    pub fn training_images(
        &self,
        trained: &TrainedModel,
        analysis: &AnalysisConfig,
        cache_dir: Option<&Path>,
    ) -> Result<TrainingImages> {
        let calibrate = trained.config.holdout_fraction > 0.0;
        if !(calibrate || analysis.train_accuracy) {
            return Ok(TrainingImages::default());
        }
        let full = trained.config.data.load(Split::Train, cache_dir)?;
        let (train, holdout) = crate::train::holdout_indices(&trained.config, &full.labels);
        let channels = trained.info.model.channels;
        let train = match analysis.train_accuracy {
            true => {
                let mut set = full.subset(&train);
                if let Some(limit) = analysis.train_accuracy_images {
                    set = stratified_subset(&set, limit, 18);
                }
                Some(set.with_channels(channels)?)
            }
            false => None,
        };
        let holdout = match calibrate {
            true => {
                let mut set = full.subset(&holdout);
                if let Some(limit) = analysis.calibration_images {
                    set = stratified_subset(&set, limit, 17);
                }
                Some(set.with_channels(channels)?)
            }
            false => None,
        };
        Ok(TrainingImages { train, holdout })
    }

    /// Table C.1: top-1 and top-5 accuracy on `set` (training images, through the evaluation
    /// crop).
    pub fn train_accuracy(&self, trained: &TrainedModel, set: &ImageSet) -> Result<TrainAccuracy> {
        let logits = outputs(trained, set, self.batch_size, self.device)?;
        let e = evaluate_logits(&logits, trained.info.classes.len(), &set.labels, 1.0);
        Ok(TrainAccuracy {
            top1: e.accuracy,
            top5: e.top5_accuracy,
            images: set.len(),
        })
    }

    /// Accuracy and calibration on the source test split: NLL and ECE in the objective's own
    /// probability model at temperature 1, and at the temperature that minimises the NLL on
    /// the run's holdout images (Table C.3; none without a holdout), or on a class-stratified
    /// sample of at most `analysis.calibration_images` of them; with `analysis.relearn_head`,
    /// also Fig. 6; with `analysis.train_accuracy`, Table C.1 on `own.train`.
    pub fn source(
        &self,
        trained: &TrainedModel,
        test: &ImageSet,
        analysis: &AnalysisConfig,
        own: &TrainingImages,
    ) -> Result<(SourceEval, Vec<usize>)> {
        let classes = trained.info.classes.len();
        let probability = trained.objective.probability();
        let (logits, relearned_head, hardness) = if analysis.relearn_head || analysis.angles {
            let (features, logits) = self.penultimate(trained, test, true)?;
            let logits = logits.unwrap_or_default();
            let relearned = match analysis.relearn_head {
                true => Some(self.relearn_head(&features, &logits, classes, &test.labels)?),
                false => None,
            };
            let hardness = match analysis.angles {
                true => Some(self.hardness(trained, &features, &test.labels)?),
                false => None,
            };
            (logits, relearned, hardness)
        } else {
            (outputs(trained, test, self.batch_size, self.device)?, None, None)
        };
        let e = evaluate_logits(&logits, classes, &test.labels, 1.0);
        // Top-1 predictions (the first of equal scores), for the study's agreement analysis.
        let predictions = crate::probe::metrics::argmax_rows(&logits, classes);
        // Table C.1: the images the network trained on, through the evaluation crop.
        let train = own
            .train
            .as_ref()
            .map(|set| self.train_accuracy(trained, set))
            .transpose()?;
        let temperature = match &own.holdout {
            Some(holdout) => {
                let held = outputs(trained, holdout, self.batch_size, self.device)?;
                Some((
                    probability.fit_temperature(&held, classes, &holdout.labels),
                    holdout.len(),
                ))
            }
            None => None,
        };
        let (temperature, temperature_images) = (temperature.map(|t| t.0), temperature.map(|t| t.1));
        let eval = SourceEval {
            top1: e.accuracy,
            top5: e.top5_accuracy,
            nll: probability.nll(&logits, classes, &test.labels, 1.0),
            ece: probability.ece(&logits, classes, &test.labels, 1.0),
            probability,
            temperature,
            nll_calibrated: temperature.map(|t| probability.nll(&logits, classes, &test.labels, t)),
            ece_calibrated: temperature.map(|t| probability.ece(&logits, classes, &test.labels, t)),
            temperature_images,
            relearned_head,
            hardness,
            train,
            robustness: None,
        };
        Ok((eval, predictions))
    }

    /// Fig. E.1: the angular visual hardness of every example of `features` (penultimate,
    /// labelled `labels`) against the classifier, as a histogram over `[0, min(1, 4/K)]`.
    fn hardness(&self, trained: &TrainedModel, features: &Layer, labels: &[usize]) -> Result<Histogram> {
        let weights = self.classifier_rows(trained)?;
        let values = pollster::block_on(angular_visual_hardness(self.compute, features, labels, &weights))?;
        let mut histogram = Histogram::new(0.0, (4.0 / weights.rows as f64).min(1.0), HISTOGRAM_BINS);
        values.into_iter().for_each(|v| histogram.add(v));
        Ok(histogram)
    }

    /// The classifier's rows as the objective applies them (normalised for cosine softmax), on
    /// the host.
    fn classifier_rows(&self, trained: &TrainedModel) -> Result<Layer> {
        let weights = trained.objective.classifier_rows(&trained.model.head);
        let [rows, cols] = weights.shape().dims::<2>();
        let values = pollster::block_on(self.compute.read(weights))?;
        Ok(Layer::from_f64("weights", rows, cols, values))
    }

    /// Fig. 6: a linear probe (the linear-probe protocol: λ chosen on a validation part, then
    /// refitted) on the penultimate features of a class-stratified 80 % of the source test
    /// images, against the network's own head (`logits`), both scored on the other 20 %.
    fn relearn_head(
        &self,
        features: &Layer,
        logits: &[f64],
        classes: usize,
        labels: &[usize],
    ) -> Result<HeadRelearning> {
        let split = stratified_split(labels, 0.2, 18);
        let pick = |rows: &[usize]| rows.iter().map(|&i| labels[i]).collect::<Vec<usize>>();
        let (fit_labels, eval_labels) = (pick(&split.train), pick(&split.holdout));
        let own = argmax_rows(logits, classes);
        let original =
            split.holdout.iter().filter(|&&i| own[i] == labels[i]).count() as f64 / split.holdout.len().max(1) as f64;
        let probe = pollster::block_on(linear_probe(
            self.compute,
            &features.select_rows(&split.train),
            &fit_labels,
            &features.select_rows(&split.holdout),
            &eval_labels,
            &LinearProbeConfig::default(),
            &mut |_| {},
        ))?;
        Ok(HeadRelearning {
            original,
            relearned: probe.accuracy,
            lambda: probe.lambda,
            fit_images: split.train.len(),
            eval_images: split.holdout.len(),
        })
    }

    /// A pass recording `taps` as whole (flattened) maps, without the network's outputs.
    pub(super) fn whole_maps<'t>(&self, taps: &'t [String]) -> Request<'t> {
        Request {
            taps,
            pooling: Pooling::None,
            objective: None,
            batch_size: self.batch_size,
        }
    }

    /// The network's taps on `set`: one layer per tap, `[images, features]`.
    fn layers(&self, trained: &TrainedModel, set: &ImageSet, taps: &[String], pooling: Pooling) -> Result<Vec<Layer>> {
        Ok(self.layers_and_outputs(trained, set, taps, pooling, false)?.0)
    }

    /// The network's penultimate features on `set` (`[images, features]`) and, with `outputs`,
    /// its own outputs (`[images × classes]` row-major), from one pass.
    pub(super) fn penultimate(
        &self,
        trained: &TrainedModel,
        set: &ImageSet,
        outputs: bool,
    ) -> Result<(Layer, Option<Vec<f64>>)> {
        let (mut layers, logits) =
            self.layers_and_outputs(trained, set, &[PENULTIMATE.to_string()], Pooling::Mean, outputs)?;
        Ok((layers.remove(0), logits))
    }

    fn layers_and_outputs(
        &self,
        trained: &TrainedModel,
        set: &ImageSet,
        taps: &[String],
        pooling: Pooling,
        outputs: bool,
    ) -> Result<(Vec<Layer>, Option<Vec<f64>>)> {
        let request = Request {
            taps,
            pooling,
            objective: outputs.then_some(&trained.objective),
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
        let logits = forward.outputs.map(|o| o.iter().map(|&v| f64::from(v)).collect());
        let layers = forward
            .layers
            .into_iter()
            .map(|(name, shape, values)| Layer::from_f32(name, set.len(), shape.iter().product(), values))
            .collect();
        Ok((layers, logits))
    }

    /// Linear and kNN probes of the penultimate features on one target, in its measure; with
    /// `assignment`, also the class-overlap assignment accuracy of the network's own head
    /// (Table F.1; fitted on the target's training images, scored on its test images).
    pub fn transfer(&self, trained: &TrainedModel, target: &TargetData, assignment: bool) -> Result<Transfer> {
        if target.labels.is_some() {
            return self.multilabel_transfer(trained, target);
        }
        let (train, test) = (&target.train, &target.test);
        let (train_features, train_logits) = self.penultimate(trained, train, assignment)?;
        let (test_features, test_logits) = self.penultimate(trained, test, assignment)?;
        let assignment = match (train_logits, test_logits) {
            (Some(fit), Some(scored)) => {
                let sources = trained.info.classes.len();
                let targets = train.classes.len().max(test.classes.len());
                let mapping = fit_assignment(&argmax_rows(&fit, sources), &train.labels, sources, targets)?;
                Some(AssignmentAccuracy {
                    accuracy: mapping.accuracy(&argmax_rows(&scored, sources), &test.labels)?,
                    fit_accuracy: mapping.fit_accuracy,
                    replication: mapping.replication,
                })
            }
            _ => None,
        };
        let (linear_acc, lambda) = self.linear_transfer(target, &train_features, &test_features)?;
        let knn = pollster::block_on(knn_probe(
            self.compute,
            &train_features,
            &train.labels,
            &test_features,
            &test.labels,
            &KnnConfig {
                select_by: target.config.measure,
                ..KnnConfig::default()
            },
        ))?;
        let knn_acc = match target.config.measure {
            Measure::Top1 => knn.accuracy,
            Measure::MeanPerClass => knn.mean_per_class_accuracy,
        };
        Ok(Transfer {
            target: target.config.name.clone(),
            linear: linear_acc,
            lambda,
            knn: knn_acc,
            k: knn.k,
            assignment,
            classes: Vec::new(),
        })
    }

    /// The linear probe of one target on penultimate features of its training and test images:
    /// accuracy in the target's measure and the chosen λ.
    pub(super) fn linear_transfer(
        &self,
        target: &TargetData,
        train_features: &Layer,
        test_features: &Layer,
    ) -> Result<(f64, f64)> {
        if let Some(labels) = &target.labels {
            let probe = self.multilabel_linear((train_features, test_features), (&labels.0, &labels.1))?;
            return Ok((probe.mean_auc, geometric_mean(probe.classes.iter().map(|c| c.lambda))));
        }
        let linear = pollster::block_on(linear_probe(
            self.compute,
            train_features,
            &target.train.labels,
            test_features,
            &target.test.labels,
            &LinearProbeConfig {
                select_by: target.config.measure,
                ..LinearProbeConfig::default()
            },
            &mut |_| {},
        ))?;
        let accuracy = match target.config.measure {
            Measure::Top1 => linear.accuracy,
            Measure::MeanPerClass => linear.mean_per_class_accuracy,
        };
        Ok((accuracy, linear.lambda))
    }

    /// The linear probe of a multi-label target on penultimate features of its training and
    /// test images: one logistic regression per class, the paper's λ path.
    fn multilabel_linear(
        &self,
        (train, test): (&Layer, &Layer),
        (train_labels, test_labels): (&LabelMatrix, &LabelMatrix),
    ) -> Result<crate::probe::MultiLabelResult> {
        pollster::block_on(multilabel_probe(
            self.compute,
            train,
            train_labels,
            test,
            test_labels,
            &LinearProbeConfig::default(),
            &mut |_| {},
        ))
    }

    /// The probes of a multi-label target (Table D.1): one logistic regression per class (λ per
    /// class on validation ROC AUC) and the multi-label kNN probe, both as the mean test ROC AUC
    /// over the classes.
    fn multilabel_transfer(&self, trained: &TrainedModel, target: &TargetData) -> Result<Transfer> {
        let Some((train_labels, test_labels)) = &target.labels else {
            unreachable!("called for multi-label targets")
        };
        let (train_features, _) = self.penultimate(trained, &target.train, false)?;
        let (test_features, _) = self.penultimate(trained, &target.test, false)?;
        let probe = self.multilabel_linear((&train_features, &test_features), (train_labels, test_labels))?;
        let knn = pollster::block_on(multilabel_knn(
            self.compute,
            (&train_features, train_labels),
            (&test_features, test_labels),
            KnnConfig::default().k_max,
        ))?;
        Ok(Transfer {
            target: target.config.name.clone(),
            linear: probe.mean_auc,
            lambda: geometric_mean(probe.classes.iter().map(|c| c.lambda)),
            knn: knn.mean_auc,
            k: knn.k,
            assignment: None,
            classes: probe.classes,
        })
    }

    /// Class separation R² of every block (its whole output, every spatial position flattened)
    /// and of the pooled penultimate layer, under the three distances of Table E.1, on `set`
    /// (sorted by class); with `pooled`, also the cosine R² of each block's spatially
    /// mean-pooled output. Then the neural-collapse geometry of the penultimate layer and the
    /// classifier (three or more classes). Two streamed passes: cosine and squared Euclidean
    /// with the mean embedding, then the mean-subtracted cosine.
    pub fn separation(
        &self,
        trained: &TrainedModel,
        set: &ImageSet,
        pooled: bool,
        angles: bool,
    ) -> Result<LayerSeparations> {
        let num_classes = trained.info.classes.len();
        let counts = class_counts(&set.labels, num_classes)?;
        let taps = taps(trained);
        let request = self.whole_maps(&taps);
        let compute = self.compute;
        // Pass 1.
        let mut layers: Vec<PassOne> = Vec::new();
        let mut penultimate: Vec<f32> = Vec::new();
        inference::forward_each(
            &trained.model,
            set,
            &trained.input,
            &request,
            self.device,
            &mut |batch| {
                for (i, (name, rows, shape)) in batch.layers.into_iter().enumerate() {
                    if layers.len() == i {
                        layers.push(PassOne::new(&name, &counts, &shape, pooled)?);
                    }
                    let layer = &mut layers[i];
                    if name == PENULTIMATE {
                        penultimate.extend(read_f32(rows.clone())?);
                    }
                    layer.add(compute, rows, &shape)?;
                }
                Ok(())
            },
        )?;
        let mut centres = Vec::new();
        let mut results = Vec::new();
        for layer in layers {
            let (centre, one) = layer.finish(compute, set.len())?;
            centres.push(centre);
            results.push(one);
        }
        // Pass 2: the mean-subtracted cosine, with each layer's mean embedding.
        let mut second: Vec<StreamingSeparation> = results
            .iter()
            .zip(centres)
            .map(|(r, centre)| {
                let width = centre.len();
                StreamingSeparation::new(&r.layer, Distance::CosineMeanSubtracted, &counts, width, Some(centre))
            })
            .collect::<Result<_>>()?;
        inference::forward_each(
            &trained.model,
            set,
            &trained.input,
            &request,
            self.device,
            &mut |batch| {
                for (s, (_, rows, _)) in second.iter_mut().zip(batch.layers) {
                    pollster::block_on(s.add(compute, rows))?;
                }
                Ok(())
            },
        )?;
        for (r, s) in results.iter_mut().zip(second) {
            r.cosine_mean_subtracted = s.finish()?.r2;
        }
        let width = penultimate.len() / set.len().max(1);
        let layer = Layer::from_f32(PENULTIMATE, set.len(), width, penultimate);
        let classes = Classes::new(set.labels.clone(), Some(num_classes))?;
        let weights = self.classifier_rows(trained)?;
        let collapse = if num_classes >= 3 {
            Some(pollster::block_on(neural_collapse(
                compute,
                &layer,
                &classes,
                Some(&weights),
            ))?)
        } else {
            None
        };
        // Fig. E.2: the spectra of the same features, their class centroids and the classifier.
        let spectra = pollster::block_on(spectra(compute, &layer, Some(&classes), Some(&weights)))?;
        // Fig. E.3: cosine distances between at most 10,000 of the images (spread evenly over the
        // class-sorted set).
        let distances = match angles {
            true => {
                let step = set.len().div_ceil(DISTANCE_IMAGES).max(1);
                let rows: Vec<usize> = (0..set.len()).step_by(step).collect();
                let labels: Vec<usize> = rows.iter().map(|&i| set.labels[i]).collect();
                let (within, between) = pollster::block_on(cosine_distance_histograms(
                    compute,
                    &layer.select_rows(&rows),
                    &labels,
                    HISTOGRAM_BINS,
                ))?;
                Some(CosineDistances {
                    within,
                    between,
                    images: rows.len(),
                })
            }
            false => None,
        };
        Ok(LayerSeparations {
            layers: results,
            collapse,
            spectra: spectra.truncated(SPECTRUM_VALUES),
            distances,
        })
    }

    /// Fraction of non-zero activations of every block (whole maps) and the penultimate layer
    /// on `set`, counted batch by batch on the device.
    pub fn sparsity(&self, trained: &TrainedModel, set: &ImageSet) -> Result<Vec<LayerValue>> {
        let taps = taps(trained);
        let request = self.whole_maps(&taps);
        let mut counts: Vec<(String, f64, f64)> = Vec::new();
        inference::forward_each(
            &trained.model,
            set,
            &trained.input,
            &request,
            self.device,
            &mut |batch| {
                for (i, (name, rows, _)) in batch.layers.into_iter().enumerate() {
                    let [b, p] = rows.dims();
                    // Counted in f32 per batch: exact while a batch holds fewer than 2²⁴ values.
                    let nonzero: f64 = pollster::block_on(self.compute.scalar(rows.not_equal_elem(0.0).float().sum()))?;
                    if counts.len() == i {
                        counts.push((name, 0.0, 0.0));
                    }
                    counts[i].1 += nonzero;
                    counts[i].2 += (b * p) as f64;
                }
                Ok(())
            },
        )?;
        Ok(counts
            .into_iter()
            .map(|(layer, nonzero, total)| LayerValue {
                layer,
                value: nonzero / total,
            })
            .collect())
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

/// Examples per class of `labels` (every class of `0..num_classes` must be there).
/// The geometric mean of positive values.
fn geometric_mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v.ln(), n + 1));
    (sum / n.max(1) as f64).exp()
}

pub(super) fn class_counts(labels: &[usize], num_classes: usize) -> Result<Vec<usize>> {
    let mut counts = vec![0usize; num_classes];
    for &l in labels {
        if l >= num_classes {
            return Err(crate::error::Error::LabelOutOfRange {
                label: l as i64,
                index: 0,
                num_classes,
            });
        }
        counts[l] += 1;
    }
    if let Some(class) = counts.iter().position(|&c| c == 0) {
        return Err(crate::error::Error::EmptyClass { class, num_classes });
    }
    Ok(counts)
}

/// Reads a tensor back as `f32`.
fn read_f32(t: burn::tensor::Tensor<2>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| crate::error::Error::Device(format!("{e:?}")))
}

/// What the first streamed pass accumulates for one layer.
struct PassOne {
    name: String,
    cosine: StreamingSeparation,
    euclidean: StreamingSeparation,
    pooled: Option<StreamingSeparation>,
    /// Column sums, for the mean embedding.
    sum: Option<burn::tensor::Tensor<2>>,
}

impl PassOne {
    fn new(name: &str, counts: &[usize], shape: &[usize], pooled: bool) -> Result<Self> {
        let width: usize = shape.iter().product();
        Ok(Self {
            name: name.to_string(),
            cosine: StreamingSeparation::new(name, Distance::Cosine, counts, width, None)?,
            euclidean: StreamingSeparation::new(name, Distance::SquaredEuclidean, counts, width, None)?,
            pooled: (pooled && shape.len() == 3)
                .then(|| StreamingSeparation::new(name, Distance::Cosine, counts, shape[0], None))
                .transpose()?,
            sum: None,
        })
    }

    /// Adds a batch of flattened rows `[b, width]` whose per-example shape is `shape`.
    fn add(&mut self, compute: &Compute, rows: burn::tensor::Tensor<2>, shape: &[usize]) -> Result<()> {
        let part = rows.clone().sum_dim(0); // [1, width]
        self.sum = Some(match self.sum.take() {
            Some(s) => s + part,
            None => part,
        });
        if let Some(pooled) = self.pooled.as_mut() {
            let [b, _] = rows.dims();
            let means = rows
                .clone()
                .reshape([b, shape[0], shape[1] * shape[2]])
                .mean_dim(2)
                .reshape([b, shape[0]]);
            pollster::block_on(pooled.add(compute, means))?;
        }
        pollster::block_on(self.cosine.add(compute, rows.clone()))?;
        pollster::block_on(self.euclidean.add(compute, rows))
    }

    /// The layer's mean embedding and its first-pass R² values.
    fn finish(self, compute: &Compute, images: usize) -> Result<(Vec<f64>, LayerSeparation)> {
        let sum = self.sum.expect("a layer has at least one batch");
        let centre: Vec<f64> = pollster::block_on(compute.read(sum))?
            .into_iter()
            .map(|v| v / images as f64)
            .collect();
        Ok((
            centre,
            LayerSeparation {
                layer: self.name,
                cosine: self.cosine.finish()?.r2,
                cosine_mean_subtracted: f64::NAN,
                squared_euclidean: self.euclidean.finish()?.r2,
                pooled_cosine: self.pooled.map(|p| p.finish().map(|s| s.r2)).transpose()?,
            },
        ))
    }
}

/// The most singular values a study keeps of each spectrum (the summaries use all of them).
pub const SPECTRUM_VALUES: usize = 512;

/// The most images whose pairwise cosine distances a study counts (the paper's Fig. E.3 used
/// 10,000 training images).
pub const DISTANCE_IMAGES: usize = 10_000;

/// What the per-layer separation analyses of one network found.
pub(crate) struct LayerSeparations {
    /// Every layer's R² under each distance.
    pub layers: Vec<LayerSeparation>,
    /// The neural-collapse geometry (three or more classes).
    pub collapse: Option<Collapse>,
    /// The singular value spectra of the penultimate features, their class centroids and the
    /// classifier (Fig. E.2), each cut to its [`SPECTRUM_VALUES`] largest values.
    pub spectra: Spectra,
    /// Cosine distances between the images (Fig. E.3), when asked for.
    pub distances: Option<CosineDistances>,
}

/// Every block of the network and its penultimate layer, in network order.
pub(super) fn taps(trained: &TrainedModel) -> Vec<String> {
    trained
        .info
        .model
        .block_names()
        .into_iter()
        .chain([PENULTIMATE.to_string()])
        .collect()
}
