//! Training dynamics (Figs. C.1–C.3, D.2, E.4): the weights a run kept every `train.keep_every`
//! epochs, measured as the study measures the final network: top-1 accuracy on the source test
//! split and on the run's own unaugmented training images, linear transfer to each target, class
//! separation R² of every layer on the source training images and of the penultimate layer on the
//! test split. As in the paper, a run's curve ends at its best epoch (the final network). Each
//! epoch's measurements are saved under the run's key (`runs/<run>/dynamics/epoch-NNNN.json`), so
//! a killed study measures only the epochs it had not finished.

use std::path::Path;

use burn::tensor::Device;

use crate::analysis::classes::Classes;
use crate::analysis::separation::{Distance, class_separation};
use crate::analysis::streaming::StreamingSeparation;
use crate::data::ImageSet;
use crate::error::{Error, Result};
use crate::inference;
use crate::probe::metrics::evaluate as evaluate_logits;
use crate::study::measure::{Measurer, StudyData, class_counts, taps};
use crate::study::results::{DynamicsPoint, LayerValue, RunResult, TargetValue};
use crate::study::store::{Record, Saved};
use crate::train::{RunDir, TrainedModel};

/// The folder of a run's per-epoch dynamics records.
const DYNAMICS_DIR: &str = "dynamics";

/// The training dynamics of the run in `dir`, whose final network `trained` was measured as
/// `result`: every kept epoch before the best one, then the best (final) one from `result`.
/// `train` is the sample of its own training images of Table C.1 (none unless measured); `key`
/// is the run's measurement key, under which each epoch is saved; `progress` hears each epoch
/// before it is measured.
#[allow(clippy::too_many_arguments)]
pub(crate) fn measure_dynamics(
    measurer: &Measurer,
    dir: &Path,
    trained: &TrainedModel,
    result: &RunResult,
    data: &StudyData,
    train: Option<&ImageSet>,
    key: &str,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<DynamicsPoint>> {
    let run = RunDir::new(dir);
    let best = trained.info.best_epoch.unwrap_or(trained.info.epochs_done);
    let records = dir.join(DYNAMICS_DIR);
    std::fs::create_dir_all(&records).map_err(|e| Error::io(&records, e))?;
    let mut points = Vec::new();
    for epoch in run.kept_epochs()?.into_iter().filter(|&e| e < best) {
        let record = Record::new(records.join(format!("epoch-{epoch:04}.json")), key.to_string());
        if let Saved::Same(point) = record.read::<DynamicsPoint>() {
            points.push(point);
            continue;
        }
        progress(epoch);
        let kept = run.load_kept(epoch, measurer.device)?;
        let point = measurer.dynamics_point(&kept, epoch, data, train)?;
        record.write(&point)?;
        points.push(point);
    }
    progress(best);
    let (_, test_separation) = measurer.test_point(trained, &data.source_test)?;
    points.push(final_point(best, result, test_separation));
    Ok(points)
}

/// The final network's point, from its measurements (the same quantities on the same images)
/// and the R² of its penultimate layer on the test split.
fn final_point(epoch: usize, result: &RunResult, test_separation: f64) -> DynamicsPoint {
    DynamicsPoint {
        epoch,
        top1: result.source.top1,
        train_top1: result.source.train.as_ref().map(|t| t.top1),
        transfer: result
            .transfer
            .iter()
            .map(|t| TargetValue {
                target: t.target.clone(),
                value: t.linear,
            })
            .collect(),
        separation: result.separation.clone(),
        test_separation,
    }
}

impl Measurer<'_> {
    /// The network `trained` (its weights at the end of `epoch`) measured for the dynamics on
    /// the study's images and `train` (Table C.1's sample of its training images, if any).
    pub fn dynamics_point(
        &self,
        trained: &TrainedModel,
        epoch: usize,
        data: &StudyData,
        train: Option<&ImageSet>,
    ) -> Result<DynamicsPoint> {
        let (top1, test_separation) = self.test_point(trained, &data.source_test)?;
        let train_top1 = train
            .map(|set| self.train_accuracy(trained, set).map(|t| t.top1))
            .transpose()?;
        let mut transfer = Vec::new();
        for target in &data.targets {
            let (train_features, _) = self.penultimate(trained, &target.train, false)?;
            let (test_features, _) = self.penultimate(trained, &target.test, false)?;
            let (value, _) = self.linear_transfer(target, &train_features, &test_features)?;
            transfer.push(TargetValue {
                target: target.config.name.clone(),
                value,
            });
        }
        Ok(DynamicsPoint {
            epoch,
            top1,
            train_top1,
            transfer,
            separation: self.cosine_separation(trained, &data.separation)?,
            test_separation,
        })
    }

    /// Top-1 accuracy on `test` and the cosine R² of the penultimate layer on it, from one pass.
    pub fn test_point(&self, trained: &TrainedModel, test: &ImageSet) -> Result<(f64, f64)> {
        let classes = trained.info.classes.len();
        let (features, logits) = self.penultimate(trained, test, true)?;
        let top1 = evaluate_logits(&logits.unwrap_or_default(), classes, &test.labels, 1.0).accuracy;
        let labels = Classes::new(test.labels.clone(), Some(classes))?;
        let r2 = pollster::block_on(class_separation(self.compute, &features, &labels, Distance::Cosine))?.r2;
        Ok((top1, r2))
    }

    /// Class separation R² (cosine) of every block (its whole output) and of the penultimate
    /// layer on `set` (sorted by class), in one streamed pass: the values of
    /// [`RunResult::separation`].
    pub fn cosine_separation(&self, trained: &TrainedModel, set: &ImageSet) -> Result<Vec<LayerValue>> {
        let counts = class_counts(&set.labels, trained.info.classes.len())?;
        let taps = taps(trained);
        let request = self.whole_maps(&taps);
        let mut layers: Vec<(String, StreamingSeparation)> = Vec::new();
        let device: &Device = self.device;
        inference::forward_each(&trained.model, set, &trained.input, &request, device, &mut |batch| {
            for (i, (name, rows, shape)) in batch.layers.into_iter().enumerate() {
                if layers.len() == i {
                    let width = shape.iter().product();
                    let separation = StreamingSeparation::new(&name, Distance::Cosine, &counts, width, None)?;
                    layers.push((name, separation));
                }
                pollster::block_on(layers[i].1.add(self.compute, rows))?;
            }
            Ok(())
        })?;
        layers
            .into_iter()
            .map(|(layer, separation)| {
                Ok(LayerValue {
                    layer,
                    value: separation.finish()?.r2,
                })
            })
            .collect()
    }
}
