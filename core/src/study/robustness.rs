//! Robustness (the paper's Table C.2): each network's top-1 accuracy on the study's extra test
//! sets of the source task (ImageNet-V2, -A, -Sketch, -R), predicting among the classes each set
//! has, and its top-1 error on the source test images under ImageNet-C's corruptions at five
//! severities ([`crate::data::corrupt`]). The corrupted images are the evaluation crops of a
//! class-stratified sample of the test split, corrupted with one seed, so every network sees the
//! same images; they are made again for each network rather than kept (forty copies of a test
//! split would not fit in memory). The mean corruption error relative to the study's softmax
//! networks (ImageNet-C's mCE, with softmax in AlexNet's place) is computed across runs
//! ([`crate::study::results::Robustness::relative_corruption_error`]).

use std::path::Path;

use crate::data::augment::evaluation_crops;
use crate::data::corrupt::{Corruption, SEVERITIES, STUDY_SEED, corrupt_set};
use crate::data::{DatasetSource, ImageSet, Split};
use crate::error::{Error, Result};
use crate::study::config::StudyConfig;
use crate::study::measure::{Measurer, outputs};
use crate::study::results::{CorruptionErrors, ExtraAccuracy, Robustness};
use crate::train::TrainedModel;

/// An extra test set, its labels counted among its own classes.
pub(crate) struct ExtraTestData {
    /// Its name.
    pub name: String,
    /// Its images; label `k` is its `k`-th class.
    pub set: ImageSet,
    /// The source class of each of its classes.
    pub classes: Vec<usize>,
}

/// The images of the robustness measurements, read once per study.
#[derive(Default)]
pub(crate) struct RobustnessData {
    /// The extra test sets, in study order.
    pub extra: Vec<ExtraTestData>,
    /// The corruptions to apply.
    pub corruptions: Vec<Corruption>,
    /// The source test images to corrupt (stored images, cropped per network).
    pub corruption_set: Option<ImageSet>,
}

impl RobustnessData {
    /// Reads the extra test sets (in the source's `channels`, their classes mapped to the
    /// source's `classes`) and keeps `test` (a sample of the source test split) for the
    /// corruptions.
    pub fn load(
        study: &StudyConfig,
        (classes, channels): (&[String], usize),
        test: Option<ImageSet>,
        cache_dir: Option<&Path>,
    ) -> Result<Self> {
        let corruptions = study.analysis.corruptions()?;
        let mut extra = Vec::new();
        for t in &study.extra_tests {
            let set = test_split(&t.data, cache_dir)?.with_channels(channels)?;
            let mapped = set
                .classes
                .iter()
                .map(|name| classes.iter().position(|c| c == name).ok_or(name.as_str()))
                .collect::<Vec<_>>();
            let unknown: Vec<&str> = mapped.iter().filter_map(|m| m.err()).collect();
            if !unknown.is_empty() {
                let shown: Vec<&str> = classes.iter().take(12).map(String::as_str).collect();
                return Err(Error::invalid_setting(
                    "extra_tests",
                    format!("`{}`: classes {}", t.name, unknown.join(", ")),
                    format!(
                        "classes of the source, named as it names them ({}{})",
                        shown.join(", "),
                        if classes.len() > shown.len() { ", …" } else { "" }
                    ),
                ));
            }
            extra.push(ExtraTestData {
                name: t.name.clone(),
                classes: mapped.into_iter().flatten().collect(),
                set,
            });
        }
        let corruption_set = test.filter(|_| !corruptions.is_empty());
        Ok(Self {
            extra,
            corruptions,
            corruption_set,
        })
    }

    /// Whether there is anything to measure.
    pub fn is_empty(&self) -> bool {
        self.extra.is_empty() && self.corruptions.is_empty()
    }
}

/// The test split of `data`; an ImageFolder tree without `train`/`test` folders is all test.
fn test_split(data: &DatasetSource, cache_dir: Option<&Path>) -> Result<ImageSet> {
    match data {
        DatasetSource::Folder { path, .. } if !path.join("train").is_dir() && !path.join("test").is_dir() => {
            data.load(Split::Train, cache_dir)
        }
        _ => data.load(Split::Test, cache_dir),
    }
}

impl Measurer<'_> {
    /// Accuracy on every extra test set and the error under every corruption and severity;
    /// `None` when the study has neither. `progress` hears what is measured.
    pub fn robustness(
        &self,
        trained: &TrainedModel,
        data: &RobustnessData,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Option<Robustness>> {
        if data.is_empty() {
            return Ok(None);
        }
        let k = trained.info.classes.len();
        let mut extra = Vec::new();
        for t in &data.extra {
            progress(&format!("accuracy on {}", t.name));
            let logits = outputs(trained, &t.set, self.batch_size, self.device)?;
            let correct = logits
                .chunks(k)
                .zip(&t.set.labels)
                .filter(|(row, label)| {
                    // The argmax among the set's classes (the first of equals).
                    let best =
                        (0..t.classes.len()).fold(0, |b, j| if row[t.classes[j]] > row[t.classes[b]] { j } else { b });
                    best == **label
                })
                .count();
            extra.push(ExtraAccuracy {
                name: t.name.clone(),
                top1: correct as f64 / t.set.len().max(1) as f64,
                images: t.set.len(),
                classes: t.classes.len(),
            });
        }
        let mut corruptions = Vec::new();
        let mut images = 0;
        if let Some(test) = &data.corruption_set {
            let crops = evaluation_crops(test, trained.input.image_size);
            images = crops.len();
            for &corruption in &data.corruptions {
                progress(&format!("error under {corruption}"));
                let errors = SEVERITIES
                    .map(|severity| {
                        let corrupted = corrupt_set(&crops, corruption, severity, STUDY_SEED)?;
                        let e = crate::study::measure::evaluate(trained, &corrupted, self.batch_size, self.device)?;
                        Ok(1.0 - e.accuracy)
                    })
                    .collect::<Result<Vec<f64>>>()?;
                corruptions.push(CorruptionErrors {
                    corruption: corruption.name().to_string(),
                    errors,
                });
            }
        }
        Ok(Some(Robustness {
            extra,
            corruptions,
            corruption_images: images,
        }))
    }
}
